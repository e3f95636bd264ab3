// ssh and scp: the local OpenSSH client, reaching the guest's port through this plugin's own
// `port-forward --stdio` as its ProxyCommand, as virtctl's --local-ssh does. The host is named
// vm/NAME.NAMESPACE for known_hosts (HostKeyAlias), so two VMs never share a host key entry.
import type { ConnectionFlags } from './connection.js';
import { UserError } from './errors.js';
import type { StreamTarget } from './forward.js';
import { parseTarget } from './forward.js';

/** How to run this plugin again from ssh's ProxyCommand (node, its flags, the script). */
export function selfCommand(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1] ?? 'kubectl-virt'];
}

const shellQuote = (word: string): string => (/^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/** "[user@]vm/NAME[.NS]" → user and target. */
export function parseSshDestination(text: string, what: string): { user?: string; target: StreamTarget } {
  const at = text.lastIndexOf('@');
  const user = at > 0 ? text.slice(0, at) : undefined;
  return { ...(user !== undefined ? { user } : {}), target: parseTarget(at > 0 ? text.slice(at + 1) : text, what) };
}

export interface SshOptions {
  port: number;
  identityFile?: string;
  username?: string;
  /** Extra options for the local client, as -o KEY=VALUE words or anything else it takes. */
  localOptions: string[];
}

/** The ProxyCommand and -o options both ssh and scp get. */
function proxyOptions(flags: ConnectionFlags, target: StreamTarget, namespace: string, options: SshOptions, self: string[]): string[] {
  const forward = [
    ...self,
    'port-forward',
    '--stdio',
    `${target.target}/${target.name}`,
    String(options.port),
    '-n',
    namespace,
    ...(flags.kubeconfig ? ['--kubeconfig', flags.kubeconfig] : []),
    ...(flags.context ? ['--context', flags.context] : []),
  ];
  return ['-o', `ProxyCommand=${forward.map(shellQuote).join(' ')}`, '-o', `HostKeyAlias=${target.target}/${target.name}.${namespace}`, ...(options.identityFile ? ['-i', options.identityFile] : []), ...options.localOptions];
}

/** argv of `ssh` for [user@]vm/NAME and an optional remote command. */
export function sshArgs(flags: ConnectionFlags, destination: string, namespace: string, options: SshOptions, command: string[], self = selfCommand()): string[] {
  const { user, target } = parseSshDestination(destination, 'ssh');
  const ns = target.namespace ?? namespace;
  const login = options.username ?? user;
  return [...proxyOptions(flags, target, ns, options, self), ...(login ? ['-l', login] : []), `${target.target}-${target.name}.${ns}`, ...command];
}

/** argv of `scp`: each operand [user@]vm/NAME:PATH becomes the proxied host; local paths stay. */
export function scpArgs(flags: ConnectionFlags, operands: string[], namespace: string, options: SshOptions, self = selfCommand()): string[] {
  if (operands.length < 2) throw new UserError('scp: give a source and a destination, one of them [user@]vm/NAME:PATH');
  let remote: StreamTarget | undefined;
  const rewritten = operands.map((operand) => {
    const match = /^((?:[^@/:]+@)?(?:vm|vmi)\/[^:/]+):(.*)$/.exec(operand);
    if (!match?.[1]) return operand;
    const { user, target } = parseSshDestination(match[1], 'scp');
    if (remote && (remote.name !== target.name || remote.target !== target.target)) throw new UserError('scp: copy between one VM and this machine (two VMs in one scp are not supported)');
    remote = target;
    const login = options.username ?? user;
    return `${login ? `${login}@` : ''}${target.target}-${target.name}.${target.namespace ?? namespace}:${match[2] ?? ''}`;
  });
  if (!remote) throw new UserError('scp: neither operand is [user@]vm/NAME:PATH');
  return [...proxyOptions(flags, remote, remote.namespace ?? namespace, options, self), ...rewritten];
}
