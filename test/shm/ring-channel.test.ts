import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connectShm, listenShm } from '../../src/shm/index.js';
import { SwitchboardError } from '../../src/errors.js';
import { cleanup, spawnChild, uniqueName } from './helpers.js';

const names: string[] = [];
const fresh = (tag: string): string => {
  const n = uniqueName(tag);
  names.push(n);
  return n;
};
after(() => cleanup(...names));
const code = (c: string) => (e: unknown) => e instanceof SwitchboardError && e.code === c;

test('a ring pair used like a socket in one process', async () => {
  const name = fresh('pair');
  const listener = await listenShm(`shm:${name}`, { capacity: 4096 });
  assert.deepEqual(listener.address, { transport: 'shm', name });
  const client = await connectShm(`shm:${name}`);
  const server = await listener.accept({ timeoutMs: 5000 });
  assert.equal(existsSync(`/dev/shm/sb.${name}`), false, 'the name is gone once both ends hold the region');
  assert.equal(server.kind, 'ring');
  assert.equal(server.messages, true);
  await assert.rejects(listener.accept(), code('ELIMIT'));

  assert.equal(client.readReady, false);
  assert.equal(client.tryRead(), undefined);
  const ready = new Promise<void>((res) => client.onReadReady(res));
  await server.write(Uint8Array.of(1, 2, 3));
  await server.writev([Uint8Array.of(4), Uint8Array.of(5, 6)]);
  await ready;
  assert.deepEqual(await client.read(), Uint8Array.of(1, 2, 3));
  assert.deepEqual(client.tryRead(), Uint8Array.of(4, 5, 6), 'writev is one message');
  const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
  const w = server.write(big);
  assert.deepEqual(await client.read(), big, 'a message larger than the ring');
  await w;
  // many small writes in one tick, then end
  for (let i = 0; i < 100; i++) void client.write(Uint8Array.of(i));
  await client.end();
  const got: number[] = [];
  for await (const m of server) got.push(m[0] as number);
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
  await assert.rejects(client.write(Uint8Array.of(1)), code('ECLOSED'));
  await server.close();
  await client.close();
  assert.equal(server.isClosed, true);
  await assert.rejects(client.read(), code('ECLOSED'));
  await listener.close();
});

test('echo through a ring pair with another process', async () => {
  const name = fresh('echo');
  const listener = await listenShm(`shm:${name}`);
  const kid = spawnChild(['ring-echo', name]);
  try {
    const ch = await listener.accept({ timeoutMs: 10_000 });
    assert.deepEqual(ch.peer, { pid: kid.proc.pid });
    for (const size of [0, 64, 1024, 65536, 3 << 20]) {
      const msg = new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff);
      await ch.write(msg);
      assert.deepEqual(await ch.read(), msg, `${size} bytes`);
    }
    await ch.end();
    assert.equal(await ch.read(), null, 'the child ends after we do');
    assert.deepEqual(await kid.next(), { event: 'echoed' });
    await ch.close();
  } finally {
    kid.kill();
    await kid.exited;
    await listener.close();
  }
});

test('connecting to a missing ring or a non-shm address is a typed error', async () => {
  await assert.rejects(connectShm(`shm:${fresh('none')}`), code('ENOENT'));
  await assert.rejects(connectShm('tcp://127.0.0.1:1'), code('EINVAL'));
  const listener = await listenShm(`shm:${fresh('noconn')}`);
  await assert.rejects(listener.accept({ timeoutMs: 30 }), code('ETIMEDOUT'));
  await listener.close();
});

test('a peer killed with SIGKILL ends the channel with ECONNRESET', async () => {
  const name = fresh('kill');
  const listener = await listenShm(`shm:${name}`);
  const kid = spawnChild(['ring-echo', name]);
  const ch = await listener.accept({ timeoutMs: 10_000 });
  await ch.write(Uint8Array.of(9));
  assert.deepEqual(await ch.read(), Uint8Array.of(9));
  kid.kill('SIGKILL');
  await kid.exited;
  await assert.rejects(ch.read(), code('ECONNRESET'));
  await ch.close();
  await listener.close();
});
