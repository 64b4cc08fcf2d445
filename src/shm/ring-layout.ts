/**
 * The ring layout, word by word; include/switchboard-ring.h is the C version
 * and documents the protocol. Indices below are Int32 word indices from the
 * ring's start.
 */
export const RING_MAGIC = 0x4e524253; // "SBRN"
/** 2: the sleep announcements (consumerMaySleep, producerMaySleep; see include/switchboard-ring.h). */
export const RING_VERSION = 2;
/** An end that announces it may sleep keeps polling this long first (SB_RING_ARM_US). */
export const RING_ARM_MS = 0.05;
export const RING_HEADER_SIZE = 256;
export const RING_MIN_CAPACITY = 256;
export const RING_MAX_CAPACITY = 2 ** 30;
export const RING_MPSC = 1;
export const RING_MAX_PRODUCERS = 8;
export const CLOSED_BY_CONSUMER = 1;

export const W = {
  magic: 0,
  version: 1,
  capacity: 2,
  flags: 3,
  headerSize: 4,
  maxRecord: 5,
  consumerTid: 6,
  closed: 7,
  everAttached: 8,
  attached: 9,
  producerDied: 10,
  consumerMaySleep: 11,
  producerMaySleep: 12,
  tail: 16,
  consumerSleeping: 17,
  prodLock: 18, // 4 words: a Mutex
  head: 32,
  producerSleeping: 33,
  producers: 48, // RING_MAX_PRODUCERS words
} as const;

export const REC_WHOLE = 1;
export const REC_FIRST = 2;
export const REC_MIDDLE = 3;
export const REC_LAST = 4;
export const REC_ABORT = 5;
export const REC_PAD = 6;

export const REC_HEADER = 8;
/** Extra bytes at the start of a FIRST record's payload: u32 total length, u32 zero. */
export const FIRST_EXTRA = 8;

export const align8 = (n: number): number => (n + 7) & ~7;
