/**
 * The header at the start of every (non-raw) Switchboard region, before the
 * user's bytes. Layout (little-endian u32/i32 words, 256 bytes; also in
 * include/switchboard-ring.h as struct sb_region_header):
 *
 *   0  magic 'SBRG' (0x47524253)     4  version (1)
 *   8  header size (256)            12  flags (bit 0: unlink on last detach)
 *  16  user size, low 32 bits       20  user size, high 32 bits
 *  24  creator pid                  28  overflow: attachments that found no slot
 *  64..256  48 attach slots, each one word: pid | (count << 22); 0 = free
 *
 * A slot packs a process id and that process's attachment count into one word
 * so that attach and detach are one compare-and-swap each. Processes that die
 * without detaching leave a slot whose pid is dead; it is ignored and reused.
 */
import { SwitchboardError } from '../errors.js';
import { isAlive } from './native.js';

export const REGION_MAGIC = 0x47524253;
export const REGION_VERSION = 1;
export const REGION_HEADER_SIZE = 256;
export const FLAG_UNLINK_ON_LAST_DETACH = 1;

const W_MAGIC = 0;
const W_VERSION = 1;
const W_HEADER_SIZE = 2;
const W_FLAGS = 3;
const W_SIZE_LO = 4;
const W_SIZE_HI = 5;
const W_CREATOR = 6;
const W_OVERFLOW = 7;
const W_SLOTS = 16;
export const SLOT_COUNT = 48;
const PID_BITS = 22;
const PID_MASK = (1 << PID_BITS) - 1;
const MAX_COUNT = (1 << (31 - PID_BITS)) - 1;

export interface HeaderInfo {
  flags: number;
  size: number;
  creatorPid: number;
  attached: { pid: number; count: number; alive: boolean }[];
  overflow: number;
}

export function writeHeader(h: Int32Array, size: number, flags: number): void {
  Atomics.store(h, W_VERSION, REGION_VERSION);
  Atomics.store(h, W_HEADER_SIZE, REGION_HEADER_SIZE);
  Atomics.store(h, W_FLAGS, flags);
  Atomics.store(h, W_SIZE_LO, size % 2 ** 32 | 0);
  Atomics.store(h, W_SIZE_HI, Math.floor(size / 2 ** 32));
  Atomics.store(h, W_CREATOR, process.pid);
  // The magic goes last: an opener that sees it sees the rest.
  Atomics.store(h, W_MAGIC, REGION_MAGIC);
}

/** Returns the user size the header declares, checking magic, version and bounds. */
export function checkHeader(h: Int32Array, objectSize: number, what: string): number {
  const magic = Atomics.load(h, W_MAGIC);
  if (magic !== REGION_MAGIC) {
    throw new SwitchboardError('EPROTO', `${what} is not a Switchboard region (bad magic 0x${(magic >>> 0).toString(16)}); open it with { raw: true } if it was made by another program`);
  }
  if (Atomics.load(h, W_VERSION) !== REGION_VERSION) throw new SwitchboardError('EVERSION', `${what}: region header version ${Atomics.load(h, W_VERSION)} is not supported`);
  if (Atomics.load(h, W_HEADER_SIZE) !== REGION_HEADER_SIZE) throw new SwitchboardError('EPROTO', `${what}: bad region header size`);
  const size = readSize(h);
  if (size < 1 || size + REGION_HEADER_SIZE > objectSize) {
    throw new SwitchboardError('EPROTO', `${what}: header says ${size} bytes but the object holds ${objectSize - REGION_HEADER_SIZE}`);
  }
  return size;
}

export function readSize(h: Int32Array): number {
  return (Atomics.load(h, W_SIZE_LO) >>> 0) + (Atomics.load(h, W_SIZE_HI) >>> 0) * 2 ** 32;
}

export function setSize(h: Int32Array, size: number): void {
  Atomics.store(h, W_SIZE_HI, Math.floor(size / 2 ** 32));
  Atomics.store(h, W_SIZE_LO, size % 2 ** 32 | 0);
}

export function readFlags(h: Int32Array): number {
  return Atomics.load(h, W_FLAGS);
}

/** Record one more attachment of this process. Returns false when every slot was taken. */
export function attach(h: Int32Array, pid = process.pid): boolean {
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < SLOT_COUNT; i++) {
      const idx = W_SLOTS + i;
      for (;;) {
        const v = Atomics.load(h, idx);
        const p = v & PID_MASK;
        const n = v >>> PID_BITS;
        let next: number;
        if (pass === 0 && p === pid && n < MAX_COUNT) next = pid | ((n + 1) << PID_BITS);
        else if (pass === 1 && (v === 0 || (p !== pid && !isAlive(p)))) next = pid | (1 << PID_BITS);
        else break;
        if (Atomics.compareExchange(h, idx, v, next) === v) return true;
      }
    }
  }
  Atomics.add(h, W_OVERFLOW, 1);
  return false;
}

/** Undo one attach(); `slotted` is what attach() returned. */
export function detach(h: Int32Array, slotted: boolean, pid = process.pid): void {
  if (!slotted) {
    Atomics.sub(h, W_OVERFLOW, 1);
    return;
  }
  for (let i = 0; i < SLOT_COUNT; i++) {
    const idx = W_SLOTS + i;
    for (;;) {
      const v = Atomics.load(h, idx);
      if ((v & PID_MASK) !== pid || v >>> PID_BITS === 0) break;
      const n = (v >>> PID_BITS) - 1;
      const next = n === 0 ? 0 : pid | (n << PID_BITS);
      if (Atomics.compareExchange(h, idx, v, next) === v) return;
    }
  }
}

/** True when no live process is attached (and none attached without a slot). */
export function nobodyAttached(h: Int32Array): boolean {
  if (Atomics.load(h, W_OVERFLOW) > 0) return false;
  for (let i = 0; i < SLOT_COUNT; i++) {
    const v = Atomics.load(h, W_SLOTS + i);
    if (v !== 0 && v >>> PID_BITS > 0 && isAlive(v & PID_MASK)) return false;
  }
  return true;
}

export function headerInfo(h: Int32Array): HeaderInfo {
  const attached: HeaderInfo['attached'] = [];
  for (let i = 0; i < SLOT_COUNT; i++) {
    const v = Atomics.load(h, W_SLOTS + i);
    if (v !== 0 && v >>> PID_BITS > 0) attached.push({ pid: v & PID_MASK, count: v >>> PID_BITS, alive: isAlive(v & PID_MASK) });
  }
  return {
    flags: readFlags(h),
    size: readSize(h),
    creatorPid: Atomics.load(h, W_CREATOR),
    attached,
    overflow: Atomics.load(h, W_OVERFLOW),
  };
}
