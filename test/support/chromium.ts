// Headless Chromium (Debian's `chromium` package, scripts/install-deps.sh) driven over the
// DevTools protocol on its own websocket: open a page, read from it, click in it, and take a
// screenshot of a part of it. Tests wait on what the page shows, never on a guessed time.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface HeadlessPage {
  /** Opens the URL in the page (does not wait for it to load: wait on what it shows). */
  navigate(url: string): Promise<void>;
  /** The value of a JavaScript expression in the page (awaited when a promise). */
  evaluate<T>(expression: string): Promise<T>;
  /** A PNG of the page's viewport, or of `clip` in CSS pixels at scale 1. */
  screenshot(clip?: Rect): Promise<Buffer>;
  /** Chromium's stderr so far, for failure messages. */
  log(): string;
  close(): Promise<void>;
}

interface Reply {
  id?: number;
  result?: unknown;
  error?: { message: string };
  method?: string;
}

/**
 * Starts `chromium --headless=new` with a viewport of width × height CSS pixels at device scale 1
 * and a profile of its own (removed on close), and attaches to its page.
 */
export async function openHeadlessChromium(options: { width: number; height: number; binary?: string }): Promise<HeadlessPage> {
  const profile = mkdtempSync(join(tmpdir(), 'kubevm-chromium-'));
  // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
  const child: ChildProcess = spawn(
    options.binary ?? 'chromium',
    ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--remote-debugging-port=0', `--user-data-dir=${profile}`, `--window-size=${options.width},${options.height}`, 'about:blank'],
    // Its own process group, so that close() can end its helper processes too.
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`cannot start chromium (install Debian's chromium package: scripts/install-deps.sh): ${err.message}`)));
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (match?.[1]) resolve(match[1]);
    });
    void exited.then((code) => reject(new Error(`chromium exited ${code} before it listened: ${stderr.slice(-500)}`)));
  });

  const socket = new WebSocket(endpoint, { perMessageDeflate: false, maxPayload: 256 << 20 });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; method: string }>();
  socket.on('message', (data: Buffer) => {
    const reply = JSON.parse(data.toString()) as Reply;
    const waiter = reply.id === undefined ? undefined : pending.get(reply.id);
    if (!waiter || reply.id === undefined) return;
    pending.delete(reply.id);
    if (reply.error) waiter.reject(new Error(`${waiter.method}: ${reply.error.message}`));
    else waiter.resolve(reply.result);
  });
  socket.on('close', () => {
    for (const waiter of pending.values()) waiter.reject(new Error(`${waiter.method}: the DevTools connection closed (chromium: ${stderr.slice(-300)})`));
    pending.clear();
  });
  const send = <T>(method: string, params: object = {}, sessionId?: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, method });
      socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });

  const { targetInfos } = await send<{ targetInfos: Array<{ targetId: string; type: string }> }>('Target.getTargets');
  const target = targetInfos.find((t) => t.type === 'page');
  if (!target) throw new Error('chromium has no page to attach to');
  const { sessionId } = await send<{ sessionId: string }>('Target.attachToTarget', { targetId: target.targetId, flatten: true });
  const inPage = <T>(method: string, params: object = {}) => send<T>(method, params, sessionId);
  await inPage('Emulation.setDeviceMetricsOverride', { width: options.width, height: options.height, deviceScaleFactor: 1, mobile: false });

  return {
    navigate: async (url) => {
      const { errorText } = await inPage<{ errorText?: string }>('Page.navigate', { url });
      if (errorText) throw new Error(`chromium cannot open ${url}: ${errorText}`);
    },
    evaluate: async <T>(expression: string) => {
      const { result, exceptionDetails } = await inPage<{ result: { value?: unknown }; exceptionDetails?: { text: string; exception?: { description?: string } } }>('Runtime.evaluate', {
        expression,
        returnByValue: true,
        awaitPromise: true,
      });
      if (exceptionDetails) throw new Error(`in the page: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
      return result.value as T;
    },
    screenshot: async (clip) => {
      const { data } = await inPage<{ data: string }>('Page.captureScreenshot', { format: 'png', ...(clip ? { clip: { ...clip, scale: 1 } } : {}) });
      return Buffer.from(data, 'base64');
    },
    log: () => stderr,
    close: async () => {
      socket.close();
      child.kill('SIGTERM');
      await exited;
      // Chromium's helper processes can outlive the browser process and still write to the
      // profile (ENOTEMPTY): the whole group is ended, and waited for, before the profile goes.
      await endProcessGroup(child.pid);
      rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
    },
  };
}

/** Kills every process left in the group `pgid` leads and waits (up to 10 s) until none is left. */
async function endProcessGroup(pgid: number | undefined): Promise<void> {
  if (pgid === undefined) return;
  const alive = (): boolean => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 10_000;
  while (alive() && Date.now() < deadline) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Gone between the check and the kill.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
