/**
 * Where a channel lives, as a value and as a string:
 *   tcp://127.0.0.1:7117   tcp://[::1]:7117   tcp://localhost:finger
 *   udp://127.0.0.1:5353   unix:///run/sb.sock   fifo:///tmp/q.fifo   shm:ring-name
 * A port may be a service name from /etc/services wherever a number may be.
 */
import { ArgumentError } from '../errors.js';
import { resolvePort } from '../naming/services.js';

export type Address =
  | { transport: 'tcp'; host: string; port: number }
  | { transport: 'udp'; host: string; port: number }
  | { transport: 'unix'; path: string }
  | { transport: 'fifo'; path: string }
  | { transport: 'shm'; name: string };

export type AddressLike = Address | string;

const MAX_UNIX_PATH = 107; // sun_path is 108 bytes with the terminating NUL

function parseHostPort(rest: string, transport: 'tcp' | 'udp', original: string): Address {
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') throw new ArgumentError(`bad address "${original}": expected [ipv6]:port`);
    host = rest.slice(1, close);
    portText = rest.slice(close + 2);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon < 0) throw new ArgumentError(`bad address "${original}": expected host:port`);
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
  }
  if (host === '') throw new ArgumentError(`bad address "${original}": empty host`);
  const port = resolvePort(portText, transport);
  return { transport, host, port };
}

/** Parse an address string (see the module comment). Throws ArgumentError. */
export function parseAddress(text: string): Address {
  if (typeof text !== 'string' || text === '') throw new ArgumentError('address must be a non-empty string');
  const m = /^([a-z]+):(\/\/)?(.*)$/.exec(text);
  if (!m) throw new ArgumentError(`bad address "${text}": expected tcp://host:port, udp://host:port, unix:///path, fifo:///path or shm:name`);
  const scheme = m[1];
  const rest = m[3] ?? '';
  switch (scheme) {
    case 'tcp':
    case 'udp':
      return parseHostPort(rest, scheme, text);
    case 'unix':
    case 'fifo': {
      if (rest === '') throw new ArgumentError(`bad address "${text}": empty path`);
      return validateAddress({ transport: scheme, path: rest });
    }
    case 'shm':
      return validateAddress({ transport: 'shm', name: rest });
    default:
      throw new ArgumentError(`bad address "${text}": unknown transport "${scheme}"`);
  }
}

/** Check an address value and return it. */
export function validateAddress(addr: Address): Address {
  switch (addr.transport) {
    case 'tcp':
    case 'udp':
      if (typeof addr.host !== 'string' || addr.host === '') throw new ArgumentError(`${addr.transport} address needs a host`);
      resolvePort(addr.port, addr.transport);
      return addr;
    case 'unix':
    case 'fifo':
      if (typeof addr.path !== 'string' || addr.path === '') throw new ArgumentError(`${addr.transport} address needs a path`);
      if (addr.transport === 'unix' && Buffer.byteLength(addr.path) > MAX_UNIX_PATH) {
        throw new ArgumentError(`unix socket path is longer than ${MAX_UNIX_PATH} bytes: ${addr.path}`);
      }
      return addr;
    case 'shm':
      if (typeof addr.name !== 'string' || !/^[A-Za-z0-9._-]{1,200}$/.test(addr.name)) {
        throw new ArgumentError(`shm address needs a name of letters, digits, '.', '_' or '-', got "${String(addr.name)}"`);
      }
      return addr;
    default:
      throw new ArgumentError(`unknown transport in address ${JSON.stringify(addr)}`);
  }
}

export function toAddress(a: AddressLike): Address {
  return typeof a === 'string' ? parseAddress(a) : validateAddress(a);
}

export function formatAddress(a: Address): string {
  switch (a.transport) {
    case 'tcp':
    case 'udp':
      return `${a.transport}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
    case 'unix':
    case 'fifo':
      return `${a.transport}://${a.path}`;
    case 'shm':
      return `shm:${a.name}`;
  }
}
