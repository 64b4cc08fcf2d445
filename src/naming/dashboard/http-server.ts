/**
 * The dashboard: one page on a loopback HTTP port, fed by server-sent events.
 *   GET /        the page
 *   GET /state   the current state as JSON
 *   GET /events  text/event-stream of states: on every change (at most every
 *                200 ms) and once a second for the lease countdowns
 * Requests whose Host header is not a loopback name are refused (DNS rebinding).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ArgumentError, fromSystemError } from '../../errors.js';
import type { NameServer } from '../server.js';
import { DASHBOARD_HTML } from './page.js';

/** Names sent to the page at most (the page says how many more there are). */
const MAX_NAMES_SHOWN = 2000;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export async function dashboardState(server: NameServer): Promise<unknown> {
  const names = await server.snapshot();
  return {
    now: Date.now(),
    stats: server.stats(),
    clients: server.clients(),
    names: names.slice(0, MAX_NAMES_SHOWN),
    totalNames: names.length,
    addresses: server.addresses,
  };
}

export async function startDashboard(server: NameServer, host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  if (!LOOPBACK.has(host) && !host.startsWith('127.')) throw new ArgumentError(`the dashboard listens on loopback only, not on "${host}"`);
  const streams = new Set<http.ServerResponse>();
  let pending: NodeJS.Timeout | undefined;
  let last = 0;

  const broadcast = async (): Promise<void> => {
    pending = undefined;
    last = Date.now();
    if (streams.size === 0) return;
    const body = `event: state\ndata: ${JSON.stringify(await dashboardState(server))}\n\n`;
    for (const s of streams) s.write(body);
  };
  const schedule = (): void => {
    if (pending !== undefined || streams.size === 0) return;
    pending = setTimeout(() => void broadcast().catch(() => undefined), Math.max(0, 200 - (Date.now() - last)));
  };
  const unsubscribe = server.onChange(schedule);
  const tick = setInterval(schedule, 1000);
  tick.unref();

  const srv = http.createServer((req, res) => {
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!LOOPBACK.has(hostHeader) && !hostHeader.startsWith('127.')) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden host\n');
      return;
    }
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (url === '/') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      });
      res.end(DASHBOARD_HTML);
    } else if (url === '/state') {
      void dashboardState(server).then(
        (s) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(s)),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write('retry: 1000\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
      void dashboardState(server).then((s) => res.write(`event: state\ndata: ${JSON.stringify(s)}\n\n`), () => undefined);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', (err) => reject(fromSystemError(err, `dashboard listen ${host}:${port}`)));
    srv.listen(port, host, () => resolve());
  });
  const a = srv.address() as AddressInfo;
  const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${shown}:${a.port}/`,
    async close() {
      unsubscribe();
      clearInterval(tick);
      if (pending) clearTimeout(pending);
      for (const s of streams) s.end();
      streams.clear();
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}
