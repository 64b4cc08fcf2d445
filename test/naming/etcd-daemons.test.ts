/**
 * Many machines: two name-server daemons on one etcd see each other's names
 * and watches, and when one dies (SIGKILL) nothing is lost: its clients fail
 * over to the other daemon and claim their names back before the leases run out.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { NameClient, type WatchEvent } from '../../src/naming/index.js';
import { startChildDaemon, type ChildDaemon } from './child-daemon.js';
import { startEtcd, type EtcdInstance } from './etcd-fixture.js';
import { contact, tempDir, until } from './helpers.js';

let etcd: EtcdInstance | { skip: string };
const dir = tempDir();
const daemons: ChildDaemon[] = [];

before(async () => {
  etcd = await startEtcd();
  if ('skip' in etcd) console.log(`# skipping: ${etcd.skip}`);
});
after(async () => {
  for (const d of daemons) await d.kill('SIGKILL');
  if (!('skip' in etcd)) await etcd.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('two daemons on one etcd share names and watches; one dying loses nothing', { timeout: 120_000 }, async (t) => {
  if ('skip' in etcd) return t.skip(etcd.skip);
  const s1 = `unix://${join(dir, 'd1.sock')}`;
  const s2 = `unix://${join(dir, 'd2.sock')}`;
  const d1 = await startChildDaemon({ listen: [s1], store: etcd.endpoint, graceMs: 2000 });
  daemons.push(d1);
  const d2 = await startChildDaemon({ listen: [s2], store: etcd.endpoint, graceMs: 2000 });
  daemons.push(d2);

  // A prefers daemon 1 and fails over to daemon 2.
  const a = await NameClient.connect({ address: `${s1},${s2}`, clientName: 'A', timeoutMs: 10_000 });
  const b = await NameClient.connect({ address: s2, clientName: 'B', timeoutMs: 10_000 });
  try {
    assert.equal(a.address, s1);
    const events: WatchEvent[] = [];
    const w = b.watch('multi/', { prefix: true });
    await w.ready;
    void (async () => {
      for await (const ev of w) events.push(ev);
    })();

    const N = 50;
    for (let i = 0; i < N; i++) await a.register(`multi/a${i}`, contact(3000 + i), i % 5 === 0 ? { ttlMs: 3000 } : {});
    await b.register('multi/b', contact(4000));

    // Each daemon sees the names registered through the other.
    assert.equal((await b.list('multi/')).length, N + 1);
    assert.equal((await a.lookup('multi/b')).owner.client, 'B');
    assert.equal((await b.lookup('multi/a7')).owner.client, 'A');
    // Ownership holds across daemons.
    await assert.rejects(b.register('multi/a0', contact(1)), { code: 'ENAMETAKEN', message: /held by "A"/ });
    // Watches see changes made through the other daemon.
    await until(() => events.filter((e) => e.type === 'registered').length === N + 1, 10_000, 'cross-daemon watch events');

    // Daemon 1 dies.
    const back = new Promise((r) => a.once('reconnected', r));
    await d1.kill('SIGKILL');
    await back;
    assert.equal(a.address, s2, 'A failed over to daemon 2');
    assert.equal(a.held.size, N);

    // Well past the grace period and the TTL: nothing expired, nothing lost.
    await new Promise((r) => setTimeout(r, 5000));
    const names = (await b.list('multi/')).map((r) => r.name);
    assert.equal(names.length, N + 1);
    assert.deepEqual(events.filter((e) => e.type === 'expired' || e.type === 'removed'), []);
    for (const r of await b.list('multi/a')) assert.equal(r.owner.client, 'A');

    // Liveness still works through etcd: when A goes, its names expire for everyone.
    await a.close();
    await until(async () => (await b.list('multi/a')).length === 0, 15_000, 'A names expired');
    // The watch events travel etcd -> daemon 2 -> B apart from the list replies, so they may trail the list by a little.
    await until(() => events.filter((e) => e.type === 'expired').length >= N, 10_000, `${N} expired events`);
    assert.equal(events.filter((e) => e.type === 'expired').length, N);
    assert.deepEqual(events.filter((e) => e.type === 'removed'), []);
    assert.ok(await b.lookup('multi/b'));
    w.close();
  } finally {
    await a.close();
    await b.close();
  }
});
