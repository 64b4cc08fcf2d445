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

function isFloat(a: TypedArray): boolean {
  return a instanceof Float32Array || a instanceof Float64Array;
}

/** One element-wise loop body per op; `a`, `b` are the operands and `i` the index. */
const NUMBER_BODY: Record<BuiltinOp, string> = {
  sum: 'a[i] = a[i] + b[i];',
  prod: 'a[i] = a[i] * b[i];',
  min: 'if (b[i] < a[i] || b[i] !== b[i]) a[i] = b[i];',
  max: 'if (b[i] > a[i] || b[i] !== b[i]) a[i] = b[i];',
  land: 'a[i] = a[i] && b[i] ? 1 : 0;',
  lor: 'a[i] = a[i] || b[i] ? 1 : 0;',
  band: 'a[i] = a[i] & b[i];',
  bor: 'a[i] = a[i] | b[i];',
  bxor: 'a[i] = a[i] ^ b[i];',
};

const BIG_BODY: Record<BuiltinOp, string> = {
  ...NUMBER_BODY,
  min: 'if (b[i] < a[i]) a[i] = b[i];',
  max: 'if (b[i] > a[i]) a[i] = b[i];',
  land: 'a[i] = a[i] && b[i] ? 1n : 0n;',
  lor: 'a[i] = a[i] || b[i] ? 1n : 0n;',
};

type Kernel = (a: TypedArray, b: TypedArray) => void;
const kernels = new Map<string, Kernel>();

/**
 * A loop compiled for one element type and one op, so each stays monomorphic
 * (a single generic loop over every typed array type runs ~10x slower).
 */
function kernel(op: BuiltinOp, a: TypedArray): Kernel {
  const key = `${a.constructor.name}/${op}`;
  let k = kernels.get(key);
  if (k === undefined) {
    const big = a instanceof BigInt64Array || a instanceof BigUint64Array;
    const body = (big ? BIG_BODY : NUMBER_BODY)[op];
    k = new Function('a', 'b', `for (let i = 0, n = a.length; i < n; i++) { ${body} }`) as Kernel;
    kernels.set(key, k);
  }
  return k;
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
  kernel(op, left)(left, right);
}
