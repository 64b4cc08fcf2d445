/**
 * Cross-process wait and wake on an Int32Array element of shared memory.
 * `Atomics.wait`/`Atomics.notify` only wake threads of one process (V8 keeps
 * its own waiter list); these use the futex system call (shared futexes), so
 * a waiter in one process is woken by a wake in another, and by C programs
 * calling FUTEX_WAKE on the same word.
 *
 * The two worlds do not mix: a thread blocked in Atomics.wait is not woken by
 * futexWake, and futexWait is not woken by Atomics.notify.
 */
import { AbortError, ArgumentError } from '../errors.js';
import { addon, sys, type WaitResult } from './native.js';

export type { WaitResult } from './native.js';

function timeoutArg(timeoutMs: number | undefined): number {
  if (timeoutMs === undefined) return -1;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs)) throw new ArgumentError('timeoutMs must be a number');
  return timeoutMs === Infinity ? -1 : Math.max(0, timeoutMs);
}

/**
 * Block the calling thread while `cells[index] === expected`, until woken or
 * `timeoutMs` passes. Like Atomics.wait: 'not-equal' if the value already
 * differs, 'ok' when woken (possibly spuriously: re-check), 'timed-out'.
 */
export function futexWait(cells: Int32Array, index: number, expected: number, timeoutMs?: number): WaitResult {
  const t = timeoutArg(timeoutMs);
  return sys('futexWait', () => addon().futexWait(cells, index, expected | 0, t));
}

/** Wake up to `count` waiters (in any process) on `cells[index]`; returns how many were woken. */
export function futexWake(cells: Int32Array, index: number, count = 1): number {
  return sys('futexWake', () => addon().futexWake(cells, index, count === Infinity ? -1 : count));
}

export interface AsyncWaitOptions {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Keep the event loop alive while waiting (default true). */
  ref?: boolean | undefined;
}

/**
 * The same wait without blocking the event loop: a helper thread sleeps in the
 * kernel and the promise settles on the loop. Rejects with AbortError when
 * `signal` aborts.
 */
export function futexWaitAsync(cells: Int32Array, index: number, expected: number, options: AsyncWaitOptions = {}): Promise<WaitResult> {
  const t = timeoutArg(options.timeoutMs);
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(new AbortError());
  return new Promise<WaitResult>((resolve, reject) => {
    const onAbort = (): void => {
      addon().cancelWait(id);
      reject(new AbortError());
    };
    const id = sys('futexWaitAsync', () =>
      addon().futexWaitAsync(cells, index, expected | 0, t, options.ref ?? true, (r) => {
        signal?.removeEventListener('abort', onAbort);
        if (r !== 'cancelled') resolve(r);
      }),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Cancellable low-level async wait for internal users (rings): returns a cancel function. */
export function futexWaitCallback(
  cells: Int32Array,
  index: number,
  expected: number,
  timeoutMs: number,
  ref: boolean,
  cb: (r: WaitResult) => void,
): () => void {
  const id = addon().futexWaitAsync(cells, index, expected | 0, timeoutMs, ref, (r) => {
    if (r !== 'cancelled') cb(r);
  });
  return () => {
    addon().cancelWait(id);
  };
}
