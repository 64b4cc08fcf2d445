/**
 * The etcd store: every name is a key `<prefix>names/<name>` whose value is
 * the record as JSON and whose etcd lease is the record's lease, so that any
 * number of name-server daemons on the same etcd cluster share one namespace.
 *
 * - Ownership checks are optimistic transactions: read the key, apply the
 *   ownership rules, write only if its mod revision is still the one read.
 * - Pinned leases are kept alive by this daemon over one keep-alive stream;
 *   if the daemon dies, etcd expires them after their TTL.
 * - Watch events come from an etcd watch with previous values, so every daemon
 *   reports changes made through any of them. An explicit removal first marks
 *   the record "removing", then deletes it; a delete whose previous value is
 *   not so marked was done by etcd when a lease ran out: 'expired'.
 */
import type { Etcd3, IKeyValue, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, Namespace, Watcher } from 'etcd3';
import { SwitchboardError, fromSystemError } from '../../errors.js';
import { NameNotFoundError } from '../name-errors.js';
import type { WatchEvent, WatchEventType } from '../types.js';
import { checkOwner, decideRegister, toPublic, type LeaseId, type NameStore, type RegisterInput, type RegisterResult, type StoredRecord } from './store.js';

export interface EtcdStoreOptions {
  /** 'etcd://host:port[,host:port]' or a list of 'http://host:port'. */
  endpoints: string | string[];
  /** Key prefix (default '/switchboard/ns/'). */
  prefix?: string;
  /** How long to wait for etcd at open and per call (default 5000 ms). */
  timeoutMs?: number;
}

interface Value {
  rec: Omit<StoredRecord, 'lease'>;
  state?: 'removing';
}

interface KnownLease {
  ttlMs: number;
  pinned: boolean;
  lastKeepAlive: number;
}

/** Parse 'etcd://h:p,h:p' into gRPC host URLs. */
export function parseEtcdEndpoints(spec: string | string[]): string[] {
  const list = Array.isArray(spec) ? spec : spec.replace(/^etcd:\/\//, '').split(',');
  const hosts = list
    .map((h) => h.trim())
    .filter((h) => h !== '')
    .map((h) => (/^https?:\/\//.test(h) ? h : `http://${h}`));
  if (hosts.length === 0) throw new SwitchboardError('EINVAL', `no etcd endpoints in "${String(spec)}"`);
  return hosts;
}

const MAX_CAS_RETRIES = 50;

export class EtcdStore implements NameStore {
  readonly kind = 'etcd' as const;
  private readonly known = new Map<LeaseId, KnownLease>();
  private readonly listeners = new Set<(ev: WatchEvent) => void>();
  private readonly waiters = new Map<string, ((alive: boolean) => void)[]>();
  private keepStream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  private keepStreamOpening: Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> | undefined;
  private watcher: Watcher | undefined;
  private pinTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly client: Etcd3,
    private readonly ns: Namespace,
    private readonly timeoutMs: number,
  ) {}

  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const hosts = parseEtcdEndpoints(options.endpoints);
    const timeoutMs = options.timeoutMs ?? 5000;
    const { Etcd3 } = await import('etcd3');
    const client = new Etcd3({
      hosts,
      dialTimeout: timeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
    });
    const store = new EtcdStore(client, client.namespace(options.prefix ?? '/switchboard/ns/'), timeoutMs);
    try {
      await store.ns.get('names/').exec();
      await store.startWatch();
    } catch (err) {
      client.close();
      throw new SwitchboardError('ECONNREFUSED', `cannot reach etcd at ${hosts.join(', ')}: ${(err as Error).message}`, { cause: err });
    }
    store.pinTimer = setInterval(() => store.refreshPins(), 500);
    store.pinTimer.unref();
    return store;
  }

  private async startWatch(): Promise<void> {
    const w = await this.ns.watch().prefix('names/').withPreviousKV().create();
    w.on('put', (kv, prev) => this.onPut(kv, prev));
    w.on('delete', (kv, prev) => this.onDelete(kv, prev));
    w.on('error', () => undefined);
    this.watcher = w;
  }

  private onPut(kv: IKeyValue, prev: IKeyValue | undefined): void {
    const v = decodeValue(kv);
    if (v === undefined || v.state === 'removing') return;
    const p = prev === undefined ? undefined : decodeValue(prev);
    let type: WatchEventType | undefined;
    if (p === undefined || p.state === 'removing') type = 'registered';
    else if (p.rec.tokenHash !== v.rec.tokenHash || JSON.stringify(p.rec.contact) !== JSON.stringify(v.rec.contact)) type = 'replaced';
    if (type !== undefined) this.emit({ type, record: toPublic(this.fromKv(kv, v), this.leaseExpiresAt(kv.lease)) });
  }

  private onDelete(_kv: IKeyValue, prev: IKeyValue | undefined): void {
    const p = prev === undefined ? undefined : decodeValue(prev);
    if (p === undefined || prev === undefined) return;
    this.emit({ type: p.state === 'removing' ? 'removed' : 'expired', record: toPublic(this.fromKv(prev, p), undefined) });
  }

  private emit(ev: WatchEvent): void {
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  private fromKv(kv: IKeyValue, v: Value): StoredRecord {
    return { ...v.rec, lease: kv.lease };
  }

  private async call<T>(what: string, f: () => Promise<T>): Promise<T> {
    if (this.closed) throw new SwitchboardError('ECLOSED', 'the etcd store is closed');
    try {
      return await f();
    } catch (err) {
      if (err instanceof SwitchboardError) throw err;
      throw fromSystemError(err, `etcd ${what}`);
    }
  }

  async grantLease(ttlMs: number, pinned: boolean): Promise<LeaseId> {
    const ttl = Math.max(1, Math.ceil(ttlMs / 1000));
    const res = await this.call('lease grant', () => this.client.leaseClient.leaseGrant({ TTL: ttl, ID: 0 }));
    this.known.set(res.ID, { ttlMs: Number(res.TTL) * 1000, pinned, lastKeepAlive: Date.now() });
    return res.ID;
  }

  async unpinLease(lease: LeaseId): Promise<void> {
    const k = this.known.get(lease);
    if (k === undefined) return;
    k.pinned = false;
    // Count the grace from now, not from the last periodic keep-alive.
    await this.keepAlive(lease).catch(() => false);
  }

  async keepAlive(lease: LeaseId): Promise<boolean> {
    const alive = await this.call('lease keep-alive', async () => {
      const stream = await this.keepAliveStream();
      return new Promise<boolean>((resolve, reject) => {
        const list = this.waiters.get(lease) ?? [];
        const timer = setTimeout(() => reject(new SwitchboardError('ETIMEDOUT', 'etcd keep-alive timed out')), this.timeoutMs);
        list.push((ok) => {
          clearTimeout(timer);
          resolve(ok);
        });
        this.waiters.set(lease, list);
        stream.write({ ID: lease });
      });
    });
    const k = this.known.get(lease);
    if (k !== undefined) {
      if (alive) k.lastKeepAlive = Date.now();
      else this.known.delete(lease);
    }
    return alive;
  }

  private async keepAliveStream(): Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> {
    if (this.keepStream !== undefined) return this.keepStream;
    if (this.keepStreamOpening === undefined) {
      this.keepStreamOpening = this.client.leaseClient.leaseKeepAlive().then((s) => {
        const drop = (): void => {
          if (this.keepStream === s) this.keepStream = undefined;
          this.keepStreamOpening = undefined;
          for (const [id, list] of this.waiters) {
            this.waiters.delete(id);
            for (const w of list) w(false);
          }
        };
        s.on('data', (res) => {
          const list = this.waiters.get(res.ID);
          if (list === undefined) return;
          this.waiters.delete(res.ID);
          for (const w of list) w(Number(res.TTL) > 0);
        });
        s.on('error', drop);
        s.on('end', drop);
        this.keepStream = s;
        return s;
      });
      this.keepStreamOpening.catch(() => {
        this.keepStreamOpening = undefined;
      });
    }
    return this.keepStreamOpening;
  }

  private refreshPins(): void {
    const now = Date.now();
    for (const [id, k] of this.known) {
      if (k.pinned && now - k.lastKeepAlive >= k.ttlMs / 3) {
        k.lastKeepAlive = now; // don't pile up keep-alives while one is in flight
        void this.keepAlive(id).catch(() => undefined);
      }
    }
  }

  async revokeLease(lease: LeaseId): Promise<void> {
    this.known.delete(lease);
    try {
      await this.call('lease revoke', () => this.client.leaseClient.leaseRevoke({ ID: lease }));
    } catch (err) {
      // Revoking a lease that already ended is not a failure.
      if (!/not found/i.test((err as Error).message)) throw err;
    }
  }

  leaseExpiresAt(lease: LeaseId): number | undefined {
    const k = this.known.get(lease);
    return k === undefined || k.pinned ? undefined : k.lastKeepAlive + k.ttlMs;
  }

  private async read(name: string): Promise<{ kv: IKeyValue | undefined; value: Value | undefined }> {
    const res = await this.call('get', () => this.ns.get(`names/${name}`).exec());
    const kv = res.kvs[0];
    return { kv, value: kv === undefined ? undefined : decodeValue(kv) };
  }

  async register(input: RegisterInput): Promise<RegisterResult> {
    for (let i = 0; i < MAX_CAS_RETRIES; i++) {
      const { kv, value } = await this.read(input.name);
      const live = value === undefined || value.state === 'removing' || kv === undefined ? undefined : this.fromKv(kv, value);
      const result = decideRegister(live, input);
      const { lease, ...rec } = result.record;
      const body = JSON.stringify({ rec } satisfies Value);
      const key = `names/${input.name}`;
      const res = await this.call('register', () =>
        this.ns
          .if(key, 'Mod', '==', kv === undefined ? 0 : Number(kv.mod_revision))
          .then(this.ns.put(key).value(body).lease(lease))
          .commit(),
      );
      if (res.succeeded) return result;
    }
    throw new SwitchboardError('EIO', `register "${input.name}": too much contention in etcd`);
  }

  async unregister(name: string, tokenHash: string | undefined): Promise<StoredRecord> {
    const key = `names/${name}`;
    for (let i = 0; i < MAX_CAS_RETRIES; i++) {
      const { kv, value } = await this.read(name);
      if (kv === undefined || value === undefined || value.state === 'removing') throw new NameNotFoundError(name);
      const rec = this.fromKv(kv, value);
      checkOwner(rec, tokenHash);
      const marked = JSON.stringify({ rec: value.rec, state: 'removing' } satisfies Value);
      const put = this.ns.put(key).value(marked);
      if (kv.lease !== '0') put.lease(kv.lease);
      const r1 = await this.call('unregister', () => this.ns.if(key, 'Mod', '==', Number(kv.mod_revision)).then(put).commit());
      if (!r1.succeeded) continue;
      const rev = Number(r1.header.revision);
      await this.call('unregister', () => this.ns.if(key, 'Mod', '==', rev).then(this.ns.delete().key(key)).commit());
      return rec;
    }
    throw new SwitchboardError('EIO', `unregister "${name}": too much contention in etcd`);
  }

  async get(name: string): Promise<StoredRecord | undefined> {
    const { kv, value } = await this.read(name);
    return kv === undefined || value === undefined || value.state === 'removing' ? undefined : this.fromKv(kv, value);
  }

  async list(prefix: string): Promise<StoredRecord[]> {
    const res = await this.call('list', () => this.ns.getAll().prefix(`names/${prefix}`).sort('Key', 'Ascend').exec());
    const out: StoredRecord[] = [];
    for (const kv of res.kvs) {
      const v = decodeValue(kv);
      if (v !== undefined && v.state !== 'removing') out.push(this.fromKv(kv, v));
    }
    return out;
  }

  subscribe(listener: (ev: WatchEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The raw client, for benchmarks that compare with bare etcd get/put. */
  get etcd(): Etcd3 {
    return this.client;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pinTimer) clearInterval(this.pinTimer);
    this.listeners.clear();
    await this.watcher?.cancel().catch(() => undefined);
    this.keepStream?.end();
    this.client.close();
  }
}

function decodeValue(kv: IKeyValue): Value | undefined {
  try {
    const v = JSON.parse(kv.value.toString('utf8')) as Value;
    if (typeof v !== 'object' || v === null || typeof v.rec !== 'object' || typeof v.rec.name !== 'string') return undefined;
    return v;
  } catch {
    return undefined;
  }
}
