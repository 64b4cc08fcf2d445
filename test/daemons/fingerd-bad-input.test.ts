/**
 * fingerd under hostile clients, in its own process so its memory can be
 * watched: a 1 MB query line, a line that never ends, a client sending one
 * byte a second, binary garbage, and 500 connections at once. Each gets an
 * answer or a clean close, the daemon keeps serving everyone else, and its
 * resident memory stays bounded.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerQuery } from '../../src/daemons/index.js';
import { makeUsersDir, runCli, type CliProcess } from './helpers.js';

let root: string;
let daemon: CliProcess;
let port: number;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'sb-fingerd-bad-'));
  chmodSync(root, 0o755);
  const usersDir = makeUsersDir(join(root, 'users'), [{ login: 'bob', meta: { name: 'Bob Smith' }, files: { '.plan': 'plan\n'.repeat(50) } }]);
  daemon = runCli([
    'fingerd', '--host', '127.0.0.1', '--port', '0', '--users-dir', usersDir,
    '--query-timeout-ms', '2000', '--connection-timeout-ms', '5000', '--max-connections', '100',
  ]);
  port = Number((await daemon.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/))[1]);
});
after(async () => {
  const status = await daemon.stop();
  rmSync(root, { recursive: true, force: true });
  assert.equal(status, 0, daemon.stderr().slice(-2000));
});

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

interface Outcome {
  data: Buffer;
  /** 'end' = orderly close; 'reset' = connection reset (also a clean refusal for a client still sending). */
  how: 'end' | 'reset';
}

/** Connect, run `feed`, collect until the server closes. */
function exchange(feed: (s: net.Socket) => void | Promise<void>): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let how: Outcome['how'] = 'end';
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => (how = 'reset'));
    s.on('close', () => resolve({ data: Buffer.concat(chunks), how }));
    s.once('connect', () => void feed(s));
  });
}

async function stillServes(): Promise<void> {
  const answer = (await fingerQuery({ host: '127.0.0.1', port, query: 'bob', timeoutMs: 10_000 })).toString();
  assert.match(answer, /^Login: bob/);
}

test('a 1 MB query line is refused after the first KiB, not buffered', async (t) => {
  const before = rssKiB(daemon.pid);
  const r = await exchange((s) => {
    s.write(Buffer.alloc(1024 * 1024, 0x61));
    s.end('\r\n');
  });
  assert.ok(r.data.length === 0 || r.data.toString() === 'finger: query too long.\r\n', JSON.stringify(r.data.toString().slice(0, 100)));
  await stillServes();
  const after = rssKiB(daemon.pid);
  assert.ok(after - before < 32 * 1024, 'RSS grew by less than 32 MiB');
  t.diagnostic(`1 MB line: ${r.how}, ${r.data.length} bytes back; daemon RSS ${before} -> ${after} KiB`);
});

test('a line with no CRLF that never ends is closed by the query time limit; others are served meanwhile', async () => {
  const pending = exchange((s) => void s.write('bob'));
  await stillServes();
  const r = await pending;
  assert.equal(r.data.length, 0);
  assert.match(daemon.stderr(), /no query within 2000 ms, closed/);
});

test('a slow client (one byte a second) is cut off; others are served meanwhile', async () => {
  let timer: NodeJS.Timeout | undefined;
  const pending = exchange((s) => {
    const bytes = Buffer.from('bob\r\n');
    let i = 0;
    timer = setInterval(() => {
      if (s.destroyed || i >= bytes.length) return clearInterval(timer);
      s.write(bytes.subarray(i, ++i));
    }, 1000);
  });
  await stillServes();
  const r = await pending;
  clearInterval(timer);
  assert.equal(r.data.length, 0, 'closed before the line was complete');
});

test('binary garbage gets an error line or a close', async () => {
  for (let i = 0; i < 20; i++) {
    const junk = randomBytes(1 + (i * 211) % 3000);
    const r = await exchange((s) => void s.end(junk));
    const text = r.data.toString('latin1');
    // an answer (junk may start with a line end: an empty {C} query) or an error line, or a close
    const legit = text === '' || /^(finger: |Finger |Login|No one logged on\.)/.test(text);
    assert.ok(legit, `${JSON.stringify(text.slice(0, 80))} for input ${junk.toString('hex').slice(0, 200)}`);
    assert.ok(!/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(text), 'no raw control characters echoed back');
  }
  await stillServes();
});

test('500 connections at once: each is answered or closed, the daemon stays up and bounded', async (t) => {
  const before = rssKiB(daemon.pid);
  const outcomes = await Promise.all(Array.from({ length: 500 }, () => exchange((s) => void s.end('bob\r\n'))));
  const answered = outcomes.filter((o) => o.data.toString().startsWith('Login: bob')).length;
  const closed = outcomes.filter((o) => o.data.length === 0).length;
  assert.equal(answered + closed, 500, 'every connection got a whole answer or nothing');
  assert.ok(answered >= 100, `answered ${answered}`);
  await stillServes();
  const grown = rssKiB(daemon.pid) - before;
  assert.ok(grown < 64 * 1024, `RSS grew by ${grown} KiB`);
  t.diagnostic(`500 at once: ${answered} answered, ${closed} closed at the limit; daemon RSS ${before} -> ${before + grown} KiB`);
});
