/**
 * The polled reply path on UDP (datagram-poll.ts): after a call goes out the
 * client takes reply datagrams straight from its socket for up to spinUs,
 * one per read. Retransmission, timeouts, the duplicate request cache and
 * replies too long for maxRecordSize behave as on the event-loop path. The
 * server runs in a child process so that it can answer while we spin.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { RpcClient, xdr } from '../../src/oncrpc/index.js';
import { ProtocolError, SwitchboardError } from '../../src/errors.js';
import { bytes, settledWithoutLoopTurn, startReadyChild } from './helpers.js';

const PROG = 0x2000ba4e;

const CHILD = `
const { RpcServer, xdr } = await import(process.env.ONCRPC_URL);
const s = new RpcServer();
let runs = 0;
s.addProgram(${PROG}, 1, {
  2: { args: xdr.opaque(), result: xdr.opaque(), handler: (b) => b },
  3: { args: xdr.uint, result: xdr.uint, handler: async (ms) => { runs++; await new Promise((r) => setTimeout(r, ms)); return ms; } },
  5: { args: xdr.void, result: xdr.uint, handler: () => runs },
  6: { args: xdr.uint, result: xdr.opaque(), handler: (n) => new Uint8Array(n).fill(7) },
});
const a = await s.listen('udp://127.0.0.1:0');
process.stdout.write('READY ' + a.port + '\\n');
`;

let child: ChildProcess | undefined;
let address = '';
before(async () => {
  const ready = await startReadyChild(CHILD);
  child = ready.child;
  const port = ready.port;
  address = `udp://127.0.0.1:${port}`;
});
after(() => void child?.kill('SIGTERM'));

const blob = xdr.opaque();
const plain = (u: Uint8Array) => new Uint8Array(u);


for (const spinUs of [0, 100, 200_000]) {
  test(`udp, spinUs=${spinUs}: echoes of every size come back intact, one at a time and many in flight`, async () => {
    const c = await RpcClient.connect(address, { spinUs });
    try {
      assert.equal(c.spinUs, spinUs);
      for (const n of [0, 1, 1000, 8000, 60_000]) assert.deepEqual(plain(await c.call(PROG, 1, 2, blob, bytes(n, n), blob)), bytes(n, n));
      const sizes = Array.from({ length: 40 }, (_, i) => (i * 977) % 9000);
      const out = await Promise.all(sizes.map((n, i) => c.call(PROG, 1, 2, blob, bytes(n, i), blob)));
      out.forEach((r, i) => assert.deepEqual(plain(r), bytes(sizes[i] as number, i)));
      assert.equal(c.inFlight, 0);
    } finally {
      await c.close();
    }
  });
}

test('udp: a reply within spinUs settles before the event loop turns; with spinUs=0 it does not', async () => {
  const on = await RpcClient.connect(address, { spinUs: 500_000 });
  const off = await RpcClient.connect(address, { spinUs: 0 });
  try {
    // 20 ms in the server: the reply cannot be there at once.
    assert.deepEqual(await settledWithoutLoopTurn(on.call(PROG, 1, 3, xdr.uint, 20, xdr.uint)), { turn: false, value: 20 });
    assert.deepEqual(await settledWithoutLoopTurn(off.call(PROG, 1, 3, xdr.uint, 20, xdr.uint)), { turn: true, value: 20 });
  } finally {
    await on.close();
    await off.close();
  }
});

for (const spinUs of [0, 2000]) {
  test(`udp, spinUs=${spinUs}: retransmissions of a slow call are absorbed by the duplicate request cache (it runs once), and a call past its timeout fails and the client goes on`, async () => {
    const c = await RpcClient.connect(address, { spinUs, retransmitMs: 5 });
    try {
      const before = await c.call(PROG, 1, 5, xdr.void, undefined, xdr.uint);
      // 80 ms in the procedure: several retransmissions go out meanwhile (5, 10, 20, 40 ms).
      assert.equal(await c.call(PROG, 1, 3, xdr.uint, 80, xdr.uint), 80);
      assert.equal(await c.call(PROG, 1, 5, xdr.void, undefined, xdr.uint), before + 1, 'the procedure ran once');
      await assert.rejects(c.call(PROG, 1, 3, xdr.uint, 300, xdr.uint, { timeoutMs: 40 }), (e: unknown) => e instanceof SwitchboardError && e.code === 'ETIMEDOUT');
      assert.equal(c.inFlight, 0);
      assert.deepEqual(plain(await c.call(PROG, 1, 2, blob, bytes(500, 3), blob)), bytes(500, 3));
      // The timed-out call's late reply arrives meanwhile and is ignored.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(plain(await c.call(PROG, 1, 2, blob, bytes(50, 4), blob)), bytes(50, 4));
    } finally {
      await c.close();
    }
  });
}

for (const spinUs of [0, 200_000]) {
  test(`udp, spinUs=${spinUs}: a reply longer than maxRecordSize fails its call with EMSGSIZE, not cut short; the client goes on`, async () => {
    const c = await RpcClient.connect(address, { spinUs, maxRecordSize: 1024 });
    try {
      const short = await c.call(PROG, 1, 6, xdr.uint, 900, blob);
      assert.equal(short.length, 900);
      const err = await c.call(PROG, 1, 6, xdr.uint, 2000, blob).catch((e: unknown) => e);
      assert.ok(err instanceof ProtocolError && err.code === 'EMSGSIZE', String(err));
      assert.match((err as Error).message, /maxRecordSize \(1024 bytes\)/);
      assert.equal(c.inFlight, 0);
      assert.equal((await c.call(PROG, 1, 6, xdr.uint, 8, blob)).length, 8);
    } finally {
      await c.close();
    }
  });
}

test('udp: a refused call (no one on the port) fails alike with and without polling', async () => {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  const codes: unknown[] = [];
  for (const spinUs of [0, 200_000]) {
    const c = await RpcClient.connect(`udp://127.0.0.1:${port}`, { spinUs, retransmitMs: 20 });
    try {
      const err = await c.ping(PROG, 1, { timeoutMs: 500 }).catch((e: unknown) => e);
      codes.push((err as SwitchboardError).code);
      assert.equal(c.inFlight, 0);
    } finally {
      await c.close();
    }
  }
  assert.equal(codes[0], codes[1]);
  assert.ok(codes[0] === 'ECONNREFUSED' || codes[0] === 'ETIMEDOUT', String(codes[0]));
});
