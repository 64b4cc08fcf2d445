import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import {
  RpcServer,
  RpcClient,
  XdrReader,
  XdrWriter,
  XdrError,
  readMessageStart,
  readReplyBody,
  readCallBody,
  writeCallHeader,
  writeAcceptedReply,
  writeAuthErrorReply,
  writeRpcMismatchReply,
  encodeAuthSys,
  decodeAuthSys,
  rpcErrorFromReply,
  AUTH_NONE,
  AcceptStat,
  AuthStat,
  ProgMismatchError,
  RpcMismatchError,
  AuthError,
  xdr,
} from '../../src/oncrpc/index.js';

test('call headers roundtrip, with AUTH_SYS credentials', () => {
  fc.assert(
    fc.property(
      fc.record({
        xid: fc.nat({ max: 0xffffffff }),
        prog: fc.nat({ max: 0xffffffff }),
        vers: fc.nat({ max: 0xffffffff }),
        proc: fc.nat({ max: 0xffffffff }),
        stamp: fc.nat({ max: 0xffffffff }),
        machinename: fc.string({ maxLength: 255, unit: 'grapheme-ascii' }),
        uid: fc.nat({ max: 0xffffffff }),
        gid: fc.nat({ max: 0xffffffff }),
        gids: fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 16 }),
      }),
      (c) => {
        const cred = encodeAuthSys(c);
        const w = new XdrWriter();
        writeCallHeader(w, { xid: c.xid, prog: c.prog, vers: c.vers, proc: c.proc, cred, verf: AUTH_NONE });
        const r = new XdrReader(w.finish());
        const start = readMessageStart(r);
        assert.deepEqual(start, { xid: c.xid, mtype: 0 });
        const call = readCallBody(r, start.xid);
        assert.deepEqual([call.rpcvers, call.prog, call.vers, call.proc], [2, c.prog, c.vers, c.proc]);
        assert.deepEqual(decodeAuthSys(call.cred.body), { stamp: c.stamp, machinename: c.machinename, uid: c.uid, gid: c.gid, gids: c.gids });
      },
    ),
  );
});

test('every reply status maps to its error in one place', () => {
  const reply = (write: (w: XdrWriter) => void) => {
    const w = new XdrWriter();
    write(w);
    const r = new XdrReader(w.finish());
    const { xid } = readMessageStart(r);
    return rpcErrorFromReply(readReplyBody(r, xid), { prog: 7, vers: 3, proc: 2 });
  };
  const rows: Array<[string, (w: XdrWriter) => void, string]> = [
    ['SUCCESS', (w) => writeAcceptedReply(w, 1, AcceptStat.SUCCESS), 'none'],
    ['PROG_UNAVAIL', (w) => writeAcceptedReply(w, 1, AcceptStat.PROG_UNAVAIL), 'ProgUnavailError'],
    ['PROG_MISMATCH', (w) => writeAcceptedReply(w, 1, AcceptStat.PROG_MISMATCH, AUTH_NONE, { low: 1, high: 2 }), 'ProgMismatchError'],
    ['PROC_UNAVAIL', (w) => writeAcceptedReply(w, 1, AcceptStat.PROC_UNAVAIL), 'ProcUnavailError'],
    ['GARBAGE_ARGS', (w) => writeAcceptedReply(w, 1, AcceptStat.GARBAGE_ARGS), 'GarbageArgsError'],
    ['SYSTEM_ERR', (w) => writeAcceptedReply(w, 1, AcceptStat.SYSTEM_ERR), 'SystemErrError'],
    ['RPC_MISMATCH', (w) => writeRpcMismatchReply(w, 1, 2, 2), 'RpcMismatchError'],
    ['AUTH_ERROR', (w) => writeAuthErrorReply(w, 1, AuthStat.AUTH_TOOWEAK), 'AuthError'],
  ];
  for (const [name, write, expected] of rows) {
    const err = reply(write);
    assert.equal(err?.name ?? 'none', expected, name);
    if (err) assert.equal(err.code, 'ERPC');
  }
  const pm = reply(rows[2]![1]) as ProgMismatchError;
  assert.deepEqual([pm.prog, pm.vers, pm.low, pm.high, pm.status], [7, 3, 1, 2, 'PROG_MISMATCH']);
  assert.ok(reply(rows[6]![1]) instanceof RpcMismatchError);
  assert.equal((reply(rows[7]![1]) as AuthError).stat, AuthStat.AUTH_TOOWEAK);
});

test('random bytes as a reply only ever throw XdrError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        const r = new XdrReader(bytes);
        const { xid } = readMessageStart(r);
        readReplyBody(r, xid);
      } catch (err) {
        if (!(err instanceof XdrError)) throw err;
      }
    }),
    { numRuns: 500 },
  );
});

test('the server survives random records and still answers', async () => {
  const server = new RpcServer();
  server.addProgram(77, 1, { 1: { args: xdr.string(8), result: xdr.string(), handler: (s: string) => s } });
  const a = (await server.listen('tcp://127.0.0.1:0')) as { port: number };
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 80 }), { minLength: 1, maxLength: 5 }), async (records) => {
        const sock = net.connect(a.port, '127.0.0.1');
        await new Promise<void>((r) => sock.once('connect', () => r()));
        sock.on('error', () => undefined);
        for (const rec of records) {
          const h = Buffer.alloc(4);
          h.writeUInt32BE((0x80000000 | rec.length) >>> 0);
          sock.write(Buffer.concat([h, rec]));
        }
        await new Promise((r) => setTimeout(r, 2));
        sock.destroy();
      }),
      { numRuns: 60 },
    );
    const c = await RpcClient.connect({ transport: 'tcp', host: '127.0.0.1', port: a.port });
    try {
      assert.equal(await c.call(77, 1, 1, xdr.string(), 'still', xdr.string()), 'still');
    } finally {
      await c.close();
    }
  } finally {
    await server.close();
  }
});
