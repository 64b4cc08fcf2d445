/**
 * A Channel over a Node stream handle (net.Socket): TCP, Unix stream sockets,
 * pipes, socketpairs and FIFOs all arrive here as libuv stream handles, so
 * they share one implementation of the seed's stream semantics.
 *
 * Reads pull: 'data' chunks wait in a bounded queue; past the high-water mark
 * the socket is paused, libuv stops reading, the kernel buffer fills, and the
 * writer on the other side is held back. Writes resolve when Node has taken
 * the data below its high-water mark, otherwise on 'drain'.
 */
import type { Socket } from 'node:net';
import { SwitchboardError, TimeoutError, fromSystemError } from '../errors.js';
import type { Channel, ChannelKind, PeerInfo } from './channel.js';
import { directIoAvailable, writeNonblock } from './fd.js';

export class ChannelClosedError extends SwitchboardError {
  override name = 'ChannelClosedError';
  constructor(what = 'channel') {
    super('ECLOSED', `${what} is closed`);
  }
}

export interface SocketChannelOptions {
  kind: ChannelKind;
  description: string;
  peer?: PeerInfo;
  /** Bytes queued for the reader before the socket is paused (default 256 KiB). */
  readHighWaterMark?: number;
  /** Close with ETIMEDOUT after this long without any I/O (0 = never). */
  idleTimeoutMs?: number;
}

const RESOLVED: Promise<void> = Promise.resolve();
const ignore = (): void => undefined;

/**
 * A rejected promise that does not count as unhandled when the caller drops
 * it: a fire-and-forget write to a dead peer must not kill the process (the
 * seed's "no SIGPIPE death"). Awaiting it still throws.
 */
function rejected(err: Error): Promise<never> {
  const p = Promise.reject(err);
  p.catch(ignore);
  return p;
}
const DEFAULT_READ_HWM = 256 * 1024;

/**
 * A consumer that takes every chunk the moment it arrives (a protocol that
 * parses synchronously, like an RPC connection): chunks skip the queue, the
 * read() promises and the readiness callbacks. EOF, errors and close still
 * come the ordinary way, through onReadReady() and tryRead().
 */
export interface DirectReadable {
  /**
   * From now on, chunks that arrive while nothing is queued go straight to
   * `consume` (call it after reading what is queued: a chunk that finds the
   * queue non-empty is queued behind it, so order holds). The socket is never
   * paused for such a consumer: it takes each chunk as it comes.
   */
  readDirect(consume: (chunk: Uint8Array) => void): void;
}

export function isDirectReadable(x: object): x is DirectReadable {
  return typeof (x as Partial<DirectReadable>).readDirect === 'function';
}

/**
 * A channel that can also write with one system call straight to its
 * descriptor when nothing is queued (SocketChannel): for latency-bound
 * callers. Order is kept either way.
 */
export interface DirectWritable {
  /** undefined when the kernel took every byte at once, else the promise of write() for the rest. */
  writeNow(data: Uint8Array): Promise<void> | undefined;
  /** Bytes the kernel took at once, or -1 when a direct write would overtake queued bytes. */
  writeNowSync(data: Uint8Array): number;
}

export function isDirectWritable(x: object): x is DirectWritable {
  return typeof (x as Partial<DirectWritable>).writeNowSync === 'function';
}

/** write(), directly when the channel can (see DirectWritable): undefined when nothing is left to wait for. */
export function writeSoon(ch: Channel, data: Uint8Array): Promise<void> | undefined {
  return isDirectWritable(ch) ? ch.writeNow(data) : ch.write(data);
}

interface Waiter {
  resolve(v: Uint8Array | null): void;
  reject(e: Error): void;
}

export class SocketChannel implements Channel, DirectReadable, DirectWritable {
  readonly kind: ChannelKind;
  readonly messages = false;
  readonly description: string;
  readonly peer: PeerInfo;
  readonly closed: Promise<void>;

  readonly #socket: Socket;
  readonly #hwm: number;
  #queue: Uint8Array[] = [];
  #head = 0;
  #buffered = 0;
  #paused = false;
  #eof = false;
  #error: SwitchboardError | undefined;
  #destroyed = false;
  /** close() or destroy() was called here: reads and writes are over at once. */
  #local = false;
  #ended = false;
  #endPromise: Promise<void> | undefined;
  /** Pending read() calls, served in call order. */
  #waiters: Waiter[] = [];
  #readyListeners: (() => void)[] = [];
  #direct: ((chunk: Uint8Array) => void) | undefined;
  #drain: { promise: Promise<void>; resolve(): void; reject(e: Error): void } | undefined;
  #resolveClosed!: () => void;
  #inBurst = false;
  #corked = false;
  readonly #endBurst = (): void => {
    this.#inBurst = false;
    if (this.#corked) {
      this.#corked = false;
      this.#socket.uncork();
    }
  };


  constructor(socket: Socket, options: SocketChannelOptions) {
    this.#socket = socket;
    this.kind = options.kind;
    this.description = options.description;
    this.peer = options.peer ?? {};
    this.#hwm = options.readHighWaterMark ?? DEFAULT_READ_HWM;
    this.closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: Error) => this.#onError(err));
    socket.on('close', () => this.#onClose());
    socket.on('drain', () => this.#settleDrain(undefined));
    if (options.idleTimeoutMs !== undefined && options.idleTimeoutMs > 0) {
      socket.setTimeout(options.idleTimeoutMs, () => {
        this.destroy(new TimeoutError(`${this.description}: idle for ${options.idleTimeoutMs} ms`));
      });
    }
    if (socket.destroyed) this.#onClose();
  }

  get isClosed(): boolean {
    return this.#destroyed || this.#local;
  }

  /** The underlying file descriptor, where there is one (for SO_PEERCRED, handing to children). */
  get fd(): number | undefined {
    const handle = (this.#socket as unknown as { _handle?: { fd?: number } })._handle;
    return handle?.fd !== undefined && handle.fd >= 0 ? handle.fd : undefined;
  }

  get readReady(): boolean {
    return this.#head < this.#queue.length || this.#eof || this.#error !== undefined || this.#destroyed || this.#local;
  }

  // ---- reading -------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#local) return;
    if (this.#direct !== undefined && this.#head === this.#queue.length) {
      this.#direct(chunk);
      return;
    }
    if (this.#waiters.length !== 0) {
      (this.#waiters.shift() as Waiter).resolve(chunk);
      return;
    }
    this.#queue.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered >= this.#hwm && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.#fireReady();
  }

  #onEnd(): void {
    this.#eof = true;
    // waiters exist only while the queue is empty
    for (const w of this.#waiters.splice(0)) w.resolve(null);
    this.#fireReady();
  }

  #onError(err: Error): void {
    const e = fromSystemError(err, this.description);
    if (this.#error === undefined) this.#error = e;
    this.#settleDrain(e);
    for (const w of this.#waiters.splice(0)) w.reject(e);
    this.#fireReady();
  }

  #onClose(): void {
    this.#destroyed = true;
    this.#settleDrain(this.#error ?? new ChannelClosedError(this.description));
    for (const w of this.#waiters.splice(0)) {
      if (this.#error !== undefined) w.reject(this.#error);
      else if (this.#eof && !this.#local) w.resolve(null);
      else w.reject(new ChannelClosedError(this.description));
    }
    this.#fireReady();
    this.#resolveClosed();
  }

  #fireReady(): void {
    if (this.#readyListeners.length === 0) return;
    const ls = this.#readyListeners;
    this.#readyListeners = [];
    for (const l of ls) l();
  }

  #shift(): Uint8Array {
    const chunk = this.#queue[this.#head] as Uint8Array;
    this.#queue[this.#head] = undefined as unknown as Uint8Array;
    this.#head++;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    this.#buffered -= chunk.length;
    if (this.#paused && this.#buffered < this.#hwm / 2 && !this.#destroyed) {
      this.#paused = false;
      this.#socket.resume();
    }
    return chunk;
  }

  tryRead(): Uint8Array | null | undefined {
    if (this.#local) throw this.#error ?? new ChannelClosedError(this.description);
    if (this.#head < this.#queue.length) return this.#shift();
    if (this.#error !== undefined) throw this.#error;
    if (this.#eof) return null;
    if (this.#destroyed) throw new ChannelClosedError(this.description);
    return undefined;
  }

  read(): Promise<Uint8Array | null> {
    if (this.#local) return Promise.reject(this.#error ?? new ChannelClosedError(this.description));
    if (this.#head < this.#queue.length) return Promise.resolve(this.#shift());
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#eof) return Promise.resolve(null);
    if (this.#destroyed) return Promise.reject(new ChannelClosedError(this.description));
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
    // Concurrent reads queue up and each gets the next chunk, in call order.
    return new Promise<Uint8Array | null>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  readDirect(consume: (chunk: Uint8Array) => void): void {
    this.#direct = consume;
  }

  onReadReady(listener: () => void): () => void {
    if (this.readReady) {
      let cancelled = false;
      queueMicrotask(() => {
        if (!cancelled) listener();
      });
      return () => {
        cancelled = true;
      };
    }
    this.#readyListeners.push(listener);
    return () => {
      const i = this.#readyListeners.indexOf(listener);
      if (i >= 0) this.#readyListeners.splice(i, 1);
    };
  }

  /**
   * A plain iterator over read() rather than an async generator: one promise
   * per chunk instead of a generator's several, on the hot path of every
   * `for await (const chunk of channel)`.
   */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const done: IteratorReturnResult<undefined> = { done: true, value: undefined };
    return {
      next: () => this.read().then((chunk): IteratorResult<Uint8Array> => (chunk === null ? done : { done: false, value: chunk })),
      return: () => Promise.resolve(done),
    };
  }

  // ---- writing -------------------------------------------------------

  #writeBlocked(): Error | undefined {
    if (this.#error !== undefined) return this.#error;
    if (this.#destroyed || this.#local || this.#ended) return new ChannelClosedError(this.description);
    return undefined;
  }

  #settleDrain(err: Error | undefined): void {
    const d = this.#drain;
    if (d === undefined) return;
    this.#drain = undefined;
    if (err === undefined) d.resolve();
    else d.reject(err);
  }

  #waitDrain(): Promise<void> {
    if (this.#drain === undefined) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(ignore); // see rejected()
      this.#drain = { promise, resolve, reject };
    }
    return this.#drain.promise;
  }

  /**
   * The promise is the backpressure: it stays pending while Node holds more
   * than its high-water mark for this socket. A writer that does not wait for
   * it still has every byte queued in order (nothing is dropped), so its
   * memory grows without bound, exactly as with net.Socket.write().
   */
  write(data: Uint8Array): Promise<void> {
    const blocked = this.#writeBlocked();
    if (blocked !== undefined) return rejected(blocked);
    if (!(data instanceof Uint8Array)) return rejected(new SwitchboardError('EINVAL', 'write() takes a Uint8Array'));
    if (data.length === 0) return RESOLVED;
    this.#batch();
    return this.#socket.write(data) ? RESOLVED : this.#waitDrain();
  }

  /**
   * write(), but with one system call straight to the descriptor when nothing
   * is queued before it (no buffered or corked bytes, no pending libuv
   * write), skipping the stream machinery: undefined when the kernel took
   * every byte, else the promise of write() for the rest. For latency-bound
   * callers that poll (message passing); order is kept either way.
   */
  writeNow(data: Uint8Array): Promise<void> | undefined {
    const n = this.writeNowSync(data);
    if (n === data.length) return undefined;
    // Not possible now, a full buffer or an error: the stream takes the rest (and reports errors its own way).
    return this.write(n > 0 ? data.subarray(n) : data);
  }

  /**
   * The direct part of writeNow(): how many bytes of `data` the kernel took
   * in one non-blocking send, or -1 when a direct write would overtake queued
   * bytes (or the channel cannot write). The caller writes the rest, if any,
   * with write(); `data` may be reused as soon as this returns.
   */
  writeNowSync(data: Uint8Array): number {
    const fd = this.fd;
    const s = this.#socket as Socket & { _handle?: { writeQueueSize?: number } | null };
    if (fd === undefined || !directIoAvailable() || this.#corked || s.writableLength !== 0 || (s._handle?.writeQueueSize ?? 1) !== 0 || this.#writeBlocked() !== undefined || data.length === 0) {
      return -1;
    }
    const n = writeNonblock(fd, data);
    return n > 0 ? n : 0;
  }

  /**
   * Writes made in one burst of synchronous code and promise continuations go
   * out as one writev (nats.js batches its outbound buffer the same way): the
   * first write of a tick goes straight to the kernel, so a lone request pays
   * nothing; a second write in the same tick corks the socket until the next
   * tick.
   */
  #batch(): void {
    if (this.#inBurst) {
      if (!this.#corked) {
        this.#corked = true;
        this.#socket.cork();
      }
      return;
    }
    this.#inBurst = true;
    process.nextTick(this.#endBurst);
  }

  writev(chunks: readonly Uint8Array[]): Promise<void> {
    const blocked = this.#writeBlocked();
    if (blocked !== undefined) return rejected(blocked);
    if (!Array.isArray(chunks) || chunks.some((c) => !(c instanceof Uint8Array))) {
      return rejected(new SwitchboardError('EINVAL', 'writev() takes an array of Uint8Array'));
    }
    const s = this.#socket;
    this.#batch();
    // Several chunks go to the kernel as one writev even when this call starts a burst.
    const cork = !this.#corked && chunks.length > 1;
    if (cork) s.cork();
    let ok = true;
    for (const c of chunks) if (c.length > 0) ok = s.write(c);
    if (cork) s.uncork();
    return ok ? RESOLVED : this.#waitDrain();
  }

  end(): Promise<void> {
    if (this.#endPromise !== undefined) return this.#endPromise;
    if (this.#destroyed || this.#local) return RESOLVED;
    this.#ended = true;
    if (!this.#socket.writable) {
      this.#endPromise = RESOLVED;
      return RESOLVED;
    }
    this.#endPromise = new Promise<void>((resolve) => {
      // The callback runs on 'finish' (everything written has reached the
      // kernel) or on error. Node emits no 'drain' once ending, so a write
      // still waiting for one is settled here.
      this.#socket.end((err?: Error | null) => {
        this.#settleDrain(err ? fromSystemError(err, this.description) : undefined);
        resolve();
      });
      // 'finish' may never come if the socket dies first
      void this.closed.then(resolve);
    });
    return this.#endPromise;
  }

  /**
   * Flush what was written (waiting for an end() already under way too), then
   * close. It does not wait for the peer to close its side; it does wait while
   * a peer that never reads keeps the kernel buffer full (use destroy() for a
   * bounded close).
   */
  async close(): Promise<void> {
    if (this.#destroyed || this.#local) return this.closed;
    if (this.#error === undefined) await this.end();
    if (!this.#local) {
      this.#closeLocally();
      this.#socket.destroy();
    }
    await this.closed;
  }

  destroy(err?: Error): void {
    if (this.#destroyed || this.#local) return;
    // what write() already accepted goes to the kernel first, as it would have without batching
    this.#endBurst();
    if (err !== undefined && this.#error === undefined) this.#error = fromSystemError(err, this.description);
    this.#closeLocally();
    this.#socket.destroy();
  }

  /** From now on reads and writes fail at once; what was received and not read is dropped. */
  #closeLocally(): void {
    this.#local = true;
    this.#queue = [];
    this.#head = 0;
    this.#buffered = 0;
    const e = this.#error ?? new ChannelClosedError(this.description);
    this.#settleDrain(e);
    for (const w of this.#waiters.splice(0)) w.reject(e);
    this.#fireReady();
  }
}
