/**
 * The name-server daemon: listens on the well-known Unix socket and TCP port,
 * speaks the frame protocol (protocol.ts) with each client, keeps names in a
 * store (embedded or etcd) and ties their leases to the owners' connections.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, chownSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ArgumentError, ProtocolError, SwitchboardError } from '../errors.js';
import { formatAddress, listen, toAddress, type Channel, type Listener } from '../transport/index.js';
import { NameNotFoundError, NotOwnerError, errorToWire } from './name-errors.js';
import {
  DEFAULT_MAX_REQUEST_FRAME,
  FrameDecoder,
  FrameType,
  SUPPORTED_VERSIONS,
  encodeFrame,
  encodeFrameJson,
  encodeRecordFrame,
  frameWithId,
  type JsonFrameType,
} from './protocol.js';
import {
  DEFAULT_LIMITS,
  checkContact,
  checkName,
  checkPrefix,
  checkTtl,
  parseRequest,
  type EventPayload,
  type Greeting,
  type NameLimits,
  type Request,
  type RequestOp,
} from './protocol-messages.js';
import { EmbeddedStore } from './stores/embedded-store.js';
import { EtcdStore } from './stores/etcd-store.js';
import { toPublic, type LeaseId, type NameStore, type RegisterMode, type StoredRecord } from './stores/store.js';
import type { NameOwner, NameRecord, WatchEvent } from './types.js';
import { defaultSocketPath, defaultTcpAddress, ensurePrivateDir } from './well-known.js';

export interface NameServerOptions {
  /** Addresses to listen on (default: the well-known Unix socket and tcp://127.0.0.1:7117). */
  listen?: string[];
  /** Journal directory of the embedded store; without one, names live in memory. */
  dataDir?: string;
  /** 'embedded' (default) or 'etcd://host:port[,host:port]'. */
  store?: string;
  /** Serve the dashboard on this port (or 'host:port'; the host must be loopback unless allowRemoteHttp). */
  http?: number | string;
  /** Shared secret TCP clients must prove (HMAC over a nonce); Unix-socket clients are trusted by file mode. */
  secret?: string;
  /** Mode of the Unix socket (default 0o600; 0o660 to let a group in). */
  socketMode?: number;
  /** Group (name or gid) to give the Unix socket, with socketMode 0o660. */
  socketGroup?: string | number;
  /** How long names outlive their owner's connection (default 2000 ms). */
  graceMs?: number;
  /** How long recovered names wait for their owners after a restart (default 30 s). */
  restartGraceMs?: number;
  limits?: Partial<NameLimits>;
  /** Largest request frame (default 64 KiB). */
  maxFrameSize?: number;
  /** Open connections at most (default 4096). */
  maxConnections?: number;
  /** Journal compaction threshold in bytes (embedded store). */
  compactBytes?: number;
  /** Called with one line per notable event (start, protocol errors). */
  log?: (line: string) => void;
}

export interface ClientInfo {
  id: number;
  client: string;
  transport: string;
  pid?: number;
  uid?: number;
  since: number;
  names: number;
  watches: number;
}

export interface NameServerStats {
  store: string;
  names: number;
  clients: number;
  connectionsTotal: number;
  ops: Record<string, number>;
  errors: number;
  protocolErrors: number;
  events: number;
}

export interface NameServer {
  /** Where it listens, as formatAddress prints them (real ports). */
  readonly addresses: string[];
  readonly httpUrl?: string;
  readonly store: NameStore;
  stats(): NameServerStats;
  clients(): ClientInfo[];
  /** Names with their lease state, for the dashboard. */
  snapshot(): Promise<NameRecord[]>;
  /** Called on every change of names, clients or counters. */
  onChange(listener: () => void): () => void;
  close(): Promise<void>;
}

const MAX_IN_FLIGHT = 256;
const MAX_OUTBOUND_BYTES = 16 * 1024 * 1024;
const MAX_LIST = 100_000;
const HELLO_DEADLINE_MS = 10_000;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

interface Watch {
  key: string;
  prefix: boolean;
}

class Connection {
  client = 'anonymous';
  helloPid: number | undefined;
  authed: boolean;
  lease: Promise<LeaseId> | undefined;
  readonly names = new Set<string>();
  /** Leases granted for this connection's TTL names. */
  readonly ttlLeases = new Set<LeaseId>();
  readonly watches = new Map<number, Watch>();
  readonly since = Date.now();
  readonly nonce = randomBytes(16).toString('hex');
  /** Bytes written whose write() has not resolved yet: Node holds them above the socket's high-water mark. */
  private unsettled = 0;
  /** A write promise seen fulfilled (the channel hands out one for every write it takes at once). */
  private settled: Promise<void> | undefined;
  closed = false;
  /** The protocol version of the client's latest frame: events and connection errors go out in it. */
  version = 1;
  /** Names being registered right now (counted against the limit). */
  reserving = 0;

  constructor(
    readonly id: number,
    readonly channel: Channel,
    readonly transport: 'unix' | 'tcp',
    needsAuth: boolean,
  ) {
    this.authed = !needsAuth;
  }

  owner(): NameOwner {
    const o: NameOwner = { client: this.client };
    const pid = this.channel.peer.pid ?? this.helloPid;
    if (pid !== undefined) o.pid = pid;
    if (this.channel.peer.uid !== undefined) o.uid = this.channel.peer.uid;
    return o;
  }

  send(type: JsonFrameType, id: number, payload: unknown, version = this.version): void {
    if (this.closed) return;
    this.sendBytes(encodeFrame({ type, id, payload, version }));
  }

  /**
   * Write at once: the channel already sends the writes of one tick as one
   * writev, so queueing here would only add a microtask per reply. A write
   * promise already seen fulfilled needs no handlers (it cannot reject);
   * others are counted until they settle, so a client that does not read its
   * replies or watch events is cut off instead of buffered forever.
   */
  sendBytes(bytes: Uint8Array): void {
    if (this.closed || this.channel.isClosed) return;
    const done = this.channel.write(bytes);
    if (done === this.settled) return;
    const n = bytes.length;
    this.unsettled += n;
    done.then(
      () => {
        this.unsettled -= n;
        this.settled = done;
      },
      () => this.channel.destroy(),
    );
    if (this.unsettled > MAX_OUTBOUND_BYTES) {
      this.closed = true;
      this.channel.destroy(new SwitchboardError('ELIMIT', 'client does not read its replies'));
    }
  }

  /** Close after what was written has gone out. */
  async finish(): Promise<void> {
    this.closed = true;
    await this.channel.close().catch(() => this.channel.destroy());
  }
}

function parseHttp(spec: number | string): { host: string; port: number } {
  if (typeof spec === 'number') return { host: '127.0.0.1', port: spec };
  const m = /^(?:(.+):)?(\d+)$/.exec(spec);
  if (!m) throw new ArgumentError(`--http must be a port or host:port, got "${spec}"`);
  return { host: m[1] ?? '127.0.0.1', port: Number(m[2]) };
}

function groupId(g: string | number): number {
  if (typeof g === 'number') return g;
  if (/^\d+$/.test(g)) return Number(g);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === g && f[2] !== undefined) return Number(f[2]);
  }
  throw new ArgumentError(`unknown group "${g}"`);
}

class Daemon implements NameServer {
  addresses: string[] = [];
  httpUrl?: string;
  store!: NameStore;
  private listeners: Listener[] = [];
  private readonly conns = new Set<Connection>();
  /** Which connection of this daemon holds which name. */
  private readonly holders = new Map<string, Connection>();
  private readonly holderTokens = new Map<string, string>();
  private readonly changeListeners = new Set<() => void>();
  private readonly graceTimers = new Set<NodeJS.Timeout>();
  private unsubscribe: (() => void) | undefined;
  private httpClose: (() => Promise<void>) | undefined;
  private nextConn = 1;
  private closing = false;
  private readonly limits: NameLimits;
  private readonly graceMs: number;
  private readonly counters = { connectionsTotal: 0, errors: 0, protocolErrors: 0, events: 0 };
  private readonly ops: Record<string, number> = {};
  /** Serialized lookup replies of records held by live connections (records are replaced, never mutated). */
  private readonly replyCache = new WeakMap<StoredRecord, string>();
  /** The same as version-2 record frames with id 0 (see frameWithId). */
  private readonly recordFrameCache = new WeakMap<StoredRecord, Uint8Array>();

  constructor(private readonly opts: NameServerOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.graceMs = opts.graceMs ?? 2000;
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  async start(): Promise<void> {
    const storeSpec = this.opts.store ?? 'embedded';
    if (storeSpec === 'embedded') {
      this.store = await EmbeddedStore.open({
        dataDir: this.opts.dataDir,
        ...(this.opts.restartGraceMs !== undefined ? { restartGraceMs: this.opts.restartGraceMs } : {}),
        ...(this.opts.compactBytes !== undefined ? { compactBytes: this.opts.compactBytes } : {}),
      });
    } else if (storeSpec.startsWith('etcd://')) {
      this.store = await EtcdStore.open({ endpoints: storeSpec });
    } else {
      throw new ArgumentError(`--store must be "embedded" or etcd://host:port[,host:port], got "${storeSpec}"`);
    }
    this.unsubscribe = this.store.subscribe((ev) => this.onStoreEvent(ev));
    try {
      const addrs = this.opts.listen ?? [`unix://${defaultSocketPath()}`, defaultTcpAddress()];
      for (const text of addrs) {
        const addr = toAddress(text);
        if (addr.transport === 'unix') ensurePrivateDir(dirname(addr.path));
        const l = await listen(addr, {
          mode: this.opts.socketMode ?? 0o600,
          maxConnections: this.opts.maxConnections ?? 4096,
          onConnection: (ch) => this.accept(ch, addr.transport === 'unix' ? 'unix' : 'tcp'),
        });
        if (addr.transport === 'unix' && ((this.opts.socketMode ?? 0o600) & 0o070) !== 0) {
          // A group-accessible socket is no use inside a directory the group cannot enter.
          const dir = dirname(addr.path);
          if (this.opts.socketGroup !== undefined) {
            const gid = groupId(this.opts.socketGroup);
            chownSync(addr.path, -1, gid);
            chownSync(dir, -1, gid);
          }
          chmodSync(dir, (statSync(dir).mode & 0o777) | 0o010);
        }
        this.listeners.push(l);
        this.addresses.push(formatAddress(l.address));
      }
      if (this.opts.http !== undefined) {
        const { startDashboard } = await import('./dashboard/http-server.js');
        const { host, port } = parseHttp(this.opts.http);
        const d = await startDashboard(this, host, port);
        this.httpUrl = d.url;
        this.httpClose = d.close;
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    this.log(`name server (${this.store.kind} store) listening on ${this.addresses.join(', ')}${this.httpUrl ? `; dashboard ${this.httpUrl}` : ''}`);
  }

  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private changed(): void {
    for (const l of this.changeListeners) l();
  }

  stats(): NameServerStats {
    let names = 0;
    for (const c of this.conns) names += c.names.size;
    const storeNames = this.store instanceof EmbeddedStore ? this.store.size : names;
    return { store: this.store.kind, names: storeNames, clients: this.conns.size, ...this.counters, ops: { ...this.ops } };
  }

  clients(): ClientInfo[] {
    return [...this.conns].map((c) => {
      const o = c.owner();
      const info: ClientInfo = { id: c.id, client: c.client, transport: c.transport, since: c.since, names: c.names.size, watches: c.watches.size };
      if (o.pid !== undefined) info.pid = o.pid;
      if (o.uid !== undefined) info.uid = o.uid;
      return info;
    });
  }

  async snapshot(): Promise<NameRecord[]> {
    return (await this.store.list('')).map((r) => this.publicRecord(r));
  }

  private publicRecord(r: StoredRecord): NameRecord {
    return toPublic(r, this.store.leaseExpiresAt(r.lease));
  }

  private accept(ch: Channel, transport: 'unix' | 'tcp'): void {
    if (this.closing) {
      ch.destroy();
      return;
    }
    const needsAuth = this.opts.secret !== undefined && transport === 'tcp';
    const conn = new Connection(this.nextConn++, ch, transport, needsAuth);
    this.conns.add(conn);
    this.counters.connectionsTotal++;
    const greeting: Greeting = {
      kind: 'greeting',
      server: 'switchboard-ns',
      versions: [...SUPPORTED_VERSIONS],
      nonce: conn.nonce,
      auth: needsAuth ? 'hmac-sha256' : 'none',
    };
    conn.send(FrameType.event, 0, greeting);
    if (needsAuth) {
      // An unauthenticated TCP connection may not sit on a connection slot.
      const t = setTimeout(() => {
        if (!conn.authed && !conn.closed) {
          this.counters.protocolErrors++;
          conn.send(FrameType.error, 0, { code: 'EACCES', message: `no hello with the shared secret within ${HELLO_DEADLINE_MS} ms` });
          void conn.finish();
        }
      }, HELLO_DEADLINE_MS);
      t.unref();
      void ch.closed.then(() => clearTimeout(t));
    }
    this.changed();
    this.serveConnection(conn);
  }

  /**
   * Read and answer the connection's frames. Reads go through tryRead() and
   * onReadReady(), so a request is decoded and (for a fast lookup) answered
   * inside the socket's data event, without a read() promise per chunk.
   */
  private serveConnection(conn: Connection): void {
    const decoder = new FrameDecoder(this.opts.maxFrameSize ?? DEFAULT_MAX_REQUEST_FRAME);
    const inFlight = new Set<Promise<void>>();
    let over = false;
    const end = async (err: unknown): Promise<void> => {
      if (over) return;
      over = true;
      try {
        if (err instanceof ProtocolError || (err instanceof SwitchboardError && err.code === 'EACCES')) {
          this.counters.protocolErrors++;
          this.log(`client ${conn.id} (${conn.channel.description}): ${err.message}; closing`);
          conn.send(FrameType.error, 0, errorToWire(err));
          await conn.finish();
        }
      } finally {
        await Promise.allSettled([...inFlight]);
        await this.disconnect(conn);
      }
    };
    const pump = (): void => {
      if (over) return;
      try {
        for (;;) {
          if (inFlight.size >= MAX_IN_FLIGHT) {
            void Promise.race(inFlight).then(pump, pump);
            return;
          }
          const chunk = conn.channel.tryRead();
          if (chunk === undefined) {
            conn.channel.onReadReady(pump);
            return;
          }
          if (chunk === null) {
            decoder.end();
            void end(undefined);
            return;
          }
          for (const frame of decoder.push(chunk)) {
            const version = frame.version ?? 1;
            conn.version = version;
            let req: Request;
            const binary = frame.type === FrameType.lookup;
            if (binary) req = { op: 'lookup', name: frame.payload as string };
            else if (frame.type === FrameType.request) req = parseRequest(frame.payload);
            else throw new ProtocolError(`a client may only send requests, got frame type ${frame.type}`);
            if (req.op === 'lookup' && this.fastLookup(conn, frame.id, req.name, version, binary)) continue;
            const p = this.handle(conn, frame.id, req, version, binary).finally(() => inFlight.delete(p));
            inFlight.add(p);
            if (conn.closed) {
              void end(undefined);
              return;
            }
          }
        }
      } catch (err) {
        void end(err);
      }
    };
    pump();
  }

  /**
   * Lookups on the embedded store answer synchronously, from a cached
   * serialization of the record: the path the benchmark holds to 1.5x a raw
   * socket round trip. Returns false to take the ordinary path.
   */
  private fastLookup(conn: Connection, id: number, name: string, version: number, binary: boolean): boolean {
    const store = this.store;
    if (!(store instanceof EmbeddedStore) || !conn.authed) return false;
    try {
      checkName(name, this.limits);
    } catch {
      return false;
    }
    this.count('lookup');
    const rec = store.peek(name);
    if (rec === undefined) {
      this.counters.errors++;
      conn.send(FrameType.error, id, errorToWire(new NameNotFoundError(name)), version);
      this.changed();
      return true;
    }
    const exp = store.leaseExpiresAt(rec.lease);
    if (binary) {
      let frame: Uint8Array | undefined;
      if (exp !== undefined) frame = encodeRecordFrame(toPublic(rec, exp));
      else if ((frame = this.recordFrameCache.get(rec)) === undefined) {
        frame = encodeRecordFrame(toPublic(rec, undefined));
        this.recordFrameCache.set(rec, frame);
      }
      conn.sendBytes(frameWithId(frame, id));
    } else {
      let json: string | undefined;
      if (exp !== undefined) json = JSON.stringify({ record: toPublic(rec, exp) });
      else if ((json = this.replyCache.get(rec)) === undefined) {
        json = `{"record":${JSON.stringify(toPublic(rec, undefined))}}`;
        this.replyCache.set(rec, json);
      }
      conn.sendBytes(encodeFrameJson(FrameType.response, id, json, undefined, version));
    }
    this.changed();
    return true;
  }

  private count(op: RequestOp): void {
    this.ops[op] = (this.ops[op] ?? 0) + 1;
  }

  /** Answer one request; `binary`: it came as a lookup frame and its answer goes as a record frame. */
  private async handle(conn: Connection, id: number, req: Request, version: number, binary: boolean): Promise<void> {
    this.count(req.op);
    try {
      if (!conn.authed && req.op !== 'hello') {
        conn.send(FrameType.error, id, { code: 'EACCES', message: 'this TCP port requires the shared secret: send hello first' }, version);
        this.counters.protocolErrors++;
        await conn.finish();
        return;
      }
      const reply = await this.dispatch(conn, id, req);
      if (binary) conn.sendBytes(frameWithId(encodeRecordFrame((reply as { record: NameRecord }).record), id));
      else conn.send(FrameType.response, id, reply ?? {}, version);
    } catch (err) {
      this.counters.errors++;
      conn.send(FrameType.error, id, errorToWire(err), version);
      if (err instanceof SwitchboardError && err.code === 'EACCES') await conn.finish();
    } finally {
      this.changed();
    }
  }

  private async dispatch(conn: Connection, id: number, req: Request): Promise<unknown> {
    switch (req.op) {
      case 'hello': {
        if (!conn.authed) {
          const want = createHmac('sha256', this.opts.secret ?? '').update(conn.nonce).digest();
          const got = Buffer.from(req.mac ?? '', 'hex');
          if (got.length !== want.length || !timingSafeEqual(got, want)) {
            throw new SwitchboardError('EACCES', 'wrong or missing shared secret');
          }
          conn.authed = true;
        }
        conn.client = req.client.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 128) || 'anonymous';
        if (req.pid !== undefined) conn.helloPid = req.pid;
        return { server: 'switchboard-ns', connection: conn.id, store: this.store.kind, graceMs: this.graceMs };
      }
      case 'ping':
        return { now: Date.now() };
      case 'register':
        return this.register(conn, req);
      case 'renew':
        return this.renew(conn, req.name, req.token);
      case 'unregister': {
        checkName(req.name, this.limits);
        let hash: string | undefined;
        if (req.token !== undefined) hash = sha256(req.token);
        else if (this.holders.get(req.name) !== conn) {
          if ((await this.store.get(req.name)) === undefined) throw new NameNotFoundError(req.name);
          throw new NotOwnerError(req.name, `not the owner of "${req.name}": give its owner token`);
        }
        const rec = await this.store.unregister(req.name, hash);
        this.release(req.name);
        if (rec.ttlMs !== undefined) void this.store.revokeLease(rec.lease).catch(() => undefined);
        return {};
      }
      case 'lookup': {
        checkName(req.name, this.limits);
        const rec = await this.store.get(req.name);
        if (rec === undefined) throw new NameNotFoundError(req.name);
        return { record: this.publicRecord(rec) };
      }
      case 'list': {
        checkPrefix(req.prefix, this.limits);
        const recs = await this.store.list(req.prefix);
        return { records: recs.slice(0, MAX_LIST).map((r) => this.publicRecord(r)), truncated: recs.length > MAX_LIST };
      }
      case 'watch': {
        if (req.prefix) checkPrefix(req.key, this.limits);
        else checkName(req.key, this.limits);
        if (conn.watches.size >= this.limits.maxWatchesPerClient) {
          throw new SwitchboardError('ELIMIT', `a client may have at most ${this.limits.maxWatchesPerClient} watches`);
        }
        conn.watches.set(id, { key: req.key, prefix: req.prefix });
        return { watchId: id };
      }
      case 'unwatch':
        conn.watches.delete(req.watchId);
        return {};
    }
  }

  private connLease(conn: Connection): Promise<LeaseId> {
    if (conn.lease === undefined) {
      // A connection that has already closed gets a lease that counts down at once.
      conn.lease = this.store.grantLease(this.graceMs, !conn.closed && !conn.channel.isClosed);
      conn.lease.catch(() => {
        conn.lease = undefined;
      });
    }
    return conn.lease;
  }

  private async register(conn: Connection, req: Extract<Request, { op: 'register' }>): Promise<unknown> {
    checkName(req.name, this.limits);
    checkContact(req.contact, this.limits);
    if (req.ttlMs !== undefined) checkTtl(req.ttlMs, this.limits);
    const already = conn.names.has(req.name);
    if (!already && conn.names.size + conn.reserving >= this.limits.maxNamesPerClient) {
      throw new SwitchboardError('ELIMIT', `a client may hold at most ${this.limits.maxNamesPerClient} names; this one holds ${conn.names.size}`);
    }
    const mode: RegisterMode = req.replace !== undefined ? 'replace' : req.token !== undefined ? 'reclaim' : 'new';
    const token = mode === 'reclaim' && req.token !== undefined ? req.token : randomBytes(24).toString('base64url');
    if (!already) conn.reserving++;
    let ttlLease: LeaseId | undefined;
    try {
      if (req.ttlMs !== undefined) {
        ttlLease = await this.store.grantLease(req.ttlMs, false);
        conn.ttlLeases.add(ttlLease);
      }
      const lease = ttlLease ?? (await this.connLease(conn));
      const result = await this.store.register({
        name: req.name,
        contact: req.contact,
        owner: conn.owner(),
        lease,
        ttlMs: req.ttlMs,
        tokenHash: sha256(token),
        mode,
        expectTokenHash: req.replace === undefined ? undefined : sha256(req.replace),
        now: Date.now(),
      });
      if (conn.closed || conn.channel.isClosed) {
        // The owner went away while we registered: the lease rules apply as if it had been there.
        this.hold(req.name, conn, result.record.tokenHash);
        this.orphan(conn, req.name);
      } else this.hold(req.name, conn, result.record.tokenHash);
      return { name: req.name, token, record: this.publicRecord(result.record) };
    } catch (err) {
      if (ttlLease !== undefined) {
        conn.ttlLeases.delete(ttlLease);
        void this.store.revokeLease(ttlLease).catch(() => undefined);
      }
      throw err;
    } finally {
      if (!already) conn.reserving--;
    }
  }

  private async renew(conn: Connection, name: string, token: string): Promise<unknown> {
    checkName(name, this.limits);
    const rec = await this.store.get(name);
    if (rec === undefined) throw new NameNotFoundError(name);
    const hash = sha256(token);
    if (rec.tokenHash !== hash) throw new NotOwnerError(name);
    if (rec.ttlMs !== undefined && this.holders.get(name) === conn && (await this.store.keepAlive(rec.lease))) {
      return { record: this.publicRecord(rec) };
    }
    // Held through another (dead) connection or a restart lease: attach it to this one.
    if (!conn.names.has(name) && conn.names.size >= this.limits.maxNamesPerClient) {
      throw new SwitchboardError('ELIMIT', `a client may hold at most ${this.limits.maxNamesPerClient} names`);
    }
    let lease: LeaseId;
    if (rec.ttlMs !== undefined) {
      lease = await this.store.grantLease(rec.ttlMs, false);
      conn.ttlLeases.add(lease);
    } else lease = await this.connLease(conn);
    const result = await this.store.register({
      name,
      contact: rec.contact,
      owner: conn.owner(),
      lease,
      ttlMs: rec.ttlMs,
      tokenHash: hash,
      mode: 'reclaim',
      now: Date.now(),
    });
    this.hold(name, conn, hash);
    return { record: this.publicRecord(result.record) };
  }

  private hold(name: string, conn: Connection, tokenHash: string): void {
    const prev = this.holders.get(name);
    if (prev !== undefined && prev !== conn) prev.names.delete(name);
    this.holders.set(name, conn);
    this.holderTokens.set(name, tokenHash);
    conn.names.add(name);
  }

  private release(name: string): void {
    const c = this.holders.get(name);
    if (c !== undefined) c.names.delete(name);
    this.holders.delete(name);
    this.holderTokens.delete(name);
  }

  /** A TTL name whose owner's connection has closed goes after the grace period unless reclaimed. */
  private orphan(conn: Connection, name: string): void {
    const t = setTimeout(async () => {
      this.graceTimers.delete(t);
      if (this.holders.get(name) !== conn) return;
      const rec = await this.store.get(name).catch(() => undefined);
      if (rec !== undefined && conn.ttlLeases.has(rec.lease) && this.holders.get(name) === conn) {
        await this.store.revokeLease(rec.lease).catch(() => undefined);
      }
    }, this.graceMs);
    t.unref();
    this.graceTimers.add(t);
  }

  private async disconnect(conn: Connection): Promise<void> {
    if (!this.conns.has(conn)) return;
    this.conns.delete(conn);
    conn.closed = true;
    conn.channel.destroy();
    conn.watches.clear();
    for (const name of conn.names) this.orphan(conn, name);
    if (conn.lease !== undefined) {
      const lease = await conn.lease.catch(() => undefined);
      if (lease !== undefined && !this.closing) await this.store.unpinLease(lease).catch(() => undefined);
    }
    this.changed();
  }

  private onStoreEvent(ev: WatchEvent): void {
    this.counters.events++;
    const name = ev.record.name;
    if (ev.type === 'removed' || ev.type === 'expired') this.release(name);
    else if (ev.type === 'replaced') {
      // Taken over (perhaps through another daemon on the same etcd): no longer held here.
      const held = this.holderTokens.get(name);
      if (held !== undefined) {
        void this.store
          .get(name)
          .then((rec) => {
            if (rec !== undefined && rec.tokenHash !== held && this.holderTokens.get(name) === held) this.release(name);
          })
          .catch(() => undefined);
      }
    }
    for (const conn of this.conns) {
      for (const [watchId, w] of conn.watches) {
        if (w.prefix ? name.startsWith(w.key) : name === w.key) {
          const payload: EventPayload = { kind: 'watch', watchId, type: ev.type, record: ev.record };
          conn.send(FrameType.event, watchId, payload);
        }
      }
    }
    this.changed();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const t of this.graceTimers) clearTimeout(t);
    this.graceTimers.clear();
    await this.httpClose?.();
    await Promise.all(this.listeners.map((l) => l.close({ graceMs: 0 }).catch(() => undefined)));
    for (const c of this.conns) c.channel.destroy();
    this.unsubscribe?.();
    await this.store?.close();
    this.changeListeners.clear();
  }
}

/** Start a name server; see NameServerOptions for the defaults. */
export async function startNameServer(opts: NameServerOptions = {}): Promise<NameServer> {
  const d = new Daemon(opts);
  await d.start();
  return d;
}
