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

test('placement: a message is reassembled straight into the buffer Place lends, and detach() moves it to one of its own', () => {
  const payload = Uint8Array.from({ length: 1000 }, (_, i) => i & 255);
  // Whole in several frames, into a lent buffer bigger than the message.
  const lent = new Uint8Array(1200).fill(0xee);
  let asked = 0;
  const re = new Reassembler(4096, undefined, (h) => {
    asked++;
    assert.equal(h.total, 1000, 'Place learns the total from the first frame');
    return lent;
  });
  let m;
  for (const f of frames(payload, 300)) m = re.push(f);
  assert.equal(asked, 1, 'Place is asked once per message');
  assert.ok(m !== undefined);
  assert.equal(m.bytes.buffer, lent.buffer, 'the message is a view of the lent buffer');
  assert.equal(m.bytes.byteOffset, lent.byteOffset);
  assert.deepEqual(m.bytes, payload);
  assert.equal(lent[1000], 0xee, 'bytes past the message are not touched');

  // detach() half-way: the lent buffer keeps what it had, the rest goes to a buffer of its own.
  const lent2 = new Uint8Array(1000);
  const re2 = new Reassembler(4096, undefined, () => lent2);
  const fs = frames(payload, 300);
  re2.push(fs[0]!);
  re2.push(fs[1]!);
  re2.detach();
  const snapshot = Uint8Array.from(lent2);
  let m2;
  for (const f of fs.slice(2)) m2 = re2.push(f);
  assert.ok(m2 !== undefined);
  assert.notEqual(m2.bytes.buffer, lent2.buffer, 'after detach the message has its own buffer');
  assert.deepEqual(m2.bytes, payload, 'and it is whole: what was in the lent buffer moved over');
  assert.deepEqual(lent2, snapshot, 'nothing was written into the lent buffer after detach');

  // Borrowed single-frame messages (a ring's view) are copied into the lent buffer; sockets' frames are kept as they are.
  const one = frames(payload, 4096)[0]!;
  const lent3 = new Uint8Array(1000);
  const m3 = new Reassembler(4096, undefined, () => lent3).push(one, 0, true);
  assert.equal(m3?.bytes, lent3, 'borrowed: copied into the lent buffer');
  const m4 = new Reassembler(4096, undefined, () => new Uint8Array(1000)).push(one, 0, false);
  assert.equal(m4?.bytes.buffer, one.buffer, 'not borrowed: the frame itself, no copy');
  // Place may decline: then the reassembler allocates as before.
  const m5 = new Reassembler(4096, undefined, () => undefined).push(one, 0, true);
  assert.deepEqual(m5?.bytes, payload);
});

test('streamed frames: a body written into bodyTarget() piece by piece gives the same message as push(), and bad headers are refused', () => {
  const payload = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 255);
  const lent = new Uint8Array(6000);
  const re = new Reassembler(1 << 20, undefined, () => lent);
  let m;
  for (const f of frames(payload, 2000)) {
    const hdr = f[0] === 3 ? MORE_HEADER : FIRST_HEADER;
    re.beginFrame(f, 0, f.byteLength - hdr);
    assert.equal(re.streaming, true);
    // The body arrives in uneven pieces, as reads of a socket do.
    for (let at = hdr; at < f.byteLength; ) {
      const k = Math.min(333, f.byteLength - at);
      re.bodyTarget().set(f.subarray(at, at + k));
      at += k;
      m = re.advance(k);
    }
    assert.equal(re.streaming, false);
  }
  assert.ok(m !== undefined);
  assert.equal(m.bytes.buffer, lent.buffer, 'placed into the lent buffer');
  assert.deepEqual(m.bytes, payload);

  // A detach in the middle of a streamed body: the rest goes to a buffer of the reassembler's own.
  const lent2 = new Uint8Array(5000);
  const re2 = new Reassembler(1 << 20, undefined, () => lent2);
  const [one] = frames(payload, 8000);
  re2.beginFrame(one!, 0, payload.byteLength);
  re2.bodyTarget().set(payload.subarray(0, 1000));
  re2.advance(1000);
  re2.detach();
  re2.bodyTarget().set(payload.subarray(1000));
  const m2 = re2.advance(4000);
  assert.ok(m2 !== undefined);
  assert.notEqual(m2.bytes.buffer, lent2.buffer);
  assert.deepEqual(m2.bytes, payload);
  assert.ok(lent2.subarray(1000).every((x) => x === 0), 'nothing written into the lent buffer after detach');

  // Refused: a continuation with no message, a length that disagrees with the header, an unknown type, too long a body.
  assert.throws(() => new Reassembler(1024).beginFrame(frames(payload, 2000)[1]!, 0, 2000), { name: 'ProtocolError' });
  assert.throws(() => new Reassembler(1 << 20).beginFrame(one!, 0, 10), { name: 'ProtocolError' });
  assert.throws(() => new Reassembler(1 << 20).beginFrame(new Uint8Array(40).fill(9), 0, 16), { name: 'ProtocolError' });
  assert.throws(() => new Reassembler(1024).beginFrame(one!, 0, payload.byteLength), { name: 'ProtocolError', code: 'EMSGSIZE' });
  const re3 = new Reassembler(1 << 20);
  re3.beginFrame(one!, 0, payload.byteLength);
  assert.throws(() => re3.advance(payload.byteLength + 1), { name: 'ProtocolError' });
});

test('borrowed messages are copied out to memory of their own: kept ones survive later messages and frame reuse', () => {
  const re = new Reassembler(1 << 20);
  const frame = new Uint8Array(FIRST_HEADER + 20000);
  const kept: { bytes: Uint8Array; salt: number }[] = [];
  // sizes on both sides of the carving limits (64, 8 KiB) and enough of them to use several slabs
  const sizes = [0, 1, 64, 65, 100, 1024, 4096, 8191, 8192, 8193, 12000];
  for (let i = 0; i < 400; i++) {
    const n = sizes[i % sizes.length]!;
    writeFirstHeader(frame, { kind: 0, dtype: 0, ctx: 2, tag: i, total: n, last: true });
    for (let k = 0; k < n; k++) frame[FIRST_HEADER + k] = (k + i * 31) & 0xff;
    const m = re.push(frame, 0, true, FIRST_HEADER + n);
    assert.ok(m !== undefined);
    assert.equal(m.bytes.length, n);
    assert.notEqual(m.bytes.buffer, frame.buffer, 'not a view of the borrowed frame');
    kept.push({ bytes: m.bytes, salt: i });
    frame.fill(0xee); // the lender reuses its memory
  }
  for (const { bytes, salt } of kept) {
    for (let k = 0; k < bytes.length; k++) if (bytes[k] !== ((k + salt * 31) & 0xff)) assert.fail(`message ${salt} byte ${k}`);
  }
});
