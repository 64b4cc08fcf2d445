/**
 * How a ring end waits for its peer: poll the peer's index for a while,
 * then sleep on a futex. Spinning pays when the peer runs on another core
 * and answers sooner than a futex wake-up would take (tens of microseconds
 * on a VM); it is pure loss when both ends share one CPU, because the peer
 * cannot run while we poll.
 *
 * 'adaptive' spins for up to `spinMicros` of wall time (a clock read and a
 * sched_yield every few hundred polls: the clock costs more than a poll, and
 * the yield lets a peer that the scheduler queued on our CPU run), or 4 times that
 * when this thread has just woken its sleeping peer (the answer cannot come
 * before the peer's own wake-up: without this, two ends that both slept
 * once would never see a spin succeed again). It keeps score of its spins,
 * stops spinning when fewer than one in four of the last 16 succeeded, and
 * probes again after 16, 32, ... up to 1024 sleeps. It never spins when the
 * process may use only one CPU (affinity included).
 * 'spin' never sleeps, and yields the CPU between rounds of polls (as the C
 * spin handshake does), so it degrades to scheduler round trips, not time
 * slices, when the peer shares its CPU; 'block' never spins.
 *
 * The polling itself runs in C (the addon's spinWhile, and ringRead, which
 * also takes the message) unless `nativeWait: false`: a poll there is a load
 * and a pause instead of an Atomics.load builtin call from JS. This class
 * only decides (budget()) and keeps score (settle()).
 */
import { performance } from 'node:perf_hooks';
import { availableParallelism } from 'node:os';
import { addon, hasNativeSpin, yieldCpu, type SpinOutcome } from './native.js';

export type WaitMode = 'adaptive' | 'spin' | 'block';

/** Default adaptive spin: about one futex wake-up on a loaded VM. */
export const DEFAULT_SPIN_MICROS = 50;
/** Polls before the first yield and clock read (a few microseconds): a busy peer on another core answers within these. */
export const DEFAULT_SPIN_POLLS = 128;
/** Polls between yields and clock reads. */
const POLLS_PER_ROUND = 128;
/** Rounds per call in 'spin' mode (the caller checks deadlines and liveness between calls). */
export const SPIN_ROUNDS = 16;
/** After this thread woke a sleeping peer, the answer takes at least a wake-up: spin this much longer. */
const AFTER_WAKE_FACTOR = 4;
const WINDOW = 16;
const FIRST_PROBE_GAP = 16;
const MAX_PROBE_GAP = 1024;

/**
 * Futex wakes made by ring ends of this thread. A request/response pair uses
 * two rings: the end that waits for the answer is not the one that woke the
 * peer, so the evidence is per thread.
 */
let wakesHere = 0;

/** A ring end of this thread woke a sleeping peer (the next spin of this thread should outlast its wake-up). */
export function noteWake(): void {
  wakesHere++;
}

/** SpinPolicy.budget(): the wait should not spin. */
export const NO_SPIN = 0;
/** SpinPolicy.budget(): forced spin, a slice of SPIN_ROUNDS rounds (no clock). */
export const SPIN_SLICE = -1;
/** Outcomes of one spin (as the addon's spinWhile returns them); 0 = no spin was made. */
export const SPIN_HIT = 1;
export const SPIN_LATE = 2;
export const SPIN_MISS = 3;
export type SpinResult = 0 | SpinOutcome;

export class SpinPolicy {
  /** 'spin': never sleep (spinWhile returns false after a slice; the caller checks deadlines and liveness). */
  readonly forever: boolean;
  /** Spins poll in C (the sb_shm addon) rather than with Atomics.load from JS. */
  readonly native: boolean;
  /** Polls before the first yield and clock read. */
  readonly polls: number;
  /** The same time in C polls (a load and a pause: about twice an Atomics.load from JS). */
  readonly nativePolls: number;
  readonly #adaptive: boolean;
  readonly #budgetMs: number;
  #on: boolean;
  #waits = 0;
  #hits = 0;
  /** While off: sleeps left before the next probe spin. */
  #skip = 0;
  #gap = FIRST_PROBE_GAP;
  #spins = 0;
  #spinHits = 0;
  #wakesSeen = 0;

  constructor(
    mode: WaitMode,
    options: { spinMicros?: number | undefined; spinIterations?: number | undefined; nativeWait?: boolean | undefined } = {},
  ) {
    this.forever = mode === 'spin';
    this.#adaptive = mode === 'adaptive';
    const micros = options.spinMicros ?? DEFAULT_SPIN_MICROS;
    this.polls = Math.max(1, Math.min(1 << 24, Math.floor(options.spinIterations ?? DEFAULT_SPIN_POLLS)));
    this.nativePolls = Math.ceil(this.polls / 2);
    // With one CPU (or an affinity mask of one), spinning only delays the peer that must run for us to succeed.
    const can = mode === 'spin' || (mode === 'adaptive' && micros > 0 && availableParallelism() > 1);
    this.#budgetMs = can ? Math.min(micros, 60e6) / 1000 : 0;
    this.#on = can;
    this.native = (options.nativeWait ?? true) && can && hasNativeSpin();
  }

  /** True when the next wait may spin (adaptive scoring has not turned it off). */
  get spinning(): boolean {
    return this.#on;
  }

  /** Spins done and spins that saw the change, since creation (for tests and tuning). */
  get stats(): { spins: number; hits: number } {
    return { spins: this.#spins, hits: this.#spinHits };
  }

  /**
   * How the next wait should spin, without changing any state: NO_SPIN,
   * SPIN_SLICE (forced spin) or a budget in nanoseconds (adaptive). After
   * the wait, report what happened with settle().
   */
  budget(): number {
    if (this.forever) return SPIN_SLICE;
    if (!this.#on && (this.#budgetMs === 0 || this.#skip - 1 > 0)) return NO_SPIN;
    // If this thread woke its peer since the last spin, the peer must first wake up: give it time.
    const woke = wakesHere !== this.#wakesSeen;
    // (at most 2^31 - 1 ns: the addon takes it as an int32; the caller spins again after a sleep anyway)
    return Math.min(0x7fffffff, Math.max(1, Math.round(this.#budgetMs * 1e6 * (woke ? AFTER_WAKE_FACTOR : 1))));
  }

  /**
   * A wait planned with budget() is over: 0 when it did not spin, else the
   * spin's outcome. Returns true when the spin saw the change.
   */
  settle(result: SpinResult): boolean {
    if (this.forever) return result === SPIN_HIT;
    if (!this.#on && this.#budgetMs > 0) this.#skip--;
    if (result === 0) return false;
    this.#spins++;
    this.#wakesSeen = wakesHere;
    // Seen, but after the budget (we lost the CPU to someone else): it worked, but spinning did not pay.
    this.#score(result === SPIN_HIT);
    return result !== SPIN_MISS;
  }

  /**
   * Poll `cells[index]` while it equals `value`: true as soon as it differs,
   * false when the spin gave up (or was not worth trying): then sleep.
   */
  spinWhile(cells: Int32Array, index: number, value: number): boolean {
    const b = this.budget();
    if (b === NO_SPIN) return this.settle(0);
    if (this.native) return this.settle(addon().spinWhile(cells, index, value, b > 0 ? b : 0, this.nativePolls, b > 0 ? 0 : SPIN_ROUNDS));
    return this.settle(b > 0 ? this.#spinJs(cells, index, value, b / 1e6) : this.#sliceJs(cells, index, value));
  }

  /** Forced spin from JS: like the C spin handshake, yield between rounds of polls. */
  #sliceJs(cells: Int32Array, index: number, value: number): SpinResult {
    for (let r = SPIN_ROUNDS; r > 0; r--) {
      for (let i = POLLS_PER_ROUND; i > 0; i--) if (Atomics.load(cells, index) !== value) return SPIN_HIT;
      yieldCpu();
    }
    return SPIN_MISS;
  }

  #spinJs(cells: Int32Array, index: number, value: number, budgetMs: number): SpinResult {
    for (let i = this.polls; i > 0; i--) if (Atomics.load(cells, index) !== value) return SPIN_HIT;
    const end = performance.now() + budgetMs;
    for (;;) {
      // A peer that sleeps and wakes in step with us tends to be woken onto our CPU (the
      // scheduler's wake affinity): then it runs only when we stop, so let it run now.
      yieldCpu();
      for (let i = POLLS_PER_ROUND; i > 0; i--) {
        if (Atomics.load(cells, index) !== value) return performance.now() <= end ? SPIN_HIT : SPIN_LATE;
      }
      if (performance.now() >= end) return SPIN_MISS;
    }
  }

  #score(hit: boolean): void {
    if (hit) this.#spinHits++;
    if (!this.#adaptive) return;
    if (!this.#on) {
      if (hit) {
        this.#on = true;
        this.#gap = FIRST_PROBE_GAP;
        this.#waits = 0;
        this.#hits = 0;
      } else {
        this.#gap = Math.min(this.#gap * 2, MAX_PROBE_GAP);
        this.#skip = this.#gap;
      }
      return;
    }
    this.#waits++;
    if (hit) this.#hits++;
    if (this.#waits >= WINDOW) {
      if (this.#hits * 4 < this.#waits) {
        this.#on = false;
        this.#skip = this.#gap;
      }
      this.#waits = 0;
      this.#hits = 0;
    }
  }
}
