import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import {
  RpcClient,
  RpcServer,
  NO_REPLY,
  xdr,
  XdrWriter,
  XdrReader,
  writeCallHeader,
  readMessageStart,
  readReplyBody,
  AUTH_NONE,
  AuthFlavor,
  AuthStat,
  AuthError,
  ProgUnavailError,
  ProgMismatchError,
  ProcUnavailError,
  GarbageArgsError,
  SystemErrError,
  RpcMismatchError,
  RpcError,
  rpcErrorFromReply,
  type Procedure,
} from '../../src/oncrpc/index.js';
import { formatAddress, type Address } from '../../src/transport/index.js';

const PROG = 0x2000ba4c;
const dir = mkdtempSync(join(tmpdir(), 'oncrpc-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let slowRuns = 0;
let deposits = 0;
let batched: number[] = [];
const pair = xdr.struct<{ a: Uint8Array; n: number; b: Uint8Array }>([['a', xdr.opaque()], ['n', xdr.uint], ['b', xdr.opaque()]]);
const procs: Record<number, Procedure<any, any>> = {
  1: { name: 'BALANCE', args: xdr.string(64), result: xdr.hyper, handler: (name: string) => (name === 'alice' ? 1000n : 0n) },
  2: { name: 'ECHO', args: xdr.opaque(), result: xdr.opaque(), handler: (b: Uint8Array) => b },
  3: { name: 'SLOW', args: xdr.uint, result: xdr.uint, handler: async (ms: number) => { slowRuns++; await new Promise((r) => setTimeout(r, ms)); return ms; } },
  4: { name: 'FAIL', args: xdr.void, result: xdr.void, handler: () => { throw new Error('boom'); } },
  5: { name: 'WHO', args: xdr.void, result: xdr.string(), handler: (_: void, ctx) => `${ctx.transport} ${ctx.authSys?.uid ?? '-'} ${ctx.authSys?.machinename ?? '-'}` },
  6: { name: 'LOG', args: xdr.int, result: xdr.void, handler: (n: number) => { batched.push(n); return NO_REPLY; } },
  8: { name: 'DEPOSIT', args: xdr.uint, result: xdr.uint, handler: async (ms: number) => { deposits++; await new Promise((r) => setTimeout(r, ms)); return deposits; } },
  9: { name: 'BIG', args: xdr.uint, result: xdr.opaque(), handler: (n: number) => new Uint8Array(n) },
  10: { name: 'PAIR', args: pair, result: pair, handler: (v: unknown) => v },
  7: { name: 'ASYNC_ERR', args: xdr.void, result: xdr.void, handler: async () => { throw new GarbageArgsError('no'); } },
};

const server = new RpcServer();
server.addProgram(PROG, 1, procs).addProgram(PROG, 3, { 1: procs[1] as Procedure<any, any> });
const addrs: Record<string, Address> = {
  tcp: await server.listen('tcp://127.0.0.1:0'),
  unix: await server.listen(`unix://${join(dir, 'rpc.sock')}`),
  udp: await server.listen('udp://127.0.0.1:0'),
};
after(() => server.close());

test('a call is byte for byte the known-good libtirpc exchange (PITFALLS)', () => {
  const w = new XdrWriter();
  w.uint(0);
  writeCallHeader(w, { xid: 0x12345678, prog: PROG, vers: 1, proc: 1, cred: AUTH_NONE, verf: AUTH_NONE });
  w.string('alice');
  w.setUintAt(0, (0x80000000 | (w.length - 4)) >>> 0);
  assert.equal(Buffer.from(w.finish()).toString('hex'), '8000003412345678000000000000000220' + '00ba4c000000010000000100000000000000000000000000000000000000056' + '16c696365000000');
  const reply = Buffer.from('123456780000000100000000000000000000000000000000000003e8', 'hex');
  const r = new XdrReader(reply);
  const { xid, mtype } = readMessageStart(r);
  const h = readReplyBody(r, xid);
  assert.equal(mtype, 1);
  assert.equal(rpcErrorFromReply(h, { prog: PROG, vers: 1, proc: 1 }), undefined);
  assert.equal(r.uint(), 1000);
});

for (const t of ['tcp', 'unix', 'udp'] as const) {
  test(`${t}: calls, echo and 100 calls in flight on one connection`, async () => {
    const c = await RpcClient.connect(addrs[t] as Address);
    try {
      await c.ping(PROG, 1);
      assert.equal(await c.call(PROG, 1, 1, xdr.string(64), 'alice', xdr.hyper), 1000n);
      const big = new Uint8Array(t === 'udp' ? 60000 : 300_000).map((_, i) => i & 0xff);
      assert.deepEqual(Buffer.from(await c.call(PROG, 1, 2, xdr.opaque(), big, xdr.opaque())), Buffer.from(big));
      const many = await Promise.all(Array.from({ length: 100 }, (_, i) => c.call(PROG, 1, 3, xdr.uint, (i * 7) % 20, xdr.uint)));
      assert.deepEqual(many, Array.from({ length: 100 }, (_, i) => (i * 7) % 20));
      assert.equal(await c.call(PROG, 1, 5, xdr.void, undefined, xdr.string()), `${t} - -`);
    } finally {
      await c.close();
    }
  });
}

test('every accept and reject status becomes its typed error', async () => {
  const c = await RpcClient.connect(addrs.tcp as Address);
  try {
    await assert.rejects(c.ping(PROG + 1, 1), (e: unknown) => e instanceof ProgUnavailError && e.code === 'ERPC' && e.status === 'PROG_UNAVAIL');
    await assert.rejects(c.ping(PROG, 2), (e: unknown) => e instanceof ProgMismatchError && e.low === 1 && e.high === 3);
    await assert.rejects(c.call(PROG, 1, 99, xdr.void, undefined, xdr.void), ProcUnavailError);
    await assert.rejects(c.call(PROG, 1, 1, xdr.int, 5, xdr.hyper), GarbageArgsError);
    await assert.rejects(c.call(PROG, 1, 4, xdr.void, undefined, xdr.void), SystemErrError);
    await assert.rejects(c.call(PROG, 1, 7, xdr.void, undefined, xdr.void), GarbageArgsError);
    await c.ping(PROG, 3);
  } finally {
    await c.close();
  }
  // RPC_MISMATCH and AUTH_ERROR, from raw messages.
  const raw = async (rpcvers: number, flavor: number): Promise<RpcError | undefined> => {
    const w = new XdrWriter();
    w.uint(0).uint(42).uint(0).uint(rpcvers).uint(PROG).uint(1).uint(0).int(flavor).opaque(new Uint8Array(0)).int(0).opaque(new Uint8Array(0));
    w.setUintAt(0, (0x80000000 | (w.length - 4)) >>> 0);
    const msg = w.finish();
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const a = addrs.tcp as { host: string; port: number };
      const s = net.connect(a.port, a.host, () => s.write(msg));
      s.once('data', (d) => { s.destroy(); resolve(d); });
      s.once('error', reject);
    });
    const r = new XdrReader(reply.subarray(4));
    const { xid } = readMessageStart(r);
    return rpcErrorFromReply(readReplyBody(r, xid), { prog: PROG, vers: 1, proc: 0 });
  };
  const mm = await raw(3, 0);
  assert.ok(mm instanceof RpcMismatchError && mm.low === 2 && mm.high === 2);
  const short = await raw(2, AuthFlavor.AUTH_SHORT);
  assert.ok(short instanceof AuthError && short.stat === AuthStat.AUTH_REJECTEDCRED, 'AUTH_SHORT is refused with AUTH_REJECTEDCRED');
  const dh = await raw(2, AuthFlavor.AUTH_DH);
  assert.ok(dh instanceof AuthError && dh.reason.startsWith('AUTH_REJECTEDCRED'));
});

test('AUTH_SYS credentials reach the procedure; a custom authenticate can refuse', async () => {
  const c = await RpcClient.connect(addrs.unix as Address, { auth: { stamp: 1, machinename: 'atm-7', uid: 1234, gid: 100, gids: [100, 200] } });
  try {
    assert.equal(await c.call(PROG, 1, 5, xdr.void, undefined, xdr.string()), 'unix 1234 atm-7');
  } finally {
    await c.close();
  }
  const strict = new RpcServer({ authenticate: (ctx) => { if (ctx.cred.flavor !== AuthFlavor.AUTH_SYS) throw new AuthError(AuthStat.AUTH_TOOWEAK); } });
  strict.addProgram(PROG, 1, {});
  const a = await strict.listen('tcp://127.0.0.1:0');
  const c2 = await RpcClient.connect(a);
  try {
    await assert.rejects(c2.ping(PROG, 1), (e: unknown) => e instanceof AuthError && e.stat === AuthStat.AUTH_TOOWEAK);
  } finally {
    await c2.close();
    await strict.close();
  }
});

test('AUTH_SHORT: the server hands out a short credential, the client uses it, and falls back when it is forgotten', async () => {
  const seen: number[] = [];
  const s = new RpcServer({ shortCredentials: 16 });
  s.addProgram(PROG, 1, { 5: { args: xdr.void, result: xdr.string(), handler: (_: void, ctx) => { seen.push(ctx.cred.flavor); return `${ctx.authSys?.uid}`; } } });
  const a = await s.listen('tcp://127.0.0.1:0');
  const c = await RpcClient.connect(a, { auth: { stamp: 9, machinename: 'm', uid: 42, gid: 1, gids: [] } });
  try {
    for (let i = 0; i < 3; i++) assert.equal(await c.call(PROG, 1, 5, xdr.void, undefined, xdr.string()), '42');
    s.forgetShortCredentials();
    assert.equal(await c.call(PROG, 1, 5, xdr.void, undefined, xdr.string()), '42');
    assert.equal(await c.call(PROG, 1, 5, xdr.void, undefined, xdr.string()), '42');
    // AUTH_SYS, AUTH_SHORT, AUTH_SHORT, (AUTH_SHORT refused before the procedure) AUTH_SYS, AUTH_SHORT
    assert.deepEqual(seen, [AuthFlavor.AUTH_SYS, AuthFlavor.AUTH_SHORT, AuthFlavor.AUTH_SHORT, AuthFlavor.AUTH_SYS, AuthFlavor.AUTH_SHORT]);
  } finally {
    await c.close();
    await s.close();
  }
});

test('udp: a call or a reply too big for one datagram is a typed error, and the client goes on', async () => {
  const c = await RpcClient.connect(addrs.udp as Address);
  try {
    await assert.rejects(c.call(PROG, 1, 2, xdr.opaque(), new Uint8Array(70_000), xdr.opaque()), (e: unknown) => (e as RpcError).code === 'EMSGSIZE');
    await assert.rejects(c.call(PROG, 1, 9, xdr.uint, 70_000, xdr.opaque()), SystemErrError);
    assert.equal(await c.call(PROG, 1, 1, xdr.string(64), 'alice', xdr.hyper), 1000n);
  } finally {
    await c.close();
  }
});

test('per-call timeout, and the client keeps working afterwards', async () => {
  const c = await RpcClient.connect(addrs.tcp as Address);
  try {
    await assert.rejects(c.call(PROG, 1, 3, xdr.uint, 300, xdr.uint, { timeoutMs: 30 }), (e: unknown) => (e as RpcError).code === 'ETIMEDOUT');
    assert.equal(await c.call(PROG, 1, 3, xdr.uint, 1, xdr.uint), 1);
    const ac = new AbortController();
    const p = c.call(PROG, 1, 3, xdr.uint, 200, xdr.uint, { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, (e: unknown) => (e as RpcError).code === 'EABORTED');
  } finally {
    await c.close();
  }
});

test('one timer serves every call: shorter deadlines behind a longer one still fire, in order', async () => {
  const c = await RpcClient.connect(addrs.tcp as Address);
  try {
    const order: string[] = [];
    const track = (name: string, p: Promise<unknown>) =>
      p.then(
        (v) => order.push(`${name}=${String(v)}`),
        (e: unknown) => order.push(`${name}:${(e as RpcError).code}`),
      );
    const long = track('long', c.call(PROG, 1, 3, xdr.uint, 150, xdr.uint));
    const short = track('short', c.call(PROG, 1, 3, xdr.uint, 1000, xdr.uint, { timeoutMs: 20 }));
    const middle = track('middle', c.call(PROG, 1, 3, xdr.uint, 1000, xdr.uint, { timeoutMs: 60 }));
    assert.equal(c.inFlight, 3);
    await Promise.all([long, short, middle]);
    assert.deepEqual(order, ['short:ETIMEDOUT', 'middle:ETIMEDOUT', 'long=150']);
    assert.equal(c.inFlight, 0);
    assert.equal(await c.call(PROG, 1, 1, xdr.string(64), 'alice', xdr.hyper), 1000n);
  } finally {
    await c.close();
  }
});

test('udp: a server that never answers gets retransmissions until the call times out', async () => {
  const { createSocket } = await import('node:dgram');
  const silent = createSocket('udp4');
  let received = 0;
  silent.on('message', () => received++);
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  const c = await RpcClient.connect(`udp://127.0.0.1:${silent.address().port}`, { retransmitMs: 10 });
  try {
    await assert.rejects(c.ping(PROG, 1, { timeoutMs: 150 }), (e: unknown) => (e as RpcError).code === 'ETIMEDOUT');
    assert.ok(received >= 2, `the call was sent again (${received} datagrams)`);
    assert.equal(c.inFlight, 0);
  } finally {
    await c.close();
    silent.close();
  }
});

test('udp: retransmissions are answered from the duplicate request cache, the procedure runs once', async () => {
  const c = await RpcClient.connect(addrs.udp as Address, { retransmitMs: 20 });
  try {
    const hits = server.duplicateHits;
    assert.equal(await c.call(PROG, 1, 8, xdr.uint, 150, xdr.uint), 1);
    assert.equal(deposits, 1, 'the non-idempotent procedure ran once');
    assert.ok(server.duplicateHits > hits, 'retransmissions were seen as duplicates');
  } finally {
    await c.close();
  }
});

test('tcp: the client reconnects after the connection drops', async () => {
  const s2 = new RpcServer();
  s2.addProgram(PROG, 1, procs);
  const a = await s2.listen('tcp://127.0.0.1:0');
  const c = await RpcClient.connect(a);
  try {
    assert.equal(await c.call(PROG, 1, 1, xdr.string(64), 'alice', xdr.hyper), 1000n);
    const port = (a as { port: number }).port;
    await s2.close();
    await assert.rejects(c.ping(PROG, 1, { timeoutMs: 2000 }));
    const s3 = new RpcServer();
    s3.addProgram(PROG, 1, procs);
    await s3.listen(`tcp://127.0.0.1:${port}`);
    try {
      assert.equal(await c.call(PROG, 1, 1, xdr.string(64), 'alice', xdr.hyper), 1000n);
    } finally {
      await s3.close();
    }
  } finally {
    await c.close();
  }
});

test('multi-fragment records and the maximum record size', async () => {
  const c = await RpcClient.connect(addrs.tcp as Address, { maxFragment: 7 });
  try {
    const data = new Uint8Array(1001).fill(9);
    assert.deepEqual(Buffer.from(await c.call(PROG, 1, 2, xdr.opaque(), data, xdr.opaque())), Buffer.from(data));
  } finally {
    await c.close();
  }
  const small = new RpcServer({ maxRecordSize: 1024 });
  small.addProgram(PROG, 1, procs);
  const a = await small.listen('tcp://127.0.0.1:0');
  const c2 = await RpcClient.connect(a, { reconnect: false });
  try {
    await c2.call(PROG, 1, 2, xdr.opaque(), new Uint8Array(100), xdr.opaque());
    await assert.rejects(c2.call(PROG, 1, 2, xdr.opaque(), new Uint8Array(4096), xdr.opaque()), (e: unknown) => ['ECONNRESET', 'ECLOSED'].includes((e as RpcError).code));
  } finally {
    await c2.close();
    await small.close();
  }
});

test('big opaque arguments go out from the caller\'s arrays: calls in one tick, fragments, batching, copying', async () => {
  const arrays = Array.from({ length: 6 }, (_, k) => new Uint8Array(20_000 + k * 4097).map((_, i) => (i + k * 11) & 0xff));
  for (const t of ['tcp', 'unix'] as const) {
    for (const opts of [{}, { referenceBytes: 1 }, { referenceBytes: Infinity }, { maxFragment: 5000 }]) {
      const c = await RpcClient.connect(addrs[t] as Address, opts);
      try {
        // calls made in one tick leave corked in one writev, each with its own array
        const echoed = await Promise.all(arrays.map((a) => c.call(PROG, 1, 2, xdr.opaque(), a, xdr.opaque())));
        echoed.forEach((e, k) => assert.equal(Buffer.compare(Buffer.from(e), Buffer.from(arrays[k] as Uint8Array)), 0, `${t} ${JSON.stringify(opts)} array ${k}`));
        // two references, with the writer's own bytes (padding, an int) between and after them
        const v = { a: (arrays[0] as Uint8Array).subarray(1), n: 7, b: (arrays[1] as Uint8Array).subarray(2) };
        const back = await c.call(PROG, 1, 10, pair, v, pair);
        assert.equal(back.n, 7);
        assert.equal(Buffer.compare(Buffer.from(back.a), Buffer.from(v.a)), 0);
        assert.equal(Buffer.compare(Buffer.from(back.b), Buffer.from(v.b)), 0);
        batched = [];
        await c.send(PROG, 1, 6, xdr.int, 5);
        await c.ping(PROG, 1);
        assert.deepEqual(batched, [5]);
      } finally {
        await c.close();
      }
    }
  }
  await assert.rejects(RpcClient.connect(addrs.tcp as Address, { referenceBytes: 0 }), (e: unknown) => (e as RpcError).code === 'EINVAL');
});

test('many concurrent clients on every transport', async () => {
  const clients = await Promise.all(Array.from({ length: 24 }, (_, i) => RpcClient.connect(addrs[(['tcp', 'unix', 'udp'] as const)[i % 3] as 'tcp'] as Address)));
  try {
    const results = await Promise.all(clients.map((c, i) => Promise.all(Array.from({ length: 10 }, (_, j) => c.call(PROG, 1, 3, xdr.uint, (i + j) % 5, xdr.uint)))));
    results.forEach((r, i) => assert.deepEqual(r, Array.from({ length: 10 }, (_, j) => (i + j) % 5)));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});

test('batched calls get no reply and arrive in order before the next call', async () => {
  batched = [];
  const c = await RpcClient.connect(addrs.unix as Address);
  try {
    for (let i = 0; i < 5; i++) await c.send(PROG, 1, 6, xdr.int, i);
    await c.ping(PROG, 1);
    assert.deepEqual(batched, [0, 1, 2, 3, 4]);
  } finally {
    await c.close();
  }
});

test('server addresses print', () => {
  assert.match(String(server), /tcp:\/\/127\.0\.0\.1:\d+/);
  assert.equal(formatAddress(addrs.unix as Address), `unix://${join(dir, 'rpc.sock')}`);
});
