import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  MAX_REGION_SIZE,
  createRegion,
  futexWait,
  futexWake,
  futexWaitAsync,
  mapFile,
  openRegion,
} from '../../src/shm/index.js';
import { SwitchboardError } from '../../src/errors.js';
import { cleanup, spawnChild, uniqueName } from './helpers.js';

const names: string[] = [];
const fresh = (tag: string): string => {
  const n = uniqueName(tag);
  names.push(n);
  return n;
};
after(() => cleanup(...names));

const code = (c: string) => (e: unknown) => e instanceof SwitchboardError && e.code === c;

test('a region is a SharedArrayBuffer shared by name with another process', async () => {
  const name = fresh('share');
  const r = createRegion(name, 4096);
  try {
    assert.ok(r.buffer instanceof SharedArrayBuffer);
    assert.equal(r.size, 4096);
    assert.ok(existsSync(`/dev/shm/sb.${name}`));
    const bytes = new Uint8Array(r.buffer);
    bytes.fill(1, 0, 100);
    const kid = spawnChild(['region-sum', name]);
    assert.deepEqual(await kid.next(), { event: 'sum', sum: 100, size: 4096 });
    await kid.exited;
    assert.equal(bytes[0], 42, 'the child wrote into our memory');
    // Atomics work on it
    const cells = new Int32Array(r.buffer);
    assert.equal(Atomics.add(cells, 100, 5), 0);
    assert.equal(Atomics.load(cells, 100), 5);
  } finally {
    r.close();
    r.unlink();
  }
});

test('a region handed to a child by file descriptor', async () => {
  const name = fresh('fd');
  const r = createRegion(name, 1000);
  try {
    new Uint8Array(r.buffer).fill(2, 0, 10);
    const kid = spawnChild(['region-sum', name, 'fd'], ['ignore', 'pipe', 'inherit', r.fd]);
    assert.deepEqual(await kid.next(), { event: 'sum', sum: 20, size: 1000 });
    await kid.exited;
  } finally {
    r.close();
    r.unlink();
  }
});

test('a region handed to a worker is the same memory', async () => {
  const name = fresh('worker');
  const r = createRegion(name, 64);
  try {
    const cells = new Int32Array(r.buffer);
    const w = new Worker(
      `const { workerData } = require('node:worker_threads');
       const c = new Int32Array(workerData);
       Atomics.store(c, 0, 99);`,
      { eval: true, workerData: r.buffer },
    );
    await new Promise((res, rej) => {
      w.on('exit', res);
      w.on('error', rej);
    });
    assert.equal(Atomics.load(cells, 0), 99);
  } finally {
    r.close();
    r.unlink();
  }
});

test('bad input gives typed errors', () => {
  const name = fresh('bad');
  const r = createRegion(name, 128);
  try {
    assert.throws(() => createRegion(name, 128), code('EEXIST'));
    assert.throws(() => createRegion(fresh('zero'), 0), code('EINVAL'));
    assert.throws(() => createRegion(fresh('neg'), -5), code('EINVAL'));
    assert.throws(() => createRegion(fresh('frac'), 1.5), code('EINVAL'));
    assert.throws(() => createRegion(fresh('huge'), MAX_REGION_SIZE + 1), code('ELIMIT'));
    assert.throws(() => createRegion('bad/name', 10), code('EINVAL'));
    assert.throws(() => createRegion('', 10), code('EINVAL'));
    assert.throws(() => openRegion(fresh('missing')), code('ENOENT'));
    assert.throws(() => openRegion({ fd: -1 }), code('EINVAL'));
    // a raw object is not mistaken for a region
    const raw = fresh('raw');
    const rr = createRegion(raw, 512, { raw: true });
    assert.throws(() => openRegion(raw), code('EPROTO'));
    const again = openRegion(raw, { raw: true });
    assert.equal(again.size, 512);
    assert.throws(() => openRegion(raw, { raw: true, size: 1024 }), code('EINVAL'));
    again.close();
    rr.close();
  } finally {
    r.close();
  }
  assert.throws(() => r.buffer, code('ECLOSED'));
});

test('too large for /dev/shm is ELIMIT, not a later SIGBUS', (t) => {
  const free = Number(readFileSync('/proc/meminfo', 'utf8').match(/MemTotal:\s+(\d+)/)?.[1] ?? 0) * 1024;
  if (free === 0) return t.skip('cannot read /proc/meminfo');
  const name = fresh('enospc');
  assert.throws(() => createRegion(name, Math.min(MAX_REGION_SIZE, free * 4)), code('ELIMIT'));
  assert.ok(!existsSync(`/dev/shm/sb.${name}`), 'a failed create leaves nothing behind');
});

test('non-exclusive create opens the existing region', () => {
  const name = fresh('reuse');
  const a = createRegion(name, 256);
  new Uint8Array(a.buffer)[3] = 7;
  const b = createRegion(name, 256, { exclusive: false });
  assert.equal(new Uint8Array(b.buffer)[3], 7);
  assert.throws(() => createRegion(name, 1 << 20, { exclusive: false }), code('EEXIST'));
  a.close();
  b.close();
});

test('unlinkOnLastDetach removes the name when the last process closes', () => {
  const name = fresh('last');
  const a = createRegion(name, 256, { unlinkOnLastDetach: true });
  const b = openRegion(name);
  assert.deepEqual(a.info()?.attached.map((x) => [x.pid, x.count]), [[process.pid, 2]]);
  a.close();
  assert.ok(existsSync(`/dev/shm/sb.${name}`), 'still attached once');
  b.close();
  assert.ok(!existsSync(`/dev/shm/sb.${name}`), 'unlinked at the last detach');
});

test('resize grows the region and other mappings see the new size', () => {
  const name = fresh('resize');
  const a = createRegion(name, 4096);
  const b = openRegion(name);
  try {
    new Uint8Array(a.buffer)[0] = 5;
    const grown = a.resize(3 * 4096);
    assert.equal(grown.byteLength, 3 * 4096);
    assert.equal(new Uint8Array(grown)[0], 5);
    new Uint8Array(grown)[2 * 4096] = 6;
    assert.equal(b.size, 4096);
    assert.equal(b.currentSize(), 3 * 4096);
    assert.equal(new Uint8Array(b.refresh())[2 * 4096], 6);
    assert.throws(() => a.resize(100), code('EUNSUPPORTED'));
  } finally {
    a.close();
    b.close();
    a.unlink();
  }
});

test('a mapped file persists and flushes with msync', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-shm-'));
  try {
    const path = join(dir, 'data.bin');
    const r = mapFile(path, { size: 8192 });
    new Uint8Array(r.buffer).set([1, 2, 3], 4096);
    r.flush();
    r.close();
    const onDisk = readFileSync(path);
    assert.equal(onDisk.length, 8192);
    assert.deepEqual([...onDisk.subarray(4096, 4099)], [1, 2, 3]);
    const again = mapFile(path);
    assert.equal(again.size, 8192);
    assert.equal(new Uint8Array(again.buffer)[4097], 2);
    again.close();
    assert.throws(() => mapFile(join(dir, 'missing')), code('ENOENT'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('futex wait/wake across processes, and bounds are checked', async () => {
  const name = fresh('futex');
  const r = createRegion(name, 64);
  try {
    const cells = new Int32Array(r.buffer);
    const kid = spawnChild(['futex-waiter', name]);
    // wait (async, the loop stays free) until the child is about to sleep
    while (Atomics.load(cells, 1) === 0) await futexWaitAsync(cells, 1, 0, { timeoutMs: 1000 });
    // Wake without changing the value until the wake reaches the sleeping child (it sleeps again).
    while (futexWake(cells, 0, 1) === 0) await new Promise((res) => setTimeout(res, 2));
    Atomics.store(cells, 0, 1);
    futexWake(cells, 0, 1);
    assert.deepEqual(await kid.next(), { event: 'woken', woken: true, value: 1 });
    await kid.exited;
    assert.equal(futexWait(cells, 0, 0, 0), 'not-equal');
    assert.equal(futexWait(cells, 0, 1, 5), 'timed-out');
    assert.equal(await futexWaitAsync(cells, 0, 1, { timeoutMs: 5 }), 'timed-out');
    assert.throws(() => futexWait(cells, 16, 0, 1), code('EINVAL'));
    assert.throws(() => futexWait(cells, -1, 0, 1), code('EINVAL'));
    assert.throws(() => futexWake(new Int32Array(4) as Int32Array, 0, 1), code('EINVAL'));
    assert.throws(() => futexWait(new Float64Array(2) as unknown as Int32Array, 0, 0, 1), code('EINVAL'));
    const ac = new AbortController();
    const p = futexWaitAsync(cells, 0, 1, { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, code('EABORTED'));
  } finally {
    r.close();
  }
});
