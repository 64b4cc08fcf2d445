/**
 * XdrWriter: a chainable, growable big-endian writer in 4-byte units (RFC 4506
 * section 3). Every method asserts the value fits its XDR type before it
 * writes anything, so a failed write leaves the buffer unchanged.
 *
 * A writer made with `referenceBytes` keeps opaques at least that long as
 * references to the caller's arrays instead of copying them; `segments()`
 * then hands out the message as pieces (the writer's buffer between the
 * references, and the references), so a 64 KiB argument can go to a socket
 * in one writev without being copied at all.
 */
import { allocBytes, copyBytes } from './copy-bytes.js';
import { XdrValueError } from './xdr-errors.js';

const MAX_U32 = 0xffff_ffff;
const MIN_HYPER = -(1n << 63n);
const MAX_HYPER = (1n << 63n) - 1n;
const MAX_UHYPER = (1n << 64n) - 1n;
const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);

export function assertInt32(v: number, what = 'int'): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) {
    throw new XdrValueError(`${what} must be an integer in [-2^31, 2^31-1], got ${String(v)}`);
  }
}

export function assertUint32(v: number, what = 'unsigned int'): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_U32) {
    throw new XdrValueError(`${what} must be an integer in [0, 2^32-1], got ${String(v)}`);
  }
}

function pad(n: number): number {
  return (4 - (n & 3)) & 3;
}

export interface XdrWriterOptions {
  /**
   * Opaques (and raw XDR) of at least this many bytes are not copied: the
   * writer keeps a reference to the caller's array, which must then stay
   * unchanged until the message is sent. Default: always copy.
   */
  referenceBytes?: number | undefined;
}

export class XdrWriter {
  private buf: Uint8Array;
  private dv: DataView;
  private pos = 0;
  private readonly initialSize: number;
  private readonly referenceBytes: number;
  /** Referenced arrays, and where each one goes among the buffer's bytes (offsets into buf, ascending). */
  private refs: Uint8Array[] = [];
  private refAt: number[] = [];
  private refBytes = 0;

  constructor(initialSize = 256, options: XdrWriterOptions = {}) {
    this.initialSize = Math.max(16, initialSize);
    this.buf = new Uint8Array(this.initialSize);
    this.dv = new DataView(this.buf.buffer);
    const ref = options.referenceBytes ?? Infinity;
    if (!(ref >= 1)) throw new XdrValueError(`referenceBytes must be at least 1, got ${String(ref)}`);
    this.referenceBytes = ref;
  }

  /** Bytes written so far (referenced ones included). */
  get length(): number {
    return this.pos + this.refBytes;
  }

  /** True when some of the bytes written are references to the caller's arrays (see segments()). */
  get hasReferences(): boolean {
    return this.refs.length > 0;
  }

  private ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    // After finish() the buffer is empty: start again at the initial size.
    let size = Math.max(this.buf.length * 2, this.initialSize);
    // A big value (a 64 KiB opaque) gets one buffer of about its size, not the next power of two.
    if (size < need) size = need + (need >> 3);
    const next = new Uint8Array(size);
    copyBytes(next, this.buf.subarray(0, this.pos), 0);
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  int(v: number): this {
    assertInt32(v);
    this.ensure(4);
    this.dv.setInt32(this.pos, v);
    this.pos += 4;
    return this;
  }

  uint(v: number): this {
    assertUint32(v);
    this.ensure(4);
    this.dv.setUint32(this.pos, v);
    this.pos += 4;
    return this;
  }

  /** An enum is encoded as an int; the codec checks membership. */
  enum(v: number): this {
    return this.int(v);
  }

  bool(v: boolean): this {
    if (typeof v !== 'boolean') throw new XdrValueError(`bool must be true or false, got ${String(v)}`);
    return this.int(v ? 1 : 0);
  }

  hyper(v: bigint): this {
    if (typeof v !== 'bigint' || v < MIN_HYPER || v > MAX_HYPER) {
      throw new XdrValueError(`hyper must be a bigint in [-2^63, 2^63-1], got ${String(v)}`);
    }
    this.ensure(8);
    this.dv.setBigInt64(this.pos, v);
    this.pos += 8;
    return this;
  }

  uhyper(v: bigint): this {
    if (typeof v !== 'bigint' || v < 0n || v > MAX_UHYPER) {
      throw new XdrValueError(`unsigned hyper must be a bigint in [0, 2^64-1], got ${String(v)}`);
    }
    this.ensure(8);
    this.dv.setBigUint64(this.pos, v);
    this.pos += 8;
    return this;
  }

  float(v: number): this {
    if (typeof v !== 'number') throw new XdrValueError(`float must be a number, got ${typeof v}`);
    this.ensure(4);
    this.dv.setFloat32(this.pos, v);
    this.pos += 4;
    return this;
  }

  double(v: number): this {
    if (typeof v !== 'number') throw new XdrValueError(`double must be a number, got ${typeof v}`);
    this.ensure(8);
    this.dv.setFloat64(this.pos, v);
    this.pos += 8;
    return this;
  }

  /** Fixed-length opaque[n]: exactly n bytes, zero padded to a multiple of 4. */
  opaqueFixed(data: Uint8Array, n: number): this {
    if (!(data instanceof Uint8Array)) throw new XdrValueError('opaque must be a Uint8Array');
    if (data.length !== n) throw new XdrValueError(`opaque[${n}] needs exactly ${n} bytes, got ${data.length}`);
    this.bytes(data);
    return this;
  }

  /** Variable-length opaque<max>: length, bytes, zero padding. */
  opaque(data: Uint8Array, max = MAX_U32): this {
    if (!(data instanceof Uint8Array)) throw new XdrValueError('opaque must be a Uint8Array');
    if (data.length > max) throw new XdrValueError(`opaque<${max}> got ${data.length} bytes`);
    this.ensure(4);
    this.dv.setUint32(this.pos, data.length);
    this.pos += 4;
    this.bytes(data);
    return this;
  }

  /** string<max>: UTF-8 bytes with a length prefix; the bound counts bytes. */
  string(s: string, max = MAX_U32): this {
    if (typeof s !== 'string') throw new XdrValueError(`string must be a string, got ${typeof s}`);
    // Worst case 3 bytes per UTF-16 unit; encodeInto writes in place, no temporary.
    this.ensure(4 + s.length * 3 + 3);
    const { written } = encoder.encodeInto(s, this.buf.subarray(this.pos + 4));
    if (written > max) throw new XdrValueError(`string<${max}> got ${written} bytes`);
    this.dv.setUint32(this.pos, written);
    const end = this.pos + 4 + written;
    const p = pad(written);
    for (let i = 0; i < p; i++) this.buf[end + i] = 0;
    this.pos = end + p;
    return this;
  }

  /** Raw bytes followed by zero padding to a multiple of 4 (the body of opaque). */
  private bytes(data: Uint8Array): void {
    const p = pad(data.length);
    if (data.length >= this.referenceBytes) {
      this.reference(data);
      this.ensure(p);
    } else {
      this.ensure(data.length + p);
      copyBytes(this.buf, data, this.pos);
      this.pos += data.length;
    }
    for (let i = 0; i < p; i++) this.buf[this.pos++] = 0;
  }

  private reference(data: Uint8Array): void {
    this.refs.push(data);
    this.refAt.push(this.pos);
    this.refBytes += data.length;
  }

  /** Bytes that are already XDR (a multiple of 4 long), copied (or referenced) as they are. */
  raw(data: Uint8Array): this {
    if ((data.length & 3) !== 0) throw new XdrValueError(`raw XDR must be a multiple of 4 bytes, got ${data.length}`);
    if (data.length >= this.referenceBytes) {
      this.reference(data);
      return this;
    }
    this.ensure(data.length);
    copyBytes(this.buf, data, this.pos);
    this.pos += data.length;
    return this;
  }

  /** Overwrite an unsigned int written earlier (e.g. a record mark reserved at offset 0). */
  setUintAt(offset: number, v: number): this {
    assertUint32(v);
    const total = this.length;
    if (!Number.isInteger(offset) || offset < 0 || offset + 4 > total) throw new XdrValueError(`offset ${offset} is outside the ${total} bytes written`);
    // From a position in the message to one in the buffer: skip the referenced arrays before it.
    let at = offset;
    for (let i = 0; i < this.refs.length; i++) {
      const start = (this.refAt[i] as number) + (offset - at);
      if (start >= offset + 4) break;
      const len = (this.refs[i] as Uint8Array).length;
      if (offset < start + len) throw new XdrValueError(`offset ${offset} is inside a referenced opaque`);
      at -= len;
    }
    this.dv.setUint32(at, v);
    return this;
  }

  /**
   * The message as pieces in order: the writer's own bytes between the
   * references, passed through `own` (by default views of the buffer, which
   * later writes or reset() overwrite), and the referenced arrays as they
   * are. One piece, the same as view(), when nothing is referenced.
   */
  segments(own: (bytes: Uint8Array) => Uint8Array = (b) => b): Uint8Array[] {
    const out: Uint8Array[] = [];
    let from = 0;
    for (let i = 0; i < this.refs.length; i++) {
      const at = this.refAt[i] as number;
      if (at > from) out.push(own(this.buf.subarray(from, at)));
      out.push(this.refs[i] as Uint8Array);
      from = at;
    }
    if (this.pos > from || out.length === 0) out.push(own(this.buf.subarray(from, this.pos)));
    return out;
  }

  /** Copy the whole message into `dst` at `at` (it must have room for `length` bytes). */
  copyTo(dst: Uint8Array, at = 0): void {
    if (at < 0 || at + this.length > dst.length) throw new XdrValueError(`${this.length} bytes do not fit at ${at} in ${dst.length}`);
    if (this.refs.length === 0) {
      copyBytes(dst, this.buf.subarray(0, this.pos), at);
      return;
    }
    for (const s of this.segments()) {
      copyBytes(dst, s, at);
      at += s.length;
    }
  }

  /**
   * The bytes written so far. Without references: a view that later writes or
   * reset() overwrite; with references: a copy of the whole message.
   */
  view(): Uint8Array {
    if (this.refs.length === 0) return this.buf.subarray(0, this.pos);
    const out = allocBytes(this.length);
    this.copyTo(out);
    return out;
  }

  /** Start over in the same buffer: only once nobody uses what view() returned. */
  reset(): this {
    this.pos = 0;
    if (this.refs.length > 0) {
      this.refs = [];
      this.refAt = [];
      this.refBytes = 0;
    }
    return this;
  }

  /**
   * The bytes written. The writer then starts over with a fresh buffer, so
   * the returned array is never overwritten by later writes.
   */
  finish(): Uint8Array {
    if (this.refs.length > 0) {
      // A copy of its own: the writer's buffer stays for the next message.
      const joined = this.view();
      this.reset();
      return joined;
    }
    const out = this.buf.subarray(0, this.pos);
    // The next buffer is allocated only if the writer is used again.
    this.buf = EMPTY;
    this.dv = EMPTY_VIEW;
    this.pos = 0;
    return out;
  }
}
