/**
 * UDP datagrams (seed 12.2.3): unreliable, message-preserving. A connected
 * UDP socket is a Channel whose reads and writes are whole datagrams; a bound,
 * unconnected socket is a DatagramEndpoint that receives from anyone and
 * sends to any address. UDP has no flow control, so the receive queue is
 * bounded and overflow is dropped and counted, as the kernel would.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { AbortError, ArgumentError, ProtocolError, TimeoutError, fromSystemError } from '../errors.js';
import { resolvePort } from '../naming/services.js';
import type { Channel, DatagramEndpoint, PeerInfo } from './channel.js';
import { deadline } from './deadline.js';
import { ChannelClosedError } from './socket-channel.js';

/**
 * Errors a UDP socket reports for one datagram (ICMP port or host
 * unreachable): the socket itself is fine and later datagrams may get through.
 */
const SOFT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

function onSocketError(inbox: Inbox<unknown>, err: NodeJS.ErrnoException, context: string): void {
  const e = fromSystemError(err, context);
  if (SOFT_ERRORS.has(err.code ?? '')) inbox.softFail(e);
  else inbox.fail(e);
}

/** Largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP). */
export const MAX_UDP_PAYLOAD = 65507;

export interface UdpOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Datagrams queued for the reader before new ones are dropped (default 4096). */
  maxQueued?: number;
}

async function family(host: string): Promise<{ address: string; type: 'udp4' | 'udp6' }> {
  const v = isIP(host);
  if (v === 4) return { address: host, type: 'udp4' };
  if (v === 6) return { address: host, type: 'udp6' };
  const r = await lookup(host);
  return { address: r.address, type: r.family === 6 ? 'udp6' : 'udp4' };
}

const ignore = (): void => undefined;

/**
 * The descriptor of a dgram socket, from its libuv handle (as a stream
 * socket's comes from its _handle; dgram's own _handle getter is deprecated,
 * so the handle is found by the symbol it is kept under), or undefined when
 * the socket is closed or the handle cannot be reached.
 */
function socketFd(sock: dgram.Socket): number | undefined {
  const key = Object.getOwnPropertySymbols(sock).find((k) => k.description === 'state symbol');
  if (key === undefined) return undefined;
  const state = (sock as unknown as Record<symbol, { handle?: { fd?: number } | null } | undefined>)[key];
  const fd = state?.handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** A promise whose rejection does not count as unhandled if the caller drops it (fire-and-forget sends). */
function settledQuietly<T>(p: Promise<T>): Promise<T> {
  p.catch(ignore);
  return p;
}

function checkSize(data: Uint8Array): void {
  if (!(data instanceof Uint8Array)) throw new ArgumentError('send takes a Uint8Array');
  if (data.length > MAX_UDP_PAYLOAD) {
    throw new ProtocolError(`datagram of ${data.length} bytes exceeds the UDP maximum of ${MAX_UDP_PAYLOAD}`, { code: 'EMSGSIZE' });
  }
}

/** A bounded FIFO of items with one pending reader, shared by the UDP kinds. */
class Inbox<T> {
  #items: T[] = [];
  #head = 0;
  /** Pending reads, served in call order. */
  #waiters: { resolve(v: T | null): void; reject(e: Error): void }[] = [];
  #listeners: (() => void)[] = [];
  /** A one-off error for the next reader (an ICMP refusal), not the end of the socket. */
  #soft: Error | undefined;
  error: Error | undefined;
  done = false;
  dropped = 0;
  constructor(readonly max: number) {}

  get size(): number {
    return this.#items.length - this.#head;
  }
  get ready(): boolean {
    return this.size > 0 || this.done || this.error !== undefined || this.#soft !== undefined;
  }
  put(item: T): void {
    const w = this.#waiters.shift();
    if (w) {
      w.resolve(item);
      return;
    }
    if (this.size >= this.max) {
      this.dropped++;
      return;
    }
    this.#items.push(item);
    this.#fire();
  }
  fail(err: Error): void {
    if (this.error === undefined) this.error = err;
    for (const w of this.#waiters.splice(0)) w.reject(err);
    this.#fire();
  }
  /** Reject the pending read, or the next one, with `err`; later reads go on as before. */
  softFail(err: Error): void {
    const w = this.#waiters.shift();
    if (w) {
      w.reject(err);
      return;
    }
    this.#soft = err;
    this.#fire();
  }
  finish(): void {
    this.done = true;
    for (const w of this.#waiters.splice(0)) w.reject(this.error ?? new ChannelClosedError('UDP socket'));
    this.#fire();
  }
  tryTake(): T | null | undefined {
    if (this.size > 0) {
      const v = this.#items[this.#head] as T;
      this.#items[this.#head++] = undefined as T;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      return v;
    }
    if (this.error) throw this.error;
    if (this.done) throw new ChannelClosedError('UDP socket');
    const soft = this.#soft;
    if (soft !== undefined) {
      this.#soft = undefined;
      throw soft;
    }
    return undefined;
  }
  take(): Promise<T | null> {
    try {
      const v = this.tryTake();
      if (v !== undefined) return Promise.resolve(v);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => void this.#waiters.push({ resolve, reject }));
  }
  onReady(l: () => void): () => void {
    if (this.ready) {
      let off = false;
      queueMicrotask(() => off || l());
      return () => (off = true);
    }
    this.#listeners.push(l);
    return () => {
      const i = this.#listeners.indexOf(l);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }
  #fire(): void {
    const ls = this.#listeners;
    if (ls.length === 0) return;
    this.#listeners = [];
    for (const l of ls) l();
  }
}

function bindSocket(sock: dgram.Socket, address: string, port: number, options: UdpOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      timer?.clear();
      sock.close();
      reject(fromSystemError(err, `bind udp ${address}:${port}`));
    };
    // 0 means no timeout, as for the other kinds
    const ms = options.timeoutMs ?? 10_000;
    const timer = ms > 0 ? deadline(ms, () => onError(new TimeoutError(`bind udp ${address}:${port}: no answer within ${ms} ms`))) : undefined;
    sock.once('error', onError);
    sock.bind(port, address, () => {
      timer?.clear();
      sock.removeListener('error', onError);
      resolve();
    });
  });
}

class UdpChannel implements Channel {
  readonly kind = 'udp' as const;
  readonly messages = true;
  readonly peer: PeerInfo = {};
  readonly description: string;
  readonly closed: Promise<void>;
  #sock: dgram.Socket;
  #inbox: Inbox<Uint8Array>;
  #closed = false;

  constructor(sock: dgram.Socket, description: string, maxQueued: number) {
    this.#sock = sock;
    this.description = description;
    this.#inbox = new Inbox(maxQueued);
    sock.on('message', (msg: Buffer) => this.#inbox.put(msg));
    sock.on('error', (err) => onSocketError(this.#inbox, err, description));
    this.closed = new Promise((resolve) =>
      sock.once('close', () => {
        this.#closed = true;
        this.#inbox.finish();
        resolve();
      }),
    );
  }

  get isClosed(): boolean {
    return this.#closed;
  }
  /**
   * The socket's descriptor (undefined once closed), for polling it
   * directly (recvDatagram, waitReadable). Datagrams taken from it that way
   * never reach read(): the caller must be their only reader.
   */
  get fd(): number | undefined {
    return this.#closed ? undefined : socketFd(this.#sock);
  }
  /** Datagrams dropped because the reader fell behind. */
  get dropped(): number {
    return this.#inbox.dropped;
  }
  get readReady(): boolean {
    return this.#inbox.ready;
  }
  read(): Promise<Uint8Array | null> {
    return this.#inbox.take();
  }
  tryRead(): Uint8Array | null | undefined {
    return this.#inbox.tryTake();
  }
  onReadReady(listener: () => void): () => void {
    return this.#inbox.onReady(listener);
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      let m: Uint8Array | null;
      try {
        m = await this.read();
      } catch (err) {
        if (this.#closed && err instanceof ChannelClosedError) return;
        throw err;
      }
      if (m === null) return;
      yield m;
    }
  }
  write(data: Uint8Array): Promise<void> {
    if (this.#closed) return settledQuietly(Promise.reject(new ChannelClosedError(this.description)));
    try {
      checkSize(data);
    } catch (err) {
      return settledQuietly(Promise.reject(err));
    }
    return settledQuietly(
      new Promise((resolve, reject) =>
        this.#sock.send(data, (err) => (err ? reject(fromSystemError(err, `${this.description}: send`)) : resolve())),
      ),
    );
  }
  async writev(chunks: readonly Uint8Array[]): Promise<void> {
    for (const c of chunks) await this.write(c);
  }
  end(): Promise<void> {
    return Promise.resolve(); // datagrams have no end-of-stream to send
  }
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#sock.close();
    }
    await this.closed;
  }
  destroy(err?: Error): void {
    if (err) this.#inbox.fail(fromSystemError(err, this.description));
    if (!this.#closed) {
      this.#closed = true;
      this.#sock.close();
    }
  }
}

/** A UDP socket connected to host:port, as a message Channel. */
export async function connectUdp(host: string, port: number | string, options: UdpOptions = {}): Promise<Channel> {
  if (options.signal?.aborted) throw new AbortError('connect udp aborted');
  const p = resolvePort(port, 'udp');
  const { address, type } = await family(host);
  const sock = dgram.createSocket({ type });
  await bindSocket(sock, type === 'udp6' ? '::' : '0.0.0.0', 0, options);
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.connect(p, address, () => {
      sock.removeListener('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    sock.close();
    throw fromSystemError(err, `connect udp ${host}:${p}`);
  });
  const local = sock.address();
  return new UdpChannel(sock, `udp ${local.address}:${local.port} -> ${address}:${p}`, options.maxQueued ?? 4096);
}

class UdpEndpoint implements DatagramEndpoint {
  readonly address: { host: string; port: number; family: 'IPv4' | 'IPv6' };
  #sock: dgram.Socket;
  #inbox: Inbox<{ data: Uint8Array; from: { host: string; port: number } }>;
  #closed = false;
  constructor(sock: dgram.Socket, maxQueued: number) {
    this.#sock = sock;
    const a = sock.address();
    this.address = { host: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
    this.#inbox = new Inbox(maxQueued);
    sock.on('message', (msg: Buffer, rinfo) => this.#inbox.put({ data: msg, from: { host: rinfo.address, port: rinfo.port } }));
    sock.on('error', (err) => onSocketError(this.#inbox, err, `udp ${this.address.host}:${this.address.port}`));
    sock.once('close', () => this.#inbox.finish());
  }
  get dropped(): number {
    return this.#inbox.dropped;
  }
  /** The socket's descriptor (undefined once closed); see UdpChannel.fd. */
  get fd(): number | undefined {
    return this.#closed ? undefined : socketFd(this.#sock);
  }
  receive(): Promise<{ data: Uint8Array; from: { host: string; port: number } } | null> {
    return this.#inbox.take().catch((err: unknown) => {
      if (this.#closed && err instanceof ChannelClosedError) return null;
      throw err;
    });
  }
  send(data: Uint8Array, to: { host: string; port: number }): Promise<void> {
    if (this.#closed) return settledQuietly(Promise.reject(new ChannelClosedError('UDP endpoint')));
    try {
      checkSize(data);
      resolvePort(to.port, 'udp');
    } catch (err) {
      return settledQuietly(Promise.reject(err));
    }
    return settledQuietly(
      new Promise((resolve, reject) =>
        this.#sock.send(data, to.port, to.host, (err) => (err ? reject(fromSystemError(err, `udp send to ${to.host}:${to.port}`)) : resolve())),
      ),
    );
  }
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => this.#sock.close(() => resolve()));
  }
}

/** Bind an unconnected UDP socket (loopback unless a host is given; port 0 = any). */
export async function bindUdp(options: UdpOptions & { host?: string; port?: number | string } = {}): Promise<DatagramEndpoint> {
  const { address, type } = await family(options.host ?? '127.0.0.1');
  const sock = dgram.createSocket({ type });
  await bindSocket(sock, address, resolvePort(options.port ?? 0, 'udp'), options);
  return new UdpEndpoint(sock, options.maxQueued ?? 4096);
}
