/**
 * The wire protocol is language-neutral: a client written from the README in
 * Python (standard library only) registers a name over the Unix socket in
 * protocol version 1; the Node client sees it with the owner's real pid, and
 * the name goes when the Python process exits. A second Python client speaks
 * version 2 and looks names up with binary lookup frames, decoding the record
 * frames as the README lays them out, and gets a typed JSON error frame for a
 * name nobody holds. Also: the Python peer gets a typed error frame for a
 * frame of an unknown version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NameClient, startNameServer } from '../../src/naming/index.js';

const PY = `
import json, os, socket, struct, sys

def send(s, ftype, fid, payload, version=1):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    s.sendall(struct.pack('>IBBBBI', 8 + len(body), 0x4E, version, ftype, 0, fid) + body)

def recv(s):
    def exact(n):
        b = b''
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c: raise EOFError
            b += c
        return b
    (n,) = struct.unpack('>I', exact(4))
    magic, version, ftype, flags, fid = struct.unpack('>BBBBI', exact(8))
    assert magic == 0x4E and version == speaking and flags == 0, (magic, version, flags)
    body = exact(n - 8)
    if ftype == 6:
        return ftype, fid, decode_record(body)
    return ftype, fid, json.loads(body)

def decode_record(b):
    fields, r1, r2, pairs, since_hi, since_lo = struct.unpack_from('>BBHIII', b, 0)
    assert fields & 0xC0 == 0 and r1 == 0 and r2 == 0
    at = 16
    def u32():
        nonlocal at
        (v,) = struct.unpack_from('>I', b, at)
        at += 4
        return v
    rec = {'since': since_hi << 32 | since_lo, 'contact': {}, 'owner': {}}
    if fields & 1: rec['contact']['program'] = u32()
    if fields & 2: rec['contact']['version'] = u32()
    if fields & 8: rec['owner']['pid'] = u32()
    if fields & 16: rec['owner']['uid'] = u32()
    if fields & 32: rec['leaseExpiresAt'] = u32() << 32 | u32()
    lengths = [u32() for _ in range(4 + 2 * pairs)]
    strings = []
    for n in lengths:
        strings.append(b[at:at + n].decode('utf-8'))
        at += n
    assert at == len(b), 'bytes after the strings'
    rec['name'], rec['contact']['address'], rec['contact']['protocol'], rec['owner']['client'] = strings[:4]
    if fields & 4:
        rec['contact']['metadata'] = dict(zip(strings[4::2], strings[5::2]))
    return rec

speaking = 1

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
ftype, fid, greeting = recv(s)
assert ftype == 4 and greeting['kind'] == 'greeting', greeting
if sys.argv[2] == 'lookup-v2':
    assert 2 in greeting['versions'], greeting
    speaking = 2
    send(s, 1, 0, {'op': 'hello', 'client': 'python-v2', 'pid': os.getpid()}, version=2)
    assert recv(s)[0] == 2
    send(s, 5, 7, sys.argv[3].encode(), version=2)
    found = recv(s)
    send(s, 5, 8, 'nobody/here'.encode(), version=2)
    missing = recv(s)
    send(s, 5, 9, 'has space'.encode(), version=2)
    bad_name = recv(s)
    print(json.dumps([found, missing, bad_name]), flush=True)
    sys.exit(0)
if sys.argv[2] == 'bad-version':
    send(s, 1, 1, {'op': 'ping'}, version=9)
    print(json.dumps(recv(s)), flush=True)
    sys.exit(0)
send(s, 1, 0, {'op': 'hello', 'client': 'python-peer', 'pid': os.getpid()})
assert recv(s)[0] == 2
send(s, 1, 1, {'op': 'register', 'name': 'py/service', 'contact': {'address': 'tcp://127.0.0.1:8000', 'protocol': 'http', 'metadata': {'lang': 'python'}}})
ftype, fid, reply = recv(s)
assert ftype == 2 and fid == 1, reply
print(json.dumps({'pid': os.getpid(), 'token': reply['token']}), flush=True)
sys.stdin.read()
`;

test('a Python client registers over the documented wire protocol', { timeout: 60_000 }, async (t) => {
  if (spawnSync('python3', ['--version']).status !== 0) return t.skip('python3 is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'sb-ns-py-'));
  const sock = join(dir, 'ns.sock');
  const server = await startNameServer({ listen: [`unix://${sock}`], graceMs: 300 });
  const c = await NameClient.connect({ address: `unix://${sock}` });
  const py = spawn('python3', ['-c', PY, sock, 'register'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  py.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      py.stdout.once('data', (d: Buffer) => resolve(d.toString()));
      py.once('exit', (code) => reject(new Error(`python exited ${code}: ${err}`)));
    });
    const { pid, token } = JSON.parse(line) as { pid: number; token: string };
    assert.ok(token.length > 10);
    const r = await c.lookup('py/service');
    assert.equal(r.owner.client, 'python-peer');
    assert.equal(r.owner.pid, pid, 'pid from SO_PEERCRED matches the Python process');
    assert.deepEqual(r.contact.metadata, { lang: 'python' });

    // A version-2 Python client looks names up with binary frames; the record
    // it decodes from the README's layout is the one the Node client sees.
    await c.register('py/ünïcode', { address: 'unix:///tmp/sock', protocol: 'oncrpc', program: 100003, version: 3, metadata: { 'ключ': 'значение', k2: '' } });
    for (const name of ['py/service', 'py/ünïcode']) {
      const v2 = spawn('python3', ['-c', PY, sock, 'lookup-v2', name], { stdio: ['ignore', 'pipe', 'pipe'] });
      let v2out = '';
      let v2err = '';
      v2.stdout.on('data', (d: Buffer) => (v2out += d.toString()));
      v2.stderr.on('data', (d: Buffer) => (v2err += d.toString()));
      assert.equal(await new Promise((resolve) => v2.once('exit', resolve)), 0, v2err);
      const [found, missing, badName] = JSON.parse(v2out) as [number, number, Record<string, unknown>][];
      assert.deepEqual(found?.slice(0, 2), [6, 7]);
      assert.deepEqual(found?.[2], await c.lookup(name));
      assert.deepEqual(missing?.slice(0, 2), [3, 8]);
      assert.equal(missing?.[2]?.['code'], 'ENOENT');
      assert.deepEqual(badName?.slice(0, 2), [3, 9]);
      assert.equal(badName?.[2]?.['code'], 'EINVAL');
    }
    await c.unregister('py/ünïcode');
    py.stdin.end();
    await new Promise((resolve) => py.once('exit', resolve));
    const deadline = Date.now() + 5000;
    while ((await c.list('py/')).length > 0) {
      assert.ok(Date.now() < deadline, 'the name outlived its owner');
      await new Promise((res) => setTimeout(res, 50));
    }

    // (Not spawnSync: the daemon runs in this process and must keep serving.)
    const bad = spawn('python3', ['-c', PY, sock, 'bad-version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let berr = '';
    bad.stdout.on('data', (d: Buffer) => (out += d.toString()));
    bad.stderr.on('data', (d: Buffer) => (berr += d.toString()));
    const status = await new Promise((resolve) => bad.once('exit', resolve));
    assert.equal(status, 0, berr);
    const [ftype, fid, payload] = JSON.parse(out) as [number, number, { code: string; message: string }];
    assert.equal(ftype, 3);
    assert.equal(fid, 0);
    assert.equal(payload.code, 'EVERSION');
    assert.match(payload.message, /version 9 is not supported/);
  } finally {
    if (py.exitCode === null) py.kill('SIGKILL');
    await c.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
