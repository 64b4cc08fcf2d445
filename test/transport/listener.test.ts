/**
 * The server side (seed 12.2.3): each accepted connection is its own Channel,
 * the listening socket keeps accepting while connections are served, limits
 * and idle timeouts hold, close is graceful, Unix sockets are private, and a
 * thousand connections leave no file descriptor behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchboardError } from '../../src/errors.js';
import { connect, listen, type Channel } from '../../src/transport/index.js';
import { readBytes, tempDir } from './pairs.js';

const fdCount = (): number => readdirSync('/proc/self/fd').length;

async function echo(ch: Channel): Promise<void> {
  for await (const c of ch) await ch.write(c);
  await ch.end();
}

test('keeps accepting while earlier connections are being served', async () => {
  const l = await listen('tcp://127.0.0.1:0', { onConnection: (ch) => void echo(ch).catch(() => undefined) });
  try {
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect(l.address)));
    // the first connection stays open and busy while the others talk
    await Promise.all(
      clients.map(async (c, i) => {
        await c.write(Buffer.from(`hello ${i}`));
        assert.equal((await readBytes(c, `hello ${i}`.length)).toString(), `hello ${i}`);
      }),
    );
    assert.equal(l.connections, 20);
    for (const c of clients) await c.close();
  } finally {
    await l.close();
  }
});

test('accept() and the async iterator hand out one Channel per connection', async () => {
  const l = await listen('tcp://127.0.0.1:0');
  const c1 = await connect(l.address);
  const c2 = await connect(l.address);
  const seen: Channel[] = [];
  for await (const ch of l) {
    seen.push(ch);
    if (seen.length === 2) break;
  }
  assert.equal(seen.length, 2);
  assert.notEqual(seen[0], seen[1]);
  c1.destroy();
  c2.destroy();
  await l.close({ graceMs: 100 });
  await assert.rejects(l.accept(), (e: SwitchboardError) => e.code === 'ECLOSED');
});

test('maxConnections refuses connections beyond the limit', async () => {
  const l = await listen('tcp://127.0.0.1:0', { maxConnections: 2 });
  try {
    const a = await connect(l.address);
    const b = await connect(l.address);
    await l.accept();
    await l.accept();
    const c = await connect(l.address);
    // the third is closed by the server at once: its read sees EOF or a reset
    const r = await c.read().catch((e: SwitchboardError) => e.code);
    assert.ok(r === null || r === 'ECONNRESET', `got ${String(r)}`);
    assert.equal(l.refused, 1);
    a.destroy();
    b.destroy();
    c.destroy();
  } finally {
    await l.close({ graceMs: 100 });
  }
});

test('an idle connection is closed with ETIMEDOUT after idleTimeoutMs', async () => {
  const l = await listen('tcp://127.0.0.1:0', { idleTimeoutMs: 100 });
  try {
    const c = await connect(l.address);
    const s = await l.accept();
    await assert.rejects(s.read(), (e: SwitchboardError) => e.code === 'ETIMEDOUT');
    assert.equal(await c.read().catch(() => null), null);
    c.destroy();
  } finally {
    await l.close({ graceMs: 100 });
  }
});

test('close() stops accepting, lets open connections finish, then ends them', async () => {
  const l = await listen('tcp://127.0.0.1:0');
  const c = await connect(l.address);
  const s = await l.accept();
  const closing = l.close({ graceMs: 2000 });
  await sleep(20);
  await assert.rejects(connect(l.address, { timeoutMs: 1000 }), (e: SwitchboardError) => e.code === 'ECONNREFUSED');
  // the open connection still works during the grace period
  await c.write(Buffer.from('still here'));
  assert.equal((await readBytes(s, 10)).toString(), 'still here');
  await c.close();
  await s.close();
  await closing;
});

test('close() ends connections that outlive the grace period', async () => {
  const l = await listen('tcp://127.0.0.1:0');
  const c = await connect(l.address);
  await l.accept();
  const t0 = Date.now();
  await l.close({ graceMs: 100 });
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(await c.read().catch(() => null), null);
  c.destroy();
});

test('a Unix socket is created 0600, refuses a second listener, and its path is removed on close', async () => {
  const t = tempDir();
  const path = join(t.dir, 'srv.sock');
  try {
    const l1 = await listen(`unix://${path}`);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    await assert.rejects(listen(`unix://${path}`), (e: SwitchboardError) => e.code === 'EADDRINUSE');
    await l1.close();
    assert.throws(() => statSync(path));
    const l2 = await listen(`unix://${path}`, { mode: 0o660 });
    assert.equal(statSync(path).mode & 0o777, 0o660);
    const c = await connect(`unix://${path}`);
    const s = await l2.accept();
    assert.equal(s.peer.pid, process.pid, 'SO_PEERCRED names the connecting process');
    assert.equal(s.peer.uid, process.getuid?.());
    c.destroy();
    await l2.close({ graceMs: 100 });
  } finally {
    t.remove();
  }
});

test('a stale Unix socket file left by a killed server is replaced', async () => {
  const t = tempDir();
  const path = join(t.dir, 'stale.sock');
  try {
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(statSync(path).isSocket(), 'the killed server left its socket file');
    const l = await listen(`unix://${path}`);
    await l.close();
  } finally {
    t.remove();
  }
});

test('1,000 connections opened and closed leak no file descriptors', async () => {
  const l = await listen('tcp://127.0.0.1:0', { onConnection: (ch) => void echo(ch).catch(() => undefined) });
  try {
    const before = fdCount();
    for (let round = 0; round < 20; round++) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => connect(l.address)));
      await Promise.all(
        batch.map(async (c) => {
          await c.write(Buffer.from('x'));
          await readBytes(c, 1);
          await c.close();
        }),
      );
    }
    for (let i = 0; i < 50 && l.connections > 0; i++) await sleep(20);
    assert.equal(l.connections, 0);
    assert.ok(fdCount() <= before + 2, `fds before ${before}, after ${fdCount()}`);
  } finally {
    await l.close();
  }
});

test('bad arguments give clear typed errors', async () => {
  await assert.rejects(listen('tcp://127.0.0.1:70000'), (e: SwitchboardError) => e.code === 'EINVAL' && /65535/.test(e.message));
  await assert.rejects(listen('udp://127.0.0.1:0'), (e: SwitchboardError) => e.code === 'EINVAL');
  await assert.rejects(listen('tcp://127.0.0.1:0', { maxConnections: 0 }), (e: SwitchboardError) => e.code === 'EINVAL');
  await assert.rejects(connect('tcp://127.0.0.1:1', { timeoutMs: 2000 }), (e: SwitchboardError) => e.code === 'ECONNREFUSED');
  await assert.rejects(connect('bogus://x'), (e: SwitchboardError) => e.code === 'EINVAL');
  await assert.rejects(connect('tcp://127.0.0.1:no-such-service'), (e: SwitchboardError) => e.code === 'ENOENT');
  const l = await listen('tcp://127.0.0.1:0');
  const c = await connect(l.address);
  await c.close();
  await assert.rejects(c.write(Buffer.from('x')), (e: SwitchboardError) => e.code === 'ECLOSED');
  await l.close({ graceMs: 100 });
});

test('a service name works wherever a port does', async () => {
  const l = await listen('tcp://127.0.0.1:0');
  assert.equal(typeof l.address.transport === 'string' && l.address.transport, 'tcp');
  await l.close();
  await assert.rejects(connect('tcp://127.0.0.1:finger', { timeoutMs: 1000 }), (e: SwitchboardError) => ['ECONNREFUSED', 'ETIMEDOUT'].includes(e.code));
});

test('a live but busy Unix server (full backlog) keeps its socket file: EADDRINUSE, not a takeover', async () => {
  const t = tempDir();
  const path = join(t.dir, 'busy.sock');
  // A server that accepts nothing for a while: its event loop is blocked, so its backlog fills up.
  const child = spawn(
    process.execPath,
    [
      '-e',
      `require('net').createServer().listen({ path: ${JSON.stringify(path)}, backlog: 1 }, () => {
         console.log('up');
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000);
       })`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const clients: net.Socket[] = [];
  try {
    await new Promise((r) => child.stdout.once('data', r));
    let refusedWithEagain = 0;
    for (let i = 0; i < 8; i++) {
      const s = net.connect({ path });
      s.on('error', (e: NodeJS.ErrnoException) => void (e.code === 'EAGAIN' && refusedWithEagain++));
      clients.push(s);
    }
    for (let i = 0; i < 100 && refusedWithEagain === 0; i++) await sleep(10);
    assert.ok(refusedWithEagain > 0, 'the backlog is full');
    await assert.rejects(listen(`unix://${path}`), (e: SwitchboardError) => e.code === 'EADDRINUSE');
    assert.ok(statSync(path).isSocket(), 'the live server keeps its socket file');
  } finally {
    for (const s of clients) s.destroy();
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
    t.remove();
  }
});

test('close() called twice: the second call waits for the first to finish', async () => {
  const t = tempDir();
  const path = join(t.dir, 'twice.sock');
  try {
    const l = await listen(`unix://${path}`);
    const c = await connect(`unix://${path}`);
    const s = await l.accept();
    const first = l.close({ graceMs: 150 });
    await l.close({ graceMs: 150 });
    assert.equal(l.connections, 0, 'the second close() returned before the first had ended the connections');
    assert.throws(() => statSync(path), 'the socket file is gone when close() returns');
    await first;
    assert.equal(s.isClosed, true);
    c.destroy();
  } finally {
    t.remove();
  }
});

test('accept() pending when the listener closes rejects ECLOSED; accept() after close too', async () => {
  const l = await listen('tcp://127.0.0.1:0');
  const pending = l.accept();
  await l.close();
  await assert.rejects(pending, (e: SwitchboardError) => e.code === 'ECLOSED');
  await assert.rejects(l.accept(), (e: SwitchboardError) => e.code === 'ECLOSED');
});

test('maxConnections: a slot frees when a connection closes', async () => {
  const l = await listen('tcp://127.0.0.1:0', { maxConnections: 1 });
  try {
    const a = await connect(l.address);
    const sa = await l.accept();
    await a.close();
    await sa.close();
    for (let i = 0; i < 100 && l.connections > 0; i++) await sleep(10);
    const b = await connect(l.address);
    const sb = await l.accept();
    await b.write(Buffer.from('in'));
    assert.equal((await readBytes(sb, 2)).toString(), 'in');
    assert.equal(l.refused, 0);
    b.destroy();
  } finally {
    await l.close({ graceMs: 100 });
  }
});

test('in a worker thread (no umask there) the Unix socket still ends up with the asked mode', async () => {
  const t = tempDir();
  const path = join(t.dir, 'worker.sock');
  const script = join(t.dir, 'worker.mjs');
  const transportIndex = fileURLToPath(new URL('../../src/transport/index.js', import.meta.url));
  writeFileSync(
    script,
    `import { parentPort } from 'node:worker_threads';
     import { statSync } from 'node:fs';
     import { listen } from ${JSON.stringify(transportIndex)};
     const l = await listen(${JSON.stringify(`unix://${path}`)}, { mode: 0o640 });
     parentPort.postMessage(statSync(${JSON.stringify(path)}).mode & 0o777);
     await l.close();`,
  );
  try {
    // from sources, tsx is registered in the worker first (as test/shm/helpers.ts does)
    const boot = import.meta.url.endsWith('.ts')
      ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(script)}); })`
      : `import(${JSON.stringify(script)})`;
    const w = new Worker(boot, { eval: true });
    // Listen for the exit now: a worker that exits right after posting has its last message
    // drained and 'exit' emitted in one task, before a listener added after the message could
    // see it (that left the test pending: "the event loop has already resolved").
    const exited = new Promise<number>((r) => w.once('exit', r));
    const mode = await new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      // A worker that ends without answering fails here with its exit code.
      void exited.then((code) => reject(new Error(`the worker exited with code ${code} before reporting the socket's mode`)));
    });
    assert.equal(mode, 0o640);
    assert.equal(await exited, 0);
  } finally {
    t.remove();
  }
});

test('connections nobody accept()s queue only up to the backlog; beyond it they are refused, not piled up', async () => {
  const l = await listen('tcp://127.0.0.1:0', { backlog: 2 });
  const clients: Channel[] = [];
  try {
    for (let i = 0; i < 6; i++) clients.push(await connect(l.address));
    for (let i = 0; i < 200 && l.refused < 4; i++) await sleep(10);
    assert.equal(l.refused, 4, 'connections beyond the backlog of 2 are refused');
    assert.equal(l.connections, 2);
    const a = await l.accept();
    const b = await l.accept();
    assert.notEqual(a, b);
    // accepting makes room again
    const late = await connect(l.address);
    clients.push(late);
    const c = await l.accept();
    await late.write(Buffer.from('ok'));
    assert.equal((await readBytes(c, 2)).toString(), 'ok');
  } finally {
    for (const c of clients) c.destroy();
    await l.close({ graceMs: 100 });
  }
});
