/** Message channels over byte streams: framing on a live connection, and what happens on bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardError } from '../../src/errors.js';
import { framed, select } from '../../src/transport/index.js';
import { makePair } from './pairs.js';

for (const framing of ['length-prefix', 'record-marking'] as const) {
  test(`${framing}: each write is one message, each read one whole message`, async () => {
    const p = await makePair('unix');
    try {
      const a = framed(p.a, { framing, maxMessageSize: 1 << 20, maxFragment: 1000 });
      const b = framed(p.b, { framing, maxMessageSize: 1 << 20 });
      assert.equal(b.messages, true);
      const sent = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(300_000, 9), Buffer.from('z')];
      for (const m of sent) await a.write(m);
      for (const m of sent) assert.deepEqual(Buffer.from((await b.read())!), m);
      await a.end();
      assert.equal(await b.read(), null);
    } finally {
      await p.cleanup();
    }
  });
}

test('an oversized header gets EMSGSIZE and the connection is closed; the sender cannot exceed it either', async () => {
  const p = await makePair('tcp4');
  try {
    const b = framed(p.b, { framing: 'length-prefix', maxMessageSize: 1000 });
    await p.a.write(Uint8Array.of(0x7f, 0, 0, 0, 1, 2, 3));
    await assert.rejects(b.read(), (e: SwitchboardError) => e.code === 'EMSGSIZE');
    await b.closed;
    assert.equal(await p.a.read().catch(() => null), null, 'the peer sees the connection end');
    const a = framed(p.a, { framing: 'length-prefix', maxMessageSize: 10 });
    await assert.rejects(a.write(new Uint8Array(11)), (e: SwitchboardError) => e.code === 'EMSGSIZE');
  } finally {
    await p.cleanup();
  }
});

test('a peer that dies in the middle of a message gives ECONNRESET, not a short message', async () => {
  const p = await makePair('unix');
  try {
    const b = framed(p.b, { framing: 'length-prefix' });
    await p.a.write(Uint8Array.of(0, 0, 0, 100, 1, 2, 3, 4, 5));
    p.a.destroy();
    await assert.rejects(b.read(), (e: SwitchboardError) => e.code === 'ECONNRESET' && /9 bytes/.test(e.message));
  } finally {
    await p.cleanup();
  }
});

test('select on framed channels reports ready only when a whole message is there', async () => {
  const p = await makePair('socketpair');
  try {
    const b = framed(p.b, { framing: 'length-prefix' });
    await p.a.write(Uint8Array.of(0, 0, 0, 3, 1));
    assert.deepEqual(await select([b], { timeoutMs: 100 }), []);
    const s = select([b], { timeoutMs: 2000 });
    await p.a.write(Uint8Array.of(2, 3));
    assert.deepEqual(await s, [b]);
    assert.deepEqual([...(await b.read())!], [1, 2, 3]);
  } finally {
    await p.cleanup();
  }
});
