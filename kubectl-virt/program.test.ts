// The command line as a user runs it, against a kubeconfig whose API server is not there (a real
// refused connection) or without any cluster at all.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { CommanderError } from 'commander';
import { describeFailure } from './errors.js';
import { forcedGracePeriod, parseSelector } from './lifecycle.js';
import { buildProgram, parseDuration } from './program.js';

function capture(): NodeJS.WriteStream & { text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return Object.assign(stream, { text: () => chunks.join(''), isTTY: false, columns: 80 }) as unknown as NodeJS.WriteStream & { text: () => string };
}

/** Runs the program; returns its exit code, stdout and the error line main.ts would print. */
async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const program = buildProgram({ stdout, stderr });
  try {
    await program.parseAsync(['node', 'kubectl-virt', ...args]);
    return { code: 0, stdout: stdout.text(), stderr: stderr.text() };
  } catch (err) {
    if (err instanceof CommanderError) return { code: err.exitCode, stdout: stdout.text(), stderr: stderr.text() };
    return { code: 1, stdout: stdout.text(), stderr: `error: ${describeFailure(err)}\n` };
  }
}

const dir = mkdtempSync(join(tmpdir(), 'kubectl-virt-'));
const kubeconfig = join(dir, 'config');
writeFileSync(
  kubeconfig,
  `apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true }
users:
- name: u
  user: { token: t }
contexts:
- name: gone
  context: { cluster: gone, user: u, namespace: team-a }
current-context: gone
`,
);

describe('kubectl-virt', () => {
  it('has --help for every command', async () => {
    const top = await run('--help');
    expect(top.code).toBe(0);
    const commands = ['start', 'stop', 'restart', 'pause', 'unpause', 'soft-reboot', 'reset', 'migrate', 'migrate-cancel', 'guestosinfo', 'userlist', 'fslist', 'expand', 'version', 'create', 'console', 'vnc', 'port-forward', 'ssh', 'scp', 'completion'];
    for (const command of commands) {
      expect(top.stdout).toContain(`  ${command} `);
      const help = await run(command, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: kubectl-virt ${command}`));
    }
    expect((await run('create', 'vm', '--help')).stdout).toContain('--volume-containerdisk');
    expect((await run('start', '--help')).stdout).toMatch(/--paused[\s\S]*--dry-run[\s\S]*--wait[\s\S]*--timeout/);
    expect((await run('stop', '--help')).stdout).toMatch(/--force[\s\S]*--grace-period/);
  });

  it('says in one line that the API server cannot be reached', async () => {
    const res = await run('start', 'web', '--kubeconfig', kubeconfig);
    expect(res).toMatchObject({ code: 1, stderr: 'error: cannot reach the Kubernetes API server at https://127.0.0.1:1: ECONNREFUSED\n' });
  });

  it('takes the kubeconfig from KUBECONFIG and refuses an unknown context by name', async () => {
    const saved = process.env['KUBECONFIG'];
    process.env['KUBECONFIG'] = kubeconfig;
    try {
      expect((await run('version', '--context', 'prod')).stderr).toBe('error: context "prod" does not exist in the kubeconfig (contexts: gone)\n');
      expect((await run('stop', 'web')).stderr).toContain('https://127.0.0.1:1');
    } finally {
      if (saved === undefined) delete process.env['KUBECONFIG'];
      else process.env['KUBECONFIG'] = saved;
    }
  });

  it('answers version --client and create without a cluster', async () => {
    const version = await run('version', '--client', '--kubeconfig', join(dir, 'missing'));
    expect(version.stdout).toMatch(/^Client Version: version.Info\{GitVersion:"v\d+\.\d+\.\d+"/);
    const vm = await run('create', 'vm', '--name', 'web', '--memory', '128Mi', '--volume-containerdisk', 'src:img:1', '--volume-containerdisk', 'src:img:2');
    expect(vm.code).toBe(0);
    expect(vm.stdout).toContain('name: web-containerdisk-1');
    expect((await run('create', 'instancetype', '--memory', '1Gi')).stderr).toContain("required option '--cpu <count>' not specified");
  });

  it('checks flags before it calls the cluster', async () => {
    expect((await run('stop', 'web', '--force', '--kubeconfig', kubeconfig)).stderr).toBe('error: --force and --grace-period go together: pass both (e.g. --force --grace-period 0) or neither\n');
    expect((await run('pause', 'pod', 'web', '--kubeconfig', kubeconfig)).stderr).toMatch(/^error: pause: the first argument is vm or vmi, not "pod"/);
    expect((await run('start', 'web', '--wait', '--timeout', 'soon')).stderr).toContain('expected a duration like 90s, 5m or 1m30s');
    expect((await run('expand', '--kubeconfig', kubeconfig)).stderr).toBe('error: expand: give exactly one of --vm NAME or --file FILE\n');
  });
});

describe('flag values', () => {
  it('reads durations, node selectors and forced grace periods as virtctl does', () => {
    expect(['90', '90s', '5m', '1m30s', '1h'].map(parseDuration)).toEqual([90_000, 90_000, 300_000, 90_000, 3_600_000]);
    expect(parseSelector('zone=a, disk=ssd')).toEqual({ zone: 'a', disk: 'ssd' });
    expect(() => parseSelector('zone')).toThrow('"zone" is not key=value');
    expect(forcedGracePeriod(true, 0)).toBe(0);
    expect(forcedGracePeriod(false, undefined)).toBeUndefined();
    expect(() => forcedGracePeriod(false, 5)).toThrow('--force and --grace-period go together');
  });
});
