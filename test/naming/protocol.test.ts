import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
  checkContact,
  checkName,
  decodeRecordBody,
  encodeFrame,
  encodeLookupFrame,
  encodeRecordBody,
  encodeRecordFrame,
  frameWithId,
  parseRequest,
  type Frame,
  type NameRecord,
} from '../../src/naming/index.js';
import { ProtocolError } from '../../src/errors.js';

const jsonValue = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const frameArb = fc.record({
  type: fc.constantFrom(FrameType.request, FrameType.response, FrameType.error, FrameType.event),
  id: fc.integer({ min: 0, max: 0xffffffff }),
  payload: jsonValue,
}).map((f) => ({ type: f.type, id: f.id, payload: f.payload }));

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const strip = (f: Frame) => ({ type: f.type, id: f.id, payload: f.payload });

test('frames round-trip whole, byte by byte, and at random split points', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
      const bytes = concat(frames.map((f) => encodeFrame(f)));
      const whole = new FrameDecoder(1 << 20).push(bytes).map(strip);
      assert.deepEqual(whole, frames);
      const d1 = new FrameDecoder(1 << 20);
      const byByte: Frame[] = [];
      for (let i = 0; i < bytes.length; i++) byByte.push(...d1.push(bytes.subarray(i, i + 1)));
      d1.end();
      assert.deepEqual(byByte.map(strip), frames);
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const d2 = new FrameDecoder(1 << 20);
      const split: Frame[] = [];
      let prev = 0;
      for (const p of [...points, bytes.length]) {
        split.push(...d2.push(bytes.subarray(prev, p)));
        prev = p;
      }
      assert.deepEqual(split.map(strip), frames);
      assert.equal(d2.pending, 0);
    }),
  );
});

test('random bytes either decode to frames or throw ProtocolError, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const d = new FrameDecoder(1024);
      try {
        d.push(bytes);
      } catch (err) {
        assert.ok(err instanceof ProtocolError, String(err));
        // A failed decoder stays failed.
        assert.throws(() => d.push(new Uint8Array(1)), ProtocolError);
      }
    }),
    { numRuns: 2000 },
  );
});

test('truncated frames are pending until end(), which throws EPROTO', () => {
  fc.assert(
    fc.property(frameArb, fc.nat(), (f, cut) => {
      const bytes = encodeFrame(f);
      const n = cut % bytes.length;
      const d = new FrameDecoder(1 << 20);
      assert.deepEqual(d.push(bytes.subarray(0, n)), []);
      if (n === 0) d.end();
      else assert.throws(() => d.end(), { code: 'EPROTO' });
    }),
  );
});

function frameBytes(len: number, body: number[]): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, len);
  out.set(body, 4);
  return out;
}
const json = (s: string) => [...new TextEncoder().encode(s)];

const malformed: [string, Uint8Array, string][] = [
  ['length over the maximum (checked before buffering)', frameBytes(0xffffffff, []), 'EMSGSIZE'],
  ['length shorter than the header', frameBytes(3, [0x4e, 1, 1]), 'EPROTO'],
  ['bad magic', frameBytes(10, [0x47, 1, 1, 0, 0, 0, 0, 1, 0x7b, 0x7d]), 'EPROTO'],
  ['HTTP request instead of a frame', new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'), 'EMSGSIZE'],
  ['unsupported version', frameBytes(10, [0x4e, 9, 1, 0, 0, 0, 0, 1, 0x7b, 0x7d]), 'EVERSION'],
  ['unknown frame type', frameBytes(10, [0x4e, 1, 7, 0, 0, 0, 0, 1, 0x7b, 0x7d]), 'EPROTO'],
  ['reserved flags set', frameBytes(10, [0x4e, 1, 1, 4, 0, 0, 0, 1, 0x7b, 0x7d]), 'EPROTO'],
  ['payload not UTF-8', frameBytes(10, [0x4e, 1, 1, 0, 0, 0, 0, 1, 0xff, 0xfe]), 'EPROTO'],
  ['payload not JSON', frameBytes(11, [0x4e, 1, 1, 0, 0, 0, 0, 1, ...json('{x:')]), 'EPROTO'],
];
for (const [what, bytes, code] of malformed) {
  test(`malformed frame: ${what} -> ${code}`, () => {
    assert.throws(() => new FrameDecoder(64 * 1024).push(bytes), (err: unknown) => err instanceof ProtocolError && err.code === code);
  });
}

test('encodeFrame refuses frames over the maximum and bad ids', () => {
  assert.throws(() => encodeFrame({ type: FrameType.request, id: 1, payload: 'x'.repeat(100) }, 50), { code: 'EMSGSIZE' });
  assert.throws(() => encodeFrame({ type: FrameType.request, id: -1, payload: null }), ProtocolError);
  const f = encodeFrame({ type: FrameType.request, id: 7, payload: { op: 'ping' } });
  assert.equal(f[4], 0x4e);
  assert.equal(f[5], PROTOCOL_VERSION);
});

const badRequests: [string, unknown][] = [
  ['not an object', [1, 2]],
  ['unknown op', { op: 'format-disk' }],
  ['register without contact', { op: 'register', name: 'a' }],
  ['name not a string', { op: 'lookup', name: 5 }],
  ['metadata value not a string', { op: 'register', name: 'a', contact: { address: 'x', protocol: 'p', metadata: { k: 1 } } }],
  ['program not u32', { op: 'register', name: 'a', contact: { address: 'x', protocol: 'p', program: -1 } }],
  ['negative ttl', { op: 'register', name: 'a', contact: { address: 'x', protocol: 'p' }, ttlMs: -5 }],
  ['unwatch without id', { op: 'unwatch' }],
  ['prefix not boolean', { op: 'watch', key: 'a', prefix: 'yes' }],
];
for (const [what, payload] of badRequests) {
  test(`malformed request: ${what}`, () => {
    assert.throws(() => parseRequest(payload), { code: 'EPROTO' });
  });
}

test('parseRequest keeps well-formed requests', () => {
  const r = parseRequest({ op: 'register', name: 'svc', contact: { address: 'tcp://127.0.0.1:1', protocol: 'oncrpc', program: 100003, version: 3, metadata: { a: 'b' } }, ttlMs: 5000 });
  assert.deepEqual(r, { op: 'register', name: 'svc', contact: { address: 'tcp://127.0.0.1:1', protocol: 'oncrpc', program: 100003, version: 3, metadata: { a: 'b' } }, ttlMs: 5000 });
  assert.deepEqual(parseRequest({ op: 'list' }), { op: 'list', prefix: '' });
});

test('names and contact info have limits with clear errors', () => {
  assert.throws(() => checkName(''), { code: 'EINVAL' });
  assert.throws(() => checkName('a b'), { code: 'EINVAL', message: /whitespace or a control character/ });
  assert.throws(() => checkName('x'.repeat(256)), { code: 'ELIMIT', message: /256 bytes long; the limit is 255/ });
  checkName('printer/floor-2.tcp@host');
  checkName('é'.repeat(127));
  assert.throws(() => checkContact({ address: 'tcp://h:1', protocol: 'p', metadata: { big: 'y'.repeat(5000) } }), { code: 'ELIMIT', message: /metadata is \d+ bytes/ });
  assert.throws(() => checkContact({ address: 'tcp://h:1', protocol: 'has space' }), { code: 'EINVAL' });
  // an address is scheme:...; the transport's own schemes must parse, others (http:, ipp:) pass as they are
  assert.throws(() => checkContact({ address: 'x', protocol: 'p' }), { code: 'EINVAL', message: /scheme/ });
  assert.throws(() => checkContact({ address: 'tcp://hostonly', protocol: 'p' }), { code: 'EINVAL' });
  assert.throws(() => checkContact({ address: 'tcp://h:70000', protocol: 'p' }), { code: 'EINVAL' });
  checkContact({ address: 'ipp://printer.example/queue', protocol: 'ipp' });
  checkContact({ address: 'tcp://127.0.0.1:finger', protocol: 'finger' });
  assert.throws(() => checkContact({ address: '', protocol: 'p' }), { code: 'EINVAL' });
});

// ---- version 2: binary lookup and record frames

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const safeMs = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const recordArb: fc.Arbitrary<NameRecord> = fc
  .record(
    {
      name: fc.string({ unit: 'grapheme', maxLength: 40 }),
      contact: fc.record(
        {
          address: fc.string({ unit: 'binary', maxLength: 60 }),
          protocol: fc.string({ maxLength: 20 }),
          program: u32,
          version: u32,
          metadata: fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 10 }).filter((k) => k !== '__proto__'), fc.string({ unit: 'binary', maxLength: 20 }), { maxKeys: 5 }),
        },
        { requiredKeys: ['address', 'protocol'] },
      ),
      owner: fc.record({ client: fc.string({ maxLength: 30 }), pid: u32, uid: u32 }, { requiredKeys: ['client'] }),
      since: safeMs,
      leaseExpiresAt: safeMs,
    },
    { requiredKeys: ['name', 'contact', 'owner', 'since'] },
  )
  .map((r) => JSON.parse(JSON.stringify(r)) as NameRecord);

test('record frames round-trip every record, whole and byte by byte', () => {
  fc.assert(
    fc.property(recordArb, u32, (rec, id) => {
      const frame = frameWithId(encodeRecordFrame(rec), id);
      assert.equal(frame[5], 2, 'record frames are version 2');
      assert.equal(frame[6], FrameType.record);
      const [f] = new FrameDecoder(1 << 20).push(frame);
      assert.deepEqual(f, { type: FrameType.record, id, payload: rec, version: 2 });
      const d = new FrameDecoder(1 << 20);
      const byByte: Frame[] = [];
      for (let i = 0; i < frame.length; i++) byByte.push(...d.push(frame.subarray(i, i + 1)));
      assert.deepEqual(byByte.map(strip), [{ type: FrameType.record, id, payload: rec }]);
      assert.deepEqual(decodeRecordBody(encodeRecordBody(rec)), rec);
    }),
  );
});

test('lookup frames carry any name as UTF-8, beside JSON frames in one stream', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), u32, (name, id) => {
      const lookup = encodeLookupFrame(id, name);
      assert.deepEqual([...lookup.subarray(12)], [...new TextEncoder().encode(name)]);
      const ping = encodeFrame({ type: FrameType.request, id: 1, payload: { op: 'ping' }, version: 1 });
      const frames = new FrameDecoder(1 << 20).push(concat([ping, lookup, ping]));
      assert.deepEqual(frames, [
        { type: FrameType.request, id: 1, payload: { op: 'ping' }, version: 1 },
        { type: FrameType.lookup, id, payload: name, version: 2 },
        { type: FrameType.request, id: 1, payload: { op: 'ping' }, version: 1 },
      ]);
    }),
  );
  assert.throws(() => encodeLookupFrame(1, 'x'.repeat(70_000)), { code: 'EMSGSIZE' });
});

test('random bytes as a record body throw ProtocolError (EPROTO) or decode, never anything else', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), recordArb.chain((r) => {
      const b = encodeRecordBody(r);
      return fc.tuple(fc.nat(b.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
        const c = b.slice();
        c[at] = (c[at] as number) ^ x;
        return c;
      });
    })), (bytes) => {
      try {
        decodeRecordBody(bytes);
      } catch (err) {
        assert.ok(err instanceof ProtocolError && err.code === 'EPROTO', String(err));
      }
    }),
    { numRuns: 3000 },
  );
});

const rec0: NameRecord = { name: 'svc', contact: { address: 'tcp://127.0.0.1:1', protocol: 'p', metadata: { a: 'b' } }, owner: { client: 'c', pid: 1 }, since: 5 };
function withBody(version: number, type: number, body: Uint8Array): Uint8Array {
  return concat([frameBytes(8 + body.length, [0x4e, version, type, 0, 0, 0, 0, 1]), body]);
}
function recordWith(patch: (b: Uint8Array) => void): Uint8Array {
  const b = encodeRecordBody(rec0);
  patch(b);
  return withBody(2, FrameType.record, b);
}
const malformedV2: [string, Uint8Array][] = [
  ['lookup frame marked version 1', withBody(1, FrameType.lookup, new TextEncoder().encode('svc'))],
  ['record frame marked version 1', withBody(1, FrameType.record, encodeRecordBody(rec0))],
  ['lookup name not UTF-8', withBody(2, FrameType.lookup, new Uint8Array([0x61, 0xff]))],
  ['record shorter than its fixed part', withBody(2, FrameType.record, new Uint8Array(10))],
  ['record with unknown field bits', recordWith((b) => (b[0] = 0x80))],
  ['record with reserved bytes set', recordWith((b) => (b[2] = 1))],
  ['record with a huge metadata count', recordWith((b) => b.set([0xff, 0xff, 0xff, 0xff], 4))],
  ['record with since beyond 2^53', recordWith((b) => (b[8] = 0xff))],
  ['record with a string longer than the body', recordWith((b) => b.set([0, 1, 0, 0], 20))],
  ['record with bytes after its strings', withBody(2, FrameType.record, concat([encodeRecordBody(rec0), new Uint8Array([0x61])]))],
  ['record string not UTF-8', recordWith((b) => (b[b.length - 1] = 0xff))],
];
for (const [what, bytes] of malformedV2) {
  test(`malformed version-2 frame: ${what} -> EPROTO`, () => {
    assert.throws(() => new FrameDecoder(64 * 1024).push(bytes), (err: unknown) => err instanceof ProtocolError && err.code === 'EPROTO');
  });
}

test('a version-1 decoder refuses version-2 frames with EVERSION', () => {
  assert.throws(() => new FrameDecoder(1024, [1]).push(encodeLookupFrame(1, 'svc')), { code: 'EVERSION' });
  assert.deepEqual(SUPPORTED_VERSIONS, [1, 2]);
  assert.equal(PROTOCOL_VERSION, 2);
});
