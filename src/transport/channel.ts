/**
 * The one interface every kind of channel implements (seed 12.2.3): pipes,
 * socketpairs, FIFOs, TCP, Unix sockets, UDP, and later shared-memory rings
 * and worker ports. A Channel moves bytes and knows no protocol.
 *
 * Semantics, the same for every kind:
 * - read() waits while nothing is buffered, returns the next chunk, and
 *   returns null once every writer has closed (EOF). Byte streams return
 *   chunks of any size; message channels (`messages === true`: UDP, framed
 *   channels, rings) return exactly one message per read.
 * - write() resolves when the channel has accepted the data. A writer faster
 *   than the reader is held back: the promise stays pending until there is
 *   room, so memory stays bounded.
 * - Writing where no reader is left rejects with a typed EPIPE error; the
 *   process never dies of SIGPIPE and no 'error' event goes unhandled.
 * - Reads pull: data waits in a bounded buffer until read() asks for it; a
 *   reader that never reads stops the sender, not the process.
 */

export type ChannelKind =
  | 'pipe'
  | 'socketpair'
  | 'fifo'
  | 'tcp'
  | 'unix'
  | 'udp'
  | 'framed'
  | 'ring'
  | 'port';

/** What is known about the process at the other end. */
export interface PeerInfo {
  /** Process id, from SO_PEERCRED on Unix sockets and socketpairs, or given at spawn for pipes. */
  pid?: number;
  uid?: number;
  gid?: number;
}

export interface Channel extends AsyncIterable<Uint8Array> {
  readonly kind: ChannelKind;
  /** True when every read() returns exactly one message written by one write(). */
  readonly messages: boolean;
  /** A human-readable description, e.g. `tcp 127.0.0.1:5000 -> 127.0.0.1:43210`. */
  readonly description: string;
  /** Peer process credentials where the OS can tell them. */
  readonly peer: PeerInfo;

  /** Next chunk (or message); waits while empty; null at EOF. */
  read(): Promise<Uint8Array | null>;
  /**
   * The next buffered chunk without waiting: a chunk, null at EOF, or
   * undefined when nothing is buffered yet. Throws the channel's error.
   */
  tryRead(): Uint8Array | null | undefined;
  /** True when read() would not wait (data buffered, EOF or an error). */
  readonly readReady: boolean;
  /**
   * Call `listener` once, as soon as read() would not wait (at once if it would
   * not wait now). Returns a function that cancels the subscription.
   */
  onReadReady(listener: () => void): () => void;

  /** Write one chunk (or message). Resolves when accepted; rejects EPIPE/ECLOSED/EMSGSIZE. */
  write(data: Uint8Array): Promise<void>;
  /** Write several chunks as one system call where the channel can. */
  writev(chunks: readonly Uint8Array[]): Promise<void>;
  /** Signal EOF to the reader (half close); reading may go on. */
  end(): Promise<void>;
  /** Close both directions, after flushing what was written. Idempotent. */
  close(): Promise<void>;
  /** Close at once, dropping unsent data; pending reads and writes reject with `err` or ECLOSED. */
  destroy(err?: Error): void;
  /** Resolves when the channel is fully closed (never rejects). */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
}

/** A channel that carries whole messages with their sender (a bound UDP socket). */
export interface DatagramEndpoint {
  readonly address: { host: string; port: number; family: 'IPv4' | 'IPv6' };
  receive(): Promise<{ data: Uint8Array; from: { host: string; port: number } } | null>;
  send(data: Uint8Array, to: { host: string; port: number }): Promise<void>;
  close(): Promise<void>;
  /** Datagrams dropped because the receive queue was full (bounded memory). */
  readonly dropped: number;
  /** The socket's descriptor, where it can be read directly (undefined once closed). */
  readonly fd?: number | undefined;
}
