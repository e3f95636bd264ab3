// console: the VMI's serial console over the websocket subresource. On a terminal stdin is put in
// raw mode and Ctrl+] ends the session (exit 0); from a pipe the bytes are sent as they come, a
// Ctrl+] byte ends it too, and the end of input ends it once the guest has been quiet for a
// moment. The guest's bytes go to stdout untouched; what the plugin itself says goes to stderr,
// always saying why: not running yet (it waits), refused (the server's reason), dropped (it
// reconnects, also to the VMI's next incarnation after a restart), taken over by another client
// (it ends: one console at a time).
import type WebSocket from 'ws';
import type { VirtApi } from './api.js';
import { UserError } from './errors.js';
import { openStream, StreamRefused } from './streams.js';
import { formatElapsed } from './wait.js';

/** Ctrl+]: the escape that ends the console, as virtctl's. */
export const ESCAPE = 0x1d;

/** Splits input at the escape byte: what to send, and whether the escape was typed. */
export function splitAtEscape(chunk: Buffer): { send: Buffer; escaped: boolean } {
  const at = chunk.indexOf(ESCAPE);
  return at === -1 ? { send: chunk, escaped: false } : { send: chunk.subarray(0, at), escaped: true };
}

export interface ConsoleOptions {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** How long to wait for the VMI to accept a console (at start and after a drop). */
  timeoutMs: number;
  reconnect: boolean;
  /** After the end of piped input: end once the guest was quiet this long (at most 10×). */
  quietMs?: number;
}

/** Connects, waiting while the VMI is not running yet; other refusals fail at once. */
async function connect(virt: VirtApi, name: string, options: ConsoleOptions, waitingFor: string): Promise<WebSocket> {
  const started = Date.now();
  let said = '';
  for (;;) {
    try {
      return await openStream(virt, 'vmi', name, 'console');
    } catch (err) {
      if (!(err instanceof StreamRefused) || !err.transient) throw err;
      if (Date.now() - started >= options.timeoutMs) {
        throw new UserError(`no console for vmi/${name} after ${formatElapsed(options.timeoutMs)} ${waitingFor}: ${err.message}`);
      }
      if (said !== err.message) options.stderr.write(`console: ${err.message}; waiting up to ${formatElapsed(options.timeoutMs)}\n`);
      said = err.message;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

export async function runConsole(virt: VirtApi, name: string, options: ConsoleOptions): Promise<void> {
  const { stdin, stdout, stderr } = options;
  const interactive = stdin.isTTY === true;
  let ws = await connect(virt, name, options, 'waiting for it to run');
  let connectedUid = (await virt.vmi(name).catch(() => undefined))?.metadata?.uid;
  stderr.write(`Connected to vmi/${name}'s serial console.${interactive ? ' Ctrl+] ends it.' : ''}\n`);

  let finished = false;
  let inputEnded = false;
  let lastOutput = Date.now();
  let resolveDone: () => void = () => {};
  let rejectDone: (err: Error) => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const finish = (err?: Error) => {
    if (finished) return;
    finished = true;
    if (interactive) stdin.setRawMode(false);
    // Destroyed, not paused: a paused pipe still holds the process open.
    stdin.destroy();
    ws.close();
    if (err) rejectDone(err);
    else resolveDone();
  };

  const attach = (socket: WebSocket) => {
    // A dead peer (a node gone, a proxy that dropped the connection) shows as missing pongs.
    let alive = true;
    const heartbeat = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, 15_000);
    socket.on('pong', () => (alive = true));
    socket.on('message', (data: Buffer) => {
      lastOutput = Date.now();
      stdout.write(data);
    });
    socket.on('close', (code: number, reason: Buffer) => {
      clearInterval(heartbeat);
      if (finished || socket !== ws) return;
      void dropped(code, reason.toString('utf8'));
    });
    socket.on('error', () => {
      // 'close' follows and says what happened.
    });
  };

  const dropped = async (code: number, reason: string) => {
    const why = `the console connection of vmi/${name} was closed${reason ? `: ${reason}` : code === 1006 ? ' without a goodbye (the network or a proxy dropped it)' : ''}`;
    if (!options.reconnect || inputEnded) return finish(inputEnded ? undefined : new UserError(why));
    const vmi = await virt.vmi(name).catch(() => undefined);
    // The server closes a console cleanly when another client takes it over (KubeVirt's rule):
    // the same VMI still running means someone else has it now, and taking it back would fight.
    if (code !== 1006 && vmi?.metadata?.uid === connectedUid && vmi?.status?.phase === 'Running' && !vmi.metadata?.deletionTimestamp) {
      return finish(new UserError(`${why}: vmi/${name} still runs, so another client has probably connected to its console (one at a time)`));
    }
    const state = !vmi ? 'the VMI is gone' : vmi.metadata?.deletionTimestamp ? 'the VMI is being deleted' : `the VMI is ${vmi.status?.phase ?? 'Pending'}${vmi.metadata?.uid !== connectedUid ? ' (a new one)' : ''}`;
    stderr.write(`\r\nconsole: ${why}; ${state}; reconnecting (up to ${formatElapsed(options.timeoutMs)})\r\n`);
    try {
      ws = await connect(virt, name, options, 'since the connection dropped');
    } catch (err) {
      return finish(err instanceof Error ? err : new Error(String(err)));
    }
    if (finished) return void ws.close();
    connectedUid = (await virt.vmi(name).catch(() => undefined))?.metadata?.uid;
    stderr.write(`console: reconnected to vmi/${name}\r\n`);
    attach(ws);
  };

  attach(ws);
  if (interactive) stdin.setRawMode(true);
  stdin.on('data', (chunk: Buffer) => {
    const { send, escaped } = splitAtEscape(chunk);
    if (send.length > 0 && ws.readyState === ws.OPEN) ws.send(send);
    if (escaped) finish();
  });
  stdin.on('end', () => {
    inputEnded = true;
    // Piped input is over: let the guest answer what was sent, then end.
    const quiet = options.quietMs ?? 1000;
    const endedAt = Date.now();
    const check = setInterval(() => {
      if (finished) return clearInterval(check);
      if (Date.now() - lastOutput >= quiet || Date.now() - endedAt >= quiet * 10) {
        clearInterval(check);
        finish();
      }
    }, Math.max(50, quiet / 4));
  });
  stdin.resume();
  await done;
  if (interactive) stderr.write('\r\n');
}
