/** Where a synchronisation object lives: a few aligned Int32 words of shared memory. */
import { performance } from 'node:perf_hooks';
import { ArgumentError } from '../errors.js';
import type { Region } from './region.js';

export type MemoryLike = SharedArrayBuffer | Region;

/** An Int32Array of `words` words at `byteOffset` of the memory, checked for alignment and bounds. */
export function cellsAt(memory: MemoryLike, byteOffset: number, words: number, what: string): Int32Array {
  const buffer = memory instanceof SharedArrayBuffer ? memory : memory.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) throw new ArgumentError(`${what} needs a SharedArrayBuffer or a Region`);
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0) {
    throw new ArgumentError(`${what}: byteOffset must be a non-negative multiple of 4, got ${byteOffset}`);
  }
  if (byteOffset + words * 4 > buffer.byteLength) {
    throw new ArgumentError(`${what}: ${words * 4} bytes at offset ${byteOffset} do not fit in ${buffer.byteLength} bytes`);
  }
  return new Int32Array(buffer, byteOffset, words);
}

/** Milliseconds left before `deadline` (Infinity when there is none). */
export function remaining(deadline: number): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - performance.now());
}

export function deadlineOf(timeoutMs: number | undefined): number {
  if (timeoutMs === undefined || timeoutMs === Infinity) return Infinity;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) throw new ArgumentError('timeoutMs must be a number >= 0');
  return performance.now() + timeoutMs;
}
