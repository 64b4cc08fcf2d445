/**
 * The embedded store's write-ahead journal: torn tails, compaction, and zero
 * loss of acknowledged registrations when the daemon is killed with SIGKILL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddedStore, NameClient, type RegisterInput } from '../../src/naming/index.js';
import { startChildDaemon } from './child-daemon.js';
import { contact, tempDir, until } from './helpers.js';

const input = (name: string, lease: string): RegisterInput => ({
  name,
  contact: contact(1),
  owner: { client: 't' },
  lease,
  tokenHash: `hash-${name}`,
  mode: 'new',
  now: Date.now(),
});

test('a torn journal tail is cut off; everything before it is recovered', async () => {
  const dir = tempDir();
  try {
    const s1 = await EmbeddedStore.open({ dataDir: dir });
    const lease = await s1.grantLease(10_000, true);
    for (let i = 0; i < 20; i++) await s1.register(input(`torn/${i}`, lease));
    await s1.unregister('torn/3', 'hash-torn/3');
    await s1.close();
    const journal = readdirSync(dir).find((f) => f.startsWith('journal-')) as string;
    const size = statSync(join(dir, journal)).size;
    // Half an entry, as if the daemon died inside write().
    appendFileSync(join(dir, journal), Buffer.from([0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, 0x7b]));
    const s2 = await EmbeddedStore.open({ dataDir: dir, restartGraceMs: 5000 });
    assert.equal(s2.recovery?.recovered, 19);
    assert.equal(s2.recovery?.tornTail, 'truncated entry');
    assert.equal(statSync(join(dir, journal)).size, size, 'the torn tail was truncated');
    assert.equal(await s2.get('torn/3'), undefined);
    const r = await s2.get('torn/7');
    assert.equal(r?.tokenHash, 'hash-torn/7');
    assert.ok(s2.leaseExpiresAt((r as { lease: string }).lease) !== undefined, 'recovered names wait on the restart lease');
    await s2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compaction keeps the state and bounds the journal', async () => {
  const dir = tempDir();
  try {
    const s1 = await EmbeddedStore.open({ dataDir: dir, compactBytes: 16 * 1024 });
    const lease = await s1.grantLease(10_000, true);
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => s1.register(input(`c/${round}/${i}`, lease))));
      if (round % 2 === 1) await Promise.all(Array.from({ length: 50 }, (_, i) => s1.unregister(`c/${round}/${i}`, `hash-c/${round}/${i}`)));
    }
    const info = s1.journalInfo;
    assert.ok(info !== undefined && info.compactions > 0, `compactions: ${JSON.stringify(info)}`);
    assert.ok(info.size < 64 * 1024);
    await s1.compact();
    await s1.register(input('c/after', lease));
    await s1.close();
    const files = readdirSync(dir).sort();
    assert.equal(files.filter((f) => f.startsWith('snapshot-')).length, 1, files.join(' '));
    const s2 = await EmbeddedStore.open({ dataDir: dir });
    assert.equal(s2.recovery?.recovered, 10 * 50 + 1);
    assert.equal((await s2.list('c/1/')).length, 0);
    assert.equal((await s2.list('c/0/')).length, 50);
    assert.ok(await s2.get('c/after'));
    await s2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a data directory in use by a live daemon is refused', async () => {
  const dir = tempDir();
  try {
    const d = await startChildDaemon({ listen: [`unix://${join(dir, 'a.sock')}`], dataDir: join(dir, 'data') });
    try {
      await assert.rejects(EmbeddedStore.open({ dataDir: join(dir, 'data') }), { code: 'EADDRINUSE', message: new RegExp(`process ${d.pid}`) });
    } finally {
      await d.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kill -9 loses no acknowledged registration; owners renew with their tokens after the restart', { timeout: 120_000 }, async () => {
  const dir = tempDir();
  const sock = `unix://${join(dir, 'ns.sock')}`;
  const opts = { listen: [sock], dataDir: join(dir, 'data'), graceMs: 500, restartGraceMs: 60_000 };
  let daemon = await startChildDaemon(opts);
  const owner = await NameClient.connect({ address: sock, clientName: 'owner', timeoutMs: 20_000 });
  const other = await NameClient.connect({ address: sock, clientName: 'other-owner', timeoutMs: 20_000, reconnect: false });
  try {
    const N = 2000;
    const tokens = new Map<string, string>();
    // Pipelined, so that many are in flight (group commit) when the last ack arrives.
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const c = i % 2 === 0 ? owner : other;
        const r = await c.register(`k9/${i}`, contact(2000 + (i % 1000)), i % 10 === 0 ? { ttlMs: 20_000 } : {});
        tokens.set(r.name, r.token);
      }),
    );
    assert.equal(tokens.size, N);
    let lost = 0;
    owner.on('lost', () => lost++);
    const reconnected = new Promise((r) => owner.once('reconnected', r));
    await daemon.kill('SIGKILL');
    daemon = await startChildDaemon(opts);

    // Every acknowledged name is there after the restart.
    const fresh = await NameClient.connect({ address: sock, clientName: 'auditor', timeoutMs: 20_000 });
    try {
      const names = new Set((await fresh.list('k9/')).map((r) => r.name));
      const missing = [...tokens.keys()].filter((n) => !names.has(n));
      assert.deepEqual(missing, [], `${missing.length} names lost`);

      // The first owner reconnects by itself and reclaims its names with their tokens.
      await reconnected;
      assert.equal(lost, 0);
      assert.equal(owner.held.size, N / 2);
      // The other owner's process "restarted": it renews with the tokens it kept.
      const again = await NameClient.connect({ address: sock, clientName: 'other-owner-restarted', timeoutMs: 20_000 });
      try {
        for (const [name, token] of tokens) {
          const i = Number(name.split('/')[1]);
          if (i % 2 === 1) {
            const r = await again.renew(name, token);
            assert.equal(r.owner.client, 'other-owner-restarted');
          }
        }
        await assert.rejects(again.renew('k9/1', 'not-the-token'), { code: 'ENOTOWNER' });
        // After the owners came back, their names are bound to live connections again.
        const rec = await fresh.lookup('k9/2');
        assert.equal(rec.leaseExpiresAt, undefined);
        assert.equal(rec.owner.client, 'owner');
        // Unclaimed names would wait for restartGraceMs; claimed ones stay as long as their owners live.
        await until(async () => (await fresh.list('k9/')).length === N, 5000);
      } finally {
        await again.close();
      }
    } finally {
      await fresh.close();
    }
  } finally {
    await owner.close();
    await other.close();
    await daemon.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
