/**
 * connect<T>(target): the client side. The target is a Channel, a worker
 * port, an address (`tcp://127.0.0.1:7000`, `unix:///run/bank.sock`,
 * `shm:name` for a shared-memory ring pair) or a
 * name the name service knows (its contact protocol must be switchboard-rpc).
 */
import { ArgumentError, SwitchboardError } from '../errors.js';
import type { Address } from '../transport/address.js';
import { connect as connectChannel } from '../transport/index.js';
import { DEFAULT_MAX_MESSAGE } from './codec-encoder.js';
import { RpcConnection, type ConnectionOptions } from './connection.js';
import { ChannelLink, isPortLike, PortLink } from './links.js';
import { remoteInfo } from './remote.js';
import { isAddressValue, isChannel, looksLikeAddress, RPC_PROTOCOL, type Target } from './targets.js';
import type { Remote } from './types.js';

export interface RpcConnectOptions extends ConnectionOptions {
  /** Identity token the server's `authenticate` sees. */
  token?: string;
  /** Deadline for connecting and the handshake (default 10 s). */
  connectTimeoutMs?: number;
  signal?: AbortSignal;
  /** Name-service address(es) for name targets (default: the well-known ones). */
  nameServer?: string;
  /** @internal protocol version to announce (tests of the version check) */
  version?: readonly [number, number];
}

function isShm(a: string | Address): boolean {
  return typeof a === 'string' ? a.startsWith('shm:') : a.transport === 'shm';
}

async function resolveName(name: string, options: RpcConnectOptions): Promise<string> {
  const { NameClient } = await import('../naming/index.js');
  const nc = await NameClient.connect({
    reconnect: false,
    ...(options.nameServer === undefined ? {} : { address: options.nameServer }),
  });
  try {
    const rec = await nc.lookup(name);
    if (rec.contact.protocol !== RPC_PROTOCOL) {
      throw new SwitchboardError('EUNSUPPORTED', `"${name}" speaks ${rec.contact.protocol}, not ${RPC_PROTOCOL}`);
    }
    return rec.contact.address;
  } finally {
    await nc.close();
  }
}

/** Open an RPC connection without a typed stub (for tests, tools and pools). */
export async function openConnection(target: Target, options: RpcConnectOptions = {}): Promise<RpcConnection> {
  const max = options.maxMessageSize;
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  let conn: RpcConnection;
  if (isPortLike(target)) {
    conn = new RpcConnection(new PortLink(target, max ?? DEFAULT_MAX_MESSAGE), 'client', options);
  } else if (isChannel(target)) {
    conn = new RpcConnection(new ChannelLink(target, max ?? DEFAULT_MAX_MESSAGE), 'client', options);
  } else if (typeof target === 'string' || isAddressValue(target)) {
    let address: string | Address = target;
    if (typeof target === 'string' && !looksLikeAddress(target)) address = await resolveName(target, options);
    const ch = isShm(address)
      ? await (await import('../shm/index.js')).connectShm(address, max === undefined ? {} : { maxMessageSize: max + 64 })
      : await connectChannel(address, { timeoutMs, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    conn = new RpcConnection(new ChannelLink(ch, max ?? DEFAULT_MAX_MESSAGE), 'client', options);
  } else {
    throw new ArgumentError('connect(): the target must be a Channel, a worker port, an address or a name');
  }
  await conn.open(options.token, timeoutMs);
  return conn;
}

/** Connect to an exposed object and return its typed stub: every method returns a promise. */
export async function connect<T>(target: Target, options: RpcConnectOptions = {}): Promise<Remote<T>> {
  const conn = await openConnection(target, options);
  return conn.remote() as Remote<T>;
}

/** The connection a stub (or any remote reference) belongs to: close(), stats(), closed. */
export function connectionOf(remote: object): RpcConnection {
  const info = remoteInfo(remote);
  if (info === undefined || !(info.owner instanceof RpcConnection)) throw new ArgumentError('not a remote object');
  return info.owner;
}

/** Close the connection behind a stub. */
export function close(remote: object): Promise<void> {
  return connectionOf(remote).close();
}
