/**
 * recvFrom / sendTo / peerName (sb_fd) on an unconnected UDP socket: a
 * datagram read straight from the descriptor names its sender exactly as the
 * dgram module does (so a server's duplicate request cache sees the same
 * client whichever path took a call), and a reply sent to that address
 * reaches the sender. Bad arguments are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { SOCKADDR_BYTES, peerName, recvDatagram, recvFrom, sendTo, writeNonblock } from '../../src/transport/fd.js';
import { bindUdp, connectUdp } from '../../src/transport/index.js';

const EAGAIN = -11;

/** Poll `f` without ever returning to the event loop (libuv reads these sockets too), for up to 2 s. */
function spinUntil(f: () => number): number {
  const end = performance.now() + 2000;
  let n = f();
  while (n === EAGAIN && performance.now() < end) n = f();
  return n;
}

async function roundTrip(host: string): Promise<void> {
  const server = await bindUdp({ host, port: 0 });
  const client = await connectUdp(host, server.address.port);
  try {
    const fd = server.fd;
    const cfd = (client as unknown as { fd?: number }).fd;
    assert.ok(fd !== undefined && fd >= 0 && cfd !== undefined && cfd >= 0);
    const buf = new Uint8Array(100);
    const from = new Uint8Array(SOCKADDR_BYTES);
    assert.equal(recvFrom(fd, buf, from), EAGAIN, 'nothing queued: EAGAIN, no wait');
    // Sent and read synchronously: the event loop (which reads these sockets too) never runs between.
    assert.equal(writeNonblock(cfd, new TextEncoder().encode('hello')), 5);
    assert.equal(spinUntil(() => recvFrom(fd, buf, from)), 5);
    assert.equal(Buffer.from(buf.subarray(0, 5)).toString(), 'hello');
    const name = peerName(from);
    assert.equal(sendTo(fd, new TextEncoder().encode('world!'), from), 6, 'a reply to that address');
    const got = new Uint8Array(100);
    assert.equal(spinUntil(() => recvDatagram(cfd, got)), 6);
    assert.equal(Buffer.from(got.subarray(0, 6)).toString(), 'world!');
    // A datagram longer than the target: its head, and length + 1 to say it was cut.
    assert.equal(writeNonblock(cfd, new Uint8Array(300).fill(1)), 300);
    assert.equal(spinUntil(() => recvFrom(fd, buf, from)), buf.length + 1);
    // The same sender through the dgram module's own path: named the same way.
    await client.write(new TextEncoder().encode('again'));
    const d = await server.receive();
    assert.ok(d !== null);
    assert.equal(name, `${d.from.host.includes(':') ? `[${d.from.host}]` : d.from.host}:${d.from.port}`, 'named as the dgram module names it');
  } finally {
    await client.close();
    await server.close();
  }
}

test('recvFrom, peerName and sendTo over IPv4', () => roundTrip('127.0.0.1'));

test('recvFrom, peerName and sendTo over IPv6', async (t) => {
  const probe = dgram.createSocket('udp6');
  const ok = await new Promise<boolean>((r) => {
    probe.once('error', () => r(false));
    probe.bind(0, '::1', () => r(true));
  });
  probe.close();
  if (!ok) return t.skip('no IPv6 loopback (::1) on this machine');
  await roundTrip('::1');
});

test('recvFrom, sendTo and peerName refuse bad arguments', () => {
  assert.throws(() => recvFrom(0, new Uint8Array(4), new Uint8Array(8)), TypeError, 'an address buffer too small');
  assert.throws(() => sendTo(0, new Uint8Array(4), new Uint8Array(SOCKADDR_BYTES)), TypeError, 'an address of no known family');
  assert.throws(() => peerName(new Uint8Array(4)), TypeError);
});
