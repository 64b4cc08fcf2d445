/**
 * XdrReader: reads RFC 4506 values from a byte array. Every read checks the
 * remaining bytes first; every length prefix is checked against the declared
 * bound and the remaining bytes before anything is allocated. Opaque values are
 * returned as views into the input (no copy). Padding bytes are skipped
 * without checking that they are zero, as libtirpc does.
 */
import { XdrBoundError, XdrError } from './xdr-errors.js';

const MAX_U32 = 0xffff_ffff;
const decoder = new TextDecoder('utf-8', { fatal: false });

function pad(n: number): number {
  return (4 - (n & 3)) & 3;
}

export class XdrReader {
  readonly buf: Uint8Array;
  /** Made on the first hyper, float or double: most messages (RPC headers) need only 32-bit integers. */
  #dv: DataView | undefined;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, offset = 0, length = buf.length - offset) {
    this.buf = buf;
    this.pos = offset;
    this.end = offset + length;
    if (offset < 0 || this.end > buf.length) throw new XdrError(`reader range ${offset}+${length} is outside ${buf.length} bytes`);
  }

  private get view(): DataView {
    return (this.#dv ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throw unless n more bytes can be read. */
  assertBounds(n: number): void {
    if (n > this.end - this.pos) {
      throw new XdrError(`truncated: needs ${n} bytes at offset ${this.pos}, only ${this.end - this.pos} left`);
    }
  }

  /** Throw unless every byte was consumed. */
  done(): void {
    if (this.pos !== this.end) throw new XdrError(`${this.end - this.pos} bytes left over after the value`);
  }

  int(): number {
    this.assertBounds(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p] as number) << 24) | ((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number);
  }

  uint(): number {
    return this.int() >>> 0;
  }

  enum(): number {
    return this.int();
  }

  bool(): boolean {
    const v = this.int();
    if (v !== 0 && v !== 1) throw new XdrError(`bool must be 0 or 1, got ${v}`);
    return v === 1;
  }

  hyper(): bigint {
    this.assertBounds(8);
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return v;
  }

  uhyper(): bigint {
    this.assertBounds(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  float(): number {
    this.assertBounds(4);
    const v = this.view.getFloat32(this.pos);
    this.pos += 4;
    return v;
  }

  double(): number {
    this.assertBounds(8);
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  /** opaque[n]: a view of n bytes (padding skipped). */
  opaqueFixed(n: number): Uint8Array {
    const total = n + pad(n);
    this.assertBounds(total);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += total;
    return out;
  }

  /** The length prefix of a variable-length item, checked against its bound and what is left. */
  length(max: number, what: string, minElementSize: number): number {
    const n = this.uint();
    if (n > max) throw new XdrBoundError(what, n, max);
    const need = n * Math.max(minElementSize, 1);
    if (need > this.end - this.pos) {
      throw new XdrError(`truncated: ${what} of length ${n} needs at least ${need} bytes, only ${this.end - this.pos} left`);
    }
    return n;
  }

  /** opaque<max>: a view of the bytes (padding skipped). */
  opaque(max = MAX_U32): Uint8Array {
    const n = this.length(max, 'opaque', 1);
    return this.opaqueFixed(n);
  }

  /** string<max>, decoded as UTF-8 (invalid sequences become U+FFFD). */
  string(max = MAX_U32): string {
    const n = this.length(max, 'string', 1);
    const bytes = this.opaqueFixed(n);
    // Short ASCII strings are common (names, paths): skip TextDecoder for them.
    if (n <= 32) {
      let ascii = true;
      for (let i = 0; i < n; i++) if ((bytes[i] as number) > 0x7f) { ascii = false; break; }
      if (ascii) return String.fromCharCode.apply(null, bytes as unknown as number[]);
    }
    return decoder.decode(bytes);
  }
}
