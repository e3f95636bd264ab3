// vnc --web: a page on localhost with noVNC in it, joined through this process to the VMI's vnc
// stream. The printed URL carries a one-time token: its first use sets an HttpOnly SameSite
// session cookie and the token is spent, so a copied or logged URL opens nothing later. Every
// other request needs the cookie; the websocket also needs the page's own Origin (no other site
// can drive it). It ends when the page's Quit button is pressed or on Ctrl+C.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { VirtApi } from './api.js';
import { UserError } from './errors.js';
import { untilInterrupted } from './forward.js';
import { openStream } from './streams.js';

// The browser bundle of kubectl-virt/web/vnc-client.js, compiled in by kubectl-virt/bundle.js.
declare const KUBECTL_VIRT_WEB_CLIENT: string | undefined;

/** The browser script: compiled in, or (running from the sources) bundled now with esbuild. */
async function clientScript(): Promise<string> {
  if (typeof KUBECTL_VIRT_WEB_CLIENT === 'string') return KUBECTL_VIRT_WEB_CLIENT;
  const { bundleWebClient } = (await import(new URL('./bundle.js', import.meta.url).href)) as { bundleWebClient: () => Promise<string> };
  return bundleWebClient();
}

const COOKIE = 'kubectl-virt-session';

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The page's header height in CSS pixels: whole, so the display below it starts on a pixel
 * boundary and, where the window fits it, the guest's screen is drawn pixel for pixel, not blurred.
 */
export const PAGE_HEADER_PX = 34;

export function page(vmi: string): string {
  const name = escapeHtml(vmi);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vmi/${name}</title>
<style>
html,body{margin:0;height:100%;background:#1e1e1e;color:#ddd;font:14px system-ui,sans-serif}
header{display:flex;gap:1em;align-items:center;box-sizing:border-box;height:${PAGE_HEADER_PX}px;padding:0 .8em;background:#333}
#status{flex:1}
#screen{position:absolute;top:${PAGE_HEADER_PX}px;bottom:0;left:0;right:0}
button{font:inherit}
</style></head>
<body data-vmi="${name}">
<header><span id="status"></span><button id="keys">Ctrl+Alt+Del</button><button id="quit">Quit</button></header>
<div id="screen"></div>
<script type="module" src="/vnc-client.js"></script>
</body></html>
`;
}

const same = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function cookieOf(request: http.IncomingMessage): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === COOKIE) return value.join('=');
  }
  return undefined;
}

export interface WebVncOptions {
  port: number;
  address: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Resolves when the user ends it another way (Ctrl+C by default). */
  interrupted?: Promise<void>;
}

export interface WebVncServer {
  url: string;
  port: number;
  /** Resolves when the page's Quit was pressed. */
  quit: Promise<void>;
  close(): Promise<void>;
}

export async function serveVncWeb(virt: VirtApi, name: string, options: Pick<WebVncOptions, 'port' | 'address' | 'stderr'>): Promise<WebVncServer> {
  const script = await clientScript();
  let token: string | undefined = randomBytes(24).toString('base64url');
  const session = randomBytes(24).toString('base64url');
  let origin = '';
  let quitRequested: () => void = () => {};
  const quit = new Promise<void>((resolve) => (quitRequested = resolve));
  const authorized = (request: http.IncomingMessage) => {
    const cookie = cookieOf(request);
    return cookie !== undefined && same(cookie, session);
  };
  const refuse = (response: http.ServerResponse, code: number, text: string) => {
    response.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(`${text}\n`);
  };

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', origin);
    const given = url.searchParams.get('token');
    if (request.method === 'GET' && url.pathname === '/' && given !== null) {
      if (token === undefined || !same(given, token)) return refuse(response, 403, 'This link was already used or is not valid: run kubectl virt vnc --web again for a new one.');
      token = undefined;
      response.writeHead(303, { location: '/', 'set-cookie': `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`, 'cache-control': 'no-store' }).end();
      return;
    }
    if (!authorized(request)) return refuse(response, 403, 'Open the link kubectl virt vnc --web printed (it works once).');
    const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; connect-src 'self'" };
    if (request.method === 'GET' && url.pathname === '/') return void response.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(page(name));
    if (request.method === 'GET' && url.pathname === '/vnc-client.js') return void response.writeHead(200, { ...headers, 'content-type': 'text/javascript; charset=utf-8' }).end(script);
    if (request.method === 'POST' && url.pathname === '/quit' && request.headers.origin === origin) {
      response.writeHead(204, headers).end();
      quitRequested();
      return;
    }
    refuse(response, 404, 'not found');
  });

  const sockets = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false) });
  server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(request.url ?? '/', origin).pathname;
    if (path !== '/websockify' || !authorized(request) || request.headers.origin !== origin) {
      socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n');
      return;
    }
    openStream(virt, 'vmi', name, 'vnc').then(
      (upstream) => sockets.handleUpgrade(request, socket, head, (browser) => join(browser, upstream, name, options.stderr)),
      (err: unknown) => {
        options.stderr.write(`vnc --web: ${err instanceof Error ? err.message : String(err)}\n`);
        socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\n');
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new UserError(`vnc --web: cannot listen on ${options.address}:${options.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`)));
    server.listen(options.port, options.address, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.address.includes(':') ? `[${options.address}]` : options.address;
  origin = `http://${host}:${port}`;
  return {
    url: `${origin}/?token=${token}`,
    port,
    quit,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of sockets.clients) client.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Joins the browser's websocket to the VMI's vnc stream, message for message. */
function join(browser: WebSocket, upstream: WebSocket, name: string, stderr: NodeJS.WritableStream): void {
  stderr.write(`vnc --web: the page is connected to the display of vmi/${name}\n`);
  browser.on('message', (data: Buffer) => upstream.readyState === WebSocket.OPEN && upstream.send(data));
  upstream.on('message', (data: Buffer) => browser.readyState === WebSocket.OPEN && browser.send(data));
  browser.on('close', () => upstream.close());
  upstream.on('close', (code: number, reason: Buffer) => {
    if (browser.readyState === WebSocket.OPEN) {
      stderr.write(`vnc --web: the display stream of vmi/${name} closed${reason.length > 0 ? `: ${reason.toString('utf8')}` : ` (websocket code ${code})`}\n`);
      browser.close();
    }
  });
  browser.on('error', () => upstream.close());
  upstream.on('error', () => browser.close());
}

export async function runVncWeb(virt: VirtApi, name: string, options: WebVncOptions): Promise<void> {
  const vmi = await virt.requireVmi(name);
  if (vmi.status?.phase !== 'Running') throw new UserError(`vmi/${name} is ${vmi.status?.phase ?? 'Pending'}, not Running: its display is not there yet`);
  const web = await serveVncWeb(virt, name, options);
  options.stdout.write(`${web.url}\n`);
  options.stderr.write(`vnc --web: open the URL above in a browser (it works once); the page's Quit button or Ctrl+C ends.\n`);
  await Promise.race([web.quit, options.interrupted ?? untilInterrupted()]);
  await web.close();
}
