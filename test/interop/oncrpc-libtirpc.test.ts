/**
 * ONC RPC against the real thing: a C server and client built here with the
 * Debian rpcgen and libtirpc from a .x file this test writes. Both
 * directions, over TCP, UDP and Unix sockets (netid local), direct and
 * through rpcbind, plus rpcinfo against our server. Answers are compared
 * value by value (the C client prints every field; we print ours the same way).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { RpcClient, RpcServer, RpcbindClient, compileX, rpcbindLookup, IPPROTO_TCP, IPPROTO_UDP, type Netid, type DynamicClient } from '../../src/oncrpc/index.js';
import type { Address } from '../../src/transport/index.js';
import {
  INTEROP_PROG,
  INTEROP_V1,
  INTEROP_X,
  blob37,
  buildC,
  cToolchainMissing,
  ensureRpcbind,
  expectedClientLines,
  itemA,
  payloadLines,
  payloads,
  recordEmpty,
  recordFull,
  recordLines,
  runCClient,
  startCServer,
  type CBuild,
  type CServer,
  type Item,
  type Payload,
  type Rec,
  type RpcbindHandle,
} from '../../src/oncrpc/testing/libtirpc-fixture.js';

const compiled = compileX(INTEROP_X, { filename: 'interop.x' });
const dir = mkdtempSync(join(tmpdir(), 'oncrpc-interop-'));
let build: CBuild | undefined;
let buildError: string | undefined = cToolchainMissing();
if (buildError === undefined) {
  try {
    build = buildC(dir);
  } catch (err) {
    buildError = `cannot build the C peers: ${(err as Error).message}`;
  }
}
// Set up before the tests are declared, so that skip reasons are known in time.
const rpcbind: RpcbindHandle = await ensureRpcbind();
after(async () => {
  await rpcbind.stop();
  rmSync(dir, { recursive: true, force: true });
});

const skipC = () => buildError ?? false;
const skipRpcbind = () => buildError ?? rpcbind.missing ?? false;

/** Every call the C client makes, made by our client; printed the way the C client prints. */
async function ourClientLines(address: Address): Promise<string[]> {
  const rpc = await RpcClient.connect(address, { timeoutMs: 10_000, retransmitMs: 200 });
  try {
    const c: DynamicClient = compiled.client(rpc, 'INTEROP_PROG', 'INTEROP_V1');
    const greet = await c.greet!('alice');
    const sum = await c.sum!(itemA);
    const blob = (await c.echoBlob!(blob37)) as Uint8Array;
    const lines = [`greet=${String(greet)}`, `sum=${String(sum)}`, `blob=${Buffer.from(blob).toString('hex')}`];
    for (const [name, p] of payloads) lines.push(...payloadLines(name, (await c.echoPayload!(p)) as Payload));
    lines.push(...recordLines('record', (await c.echoRecord!(recordFull)) as Rec));
    lines.push(...recordLines('empty', (await c.echoRecord!(recordEmpty)) as Rec));
    return lines;
  } finally {
    await rpc.close();
  }
}

async function cClientLines(args: string[]): Promise<string[]> {
  const r = await runCClient(build as CBuild, args);
  assert.equal(r.code, 0, `C client ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trimEnd().split('\n');
}

const expected = expectedClientLines();

test('C client -> C server (the reference), direct and through rpcbind', { skip: skipRpcbind() }, async (t) => {
  const server = await startCServer(build as CBuild, join(dir, 'c-ref.sock'), true);
  try {
    for (const args of [
      ['direct', 'tcp', String(server.tcpPort)],
      ['direct', 'udp', String(server.udpPort)],
      ['direct', 'local', server.unixPath],
      ['rpcbind', 'tcp', '127.0.0.1'],
      ['rpcbind', 'udp', '127.0.0.1'],
      ['rpcbind', 'local', '127.0.0.1'],
    ]) {
      await t.test(args.join(' '), async () => assert.deepEqual(await cClientLines(args), expected));
    }
  } finally {
    await server.stop();
  }
});

test('our client -> libtirpc server', { skip: skipC() }, async (t) => {
  const withRpcbind = rpcbind.missing === undefined;
  const server: CServer = await startCServer(build as CBuild, join(dir, 'c.sock'), withRpcbind);
  try {
    const direct: Array<[string, Address]> = [
      ['tcp', { transport: 'tcp', host: '127.0.0.1', port: server.tcpPort }],
      ['udp', { transport: 'udp', host: '127.0.0.1', port: server.udpPort }],
      ['unix', { transport: 'unix', path: server.unixPath }],
    ];
    for (const [name, address] of direct) {
      await t.test(`direct ${name}`, async () => assert.deepEqual(await ourClientLines(address), expected));
    }
    await t.test('300 KB echo over tcp: libtirpc answers in several record fragments', async () => {
      const rpc = await RpcClient.connect(direct[0]![1], { maxFragment: 65536 });
      try {
        const big = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31) & 0xff);
        const back = (await compiled.client(rpc, 'INTEROP_PROG', 'INTEROP_V1').echoBlob!(big)) as Uint8Array;
        assert.ok(Buffer.from(back).equals(Buffer.from(big)));
      } finally {
        await rpc.close();
      }
    });
    for (const netid of ['tcp', 'udp', 'local'] as Netid[]) {
      await t.test(`through rpcbind, ${netid}`, { skip: withRpcbind ? false : rpcbind.missing }, async () => {
        const address = await rpcbindLookup(INTEROP_PROG, INTEROP_V1, netid);
        if (netid === 'tcp') assert.deepEqual(address, { transport: 'tcp', host: '127.0.0.1', port: server.tcpPort });
        if (netid === 'local') assert.deepEqual(address, { transport: 'unix', path: server.unixPath });
        assert.deepEqual(await ourClientLines(address), expected);
      });
    }
  } finally {
    await server.stop();
  }
});

function sumOf(first: Item | null): bigint {
  let s = 0n;
  for (let i = first; i; i = i.next) s += i.value;
  return s;
}

async function startOurServer(): Promise<{ server: RpcServer; tcp: Address; udp: Address; unix: Address }> {
  const server = new RpcServer();
  server.addProgram(
    INTEROP_PROG,
    INTEROP_V1,
    compiled.procedures('INTEROP_PROG', 'INTEROP_V1', {
      echoRecord: (r: unknown) => r,
      echoPayload: (p: unknown) => p,
      echoBlob: (b: unknown) => b,
      sum: (first: unknown) => sumOf(first as Item),
      greet: async (name: unknown) => `hello, ${String(name)}`,
    }),
  );
  const tcp = await server.listen('tcp://127.0.0.1:0');
  const udp = await server.listen('udp://127.0.0.1:0');
  const unix = await server.listen(`unix://${join(dir, 'ours.sock')}`, { mode: 0o666 });
  return { server, tcp, udp, unix };
}

test('libtirpc client -> our server, direct', { skip: skipC() }, async (t) => {
  const { server, tcp, udp, unix } = await startOurServer();
  try {
    for (const args of [
      ['direct', 'tcp', String((tcp as { port: number }).port)],
      ['direct', 'udp', String((udp as { port: number }).port)],
      ['direct', 'local', (unix as { path: string }).path],
    ]) {
      await t.test(args.join(' '), async () => assert.deepEqual(await cClientLines(args), expected));
    }
    await t.test('300 KB echoes from libtirpc (multi-fragment records) over tcp and local', async () => {
      for (const args of [
        ['direct', 'tcp', String((tcp as { port: number }).port), 'bench', '300000', '3'],
        ['direct', 'local', (unix as { path: string }).path, 'bench', '300000', '3'],
      ]) {
        const r = await runCClient(build as CBuild, args);
        assert.equal(r.code, 0, r.stderr);
      }
    });
  } finally {
    await server.close();
  }
});

function rpcinfo(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('rpcinfo', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (err) => resolve({ code: -1, out: err.message }));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

test('our server registered with rpcbind: libtirpc client and rpcinfo find it; close unregisters', { skip: skipRpcbind() }, async (t) => {
  const { server, tcp, udp, unix } = await startOurServer();
  let closed = false;
  try {
    await server.register();
    const rb = await RpcbindClient.connect();
    try {
      const mine = (await rb.dump()).filter((e) => e.prog === INTEROP_PROG && e.vers === INTEROP_V1).map((e) => e.netid).sort();
      assert.deepEqual(mine, ['local', 'tcp', 'udp']);
      assert.equal(await rb.pmapGetPort(INTEROP_PROG, INTEROP_V1, 'tcp'), (tcp as { port: number }).port);
      assert.equal(await rb.pmapGetPort(INTEROP_PROG, INTEROP_V1, 'udp'), (udp as { port: number }).port);
    } finally {
      await rb.close();
    }
    for (const netid of ['tcp', 'udp', 'local']) {
      await t.test(`C client through rpcbind, ${netid}`, async () => assert.deepEqual(await cClientLines(['rpcbind', netid, '127.0.0.1']), expected));
    }
    await t.test('rpcinfo -T tcp / -T udp 127.0.0.1 PROG VERS, rpcinfo -p', async () => {
      for (const tr of ['tcp', 'udp']) {
        const r = await rpcinfo(['-T', tr, '127.0.0.1', String(INTEROP_PROG), String(INTEROP_V1)]);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, new RegExp(`program ${INTEROP_PROG} version ${INTEROP_V1} ready and waiting`));
      }
      const p = await rpcinfo(['-p', '127.0.0.1']);
      assert.match(p.out, new RegExp(`${INTEROP_PROG}\\s+${INTEROP_V1}\\s+tcp\\s+${(tcp as { port: number }).port}`));
      const direct = await rpcinfo(['-n', String((tcp as { port: number }).port), '-t', '127.0.0.1', String(INTEROP_PROG), String(INTEROP_V1)]);
      assert.equal(direct.code, 0, direct.out);
    });
    void unix;
    await server.close();
    closed = true;
    const rb2 = await RpcbindClient.connect();
    try {
      assert.equal((await rb2.dump()).filter((e) => e.prog === INTEROP_PROG).length, 0, 'close() unregistered every netid');
    } finally {
      await rb2.close();
    }
  } finally {
    if (!closed) await server.close();
  }
});

test('portmapper v2 and rpcbind v3/v4 against the system rpcbind', { skip: rpcbind.missing ?? false }, async () => {
  const PROG = 0x20005b1f;
  for (const where of ['tcp://127.0.0.1:111', 'udp://127.0.0.1:111', undefined]) {
    const rb = await RpcbindClient.connect(where);
    try {
      // portmapper v2
      assert.equal(await rb.pmapSet({ prog: PROG, vers: 1, prot: IPPROTO_TCP, port: 4001 }), true);
      assert.equal(await rb.pmapSet({ prog: PROG, vers: 1, prot: IPPROTO_UDP, port: 4002 }), true);
      assert.equal(await rb.pmapGetPort(PROG, 1, 'tcp'), 4001);
      assert.equal(await rb.pmapGetPort(PROG, 1, 'udp'), 4002);
      const dump = await rb.pmapDump();
      assert.ok(dump.some((m) => m.prog === 100000 && m.vers === 2 && m.prot === IPPROTO_TCP && m.port === 111), 'rpcbind lists itself');
      assert.ok(dump.some((m) => m.prog === PROG && m.port === 4001));
      assert.equal(await rb.pmapUnset(PROG, 1), true);
      assert.equal(await rb.pmapGetPort(PROG, 1, 'tcp'), 0);
      // rpcbind v4 and v3
      for (const version of [4, 3] as const) {
        assert.equal(await rb.set({ prog: PROG, vers: 2, netid: 'tcp', addr: '127.0.0.1.15.161' }, version), true);
        assert.equal(await rb.set({ prog: PROG, vers: 2, netid: 'local', addr: '/tmp/nowhere.sock' }, version), true);
        assert.equal(await rb.set({ prog: PROG, vers: 2, netid: 'tcp6', addr: '::1.15.162' }, version), true);
        const entries = (await rb.dump(version)).filter((e) => e.prog === PROG && e.vers === 2);
        assert.deepEqual(entries.map((e) => `${e.netid} ${e.addr}`).sort(), ['local /tmp/nowhere.sock', 'tcp 127.0.0.1.15.161', 'tcp6 ::1.15.162']);
        assert.equal(await rb.unset({ prog: PROG, vers: 2, netid: 'tcp' }, version), true);
        assert.equal((await rb.dump(version)).filter((e) => e.prog === PROG).length, 2);
        assert.equal(await rb.unset({ prog: PROG, vers: 2 }, version), true);
        assert.equal((await rb.dump(version)).filter((e) => e.prog === PROG).length, 0);
      }
    } finally {
      await rb.unset({ prog: PROG, vers: 1 }).catch(() => undefined);
      await rb.unset({ prog: PROG, vers: 2 }).catch(() => undefined);
      await rb.close();
    }
  }
});

test('rpcbindLookup asks over the matching transport and reports ENOENT for unknown programs', { skip: rpcbind.missing ?? false }, async () => {
  const PROG = 0x20005b20;
  const rb = await RpcbindClient.connect();
  try {
    await rb.set({ prog: PROG, vers: 1, netid: 'tcp', addr: '127.0.0.1.15.161' });
    await rb.set({ prog: PROG, vers: 1, netid: 'udp', addr: '127.0.0.1.15.162' });
    await rb.set({ prog: PROG, vers: 1, netid: 'local', addr: '/tmp/x.sock' });
    assert.deepEqual(await rpcbindLookup(PROG, 1, 'tcp'), { transport: 'tcp', host: '127.0.0.1', port: 4001 });
    assert.deepEqual(await rpcbindLookup(PROG, 1, 'udp'), { transport: 'udp', host: '127.0.0.1', port: 4002 });
    assert.deepEqual(await rpcbindLookup(PROG, 1, 'local'), { transport: 'unix', path: '/tmp/x.sock' });
    await assert.rejects(rpcbindLookup(PROG + 1, 1, 'tcp'), (e: unknown) => (e as { code: string }).code === 'ENOENT');
  } finally {
    await rb.unset({ prog: PROG, vers: 1 });
    await rb.close();
  }
});
