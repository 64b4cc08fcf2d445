/**
 * The matching engine of one rank (seed 12.2.2: receive from a given sender
 * or "don't care"). Arriving messages match posted receives in posting order;
 * the rest wait in an unexpected queue in arrival order, so two messages
 * from one sender with one tag are received in the order they were sent
 * (non-overtaking). Probes look without consuming. One engine serves every
 * communicator of the rank; context ids keep them apart.
 */
import { AbortError, SwitchboardError, TimeoutError } from '../errors.js';
import { PeerLostError } from './errors.js';
import { KIND_BYE, type Envelope, type Link } from './link.js';

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
  done(m: Msg): void;
  fail(e: Error): void;
}

function matches(w: { src: number; tag: number }, m: Msg): boolean {
  return (w.src === ANY || w.src === m.src) && (w.tag === ANY || w.tag === m.tag);
}

/** How long one spin slice may run before pending nextTick work (corked writes) gets a turn. */
const SLICE_MS = 0.025;

/** process.nextTick as a promise: lets queued ticks (a socket's uncork) run, without an event-loop turn. */
const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

export class Engine {
  readonly link: Link;
  readonly rank: number;
  readonly size: number;
  private readonly unexpected = new Map<number, Msg[]>();
  private readonly posted = new Map<number, Waiter[]>();
  private readonly members = new Map<number, (world: number) => boolean>();
  private readonly gone = new Map<number, PeerLostError>();
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
      this.incoming(this.rank, { ctx: env.ctx, tag: env.tag, kind: env.kind, dtype: env.dtype, bytes });
      return Promise.resolve();
    }
    let r: Promise<void> | void;
    try {
      r = this.link.send(to, env, owned);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (r === undefined) return Promise.resolve();
    this.hold(1);
    return r.finally(() => this.hold(-1));
  }

  private incoming(from: number, env: Envelope): void {
    if (env.kind === KIND_BYE) {
      this.lost(from, new PeerLostError(from, `rank ${from} closed its communicator`, true));
      return;
    }
    const m = env as Msg;
    m.src = from;
    const ws = this.posted.get(m.ctx);
    if (ws !== undefined) {
      for (let i = 0; i < ws.length; i++) {
        const w = ws[i] as Waiter;
        if (!matches(w, m)) continue;
        ws.splice(i, 1);
        w.done(m);
        if (w.consume) return;
        i--;
      }
    }
    let q = this.unexpected.get(m.ctx);
    if (q === undefined) this.unexpected.set(m.ctx, (q = []));
    q.push(m);
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
      const m = q[i] as Msg;
      if ((src === ANY || src === m.src) && (tag === ANY || tag === m.tag)) {
        if (consume) q.splice(i, 1);
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
  private spinFor(ctx: number, src: number, tag: number, consume: boolean, ms: number): Msg | undefined {
    const poll = this.link.poll;
    if (poll === undefined) return undefined;
    // The clock is read only once the first 16 polls found nothing (a reply usually beats them).
    let end = Infinity;
    for (let i = 1; ; i++) {
      if (poll.call(this.link)) {
        const m = this.peek(ctx, src, tag, consume);
        if (m !== undefined || this.hopeless(ctx, src) !== undefined) return m;
      }
      if ((i & 15) === 0) {
        const now = performance.now();
        if (end === Infinity) end = now + ms;
        else if (now >= end) return undefined;
      }
    }
  }

  /**
   * Spin in slices (queued ticks run in between, so a corked write of ours
   * goes out), then sleep in the event loop if nothing came.
   */
  private async spinThenWait(ctx: number, src: number, tag: number, consume: boolean, opts: WaitOptions, start: number, tickFirst = false): Promise<Msg> {
    if (tickFirst) {
      await tick();
      const q = this.peek(ctx, src, tag, consume);
      if (q !== undefined) return q;
    }
    const limit = opts.timeoutMs !== undefined && opts.timeoutMs > 0 && Number.isFinite(opts.timeoutMs) ? opts.timeoutMs : Infinity;
    // The spin counts against the caller's timeout: it never makes a receive wait longer.
    const end = start + Math.min(this.spinUs / 1000, limit);
    for (;;) {
      const m = this.spinFor(ctx, src, tag, consume, SLICE_MS);
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

  /** Wait for a matching message: receive (consume) or probe (leave it queued). */
  wait(ctx: number, src: number, tag: number, consume: boolean, opts: WaitOptions = {}): Promise<Msg> {
    const now = this.peek(ctx, src, tag, consume);
    if (now !== undefined) return Promise.resolve(now);
    const no = this.hopeless(ctx, src);
    if (no !== undefined) return Promise.reject(no);
    if (this.spinUs > 0 && this.link.poll !== undefined && opts.signal?.aborted !== true) {
      if (this.link.takeTickDebt?.() === true) return this.spinThenWait(ctx, src, tag, consume, opts, performance.now(), true);
      const m = this.spinFor(ctx, src, tag, consume, Math.min(SLICE_MS, this.spinUs / 1000));
      if (m !== undefined) return Promise.resolve(m);
      // The first slice's length comes off the budget (start is approximate by at most 16 polls).
      if (this.spinUs / 1000 > SLICE_MS) return this.spinThenWait(ctx, src, tag, consume, opts, performance.now() - SLICE_MS);
      return this.afterSpin(ctx, src, tag, consume, opts);
    }
    return this.sleep(ctx, src, tag, consume, opts);
  }

  /** After spinning, the polls may have delivered what we wait for, or news of a lost peer: look again, then sleep. */
  private afterSpin(ctx: number, src: number, tag: number, consume: boolean, opts: WaitOptions, reportMs?: number): Promise<Msg> {
    const now = this.peek(ctx, src, tag, consume);
    if (now !== undefined) return Promise.resolve(now);
    const no = this.hopeless(ctx, src);
    if (no !== undefined) return Promise.reject(no);
    return this.sleep(ctx, src, tag, consume, opts, reportMs);
  }

  /**
   * Post a waiter and let the event loop deliver (or time out, or abort); the
   * caller has just looked for a match and for a lost peer.
   * `reportMs`: the timeout to name in the error (the caller's whole limit, when part of it went to spinning).
   */
  private sleep(ctx: number, src: number, tag: number, consume: boolean, opts: WaitOptions, reportMs?: number): Promise<Msg> {
    const { timeoutMs, signal } = opts;
    if (signal?.aborted) return Promise.reject(new AbortError());
    return new Promise<Msg>((resolve, reject) => {
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
        done: (m) => {
          cleanup();
          resolve(m);
        },
        fail: (e) => {
          cleanup();
          reject(e);
        },
      };
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
