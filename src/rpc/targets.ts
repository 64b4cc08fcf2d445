/** Telling apart what `expose({ on })` and `connect(target)` accept. */
import type { Address } from '../transport/address.js';
import type { Channel } from '../transport/channel.js';
import type { Listener } from '../transport/listener.js';
import { isPortLike, type PortLike } from './links.js';

export type Target = Channel | PortLike | Address | string;

export function isChannel(x: unknown): x is Channel {
  const c = x as Partial<Channel> | null;
  return typeof c === 'object' && c !== null && typeof c.tryRead === 'function' && typeof c.write === 'function' && typeof c.messages === 'boolean';
}

export function isListener(x: unknown): x is Listener {
  const l = x as Partial<Listener> | null;
  return typeof l === 'object' && l !== null && typeof l.accept === 'function' && typeof l.close === 'function' && typeof l.address === 'object';
}

export function isAddressValue(x: unknown): x is Address {
  return typeof x === 'object' && x !== null && typeof (x as { transport?: unknown }).transport === 'string' && !isChannel(x) && !isPortLike(x);
}

/** An address string (`tcp://...`, `unix:///...`, `shm:name`) rather than a name. */
export function looksLikeAddress(s: string): boolean {
  return /^[a-z]+:/.test(s);
}

export const RPC_PROTOCOL = 'switchboard-rpc';
