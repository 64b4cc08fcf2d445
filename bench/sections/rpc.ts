/**
 * Switchboard RPC beside what it builds on and what it competes with, in one
 * run: echo round trips (64 B, 1 KiB, 64 KiB) and pipelined calls per second
 * over a Unix socket, TCP, a shared-memory ring pair and a worker
 * MessagePort, next to raw `net` with
 * length-prefixed framing on the same socket kind (the ring Channel itself for
 * shm; the server in another process in every case), comlink on the same kind of MessagePort, and the peer
 * programs of ../shared/peers/node (grpc-js, ZeroMQ, NATS, node-ipc,
 * moleculer), run from a scratch copy. Also the codec against v8.serialize
 * and MessagePack (@msgpack/msgpack).
 *
 * This file is also its own peer: `node rpc.js --rpc-bench-peer raw|rpc <address>`
 * serves in a child process, and as a worker (workerData.rpcBenchWorker) it
 * serves over parentPort.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { median, type BenchContext, type BenchRow, type BenchSection } from '../harness.js';

const SELF = fileURLToPath(import.meta.url);
const SIZES = [64, 1024, 65536] as const;
const label = (n: number): string => (n >= 1024 ? `${n / 1024} KiB` : `${n} B`);

interface EchoApi {
  echo(b: Uint8Array): Uint8Array;
  sink(b: Uint8Array): void;
  count(): number;
}

function echoImpl(): EchoApi {
  let n = 0;
  return {
    echo: (b) => b,
    sink: () => void n++,
    count: () => {
      const c = n;
      n = 0;
      return c;
    },
  };
}

// ----------------------------------------------------------------- peer mode

type NodeEndpointFn = (typeof import('comlink/dist/umd/node-adapter.js'))['default'];

/** comlink's node adapter is CommonJS (module.exports = fn): take the function whichever way it comes. */
async function loadNodeEndpoint(): Promise<NodeEndpointFn> {
  const mod = (await import('comlink/dist/umd/node-adapter.js')) as unknown as { default: NodeEndpointFn | { default: NodeEndpointFn } };
  const d = mod.default;
  return typeof d === 'function' ? d : d.default;
}

async function runPeer(mode: string, address: string): Promise<void> {
  if (mode === 'ring') {
    const { listenShm } = await import('../../src/shm/index.js');
    const l = await listenShm(address);
    process.stdout.write('ready\n');
    const ch = await l.accept();
    for (;;) {
      const m = await ch.read().catch(() => null);
      if (m === null) break;
      await ch.write(m);
    }
  } else if (mode === 'raw') {
    const srv = net.createServer((s) => {
      s.setNoDelay(true);
      let buf: Buffer = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        let p = 0;
        while (buf.length - p >= 4) {
          const n = buf.readUInt32BE(p);
          if (buf.length - p < 4 + n) break;
          s.write(buf.subarray(p, p + 4 + n));
          p += 4 + n;
        }
        buf = buf.subarray(p);
      });
      s.on('error', () => undefined);
    });
    const target = address.startsWith('unix://') ? { path: address.slice(7) } : { host: '127.0.0.1', port: Number(address.split(':').pop()) };
    srv.listen(target, () => process.stdout.write('ready\n'));
  } else {
    const { expose } = await import('../../src/rpc/index.js');
    await expose(echoImpl(), { on: address });
    process.stdout.write('ready\n');
  }
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

if (process.argv[2] === '--rpc-bench-peer' && process.argv[1] !== undefined && resolve(process.argv[1]) === SELF) {
  await runPeer(process.argv[3] as string, process.argv[4] as string);
}

if (!isMainThread && (workerData as { rpcBenchWorker?: string } | null)?.rpcBenchWorker !== undefined && parentPort) {
  const kind = (workerData as { rpcBenchWorker: string }).rpcBenchWorker;
  if (kind === 'comlink') {
    const Comlink = await import('comlink');
    const nodeEndpoint = await loadNodeEndpoint();
    Comlink.expose(echoImpl(), nodeEndpoint(parentPort));
  } else {
    const { expose } = await import('../../src/rpc/index.js');
    await expose(echoImpl(), { on: parentPort });
  }
}

// ----------------------------------------------------------------- helpers

interface Peer {
  child: ChildProcess;
  stop(): Promise<void>;
}

function startPeer(mode: 'raw' | 'rpc' | 'ring', address: string): Promise<Peer> {
  return new Promise((resolvePeer, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, SELF, '--rpc-bench-peer', mode, address], { stdio: ['pipe', 'pipe', 'inherit'] });
    const stop = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    };
    child.stdout?.once('data', () => resolvePeer({ child, stop }));
    child.once('exit', (code) => reject(new Error(`bench peer ${mode} exited early (${String(code)})`)));
  });
}

/** This file as a worker; from source (tsx), the worker registers tsx's loader first. */
function startWorker(kind: 'rpc' | 'comlink'): Worker {
  const workerData = { rpcBenchWorker: kind };
  if (!SELF.endsWith('.ts')) return new Worker(SELF, { workerData });
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(pathToFileURL(SELF).href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

interface RawEcho {
  /** Send n messages and wait for n echoes. */
  exchange(frame: Buffer, n: number): Promise<void>;
  close(): void;
}

/** The baseline on a shared-memory ring pair: the ring Channel itself, one message per write. */
class RingClient implements RawEcho {
  private constructor(private readonly ch: import('../../src/transport/index.js').Channel) {}

  static async connect(address: string): Promise<RingClient> {
    const { connectShm } = await import('../../src/shm/index.js');
    return new RingClient(await connectShm(address));
  }

  async exchange(frame: Buffer, n: number): Promise<void> {
    const msg = frame.subarray(4);
    let got = 0;
    const reading = (async () => {
      while (got < n) {
        if ((await this.ch.read()) === null) throw new Error('ring closed');
        got++;
      }
    })();
    for (let i = 0; i < n; i++) await this.ch.write(msg);
    await reading;
  }

  close(): void {
    this.ch.destroy();
  }
}

/** A raw `net` client speaking u32 big-endian length + payload, the baseline. */
class RawClient implements RawEcho {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { n: number; resolve: () => void } | undefined;
  private received = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      let p = 0;
      while (this.buf.length - p >= 4) {
        const n = this.buf.readUInt32BE(p);
        if (this.buf.length - p < 4 + n) break;
        p += 4 + n;
        this.received++;
      }
      this.buf = this.buf.subarray(p);
      const w = this.waiting;
      if (w && this.received >= w.n) {
        this.waiting = undefined;
        w.resolve();
      }
    });
  }

  static connect(address: string): Promise<RawClient> {
    return new Promise((res, rej) => {
      const target = address.startsWith('unix://') ? { path: address.slice(7) } : { host: '127.0.0.1', port: Number(address.split(':').pop()) };
      const s = net.connect(target, () => {
        s.setNoDelay(true);
        res(new RawClient(s));
      });
      s.once('error', rej);
    });
  }

  /** Send n frames (one write each, honouring drain) and wait for n echoes. */
  async exchange(frame: Buffer, n: number): Promise<void> {
    this.received = 0;
    const done = new Promise<void>((r) => (this.waiting = { n, resolve: r }));
    for (let i = 0; i < n; i++) {
      if (!this.socket.write(frame)) await new Promise((r) => this.socket.once('drain', r));
    }
    await done;
  }

  close(): void {
    this.socket.destroy();
  }
}

function frameOf(payload: Uint8Array): Buffer {
  const f = Buffer.alloc(4 + payload.length);
  f.writeUInt32BE(payload.length, 0);
  f.set(payload, 4);
  return f;
}

function payloadOf(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = 97 + (i % 26);
  return b;
}

/** n calls through a sliding window of WINDOW in flight: each answer sends the next call. */
function pipelined(call: () => Promise<unknown>, n: number): Promise<void> {
  const WINDOW = 1000;
  return new Promise((resolveAll, reject) => {
    let sent = 0;
    let done = 0;
    const issue = (): void => {
      sent++;
      call().then(onDone, reject);
    };
    const onDone = (): void => {
      done++;
      if (sent < n) issue();
      else if (done === n) resolveAll();
    };
    for (let i = 0; i < Math.min(WINDOW, n); i++) issue();
  });
}

// ----------------------------------------------------------------- peers of ../shared/peers/node

interface PeerFigure {
  system: string;
  transport: string;
  payload: string;
  metric: 'lat_us' | 'tput_mps';
  samples: number[];
}

function findPeersDir(): string | undefined {
  for (const c of [resolve('../shared/peers/node'), '/work/shared/peers/node']) if (existsSync(join(c, 'bench', 'lib.mjs'))) return c;
  return undefined;
}

/** Copy the peer programs to a scratch dir, npm ci there once, run the selected scripts. */
function runPeerScripts(ctx: BenchContext): { figures: PeerFigure[]; skipped: string[] } {
  const skipped: string[] = [];
  const src = findPeersDir();
  if (src === undefined) return { figures: [], skipped: ['peer programs not found (../shared/peers/node)'] };
  const scratch = resolve('.bench-results', 'peers-node');
  mkdirSync(dirname(scratch), { recursive: true });
  const stamp = join(scratch, 'node_modules', '.package-lock.json');
  if (!existsSync(stamp) || statSync(stamp).mtimeMs < statSync(join(src, 'package-lock.json')).mtimeMs) {
    rmSync(scratch, { recursive: true, force: true });
    cpSync(src, scratch, { recursive: true, filter: (p) => !p.includes('node_modules') && !p.includes('/results') });
    ctx.progress('npm ci in .bench-results/peers-node');
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: scratch, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000, encoding: 'utf8' });
    if (r.status !== 0) return { figures: [], skipped: [`npm ci of the peer programs failed: ${(r.stderr ?? String(r.error)).slice(-300)}`] };
  }
  const quickEnv = ctx.quick
    ? { BENCH_FIRST_WARMUP_MS: '500', BENCH_WARMUP_WINDOW_MS: '300', BENCH_MAX_WARMUP_MS: '1500', BENCH_WARMUP_MS: '100', BENCH_REPS: '1', BENCH_TARGET_MS: '100', BENCH_TPUT_TARGET_MS: '150' }
    : {};
  const figures: PeerFigure[] = [];
  const hasNats = spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0;
  for (const script of ['grpc-echo', 'zeromq', 'nats-reqrep', 'node-ipc', 'moleculer']) {
    if (script === 'nats-reqrep' && !hasNats) {
      skipped.push('nats-reqrep: nats-server is not installed (apt-get install -y nats-server)');
      continue;
    }
    ctx.progress(`peer ${script}`);
    const env = { ...process.env, ...quickEnv, ...(hasNats ? {} : { BENCH_NO_NATS: '1' }) };
    const r = spawnSync(process.execPath, [join(scratch, 'bench', `${script}.mjs`)], { cwd: scratch, env, encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] });
    let got = 0;
    for (const line of (r.stdout ?? '').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const f = JSON.parse(line) as PeerFigure;
        if (Array.isArray(f.samples) && f.samples.length > 0) {
          figures.push(f);
          got++;
        }
      } catch {
        // not a figure
      }
    }
    if (got === 0) skipped.push(`${script}: no figures (exit ${String(r.status)}): ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' / ')}`);
  }
  return { figures, skipped };
}

// ----------------------------------------------------------------- the section

async function codecRows(ctx: BenchContext): Promise<BenchRow[]> {
  const { Encoder, Decoder } = await import('../../src/rpc/index.js');
  const msgpack = await import('@msgpack/msgpack');
  const enc = new Encoder();
  const samples: Record<string, unknown> = {
    'call, 64 B binary': ['echo', [payloadOf(64)]],
    'call with object and date': ['withdraw', ['acct-12345', 100, { memo: 'atm 7', at: new Date(0) }]],
    '20 records': Array.from({ length: 20 }, (_, i) => ({ id: i, name: `user${i}`, active: i % 2 === 0, score: i * 1.5 })),
  };
  const rows: BenchRow[] = [];
  for (const [name, value] of Object.entries(samples)) {
    const group = `codec encode+decode, ${name}`;
    const opts = { targetMs: 100, warmupMs: 100 };
    rows.push({ group, name: 'v8.serialize/deserialize', unit: 'us/op', baseline: true, value: await ctx.latency(() => void v8.deserialize(v8.serialize(value)), opts) });
    rows.push({ group, name: '@msgpack/msgpack encode/decode', unit: 'us/op', value: await ctx.latency(() => void msgpack.decode(msgpack.encode(value)), opts) });
    rows.push({
      group,
      name: 'switchboard rpc codec',
      unit: 'us/op',
      target: '<= 1.00',
      value: await ctx.latency(() => {
        enc.reset();
        enc.encode(value);
        new Decoder(enc.buf, undefined, 0, enc.pos).decode();
      }, opts),
    });
  }
  return rows;
}

async function socketRows(ctx: BenchContext, kind: 'unix' | 'tcp' | 'shm', dir: string): Promise<{ rt: Map<number, { raw: number; rpc: number }>; rows: BenchRow[] }> {
  const { connect, close } = await import('../../src/rpc/index.js');
  const freePort = async (): Promise<number> =>
    new Promise((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
  const addr = async (name: string): Promise<string> =>
    kind === 'unix' ? `unix://${join(dir, `${name}.sock`)}` : kind === 'shm' ? `shm:sb-rpc-bench-${name}-${process.pid}` : `tcp://127.0.0.1:${await freePort()}`;
  const rawAddr = await addr('raw');
  const rpcAddr = await addr('rpc');
  const rawPeer = await startPeer(kind === 'shm' ? 'ring' : 'raw', rawAddr);
  const rpcPeer = await startPeer('rpc', rpcAddr);
  const rows: BenchRow[] = [];
  const rt = new Map<number, { raw: number; rpc: number }>();
  const raw: RawEcho = kind === 'shm' ? await RingClient.connect(rawAddr) : await RawClient.connect(rawAddr);
  const remote = await connect<EchoApi>(rpcAddr);
  const where = kind === 'unix' ? 'Unix socket' : kind === 'shm' ? 'shm ring pair' : 'TCP 127.0.0.1';
  const baseName = kind === 'shm' ? 'ring Channel write/read' : 'raw net, length-prefixed';
  try {
    for (const size of SIZES) {
      const payload = payloadOf(size);
      const frame = frameOf(payload);
      ctx.progress(`rpc ${kind} ${label(size)} round trip`);
      // A long first warm-up per connection (JIT of both sides), as the peer programs do;
      // rounds interleaved so that a slow spell of the machine hits both alike.
      const [rawUs, rpcUs] = (await ctx.latencies(
        [
          () => raw.exchange(frame, 1),
          async () => {
            await remote.echo(payload);
          },
        ],
        { warmupMs: size === 64 ? 2000 : 300 },
      )) as [number, number];
      rt.set(size, { raw: rawUs, rpc: rpcUs });
      const group = `echo round trip ${label(size)}, ${where}`;
      rows.push({ group, name: baseName, unit: 'us/op', baseline: true, value: rawUs });
      rows.push({ group, name: 'switchboard rpc', unit: 'us/op', value: rpcUs, target: '<= 1.25' });
    }
    ctx.progress(`rpc ${kind} pipelined`);
    const p64 = payloadOf(64);
    const f64 = frameOf(p64);
    const group = `pipelined 64 B echo, ${where}`;
    rows.push({ group, name: `${baseName} (one write per message)`, unit: 'msg/s', baseline: true, value: await ctx.throughput((n) => raw.exchange(f64, n)) });
    rows.push({ group, name: 'switchboard rpc, calls in flight', unit: 'msg/s', target: '>= 0.70', value: await ctx.throughput((n) => pipelined(() => remote.echo(p64), n)) });
    rows.push({
      group,
      name: 'switchboard rpc, one-way calls + 1 call',
      unit: 'msg/s',
      value: await ctx.throughput(async (n) => {
        const { oneWay } = await import('../../src/rpc/index.js');
        const ow = oneWay(remote);
        await pipelined(() => ow.sink(p64), n);
        await remote.count();
      }),
    });
  } finally {
    raw.close();
    await close(remote);
    await rawPeer.stop();
    await rpcPeer.stop();
  }
  return { rt, rows };
}

async function workerRows(ctx: BenchContext): Promise<{ rt: Map<number, { comlink: number; rpc: number }>; rows: BenchRow[] }> {
  const { connect, close, transfer } = await import('../../src/rpc/index.js');
  const Comlink = await import('comlink');
  const nodeEndpoint = await loadNodeEndpoint();
  const wRpc = startWorker('rpc');
  const wCom = startWorker('comlink');
  const rows: BenchRow[] = [];
  const rt = new Map<number, { comlink: number; rpc: number }>();
  try {
    const remote = await connect<EchoApi>(wRpc);
    const com = Comlink.wrap<EchoApi>(nodeEndpoint(wCom));
    for (const size of SIZES) {
      const payload = payloadOf(size);
      ctx.progress(`rpc worker ${label(size)} round trip`);
      const [comUs, rpcUs] = (await ctx.latencies(
        [
          async () => {
            await com.echo(payload);
          },
          async () => {
            await remote.echo(payload);
          },
        ],
        { warmupMs: size === 64 ? 2000 : 300 },
      )) as [number, number];
      rt.set(size, { comlink: comUs, rpc: rpcUs });
      const group = `echo round trip ${label(size)}, worker MessagePort`;
      rows.push({ group, name: 'comlink 4.4 (structured clone)', unit: 'us/op', baseline: true, value: comUs });
      rows.push({ group, name: 'switchboard rpc', unit: 'us/op', value: rpcUs, target: '<= 1.00' });
      if (size === 65536) {
        rows.push({
          group,
          name: 'switchboard rpc, transfer() both ways',
          unit: 'us/op',
          value: await ctx.latency(async () => {
            const b = payloadOf(size);
            await remote.echo(transfer(b, [b.buffer as ArrayBuffer]));
          }),
          note: 'includes making a fresh 64 KiB buffer per call',
        });
      }
    }
    ctx.progress('rpc worker pipelined');
    const p64 = payloadOf(64);
    const group = 'pipelined 64 B echo, worker MessagePort';
    rows.push({ group, name: 'comlink 4.4, calls in flight', unit: 'msg/s', baseline: true, value: await ctx.throughput((n) => pipelined(() => com.echo(p64), n)) });
    rows.push({ group, name: 'switchboard rpc, calls in flight', unit: 'msg/s', target: '>= 1.00', value: await ctx.throughput((n) => pipelined(() => remote.echo(p64), n)) });
    com[Comlink.releaseProxy]();
    await close(remote);
  } finally {
    await wRpc.terminate();
    await wCom.terminate();
  }
  return { rt, rows };
}

/** The CPUs this process may run on (taskset): the peer programs inherit the same set. */
function cpuList(): string {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function peerRows(figures: PeerFigure[], unixRt: Map<number, { raw: number; rpc: number }>, tcpRt: Map<number, { raw: number; rpc: number }>): BenchRow[] {
  const rows: BenchRow[] = [];
  const find = (system: RegExp, transport: RegExp, payload: string, metric: PeerFigure['metric']): number | undefined => {
    const f = figures.find((x) => system.test(x.system) && transport.test(x.transport) && x.payload === payload && x.metric === metric);
    return f ? median(f.samples) : undefined;
  };
  const peers: { name: string; system: RegExp; transport: RegExp; ours: 'unix' | 'tcp'; target: string }[] = [
    { name: 'gRPC unary (grpc-js)', system: /gRPC/, transport: /Unix/, ours: 'unix', target: '<= 0.10' },
    { name: 'gRPC unary (grpc-js)', system: /gRPC/, transport: /TCP/, ours: 'tcp', target: '<= 0.10' },
    { name: 'ZeroMQ REQ/REP', system: /ZeroMQ/, transport: /ipc/, ours: 'unix', target: '<= 0.33' },
    { name: 'ZeroMQ REQ/REP', system: /ZeroMQ/, transport: /tcp/, ours: 'tcp', target: '<= 0.33' },
    { name: 'NATS request/reply', system: /^NATS/, transport: /TCP/, ours: 'tcp', target: '<= 1.00' },
    { name: 'node-ipc', system: /node-ipc/, transport: /Unix/, ours: 'unix', target: '<= 1.00' },
    { name: 'moleculer broker.call', system: /moleculer/, transport: /TCP/, ours: 'tcp', target: '<= 1.00' },
  ];
  // The peer programs run in this same bench run, after our rows, as child
  // processes with the CPU set inherited from this one (pinned alike under
  // taskset), each with its own warm-up and median of rounds (../shared/peers/node/bench/lib.mjs).
  const note = `peer program run in this bench, after ours, on CPUs ${cpuList()} as ours`;
  for (const size of SIZES) {
    for (const p of peers) {
      const theirs = find(p.system, p.transport, label(size), 'lat_us');
      const ours = (p.ours === 'unix' ? unixRt : tcpRt).get(size)?.rpc;
      if (theirs === undefined || ours === undefined) continue;
      const group = `round trip ${label(size)}, rpc vs ${p.name} (${p.ours === 'unix' ? 'Unix socket' : 'TCP'})`;
      rows.push({ group, name: `${p.name}, peer program`, unit: 'us/op', baseline: true, value: theirs, note });
      rows.push({ group, name: 'switchboard rpc', unit: 'us/op', value: ours, ...(size === 64 ? { target: p.target } : {}) });
    }
  }
  return rows;
}

export const section: BenchSection = {
  name: 'rpc',
  async run(ctx) {
    const rows: BenchRow[] = [];
    rows.push(...(await codecRows(ctx)));
    const dir = mkdtempSync(join(tmpdir(), 'sb-rpc-bench-'));
    try {
      const unix = await socketRows(ctx, 'unix', dir);
      const tcp = await socketRows(ctx, 'tcp', dir);
      rows.push(...unix.rows, ...tcp.rows);
      try {
        rows.push(...(await socketRows(ctx, 'shm', dir)).rows);
      } catch (err) {
        ctx.progress(`shm ring rows skipped: ${String(err)}`);
        rows.push({ group: 'echo round trip, shm ring pair', name: `skipped: ${String(err)}`, unit: 'us/op', value: NaN });
      }
      rows.push(...(await workerRows(ctx)).rows);
      if (process.env['BENCH_RPC_PEERS'] === '0') {
        ctx.progress('peer programs skipped: BENCH_RPC_PEERS=0');
      } else {
        const { figures, skipped } = runPeerScripts(ctx);
        for (const s of skipped) ctx.progress(`skipped ${s}`);
        rows.push(...peerRows(figures, unix.rt, tcp.rt));
        for (const s of skipped) rows.push({ group: 'rpc peers skipped', name: s, unit: 'us/op', value: NaN });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
