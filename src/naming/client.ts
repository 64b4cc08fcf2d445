/**
 * The name-service client. It finds the daemon at the well-known addresses
 * (well-known.ts), keeps one connection, renews TTL leases by itself, and when
 * the connection drops (the daemon restarted, or died and another daemon on
 * the same etcd answers) it reconnects and re-registers every name it holds
 * with its owner token, and re-opens its watches.
 *
 * Events (it never emits 'error'):
 *   'disconnected' (err)        the connection dropped; reconnecting
 *   'reconnected'  (address)    back, names and watches restored
 *   'lost'         (name, err)  a name could not be restored or renewed
 */
import { EventEmitter } from 'node:events';
import { createHmac } from 'node:crypto';
import { basename } from 'node:path';
import { AbortError, ArgumentError, ProtocolError, SwitchboardError, TimeoutError, check } from '../errors.js';
import { connect, type Channel } from '../transport/index.js';
import { errorFromWire } from './name-errors.js';
import { BINARY_LOOKUP_VERSION, DEFAULT_MAX_REPLY_FRAME, FrameDecoder, FrameType, encodeFrame, encodeLookupFrame, type Frame } from './protocol.js';
import { parseRecord, parseWireError, type Greeting, type Request } from './protocol-messages.js';
import type { ContactInfo, NameRecord, WatchEvent, WatchEventType } from './types.js';
import { clientAddresses } from './well-known.js';

export interface NameClientOptions {
  /** One address or a comma-separated list tried in order (default: $SWITCHBOARD_NAMESERVER, the Unix socket, tcp://127.0.0.1:7117). */
  address?: string;
  /** Shared secret for a TCP daemon started with --secret. */
  secret?: string;
  /** Connect and per-request deadline (default 5000 ms). */
  timeoutMs?: number;
  /** How this client describes itself to the daemon (default: the script name). */
  clientName?: string;
  /** Reconnect and restore names after the connection drops (default true). */
  reconnect?: boolean;
}

export interface RegisterOptions {
  /** Lease length; renewed automatically every ttl/3. Without it the lease follows the connection. */
  ttlMs?: number;
  /** The current owner's token: take the name over from it. */
  replace?: string;
  /** This name's own token from an earlier registration: claim it back (e.g. after a restart of this process). */
  token?: string;
}

interface Owned {
  contact: ContactInfo;
  token: string;
  ttlMs?: number;
  timer?: NodeJS.Timeout;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  deadline: number;
  op: string;
  /** Sent as a lookup frame: the answer is a record frame (or an error), never a JSON response. */
  binary: boolean;
}

interface Link {
  channel: Channel;
  address: string;
  decoder: FrameDecoder;
  /** The protocol version spoken on this link: 2 when the daemon offers it, else 1. */
  version: number;
  /** Calls pump(this link); made once per link. */
  onReadable: () => void;
  /** A write promise of this link's channel seen fulfilled (the channel reuses one for writes it takes at once). */
  settled?: Promise<void> | undefined;
}

const WATCH_QUEUE_LIMIT = 10_000;
const EVENT_TYPES: ReadonlySet<string> = new Set(['registered', 'replaced', 'removed', 'expired']);

/** A live watch: an async iterator of events, cancelled by close(), return() or its signal. */
export class NameWatch implements AsyncIterableIterator<WatchEvent> {
  /** Resolves once the daemon has accepted the watch (events after this are seen). */
  readonly ready: Promise<void>;
  serverId: number | undefined;
  onRestored: (() => void) | undefined;
  private queue: WatchEvent[] = [];
  private waiter: { resolve(r: IteratorResult<WatchEvent>): void; reject(e: Error): void } | undefined;
  private error: Error | undefined;
  private done = false;

  constructor(
    readonly key: string,
    readonly prefix: boolean,
    start: (w: NameWatch) => Promise<void>,
    private readonly stop: (w: NameWatch) => void,
  ) {
    this.ready = start(this);
    this.ready.catch((err: Error) => this.fail(err));
  }

  push(ev: WatchEvent): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: ev, done: false });
      return;
    }
    if (this.queue.length >= WATCH_QUEUE_LIMIT) {
      this.fail(new SwitchboardError('ELIMIT', `watch "${this.key}": more than ${WATCH_QUEUE_LIMIT} events not read`));
      return;
    }
    this.queue.push(ev);
  }

  fail(err: Error): void {
    if (this.done) return;
    this.error = err;
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.stop(this);
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      if (this.error && this.queue.length === 0) w.reject(this.error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    const ev = this.queue.shift();
    if (ev !== undefined) return Promise.resolve({ value: ev, done: false });
    if (this.done) {
      if (this.error) {
        const e = this.error;
        this.error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  async return(): Promise<IteratorResult<WatchEvent>> {
    this.close();
    return { value: undefined, done: true };
  }

  /** Stop watching. */
  close(): void {
    this.queue = [];
    this.finish();
  }

  get closed(): boolean {
    return this.done;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export class NameClient extends EventEmitter {
  private link: Link | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly owned = new Map<string, Owned>();
  private readonly watches = new Set<NameWatch>();
  private readonly byServerId = new Map<number, NameWatch>();
  private linkWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  private closed = false;
  private reconnecting = false;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly addresses: string[];
  private readonly timeoutMs: number;
  private readonly clientName: string;

  private constructor(private readonly opts: NameClientOptions) {
    super();
    this.addresses = clientAddresses(opts.address);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.clientName = opts.clientName ?? basename(process.argv[1] ?? 'node');
  }

  /** Connect to the name server (see NameClientOptions.address for where it looks). */
  static async connect(opts: NameClientOptions = {}): Promise<NameClient> {
    const c = new NameClient(opts);
    await c.establish();
    return c;
  }

  /** The address of the daemon this client is talking to now. */
  get address(): string | undefined {
    return this.link?.address;
  }

  /** Names this client holds, with their tokens. */
  get held(): ReadonlyMap<string, string> {
    return new Map([...this.owned].map(([n, o]) => [n, o.token]));
  }

  private async establish(): Promise<void> {
    const errors: string[] = [];
    for (const address of this.addresses) {
      try {
        const link = await this.open(address);
        if (this.closed) {
          link.channel.destroy();
          throw new SwitchboardError('ECLOSED', 'the name client is closed');
        }
        this.link = link;
        this.pump(link);
        const waiters = this.linkWaiters;
        this.linkWaiters = [];
        for (const w of waiters) w.resolve();
        return;
      } catch (err) {
        if (err instanceof SwitchboardError && (err.code === 'EACCES' || err.code === 'EVERSION' || err.code === 'ECLOSED')) throw err;
        errors.push(`${address}: ${(err as Error).message}`);
      }
    }
    throw new SwitchboardError('ECONNREFUSED', `no name server answers (${errors.join('; ')})`);
  }

  private async open(address: string): Promise<Link> {
    const channel = await connect(address, { timeoutMs: this.timeoutMs });
    const decoder = new FrameDecoder(DEFAULT_MAX_REPLY_FRAME);
    const frames: Frame[] = [];
    const deadline = Date.now() + this.timeoutMs;
    const nextFrame = async (): Promise<Frame> => {
      while (frames.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new TimeoutError(`name server at ${address} did not answer in ${this.timeoutMs} ms`);
        let timer: NodeJS.Timeout | undefined;
        const chunk = await Promise.race([
          channel.read(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new TimeoutError(`name server at ${address} did not answer in ${this.timeoutMs} ms`)), left);
          }),
        ]).finally(() => clearTimeout(timer));
        if (chunk === null) throw new SwitchboardError('ECONNRESET', `name server at ${address} closed the connection`);
        frames.push(...decoder.push(chunk));
      }
      return frames.shift() as Frame;
    };
    try {
      const g = await nextFrame();
      if (g.type === FrameType.error) throw errorFromWire(parseWireError(g.payload));
      const greeting = g.payload as Greeting;
      if (g.type !== FrameType.event || greeting?.kind !== 'greeting' || typeof greeting.nonce !== 'string') {
        throw new ProtocolError(`${address} is not a name server (no greeting)`);
      }
      const version = Array.isArray(greeting.versions) && greeting.versions.includes(BINARY_LOOKUP_VERSION) ? BINARY_LOOKUP_VERSION : 1;
      const hello: Request = { op: 'hello', client: this.clientName, pid: process.pid };
      if (greeting.auth === 'hmac-sha256') {
        if (this.opts.secret === undefined) throw new SwitchboardError('EACCES', `name server at ${address} requires a shared secret`);
        hello.mac = createHmac('sha256', this.opts.secret).update(greeting.nonce).digest('hex');
      }
      await channel.write(encodeFrame({ type: FrameType.request, id: 0, payload: hello, version }));
      const r = await nextFrame();
      if (r.type === FrameType.error) throw errorFromWire(parseWireError(r.payload));
      if (r.type !== FrameType.response || r.id !== 0) throw new ProtocolError(`unexpected frame from ${address} during hello`);
      if (frames.length > 0) throw new ProtocolError(`unexpected frames from ${address} during hello`);
      const link: Link = { channel, address, decoder, version, onReadable: () => this.pump(link) };
      return link;
    } catch (err) {
      channel.destroy();
      throw err;
    }
  }

  /**
   * Read what the link has, then wait for more with onReadReady: a reply is
   * handled inside the socket's data event, without a read() promise and its
   * microtask per chunk.
   */
  private pump(link: Link): void {
    try {
      for (;;) {
        const chunk = link.channel.tryRead();
        if (chunk === undefined) {
          link.channel.onReadReady(link.onReadable);
          return;
        }
        if (chunk === null) break;
        for (const f of link.decoder.push(chunk)) this.onFrame(f);
      }
    } catch (err) {
      this.linkDown(link, err as Error);
      return;
    }
    this.linkDown(link, undefined);
  }

  private onFrame(f: Frame): void {
    if (f.type === FrameType.event) {
      const p = f.payload as { kind?: string; type?: string; record?: unknown };
      const w = this.byServerId.get(f.id);
      if (w === undefined || p?.kind !== 'watch' || typeof p.type !== 'string' || !EVENT_TYPES.has(p.type)) return;
      w.push({ type: p.type as WatchEventType, record: parseRecord(p.record) });
      return;
    }
    const pend = this.pending.get(f.id);
    if (pend === undefined) {
      // An error with id 0 is the daemon closing on us (protocol error); the read loop will see the close.
      return;
    }
    this.pending.delete(f.id);
    if (f.type === FrameType.error) pend.reject(errorFromWire(parseWireError(f.payload)));
    else if (pend.binary === (f.type === FrameType.record)) pend.resolve(f.payload);
    else pend.reject(new ProtocolError(`frame type ${f.type} is no answer to a ${pend.binary ? 'lookup frame' : 'request'}`));
  }

  private linkDown(link: Link, cause: Error | undefined): void {
    if (this.link !== link) return;
    this.link = undefined;
    link.channel.destroy();
    const err = new SwitchboardError('ECONNRESET', `connection to the name server at ${link.address} was lost`, { cause });
    for (const [id, p] of this.pending) {
      p.reject(err);
      this.pending.delete(id);
    }
    this.byServerId.clear();
    for (const w of this.watches) w.serverId = undefined;
    if (this.closed) return;
    if (this.opts.reconnect === false) {
      for (const w of [...this.watches]) w.fail(err);
      this.failWaiters(err);
      return;
    }
    this.emit('disconnected', err);
    void this.reconnectLoop();
  }

  private failWaiters(err: Error): void {
    const waiters = this.linkWaiters;
    this.linkWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  private async reconnectLoop(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    let delay = 25;
    try {
      while (!this.closed) {
        try {
          await this.establish();
          await this.restore();
          this.emit('reconnected', this.link?.address);
          return;
        } catch (err) {
          if (this.closed) return;
          // A half-restored link is dropped and the whole restore starts again.
          if (this.link !== undefined) this.linkDown(this.link, err as Error);
          if (err instanceof SwitchboardError && (err.code === 'EACCES' || err.code === 'EVERSION')) {
            this.failWaiters(err);
            for (const w of [...this.watches]) w.fail(err);
            return;
          }
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 1000);
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /** After a reconnect: claim every held name back with its token, re-open watches. */
  private async restore(): Promise<void> {
    await Promise.all(
      [...this.owned].map(async ([name, o]) => {
        try {
          const req: Request = { op: 'register', name, contact: o.contact, token: o.token };
          if (o.ttlMs !== undefined) req.ttlMs = o.ttlMs;
          await this.send(req);
        } catch (err) {
          if (err instanceof SwitchboardError && (err.code === 'ECONNRESET' || err.code === 'ETIMEDOUT')) throw err;
          this.drop(name);
          this.emit('lost', name, err);
        }
      }),
    );
    await Promise.all([...this.watches].map((w) => this.openWatch(w).then(() => w.onRestored?.(), (err: Error) => w.fail(err))));
  }

  private waitForLink(): Promise<Link> {
    if (this.closed) return Promise.reject(new SwitchboardError('ECLOSED', 'the name client is closed'));
    if (this.link !== undefined) return Promise.resolve(this.link);
    return new Promise<Link>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.linkWaiters = this.linkWaiters.filter((w) => w !== entry);
        reject(new SwitchboardError('ECONNREFUSED', `no name server reachable within ${this.timeoutMs} ms (reconnecting)`));
      }, this.timeoutMs);
      const entry = {
        resolve: () => {
          clearTimeout(timer);
          if (this.link) resolve(this.link);
          else reject(new SwitchboardError('ECONNRESET', 'connection lost again'));
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.linkWaiters.push(entry);
    });
  }

  /** Send one request and wait for its reply (the JSON response payload). */
  private send(req: Request): Promise<unknown> {
    return this.call(req.op, false, (id, version) => encodeFrame({ type: FrameType.request, id, payload: req, version }));
  }

  /**
   * Send the frame `encode` makes for a fresh id and wait for its answer. No
   * await while connected: a lookup costs one promise here.
   */
  private call(op: string, binary: boolean, encode: (id: number, version: number) => Uint8Array): Promise<unknown> {
    const link = this.link;
    if (link === undefined || this.closed) {
      return this.waitForLink().then(() => {
        if (this.closed) throw new SwitchboardError('ECLOSED', 'the name client is closed');
        return this.call(op, binary, encode);
      });
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
    let frame: Uint8Array;
    try {
      frame = encode(id, link.version);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + this.timeoutMs, op, binary });
      this.armSweeper();
      const done = link.channel.write(frame);
      // A write promise already seen fulfilled cannot reject: no handler (and no microtask) for it.
      if (done === link.settled) return;
      done.then(
        () => {
          link.settled = done;
        },
        (err: Error) => {
          const p = this.pending.get(id);
          if (p === undefined) return;
          this.pending.delete(id);
          reject(err);
        },
      );
    });
  }

  /** One timer for every request's deadline, instead of a timer per request. */
  private armSweeper(): void {
    if (this.sweeper !== undefined) return;
    const tick = Math.max(10, Math.min(250, Math.floor(this.timeoutMs / 4)));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [id, p] of this.pending) {
        if (p.deadline <= now) {
          this.pending.delete(id);
          p.reject(new TimeoutError(`name server did not answer ${p.op} in ${this.timeoutMs} ms`));
        }
      }
      if (this.pending.size === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, tick);
    this.sweeper.unref();
  }

  /** Register `name` with contact information; resolves with its owner token. */
  async register(name: string, contact: ContactInfo, opts: RegisterOptions = {}): Promise<{ name: string; token: string }> {
    check(typeof name === 'string', 'name must be a string');
    check(typeof contact === 'object' && contact !== null, 'contact must be an object');
    const req: Request = { op: 'register', name, contact };
    if (opts.ttlMs !== undefined) req.ttlMs = opts.ttlMs;
    if (opts.replace !== undefined) req.replace = opts.replace;
    if (opts.token !== undefined) req.token = opts.token;
    // Registering a name this client already holds updates it (same token).
    else if (opts.replace === undefined && this.owned.has(name)) req.token = this.owned.get(name)?.token as string;
    const reply = (await this.send(req)) as { token?: unknown };
    if (typeof reply?.token !== 'string') throw new ProtocolError('register reply without a token');
    this.drop(name);
    const o: Owned = { contact, token: reply.token };
    if (opts.ttlMs !== undefined) {
      o.ttlMs = opts.ttlMs;
      o.timer = setInterval(() => void this.autoRenew(name), Math.max(100, Math.floor(opts.ttlMs / 3)));
      o.timer.unref();
    }
    this.owned.set(name, o);
    return { name, token: reply.token };
  }

  private async autoRenew(name: string): Promise<void> {
    const o = this.owned.get(name);
    if (o === undefined || this.link === undefined) return;
    try {
      await this.send({ op: 'renew', name, token: o.token });
    } catch (err) {
      if (err instanceof SwitchboardError && (err.code === 'ENOENT' || err.code === 'ENOTOWNER') && this.owned.get(name) === o) {
        this.drop(name);
        this.emit('lost', name, err);
      }
    }
  }

  /** Extend a lease now (automatic for names this client registered). */
  async renew(name: string, token?: string): Promise<NameRecord> {
    const t = token ?? this.owned.get(name)?.token;
    if (t === undefined) throw new SwitchboardError('ENOTOWNER', `no owner token for "${name}"`);
    const reply = (await this.send({ op: 'renew', name, token: t })) as { record?: unknown };
    return parseRecord(reply?.record);
  }

  private drop(name: string): void {
    const o = this.owned.get(name);
    if (o?.timer) clearInterval(o.timer);
    this.owned.delete(name);
  }

  /** The record of `name`; rejects with ENOENT (NameNotFoundError) if nobody holds it. */
  lookup(name: string): Promise<NameRecord> {
    if (typeof name !== 'string') return Promise.reject(new ArgumentError('name must be a string'));
    // Version 2: a binary lookup frame; the record frame decoder checks the reply's shape.
    if (this.link !== undefined && this.link.version >= BINARY_LOOKUP_VERSION) {
      return this.call('lookup', true, (id) => encodeLookupFrame(id, name)) as Promise<NameRecord>;
    }
    return this.lookupJson(name);
  }

  private async lookupJson(name: string): Promise<NameRecord> {
    const reply = (await this.send({ op: 'lookup', name })) as { record?: unknown };
    return parseRecord(reply?.record);
  }

  /** Remove a name: one this client holds, or any name given its token. */
  async unregister(name: string, token?: string): Promise<void> {
    const req: Request = { op: 'unregister', name };
    const t = token ?? this.owned.get(name)?.token;
    if (t !== undefined) req.token = t;
    await this.send(req);
    this.drop(name);
  }

  /** Every name starting with `prefix` (all names without one), sorted. */
  async list(prefix = ''): Promise<NameRecord[]> {
    const reply = (await this.send({ op: 'list', prefix })) as { records?: unknown };
    if (!Array.isArray(reply?.records)) throw new ProtocolError('list reply without records');
    return reply.records.map(parseRecord);
  }

  /** Round trip to the daemon (for health checks and benchmarks). */
  async ping(): Promise<void> {
    await this.send({ op: 'ping' });
  }

  /**
   * Changes to one name (or, with prefix: true, to every name starting with
   * `nameOrPrefix`) until closed, returned from, or aborted. Events that
   * happen while the client is reconnecting are not replayed.
   */
  watch(nameOrPrefix: string, opts: { prefix?: boolean; signal?: AbortSignal } = {}): NameWatch {
    const w = new NameWatch(
      nameOrPrefix,
      opts.prefix === true,
      (w) => {
        this.watches.add(w);
        return this.openWatch(w);
      },
      (w) => this.closeWatch(w),
    );
    if (opts.signal !== undefined) {
      if (opts.signal.aborted) w.close();
      else opts.signal.addEventListener('abort', () => w.close(), { once: true });
    }
    return w;
  }

  private async openWatch(w: NameWatch): Promise<void> {
    const reply = (await this.send({ op: 'watch', key: w.key, prefix: w.prefix })) as { watchId?: unknown };
    if (typeof reply?.watchId !== 'number') throw new ProtocolError('watch reply without watchId');
    if (w.closed) {
      void this.send({ op: 'unwatch', watchId: reply.watchId }).catch(() => undefined);
      return;
    }
    w.serverId = reply.watchId;
    this.byServerId.set(reply.watchId, w);
  }

  private closeWatch(w: NameWatch): void {
    this.watches.delete(w);
    if (w.serverId !== undefined) {
      this.byServerId.delete(w.serverId);
      if (this.link !== undefined) void this.send({ op: 'unwatch', watchId: w.serverId }).catch(() => undefined);
      w.serverId = undefined;
    }
  }

  /** Resolve with the record as soon as someone holds `name` (at once if someone does). */
  async waitFor(name: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<NameRecord> {
    if (opts.signal?.aborted) throw new AbortError(`waitFor("${name}") aborted`);
    const w = this.watch(name);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await new Promise<NameRecord>((resolve, reject) => {
        if (opts.timeoutMs !== undefined) {
          timer = setTimeout(() => reject(new TimeoutError(`nobody registered "${name}" within ${opts.timeoutMs} ms`)), opts.timeoutMs);
        }
        if (opts.signal) {
          onAbort = () => reject(new AbortError(`waitFor("${name}") aborted`));
          opts.signal.addEventListener('abort', onAbort, { once: true });
        }
        const probe = (): void => {
          this.lookup(name).then(resolve, (err: Error) => {
            if (!(err instanceof SwitchboardError && (err.code === 'ENOENT' || err.code === 'ECONNRESET'))) reject(err);
          });
        };
        w.onRestored = probe;
        w.ready.then(probe, reject);
        void (async () => {
          try {
            for await (const ev of w) {
              if (ev.type === 'registered' || ev.type === 'replaced') return resolve(ev.record);
            }
          } catch (err) {
            reject(err as Error);
          }
        })();
      });
    } finally {
      if (timer) clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
      w.close();
    }
  }

  /** Close the connection. Names this client held go after the daemon's grace period. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const name of [...this.owned.keys()]) this.drop(name);
    for (const w of [...this.watches]) w.close();
    const err = new SwitchboardError('ECLOSED', 'the name client is closed');
    this.failWaiters(err);
    for (const [id, p] of this.pending) {
      p.reject(err);
      this.pending.delete(id);
    }
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
    const link = this.link;
    this.link = undefined;
    if (link) await link.channel.close().catch(() => link.channel.destroy());
  }
}
