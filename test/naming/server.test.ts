import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { NameClient, NameTakenError, connectByName, serve, type WatchEvent } from '../../src/naming/index.js';
import { connect } from '../../src/transport/index.js';
import { contact, startTestServer, until, type TestServer } from './helpers.js';

describe('name server', () => {
  let ts: TestServer;
  const clients: NameClient[] = [];
  const client = async (name: string, address?: string): Promise<NameClient> => {
    const c = await NameClient.connect({ address: address ?? ts.unix, clientName: name, timeoutMs: 5000 });
    clients.push(c);
    return c;
  };
  before(async () => {
    ts = await startTestServer({ graceMs: 300 });
  });
  after(async () => {
    for (const c of clients) await c.close();
    await ts.close();
  });

  test('the Unix socket is created 0600', () => {
    const path = ts.unix.slice('unix://'.length);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  test('register, lookup (over Unix and TCP), list with a prefix, unregister', async () => {
    const a = await client('alpha');
    const b = await client('beta', ts.tcp);
    const reg = await a.register('svc/db', { ...contact(5432, 'oncrpc'), program: 100003, version: 3, metadata: { role: 'primary' } });
    assert.equal(reg.name, 'svc/db');
    assert.match(reg.token, /^[A-Za-z0-9_-]{20,}$/);
    await a.register('svc/web', contact(8080));
    await a.register('svcx', contact(1));
    const r = await b.lookup('svc/db');
    assert.deepEqual(r.contact, { address: 'tcp://127.0.0.1:5432', protocol: 'oncrpc', program: 100003, version: 3, metadata: { role: 'primary' } });
    assert.equal(r.owner.client, 'alpha');
    assert.equal(r.owner.pid, process.pid, 'pid from SO_PEERCRED');
    assert.equal(r.leaseExpiresAt, undefined, 'held by a live connection');
    assert.deepEqual((await b.list('svc/')).map((x) => x.name), ['svc/db', 'svc/web']);
    await a.unregister('svc/web');
    await assert.rejects(b.lookup('svc/web'), { code: 'ENOENT', name: 'NameNotFoundError' });
    await a.unregister('svc/db');
    await a.unregister('svcx');
  });

  test('a taken name: ENAMETAKEN says who and since when; replace needs the token', async () => {
    const a = await client('first-owner');
    const b = await client('second');
    const { token } = await a.register('printer', contact(631));
    const since = (await b.lookup('printer')).since;
    await assert.rejects(b.register('printer', contact(632)), (err: unknown) => {
      assert.ok(err instanceof NameTakenError);
      assert.equal(err.code, 'ENAMETAKEN');
      assert.equal(err.holder.client, 'first-owner');
      assert.equal(err.holder.pid, process.pid);
      assert.equal(err.since, since);
      assert.match(err.message, /held by "first-owner" \(pid \d+, uid \d+\) since \d{4}-/);
      return true;
    });
    await assert.rejects(b.register('printer', contact(632), { replace: 'not-the-token' }), { code: 'ENOTOWNER' });
    await assert.rejects(b.unregister('printer'), { code: 'ENOTOWNER' });
    await assert.rejects(b.unregister('printer', 'wrong'), { code: 'ENOTOWNER' });
    await assert.rejects(b.renew('printer', 'wrong'), { code: 'ENOTOWNER' });
    const taken = await b.register('printer', contact(632), { replace: token });
    assert.notEqual(taken.token, token);
    const now = await a.lookup('printer');
    assert.equal(now.owner.client, 'second');
    assert.equal(now.contact.address, 'tcp://127.0.0.1:632');
    // The old token no longer works.
    await assert.rejects(a.unregister('printer', token), { code: 'ENOTOWNER' });
    await b.unregister('printer');
  });

  test('registering a name this client holds updates its contact (same token)', async () => {
    const a = await client('updater');
    const w = a.watch('upd/x');
    await w.ready;
    const first = await a.register('upd/x', contact(1));
    const second = await a.register('upd/x', contact(2));
    assert.equal(second.token, first.token);
    assert.equal((await a.lookup('upd/x')).contact.address, 'tcp://127.0.0.1:2');
    assert.deepEqual([(await w.next()).value?.type, (await w.next()).value?.type], ['registered', 'replaced']);
    w.close();
    await a.unregister('upd/x');
  });

  test('watch sees registered, replaced, removed and expired; prefix watches', async () => {
    const w = await client('watcher');
    const a = await client('owner');
    const b = await client('taker');
    const one = w.watch('w/one');
    const all = w.watch('w/', { prefix: true });
    await Promise.all([one.ready, all.ready]);
    const seen: WatchEvent[] = [];
    const seenOne: WatchEvent[] = [];
    void (async () => {
      for await (const ev of all) seen.push(ev);
    })();
    void (async () => {
      for await (const ev of one) seenOne.push(ev);
    })();
    const { token } = await a.register('w/one', contact(1));
    await b.register('w/one', contact(2), { replace: token });
    await b.unregister('w/one');
    await a.register('w/two', contact(3), { ttlMs: 1000 });
    await a.close(); // its TTL name goes after the grace period
    await until(() => seen.length >= 4, 8000, 'four events');
    assert.deepEqual(seen.map((e) => `${e.type} ${e.record.name}`), ['registered w/one', 'replaced w/one', 'removed w/one', 'registered w/two', 'expired w/two'].slice(0, seen.length));
    await until(() => seen.length === 5, 8000, 'expiry event');
    assert.deepEqual(seenOne.map((e) => e.type), ['registered', 'replaced', 'removed']);
    one.close();
    all.close();
  });

  test('a lease ends when the owner connection closes, after the grace period', async () => {
    const a = await client('mortal');
    const b = await client('observer');
    await a.register('mortal/name', contact(9));
    await a.close();
    // Still there for the grace period, with a lease that now counts down; gone soon after.
    let exp: number | undefined;
    await until(async () => {
      const r = await b.lookup('mortal/name').catch(() => undefined);
      exp = r?.leaseExpiresAt;
      return r === undefined || exp !== undefined;
    }, 5000, 'lease counting down');
    if (exp !== undefined) assert.ok(exp <= Date.now() + 300 + 50, `expires within the grace period: ${exp - Date.now()} ms`);
    await until(async () => (await b.list('mortal/')).length === 0, 5000, 'name expired');
  });

  test('a TTL lease lasts while the client renews it, and ends without renewal', async () => {
    const a = await client('renewer');
    const b = await client('observer2');
    await a.register('ttl/kept', contact(1), { ttlMs: 1000 });
    await new Promise((r) => setTimeout(r, 2500));
    const kept = await b.lookup('ttl/kept');
    assert.ok(kept.leaseExpiresAt !== undefined);
    // A raw client that registers with a TTL and never renews, while staying connected.
    const raw = await NameClient.connect({ address: ts.unix, clientName: 'lazy' });
    clients.push(raw);
    await raw.register('ttl/lazy', contact(2), { ttlMs: 1000 });
    (raw as unknown as { owned: Map<string, { timer?: NodeJS.Timeout }> }).owned.forEach((o) => clearInterval(o.timer));
    await until(async () => (await b.list('ttl/lazy')).length === 0, 6000, 'TTL expiry');
    assert.ok(await b.lookup('ttl/kept'));
  });

  test('waitFor resolves when someone registers, and times out otherwise', async () => {
    const a = await client('waiter');
    const b = await client('late');
    const p = a.waitFor('late/service', { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    await b.register('late/service', contact(77));
    assert.equal((await p).contact.address, 'tcp://127.0.0.1:77');
    // Already there: at once.
    assert.equal((await a.waitFor('late/service')).owner.client, 'late');
    await assert.rejects(a.waitFor('never/there', { timeoutMs: 200 }), { code: 'ETIMEDOUT' });
    const ac = new AbortController();
    const q = a.waitFor('never/there', { signal: ac.signal });
    ac.abort();
    await assert.rejects(q, { code: 'EABORTED' });
  });

  test('limits: name length, metadata size, names per client, with clear errors', async () => {
    const small = await startTestServer({ limits: { maxNamesPerClient: 3 } });
    try {
      const c = await NameClient.connect({ address: small.unix });
      try {
        await assert.rejects(c.register('n'.repeat(300), contact(1)), { code: 'ELIMIT', message: /300 bytes long; the limit is 255/ });
        await assert.rejects(c.register('meta', { ...contact(1), metadata: { k: 'v'.repeat(5000) } }), { code: 'ELIMIT', message: /metadata .* limit is 4096/ });
        await assert.rejects(c.register('bad name', contact(1)), { code: 'EINVAL' });
        await assert.rejects(c.register('ttl', contact(1), { ttlMs: 5 }), { code: 'ELIMIT', message: /ttlMs/ });
        for (let i = 0; i < 3; i++) await c.register(`lim/${i}`, contact(i));
        await assert.rejects(c.register('lim/3', contact(3)), { code: 'ELIMIT', message: /at most 3 names/ });
        // Re-registering a name it holds does not count twice.
        await c.unregister('lim/0');
        await c.register('lim/3', contact(3));
        // The connection survived all of that.
        assert.equal((await c.list('lim/')).length, 3);
      } finally {
        await c.close();
      }
    } finally {
      await small.close();
    }
  });

  test('a client that registers 10,000 names and disconnects leaves none after the grace period', async () => {
    const c = await NameClient.connect({ address: ts.unix, clientName: 'hoarder', timeoutMs: 60_000 });
    const obs = await client('counter');
    const N = 10_000;
    const batch = 500;
    for (let i = 0; i < N; i += batch) {
      await Promise.all(Array.from({ length: batch }, (_, k) => c.register(`bulk/${i + k}`, contact(1000 + ((i + k) % 1000)))));
    }
    assert.equal((await obs.list('bulk/')).length, N);
    await c.close();
    await until(async () => (await obs.list('bulk/')).length === 0, 15_000, 'all 10,000 names gone');
    assert.ok(!ts.server.clients().some((k) => k.client === 'hoarder'));
  });

  test('serve() and connectByName(): two processes meet by a string', async () => {
    const svc = await serve(
      'echo/service',
      (ch) => {
        void (async () => {
          for await (const chunk of ch) await ch.write(chunk);
          await ch.close();
        })();
      },
      { clientOptions: { address: ts.unix } },
    );
    try {
      const ch = await connectByName('echo/service', { clientOptions: { address: ts.tcp } });
      await ch.write(new TextEncoder().encode('hello by name'));
      const got = await ch.read();
      assert.equal(new TextDecoder().decode(got ?? new Uint8Array()), 'hello by name');
      await ch.close();
      await assert.rejects(connectByName('echo/nobody', { clientOptions: { address: ts.unix } }), { code: 'ENOENT' });
    } finally {
      await svc.close();
    }
  });

  test('a client that speaks garbage gets an error frame and is closed', async () => {
    const ch = await connect(ts.tcp);
    await ch.write(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const chunks: Uint8Array[] = [];
    for (;;) {
      const c = await ch.read().catch(() => null);
      if (c === null) break;
      chunks.push(c);
    }
    const all = Buffer.concat(chunks);
    // greeting frame, then an error frame with code EMSGSIZE (the "length" 'GET ' is huge)
    assert.match(all.toString('latin1'), /"code":"EMSGSIZE"/);
    await ch.close();
  });
});

describe('shared secret on TCP', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ secret: 's3cret', socketMode: 0o660, socketGroup: process.getgid?.() ?? 0 });
  });
  after(async () => ts.close());

  test('TCP clients without the secret are refused with EACCES; with it they work', async () => {
    await assert.rejects(NameClient.connect({ address: ts.tcp, reconnect: false }), { code: 'EACCES' });
    await assert.rejects(NameClient.connect({ address: ts.tcp, secret: 'wrong', reconnect: false }), { code: 'EACCES' });
    const ok = await NameClient.connect({ address: ts.tcp, secret: 's3cret' });
    await ok.register('secret/ok', contact(1));
    await ok.close();
  });

  test('Unix-socket clients need no secret; socketMode 0660 and socketGroup let a group in', async () => {
    const st = statSync(ts.unix.slice(7));
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.gid, process.getgid?.());
    const dir = statSync(ts.unix.slice(7, ts.unix.lastIndexOf('/')));
    assert.equal(dir.mode & 0o010, 0o010, 'the group can enter the socket directory');
    assert.equal(dir.gid, process.getgid?.());
    const c = await NameClient.connect({ address: ts.unix });
    await c.ping();
    await c.close();
  });
});
