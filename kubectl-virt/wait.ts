// --wait: follow a VM until it reaches what was asked, showing where it is. On a terminal one
// line is rewritten in place (the phases it went through and the time); otherwise each change is
// a plain line, for logs and scripts. A timeout says what the VM is waiting for: its status,
// the conditions that are not satisfied, and the latest Events about it.
import type { KubeEvent, VirtApi, VirtualMachine, VirtualMachineInstance } from './api.js';
import { UserError } from './errors.js';

/** One look at the object being waited for. */
export interface Observation {
  /** What it is now, in the words of `kubectl get` (Starting, Running, Stopped, Scheduling, ...). */
  phase: string;
  done: boolean;
  /** Set when it can no longer get there: the line to fail with. */
  failed?: string;
}

/** "12s", "1m05s", "1h02m03s". */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h${pad(m)}m${pad(s)}s`;
  if (m > 0) return `${m}m${pad(s)}s`;
  return `${s}s`;
}

/** The live line: "vm/web: Stopped → Starting → Running (12s)". Long histories keep their tail. */
export function progressLine(subject: string, phases: readonly string[], elapsedMs: number): string {
  const shown = phases.length > 5 ? ['…', ...phases.slice(-4)] : phases;
  return `${subject}: ${shown.join(' → ')} (${formatElapsed(elapsedMs)})`;
}

/** Where progress goes: a terminal gets one rewritten line, anything else a line per change. */
export interface ProgressSink {
  update(subject: string, phases: readonly string[], elapsedMs: number, changed: boolean): void;
  end(): void;
}

export function progressSink(stream: NodeJS.WriteStream): ProgressSink {
  if (stream.isTTY) {
    let drawn = false;
    return {
      update(subject, phases, elapsedMs) {
        const line = progressLine(subject, phases, elapsedMs);
        const width = stream.columns > 1 ? stream.columns - 1 : line.length;
        stream.write(`\r\x1b[2K${line.slice(0, width)}`);
        drawn = true;
      },
      end() {
        if (drawn) stream.write('\n');
        drawn = false;
      },
    };
  }
  return {
    update(subject, phases, elapsedMs, changed) {
      if (changed) stream.write(`${subject}: ${phases[phases.length - 1] ?? ''} (${formatElapsed(elapsedMs)})\n`);
    },
    end() {},
  };
}

export interface WaitSpec {
  /** "vm/web", as the progress line names it. */
  subject: string;
  /** What is awaited, for the timeout line: "to be Running". */
  goal: string;
  timeoutMs: number;
  observe: () => Promise<Observation>;
  /** Why it is not there yet, for the timeout line. */
  explain: () => Promise<string>;
  sink: ProgressSink;
  intervalMs?: number;
}

/** Polls until done; throws a UserError on failure or timeout. Returns the time it took. */
export async function waitUntil(spec: WaitSpec): Promise<number> {
  const started = Date.now();
  const phases: string[] = [];
  const interval = spec.intervalMs ?? 500;
  try {
    for (;;) {
      const seen = await spec.observe();
      const changed = phases[phases.length - 1] !== seen.phase;
      if (changed) phases.push(seen.phase);
      spec.sink.update(spec.subject, phases, Date.now() - started, changed);
      if (seen.failed !== undefined) throw new UserError(`${spec.subject}: ${seen.failed}`);
      if (seen.done) return Date.now() - started;
      if (Date.now() - started >= spec.timeoutMs) {
        const why = await spec.explain().catch((err: unknown) => `(its state could not be read: ${err instanceof Error ? err.message : String(err)})`);
        throw new UserError(`timed out after ${formatElapsed(spec.timeoutMs)} waiting for ${spec.subject} ${spec.goal}; ${why}`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(1, spec.timeoutMs - (Date.now() - started)))));
    }
  } finally {
    spec.sink.end();
  }
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** Conditions that say something is missing: Ready/Synchronized False, Failure/Paused True. */
function telling(conditions: readonly Condition[] | undefined): string[] {
  return (conditions ?? [])
    .filter((c) => (c.status === 'False' && !/^(Paused|Failure)$/.test(c.type)) || (c.status === 'True' && /Failure|Paused|Unschedulable/.test(c.type)))
    .map((c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : c.message ? ` (${c.message})` : ''}`);
}

/** One line describing a VM, its VMI and the latest Events about them. */
export function describeState(vm: VirtualMachine | undefined, vmi: VirtualMachineInstance | undefined, events: readonly KubeEvent[], maxEvents = 3): string {
  const parts: string[] = [];
  if (vm) {
    const conditions = telling(vm.status?.conditions);
    parts.push(`the VM is ${vm.status?.printableStatus ?? 'without status'}${conditions.length > 0 ? ` with ${conditions.join(', ')}` : ''}`);
  }
  if (vmi) {
    const conditions = telling(vmi.status?.conditions);
    parts.push(`its VMI is ${vmi.status?.phase ?? 'Pending'}${conditions.length > 0 ? ` with ${conditions.join(', ')}` : ''}`);
  } else if (vm) {
    parts.push('it has no VMI');
  }
  const latest = events.slice(-maxEvents).map((e) => `${e.type ?? 'Normal'} ${e.reason ?? ''} on ${e.involvedObject?.kind ?? 'object'}: ${(e.message ?? '').replace(/\s+/g, ' ').trim()}`);
  parts.push(latest.length > 0 ? `latest events: ${latest.join(' | ')}` : 'no events');
  return parts.join('; ');
}

/** The explanation of a VM for a timeout line, read now. */
export function explainVm(virt: VirtApi, name: string): () => Promise<string> {
  return async () => describeState(await virt.vm(name), await virt.vmi(name), await virt.eventsAbout(name));
}

/** What `kubectl get vm` shows, falling back to the VMI's phase. */
export function vmPhase(vm: VirtualMachine | undefined, vmi: VirtualMachineInstance | undefined): string {
  if (!vm) return 'Gone';
  return vm.status?.printableStatus ?? vmi?.status?.phase ?? 'Pending';
}

export const DEFAULT_WAIT_TIMEOUT_MS = 5 * 60_000;
