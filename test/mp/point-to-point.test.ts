/** Point to point over worker threads: matching, order, truncation, sizes, probes, requests, failures, bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RankFailedError, runThreads } from '../../src/mp/index.js';

const RANKS = new URL('./fixtures/ranks.js', import.meta.url);

for (const transport of ['ring', 'port'] as const) {
test(`send/receive semantics on 3 threads over ${transport === 'ring' ? 'shared-memory rings' : 'MessagePorts'}`, async () => {
  const [r0, r1, r2] = await runThreads<Record<string, unknown>>(3, RANKS, { export: 'pointToPoint', timeoutMs: 30_000, transport });
  assert.deepEqual(r1!['order'], Array.from({ length: 50 }, (_, i) => i), 'non-overtaking per pair and tag');
  assert.equal(r1!['tag8'], 'tag 8 first', 'a later message with another tag is received first');
  assert.deepEqual(r1!['trunc'], { size: 100, truncated: true, stored: 10, source: 0, tag: 1, first: 9 });
  assert.deepEqual(r1!['big'], { size: 5 * 1024 * 1024 + 3, ok: true });
  assert.deepEqual(r1!['typed'], { ctor: 'Float64Array', values: [1.5, -2.25] });
  assert.deepEqual(r1!['value'], { a: [1, 2], m: new Map([['k', 1]]), when: new Date(0) });
  assert.deepEqual(r1!['probe'], { source: 0, tag: 5, size: 66, kind: 'typed' });
  assert.equal(r1!['iprobeNone'], true);
  assert.deepEqual(r1!['probed'], { size: 66, len: 33, truncated: false, ctor: 'Int16Array' });
  assert.equal(r1!['transferred'], 4096);
  assert.equal(r0!['waitAnyIndex'], 1, 'tag 10 completes first');
  assert.equal(r0!['second'], 'eleven');
  // Only a MessagePort can move a buffer; a ring copies it (the sender keeps its array).
  assert.equal(r0!['transferDetached'], transport === 'port' ? true : 'n/a', 'transfer: true moves the buffer over ports');
  assert.equal(r0!['self'], 'me');
  assert.deepEqual([r0!['sendrecv'], r1!['sendrecv'], r2!['sendrecv']], [2, 0, 1]);
});
}

test('bad input gives typed errors', async () => {
  const [r0, r1] = await runThreads<Record<string, string>>(2, RANKS, { export: 'badInput', maxMessageSize: 1024 });
  for (const r of [r0!, r1!]) {
    assert.equal(r['sendToMissingRank'], 'ArgumentError:EINVAL');
    assert.equal(r['sendToFraction'], 'ArgumentError:EINVAL');
    assert.equal(r['negativeTag'], 'ArgumentError:EINVAL');
    assert.equal(r['receiveNegativeTag'], 'ArgumentError:EINVAL');
    assert.equal(r['receiveFromMissing'], 'ArgumentError:EINVAL');
    assert.equal(r['wrongBuffer'], 'ArgumentError:EINVAL');
    assert.equal(r['tooLarge'], 'MessageTooLargeError:EMSGSIZE');
    assert.equal(r['timeout'], 'TimeoutError:ETIMEDOUT');
    assert.equal(r['abort'], 'AbortError:EABORTED');
    assert.equal(r['badOp'], 'ArgumentError:EINVAL');
    assert.equal(r['unknownOp'], 'ArgumentError:EINVAL');
    assert.equal(r['badRoot'], 'ArgumentError:EINVAL');
    assert.equal(r['mismatch'], 'CollectiveMismatchError:EINVAL');
  }
  assert.equal(r0!['scatterUneven'], 'ArgumentError:EINVAL');
});

for (const mode of ['throw', 'exit'] as const) {
  test(`a rank that dies (${mode}) fails the others' pending operations and is named`, async () => {
    await assert.rejects(
      runThreads<string>(4, RANKS, { export: 'dies', args: { victim: 2, mode } }),
      (err: unknown) => {
        assert.ok(err instanceof RankFailedError, String(err));
        assert.equal(err.rank, 2);
        return true;
      },
    );
  });
}
