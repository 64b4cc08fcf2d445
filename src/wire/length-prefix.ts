/**
 * Length-prefixed messages: a 4-byte big-endian unsigned length, then that
 * many bytes. The simplest way to keep message boundaries on a byte stream.
 */
import { ArgumentError, ProtocolError } from '../errors.js';
import { ByteQueue, type FrameDecoder, type FrameEncoder } from './frame-decoder.js';

export const LENGTH_PREFIX_BYTES = 4;
export const DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024;
/** The largest length a 4-byte prefix can say. */
export const MAX_LENGTH_PREFIX = 0xffff_ffff;

function checkMax(max: number): number {
  if (!Number.isInteger(max) || max < 0 || max > MAX_LENGTH_PREFIX) {
    throw new ArgumentError(`maxMessageSize must be an integer from 0 to ${MAX_LENGTH_PREFIX}, got ${max}`);
  }
  return max;
}

export class LengthPrefixDecoder implements FrameDecoder {
  readonly maxMessageSize: number;
  #q = new ByteQueue();
  #failed: ProtocolError | undefined;

  constructor(maxMessageSize = DEFAULT_MAX_MESSAGE) {
    this.maxMessageSize = checkMax(maxMessageSize);
  }

  get pending(): number {
    return this.#q.length;
  }

  push(chunk: Uint8Array): void {
    if (this.#failed) throw this.#failed;
    this.#q.push(chunk);
  }

  next(): Uint8Array | undefined {
    if (this.#failed) throw this.#failed;
    const q = this.#q;
    if (q.length < LENGTH_PREFIX_BYTES) return undefined;
    const len = q.peekUint32(0);
    if (len > this.maxMessageSize) {
      this.#failed = new ProtocolError(`message of ${len} bytes exceeds the maximum of ${this.maxMessageSize}`, { code: 'EMSGSIZE' });
      throw this.#failed;
    }
    if (q.length < LENGTH_PREFIX_BYTES + len) return undefined;
    q.skip(LENGTH_PREFIX_BYTES);
    return q.take(len);
  }
}

export class LengthPrefixEncoder implements FrameEncoder {
  readonly maxMessageSize: number;
  constructor(maxMessageSize = DEFAULT_MAX_MESSAGE) {
    this.maxMessageSize = checkMax(maxMessageSize);
  }
  encode(message: Uint8Array): Uint8Array[] {
    if (message.length > this.maxMessageSize) {
      throw new ProtocolError(`message of ${message.length} bytes exceeds the maximum of ${this.maxMessageSize}`, { code: 'EMSGSIZE' });
    }
    return [lengthHeader(message.length), message];
  }
}

export function lengthHeader(length: number): Uint8Array {
  const h = new Uint8Array(4);
  h[0] = length >>> 24;
  h[1] = (length >>> 16) & 0xff;
  h[2] = (length >>> 8) & 0xff;
  h[3] = length & 0xff;
  return h;
}

/** One buffer holding the prefix and the message. */
export function encodeLengthPrefix(message: Uint8Array, maxMessageSize = DEFAULT_MAX_MESSAGE): Uint8Array {
  const [h, m] = new LengthPrefixEncoder(maxMessageSize).encode(message) as [Uint8Array, Uint8Array];
  const out = new Uint8Array(4 + m.length);
  out.set(h, 0);
  out.set(m, 4);
  return out;
}
