// The launchers' input (runtime/contracts/launcher-input.ts): the node handler hands each launcher
// pod on its node the VMI it runs, as KubeVirt's virt-handler hands virt-launcher its domain. The
// pods come from an informer of this node's launcher pods, which sees a pod as soon as it is bound,
// when the kubelet does; the VMI is read once from the API server (the handler's VMI informer holds
// only VMIs already Scheduled here). The delivery waits for the launcher's input socket on the
// condition (inotify on the pod's private directory), with a bounded backoff underneath for when the
// directory is not there yet; it is tried again on every change of the pod.
//
// What is delivered to whom: only a pod whose controller is a VMI, whose compute container names
// that VMI's uid (KUBEVM_VMI_UID, part of the pod's immutable spec), and only the VMI of that uid
// in the pod's own namespace. A user who can create pods in a namespace could make such a pod, and
// could as well mount any Secret of that namespace: nothing is given away that the namespace does
// not already give. The socket is opened as the command socket is (no symlink followed, a socket
// owned by the launcher's uid), and the launcher's answer is untrusted input: one bounded line,
// validated.
import { lstat } from 'node:fs/promises';
import type { V1Pod } from '@kubernetes/client-node';
import { Counter } from 'prom-client';
import { LAUNCHER_INPUT_ANSWER_MAX_BYTES, LauncherInputAnswer, launcherInputVmi } from '../runtime/contracts/launcher-input.js';
import { describeZodError } from '../runtime/contracts/launcher-protocol.js';
import { COMPUTE_CONTAINER, LAUNCHER_ENV, LAUNCHER_LABEL, LAUNCHER_LABEL_VALUE, LAUNCHER_UID, nodeLauncherInputSocketPath, nodeLauncherSocketPath } from '../runtime/contracts/launcher-pod.js';
import type { VirtualMachineInstance } from '../runtime/api/kubevirt/v1/virtualmachineinstance.js';
import type { Logger } from '../runtime/logging.js';
import { silentLogger } from '../runtime/logging.js';
import { ndjsonLine, readFirstLine } from '../runtime/ndjson.js';
import { registry } from '../runtime/metrics.js';
import { LauncherSocketRefused, openLauncherSocket, watchLauncherSocketDirectory } from './launcher-client.js';
import { retryDelay } from './launcher-connections.js';
import type { LauncherSocketWatch, LauncherSocketWatcher } from './launcher-connections.js';

export const launcherInputsDelivered = new Counter({
  name: 'kubevm_node_handler_launcher_inputs_total',
  help: 'Deliveries of a VMI to its launcher by result: delivered, refused (by the launcher), failed (the socket, the connection, the VMI).',
  labelNames: ['result'] as const,
  registers: [registry],
});

/** The launcher pod a VMI is delivered to: what the pod says of itself, checked against its spec. */
export interface LauncherInputTarget {
  podUid: string;
  namespace: string;
  /** The VMI, from the pod's controller owner reference. */
  vmiName: string;
  vmiUid: string;
}

/**
 * The pod's delivery target, or why it gets none: the pod must be controlled by a VMI whose uid its
 * compute container names. Pods of an earlier kubevm (their VMI in a Secret) name none and are left alone.
 */
export function launcherInputTarget(pod: V1Pod): LauncherInputTarget | { skip: string } {
  const podUid = pod.metadata?.uid;
  const namespace = pod.metadata?.namespace;
  if (!podUid || !namespace) return { skip: 'the pod has no uid or namespace' };
  const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller === true);
  if (!owner || owner.kind !== 'VirtualMachineInstance' || !owner.apiVersion.startsWith('kubevirt.io/')) return { skip: 'the pod is not controlled by a VirtualMachineInstance' };
  const compute = pod.spec?.containers.find((c) => c.name === COMPUTE_CONTAINER);
  const named = compute?.env?.find((e) => e.name === LAUNCHER_ENV.vmiUid)?.value;
  if (!named) return { skip: `the compute container names no VMI (${LAUNCHER_ENV.vmiUid})` };
  if (named !== owner.uid) return { skip: `the compute container names VMI ${named}, the pod's controller is ${owner.uid}` };
  return { podUid, namespace, vmiName: owner.name, vmiUid: owner.uid };
}

/** Where a launcher's input stands, seen from the node. */
type SocketState = 'listening' | 'taken' | 'not-yet';

export interface LauncherInputsOptions {
  nodeName: string;
  /** The kubelet's pods directory as mounted in the handler. */
  podsDir: string;
  /** Reads a VMI from the API server; undefined when it does not exist. */
  getVmi: (namespace: string, name: string) => Promise<VirtualMachineInstance | undefined>;
  ownerUid?: number;
  watch?: LauncherSocketWatcher;
  /** The retries' backoff while the pod's directory or socket is not there. Default 50 ms → 1 s. */
  retryDelayMs?: { first: number; longest: number };
  /** How long a connected launcher may take to answer. Default 10 s. */
  answerTimeoutMs?: number;
  log?: Logger;
}

interface Entry {
  target: LauncherInputTarget;
  /** Set once delivered (or the launcher had its VMI already): nothing more to do for this pod. */
  done: boolean;
  attempt: Promise<void> | undefined;
  /** A change came while an attempt was in flight: try again once it ends. */
  again: boolean;
  retryTimer: NodeJS.Timeout | undefined;
  watch: LauncherSocketWatch | undefined;
  failures: number;
  /** The VMI as read from the API server, once it was read. */
  vmi?: VirtualMachineInstance | undefined;
}

const defaultRetryDelayMs = { first: 50, longest: 1000 };

export class LauncherInputs {
  private readonly entries = new Map<string, Entry>();
  private readonly log: Logger;
  private stopped = false;

  constructor(private readonly options: LauncherInputsOptions) {
    this.log = options.log ?? silentLogger;
  }

  /** A launcher pod on this node was added or changed: deliver its VMI unless that is done. */
  observe(pod: V1Pod): void {
    if (this.stopped) return;
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const phase = pod.status?.phase;
    const live = pod.spec?.nodeName === this.options.nodeName && !pod.metadata?.deletionTimestamp && (phase === undefined || phase === 'Pending' || phase === 'Running');
    if (!live) return this.forget(uid);
    let entry = this.entries.get(uid);
    if (!entry) {
      const target = launcherInputTarget(pod);
      if ('skip' in target) {
        this.log.debug({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, why: target.skip }, 'no input to deliver to this pod');
        return;
      }
      entry = { target, done: false, attempt: undefined, again: false, retryTimer: undefined, watch: undefined, failures: 0 };
      this.entries.set(uid, entry);
    }
    this.kick(entry);
  }

  /** The pod is gone (or done): stop waiting for it. */
  forget(podUid: string): void {
    const entry = this.entries.get(podUid);
    if (!entry) return;
    this.entries.delete(podUid);
    this.quiet(entry);
    entry.done = true;
  }

  stop(): void {
    this.stopped = true;
    for (const uid of [...this.entries.keys()]) this.forget(uid);
  }

  /** Pods whose launcher has yet to take its VMI (tests, metrics). */
  pending(): string[] {
    return [...this.entries.values()].filter((e) => !e.done).map((e) => e.target.podUid);
  }

  private kick(entry: Entry): void {
    if (entry.done || this.stopped) return;
    if (entry.attempt) {
      entry.again = true;
      return;
    }
    entry.again = false;
    entry.attempt = this.attempt(entry).finally(() => {
      entry.attempt = undefined;
      if (entry.again) this.kick(entry);
    });
  }

  private async attempt(entry: Entry): Promise<void> {
    const { target } = entry;
    const log = this.log.child({ namespace: target.namespace, name: target.vmiName, pod: target.podUid });
    try {
      const state = await this.socketState(target);
      if (entry.done) return;
      if (state === 'taken') {
        log.debug('the launcher has its VMI already');
        return this.finish(entry);
      }
      if (state === 'not-yet') return this.waitForSocket(entry);
      // Read once: a delivery tried again (a refused connection, a refusal) sends the same VMI.
      const vmi = (entry.vmi ??= await this.options.getVmi(target.namespace, target.vmiName));
      if (entry.done) return;
      if (!vmi || vmi.metadata?.uid !== target.vmiUid) {
        // The VMI is gone (or replaced): the controller deletes its pod; nothing is delivered.
        launcherInputsDelivered.inc({ result: 'failed' });
        log.info({ found: vmi?.metadata?.uid ?? null }, 'the VMI of this launcher pod does not exist: nothing delivered');
        return this.finish(entry);
      }
      const answer = await this.deliver(target, vmi);
      if (answer.ok) {
        launcherInputsDelivered.inc({ result: 'delivered' });
        log.info('VMI delivered to its launcher');
        return this.finish(entry);
      }
      launcherInputsDelivered.inc({ result: 'refused' });
      log.warn({ error: answer.error }, 'the launcher refused its VMI');
      this.retryLater(entry);
    } catch (error) {
      if (error instanceof LauncherSocketRefused) {
        // The pod tried something: it gets nothing, now or later.
        launcherInputsDelivered.inc({ result: 'failed' });
        log.warn({ err: error.message }, 'refusing to deliver to this launcher pod');
        return this.finish(entry);
      }
      launcherInputsDelivered.inc({ result: 'failed' });
      log.info({ err: (error as Error).message }, 'delivering the VMI failed; trying again');
      this.retryLater(entry);
    }
  }

  /** Whether the launcher listens for its input, took it already (its command socket is there), or neither yet. */
  private async socketState(target: LauncherInputTarget): Promise<SocketState> {
    const exists = (file: string) => lstat(file).then(() => true, (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' || error.code === 'ENOTDIR' ? false : Promise.reject(error)));
    if (await exists(nodeLauncherInputSocketPath(this.options.podsDir, target.podUid))) return 'listening';
    if (await exists(nodeLauncherSocketPath(this.options.podsDir, target.podUid))) return 'taken';
    return 'not-yet';
  }

  private async deliver(target: LauncherInputTarget, vmi: VirtualMachineInstance): Promise<LauncherInputAnswer> {
    const socketPath = nodeLauncherInputSocketPath(this.options.podsDir, target.podUid);
    const socket = await openLauncherSocket(this.options.podsDir, socketPath, { ownerUid: this.options.ownerUid ?? LAUNCHER_UID });
    const timeoutMs = this.options.answerTimeoutMs ?? 10_000;
    try {
      // An error ends the connection; readFirstLine reports the close with the error's message.
      socket.on('error', () => socket.destroy());
      socket.write(ndjsonLine({ vmi: launcherInputVmi(vmi) }));
      let first: { value: unknown };
      try {
        first = await readFirstLine(socket, timeoutMs, LAUNCHER_INPUT_ANSWER_MAX_BYTES);
      } catch (error) {
        throw new Error(`launcher input socket ${socketPath}: ${(error as Error).message}`, { cause: error });
      }
      const answer = LauncherInputAnswer.safeParse(first.value);
      if (!answer.success) throw new Error(`launcher input socket ${socketPath}: an answer that is not one: ${describeZodError(answer.error)}`);
      return answer.data;
    } finally {
      socket.destroy();
    }
  }

  /** Waits for the input socket: a watch on the pod's private directory, and a retry underneath. */
  private waitForSocket(entry: Entry): void {
    if (!entry.watch) {
      const socketPath = nodeLauncherInputSocketPath(this.options.podsDir, entry.target.podUid);
      try {
        const watcher = this.options.watch ?? watchLauncherSocketDirectory;
        entry.watch = watcher(
          { podsDir: this.options.podsDir, socketPath, vmi: { namespace: entry.target.namespace, name: entry.target.vmiName } },
          () => this.kick(entry),
          () => {
            entry.watch = undefined;
            this.retryLater(entry);
          },
        );
        // The socket may have appeared between the look and the watch.
        entry.again = true;
      } catch {
        // The directory is not there yet: the retry below looks again.
      }
    }
    this.retryLater(entry);
  }

  private retryLater(entry: Entry): void {
    if (entry.done || entry.retryTimer) return;
    entry.failures += 1;
    const delay = retryDelay(this.options.retryDelayMs ?? defaultRetryDelayMs, entry.failures);
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      this.kick(entry);
    }, delay);
    entry.retryTimer.unref();
  }

  private finish(entry: Entry): void {
    entry.done = true;
    this.quiet(entry);
  }

  private quiet(entry: Entry): void {
    entry.watch?.close();
    entry.watch = undefined;
    if (entry.retryTimer) clearTimeout(entry.retryTimer);
    entry.retryTimer = undefined;
  }
}

/** The label and field selectors of the informer of this node's launcher pods. */
export function nodeLauncherPodSelectors(nodeName: string): { labelSelector: string; fieldSelector: string } {
  return { labelSelector: `${LAUNCHER_LABEL}=${LAUNCHER_LABEL_VALUE}`, fieldSelector: `spec.nodeName=${nodeName}` };
}
