/**
 * Typed access to the sb_shm addon (native/shm.cc) and the one place where
 * its errors become SwitchboardErrors. Internal to src/shm.
 */
import { ArgumentError, SwitchboardError, type ErrorCode } from '../errors.js';
import { loadAddon } from '../native.js';

export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

/** How a spin ended: 1 = the word changed within the budget, 2 = after it, 3 = it did not change. */
export type SpinOutcome = 1 | 2 | 3;

export interface ShmAddon {
  gettid(): number;
  alive(id: number): boolean;
  yield(): void;
  copy(target: ArrayBufferView, targetOffset: number, source: ArrayBufferView, sourceOffset: number, length: number): void;
  spinWhile(cells: Int32Array, index: number, value: number, budgetNs: number, polls: number, rounds: number): SpinOutcome;
  /** The consumer's blocking fast path (spin, sleep, copy); every number in and out goes through `io` (see native/shm.cc). */
  ringRead(header: Int32Array, target: Uint8Array, io: Int32Array): number;
  /** ringRead with the header and io checked once: a slot, or -1 when every slot is taken. */
  ringBind(header: Int32Array, io: Int32Array): number;
  /** The buffer a bound slot reads into or writes from (its memory is kept alive until ringUnbind). */
  ringBindBuffer(slot: number, bytes: Uint8Array): void;
  ringUnbind(slot: number): void;
  /** Slots bound now, in the whole process (tests). */
  ringBoundCount(): number;
  /**
   * ringRead into the first `length` bytes of the slot's target; never throws
   * (RR_BAD_ARGS, RR_BAD_SLOT). A V8 fast API call where `fastCalls` is true.
   */
  ringReadBound(slot: number, length: number): number;
  /**
   * The producer's one-record write of the first `length` bytes of the slot's
   * buffer (io: [0] tail, [1] head seen, [2] largest payload, [3] woke, [6]
   * capacity): 1, or RW_SLOW (-2) for the general path; never throws.
   */
  ringWriteBound(slot: number, length: number): number;
  /** Whether this build registers fast API calls (V8 11.3 on x86-64; see native/fast-call.h). */
  readonly fastCalls: boolean;
  /** Calls this thread made through the fast path (for tests). */
  fastCallsTaken(): number;
  shmOpen(name: string, create: 0 | 1 | 2, mode: number): number;
  shmUnlink(name: string): void;
  ftruncate(fd: number, size: number): void;
  fallocate(fd: number, size: number): void;
  fstat(fd: number): { size: number; mode: number; uid: number };
  close(fd: number): void;
  mmap(fd: number, length: number, windowOffset: number, windowLength: number): SharedArrayBuffer;
  msync(buffer: SharedArrayBuffer, offset: number, length: number, sync: boolean): void;
  futexWait(cells: Int32Array, index: number, expected: number, timeoutMs: number): WaitResult;
  futexWake(cells: Int32Array, index: number, count: number): number;
  futexWaitAsync(
    cells: Int32Array,
    index: number,
    expected: number,
    timeoutMs: number,
    ref: boolean,
    cb: (r: WaitResult | 'cancelled') => void,
  ): number;
  cancelWait(id: number): boolean;
  semOpen(name: string, create: 0 | 1 | 2, mode: number, value: number): number;
  semClose(handle: number): void;
  semUnlink(name: string): void;
  semPost(handle: number): void;
  semTryWait(handle: number): boolean;
  semGetValue(handle: number): number;
  semWait(handle: number, timeoutMs: number): 'ok' | 'timed-out';
  semWaitAsync(handle: number, timeoutMs: number, ref: boolean, cb: (r: 'ok' | 'timed-out' | 'cancelled' | number) => void): number;
}

let cached: ShmAddon | undefined;

/** The addon, loaded on first use (EUNSUPPORTED when it was not built). */
export function addon(): ShmAddon {
  cached ??= loadAddon<ShmAddon>('sb_shm');
  return cached;
}

const errnoCodes: Record<string, ErrorCode> = {
  EEXIST: 'EEXIST',
  ENOENT: 'ENOENT',
  EACCES: 'EACCES',
  EPERM: 'EACCES',
  EINVAL: 'EINVAL',
  ENAMETOOLONG: 'EINVAL',
  ENOSPC: 'ELIMIT',
  ENOMEM: 'ELIMIT',
  EFBIG: 'ELIMIT',
  EMFILE: 'ELIMIT',
  ENFILE: 'ELIMIT',
  EOVERFLOW: 'ELIMIT',
  EBADF: 'ECLOSED',
  EAGAIN: 'ELIMIT',
};

/** Turn an error thrown by the addon into a SwitchboardError with `context` in front. */
export function shmError(err: unknown, context: string): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  if (err instanceof TypeError || err instanceof RangeError) return new ArgumentError(`${context}: ${err.message}`, { cause: err });
  const e = err as { code?: string; message?: string } | undefined;
  const code = (e?.code !== undefined ? errnoCodes[e.code] : undefined) ?? 'EIO';
  return new SwitchboardError(code, `${context}: ${e?.message ?? String(err)}`, { cause: err });
}

/** Run an addon call, converting its errors. */
export function sys<T>(context: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw shmError(err, context);
  }
}

let myTid = 0;
/** The kernel thread id of the calling thread (main thread or worker): the owner id in locks. */
export function threadId(): number {
  if (myTid === 0) myTid = addon().gettid();
  return myTid;
}

/** Is the process or thread `id` still running? Zombies count as dead. */
export function isAlive(id: number): boolean {
  return addon().alive(id);
}

/** sched_yield(): let another runnable thread have this CPU (a spinner whose peer may be waiting for it). */
export function yieldCpu(): void {
  addon().yield();
}

/**
 * memmove `length` bytes from `source[sourceOffset..]` to `target[targetOffset..]`
 * (byte offsets within the views; either may be shared memory). Much faster than
 * `TypedArray.set` for big copies touching a SharedArrayBuffer; bounds are checked.
 */
export function copyBytes(target: Uint8Array, targetOffset: number, source: Uint8Array, sourceOffset: number, length: number): void {
  addon().copy(target, targetOffset, source, sourceOffset, length);
}

/** Does the loaded addon carry the C spin, ring-read and bound-call functions (an addon built before them does not)? */
export function hasNativeSpin(): boolean {
  const a = addon();
  return typeof a.spinWhile === 'function' && typeof a.ringRead === 'function' && typeof a.ringBind === 'function';
}
