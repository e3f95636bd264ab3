// vnc: a local port a VNC viewer connects to (each connection one vnc stream), and a viewer
// started on it when one is installed; vnc screenshot: the display as a PNG file.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { VirtApi } from './api.js';
import { UserError } from './errors.js';
import type { Listener } from './forward.js';
import { listenAndForward, untilInterrupted } from './forward.js';
import { getBinary } from './streams.js';

/** Viewers virtctl knows, with how each is told the address. */
const viewers: Array<{ command: string; args: (port: number) => string[] }> = [
  { command: 'remote-viewer', args: (port) => [`vnc://127.0.0.1:${port}`] },
  { command: 'vncviewer', args: (port) => [`127.0.0.1::${port}`] },
  { command: 'xtightvncviewer', args: (port) => [`127.0.0.1::${port}`] },
];

/** A viewer to start: only with a display to show it on. */
function installedViewer(): (typeof viewers)[number] | undefined {
  if (!process.env['DISPLAY'] && !process.env['WAYLAND_DISPLAY']) return undefined;
  return viewers.find((v) => spawnSync('sh', ['-c', `command -v ${v.command}`], { stdio: 'ignore' }).status === 0);
}

export interface VncOptions {
  port: number;
  address: string;
  proxyOnly: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export async function runVnc(virt: VirtApi, name: string, options: VncOptions): Promise<void> {
  // Refuse now, with the reason, rather than when a viewer connects.
  const vmi = await virt.requireVmi(name);
  if (vmi.status?.phase !== 'Running') throw new UserError(`vmi/${name} is ${vmi.status?.phase ?? 'Pending'}, not Running: its display is not there yet`);
  const listener: Listener = await listenAndForward(virt, { target: 'vmi', name }, 'vnc', options.address, options.port, (line) => options.stderr.write(`vnc: ${line}\n`));
  try {
    if (options.proxyOnly) {
      // virtctl's --proxy-only answer, for scripts that read the port.
      options.stdout.write(`${JSON.stringify({ port: listener.port })}\n`);
      await untilInterrupted();
      return;
    }
    const viewer = installedViewer();
    if (!viewer) {
      options.stderr.write(`vnc: no VNC viewer to start (none of remote-viewer, vncviewer, xtightvncviewer, or no DISPLAY); connect one to ${options.address}:${listener.port}, or use --web for one in the browser. Ctrl+C ends.\n`);
      await untilInterrupted();
      return;
    }
    options.stderr.write(`vnc: ${viewer.command} on ${options.address}:${listener.port}\n`);
    const child = spawn(viewer.command, viewer.args(listener.port), { stdio: 'inherit' });
    const exit = await Promise.race([new Promise<number | null>((resolve) => child.on('exit', resolve)), untilInterrupted().then(() => null)]);
    child.kill();
    if (exit !== null && exit !== 0) throw new UserError(`vnc: ${viewer.command} exited with status ${exit}; the display stays reachable with --proxy-only or --web`);
  } finally {
    await listener.close();
  }
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export async function screenshot(virt: VirtApi, name: string, file: string): Promise<string> {
  const { body } = await getBinary(virt, 'vmi', name, 'vnc/screenshot');
  if (!body.subarray(0, 8).equals(PNG_MAGIC)) throw new UserError(`vnc screenshot: vmi/${name} answered ${body.length} bytes that are not a PNG image`);
  try {
    writeFileSync(file, body);
  } catch (err) {
    throw new UserError(`vnc screenshot: cannot write ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return `wrote the screen of vmi/${name} to ${file} (${body.length} bytes)`;
}
