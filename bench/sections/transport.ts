/**
 * Foundation benchmark: round trip (64 B, 1 KiB, 64 KiB) and one-way 64 B
 * throughput for every Channel kind, beside raw Node on the same OS channel
 * (net sockets, child_process stdio pipes, dgram), measured in the same run
 * against a separate echo process. Target: a Channel adds at most 10% to the
 * raw round trip and keeps at least 90% of its throughput.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, open, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, createFifo, openFifo, spawnWithChannels, type Channel } from '../../src/transport/index.js';
import type { BenchContext, BenchRow, BenchSection } from '../harness.js';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const echoScript = fileURLToPath(new URL(`../peers/stream-echo${ext}`, import.meta.url));
const nodeArgs = (): string[] => [...process.execArgv.filter((a) => !a.startsWith('--test')), echoScript];
const SIZES = [64, 1024, 65536];

/** The client half of the byte protocol in stream-echo.ts. */
interface Client {
  write(b: Uint8Array): Promise<void> | void;
  /** Resolve once n more bytes have arrived. */
  expect(n: number): Promise<void>;
  close(): void;
}

class Counter {
  got = 0;
  target = 0;
  resolve: (() => void) | undefined;
  add(n: number): void {
    this.got += n;
    if (this.resolve && this.got >= this.target) {
      const r = this.resolve;
      this.resolve = undefined;
      r();
    }
  }
  expect(n: number): Promise<void> {
    this.got = 0;
    this.target = n;
    return new Promise((r) => (this.resolve = r));
  }
}

function rawClient(read: net.Socket | NodeJS.ReadableStream, write: net.Socket | NodeJS.WritableStream, onClose: () => void): Client {
  const c = new Counter();
  read.on('data', (b: Buffer) => c.add(b.length));
  (write as net.Socket).on('error', () => undefined); // the echo child is killed at the end
  (read as net.Socket).on('error', () => undefined);
  return {
    write: (b) => {
      if (!(write as net.Socket).write(b)) return new Promise<void>((r) => (write as net.Socket).once('drain', () => r()));
      return undefined;
    },
    expect: (n) => c.expect(n),
    close: onClose,
  };
}

function sbClient(read: Channel, write: Channel, onClose: () => void): Client {
  const c = new Counter();
  void (async () => {
    for await (const b of read) c.add(b.byteLength);
  })().catch(() => undefined);
  return { write: (b) => write.write(b), expect: (n) => c.expect(n), close: onClose };
}

function startChild(args: string[], extra: Partial<{ stdio: 'pipe' }> = {}): Promise<{ child: ChildProcess; info: string }> {
  const child = spawn(process.execPath, [...nodeArgs(), ...args], { stdio: [extra.stdio ?? 'ignore', extra.stdio ?? 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /READY ?(.*)\n/.exec(buf);
      if (m) resolve({ child, info: m[1] ?? '' });
    });
    child.once('exit', (code) => reject(new Error(`echo child exited ${code}: ${buf}`)));
  });
}

async function throughput(ctx: BenchContext, c: Client): Promise<number> {
  const msg = new Uint8Array(64).fill(98);
  return ctx.throughput(async (n) => {
    const total = n * 64;
    const header = Uint8Array.of(0x43, total >>> 24, (total >>> 16) & 0xff, (total >>> 8) & 0xff, total & 0xff);
    const done = c.expect(1);
    await c.write(header);
    for (let i = 0; i < n; i++) {
      const w = c.write(msg);
      if (w) await w;
    }
    await done;
  });
}

interface Setup {
  kind: string;
  /** Returns a latency client and a throughput client (separate connections where the kind allows). */
  raw(): Promise<{ lat: Client; tput?: Client }>;
  sb(): Promise<{ lat: Client; tput?: Client }>;
}

function socketSetup(kind: 'tcp' | 'unix', dir: string): Setup {
  const make = async (impl: 'raw' | 'sb'): Promise<{ lat: Client; tput: Client }> => {
    const { child, info } = await startChild([impl, kind, join(dir, `${impl}.sock`)]);
    const kill = (): void => void child.kill();
    if (impl === 'raw') {
      const conn = (): Promise<net.Socket> =>
        new Promise((res) => {
          const s = kind === 'tcp' ? net.connect({ host: '127.0.0.1', port: Number(info.split(':').pop()) }) : net.connect({ path: info.slice(7) });
          s.setNoDelay(true);
          s.once('connect', () => res(s));
        });
      const [a, b] = [await conn(), await conn()];
      return { lat: rawClient(a, a, () => a.destroy()), tput: rawClient(b, b, () => (b.destroy(), kill())) };
    }
    const [a, b] = [await connect(info), await connect(info)];
    return { lat: sbClient(a, a, () => a.destroy()), tput: sbClient(b, b, () => (b.destroy(), kill())) };
  };
  return { kind, raw: () => make('raw'), sb: () => make('sb') };
}

function pipeSetup(kind: 'pipe' | 'socketpair'): Setup {
  return {
    kind,
    async raw() {
      // child_process stdio pipes: what a Node user has today
      const { child } = await startChild(['raw', 'stdio'], { stdio: 'pipe' });
      return { lat: rawClient(child.stdout!, child.stdin!, () => void child.kill()) };
    },
    async sb() {
      const channels = kind === 'pipe' ? ({ down: 'pipe-to-child', up: 'pipe-from-child' } as const) : ({ down: 'socketpair' } as const);
      const kid = await spawnWithChannels(process.execPath, [...nodeArgs(), 'sb', 'pipes'], { channels, stdio: ['ignore', 'ignore', 'ignore'] });
      const down = kid.channels['down']!;
      const up = kid.channels['up'] ?? down;
      return { lat: sbClient(up, down, () => void kid.child.kill()) };
    },
  };
}

function fifoSetup(dir: string): Setup {
  let seq = 0;
  const make = async (impl: 'raw' | 'sb'): Promise<{ lat: Client }> => {
    seq++;
    const down = join(dir, `${impl}-${seq}-down.fifo`);
    const up = join(dir, `${impl}-${seq}-up.fifo`);
    createFifo(down);
    createFifo(up);
    const { child } = await startChild([impl, 'fifo', down, up]);
    if (impl === 'raw') {
      const wfd = await new Promise<number>((res, rej) => open(down, 'w', (e, fd) => (e ? rej(e) : res(fd))));
      const rfd = openSync(up, 'r');
      const w = new net.Socket({ fd: wfd, readable: false, writable: true });
      const r = new net.Socket({ fd: rfd, readable: true, writable: false });
      return { lat: rawClient(r, w, () => (w.destroy(), r.destroy(), child.kill())) };
    }
    const w = await openFifo(down, 'w', { timeoutMs: 10_000 });
    const r = await openFifo(up, 'r', { timeoutMs: 10_000 });
    return { lat: sbClient(r, w, () => (w.destroy(), r.destroy(), child.kill())) };
  };
  return { kind: 'fifo', raw: () => make('raw'), sb: () => make('sb') };
}

function udpSetup(): Setup {
  return {
    kind: 'udp',
    async raw() {
      const { child, info } = await startChild(['raw', 'udp']);
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.connect(Number(info.split(':').pop()), '127.0.0.1', () => r()));
      const c = new Counter();
      s.on('message', (m) => c.add(m.length));
      return {
        lat: {
          write: (b) => new Promise<void>((r) => s.send(b, () => r())),
          expect: (n) => c.expect(n),
          close: () => (s.close(), child.kill()),
        },
      };
    },
    async sb() {
      const { child, info } = await startChild(['sb', 'udp']);
      const ch = await connect(info);
      return { lat: sbClient(ch, ch, () => (ch.destroy(), child.kill())) };
    },
  };
}

export const section: BenchSection = {
  name: 'transport',
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'sb-bench-'));
    const rows: BenchRow[] = [];
    const setups = [socketSetup('unix', dir), socketSetup('tcp', dir), pipeSetup('pipe'), pipeSetup('socketpair'), fifoSetup(dir), udpSetup()];
    const baselineName: Record<string, string> = {
      unix: 'raw net.Socket (Unix)',
      tcp: 'raw net.Socket (TCP)',
      pipe: 'child_process stdio pipes',
      socketpair: 'child_process stdio pipes',
      fifo: 'raw net.Socket on FIFO fds',
      udp: 'raw dgram',
    };
    try {
      for (const s of setups) {
        ctx.progress(`${s.kind}: ${baselineName[s.kind]} vs Switchboard Channel`);
        const raw = await s.raw();
        const sb = await s.sb();
        const label = (impl: 'raw' | 'sb'): string => (impl === 'raw' ? baselineName[s.kind]! : `Switchboard ${s.kind} Channel`);
        if (s.kind !== 'udp') {
          await raw.lat.write(Uint8Array.of(0x45)); // 'E': echo mode
          await sb.lat.write(Uint8Array.of(0x45));
        }
        for (const size of SIZES) {
          const payload = new Uint8Array(s.kind === 'udp' ? Math.min(size, 65507) : size).fill(97);
          const op = (c: Client) => async (): Promise<void> => {
            const p = c.expect(payload.length);
            await c.write(payload);
            await p;
          };
          const [r, b] = await ctx.latencies([op(raw.lat), op(sb.lat)]);
          const group = `round trip ${s.kind} ${size >= 1024 ? `${size / 1024} KiB` : `${size} B`}`;
          rows.push({ group, name: label('raw'), value: r!, unit: 'us/op', baseline: true });
          rows.push({ group, name: label('sb'), value: b!, unit: 'us/op', target: '<= 1.10' });
        }
        if (s.kind !== 'udp') {
          for (const impl of ['raw', 'sb'] as const) {
            const c = impl === 'raw' ? raw : sb;
            const fresh = c.tput ? undefined : await (impl === 'raw' ? s.raw() : s.sb());
            const t = await throughput(ctx, c.tput ?? fresh!.lat);
            fresh?.lat.close();
            rows.push({
              group: `one-way 64 B ${s.kind}`,
              name: label(impl),
              value: t,
              unit: 'msg/s',
              ...(impl === 'raw' ? { baseline: true } : { target: '>= 0.90' }),
            });
          }
        }
        for (const c of [raw, sb]) {
          c.lat.close();
          c.tput?.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
