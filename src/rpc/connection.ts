/**
 * One Switchboard RPC connection, the same on both ends: it makes calls,
 * serves calls on its exposed object and on exported references, streams
 * async iterables with credit-based flow control, and keeps the reference
 * tables of both directions. It sits on a Link (links.ts) and the codec;
 * frames are encoded into one reused buffer. A frame made while nothing is
 * being written goes out at once (a lone call or reply waits for no
 * microtask); frames made while a write is in flight, or while incoming
 * frames are being delivered, leave together in one write when that is over,
 * so pipelined calls share writes. Deadlines share one timer per connection.
 */
import { performance } from 'node:perf_hooks';
import { AbortError, ProtocolError, SwitchboardError, TimeoutError } from '../errors.js';
import type { PeerInfo } from '../transport/channel.js';
import { Decoder, type DecodeHooks } from './codec-decoder.js';
import { DEFAULT_MAX_MESSAGE, Encoder, type EncodeHooks } from './codec-encoder.js';
import { REF_FUNCTION, TYPED_KINDS, type RefKind, type TypedArrayConstructor } from './codec-tags.js';
import type { Link, LinkSink } from './links.js';
import { transferListOf } from './markers.js';
import { F, MAGIC, PROTOCOL_MAJOR, PROTOCOL_MINOR, STREAM_WINDOW } from './protocol.js';
import { makeRemote, remoteInfo, type Caller } from './remote.js';
import type { CallContext, CallOptions, ClientInterceptor, OutgoingCall, RemoteIterable, ServerInterceptor } from './types.js';

export interface ConnectionOptions {
  /** Largest encoded call, result or stream item, either way (default 64 MiB). */
  maxMessageSize?: number;
  /** Default deadline of every call made on this connection. */
  timeoutMs?: number;
  /** Client side: run around every outgoing call (logging, auth headers, metrics). */
  interceptors?: readonly ClientInterceptor[];
  /** Errors nobody waits for: one-way handlers that threw, malformed peers cut off. */
  onError?: (err: Error) => void;
}

export interface ServeOptions extends ConnectionOptions {
  /** Server side: run around every incoming call. */
  serverInterceptors?: readonly ServerInterceptor[];
  /** Check the client's token; return its identity (ctx.identity) or throw to refuse (EACCES). */
  authenticate?: (hello: { token: string | undefined; peer: PeerInfo }) => unknown;
}

/** Counts for tests and monitoring. */
export interface ConnectionStats {
  /** Objects of ours the peer holds references to. */
  exportedRefs: number;
  /** The peer's objects we hold stubs for. */
  importedRefs: number;
  pendingCalls: number;
  activeHandlers: number;
  outgoingStreams: number;
  incomingStreams: number;
}

/** A call waiting for its answer. */
class Pending {
  /** performance.now() at which the call times out; 0 without a deadline (see sweepDeadlines). */
  deadline = 0;
  timeoutMs = 0;
  signal: AbortSignal | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly id: number,
    readonly method: string,
    readonly resolve: (v: unknown) => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

const settleNothing = (): void => undefined;
// One executor for every call's promise (no closure per call): it leaves the
// settle functions here, and send() moves them to the call's Pending at once.
let capturedResolve: (v: unknown) => void = settleNothing;
let capturedReject: (e: unknown) => void = settleNothing;
function capture(resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/**
 * The calls waiting for answers, by id. Ids are handed out in sequence, so a
 * slot array indexed by the id's low bits finds a call with one load and no
 * hashing (a Map costs a hash, and rehashes as entries come and go with every
 * call); an older call still waiting when its slot comes round again moves to
 * a Map on the side.
 */
class CallTable {
  private slots: (Pending | undefined)[] = new Array<Pending | undefined>(64).fill(undefined);
  private mask = 63;
  private overflow: Map<number, Pending> | undefined;
  size = 0;

  get(id: number): Pending | undefined {
    const p = this.slots[id & this.mask];
    if (p !== undefined && p.id === id) return p;
    return this.overflow?.get(id);
  }

  add(p: Pending): void {
    if (this.size >= this.slots.length >> 1) this.grow();
    this.place(p);
    this.size++;
  }

  private place(p: Pending): void {
    const i = p.id & this.mask;
    const old = this.slots[i];
    if (old !== undefined) (this.overflow ??= new Map()).set(old.id, old);
    this.slots[i] = p;
  }

  /** Remove and return the call with this id. */
  take(id: number): Pending | undefined {
    const i = id & this.mask;
    const p = this.slots[i];
    if (p !== undefined && p.id === id) {
      this.slots[i] = undefined;
      this.size--;
      return p;
    }
    const q = this.overflow?.get(id);
    if (q !== undefined) {
      (this.overflow as Map<number, Pending>).delete(id);
      this.size--;
    }
    return q;
  }

  private grow(): void {
    const all = this.values();
    this.slots = new Array<Pending | undefined>(this.slots.length * 2).fill(undefined);
    this.mask = this.slots.length - 1;
    this.overflow = undefined;
    for (const p of all) this.place(p);
  }

  values(): Pending[] {
    const out: Pending[] = [];
    for (const p of this.slots) if (p !== undefined) out.push(p);
    if (this.overflow !== undefined) for (const p of this.overflow.values()) out.push(p);
    out.sort((a, b) => a.id - b.id);
    return out;
  }
}

interface ExportEntry {
  value: object;
  kind: RefKind;
  /** How many times we sent it, minus what the peer released. */
  count: number;
}

interface ImportEntry {
  id: number;
  /** How many times we received it (released all at once when the stub is collected). */
  count: number;
  ref: WeakRef<object>;
}

interface OutStream {
  id: number;
  iterable: AsyncIterable<unknown>;
  it: AsyncIterator<unknown> | undefined;
  credit: number;
  running: boolean;
  closed: boolean;
  /** The call whose result this stream is: its context is current while the generator runs, its signal aborts on cancel. */
  ctx: Incoming | undefined;
}

let current: Incoming | undefined;

/** Binaries at least this big go beside a worker-port batch (copied once, then moved) instead of inside it. */
const ATTACH_COPY_MIN = 16 * 1024;
const EMPTY = new Uint8Array(0);
/** `writing` after a link sent a batch synchronously, until the end of the turn. */
const SENT: Promise<void> = Promise.resolve();

/**
 * The context of the call whose handler is running. Call it before the
 * handler's first `await` (keep the result): it is set only while the
 * handler starts.
 */
export function callContext(): CallContext {
  if (current === undefined) throw new SwitchboardError('EINVAL', 'callContext() is only available while an RPC handler starts (call it before the first await)');
  return current;
}

class Incoming implements CallContext {
  private controller: AbortController | undefined;
  private reason: unknown;
  cancelled = false;

  constructor(
    readonly method: string,
    readonly args: readonly unknown[],
    readonly peer: PeerInfo,
    readonly identity: unknown,
    readonly metadata: Readonly<Record<string, string>> | undefined,
    readonly deadline: number | undefined,
    readonly oneWay: boolean,
    readonly connection: string,
  ) {}

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

const objectProtoNames = new Set(Object.getOwnPropertyNames(Object.prototype));

/** The handler for `method` on `obj`, refusing what only looks like a method (constructor, Object.prototype's). */
function methodOf(obj: object, method: string): ((...a: unknown[]) => unknown) | undefined {
  if (method === 'constructor' || method === '') return undefined;
  const fn = (obj as Record<string, unknown>)[method];
  if (typeof fn !== 'function') return undefined;
  if (objectProtoNames.has(method) && fn === (Object.prototype as unknown as Record<string, unknown>)[method]) return undefined;
  return fn as (...a: unknown[]) => unknown;
}

function appendRemoteStack(err: unknown, where: string): unknown {
  if (!(err instanceof Error)) return err;
  const remote = err.stack ?? `${err.name}: ${err.message}`;
  const local = new Error().stack?.split('\n').slice(2).join('\n') ?? '';
  err.stack = `${remote}\n    --- remote side (${where}) above, local side below ---\n${local}`;
  return err;
}

/** An error that can always be encoded, for when the real one cannot. */
function plainError(err: unknown): Error {
  const e = err instanceof Error ? err : undefined;
  const out = new Error(e ? e.message : String(err));
  if (e) {
    out.name = e.name;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') (out as Error & { code?: unknown }).code = code;
    if (e.stack !== undefined) out.stack = e.stack;
  }
  return out;
}

class RemoteStream implements RemoteIterable<unknown> {
  constructor(private readonly state: InStreamState) {}
  next(): Promise<IteratorResult<unknown, undefined>> {
    return this.state.next();
  }
  return(): Promise<IteratorResult<unknown, undefined>> {
    this.state.cancel();
    return Promise.resolve({ done: true, value: undefined });
  }
  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** The receiving end of a stream; held by the connection, not by the iterator (so dropping the iterator cancels). */
class InStreamState {
  queue: unknown[] = [];
  done = false;
  error: unknown;
  consumed = 0;
  waiter: { resolve: (r: IteratorResult<unknown, undefined>) => void; reject: (e: unknown) => void } | undefined;

  constructor(
    readonly conn: RpcConnection,
    readonly id: number,
  ) {}

  next(): Promise<IteratorResult<unknown, undefined>> {
    if (this.queue.length > 0) {
      const value = this.queue.shift();
      if (!this.done && ++this.consumed >= STREAM_WINDOW / 2) {
        this.conn.grantCredit(this.id, this.consumed);
        this.consumed = 0;
      }
      return Promise.resolve({ done: false, value });
    }
    if (this.error !== undefined) {
      const e = this.error;
      this.error = undefined;
      return Promise.reject(e);
    }
    if (this.done) return Promise.resolve({ done: true, value: undefined });
    if (this.waiter) return Promise.reject(new SwitchboardError('EINVAL', 'next() called again before the previous call settled'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  push(value: unknown): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      if (++this.consumed >= STREAM_WINDOW / 2) {
        this.conn.grantCredit(this.id, this.consumed);
        this.consumed = 0;
      }
      w.resolve({ done: false, value });
    } else this.queue.push(value);
  }

  end(err: unknown): void {
    if (this.done) return;
    this.done = true;
    if (err !== undefined) this.error = err;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      if (err !== undefined) {
        this.error = undefined;
        w.reject(err);
      } else w.resolve({ done: true, value: undefined });
    }
  }

  cancel(): void {
    if (this.done) return;
    this.queue.length = 0;
    this.end(undefined);
    this.conn.cancelStream(this.id);
  }
}

type State = 'hello' | 'open' | 'closed';

export class RpcConnection implements Caller {
  readonly link: Link;
  readonly role: 'client' | 'server';
  private state: State = 'hello';
  private readonly out: Encoder;
  private readonly dec = new Decoder(new Uint8Array(0));
  private readonly maxMessageSize: number;
  private readonly defaultTimeout: number | undefined;
  private readonly interceptors: readonly ClientInterceptor[];
  private readonly serverInterceptors: readonly ServerInterceptor[];
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly authenticate: ServeOptions['authenticate'];
  private root: object | undefined;
  private identity: unknown;
  private localClose = false;
  private closeError: SwitchboardError | undefined;
  private handshake: { resolve: () => void; reject: (e: unknown) => void } | undefined;

  private nextCall = 1;
  private readonly pending = new CallTable();
  /** Calls with a deadline (some perhaps settled already), and the timer for the earliest. */
  private readonly deadlines: Pending[] = [];
  private timed = 0;
  private sweepTimer: ReturnType<typeof setTimeout> | undefined;
  private sweepAt = Infinity;
  private readonly incoming = new Map<number, Incoming>();

  private nextRef = 1;
  private readonly exports = new Map<number, ExportEntry>();
  private readonly exportIds = new Map<object, number>();
  private readonly imports = new Map<number, ImportEntry>();
  private readonly importRegistry = new FinalizationRegistry<ImportEntry>((e) => this.importCollected(e));

  private nextStream = 1;
  private readonly outStreams = new Map<number, OutStream>();
  private readonly inStreams = new Map<number, InStreamState>();
  private readonly streamRegistry = new FinalizationRegistry<InStreamState>((s) => s.cancel());

  // Per frame being encoded: what to undo if encoding fails.
  private frameStreams: OutStream[] = [];
  private frameRefs: number[] = [];
  private frameTransfer: Set<ArrayBuffer> | undefined;
  private replying: Incoming | undefined;
  // Per batch being built (ports): binaries beside the batch.
  private attachmentsOut: unknown[] | undefined;
  private transferOut: ArrayBuffer[] | undefined;
  private attachmentsIn: readonly unknown[] | undefined;

  private flushQueued = false;
  private flushing = false;
  /** Frames are being delivered: replies wait for drained(). */
  private receiving = false;
  /** Calls settled since the last drained(). */
  private settledInBatch = 0;
  private writing: Promise<void> | undefined;

  private resolveClosed!: () => void;
  /** Resolves when the connection is closed, for whatever reason. */
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));
  /** Why the connection closed (ECLOSED after close(), ECONNRESET when the peer went away...). */
  get error(): SwitchboardError | undefined {
    return this.closeError;
  }

  constructor(link: Link, role: 'client' | 'server', options: ServeOptions & { root?: object; version?: readonly [number, number] } = {}) {
    this.link = link;
    this.role = role;
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE;
    const encodeHooks: EncodeHooks = {
      ref: (v, k) => this.exportRef(v, k),
      stream: (it) => this.exportStream(it),
      attach: (v) => this.attach(v),
    };
    const decodeHooks: DecodeHooks = {
      ref: (id, k) => this.importRef(id, k),
      home: (id) => this.home(id),
      stream: (id) => this.importStream(id),
      attachment: (i) => this.attachment(i),
    };
    this.sink = { frame: (b, s, e, a, owned) => this.frame(b, s, e, a, owned === true), drained: () => this.drained(), closed: (err) => this.linkClosed(err) };
    this.out = new Encoder({ maxMessageSize: this.maxMessageSize, hooks: encodeHooks });
    this.dec.hooks = decodeHooks;
    this.defaultTimeout = options.timeoutMs;
    this.interceptors = options.interceptors ?? [];
    this.serverInterceptors = options.serverInterceptors ?? [];
    this.onError = options.onError;
    this.authenticate = options.authenticate;
    this.root = options.root;
    this.version = options.version ?? [PROTOCOL_MAJOR, PROTOCOL_MINOR];
  }

  private readonly version: readonly [number, number];
  private readonly sink: LinkSink;

  get peer(): PeerInfo {
    return this.link.peer;
  }

  get description(): string {
    return this.link.description;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  stats(): ConnectionStats {
    return {
      exportedRefs: this.exports.size,
      importedRefs: this.imports.size,
      pendingCalls: this.pending.size,
      activeHandlers: this.incoming.size,
      outgoingStreams: this.outStreams.size,
      incomingStreams: this.inStreams.size,
    };
  }

  /** Client: start the link, say hello, wait for the welcome. */
  open(token: string | undefined, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new TimeoutError(`no answer to the RPC handshake from ${this.description} within ${timeoutMs} ms`));
        this.link.destroy();
      }, timeoutMs);
      this.handshake = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.link.start(this.sink);
      const start = this.begin(F.HELLO);
      for (const b of MAGIC) this.out.u8(b);
      this.out.u8(this.version[0]);
      this.out.u8(this.version[1]);
      this.out.encode(token === undefined ? {} : { token }, 'hello');
      this.commit(start);
    });
  }

  /** Server: start the link and wait for the client's hello. */
  serve(): void {
    this.link.start(this.sink);
  }

  /** The exposed object as a stub (client side). */
  remote(): object {
    return makeRemote(this, 0, 'object', undefined);
  }

  // ---------------------------------------------------------------- output

  private begin(type: number): number {
    const o = this.out;
    const start = o.pos;
    o.frameStart = start;
    o.ensure(5);
    o.pos = start + 4;
    o.buf[o.pos++] = type;
    return start;
  }

  private commit(start: number): void {
    const o = this.out;
    o.view.setUint32(start, o.pos - start - 4, false);
    o.frameStart = o.pos;
    if (this.frameRefs.length !== 0) this.frameRefs.length = 0; // setting length is a runtime call even on an empty array
    this.frameTransfer = undefined;
    if (this.frameStreams.length > 0) {
      const started = this.frameStreams;
      this.frameStreams = [];
      for (const s of started) void this.pump(s);
    }
    // Nothing being written: this frame goes to the link at once (a lone call
    // or reply waits for no microtask). While a write is in flight, frames
    // gather in the buffer and leave together when it is done (written());
    // while frames are coming in, until the link has delivered all it read (drained()).
    if (this.writing === undefined && !this.receiving) {
      if (this.flushing) {
        if (!this.flushQueued) {
          this.flushQueued = true;
          queueMicrotask(this.flush);
        }
      } else this.flush();
    }
  }

  private rollback(start: number, attachments: number): void {
    const o = this.out;
    o.pos = start;
    o.frameStart = start;
    for (const id of this.frameRefs) {
      const e = this.exports.get(id);
      if (e && --e.count <= 0) this.dropExport(id, e);
    }
    this.frameRefs.length = 0;
    for (const s of this.frameStreams) this.outStreams.delete(s.id);
    this.frameStreams = [];
    this.frameTransfer = undefined;
    if (this.attachmentsOut) this.attachmentsOut.length = attachments;
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.writing !== undefined || this.out.pos === 0 || this.state === 'closed') return;
    // Sockets with nothing queued take the batch straight from the encoder's buffer: no copy.
    let sent = -1;
    if (this.link.sendNow !== undefined && this.attachmentsOut === undefined && this.transferOut === undefined) {
      sent = this.link.sendNow(this.out.buf.subarray(0, this.out.pos));
      if (sent === this.out.pos) {
        this.out.reset();
        this.writing = SENT;
        queueMicrotask(this.written);
        return;
      }
    }
    // Ports move the batch's buffer, so it must be its own; channels copy it into the kernel.
    const batch = sent > 0 ? this.out.copy(sent) : this.link.attachments ? this.out.copy() : this.out.copyPooled();
    const att = this.attachmentsOut;
    const tr = this.transferOut;
    this.attachmentsOut = undefined;
    this.transferOut = undefined;
    this.out.reset();
    // A link that sends at once (ports) can still deliver synchronously to
    // code that commits again: such frames wait for a microtask, not recursion.
    this.flushing = true;
    let p: Promise<void> | undefined;
    try {
      p = this.link.send(batch, att, tr);
    } finally {
      this.flushing = false;
    }
    if (p !== undefined) {
      this.writing = p;
      p.then(this.written, this.writeFailed);
    } else {
      // Sent already (ports): frames committed in the rest of this turn still go as one batch.
      this.writing = SENT;
      queueMicrotask(this.written);
    }
  };

  /** The link delivered every frame it had: send what they produced, as one batch. */
  private drained(): void {
    this.receiving = false;
    const many = this.settledInBatch > 1;
    this.settledInBatch = 0;
    if (this.writing !== undefined) return;
    if (this.out.pos > 0) this.flush();
    else if (many && this.state === 'open') {
      // Several calls were answered: the calls their callers make next, in
      // this turn's microtasks, leave together rather than the first alone.
      this.writing = SENT;
      queueMicrotask(this.written);
    }
  }

  private readonly written = (): void => {
    this.writing = undefined;
    if (this.out.pos > 0) this.flush();
  };

  private readonly writeFailed = (err: unknown): void => {
    this.writing = undefined;
    this.link.destroy(err as Error);
  };

  /** Wait until everything queued has been handed to the link. */
  private async drain(): Promise<void> {
    for (;;) {
      if (this.writing !== undefined) {
        await this.writing.catch(() => undefined);
        continue;
      }
      if (this.out.pos > 0 && this.state !== 'closed') {
        this.flush();
        if (this.writing !== undefined) continue;
      }
      return;
    }
  }

  private noteTransfer(value: unknown): void {
    if (!this.link.attachments || typeof value !== 'object' || value === null) return;
    const list = transferListOf(value);
    if (list === undefined) return;
    this.frameTransfer ??= new Set();
    for (const b of list) this.frameTransfer.add(b);
  }

  // ---------------------------------------------------------------- calls out

  call(target: number, method: string, args: unknown[], options: CallOptions | undefined): Promise<unknown> {
    if (this.interceptors.length === 0) return this.send(target, method, args, options, options?.metadata);
    const call: OutgoingCall = { method, args, metadata: { ...options?.metadata }, oneWay: options?.oneWay === true };
    const run = (i: number): Promise<unknown> => {
      const ic = this.interceptors[i];
      if (ic === undefined) return this.send(target, call.method, call.args, options, Object.keys(call.metadata).length ? call.metadata : undefined);
      return ic(call, () => run(i + 1));
    };
    return run(0);
  }

  private send(target: number, method: string, args: unknown[], options: CallOptions | undefined, metadata: Record<string, string> | undefined): Promise<unknown> {
    if (this.state !== 'open') return Promise.reject(this.notOpen());
    const oneWay = options?.oneWay === true;
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new AbortError(`call ${method}() aborted before it was sent`, { cause: signal.reason }));
    const timeoutMs = options?.timeoutMs ?? this.defaultTimeout;
    const id = oneWay ? 0 : this.nextCall++;
    const o = this.out;
    const att = this.attachmentsOut?.length ?? 0;
    const start = this.begin(oneWay ? F.NOTIFY : F.CALL);
    try {
      if (!oneWay) o.varint(id);
      o.varint(target);
      o.string(method);
      o.u8((timeoutMs !== undefined ? 1 : 0) | (metadata !== undefined ? 2 : 0));
      if (timeoutMs !== undefined) o.varint(Math.max(0, Math.ceil(timeoutMs)));
      if (metadata !== undefined) o.encode(metadata, 'metadata');
      if (this.link.attachments) for (const a of args) this.noteTransfer(a);
      o.encode(args, 'args');
    } catch (err) {
      this.rollback(start, att);
      return Promise.reject(err);
    }
    if (oneWay) {
      this.commit(start);
      return Promise.resolve(undefined);
    }
    // Registered before the frame leaves: commit() may write it at once.
    const promise = new Promise<unknown>(capture);
    const p = new Pending(id, method, capturedResolve, capturedReject);
    if (timeoutMs !== undefined) this.addDeadline(p, timeoutMs);
    if (signal !== undefined) {
      p.signal = signal;
      p.onAbort = () => this.giveUp(id, new AbortError(`call ${method}() aborted`, { cause: signal.reason }));
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    this.pending.add(p);
    this.commit(start);
    return promise;
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.take(id);
    if (p === undefined) return undefined;
    if (p.deadline !== 0 && --this.timed === 0) {
      // No deadline left: no timer either (it would hold the process up).
      this.deadlines.length = 0;
      if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
      this.sweepTimer = undefined;
      this.sweepAt = Infinity;
    }
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
    return p;
  }

  /**
   * Deadlines share one timer, armed for the earliest of them, instead of a
   * setTimeout and clearTimeout per call. Settled calls stay in the list until
   * a sweep or a compaction drops them.
   */
  private addDeadline(p: Pending, timeoutMs: number): void {
    const ms = timeoutMs > 0 ? timeoutMs : 0;
    p.timeoutMs = timeoutMs;
    p.deadline = performance.now() + ms;
    this.timed++;
    const list = this.deadlines;
    if (list.length >= 64 && list.length > 2 * this.timed) {
      let n = 0;
      for (const q of list) if (this.pending.get(q.id) === q) list[n++] = q;
      list.length = n;
    }
    list.push(p);
    if (p.deadline < this.sweepAt) this.armSweep(p.deadline, ms);
  }

  private armSweep(at: number, ms: number): void {
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepAt = at;
    this.sweepTimer = setTimeout(this.sweepDeadlines, ms);
  }

  private readonly sweepDeadlines = (): void => {
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    const now = performance.now();
    const list = this.deadlines;
    const expired: Pending[] = [];
    let next = Infinity;
    let n = 0;
    for (const p of list) {
      if (this.pending.get(p.id) !== p) continue;
      // Timers count whole milliseconds from a cached loop time: within 1 ms is due.
      if (p.deadline - now < 1) expired.push(p);
      else {
        list[n++] = p;
        if (p.deadline < next) next = p.deadline;
      }
    }
    list.length = n;
    if (next !== Infinity) this.armSweep(next, Math.ceil(next - now));
    for (const p of expired) this.giveUp(p.id, new TimeoutError(`call ${p.method}() got no answer within ${p.timeoutMs} ms`));
  };

  /** Deadline or abort: reject here, tell the server to abort its handler. */
  private giveUp(id: number, err: Error): void {
    const p = this.settle(id);
    if (p === undefined) return;
    p.reject(err);
    if (this.state !== 'open') return;
    const start = this.begin(F.CANCEL);
    this.out.varint(id);
    this.commit(start);
  }

  private notOpen(): SwitchboardError {
    return this.closeError ?? new SwitchboardError('ECLOSED', 'the RPC connection is not open yet');
  }

  // ---------------------------------------------------------------- input

  private frame(buf: Uint8Array, start: number, end: number, attachments: readonly unknown[] | undefined, owned: boolean): void {
    if (this.state === 'closed') return;
    const d = this.dec;
    // Frames of one chunk share its buffer and (lazily made) view.
    if (d.buf !== buf) d.buf = buf;
    d.pos = start;
    d.end = end;
    d.owned = owned;
    this.receiving = true;
    this.attachmentsIn = attachments;
    try {
      const type = d.u8();
      if (this.state === 'hello') this.hello(type, d);
      else this.dispatch(type, d);
    } catch (err) {
      this.protocolFailure(err);
    } finally {
      this.attachmentsIn = undefined;
      if (buf.length > 1024 * 1024) d.buf = EMPTY; // do not keep a big frame alive
    }
  }

  private done(d: Decoder): void {
    if (d.pos !== d.end) throw new ProtocolError(`${d.end - d.pos} unexpected bytes at the end of a frame`);
  }

  private dispatch(type: number, d: Decoder): void {
    switch (type) {
      case F.RESULT: {
        const id = d.varint();
        const value = d.decode();
        this.done(d);
        this.settledInBatch++;
        this.settle(id)?.resolve(value);
        return;
      }
      case F.ERROR: {
        const id = d.varint();
        const value = d.decode();
        this.done(d);
        const p = this.settle(id);
        this.settledInBatch++;
        if (p) p.reject(appendRemoteStack(value, this.description));
        return;
      }
      case F.CALL:
      case F.NOTIFY:
        return this.incomingCall(d, type === F.NOTIFY);
      case F.CANCEL: {
        const id = d.varint();
        this.done(d);
        const ctx = this.incoming.get(id);
        if (ctx) {
          this.incoming.delete(id);
          ctx.abort(new AbortError(`the caller cancelled ${ctx.method}()`));
        }
        return;
      }
      case F.S_NEXT: {
        const id = d.varint();
        const value = d.decode();
        this.done(d);
        const s = this.inStreams.get(id);
        if (s === undefined) return; // cancelled here; the value was decoded so its references are counted
        if (s.queue.length >= STREAM_WINDOW) throw new ProtocolError(`stream ${id}: the sender ignored flow control`);
        s.push(value);
        return;
      }
      case F.S_END:
      case F.S_ERROR: {
        const id = d.varint();
        const err = type === F.S_ERROR ? appendRemoteStack(d.decode(), this.description) : undefined;
        this.done(d);
        const s = this.inStreams.get(id);
        if (s === undefined) return;
        this.inStreams.delete(id);
        s.end(err ?? undefined);
        return;
      }
      case F.S_CREDIT: {
        const id = d.varint();
        const n = d.varint();
        this.done(d);
        const s = this.outStreams.get(id);
        if (s === undefined) return;
        s.credit += n;
        if (s.credit > STREAM_WINDOW) throw new ProtocolError(`stream ${id}: more credit than the window`);
        if (!s.running) void this.pump(s);
        return;
      }
      case F.S_CANCEL: {
        const id = d.varint();
        this.done(d);
        const s = this.outStreams.get(id);
        if (s === undefined) return;
        this.closeOutStream(s);
        return;
      }
      case F.RELEASE: {
        const id = d.varint();
        const n = d.varint();
        this.done(d);
        const e = this.exports.get(id);
        if (e !== undefined && (e.count -= n) <= 0) this.dropExport(id, e);
        return;
      }
      default:
        throw new ProtocolError(`unknown frame type ${type}`);
    }
  }

  private hello(type: number, d: Decoder): void {
    if (this.role === 'client') {
      if (type === F.REFUSE) {
        const err = d.decode();
        this.handshake?.reject(err instanceof Error ? err : new ProtocolError('the server refused the connection'));
        this.handshake = undefined;
        this.link.destroy();
        return;
      }
      if (type !== F.WELCOME) throw new ProtocolError(`expected the server's welcome, got frame type ${type}`);
      for (const b of MAGIC) if (d.u8() !== b) throw new ProtocolError('the peer does not speak Switchboard RPC');
      const major = d.u8();
      d.u8();
      this.done(d);
      if (major !== this.version[0]) {
        const err = new ProtocolError(`the server speaks Switchboard RPC ${major}.x, this client ${this.version[0]}.x`, { code: 'EVERSION' });
        this.handshake?.reject(err);
        this.handshake = undefined;
        this.link.destroy(err);
        return;
      }
      this.state = 'open';
      this.handshake?.resolve();
      this.handshake = undefined;
      return;
    }
    if (type !== F.HELLO) throw new ProtocolError(`expected a hello, got frame type ${type}`);
    for (const b of MAGIC) if (d.u8() !== b) throw new ProtocolError('the peer does not speak Switchboard RPC');
    const major = d.u8();
    const minor = d.u8();
    const opts = d.decode() as { token?: unknown } | null;
    this.done(d);
    if (major !== this.version[0]) {
      void this.refuse(new ProtocolError(`this server speaks Switchboard RPC ${this.version[0]}.x, the client ${major}.${minor}`, { code: 'EVERSION' }));
      return;
    }
    const token = typeof opts === 'object' && opts !== null && typeof opts.token === 'string' ? opts.token : undefined;
    this.state = 'closed'; // nothing else is accepted until the hello is answered
    const welcome = (): void => {
      this.state = 'open';
      const start = this.begin(F.WELCOME);
      for (const b of MAGIC) this.out.u8(b);
      this.out.u8(this.version[0]);
      this.out.u8(this.version[1]);
      this.commit(start);
    };
    if (this.authenticate === undefined) return welcome();
    Promise.resolve()
      .then(() => this.authenticate?.({ token, peer: this.peer }))
      .then(
        (identity) => {
          this.identity = identity;
          welcome();
        },
        (err: unknown) => {
          this.state = 'hello';
          const e = err instanceof SwitchboardError ? err : new SwitchboardError('EACCES', `authentication failed: ${err instanceof Error ? err.message : String(err)}`);
          void this.refuse(e);
        },
      );
  }

  private async refuse(err: Error): Promise<void> {
    this.state = 'hello';
    const start = this.begin(F.REFUSE);
    this.out.encode(plainError(err), 'error');
    this.commit(start);
    this.state = 'open'; // let the flush through
    this.flush();
    await this.drain();
    this.state = 'hello';
    this.onError?.(err);
    await this.link.close().catch(() => undefined);
    this.teardown(err instanceof SwitchboardError ? err : new SwitchboardError('EACCES', err.message));
  }

  private incomingCall(d: Decoder, oneWay: boolean): void {
    const id = oneWay ? 0 : d.varint();
    const target = d.varint();
    const method = d.string();
    const flags = d.u8();
    if (flags > 3) throw new ProtocolError(`call flags 0x${flags.toString(16)}`);
    const timeout = flags & 1 ? d.varint() : undefined;
    const metadata = flags & 2 ? d.decode() : undefined;
    if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) throw new ProtocolError('call metadata must be an object');
    const args = d.decode();
    if (!Array.isArray(args)) throw new ProtocolError('call arguments must be an array');
    this.done(d);
    if (!oneWay && this.incoming.size !== 0 && this.incoming.has(id)) throw new ProtocolError(`call id ${id} is already in progress`);

    let obj: object | undefined;
    let fn: ((...a: unknown[]) => unknown) | undefined;
    let self: unknown;
    if (target === 0) {
      obj = this.root;
      if (obj !== undefined) {
        fn = methodOf(obj, method);
        self = obj;
      }
    } else {
      const e = this.exports.get(target);
      obj = e?.value;
      if (e !== undefined) {
        if (e.kind === REF_FUNCTION) fn = method === '' ? (e.value as (...a: unknown[]) => unknown) : undefined;
        else {
          fn = methodOf(e.value, method);
          self = e.value;
        }
      }
    }
    const ctx = new Incoming(
      method,
      args,
      this.peer,
      this.identity,
      metadata as Record<string, string> | undefined,
      timeout === undefined ? undefined : Date.now() + timeout,
      oneWay,
      this.description,
    );
    if (fn === undefined) {
      const err =
        obj === undefined
          ? new SwitchboardError('ENOENT', target === 0 ? 'this side exposes no object' : `no object with reference id ${target} (released?)`)
          : new SwitchboardError('ENOENT', `no method ${method}()`);
      this.reply(id, ctx, err, true);
      return;
    }
    const handler = fn;
    let result: unknown;
    let threw = false;
    if (this.serverInterceptors.length === 0) {
      const prev = current;
      current = ctx;
      try {
        result = handler.apply(self, args);
      } catch (err) {
        threw = true;
        result = err;
      }
      current = prev;
    } else {
      const invoke = (): unknown => {
        const prev = current;
        current = ctx;
        try {
          return handler.apply(self, args);
        } finally {
          current = prev;
        }
      };
      const run = (i: number): Promise<unknown> => {
        const ic = this.serverInterceptors[i];
        if (ic === undefined) return Promise.resolve(invoke());
        return ic(ctx, () => run(i + 1));
      };
      try {
        result = run(0);
      } catch (err) {
        threw = true;
        result = err;
      }
    }
    if (threw) {
      this.reply(id, ctx, result, true);
      return;
    }
    if (isThenable(result)) {
      // Only a call still running can be cancelled: a handler that returned
      // at once is answered without ever entering the table.
      if (!oneWay) this.incoming.set(id, ctx);
      result.then(
        (v) => this.reply(id, ctx, v, false),
        (e: unknown) => this.reply(id, ctx, e, true),
      );
    } else this.reply(id, ctx, result, false);
  }

  private reply(id: number, ctx: Incoming, value: unknown, isError: boolean): void {
    if (ctx.oneWay) {
      if (isError) this.onError?.(value instanceof Error ? value : new Error(String(value)));
      return;
    }
    const running = this.incoming.size === 0 ? undefined : this.incoming.get(id);
    if (running === ctx) this.incoming.delete(id);
    else if (ctx.cancelled || running !== undefined) return;
    if (this.state !== 'open') return;
    const att = this.attachmentsOut?.length ?? 0;
    let start = this.begin(isError ? F.ERROR : F.RESULT);
    try {
      this.out.varint(id);
      this.noteTransfer(value);
      this.replying = ctx;
      this.out.encode(value, isError ? 'error' : 'result');
    } catch (err) {
      this.rollback(start, att);
      start = this.begin(F.ERROR);
      this.out.varint(id);
      try {
        this.out.encode(isError ? plainError(value) : err, 'error');
      } catch {
        this.out.pos = start + 5;
        this.out.varint(id);
        this.out.encode(plainError(err), 'error');
      }
    } finally {
      this.replying = undefined;
    }
    this.commit(start);
  }

  // ---------------------------------------------------------------- references

  private exportRef(value: object, kind: RefKind): { home: boolean; id: number } {
    const info = remoteInfo(value);
    if (info !== undefined && info.owner === this) return { home: true, id: info.target };
    let id = this.exportIds.get(value);
    let e: ExportEntry | undefined;
    if (id === undefined) {
      id = this.nextRef++;
      e = { value, kind, count: 0 };
      this.exportIds.set(value, id);
      this.exports.set(id, e);
    } else e = this.exports.get(id) as ExportEntry;
    e.count++;
    this.frameRefs.push(id);
    return { home: false, id };
  }

  private dropExport(id: number, e: ExportEntry): void {
    this.exports.delete(id);
    if (this.exportIds.get(e.value) === id) this.exportIds.delete(e.value);
  }

  private home(id: number): unknown {
    const e = this.exports.get(id);
    if (e === undefined) throw new ProtocolError(`the peer sent back reference ${id}, which it does not hold`);
    return e.value;
  }

  private importKind(kind: RefKind): 'object' | 'function' {
    return kind === REF_FUNCTION ? 'function' : 'object';
  }

  // A stub for the peer's object `id`, one per id while it lives.
  private importRef(id: number, kind: RefKind): unknown {
    const e = this.imports.get(id);
    const live = e?.ref.deref();
    if (e !== undefined && live !== undefined) {
      e.count++;
      return live;
    }
    const stub = makeRemote(this, id, this.importKind(kind), undefined);
    const entry: ImportEntry = { id, count: 1, ref: new WeakRef(stub) };
    this.imports.set(id, entry);
    this.importRegistry.register(stub, entry);
    return stub;
  }

  private importCollected(e: ImportEntry): void {
    if (this.imports.get(e.id) === e) this.imports.delete(e.id);
    if (this.state !== 'open') return;
    const start = this.begin(F.RELEASE);
    this.out.varint(e.id);
    this.out.varint(e.count);
    this.commit(start);
  }

  // ---------------------------------------------------------------- streams

  private exportStream(iterable: AsyncIterable<unknown>): number {
    const s: OutStream = { id: this.nextStream++, iterable, it: undefined, credit: STREAM_WINDOW, running: false, closed: false, ctx: this.replying };
    this.outStreams.set(s.id, s);
    this.frameStreams.push(s);
    return s.id;
  }

  private async pump(s: OutStream): Promise<void> {
    if (s.running) return;
    s.running = true;
    try {
      s.it ??= s.iterable[Symbol.asyncIterator]();
      while (s.credit > 0 && !s.closed && this.state === 'open') {
        const r = await this.nextItem(s);
        if (s.closed || this.state !== 'open') {
          if (!r.done) void Promise.resolve(s.it.return?.()).catch(() => undefined);
          return;
        }
        if (r.done) {
          this.outStreams.delete(s.id);
          s.closed = true;
          const start = this.begin(F.S_END);
          this.out.varint(s.id);
          this.commit(start);
          return;
        }
        s.credit--;
        const att = this.attachmentsOut?.length ?? 0;
        const start = this.begin(F.S_NEXT);
        try {
          this.out.varint(s.id);
          this.out.encode(r.value, `stream item`);
          this.commit(start);
        } catch (err) {
          this.rollback(start, att);
          throw err;
        }
      }
    } catch (err) {
      if (!s.closed && this.state === 'open') {
        this.outStreams.delete(s.id);
        s.closed = true;
        void Promise.resolve(s.it?.return?.()).catch(() => undefined);
        const start = this.begin(F.S_ERROR);
        this.out.varint(s.id);
        try {
          this.out.encode(err, 'error');
        } catch {
          this.out.pos = start + 5;
          this.out.varint(s.id);
          this.out.encode(plainError(err), 'error');
        }
        this.commit(start);
      }
    } finally {
      s.running = false;
    }
  }

  /** it.next() with the producing call's context current, so a generator body can call callContext() at its start. */
  private nextItem(s: OutStream): Promise<IteratorResult<unknown>> {
    const it = s.it as AsyncIterator<unknown>;
    if (s.ctx === undefined) return it.next();
    const prev = current;
    current = s.ctx;
    try {
      return it.next();
    } finally {
      current = prev;
    }
  }

  private closeOutStream(s: OutStream, reason?: unknown): void {
    this.outStreams.delete(s.id);
    if (s.closed) return;
    s.closed = true;
    s.ctx?.abort(reason ?? new AbortError('the receiver cancelled the stream'));
    // A generator suspended at a yield can be returned at once; one busy in next() finishes it first.
    if (!s.running && s.it !== undefined) void Promise.resolve(s.it.return?.()).catch(() => undefined);
  }

  private importStream(id: number): unknown {
    if (this.inStreams.has(id)) throw new ProtocolError(`stream id ${id} is already in use`);
    const state = new InStreamState(this, id);
    this.inStreams.set(id, state);
    const it = new RemoteStream(state);
    this.streamRegistry.register(it, state);
    return it;
  }

  /** @internal the receiver has taken n items: let the sender send n more. */
  grantCredit(id: number, n: number): void {
    if (this.state !== 'open' || !this.inStreams.has(id)) return;
    const start = this.begin(F.S_CREDIT);
    this.out.varint(id);
    this.out.varint(n);
    this.commit(start);
  }

  /** @internal the receiver stopped early. */
  cancelStream(id: number): void {
    if (!this.inStreams.delete(id) || this.state !== 'open') return;
    const start = this.begin(F.S_CANCEL);
    this.out.varint(id);
    this.commit(start);
  }

  private attachment(index: number): unknown {
    const a = this.attachmentsIn;
    if (a === undefined || index >= a.length) throw new ProtocolError(`attachment ${index} is missing`);
    return a[index];
  }

  private attach(v: ArrayBuffer | ArrayBufferView): number {
    if (!this.link.attachments) return -1;
    const buffer = v instanceof ArrayBuffer ? v : (v.buffer as ArrayBuffer);
    let sent: unknown;
    let moved: ArrayBuffer;
    if (this.frameTransfer?.has(buffer)) {
      sent = v;
      moved = buffer;
    } else if (v.byteLength < ATTACH_COPY_MIN) {
      return -1; // small: copying it into the batch costs less than a second transferred buffer
    } else if (v instanceof ArrayBuffer) {
      moved = v.slice(0);
      sent = moved;
    } else {
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
      moved = bytes.buffer;
      if (v instanceof DataView) sent = new DataView(moved);
      else if (v instanceof Uint8Array) sent = bytes;
      else {
        const proto = Object.getPrototypeOf(v) as object;
        const ctor = TYPED_KINDS.find((c) => c.prototype === proto) as TypedArrayConstructor | undefined;
        if (ctor === undefined) return -1;
        sent = new ctor(moved);
      }
    }
    this.attachmentsOut ??= [];
    this.transferOut ??= [];
    if (!this.transferOut.includes(moved)) this.transferOut.push(moved);
    this.attachmentsOut.push(sent);
    return this.attachmentsOut.length - 1;
  }

  // ---------------------------------------------------------------- closing

  private linkClosed(err: Error | undefined): void {
    if (this.closeError !== undefined) return;
    if (this.localClose) return this.teardown(new SwitchboardError('ECLOSED', 'the RPC connection was closed'));
    if (err instanceof SwitchboardError && (err.code === 'EPROTO' || err.code === 'EMSGSIZE' || err.code === 'EVERSION')) {
      this.onError?.(err);
      return this.teardown(err);
    }
    this.teardown(new SwitchboardError('ECONNRESET', `the RPC peer ${this.description} went away`, err === undefined ? undefined : { cause: err }));
  }

  private protocolFailure(err: unknown): void {
    const e = err instanceof SwitchboardError ? err : new ProtocolError(`bad frame: ${String(err)}`, { cause: err });
    this.onError?.(e);
    this.link.destroy(e);
    this.teardown(e);
  }

  /** Close after sending what is queued; calls still waiting reject with ECLOSED. */
  async close(): Promise<void> {
    if (this.state === 'closed' && this.closeError !== undefined) return this.closed;
    this.localClose = true;
    await this.drain();
    await this.link.close().catch(() => undefined);
    this.teardown(new SwitchboardError('ECLOSED', 'the RPC connection was closed'));
  }

  /** Drop the connection at once. */
  destroy(err?: Error): void {
    this.localClose = true;
    this.link.destroy(err);
    this.teardown(err instanceof SwitchboardError ? err : new SwitchboardError('ECLOSED', 'the RPC connection was destroyed', { cause: err }));
  }

  private teardown(err: SwitchboardError): void {
    if (this.closeError !== undefined) return;
    this.closeError = err;
    this.state = 'closed';
    this.handshake?.reject(err);
    this.handshake = undefined;
    for (const p of this.pending.values()) this.settle(p.id)?.reject(err);
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    this.deadlines.length = 0;
    for (const ctx of this.incoming.values()) ctx.abort(err);
    this.incoming.clear();
    for (const s of this.outStreams.values()) this.closeOutStream(s, err);
    this.outStreams.clear();
    for (const s of this.inStreams.values()) s.end(err);
    this.inStreams.clear();
    this.exports.clear();
    this.exportIds.clear();
    this.imports.clear();
    this.out.reset();
    this.resolveClosed();
  }
}
