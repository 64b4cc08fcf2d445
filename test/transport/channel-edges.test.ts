/**
 * The corners of the stream Channel contract, for every stream kind: reads
 * racing data, EOF, errors and local close; writes racing end(), close() and
 * destroy(); and the write batching (cork/uncork) staying invisible to the
 * caller except as fewer system calls.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchboardError } from '../../src/errors.js';
import { pipe, select, socketpair } from '../../src/transport/index.js';
import { SocketChannel } from '../../src/transport/socket-channel.js';
import { STREAM_KINDS, childExecArgv, makePair, readAll, readBytes, tempDir } from './pairs.js';

const transportIndex = fileURLToPath(new URL('../../src/transport/index.js', import.meta.url));

const code = (e: unknown): string => (e instanceof SwitchboardError ? e.code : `not a SwitchboardError: ${String(e)}`);

for (const kind of STREAM_KINDS) {
  describe(`${kind} channel edges`, () => {
    test('two concurrent read() calls each get the next chunk, in call order', async () => {
      const p = await makePair(kind);
      try {
        const r1 = p.b.read();
        const r2 = p.b.read();
        await p.a.write(Buffer.from('one'));
        assert.equal(Buffer.from((await r1)!).toString(), 'one');
        await sleep(20); // the second chunk must not be merged into the first
        await p.a.write(Buffer.from('two'));
        assert.equal(Buffer.from((await r2)!).toString(), 'two');
        // both pending at EOF get null
        const r3 = p.b.read();
        const r4 = p.b.read();
        await p.a.end();
        assert.equal(await r3, null);
        assert.equal(await r4, null);
      } finally {
        await p.cleanup();
      }
    });

    test('destroy() closes at once: isClosed, writes and reads reject ECLOSED, pending read rejects', async () => {
      const p = await makePair(kind);
      try {
        await p.a.write(Buffer.from('unread'));
        await sleep(20);
        const pendingOnA = p.duplex ? p.a.read() : undefined;
        p.b.destroy();
        p.a.destroy(new Error('boom'));
        assert.equal(p.b.isClosed, true, 'isClosed right after destroy()');
        assert.equal(p.b.readReady, true);
        assert.equal(code(await p.b.read().catch((e: unknown) => e)), 'ECLOSED');
        assert.throws(() => p.b.tryRead(), (e: SwitchboardError) => e.code === 'ECLOSED');
        if (p.duplex) assert.equal(code(await p.b.write(Buffer.from('x')).catch((e: unknown) => e)), 'ECLOSED');
        if (pendingOnA) assert.equal(code(await pendingOnA.catch((e: unknown) => e)), 'EIO');
        assert.equal(p.a.isClosed, true);
        assert.equal(code(await p.a.write(Buffer.from('x')).catch((e: unknown) => e)), 'EIO', 'destroy(err) is the error from now on');
        await p.a.closed;
        await p.b.closed;
      } finally {
        await p.cleanup();
      }
    });

    test('destroy() while a write waits for drain rejects that write, it does not hang', async () => {
      const p = await makePair(kind, { readHighWaterMark: 16 * 1024 });
      try {
        const chunk = Buffer.alloc(256 * 1024, 3);
        let pending: Promise<unknown> | undefined;
        for (let i = 0; i < 256 && pending === undefined; i++) {
          const w = p.a.write(chunk);
          const state = await Promise.race([w.then(() => 'done'), sleep(50).then(() => 'pending')]);
          if (state === 'pending') pending = w.catch((e: unknown) => e);
        }
        assert.ok(pending, 'the writer was never held back');
        p.a.destroy();
        assert.equal(code(await pending), 'ECLOSED');
      } finally {
        await p.cleanup();
      }
    });

    test('write after end() rejects ECLOSED; end() and close() are idempotent', async () => {
      const p = await makePair(kind);
      try {
        await p.a.write(Buffer.from('x'));
        await p.a.end();
        await p.a.end();
        assert.equal(code(await p.a.write(Buffer.from('y')).catch((e: unknown) => e)), 'ECLOSED');
        assert.equal(code(await p.a.writev([Buffer.from('y')]).catch((e: unknown) => e)), 'ECLOSED');
        assert.equal((await readAll(p.b)).toString(), 'x');
        await Promise.all([p.a.close(), p.a.close()]);
        await p.a.close();
        assert.equal(p.a.isClosed, true);
      } finally {
        await p.cleanup();
      }
    });

    test('close() right after an end() that is still flushing delivers every byte', async () => {
      const p = await makePair(kind);
      try {
        const big = Buffer.alloc(4 << 20, 7);
        const w = p.a.write(big).catch((e: unknown) => e);
        void p.a.end();
        const reading = readAll(p.b);
        await p.a.close();
        assert.equal(await w, undefined);
        assert.equal((await reading).length, big.length);
      } finally {
        await p.cleanup();
      }
    });

    test('a write waiting for drain when end() is called resolves once the data is out', async () => {
      const p = await makePair(kind);
      try {
        const big = Buffer.alloc(4 << 20, 5);
        const w = p.a.write(big).then(() => 'resolved', (e: unknown) => code(e));
        const ending = p.a.end();
        const got = readAll(p.b);
        await ending;
        assert.equal(await w, 'resolved', 'Node emits no drain after end(); the write must settle anyway');
        assert.equal((await got).length, big.length);
      } finally {
        await p.cleanup();
      }
    });

    test('close() does not wait for a peer that never closes its side', async () => {
      const p = await makePair(kind);
      try {
        await p.a.write(Buffer.from('bye'));
        await p.a.close(); // p.b never closes nor ends
        assert.equal(p.a.isClosed, true);
        assert.equal((await readAll(p.b)).toString(), 'bye');
        if (p.duplex) {
          // and the other way round: the side that got EOF closes without the peer doing anything more
          await p.b.close();
        }
      } finally {
        await p.cleanup();
      }
    });

    test('a close() stuck flushing to a peer that never reads is ended by destroy()', async () => {
      const p = await makePair(kind, { readHighWaterMark: 16 * 1024 });
      try {
        const w = p.a.write(Buffer.alloc(8 << 20, 1)).catch((e: unknown) => e);
        const closing = p.a.close();
        const state = await Promise.race([closing.then(() => 'closed'), sleep(100).then(() => 'flushing')]);
        assert.equal(state, 'flushing', 'close() waits while the peer does not read (it flushes first)');
        p.a.destroy();
        await closing;
        assert.equal(p.a.isClosed, true);
        assert.equal(code(await w), 'ECLOSED');
      } finally {
        await p.cleanup();
      }
    });

    test('writes made without awaiting stay in order across write() and writev(), with nothing lost', async () => {
      const p = await makePair(kind);
      try {
        const expected: Buffer[] = [];
        const done: Promise<void>[] = [];
        // well past every high-water mark: a writer that ignores the promises
        // has its data queued in memory (as net.Socket does), not dropped
        for (let i = 0; i < 2000; i++) {
          const a = Buffer.from(`<${i}:`);
          const b = Buffer.alloc(500, i & 0xff);
          const c = Buffer.from('>');
          expected.push(a, b, c);
          if (i % 3 === 0) done.push(p.a.writev([a, b, c]));
          else done.push(p.a.write(a), p.a.write(b), p.a.write(c));
        }
        const total = expected.reduce((n, x) => n + x.length, 0);
        const got = readBytes(p.b, total);
        await Promise.all(done);
        assert.deepEqual(await got, Buffer.concat(expected));
      } finally {
        await p.cleanup();
      }
    });
  });
}

test('end() on the read end of a pipe is a no-op, and the read end can still read', async () => {
  const [r, w] = pipe();
  try {
    await r.end();
    await w.write(Buffer.from('still'));
    await w.end();
    assert.equal((await readAll(r)).toString(), 'still');
    assert.equal(code(await r.write(Buffer.from('x')).catch((e: unknown) => e)), 'ECLOSED');
  } finally {
    r.destroy();
    w.destroy();
  }
});

test('read(), tryRead() and readReady agree: data first, then EOF, then EOF again', async () => {
  const [x, y] = socketpair();
  try {
    await x.write(Buffer.from('d'));
    await x.end();
    while (!y.readReady) await sleep(5);
    await sleep(20);
    assert.equal(Buffer.from(y.tryRead()!).toString(), 'd');
    assert.equal(y.readReady, true);
    assert.equal(y.tryRead(), null);
    assert.equal(await y.read(), null);
    let fired = 0;
    y.onReadReady(() => fired++);
    await sleep(0);
    assert.equal(fired, 1, 'onReadReady fires at once at EOF');
  } finally {
    x.destroy();
    y.destroy();
  }
});

test('a cancelled onReadReady never fires, an armed one fires once', async () => {
  const [x, y] = socketpair();
  try {
    let a = 0;
    let b = 0;
    const cancelA = y.onReadReady(() => a++);
    y.onReadReady(() => b++);
    cancelA();
    await x.write(Buffer.from('1'));
    await x.write(Buffer.from('2'));
    await sleep(50);
    assert.equal(a, 0);
    assert.equal(b, 1);
  } finally {
    x.destroy();
    y.destroy();
  }
});

test('writev() hands its chunks to the kernel in one system call', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const sock = net.connect({ port, host: '127.0.0.1' });
  await new Promise((r) => sock.once('connect', r));
  const peer = await accepted;
  const ch = new SocketChannel(sock, { kind: 'tcp', description: 'spy' });
  const calls: string[] = [];
  const s = sock as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const origWrite = s._write.bind(sock);
  const origWritev = s._writev.bind(sock);
  s._write = (...a: unknown[]) => (calls.push('write'), origWrite(...a));
  s._writev = (...a: unknown[]) => (calls.push('writev'), origWritev(...a));
  try {
    await sleep(10); // out of any burst
    await ch.writev([Buffer.from('head'), Buffer.from('body'), Buffer.from('tail')]);
    assert.deepEqual(calls, ['writev'], 'three chunks, one writev');
    calls.length = 0;
    await sleep(10);
    await ch.write(Buffer.from('lone'));
    assert.deepEqual(calls, ['write'], 'a lone write goes straight out');
    let got = '';
    peer.on('data', (c: Buffer) => (got += c.toString()));
    for (let i = 0; i < 100 && got.length < 16; i++) await sleep(5);
    assert.equal(got, 'headbodytaillone');
  } finally {
    ch.destroy();
    peer.destroy();
    await new Promise((r) => server.close(r));
  }
});

test('fire-and-forget writes to a dead peer do not kill the process (no unhandled rejection or error event)', async () => {
  const t = tempDir();
  try {
    const script = join(t.dir, 'forget.mjs');
    writeFileSync(
      script,
      `import { bindUdp, connect, socketpair, pipe } from ${JSON.stringify(transportIndex)};
       const gone = await bindUdp();
       const port = gone.address.port;
       await gone.close();
       const u = await connect('udp://127.0.0.1:' + port);
       for (let i = 0; i < 20; i++) {
         u.write(Buffer.from('nobody there'));   // ECONNREFUSED, ignored on purpose
         await new Promise((res) => setTimeout(res, 2));
       }
       await u.close();
       u.write(Buffer.from('after close'));
       const [a, b] = socketpair();
       const [r, w] = pipe();
       b.destroy();
       r.destroy();
       await new Promise((res) => setTimeout(res, 20));
       for (let i = 0; i < 200; i++) {
         a.write(Buffer.alloc(64 * 1024));   // promises ignored on purpose
         w.write(Buffer.alloc(64 * 1024));
       }
       await new Promise((res) => setTimeout(res, 200));
       a.write(Buffer.from('after the error'));
       a.destroy();
       a.write(Buffer.from('after destroy'));
       a.writev([Buffer.from('x'), Buffer.from('y')]);
       await new Promise((res) => setTimeout(res, 50));
       console.log('alive');`,
    );
    const child = spawn(process.execPath, [...childExecArgv(), '--unhandled-rejections=throw', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(out.trim(), 'alive', err);
    assert.equal(code, 0, err);
  } finally {
    t.remove();
  }
});

test('data that arrived before a reset is read first, then the typed error, consistently from read(), tryRead() and readReady', async () => {
  const p = await makePair('tcp4', { readHighWaterMark: 1024 });
  try {
    // the server end sends more than the client takes in (it stops reading past
    // 1 KiB), so data is left in the client's kernel buffer and its close is a reset
    const flood = p.b.write(Buffer.alloc(1 << 20)).catch((e: unknown) => e);
    await p.a.write(Buffer.from('hello'));
    while (!p.b.readReady) await sleep(5);
    await sleep(20);
    p.a.destroy();
    let fired = false;
    // wait until the reset has landed: readReady stays true (data), so poll select until an error shows
    let err: unknown;
    const first = p.b.tryRead();
    assert.equal(Buffer.from(first!).toString(), 'hello');
    for (let i = 0; i < 200 && err === undefined; i++) {
      await select([p.b], { timeoutMs: 50 });
      try {
        const x = p.b.tryRead();
        if (x === null) err = 'EOF';
      } catch (e) {
        err = e;
      }
    }
    assert.equal(code(err), 'ECONNRESET');
    assert.equal(p.b.readReady, true);
    p.b.onReadReady(() => (fired = true));
    await sleep(0);
    assert.equal(fired, true);
    assert.equal(code(await p.b.read().catch((e: unknown) => e)), 'ECONNRESET', 'the error is sticky');
    const w = await flood; // accepted by the kernel, or failed with the reset: never left hanging
    assert.ok(w === undefined || code(w) === 'ECONNRESET', code(w));
  } finally {
    await p.cleanup();
  }
});
