/**
 * Our finger client against servers we did not write: netkit's in.fingerd
 * (package fingerd, run per connection the way inetd runs it) and a
 * ten-line Python server that answers with hostile bytes; and our client's
 * rendering of those bytes against the Debian client's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finger, fingerQuery, parseFingerTarget, renderFingerOutput } from '../../src/daemons/index.js';
import { debianClientUnavailable, debianFinger, localFinger, servicesWithFingerPort } from './finger-helpers.js';

const IN_FINGERD = '/usr/sbin/in.fingerd';
let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'sb-finger-client-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const targets: [string, { query: string; host: string; port: number }][] = [
  ['alice@example.org', { query: 'alice', host: 'example.org', port: 79 }],
  ['@example.org', { query: '', host: 'example.org', port: 79 }],
  ['alice@127.0.0.1:7979', { query: 'alice', host: '127.0.0.1', port: 7979 }],
  ['alice@[::1]:7979', { query: 'alice', host: '::1', port: 7979 }],
  ['alice@[::1]', { query: 'alice', host: '::1', port: 79 }],
  ['alice@h1@h2', { query: 'alice@h1', host: 'h2', port: 79 }],
  ['alice', { query: 'alice', host: 'localhost', port: 79 }],
  ['alice@h:finger', { query: 'alice', host: 'h', port: 79 }],
];
for (const [text, want] of targets) {
  test(`parseFingerTarget(${JSON.stringify(text)})`, () => assert.deepEqual(parseFingerTarget(text), want));
}
for (const bad of ['alice@', 'a@[::1', 'a@h:nosuchservice']) {
  test(`parseFingerTarget rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parseFingerTarget(bad)));
}

test('renderFingerOutput: CRLF and CR to LF, carets for controls, M-^X for C1, other bytes as they are', () => {
  const input = Buffer.from('a\r\nb\rc\nd\x07e\x1b[1m\tf\x7f\x85\xe9\xc3\xa9\r\r\n', 'latin1');
  assert.equal(renderFingerOutput(input).toString('latin1'), 'a\nb\nc\nd^Ge^[[1m\tf^?M-^E\xe9\xc3\xa9\n\n');
});

/** A one-connection-at-a-time inetd: spawns `command` with the socket as stdin, stdout and stderr. */
async function miniInetd(command: string, args: string[]): Promise<{ port: number; close(): Promise<void> }> {
  const children = new Set<ChildProcess>();
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    const child = spawn(command, args, { stdio: [sock, sock, sock] });
    children.add(child);
    child.on('exit', () => {
      children.delete(child);
      sock.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const c of children) c.kill('SIGKILL');
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const noNetkit = existsSync(IN_FINGERD) ? (existsSync('/usr/bin/finger') ? undefined : 'in.fingerd needs /usr/bin/finger (apt-get install finger)') : 'netkit in.fingerd is not installed (apt-get install fingerd)';

test('our client -> netkit in.fingerd: a real account, the list, an unknown user, a refused forward', { skip: noNetkit ?? false }, async () => {
  const inetd = await miniInetd(IN_FINGERD, []);
  try {
    const t = { host: '127.0.0.1', port: inetd.port };
    const root = await finger({ ...t, query: 'root' });
    assert.equal(root, await localFinger(['root']));
    const list = await finger({ ...t, query: '' });
    assert.equal(list, await localFinger([]));
    const unknown = await finger({ ...t, query: 'no-such-user-xyz' });
    assert.equal(unknown, 'finger: no-such-user-xyz: no such user.\n');
    const fwd = await finger({ ...t, query: 'alice@elsewhere' });
    assert.equal(fwd, 'fingerd: forwarding not allowed\n');
  } finally {
    await inetd.close();
  }
});

const python = spawnSync('python3', ['-c', 'import socketserver'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;
const HOSTILE = 'Login: eve\\r\\nPlan:\\r\\nbell\\x07 esc\\x1b[2J del\\x7f c1\\x85 lone\\rcr high\\xe9 utf8\\xc3\\xa9\\r\\nno newline at end';

test('our client renders a hostile answer exactly as the Debian client does', { skip: python === undefined ? 'python3 is not available for the minimal foreign server' : false }, async (t) => {
  // the minimal foreign server: reads a line, records it, answers fixed bytes, closes
  const script = join(root, 'tiny-fingerd.py');
  writeFileSync(
    script,
    [
      'import socketserver, sys',
      'class H(socketserver.StreamRequestHandler):',
      '    def handle(self):',
      '        q = self.rfile.readline(1024)',
      '        sys.stderr.write("query %r\\n" % q); sys.stderr.flush()',
      `        self.wfile.write(b"${HOSTILE}")`,
      'socketserver.TCPServer.allow_reuse_address = True',
      'with socketserver.TCPServer(("127.0.0.1", 0), H) as s:',
      '    print(s.server_address[1], flush=True)',
      '    s.serve_forever()',
      '',
    ].join('\n'),
  );
  const server = spawn('python3', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let queries = '';
  server.stderr.on('data', (d: Buffer) => (queries += d.toString()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      server.once('exit', () => reject(new Error('python server exited')));
    });
    const rawBytes = await fingerQuery({ host: '127.0.0.1', port, query: 'eve', verbose: true });
    assert.ok(rawBytes.includes(0x1b), 'the raw answer keeps its bytes');
    const ours = renderFingerOutput(rawBytes).toString('latin1');
    assert.equal(ours, 'Login: eve\nPlan:\nbell^G esc^[[2J del^? c1M-^E lone\ncr high\xe9 utf8\xc3\xa9\nno newline at end');
    const whyNot = debianClientUnavailable();
    if (whyNot === undefined) {
      const debian = await debianFinger(servicesWithFingerPort(root, port), ['-l', 'eve@127.0.0.1']);
      assert.equal(ours, debian.stdout);
    } else {
      t.diagnostic(`Debian client comparison skipped: ${whyNot}`);
    }
    assert.match(queries, /query b'\/W eve\\r\\n'/);
  } finally {
    server.kill('SIGTERM');
  }
});

test('timeout: a server that never answers', async () => {
  const silent = net.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const sockets = new Set<net.Socket>();
  silent.on('connection', (s) => sockets.add(s));
  try {
    const port = (silent.address() as net.AddressInfo).port;
    await assert.rejects(fingerQuery({ host: '127.0.0.1', port, query: 'x', timeoutMs: 300 }), (err: unknown) => (err as { code?: string }).code === 'ETIMEDOUT');
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
  }
});

test('refused connection: a typed error', async () => {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  await assert.rejects(fingerQuery({ host: '127.0.0.1', port, query: 'x' }), (err: unknown) => (err as { code?: string }).code === 'ECONNREFUSED');
});
