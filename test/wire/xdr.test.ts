import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  XdrWriter,
  XdrReader,
  XdrError,
  XdrBoundError,
  XdrValueError,
  xdr,
  encodeXdr,
  decodeXdr,
  type XdrCodec,
} from '../../src/wire/index.js';
import { ProtocolError, ArgumentError } from '../../src/errors.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('RFC 4506 encodings of the basic types', () => {
  const rows: Array<[string, (w: XdrWriter) => void, string]> = [
    ['int -1', (w) => w.int(-1), 'ffffffff'],
    ['int max', (w) => w.int(0x7fffffff), '7fffffff'],
    ['uint', (w) => w.uint(0xdeadbeef), 'deadbeef'],
    ['bool', (w) => w.bool(true).bool(false), '0000000100000000'],
    ['hyper -2', (w) => w.hyper(-2n), 'fffffffffffffffe'],
    ['uhyper', (w) => w.uhyper(0x0102030405060708n), '0102030405060708'],
    ['float 1.5', (w) => w.float(1.5), '3fc00000'],
    ['double 1.5', (w) => w.double(1.5), '3ff8000000000000'],
    ['opaque[3]', (w) => w.opaqueFixed(new Uint8Array([1, 2, 3]), 3), '01020300'],
    ['opaque<>', (w) => w.opaque(new Uint8Array([1, 2, 3, 4, 5])), '000000050102030405000000'],
    ['string alice', (w) => w.string('alice'), '00000005616c696365000000'],
    ['string empty', (w) => w.string(''), '00000000'],
    ['string utf-8', (w) => w.string('é'), '00000002c3a90000'],
  ];
  for (const [name, write, expected] of rows) {
    const w = new XdrWriter(16);
    write(w);
    assert.equal(hex(w.finish()), expected, name);
  }
});

test('writer asserts every value before writing', () => {
  const w = new XdrWriter();
  for (const bad of [() => w.int(2 ** 31), () => w.int(1.5), () => w.uint(-1), () => w.hyper(1n << 63n), () => w.uhyper(-1n),
    () => w.string('abcdef', 5), () => w.opaque(new Uint8Array(3), 2), () => w.opaqueFixed(new Uint8Array(3), 4),
    () => w.bool(1 as unknown as boolean)]) {
    assert.throws(bad, (e: unknown) => e instanceof XdrValueError && e instanceof ArgumentError && e.code === 'EINVAL');
  }
  assert.equal(w.length, 0, 'a failed write leaves nothing behind');
});

test('reader rejects truncated input, oversize lengths and bad bools with typed errors', () => {
  const cases: Array<[string, string, (r: XdrReader) => unknown, string]> = [
    ['short int', '000000', (r) => r.int(), 'EPROTO'],
    ['short hyper', '00000000000000', (r) => r.hyper(), 'EPROTO'],
    ['length past end', '0000000a00', (r) => r.opaque(), 'EPROTO'],
    ['length past bound', '0000000a', (r) => r.string(4), 'EMSGSIZE'],
    ['huge length', 'ffffffff', (r) => r.opaque(), 'EPROTO'],
    ['missing padding', '0000000161', (r) => r.string(), 'EPROTO'],
    ['bool 2', '00000002', (r) => r.bool(), 'EPROTO'],
    ['array past end', '10000000', (r) => xdr.array(xdr.int).decode(r), 'EPROTO'],
    ['array past bound', '00000003', (r) => xdr.array(xdr.int, 2).decode(r), 'EMSGSIZE'],
    ['enum outside', '00000007', (r) => xdr.enum([1, 2]).decode(r), 'EPROTO'],
  ];
  for (const [name, bytes, read, code] of cases) {
    const r = new XdrReader(Buffer.from(bytes, 'hex'));
    assert.throws(() => read(r), (e: unknown) => e instanceof XdrError && e instanceof ProtocolError && e.code === code, name);
  }
  assert.throws(() => xdr.string(4).decode(new XdrReader(Buffer.from('0000000a', 'hex'))), XdrBoundError);
});

test('decodeXdr insists on consuming every byte', () => {
  assert.throws(() => decodeXdr(xdr.int, Buffer.from('0000000100', 'hex')), XdrError);
});

test('opaque decodes as a view of the input, without copying', () => {
  const bytes = encodeXdr(xdr.opaque(), new Uint8Array(64 * 1024).fill(7));
  const out = decodeXdr(xdr.opaque(), bytes);
  assert.equal(out.buffer, bytes.buffer);
  assert.equal(out.length, 65536);
});

/** fast-check builds records without a prototype; decoded structs are plain objects. */
function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

// --- property tests: decode(encode(x)) == x for every type ---------------

interface Node {
  value: number;
  next: Node | null;
}
const nodeCodec: XdrCodec<Node> = xdr.struct<Node>([
  ['value', xdr.int],
  ['next', xdr.optional(xdr.lazy(() => nodeCodec))],
]);
const arbNode: fc.Arbitrary<Node | null> = fc.letrec<{ node: Node | null }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.constant(null), fc.record({ value: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), next: tie('node') })),
})).node as fc.Arbitrary<Node | null>;

const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const uint32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const colors = { RED: 0, GREEN: 1, BLUE: 7 } as const;
const unionCodec = xdr.union<{ kind: number; i?: number; s?: string }>(
  'kind',
  xdr.int,
  [
    { cases: [0], name: 'i', codec: xdr.int },
    { cases: [1, 2], name: 's', codec: xdr.string(10) },
    { cases: [3] },
  ],
  { name: 'h', codec: xdr.hyper },
);

const table: Array<[string, XdrCodec<any>, fc.Arbitrary<unknown>]> = [
  ['int', xdr.int, int32],
  ['unsigned int', xdr.uint, uint32],
  ['enum', xdr.enum(colors), fc.constantFrom(0, 1, 7)],
  ['bool', xdr.bool, fc.boolean()],
  ['hyper', xdr.hyper, fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n })],
  ['unsigned hyper', xdr.uhyper, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })],
  ['float', xdr.float, fc.float()],
  ['double', xdr.double, fc.double()],
  ['opaque[5]', xdr.opaqueFixed(5), fc.uint8Array({ minLength: 5, maxLength: 5 })],
  ['opaque<>', xdr.opaque(), fc.uint8Array({ maxLength: 100 })],
  ['opaque<7>', xdr.opaque(7), fc.uint8Array({ maxLength: 7 })],
  ['string<>', xdr.string(), fc.string({ unit: 'binary', maxLength: 40 })],
  ['string<12>', xdr.string(12), fc.string({ maxLength: 12 })],
  ['int[3]', xdr.fixedArray(xdr.int, 3), fc.array(int32, { minLength: 3, maxLength: 3 })],
  ['hyper<>', xdr.array(xdr.hyper), fc.array(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), { maxLength: 10 })],
  ['string<4><2>', xdr.array(xdr.string(4), 2), fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 })],
  ['int *', xdr.optional(xdr.int), fc.option(int32)],
  ['void', xdr.void, fc.constant(undefined)],
  ['struct', xdr.struct([['a', xdr.int], ['b', xdr.string()], ['c', xdr.array(xdr.bool, 3)], ['d', xdr.double]]),
    fc.record({ a: int32, b: fc.string(), c: fc.array(fc.boolean(), { maxLength: 3 }), d: fc.double() })],
  ['union with default', unionCodec, fc.oneof(
    fc.record({ kind: fc.constant(0), i: int32 }),
    fc.record({ kind: fc.constantFrom(1, 2), s: fc.string({ maxLength: 10 }) }),
    fc.record({ kind: fc.constant(3) }),
    fc.record({ kind: fc.integer({ min: 4, max: 1000 }), h: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }) }),
  )],
  ['bool union', xdr.union('ok', xdr.bool, [{ cases: [true], name: 'v', codec: xdr.uint }, { cases: [false] }]),
    fc.oneof(fc.record({ ok: fc.constant(true), v: uint32 }), fc.record({ ok: fc.constant(false) }))],
  ['linked list (recursive optional)', xdr.optional(nodeCodec), arbNode],
];

for (const [name, codec, arb] of table) {
  test(`roundtrip: ${name}`, () => {
    fc.assert(
      fc.property(arb, (v) => {
        const bytes = encodeXdr(codec, v);
        assert.equal(bytes.length % 4, 0);
        const back = decodeXdr(codec, bytes);
        if (back instanceof Uint8Array) assert.deepEqual(Buffer.from(back), Buffer.from(v as Uint8Array));
        else assert.deepEqual(back, plain(v));
      }),
      { numRuns: 200 },
    );
  });

  test(`random bytes only throw XdrError: ${name}`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeXdr(codec, bytes);
        } catch (err) {
          if (!(err instanceof XdrError)) throw err;
        }
      }),
      { numRuns: 300 },
    );
  });
}

test('a hostile, deeply nested list is a typed error, not a stack overflow', () => {
  const n = 200_000;
  const w = new XdrWriter(n * 8 + 8);
  for (let i = 0; i < n; i++) w.uint(1).int(i);
  w.uint(0);
  assert.throws(() => decodeXdr(xdr.optional(nodeCodec), w.finish()), XdrError);
});

// ---- a writer with referenceBytes: big opaques kept as references, not copied ----

type WriteOp = { k: 'uint'; v: number } | { k: 'opaque'; v: Uint8Array } | { k: 'fixed'; v: Uint8Array } | { k: 'raw'; v: Uint8Array } | { k: 'string'; v: string };
const writeOp: fc.Arbitrary<WriteOp> = fc.oneof(
  fc.record({ k: fc.constant('uint' as const), v: fc.nat() }),
  fc.record({ k: fc.constant('opaque' as const), v: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ k: fc.constant('fixed' as const), v: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ k: fc.constant('raw' as const), v: fc.integer({ min: 0, max: 10 }).chain((n) => fc.uint8Array({ minLength: n * 4, maxLength: n * 4 })) }),
  fc.record({ k: fc.constant('string' as const), v: fc.string({ maxLength: 20 }) }),
);
function apply(w: XdrWriter, ops: readonly WriteOp[]): void {
  for (const op of ops) {
    if (op.k === 'uint') w.uint(op.v);
    else if (op.k === 'opaque') w.opaque(op.v);
    else if (op.k === 'fixed') w.opaqueFixed(op.v, op.v.length);
    else if (op.k === 'raw') w.raw(op.v);
    else w.string(op.v);
  }
}

test('referenced opaques: view, finish, copyTo and the joined segments are the bytes a copying writer makes', () => {
  fc.assert(
    fc.property(fc.array(writeOp, { maxLength: 12 }), fc.integer({ min: 1, max: 24 }), (ops, ref) => {
      const plain = new XdrWriter(16);
      apply(plain, ops);
      const expected = hex(plain.view());
      const w = new XdrWriter(16, { referenceBytes: ref });
      apply(w, ops);
      assert.equal(w.length, plain.length);
      assert.equal(hex(w.view()), expected);
      assert.equal(hex(Buffer.concat(w.segments())), expected);
      const dst = new Uint8Array(w.length + 3);
      w.copyTo(dst, 3);
      assert.equal(hex(dst.subarray(3)), expected);
      // every referenced array is passed on as it is, not copied
      const big = ops.flatMap((o) => (o.k === 'opaque' || o.k === 'fixed' || o.k === 'raw') && o.v.length >= ref ? [o.v] : []);
      assert.equal(w.hasReferences, big.length > 0);
      const segs = new Set(w.segments());
      for (const b of big) assert.ok(segs.has(b), 'a referenced array is one of the segments');
      assert.equal(hex(w.finish()), expected);
      assert.equal(w.length, 0);
      assert.equal(w.hasReferences, false);
    }),
  );
});

test('referenced opaques: setUintAt patches the same word as in a copying writer, and refuses one inside a reference', () => {
  fc.assert(
    fc.property(fc.array(writeOp, { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 16 }), fc.nat(), fc.nat(), (ops, ref, pick, v) => {
      const plain = new XdrWriter(16);
      apply(plain, ops);
      const w = new XdrWriter(16, { referenceBytes: ref });
      apply(w, ops);
      // word offsets that lie in the writer's own bytes (outside every reference)
      const own: number[] = [];
      let at = 0;
      const segs = w.segments();
      const refs = new Set(ops.flatMap((o) => (o.k === 'opaque' || o.k === 'fixed' || o.k === 'raw') && o.v.length >= ref ? [o.v] : []));
      for (const s of segs) {
        if (!refs.has(s)) for (let i = 0; i + 4 <= s.length; i += 4) own.push(at + i);
        else if (s.length >= 4) assert.throws(() => w.setUintAt(at, 1), XdrValueError);
        at += s.length;
      }
      if (own.length === 0) return;
      const offset = own[pick % own.length] as number;
      plain.setUintAt(offset, v);
      w.setUintAt(offset, v);
      assert.equal(hex(w.view()), hex(plain.view()));
    }),
  );
  assert.throws(() => new XdrWriter(16, { referenceBytes: 0 }), XdrValueError);
  assert.throws(() => new XdrWriter(16).uint(1).setUintAt(1, 0), XdrValueError);
});

test('big opaques (copied in pieces) roundtrip at every size around the piece size and at odd offsets', () => {
  for (const n of [2047, 2048, 2049, 4099, 65536, 65537, 200_003]) {
    const data = new Uint8Array(n + 5).map((_, i) => (i * 31 + 7) & 0xff).subarray(3, 3 + n);
    for (const ref of [undefined, 4096]) {
      const w = new XdrWriter(16, { referenceBytes: ref }).uint(1).opaque(data).uint(2);
      const bytes = w.finish();
      const r = new XdrReader(bytes);
      assert.equal(r.uint(), 1);
      assert.equal(hex(r.opaque()), hex(data), `opaque of ${n} bytes`);
      assert.equal(r.uint(), 2);
      r.done();
    }
  }
});
