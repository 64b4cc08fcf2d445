/**
 * Shared-memory rings (src/shm) beside what they build on, in the same run:
 * the C shm spin and futex handshakes of ../shared/peers/native (built here
 * in a temp dir), SharedArrayBuffer + Atomics between workers, and a Unix
 * socket between two Node processes.
 *
 * Round trips: a parent and an echo child (another Node process, or a worker)
 * over a pair of SPSC rings in one region. "spin" rows: both ends poll;
 * "blocking" rows: both ends sleep on a futex every time (synchronous
 * waits, like the C handshake); "async" rows: the Channel adapter, waiting
 * on the event loop. One-way: 64-byte messages written in batches of 64 to
 * a consumer that reads them with consume() and acknowledges each batch.
 *
 * CPU placement: the machine has 2 CPUs shared with everything else. The
 * target rows and their C baselines run with a core each: our main thread
 * on CPU 0 and the far end's main thread on CPU 1 (taskset, once
 * attached); the C parent on CPU 0 and its forked child on CPU 1 from the
 * fork on (bench/native/pin-fork.c). Rows that say "unpinned" leave it to
 * the scheduler, which puts the two ends of a futex handshake now on one
 * CPU, now on two. "Both on CPU 0" shows what adaptive spinning does when
 * spinning cannot succeed. Other rows are unpinned.
 *
 * Spin rows: by default the ends wait in C (the addon's spinWhile/ringRead,
 * nativeWait: true); the "JS polling" rows are the same ring with
 * nativeWait: false, and the "JS floor" row is the C handshake written in
 * JS with no ring at all. BENCH_SHM_GROUPS=spin,blocking,sizes,oneway,cpu0
 * runs only those groups; BENCH_SHM_CAPACITY sets the rings' capacity
 * (default 1 MiB).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { median, type BenchContext, type BenchRow, type BenchSection } from '../harness.js';
import {
  RingConsumer,
  RingProducer,
  connectShm,
  createRegion,
  futexWait,
  futexWake,
  initRing,
  listenShm,
  openRegion,
  ringBytes,
  type WaitMode,
} from '../../src/shm/index.js';
import { yieldCpu } from '../../src/shm/native.js';
import { W } from '../../src/shm/ring-layout.js';

const CHILD_ENV = 'SB_SHM_BENCH_CHILD';
const CAPACITY = Number(process.env['BENCH_SHM_CAPACITY'] ?? 1 << 20);
const B_OFFSET = ringBytes(CAPACITY);
/** The two rings, then 64 bytes of control words (word 0: the park count, see echoLoop). */
const CTL_OFFSET = 2 * ringBytes(CAPACITY);
const PAIR_BYTES = CTL_OFFSET + 64;
const BATCH = 64;
/** BENCH_SHM_GROUPS=spin,blocking,sizes,oneway,cpu0: run only those groups (all by default). */
const GROUPS = (process.env['BENCH_SHM_GROUPS'] ?? '').split(',').filter(Boolean);
const wanted = (g: string): boolean => GROUPS.length === 0 || GROUPS.includes(g);

interface EndConfig {
  role: 'echo' | 'parkable-echo' | 'sink' | 'atomics-echo' | 'unix-echo' | 'channel-echo' | 'bare-spin-echo';
  mode?: WaitMode;
  /** false: the ends poll from JS (nativeWait: false) instead of in C. */
  native?: boolean;
  name?: string;
  path?: string;
}

// ------------------------------------------------------------ the far ends

/**
 * Echo every message back (ring A -> ring B), with no allocation per message
 * (like the C echo). With control words (a 'parkable-echo'), a message of 0
 * bytes parks this end: it answers with 0 bytes and sleeps on control word 0
 * until the parent changes it (so that the C baselines measured in between
 * have both CPUs to themselves), checking once a second that the parent is
 * still there.
 */
function echoLoop(a: RingConsumer, b: RingProducer, ctl?: Int32Array): void {
  const buf = new Uint8Array(1 << 17);
  const none = new Uint8Array(0);
  const parent = process.ppid;
  let view = buf.subarray(0, 0);
  for (;;) {
    const n = a.readIntoSync(buf);
    if (n === null) break;
    if (n === 0 && ctl !== undefined) {
      const parks = Atomics.load(ctl, 0);
      b.writeSync(none);
      while (Atomics.load(ctl, 0) === parks) {
        futexWait(ctl, 0, parks, 1000);
        if (isMainThread && process.ppid !== parent) return;
      }
      continue;
    }
    if (view.byteLength !== n) view = buf.subarray(0, n);
    b.writeSync(view);
  }
  b.close();
}

/** Count messages; a message starting with 1 ends a batch and is acknowledged. */
function sinkLoop(a: RingConsumer, b: RingProducer): void {
  const ack = Uint8Array.of(1);
  let acks = 0;
  const onMessage = (bytes: Uint8Array, offset: number): void => {
    if (bytes[offset] === 1) acks++;
  };
  for (;;) {
    a.readableSync();
    if (a.consumeRaw(onMessage) === 0) {
      if (a.tryRead() === null) break;
      continue;
    }
    for (; acks > 0; acks--) b.writeSync(ack);
  }
  b.close();
}

/**
 * The JavaScript floor: the C spin handshake written in JS (word 0 = request
 * seq, word 16 = reply seq, 64 bytes copied each way, sched_yield every 2048
 * polls), no ring at all.
 */
function bareSpinEcho(sab: SharedArrayBuffer): void {
  const w = new Int32Array(sab, 0, 32);
  const req = new Uint8Array(sab, 128, 64);
  const resp = new Uint8Array(sab, 192, 64);
  const local = new Uint8Array(64);
  const parent = process.ppid;
  let seq = 0;
  for (;;) {
    let v: number;
    // (yields every 2048 polls like the C handshake; every 2^20 polls: stop if the parent is gone)
    for (let i = 1; (v = Atomics.load(w, 0)) === seq; i++) {
      if ((i & 2047) === 0) yieldCpu();
      if ((i & 0xfffff) === 0 && process.ppid !== parent) return;
    }
    seq = v;
    if (seq < 0) break;
    local.set(req);
    resp.set(local);
    Atomics.store(w, 16, seq);
  }
}

/** Plain SharedArrayBuffer + Atomics ping-pong: word 0 = request seq, word 1 = reply seq, bytes 64.. = data. */
function atomicsEcho(sab: SharedArrayBuffer): void {
  const w = new Int32Array(sab, 0, 2);
  const req = new Uint8Array(sab, 64, 65536);
  const resp = new Uint8Array(sab, 64 + 65536, 65536);
  let seq = 0;
  for (;;) {
    Atomics.wait(w, 0, seq);
    seq = Atomics.load(w, 0);
    if (seq < 0) break;
    resp.set(req.subarray(0, 64));
    Atomics.store(w, 1, seq);
    Atomics.notify(w, 1);
  }
}

async function runEnd(cfg: EndConfig, sab?: SharedArrayBuffer): Promise<void> {
  if (cfg.role === 'unix-echo') {
    const sock = net.connect(cfg.path as string);
    sock.setNoDelay(true);
    sock.on('data', (d) => sock.write(d));
    await new Promise((r) => sock.on('close', r));
    return;
  }
  if (cfg.role === 'channel-echo') {
    const ch = await connectShm(`shm:${cfg.name as string}`, { wait: cfg.mode });
    for await (const m of ch) await ch.write(m);
    await ch.close();
    return;
  }
  if (cfg.role === 'atomics-echo') {
    atomicsEcho(sab as SharedArrayBuffer);
    return;
  }
  if (cfg.role === 'bare-spin-echo') {
    bareSpinEcho(openRegion(cfg.name as string).buffer);
    return;
  }
  const memory = sab ?? openRegion(cfg.name as string);
  const opts = { wait: cfg.mode ?? 'adaptive', nativeWait: cfg.native ?? true };
  const a = new RingConsumer(memory, 0, opts);
  const b = new RingProducer(memory, B_OFFSET, opts);
  if (cfg.role === 'echo') echoLoop(a, b);
  else if (cfg.role === 'parkable-echo') echoLoop(a, b, new Int32Array(memory instanceof SharedArrayBuffer ? memory : memory.buffer, CTL_OFFSET, 16));
  else sinkLoop(a, b);
}

const childConfig = process.env[CHILD_ENV];
if (childConfig !== undefined && isMainThread) {
  await runEnd(JSON.parse(childConfig) as EndConfig);
  process.exit(0);
}
const wd = workerData as { sbShmBench?: EndConfig; sab?: SharedArrayBuffer } | null;
if (!isMainThread && wd?.sbShmBench) await runEnd(wd.sbShmBench, wd.sab);

// ---------------------------------------------------------------- the parent

const here = fileURLToPath(import.meta.url);

function spawnEnd(cfg: EndConfig, cpu?: string): ChildProcess {
  const args = [...process.execArgv.filter((a) => !a.startsWith('--test')), here];
  const env = { ...process.env, [CHILD_ENV]: JSON.stringify(cfg) };
  if (cpu !== undefined) return spawn('taskset', ['-c', cpu, process.execPath, ...args], { env, stdio: 'inherit' });
  return spawn(process.execPath, args, { env, stdio: 'inherit' });
}

function startWorkerEnd(cfg: EndConfig, sab: SharedArrayBuffer): Worker {
  const data = { sbShmBench: cfg, sab };
  if (here.endsWith('.js')) return new Worker(here, { workerData: data });
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(here)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}

function exited(p: ChildProcess | Worker): Promise<void> {
  return new Promise((resolve) => p.once('exit', () => resolve()));
}

/** Median microseconds per call of a synchronous op, over rounds of ~targetMs. */
function syncLatency(ctx: BenchContext, op: () => void): number {
  const targetMs = ctx.quick ? 60 : 200;
  const rounds = ctx.quick ? 3 : 7;
  let n = 0;
  const w0 = performance.now();
  while (performance.now() - w0 < targetMs || n < 20) {
    op();
    n++;
  }
  const iters = Math.max(20, Math.round((n * targetMs) / (performance.now() - w0)));
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) op();
    results.push(((performance.now() - t0) * 1000) / iters);
  }
  results.sort((x, y) => x - y);
  return results[results.length >> 1] as number;
}

let seq = 0;
const uniqueName = (): string => `bench-${process.pid}-${seq++}`;

interface Pair {
  out: RingProducer;
  in: RingConsumer;
  /** Control words shared with the far end (word 0: the park count of a 'parkable-echo'). */
  ctl: Int32Array;
  done(): Promise<void>;
}

const NOTHING = new Uint8Array(0);

/** Park a 'parkable-echo' far end: it answers, then sleeps until unpark(). */
function park(pair: Pair): void {
  pair.out.writeSync(NOTHING);
  if (pair.in.readIntoSync(new Uint8Array(8)) !== 0) throw new Error('the far end did not park');
}

function unpark(pair: Pair): void {
  Atomics.add(pair.ctl, 0, 1);
  futexWake(pair.ctl, 0, 1);
}

/**
 * Where both ends run: unpinned (undefined), or both on one CPU, pinned
 * before the ends start ('before': each end sees an affinity of one CPU and
 * adaptive mode never spins) or after they attached ('after': the ends
 * believe they have two CPUs, so only adaptive mode's spin scoring can find
 * out that spinning does not pay), or a core each ('apart': once attached,
 * our main thread on CPU 0 and the far process's main thread on CPU 1;
 * V8's helper threads stay free).
 */
interface Placement {
  cpu: string;
  when: 'before' | 'after' | 'apart';
}

/** A core each: what the spin target is stated for. */
const APART: Placement = { cpu: '0', when: 'apart' };

function pin(pid: number, cpu: string, allThreads: boolean): void {
  const r = spawnSync('taskset', [allThreads ? '-acp' : '-cp', cpu, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset failed: ${r.stderr}`);
}

/** Rings A (us -> far end) and B (back), with the far end in a process or a worker. */
async function startPair(kind: 'process' | 'worker', role: 'echo' | 'parkable-echo' | 'sink', mode: WaitMode, place?: Placement, native = true): Promise<Pair> {
  let memory: SharedArrayBuffer;
  let far: ChildProcess | Worker;
  let cleanup = (): void => undefined;
  if (place) pin(process.pid, place.when === 'before' ? place.cpu : '0-1023', false);
  if (kind === 'process') {
    const name = uniqueName();
    const region = createRegion(name, PAIR_BYTES);
    initRing(region, 0, { capacity: CAPACITY });
    initRing(region, B_OFFSET, { capacity: CAPACITY });
    memory = region.buffer;
    far = spawnEnd({ role, mode, name, native }, place?.when === 'before' ? place.cpu : undefined);
    cleanup = () => {
      region.close();
      region.unlink();
    };
  } else {
    memory = new SharedArrayBuffer(PAIR_BYTES);
    initRing(memory, 0, { capacity: CAPACITY });
    initRing(memory, B_OFFSET, { capacity: CAPACITY });
    far = startWorkerEnd({ role, mode, native }, memory);
  }
  const out = new RingProducer(memory, 0, { wait: mode, nativeWait: native });
  const input = new RingConsumer(memory, B_OFFSET, { wait: mode, nativeWait: native });
  const gone = exited(far);
  // Wait until the far end is attached (its producer on B).
  const h = new Int32Array(memory, B_OFFSET, 64);
  const until = Date.now() + 20_000;
  while (Atomics.load(h, W.everAttached) === 0) {
    if (Date.now() > until) throw new Error('the far end did not start');
    await new Promise((r) => setTimeout(r, 5));
  }
  if (place?.when === 'after' && !(far instanceof Worker)) {
    pin((far as ChildProcess).pid as number, place.cpu, true);
    pin(process.pid, place.cpu, false);
  }
  if (place?.when === 'apart') {
    pin(process.pid, '0', false);
    // (a worker is a thread of ours: its id is the one it attached to ring B as producer with)
    pin(far instanceof Worker ? Atomics.load(h, W.producers) : ((far as ChildProcess).pid as number), '1', false);
  }
  return {
    out,
    in: input,
    ctl: new Int32Array(memory, CTL_OFFSET, 16),
    async done() {
      out.close();
      await gone;
      input.close();
      cleanup();
      if (place) pin(process.pid, '0-1023', false);
    },
  };
}

/** Microseconds per round trip of `n` messages `msg` through a pair whose far end echoes. */
function echoBlock(pair: Pair, msg: Uint8Array, buf: Uint8Array, n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    pair.out.writeSync(msg);
    if (pair.in.readIntoSync(buf) !== msg.length) throw new Error('short echo');
  }
  return ((performance.now() - t0) * 1000) / n;
}

async function ringRtt(ctx: BenchContext, kind: 'process' | 'worker', mode: WaitMode, size: number, place?: Placement, native = true): Promise<number> {
  const pair = await startPair(kind, 'echo', mode, place, native);
  const msg = new Uint8Array(size).fill(7);
  const buf = new Uint8Array(size);
  try {
    return syncLatency(ctx, () => {
      pair.out.writeSync(msg);
      if (pair.in.readIntoSync(buf) !== size) throw new Error('short echo');
    });
  } finally {
    await pair.done();
  }
}

/** The C spin handshake in JS between two processes: what any ring in JS is measured against. */
async function bareSpinRtt(ctx: BenchContext): Promise<number> {
  const name = uniqueName();
  const region = createRegion(name, 4096);
  const w = new Int32Array(region.buffer, 0, 32);
  const req = new Uint8Array(region.buffer, 128, 64);
  const resp = new Uint8Array(region.buffer, 192, 64);
  const out = new Uint8Array(64).fill(5);
  const buf = new Uint8Array(64);
  const far = spawnEnd({ role: 'bare-spin-echo', name });
  const gone = exited(far);
  await new Promise((r) => setTimeout(r, 300)); // the child maps the region and starts polling
  let s = 0;
  try {
    return syncLatency(ctx, () => {
      req.set(out);
      Atomics.store(w, 0, ++s);
      for (let i = 1; Atomics.load(w, 16) !== s; i++) if ((i & 2047) === 0) yieldCpu();
      buf.set(resp);
    });
  } finally {
    Atomics.store(w, 0, -1);
    await gone;
    region.close();
    region.unlink();
  }
}

async function ringOneWay(ctx: BenchContext, kind: 'process' | 'worker', mode: WaitMode): Promise<number> {
  const pair = await startPair(kind, 'sink', mode);
  const msg = new Uint8Array(64);
  const last = new Uint8Array(64);
  last[0] = 1;
  const batch: Uint8Array[] = Array.from({ length: BATCH }, () => msg);
  const ack = new Uint8Array(8);
  try {
    return await ctx.throughput(async (n) => {
      const batches = Math.max(1, Math.round(n / BATCH));
      for (let i = 0; i < batches - 1; i++) pair.out.writeManySync(batch);
      batch[BATCH - 1] = last;
      pair.out.writeManySync(batch);
      batch[BATCH - 1] = msg;
      pair.in.readIntoSync(ack);
    });
  } finally {
    await pair.done();
  }
}

async function channelRtt(ctx: BenchContext, size: number): Promise<number> {
  const name = uniqueName();
  const listener = await listenShm(`shm:${name}`, { wait: 'adaptive' });
  const far = spawnEnd({ role: 'channel-echo', name, mode: 'adaptive' });
  const gone = exited(far);
  const ch = await listener.accept({ timeoutMs: 20_000 });
  const msg = new Uint8Array(size).fill(3);
  try {
    // a longer warm-up: the JIT and both ends' adaptive spinning settle in a few hundred ms
    return await ctx.latency(
      async () => {
        await ch.write(msg);
        await ch.read();
      },
      { warmupMs: 1200 },
    );
  } finally {
    await ch.close();
    await gone;
    await listener.close();
  }
}

async function atomicsRtt(ctx: BenchContext): Promise<number> {
  const sab = new SharedArrayBuffer(64 + 2 * 65536);
  const w = new Int32Array(sab, 0, 2);
  const req = new Uint8Array(sab, 64, 64);
  const resp = new Uint8Array(sab, 64 + 65536, 64);
  const out = new Uint8Array(64).fill(5);
  const worker = startWorkerEnd({ role: 'atomics-echo' }, sab);
  const gone = exited(worker);
  let s = 0;
  const buf = new Uint8Array(64);
  try {
    return syncLatency(ctx, () => {
      req.set(out);
      Atomics.store(w, 0, ++s);
      Atomics.notify(w, 0);
      while (Atomics.load(w, 1) !== s) Atomics.wait(w, 1, s - 1);
      buf.set(resp);
    });
  } finally {
    Atomics.store(w, 0, -1);
    Atomics.notify(w, 0);
    await gone;
  }
}

/** A Unix socket to an echo process: the socket, and how to stop both. */
async function unixEcho(): Promise<{ sock: net.Socket; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-shm-'));
  const path = join(dir, 's');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const gone = exited(spawnEnd({ role: 'unix-echo', path }));
  const sock = await new Promise<net.Socket>((r) => server.once('connection', r));
  return {
    sock,
    async close() {
      sock.destroy();
      server.close();
      await gone;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function unixRtt(ctx: BenchContext, size: number): Promise<number> {
  const echo = await unixEcho();
  const sock = echo.sock;
  sock.setNoDelay(true);
  const msg = Buffer.alloc(size, 1);
  let pending: (() => void) | undefined;
  let got = 0;
  sock.on('data', (d) => {
    got += d.length;
    if (got >= size && pending) {
      got -= size;
      const p = pending;
      pending = undefined;
      p();
    }
  });
  try {
    return await ctx.latency(
      () =>
        new Promise<void>((resolve) => {
          pending = resolve;
          sock.write(msg);
        }),
    );
  } finally {
    await echo.close();
  }
}

async function unixOneWay(ctx: BenchContext): Promise<number> {
  const echo = await unixEcho();
  const sock = echo.sock;
  const msg = Buffer.alloc(64, 1);
  let want = 0;
  let got = 0;
  let done: (() => void) | undefined;
  sock.on('data', (d) => {
    got += d.length;
    if (got >= want && done) done();
  });
  try {
    // 64-byte messages written back to back; the echo's bytes count them.
    return await ctx.throughput(
      (n) =>
        new Promise<void>((resolve) => {
          got = 0;
          want = n * 64;
          done = resolve;
          for (let i = 0; i < n; i++) sock.write(msg);
        }),
      { rounds: ctx.quick ? 2 : 3 },
    );
  } finally {
    await echo.close();
  }
}

/** Builds ipc_rtt from ../shared/peers/native in a temp dir; runs one mode beside the rows it is compared with. */
class CBaselines {
  #dir: string | undefined;
  #bin: string | undefined;

  build(): boolean {
    const candidates = [fileURLToPath(new URL('../../../shared/peers/native', import.meta.url)), fileURLToPath(new URL('../../../../shared/peers/native', import.meta.url)), '/work/shared/peers/native'];
    const from = candidates.find((c) => existsSync(join(c, 'posix', 'ipc_rtt.c')));
    if (!from) return false;
    this.#dir = mkdtempSync(join(tmpdir(), 'sb-bench-native-'));
    cpSync(from, this.#dir, { recursive: true });
    const make = spawnSync('make', ['-C', this.#dir, 'posix'], { encoding: 'utf8', timeout: 60_000 });
    if (make.status !== 0) return false;
    this.#bin = join(this.#dir, 'build', 'posix', 'ipc_rtt');
    // Both ends of our own ring layout in C (bench/native/ring-pingpong.c): the protocol's cost with no Node.
    const ringSrc = fileURLToPath(new URL(`../../${here.endsWith('.ts') ? '' : '../'}bench/native/ring-pingpong.c`, import.meta.url));
    const include = fileURLToPath(new URL(`../../${here.endsWith('.ts') ? '' : '../'}include`, import.meta.url));
    const ringBin = join(this.#dir, 'ring-pingpong');
    const cc = spawnSync('cc', ['-O2', '-I', include, '-o', ringBin, ringSrc], { encoding: 'utf8', timeout: 60_000 });
    if (cc.status === 0) this.#ringBin = ringBin;
    // The fork shim that gives a forking C benchmark a core each (bench/native/pin-fork.c).
    const shimSrc = join(dirname(ringSrc), 'pin-fork.c');
    const shim = join(this.#dir, 'pin-fork.so');
    const sc = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', shim, shimSrc, '-ldl'], { encoding: 'utf8', timeout: 60_000 });
    if (sc.status === 0) this.#shim = shim;
    return true;
  }

  #ringBin: string | undefined;
  #shim: string | undefined;

  /** True when 'apart' runs really get a core each (the fork shim was built). */
  get canPlace(): boolean {
    return this.#shim !== undefined;
  }

  /** One block of the C spin handshake (a core each): us per round trip, or undefined. */
  async spinBlock(iters: number): Promise<number | undefined> {
    if (this.#bin === undefined) return undefined;
    return resultOf(await placed(this.#bin, ['shm-spin', '-s', '64', '-n', String(iters), '-r', '1'], 'apart', this.#shim));
  }

  /** One block of the ring protocol with C at both ends (a core each): us per round trip, or undefined. */
  async ringBlock(iters: number): Promise<number | undefined> {
    if (this.#ringBin === undefined) return undefined;
    return resultOf(await placed(this.#ringBin, ['64', String(iters), '1'], 'apart', this.#shim), 3);
  }

  #args(ctx: BenchContext, mode: 'shm-futex' | 'shm-spin', size: number): string[] {
    // Rounds of tens of milliseconds (a futex round trip takes 60-100 us here, a spin one 0.1-0.4 us),
    // not a few: the VM's placement drifts, and a baseline of a few milliseconds is a snapshot of one phase.
    const n = mode === 'shm-spin' ? (ctx.quick ? 50_000 : 200_000) : (ctx.quick ? 1000 : 4000) / (size >= 65536 ? 4 : 1);
    return [mode, '-s', String(size), '-n', String(n), '-r', ctx.quick ? '3' : mode === 'shm-spin' ? '7' : '5'];
  }

  /** Median us per round trip, or undefined. */
  run(ctx: BenchContext, mode: 'shm-futex' | 'shm-spin', size: number): number | undefined {
    if (this.#bin === undefined) return undefined;
    const r = spawnSync(this.#bin, this.#args(ctx, mode, size), { encoding: 'utf8', timeout: 60_000 });
    return resultOf(r.stdout);
  }

  /** run() with the placement fixed (see placed()). */
  async runPlaced(ctx: BenchContext, mode: 'shm-futex' | 'shm-spin', size: number, place: Place): Promise<number | undefined> {
    if (this.#bin === undefined) return undefined;
    return resultOf(await placed(this.#bin, this.#args(ctx, mode, size), place, this.#shim));
  }

  dispose(): void {
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
  }
}

/**
 * Run each measurement once per round, all in turn, so that every one of them
 * sees the same drift of the VM; returns each one's values (undefined: none).
 */
async function inTurn(rounds: number, measures: readonly (() => number | undefined | Promise<number | undefined>)[]): Promise<number[][]> {
  const out = measures.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, measure] of measures.entries()) {
      const v = await measure();
      if (v !== undefined) out[i]?.push(v);
    }
  }
  return out;
}

/** The median in field `field` of a RESULT line (../shared/peers/native's common/bench.h: field 4), or undefined. */
function resultOf(stdout: string | undefined, field = 4): number | undefined {
  const line = stdout?.split('\n').find((l) => l.startsWith('RESULT|'));
  const median = line ? Number(line.split('|')[field]) : NaN;
  return Number.isFinite(median) ? median : undefined;
}

/** Where a C benchmark's two forked processes run: both on CPU 0, or a core each. */
type Place = 'one-cpu' | 'apart';

/**
 * Run a C benchmark that forks its far end, with the placement fixed:
 * 'one-cpu' both processes on CPU 0 (taskset); 'apart' the parent on CPU 0
 * and the child on CPU 1 from the moment of the fork (the LD_PRELOAD shim
 * bench/native/pin-fork.c; without it the run is unpinned). Left free, the
 * scheduler puts the two ends of a futex handshake now on one CPU (2-35 us
 * a round trip here), now on two (60-90 us), from one run to the next.
 * Returns what the program printed.
 */
async function placed(bin: string, args: readonly string[], place: Place, shim: string | undefined): Promise<string> {
  const p =
    place === 'one-cpu'
      ? spawn('taskset', ['-c', '0', bin, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
      : spawn(bin, [...args], { stdio: ['ignore', 'pipe', 'ignore'], env: shim ? { ...process.env, LD_PRELOAD: shim } : process.env });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
  // (a program that cannot start, taskset missing say, prints nothing: the row then says so)
  await new Promise<void>((resolve) => {
    p.once('close', () => resolve());
    p.once('error', () => resolve());
  });
  clearTimeout(timer);
  return out;
}

/** Each round's value, for a row's note. */
const each = (xs: readonly number[]): string => xs.map((x) => x.toFixed(2)).join(' ');

/** recorded.md (2026-11-24, same machine) when the build is not possible. */
const RECORDED: Record<string, number> = { 'shm-futex/64': 7.18, 'shm-spin/64': 0.137 };

export const section: BenchSection = {
  name: 'shm',
  async run(ctx) {
    const rows: BenchRow[] = [];
    const load = `load ${loadavg()[0]?.toFixed(1)} on 2 CPUs, unpinned`;
    ctx.progress('C baselines: building ../shared/peers/native in a temp dir');
    const c = new CBaselines();
    const built = c.build();
    // Each C baseline runs right before the rows compared with it, so they see the same load.
    const cval = (mode: 'shm-futex' | 'shm-spin', size: number): { value: number; note: string } => {
      const v = built ? c.run(ctx, mode, size) : undefined;
      if (v !== undefined) return { value: v, note: 'measured now' };
      return { value: RECORDED[`${mode}/${size}`] ?? NaN, note: 'from results/recorded.md' };
    };
    try {
      // round trip 64 B, blocking
      if (wanted('blocking')) {
        ctx.progress('round trip 64 B, blocking');
        const g = 'shm round trip 64 B, blocking (futex)';
        // Every wake-up here goes through the hypervisor, whose latency drifts by tens of
        // microseconds within seconds: the C handshake and the target row run in turn, and
        // each reports its median over the rounds (as the spin rows do).
        // The scheduler puts the two ends of a futex handshake now on one CPU, now on two, from
        // one run to the next (2-10 us against 60-90 us a round trip for the same C program): the
        // target row and its baseline both run with a core each; the unpinned pair is shown too.
        const rounds = ctx.quick ? 2 : 3;
        const [cApart = [], oursApart = [], cFree = [], oursFree = []] = await inTurn(rounds, [
          () => c.runPlaced(ctx, 'shm-futex', 64, 'apart'),
          () => ringRtt(ctx, 'process', 'block', 64, APART),
          () => (built ? c.run(ctx, 'shm-futex', 64) : undefined),
          () => ringRtt(ctx, 'process', 'block', 64),
        ]);
        const have = cApart.length > 0;
        rows.push({
          group: g,
          name: `C shm_open+mmap futex handshake, a core each, median of ${rounds} rounds`,
          value: have ? median(cApart) : (RECORDED['shm-futex/64'] as number),
          unit: 'us/op',
          baseline: true,
          note: have ? `${c.canPlace ? 'parent on CPU 0, child on CPU 1' : 'unpinned: the fork shim was not built'}; rounds: ${each(cApart)}` : 'from results/recorded.md (unpinned)',
        });
        rows.push({ group: g, name: `ring, 2 Node processes on a core each, block, median of ${rounds} rounds`, value: median(oursApart), unit: 'us/op', target: '<= 1.5', note: `main threads pinned to CPU 0 and 1; rounds: ${each(oursApart)}` });
        if (cFree.length > 0) rows.push({ group: g, name: 'C shm_open+mmap futex handshake, unpinned', value: median(cFree), unit: 'us/op', note: `rounds: ${each(cFree)}` });
        rows.push({ group: g, name: 'ring, 2 Node processes, block, unpinned', value: median(oursFree), unit: 'us/op', note: `${load}; rounds: ${each(oursFree)}` });
        rows.push({ group: g, name: 'ring, 2 workers, block', value: await ringRtt(ctx, 'worker', 'block', 64), unit: 'us/op' });
        rows.push({ group: g, name: 'SharedArrayBuffer + Atomics.wait/notify, 2 workers', value: await atomicsRtt(ctx), unit: 'us/op' });
        rows.push({ group: g, name: 'ring Channel (async, event loop), 2 processes', value: await channelRtt(ctx, 64), unit: 'us/op' });
        rows.push({ group: g, name: 'Unix socket (node:net), 2 processes', value: await unixRtt(ctx, 64), unit: 'us/op' });
      }
      if (wanted('spin')) {
        ctx.progress('round trip 64 B, spin');
        const g = 'shm round trip 64 B, spin';
        // The shared VM moves between placements in which the same C handshake takes 0.06, 0.1 or
        // 0.4 us, within a second or less: rows measured one after the other, each over a second or
        // two, compare different placements. So the target rows are measured block by block, in
        // turn with the C handshake: a block of the C handshake, then one of the path (tens of
        // milliseconds each), and each path block is divided by the handshake block just before
        // it. The two Node pairs (spin and adaptive, a core each) are started once; while anything
        // else runs, their far ends sleep (parked on a futex), so each C program has both CPUs.
        const blocks = ctx.quick ? 4 : 12;
        const iters = ctx.quick ? 30_000 : 100_000;
        const msg = new Uint8Array(64).fill(7);
        const buf = new Uint8Array(64);
        const pairs = [
          await startPair('process', 'parkable-echo', 'spin', APART),
          await startPair('process', 'parkable-echo', 'adaptive', APART),
          await startPair('worker', 'parkable-echo', 'spin', APART),
        ];
        const hs: number[] = [];
        const cRings: number[] = [];
        const cRatios: number[] = [];
        const nodes: number[][] = [[], [], []];
        const nodeRatios: number[][] = [[], [], []];
        try {
          for (const pair of pairs) {
            // (warm-up, half a second: both ends' JIT, parking included, and the spin policy's score)
            for (const t0 = performance.now(); performance.now() - t0 < 500; ) {
              echoBlock(pair, msg, buf, 10_000);
              park(pair);
              unpark(pair);
            }
            park(pair);
          }
          for (let k = 0; k < blocks; k++) {
            ctx.progress(`round trip 64 B, spin: block ${k + 1} of ${blocks} (C handshake, C ring, Node spin, Node adaptive, workers spin)`);
            const h0 = await c.spinBlock(iters);
            const cr = await c.ringBlock(iters);
            if (h0 !== undefined) hs.push(h0);
            if (cr !== undefined) {
              cRings.push(cr);
              if (h0 !== undefined) cRatios.push(cr / h0);
            }
            for (const [m, pair] of pairs.entries()) {
              const h = await c.spinBlock(iters);
              unpark(pair);
              const v = echoBlock(pair, msg, buf, iters);
              park(pair);
              nodes[m]?.push(v);
              if (h !== undefined) {
                hs.push(h);
                nodeRatios[m]?.push(v / h);
              }
            }
          }
        } finally {
          for (const pair of pairs) {
            unpark(pair);
            await pair.done();
          }
        }
        const have = hs.length > 0;
        const pairedNote = (r: readonly number[]): string => (r.length > 0 ? `; over the handshake block before it: ${each(r)} (median ${median(r).toFixed(2)}x)` : '');
        rows.push({
          group: g,
          name: `C shm_open+mmap spin handshake, a core each, median of ${hs.length} blocks`,
          value: have ? median(hs) : (RECORDED['shm-spin/64'] as number),
          unit: 'us/op',
          baseline: true,
          note: have ? `${c.canPlace ? 'parent on CPU 0, child on CPU 1' : 'unpinned: the fork shim was not built'}; blocks of ${iters} round trips, in turn with the rows below: ${each(hs)}` : 'from results/recorded.md',
        });
        rows.push({
          group: g,
          name: 'C at both ends of the ring layout (bench/native/ring-pingpong.c, no Node), a core each, median of blocks',
          value: cRings.length > 0 ? median(cRings) : NaN,
          unit: 'us/op',
          ...(cRatios.length > 0 ? { ratio: median(cRatios) } : {}),
          note: cRings.length > 0 ? `the protocol's own cost: a 64-byte message and its 8-byte header span two cache lines, plus the tail's; blocks: ${each(cRings)}${pairedNote(cRatios)}` : 'not built (no C compiler)',
        });
        for (const [m, mode] of ['spin', 'adaptive'].entries()) {
          const vs = nodes[m] ?? [];
          const rs = nodeRatios[m] ?? [];
          rows.push({
            group: g,
            name: `ring, 2 Node processes on a core each, ${mode} (waits in C), median of blocks`,
            value: median(vs),
            unit: 'us/op',
            target: '<= 2 (a core each)',
            ...(rs.length > 0 ? { ratio: median(rs) } : {}),
            note: `main threads pinned to CPU 0 and 1; blocks: ${each(vs)}${pairedNote(rs)}`,
          });
        }
        rows.push({
          group: g,
          name: 'ring, 2 workers on a core each, spin (waits in C), median of blocks',
          value: median(nodes[2] ?? []),
          unit: 'us/op',
          ...((nodeRatios[2] ?? []).length > 0 ? { ratio: median(nodeRatios[2] ?? []) } : {}),
          note: `our main thread on CPU 0, the worker's thread on CPU 1; blocks: ${each(nodes[2] ?? [])}${pairedNote(nodeRatios[2] ?? [])}`,
        });
        rows.push({ group: g, name: 'ring, 2 Node processes, spin (waits in C), unpinned', value: await ringRtt(ctx, 'process', 'spin', 64), unit: 'us/op', note: load });
        rows.push({ group: g, name: 'JS floor: the same handshake in JS (Atomics, no ring), 2 processes', value: await bareSpinRtt(ctx), unit: 'us/op' });
        rows.push({ group: g, name: 'ring, 2 Node processes, spin, JS polling (nativeWait: false)', value: await ringRtt(ctx, 'process', 'spin', 64, undefined, false), unit: 'us/op' });
        rows.push({ group: g, name: 'ring, 2 Node processes, adaptive, JS polling (nativeWait: false)', value: await ringRtt(ctx, 'process', 'adaptive', 64, undefined, false), unit: 'us/op' });
        rows.push({ group: g, name: 'ring, 2 workers, spin, unpinned', value: await ringRtt(ctx, 'worker', 'spin', 64), unit: 'us/op', note: load });
      }
      for (const size of wanted('sizes') ? [1024, 65536] : []) {
        const label = size === 1024 ? '1 KiB' : '64 KiB';
        ctx.progress(`round trip ${label}`);
        const g = `shm round trip ${label}`;
        const base = cval('shm-futex', size);
        rows.push({ group: g, name: 'C shm_open+mmap futex handshake', value: base.value, unit: 'us/op', baseline: true, note: base.note });
        rows.push({ group: g, name: 'ring, 2 Node processes, block', value: await ringRtt(ctx, 'process', 'block', size), unit: 'us/op' });
        rows.push({ group: g, name: 'ring, 2 Node processes, spin', value: await ringRtt(ctx, 'process', 'spin', size), unit: 'us/op' });
        rows.push({ group: g, name: 'ring Channel (async), 2 processes', value: await channelRtt(ctx, size), unit: 'us/op' });
        rows.push({ group: g, name: 'Unix socket (node:net), 2 processes', value: await unixRtt(ctx, size), unit: 'us/op' });
      }
      if (wanted('oneway')) {
        ctx.progress('one way 64 B');
        const g = 'shm one way 64 B';
        rows.push({ group: g, name: 'Unix socket (node:net), 2 processes', value: await unixOneWay(ctx), unit: 'msg/s', baseline: true });
        rows.push({ group: g, name: `ring, 2 Node processes, spin, batches of ${BATCH}`, value: await ringOneWay(ctx, 'process', 'spin'), unit: 'msg/s', target: '>= 5 M msg/s', note: load });
        rows.push({ group: g, name: `ring, 2 Node processes, block, batches of ${BATCH}`, value: await ringOneWay(ctx, 'process', 'block'), unit: 'msg/s' });
        rows.push({ group: g, name: `ring, 2 workers, adaptive, batches of ${BATCH}`, value: await ringOneWay(ctx, 'worker', 'adaptive'), unit: 'msg/s' });
      }
      if (wanted('cpu0')) {
        ctx.progress('spinning when it cannot succeed: both ends on CPU 0');
        const g = 'shm round trip 64 B, both ends on CPU 0';
        if (spawnSync('taskset', ['-p', String(process.pid)]).status === 0) {
          const before = (cpu: string): Placement => ({ cpu, when: 'before' });
          const c0 = await c.runPlaced(ctx, 'shm-futex', 64, 'one-cpu');
          if (c0 !== undefined) rows.push({ group: g, name: 'C shm_open+mmap futex handshake, both on CPU 0', value: c0, unit: 'us/op', baseline: true });
          rows.push({ group: g, name: 'ring, block', value: await ringRtt(ctx, 'process', 'block', 64, before('0')), unit: 'us/op', baseline: c0 === undefined });
          rows.push({ group: g, name: 'ring, adaptive, pinned before start (sees 1 CPU: no spin)', value: await ringRtt(ctx, 'process', 'adaptive', 64, before('0')), unit: 'us/op' });
          rows.push({ group: g, name: 'ring, adaptive, pinned after start (spin scoring alone)', value: await ringRtt(ctx, 'process', 'adaptive', 64, { cpu: '0', when: 'after' }), unit: 'us/op' });
          rows.push({ group: g, name: 'ring, spin (forced, yields between slices)', value: await ringRtt(ctx, 'process', 'spin', 64, before('0')), unit: 'us/op' });
        }
      }
    } finally {
      c.dispose();
    }
    return rows;
  },
};
