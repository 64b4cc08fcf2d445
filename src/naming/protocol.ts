/**
 * The name-service wire format: length-prefixed, versioned frames.
 *
 *   0      4      5        6      7       8      12
 *   +------+------+--------+------+-------+------+-----------------+
 *   | len  | 'N'  | version| type | flags |  id  | payload         |
 *   +------+------+--------+------+-------+------+-----------------+
 *   len: u32 big-endian, bytes after itself (8 + payload), at most maxFrameSize
 *   type: 1 request, 2 response, 3 error, 4 event (JSON payloads, versions 1
 *   and 2); 5 lookup, 6 record (binary payloads, version 2 only, see
 *   record-codec.ts); flags: 0
 *   id: u32 big-endian; replies carry their request's id; events the watch id
 *
 * Version 2 is version 1 plus frame types 5 and 6. A peer answers each frame
 * in the version it came in, and the daemon greets in version 1 listing the
 * versions it speaks, so a version-1 client never sees a version-2 frame.
 *
 * Pure: no I/O, no Node types. The decoder checks the length against the
 * maximum before buffering anything, and never allocates from an unchecked
 * length. Anything malformed throws ProtocolError (EPROTO, EMSGSIZE, EVERSION).
 */
import { ProtocolError } from '../errors.js';
import { decodeRecordBody, encodeRecordBody } from './record-codec.js';
import type { NameRecord } from './types.js';

/** The newest version this code speaks. */
export const PROTOCOL_VERSION = 2;
/** Every version this code speaks, oldest first. */
export const SUPPORTED_VERSIONS: readonly number[] = [1, 2];
/** The first version with the binary lookup and record frames. */
export const BINARY_LOOKUP_VERSION = 2;
export const FRAME_MAGIC = 0x4e; // 'N'
export const FRAME_HEADER_SIZE = 12; // length word + 8 header bytes
const HEADER_AFTER_LENGTH = 8;
/** What a server accepts from a client unless configured otherwise. */
export const DEFAULT_MAX_REQUEST_FRAME = 64 * 1024;
/** What a client accepts from a server (list replies can be long). */
export const DEFAULT_MAX_REPLY_FRAME = 64 * 1024 * 1024;

export const FrameType = { request: 1, response: 2, error: 3, event: 4, lookup: 5, record: 6 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
const FRAME_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));
/** Frame types whose payload is JSON. */
export type JsonFrameType = 1 | 2 | 3 | 4;

/**
 * One decoded frame. The payload is parsed JSON for types 1-4, the name
 * (a string) for a lookup frame, and a NameRecord for a record frame.
 */
export interface Frame {
  type: FrameType;
  id: number;
  payload: unknown;
  version?: number;
}

const utf8enc = new TextEncoder();
const utf8dec = new TextDecoder('utf-8', { fatal: true });

function assertU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ProtocolError(`${what} must be a u32, got ${v}`);
}

/** Encode one frame of a JSON type (1-4). Throws EMSGSIZE if it exceeds `maxFrameSize`. */
export function encodeFrame(frame: Frame, maxFrameSize = DEFAULT_MAX_REPLY_FRAME): Uint8Array {
  return encodeFrameJson(frame.type, frame.id, JSON.stringify(frame.payload ?? null), maxFrameSize, frame.version);
}

/** encodeFrame for a payload already serialized. `json` must be valid JSON. */
export function encodeFrameJson(type: FrameType, id: number, json: string, maxFrameSize = DEFAULT_MAX_REPLY_FRAME, version?: number): Uint8Array {
  assertU32(id, 'frame id');
  if (type !== 1 && type !== 2 && type !== 3 && type !== 4) throw new ProtocolError(`frame type ${type} does not carry JSON`);
  const v = version ?? PROTOCOL_VERSION;
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new ProtocolError(`version must be a u8, got ${v}`);
  let out: Uint8Array;
  if (ASCII.test(json)) {
    // The common case: one allocation, no intermediate buffer.
    out = allocFrame(FRAME_HEADER_SIZE + json.length);
    utf8enc.encodeInto(json, view(out, FRAME_HEADER_SIZE, json.length));
  } else {
    const body = utf8enc.encode(json);
    out = new Uint8Array(FRAME_HEADER_SIZE + body.length);
    out.set(body, FRAME_HEADER_SIZE);
  }
  const len = out.length - 4;
  if (len > maxFrameSize) {
    throw new ProtocolError(`frame of ${len} bytes exceeds the maximum of ${maxFrameSize}`, { code: 'EMSGSIZE' });
  }
  putHeader(out, v, type, id);
  return out;
}

/**
 * Bytes for one outgoing frame, carved from a shared slab the way Node's
 * Buffer pool does. A small `new Uint8Array(n)` lives on V8's heap, and the
 * socket write then has to move it off the heap to get at its ArrayBuffer,
 * which costs more than encoding the frame. Slab bytes are never handed out
 * twice, so a frame stays intact while the kernel write is pending; a slab
 * goes when its last frame does. Frames kept for long (cached templates) use
 * a plain allocation instead, so as not to pin a slab.
 */
const SLAB_SIZE = 16 * 1024;
const SLAB_MAX_FRAME = 1024;
let slab = new ArrayBuffer(SLAB_SIZE);
let slabUsed = 0;
function allocFrame(n: number): Uint8Array {
  if (n > SLAB_MAX_FRAME) return new Uint8Array(n);
  if (slabUsed + n > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed += (n + 7) & ~7;
  return out;
}

function putHeader(out: Uint8Array, version: number, type: FrameType, id: number): void {
  putU32(out, 0, out.length - 4);
  out[4] = FRAME_MAGIC;
  out[5] = version;
  out[6] = type;
  out[7] = 0;
  putU32(out, 8, id);
}

/**
 * A version-2 lookup request: the header and the name's UTF-8 bytes. Throws
 * EMSGSIZE past `maxFrameSize` (the daemon's default request maximum).
 */
export function encodeLookupFrame(id: number, name: string, maxFrameSize = DEFAULT_MAX_REQUEST_FRAME): Uint8Array {
  assertU32(id, 'frame id');
  let out: Uint8Array;
  if (name.length <= 128 && ASCII.test(name)) {
    out = allocFrame(FRAME_HEADER_SIZE + name.length);
    for (let i = 0; i < name.length; i++) out[FRAME_HEADER_SIZE + i] = name.charCodeAt(i);
  } else {
    const body = utf8enc.encode(name);
    out = new Uint8Array(FRAME_HEADER_SIZE + body.length);
    out.set(body, FRAME_HEADER_SIZE);
  }
  if (out.length - 4 > maxFrameSize) {
    throw new ProtocolError(`frame of ${out.length - 4} bytes exceeds the maximum of ${maxFrameSize}`, { code: 'EMSGSIZE' });
  }
  putHeader(out, BINARY_LOOKUP_VERSION, FrameType.lookup, id);
  return out;
}

/**
 * A version-2 record frame (the reply to a lookup frame) with id 0: a
 * template that recordFrameWithId() copies for each reply, so a server can
 * encode a record once and answer many lookups of it.
 */
export function encodeRecordFrame(record: NameRecord, maxFrameSize = DEFAULT_MAX_REPLY_FRAME): Uint8Array {
  const body = encodeRecordBody(record);
  if (body.length + HEADER_AFTER_LENGTH > maxFrameSize) {
    throw new ProtocolError(`frame of ${body.length + HEADER_AFTER_LENGTH} bytes exceeds the maximum of ${maxFrameSize}`, { code: 'EMSGSIZE' });
  }
  const out = new Uint8Array(FRAME_HEADER_SIZE + body.length);
  out.set(body, FRAME_HEADER_SIZE);
  putHeader(out, BINARY_LOOKUP_VERSION, FrameType.record, 0);
  return out;
}

/** A copy of an encoded frame with another id. */
export function frameWithId(frame: Uint8Array, id: number): Uint8Array {
  assertU32(id, 'frame id');
  const out = allocFrame(frame.length);
  out.set(frame);
  putU32(out, 8, id);
  return out;
}

/**
 * A plain Uint8Array over part of `b`. (subarray() of a Node Buffer makes
 * another Buffer through its species constructor, which costs more than the
 * rest of decoding a small frame.)
 */
function view(b: Uint8Array, start: number, length: number): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset + start, length);
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

function getU32(b: Uint8Array, at: number): number {
  return (((b[at] as number) << 24) >>> 0) + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number));
}

/**
 * Decode the bytes after the length word (header + payload) of one frame.
 * `versions` lists the versions this side speaks.
 */
export function decodeFrameBody(body: Uint8Array, versions: readonly number[] = SUPPORTED_VERSIONS): Frame {
  if (body.length < HEADER_AFTER_LENGTH) throw new ProtocolError(`frame of ${body.length} bytes is shorter than its ${HEADER_AFTER_LENGTH}-byte header`);
  if (body[0] !== FRAME_MAGIC) throw new ProtocolError(`bad frame magic 0x${(body[0] ?? 0).toString(16)} (not a name-service client?)`);
  const version = body[1] ?? 0;
  if (!versions.includes(version)) {
    throw new ProtocolError(`protocol version ${version} is not supported (this side speaks ${versions.join(', ')})`, { code: 'EVERSION' });
  }
  const type = body[2] ?? 0;
  if (!FRAME_TYPES.has(type)) throw new ProtocolError(`unknown frame type ${type}`);
  if (body[3] !== 0) throw new ProtocolError(`reserved flags must be 0, got ${body[3]}`);
  const id = getU32(body, 4);
  if (type === FrameType.lookup || type === FrameType.record) {
    if (version < BINARY_LOOKUP_VERSION) throw new ProtocolError(`frame type ${type} needs protocol version ${BINARY_LOOKUP_VERSION}, the frame says ${version}`);
    const bytes = view(body, HEADER_AFTER_LENGTH, body.length - HEADER_AFTER_LENGTH);
    return { type, id, payload: type === FrameType.lookup ? decodeName(bytes) : decodeRecordBody(bytes), version };
  }
  let text: string;
  try {
    text = utf8dec.decode(view(body, HEADER_AFTER_LENGTH, body.length - HEADER_AFTER_LENGTH));
  } catch (err) {
    throw new ProtocolError('frame payload is not valid UTF-8', { cause: err });
  }
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError(`frame payload is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return { type: type as FrameType, id, payload, version };
}

function decodeName(b: Uint8Array): string {
  if (b.length <= 128) {
    let ascii = true;
    for (let i = 0; i < b.length; i++) {
      if ((b[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, b as unknown as number[]);
  }
  try {
    return utf8dec.decode(b);
  } catch (err) {
    throw new ProtocolError('lookup name is not valid UTF-8', { cause: err });
  }
}

/**
 * Splits a byte stream into frames. push(chunk) returns the frames completed
 * by it and keeps a partial frame for the next call. After it throws, the
 * stream is unusable (framing is lost): close the connection.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private need = -1; // body length of the frame in progress, -1 while reading its length word
  private failed: ProtocolError | undefined;

  constructor(
    readonly maxFrameSize = DEFAULT_MAX_REQUEST_FRAME,
    readonly versions: readonly number[] = SUPPORTED_VERSIONS,
  ) {}

  /** Bytes held for a frame not yet complete. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): Frame[] {
    if (this.failed) throw this.failed;
    const out: Frame[] = [];
    try {
      if (this.chunks.length === 0 && this.need < 0) {
        // Nothing held back: decode whole frames in place (the usual case, one frame per chunk).
        let off = 0;
        while (chunk.length - off >= 4) {
          const len = this.checkLength(getU32(chunk, off));
          if (chunk.length - off - 4 < len) break;
          out.push(decodeFrameBody(view(chunk, off + 4, len), this.versions));
          off += 4 + len;
        }
        if (off === chunk.length) return out;
        if (off > 0) chunk = view(chunk, off, chunk.length - off);
      }
      if (chunk.length > 0) {
        this.chunks.push(chunk);
        this.buffered += chunk.length;
      }
      for (;;) {
        if (this.need < 0) {
          if (this.buffered < 4) break;
          this.need = this.checkLength(getU32(this.take(4), 0));
        }
        // Check the header as soon as it is here, so garbage fails before a long wait.
        if (this.buffered >= 1 && this.peekByte(0) !== FRAME_MAGIC) {
          throw new ProtocolError(`bad frame magic 0x${this.peekByte(0).toString(16)} (not a name-service client?)`);
        }
        if (this.buffered < this.need) break;
        const body = this.take(this.need);
        this.need = -1;
        out.push(decodeFrameBody(body, this.versions));
      }
    } catch (err) {
      this.failed = err instanceof ProtocolError ? err : new ProtocolError(String(err), { cause: err });
      this.chunks = [];
      this.buffered = 0;
      throw this.failed;
    }
    return out;
  }

  private checkLength(len: number): number {
    if (len > this.maxFrameSize) {
      throw new ProtocolError(`frame of ${len} bytes exceeds the maximum of ${this.maxFrameSize}`, { code: 'EMSGSIZE' });
    }
    if (len < HEADER_AFTER_LENGTH) throw new ProtocolError(`frame length ${len} is shorter than the ${HEADER_AFTER_LENGTH}-byte header`);
    return len;
  }

  /** Throws if the stream ended inside a frame. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.buffered > 0 || this.need >= 0) {
      throw new ProtocolError(`stream ended inside a frame (${this.buffered} of ${this.need < 0 ? 4 : this.need} bytes)`);
    }
  }

  private peekByte(i: number): number {
    let off = i;
    for (const c of this.chunks) {
      if (off < c.length) return c[off] ?? 0;
      off -= c.length;
    }
    return 0;
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0] as Uint8Array;
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}
