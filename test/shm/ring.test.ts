import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { availableParallelism } from 'node:os';
import {
  RING_HEADER_SIZE,
  RingConsumer,
  RingCorruptError,
  RingProducer,
  createRegion,
  initRing,
  ringBytes,
  ringChannel,
} from '../../src/shm/index.js';
import { SwitchboardError } from '../../src/errors.js';
import { checkMessage, makeMessage } from './fixtures/messages.js';
import { cleanup, corruptAndDrain, spawnChild, startWorker, uniqueName, workerExit } from './helpers.js';

const names: string[] = [];
const fresh = (tag: string): string => {
  const n = uniqueName(tag);
  names.push(n);
  return n;
};
after(() => cleanup(...names));
const code = (c: string) => (e: unknown) => e instanceof SwitchboardError && e.code === c;

function localRing(capacity = 4096, multiProducer = false): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(ringBytes(capacity));
  initRing(sab, 0, { capacity, multiProducer });
  return sab;
}

test('fragmented messages larger than the ring, written async and read async', async () => {
  const sab = localRing(1024);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const sizes = [0, 1, 200, 247, 248, 249, 256, 1000, 1024, 5000, 70_000, 3];
  const sent = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, k) => (k * 13 + i) & 0xff));
  const writing = (async () => {
    for (const m of sent) await p.write(m);
    p.close();
  })();
  const got: Uint8Array[] = [];
  for (;;) {
    const m = await c.read({ timeoutMs: 10_000 });
    if (m === null) break;
    got.push(m);
  }
  await writing;
  assert.equal(got.length, sent.length);
  for (let i = 0; i < sent.length; i++) assert.deepEqual(got[i], sent[i], `message ${i} (${sizes[i]} bytes)`);
});

test('random sizes and batches through a small ring (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(fc.nat({ max: 3000 }), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 8 }), async (batches) => {
      const sab = localRing(512);
      const p = new RingProducer(sab, 0, { wait: 'block' });
      const c = new RingConsumer(sab, 0, { wait: 'block' });
      const sent: Uint8Array[] = [];
      const writing = (async () => {
        for (const b of batches) {
          const msgs = b.map((n) => Uint8Array.from({ length: n }, (_, k) => (k + sent.length) & 0xff));
          sent.push(...msgs);
          await p.writeMany(msgs);
        }
        p.close();
      })();
      const got: Uint8Array[] = [];
      for (let m = await c.read(); m !== null; m = await c.read()) got.push(m);
      await writing;
      c.close();
      assert.deepEqual(got, sent);
    }),
    { numRuns: 25 },
  );
});

test('zero-copy consume(), readInto and batching with cork', () => {
  const sab = localRing(4096);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  p.cork();
  for (let i = 0; i < 10; i++) p.writeSync(Uint8Array.of(i, i));
  assert.equal(c.tryRead(), undefined, 'nothing published while corked');
  p.uncork();
  const seen: number[] = [];
  assert.equal(c.consume((m) => seen.push(m[0] as number), 4), 4);
  const buf = new Uint8Array(2);
  assert.equal(c.tryReadInto(buf), 2);
  assert.equal(buf[0], 4);
  assert.throws(() => c.tryReadInto(new Uint8Array(1)), code('EMSGSIZE'));
  assert.equal(c.consume((m) => seen.push(m[0] as number)), 5);
  assert.deepEqual(seen, [0, 1, 2, 3, 5, 6, 7, 8, 9]);
  p.close();
  assert.equal(c.tryRead(), null, 'end after the producer closed');
});

test('end, EPIPE, timeouts and one consumer / one producer', async () => {
  const sab = localRing(256);
  const c = new RingConsumer(sab, 0, { wait: 'block' });
  assert.throws(() => new RingConsumer(sab), code('EADDRINUSE'));
  assert.equal(c.tryRead(), undefined, 'no producer yet: not the end');
  assert.throws(() => c.readSync({ timeoutMs: 20 }), code('ETIMEDOUT'));
  await assert.rejects(c.read({ timeoutMs: 20 }), code('ETIMEDOUT'));
  const p = new RingProducer(sab, 0, { wait: 'block' });
  assert.throws(() => new RingProducer(sab), code('EADDRINUSE'));
  // fill the ring; the next write waits and times out
  while (p.tryWrite(new Uint8Array(40)));
  assert.throws(() => p.writeSync(new Uint8Array(40), { timeoutMs: 20 }), code('ETIMEDOUT'));
  await assert.rejects(p.write(new Uint8Array(40), { timeoutMs: 20 }), code('ETIMEDOUT'));
  const blocked = p.write(new Uint8Array(40));
  c.close();
  await assert.rejects(blocked, code('EPIPE'));
  assert.throws(() => p.writeSync(new Uint8Array(1)), code('EPIPE'));
  assert.throws(() => c.tryRead(), code('ECLOSED'));
  p.close();
});

test('a fragmented write that times out half-way is dropped by the consumer, not corrupting the stream', async () => {
  const sab = localRing(1024);
  const p = new RingProducer(sab, 0, { wait: 'block' });
  const c = new RingConsumer(sab, 0, { wait: 'block' });
  assert.throws(() => p.writeSync(new Uint8Array(5000).fill(1), { timeoutMs: 20 }), code('ETIMEDOUT'));
  const next = p.write(Uint8Array.of(7, 7, 7));
  assert.deepEqual(await c.read({ timeoutMs: 5000 }), Uint8Array.of(7, 7, 7));
  await next;
  assert.equal(c.abortedMessages, 1);
  // the same with an async write aborted by a signal
  const ac = new AbortController();
  const big = p.write(new Uint8Array(5000).fill(2), { signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(big, code('EABORTED'));
  await p.write(Uint8Array.of(8));
  assert.deepEqual(await c.read({ timeoutMs: 5000 }), Uint8Array.of(8));
  assert.equal(c.abortedMessages, 2);
  p.close();
  assert.equal(await c.read(), null);
});

test('a reader waiting in read() wakes when the producer closes', async () => {
  const sab = localRing(256);
  const c = new RingConsumer(sab, 0, { wait: 'block' });
  const p = new RingProducer(sab, 0, { wait: 'block' });
  const r = c.read();
  setTimeout(() => p.close(), 20);
  assert.equal(await r, null);
});

test('corrupted headers and records are typed errors, never a crash', () => {
  const bad = new SharedArrayBuffer(ringBytes(256));
  assert.throws(() => new RingConsumer(bad), (e) => e instanceof RingCorruptError && e.code === 'EPROTO');
  const sab = localRing(256);
  const h = new Int32Array(sab, 0, RING_HEADER_SIZE / 4);
  Atomics.store(h, 2, 12345);
  assert.throws(() => new RingConsumer(sab), (e) => e instanceof RingCorruptError);
  Atomics.store(h, 2, 1 << 20);
  assert.throws(() => new RingConsumer(sab), (e) => e instanceof RingCorruptError, 'capacity past the memory');
  Atomics.store(h, 2, 256);
  Atomics.store(h, 16, 1000); // tail - head > capacity
  assert.throws(() => new RingConsumer(sab), (e) => e instanceof RingCorruptError);
  Atomics.store(h, 16, 0);
  assert.throws(() => initRing(sab, 0, { capacity: 300 }), code('EINVAL'));
  assert.throws(() => initRing(sab, 4, { capacity: 256 }), code('EINVAL'));

  const corruptions: [string, (d: Int32Array, h: Int32Array) => void][] = [
    ['huge length', (d) => (d[0] = 0x7fffffff)],
    ['length past the published bytes', (d) => (d[0] = 100)],
    ['unknown type', (d) => (d[1] = 99)],
    ['tail moved by an odd amount', (_d, hh) => Atomics.store(hh, 16, 13)],
    ['tail far ahead', (_d, hh) => Atomics.store(hh, 16, 4096)],
    ['continuation without a start', (d) => (d[1] = 3)],
    ['first fragment claiming a huge message', (d) => {
      d[0] = 16;
      d[1] = 2;
      d[2] = 0x7fffffff;
    }],
    ['padding that is not at the end', (d) => (d[1] = 6)],
  ];
  for (const [what, corrupt] of corruptions) {
    const s = localRing(256);
    const p = new RingProducer(s);
    const c = new RingConsumer(s);
    p.writeSync(new Uint8Array(16).fill(1));
    corrupt(new Int32Array(s, RING_HEADER_SIZE, 64), new Int32Array(s, 0, RING_HEADER_SIZE / 4));
    assert.throws(() => c.tryRead(), (e) => e instanceof SwitchboardError && (e.code === 'EPROTO' || e.code === 'EMSGSIZE'), what);
    assert.throws(() => c.tryRead(), (e) => e instanceof SwitchboardError, `${what}: the error sticks`);
  }
});

test('a consumer refuses messages above maxMessageSize', () => {
  const sab = localRing(4096);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab, 0, { maxMessageSize: 100 });
  p.writeSync(new Uint8Array(101));
  assert.throws(() => c.tryRead(), code('EMSGSIZE'));
});

test('SPSC between two processes: 20000 checksummed messages, sync and async producers', async () => {
  for (const mode of ['sync', 'async']) {
    const name = fresh(`ring-${mode}`);
    const r = createRegion(name, ringBytes(1 << 16));
    try {
      initRing(r, 0, { capacity: 1 << 16 });
      const c = new RingConsumer(r, 0);
      const kid = spawnChild(['ring-produce', name, '0', '20000', '100', mode]);
      const buf = new Uint8Array(256);
      let n = 0;
      for (;;) {
        const len = await (async () => {
          const x = c.tryReadInto(buf);
          if (x !== undefined) return x;
          await c.readable({ timeoutMs: 20_000 });
          return c.tryReadInto(buf);
        })();
        if (len === null) break;
        if (len === undefined) continue;
        assert.equal(checkMessage(buf, len), n);
        n++;
      }
      assert.equal(n, 20000);
      assert.deepEqual(await kid.next(), { event: 'produced', count: 20000 });
      await kid.exited;
      c.close();
    } finally {
      r.close();
      r.unlink();
    }
  }
});

for (const wait of ['spin', 'block', 'adaptive'] as const) {
  // fewer for 'spin': two spinners on a shared 2-core machine mostly wait for the scheduler
  const count = wait === 'spin' ? 10_000 : 50_000;
  test(`two workers, wait: '${wait}': ${count} messages through a 4 KiB ring`, async () => {
    const sab = localRing(4096);
    const consumer = startWorker({ role: 'ring-consume', sab, wait });
    const result = new Promise<{ n: number; bad: number }>((resolve) => consumer.once('message', resolve));
    const exits = [workerExit(consumer), workerExit(startWorker({ role: 'ring-produce', sab, count, size: 0, wait }))];
    assert.deepEqual(await result, { n: count, bad: 0 });
    assert.deepEqual(await Promise.all(exits), [0, 0]);
  });
}

test('a producer killed with SIGKILL mid-message: the consumer gets ECONNRESET, not a hang', async () => {
  const name = fresh('ring-kill');
  const r = createRegion(name, ringBytes(4096));
  try {
    initRing(r, 0, { capacity: 4096 });
    const c = new RingConsumer(r, 0, { livenessMs: 20 });
    const kid = spawnChild(['ring-partial', name, '0', '100000']);
    const stuck = await kid.next();
    assert.equal(stuck['event'], 'stuck');
    kid.kill('SIGKILL');
    await kid.exited;
    assert.deepEqual(await c.read({ timeoutMs: 5000 }), Uint8Array.of(1, 2, 3), 'complete messages still arrive');
    await assert.rejects(c.read({ timeoutMs: 5000 }), code('ECONNRESET'));
    await assert.rejects(c.read({ timeoutMs: 5000 }), code('ECONNRESET'), 'and the error sticks');
  } finally {
    r.close();
    r.unlink();
  }
});

test('a consumer that dies gives the producer EPIPE', async () => {
  const sab = localRing(256);
  // Pretend a consumer thread that no longer exists is attached.
  const h = new Int32Array(sab, 0, RING_HEADER_SIZE / 4);
  Atomics.store(h, 6, 0x3ffffe);
  const p = new RingProducer(sab, 0, { livenessMs: 10 });
  while (p.tryWrite(new Uint8Array(40)));
  await assert.rejects(p.write(new Uint8Array(40), { timeoutMs: 5000 }), code('EPIPE'));
  assert.throws(() => p.writeSync(new Uint8Array(40), { timeoutMs: 5000 }), code('EPIPE'));
});

test('MPSC: producers in workers and the main thread, none lost, none interleaved', async () => {
  const capacity = 1 << 14;
  const sab = new SharedArrayBuffer(ringBytes(capacity));
  initRing(sab, 0, { capacity, multiProducer: true });
  const c = new RingConsumer(sab);
  const exits = [0, 1].map(() => workerExit(startWorker({ role: 'ring-produce', sab, count: 3000, size: 3000 })));
  const mine = new RingProducer(sab);
  // The stream ends when every attached producer has left: let all attach first.
  while (c.producers < 3) await new Promise((res) => setTimeout(res, 5));
  const buf = new Uint8Array(3000);
  const perSender = new Map<number, number>();
  let total = 0;
  const writing = (async () => {
    for (let i = 0; i < 500; i++) await mine.write(makeMessage(buf, i, 3000).slice());
    mine.close();
  })();
  for (;;) {
    const m = await c.read({ timeoutMs: 20_000 });
    if (m === null) break;
    assert.equal(m.byteLength, 3000);
    const seq = checkMessage(m);
    total++;
    perSender.set(seq, (perSender.get(seq) ?? 0) + 1);
  }
  await writing;
  assert.deepEqual(await Promise.all(exits), [0, 0]);
  assert.equal(total, 6500);
  assert.equal(perSender.get(0), 3);
  assert.equal(perSender.get(2999), 2);
});

test('random corruption of a live ring never escapes as anything but a SwitchboardError (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: 300 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.tuple(fc.nat({ max: 64 + 63 }), fc.integer()), { minLength: 1, maxLength: 4 }),
      (sizes, pokes) => {
        const sab = localRing(256);
        const p = new RingProducer(sab);
        const c = new RingConsumer(sab);
        // fill with whatever fits (some messages fragmented), read a little, then corrupt
        const pending = sizes.map((n) => p.write(new Uint8Array(n).fill(n & 0xff)).catch(() => undefined));
        void pending;
        c.tryRead();
        corruptAndDrain(sab, pokes, () => {
          const r = c.tryRead();
          return r !== undefined && r !== null;
        });
        c.close();
        p.close();
      },
    ),
    { numRuns: 300 },
  );
});

test('waiting for room many times with one AbortSignal leaves no abort listeners behind', async () => {
  const { EventEmitter } = await import('node:events');
  const sab = localRing(256);
  const c = new RingConsumer(sab, 0, { wait: 'block' });
  const p = new RingProducer(sab, 0, { wait: 'block' });
  const ac = new AbortController();
  for (let i = 0; i < 50; i++) {
    while (p.tryWrite(new Uint8Array(40)));
    const w = p.write(new Uint8Array(40), { signal: ac.signal }); // must wait for room
    await new Promise((r) => setTimeout(r, 1));
    while (c.tryRead() !== undefined);
    await w;
    while (c.tryRead() !== undefined);
  }
  assert.equal(EventEmitter.getEventListeners(ac.signal, 'abort').length, 0);
  p.close();
  c.close();
});

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
};

test('tryWriteParts() and writePartsSync() gather a head and a body into one message', () => {
  const sab = localRing(1024);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const head = Uint8Array.of(1, 2, 3);
  const body = Uint8Array.from({ length: 37 }, (_, i) => 100 + i);
  const cases: [Uint8Array, Uint8Array][] = [
    [head, body],
    [new Uint8Array(0), body],
    [head, new Uint8Array(0)],
    [new Uint8Array(0), new Uint8Array(0)],
    [body.subarray(5, 9), head.subarray(1)],
  ];
  for (const [a, b] of cases) {
    assert.equal(p.tryWriteParts(a, b), true);
    assert.deepEqual(c.tryRead(), concat(a, b));
  }
  const bigHead = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const bigBody = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
  assert.throws(() => p.tryWriteParts(bigHead, bigBody), code('EINVAL'), 'tryWriteParts takes one-record messages only');
  c.close();
  p.close();

  // writePartsSync of messages over one record (256 bytes) but under the ring: fragments, the split in the head and in the body
  const sab2 = localRing(1024);
  const p2 = new RingProducer(sab2);
  const c2 = new RingConsumer(sab2);
  const got: Uint8Array[] = [];
  // 700 bytes: over one record (256), under the ring (1024): fragments, no waiting
  const h2 = bigHead.subarray(0, 200);
  const b2 = bigBody.subarray(0, 500);
  p2.writePartsSync(h2, b2);
  p2.writePartsSync(b2.subarray(0, 50), h2);
  for (let m = c2.tryRead(); m !== undefined && m !== null; m = c2.tryRead()) got.push(m);
  assert.deepEqual(got, [concat(h2, b2), concat(b2.subarray(0, 50), h2)]);
  // full: tryWriteParts says false and writes nothing
  while (p2.tryWriteParts(head, body));
  assert.equal(p2.tryWriteParts(head, body), false);
  assert.throws(() => p2.tryWriteParts(head, [1, 2] as unknown as Uint8Array), code('EINVAL'));
  let n = 0;
  c2.consumeRaw((bytes, off, len) => {
    assert.deepEqual(bytes.subarray(off, off + len), concat(head, body));
    n++;
  });
  assert.ok(n > 5);
  p2.close();
  assert.equal(c2.tryRead(), null);
});

test('writePartsSync() of a message larger than the ring, read by another thread', async () => {
  const sab = localRing(1024);
  const p = new RingProducer(sab, 0, { wait: 'block' });
  const consumer = startWorker({ role: 'ring-collect', sab });
  // (the exit listener goes on now: a worker that answers and ends at once may be gone before the answer is awaited)
  const exited = workerExit(consumer);
  const got = new Promise<Uint8Array[]>((resolve) => consumer.once('message', resolve));
  // block this thread only once the worker is up (starting it needs this thread's loop)
  const h = new Int32Array(sab, 0, RING_HEADER_SIZE / 4);
  while (Atomics.load(h, 6) === 0) await new Promise((r) => setTimeout(r, 5));
  const head = Uint8Array.from({ length: 700 }, (_, i) => i & 0xff);
  const body = Uint8Array.from({ length: 9000 }, (_, i) => (i * 3) & 0xff);
  p.writePartsSync(head, body);
  p.writePartsSync(body.subarray(0, 10), head);
  p.close();
  const messages = await got;
  assert.deepEqual(await exited, 0);
  assert.deepEqual(messages.map((m) => new Uint8Array(m)), [concat(head, body), concat(body.subarray(0, 10), head)]);
});

test('consumeRaw() hands (bytes, offset, length) spans, whole and reassembled, without copying', () => {
  const sab = localRing(1024);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const sizes = [0, 1, 8, 64, 200, 600];
  for (const n of sizes) p.writeSync(new Uint8Array(n).fill(n & 0xff));
  const seen: number[] = [];
  const ring = new Uint8Array(sab, RING_HEADER_SIZE);
  const count = c.consumeRaw((bytes, off, len) => {
    seen.push(len);
    assert.ok(bytes.subarray(off, off + len).every((x) => x === (len & 0xff)));
    if (len <= 200) assert.equal(bytes.buffer, ring.buffer, 'a whole message is read in place');
  }, 5);
  assert.equal(count, 5);
  assert.equal(c.consumeRaw(() => undefined), 1);
  assert.deepEqual(seen, sizes.slice(0, 5));
  assert.equal(c.consumeRaw(() => undefined), 0);
});

test('readInto() copies into any target: aligned or not, reused or not, exact size', () => {
  const sab = localRing(4096);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const backing = new Uint8Array(600);
  for (const n of [0, 1, 3, 4, 5, 63, 64, 65, 255, 256, 257, 500]) {
    const msg = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
    for (const target of [new Uint8Array(n), backing.subarray(1, 1 + n), backing.subarray(4), backing]) {
      p.writeSync(msg);
      target.fill(0xee);
      assert.equal(c.readIntoSync(target), n);
      assert.deepEqual(target.subarray(0, n), msg, `${n} bytes into ${target.byteOffset}+${target.byteLength}`);
      assert.ok(target.subarray(n).every((x) => x === 0xee), 'nothing written past the message');
    }
  }
});

test('a burst written in one tick wakes a sleeping consumer once', async () => {
  const sab = localRing(4096);
  const c = new RingConsumer(sab, 0, { wait: 'block' });
  const p = new RingProducer(sab, 0, { wait: 'block' });
  const first = c.read(); // asleep on the futex now
  const channel = ringChannel(p, new RingConsumer(localRing(256), 0));
  for (let i = 0; i < 50; i++) void channel.write(Uint8Array.of(i));
  await new Promise((r) => setImmediate(r));
  assert.equal(p.wakeups, 1, 'one futex wake for 50 messages');
  assert.deepEqual(await first, Uint8Array.of(0));
  let n = 1;
  while (c.tryRead() !== undefined) n++;
  assert.equal(n, 50);
  assert.equal(c.wakeups, 0);
  await channel.close();
  c.close();
});

test('adaptive waiting stops spinning when spins never pay, and a forced spin still times out', () => {
  const sab = localRing(256);
  const c = new RingConsumer(sab, 0, { wait: 'adaptive', spinMicros: 20 });
  const p = new RingProducer(sab, 0, { wait: 'block' });
  let waits = 0;
  for (let i = 0; i < 60; i++) {
    assert.throws(() => c.readSync({ timeoutMs: 1 }), code('ETIMEDOUT'));
    waits++;
  }
  const { spins, hits } = c.spinStats;
  assert.equal(hits, 0);
  // availableParallelism() may be 1 (then it never spins); else 16 spins turn it off, then rarer probes
  assert.ok(spins <= 16 + 4, `spun ${spins} times in ${waits} waits`);
  const s = new RingConsumer(localRing(256), 0, { wait: 'spin' });
  assert.throws(() => s.readSync({ timeoutMs: 5 }), code('ETIMEDOUT'));
  const b = new RingConsumer(localRing(256), 0, { wait: 'block' });
  assert.throws(() => b.readSync({ timeoutMs: 1 }), code('ETIMEDOUT'));
  assert.equal(b.spinStats.spins, 0);
  s.close();
  b.close();
  p.close();
  c.close();
});

test('MPSC: a corked tryWrite() is published before the producers\' lock is released', () => {
  const sab = localRing(4096, true);
  const c = new RingConsumer(sab);
  const p1 = new RingProducer(sab);
  const p2 = new RingProducer(sab);
  p1.cork();
  assert.equal(p1.tryWrite(Uint8Array.of(1)), true);
  assert.equal(p2.tryWrite(Uint8Array.of(2)), true);
  p1.uncork();
  assert.deepEqual([c.tryRead(), c.tryRead()], [Uint8Array.of(1), Uint8Array.of(2)]);
  p1.close();
  p2.close();
  assert.equal(c.tryRead(), null);
});

test('a producer that detaches while the consumer is announced asleep moves the tail with an ABORT record, which the consumer ignores', () => {
  // A consumer that went to sleep just as the last producer detached may have missed the
  // detach's wake-up (it sleeps on the tail, which a detach did not move): the close now moves it.
  const W_TAIL = 16;
  const W_SLEEPING = 17;
  const target = new Uint8Array(64);
  for (const multiProducer of [false, true]) {
    const sab = localRing(4096, multiProducer);
    const h = new Int32Array(sab, 0, RING_HEADER_SIZE / 4);
    const d = new Int32Array(sab, RING_HEADER_SIZE, 1024);
    const c = new RingConsumer(sab, 0, { wait: 'block' });
    const p = new RingProducer(sab);
    const other = multiProducer ? new RingProducer(sab) : undefined;
    p.writeSync(Uint8Array.of(1, 2, 3));
    assert.equal(c.readIntoSync(target), 3);
    const before = Atomics.load(h, W_TAIL);
    // Nobody asleep: a close writes nothing.
    if (other) {
      other.close();
      assert.equal(Atomics.load(h, W_TAIL), before, `${multiProducer}: no sleeper, no record`);
    }
    // The consumer announced its sleep (as it does right before FUTEX_WAIT, having announced
    // once that it may sleep at all: W.consumerMaySleep, word 11).
    Atomics.store(h, 11, 1);
    Atomics.store(h, W_SLEEPING, 1);
    p.close();
    assert.equal(Atomics.load(h, W_TAIL), before + 8, `${multiProducer}: the tail moved by one record header`);
    assert.equal(d[(before >> 2) + 1], 5, 'an ABORT record');
    assert.equal(Atomics.load(h, W_SLEEPING), 0, 'the sleeper was woken');
    assert.equal(c.readIntoSync(target, { timeoutMs: 5000 }), null, 'then the end');
    assert.equal(c.abortedMessages, 0, 'no message was dropped');
    c.close();
  }
});

test('adaptive waiting counts only real waits: messages already there do not bring the next probe spin closer', () => {
  // (with one CPU, adaptive mode never spins at all: then every count below is 0)
  const spinsOff = availableParallelism() < 2 ? 0 : 17;
  const sab = localRing(4096);
  const c = new RingConsumer(sab, 0, { wait: 'adaptive', spinMicros: 20 });
  const p = new RingProducer(sab, 0, { wait: 'block' });
  const target = new Uint8Array(64);
  // Waits that never pay: spinning turns off after 16, then comes back as rare probes. Stop right after the first probe.
  for (let i = 0; i < 200 && c.spinStats.spins < 17; i++) assert.throws(() => c.readIntoSync(target, { timeoutMs: 1 }), code('ETIMEDOUT'));
  assert.equal(c.spinStats.spins, spinsOff, 'off after 16 spins, then one probe');
  // Thousands of reads that find their message: none is a wait.
  const m = new Uint8Array(32).fill(3);
  for (let i = 0; i < 3000; i++) {
    p.writeSync(m);
    assert.equal(c.readIntoSync(target), 32);
  }
  // So the next wait is not a probe (the next one is due only after 32 more waits).
  assert.throws(() => c.readIntoSync(target, { timeoutMs: 1 }), code('ETIMEDOUT'));
  assert.equal(c.spinStats.spins, spinsOff);
  p.close();
  c.close();
});
