/**
 * The polled reply path (record-stream.ts): after a call goes out, the client
 * reads the reply straight from the socket for up to spinUs; after a reply,
 * the server may read the next call the same way. Peers that must answer
 * while we spin run in a child process (a peer in this process cannot run
 * until the spin ends, which the in-process tests use to exercise misses).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient, RpcServer, SystemErrError, GarbageArgsError, xdr, type Procedure } from '../../src/oncrpc/index.js';
import { ArgumentError, SwitchboardError } from '../../src/errors.js';
import { bytes, settledWithoutLoopTurn, startReadyChild } from './helpers.js';

const PROG = 0x2000ba4d;
const dir = mkdtempSync(join(tmpdir(), 'oncrpc-spin-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs in the child: our server (spinUs from argv), or a raw socket that ends or resets after the first call. */
const CHILD = `
import net from 'node:net';
const [kind, arg, unixPath] = process.argv.slice(-3);
const { RpcServer, GarbageArgsError, xdr } = await import(process.env.ONCRPC_URL);
let port;
if (kind === 'rpc') {
  const busy = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
  const s = new RpcServer({ spinUs: Number(arg) });
  s.addProgram(${PROG}, 1, {
    2: { args: xdr.opaque(), result: xdr.opaque(), handler: (b) => b },
    3: { args: xdr.uint, result: xdr.uint, handler: async (ms) => { await new Promise((r) => setTimeout(r, ms)); return ms; } },
    4: { args: xdr.void, result: xdr.void, handler: () => { throw new Error('boom'); } },
    7: { args: xdr.void, result: xdr.void, handler: async () => { throw new GarbageArgsError('no'); } },
    11: { args: xdr.uint, result: xdr.uint, handler: (ms) => { busy(ms); return ms * 2; } },
  });
  port = (await s.listen('tcp://127.0.0.1:0')).port;
  await s.listen('unix://' + unixPath);
} else {
  const onConn = (sock) => sock.once('data', () => setTimeout(() => (kind === 'rst' ? sock.resetAndDestroy() : sock.end()), Number(arg)));
  const tcp = net.createServer(onConn).listen(0, '127.0.0.1');
  await new Promise((r) => tcp.once('listening', r));
  port = tcp.address().port;
  const unix = net.createServer(onConn).listen(unixPath);
  await new Promise((r) => unix.once('listening', r));
}
process.stdout.write('READY ' + port + '\\n');
`;

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGTERM');
});

let seq = 0;
/** Start a peer in a child process: its tcp:// and unix:// addresses. */
async function startChild(kind: 'rpc' | 'end' | 'rst', arg: number): Promise<{ tcp: string; unix: string }> {
  const unixPath = join(dir, `child-${seq++}.sock`);
  const { child, port } = await startReadyChild(CHILD, [kind, String(arg), unixPath]);
  children.push(child);
  return { tcp: `tcp://127.0.0.1:${port}`, unix: `unix://${unixPath}` };
}


const blob = xdr.opaque();
/** Results are Uint8Arrays: a Buffer (a chunk Node read) or a plain one (bytes read directly, records put together). */
const plain = (v: unknown) => (v instanceof Uint8Array ? Uint8Array.from(v) : v);

const rpcPeers = { spinning: await startChild('rpc', 200), plain: await startChild('rpc', 0) };

for (const tr of ['tcp', 'unix'] as const) {
  for (const [peerName, peer] of Object.entries(rpcPeers)) {
    for (const spinUs of [0, 100, 5000]) {
      test(`${tr}, server ${peerName}, client spinUs=${spinUs}: echoes of every size come back intact, one at a time and many in flight`, async () => {
        const c = await RpcClient.connect(peer[tr], { spinUs });
        try {
          assert.equal(c.spinUs, spinUs);
          for (const n of [0, 1, 1024, 70_000, 300_000]) {
            const b = bytes(n, n);
            assert.deepEqual(plain(await c.call(PROG, 1, 2, blob, b, blob)), b);
          }
          // Results that are views of the bytes read must survive later reads.
          const kept: Uint8Array[] = [];
          for (let i = 0; i < 300; i++) kept.push(await c.call(PROG, 1, 2, blob, bytes(i % 40, i), blob));
          kept.forEach((k, i) => assert.deepEqual(plain(k), bytes(i % 40, i)));
          // Mixed: quick echoes, async procedures, a synchronous busy one, error replies, all in flight.
          const calls: Array<Promise<unknown>> = [];
          const want: Array<unknown> = [];
          for (let i = 0; i < 200; i++) {
            switch (i % 5) {
              case 0: calls.push(c.call(PROG, 1, 2, blob, bytes(i * 13, i), blob)); want.push(bytes(i * 13, i)); break;
              case 1: calls.push(c.call(PROG, 1, 3, xdr.uint, i % 7, xdr.uint)); want.push(i % 7); break;
              case 2: calls.push(c.call(PROG, 1, 11, xdr.uint, i % 2, xdr.uint)); want.push((i % 2) * 2); break;
              case 3: calls.push(c.call(PROG, 1, 4, xdr.void, undefined, xdr.void).catch((e: unknown) => e)); want.push(SystemErrError); break;
              default: calls.push(c.call(PROG, 1, 7, xdr.void, undefined, xdr.void).catch((e: unknown) => e)); want.push(GarbageArgsError);
            }
          }
          const got = await Promise.all(calls);
          got.forEach((g, i) => {
            const w = want[i];
            if (typeof w === 'function') assert.ok(g instanceof (w as typeof Error), `call ${i}: ${String(g)}`);
            else assert.deepEqual(plain(g), w, `call ${i}`);
          });
          assert.equal(c.inFlight, 0);
        } finally {
          await c.close();
        }
      });
    }
  }
}

for (const clients of [3, 12]) {
  test(`${clients} clients at once on a server that spins after replies (it polls every connection up to ${8}, then leaves it to epoll)`, async () => {
    const cs = await Promise.all(Array.from({ length: clients }, (_, k) => RpcClient.connect(k % 2 ? rpcPeers.spinning.unix : rpcPeers.spinning.tcp, { spinUs: k % 3 ? 200 : 0 })));
    try {
      await Promise.all(
        cs.map(async (c, k) => {
          for (let i = 0; i < 100; i++) {
            const b = bytes((i * 7 + k) % 300, k * 1000 + i);
            assert.deepEqual(plain(await c.call(PROG, 1, 2, blob, b, blob)), b, `client ${k} call ${i}`);
          }
          const many = await Promise.all(Array.from({ length: 20 }, (_, i) => c.call(PROG, 1, 11, xdr.uint, i % 2, xdr.uint)));
          assert.deepEqual(many, Array.from({ length: 20 }, (_, i) => (i % 2) * 2));
        }),
      );
    } finally {
      await Promise.all(cs.map((c) => c.close()));
    }
  });
}

test('with polling on, a reply that comes within spinUs settles before the event loop turns; with spinUs=0 it does not', async () => {
  const on = await RpcClient.connect(rpcPeers.plain.unix, { spinUs: 500_000 });
  const off = await RpcClient.connect(rpcPeers.plain.unix, { spinUs: 0 });
  try {
    // The procedure keeps the server busy for 20 ms: the reply cannot be there at once.
    const a = await settledWithoutLoopTurn(on.call(PROG, 1, 11, xdr.uint, 20, xdr.uint));
    assert.deepEqual(a, { turn: false, value: 40 });
    const b = await settledWithoutLoopTurn(off.call(PROG, 1, 11, xdr.uint, 20, xdr.uint));
    assert.deepEqual(b, { turn: true, value: 40 });
  } finally {
    await on.close();
    await off.close();
  }
});

test('a reply slower than spinUs comes the ordinary way, and the client goes on', async () => {
  const c = await RpcClient.connect(rpcPeers.plain.tcp, { spinUs: 50 });
  try {
    for (let i = 0; i < 5; i++) assert.equal(await c.call(PROG, 1, 3, xdr.uint, 15, xdr.uint), 15);
    assert.deepEqual(plain(await c.call(PROG, 1, 2, blob, bytes(99, 1), blob)), bytes(99, 1));
  } finally {
    await c.close();
  }
});

/** The error a pending call fails with when the peer closes (or resets) the connection. */
async function failure(address: string, spinUs: number): Promise<{ turn: boolean; error: unknown; rest: unknown[] }> {
  const c = await RpcClient.connect(address, { spinUs, reconnect: false });
  try {
    const first = c.call(PROG, 1, 2, blob, bytes(8, 0), blob);
    const rest = [c.ping(PROG, 1).catch((e: unknown) => e), c.ping(PROG, 1).catch((e: unknown) => e)];
    const r = await settledWithoutLoopTurn(first);
    return { turn: r.turn, error: r.error, rest: await Promise.all(rest) };
  } finally {
    await c.close();
  }
}

const shape = (e: unknown) => ({ name: (e as Error).name, code: (e as SwitchboardError).code, message: (e as Error).message.replace(/:\d+/g, ':PORT') });

for (const kind of ['end', 'rst'] as const) {
  test(`${kind === 'end' ? 'EOF' : 'a reset'} during a spin fails every pending call with the same typed error as without polling`, async () => {
    const peer = await startChild(kind, 20);
    for (const tr of ['tcp', 'unix'] as const) {
      if (kind === 'rst' && tr === 'unix') continue; // a Unix socket cannot be reset: resetAndDestroy is TCP only
      const polled = await failure(peer[tr], 1_000_000);
      const plain = await failure(peer[tr], 0);
      assert.equal(polled.turn, false, `${tr}: the end was seen by the spin`);
      assert.ok(polled.error instanceof SwitchboardError, String(polled.error));
      assert.equal((polled.error as SwitchboardError).code, 'ECONNRESET');
      assert.deepEqual(shape(polled.error), shape(plain.error));
      for (const [i, e] of polled.rest.entries()) assert.deepEqual(shape(e), shape(plain.rest[i]));
    }
  });
}

test('our client and our server in one process: every spin misses (the peer cannot run), replies still arrive', async () => {
  const s = new RpcServer({ spinUs: 200 });
  const procs: Record<number, Procedure<any, any>> = { 2: { args: blob, result: blob, handler: (b: Uint8Array) => b } };
  s.addProgram(PROG, 1, procs);
  try {
    const addr = await s.listen(`unix://${join(dir, 'inproc.sock')}`);
    const c = await RpcClient.connect(addr, { spinUs: 200 });
    try {
      for (let i = 0; i < 50; i++) assert.deepEqual(plain(await c.call(PROG, 1, 2, blob, bytes(i, i), blob)), bytes(i, i));
      const many = await Promise.all(Array.from({ length: 100 }, (_, i) => c.call(PROG, 1, 2, blob, bytes(i * 10, i), blob)));
      many.forEach((m, i) => assert.deepEqual(plain(m), bytes(i * 10, i)));
    } finally {
      await c.close();
    }
  } finally {
    await s.close();
  }
});

test('spinUs: 0 turns polling off; a negative, NaN or infinite value is an ArgumentError; the environment sets the default', async () => {
  const s = new RpcServer({ spinUs: 0 });
  assert.equal(s.spinUs, 0);
  const tcp = rpcPeers.plain.tcp;
  const c = await RpcClient.connect(tcp, { spinUs: 0 });
  assert.equal(c.spinUs, 0);
  await c.close();
  for (const bad of [-1, Number.NaN, Infinity, -Infinity, 2e6, '50' as unknown as number]) {
    await assert.rejects(RpcClient.connect(tcp, { spinUs: bad }), ArgumentError, `client spinUs ${String(bad)}`);
    assert.throws(() => new RpcServer({ spinUs: bad }), ArgumentError, `server spinUs ${String(bad)}`);
  }
  const saved = { client: process.env.SWITCHBOARD_ONCRPC_SPIN_US, server: process.env.SWITCHBOARD_ONCRPC_SERVER_SPIN_US };
  try {
    process.env.SWITCHBOARD_ONCRPC_SPIN_US = '0';
    process.env.SWITCHBOARD_ONCRPC_SERVER_SPIN_US = '25';
    const d = await RpcClient.connect(tcp);
    assert.equal(d.spinUs, 0);
    await d.close();
    assert.equal(new RpcServer().spinUs, 25);
    // An explicit option wins over the environment.
    const e = await RpcClient.connect(tcp, { spinUs: 30 });
    assert.equal(e.spinUs, 30);
    await e.close();
    process.env.SWITCHBOARD_ONCRPC_SPIN_US = 'fast';
    await assert.rejects(RpcClient.connect(tcp), (err: unknown) => err instanceof ArgumentError && /SWITCHBOARD_ONCRPC_SPIN_US/.test(err.message));
    process.env.SWITCHBOARD_ONCRPC_SERVER_SPIN_US = '-5';
    assert.throws(() => new RpcServer(), ArgumentError);
  } finally {
    for (const [k, v] of [['SWITCHBOARD_ONCRPC_SPIN_US', saved.client], ['SWITCHBOARD_ONCRPC_SERVER_SPIN_US', saved.server]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  // UDP replies are polled too (one datagram per read from the socket).
  const u = new RpcServer();
  u.addProgram(PROG, 1, {});
  const addr = await u.listen('udp://127.0.0.1:0');
  const uc = await RpcClient.connect(addr, { spinUs: 100 });
  assert.equal(uc.spinUs, 100);
  await uc.ping(PROG, 1);
  await uc.close();
  await u.close();
});
