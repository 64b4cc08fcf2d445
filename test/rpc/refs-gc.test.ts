import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { MessageChannel } from 'node:worker_threads';
import { socketpair } from '../../src/transport/index.js';
import { close, connect, connectionOf, expose, proxy, type RpcConnection, type RpcServer } from '../../src/rpc/index.js';

// gc() without --expose-gc on the command line (the flag must be set before the function is looked up).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

async function collectUntil(cond: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    gc();
    await tick(10); // FinalizationRegistry callbacks run as tasks; RELEASE frames then cross
    if (cond()) return true;
  }
  return false;
}

interface Factory {
  make(i: number): { get(): number };
  call(cb: (x: number) => number): Promise<number>;
}

for (const kind of ['port', 'socketpair'] as const) {
  test(`${kind}: 10,000 remote references created and dropped leave nothing behind on either side`, async () => {
    const impl = {
      make: (i: number) => proxy({ get: () => i }),
      async call(cb: (x: number) => Promise<number>) {
        return cb(21);
      },
    };
    let server: RpcServer;
    let target: unknown;
    if (kind === 'port') {
      const mc = new MessageChannel();
      server = await expose(impl, { on: mc.port1 });
      target = mc.port2;
    } else {
      const [a, b] = socketpair();
      server = await expose(impl, { on: a });
      target = b;
    }
    const remote = await connect<Factory>(target as MessageChannel['port1']);
    const client = connectionOf(remote);
    const serverConn = [...server.connections][0] as RpcConnection;
    try {
      // In a function of its own, so that no variable of this frame keeps the last batch alive.
      const churn = async (base: number): Promise<void> => {
        const batch = await Promise.all(Array.from({ length: 500 }, (_, i) => remote.make(base + i)));
        assert.equal(await batch[7]?.get(), base + 7);
        const doubled = await Promise.all(Array.from({ length: 500 }, () => remote.call((x) => x * 2)));
        assert.equal(doubled[0], 42);
      };
      for (let base = 0; base < 10_000; base += 500) await churn(base);
      const peak = { server: serverConn.stats().exportedRefs, client: client.stats().exportedRefs };
      assert.ok(peak.server > 0 || peak.client >= 0);
      const clean = await collectUntil(() => {
        const s = serverConn.stats();
        const c = client.stats();
        return s.exportedRefs === 0 && s.importedRefs === 0 && c.exportedRefs === 0 && c.importedRefs === 0;
      });
      assert.ok(clean, `references left: server ${JSON.stringify(serverConn.stats())}, client ${JSON.stringify(client.stats())}`);
      // The connection still works after all that.
      const c = await remote.make(5);
      assert.equal(await c.get(), 5);
    } finally {
      await close(remote);
      await server.close();
    }
  });
}

test('references are released when the connection ends', async () => {
  const [a, b] = socketpair();
  const kept: unknown[] = [];
  const server = await expose({ make: () => proxy({ x: () => 1 }), keep: (f: unknown) => void kept.push(f) }, { on: a });
  const remote = await connect<{ make(): { x(): number }; keep(f: () => void): void }>(b);
  const serverConn = [...server.connections][0] as RpcConnection;
  const held = await Promise.all(Array.from({ length: 100 }, () => remote.make()));
  for (let i = 0; i < 10; i++) await remote.keep(() => undefined);
  assert.equal(serverConn.stats().exportedRefs, 100);
  assert.equal(serverConn.stats().importedRefs, 10);
  await close(remote);
  await serverConn.closed;
  assert.deepEqual([serverConn.stats().exportedRefs, serverConn.stats().importedRefs], [0, 0]);
  await assert.rejects((held[0] as { x(): Promise<number> }).x(), (e: unknown) => (e as { code?: string }).code === 'ECLOSED');
  await server.close();
});
