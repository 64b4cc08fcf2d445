/**
 * The server side of the seed's socket dance: socket() + bind() + listen(),
 * then accept() hands out one Channel per connection while the listening
 * socket keeps accepting. TCP binds to loopback unless told otherwise; Unix
 * sockets are created 0600 unless told otherwise.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { isMainThread } from 'node:worker_threads';
import { ArgumentError, SwitchboardError, fromSystemError } from '../errors.js';
import { formatAddress, toAddress, type Address, type AddressLike } from './address.js';
import type { Channel } from './channel.js';
import { deadline, type Deadline } from './deadline.js';
import { peerCredentials } from './fd.js';
import { ChannelClosedError, SocketChannel } from './socket-channel.js';
import { listenRing } from './ring-route.js';

export interface ListenOptions {
  /** Refuse (close at once) connections beyond this many open ones. */
  maxConnections?: number;
  /** Close a connection after this long without I/O (ETIMEDOUT). */
  idleTimeoutMs?: number;
  /** Permissions of a Unix socket file (default 0o600). */
  mode?: number;
  /**
   * Connections waiting for accept() (default 511, as listen(2) is given):
   * beyond it new ones are refused, so a server that stops accepting does
   * not pile up sockets without bound.
   */
  backlog?: number;
  /** Called for every accepted connection instead of queueing it for accept(). */
  onConnection?: (channel: Channel) => void;
  /** Bytes queued per connection for the reader before the sender is held back. */
  readHighWaterMark?: number;
  /** Remove a stale Unix socket file nobody listens on (default true). */
  removeStale?: boolean;
}

export interface Listener extends AsyncIterable<Channel> {
  /** The bound address (with the real port when 0 was asked). */
  readonly address: Address;
  /** Open connections. */
  readonly connections: number;
  /** Connections refused because of maxConnections or a full accept() backlog. */
  readonly refused: number;
  /** The next accepted connection; rejects ECLOSED once the listener is closed. */
  accept(): Promise<Channel>;
  /**
   * Stop accepting; wait up to graceMs (default 5000) for open connections to
   * close, then destroy the rest. Removes a Unix socket file.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

const DEFAULT_BACKLOG = 511;

async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new SwitchboardError('EADDRINUSE', `listen unix://${path}: the path exists and is not a socket`);
  // Only ECONNREFUSED proves nobody listens: a live server with a full
  // backlog answers EAGAIN, and EACCES says nothing either way.
  const probe = await new Promise<string>((resolve) => {
    const s = net.connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'EIO'));
  });
  if (probe === 'ENOENT') return; // removed meanwhile
  if (probe === 'connected' || probe === 'EAGAIN') {
    throw new SwitchboardError('EADDRINUSE', `listen unix://${path}: another process is listening there`);
  }
  if (probe !== 'ECONNREFUSED') {
    throw new SwitchboardError(probe === 'EACCES' ? 'EACCES' : 'EADDRINUSE', `listen unix://${path}: cannot tell whether the socket file is stale (${probe})`);
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(err, `listen unix://${path}: removing the stale socket file`);
  }
}

class NetListener implements Listener {
  address: Address;
  #server: net.Server;
  #channels = new Set<SocketChannel>();
  #backlog: Channel[] = [];
  #waiters: { resolve(c: Channel): void; reject(e: Error): void }[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;
  #refused = 0;

  constructor(server: net.Server, address: Address, options: ListenOptions) {
    this.#server = server;
    this.address = address;
    const max = options.maxConnections;
    const backlog = options.backlog ?? DEFAULT_BACKLOG;
    server.on('connection', (socket: net.Socket) => {
      const queueFull = options.onConnection === undefined && this.#waiters.length === 0 && this.#backlog.length >= backlog;
      if (this.#closed || queueFull || (max !== undefined && this.#channels.size >= max)) {
        this.#refused++;
        socket.destroy();
        return;
      }
      socket.setNoDelay?.(true);
      const kind = address.transport === 'unix' ? 'unix' : 'tcp';
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      const remote = kind === 'tcp' ? `${socket.remoteAddress}:${socket.remotePort}` : 'peer';
      const ch = new SocketChannel(socket, {
        kind,
        description: `${kind} ${formatAddress(address)} <- ${remote}`,
        peer: kind === 'unix' ? peerCredentials(fd) : {},
        ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
        ...(options.readHighWaterMark === undefined ? {} : { readHighWaterMark: options.readHighWaterMark }),
      });
      this.#channels.add(ch);
      void ch.closed.then(() => this.#channels.delete(ch));
      if (options.onConnection) {
        options.onConnection(ch);
        return;
      }
      const w = this.#waiters.shift();
      if (w) w.resolve(ch);
      else this.#backlog.push(ch);
    });
    server.on('error', () => {
      // errors after listen() succeeded are per-connection and surface on the Channel
    });
  }

  get connections(): number {
    return this.#channels.size;
  }

  get refused(): number {
    return this.#refused;
  }

  accept(): Promise<Channel> {
    const ch = this.#backlog.shift();
    if (ch) return Promise.resolve(ch);
    if (this.#closed) return Promise.reject(new ChannelClosedError(`listener ${formatAddress(this.address)}`));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Channel> {
    for (;;) {
      let ch: Channel;
      try {
        ch = await this.accept();
      } catch (err) {
        if (err instanceof SwitchboardError && err.code === 'ECLOSED') return;
        throw err;
      }
      yield ch;
    }
  }

  close(options: { graceMs?: number } = {}): Promise<void> {
    // a second close() waits for the first
    this.#closing ??= this.#close(options);
    return this.#closing;
  }

  async #close(options: { graceMs?: number }): Promise<void> {
    this.#closed = true;
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const w of this.#waiters.splice(0)) w.reject(new ChannelClosedError(`listener ${formatAddress(this.address)}`));
    for (const ch of this.#backlog.splice(0)) ch.destroy();
    const grace = options.graceMs ?? 5000;
    if (this.#channels.size > 0) {
      let timer: Deadline | undefined;
      await Promise.race([
        Promise.all([...this.#channels].map((c) => c.closed)),
        new Promise<void>((resolve) => (timer = deadline(grace, resolve))),
      ]);
      timer?.clear();
      const rest = [...this.#channels];
      for (const ch of rest) ch.destroy();
      // the server may report itself closed before its sockets' 'close' events
      await Promise.all(rest.map((c) => c.closed));
    }
    await stopped;
    if (this.address.transport === 'unix') {
      try {
        unlinkSync(this.address.path); // libuv unlinks it too; this covers the rest
      } catch {
        // already gone
      }
    }
  }
}

/** Listen on a TCP port or a Unix socket path; see ListenOptions. */
export async function listen(address: AddressLike, options: ListenOptions = {}): Promise<Listener> {
  const addr = toAddress(address);
  if (addr.transport === 'shm') return listenRing(addr);
  if (addr.transport !== 'tcp' && addr.transport !== 'unix') {
    throw new ArgumentError(`listen(${formatAddress(addr)}): only tcp and unix stream sockets and shm rings listen; use bindUdp for UDP`);
  }
  if (options.maxConnections !== undefined && (!Number.isInteger(options.maxConnections) || options.maxConnections < 1)) {
    throw new ArgumentError(`maxConnections must be a positive integer, got ${options.maxConnections}`);
  }
  if (options.backlog !== undefined && (!Number.isInteger(options.backlog) || options.backlog < 1)) {
    throw new ArgumentError(`backlog must be a positive integer, got ${options.backlog}`);
  }
  if (addr.transport === 'unix' && options.removeStale !== false) await removeStaleSocket(addr.path);
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false });
  const mode = options.mode ?? 0o600;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(fromSystemError(err, `listen ${formatAddress(addr)}`));
    server.once('error', onError);
    server.once('listening', () => {
      server.removeListener('error', onError);
      resolve();
    });
    if (addr.transport === 'tcp') {
      server.listen({ host: addr.host, port: addr.port, ...(options.backlog ? { backlog: options.backlog } : {}) });
    } else {
      // bind() creates the file with the umask's permissions: tighten the
      // umask around the synchronous bind so no other user ever sees it open.
      const old = isMainThread ? process.umask(0o777 & ~mode) : undefined;
      try {
        server.listen({ path: addr.path, ...(options.backlog ? { backlog: options.backlog } : {}) });
      } finally {
        if (old !== undefined) process.umask(old);
      }
    }
  });
  let bound: Address = addr;
  if (addr.transport === 'tcp') {
    const a = server.address() as net.AddressInfo;
    bound = { transport: 'tcp', host: addr.host, port: a.port };
  } else {
    chmodSync(addr.path, mode);
  }
  return new NetListener(server, bound, options);
}
