/**
 * The Debian finger client (netkit 0.17) against our fingerd: the bytes it
 * sends are what our parser expects, and the text it prints is what we mean
 * to say, for a fake user, a real account (root), and the user list; then
 * the real thing: our daemon on port 79 in a network namespace, dropped to
 * nobody, asked by the Debian client on its own port.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finger, readProcIds, startFingerd, type FingerDaemon } from '../../src/daemons/index.js';
import { makeUsersDir, runCli } from '../daemons/helpers.js';
import { debianClientUnavailable, debianFinger, localFinger, netnsUnavailable, runToFiles, servicesWithFingerPort } from './finger-helpers.js';

const noClient = debianClientUnavailable();
let root: string;
let usersDir: string;
let fake: FingerDaemon | undefined;
let real: FingerDaemon | undefined;
const queries: string[] = [];
const nowS = Math.floor(Date.now() / 1000);

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'sb-finger-interop-'));
  chmodSync(root, 0o755);
  usersDir = makeUsersDir(join(root, 'users'), [
    {
      login: 'alice',
      meta: { name: 'Alice Liddell', office: 'Room 101', officePhone: '5551234', sessions: [{ line: 'pts/3', host: '10.1.2.3', loginTime: nowS - 3600, idleSeconds: 4500 }] },
      files: { '.plan': 'Down the\x07 rabbit hole\x1b[31m\n\tand out\n', '.pubkey': 'ssh-ed25519 AAAA alice\n' },
    },
    { login: 'bob', meta: { name: 'Bob Smith', lastLogin: { time: nowS - 86400, line: 'pts/9', host: 'far.example' } } },
  ]);
  if (noClient) return;
  fake = await startFingerd({ host: '127.0.0.1', port: 0, usersDir, log: (l) => queries.push(l) });
  real = await startFingerd({ host: '127.0.0.1', port: 0, log: (l) => queries.push(l) });
});
after(async () => {
  await fake?.close();
  await real?.close();
  rmSync(root, { recursive: true, force: true });
});

const portOf = (d: FingerDaemon | undefined): number => (d?.address.transport === 'tcp' ? d.address.port : 0);

test('Debian client -> our fingerd: a fake user, plain and -l', { skip: noClient ?? false }, async () => {
  const services = servicesWithFingerPort(root, portOf(fake));
  const plain = await debianFinger(services, ['alice@127.0.0.1']);
  assert.equal(plain.status, 0, plain.stderr);
  const ours = await finger({ query: 'alice', host: '127.0.0.1', port: portOf(fake) });
  // the Debian client prints exactly what our client prints for the same answer
  assert.equal(plain.stdout, ours);
  assert.match(plain.stdout, /^Login: alice {10}\t\t\tName: Alice Liddell\nDirectory: \/home\/alice {14}\tShell: \/bin\/sh\nOffice: Room 101, 555-1234\nOn since .* on pts\/3 from 10\.1\.2\.3\n {3}1 hour 15 minutes idle\nNo mail\.\nPublic key:\nssh-ed25519 AAAA alice\nPlan:\nDown the\^G rabbit hole\^\[\[31m\n\tand out\n$/);
  const long = await debianFinger(services, ['-l', 'bob@127.0.0.1']);
  assert.match(long.stdout, /^Login: bob {12}\t\t\tName: Bob Smith\n[\s\S]*Last login .* on pts\/9 from far\.example\nNo mail\.\nNo Plan\.\n$/);
  // what the client sent, as our daemon logged it
  assert.ok(queries.some((q) => q.includes('query "alice"')));
  assert.ok(queries.some((q) => q.includes('query "/W bob"')));
});

test('Debian client -> our fingerd: the user list and a refused forward', { skip: noClient ?? false }, async () => {
  const services = servicesWithFingerPort(root, portOf(fake));
  const list = await debianFinger(services, ['@127.0.0.1']);
  assert.match(list.stdout, /^Login {4}Name {12}Tty {6}Idle  Login Time   Office {5}Office Phone\nalice {4}Alice Liddell {3}pts\/3 {4}1:15  \w{3} [ \d]\d \d\d:\d\d \(10\.1\.2\.3\)\n$/);
  const fwd = await debianFinger(services, ['alice@elsewhere@127.0.0.1']);
  assert.equal(fwd.stdout, 'Finger forwarding service denied.\n');
  assert.ok(queries.some((q) => q.includes('query "alice@elsewhere": forwarding refused')));
});

test('Debian client -> our fingerd serving the real passwd: root looks as the Debian client shows it locally', { skip: noClient ?? false }, async () => {
  const services = servicesWithFingerPort(root, portOf(real));
  const remote = await debianFinger(services, ['root@127.0.0.1']);
  assert.equal(remote.status, 0, remote.stderr);
  // netkit's finger reading the same passwd, utmp, lastlog and mail spool itself
  const local = await localFinger(['-l', 'root']);
  assert.equal(remote.stdout, local);
  const nosuch = await debianFinger(services, ['no-such-user-xyz@127.0.0.1']);
  assert.equal(nosuch.stdout, 'finger: no-such-user-xyz: no such user.\n');
});

const noNetns = noClient ?? netnsUnavailable();
test('port 79 in a network namespace: bind as root, drop to nobody, answer the Debian client', { skip: noNetns ?? false }, async () => {
  // no --port: the port comes from /etc/services ("finger", 79)
  const p = runCli(['fingerd', '--host', '127.0.0.1', '--user', 'nobody', '--users-dir', usersDir], {
    prefix: ['unshare', '-n', '--', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"'],
  });
  try {
    await p.waitFor(/listening on tcp:\/\/127\.0\.0\.1:79\b/);
    const ids = readProcIds(p.pid);
    assert.deepEqual(ids.uid, [65534, 65534, 65534, 65534], 'real, effective, saved and fs uid are nobody');
    assert.deepEqual(ids.gid, [65534, 65534, 65534, 65534]);
    const r = await runToFiles('nsenter', ['-t', String(p.pid), '-n', '/usr/bin/finger', 'alice@127.0.0.1']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Login: alice {10}\t\t\tName: Alice Liddell\n[\s\S]*Plan:\nDown the\^G rabbit hole/);
    const list = await runToFiles('nsenter', ['-t', String(p.pid), '-n', '/usr/bin/finger', '@127.0.0.1']);
    assert.match(list.stdout, /^Login .*\nalice /);
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.stderr());
  } finally {
    await p.stop();
  }
});
