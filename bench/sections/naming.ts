/**
 * The name service beside what it builds on, in one run:
 * - lookup round trip over a Unix socket (embedded store) next to a raw `net`
 *   length-prefixed round trip of the same size on the same kind of socket;
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
import { mkdtempSync, openSync, closeSync, writeSync, fdatasyncSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchRow, BenchSection } from '../harness.js';
import { NameClient, startNameServer, type NameServerOptions } from '../../src/naming/index.js';
import { startEtcd } from '../../test/naming/etcd-fixture.js';

const SELF = fileURLToPath(import.meta.url);
/** A lookup request and its reply are about this big on the wire. */
const REQ_BYTES = 40;
const REPLY_BYTES = 190;

if (process.argv[2] === '--naming-bench-peer' && process.argv[1] !== undefined && resolve(process.argv[1]) === SELF) {
  const mode = process.argv[3];
  const arg = process.argv[4] ?? '';
  if (mode === 'raw') {
    // Length-prefixed echo-ish server: answers each message with REPLY_BYTES.
    const reply = Buffer.alloc(4 + REPLY_BYTES, 0x61);
    reply.writeUInt32BE(REPLY_BYTES, 0);
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
    srv.listen(arg, () => process.stdout.write('ready\n'));
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

async function rawClient(path: string): Promise<{ roundTrip(): Promise<void>; close(): void }> {
  const s = net.connect({ path });
  s.setNoDelay(true);
  await new Promise<void>((r, j) => {
    s.once('connect', () => r());
    s.once('error', j);
  });
  const req = Buffer.alloc(4 + REQ_BYTES, 0x62);
  req.writeUInt32BE(REQ_BYTES, 0);
  let waiting: (() => void) | undefined;
  let got = 0;
  s.on('data', (d) => {
    got += d.length;
    if (got >= 4 + REPLY_BYTES && waiting) {
      got -= 4 + REPLY_BYTES;
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

async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-ns-'));
  const children: ChildProcess[] = [];
  const clients: NameClient[] = [];
  const limits = { maxNamesPerClient: 10_000_000 };
  let serial = 0;
  try {
    // --- lookup round trip: raw socket vs embedded store
    const rawPath = join(dir, 'raw.sock');
    children.push((await peer('raw', rawPath)).child);
    const raw = await rawClient(rawPath);
    const nsSock = `unix://${join(dir, 'ns.sock')}`;
    const ns = await peer('ns', JSON.stringify({ listen: [nsSock], dataDir: join(dir, 'data'), limits } satisfies NameServerOptions));
    children.push(ns.child);
    const emb = await NameClient.connect({ address: nsSock, clientName: 'bench', timeoutMs: 60_000 });
    clients.push(emb);
    await emb.register('bench/lookup', contact);
    const group = 'name lookup round trip, unix socket';
    ctx.progress('raw socket round trip');
    rows.push({ group, name: `raw net, ${REQ_BYTES} B -> ${REPLY_BYTES} B, server in another process`, value: await ctx.latency(() => raw.roundTrip()), unit: 'us/op', baseline: true });
    ctx.progress('lookup, embedded store');
    rows.push({ group, name: 'NameClient.lookup, embedded store', value: await ctx.latency(() => emb.lookup('bench/lookup').then(() => undefined)), unit: 'us/op', target: '<= 1.50' });
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
