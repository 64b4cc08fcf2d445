/**
 * What a message carries, reduced to bytes plus two small codes: raw bytes
 * (Uint8Array, Buffer, DataView), a typed array (the element type travels so
 * the receiver gets the same type back), or a structured value serialized
 * once with v8.serialize. No JSON anywhere.
 */
import { serialize, deserialize } from 'node:v8';
import { ArgumentError } from '../errors.js';

export const KIND_BYTES = 0;
export const KIND_TYPED = 1;
export const KIND_VALUE = 2;
export type PayloadKind = typeof KIND_BYTES | typeof KIND_TYPED | typeof KIND_VALUE;

export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

type TypedCtor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray; new (length: number): TypedArray; readonly BYTES_PER_ELEMENT: number };

/** Element types by their wire code (index = code). */
const CTORS: readonly TypedCtor[] = [
  Uint8Array,
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as unknown as TypedCtor[];

export function dtypeOf(a: TypedArray): number {
  const code = CTORS.indexOf(Object.getPrototypeOf(a).constructor as TypedCtor);
  if (code >= 0) return code;
  // Buffer and other Uint8Array subclasses
  for (let i = 0; i < CTORS.length; i++) if (a instanceof (CTORS[i] as unknown as typeof Uint8Array)) return i;
  throw new ArgumentError('unsupported typed array type');
}

export function ctorOf(dtype: number): TypedCtor {
  const c = CTORS[dtype];
  if (c === undefined) throw new ArgumentError(`unknown element type code ${dtype}`);
  return c;
}

export function isTypedArray(x: unknown): x is TypedArray {
  return ArrayBuffer.isView(x) && !(x instanceof DataView);
}

/** The bytes of a view, without copying. */
export function bytesOf(v: ArrayBufferView): Uint8Array {
  return v instanceof Uint8Array && v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

export interface Encoded {
  kind: PayloadKind;
  dtype: number;
  bytes: Uint8Array;
}

/** Reduce any sendable value to bytes (no copy for views). */
export function encodePayload(data: unknown): Encoded {
  const out: Encoded = { kind: KIND_BYTES, dtype: 0, bytes: NO_BYTES };
  encodeInto(out, data);
  return out;
}

const NO_BYTES = new Uint8Array(0);

/** encodePayload() into an object the caller keeps (a blocking send reuses one: nothing made per message). */
export function encodeInto(out: { kind: number; dtype: number; bytes: Uint8Array }, data: unknown): void {
  if (data instanceof Uint8Array && data.constructor === Uint8Array) {
    out.kind = KIND_BYTES;
    out.dtype = 0;
    out.bytes = data;
  } else if (ArrayBuffer.isView(data)) {
    const typed = !(data instanceof DataView) && !(data instanceof Uint8Array && Buffer.isBuffer(data));
    out.kind = typed ? KIND_TYPED : KIND_BYTES;
    out.dtype = typed ? dtypeOf(data as TypedArray) : 0;
    out.bytes = bytesOf(data);
  } else if (data instanceof ArrayBuffer) {
    out.kind = KIND_BYTES;
    out.dtype = 0;
    out.bytes = new Uint8Array(data);
  } else {
    const s = serialize(data);
    out.kind = KIND_VALUE;
    out.dtype = 0;
    out.bytes = new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
  }
}

/** A typed array of element type `dtype` over `bytes`; copies only when the bytes are misaligned. */
export function typedView(dtype: number, bytes: Uint8Array): TypedArray {
  const C = ctorOf(dtype);
  const el = C.BYTES_PER_ELEMENT;
  const n = Math.floor(bytes.byteLength / el);
  if (bytes.byteOffset % el === 0) return new C(bytes.buffer, bytes.byteOffset, n);
  const copy = new Uint8Array(n * el);
  copy.set(bytes.subarray(0, n * el));
  return new C(copy.buffer, 0, n);
}

/** Turn received bytes back into what was sent. */
export function decodePayload(kind: number, dtype: number, bytes: Uint8Array): unknown {
  switch (kind) {
    case KIND_BYTES:
      return bytes;
    case KIND_TYPED:
      return typedView(dtype, bytes);
    default:
      return deserialize(bytes);
  }
}
