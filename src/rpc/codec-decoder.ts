/**
 * The decoding half of the value codec. Every read is bounds-checked first;
 * no length from the wire is trusted for an allocation before it has been
 * checked against the bytes that are actually there. Malformed input only
 * ever throws ProtocolError (EPROTO).
 */
import { ProtocolError, SwitchboardError, type ErrorCode } from '../errors.js';
import { MAX_DEPTH, REF_FUNCTION, REF_OBJECT, T, TYPED_KINDS, type RefKind } from './codec-tags.js';

/** How references, streams and attachments are turned back into values. */
export interface DecodeHooks {
  ref(id: number, kind: RefKind): unknown;
  home(id: number): unknown;
  stream(id: number): unknown;
  attachment?(index: number): unknown;
}

const utf8 = new TextDecoder('utf-8');

// Errors named *Error with one of these codes come back as SwitchboardErrors.
const ErrorCodes: ReadonlySet<string> = new Set<ErrorCode>([
  'ECLOSED', 'ETIMEDOUT', 'EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'EMSGSIZE', 'EPROTO', 'EINVAL', 'ENOENT', 'EEXIST',
  'EADDRINUSE', 'EACCES', 'EABORTED', 'ENAMETAKEN', 'ENOTOWNER', 'EVERSION', 'ELIMIT', 'EOWNERDEAD', 'EUNSUPPORTED', 'ERPC', 'EIO',
]);

const errorClasses: Record<string, new (message?: string, options?: { cause?: unknown }) => Error> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * Binaries at least this big are handed out as views of an owned message:
 * smaller ones are copied into arrays V8 keeps on its heap, which cost less
 * than a view (bigger arrays get an ArrayBuffer of their own, allocated
 * outside the heap, which is what the view spares).
 */
const OWNED_VIEW_MIN = 128;

const keyCache: (string | undefined)[] = new Array<string | undefined>(4096).fill(undefined);

const bad = (msg: string): ProtocolError => new ProtocolError(`malformed RPC value: ${msg}`);

export class Decoder {
  private _buf: Uint8Array;
  private _view: DataView | undefined;
  pos: number;
  end: number;
  hooks: DecodeHooks | undefined;
  /**
   * The bytes being decoded belong to this message alone and nobody else
   * will touch them (a frame gathered from several reads): a large
   * Uint8Array is then returned as a view of them instead of a copy.
   */
  owned = false;
  private depth = 0;

  constructor(buf: Uint8Array, hooks?: DecodeHooks, start = 0, end = buf.length) {
    this._buf = buf;
    this._view = undefined;
    this.pos = start;
    this.end = end;
    this.hooks = hooks;
  }

  /** The bytes being decoded; setting it drops the DataView of the previous ones. */
  get buf(): Uint8Array {
    return this._buf;
  }

  set buf(b: Uint8Array) {
    this._buf = b;
    this._view = undefined;
  }

  /** A DataView over buf, made when a multi-byte number is first read (most small frames never need one). */
  get view(): DataView {
    return (this._view ??= new DataView(this._buf.buffer, this._buf.byteOffset, this._buf.byteLength));
  }

  set view(v: DataView) {
    this._view = v;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number): void {
    if (n > this.end - this.pos) throw bad(`truncated (need ${n} bytes at offset ${this.pos}, have ${this.end - this.pos})`);
  }

  u8(): number {
    if (this.pos >= this.end) throw bad(`truncated at offset ${this.pos}`);
    return this._buf[this.pos++] as number;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) break;
        return result;
      }
      mul *= 0x80;
    }
    throw bad('varint longer than 53 bits');
  }

  /** A count of items that each take at least one byte: bounded by what is left. */
  count(): number {
    const n = this.varint();
    if (n > this.end - this.pos) throw bad(`count ${n} exceeds the ${this.end - this.pos} bytes left`);
    return n;
  }

  stringBody(n: number): string {
    this.need(n);
    const buf = this._buf;
    const start = this.pos;
    if (n <= 16) return this.shortString(start, n);
    if (n < 48) {
      let s = '';
      let i = 0;
      for (; i < n; i++) {
        const c = buf[start + i] as number;
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === n) {
        this.pos = start + n;
        return s;
      }
    }
    this.pos = start + n;
    return utf8.decode(buf.subarray(start, start + n));
  }

  // Short ASCII strings (object keys, method names) repeat from message to
  // message: a small cache indexed by a hash of their bytes saves building
  // them char by char.
  private shortString(start: number, n: number): string {
    const buf = this._buf;
    let h = n;
    for (let i = 0; i < n; i++) {
      const c = buf[start + i] as number;
      if (c >= 0x80) {
        this.pos = start + n;
        return utf8.decode(buf.subarray(start, start + n));
      }
      h = (Math.imul(h, 31) + c) | 0;
    }
    const slot = (h ^ (h >>> 12)) & 4095;
    const cached = keyCache[slot];
    this.pos = start + n;
    if (cached !== undefined && cached.length === n) {
      let i = 0;
      while (i < n && cached.charCodeAt(i) === buf[start + i]) i++;
      if (i === n) return cached;
    }
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(buf[start + i] as number);
    keyCache[slot] = s;
    return s;
  }

  /** A value that must be a string (object keys, error fields). */
  string(): string {
    const tag = this.u8();
    if (tag >= T.FIXSTR && tag < T.FIXSTR + 32) return this.stringBody(tag - T.FIXSTR);
    return this.stringTagged(tag);
  }

  private stringTagged(tag: number): string {
    switch (tag) {
      case T.STR8:
        return this.stringBody(this.u8());
      case T.STR16: {
        this.need(2);
        const n = this.view.getUint16(this.pos, true);
        this.pos += 2;
        return this.stringBody(n);
      }
      case T.STR32: {
        this.need(4);
        const n = this.view.getUint32(this.pos, true);
        this.pos += 4;
        return this.stringBody(n);
      }
      default:
        throw bad(`expected a string, got tag 0x${tag.toString(16)} at offset ${this.pos - 1}`);
    }
  }

  /** Decode one whole value. */
  decode(): unknown {
    this.depth = 0;
    return this.value();
  }

  value(): unknown {
    const tag = this.u8();
    if (tag < 0x80) return tag;
    if (tag >= 0xe0) return tag - 0x100;
    if (tag >= T.FIXSTR) {
      if (tag < T.FIXSTR + 32) return this.stringBody(tag - T.FIXSTR);
    } else if (tag >= T.FIXARR) return this.array(tag - T.FIXARR);
    else return this.object(tag - T.FIXOBJ, false);
    switch (tag) {
      case T.UNDEFINED:
        return undefined;
      case T.NULL:
        return null;
      case T.FALSE:
        return false;
      case T.TRUE:
        return true;
      case T.INT8:
        this.need(1);
        return this.view.getInt8(this.pos++);
      case T.INT16: {
        this.need(2);
        const v = this.view.getInt16(this.pos, true);
        this.pos += 2;
        return v;
      }
      case T.INT32: {
        this.need(4);
        const v = this.view.getInt32(this.pos, true);
        this.pos += 4;
        return v;
      }
      case T.UINT32: {
        this.need(4);
        const v = this.view.getUint32(this.pos, true);
        this.pos += 4;
        return v;
      }
      case T.FLOAT64: {
        this.need(8);
        const v = this.view.getFloat64(this.pos, true);
        this.pos += 8;
        return v;
      }
      case T.BIGINT64: {
        this.need(8);
        const v = this.view.getBigInt64(this.pos, true);
        this.pos += 8;
        return v;
      }
      case T.BIGINT: {
        const sign = this.u8();
        if (sign > 1) throw bad('bigint sign byte must be 0 or 1');
        const n = this.count();
        let m = 0n;
        for (let i = n - 1; i >= 0; i--) m = (m << 8n) | BigInt(this._buf[this.pos + i] as number);
        this.pos += n;
        return sign ? -m : m;
      }
      case T.STR8:
      case T.STR16:
      case T.STR32:
        return this.stringTagged(tag);
      case T.ARRAY:
        return this.array(this.count());
      case T.OBJECT:
        return this.object(this.count(), false);
      case T.OBJECT_NULL:
        return this.object(this.count(), true);
      case T.MAP: {
        const n = this.count();
        this.enter();
        const m = new Map<unknown, unknown>();
        for (let i = 0; i < n; i++) {
          const k = this.value();
          m.set(k, this.value());
        }
        this.depth--;
        return m;
      }
      case T.SET: {
        const n = this.count();
        this.enter();
        const s = new Set<unknown>();
        for (let i = 0; i < n; i++) s.add(this.value());
        this.depth--;
        return s;
      }
      case T.DATE: {
        this.need(8);
        const v = new Date(this.view.getFloat64(this.pos, true));
        this.pos += 8;
        return v;
      }
      case T.REGEXP: {
        const source = this.string();
        const flags = this.string();
        try {
          return new RegExp(source, flags);
        } catch (err) {
          throw new ProtocolError(`malformed RPC value: bad regular expression /${source}/${flags}`, { cause: err });
        }
      }
      case T.ARRAYBUFFER: {
        const n = this.count();
        const out = this.copyBytes(n);
        this.pos += n;
        return out.buffer;
      }
      case T.TYPED: {
        const kind = this.u8();
        const ctor = TYPED_KINDS[kind];
        if (ctor === undefined) throw bad(`unknown typed array kind ${kind}`);
        const n = this.count();
        if (n % ctor.BYTES_PER_ELEMENT !== 0) throw bad(`${ctor.name} byte length ${n} is not a multiple of ${ctor.BYTES_PER_ELEMENT}`);
        if (kind === 1 && this.owned && n >= OWNED_VIEW_MIN) {
          // a plain Uint8Array even when the bytes came in a Node Buffer
          const view = new Uint8Array(this._buf.buffer, this._buf.byteOffset + this.pos, n);
          this.pos += n;
          return view;
        }
        const copy = this.copyBytes(n);
        this.pos += n;
        return kind === 1 ? copy : new ctor(copy.buffer as ArrayBuffer, 0, n / ctor.BYTES_PER_ELEMENT);
      }
      case T.DATAVIEW: {
        const n = this.count();
        const copy = this.copyBytes(n);
        this.pos += n;
        return new DataView(copy.buffer);
      }
      case T.ERROR:
        return this.error();
      case T.REF: {
        const id = this.varint();
        const kind = this.u8();
        if (kind !== REF_FUNCTION && kind !== REF_OBJECT) throw bad(`unknown reference kind ${kind}`);
        if (!this.hooks) throw bad('a remote reference outside a connection');
        return this.hooks.ref(id, kind);
      }
      case T.REF_HOME: {
        const id = this.varint();
        if (!this.hooks) throw bad('a remote reference outside a connection');
        return this.hooks.home(id);
      }
      case T.STREAM: {
        const id = this.varint();
        if (!this.hooks) throw bad('a stream outside a connection');
        return this.hooks.stream(id);
      }
      case T.ATTACHMENT: {
        const idx = this.varint();
        if (!this.hooks?.attachment) throw bad('an attachment outside a worker port');
        return this.hooks.attachment(idx);
      }
      default:
        throw bad(`unknown tag 0x${tag.toString(16)} at offset ${this.pos - 1}`);
    }
  }

  // A copy in a fresh ArrayBuffer (the input may be a Buffer, whose slice() is a view into a shared pool).
  private copyBytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const buf = this._buf;
    const p = this.pos;
    if (n <= 128) for (let i = 0; i < n; i++) out[i] = buf[p + i] as number; // no view to allocate
    else out.set(buf.subarray(p, p + n));
    return out;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw bad(`nested deeper than ${MAX_DEPTH} levels`);
  }

  private array(n: number): unknown[] {
    this.enter();
    const a = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      if (this._buf[this.pos] === T.HOLE && this.pos < this.end) {
        this.pos++;
        continue;
      }
      a[i] = this.value();
    }
    this.depth--;
    return a;
  }

  private object(n: number, nullProto: boolean): Record<string, unknown> {
    this.enter();
    const o: Record<string, unknown> = nullProto ? (Object.create(null) as Record<string, unknown>) : {};
    for (let i = 0; i < n; i++) {
      const k = this.string();
      const v = this.value();
      if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
      else o[k] = v;
    }
    this.depth--;
    return o;
  }

  private error(): Error {
    this.enter();
    const flags = this.u8();
    if (flags > 7) throw bad(`error flags 0x${flags.toString(16)}`);
    const name = this.string();
    const message = this.string();
    const code = flags & 1 ? this.value() : undefined;
    if (code !== undefined && typeof code !== 'string' && typeof code !== 'number') throw bad('error code must be a string or a number');
    const cause = flags & 2 ? this.value() : undefined;
    const stack = flags & 4 ? this.string() : undefined;
    this.depth--;
    const options = flags & 2 ? { cause } : undefined;
    let e: Error;
    if (typeof code === 'string' && ErrorCodes.has(code) && /Error$/.test(name) && !(name in errorClasses)) {
      e = new SwitchboardError(code as ErrorCode, message, options);
    } else {
      const Ctor = errorClasses[name] ?? Error;
      e = new Ctor(message, options);
    }
    if (e.name !== name) Object.defineProperty(e, 'name', { value: name, enumerable: false, writable: true, configurable: true });
    if (code !== undefined && !(e instanceof SwitchboardError)) (e as Error & { code?: unknown }).code = code;
    if (stack !== undefined) e.stack = stack;
    else delete (e as { stack?: string }).stack;
    return e;
  }
}
