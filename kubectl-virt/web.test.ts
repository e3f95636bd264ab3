// The localhost page of vnc --web: a real HTTP server and real requests. The cluster behind it is
// a kubeconfig whose API server refuses connections, so the display stream cannot open: what is
// tested here is who gets in (the one-time token, the cookie, the Origin), not the display.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import WebSocket from 'ws';
import { VirtApi } from './api.js';
import { connect } from './connection.js';
import type { WebVncServer } from './web.js';
import { page, serveVncWeb } from './web.js';

jest.setTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), 'kubectl-virt-web-'));
const kubeconfig = join(dir, 'config');
writeFileSync(
  kubeconfig,
  'apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: { server: "https://127.0.0.1:1" }\nusers:\n- name: u\n  user: { token: t }\ncontexts:\n- name: gone\n  context: { cluster: gone, user: u }\ncurrent-context: gone\n',
);
const log: string[] = [];
const stderr = new Writable({
  write(chunk: Buffer, _e, done) {
    log.push(chunk.toString());
    done();
  },
}) as unknown as NodeJS.WritableStream;

let web: WebVncServer;
beforeAll(async () => {
  web = await serveVncWeb(new VirtApi(connect({ kubeconfig })), 'web', { port: 0, address: '127.0.0.1', stderr });
});
afterAll(async () => web?.close());

const origin = () => `http://127.0.0.1:${web.port}`;

describe('vnc --web', () => {
  it('lets the printed URL in once, then only the browser holding its cookie', async () => {
    expect(web.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}$/);
    expect((await fetch(`${origin()}/`)).status).toBe(403);
    expect((await fetch(`${origin()}/?token=wrong`)).status).toBe(403);
    const first = await fetch(web.url, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const cookie = (first.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(first.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    // The token is spent.
    expect((await fetch(web.url, { redirect: 'manual' })).status).toBe(403);
    const html = await fetch(`${origin()}/`, { headers: { cookie } });
    expect(html.status).toBe(200);
    expect(await html.text()).toContain('<body data-vmi="web">');
    const script = await fetch(`${origin()}/vnc-client.js`, { headers: { cookie } });
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await script.text()).toContain('sendCtrlAltDel');

    // The websocket: not without the cookie, not from another origin; with both, the display
    // stream is tried and its failure is said on stderr.
    const refused = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${web.port}/websockify`, ['binary'], { headers });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => undefined);
      });
    expect(await refused({ origin: origin() })).toBe(403);
    expect(await refused({ cookie, origin: 'http://evil.example' })).toBe(403);
    expect(await refused({ cookie, origin: origin() })).toBe(502);
    expect(log.join('')).toContain('vnc --web: cannot reach the Kubernetes API server at https://127.0.0.1:1');

    expect((await fetch(`${origin()}/quit`, { method: 'POST', headers: { cookie, origin: 'http://evil.example' } })).status).toBe(404);
    expect((await fetch(`${origin()}/quit`, { method: 'POST', headers: { cookie, origin: origin() } })).status).toBe(204);
    await web.quit;
  });

  it('escapes the VMI name in the page', () => {
    expect(page('<x>')).toContain('data-vmi="&#60;x&#62;"');
  });
});
