/**
 * Bound ring calls (sb_shm ringBind/ringReadBound/ringWriteBound): a
 * consumer that reads into the same buffer twice in a row, or a producer
 * that writes the same source twice in a row, binds it once and then reads
 * or writes through a call V8 makes as a fast API call. Proves: the fast
 * path is really taken by optimized code on this build; the messages are the
 * same as on the ordinary paths; a bound buffer that shrank or was detached
 * is never written past its current end; corrupted indices are still caught;
 * slots go back at close(); and with every slot taken, the ends fall back.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { RingConsumer, RingCorruptError, RingProducer, createRegion, initRing, ringBytes } from '../../src/shm/index.js';
import { addon } from '../../src/shm/native.js';
import { W } from '../../src/shm/ring-layout.js';
import { SwitchboardError } from '../../src/errors.js';
import { cleanup, spawnChild, startWorker, uniqueName, workerExit } from './helpers.js';

const names: string[] = [];
after(() => cleanup(...names));

function localRing(capacity = 4096): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(ringBytes(capacity));
  initRing(sab, 0, { capacity });
  return sab;
}

const fill = (b: Uint8Array, salt: number): Uint8Array => {
  for (let k = 0; k < b.length; k++) b[k] = (k * 7 + salt * 13) & 0xff;
  return b;
};

function pair(capacity = 4096): { p: RingProducer; c: RingConsumer; sab: SharedArrayBuffer } {
  const sab = localRing(capacity);
  return { sab, p: new RingProducer(sab, 0, { wait: 'spin' }), c: new RingConsumer(sab, 0, { wait: 'spin', maxMessageSize: 1 << 16 }) };
}

test('this build registers fast API calls, and optimized code takes them', () => {
  const a = addon();
  // (native/fast-call.h declares V8's layout for exactly these: 11.3 in Node 20, 13.6 in Node 24, 14.6 in Node 26)
  const checked = ['11.3.', '13.6.', '14.6.'].some((v) => process.versions.v8.startsWith(v));
  assert.equal(a.fastCalls, process.arch === 'x64' && checked, 'fastCalls matches the V8s the layout was checked against');
  if (!a.fastCalls) return;
  const { p, c } = pair(1 << 16);
  const src = fill(new Uint8Array(64), 1);
  const dst = new Uint8Array(64);
  const before = a.fastCallsTaken();
  for (let i = 0; i < 200_000; i++) {
    p.writeSync(src);
    assert.equal(c.readIntoSync(dst), 64);
  }
  assert.deepEqual(dst, src);
  assert.ok(a.fastCallsTaken() - before > 100_000, `fast calls taken: ${a.fastCallsTaken() - before} of 400000`);
  // Once optimized, both the write and the read take their fast calls, not only one of them: a chunk of
  // 50000 round trips makes (nearly) 100000 (a few chunks allowed: the optimizing compiler runs on
  // another thread, which a loaded machine may start late).
  let best = 0;
  for (let chunk = 0; chunk < 5 && best <= 95_000; chunk++) {
    const from = a.fastCallsTaken();
    for (let i = 0; i < 50_000; i++) {
      p.writeSync(src);
      assert.equal(c.readIntoSync(dst), 64);
    }
    best = Math.max(best, a.fastCallsTaken() - from);
  }
  assert.ok(best > 95_000, `fast calls in the best chunk of 50000 round trips: ${best} (both ends should take them)`);
  p.close();
  c.close();
});

test('bound writes and reads carry the same bytes as the ordinary paths, a changing source included', () => {
  const { p, c } = pair();
  const src = new Uint8Array(100);
  const dst = new Uint8Array(200);
  for (let i = 0; i < 5000; i++) {
    // the same source object each time, new contents each time: nothing stale is sent
    fill(src, i);
    p.writeSync(src);
    assert.equal(c.readIntoSync(dst), 100);
    assert.deepEqual(dst.subarray(0, 100), src, `message ${i}`);
    // now and then a different target or source (the binding moves, the ordinary path fills in)
    if (i % 97 === 0) {
      const other = fill(new Uint8Array(7), i);
      p.writeSync(other);
      const t = new Uint8Array(7);
      assert.equal(c.readIntoSync(t), 7);
      assert.deepEqual(t, other);
    }
  }
  p.close();
  assert.equal(c.readIntoSync(dst), null);
  c.close();
});

test('every length from 0 to 130 crosses both bound paths intact (the inline copy of 16-64 bytes and memmove around it)', () => {
  const { p, c } = pair(1 << 16);
  for (let n = 0; n <= 130; n++) {
    // bound source and target of exactly n bytes, used a few times so that both ends bind them
    const src = new Uint8Array(n);
    const dst = new Uint8Array(n + 8).fill(0xee);
    const view = dst.subarray(0, n);
    for (let k = 0; k < 3; k++) {
      fill(src, n * 3 + k);
      p.writeSync(src);
      assert.equal(c.readIntoSync(view), n);
      assert.deepEqual(view, src, `length ${n}, message ${k}`);
      assert.ok(dst.subarray(n).every((x) => x === 0xee), `length ${n}: nothing written past the target`);
    }
  }
  p.close();
  c.close();
});

test('a message read into, or written from, a view of the ring itself is copied as memmove would (overlapping ranges)', () => {
  const cap = 4096;
  const data = ringBytes(cap) - cap; // the data area's offset: a fresh ring's first record is there, its payload 8 bytes on
  for (const n of [5, 16, 24, 33, 48, 64, 100]) {
    for (const shift of [-8, -4, 4, 8, 12]) {
      // read: the target overlaps the message's own bytes, before or after them
      const a = pair(cap);
      const m = fill(new Uint8Array(n), n + shift);
      a.p.writeSync(m);
      const target = new Uint8Array(a.sab, data + 8 + shift, n);
      assert.equal(a.c.readIntoSync(target), n);
      assert.deepEqual(Uint8Array.from(target), m, `read, length ${n}, shift ${shift}`);
      a.p.close();
      a.c.close();
      if (shift < 0) continue; // (a source before the payload would overlap the record header, written first)
      // write: the same source twice (the second time it is bound, and written by the addon), placed
      // so that the second record's payload lands over it (the first record takes 8 + n rounded up to 8)
      const b = pair(cap);
      const second = data + 8 + ((n + 7) & ~7);
      const source = new Uint8Array(b.sab, second + 8 + shift, n);
      fill(source, n * 5 + shift);
      const expected = Uint8Array.from(source);
      const got = new Uint8Array(n);
      for (const which of ['first', 'second (bound, overlapping)']) {
        b.p.writeSync(source);
        assert.equal(b.c.readIntoSync(got), n);
        assert.deepEqual(got, expected, `write, length ${n}, shift ${shift}, ${which}`);
      }
      b.p.close();
      b.c.close();
    }
  }
});

test('a bound target that shrank is never written past its end: EMSGSIZE, the message kept', () => {
  const { p, c } = pair();
  // (a resizable ArrayBuffer: Node 20 has them; the lib types of our TypeScript target do not)
  type Resizable = ArrayBuffer & { resize(n: number): void };
  const rab = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable)(64, { maxByteLength: 64 });
  const target = new Uint8Array(rab); // length-tracking
  const m = fill(new Uint8Array(64), 3);
  for (let i = 0; i < 3; i++) {
    p.writeSync(m);
    assert.equal(c.readIntoSync(target), 64);
  }
  rab.resize(8);
  p.writeSync(m);
  assert.throws(() => c.readIntoSync(target), (e: unknown) => e instanceof SwitchboardError && e.code === 'EMSGSIZE');
  assert.equal(rab.byteLength, 8);
  const big = new Uint8Array(64);
  assert.equal(c.readIntoSync(big), 64);
  assert.deepEqual(big, m);
  p.close();
  c.close();
});

test('a bound target that was detached is not written: EMSGSIZE, the message kept', () => {
  const { p, c } = pair();
  let target = new Uint8Array(32);
  const m = fill(new Uint8Array(32), 4);
  for (let i = 0; i < 3; i++) {
    p.writeSync(m);
    assert.equal(c.readIntoSync(target), 32);
  }
  const moved = structuredClone(target.buffer, { transfer: [target.buffer] });
  assert.equal(target.length, 0);
  p.writeSync(m);
  assert.throws(() => c.readIntoSync(target), (e: unknown) => e instanceof SwitchboardError && e.code === 'EMSGSIZE');
  assert.deepEqual(new Uint8Array(moved), m, 'the buffer that moved still holds the message before');
  target = new Uint8Array(32);
  assert.equal(c.readIntoSync(target), 32);
  assert.deepEqual(target, m);
  p.close();
  c.close();
});

test('a bound read still rejects impossible indices with RingCorruptError', () => {
  const { sab, p, c } = pair();
  const m = fill(new Uint8Array(16), 5);
  const dst = new Uint8Array(16);
  for (let i = 0; i < 3; i++) {
    p.writeSync(m);
    assert.equal(c.readIntoSync(dst), 16);
  }
  const h = new Int32Array(sab, 0, 64);
  Atomics.store(h, W.tail, (Atomics.load(h, W.tail) + 4096 * 4) | 0);
  assert.throws(() => c.readIntoSync(dst), (e: unknown) => e instanceof RingCorruptError);
  c.close();
  p.close();
});

test('close() gives the slots back; with every slot taken the ends fall back to the ordinary paths', () => {
  const a = addon();
  const base = a.ringBoundCount();
  for (let k = 0; k < 3; k++) {
    const { p, c } = pair();
    const b = new Uint8Array(8);
    for (let i = 0; i < 3; i++) {
      p.writeSync(b);
      c.readIntoSync(b);
    }
    assert.equal(a.ringBoundCount(), base + 2, 'a bound producer and consumer hold one slot each');
    p.close();
    c.close();
    assert.equal(a.ringBoundCount(), base);
  }
  // Take every slot left, then use a pair: it must still work.
  const sab = localRing();
  const h = new Int32Array(sab, 0, 64);
  const io = new Int32Array(12);
  io[6] = 4096;
  const taken: number[] = [];
  for (let s = a.ringBind(h, io); s >= 0; s = a.ringBind(h, io)) taken.push(s);
  try {
    const { p, c } = pair();
    const src = fill(new Uint8Array(40), 6);
    const dst = new Uint8Array(40);
    for (let i = 0; i < 100; i++) {
      p.writeSync(src);
      assert.equal(c.readIntoSync(dst), 40);
      assert.deepEqual(dst, src);
    }
    p.close();
    c.close();
  } finally {
    for (const s of taken) a.ringUnbind(s);
  }
  assert.equal(a.ringBoundCount(), base);
});

test('tryWriteFrom and tryReadSmall: the first n bytes of a reused buffer; a length outside it is an ArgumentError', () => {
  const { p, c } = pair();
  const buf = new Uint8Array(256);
  const small = new Uint8Array(32);
  for (let i = 0; i < 50; i++) {
    const n = i % 40;
    fill(buf, i);
    assert.equal(p.tryWriteFrom(buf, n), true);
    const k = c.tryReadSmall(small);
    if (n > 32) {
      assert.equal(k, -2, 'too big for the buffer: the general path');
      assert.deepEqual(c.tryRead(), buf.subarray(0, n));
    } else {
      assert.equal(k, n);
      assert.deepEqual(small.subarray(0, n), buf.subarray(0, n));
    }
  }
  assert.equal(c.tryReadSmall(small), -1, 'nothing there');
  for (const bad of [-1, 257, Number.NaN, 1.5e9]) {
    assert.throws(() => p.tryWriteFrom(buf, bad), (e: unknown) => e instanceof SwitchboardError && e.code === 'EINVAL', String(bad));
  }
  p.close();
  assert.equal(c.tryReadSmall(small), -1, 'the end looks empty here (no record) ...');
  assert.equal(c.tryRead(), null, '... and tryRead() tells');
  c.close();
});

test('bad slots: the bound calls return RR_BAD_SLOT and never throw; binding a buffer to one throws', () => {
  const a = addon();
  for (const s of [-1, 1 << 30, 4095]) {
    assert.equal(a.ringReadBound(s, 8), -6);
    assert.equal(a.ringWriteBound(s, 8), -6);
  }
  assert.throws(() => a.ringBindBuffer(-1, new Uint8Array(4)), RangeError);
  assert.throws(() => a.ringUnbind(1 << 20), RangeError);
  assert.throws(() => a.ringBind(new Int32Array(4), new Int32Array(12)), /ring/);
});

test('bound paths between two processes: 20000 checksummed messages each way', async () => {
  const name = uniqueName('bound');
  names.push(name);
  const region = createRegion(name, 2 * ringBytes(1 << 16));
  initRing(region, 0, { capacity: 1 << 16 });
  initRing(region, ringBytes(1 << 16), { capacity: 1 << 16 });
  const child = spawnChild(['ring-echo-bound', name, String(ringBytes(1 << 16))]);
  const out = new RingProducer(region.buffer, 0, { wait: 'spin' });
  const back = new RingConsumer(region.buffer, ringBytes(1 << 16), { wait: 'spin' });
  const src = new Uint8Array(200);
  const dst = new Uint8Array(200);
  for (let i = 0; i < 20000; i++) {
    const n = 1 + (i % 200);
    fill(src, i);
    out.writeSync(n === 200 ? src : src.subarray(0, n));
    assert.equal(back.readIntoSync(dst, { timeoutMs: 10_000 }), n);
    for (let k = 0; k < n; k++) if (dst[k] !== ((k * 7 + i * 13 + 1) & 0xff)) assert.fail(`message ${i} byte ${k}`);
  }
  out.close();
  assert.equal(back.readIntoSync(dst, { timeoutMs: 10_000 }), null);
  back.close();
  assert.deepEqual(await child.next(), { event: 'echoed' });
  assert.equal((await child.exited).code, 0);
  region.close();
});

test('a worker that ends without close() gives its slots back; a slot bound by another thread cannot be used or freed', async () => {
  const a = addon();
  const base = a.ringBoundCount();
  const own = localRing();
  const io = new Int32Array(12);
  io[6] = 4096;
  const mine = a.ringBind(new Int32Array(own, 0, 64), io);
  assert.ok(mine >= 0);
  const w = startWorker({ role: 'ring-bind-leave', sab: localRing(), value: mine });
  const exited = workerExit(w);
  const msg = await new Promise<{ bound: number; foreign: string }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    exited.then((code) => reject(new Error(`the worker exited with code ${code} before answering`)), reject);
  });
  assert.equal(await exited, 0);
  assert.equal(msg.bound, base + 3, 'the worker held two slots beside ours');
  assert.match(msg.foreign, /another thread/);
  assert.equal(a.ringBoundCount(), base + 1, "the worker's slots went back when it ended");
  a.ringUnbind(mine);
  assert.equal(a.ringBoundCount(), base);
});
