/**
 * ONC RPC record marking (RFC 5531 section 11): a record is sent as one or
 * more fragments, each preceded by a 4-byte big-endian header whose high bit
 * says "last fragment" and whose low 31 bits give the fragment's length.
 */
import { ArgumentError, ProtocolError } from '../errors.js';
import { allocBytes, copyBytes } from './copy-bytes.js';
import { ByteQueue, type FrameDecoder, type FrameEncoder } from './frame-decoder.js';

export const LAST_FRAGMENT = 0x8000_0000;
export const MAX_FRAGMENT = 0x7fff_ffff;
export const DEFAULT_MAX_RECORD = 16 * 1024 * 1024;

export interface RecordMarkingOptions {
  /** Largest whole record accepted (sum of its fragments). */
  maxRecordSize?: number;
  /** Most fragments in one record (guards against floods of empty fragments). */
  maxFragments?: number;
}

export class RecordMarkingDecoder implements FrameDecoder {
  readonly maxRecordSize: number;
  readonly maxFragments: number;
  #q = new ByteQueue();
  /** The fragments of the record so far, as views of the chunks they arrived in. */
  #parts: Uint8Array[] = [];
  #fragments = 0;
  #recordBytes = 0;
  #failed: ProtocolError | undefined;

  constructor(options: RecordMarkingOptions = {}) {
    const max = options.maxRecordSize ?? DEFAULT_MAX_RECORD;
    if (!Number.isInteger(max) || max < 0) throw new ArgumentError(`maxRecordSize must be a non-negative integer, got ${max}`);
    this.maxRecordSize = max;
    const frags = options.maxFragments ?? 65536;
    if (!Number.isInteger(frags) || frags < 1) throw new ArgumentError(`maxFragments must be a positive integer, got ${frags}`);
    this.maxFragments = frags;
  }

  get pending(): number {
    return this.#q.length + this.#recordBytes;
  }

  push(chunk: Uint8Array): void {
    if (this.#failed) throw this.#failed;
    this.#q.push(chunk);
  }

  #fail(message: string, code: 'EPROTO' | 'EMSGSIZE'): never {
    this.#failed = new ProtocolError(message, { code });
    throw this.#failed;
  }

  next(): Uint8Array | undefined {
    if (this.#failed) throw this.#failed;
    const q = this.#q;
    for (;;) {
      if (q.length < 4) return undefined;
      const header = q.peekUint32(0);
      const last = header >= LAST_FRAGMENT;
      const len = header & MAX_FRAGMENT;
      if (this.#recordBytes + len > this.maxRecordSize) {
        this.#fail(`record of at least ${this.#recordBytes + len} bytes exceeds the maximum of ${this.maxRecordSize}`, 'EMSGSIZE');
      }
      if (q.length < 4 + len) return undefined;
      q.skip(4);
      if (!last) {
        if (this.#fragments + 1 >= this.maxFragments) this.#fail(`record has more than ${this.maxFragments} fragments`, 'EPROTO');
        // Views of the socket's chunks until the record is whole: each byte is copied once, at the end.
        q.takeViews(len, this.#parts);
        this.#fragments++;
        this.#recordBytes += len;
        continue;
      }
      if (this.#fragments === 0) return q.take(len);
      q.takeViews(len, this.#parts);
      const out = allocBytes(this.#recordBytes + len);
      let at = 0;
      for (const p of this.#parts) {
        copyBytes(out, p, at);
        at += p.length;
      }
      this.#parts = [];
      this.#fragments = 0;
      this.#recordBytes = 0;
      return out;
    }
  }
}

export class RecordMarkingEncoder implements FrameEncoder {
  readonly maxFragment: number;
  readonly maxRecordSize: number;
  constructor(options: { maxFragment?: number; maxRecordSize?: number } = {}) {
    const f = options.maxFragment ?? MAX_FRAGMENT;
    if (!Number.isInteger(f) || f < 1 || f > MAX_FRAGMENT) throw new ArgumentError(`maxFragment must be from 1 to ${MAX_FRAGMENT}, got ${f}`);
    this.maxFragment = f;
    const max = options.maxRecordSize ?? DEFAULT_MAX_RECORD;
    if (!Number.isInteger(max) || max < 0) throw new ArgumentError(`maxRecordSize must be a non-negative integer, got ${max}`);
    this.maxRecordSize = max;
  }
  encode(record: Uint8Array): Uint8Array[] {
    if (record.length > this.maxRecordSize) {
      throw new ProtocolError(`record of ${record.length} bytes exceeds the maximum of ${this.maxRecordSize}`, { code: 'EMSGSIZE' });
    }
    const out: Uint8Array[] = [];
    let at = 0;
    do {
      const len = Math.min(this.maxFragment, record.length - at);
      const last = at + len === record.length;
      const h = new Uint8Array(4);
      new DataView(h.buffer).setUint32(0, (last ? LAST_FRAGMENT : 0) + len);
      out.push(h, record.subarray(at, at + len));
      at += len;
    } while (at < record.length);
    return out;
  }
}

/** The whole record, marked, in one buffer. */
export function encodeRecord(record: Uint8Array, maxFragment = MAX_FRAGMENT): Uint8Array {
  const parts = new RecordMarkingEncoder({ maxFragment, maxRecordSize: Number.MAX_SAFE_INTEGER }).encode(record);
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
