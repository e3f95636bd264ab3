import { describe, expect, it } from '@jest/globals';
import type { CompletionContext } from './completion.js';
import { complete, completionScript } from './completion.js';

const ctx: CompletionContext = {
  commands: ['start', 'stop', 'pause', 'port-forward', 'ssh', 'create', 'completion'],
  flagsOf: (command) => (command === 'start' ? ['--paused', '--wait', '--namespace'] : ['--namespace']),
  vmNames: () => Promise.resolve(['db', 'web']),
  vmiNames: () => Promise.resolve(['web']),
};

describe('completion', () => {
  it('completes commands, flags, kinds and names from the cluster', async () => {
    expect(await complete([''], ctx)).toEqual(ctx.commands);
    expect(await complete(['start', ''], ctx)).toEqual(['db', 'web']);
    expect(await complete(['-n', 'team-a', 'start', ''], ctx)).toEqual(['db', 'web']);
    expect(await complete(['start', '--'], ctx)).toEqual(['--paused', '--wait', '--namespace']);
    expect(await complete(['start', 'web', ''], ctx)).toEqual([]);
    expect(await complete(['pause', ''], ctx)).toEqual(['vm', 'vmi']);
    expect(await complete(['pause', 'vmi', ''], ctx)).toEqual(['web']);
    expect(await complete(['port-forward', ''], ctx)).toEqual(['vm/db', 'vm/web', 'vmi/web']);
    expect(await complete(['ssh', 'fedora@'], ctx)).toEqual(['fedora@vm/db', 'fedora@vm/web']);
    expect(await complete(['start', '-n', ''], ctx)).toEqual([]);
    expect(await complete(['completion', ''], ctx)).toEqual(['bash', 'zsh']);
  });

  it('prints scripts for bash and zsh that ask the plugin, and refuses other shells', () => {
    expect(completionScript('bash')).toContain('complete -o default -F _kubectl_virt kubectl-virt');
    expect(completionScript('bash')).toContain('kubectl-virt __complete');
    expect(completionScript('zsh')).toContain('compdef _kubectl_virt kubectl-virt');
    expect(() => completionScript('fish')).toThrow('completion: unknown shell "fish" (supported: bash, zsh)');
  });
});
