/**
 * A real etcd for tests: Debian's /usr/bin/etcd on loopback, free ports, a
 * temporary data directory; stopped by PID. `startEtcd()` resolves undefined
 * with a reason when etcd cannot start, so the caller can skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD_BIN = process.env['ETCD_BIN'] ?? '/usr/bin/etcd';

export interface EtcdInstance {
  endpoint: string; // 'etcd://127.0.0.1:P'
  clientUrl: string;
  pid: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

export async function startEtcd(): Promise<EtcdInstance | { skip: string }> {
  if (!existsSync(ETCD_BIN)) return { skip: `etcd is not installed at ${ETCD_BIN} (Debian package etcd-server)` };
  const dir = mkdtempSync(join(tmpdir(), 'sb-etcd-'));
  const cport = await freePort();
  const pport = await freePort();
  const clientUrl = `http://127.0.0.1:${cport}`;
  const peerUrl = `http://127.0.0.1:${pport}`;
  const child: ChildProcess = spawn(
    ETCD_BIN,
    [
      '--name', 'sbtest',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `sbtest=${peerUrl}`,
      '--log-level', 'error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString();
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const stop = async (): Promise<void> => {
    if (!exited && child.pid !== undefined) {
      const done = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => child.pid !== undefined && !exited && process.kill(child.pid, 'SIGKILL'), 3000);
      await done;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exited) break;
    if ((await canConnect(cport)) && (await healthy(clientUrl))) {
      return { endpoint: `etcd://127.0.0.1:${cport}`, clientUrl, pid: child.pid ?? -1, stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  return { skip: `etcd did not start: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'timeout'}` };
}
