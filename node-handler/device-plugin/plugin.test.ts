// The plugin over real gRPC on unix sockets, with a stand-in for the kubelet's Registration
// service that does what the kubelet does after Register: dial the plugin, ListAndWatch, Allocate.
// The real kubelet is exercised by test/e2e/device-plugin.test.ts.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DevicePluginManager, devicePluginApi } from './plugin.js';
import type { RegisterRequest } from './plugin.js';
import type { HostDevice, PluginDevice } from './devices.js';
import { eventually } from '../../test/support/eventually.js';

const present: HostDevice = { resourceName: 'devices.kubevirt.io/null', devicePath: '/dev/null', endpoint: 'kubevirt-null.sock' };
const absent: HostDevice = { resourceName: 'devices.kubevirt.io/nothing', devicePath: '/dev/kubevm-no-such-device', endpoint: 'kubevirt-nothing.sock' };

interface PluginClient extends grpc.Client {
  ListAndWatch(request: object): grpc.ClientReadableStream<{ devices: PluginDevice[] }>;
  Allocate(request: object, callback: (error: grpc.ServiceError | null, response?: { container_responses: { devices: object[] }[] }) => void): void;
  GetDevicePluginOptions(request: object, callback: (error: grpc.ServiceError | null, response?: object) => void): void;
}

/** A stand-in kubelet: records Register calls. */
class StandInKubelet {
  readonly registrations: RegisterRequest[] = [];
  private server: grpc.Server | undefined;
  constructor(readonly socket: string) {}

  async start(): Promise<void> {
    const server = new grpc.Server();
    server.addService(devicePluginApi().Registration.service, {
      Register: (call: grpc.ServerUnaryCall<RegisterRequest, object>, callback: grpc.sendUnaryData<object>) => {
        this.registrations.push(call.request);
        callback(null, {});
      },
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${this.socket}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
    );
    this.server = server;
  }

  async stop(): Promise<void> {
    this.server?.forceShutdown();
    await unlink(this.socket).catch(() => undefined);
  }

  dial(dir: string, endpoint: string): PluginClient {
    return new (devicePluginApi().DevicePlugin)(`unix://${path.join(dir, endpoint)}`, grpc.credentials.createInsecure()) as unknown as PluginClient;
  }
}

describe('DevicePluginManager', () => {
  let dir: string;
  let kubelet: StandInKubelet;
  let manager: DevicePluginManager;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kubevm-dp-'));
    kubelet = new StandInKubelet(path.join(dir, 'kubelet.sock'));
    await kubelet.start();
    manager = new DevicePluginManager({ pluginDir: dir, devices: [present, absent], units: 10, resyncMs: 100 });
  });

  afterEach(async () => {
    await manager.stop();
    await kubelet.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('registers only present devices, with the v1beta1 version and its endpoint', async () => {
    await manager.start();
    expect(kubelet.registrations).toEqual([
      {
        version: 'v1beta1',
        endpoint: 'kubevirt-null.sock',
        resource_name: 'devices.kubevirt.io/null',
        options: { pre_start_required: false, get_preferred_allocation_available: true },
      },
    ]);
    expect(manager.status()).toEqual([{ resourceName: 'devices.kubevirt.io/null', health: 'Healthy', registered: true }]);
  });

  it('lists its units and allocates the device node read-write', async () => {
    await manager.start();
    const client = kubelet.dial(dir, present.endpoint);
    try {
      const stream = client.ListAndWatch({});
      const first = await new Promise<{ devices: PluginDevice[] }>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      expect(first.devices).toHaveLength(10);
      expect(first.devices[0]).toMatchObject({ ID: 'null0', health: 'Healthy' });
      stream.cancel();

      const allocated = await new Promise<{ container_responses: { devices: object[] }[] }>((resolve, reject) =>
        client.Allocate({ container_requests: [{ devices_ids: ['null4'] }] }, (error, response) => (error || !response ? reject(error ?? new Error('no response')) : resolve(response))),
      );
      expect(allocated.container_responses[0]?.devices).toEqual([{ container_path: '/dev/null', host_path: '/dev/null', permissions: 'rw' }]);

      const refused = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.Allocate({ container_requests: [{ devices_ids: ['null99'] }] }, (error) => resolve(error)),
      );
      expect(refused?.code).toBe(grpc.status.INVALID_ARGUMENT);
    } finally {
      client.close();
    }
  });

  it('registers again when the kubelet restarts and wipes the directory', async () => {
    await manager.start();
    expect(kubelet.registrations).toHaveLength(1);
    // What a kubelet restart looks like from here: its socket and every plugin socket removed,
    // then a new kubelet.sock.
    await kubelet.stop();
    await unlink(path.join(dir, present.endpoint));
    kubelet = new StandInKubelet(path.join(dir, 'kubelet.sock'));
    await kubelet.start();
    await eventually('kubelet.registrations.length === 1', 5000, () => kubelet.registrations.length === 1);
    expect(kubelet.registrations[0]?.resource_name).toBe('devices.kubevirt.io/null');
    // And the plugin answers on its recreated socket.
    const client = kubelet.dial(dir, present.endpoint);
    try {
      const options = await new Promise<object>((resolve, reject) =>
        client.GetDevicePluginOptions({}, (error, response) => (error || !response ? reject(error ?? new Error('no response')) : resolve(response))),
      );
      expect(options).toEqual({ pre_start_required: false, get_preferred_allocation_available: true });
    } finally {
      client.close();
    }
  });

  it('waits for a kubelet that is not there yet, then registers', async () => {
    await kubelet.stop();
    await manager.start();
    expect(manager.status()).toEqual([{ resourceName: 'devices.kubevirt.io/null', health: 'Healthy', registered: false }]);
    kubelet = new StandInKubelet(path.join(dir, 'kubelet.sock'));
    await kubelet.start();
    await eventually('kubelet.registrations.length === 1', 5000, () => kubelet.registrations.length === 1);
  });
});
