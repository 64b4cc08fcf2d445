/**
 * switchboard/wire: pure codecs over bytes, no I/O. Framing (length prefix,
 * ONC RPC record marking) for keeping message boundaries on byte streams
 * (seed 12.2.2-12.2.3); XDR (RFC 4506) for ONC RPC; later CDR for CORBA.
 */
export { ByteQueue, type FrameDecoder, type FrameEncoder } from './frame-decoder.js';
export {
  DEFAULT_MAX_MESSAGE,
  LENGTH_PREFIX_BYTES,
  LengthPrefixDecoder,
  LengthPrefixEncoder,
  encodeLengthPrefix,
  lengthHeader,
} from './length-prefix.js';
export {
  DEFAULT_MAX_RECORD,
  LAST_FRAGMENT,
  MAX_FRAGMENT,
  RecordMarkingDecoder,
  RecordMarkingEncoder,
  encodeRecord,
  type RecordMarkingOptions,
} from './record-marking.js';
export { XdrError, XdrBoundError, XdrValueError } from './xdr-errors.js';
export { XdrWriter, assertInt32, assertUint32 } from './xdr-writer.js';
export { XdrReader } from './xdr-reader.js';
export {
  xdr,
  xdrArray,
  xdrBool,
  xdrDouble,
  xdrEnum,
  xdrFixedArray,
  xdrFloat,
  xdrHyper,
  xdrInt,
  xdrLazy,
  xdrOpaque,
  xdrOpaqueFixed,
  xdrOptional,
  xdrString,
  xdrStruct,
  xdrUhyper,
  xdrUint,
  xdrUnion,
  xdrTuple,
  xdrVoid,
  encodeXdr,
  decodeXdr,
  decodeFrom,
  type XdrCodec,
  type XdrUnionArm,
} from './xdr-codec.js';
