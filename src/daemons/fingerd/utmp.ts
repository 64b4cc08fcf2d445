/**
 * Who is logged in, as `who` sees it: utmp(5) records read without the C
 * library. glibc on 64-bit Linux writes 384-byte records with 32-bit times
 * (struct utmp with __WORDSIZE_TIME64_COMPAT32), little- or big-endian as the
 * machine is; wtmp has the same records; lastlog is one 292-byte record per
 * uid. Pure functions over bytes, checked before every read.
 */
import { ProtocolError } from '../../errors.js';

export const UTMP_RECORD_SIZE = 384;
export const LASTLOG_RECORD_SIZE = 292;

/** ut_type values (utmp.h). */
export const UtmpType = {
  EMPTY: 0,
  RUN_LVL: 1,
  BOOT_TIME: 2,
  NEW_TIME: 3,
  OLD_TIME: 4,
  INIT_PROCESS: 5,
  LOGIN_PROCESS: 6,
  USER_PROCESS: 7,
  DEAD_PROCESS: 8,
  ACCOUNTING: 9,
} as const;

export interface UtmpRecord {
  type: number;
  pid: number;
  /** Device name without /dev/, e.g. "pts/3". */
  line: string;
  id: string;
  user: string;
  host: string;
  /** Seconds since the epoch. */
  time: number;
  usec: number;
}

export interface LastlogRecord {
  /** Seconds since the epoch; 0 = never. */
  time: number;
  line: string;
  host: string;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** A NUL-padded fixed-size char array. */
function cstring(bytes: Uint8Array, offset: number, length: number): string {
  const slice = bytes.subarray(offset, offset + length);
  const nul = slice.indexOf(0);
  return decoder.decode(nul < 0 ? slice : slice.subarray(0, nul));
}

/** Field offsets of struct utmp (x86_64 / aarch64 glibc). */
const OFF = { type: 0, pid: 4, line: 8, id: 40, user: 44, host: 76, tvSec: 340, tvUsec: 344 } as const;

/** Decode one 384-byte record at `offset`. */
export function decodeUtmpRecord(bytes: Uint8Array, offset = 0, littleEndian = true): UtmpRecord {
  if (offset < 0 || offset + UTMP_RECORD_SIZE > bytes.length) {
    throw new ProtocolError(`utmp record at ${offset} runs past the end (${bytes.length} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, UTMP_RECORD_SIZE);
  return {
    type: view.getInt16(OFF.type, littleEndian),
    pid: view.getInt32(OFF.pid, littleEndian),
    line: cstring(bytes, offset + OFF.line, 32),
    id: cstring(bytes, offset + OFF.id, 4),
    user: cstring(bytes, offset + OFF.user, 32),
    host: cstring(bytes, offset + OFF.host, 256),
    time: view.getUint32(OFF.tvSec, littleEndian),
    usec: view.getInt32(OFF.tvUsec, littleEndian),
  };
}

/** Encode a record (for tests and fake utmp files). */
export function encodeUtmpRecord(r: Partial<UtmpRecord> & { type: number }, littleEndian = true): Uint8Array {
  const out = new Uint8Array(UTMP_RECORD_SIZE);
  const view = new DataView(out.buffer);
  const put = (s: string | undefined, offset: number, length: number): void => {
    const b = new TextEncoder().encode(s ?? '');
    out.set(b.subarray(0, length), offset);
  };
  view.setInt16(OFF.type, r.type, littleEndian);
  view.setInt32(OFF.pid, r.pid ?? 0, littleEndian);
  put(r.line, OFF.line, 32);
  put(r.id, OFF.id, 4);
  put(r.user, OFF.user, 32);
  put(r.host, OFF.host, 256);
  view.setUint32(OFF.tvSec, r.time ?? 0, littleEndian);
  view.setInt32(OFF.tvUsec, r.usec ?? 0, littleEndian);
  return out;
}

/**
 * Decode every whole record in a utmp/wtmp file image; a trailing partial
 * record (a writer caught mid-append) is ignored.
 */
export function decodeUtmp(bytes: Uint8Array, littleEndian = true): UtmpRecord[] {
  const out: UtmpRecord[] = [];
  const whole = bytes.length - (bytes.length % UTMP_RECORD_SIZE);
  for (let off = 0; off < whole; off += UTMP_RECORD_SIZE) out.push(decodeUtmpRecord(bytes, off, littleEndian));
  return out;
}

/** Logged-in sessions: USER_PROCESS records with a user and a line. */
export function userSessions(records: readonly UtmpRecord[]): UtmpRecord[] {
  return records.filter((r) => r.type === UtmpType.USER_PROCESS && r.user !== '' && r.line !== '');
}

/**
 * The last login of `user` in a wtmp image (scanned backwards), or undefined.
 */
export function lastLoginFromWtmp(records: readonly UtmpRecord[], user: string): UtmpRecord | undefined {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i] as UtmpRecord;
    if (r.type === UtmpType.USER_PROCESS && r.user === user) return r;
  }
  return undefined;
}

/** Decode one lastlog record (struct lastlog: int32 time, char line[32], char host[256]). */
export function decodeLastlogRecord(bytes: Uint8Array, offset = 0, littleEndian = true): LastlogRecord {
  if (offset < 0 || offset + LASTLOG_RECORD_SIZE > bytes.length) {
    throw new ProtocolError(`lastlog record at ${offset} runs past the end (${bytes.length} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, LASTLOG_RECORD_SIZE);
  return { time: view.getUint32(0, littleEndian), line: cstring(bytes, offset + 4, 32), host: cstring(bytes, offset + 36, 256) };
}

export function encodeLastlogRecord(r: LastlogRecord, littleEndian = true): Uint8Array {
  const out = new Uint8Array(LASTLOG_RECORD_SIZE);
  new DataView(out.buffer).setUint32(0, r.time, littleEndian);
  const enc = new TextEncoder();
  out.set(enc.encode(r.line).subarray(0, 32), 4);
  out.set(enc.encode(r.host).subarray(0, 256), 36);
  return out;
}
