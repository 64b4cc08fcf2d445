/** Typed access to the sb_fd addon: pipe, socketpair, mkfifo, peer credentials. */
import { ArgumentError, fromSystemError } from '../errors.js';
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
  recvDatagram(fd: number, target: Uint8Array): number;
  recvFrom(fd: number, target: Uint8Array, from: Uint8Array): number;
  sendTo(fd: number, data: Uint8Array, to: Uint8Array): number;
  peerName(address: Uint8Array): string;
  sockaddrOf(host: string, port: number, out: Uint8Array): number;
  waitReadable(fd: number, timeoutUs: number): number;
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

let direct: boolean | undefined;

/** Whether the sb_fd addon is there for readNonblock/writeNonblock (looked up once). */
export function directIoAvailable(): boolean {
  if (direct === undefined) {
    try {
      addon();
      direct = true;
    } catch {
      direct = false;
    }
  }
  return direct;
}

/**
 * Receive one datagram now, never waiting, into `target`: its length, a
 * negative errno (-11, EAGAIN, when none is queued), or `target.length + 1`
 * when the datagram was longer than `target` (its first target.length bytes
 * are in target, the rest is lost). Like readNonblock, bytes taken here never
 * reach the socket's 'message' events.
 */
export function recvDatagram(fd: number, target: Uint8Array): number {
  return addon().recvDatagram(fd, target);
}

/** Bytes a sender's address takes (a struct sockaddr_in6): the size of recvFrom's `from`. */
export const SOCKADDR_BYTES = 28;

/**
 * recvDatagram() on an unconnected socket, also writing the sender's raw
 * address into `from` (SOCKADDR_BYTES or more), for sendTo() and peerName().
 */
export function recvFrom(fd: number, target: Uint8Array, from: Uint8Array): number {
  return addon().recvFrom(fd, target, from);
}

/** One datagram to an address recvFrom() wrote, never waiting: bytes sent or a negative errno (-11 when the buffer is full). */
export function sendTo(fd: number, data: Uint8Array, to: Uint8Array): number {
  return addon().sendTo(fd, data, to);
}

/** "host:port" ("[v6]:port") of an address recvFrom() wrote, spelt as the dgram module does. */
export function peerName(address: Uint8Array): string {
  return addon().peerName(address);
}

/** The raw address of a numeric host and port into `out` (for sendTo): 0, or -22 when the host is not numeric. */
export function sockaddrOf(host: string, port: number, out: Uint8Array): number {
  return addon().sockaddrOf(host, port, out);
}

/** Longest waitReadable accepted: an hour (blocking the event loop longer is a mistake). */
export const MAX_WAIT_US = 3600e6;

/**
 * Sleep in the kernel (poll(2)) until `fd` is readable, at its end or in
 * error (a read then tells which), or `timeoutUs` microseconds pass: 1
 * readable, 0 timed out, or a negative errno (-9, EBADF, for a closed
 * descriptor). Signals do not shorten the wait. This blocks the whole
 * thread, event loop included: keep timeoutUs short. A negative or
 * non-integer fd, or a timeout that is not a number from 0 to MAX_WAIT_US,
 * is an ArgumentError.
 */
export function waitReadable(fd: number, timeoutUs: number): number {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fff_ffff) throw new ArgumentError(`waitReadable: fd must be a non-negative integer, got ${String(fd)}`);
  if (typeof timeoutUs !== 'number' || !(timeoutUs >= 0 && timeoutUs <= MAX_WAIT_US)) {
    throw new ArgumentError(`waitReadable: timeoutUs must be a number of microseconds from 0 to ${MAX_WAIT_US}, got ${String(timeoutUs)}`);
  }
  return addon().waitReadable(fd, timeoutUs);
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
