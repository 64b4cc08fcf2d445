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
 */
import { ProtocolError } from '../errors.js';
import type { Envelope } from './link.js';

export const FRAME_HELLO = 1;
export const FRAME_FIRST = 2;
export const FRAME_MORE = 3;
export const FIRST_HEADER = 20;
export const MORE_HEADER = 4;
export const FLAG_LAST = 1;

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

/** The header of a message's first frame, written into `out` (at least FIRST_HEADER bytes). */
export function writeFirstHeader(out: Uint8Array, h: FirstHeader): void {
  const { ctx, tag, total } = h;
  const hi = Math.floor(total / 0x1_0000_0000);
  const lo = total >>> 0;
  out[0] = FRAME_FIRST;
  out[1] = h.kind;
  out[2] = h.dtype;
  out[3] = h.last ? FLAG_LAST : 0;
  out[4] = ctx >>> 24;
  out[5] = ctx >>> 16;
  out[6] = ctx >>> 8;
  out[7] = ctx;
  out[8] = tag >>> 24;
  out[9] = tag >>> 16;
  out[10] = tag >>> 8;
  out[11] = tag;
  out[12] = hi >>> 24;
  out[13] = hi >>> 16;
  out[14] = hi >>> 8;
  out[15] = hi;
  out[16] = lo >>> 24;
  out[17] = lo >>> 16;
  out[18] = lo >>> 8;
  out[19] = lo;
}

/** Big-endian u32 at `i` (the caller checked the bounds). */
function u32(b: Uint8Array, i: number): number {
  return (((b[i] as number) << 24) | ((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number)) >>> 0;
}

export function readFirstHeader(b: Uint8Array): FirstHeader {
  if (b.byteLength < FIRST_HEADER) throw new ProtocolError(`message frame of ${b.byteLength} bytes is shorter than its header`);
  const total = u32(b, 12) * 0x1_0000_0000 + u32(b, 16);
  const last = ((b[3] as number) & FLAG_LAST) !== 0;
  const h: FirstHeader = { kind: b[1] as number, dtype: b[2] as number, last, ctx: u32(b, 4), tag: u32(b, 8) | 0, total };
  if (last && total !== b.byteLength - FIRST_HEADER) throw new ProtocolError(`message says ${total} bytes but carries ${b.byteLength - FIRST_HEADER}`);
  if (!last && total <= b.byteLength - FIRST_HEADER) throw new ProtocolError('a fragmented message must be longer than its first fragment');
  return h;
}

export function writeMoreHeader(out: Uint8Array, last: boolean): void {
  out[0] = FRAME_MORE;
  out[1] = 0;
  out[2] = 0;
  out[3] = last ? FLAG_LAST : 0;
}

/**
 * Reassembles one connection's fragments. `push(frame)` returns a whole
 * message when its last fragment arrives. Bounds are checked before any
 * allocation and every fragment must fit what the first one announced.
 */
export class Reassembler {
  private readonly max: number;
  private cur: { h: FirstHeader; buf: Uint8Array; filled: number } | undefined;

  constructor(maxMessageSize: number) {
    this.max = maxMessageSize;
  }

  push(frame: Uint8Array): Envelope | undefined {
    const type = frame[0];
    if (type === FRAME_FIRST) {
      if (this.cur !== undefined) throw new ProtocolError('a new message started before the previous one ended');
      const h = readFirstHeader(frame);
      if (h.total > this.max) throw new ProtocolError(`message of ${h.total} bytes exceeds the maximum of ${this.max}`, { code: 'EMSGSIZE' });
      const body = frame.subarray(FIRST_HEADER);
      if (h.last) return { ctx: h.ctx, tag: h.tag, kind: h.kind, dtype: h.dtype, bytes: body };
      const buf = new Uint8Array(h.total);
      buf.set(body, 0);
      this.cur = { h, buf, filled: body.byteLength };
      return undefined;
    }
    if (type === FRAME_MORE) {
      const cur = this.cur;
      if (cur === undefined || frame.byteLength < MORE_HEADER) throw new ProtocolError('a continuation fragment without a message');
      const body = frame.subarray(MORE_HEADER);
      const last = ((frame[3] as number) & FLAG_LAST) !== 0;
      if (cur.filled + body.byteLength > cur.h.total) throw new ProtocolError('fragments carry more bytes than the message announced');
      cur.buf.set(body, cur.filled);
      cur.filled += body.byteLength;
      if (!last) return undefined;
      if (cur.filled !== cur.h.total) throw new ProtocolError(`message ended after ${cur.filled} of ${cur.h.total} bytes`);
      this.cur = undefined;
      const h = cur.h;
      return { ctx: h.ctx, tag: h.tag, kind: h.kind, dtype: h.dtype, bytes: cur.buf };
    }
    throw new ProtocolError(`unknown message-passing frame type ${String(type)}`);
  }
}
