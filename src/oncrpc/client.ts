/**
 * The ONC RPC client (RFC 5531): one connection, many calls in flight matched
 * by xid, a timeout per call, retransmission with exponential backoff on UDP,
 * a fresh connection after a TCP or Unix-socket connection drops, and batched
 * calls that expect no reply. Calls made in the same tick leave in one write.
 */
import { AbortError, ArgumentError, ProtocolError, SwitchboardError, TimeoutError } from '../errors.js';
import { MAX_UDP_PAYLOAD, connect, toAddress, formatAddress, type Address, type AddressLike, type Channel } from '../transport/index.js';
import { RecordMarkingDecoder, XdrReader, XdrWriter, decodeFrom, xdrVoid, type XdrCodec } from '../wire/index.js';
import { AuthError, rpcErrorFromReply } from './rpc-errors.js';
import {
  AUTH_NONE,
  AuthFlavor,
  AuthStat,
  MsgType,
  encodeAuthSys,
  readMessageStart,
  readReplyBody,
  writeCallHeader,
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
  /** TCP/Unix: largest reply record accepted (default 16 MiB). */
  maxRecordSize?: number;
  /** TCP/Unix: split outgoing records into fragments of at most this many bytes. */
  maxFragment?: number;
  /** TCP/Unix: open a new connection when the old one dropped (default true). */
  reconnect?: boolean;
  connectTimeoutMs?: number;
}

export interface CallOptions {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

interface Pending {
  resolve(reader: XdrReader): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
  retransmit?: NodeJS.Timeout | undefined;
  call: { prog: number; vers: number; proc: number };
}

const MAX_FRAGMENT = 0x7fff_ffff;
const LAST = 0x8000_0000;

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
  readonly #pending = new Map<number, Pending>();
  #closed = false;

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
    return this.#pending.size;
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
        void this.#readLoop(ch);
        return ch;
      },
      (err: unknown) => {
        this.#connecting = undefined;
        throw err;
      },
    );
    return this.#connecting;
  }

  async #readLoop(ch: Channel): Promise<void> {
    const decoder = this.transport === 'udp' ? undefined : new RecordMarkingDecoder({ maxRecordSize: this.#opts.maxRecordSize });
    let failure: Error | undefined;
    try {
      for (;;) {
        const chunk = await ch.read();
        if (chunk === null) break;
        if (decoder === undefined) {
          this.#onReply(chunk);
          continue;
        }
        decoder.push(chunk);
        for (let rec = decoder.next(); rec !== undefined; rec = decoder.next()) this.#onReply(rec);
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    this.#dropChannel(ch, failure);
  }

  #dropChannel(ch: Channel, failure?: Error): void {
    if (this.#channel !== ch) return;
    this.#channel = undefined;
    ch.destroy();
    const err =
      failure instanceof SwitchboardError
        ? failure
        : new SwitchboardError(this.#closed ? 'ECLOSED' : 'ECONNRESET', `${this.description}: the connection closed${failure ? `: ${failure.message}` : ''}`, { cause: failure });
    if (!this.#opts.reconnect && this.transport !== 'udp') this.#closed = true;
    for (const [xid, p] of this.#pending) {
      this.#pending.delete(xid);
      clearTimeout(p.timer);
      clearTimeout(p.retransmit);
      p.reject(err);
    }
  }

  #onReply(msg: Uint8Array): void {
    const r = new XdrReader(msg);
    let xid: number;
    try {
      const start = readMessageStart(r);
      if (start.mtype !== MsgType.REPLY) return;
      xid = start.xid;
    } catch {
      return; // not an RPC reply: ignore it, as clnt_dg does
    }
    const p = this.#pending.get(xid);
    if (p === undefined) return; // late duplicate, a batched call's reply, or a timed-out call
    this.#pending.delete(xid);
    clearTimeout(p.timer);
    clearTimeout(p.retransmit);
    try {
      const reply = readReplyBody(r, xid);
      const err = rpcErrorFromReply(reply, p.call);
      if (err) {
        p.reject(err);
        return;
      }
      if (reply.replyStat === 'accepted' && reply.verf.flavor === AuthFlavor.AUTH_SHORT && this.#fullCred.flavor === AuthFlavor.AUTH_SYS) {
        // The server offers a short-hand credential for later calls (RFC 5531 appendix A).
        this.#cred = { flavor: AuthFlavor.AUTH_SHORT, body: reply.verf.body.slice() };
      }
      p.resolve(r);
    } catch (err) {
      p.reject(err as Error);
    }
  }

  /** Hand a record to the channel; a burst of calls in one tick leaves as one writev (the channel corks). */
  #enqueue(ch: Channel, record: Uint8Array): void {
    ch.write(record).catch((err: unknown) => this.#dropChannel(ch, err as Error));
  }

  /** Encode a call message, with room for the record mark on streams. */
  #encode<A>(xid: number, prog: number, vers: number, proc: number, argCodec: XdrCodec<A>, arg: A, cred: OpaqueAuth): Uint8Array | Uint8Array[] {
    const stream = this.transport !== 'udp';
    const w = new XdrWriter(256);
    if (stream) w.uint(0);
    writeCallHeader(w, { xid, prog, vers, proc, cred, verf: AUTH_NONE });
    argCodec.encode(w, arg);
    const len = w.length - (stream ? 4 : 0);
    if (!stream) return w.finish();
    if (len <= this.#opts.maxFragment) {
      w.setUintAt(0, (LAST | len) >>> 0);
      return w.finish();
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
   */
  call<A, R>(prog: number, vers: number, proc: number, argCodec: XdrCodec<A>, arg: A, resCodec: XdrCodec<R>, options: CallOptions = {}): Promise<R> {
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
    if (options.signal?.aborted) return Promise.reject(new AbortError());
    const ch = this.#channel;
    if (ch === undefined) return this.#ensureChannel().then(() => this.#call(prog, vers, proc, argCodec, arg, resCodec, options, cred));
    const xid = this.#nextXid();
    let record: Uint8Array | Uint8Array[];
    try {
      record = this.#encode(xid, prog, vers, proc, argCodec, arg, cred);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (this.transport === 'udp' && (record as Uint8Array).length > MAX_UDP_PAYLOAD) {
      return Promise.reject(new ProtocolError(`call of ${(record as Uint8Array).length} bytes does not fit in one UDP datagram (${MAX_UDP_PAYLOAD})`, { code: 'EMSGSIZE' }));
    }
    const timeoutMs = options.timeoutMs ?? this.#opts.timeoutMs;
    return new Promise<R>((resolve, reject) => {
      const done = (reader: XdrReader) => {
        try {
          resolve(decodeFrom(resCodec, reader));
        } catch (err) {
          reject(err as Error);
        }
      };
      const p: Pending = { resolve: done, reject, timer: undefined, call: { prog, vers, proc } };
      const fail = (err: Error) => {
        if (this.#pending.get(xid) !== p) return;
        this.#pending.delete(xid);
        clearTimeout(p.timer);
        clearTimeout(p.retransmit);
        options.signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      const onAbort = () => fail(new AbortError(`call ${prog}/${vers}/${proc} aborted`));
      if (Number.isFinite(timeoutMs)) {
        p.timer = setTimeout(() => fail(new TimeoutError(`call ${prog}/${vers}/${proc} got no reply within ${timeoutMs} ms`)), timeoutMs);
      }
      if (options.signal) {
        const signal = options.signal;
        signal.addEventListener('abort', onAbort, { once: true });
        p.resolve = (r) => {
          signal.removeEventListener('abort', onAbort);
          done(r);
        };
        p.reject = (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        };
      }
      this.#pending.set(xid, p);
      this.#send(ch, record);
      if (this.transport === 'udp') {
        let wait = this.#opts.retransmitMs;
        const again = () => {
          if (this.#pending.get(xid) !== p) return;
          const cur = this.#channel;
          if (cur) this.#send(cur, record);
          wait = Math.min(wait * 2, this.#opts.retransmitMs * 8);
          p.retransmit = setTimeout(again, wait);
        };
        p.retransmit = setTimeout(again, wait);
      }
    });
  }

  #send(ch: Channel, record: Uint8Array | Uint8Array[]): void {
    if (Array.isArray(record)) for (const part of record) this.#enqueue(ch, part);
    else this.#enqueue(ch, record);
  }

  /**
   * Batching (RFC 5531 section 8 "batching"): send a call and expect no
   * reply. The server's procedure must not answer it. Batched calls leave
   * with the next write; a following normal call flushes the pipeline.
   */
  async send<A>(prog: number, vers: number, proc: number, argCodec: XdrCodec<A>, arg: A): Promise<void> {
    const record = this.#encode(this.#nextXid(), prog, vers, proc, argCodec, arg, this.#cred);
    const ch = this.#channel ?? (await this.#ensureChannel());
    this.#send(ch, record);
  }

  /** Call procedure 0 (NULL), which every server answers. */
  async ping(prog: number, vers: number, options: CallOptions = {}): Promise<void> {
    await this.call(prog, vers, 0, xdrVoid, undefined, xdrVoid, options);
  }

  /** Fail pending calls with ECLOSED and close the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const ch = this.#channel;
    if (ch) {
      this.#dropChannel(ch);
      await ch.closed;
    }
  }
}
