/**
 * The ONC RPC client (RFC 5531): one connection, many calls in flight matched
 * by xid, a timeout per call, retransmission with exponential backoff on UDP,
 * a fresh connection after a TCP or Unix-socket connection drops, and batched
 * calls that expect no reply. Calls made in the same tick leave in one write.
 * On TCP and Unix sockets a call that went out in one system call is
 * followed by a short polled read of the socket (record-stream.ts), so that
 * a quick reply settles without waiting for an event-loop turn.
 */
import { performance } from 'node:perf_hooks';
import { AbortError, ArgumentError, ProtocolError, SwitchboardError, TimeoutError } from '../errors.js';
import { MAX_UDP_PAYLOAD, connect, toAddress, formatAddress, writeSoon, type Address, type AddressLike, type Channel } from '../transport/index.js';
import { XdrReader, XdrWriter, decodeFrom, xdrVoid, type XdrCodec } from '../wire/index.js';
import { AuthError, rpcErrorFromReply } from './rpc-errors.js';
import { takeSegments, takeWritten } from './message-bytes.js';
import { DatagramPoll } from './datagram-poll.js';
import { CLIENT_SPIN_ENV, RecordStream, SpinBackoff, resolveSpinUs, spinAvailable, spinPoll } from './record-stream.js';
import {
  AUTH_NONE,
  AcceptStat,
  AuthFlavor,
  AuthStat,
  MAX_AUTH_BYTES,
  MsgType,
  ReplyStat,
  encodeAuthSys,
  readReplyBody,
  writeCallFields,
  type AuthSysParams,
  type OpaqueAuth,
} from './rpc-message.js';

export interface RpcClientOptions {
  /** Default time a call may take, retransmissions included (default 25 s, as clnt_call). */
  timeoutMs?: number;
  /** UDP: first retransmission after this long, doubling up to 8x this (default 500 ms). */
  retransmitMs?: number;
  /** Credentials: AUTH_NONE (default), or AUTH_SYS parameters. */
  auth?: OpaqueAuth | AuthSysParams | undefined;
  /**
   * Largest reply accepted (default 16 MiB): a TCP/Unix record, or a UDP
   * datagram (a longer reply datagram fails its call with EMSGSIZE).
   */
  maxRecordSize?: number;
  /** TCP/Unix: split outgoing records into fragments of at most this many bytes. */
  maxFragment?: number;
  /** TCP/Unix: open a new connection when the old one dropped (default true). */
  reconnect?: boolean;
  /**
   * TCP/Unix: opaque arguments at least this long (default 8 KiB) go to the
   * socket from the caller's array, not copied: the caller must not change
   * such an array until the call settles. Infinity copies everything.
   */
  referenceBytes?: number;
  connectTimeoutMs?: number;
  /**
   * After a call went out (on TCP/Unix: in one system call), read the socket
   * straight from its descriptor for up to this many microseconds without a
   * reply (sleeping in poll(2) between reads, so a server on the same CPU
   * runs), settling replies at once, before leaving the wait to the event loop.
   * 0 turns polling off. Default: SWITCHBOARD_ONCRPC_SPIN_US from the
   * environment if set, else 50. The caller's thread is busy for that long
   * at most per burst of calls, and only while a call waits for its reply.
   */
  spinUs?: number;
}

export interface CallOptions {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * A call waiting for its reply. Deadlines and retransmissions are times on
 * performance.now(); one timer per client, armed for the earliest of them,
 * serves every call (a timer per call costs more than the rest of a call's
 * bookkeeping together).
 */
class Pending {
  resolve: (value: unknown) => void = noop;
  reject: (err: Error) => void = noop;
  /** UDP: the datagram to send again, the next time to send it, and the current wait. */
  record: Uint8Array | undefined = undefined;
  retransmitAt = Infinity;
  wait = 0;
  signal: AbortSignal | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly xid: number,
    readonly prog: number,
    readonly vers: number,
    readonly proc: number,
    readonly resCodec: XdrCodec<unknown>,
    readonly deadline: number,
    readonly timeoutMs: number,
  ) {}
}

function noop(): void {}

/**
 * The common reply, MSG_ACCEPTED with SUCCESS and a verifier that is not
 * AUTH_SHORT, read without building a reply header: true with the reader at
 * the results; otherwise false with the reader where it was.
 */
function skipPlainSuccess(r: XdrReader): boolean {
  const at = r.pos;
  if (r.uint() === ReplyStat.MSG_ACCEPTED && r.int() !== AuthFlavor.AUTH_SHORT) {
    const n = r.length(MAX_AUTH_BYTES, 'opaque', 1);
    const padded = n + ((4 - (n & 3)) & 3);
    r.assertBounds(padded);
    r.pos += padded;
    if (r.uint() === AcceptStat.SUCCESS) return true;
  }
  r.pos = at;
  return false;
}

const NO_OPTIONS: CallOptions = Object.freeze({});
const MAX_FRAGMENT = 0x7fff_ffff;
const LAST = 0x8000_0000;
/** Below this an opaque argument is cheaper to copy than to send as a piece of its own. */
const DEFAULT_REFERENCE_BYTES = 8192;
/** A timer may fire up to this early by performance.now() (libuv counts whole milliseconds). */
const TIMER_SLACK_MS = 1;
/**
 * Default polled wait for a reply: a loopback round trip to a C server on
 * another core takes 15-40 us, and a server sharing our CPU answers within
 * one or two yields; past that the reply is not coming soon and the event
 * loop waits more cheaply.
 */
export const DEFAULT_CLIENT_SPIN_US = 50;

function isAuthSys(a: OpaqueAuth | AuthSysParams): a is AuthSysParams {
  return (a as AuthSysParams).machinename !== undefined;
}

/** An RPC connection to one address (tcp://, unix:// or udp://). */
export class RpcClient {
  readonly address: Address;
  readonly transport: 'tcp' | 'unix' | 'udp';
  readonly #opts: Required<Pick<RpcClientOptions, 'timeoutMs' | 'retransmitMs' | 'maxRecordSize' | 'maxFragment' | 'reconnect' | 'connectTimeoutMs'>>;
  #cred: OpaqueAuth;
  readonly #fullCred: OpaqueAuth;
  #xid = (Math.random() * 0x1_0000_0000) >>> 0;
  #channel: Channel | undefined;
  #connecting: Promise<Channel> | undefined;
  /**
   * Calls waiting for their reply, by xid. The first one waits in #slot, the
   * rest in the map: one call at a time (the common case) then never adds to
   * and deletes from a Map, which reallocates its table as it empties.
   */
  #slot: Pending | undefined;
  readonly #pending = new Map<number, Pending>();
  #closed = false;
  /** The one timer for deadlines and retransmissions, and when it fires (Infinity: not armed). */
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  /** Calls are encoded here, then copied out (small), handed over (large), or sent as pieces (big opaques referenced). */
  readonly #writer: XdrWriter;
  /** The current channel's write-failure handler, and the last write promise it was attached to. */
  #onWriteError: (err: unknown) => void = noop;
  #lastWrite: Promise<void> | undefined;
  /** What the polled wait reads: the record stream, or the UDP socket. */
  #poller: { readonly pollable: boolean; poll(): boolean; readonly wait: (us: number) => void } | undefined;
  /** UDP with polling on: the socket, for direct sends and reads. */
  #datagrams: DatagramPoll | undefined;
  /** Polled wait for replies, in microseconds (0: off), and whether a spin is queued for this burst of calls. */
  readonly spinUs: number;
  #spinQueued = false;
  readonly #backoff = new SpinBackoff();

  private constructor(address: Address, options: RpcClientOptions) {
    if (address.transport !== 'tcp' && address.transport !== 'unix' && address.transport !== 'udp') {
      throw new ArgumentError(`ONC RPC runs over tcp, unix or udp, not ${address.transport}`);
    }
    this.address = address;
    this.transport = address.transport;
    this.#opts = {
      timeoutMs: options.timeoutMs ?? 25_000,
      retransmitMs: options.retransmitMs ?? 500,
      maxRecordSize: options.maxRecordSize ?? 16 * 1024 * 1024,
      maxFragment: options.maxFragment ?? MAX_FRAGMENT,
      reconnect: options.reconnect ?? true,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    };
    const spin = resolveSpinUs(options.spinUs, 'spinUs', CLIENT_SPIN_ENV, DEFAULT_CLIENT_SPIN_US);
    this.spinUs = spin > 0 && spinAvailable() ? spin : 0;
    const ref = options.referenceBytes ?? DEFAULT_REFERENCE_BYTES;
    if (!(ref >= 1)) throw new ArgumentError(`referenceBytes must be at least 1, got ${ref}`);
    // A UDP call is kept whole for retransmission: it is always copied.
    this.#writer = new XdrWriter(1024, { referenceBytes: address.transport === 'udp' ? Infinity : ref });
    const auth = options.auth ?? AUTH_NONE;
    this.#fullCred = isAuthSys(auth) ? encodeAuthSys(auth) : auth;
    this.#cred = this.#fullCred;
  }

  /** Connect to `address` (tcp://host:port, unix:///path, udp://host:port). */
  static async connect(address: AddressLike, options: RpcClientOptions = {}): Promise<RpcClient> {
    const c = new RpcClient(toAddress(address), options);
    await c.#ensureChannel();
    return c;
  }

  get description(): string {
    return `ONC RPC client ${formatAddress(this.address)}`;
  }

  /** Calls waiting for their reply. */
  get inFlight(): number {
    return this.#pending.size + (this.#slot === undefined ? 0 : 1);
  }

  #ensureChannel(): Promise<Channel> {
    if (this.#channel) return Promise.resolve(this.#channel);
    if (this.#closed) return Promise.reject(new SwitchboardError('ECLOSED', `${this.description} is closed`));
    this.#connecting ??= connect(this.address, { timeoutMs: this.#opts.connectTimeoutMs }).then(
      (ch) => {
        this.#connecting = undefined;
        if (this.#closed) {
          ch.destroy();
          throw new SwitchboardError('ECLOSED', `${this.description} is closed`);
        }
        this.#channel = ch;
        this.#onWriteError = (err: unknown) => this.#dropChannel(ch, err as Error);
        this.#lastWrite = undefined;
        if (this.transport === 'udp') {
          void this.#readLoop(ch);
          const fd = (ch as { fd?: number | undefined }).fd;
          if (this.spinUs > 0 && fd !== undefined) {
            this.#poller = this.#datagrams = new DatagramPoll(ch, fd, this.#opts.maxRecordSize, this.#onDatagram, this.#onCut, (err) => this.#dropChannel(ch, err));
          }
        } else {
          const stream = new RecordStream(ch, this.#opts.maxRecordSize, this.#onRecord, (err) => this.#dropChannel(ch, err));
          stream.start();
          if (stream.pollable) this.#poller = stream;
        }
        return ch;
      },
      (err: unknown) => {
        this.#connecting = undefined;
        throw err;
      },
    );
    return this.#connecting;
  }

  /** UDP: one reply per datagram. */
  async #readLoop(ch: Channel): Promise<void> {
    let failure: Error | undefined;
    try {
      for (;;) {
        const chunk = await ch.read();
        if (chunk === null) break;
        this.#onDatagram(chunk);
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    this.#dropChannel(ch, failure);
  }

  readonly #onRecord = (record: Uint8Array): void => this.#onReply(record);

  /** UDP: a reply datagram, or one too long for maxRecordSize. */
  readonly #onDatagram = (datagram: Uint8Array): void => {
    if (datagram.length > this.#opts.maxRecordSize) this.#onCut(datagram);
    else this.#onReply(datagram);
  };

  /** UDP: the head of a reply datagram longer than maxRecordSize fails the call it answers. */
  readonly #onCut = (head: Uint8Array): void => {
    if (head.length < 8) return;
    const r = new XdrReader(head);
    const xid = r.uint();
    if (r.uint() !== MsgType.REPLY) return;
    const p = this.#lookup(xid);
    if (p === undefined) return;
    this.#settle(p).reject(
      new ProtocolError(`${this.description}: the reply to call ${p.prog}/${p.vers}/${p.proc} is longer than maxRecordSize (${this.#opts.maxRecordSize} bytes)`, { code: 'EMSGSIZE' }),
    );
  };

  /** Are calls waiting for replies? */
  readonly #waiting = (): boolean => this.#slot !== undefined || this.#pending.size !== 0;

  readonly #poll = (): boolean => this.#poller?.poll() ?? false;

  /**
   * The polled wait, queued as a microtask after a burst of calls went out:
   * read replies straight from the socket while calls wait, until none do or
   * spinUs pass without a reply. The callers' continuations run right after,
   * in the same event-loop turn.
   */
  readonly #spin = (): void => {
    const poller = this.#poller;
    if (poller !== undefined && poller.pollable) {
      // Ends when no call waits: every reply came, or the connection dropped and failed them.
      spinPoll(this.#poll, this.spinUs, this.#waiting, Infinity, poller.wait);
      // A miss: the replies take longer than the budget (a slow procedure, a loaded server).
      this.#backoff.score(!this.#waiting());
    }
    this.#spinQueued = false;
  };

  #dropChannel(ch: Channel, failure?: Error): void {
    if (this.#channel !== ch) return;
    this.#channel = undefined;
    this.#poller = this.#datagrams = undefined;
    ch.destroy();
    const err =
      failure instanceof SwitchboardError
        ? failure
        : new SwitchboardError(this.#closed ? 'ECLOSED' : 'ECONNRESET', `${this.description}: the connection closed${failure ? `: ${failure.message}` : ''}`, { cause: failure });
    if (!this.#opts.reconnect && this.transport !== 'udp') this.#closed = true;
    const all = [...this.#pending.values()];
    if (this.#slot !== undefined) all.unshift(this.#slot);
    for (const p of all) this.#settle(p).reject(err);
    this.#disarm();
  }

  /** Forget a pending call (it is answered, failed or timed out); returns it. */
  #settle(p: Pending): Pending {
    if (this.#slot === p) this.#slot = undefined;
    else this.#pending.delete(p.xid);
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
    return p;
  }

  #lookup(xid: number): Pending | undefined {
    const slot = this.#slot;
    return slot !== undefined && slot.xid === xid ? slot : this.#pending.get(xid);
  }

  #add(p: Pending): void {
    if (this.#slot === undefined) this.#slot = p;
    else this.#pending.set(p.xid, p);
  }

  /** Make sure the timer fires by `at` (performance.now() time). */
  #arm(at: number): void {
    if (at >= this.#timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - performance.now())));
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Time out expired calls, retransmit due UDP calls, and arm the timer for the next of either. */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now() + TIMER_SLACK_MS;
    let next = Infinity;
    const all = [...this.#pending.values()];
    if (this.#slot !== undefined) all.unshift(this.#slot);
    for (const p of all) {
      if (p.deadline <= now) {
        this.#settle(p).reject(new TimeoutError(`call ${p.prog}/${p.vers}/${p.proc} got no reply within ${p.timeoutMs} ms`));
        continue;
      }
      if (p.record !== undefined) {
        if (p.retransmitAt <= now) {
          const cur = this.#channel;
          if (cur) this.#enqueue(cur, p.record);
          p.wait = Math.min(p.wait * 2, this.#opts.retransmitMs * 8);
          p.retransmitAt = now - TIMER_SLACK_MS + p.wait;
        }
        if (p.retransmitAt < next) next = p.retransmitAt;
      }
      if (p.deadline < next) next = p.deadline;
    }
    if (next < Infinity) this.#arm(next);
  };

  #onReply(msg: Uint8Array): void {
    const r = new XdrReader(msg);
    // Not an RPC reply (too short, or a CALL): ignore it, as clnt_dg does.
    if (r.remaining < 8) return;
    const xid = r.uint();
    if (r.uint() !== MsgType.REPLY) return;
    const p = this.#lookup(xid);
    if (p === undefined) return; // late duplicate, a batched call's reply, or a timed-out call
    this.#settle(p);
    let value: unknown;
    try {
      if (!skipPlainSuccess(r)) {
        const reply = readReplyBody(r, xid);
        const err = rpcErrorFromReply(reply, p);
        if (err) {
          p.reject(err);
          return;
        }
        if (reply.replyStat === 'accepted' && reply.verf.flavor === AuthFlavor.AUTH_SHORT && this.#fullCred.flavor === AuthFlavor.AUTH_SYS) {
          // The server offers a short-hand credential for later calls (RFC 5531 appendix A).
          this.#cred = { flavor: AuthFlavor.AUTH_SHORT, body: reply.verf.body.slice() };
        }
      }
      value = decodeFrom(p.resCodec, r);
    } catch (err) {
      p.reject(err as Error);
      return;
    }
    p.resolve(value);
  }

  /**
   * Hand a record to the channel; a burst of calls in one tick leaves as one
   * writev (the channel corks). True when the kernel took it all at once.
   */
  #enqueue(ch: Channel, record: Uint8Array | Uint8Array[]): boolean {
    // UDP: a datagram goes out in one system call from the socket, when it can.
    if (this.#datagrams !== undefined && !Array.isArray(record) && this.#datagrams.send(record)) return true;
    // An idle socket takes a lone record in one system call, without the stream machinery.
    const done = Array.isArray(record) ? ch.writev(record) : writeSoon(ch, record);
    if (done === undefined) return true;
    // A channel hands back the same settled promise for every write the socket took at once:
    // one failure handler per distinct promise is enough, and saves a promise per call.
    if (done !== this.#lastWrite) {
      this.#lastWrite = done;
      done.catch(this.#onWriteError);
    }
    return false;
  }

  /**
   * Encode a call message, with its record mark on streams: one buffer, or
   * pieces for one writev (fragments, or big opaques sent from the caller's
   * arrays unless `whole`).
   */
  #encode<A>(xid: number, prog: number, vers: number, proc: number, argCodec: XdrCodec<A>, arg: A, cred: OpaqueAuth, whole = false): Uint8Array | Uint8Array[] {
    const stream = this.transport !== 'udp';
    const w = this.#writer.reset();
    if (stream) w.uint(0);
    writeCallFields(w, xid, prog, vers, proc, cred, AUTH_NONE);
    argCodec.encode(w, arg);
    const len = w.length - (stream ? 4 : 0);
    if (!stream) return takeWritten(w);
    if (len <= this.#opts.maxFragment) {
      w.setUintAt(0, (LAST | len) >>> 0);
      return w.hasReferences && !whole ? takeSegments(w) : takeWritten(w);
    }
    const body = w.finish().subarray(4);
    const parts: Uint8Array[] = [];
    for (let at = 0; at < body.length; at += this.#opts.maxFragment) {
      const n = Math.min(this.#opts.maxFragment, body.length - at);
      const h = new Uint8Array(4);
      new DataView(h.buffer).setUint32(0, ((at + n === body.length ? LAST : 0) | n) >>> 0);
      parts.push(h, body.subarray(at, at + n));
    }
    return parts;
  }

  #nextXid(): number {
    this.#xid = (this.#xid + 1) >>> 0;
    return this.#xid;
  }

  /**
   * Call procedure `proc` of program `prog` version `vers`: encode `arg`
   * with `argCodec`, wait for the reply, decode it with `resCodec`.
   * Rejects with a typed RpcError for an error reply, TimeoutError, or a
   * transport error (ECONNRESET when the connection dropped mid-call).
   * On TCP and Unix sockets, opaque arguments of `referenceBytes` or more are
   * sent from the caller's arrays: leave them unchanged until the call settles.
   */
  call<A, R>(prog: number, vers: number, proc: number, argCodec: XdrCodec<A>, arg: A, resCodec: XdrCodec<R>, options: CallOptions = NO_OPTIONS): Promise<R> {
    const cred = this.#cred;
    const p = this.#call(prog, vers, proc, argCodec, arg, resCodec, options, cred);
    if (cred === this.#fullCred) return p;
    return p.catch((err: unknown) => {
      // A short-hand credential the server forgot: start again with the full one.
      if (err instanceof AuthError && err.stat === AuthStat.AUTH_REJECTEDCRED) {
        this.#cred = this.#fullCred;
        return this.#call(prog, vers, proc, argCodec, arg, resCodec, options, this.#fullCred);
      }
      throw err;
    });
  }

  #call<A, R>(prog: number, vers: number, proc: number, argCodec: XdrCodec<A>, arg: A, resCodec: XdrCodec<R>, options: CallOptions, cred: OpaqueAuth): Promise<R> {
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError());
    const ch = this.#channel;
    if (ch === undefined) return this.#ensureChannel().then(() => this.#call(prog, vers, proc, argCodec, arg, resCodec, options, cred));
    const xid = this.#nextXid();
    let record: Uint8Array | Uint8Array[];
    try {
      record = this.#encode(xid, prog, vers, proc, argCodec, arg, cred);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const udp = this.transport === 'udp';
    if (udp && (record as Uint8Array).length > MAX_UDP_PAYLOAD) {
      return Promise.reject(new ProtocolError(`call of ${(record as Uint8Array).length} bytes does not fit in one UDP datagram (${MAX_UDP_PAYLOAD})`, { code: 'EMSGSIZE' }));
    }
    const timeoutMs = options.timeoutMs ?? this.#opts.timeoutMs;
    const now = performance.now();
    const p = new Pending(xid, prog, vers, proc, resCodec as XdrCodec<unknown>, Number.isFinite(timeoutMs) ? now + timeoutMs : Infinity, timeoutMs);
    const promise = new Promise<R>((resolve, reject) => {
      p.resolve = resolve as (value: unknown) => void;
      p.reject = reject;
    });
    if (signal) {
      p.signal = signal;
      p.onAbort = () => {
        if (this.#lookup(xid) === p) this.#settle(p).reject(new AbortError(`call ${prog}/${vers}/${proc} aborted`));
      };
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    this.#add(p);
    // Poll for the reply only when the call is on its way (not held in the stream for a later turn).
    // A datagram leaves at once (Node tries the send before queueing it), whatever enqueue says.
    if ((this.#enqueue(ch, record) || udp) && this.spinUs > 0 && !this.#spinQueued && this.#backoff.take()) {
      this.#spinQueued = true;
      queueMicrotask(this.#spin);
    }
    let due = p.deadline;
    if (udp) {
      p.record = record as Uint8Array;
      p.wait = this.#opts.retransmitMs;
      p.retransmitAt = now + p.wait;
      if (p.retransmitAt < due) due = p.retransmitAt;
    }
    if (due < Infinity) this.#arm(due);
    return promise;
  }

  /**
   * Batching (RFC 5531 section 8 "batching"): send a call and expect no
   * reply. The server's procedure must not answer it. Batched calls leave
   * with the next write; a following normal call flushes the pipeline.
   */
  async send<A>(prog: number, vers: number, proc: number, argCodec: XdrCodec<A>, arg: A): Promise<void> {
    // Copied whole: nothing tells the caller when a batched call has left, so it cannot hold its arrays until then.
    const record = this.#encode(this.#nextXid(), prog, vers, proc, argCodec, arg, this.#cred, true);
    const ch = this.#channel ?? (await this.#ensureChannel());
    this.#enqueue(ch, record);
  }

  /** Call procedure 0 (NULL), which every server answers. */
  ping(prog: number, vers: number, options: CallOptions = NO_OPTIONS): Promise<void> {
    return this.call(prog, vers, 0, xdrVoid, undefined, xdrVoid, options);
  }

  /** Fail pending calls with ECLOSED and close the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#disarm();
    const ch = this.#channel;
    if (ch) {
      this.#dropChannel(ch);
      await ch.closed;
    }
  }
}
