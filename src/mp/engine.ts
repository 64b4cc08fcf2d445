/**
 * The matching engine of one rank (seed 12.2.2: receive from a given sender
 * or "don't care"). Arriving messages match posted receives in posting order;
 * the rest wait in an unexpected queue in arrival order, so two messages
 * from one sender with one tag are received in the order they were sent
 * (non-overtaking). Probes look without consuming. One engine serves every
 * communicator of the rank; context ids keep them apart.
 */
import { performance } from 'node:perf_hooks';
import { AbortError, SwitchboardError, TimeoutError } from '../errors.js';
import { PeerLostError } from './errors.js';
import { KIND_BYE, type Envelope, type Link, type WriteWait } from './link.js';
import { KIND_VALUE } from './payload.js';
import { RELAX_EVERY, relax } from './relax.js';
import { MsgQueue } from './msg-queue.js';

/** "Don't care" for a source or a tag. */
export const ANY = -1;

/** A message as it sits in the engine: an envelope plus its world source. */
export interface Msg extends Envelope {
  src: number;
}

export interface WaitOptions {
  /** Reject with TimeoutError after this many milliseconds (0 or undefined: no limit). */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

interface Waiter {
  ctx: number;
  src: number;
  tag: number;
  consume: boolean;
  /** A receive's own buffer, which a link may fill in place (see place()). */
  into?: Uint8Array | undefined;
  /** Set while a link is filling `into`: moves what it has written to a buffer of its own. */
  detach?: (() => void) | undefined;
  /** The waiter is done or failed (a spinning receive watches this). */
  settled: boolean;
  done(m: Msg): void;
  fail(e: Error): void;
}

/**
 * Receive buffers of at least this many bytes are posted before the receive
 * spins, so that a big message can be reassembled straight into them (no
 * buffer of its own, no copy out: a fresh 1 MiB array alone costs 90 to
 * 170 us in V8 here).
 */
const PLACE_MIN = 4096;

function matches(w: { src: number; tag: number }, m: Msg): boolean {
  return (w.src === ANY || w.src === m.src) && (w.tag === ANY || w.tag === m.tag);
}

/** What send() returns when the link took the message at once: one settled promise, not one per message. */
const SENT: Promise<void> = Promise.resolve();

/** How long one spin slice may run before pending nextTick work (corked writes) gets a turn. */
const SLICE_MS = 0.025;

/** One spin on one rank's transport in spinFor() (ns): well inside a slice, so the clock is looked at in time. */
const SPIN_SLICE_NS = 10_000;

/** process.nextTick as a promise: lets queued ticks (a socket's uncork) run, without an event-loop turn. */
const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

/** A blocking receive's spin between looks at the clock, the peers' liveness and lost ranks. */
const SYNC_SLICE_MS = 1;
/** A blocking receive's wait on one ring between those looks (the ring checks its producer's liveness itself). */
const SYNC_WAIT_MS = 100;

function notBlocking(kind: string): SwitchboardError {
  return new SwitchboardError('EUNSUPPORTED', `blocking sends and receives need a transport that can be polled (rings, Unix or TCP sockets), not '${kind}'`);
}

/**
 * The wait of a blocking send: poll for incoming messages, give the CPU
 * away now and then, and give up at the deadline (TimeoutError from the
 * link) or at once when the destination is lost (its PeerLostError).
 */
class SyncWait implements WriteWait {
  private readonly engine: Engine;
  private to = 0;
  private timeoutMs = 0;
  /** The deadline, read off the clock only once the send first has to wait (-1: not yet). */
  private end = -1;
  private spins = 0;
  expired = false;

  constructor(engine: Engine) {
    this.engine = engine;
  }

  /** Ready for one more send (one object per engine: a send that never waits allocates nothing). */
  reset(to: number, timeoutMs: number | undefined): this {
    this.to = to;
    this.timeoutMs = timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs : Infinity;
    this.end = -1;
    this.spins = 0;
    this.expired = false;
    return this;
  }

  progress(): void {
    this.spins = 0;
  }

  wait(): boolean {
    const e = this.engine;
    if (this.end < 0) this.end = performance.now() + this.timeoutMs;
    e.pollOnce();
    if ((++this.spins & 15) === 0) {
      const lost = e.lostError(this.to);
      if (lost !== undefined) throw lost;
      if (e.isClosed) throw new SwitchboardError('ECLOSED', 'the communicator is closed');
      if (performance.now() >= this.end) {
        this.expired = true;
        return false;
      }
      if ((this.spins & (RELAX_EVERY - 1)) === 0) {
        relax();
        e.link.checkPeers?.();
      }
    }
    return true;
  }
}

export class Engine {
  readonly link: Link;
  readonly rank: number;
  readonly size: number;
  private readonly unexpected = new Map<number, MsgQueue<Msg>>();
  /** The receive spinning in spinFor() (wantCtx -1: none), and the message incoming() handed it. */
  private wantCtx = -1;
  private wantSrc = 0;
  private wantTag = 0;
  private wantHit: Msg | undefined;
  /** That receive's buffer: a message arriving whole may be written straight into it (placeSmall()). */
  private wantInto: Uint8Array | undefined;
  private readonly posted = new Map<number, Waiter[]>();
  /** The wait of every blocking send (see sendSync), reused. */
  private readonly syncWait: SyncWait = new SyncWait(this);
  private readonly members = new Map<number, (world: number) => boolean>();
  private readonly gone = new Map<number, PeerLostError>();
  /** Messages reassembled straight into a receive's buffer so far (see place()). */
  get placedMessages(): number {
    return this.placed;
  }

  private placed = 0;
  /** Posted receives whose buffer a link is filling now (rarely more than one). */
  private readonly claimed: Waiter[] = [];
  private active = 0;
  private closedErr: SwitchboardError | undefined;
  /** Next free communicator context id (split/dup agree on it with an allreduce of max). */
  nextContext = 2;
  /**
   * Polling progress: a receive that finds nothing spins on the link for up
   * to this many microseconds before it sleeps in the event loop (0: never
   * spin). Worth it only when every rank has a core of its own.
   */
  get spinUs(): number {
    return this.spin;
  }

  set spinUs(us: number) {
    this.spin = us;
    if (this.link.poll !== undefined) this.link.spinUs = us;
  }

  private spin = 0;

  constructor(link: Link) {
    this.link = link;
    this.rank = link.rank;
    this.size = link.size;
    link.start({
      message: (from, env) => this.incoming(from, env),
      lost: (rank, err) => this.lost(rank, err),
      place: (from, ctx, tag, kind, total, detach) => this.place(from, ctx, tag, kind, total, detach),
      placeSmall: (from, ctx, tag, kind, total) => this.placeSmall(from, ctx, tag, kind, total),
    });
  }

  /** Tell the engine which world ranks belong to a context (for failing ANY-source receives). */
  registerContext(ctx: number, isMember: (world: number) => boolean): void {
    this.members.set(ctx, isMember);
  }

  lostError(world: number): PeerLostError | undefined {
    return this.gone.get(world);
  }

  get isClosed(): boolean {
    return this.closedErr !== undefined;
  }

  private hold(delta: number): void {
    const before = this.active;
    this.active += delta;
    if ((before === 0) !== (this.active === 0)) this.link.setActive(this.active > 0);
  }

  /** Send one envelope to a world rank. */
  send(to: number, env: Envelope, owned: boolean): Promise<void> {
    if (this.closedErr) return Promise.reject(this.closedErr);
    const g = this.gone.get(to);
    if (g) return Promise.reject(g);
    if (to === this.rank) {
      const bytes = owned ? env.bytes : env.bytes.slice();
      this.incoming(this.rank, { ctx: env.ctx, tag: env.tag, kind: env.kind, dtype: env.dtype, bytes, src: this.rank });
      return Promise.resolve();
    }
    let r: Promise<void> | void;
    try {
      r = this.link.send(to, env, owned);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (r === undefined) return SENT;
    this.hold(1);
    return r.finally(() => this.hold(-1));
  }

  /** A whole message arrived: true when a receive took it (posted, or spinning for it in spinFor()). */
  private incoming(from: number, env: Envelope): boolean {
    if (env.kind === KIND_BYE) {
      this.lost(from, new PeerLostError(from, `rank ${from} closed its communicator`, true));
      return false;
    }
    const m = env as Msg;
    m.src = from;
    if (this.claimed.length > 0 && this.deliverPlaced(m)) return true;
    const ws = this.posted.get(m.ctx);
    if (ws !== undefined) {
      for (let i = 0; i < ws.length; i++) {
        const w = ws[i] as Waiter;
        if (!matches(w, m)) continue;
        ws.splice(i, 1);
        w.done(m);
        if (w.consume) return true;
        i--;
      }
    }
    if (this.wantCtx === m.ctx && (this.wantSrc === ANY || this.wantSrc === m.src) && (this.wantTag === ANY || this.wantTag === m.tag)) {
      this.wantCtx = -1;
      this.wantHit = m;
      return true;
    }
    let q = this.unexpected.get(m.ctx);
    if (q === undefined) this.unexpected.set(m.ctx, (q = new MsgQueue<Msg>()));
    q.push(m);
    return false;
  }

  /**
   * A link starts a message of `total` bytes from `from`: the buffer of the
   * receive it will match, if that receive is posted with a buffer big
   * enough, names `from` as its source (so no other sender can complete
   * first and take the receive), and takes bytes, not a structured value.
   * This is where MPI matches too: when a message's header arrives. The link
   * fills the buffer and delivers a view of it; `detach` makes it move to a
   * buffer of its own if the receive gives up first.
   */
  private place(from: number, ctx: number, tag: number, kind: number, total: number, detach: () => void): Uint8Array | undefined {
    if (kind === KIND_VALUE) return undefined;
    const ws = this.posted.get(ctx);
    if (ws === undefined) return undefined;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i] as Waiter;
      // Probes see the message too, but a receive is what takes it.
      if (!w.consume || (w.src !== ANY && w.src !== from) || (w.tag !== ANY && w.tag !== tag)) continue;
      if (w.src !== from || w.into === undefined || w.detach !== undefined || total > w.into.length) return undefined;
      w.detach = detach;
      this.claimed.push(w);
      return w.into;
    }
    return undefined;
  }

  /**
   * A message arriving whole in one frame, `total` bytes: the buffer of the
   * receive spinning for it in spinFor(), when incoming() will certainly hand
   * the message to that receive (it matches, no posted receive or probe comes
   * first, and it is bytes that fit). The link then copies it there once,
   * with no array of its own in between. Small messages only where the
   * buffer is exactly their size (a view of part of it costs what a new
   * array does).
   */
  private placeSmall(from: number, ctx: number, tag: number, kind: number, total: number): Uint8Array | undefined {
    const into = this.wantInto;
    if (into === undefined || this.wantCtx !== ctx || kind === KIND_VALUE || kind === KIND_BYE) return undefined;
    if (total > into.length || (total <= 64 && total !== into.length)) return undefined;
    if ((this.wantSrc !== ANY && this.wantSrc !== from) || (this.wantTag !== ANY && this.wantTag !== tag)) return undefined;
    if (this.claimed.length > 0) return undefined;
    const ws = this.posted.get(ctx);
    if (ws !== undefined && ws.length > 0) return undefined;
    return into;
  }

  /** A message a link wrote into a posted receive's buffer: it goes to that receive (probes before it look first). */
  private deliverPlaced(m: Msg): boolean {
    const c = this.claimed;
    let w: Waiter | undefined;
    for (let i = 0; i < c.length; i++) {
      const x = c[i] as Waiter;
      if ((x.into as Uint8Array).buffer === m.bytes.buffer && (x.into as Uint8Array).byteOffset === m.bytes.byteOffset) {
        w = x;
        c.splice(i, 1);
        break;
      }
    }
    if (w === undefined) return false;
    w.detach = undefined;
    this.placed++;
    const ws = this.posted.get(m.ctx) as Waiter[];
    for (let i = 0; i < ws.length; i++) {
      const x = ws[i] as Waiter;
      if (x === w) {
        ws.splice(i, 1);
        w.done(m);
        return true;
      }
      if (!x.consume && matches(x, m)) {
        ws.splice(i--, 1);
        x.done(m);
      }
    }
    // Unreachable: a receive leaves the posted list only through done() or fail(), and fail() detaches.
    throw new SwitchboardError('EPROTO', 'a message was placed into a receive that is no longer posted');
  }

  /** The receive no longer wants its buffer filled: the link moves the partial message elsewhere. */
  private unclaim(w: Waiter): void {
    const d = w.detach;
    if (d === undefined) return;
    w.detach = undefined;
    const i = this.claimed.indexOf(w);
    if (i >= 0) this.claimed.splice(i, 1);
    d();
  }

  private lost(rank: number, err: PeerLostError): void {
    if (this.gone.has(rank) || rank === this.rank) return;
    this.gone.set(rank, err);
    for (const [ctx, ws] of this.posted) {
      const member = this.members.get(ctx);
      for (let i = 0; i < ws.length; i++) {
        const w = ws[i] as Waiter;
        // A receive from anyone fails when a member dies (it might have been the sender);
        // an orderly goodbye fails only receives aimed at that rank.
        const hit = w.src === rank || (w.src === ANY && !err.finalized && (member === undefined || member(rank)));
        if (!hit) continue;
        ws.splice(i--, 1);
        w.fail(err);
      }
    }
  }

  /** First queued message that matches, without waiting; removed when `consume`. */
  peek(ctx: number, src: number, tag: number, consume: boolean): Msg | undefined {
    const q = this.unexpected.get(ctx);
    if (q === undefined) return undefined;
    for (let i = 0; i < q.length; i++) {
      const m = q.at(i);
      if ((src === ANY || src === m.src) && (tag === ANY || tag === m.tag)) {
        if (consume) q.removeAt(i);
        return m;
      }
    }
    return undefined;
  }

  /** Why a wait cannot succeed now (closed, or the sender is gone), if it cannot. */
  private hopeless(ctx: number, src: number): Error | undefined {
    if (this.closedErr) return this.closedErr;
    if (src !== ANY) return this.gone.get(src);
    const member = this.members.get(ctx);
    for (const [r, g] of this.gone) {
      if (!g.finalized && (member === undefined || member(r))) return g;
    }
    return undefined;
  }

  /**
   * Poll the link until a matching message is there or `ms` has passed: the
   * message, or undefined. Reads the clock every 16 polls.
   */
  private spinFor(ctx: number, src: number, tag: number, consume: boolean, ms: number, into?: Uint8Array, waitMs = 0): Msg | undefined {
    const poll = this.link.poll;
    if (poll === undefined) return undefined;
    // A receive (not a probe) and nothing queued matches it (the caller looked): the first message
    // that matches while we poll is handed over by incoming() without going through the queue.
    if (consume) {
      this.wantCtx = ctx;
      this.wantSrc = src;
      this.wantTag = tag;
      this.wantInto = into;
    }
    try {
      // The clock is read only once the first 16 polls found nothing (a reply usually beats them).
      if (waitMs > 0) {
        // A blocking receive from one rank: the link waits on that rank's transport and delivers
        // what came (handed over here by incoming()); undefined: it cannot, poll as usual.
        const waited = this.link.waitReadable?.(src, waitMs);
        if (waited !== undefined) {
          const hit = this.wantHit;
          if (hit !== undefined) {
            this.wantHit = undefined;
            return hit;
          }
          return waited ? this.peek(ctx, src, tag, consume) : undefined;
        }
      }
      // From one rank, every other round spins on that rank's transport alone (a ring: in C, where
      // the message is seen the moment it is published and taken in the same call); the rounds
      // between poll every peer, so their messages keep flowing.
      const spinOn = src !== ANY ? this.link.spinReadable : undefined;
      let spinning = spinOn !== undefined;
      let end = Infinity;
      for (let i = 1; ; i++) {
        let got: boolean;
        // (a slice spun in vain: the clock is worth its read at once, not after 16 rounds)
        let slow = false;
        if (spinning && (i & 1) !== 0) {
          const r = (spinOn as (from: number, ns: number) => boolean | undefined).call(this.link, src, SPIN_SLICE_NS);
          if (r === undefined) spinning = false;
          got = r === true;
          slow = r === false;
        } else got = poll.call(this.link);
        if (got) {
          const hit = this.wantHit;
          if (hit !== undefined) {
            this.wantHit = undefined;
            return hit;
          }
          const m = this.peek(ctx, src, tag, consume);
          if (m !== undefined || this.hopeless(ctx, src) !== undefined) return m;
        }
        if (slow || (i & 15) === 0) {
          const now = performance.now();
          if (end === Infinity) end = now + ms;
          else if (now >= end) return undefined;
          if ((i & (RELAX_EVERY - 1)) === 0) relax();
        }
      }
    } finally {
      this.wantCtx = -1;
      const into = this.wantInto;
      this.wantInto = undefined;
      // (a message handed over as the spin ended some other way goes back to the queue's front,
      // in memory of its own if it was written into the receive's buffer)
      const late = this.wantHit;
      if (late !== undefined) {
        this.wantHit = undefined;
        if (into !== undefined && late.bytes.buffer === into.buffer) late.bytes = late.bytes.slice();
        this.requeue(late);
      }
    }
  }

  /** Put a message back at the front of its context's queue (it arrived before anything queued since). */
  private requeue(m: Msg): void {
    let q = this.unexpected.get(m.ctx);
    if (q === undefined) this.unexpected.set(m.ctx, (q = new MsgQueue<Msg>()));
    q.unshift(m);
  }

  /**
   * Spin in slices (queued ticks run in between, so a corked write of ours
   * goes out), then sleep in the event loop if nothing came.
   */
  private async spinThenWait(ctx: number, src: number, tag: number, consume: boolean, opts: WaitOptions, start: number, tickFirst = false, into?: Uint8Array): Promise<Msg> {
    if (tickFirst) {
      await tick();
      const q = this.peek(ctx, src, tag, consume);
      if (q !== undefined) return q;
    }
    const limit = opts.timeoutMs !== undefined && opts.timeoutMs > 0 && Number.isFinite(opts.timeoutMs) ? opts.timeoutMs : Infinity;
    // The spin counts against the caller's timeout: it never makes a receive wait longer.
    const end = start + Math.min(this.spinUs / 1000, limit);
    for (;;) {
      const m = this.spinFor(ctx, src, tag, consume, SLICE_MS, into);
      if (m !== undefined) return m;
      if (this.hopeless(ctx, src) !== undefined || performance.now() >= end || opts.signal?.aborted === true) break;
      await tick();
      const q = this.peek(ctx, src, tag, consume);
      if (q !== undefined) return q;
    }
    if (limit === Infinity) return this.afterSpin(ctx, src, tag, consume, opts);
    const left = Math.max(1, limit - (performance.now() - start));
    return this.afterSpin(ctx, src, tag, consume, { ...opts, timeoutMs: left }, limit);
  }

  /**
   * Wait for a matching message: receive (consume) or probe (leave it queued).
   * `into`: the receive's buffer, which a big message may be written into directly.
   */
  wait(ctx: number, src: number, tag: number, consume: boolean, opts: WaitOptions = {}, into?: Uint8Array): Promise<Msg> {
    const m = this.take(ctx, src, tag, consume, opts, into);
    return m instanceof Promise ? m : Promise.resolve(m);
  }

  /** wait(), but a message found at once (queued, or during the first spin slice) comes back as it is. */
  take(ctx: number, src: number, tag: number, consume: boolean, opts: WaitOptions = {}, into?: Uint8Array): Msg | Promise<Msg> {
    const now = this.peek(ctx, src, tag, consume);
    if (now !== undefined) return now;
    const no = this.hopeless(ctx, src);
    if (no !== undefined) return Promise.reject(no);
    const place = into !== undefined && consume && src !== ANY && into.length >= PLACE_MIN ? into : undefined;
    if (this.spinUs > 0 && this.link.poll !== undefined && opts.signal?.aborted !== true) {
      if (place !== undefined) return this.spinPosted(ctx, src, tag, opts, place);
      const mine = consume ? into : undefined;
      if (this.link.takeTickDebt?.() === true) return this.spinThenWait(ctx, src, tag, consume, opts, performance.now(), true, mine);
      const m = this.spinFor(ctx, src, tag, consume, Math.min(SLICE_MS, this.spinUs / 1000), mine);
      if (m !== undefined) return m;
      // The first slice's length comes off the budget (start is approximate by at most 16 polls).
      if (this.spinUs / 1000 > SLICE_MS) return this.spinThenWait(ctx, src, tag, consume, opts, performance.now() - SLICE_MS, false, mine);
      return this.afterSpin(ctx, src, tag, consume, opts);
    }
    return this.post(ctx, src, tag, consume, opts, undefined, place).promise;
  }

  /**
   * Blocking send (Communicator.sendSync): the message is in the transport
   * when this returns. While the ring or socket is full, incoming messages
   * are taken (the peer may be sending to us at the same time) and the
   * deadline and the peer's fate are checked. No promise, no event-loop turn.
   */
  sendSync(to: number, env: Envelope, timeoutMs: number | undefined): void {
    if (this.closedErr) throw this.closedErr;
    const g = this.gone.get(to);
    if (g) throw g;
    if (to === this.rank) {
      this.incoming(this.rank, { ctx: env.ctx, tag: env.tag, kind: env.kind, dtype: env.dtype, bytes: env.bytes.slice(), src: this.rank });
      return;
    }
    const sendSync = this.link.sendSync;
    if (sendSync === undefined || this.link.poll === undefined) throw notBlocking(this.link.kind);
    sendSync.call(this.link, to, env, this.syncWait.reset(to, timeoutMs));
  }

  /**
   * Blocking receive or probe (Communicator.receiveSync): a matching message,
   * polling the link on this thread until one comes (as MPI's progress
   * engine does; every RELAX_EVERY polls the CPU is offered to others).
   * Throws TimeoutError after `timeoutMs`, the peer's PeerLostError when it
   * is gone, EUNSUPPORTED on a link that cannot be polled.
   */
  takeSync(ctx: number, src: number, tag: number, consume: boolean, timeoutMs: number | undefined, into?: Uint8Array): Msg {
    const now = this.peek(ctx, src, tag, consume);
    if (now !== undefined) return now;
    if (this.link.poll === undefined) throw notBlocking(this.link.kind);
    const limit = timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs : Infinity;
    const placed = consume && src !== ANY && into !== undefined && into.length >= PLACE_MIN;
    const mine = consume ? into : undefined;
    if (!placed) {
      const no = this.hopeless(ctx, src);
      if (no !== undefined) throw no;
      // The usual case first, with no clock read: the message comes within the first 16 polls.
      const m = this.spinFor(ctx, src, tag, consume, SYNC_SLICE_MS, mine);
      if (m !== undefined) return m;
    }
    // (the deadline counts from here: the first slice above, at most 1 ms, is not counted)
    const t0 = performance.now();
    const end = t0 + limit;
    if (placed) return this.takePlacedSync(ctx, src, tag, into, end, limit);
    const waitReadable = src !== ANY ? this.link.waitReadable : undefined;
    // Poll every peer for the spin budget first (the lowest latency: a reply is usually that
    // quick); after that, one source on a ring waits on that ring alone, in C (spin, then a futex
    // sleep: no CPU burnt on a long wait), then takes what came. ANY and sockets keep polling.
    const pollUntil = t0 + Math.max(SYNC_SLICE_MS, this.spinUs / 1000);
    for (;;) {
      const no = this.hopeless(ctx, src);
      if (no !== undefined) throw no;
      const waitMs = waitReadable === undefined || performance.now() < pollUntil ? 0 : Math.max(1, Math.min(SYNC_WAIT_MS, end - performance.now()));
      const m = this.spinFor(ctx, src, tag, consume, SYNC_SLICE_MS, mine, waitMs);
      if (m !== undefined) return m;
      this.link.checkPeers?.();
      if (performance.now() >= end) {
        const who = src === ANY ? 'any rank' : `rank ${src}`;
        throw new TimeoutError(`no message from ${who} with tag ${tag === ANY ? 'any' : tag} within ${limit} ms`);
      }
    }
  }

  /**
   * takeSync() with a big buffer from one rank: a receive posted for the
   * time of the call (no promise), so that a big message is reassembled
   * straight into the buffer (see place()) rather than into a fresh array
   * and copied; polled, then waited on as takeSync() does.
   */
  private takePlacedSync(ctx: number, src: number, tag: number, into: Uint8Array, end: number, limit: number): Msg {
    let got: Msg | undefined;
    let failed: Error | undefined;
    const w: Waiter = {
      ctx,
      src,
      tag,
      consume: true,
      into,
      settled: false,
      done: (m) => {
        w.settled = true;
        if (w.detach !== undefined) this.unclaim(w);
        got = m;
      },
      fail: (e) => {
        w.settled = true;
        this.unclaim(w);
        failed = e;
      },
    };
    let ws = this.posted.get(ctx);
    if (ws === undefined) this.posted.set(ctx, (ws = []));
    ws.push(w);
    const poll = this.link.poll as () => boolean;
    const waitReadable = this.link.waitReadable;
    const pollUntil = performance.now() + Math.max(SYNC_SLICE_MS, this.spinUs / 1000);
    try {
      for (let i = 1; !w.settled; i++) {
        poll.call(this.link);
        if ((i & 15) !== 0 || w.settled) continue;
        const no = this.hopeless(ctx, src);
        if (no !== undefined) throw no;
        const now = performance.now();
        if (now >= end) throw new TimeoutError(`no message from rank ${src} with tag ${tag === ANY ? 'any' : tag} within ${limit} ms`);
        if ((i & (RELAX_EVERY - 1)) === 0) {
          relax();
          this.link.checkPeers?.();
        }
        // (past the spin budget, a ring is waited on in C: the wait delivers what it took, or leaves it for the poll)
        if (now >= pollUntil && waitReadable !== undefined) waitReadable.call(this.link, src, Math.max(1, Math.min(SYNC_WAIT_MS, end - now)));
      }
    } finally {
      if (!w.settled) {
        const at = ws.indexOf(w);
        if (at >= 0) ws.splice(at, 1);
        this.unclaim(w);
      }
    }
    if (failed !== undefined) throw failed;
    return got as Msg;
  }

  /** @internal (SyncWait): poll once for incoming messages. */
  pollOnce(): void {
    this.link.poll?.();
  }

  /**
   * A receive with a big buffer: posted first (so a message arriving while we
   * spin can be written into the buffer), then spinning on the link in slices
   * until it is done or the spin budget is spent; the timeout and abort
   * signal work as for any posted receive.
   */
  private async spinPosted(ctx: number, src: number, tag: number, opts: WaitOptions, into: Uint8Array): Promise<Msg> {
    const { promise, waiter } = this.post(ctx, src, tag, true, opts, undefined, into);
    const poll = this.link.poll as () => boolean;
    const limit = opts.timeoutMs !== undefined && opts.timeoutMs > 0 && Number.isFinite(opts.timeoutMs) ? opts.timeoutMs : Infinity;
    const end = performance.now() + Math.min(this.spinUs / 1000, limit);
    if (this.link.takeTickDebt?.() === true) await tick();
    while (!waiter.settled) {
      const sliceEnd = performance.now() + SLICE_MS;
      for (let i = 1; !waiter.settled; i++) {
        poll.call(this.link);
        if ((i & 15) === 0) {
          if (performance.now() >= sliceEnd) break;
          if ((i & (RELAX_EVERY - 1)) === 0) relax();
        }
      }
      if (waiter.settled || performance.now() >= end || opts.signal?.aborted === true) break;
      await tick();
    }
    return promise;
  }

  /** After spinning, the polls may have delivered what we wait for, or news of a lost peer: look again, then sleep. */
  private afterSpin(ctx: number, src: number, tag: number, consume: boolean, opts: WaitOptions, reportMs?: number): Promise<Msg> {
    const now = this.peek(ctx, src, tag, consume);
    if (now !== undefined) return Promise.resolve(now);
    const no = this.hopeless(ctx, src);
    if (no !== undefined) return Promise.reject(no);
    return this.post(ctx, src, tag, consume, opts, reportMs).promise;
  }

  /**
   * Post a waiter and let the event loop deliver (or time out, or abort); the
   * caller has just looked for a match and for a lost peer.
   * `reportMs`: the timeout to name in the error (the caller's whole limit, when part of it went to spinning).
   */
  private post(ctx: number, src: number, tag: number, consume: boolean, opts: WaitOptions, reportMs?: number, into?: Uint8Array): { promise: Promise<Msg>; waiter: Waiter } {
    const { timeoutMs, signal } = opts;
    let waiter: Waiter | undefined;
    if (signal?.aborted) return { promise: Promise.reject(new AbortError()), waiter: { ctx, src, tag, consume, settled: true, done: () => undefined, fail: () => undefined } };
    const promise = new Promise<Msg>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.hold(-1);
      };
      const w: Waiter = {
        ctx,
        src,
        tag,
        consume,
        into,
        settled: false,
        done: (m) => {
          w.settled = true;
          if (w.detach !== undefined) this.unclaim(w);
          cleanup();
          resolve(m);
        },
        fail: (e) => {
          w.settled = true;
          this.unclaim(w);
          cleanup();
          reject(e);
        },
      };
      waiter = w;
      const remove = (): void => {
        const ws = this.posted.get(ctx);
        const i = ws ? ws.indexOf(w) : -1;
        if (ws && i >= 0) ws.splice(i, 1);
      };
      const onAbort = (): void => {
        remove();
        w.fail(new AbortError());
      };
      if (timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          remove();
          const who = src === ANY ? 'any rank' : `rank ${src}`;
          w.fail(new TimeoutError(`no message from ${who} with tag ${tag === ANY ? 'any' : tag} within ${reportMs ?? timeoutMs} ms`));
        }, timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      let ws = this.posted.get(ctx);
      if (ws === undefined) this.posted.set(ctx, (ws = []));
      ws.push(w);
      this.hold(1);
    });
    return { promise, waiter: waiter as Waiter };
  }

  /** Say goodbye to every live peer, fail what is pending, and close the link. */
  async close(): Promise<void> {
    if (this.closedErr) return;
    const byes: Promise<void>[] = [];
    for (let r = 0; r < this.size; r++) {
      if (r === this.rank || this.gone.has(r)) continue;
      byes.push(this.send(r, { ctx: 0, tag: 0, kind: KIND_BYE, dtype: 0, bytes: new Uint8Array(0) }, true).catch(() => undefined));
    }
    await Promise.all(byes);
    this.closedErr = new SwitchboardError('ECLOSED', 'the communicator is closed');
    for (const ws of this.posted.values()) for (const w of ws.splice(0)) w.fail(this.closedErr);
    await this.link.close();
  }
}
