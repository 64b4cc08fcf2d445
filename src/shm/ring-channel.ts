/**
 * A pair of rings in one region, used like a socket: the Channel adapter
 * (kind 'ring', one message per read) and `shm:<name>` contact info. The
 * listening side creates region `name` holding two SPSC rings (listener ->
 * connector at offset 0, connector -> listener after it); the connecting
 * side opens it by name. One connection per name: that is what a ring pair
 * is. The region is unlinked as soon as the connector has it, so nothing is
 * left in /dev/shm even if both processes die.
 */
import { ArgumentError, SwitchboardError, AbortError, TimeoutError } from '../errors.js';
import type { Channel, PeerInfo } from '../transport/channel.js';
import { formatAddress, toAddress, type AddressLike } from '../transport/address.js';
import { createRegion, openRegion, type Region } from './region.js';
import { RingConsumer, RingProducer, initRing, ringBytes, type WaitMode } from './ring.js';
import { RING_HEADER_SIZE, W } from './ring-layout.js';

export interface RingPairOptions {
  /** Data bytes of each ring (power of two, default 1 MiB). */
  capacity?: number | undefined;
  wait?: WaitMode | undefined;
  maxMessageSize?: number | undefined;
  mode?: number | undefined;
}

/** A Channel over two rings: we write into `out` and read from `in`. */
export class RingChannel implements Channel {
  readonly kind = 'ring' as const;
  readonly messages = true;
  readonly description: string;
  /** The other process, from the region header's attach slots (pid only). */
  peer: PeerInfo = {};
  readonly #out: RingProducer;
  readonly #in: RingConsumer;
  readonly #region: Region | undefined;
  #corked = false;
  #ended = false;
  #isClosed = false;
  #error: Error | undefined;
  #resolveClosed!: () => void;
  readonly closed: Promise<void>;
  #readable: Promise<void> | undefined;
  #abort = new AbortController();
  /** One options object for every read and write (no allocation per message). */
  readonly #withSignal = { signal: this.#abort.signal };
  readonly #uncork = (): void => {
    this.#corked = false;
    this.#out.uncork();
  };

  constructor(out: RingProducer, input: RingConsumer, description: string, region?: Region) {
    this.#out = out;
    this.#in = input;
    this.#region = region;
    this.description = description;
    this.closed = new Promise<void>((r) => {
      this.#resolveClosed = r;
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /**
   * The ring this channel writes into, for a caller that writes synchronously
   * (message passing's polling progress). Use it only while no write() of
   * this channel is pending, or messages overtake each other.
   */
  get producer(): RingProducer {
    return this.#out;
  }

  /** The ring this channel reads from, for a caller that polls it synchronously (see producer). */
  get consumer(): RingConsumer {
    return this.#in;
  }

  get readReady(): boolean {
    return this.#error !== undefined || this.#isClosed || this.#in.readReady;
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#error) throw this.#error;
    if (this.#isClosed) throw new SwitchboardError('ECLOSED', `${this.description} is closed`);
    try {
      return await this.#in.read(this.#withSignal);
    } catch (err) {
      if (err instanceof AbortError && this.#error) throw this.#error;
      if (err instanceof AbortError && this.#isClosed) throw new SwitchboardError('ECLOSED', `${this.description} is closed`);
      throw err;
    }
  }

  tryRead(): Uint8Array | null | undefined {
    if (this.#error) throw this.#error;
    if (this.#isClosed) throw new SwitchboardError('ECLOSED', `${this.description} is closed`);
    return this.#in.tryRead();
  }

  onReadReady(listener: () => void): () => void {
    let active = true;
    const fire = (): void => {
      if (active) {
        active = false;
        listener();
      }
    };
    if (this.readReady) {
      queueMicrotask(fire);
    } else {
      this.#readable ??= this.#in.readable(this.#withSignal).then(
        () => {
          this.#readable = undefined;
        },
        () => {
          this.#readable = undefined;
        },
      );
      void this.#readable.then(fire);
    }
    return () => {
      active = false;
    };
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#isClosed || this.#ended) return Promise.reject(new SwitchboardError('ECLOSED', `${this.description} is closed for writing`));
    if (!(data instanceof Uint8Array)) return Promise.reject(new ArgumentError('write() takes a Uint8Array'));
    // Writes of one tick are published together (one wake-up for the burst).
    if (!this.#corked) {
      this.#corked = true;
      this.#out.cork();
      queueMicrotask(this.#uncork);
    }
    return this.#out.write(data, this.#withSignal);
  }

  writev(chunks: readonly Uint8Array[]): Promise<void> {
    // One message from several pieces, as sendmsg() would make one datagram.
    let total = 0;
    for (const c of chunks) total += c.byteLength;
    const msg = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      msg.set(c, at);
      at += c.byteLength;
    }
    return this.write(msg);
  }

  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    try {
      await this.#out.idle();
    } finally {
      this.#out.close();
    }
  }

  async close(): Promise<void> {
    if (this.#isClosed) return this.closed;
    await this.end().catch(() => undefined);
    this.#finish();
    return this.closed;
  }

  destroy(err?: Error): void {
    if (this.#isClosed) return;
    if (err) this.#error = err;
    this.#ended = true;
    this.#out.close();
    this.#finish();
  }

  #finish(): void {
    this.#isClosed = true;
    this.#abort.abort();
    this.#in.close();
    this.#region?.close();
    this.#resolveClosed();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const m = await this.read();
      if (m === null) return;
      yield m;
    }
  }
}

function layout(capacity: number): { a: number; b: number; size: number } {
  const one = ringBytes(capacity);
  return { a: 0, b: one, size: 2 * one };
}

/** Capacity of the rings in a pair region, read from the first ring's header. */
function capacityOf(region: Region): number {
  const h = new Int32Array(region.buffer, 0, RING_HEADER_SIZE / 4);
  return Atomics.load(h, W.capacity);
}

/**
 * Create the ring pair `name` and return the listening side's channel at
 * once (writes are buffered in the ring until the peer connects).
 */
export function createRingPair(name: string, options: RingPairOptions = {}): { channel: RingChannel; region: Region } {
  const capacity = options.capacity ?? 1 << 20;
  const { a, b, size } = layout(capacity);
  const region = createRegion(name, size, { mode: options.mode, exclusive: true });
  try {
    initRing(region, a, { capacity });
    initRing(region, b, { capacity });
    const end = { wait: options.wait };
    const channel = new RingChannel(
      new RingProducer(region, a, end),
      new RingConsumer(region, b, { ...end, maxMessageSize: options.maxMessageSize }),
      `ring shm:${name} (listener)`,
      region,
    );
    return { channel, region };
  } catch (err) {
    region.close();
    region.unlink();
    throw err;
  }
}

export interface ShmListener {
  readonly address: { transport: 'shm'; name: string };
  /** The channel, once the peer has connected (one connection per name). */
  accept(options?: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined }): Promise<Channel>;
  close(): Promise<void>;
}

/** Listen on `shm:<name>`: create the ring pair and wait for one connector. */
export async function listenShm(address: AddressLike, options: RingPairOptions = {}): Promise<ShmListener> {
  const addr = toAddress(address);
  if (addr.transport !== 'shm') throw new ArgumentError(`listenShm needs an shm: address, got ${formatAddress(addr)}`);
  const { channel, region } = createRingPair(addr.name, options);
  const h = new Int32Array(region.buffer, layout(capacityOf(region)).b, RING_HEADER_SIZE / 4);
  let accepted = false;
  let closed = false;
  return {
    address: addr,
    async accept(opts = {}) {
      if (accepted) throw new SwitchboardError('ELIMIT', `shm:${addr.name} carries one connection, already accepted`);
      const until = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
      let delay = 1;
      // The connector attaches as the producer of ring b; that is the handshake.
      while (Atomics.load(h, W.everAttached) === 0) {
        if (closed) throw new SwitchboardError('ECLOSED', `listener shm:${addr.name} is closed`);
        if (opts.signal?.aborted) throw new AbortError();
        if (Date.now() >= until) throw new TimeoutError(`no connection on shm:${addr.name}`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 20);
      }
      accepted = true;
      const other = region.info()?.attached.find((a) => a.pid !== process.pid);
      if (other) channel.peer = { pid: other.pid };
      return channel;
    },
    async close() {
      closed = true;
      region.unlink();
      if (!accepted) await channel.close();
    },
  };
}

/** Connect to `shm:<name>` created by listenShm/createRingPair in another process. */
export async function connectShm(address: AddressLike, options: Omit<RingPairOptions, 'capacity' | 'mode'> = {}): Promise<RingChannel> {
  const addr = toAddress(address);
  if (addr.transport !== 'shm') throw new ArgumentError(`connectShm needs an shm: address, got ${formatAddress(addr)}`);
  const region = openRegion(addr.name);
  try {
    const { a, b, size } = layout(capacityOf(region));
    if (region.size < size) throw new SwitchboardError('EPROTO', `shm:${addr.name} is not a ring pair`);
    const end = { wait: options.wait };
    const input = new RingConsumer(region, a, { ...end, maxMessageSize: options.maxMessageSize });
    const out = new RingProducer(region, b, end);
    // Both ends hold it now: drop the name so nothing outlives the processes.
    region.unlink();
    const channel = new RingChannel(out, input, `ring shm:${addr.name} (connector)`, region);
    const creator = region.info()?.creatorPid;
    if (creator !== undefined && creator !== process.pid) channel.peer = { pid: creator };
    return channel;
  } catch (err) {
    region.close();
    throw err;
  }
}

/** Wrap two ring ends you laid out yourself as a Channel. */
export function ringChannel(out: RingProducer, input: RingConsumer, description = 'ring'): RingChannel {
  return new RingChannel(out, input, description);
}
