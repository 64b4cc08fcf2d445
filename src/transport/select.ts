/**
 * select(2) for Channels (seed 12.2.3): wait until any of several channels of
 * any kinds has something to read (data, EOF or an error), or a timeout.
 */
import { AbortError, ArgumentError, SwitchboardError } from '../errors.js';
import type { Channel } from './channel.js';
import { deadline, type Deadline } from './deadline.js';

export interface SelectOptions {
  /** Milliseconds to wait; 0 polls; undefined waits forever. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Resolve with the channels whose read() would not wait, in the order given;
 * with an empty array when the timeout passes first.
 */
export function select(channels: readonly Channel[], options: SelectOptions = {}): Promise<Channel[]> {
  if (!Array.isArray(channels) || channels.some((c) => c === null || typeof c !== 'object' || typeof c.onReadReady !== 'function')) {
    return Promise.reject(new ArgumentError('select() takes an array of Channels'));
  }
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 0)) {
    return Promise.reject(new ArgumentError(`timeoutMs must be a non-negative number, got ${timeoutMs}`));
  }
  const ready = channels.filter((c) => c.readReady);
  if (ready.length > 0 || timeoutMs === 0) return Promise.resolve(ready);
  if (signal?.aborted) return Promise.reject(new AbortError('select aborted'));
  return new Promise<Channel[]>((resolve, reject) => {
    let cancels: (() => void)[] = [];
    let timer: Deadline | undefined;
    let settled = false;
    let collecting = false;
    const finish = (result: Channel[] | Error): void => {
      if (settled) return;
      settled = true;
      for (const c of cancels) c();
      timer?.clear();
      signal?.removeEventListener('abort', onAbort);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onAbort = (): void => finish(new AbortError('select aborted'));
    const arm = (): void => {
      for (const c of cancels) c();
      cancels = channels.map((c) => c.onReadReady(onReady));
    };
    // Let every event already queued land before collecting, so one call
    // reports all channels that became ready together. If someone else took
    // the data meanwhile, nothing is ready: wait on, as select(2) would.
    const collect = (): void => {
      collecting = false;
      if (settled) return;
      const ready = channels.filter((c) => c.readReady);
      if (ready.length > 0) finish(ready);
      else arm();
    };
    const onReady = (): void => {
      if (collecting || settled) return;
      collecting = true;
      setImmediate(collect);
    };
    arm();
    if (timeoutMs !== undefined) timer = deadline(timeoutMs, () => finish([]));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface MultiplexEvent {
  channel: Channel;
  /** A chunk or message; null once, when the channel reaches EOF. */
  data: Uint8Array | null;
  /** Set instead of data when the channel failed; it is then dropped from the set. */
  error?: SwitchboardError | Error;
}

/**
 * Yield (channel, data) as data arrives on any of the channels, fairly, until
 * every channel has reached EOF or failed (or the signal aborts).
 */
export async function* multiplex(channels: readonly Channel[], options: { signal?: AbortSignal } = {}): AsyncGenerator<MultiplexEvent> {
  const active = [...channels];
  while (active.length > 0) {
    const ready = await select(active, options.signal ? { signal: options.signal } : {});
    for (const channel of ready) {
      let data: Uint8Array | null | undefined;
      try {
        data = channel.tryRead();
      } catch (err) {
        active.splice(active.indexOf(channel), 1);
        yield { channel, data: null, error: err as Error };
        continue;
      }
      if (data === undefined) continue;
      if (data === null) active.splice(active.indexOf(channel), 1);
      yield { channel, data };
    }
  }
}
