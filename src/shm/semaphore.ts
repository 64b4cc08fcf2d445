/**
 * A counting semaphore in shared memory (exercise 179), for processes and
 * workers. Layout: 4 words: the count, the number of sleepers, 2 spare.
 * post() makes a system call only when someone sleeps.
 */
import { ArgumentError, TimeoutError, AbortError } from '../errors.js';
import { cellsAt, deadlineOf, remaining, type MemoryLike } from './cells.js';
import { futexWait, futexWake, futexWaitAsync } from './futex.js';

const COUNT = 0;
const SLEEPERS = 1;

export class Semaphore {
  static readonly BYTES = 16;
  readonly #c: Int32Array;

  constructor(memory: MemoryLike, byteOffset = 0) {
    this.#c = cellsAt(memory, byteOffset, 4, 'Semaphore');
  }

  /** Set the count (only while nobody uses it). */
  static init(memory: MemoryLike, byteOffset: number, value: number): Semaphore {
    if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw new ArgumentError('semaphore value must be an integer in 0..2^31-1');
    const s = new Semaphore(memory, byteOffset);
    Atomics.store(s.#c, COUNT, value);
    Atomics.store(s.#c, SLEEPERS, 0);
    return s;
  }

  get value(): number {
    return Atomics.load(this.#c, COUNT);
  }

  /** Decrement if positive; false otherwise. */
  tryWait(): boolean {
    for (;;) {
      const c = Atomics.load(this.#c, COUNT);
      if (c <= 0) return false;
      if (Atomics.compareExchange(this.#c, COUNT, c, c - 1) === c) return true;
    }
  }

  /** Block this thread until the count is positive, then decrement. TimeoutError after timeoutMs. */
  wait(timeoutMs?: number): void {
    if (this.tryWait()) return;
    const deadline = deadlineOf(timeoutMs);
    for (;;) {
      const left = remaining(deadline);
      if (left === 0) throw new TimeoutError('timed out waiting for the semaphore');
      Atomics.add(this.#c, SLEEPERS, 1);
      try {
        futexWait(this.#c, COUNT, 0, left);
      } finally {
        Atomics.sub(this.#c, SLEEPERS, 1);
      }
      if (this.tryWait()) return;
    }
  }

  /** wait() without blocking the event loop. */
  async waitAsync(options: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (this.tryWait()) return;
    const deadline = deadlineOf(options.timeoutMs);
    for (;;) {
      if (options.signal?.aborted) throw new AbortError();
      const left = remaining(deadline);
      if (left === 0) throw new TimeoutError('timed out waiting for the semaphore');
      Atomics.add(this.#c, SLEEPERS, 1);
      try {
        await futexWaitAsync(this.#c, COUNT, 0, { timeoutMs: left, signal: options.signal });
      } finally {
        Atomics.sub(this.#c, SLEEPERS, 1);
      }
      if (this.tryWait()) return;
    }
  }

  /** Add `n` (default 1) and wake as many sleepers. */
  post(n = 1): void {
    if (!Number.isInteger(n) || n < 1) throw new ArgumentError('post(n) needs a positive integer');
    Atomics.add(this.#c, COUNT, n);
    if (Atomics.load(this.#c, SLEEPERS) > 0) futexWake(this.#c, COUNT, n);
  }
}
