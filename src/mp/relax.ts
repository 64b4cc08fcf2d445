/**
 * What a spinning loop does every so often: sched_yield(), so that a peer
 * sharing our CPU (a host with more busy processes than cores) gets to run
 * instead of waiting for our time slice to end. On an idle core it returns at
 * once. A no-op where the sb_shm addon was not built.
 */
import { yieldCpu } from '../shm/native.js';

/** Polls between two yields (a few microseconds of polling). */
export const RELAX_EVERY = 128;

let available: boolean | undefined;

export function relax(): void {
  if (available === false) return;
  try {
    yieldCpu();
    available = true;
  } catch {
    available = false;
  }
}
