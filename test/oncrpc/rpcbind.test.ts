import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toUniversalAddress, fromUniversalAddress, netidOf } from '../../src/oncrpc/index.js';
import type { Address } from '../../src/transport/index.js';

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

// The calls to the system rpcbind are in test/interop/oncrpc-libtirpc.test.ts, the one file that may start rpcbind.
