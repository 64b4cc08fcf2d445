/** Fixtures for name-service tests: a daemon on a temp Unix socket and a free TCP port. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNameServer, type NameServer, type NameServerOptions } from '../../src/naming/index.js';

export interface TestServer {
  server: NameServer;
  unix: string;
  tcp: string;
  dir: string;
  close(): Promise<void>;
}

export function tempDir(tag = 'sb-ns-'): string {
  return mkdtempSync(join(tmpdir(), tag));
}

export async function startTestServer(opts: NameServerOptions = {}, dir = tempDir()): Promise<TestServer> {
  const server = await startNameServer({ listen: [`unix://${join(dir, 'ns.sock')}`, 'tcp://127.0.0.1:0'], graceMs: 300, ...opts });
  const unix = server.addresses.find((a) => a.startsWith('unix:')) ?? '';
  const tcp = server.addresses.find((a) => a.startsWith('tcp:')) ?? '';
  return {
    server,
    unix,
    tcp,
    dir,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function until(cond: () => boolean | Promise<boolean>, ms = 8000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const contact = (port: number, protocol = 'switchboard-rpc') => ({ address: `tcp://127.0.0.1:${port}`, protocol });
