// The command line: virtctl's verbs and flags on commander, the kubectl connection flags on every
// command. Each action does its work through VirtApi and returns what to print; failures are
// UserErrors (one line, non-zero exit; main.ts prints them).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { VirtApi } from './api.js';
import { complete, completionScript } from './completion.js';
import type { ConnectionFlags } from './connection.js';
import { connect, loadUserKubeConfig, namespaceOf } from './connection.js';
import type { CreateVmFlags } from './create.js';
import { ExitStatus, UserError } from './errors.js';
import type { SshOptions } from './ssh.js';
import { clientVersionInfo, formatVersionInfo, serverVersionInfo } from './version.js';
import { DEFAULT_WAIT_TIMEOUT_MS, progressSink } from './wait.js';

// What a command needs is loaded when it runs: the bundle is parsed as a whole, but the API
// schemas, noVNC and the stream code are only evaluated by the commands that use them, so
// `version` and `--help` start fast (bench/kubectl-virt-version.ts).
const lifecycle = () => import('./lifecycle.js');
const creating = () => import('./create.js');
const forwarding = () => import('./forward.js');

export interface ProgramIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/** "90s", "5m", "1h", "1m30s" or plain seconds → milliseconds. */
export function parseDuration(text: string): number {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match || text === '') throw new InvalidArgumentError('expected a duration like 90s, 5m or 1m30s');
  return (Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3] ?? 0)) * 1000;
}

function parseNonNegativeInt(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a whole number of seconds (0 or more)');
  return Number(text);
}

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
  return Number(text);
}

function parsePositiveInt(text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new InvalidArgumentError('expected a whole number greater than 0');
  return Number(text);
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** The global flags, as kubectl spells them. */
function connectionFlags(command: Command): ConnectionFlags {
  const all = command.optsWithGlobals<ConnectionFlags>();
  return {
    ...(all.kubeconfig ? { kubeconfig: all.kubeconfig } : {}),
    ...(all.context ? { context: all.context } : {}),
    ...(all.namespace ? { namespace: all.namespace } : {}),
  };
}

async function virtWith(flags: ConnectionFlags): Promise<VirtApi> {
  const { VirtApi } = await import('./api.js');
  return new VirtApi(connect(flags));
}

const virtFor = (command: Command): Promise<VirtApi> => virtWith(connectionFlags(command));

interface WaitFlags {
  wait?: boolean;
  timeout: number;
}

const withWait = (command: Command): Command =>
  command
    .option('--wait', 'wait until the VM got there, showing its progress (a live line on a terminal)')
    .addOption(new Option('--timeout <duration>', 'how long --wait waits (e.g. 90s, 5m)').default(DEFAULT_WAIT_TIMEOUT_MS, '5m').argParser(parseDuration));

const dryRun = (command: Command): Command => command.option('--dry-run', 'validate the request on the server and change nothing');

export function buildProgram(io: ProgramIo): Command {
  const print = (text: string): void => {
    io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  const printJson = (value: unknown): void => print(JSON.stringify(value, null, 2));
  const waitOptions = (flags: WaitFlags) => ({ wait: Boolean(flags.wait), timeoutMs: flags.timeout, sink: progressSink(io.stderr) });

  const program = new Command('kubectl-virt')
    .description('kubevm\'s kubectl plugin: start, stop, migrate and reach VirtualMachines (virtctl\'s verbs and flags)')
    .usage('COMMAND [flags]')
    .option('--kubeconfig <file>', 'the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use (default: its current context)')
    .option('-n, --namespace <namespace>', 'the namespace (default: the context\'s, then "default")')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    // Usage errors and --help end by a CommanderError (main.ts exits with its code), in every
    // subcommand: commands inherit this when they are created below.
    .exitOverride();

  withWait(dryRun(program.command('start').argument('<vm>', 'the VirtualMachine').description('start a VirtualMachine').option('--paused', 'start it paused')))
    .action(async (name: string, flags: WaitFlags & { paused?: boolean; dryRun?: boolean }, command: Command) => {
      print(await (await lifecycle()).start(await virtFor(command), name, { ...waitOptions(flags), paused: Boolean(flags.paused), dryRun: Boolean(flags.dryRun) }));
    });

  const stopLike = (verb: 'stop' | 'restart', description: string) =>
    withWait(
      dryRun(
        program
          .command(verb)
          .argument('<vm>', 'the VirtualMachine')
          .description(description)
          .option('--force', 'with --grace-period: do not wait for the guest to shut down')
          .addOption(new Option('--grace-period <seconds>', 'with --force: the seconds the guest gets (0: none)').argParser(parseNonNegativeInt)),
      ),
    ).action(async (name: string, flags: WaitFlags & { force?: boolean; gracePeriod?: number; dryRun?: boolean }, command: Command) => {
      const options = { ...waitOptions(flags), force: Boolean(flags.force), ...(flags.gracePeriod !== undefined ? { gracePeriod: flags.gracePeriod } : {}), dryRun: Boolean(flags.dryRun) };
      const { stop, restart } = await lifecycle();
      print(await (verb === 'stop' ? stop : restart)(await virtFor(command), name, options));
    });
  stopLike('stop', 'stop a VirtualMachine');
  stopLike('restart', 'restart a VirtualMachine (a new VMI)');

  for (const verb of ['pause', 'unpause'] as const) {
    dryRun(
      program
        .command(verb)
        .argument('<kind>', 'vm or vmi')
        .argument('<name>', 'the VirtualMachine or VirtualMachineInstance')
        .description(`${verb} a VirtualMachine's instance or a VirtualMachineInstance`),
    ).action(async (kind: string, name: string, flags: { dryRun?: boolean }, command: Command) => {
      if (kind !== 'vm' && kind !== 'vmi') throw new UserError(`${verb}: the first argument is vm or vmi, not "${kind}" (e.g. kubectl virt ${verb} vm my-vm)`);
      print(await (await lifecycle()).pauseOrUnpause(await virtFor(command), verb, kind, name, Boolean(flags.dryRun)));
    });
  }

  program
    .command('soft-reboot')
    .argument('<vmi>', 'the VirtualMachineInstance')
    .description('reboot the guest in an orderly way (its guest agent, else the ACPI power button)')
    .action(async (name: string, _flags: unknown, command: Command) => print(await (await lifecycle()).softReboot(await virtFor(command), name)));

  program
    .command('reset')
    .argument('<vmi>', 'the VirtualMachineInstance')
    .description('reset the guest at once, like the reset button (the guest OS gets no say)')
    .action(async (name: string, _flags: unknown, command: Command) => print(await (await lifecycle()).reset(await virtFor(command), name)));

  withWait(
    dryRun(
      program
        .command('migrate')
        .argument('<vm>', 'the VirtualMachine')
        .description('live-migrate a running VirtualMachine to another node')
        .option('--addedNodeSelector <key=value,...>', 'node labels the target node must also have'),
    ),
  ).action(async (name: string, flags: WaitFlags & { addedNodeSelector?: string; dryRun?: boolean }, command: Command) => {
    const selector = flags.addedNodeSelector !== undefined ? (await lifecycle()).parseSelector(flags.addedNodeSelector) : undefined;
    print(await (await lifecycle()).migrate(await virtFor(command), name, { ...waitOptions(flags), ...(selector ? { addedNodeSelector: selector } : {}), dryRun: Boolean(flags.dryRun) }));
  });

  dryRun(program.command('migrate-cancel').argument('<vm>', 'the VirtualMachine').description('cancel the migration in progress (deletes its migration object)')).action(
    async (name: string, flags: { dryRun?: boolean }, command: Command) => print(await (await lifecycle()).migrateCancel(await virtFor(command), name, Boolean(flags.dryRun))),
  );

  const guestInfo = (verb: string, subresource: string, description: string) =>
    program
      .command(verb)
      .argument('<vmi>', 'the VirtualMachineInstance')
      .description(`${description} (JSON; needs the guest agent)`)
      .action(async (name: string, _flags: unknown, command: Command) => printJson(await (await virtFor(command)).get('vmi', name, subresource)));
  guestInfo('guestosinfo', 'guestosinfo', 'the guest\'s OS as its guest agent reports it');
  guestInfo('userlist', 'userlist', 'the users logged in to the guest');
  guestInfo('fslist', 'filesystemlist', 'the guest\'s file systems');

  program
    .command('expand')
    .description('print a VirtualMachine with its instancetype and preference applied')
    .option('--vm <name>', 'a VirtualMachine in the cluster')
    .option('--file <file>', 'a VirtualMachine manifest (YAML or JSON; - for stdin)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .action(async (flags: { vm?: string; file?: string; output: string }, command: Command) => {
      if ((flags.vm === undefined) === (flags.file === undefined)) throw new UserError('expand: give exactly one of --vm NAME or --file FILE');
      const virt = await virtFor(command);
      let expanded: unknown;
      if (flags.vm !== undefined) expanded = await virt.get('vm', flags.vm, 'expand-spec');
      else {
        let text: string;
        try {
          text = readFileSync(flags.file === '-' ? 0 : (flags.file ?? ''), 'utf8');
        } catch (err) {
          throw new UserError(`expand: cannot read ${flags.file ?? ''}: ${err instanceof Error ? err.message : String(err)}`);
        }
        let vm: unknown;
        try {
          vm = (await import('yaml')).default.parse(text);
        } catch (err) {
          throw new UserError(`expand: ${flags.file ?? ''} is neither YAML nor JSON: ${err instanceof Error ? err.message : String(err)}`);
        }
        expanded = await virt.expandVmSpec(vm);
      }
      print(flags.output === 'json' ? JSON.stringify(expanded, null, 2) : (await creating()).toYaml(expanded));
    });

  program
    .command('version')
    .description('print the plugin\'s version and the kubevm api-server\'s')
    .option('--client', 'only the plugin\'s (no request to the cluster)')
    .action(async (flags: { client?: boolean }, command: Command) => {
      print(`Client Version: ${formatVersionInfo(clientVersionInfo())}`);
      if (!flags.client) print(`Server Version: ${formatVersionInfo(await serverVersionInfo(connect(connectionFlags(command))))}`);
    });

  const create = program.command('create').description('print a manifest (YAML) for kubectl apply -f - or GitOps');
  create
    .command('vm')
    .description('a VirtualMachine manifest (virtctl create vm\'s flags)')
    .option('--name <name>', 'the VM\'s name (default: vm-RANDOM)')
    .addOption(new Option('--run-strategy <strategy>', 'the run strategy').default('Always'))
    .addOption(new Option('--termination-grace-period <seconds>', 'the seconds the guest gets to shut down').default(180).argParser(parseNonNegativeInt))
    .option('--instancetype <[kind/]name>', 'an instancetype (cluster-wide unless kind is virtualmachineinstancetype)')
    .option('--preference <[kind/]name>', 'a preference (cluster-wide unless kind is virtualmachinepreference)')
    .option('--volume-containerdisk <src:IMAGE[,name:N][,bootorder:N]>', 'a containerDisk volume (repeatable)', collect, [])
    .option('--volume-pvc <src:CLAIM[,name:N][,bootorder:N]>', 'a PersistentVolumeClaim volume (repeatable)', collect, [])
    .option('--cloud-init-user-data <base64>', 'cloud-init user-data, base64-encoded')
    .option('--cloud-init-user-data-file <file>', 'cloud-init user-data from a file (kept readable in the manifest)')
    .option('--cloud-init-network-data <base64>', 'cloud-init network-data, base64-encoded')
    .option('--memory <quantity>', 'guest memory, e.g. 1Gi (without --instancetype)')
    .action(async (flags: CreateVmFlags) => {
      const { createVm, toYaml } = await creating();
      print(toYaml(createVm(flags)));
    });
  create
    .command('instancetype')
    .description('a VirtualMachineClusterInstancetype (or, with --namespaced, a VirtualMachineInstancetype) manifest')
    .option('--name <name>', 'its name (default: instancetype-RANDOM)')
    .option('--namespaced', 'a namespaced VirtualMachineInstancetype')
    .requiredOption('--cpu <count>', 'the number of vCPUs', parsePositiveInt)
    .requiredOption('--memory <quantity>', 'guest memory, e.g. 2Gi')
    .action(async (flags: { name?: string; namespaced?: boolean; cpu: number; memory: string }) => {
      const { createInstancetype, toYaml } = await creating();
      print(toYaml(createInstancetype(flags)));
    });
  create
    .command('preference')
    .description('a VirtualMachineClusterPreference (or, with --namespaced, a VirtualMachinePreference) manifest')
    .option('--name <name>', 'its name (default: preference-RANDOM)')
    .option('--namespaced', 'a namespaced VirtualMachinePreference')
    .option('--cpu-topology <topology>', 'how vCPUs are laid out: sockets, cores, threads, spread, any')
    .option('--machine-type <type>', 'the preferred machine type, e.g. q35')
    .option('--volume-storage-class <class>', 'the preferred storage class of volumes')
    .action(async (flags: { name?: string; namespaced?: boolean; cpuTopology?: string; machineType?: string; volumeStorageClass?: string }) => {
      const { createPreference, toYaml } = await creating();
      print(toYaml(createPreference(flags)));
    });

  program
    .command('console')
    .argument('<vmi>', 'the VirtualMachineInstance (a VM\'s has the VM\'s name)')
    .description('the serial console; Ctrl+] ends it. Works with piped input: the session ends once input ended and the guest went quiet')
    .addOption(new Option('--timeout <duration>', 'how long to wait for the VMI to run (at start and after a drop)').default(5 * 60_000, '5m').argParser(parseDuration))
    .option('--no-reconnect', 'end when the connection drops instead of reconnecting')
    .action(async (name: string, flags: { timeout: number; reconnect: boolean }, command: Command) => {
      const { runConsole } = await import('./console.js');
      await runConsole(await virtFor(command), name, { stdin: process.stdin, stdout: io.stdout, stderr: io.stderr, timeoutMs: flags.timeout, reconnect: flags.reconnect });
    });

  const vnc = program
    .command('vnc')
    .argument('<vmi>', 'the VirtualMachineInstance')
    .description('the VMI\'s display on a local port for a VNC viewer (one is started when installed)')
    .option('--proxy-only', 'only listen, print {"port": N} and wait (for a viewer of your own)')
    .option('--web', 'serve a page with a VNC client (noVNC) on localhost; prints its one-time URL')
    .addOption(new Option('--port <port>', 'the local port (0: any free one)').default(0).argParser(parsePort))
    .option('--address <address>', 'the local address to listen on', '127.0.0.1')
    .action(async (name: string, flags: { proxyOnly?: boolean; web?: boolean; port: number; address: string }, command: Command) => {
      if (flags.web && flags.proxyOnly) throw new UserError('vnc: --web and --proxy-only exclude each other');
      if (flags.web) return (await import('./web.js')).runVncWeb(await virtFor(command), name, { port: flags.port, address: flags.address, stdout: io.stdout, stderr: io.stderr });
      await (await import('./vnc.js')).runVnc(await virtFor(command), name, { port: flags.port, address: flags.address, proxyOnly: Boolean(flags.proxyOnly), stdout: io.stdout, stderr: io.stderr });
    });
  vnc
    .command('screenshot')
    .argument('<vmi>', 'the VirtualMachineInstance')
    .description('save the VMI\'s display as a PNG file')
    .requiredOption('-f, --file <file>', 'the PNG file to write')
    .action(async (name: string, flags: { file: string }, command: Command) => print(await (await import('./vnc.js')).screenshot(await virtFor(command), name, flags.file)));

  program
    .command('port-forward')
    .argument('<target>', 'vm/NAME or vmi/NAME (NAME.NAMESPACE for another namespace)')
    .argument('<ports...>', '[tcp/]LOCAL[:GUEST]; LOCAL 0 picks a free port')
    .description('forward local ports to a guest\'s ports (or, with --stdio, stdin/stdout to one)')
    .option('--stdio', 'join stdin and stdout to the one guest port (an ssh ProxyCommand)')
    .option('--address <address>', 'the local address to listen on', '127.0.0.1')
    .action(async (targetText: string, ports: string[], flags: { stdio?: boolean; address: string }, command: Command) => {
      const { forwardStdio, listenAndForward, parsePort, parseTarget, untilInterrupted } = await forwarding();
      const target = parseTarget(targetText, 'port-forward');
      const mappings = ports.map(parsePort);
      const virt = target.namespace ? await virtWith({ ...connectionFlags(command), namespace: target.namespace }) : await virtFor(command);
      const guestPath = (guest: number) => `portforward/${guest}/tcp`;
      if (flags.stdio) {
        if (mappings.length !== 1) throw new UserError('port-forward --stdio: give exactly one port');
        return forwardStdio(virt, target, guestPath(mappings[0]?.guest ?? 0));
      }
      const listeners = [];
      for (const m of mappings) {
        const listener = await listenAndForward(virt, target, guestPath(m.guest), flags.address, m.local, (line) => io.stderr.write(`port-forward: ${line}\n`));
        listeners.push(listener);
        print(`Forwarding from ${flags.address}:${listener.port} -> ${m.guest}`);
      }
      await untilInterrupted();
      await Promise.all(listeners.map((l) => l.close()));
    });

  const sshOptions = (command: Command): Command =>
    command
      .option('-i, --identity-file <file>', 'the private key for the local ssh client')
      .option('-l, --username <user>', 'the user in the guest (or user@vm/NAME)')
      .addOption(new Option('-p, --port <port>', 'the guest\'s SSH port').default(22).argParser(parsePositiveInt))
      .option('-t, --local-ssh-opts <option>', 'an option for the local client, e.g. -t "-o StrictHostKeyChecking=no" (repeatable)', collect, []);
  type SshFlags = { identityFile?: string; username?: string; port: number; localSshOpts: string[] };
  const toSshOptions = (flags: SshFlags): SshOptions => ({
    port: flags.port,
    ...(flags.identityFile ? { identityFile: flags.identityFile } : {}),
    ...(flags.username ? { username: flags.username } : {}),
    localOptions: flags.localSshOpts.flatMap((o) => o.split(/\s+/).filter((w) => w !== '')),
  });
  const runClient = (client: 'ssh' | 'scp', args: string[]) => {
    const res = spawnSync(client, args, { stdio: 'inherit' });
    if (res.error) throw new UserError(`${client}: the local ${client} client cannot run (${(res.error as NodeJS.ErrnoException).code ?? res.error.message}); install OpenSSH's client (apt-get install openssh-client)`);
    if (res.status !== 0) throw new ExitStatus(res.status ?? 1);
  };
  sshOptions(
    program
      .command('ssh')
      .argument('<destination>', '[user@]vm/NAME or [user@]vmi/NAME')
      .argument('[command...]', 'a command to run instead of a login shell')
      .description('ssh into a guest with the local ssh client, through port-forward'),
  )
    .option('-c, --command <command>', 'the command to run (as virtctl\'s --command)')
    .action(async (destination: string, words: string[], flags: SshFlags & { command?: string }, command: Command) => {
      const connection = connectionFlags(command);
      const namespace = namespaceOf(loadUserKubeConfig(connection), connection);
      const { sshArgs } = await import('./ssh.js');
      runClient('ssh', sshArgs(connection, destination, namespace, toSshOptions(flags), flags.command ? [flags.command] : words));
    });
  sshOptions(
    program
      .command('scp')
      .argument('<source>', 'a local path or [user@]vm/NAME:PATH')
      .argument('<destination>', 'a local path or [user@]vm/NAME:PATH')
      .description('copy files to or from a guest with the local scp client, through port-forward'),
  ).action(async (source: string, destination: string, flags: SshFlags, command: Command) => {
    const connection = connectionFlags(command);
    const namespace = namespaceOf(loadUserKubeConfig(connection), connection);
    const { scpArgs } = await import('./ssh.js');
    runClient('scp', scpArgs(connection, [source, destination], namespace, toSshOptions(flags)));
  });

  program
    .command('completion')
    .argument('<shell>', 'bash or zsh')
    .description('print a shell completion script (e.g. source <(kubectl-virt completion bash))')
    .action((shell: string) => print(completionScript(shell)));

  program
    .command('__complete', { hidden: true })
    .argument('[words...]')
    .allowUnknownOption()
    .helpOption(false)
    .action(async (words: string[], _flags: unknown, command: Command) => {
      // -n, --context and --kubeconfig among the words are parsed as the program's own options.
      const flags = { ...connectionFlags(command), ...completionFlags(words) };
      const virt = () => virtWith(flags);
      const candidates = await complete(words.length > 0 ? words : [''], {
        commands: program.commands.filter((c) => !c.name().startsWith('__')).map((c) => c.name()),
        flagsOf: (name) => {
          const command = program.commands.find((c) => c.name() === name);
          return [...(command?.options ?? []), ...program.options].map((o) => o.long ?? '').filter((f) => f !== '');
        },
        vmNames: () => virt().then((v) => v.vmNames()).catch(() => []),
        vmiNames: () => virt().then((v) => v.vmiNames()).catch(() => []),
      });
      if (candidates.length > 0) print(candidates.join('\n'));
    });

  return program;
}


/** The connection flags among the words being completed. */
function completionFlags(words: readonly string[]): ConnectionFlags {
  const flags: ConnectionFlags = {};
  for (let i = 0; i < words.length - 1; i++) {
    const value = words[i + 1];
    if (value === undefined) continue;
    if (words[i] === '-n' || words[i] === '--namespace') flags.namespace = value;
    if (words[i] === '--context') flags.context = value;
    if (words[i] === '--kubeconfig') flags.kubeconfig = value;
  }
  return flags;
}
