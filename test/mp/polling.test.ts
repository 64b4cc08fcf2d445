/**
 * Polling progress (progress: 'poll'): a receive that finds nothing spins on
 * the links (socket descriptors read directly, rings read synchronously, and
 * small ring messages written synchronously) before it sleeps. These tests
 * prove that spinning changes nothing observable: the same rank programs
 * give the same answers over Unix sockets, TCP and shared-memory rings; a
 * burst of sends followed by a receive does not stall (corked writes get
 * out between spin slices); a peer that dies while we spin fails the
 * receive at once; timeouts still fire; and bad settings are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Communicator, PeerLostError, type CommunicatorOptions } from '../../src/mp/index.js';
import { world as joinWorld, type WorldKind } from './fixtures/world.js';
import { Engine } from '../../src/mp/engine.js';
import { SelfLink } from '../../src/mp/port-link.js';
import { launch, mallocTuning, progressFor } from '../../src/mp/launch.js';
import { collectives, pointToPoint } from './fixtures/ranks.js';
import { expected } from './fixtures/expected.js';

/** Ranks with polling progress and a 100 us spin budget unless told otherwise. */
function world(n: number, kind: WorldKind, dir: string, extra: CommunicatorOptions = {}): Promise<Communicator[]> {
  return joinWorld(n, kind, dir, { progress: 'poll', spinUs: 100, ...extra });
}

for (const kind of ['unix', 'tcp', 'shm'] as const) {
  test(`polling progress over ${kind}: collectives and point to point give the same answers`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbmpp-'));
    try {
      const n = 3;
      const comms = await world(n, kind, dir);
      assert.equal(comms[0]!.engine.spinUs, 100, 'the world communicator set the spin budget');
      const results = await Promise.all(comms.map((c) => collectives(c)));
      for (let r = 0; r < n; r++) {
        const want = expected(n, r);
        for (const key of Object.keys(want)) assert.deepStrictEqual(results[r]![key], want[key], `${kind} rank ${r}: ${key}`);
      }
      const [r0, r1, r2] = await Promise.all(comms.map((c) => pointToPoint(c)));
      assert.deepEqual(r1!['order'], Array.from({ length: 50 }, (_, i) => i));
      assert.deepEqual(r1!['trunc'], { size: 100, truncated: true, stored: 10, source: 0, tag: 1, first: 9 });
      assert.deepEqual(r1!['big'], { size: 5 * 1024 * 1024 + 3, ok: true });
      assert.deepEqual([r0!['sendrecv'], r1!['sendrecv'], r2!['sendrecv']], [2, 0, 1]);
      await Promise.all(comms.map((c) => c.close()));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('polling progress: a burst of sends then a receive, in both directions, loses and reorders nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbmpp-'));
  try {
    for (const kind of ['unix', 'tcp'] as const) {
      const [a, b] = await world(2, kind, dir);
      const rounds = 20;
      const side = async (me: Communicator, peer: number): Promise<number[]> => {
        const got: number[] = [];
        for (let r = 0; r < rounds; r++) {
          // Several writes in one tick cork the socket until the next tick; the receive must let them out.
          const sends = Array.from({ length: 8 }, (_, i) => me.isend(peer, new Uint32Array([r * 8 + i]), { tag: 4 }));
          for (let i = 0; i < 8; i++) got.push((await me.receive<Uint32Array>({ from: peer, tag: 4 })).data[0]!);
          for (const s of sends) await s.wait();
        }
        return got;
      };
      const [ga, gb] = await Promise.all([side(a!, 1), side(b!, 0)]);
      const want = Array.from({ length: rounds * 8 }, (_, i) => i);
      assert.deepEqual(ga, want, `${kind}: rank 0 got every message in order`);
      assert.deepEqual(gb, want, `${kind}: rank 1 got every message in order`);
      await Promise.all([a!.close(), b!.close()]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('poll() over a ring may stop at a message a receive took; called until false it takes the rest, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbmpp-'));
  // (no spinning here: the receives below are posted, and only the test polls)
  const [a, b] = await joinWorld(2, 'shm', dir, { progress: 'yield' });
  try {
    for (let i = 0; i < 4; i++) a!.sendSync(1, Uint8Array.of(i), { tag: 1 });
    const got: number[] = [];
    const receives = [0, 1, 2].map(() => b!.receive<Uint8Array>({ from: 0, tag: 1 }).then((s) => got.push(s.data[0]!)));
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 10; i++) await Promise.resolve();
    };
    const link = b!.engine.link;
    assert.equal(link.poll?.(), true);
    await settle();
    assert.deepEqual(got, [0], 'the first poll stopped at the message the first receive took');
    let polls = 1;
    while (link.poll?.() === true) polls++;
    await Promise.all(receives);
    assert.deepEqual(got, [0, 1, 2], 'every receive got its message, in order');
    assert.equal(polls, 4, 'one poll per message a receive took, then one that queued what no receive wanted');
    assert.equal(b!.engine.peek(b!.ctx, 0, 1, true)?.bytes[0], 3, 'the fourth waits in the queue');
  } finally {
    await Promise.all([a!.close(), b!.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('polling progress: a peer that dies while we spin fails the receive at once; a timeout still fires', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbmpp-'));
  try {
    // A spin budget of 5 s: only a receive that notices things while spinning passes quickly.
    const comms = await world(3, 'unix', dir, { spinUs: 5_000_000 });
    const t0 = performance.now();
    await assert.rejects(comms[0]!.receive({ from: 1, timeoutMs: 30 }), { name: 'TimeoutError', message: /within 30 ms/ });
    assert.ok(performance.now() - t0 < 2_500, 'the 5 s spin budget did not stretch the 30 ms timeout');
    const pending = assert.rejects(comms[0]!.receive({ from: 2 }), (err: unknown) => err instanceof PeerLostError && err.rank === 2 && !err.finalized);
    // Rank 2 "dies" the way a killed process does: its descriptors are closed at once, no goodbye.
    // (A graceful close would need this thread's event loop, which rank 0 is holding while it spins.)
    for (const p of (comms[2]!.engine.link as unknown as { peers: ({ channel: { destroy(): void } } | null)[] }).peers) p?.channel.destroy();
    await pending;
    assert.ok(performance.now() - t0 < 2_500, 'the death was noticed while spinning, not after the 5 s budget');
    await Promise.all([comms[0]!.close(), comms[1]!.close()]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('polling progress settings: bad values are refused; yield means no spinning; the launcher polls only when cores suffice and keeps freed memory for reuse', () => {
  assert.throws(() => new Communicator(new Engine(new SelfLink()), [0], 0, { progress: 'spin' as 'poll' }), { code: 'EINVAL' });
  assert.throws(() => new Communicator(new Engine(new SelfLink()), [0], 0, { progress: 'poll', spinUs: -1 }), { code: 'EINVAL' });
  assert.equal(new Communicator(new Engine(new SelfLink()), [0], 0, { progress: 'yield', spinUs: 500 }).engine.spinUs, 0);
  assert.equal(new Communicator(new Engine(new SelfLink()), [0], 0, { progress: 'poll' }).engine.spinUs, 1000);
  assert.equal(progressFor('auto', 2, 1), 2 <= availableParallelism() ? 'poll' : 'yield');
  assert.equal(progressFor('auto', 1000, 1), 'yield', 'oversubscribed hosts yield');
  assert.equal(progressFor('auto', 1000, 1000), 'poll', 'one rank per host polls');
  assert.equal(progressFor('yield', 1, 1), 'yield');
  assert.equal(progressFor('poll', 1000, 1), 'poll');
  assert.deepEqual(Object.keys(mallocTuning({ PATH: '/bin' })).sort(), ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TOP_PAD_', 'MALLOC_TRIM_THRESHOLD_']);
  assert.deepEqual(mallocTuning({ MALLOC_ARENA_MAX_: '2' }), {}, "the user's own malloc settings win");
});

test('switchboard run refuses a progress mode it does not know before starting any rank', async () => {
  await assert.rejects(launch({ n: 2, app: 'never-started.js', env: { SWITCHBOARD_MP_PROGRESS: 'fast' }, log: () => undefined }), { code: 'EINVAL', message: /SWITCHBOARD_MP_PROGRESS=fast/ });
});
