/** Reduction ops by hand, the op checks, and requests. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_OPS, Request, applyOp, type BuiltinOp } from '../../src/mp/index.js';

const cases: [BuiltinOp, number[]][] = [
  ['sum', [7, 1, -1, 0]],
  ['prod', [12, 0, -2, 0]],
  ['min', [3, 0, -2, 0]],
  ['max', [4, 1, 1, 0]],
  ['land', [1, 0, 1, 0]],
  ['lor', [1, 1, 1, 0]],
  ['band', [0, 0, 0, 0]],
  ['bor', [7, 1, -1, 0]],
  ['bxor', [7, 1, -1, 0]],
];

for (const [op, want] of cases) {
  test(`${op} on Int32Array`, () => {
    const a = new Int32Array([3, 0, 1, 0]);
    applyOp(op, a, new Int32Array([4, 1, -2, 0]));
    assert.deepEqual([...a], want);
  });
}

test('every builtin op has a case', () => {
  assert.deepEqual(cases.map(([o]) => o).sort(), [...BUILTIN_OPS].sort());
});

test('integer arrays wrap, BigInt arrays work, NaN wins min/max', () => {
  const u8 = new Uint8Array([250]);
  applyOp('sum', u8, new Uint8Array([10]));
  assert.equal(u8[0], 4);
  const b = new BigInt64Array([5n]);
  applyOp('prod', b, new BigInt64Array([3n]));
  assert.equal(b[0], 15n);
  const f = new Float64Array([1]);
  applyOp('max', f, new Float64Array([NaN]));
  assert.ok(Number.isNaN(f[0]));
});

test('a user op combines left with right in place', () => {
  const a = new Float64Array([1, 2]);
  applyOp({ fn: (l, r) => l.forEach((x, i) => (l[i] = x * 10 + r[i]!)) }, a, new Float64Array([3, 4]));
  assert.deepEqual([...a], [13, 24]);
  assert.throws(() => applyOp('sum', new Int32Array(2), new Int32Array(3)), { code: 'EINVAL' });
});

test('requests: test() does not wait, waitAny gives the first to complete, failures surface', async () => {
  let resolveSlow!: (v: string) => void;
  const slow = new Request(new Promise<string>((r) => (resolveSlow = r)));
  const fast = new Request(Promise.resolve('fast'));
  assert.equal(slow.test(), undefined);
  assert.deepEqual(await Request.waitAny([slow, fast]), { index: 1, value: 'fast' });
  assert.equal(fast.test(), 'fast');
  resolveSlow('slow');
  assert.deepEqual(await Request.waitAll([slow, fast]), ['slow', 'fast']);
  const bad = new Request(Promise.reject(new Error('no')));
  await assert.rejects(bad.wait(), /no/);
  assert.throws(() => bad.test(), /no/);
  await assert.rejects(Request.waitAny([]), { code: 'EINVAL' });
});
