/**
 * A mutex in shared memory that works across processes and worker threads,
 * and survives the death of its holder (exercise 179).
 *
 * Layout: 4 words. Word 0 is the state: 0 when free, otherwise the kernel
 * thread id of the holder, with bit 30 set when someone may be waiting
 * (so unlock only makes a system call when needed). Word 1 is 1 while the
 * mutex is inconsistent (a holder died and nobody has repaired yet).
 *
 * Waiters sleep on the state word with a futex, waking every `livenessMs` to
 * check that the holder's thread still exists. If it does not, the waiter
 * takes the mutex over and lock() throws an OwnerDeadError, like POSIX
 * robust mutexes: the caller now HOLDS the mutex, should repair the data it
 * protects, call markConsistent(), then unlock(). Until markConsistent() is
 * called, every lock() keeps throwing OwnerDeadError (the lock is held each
 * time), so a repair is never skipped silently.
 */
import { SwitchboardError, TimeoutError, AbortError } from '../errors.js';
import { cellsAt, deadlineOf, remaining, type MemoryLike } from './cells.js';
import { futexWait, futexWake, futexWaitAsync } from './futex.js';
import { isAlive, threadId } from './native.js';

const WAITERS = 1 << 30;
const TID_MASK = WAITERS - 1;
const STATE = 0;
const INCONSISTENT = 1;

/** lock() found the previous holder dead; the caller now holds the mutex. */
export class OwnerDeadError extends SwitchboardError {
  override name = 'OwnerDeadError';
  readonly mutex: Mutex;
  readonly deadOwner: number;
  constructor(mutex: Mutex, deadOwner: number) {
    super(
      'EOWNERDEAD',
      deadOwner
        ? `the holder of the mutex (thread ${deadOwner}) died while holding it; you now hold it: repair the shared data, call markConsistent(), then unlock()`
        : 'the mutex is inconsistent since a holder died; you now hold it: repair the shared data, call markConsistent(), then unlock()',
    );
    this.mutex = mutex;
    this.deadOwner = deadOwner;
  }
}

export interface LockOptions {
  timeoutMs?: number | undefined;
  /** How often a waiter checks that the holder is alive (default 100 ms). */
  livenessMs?: number | undefined;
}

export interface LockAsyncOptions extends LockOptions {
  signal?: AbortSignal | undefined;
}

export class Mutex {
  /** Bytes a mutex occupies (keep it 4-byte aligned). */
  static readonly BYTES = 16;
  readonly #c: Int32Array;

  /** A view of the mutex at `byteOffset`; memory starts zeroed = unlocked, so a fresh region needs no init. */
  constructor(memory: MemoryLike, byteOffset = 0) {
    this.#c = cellsAt(memory, byteOffset, 4, 'Mutex');
  }

  /** Reset to unlocked and consistent (only while nobody uses it). */
  static init(memory: MemoryLike, byteOffset = 0): Mutex {
    const m = new Mutex(memory, byteOffset);
    Atomics.store(m.#c, STATE, 0);
    Atomics.store(m.#c, INCONSISTENT, 0);
    return m;
  }

  /** The thread id of the holder, or 0. */
  get owner(): number {
    return Atomics.load(this.#c, STATE) & TID_MASK;
  }

  get isConsistent(): boolean {
    return Atomics.load(this.#c, INCONSISTENT) === 0;
  }

  /** Take the mutex if free; false otherwise. Throws OwnerDeadError (holding it) if inconsistent. */
  tryLock(): boolean {
    const me = threadId();
    if (Atomics.compareExchange(this.#c, STATE, 0, me) !== 0) {
      const v = Atomics.load(this.#c, STATE);
      if (v !== 0 && !isAlive(v & TID_MASK)) return this.#takeOver(v, me);
      return false;
    }
    return this.#acquired();
  }

  /** Block this thread until the mutex is ours. TimeoutError after timeoutMs; OwnerDeadError as described above. */
  lock(options: LockOptions = {}): void {
    const me = threadId();
    if (Atomics.compareExchange(this.#c, STATE, 0, me) === 0) {
      this.#acquired();
      return;
    }
    const deadline = deadlineOf(options.timeoutMs);
    const slice = options.livenessMs ?? 100;
    for (;;) {
      const v = this.#prepareWait(me);
      if (v === 0) return;
      if ((v & TID_MASK) === me) throw new SwitchboardError('EINVAL', 'this thread already holds the mutex (lock() would deadlock)');
      const left = remaining(deadline);
      if (left === 0) throw new TimeoutError('timed out waiting for the mutex');
      const r = futexWait(this.#c, STATE, v, Math.min(left, slice));
      if (r === 'timed-out' && !isAlive(v & TID_MASK) && this.#takeOver(v, me)) return;
    }
  }

  /** lock() without blocking the event loop. */
  async lockAsync(options: LockAsyncOptions = {}): Promise<void> {
    const me = threadId();
    if (Atomics.compareExchange(this.#c, STATE, 0, me) === 0) {
      this.#acquired();
      return;
    }
    const deadline = deadlineOf(options.timeoutMs);
    const slice = options.livenessMs ?? 100;
    for (;;) {
      if (options.signal?.aborted) throw new AbortError();
      const v = this.#prepareWait(me);
      if (v === 0) return;
      const left = remaining(deadline);
      if (left === 0) throw new TimeoutError('timed out waiting for the mutex');
      // Another task of this same thread may hold it: just wait for its unlock.
      const r = await futexWaitAsync(this.#c, STATE, v, { timeoutMs: Math.min(left, slice), signal: options.signal });
      if (r === 'timed-out' && (v & TID_MASK) !== me && !isAlive(v & TID_MASK) && this.#takeOver(v, me)) return;
    }
  }

  /** Release the mutex. ENOTOWNER if this thread does not hold it. */
  unlock(): void {
    const me = threadId();
    const v = Atomics.load(this.#c, STATE);
    if ((v & TID_MASK) !== me) throw new SwitchboardError('ENOTOWNER', v === 0 ? 'unlock of a mutex that is not locked' : `unlock of a mutex held by thread ${v & TID_MASK}`);
    const old = Atomics.exchange(this.#c, STATE, 0);
    if (old & WAITERS) futexWake(this.#c, STATE, 1);
  }

  /** After an OwnerDeadError: declare the protected data repaired. Must hold the mutex. */
  markConsistent(): void {
    if (this.owner !== threadId()) throw new SwitchboardError('ENOTOWNER', 'markConsistent() needs the mutex held by this thread');
    Atomics.store(this.#c, INCONSISTENT, 0);
  }

  /**
   * Declare the protected data damaged (must hold the mutex): the next
   * lock() after our unlock() gets OwnerDeadError and repairs, as if we had
   * died. Rings use it when a half-written message cannot be cancelled yet.
   */
  markInconsistent(): void {
    if (this.owner !== threadId()) throw new SwitchboardError('ENOTOWNER', 'markInconsistent() needs the mutex held by this thread');
    Atomics.store(this.#c, INCONSISTENT, 1);
  }

  /** Run `f` holding the mutex (sync). */
  withLock<T>(f: () => T, options?: LockOptions): T {
    this.lock(options);
    try {
      return f();
    } finally {
      this.unlock();
    }
  }

  /** Sets the waiters bit and returns the state to sleep on, or 0 once the mutex was taken. */
  #prepareWait(me: number): number {
    for (;;) {
      const v = Atomics.load(this.#c, STATE);
      if (v === 0) {
        // We cannot know whether others still sleep, so keep the waiters bit.
        if (Atomics.compareExchange(this.#c, STATE, 0, me | WAITERS) === 0) {
          this.#acquired();
          return 0;
        }
        continue;
      }
      if (v & WAITERS) return v;
      if (Atomics.compareExchange(this.#c, STATE, v, v | WAITERS) === v) return v | WAITERS;
    }
  }

  #takeOver(dead: number, me: number): boolean {
    if (Atomics.compareExchange(this.#c, STATE, dead, me | WAITERS) !== dead) return false;
    Atomics.store(this.#c, INCONSISTENT, 1);
    throw new OwnerDeadError(this, dead & TID_MASK);
  }

  #acquired(): boolean {
    if (Atomics.load(this.#c, INCONSISTENT) !== 0) throw new OwnerDeadError(this, 0);
    return true;
  }
}
