/**
 * The duplicate request cache for datagram transports: a retransmitted call
 * is recognised by (client address, xid, program, version, procedure,
 * checksum of the first arguments bytes), as Linux nfsd does, so that a
 * non-idempotent procedure runs at most once. While the first copy is still
 * running, retransmissions are dropped; afterwards they get the saved reply.
 * Bounded: the oldest entries go first.
 */

export type CacheEntry = { state: 'running' } | { state: 'done'; reply: Uint8Array | undefined };

/** FNV-1a over at most the first 256 bytes, mixed with the length. */
export function argsChecksum(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 ^ (end - start);
  const stop = Math.min(end, start + 256);
  for (let i = start; i < stop; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class DuplicateRequestCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly maxEntries: number;
  hits = 0;

  constructor(maxEntries = 1024) {
    this.maxEntries = maxEntries;
  }

  static key(client: string, xid: number, prog: number, vers: number, proc: number, checksum: number): string {
    return `${client}|${xid}|${prog}|${vers}|${proc}|${checksum}`;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry for a request seen before, or undefined (and it is now marked running). */
  begin(key: string): CacheEntry | undefined {
    const e = this.#entries.get(key);
    if (e !== undefined) {
      this.hits++;
      return e;
    }
    this.#entries.set(key, { state: 'running' });
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return undefined;
  }

  finish(key: string, reply: Uint8Array | undefined): void {
    if (this.#entries.has(key)) this.#entries.set(key, { state: 'done', reply });
  }

  /** Forget a request whose procedure failed before producing a reply worth keeping. */
  forget(key: string): void {
    this.#entries.delete(key);
  }
}
