import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSharedHomeFile } from '../../src/daemons/index.js';

let root: string;
let home: string;
const uid = process.getuid?.() ?? 0;
const isRoot = uid === 0;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'sb-home-'));
  chmodSync(root, 0o755);
  home = join(root, 'alice');
  mkdirSync(home, { mode: 0o755 });
  chmodSync(home, 0o755);
  const put = (name: string, text: string, mode = 0o644): void => {
    writeFileSync(join(home, name), text);
    chmodSync(join(home, name), mode);
  };
  put('.plan', 'my plan\n');
  put('.project', 'private\n', 0o600);
  put('big', 'x'.repeat(100_000));
  put('many', Array.from({ length: 500 }, (_, i) => `line ${i}`).join('\n') + '\n');
  writeFileSync(join(root, 'secret'), 'outside\n');
  chmodSync(join(root, 'secret'), 0o644);
  symlinkSync('../secret', join(home, '.pubkey'));
  symlinkSync('.plan', join(home, 'inside-link'));
  symlinkSync('/etc/passwd', join(home, 'etc-link'));
  execFileSync('mkfifo', [join(home, 'fifo')]);
  chmodSync(join(home, 'fifo'), 0o644);
  mkdirSync(join(home, 'dir'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('a world-readable file of the user is read', async () => {
  assert.deepEqual(await readSharedHomeFile(home, '.plan', uid), { ok: true, text: 'my plan\n', truncated: false });
});

test('a symlink that stays inside the home is followed', async () => {
  assert.deepEqual(await readSharedHomeFile(home, 'inside-link', uid), { ok: true, text: 'my plan\n', truncated: false });
});

test('a symlink out of the home is refused', async () => {
  assert.deepEqual(await readSharedHomeFile(home, '.pubkey', uid), { ok: false, reason: 'outside-home' });
  assert.deepEqual(await readSharedHomeFile(home, 'etc-link', uid), { ok: false, reason: 'outside-home' });
  assert.deepEqual(await readSharedHomeFile(home, '../secret', uid), { ok: false, reason: 'outside-home' });
});

test('a file the user does not share (not world-readable) is refused', async () => {
  assert.deepEqual(await readSharedHomeFile(home, '.project', uid), { ok: false, reason: 'not-shared' });
});

test('a file owned by someone else is refused', async () => {
  assert.deepEqual(await readSharedHomeFile(home, '.plan', uid + 1), { ok: false, reason: 'not-owner' });
});

test('a FIFO or a directory is refused without hanging', async () => {
  assert.deepEqual(await readSharedHomeFile(home, 'fifo', uid), { ok: false, reason: 'not-regular' });
  assert.deepEqual(await readSharedHomeFile(home, 'dir', uid), { ok: false, reason: 'not-regular' });
});

test('missing files and homes', async () => {
  assert.deepEqual(await readSharedHomeFile(home, '.nothing', uid), { ok: false, reason: 'missing' });
  assert.deepEqual(await readSharedHomeFile(join(root, 'nobody-home'), '.plan', uid), { ok: false, reason: 'missing' });
});

test('bytes and lines are limited', async () => {
  const big = await readSharedHomeFile(home, 'big', uid, { maxBytes: 1000 });
  assert.ok(big.ok && big.truncated && big.text.length === 1000);
  const many = await readSharedHomeFile(home, 'many', uid, { maxLines: 10 });
  assert.ok(many.ok && many.truncated);
  assert.equal(many.ok && many.text.split('\n').length, 11);
});

test('a home closed to others (mode 0700) shares nothing', async () => {
  chmodSync(home, 0o700);
  try {
    assert.deepEqual(await readSharedHomeFile(home, '.plan', uid), { ok: false, reason: 'home-closed' });
  } finally {
    chmodSync(home, 0o755);
  }
});

test('ownership by another real uid (needs root to chown)', { skip: isRoot ? false : 'not root: cannot chown a file to another user' }, async () => {
  const p = join(home, 'theirs');
  writeFileSync(p, 'theirs\n');
  chmodSync(p, 0o644);
  chownSync(p, 65534, 65534);
  assert.deepEqual(await readSharedHomeFile(home, 'theirs', uid), { ok: false, reason: 'not-owner' });
  assert.deepEqual(await readSharedHomeFile(home, 'theirs', 65534), { ok: true, text: 'theirs\n', truncated: false });
});
