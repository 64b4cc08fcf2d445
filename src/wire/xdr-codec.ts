/**
 * XDR types as values: small codec objects that compose like the RPC
 * language does (struct, union, arrays, optional-data). The `.x` compiler
 * generates code built from these, and compiles `.x` files at run time to the
 * same objects.
 *
 * JavaScript forms: int, unsigned int, enum, float, double -> number;
 * hyper, unsigned hyper -> bigint; bool -> boolean; opaque -> Uint8Array;
 * string -> string; arrays -> arrays; optional-data (`*`) -> value | null;
 * struct -> object; union -> object with the discriminant under its own
 * name and the chosen arm under the arm's name; void -> undefined.
 */
import { XdrReader } from './xdr-reader.js';
import { XdrWriter, assertInt32, assertUint32 } from './xdr-writer.js';
import { XdrError, XdrValueError } from './xdr-errors.js';
import { SwitchboardError } from '../errors.js';

export interface XdrCodec<T> {
  /** Smallest encoded size in bytes, used to reject impossible lengths before allocating. */
  readonly minSize: number;
  encode(w: XdrWriter, value: T): void;
  decode(r: XdrReader): T;
}

const MAX_U32 = 0xffff_ffff;

export const xdrInt: XdrCodec<number> = { minSize: 4, encode: (w, v) => void w.int(v), decode: (r) => r.int() };
export const xdrUint: XdrCodec<number> = { minSize: 4, encode: (w, v) => void w.uint(v), decode: (r) => r.uint() };
export const xdrBool: XdrCodec<boolean> = { minSize: 4, encode: (w, v) => void w.bool(v), decode: (r) => r.bool() };
export const xdrHyper: XdrCodec<bigint> = { minSize: 8, encode: (w, v) => void w.hyper(v), decode: (r) => r.hyper() };
export const xdrUhyper: XdrCodec<bigint> = { minSize: 8, encode: (w, v) => void w.uhyper(v), decode: (r) => r.uhyper() };
export const xdrFloat: XdrCodec<number> = { minSize: 4, encode: (w, v) => void w.float(v), decode: (r) => r.float() };
export const xdrDouble: XdrCodec<number> = { minSize: 8, encode: (w, v) => void w.double(v), decode: (r) => r.double() };
export const xdrVoid: XdrCodec<void> = {
  minSize: 0,
  encode: () => undefined,
  decode: () => undefined,
};

/** An enum: only the listed values are encoded or accepted. */
export function xdrEnum<T extends number>(values: Readonly<Record<string, T>> | readonly T[], name = 'enum'): XdrCodec<T> {
  const allowed = new Set<number>(Array.isArray(values) ? values : Object.values(values));
  for (const v of allowed) assertInt32(v, `${name} value`);
  return {
    minSize: 4,
    encode(w, v) {
      if (!allowed.has(v)) throw new XdrValueError(`${String(v)} is not a value of ${name}`);
      w.int(v);
    },
    decode(r) {
      const v = r.int();
      if (!allowed.has(v)) throw new XdrError(`${v} is not a value of ${name}`);
      return v as T;
    },
  };
}

export function xdrOpaqueFixed(n: number): XdrCodec<Uint8Array> {
  assertUint32(n, 'opaque size');
  return { minSize: n + ((4 - (n & 3)) & 3), encode: (w, v) => void w.opaqueFixed(v, n), decode: (r) => r.opaqueFixed(n) };
}

export function xdrOpaque(max = MAX_U32): XdrCodec<Uint8Array> {
  assertUint32(max, 'opaque bound');
  return { minSize: 4, encode: (w, v) => void w.opaque(v, max), decode: (r) => r.opaque(max) };
}

export function xdrString(max = MAX_U32): XdrCodec<string> {
  assertUint32(max, 'string bound');
  return { minSize: 4, encode: (w, v) => void w.string(v, max), decode: (r) => r.string(max) };
}

/** type name[n]: exactly n elements, no length prefix. */
export function xdrFixedArray<T>(element: XdrCodec<T>, n: number): XdrCodec<T[]> {
  assertUint32(n, 'array size');
  return {
    get minSize() {
      return n * element.minSize;
    },
    encode(w, v) {
      if (!Array.isArray(v) || v.length !== n) throw new XdrValueError(`fixed array[${n}] needs exactly ${n} elements, got ${Array.isArray(v) ? v.length : typeof v}`);
      for (let i = 0; i < n; i++) element.encode(w, v[i] as T);
    },
    decode(r) {
      r.assertBounds(n * element.minSize);
      const out = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = element.decode(r);
      return out;
    },
  };
}

/** type name<max>: a length then the elements. */
export function xdrArray<T>(element: XdrCodec<T>, max = MAX_U32): XdrCodec<T[]> {
  assertUint32(max, 'array bound');
  return {
    minSize: 4,
    encode(w, v) {
      if (!Array.isArray(v)) throw new XdrValueError(`array expected, got ${typeof v}`);
      if (v.length > max) throw new XdrValueError(`array<${max}> got ${v.length} elements`);
      w.uint(v.length);
      for (let i = 0; i < v.length; i++) element.encode(w, v[i] as T);
    },
    decode(r) {
      const n = r.length(max, 'array', element.minSize);
      const out = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = element.decode(r);
      return out;
    },
  };
}

/** Optional-data `type *name`: a bool then the value; null when absent. */
export function xdrOptional<T>(element: XdrCodec<T>): XdrCodec<T | null> {
  return {
    minSize: 4,
    encode(w, v) {
      if (v === null || v === undefined) {
        w.uint(0);
      } else {
        w.uint(1);
        element.encode(w, v);
      }
    },
    decode(r) {
      return r.bool() ? element.decode(r) : null;
    },
  };
}

/** A codec defined later (recursive types such as linked lists). */
export function xdrLazy<T>(get: () => XdrCodec<T>): XdrCodec<T> {
  let c: XdrCodec<T> | undefined;
  const resolve = (): XdrCodec<T> => (c ??= get());
  return {
    // Recursion only goes through optional-data or variable arrays, which cost 4 bytes at least.
    minSize: 4,
    encode: (w, v) => resolve().encode(w, v),
    decode: (r) => resolve().decode(r),
  };
}


/** A struct: the fields in declaration order. */
export function xdrStruct<T extends object>(fields: ReadonlyArray<readonly [string, XdrCodec<unknown>]>, name = 'struct'): XdrCodec<T> {
  const names = fields.map((f) => f[0]);
  const codecs = fields.map((f) => f[1]);
  const count = fields.length;
  return {
    get minSize() {
      let s = 0;
      for (const c of codecs) s += c.minSize;
      return s;
    },
    encode(w, v) {
      if (v === null || typeof v !== 'object') throw new XdrValueError(`${name} must be an object, got ${v === null ? 'null' : typeof v}`);
      const rec = v as Record<string, unknown>;
      for (let i = 0; i < count; i++) {
        const key = names[i] as string;
        const fv = rec[key];
        try {
          (codecs[i] as XdrCodec<unknown>).encode(w, fv);
        } catch (err) {
          if (err instanceof XdrValueError && !err.message.includes(' in field ')) {
            throw new XdrValueError(`${err.message.slice(5)} in field ${name}.${key}`, { cause: err });
          }
          throw err;
        }
      }
    },
    decode(r) {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < count; i++) out[names[i] as string] = (codecs[i] as XdrCodec<unknown>).decode(r);
      return out as T;
    },
  };
}

export interface XdrUnionArm {
  /** Discriminant values selecting this arm (numbers, or booleans for a bool discriminant). */
  cases: ReadonlyArray<number | boolean>;
  /** Property holding the arm's value; absent for a void arm. */
  name?: string | undefined;
  codec?: XdrCodec<unknown> | undefined;
}

/**
 * A discriminated union. The value is `{ [discriminant]: d, [armName]: v }`;
 * a void arm has only the discriminant.
 */
export function xdrUnion<T extends object>(
  discriminant: string,
  discCodec: XdrCodec<number> | XdrCodec<boolean>,
  arms: readonly XdrUnionArm[],
  defaultArm?: { name?: string | undefined; codec?: XdrCodec<unknown> | undefined } | null,
  name = 'union',
): XdrCodec<T> {
  const table = new Map<number | boolean, { name?: string | undefined; codec?: XdrCodec<unknown> | undefined }>();
  for (const arm of arms) for (const c of arm.cases) table.set(c, arm);
  const disc = discCodec as XdrCodec<number | boolean>;
  const pick = (d: number | boolean) => table.get(d) ?? defaultArm ?? undefined;
  return {
    minSize: 4,
    encode(w, v) {
      if (v === null || typeof v !== 'object') throw new XdrValueError(`${name} must be an object, got ${v === null ? 'null' : typeof v}`);
      const rec = v as Record<string, unknown>;
      const d = rec[discriminant] as number | boolean;
      const arm = pick(d);
      if (arm === undefined) throw new XdrValueError(`${name}: no arm for ${discriminant} = ${String(d)}`);
      disc.encode(w, d);
      if (arm.codec !== undefined) (arm.codec as XdrCodec<unknown>).encode(w, rec[arm.name as string]);
    },
    decode(r) {
      const d = disc.decode(r);
      const arm = pick(d);
      if (arm === undefined) throw new XdrError(`${name}: no arm for ${discriminant} = ${String(d)}`);
      const out: Record<string, unknown> = { [discriminant]: d };
      if (arm.codec !== undefined) out[arm.name as string] = (arm.codec as XdrCodec<unknown>).decode(r);
      return out as T;
    },
  };
}

/** Several values one after the other (the arguments of an rpcgen -N procedure). */
export function xdrTuple<T extends unknown[]>(codecs: { [K in keyof T]: XdrCodec<T[K]> }): XdrCodec<T> {
  const list = codecs as readonly XdrCodec<unknown>[];
  return {
    get minSize() {
      let s = 0;
      for (const c of list) s += c.minSize;
      return s;
    },
    encode(w, v) {
      if (!Array.isArray(v) || v.length !== list.length) throw new XdrValueError(`expected ${list.length} values`);
      for (let i = 0; i < list.length; i++) (list[i] as XdrCodec<unknown>).encode(w, v[i]);
    },
    decode(r) {
      const out = new Array<unknown>(list.length);
      for (let i = 0; i < list.length; i++) out[i] = (list[i] as XdrCodec<unknown>).decode(r);
      return out as T;
    },
  };
}

/** Encode one value to a fresh byte array. */
export function encodeXdr<T>(codec: XdrCodec<T>, value: T, writer = new XdrWriter()): Uint8Array {
  try {
    codec.encode(writer, value);
  } catch (err) {
    if (err instanceof RangeError) throw new XdrValueError('value nested too deeply to encode', { cause: err });
    throw err;
  }
  return writer.finish();
}

/** Decode one value that must fill `bytes` exactly. Throws XdrError on malformed input. */
export function decodeXdr<T>(codec: XdrCodec<T>, bytes: Uint8Array): T {
  const r = new XdrReader(bytes);
  const v = decodeFrom(codec, r);
  r.done();
  return v;
}

/** Decode one value from a reader, turning a stack overflow from hostile nesting into an XdrError. */
export function decodeFrom<T>(codec: XdrCodec<T>, r: XdrReader): T {
  try {
    return codec.decode(r);
  } catch (err) {
    if (err instanceof SwitchboardError) throw err;
    if (err instanceof RangeError) throw new XdrError('input nested too deeply', { cause: err });
    throw err;
  }
}

/** The codecs by their RPC-language names, for hand-written schemas. */
export const xdr = {
  int: xdrInt,
  uint: xdrUint,
  bool: xdrBool,
  hyper: xdrHyper,
  uhyper: xdrUhyper,
  float: xdrFloat,
  double: xdrDouble,
  void: xdrVoid,
  enum: xdrEnum,
  opaqueFixed: xdrOpaqueFixed,
  opaque: xdrOpaque,
  string: xdrString,
  fixedArray: xdrFixedArray,
  array: xdrArray,
  optional: xdrOptional,
  lazy: xdrLazy,
  struct: xdrStruct,
  union: xdrUnion,
  tuple: xdrTuple,
} as const;
