/**
 * Errors of the XDR codec (RFC 4506). Decoding malformed bytes throws an
 * XdrError (a ProtocolError, code EPROTO, or EMSGSIZE when a length passes its
 * declared bound); encoding a value that does not fit its type throws an
 * XdrValueError (an ArgumentError, code EINVAL).
 */
import { ArgumentError, ProtocolError } from '../errors.js';

export class XdrError extends ProtocolError {
  override name = 'XdrError';
  constructor(message: string, options?: { code?: 'EPROTO' | 'EMSGSIZE'; cause?: unknown }) {
    super(`XDR: ${message}`, options);
  }
}

/** A length prefix larger than the bound declared in the `.x` file (`<n>`). */
export class XdrBoundError extends XdrError {
  override name = 'XdrBoundError';
  constructor(what: string, length: number, bound: number) {
    super(`${what} length ${length} exceeds its bound ${bound}`, { code: 'EMSGSIZE' });
  }
}

/** A value handed to the encoder that its XDR type cannot carry. */
export class XdrValueError extends ArgumentError {
  override name = 'XdrValueError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`XDR: ${message}`, options);
  }
}
