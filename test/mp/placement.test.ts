/**
 * Placement: a receive posted with a big buffer and a named source gets a
 * big message reassembled straight into that buffer (engine place()), the way
 * MPI matches a message when its header arrives. These tests prove the
 * engine's rules with a link we drive by hand (only such receives are
 * offered; one message per receive; structured values, messages larger than
 * the buffer and ANY-source receives are never placed; a receive that gives
 * up detaches the link from its buffer; a probe posted first still sees the
 * message), and that over every transport, polling or not, big messages
 * arrive whole in the caller's buffer, with truncation still reported.
 * Also placeSmall(): a message that arrives whole while a receive with a
 * buffer spins for it is written straight into that buffer, only when
 * nothing could take it first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, ANY, type Msg } from '../../src/mp/engine.js';
import type { Envelope } from '../../src/mp/link.js';
import { KIND_BYTES, KIND_VALUE } from '../../src/mp/payload.js';
import { world, type WorldKind } from './fixtures/world.js';
import { HandLink } from './fixtures/hand-link.js';

const env = (bytes: Uint8Array, tag = 5, kind = KIND_BYTES): Envelope => ({ ctx: 0, tag, kind, dtype: 0, bytes });

test('engine: only a posted receive with a named source and a big enough buffer is offered, once', async () => {
  const link = new HandLink();
  const engine = new Engine(link);
  const place = (from: number, total: number, kind = KIND_BYTES, tag = 5): Uint8Array | undefined => link.h.place!(from, 0, tag, kind, total, () => assert.fail('not detached'));
  assert.equal(place(1, 5000), undefined, 'nothing posted: nothing offered');

  const anyBuf = new Uint8Array(8192);
  const fromAny = engine.wait(0, ANY, 5, true, {}, anyBuf);
  assert.equal(place(1, 5000), undefined, 'a receive from ANY is never offered (another sender could complete first)');
  link.h.message(1, env(new Uint8Array(5000).fill(1)));
  assert.equal((await fromAny).bytes.byteLength, 5000);

  const small = engine.wait(0, 1, 5, true, {}, new Uint8Array(100));
  assert.equal(place(1, 50), undefined, 'buffers under the placement size are not posted for it');
  link.h.message(1, env(new Uint8Array(50)));
  await small;

  const into = new Uint8Array(8192);
  const probe = engine.wait(0, 1, ANY, false, {});
  const recv = engine.wait(0, 1, 5, true, {}, into);
  assert.equal(place(1, 9000), undefined, 'a message larger than the buffer is not placed (it is truncated the usual way)');
  assert.equal(place(1, 5000, KIND_VALUE), undefined, 'a structured value is not placed');
  assert.equal(place(1, 5000, KIND_BYTES, 6), undefined, 'another tag does not match');
  assert.equal(place(0, 5000), undefined, 'another source does not match');
  const got = place(1, 5000);
  assert.equal(got, into, 'the matching receive offers its buffer');
  assert.equal(place(1, 5000), undefined, 'and only for one message at a time');
  got!.fill(7, 0, 5000);
  link.h.message(1, env(got!.subarray(0, 5000)));
  const m: Msg = await recv;
  assert.equal(m.bytes.buffer, into.buffer, 'the receive gets the message in its own buffer');
  assert.equal(m.bytes.byteLength, 5000);
  assert.equal((await probe).bytes.byteLength, 5000, 'a probe posted first still saw the message');
  assert.equal(engine.placedMessages, 1);
  await engine.close();
});

test('engine: a receive that times out or is aborted while its buffer is being filled detaches the link first', async () => {
  const link = new HandLink();
  const engine = new Engine(link);
  let detached = 0;
  const into = new Uint8Array(8192);
  const recv = engine.wait(0, 1, 5, true, { timeoutMs: 20 }, into);
  assert.equal(link.h.place!(1, 0, 5, KIND_BYTES, 6000, () => detached++), into);
  await assert.rejects(recv, { name: 'TimeoutError' });
  assert.equal(detached, 1, 'the link was told to stop writing into the buffer');
  // The message, completed later in a buffer of the link's own, waits for the next receive.
  link.h.message(1, env(new Uint8Array(6000).fill(3)));
  const next = await engine.wait(0, 1, 5, true, {});
  assert.equal(next.bytes.byteLength, 6000);

  const ac = new AbortController();
  const r2 = engine.wait(0, 1, 5, true, { signal: ac.signal }, into);
  assert.equal(link.h.place!(1, 0, 5, KIND_BYTES, 6000, () => detached++), into);
  ac.abort();
  await assert.rejects(r2, { name: 'AbortError' });
  assert.equal(detached, 2);

  const r3 = engine.wait(0, 1, 5, true, {}, into);
  assert.equal(link.h.place!(1, 0, 5, KIND_BYTES, 6000, () => detached++), into);
  const closing = engine.close();
  await assert.rejects(r3, { code: 'ECLOSED' });
  await closing;
  assert.equal(detached, 3, 'closing the communicator detaches too');
});

for (const kind of ['shm', 'unix', 'tcp'] as WorldKind[]) {
  for (const progress of ['poll', 'yield'] as const) {
    test(`placement over ${kind} (${progress}): big messages arrive whole in the receive's buffer`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sbmpl-'));
      try {
        const [a, b] = await world(2, kind, dir, { progress, spinUs: 200, ringCapacity: 256 * 1024 });
        // Sizes: one ring record, several records (fragmented), several socket fragments.
        const sizes = [5000, 64 * 1024 + 5, 700 * 1024 + 3, 3 * 1024 * 1024 + 1];
        const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
        // Each big message is sent only once its receive is posted (a 'go' from the receiver), so
        // every one of them can be placed; a message that arrives first just waits in the queue.
        const sender = (async () => {
          for (const [i, n] of sizes.entries()) {
            await a!.receive({ from: 1, tag: 8 });
            await a!.send(1, pattern(n, i), { tag: 9 });
          }
          await a!.send(1, pattern(100_000, 7), { tag: 10 });
          await a!.send(1, { a: 'value' }, { tag: 11 });
        })();
        for (const [i, n] of sizes.entries()) {
          const buf = new Uint8Array(n + 100).fill(0xaa);
          const pending = b!.receive<Uint8Array>({ from: 0, tag: 9, buffer: buf });
          await b!.send(0, new Uint8Array(1), { tag: 8 });
          const st = await pending;
          assert.equal(st.size, n);
          assert.equal(st.truncated, false);
          assert.equal(st.data.buffer, buf.buffer, 'the data is a view of the caller buffer');
          assert.ok(buf.subarray(0, n).every((x, k) => x === ((k * 31 + i) & 255)), `${n} bytes intact`);
          assert.ok(buf.subarray(n).every((x) => x === 0xaa), 'nothing written past the message');
        }
        // Bigger than the buffer: truncated, not placed past its end.
        const small = new Uint8Array(50_000);
        const st = await b!.receive<Uint8Array>({ from: 0, tag: 10, buffer: small });
        assert.deepEqual([st.size, st.truncated], [100_000, true]);
        assert.deepEqual(small, pattern(100_000, 7).subarray(0, 50_000));
        // A structured value into a buffer is refused and leaves the buffer alone.
        const vb = new Uint8Array(8192).fill(1);
        await assert.rejects(b!.receive({ from: 0, tag: 11, buffer: vb }), { name: 'ArgumentError' });
        assert.ok(vb.every((x) => x === 1));
        await sender;
        // Rings lend every record, so each big message went in place. Over sockets the 3 MiB one
        // (several fragments) always does; a one-fragment message does when a polling read finds it
        // whole in its read buffer, and is otherwise kept as the frame the decoder made (no copy to save).
        if (kind === 'shm') assert.equal(b!.engine.placedMessages, sizes.length, 'every message reassembled in the receive buffer');
        else assert.ok(b!.engine.placedMessages >= 1, `the fragmented message reassembled in the receive buffer (${b!.engine.placedMessages} placed)`);
        await Promise.all([a!.close(), b!.close()]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

/** A link whose poll() delivers queued messages the way StreamLink does: offered to placeSmall first. */
class PollLink extends HandLink {
  readonly queue: { from: number; env: Envelope }[] = [];
  spinUs = 0;
  placedSmall = 0;
  poll(): boolean {
    const next = this.queue.shift();
    if (next === undefined) return false;
    const { from, env: e } = next;
    const into = this.h.placeSmall?.(from, e.ctx, e.tag, e.kind, e.bytes.length);
    if (into !== undefined) {
      this.placedSmall++;
      into.set(e.bytes);
      this.h.message(from, { ...e, bytes: e.bytes.length === into.length ? into : into.subarray(0, e.bytes.length) });
    } else {
      this.h.message(from, { ...e, bytes: e.bytes.slice() });
    }
    return true;
  }
}

test('engine: a receive spinning with a buffer gets a message that arrives whole written straight into it, only when nothing can take it first', async () => {
  const link = new PollLink();
  const engine = new Engine(link);
  engine.registerContext(0, () => true);
  engine.spinUs = 100_000;
  const bytes = (n: number, salt: number) => Uint8Array.from({ length: n }, (_, i) => (i + salt) & 0xff);
  const take = async (into: Uint8Array | undefined, src = 1, tag = 5): Promise<Msg> => {
    const m = engine.take(0, src, tag, true, {}, into);
    return m instanceof Promise ? await m : m;
  };

  // 8 B into an 8-byte buffer: the buffer itself comes back, holding the message.
  let into = new Uint8Array(8);
  link.queue.push({ from: 1, env: env(bytes(8, 1)) });
  let m = await take(into);
  assert.equal(m.bytes, into);
  assert.deepEqual(into, bytes(8, 1));
  assert.equal(link.placedSmall, 1);

  // 4 B into an 8-byte buffer: small and not the buffer's size, so not placed (a view costs what an array does).
  link.queue.push({ from: 1, env: env(bytes(4, 2)) });
  m = await take(into);
  assert.notEqual(m.bytes.buffer, into.buffer);
  assert.deepEqual(m.bytes, bytes(4, 2));
  assert.equal(link.placedSmall, 1);

  // 100 B into a 200-byte buffer: placed, delivered as a view of its first 100 bytes.
  into = new Uint8Array(200);
  link.queue.push({ from: 1, env: env(bytes(100, 3)) });
  m = await take(into);
  assert.equal(m.bytes.buffer, into.buffer);
  assert.deepEqual(m.bytes, bytes(100, 3));
  assert.equal(link.placedSmall, 2);

  // A structured value, a message from another source first, and a message for another tag first: never placed;
  // the ones that do not match stay queued, in order.
  link.queue.push({ from: 1, env: env(bytes(100, 4), 5, KIND_VALUE) });
  m = await take(into);
  assert.equal(m.kind, KIND_VALUE);
  assert.notEqual(m.bytes.buffer, into.buffer);
  link.queue.push({ from: 0, env: env(bytes(100, 5)) }, { from: 1, env: env(bytes(100, 6), 9) }, { from: 1, env: env(bytes(100, 7)) });
  m = await take(into);
  assert.deepEqual(m.bytes, bytes(100, 7));
  assert.equal(m.bytes.buffer, into.buffer, 'the matching one is placed');
  assert.deepEqual(engine.peek(0, 0, 5, true)?.bytes, bytes(100, 5));
  assert.deepEqual(engine.peek(0, 1, 9, true)?.bytes, bytes(100, 6));
  assert.equal(link.placedSmall, 3);

  // A probe posted first must see the message, so it is not placed (the receive then takes it from the queue).
  // (posted: with no spin budget a probe waits in the event loop at once)
  engine.spinUs = 0;
  const probe = engine.wait(0, 1, 5, false, {});
  engine.spinUs = 100_000;
  link.queue.push({ from: 1, env: env(bytes(100, 8)) });
  m = await take(into);
  assert.deepEqual((await probe).bytes, bytes(100, 8));
  assert.deepEqual(m.bytes, bytes(100, 8));
  assert.notEqual(m.bytes.buffer, into.buffer);
  assert.equal(link.placedSmall, 3);

  // Without a buffer nothing is placed.
  link.queue.push({ from: 1, env: env(bytes(8, 9)) });
  m = await take(undefined);
  assert.deepEqual(m.bytes, bytes(8, 9));
  assert.equal(link.placedSmall, 3);
  await engine.close();
});
