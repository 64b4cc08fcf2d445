/** UDP datagrams behind the Channel interface: message boundaries kept, size limit typed, bounded queue. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchboardError } from '../../src/errors.js';
import { bindUdp, connect, MAX_UDP_PAYLOAD } from '../../src/transport/index.js';

for (const host of ['127.0.0.1', '::1']) {
  test(`connected UDP channel and bound endpoint exchange whole datagrams over ${host}`, async () => {
    const server = await bindUdp({ host, port: 0 });
    const ch = await connect(`udp://${host.includes(':') ? `[${host}]` : host}:${server.address.port}`);
    try {
      assert.equal(ch.messages, true);
      await ch.write(Buffer.from('first'));
      await ch.write(Buffer.from('second'));
      const m1 = await server.receive();
      const m2 = await server.receive();
      assert.equal(Buffer.from(m1!.data).toString(), 'first');
      assert.equal(Buffer.from(m2!.data).toString(), 'second', 'boundaries are kept');
      await server.send(Buffer.from('reply'), m1!.from);
      assert.equal(Buffer.from((await ch.read())!).toString(), 'reply');
    } finally {
      await ch.close();
      await server.close();
    }
  });
}

test('a datagram over the UDP maximum is a typed EMSGSIZE error', async () => {
  const server = await bindUdp();
  const ch = await connect(`udp://127.0.0.1:${server.address.port}`);
  try {
    await assert.rejects(ch.write(new Uint8Array(MAX_UDP_PAYLOAD + 1)), (e: SwitchboardError) => e.code === 'EMSGSIZE');
    await assert.rejects(server.send(new Uint8Array(MAX_UDP_PAYLOAD + 1), { host: '127.0.0.1', port: 9 }), (e: SwitchboardError) => e.code === 'EMSGSIZE');
  } finally {
    await ch.close();
    await server.close();
  }
});

test('a reader that falls behind drops (and counts) datagrams instead of growing without bound', async () => {
  const server = await bindUdp({ maxQueued: 10 });
  const ch = await connect(`udp://127.0.0.1:${server.address.port}`);
  try {
    for (let i = 0; i < 50; i++) await ch.write(Buffer.from([i]));
    await sleep(100);
    assert.ok(server.dropped > 0, 'some datagrams were dropped');
    let n = 0;
    for (;;) {
      const m = await Promise.race([server.receive(), sleep(50).then(() => undefined)]);
      if (m === undefined) break;
      n++;
    }
    assert.ok(n <= 10, `queued ${n}`);
  } finally {
    await ch.close();
    await server.close();
  }
});

test('reading a closed UDP channel rejects with ECLOSED', async () => {
  const server = await bindUdp();
  const ch = await connect(`udp://127.0.0.1:${server.address.port}`);
  const r = ch.read();
  await ch.close();
  await assert.rejects(r, (e: SwitchboardError) => e.code === 'ECLOSED');
  await server.close();
  assert.equal(await server.receive(), null);
});

for (const host of ['127.0.0.1', '::1']) {
  test(`a connected UDP channel to a closed port over ${host}: a typed ECONNREFUSED, no crash, still usable`, async () => {
    const gone = await bindUdp({ host, port: 0 });
    const port = gone.address.port;
    await gone.close();
    const ch = await connect(`udp://${host.includes(':') ? `[${host}]` : host}:${port}`);
    try {
      // The ICMP port unreachable surfaces on whichever call meets it first: a write or the pending read.
      const codes: string[] = [];
      const pending = ch.read().then(
        () => codes.push('data'),
        (e: SwitchboardError) => codes.push(e.code),
      );
      for (let i = 0; i < 50 && codes.length === 0; i++) {
        await ch.write(Buffer.from('anyone?')).catch((e: SwitchboardError) => codes.push(e.code));
        await sleep(5);
      }
      assert.equal(codes[0], 'ECONNREFUSED');
      assert.equal(ch.isClosed, false, 'UDP has no connection to lose: the channel stays open');
      // a server that comes up on the port later is reached, and its reply read: the error was not sticky
      const back = await bindUdp({ host, port }).catch(() => undefined);
      if (back) {
        try {
          let from: { host: string; port: number } | undefined;
          for (let i = 0; i < 5 && from === undefined; i++) {
            await ch.write(Buffer.from('now?')).catch(() => undefined);
            const m = await Promise.race([back.receive(), sleep(200).then(() => undefined)]);
            from = m?.from ?? undefined;
          }
          assert.ok(from, 'the new server hears the channel');
          await back.send(Buffer.from('reply'), from);
          let reply: string | undefined;
          for (let i = 0; i < 3 && reply === undefined; i++) {
            reply = await ch.read().then(
              (m) => Buffer.from(m!).toString(),
              (e: SwitchboardError) => {
                assert.equal(e.code, 'ECONNREFUSED', 'only a left-over refusal may come first');
                return undefined;
              },
            );
          }
          assert.equal(reply, 'reply');
        } finally {
          await back.close();
        }
      }
      await ch.close();
      await pending;
    } finally {
      await ch.close();
    }
  });
}

test('connect(udp, { timeoutMs: 0 }) means no timeout, as for the other kinds', async () => {
  const server = await bindUdp();
  try {
    const ch = await connect(`udp://127.0.0.1:${server.address.port}`, { timeoutMs: 0 });
    await ch.write(Buffer.from('hi'));
    assert.equal(Buffer.from((await server.receive())!.data).toString(), 'hi');
    await ch.close();
  } finally {
    await server.close();
  }
});

test('two concurrent reads on a UDP channel (and receives on an endpoint) each get the next datagram, in call order', async () => {
  const server = await bindUdp();
  const ch = await connect(`udp://127.0.0.1:${server.address.port}`);
  try {
    const s1 = server.receive();
    const s2 = server.receive();
    await ch.write(Buffer.from('one'));
    await ch.write(Buffer.from('two'));
    const [m1, m2] = await Promise.all([s1, s2]);
    assert.deepEqual([Buffer.from(m1!.data).toString(), Buffer.from(m2!.data).toString()], ['one', 'two']);
    const r1 = ch.read();
    const r2 = ch.read();
    await server.send(Buffer.from('three'), m1!.from);
    await server.send(Buffer.from('four'), m1!.from);
    assert.deepEqual([Buffer.from((await r1)!).toString(), Buffer.from((await r2)!).toString()], ['three', 'four']);
    const r3 = ch.read();
    const r4 = ch.read();
    await ch.close();
    await assert.rejects(r3, (e: SwitchboardError) => e.code === 'ECLOSED');
    await assert.rejects(r4, (e: SwitchboardError) => e.code === 'ECLOSED');
  } finally {
    await ch.close();
    await server.close();
  }
});
