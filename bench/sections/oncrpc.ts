/**
 * ONC RPC: ECHO of 0 B (the NULL procedure), 1 KiB and 64 KiB over TCP, Unix
 * sockets and UDP, for every pairing of our client/server with a libtirpc
 * client/server built here with rpcgen, beside a raw Node socket round trip
 * of the same size. Baseline of each group: libtirpc client -> libtirpc server.
 * Targets: our client to a libtirpc server within 1.5x of libtirpc's own
 * client; our server within 1.5x of a libtirpc server. Also XDR encode/decode
 * of a 64 KiB opaque (target >= 1 GB/s) beside a plain 64 KiB copy.
 * 64 KiB is not sent over UDP: it does not fit in one datagram.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient, XdrReader, XdrWriter, xdr } from '../../src/oncrpc/index.js';
import type { Address } from '../../src/transport/index.js';
import { INTEROP_PROG, INTEROP_V1, buildC, cToolchainMissing, runCClient, startCServer, type CBuild } from '../../src/oncrpc/testing/libtirpc-fixture.js';
import type { BenchContext, BenchRow, BenchSection } from '../harness.js';

type Tr = 'tcp' | 'unix' | 'udp';
const SIZES = [0, 1024, 65536];
const ECHO_BLOB = 4;
const label = (n: number) => (n === 0 ? 'null call' : n === 1024 ? '1 KiB echo' : '64 KiB echo');

/** Our server and raw echo servers, in a child process like the C server. */
function peerScript(oncrpcUrl: string, unixPath: string, rawUnixPath: string): string {
  return `
import net from 'node:net';
import dgram from 'node:dgram';
const { RpcServer, xdr } = await import(${JSON.stringify(oncrpcUrl)});
const s = new RpcServer();
s.addProgram(${INTEROP_PROG}, ${INTEROP_V1}, { ${ECHO_BLOB}: { args: xdr.opaque(), result: xdr.opaque(), handler: (b) => b } });
const tcp = await s.listen('tcp://127.0.0.1:0');
const udp = await s.listen('udp://127.0.0.1:0');
await s.listen('unix://${unixPath}');
const echo = (sock) => sock.on('data', (d) => sock.write(d)).on('error', () => {});
const rawTcp = net.createServer(echo).listen(0, '127.0.0.1');
await new Promise((r) => rawTcp.once('listening', r));
const rawUnix = net.createServer(echo).listen('${rawUnixPath}');
await new Promise((r) => rawUnix.once('listening', r));
const rawUdp = dgram.createSocket('udp4');
rawUdp.on('message', (m, from) => rawUdp.send(m, from.port, from.address));
await new Promise((r) => rawUdp.bind(0, '127.0.0.1', r));
process.stdout.write('READY ' + tcp.port + ' ' + udp.port + ' ' + rawTcp.address().port + ' ' + rawUdp.address().port + '\\n');
`;
}

async function startPeer(dir: string): Promise<{ child: ChildProcess; ports: number[]; unix: string; rawUnix: string }> {
  const url = new URL(`../../src/oncrpc/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;
  const unix = join(dir, 'ours.sock');
  const rawUnix = join(dir, 'raw.sock');
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test') && a !== '--input-type=module');
  const child = spawn(process.execPath, [...execArgv, '--input-type=module', '-e', peerScript(url, unix, rawUnix)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise<number[]>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+) (\d+) (\d+) (\d+)/.exec(out);
      if (m) resolve(m.slice(1).map(Number));
    });
    child.once('exit', (code) => reject(new Error(`our server process exited with ${code}`)));
  });
  return { child, ports, unix, rawUnix };
}

/** Raw round trip of n bytes (plus the 4-byte record mark on streams, like an RPC) over a plain socket. */
async function rawRoundTrip(ctx: BenchContext, tr: Tr, target: { port?: number; path?: string }, size: number): Promise<number> {
  const msg = Buffer.alloc(Math.max(size + 4, 4));
  if (tr === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.connect(target.port as number, '127.0.0.1', () => r()));
    let wake: (() => void) | undefined;
    s.on('message', () => wake?.());
    try {
      return await ctx.latency(() => new Promise<void>((r) => {
        wake = r;
        s.send(msg);
      }));
    } finally {
      s.close();
    }
  }
  const sock = target.path !== undefined ? net.connect(target.path) : net.connect(target.port as number, '127.0.0.1');
  sock.setNoDelay(true);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  let got = 0;
  let want = 0;
  let wake: (() => void) | undefined;
  sock.on('data', (d: Buffer) => {
    got += d.length;
    if (got >= want) wake?.();
  });
  try {
    return await ctx.latency(() => new Promise<void>((r) => {
      got = 0;
      want = msg.length;
      wake = r;
      sock.write(msg);
    }));
  } finally {
    sock.destroy();
  }
}

async function ourClient(ctx: BenchContext, address: Address, size: number): Promise<number> {
  const c = await RpcClient.connect(address, { timeoutMs: 30_000 });
  const payload = new Uint8Array(size);
  const blob = xdr.opaque();
  try {
    return await ctx.latency(size === 0 ? () => c.ping(INTEROP_PROG, INTEROP_V1) : async () => void (await c.call(INTEROP_PROG, INTEROP_V1, ECHO_BLOB, blob, payload, blob)));
  } finally {
    await c.close();
  }
}

async function cClient(ctx: BenchContext, build: CBuild, netid: string, target: string, size: number): Promise<number> {
  const n = Math.round((size >= 65536 ? 1500 : 6000) * (ctx.quick ? 0.25 : 1));
  const runs: number[] = [];
  for (let i = 0; i < (ctx.quick ? 1 : 3); i++) {
    const r = await runCClient(build, ['direct', netid, target, 'bench', String(size), String(n)], 120_000);
    if (r.code !== 0) throw new Error(`libtirpc client ${netid} ${size} B failed: ${r.stderr.trim()}`);
    runs.push(Number(r.stdout.trim()));
  }
  runs.sort((a, b) => a - b);
  return runs[runs.length >> 1] as number;
}

export function xdrRows(ctx: BenchContext): Promise<BenchRow[]> {
  const data = new Uint8Array(65536).fill(7);
  const group = 'XDR 64 KiB opaque';
  const gbps = (msgPerSec: number) => (msgPerSec * 65536) / 1e9;
  const w = new XdrWriter(65536 + 64);
  const fresh = new XdrWriter(64);
  const encoded = new XdrWriter().opaque(data).finish();
  const dst = new Uint8Array(65536 + 8);
  const until = performance.now() + (ctx.quick ? 100 : 400);
  while (performance.now() < until) w.reset().opaque(data).view();
  return (async () => [
    { group, name: 'Uint8Array.set copy of 64 KiB', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) dst.set(data, 4); })), unit: 'GB/s', baseline: true },
    { group, name: 'XdrWriter.opaque (encode)', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) w.reset().opaque(data).view(); })), unit: 'GB/s', target: '>= 1 GB/s', note: 'into a reused writer' },
    { group, name: 'XdrWriter.opaque + finish (encode)', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) fresh.opaque(data).finish(); })), unit: 'GB/s', target: '>= 1 GB/s', note: 'a new 64 KiB buffer per message, as an RPC call makes' },
    { group, name: 'XdrReader.opaque (decode)', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) new XdrReader(encoded).opaque(); })), unit: 'GB/s', target: '>= 1 GB/s', note: 'a view, no copy' },
  ] as BenchRow[])();
}

export const section: BenchSection = {
  name: 'oncrpc',
  async run(ctx) {
    const rows: BenchRow[] = [];
    const missing = cToolchainMissing();
    const dir = mkdtempSync(join(tmpdir(), 'bench-oncrpc-'));
    let build: CBuild | undefined;
    try {
      build = missing === undefined ? buildC(dir) : undefined;
    } catch (err) {
      ctx.progress(`cannot build the libtirpc peers: ${(err as Error).message}`);
    }
    const cServer = build ? await startCServer(build, join(dir, 'c.sock'), false) : undefined;
    const peer = await startPeer(dir);
    try {
      const [ourTcp, ourUdp, rawTcp, rawUdp] = peer.ports as [number, number, number, number];
      for (const tr of ['tcp', 'unix', 'udp'] as Tr[]) {
        for (const size of SIZES) {
          if (tr === 'udp' && size > 8192) continue;
          const group = `ONC RPC ${label(size)}, ${tr}`;
          ctx.progress(group);
          const netid = tr === 'unix' ? 'local' : tr;
          const ours: Address = tr === 'unix' ? { transport: 'unix', path: peer.unix } : { transport: tr, host: '127.0.0.1', port: tr === 'tcp' ? ourTcp : ourUdp };
          if (build && cServer) {
            const theirs: Address = tr === 'unix' ? { transport: 'unix', path: cServer.unixPath } : { transport: tr, host: '127.0.0.1', port: tr === 'tcp' ? cServer.tcpPort : cServer.udpPort };
            const cTarget = tr === 'unix' ? cServer.unixPath : String(tr === 'tcp' ? cServer.tcpPort : cServer.udpPort);
            const ourTarget = tr === 'unix' ? peer.unix : String(tr === 'tcp' ? ourTcp : ourUdp);
            rows.push({ group, name: 'libtirpc client -> libtirpc server', value: await cClient(ctx, build, netid, cTarget, size), unit: 'us/op', baseline: true });
            rows.push({ group, name: 'our client -> libtirpc server', value: await ourClient(ctx, theirs, size), unit: 'us/op', target: '<= 1.50' });
            rows.push({ group, name: 'libtirpc client -> our server', value: await cClient(ctx, build, netid, ourTarget, size), unit: 'us/op', target: '<= 1.50' });
          }
          rows.push({ group, name: 'our client -> our server', value: await ourClient(ctx, ours, size), unit: 'us/op', baseline: !build });
          const rawTarget = tr === 'unix' ? { path: peer.rawUnix } : { port: tr === 'tcp' ? rawTcp : rawUdp };
          rows.push({ group, name: `raw Node ${tr} round trip, same bytes`, value: await rawRoundTrip(ctx, tr, rawTarget, size), unit: 'us/op' });
        }
      }
      if (!build) rows.push({ group: 'ONC RPC', name: `libtirpc rows skipped: ${missing ?? 'build failed'}`, value: NaN, unit: 'us/op' });
      // Last: right after the modules load, V8 is busy for a while and big copies run slow.
      rows.push(...(await xdrRows(ctx)));
    } finally {
      peer.child.kill('SIGTERM');
      await cServer?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
