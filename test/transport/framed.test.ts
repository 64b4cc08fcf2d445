/** Message channels over byte streams: framing on a live connection, and what happens on bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardError } from '../../src/errors.js';
import { framed, select, spawnWithChannels } from '../../src/transport/index.js';
import { encodeRecord } from '../../src/wire/index.js';
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

test('two concurrent framed reads get messages in call order and do not poison the channel', async () => {
  for (const framing of ['length-prefix', 'record-marking'] as const) {
    const p = await makePair('socketpair');
    try {
      const a = framed(p.a, { framing, maxFragment: 3 });
      const b = framed(p.b, { framing });
      const r1 = b.read();
      const r2 = b.read();
      const r3 = b.read();
      await a.write(Buffer.from('first message'));
      await a.write(Buffer.from('second message'));
      await a.write(Buffer.from('third message'));
      assert.deepEqual(
        (await Promise.all([r1, r2, r3])).map((m) => Buffer.from(m!).toString()),
        ['first message', 'second message', 'third message'],
      );
      await a.write(Buffer.from('later'));
      assert.equal(Buffer.from((await b.read())!).toString(), 'later', 'the channel still works');
      const e1 = b.read();
      const e2 = b.read();
      await a.end();
      assert.equal(await e1, null);
      assert.equal(await e2, null);
    } finally {
      await p.cleanup();
    }
  }
});

test('a message trickling in one byte per chunk: readReady and onReadReady fire only once it is whole', async () => {
  const p = await makePair('socketpair');
  try {
    const b = framed(p.b, { framing: 'record-marking' });
    const wire = Buffer.from(encodeRecord(Buffer.from('trickle-trickle-trickle'), 5));
    let fired = 0;
    b.onReadReady(() => fired++);
    const selecting = select([b], { timeoutMs: 10_000 });
    for (let i = 0; i < wire.length; i++) {
      assert.equal(b.readReady, false, `ready after ${i} of ${wire.length} bytes`);
      await p.a.write(wire.subarray(i, i + 1));
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      if (i < wire.length - 1) assert.equal(fired, 0, `fired after ${i + 1} bytes`);
    }
    assert.deepEqual(await selecting, [b]);
    assert.equal(fired, 1);
    assert.equal(b.readReady, true);
    assert.equal(Buffer.from(b.tryRead()!).toString(), 'trickle-trickle-trickle');
    assert.equal(b.tryRead(), undefined);
  } finally {
    await p.cleanup();
  }
});

test('a peer process killed by SIGKILL in the middle of a framed message gives a prompt typed ECONNRESET', async () => {
  // The child writes a header promising 1000 bytes and 7 of them, says so on a
  // second pipe, then waits to be killed.
  const child = `const fs = require('fs');
    fs.writeSync(3, Buffer.from([0, 0, 3, 232, 1, 2, 3, 4, 5, 6, 7]));
    fs.writeSync(4, 'sent');
    setInterval(() => {}, 1000);`;
  const kid = await spawnWithChannels(process.execPath, ['-e', child], {
    channels: { data: 'socketpair', note: 'pipe-from-child' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const b = framed(kid.channels['data']!, { framing: 'length-prefix' });
  try {
    const reading = b.read().then(
      () => 'resolved',
      (e: SwitchboardError) => e,
    );
    assert.equal(Buffer.from((await kid.channels['note']!.read())!).toString(), 'sent');
    kid.child.kill('SIGKILL');
    const t0 = Date.now();
    const err = await reading;
    assert.ok(err instanceof SwitchboardError, `got ${String(err)}`);
    assert.equal(err.code, 'ECONNRESET');
    assert.match(err.message, /11 bytes/, "header and the 7 body bytes that arrived");
    assert.ok(Date.now() - t0 < 5000, 'promptly');
    assert.equal((await kid.exited).signal, 'SIGKILL');
    await assert.rejects(b.read(), (e: SwitchboardError) => e.code === 'ECONNRESET', 'the error is sticky');
  } finally {
    for (const c of Object.values(kid.channels)) c.destroy();
    kid.child.kill('SIGKILL');
  }
});
