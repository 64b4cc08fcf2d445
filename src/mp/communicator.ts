/**
 * A communicator: N ranks that exchange discrete messages (seed 12.2.2).
 * `send(to, msg)` and `receive({ from, buffer })` with a "don't care" sender
 * and tag; a receive buffer limits what is stored and longer messages are
 * truncated (the status says so); without a buffer any size arrives whole.
 * Collectives (collectives.ts) run on a second, hidden context of the same
 * ranks so they never match user messages.
 */
import { ArgumentError, SwitchboardError } from '../errors.js';
import { ANY, type Engine, type Msg, type WaitOptions } from './engine.js';
import { MessageTooLargeError } from './errors.js';
import type { Envelope } from './link.js';
import { Request } from './request.js';
import {
  KIND_BYTES,
  KIND_TYPED,
  KIND_VALUE,
  bytesOf,
  decodePayload,
  encodeInto,
  type Encoded,
} from './payload.js';
import * as coll from './collectives.js';
import { CollTag } from './tags.js';
import type { Op } from './ops.js';
import type { TypedArray } from './payload.js';

export { ANY };

/** Largest tag a user may send (tags travel as signed 32-bit integers). */
export const MAX_TAG = 0x7fffffff;

export interface CommunicatorOptions {
  /** Messages larger than this are refused with MessageTooLargeError (default 256 MiB). */
  maxMessageSize?: number | undefined;
  /** Default limit for every blocking operation, in ms (default: none; a lost rank still fails them). */
  timeoutMs?: number | undefined;
  /**
   * Typed allreduce switches from recursive doubling to the ring algorithm at
   * this many bytes (default 1 MiB; never on 2 ranks, where the ring only adds
   * a message). MPICH switches at 2 KiB; a JS message costs tens of
   * microseconds, so the crossover sits much higher here.
   */
  allreduceRingBytes?: number | undefined;
  /** Typed bcast switches from the binomial tree to scatter + ring allgather at this many bytes (default 512 KiB). */
  bcastLargeBytes?: number | undefined;
  /**
   * How a receive that finds nothing waits. 'poll' spins on the links (rings
   * and sockets read directly) for up to `spinUs` before sleeping, like
   * MPI's busy-polling progress: the lowest latency, when every rank has a
   * core. 'yield' sleeps in the event loop at once: the right choice when
   * ranks outnumber cores. Default: 'yield' (`switchboard run` picks 'poll'
   * when a host has at least as many cores as ranks). Worker-thread ranks
   * (MessagePorts) always yield.
   */
  progress?: 'poll' | 'yield' | undefined;
  /** With progress 'poll': how long one receive spins before sleeping, in microseconds (default 1000). */
  spinUs?: number | undefined;
}

export const DEFAULT_SPIN_US = 1000;
/** Largest message a communicator takes unless told otherwise (256 MiB). */
export const DEFAULT_MAX_MESSAGE = 256 * 1024 * 1024;

export interface OpOptions {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface SendOptions extends OpOptions {
  tag?: number | undefined;
  /**
   * Hand the data's buffer over instead of copying it where the transport can
   * (worker threads): the array is detached from the sender afterwards.
   */
  transfer?: boolean | undefined;
}

export interface ReceiveOptions extends OpOptions {
  /** A rank, or ANY (default). */
  from?: number | undefined;
  /** A tag, or ANY (default). */
  tag?: number | undefined;
  /** Store the message here; a longer message is truncated to the buffer's size. */
  buffer?: ArrayBufferView | undefined;
}

export type DataKind = 'bytes' | 'typed' | 'value';

export interface Status<T = unknown> {
  source: number;
  tag: number;
  /** The size of the message as sent, in bytes. */
  size: number;
  /** True when the message was longer than the receive buffer and its tail was dropped. */
  truncated: boolean;
  /**
   * Without a buffer: what was sent (Uint8Array, the same typed array type,
   * or the structured value). With a buffer: a view of the buffer (same type)
   * over the bytes stored.
   */
  data: T;
}

export interface ProbeStatus {
  source: number;
  tag: number;
  size: number;
  kind: DataKind;
}

const KIND_NAMES: readonly DataKind[] = ['bytes', 'typed', 'value'];



function checkView(buffer: unknown): asserts buffer is ArrayBufferView {
  if (!ArrayBuffer.isView(buffer)) {
    throw new ArgumentError(`receive buffer must be a Uint8Array, typed array, Buffer or DataView, got ${buffer === null ? 'null' : typeof buffer}`);
  }
}

/**
 * A view of the same type as `buffer` over its first `bytes` bytes (`buffer`
 * itself when that is all of it). `all`: the buffer's size in bytes (the
 * length of its byte view: reading byteLength is a slow builtin call in Node 20).
 */
function viewLike(buffer: ArrayBufferView, bytes: number, all: number): ArrayBufferView {
  if (bytes === all) return buffer;
  if (buffer instanceof DataView) return new DataView(buffer.buffer, buffer.byteOffset, bytes);
  const t = buffer as TypedArray;
  return t.subarray(0, Math.floor(bytes / t.BYTES_PER_ELEMENT));
}

/** A receive's checked arguments (see receiveArgs()). */
interface ReceiveArgs {
  src: number;
  tag: number;
  buffer: ArrayBufferView | undefined;
  into: Uint8Array | undefined;
}

const NO_BYTES = new Uint8Array(0);

export class Communicator {
  readonly rank: number;
  readonly size: number;
  /** World rank of each rank of this communicator. */
  readonly group: readonly number[];
  /** Context id of point-to-point traffic (collectives use ctx + 1). */
  readonly ctx: number;
  readonly options: Readonly<Required<{ [K in Exclude<keyof CommunicatorOptions, 'progress' | 'spinUs'>]: number }>>;
  /** @internal */
  readonly engine: Engine;
  private readonly local: Map<number, number>;
  /** The same by index (world rank -> local rank, -1 when not a member): read on every receive. */
  private readonly localOf: Int32Array;
  /** waitOpts() of a call that sets neither a timeout nor a signal. */
  private readonly defaultWait: WaitOptions;
  /** The envelope of every blocking send, refilled each time (the engine and link keep nothing of it). */
  private readonly syncEnv: Envelope;
  /** receiveArgs()'s answer, refilled each time (read at once by the caller). */
  private readonly args: ReceiveArgs = { src: ANY, tag: ANY, buffer: undefined, into: undefined };
  private closed = false;

  /** @internal: use init(), runThreads() or split(). */
  constructor(engine: Engine, group: readonly number[], ctx: number, options: CommunicatorOptions = {}) {
    this.engine = engine;
    this.group = group;
    this.ctx = ctx;
    this.size = group.length;
    this.local = new Map(group.map((w, i) => [w, i]));
    this.localOf = new Int32Array(Math.max(engine.size, ...group.map((w) => w + 1))).fill(-1);
    group.forEach((w, i) => (this.localOf[w] = i));
    const me = this.local.get(engine.rank);
    if (me === undefined) throw new ArgumentError('this rank is not in the group');
    this.rank = me;
    this.syncEnv = { ctx, tag: 0, kind: KIND_BYTES, dtype: 0, bytes: NO_BYTES };
    this.options = {
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE,
      timeoutMs: options.timeoutMs ?? 0,
      allreduceRingBytes: options.allreduceRingBytes ?? 1024 * 1024,
      bcastLargeBytes: options.bcastLargeBytes ?? 512 * 1024,
    };
    this.defaultWait = { timeoutMs: this.options.timeoutMs > 0 ? this.options.timeoutMs : undefined, signal: undefined };
    if (ctx === 0 && options.progress !== undefined) {
      const us = options.spinUs ?? DEFAULT_SPIN_US;
      if (options.progress !== 'poll' && options.progress !== 'yield') throw new ArgumentError(`progress must be 'poll' or 'yield', not ${String(options.progress)}`);
      if (!(us >= 0 && Number.isFinite(us))) throw new ArgumentError(`spinUs must be a finite number >= 0, not ${us}`);
      engine.spinUs = options.progress === 'poll' ? us : 0;
    }
    const isMember = (w: number): boolean => this.local.has(w);
    engine.registerContext(ctx, isMember);
    engine.registerContext(ctx + 1, isMember);
  }

  /** What carries the messages: 'port' (worker threads), 'unix', 'tcp', 'ring', 'self'. */
  get transport(): string {
    return this.engine.link.kind;
  }

  private checkOpen(): void {
    if (this.closed || this.engine.isClosed) throw new SwitchboardError('ECLOSED', 'the communicator is closed');
  }

  private checkRank(r: unknown, what: string): number {
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= this.size) {
      throw new ArgumentError(`${what} ${String(r)} is not a rank of this communicator (0..${this.size - 1})`);
    }
    return r;
  }

  private checkTag(t: unknown, allowAny: boolean): number {
    if (allowAny && t === ANY) return ANY;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > MAX_TAG) {
      throw new ArgumentError(`tag ${String(t)} must be an integer from 0 to ${MAX_TAG}${allowAny ? ' or ANY' : ''}`);
    }
    return t;
  }

  /** @internal */
  waitOpts(o: OpOptions | undefined): WaitOptions {
    // The usual call names neither: one object made once, not one per operation.
    if (o?.timeoutMs === undefined && o?.signal === undefined) return this.defaultWait;
    const t = o.timeoutMs ?? this.options.timeoutMs;
    return { timeoutMs: t > 0 ? t : undefined, signal: o?.signal };
  }

  /** @internal: world rank of a local rank. */
  world(r: number): number {
    return this.group[r] as number;
  }

  private checkSize(n: number): void {
    if (n > this.options.maxMessageSize) {
      throw new MessageTooLargeError(`message of ${n} bytes exceeds the maximum of ${this.options.maxMessageSize} bytes`);
    }
  }

  /**
   * Send `data` to rank `to`. Uint8Array/Buffer/DataView travel as bytes, other
   * typed arrays as themselves, anything else as a v8-serialized value.
   * Resolves when the transport has taken the message (the buffer may be reused).
   */
  send(to: number, data: unknown, options: SendOptions = {}): Promise<void> {
    try {
      const env = this.envelope(to, data, options.tag);
      return this.engine.send(this.world(to), env, options.transfer === true || env.kind === KIND_VALUE);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * send(), blocking: the message is in the transport when this returns, and
   * this thread never went back to the event loop (like MPI_Send). While the
   * transport is full it takes incoming messages, so two ranks sending to
   * each other at once do not deadlock. For ranks that do nothing else
   * meanwhile: timers, I/O and pending promises wait until it returns.
   * Over shared-memory rings and Unix/TCP sockets (EUNSUPPORTED between
   * worker MessagePorts); EBUSY while an isend to the same rank is still
   * queued; TimeoutError after `timeoutMs` (the communicator's default when
   * not given). `signal` is not looked at: nothing can abort while this
   * thread is busy.
   */
  sendSync(to: number, data: unknown, options: Omit<SendOptions, 'signal'> = {}): void {
    const env = this.syncEnv;
    try {
      this.fill(env, to, data, options.tag);
      this.engine.sendSync(this.world(to), env, options.timeoutMs ?? this.options.timeoutMs);
    } finally {
      env.bytes = NO_BYTES;
    }
  }

  /** A send's checked arguments as the envelope the engine takes. */
  private envelope(to: number, data: unknown, tag: number | undefined): Envelope {
    const env: Envelope = { ctx: this.ctx, tag: 0, kind: KIND_BYTES, dtype: 0, bytes: NO_BYTES };
    this.fill(env, to, data, tag);
    return env;
  }

  /** envelope() into `env` (its ctx is this communicator's). */
  private fill(env: Envelope, to: number, data: unknown, tag: number | undefined): void {
    this.checkOpen();
    this.checkRank(to, 'destination');
    env.tag = this.checkTag(tag ?? 0, false);
    encodeInto(env, data);
    this.checkSize(env.bytes.length);
  }

  isend(to: number, data: unknown, options: SendOptions = {}): Request<void> {
    return new Request(this.send(to, data, options));
  }

  /** `target`: the bytes of `buffer` (the receive made them already). */
  private status(m: Msg, buffer: ArrayBufferView | undefined, target: Uint8Array | undefined): Status {
    const source = this.localOf[m.src] ?? -1;
    const size = m.bytes.length;
    if (buffer === undefined) return { source, tag: m.tag, size, truncated: false, data: decodePayload(m.kind, m.dtype, m.bytes) };
    if (m.kind === KIND_VALUE) {
      throw new ArgumentError(`the message from rank ${source} (tag ${m.tag}) is a structured value; receive it without a buffer`);
    }
    target ??= bytesOf(buffer);
    const n = Math.min(size, target.length);
    const bytes = m.bytes;
    // A message may already be in place (the link wrote it into this buffer); a small one is
    // otherwise copied byte by byte (set() costs more than the copy below 64 bytes).
    if (bytes === target) {
      // (placed whole: nothing to copy)
    } else if (n <= 64) for (let i = 0; i < n; i++) target[i] = bytes[i]!;
    else if (bytes.buffer !== target.buffer || bytes.byteOffset !== target.byteOffset) target.set(n === size ? bytes : bytes.subarray(0, n));
    return { source, tag: m.tag, size, truncated: size > target.length, data: viewLike(buffer, n, target.length) };
  }

  /** Receive one message matching `from` and `tag` (both default to ANY). */
  receive<T = unknown>(options: ReceiveOptions = {}): Promise<Status<T>> {
    try {
      const { src, tag, buffer, into } = this.receiveArgs(options);
      // A message that is there already (or arrives while we spin) settles the call at once:
      // no async function, no extra turn of the microtask queue.
      const m = this.engine.take(this.ctx, src, tag, true, this.waitOpts(options), into);
      if (!(m instanceof Promise)) return Promise.resolve(this.status(m, buffer, into) as Status<T>);
      return m.then((msg) => this.status(msg, buffer, into) as Status<T>);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * receive(), blocking: polls the transport on this thread until a matching
   * message is there (as MPI_Recv spins in its progress engine, offering the
   * CPU to others every few microseconds), with the same matching, ordering,
   * truncation and status as receive(). For ranks that do nothing else
   * meanwhile. Past the spin budget, a receive from one rank over a ring
   * sleeps on the ring's futex; from ANY, or over sockets, it keeps polling
   * (its CPU stays busy). TimeoutError after `timeoutMs` (the communicator's default when
   * not given), the sender's PeerLostError when it dies or leaves;
   * EUNSUPPORTED between worker MessagePorts.
   */
  receiveSync<T = unknown>(options: Omit<ReceiveOptions, 'signal'> = {}): Status<T> {
    const { src, tag, buffer, into } = this.receiveArgs(options);
    const m = this.engine.takeSync(this.ctx, src, tag, true, options.timeoutMs ?? this.options.timeoutMs, into);
    return this.status(m, buffer, into) as Status<T>;
  }

  /** A receive's checked arguments: world source (or ANY), tag (or ANY), the buffer and its bytes. */
  private receiveArgs(options: ReceiveOptions): ReceiveArgs {
    this.checkOpen();
    const from = options.from === undefined || options.from === ANY ? ANY : this.checkRank(options.from, 'source');
    const tag = this.checkTag(options.tag ?? ANY, true);
    const buffer = options.buffer;
    let into: Uint8Array | undefined;
    if (buffer !== undefined) {
      checkView(buffer);
      into = bytesOf(buffer);
    }
    const a = this.args;
    a.src = from === ANY ? ANY : this.world(from);
    a.tag = tag;
    a.buffer = buffer;
    a.into = into;
    return a;
  }

  irecv<T = unknown>(options: ReceiveOptions = {}): Request<Status<T>> {
    return new Request(this.receive<T>(options));
  }

  /** Send to one rank and receive from another at once (neighbour exchange without deadlock). */
  async sendrecv<T = unknown>(to: number, data: unknown, options: ReceiveOptions & { sendTag?: number | undefined; transfer?: boolean | undefined } = {}): Promise<Status<T>> {
    const r = this.receive<T>(options);
    const s = this.send(to, data, { tag: options.sendTag ?? 0, transfer: options.transfer, timeoutMs: options.timeoutMs, signal: options.signal });
    const [st] = await Promise.all([r, s]);
    return st;
  }

  private probeStatus(m: Msg): ProbeStatus {
    return { source: this.local.get(m.src) ?? -1, tag: m.tag, size: m.bytes.length, kind: KIND_NAMES[m.kind] ?? 'bytes' };
  }

  /** Wait until a matching message is there and describe it without receiving it. */
  async probe(options: Omit<ReceiveOptions, 'buffer'> = {}): Promise<ProbeStatus> {
    this.checkOpen();
    const from = options.from === undefined || options.from === ANY ? ANY : this.checkRank(options.from, 'source');
    const tag = this.checkTag(options.tag ?? ANY, true);
    const m = await this.engine.wait(this.ctx, from === ANY ? ANY : this.world(from), tag, false, this.waitOpts(options));
    return this.probeStatus(m);
  }

  /** Describe a matching message if one is already there; undefined otherwise. */
  iprobe(options: Omit<ReceiveOptions, 'buffer' | 'timeoutMs' | 'signal'> = {}): ProbeStatus | undefined {
    this.checkOpen();
    const from = options.from === undefined || options.from === ANY ? ANY : this.checkRank(options.from, 'source');
    const tag = this.checkTag(options.tag ?? ANY, true);
    const m = this.engine.peek(this.ctx, from === ANY ? ANY : this.world(from), tag, false);
    return m === undefined ? undefined : this.probeStatus(m);
  }

  // ---- collective plumbing (internal) ----

  /** @internal: send on the collective context. */
  csend(to: number, enc: Encoded, tag: CollTag, owned = false): Promise<void> {
    this.checkSize(enc.bytes.length);
    return this.engine.send(this.world(to), { ctx: this.ctx + 1, tag, kind: enc.kind, dtype: enc.dtype, bytes: enc.bytes }, owned);
  }

  /** @internal: receive on the collective context (tag ANY allowed). */
  crecv(from: number, tag: CollTag | typeof ANY, o: OpOptions | undefined): Promise<Msg> {
    return this.engine.wait(this.ctx + 1, this.world(from), tag, true, this.waitOpts(o));
  }

  // ---- collectives ----

  /** Wait until every rank has called barrier (dissemination algorithm, ceil(log2 N) rounds). */
  async barrier(options?: OpOptions): Promise<void> {
    this.checkOpen();
    return coll.barrier(this, options);
  }

  /**
   * Broadcast from `root`. Typed arrays follow MPI: every rank passes an array
   * of the same length and it is filled in place (binomial tree; scatter + ring
   * allgather for large arrays). Values: non-roots pass undefined.
   */
  async bcast<T>(data: T, options: OpOptions & { root?: number | undefined } = {}): Promise<T> {
    this.checkOpen();
    return coll.bcast(this, data, this.checkRank(options.root ?? 0, 'root'), options);
  }

  /**
   * Root passes a typed array of N*k elements (each rank gets k, binomial
   * tree) or an array of N values (each rank gets one); others pass undefined.
   */
  scatter<T extends TypedArray>(data: T | undefined, options?: OpOptions & { root?: number | undefined }): Promise<T>;
  scatter<V>(data: readonly V[] | undefined, options?: OpOptions & { root?: number | undefined }): Promise<V>;
  async scatter(data: unknown, options: OpOptions & { root?: number | undefined } = {}): Promise<unknown> {
    this.checkOpen();
    return coll.scatter(this, data, this.checkRank(options.root ?? 0, 'root'), options);
  }

  /** Root passes a typed array and per-rank element counts (and optional displacements). */
  async scatterv<T extends TypedArray>(data: T | undefined, options: OpOptions & { root?: number | undefined; counts?: readonly number[] | undefined; displs?: readonly number[] | undefined }): Promise<T> {
    this.checkOpen();
    return coll.scatterv(this, data, this.checkRank(options.root ?? 0, 'root'), options.counts, options.displs, options) as Promise<T>;
  }

  /** Every rank's data at root: typed arrays of equal length concatenated in rank order (binomial tree), or an array of values. Others get undefined. */
  gather<T extends TypedArray>(data: T, options?: OpOptions & { root?: number | undefined }): Promise<T | undefined>;
  gather<V>(data: V, options?: OpOptions & { root?: number | undefined }): Promise<V[] | undefined>;
  async gather(data: unknown, options: OpOptions & { root?: number | undefined } = {}): Promise<unknown> {
    this.checkOpen();
    return coll.gather(this, data, this.checkRank(options.root ?? 0, 'root'), options);
  }

  /** Typed arrays of any length per rank, concatenated at root with the counts. */
  async gatherv<T extends TypedArray>(data: T, options: OpOptions & { root?: number | undefined } = {}): Promise<{ data: T; counts: number[]; displs: number[] } | undefined> {
    this.checkOpen();
    return coll.gatherv(this, data, this.checkRank(options.root ?? 0, 'root'), options) as Promise<{ data: T; counts: number[]; displs: number[] } | undefined>;
  }

  /** gather to everyone (recursive doubling for small power-of-two groups, ring otherwise). */
  allgather<T extends TypedArray>(data: T, options?: OpOptions): Promise<T>;
  allgather<V>(data: V, options?: OpOptions): Promise<V[]>;
  async allgather(data: unknown, options: OpOptions = {}): Promise<unknown> {
    this.checkOpen();
    return coll.allgather(this, data, options);
  }

  /** Reduce typed arrays of equal length element-wise to root (binomial tree). Others get undefined. */
  async reduce<T extends TypedArray>(data: T, op: Op<T>, options: OpOptions & { root?: number | undefined } = {}): Promise<T | undefined> {
    this.checkOpen();
    return coll.reduce(this, data, op as Op, this.checkRank(options.root ?? 0, 'root'), options) as Promise<T | undefined>;
  }

  /** Reduce to every rank (recursive doubling for small, ring reduce-scatter + allgather for large). */
  async allreduce<T extends TypedArray>(data: T, op: Op<T>, options: OpOptions = {}): Promise<T> {
    this.checkOpen();
    return coll.allreduce(this, data, op as Op, options) as Promise<T>;
  }

  /** Block i of each rank's data goes to rank i: typed arrays of N*k elements, or arrays of N values. */
  alltoall<T extends TypedArray>(data: T, options?: OpOptions): Promise<T>;
  alltoall<V>(data: readonly V[], options?: OpOptions): Promise<V[]>;
  async alltoall(data: unknown, options: OpOptions = {}): Promise<unknown> {
    this.checkOpen();
    return coll.alltoall(this, data, options);
  }

  /**
   * Collective: ranks with the same `color` form a new communicator, ordered by
   * `key` then by rank here. A negative color leaves this rank out (undefined).
   */
  async split(color: number, key = this.rank, options: OpOptions = {}): Promise<Communicator | undefined> {
    this.checkOpen();
    if (!Number.isInteger(color) || color > MAX_TAG) throw new ArgumentError(`split color must be an integer up to ${MAX_TAG}, or negative to opt out`);
    if (!Number.isInteger(key)) throw new ArgumentError('split key must be an integer');
    return coll.split(this, color, key, options);
  }

  /** A copy of this communicator with its own contexts (collective). */
  async dup(options: OpOptions = {}): Promise<Communicator> {
    return (await this.split(0, this.rank, options)) as Communicator;
  }

  /** @internal */
  derive(group: readonly number[], ctx: number): Communicator {
    return new Communicator(this.engine, group, ctx, this.options);
  }

  /**
   * Closing the world communicator finalizes the rank: peers are told (so
   * their receives from it fail at once instead of waiting) and connections
   * close. Closing a derived communicator only stops its use here.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ctx === 0) await this.engine.close();
  }
}

export { KIND_BYTES, KIND_TYPED, KIND_VALUE };
