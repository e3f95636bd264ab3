// start, stop, restart, pause, unpause, soft-reboot, reset, migrate and migrate-cancel: the
// subresource requests virtctl makes, with the same bodies and the same "was scheduled to" lines,
// and --wait to follow the VM to where it was sent.
import type { Target, VirtApi, VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceMigration } from './api.js';
import { UserError } from './errors.js';
import type { Observation, ProgressSink } from './wait.js';
import { explainVm, vmPhase, waitUntil } from './wait.js';

const dryRunBody = (dryRun: boolean | undefined) => (dryRun ? { dryRun: ['All'] } : {});
const scheduled = (kind: string, name: string, verb: string, dryRun?: boolean) => `${kind} ${name} was scheduled to ${verb}${dryRun ? ' (dry run: nothing changed)' : ''}`;

export interface WaitOptions {
  wait?: boolean;
  timeoutMs: number;
  sink: ProgressSink;
}

/** Follows vm/NAME (the VM and its VMI, read each time) until `observe` says it is done. */
function followVm(virt: VirtApi, name: string, options: WaitOptions, goal: string, observe: (vm: VirtualMachine | undefined, vmi: VirtualMachineInstance | undefined) => Observation): Promise<number> {
  return waitUntil({
    subject: `vm/${name}`,
    goal,
    timeoutMs: options.timeoutMs,
    sink: options.sink,
    explain: explainVm(virt, name),
    observe: async () => observe(await virt.vm(name), await virt.vmi(name)),
  });
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;

export interface StartOptions extends WaitOptions {
  paused?: boolean;
  dryRun?: boolean;
}

export async function start(virt: VirtApi, name: string, options: StartOptions): Promise<string> {
  await virt.put('vm', name, 'start', { ...(options.paused ? { paused: true } : {}), ...dryRunBody(options.dryRun) });
  const line = scheduled('VM', name, 'start', options.dryRun);
  if (!options.wait || options.dryRun) return line;
  const goal = options.paused ? 'Paused' : 'Running';
  const took = await followVm(virt, name, options, `to be ${goal}`, (vm, vmi) => {
    const running = vmi?.status?.phase === 'Running';
    const paused = vmi?.status?.conditions?.some((c) => c.type === 'Paused' && c.status === 'True') === true;
    const phase = vmPhase(vm, vmi);
    // The VM's printableStatus follows the VMI a moment later: done once both say so, so the last
    // progress line agrees with the answer.
    return { phase, done: running && paused === Boolean(options.paused) && phase === goal, ...(vm ? {} : { failed: 'the VM was deleted' }) };
  });
  return `${line}; ${goal.toLowerCase()} after ${seconds(took)}`;
}

export interface StopOptions extends WaitOptions {
  force?: boolean;
  gracePeriod?: number;
  dryRun?: boolean;
}

/** virtctl's rule: --force and --grace-period go together. */
export function forcedGracePeriod(force: boolean | undefined, gracePeriod: number | undefined): number | undefined {
  if (Boolean(force) !== (gracePeriod !== undefined)) throw new UserError('--force and --grace-period go together: pass both (e.g. --force --grace-period 0) or neither');
  return gracePeriod;
}

export async function stop(virt: VirtApi, name: string, options: StopOptions): Promise<string> {
  const gracePeriod = forcedGracePeriod(options.force, options.gracePeriod);
  await virt.put('vm', name, 'stop', { ...(gracePeriod !== undefined ? { gracePeriod } : {}), ...dryRunBody(options.dryRun) });
  const line = scheduled('VM', name, 'stop', options.dryRun);
  if (!options.wait || options.dryRun) return line;
  const took = await followVm(virt, name, options, 'to be Stopped', (vm, vmi) => {
    const phase = vmPhase(vm, vmi);
    return { phase, done: vmi === undefined && (vm === undefined || phase === 'Stopped') };
  });
  return `${line}; stopped after ${seconds(took)}`;
}

export async function restart(virt: VirtApi, name: string, options: StopOptions): Promise<string> {
  const gracePeriod = forcedGracePeriod(options.force, options.gracePeriod);
  const before = options.wait && !options.dryRun ? (await virt.vmi(name))?.metadata?.uid : undefined;
  await virt.put('vm', name, 'restart', { ...(gracePeriod !== undefined ? { gracePeriodSeconds: gracePeriod } : {}), ...dryRunBody(options.dryRun) });
  const line = scheduled('VM', name, 'restart', options.dryRun);
  if (!options.wait || options.dryRun) return line;
  const took = await followVm(virt, name, options, 'to run again', (vm, vmi) => {
    const fresh = vmi !== undefined && vmi.metadata?.uid !== before;
    const phase = fresh ? vmPhase(vm, vmi) : vmi ? 'Stopping' : 'Restarting';
    return { phase, done: fresh && vmi.status?.phase === 'Running' && phase === 'Running' };
  });
  return `${line}; running again after ${seconds(took)}`;
}

/** pause/unpause vm|vmi: both act on the VMI of that name, as virtctl does; for a VM it must exist first. */
export async function pauseOrUnpause(virt: VirtApi, verb: 'pause' | 'unpause', target: Target, name: string, dryRun?: boolean): Promise<string> {
  if (target === 'vm') await virt.requireVm(name);
  await virt.put('vmi', name, verb, dryRunBody(dryRun));
  return scheduled(target === 'vm' ? 'VM' : 'VMI', name, verb, dryRun);
}

export async function softReboot(virt: VirtApi, name: string): Promise<string> {
  await virt.put('vmi', name, 'softreboot');
  return scheduled('VMI', name, 'soft reboot');
}

export async function reset(virt: VirtApi, name: string): Promise<string> {
  await virt.put('vmi', name, 'reset');
  return scheduled('VMI', name, 'reset');
}

/** "a=b,c=d" → { a: 'b', c: 'd' }. */
export function parseSelector(text: string): Record<string, string> {
  const selector: Record<string, string> = {};
  for (const pair of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UserError(`--addedNodeSelector: "${pair}" is not key=value (expected e.g. --addedNodeSelector zone=a,disk=ssd)`);
    selector[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return selector;
}

const finalMigration = (m: VirtualMachineInstanceMigration) => m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed';

export interface MigrateOptions extends WaitOptions {
  addedNodeSelector?: Record<string, string>;
  dryRun?: boolean;
}

export async function migrate(virt: VirtApi, name: string, options: MigrateOptions): Promise<string> {
  const known = options.wait && !options.dryRun ? new Set((await virt.migrationsOf(name)).map((m) => m.metadata?.name)) : new Set<string | undefined>();
  await virt.put('vm', name, 'migrate', { ...(options.addedNodeSelector ? { addedNodeSelector: options.addedNodeSelector } : {}), ...dryRunBody(options.dryRun) });
  const line = scheduled('VM', name, 'migrate', options.dryRun);
  if (!options.wait || options.dryRun) return line;
  let migrationName: string | undefined;
  const took = await waitUntil({
    subject: `vm/${name}`,
    goal: 'to finish migrating',
    timeoutMs: options.timeoutMs,
    sink: options.sink,
    explain: async () => {
      const migration = (await virt.migrationsOf(name)).find((m) => m.metadata?.name === migrationName);
      const conditions = (migration?.status?.conditions ?? []).map((c) => `${c.type}=${c.status}${c.message ? ` (${c.message})` : ''}`);
      const about = migration ? `migration ${migrationName ?? ''} is ${migration.status?.phase ?? 'Pending'}${conditions.length > 0 ? ` with ${conditions.join(', ')}` : ''}; ` : 'no migration object was seen; ';
      return about + (await explainVm(virt, name)());
    },
    observe: async () => {
      const migration = (await virt.migrationsOf(name)).find((m) => !known.has(m.metadata?.name));
      if (!migration) return { phase: 'Pending', done: false };
      migrationName = migration.metadata?.name;
      const phase = migration.status?.phase ?? 'Pending';
      const reason = migration.status?.conditions?.find((c) => c.status === 'True' && /Fail|Abort/.test(c.type))?.message;
      return { phase, done: phase === 'Succeeded', ...(phase === 'Failed' ? { failed: `migration ${migrationName ?? ''} failed${reason ? `: ${reason}` : ''}` } : {}) };
    },
  });
  return `${line}; migrated after ${seconds(took)}`;
}

/** Deletes the migration of the VMI that has not finished, as virtctl migrate-cancel does. */
export async function migrateCancel(virt: VirtApi, name: string, dryRun?: boolean): Promise<string> {
  const active = (await virt.migrationsOf(name)).find((m) => !finalMigration(m));
  if (!active?.metadata?.name) throw new UserError(`VM "${name}" has no migration in progress to cancel in namespace "${virt.namespace}"`);
  await virt.deleteMigration(active.metadata.name, Boolean(dryRun));
  return `${scheduled('VM', name, 'migrate-cancel', dryRun)} (migration ${active.metadata.name} deleted)`;
}
