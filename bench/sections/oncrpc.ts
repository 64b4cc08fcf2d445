/**
 * ONC RPC: ECHO of 0 B (the NULL procedure), 1 KiB and 64 KiB over TCP, Unix
 * sockets and UDP, for every pairing of our client/server with a libtirpc
 * client/server built here with rpcgen, beside a raw Node socket round trip
 * of the same size. Baseline of each group: libtirpc client -> libtirpc server.
 * Targets: our client to a libtirpc server within 1.5x of libtirpc's own
 * client; our server within 1.5x of a libtirpc server. Also XDR encode/decode
 * of a 64 KiB opaque (target >= 1 GB/s) beside a plain 64 KiB copy.
 * 64 KiB is not sent over UDP: it does not fit in one datagram.
 * Our client polls for its reply after a call (spinUs; on UDP too, one
 * datagram per read) and, on TCP and Unix sockets, our server for the next
 * call after a reply (post-reply spin): rows with each turned off show what
 * the polled path is worth on streams.
 *
 * The paths of a group run in interleaved rounds (each path in turn, five
 * times), so a busy spell of the shared machine slows them all alike. Beside
 * wall time per call, the CPU time per call of each side is reported (our
 * client: process.cpuUsage; libtirpc client: getrusage; servers: /proc), which
 * other load on the machine disturbs much less.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient, XdrReader, XdrWriter, xdr } from '../../src/oncrpc/index.js';
import { takeSegments, takeWritten } from '../../src/oncrpc/message-bytes.js';
import { RecordMarkingDecoder } from '../../src/wire/index.js';
import type { Address } from '../../src/transport/index.js';
import { INTEROP_PROG, INTEROP_V1, buildC, cToolchainMissing, processCpuUs, runCClient, startCServer, type CBuild } from '../../src/oncrpc/testing/libtirpc-fixture.js';
import { median, type BenchContext, type BenchRow, type BenchSection } from '../harness.js';

type Tr = 'tcp' | 'unix' | 'udp';
const SIZES = [0, 1024, 65536];
const ECHO_BLOB = 4;
const label = (n: number) => (n === 0 ? 'null call' : n === 1024 ? '1 KiB echo' : '64 KiB echo');

/** Our server and raw echo servers, in a child process like the C server. */
function peerScript(oncrpcUrl: string, unixPath: string, rawUnixPath: string, noSpinUnixPath: string): string {
  return `
import net from 'node:net';
import dgram from 'node:dgram';
const { RpcServer, xdr } = await import(${JSON.stringify(oncrpcUrl)});
const s = new RpcServer();
s.addProgram(${INTEROP_PROG}, ${INTEROP_V1}, { ${ECHO_BLOB}: { args: xdr.opaque(), result: xdr.opaque(), handler: (b) => b } });
const tcp = await s.listen('tcp://127.0.0.1:0');
const udp = await s.listen('udp://127.0.0.1:0');
await s.listen('unix://${unixPath}');
const s0 = new RpcServer({ spinUs: 0 });
s0.addProgram(${INTEROP_PROG}, ${INTEROP_V1}, { ${ECHO_BLOB}: { args: xdr.opaque(), result: xdr.opaque(), handler: (b) => b } });
const tcp0 = await s0.listen('tcp://127.0.0.1:0');
await s0.listen('unix://${noSpinUnixPath}');
const echo = (sock) => sock.on('data', (d) => sock.write(d)).on('error', () => {});
const rawTcp = net.createServer(echo).listen(0, '127.0.0.1');
await new Promise((r) => rawTcp.once('listening', r));
const rawUnix = net.createServer(echo).listen('${rawUnixPath}');
await new Promise((r) => rawUnix.once('listening', r));
const rawUdp = dgram.createSocket('udp4');
rawUdp.on('message', (m, from) => rawUdp.send(m, from.port, from.address));
await new Promise((r) => rawUdp.bind(0, '127.0.0.1', r));
process.stdout.write('READY ' + tcp.port + ' ' + udp.port + ' ' + rawTcp.address().port + ' ' + rawUdp.address().port + ' ' + tcp0.port + '\\n');
`;
}

async function startPeer(dir: string): Promise<{ child: ChildProcess; ports: number[]; unix: string; rawUnix: string; noSpinUnix: string }> {
  const url = new URL(`../../src/oncrpc/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;
  const unix = join(dir, 'ours.sock');
  const rawUnix = join(dir, 'raw.sock');
  const noSpinUnix = join(dir, 'ours-nospin.sock');
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test') && a !== '--input-type=module');
  const child = spawn(process.execPath, [...execArgv, '--input-type=module', '-e', peerScript(url, unix, rawUnix, noSpinUnix)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise<number[]>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(out);
      if (m) resolve(m.slice(1).map(Number));
    });
    child.once('exit', (code) => reject(new Error(`our server process exited with ${code}`)));
  });
  return { child, ports, unix, rawUnix, noSpinUnix };
}

/** One call at a time, and how to let go of what it holds. */
interface CallLoop {
  one(): Promise<unknown>;
  close(): Promise<void> | void;
}

/** Raw round trip of n bytes (plus the 4-byte record mark on streams, like an RPC) over a plain socket. */
async function rawLoop(tr: Tr, target: { port?: number; path?: string }, size: number): Promise<CallLoop> {
  const msg = Buffer.alloc(Math.max(size + 4, 4));
  if (tr === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.connect(target.port as number, '127.0.0.1', () => r()));
    let wake: (() => void) | undefined;
    s.on('message', () => wake?.());
    return {
      one: () => new Promise<void>((r) => {
        wake = r;
        s.send(msg);
      }),
      close: () => void s.close(),
    };
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
  return {
    one: () => new Promise<void>((r) => {
      got = 0;
      want = msg.length;
      wake = r;
      sock.write(msg);
    }),
    close: () => void sock.destroy(),
  };
}

async function ourLoop(address: Address, size: number, spinUs?: number): Promise<CallLoop> {
  const c = await RpcClient.connect(address, spinUs === undefined ? { timeoutMs: 30_000 } : { timeoutMs: 30_000, spinUs });
  const payload = new Uint8Array(size);
  const blob = xdr.opaque();
  return {
    one: size === 0 ? () => c.ping(INTEROP_PROG, INTEROP_V1) : () => c.call(INTEROP_PROG, INTEROP_V1, ECHO_BLOB, blob, payload, blob),
    close: () => c.close(),
  };
}

/** CPU time (user + system) of this process, in microseconds. */
function ownCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** One measured round: wall us/call, and CPU us/call of the client and server side where known. */
interface Round {
  wall: number;
  clientCpu?: number;
  serverCpu?: number;
}

/**
 * n calls of an in-process client after n/10 untimed ones, as the libtirpc
 * client's bench mode does (right after a libtirpc client process was
 * spawned, this process first takes a page fault on every page it writes:
 * fork marked them copy-on-write). `serverPid` is the server process, whose
 * CPU time is read from /proc.
 */
async function loopRound(loop: CallLoop, n: number, serverPid: number | undefined): Promise<Round> {
  for (let i = 0; i < Math.floor(n / 10) + 1; i++) await loop.one();
  const s0 = serverPid === undefined ? 0 : processCpuUs(serverPid);
  const c0 = ownCpuUs();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await loop.one();
  const wall = ((performance.now() - t0) * 1000) / n;
  const clientCpu = (ownCpuUs() - c0) / n;
  return serverPid === undefined ? { wall, clientCpu } : { wall, clientCpu, serverCpu: (processCpuUs(serverPid) - s0) / n };
}

/** The libtirpc client's bench mode (n timed calls after n/10 + 1 warm-up calls): it prints wall and CPU us/call. */
async function cRound(build: CBuild, netid: string, target: string, size: number, n: number, serverPid: number): Promise<Round> {
  const s0 = processCpuUs(serverPid);
  const r = await runCClient(build, ['direct', netid, target, 'bench', String(size), String(n)], 120_000);
  if (r.code !== 0) throw new Error(`libtirpc client ${netid} ${size} B failed: ${r.stderr.trim()}`);
  const [wall, clientCpu] = r.stdout.trim().split(/\s+/).map(Number) as [number, number];
  return { wall, clientCpu, serverCpu: (processCpuUs(serverPid) - s0) / (n + Math.floor(n / 10) + 1) };
}

/**
 * Rounds of every path in turn (a, b, c, b, c, a, c, a, b, ...), as
 * ctx.latencies() does for in-process ops, so that a slow spell of the
 * shared machine hits every path alike; the libtirpc client runs as its own
 * process once per round. Each round starts one path later: the path right
 * after a libtirpc client process runs slower (this process takes a page
 * fault on every page it writes after a fork), and no path should always
 * be that one.
 */
async function interleaved(rounds: number, paths: ReadonlyArray<() => Promise<Round>>): Promise<Round[][]> {
  const out: Round[][] = paths.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < paths.length; k++) {
      const i = (r + k) % paths.length;
      (out[i] as Round[]).push(await (paths[i] as () => Promise<Round>)());
    }
  }
  return out;
}

const med = (rs: readonly Round[], k: keyof Round) => median(rs.map((r) => r[k] ?? NaN));
/** Server CPU comes from /proc in 10 ms ticks: the mean over all rounds (all calls) resolves it better than a median of rounds. */
const mean = (rs: readonly Round[], k: keyof Round) => rs.reduce((a, r) => a + (r[k] ?? NaN), 0) / rs.length;

export function xdrRows(ctx: BenchContext): Promise<BenchRow[]> {
  const data = new Uint8Array(65536).fill(7);
  const group = 'XDR 64 KiB opaque';
  const gbps = (msgPerSec: number) => (msgPerSec * 65536) / 1e9;
  const w = new XdrWriter(65536 + 64);
  const fresh = new XdrWriter(64);
  const encoded = new XdrWriter().opaque(data).finish();
  const referencing = new XdrWriter(1024, { referenceBytes: 8192 });
  // A 64 KiB reply as libtirpc sends it: two fragments, the first filling a 64 KiB socket read.
  const reply = new XdrWriter().uint(0).raw(new Uint8Array(24)).opaque(data).finish();
  const body = reply.subarray(4);
  const chunk1 = new Uint8Array(65536);
  new DataView(chunk1.buffer).setUint32(0, 65532);
  chunk1.set(body.subarray(0, 65532), 4);
  const chunk2 = new Uint8Array(4 + body.length - 65532);
  new DataView(chunk2.buffer).setUint32(0, (0x8000_0000 | (body.length - 65532)) >>> 0);
  chunk2.set(body.subarray(65532), 4);
  const rm = new RecordMarkingDecoder();
  const dst = new Uint8Array(65536 + 8);
  const until = performance.now() + (ctx.quick ? 100 : 400);
  while (performance.now() < until) w.reset().opaque(data).view();
  return (async () => [
    { group, name: 'Uint8Array.set copy of 64 KiB', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) dst.set(data, 4); })), unit: 'GB/s', baseline: true },
    { group, name: 'XdrWriter.opaque (encode)', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) w.reset().opaque(data).view(); })), unit: 'GB/s', target: '>= 1 GB/s', note: 'into a reused writer' },
    { group, name: 'XdrWriter.opaque + finish (encode)', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) fresh.opaque(data).finish(); })), unit: 'GB/s', target: '>= 1 GB/s', note: 'a new zero-filled buffer per message' },
    { group, name: 'XdrWriter.opaque + takeWritten (encode)', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) takeWritten(w.reset().opaque(data)); })), unit: 'GB/s', target: '>= 1 GB/s', note: 'as an RPC call does: a reused writer, copied out to uninitialised memory' },
    { group, name: 'XdrWriter.opaque + takeSegments (encode)', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) takeSegments(referencing.reset().uint(0).opaque(data)); })), unit: 'GB/s', target: '>= 1 GB/s', note: 'as an RPC call on TCP/Unix does now: the opaque is referenced for one writev, not copied' },
    { group, name: 'RecordMarkingDecoder, 2 fragments over 2 chunks (reassemble)', value: gbps(await ctx.throughput(async (n) => { for (let i = 0; i < n; i++) { rm.push(chunk1); rm.push(chunk2); rm.next(); } })), unit: 'GB/s', note: 'a 64 KiB reply from libtirpc: one copy into fresh memory' },
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
    const peerPid = peer.child.pid as number;
    try {
      const [ourTcp, ourUdp, rawTcp, rawUdp, noSpinTcp] = peer.ports as [number, number, number, number, number];
      for (const tr of ['tcp', 'unix', 'udp'] as Tr[]) {
        for (const size of SIZES) {
          if (tr === 'udp' && size > 8192) continue;
          const group = `ONC RPC ${label(size)}, ${tr}`;
          ctx.progress(group);
          const netid = tr === 'unix' ? 'local' : tr;
          const n = Math.round((size >= 65536 ? 1000 : 4000) * (ctx.quick ? 0.25 : 1));
          const rounds = ctx.quick ? 3 : 5;
          const ours: Address = tr === 'unix' ? { transport: 'unix', path: peer.unix } : { transport: tr, host: '127.0.0.1', port: tr === 'tcp' ? ourTcp : ourUdp };
          const rawTarget = tr === 'unix' ? { path: peer.rawUnix } : { port: tr === 'tcp' ? rawTcp : rawUdp };
          const loops: CallLoop[] = [];
          try {
            const oursToOurs = await ourLoop(ours, size);
            loops.push(oursToOurs);
            const raw = await rawLoop(tr, rawTarget, size);
            loops.push(raw);
            const paths: Array<() => Promise<Round>> = [() => loopRound(oursToOurs, n, peerPid), () => loopRound(raw, n, undefined)];
            let oursToC: CallLoop | undefined;
            const stream = tr !== 'udp';
            const polling: Array<() => Promise<Round>> = [];
            /** Our servers, as the libtirpc client reaches them: warmed up like the in-process paths. */
            const ourTargets: string[] = [];
            if (build && cServer) {
              const theirs: Address = tr === 'unix' ? { transport: 'unix', path: cServer.unixPath } : { transport: tr, host: '127.0.0.1', port: tr === 'tcp' ? cServer.tcpPort : cServer.udpPort };
              const cTarget = tr === 'unix' ? cServer.unixPath : String(tr === 'tcp' ? cServer.tcpPort : cServer.udpPort);
              const ourTarget = tr === 'unix' ? peer.unix : String(tr === 'tcp' ? ourTcp : ourUdp);
              ourTargets.push(ourTarget);
              oursToC = await ourLoop(theirs, size);
              loops.push(oursToC);
              const toC = oursToC;
              paths.push(
                () => cRound(build as CBuild, netid, cTarget, size, n, cServer.pid),
                () => loopRound(toC, n, cServer.pid),
                () => cRound(build as CBuild, netid, ourTarget, size, n, peerPid),
              );
              if (stream) {
                // The same pairs with the polled path off: our client with spinUs 0, our server with no post-reply spin.
                const plain = await ourLoop(theirs, size, 0);
                loops.push(plain);
                const noSpinTarget = tr === 'unix' ? peer.noSpinUnix : String(noSpinTcp);
                ourTargets.push(noSpinTarget);
                polling.push(() => loopRound(plain, n, cServer.pid), () => cRound(build as CBuild, netid, noSpinTarget, size, n, peerPid));
              }
            }
            // Warm up the in-process paths and our servers (JIT) before the measured rounds: a
            // fresh server process answers its first few thousand calls 2-4x slower.
            for (const l of loops) for (let i = 0; i < Math.max(200, n / 4); i++) await l.one();
            for (const t of ourTargets) await cRound(build as CBuild, netid, t, size, Math.max(2000, n), peerPid);
            const [oo, rw, cc, oc, co, ocOff, coOff] = await interleaved(rounds, [...paths, ...polling]);
            if (cc && oc && co) {
              rows.push({ group, name: 'libtirpc client -> libtirpc server', value: med(cc, 'wall'), unit: 'us/op', baseline: true });
              rows.push({ group, name: 'our client -> libtirpc server', value: med(oc, 'wall'), unit: 'us/op', target: '<= 1.50' });
              rows.push({ group, name: 'libtirpc client -> our server', value: med(co, 'wall'), unit: 'us/op', target: '<= 1.50' });
              if (ocOff && coOff) {
                rows.push({ group, name: 'our client, polling off (spinUs 0) -> libtirpc server', value: med(ocOff, 'wall'), unit: 'us/op' });
                rows.push({ group, name: 'libtirpc client -> our server, post-reply spin off', value: med(coOff, 'wall'), unit: 'us/op' });
              }
              const cpu = `${group}, CPU per call`;
              rows.push({ group: `${cpu}, client side`, name: 'libtirpc client (-> libtirpc server)', value: med(cc, 'clientCpu'), unit: 'us/op', baseline: true, note: 'getrusage' });
              rows.push({ group: `${cpu}, client side`, name: 'our client (-> libtirpc server)', value: med(oc, 'clientCpu'), unit: 'us/op', note: 'process.cpuUsage' });
              if (ocOff) rows.push({ group: `${cpu}, client side`, name: 'our client, polling off (-> libtirpc server)', value: med(ocOff, 'clientCpu'), unit: 'us/op', note: 'process.cpuUsage' });
              rows.push({ group: `${cpu}, client side`, name: 'raw Node socket client (-> raw Node server)', value: med(rw as Round[], 'clientCpu'), unit: 'us/op', note: 'the floor under our client' });
              rows.push({ group: `${cpu}, server side`, name: 'libtirpc server (<- libtirpc client)', value: mean(cc, 'serverCpu'), unit: 'us/op', baseline: true, note: '/proc, mean of rounds' });
              rows.push({ group: `${cpu}, server side`, name: 'our server (<- libtirpc client)', value: mean(co, 'serverCpu'), unit: 'us/op', note: '/proc, mean of rounds' });
              if (coOff) rows.push({ group: `${cpu}, server side`, name: 'our server, post-reply spin off (<- libtirpc client)', value: mean(coOff, 'serverCpu'), unit: 'us/op', note: '/proc, mean of rounds' });
            }
            rows.push({ group, name: 'our client -> our server', value: med(oo as Round[], 'wall'), unit: 'us/op', baseline: !build });
            rows.push({ group, name: `raw Node ${tr} round trip, same bytes`, value: med(rw as Round[], 'wall'), unit: 'us/op' });
          } finally {
            for (const l of loops) await l.close();
          }
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
