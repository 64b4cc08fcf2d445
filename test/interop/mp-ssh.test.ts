/**
 * `switchboard run --hosts` over ssh, against a real OpenSSH server (Debian
 * openssh-server, installed by .ci/run): the test starts its own sshd on a
 * loopback port with throwaway keys, and puts an `ssh` first on PATH that
 * only adds `-F <its config>` before running the real client. Ranks started
 * through it meet the local ones over TCP; an argument with spaces and
 * quotes reaches the remote rank intact (the remote shell gets one quoted
 * command line, run from the launcher's directory); a rank that dies on an
 * ssh host is named and the job exits non-zero; when the launcher is killed,
 * the rank behind ssh stops too. Skipped, with the reason printed, only
 * where OpenSSH is not installed; with OpenSSH there, a test sshd that
 * cannot start or log in fails the tests. As root the test sshd separates
 * privileges; as another user it runs unprivileged and admits only that
 * user: the test logs in as whoever runs it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { APP, killLauncherOfHangingRanks, runCli } from '../mp/launch-helpers.js';
import { remoteCommand, shellWord } from '../../src/mp/launch.js';

const SSHD = '/usr/sbin/sshd';
let dir = '';
/** Why the ssh tests cannot run here: only a missing peer (no OpenSSH). */
let skip: string | false = false;
/** A setup step that failed with OpenSSH present: the tests fail with it, they do not skip. */
let broken: Error | undefined;
let env: NodeJS.ProcessEnv = {};

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

before(async () => {
  try {
    await setUp();
  } catch (err) {
    broken = err as Error;
  }
});

async function setUp(): Promise<void> {
  if (!existsSync(SSHD) || spawnSync('ssh', ['-V']).error !== undefined) {
    skip = `peer missing: ${existsSync(SSHD) ? 'the ssh client' : SSHD} is not installed (.ci/run installs openssh-server and openssh-client)`;
    return;
  }
  // As root, sshd separates privileges (in /run/sshd); as anyone else it runs unprivileged and
  // lets only that user in: either way the test logs in as the user running it.
  const root = process.getuid?.() === 0;
  const user = userInfo().username;
  dir = mkdtempSync(join(tmpdir(), 'sb-ssh-'));
  for (const k of ['host_key', 'client_key']) {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, k)]);
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr.toString().trim()}`);
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o600 });
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'ssh_config'),
    [
      'Host sbssh-a sbssh-b',
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${user}`,
      `  IdentityFile ${join(dir, 'client_key')}`,
      '  StrictHostKeyChecking no',
      '  UserKnownHostsFile /dev/null',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
  );
  mkdirSync(join(dir, 'bin'));
  // (the real client by its full name, found before our wrapper goes first on PATH)
  const real = spawnSync('sh', ['-c', 'command -v ssh'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(join(dir, 'bin', 'ssh'), `#!/bin/sh\nexec ${real} -F ${join(dir, 'ssh_config')} "$@"\n`);
  chmodSync(join(dir, 'bin', 'ssh'), 0o755);
  if (root) mkdirSync('/run/sshd', { recursive: true });
  const d = spawnSync(SSHD, ['-f', join(dir, 'sshd_config'), '-E', join(dir, 'sshd.log')], { encoding: 'utf8' });
  if (d.status !== 0) throw new Error(`the test sshd did not start: ${(d.stderr || readLog()).trim().split('\n').slice(-1)[0]}`);
  env = { ...process.env, PATH: `${join(dir, 'bin')}:${process.env['PATH'] ?? ''}` };
  const probe = spawnSync(join(dir, 'bin', 'ssh'), ['-o', 'BatchMode=yes', 'sbssh-a', 'true'], { encoding: 'utf8', timeout: 20_000 });
  if (probe.status !== 0) throw new Error(`ssh to the test sshd failed: ${probe.stderr.trim()}`);
}

function readLog(): string {
  try {
    return readFileSync(join(dir, 'sshd.log'), 'utf8');
  } catch {
    return '';
  }
}

after(() => {
  if (dir === '') return;
  try {
    const pid = Number(readFileSync(join(dir, 'sshd.pid'), 'utf8'));
    if (pid > 0) process.kill(pid, 'SIGTERM');
  } catch {
    // (never started)
  }
  rmSync(dir, { recursive: true, force: true });
});

test('shell words: plain words stay as they are, anything else is single-quoted so the remote shell gives it back intact', () => {
  assert.equal(shellWord('/usr/bin/node'), '/usr/bin/node');
  assert.equal(shellWord('SWITCHBOARD_RANK=1'), 'SWITCHBOARD_RANK=1');
  assert.equal(shellWord('a b'), "'a b'");
  assert.equal(shellWord("it's"), "'it'\\''s'");
  assert.equal(shellWord(''), "''");
  assert.equal(shellWord('$HOME;rm -rf /'), "'$HOME;rm -rf /'");
  assert.equal(remoteCommand('/w d', ['A=1'], ['node', 'x y']), "cd '/w d' && exec env A=1 node 'x y'");
  // what a POSIX shell makes of it: the same words back
  const words = ['plain', 'two words', "quote'd", '$(echo no)', '*', ''];
  const r = spawnSync('sh', ['-c', `for w in ${words.map(shellWord).join(' ')}; do printf '%s\\n' "$w"; done`], { encoding: 'utf8' });
  assert.deepEqual(r.stdout.split('\n').slice(0, -1), words);
});

test('ranks started over ssh meet the local one over TCP, from the launcher directory, with their arguments intact', async (t) => {
  if (skip) return t.skip(skip);
  if (broken) throw broken;
  const before = (readLog().match(/Accepted publickey/g) ?? []).length;
  const r = await runCli(['run', '-n', '3', '--hosts', 'sbssh-a,sbssh-b,localhost', APP, "odd 'arg' $HOME"], { env, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').sort();
  assert.equal(lines.length, 3, r.stdout);
  for (let i = 0; i < 3; i++) assert.match(lines[i]!, new RegExp(`^rank ${i}/3 via tcp sum=6`));
  for (let i = 0; i < 3; i++) assert.match(r.stdout, new RegExp(`rank ${i}/3 .* argv=\\["odd 'arg' \\$HOME"\\]`), `rank ${i} got the argument as given`);
  const logins = (readLog().match(/Accepted publickey/g) ?? []).length - before;
  assert.equal(logins, 2, 'two ranks came in through sshd');
});

test('a rank that dies on an ssh host is named, and the job exits non-zero', async (t) => {
  if (skip) return t.skip(skip);
  if (broken) throw broken;
  const r = await runCli(['run', '-n', '3', '--grace', '3000', '--hosts', 'sbssh-a,sbssh-b,localhost', APP, 'die'], { env, timeoutMs: 60_000 });
  assert.equal(r.code, 9, r.stderr);
  assert.match(r.stderr, /rank 1 \(pid \d+ on sbssh-b\) died: exited with code 9/);
});

test('ranks on an ssh host stop when their launcher is killed: ssh passes the end of its stdin on', async (t) => {
  if (skip) return t.skip(skip);
  if (broken) throw broken;
  const { pids, goneMs } = await killLauncherOfHangingRanks(['run', '-n', '2', '--hosts', 'sbssh-a,localhost'], 2, { env });
  assert.equal(pids.length, 2);
  assert.ok(goneMs < 10_000, 'the rank behind ssh and the local one were gone within 10 s');
});
