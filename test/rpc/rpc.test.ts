import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { SwitchboardError } from '../../src/errors.js';
import { connect as connectChannel, socketpair } from '../../src/transport/index.js';
import {
  callContext,
  close,
  connect,
  connectionOf,
  expose,
  oneWay,
  openConnection,
  proxy,
  stream,
  transfer,
  withOptions,
  type CallContext,
  type Remote,
  type RpcServer,
  type ServeOptions,
} from '../../src/rpc/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sb-rpc-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Kind = 'port' | 'socketpair' | 'unix';
const kinds: Kind[] = ['port', 'socketpair', 'unix'];

let sockN = 0;
async function pair<T>(kind: Kind, impl: object, serve: Partial<ServeOptions> = {}, client: Parameters<typeof connect>[1] = {}): Promise<{ remote: Remote<T>; server: RpcServer; done: () => Promise<void> }> {
  let server: RpcServer;
  let remote: Remote<T>;
  if (kind === 'port') {
    const mc = new MessageChannel();
    server = await expose(impl, { ...serve, on: mc.port1 });
    remote = await connect<T>(mc.port2, client);
  } else if (kind === 'socketpair') {
    const [a, b] = socketpair();
    server = await expose(impl, { ...serve, on: a });
    remote = await connect<T>(b, client);
  } else {
    server = await expose(impl, { ...serve, on: `unix://${join(dir, `s${sockN++}.sock`)}` });
    remote = await connect<T>(server.address as string, client);
  }
  return {
    remote,
    server,
    done: async () => {
      await close(remote as object).catch(() => undefined);
      await server.close();
    },
  };
}

const code = (c: string) => (err: unknown) => {
  assert.ok(err instanceof Error, String(err));
  assert.equal((err as { code?: unknown }).code, c, (err as Error).stack);
  return true;
};

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** Wait until cond() holds (events cross a connection), at most 10 s on a busy machine. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond() && Date.now() < deadline) await tick(5);
}

interface Bank {
  balance(acct: string): number;
  withdraw(acct: string, amount: number): Promise<number>;
  fail(kind: string): void;
  slow(ms: number, tag: number): Promise<number>;
  waitForAbort(): Promise<string>;
  log(line: string): void;
  count(): number;
  echo<V>(v: V): V;
}

function bankImpl() {
  const state = { lines: [] as string[], aborted: [] as string[], contexts: [] as CallContext[] };
  const accounts = new Map([['alice', 100]]);
  const impl = {
    state,
    balance: (acct: string) => accounts.get(acct) ?? 0,
    async withdraw(acct: string, amount: number) {
      const b = accounts.get(acct) ?? 0;
      if (b < amount) throw Object.assign(new RangeError(`insufficient funds: ${b} < ${amount}`), { code: 'EFUNDS' });
      accounts.set(acct, b - amount);
      return b - amount;
    },
    fail(kind: string) {
      if (kind === 'string') throw 'plain string';
      if (kind === 'unsendable') throw Object.assign(new Error('carries a symbol'), { code: 'EX', cause: Symbol('x') });
      throw new SwitchboardError('EACCES', 'no entry');
    },
    async slow(ms: number, tag: number) {
      await tick(ms);
      return tag;
    },
    waitForAbort() {
      const ctx = callContext();
      state.contexts.push(ctx);
      return new Promise<string>((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          state.aborted.push(String((ctx.signal.reason as Error)?.message));
          resolve('aborted');
        });
      });
    },
    log(line: string) {
      state.lines.push(line);
    },
    count: () => state.lines.length,
    echo: <V>(v: V) => v,
  };
  return impl;
}

for (const kind of kinds) {
  test(`${kind}: calls, results and errors cross`, async () => {
    const impl = bankImpl();
    const { remote, done } = await pair<Bank & { toString(): string; constructor(): void }>(kind, impl);
    try {
      assert.equal(await remote.balance('alice'), 100);
      assert.equal(await remote.withdraw('alice', 30), 70);
      await assert.rejects(remote.withdraw('alice', 1000), (err: unknown) => {
        assert.ok(err instanceof RangeError);
        assert.equal((err as RangeError & { code: string }).code, 'EFUNDS');
        assert.match(err.stack ?? '', /remote side/);
        assert.match(err.stack ?? '', /withdraw/);
        return true;
      });
      await assert.rejects(remote.fail('sb'), (err: unknown) => err instanceof SwitchboardError && err.code === 'EACCES');
      await assert.rejects(remote.fail('string'), (err: unknown) => err === 'plain string');
      await assert.rejects(remote.fail('unsendable'), code('EX'));
      await assert.rejects(remote.toString(), code('ENOENT'));
      await assert.rejects(remote.constructor(), code('ENOENT'));
      await assert.rejects((remote as unknown as Remote<{ nope(): void }>).nope(), code('ENOENT'));
      const v = { m: new Map([[1, new Set(['x'])]]), d: new Date(5), b: new Uint8Array(5000).fill(7), n: -1.5, big: 2n ** 70n };
      assert.deepStrictEqual(await remote.echo(v), v);
      assert.equal(typeof (remote as unknown as { then?: unknown }).then, 'undefined', 'a stub is not thenable');
    } finally {
      await done();
    }
  });

  test(`${kind}: many calls in flight on one connection, answered out of order`, async () => {
    const { remote, done } = await pair<Bank>(kind, bankImpl());
    try {
      const n = 500;
      const results = await Promise.all(Array.from({ length: n }, (_, i) => remote.slow(i % 7, i)));
      assert.deepEqual(results, Array.from({ length: n }, (_, i) => i));
      assert.equal(connectionOf(remote).stats().pendingCalls, 0);
    } finally {
      await done();
    }
  });

  test(`${kind}: deadlines and AbortSignal reach the server's handler`, async () => {
    const impl = bankImpl();
    const { remote, done } = await pair<Bank>(kind, impl);
    try {
      await assert.rejects(withOptions(remote, { timeoutMs: 30 }).waitForAbort(), code('ETIMEDOUT'));
      const ac = new AbortController();
      const p = withOptions(remote, { signal: ac.signal }).waitForAbort();
      await tick(10);
      ac.abort();
      await assert.rejects(p, code('EABORTED'));
      await until(() => impl.state.aborted.length >= 2);
      assert.equal(impl.state.aborted.length, 2);
      assert.ok(impl.state.contexts[0]?.deadline !== undefined, 'the handler saw the deadline');
      assert.equal(connectionOf(remote).stats().pendingCalls, 0);
      await assert.rejects(withOptions(remote, { signal: AbortSignal.abort() }).balance('x'), code('EABORTED'));
    } finally {
      await done();
    }
  });

  test(`${kind}: deadlines of many calls share one timer and each fires on its own`, async () => {
    const impl = bankImpl();
    const { remote, done } = await pair<Bank>(kind, impl);
    try {
      // A long deadline first, then a shorter one (the timer must be re-armed
      // earlier), and calls answered well before their deadline (they must not
      // fail later).
      const long = withOptions(remote, { timeoutMs: 400 }).waitForAbort();
      const short = withOptions(remote, { timeoutMs: 40 }).waitForAbort();
      const order: string[] = [];
      long.catch(() => order.push('long'));
      short.catch(() => order.push('short'));
      const answered = await Promise.all(Array.from({ length: 100 }, (_, i) => withOptions(remote, { timeoutMs: 60 }).slow(0, i)));
      assert.deepEqual(answered, Array.from({ length: 100 }, (_, i) => i));
      await assert.rejects(short, code('ETIMEDOUT'));
      await assert.rejects(long, code('ETIMEDOUT'));
      assert.deepEqual(order, ['short', 'long']);
      await until(() => impl.state.aborted.length >= 2);
      assert.equal(connectionOf(remote).stats().pendingCalls, 0);
      // Answered calls leave no timer behind: a new deadline still fires.
      await assert.rejects(withOptions(remote, { timeoutMs: 20 }).waitForAbort(), code('ETIMEDOUT'));
    } finally {
      await done();
    }
  });

  test(`${kind}: one-way calls`, async () => {
    const impl = bankImpl();
    const { remote, done } = await pair<Bank>(kind, impl);
    try {
      const ow = oneWay(remote);
      for (let i = 0; i < 100; i++) assert.equal(await ow.log(`line ${i}`), undefined);
      assert.equal(await remote.count(), 100, 'the two-way call comes after the one-way ones');
      assert.equal(impl.state.lines[99], 'line 99');
    } finally {
      await done();
    }
  });

  test(`${kind}: streams both ways with credit-based backpressure, and cancellation`, async () => {
    let produced = 0;
    let finished = false;
    const impl = {
      async *numbers(n: number) {
        try {
          for (let i = 0; i < n; i++) {
            produced = i + 1;
            yield { i, pad: 'x'.repeat(100) };
          }
        } finally {
          finished = true;
        }
      },
      async sum(items: AsyncIterable<number>) {
        let s = 0;
        for await (const x of items) s += x;
        return s;
      },
      async failing() {
        return (async function* () {
          yield 1;
          throw Object.assign(new Error('broken stream'), { code: 'EBROKEN' });
        })();
      },
    };
    const { remote, done } = await pair<typeof impl>(kind, impl);
    try {
      // Slow consumer: the producer may run ahead by the window, no more.
      const it = await remote.numbers(10_000);
      let got = 0;
      for await (const item of it) {
        assert.equal(item.i, got);
        got++;
        if (got % 10 === 0) await tick(1);
        assert.ok(produced - got <= 2 * 32 + 1, `producer ran ahead: produced ${produced}, consumed ${got}`);
        if (got === 200) break;
      }
      await until(() => finished);
      assert.ok(finished, "breaking out of the loop ran the server generator's finally");
      assert.ok(produced < 300);
      // Client to server.
      async function* nums() {
        for (let i = 1; i <= 1000; i++) yield i;
      }
      assert.equal(await remote.sum(nums()), 500500);
      assert.equal(await remote.sum(stream((async function* () { yield 2; yield 3; })())), 5);
      // Errors inside a stream arrive at the consumer.
      const f = await remote.failing();
      assert.deepEqual(await f.next(), { done: false, value: 1 });
      await assert.rejects(f.next(), code('EBROKEN'));
      const stats = connectionOf(remote).stats();
      assert.equal(stats.outgoingStreams, 0);
      assert.equal(stats.incomingStreams, 0);
    } finally {
      await done();
    }
  });

  test(`${kind}: a streaming handler sees its call context, and its signal aborts when the reader stops`, async () => {
    let aborted = false;
    const impl = {
      async *watch(prefix: string) {
        const ctx = callContext();
        ctx.signal.addEventListener('abort', () => (aborted = true));
        for (let i = 0; ; i++) {
          await tick(1);
          yield `${prefix}${i} ${ctx.method}`;
        }
      },
    };
    const { remote, done } = await pair<typeof impl>(kind, impl);
    try {
      const seen: string[] = [];
      for await (const x of await remote.watch('n')) {
        seen.push(x);
        if (seen.length === 3) break;
      }
      assert.deepEqual(seen, ['n0 watch', 'n1 watch', 'n2 watch']);
      await until(() => aborted);
      assert.ok(aborted);
    } finally {
      await done();
    }
  });

  test(`${kind}: remote references (callbacks, proxy() objects) and their way home`, async () => {
    const counter = { n: 0 };
    const impl = {
      async each(items: string[], cb: (s: string, i: number) => Promise<void>) {
        for (const [i, s] of items.entries()) await cb(s, i);
        return items.length;
      },
      makeCounter() {
        return proxy({
          inc(by: number) {
            return (counter.n += by);
          },
        });
      },
      isSame(a: object, b: object) {
        return a === b;
      },
      keep: undefined as unknown,
      store(x: unknown) {
        impl.keep = x;
      },
      identity(x: unknown) {
        return x === impl.keep;
      },
    };
    const { remote, done } = await pair<typeof impl>(kind, impl);
    try {
      const seen: string[] = [];
      assert.equal(await remote.each(['a', 'b'], async (s, i) => void seen.push(`${i}:${s}`)), 2);
      assert.deepEqual(seen, ['0:a', '1:b']);
      const c = await remote.makeCounter();
      assert.equal(await c.inc(2), 2);
      assert.equal(await c.inc(3), 5);
      assert.equal(counter.n, 5);
      // A stub sent back to its owner is the owner's original object.
      const mine = proxy({ hello: () => 'hi' });
      await remote.store(mine);
      assert.equal(await remote.identity(mine), true);
      const fn = (): number => 1;
      assert.equal(await remote.isSame(fn, fn), true, 'the same function twice is the same stub');
    } finally {
      await done();
    }
  });

  test(`${kind}: interceptors and per-call context`, async () => {
    const seen: string[] = [];
    const impl = {
      whoami() {
        const ctx = callContext();
        return { pid: ctx.peer.pid ?? null, identity: ctx.identity as string, meta: ctx.metadata?.['trace'] ?? null, method: ctx.method };
      },
    };
    const { remote, done } = await pair<typeof impl>(
      kind,
      impl,
      {
        authenticate: ({ token }) => {
          if (token !== 'sesame') throw new Error('bad token');
          return 'ali-baba';
        },
        serverInterceptors: [
          async (ctx, next) => {
            seen.push(`server before ${ctx.method}`);
            const r = await next();
            seen.push('server after');
            return r;
          },
        ],
      },
      {
        token: 'sesame',
        interceptors: [
          async (call, next) => {
            call.metadata['trace'] = 't-1';
            seen.push(`client ${call.method}`);
            return next();
          },
        ],
      },
    );
    try {
      const who = await remote.whoami();
      assert.equal(who.identity, 'ali-baba');
      assert.equal(who.meta, 't-1');
      assert.equal(who.method, 'whoami');
      if (kind === 'unix') assert.equal(who.pid, process.pid, 'peer credentials of the Unix socket');
      assert.deepEqual(seen, ['client whoami', 'server before whoami', 'server after']);
    } finally {
      await done();
    }
  });

  test(`${kind}: a client that disconnects cancels its server-side calls`, async () => {
    const impl = bankImpl();
    const { remote, server, done } = await pair<Bank>(kind, impl);
    try {
      const p = remote.waitForAbort();
      while (impl.state.contexts.length === 0) await tick(2);
      await close(remote);
      await assert.rejects(p, code('ECLOSED'));
      await until(() => impl.state.aborted.length > 0);
      assert.equal(impl.state.aborted.length, 1, 'the handler was aborted');
      await until(() => server.connections.size === 0);
      assert.equal(server.connections.size, 0);
    } finally {
      await done();
    }
  });
}

test('an unsendable argument rejects with its path and nothing is sent', async () => {
  const impl = bankImpl();
  const { remote, done } = await pair<Bank>('socketpair', impl);
  try {
    const sock = await import('node:net').then((net) => new net.Socket());
    await assert.rejects(remote.echo({ owner: { socket: sock } }), (err: unknown) => {
      assert.ok(err instanceof SwitchboardError && err.code === 'EINVAL');
      assert.match(err.message, /args\[0\]\.owner\.socket: a Socket/);
      return true;
    });
    sock.destroy();
    assert.equal(await remote.balance('alice'), 100, 'the connection still works');
  } finally {
    await done();
  }
});

test('authentication failure is a typed EACCES at connect', async () => {
  const [a, b] = socketpair();
  const server = await expose({}, { on: a, authenticate: () => Promise.reject(new Error('who are you')) });
  await assert.rejects(connect(b, { token: 'x' }), code('EACCES'));
  await server.close();
});

test('version mismatch is a typed EVERSION at connect', async () => {
  const [a, b] = socketpair();
  const errors: Error[] = [];
  const server = await expose({}, { on: a, onError: (e) => errors.push(e) });
  await assert.rejects(openConnection(b, { version: [9, 0] }), (err: unknown) => {
    assert.ok(err instanceof SwitchboardError);
    assert.equal(err.code, 'EVERSION');
    assert.match(err.message, /speaks Switchboard RPC 1\.x, the client 9\.0/);
    return true;
  });
  await server.close();
});

test('worker port: transfer() moves an ArrayBuffer instead of copying it', async () => {
  const mc = new MessageChannel();
  const server = await expose({ sum: (a: Uint8Array) => a.reduce((x, y) => x + y, 0), make: () => {
    const b = new Uint8Array(100_000).fill(1);
    return transfer(b, [b.buffer]);
  } }, { on: mc.port1 });
  const remote = await connect<{ sum(a: Uint8Array): number; make(): Uint8Array }>(mc.port2);
  try {
    const big = new Uint8Array(100_000).fill(2);
    assert.equal(await remote.sum(transfer(big, [big.buffer])), 200_000);
    assert.equal(big.byteLength, 0, "the sender's buffer was moved");
    const copied = new Uint8Array(100_000).fill(3);
    assert.equal(await remote.sum(copied), 300_000);
    assert.equal(copied.byteLength, 100_000, 'without transfer() it is copied');
    const made = await remote.make();
    assert.equal(made.length, 100_000);
  } finally {
    await close(remote);
    await server.close();
  }
});

test('maximum message size: refused on send, cut off on receipt', async () => {
  const [a, b] = socketpair();
  const errors: Error[] = [];
  const server = await expose({ echo: (x: unknown) => x }, { on: a, maxMessageSize: 10_000, onError: (e) => errors.push(e) });
  const small = await connect<{ echo(x: unknown): unknown }>(b, { maxMessageSize: 10_000 });
  await assert.rejects(small.echo('x'.repeat(20_000)), code('EMSGSIZE'));
  assert.equal(await small.echo('still fine'), 'still fine');
  await close(small);
  await server.close();
  // A client allowed to send more than the server accepts gets cut off.
  const [c, d] = socketpair();
  const server2 = await expose({ echo: (x: unknown) => x }, { on: c, maxMessageSize: 10_000, onError: (e) => errors.push(e) });
  const big = await connect<{ echo(x: unknown): unknown }>(d);
  await assert.rejects(big.echo('x'.repeat(20_000)), (err: unknown) => err instanceof SwitchboardError && ['ECONNRESET', 'EMSGSIZE'].includes(err.code));
  assert.ok(errors.some((e) => (e as SwitchboardError).code === 'EMSGSIZE'));
  await server2.close();
});

test('a malicious peer sending malformed or oversized frames is cut off; others are not affected', async () => {
  const errors: Error[] = [];
  const server = await expose(bankImpl(), { on: `unix://${join(dir, 'evil.sock')}`, maxMessageSize: 1 << 20, onError: (e) => errors.push(e) });
  const good = await connect<Bank>(server.address as string);
  try {
    const payloads = [
      Uint8Array.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), // oversized length prefix
      Uint8Array.from([0, 0, 0, 3, 99, 1, 2]), // unknown frame type before the hello
      Uint8Array.from([0, 0, 0, 5, 1, 0x53, 0x42, 0x52, 0x51]), // bad magic
    ];
    for (const bytes of payloads) {
      const evil = await connectChannel(server.address as string);
      await evil.write(bytes);
      assert.equal(await evil.read(), null, 'the server hung up on the bad peer');
      await evil.close();
    }
    // After a valid handshake, garbage in a call frame.
    const raw = await connectChannel(server.address as string);
    const hello = Uint8Array.from([0, 0, 0, 8, 1, 0x53, 0x42, 0x52, 0x50, 1, 0, 0x80]);
    await raw.write(hello);
    const welcome = await raw.read();
    assert.ok(welcome !== null && welcome[4] === 2, 'welcomed');
    await raw.write(Uint8Array.from([0, 0, 0, 4, 4, 1, 0, 0xdf]));
    let r: Uint8Array | null;
    do r = await raw.read();
    while (r !== null);
    await raw.close();
    assert.equal(await good.balance('alice'), 100, 'the good client is still served');
    assert.ok(errors.length >= 4, `errors reported: ${errors.map((e) => e.message).join('; ')}`);
  } finally {
    await close(good);
    await server.close();
  }
});

test('a server that dies mid-call rejects every pending call at once with ECONNRESET', async () => {
  const { spawn } = await import('node:child_process');
  const path = join(dir, 'dying.sock');
  // A stand-in server in another process: it welcomes the client, then dies on the first call.
  const script = `
    const net = require('node:net');
    const srv = net.createServer((s) => {
      let n = 0;
      s.on('data', () => {
        if (n++ === 0) s.write(Buffer.from([0,0,0,7,2,0x53,0x42,0x52,0x50,1,0]));
        else process.exit(1);
      });
    });
    srv.listen(${JSON.stringify(path)}, () => process.stdout.write('ready\\n'));
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', () => reject(new Error('child exited early')));
    });
    const remote = await connect<Bank>(`unix://${path}`, { timeoutMs: 120_000 });
    const t0 = Date.now();
    const calls = Array.from({ length: 20 }, (_, i) => remote.slow(10_000, i));
    const results = await Promise.allSettled(calls);
    assert.ok(Date.now() - t0 < 60_000, 'rejected when the server died, not at the 120 s deadline');
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal(((r as PromiseRejectedResult).reason as SwitchboardError).code, 'ECONNRESET');
    }
    await assert.rejects(remote.balance('a'), code('ECONNRESET'));
  } finally {
    if (child.exitCode === null) child.kill();
  }
});

test('connecting to a name in the name service', async () => {
  const naming = await import('../../src/naming/index.js');
  const ns = await naming.startNameServer({ listen: [`unix://${join(dir, 'ns.sock')}`] });
  const nameServer = ns.addresses[0] as string;
  const server = await expose(bankImpl(), { on: 'test-bank', nameServer });
  try {
    assert.equal(server.name, 'test-bank');
    const bank = await connect<Bank>('test-bank', { nameServer });
    assert.equal(await bank.balance('alice'), 100);
    await close(bank);
    await assert.rejects(connect<Bank>('no-such-bank', { nameServer }), code('ENOENT'));
  } finally {
    await server.close();
    await ns.close();
  }
});

test('a framed (message) channel on one side talks to the byte-stream side', async () => {
  const { framed } = await import('../../src/transport/index.js');
  const [a, b] = socketpair();
  const server = await expose(bankImpl(), { on: a });
  const remote = await connect<Bank>(framed(b, { framing: 'length-prefix' }));
  try {
    assert.equal(await remote.balance('alice'), 100);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => remote.slow(1, i)));
    assert.equal(results[49], 49);
    assert.deepStrictEqual(await remote.echo({ big: 'y'.repeat(100_000) }), { big: 'y'.repeat(100_000) });
  } finally {
    await close(remote);
    await server.close();
  }
});

test('over a shared-memory ring pair (shm:name)', async () => {
  const name = `sb-rpc-test-${process.pid}-${Date.now()}`;
  const server: RpcServer = await expose(bankImpl(), { on: `shm:${name}` });
  try {
    const remote = await connect<Bank>(`shm:${name}`);
    assert.equal(await remote.balance('alice'), 100);
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => remote.slow(0, i)));
    assert.equal(results[99], 99);
    assert.deepStrictEqual(await remote.echo(new Uint8Array(70_000).fill(9)), new Uint8Array(70_000).fill(9));
    // More in flight than one ring message holds: the batch is split between frames.
    const many = await Promise.all(Array.from({ length: 3000 }, (_, i) => remote.echo(`${'z'.repeat(200)}${i}`)));
    assert.equal(many[2999], `${'z'.repeat(200)}2999`);
    await close(remote);
  } finally {
    await server.close();
  }
});
