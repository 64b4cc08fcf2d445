/**
 * The values the name service deals in: what a process registers (contact
 * information), what others get back (a record), and what watchers see.
 */

/** How to reach whoever registered a name. */
export interface ContactInfo {
  /** An address as formatAddress prints it: 'tcp://127.0.0.1:5000', 'unix:///path', 'shm:name', ... */
  address: string;
  /** The protocol spoken there: 'switchboard-rpc', 'oncrpc', 'giop', 'mp', ... */
  protocol: string;
  /** ONC RPC program number, where the protocol has one. */
  program?: number;
  /** Protocol or program version. */
  version?: number;
  /** Free, small key/value metadata (size-limited by the server). */
  metadata?: Record<string, string>;
}

/** Who holds a name (never the token itself). */
export interface NameOwner {
  pid?: number;
  uid?: number;
  /** The client's self-chosen description, e.g. 'printer-daemon'. */
  client: string;
}

export interface NameRecord {
  name: string;
  contact: ContactInfo;
  owner: NameOwner;
  /** When the current owner registered it, ms since the epoch. */
  since: number;
  /** When the lease ends unless renewed; absent while it is held by a live connection. */
  leaseExpiresAt?: number;
}

export type WatchEventType = 'registered' | 'replaced' | 'removed' | 'expired';

export interface WatchEvent {
  type: WatchEventType;
  record: NameRecord;
}
