import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Condition, Mutex, NamedSemaphore, OwnerDeadError, Semaphore, createRegion } from '../../src/shm/index.js';
import { SwitchboardError } from '../../src/errors.js';
import { cleanup, spawnChild, startWorker, uniqueName, workerExit } from './helpers.js';

const names: string[] = [];
const fresh = (tag: string): string => {
  const n = uniqueName(tag);
  names.push(n);
  return n;
};
after(() => {
  cleanup(...names);
  for (const n of names) NamedSemaphore.unlink(n);
});
const code = (c: string) => (e: unknown) => e instanceof SwitchboardError && e.code === c;

test('a mutex keeps a non-atomic counter exact across processes', async () => {
  const name = fresh('mutex');
  const r = createRegion(name, 64);
  try {
    const kids = [spawnChild(['mutex-count', name, '3000']), spawnChild(['mutex-count', name, '3000'])];
    const m = new Mutex(r, 0);
    const counter = new Int32Array(r.buffer, 16, 1);
    for (let i = 0; i < 1000; i++) {
      await m.lockAsync();
      counter[0] = (counter[0] as number) + 1;
      m.unlock();
    }
    for (const k of kids) assert.deepEqual(await k.next(), { event: 'done' });
    await Promise.all(kids.map((k) => k.exited));
    assert.equal(counter[0], 7000);
    assert.equal(m.owner, 0);
  } finally {
    r.close();
  }
});

test('a holder killed with SIGKILL: the next locker gets EOWNERDEAD and can repair', async () => {
  const name = fresh('dead');
  const r = createRegion(name, 64);
  try {
    const kid = spawnChild(['mutex-hold', name]);
    assert.deepEqual(await kid.next(), { event: 'locked' });
    const m = new Mutex(r, 0);
    assert.equal(m.tryLock(), false);
    assert.throws(() => m.lock({ timeoutMs: 30 }), code('ETIMEDOUT'));
    kid.kill('SIGKILL');
    await kid.exited;
    let err: unknown;
    try {
      await m.lockAsync({ timeoutMs: 5000, livenessMs: 20 });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof OwnerDeadError, String(err));
    assert.equal(err.code, 'EOWNERDEAD');
    assert.equal(err.deadOwner, kid.proc.pid);
    assert.equal(m.isConsistent, false);
    // we hold it now; unlocking without repair keeps it inconsistent
    m.unlock();
    assert.throws(() => m.lock(), (e) => e instanceof OwnerDeadError);
    m.markConsistent();
    m.unlock();
    m.lock();
    assert.equal(m.isConsistent, true);
    m.unlock();
    assert.throws(() => m.unlock(), code('ENOTOWNER'));
  } finally {
    r.close();
  }
});

test('sync lock on a mutex this thread holds is refused instead of deadlocking', () => {
  const m = Mutex.init(new SharedArrayBuffer(16), 0);
  m.lock();
  assert.throws(() => m.lock(), code('EINVAL'));
  m.unlock();
  assert.throws(() => new Mutex(new SharedArrayBuffer(16), 4), code('EINVAL'));
  assert.throws(() => new Mutex(new SharedArrayBuffer(16), 2), code('EINVAL'));
});

test('mutex and semaphore between worker threads', async () => {
  const sab = new SharedArrayBuffer(64);
  Semaphore.init(sab, 16, 0);
  const exits = [0, 1].map(() => workerExit(startWorker({ role: 'mutex-count', sab, count: 2000 })));
  const s = new Semaphore(sab, 16);
  await s.waitAsync({ timeoutMs: 20_000 });
  await s.waitAsync({ timeoutMs: 20_000 });
  assert.deepEqual(await Promise.all(exits), [0, 0]);
  assert.equal(new Int32Array(sab, 32, 1)[0], 4000);
});

test('a worker terminated while holding a mutex: EOWNERDEAD in the main thread', async () => {
  const sab = new SharedArrayBuffer(64);
  const w = startWorker({ role: 'mutex-hold', sab });
  const gone = workerExit(w);
  await new Promise((res) => w.once('message', res));
  const m = new Mutex(sab, 0);
  assert.equal(m.tryLock(), false);
  await w.terminate();
  await gone;
  await assert.rejects(m.lockAsync({ livenessMs: 20, timeoutMs: 5000 }), (e) => e instanceof OwnerDeadError);
  m.markConsistent();
  m.unlock();
  assert.equal(m.tryLock(), true);
  m.unlock();
});

test('semaphore across processes, with timeouts', async () => {
  const name = fresh('sem');
  const r = createRegion(name, 64);
  try {
    const s = Semaphore.init(r, 0, 0);
    assert.equal(s.tryWait(), false);
    assert.throws(() => s.wait(20), code('ETIMEDOUT'));
    await assert.rejects(s.waitAsync({ timeoutMs: 20 }), code('ETIMEDOUT'));
    const kid = spawnChild(['sem-wait', name, '2']);
    await new Promise((res) => setTimeout(res, 50));
    s.post();
    s.post();
    assert.deepEqual(await kid.next(), { event: 'acquired' });
    await kid.exited;
    assert.equal(s.value, 0);
    s.post(3);
    s.wait();
    assert.equal(s.value, 2);
    assert.throws(() => s.post(0), code('EINVAL'));
  } finally {
    r.close();
  }
});

test('condition variable across processes', async () => {
  const name = fresh('cond');
  const r = createRegion(name, 64);
  try {
    const m = new Mutex(r, 0);
    const c = new Condition(r, 16);
    const flag = new Int32Array(r.buffer, 32, 1);
    await m.lockAsync();
    const kid = spawnChild(['cond-signal', name]);
    while (flag[0] !== 7) await c.waitAsync(m, { timeoutMs: 10_000 });
    m.unlock();
    assert.deepEqual(await kid.next(), { event: 'signalled' });
    await kid.exited;
    m.lock();
    assert.throws(() => c.wait(m, 20), code('ETIMEDOUT'));
    assert.equal(m.owner !== 0, true, 'the mutex is held again after a timeout');
    m.unlock();
  } finally {
    r.close();
  }
});

test('named POSIX semaphores shared with another process', async () => {
  const name = fresh('nsem');
  const s = NamedSemaphore.open(name, { create: true, exclusive: true, value: 0 });
  try {
    assert.throws(() => NamedSemaphore.open(name, { create: true, exclusive: true }), code('EEXIST'));
    assert.throws(() => NamedSemaphore.open(fresh('nosem')), code('ENOENT'));
    const kid = spawnChild(['named-sem', name]);
    s.post();
    assert.deepEqual(await kid.next(), { event: 'got' });
    await kid.exited;
    await s.waitAsync({ timeoutMs: 5000 });
    assert.equal(s.value, 0);
    assert.equal(s.tryWait(), false);
    assert.throws(() => s.wait(20), code('ETIMEDOUT'));
    await assert.rejects(s.waitAsync({ timeoutMs: 20 }), code('ETIMEDOUT'));
    const ac = new AbortController();
    const p = s.waitAsync({ signal: ac.signal });
    ac.abort();
    await assert.rejects(p, code('EABORTED'));
  } finally {
    s.close();
    assert.equal(NamedSemaphore.unlink(name), true);
  }
  assert.throws(() => s.post(), code('ECLOSED'));
});
