// The launcher's input (runtime/contracts/launcher-input.ts): the VMI arrives from the node handler
// on `input.sock` in the pod's private directory. The launcher takes the first delivery that is the
// VMI of its own pod (the uid the controller put in the pod's spec), answers, removes the socket and
// returns it; anything else is answered with the reason and the launcher keeps listening. Whoever
// can reach the socket (the handler, root on the node, and this pod's own uid) gets nothing from it.
import { chmod, mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { LAUNCHER_INPUT_MAX_BYTES, LauncherInputDelivery } from '../runtime/contracts/launcher-input.js';
import type { LauncherInputAnswer } from '../runtime/contracts/launcher-input.js';
import { describeZodError } from '../runtime/contracts/launcher-protocol.js';
import { NdjsonReader, ndjsonLine, parseJsonLine } from '../runtime/ndjson.js';
import { checkLauncherVmi } from './vmi.js';
import type { LauncherVmi } from './vmi.js';

/** A delivery's VMI, or why it is refused. */
export function acceptDelivery(line: string, uid: string): { ok: true; vmi: LauncherVmi } | { ok: false; error: string } {
  const parsed = parseJsonLine(line);
  if (!parsed.ok) return { ok: false, error: `not JSON: ${parsed.error}` };
  const delivery = LauncherInputDelivery.safeParse(parsed.value);
  if (!delivery.success) return { ok: false, error: describeZodError(delivery.error) };
  let vmi: LauncherVmi;
  try {
    vmi = checkLauncherVmi(delivery.data.vmi, 'the delivered VMI');
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
  if (vmi.metadata.uid !== uid) return { ok: false, error: `the delivered VMI has uid ${JSON.stringify(vmi.metadata.uid ?? null)}; this pod runs the VMI ${uid}` };
  return { ok: true, vmi };
}

/**
 * Listens on `socketPath` until the node handler delivers the VMI whose uid is `uid`; `signal`
 * ends the wait (the pod stopped before it had its VMI), rejecting with the signal's reason.
 */
export async function receiveVmi(socketPath: string, uid: string, log: Logger, signal?: AbortSignal): Promise<LauncherVmi> {
  await mkdir(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  await rm(socketPath, { force: true });
  let taken: ((delivery: { vmi: LauncherVmi; from: net.Socket }) => void) | undefined;
  let abandoned: ((reason: unknown) => void) | undefined;
  const received = new Promise<{ vmi: LauncherVmi; from: net.Socket }>((resolve, reject) => {
    taken = resolve;
    abandoned = reject;
  });
  const connections = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => socket.destroy());
    const onData = (chunk: Buffer) => reader.push(chunk);
    // One delivery per connection, one answer: nothing is read after it. A refused peer is cut
    // once its answer is out, so one that keeps writing, or never closes, holds nothing here.
    const answer = (message: LauncherInputAnswer) => {
      socket.off('data', onData);
      if (message.ok) socket.end(ndjsonLine(message));
      else socket.end(ndjsonLine(message), () => socket.destroy());
    };
    const reader = new NdjsonReader({
      maxLineBytes: LAUNCHER_INPUT_MAX_BYTES,
      onLine: (line) => {
        reader.stop();
        const result = acceptDelivery(line, uid);
        if (!result.ok) {
          log.warn({ error: result.error }, 'input refused');
          answer({ ok: false, error: result.error });
          return;
        }
        answer({ ok: true });
        taken?.({ vmi: result.vmi, from: socket });
      },
      onOverflow: (bytes) => {
        log.warn({ bytes }, 'input refused: longer than a delivery can be');
        answer({ ok: false, error: `more than ${LAUNCHER_INPUT_MAX_BYTES} bytes without a newline` });
      },
    });
    socket.on('data', onData);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The node handler (root on the node) and the launcher's own uid only, from the moment the
    // socket exists: listen binds synchronously, under this umask.
    const umask = process.umask(0o177);
    try {
      server.listen(socketPath, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
  const abort = () => abandoned?.(signal?.reason);
  let from: net.Socket | undefined;
  try {
    await chmod(socketPath, 0o600);
    log.info({ socket: socketPath }, 'waiting for the VMI from the node handler');
    if (signal?.aborted) abort();
    signal?.addEventListener('abort', abort, { once: true });
    const delivery = await received;
    from = delivery.from;
    return delivery.vmi;
  } finally {
    signal?.removeEventListener('abort', abort);
    // No more connections; the one that delivered ends once the handler read the answer, any other is cut.
    server.close();
    for (const socket of connections) if (socket !== from) socket.destroy();
    await rm(socketPath, { force: true });
  }
}
