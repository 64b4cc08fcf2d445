/**
 * Marks that change how a value crosses: `proxy(obj)` sends a reference
 * instead of a copy (calls go back to the owner, like a CORBA object
 * reference); `stream(iterable)` sends any async iterable item by item with
 * flow control (async generators are streamed without a mark);
 * `transfer(value, buffers)` moves ArrayBuffers to a worker instead of
 * copying them (other channels copy).
 */

declare const proxyBrand: unique symbol;
declare const streamBrand: unique symbol;

/** The type of an object marked with proxy(): it crosses by reference. */
export type ProxyMarked<T extends object = object> = T & { readonly [proxyBrand]: true };
/** The type of an async iterable marked with stream(). */
export type StreamMarked<T> = AsyncIterable<T> & { readonly [streamBrand]: true };

const proxied = new WeakSet<object>();
const streamed = new WeakSet<object>();
const transfers = new WeakMap<object, readonly ArrayBuffer[]>();

/** Send `obj` as a remote reference: the receiver gets a stub whose method calls run here. */
export function proxy<T extends object>(obj: T): ProxyMarked<T> {
  proxied.add(obj);
  proxyMarks++;
  return obj as ProxyMarked<T>;
}

// Lets the encoder skip the WeakSet lookup while proxy() was never called.
let proxyMarks = 0;

export function isProxyMarked(value: object): boolean {
  return proxyMarks > 0 && proxied.has(value);
}

/** Send any async iterable item by item (credit-based flow control). */
export function stream<T>(iterable: AsyncIterable<T>): StreamMarked<T> {
  streamed.add(iterable);
  return iterable as StreamMarked<T>;
}

export function isStreamable(value: object): value is AsyncIterable<unknown> {
  if (streamed.has(value)) return true;
  // Async generator objects are streamed without a mark; other async
  // iterables (sockets, readable streams) must be marked on purpose.
  return Object.prototype.toString.call(value) === '[object AsyncGenerator]';
}

/**
 * Over a worker MessagePort, move `buffers` (which `value` contains) instead
 * of copying them; the sender's copies become detached. Other channels copy.
 */
export function transfer<T extends object>(value: T, buffers: readonly ArrayBuffer[]): T {
  transfers.set(value, buffers);
  return value;
}

export function transferListOf(value: object): readonly ArrayBuffer[] | undefined {
  return transfers.get(value);
}
