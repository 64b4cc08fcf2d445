/**
 * The two latency paths of SocketChannel that skip its queue: writeNow()
 * (one system call straight to the descriptor when nothing is queued) and
 * readDirect() (chunks handed to a consumer as they arrive). Proves: bytes
 * arrive whole and in order whether writeNow() went direct or fell back to
 * the stream (corked socket, full buffer); a closed channel still refuses;
 * EOF still reaches onReadReady/tryRead with readDirect on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocketChannel } from '../../src/transport/socket-channel.js';
import { STREAM_KINDS, makePair, readAll } from './pairs.js';

for (const kind of STREAM_KINDS) {
  test(`writeNow over ${kind}: direct when idle, in order behind corked and buffered writes`, async () => {
    const { a: writer, b: reader, cleanup: close } = await makePair(kind);
    try {
      assert.ok(writer instanceof SocketChannel);
      const w = writer as SocketChannel;
      const sent: number[] = [];
      const all = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);
      // Idle: the kernel takes it at once, nothing to wait for.
      assert.equal(w.writeNow(all(10, 1)), undefined);
      sent.push(...all(10, 1));
      // Two writes in one tick cork the socket: writeNow must queue behind them, not jump ahead.
      const p1 = w.write(all(5, 2));
      const p2 = w.write(all(5, 3));
      const p3 = w.writeNow(all(5, 4));
      assert.notEqual(p3, undefined, 'a corked socket falls back to the stream');
      sent.push(...all(5, 2), ...all(5, 3), ...all(5, 4));
      await Promise.all([p1, p2, p3]);
      // More than a socket buffer holds: part goes direct, the rest through the stream, in order.
      const big = new Uint8Array(4 << 20).map((_, i) => i & 0xff);
      const reading = readAll(reader);
      const p4 = w.writeNow(big);
      for (const b of big) sent.push(b);
      if (p4 !== undefined) await p4;
      await w.end();
      const got = await reading;
      assert.equal(got.byteLength, sent.length);
      assert.ok(Buffer.from(got).equals(Buffer.from(sent)), 'every byte in order');
      await w.close();
      await assert.rejects(w.writeNow(all(1, 9)) ?? Promise.resolve(), { code: 'ECLOSED' });
    } finally {
      await close();
    }
  });
}

test('readDirect hands chunks to the consumer as they arrive, and EOF still reaches tryRead', async () => {
  const { a: writer, b: reader, cleanup: close } = await makePair('socketpair');
  try {
    const r = reader as SocketChannel;
    const chunks: Uint8Array[] = [];
    r.readDirect((c) => chunks.push(c.slice()));
    await writer.write(new TextEncoder().encode('hello '));
    await writer.write(new TextEncoder().encode('world'));
    await writer.end();
    await new Promise<void>((resolve) => {
      const check = (): void => {
        const v = r.tryRead();
        if (v === null) resolve();
        else r.onReadReady(check);
      };
      check();
    });
    assert.equal(Buffer.concat(chunks).toString(), 'hello world');
  } finally {
    await close();
  }
});
