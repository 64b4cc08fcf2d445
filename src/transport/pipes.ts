/**
 * Anonymous pipes and socketpairs (seed 12.1: inheritance in lieu of naming).
 * A pipe is one-way (read end, write end); a socketpair is two connected
 * two-way ends. Either end can stay in this process as a Channel or be handed
 * to a child process as a file descriptor (see inheritance.ts).
 */
import { closeSync } from 'node:fs';
import net from 'node:net';
import { ArgumentError } from '../errors.js';
import type { Channel, ChannelKind, PeerInfo } from './channel.js';
import { fdType, peerCredentials, rawPipe, rawSocketpair } from './fd.js';
import { SocketChannel, type SocketChannelOptions } from './socket-channel.js';

export interface FromFdOptions {
  kind?: ChannelKind;
  readable?: boolean;
  writable?: boolean;
  description?: string;
  peer?: PeerInfo;
  readHighWaterMark?: number;
}

/**
 * Wrap an open file descriptor (pipe end, FIFO, socket) in a Channel. The
 * Channel owns the fd from now on and closes it.
 */
export function fromFd(fd: number, options: FromFdOptions = {}): Channel {
  if (!Number.isInteger(fd) || fd < 0) throw new ArgumentError(`fd must be a non-negative integer, got ${fd}`);
  const type = fdType(fd);
  if (type !== 'fifo' && type !== 'socket') throw new ArgumentError(`fd ${fd} is a ${type}, not a pipe, FIFO or socket`);
  const kind = options.kind ?? (type === 'fifo' ? 'pipe' : 'socketpair');
  const socket = new net.Socket({
    fd,
    readable: options.readable ?? true,
    writable: options.writable ?? true,
    allowHalfOpen: true,
  });
  const opts: SocketChannelOptions = {
    kind,
    description: options.description ?? `${kind} fd ${fd}`,
    peer: options.peer ?? (type === 'socket' ? peerCredentials(fd) : {}),
  };
  if (options.readHighWaterMark !== undefined) opts.readHighWaterMark = options.readHighWaterMark;
  return new SocketChannel(socket, opts);
}

/** pipe(2) as two Channels: [read end, write end]. */
export function pipe(): [reader: Channel, writer: Channel] {
  const [r, w] = rawPipe();
  try {
    return [
      fromFd(r, { kind: 'pipe', readable: true, writable: false, description: `pipe read end (fd ${r})`, peer: { pid: process.pid } }),
      fromFd(w, { kind: 'pipe', readable: false, writable: true, description: `pipe write end (fd ${w})`, peer: { pid: process.pid } }),
    ];
  } catch (err) {
    closeQuietly(r);
    closeQuietly(w);
    throw err;
  }
}

/** socketpair(2) as two connected Channels. */
export function socketpair(): [Channel, Channel] {
  const [a, b] = rawSocketpair();
  try {
    return [
      fromFd(a, { kind: 'socketpair', description: `socketpair end A (fd ${a})` }),
      fromFd(b, { kind: 'socketpair', description: `socketpair end B (fd ${b})` }),
    ];
  } catch (err) {
    closeQuietly(a);
    closeQuietly(b);
    throw err;
  }
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
