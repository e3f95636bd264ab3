// The request bodies of KubeVirt's subresource API (subresources.kubevirt.io): what virtctl and
// other clients PUT to start, stop, restart, migrate, pause and unpause. Field names and meanings
// as kubevirt.io/api/core/v1 StartOptions, StopOptions, RestartOptions, MigrateOptions,
// PauseOptions, UnpauseOptions. Like KubeVirt's decoder, unknown fields (apiVersion, kind, ...)
// are ignored; a known field of the wrong type is a 400 naming it.
import { z } from 'zod';

/** The API group and versions of the subresource API; v1alpha3 is the alias KubeVirt also serves. */
export const SUBRESOURCE_GROUP = 'subresources.kubevirt.io';
export const SUBRESOURCE_VERSIONS = ['v1', 'v1alpha3'] as const;
export type SubresourceVersion = (typeof SUBRESOURCE_VERSIONS)[number];

/** metav1 dryRun: ["All"] makes the request's writes dry runs; the only value Kubernetes knows. */
const DryRun = z.array(z.literal('All')).optional().describe('["All"]: validate and report, but persist nothing.');

export const StartOptions = z
  .object({
    paused: z.boolean().optional().describe('Start the VM paused.'),
    dryRun: DryRun,
  })
  .describe('The body of PUT .../virtualmachines/{name}/start.');
export type StartOptions = z.infer<typeof StartOptions>;

export const StopOptions = z
  .object({
    gracePeriod: z.int().min(0).optional().describe('Seconds the guest gets to shut down; replaces the VMI\'s terminationGracePeriodSeconds.'),
    dryRun: DryRun,
  })
  .describe('The body of PUT .../virtualmachines/{name}/stop.');
export type StopOptions = z.infer<typeof StopOptions>;

export const RestartOptions = z
  .object({
    // KubeVirt accepts only 0 (a forced restart); any other value is refused by the handler with
    // KubeVirt's own message, so the schema lets every integer through.
    gracePeriodSeconds: z.int().optional().describe('0 forces the restart (the guest is not asked to shut down).'),
    dryRun: DryRun,
  })
  .describe('The body of PUT .../virtualmachines/{name}/restart.');
export type RestartOptions = z.infer<typeof RestartOptions>;

export const MigrateOptions = z
  .object({
    addedNodeSelector: z.record(z.string(), z.string()).optional().describe('Extra node labels the target node must have.'),
    dryRun: DryRun,
  })
  .describe('The body of PUT .../virtualmachines/{name}/migrate.');
export type MigrateOptions = z.infer<typeof MigrateOptions>;

export const PauseOptions = z.object({ dryRun: DryRun }).describe('The body of PUT .../virtualmachineinstances/{name}/pause.');
export type PauseOptions = z.infer<typeof PauseOptions>;

export const UnpauseOptions = z.object({ dryRun: DryRun }).describe('The body of PUT .../virtualmachineinstances/{name}/unpause.');
export type UnpauseOptions = z.infer<typeof UnpauseOptions>;
