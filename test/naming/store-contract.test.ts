/**
 * One contract, three stores: embedded in memory, embedded with a journal,
 * and etcd (a real etcd started for the test; skipped with the reason if it
 * cannot start).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore, EtcdStore, NameTakenError, NotOwnerError, type NameStore, type WatchEvent, type RegisterInput } from '../../src/naming/index.js';
import { startEtcd, type EtcdInstance } from './etcd-fixture.js';

const contact = (port: number) => ({ address: `tcp://127.0.0.1:${port}`, protocol: 'switchboard-rpc' });
const owner = { client: 'contract-test', pid: process.pid };

function input(name: string, lease: string, over: Partial<RegisterInput> = {}): RegisterInput {
  return { name, contact: contact(5000), owner, lease, tokenHash: 'h1', mode: 'new', now: Date.now(), ...over };
}

async function until(cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

function contract(kind: string, open: () => Promise<NameStore | { skip: string }>): void {
  describe(`store contract: ${kind}`, () => {
    let store: NameStore | undefined;
    let skip: string | undefined;
    const events: WatchEvent[] = [];
    let n = 0;
    const fresh = (): string => `${kind.replace(/\W/g, '')}-n${n++}`;

    before(async () => {
      const s = await open();
      if ('skip' in s) skip = s.skip;
      else {
        store = s;
        store.subscribe((e) => events.push(e));
      }
    });
    after(async () => {
      await store?.close();
    });
    const it = (name: string, fn: (s: NameStore) => Promise<void>) =>
      test(name, async (t) => {
        if (store === undefined) return t.skip(skip ?? 'store did not open');
        await fn(store);
      });

    it('register, get, list by prefix', async (s) => {
      const lease = await s.grantLease(30_000, true);
      const a = fresh();
      const r = await s.register(input(`${a}/x`, lease));
      assert.equal(r.event, 'registered');
      await s.register(input(`${a}/y`, lease));
      await s.register(input(`${a}z`, lease));
      const got = await s.get(`${a}/x`);
      assert.equal(got?.contact.address, 'tcp://127.0.0.1:5000');
      assert.equal(got?.tokenHash, 'h1');
      assert.deepEqual((await s.list(`${a}/`)).map((x) => x.name), [`${a}/x`, `${a}/y`]);
      assert.equal(await s.get(`${a}/nope`), undefined);
      await until(() => events.some((e) => e.type === 'registered' && e.record.name === `${a}/x`));
    });

    it('a taken name says who holds it and since when', async (s) => {
      const lease = await s.grantLease(30_000, true);
      const a = fresh();
      const first = await s.register(input(a, lease, { now: 1_700_000_000_000 }));
      await assert.rejects(s.register(input(a, lease, { tokenHash: 'h2' })), (err: unknown) => {
        assert.ok(err instanceof NameTakenError);
        assert.equal(err.code, 'ENAMETAKEN');
        assert.deepEqual(err.holder, owner);
        assert.equal(err.since, first.record.since);
        assert.match(err.message, /contract-test/);
        assert.match(err.message, /2023-11-14/);
        return true;
      });
    });

    it('reclaim with the same token keeps "since"; another token is refused', async (s) => {
      const lease = await s.grantLease(30_000, true);
      const lease2 = await s.grantLease(30_000, true);
      const a = fresh();
      const first = await s.register(input(a, lease));
      const again = await s.register(input(a, lease2, { mode: 'reclaim', now: first.record.since + 5000 }));
      assert.equal(again.event, undefined);
      assert.equal(again.record.since, first.record.since);
      assert.equal((await s.get(a))?.lease, lease2);
      const moved = await s.register(input(a, lease2, { mode: 'reclaim', contact: contact(6000) }));
      assert.equal(moved.event, 'replaced');
      await assert.rejects(s.register(input(a, lease2, { mode: 'reclaim', tokenHash: 'other' })), { code: 'ENAMETAKEN' });
      // A reclaim of a name that has gone registers it again.
      const b = fresh();
      assert.equal((await s.register(input(b, lease, { mode: 'reclaim' }))).event, 'registered');
    });

    it('replace needs the holder token', async (s) => {
      const lease = await s.grantLease(30_000, true);
      const a = fresh();
      await s.register(input(a, lease));
      await assert.rejects(s.register(input(a, lease, { mode: 'replace', tokenHash: 'h9', expectTokenHash: 'wrong' })), (e: unknown) => e instanceof NotOwnerError);
      const r = await s.register(input(a, lease, { mode: 'replace', tokenHash: 'h9', expectTokenHash: 'h1', contact: contact(7000) }));
      assert.equal(r.event, 'replaced');
      assert.equal((await s.get(a))?.tokenHash, 'h9');
      await until(() => events.some((e) => e.type === 'replaced' && e.record.name === a && e.record.contact.address.endsWith(':7000')));
    });

    it('unregister checks the token, then removes', async (s) => {
      const lease = await s.grantLease(30_000, true);
      const a = fresh();
      await s.register(input(a, lease));
      await assert.rejects(s.unregister(a, 'wrong'), { code: 'ENOTOWNER' });
      await s.unregister(a, 'h1');
      assert.equal(await s.get(a), undefined);
      await assert.rejects(s.unregister(a, 'h1'), { code: 'ENOENT' });
      await until(() => events.some((e) => e.type === 'removed' && e.record.name === a));
      assert.ok(!events.some((e) => e.type === 'expired' && e.record.name === a));
    });

    it('an unpinned lease that is not kept alive expires its names', async (s) => {
      const lease = await s.grantLease(1000, false);
      const a = fresh();
      await s.register(input(a, lease, { ttlMs: 1000 }));
      assert.equal((await s.get(a))?.ttlMs, 1000);
      await until(() => events.some((e) => e.type === 'expired' && e.record.name === a), 10_000);
      assert.equal(await s.get(a), undefined);
      assert.equal(await s.keepAlive(lease), false);
    });

    it('a pinned lease holds; unpinned it runs out; revoke ends it at once', async (s) => {
      const pinned = await s.grantLease(1000, true);
      const a = fresh();
      await s.register(input(a, pinned));
      await new Promise((r) => setTimeout(r, 2500));
      assert.ok(await s.get(a), 'pinned lease kept the name');
      assert.equal(await s.keepAlive(pinned), true);
      await s.unpinLease(pinned);
      await until(() => events.some((e) => e.type === 'expired' && e.record.name === a), 10_000);

      const other = await s.grantLease(30_000, true);
      const b = fresh();
      await s.register(input(b, other));
      await s.revokeLease(other);
      await until(() => events.some((e) => e.type === 'expired' && e.record.name === b));
      assert.equal(await s.get(b), undefined);
    });

    it('register on an ended lease fails', async (s) => {
      const lease = await s.grantLease(30_000, true);
      await s.revokeLease(lease);
      await assert.rejects(s.register(input(fresh(), lease)));
    });
  });
}

const dirs: string[] = [];
let etcd: EtcdInstance | { skip: string } | undefined;
after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (etcd !== undefined && !('skip' in etcd)) await etcd.stop();
});

contract('embedded (memory)', () => EmbeddedStore.open());
contract('embedded (journal)', () => {
  const d = mkdtempSync(join(tmpdir(), 'sb-ns-'));
  dirs.push(d);
  return EmbeddedStore.open({ dataDir: d });
});
contract('etcd', async () => {
  etcd = await startEtcd();
  if ('skip' in etcd) {
    console.log(`# skipping etcd store contract: ${etcd.skip}`);
    return etcd;
  }
  return EtcdStore.open({ endpoints: etcd.endpoint });
});
