/**
 * The client side of the seed's socket dance: socket() + connect() for TCP
 * and Unix stream sockets, opening the write end of a FIFO, and connected UDP.
 */
import net from 'node:net';
import { AbortError, SwitchboardError, TimeoutError, fromSystemError } from '../errors.js';
import { formatAddress, toAddress, type AddressLike } from './address.js';
import type { Channel } from './channel.js';
import { deadline, type Deadline } from './deadline.js';
import { peerCredentials } from './fd.js';
import { openFifo } from './fifo.js';
import { SocketChannel } from './socket-channel.js';
import { connectUdp } from './udp.js';
import { connectRing } from './ring-route.js';

export interface ConnectOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Close with ETIMEDOUT after this long without I/O. */
  idleTimeoutMs?: number;
  /** Bytes queued for the reader before the sender is held back. */
  readHighWaterMark?: number;
}

/** Connect to a stream or datagram address and return a Channel. */
export async function connect(address: AddressLike, options: ConnectOptions = {}): Promise<Channel> {
  const addr = toAddress(address);
  switch (addr.transport) {
    case 'tcp':
    case 'unix':
      return connectStream(addr.transport === 'tcp' ? { host: addr.host, port: addr.port } : { path: addr.path }, formatAddress(addr), addr.transport, options);
    case 'udp':
      return connectUdp(addr.host, addr.port, options);
    case 'fifo':
      // the same default as the socket kinds (openFifo alone waits forever)
      return openFifo(addr.path, 'w', { ...options, timeoutMs: options.timeoutMs ?? 10_000 });
    case 'shm':
      return connectRing(addr, options);
  }
}

function connectStream(
  target: { host: string; port: number } | { path: string },
  text: string,
  kind: 'tcp' | 'unix',
  options: ConnectOptions,
): Promise<Channel> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const signal = options.signal;
  if (signal?.aborted) return Promise.reject(new AbortError(`connect ${text} aborted`));
  return new Promise<Channel>((resolve, reject) => {
    const socket = net.connect({ ...target, allowHalfOpen: true, noDelay: true });
    let timer: Deadline | undefined;
    const cleanup = (): void => {
      timer?.clear();
      signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
    };
    const fail = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void => fail(fromSystemError(err, `connect ${text}`));
    const onAbort = (): void => fail(new AbortError(`connect ${text} aborted`));
    const onConnect = (): void => {
      cleanup();
      const local = kind === 'tcp' ? `${socket.localAddress}:${socket.localPort}` : 'client';
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      resolve(
        new SocketChannel(socket, {
          kind,
          description: `${kind} ${local} -> ${text}`,
          peer: kind === 'unix' ? peerCredentials(fd) : {},
          ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
          ...(options.readHighWaterMark === undefined ? {} : { readHighWaterMark: options.readHighWaterMark }),
        }),
      );
    };
    socket.once('error', onError);
    socket.once('connect', onConnect);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs > 0) timer = deadline(timeoutMs, () => fail(new TimeoutError(`connect ${text}: no answer within ${timeoutMs} ms`)));
  });
}
