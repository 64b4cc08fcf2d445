/**
 * FIFOs, the named pipes of seed 12.2.3: created in the file system with
 * mkfifo, opened by path from unrelated processes, removed with unlink.
 * Opening the read end waits for a writer and opening the write end waits
 * for a reader, as open(2) does; both can time out or be aborted.
 */
import { constants, lstatSync, open as openAsync, openSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { AbortError, ArgumentError, SwitchboardError, TimeoutError, fromSystemError } from '../errors.js';
import type { Channel } from './channel.js';
import { deadline } from './deadline.js';
import { mkfifoSync } from './fd.js';
import { closeQuietly } from './pipes.js';
import { SocketChannel } from './socket-channel.js';

export interface FifoOpenOptions {
  /** Give up waiting for the other end after this long (default: wait forever). */
  timeoutMs?: number;
  signal?: AbortSignal;
  readHighWaterMark?: number;
}

function checkPath(path: string): void {
  if (typeof path !== 'string' || path === '') throw new ArgumentError('FIFO path must be a non-empty string');
}

/** mkfifo(3): create a FIFO with the given permissions (default 0600). EEXIST if the path exists. */
export function createFifo(path: string, options: { mode?: number } = {}): void {
  checkPath(path);
  mkfifoSync(path, options.mode ?? 0o600);
}

function assertFifo(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    throw new SwitchboardError('ENOENT', `no FIFO at ${path}`, { cause: err });
  }
  if (!st.isFIFO()) throw new ArgumentError(`${path} is not a FIFO`);
}

/** Remove a FIFO (refuses to remove anything that is not one). */
export function removeFifo(path: string): void {
  checkPath(path);
  assertFifo(path);
  try {
    unlinkSync(path);
  } catch (err) {
    throw fromSystemError(err, `remove FIFO ${path}`);
  }
}

function wrap(fd: number, path: string, direction: 'r' | 'w', options: FifoOpenOptions): Channel {
  const socket = new net.Socket({ fd, readable: direction === 'r', writable: direction === 'w', allowHalfOpen: true });
  return new SocketChannel(socket, {
    kind: 'fifo',
    description: `fifo ${path} (${direction === 'r' ? 'read' : 'write'} end)`,
    ...(options.readHighWaterMark === undefined ? {} : { readHighWaterMark: options.readHighWaterMark }),
  });
}

/** Open one end of an existing FIFO as a Channel ('r' = read end, 'w' = write end). */
export async function openFifo(path: string, direction: 'r' | 'w', options: FifoOpenOptions = {}): Promise<Channel> {
  checkPath(path);
  if (direction !== 'r' && direction !== 'w') throw new ArgumentError(`direction must be 'r' or 'w', got ${String(direction)}`);
  assertFifo(path);
  if (options.signal?.aborted) throw new AbortError(`open FIFO ${path} aborted`);
  return direction === 'w' ? openWriteEnd(path, options) : openReadEnd(path, options);
}

/** The write end: O_NONBLOCK open fails with ENXIO while no reader exists, so poll with backoff. */
async function openWriteEnd(path: string, options: FifoOpenOptions): Promise<Channel> {
  const deadline = options.timeoutMs !== undefined && options.timeoutMs > 0 ? Date.now() + options.timeoutMs : Infinity;
  let delay = 1;
  for (;;) {
    try {
      const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
      return wrap(fd, path, 'w', options);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw fromSystemError(err, `open FIFO ${path} for writing`);
    }
    if (options.signal?.aborted) throw new AbortError(`open FIFO ${path} aborted`);
    if (Date.now() >= deadline) throw new TimeoutError(`open FIFO ${path}: no reader within ${options.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 50);
  }
}

/**
 * The read end: a blocking open in the thread pool waits for the first writer
 * (a non-blocking one would see EOF at once). To give up, we open the write
 * end ourselves, which lets the blocked open return, and close both.
 *
 * Each read end waiting for its writer holds one libuv thread-pool thread
 * (4 by default, UV_THREADPOOL_SIZE): while all of them wait, other fs and
 * dns work in this process waits too. Give such opens a timeout or a signal.
 */
async function openReadEnd(path: string, options: FifoOpenOptions): Promise<Channel> {
  let gaveUp: Error | undefined;
  let retry: NodeJS.Timeout | undefined;
  const poke = (): void => {
    try {
      closeQuietly(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: our open(2) has not started yet (the thread pool is busy), or it has returned
    }
  };
  const unblock = (reason: Error): void => {
    if (gaveUp) return;
    gaveUp = reason;
    poke();
    // A poke before our open(2) starts finds no reader and does nothing, and
    // the open would then block for good: poke until it has returned.
    retry = setInterval(poke, 10);
  };
  const timer =
    options.timeoutMs !== undefined && options.timeoutMs > 0
      ? deadline(options.timeoutMs, () => unblock(new TimeoutError(`open FIFO ${path}: no writer within ${options.timeoutMs} ms`)))
      : undefined;
  const onAbort = (): void => unblock(new AbortError(`open FIFO ${path} aborted`));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // The callback form gives a plain fd that libuv can own (a FileHandle would close it on GC).
    const fd = await new Promise<number>((resolve, reject) =>
      openAsync(path, constants.O_RDONLY, (err, fd) => (err ? reject(err) : resolve(fd))),
    );
    if (gaveUp) {
      closeQuietly(fd);
      throw gaveUp;
    }
    return wrap(fd, path, 'r', options);
  } catch (err) {
    throw gaveUp ?? fromSystemError(err, `open FIFO ${path} for reading`);
  } finally {
    timer?.clear();
    if (retry) clearInterval(retry);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
