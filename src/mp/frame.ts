/**
 * The wire format of message passing over byte streams (Unix sockets, TCP).
 * Pure codec, no I/O. Every frame travels length-prefixed (src/wire); its
 * body starts with a type byte:
 *
 *   HELLO  1 | 0 | u16 0 | u32 rank | u32 size | job (UTF-8)       first frame of a connection
 *   FIRST  2 | kind | dtype | flags | u32 ctx | i32 tag | u32 total-hi | u32 total-lo | bytes
 *   MORE   3 | 0 | 0 | flags | bytes                                 continuation fragment
 *
 * flags bit 0 = last fragment. A message longer than the fragment size goes
 * as one FIRST and several MORE frames, back to back on its connection; the
 * receiver checks `total` against its maximum before allocating anything.
 *
 * On shared-memory rings each frame is one ring message and starts after
 * RING_PAD bytes of padding, so a FIRST body (24) and a MORE body (8) sit on
 * 8-byte boundaries in the ring: V8 copies shared memory word by word only
 * when source and target are aligned alike, and byte by byte (5 to 8 times
 * slower) otherwise.
 */
import { ProtocolError } from '../errors.js';
import type { Envelope } from './link.js';

export const FRAME_HELLO = 1;
export const FRAME_FIRST = 2;
export const FRAME_MORE = 3;
export const FIRST_HEADER = 20;
export const MORE_HEADER = 4;
export const FLAG_LAST = 1;
export const RING_PAD = 4;

export interface FirstHeader {
  kind: number;
  dtype: number;
  last: boolean;
  ctx: number;
  tag: number;
  total: number;
}

export function encodeHello(rank: number, size: number, job: string): Uint8Array {
  const j = new TextEncoder().encode(job);
  const b = new Uint8Array(12 + j.byteLength);
  const v = new DataView(b.buffer);
  b[0] = FRAME_HELLO;
  v.setUint32(4, rank);
  v.setUint32(8, size);
  b.set(j, 12);
  return b;
}

export function decodeHello(b: Uint8Array): { rank: number; size: number; job: string } {
  if (b.byteLength < 12 || b[0] !== FRAME_HELLO) throw new ProtocolError('expected a HELLO frame from the connecting rank');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { rank: v.getUint32(4), size: v.getUint32(8), job: new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(12)) };
}

/** The header of a message's first frame, written into `out` at `at` (FIRST_HEADER bytes). */
export function writeFirstHeader(out: Uint8Array, h: FirstHeader, at = 0): void {
  putFirstHeader(out, at, h.kind, h.dtype, h.last, h.ctx, h.tag, h.total);
}

/** writeFirstHeader() for an envelope of `total` bytes, with no header object made (one per message sent). */
export function writeEnvelopeHeader(out: Uint8Array, at: number, env: Envelope, total: number, last: boolean): void {
  putFirstHeader(out, at, env.kind, env.dtype, last, env.ctx, env.tag, total);
}

function putFirstHeader(out: Uint8Array, at: number, kind: number, dtype: number, last: boolean, ctx: number, tag: number, total: number): void {
  out[at] = FRAME_FIRST;
  out[at + 1] = kind;
  out[at + 2] = dtype;
  out[at + 3] = last ? FLAG_LAST : 0;
  putU32(out, at + 4, ctx);
  putU32(out, at + 8, tag);
  putU32(out, at + 12, Math.floor(total / 0x1_0000_0000));
  putU32(out, at + 16, total >>> 0);
}

/** Big-endian u32 `v` at `i` (no DataView: a frame header is written per message). */
export function putU32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = v >>> 16;
  b[i + 2] = v >>> 8;
  b[i + 3] = v;
}

/** Big-endian u32 at `i` (the caller checked the bounds). */
export function u32(b: Uint8Array, i: number): number {
  return (((b[i] as number) << 24) | ((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number)) >>> 0;
}

/** The header of a first frame that fills `b[start .. end)` (the rest after the header is its body). */
export function readFirstHeader(b: Uint8Array, start = 0, end = b.length): FirstHeader {
  const len = end - start;
  if (len < FIRST_HEADER) throw new ProtocolError(`message frame of ${len} bytes is shorter than its header`);
  const total = u32(b, start + 12) * 0x1_0000_0000 + u32(b, start + 16);
  const last = ((b[start + 3] as number) & FLAG_LAST) !== 0;
  const h: FirstHeader = { kind: b[start + 1] as number, dtype: b[start + 2] as number, last, ctx: u32(b, start + 4), tag: u32(b, start + 8) | 0, total };
  if (last && total !== len - FIRST_HEADER) throw new ProtocolError(`message says ${total} bytes but carries ${len - FIRST_HEADER}`);
  if (!last && total <= len - FIRST_HEADER) throw new ProtocolError('a fragmented message must be longer than its first fragment');
  return h;
}

export function writeMoreHeader(out: Uint8Array, last: boolean, at = 0): void {
  out[at] = FRAME_MORE;
  out[at + 1] = 0;
  out[at + 2] = 0;
  out[at + 3] = last ? FLAG_LAST : 0;
}

/** Copy `length` bytes from `source[sourceOffset..]` into `target[targetOffset..]`. */
export type CopyBytes = (target: Uint8Array, targetOffset: number, source: Uint8Array, sourceOffset: number, length: number) => void;

function setBytes(target: Uint8Array, targetOffset: number, source: Uint8Array, sourceOffset: number, length: number): void {
  target.set(source.subarray(sourceOffset, sourceOffset + length), targetOffset);
}

/**
 * Where a message whose header just arrived should be written: a buffer of at
 * least `h.total` bytes, or undefined for a buffer of the reassembler's own.
 */
export type Place = (h: FirstHeader) => Uint8Array | undefined;

/** A message arriving whole in one frame: the buffer of the receive that will take it, or undefined (LinkHandlers.placeSmall). */
export type PlaceSmall = (ctx: number, tag: number, kind: number, total: number) => Uint8Array | undefined;

/**
 * Reassembles one connection's fragments. `push(frame)` returns a whole
 * message when its last fragment arrives. Bounds are checked before any
 * allocation and every fragment must fit what the first one announced.
 */
export class Reassembler {
  private readonly max: number;
  private readonly copy: CopyBytes;
  private readonly place: Place | undefined;
  /** The message being reassembled; `placed`: buf is a receive's buffer (see Place). */
  private cur: { h: FirstHeader; buf: Uint8Array; filled: number; placed: boolean } | undefined;

  /**
   * `copy` moves borrowed bytes (a ring's shared memory) into our buffers; the
   * default is TypedArray.set, which V8 runs word by word on shared memory
   * (a native memmove is about 2.7x faster for big fragments).
   */
  private readonly placeSmall: PlaceSmall | undefined;

  constructor(maxMessageSize: number, copy: CopyBytes = setBytes, place?: Place, placeSmall?: PlaceSmall) {
    this.max = maxMessageSize;
    this.copy = copy;
    this.place = place;
    this.placeSmall = placeSmall;
  }

  /** Body bytes of a streamed frame still to come (see beginFrame). */
  private bodyLeft = 0;
  private bodyLast = false;

  /** True while a frame begun with beginFrame() waits for body bytes. */
  get streaming(): boolean {
    return this.bodyLeft > 0;
  }

  /**
   * A frame whose body arrives in pieces (a big socket frame, read from the
   * kernel straight into its place): its header at `frame[start..]` and the
   * body's length. Checks are push()'s. Then write the body into
   * bodyTarget() and report each piece with advance().
   */
  beginFrame(frame: Uint8Array, start: number, bodyLength: number): void {
    if (this.bodyLeft > 0) throw new ProtocolError('a frame started inside another');
    const type = frame[start];
    if (type === FRAME_FIRST) {
      if (this.cur !== undefined) throw new ProtocolError('a new message started before the previous one ended');
      const h = readFirstHeader(frame, start, start + FIRST_HEADER + bodyLength);
      if (h.total > this.max) throw new ProtocolError(`message of ${h.total} bytes exceeds the maximum of ${this.max}`, { code: 'EMSGSIZE' });
      const into = this.place?.(h);
      this.cur = { h, buf: into ?? new Uint8Array(h.total), filled: 0, placed: into !== undefined };
      this.bodyLast = h.last;
    } else if (type === FRAME_MORE) {
      const cur = this.cur;
      if (cur === undefined) throw new ProtocolError('a continuation fragment without a message');
      if (cur.filled + bodyLength > cur.h.total) throw new ProtocolError('fragments carry more bytes than the message announced');
      this.bodyLast = ((frame[start + 3] as number) & FLAG_LAST) !== 0;
    } else {
      throw new ProtocolError(`unknown message-passing frame type ${String(type)}`);
    }
    if (bodyLength === 0) throw new ProtocolError('a streamed frame must carry a body');
    this.bodyLeft = bodyLength;
  }

  /** Where the rest of the streamed frame's body goes (valid until the next advance() or detach()). */
  bodyTarget(): Uint8Array {
    const cur = this.cur as { buf: Uint8Array; filled: number };
    return cur.buf.subarray(cur.filled, cur.filled + this.bodyLeft);
  }

  /** `n` more body bytes are in bodyTarget(): the whole message once its last frame is complete. */
  advance(n: number): Envelope | undefined {
    const cur = this.cur;
    if (cur === undefined || n > this.bodyLeft) throw new ProtocolError('frame body longer than announced');
    cur.filled += n;
    this.bodyLeft -= n;
    if (this.bodyLeft > 0 || !this.bodyLast) return undefined;
    if (cur.filled !== cur.h.total) throw new ProtocolError(`message ended after ${cur.filled} of ${cur.h.total} bytes`);
    this.cur = undefined;
    const h = cur.h;
    const bytes = cur.buf.length === h.total ? cur.buf : cur.buf.subarray(0, h.total);
    return { ctx: h.ctx, tag: h.tag, kind: h.kind, dtype: h.dtype, bytes, src: -1 };
  }

  /**
   * Stop writing into the buffer Place lent (its receive gave up): what has
   * arrived so far moves to a buffer of our own, and the rest follows there.
   */
  detach(): void {
    const cur = this.cur;
    if (cur === undefined || !cur.placed) return;
    const own = new Uint8Array(cur.h.total);
    own.set(cur.buf.subarray(0, cur.filled));
    cur.buf = own;
    cur.placed = false;
  }

  /**
   * One frame, `frame[start .. end)`. `borrowed`: the bytes are only lent for
   * this call (a ring's memory, a reused read buffer), so a whole message in
   * one frame is copied out instead of returned as a view.
   */
  push(frame: Uint8Array, start = 0, borrowed = false, end = frame.length): Envelope | undefined {
    const type = frame[start];
    if (type === FRAME_FIRST) {
      if (this.cur !== undefined) throw new ProtocolError('a new message started before the previous one ended');
      const body = end - start - FIRST_HEADER;
      // The usual case first: a small message whole in one frame, read without a header object
      // (the checks are readFirstHeader's: last, and a total equal to what the frame carries).
      if (body >= 0 && body <= 64 && body <= this.max && ((frame[start + 3] as number) & FLAG_LAST) !== 0 && u32(frame, start + 12) === 0 && u32(frame, start + 16) === body) {
        const ctx = u32(frame, start + 4);
        const tag = u32(frame, start + 8) | 0;
        const kind = frame[start + 1] as number;
        // Straight into the buffer of the receive that will take it, when one is spinning for it.
        const bytes = this.placeSmall?.(ctx, tag, kind, body) ?? new Uint8Array(body);
        const from = start + FIRST_HEADER;
        for (let i = 0; i < body; i++) bytes[i] = frame[from + i] as number;
        return { ctx, tag, kind, dtype: frame[start + 2] as number, bytes, src: -1 };
      }
      const h = readFirstHeader(frame, start, end);
      if (h.total > this.max) throw new ProtocolError(`message of ${h.total} bytes exceeds the maximum of ${this.max}`, { code: 'EMSGSIZE' });
      const from = start + FIRST_HEADER;
      const n = end - from;
      if (h.last) {
        let bytes: Uint8Array;
        const into = n > 64 ? (borrowed ? this.place?.(h) : undefined) ?? this.placeSmall?.(h.ctx, h.tag, h.kind, n) : undefined;
        if (into !== undefined) {
          this.copy(into, 0, frame, from, n);
          bytes = n === into.length ? into : into.subarray(0, n);
        } else if (!borrowed) bytes = frame.subarray(from, end);
        else if (n <= 64) {
          bytes = new Uint8Array(n);
          for (let i = 0; i < n; i++) bytes[i] = frame[from + i] as number;
        } else {
          // new + copy, not slice(): V8's slice() of shared memory takes a much slower path.
          bytes = new Uint8Array(n);
          this.copy(bytes, 0, frame, from, n);
        }
        return { ctx: h.ctx, tag: h.tag, kind: h.kind, dtype: h.dtype, bytes, src: -1 };
      }
      const into = this.place?.(h);
      const buf = into ?? new Uint8Array(h.total);
      this.copy(buf, 0, frame, from, n);
      this.cur = { h, buf, filled: n, placed: into !== undefined };
      return undefined;
    }
    if (type === FRAME_MORE) {
      const cur = this.cur;
      if (cur === undefined || end - start < MORE_HEADER) throw new ProtocolError('a continuation fragment without a message');
      const from = start + MORE_HEADER;
      const n = end - from;
      const last = ((frame[start + 3] as number) & FLAG_LAST) !== 0;
      if (cur.filled + n > cur.h.total) throw new ProtocolError('fragments carry more bytes than the message announced');
      this.copy(cur.buf, cur.filled, frame, from, n);
      cur.filled += n;
      if (!last) return undefined;
      if (cur.filled !== cur.h.total) throw new ProtocolError(`message ended after ${cur.filled} of ${cur.h.total} bytes`);
      this.cur = undefined;
      const h = cur.h;
      const bytes = cur.buf.length === h.total ? cur.buf : cur.buf.subarray(0, h.total);
      return { ctx: h.ctx, tag: h.tag, kind: h.kind, dtype: h.dtype, bytes, src: -1 };
    }
    throw new ProtocolError(`unknown message-passing frame type ${String(type)}`);
  }
}
