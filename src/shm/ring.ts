/**
 * Lock-free ring channels in shared memory: the fast local path.
 *
 * One consumer; one producer (SPSC) or several (MPSC, serialised by a robust
 * mutex in the ring header). Messages of any size: small ones are one
 * record, large ones are cut into fragments and put together again on the
 * consumer side. The layout and protocol are in include/switchboard-ring.h,
 * so a C program can be either end.
 *
 * Hot path: a write copies the bytes into the ring and publishes the tail
 * with one atomic store, making a system call only when the consumer sleeps;
 * a read copies out (readInto) or hands a view (consume) without
 * allocating. Batches (cork/uncork, writeMany) publish once.
 *
 * Waiting (spin-policy.ts): poll for up to a futex wake-up's time, then
 * sleep on a futex. The polling runs in C (sb_shm), and a blocking
 * readIntoSync takes the message in the same native call (ringRead, with the
 * same bounds checks as #next()). In 'adaptive' mode the spinner keeps score and stops
 * spinning when it rarely pays (both ends on one core, as on a loaded
 * machine), probing again now and then; 'spin' and 'block' force either.
 * Every index read from shared memory is bounds-checked, a corrupted header
 * or record is a RingCorruptError (EPROTO), and a peer that dies is noticed
 * by a liveness check while waiting: a dead producer gives the consumer
 * ECONNRESET (after every complete message), a dead consumer gives producers
 * EPIPE, never a hang.
 */
import { performance } from 'node:perf_hooks';
import { AbortError, ArgumentError, ProtocolError, SwitchboardError, TimeoutError } from '../errors.js';
import { deadlineOf, remaining, type MemoryLike } from './cells.js';
import { futexWait, futexWaitCallback, futexWake } from './futex.js';
import { Mutex, OwnerDeadError } from './mutex.js';
import { addon, copyBytes, hasNativeSpin, isAlive, threadId } from './native.js';

/** Blocks of at least this many bytes are copied into a ring natively (see RingProducer #put). */
const NATIVE_COPY = 16 * 1024;
import { NO_SPIN, SPIN_ROUNDS, SPIN_SLICE, SpinPolicy, noteWake, type SpinResult, type WaitMode } from './spin-policy.js';
import {
  CLOSED_BY_CONSUMER,
  FIRST_EXTRA,
  REC_ABORT,
  REC_FIRST,
  REC_HEADER,
  REC_LAST,
  REC_MIDDLE,
  REC_PAD,
  REC_WHOLE,
  RING_HEADER_SIZE,
  RING_MAGIC,
  RING_MAX_CAPACITY,
  RING_MAX_PRODUCERS,
  RING_MIN_CAPACITY,
  RING_MPSC,
  RING_VERSION,
  RING_ARM_MS,
  W,
  align8,
} from './ring-layout.js';

/** The ring's header or a record in it is impossible: someone wrote over it. */
export class RingCorruptError extends ProtocolError {
  override name = 'RingCorruptError';
  constructor(message: string) {
    super(`corrupted ring: ${message}`);
  }
}

export type { WaitMode } from './spin-policy.js';

export interface RingCreateOptions {
  /** Data bytes, a power of two in 256..2^30 (default 1 MiB). */
  capacity?: number | undefined;
  /** Allow several producers (default false). */
  multiProducer?: boolean | undefined;
}

export interface RingEndOptions {
  /** 'adaptive' (default), 'spin' (never sleep) or 'block' (never spin). */
  wait?: WaitMode | undefined;
  /** Adaptive mode: longest spin before sleeping, in microseconds (default 50, about one futex wake-up; 0 = never spin). */
  spinMicros?: number | undefined;
  /** Polls before the spinner first yields and reads the clock (default 128, one or two microseconds). */
  spinIterations?: number | undefined;
  /** How often a sleeping end checks that its peer is alive (default 100 ms). */
  livenessMs?: number | undefined;
  /**
   * Spin in C, in the sb_shm addon (default true): polls are plain loads, and
   * a blocking readInto takes the message in the same call. false: poll with
   * Atomics from JS (the fallback when the addon lacks these functions).
   */
  nativeWait?: boolean | undefined;
}

export interface RingConsumerOptions extends RingEndOptions {
  /** Largest message accepted; larger ones are EMSGSIZE (default 64 MiB). */
  maxMessageSize?: number | undefined;
}

export interface WaitOptions {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Bytes a ring of `capacity` data bytes occupies (header included). */
export function ringBytes(capacity: number): number {
  checkCapacity(capacity);
  return RING_HEADER_SIZE + capacity;
}

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < RING_MIN_CAPACITY || capacity > RING_MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) {
    throw new ArgumentError(`ring capacity must be a power of two in ${RING_MIN_CAPACITY}..${RING_MAX_CAPACITY}, got ${capacity}`);
  }
}

function bufferOf(memory: MemoryLike): SharedArrayBuffer {
  const b = memory instanceof SharedArrayBuffer ? memory : memory.buffer;
  if (!(b instanceof SharedArrayBuffer)) throw new ArgumentError('a ring needs a SharedArrayBuffer or a Region');
  return b;
}

function checkPlace(buffer: SharedArrayBuffer, byteOffset: number, bytes: number): void {
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 8 !== 0) throw new ArgumentError(`ring byteOffset must be a non-negative multiple of 8, got ${byteOffset}`);
  if (byteOffset + bytes > buffer.byteLength) throw new ArgumentError(`a ring of ${bytes} bytes at ${byteOffset} does not fit in ${buffer.byteLength} bytes`);
}

/**
 * Lay out an empty ring at `byteOffset` (8-aligned) of the memory. Do it
 * before any end attaches; returns the bytes used.
 */
export function initRing(memory: MemoryLike, byteOffset = 0, options: RingCreateOptions = {}): number {
  const capacity = options.capacity ?? 1 << 20;
  checkCapacity(capacity);
  const buffer = bufferOf(memory);
  checkPlace(buffer, byteOffset, RING_HEADER_SIZE + capacity);
  const h = new Int32Array(buffer, byteOffset, RING_HEADER_SIZE / 4);
  h.fill(0);
  Atomics.store(h, W.version, RING_VERSION);
  Atomics.store(h, W.capacity, capacity);
  Atomics.store(h, W.flags, options.multiProducer ? RING_MPSC : 0);
  Atomics.store(h, W.headerSize, RING_HEADER_SIZE);
  Atomics.store(h, W.maxRecord, capacity / 4);
  Atomics.store(h, W.magic, RING_MAGIC);
  return RING_HEADER_SIZE + capacity;
}

/** An armed end that went this many hot-path reads or writes without sleeping withdraws its announcement. */
const DISARM_AFTER = 4096;

/** What both ends share: the validated header view and the data area. */
abstract class RingEnd {
  protected readonly h: Int32Array;
  protected readonly u8: Uint8Array;
  protected readonly d32: Int32Array;
  protected readonly cap: number;
  protected readonly mask: number;
  protected readonly maxRecord: number;
  protected readonly mpsc: boolean;
  protected readonly spin: SpinPolicy;
  protected readonly livenessMs: number;
  /** One-record reads and writes of reused buffers may go through the addon's bound calls (nativeWait not false). */
  protected readonly nativeCalls: boolean;
  protected closedLocal = false;
  protected readonly me: number;
  protected wakes = 0;

  constructor(memory: MemoryLike, byteOffset: number, options: RingEndOptions) {
    const buffer = bufferOf(memory);
    checkPlace(buffer, byteOffset, RING_HEADER_SIZE);
    const h = new Int32Array(buffer, byteOffset, RING_HEADER_SIZE / 4);
    const magic = Atomics.load(h, W.magic);
    if (magic !== RING_MAGIC) throw new RingCorruptError(`bad magic 0x${(magic >>> 0).toString(16)} at offset ${byteOffset} (no ring there?)`);
    if (Atomics.load(h, W.version) !== RING_VERSION) throw new ProtocolError(`ring version ${Atomics.load(h, W.version)} is not supported`, { code: 'EVERSION' });
    const cap = Atomics.load(h, W.capacity);
    if (cap < RING_MIN_CAPACITY || cap > RING_MAX_CAPACITY || (cap & (cap - 1)) !== 0) throw new RingCorruptError(`impossible capacity ${cap}`);
    if (Atomics.load(h, W.headerSize) !== RING_HEADER_SIZE) throw new RingCorruptError('bad header size');
    if (byteOffset + RING_HEADER_SIZE + cap > buffer.byteLength) throw new RingCorruptError(`capacity ${cap} runs past the end of the memory`);
    const head = Atomics.load(h, W.head) >>> 0;
    const used = (Atomics.load(h, W.tail) - head) >>> 0;
    if (used > cap || used % 8 !== 0 || head % 8 !== 0) throw new RingCorruptError(`impossible indices (head ${head}, tail - head = ${used})`);
    this.h = h;
    this.cap = cap;
    this.mask = cap - 1;
    // Records of at most a quarter of the ring: a writer never waits for more than the reader can free.
    this.maxRecord = cap / 4;
    this.mpsc = (Atomics.load(h, W.flags) & RING_MPSC) !== 0;
    this.u8 = new Uint8Array(buffer, byteOffset + RING_HEADER_SIZE, cap);
    this.d32 = new Int32Array(buffer, byteOffset + RING_HEADER_SIZE, cap / 4);
    this.spin = new SpinPolicy(options.wait ?? 'adaptive', options);
    this.nativeCalls = options.nativeWait !== false && hasNativeSpin();
    this.livenessMs = options.livenessMs ?? 100;
    this.me = threadId();
  }

  #nextCheck = 0;
  /** This end announced that it may sleep (its side's *MaySleep word) and waited out the arming poll. */
  protected armed = false;
  /** The *MaySleep word this end counts itself in while armed. */
  protected armWord = 0;

  /**
   * Withdraw the announcement (when this end has long stopped sleeping, and
   * at close): its peers' publishes then skip the fence and the flag again.
   * Safe at any time: a peer that still sees the count does the full check.
   */
  protected disarm(): void {
    if (!this.armed) return;
    this.armed = false;
    Atomics.sub(this.h, this.armWord, 1);
  }

  /** Hot-path reads or writes since this end last slept (see countQuiet()). */
  protected quiet = 0;

  /**
   * After a hot-path read or write of an armed end: a sleep (`slept`) starts
   * the count again; DISARM_AFTER of them without one withdraw the
   * announcement, so that the peer's publishes skip the fence again.
   */
  protected countQuiet(slept: boolean): void {
    if (slept) this.quiet = 0;
    else if (++this.quiet > DISARM_AFTER) this.disarm();
  }

  /** This end woke its peer. */
  protected countWake(): void {
    this.wakes++;
    noteWake();
  }

  /**
   * Before this end's first futex sleep: announce it in `word` (sticky), then
   * keep polling `index` while it equals `value` for RING_ARM_MS, so a peer
   * that looked at the word just before it was set has published by the
   * time we sleep (include/switchboard-ring.h, "Sleep announcements").
   * True when the index moved meanwhile (no sleep needed).
   */
  protected arm(word: number, index: number, value: number): boolean {
    const h = this.h;
    Atomics.add(h, word, 1);
    this.armed = true;
    this.armWord = word;
    const end = performance.now() + RING_ARM_MS;
    do {
      if (Atomics.load(h, index) !== value) return true;
    } while (performance.now() < end);
    return Atomics.load(h, index) !== value;
  }

  /** True at most once per livenessMs: time for a spinning end to check its peer (syscalls). */
  protected livenessDue(): boolean {
    const now = performance.now();
    if (now < this.#nextCheck) return false;
    this.#nextCheck = now + this.livenessMs;
    return true;
  }

  get capacity(): number {
    return this.cap;
  }

  /** Times this end woke its sleeping peer (a futex wake system call each): batching keeps it low. */
  get wakeups(): number {
    return this.wakes;
  }

  /** True when this end's waits spin in C (the sb_shm addon), false when they poll from JS or never spin. */
  get nativeWait(): boolean {
    return this.spin.native;
  }

  /** Waits that spun, and those that saw the peer while spinning (the adaptive policy's evidence). */
  get spinStats(): { spins: number; hits: number } {
    return this.spin.stats;
  }

  get multiProducer(): boolean {
    return this.mpsc;
  }

  /** Bytes waiting to be read. */
  get pending(): number {
    return (Atomics.load(this.h, W.tail) - Atomics.load(this.h, W.head)) >>> 0;
  }
}

const NO_BYTES = new Uint8Array(0);
const DONE = Promise.resolve();
/** A fast path declines: take the general one. */
const SLOW = -2;

/** The writing end of a ring. */
export class RingProducer extends RingEnd {
  /** Largest payload of a one-record message. */
  readonly #maxWhole = this.maxRecord - REC_HEADER;
  #slot = -1;
  #corked = 0;
  #lock: Mutex | undefined;
  #locked = false;
  #queue: Promise<void> = Promise.resolve();
  #busy = 0;
  /** A fragmented message is half written (FIRST published, LAST not yet). */
  #partialOpen = false;
  /** An abandoned message still needs its ABORT record (no room when it was abandoned). */
  #abortPending = false;
  #cancelWait: (() => void) | undefined;
  #wakeWaiter: (() => void) | undefined;
  /** The last one-part source of #fastWrite() and, once it is written again, a word view over it. */
  #s8: Uint8Array | null = null;
  #s32: Int32Array<ArrayBufferLike> | null = null;
  /** One-part writes of a reused source go through the addon's ringWriteBound. */
  readonly #nativeWrite: boolean;
  /** The last buffer of tryWriteFrom() (bound when it comes again). */
  #fromLast: Uint8Array | null = null;
  /** ringWriteBound's words: [0] tail, [1] head seen, [2] largest payload, [3] woke, [6] capacity. */
  readonly #wio = new Int32Array(new ArrayBuffer(IO_WORDS * 4));
  readonly #wb = new BoundSlot(this.h, this.#wio);
  /*
   * The tail and the head seen last live in those words ([0] and [1]), not in
   * fields: a bound write reads and updates them there, so nothing is copied
   * between fields and words on the way from a read to the next write.
   */
  get #tail(): number {
    return (this.#wio[0] as number) >>> 0;
  }
  set #tail(v: number) {
    this.#wio[0] = v;
  }
  get #headCache(): number {
    return (this.#wio[1] as number) >>> 0;
  }
  set #headCache(v: number) {
    this.#wio[1] = v;
  }

  constructor(memory: MemoryLike, byteOffset = 0, options: RingEndOptions = {}) {
    super(memory, byteOffset, options);
    const h = this.h;
    if (Atomics.load(h, W.closed) & CLOSED_BY_CONSUMER) throw new SwitchboardError('EPIPE', 'the ring was closed by its consumer');
    // Take a free slot, or the slot of a producer that died.
    for (let i = 0; i < RING_MAX_PRODUCERS && this.#slot < 0; i++) {
      const idx = W.producers + i;
      const v = Atomics.load(h, idx);
      if (!this.mpsc && i > 0) break;
      if (v === 0) {
        if (Atomics.compareExchange(h, idx, 0, this.me) === 0) {
          Atomics.add(h, W.attached, 1);
          this.#slot = idx;
        }
      } else if (v !== this.me && !isAlive(v)) {
        if (Atomics.compareExchange(h, idx, v, this.me) === v) this.#slot = idx;
      } else if (!this.mpsc) {
        throw new SwitchboardError('EADDRINUSE', `the single-producer ring already has a producer (thread ${v})`);
      }
    }
    if (this.#slot < 0) throw new SwitchboardError('ELIMIT', `the ring already has ${RING_MAX_PRODUCERS} producers`);
    const wasAttached = Atomics.exchange(h, W.everAttached, 1) !== 0;
    if (this.mpsc) this.#lock = new Mutex(h.buffer as SharedArrayBuffer, h.byteOffset + W.prodLock * 4);
    this.#tail = Atomics.load(h, W.tail) >>> 0;
    this.#headCache = Atomics.load(h, W.head) >>> 0;
    this.#nativeWrite = this.nativeCalls && !this.mpsc;
    this.#wio[IO_MAX_WHOLE] = this.#maxWhole;
    this.#wio[IO_CAP] = this.cap;
    // A producer before us may have died mid-message: tell the consumer to drop what it has of it.
    if (wasAttached && !this.mpsc && this.#tryReserve(REC_HEADER)) {
      this.#record(this.#tail & this.mask, 0, REC_ABORT);
      this.#tail = (this.#tail + REC_HEADER) >>> 0;
      this.#publish();
    }
  }

  /** True once close() was called or the consumer closed the ring. */
  get isClosed(): boolean {
    return this.closedLocal || (Atomics.load(this.h, W.closed) & CLOSED_BY_CONSUMER) !== 0;
  }

  /** Hold back publishing (batching) until the matching uncork(). */
  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    if (this.#corked > 0 && --this.#corked === 0) this.flush();
  }

  /** Publish what was written (corked writes) and wake the consumer if it sleeps. */
  flush(): void {
    // MPSC writes are published before the producers' lock is released; storing our
    // tail now, outside the lock, could move it back over another producer's messages.
    if (!this.mpsc) this.#publish();
  }

  /**
   * Write without waiting: false (nothing written) when the message does not
   * fit now. Only messages of one record (at most capacity/4 - 8 bytes).
   */
  tryWrite(data: Uint8Array): boolean {
    const r = this.#fastWrite(data, NO_BYTES);
    return r === SLOW ? this.#tryWriteSlow(data, NO_BYTES) : r === 1;
  }

  /**
   * tryWrite() of one message made of `head` followed by `body`, gathered
   * straight into the ring (no concatenation, no allocation).
   */
  tryWriteParts(head: Uint8Array, body: Uint8Array): boolean {
    const r = this.#fastWrite(head, body);
    return r === SLOW ? this.#tryWriteSlow(head, body) : r === 1;
  }

  /** Write one message, blocking this thread while the ring is full. EPIPE if the consumer is gone. */
  writeSync(data: Uint8Array, options?: { timeoutMs?: number | undefined }): void {
    // The hot path, small enough to inline: a reused (bound) source, written in one native call.
    // (booleans compared with === false: V8 then compares one word instead of converting a field of any type)
    // (small: V8 inlines a function into its caller only while the bytecode it inlines stays under
    // 920 bytes in all, and this, #writeBound and readIntoSync's hot path are what a loop inlines)
    if (options === undefined && data === this.#wb.buffer && this.#corked === 0 && this.closedLocal === false && this.#abortPending === false) {
      if (this.#writeBound(data.length) !== 1) this.#writeSyncSlow(data, NO_BYTES, undefined);
      return;
    }
    this.#writeSyncGeneral(data, options);
  }

  /** writeSync() off its hot path. */
  #writeSyncGeneral(data: Uint8Array, options: { timeoutMs?: number | undefined } | undefined): void {
    if (options?.timeoutMs === undefined && this.#fastWrite(data, NO_BYTES) === 1) return;
    this.#writeSyncSlow(data, NO_BYTES, options?.timeoutMs);
  }

  /** writeSync() of one message made of `head` followed by `body` (any size: large ones are fragmented). */
  writePartsSync(head: Uint8Array, body: Uint8Array, options?: { timeoutMs?: number | undefined }): void {
    if (options?.timeoutMs === undefined && this.#fastWrite(head, body) === 1) return;
    this.#writeSyncSlow(head, body, options?.timeoutMs);
  }

  /**
   * The hot path: an SPSC producer, open, nothing owed, a one-record message
   * that fits before the end of the data area in the room we already know
   * of. 1 = written, SLOW = let the general path decide (it may wait, pad,
   * re-read the consumer's index, or throw).
   */
  #fastWrite(a: Uint8Array, b: Uint8Array): number {
    if (this.mpsc || this.closedLocal || this.#abortPending || !(a instanceof Uint8Array) || !(b instanceof Uint8Array)) return SLOW;
    // A reused source: header, copy, publish and wake-up in one native call.
    if (b === NO_BYTES && this.#corked === 0 && (a === this.#wb.buffer || (a === this.#s8 && this.#bindSource(a)))) return this.#writeBound(a.length);
    const alen = a.length;
    const len = alen + b.length;
    if (len > this.#maxWhole) return SLOW;
    const size = (len + (REC_HEADER + 7)) & ~7;
    const tail = this.#tail;
    const pos = tail & this.mask;
    if (pos + size > this.cap || this.cap - ((tail - this.#headCache) >>> 0) < size) return SLOW;
    // A plain read: the closed flag only ever gains a bit; EPIPE is thrown by the general path.
    if (((this.h[W.closed] as number) & CLOSED_BY_CONSUMER) !== 0) return SLOW;
    const w = pos >> 2;
    this.d32[w] = len;
    this.d32[w + 1] = REC_WHOLE;
    if (len !== alen) {
      this.u8.set(a, pos + REC_HEADER);
      this.#put(b, pos + REC_HEADER + alen);
    } else if (a === this.#s8 && len <= SMALL_COPY) {
      this.#copyInSmall(a, w + 2, len);
    } else {
      this.#s8 = a;
      this.#s32 = null;
      this.#put(a, pos + REC_HEADER);
    }
    this.#tail = (tail + size) >>> 0;
    if (this.#corked === 0) this.#publish();
    return 1;
  }

  /**
   * Copy a small message to word `w` of the data area word by word (about
   * half the time of set() from ordinary into shared memory). Only for a
   * source written twice in a row (a reused buffer): the word view over it is
   * made once, so fresh arrays cost no allocation.
   */
  #copyInSmall(a: Uint8Array, w: number, len: number): void {
    let s32 = this.#s32;
    if (s32 === null) {
      if ((a.byteOffset & 3) !== 0) {
        this.u8.set(a, w << 2);
        return;
      }
      s32 = this.#s32 = new Int32Array(a.buffer, a.byteOffset, a.length >> 2);
    }
    const words = len >> 2;
    // (a view over a buffer shrunk or detached since is shorter: then set())
    if (words > s32.length) {
      this.u8.set(a, w << 2);
      return;
    }
    const d32 = this.d32;
    for (let i = 0; i < words; i++) d32[w + i] = s32[i] as number;
    const u8 = this.u8;
    const at = w << 2;
    for (let i = words << 2; i < len; i++) u8[at + i] = a[i] as number;
  }

  #tryWriteSlow(a: Uint8Array, b: Uint8Array): boolean {
    this.#checkOpen();
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) throw new ArgumentError('ring messages are Uint8Arrays');
    const size = REC_HEADER + align8(a.length + b.length);
    if (size > this.maxRecord) throw new ArgumentError(`tryWrite() takes messages of at most ${this.maxRecord - REC_HEADER} bytes; use writeSync() or write()`);
    if (this.mpsc && !this.#lockSync(0)) return false;
    try {
      if (this.#abortPending) {
        if (!this.#tryReserve(REC_HEADER)) return false;
        this.#payAbortSync(0);
      }
      if (!this.#tryReserve(size)) return false;
      this.#whole(a, b, size, true);
      // MPSC: the shared tail must be stored before the lock is released.
      if (this.#corked === 0 || this.mpsc) this.#publish();
      return true;
    } finally {
      if (this.mpsc) this.#unlock();
    }
  }

  #writeSyncSlow(a: Uint8Array, b: Uint8Array, timeoutMs: number | undefined): void {
    this.#checkOpen();
    const deadline = deadlineOf(timeoutMs);
    if (this.mpsc) this.#lockSync(deadline);
    try {
      this.#writeSyncLocked(a, b, deadline);
      if (this.#corked === 0 || this.mpsc) this.#publish();
    } finally {
      if (this.mpsc) this.#unlock();
    }
  }

  /** Write several messages with one publish (one wake-up at most). */
  writeManySync(messages: readonly Uint8Array[], options?: { timeoutMs?: number | undefined }): void {
    this.#checkOpen();
    const deadline = deadlineOf(options?.timeoutMs);
    if (this.mpsc) this.#lockSync(deadline);
    try {
      if (this.mpsc) {
        for (const m of messages) this.#writeSyncLocked(m, NO_BYTES, deadline);
      } else {
        this.#corked++;
        try {
          for (const m of messages) if (this.#fastWrite(m, NO_BYTES) !== 1) this.#writeSyncLocked(m, NO_BYTES, deadline);
        } finally {
          this.#corked--;
        }
      }
      this.#publish();
    } finally {
      if (this.mpsc) this.#unlock();
    }
  }

  /** Write one message without blocking the event loop; writes are queued in order. */
  write(data: Uint8Array, options?: WaitOptions): Promise<void> {
    // Nothing queued and room now: write at once, no batch array, no new promise.
    if (this.#busy === 0 && this.#fastWrite(data, NO_BYTES) === 1) return DONE;
    return this.writeMany([data], options);
  }

  writeMany(messages: readonly Uint8Array[], options: WaitOptions = {}): Promise<void> {
    const run = (): Promise<void> | void => {
      this.#checkOpen();
      // Fast path: everything fits now (and the lock is free): no promise machinery.
      if (this.#abortPending) return this.#writeAsyncSlow(messages, options);
      if (this.mpsc && !this.#lockSync(0)) return this.#writeAsyncSlow(messages, options);
      if (!this.#fitsNow(messages)) {
        if (this.mpsc) this.#unlock();
        return this.#writeAsyncSlow(messages, options);
      }
      try {
        for (const m of messages) this.#whole(m, NO_BYTES, REC_HEADER + align8(m.length));
        if (this.#corked === 0 || this.mpsc) this.#publish();
      } finally {
        if (this.mpsc) this.#unlock();
      }
      return undefined;
    };
    // Nothing queued: write now, so that writes of one tick share a publish (cork/uncork).
    if (this.#busy === 0) {
      try {
        const r = run();
        if (r === undefined) return Promise.resolve();
        return this.#track(r);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#track(this.#queue.then(run));
  }

  /** Resolves when every queued write() has finished (successfully or not). */
  idle(): Promise<void> {
    return this.#queue;
  }

  #track(p: Promise<void>): Promise<void> {
    this.#busy++;
    const done = p.finally(() => {
      this.#busy--;
    });
    this.#queue = done.catch(() => undefined);
    return done;
  }

  /** Detach: publish, free the slot; the consumer sees the end once every producer detached. Idempotent. */
  close(): void {
    if (this.closedLocal) return;
    this.closedLocal = true;
    this.#cancelWait?.();
    this.#wakeWaiter?.();
    const h = this.h;
    this.#abandon();
    if (!this.mpsc) {
      if (this.#abortPending && this.#tryReserve(REC_HEADER)) this.#payAbortSync(0);
      // (corked writes or the ABORT just written; with nothing new, a wake-up would only send a sleeper back to sleep)
      if ((Atomics.load(h, W.tail) >>> 0) !== this.#tail) this.#publish();
    } else if (this.#locked || (this.#abortPending && this.#lockSync(0))) {
      // MPSC: the shared tail may only be stored under the producers' lock, or a
      // stale local tail would move it backwards over other producers' messages.
      // Every write already published under the lock; only an owed ABORT is left.
      if (this.#abortPending && this.#tryReserve(REC_HEADER)) this.#payAbortSync(0);
      this.#publish();
    }
    if (this.#locked) this.#unlock();
    this.#wb.release(this);
    this.#fromLast = null;
    if (Atomics.load(h, this.#slot) === this.me) {
      Atomics.sub(h, W.attached, 1);
      this.#moveTailForSleeper();
      Atomics.compareExchange(h, this.#slot, this.me, 0);
    }
    this.disarm();
    futexWake(h, W.tail, Infinity);
  }

  /**
   * Just detached: a consumer that went to sleep at this very moment may have
   * seen us attached and then miss the wake-up below (it sleeps on the tail,
   * which a detach does not move). If one is asleep, move the tail with an
   * ABORT record, which a consumer ignores when no message is open (none is:
   * we finished ours, and in an MPSC ring whoever holds the lock is still
   * attached). Done before our slot is free, so no new producer writes there.
   */
  #moveTailForSleeper(): void {
    if (Atomics.load(this.h, W.consumerSleeping) === 0) return;
    try {
      // (MPSC: only if the lock is free now; its holder is attached, and its own publish or close wakes the consumer)
      if (this.mpsc && !this.#lockSync(0)) return;
      if (!this.#tryReserve(REC_HEADER)) return;
      this.#record(this.#tail & this.mask, 0, REC_ABORT);
      this.#tail = (this.#tail + REC_HEADER) >>> 0;
      this.#publish();
    } catch {
      // (a ring found corrupted here is the consumer's to report; a close does not throw for it)
    } finally {
      if (this.mpsc) this.#unlock();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ----------------------------------------------------------------- internals

  #checkOpen(): void {
    if (this.closedLocal) throw new SwitchboardError('ECLOSED', 'ring producer is closed');
    if (Atomics.load(this.h, W.closed) & CLOSED_BY_CONSUMER) throw new SwitchboardError('EPIPE', 'the ring consumer has closed');
  }

  #fitsNow(messages: readonly Uint8Array[]): boolean {
    let total = 0;
    for (const m of messages) {
      if (!(m instanceof Uint8Array)) throw new ArgumentError('ring messages are Uint8Arrays');
      const size = REC_HEADER + align8(m.length);
      if (size > this.maxRecord) return false;
      total += size + size; // worst case: each record preceded by padding of its size
    }
    const free = this.cap - ((this.#tail - this.#headCache) >>> 0);
    if (total <= free) return true;
    this.#refreshHead();
    return total <= this.cap - ((this.#tail - this.#headCache) >>> 0);
  }

  #refreshHead(): void {
    const head = Atomics.load(this.h, W.head) >>> 0;
    const used = (this.#tail - head) >>> 0;
    if (used > this.cap || used % 8 !== 0) throw new RingCorruptError(`impossible indices seen by the producer (tail - head = ${used})`);
    this.#headCache = head;
  }

  /** Make `size` contiguous bytes available at the tail (padding to the start if needed); false if no room. */
  #tryReserve(size: number): boolean {
    const pos = this.#tail & this.mask;
    const toEnd = this.cap - pos;
    const need = size <= toEnd ? size : toEnd + size;
    if (this.cap - ((this.#tail - this.#headCache) >>> 0) < need) {
      this.#refreshHead();
      if (this.cap - ((this.#tail - this.#headCache) >>> 0) < need) return false;
    }
    if (size > toEnd) {
      this.#record(pos, toEnd - REC_HEADER, REC_PAD);
      this.#tail = (this.#tail + toEnd) >>> 0;
    }
    return true;
  }

  #record(pos: number, length: number, type: number): void {
    const w = pos >> 2;
    this.d32[w] = length;
    this.d32[w + 1] = type;
  }

  /**
   * tryWrite() of the first `length` bytes of `buf`, for a caller that builds
   * each message at the start of one reused buffer: from the second call on,
   * the buffer is bound and each write is one native call, with no view made.
   */
  tryWriteFrom(buf: Uint8Array, length: number): boolean {
    if (!(length >= 0 && length <= buf.length)) throw new ArgumentError(`length ${length} is not within the buffer's ${buf.length} bytes`);
    if (this.#corked === 0 && !this.mpsc && !this.closedLocal && !this.#abortPending) {
      if (buf === this.#wb.buffer || (buf === this.#fromLast && this.#bindSource(buf))) {
        if (this.#writeBound(length) === 1) return true;
      } else this.#fromLast = buf;
    }
    return this.tryWrite(length === buf.length ? buf : buf.subarray(0, length));
  }

  /** The bound source's first `length` bytes as one record: 1, or SLOW for the general path. */
  #writeBound(length: number): number {
    // (the tail and the head seen are read and updated in #wio: see #tail)
    const r = writeBound(this.#wb.slot, length);
    if (r !== 1) return this.#writeBoundMiss(r);
    if (this.#wio[IO_WOKE] !== 0 || this.armed === true) this.#afterWriteBound();
    return 1;
  }

  /** After a bound write that woke the consumer or while armed: count the wake-up; long without a sleep, disarm. */
  #afterWriteBound(): void {
    if (this.#wio[IO_WOKE] !== 0) this.countWake();
    if (this.armed === true) this.countQuiet(false);
  }

  /** A bound write that did not write: SLOW for the general path, or EINVAL for a slot that is not bound. */
  #writeBoundMiss(r: number): number {
    if (r === RR_BAD_SLOT) throw new SwitchboardError('EINVAL', 'ring write: slot not bound');
    return SLOW;
  }

  /** Bind a slot (once) for native writes from `src`: false when none can be had or writes stay in JS. */
  #bindSource(src: Uint8Array): boolean {
    return this.#nativeWrite && this.#wb.bind(this, src);
  }

  /** Write a whole-message record of a then b (room checked by #fitsNow, or reserved with #tryReserve). */
  #whole(a: Uint8Array, b: Uint8Array, size: number, reserved = false): void {
    if (!reserved && !this.#tryReserve(size)) throw new RingCorruptError('reserved room vanished');
    const pos = this.#tail & this.mask;
    this.#record(pos, a.length + b.length, REC_WHOLE);
    this.#put(a, pos + REC_HEADER);
    if (b.length > 0) this.#put(b, pos + REC_HEADER + a.length);
    this.#tail = (this.#tail + size) >>> 0;
  }

  /**
   * Copy `src` into the data area at `at`. Big blocks go through the addon's
   * memmove: V8 writes shared memory with relaxed atomic word stores, about
   * twice the time of memcpy while the consumer reads nearby lines.
   */
  #put(src: Uint8Array, at: number): void {
    if (src.length >= NATIVE_COPY) copyBytes(this.u8, at, src, 0, src.length);
    else this.u8.set(src, at);
  }

  /** Copy bytes [from, to) of the concatenation a + b to `at` in the data area. */
  #copyIn(at: number, a: Uint8Array, b: Uint8Array, from: number, to: number): void {
    const alen = a.length;
    if (from < alen) {
      const end = Math.min(to, alen);
      this.u8.set(from === 0 && end === alen ? a : a.subarray(from, end), at);
      at += end - from;
      from = end;
    }
    if (from < to) {
      if (to - from >= NATIVE_COPY) copyBytes(this.u8, at, b, from - alen, to - from);
      else this.u8.set(b.subarray(from - alen, to - alen), at);
    }
  }

  #publish(): void {
    const h = this.h;
    Atomics.store(h, W.tail, this.#tail | 0);
    // (a consumer that never announced it may sleep is not asleep: no look at its flag)
    if (h[W.consumerMaySleep] !== 0 && Atomics.load(h, W.consumerSleeping) !== 0 && Atomics.compareExchange(h, W.consumerSleeping, 1, 0) === 1) {
      this.countWake();
      futexWake(h, W.tail, 1);
    }
  }

  /**
   * The fragments of a message: calls put(type, from, to, extra) for each in
   * turn, where put returns false to stop (no room).
   */
  #fragmentSize(type: number, chunk: number): number {
    return REC_HEADER + (type === REC_FIRST ? FIRST_EXTRA : 0) + align8(chunk);
  }

  #chunkMax(type: number): number {
    return (this.maxRecord - REC_HEADER - (type === REC_FIRST ? FIRST_EXTRA : 0)) & ~7;
  }

  /** Write fragment `type` with bytes [from, to) of a + b; room must be reserved. */
  #fragment(a: Uint8Array, b: Uint8Array, type: number, from: number, to: number): void {
    const size = this.#fragmentSize(type, to - from);
    const pos = this.#tail & this.mask;
    let at = pos + REC_HEADER;
    if (type === REC_FIRST) {
      this.#record(pos, to - from + FIRST_EXTRA, type);
      this.d32[(pos >> 2) + 2] = a.length + b.length;
      this.d32[(pos >> 2) + 3] = 0;
      at += FIRST_EXTRA;
    } else {
      this.#record(pos, to - from, type);
    }
    this.#copyIn(at, a, b, from, to);
    this.#tail = (this.#tail + size) >>> 0;
  }

  #writeSyncLocked(a: Uint8Array, b: Uint8Array, deadline: number): void {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) throw new ArgumentError('ring messages are Uint8Arrays');
    this.#payAbortSync(deadline);
    const total = a.length + b.length;
    const whole = REC_HEADER + align8(total);
    if (whole <= this.maxRecord) {
      while (!this.#tryReserve(whole)) this.#waitSpaceSync(deadline);
      this.#whole(a, b, whole, true);
      return;
    }
    let from = 0;
    let type = REC_FIRST;
    try {
      while (from < total) {
        const to = Math.min(total, from + this.#chunkMax(type));
        const t = type === REC_FIRST ? REC_FIRST : to === total ? REC_LAST : REC_MIDDLE;
        const size = this.#fragmentSize(t, to - from);
        while (!this.#tryReserve(size)) this.#waitSpaceSync(deadline);
        this.#fragment(a, b, t, from, to);
        this.#partialOpen = t !== REC_LAST;
        // Publish each fragment so the consumer drains a message larger than the ring.
        this.#publish();
        from = to;
        type = REC_MIDDLE;
      }
    } catch (err) {
      this.#abandon();
      throw err;
    }
  }

  /**
   * A fragmented write failed part-way (timeout, abort, close): the consumer
   * must drop what it has of that message. Writes an ABORT record now if
   * there is room, else before the next message (SPSC) or by whoever takes
   * the producers' lock next (MPSC: the lock is marked inconsistent).
   */
  #abandon(): void {
    if (!this.#partialOpen) return;
    this.#partialOpen = false;
    if (this.#tryReserve(REC_HEADER)) {
      this.#record(this.#tail & this.mask, 0, REC_ABORT);
      this.#tail = (this.#tail + REC_HEADER) >>> 0;
      this.#publish();
    } else if (this.mpsc && this.#locked) {
      (this.#lock as Mutex).markInconsistent();
    } else {
      this.#abortPending = true;
    }
  }

  /** Write the ABORT record owed by an abandoned message before anything else (SPSC). */
  #payAbortSync(deadline: number): void {
    if (!this.#abortPending) return;
    while (!this.#tryReserve(REC_HEADER)) this.#waitSpaceSync(deadline);
    this.#record(this.#tail & this.mask, 0, REC_ABORT);
    this.#tail = (this.#tail + REC_HEADER) >>> 0;
    this.#abortPending = false;
  }

  async #payAbortAsync(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    if (!this.#abortPending) return;
    while (!this.#tryReserve(REC_HEADER)) await this.#waitSpaceAsync(deadline, signal);
    this.#record(this.#tail & this.mask, 0, REC_ABORT);
    this.#tail = (this.#tail + REC_HEADER) >>> 0;
    this.#abortPending = false;
  }

  async #writeAsyncSlow(messages: readonly Uint8Array[], options: WaitOptions): Promise<void> {
    const deadline = deadlineOf(options.timeoutMs);
    if (this.mpsc) await this.#lockAsync(deadline, options.signal);
    try {
      for (const data of messages) {
        if (!(data instanceof Uint8Array)) throw new ArgumentError('ring messages are Uint8Arrays');
        await this.#payAbortAsync(deadline, options.signal);
        const whole = REC_HEADER + align8(data.length);
        if (whole <= this.maxRecord) {
          while (!this.#tryReserve(whole)) await this.#waitSpaceAsync(deadline, options.signal);
          this.#whole(data, NO_BYTES, whole, true);
          continue;
        }
        let from = 0;
        let first = true;
        while (from < data.length) {
          const t0 = first ? REC_FIRST : REC_MIDDLE;
          const to = Math.min(data.length, from + this.#chunkMax(t0));
          const t = first ? REC_FIRST : to === data.length ? REC_LAST : REC_MIDDLE;
          const size = this.#fragmentSize(t, to - from);
          while (!this.#tryReserve(size)) await this.#waitSpaceAsync(deadline, options.signal);
          this.#fragment(data, NO_BYTES, t, from, to);
          this.#partialOpen = t !== REC_LAST;
          this.#publish();
          from = to;
          first = false;
        }
      }
      if (this.#corked === 0 || this.mpsc) this.#publish();
    } catch (err) {
      this.#abandon();
      throw err;
    } finally {
      if (this.mpsc && this.#locked) this.#unlock();
    }
  }

  /** Throws EPIPE when the consumer closed or died. */
  #checkConsumer(): void {
    const h = this.h;
    if (Atomics.load(h, W.closed) & CLOSED_BY_CONSUMER) throw new SwitchboardError('EPIPE', 'the ring consumer has closed');
    const c = Atomics.load(h, W.consumerTid);
    if (c !== 0 && !isAlive(c)) throw new SwitchboardError('EPIPE', `the ring consumer (thread ${c}) died`);
  }

  #waitSpaceSync(deadline: number): void {
    const h = this.h;
    this.#publish(); // the consumer must see what we wrote to make room
    if (this.closedLocal) throw new SwitchboardError('ECLOSED', 'ring producer is closed');
    const head = Atomics.load(h, W.head);
    if (this.spin.spinWhile(h, W.head, head)) return;
    if (this.spin.forever) {
      if (this.livenessDue()) this.#checkConsumer();
      if (remaining(deadline) === 0) throw new TimeoutError('timed out waiting for room in the ring');
      return;
    }
    if (!this.armed && this.arm(W.producerMaySleep, W.head, head)) return;
    Atomics.store(h, W.producerSleeping, 1);
    if (Atomics.load(h, W.head) !== head) {
      Atomics.store(h, W.producerSleeping, 0);
      return;
    }
    this.#checkOpen();
    const left = remaining(deadline);
    if (left === 0) throw new TimeoutError('timed out waiting for room in the ring');
    this.quiet = 0;
    const r = futexWait(h, W.head, head, Math.min(left, this.livenessMs));
    Atomics.store(h, W.producerSleeping, 0);
    if (r === 'timed-out') this.#checkConsumer();
  }

  async #waitSpaceAsync(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const h = this.h;
    this.#publish();
    if (signal?.aborted) throw new AbortError();
    if (this.closedLocal) throw new SwitchboardError('ECLOSED', 'ring producer is closed');
    const head = Atomics.load(h, W.head);
    if (this.spin.spinWhile(h, W.head, head)) return;
    if (!this.armed && this.arm(W.producerMaySleep, W.head, head)) return;
    Atomics.store(h, W.producerSleeping, 1);
    if (Atomics.load(h, W.head) !== head) {
      Atomics.store(h, W.producerSleeping, 0);
      return;
    }
    this.#checkOpen();
    const left = remaining(deadline);
    if (left === 0) throw new TimeoutError('timed out waiting for room in the ring');
    const r = await new Promise<string>((resolve) => {
      // one handler, added and removed by the same reference, so waits never pile up listeners on the signal
      const onAbort = (): void => {
        cancel();
        finish('aborted');
      };
      const finish = (x: string): void => {
        this.#cancelWait = undefined;
        this.#wakeWaiter = undefined;
        signal?.removeEventListener('abort', onAbort);
        resolve(x);
      };
      this.quiet = 0;
      const cancel = futexWaitCallback(h, W.head, head, Math.min(left, this.livenessMs), true, finish);
      this.#cancelWait = cancel;
      this.#wakeWaiter = () => finish('closed');
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    Atomics.store(h, W.producerSleeping, 0);
    if (r === 'aborted') throw new AbortError();
    if (r === 'closed') throw new SwitchboardError('ECLOSED', 'ring producer is closed');
    if (r === 'timed-out') this.#checkConsumer();
  }

  /** MPSC: take the producers' lock; a dead holder's partial message is cancelled with an ABORT record. */
  #lockSync(deadline: number): boolean {
    const lock = this.#lock as Mutex;
    try {
      if (deadline === 0) {
        if (!lock.tryLock()) return false;
      } else {
        const left = remaining(deadline);
        lock.lock(left === Infinity ? {} : { timeoutMs: left });
      }
    } catch (err) {
      if (!(err instanceof OwnerDeadError)) throw err;
      this.#locked = true;
      this.#afterTakeover(lock);
      return true;
    }
    this.#locked = true;
    this.#afterLock();
    return true;
  }

  async #lockAsync(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const lock = this.#lock as Mutex;
    try {
      const left = remaining(deadline);
      await lock.lockAsync({ timeoutMs: left === Infinity ? undefined : left, signal });
    } catch (err) {
      if (!(err instanceof OwnerDeadError)) throw err;
      this.#locked = true;
      this.#afterTakeover(lock);
      return;
    }
    this.#locked = true;
    this.#afterLock();
  }

  #afterLock(): void {
    this.#tail = Atomics.load(this.h, W.tail) >>> 0;
    this.#refreshHead();
  }

  #afterTakeover(lock: Mutex): void {
    this.#afterLock();
    // The dead holder may have left part of a message: tell the consumer to drop it.
    while (!this.#tryReserve(REC_HEADER)) this.#waitSpaceSync(Infinity);
    this.#record(this.#tail & this.mask, 0, REC_ABORT);
    this.#tail = (this.#tail + REC_HEADER) >>> 0;
    this.#publish();
    lock.markConsistent();
  }

  #unlock(): void {
    if (!this.#locked) return;
    this.#locked = false;
    (this.#lock as Mutex).unlock();
  }
}

const EMPTY = -1;
/** ringRead (native/shm.cc) results besides EMPTY and SLOW, and the words of its io array. */
const RR_BAD_INDICES = -3;
const RR_BAD_RECORD = -4;
const RR_BAD_ARGS = -5;
const RR_BAD_SLOT = -6;

/**
 * The addon's bound ring functions, called as plain functions (a property
 * load on the addon's exports object is a dictionary lookup each time): V8
 * makes them fast API calls in optimized code (native/fast-call.h).
 */
const notBound = (): number => RR_BAD_SLOT;
/** Set by the first bind (before any bound call: a call site sees one function only). */
let readBound: (slot: number, length: number) => number = notBound;
let writeBound: (slot: number, length: number) => number = notBound;

/**
 * One ring end's slot of the addon's bound calls: ringBind checks the ring
 * header and the end's io words once, ringBindBuffer names the buffer the
 * slot reads into or writes from (RingConsumer #readNative, RingProducer
 * #writeBound). The buffers' memory stays alive until release().
 */
class BoundSlot {
  /** -1: none yet; -2: none to be had (every slot taken: the ends use the unbound paths). */
  slot = -1;
  /** The buffer the slot reads into or writes from. */
  buffer: Uint8Array | null = null;
  readonly #h: Int32Array;
  readonly #io: Int32Array;

  constructor(h: Int32Array, io: Int32Array) {
    this.#h = h;
    this.#io = io;
  }

  /** Take a slot (once) and point it at `buf`: false when no slot can be had. `owner`'s finalizer frees the slot. */
  bind(owner: object, buf: Uint8Array): boolean {
    if (this.slot === -2) return false;
    const a = addon();
    if (this.slot === -1) {
      const slot = a.ringBind(this.#h, this.#io);
      if (slot < 0) {
        this.slot = -2;
        return false;
      }
      this.slot = slot;
      readBound = a.ringReadBound;
      writeBound = a.ringWriteBound;
      unbindOnCollect.register(owner, slot, owner);
    }
    a.ringBindBuffer(this.slot, buf);
    this.buffer = buf;
    return true;
  }

  /** Give the slot back (and the buffers it kept alive). */
  release(owner: object): void {
    if (this.slot < 0) return;
    unbindOnCollect.unregister(owner);
    addon().ringUnbind(this.slot);
    this.slot = -1;
    this.buffer = null;
  }
}

/** An end collected without close() gives its bound slot back (and the buffers the slot kept alive). */
const unbindOnCollect = new FinalizationRegistry<number>((slot) => {
  try {
    addon().ringUnbind(slot);
  } catch {
    // (the addon is gone with its environment: nothing left to free)
  }
});
const IO_HEAD = 0;
const IO_TAIL = 1;
const IO_MAX_WHOLE = 2;
const IO_WOKE = 3;
const IO_SPIN = 4;
const IO_DETAIL = 5;
const IO_CAP = 6;
const IO_BUDGET = 7;
const IO_POLLS = 8;
const IO_ROUNDS = 9;
const IO_SLEEP = 10;
const IO_SLEPT = 11;
const IO_WORDS = 12;

/** ringRead's sleep for a blocking read: up to the deadline and at most livenessMs, whole ms (0: the deadline has passed). */
function sleepMsFor(deadline: number, livenessMs: number): number {
  const left = remaining(deadline);
  if (left === 0) return 0;
  return Math.max(1, Math.min(Math.ceil(Math.min(left, livenessMs)), 0x7fffffff));
}
/** The longest spin of one tryReadSmallSpin() call (1 s; io words are 32-bit). */
const MAX_SPIN_NS = 1e9;
/** Messages up to this size are copied out word by word. */
const SMALL_COPY = 256;

/** The reading end of a ring. */
export class RingConsumer extends RingEnd {
  /** The head as last stored in the shared header. */
  #published = 0;
  readonly #maxMessage: number;
  #partial: Uint8Array | null = null;
  #filled = 0;
  #synced: boolean;
  /** Where the ready message is: in the ring (offset into u8) or in #ready. */
  #readyOff = -1;
  #readyLen = 0;
  #readySize = 0;
  #ready: Uint8Array | null = null;
  #error: SwitchboardError | undefined;
  #eof = false;
  #cancelWait: (() => void) | undefined;
  #wakeWaiter: (() => void) | undefined;
  #aborted = 0;
  /** Largest message #peek() takes: within both the ring and maxMessageSize. */
  readonly #maxWhole: number;
  /** The last target of #copyOut() and a word view over it. */
  #t8: Uint8Array | null = null;
  #t32: Int32Array<ArrayBufferLike> | null = null;
  /** Blocking reads spin and take the message in C (ringRead). */
  readonly #nativeRead: boolean;
  /** Blocking reads also sleep in C (ringRead's IO_SLEEP): native calls, and a mode that sleeps. */
  readonly #nativeSleep: boolean;
  /** ringRead's sleep for a blocking read with no deadline (0: reads do not sleep in C). */
  readonly #sleepMs: number;
  /** ringRead's in/out words (IO_*), in ordinary memory. */
  readonly #io = new Int32Array(new ArrayBuffer(IO_WORDS * 4));
  /*
   * Our head and the tail seen last live in those words (IO_HEAD, IO_TAIL),
   * not in fields: a native read takes and updates them there, so nothing is
   * copied between fields and words on the way from a read to the next write.
   */
  get #head(): number {
    return (this.#io[IO_HEAD] as number) >>> 0;
  }
  set #head(v: number) {
    this.#io[IO_HEAD] = v;
  }
  get #tailCache(): number {
    return (this.#io[IO_TAIL] as number) >>> 0;
  }
  set #tailCache(v: number) {
    this.#io[IO_TAIL] = v;
  }
  /** Bound reads (ringReadBound) into a target read into twice in a row (a reused buffer). */
  readonly #b = new BoundSlot(this.h, this.#io);
  /** The target of the last native read that was not bound. */
  #lastTarget: Uint8Array | null = null;

  constructor(memory: MemoryLike, byteOffset = 0, options: RingConsumerOptions = {}) {
    super(memory, byteOffset, options);
    this.#maxMessage = options.maxMessageSize ?? 64 * 1024 * 1024;
    this.#maxWhole = Math.min(this.#maxMessage, this.maxRecord - REC_HEADER);
    const h = this.h;
    const prev = Atomics.load(h, W.consumerTid);
    let tookOver = false;
    if (prev !== 0 && isAlive(prev)) throw new SwitchboardError('EADDRINUSE', `the ring already has a consumer (thread ${prev})`);
    if (prev !== 0) tookOver = true;
    if (Atomics.compareExchange(h, W.consumerTid, prev, this.me) !== prev) throw new SwitchboardError('EADDRINUSE', 'another consumer attached at the same time');
    this.#head = Atomics.load(h, W.head) >>> 0;
    this.#published = this.#head;
    this.#tailCache = this.#head;
    // After a dead consumer, its partial message is lost: skip to the next message start.
    this.#synced = !tookOver;
    // (a dead consumer sleeps no more: its announcement goes with it)
    if (tookOver) Atomics.store(h, W.consumerMaySleep, 0);
    this.#nativeRead = this.spin.native;
    this.#nativeSleep = this.nativeCalls && !this.spin.forever;
    this.#sleepMs = this.#nativeSleep ? sleepMsFor(Infinity, this.livenessMs) : 0;
    this.#io[IO_MAX_WHOLE] = this.#maxWhole;
    this.#io[IO_CAP] = this.cap;
    this.#io[IO_POLLS] = this.spin.nativePolls;
  }

  /**
   * Producers attached now. The end of the stream is when every producer
   * that attached has detached, so in an MPSC ring let all producers attach
   * before the first one closes (wait for this count if needed).
   */
  get producers(): number {
    return Atomics.load(this.h, W.attached);
  }

  /** Messages dropped because their producer died part-way (MPSC). */
  get abortedMessages(): number {
    return this.#aborted;
  }

  /** True when a read would not wait (a message, the end, or an error is there). */
  get readReady(): boolean {
    if (this.#readyOff >= 0 || this.#ready !== null || this.#eof || this.#error !== undefined || this.closedLocal) return true;
    try {
      return this.#next() !== EMPTY || this.#ended();
    } catch (err) {
      this.#error = err as SwitchboardError;
      return true;
    }
  }

  /** The next message as a new Uint8Array, null at the end, undefined if none is there yet. */
  tryRead(): Uint8Array | null | undefined {
    const at = this.#peek();
    if (at >= 0) {
      const out = this.#copyOutNew(at, this.#readyLen);
      this.#take();
      return out;
    }
    if (at === EMPTY) return this.#eofOrUndefined();
    const n = this.#poll();
    if (n === EMPTY) return this.#eofOrUndefined();
    let out: Uint8Array;
    if (this.#ready !== null) {
      out = this.#ready;
      this.#ready = null;
    } else {
      out = this.#copyOutNew(this.#readyOff, n);
      this.#release();
    }
    return out;
  }

  /**
   * n bytes of the data area from `at`, in a new array. slice() of shared
   * memory takes a much slower path in V8 than set() once past a few hundred
   * bytes (64 KiB: 37 us against 13 us here).
   */
  #copyOutNew(at: number, n: number): Uint8Array {
    if (n <= 256) return this.u8.slice(at, at + n);
    const out = new Uint8Array(n);
    out.set(this.u8.subarray(at, at + n));
    return out;
  }

  /**
   * Copy the next message into `target` without allocating: its length, null
   * at the end, undefined if none is there yet. EMSGSIZE (message kept) if
   * `target` is too small.
   */
  tryReadInto(target: Uint8Array): number | null | undefined {
    // A reused target: one bound native call (no spin), after the checks #readNative makes.
    if (this.nativeCalls && (target === this.#b.buffer || target === this.#lastTarget)) {
      const n = this.#readNative(target, 0);
      if (n >= 0) return n;
      if (n === EMPTY) return this.#eofOrUndefined();
    } else this.#lastTarget = target;
    const at = this.#peek();
    if (at >= 0) {
      const n = this.#readyLen;
      if (n <= target.length) {
        this.#copyOut(at, n, target);
        this.#take();
        return n;
      }
    } else if (at === EMPTY) {
      return this.#eofOrUndefined();
    }
    const n = this.#poll();
    if (n === EMPTY) return this.#eofOrUndefined();
    if (n > target.length) throw new ProtocolError(`message of ${n} bytes does not fit in a ${target.length}-byte buffer`, { code: 'EMSGSIZE' });
    if (this.#ready !== null) {
      target.set(this.#ready);
      this.#ready = null;
    } else {
      this.#copyOut(this.#readyOff, n, target);
      this.#release();
    }
    return n;
  }

  /**
   * tryReadInto() for a caller that has a general path of its own: the
   * length of the message copied into `target`; -1 when no record is there
   * (which is also how the end looks: after every producer closed, tryRead()
   * says null; an empty poll stays this cheap); -2 when the record there
   * needs the general path (a message longer than `target`, fragments,
   * padding). Corruption still throws RingCorruptError. Reusing one target
   * makes it one native call per message.
   */
  tryReadSmall(target: Uint8Array): number {
    if (this.nativeCalls && (target === this.#b.buffer || target === this.#lastTarget)) {
      // (a length, EMPTY = -1, or anything else as SLOW = -2: the general path)
      const n = this.#readNative(target, 0);
      return n >= EMPTY ? n : SLOW;
    }
    this.#lastTarget = target;
    const at = this.#peek();
    if (at >= 0) {
      const n = this.#readyLen;
      if (n > target.length) return -2;
      this.#copyOut(at, n, target);
      this.#take();
      return n;
    }
    return at === EMPTY ? -1 : -2;
  }

  /**
   * tryReadSmall(), but while the ring is empty spin in C for up to
   * `budgetNs` nanoseconds on the producer's index (no sleep, no clock read
   * in JS): the message's length, -1 when none came in time, -2 when the
   * next message is not a small whole one (take it with consumeRaw). Where
   * this consumer does not spin (one CPU, 'block' mode, no C spin) it looks
   * once, as tryReadSmall() does.
   */
  tryReadSmallSpin(target: Uint8Array, budgetNs: number): number {
    if (this.#nativeRead && budgetNs >= 1) {
      const n = this.#readNative(target, Math.min(Math.floor(budgetNs), MAX_SPIN_NS));
      return n >= EMPTY ? n : SLOW;
    }
    return this.tryReadSmall(target);
  }

  /**
   * Hand every message already in the ring to `fn` (at most `max`), with one
   * head update for the batch; returns the count. The view is valid only
   * during the call (the bytes are reused once it returns): copy what you
   * keep. Each message costs one small view object (a fragmented message,
   * its reassembly buffer); consumeRaw() allocates nothing at all.
   */
  consume(fn: (message: Uint8Array) => void, max = Infinity): number {
    const outer = this.#viewFn;
    this.#viewFn = fn;
    try {
      return this.consumeRaw(this.#asView, max);
    } finally {
      this.#viewFn = outer;
    }
  }

  /** consume()'s callback, and the one adapter (made once, not per call) that hands it views. */
  #viewFn: ((message: Uint8Array) => void) | undefined;
  readonly #asView = (bytes: Uint8Array, offset: number, length: number): void => {
    (this.#viewFn as (message: Uint8Array) => void)(offset === 0 && length === bytes.length ? bytes : bytes.subarray(offset, offset + length));
  };

  /**
   * consume() without any allocation: `fn(bytes, offset, length)` gets the
   * message as `bytes[offset .. offset + length)`, where `bytes` is the
   * ring's data area (or a reassembly buffer for a fragmented message),
   * valid only during the call.
   */
  consumeRaw(fn: (bytes: Uint8Array, offset: number, length: number) => void, max = Infinity): number {
    let count = 0;
    try {
      while (count < max) {
        const at = this.#peek();
        if (at >= 0) {
          const n = this.#readyLen;
          this.#skip();
          fn(this.u8, at, n);
        } else {
          if (at === EMPTY) break;
          const n = this.#poll(false);
          if (n === EMPTY) break;
          if (this.#ready !== null) {
            const m = this.#ready;
            this.#ready = null;
            fn(m, 0, n);
          } else {
            const off = this.#readyOff;
            this.#release(false);
            fn(this.u8, off, n);
          }
        }
        count++;
      }
    } finally {
      this.#publishHead();
    }
    return count;
  }

  /** Block this thread until a message is there: the message, or null at the end. */
  readSync(options?: { timeoutMs?: number | undefined }): Uint8Array | null {
    const deadline = deadlineOf(options?.timeoutMs);
    for (;;) {
      const r = this.tryRead();
      if (r !== undefined) return r;
      this.#waitDataSync(deadline);
    }
  }

  /** readSync() into a caller's buffer: the length, or null at the end. */
  readIntoSync(target: Uint8Array, options?: { timeoutMs?: number | undefined }): number | null {
    // The hot path: a reused (bound) target, no deadline, nothing pending. One native call spins,
    // sleeps if it must, and takes the message; anything else goes the general way, from the
    // same head. It repeats what #readNative does, inline: going through it made a 64-byte spin
    // round trip between two processes 7-13% slower (measured in turn). Small enough (under V8's
    // 460 bytes of bytecode) for V8 to inline it into the caller; booleans compared with === so
    // that V8 compares one word instead of converting a field of any type.
    if (options === undefined && target === this.#b.buffer && this.#nativeRead === true && this.#nothingPending()) {
      const forced = this.spin.forever;
      const b = forced === true ? SPIN_SLICE : this.spin.budget();
      // (a consumer sleeps in C once it has announced that it may sleep: see arm())
      const sleep = this.armed === true ? this.#sleepMs : 0;
      if (b !== NO_SPIN || sleep > 0) {
        const io = this.#primeBound(b, sleep);
        const n = readBound(this.#b.slot, target.length);
        // (a store only after a read that could sleep: this runs between a message's arrival and the answer)
        if (sleep !== 0) io[IO_SLEEP] = 0;
        if (n >= 0) {
          // (our head and the tail seen are updated in #io, and the head is published: see #head)
          if (io[IO_WOKE] !== 0 || forced === false || this.armed === true) this.#afterReadBound(b, forced);
          return n;
        }
        const r = this.#missBound(n, b, sleep, target);
        if (r !== undefined) return r;
      }
    }
    return this.#readIntoSyncGeneral(target, options);
  }

  /** Nothing taken apart or pending, in step with the producers, open: the native read may take the next message. */
  #nothingPending(): boolean {
    return this.#readyOff < 0 && this.#ready === null && this.#partial === null && this.#error === undefined && this.#synced === true && this.closedLocal === false;
  }

  /** The io words of a bound read that change from call to call: the spin budget `b` and the sleep (head and tail live there already: see #head). */
  #primeBound(b: number, sleep: number): Int32Array {
    const io = this.#io;
    io[IO_BUDGET] = b > 0 ? b : 0;
    io[IO_ROUNDS] = b < 0 ? SPIN_ROUNDS : 0;
    io[IO_SLEEP] = sleep;
    return io;
  }

  /** After a bound read: note a wake-up, keep the spin policy's score (a forced spin keeps none), count quiet reads. */
  #afterReadBound(b: number, forced: boolean): void {
    if (this.#io[IO_WOKE] !== 0) this.countWake();
    if (forced === false) this.#scoreBound(b);
    if (this.armed === true) this.countQuiet(this.#io[IO_SLEPT] !== 0);
  }

  /** The hot path's score for the spin policy, as #afterNative and the general path keep it (a forced spin keeps none). */
  #scoreBound(b: number): void {
    const io = this.#io;
    if (io[IO_SPIN] !== 0) this.spin.settle(io[IO_SPIN] as SpinResult);
    else if (b === NO_SPIN && io[IO_SLEPT] !== 0) this.spin.settle(0);
  }

  /**
   * The hot path took nothing (n < 0): the spin's outcome is settled and a
   * corrupt ring throws, as #afterNative does; woken with nothing to take (the
   * end, a spurious wake-up), look and check as the general path does. A
   * result, or undefined for the general path.
   */
  #missBound(n: number, b: number, sleep: number, target: Uint8Array): number | null | undefined {
    if (b === NO_SPIN && this.#io[IO_SLEPT] !== 0) this.spin.settle(0);
    this.#afterNative(n, b);
    if (n === EMPTY && sleep > 0) {
      const r = this.tryReadInto(target);
      if (r !== undefined) return r;
      this.checkProducers();
    }
    return undefined;
  }

  /** readIntoSync() off its hot path (kept apart so that the hot path is small enough for V8 to inline). */
  #readIntoSyncGeneral(target: Uint8Array, options: { timeoutMs?: number | undefined } | undefined): number | null {
    const deadline = deadlineOf(options?.timeoutMs);
    for (;;) {
      let spun = false;
      // One native call spins (as the policy says), sleeps on the futex when nothing came,
      // and takes the message (the usual case): a thread woken from its sleep then runs very
      // little before the message is in `target`. Anything else takes the JS path below.
      const budget = this.#nativeRead ? this.spin.budget() : NO_SPIN;
      const sleep = this.#nativeSleep && this.armed ? sleepMsFor(deadline, this.livenessMs) : 0;
      if (budget !== NO_SPIN || sleep > 0) {
        const n = this.#readNativeSleeping(target, budget, sleep);
        if (n >= 0) return n;
        if (n === EMPTY && sleep > 0) {
          // Woken with nothing to take (the end, a timeout, a spurious wake-up): look, check, wait again.
          const r = this.tryReadInto(target);
          if (r !== undefined) return r;
          this.checkProducers();
          if (remaining(deadline) === 0) throw new TimeoutError('timed out waiting for a ring message');
          continue;
        }
        spun = n === EMPTY;
      }
      // Anything else (the end, padding, fragments, errors): the general path, from the same head.
      const r = this.tryReadInto(target);
      if (r !== undefined) return r;
      this.#waitDataSync(deadline, spun);
    }
  }

  /** Block this thread until a read would not wait (message, end or error), without consuming. */
  readableSync(options: { timeoutMs?: number | undefined } = {}): void {
    const deadline = deadlineOf(options.timeoutMs);
    while (!this.readReady) this.#waitDataSync(deadline);
  }

  /** The next message without blocking the event loop; null at the end. */
  async read(options: WaitOptions = {}): Promise<Uint8Array | null> {
    const first = this.tryRead();
    if (first !== undefined) return first;
    const deadline = deadlineOf(options.timeoutMs);
    for (;;) {
      await this.#waitDataAsync(deadline, options.signal);
      const r = this.tryRead();
      if (r !== undefined) return r;
    }
  }

  /** Resolves when a read would not wait (message, end or error), without consuming. */
  async readable(options: WaitOptions = {}): Promise<void> {
    const deadline = deadlineOf(options.timeoutMs);
    while (!this.readReady) await this.#waitDataAsync(deadline, options.signal);
  }

  /** Close the reading end: producers get EPIPE; pending reads end. Idempotent. */
  close(): void {
    if (this.closedLocal) return;
    this.closedLocal = true;
    const h = this.h;
    Atomics.or(h, W.closed, CLOSED_BY_CONSUMER);
    Atomics.compareExchange(h, W.consumerTid, this.me, 0);
    this.disarm();
    futexWake(h, W.head, Infinity);
    this.#b.release(this);
    this.#lastTarget = null;
    this.#cancelWait?.();
    this.#wakeWaiter?.();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ----------------------------------------------------------------- internals

  /**
   * The blocking read's hot path in C (the addon's ringRead): with nothing
   * pending, spin on the tail with the policy's budget `b` (not NO_SPIN),
   * then check and copy a whole message at the head into `target`, publish
   * the head and wake a sleeping producer, all in one call. Returns the
   * length, EMPTY (the spin gave up) or SLOW (take the general path: the
   * end, padding, fragments, aborts, a message too big for `target`). The C
   * code checks the shared indices as #next() does: impossible ones throw
   * RingCorruptError here.
   */
  #readNative(target: Uint8Array, b: number): number {
    if (this.#readyOff >= 0 || this.#ready !== null || this.#partial !== null || this.#error !== undefined || this.closedLocal || !this.#synced) return SLOW;
    const io = this.#io;
    io[IO_BUDGET] = b > 0 ? b : 0;
    io[IO_ROUNDS] = b < 0 ? SPIN_ROUNDS : 0;
    let n: number;
    if (target === this.#b.buffer || (target === this.#lastTarget && this.#b.bind(this, target))) {
      // (the current length: a buffer that shrank or was detached since it was bound is never overrun)
      n = readBound(this.#b.slot, target.length);
    } else {
      this.#lastTarget = target;
      n = addon().ringRead(this.h, target, io);
    }
    return this.#afterNative(n, b);
  }

  /**
   * #readNative() that may also sleep in C for up to `sleep` ms (0: no sleep),
   * and counts such a sleep, planned without a spin, as a wait of the spin
   * policy (see SpinPolicy.settle).
   */
  #readNativeSleeping(target: Uint8Array, b: number, sleep: number): number {
    const io = this.#io;
    io[IO_SLEEP] = sleep;
    io[IO_SLEPT] = 0; // (#readNative may decline before the native call)
    const n = this.#readNative(target, b);
    io[IO_SLEEP] = 0;
    if (b === NO_SPIN && io[IO_SLEPT] !== 0) this.spin.settle(0);
    return n;
  }

  /** The bookkeeping after ringRead / ringReadBound returned n (see #readNative). */
  #afterNative(n: number, b: number): number {
    const io = this.#io;
    const spin = this.spin;
    if (n >= 0) {
      this.#published = this.#head;
      if (io[IO_WOKE] !== 0) this.countWake();
      if (io[IO_SPIN] !== 0) spin.settle(io[IO_SPIN] as SpinResult);
      if (this.armed) this.countQuiet(io[IO_SLEPT] !== 0);
      return n;
    }
    if (n === RR_BAD_ARGS || n === RR_BAD_SLOT) throw new SwitchboardError('EINVAL', `ring read: ${n === RR_BAD_ARGS ? 'spin parameters out of range' : 'slot not bound'}`);
    if (n === EMPTY) {
      // (b = NO_SPIN: a look without a wait (tryReadInto, tryReadSmall), which the spin policy must not count)
      if (b !== NO_SPIN) spin.settle(io[IO_SPIN] as SpinResult);
      return EMPTY;
    }
    if (io[IO_SPIN] !== 0) spin.settle(io[IO_SPIN] as SpinResult);
    if (n === RR_BAD_INDICES) this.#failCorrupt(`impossible indices (tail - head = ${(io[IO_DETAIL] as number) >>> 0})`);
    if (n === RR_BAD_RECORD) {
      this.#failCorrupt(`record of ${(io[IO_DETAIL] as number) >>> 0} bytes runs past the data (${(this.#tailCache - this.#head) >>> 0} bytes published)`);
    }
    return SLOW;
  }

  /** #corrupt(), with the error kept (sticky) as #poll() keeps it. */
  #failCorrupt(what: string): never {
    try {
      this.#corrupt(what);
    } catch (err) {
      this.#error = err as SwitchboardError;
      throw err;
    }
  }

  /**
   * The hot path of every read: with nothing pending (no error, no message
   * half taken, no fragments held), the offset in the data area of a whole
   * message at the head, after the checks that matter done once: the
   * published byte count, record type, length (within the ring and
   * maxMessageSize) and extent. EMPTY when nothing is published; SLOW for
   * anything else (padding, fragments, aborts, or corruption, which #next()
   * then reports). Sets #readyLen and #readySize, not #readyOff.
   */
  #peek(): number {
    if (this.#readyOff >= 0 || this.#ready !== null || this.#partial !== null || this.#error !== undefined || this.closedLocal) return SLOW;
    const head = this.#head;
    let used = (this.#tailCache - head) >>> 0;
    if (used === 0) {
      // Read the producer's line only when what we saw last is used up.
      this.#tailCache = Atomics.load(this.h, W.tail) >>> 0;
      used = (this.#tailCache - head) >>> 0;
      if (used === 0) return EMPTY;
    }
    const pos = head & this.mask;
    const w = pos >> 2;
    const len = (this.d32[w] as number) >>> 0;
    if (this.d32[w + 1] !== REC_WHOLE || len > this.#maxWhole || used > this.cap) return SLOW;
    const size = (len + (REC_HEADER + 7)) & ~7;
    if (size > used || pos + size > this.cap || (used & 7) !== 0 || !this.#synced) return SLOW;
    this.#readyLen = len;
    this.#readySize = size;
    return pos + REC_HEADER;
  }

  /** Consume the message #peek() found and publish the head. */
  #take(): void {
    this.#head = (this.#head + this.#readySize) >>> 0;
    this.#publishHead();
  }

  /** Consume the message #peek() found; the caller publishes the head. */
  #skip(): void {
    this.#head = (this.#head + this.#readySize) >>> 0;
  }

  /**
   * Copy n bytes at `at` (8-aligned) of the data area to the start of
   * `target`. Small messages go word by word through an Int32Array over the
   * target, kept while the caller reuses the same buffer, so there is no
   * view to allocate; larger ones through one subarray and set().
   */
  #copyOut(at: number, n: number, target: Uint8Array): void {
    if (n === 0) return;
    if (n <= SMALL_COPY) {
      if (this.#t8 !== target) {
        this.#t8 = target;
        this.#t32 = (target.byteOffset & 3) === 0 ? new Int32Array(target.buffer, target.byteOffset, target.length >> 2) : null;
      }
      const t32 = this.#t32;
      const words = n >> 2;
      // (a view over a buffer shrunk since is empty: then the set() below)
      if (t32 !== null && words <= t32.length) {
        const d32 = this.d32;
        const w0 = at >> 2;
        for (let i = 0; i < words; i++) t32[i] = d32[w0 + i] as number;
        const u8 = this.u8;
        for (let i = words << 2; i < n; i++) target[i] = u8[at + i] as number;
        return;
      }
    }
    target.set(this.u8.subarray(at, at + n));
  }

  #eofOrUndefined(): null | undefined {
    if (this.#eof) return null;
    if (this.#ended()) {
      this.#eof = true;
      return null;
    }
    return undefined;
  }

  /** #next() with the sticky error and closed checks. */
  #poll(publish = true): number {
    if (this.#error) throw this.#error;
    if (this.closedLocal) throw new SwitchboardError('ECLOSED', 'ring consumer is closed');
    if (this.#readyOff >= 0) return this.#readyLen;
    if (this.#ready !== null) return this.#ready.length;
    try {
      const n = this.#next();
      if (n === EMPTY && publish) this.#publishHead();
      return n;
    } catch (err) {
      this.#error = err as SwitchboardError;
      this.#publishHead();
      throw err;
    }
  }

  #corrupt(what: string): never {
    throw new RingCorruptError(`${what} (head ${this.#head}, capacity ${this.cap})`);
  }

  /**
   * Walk records until a whole message is ready; returns its length or EMPTY.
   * Every length and type read from shared memory is checked before use.
   */
  #next(): number {
    const h = this.h;
    const cap = this.cap;
    const d32 = this.d32;
    for (;;) {
      // Read the producer's line only when what we saw last is used up.
      let used = (this.#tailCache - this.#head) >>> 0;
      if (used === 0) {
        this.#tailCache = Atomics.load(h, W.tail) >>> 0;
        used = (this.#tailCache - this.#head) >>> 0;
        if (used === 0) return EMPTY;
      }
      if (used > cap || (used & 7) !== 0) this.#corrupt(`impossible indices (tail - head = ${used})`);
      const pos = this.#head & this.mask;
      const w = pos >> 2;
      const len = (d32[w] as number) >>> 0;
      const type = d32[w + 1] as number;
      if (type === REC_PAD) {
        const skip = cap - pos;
        if (skip > used || len !== skip - REC_HEADER) this.#corrupt(`bad padding record (length ${len})`);
        this.#head = (this.#head + skip) >>> 0;
        continue;
      }
      if (len > cap) this.#corrupt(`record length ${len} exceeds the ring`);
      const size = REC_HEADER + align8(len);
      if (size > used || pos + size > cap) this.#corrupt(`record of ${size} bytes runs past the data (${used} bytes published)`);
      const at = pos + REC_HEADER;
      switch (type) {
        case REC_WHOLE:
          if (this.#partial !== null) this.#corrupt('a whole message inside a fragmented one');
          this.#synced = true;
          if (len > this.#maxMessage) {
            throw new ProtocolError(`message of ${len} bytes exceeds maxMessageSize ${this.#maxMessage}`, { code: 'EMSGSIZE' });
          }
          this.#readyOff = at;
          this.#readyLen = len;
          this.#readySize = size;
          return len;
        case REC_FIRST: {
          if (this.#partial !== null) this.#corrupt('a message start inside a fragmented message');
          if (len < FIRST_EXTRA) this.#corrupt('first fragment too short');
          const total = (d32[w + 2] as number) >>> 0;
          const chunk = len - FIRST_EXTRA;
          if (total > this.#maxMessage) throw new ProtocolError(`message of ${total} bytes exceeds maxMessageSize ${this.#maxMessage}`, { code: 'EMSGSIZE' });
          if (chunk > total || (chunk === total && total > 0)) this.#corrupt(`first fragment of ${chunk} bytes for a message of ${total}`);
          this.#synced = true;
          this.#partial = new Uint8Array(total);
          this.#partial.set(this.u8.subarray(at + FIRST_EXTRA, at + FIRST_EXTRA + chunk));
          this.#filled = chunk;
          this.#head = (this.#head + size) >>> 0;
          this.#publishHead();
          continue;
        }
        case REC_MIDDLE:
        case REC_LAST: {
          const partial = this.#partial;
          if (partial === null) {
            if (!this.#synced) {
              this.#head = (this.#head + size) >>> 0;
              continue;
            }
            this.#corrupt('a message continuation without a start');
          }
          if (this.#filled + len > partial.length) this.#corrupt('fragments longer than their message');
          partial.set(this.u8.subarray(at, at + len), this.#filled);
          this.#filled += len;
          this.#head = (this.#head + size) >>> 0;
          if (type === REC_MIDDLE) {
            this.#publishHead();
            continue;
          }
          if (this.#filled !== partial.length) this.#corrupt('last fragment before the message was complete');
          this.#partial = null;
          this.#ready = partial;
          return partial.length;
        }
        case REC_ABORT:
          if (this.#partial !== null) this.#aborted++;
          this.#partial = null;
          this.#head = (this.#head + size) >>> 0;
          continue;
        default:
          this.#corrupt(`unknown record type ${type}`);
      }
    }
  }

  /** Consume the ready in-ring message. */
  #release(publish = true): void {
    this.#head = (this.#head + this.#readySize) >>> 0;
    this.#readyOff = -1;
    if (publish) this.#publishHead();
  }

  #publishHead(): void {
    // Only this consumer stores the shared head: compare with what we stored last, not the shared word.
    if (this.#published === this.#head) return;
    const h = this.h;
    this.#published = this.#head;
    Atomics.store(h, W.head, this.#head | 0);
    // (producers that never announced they may sleep are not asleep: no look at their flag)
    if (h[W.producerMaySleep] !== 0 && Atomics.load(h, W.producerSleeping) !== 0 && Atomics.compareExchange(h, W.producerSleeping, 1, 0) === 1) {
      this.countWake();
      futexWake(h, W.head, 1);
    }
  }

  /**
   * True at a clean end: every producer that attached has detached and all
   * was read. Throws ECONNRESET when a producer died without closing or
   * left a message unfinished.
   */
  #ended(): boolean {
    const h = this.h;
    if (Atomics.load(h, W.everAttached) === 0 || Atomics.load(h, W.attached) > 0) return false;
    if ((Atomics.load(h, W.tail) >>> 0) !== this.#head) return false;
    if (this.#partial !== null) this.#fail('the producer went away in the middle of a message');
    if (Atomics.load(h, W.producerDied) !== 0) this.#fail('the producer died without closing the ring');
    return true;
  }

  #fail(message: string): never {
    this.#error = new SwitchboardError('ECONNRESET', message);
    throw this.#error;
  }

  /** After a sleep timed out: detach producers whose thread is gone. */
  #reapDeadProducers(): void {
    const h = this.h;
    for (let i = 0; i < RING_MAX_PRODUCERS; i++) {
      const idx = W.producers + i;
      const tid = Atomics.load(h, idx);
      if (tid !== 0 && !isAlive(tid) && Atomics.compareExchange(h, idx, tid, 0) === tid) {
        Atomics.store(h, W.producerDied, 1);
        Atomics.sub(h, W.attached, 1);
      }
    }
  }

  /**
   * Look for attached producers whose thread has died, at most once per
   * livenessMs (cheap otherwise): a reader that only polls and never waits
   * here (a blocking receive spinning over several rings) calls it now and
   * then, so that a dead producer ends the ring as a wait would have found.
   */
  checkProducers(): void {
    if (this.livenessDue()) this.#reapDeadProducers();
  }

  /** Wait for the tail to move: spin (unless `spun`: the caller just did), then sleep on a futex. */
  #waitDataSync(deadline: number, spun = false): void {
    const h = this.h;
    const head = this.#head | 0;
    if (!spun && this.spin.spinWhile(h, W.tail, head)) return;
    if (this.spin.forever) {
      if (this.livenessDue()) this.#reapDeadProducers();
      if (remaining(deadline) === 0) throw new TimeoutError('timed out waiting for a ring message');
      return;
    }
    if (!this.armed && this.arm(W.consumerMaySleep, W.tail, head)) return;
    Atomics.store(h, W.consumerSleeping, 1);
    if (Atomics.load(h, W.tail) !== head || this.#ended()) {
      Atomics.store(h, W.consumerSleeping, 0);
      return;
    }
    const left = remaining(deadline);
    if (left === 0) {
      Atomics.store(h, W.consumerSleeping, 0);
      throw new TimeoutError('timed out waiting for a ring message');
    }
    this.quiet = 0;
    const r = futexWait(h, W.tail, head, Math.min(left, this.livenessMs));
    Atomics.store(h, W.consumerSleeping, 0);
    if (r === 'timed-out') this.#reapDeadProducers();
  }

  async #waitDataAsync(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const h = this.h;
    if (signal?.aborted) throw new AbortError();
    if (this.closedLocal) throw new SwitchboardError('ECLOSED', 'ring consumer is closed');
    const head = this.#head | 0;
    // Spin on the loop first (time-bounded, adaptive): a reply that comes within a futex
    // wake-up's time is taken at once instead of through the helper thread and the loop.
    if (this.spin.spinWhile(h, W.tail, head)) return;
    if (!this.armed && this.arm(W.consumerMaySleep, W.tail, head)) return;
    Atomics.store(h, W.consumerSleeping, 1);
    if (Atomics.load(h, W.tail) !== head || this.#ended()) {
      Atomics.store(h, W.consumerSleeping, 0);
      return;
    }
    const left = remaining(deadline);
    if (left === 0) {
      Atomics.store(h, W.consumerSleeping, 0);
      throw new TimeoutError('timed out waiting for a ring message');
    }
    const r = await new Promise<string>((resolve) => {
      const finish = (x: string): void => {
        this.#cancelWait = undefined;
        this.#wakeWaiter = undefined;
        signal?.removeEventListener('abort', onAbort);
        resolve(x);
      };
      this.quiet = 0;
      const cancel = futexWaitCallback(h, W.tail, head, Math.min(left, this.livenessMs), true, finish);
      const onAbort = (): void => {
        cancel();
        finish('aborted');
      };
      this.#cancelWait = cancel;
      this.#wakeWaiter = () => finish('closed');
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    Atomics.store(h, W.consumerSleeping, 0);
    if (r === 'aborted') throw new AbortError();
    if (r === 'closed') throw new SwitchboardError('ECLOSED', 'ring consumer is closed');
    if (r === 'timed-out') this.#reapDeadProducers();
  }
}
