/** `switchboard run`: processes and threads, names cleaned up, a dead rank named in the exit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startNameServer, NameClient } from '../../src/naming/index.js';
import { spawn } from 'node:child_process';
import { APP, CLI, killLauncherOfHangingRanks, runCli } from './launch-helpers.js';

test('run -n 3 starts three processes that meet over Unix sockets', async () => {
  const r = await runCli(['run', '-n', '3', APP]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').sort();
  assert.equal(lines.length, 3, r.stdout);
  for (let i = 0; i < 3; i++) assert.match(lines[i]!, new RegExp(`^rank ${i}/3 via unix sum=6`));
});

test('a program that does not exist is one clear error (exit 1), before any rank starts', async () => {
  const r = await runCli(['run', '-n', '2', '/nonexistent/app.js']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\/nonexistent\/app\.js: no such file/);
  assert.doesNotMatch(r.stderr, /rank \d/, 'no rank was started');
});

test('run --threads runs the ranks as worker threads', async () => {
  const r = await runCli(['run', '-n', '2', '--threads', APP]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rank 0\/2 via ring sum=3/, 'threads talk over shared-memory rings');
  assert.match(r.stdout, /rank 1\/2 via ring sum=3/);
});

test('a rank that dies fails the job: exit status of that rank, named on stderr', async () => {
  const r = await runCli(['run', '-n', '3', '--grace', '3000', APP, 'die']);
  assert.equal(r.code, 9, r.stderr);
  assert.match(r.stderr, /rank 1 \(pid \d+\) died: exited with code 9/);
  assert.match(r.stderr, /PeerLostError: rank 1 is gone/, 'the other ranks saw a typed error');
  const t = await runCli(['run', '-n', '3', '--threads', APP, 'die']);
  assert.equal(t.code, 1);
  assert.match(t.stderr, /rank 1 died/);
});

test('ranks register under mp/<job>/<rank> on the given name server and withdraw their names', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbmp-ns-'));
  const server = await startNameServer({ listen: [`unix://${join(dir, 'ns.sock')}`], graceMs: 0 });
  const client = await NameClient.connect({ address: server.addresses[0]!, reconnect: false });
  const seen = new Set<string>();
  const watch = setInterval(() => {
    client.list('mp/').then(
      (recs) => recs.forEach((x) => seen.add(x.name)),
      () => undefined,
    );
  }, 5);
  try {
    const { launch } = await import('../../src/mp/launch.js');
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const res = await launch({ n: 3, app: APP, nameServer: server.addresses[0]!, stdout: sink, stderr: sink });
    assert.equal(res.code, 0);
    assert.equal(res.nameServer, server.addresses[0]);
    clearInterval(watch);
    assert.deepEqual(await client.list('mp/'), [], 'no names left behind');
    for (const name of seen) assert.match(name, /^mp\/[0-9a-f]{12}\/[01]$/, 'ranks 0 and 1 register (rank 2 only connects)');
  } finally {
    clearInterval(watch);
    await client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('output into a pipe whose reader has gone (run ... | head -1): the ranks\' output is dropped, the job ends normally (exit 0, no EPIPE crash)', async () => {
  const child = spawn(process.execPath, [...process.execArgv, CLI, 'run', '-n', '2', APP, 'chatty'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // read the first line, then close our end, as head -1 does
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
});

test('launch(): an output stream that fails (EPIPE) stops receiving rank output; the job still finishes', async () => {
  const { launch } = await import('../../src/mp/launch.js');
  let writes = 0;
  const broken = new Writable({
    write: (_c, _e, cb) => {
      writes++;
      cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    },
  });
  const res = await launch({ n: 2, app: APP, args: ['chatty'], stdout: broken, stderr: new Writable({ write: (_c, _e, cb) => cb() }) });
  assert.equal(res.code, 0);
  assert.ok(writes >= 1 && writes < 50, `writes after the failure were dropped (${writes} reached the stream)`);
});

test('ranks stop when their launcher is killed (SIGKILL): the stdin pipe it holds for each of them ends', async () => {
  const { pids, goneMs } = await killLauncherOfHangingRanks(['run', '-n', '3', '--transport', 'unix'], 3);
  assert.equal(pids.length, 3);
  assert.ok(goneMs < 10_000, 'every rank process was gone within 10 s of its launcher');
});
