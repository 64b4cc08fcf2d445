/**
 * The compile-time half of the contract: `Remote<T>` is what a client holds
 * for an interface T. Every method becomes `(...args) => Promise<Awaited<R>>`;
 * parameter types that cannot cross (symbols, objects with symbol keys such
 * as sockets and streams) turn into `never`, so a call with them does not
 * compile. Results are mapped to what arrives: functions and proxy()-marked
 * objects become remote stubs, async generators become remote iterables.
 */
import type { PeerInfo } from '../transport/channel.js';
import type { ProxyMarked, StreamMarked } from './markers.js';

type Primitive = string | number | bigint | boolean | null | undefined | void;
type Binary = ArrayBuffer | ArrayBufferView;
type AnyFunction = (...args: never[]) => unknown;

/** T if a value of type T can be sent, otherwise never (checked member by member). */
export type Sendable<T> = unknown extends T
  ? T // unknown and any: nothing to check at compile time (the run time still checks)
  : T extends Primitive
  ? T
  : T extends symbol
    ? never
    : T extends AnyFunction
      ? T
      : T extends ProxyMarked | StreamMarked<unknown>
        ? T
        : T extends AsyncIterable<unknown>
          ? [Exclude<keyof T, typeof Symbol.asyncIterator | 'next' | 'return' | 'throw'>] extends [never]
            ? T // a plain async iterable or generator: streamed
            : never // a socket, a readable stream...: mark it with stream() to send its items
        : T extends Date | RegExp | Binary | Error
          ? T
          : T extends Map<infer K, infer V>
            ? Map<Sendable<K>, Sendable<V>>
            : T extends Set<infer V>
              ? Set<Sendable<V>>
              : T extends readonly unknown[]
                ? { [I in keyof T]: Sendable<T[I]> }
                : T extends object
                  ? [Extract<keyof T, symbol>] extends [never]
                    ? { [K in keyof T]: Sendable<T[K]> }
                    : never
                  : never;

/** An async iterable that comes from the other side; `return()` cancels it there. */
export interface RemoteIterable<T> extends AsyncIterableIterator<T> {
  return(): Promise<IteratorResult<T, undefined>>;
}

/** What arrives for a value of type T sent by the other side. */
export type Received<T> = T extends Primitive
  ? T
  : T extends AnyFunction
    ? RemoteFunction<T>
    : T extends ProxyMarked<infer O>
      ? Remote<O>
      : T extends AsyncIterable<infer V>
        ? RemoteIterable<Received<V>>
        : T extends Date | RegExp | Binary | Error
          ? T
          : T extends Map<infer K, infer V>
            ? Map<Received<K>, Received<V>>
            : T extends Set<infer V>
              ? Set<Received<V>>
              : T extends readonly unknown[]
                ? { [I in keyof T]: Received<T[I]> }
                : T extends object
                  ? { [K in keyof T]: Received<T[K]> }
                  : T;

type SendableArgs<A extends readonly unknown[]> = { [I in keyof A]: Sendable<A[I]> };

/** A remote function: same parameters, the result always a promise. */
export type RemoteFunction<F> = F extends (...args: infer A) => infer R ? (...args: SendableArgs<A>) => Promise<Received<Awaited<R>>> : never;

type MethodKeys<T> = { [K in keyof T]: T[K] extends AnyFunction ? K : never }[keyof T];

/** The client's view of an interface T: its methods, each returning a promise. */
export type Remote<T> = { readonly [K in MethodKeys<T> & string]: RemoteFunction<T[K]> };

/** Options for one call (see withOptions()). */
export interface CallOptions {
  /** Reject with ETIMEDOUT after this long; the server's handler sees its signal abort. */
  timeoutMs?: number | undefined;
  /** Abort the call here and in the server's handler. */
  signal?: AbortSignal | undefined;
  /** Send and do not wait for a reply: the promise resolves once the call is queued. */
  oneWay?: boolean | undefined;
  /** Key/value pairs the server sees in ctx.metadata. */
  metadata?: Record<string, string> | undefined;
}

/** What a server-side handler (and interceptor) knows about the call in progress. */
export interface CallContext {
  readonly method: string;
  readonly args: readonly unknown[];
  /** Peer credentials (pid, uid, gid on Unix sockets). */
  readonly peer: PeerInfo;
  /** What `authenticate` returned for this connection (undefined without it). */
  readonly identity: unknown;
  readonly metadata: Readonly<Record<string, string>> | undefined;
  /** Aborts when the client cancels, its deadline passes, or it disconnects. */
  readonly signal: AbortSignal;
  /** Epoch milliseconds after which the client has given up, if it set a deadline. */
  readonly deadline: number | undefined;
  /** True for a one-way call: nobody waits for the result. */
  readonly oneWay: boolean;
  /** A short description of the connection, for logs. */
  readonly connection: string;
}

export type ServerInterceptor = (ctx: CallContext, next: () => Promise<unknown>) => Promise<unknown>;

export interface OutgoingCall {
  readonly method: string;
  args: unknown[];
  /** Added to the call, seen by the server as ctx.metadata. */
  metadata: Record<string, string>;
  readonly oneWay: boolean;
}

export type ClientInterceptor = (call: OutgoingCall, next: () => Promise<unknown>) => Promise<unknown>;
