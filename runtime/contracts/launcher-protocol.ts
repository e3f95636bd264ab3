// The launcher's command protocol (docs/launcher-protocol.md), declared once: the launcher's
// command server (launcher/command-server.ts) and its client (node-handler/launcher-client.ts)
// both take their types from these schemas and validate what they receive against them, as
// KubeVirt's virt-handler and virt-launcher share one gRPC definition. A message that fails
// validation is logged and dropped by the receiver, never thrown.
import { z } from 'zod';
import { GuestFileSystems, GuestOSUsers, VirtualMachineInstanceGuestOSInfo } from '../api/kubevirt/v1/subresources.js';
import { MIGRATION_CHANNEL_MAX_LINE_BYTES } from './migration-channel.js';

export const LAUNCHER_PROTOCOL_VERSION = 1;

/**
 * The longest line either end reads (bytes, without the newline). Every message is far smaller
 * (a status event is a few KiB); a peer sending more is broken or hostile and is disconnected.
 */
export const LAUNCHER_MAX_LINE_BYTES = 1024 * 1024;

/**
 * The most the node handler copies from a launcher's status into its VMI's status. A launcher is
 * not trusted (it may be compromised), and what it says is stored in the API server: text loses
 * its control characters and is cut (runtime/text.ts storableText), lists are cut, a condition
 * reason keeps only the characters a reason has. Whatever a launcher sends within its 1 MiB line,
 * what it puts into its VMI's status stays under 128 KiB.
 */
export const LAUNCHER_STATUS_LIMITS = {
  /** A condition reason (a CamelCase word). */
  reasonChars: 64,
  /** A condition message or a migration's failure reason. */
  messageChars: 2048,
  /** A guest OS field (name, version, kernel release, ...). */
  textChars: 256,
  /** A guest interface's name, MAC address or IP address. */
  addressChars: 64,
  /** The guest interfaces reported. */
  interfaces: 32,
  /** The IP addresses reported per guest interface. */
  addressesPerInterface: 8,
} as const;

/** `serialLog` answers with at most the last this many bytes of the console log (JSON may triple it). */
export const SERIAL_LOG_TAIL_BYTES = 128 * 1024;

/** The largest screenshot (a PNG of QEMU's display) the launcher sends; a 4K screen is far below. */
export const SCREENSHOT_MAX_BYTES = 32 * 1024 * 1024;

export const DomainPhase = z.enum(['Pending', 'Starting', 'Running', 'Paused', 'ShuttingDown', 'Succeeded', 'Failed']);
export type DomainPhase = z.infer<typeof DomainPhase>;

/** The steps of a start, in order; a failed start names the one that failed. */
export const StartStep = z.enum(['accelerator', 'volumes', 'qemu-args', 'network', 'qemu-start', 'qmp-connect']);
export type StartStep = z.infer<typeof StartStep>;

export const DomainCondition = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string(),
  message: z.string(),
});
export type DomainCondition = z.infer<typeof DomainCondition>;

export const DomainError = z.object({
  step: z.union([StartStep, z.enum(['runtime', 'command'])]),
  message: z.string(),
  /** QEMU's own last stderr lines (empty when QEMU never ran). */
  qemuStderr: z.array(z.string()),
});
export type DomainError = z.infer<typeof DomainError>;

export const AcceleratorDecision = z.object({
  accel: z.enum(['kvm', 'tcg']),
  /** Why: shown in the launcher's status and the VMI condition message. */
  reason: z.string(),
  /**
   * What the launcher's KVM probe (QEMU creating a KVM VM on this node) found, when it probed: the
   * node handler's evidence for its node's kubevm.io/kvm-verified label.
   */
  kvmProbe: z.enum(['usable', 'unusable']).optional(),
});

export const VolumeStatus = z.object({
  name: z.string(),
  /** For a containerDisk: the base image and its content digest, as the VMI status reports it. */
  containerDisk: z.object({ basePath: z.string(), digest: z.string() }).optional(),
  persistentVolumeClaim: z.object({ path: z.string(), mode: z.enum(['filesystem', 'block']), created: z.boolean() }).optional(),
});
export type VolumeStatus = z.infer<typeof VolumeStatus>;

export const GuestInterface = z.object({
  interfaceName: z.string(),
  mac: z.string().optional(),
  ipAddress: z.string().optional(),
  ipAddresses: z.array(z.string()),
});
export type GuestInterface = z.infer<typeof GuestInterface>;

/** qemu-guest-agent's guest-fsfreeze-status. */
export const FsFreezeStatus = z.enum(['frozen', 'thawed']);
export type FsFreezeStatus = z.infer<typeof FsFreezeStatus>;

/** What qemu-guest-agent says, in the VMI status's shapes (guestOSInfo, interfaces, fsFreezeStatus). */
export const GuestInfo = z.object({
  agentConnected: z.boolean(),
  agentVersion: z.string().optional(),
  hostname: z.string().optional(),
  os: VirtualMachineInstanceGuestOSInfo.optional(),
  interfaces: z.array(GuestInterface),
  fsFreezeStatus: FsFreezeStatus.optional(),
});
export type GuestInfo = z.infer<typeof GuestInfo>;

/** A QMP event as QEMU sends it (docs/interop/qmp-spec). */
export const QmpEvent = z.object({
  event: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
  timestamp: z.object({ seconds: z.number(), microseconds: z.number() }).optional(),
});
export type QmpEvent = z.infer<typeof QmpEvent>;

/** QMP query-migrate, the fields kubevm reads. */
export const MigrationInfo = z.looseObject({
  status: z.string().optional(),
  'total-time': z.number().optional(),
  'expected-downtime': z.number().optional(),
  downtime: z.number().optional(),
  'setup-time': z.number().optional(),
  ram: z
    .looseObject({
      transferred: z.number(),
      remaining: z.number(),
      total: z.number(),
      'dirty-pages-rate': z.number().optional(),
      'dirty-sync-count': z.number().optional(),
      'page-size': z.number().optional(),
      mbps: z.number().optional(),
    })
    .optional(),
  'cpu-throttle-percentage': z.number().optional(),
  'error-desc': z.string().optional(),
});
export type MigrationInfo = z.infer<typeof MigrationInfo>;

/**
 * A migration's progress in kubevm's terms (bytes, bytes per second, milliseconds), read from QMP
 * query-migrate; the node handler turns it into KubeVirt's kubevirt_vmi_migration_* metrics.
 */
export const MigrationProgress = z.object({
  /** QEMU's migration status: none, setup, active, postcopy-active, completed, failed, cancelling, cancelled, ... */
  status: z.string(),
  transferredBytes: z.number().nonnegative(),
  remainingBytes: z.number().nonnegative(),
  totalBytes: z.number().nonnegative(),
  /** Guest memory dirtied per second (dirty pages rate times page size). */
  dirtyRateBytesPerSecond: z.number().nonnegative(),
  /** What the stream carries per second now (QEMU's mbps). */
  transferRateBytesPerSecond: z.number().nonnegative(),
  /** How many times the source has gone over guest memory (1 is the first full pass). */
  iterations: z.number().nonnegative(),
  /** Auto-converge's current CPU throttle, 0 when none. */
  cpuThrottlePercent: z.number().nonnegative(),
  totalTimeMs: z.number().nonnegative().optional(),
  /** The real downtime, once the migration completed; the expected one while it runs. */
  downtimeMs: z.number().nonnegative().optional(),
  errorDescription: z.string().optional(),
});
export type MigrationProgress = z.infer<typeof MigrationProgress>;

/**
 * How a source migrates (KubeVirt's MigrationConfiguration, resolved for one VMI by the controller;
 * docs/migration.md). The source's node handler has connected to the launcher's
 * `migration-out.sock` (and through the migration channel to the target node) before it calls
 * `migrate`; the launcher has QEMU migrate to its private `migration-qemu.sock` and relays that
 * stream over the handler's connection (runtime/contracts/launcher-pod.ts). A launcher never opens
 * a network connection for a migration, since its pod's network belongs to the guest.
 */
export const MigrateArgs = z.object({
  /** bandwidthPerMigration in MiB/s; 0 or absent is unlimited. */
  bandwidthMiBps: z.int().nonnegative().optional(),
  /** The pause QEMU may take for the last pass (QEMU's downtime-limit); KubeVirt's default is 900. */
  maxDowntimeMs: z.int().positive().max(2_000_000).optional(),
  /** allowAutoConverge: throttle the guest's vCPUs when it dirties memory faster than it is sent. */
  autoConverge: z.boolean().optional(),
  /** allowPostCopy: switch to post-copy at the completion timeout instead of aborting. The target must be started with `incoming.postCopy`. */
  postCopy: z.boolean().optional(),
  /** completionTimeoutPerGiB times the guest's memory: then abort (or switch to post-copy). Default 600. */
  completionTimeoutSeconds: z.number().positive().optional(),
  /** progressTimeout: abort when the remaining bytes have not gone down for this long. Default 150. */
  progressTimeoutSeconds: z.number().positive().optional(),
});
export type MigrateArgs = z.infer<typeof MigrateArgs>;

/**
 * The one line the launcher answers a connection to its `migration-out.sock` (or
 * `migration-disks-out.sock`) with: ok, the connection waits for `migrate` (nothing is read from it
 * until then); or refused, with why (all the streams it takes are connected, or a migration runs),
 * and the connection is closed. On migration-out.sock the ok answer says how many disk streams the
 * source needs besides (one per pod-local disk, launcher/disk-mirror.ts).
 */
export const MigrationOutAnswer = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), disks: z.int().min(0).max(256).optional() }),
  z.object({ ok: z.literal(false), message: z.string().max(512) }),
]);
export type MigrationOutAnswer = z.infer<typeof MigrationOutAnswer>;
/** The longest answer line on `migration-out.sock`. */
export const MIGRATION_OUT_ANSWER_MAX_BYTES = MIGRATION_CHANNEL_MAX_LINE_BYTES;

/** What the launcher's relay between QEMU and the node handler's connection carried and cost. */
export const MigrationRelay = z.object({
  /** Bytes from QEMU to the target, and back (QEMU's return path). */
  bytesOut: z.int().nonnegative(),
  bytesIn: z.int().nonnegative(),
  /** The launcher process's CPU time (user + system) while the migration ran, in milliseconds. */
  launcherCpuMs: z.number().nonnegative(),
});
export type MigrationRelay = z.infer<typeof MigrationRelay>;

/** How a source's migration ended. Failed and Aborted leave the source running as it was. */
export const MigrationResult = z.object({
  outcome: z.enum(['Succeeded', 'Failed', 'Aborted']),
  /** Why a migration failed or was aborted, for the migration's and the VMI's failureReason. */
  reason: z.string().optional(),
  /** The switch to post-copy was made. */
  postCopy: z.boolean(),
  progress: MigrationProgress,
  /** The parameters QEMU accepted, read back with query-migrate-parameters. */
  parameters: z.looseObject({
    'max-bandwidth': z.number().optional(),
    'downtime-limit': z.number().optional(),
  }),
  capabilities: z.record(z.string(), z.boolean()),
  /** The relay's figures, once QEMU's stream was relayed. */
  relay: MigrationRelay.optional(),
});
export type MigrationResult = z.infer<typeof MigrationResult>;

const StartArgs = z.object({
  /**
   * Start QEMU paused as a migration target (`-incoming defer`, then migrate-incoming) listening on
   * the launcher's `migration-in.sock`, which the node handler connects the incoming stream to.
   */
  incoming: z.object({ postCopy: z.boolean().optional() }).optional(),
});

export const DomainStatus = z.object({
  vmi: z.object({ name: z.string(), namespace: z.string(), uid: z.string().optional() }),
  phase: DomainPhase,
  /** E.g. PausedByUser, StartPaused, ACPIPowerdown, Shutdown, GuestShutdown, Destroyed, Crashed, StartFailed:<step>. */
  reason: z.string().optional(),
  /** The QEMU run state (query-status), e.g. running, paused, io-error, shutdown. */
  qemuStatus: z.string().optional(),
  accelerator: AcceleratorDecision.optional(),
  qemuPid: z.int().positive().optional(),
  volumes: z.array(VolumeStatus),
  conditions: z.array(DomainCondition),
  guestInfo: GuestInfo.optional(),
  error: DomainError.optional(),
  exit: z.object({ code: z.int().nullable(), signal: z.string().nullable() }).optional(),
});
export type DomainStatus = z.infer<typeof DomainStatus>;

/** Pushed to a subscribed connection on every change; each carries the whole status (level, not edge). */
export const DomainEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('status'), at: z.string(), status: DomainStatus }),
  z.object({ type: z.literal('error'), at: z.string(), status: DomainStatus, error: DomainError }),
  z.object({ type: z.literal('qemu-event'), at: z.string(), status: DomainStatus, qemuEvent: QmpEvent }),
  /** While this launcher is the source of a migration: its progress, about once a second. */
  z.object({ type: z.literal('migration'), at: z.string(), status: DomainStatus, progress: MigrationProgress }),
]);
export type DomainEvent = z.infer<typeof DomainEvent>;

const noArgs = z.object({});
const nonNegative = z.number().nonnegative();

/**
 * How long the launcher waits for the guest agent to freeze or thaw (the guest flushes its writes
 * first); a launcher client's 30 s for a command covers it with the handshake and status query (3 s each).
 */
export const GUEST_AGENT_FREEZE_TIMEOUT_MS = 20_000;

/** The longest unfreezeTimeout a freeze takes (a day; KubeVirt's is an int32 of seconds). */
export const MAX_UNFREEZE_TIMEOUT_SECONDS = 86_400;

/** Every command: its arguments and its result. */
export const launcherCommands = {
  hello: { args: noArgs, result: z.object({ protocol: z.int(), vmi: DomainStatus.shape.vmi }) },
  /** The current status; from then on events are pushed on this connection. */
  subscribe: { args: noArgs, result: DomainStatus },
  status: { args: noArgs, result: DomainStatus },
  /** Starts QEMU (idempotent); `incoming` starts it paused as a migration target. */
  start: { args: StartArgs, result: DomainStatus },
  /** The same as start (KubeVirt's SyncVMI). */
  sync: { args: StartArgs, result: DomainStatus },
  pause: { args: noArgs, result: DomainStatus },
  unpause: { args: noArgs, result: DomainStatus },
  /** Hard reset (QMP system_reset): the guest's OS gets no say. */
  reset: { args: noArgs, result: DomainStatus },
  /** The guest's own orderly reboot: through the guest agent when it answers, otherwise ACPI. */
  softReboot: { args: noArgs, result: z.object({ method: z.enum(['guest-agent', 'acpi']), status: DomainStatus }) },
  shutdown: { args: z.object({ gracePeriodSeconds: nonNegative.optional() }), result: z.object({ graceful: z.boolean(), status: DomainStatus }) },
  kill: { args: noArgs, result: DomainStatus },
  guestInfo: { args: noArgs, result: GuestInfo },
  /**
   * Freezes the guest's filesystems (guest-fsfreeze-freeze) unless they are frozen already; after
   * `unfreezeTimeoutSeconds` (0: never) the launcher thaws them itself unless `unfreeze` came first.
   */
  freeze: { args: z.object({ unfreezeTimeoutSeconds: z.int().min(0).max(MAX_UNFREEZE_TIMEOUT_SECONDS) }), result: z.object({ fsFreezeStatus: FsFreezeStatus }) },
  /** Thaws the guest's filesystems (guest-fsfreeze-thaw) unless they are thawed; cancels the automatic thaw. */
  unfreeze: { args: noArgs, result: z.object({ fsFreezeStatus: FsFreezeStatus }) },
  /** The users logged in to the guest (guest-get-users), in KubeVirt's shape. */
  guestUsers: { args: noArgs, result: z.object({ items: GuestOSUsers }) },
  /** The guest's mounted filesystems (guest-get-fsinfo), in KubeVirt's shape. */
  guestFilesystems: { args: noArgs, result: z.object({ items: GuestFileSystems }) },
  /** Migrates this (running) domain out; answers when the migration has ended, however it ended. */
  migrate: { args: MigrateArgs, result: MigrationResult },
  queryMigration: { args: noArgs, result: MigrationProgress },
  /** Aborts a running outgoing migration (QMP migrate_cancel); the pending `migrate` answers Aborted. */
  migrateCancel: { args: noArgs, result: MigrationProgress },
  /** The tail (SERIAL_LOG_TAIL_BYTES) of what the guest printed on its serial console. */
  serialLog: { args: noArgs, result: z.object({ log: z.string() }) },
  /**
   * After the answer the connection is a raw byte stream to the guest's serial port. A new console
   * replaces the one attached, as KubeVirt's does.
   */
  console: { args: noArgs, result: z.object({ stream: z.literal('console') }) },
  /**
   * After the answer the connection is a raw RFB byte stream to QEMU's VNC server. A new one
   * replaces the one attached unless `preserveSession`: then it is refused while one is attached.
   */
  vnc: { args: z.object({ preserveSession: z.boolean().optional() }), result: z.object({ stream: z.literal('vnc') }) },
  /** After the answer the connection is a raw byte stream to TCP `port` of the guest (its first interface). */
  portForward: { args: z.object({ port: z.int().min(1).max(65535) }), result: z.object({ stream: z.literal('portForward') }) },
  /** After the answer come exactly `bytes` bytes of a PNG of the guest's display, then the connection ends. */
  screenshot: {
    args: noArgs,
    result: z.object({ stream: z.literal('screenshot'), contentType: z.literal('image/png'), bytes: z.int().min(1).max(SCREENSHOT_MAX_BYTES) }),
  },
} as const;

export type LauncherCommand = keyof typeof launcherCommands;
export type LauncherArgs<C extends LauncherCommand> = z.infer<(typeof launcherCommands)[C]['args']>;
export type LauncherResult<C extends LauncherCommand> = z.infer<(typeof launcherCommands)[C]['result']>;

export const launcherCommandNames = Object.keys(launcherCommands) as LauncherCommand[];

/** The commands that turn their connection into a byte stream after the answer line. */
export const launcherStreamCommands = ['console', 'vnc', 'portForward', 'screenshot'] as const satisfies readonly LauncherCommand[];
export type LauncherStreamCommand = (typeof launcherStreamCommands)[number];

const RequestId = z.union([z.string().max(256), z.number()]);

/** A request line as sent by a client. */
export const LauncherRequest = z.object({
  id: RequestId.optional(),
  command: z.string(),
  args: z.record(z.string(), z.unknown()).optional(),
});

/**
 * The `step` of a stream the launcher refused because its domain is not running (QEMU not started
 * yet, stopping or gone): the VMI's state, not a fault, which the node handler answers as 409.
 */
export const DOMAIN_NOT_RUNNING_STEP = 'domain-not-running';

export const LauncherErrorDetail = z.object({
  message: z.string(),
  step: z.string().optional(),
  qemuStderr: z.array(z.string()).optional(),
});
export type LauncherErrorDetail = z.infer<typeof LauncherErrorDetail>;

/** A response line; `result` is checked against the command's result schema by the caller. */
export const LauncherResponse = z.union([
  z.object({ id: RequestId.optional(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: RequestId.optional(), ok: z.literal(false), error: LauncherErrorDetail }),
]);
export type LauncherResponse = z.infer<typeof LauncherResponse>;

/** Any line the launcher sends: a pushed event or a response. */
export const LauncherMessage = z.union([z.object({ event: DomainEvent }), LauncherResponse]);
export type LauncherMessage = z.infer<typeof LauncherMessage>;

export type ParsedLauncherRequest = {
  [C in LauncherCommand]: { id: string | number | undefined; command: C; args: LauncherArgs<C> };
}[LauncherCommand];

/**
 * Checks a request line's value: the command is known and its arguments are what it takes. A
 * refusal says which field and what is accepted, and keeps the id so the client can match it.
 */
export function parseLauncherRequest(value: unknown): { ok: true; request: ParsedLauncherRequest } | { ok: false; id: string | number | undefined; message: string } {
  const request = LauncherRequest.safeParse(value);
  if (!request.success) {
    const id = typeof value === 'object' && value !== null ? RequestId.safeParse((value as { id?: unknown }).id).data : undefined;
    return { ok: false, id, message: `bad request: ${describeZodError(request.error)}` };
  }
  const { id, command, args } = request.data;
  if (!Object.hasOwn(launcherCommands, command)) {
    return { ok: false, id, message: `unknown command ${JSON.stringify(command.slice(0, 64))}; known: ${launcherCommandNames.join(', ')}` };
  }
  const known = command as LauncherCommand;
  const parsed = launcherCommands[known].args.safeParse(args ?? {});
  if (!parsed.success) return { ok: false, id, message: `bad request: ${describeZodError(parsed.error, 'args')}` };
  return { ok: true, request: { id, command: known, args: parsed.data } as ParsedLauncherRequest };
}

/** A zod error as `path: message; ...`, paths from the message's root (e.g. `args.uri`). */
export function describeZodError(error: z.ZodError, prefix = ''): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      return `${path || '(message)'}: ${issue.message}`;
    })
    .join('; ');
}
