/**
 * A timeout of any length. Node's setTimeout takes at most 2^31-1 ms and
 * fires after 1 ms when given more (with only a warning), so a caller asking
 * for "a very long time" would get "at once"; longer waits are chained here.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Deadline {
  clear(): void;
}

/** Call `fn` once after `ms` milliseconds unless cleared first. */
export function deadline(ms: number, fn: () => void): Deadline {
  let timer: NodeJS.Timeout | undefined;
  const arm = (left: number): void => {
    timer = left > MAX_TIMER_MS ? setTimeout(() => arm(left - MAX_TIMER_MS), MAX_TIMER_MS) : setTimeout(fn, left);
  };
  arm(ms);
  return {
    clear: () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
