// Joins two byte streams, e.g. a user's websocket and the node handler's connection, or that
// connection and a launcher's console: every console, VNC and port-forward stream is such a chain.
// - Bounded: when one side's writer is over its high-water mark, reading from the other side
//   pauses until it drains (backpressure), so memory per stream is bounded whatever the peers'
//   speeds; the pause travels back hop by hop to the source.
// - A writer that stays full longer than `stallTimeoutMs` ends the bridge: a client that stopped
//   reading may not hold up the guest (a paused serial console stalls the guest's UART).
// - When one side ends, the other is ended (its buffered bytes still flushed); when one closes or
//   fails, the other is given `closeGraceMs` to flush, then both are destroyed. Nothing outlives
//   the bridge: a vanished client closes the upstream, a vanished upstream the client.
import type { Duplex } from 'node:stream';

export type BridgeSide = 'a' | 'b';

export interface BridgeEnd {
  /** The side that ended first (closed, failed, or whose reader stalled). */
  side: BridgeSide;
  reason: 'closed' | 'error' | 'stalled';
  error?: Error;
}

export interface BridgeOptions {
  /** A writer that stays over its high-water mark this long ends the bridge; 0 (default) never. */
  stallTimeoutMs?: number;
  /** After one side closed, how long the other may take to flush and close (default 5 s). */
  closeGraceMs?: number;
}

/** Bridges `a` and `b` until either goes away; resolves once both are destroyed, with why. */
export function bridge(a: Duplex, b: Duplex, options: BridgeOptions = {}): Promise<BridgeEnd> {
  const stallTimeoutMs = options.stallTimeoutMs ?? 0;
  const closeGraceMs = options.closeGraceMs ?? 5000;
  return new Promise<BridgeEnd>((resolve) => {
    let first: BridgeEnd | undefined;
    let finished = false;
    const timers = new Set<NodeJS.Timeout>();
    const finish = (): void => {
      if (finished) return;
      finished = true;
      for (const timer of timers) clearTimeout(timer);
      a.destroy();
      b.destroy();
      resolve(first ?? { side: 'a', reason: 'closed' });
    };
    const record = (end: BridgeEnd): void => {
      first ??= end;
    };
    const other = (side: BridgeSide): Duplex => (side === 'a' ? b : a);
    const sideOf = (stream: Duplex): BridgeSide => (stream === a ? 'a' : 'b');

    // Reading `src`, writing `dst`.
    const pump = (src: Duplex, dst: Duplex): void => {
      let waiting = false;
      let stallTimer: NodeJS.Timeout | undefined;
      const onDrain = (): void => {
        waiting = false;
        if (stallTimer) {
          clearTimeout(stallTimer);
          timers.delete(stallTimer);
          stallTimer = undefined;
        }
        if (!finished) src.resume();
      };
      src.on('data', (chunk: Buffer) => {
        if (finished) return;
        if (dst.write(chunk) || waiting) return;
        waiting = true;
        src.pause();
        dst.once('drain', onDrain);
        if (stallTimeoutMs > 0) {
          stallTimer = setTimeout(() => {
            record({ side: sideOf(dst), reason: 'stalled' });
            finish();
          }, stallTimeoutMs);
          timers.add(stallTimer);
        }
      });
      src.on('end', () => {
        if (!dst.writableEnded) dst.end();
      });
    };
    pump(a, b);
    pump(b, a);
    // Either may have been paused by its opener until the bridge took over.
    a.resume();
    b.resume();

    for (const stream of [a, b]) {
      const side = sideOf(stream);
      stream.on('error', (error: Error) => {
        record({ side, reason: 'error', error });
        finish();
      });
      stream.on('close', () => {
        record({ side, reason: 'closed' });
        const peer = other(side);
        if (peer.destroyed) return finish();
        // Let the peer flush what it holds and close cleanly (a websocket close frame, a FIN).
        if (!peer.writableEnded) peer.end();
        peer.once('close', finish);
        const grace = setTimeout(finish, closeGraceMs);
        timers.add(grace);
      });
    }
  });
}
