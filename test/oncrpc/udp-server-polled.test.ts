/**
 * The server's polled path on UDP (DatagramServerPoll): right after a reply
 * the server takes the next call datagram straight from its socket and
 * answers it with one sendto. A client in another process (so that it can
 * call while the server spins) gets every answer right, calls are taken on
 * that path, a reply too long for a datagram still becomes an error reply,
 * and with spinUs 0 the path is never used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { RpcServer, xdr } from '../../src/oncrpc/index.js';

const PROG = 0x2000ba4f;

const CHILD = `
const { RpcClient, xdr } = await import(process.env.ONCRPC_URL);
const c = await RpcClient.connect(process.env.ADDR);
let bad = 0;
for (let i = 0; i < 300; i++) {
  const b = Uint8Array.from({ length: 1 + (i % 200) }, (_, k) => (k + i) & 255);
  const r = await c.call(${PROG}, 1, 2, xdr.opaque(), b, xdr.opaque());
  if (r.length !== b.length || r.some((x, k) => x !== b[k])) bad++;
}
let big = 'none';
try { await c.call(${PROG}, 1, 6, xdr.uint, 70000, xdr.opaque()); } catch (e) { big = e.code ?? e.name; }
await c.close();
process.stdout.write(JSON.stringify({ bad, big }) + '\\n');
`;

async function runClient(address: string): Promise<{ bad: number; big: string }> {
  const url = new URL(`../../src/oncrpc/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test') && a !== '--input-type=module');
  const c = spawn(process.execPath, [...execArgv, '--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ONCRPC_URL: url, ADDR: address } });
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => c.once('exit', r));
  assert.equal(code, 0, 'the client process ran to the end');
  return JSON.parse(out.trim()) as { bad: number; big: string };
}

function server(spinUs: number): RpcServer {
  const s = new RpcServer({ spinUs });
  s.addProgram(PROG, 1, {
    2: { args: xdr.opaque(), result: xdr.opaque(), handler: (b: Uint8Array) => b },
    6: { args: xdr.uint, result: xdr.opaque(), handler: (n: number) => new Uint8Array(n).fill(7) },
  });
  return s;
}

test('UDP calls taken on the polled path are answered right, and an oversized reply is still an error reply', async () => {
  // A long spin, so that the client's next call (from another process) comes while we look.
  const s = server(20_000);
  try {
    const a = await s.listen('udp://127.0.0.1:0');
    const r = await runClient(`udp://127.0.0.1:${(a as { port: number }).port}`);
    assert.equal(r.bad, 0, 'every echo came back intact');
    assert.equal(r.big, 'ERPC', 'a result too long for a datagram is a SYSTEM_ERR reply, not a timeout');
    assert.ok(s.polledDatagrams > 0, `calls were taken on the polled path (${s.polledDatagrams} of 301)`);
  } finally {
    await s.close();
  }
});

test('with spinUs 0 the server never polls its UDP socket', async () => {
  const s = server(0);
  try {
    const a = await s.listen('udp://127.0.0.1:0');
    const r = await runClient(`udp://127.0.0.1:${(a as { port: number }).port}`);
    assert.equal(r.bad, 0);
    assert.equal(s.polledDatagrams, 0);
  } finally {
    await s.close();
  }
});
