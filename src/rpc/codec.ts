/**
 * The Switchboard RPC value codec: a compact tagged binary encoding of what
 * can cross an RPC boundary (see codec-tags.ts for the format). Pure: bytes
 * in, values out. Cycles are refused (with the path where one closes).
 */
import { Decoder, type DecodeHooks } from './codec-decoder.js';
import { DEFAULT_MAX_MESSAGE, Encoder, type EncodeHooks } from './codec-encoder.js';
import { ProtocolError } from '../errors.js';

export { Decoder, type DecodeHooks } from './codec-decoder.js';
export { DEFAULT_MAX_MESSAGE, Encoder, type EncodeHooks } from './codec-encoder.js';
export { UnsendableError } from './codec-errors.js';

export interface CodecOptions {
  /** Refuse to produce or accept a value encoding larger than this (default 64 MiB). */
  maxMessageSize?: number;
}

const shared = new Encoder({ initialSize: 64 * 1024 });

/** Encode one value into a fresh Uint8Array. Throws UnsendableError (EINVAL) or ProtocolError (EMSGSIZE). */
export function encode(value: unknown, options: CodecOptions & { hooks?: EncodeHooks; root?: string } = {}): Uint8Array {
  const enc = options.hooks ? new Encoder({ hooks: options.hooks }) : shared;
  enc.reset();
  enc.maxFrame = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE;
  enc.encode(value, options.root);
  return enc.copy();
}

/** Decode exactly one value that fills `bytes`. Throws ProtocolError (EPROTO/EMSGSIZE) on anything else. */
export function decode(bytes: Uint8Array, options: CodecOptions & { hooks?: DecodeHooks } = {}): unknown {
  const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE;
  if (bytes.length > max) throw new ProtocolError(`message of ${bytes.length} bytes exceeds the maximum of ${max}`, { code: 'EMSGSIZE' });
  const dec = new Decoder(bytes, options.hooks);
  const v = dec.decode();
  if (dec.pos !== bytes.length) throw new ProtocolError(`malformed RPC value: ${bytes.length - dec.pos} bytes after the value`);
  return v;
}
