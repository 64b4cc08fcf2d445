/**
 * The same semantics over Unix sockets and TCP loopback: N ranks joined
 * through a directory, run concurrently in this one thread (each rank is
 * just a communicator), then the same rank programs as the thread tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PeerLostError } from '../../src/mp/index.js';
import { world } from './fixtures/world.js';
import { collectives, pointToPoint } from './fixtures/ranks.js';
import { expected } from './fixtures/expected.js';

for (const transport of ['unix', 'tcp'] as const) {
  test(`collectives over ${transport} sockets (3 and 4 ranks)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbmp-'));
    try {
      for (const n of [3, 4]) {
        const comms = await world(n, transport, dir);
        assert.equal(comms[0]!.transport, n > 1 ? transport : 'self');
        const results = await Promise.all(comms.map((c) => collectives(c)));
        for (let r = 0; r < n; r++) {
          const want = expected(n, r);
          for (const key of Object.keys(want)) assert.deepStrictEqual(results[r]![key], want[key], `${transport} rank ${r} of ${n}: ${key}`);
        }
        await Promise.all(comms.map((c) => c.close()));
      }
      assert.deepEqual(readdirSync(join(dir, 'names')), [], 'every rank withdrew its name');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`point to point over ${transport} sockets: order, truncation, fragmentation, probes`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbmp-'));
    try {
      const comms = await world(3, transport, dir);
      const [r0, r1, r2] = await Promise.all(comms.map((c) => pointToPoint(c)));
      assert.deepEqual(r1!['order'], Array.from({ length: 50 }, (_, i) => i));
      assert.equal(r1!['tag8'], 'tag 8 first');
      assert.deepEqual(r1!['trunc'], { size: 100, truncated: true, stored: 10, source: 0, tag: 1, first: 9 });
      assert.deepEqual(r1!['big'], { size: 5 * 1024 * 1024 + 3, ok: true }, 'a 5 MiB message crosses in 1 MiB fragments');
      assert.deepEqual(r1!['typed'], { ctor: 'Float64Array', values: [1.5, -2.25] });
      assert.deepEqual(r1!['probe'], { source: 0, tag: 5, size: 66, kind: 'typed' });
      assert.equal(r0!['waitAnyIndex'], 1);
      assert.deepEqual([r0!['sendrecv'], r1!['sendrecv'], r2!['sendrecv']], [2, 0, 1]);
      await Promise.all(comms.map((c) => c.close()));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a rank whose connections die fails the others pending receives (unix)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbmp-'));
  try {
    const comms = await world(3, 'unix', dir);
    const pending = comms[0]!.receive({ from: 2 });
    const anySource = comms[1]!.receive();
    // Rank 2 "dies": its link is torn down without a goodbye.
    await (comms[2]!.engine.link as { close(): Promise<void> }).close();
    for (const p of [pending, anySource]) {
      await assert.rejects(p, (err: unknown) => err instanceof PeerLostError && err.rank === 2 && err.code === 'ECONNRESET' && !err.finalized);
    }
    await assert.rejects(comms[0]!.send(2, 'x'), PeerLostError);
    // An orderly close is not a death: receives from that rank fail as finalized, ANY keeps waiting.
    const fromOne = comms[0]!.receive({ from: 1 });
    await comms[1]!.close();
    await assert.rejects(fromOne, (err: unknown) => err instanceof PeerLostError && err.finalized);
    await comms[0]!.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a message over the receiver maximum is refused at the sender', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbmp-'));
  try {
    const comms = await world(2, 'tcp', dir, { maxMessageSize: 4096 });
    await assert.rejects(comms[0]!.send(1, new Uint8Array(4097)), { name: 'MessageTooLargeError', code: 'EMSGSIZE' });
    await comms[0]!.send(1, new Uint8Array(4096));
    assert.equal((await comms[1]!.receive()).size, 4096);
    await Promise.all(comms.map((c) => c.close()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('collectives and point to point over shared-memory rings', async () => {
  const shm = await import('../../src/shm/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'sbmp-'));
  const job = randomBytes(4).toString('hex');
  try {
    const n = 3;
    const comms = await world(n, 'shm', dir, { job });
    assert.equal(comms[0]!.transport, 'ring');
    const results = await Promise.all(comms.map((c) => collectives(c)));
    for (let r = 0; r < n; r++) {
      const want = expected(n, r);
      for (const key of Object.keys(want)) assert.deepStrictEqual(results[r]![key], want[key], `ring rank ${r}: ${key}`);
    }
    const [, r1] = await Promise.all(comms.map((c) => pointToPoint(c)));
    assert.deepEqual(r1!['order'], Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual(r1!['big'], { size: 5 * 1024 * 1024 + 3, ok: true });
    assert.deepEqual(r1!['trunc'], { size: 100, truncated: true, stored: 10, source: 0, tag: 1, first: 9 });
    await Promise.all(comms.map((c) => c.close()));
    assert.deepEqual(
      shm.listRegions().filter((e) => e.name.includes(job)),
      [],
      'no ring regions left behind',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
