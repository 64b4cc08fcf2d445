/**
 * Byte copies and buffers for the codecs' big payloads (a 64 KiB opaque, a
 * record spanning socket chunks).
 *
 * Why pieces: glibc's memmove copies anything over ~2 KiB with `rep movsb`,
 * and on CPUs with fast short rep mov (AMD Zen among them) that runs 15-20x
 * slower when the destination sits a few bytes (1-31 on the bench machine)
 * past the source modulo 4096 (4K aliasing): a 64 KiB TypedArray.set then
 * takes 25 us instead of 1.5 us.
 * Where two buffers fall is up to malloc, so a process either always or never
 * hits it. Pieces below the rep-movsb threshold take the vector loop, which
 * does not care: about 3.5 us for 64 KiB whatever the alignment.
 */

/** Below glibc's smallest rep-movsb threshold (2112 bytes with FSRM). */
const PIECE = 2048;

/** Copy all of `src` into `dst` at `at` (the caller checked it fits). */
export function copyBytes(dst: Uint8Array, src: Uint8Array, at: number): void {
  const n = src.length;
  if (n <= PIECE) {
    dst.set(src, at);
    return;
  }
  for (let i = 0; i < n; i += PIECE) dst.set(src.subarray(i, i + PIECE), at + i);
}

const NodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(n: number): Uint8Array } }).Buffer;

/**
 * n bytes of memory of their own that the caller overwrites entirely: not
 * zero-filled where Node's Buffer is there (the codecs also run without it).
 * Not from Node's shared pool, so a long-lived message pins only itself.
 */
export function allocBytes(n: number): Uint8Array {
  // Below 32 KiB zero-filling costs less than Buffer.allocUnsafeSlow's own overhead (measured:
  // 42 against 443 ns at 32 B, 1.9 against 2.3 us at 16 KiB; 5.8 against 1.4 us at 64 KiB).
  if (NodeBuffer === undefined || n < 32 * 1024) return new Uint8Array(n);
  // A plain Uint8Array over that memory: the codecs hand out no Node types.
  return new Uint8Array(NodeBuffer.allocUnsafeSlow(n).buffer, 0, n);
}
