/**
 * The JSON messages inside frames, and their validation. A payload of the
 * wrong shape (structure) is a ProtocolError and ends the connection; a
 * well-formed request that breaks a limit or a naming rule gets an ELIMIT or
 * EINVAL error reply and the connection goes on.
 */
import { parseAddress } from '../transport/address.js';
import { ArgumentError, ProtocolError } from '../errors.js';
import { NameLimitError, type WireError } from './name-errors.js';
import { utf8Length } from './record-codec.js';
import type { ContactInfo, NameOwner, NameRecord, WatchEventType } from './types.js';

export interface NameLimits {
  /** Longest name, in UTF-8 bytes. */
  maxNameLength: number;
  /** Largest metadata object, as JSON bytes. */
  maxMetadataBytes: number;
  /** Longest contact address, in bytes. */
  maxAddressLength: number;
  /** Names one client connection may hold at once. */
  maxNamesPerClient: number;
  /** Watches one client connection may have open. */
  maxWatchesPerClient: number;
  /** Smallest and largest lease TTL a client may ask for, ms. */
  minTtlMs: number;
  maxTtlMs: number;
}

export const DEFAULT_LIMITS: Readonly<NameLimits> = {
  maxNameLength: 255,
  maxMetadataBytes: 4096,
  maxAddressLength: 1024,
  maxNamesPerClient: 10_000,
  maxWatchesPerClient: 1000,
  minTtlMs: 1000,
  maxTtlMs: 24 * 3600 * 1000,
};

export type Request =
  | { op: 'hello'; client: string; pid?: number; mac?: string }
  | { op: 'register'; name: string; contact: ContactInfo; ttlMs?: number; replace?: string; token?: string }
  | { op: 'renew'; name: string; token: string }
  | { op: 'unregister'; name: string; token?: string }
  | { op: 'lookup'; name: string }
  | { op: 'list'; prefix: string }
  | { op: 'watch'; key: string; prefix: boolean }
  | { op: 'unwatch'; watchId: number }
  | { op: 'ping' };

export type RequestOp = Request['op'];

/** The server's first frame (an event with id 0). */
export interface Greeting {
  kind: 'greeting';
  server: string;
  versions: number[];
  /** A fresh random nonce for the TCP shared-secret handshake. */
  nonce: string;
  auth: 'none' | 'hmac-sha256';
}

export interface RegisterReply {
  name: string;
  token: string;
  record: NameRecord;
}
export interface RenewReply {
  record: NameRecord;
}
export interface WatchReply {
  watchId: number;
}
export interface EventPayload {
  kind: 'watch';
  watchId: number;
  type: WatchEventType;
  record: NameRecord;
}
export type ErrorPayload = WireError;

const OPS: ReadonlySet<string> = new Set(['hello', 'register', 'renew', 'unregister', 'lookup', 'list', 'watch', 'unwatch', 'ping']);

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function bad(msg: string): never {
  throw new ProtocolError(`malformed request: ${msg}`);
}
function str(o: Obj, k: string, max = 64 * 1024): string {
  const v = o[k];
  if (typeof v !== 'string') bad(`"${k}" must be a string`);
  if (v.length > max) bad(`"${k}" is too long`);
  return v;
}
function optStr(o: Obj, k: string, max?: number): string | undefined {
  return o[k] === undefined ? undefined : str(o, k, max);
}
function optU32(o: Obj, k: string): number | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) bad(`"${k}" must be an unsigned 32-bit integer`);
  return v;
}
function optNonNegInt(o: Obj, k: string): number | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`"${k}" must be a non-negative integer`);
  return v;
}

/** Structural check of contact info (limits are checked by checkContact). */
export function parseContact(v: unknown): ContactInfo {
  if (!isObj(v)) bad('"contact" must be an object');
  const c: ContactInfo = { address: str(v, 'address'), protocol: str(v, 'protocol') };
  const program = optU32(v, 'program');
  if (program !== undefined) c.program = program;
  const version = optU32(v, 'version');
  if (version !== undefined) c.version = version;
  if (v['metadata'] !== undefined) {
    const m = v['metadata'];
    if (!isObj(m)) bad('"metadata" must be an object of strings');
    const md: Record<string, string> = {};
    for (const [k, val] of Object.entries(m)) {
      if (typeof val !== 'string') bad(`metadata "${k}" must be a string`);
      md[k] = val;
    }
    c.metadata = md;
  }
  return c;
}

/** Validate the structure of a request payload. Throws ProtocolError. */
export function parseRequest(payload: unknown): Request {
  if (!isObj(payload)) bad('payload must be an object');
  const op = payload['op'];
  if (typeof op !== 'string' || !OPS.has(op)) bad(`unknown op ${JSON.stringify(op)}`);
  const p = payload;
  switch (op as RequestOp) {
    case 'hello': {
      const r: Request = { op: 'hello', client: str(p, 'client', 1024) };
      const pid = optU32(p, 'pid');
      if (pid !== undefined) r.pid = pid;
      const mac = optStr(p, 'mac', 256);
      if (mac !== undefined) r.mac = mac;
      return r;
    }
    case 'register': {
      const r: Request = { op: 'register', name: str(p, 'name'), contact: parseContact(p['contact']) };
      const ttl = optNonNegInt(p, 'ttlMs');
      if (ttl !== undefined) r.ttlMs = ttl;
      const replace = optStr(p, 'replace', 256);
      if (replace !== undefined) r.replace = replace;
      const token = optStr(p, 'token', 256);
      if (token !== undefined) r.token = token;
      return r;
    }
    case 'renew':
      return { op: 'renew', name: str(p, 'name'), token: str(p, 'token', 256) };
    case 'unregister': {
      const r: Request = { op: 'unregister', name: str(p, 'name') };
      const token = optStr(p, 'token', 256);
      if (token !== undefined) r.token = token;
      return r;
    }
    case 'lookup':
      return { op: 'lookup', name: str(p, 'name') };
    case 'list':
      return { op: 'list', prefix: optStr(p, 'prefix') ?? '' };
    case 'watch': {
      const prefix = p['prefix'];
      if (prefix !== undefined && typeof prefix !== 'boolean') bad('"prefix" must be a boolean');
      return { op: 'watch', key: str(p, 'key'), prefix: prefix === true };
    }
    case 'unwatch': {
      const id = optU32(p, 'watchId');
      if (id === undefined) bad('"watchId" is required');
      return { op: 'unwatch', watchId: id };
    }
    case 'ping':
      return { op: 'ping' };
  }
}

const byteLength = utf8Length;

// eslint-disable-next-line no-control-regex
const BAD_NAME_CHAR = /[\s\u0000-\u001f\u007f-\u009f]/u;

/**
 * Names are 1..maxNameLength bytes of UTF-8 without whitespace or control
 * characters, e.g. "printer", "db/primary", "svc.tcp@host-a".
 */
export function checkName(name: string, limits: NameLimits = DEFAULT_LIMITS, what = 'name'): void {
  if (name.length === 0) throw new ArgumentError(`${what} must not be empty`);
  const n = byteLength(name);
  if (n > limits.maxNameLength) throw new NameLimitError(`${what} is ${n} bytes long; the limit is ${limits.maxNameLength}`);
  if (BAD_NAME_CHAR.test(name)) throw new ArgumentError(`${what} ${JSON.stringify(name)} contains whitespace or a control character`);
}

/** A prefix may be empty (everything); otherwise it follows the rules for names. */
export function checkPrefix(prefix: string, limits: NameLimits = DEFAULT_LIMITS): void {
  if (prefix !== '') checkName(prefix, limits, 'prefix');
}

const TRANSPORT_SCHEMES = new Set(['tcp', 'udp', 'unix', 'fifo', 'shm']);

export function checkContact(c: ContactInfo, limits: NameLimits = DEFAULT_LIMITS): void {
  if (c.address === '') throw new ArgumentError('contact address must not be empty');
  if (byteLength(c.address) > limits.maxAddressLength) {
    throw new NameLimitError(`contact address is longer than ${limits.maxAddressLength} bytes`);
  }
  // Any scheme may be registered (http:, ipp:, ...), but one of the transport's
  // own must parse: a typo such as tcp://host without a port is refused here,
  // not discovered by the first client that connects.
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(c.address)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new ArgumentError(`contact address must look like scheme:..., e.g. tcp://127.0.0.1:7200, got ${JSON.stringify(c.address)}`);
  if (TRANSPORT_SCHEMES.has(scheme)) parseAddress(c.address);
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/.test(c.protocol)) {
    throw new ArgumentError(`contact protocol must be 1-64 letters, digits, '.', '_', '+' or '-', got ${JSON.stringify(c.protocol)}`);
  }
  if (c.metadata !== undefined) {
    const n = byteLength(JSON.stringify(c.metadata));
    if (n > limits.maxMetadataBytes) throw new NameLimitError(`metadata is ${n} bytes as JSON; the limit is ${limits.maxMetadataBytes}`);
  }
}

export function checkTtl(ttlMs: number, limits: NameLimits = DEFAULT_LIMITS): void {
  if (ttlMs < limits.minTtlMs || ttlMs > limits.maxTtlMs) {
    throw new NameLimitError(`ttlMs must be from ${limits.minTtlMs} to ${limits.maxTtlMs}, got ${ttlMs}`);
  }
}

function parseOwner(v: unknown): NameOwner {
  if (!isObj(v)) bad('"owner" must be an object');
  const o: NameOwner = { client: str(v, 'client') };
  const pid = optU32(v, 'pid');
  if (pid !== undefined) o.pid = pid;
  const uid = optU32(v, 'uid');
  if (uid !== undefined) o.uid = uid;
  return o;
}

/** Validate a record received from a server (clients trust nothing either). */
export function parseRecord(v: unknown): NameRecord {
  if (!isObj(v)) bad('record must be an object');
  const since = optNonNegInt(v, 'since');
  if (since === undefined) bad('record needs "since"');
  const r: NameRecord = { name: str(v, 'name'), contact: parseContact(v['contact']), owner: parseOwner(v['owner']), since };
  const exp = optNonNegInt(v, 'leaseExpiresAt');
  if (exp !== undefined) r.leaseExpiresAt = exp;
  return r;
}

export function parseWireError(v: unknown): WireError {
  if (!isObj(v) || typeof v['code'] !== 'string' || typeof v['message'] !== 'string') bad('error frame needs "code" and "message"');
  const w: WireError = { code: v['code'] as WireError['code'], message: v['message'] };
  if (typeof v['name'] === 'string') w.name = v['name'];
  if (v['holder'] !== undefined) w.holder = parseOwner(v['holder']);
  if (typeof v['since'] === 'number') w.since = v['since'];
  return w;
}
