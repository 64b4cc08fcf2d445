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
import type { Channel } from '../transport/index.js';
import { recvDatagram, waitReadable, writeNonblock } from '../transport/fd.js';
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
    if (n < 0) this.#onError(errnoError(n, this.#ch.description));
    return true;
  }

  /** Sleep until a datagram is queued or `us` microseconds pass. */
  readonly wait = (us: number): void => {
    if (!this.#ch.isClosed) waitReadable(this.#fd, us);
  };
}
