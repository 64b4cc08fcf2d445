/**
 * The small interface every transport under a communicator implements: send
 * one message to a rank, deliver messages from any rank, report ranks that are
 * gone. Worker MessagePorts, Unix and TCP sockets and shared-memory rings
 * each plug in behind it; the matching engine and the collectives never know
 * which one carries their bytes.
 */
import type { PeerLostError } from './errors.js';

/** One message as the links carry it. Ranks here are world ranks. */
export interface Envelope {
  /** Communicator context id (even: point to point, odd: collectives). */
  ctx: number;
  tag: number;
  /** Payload kind (payload.ts), or KIND_BYE for the orderly goodbye. */
  kind: number;
  dtype: number;
  bytes: Uint8Array;
  /**
   * The sending world rank, set by the engine when the message arrives;
   * links make incoming envelopes with it (-1), so setting it does not
   * change the object's shape (one hidden class for every message).
   */
  src?: number;
}

/** Sent by a rank closing its communicator in order, so peers can tell finalize from death. */
export const KIND_BYE = 255;

export interface LinkHandlers {
  /**
   * A whole message from `from`. True when a receive took it (a posted one,
   * or the one spinning for it in Engine.spinFor): a polling link may stop
   * reading there.
   */
  message(from: number, env: Envelope): boolean;
  /** The rank is unreachable from now on (died, or said goodbye). */
  lost(rank: number, err: PeerLostError): void;
  /**
   * A message of `total` bytes starts arriving from `from`: a buffer to
   * reassemble it into (the posted receive it matches), or undefined. The
   * link then delivers a view of that buffer's first `total` bytes. If the
   * receive gives up first, the engine calls `detach`, after which the link
   * must stop writing into the buffer (it moves what it has elsewhere).
   */
  place?(from: number, ctx: number, tag: number, kind: number, total: number, detach: () => void): Uint8Array | undefined;
  /**
   * A message of `total` bytes arrives whole in one frame now: a buffer to
   * copy it into (the buffer of the receive that will take it), or
   * undefined. The link delivers a view of its first `total` bytes.
   */
  placeSmall?(from: number, ctx: number, tag: number, kind: number, total: number): Uint8Array | undefined;
}

/**
 * How a blocking send waits for room: progress() after each piece that went
 * out, wait() when nothing did (it takes incoming messages meanwhile; false:
 * give up now). The links' own spin budget and the engine's blocking sends
 * (a deadline) implement it.
 */
export interface WriteWait {
  progress(): void;
  wait(): boolean;
  /** True once wait() has said false (the deadline passed). */
  readonly expired?: boolean;
}

export interface Link {
  /** 'port' | 'unix' | 'tcp' | 'ring' | ... : what carries the bytes, for descriptions and benchmarks. */
  readonly kind: string;
  readonly rank: number;
  readonly size: number;
  /**
   * Largest single message the link carries whole; larger ones are
   * fragmented by the link itself (Infinity where the transport has no limit).
   */
  readonly maxFragment: number;
  /**
   * Send one message. `owned` says the link may take the bytes' buffer (transfer
   * it to another thread); otherwise it must copy or finish with them before
   * the returned promise settles. Messages to one rank arrive in send order.
   */
  send(to: number, env: Envelope, owned: boolean): Promise<void> | void;
  /**
   * Polling progress (optional): take whatever has arrived, without waiting,
   * and deliver it through the handlers before returning. True if anything
   * was delivered. Links that can look cheaply (rings, a socket read
   * directly) let a waiting receive spin the way MPI's progress engine does,
   * instead of paying an event-loop wake-up per message. It may stop at a
   * message a receive took (what follows stays in the transport, in order,
   * for the next poll): to take everything there now, call it until false.
   */
  poll?(): boolean;
  /**
   * With poll(): true when a write of ours may sit in a transport buffer
   * until the next process tick (a corked socket); the engine lets ticks run
   * once before it spins, so that write goes out first. Reading it clears it.
   */
  takeTickDebt?(): boolean;
  /** With poll(): the engine's spin budget in microseconds (0: yield), for links that also spin when sending. */
  spinUs?: number;
  /**
   * Blocking send (optional, with poll()): the message is written before
   * this returns, `wait` being called whenever the transport has no room.
   * Throws TimeoutError when `wait` gives up, EBUSY when an asynchronous send
   * to the same rank is still queued, EUNSUPPORTED when this peer's transport
   * cannot be written synchronously.
   */
  sendSync?(to: number, env: Envelope, wait: WriteWait): void;
  /**
   * With poll(), for a blocking receive from one rank: block this thread
   * until that rank's transport may hold something (a message, its end, an
   * error), for at most `ms`, waiting as the transport waits best (a ring
   * spins in C, then sleeps on a futex). False when nothing came; undefined
   * when this peer cannot be waited on this way (the caller polls instead).
   */
  waitReadable?(from: number, ms: number): boolean | undefined;
  /**
   * With poll(), for a receive spinning for one rank's message: spin on that
   * rank's transport alone for at most `ns` nanoseconds (a ring spins in C,
   * never sleeps) and deliver what came, as poll() would. True when
   * something came; false when nothing did; undefined when this peer cannot
   * be spun on (the caller polls instead).
   */
  spinReadable?(from: number, ns: number): boolean | undefined;
  /** With poll(), for receives that never wait in the event loop: look for dead peers now (cheap when not due). */
  checkPeers?(): void;
  /** Begin delivering; called once by the engine. */
  start(handlers: LinkHandlers): void;
  /** Keep the process alive (true) while operations are pending, or let it exit (false). */
  setActive(active: boolean): void;
  /** Flush what was sent and release every connection. */
  close(): Promise<void>;
}
