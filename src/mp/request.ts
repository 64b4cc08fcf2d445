/** Non-blocking operations (isend/irecv) as requests: wait, test, waitAny, waitAll. */
import { ArgumentError } from '../errors.js';

export class Request<T> {
  private state: 'pending' | 'done' | 'failed' = 'pending';
  private value: T | undefined;
  private error: unknown;
  private readonly promise: Promise<T>;

  constructor(promise: Promise<T>) {
    this.promise = promise;
    promise.then(
      (v) => {
        this.state = 'done';
        this.value = v;
      },
      (e: unknown) => {
        this.state = 'failed';
        this.error = e;
      },
    );
  }

  /** True once the operation finished, successfully or not. */
  get completed(): boolean {
    return this.state !== 'pending';
  }

  /** Wait for completion; resolves with the result or rejects with the operation's error. */
  wait(): Promise<T> {
    return this.promise;
  }

  /** The result if finished (throws the error if it failed), else undefined. Never waits. */
  test(): T | undefined {
    if (this.state === 'failed') throw this.error;
    return this.state === 'done' ? this.value : undefined;
  }

  /** Wait for the first of several requests; resolves with its index and result. */
  static async waitAny<T>(requests: readonly Request<T>[]): Promise<{ index: number; value: T }> {
    if (requests.length === 0) throw new ArgumentError('waitAny needs at least one request');
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i] as Request<T>;
      if (r.state === 'done') return { index: i, value: r.value as T };
      if (r.state === 'failed') throw r.error;
    }
    return Promise.race(requests.map((r, index) => r.promise.then((value) => ({ index, value }))));
  }

  /** Wait for every request; rejects with the first failure. */
  static waitAll<T>(requests: readonly Request<T>[]): Promise<T[]> {
    return Promise.all(requests.map((r) => r.promise));
  }
}
