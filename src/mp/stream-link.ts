/**
 * Ranks as processes: one Channel per peer. Byte streams (Unix sockets on
 * one host, TCP across hosts) carry length-prefixed frames (frame.ts), and
 * messages above the fragment size are split and reassembled. Message
 * channels (shared-memory rings, `messages === true`) carry one frame per
 * message and do their own fragmenting. A connection that ends without the
 * peer's goodbye marks the peer lost, which fails everything waiting on it.
 */
import { performance } from 'node:perf_hooks';
import { LengthPrefixDecoder } from '../wire/length-prefix.js';
import { readNonblock } from '../transport/fd.js';
import { copyBytes } from '../shm/native.js';
import { RELAX_EVERY, relax } from './relax.js';
import { isDirectWritable, type DirectWritable } from '../transport/socket-channel.js';
import type { Channel } from '../transport/index.js';
import { ArgumentError, SwitchboardError, TimeoutError } from '../errors.js';
import { PeerLostError } from './errors.js';
import { FIRST_HEADER, FRAME_MORE, MORE_HEADER, RING_PAD, Reassembler, putU32, u32, writeEnvelopeHeader, writeMoreHeader, type FirstHeader } from './frame.js';
import type { Envelope, Link, LinkHandlers, WriteWait } from './link.js';

export const DEFAULT_FRAGMENT = 1024 * 1024;

export interface PeerStream {
  channel: Channel;
  /**
   * Byte streams: the decoder that read the HELLO frame, with whatever
   * followed it still buffered. Absent for message channels.
   */
  decoder?: LengthPrefixDecoder | undefined;
}

export interface StreamLinkOptions {
  maxMessageSize: number;
  fragmentSize?: number | undefined;
  /**
   * Largest message a ring takes whole in one synchronous write (a quarter of
   * its capacity, less the record header); bigger ones go the queued way.
   */
  ringRecordLimit?: number | undefined;
  /** Runs after every connection is closed (the listener that accepted them, for instance). */
  onClose?: (() => Promise<void>) | undefined;
}

export function newDecoder(fragmentSize = DEFAULT_FRAGMENT): LengthPrefixDecoder {
  return new LengthPrefixDecoder(fragmentSize + FIRST_HEADER + 64);
}


/** Socket frames at least this long are read into place as they arrive (Reassembler.beginFrame). */
const STREAM_MIN = 32 * 1024;

/** Size of the reused frame buffer for small messages sent with one system call (polling progress). */
const SEND_SCRATCH = 4096;

/**
 * Ring messages up to this size (frame included) are written from, and read
 * into, one reused buffer per link: one native call each (src/shm bound
 * calls). Bigger ones are gathered into the ring and read in place.
 */
const RING_SCRATCH = 2048;

/** Small copies stay in JS (a native call costs more than they do); big ones use memmove. */
function copyShared(target: Uint8Array, targetOffset: number, source: Uint8Array, sourceOffset: number, length: number): void {
  if (length < 2048) target.set(source.subarray(sourceOffset, sourceOffset + length), targetOffset);
  else copyBytes(target, targetOffset, source, sourceOffset, length);
}

/** -EAGAIN from readNonblock: nothing there yet. */
const EAGAIN = -11;

interface Reader {
  drain(direct: boolean): boolean;
  pump(): void;
  /** Rings: spin in C up to `ns` for a message and deliver it (see StreamLink.spinReadable). */
  spinOne?: ((ns: number) => boolean) | undefined;
  /** Rings: wait up to `ms` on this thread for a message and deliver it (see StreamLink.waitReadable). */
  waitOne?: ((ms: number) => boolean) | undefined;
}

/** What a ring Channel lends for reading without a copy (src/shm RingChannel's consumer). */
interface RingConsumerLike {
  /**
   * The next message copied into `target`, waiting on this thread (spinning in C, then on a
   * futex) for at most `timeoutMs`: its length, null at the end; TimeoutError, or EMSGSIZE with
   * the message kept when it does not fit (src/shm RingConsumer).
   */
  readIntoSync?(target: Uint8Array, options: { timeoutMs?: number | undefined }): number | null;
  /** Each message as `bytes[offset .. offset + length)`, valid only during the call; no view is made. */
  consumeRaw(fn: (bytes: Uint8Array, offset: number, length: number) => void, max?: number): number;
  /** One message copied into `target` if it fits: its length, -1 = none, -2 = use consumeRaw (src/shm RingConsumer). */
  tryReadSmall?(target: Uint8Array): number;
  /** tryReadSmall(), spinning in C for up to `budgetNs` while the ring is empty (src/shm RingConsumer). */
  tryReadSmallSpin?(target: Uint8Array, budgetNs: number): number;
}

/** What a ring Channel offers for a synchronous write (src/shm RingChannel's producer). */
interface SyncRingWriter {
  tryWrite(data: Uint8Array): boolean;
  /** One message made of head then body, copied straight into the ring. */
  tryWriteParts(head: Uint8Array, body: Uint8Array): boolean;
  /** One message: the first `length` bytes of a reused buffer (one native call once it is bound). */
  tryWriteFrom?(buf: Uint8Array, length: number): boolean;
}

/**
 * The spin budget of a synchronous write into a full ring or socket: it
 * counts only time without progress (a receiver that drains keeps the writer
 * going). While waiting, the link takes its own incoming messages (the peer
 * may be writing to us at the same time) and yields the CPU now and then.
 */
class StallBudget implements WriteWait {
  private readonly link: { poll(): boolean };
  private readonly ms: number;
  private end: number;
  private spins = 0;

  constructor(link: { poll(): boolean }, us: number) {
    this.link = link;
    this.ms = us / 1000;
    this.end = performance.now() + this.ms;
  }

  /** Something went out: the budget starts again. */
  progress(): void {
    if (this.spins > 0) this.end = performance.now() + this.ms;
    this.spins = 0;
  }

  /** Nothing went out: poll once; false when the budget is spent. */
  wait(): boolean {
    this.link.poll();
    if ((++this.spins & 15) === 0) {
      if (performance.now() >= this.end) return false;
      if ((this.spins & (RELAX_EVERY - 1)) === 0) relax();
    }
    return true;
  }
}

/** A blocking send behind a queued asynchronous one (it would overtake it). */
function busyError(to: number): SwitchboardError {
  return new SwitchboardError('EBUSY', `an earlier asynchronous send to rank ${to} is still queued; wait for it before a blocking send`);
}

/** A blocking send that gave up after `sent` payload bytes (undefined: some). */
function lateError(to: number, total: number, sent: number | undefined): TimeoutError {
  return new TimeoutError(
    sent === 0
      ? `rank ${to} took nothing of a ${total}-byte message in time`
      : `rank ${to} took ${sent === undefined ? 'part' : `${sent}`} of ${total} bytes in time; the rest is queued and follows as the event loop runs`,
  );
}

export class StreamLink implements Link {
  readonly kind: string;
  readonly rank: number;
  readonly size: number;
  readonly maxFragment: number;
  private readonly peers: readonly (PeerStream | null)[];
  private readonly max: number;
  private closing = false;
  /** Message channels: the last pending write per peer, to queue the next one behind it. */
  private readonly tails: (Promise<void> | undefined)[] = [];
  private readonly onClose: (() => Promise<void>) | undefined;
  private readers: (Reader | null)[] = [];
  /** Per peer: the ring's producer when the channel is a shared-memory ring pair. */
  private readonly ringWriters: (SyncRingWriter | undefined)[];
  /** Reused ring frame headers (padding + FIRST, padding + MORE); tryWriteParts copies them into the ring. */
  private readonly ringHead = new Uint8Array(RING_PAD + FIRST_HEADER);
  private readonly ringMoreHead = new Uint8Array(RING_PAD + MORE_HEADER);
  private readonly ringRecord: number;
  /** Polling progress budget (us), set by the engine: big ring messages are then written synchronously. */
  spinUs = 0;
  /** A socket write since the last spin: it may be corked until the next tick. */
  private tickDebt = false;
  /** During poll(): a ring reader stopped at the message the engine handed to a spinning receive. */
  private handed = false;
  /** Small frames are built here and written at once (never handed to a channel to keep). */
  private readonly sendScratch = new Uint8Array(SEND_SCRATCH);
  /** The view of sendScratch used last (one frame size repeats, as in a ping-pong). */
  private sendFrame: Uint8Array | undefined;
  /** Small ring messages are framed here (see RING_SCRATCH). */
  private readonly ringScratch = new Uint8Array(RING_SCRATCH);

  constructor(rank: number, peers: readonly (PeerStream | null)[], options: StreamLinkOptions) {
    this.rank = rank;
    this.size = peers.length;
    this.peers = peers;
    this.max = options.maxMessageSize;
    this.maxFragment = options.fragmentSize ?? DEFAULT_FRAGMENT;
    this.onClose = options.onClose;
    this.ringRecord = options.ringRecordLimit ?? 0;
    const kinds = new Set(peers.filter((p) => p !== null).map((p) => p.channel.kind));
    this.ringWriters = peers.map((p) => (p === null ? undefined : (p.channel as { producer?: SyncRingWriter }).producer));
    this.kind = kinds.size === 1 ? [...kinds][0]! : kinds.size === 0 ? 'self' : [...kinds].join('+');
  }

  start(h: LinkHandlers): void {
    this.readers = this.peers.map((p, j) => (p === null ? null : this.reader(j, p, h)));
    for (const r of this.readers) r?.pump();
  }

  takeTickDebt(): boolean {
    const d = this.tickDebt;
    this.tickDebt = false;
    return d;
  }

  /**
   * Take what every connection holds now, without waiting (polling
   * progress). Byte streams are also read straight from their descriptor, so
   * a reply is seen the moment the kernel has it, not after an epoll turn.
   */
  poll(): boolean {
    let got = false;
    const rs = this.readers;
    this.handed = false;
    for (let j = 0; j < rs.length; j++) {
      const r = rs[j];
      if (r !== null && r !== undefined && r.drain(true)) {
        got = true;
        // (the spinning receive has its message: the other connections keep theirs until the next poll)
        if (this.handed) break;
      }
    }
    this.handed = false;
    return got;
  }

  /**
   * One connection's reader. drain() takes what the channel has buffered
   * (tryRead), and with `direct` also what the socket holds; pump() drains
   * and then sleeps until the channel is readable again, with at most one
   * wake-up armed: no promise per chunk on the hot path.
   */
  private reader(j: number, p: PeerStream, h: LinkHandlers): Reader {
    const dec = p.decoder;
    // Rings lend shared memory: copied out natively (TypedArray.set runs word by word on it).
    // A big message may be written straight into the buffer of the receive it matches (engine place()).
    const handPlace = h.place;
    const detach = (): void => re.detach();
    const place = handPlace === undefined ? undefined : (hd: FirstHeader): Uint8Array | undefined => handPlace(j, hd.ctx, hd.tag, hd.kind, hd.total, detach);
    const handSmall = h.placeSmall;
    const placeSmall = handSmall === undefined ? undefined : (ctx: number, tag: number, kind: number, total: number): Uint8Array | undefined => handSmall(j, ctx, tag, kind, total);
    const re = new Reassembler(this.max, dec === undefined ? copyShared : undefined, place, placeSmall);
    const ch = p.channel;
    const fd = dec !== undefined ? (ch as { fd?: number | undefined }).fd : undefined;
    let scratch: Uint8Array | undefined;
    let idlePolls = 0;
    let armed = false;
    let dead = false;
    const fail = (err: unknown): void => {
      if (dead) return;
      dead = true;
      if (!this.closing) h.lost(j, new PeerLostError(j, `rank ${j} is gone: ${(err as Error).message}`, false, { cause: err }));
      ch.destroy();
    };
    // Message channels (rings) carry one frame per message after RING_PAD bytes (frame.ts).
    const start = dec === undefined ? RING_PAD : 0;
    const frame = (f: Uint8Array): void => {
      const m = re.push(f, start);
      if (m !== undefined) h.message(j, m);
    };
    // A ring's consumer lends each message in place for the call: copied out once, no view made.
    const consumer = dec === undefined ? (ch as { consumer?: RingConsumerLike }).consumer : undefined;
    const lent = (bytes: Uint8Array, offset: number, length: number): void => {
      const m = re.push(bytes, offset + RING_PAD, true, offset + length);
      if (m !== undefined) h.message(j, m);
    };
    // Small messages are copied into this reader's own buffer, one native call each; anything
    // else (a big message, fragments, the end) is taken in place by consumeRaw.
    const small = consumer?.tryReadSmall !== undefined ? new Uint8Array(RING_SCRATCH) : undefined;
    /** drain(true) outside poll(): the stop at a handed message (this.handed) ends here, as poll() ends its own. */
    const drainOnce = (): boolean => {
      const got = drain(true);
      this.handed = false;
      return got;
    };
    /** The `k`-byte frame just read into `small`, to the engine: true when a receive took it. */
    const giveSmall = (k: number): boolean => {
      const m = re.push(small as Uint8Array, RING_PAD, true, k);
      return m !== undefined && h.message(j, m);
    };
    // `direct` (a spinning receive polls): stop at the message the engine handed to that receive
    // (this.handed); what follows stays in the ring, in order, for the next poll. That saves the
    // empty look behind every message of a ping-pong (a native call each).
    const takeRing = (c: RingConsumerLike, direct: boolean): boolean => {
      if (small === undefined) return c.consumeRaw(lent, 64) > 0;
      let any = false;
      for (;;) {
        const k = (c.tryReadSmall as (t: Uint8Array) => number)(small);
        if (k >= 0) {
          any = true;
          if (giveSmall(k) && direct) {
            this.handed = true;
            return true;
          }
        } else if (k === -1 || c.consumeRaw(lent, 1) === 0) return any;
        else any = true;
      }
    };
    // A receive spinning for a message from this ring alone: spin in C and take one small message in
    // the same native call (it sees the message within nanoseconds of its publication, where a poll
    // from JS sees it up to one poll round later). Anything else is left for drain().
    const spinOne =
      consumer?.tryReadSmallSpin === undefined || small === undefined
        ? undefined
        : (ns: number): boolean => {
            if (dead || ch.isClosed) return false;
            try {
              const k = (consumer.tryReadSmallSpin as (t: Uint8Array, ns: number) => number)(small, ns);
              if (k === -1) return false;
              if (k < 0) return drainOnce();
              giveSmall(k);
            } catch (err) {
              fail(err);
            }
            return true;
          };
    // A blocking receive from this ring alone: wait and take one small message in one native call.
    // Anything else (a big message, fragments, the end, an error) is left for drain() to take or report.
    const waitOpts = { timeoutMs: 0 };
    const waitOne =
      consumer?.readIntoSync === undefined || small === undefined
        ? undefined
        : (ms: number): boolean => {
            if (dead || ch.isClosed) return true;
            waitOpts.timeoutMs = ms;
            let k: number | null;
            try {
              k = (consumer.readIntoSync as (t: Uint8Array, o: { timeoutMs: number }) => number | null)(small, waitOpts);
            } catch (err) {
              if (err instanceof TimeoutError) return false;
              // A message too big for the small buffer (or fragments) is taken in place by drain();
              // anything else breaks the link.
              if ((err as { code?: string }).code === 'EMSGSIZE') return drainOnce();
              fail(err);
              return true;
            }
            if (k === null) {
              // The end (everything before it was taken): the peer is gone, as drain() would find.
              if (!dead) {
                dead = true;
                if (!this.closing) h.lost(j, new PeerLostError(j, `rank ${j} is gone: its connection closed (${ch.description})`));
              }
              return true;
            }
            try {
              giveSmall(k);
            } catch (err) {
              fail(err);
            }
            return true;
          };
    // The most a decoder takes in one frame: a longer length prefix is its error to report.
    const maxFrame = dec === undefined ? 0 : dec.maxMessageSize;
    const deliver = (): void => {
      if (dec !== undefined) for (let f = dec.next(); f !== undefined; f = dec.next()) frame(f);
    };
    /** True if anything arrived; false once nothing more is there now. */
    const drain = (direct: boolean): boolean => {
      if (dead) return false;
      let got = false;
      try {
        if (consumer !== undefined && !ch.isClosed) {
          for (;;) {
            while (takeRing(consumer, direct)) {
              got = true;
              if (this.handed) return true;
            }
            // The end of the ring is looked for on every 64th empty poll only: a spinning receive
            // then costs one load of the producer's index per poll (a dead peer is still seen in
            // microseconds), and the event-loop path (not direct) looks every time.
            if (got || (direct && (++idlePolls & 63) !== 0) || !ch.readReady) return got;
            // Ready after an empty consume: a message that came in since (take it lent, not copied
            // out by tryRead), or the end or an error, which tryRead below reports.
            if (!takeRing(consumer, direct)) break;
            got = true;
          }
        }
        for (;;) {
          let chunk = ch.tryRead();
          if (chunk === undefined) break;
          got = true;
          if (chunk === null) {
            dead = true;
            if (!this.closing) h.lost(j, new PeerLostError(j, `rank ${j} is gone: its connection closed (${ch.description})`));
            return true;
          }
          if (dec === undefined) frame(chunk);
          else {
            if (re.streaming) {
              // A big frame is being read into place: this chunk continues its body.
              const t = re.bodyTarget();
              const k = Math.min(t.length, chunk.length);
              t.set(k === chunk.length ? chunk : chunk.subarray(0, k));
              const m = re.advance(k);
              if (m !== undefined) h.message(j, m);
              if (k === chunk.length) continue;
              chunk = chunk.subarray(k);
            }
            dec.push(chunk);
            deliver();
          }
        }
        if (direct && fd !== undefined && dec !== undefined && !ch.isClosed) {
          // Nothing is buffered in the channel, so bytes read here come next in order. The body of a
          // big frame is read straight into its place (the receive's buffer when one is posted).
          scratch ??= new Uint8Array(64 * 1024);
          const into = re.streaming ? re.bodyTarget() : scratch;
          const n = readNonblock(fd, into);
          if (n > 0 && into !== scratch) {
            got = true;
            const m = re.advance(n);
            if (m !== undefined) h.message(j, m);
          } else if (n > 0) {
            got = true;
            let at = 0;
            if (dec.pending === 0) {
              // Whole frames straight out of the read buffer (lent: copied out once, no chunk copy and
              // no views); only a partial frame at the end, or a bad length, goes through the decoder.
              while (n - at >= 4) {
                const len = u32(scratch, at);
                if (len > maxFrame || n - at - 4 < len) break;
                const m = re.push(scratch, at + 4, true, at + 4 + len);
                at += 4 + len;
                if (m !== undefined) h.message(j, m);
              }
            }
            if (at < n && dec.pending === 0 && n - at >= 4 + FIRST_HEADER) {
              const len = u32(scratch, at);
              const hdr = scratch[at + 4] === FRAME_MORE ? MORE_HEADER : FIRST_HEADER;
              if (len >= STREAM_MIN && len <= maxFrame && n - at - 4 < len) {
                // A big frame: the rest of its body goes straight into its place, not through the decoder.
                re.beginFrame(scratch, at + 4, len - hdr);
                const k = n - at - 4 - hdr;
                if (k > 0) {
                  re.bodyTarget().set(scratch.subarray(at + 4 + hdr, n));
                  re.advance(k);
                }
                at = n;
              }
            }
            if (at < n) {
              dec.push(scratch.slice(at, n));
              deliver();
            }
          } else if (n === 0 || n !== EAGAIN) {
            // The end of the stream (or a reset) seen here first: every byte before it is delivered.
            dead = true;
            const why = n === 0 ? 'its connection closed' : `its connection failed (errno ${-n})`;
            if (!this.closing) h.lost(j, new PeerLostError(j, `rank ${j} is gone: ${why} (${ch.description})`));
            return true;
          }
        }
      } catch (err) {
        fail(err);
        return true;
      }
      return got;
    };
    const pump = (): void => {
      armed = false;
      drain(false);
      if (!dead && !armed) {
        armed = true;
        ch.onReadReady(pump);
      }
    };
    try {
      deliver();
    } catch (err) {
      dead = true;
      h.lost(j, new PeerLostError(j, `rank ${j} sent a malformed first frame: ${(err as Error).message}`, false, { cause: err }));
      ch.destroy();
      return { drain: () => false, pump: () => undefined };
    }
    return { drain, pump, waitOne, spinOne };
  }

  send(to: number, env: Envelope, owned: boolean): Promise<void> | undefined {
    const p = this.peers[to];
    if (p === undefined || p === null) throw new ArgumentError(`no connection to rank ${to}`);
    const ch = p.channel;
    const bytes = env.bytes;
    const total = bytes.length;
    if (ch.messages) {
      const ring = this.ringWriters[to];
      const size = RING_PAD + FIRST_HEADER + total;
      if (ring !== undefined && this.tails[to] === undefined && size <= RING_SCRATCH && size <= this.ringRecord && ring.tryWriteFrom !== undefined) {
        // Nothing queued before it, a small message: framed in the reused buffer, written with one call.
        const f = this.ringScratch;
        writeEnvelopeHeader(f, RING_PAD, env, total, true);
        if (total <= 64) for (let i = 0; i < total; i++) f[RING_PAD + FIRST_HEADER + i] = bytes[i]!;
        else f.set(bytes, RING_PAD + FIRST_HEADER);
        if (ring.tryWriteFrom(f, size)) return undefined;
      } else if (ring !== undefined && this.tails[to] === undefined && size <= this.ringRecord) {
        // Nothing queued before it: header and payload straight into the ring (one copy, no
        // allocation), nothing to wait for.
        const head = this.ringHead;
        writeEnvelopeHeader(head, RING_PAD, env, total, true);
        if (ring.tryWriteParts(head, bytes)) return undefined;
      } else if (ring !== undefined && this.tails[to] === undefined && this.spinUs > 0 && size > this.ringRecord) {
        // Polling progress: a big message goes as FIRST/MORE frames written synchronously while the
        // receiver (spinning too) drains them, so the copies overlap; what does not get in within the
        // spin budget follows the queued way.
        const sent = this.ringFramesSync(ring, env);
        if (sent === total) return undefined;
        if (sent > 0) return this.queueRingFrames(to, ch, bytes, sent);
      }
      // One message per envelope, built now (the caller may reuse its buffer), and written
      // after the previous one so that a full ring holds one waiting writer, not a crowd.
      const msg = new Uint8Array(RING_PAD + FIRST_HEADER + total);
      writeEnvelopeHeader(msg, RING_PAD, env, total, true);
      msg.set(bytes, RING_PAD + FIRST_HEADER);
      const prev = this.tails[to];
      const done = prev === undefined ? ch.write(msg) : prev.then(() => ch.write(msg));
      const tail = done.catch(() => undefined);
      this.tails[to] = tail;
      void tail.then(() => {
        if (this.tails[to] === tail) this.tails[to] = undefined;
      });
      return done;
    }
    const frag = this.maxFragment;
    const first = Math.min(total, frag);
    // Not owned: copy into the frame, because the channel may hold the bytes after write() resolves.
    const copy = !owned || total <= 256;
    const writes: Promise<void>[] = [];
    if (this.spinUs > 0 && first === total && total <= SEND_SCRATCH - 4 - FIRST_HEADER && isDirectWritable(ch)) {
      // Polling progress, a small message: framed in a reused buffer and sent with one system call;
      // only what the kernel does not take at once is copied out and queued.
      const size = 4 + FIRST_HEADER + total;
      let f = this.sendFrame;
      if (f === undefined || f.length !== size) f = this.sendFrame = this.sendScratch.subarray(0, size);
      putU32(f, 0, FIRST_HEADER + total);
      writeEnvelopeHeader(f, 4, env, total, true);
      if (total <= 64) for (let i = 0; i < total; i++) f[4 + FIRST_HEADER + i] = bytes[i]!;
      else f.set(bytes, 4 + FIRST_HEADER);
      const n = ch.writeNowSync(f);
      if (n === size) return undefined;
      this.tickDebt = true;
      return ch.write(f.slice(n > 0 ? n : 0));
    }
    if (this.spinUs > 0 && isDirectWritable(ch)) {
      // Polling progress, a big message: written straight from the caller's bytes while the peer
      // drains them, with no frame copy and no event-loop turn (a queued write would only move
      // once the receive we go on to spin in gives up).
      const r = this.socketFramesSync(ch, env);
      if (r !== false) return r;
    }
    if (copy) {
      const f = new Uint8Array(4 + FIRST_HEADER + first);
      putU32(f, 0, FIRST_HEADER + first);
      writeEnvelopeHeader(f, 4, env, total, first === total);
      f.set(first === total ? bytes : bytes.subarray(0, first), 4 + FIRST_HEADER);
      if (this.spinUs > 0 && first === total && isDirectWritable(ch)) {
        // Polling progress: one system call, no stream machinery, nothing held until the next tick.
        const rest = ch.writeNow(f);
        if (rest === undefined) return undefined;
        this.tickDebt = true;
        return rest;
      }
      this.tickDebt = true;
      writes.push(ch.write(f));
    } else {
      this.tickDebt = true;
      const h = new Uint8Array(4 + FIRST_HEADER);
      putU32(h, 0, FIRST_HEADER + first);
      writeEnvelopeHeader(h, 4, env, total, first === total);
      writes.push(ch.writev([h, bytes.subarray(0, first)]));
    }
    for (let off = first; off < total; off += frag) {
      const n = Math.min(frag, total - off);
      const isLast = off + n === total;
      if (copy) {
        const f = new Uint8Array(4 + MORE_HEADER + n);
        putU32(f, 0, MORE_HEADER + n);
        writeMoreHeader(f.subarray(4), isLast);
        f.set(bytes.subarray(off, off + n), 4 + MORE_HEADER);
        writes.push(ch.write(f));
      } else {
        const h = new Uint8Array(4 + MORE_HEADER);
        putU32(h, 0, MORE_HEADER + n);
        writeMoreHeader(h.subarray(4), isLast);
        writes.push(ch.writev([h, bytes.subarray(off, off + n)]));
      }
    }
    return writes.length === 1 ? (writes[0] as Promise<void>) : Promise.all(writes).then(() => undefined);
  }

  /**
   * Send one message before returning (the blocking send of the engine's
   * sendSync): written straight into the ring or the socket while `wait`
   * lets the engine take incoming messages, check the deadline and the peer.
   * Throws EBUSY when an earlier asynchronous send to `to` is still queued
   * (a direct write would overtake it), and TimeoutError (ETIMEDOUT) when
   * `wait` gives up: nothing of the message went out, or, when part of a big
   * one had, the rest is queued behind it and goes out as the event loop
   * runs, so the receiver never sees half a message.
   */
  sendSync(to: number, env: Envelope, wait: WriteWait): void {
    const p = this.peers[to];
    if (p === undefined || p === null) throw new ArgumentError(`no connection to rank ${to}`);
    const ch = p.channel;
    const bytes = env.bytes;
    const total = bytes.length;
    if (ch.messages) {
      const ring = this.ringWriters[to];
      if (ring === undefined) throw new SwitchboardError('EUNSUPPORTED', `blocking sends need a ring or a socket to rank ${to}, not ${ch.kind}`);
      if (this.tails[to] !== undefined) throw busyError(to);
      const size = RING_PAD + FIRST_HEADER + total;
      if (size <= RING_SCRATCH && size <= this.ringRecord && ring.tryWriteFrom !== undefined) {
        const f = this.ringScratch;
        writeEnvelopeHeader(f, RING_PAD, env, total, true);
        if (total <= 64) for (let i = 0; i < total; i++) f[RING_PAD + FIRST_HEADER + i] = bytes[i]!;
        else f.set(bytes, RING_PAD + FIRST_HEADER);
        // (incoming messages taken while we wait may reuse the link's read buffers, never this one)
        while (!ring.tryWriteFrom(f, size)) if (!wait.wait()) throw lateError(to, total, 0);
        return;
      }
      const sent = this.ringFramesSync(ring, env, wait);
      if (sent === total) return;
      if (sent > 0) void this.queueRingFrames(to, ch, bytes, sent).catch(() => undefined);
      throw lateError(to, total, sent);
    }
    if (!isDirectWritable(ch)) throw new SwitchboardError('EUNSUPPORTED', `blocking sends need a ring or a socket to rank ${to}, not ${ch.kind}`);
    const size = 4 + FIRST_HEADER + total;
    if (total <= this.maxFragment && size <= SEND_SCRATCH) {
      // A small message: one frame from the reused buffer, usually one system call.
      const f = this.sendScratch;
      putU32(f, 0, FIRST_HEADER + total);
      writeEnvelopeHeader(f, 4, env, total, true);
      if (total <= 64) for (let i = 0; i < total; i++) f[4 + FIRST_HEADER + i] = bytes[i]!;
      else f.set(bytes, 4 + FIRST_HEADER);
      let at = 0;
      while (at < size) {
        const n = ch.writeNowSync(at === 0 ? f.subarray(0, size) : f.subarray(at, size));
        if (n < 0) {
          if (at === 0) throw busyError(to);
          break;
        }
        if (n > 0) {
          at += n;
          wait.progress();
        } else if (!wait.wait()) break;
      }
      if (at === size) return;
      if (at === 0) throw lateError(to, total, 0);
      // (part of the frame is in the stream: the rest must follow, or the stream is broken for good)
      this.tickDebt = true;
      void ch.write(f.slice(at, size)).catch(() => undefined);
      throw lateError(to, total, Math.max(0, at - 4 - FIRST_HEADER));
    }
    const r = this.socketFramesSync(ch, env, wait);
    if (r === false) throw wait.expired === true ? lateError(to, total, 0) : busyError(to);
    if (r !== undefined) {
      void r.catch(() => undefined);
      throw lateError(to, total, undefined);
    }
  }

  /**
   * Write a message bigger than one ring record as frames of at most one
   * record, without waiting for the event loop: while the ring is full, take
   * our own incoming messages (a peer may be doing the same to us) and try
   * again, for at most the spin budget. Returns the payload bytes written.
   */
  private ringFramesSync(ring: SyncRingWriter, env: Envelope, budget: WriteWait = new StallBudget(this, this.spinUs)): number {
    const bytes = env.bytes;
    const total = bytes.length;
    const chunk = this.ringRecord - RING_PAD - FIRST_HEADER;
    // (the default budget counts time without progress: a receiver that drains keeps the writer going)
    let off = 0;
    while (off < total) {
      const n = Math.min(chunk, total - off);
      const last = off + n === total;
      const head = off === 0 ? this.ringHead : this.ringMoreHead;
      if (off === 0) writeEnvelopeHeader(head, RING_PAD, env, total, last);
      else writeMoreHeader(head, last, RING_PAD);
      if (ring.tryWriteParts(head, bytes.subarray(off, off + n))) {
        off += n;
        budget.progress();
      } else if (!budget.wait()) {
        break;
      }
    }
    return off;
  }

  /**
   * Write a message's frames (length prefix and header from a reused buffer,
   * then the caller's bytes) with non-blocking sends. While the socket is
   * full, take our own incoming messages (the peer may be sending to us too)
   * and try again, for at most the spin budget without progress; what is
   * left is copied and queued behind. undefined when all went out, the
   * promise of the queued rest otherwise, false when a direct write is not
   * possible now (nothing was written).
   */
  private socketFramesSync(ch: Channel & DirectWritable, env: Envelope, budget: WriteWait = new StallBudget(this, this.spinUs)): Promise<void> | undefined | false {
    const bytes = env.bytes;
    const total = bytes.length;
    const frag = this.maxFragment;
    const head = this.sendScratch;
    /** Bytes of `piece` [from, to) the kernel took, trying until the budget runs out. */
    const put = (piece: Uint8Array, from: number, to: number): number => {
      let at = from;
      while (at < to) {
        const n = ch.writeNowSync(at === 0 && to === piece.length ? piece : piece.subarray(at, to));
        if (n < 0) break;
        if (n > 0) {
          at += n;
          budget.progress();
        } else if (!budget.wait()) {
          break;
        }
      }
      return at - from;
    };
    let off = 0;
    for (let firstFrame = true; firstFrame || off < total; firstFrame = false) {
      const n = Math.min(frag, total - off);
      const last = off + n === total;
      let hlen: number;
      if (firstFrame) {
        hlen = 4 + FIRST_HEADER;
        putU32(head, 0, FIRST_HEADER + n);
        writeEnvelopeHeader(head, 4, env, total, last);
      } else {
        hlen = 4 + MORE_HEADER;
        putU32(head, 0, MORE_HEADER + n);
        writeMoreHeader(head, last, 4);
      }
      const h = put(head, 0, hlen);
      if (firstFrame && h === 0) return false;
      const b = h === hlen ? put(bytes, off, off + n) : 0;
      if (h < hlen || b < n) {
        // Out of budget (or the stream queued something): the rest of this frame, copied, then the
        // following frames, in order behind it.
        this.tickDebt = true;
        const writes: Promise<void>[] = [];
        if (h < hlen) writes.push(ch.write(head.slice(h, hlen)));
        if (b < n) writes.push(ch.write(bytes.slice(off + b, off + n)));
        for (let o = off + n; o < total; o += frag) {
          const m = Math.min(frag, total - o);
          const f = new Uint8Array(4 + MORE_HEADER + m);
          putU32(f, 0, MORE_HEADER + m);
          writeMoreHeader(f, o + m === total, 4);
          f.set(bytes.subarray(o, o + m), 4 + MORE_HEADER);
          writes.push(ch.write(f));
        }
        return Promise.all(writes).then(() => undefined);
      }
      off += n;
    }
    return undefined;
  }

  /** The rest of a message whose first frames went synchronously: MORE frames, queued in order. */
  private queueRingFrames(to: number, ch: Channel, bytes: Uint8Array, from: number): Promise<void> {
    const total = bytes.length;
    const chunk = this.ringRecord - RING_PAD - FIRST_HEADER;
    let done: Promise<void> = Promise.resolve();
    for (let off = from; off < total; off += chunk) {
      const n = Math.min(chunk, total - off);
      const f = new Uint8Array(RING_PAD + MORE_HEADER + n);
      writeMoreHeader(f, off + n === total, RING_PAD);
      f.set(bytes.subarray(off, off + n), RING_PAD + MORE_HEADER);
      done = done.then(() => ch.write(f));
    }
    const tail = done.catch(() => undefined);
    this.tails[to] = tail;
    void tail.then(() => {
      if (this.tails[to] === tail) this.tails[to] = undefined;
    });
    return done;
  }

  /**
   * A blocking receive from one rank over a ring: one call that waits in C
   * (spin, then futex) and copies the next message into the reader's buffer,
   * delivered at once. Sockets: undefined (the engine polls them).
   */
  spinReadable(from: number, ns: number): boolean | undefined {
    const s = this.readers[from]?.spinOne;
    return s === undefined ? undefined : s(ns);
  }

  waitReadable(from: number, ms: number): boolean | undefined {
    const w = this.readers[from]?.waitOne;
    return w === undefined ? undefined : w(ms);
  }

  /** For readers that only poll (blocking receives): each ring looks for a dead producer, at most once per its livenessMs. */
  checkPeers(): void {
    for (const p of this.peers) (p?.channel as { consumer?: { checkProducers?(): void } } | undefined)?.consumer?.checkProducers?.();
  }

  setActive(_active: boolean): void {
    // Socket channels keep the process alive while open; the rank ends by closing its communicator.
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.peers.map((p) => (p === null ? undefined : p.channel.close().catch(() => undefined))));
    await this.onClose?.();
  }
}
