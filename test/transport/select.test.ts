/** select() over channels of different kinds (seed 12.2.3), and the multiplexing iterator. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import { SwitchboardError } from '../../src/errors.js';
import { connect, createFifo, framed, listen, multiplex, openFifo, pipe, select, socketpair, type Channel } from '../../src/transport/index.js';
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

/** A channel that delegates to another and counts the onReadReady subscriptions still live. */
class Counted implements Channel {
  liveCount = 0;
  constructor(readonly inner: Channel) {}
  get kind() {
    return this.inner.kind;
  }
  get messages() {
    return this.inner.messages;
  }
  get description() {
    return this.inner.description;
  }
  get peer() {
    return this.inner.peer;
  }
  get readReady() {
    return this.inner.readReady;
  }
  get closed() {
    return this.inner.closed;
  }
  get isClosed() {
    return this.inner.isClosed;
  }
  read() {
    return this.inner.read();
  }
  tryRead() {
    return this.inner.tryRead();
  }
  write(d: Uint8Array) {
    return this.inner.write(d);
  }
  writev(d: readonly Uint8Array[]) {
    return this.inner.writev(d);
  }
  end() {
    return this.inner.end();
  }
  close() {
    return this.inner.close();
  }
  destroy(e?: Error) {
    this.inner.destroy(e);
  }
  [Symbol.asyncIterator]() {
    return this.inner[Symbol.asyncIterator]();
  }
  onReadReady(l: () => void): () => void {
    this.liveCount++;
    let done = false;
    const off = (): void => {
      if (!done) {
        done = true;
        this.liveCount--;
      }
    };
    const cancel = this.inner.onReadReady(() => {
      off();
      l();
    });
    return () => {
      off();
      cancel();
    };
  }
}

function counted(inner: Channel): { ch: Channel; live(): number } {
  const c = new Counted(inner);
  return { ch: c, live: () => c.liveCount };
}

test('many select() calls on the same channels leave no listener behind (timeout, abort, ready)', async () => {
  const [r, w] = pipe();
  const [x, y] = socketpair();
  const a = counted(r);
  const yc = counted(y);
  const b = counted(framed(yc.ch, { framing: 'length-prefix' }));
  const ac0 = new AbortController();
  try {
    for (let i = 0; i < 200; i++) await select([a.ch, b.ch], { timeoutMs: 1, signal: ac0.signal });
    for (let i = 0; i < 50; i++) {
      const ac = new AbortController();
      const s = select([a.ch, b.ch], { signal: ac.signal });
      ac.abort();
      await assert.rejects(s, (e: SwitchboardError) => e.code === 'EABORTED');
    }
    for (let i = 0; i < 50; i++) {
      const s = select([a.ch, b.ch], { timeoutMs: 5000, signal: ac0.signal });
      await x.write(Uint8Array.of(0, 0, 0, 1, i));
      assert.deepEqual(await s, [b.ch]);
      assert.deepEqual([...(await b.ch.read())!], [i]);
    }
    assert.equal(a.live(), 0, 'pipe subscriptions left');
    assert.equal(b.live(), 0, 'framed subscriptions left');
    assert.equal(yc.live(), 0, 'subscriptions the framed channel left on its stream');
    assert.equal(getEventListeners(ac0.signal, 'abort').length, 0, 'abort listeners left');
  } finally {
    for (const c of [r, w, x, y]) c.destroy();
  }
});

test('multiplex stops with EABORTED when its signal aborts, and leaves no listener', async () => {
  const [r, w] = pipe();
  const a = counted(r);
  const ac = new AbortController();
  try {
    const seen: string[] = [];
    const run = (async () => {
      for await (const ev of multiplex([a.ch], { signal: ac.signal })) seen.push(Buffer.from(ev.data ?? []).toString());
    })();
    await w.write(Buffer.from('one'));
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((res) => setTimeout(res, 5));
    ac.abort();
    await assert.rejects(run, (e: SwitchboardError) => e.code === 'EABORTED');
    assert.deepEqual(seen, ['one']);
    assert.equal(a.live(), 0);
  } finally {
    r.destroy();
    w.destroy();
  }
});

test('select keeps waiting when the data that woke it is taken by someone else first (no early empty result)', async () => {
  const [r, w] = pipe();
  try {
    const s = select([r], { timeoutMs: 5000 });
    // another consumer, subscribed after select, takes the chunk in the same turn
    r.onReadReady(() => void r.tryRead());
    await w.write(Buffer.from('stolen'));
    const early = await Promise.race([s, new Promise((res) => setTimeout(() => res('still waiting'), 200))]);
    assert.equal(early, 'still waiting', 'select resolved with nothing ready before its timeout');
    await w.write(Buffer.from('mine'));
    assert.deepEqual(await s, [r]);
    assert.equal(Buffer.from(r.tryRead()!).toString(), 'mine');
  } finally {
    r.destroy();
    w.destroy();
  }
});

test('a timeout too long for a Node timer (over 2^31-1 ms) waits, it does not fire at once', async () => {
  const [r, w] = pipe();
  try {
    const s = select([r], { timeoutMs: 2 ** 32 });
    const early = await Promise.race([s, new Promise((res) => setTimeout(() => res('waiting'), 100))]);
    assert.equal(early, 'waiting');
    await w.write(Buffer.from('x'));
    assert.deepEqual(await s, [r]);
  } finally {
    r.destroy();
    w.destroy();
  }
});
