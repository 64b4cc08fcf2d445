/**
 * Measurement kernels shared by the ping-pong example and `npm run bench`,
 * shaped like Open MPI's pingpong.c in the peers' baselines: ping-pong
 * round trips (after about a second of warm-up, then 200 ms more at each
 * size, since V8 optimizes each size's paths only once they have run for a
 * while; iterations scaled down for large sizes, median of rounds after a
 * warm-up round), streaming bandwidth with a window of 16
 * isend/irecv pairs and a 1-byte ack, and allreduce latency.
 */
import { performance } from 'node:perf_hooks';
import { Request, type Communicator } from '../../src/mp/index.js';

export interface PingPongOptions {
  sizes: number[];
  bwSizes: number[];
  /** Round trips per round for sizes up to 1 KiB (scaled down above). */
  iters: number;
  rounds: number;
  /** Ping-pong before the first measurement (default 1000 ms). */
  warmupMs?: number | undefined;
  /** Round trips with the blocking forms (sendSync/receiveSync, like MPI_Send/MPI_Recv) instead of the promise API. */
  blocking?: boolean | undefined;
}

export interface PingPongResult {
  transport: string;
  /** 'blocking' when the round trips used sendSync/receiveSync. */
  api: 'promise' | 'blocking';
  latency: { size: number; usPerRtt: number }[];
  bandwidth: { size: number; gbPerS: number }[];
}

const WINDOW = 16;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

export function scaledIters(base: number, n: number): number {
  let it = base;
  if (n > 1024) it = base / 2;
  if (n >= 65536) it = base / 10;
  if (n >= 1048576) it = base / 50;
  if (n >= 4194304) it = base / 200;
  return Math.max(5, Math.floor(it));
}

/** exchange() with the blocking forms: the thread stays out of the event loop for all `count` round trips. */
function exchangeSync(comm: Communicator, buf: Uint8Array, count: number): void {
  const r = comm.rank;
  for (let i = 0; i < count; i++) {
    if (r === 0) {
      comm.sendSync(1, buf, { tag: 1 });
      comm.receiveSync({ from: 1, tag: 2, buffer: buf });
    } else if (r === 1) {
      comm.receiveSync({ from: 0, tag: 1, buffer: buf });
      comm.sendSync(0, buf, { tag: 2 });
    }
  }
}

/** Untimed rounds before the timed ones (see pingpong()). */
const WARM_ROUNDS = 3;

const GO = new Uint8Array(1);

/** Ranks 0 and 1 meet with blocking calls (one round trip): both are spinning when this returns. */
function syncPair(comm: Communicator): void {
  if (comm.rank === 0) {
    comm.sendSync(1, GO, { tag: 5 });
    comm.receiveSync({ from: 1, tag: 5, buffer: GO });
  } else if (comm.rank === 1) {
    comm.receiveSync({ from: 0, tag: 5, buffer: GO });
    comm.sendSync(0, GO, { tag: 5 });
  }
}

/** `count` round trips of `buf` between ranks 0 and 1 (rank 0 sends first); other ranks do nothing. */
async function exchange(comm: Communicator, buf: Uint8Array, count: number, blocking = false): Promise<void> {
  if (blocking) return exchangeSync(comm, buf, count);
  const r = comm.rank;
  for (let i = 0; i < count; i++) {
    if (r === 0) {
      await comm.send(1, buf, { tag: 1 });
      await comm.receive({ from: 1, tag: 2, buffer: buf });
    } else if (r === 1) {
      await comm.receive({ from: 0, tag: 1, buffer: buf });
      await comm.send(0, buf, { tag: 2 });
    }
  }
}

/** Round trips of `buf` for about `ms` (rank 0 keeps the time; every rank learns when to stop). */
async function warmUp(comm: Communicator, buf: Uint8Array, ms: number, blocking = false): Promise<void> {
  const until = performance.now() + ms;
  const batch = Math.max(1, Math.min(200, scaledIters(200, buf.length)));
  for (let go = 1; go !== 0; ) {
    await exchange(comm, buf, batch, blocking);
    go = (await comm.bcast(comm.rank === 0 ? (performance.now() < until ? 1 : 0) : undefined, { root: 0 })) as number;
  }
}

/** Ranks 0 and 1 measure; other ranks only join the barriers. Rank 0 returns the figures. */
export async function pingpong(comm: Communicator, o: PingPongOptions): Promise<PingPongResult | undefined> {
  const r = comm.rank;
  const latency: PingPongResult['latency'] = [];
  const bandwidth: PingPongResult['bandwidth'] = [];
  // Warm up the whole path (JIT, caches, the rings' spin scoring) for about a second first, as
  // the peers' baselines do (their README: round trips keep improving for seconds after start).
  const blocking = o.blocking === true;
  await warmUp(comm, new Uint8Array(8), o.warmupMs ?? 1000, blocking);
  for (const n of o.sizes) {
    const buf = new Uint8Array(n);
    const it = scaledIters(o.iters, n);
    const per: number[] = [];
    // Each size takes code paths the 8-byte warm-up did not (copies, views, placement), which V8
    // optimizes only after they have run for a while: warm them up for a time too, not a round.
    // Big messages run those paths a few times per round trip of hundreds of microseconds, and V8
    // needs about 3000 of them (1-1.5 s) to reach its optimized code (seen at 1 MiB: 300-900 us
    // per round trip before, 110-130 after): they get 1.5 times the first warm-up.
    const warmMs = n >= 64 * 1024 ? 1.5 * (o.warmupMs ?? 1000) : Math.min(200, Math.max(20, (o.warmupMs ?? 1000) / 5));
    await warmUp(comm, buf, warmMs, blocking);
    // Three untimed rounds first: the barrier between rounds takes paths the warm-up's exchanges
    // did not, V8 deoptimizes the hot functions there, and the next round or two run in slower code
    // while it optimizes them again (seen: 10 us then 1 us per 8-byte round trip).
    for (let round = -WARM_ROUNDS; round < o.rounds; round++) {
      await comm.barrier();
      // Blocking: leave the barrier as MPI_Barrier does, both ranks spinning (the promise barrier
      // lets one rank fall asleep in the event loop, and the round would time its wake-up).
      if (blocking) syncPair(comm);
      const t0 = performance.now();
      await exchange(comm, buf, it, blocking);
      if (round >= 0) per.push(((performance.now() - t0) * 1000) / it);
    }
    latency.push({ size: n, usPerRtt: median(per) });
  }
  for (const n of o.bwSizes) {
    const bufs = Array.from({ length: WINDOW }, () => new Uint8Array(n));
    const it = Math.max(2, Math.min(scaledIters(o.iters, n) >> 1, Math.floor((64 << 20) / (WINDOW * n))));
    const ack = new Uint8Array(1);
    const per: number[] = [];
    for (let round = -1; round < o.rounds; round++) {
      await comm.barrier();
      const t0 = performance.now();
      for (let i = 0; i < it; i++) {
        if (r === 0) {
          await Request.waitAll(bufs.map((b) => comm.isend(1, b, { tag: 3 })));
          await comm.receive({ from: 1, tag: 4, buffer: ack });
        } else if (r === 1) {
          await Request.waitAll(bufs.map((b) => comm.irecv({ from: 0, tag: 3, buffer: b })));
          await comm.send(0, ack, { tag: 4 });
        }
      }
      const secs = (performance.now() - t0) / 1000;
      if (round >= 0) per.push((n * WINDOW * it) / secs / 1e9);
    }
    bandwidth.push({ size: n, gbPerS: median(per) });
  }
  return r === 0 ? { transport: comm.transport, api: blocking ? 'blocking' : 'promise', latency, bandwidth } : undefined;
}

export interface AllreduceResult {
  transport: string;
  size: number;
  /** bytes, median microseconds per allreduce, and per exchange of the same bytes between rank pairs (the floor). */
  rows: { bytes: number; usAllreduce: number; usExchange: number }[];
}

/** Allreduce (sum of Float64Array) latency per size; rank 0 returns the figures. */
export async function allreduce(comm: Communicator, o: { sizes: number[]; iters: number; rounds: number }): Promise<AllreduceResult | undefined> {
  const rows: AllreduceResult['rows'] = [];
  const partner = comm.rank ^ 1;
  for (const bytes of o.sizes) {
    const data = new Float64Array(Math.max(1, bytes / 8)).fill(comm.rank + 1);
    const it = scaledIters(o.iters, bytes);
    const time = async (op: () => Promise<unknown>): Promise<number> => {
      const per: number[] = [];
      for (let round = -1; round < o.rounds; round++) {
        await comm.barrier();
        const t0 = performance.now();
        for (let i = 0; i < it; i++) await op();
        if (round >= 0) per.push(((performance.now() - t0) * 1000) / it);
      }
      return median(per);
    };
    const usAllreduce = await time(() => comm.allreduce(data, 'sum'));
    const usExchange = await time(() => (partner < comm.size ? comm.sendrecv(partner, data, { from: partner, tag: 9, sendTag: 9 }) : Promise.resolve()));
    rows.push({ bytes, usAllreduce, usExchange });
  }
  return comm.rank === 0 ? { transport: comm.transport, size: comm.size, rows } : undefined;
}
