/**
 * The blocking forms, sendSync and receiveSync (MPI_Send / MPI_Recv: the
 * thread never returns to the event loop). These tests prove, over
 * shared-memory rings between processes and between worker threads, Unix
 * sockets and TCP, with three ranks started by `switchboard run`: the same
 * matching, truncation, statuses and ordering as the promise API; ANY
 * source; 5 MiB messages sent both ways at once without a deadlock, and
 * received into a big buffer (in place), truncated, or timed out;
 * structured values; self-sends; a timeout that fires; typed errors for bad
 * input; blocking sends received by an ordinary receive. A rank that dies
 * fails the blocking receive waiting on it with PeerLostError, well within
 * its timeout. Between worker MessagePorts (no polling there) both forms
 * refuse with EUNSUPPORTED, and a blocking send behind a queued isend
 * refuses with EBUSY instead of overtaking it. A receive from one rank
 * spins on that rank's transport alone (in C, for a ring) every other round,
 * polling every peer between (their messages keep arriving and queue); a
 * receive from ANY only polls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Communicator } from '../../src/mp/index.js';
import { ANY, Engine } from '../../src/mp/engine.js';
import type { Envelope } from '../../src/mp/link.js';
import { HandLink } from './fixtures/hand-link.js';
import { PortLink, createPortMesh } from '../../src/mp/port-link.js';
import { StreamLink } from '../../src/mp/stream-link.js';
import type { Channel } from '../../src/transport/index.js';
import { runCli } from './launch-helpers.js';

const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
const APP = fileURLToPath(new URL(`./fixtures/blocking.${ext}`, import.meta.url));

const placements: [string, string[], string][] = [
  ['shared-memory rings between processes', ['--transport', 'shm', '--progress', 'poll'], 'ring'],
  ['rings between worker threads', ['--threads', '--progress', 'poll'], 'ring'],
  ['Unix sockets', ['--transport', 'unix'], 'unix'],
  ['TCP loopback', ['--transport', 'tcp'], 'tcp'],
];

for (const [what, flags, transport] of placements) {
  test(`sendSync/receiveSync over ${what}: matching, truncation, big messages both ways, order, values, errors`, async () => {
    const r = await runCli(['run', '-n', '3', ...flags, APP], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Record<string, unknown>;
    assert.equal(out['transport'], transport);
    assert.deepEqual(out['ring'], { source: 2, size: 3, first: 2, truncated: false });
    assert.deepEqual(out['any'], [1, 2]);
    assert.deepEqual(out['trunc'], { size: 100, truncated: true, first: 100, last: 91 });
    assert.deepEqual(out['big'], { size: 5 * 1024 * 1024 + 3, ok: true });
    assert.deepEqual(out['bigInto'], { size: 5 * 1024 * 1024 + 3, truncated: false, ok: true, placed: 1, cut: { size: 100_000, truncated: true, ok: true } });
    assert.deepEqual(out['bigTimeout'], { name: 'TimeoutError', code: 'ETIMEDOUT' });
    assert.deepEqual(out['value'], { hello: 'world', n: [1, 2, 3] });
    assert.deepEqual(out['order'], { 0: 1 }, 'rank 2 got 300 messages in order');
    assert.deepEqual(out['self'], { source: 0, byte: 42 });
    assert.deepEqual(out['timeout'], { name: 'TimeoutError', code: 'ETIMEDOUT', atLeast50: true });
    const einval = { name: 'ArgumentError', code: 'EINVAL' };
    assert.deepEqual(out['bad'], { rank: einval, tag: einval, buffer: einval, source: einval });
    assert.equal(out['mixed'], 9);
  });
}

for (const [what, flags] of [placements[0]!, placements[1]!, placements[3]!]) {
  test(`a rank that dies fails a blocking receive from it with PeerLostError (${what})`, async () => {
    const r = await runCli(['run', '-n', '3', ...flags, APP, 'die'], { timeoutMs: 60_000 });
    assert.notEqual(r.code, 0, 'the launcher reports the dead rank');
    assert.match(r.stderr, /rank 1 .*died/);
    const line = r.stdout.trim().split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, `rank 0 reported: ${r.stdout} ${r.stderr}`);
    const res = JSON.parse(line) as { died: { name: string; code: string }; ms: number };
    assert.equal(res.died.name, 'PeerLostError');
    // (the receive's timeout is 20 s; the death is seen by the ring's liveness check or the socket's end)
    assert.ok(res.ms < 10_000, `seen after ${res.ms} ms`);
  });
}

test('between worker MessagePorts the blocking forms refuse with EUNSUPPORTED; self-sends still work', async () => {
  const mesh = createPortMesh(2);
  const comms = [0, 1].map((r) => new Communicator(new Engine(new PortLink(r, mesh[r]!)), [0, 1], 0));
  const [a, b] = comms as [Communicator, Communicator];
  assert.throws(() => a.sendSync(1, new Uint8Array(4)), { code: 'EUNSUPPORTED', message: /'port'/ });
  assert.throws(() => a.receiveSync({ from: 1, timeoutMs: 10 }), { code: 'EUNSUPPORTED' });
  a.sendSync(0, new Uint8Array([5]), { tag: 3 });
  assert.deepEqual([...(a.receiveSync({ from: 0, tag: 3 }).data as Uint8Array)], [5]);
  // a message already there is taken, whatever the transport
  await b.send(0, new Uint8Array([6]), { tag: 4 });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual([...(a.receiveSync({ from: 1, tag: 4 }).data as Uint8Array)], [6]);
  await Promise.all(comms.map((c) => c.close()));
});

test('a blocking send behind a queued asynchronous send to the same rank is EBUSY, never reordered', () => {
  // A message channel whose writes never finish: the first send is queued behind it.
  const never = new Promise<void>(() => undefined);
  const ring = { tryWrite: () => false, tryWriteParts: () => false };
  const ch = {
    kind: 'shm',
    messages: true,
    isClosed: false,
    readReady: false,
    description: 'a ring that is always full',
    write: () => never,
    tryRead: () => undefined,
    onReadReady: () => () => undefined,
    destroy: () => undefined,
    close: async () => undefined,
    producer: ring,
  } as unknown as Channel;
  const link = new StreamLink(0, [null, { channel: ch }], { maxMessageSize: 1 << 20, ringRecordLimit: 1024 });
  const engine = new Engine(link);
  engine.spinUs = 10;
  void engine.send(1, { ctx: 0, tag: 1, kind: 0, dtype: 0, bytes: new Uint8Array(8) }, false);
  assert.throws(() => engine.sendSync(1, { ctx: 0, tag: 1, kind: 0, dtype: 0, bytes: new Uint8Array(8) }, 50), { code: 'EBUSY' });
});

/** A three-rank link whose poll() and spinReadable() deliver what the test scripted (from ranks 1 and 2). */
class ScriptLink extends HandLink {
  override readonly kind = 'script';
  readonly calls: string[] = [];
  /** Per call number (1-based, over both kinds): the message a call delivers. */
  readonly script = new Map<number, [number, Envelope]>();
  private n = 0;
  constructor(private readonly spins: boolean) {
    super(3);
  }
  private deliver(): boolean {
    const s = this.script.get(++this.n);
    if (s === undefined) return false;
    this.h.message(s[0], s[1]);
    return true;
  }
  poll(): boolean {
    this.calls.push('poll');
    return this.deliver();
  }
  spinReadable(from: number, ns: number): boolean | undefined {
    if (!this.spins) return undefined;
    this.calls.push(`spin ${from} ${ns}`);
    return this.deliver();
  }
}

const msg = (tag: number, b: number): Envelope => ({ ctx: 0, tag, kind: 0, dtype: 0, bytes: Uint8Array.of(b), src: -1 });

test('a receive from one rank spins on that rank alone every other round, polling all peers between; from ANY it only polls', () => {
  const link = new ScriptLink(true);
  const engine = new Engine(link);
  // rank 2's message arrives in a poll (queued: not what we wait for), rank 1's in the third spin
  link.script.set(2, [2, msg(7, 2)]);
  link.script.set(5, [1, msg(5, 1)]);
  const m = engine.takeSync(0, 1, 5, true, 5_000);
  assert.equal(m.src, 1);
  assert.deepEqual(link.calls, ['spin 1 10000', 'poll', 'spin 1 10000', 'poll', 'spin 1 10000']);
  assert.equal(engine.peek(0, 2, 7, true)?.bytes[0], 2, "the other peer's message arrived between the spins and waits in the queue");

  const any = new ScriptLink(true);
  const e2 = new Engine(any);
  any.script.set(3, [2, msg(5, 9)]);
  assert.equal(e2.takeSync(0, ANY, 5, true, 5_000).src, 2);
  assert.deepEqual(any.calls, ['poll', 'poll', 'poll'], 'a receive from ANY never spins on one transport');

  // a link that cannot spin on this peer (a socket) is polled as before
  const sockets = new ScriptLink(false);
  const e3 = new Engine(sockets);
  sockets.script.set(2, [1, msg(5, 4)]);
  assert.equal(e3.takeSync(0, 1, 5, true, 5_000).bytes[0], 4);
  assert.deepEqual(sockets.calls, ['poll', 'poll']);
});
