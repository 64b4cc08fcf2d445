import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initRing, ringBytes } from '../../src/shm/index.js';
import { startWorker, workerExit } from './helpers.js';

test('a million checksummed messages of mixed sizes through a 64 KiB ring, none lost', { timeout: 170_000 }, async () => {
  const capacity = 1 << 16;
  const sab = new SharedArrayBuffer(ringBytes(capacity));
  initRing(sab, 0, { capacity });
  const consumer = startWorker({ role: 'ring-consume', sab });
  const result = new Promise<{ n: number; bad: number }>((resolve) => consumer.once('message', resolve));
  const exits = [workerExit(consumer), workerExit(startWorker({ role: 'ring-produce', sab, count: 1_000_000, size: 0 }))];
  const { n, bad } = await result;
  assert.deepEqual(await Promise.all(exits), [0, 0]);
  assert.equal(bad, 0, 'every message arrived in order with a good checksum');
  assert.equal(n, 1_000_000);
});
