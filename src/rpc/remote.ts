/**
 * The client-side stubs of seed 12.2.1, made at run time by a Proxy: any
 * property of a remote object is a function that sends a call. The same
 * machinery makes remote functions (callbacks) and proxy() references.
 */
import { ArgumentError } from '../errors.js';
import { proxy } from './markers.js';
import type { CallOptions, Remote } from './types.js';

/** What a stub needs from its connection. */
export interface Caller {
  call(target: number, method: string, args: unknown[], options: CallOptions | undefined): Promise<unknown>;
}

export interface RemoteInfo {
  readonly owner: Caller;
  /** The owner's id for the object (0 = the exposed root). */
  readonly target: number;
  readonly kind: 'object' | 'function';
  readonly options: CallOptions | undefined;
}

const infos = new WeakMap<object, RemoteInfo>();

export function remoteInfo(value: object): RemoteInfo | undefined {
  return infos.get(value);
}

export function makeRemote(owner: Caller, target: number, kind: 'object' | 'function', options: CallOptions | undefined): object {
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  const handler: ProxyHandler<object> = {
    get(_t, prop) {
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      let fn = methods.get(prop);
      if (fn === undefined) {
        fn = (...args: unknown[]) => owner.call(target, prop, args, options);
        methods.set(prop, fn);
      }
      return fn;
    },
    has: () => false,
    set: () => false,
    deleteProperty: () => false,
    defineProperty: () => false,
    ownKeys: () => [],
    getOwnPropertyDescriptor: () => undefined,
  };
  if (kind === 'function') handler.apply = (_t, _this, args: unknown[]) => owner.call(target, '', args, options);
  // A fresh target per stub: ownKeys must agree with the target's own non-configurable keys.
  const p = new Proxy(kind === 'function' ? function remote(): void {} : Object.create(null), handler) as object;
  if (kind === 'object') proxy(p); // sent on, it goes as a reference, not a copy
  infos.set(p, { owner, target, kind, options });
  return p;
}

function infoOf(remote: object): RemoteInfo {
  const info = infos.get(remote);
  if (!info) throw new ArgumentError('not a remote object (use a value returned by connect() or received over RPC)');
  return info;
}

/** The same remote object, whose calls use these options (deadline, signal, metadata, one-way). */
export function withOptions<R extends object>(remote: R, options: CallOptions): R {
  const info = infoOf(remote);
  return makeRemote(info.owner, info.target, info.kind, { ...info.options, ...options }) as R;
}

/** The same remote object whose calls are one-way: sent, never answered; the promise resolves once queued. */
export function oneWay<T>(remote: Remote<T>): { readonly [K in keyof Remote<T>]: (...args: Parameters<Remote<T>[K]>) => Promise<void> } {
  return withOptions(remote, { oneWay: true }) as never;
}
