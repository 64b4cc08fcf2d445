/**
 * The receiving half of a record-marked connection (RFC 5531 section 11) for
 * a side that parses synchronously, and the polled path that lets small
 * calls skip the event loop.
 *
 * Chunks go from the socket straight to one RecordMarkingDecoder (the
 * channel's readDirect), and poll() also takes what the kernel holds now
 * straight from the descriptor (sb_fd readNonblock) while libuv still
 * watches it, as message passing's StreamLink.poll does. Each byte leaves
 * the kernel once, by one path or the other, and both paths feed the same
 * decoder on the one JS thread, so records come out in order. EOF and errors
 * seen either way end the stream the same way.
 *
 * Why poll: on a loaded or single CPU, the event-loop turn between a reply's
 * arrival and its promise (epoll_wait, libuv, the stream callbacks) costs
 * more than the call. Waiting for a bounded time right after a call went out
 * sees the reply without that turn: sched_yield between polls for the first
 * 20 us (a peer on another core answers within them), then a sleep in
 * poll(2) on the socket for the rest of the budget, so that a peer sharing
 * this CPU runs at once and the reply wakes us. Measured on a loaded 2-core
 * machine, pinned and not, against libtirpc: yield-then-sleep was best or
 * near best for TCP and Unix sockets; yield only and sleep only were each
 * worse in one of the two setups (the differences are within the noise of
 * that machine, 10-20%).
 */
import { performance } from 'node:perf_hooks';
import { constants } from 'node:os';
import { ArgumentError, fromSystemError } from '../errors.js';
import { readNonblock, recvDatagram, waitReadable } from '../transport/fd.js';
import { isDirectReadable, type Channel } from '../transport/index.js';
import { yieldCpu } from '../shm/native.js';
import { RecordMarkingDecoder } from '../wire/index.js';
import { allocBytes } from '../wire/copy-bytes.js';

/** -EAGAIN from readNonblock: nothing there now. */
const EAGAIN = -11;
/**
 * Direct reads land in a slab, each after the last: records are views of
 * the bytes they arrived in, and a decoded result may be a view of its
 * record, so a slab is never written twice (a result kept for long pins its
 * slab, 64 KiB at most, as a libuv chunk pins its own). A new slab once
 * less than MIN_READ is left, so that a read has room for a small message whole.
 */
const SLAB = 64 * 1024;
const MIN_READ = 16 * 1024;

let errnoNames: Map<number, string> | undefined;

/** The SwitchboardError for a negative errno that a direct read (or send) returned. */
export function errnoError(negErrno: number, context: string, syscall: 'read' | 'send' = 'read'): Error {
  errnoNames ??= new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
  const code = errnoNames.get(-negErrno) ?? `errno ${-negErrno}`;
  return fromSystemError(Object.assign(new Error(`${syscall} ${code}`), { code, errno: negErrno, syscall }), context);
}

export class RecordStream {
  readonly #ch: Channel;
  readonly #dec: RecordMarkingDecoder;
  readonly #onRecord: (record: Uint8Array) => void;
  readonly #onEnd: (err: Error | undefined) => void;
  /** The socket's descriptor when direct reads are possible (a SocketChannel that feeds readDirect). */
  #fd: number | undefined;
  #slab: Uint8Array | undefined;
  #at = 0;
  /** The free rest of the slab, reused by every poll that finds nothing. */
  #target: Uint8Array | undefined;
  #done = false;

  /**
   * `onRecord` gets each whole record (a view: decode it before returning,
   * or keep what it decodes); `onEnd` runs once, with undefined at the end of
   * the stream or the error (a malformed record, a reset, the channel
   * closed here) that stopped it.
   */
  constructor(channel: Channel, maxRecordSize: number, onRecord: (record: Uint8Array) => void, onEnd: (err: Error | undefined) => void) {
    this.#ch = channel;
    this.#dec = new RecordMarkingDecoder({ maxRecordSize });
    this.#onRecord = onRecord;
    this.#onEnd = onEnd;
  }

  /** Deliver what is queued, then take chunks as they arrive. */
  start(): void {
    const ch = this.#ch;
    this.#pump();
    if (this.#done || !isDirectReadable(ch)) return;
    ch.readDirect(this.#consume);
    this.#fd = (ch as { fd?: number | undefined }).fd;
  }

  /**
   * Sleep until the socket is readable or `us` microseconds pass (see
   * waitReadable); at once when direct reads are not possible.
   */
  readonly wait = (us: number): void => {
    const fd = this.#fd;
    if (fd !== undefined && !this.#done) waitReadable(fd, us);
  };

  /** poll() can read the socket directly (else it only ever returns false). */
  get pollable(): boolean {
    return this.#fd !== undefined && !this.#done;
  }

  /**
   * Take what the socket holds now, without waiting, and deliver the records
   * it completes: true when something arrived or the stream ended, false
   * when nothing was there (or direct reads are not possible).
   */
  poll(): boolean {
    const fd = this.#fd;
    if (fd === undefined || this.#done) return false;
    const ch = this.#ch;
    if (ch.isClosed) {
      this.#pump();
      return true;
    }
    // Something came the ordinary way first (an EOF or error the channel has seen): it goes first.
    if (ch.readReady) {
      this.#pump();
      return true;
    }
    let target = this.#target;
    if (target === undefined) {
      this.#slab = allocBytes(SLAB);
      this.#at = 0;
      target = this.#target = this.#slab;
    }
    const n = readNonblock(fd, target);
    if (n === EAGAIN) return false;
    if (n > 0) {
      const chunk = target.subarray(0, n);
      // Keep the next read 8-byte aligned; past MIN_READ left, start a new slab at the next read.
      this.#at += (n + 7) & ~7;
      const slab = this.#slab as Uint8Array;
      this.#target = slab.length - this.#at < MIN_READ ? undefined : slab.subarray(this.#at);
      this.#consume(chunk);
      return true;
    }
    // The end of the stream (or a reset) seen here before libuv: every byte before it was delivered.
    this.#end(n === 0 ? undefined : errnoError(n, ch.description));
    return true;
  }

  readonly #consume = (chunk: Uint8Array): void => {
    if (this.#done) return;
    const dec = this.#dec;
    try {
      dec.push(chunk);
      for (let rec = dec.next(); rec !== undefined; rec = dec.next()) {
        this.#onRecord(rec);
        if (this.#done) return;
      }
    } catch (err) {
      this.#end(err instanceof Error ? err : new Error(String(err)));
    }
  };

  /** What the channel queued, then EOF or errors; armed again until the stream ends. */
  readonly #pump = (): void => {
    const ch = this.#ch;
    while (!this.#done) {
      let chunk: Uint8Array | null | undefined;
      try {
        chunk = ch.tryRead();
      } catch (err) {
        this.#end(err as Error);
        return;
      }
      if (chunk === undefined) {
        ch.onReadReady(this.#pump);
        return;
      }
      if (chunk === null) {
        this.#end(undefined);
        return;
      }
      this.#consume(chunk);
    }
  };

  #end(err: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.#slab = this.#target = undefined;
    this.#onEnd(err);
  }
}

/**
 * How long (microseconds) a polled wait yields the CPU between looks before
 * it sleeps in poll(2) instead, when it can (see spinPoll): default 20;
 * SWITCHBOARD_ONCRPC_SPIN_YIELD_US overrides it (read once, when this module
 * loads; 0 sleeps at once, a value past the spin budget yields only).
 */
export const SPIN_YIELD_ENV = 'SWITCHBOARD_ONCRPC_SPIN_YIELD_US';
export const DEFAULT_SPIN_YIELD_US = 20;
const spinYieldUs = ((): number => {
  const raw = process.env[SPIN_YIELD_ENV];
  const v = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
  return Number.isFinite(v) && v >= 0 ? v : DEFAULT_SPIN_YIELD_US;
})();

/**
 * Call `poll` (one non-blocking look at one or more streams: true when
 * something arrived) while `wanted()` holds, until `budgetUs` pass without
 * anything arriving or `capMs` pass in all. The budget starts again whenever
 * something arrives. Before each look the thread gives the CPU away: with
 * `wait` (a bounded sleep until the stream is readable, as waitReadable),
 * it sleeps in the kernel for at most the rest of the budget once `yieldUs`
 * of it passed, and yields the CPU (sched_yield) before that. Either way a
 * peer sharing this CPU runs, and the wait never outlasts the budget.
 * Returns how many looks brought something.
 */
export function spinPoll(poll: () => boolean, budgetUs: number, wanted: () => boolean, capMs = Infinity, wait?: (us: number) => void, yieldUs = spinYieldUs): number {
  const budget = budgetUs / 1000;
  const yieldMs = wait === undefined ? Infinity : yieldUs / 1000;
  const start = performance.now();
  let from = start;
  let end = start + budget;
  let got = 0;
  while (wanted()) {
    // The answer cannot be there yet (we just sent, or just took all there was), and a peer
    // sharing this CPU cannot answer while we poll: let it run first.
    if (yieldMs === 0) (wait as (us: number) => void)(Math.max(0, (end - performance.now()) * 1000));
    else if (yieldMs === Infinity) yieldCpu();
    else {
      const now = performance.now();
      if (now - from < yieldMs) yieldCpu();
      else (wait as (us: number) => void)(Math.max(0, (end - now) * 1000));
    }
    if (poll()) {
      got++;
      const now = performance.now();
      if (now - start >= capMs) break;
      from = now;
      end = now + budget;
      continue;
    }
    if (performance.now() >= end) break;
  }
  return got;
}

/** Most chances a missing spin skips in a row. */
const MAX_SKIP = 64;

/**
 * Backs off a spin that keeps missing (the peer answers slower than the
 * budget, or does not call again soon): after a miss the next 1, 2, 4 ... 64
 * chances to spin are skipped; a hit starts again from nothing. A peer that
 * never answers in time then costs one budget per 64 calls, not per call.
 */
export class SpinBackoff {
  #skip = 0;
  #gap = 0;

  /** Spin this time? */
  take(): boolean {
    if (this.#skip === 0) return true;
    this.#skip--;
    return false;
  }

  score(hit: boolean): void {
    if (hit) this.#gap = 0;
    else {
      this.#gap = this.#gap === 0 ? 1 : Math.min(this.#gap * 2, MAX_SKIP);
      this.#skip = this.#gap;
    }
  }
}

let canSpin: boolean | undefined;

/**
 * Whether spinning is possible here: direct reads and waits (sb_fd) and
 * sched_yield (sb_shm) need their addons, built with these functions. Without them the polled path is off and
 * every reply takes the event loop, as before.
 */
export function spinAvailable(): boolean {
  if (canSpin === undefined) {
    try {
      yieldCpu();
      readNonblock(-1, new Uint8Array(1));
      recvDatagram(-1, new Uint8Array(1));
      waitReadable(0, 0);
      canSpin = true;
    } catch {
      canSpin = false;
    }
  }
  return canSpin;
}

/** Environment variable that sets the client's default spin (microseconds). */
export const CLIENT_SPIN_ENV = 'SWITCHBOARD_ONCRPC_SPIN_US';
/** Environment variable that sets the server's default post-reply spin (microseconds). */
export const SERVER_SPIN_ENV = 'SWITCHBOARD_ONCRPC_SERVER_SPIN_US';

/** Largest spin accepted (1 s): more is a mistake, not a policy. */
const MAX_SPIN_US = 1_000_000;

/**
 * The spin in microseconds: `option` when given, else the environment
 * variable `env` when set, else `fallback`. A negative, non-finite or huge
 * value is an ArgumentError.
 */
export function resolveSpinUs(option: number | undefined, name: string, env: string, fallback: number): number {
  let value = option;
  let from = name;
  if (value === undefined) {
    const raw = process.env[env];
    if (raw === undefined || raw.trim() === '') return fallback;
    value = Number(raw);
    from = `${env} (${JSON.stringify(raw)})`;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_SPIN_US) {
    throw new ArgumentError(`${from} must be a number of microseconds from 0 to ${MAX_SPIN_US}, got ${String(value)}`);
  }
  return value;
}
