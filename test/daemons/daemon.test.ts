import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PidFileLockedError,
  acquirePidFile,
  fingerQuery,
  readPidFile,
  readProcIds,
  readProcSession,
  runDaemon,
  type DaemonServer,
} from '../../src/daemons/index.js';
import { makeUsersDir, runCli, runCliToEnd } from './helpers.js';

let root: string;
let usersDir: string;
const isRoot = process.getuid?.() === 0;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'sb-daemon-'));
  chmodSync(root, 0o755);
  usersDir = makeUsersDir(join(root, 'users'), [
    { login: 'alice', meta: { name: 'Alice Liddell', sessions: [{ line: 'pts/3', host: 'h', loginTime: 1764000000, idleSeconds: 0 }] } },
    { login: 'bob', meta: { name: 'Bob Smith' } },
  ]);
});
after(() => rmSync(root, { recursive: true, force: true }));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True once the listening socket's accept queue is empty (Recv-Q of `ss -ltn`): the daemon holds every connection made so far. */
function acceptQueueEmpty(port: number): boolean {
  const r = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  const recvQ = Number(r.stdout.trim().split(/\s+/)[1]);
  return r.status === 0 && recvQ === 0;
}

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('pidfile: a second holder is refused while the first lives; release removes the file', () => {
  const path = join(root, 'a.pid');
  const first = acquirePidFile(path);
  assert.equal(first.method, 'flock');
  assert.equal(readPidFile(path), process.pid);
  assert.throws(() => acquirePidFile(path), (err: unknown) => err instanceof PidFileLockedError && err.code === 'EEXIST' && err.holder === process.pid);
  first.release();
  assert.equal(existsSync(path), false);
  const again = acquirePidFile(path);
  again.release();
});

test('pidfile: a stale file (its process gone, or its pid reused) is taken over', () => {
  const path = join(root, 'stale.pid');
  writeFileSync(path, '999999\n');
  const p = acquirePidFile(path);
  assert.equal(readPidFile(path), process.pid);
  p.release();
  // pid 1 is alive but holds no lock on this file: the lock, not the pid, decides
  writeFileSync(path, '1\n');
  const q = acquirePidFile(path);
  assert.equal(readPidFile(path), process.pid);
  q.release();
});

test('pidfile: a symlink at the pidfile path is not followed', () => {
  const path = join(root, 'link.pid');
  symlinkSync(join(root, 'victim'), path);
  assert.throws(() => acquirePidFile(path));
  assert.equal(existsSync(join(root, 'victim')), false);
});

test('runDaemon in-process: start, reload (config + log), stop waits for the server and releases the pidfile', async () => {
  const events: string[] = [];
  let version = 0;
  const server: DaemonServer = {
    description: 'fake server',
    async close(opts) {
      events.push(`close grace=${opts?.graceMs}`);
    },
  };
  const logFile = join(root, 'inproc.log');
  const pidfile = join(root, 'inproc.pid');
  const d = await runDaemon(
    {
      name: 'fake',
      loadConfig: () => ({ version: ++version }),
      start: async (config) => {
        events.push(`start v${config.version}`);
        return server;
      },
      reload: (_s, config) => {
        events.push(`reload v${config.version}`);
      },
    },
    { handleSignals: false, exitOnStop: false, pidfile, logFile, graceMs: 1234 },
  );
  assert.equal(readPidFile(pidfile), process.pid);
  renameSync(logFile, `${logFile}.1`);
  await d.reload();
  assert.equal(d.config.version, 2);
  await d.stop('test');
  await d.stopped;
  assert.deepEqual(events, ['start v1', 'reload v2', 'close grace=1234']);
  assert.equal(existsSync(pidfile), false);
  assert.match(readFileSync(`${logFile}.1`, 'utf8'), /fake\[\d+\] info: started, fake server, pidfile /);
  const after = readFileSync(logFile, 'utf8');
  assert.match(after, /configuration reloaded/);
  assert.match(after, /test: finishing in-flight requests \(up to 1234 ms\)/);
  assert.match(after, /info: stopped/);
});

test('runDaemon: a failing start releases the pidfile and rejects', async () => {
  const pidfile = join(root, 'fail.pid');
  await assert.rejects(
    runDaemon({ name: 'bad', start: async () => Promise.reject(new Error('cannot bind')) }, { handleSignals: false, pidfile, quiet: true }),
    /cannot bind/,
  );
  assert.equal(existsSync(pidfile), false);
});

test('--daemon: detaches into its own session without a terminal, cwd /, and a second copy is refused', async () => {
  const pidfile = join(root, 'bg.pid');
  const logFile = join(root, 'bg.log');
  const config = join(root, 'bg.json');
  writeFileSync(config, JSON.stringify({ allowList: true }));
  const args = ['fingerd', '--daemon', '--pidfile', pidfile, '--log-file', logFile, '--config', config, '--host', '127.0.0.1', '--port', '0', '--users-dir', usersDir];
  const first = await runCliToEnd(args);
  assert.equal(first.code, 0, first.stderr);
  const pid = readPidFile(pidfile);
  assert.ok(pid !== undefined && alive(pid));
  try {
    const sess = readProcSession(pid);
    assert.equal(sess.session, pid, 'session leader of a new session (setsid)');
    assert.equal(sess.ttyNr, 0, 'no controlling terminal');
    assert.equal(readlinkSync(`/proc/${pid}/cwd`), '/');
    assert.equal(readlinkSync(`/proc/${pid}/fd/0`), '/dev/null');
    assert.equal(readlinkSync(`/proc/${pid}/fd/1`), '/dev/null');
    assert.equal(readlinkSync(`/proc/${pid}/fd/2`), logFile, 'stderr goes to the log file');
    const port = Number(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/.exec(readFileSync(logFile, 'utf8'))?.[1]);
    assert.ok(port > 0);
    assert.match((await fingerQuery({ host: '127.0.0.1', port, query: '' })).toString(), /^Login/);

    // a second copy with the same pidfile
    const second = await runCliToEnd(args);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`locked by a running copy \\(pid ${pid}\\)`));
    assert.equal(readPidFile(pidfile), pid);

    // SIGHUP: reopen the log (after rotation) and reload the configuration
    renameSync(logFile, `${logFile}.1`);
    writeFileSync(config, JSON.stringify({ allowList: false }));
    process.kill(pid, 'SIGHUP');
    await waitUntil(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('configuration reloaded'), 'reload');
    assert.match((await fingerQuery({ host: '127.0.0.1', port, query: '' })).toString(), /list denied/);
    // a broken configuration keeps the running one
    writeFileSync(config, '{ not json');
    process.kill(pid, 'SIGHUP');
    await waitUntil(() => readFileSync(logFile, 'utf8').includes('keeping the previous configuration'), 'failed reload');
    assert.match((await fingerQuery({ host: '127.0.0.1', port, query: 'bob' })).toString(), /^Login: bob/);
  } finally {
    process.kill(pid, 'SIGTERM');
    await waitUntil(() => !alive(pid), 'the daemon to exit');
  }
  assert.equal(existsSync(pidfile), false);
  assert.match(readFileSync(logFile, 'utf8'), /SIGTERM: finishing in-flight requests[\s\S]*info: stopped/);
});

test('--daemon: a start failure is reported by the foreground parent with exit status 1', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const r = await runCliToEnd(['fingerd', '--daemon', '--host', '127.0.0.1', '--port', String(port), '--users-dir', usersDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /EADDRINUSE|address already in use/i);
  } finally {
    blocker.close();
  }
});

test('foreground: SIGTERM lets the query in flight finish, then exits 0 and removes the pidfile', async () => {
  const pidfile = join(root, 'fg.pid');
  const p = runCli(['fingerd', '--pidfile', pidfile, '--host', '127.0.0.1', '--port', '0', '--users-dir', usersDir]);
  try {
    const port = Number((await p.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/))[1]);
    assert.equal(readPidFile(pidfile), p.pid);
    const s = net.connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    const closed = new Promise((r) => s.once('close', r));
    s.write('bo');
    await waitUntil(() => acceptQueueEmpty(port), 'the daemon to accept the connection');
    p.child.kill('SIGTERM');
    await p.waitFor(/SIGTERM: finishing in-flight requests/);
    s.end('b\r\n');
    await closed;
    assert.match(Buffer.concat(chunks).toString(), /^Login: bob/);
    assert.equal(await p.exited, 0);
    assert.equal(existsSync(pidfile), false);
  } finally {
    await p.stop();
  }
});

test('--user nobody: root is dropped after binding', { skip: isRoot ? false : 'not root: cannot switch users' }, async () => {
  const p = runCli(['fingerd', '--user', 'nobody', '--host', '127.0.0.1', '--port', '0', '--users-dir', usersDir]);
  try {
    const port = Number((await p.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/))[1]);
    assert.match(p.stderr(), /running as nobody \(uid 65534\)/);
    const ids = readProcIds(p.pid);
    assert.deepEqual(ids.uid, [65534, 65534, 65534, 65534]);
    assert.deepEqual(ids.gid, [65534, 65534, 65534, 65534]);
    assert.deepEqual(ids.groups, [65534]);
    assert.match((await fingerQuery({ host: '127.0.0.1', port, query: 'alice' })).toString(), /^Login: alice/);
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0);
  } finally {
    await p.stop();
  }
});
