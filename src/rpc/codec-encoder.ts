/**
 * The encoding half of the Switchboard RPC value codec: a growable write
 * buffer that is reused from message to message (no allocation per value,
 * no JSON), a frame-size limit checked while the buffer grows, and runtime
 * refusal of anything that cannot cross, naming where it sits.
 */
import { copyBytes } from '../wire/copy-bytes.js';
import { ProtocolError } from '../errors.js';
import { describe, keySegment, UnsendableError } from './codec-errors.js';
import { MAX_DEPTH, REF_FUNCTION, REF_OBJECT, T, TYPED_KINDS, type RefKind } from './codec-tags.js';
import { isProxyMarked, isStreamable } from './markers.js';

/** How references, streams and out-of-band binaries are written (supplied by a connection). */
export interface EncodeHooks {
  /** A function or proxy()-marked object: return [home, id]: home=true when it belongs to the receiver. */
  ref(value: object, kind: RefKind): { home: boolean; id: number };
  /** An async iterable to stream: return its stream id; streaming starts after the message is sent. */
  stream(iterable: AsyncIterable<unknown>): number;
  /** A binary value that may go beside the message (worker ports): an index, or -1 to inline it. */
  attach?(value: ArrayBuffer | ArrayBufferView): number;
}

export const DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024;

const SLAB_SIZE = 64 * 1024;
let slab = new Uint8Array(SLAB_SIZE);
let slabUsed = 0;

const utf8 = new TextEncoder();
const objectProto = Object.prototype;
const TWO32 = 2 ** 32;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

// Node's Buffer (a Uint8Array subclass) travels as a Uint8Array; checked without importing Node types.
const bufferProto: object | undefined = (globalThis as { Buffer?: { prototype: object } }).Buffer?.prototype;
function isNodeBuffer(v: object): boolean {
  return bufferProto !== undefined && Object.getPrototypeOf(v) === bufferProto;
}

function typedKind(v: ArrayBufferView): number {
  const proto = Object.getPrototypeOf(v) as object;
  for (let i = 0; i < TYPED_KINDS.length; i++) {
    const ctor = TYPED_KINDS[i] as { prototype: object };
    if (proto === ctor.prototype || (i === 1 && v instanceof Uint8Array)) return i; // Buffer travels as Uint8Array
  }
  return -1;
}

export class Encoder {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  /** Where the current frame started; its size is limited to maxFrame. */
  frameStart = 0;
  maxFrame: number;
  hooks: EncodeHooks | undefined;
  private readonly ancestors: object[] = [];
  private depth = 0;
  private readonly initialSize: number;

  constructor(options: { initialSize?: number; maxMessageSize?: number; hooks?: EncodeHooks | undefined } = {}) {
    this.initialSize = options.initialSize ?? 4096;
    this.buf = new Uint8Array(this.initialSize);
    this.view = new DataView(this.buf.buffer);
    this.maxFrame = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE;
    this.hooks = options.hooks;
  }

  /** Forget everything written; drops an oversized buffer left by a big message. */
  reset(): void {
    this.pos = 0;
    this.frameStart = 0;
    if (this.buf.length > 1024 * 1024 && this.buf.length > this.initialSize) {
      this.buf = new Uint8Array(this.initialSize);
      this.view = new DataView(this.buf.buffer);
    }
  }

  /** Make room for n more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need - this.frameStart > this.maxFrame) {
      throw new ProtocolError(`message larger than the maximum of ${this.maxFrame} bytes`, { code: 'EMSGSIZE' });
    }
    if (need > this.buf.length) this.grow(need);
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** A copy of the bytes written since `from`, in an ArrayBuffer of its own (it can be transferred). */
  copy(from = 0): Uint8Array {
    return this.buf.slice(from, this.pos);
  }

  /**
   * A copy of everything written, carved out of a shared slab like Node's
   * Buffer pool: one ArrayBuffer per 64 KiB of small messages instead of one
   * per message, which spares the garbage collector (never transfer it).
   */
  copyPooled(): Uint8Array {
    const n = this.pos;
    if (n > SLAB_SIZE / 8) return this.buf.slice(0, n);
    if (slabUsed + n > SLAB_SIZE) {
      slab = new Uint8Array(SLAB_SIZE);
      slabUsed = 0;
    }
    const at = slabUsed;
    const src = this.buf;
    if (n <= 256) for (let i = 0; i < n; i++) slab[at + i] = src[i] as number; // no subarray to allocate
    else slab.set(src.subarray(0, n), at);
    slabUsed += (n + 7) & ~7;
    return slab.subarray(at, at + n);
  }

  u8(v: number): void {
    if (this.pos >= this.buf.length || this.pos + 1 - this.frameStart > this.maxFrame) this.ensure(1);
    this.buf[this.pos++] = v;
  }

  varint(v: number): void {
    this.ensure(8);
    const buf = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      buf[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[p++] = v;
    this.pos = p;
  }

  u32be(v: number, at: number): void {
    this.view.setUint32(at, v, false);
  }

  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    // Big payloads in pieces: glibc's rep-movsb copy can run 15-20x slower on 4K aliasing (wire/copy-bytes.ts).
    if (src.length > 2048) copyBytes(this.buf, src, this.pos);
    else this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  string(s: string): void {
    const len = s.length;
    if (len < 32) {
      this.ensure(1 + len * 3 + 1);
      const buf = this.buf;
      const start = this.pos;
      let p = start + 1;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
      if (i === len) {
        buf[start] = T.FIXSTR | len;
        this.pos = p;
        return;
      }
      // Not ASCII: at most 93 bytes, so a one-byte length.
      const written = utf8.encodeInto(s, buf.subarray(start + 2)).written;
      buf[start] = T.STR8;
      buf[start + 1] = written;
      this.pos = start + 2 + written;
      return;
    }
    const maxBytes = len * 3;
    const header = maxBytes < 0x100 ? 2 : maxBytes < 0x10000 ? 3 : 5;
    this.ensure(header + maxBytes);
    const start = this.pos;
    let written: number;
    if (len < 128) {
      // Short strings: a plain loop beats encodeInto's call overhead.
      const buf = this.buf;
      let p = start + header;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
      written = i === len ? len : i + utf8.encodeInto(s.slice(i), buf.subarray(start + header + i)).written;
    } else {
      written = utf8.encodeInto(s, this.buf.subarray(start + header)).written;
    }
    if (header === 2) {
      this.buf[start] = T.STR8;
      this.buf[start + 1] = written;
    } else if (header === 3) {
      this.buf[start] = T.STR16;
      this.view.setUint16(start + 1, written, true);
    } else {
      this.buf[start] = T.STR32;
      this.view.setUint32(start + 1, written, true);
    }
    this.pos = start + header + written;
  }

  number(v: number): void {
    if (Number.isInteger(v) && !(v === 0 && 1 / v < 0)) {
      if (v >= 0) {
        if (v < 0x80) return this.u8(v);
        if (v < TWO32) {
          this.ensure(5);
          this.buf[this.pos] = T.UINT32;
          this.view.setUint32(this.pos + 1, v, true);
          this.pos += 5;
          return;
        }
      } else {
        if (v >= -32) return this.u8(v & 0xff);
        if (v >= -0x80) {
          this.ensure(2);
          this.buf[this.pos] = T.INT8;
          this.view.setInt8(this.pos + 1, v);
          this.pos += 2;
          return;
        }
        if (v >= -0x8000) {
          this.ensure(3);
          this.buf[this.pos] = T.INT16;
          this.view.setInt16(this.pos + 1, v, true);
          this.pos += 3;
          return;
        }
        if (v >= -0x80000000) {
          this.ensure(5);
          this.buf[this.pos] = T.INT32;
          this.view.setInt32(this.pos + 1, v, true);
          this.pos += 5;
          return;
        }
      }
    }
    this.ensure(9);
    this.buf[this.pos] = T.FLOAT64;
    this.view.setFloat64(this.pos + 1, v, true);
    this.pos += 9;
  }

  bigint(v: bigint): void {
    if (v >= I64_MIN && v <= I64_MAX) {
      this.ensure(9);
      this.buf[this.pos] = T.BIGINT64;
      this.view.setBigInt64(this.pos + 1, v, true);
      this.pos += 9;
      return;
    }
    const neg = v < 0n;
    let m = neg ? -v : v;
    const out: number[] = [];
    while (m > 0n) {
      out.push(Number(m & 0xffn));
      m >>= 8n;
    }
    this.u8(T.BIGINT);
    this.u8(neg ? 1 : 0);
    this.varint(out.length);
    this.ensure(out.length);
    for (const b of out) this.buf[this.pos++] = b;
  }

  /** Encode one value; `root` names it in errors (`args`, `result`). */
  encode(value: unknown, root = 'value'): void {
    this.depth = 0;
    try {
      this.value(value);
    } catch (err) {
      this.ancestors.length = 0;
      if (err instanceof UnsendableError) throw err.finish(root);
      throw err;
    }
  }

  value(v: unknown): void {
    switch (typeof v) {
      case 'string':
        return this.string(v);
      case 'number':
        return this.number(v);
      case 'boolean':
        return this.u8(v ? T.TRUE : T.FALSE);
      case 'undefined':
        return this.u8(T.UNDEFINED);
      case 'bigint':
        return this.bigint(v);
      case 'object':
        if (v === null) return this.u8(T.NULL);
        return this.object(v);
      case 'function':
        return this.reference(v, REF_FUNCTION);
      default:
        throw new UnsendableError(`${describe(v)} cannot cross`);
    }
  }

  private enter(v: object): void {
    const a = this.ancestors;
    const d = this.depth;
    for (let i = 0; i < d; i++) {
      if (a[i] === v) throw new UnsendableError('a cycle: this object contains itself (cycles are refused)');
    }
    if (d >= MAX_DEPTH) throw new UnsendableError(`nested deeper than ${MAX_DEPTH} levels`);
    a[d] = v;
    this.depth = d + 1;
  }

  private leave(): void {
    this.ancestors[--this.depth] = undefined as unknown as object;
  }

  private object(v: object): void {
    const proto = Object.getPrototypeOf(v) as object | null;
    if (isProxyMarked(v)) return this.reference(v, REF_OBJECT);
    if (proto === objectProto) return this.plainObject(v as Record<string, unknown>, false);
    if (Array.isArray(v)) return this.array(v);
    if (proto === null) return this.plainObject(v as Record<string, unknown>, true);
    if (ArrayBuffer.isView(v)) return this.binaryView(v);
    if (v instanceof ArrayBuffer) return this.arrayBuffer(v);
    if (proto === Map.prototype) return this.map(v as Map<unknown, unknown>);
    if (proto === Set.prototype) return this.set(v as Set<unknown>);
    if (proto === Date.prototype) {
      this.ensure(9);
      this.buf[this.pos] = T.DATE;
      this.view.setFloat64(this.pos + 1, (v as Date).getTime(), true);
      this.pos += 9;
      return;
    }
    if (proto === RegExp.prototype) {
      this.u8(T.REGEXP);
      this.string((v as RegExp).source);
      this.string((v as RegExp).flags);
      return;
    }
    if (v instanceof Error) return this.error(v);
    if (isStreamable(v)) {
      if (!this.hooks) throw new UnsendableError('an async iterable can only be streamed over a connection');
      const id = this.hooks.stream(v);
      this.u8(T.STREAM);
      this.varint(id);
      return;
    }
    throw new UnsendableError(`${describe(v)} cannot cross`);
  }

  private plainObject(v: Record<string, unknown>, nullProto: boolean): void {
    this.enter(v);
    const keys = Object.keys(v);
    const n = keys.length;
    if (nullProto) {
      this.u8(T.OBJECT_NULL);
      this.varint(n);
    } else if (n < 16) {
      this.u8(T.FIXOBJ | n);
    } else {
      this.u8(T.OBJECT);
      this.varint(n);
    }
    let i = 0;
    try {
      for (; i < n; i++) {
        const k = keys[i] as string;
        this.string(k);
        this.value(v[k]);
      }
    } catch (err) {
      if (err instanceof UnsendableError) err.segments.unshift(keySegment(keys[i] as string));
      throw err;
    }
    this.leave();
  }

  private array(v: unknown[]): void {
    this.enter(v);
    const n = v.length;
    if (n < 16) this.u8(T.FIXARR | n);
    else {
      this.u8(T.ARRAY);
      this.varint(n);
    }
    let i = 0;
    try {
      for (; i < n; i++) {
        const x = v[i];
        if (x === undefined && !(i in v)) this.u8(T.HOLE);
        else this.value(x);
      }
    } catch (err) {
      if (err instanceof UnsendableError) err.segments.unshift(`[${i}]`);
      throw err;
    }
    this.leave();
  }

  private map(v: Map<unknown, unknown>): void {
    this.enter(v);
    this.u8(T.MAP);
    this.varint(v.size);
    let i = 0;
    let part = 'key';
    try {
      for (const [k, x] of v) {
        part = 'key';
        this.value(k);
        part = 'value';
        this.value(x);
        i++;
      }
    } catch (err) {
      if (err instanceof UnsendableError) err.segments.unshift(`<map ${part} #${i}>`);
      throw err;
    }
    this.leave();
  }

  private set(v: Set<unknown>): void {
    this.enter(v);
    this.u8(T.SET);
    this.varint(v.size);
    let i = 0;
    try {
      for (const x of v) {
        this.value(x);
        i++;
      }
    } catch (err) {
      if (err instanceof UnsendableError) err.segments.unshift(`<set #${i}>`);
      throw err;
    }
    this.leave();
  }

  private binaryView(v: ArrayBufferView): void {
    const len = v.byteLength;
    if (len >= 1024 && this.hooks?.attach) {
      const idx = this.hooks.attach(v);
      if (idx >= 0) {
        this.u8(T.ATTACHMENT);
        this.varint(idx);
        return;
      }
    }
    if (v instanceof Uint8Array && (Object.getPrototypeOf(v) === Uint8Array.prototype || isNodeBuffer(v))) {
      // The common case, without touching v.buffer (which would move a small on-heap array off-heap).
      this.ensure(2 + 8 + len);
      this.buf[this.pos++] = T.TYPED;
      this.buf[this.pos++] = 1;
      this.varint(len);
      this.buf.set(v, this.pos);
      this.pos += len;
      return;
    }
    // A view of a SharedArrayBuffer is copied like any other (a snapshot of its bytes).
    const bytes = new Uint8Array(v.buffer, v.byteOffset, len);
    if (v instanceof DataView) {
      this.u8(T.DATAVIEW);
    } else {
      const kind = typedKind(v);
      if (kind < 0) throw new UnsendableError(`${describe(v)} cannot cross`);
      this.ensure(2);
      this.buf[this.pos++] = T.TYPED;
      this.buf[this.pos++] = kind;
    }
    this.varint(len);
    this.bytes(bytes);
  }

  private arrayBuffer(v: ArrayBuffer): void {
    if (this.hooks?.attach && v.byteLength >= 1024) {
      const idx = this.hooks.attach(v);
      if (idx >= 0) {
        this.u8(T.ATTACHMENT);
        this.varint(idx);
        return;
      }
    }
    this.u8(T.ARRAYBUFFER);
    this.varint(v.byteLength);
    this.bytes(new Uint8Array(v));
  }

  private error(e: Error): void {
    this.enter(e);
    const rec = e as Error & { code?: unknown };
    const code = rec.code;
    const hasCause = Object.prototype.hasOwnProperty.call(e, 'cause');
    const stack = typeof e.stack === 'string' ? e.stack : undefined;
    let flags = 0;
    if (code !== undefined) flags |= 1;
    if (hasCause) flags |= 2;
    if (stack !== undefined) flags |= 4;
    this.u8(T.ERROR);
    this.u8(flags);
    this.string(typeof e.name === 'string' ? e.name : 'Error');
    this.string(typeof e.message === 'string' ? e.message : String(e.message));
    try {
      if (code !== undefined) {
        if (typeof code !== 'string' && typeof code !== 'number') throw new UnsendableError('an error code must be a string or a number');
        this.value(code);
      }
    } catch (err) {
      if (err instanceof UnsendableError) err.segments.unshift('.code');
      throw err;
    }
    try {
      if (hasCause) this.value(e.cause);
    } catch (err) {
      if (err instanceof UnsendableError) err.segments.unshift('.cause');
      throw err;
    }
    if (stack !== undefined) this.string(stack);
    this.leave();
  }

  private reference(v: object, kind: RefKind): void {
    if (!this.hooks) {
      throw new UnsendableError(
        kind === REF_FUNCTION ? 'a function can only cross as a remote reference over a connection' : 'a proxy() reference can only cross over a connection',
      );
    }
    const { home, id } = this.hooks.ref(v, kind);
    if (home) {
      this.u8(T.REF_HOME);
      this.varint(id);
    } else {
      this.u8(T.REF);
      this.varint(id);
      this.u8(kind);
    }
  }
}
