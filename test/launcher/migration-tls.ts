// Throwaway certificates for the migration channel's mutual TLS: one CA and a certificate per
// node (server and client use), made with openssl as the cluster tests make theirs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MigrationTls } from '../../node-handler/migration-channel.js';

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function newCa(dir: string, name: string): { cert: string; key: string } {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.crt`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}`, '-days', '1', '-out', cert, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  return { cert, key };
}

function nodeCert(dir: string, ca: { cert: string; key: string }, node: string): { cert: string; key: string } {
  const key = path.join(dir, `${node}.key`);
  const csr = path.join(dir, `${node}.csr`);
  const cert = path.join(dir, `${node}.crt`);
  const ext = path.join(dir, `${node}.ext`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${node}`, '-out', csr]);
  writeFileSync(ext, `subjectAltName=DNS:${node}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', cert]);
  return { cert, key };
}

/** MigrationTls for each of `nodes`, all signed by one CA; `stranger` is a node of another CA. */
export function migrationCertificates<N extends string>(nodes: readonly N[]): Record<N | 'stranger', MigrationTls> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kubevm-migration-tls-'));
  try {
    const read = (f: string) => readFileSync(f, 'utf8');
    const ca = newCa(dir, 'kubevm-test-migration-ca');
    const out = {} as Record<N | 'stranger', MigrationTls>;
    for (const node of nodes) {
      const c = nodeCert(dir, ca, node);
      out[node] = { ca: read(ca.cert), cert: read(c.cert), key: read(c.key) };
    }
    const otherCa = newCa(dir, 'another-ca');
    const s = nodeCert(dir, otherCa, 'stranger');
    out.stranger = { ca: read(otherCa.cert), cert: read(s.cert), key: read(s.key) };
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
