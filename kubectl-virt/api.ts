// What the plugin asks of the cluster: the subresources of subresources.kubevirt.io and the few
// objects it reads (VMs, VMIs, migrations, Events). Each call names what it attempts, so a failure
// becomes one line saying which permission or object is missing (errors.ts).
import { HttpMethod } from '@kubernetes/client-node';
import type * as api from '../runtime/api/index.js';
import {
  SUBRESOURCE_GROUP,
  VirtualMachineInstanceMigrationNames,
  VirtualMachineInstanceNames,
  VirtualMachineNames,
} from '../runtime/api/index.js';
import type { KubeObject, ResourceDescriptor } from '../runtime/kube.js';
import { coreResources, resourcePath } from '../runtime/kube.js';
import { descriptorOf } from '../api-server/descriptors.js';
import type { Connection } from './connection.js';
import type { Attempt } from './errors.js';
import { UserError, attempt } from './errors.js';

export type VirtualMachine = api.VirtualMachine & KubeObject;
export type VirtualMachineInstance = api.VirtualMachineInstance & KubeObject;
export type VirtualMachineInstanceMigration = Omit<api.VirtualMachineInstanceMigration, 'metadata'> & KubeObject;

export interface KubeEvent extends KubeObject {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  lastTimestamp?: string | null;
  eventTime?: string | null;
  involvedObject?: { kind?: string; name?: string };
}

export type Target = 'vm' | 'vmi';
const kindOf: Record<Target, string> = { vm: 'VirtualMachine', vmi: 'VirtualMachineInstance' };
const pluralOf: Record<Target, string> = { vm: 'virtualmachines', vmi: 'virtualmachineinstances' };

export const vmResource: ResourceDescriptor = descriptorOf(VirtualMachineNames);
export const vmiResource: ResourceDescriptor = descriptorOf(VirtualMachineInstanceNames);
export const migrationResource: ResourceDescriptor = descriptorOf(VirtualMachineInstanceMigrationNames);

/** The subresource API version the plugin speaks (KubeVirt's v1; v1alpha3 is the same). */
const subresourceVersion = 'v1';

export class VirtApi {
  constructor(readonly connection: Connection) {}

  get namespace(): string {
    return this.connection.namespace;
  }

  private what(verb: string, resource: string, group: string, target?: { kind: string; name: string }): Attempt {
    return { verb, resource, group, namespace: this.namespace, server: this.connection.server, ...(target ?? {}) };
  }

  /** The path of a subresource of a VM or VMI (also the websocket streams'). */
  subresourcePath(target: Target, name: string, subresource: string): string {
    return `/apis/${SUBRESOURCE_GROUP}/${subresourceVersion}/namespaces/${encodeURIComponent(this.namespace)}/${pluralOf[target]}/${encodeURIComponent(name)}/${subresource}`;
  }

  /** PUT a VM or VMI subresource (start, stop, pause, ...) with KubeVirt's options body. */
  async put(target: Target, name: string, subresource: string, body: object = {}): Promise<unknown> {
    return attempt(this.what('update', `${pluralOf[target]}/${subresource}`, SUBRESOURCE_GROUP, { kind: kindOf[target], name }), () =>
      this.connection.client.request(HttpMethod.PUT, this.subresourcePath(target, name, subresource), { body }),
    );
  }

  /** GET a VM or VMI subresource (guestosinfo, expand-spec, ...). */
  async get(target: Target, name: string, subresource: string): Promise<unknown> {
    return attempt(this.what('get', `${pluralOf[target]}/${subresource}`, SUBRESOURCE_GROUP, { kind: kindOf[target], name }), () =>
      this.connection.client.request(HttpMethod.GET, this.subresourcePath(target, name, subresource)),
    );
  }

  /** PUT .../namespaces/{ns}/expand-vm-spec: a VM from a file with its instancetype and preference applied. */
  async expandVmSpec(vm: unknown): Promise<unknown> {
    const path = `/apis/${SUBRESOURCE_GROUP}/${subresourceVersion}/namespaces/${encodeURIComponent(this.namespace)}/expand-vm-spec`;
    return attempt(this.what('update', 'expand-vm-spec', SUBRESOURCE_GROUP), () => this.connection.client.request(HttpMethod.PUT, path, { body: vm }));
  }

  /** The api-server's version.Info. */
  async serverVersion(): Promise<Record<string, unknown>> {
    const path = `/apis/${SUBRESOURCE_GROUP}/${subresourceVersion}/version`;
    return (await attempt(this.what('get', 'version', SUBRESOURCE_GROUP), () => this.connection.client.request(HttpMethod.GET, path))) as Record<string, unknown>;
  }

  private read<T extends KubeObject>(descriptor: ResourceDescriptor, name: string): Promise<T | undefined> {
    return attempt(this.what('get', descriptor.resource, descriptor.group, { kind: descriptor.kind, name }), () => this.connection.client.resource<T>(descriptor).find(name, this.namespace));
  }

  /** The VM, or undefined when there is none of that name. */
  vm(name: string): Promise<VirtualMachine | undefined> {
    return this.read<VirtualMachine>(vmResource, name);
  }

  vmi(name: string): Promise<VirtualMachineInstance | undefined> {
    return this.read<VirtualMachineInstance>(vmiResource, name);
  }

  /** The VM, failing with "not found" as the server words it for a subresource. */
  async requireVm(name: string): Promise<VirtualMachine> {
    const found = await this.vm(name);
    if (!found) throw notFoundError('VirtualMachine', name, this.namespace);
    return found;
  }

  async requireVmi(name: string): Promise<VirtualMachineInstance> {
    const found = await this.vmi(name);
    if (!found) throw notFoundError('VirtualMachineInstance', name, this.namespace);
    return found;
  }

  async vmNames(): Promise<string[]> {
    const list = await attempt(this.what('list', vmResource.resource, vmResource.group), () => this.connection.client.resource<VirtualMachine>(vmResource).list({ namespace: this.namespace }));
    return list.items.map((vm) => vm.metadata?.name ?? '').filter((name) => name !== '');
  }

  async vmiNames(): Promise<string[]> {
    const list = await attempt(this.what('list', vmiResource.resource, vmiResource.group), () => this.connection.client.resource<VirtualMachineInstance>(vmiResource).list({ namespace: this.namespace }));
    return list.items.map((vmi) => vmi.metadata?.name ?? '').filter((name) => name !== '');
  }

  /** The migrations of one VMI, oldest first. */
  async migrationsOf(vmiName: string): Promise<VirtualMachineInstanceMigration[]> {
    const list = await attempt(this.what('list', migrationResource.resource, migrationResource.group), () =>
      this.connection.client.resource<VirtualMachineInstanceMigration>(migrationResource).list({ namespace: this.namespace }),
    );
    return list.items
      .filter((m) => m.spec.vmiName === vmiName)
      .sort((a, b) => (a.metadata?.creationTimestamp ?? '').localeCompare(b.metadata?.creationTimestamp ?? ''));
  }

  async deleteMigration(name: string, dryRun: boolean): Promise<void> {
    await attempt(this.what('delete', migrationResource.resource, migrationResource.group, { kind: migrationResource.kind, name }), () =>
      this.connection.client.request(HttpMethod.DELETE, resourcePath(migrationResource, this.namespace, name), {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(dryRun ? { dryRun: ['All'] } : {}) },
        ...(dryRun ? { query: { dryRun: 'All' } } : {}),
      }),
    );
  }

  /** The Events about objects of that name (the VM and its VMI share it), newest last. */
  async eventsAbout(name: string): Promise<KubeEvent[]> {
    const list = await this.connection.client.resource<KubeEvent>(coreResources.events).list({ namespace: this.namespace, fieldSelector: `involvedObject.name=${name}` });
    return list.items.sort((a, b) => eventTime(a).localeCompare(eventTime(b)));
  }
}

export const eventTime = (event: KubeEvent): string => event.lastTimestamp ?? event.eventTime ?? event.metadata?.creationTimestamp ?? '';

export function notFoundError(kind: string, name: string, namespace: string): UserError {
  return new UserError(`${kind} "${name}" not found in namespace "${namespace}"`);
}
