/**
 * The consumer's C read path (sb_shm ringRead, used by readIntoSync) and C
 * spinning (spinWhile): the same messages as the JS path, the same bounds
 * checks on shared indices, the fallback from a spin to a futex sleep, and a
 * producer that dies mid-message.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { availableParallelism } from 'node:os';
import { RING_HEADER_SIZE, RingConsumer, RingCorruptError, RingProducer, createRegion, initRing, ringBytes } from '../../src/shm/index.js';
import { hasNativeSpin } from '../../src/shm/native.js';
import { W } from '../../src/shm/ring-layout.js';
import { SwitchboardError } from '../../src/errors.js';
import { checkMessage, makeMessage } from './fixtures/messages.js';
import { cleanup, corruptAndDrain, spawnChild, startWorker, uniqueName, workerExit } from './helpers.js';

const names: string[] = [];
after(() => cleanup(...names));
const code = (c: string) => (e: unknown) => e instanceof SwitchboardError && e.code === c;
const corrupt = (e: unknown): boolean => e instanceof RingCorruptError && e.code === 'EPROTO';
const TAIL = 16;

function localRing(capacity = 4096): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(ringBytes(capacity));
  initRing(sab, 0, { capacity });
  return sab;
}

const message = (n: number, salt: number): Uint8Array => Uint8Array.from({ length: n }, (_, k) => (k * 7 + salt * 13 + n) & 0xff);

/** Write `sizes` in order, reading whenever the ring is full, through one path; returns what was read. */
function roundTrip(nativeWait: boolean, sizes: readonly number[], capacity: number, wait: 'spin' | 'adaptive' | 'block'): Uint8Array[] {
  const sab = localRing(capacity);
  const p = new RingProducer(sab, 0, { wait, nativeWait });
  const c = new RingConsumer(sab, 0, { wait, nativeWait, maxMessageSize: 1 << 20 });
  // a 'block' end never spins, nor an adaptive one that may use only one CPU
  assert.equal(c.nativeWait, nativeWait && (wait === 'spin' || (wait === 'adaptive' && availableParallelism() > 1)));
  const target = new Uint8Array(1 << 16);
  const got: Uint8Array[] = [];
  let i = 0;
  for (const n of sizes) {
    const m = message(n, i++);
    // whole records only on this thread (a fragmented write would wait for a reader)
    while (!p.tryWrite(m)) {
      const len = c.readIntoSync(target, { timeoutMs: 1000 });
      got.push(target.slice(0, len as number));
    }
  }
  p.close();
  for (let len = c.readIntoSync(target, { timeoutMs: 1000 }); len !== null; len = c.readIntoSync(target, { timeoutMs: 1000 })) {
    got.push(target.slice(0, len));
  }
  c.close();
  return got;
}

test('the sb_shm addon that npm ci builds has the C wait and read paths', () => {
  assert.equal(hasNativeSpin(), true, 'spinWhile and ringRead are exported by sb_shm');
});

test('the C read path gives the same messages in the same order as the JS path (wrap, padding, empty messages)', () => {
  const sizes = [0, 1, 7, 8, 9, 55, 56, 57, 63, 64, 100, 120, 0, 3, 48, 40, 33, 24, 119, 1, 2, 0, 90, 70];
  for (const wait of ['spin', 'adaptive', 'block'] as const) {
    const a = roundTrip(true, [...sizes, ...sizes, ...sizes], 512, wait);
    const b = roundTrip(false, [...sizes, ...sizes, ...sizes], 512, wait);
    assert.equal(a.length, sizes.length * 3);
    assert.deepEqual(a, b, wait);
    assert.deepEqual(a, [...sizes, ...sizes, ...sizes].map((n, i) => message(n, i)));
  }
  const sab = localRing(256);
  const c = new RingConsumer(sab, 0, { wait: 'spin' });
  assert.equal(c.nativeWait, true);
  c.close();
});

test('random sizes (property): C and JS read paths agree', () => {
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 200 }), { minLength: 1, maxLength: 60 }), fc.constantFrom(256, 512, 1024), (sizes, cap) => {
      const fits = sizes.map((n) => Math.min(n, cap / 4 - 8));
      assert.deepEqual(roundTrip(true, fits, cap, 'adaptive'), roundTrip(false, fits, cap, 'adaptive'));
    }),
    { numRuns: 100 },
  );
});

test('messages the C path leaves to JS: fragments, a too-small target, maxMessageSize', () => {
  const sab = localRing(4096);
  const p = new RingProducer(sab, 0, { wait: 'spin' });
  const c = new RingConsumer(sab, 0, { wait: 'spin', maxMessageSize: 3000 });
  // 2500 bytes > capacity/4: written as fragments (all fit at once, so no reader is needed)
  const big = message(2500, 1);
  p.writeSync(big);
  const target = new Uint8Array(4096);
  assert.equal(c.readIntoSync(target, { timeoutMs: 5000 }), 2500);
  assert.deepEqual(target.subarray(0, 2500), big);
  p.writeSync(message(40, 2));
  assert.throws(() => c.readIntoSync(new Uint8Array(10)), code('EMSGSIZE'), 'a target too small: EMSGSIZE');
  assert.equal(c.readIntoSync(target), 40, 'and the message is kept');
  assert.deepEqual(target.subarray(0, 40), message(40, 2));
  p.writeSync(new Uint8Array(3001));
  assert.throws(() => c.readIntoSync(target, { timeoutMs: 5000 }), code('EMSGSIZE'), 'above maxMessageSize');
  c.close();
  p.close();
});

test('corrupted indices and records read through the C path are RingCorruptError, and stick', () => {
  const corruptions: [string, (d: Int32Array, h: Int32Array) => void][] = [
    ['tail moved by an odd amount', (_d, h) => Atomics.store(h, TAIL, 13)],
    ['tail far ahead', (_d, h) => Atomics.store(h, TAIL, 4096)],
    ['tail behind the head', (_d, h) => Atomics.store(h, TAIL, -8)],
    ['length past the published bytes', (d) => (d[0] = 100)],
    ['huge length', (d) => (d[0] = 0x7fffffff)],
    ['length just under the ring', (d) => (d[0] = 255)],
    ['unknown type', (d) => (d[1] = 99)],
    ['padding that is not at the end', (d) => (d[1] = 6)],
  ];
  for (const wait of ['spin', 'adaptive'] as const) {
    for (const [what, poke] of corruptions) {
      const s = localRing(256);
      const p = new RingProducer(s, 0, { wait });
      const c = new RingConsumer(s, 0, { wait });
      p.writeSync(new Uint8Array(16).fill(1));
      poke(new Int32Array(s, RING_HEADER_SIZE, 64), new Int32Array(s, 0, RING_HEADER_SIZE / 4));
      const target = new Uint8Array(1024);
      assert.throws(() => c.readIntoSync(target, { timeoutMs: 100 }), corrupt, `${wait}: ${what}`);
      assert.throws(() => c.readIntoSync(target, { timeoutMs: 100 }), corrupt, `${wait}: ${what}: the error sticks`);
      assert.throws(() => c.tryRead(), corrupt, `${wait}: ${what}: for every read`);
      assert.ok(target.every((x) => x === 0), `${wait}: ${what}: nothing copied`);
    }
  }
  // A record that runs past the end of the data area (the head near the end).
  const s = localRing(256);
  const p = new RingProducer(s);
  const c = new RingConsumer(s);
  const target = new Uint8Array(256);
  for (let i = 0; i < 7; i++) {
    p.writeSync(new Uint8Array(24));
    c.readIntoSync(target);
  }
  p.writeSync(new Uint8Array(24)); // at 224; 32 bytes to the end
  new Int32Array(s, RING_HEADER_SIZE, 64)[56] = 40; // 48 bytes: past the end
  Atomics.store(new Int32Array(s, 0, 64), TAIL, 224 + 64);
  assert.throws(() => c.readIntoSync(target), (e) => corrupt(e) && /runs past/.test((e as Error).message));
});

test('a corruption that lands while the consumer spins in C is a RingCorruptError', async () => {
  for (const wait of ['spin', 'adaptive'] as const) {
    for (const value of [12, 1 << 20]) {
      const sab = localRing(4096);
      const c = new RingConsumer(sab, 0, { wait, spinMicros: 1_000_000 });
      const w = startWorker({ role: 'poke-later', sab, index: TAIL, value, delayMs: 30 });
      const exited = workerExit(w);
      assert.throws(() => c.readIntoSync(new Uint8Array(64), { timeoutMs: 10_000 }), corrupt, `${wait}, tail = ${value}`);
      assert.equal(await exited, 0);
      c.close();
    }
  }
});

test('random corruption of a live ring read through the C path is only ever a SwitchboardError (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: 56 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.tuple(fc.nat({ max: 64 + 63 }), fc.integer()), { minLength: 1, maxLength: 4 }),
      (sizes, pokes) => {
        const sab = localRing(256);
        const p = new RingProducer(sab, 0, { wait: 'spin' });
        const c = new RingConsumer(sab, 0, { wait: 'spin' });
        for (const n of sizes) if (!p.tryWrite(new Uint8Array(n).fill(n & 0xff))) break;
        const target = new Uint8Array(512);
        c.readIntoSync(target, { timeoutMs: 0 });
        corruptAndDrain(sab, pokes, () => c.readIntoSync(target, { timeoutMs: 0 }) !== null);
        c.close();
        p.close();
      },
    ),
    { numRuns: 300 },
  );
});

test('a spin in C that gives up falls back to a futex sleep, and is woken by the producer', async () => {
  const sab = localRing(4096);
  // (livenessMs beyond the test: the consumer's one sleep is never cut short by its own liveness
  // check, so the producer's write cannot land in a re-spin after such a wake-up, which a busy
  // machine that preempts the consumer there made possible: then nobody needed waking)
  const c = new RingConsumer(sab, 0, { wait: 'adaptive', spinMicros: 20, livenessMs: 60_000 });
  const w = startWorker({ role: 'ring-produce-later', sab, count: 1, size: 32, delayMs: 150, wait: 'block' });
  const report = new Promise<{ wakeups: number }>((resolve) => w.once('message', resolve));
  const exited = workerExit(w);
  const target = new Uint8Array(64);
  const t0 = performance.now();
  assert.equal(c.readIntoSync(target, { timeoutMs: 10_000 }), 32);
  assert.ok(performance.now() - t0 >= 100, 'the message came after the producer slept');
  assert.equal(checkMessage(target, 32), 0);
  // the producer woke us: we were asleep on the futex, not spinning
  assert.equal((await report).wakeups, 1);
  assert.equal(await exited, 0);
  // (one spin before the sleep, none if availableParallelism() is 1; it never saw the message)
  assert.equal(c.spinStats.hits, 0);
  assert.equal(c.readIntoSync(target, { timeoutMs: 5000 }), null, 'then the end');
  c.close();

  // Nothing comes: TimeoutError in every mode.
  for (const wait of ['spin', 'adaptive', 'block'] as const) {
    const e = new RingConsumer(localRing(256), 0, { wait, spinMicros: 20 });
    assert.throws(() => e.readIntoSync(target, { timeoutMs: 20 }), code('ETIMEDOUT'), wait);
    e.close();
  }

  // Forced spin never sleeps: a late producer never has to wake it.
  const s2 = localRing(4096);
  const spinner = new RingConsumer(s2, 0, { wait: 'spin' });
  const w2 = startWorker({ role: 'ring-produce-later', sab: s2, count: 3, size: 16, delayMs: 50, wait: 'block' });
  const report2 = new Promise<{ wakeups: number }>((resolve) => w2.once('message', resolve));
  const exited2 = workerExit(w2);
  for (let i = 0; i < 3; i++) {
    assert.equal(spinner.readIntoSync(target, { timeoutMs: 10_000 }), 16);
    assert.equal(checkMessage(target, 16), i);
  }
  assert.equal((await report2).wakeups, 0);
  assert.equal(await exited2, 0);
  spinner.close();
});

test('a producer killed with SIGKILL mid-message: a reader blocked in C gets its messages, then ECONNRESET', async () => {
  // (with and without a deadline: readIntoSync(buf) with no options takes its inlined hot path)
  for (const [wait, noTimeout] of [['spin', false], ['adaptive', false], ['block', false], ['spin', true], ['adaptive', true], ['block', true]] as const) {
    const name = uniqueName('ring-native-kill');
    names.push(name);
    const r = createRegion(name, ringBytes(4096));
    try {
      initRing(r, 0, { capacity: 4096 });
      const w = startWorker({ role: 'ring-read-until-error', sab: r.buffer, wait, noTimeout });
      const result = new Promise<Record<string, unknown>>((resolve) => w.once('message', resolve));
      const exited = workerExit(w);
      // the consumer attaches first, so the producer does not see an end before it starts
      const h = new Int32Array(r.buffer, 0, 64);
      while (Atomics.load(h, 6) === 0) await new Promise((res) => setTimeout(res, 2));
      const kid = spawnChild(['ring-die-mid-message', name, '0', '10']);
      assert.deepEqual(await kid.next(), { event: 'dying' });
      assert.equal((await kid.exited).signal, 'SIGKILL');
      // ('block' never spins, so its waits do not spin in C: it sleeps there, which nativeWait does not report)
      assert.deepEqual(await result, { n: 10, bad: 0, code: 'ECONNRESET', name: 'SwitchboardError', native: wait !== 'block' }, `${wait}${noTimeout ? ', no deadline' : ''}`);
      assert.equal(await exited, 0);
    } finally {
      r.close();
      r.unlink();
    }
  }
});

test("a blocking readIntoSync sleeps in ringRead: woken by the producer's write, by its close, or by its deadline", async () => {
  const target = new Uint8Array(64);
  // Woken by a write from another thread: the message, and the producer had a sleeper to wake.
  const sab = localRing(4096);
  const c = new RingConsumer(sab, 0, { wait: 'block', livenessMs: 60_000 });
  const w = startWorker({ role: 'ring-produce-later', sab, count: 2, size: 40, delayMs: 100, wait: 'block' });
  const report = new Promise<{ wakeups: number }>((resolve) => w.once('message', resolve));
  const exited = workerExit(w);
  const t0 = performance.now();
  assert.equal(c.readIntoSync(target, { timeoutMs: 10_000 }), 40);
  assert.ok(performance.now() - t0 >= 50, 'the message came after the producer slept');
  assert.equal(checkMessage(target, 40), 0);
  assert.equal(c.readIntoSync(target, { timeoutMs: 10_000 }), 40);
  assert.equal(checkMessage(target, 40), 1);
  assert.ok((await report).wakeups >= 1, 'the consumer was asleep on the futex');
  // The producer closed (after its writes): the end, not a sleep until the liveness check.
  const t1 = performance.now();
  assert.equal(c.readIntoSync(target, { timeoutMs: 10_000 }), null);
  assert.ok(performance.now() - t1 < 5000);
  assert.equal(await exited, 0);
  c.close();

  // Asleep when the producer closes: woken, and the end.
  const s2 = localRing(4096);
  const c2 = new RingConsumer(s2, 0, { wait: 'block' });
  const w2 = startWorker({ role: 'ring-produce-later', sab: s2, count: 0, delayMs: 100, wait: 'block' });
  const exited2 = workerExit(w2);
  assert.equal(c2.readIntoSync(target, { timeoutMs: 10_000 }), null);
  assert.equal(await exited2, 0);
  c2.close();

  // No options (the inlined hot path once the target is bound, from the third read on): the same
  // messages, sleeping in C between them, then the end when the producer closes.
  for (const wait of ['block', 'adaptive', 'spin'] as const) {
    const s4 = localRing(4096);
    const c4 = new RingConsumer(s4, 0, { wait, livenessMs: 60_000, spinMicros: 20 });
    const w4 = startWorker({ role: 'ring-produce-later', sab: s4, count: 5, size: 24, delayMs: 30, wait: 'block' });
    const exited4 = workerExit(w4);
    for (let i = 0; i < 5; i++) {
      assert.equal(c4.readIntoSync(target), 24, `${wait}: message ${i}`);
      assert.equal(checkMessage(target, 24), i);
    }
    assert.equal(c4.readIntoSync(target), null, `${wait}: the end`);
    assert.equal(await exited4, 0);
    c4.close();
  }

  // Nothing comes: ETIMEDOUT at the deadline, not before it and not at the liveness period's end.
  const c3 = new RingConsumer(localRing(256), 0, { wait: 'block', livenessMs: 60_000 });
  const t2 = performance.now();
  assert.throws(() => c3.readIntoSync(target, { timeoutMs: 80 }), code('ETIMEDOUT'));
  const took = performance.now() - t2;
  assert.ok(took >= 75 && took < 5000, `timed out after ${took.toFixed(0)} ms`);
  c3.close();
});

test('sleep announcements: ends that never sleep leave the may-sleep words at 0; a sleeper announces itself and every write wakes it (JS and native writes)', async () => {
  // Forced spin on both sides, two workers: nobody sleeps, so nobody announced it, and no write
  // ever looked for a sleeper to wake (the producer's fast path skips the fence and the flag).
  const sab = localRing(4096);
  const h = new Int32Array(sab, 0, RING_HEADER_SIZE / 4);
  const wc = startWorker({ role: 'ring-consume', sab, count: 3000, wait: 'spin' });
  const got = new Promise<{ n: number; bad: number }>((resolve) => wc.once('message', resolve));
  const wcExit = workerExit(wc);
  const wp = startWorker({ role: 'ring-produce', sab, count: 3000, size: 40, wait: 'spin' });
  assert.equal(await workerExit(wp), 0);
  assert.deepEqual(await got, { n: 3000, bad: 0 });
  assert.equal(await wcExit, 0);
  assert.equal(Atomics.load(h, W.consumerMaySleep), 0, 'a forced-spin consumer never announced a sleep');
  assert.equal(Atomics.load(h, W.producerMaySleep), 0, 'nor did a forced-spin producer');

  // A blocking consumer announces itself before its first sleep, and each write then wakes it:
  // the first through the JS publish, the rest through the addon's bound write. A missed wake-up
  // would leave it asleep until its liveness period (a minute here) and the read would time out.
  const s2 = localRing(4096);
  const h2 = new Int32Array(s2, 0, RING_HEADER_SIZE / 4);
  const c = new RingConsumer(s2, 0, { wait: 'block', livenessMs: 60_000 });
  const w = startWorker({ role: 'ring-produce-bound-later', sab: s2, count: 6, size: 48, delayMs: 40, wait: 'spin' });
  const report = new Promise<{ wakeups: number }>((resolve) => w.once('message', resolve));
  const exited = workerExit(w);
  const target = new Uint8Array(64);
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    assert.equal(c.readIntoSync(target, { timeoutMs: 10_000 }), 48, `message ${i}`);
    assert.ok(performance.now() - t0 < 5000, `message ${i} came when it was written`);
    assert.equal(checkMessage(target, 48), i);
  }
  assert.equal(Atomics.load(h2, W.consumerMaySleep), 1, 'the consumer announced that it may sleep');
  assert.ok((await report).wakeups >= 5, 'the producer woke it for (nearly) every message');
  assert.equal(await exited, 0);
  c.close();

  // A consumer that takes over from a dead one (thread 0x3ffffe does not exist) clears the dead
  // one's announcement: it sleeps no more, and producers need not look for it.
  const s3 = localRing(256);
  const h3 = new Int32Array(s3, 0, RING_HEADER_SIZE / 4);
  Atomics.store(h3, W.consumerTid, 0x3ffffe);
  Atomics.store(h3, W.consumerMaySleep, 1);
  new RingConsumer(s3, 0).close();
  assert.equal(Atomics.load(h3, W.consumerMaySleep), 0);

  // A ring laid out by a version-1 peer (which would sleep without announcing it) is refused.
  const v1 = localRing(256);
  Atomics.store(new Int32Array(v1, 0, RING_HEADER_SIZE / 4), W.version, 1);
  assert.throws(() => new RingConsumer(v1, 0), code('EVERSION'));
  assert.throws(() => new RingProducer(v1, 0), code('EVERSION'));
});

test('a producer killed with SIGKILL inside a fragmented write: readIntoSync ends with ECONNRESET', async () => {
  const name = uniqueName('ring-native-partial');
  names.push(name);
  const r = createRegion(name, ringBytes(4096));
  try {
    initRing(r, 0, { capacity: 4096 });
    const c = new RingConsumer(r, 0, { wait: 'spin', livenessMs: 20 });
    const kid = spawnChild(['ring-partial', name, '0', '100000']);
    assert.equal((await kid.next())['event'], 'stuck');
    kid.kill('SIGKILL');
    await kid.exited;
    const target = new Uint8Array(1 << 17);
    assert.equal(c.readIntoSync(target, { timeoutMs: 5000 }), 3, 'complete messages still arrive');
    assert.deepEqual(target.subarray(0, 3), Uint8Array.of(1, 2, 3));
    assert.throws(() => c.readIntoSync(target, { timeoutMs: 5000 }), code('ECONNRESET'));
    assert.throws(() => c.readIntoSync(target, { timeoutMs: 5000 }), code('ECONNRESET'), 'and the error sticks');
    c.close();
  } finally {
    r.close();
    r.unlink();
  }
});

test('C spinning between two workers: 20000 checksummed messages of mixed sizes, none lost', async () => {
  for (const wait of ['spin', 'adaptive'] as const) {
    const sab = localRing(4096);
    const consumer = startWorker({ role: 'ring-consume', sab, wait });
    const result = new Promise<{ n: number; bad: number }>((resolve) => consumer.once('message', resolve));
    const exits = [workerExit(consumer), workerExit(startWorker({ role: 'ring-produce', sab, count: 20_000, size: 0, wait }))];
    assert.deepEqual(await result, { n: 20_000, bad: 0 }, wait);
    assert.deepEqual(await Promise.all(exits), [0, 0]);
  }
});

test('bad arguments to the C functions are ArgumentErrors, not crashes', async () => {
  const { addon } = await import('../../src/shm/native.js');
  const a = addon();
  const sab = localRing(256);
  const h = new Int32Array(sab, 0, 64);
  const io = new Int32Array(12);
  const t = new Uint8Array(8);
  const withCap = (cap: number, polls = 1): Int32Array => {
    io.fill(0);
    io[6] = cap;
    io[8] = polls;
    return io;
  };
  assert.throws(() => a.ringRead(h, t, withCap(512)), RangeError, 'capacity larger than the memory');
  assert.throws(() => a.ringRead(h, t, withCap(300)), RangeError, 'capacity not a power of two');
  assert.throws(() => a.ringRead(h, t, withCap(-256)), RangeError, 'negative capacity');
  assert.throws(() => a.ringRead(new Int32Array(sab, 8, 64), t, withCap(256)), RangeError, 'ring past the end');
  assert.throws(() => a.ringRead(new Int32Array(sab, 0, 8), t, withCap(256)), RangeError, 'header view too short');
  assert.throws(() => a.ringRead(new Int32Array(64), t, withCap(256)), TypeError, 'not shared memory');
  assert.throws(() => a.ringRead(h, t, new Int32Array(8)), RangeError, 'io too short');
  assert.throws(() => a.ringRead(h, t, withCap(256, -1)), RangeError, 'negative polls');
  assert.throws(() => a.spinWhile(h, 64, 0, 0, 1, 1), RangeError, 'index out of range');
  assert.equal(a.spinWhile(h, 16, 0, 1000, 1, 0), 3, 'nothing changes: a miss');
  assert.equal(a.spinWhile(h, 16, 5, 1000, 1, 0), 1, 'already different: a hit');
  assert.equal(a.ringRead(h, t, withCap(256)), -1, 'empty');
});

test('a source written again and again is copied with its current bytes (aligned or not, any length)', () => {
  const sab = localRing(4096);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const backing = new Uint8Array(300);
  const target = new Uint8Array(300);
  for (const src of [new Uint8Array(64), backing.subarray(1, 58), backing.subarray(4, 261), backing.subarray(8, 15), new Uint8Array(0)]) {
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < src.byteLength; i++) src[i] = (i * 7 + round * 31) & 0xff;
      p.writeSync(src);
      assert.equal(c.readIntoSync(target), src.byteLength);
      assert.deepEqual(target.subarray(0, src.byteLength), src, `${src.byteOffset}+${src.byteLength}, round ${round}`);
    }
  }
  c.close();
  p.close();
});

test('a head index that is not 8-aligned is a RingCorruptError at attach (the C read would otherwise look past the data)', () => {
  const sab = localRing(4096);
  const h = new Int32Array(sab, 0, RING_HEADER_SIZE / 4);
  // tail - head is a multiple of 8, but head itself points 4 bytes before the end of the data.
  Atomics.store(h, W.head, 4096 - 4);
  Atomics.store(h, W.tail, 4096 + 4);
  assert.throws(() => new RingConsumer(sab, 0), corrupt);
});

test('tryReadSmallSpin: spins in C for a message published meanwhile (never sleeping), gives up after its budget, leaves a big one for the general path', async () => {
  const sab = localRing(4096);
  const c = new RingConsumer(sab, 0, { wait: 'spin' });
  const small = new Uint8Array(64);
  // Nothing comes: -1 once the budget (20 ms) is spent, not before, and not never.
  const t0 = performance.now();
  assert.equal(c.tryReadSmallSpin(small, 20e6), -1);
  const spent = performance.now() - t0;
  assert.ok(spent >= 15, `spun for its budget (${spent.toFixed(1)} ms)`);
  assert.ok(spent < 5000, 'and then gave up');
  assert.equal(c.tryReadSmallSpin(small, 0), -1, 'a zero budget only looks');
  // A message written by another thread while we spin: taken in the same call; nobody had to wake us.
  const w = startWorker({ role: 'ring-produce-later', sab, count: 2, size: 24, delayMs: 50, wait: 'block' });
  const report = new Promise<{ wakeups: number }>((resolve) => w.once('message', resolve));
  const exited = workerExit(w);
  for (let i = 0; i < 2; i++) {
    let k = -1;
    for (let tries = 0; k === -1 && tries < 30; tries++) k = c.tryReadSmallSpin(small, 1e9);
    assert.equal(k, 24);
    assert.equal(checkMessage(small, 24), i);
  }
  assert.equal((await report).wakeups, 0, 'a spinning consumer never sleeps');
  assert.equal(await exited, 0);
  // A message bigger than the target: -2, and it is still there for the general path.
  const p = new RingProducer(sab, 0, { wait: 'spin' });
  const big = message(100, 3);
  p.writeSync(big);
  assert.equal(c.tryReadSmallSpin(small, 1e6), -2);
  assert.deepEqual(c.tryRead(), big);
  p.close();
  c.close();
});
