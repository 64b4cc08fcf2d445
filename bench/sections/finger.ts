/**
 * Finger (seed 12.4): one query, one answer, one connection.
 * - in-process client: our fingerQuery beside a raw net socket doing the
 *   same exchange against the same daemon (the protocol floor);
 * - server: our fingerd beside netkit's in.fingerd (run per connection, as
 *   inetd runs it) answering the same query about root, raw socket client;
 * - command: `switchboard finger` beside the Debian `finger` client, one
 *   process per query against our daemon (the Debian client is pointed at
 *   the test port through a private /etc/services in a mount namespace).
 * Rows that need root, netkit or the Debian client are left out, with a note.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fingerQuery, startFingerd, type FingerDaemon } from '../../src/daemons/index.js';
import type { BenchContext, BenchRow, BenchSection } from '../harness.js';

function rawQuery(port: number, query: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('error', reject);
    s.on('close', () => resolve(n));
    s.end(`${query}\r\n`);
  });
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

async function miniInetd(command: string): Promise<{ port: number; close(): Promise<void> }> {
  const children = new Set<ChildProcess>();
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    const child = spawn(command, [], { stdio: [sock, sock, sock] });
    children.add(child);
    child.on('exit', () => {
      children.delete(child);
      sock.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const c of children) c.kill('SIGKILL');
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const port = (d: FingerDaemon): number => (d.address.transport === 'tcp' ? d.address.port : 0);

async function runSection(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-finger-'));
  chmodSync(dir, 0o755);
  const home = join(dir, 'users', 'bob');
  mkdirSync(home, { recursive: true });
  chmodSync(join(dir, 'users'), 0o755);
  chmodSync(home, 0o755);
  writeFileSync(join(home, '.finger.json'), JSON.stringify({ name: 'Bob Smith' }));
  writeFileSync(join(home, '.plan'), 'plan\n'.repeat(20));
  chmodSync(join(home, '.plan'), 0o644);
  const fake = await startFingerd({ host: '127.0.0.1', port: 0, usersDir: join(dir, 'users') });
  const real = await startFingerd({ host: '127.0.0.1', port: 0 });
  try {
    const g1 = 'finger query round trip, fake user (in-process client)';
    ctx.progress(g1);
    rows.push({ group: g1, name: 'raw net socket', unit: 'us/op', baseline: true, value: await ctx.latency(() => rawQuery(port(fake), 'bob').then(() => {})) });
    rows.push({ group: g1, name: 'switchboard fingerQuery', unit: 'us/op', value: await ctx.latency(() => fingerQuery({ host: '127.0.0.1', port: port(fake), query: 'bob' }).then(() => {})) });

    const g2 = 'finger server answering "root" (raw socket client)';
    if (existsSync('/usr/sbin/in.fingerd') && existsSync('/usr/bin/finger')) {
      ctx.progress(g2);
      const inetd = await miniInetd('/usr/sbin/in.fingerd');
      try {
        rows.push({ group: g2, name: 'netkit in.fingerd via inetd', unit: 'us/op', baseline: true, value: await ctx.latency(() => rawQuery(inetd.port, 'root').then(() => {}), { rounds: ctx.quick ? 3 : 5 }) });
      } finally {
        await inetd.close();
      }
      rows.push({ group: g2, name: 'switchboard fingerd', unit: 'us/op', value: await ctx.latency(() => rawQuery(port(real), 'root').then(() => {})) });
    } else {
      rows.push({ group: g2, name: 'skipped', unit: 'us/op', value: NaN, note: 'netkit in.fingerd not installed (apt-get install fingerd finger)' });
    }

    const g3 = 'finger command, one process per query, against switchboard fingerd';
    const canNs = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true'], { stdio: 'ignore' }).status === 0;
    if (existsSync('/usr/bin/finger') && canNs) {
      ctx.progress(g3);
      const services = join(dir, 'services');
      writeFileSync(services, readFileSync('/etc/services', 'utf8').replace(/^finger\s+\d+\/tcp.*$/m, `finger\t\t${port(fake)}/tcp`));
      const inNs = (cmd: string[]): Promise<void> => run('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /etc/services && exec "$@"', services, ...cmd]);
      const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
      const main = fileURLToPath(new URL(`../../src/cli/main.${ext}`, import.meta.url));
      const node = [process.execPath, ...process.execArgv.filter((a) => !a.startsWith('--test')), main];
      const opts = { rounds: ctx.quick ? 2 : 3, targetMs: 1500, warmupMs: 500 };
      rows.push({ group: g3, name: 'Debian finger', unit: 'us/op', baseline: true, value: await ctx.latency(() => inNs(['/usr/bin/finger', 'bob@127.0.0.1']), opts) });
      rows.push({ group: g3, name: 'switchboard finger', unit: 'us/op', value: await ctx.latency(() => inNs([...node, 'finger', 'bob@127.0.0.1']), opts), note: 'Node startup dominates' });
    } else {
      rows.push({ group: g3, name: 'skipped', unit: 'us/op', value: NaN, note: 'needs root, unshare -m and the Debian finger client' });
    }
  } finally {
    await fake.close();
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export const section: BenchSection = { name: 'finger', run: runSection };
