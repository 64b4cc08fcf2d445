/** The stream wire format: HELLO, fragments and reassembly, malformed frames, any split of the byte stream. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LengthPrefixDecoder, lengthHeader } from '../../src/wire/length-prefix.js';
import {
  FIRST_HEADER,
  MORE_HEADER,
  Reassembler,
  readFirstHeader,
  decodeHello,
  encodeHello,
  writeFirstHeader,
  writeMoreHeader,
} from '../../src/mp/frame.js';

/** Frames of one message as the stream link writes them (without the length prefix). */
function frames(payload: Uint8Array, frag: number, h = { kind: 1, dtype: 8, ctx: 4, tag: 77 }): Uint8Array[] {
  const out: Uint8Array[] = [];
  const total = payload.byteLength;
  const first = Math.min(total, frag);
  const f = new Uint8Array(FIRST_HEADER + first);
  writeFirstHeader(f, { ...h, total, last: first === total });
  f.set(payload.subarray(0, first), FIRST_HEADER);
  out.push(f);
  for (let off = first; off < total; off += frag) {
    const n = Math.min(frag, total - off);
    const m = new Uint8Array(MORE_HEADER + n);
    writeMoreHeader(m, off + n === total);
    m.set(payload.subarray(off, off + n), MORE_HEADER);
    out.push(m);
  }
  return out;
}

test('a first-fragment header round-trips every field: any context, negative and large tags, totals beyond 2^32', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 0xffff_ffff }),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      (kind, dtype, ctx, tag, total) => {
        const f = new Uint8Array(FIRST_HEADER);
        writeFirstHeader(f, { kind, dtype, ctx, tag, total, last: false });
        assert.deepEqual(readFirstHeader(f), { kind, dtype, ctx, tag, total, last: false });
      },
    ),
  );
});

test('HELLO round trip', () => {
  assert.deepEqual(decodeHello(encodeHello(3, 8, 'job-é')), { rank: 3, size: 8, job: 'job-é' });
  assert.throws(() => decodeHello(new Uint8Array(5)), { name: 'ProtocolError' });
});

test('messages of any size survive any fragment size and any split of the stream', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 1, max: 64 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
      (messages, frag, cuts) => {
        const stream: number[] = [];
        for (const m of messages) for (const f of frames(m, frag)) stream.push(...lengthHeader(f.byteLength), ...f);
        const bytes = Uint8Array.from(stream);
        const dec = new LengthPrefixDecoder(1024);
        const re = new Reassembler(1024);
        const got: Uint8Array[] = [];
        let pos = 0;
        for (let i = 0; pos < bytes.length; i++) {
          const n = cuts[i % cuts.length]!;
          dec.push(bytes.subarray(pos, pos + n));
          pos += n;
          for (let f = dec.next(); f !== undefined; f = dec.next()) {
            const m = re.push(f);
            if (m) {
              assert.deepEqual([m.kind, m.dtype, m.ctx, m.tag], [1, 8, 4, 77]);
              got.push(Uint8Array.from(m.bytes));
            }
          }
        }
        assert.deepEqual(got, messages.map((m) => Uint8Array.from(m)));
      },
    ),
  );
});

test('malformed frames are ProtocolErrors, and a too-large total is refused before allocating', () => {
  const bad = (f: Uint8Array, max = 1024): void => assert.throws(() => new Reassembler(max).push(f), { name: 'ProtocolError' });
  bad(new Uint8Array([9, 0, 0, 0]));
  bad(new Uint8Array(FIRST_HEADER - 1).fill(2));
  const m = new Uint8Array(MORE_HEADER + 3);
  writeMoreHeader(m, true);
  bad(m); // continuation without a first fragment
  const lie = new Uint8Array(FIRST_HEADER + 4);
  writeFirstHeader(lie, { kind: 0, dtype: 0, ctx: 0, tag: 0, total: 10, last: true });
  bad(lie); // says 10 bytes, carries 4
  const huge = new Uint8Array(FIRST_HEADER + 4);
  writeFirstHeader(huge, { kind: 0, dtype: 0, ctx: 0, tag: 0, total: 2 ** 40, last: false });
  assert.throws(() => new Reassembler(1 << 20).push(huge), { name: 'ProtocolError', code: 'EMSGSIZE' });
  // Fragments carrying more than announced.
  const [first] = frames(new Uint8Array(10), 4);
  const re = new Reassembler(1024);
  re.push(first!);
  const over = new Uint8Array(MORE_HEADER + 20);
  writeMoreHeader(over, true);
  assert.throws(() => re.push(over), { name: 'ProtocolError' });
  // A message that ends short.
  const re2 = new Reassembler(1024);
  re2.push(frames(new Uint8Array(10), 4)[0]!);
  const short = new Uint8Array(MORE_HEADER + 2);
  writeMoreHeader(short, true);
  assert.throws(() => re2.push(short), { name: 'ProtocolError' });
});
