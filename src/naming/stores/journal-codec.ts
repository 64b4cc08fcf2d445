/**
 * Journal entries on disk: [u32 length][u32 CRC-32 of the payload][payload],
 * big-endian, payload JSON. Pure. A torn or corrupt tail (the daemon died in
 * the middle of a write) ends the valid part of the journal; everything before
 * it is intact because each entry is checked on its own.
 */
import { ProtocolError } from '../../errors.js';

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib). */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = (TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const MAX_JOURNAL_ENTRY = 1024 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeEntry(value: unknown): Uint8Array {
  const payload = enc.encode(JSON.stringify(value));
  if (payload.length > MAX_JOURNAL_ENTRY) throw new ProtocolError(`journal entry of ${payload.length} bytes is too large`, { code: 'EMSGSIZE' });
  const out = new Uint8Array(8 + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, payload.length);
  dv.setUint32(4, crc32(payload));
  out.set(payload, 8);
  return out;
}

export interface DecodedJournal {
  entries: unknown[];
  /** Bytes of whole, valid entries from the start; the rest is a torn tail. */
  validLength: number;
  /** Why decoding stopped before the end, if it did. */
  stoppedBecause?: string;
}

export function decodeEntries(data: Uint8Array): DecodedJournal {
  const entries: unknown[] = [];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let off = 0;
  while (off < data.length) {
    if (data.length - off < 8) return { entries, validLength: off, stoppedBecause: 'truncated entry header' };
    const len = dv.getUint32(off);
    const sum = dv.getUint32(off + 4);
    if (len > MAX_JOURNAL_ENTRY) return { entries, validLength: off, stoppedBecause: `entry length ${len} is too large` };
    if (data.length - off - 8 < len) return { entries, validLength: off, stoppedBecause: 'truncated entry' };
    const payload = data.subarray(off + 8, off + 8 + len);
    if (crc32(payload) !== sum) return { entries, validLength: off, stoppedBecause: 'checksum mismatch' };
    try {
      entries.push(JSON.parse(dec.decode(payload)));
    } catch {
      return { entries, validLength: off, stoppedBecause: 'entry is not JSON' };
    }
    off += 8 + len;
  }
  return { entries, validLength: off };
}
