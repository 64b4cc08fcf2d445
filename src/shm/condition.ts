/**
 * A condition variable in shared memory, used with a Mutex of the same
 * memory. Layout: 4 words: a sequence number bumped by every signal, the
 * number of waiters, 2 spare. As with pthreads, wake-ups may be spurious:
 * wait in a loop that re-checks the condition.
 */
import { TimeoutError, AbortError } from '../errors.js';
import { cellsAt, deadlineOf, remaining, type MemoryLike } from './cells.js';
import { futexWait, futexWake, futexWaitAsync } from './futex.js';
import type { Mutex } from './mutex.js';

const SEQ = 0;
const WAITERS = 1;

export class Condition {
  static readonly BYTES = 16;
  readonly #c: Int32Array;

  constructor(memory: MemoryLike, byteOffset = 0) {
    this.#c = cellsAt(memory, byteOffset, 4, 'Condition');
  }

  /**
   * Unlock `mutex`, sleep until signalled, lock it again. Throws TimeoutError
   * (with the mutex held again) after timeoutMs; the relock may throw
   * OwnerDeadError like Mutex.lock().
   */
  wait(mutex: Mutex, timeoutMs?: number): void {
    const deadline = deadlineOf(timeoutMs);
    const seq = Atomics.load(this.#c, SEQ);
    Atomics.add(this.#c, WAITERS, 1);
    let r: string;
    mutex.unlock();
    try {
      r = futexWait(this.#c, SEQ, seq, remaining(deadline));
    } finally {
      Atomics.sub(this.#c, WAITERS, 1);
      mutex.lock();
    }
    if (r === 'timed-out') throw new TimeoutError('timed out waiting for the condition');
  }

  /** wait() without blocking the event loop (relocks with lockAsync). */
  async waitAsync(mutex: Mutex, options: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined } = {}): Promise<void> {
    const deadline = deadlineOf(options.timeoutMs);
    const seq = Atomics.load(this.#c, SEQ);
    Atomics.add(this.#c, WAITERS, 1);
    let r: string;
    mutex.unlock();
    try {
      r = await futexWaitAsync(this.#c, SEQ, seq, { timeoutMs: remaining(deadline), signal: options.signal });
    } catch (err) {
      if (!(err instanceof AbortError)) throw err;
      r = 'aborted';
    } finally {
      Atomics.sub(this.#c, WAITERS, 1);
      await mutex.lockAsync();
    }
    if (r === 'timed-out') throw new TimeoutError('timed out waiting for the condition');
    if (r === 'aborted') throw new AbortError();
  }

  /** Wake one waiter. */
  signal(): void {
    Atomics.add(this.#c, SEQ, 1);
    if (Atomics.load(this.#c, WAITERS) > 0) futexWake(this.#c, SEQ, 1);
  }

  /** Wake every waiter. */
  broadcast(): void {
    Atomics.add(this.#c, SEQ, 1);
    if (Atomics.load(this.#c, WAITERS) > 0) futexWake(this.#c, SEQ, Infinity);
  }
}
