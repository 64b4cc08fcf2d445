import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import fc from 'fast-check';
import { ProtocolError } from '../../src/errors.js';
import {
  LASTLOG_RECORD_SIZE,
  UTMP_RECORD_SIZE,
  UtmpType,
  decodeLastlogRecord,
  decodeUtmp,
  decodeUtmpRecord,
  encodeLastlogRecord,
  encodeUtmpRecord,
  lastLoginFromWtmp,
  userSessions,
} from '../../src/daemons/index.js';

test('a hand-built glibc x86_64 utmp record decodes field by field', () => {
  // struct utmp: short ut_type; pid_t ut_pid (offset 4); char ut_line[32] (8); char ut_id[4] (40);
  // char ut_user[32] (44); char ut_host[256] (76); exit_status (332); int32 session (336);
  // int32 tv_sec (340); int32 tv_usec (344); int32 addr_v6[4] (348); char unused[20] (364)
  const b = new Uint8Array(384);
  const v = new DataView(b.buffer);
  v.setInt16(0, 7, true);
  v.setInt32(4, 4242, true);
  b.set(new TextEncoder().encode('pts/3'), 8);
  b.set(new TextEncoder().encode('ts/3'), 40);
  b.set(new TextEncoder().encode('alice'), 44);
  b.set(new TextEncoder().encode('10.1.2.3'), 76);
  v.setInt32(340, 1764000000, true);
  v.setInt32(344, 123456, true);
  assert.deepEqual(decodeUtmpRecord(b), {
    type: UtmpType.USER_PROCESS,
    pid: 4242,
    line: 'pts/3',
    id: 'ts/3',
    user: 'alice',
    host: '10.1.2.3',
    time: 1764000000,
    usec: 123456,
  });
});

test('full-width fields without a NUL terminator stay within their field', () => {
  const rec = encodeUtmpRecord({ type: 7, user: 'u'.repeat(40), line: 'l'.repeat(40), host: 'h'.repeat(300) });
  const r = decodeUtmpRecord(rec);
  assert.equal(r.user, 'u'.repeat(32));
  assert.equal(r.line, 'l'.repeat(32));
  assert.equal(r.host, 'h'.repeat(256));
});

test('decodeUtmp ignores a trailing partial record and userSessions keeps USER_PROCESS only', () => {
  const recs = [
    encodeUtmpRecord({ type: UtmpType.BOOT_TIME, line: '~', user: 'reboot', time: 1 }),
    encodeUtmpRecord({ type: UtmpType.USER_PROCESS, line: 'pts/1', user: 'alice', time: 2 }),
    encodeUtmpRecord({ type: UtmpType.DEAD_PROCESS, line: 'pts/2', user: 'bob', time: 3 }),
    encodeUtmpRecord({ type: UtmpType.USER_PROCESS, line: 'pts/4', user: 'alice', time: 4 }),
  ];
  const image = Buffer.concat([...recs, Buffer.alloc(100)]);
  const all = decodeUtmp(image);
  assert.equal(all.length, 4);
  assert.deepEqual(userSessions(all).map((r) => r.line), ['pts/1', 'pts/4']);
  assert.equal(lastLoginFromWtmp(all, 'alice')?.time, 4);
  assert.equal(lastLoginFromWtmp(all, 'bob'), undefined);
});

test('decoders check bounds before reading', () => {
  assert.throws(() => decodeUtmpRecord(new Uint8Array(383)), ProtocolError);
  assert.throws(() => decodeUtmpRecord(new Uint8Array(384), 1), ProtocolError);
  assert.throws(() => decodeLastlogRecord(new Uint8Array(291)), ProtocolError);
});

test('lastlog records: int32 time, line[32], host[256]', () => {
  const b = new Uint8Array(LASTLOG_RECORD_SIZE * 3);
  b.set(encodeLastlogRecord({ time: 1700000000, line: 'pts/9', host: 'old.example' }), LASTLOG_RECORD_SIZE * 2);
  assert.deepEqual(decodeLastlogRecord(b, LASTLOG_RECORD_SIZE * 2), { time: 1700000000, line: 'pts/9', host: 'old.example' });
  assert.deepEqual(decodeLastlogRecord(b, 0), { time: 0, line: '', host: '' });
});

test('utmp round trip (property), both byte orders', () => {
  const field = (n: number) => fc.string({ maxLength: n, unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });
  fc.assert(
    fc.property(
      fc.record({ type: fc.integer({ min: 0, max: 9 }), pid: fc.integer({ min: 0, max: 2 ** 31 - 1 }), line: field(32), id: field(4), user: field(32), host: field(256), time: fc.integer({ min: 0, max: 2 ** 32 - 1 }), usec: fc.integer({ min: 0, max: 999999 }) }),
      fc.boolean(),
      (r, le) => {
        assert.deepEqual(decodeUtmpRecord(encodeUtmpRecord(r, le), 0, le), { ...r });
      },
    ),
  );
});

test('decodeUtmp never throws on arbitrary bytes (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: UTMP_RECORD_SIZE * 3 + 17 }), (bytes) => {
      assert.equal(decodeUtmp(bytes).length, Math.floor(bytes.length / UTMP_RECORD_SIZE));
    }),
  );
});

let wtmpSize = 0;
try {
  wtmpSize = statSync('/var/log/wtmp').size;
} catch {
  // absent
}
test('the machine\'s own wtmp decodes into sane records', { skip: wtmpSize < UTMP_RECORD_SIZE ? 'no records in /var/log/wtmp on this machine' : false }, () => {
  const recs = decodeUtmp(readFileSync('/var/log/wtmp'));
  assert.ok(recs.length > 0);
  for (const r of recs) assert.ok(r.type >= 0 && r.type <= 9, `type ${r.type}`);
});
