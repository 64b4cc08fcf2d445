/**
 * The one interface both stores implement: the embedded store (a map and a
 * write-ahead journal, one machine) and the etcd store (many machines).
 *
 * Liveness is modelled on etcd leases. A lease has a TTL; names attached to it
 * disappear ('expired') when it runs out. A pinned lease does not count down:
 * the daemon pins the lease of each live client connection, and unpins it when
 * the connection closes, so the names go after the grace period. In etcd a pin
 * is a keep-alive sent by this daemon, so if the daemon itself dies the names
 * still go (or survive, if their owner reconnects elsewhere in time).
 */
import { NameTakenError, NotOwnerError } from '../name-errors.js';
import type { ContactInfo, NameOwner, NameRecord, WatchEvent } from '../types.js';

export type LeaseId = string;

/** What a store keeps per name. The owner token itself is never stored, only its hash. */
export interface StoredRecord {
  name: string;
  contact: ContactInfo;
  owner: NameOwner;
  since: number;
  tokenHash: string;
  lease: LeaseId;
  /** Set for names registered with a TTL (renewed by their owner); absent for connection-bound names. */
  ttlMs?: number;
}

/**
 * How to register: 'new' fails with ENAMETAKEN if the name is held;
 * 'reclaim' re-attaches a name to its owner (same token) or registers it again
 * if it has gone; 'replace' takes a name over from the holder of `expectTokenHash`.
 */
export type RegisterMode = 'new' | 'reclaim' | 'replace';

export interface RegisterInput {
  name: string;
  contact: ContactInfo;
  owner: NameOwner;
  lease: LeaseId;
  ttlMs?: number | undefined;
  /** Hash of the token the record will carry. */
  tokenHash: string;
  mode: RegisterMode;
  /** For 'replace': the hash of the token the current holder must have. */
  expectTokenHash?: string | undefined;
  now: number;
}

export interface RegisterResult {
  record: StoredRecord;
  /** What watchers are told; undefined when nothing they can see changed (a reclaim). */
  event: 'registered' | 'replaced' | undefined;
}

export interface NameStore {
  readonly kind: 'embedded' | 'etcd';
  grantLease(ttlMs: number, pinned: boolean): Promise<LeaseId>;
  /** Start the countdown of a pinned lease. */
  unpinLease(lease: LeaseId): Promise<void>;
  /** Restart the countdown; false if the lease has already gone. */
  keepAlive(lease: LeaseId): Promise<boolean>;
  /** End a lease now: its names go, as 'expired'. */
  revokeLease(lease: LeaseId): Promise<void>;
  register(input: RegisterInput): Promise<RegisterResult>;
  /** Remove a name ('removed'); checks the token hash unless it is undefined. */
  unregister(name: string, tokenHash: string | undefined): Promise<StoredRecord>;
  get(name: string): Promise<StoredRecord | undefined>;
  list(prefix: string): Promise<StoredRecord[]>;
  /** When the lease of a record ends, if it counts down; undefined while pinned or unknown. */
  leaseExpiresAt(lease: LeaseId): number | undefined;
  /** Every change to every name. Returns an unsubscribe function. */
  subscribe(listener: (ev: WatchEvent) => void): () => void;
  close(): Promise<void>;
}

function sameContact(a: ContactInfo, b: ContactInfo): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The ownership rules, shared by the stores: pure, throws ENAMETAKEN / ENOTOWNER. */
export function decideRegister(existing: StoredRecord | undefined, input: RegisterInput): RegisterResult {
  const record: StoredRecord = {
    name: input.name,
    contact: input.contact,
    owner: input.owner,
    since: input.now,
    tokenHash: input.tokenHash,
    lease: input.lease,
  };
  if (input.ttlMs !== undefined) record.ttlMs = input.ttlMs;
  if (existing === undefined) return { record, event: 'registered' };
  switch (input.mode) {
    case 'new':
      throw new NameTakenError(existing.name, existing.owner, existing.since);
    case 'reclaim':
      if (existing.tokenHash !== input.tokenHash) throw new NameTakenError(existing.name, existing.owner, existing.since);
      record.since = existing.since;
      return { record, event: sameContact(existing.contact, input.contact) ? undefined : 'replaced' };
    case 'replace':
      if (input.expectTokenHash === undefined || existing.tokenHash !== input.expectTokenHash) {
        throw new NotOwnerError(existing.name, `cannot replace "${existing.name}": the token does not match its owner's`);
      }
      return { record, event: 'replaced' };
  }
}

export function checkOwner(rec: StoredRecord, tokenHash: string | undefined): void {
  if (tokenHash !== undefined && rec.tokenHash !== tokenHash) throw new NotOwnerError(rec.name);
}

export function toPublic(rec: StoredRecord, leaseExpiresAt: number | undefined): NameRecord {
  const out: NameRecord = { name: rec.name, contact: rec.contact, owner: rec.owner, since: rec.since };
  if (leaseExpiresAt !== undefined) out.leaseExpiresAt = leaseExpiresAt;
  return out;
}
