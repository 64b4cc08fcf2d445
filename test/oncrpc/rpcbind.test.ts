import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { toUniversalAddress, fromUniversalAddress, netidOf, RpcbindClient, rpcbindLookup, IPPROTO_TCP, IPPROTO_UDP } from '../../src/oncrpc/index.js';
import type { Address } from '../../src/transport/index.js';
import { ensureRpcbind } from './interop-fixture.js';

const rows: Array<[Address, string, string]> = [
  [{ transport: 'tcp', host: '127.0.0.1', port: 1025 }, 'tcp', '127.0.0.1.4.1'],
  [{ transport: 'udp', host: '10.0.0.1', port: 111 }, 'udp', '10.0.0.1.0.111'],
  [{ transport: 'tcp', host: '::1', port: 2049 }, 'tcp6', '::1.8.1'],
  [{ transport: 'udp', host: 'fe80::1', port: 65535 }, 'udp6', 'fe80::1.255.255'],
  [{ transport: 'unix', path: '/run/rpcbind.sock' }, 'local', '/run/rpcbind.sock'],
];
for (const [addr, netid, uaddr] of rows) {
  test(`universal address ${netid} ${uaddr}`, () => {
    assert.equal(netidOf(addr), netid);
    assert.deepEqual(toUniversalAddress(addr), { netid, uaddr });
    assert.deepEqual(fromUniversalAddress(netid, uaddr), addr);
  });
}

test('malformed universal addresses are argument errors', () => {
  for (const [netid, uaddr] of [['tcp', '127.0.0.1'], ['tcp', '127.0.0.1.256.1'], ['udp', 'nohost.1.2'], ['sctp', '127.0.0.1.1.1'], ['local', '']]) {
    assert.throws(() => fromUniversalAddress(netid as string, uaddr as string), (e: unknown) => (e as { code: string }).code === 'EINVAL');
  }
});

const rpcbind = await ensureRpcbind();
after(() => rpcbind.stop());

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
