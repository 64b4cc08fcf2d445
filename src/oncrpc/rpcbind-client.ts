/**
 * A client for the portmapper (version 2) and rpcbind (versions 3 and 4),
 * RFC 1833: program 100000 on port 111 (and /run/rpcbind.sock). CALLIT is
 * left out: it lets anyone bounce calls off rpcbind and is off in modern
 * rpcbind builds anyway.
 */
import { SwitchboardError } from '../errors.js';
import type { Address, AddressLike } from '../transport/index.js';
import { xdr, type XdrCodec } from '../wire/index.js';
import { RpcClient, type CallOptions, type RpcClientOptions } from './client.js';
import { fromUniversalAddress, type Netid } from './universal-address.js';

export const RPCBIND_PROG = 100000;
export const PMAP_VERS = 2;
export const RPCBIND_PORT = 111;
export const RPCBIND_SOCKET = '/run/rpcbind.sock';
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export interface PmapMapping {
  prog: number;
  vers: number;
  /** IPPROTO_TCP (6) or IPPROTO_UDP (17). */
  prot: number;
  port: number;
}

export interface RpcbEntry {
  prog: number;
  vers: number;
  netid: string;
  /** Universal address. */
  addr: string;
  owner: string;
}

interface PmapList {
  map: PmapMapping;
  next: PmapList | null;
}
interface RpcbList {
  rpcb: RpcbEntry;
  next: RpcbList | null;
}

const mapping = xdr.struct<PmapMapping>([
  ['prog', xdr.uint],
  ['vers', xdr.uint],
  ['prot', xdr.uint],
  ['port', xdr.uint],
]);
const pmaplist: XdrCodec<PmapList | null> = xdr.optional(
  xdr.struct<PmapList>([
    ['map', mapping],
    ['next', xdr.lazy(() => pmaplist)],
  ]),
);
const rpcb = xdr.struct<RpcbEntry>([
  ['prog', xdr.uint],
  ['vers', xdr.uint],
  ['netid', xdr.string()],
  ['addr', xdr.string()],
  ['owner', xdr.string()],
]);
const rpcblist: XdrCodec<RpcbList | null> = xdr.optional(
  xdr.struct<RpcbList>([
    ['rpcb', rpcb],
    ['next', xdr.lazy(() => rpcblist)],
  ]),
);

export class RpcbindClient {
  readonly rpc: RpcClient;
  private constructor(rpc: RpcClient) {
    this.rpc = rpc;
  }

  /**
   * Connect to rpcbind: `address` if given, else the local socket
   * /run/rpcbind.sock (where rpcbind knows the caller's uid, as libtirpc
   * does), else tcp://127.0.0.1:111.
   */
  static async connect(address?: AddressLike, options: RpcClientOptions = {}): Promise<RpcbindClient> {
    const opts = { timeoutMs: 5000, ...options };
    if (address !== undefined) return new RpcbindClient(await RpcClient.connect(address, opts));
    try {
      return new RpcbindClient(await RpcClient.connect(`unix://${RPCBIND_SOCKET}`, opts));
    } catch {
      return new RpcbindClient(await RpcClient.connect(`tcp://127.0.0.1:${RPCBIND_PORT}`, opts));
    }
  }

  // --- portmapper version 2 ---

  pmapSet(m: PmapMapping, options?: CallOptions): Promise<boolean> {
    return this.rpc.call(RPCBIND_PROG, PMAP_VERS, 1, mapping, m, xdr.bool, options);
  }

  /** Remove every mapping of (prog, vers); the protocol and port are ignored, as in RFC 1833. */
  pmapUnset(prog: number, vers: number, options?: CallOptions): Promise<boolean> {
    return this.rpc.call(RPCBIND_PROG, PMAP_VERS, 2, mapping, { prog, vers, prot: 0, port: 0 }, xdr.bool, options);
  }

  /** The port of (prog, vers) over tcp or udp, 0 when not registered. */
  pmapGetPort(prog: number, vers: number, protocol: 'tcp' | 'udp', options?: CallOptions): Promise<number> {
    const prot = protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
    return this.rpc.call(RPCBIND_PROG, PMAP_VERS, 3, mapping, { prog, vers, prot, port: 0 }, xdr.uint, options);
  }

  async pmapDump(options?: CallOptions): Promise<PmapMapping[]> {
    const out: PmapMapping[] = [];
    for (let l = await this.rpc.call(RPCBIND_PROG, PMAP_VERS, 4, xdr.void, undefined, pmaplist, options); l; l = l.next) out.push(l.map);
    return out;
  }

  // --- rpcbind versions 3 and 4 ---

  /** Register (prog, vers) at a universal address. The owner is replaced by rpcbind with what it knows of the caller. */
  set(entry: { prog: number; vers: number; netid: Netid | string; addr: string; owner?: string }, version: 3 | 4 = 4, options?: CallOptions): Promise<boolean> {
    const owner = entry.owner ?? String(process.getuid?.() ?? 0);
    return this.rpc.call(RPCBIND_PROG, version, 1, rpcb, { ...entry, owner }, xdr.bool, options);
  }

  /** Unregister (prog, vers) for one netid, or for all with netid ''. */
  unset(entry: { prog: number; vers: number; netid?: Netid | string }, version: 3 | 4 = 4, options?: CallOptions): Promise<boolean> {
    const e = { prog: entry.prog, vers: entry.vers, netid: entry.netid ?? '', addr: '', owner: String(process.getuid?.() ?? 0) };
    return this.rpc.call(RPCBIND_PROG, version, 2, rpcb, e, xdr.bool, options);
  }

  /** The universal address of (prog, vers) on `netid`, '' when not registered. */
  getAddr(entry: { prog: number; vers: number; netid: Netid | string }, version: 3 | 4 = 4, options?: CallOptions): Promise<string> {
    const e = { prog: entry.prog, vers: entry.vers, netid: entry.netid, addr: '', owner: '' };
    return this.rpc.call(RPCBIND_PROG, version, 3, rpcb, e, xdr.string(), options);
  }

  async dump(version: 3 | 4 = 4, options?: CallOptions): Promise<RpcbEntry[]> {
    const out: RpcbEntry[] = [];
    for (let l = await this.rpc.call(RPCBIND_PROG, version, 4, xdr.void, undefined, rpcblist, options); l; l = l.next) out.push(l.rpcb);
    return out;
  }

  close(): Promise<void> {
    return this.rpc.close();
  }
}

/**
 * Where (prog, vers) listens on `netid`, asked of rpcbind (v4 GETADDR, then
 * portmapper GETPORT for tcp/udp if rpcbind is only a portmapper). rpcbind
 * answers GETADDR for the netid of the transport the question came on, so we
 * ask over that same transport, as libtirpc does: UDP for udp, the local
 * socket for local, IPv6 for tcp6/udp6. Throws ENOENT when not registered.
 */
export async function rpcbindLookup(prog: number, vers: number, netid: Netid, options: { rpcbind?: AddressLike; host?: string } = {}): Promise<Address> {
  const host = options.host ?? (netid === 'tcp6' || netid === 'udp6' ? '::1' : '127.0.0.1');
  const h = host.includes(':') ? `[${host}]` : host;
  const where =
    options.rpcbind ??
    (netid === 'local' ? `unix://${RPCBIND_SOCKET}` : netid === 'udp' || netid === 'udp6' ? `udp://${h}:${RPCBIND_PORT}` : `tcp://${h}:${RPCBIND_PORT}`);
  const rb = await RpcbindClient.connect(where);
  try {
    let uaddr = '';
    try {
      uaddr = await rb.getAddr({ prog, vers, netid });
    } catch (err) {
      if (!(netid === 'tcp' || netid === 'udp')) throw err;
      const port = await rb.pmapGetPort(prog, vers, netid);
      if (port !== 0) return { transport: netid, host, port };
    }
    if (uaddr === '') throw new SwitchboardError('ENOENT', `program ${prog} version ${vers} is not registered with rpcbind for ${netid}`);
    const addr = fromUniversalAddress(netid, uaddr);
    // rpcbind answers with the wildcard address when the server bound to it.
    if ((addr.transport === 'tcp' || addr.transport === 'udp') && (addr.host === '0.0.0.0' || addr.host === '::')) return { ...addr, host };
    return addr;
  } finally {
    await rb.close();
  }
}
