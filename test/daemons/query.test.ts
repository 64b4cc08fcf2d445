import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../../src/errors.js';
import { forwardedQuery, parseQuery } from '../../src/daemons/index.js';

const rows: [string, { verbose: boolean; users: string[]; hosts: string[] }][] = [
  ['', { verbose: false, users: [], hosts: [] }],
  ['alice', { verbose: false, users: ['alice'], hosts: [] }],
  ['/W', { verbose: true, users: [], hosts: [] }],
  ['/W alice', { verbose: true, users: ['alice'], hosts: [] }],
  ['/w   alice', { verbose: true, users: ['alice'], hosts: [] }],
  ['/W ', { verbose: true, users: [], hosts: [] }],
  ['alice bob', { verbose: false, users: ['alice', 'bob'], hosts: [] }],
  ['alice@h1', { verbose: false, users: ['alice'], hosts: ['h1'] }],
  ['@h1', { verbose: false, users: [], hosts: ['h1'] }],
  ['/W alice@h1@h2', { verbose: true, users: ['alice'], hosts: ['h1', 'h2'] }],
  ['  alice  ', { verbose: false, users: ['alice'], hosts: [] }],
];
for (const [line, want] of rows) {
  test(`parseQuery(${JSON.stringify(line)})`, () => assert.deepEqual(parseQuery(line), want));
}

for (const bad of ['a\x00b', 'a\x1bb', 'alice@', 'alice@h1 bob', 'a@b@', 'a@h!st', 'x'.repeat(65), 'a b c d e f g h i']) {
  test(`parseQuery rejects ${JSON.stringify(bad.slice(0, 20))}`, () => assert.throws(() => parseQuery(bad), ProtocolError));
}

test('forwardedQuery sends u@h1@h2 to h2 as u@h1, keeping /W', () => {
  assert.deepEqual(forwardedQuery(parseQuery('alice@h1@h2')), { host: 'h2', line: 'alice@h1' });
  assert.deepEqual(forwardedQuery(parseQuery('/W alice@h1')), { host: 'h1', line: '/W alice' });
  assert.deepEqual(forwardedQuery(parseQuery('@h1')), { host: 'h1', line: '' });
  assert.equal(forwardedQuery(parseQuery('alice')), undefined);
});

test('parseQuery throws only ProtocolError, whatever the line', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200, unit: 'binary' }), (s) => {
      try {
        const q = parseQuery(s);
        for (const u of q.users) assert.ok(!/[\s@\x00-\x1f]/.test(u));
      } catch (err) {
        assert.ok(err instanceof ProtocolError, String(err));
      }
    }),
    { numRuns: 2000 },
  );
});
