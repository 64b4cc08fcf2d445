import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DirectoryUserSource,
  LASTLOG_RECORD_SIZE,
  SystemUserSource,
  encodeLastlogRecord,
  encodeUtmpRecord,
  matchesUser,
  parseGecos,
  parsePasswd,
} from '../../src/daemons/index.js';
import { makeUsersDir } from './helpers.js';

let root: string;
const uid = process.getuid?.() ?? 0;
const nowS = Math.floor(Date.now() / 1000);

before(() => {
  root = mkdtempSync(join(tmpdir(), 'sb-users-'));
  chmodSync(root, 0o755);
  for (const d of ['home/alice', 'home/bob', 'home/carol', 'dev/pts', 'mail']) mkdirSync(join(root, d), { recursive: true });
  for (const d of ['home', 'home/alice', 'home/bob', 'home/carol']) chmodSync(join(root, d), 0o755);
  writeFileSync(
    join(root, 'passwd'),
    [
      `alice:x:${uid}:${uid}:Alice Liddell,Room 101,5551234,:${root}/home/alice:/bin/sh`,
      `bob:x:1235:1235:Bob Smith:${root}/home/bob:/bin/bash`,
      `carol:x:1236:1236:Carol:${root}/home/carol:/bin/sh`,
      'broken line',
      '',
    ].join('\n'),
  );
  writeFileSync(join(root, 'home/alice/.plan'), 'alice plan\n');
  chmodSync(join(root, 'home/alice/.plan'), 0o644);
  writeFileSync(join(root, 'home/carol/.nofinger'), '');
  writeFileSync(
    join(root, 'utmp'),
    Buffer.concat([
      encodeUtmpRecord({ type: 7, line: 'pts/3', user: 'alice', host: '10.1.2.3', time: nowS - 3600 }),
      encodeUtmpRecord({ type: 8, line: 'pts/5', user: 'bob', time: nowS - 100 }),
      encodeUtmpRecord({ type: 7, line: 'tty1', user: 'carol', time: nowS - 50 }),
    ]),
  );
  const ll = Buffer.alloc(LASTLOG_RECORD_SIZE * 1300);
  ll.set(encodeLastlogRecord({ time: nowS - 5000, line: 'pts/9', host: 'far.example' }), 1235 * LASTLOG_RECORD_SIZE);
  writeFileSync(join(root, 'lastlog'), ll);
  writeFileSync(join(root, 'dev/pts/3'), '');
  chmodSync(join(root, 'dev/pts/3'), 0o620);
  utimesSync(join(root, 'dev/pts/3'), nowS - 600, nowS - 600);
  writeFileSync(join(root, 'mail/bob'), 'From x\n');
  utimesSync(join(root, 'mail/bob'), nowS - 7200, nowS - 3600);
});
after(() => rmSync(root, { recursive: true, force: true }));

const source = (): SystemUserSource =>
  new SystemUserSource({
    passwdFile: join(root, 'passwd'),
    utmpPath: join(root, 'utmp'),
    wtmpPath: join(root, 'no-wtmp'),
    lastlogPath: join(root, 'lastlog'),
    mailDir: join(root, 'mail'),
    devDir: join(root, 'dev'),
  });

test('passwd and GECOS parsing', () => {
  const e = parsePasswd('a:x:1:2:A & B,Off,123,456:/h:/bin/sh\nbad\nc:x:z:1::/:/s\n');
  assert.deepEqual(e, [{ login: 'a', uid: 1, gid: 2, gecos: 'A & B,Off,123,456', home: '/h', shell: '/bin/sh' }]);
  assert.deepEqual(parseGecos('& Smith,Off,123,456', 'joe'), { name: 'Joe Smith', office: 'Off', officePhone: '123', homePhone: '456' });
});

test('matching by login and by a word of the real name, as netkit does', () => {
  assert.ok(matchesUser('alice', 'alice', 'Alice Liddell'));
  assert.ok(matchesUser('liddell', 'alice', 'Alice Liddell'));
  assert.ok(matchesUser('Alice.Liddell', 'alice', 'Alice Liddell'));
  assert.ok(!matchesUser('lid', 'alice', 'Alice Liddell'));
  assert.ok(!matchesUser('liddell', 'alice', 'Alice Liddell', false));
  assert.ok(!matchesUser('ALICE', 'alice', ''));
});

test('system source: session from utmp with idle from the tty atime, plan, office', async () => {
  const [alice, ...rest] = await source().find('alice');
  assert.equal(rest.length, 0);
  assert.ok(alice);
  assert.equal(alice.name, 'Alice Liddell');
  assert.equal(alice.office, 'Room 101');
  assert.equal(alice.sessions.length, 1);
  const s = alice.sessions[0];
  assert.equal(s?.line, 'pts/3');
  assert.equal(s?.host, '10.1.2.3');
  assert.equal(s?.loginTime, nowS - 3600);
  assert.ok(s?.idleSeconds !== undefined && s.idleSeconds >= 599 && s.idleSeconds < 700, String(s?.idleSeconds));
  assert.equal(s?.writable, true);
  assert.deepEqual(alice.files, [{ label: 'Plan:', text: 'alice plan\n' }]);
  assert.equal(alice.hasPlan, true);
  assert.deepEqual(alice.mail, { kind: 'none' });
});

test('system source: a user who is away gets lastlog and mail status; a real-name match finds him', async () => {
  const [bob] = await source().find('Smith');
  assert.equal(bob?.login, 'bob');
  assert.deepEqual(bob?.sessions, []);
  assert.deepEqual(bob?.lastLogin, { time: nowS - 5000, line: 'pts/9', host: 'far.example' });
  assert.equal(bob?.mail?.kind, 'new');
});

test('system source: {C} lists logged-in users only, and ~/.nofinger hides a user', async () => {
  const users = await source().loggedIn();
  assert.deepEqual(users.map((u) => u.login), ['alice']);
  assert.deepEqual(await source().find('carol'), []);
});

test('system source with no utmp at all: nobody is logged in', async () => {
  const s = new SystemUserSource({ passwdFile: join(root, 'passwd'), utmpPath: join(root, 'nope'), lastlogPath: join(root, 'nope'), wtmpPath: join(root, 'nope') });
  assert.deepEqual(await s.loggedIn(), []);
  const [bob] = await s.find('bob');
  assert.equal(bob?.lastLogin, undefined);
});

test('directory source: fake users from DIR/<login>/.finger.json and home files', async () => {
  const dir = makeUsersDir(join(root, 'fake'), [
    { login: 'zed', meta: { name: 'Zed Shaw', sessions: [{ line: 'pts/1', host: 'x', loginTime: nowS, idleSeconds: 0 }] }, files: { '.plan': 'zed plan\n' } },
    { login: 'yan', meta: { name: 'Yan Tan', uid: 'not a number', sessions: 'junk' } },
    { login: 'bare' },
  ]);
  const src = new DirectoryUserSource(dir);
  assert.deepEqual((await src.loggedIn()).map((u) => u.login), ['zed']);
  const [zed] = await src.find('shaw');
  assert.equal(zed?.login, 'zed');
  assert.deepEqual(zed?.files, [{ label: 'Plan:', text: 'zed plan\n' }]);
  const [yan] = await src.find('yan');
  assert.equal(yan?.name, 'Yan Tan');
  assert.deepEqual(yan?.sessions, []);
  const [bare] = await src.find('bare');
  assert.equal(bare?.name, 'bare');
  assert.deepEqual(await src.find('nobody-here'), []);
});
