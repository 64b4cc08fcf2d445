import { allocBytes, copyBytes } from './copy-bytes.js';

/**
 * The shape shared by every framing codec (length prefix, ONC RPC record
 * marking, later the GIOP header): no I/O, `push(chunk)` bytes as they come,
 * then `next()` whole frames until it returns undefined. A decoder checks the
 * declared size against its maximum before it buffers anything for that frame,
 * and throws ProtocolError (EPROTO or EMSGSIZE) on bad input; after an error
 * it stays failed.
 */
export interface FrameDecoder {
  push(chunk: Uint8Array): void;
  next(): Uint8Array | undefined;
  /** Bytes held that do not make a whole frame yet (0 at a frame boundary). */
  readonly pending: number;
}

/** Turns one message into the chunks to write (header(s) and payload slices, no copy). */
export interface FrameEncoder {
  encode(message: Uint8Array): Uint8Array[];
}

/**
 * A queue of byte chunks that can hand out a contiguous view of its first n
 * bytes, copying only when those bytes span chunks.
 */
export class ByteQueue {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #offset = 0; // consumed bytes of chunks[head]
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Read a big-endian u32 at `at` bytes from the front without consuming. Caller checks length. */
  peekUint32(at = 0): number {
    let v = 0;
    let idx = this.#head;
    let off = this.#offset + at;
    for (let i = 0; i < 4; i++) {
      let c = this.#chunks[idx] as Uint8Array;
      while (off >= c.length) {
        off -= c.length;
        idx++;
        c = this.#chunks[idx] as Uint8Array;
      }
      v = v * 256 + (c[off] as number);
      off++;
    }
    return v;
  }

  /** Consume n bytes and return them as one view (zero-copy when they sit in one chunk). */
  take(n: number): Uint8Array {
    if (n > this.#length) throw new RangeError('ByteQueue.take past the end');
    this.#length -= n;
    if (n === 0) return new Uint8Array(0);
    const first = this.#chunks[this.#head] as Uint8Array;
    const avail = first.length - this.#offset;
    if (n <= avail) {
      const view = first.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
      if (this.#offset === first.length) this.#advance();
      return view;
    }
    // One copy, into memory that is not zero-filled first.
    const out = allocBytes(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[this.#head] as Uint8Array;
      const part = Math.min(c.length - this.#offset, n - filled);
      copyBytes(out, c.subarray(this.#offset, this.#offset + part), filled);
      filled += part;
      this.#offset += part;
      if (this.#offset === c.length) this.#advance();
    }
    return out;
  }

  /**
   * Consume n bytes as views of the chunks they sit in, appended to `into`
   * (no copy): for a frame assembled from pieces, copied once when whole.
   */
  takeViews(n: number, into: Uint8Array[]): void {
    if (n > this.#length) throw new RangeError('ByteQueue.takeViews past the end');
    this.#length -= n;
    while (n > 0) {
      const c = this.#chunks[this.#head] as Uint8Array;
      const part = Math.min(c.length - this.#offset, n);
      into.push(c.subarray(this.#offset, this.#offset + part));
      n -= part;
      this.#offset += part;
      if (this.#offset === c.length) this.#advance();
    }
  }

  /** Drop n bytes from the front. */
  skip(n: number): void {
    if (n > this.#length) throw new RangeError('ByteQueue.skip past the end');
    this.#length -= n;
    while (n > 0) {
      const c = this.#chunks[this.#head] as Uint8Array;
      const part = Math.min(c.length - this.#offset, n);
      n -= part;
      this.#offset += part;
      if (this.#offset === c.length) this.#advance();
    }
  }

  #advance(): void {
    this.#chunks[this.#head] = undefined as unknown as Uint8Array;
    this.#head++;
    this.#offset = 0;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}
