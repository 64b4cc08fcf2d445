/**
 * Every collective on 1..8 ranks (worker threads), odd counts, every op,
 * power-of-two and other sizes, sizes past the large-message thresholds,
 * checked against a plain sequential computation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runThreads } from '../../src/mp/index.js';
import { expected } from './fixtures/expected.js';

const RANKS = new URL('./fixtures/ranks.js', import.meta.url);
/** Low enough that the larger test arrays take the ring and scatter+allgather paths. */
const THRESHOLDS = { allreduceRingBytes: 64 * 1024, bcastLargeBytes: 512 * 1024 };

for (let n = 1; n <= 8; n++) {
  test(`collectives on ${n} rank${n > 1 ? 's' : ''} match a sequential computation`, async () => {
    const results = await runThreads<Record<string, unknown>>(n, RANKS, { export: 'collectives', timeoutMs: 60_000, ...THRESHOLDS });
    for (let r = 0; r < n; r++) {
      const got = results[r]!;
      const want = expected(n, r);
      for (const key of Object.keys(want)) assert.deepStrictEqual(got[key], want[key], `rank ${r} of ${n}: ${key}`);
    }
  });
}
