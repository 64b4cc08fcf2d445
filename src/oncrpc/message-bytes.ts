/**
 * Out of a reused XdrWriter into bytes a socket (or a cache) may keep. The
 * writer keeps its buffer, so a call does not pay for a new zero-filled one
 * (and its regrowth from the initial size) every time; the bytes are copied
 * into uninitialised memory, which costs less than zero-filling.
 */
import type { XdrWriter } from '../wire/index.js';

/** Messages shorter than this are copied into Node's pooled buffers (under Buffer.poolSize / 2). */
const POOLED = 4096;
/** A message this big takes the writer's own buffer instead, so the writer does not keep that much memory. */
const HAND_OVER = 1024 * 1024;

/**
 * The bytes written, in memory of their own. Small ones go into Node's
 * pooled buffers unless `pooled` is false (bytes kept for long, which must
 * not pin a shared pool slab).
 */
export function takeWritten(w: XdrWriter, pooled = true): Uint8Array {
  const n = w.length;
  if (n >= HAND_OVER) return w.finish();
  const out = pooled && n < POOLED ? Buffer.allocUnsafe(n) : Buffer.allocUnsafeSlow(n);
  // Referenced opaques (a writer with referenceBytes) are copied straight from the caller's arrays: one copy.
  w.copyTo(out);
  return out;
}

/**
 * The bytes written as pieces a socket may keep, for one writev: what sits
 * in the writer's own buffer is copied out (it is reused for the next
 * message), referenced opaques are passed on as they are.
 */
export function takeSegments(w: XdrWriter): Uint8Array[] {
  if (!w.hasReferences) return [takeWritten(w)];
  return w.segments(copyOut);
}

function copyOut(own: Uint8Array): Uint8Array {
  const copy = own.length < POOLED ? Buffer.allocUnsafe(own.length) : Buffer.allocUnsafeSlow(own.length);
  copy.set(own);
  return copy;
}
