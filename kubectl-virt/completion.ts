// Shell completion: `completion bash|zsh` prints a script that asks the plugin itself
// (`kubectl-virt __complete WORDS...`) for candidates, so VM names come from the cluster the
// typed flags (-n, --context, --kubeconfig) point at.
import { UserError } from './errors.js';

/** Commands whose first argument is a VM, and those whose first argument is a VMI. */
export const VM_COMMANDS = new Set(['start', 'stop', 'restart', 'migrate', 'migrate-cancel', 'expand']);
export const VMI_COMMANDS = new Set(['soft-reboot', 'reset', 'guestosinfo', 'userlist', 'fslist', 'console', 'vnc']);
export const KIND_COMMANDS = new Set(['pause', 'unpause']);

export interface CompletionContext {
  commands: readonly string[];
  /** The long flags of a command (with the global ones). */
  flagsOf: (command: string) => readonly string[];
  vmNames: () => Promise<string[]>;
  vmiNames: () => Promise<string[]>;
}

const valueFlags = new Set(['-n', '--namespace', '--context', '--kubeconfig', '--grace-period', '--timeout', '--addedNodeSelector', '--vm', '--file', '-f', '--output', '-o', '--port', '--address']);

/** Candidates for the last of `words` (the words after the program name; the last may be ""). */
export async function complete(words: readonly string[], ctx: CompletionContext): Promise<string[]> {
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  const positionals: string[] = [];
  for (let i = 0; i < before.length; i++) {
    const word = before[i] ?? '';
    if (word.startsWith('-')) {
      if (valueFlags.has(word)) i++;
      continue;
    }
    positionals.push(word);
  }
  const previous = before[before.length - 1];
  if (previous === '--vm') return ctx.vmNames();
  if (previous !== undefined && valueFlags.has(previous)) return [];
  const command = positionals[0];
  if (command === undefined) return current.startsWith('-') ? [...ctx.flagsOf('')] : [...ctx.commands];
  if (current.startsWith('-')) return [...ctx.flagsOf(command)];
  const index = positionals.length;
  if (command === 'completion' && index === 1) return ['bash', 'zsh'];
  if (command === 'create' && index === 1) return ['vm', 'instancetype', 'preference'];
  if (KIND_COMMANDS.has(command)) {
    if (index === 1) return ['vm', 'vmi'];
    if (index === 2) return positionals[1] === 'vmi' ? ctx.vmiNames() : ctx.vmNames();
    return [];
  }
  if (command === 'port-forward' && index === 1) return [...(await ctx.vmNames()).map((n) => `vm/${n}`), ...(await ctx.vmiNames()).map((n) => `vmi/${n}`)];
  if (command === 'ssh' && index === 1) {
    const at = current.indexOf('@');
    const user = at >= 0 ? current.slice(0, at + 1) : '';
    return (await ctx.vmNames()).map((n) => `${user}vm/${n}`);
  }
  if (index === 1 && VM_COMMANDS.has(command) && command !== 'expand') return ctx.vmNames();
  if (index === 1 && VMI_COMMANDS.has(command)) return ctx.vmiNames();
  return [];
}

export function completionScript(shell: string, program = 'kubectl-virt'): string {
  const fn = `_${program.replace(/[^A-Za-z0-9]/g, '_')}`;
  if (shell === 'bash') {
    return `# bash completion for ${program}: source <(${program} completion bash)
${fn}() {
  local IFS=$'\\n'
  COMPREPLY=( $(compgen -W "$(${program} __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "\${COMP_WORDS[COMP_CWORD]}") )
}
complete -o default -F ${fn} ${program}
`;
  }
  if (shell === 'zsh') {
    return `#compdef ${program}
# zsh completion for ${program}: source <(${program} completion zsh)
${fn}() {
  local -a candidates
  candidates=("\${(@f)$(${program} __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
if (( $+functions[compdef] )); then compdef ${fn} ${program}; fi
`;
  }
  throw new UserError(`completion: unknown shell "${shell}" (supported: bash, zsh)`);
}
