import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeControls, formatLong, formatPhone, formatShort, longIdle, shortIdle, type FingerUser } from '../../src/daemons/index.js';

// 2026-11-24 06:28 UTC; dates below are rendered in UTC
const NOW = Date.UTC(2026, 10, 24, 6, 28) / 1000;
const fmt = { now: NOW, timeZone: 'UTC' };

const alice: FingerUser = {
  login: 'alice',
  uid: 1234,
  name: 'Alice Liddell',
  office: 'Room 101',
  officePhone: '5551234',
  homePhone: '5559876',
  directory: '/tmp/fd8/gt/home/alice',
  shell: '/bin/sh',
  sessions: [
    { line: 'pts/3', host: '10.1.2.3', loginTime: NOW - 75 * 60, idleSeconds: 75 * 60, writable: true },
    { line: 'pts/4', host: '', loginTime: NOW - 135 * 60, idleSeconds: 26 * 3600, writable: false },
  ],
  lastLogin: undefined,
  mail: { kind: 'new', received: NOW - 75 * 60, unreadSince: NOW - 135 * 60 },
  files: [
    { label: 'PGP key:', text: 'KEY\n' },
    { label: 'Project:', text: 'The project\n' },
    { label: 'Plan:', text: 'Line one\nbell\x07here\ttab\nesc\x1b[1m\n\nlast' },
  ],
  hasPlan: true,
};

test('long form matches what netkit finger 0.17 prints for the same user (captured on Debian)', () => {
  // Captured with the Debian client run locally against a fake passwd/utmp/lastlog in a mount namespace
  const netkit = [
    'Login: alice          \t\t\tName: Alice Liddell',
    'Directory: /tmp/fd8/gt/home/alice   \tShell: /bin/sh',
    'Office: Room 101, 555-1234\t\tHome Phone: 555-9876',
    'On since Tue Nov 24 05:13 (UTC) on pts/3 from 10.1.2.3',
    '   1 hour 15 minutes idle',
    'On since Tue Nov 24 04:13 (UTC) on pts/4   1 day 2 hours idle',
    '     (messages off)',
    'New mail received Tue Nov 24 05:13 2026 (UTC)',
    '     Unread since Tue Nov 24 04:13 2026 (UTC)',
    'PGP key:',
    'KEY',
    'Project:',
    'The project',
    'Plan:',
    'Line one',
    'bell^Ghere\ttab',
    'esc^[[1m',
    '',
    'last',
    '',
  ].join('\n');
  assert.equal(formatLong(alice, fmt), netkit);
});

test('long form of a user who is away: last login, mail read, no plan', () => {
  const bob: FingerUser = {
    ...alice,
    login: 'bob',
    name: 'Bob Smith',
    office: '',
    officePhone: '',
    homePhone: '',
    directory: '/tmp/fd8/gt/home/bob',
    shell: '/bin/bash',
    sessions: [],
    lastLogin: { time: Date.UTC(2026, 0, 28, 6, 13) / 1000, line: 'pts/9', host: 'old.example' },
    mail: { kind: 'read', lastRead: NOW - 75 * 60 },
    files: [],
    hasPlan: false,
  };
  assert.equal(
    formatLong(bob, fmt),
    [
      'Login: bob            \t\t\tName: Bob Smith',
      'Directory: /tmp/fd8/gt/home/bob     \tShell: /bin/bash',
      'Last login Wed Jan 28 06:13 2026 (UTC) on pts/9 from old.example',
      'Mail last read Tue Nov 24 05:13 2026 (UTC)',
      'No Plan.',
      '',
    ].join('\n'),
  );
  const never = formatLong({ ...bob, lastLogin: undefined, mail: { kind: 'none' } }, fmt);
  assert.match(never, /\nNever logged in\.\nNo mail\.\nNo Plan\.\n$/);
  const local = formatLong({ ...bob, sessions: [{ line: 'tty1', host: '', loginTime: NOW - 3 * 86400, idleSeconds: undefined, writable: false }] }, fmt);
  assert.match(local, /\nOn since Sat Nov 21 06:28 \(UTC\) on tty1 \(messages off\)\n/);
});

test('short form: one row per session, netkit columns', () => {
  const text = formatShort([alice], fmt);
  const lines = text.split('\n');
  assert.equal(lines[0], 'Login    Name            Tty      Idle  Login Time   Office     Office Phone');
  assert.equal(lines[1], 'alice    Alice Liddell   pts/3    1:15  Nov 24 05:13 (10.1.2.3)');
  assert.equal(lines[2], 'alice    Alice Liddell  *pts/4      1d  Nov 24 04:13 Room 101   555-1234');
  assert.equal(formatShort([], fmt), 'No one logged on.\n');
});

test('a hostile GECOS or file cannot inject terminal escapes', () => {
  const evil = { ...alice, name: 'Mallory\x1b]0;owned\x07', files: [{ label: 'Plan:', text: '\x1b[2J\x9b31m\r\x7f' }] };
  const text = formatLong(evil, fmt);
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/.test(text), JSON.stringify(text));
  assert.match(text, /Name: Mallory\^\[\]0;owned\^G/);
  assert.match(text, /\^\[\[2JM-\^\[31m\^M\^\?/);
});

const idleRows: [number, string, string][] = [
  [30, '30 seconds', ''],
  [61, '1 minute 1 second', '1'],
  [75 * 60, '1 hour 15 minutes', '1:15'],
  [2 * 3600, '2 hours', '2:00'],
  [26 * 3600, '1 day 2 hours', '1d'],
  [3 * 86400, '3 days', '3d'],
];
for (const [s, long, short] of idleRows) {
  test(`idle ${s}s -> "${long}" / "${short}"`, () => {
    assert.equal(longIdle(s), long);
    assert.equal(shortIdle(s), short);
  });
}

test('phones and control characters', () => {
  assert.equal(formatPhone('5551234'), '555-1234');
  assert.equal(formatPhone('6175551234'), '(617) 555-1234');
  assert.equal(formatPhone('x1'), 'x1');
  assert.equal(escapeControls('a\tb\nc\x00\x1f\x7f\u0085é'), 'a\tb\nc^@^_^?M-^Eé');
});
