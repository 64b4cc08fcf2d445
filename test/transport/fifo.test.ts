/** FIFOs (seed 12.2.3): named pipes created with mkfifo, opened by path from unrelated processes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchboardError } from '../../src/errors.js';
import { connect, createFifo, openFifo, removeFifo } from '../../src/transport/index.js';
import { readAll, tempDir } from './pairs.js';

test('an unrelated process (a shell) writes into a FIFO we read by path', async () => {
  const t = tempDir();
  const path = join(t.dir, 'news.fifo');
  try {
    createFifo(path, { mode: 0o600 });
    assert.ok(statSync(path).isFIFO());
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const reading = openFifo(path, 'r', { timeoutMs: 5000 });
    const sh = spawn('sh', ['-c', `printf 'one\\ntwo\\n' > "$1"`, 'sh', path], { stdio: 'inherit' });
    const shExited = new Promise((r) => sh.once('exit', r));
    const ch = await reading;
    assert.equal((await readAll(ch)).toString(), 'one\ntwo\n', 'EOF arrives when the shell closes its end');
    await shExited;
    removeFifo(path);
    assert.throws(() => statSync(path));
  } finally {
    t.remove();
  }
});

test('we write into a FIFO an unrelated process (cat) reads', async () => {
  const t = tempDir();
  const path = join(t.dir, 'out.fifo');
  try {
    createFifo(path);
    const cat = spawn('cat', [path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const catExited = new Promise((r) => cat.once('exit', r));
    const chunks: Buffer[] = [];
    cat.stdout.on('data', (c: Buffer) => chunks.push(c));
    const ch = await connect(`fifo://${path}`, { timeoutMs: 5000 });
    await ch.write(Buffer.from('through the fifo'));
    await ch.close();
    await catExited;
    assert.equal(Buffer.concat(chunks).toString(), 'through the fifo');
  } finally {
    t.remove();
  }
});

test('opening waits for the other end, and times out with ETIMEDOUT', async () => {
  const t = tempDir();
  const path = join(t.dir, 'lonely.fifo');
  try {
    createFifo(path);
    await assert.rejects(openFifo(path, 'r', { timeoutMs: 100 }), (e: SwitchboardError) => e.code === 'ETIMEDOUT');
    await assert.rejects(openFifo(path, 'w', { timeoutMs: 100 }), (e: SwitchboardError) => e.code === 'ETIMEDOUT');
    const ac = new AbortController();
    const p = openFifo(path, 'r', { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, (e: SwitchboardError) => e.code === 'EABORTED');
  } finally {
    t.remove();
  }
});

test('bad paths give typed errors', async () => {
  const t = tempDir();
  try {
    await assert.rejects(openFifo(join(t.dir, 'missing'), 'r'), (e: SwitchboardError) => e.code === 'ENOENT');
    const plain = join(t.dir, 'plain');
    writeFileSync(plain, 'x');
    await assert.rejects(openFifo(plain, 'w'), (e: SwitchboardError) => e.code === 'EINVAL');
    assert.throws(() => removeFifo(plain), (e: SwitchboardError) => e.code === 'EINVAL');
    createFifo(join(t.dir, 'f'));
    assert.throws(() => createFifo(join(t.dir, 'f')), (e: SwitchboardError) => e.code === 'EEXIST');
    assert.throws(() => createFifo(''), (e: SwitchboardError) => e.code === 'EINVAL');
    await assert.rejects(openFifo(join(t.dir, 'f'), 'x' as 'r'), (e: SwitchboardError) => e.code === 'EINVAL');
  } finally {
    t.remove();
  }
});

const fdCount = (): number => readdirSync('/proc/self/fd').length;

test('timing out or aborting an open leaves no file descriptor behind', async () => {
  const t = tempDir();
  const path = join(t.dir, 'count.fifo');
  try {
    createFifo(path);
    const before = fdCount();
    for (let i = 0; i < 5; i++) {
      await assert.rejects(openFifo(path, 'r', { timeoutMs: 20 }), (e: SwitchboardError) => e.code === 'ETIMEDOUT');
      await assert.rejects(openFifo(path, 'w', { timeoutMs: 20 }), (e: SwitchboardError) => e.code === 'ETIMEDOUT');
      const ac = new AbortController();
      const p = openFifo(path, 'r', { signal: ac.signal });
      setTimeout(() => ac.abort(), 10);
      await assert.rejects(p, (e: SwitchboardError) => e.code === 'EABORTED');
    }
    assert.equal(fdCount(), before);
  } finally {
    t.remove();
  }
});

test('an open that times out while the thread pool is busy still settles (and leaks nothing)', { timeout: 15_000 }, async () => {
  const t = tempDir();
  const pool = Number(process.env['UV_THREADPOOL_SIZE']) || 4;
  try {
    const before = fdCount();
    // every thread-pool thread blocks in open(2) on a FIFO nobody writes to
    const ac = new AbortController();
    const blockers: Promise<unknown>[] = [];
    for (let i = 0; i < pool; i++) {
      const path = join(t.dir, `blocker${i}`);
      createFifo(path);
      blockers.push(openFifo(path, 'r', { signal: ac.signal }).catch((e: unknown) => e));
    }
    await sleep(100);
    // this open waits in the queue: its timeout fires before its open(2) has started
    const late = join(t.dir, 'late');
    createFifo(late);
    const queued = openFifo(late, 'r', { timeoutMs: 50 }).then(
      () => 'opened',
      (e: SwitchboardError) => e.code,
    );
    await sleep(200);
    ac.abort();
    for (const b of await Promise.all(blockers)) assert.equal((b as SwitchboardError).code, 'EABORTED');
    assert.equal(await queued, 'ETIMEDOUT');
    assert.equal(fdCount(), before);
  } finally {
    t.remove();
  }
});

test('an open timeout too long for a Node timer (over 2^31-1 ms) waits for the other end, it does not fire at once', async () => {
  const t = tempDir();
  const path = join(t.dir, 'long.fifo');
  try {
    createFifo(path);
    const ac = new AbortController();
    const opening = openFifo(path, 'r', { timeoutMs: 2 ** 32, signal: ac.signal }).then(
      (c) => (c.destroy(), 'opened'),
      (e: SwitchboardError) => e.code,
    );
    const early = await Promise.race([opening, sleep(150).then(() => 'waiting')]);
    assert.equal(early, 'waiting');
    ac.abort();
    assert.equal(await opening, 'EABORTED');
  } finally {
    t.remove();
  }
});
