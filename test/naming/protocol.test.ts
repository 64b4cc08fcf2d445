import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  checkContact,
  checkName,
  encodeFrame,
  parseRequest,
  type Frame,
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
  assert.throws(() => checkContact({ address: 'x', protocol: 'p', metadata: { big: 'y'.repeat(5000) } }), { code: 'ELIMIT', message: /metadata is \d+ bytes/ });
  assert.throws(() => checkContact({ address: 'x', protocol: 'has space' }), { code: 'EINVAL' });
  assert.throws(() => checkContact({ address: '', protocol: 'p' }), { code: 'EINVAL' });
});
