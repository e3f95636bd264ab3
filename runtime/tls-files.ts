// A certificate mounted from a kubernetes.io/tls Secret the operator issues (tls.crt, tls.key and
// the CA bundle ca.crt), read again while the process runs: the kubelet replaces a Secret volume's
// files in place when the operator renews the certificate or rotates its CA, and a Secret volume
// marked optional fills in once the Secret exists. One reader for every component, so each picks up
// a renewal the same way, without a restart.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from './logging.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** The CA bundle (current CA, and the previous one during a rotation). */
  ca: Buffer;
}

/** The files of a mounted TLS Secret, or undefined while any of them is missing. */
export function readTlsDir(dir: string): TlsFiles | undefined {
  try {
    return { cert: readFileSync(path.join(dir, 'tls.crt')), key: readFileSync(path.join(dir, 'tls.key')), ca: readFileSync(path.join(dir, 'ca.crt')) };
  } catch {
    return undefined;
  }
}

function fingerprint(files: TlsFiles): string {
  return createHash('sha256').update(files.cert).update('\0').update(files.key).update('\0').update(files.ca).digest('hex');
}

/** How often a mounted certificate is looked at again; the kubelet itself updates Secret volumes about once a minute. */
export const TLS_RELOAD_INTERVAL_MS = 30_000;

/**
 * Calls `onChange` with the directory's certificate whenever it appears or changes (checked every
 * `intervalMs`). A half-written set (the kubelet swaps the whole directory atomically, but a
 * certificate and a key of different pairs would fail the TLS setup) is reported to `onChange`,
 * whose throw is logged and retried at the next look.
 */
export class TlsDirWatcher {
  private last: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dir: string,
    private readonly onChange: (files: TlsFiles) => void,
    private readonly log: Logger,
    private readonly intervalMs = TLS_RELOAD_INTERVAL_MS,
  ) {}

  /** The certificate now (undefined while missing); starts watching for changes. */
  start(): TlsFiles | undefined {
    const files = readTlsDir(this.dir);
    if (files) this.last = fingerprint(files);
    this.timer = setInterval(() => this.check(), this.intervalMs);
    this.timer.unref();
    return files;
  }

  /** Looks at the files now; true when they changed and were taken. */
  check(): boolean {
    const files = readTlsDir(this.dir);
    if (!files) return false;
    const print = fingerprint(files);
    if (print === this.last) return false;
    try {
      this.onChange(files);
      this.last = print;
      this.log.info({ dir: this.dir }, 'certificate (re)loaded from its Secret volume');
      return true;
    } catch (err) {
      this.log.warn({ err, dir: this.dir }, 'could not use the certificate from its Secret volume; keeping the previous one');
      return false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
