// One request on a launcher connection of its own, answered by one line, after which nothing more
// is read: how the node handler asks `hello` and opens a byte stream (console, VNC, a guest TCP
// port, a screenshot), after whose answer line the connection carries raw bytes
// (docs/launcher-protocol.md). The answer is validated against the protocol's schema like every
// launcher message; a launcher that answers anything else is refused.
import type net from 'node:net';
import { LauncherResponse, describeZodError, launcherCommands } from '../runtime/contracts/launcher-protocol.js';
import type { LauncherArgs, LauncherCommand, LauncherResult } from '../runtime/contracts/launcher-protocol.js';
import { NdjsonReader, ndjsonLine, parseJsonLine } from '../runtime/ndjson.js';
import { LauncherCommandError } from './launcher-client.js';

/** An answer line is small (a guest agent list may ask for more); a launcher that sends more without a newline is cut off. */
const ANSWER_MAX_BYTES = 64 * 1024;

/**
 * Sends `command` on `socket` (connected to a launcher's command socket) and resolves with its
 * validated answer, reading nothing more: for a stream command the socket then carries the
 * stream, paused, with any bytes that came with the answer put back in front. Rejects (and
 * destroys the socket) on a refusal, an invalid answer, a closed connection or no answer within
 * `timeoutMs`.
 */
export function requestOnLauncherConnection<C extends LauncherCommand>(
  socket: net.Socket,
  command: C,
  args: LauncherArgs<C>,
  timeoutMs = 15_000,
  maxAnswerBytes = ANSWER_MAX_BYTES,
): Promise<LauncherResult<C>> {
  return new Promise<LauncherResult<C>>((resolve, reject) => {
    let settled = false;
    const fail = (message: string, step?: string): void => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.destroy();
      reject(new LauncherCommandError(command, message, step));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    const onData = (chunk: Buffer): void => reader.push(chunk);
    const onClose = (): void => fail('the launcher closed the connection');
    const onError = (error: Error): void => fail(error.message);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
    };
    const reader = new NdjsonReader({
      maxLineBytes: maxAnswerBytes,
      onOverflow: (bytes) => fail(`an answer line of more than ${bytes} bytes`),
      onLine: (line) => {
        reader.stop();
        const json = parseJsonLine(line);
        if (!json.ok) return fail(`an answer that is not JSON (${json.error})`);
        const response = LauncherResponse.safeParse(json.value);
        if (!response.success) return fail(`an invalid answer: ${describeZodError(response.error)}`);
        if (!response.data.ok) return fail(response.data.error.message, response.data.error.step);
        const result = launcherCommands[command].result.safeParse(response.data.result);
        if (!result.success) return fail(`an invalid answer: ${describeZodError(result.error, 'result')}`);
        settled = true;
        cleanup();
        socket.pause();
        const rest = reader.remainder();
        if (rest.length) socket.unshift(rest);
        resolve(result.data as LauncherResult<C>);
      },
    });
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onError);
    // A previous request on this connection left it paused.
    socket.resume();
    socket.write(ndjsonLine({ id: 1, command, args }));
  });
}
