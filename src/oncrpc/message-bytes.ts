/**
 * Out of a reused XdrWriter into bytes a socket (or a cache) may keep: a
 * small message is copied out and the writer keeps its buffer; a large one
 * takes the writer's own buffer (no copy; the writer starts a new one).
 */
import type { XdrWriter } from '../wire/index.js';

/** Messages shorter than this are copied (Node pools allocations under Buffer.poolSize / 2). */
const POOLED = 4096;

/**
 * The bytes written. Small ones go into Node's pooled buffers, or, when
 * `pooled` is false (bytes kept for long, which must not pin a shared pool
 * slab), into an array of their own size.
 */
export function takeWritten(w: XdrWriter, pooled = true): Uint8Array {
  if (w.length >= POOLED) return w.finish();
  if (!pooled) return w.view().slice();
  const out = Buffer.allocUnsafe(w.length);
  out.set(w.view());
  return out;
}
