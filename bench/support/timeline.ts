// A VM's start-up as a timeline of milestones, from three places that see it with millisecond
// precision (the API's own timestamps are whole seconds):
// - the bench's watches of the VMI and its launcher pod (client clock, ~ms after the write);
// - containerd's log on this node: sandbox start/ready, each container created, started, exited;
// - the launcher's log (compute container): command socket up, start command, QEMU started.
// All three read the same wall clock (one machine). The gap before each milestone is where that
// time went: the label says what was going on, the kind whether anything was working.
import type { Span } from './svg.js';

export type MilestoneKind = Span['kind'];

export interface Milestone {
  name: string;
  /** Milliseconds since the epoch. */
  at: number;
  /** What the time before this milestone was spent on. */
  kind: MilestoneKind;
  /** A short description of that time. */
  gap: string;
}

export interface ContainerTimes {
  create?: number;
  started?: number;
  exited?: number;
}

export interface RuntimeTimes {
  sandboxStart?: number;
  sandboxReady?: number;
  /** In the order the runtime created them. */
  containers: Array<{ name: string } & ContainerTimes>;
}

const containerdTime = (line: string): number | undefined => {
  const match = /^time="([^"]+)"/.exec(line);
  return match?.[1] ? Date.parse(match[1]) : undefined;
};

/**
 * containerd's CRI log lines for the pod with this uid. containerd 1.6 prints the CRI messages as Go
 * structs (`Uid:<uid>,`, `Name:compute,`); 2.x as protobuf text (`uid:\"<uid>\"`, `name:\"compute\"`),
 * and reports a container's exit as an event of its own (1.6: only its shim's disconnection).
 */
export function runtimeTimes(containerdLog: string, podUid: string): RuntimeTimes {
  const result: RuntimeTimes = { containers: [] };
  let sandboxId: string | undefined;
  const byId = new Map<string, { name: string } & ContainerTimes>();
  const pendingCreate = new Map<string, number>();
  const exited = (id: string | undefined, at: number) => {
    const entry = id ? byId.get(id) : undefined;
    if (entry && entry.exited === undefined) entry.exited = at;
  };
  for (const line of containerdLog.split('\n')) {
    if (!line.includes('msg=')) continue;
    const at = containerdTime(line);
    if (at === undefined) continue;
    if (line.includes('RunPodSandbox for') && (line.includes(`Uid:${podUid},`) || line.includes(`uid:\\"${podUid}\\"`))) {
      const returned = /returns sandbox id \\"([0-9a-f]+)\\"/.exec(line);
      if (returned?.[1]) {
        sandboxId = returned[1];
        result.sandboxReady = at;
      } else result.sandboxStart ??= at;
      continue;
    }
    if (!sandboxId) continue;
    if (line.includes(`CreateContainer within sandbox \\"${sandboxId}\\"`)) {
      const name = (/Name:([^,]+),/.exec(line) ?? /name:\\"([^\\]+)\\"/.exec(line))?.[1] ?? '?';
      const returned = /returns container id \\"([0-9a-f]+)\\"/.exec(line);
      if (returned?.[1]) {
        const entry = { name, create: pendingCreate.get(name) ?? at };
        byId.set(returned[1], entry);
        result.containers.push(entry);
      } else pendingCreate.set(name, at);
      continue;
    }
    const started = /StartContainer for \\"([0-9a-f]+)\\" returns successfully/.exec(line);
    if (started?.[1]) {
      const entry = byId.get(started[1]);
      if (entry) entry.started = at;
      continue;
    }
    exited(/msg="shim disconnected" id=([0-9a-f]+)/.exec(line)?.[1], at);
    exited(/msg="received container exit event container_id:\\"([0-9a-f]+)\\"/.exec(line)?.[1], at);
  }
  return result;
}

export interface LauncherTimes {
  /** Listening on its input socket for the VMI. */
  inputListening?: number;
  listening?: number;
  startCommand?: number;
  copiesDone?: number;
  qemuStarting?: number;
  domainRunning?: number;
}

/** A component's pino lines (JSON with an ISO `time`), each with its time in ms; other lines skipped. */
function* pinoLines<T extends { time?: string }>(log: string, mention = ''): Generator<{ at: number; entry: T }> {
  for (const line of log.split('\n')) {
    if (!line.startsWith('{') || !line.includes(mention)) continue;
    let entry: T;
    try {
      entry = JSON.parse(line) as T;
    } catch {
      continue;
    }
    const at = entry.time ? Date.parse(entry.time) : NaN;
    if (Number.isFinite(at)) yield { at, entry };
  }
}

/** The launcher's milestones from its log. */
export function launcherTimes(log: string): LauncherTimes {
  const result: LauncherTimes = {};
  for (const { at, entry } of pinoLines<{ time?: string; msg?: string; command?: string; to?: string }>(log)) {
    if (entry.msg === 'waiting for the VMI from the node handler') result.inputListening ??= at;
    else if (entry.msg === 'command socket listening') result.listening ??= at;
    else if (entry.msg === 'command' && entry.command === 'start') result.startCommand ??= at;
    else if (entry.msg === 'image copies done') result.copiesDone ??= at;
    else if (entry.msg === 'starting QEMU') result.qemuStarting ??= at;
    else if (entry.msg === 'domain phase' && entry.to === 'Running') result.domainRunning ??= at;
  }
  return result;
}

export interface NodeHandlerTimes {
  /** The VMI handed to the launcher on its input socket. */
  delivered?: number;
  attached?: number;
  startSent?: number;
  /** The launcher's Running event handled by the handler. */
  runningReceived?: number;
  /** The Running status patch sent (its log line's time minus the write's duration). */
  runningPatchSent?: number;
  runningWritten?: number;
}

/** The node handler's log about one VMI: attached to its launcher, start forwarded, Running written. */
export function nodeHandlerTimes(log: string, namespace: string, name: string): NodeHandlerTimes {
  const result: NodeHandlerTimes = {};
  type Entry = { time?: string; msg?: string; vmi?: string; namespace?: string; name?: string; intent?: string; phase?: string; writeMs?: number };
  for (const { at, entry } of pinoLines<Entry>(log, name)) {
    if (entry.vmi !== `${namespace}/${name}` && !(entry.namespace === namespace && entry.name === name)) continue;
    if (entry.msg === 'VMI delivered to its launcher') result.delivered ??= at;
    else if (entry.msg === 'attached to launcher') result.attached ??= at;
    else if (entry.msg === 'forwarding to the launcher' && entry.intent === 'start') result.startSent ??= at;
    else if (entry.msg === 'launcher reports domain phase' && entry.phase === 'Running') result.runningReceived ??= at;
    else if (entry.msg === 'status updated' && entry.phase === 'Running' && result.runningWritten === undefined) {
      result.runningWritten = at;
      if (typeof entry.writeMs === 'number') result.runningPatchSent = at - entry.writeMs;
    }
  }
  return result;
}

/** What the bench's watches saw, client clock. */
export interface Observed {
  vmCreate: number;
  vmiAdded?: number;
  podAdded?: number;
  podBound?: number;
  podReady?: number;
  vmiScheduled?: number;
  vmiRunning?: number;
}

export function milestones(observed: Observed, runtime: RuntimeTimes, launcher: LauncherTimes, nodeHandler: NodeHandlerTimes, initContainers: ReadonlySet<string>): Milestone[] {
  const list: Milestone[] = [{ name: 'VM created', at: observed.vmCreate, kind: 'api', gap: '' }];
  const add = (name: string, at: number | undefined, kind: MilestoneKind, gap: string) => {
    if (at !== undefined && Number.isFinite(at)) list.push({ name, at, kind, gap });
  };
  add('VMI created', observed.vmiAdded, 'api', 'VM controller creates the VMI');
  add('launcher pod created', observed.podAdded, 'api', 'VMI controller creates the pod');
  add('pod bound to the node', observed.podBound, 'api', 'scheduler');
  add('sandbox starting', runtime.sandboxStart, 'work', 'kubelet sees the pod, mounts its volumes');
  add('sandbox ready', runtime.sandboxReady, 'work', 'containerd: pause container, CNI network');
  let previousExit = false;
  let previous = '';
  for (const container of runtime.containers) {
    const init = initContainers.has(container.name);
    const next = previous === 'compute' ? "compute's postStart hook installs the copier (an exec), then the kubelet starts the next container" : 'kubelet: next container';
    add(`${container.name}: create`, container.create, previousExit ? 'wait' : 'work', previousExit ? 'kubelet notices the exit on its next relist (PLEG, 1 s)' : next);
    previous = container.name;
    add(`${container.name}: started`, container.started, 'work', 'containerd: create and start the container');
    if (init) add(`${container.name}: exited`, container.exited, 'work', 'the copy runs');
    previousExit = init && container.exited !== undefined;
  }
  add('launcher waiting for its VMI', launcher.inputListening, 'work', 'the launcher (node) starts, listens on its input socket');
  add('node handler: VMI delivered', nodeHandler.delivered, 'work', 'node handler sees the input socket appear (inotify), sends the VMI it read when the pod was bound');
  add('launcher listening', launcher.listening, 'work', 'the launcher takes its VMI, serves its command socket');
  add('pod Ready (seen)', observed.podReady, 'wait', 'kubelet relist sees the containers running, then writes pod status');
  add('VMI Scheduled (seen)', observed.vmiScheduled, 'api', 'VMI controller writes Scheduled');
  add('node handler attached', nodeHandler.attached, 'wait', 'node handler sees the VMI on its node (written when the pod was bound), dials the launcher (again when its socket appears; retries underneath)');
  add('node handler: start sent', nodeHandler.startSent, 'work', 'node handler reconciles the VMI with the launcher attached');
  add('launcher: start command', launcher.startCommand, 'work', 'the start command reaches the launcher');
  add('image copies done', launcher.copiesDone, 'work', 'the launcher waits for the image copies beside it');
  add('QEMU starting', launcher.qemuStarting, 'work', 'launcher checks disks, builds the QEMU command');
  add('domain Running', launcher.domainRunning, 'work', 'QEMU starts, QMP handshake, cont');
  add('node handler: Running received', nodeHandler.runningReceived, 'work', "the launcher's event reaches the node handler");
  add('node handler: Running patch sent', nodeHandler.runningPatchSent, 'work', 'node handler queue and reconcile');
  add('node handler: Running written', nodeHandler.runningWritten, 'api', 'the API server applies the patch; the handler reads the answer');
  add('VMI Running (seen)', observed.vmiRunning, 'api', 'the watch delivers the write');
  return list.sort((a, b) => a.at - b.at);
}

/** The timeline as bars, in seconds since the VM's creation: each from the milestone before. */
export function spans(list: Milestone[]): Span[] {
  const start = list[0]?.at ?? 0;
  return list.slice(1).map((m, i) => ({ label: m.name, start: ((list[i]?.at ?? start) - start) / 1000, end: (m.at - start) / 1000, kind: m.kind }));
}

/** Where the time goes: each gap's length, by the milestone it leads to. */
export function gaps(list: Milestone[]): Array<{ to: string; kind: MilestoneKind; what: string; ms: number }> {
  return list.slice(1).map((m, i) => ({ to: m.name, kind: m.kind, what: m.gap, ms: m.at - (list[i]?.at ?? m.at) }));
}
