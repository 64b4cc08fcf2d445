/**
 * Reduction operations on typed arrays, applied element by element in place:
 * `left[i] = left[i] op right[i]`. Integer arrays wrap as the array type
 * stores them; the bitwise ops are for integer arrays only.
 */
import { ArgumentError } from '../errors.js';
import type { TypedArray } from './payload.js';

export type BuiltinOp = 'sum' | 'prod' | 'min' | 'max' | 'land' | 'lor' | 'band' | 'bor' | 'bxor';

/** A user reduction: combine `right` into `left` in place (left = left op right). */
export interface UserOp<T extends TypedArray = TypedArray> {
  fn: (left: T, right: T) => void;
  /** False makes the collectives combine strictly in rank order (default true). */
  commutative?: boolean | undefined;
}

export type Op<T extends TypedArray = TypedArray> = BuiltinOp | UserOp<T>;

export const BUILTIN_OPS: readonly BuiltinOp[] = ['sum', 'prod', 'min', 'max', 'land', 'lor', 'band', 'bor', 'bxor'];

type Num = { [i: number]: number; readonly length: number };
type Big = { [i: number]: bigint; readonly length: number };

function isFloat(a: TypedArray): boolean {
  return a instanceof Float32Array || a instanceof Float64Array;
}

function isBig(a: TypedArray): boolean {
  return a instanceof BigInt64Array || a instanceof BigUint64Array;
}

function numberOp(op: BuiltinOp, a: Num, b: Num): void {
  const n = a.length;
  switch (op) {
    case 'sum':
      for (let i = 0; i < n; i++) a[i] = (a[i] as number) + (b[i] as number);
      return;
    case 'prod':
      for (let i = 0; i < n; i++) a[i] = (a[i] as number) * (b[i] as number);
      return;
    case 'min':
      for (let i = 0; i < n; i++) if ((b[i] as number) < (a[i] as number) || Number.isNaN(b[i])) a[i] = b[i] as number;
      return;
    case 'max':
      for (let i = 0; i < n; i++) if ((b[i] as number) > (a[i] as number) || Number.isNaN(b[i])) a[i] = b[i] as number;
      return;
    case 'land':
      for (let i = 0; i < n; i++) a[i] = a[i] && b[i] ? 1 : 0;
      return;
    case 'lor':
      for (let i = 0; i < n; i++) a[i] = a[i] || b[i] ? 1 : 0;
      return;
    case 'band':
      for (let i = 0; i < n; i++) a[i] = (a[i] as number) & (b[i] as number);
      return;
    case 'bor':
      for (let i = 0; i < n; i++) a[i] = (a[i] as number) | (b[i] as number);
      return;
    case 'bxor':
      for (let i = 0; i < n; i++) a[i] = (a[i] as number) ^ (b[i] as number);
      return;
  }
}

function bigOp(op: BuiltinOp, a: Big, b: Big): void {
  const n = a.length;
  switch (op) {
    case 'sum':
      for (let i = 0; i < n; i++) a[i] = (a[i] as bigint) + (b[i] as bigint);
      return;
    case 'prod':
      for (let i = 0; i < n; i++) a[i] = (a[i] as bigint) * (b[i] as bigint);
      return;
    case 'min':
      for (let i = 0; i < n; i++) if ((b[i] as bigint) < (a[i] as bigint)) a[i] = b[i] as bigint;
      return;
    case 'max':
      for (let i = 0; i < n; i++) if ((b[i] as bigint) > (a[i] as bigint)) a[i] = b[i] as bigint;
      return;
    case 'land':
      for (let i = 0; i < n; i++) a[i] = a[i] && b[i] ? 1n : 0n;
      return;
    case 'lor':
      for (let i = 0; i < n; i++) a[i] = a[i] || b[i] ? 1n : 0n;
      return;
    case 'band':
      for (let i = 0; i < n; i++) a[i] = (a[i] as bigint) & (b[i] as bigint);
      return;
    case 'bor':
      for (let i = 0; i < n; i++) a[i] = (a[i] as bigint) | (b[i] as bigint);
      return;
    case 'bxor':
      for (let i = 0; i < n; i++) a[i] = (a[i] as bigint) ^ (b[i] as bigint);
      return;
  }
}

/** Check an op against an element type before any message moves. */
export function checkOp(op: Op, sample: TypedArray): void {
  if (typeof op === 'string') {
    if (!BUILTIN_OPS.includes(op)) throw new ArgumentError(`unknown reduction op "${String(op)}"; expected one of ${BUILTIN_OPS.join(', ')} or { fn }`);
    if ((op === 'band' || op === 'bor' || op === 'bxor') && isFloat(sample)) {
      throw new ArgumentError(`bitwise op "${op}" needs an integer typed array, got ${sample.constructor.name}`);
    }
    return;
  }
  if (op === null || typeof op !== 'object' || typeof op.fn !== 'function') throw new ArgumentError('a user op is { fn(left, right), commutative? }');
}

export function isCommutative(op: Op): boolean {
  return typeof op === 'string' || op.commutative !== false;
}

/** left = left op right, in place. */
export function applyOp<T extends TypedArray>(op: Op<T>, left: T, right: T): void {
  if (left.length !== right.length) throw new ArgumentError(`reduction operands differ in length (${left.length} vs ${right.length})`);
  if (typeof op !== 'string') {
    op.fn(left, right);
    return;
  }
  if (isBig(left)) bigOp(op, left as unknown as Big, right as unknown as Big);
  else numberOp(op, left as unknown as Num, right as unknown as Num);
}
