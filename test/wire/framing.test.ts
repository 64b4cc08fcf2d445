/**
 * Framing codecs: length prefix and ONC RPC record marking. Proved: frames
 * come out whole whatever the split points (one byte at a time, random
 * splits), multi-fragment records reassemble, oversized headers are typed
 * errors raised before any buffering, and random bytes only ever give
 * ProtocolError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError, SwitchboardError } from '../../src/errors.js';
import {
  LengthPrefixDecoder,
  LengthPrefixEncoder,
  RecordMarkingDecoder,
  RecordMarkingEncoder,
  encodeLengthPrefix,
  encodeRecord,
  type FrameDecoder,
} from '../../src/wire/index.js';

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}

function feed(dec: FrameDecoder, bytes: Uint8Array, splits: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const s of [...splits.filter((x) => x > 0 && x < bytes.length).sort((a, b) => a - b), bytes.length]) {
    dec.push(bytes.subarray(at, s));
    at = s;
    for (let m = dec.next(); m !== undefined; m = dec.next()) out.push(m);
  }
  return out;
}

const messages = fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 });

test('length prefix: decode(encode(msgs)) == msgs at any split points', () => {
  fc.assert(
    fc.property(messages, fc.array(fc.nat(3000)), (msgs, splits) => {
      const bytes = concat(msgs.map((m) => encodeLengthPrefix(m)));
      const got = feed(new LengthPrefixDecoder(1000), bytes, splits);
      assert.deepEqual(got.map((m) => Buffer.from(m)), msgs.map((m) => Buffer.from(m)));
    }),
  );
});

test('length prefix: one byte at a time', () => {
  const msgs = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(1000, 7)];
  const bytes = concat(msgs.map((m) => encodeLengthPrefix(m)));
  const splits = Array.from({ length: bytes.length }, (_, i) => i);
  assert.deepEqual(feed(new LengthPrefixDecoder(), bytes, splits).map((m) => Buffer.from(m)), msgs);
});

test('length prefix: an oversized header is EMSGSIZE before the body arrives, and the decoder stays failed', () => {
  const dec = new LengthPrefixDecoder(100);
  dec.push(Uint8Array.of(0, 0, 0, 101));
  assert.throws(() => dec.next(), (e: ProtocolError) => e.code === 'EMSGSIZE');
  assert.throws(() => dec.push(Uint8Array.of(1)), ProtocolError);
  assert.throws(() => new LengthPrefixEncoder(10).encode(new Uint8Array(11)), (e: ProtocolError) => e.code === 'EMSGSIZE');
  // a huge declared length allocates nothing: 4 GiB - 1 is refused at once
  const d2 = new LengthPrefixDecoder();
  d2.push(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
  assert.throws(() => d2.next(), (e: ProtocolError) => e.code === 'EMSGSIZE');
});

test('record marking: multi-fragment records reassemble at any split points', () => {
  fc.assert(
    fc.property(messages, fc.integer({ min: 1, max: 64 }), fc.array(fc.nat(3000)), (msgs, frag, splits) => {
      const enc = new RecordMarkingEncoder({ maxFragment: frag });
      const bytes = concat(msgs.flatMap((m) => enc.encode(m)));
      const got = feed(new RecordMarkingDecoder({ maxRecordSize: 1000 }), bytes, splits);
      assert.deepEqual(got.map((m) => Buffer.from(m)), msgs.map((m) => Buffer.from(m)));
    }),
  );
});

test('record marking: the header layout matches RFC 5531 section 11 (and PITFALLS known-good exchange)', () => {
  const rec = encodeRecord(new Uint8Array(0x34));
  assert.deepEqual([...rec.subarray(0, 4)], [0x80, 0x00, 0x00, 0x34]);
  const two = encodeRecord(Uint8Array.of(1, 2, 3), 2);
  assert.deepEqual([...two], [0, 0, 0, 2, 1, 2, 0x80, 0, 0, 1, 3]);
});

test('record marking: a record growing past the maximum across fragments is EMSGSIZE', () => {
  const dec = new RecordMarkingDecoder({ maxRecordSize: 10 });
  dec.push(Uint8Array.of(0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8));
  assert.equal(dec.next(), undefined);
  dec.push(Uint8Array.of(0x80, 0, 0, 8));
  assert.throws(() => dec.next(), (e: ProtocolError) => e.code === 'EMSGSIZE');
});

test('record marking: a flood of empty fragments is EPROTO, not an endless loop', () => {
  const dec = new RecordMarkingDecoder({ maxFragments: 100 });
  dec.push(new Uint8Array(4 * 200));
  assert.throws(() => dec.next(), (e: ProtocolError) => e.code === 'EPROTO');
});

test('random bytes only ever give ProtocolError from either decoder', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      for (const dec of [new LengthPrefixDecoder(512), new RecordMarkingDecoder({ maxRecordSize: 512 })]) {
        try {
          feed(dec, bytes, [7, 100]);
        } catch (e) {
          assert.ok(e instanceof ProtocolError, String(e));
        }
      }
    }),
  );
});

test('record marking: maxFragments is exact (that many fragments pass, one more is EPROTO) and validated', () => {
  const rec = new Uint8Array(10).map((_, i) => i);
  const wire = encodeRecord(rec, 1); // ten fragments of one byte
  const ok = new RecordMarkingDecoder({ maxFragments: 10 });
  ok.push(wire);
  assert.deepEqual(ok.next(), rec);
  const tooMany = new RecordMarkingDecoder({ maxFragments: 9 });
  tooMany.push(wire);
  assert.throws(() => tooMany.next(), (e: ProtocolError) => e.code === 'EPROTO');
  const single = new RecordMarkingDecoder({ maxFragments: 1 });
  single.push(encodeRecord(rec));
  assert.deepEqual(single.next(), rec);
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new RecordMarkingDecoder({ maxFragments: bad }), (e: SwitchboardError) => e.code === 'EINVAL', `maxFragments ${bad}`);
  }
  for (const bad of [-1, 1.5, Number.NaN]) {
    assert.throws(() => new RecordMarkingEncoder({ maxRecordSize: bad }), (e: SwitchboardError) => e.code === 'EINVAL', `maxRecordSize ${bad}`);
  }
});

test('record marking: the decoder refuses a record growing past the maximum before buffering its body', () => {
  const dec = new RecordMarkingDecoder({ maxRecordSize: 100 });
  dec.push(Uint8Array.of(0, 0, 0, 60));
  dec.push(new Uint8Array(60));
  assert.equal(dec.next(), undefined);
  // second fragment header says 60 more: 120 > 100, refused before its body arrives
  dec.push(Uint8Array.of(0x80, 0, 0, 60));
  assert.throws(() => dec.next(), (e: ProtocolError) => e.code === 'EMSGSIZE');
  assert.throws(() => dec.push(Uint8Array.of(1)), ProtocolError, 'stays failed');
});

test('record marking: fragments spanning many chunks are copied once into a plain Uint8Array, whole', () => {
  // 3 fragments of a 70 KiB record fed in chunks of 1000 bytes; the record comes out as one plain Uint8Array.
  const rec = new Uint8Array(70_000).map((_, i) => (i * 13) & 0xff);
  const wire = concat(new RecordMarkingEncoder({ maxFragment: 30_000 }).encode(rec));
  const dec = new RecordMarkingDecoder();
  const got = feed(dec, wire, Array.from({ length: Math.ceil(wire.length / 1000) }, (_, i) => i * 1000));
  assert.equal(got.length, 1);
  assert.equal(Object.getPrototypeOf(got[0]), Uint8Array.prototype);
  assert.equal(Buffer.compare(Buffer.from(got[0] as Uint8Array), Buffer.from(rec)), 0);
  assert.equal(dec.pending, 0);
  // a record inside one chunk is a view of that chunk (no copy)
  const one = encodeRecord(Uint8Array.of(1, 2, 3, 4));
  const d2 = new RecordMarkingDecoder();
  d2.push(one);
  const view = d2.next() as Uint8Array;
  assert.equal(view.buffer, one.buffer);
});

test('length prefix: a message spanning chunks comes out whole, as a plain Uint8Array', () => {
  const msg = new Uint8Array(10_000).map((_, i) => i & 0xff);
  const got = feed(new LengthPrefixDecoder(), encodeLengthPrefix(msg), [5, 4000, 4001, 9000]);
  assert.equal(got.length, 1);
  assert.equal(Object.getPrototypeOf(got[0]), Uint8Array.prototype);
  assert.equal(Buffer.compare(Buffer.from(got[0] as Uint8Array), Buffer.from(msg)), 0);
});
