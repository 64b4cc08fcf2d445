import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SwitchboardError } from '../../src/errors.js';
import { FrameSplitter } from '../../src/rpc/frame-splitter.js';
import { encodeLengthPrefix, LengthPrefixDecoder } from '../../src/wire/index.js';

function collect(splitter: FrameSplitter, chunks: Uint8Array[]): number[][] {
  const out: number[][] = [];
  for (const c of chunks) splitter.push(c, (buf, start, end) => out.push([...buf.subarray(start, end)]));
  return out;
}

function concat(frames: Uint8Array[]): Uint8Array {
  const parts = frames.map((f) => encodeLengthPrefix(f));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

test('frames fed one byte at a time', () => {
  const frames = [Uint8Array.from([1, 2, 3]), new Uint8Array(0), Uint8Array.from([9])];
  const bytes = concat(frames);
  const s = new FrameSplitter(1000);
  const got = collect(s, [...bytes].map((b) => Uint8Array.of(b)));
  assert.deepEqual(got, frames.map((f) => [...f]));
  assert.equal(s.pending, 0);
});

test('property: any split of the stream gives the same frames as the wire decoder', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
      const bytes = concat(frames);
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const chunks: Uint8Array[] = [];
      let prev = 0;
      for (const p of [...points, bytes.length]) {
        chunks.push(bytes.subarray(prev, p));
        prev = p;
      }
      const s = new FrameSplitter(1000);
      const got = collect(s, chunks);
      const ref = new LengthPrefixDecoder(1000);
      ref.push(bytes);
      const want: number[][] = [];
      for (let f = ref.next(); f !== undefined; f = ref.next()) want.push([...f]);
      assert.deepEqual(got, want);
      assert.equal(s.pending, 0);
    }),
    { numRuns: 500 },
  );
});

test('an oversized length is refused before anything is buffered, even when the header is split', () => {
  const s = new FrameSplitter(10);
  s.push(Uint8Array.from([0, 0]), () => assert.fail('no frame'));
  assert.throws(
    () => s.push(Uint8Array.from([0, 11, 1, 2]), () => assert.fail('no frame')),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'EMSGSIZE',
  );
  assert.throws(
    () => new FrameSplitter(10).push(Uint8Array.from([0xff, 0xff, 0xff, 0xff]), () => undefined),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'EMSGSIZE',
  );
});

test('splitAtFrames cuts a batch between frames only', async () => {
  const { splitAtFrames } = await import('../../src/rpc/links.js');
  const frames = [new Uint8Array(10), new Uint8Array(50), new Uint8Array(5), new Uint8Array(200), new Uint8Array(1)];
  const batch = concat(frames);
  const parts = splitAtFrames(batch, 64);
  assert.deepEqual(
    parts.map((p) => p.length),
    [14, 54 + 9, 204, 5],
  );
  const s = new FrameSplitter(1000);
  assert.deepEqual(collect(s, parts).map((f) => f.length), [10, 50, 5, 200, 1]);
});
