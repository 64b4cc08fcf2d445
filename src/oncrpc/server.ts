/**
 * The ONC RPC server (RFC 5531): several programs and versions on one
 * server, listening on any mix of TCP, Unix stream sockets (record marking)
 * and UDP (one message per datagram). Procedures may be async; calls on one
 * connection run concurrently and replies go out as they are ready. NULL
 * (procedure 0) of every registered version always answers. UDP calls go
 * through a duplicate request cache.
 */
import { ArgumentError, SwitchboardError } from '../errors.js';
import {
  MAX_UDP_PAYLOAD,
  bindUdp,
  formatAddress,
  listen,
  toAddress,
  writeSoon,
  type Address,
  type AddressLike,
  type Channel,
  type DatagramEndpoint,
  type Listener,
} from '../transport/index.js';
import { XdrReader, XdrWriter, XdrError, decodeFrom, type XdrCodec } from '../wire/index.js';
import { AuthError, GarbageArgsError, ProcUnavailError, ProgMismatchError, ProgUnavailError, RpcError } from './rpc-errors.js';
import { DuplicateRequestCache, argsChecksum } from './duplicate-cache.js';
import { RpcbindClient } from './rpcbind-client.js';
import { takeWritten } from './message-bytes.js';
import { DatagramServerPoll } from './datagram-poll.js';
import { RecordStream, SERVER_SPIN_ENV, SpinBackoff, resolveSpinUs, spinAvailable, spinPoll } from './record-stream.js';
import { toUniversalAddress } from './universal-address.js';
import {
  AUTH_NONE,
  AcceptStat,
  AuthFlavor,
  AuthStat,
  MsgType,
  RPC_VERSION,
  decodeAuthSys,
  readCallBody,
  readMessageStart,
  writeAcceptedReply,
  writeAuthErrorReply,
  writeRpcMismatchReply,
  type AuthSysParams,
  type OpaqueAuth,
} from './rpc-message.js';

/** Return this from a procedure to send no reply (batched calls). */
export const NO_REPLY: unique symbol = Symbol('NO_REPLY');

export interface RpcCallContext {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  transport: 'tcp' | 'unix' | 'udp';
  /** The caller: `host:port` for TCP and UDP, the socket path for Unix. */
  peer: string;
  /** The credential as received. */
  cred: OpaqueAuth;
  /** AUTH_SYS parameters when the caller sent AUTH_SYS. */
  authSys?: AuthSysParams | undefined;
  /** Credentials from the kernel (SO_PEERCRED) on Unix sockets. */
  peerPid?: number | undefined;
  peerUid?: number | undefined;
}

export interface Procedure<A = unknown, R = unknown> {
  name?: string;
  args: XdrCodec<A>;
  result: XdrCodec<R>;
  handler(arg: A, ctx: RpcCallContext): R | typeof NO_REPLY | Promise<R | typeof NO_REPLY>;
}

/** Procedures of one program version by number. Procedure 0 is added if missing. */
export type ProcedureTable = Readonly<Record<number, Procedure<unknown, unknown>>>;

export interface RpcServerOptions {
  /** Largest call record accepted on streams (default 16 MiB). */
  maxRecordSize?: number;
  /** Entries in the UDP duplicate request cache (default 1024; 0 turns it off). */
  duplicateCacheSize?: number;
  /**
   * Check credentials before dispatch; throw AuthError to refuse. The default
   * accepts AUTH_NONE and AUTH_SYS and refuses others with AUTH_REJECTEDCRED
   * (this server never issues AUTH_SHORT credentials, so it cannot accept one).
   */
  authenticate?: (ctx: RpcCallContext) => void;
  /** Errors a procedure threw that were not RpcErrors (answered SYSTEM_ERR). */
  onError?: (err: unknown, ctx: RpcCallContext) => void;
  /** Most concurrent connections per stream listener. */
  maxConnections?: number;
  /**
   * Answer AUTH_SYS calls with an AUTH_SHORT verifier that the client may
   * send instead of its full credential later (RFC 5531 appendix A); this
   * many are remembered (default 0: off, AUTH_SHORT is then refused with
   * AUTH_REJECTEDCRED, which makes clients fall back to AUTH_SYS).
   */
  shortCredentials?: number;
  /**
   * TCP/Unix: after a reply went out in one system call, read the stream
   * connections straight from their descriptors (each in turn, while there
   * are at most MAX_SPIN_CONNECTIONS) for up to this many microseconds for
   * the next call (sched_yield between looks), serving it without an
   * event-loop turn; each call served starts the wait again, up to
   * SPIN_CAP_MS in all, after which UDP and new connections get their turn.
   * An idle server never spins: only a reply starts a spin, and while the
   * clients do not call again within the budget spins become ever rarer
   * (1 reply in 65 at most).
   * 0 turns it off. Default: SWITCHBOARD_ONCRPC_SERVER_SPIN_US from the
   * environment if set, else DEFAULT_SERVER_SPIN_US.
   */
  spinUs?: number;
}

/**
 * Default post-reply spin of the server (microseconds), as Open MPI polls a
 * little after progress: a client calling back to back (libtirpc's
 * clnt_call in a loop) sends its next call within 10-30 us of our reply on
 * loopback, and catching it here saves an event-loop turn per call (libtirpc
 * client, null call, one CPU: 41 us against 50 over TCP, 24 against 26 over
 * a Unix socket, on a loaded machine). The cost is bounded: 50 us per
 * reply at most, backed off for clients that do not call again that soon.
 */
export const DEFAULT_SERVER_SPIN_US = 50;
/** Post-reply spins last at most this long in a row (ms), so that UDP and new connections are served too. */
export const SPIN_CAP_MS = 1;
/**
 * Past this many stream connections the server does not spin: a spin looks
 * at every connection in turn, a system call each, and epoll is then the
 * cheaper multiplexer. (8 libtirpc clients calling back to back on 2 CPUs:
 * 12.8 us per call with the spin, 15.4 without.)
 */
export const MAX_SPIN_CONNECTIONS = 8;

type Transport = 'tcp' | 'unix' | 'udp';

interface Bound {
  address: Address;
  transport: Transport;
  listener?: Listener;
  endpoint?: DatagramEndpoint;
  /** The endpoint's polled path (when the server spins after replies). */
  poller?: DatagramServerPoll | undefined;
}

/** A connection or endpoint the server looks at right after a reply. */
interface Polled {
  poll(): boolean;
}

/** { host, port } of a peer named "host:port" or "[v6]:port". */
function peerAddress(peer: string): { host: string; port: number } {
  const i = peer.lastIndexOf(':');
  const host = peer.slice(0, i);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(peer.slice(i + 1)) };
}

const VOID_CODEC: XdrCodec<void> = { minSize: 0, encode: () => undefined, decode: () => undefined };
const NULL_PROC: Procedure<void, void> = { name: 'NULL', args: VOID_CODEC, result: VOID_CODEC, handler: () => undefined };
const LAST = 0x8000_0000;

function defaultAuthenticate(ctx: RpcCallContext): void {
  if (ctx.cred.flavor === AuthFlavor.AUTH_NONE || ctx.cred.flavor === AuthFlavor.AUTH_SYS) return;
  // AUTH_SHORT reaches here only when it named a credential this server issued.
  if (ctx.cred.flavor === AuthFlavor.AUTH_SHORT && ctx.authSys !== undefined) return;
  throw new AuthError(AuthStat.AUTH_REJECTEDCRED);
}

function ignore(): void {}

const hexKey = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export class RpcServer {
  readonly #programs = new Map<number, Map<number, Map<number, Procedure<unknown, unknown>>>>();
  readonly #bound: Bound[] = [];
  readonly #connections = new Set<Channel>();
  readonly #drc: DuplicateRequestCache | undefined;
  readonly #opts: RpcServerOptions;
  readonly #authenticate: (ctx: RpcCallContext) => void;
  #registered: Array<() => Promise<void>> = [];
  #closed = false;
  /** AUTH_SHORT handles issued, by hex, oldest first. */
  readonly #short = new Map<string, AuthSysParams>();
  #shortSeq = 0;
  /**
   * Every reply is written here, then copied out (small) or handed over
   * (large). Big opaque results are only referenced while the reply is
   * written, so that they are copied once, straight into the reply's bytes.
   */
  readonly #writer = new XdrWriter(1024, { referenceBytes: 4096 });
  /** Post-reply spin in microseconds (0: off). */
  readonly spinUs: number;
  /** What a spin after a reply looks at: stream connections and UDP endpoints (replaced, not changed, so a spin may iterate one). */
  #polled: Polled[] = [];
  /** A post-reply spin is queued or running. */
  #spinning = false;
  readonly #backoff = new SpinBackoff();

  constructor(options: RpcServerOptions = {}) {
    const spin = resolveSpinUs(options.spinUs, 'spinUs', SERVER_SPIN_ENV, DEFAULT_SERVER_SPIN_US);
    this.spinUs = spin > 0 && spinAvailable() ? spin : 0;
    this.#opts = options;
    const size = options.duplicateCacheSize ?? 1024;
    this.#drc = size > 0 ? new DuplicateRequestCache(size) : undefined;
    this.#authenticate = options.authenticate ?? defaultAuthenticate;
  }

  /** Serve version `vers` of program `prog`. */
  addProgram(prog: number, vers: number, procedures: ProcedureTable): this {
    let versions = this.#programs.get(prog);
    if (!versions) this.#programs.set(prog, (versions = new Map()));
    if (versions.has(vers)) throw new ArgumentError(`program ${prog} version ${vers} is already served`);
    const table = new Map<number, Procedure<unknown, unknown>>();
    for (const [k, v] of Object.entries(procedures)) table.set(Number(k), v);
    if (!table.has(0)) table.set(0, NULL_PROC);
    versions.set(vers, table);
    return this;
  }

  /** Program/version pairs served. */
  get programs(): Array<{ prog: number; vers: number }> {
    const out: Array<{ prog: number; vers: number }> = [];
    for (const [prog, versions] of this.#programs) for (const vers of versions.keys()) out.push({ prog, vers });
    return out;
  }

  /** Addresses listened on. */
  get addresses(): Address[] {
    return this.#bound.map((b) => b.address);
  }

  /** Retransmissions answered from the duplicate request cache. */
  get duplicateHits(): number {
    return this.#drc?.hits ?? 0;
  }

  /** Listen on tcp://host:port, unix:///path or udp://host:port (port 0: any). Returns the bound address. */
  async listen(address: AddressLike, options: { mode?: number } = {}): Promise<Address> {
    if (this.#closed) throw new SwitchboardError('ECLOSED', 'the RPC server is closed');
    const addr = toAddress(address);
    if (addr.transport === 'udp') {
      const endpoint = await bindUdp({ host: addr.host, port: addr.port });
      const bound: Address = { transport: 'udp', host: endpoint.address.host, port: endpoint.address.port };
      // Polling: right after a reply, the next call is looked for on the socket itself.
      const fd = this.spinUs > 0 ? endpoint.fd : undefined;
      const poller =
        fd === undefined
          ? undefined
          : new DatagramServerPoll(
              fd,
              (datagram, peer) => this.#handle(datagram, 'udp', peer, 0, undefined, undefined),
              (reply, peer) => this.#sendDatagram(endpoint, reply, peerAddress(peer)),
            );
      this.#bound.push({ address: bound, transport: 'udp', endpoint, poller });
      if (poller !== undefined) this.#polled = [...this.#polled, poller];
      void this.#udpLoop(endpoint, poller);
      return bound;
    }
    if (addr.transport !== 'tcp' && addr.transport !== 'unix') throw new ArgumentError(`ONC RPC serves tcp, unix or udp, not ${addr.transport}`);
    const transport = addr.transport;
    const listener = await listen(addr, {
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...(this.#opts.maxConnections === undefined ? {} : { maxConnections: this.#opts.maxConnections }),
      onConnection: (ch) => this.#serveStream(ch, transport),
    });
    this.#bound.push({ address: listener.address, transport, listener });
    return listener.address;
  }

  #serveStream(ch: Channel, transport: 'tcp' | 'unix'): void {
    this.#connections.add(ch);
    const peer = ch.description.split(' -> ')[1] ?? ch.description;
    // Replies go straight to the channel, which sends a burst of them as one writev.
    // The channel hands back one settled promise for every write the socket took at
    // once: a failure handler per distinct promise is enough (not a new promise per reply).
    const onWriteError = () => ch.destroy();
    let lastWrite: Promise<void> | undefined;
    /** True when the reply left in one system call. */
    const send = (reply: Uint8Array | undefined): boolean => {
      if (reply === undefined || ch.isClosed) return false;
      // An idle socket takes the reply in one system call, without the stream machinery.
      const done = writeSoon(ch, reply);
      if (done === undefined) return true;
      if (done !== lastWrite) {
        lastWrite = done;
        done.catch(onWriteError);
      }
      return false;
    };
    const sendLater = (reply: Uint8Array | undefined): void => void send(reply);
    const stream = new RecordStream(
      ch,
      this.#opts.maxRecordSize ?? 16 * 1024 * 1024,
      (rec) => {
        const out = this.#handle(rec, transport, peer, 4, ch.peer.pid, ch.peer.uid);
        if (out instanceof Promise) out.then(sendLater, ignore);
        else if (send(out)) this.#afterReply();
      },
      // The end, a malformed or oversized record, or a reset: drop this connection only.
      () => {
        this.#connections.delete(ch);
        if (this.#polled.includes(stream)) this.#polled = this.#polled.filter((s) => s !== stream);
        ch.destroy();
      },
    );
    stream.start();
    if (stream.pollable) this.#polled = [...this.#polled, stream];
  }

  /**
   * A reply went out in one system call: spin for the next call (once per
   * burst of replies), unless spinning is off, backed off, or there are too
   * many connections to poll them all cheaply (then epoll is the better
   * multiplexer).
   */
  #afterReply(): void {
    if (this.spinUs > 0 && !this.#spinning && this.#polled.length <= MAX_SPIN_CONNECTIONS && this.#backoff.take()) {
      this.#spinning = true;
      queueMicrotask(this.#spin);
    }
  }

  /** One look at every connection, in turn: no connection waits while another is served. */
  readonly #pollAll = (): boolean => {
    let got = false;
    for (const s of this.#polled) if (s.poll()) got = true;
    return got;
  };

  readonly #spinWanted = (): boolean => !this.#closed && this.#polled.length > 0 && this.#polled.length <= MAX_SPIN_CONNECTIONS;

  readonly #spin = (): void => {
    // A miss: the clients do not call again right away; spin less often.
    this.#backoff.score(spinPoll(this.#pollAll, this.spinUs, this.#spinWanted, SPIN_CAP_MS) > 0);
    this.#spinning = false;
  };

  async #udpLoop(endpoint: DatagramEndpoint, poller: DatagramServerPoll | undefined): Promise<void> {
    for (;;) {
      let dgram;
      try {
        dgram = await endpoint.receive();
      } catch {
        if (this.#closed) return;
        continue;
      }
      if (dgram === null) {
        // The endpoint is gone: its descriptor number may be reused, so the spin must not look at it.
        if (poller !== undefined) {
          poller.stop();
          this.#polled = this.#polled.filter((p) => p !== poller);
        }
        return;
      }
      const { data, from } = dgram;
      const peer = `${from.host.includes(':') ? `[${from.host}]` : from.host}:${from.port}`;
      const out = this.#handle(data, 'udp', peer, 0, undefined, undefined);
      if (out instanceof Promise) out.then((reply) => this.#sendDatagram(endpoint, reply, from), () => undefined);
      else if (out !== undefined && poller?.sendNow(out, from) === true) this.#afterReply();
      else this.#sendDatagram(endpoint, out, from);
    }
  }

  #sendDatagram(endpoint: DatagramEndpoint, reply: Uint8Array | undefined, to: { host: string; port: number }): void {
    if (reply === undefined || this.#closed) return;
    if (reply.length > MAX_UDP_PAYLOAD) {
      // The results do not fit in a datagram: say so rather than let the client time out.
      const w = new XdrWriter(32);
      writeAcceptedReply(w, new DataView(reply.buffer, reply.byteOffset, 4).getUint32(0), AcceptStat.SYSTEM_ERR);
      reply = w.finish();
    }
    endpoint.send(reply, to).catch(ignore);
  }

  /** Start a reply in the shared writer, with room for the record mark on streams. */
  #begin(reserve: number): XdrWriter {
    const w = this.#writer.reset();
    if (reserve) w.uint(0);
    return w;
  }

  /** The reply's bytes; a reply the duplicate request cache keeps gets a buffer of its own. */
  #end(w: XdrWriter, reserve: number, keep = false): Uint8Array {
    if (reserve) w.setUintAt(0, (LAST | (w.length - 4)) >>> 0);
    return takeWritten(w, !keep);
  }

  /**
   * Answer one call message: the reply bytes (with `reserve` bytes in front
   * for the record mark), undefined for no reply, or a promise of either.
   * Replies are written into one shared writer, start to end without
   * yielding, so concurrent async procedures never share it.
   */
  #handle(msg: Uint8Array, transport: Transport, peer: string, reserve: number, peerPid: number | undefined, peerUid: number | undefined): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    const r = new XdrReader(msg);
    let xid: number;
    let call;
    try {
      const start = readMessageStart(r);
      if (start.mtype !== MsgType.CALL) return undefined;
      xid = start.xid;
      call = readCallBody(r, xid);
    } catch {
      return undefined; // cannot even tell who to answer: svc_getreq drops it too
    }
    if (call.rpcvers !== RPC_VERSION) {
      const w = this.#begin(reserve);
      writeRpcMismatchReply(w, xid, RPC_VERSION, RPC_VERSION);
      return this.#end(w, reserve);
    }
    const ctx: RpcCallContext = { xid, prog: call.prog, vers: call.vers, proc: call.proc, transport, peer, cred: call.cred, peerPid, peerUid };
    let verf: OpaqueAuth = AUTH_NONE;
    try {
      if (call.cred.flavor === AuthFlavor.AUTH_SYS) {
        try {
          ctx.authSys = decodeAuthSys(call.cred.body);
        } catch {
          throw new AuthError(AuthStat.AUTH_BADCRED);
        }
        verf = this.#issueShort(ctx.authSys);
      } else if (call.cred.flavor === AuthFlavor.AUTH_SHORT) {
        ctx.authSys = this.#short.get(hexKey(call.cred.body));
      }
      this.#authenticate(ctx);
    } catch (err) {
      const w = this.#begin(reserve);
      writeAuthErrorReply(w, xid, err instanceof AuthError ? err.stat : AuthStat.AUTH_FAILED);
      return this.#end(w, reserve);
    }
    const versions = this.#programs.get(call.prog);
    if (versions === undefined) {
      const w = this.#begin(reserve);
      writeAcceptedReply(w, xid, AcceptStat.PROG_UNAVAIL);
      return this.#end(w, reserve);
    }
    const table = versions.get(call.vers);
    if (table === undefined) {
      let low = Infinity;
      let high = 0;
      for (const v of versions.keys()) {
        low = Math.min(low, v);
        high = Math.max(high, v);
      }
      const w = this.#begin(reserve);
      writeAcceptedReply(w, xid, AcceptStat.PROG_MISMATCH, AUTH_NONE, { low, high });
      return this.#end(w, reserve);
    }
    const proc = table.get(call.proc);
    if (proc === undefined) {
      const w = this.#begin(reserve);
      writeAcceptedReply(w, xid, AcceptStat.PROC_UNAVAIL);
      return this.#end(w, reserve);
    }
    let drcKey: string | undefined;
    if (transport === 'udp' && this.#drc && call.proc !== 0) {
      drcKey = DuplicateRequestCache.key(peer, xid, call.prog, call.vers, call.proc, argsChecksum(msg, r.pos, msg.length));
      const seen = this.#drc.begin(drcKey);
      if (seen !== undefined) return seen.state === 'done' ? seen.reply : undefined;
    }
    let arg: unknown;
    try {
      arg = decodeFrom(proc.args, r);
    } catch (err) {
      if (drcKey) this.#drc?.forget(drcKey);
      if (!(err instanceof XdrError)) throw err;
      const w = this.#begin(reserve);
      writeAcceptedReply(w, xid, AcceptStat.GARBAGE_ARGS);
      return this.#end(w, reserve);
    }
    let result: unknown;
    try {
      result = proc.handler(arg, ctx);
    } catch (err) {
      return this.#failed(err, ctx, reserve, drcKey);
    }
    if (result instanceof Promise) {
      return result.then(
        (res: unknown) => this.#complete(res, ctx, proc, verf, reserve, drcKey),
        (err: unknown) => this.#failed(err, ctx, reserve, drcKey),
      );
    }
    return this.#complete(result, ctx, proc, verf, reserve, drcKey);
  }

  /** The reply to a procedure that returned `result`. */
  #complete(result: unknown, ctx: RpcCallContext, proc: Procedure<unknown, unknown>, verf: OpaqueAuth, reserve: number, drcKey: string | undefined): Uint8Array | undefined {
    let reply: Uint8Array | undefined;
    if (result !== NO_REPLY) {
      let w = this.#begin(reserve);
      writeAcceptedReply(w, ctx.xid, AcceptStat.SUCCESS, verf);
      let encodeFailed = false;
      let encodeError: unknown;
      try {
        proc.result.encode(w, result);
      } catch (err) {
        encodeFailed = true;
        encodeError = err;
        w = this.#begin(reserve);
        writeAcceptedReply(w, ctx.xid, AcceptStat.SYSTEM_ERR);
      }
      reply = this.#end(w, reserve, drcKey !== undefined);
      if (encodeFailed) this.#opts.onError?.(encodeError, ctx);
    }
    if (drcKey) this.#drc?.finish(drcKey, reply);
    return reply;
  }

  /** The reply to a procedure that threw `err`. */
  #failed(err: unknown, ctx: RpcCallContext, reserve: number, drcKey: string | undefined): Uint8Array {
    if (drcKey) this.#drc?.forget(drcKey);
    if (err instanceof AuthError) {
      const w = this.#begin(reserve);
      writeAuthErrorReply(w, ctx.xid, err.stat);
      return this.#end(w, reserve);
    }
    let stat: number = AcceptStat.SYSTEM_ERR;
    let mismatch: { low: number; high: number } | undefined;
    if (err instanceof RpcError) {
      if (err instanceof ProgUnavailError) stat = AcceptStat.PROG_UNAVAIL;
      else if (err instanceof ProgMismatchError) {
        stat = AcceptStat.PROG_MISMATCH;
        mismatch = { low: err.low, high: err.high };
      } else if (err instanceof ProcUnavailError) stat = AcceptStat.PROC_UNAVAIL;
      else if (err instanceof GarbageArgsError) stat = AcceptStat.GARBAGE_ARGS;
    } else {
      this.#opts.onError?.(err, ctx);
    }
    const w = this.#begin(reserve);
    writeAcceptedReply(w, ctx.xid, stat, AUTH_NONE, mismatch);
    return this.#end(w, reserve);
  }

  /**
   * Register every program version served at every address with the system
   * rpcbind (as svc_reg does: UNSET of the pair first, then SET per netid),
   * and unregister on close(). `rpcinfo -p` then lists it.
   */
  async register(options: { rpcbind?: AddressLike } = {}): Promise<void> {
    const rb = await RpcbindClient.connect(options.rpcbind);
    try {
      for (const { prog, vers } of this.programs) {
        await rb.unset({ prog, vers });
        for (const b of this.#bound) {
          const { netid, uaddr } = toUniversalAddress(b.address);
          const ok = await rb.set({ prog, vers, netid, addr: uaddr });
          if (!ok) throw new SwitchboardError('EEXIST', `rpcbind refused to register program ${prog} version ${vers} on ${netid} ${uaddr}`);
        }
        this.#registered.push(async () => {
          const undo = await RpcbindClient.connect(options.rpcbind);
          try {
            await undo.unset({ prog, vers });
          } finally {
            await undo.close();
          }
        });
      }
    } finally {
      await rb.close();
    }
  }

  #issueShort(p: AuthSysParams): OpaqueAuth {
    const max = this.#opts.shortCredentials ?? 0;
    if (max <= 0) return AUTH_NONE;
    const body = new Uint8Array(8);
    const v = new DataView(body.buffer);
    v.setUint32(0, (Math.random() * 0x1_0000_0000) >>> 0);
    v.setUint32(4, ++this.#shortSeq >>> 0);
    this.#short.set(hexKey(body), p);
    while (this.#short.size > max) this.#short.delete(this.#short.keys().next().value as string);
    return { flavor: AuthFlavor.AUTH_SHORT, body };
  }

  /** Forget every AUTH_SHORT credential issued (clients fall back to AUTH_SYS). */
  forgetShortCredentials(): void {
    this.#short.clear();
  }

  /** Remember a function that undoes a registration, run by close(). */
  onClose(undo: () => Promise<void>): void {
    this.#registered.push(undo);
  }

  /** Stop listening, close connections, and run the undo functions (rpcbind UNSET). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const undos = this.#registered;
    this.#registered = [];
    for (const undo of undos.reverse()) await undo().catch(() => undefined);
    for (const ch of this.#connections) ch.destroy();
    await Promise.all(
      this.#bound.map(async (b) => {
        if (b.listener) await b.listener.close({ graceMs: 0 });
        b.poller?.stop();
        if (b.endpoint) await b.endpoint.close();
      }),
    );
  }

  /** UDP calls taken straight from a socket while spinning after a reply (the polled path). */
  get polledDatagrams(): number {
    let n = 0;
    for (const b of this.#bound) n += b.poller?.taken ?? 0;
    return n;
  }

  toString(): string {
    return `ONC RPC server on ${this.addresses.map(formatAddress).join(', ')}`;
  }
}
