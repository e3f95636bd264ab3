// `kubectl virt` (kubectl-virt/) on the real cluster with kubevm installed: the bundled
// executable is installed on a PATH directory and run through kubectl itself, as users run it.
// One small VM carries most verbs, so the suite adds seconds, not minutes.
// Fails, never skips, when the cluster or kubevm is missing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_HEADER_PX } from '../../kubectl-virt/web.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { clusterEnv, kubectl, repoRoot, run, type ClusterEnv } from '../cluster/cluster-env.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { openHeadlessChromium } from '../support/chromium.js';
import { eventually } from '../support/eventually.js';
import { colourCount, decodePng, samePixels } from '../support/png.js';
import { diskImage } from './guest-images.js';
import { requireKubevmController } from './kubevm-installed.js';
import type { VM, VMI } from './small-vm.js';
import { counterVmiSpec, guestConsole, hasCondition, smallVmiSpec, vmResource, vmiResource, vmimResource } from './small-vm.js';
import { grant } from './support/rbac.js';
import { byteReader, rfbHandshake } from './support/rfb.js';

jest.setTimeout(300_000);

let client: KubeClient;
let env: ClusterEnv;
let namespace: string;
let binDir: string;
/** The ssh key root logs in to `one` with, and files for scp and screenshots. */
let workDir: string;
/** The environment kubectl runs in: the plugin's directory first on the PATH, where kubectl looks for plugins. */
let pluginEnv: NodeJS.ProcessEnv;

const vm = (name: string) => client.resource<VM>(vmResource).find(name, namespace);

/**
 * The small test VM with kernel arguments of its own: `one` carries most verbs and, for the
 * streams, a shell on its serial console, networking with the guest's web server, dropbear
 * (ssh, scp), the test guest's stand-in guest agent, and the kernel's messages on VGA too.
 */
async function createVm(name: string, runStrategy: string, kernelArgs: string): Promise<void> {
  const spec = smallVmiSpec() as { domain: { firmware: { kernelBoot: { kernelArgs: string } } } };
  spec.domain.firmware.kernelBoot.kernelArgs = kernelArgs;
  await client.resource<KubeObject & { spec: unknown }>(vmResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace }, spec: { runStrategy, template: { spec } } });
}

/** `kubectl virt ARGS -n NAMESPACE` left running: its output so far, and a wait for a line. */
function startVirt(...args: string[]) {
  const child: ChildProcessWithoutNullStreams = spawn(env.kubectl, ['virt', ...args, '-n', namespace], { stdio: ['pipe', 'pipe', 'pipe'], env: pluginEnv });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString('latin1')));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 128)));
  return {
    child,
    out,
    exited,
    waitFor: (what: string, stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs = 60_000) =>
      eventually(() => `${what} (${stream} so far: ${JSON.stringify(out[stream].slice(-400))}; stderr: ${JSON.stringify(out.stderr.slice(-300))})`, timeoutMs, () => pattern.exec(out[stream]) ?? undefined),
  };
}
const vmi = (name: string) => client.resource<VMI>(vmiResource).find(name, namespace);

/** `kubectl virt ARGS -n NAMESPACE` as the admin (KUBECONFIG) unless `--kubeconfig` is among ARGS. */
async function virt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(env.kubectl, ['virt', ...args, '-n', namespace], { timeoutMs: 120_000, env: pluginEnv });
}

/** A failure as the user sees it: non-zero, nothing on stdout, exactly one "error: " line. */
function expectOneLineFailure(res: { code: number; stdout: string; stderr: string }, line: RegExp): void {
  expect(res.code).not.toBe(0);
  expect(res.stdout).toBe('');
  expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(res.stderr.trimEnd()).toMatch(line);
}

beforeAll(async () => {
  env = clusterEnv();
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  binDir = mkdtempSync(join(tmpdir(), 'kubectl-virt-bin-'));
  const build = await run('bash', [join(repoRoot, 'kubectl-virt/build.sh'), binDir], { timeoutMs: 120_000 });
  if (build.code !== 0) throw new Error(`kubectl-virt/build.sh exited ${build.code}: ${build.stderr}`);
  pluginEnv = { ...process.env, PATH: `${binDir}:${process.env['PATH'] ?? ''}` };
  namespace = await createTestNamespace(client, 'kubevm-e2e-kvirt');
  // The viewer may read VMs here, and nothing more.
  await grant(env, namespace, 'vm-reader', 'kubevm-viewer', [{ apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['get', 'list'] }]);
  workDir = mkdtempSync(join(tmpdir(), 'kubectl-virt-e2e-'));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kubevm-e2e', '-f', join(workDir, 'key')]);
  const sshKey = readFileSync(join(workDir, 'key.pub')).toString('base64');
  await createVm('one', 'Halted', `console=tty0 console=ttyS0 kubevm.shell kubevm.counter=0 kubevm.net=dhcp kubevm.http=8080 kubevm.agent=fake kubevm.ssh=${sshKey}`);
  // Debian's real qemu-guest-agent, its disk mounted for fslist: booting beside the other tests.
  await client.resource<KubeObject & { spec: unknown }>(vmResource).create({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'agent', namespace },
    spec: { runStrategy: 'Always', template: { spec: counterVmiSpec(5, 'console=ttyS0 kubevm.agent=qemu-ga kubevm.disk=keep kubevm.counter=0') } },
  });
}, 240_000);

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
  if (binDir) rmSync(binDir, { recursive: true, force: true });
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  client?.close();
});

describe('kubectl virt on the local cluster', () => {
  it('is found by kubectl plugin list and answers version for client and server', async () => {
    const list = await run(env.kubectl, ['plugin', 'list'], { env: pluginEnv });
    expect(list.stdout).toContain(join(binDir, 'kubectl-virt'));
    const version = await virt('version');
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^Client Version: version\.Info\{GitVersion:"v\d+\.\d+\.\d+"/m);
    expect(version.stdout).toMatch(/^Server Version: version\.Info\{GitVersion:"v\d+\.\d+\.\d+"/m);
  });

  it('start --wait, pause, unpause, soft-reboot, reset, migrate, migrate-cancel and restart --wait one VM', async () => {
    expect((await virt('start', 'one', '--dry-run')).stdout).toContain('VM one was scheduled to start (dry run: nothing changed)');
    expect((await vm('one'))?.spec.runStrategy).toBe('Halted');

    // Not a terminal: progress comes as plain lines on stderr, the result on stdout.
    const started = await virt('start', 'one', '--wait');
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/^VM one was scheduled to start; running after [\d.]+s\n$/);
    expect(started.stderr).toMatch(/^vm\/one: \w+ \(\d+s\)$/m);
    expect(started.stderr).toMatch(/^vm\/one: Running \(\d+s\)$/m);
    expect((await vmi('one'))?.status?.phase).toBe('Running');
    const firstUid = (await vmi('one'))?.metadata?.uid;

    expectOneLineFailure(await virt('start', 'one'), /^error: VirtualMachine "one": VM is already running$/);

    expect((await virt('pause', 'vm', 'one')).stdout).toBe('VM one was scheduled to pause\n');
    await eventually('VMI paused', 60_000, async () => hasCondition(await vmi('one'), 'Paused'));
    expect((await virt('unpause', 'vmi', 'one')).stdout).toBe('VMI one was scheduled to unpause\n');
    await eventually('VMI unpaused', 60_000, async () => !hasCondition(await vmi('one'), 'Paused'));

    expect(await virt('soft-reboot', 'one')).toMatchObject({ code: 0, stdout: 'VMI one was scheduled to soft reboot\n' });
    await eventually('the soft reboot request consumed', 60_000, async () => (await vmi('one'))?.metadata?.annotations?.['kubevm.io/soft-reboot-requested'] === undefined);
    expect(await virt('reset', 'one')).toMatchObject({ code: 0, stdout: 'VMI one was scheduled to reset\n' });

    expect((await virt('migrate', 'one', '--dry-run')).code).toBe(0);
    const migrations = () => client.resource<KubeObject & { spec: { vmiName: string } }>(vmimResource).list({ namespace });
    expect((await migrations()).items).toHaveLength(0);
    expect(await virt('migrate', 'one', '--addedNodeSelector', 'kubernetes.io/os=linux')).toMatchObject({ code: 0, stdout: 'VM one was scheduled to migrate\n' });
    const created = (await migrations()).items;
    expect(created.map((m) => m.spec.vmiName)).toEqual(['one']);
    // One node: the migration cannot finish, so it is still there to cancel.
    const cancelled = await virt('migrate-cancel', 'one');
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`migration ${created[0]?.metadata?.name ?? ''} deleted`);
    await eventually('the migration deleted', 60_000, async () => (await migrations()).items.length === 0);
    expectOneLineFailure(await virt('migrate-cancel', 'one'), /^error: VM "one" has no migration in progress to cancel/);

    const restarted = await virt('restart', 'one', '--wait');
    expect(restarted).toMatchObject({ code: 0, stdout: expect.stringMatching(/^VM one was scheduled to restart; running again after/) });
    expect((await vmi('one'))?.metadata?.uid).not.toBe(firstUid);

  });

  it('console from a script: types a command, reads its output, Ctrl+] ends it with 0', async () => {
    const attached = startVirt('console', 'one');
    await attached.waitFor('the console connected', 'stderr', /Connected to vmi\/one's serial console/);
    // The guest may still be booting after the restart: type until its shell answers.
    await eventually(() => `the guest's shell to answer (stdout so far: ${JSON.stringify(attached.out.stdout.slice(-300))})`, 90_000, () => {
      attached.child.stdin.write('echo KUBEVM-KVIRT-$((6*7))\r');
      return attached.out.stdout.includes('KUBEVM-KVIRT-42');
    }, { intervalMs: 3_000 });
    attached.child.stdin.write('\x1d');
    expect(await attached.exited).toBe(0);
  });

  it('port-forward vm/NAME LOCAL:GUEST reaches the guest\'s web server', async () => {
    const forward = startVirt('port-forward', 'vm/one', '0:8080');
    const [, port] = await forward.waitFor('the local port', 'stdout', /Forwarding from [^:\s]+:(\d+) -> 8080/);
    try {
      const page = await eventually(() => `a page through the tunnel (stderr: ${JSON.stringify(forward.out.stderr.slice(-300))})`, 90_000, async () => {
        const res = await fetch(`http://127.0.0.1:${port ?? ''}/`).catch(() => undefined);
        return res?.ok ? res.text() : undefined;
      });
      expect(page.length).toBeGreaterThan(0);
    } finally {
      forward.child.kill('SIGINT');
      await forward.exited;
    }
  });

  it('ssh runs a command in the guest through port-forward; scp copies a file in and back', async () => {
    await eventually('dropbear listening in the guest', 90_000, async () => (await guestConsole(client, namespace, 'one')).includes('KUBEVM-SSH listening on 22'));
    const sshFlags = ['-i', join(workDir, 'key'), '-t', '-o StrictHostKeyChecking=no', '-t', '-o UserKnownHostsFile=/dev/null', '-t', '-o BatchMode=yes', '-t', '-o LogLevel=ERROR'];
    expect(await virt('ssh', 'root@vm/one', ...sshFlags, '-c', 'echo KUBEVM-SSH-$((3*3))')).toMatchObject({ code: 0, stdout: 'KUBEVM-SSH-9\n' });
    // A command after the destination, as with ssh itself; the guest's exit status comes back.
    expect(await virt('ssh', ...sshFlags, '-l', 'root', 'vm/one', 'exit 3')).toMatchObject({ code: 3 });

    const sent = join(workDir, 'sent');
    const back = join(workDir, 'back');
    writeFileSync(sent, randomBytes(48 * 1024));
    expect(await virt('scp', ...sshFlags, sent, 'root@vm/one:/tmp/copied')).toMatchObject({ code: 0 });
    expect(await virt('scp', ...sshFlags, 'root@vm/one:/tmp/copied', back)).toMatchObject({ code: 0 });
    expect(readFileSync(back).equals(readFileSync(sent))).toBe(true);
  });

  it('vnc --proxy-only completes an RFB handshake on its port; vnc screenshot -f writes a PNG of that display', async () => {
    const proxy = startVirt('vnc', 'one', '--proxy-only');
    let display: { width: number; height: number };
    try {
      const [, port] = await proxy.waitFor('the proxy\'s port', 'stdout', /^\{"port":(\d+)\}$/m);
      const socket = net.createConnection({ host: '127.0.0.1', port: Number(port) });
      try {
        display = await rfbHandshake(byteReader((push) => socket.on('data', push)), (b) => socket.write(b));
      } finally {
        socket.destroy();
      }
    } finally {
      proxy.child.kill('SIGINT');
    }
    expect(await proxy.exited).toBe(0);
    const file = join(workDir, 'screen.png');
    const shot = await virt('vnc', 'screenshot', 'one', '-f', file);
    expect(shot).toMatchObject({ code: 0, stdout: expect.stringMatching(/^wrote the screen of vmi\/one to .*screen\.png \(\d+ bytes\)\n$/) });
    const png = decodePng(readFileSync(file));
    expect({ width: png.width, height: png.height }).toEqual(display);
  });

  it('vnc --web: headless Chromium shows the guest\'s screen in the page; its link works once', async () => {
    const web = startVirt('vnc', 'one', '--web');
    const [url] = await web.waitFor('the page\'s URL', 'stdout', /^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+$/m);
    const origin = new URL(url).origin;
    // The window is the guest's screen and the page's header: noVNC then draws it at scale 1.
    const file = join(workDir, 'web-screen.png');
    const screenshot = async () => {
      const res = await virt('vnc', 'screenshot', 'one', '-f', file);
      if (res.code !== 0) throw new Error(`vnc screenshot: ${res.stderr}`);
      return decodePng(readFileSync(file));
    };
    const { width, height } = await screenshot();
    const browser = await openHeadlessChromium({ width, height: height + PAGE_HEADER_PX });
    try {
      await browser.navigate(url);
      await eventually(() => `the page connected (title, status: ${JSON.stringify(web.out.stderr.slice(-300))}; chromium: ${browser.log().slice(-300)})`, 60_000, async () =>
        (await browser.evaluate<string>('document.title')) === 'connected: vmi/one',
      );
      expect(web.out.stderr).toContain('vnc --web: the page is connected to the display of vmi/one');
      // The screenshot of the page's display and the VMI's own screendump show the same screen
      // (but for the blinking cursor); taken again while the guest's console moves between the two.
      const rect = await browser.evaluate<{ x: number; y: number; width: number; height: number }>(
        '(({x, y, width, height}) => ({x, y, width, height}))(document.querySelector("#screen canvas").getBoundingClientRect())',
      );
      expect(rect).toEqual({ x: 0, y: PAGE_HEADER_PX, width, height });
      let last = '';
      await eventually(() => `the page showing the VMI's screen (${last})`, 30_000, async () => {
        const shown = decodePng(await browser.screenshot(rect));
        const guest = await screenshot();
        const same = samePixels(shown, guest);
        last = `${(same * 100).toFixed(2)}% of the pixels alike; the page's screen has ${colourCount(shown)} colours, the guest's ${colourCount(guest)}`;
        return same >= 0.99 && colourCount(guest) > 1;
      });

      // The token is spent; without the page's cookie nothing is served.
      expect((await fetch(url, { redirect: 'manual' })).status).toBe(403);
      expect((await fetch(`${origin}/`, { redirect: 'manual' })).status).toBe(403);
      expect((await fetch(`${origin}/vnc-client.js`)).status).toBe(403);

      // The page's Quit ends the plugin with 0.
      await browser.evaluate('document.getElementById("quit").click()');
      expect(await web.exited).toBe(0);
    } finally {
      web.child.kill('SIGINT');
      await browser.close();
    }
  });

  // Last of the running VM's tests: the launcher asks the agent every 10 s, so by now it has.
  it('guestosinfo prints the guest agent\'s answer as JSON', async () => {
    await eventually('the guest agent connected and its OS in the VMI\'s status', 90_000, async () => {
      const current = await vmi('one');
      return hasCondition(current, 'AgentConnected') && current?.status?.guestOSInfo?.prettyName !== undefined;
    });
    const info = await virt('guestosinfo', 'one');
    expect(info).toMatchObject({ code: 0, stderr: '' });
    // KubeVirt's VirtualMachineInstanceGuestAgentInfo; the test guest's stand-in agent names its OS
    // so, with the guest kernel's real release.
    expect(JSON.parse(info.stdout)).toMatchObject({
      kind: 'VirtualMachineInstanceGuestAgentInfo',
      os: { id: 'busybox', prettyName: 'kubevm busybox test guest', kernelRelease: expect.stringMatching(/^\d+\.\d+/) },
    });
  });

  it('userlist and fslist print the real guest agent\'s lists as JSON', async () => {
    await eventually('the guest agent of vmi/agent connected', 120_000, async () => hasCondition(await vmi('agent'), 'AgentConnected'));
    const users = await virt('userlist', 'agent');
    expect(users).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(users.stdout)).toMatchObject({ kind: 'VirtualMachineInstanceGuestOSUserList', items: [{ userName: 'kubevm', loginTime: expect.any(Number) }] });
    const filesystems = await virt('fslist', 'agent');
    expect(filesystems).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(filesystems.stdout)).toMatchObject({ kind: 'VirtualMachineInstanceFileSystemList', items: [{ mountPoint: '/mnt/disk', fileSystemType: 'ext4' }] });
  });

  it('stop --wait stops it, and an attached console says why it ended; stopping again is one line', async () => {
    const attached = startVirt('console', 'one', '--timeout', '3s');
    await attached.waitFor('the console connected', 'stderr', /Connected to/);
    const stopped = await virt('stop', 'one', '--wait');
    expect(stopped).toMatchObject({ code: 0, stdout: expect.stringMatching(/^VM one was scheduled to stop; stopped after/) });
    expect(await vmi('one')).toBeUndefined();
    expect(await attached.exited).toBe(1);
    expect(attached.out.stderr).toMatch(/console: the console connection of vmi\/one was closed.*; (the VMI is gone|the VMI is being deleted|the VMI is \w+); reconnecting/);
    // It ends with one line saying why: its 3 s ran out while the VMI went away, or the VMI it
    // tried again already ended (Succeeded: a console will not come back to it), or the VMI still
    // showed Running but its launcher's QEMU had stopped.
    expect(attached.out.stderr).toMatch(
      /^error: (no console for vmi\/one after 3s since the connection dropped: |VirtualMachineInstance "one": VirtualMachineInstance \S+\/one( is (Succeeded|Failed), not Running|: launcher console: (the domain is \w+, not running|QEMU's socket is gone: the domain is stopping \(.*\)))$)/m,
    );
    expect(attached.out.stderr).not.toMatch(/unreachable/);
    expectOneLineFailure(await virt('stop', 'one'), /^error: VirtualMachine "one": VM is not running$/);
  });

  it('forbidden and not found are one line and a non-zero exit', async () => {
    const viewer = join(env.kubeconfigDir, 'viewer.kubeconfig');
    expectOneLineFailure(
      await virt('start', 'one', '--kubeconfig', viewer),
      new RegExp(`^error: forbidden: user "kubevm-viewer" may not update virtualmachines/start \\(API group "subresources.kubevirt.io"\\) in namespace "${namespace}"`),
    );
    expectOneLineFailure(await virt('stop', 'nothere'), new RegExp(`^error: VirtualMachine "nothere" not found in namespace "${namespace}"$`));
    expectOneLineFailure(await virt('pause', 'vm', 'nothere'), new RegExp(`^error: VirtualMachine "nothere" not found in namespace "${namespace}"$`));
  });

  it('a --wait that times out says what the VM is waiting for', async () => {
    await client.resource<KubeObject & { spec: unknown }>(vmResource).create({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'huge', namespace },
      spec: { runStrategy: 'Halted', template: { spec: { domain: { memory: { guest: '900Gi' }, devices: {} } } } },
    });
    const res = await virt('start', 'huge', '--wait', '--timeout', '8s');
    expect(res.code).not.toBe(0);
    // The progress lines, then the one error line.
    const lines = res.stderr.trimEnd().split('\n');
    expect(lines.slice(0, -1).every((l) => l.startsWith('vm/huge: '))).toBe(true);
    expect(lines[lines.length - 1]).toMatch(/^error: timed out after 8s waiting for vm\/huge to be Running; the VM is \w+.*; latest events: .*/);
    await virt('stop', 'huge');
  });

  it('create vm | kubectl apply -f - gives a running VM; create instancetype and expand --vm agree', async () => {
    const manifest = await virt('create', 'vm', '--name', 'made', '--memory', '128Mi', '--volume-containerdisk', `src:${diskImage},name:root`, '--termination-grace-period', '5');
    expect(manifest.code).toBe(0);
    await kubectl(env, ['apply', '-n', namespace, '-f', '-'], { input: manifest.stdout });
    await eventually('the created VM Running', 240_000, async () => (await vmi('made'))?.status?.phase === 'Running' && (await vm('made'))?.status?.printableStatus === 'Running');
    // No guest agent in this guest: one line that says so.
    expectOneLineFailure(await virt('guestosinfo', 'made'), /^error: VirtualMachineInstance "made": VMI does not have guest agent connected: the guest runs no qemu-guest-agent/);

    const instancetype = await virt('create', 'instancetype', '--namespaced', '--name', 'tiny', '--cpu', '2', '--memory', '192Mi');
    await kubectl(env, ['apply', '-n', namespace, '-f', '-'], { input: instancetype.stdout });
    const typed = await virt('create', 'vm', '--name', 'typed', '--run-strategy', 'Halted', '--instancetype', 'virtualmachineinstancetype/tiny');
    await kubectl(env, ['apply', '-n', namespace, '-f', '-'], { input: typed.stdout });
    const expanded = await virt('expand', '--vm', 'typed', '-o', 'json');
    expect(expanded.code).toBe(0);
    const spec = (JSON.parse(expanded.stdout) as { spec: { instancetype?: unknown; template: { spec: { domain: unknown } } } }).spec;
    expect(spec.instancetype).toBeUndefined();
    expect(spec.template.spec.domain).toMatchObject({ cpu: { sockets: 2 }, memory: { guest: '192Mi' } });
  });

  it('completes VM names from the cluster', async () => {
    const names = await run(join(binDir, 'kubectl-virt'), ['__complete', '-n', namespace, 'start', ''], { env: pluginEnv });
    expect(names.stdout.split('\n').filter((n) => n !== '')).toEqual(expect.arrayContaining(['one', 'made', 'typed']));
    const script = await virt('completion', 'bash');
    expect(script.stdout).toContain('complete -o default -F _kubectl_virt kubectl-virt');
  });
});
