/**
 * sb_fd's waitReadable (a bounded poll(2) on one descriptor), recvDatagram
 * (one datagram per non-blocking read, truncation reported) and the
 * descriptors of UDP channels and endpoints they are used on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { ArgumentError } from '../../src/errors.js';
import { MAX_WAIT_US, fdType, rawSocketpair, recvDatagram, waitReadable } from '../../src/transport/fd.js';
import { bindUdp, connect } from '../../src/transport/index.js';

const EAGAIN = -11;
const EBADF = -9;

test('waitReadable: 0 on timeout, 1 once data is there, 1 at end of stream; EBADF for a descriptor that is not open', () => {
  const [a, b] = rawSocketpair();
  try {
    assert.equal(waitReadable(a, 0), 0);
    const t0 = performance.now();
    assert.equal(waitReadable(a, 20_000), 0);
    // The wait really lasted (a lower bound only: the machine may be slow).
    assert.ok(performance.now() - t0 >= 15, `waited ${performance.now() - t0} ms for a 20 ms timeout`);
    writeSync(b, 'x');
    assert.equal(waitReadable(a, 0), 1);
    assert.equal(waitReadable(a, 1_000_000), 1);
    closeSync(b);
    assert.equal(waitReadable(a, 1_000_000), 1, 'the end of the stream counts as readable (a read then says 0)');
  } finally {
    closeSync(a);
  }
  assert.equal(waitReadable(1_000_000, 1000), EBADF);
});

test('waitReadable: a signal does not cut the wait short', async () => {
  const [a, b] = rawSocketpair();
  const onSignal = (): void => undefined;
  process.on('SIGUSR2', onSignal);
  try {
    // A child signals this process 50 ms into a 300 ms wait.
    const child = spawn('sh', ['-c', `sleep 0.05; kill -USR2 ${process.pid}`], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    await new Promise((r) => setTimeout(r, 10));
    const t0 = performance.now();
    assert.equal(waitReadable(a, 300_000), 0);
    assert.ok(performance.now() - t0 >= 250, `waited ${performance.now() - t0} ms for a 300 ms timeout`);
    await exited;
  } finally {
    process.off('SIGUSR2', onSignal);
    closeSync(a);
    closeSync(b);
  }
});

test('waitReadable: a negative, fractional or missing descriptor, or a timeout that is not 0..MAX_WAIT_US, is an ArgumentError', () => {
  for (const fd of [-1, 1.5, NaN, 2 ** 31, '3' as unknown as number]) assert.throws(() => waitReadable(fd, 0), ArgumentError, `fd ${String(fd)}`);
  for (const us of [-1, NaN, Infinity, MAX_WAIT_US + 1, '5' as unknown as number]) assert.throws(() => waitReadable(0, us), ArgumentError, `timeout ${String(us)}`);
});

test('UDP endpoint and channel expose their socket descriptor; recvDatagram reads one datagram per call and reports a cut one', async () => {
  const ep = await bindUdp({ host: '127.0.0.1', port: 0 });
  const fd = (ep as unknown as { fd: number | undefined }).fd as number;
  assert.equal(typeof fd, 'number');
  assert.equal(fdType(fd), 'socket');
  const ch = await connect({ transport: 'udp', host: '127.0.0.1', port: ep.address.port });
  const cfd = (ch as unknown as { fd: number | undefined }).fd as number;
  try {
    assert.equal(fdType(cfd), 'socket');
    assert.equal(recvDatagram(fd, new Uint8Array(16)), EAGAIN);
    // Sent (Node tries a datagram's send at once) and read back without an event-loop turn
    // in between, so libuv, which also watches the endpoint's socket, cannot take them first.
    const sent = [ch.write(Uint8Array.of(1, 2, 3)), ch.write(new Uint8Array(100).fill(9)), ch.write(new Uint8Array(0))];
    assert.equal(waitReadable(fd, 1_000_000), 1);
    const buf = new Uint8Array(16);
    const got: number[][] = [];
    let cut = 0;
    for (let n = recvDatagram(fd, buf); n !== EAGAIN; n = recvDatagram(fd, buf)) {
      if (n === buf.length + 1) cut++;
      else got.push([...buf.subarray(0, n)]);
    }
    assert.deepEqual({ got, cut }, { got: [[1, 2, 3], []], cut: 1 });
    assert.equal(buf[15], 9, 'the head of the cut datagram is in the buffer');
    await Promise.all(sent);
  } finally {
    await ch.close();
    await ep.close();
  }
  assert.equal((ch as unknown as { fd: number | undefined }).fd, undefined);
  assert.equal((ep as unknown as { fd: number | undefined }).fd, undefined);
});
