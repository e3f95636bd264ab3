// The domain: one QEMU process for one VMI, and its state machine.
//
//   Pending ──start──▶ Starting ──QMP up──▶ Running ◀──cont/stop──▶ Paused
//                         │                   │
//                         ▼                   ▼ shutdown (ACPI, grace) / kill / guest poweroff
//                       Failed            ShuttingDown ──QEMU exits──▶ Succeeded | Failed
//
// Every change is an event (DomainEvent) pushed to subscribers; a failure carries the step that
// failed and QEMU's last stderr lines.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { chooseAccelerator } from './accel.js';
import type { AccelDecision } from './accel.js';
import type { LauncherConfig } from './config.js';
import { socketPaths } from './config.js';
import { GuestAgent } from './guest-agent.js';
import { sleep } from '../runtime/sleep.js';
import type { VirtualMachineInstanceFileSystem, VirtualMachineInstanceGuestOSUser } from '../runtime/api/kubevirt/v1/subresources.js';
import { passtCommands, portForwardTarget, qemuArgs } from './qemu-args.js';
import type { QemuContext } from './qemu-args.js';
import { QmpClient, qmp } from './qmp.js';
import { OutgoingMigration, migrationCapabilities, migrationProgress } from './migration.js';
import { MigrationOutlet, QemuStreamRelay } from './migration-out.js';
import { DiskMirrors, exportDisksForIncoming, mirroredDiskNodes, stopDiskExports } from './disk-mirror.js';
import type { DomainCondition, DomainError, DomainEvent, DomainPhase, DomainStatus, GuestInfo, MigrateArgs, MigrationProgress, MigrationResult, QmpEvent, StartStep } from '../runtime/contracts/launcher-protocol.js';
import { SCREENSHOT_MAX_BYTES, SERIAL_LOG_TAIL_BYTES } from '../runtime/contracts/launcher-protocol.js';
import { kernelBootFiles, prepareVolumes } from './volumes.js';
import type { VolumeStatus } from './volumes.js';
import type { LauncherVmi } from './vmi.js';
import { canonicalJson } from '../runtime/json.js';
import { LineSplitter } from './lines.js';

export type { DomainCondition, DomainError, DomainEvent, DomainPhase, DomainStatus, StartStep } from '../runtime/contracts/launcher-protocol.js';

const STDERR_LINES = 20;
/** How long a `migrate` waits for the domain's previous migration to finish ending. */
const PREVIOUS_MIGRATION_WAIT_MS = 30_000;

export class Domain extends EventEmitter {
  private phase: DomainPhase = 'Pending';
  private reason: string | undefined;
  private qemuStatus: string | undefined;
  private accel: AccelDecision | undefined;
  private child: ChildProcess | undefined;
  private helpers: ChildProcess[] = [];
  private qmpClient: QmpClient | undefined;
  private volumes: VolumeStatus[] = [];
  private guest: GuestInfo | undefined;
  private error: DomainError | undefined;
  private exitInfo: { code: number | null; signal: string | null } | undefined;
  private readonly stderrTail: string[] = [];
  private stopRequested: 'shutdown' | 'kill' | undefined;
  private exited: Promise<void> | undefined;
  private agentTimer: NodeJS.Timeout | undefined;
  private readonly agent: GuestAgent;
  /** The automatic thaw of a freeze with an unfreezeTimeout (KubeVirt's safety unfreeze). */
  private unfreezeTimer: NodeJS.Timeout | undefined;
  /**
   * The last users and filesystems the agent listed: a frozen agent refuses to list them, and
   * KubeVirt then answers from what it read before, as this does.
   */
  private lastUsers: VirtualMachineInstanceGuestOSUser[] | undefined;
  private lastFilesystems: VirtualMachineInstanceFileSystem[] | undefined;
  private starting: Promise<DomainStatus> | undefined;
  /** An ACPI soft reboot was asked for: the guest's next power-off is turned into a reset. */
  private acpiRebootPending = false;
  /** Between the guest's power-off and its resumption during an ACPI soft reboot. */
  private acpiRebooting = false;
  /** The outgoing migration while one runs (this domain is its source). */
  private outgoing: OutgoingMigration | undefined;
  /** Resolves once the outgoing migration has ended and everything of it is closed. */
  private outgoingEnded: Promise<void> | undefined;
  /** migration-out.sock, where the source's node handler connects before it asks to migrate. */
  private readonly migrationOut: MigrationOutlet;
  /** migration-disks-out.sock: the handler's connections for the disk streams, one per mirrored disk. */
  private readonly migrationDisksOut: MigrationOutlet;
  /** The format nodes of the pod-local disks a migration copies (disk-mirror.ts). */
  private mirrorNodes: string[] = [];
  /** A migration target exports those disks until its incoming migration ended. */
  private exportingDisks = false;
  /** A migration target held stopped (-S) until its disk exports are gone (finishIncoming). */
  private startAfterIncoming = false;
  /** An outgoing migration completed: the guest runs on the target, this copy must never run again. */
  private migratedAway = false;
  readonly sockets: ReturnType<typeof socketPaths>;

  /**
   * @param imagesReady resolves when the files of the containerDisk and kernelBoot images are in
   *   place (the image copies beside the launcher, launcher/image-copies.ts); absent when they are
   *   there from the start.
   */
  constructor(
    readonly vmi: LauncherVmi,
    private readonly config: LauncherConfig,
    private readonly log: Logger,
    private readonly imagesReady?: Promise<void>,
  ) {
    super();
    this.sockets = socketPaths(config.runDir);
    this.agent = new GuestAgent(this.sockets.guestAgent);
    this.migrationOut = new MigrationOutlet(this.sockets.migrationOut, log.child({ migration: 'outgoing' }), { accepted: () => ({ ok: true, disks: this.mirrorNodes.length }) });
    this.migrationDisksOut = new MigrationOutlet(this.sockets.migrationDisksOut, log.child({ migration: 'outgoing' }), { capacity: () => this.mirrorNodes.length, peerSpeaksFirst: true });
  }

  status(): DomainStatus {
    const s: DomainStatus = {
      vmi: { name: this.vmi.metadata.name, namespace: this.vmi.metadata.namespace ?? 'default' },
      phase: this.phase,
      volumes: this.volumes,
      conditions: this.conditions(),
    };
    if (this.vmi.metadata.uid !== undefined) s.vmi.uid = this.vmi.metadata.uid;
    if (this.reason !== undefined) s.reason = this.reason;
    if (this.qemuStatus !== undefined) s.qemuStatus = this.qemuStatus;
    if (this.accel) s.accelerator = this.accel;
    if (this.child?.pid !== undefined && !this.exitInfo) s.qemuPid = this.child.pid;
    if (this.guest) s.guestInfo = this.guest;
    if (this.error) s.error = this.error;
    if (this.exitInfo) s.exit = this.exitInfo;
    return s;
  }

  /** QEMU's last stderr lines, newest last. */
  qemuStderr(): string[] {
    return [...this.stderrTail];
  }

  private conditions(): DomainCondition[] {
    const c: DomainCondition[] = [];
    if (this.accel) {
      // KubeVirt has no condition for this; the handler maps it to a VMI condition and an Event.
      c.push({
        type: 'Emulated',
        status: this.accel.accel === 'tcg' ? 'True' : 'False',
        reason: this.accel.accel === 'tcg' ? 'TCG' : 'KVM',
        message: this.accel.reason,
      });
    }
    if (this.phase === 'Paused') {
      const io = this.qemuStatus === 'io-error';
      c.push({ type: 'Paused', status: 'True', reason: io ? 'PausedIOError' : 'PausedByUser', message: io ? 'VMI was paused, I/O error' : 'VMI was paused by user' });
    }
    if (this.guest?.agentConnected) c.push({ type: 'AgentConnected', status: 'True', reason: 'AgentConnected', message: 'the guest agent answers' });
    return c;
  }

  private publish(event: { type: 'status' } | { type: 'error'; error: DomainError } | { type: 'qemu-event'; qemuEvent: QmpEvent } | { type: 'migration'; progress: MigrationProgress }): void {
    const full: DomainEvent = { ...event, at: new Date().toISOString(), status: this.status() };
    this.emit('event', full);
  }

  private setPhase(phase: DomainPhase, reason?: string): void {
    if (this.phase === phase && this.reason === reason) return;
    this.log.info({ from: this.phase, to: phase, reason }, 'domain phase');
    this.phase = phase;
    this.reason = reason;
    this.publish({ type: 'status' });
  }

  private fail(step: DomainError['step'], message: string): DomainError {
    const error: DomainError = { step, message, qemuStderr: this.qemuStderr() };
    this.error = error;
    this.log.error({ step, err: message, qemuStderr: error.qemuStderr }, 'domain failed');
    this.publish({ type: 'error', error });
    return error;
  }

  /** Prepares and starts the domain once; later calls return the same outcome (sync is idempotent). */
  start(options: { incoming?: { postCopy?: boolean | undefined } } = {}): Promise<DomainStatus> {
    this.starting ??= this.doStart(options);
    return this.starting;
  }

  private async doStart(options: { incoming?: { postCopy?: boolean | undefined } }): Promise<DomainStatus> {
    this.setPhase('Starting');
    let step: StartStep = 'accelerator';
    try {
      this.accel = await chooseAccelerator({ kvmDevice: this.config.kvmDevice, allowEmulation: this.config.allowEmulation, mode: this.config.accel, qemuBinary: this.config.qemuBinary });
      this.log.info({ accel: this.accel }, 'accelerator chosen');
      step = 'volumes';
      await this.imagesReady;
      await mkdir(this.config.runDir, { recursive: true, mode: 0o700 });
      await mkdir(this.config.ephemeralDir, { recursive: true, mode: 0o700 });
      const prepared = await prepareVolumes(this.vmi, {
        ephemeralDir: this.config.ephemeralDir,
        containerDiskDir: this.config.containerDiskDir,
        pvcDir: this.config.pvcDir,
        blockDeviceDir: this.config.blockDeviceDir,
        secrets: {
          userData: (v) => path.join(this.config.secretDir, v),
          networkData: (v) => path.join(this.config.secretDir, `${v}-ndata`),
        },
        qemuImg: this.config.qemuImg,
        xorriso: this.config.xorriso,
      });
      this.volumes = prepared.status;
      this.mirrorNodes = mirroredDiskNodes(this.vmi, prepared.disks);
      const kernelBoot = await kernelBootFiles(this.vmi, this.config.kernelBootDir);
      step = 'qemu-args';
      const ctx: QemuContext = { accel: this.accel.accel, sockets: this.sockets, disks: prepared.disks, sandbox: this.config.sandbox };
      if (kernelBoot) ctx.kernelBoot = kernelBoot;
      const args = qemuArgs(this.vmi, ctx);
      // A target whose disks come by NBD stays stopped after the stream (-S, late-block-activate)
      // until its exports are gone; finishIncoming() then starts it.
      this.startAfterIncoming = options.incoming !== undefined && this.mirrorNodes.length > 0 && !args.includes('-S');
      if (options.incoming) args.push('-incoming', 'defer');
      if (this.startAfterIncoming) args.push('-S');
      step = 'network';
      await this.startPasst();
      step = 'qemu-start';
      for (const s of [this.sockets.qmp, this.sockets.serial, this.sockets.vnc, this.sockets.guestAgent, this.sockets.migrationIn, this.sockets.migrationQemu, this.sockets.migrationDisksIn]) await rm(s, { force: true });
      await this.migrationOut.listen();
      if (this.mirrorNodes.length > 0) await this.migrationDisksOut.listen();
      await this.spawnQemu(args);
      step = 'qmp-connect';
      await this.connectQmp();
      if (options.incoming) {
        const { postCopy } = options.incoming;
        await this.qmpExec((c) => qmp.migrateSetCapabilities(c, migrationCapabilities({ postCopy, lateBlockActivate: this.startAfterIncoming })));
        await this.qmpExec((c) => exportDisksForIncoming(c, this.mirrorNodes, this.sockets.migrationDisksIn));
        this.exportingDisks = this.mirrorNodes.length > 0;
        await this.qmpExec((c) => qmp.migrateIncoming(c, `unix:${this.sockets.migrationIn}`));
        this.setPhase('Paused', 'MigrationTarget');
      } else {
        const st = await this.qmpExec(qmp.queryStatus);
        this.qemuStatus = st.status;
        this.setPhase(st.running ? 'Running' : 'Paused', st.running ? undefined : 'StartPaused');
      }
      this.pollGuestAgent();
    } catch (err) {
      // QEMU may have printed its reason just before exiting: give its stderr a moment to arrive.
      if (this.child && !this.exitInfo) await Promise.race([this.exited, sleep(500)]);
      else await sleep(50);
      const error = this.fail(step, (err as Error).message);
      await this.kill().catch(() => undefined);
      this.setPhase('Failed', `StartFailed:${step}`);
      this.error = error;
    }
    return this.status();
  }

  private async startPasst(): Promise<void> {
    // Built and checked beside QEMU's command line: absent interfaces get no passt, ports are numbers.
    for (const { iface, socket: sock, args } of passtCommands(this.vmi, this.sockets)) {
      await rm(sock, { force: true });
      const child = spawn(this.config.passt, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      const lines = new LineSplitter((line) => {
        if (line.trim()) this.log.info({ passt: iface, line: line.trim() }, 'passt');
      });
      child.stderr?.on('data', (chunk: Buffer) => lines.write(chunk));
      child.stderr?.on('end', () => lines.end());
      this.helpers.push(child);
      // Not a test connection: with --one-off passt serves exactly one and would then exit.
      await waitFor(async () => (await stat(sock).then(() => true, () => false)) || child.exitCode !== null, 5000, `passt socket ${sock}`);
      if (child.exitCode !== null) throw new Error(`passt for interface ${iface} exited with ${child.exitCode}`);
    }
  }

  private spawnQemu(args: string[]): Promise<void> {
    const [cmd, ...prefix] = [...this.config.qemuWrapper, this.config.qemuBinary];
    const argv = [...prefix, ...args];
    this.log.info({ cmd, argv }, 'starting QEMU');
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const onLine = (line: string) => {
      if (!line.trim()) return;
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_LINES) this.stderrTail.shift();
      this.log.warn({ qemu: line }, 'qemu output');
    };
    // One splitter per stream: a line is never made of pieces of both.
    const outputs = [child.stderr, child.stdout].map((stream) => {
      const lines = new LineSplitter(onLine);
      stream?.on('data', (chunk: Buffer) => lines.write(chunk));
      return lines;
    });
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': by then QEMU's last stderr lines have been read.
      child.on('close', (code, signal) => {
        for (const lines of outputs) lines.end();
        this.exitInfo = { code, signal };
        this.onQemuExit(code, signal);
        resolve();
      });
    });
    return new Promise((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => reject(new Error(`cannot run ${cmd}: ${err.message}`)));
    });
  }

  private onQemuExit(code: number | null, signal: string | null): void {
    clearTimeout(this.agentTimer);
    clearTimeout(this.unfreezeTimer);
    for (const h of this.helpers) h.kill('SIGTERM');
    this.qmpClient?.close();
    void this.migrationOut.close().catch((error: unknown) => this.log.warn({ err: error }, 'could not close migration-out.sock'));
    void this.migrationDisksOut.close().catch((error: unknown) => this.log.warn({ err: error }, 'could not close migration-disks-out.sock'));
    this.log.info({ code, signal, requested: this.stopRequested }, 'QEMU exited');
    if (this.phase === 'Starting' || this.phase === 'Failed') return; // doStart reports it
    // As KubeVirt: a domain that was shut down or destroyed on request ends Succeeded (reason
    // Shutdown / Destroyed), one whose guest powered off too; only an unrequested exit is Failed.
    if (this.stopRequested === 'kill') {
      this.setPhase('Succeeded', 'Destroyed');
    } else if (code === 0) {
      this.setPhase('Succeeded', this.stopRequested === 'shutdown' ? 'Shutdown' : 'GuestShutdown');
    } else {
      this.fail('runtime', `QEMU exited unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`);
      this.setPhase('Failed', 'Crashed');
    }
  }

  private async connectQmp(): Promise<void> {
    const exitedDuringStart = () => {
      const e = this.exitInfo;
      return e ? new Error(`QEMU exited during start (${e.signal ? `signal ${e.signal}` : `exit code ${e.code}`})`) : undefined;
    };
    await waitFor(async () => this.exitInfo !== undefined || (await canConnect(this.sockets.qmp)), 30_000, 'QEMU QMP socket');
    const early = exitedDuringStart();
    if (early) throw early;
    let client: QmpClient;
    try {
      client = await QmpClient.connect(this.sockets.qmp);
    } catch (err) {
      // QEMU opens its sockets before it validates everything (e.g. the CPU model): a connection
      // reset here usually means it is exiting, and its exit is the error worth reporting.
      await Promise.race([this.exited, sleep(2000)]);
      throw exitedDuringStart() ?? err;
    }
    this.qmpClient = client;
    client.on('event', (e: QmpEvent) => this.onQmpEvent(e));
  }

  private onQmpEvent(e: QmpEvent): void {
    this.log.debug({ event: e.event, data: e.data }, 'qmp event');
    this.publish({ type: 'qemu-event', qemuEvent: e });
    switch (e.event) {
      case 'STOP':
        // The stop QEMU makes on the way through an ACPI soft reboot is no pause.
        if (!this.acpiRebooting) void this.refreshStatus('Paused');
        break;
      case 'RESUME':
        this.qemuStatus = 'running';
        if (this.phase === 'Paused' || this.phase === 'Starting') this.setPhase('Running');
        break;
      case 'SHUTDOWN':
        if (this.acpiRebootPending && e.data?.['guest'] === true && !this.stopRequested) {
          void this.finishAcpiReboot();
          break;
        }
        this.qemuStatus = 'shutdown';
        this.setPhase('ShuttingDown', typeof e.data?.['reason'] === 'string' ? e.data['reason'] : 'shutdown');
        break;
      case 'MIGRATION':
        if (e.data?.['status'] === 'completed' && this.phase === 'Paused' && this.reason === 'MigrationTarget') void this.finishIncoming();
        break;
    }
  }

  /** The incoming migration completed: the exports go, then the guest runs (if -S held it). */
  private async finishIncoming(): Promise<void> {
    await this.stopDiskExports();
    if (this.startAfterIncoming) {
      this.startAfterIncoming = false;
      await this.qmpExec(qmp.cont).catch((error: unknown) => this.log.error({ err: error }, 'could not start the guest after its incoming migration'));
    }
    await this.refreshStatus('Running');
  }

  /** The incoming migration ended: the disks are the guest's alone again. */
  private async stopDiskExports(): Promise<void> {
    if (!this.exportingDisks) return;
    this.exportingDisks = false;
    await this.qmpExec((c) => stopDiskExports(c, this.mirrorNodes, this.log)).catch(() => undefined);
  }

  private async refreshStatus(expected: DomainPhase): Promise<void> {
    try {
      const st = await this.qmpExec(qmp.queryStatus);
      this.qemuStatus = st.status;
      if (this.phase === 'ShuttingDown') return;
      this.setPhase(st.running ? 'Running' : expected === 'Running' ? 'Paused' : expected, st.running ? undefined : st.status === 'paused' ? 'PausedByUser' : st.status);
    } catch {
      // QEMU is going away; its exit decides the phase
    }
  }

  private qmpExec<T>(fn: (c: QmpClient) => Promise<T>): Promise<T> {
    if (!this.qmpClient || this.qmpClient.isClosed) return Promise.reject(new Error('QEMU is not running'));
    return fn(this.qmpClient);
  }

  async pause(): Promise<DomainStatus> {
    this.requireRunning();
    await this.qmpExec(qmp.stop);
    await this.refreshStatus('Paused');
    return this.status();
  }

  async unpause(): Promise<DomainStatus> {
    this.requireRunning();
    const held = await this.migrationHold();
    if (held) throw new Error(`the guest cannot be unpaused: ${held}`);
    await this.qmpExec(qmp.cont);
    await this.refreshStatus('Running');
    return this.status();
  }

  async reset(): Promise<DomainStatus> {
    this.requireRunning();
    await this.qmpExec(qmp.systemReset);
    return this.status();
  }

  /**
   * The guest's own orderly reboot, as KubeVirt's soft reboot: through the guest agent
   * (guest-shutdown, mode reboot) when one answers, otherwise through ACPI. ACPI has no reboot
   * button, so, as libvirt's VIR_DOMAIN_REBOOT_ACPI_POWER_BTN does, the guest gets the power button
   * with QEMU told to stop rather than exit when the guest powers off; the guest's shutdown runs,
   * and its power-off is turned into a reset and a resume. A guest that ignores the power button
   * is not rebooted (nor is it with KubeVirt); `reset` is the hard reset.
   */
  async softReboot(): Promise<{ method: 'guest-agent' | 'acpi'; status: DomainStatus }> {
    if (this.phase !== 'Running') throw new Error(`the domain is ${this.phase}, not Running: a soft reboot needs a running guest`);
    // Its last step resumes the guest (finishAcpiReboot), which a migration may not see.
    const held = await this.migrationHold();
    if (held) throw new Error(`the guest cannot be rebooted now: ${held}`);
    if (await this.agent.requestReboot()) {
      this.log.info('soft reboot through the guest agent');
      return { method: 'guest-agent', status: this.status() };
    }
    if (this.vmi.spec.domain.features?.acpi?.enabled === false) {
      throw new Error('no guest agent is connected and ACPI is disabled (spec.domain.features.acpi.enabled: false): the guest cannot be asked to reboot; use reset for a hard reset');
    }
    await this.qmpExec((c) => qmp.setShutdownAction(c, 'pause'));
    this.acpiRebootPending = true;
    await this.qmpExec(qmp.systemPowerdown);
    this.log.info('soft reboot through ACPI: power button sent');
    return { method: 'acpi', status: this.status() };
  }

  /** The guest powered off during an ACPI soft reboot (QEMU stopped it): reset and resume it. */
  private async finishAcpiReboot(): Promise<void> {
    this.acpiRebootPending = false;
    this.acpiRebooting = true;
    try {
      await this.qmpExec(qmp.systemReset);
      await this.qmpExec((c) => qmp.setShutdownAction(c, 'poweroff'));
      await this.qmpExec(qmp.cont);
      this.log.info('soft reboot through ACPI: the guest powered off; reset and resumed');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'completing an ACPI soft reboot failed');
    } finally {
      this.acpiRebooting = false;
    }
    await this.refreshStatus('Running');
  }

  /** Undoes a pending ACPI soft reboot, so a power-off from now on ends QEMU as it should. */
  private async cancelAcpiReboot(): Promise<void> {
    if (!this.acpiRebootPending) return;
    this.acpiRebootPending = false;
    await this.qmpExec((c) => qmp.setShutdownAction(c, 'poweroff')).catch((err: Error) => this.log.warn({ err: err.message }, 'restoring the shutdown action failed'));
  }

  /**
   * Why the guest's vCPUs may not be resumed here now (QMP cont), or undefined when they may. A
   * guest that a migration holds stopped must stay so: while the source waits at pre-switchover
   * (finish-migrate, its disk mirrors completing) its memory has been sent up to that stop, and a
   * guest resumed there writes memory the target never receives (the target's guest then runs on
   * corrupted memory); once it migrated, the guest runs on the target, and a second copy here
   * would run it twice; an incoming guest is not whole yet. Only the migration's own code
   * resumes a guest in these states (resumeAfterMigration, finishIncoming).
   */
  private async migrationHold(): Promise<string | undefined> {
    if (this.outgoingEnded) return 'it is migrating to another node (it runs on here by itself should the migration fail)';
    if (this.migratedAway) return 'it migrated to another node and runs there; this copy stays stopped until it is removed';
    if (this.phase === 'Paused' && this.reason === 'MigrationTarget') return 'it is still arriving by a migration';
    const { status } = await this.qmpExec(qmp.queryStatus);
    if (status === 'inmigrate') return 'it is still arriving by a migration';
    if (status === 'finish-migrate') return 'QEMU is completing a migration of it';
    return undefined;
  }

  private requireRunning(): void {
    if (this.phase !== 'Running' && this.phase !== 'Paused') throw new Error(`the domain is ${this.phase}, not running`);
  }

  /**
   * ACPI power button, then up to `graceSeconds` for the guest to power off; after that QEMU is
   * told to quit, and killed if it does not. Resolves when QEMU is gone.
   */
  async shutdown(graceSeconds = this.vmi.spec.terminationGracePeriodSeconds ?? 30): Promise<{ graceful: boolean; status: DomainStatus }> {
    if (!this.child || this.exitInfo) return { graceful: true, status: this.status() };
    this.stopRequested ??= 'shutdown';
    await this.cancelAcpiReboot();
    // A migration under way from here ends first (cancelled: the guest then runs on here and is
    // shut down as any other), so that the guest is never resumed in the middle of it. One that is
    // still opening its relays is cancellable a moment later.
    const opening = Date.now() + 5000;
    while (this.outgoingEnded && !this.outgoing && Date.now() < opening) await sleep(50);
    if (this.outgoing) {
      await this.outgoing.cancel().catch((err: Error) => this.log.warn({ err: err.message }, 'cancelling the outgoing migration before the shutdown failed'));
      await Promise.race([this.outgoingEnded, sleep(PREVIOUS_MIGRATION_WAIT_MS)]);
    }
    // A guest a migration holds (migrated away, still arriving) has nothing to shut down here:
    // QEMU goes without the guest running again.
    const held = await this.migrationHold().catch(() => undefined);
    if (held) {
      this.log.info({ reason: held }, 'shutdown: the guest is not resumed here; stopping QEMU');
      this.stopRequested = 'kill';
      await this.kill();
      return { graceful: true, status: this.status() };
    }
    // A paused guest cannot see the power button: let it run to act on it.
    if (this.qemuStatus !== 'running') await this.qmpExec(qmp.cont).catch(() => undefined);
    await this.qmpExec(qmp.systemPowerdown).catch((err: Error) => this.log.warn({ err: err.message }, 'system_powerdown failed'));
    if (this.phase === 'Running' || this.phase === 'Paused') this.setPhase('ShuttingDown', 'ACPIPowerdown');
    // sleep waits however long: a grace period past setTimeout's 24.8 days must not kill at once.
    const graceful = await Promise.race([this.exited?.then(() => true), sleep(graceSeconds * 1000).then(() => false)]);
    if (!graceful) {
      this.log.warn({ graceSeconds }, 'guest did not power off within the grace period; stopping QEMU');
      this.stopRequested = 'kill';
      await this.kill();
    }
    return { graceful: graceful === true, status: this.status() };
  }

  /** QMP quit, then SIGKILL after 5 s. Resolves when QEMU is gone. */
  async kill(): Promise<DomainStatus> {
    clearTimeout(this.agentTimer);
    if (this.child && !this.exitInfo) {
      if (this.stopRequested !== 'shutdown' || this.phase === 'ShuttingDown') this.stopRequested = 'kill';
      await this.qmpExec(qmp.quit).catch(() => undefined);
      const gone = await Promise.race([this.exited?.then(() => true), sleep(5000).then(() => false)]);
      if (!gone && !this.exitInfo) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    for (const h of this.helpers) if (h.exitCode === null) h.kill('SIGKILL');
    return this.status();
  }

  async guestInfo(): Promise<GuestInfo> {
    this.requireRunning();
    this.updateGuest(await this.agent.readGuestInfo());
    return this.guest ?? { agentConnected: false, interfaces: [] };
  }

  private updateGuest(read: GuestInfo): void {
    // A frozen agent answers only guest-info and the freeze commands: what it said before the
    // freeze about the OS, host name and interfaces still holds.
    const previous = this.guest;
    const info: GuestInfo =
      read.fsFreezeStatus === 'frozen' && previous?.agentConnected
        ? { ...read, ...(previous.os ? { os: previous.os } : {}), ...(previous.hostname !== undefined ? { hostname: previous.hostname } : {}), interfaces: previous.interfaces }
        : read;
    const changed = canonicalJson(info) !== canonicalJson(previous);
    this.guest = info;
    if (changed) this.publish({ type: 'status' });
  }

  private setFreezeStatus(fsFreezeStatus: 'frozen' | 'thawed'): void {
    if (this.guest?.agentConnected) this.updateGuest({ ...this.guest, fsFreezeStatus });
  }

  /**
   * Freezes the guest's filesystems through its agent (KubeVirt's FreezeVMI): a no-op when they are
   * frozen already. With `unfreezeTimeoutSeconds` > 0 the launcher thaws them itself that long
   * after the freeze unless `unfreeze` came first, so a backup tool that dies mid-snapshot cannot
   * leave the guest frozen.
   */
  async freeze(unfreezeTimeoutSeconds: number): Promise<{ fsFreezeStatus: 'frozen' }> {
    this.requireRunning();
    if (this.outgoing) throw new Error('failed to freeze VMI, VMI is currently during migration');
    const { frozen } = await this.agent.freeze();
    this.setFreezeStatus('frozen');
    if (frozen === undefined) return { fsFreezeStatus: 'frozen' };
    this.log.info({ filesystems: frozen, unfreezeTimeoutSeconds }, 'guest filesystems frozen');
    clearTimeout(this.unfreezeTimer);
    this.unfreezeTimer = undefined;
    if (unfreezeTimeoutSeconds > 0) {
      this.unfreezeTimer = setTimeout(() => {
        this.unfreezeTimer = undefined;
        this.log.warn({ unfreezeTimeoutSeconds }, 'unfreeze was not called within the unfreeze timeout; thawing the guest filesystems');
        this.agent.thaw().then(
          () => this.setFreezeStatus('thawed'),
          (err: Error) => this.log.warn({ err: err.message }, 'the automatic thaw failed'),
        );
      }, unfreezeTimeoutSeconds * 1000);
    }
    return { fsFreezeStatus: 'frozen' };
  }

  /** Thaws the guest's filesystems (a no-op when they are thawed) and cancels the automatic thaw. */
  async unfreeze(): Promise<{ fsFreezeStatus: 'thawed' }> {
    this.requireRunning();
    clearTimeout(this.unfreezeTimer);
    this.unfreezeTimer = undefined;
    const { thawed } = await this.agent.thaw();
    if (thawed !== undefined) this.log.info({ filesystems: thawed }, 'guest filesystems thawed');
    this.setFreezeStatus('thawed');
    return { fsFreezeStatus: 'thawed' };
  }

  /** Whether an automatic thaw is pending (for tests and logs). */
  get unfreezePending(): boolean {
    return this.unfreezeTimer !== undefined;
  }

  async guestUsers(): Promise<{ items: VirtualMachineInstanceGuestOSUser[] }> {
    this.requireRunning();
    return { items: (this.lastUsers = await this.listOrLast(() => this.agent.users(), this.lastUsers)) };
  }

  async guestFilesystems(): Promise<{ items: VirtualMachineInstanceFileSystem[] }> {
    this.requireRunning();
    return { items: (this.lastFilesystems = await this.listOrLast(() => this.agent.filesystems(), this.lastFilesystems)) };
  }

  /** A fresh list from the agent; while it is frozen (and refuses to list), the last one read. */
  private async listOrLast<T>(read: () => Promise<T>, last: T | undefined): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (last !== undefined && this.guest?.fsFreezeStatus === 'frozen') return last;
      throw error;
    }
  }

  private pollGuestAgent(): void {
    const seconds = this.config.guestAgentPollSeconds;
    if (!(seconds > 0)) return;
    const tick = async () => {
      if (this.phase === 'Running') this.updateGuest(await this.agent.readGuestInfo(2000));
      if (!this.exitInfo) this.agentTimer = setTimeout(() => void tick(), seconds * 1000);
    };
    this.agentTimer = setTimeout(() => void tick(), seconds * 1000);
  }

  /**
   * Migrates the domain out over the node handler's connection waiting on `migration-out.sock`
   * (already carried to the target node): QEMU migrates to this launcher's private
   * `migration-qemu.sock` and the relay joins the two (launcher/migration-out.ts). Resolves when the
   * migration has ended, the relay torn down. A failed or aborted migration leaves the guest running
   * here: QEMU resumes it itself, and it is resumed here should QEMU have left it stopped.
   */
  async migrate(args: MigrateArgs): Promise<MigrationResult> {
    if (this.phase !== 'Running') throw new Error(`the domain is ${this.phase}: only a Running domain is migrated`);
    // The last migration may still be ending (a cancel unwinding its disk mirrors and relays)
    // when the node handler, told it ended, starts the next: wait for it, for a while.
    if (this.outgoingEnded) await Promise.race([this.outgoingEnded, sleep(PREVIOUS_MIGRATION_WAIT_MS)]);
    if (this.outgoing || this.outgoingEnded) throw new Error('a migration of this domain is already running');
    const client = this.qmpClient;
    if (!client || client.isClosed) throw new Error('QEMU is not running');
    const log = this.log.child({ migration: 'outgoing' });
    const handler = this.migrationOut.take();
    let ended: () => void = () => undefined;
    this.outgoingEnded = new Promise<void>((resolve) => (ended = resolve));
    let diskHandlers: net.Socket[] = [];
    let relay: QemuStreamRelay | undefined;
    const diskRelays: QemuStreamRelay[] = [];
    try {
      diskHandlers = this.mirrorNodes.length > 0 ? this.migrationDisksOut.takeAll(this.mirrorNodes.length) : [];
      relay = await QemuStreamRelay.open(this.sockets.migrationQemu, handler, log);
      const diskSockets = new Map<string, string>();
      for (const [i, node] of this.mirrorNodes.entries()) {
        const diskRelay = await QemuStreamRelay.open(this.sockets.migrationDiskQemu(node), diskHandlers[i] as net.Socket, log.child({ disk: node }));
        diskRelays.push(diskRelay);
        diskSockets.set(node, diskRelay.socketPath);
      }
      const mirrors = new DiskMirrors(client, diskSockets, log);
      const migration = new OutgoingMigration(client, relay.uri, args, {
        log,
        onProgress: (progress) => this.publish({ type: 'migration', progress }),
      }, mirrors);
      this.outgoing = migration;
      const result = await migration.run();
      for (const diskRelay of diskRelays) await diskRelay.finish(result.outcome === 'Succeeded');
      const relayed = await relay.finish(result.outcome === 'Succeeded');
      this.log.info({ outcome: result.outcome, reason: result.reason, progress: result.progress, relay: relayed }, 'migration ended');
      if (result.outcome === 'Succeeded') {
        // The source stays paused (postmigrate) until the handler kills it.
        this.migratedAway = true;
        await this.refreshStatus('Paused');
      } else {
        await this.resumeAfterMigration();
      }
      return { ...result, relay: relayed };
    } finally {
      this.outgoing = undefined;
      // However it ended (a QMP error, QEMU gone): nothing of this migration stays open.
      if (relay) await relay.finish(false);
      for (const diskRelay of diskRelays) await diskRelay.finish(false);
      handler.destroy();
      for (const socket of diskHandlers) socket.destroy();
      this.outgoingEnded = undefined;
      ended();
    }
  }

  private async resumeAfterMigration(): Promise<void> {
    const st = await this.qmpExec(qmp.queryStatus);
    const userPaused = this.reason === 'PausedByUser';
    if (!st.running && userPaused) {
      // Still the user's pause (QEMU calls it postmigrate): the user's unpause resumes it.
      this.qemuStatus = st.status;
      this.setPhase('Paused', 'PausedByUser');
      return;
    }
    if (!st.running) {
      this.log.warn({ qemuStatus: st.status }, 'QEMU left the guest stopped after a failed migration; resuming it');
      await this.qmpExec(qmp.cont);
    }
    await this.refreshStatus('Running');
  }

  async queryMigration(): Promise<MigrationProgress> {
    return migrationProgress(await this.qmpExec(qmp.queryMigrate));
  }

  /** Aborts the outgoing migration; its `migrate` then answers Aborted. */
  async migrateCancel(): Promise<MigrationProgress> {
    if (!this.outgoing) throw new Error('no outgoing migration is running');
    await this.outgoing.cancel();
    return this.queryMigration();
  }

  /** The QEMU process has exited (or never ran). */
  get stopped(): boolean {
    return this.phase === 'Succeeded' || this.phase === 'Failed';
  }

  /** Resolves when QEMU has exited. */
  async waitExited(): Promise<void> {
    await this.exited;
  }

  /**
   * A TCP connection to `port` of the guest, for port-forwarding (KubeVirt's port-forward reaches
   * the first interface). With slirp (masquerade, slirp bindings) a hostfwd from a free port on
   * the pod's loopback to the guest's port is added for this connection's lifetime; with passt,
   * passt's own forwarding answers on the pod's loopback. Only the pod's own processes reach its
   * loopback. When the interface declares ports only those are forwarded, as KubeVirt's
   * masquerade forwards only declared ports when there are any.
   */
  async openPortForward(port: number): Promise<net.Socket> {
    this.requireRunning();
    const target = portForwardTarget(this.vmi);
    if (!target) throw new Error('the VMI has no interface on the pod network to forward to');
    if (target.tcpPorts.length > 0 && !target.tcpPorts.includes(port)) {
      throw new Error(`port ${port} is not one of the ports the interface declares (${target.tcpPorts.join(', ')})`);
    }
    if (target.stack === 'passt') return connectTcp(port);
    const hostPort = await freeLoopbackPort();
    const rule = `tcp:127.0.0.1:${hostPort}`;
    await this.qmpExec((c) => qmp.hmp(c, `hostfwd_add ${target.netdevId} ${rule}-:${port}`));
    const removeRule = () =>
      this.qmpExec((c) => qmp.hmp(c, `hostfwd_remove ${target.netdevId} ${rule}`)).catch((err: unknown) => this.log.warn({ err, rule }, 'could not remove a port-forward rule'));
    try {
      const socket = await connectTcp(hostPort);
      // Until slirp accepted the connection the listener must stay: it goes with the connection.
      socket.once('close', () => void removeRule());
      return socket;
    } catch (err) {
      await removeRule();
      throw err;
    }
  }

  /** A PNG of the guest's display (QMP screendump), read back and removed. */
  async screenshot(): Promise<Buffer> {
    this.requireRunning();
    if (this.vmi.spec.domain.devices.autoattachGraphicsDevice === false) throw new Error('No graphics devices are present.');
    const file = path.join(this.config.runDir, `screenshot-${process.hrtime.bigint()}.png`);
    try {
      await this.qmpExec((c) => qmp.screendump(c, file));
      const { size } = await stat(file);
      if (size > SCREENSHOT_MAX_BYTES) throw new Error(`the screenshot is ${size} bytes, more than ${SCREENSHOT_MAX_BYTES}`);
      return await readFile(file);
    } finally {
      await rm(file, { force: true });
    }
  }

  /** The tail of the serial console's log (what the guest printed on ttyS0), bounded for the protocol. */
  async serialLog(): Promise<string> {
    const file = await open(this.sockets.serialLog, 'r').catch(() => undefined);
    if (!file) return '';
    try {
      const { size } = await file.stat();
      const length = Math.min(size, SERIAL_LOG_TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, size - length);
      return buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await file.close();
    }
  }
}


function connectTcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** A loopback port nothing listens on now (the pod's network namespace is the launcher's own). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not appear within ${timeoutMs} ms`);
    await sleep(50);
  }
}
