/**
 * The name service beside what it builds on, in one run:
 * - lookup round trip over a Unix socket (embedded store) next to a raw `net`
 *   length-prefixed round trip of the same sizes on the same kind of socket,
 *   their rounds interleaved (ctx.latencies) so a busy spell of a shared
 *   machine hits both alike; and the CPU time each costs, client and server
 *   process together (less sensitive to load than wall time);
 * - lookup through a daemon on etcd next to a bare etcd get with the same
 *   etcd3 client;
 * - registrations per second into the embedded store (journal fsync on) next
 *   to bare write+fdatasync appends in the same directory: the disk's limit;
 * - registrations per second through a daemon on etcd next to bare etcd puts.
 * Daemons and the raw echo server run in child processes (this file is its own
 * peer: `--naming-bench-peer raw|ns <arg>`); etcd is Debian's /usr/bin/etcd on
 * loopback, skipped with a note if it cannot start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, writeSync, fdatasyncSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchRow, BenchSection } from '../harness.js';
import { NameClient, encodeLookupFrame, encodeRecordFrame, startNameServer, type NameServerOptions } from '../../src/naming/index.js';
import { startEtcd } from '../../test/naming/etcd-fixture.js';

const SELF = fileURLToPath(import.meta.url);

if (process.argv[2] === '--naming-bench-peer' && process.argv[1] !== undefined && resolve(process.argv[1]) === SELF) {
  const mode = process.argv[3];
  const arg = process.argv[4] ?? '';
  if (mode === 'raw') {
    // Length-prefixed echo-ish server: answers each message with replyBytes.
    const { path, replyBytes } = JSON.parse(arg) as { path: string; replyBytes: number };
    const reply = Buffer.alloc(4 + replyBytes, 0x61);
    reply.writeUInt32BE(replyBytes, 0);
    const srv = net.createServer((s) => {
      s.setNoDelay(true);
      let buf = Buffer.alloc(0);
      s.on('data', (d) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          buf = buf.subarray(4 + buf.readUInt32BE(0));
          s.write(reply);
        }
      });
      s.on('error', () => undefined);
    });
    srv.listen(path, () => process.stdout.write('ready\n'));
  } else {
    const server = await startNameServer(JSON.parse(arg) as NameServerOptions);
    process.stdout.write(`${JSON.stringify(server.addresses)}\n`);
  }
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

function peer(mode: 'raw' | 'ns', arg: string): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [...process.execArgv, SELF, '--naming-bench-peer', mode, arg], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((res, rej) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) res({ child, line: out.slice(0, nl) });
    });
    child.once('exit', (code) => rej(new Error(`bench peer ${mode} exited with ${code}`)));
  });
}

async function rawClient(path: string, reqBytes: number, replyBytes: number): Promise<{ roundTrip(): Promise<void>; close(): void }> {
  const s = net.connect({ path });
  s.setNoDelay(true);
  await new Promise<void>((r, j) => {
    s.once('connect', () => r());
    s.once('error', j);
  });
  const req = Buffer.alloc(4 + reqBytes, 0x62);
  req.writeUInt32BE(reqBytes, 0);
  let waiting: (() => void) | undefined;
  let got = 0;
  s.on('data', (d) => {
    got += d.length;
    if (got >= 4 + replyBytes && waiting) {
      got -= 4 + replyBytes;
      const w = waiting;
      waiting = undefined;
      w();
    }
  });
  return {
    roundTrip: () =>
      new Promise<void>((r) => {
        waiting = r;
        s.write(req);
      }),
    close: () => s.destroy(),
  };
}

const contact = { address: 'tcp://127.0.0.1:5000', protocol: 'switchboard-rpc', metadata: { role: 'bench' } };

/** CPU time of another process so far, in microseconds (Linux /proc; undefined elsewhere). */
function childCpuUs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, in USER_HZ (100 on Linux)
    return Number.isFinite(ticks) ? ticks * 10_000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU microseconds per op, this process plus the server process, median of
 * interleaved rounds of n ops each (n large enough for /proc's 10 ms ticks).
 */
async function cpuPerOp(ops: readonly { op: () => Promise<unknown>; pid: number | undefined }[], n: number, rounds: number): Promise<number[] | undefined> {
  const results: number[][] = ops.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, { op, pid }] of ops.entries()) {
      const server0 = childCpuUs(pid);
      const self0 = process.cpuUsage();
      for (let k = 0; k < n; k++) await op();
      const self = process.cpuUsage(self0);
      const server1 = childCpuUs(pid);
      if (server0 === undefined || server1 === undefined) return undefined;
      (results[i] as number[]).push((self.user + self.system + server1 - server0) / n);
    }
  }
  return results.map((xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number);
}

async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-ns-'));
  const children: ChildProcess[] = [];
  const clients: NameClient[] = [];
  const limits = { maxNamesPerClient: 10_000_000 };
  let serial = 0;
  try {
    // --- lookup round trip: raw socket vs embedded store
    const nsSock = `unix://${join(dir, 'ns.sock')}`;
    const ns = await peer('ns', JSON.stringify({ listen: [nsSock], dataDir: join(dir, 'data'), limits } satisfies NameServerOptions));
    children.push(ns.child);
    const emb = await NameClient.connect({ address: nsSock, clientName: 'bench', timeoutMs: 60_000 });
    clients.push(emb);
    await emb.register('bench/lookup', contact);
    // The raw round trip moves as many bytes as a lookup and its reply (protocol version 2 frames).
    const reqBytes = encodeLookupFrame(1, 'bench/lookup').length - 4;
    const replyBytes = encodeRecordFrame(await emb.lookup('bench/lookup')).length - 4;
    const rawPath = join(dir, 'raw.sock');
    const rawPeer = (await peer('raw', JSON.stringify({ path: rawPath, replyBytes }))).child;
    children.push(rawPeer);
    const raw = await rawClient(rawPath, reqBytes, replyBytes);
    const rawOp = (): Promise<void> => raw.roundTrip();
    const lookupOp = (): Promise<void> => emb.lookup('bench/lookup').then(() => undefined);
    const group = 'name lookup round trip, unix socket';
    ctx.progress('raw socket round trip and lookup, interleaved');
    const [rawUs, lookupUs] = (await ctx.latencies([rawOp, lookupOp])) as [number, number];
    rows.push({ group, name: `raw net, ${reqBytes} B -> ${replyBytes} B, server in another process`, value: rawUs, unit: 'us/op', baseline: true });
    rows.push({ group, name: 'NameClient.lookup, embedded store', value: lookupUs, unit: 'us/op', target: '<= 1.50', note: 'rounds interleaved with the baseline' });
    ctx.progress('CPU per round trip, client + server process');
    const cpu = await cpuPerOp(
      [
        { op: rawOp, pid: rawPeer.pid },
        { op: lookupOp, pid: ns.child.pid },
      ],
      ctx.quick ? 3000 : 10_000,
      ctx.quick ? 3 : 7,
    );
    const gc = 'CPU per lookup, client + server process, unix socket';
    if (cpu === undefined) rows.push({ group: gc, name: 'skipped: no /proc/<pid>/stat to read the server process CPU time from', value: NaN, unit: 'us/op' });
    else {
      rows.push({ group: gc, name: 'raw net round trip (same sizes)', value: cpu[0] as number, unit: 'us/op', baseline: true });
      rows.push({ group: gc, name: 'NameClient.lookup, embedded store', value: cpu[1] as number, unit: 'us/op', note: 'CPU time is less sensitive than wall time to a loaded machine' });
    }
    raw.close();

    // --- registrations per second, embedded store with fsync
    const g2 = 'registrations/s, embedded store (journal fsync)';
    ctx.progress('bare write+fdatasync');
    const fd = openSync(join(dir, 'data', 'bench-fsync'), 'a');
    const entry = Buffer.alloc(220, 0x63);
    rows.push({
      group: g2,
      name: 'bare write + fdatasync of one journal-sized entry (the disk)',
      value: await ctx.throughput(async (n) => {
        for (let i = 0; i < n; i++) {
          writeSync(fd, entry);
          fdatasyncSync(fd);
        }
      }, { rounds: ctx.quick ? 2 : 3 }),
      unit: 'ops/s',
      baseline: true,
    });
    closeSync(fd);
    ctx.progress('register, one at a time');
    rows.push({
      group: g2,
      name: 'NameClient.register, one in flight (one fsync each)',
      value: await ctx.throughput(async (n) => {
        for (let i = 0; i < n; i++) await emb.register(`bench/s${serial++}`, contact);
      }, { rounds: ctx.quick ? 2 : 3 }),
      unit: 'ops/s',
      note: 'limited by fdatasync',
    });
    ctx.progress('register, 64 in flight');
    rows.push({
      group: g2,
      name: 'NameClient.register, 64 in flight (group commit)',
      value: await ctx.throughput(async (n) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            while (next < n) {
              next++;
              await emb.register(`bench/p${serial++}`, contact);
            }
          }),
        );
      }, { rounds: ctx.quick ? 2 : 3 }),
      unit: 'ops/s',
    });

    // --- etcd
    const etcd = await startEtcd();
    if ('skip' in etcd) {
      rows.push({ group: 'name service on etcd', name: `skipped: ${etcd.skip}`, value: NaN, unit: 'us/op' });
      return rows;
    }
    try {
      const esock = `unix://${join(dir, 'ns-etcd.sock')}`;
      const en = await peer('ns', JSON.stringify({ listen: [esock], store: etcd.endpoint, limits } satisfies NameServerOptions));
      children.push(en.child);
      const ec = await NameClient.connect({ address: esock, clientName: 'bench-etcd', timeoutMs: 60_000 });
      clients.push(ec);
      await ec.register('bench/lookup', contact);
      const { Etcd3 } = await import('etcd3');
      const bare = new Etcd3({ hosts: etcd.clientUrl });
      try {
        await bare.put('bench/bare').value(JSON.stringify(contact));
        const g3 = 'name lookup on etcd';
        ctx.progress('bare etcd get');
        rows.push({ group: g3, name: 'bare etcd get, etcd3 client', value: await ctx.latency(() => bare.get('bench/bare').string().then(() => undefined)), unit: 'us/op', baseline: true });
        ctx.progress('lookup, etcd store');
        rows.push({ group: g3, name: 'NameClient.lookup via daemon on etcd (same etcd3 client in the daemon)', value: await ctx.latency(() => ec.lookup('bench/lookup').then(() => undefined)), unit: 'us/op' });
        const g4 = 'registrations/s on etcd';
        ctx.progress('bare etcd put');
        rows.push({
          group: g4,
          name: 'bare etcd put, one in flight',
          value: await ctx.throughput(async (n) => {
            for (let i = 0; i < n; i++) await bare.put(`bench/put${serial++}`).value('x');
          }, { rounds: ctx.quick ? 2 : 3 }),
          unit: 'ops/s',
          baseline: true,
        });
        ctx.progress('register, etcd store');
        rows.push({
          group: g4,
          name: 'NameClient.register via daemon on etcd, one in flight (get + txn)',
          value: await ctx.throughput(async (n) => {
            for (let i = 0; i < n; i++) await ec.register(`bench/e${serial++}`, contact);
          }, { rounds: ctx.quick ? 2 : 3 }),
          unit: 'ops/s',
        });
      } finally {
        bare.close();
      }
    } finally {
      for (const c of clients.splice(0)) await c.close();
      for (const c of children.splice(0)) c.kill('SIGTERM');
      await etcd.stop();
    }
    return rows;
  } finally {
    for (const c of clients) await c.close();
    for (const c of children) c.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

export const section: BenchSection = { name: 'naming', run };
