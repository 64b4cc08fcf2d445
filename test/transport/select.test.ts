/** select() over channels of different kinds (seed 12.2.3), and the multiplexing iterator. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SwitchboardError } from '../../src/errors.js';
import { connect, createFifo, listen, multiplex, openFifo, pipe, select, type Channel } from '../../src/transport/index.js';
import { tempDir } from './pairs.js';

async function threeKinds(): Promise<{ readers: Channel[]; writers: Channel[]; cleanup(): Promise<void> }> {
  const t = tempDir();
  const [pr, pw] = pipe();
  const path = join(t.dir, 'f');
  createFifo(path);
  const [fr, fw] = await Promise.all([openFifo(path, 'r'), openFifo(path, 'w')]);
  const l = await listen('tcp://127.0.0.1:0');
  const [tc, ts] = await Promise.all([connect(l.address), l.accept()]);
  return {
    readers: [pr, fr, ts],
    writers: [pw, fw, tc],
    cleanup: async () => {
      for (const c of [pr, pw, fr, fw, tc, ts]) c.destroy();
      await l.close({ graceMs: 50 });
      t.remove();
    },
  };
}

test('select on a pipe, a FIFO and a TCP socket reports exactly the ones with data', async () => {
  const k = await threeKinds();
  try {
    assert.deepEqual(await select(k.readers, { timeoutMs: 0 }), [], 'poll: nothing ready');
    const waiting = select(k.readers, { timeoutMs: 5000 });
    await k.writers[2]!.write(Buffer.from('tcp'));
    const ready = await waiting;
    assert.deepEqual(ready, [k.readers[2]]);
    await k.writers[0]!.write(Buffer.from('pipe'));
    await k.writers[1]!.write(Buffer.from('fifo'));
    await new Promise((r) => setTimeout(r, 50));
    const all = await select(k.readers, { timeoutMs: 1000 });
    assert.deepEqual(all, k.readers);
  } finally {
    await k.cleanup();
  }
});

test('select times out with an empty set, like POSIX select', async () => {
  const k = await threeKinds();
  try {
    const t0 = Date.now();
    assert.deepEqual(await select(k.readers, { timeoutMs: 100 }), []);
    assert.ok(Date.now() - t0 >= 90);
  } finally {
    await k.cleanup();
  }
});

test('EOF counts as readable', async () => {
  const [r, w] = pipe();
  const s = select([r], { timeoutMs: 2000 });
  await w.close();
  assert.deepEqual(await s, [r]);
  assert.equal(await r.read(), null);
});

test('select validates its arguments and honours an AbortSignal', async () => {
  await assert.rejects(select([{} as Channel]), (e: SwitchboardError) => e.code === 'EINVAL');
  const [r, w] = pipe();
  await assert.rejects(select([r], { timeoutMs: -1 }), (e: SwitchboardError) => e.code === 'EINVAL');
  const ac = new AbortController();
  const s = select([r], { signal: ac.signal });
  ac.abort();
  await assert.rejects(s, (e: SwitchboardError) => e.code === 'EABORTED');
  r.destroy();
  w.destroy();
});

test('multiplex yields (channel, data) from many channels until all reach EOF', async () => {
  const k = await threeKinds();
  try {
    const got = new Map<Channel, string>();
    const done = (async () => {
      for await (const ev of multiplex(k.readers)) {
        if (ev.data) got.set(ev.channel, (got.get(ev.channel) ?? '') + Buffer.from(ev.data).toString());
      }
    })();
    for (const [i, w] of k.writers.entries()) {
      await w.write(Buffer.from(`m${i}`));
      await w.end();
    }
    await done;
    assert.deepEqual(k.readers.map((r) => got.get(r)), ['m0', 'm1', 'm2']);
  } finally {
    await k.cleanup();
  }
});
