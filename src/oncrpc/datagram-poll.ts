/**
 * The polled path for a connected UDP channel: the client takes a reply
 * datagram straight from the socket's descriptor (sb_fd recvDatagram) while
 * a call waits, as RecordStream.poll does on streams, instead of waiting for
 * the event loop's turn. One datagram per read; a datagram longer than the
 * largest reply accepted is reported as cut (its head, to name the call it
 * answers), never delivered short. Datagrams taken here never reach the
 * channel's read(), and the ones libuv takes first still arrive there: each
 * datagram comes one way or the other, once.
 */
import { MAX_UDP_PAYLOAD, type Channel } from '../transport/index.js';
import { SOCKADDR_BYTES, peerName, recvDatagram, recvFrom, sendTo, sockaddrOf, waitReadable, writeNonblock } from '../transport/fd.js';
import { errnoError } from './record-stream.js';

/** -EAGAIN from recvDatagram: no datagram queued. */
const EAGAIN = -11;
/** Largest UDP payload (IPv6, no jumbograms): 65535 - 8. */
export const MAX_DATAGRAM = 65527;

export class DatagramPoll {
  readonly #ch: Channel;
  readonly #fd: number;
  readonly #buf: Uint8Array;
  readonly #onDatagram: (datagram: Uint8Array) => void;
  readonly #onCut: (head: Uint8Array) => void;
  readonly #onError: (err: Error) => void;

  /**
   * `fd` is the channel's socket. `maxSize` (at most MAX_DATAGRAM is
   * useful) is the longest datagram delivered whole: `onDatagram` gets each
   * such datagram (its own copy, which may be kept), `onCut` the first
   * maxSize bytes of a longer one (a view, read it at once), `onError` a
   * receive error (an ICMP refusal, for one), which ends nothing by itself.
   */
  constructor(channel: Channel, fd: number, maxSize: number, onDatagram: (datagram: Uint8Array) => void, onCut: (head: Uint8Array) => void, onError: (err: Error) => void) {
    this.#ch = channel;
    this.#fd = fd;
    this.#buf = new Uint8Array(Math.max(1, Math.min(maxSize, MAX_DATAGRAM)));
    this.#onDatagram = onDatagram;
    this.#onCut = onCut;
    this.#onError = onError;
  }

  get pollable(): boolean {
    return !this.#ch.isClosed;
  }

  /** Take one datagram if one is queued: true when something came (a datagram, a cut one, an error). */
  poll(): boolean {
    if (this.#ch.isClosed) return false;
    const buf = this.#buf;
    const n = recvDatagram(this.#fd, buf);
    if (n === EAGAIN) return false;
    if (n < 0) this.#onError(errnoError(n, this.#ch.description));
    else if (n > buf.length) this.#onCut(buf);
    else this.#onDatagram(buf.slice(0, n));
    return true;
  }

  /**
   * Send one datagram straight from the descriptor (one system call, none of
   * the dgram machinery): true when it went out, or failed and `onError` got
   * the error (an ICMP refusal reported on send, as on receive); false when
   * the socket buffer is full (or the channel closed): then send it the
   * ordinary way.
   */
  send(datagram: Uint8Array): boolean {
    if (this.#ch.isClosed) return false;
    const n = writeNonblock(this.#fd, datagram);
    if (n === EAGAIN) return false;
    if (n < 0) this.#onError(errnoError(n, this.#ch.description, 'send'));
    return true;
  }

  /** Sleep until a datagram is queued or `us` microseconds pass. */
  readonly wait = (us: number): void => {
    if (!this.#ch.isClosed) waitReadable(this.#fd, us);
  };
}

/** What a server does with one call datagram: the reply now, later, or none. */
export type DatagramHandler = (datagram: Uint8Array, peer: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;

/**
 * The server's polled path on an unconnected UDP endpoint: right after a
 * reply, the server looks for the next call straight on the socket
 * (recvFrom) and answers it with one sendto, as it polls its stream
 * connections (RecordStream.poll), instead of waiting for the event loop's
 * turn. The sender is named as the dgram module names it, so the duplicate
 * request cache sees a retransmission the same whichever path took it. Each
 * datagram arrives one way or the other, once.
 */
export class DatagramServerPoll {
  readonly #fd: number;
  readonly #buf = new Uint8Array(MAX_DATAGRAM + 1);
  readonly #from = new Uint8Array(SOCKADDR_BYTES);
  readonly #to = new Uint8Array(SOCKADDR_BYTES);
  #toHost = '';
  #toPort = -1;
  readonly #handle: DatagramHandler;
  readonly #fallback: (reply: Uint8Array, peer: string) => void;
  #open = true;
  #taken = 0;

  /** `fallback` sends a reply the ordinary way (the socket buffer was full, or it came later). */
  constructor(fd: number, handle: DatagramHandler, fallback: (reply: Uint8Array, peer: string) => void) {
    this.#fd = fd;
    this.#handle = handle;
    this.#fallback = fallback;
  }

  get pollable(): boolean {
    return this.#open;
  }

  /** Call datagrams taken on this path so far. */
  get taken(): number {
    return this.#taken;
  }

  /** The endpoint is closing: never touch its descriptor again (the number may be reused). */
  stop(): void {
    this.#open = false;
  }

  /**
   * Send a reply to a call the event loop took, at once with one sendto (the
   * dgram module would send it only on a later tick, after a spin that waits
   * for the next call): false when that cannot be done now.
   */
  sendNow(reply: Uint8Array, to: { host: string; port: number }): boolean {
    if (!this.#open || reply.length > MAX_UDP_PAYLOAD) return false;
    // One client usually calls again and again: its address is converted once.
    if (to.host !== this.#toHost || to.port !== this.#toPort) {
      if (sockaddrOf(to.host, to.port, this.#to) !== 0) return false;
      this.#toHost = to.host;
      this.#toPort = to.port;
    }
    return sendTo(this.#fd, reply, this.#to) === reply.length;
  }

  /** Take and answer one call datagram if one is queued: true when something came. */
  poll(): boolean {
    if (!this.#open) return false;
    const buf = this.#buf;
    const n = recvFrom(this.#fd, buf, this.#from);
    if (n === EAGAIN) return false;
    // A receive error (an ICMP report about an earlier reply) or a datagram longer than any UDP
    // payload: dropped, as the event-loop path drops them.
    if (n < 0 || n > MAX_DATAGRAM) return true;
    this.#taken++;
    const peer = peerName(this.#from);
    // The call's arguments may be kept as views (opaque data): the datagram gets its own bytes.
    const out = this.#handle(buf.slice(0, n), peer);
    if (out instanceof Promise) {
      out.then((reply) => {
        if (reply !== undefined && this.#open) this.#fallback(reply, peer);
      }, ignore);
    } else if (out !== undefined) {
      // Too long for an IPv4 datagram, or not sent now: the ordinary path (which also turns an
      // oversized reply into an error reply).
      if (out.length > MAX_UDP_PAYLOAD || sendTo(this.#fd, out, this.#from) !== out.length) this.#fallback(out, peer);
    }
    return true;
  }
}

function ignore(): void {}
