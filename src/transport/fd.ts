/** Typed access to the sb_fd addon: pipe, socketpair, mkfifo, peer credentials. */
import { fromSystemError } from '../errors.js';
import { loadAddon } from '../native.js';
import type { PeerInfo } from './channel.js';

interface FdAddon {
  pipe(): [number, number];
  socketpair(): [number, number];
  mkfifo(path: string, mode: number): void;
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  setCloexec(fd: number, on: number): void;
  fdType(fd: number): 'fifo' | 'socket' | 'file' | 'char' | 'other';
  readNonblock(fd: number, target: Uint8Array): number;
  writeNonblock(fd: number, data: Uint8Array): number;
}

const addon = (): FdAddon => loadAddon<FdAddon>('sb_fd');

function sys<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw fromSystemError(err, what);
  }
}

/** pipe(2): [readFd, writeFd], close-on-exec. */
export const rawPipe = (): [number, number] => sys('pipe', () => addon().pipe());
/** socketpair(AF_UNIX, SOCK_STREAM): two connected fds, close-on-exec. */
export const rawSocketpair = (): [number, number] => sys('socketpair', () => addon().socketpair());
export const mkfifoSync = (path: string, mode: number): void => sys(`mkfifo ${path}`, () => addon().mkfifo(path, mode));
export const setCloexec = (fd: number, on: boolean): void => sys('fcntl', () => addon().setCloexec(fd, on ? 1 : 0));
export const fdType = (fd: number): ReturnType<FdAddon['fdType']> => sys('fstat', () => addon().fdType(fd));

/**
 * Read what the descriptor holds now into `target`, never waiting: the
 * byte count, 0 at end of stream, or a negative errno (-11, EAGAIN, when
 * nothing is there). For polling progress loops on a socket that libuv also
 * watches: bytes taken here never reach the socket's 'data' events, so the
 * caller must be the only reader of those bytes.
 */
export function readNonblock(fd: number, target: Uint8Array): number {
  return addon().readNonblock(fd, target);
}

/**
 * One non-blocking send of as much of `data` as the kernel takes now: the
 * byte count or a negative errno (-11, EAGAIN, when the buffer is full).
 * No SIGPIPE. Only in order when nothing else is queued for the descriptor.
 */
export function writeNonblock(fd: number, data: Uint8Array): number {
  return addon().writeNonblock(fd, data);
}

/** SO_PEERCRED of a connected Unix socket; {} where the OS cannot tell. */
export function peerCredentials(fd: number | undefined): PeerInfo {
  if (fd === undefined || fd < 0) return {};
  try {
    return addon().peerCred(fd);
  } catch {
    return {};
  }
}
