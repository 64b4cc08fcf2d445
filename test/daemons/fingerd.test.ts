import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FORWARDING_DENIED, LISTING_DENIED, finger, fingerQuery, startFingerd, type FingerDaemon } from '../../src/daemons/index.js';
import { makeUsersDir } from './helpers.js';

let root: string;
let usersDir: string;
let d: FingerDaemon;
const logLines: string[] = [];
const nowS = Math.floor(Date.now() / 1000);

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'sb-fingerd-'));
  usersDir = makeUsersDir(join(root, 'users'), [
    {
      login: 'alice',
      meta: { name: 'Alice Liddell', office: 'Room 101', sessions: [{ line: 'pts/3', host: '10.1.2.3', loginTime: nowS - 3600, idleSeconds: 4500 }] },
      files: { '.plan': 'Down the\x07 rabbit hole\n', '.project': 'Wonderland\n' },
    },
    { login: 'bob', meta: { name: 'Bob Smith' } },
    { login: 'jose', meta: { name: 'José Núñez' } },
  ]);
  d = await startFingerd({ host: '127.0.0.1', port: 0, usersDir, timeZone: 'UTC', log: (l) => logLines.push(l) });
});
after(async () => {
  await d.close();
  rmSync(root, { recursive: true, force: true });
});

const port = (): number => (d.address.transport === 'tcp' ? d.address.port : 0);
const ask = (query: string, verbose = false): Promise<string> => finger({ query, host: '127.0.0.1', port: port() }, { verbose });

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

/** Raw exchange: send bytes, return everything until the server closes. */
function raw(p: number, data: Uint8Array | string, opts: { end?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(p, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.write(data);
    if (opts.end !== false) s.end();
  });
}

test('{U}: the long form, CRLF on the wire, plan escaped', async () => {
  const bytes = await raw(port(), 'alice\r\n');
  const text = bytes.toString('utf8');
  assert.ok(!/[^\r]\n/.test(text), 'every line ends in CRLF');
  assert.match(text, /^Login: alice {10}\t\t\tName: Alice Liddell\r\n/);
  assert.match(text, /On since .* on pts\/3 from 10\.1\.2\.3\r\n {3}1 hour 15 minutes idle\r\n/);
  assert.match(text, /Project:\r\nWonderland\r\nPlan:\r\nDown the\^G rabbit hole\r\n$/);
});

test('{U} by real name, and several names in one query', async () => {
  assert.match(await ask('liddell'), /^Login: alice/);
  const two = await ask('alice bob');
  assert.match(two, /Login: alice[\s\S]*\n\nLogin: bob[\s\S]*No Plan\.\n$/);
});

test('a UTF-8 real name matches a UTF-8 query', async () => {
  assert.match(await ask('núñez'), /^Login: jose {11}\t\t\tName: José Núñez\n/);
});

test('unknown user', async () => {
  assert.equal(await ask('nosuch'), 'finger: nosuch: no such user.\n');
});

test('{C}: the short list; /W {C}: the long form of everyone logged in', async () => {
  const list = await ask('');
  assert.match(list, /^Login {4}Name {12}Tty {6}Idle  Login Time   Office {5}Office Phone\nalice {4}Alice Liddell {3}pts\/3 {4}1:15  /);
  assert.doesNotMatch(list, /bob/);
  assert.match(await ask('', true), /^Login: alice/);
});

test('{U}@{H}: forwarding refused by default with the standard message', async () => {
  assert.equal(await ask('alice@elsewhere'), `${FORWARDING_DENIED}\n`);
  assert.equal(await ask('@elsewhere'), `${FORWARDING_DENIED}\n`);
});

test('a lone LF, or EOF without any line end, still gets an answer', async () => {
  assert.match((await raw(port(), 'bob\n')).toString(), /^Login: bob/);
  assert.match((await raw(port(), 'bob')).toString(), /^Login: bob/);
});

test('a query arriving one byte at a time is reassembled', async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect(port(), '127.0.0.1');
    let out = '';
    s.on('data', (c) => (out += c.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    const bytes = Buffer.from('/W bob\r\n');
    let i = 0;
    const next = (): void => {
      if (i === bytes.length) return void s.end();
      s.write(bytes.subarray(i, ++i));
      setTimeout(next, 5);
    };
    s.once('connect', next);
  });
  assert.match(reply, /^Login: bob/);
});

test('a line longer than the limit is refused with a message', async () => {
  const reply = await raw(port(), 'a'.repeat(5000) + '\r\n');
  assert.equal(reply.toString(), 'finger: query too long.\r\n');
});

test('garbage queries get an error line, never a crash', async () => {
  for (const q of ['\x00\x01\x02', 'a b c d e f g h i j', '@@@', 'x@h!']) {
    const r = (await raw(port(), `${q}\r\n`)).toString();
    assert.match(r, /^finger: /, JSON.stringify(q));
  }
});

test('one log line per query', async () => {
  const before = logLines.length;
  await ask('bob');
  const line = logLines.slice(before).find((l) => l.includes('query "bob"'));
  assert.ok(line, logLines.slice(before).join('\n'));
  assert.match(line, /^127\.0\.0\.1:\d+: query "bob": 1 match, \d+ bytes, \d+ ms$/);
});

test('--no-list refuses {C} but still answers {U}', async () => {
  const d2 = await startFingerd({ host: '127.0.0.1', port: 0, usersDir, allowList: false });
  try {
    const p = d2.address.transport === 'tcp' ? d2.address.port : 0;
    assert.equal((await fingerQuery({ host: '127.0.0.1', port: p, query: '' })).toString(), `${LISTING_DENIED}\r\n`);
    assert.match((await fingerQuery({ host: '127.0.0.1', port: p, query: 'bob' })).toString(), /^Login: bob/);
  } finally {
    await d2.close();
  }
});

test('forwarding when enabled: relays the next host\'s answer, within the hop limit', async () => {
  // the front daemon forwards to our daemon's port (forwardPort), as it would to 79 on another host
  const front = await startFingerd({ host: '127.0.0.1', port: 0, usersDir, forwarding: true, maxHops: 1, forwardPort: port() });
  try {
    const p = front.address.transport === 'tcp' ? front.address.port : 0;
    const relayed = (await fingerQuery({ host: '127.0.0.1', port: p, query: 'alice@127.0.0.1' })).toString();
    assert.match(relayed, /^\[127\.0\.0\.1\]\r\nLogin: alice/);
    assert.match(relayed, /Down the\^G rabbit hole/);
    const tooFar = (await fingerQuery({ host: '127.0.0.1', port: p, query: 'alice@127.0.0.1@127.0.0.1' })).toString();
    assert.equal(tooFar, 'finger: too many hops (at most 1).\r\n');
  } finally {
    await front.close();
  }
});

test('maxConnections: connections past the limit are closed at once, the others are served', async () => {
  const d3 = await startFingerd({ host: '127.0.0.1', port: 0, usersDir, maxConnections: 2 });
  const p = d3.address.transport === 'tcp' ? d3.address.port : 0;
  const idle = [net.connect(p, '127.0.0.1'), net.connect(p, '127.0.0.1')];
  try {
    await Promise.all(idle.map((s) => new Promise((r) => s.once('connect', r))));
    await until(() => d3.listener.connections === 2);
    const refused = await raw(p, 'bob\r\n');
    assert.equal(refused.length, 0);
    assert.ok(d3.stats.refused >= 1);
    idle[0]?.resume();
    idle[0]?.end('bob\r\n');
    await new Promise((r) => idle[0]?.once('close', r));
    assert.match((await raw(p, 'bob\r\n')).toString(), /^Login: bob/);
  } finally {
    for (const s of idle) s.destroy();
    await d3.close({ graceMs: 100 });
  }
});

test('query time limit: a client that never finishes its line is closed', async () => {
  const d4 = await startFingerd({ host: '127.0.0.1', port: 0, usersDir, queryTimeoutMs: 300 });
  try {
    const p = d4.address.transport === 'tcp' ? d4.address.port : 0;
    const reply = await raw(p, 'bo', { end: false });
    assert.equal(reply.length, 0);
    assert.equal(d4.stats.timedOut, 1);
  } finally {
    await d4.close();
  }
});

test('close() lets a query in flight finish', async () => {
  const d5 = await startFingerd({ host: '127.0.0.1', port: 0, usersDir });
  const p = d5.address.transport === 'tcp' ? d5.address.port : 0;
  const s = net.connect(p, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.write('bo');
  const chunks: Buffer[] = [];
  s.on('data', (c) => chunks.push(c));
  const closedP = new Promise((r) => s.once('close', r));
  await until(() => d5.listener.connections === 1);
  const closing = d5.close({ graceMs: 5000 });
  await new Promise((r) => setTimeout(r, 100));
  // new connections are no longer accepted
  await assert.rejects(fingerQuery({ host: '127.0.0.1', port: p, query: 'bob', timeoutMs: 2000 }));
  s.end('b\r\n');
  await closedP;
  await closing;
  assert.match(Buffer.concat(chunks).toString(), /^Login: bob/);
});
