/**
 * The seed's stream semantics (12.2.3), proved for every kind of stream
 * channel: FIFO order, a read on an empty stream waits, EOF when the writer
 * closes, EPIPE (typed, no SIGPIPE death) when no reader is left, and
 * backpressure that holds a fast writer back with bounded memory.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchboardError } from '../../src/errors.js';
import { STREAM_KINDS, makePair, readBytes, readAll } from './pairs.js';

for (const kind of STREAM_KINDS) {
  describe(`${kind} channel`, () => {
    test('delivers bytes in FIFO order, in both directions where duplex', async () => {
      const p = await makePair(kind);
      try {
        const data = Buffer.alloc(200_000);
        for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
        const reading = readBytes(p.b, data.length);
        for (let off = 0; off < data.length; off += 1000) await p.a.write(data.subarray(off, off + 1000));
        assert.deepEqual(await reading, data);
        if (p.duplex) {
          await p.b.write(Buffer.from('back'));
          assert.equal((await readBytes(p.a, 4)).toString(), 'back');
        }
      } finally {
        await p.cleanup();
      }
    });

    test('a read on an empty stream waits until data is written', async () => {
      const p = await makePair(kind);
      try {
        let settled = false;
        const r = p.b.read().then((c) => {
          settled = true;
          return c;
        });
        await sleep(50);
        assert.equal(settled, false, 'read returned before anything was written');
        assert.equal(p.b.readReady, false);
        await p.a.write(Buffer.from('x'));
        assert.equal(Buffer.from((await r)!).toString(), 'x');
      } finally {
        await p.cleanup();
      }
    });

    test('the reader gets EOF (null) after the writer closes, after all data', async () => {
      const p = await makePair(kind);
      try {
        await p.a.write(Buffer.from('last words'));
        await p.a.end();
        assert.equal((await readAll(p.b)).toString(), 'last words');
        assert.equal(await p.b.read(), null, 'EOF is sticky');
      } finally {
        await p.cleanup();
      }
    });

    test('writing with no reader left rejects with a typed EPIPE and the process lives', async () => {
      const p = await makePair(kind);
      try {
        await p.b.close();
        let err: unknown;
        for (let i = 0; i < 200 && err === undefined; i++) {
          try {
            await p.a.write(Buffer.alloc(1024));
          } catch (e) {
            err = e;
          }
          await sleep(1);
        }
        assert.ok(err instanceof SwitchboardError, `expected a SwitchboardError, got ${String(err)}`);
        assert.ok(['EPIPE', 'ECONNRESET'].includes(err.code), `code ${err.code}`);
        if (kind === 'pipe' || kind === 'fifo' || kind === 'socketpair' || kind === 'unix') assert.equal(err.code, 'EPIPE');
        await assert.rejects(p.a.write(Buffer.from('again')), SwitchboardError);
      } finally {
        await p.cleanup();
      }
    });

    test('a writer faster than the reader is held back, with bounded memory', async () => {
      const p = await makePair(kind, { readHighWaterMark: 64 * 1024 });
      try {
        const chunk = Buffer.alloc(64 * 1024, 1);
        let written = 0;
        let blocked = false;
        // Write without reading: some write must stay pending long before 64 MiB.
        for (let i = 0; i < 1024; i++) {
          const w = p.a.write(chunk);
          const state = await Promise.race([w.then(() => 'done'), sleep(100).then(() => 'pending')]);
          if (state === 'pending') {
            blocked = true;
            break;
          }
          written += chunk.length;
        }
        assert.ok(blocked, `the writer was never held back (wrote ${written} bytes)`);
        assert.ok(written < 16 * 1024 * 1024, `accepted ${written} bytes before pushing back`);
        // Now drain everything: the pending write completes and all bytes arrive.
        const total = written + chunk.length;
        const got = await readBytes(p.b, total);
        assert.equal(got.length, total);
      } finally {
        await p.cleanup();
      }
    });
  });
}
