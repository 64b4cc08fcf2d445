/**
 * The embedded store: names in a Map, leases in memory, every change written
 * ahead to a journal (fsync before the acknowledgement) when a data directory
 * is given. Leases are not persisted: after a restart every recovered name
 * gets one "restart lease" of `restartGraceMs`, so its owner can reconnect
 * and renew it with its token; names whose owners do not come back expire.
 */
import { SwitchboardError } from '../../errors.js';
import { NameNotFoundError } from '../name-errors.js';
import type { WatchEvent } from '../types.js';
import { Journal, type JournalOptions, type PersistedRecord } from './journal.js';
import {
  checkOwner,
  decideRegister,
  toPublic,
  type LeaseId,
  type NameStore,
  type RegisterInput,
  type RegisterResult,
  type StoredRecord,
} from './store.js';

interface Lease {
  ttlMs: number;
  pinned: boolean;
  expiresAt: number;
  names: Set<string>;
}

export interface EmbeddedStoreOptions extends JournalOptions {
  /** Directory for the journal; without one, names live in memory only. */
  dataDir?: string | undefined;
  /** How long recovered names wait for their owners after a restart (default 30 s). */
  restartGraceMs?: number;
  /** How often expired leases are swept (default 100 ms). */
  sweepMs?: number;
}

const RESTART_LEASE = 'restart';

export class EmbeddedStore implements NameStore {
  readonly kind = 'embedded' as const;
  private readonly names = new Map<string, StoredRecord>();
  private readonly leases = new Map<LeaseId, Lease>();
  private readonly listeners = new Set<(ev: WatchEvent) => void>();
  private nextLease = 1;
  private sweeper: NodeJS.Timeout;
  private closed = false;
  /** What recovery found, for logs and tests. */
  recovery: { generation: number; replayed: number; recovered: number; tornTail?: string } | undefined;

  private constructor(
    private journal: Journal | undefined,
    sweepMs: number,
  ) {
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  static async open(options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    const store = new EmbeddedStore(undefined, options.sweepMs ?? 100);
    if (options.dataDir !== undefined) {
      const { journal, records, recovery } = await Journal.open(options.dataDir, () => store.persisted(), options);
      store.journal = journal;
      if (records.size > 0) {
        const ttl = options.restartGraceMs ?? 30_000;
        const lease: Lease = { ttlMs: ttl, pinned: false, expiresAt: Date.now() + ttl, names: new Set() };
        store.leases.set(RESTART_LEASE, lease);
        for (const r of records.values()) {
          const rec: StoredRecord = { ...r, lease: RESTART_LEASE };
          store.names.set(r.name, rec);
          lease.names.add(r.name);
        }
      }
      store.recovery = { ...recovery, recovered: records.size };
    }
    return store;
  }

  /** The journal, if any (tests and stats). */
  get journalInfo(): { generation: number; size: number; compactions: number } | undefined {
    const j = this.journal;
    return j === undefined ? undefined : { generation: j.generation, size: j.size, compactions: j.compactions };
  }

  private *persisted(): Iterable<PersistedRecord> {
    for (const r of this.names.values()) yield persistable(r);
  }

  private check(): void {
    if (this.closed) throw new SwitchboardError('ECLOSED', 'the name store is closed');
  }

  async grantLease(ttlMs: number, pinned: boolean): Promise<LeaseId> {
    this.check();
    const id = `L${this.nextLease++}`;
    this.leases.set(id, { ttlMs, pinned, expiresAt: Date.now() + ttlMs, names: new Set() });
    return id;
  }

  async unpinLease(lease: LeaseId): Promise<void> {
    const l = this.leases.get(lease);
    if (l === undefined) return;
    l.pinned = false;
    l.expiresAt = Date.now() + l.ttlMs;
    if (l.names.size === 0) this.leases.delete(lease);
  }

  async keepAlive(lease: LeaseId): Promise<boolean> {
    const l = this.leases.get(lease);
    if (l === undefined) return false;
    l.expiresAt = Date.now() + l.ttlMs;
    return true;
  }

  async revokeLease(lease: LeaseId): Promise<void> {
    const l = this.leases.get(lease);
    if (l === undefined) return;
    this.leases.delete(lease);
    const gone: Promise<void>[] = [];
    for (const name of l.names) {
      const rec = this.names.get(name);
      if (rec === undefined || rec.lease !== lease) continue;
      this.names.delete(name);
      gone.push(this.write({ op: 'del', name }));
      this.emit({ type: 'expired', record: toPublic(rec, undefined) });
    }
    await Promise.all(gone);
  }

  leaseExpiresAt(lease: LeaseId): number | undefined {
    const l = this.leases.get(lease);
    return l === undefined || l.pinned ? undefined : l.expiresAt;
  }

  async register(input: RegisterInput): Promise<RegisterResult> {
    this.check();
    const lease = this.leases.get(input.lease);
    if (lease === undefined) throw new SwitchboardError('ENOENT', `lease ${input.lease} has ended`);
    const existing = this.names.get(input.name);
    const result = decideRegister(existing, input);
    // Apply in memory at once (so the next request sees it), ack after the fsync.
    if (existing !== undefined) this.detach(existing);
    this.names.set(input.name, result.record);
    lease.names.add(input.name);
    const durable = this.write({ op: 'put', rec: persistable(result.record) });
    if (result.event !== undefined) this.emit({ type: result.event, record: this.publicRecord(result.record) });
    await durable;
    return result;
  }

  async unregister(name: string, tokenHash: string | undefined): Promise<StoredRecord> {
    this.check();
    const rec = this.names.get(name);
    if (rec === undefined) throw new NameNotFoundError(name);
    checkOwner(rec, tokenHash);
    this.names.delete(name);
    this.detach(rec);
    const durable = this.write({ op: 'del', name });
    this.emit({ type: 'removed', record: toPublic(rec, undefined) });
    await durable;
    return rec;
  }

  async get(name: string): Promise<StoredRecord | undefined> {
    return this.names.get(name);
  }

  /** get() without a promise, for the daemon's lookup fast path. */
  peek(name: string): StoredRecord | undefined {
    return this.names.get(name);
  }

  async list(prefix: string): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    for (const r of this.names.values()) if (r.name.startsWith(prefix)) out.push(r);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  subscribe(listener: (ev: WatchEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Names currently held (for stats). */
  get size(): number {
    return this.names.size;
  }

  /** Compact the journal now (tests). */
  async compact(): Promise<void> {
    await this.journal?.compactNow();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    await this.journal?.close();
    this.listeners.clear();
  }

  private publicRecord(r: StoredRecord) {
    return toPublic(r, this.leaseExpiresAt(r.lease));
  }

  private detach(rec: StoredRecord): void {
    const l = this.leases.get(rec.lease);
    if (l === undefined) return;
    l.names.delete(rec.name);
    if (l.names.size === 0 && !l.pinned && rec.lease === RESTART_LEASE) this.leases.delete(rec.lease);
  }

  private write(op: Parameters<Journal['append']>[0]): Promise<void> {
    return this.journal === undefined ? Promise.resolve() : this.journal.append(op);
  }

  private emit(ev: WatchEvent): void {
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch {
        // A listener's failure is its own; the store goes on.
      }
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, l] of this.leases) {
      if (!l.pinned && l.expiresAt <= now) void this.revokeLease(id).catch(() => undefined);
    }
  }
}

function persistable(r: StoredRecord): PersistedRecord {
  const p: PersistedRecord = { name: r.name, contact: r.contact, owner: r.owner, since: r.since, tokenHash: r.tokenHash };
  if (r.ttlMs !== undefined) p.ttlMs = r.ttlMs;
  return p;
}
