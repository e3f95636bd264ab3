// The disks that live in the launcher pod (a containerDisk's or an ephemeral PVC's overlay, an
// emptyDisk) go with the guest in a live migration, as libvirt copies KubeVirt's "local" disks:
// the target's QEMU exports each of them over NBD, the source's QEMU mirrors its disk into that
// export, and the memory migration switches over only once every mirror is in sync and the guest
// is stopped (pause-before-switchover), so no write is lost. Only each disk's top layer is copied
// (sync "top"): the read-only base is the same image on both nodes. QEMU's older block migration
// (the `block` capability) cannot name -blockdev nodes and refuses them on the target.
//
// Both ends talk to unix sockets in their launcher's run directory; the node handlers carry the
// NBD stream between the nodes exactly as they carry the memory stream. Disks that are not the
// pod's (a PVC, shared ReadWriteMany) are never mirrored: both QEMUs open the same storage.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { PreparedDisk } from './qemu-args.js';
import { diskNodeName, diskReadOnly } from './qemu-args.js';
import type { LauncherVmi } from './vmi.js';
import type { QmpClient } from './qmp.js';

/** The format node names of the VMI's disks that are copied during a migration, in disk order. */
export function mirroredDiskNodes(vmi: LauncherVmi, disks: ReadonlyMap<string, PreparedDisk>): string[] {
  const nodes: string[] = [];
  (vmi.spec.domain.devices.disks ?? []).forEach((disk, index) => {
    const prepared = disks.get(disk.name);
    if (prepared?.podLocal && !diskReadOnly(disk, prepared)) nodes.push(diskNodeName(index));
  });
  return nodes;
}

/** The export name of a disk on the target (its node name there, the same on both ends). */
const exportId = (node: string) => `migration-${node}`;
/** The NBD client node and the mirror job of a disk on the source. */
const clientNode = (node: string) => `migration-${node}-nbd`;
const jobId = (node: string) => `migration-${node}`;

/**
 * The target's side, before `migrate-incoming`: an NBD server on `socketPath` exporting each
 * mirrored disk, writable. Nothing else is exported, and only the node handler reaches the socket.
 */
export async function exportDisksForIncoming(c: QmpClient, nodes: readonly string[], socketPath: string): Promise<void> {
  if (nodes.length === 0) return;
  await c.execute('nbd-server-start', { addr: { type: 'unix', data: { path: socketPath } } });
  for (const node of nodes) {
    await c.execute('block-export-add', { type: 'nbd', id: exportId(node), 'node-name': node, name: node, writable: true });
  }
}

/** The target's side once the migration ended, either way: the exports and the server go. */
export async function stopDiskExports(c: QmpClient, nodes: readonly string[], log: Logger): Promise<void> {
  if (nodes.length === 0) return;
  for (const node of nodes) {
    await c.execute('block-export-del', { id: exportId(node), mode: 'hard' }).catch((error: unknown) => log.debug({ node, err: (error as Error).message }, 'block-export-del'));
  }
  await c.execute('nbd-server-stop').catch((error: unknown) => log.debug({ err: (error as Error).message }, 'nbd-server-stop'));
}

interface BlockJob {
  device: string;
  type: string;
  len: number;
  offset: number;
  ready: boolean;
  status: string;
  error?: string;
}

/** A job that has ended (or is gone): nothing of it runs any more. */
const jobEnded = (job: BlockJob) => job.status === 'concluded' || job.status === 'null';
const JOB_POLL_MS = 20;

/** What the source's mirrors have copied and have left, summed over the disks. */
export interface MirrorProgress {
  totalBytes: number;
  copiedBytes: number;
  ready: boolean;
}

/**
 * The source's side: one mirror job per disk into the target's export, each through its socket
 * (the launcher relays it to a connection the node handler carries to the target's NBD socket).
 */
export class DiskMirrors {
  private readonly started: string[] = [];

  private readonly nodes: readonly string[];

  constructor(
    private readonly c: QmpClient,
    /** Each mirrored disk's format node, and the socket its NBD client connects to. */
    private readonly sockets: ReadonlyMap<string, string>,
    private readonly log: Logger,
  ) {
    this.nodes = [...sockets.keys()];
  }

  get empty(): boolean {
    return this.nodes.length === 0;
  }

  /** Connects to the target's exports and starts copying every disk's top layer. */
  async start(bandwidthBytesPerSecond: number | undefined): Promise<void> {
    for (const node of this.nodes) {
      await this.c.execute('blockdev-add', { driver: 'nbd', 'node-name': clientNode(node), server: { type: 'unix', path: this.sockets.get(node) }, export: node });
      this.started.push(node);
      await this.c.execute('blockdev-mirror', {
        'job-id': jobId(node),
        device: node,
        target: clientNode(node),
        sync: 'top',
        // A job that fails stays to be read (its error), and is removed by finish/abort.
        'auto-dismiss': false,
        ...(bandwidthBytesPerSecond !== undefined ? { speed: bandwidthBytesPerSecond } : {}),
      });
    }
    this.log.info({ disks: this.nodes }, 'mirroring the pod-local disks to the target');
  }

  /** Where the mirrors are; throws with QEMU's reason when one of them failed. */
  async progress(): Promise<MirrorProgress> {
    const jobs = await this.jobs(this.nodes);
    for (const job of jobs) {
      if (job.error !== undefined || (job.status === 'concluded' && !job.ready)) throw new Error(`the mirror of disk ${job.device.replace(/^migration-/, '')} failed: ${job.error ?? 'QEMU gave no reason'}`);
    }
    if (jobs.length < this.started.length) throw new Error('a disk mirror ended before the migration');
    return {
      totalBytes: jobs.reduce((sum, j) => sum + j.len, 0),
      copiedBytes: jobs.reduce((sum, j) => sum + j.offset, 0),
      ready: jobs.length === this.nodes.length && jobs.every((j) => j.ready),
    };
  }

  /**
   * With the guest stopped (the migration's pre-switchover): completes every mirror without a
   * switch (a cancel of a job in sync copies what is left, then ends it) and disconnects.
   */
  async finish(timeoutMs: number): Promise<void> {
    for (const node of this.started) await this.c.execute('block-job-cancel', { device: jobId(node) });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const jobs = await this.jobs(this.started);
      const failed = jobs.find((j) => j.error !== undefined);
      if (failed) throw new Error(`the mirror of disk ${failed.device.replace(/^migration-/, '')} failed while completing: ${failed.error ?? ''}`);
      if (jobs.every(jobEnded)) break;
      if (Date.now() > deadline) throw new Error(`the disk mirrors did not complete within ${timeoutMs} ms of the guest stopping`);
      await delay(JOB_POLL_MS);
    }
    await this.cleanup();
  }

  /** However the migration failed: every mirror stops now and its connection goes. */
  async abort(): Promise<void> {
    for (const node of this.started) {
      await this.c.execute('block-job-cancel', { device: jobId(node), force: true }).catch(() => undefined);
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const jobs = await this.jobs(this.started).catch(() => [] as BlockJob[]);
      if (jobs.every(jobEnded)) break;
      await delay(JOB_POLL_MS);
    }
    await this.cleanup();
  }

  /** QEMU's block jobs of these disks' mirrors. */
  private async jobs(nodes: readonly string[]): Promise<BlockJob[]> {
    return (await this.c.execute<BlockJob[]>('query-block-jobs')).filter((j) => nodes.some((n) => j.device === jobId(n)));
  }

  private async cleanup(): Promise<void> {
    for (const node of this.started.splice(0)) {
      await this.c.execute('job-dismiss', { id: jobId(node) }).catch(() => undefined);
      await this.c.execute('blockdev-del', { 'node-name': clientNode(node) }).catch((error: unknown) => this.log.warn({ node, err: (error as Error).message }, 'blockdev-del of a mirror target failed'));
    }
  }
}

