import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NameClient, clientAddresses, defaultSocketPath, defaultTcpAddress, getServiceByName } from '../../src/naming/index.js';
import { ensurePrivateDir } from '../../src/naming/well-known.js';
import { contact, startTestServer, tempDir } from './helpers.js';

test('the well-known addresses (exercise 170)', () => {
  assert.equal(defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/switchboard/ns.sock');
  const uid = process.getuid?.() ?? 0;
  assert.equal(defaultSocketPath({}), `/tmp/switchboard-${uid}/ns.sock`);
  assert.equal(getServiceByName('switchboard-ns', 'tcp')?.port, 7117);
  assert.equal(defaultTcpAddress(), 'tcp://127.0.0.1:7117');
  assert.deepEqual(clientAddresses(undefined, { XDG_RUNTIME_DIR: '/r' }), ['unix:///r/switchboard/ns.sock', 'tcp://127.0.0.1:7117']);
  assert.deepEqual(clientAddresses(undefined, { SWITCHBOARD_NAMESERVER: 'tcp://127.0.0.1:1, unix:///x' }), ['tcp://127.0.0.1:1', 'unix:///x']);
  assert.deepEqual(clientAddresses('unix:///only'), ['unix:///only']);
});

test('the socket directory must be ours and closed to others', () => {
  const d = tempDir();
  try {
    const mine = join(d, 'switchboard');
    ensurePrivateDir(mine);
    const open = join(d, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    assert.throws(() => ensurePrivateDir(open), { code: 'EACCES', message: /writable by others/ });
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a client finds the daemon through $SWITCHBOARD_NAMESERVER', async () => {
  const ts = await startTestServer();
  const saved = process.env['SWITCHBOARD_NAMESERVER'];
  process.env['SWITCHBOARD_NAMESERVER'] = `unix:///nonexistent/ns.sock,${ts.tcp}`;
  try {
    const c = await NameClient.connect();
    assert.equal(c.address, ts.tcp, 'skipped the dead address, used the next');
    await c.register('env/found', contact(1));
    await c.close();
  } finally {
    if (saved === undefined) delete process.env['SWITCHBOARD_NAMESERVER'];
    else process.env['SWITCHBOARD_NAMESERVER'] = saved;
    await ts.close();
  }
  await assert.rejects(NameClient.connect({ address: 'unix:///nonexistent/ns.sock', timeoutMs: 500 }), { code: 'ECONNREFUSED', message: /no name server answers/ });
});

test('the client reconnects and re-registers after an in-process daemon restart', async () => {
  const dir = tempDir();
  const data = join(dir, 'data');
  let ts = await startTestServer({ dataDir: data }, dir);
  const c = await NameClient.connect({ address: ts.unix, clientName: 'survivor' });
  const w = c.watch('restart/', { prefix: true });
  await w.ready;
  try {
    await c.register('restart/me', contact(1));
    const back = new Promise((r) => c.once('reconnected', r));
    await ts.server.close();
    ts = await startTestServer({ dataDir: data }, dir);
    await back;
    const r = await c.lookup('restart/me');
    assert.equal(r.leaseExpiresAt, undefined, 'reclaimed by the live connection');
    // The watch came back too.
    const other = await NameClient.connect({ address: ts.unix });
    await other.register('restart/other', contact(2));
    const first = await w.next();
    assert.equal(`${first.value?.type} ${first.value?.record.name}`, 'registered restart/me');
    const ev = await w.next();
    assert.equal(`${ev.value?.type} ${ev.value?.record.name}`, 'registered restart/other');
    await other.close();
  } finally {
    w.close();
    await c.close();
    await ts.close();
  }
});
