/**
 * Out of a reused XdrWriter into bytes a socket may keep: a small message is
 * copied into Node's pooled buffers (no new ArrayBuffer per call), a large
 * one takes the writer's own buffer (no copy; the writer starts a new one).
 */
import type { XdrWriter } from '../wire/index.js';

/** Messages shorter than this are copied (Node pools allocations under Buffer.poolSize / 2). */
const POOLED = 4096;

/** The bytes written, in a buffer of their own unless `pooled` is false. */
export function takeWritten(w: XdrWriter, pooled = true): Uint8Array {
  if (!pooled || w.length >= POOLED) return w.finish();
  const out = Buffer.allocUnsafe(w.length);
  out.set(w.view());
  return out;
}
