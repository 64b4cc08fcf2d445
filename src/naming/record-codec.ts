/**
 * The binary bodies of protocol version 2's hot frames (README, "Wire
 * protocol"): a lookup request is the name's UTF-8 bytes, and its reply is a
 * record laid out so that a client decodes every string with one UTF-8 decode
 * (JSON.parse and the shape checks it needs cost more than the round trip's
 * system calls).
 *
 *   u8  fields     bit 0 program, 1 version, 2 metadata, 3 owner pid,
 *                  4 owner uid, 5 leaseExpiresAt; bits 6-7 are 0
 *   u8  reserved   0
 *   u16 reserved   0
 *   u32 pairs      metadata entries (0 unless bit 2)
 *   u64 since      ms since the epoch, at most 2^53 - 1 (as every u64 here)
 *   u32 program    if bit 0        u32 version   if bit 1
 *   u32 pid        if bit 3        u32 uid       if bit 4
 *   u64 leaseExpiresAt if bit 5
 *   u32 lengths[4 + 2 * pairs]  byte lengths of: name, address, protocol,
 *                  owner client, then each metadata key and value
 *   the strings' UTF-8 bytes, back to back, in that order; nothing after them
 *
 * All integers big-endian. Pure: no I/O, no Node types; every read is bounds
 * checked first and a bad body throws ProtocolError (EPROTO).
 */
import { ProtocolError } from '../errors.js';
import type { ContactInfo, NameOwner, NameRecord } from './types.js';

const F_PROGRAM = 1;
const F_VERSION = 2;
const F_METADATA = 4;
const F_PID = 8;
const F_UID = 16;
const F_LEASE = 32;
const F_KNOWN = 63;
const FIXED = 16; // fields, reserved, pairs, since

const utf8enc = new TextEncoder();
const utf8dec = new TextDecoder('utf-8', { fatal: true });

function bad(msg: string): never {
  throw new ProtocolError(`malformed record: ${msg}`);
}

function assertU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ProtocolError(`${what} must be a u32, got ${v}`);
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

function getU32(b: Uint8Array, at: number): number {
  return (((b[at] as number) << 24) >>> 0) + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number));
}

function putU64(b: Uint8Array, at: number, v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new ProtocolError(`${what} must be a non-negative safe integer, got ${v}`);
  putU32(b, at, Math.floor(v / 0x100000000));
  putU32(b, at + 4, v >>> 0);
}

function getU64(b: Uint8Array, at: number, what: string): number {
  const hi = getU32(b, at);
  if (hi > 0x1fffff) bad(`${what} is beyond 2^53 - 1`);
  return hi * 0x100000000 + getU32(b, at + 4);
}

/** Length in bytes of `s` as UTF-8, without encoding it (lone surrogates count as U+FFFD, as TextEncoder writes them). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 4 bytes for 2 code units
      i++;
    } else n += 2;
  }
  return n;
}

/** Encode a record as a version-2 record body. Throws ProtocolError for values the layout cannot carry. */
export function encodeRecordBody(r: NameRecord): Uint8Array {
  const c = r.contact;
  const o = r.owner;
  const md = c.metadata === undefined ? undefined : Object.entries(c.metadata);
  let fields = 0;
  let size = FIXED;
  if (c.program !== undefined) (fields |= F_PROGRAM), (size += 4), assertU32(c.program, 'program');
  if (c.version !== undefined) (fields |= F_VERSION), (size += 4), assertU32(c.version, 'version');
  if (md !== undefined) fields |= F_METADATA;
  if (o.pid !== undefined) (fields |= F_PID), (size += 4), assertU32(o.pid, 'owner pid');
  if (o.uid !== undefined) (fields |= F_UID), (size += 4), assertU32(o.uid, 'owner uid');
  if (r.leaseExpiresAt !== undefined) (fields |= F_LEASE), (size += 8);
  const strings = [r.name, c.address, c.protocol, o.client];
  if (md !== undefined) for (const [k, v] of md) strings.push(k, v);
  const bytes = strings.map((s) => utf8enc.encode(s));
  size += 4 * bytes.length;
  for (const b of bytes) size += b.length;
  const out = new Uint8Array(size);
  out[0] = fields;
  putU32(out, 4, md?.length ?? 0);
  putU64(out, 8, r.since, 'since');
  let at = FIXED;
  if (c.program !== undefined) (putU32(out, at, c.program), (at += 4));
  if (c.version !== undefined) (putU32(out, at, c.version), (at += 4));
  if (o.pid !== undefined) (putU32(out, at, o.pid), (at += 4));
  if (o.uid !== undefined) (putU32(out, at, o.uid), (at += 4));
  if (r.leaseExpiresAt !== undefined) (putU64(out, at, r.leaseExpiresAt, 'leaseExpiresAt'), (at += 8));
  for (const b of bytes) (putU32(out, at, b.length), (at += 4));
  for (const b of bytes) (out.set(b, at), (at += b.length));
  return out;
}

/** Decode a version-2 record body (the bytes after the frame header). */
export function decodeRecordBody(b: Uint8Array): NameRecord {
  if (b.length < FIXED) bad(`${b.length} bytes is shorter than the ${FIXED}-byte fixed part`);
  const fields = b[0] as number;
  if ((fields & ~F_KNOWN) !== 0) bad(`unknown field bits 0x${fields.toString(16)}`);
  if (b[1] !== 0 || b[2] !== 0 || b[3] !== 0) bad('reserved bytes must be 0');
  const pairs = getU32(b, 4);
  if (pairs !== 0 && (fields & F_METADATA) === 0) bad('metadata entries without the metadata bit');
  const since = getU64(b, 8, 'since');
  let at = FIXED;
  let need = at;
  if (fields & F_PROGRAM) need += 4;
  if (fields & F_VERSION) need += 4;
  if (fields & F_PID) need += 4;
  if (fields & F_UID) need += 4;
  if (fields & F_LEASE) need += 8;
  // Each string costs 4 bytes of length: a count the body cannot hold fails before any loop.
  if (pairs > (b.length - need) / 8) bad(`${pairs} metadata entries do not fit in ${b.length} bytes`);
  const nstr = 4 + 2 * pairs;
  need += 4 * nstr;
  if (need > b.length) bad(`${b.length} bytes is shorter than its ${need}-byte header`);
  const contact = {} as ContactInfo;
  let program: number | undefined;
  let version: number | undefined;
  let pid: number | undefined;
  let uid: number | undefined;
  let lease: number | undefined;
  if (fields & F_PROGRAM) (program = getU32(b, at)), (at += 4);
  if (fields & F_VERSION) (version = getU32(b, at)), (at += 4);
  if (fields & F_PID) (pid = getU32(b, at)), (at += 4);
  if (fields & F_UID) (uid = getU32(b, at)), (at += 4);
  if (fields & F_LEASE) (lease = getU64(b, at, 'leaseExpiresAt')), (at += 8);
  const lenAt = at;
  let total = 0;
  for (let i = 0; i < nstr; i++) total += getU32(b, lenAt + 4 * i);
  const start = lenAt + 4 * nstr;
  if (start + total !== b.length) bad(`string lengths add up to ${total} bytes, the body holds ${b.length - start}`);
  // One decode for every string when all of them are ASCII (the usual case): then byte offsets are string offsets.
  let ascii = true;
  for (let i = start; i < b.length; i++) {
    if ((b[i] as number) >= 0x80) {
      ascii = false;
      break;
    }
  }
  let all = '';
  if (ascii) all = utf8dec.decode(b.subarray(start));
  let off = start;
  const next = (i: number): string => {
    const n = getU32(b, lenAt + 4 * i);
    const s = off;
    off += n;
    if (ascii) return all.slice(s - start, off - start);
    try {
      return utf8dec.decode(b.subarray(s, off));
    } catch (err) {
      throw new ProtocolError('malformed record: a string is not valid UTF-8', { cause: err });
    }
  };
  const name = next(0);
  contact.address = next(1);
  contact.protocol = next(2);
  const owner: NameOwner = { client: next(3) };
  if (program !== undefined) contact.program = program;
  if (version !== undefined) contact.version = version;
  if (fields & F_METADATA) {
    const md: Record<string, string> = {};
    for (let i = 0; i < pairs; i++) {
      const k = next(4 + 2 * i);
      const v = next(5 + 2 * i);
      if (k === '__proto__') bad('metadata key "__proto__"');
      md[k] = v;
    }
    contact.metadata = md;
  }
  if (pid !== undefined) owner.pid = pid;
  if (uid !== undefined) owner.uid = uid;
  const r: NameRecord = { name, contact, owner, since };
  if (lease !== undefined) r.leaseExpiresAt = lease;
  return r;
}
