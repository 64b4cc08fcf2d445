/**
 * Tag bytes of the Switchboard RPC value encoding. One byte says what
 * follows; small integers, short strings, arrays and objects carry their
 * size in the tag itself (like MessagePack's fix* forms).
 *
 *   0x00-0x7f  integer 0..127           0xe0-0xff  integer -32..-1
 *   0x80-0x8f  object with 0..15 keys    0x90-0x9f  array of 0..15 items
 *   0xa0-0xbf  ASCII string of 0..31 bytes
 *   0xc0..     the tags below
 *
 * Multi-byte numbers are little-endian; lengths and ids are unsigned LEB128
 * varints (at most 53 bits).
 */
export const T = {
  FIXOBJ: 0x80,
  FIXARR: 0x90,
  FIXSTR: 0xa0,
  UNDEFINED: 0xc0,
  NULL: 0xc1,
  FALSE: 0xc2,
  TRUE: 0xc3,
  INT8: 0xc4,
  INT16: 0xc5,
  INT32: 0xc6,
  UINT32: 0xc7,
  FLOAT64: 0xc8,
  BIGINT64: 0xc9,
  /** sign byte (0 or 1), varint byte count, magnitude little-endian */
  BIGINT: 0xca,
  STR8: 0xcb,
  STR16: 0xcc,
  STR32: 0xcd,
  ARRAY: 0xce,
  OBJECT: 0xcf,
  /** an object whose prototype is null: varint key count, then keys and values */
  OBJECT_NULL: 0xd0,
  /** a hole in a sparse array */
  HOLE: 0xd1,
  MAP: 0xd2,
  SET: 0xd3,
  DATE: 0xd4,
  REGEXP: 0xd5,
  ARRAYBUFFER: 0xd6,
  /** u8 kind (TYPED_KINDS), varint byte length, bytes */
  TYPED: 0xd7,
  DATAVIEW: 0xd8,
  /** u8 flags (1 code, 2 cause, 4 stack), name, message, [code], [cause], [stack] */
  ERROR: 0xd9,
  /** a reference to an object the sender owns: varint id, u8 kind (0 function, 1 object) */
  REF: 0xda,
  /** a reference the receiver itself owns, coming home: varint id */
  REF_HOME: 0xdb,
  /** an async iterable the sender will stream: varint stream id */
  STREAM: 0xdc,
  /** a binary value sent beside the message (worker ports): varint index */
  ATTACHMENT: 0xdd,
} as const;

export const MAX_DEPTH = 256;

export type TypedArrayConstructor =
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Uint8ClampedArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

/** Index = kind byte on the wire. Never reorder; append only. */
export const TYPED_KINDS: readonly TypedArrayConstructor[] = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];

/** The kind byte of a REF: what the receiver builds for it. */
export const REF_FUNCTION = 0;
export const REF_OBJECT = 1;
export type RefKind = typeof REF_FUNCTION | typeof REF_OBJECT;
