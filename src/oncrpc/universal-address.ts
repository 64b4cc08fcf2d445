/**
 * Universal addresses and netids (RFC 1833 section 2, RFC 5665): how rpcbind
 * writes a transport address as text. `127.0.0.1.4.1` is 127.0.0.1 port 1025;
 * IPv6 is the usual text form followed by the two port bytes; a Unix socket
 * (netid `local`) is its path.
 */
import { isIP } from 'node:net';
import { ArgumentError } from '../errors.js';
import type { Address } from '../transport/index.js';

export type Netid = 'tcp' | 'udp' | 'tcp6' | 'udp6' | 'local';

export function netidOf(addr: Address): Netid {
  switch (addr.transport) {
    case 'tcp':
      return isIP(addr.host) === 6 ? 'tcp6' : 'tcp';
    case 'udp':
      return isIP(addr.host) === 6 ? 'udp6' : 'udp';
    case 'unix':
      return 'local';
    default:
      throw new ArgumentError(`${addr.transport} has no rpcbind netid`);
  }
}

export function toUniversalAddress(addr: Address): { netid: Netid; uaddr: string } {
  const netid = netidOf(addr);
  if (addr.transport === 'unix') return { netid, uaddr: addr.path };
  if (addr.transport !== 'tcp' && addr.transport !== 'udp') throw new ArgumentError(`${addr.transport} has no universal address`);
  return { netid, uaddr: `${addr.host}.${addr.port >> 8}.${addr.port & 0xff}` };
}

export function fromUniversalAddress(netid: string, uaddr: string): Address {
  if (netid === 'local' || netid === 'unix') {
    if (uaddr === '') throw new ArgumentError('empty local universal address');
    return { transport: 'unix', path: uaddr };
  }
  const m = /^(.*)\.(\d{1,3})\.(\d{1,3})$/.exec(uaddr);
  if (!m) throw new ArgumentError(`bad universal address "${uaddr}" for netid ${netid}`);
  const host = m[1] as string;
  const hi = Number(m[2]);
  const lo = Number(m[3]);
  if (hi > 255 || lo > 255 || isIP(host) === 0) throw new ArgumentError(`bad universal address "${uaddr}" for netid ${netid}`);
  const port = hi * 256 + lo;
  if (netid === 'tcp' || netid === 'tcp6') return { transport: 'tcp', host, port };
  if (netid === 'udp' || netid === 'udp6') return { transport: 'udp', host, port };
  throw new ArgumentError(`unknown netid "${netid}"`);
}
