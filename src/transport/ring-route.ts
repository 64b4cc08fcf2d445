/**
 * `shm:<name>` addresses through the same connect()/listen() as sockets: a
 * shared-memory ring pair (src/shm) is one more kind of Channel. Loaded
 * lazily so that programs that never use rings never load the native addon.
 */
import type { Address } from './address.js';
import type { Channel } from './channel.js';
import type { Listener } from './listener.js';
import { ChannelClosedError } from './socket-channel.js';

export async function connectRing(addr: Extract<Address, { transport: 'shm' }>, options: { timeoutMs?: number; signal?: AbortSignal }): Promise<Channel> {
  const { connectShm } = await import('../shm/index.js');
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  // the listener may not have created the ring pair yet: retry ENOENT until the deadline, like connect() to a socket being bound
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    try {
      return await connectShm(addr);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT' || Date.now() >= deadline || options.signal?.aborted) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** A ring pair carries one connection: the listener hands out one Channel, then is done. */
export async function listenRing(addr: Extract<Address, { transport: 'shm' }>): Promise<Listener> {
  const { listenShm } = await import('../shm/index.js');
  const shm = await listenShm(addr);
  let accepted: Channel | undefined;
  let closed = false;
  const listener: Listener = {
    address: addr,
    get connections() {
      return accepted !== undefined && !accepted.isClosed ? 1 : 0;
    },
    refused: 0,
    async accept() {
      if (closed || accepted) throw new ChannelClosedError(`listener shm:${addr.name} (one connection per ring pair)`);
      accepted = await shm.accept();
      return accepted;
    },
    async *[Symbol.asyncIterator]() {
      if (!closed && !accepted) yield await listener.accept();
    },
    async close() {
      closed = true;
      await shm.close();
    },
  };
  return listener;
}
