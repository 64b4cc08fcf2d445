/*
 * switchboard-ring.h -- the shared-memory layouts of Switchboard (src/shm),
 * so that a C program can be the other end of a Switchboard ring.
 *
 * All words are native-endian (little-endian on the machines we build for),
 * 32-bit, naturally aligned. Every shared word is accessed atomically; the
 * Node side uses Atomics (sequentially consistent), so use __ATOMIC_SEQ_CST
 * (the helpers below do).
 *
 * 1. Regions
 * ----------
 * A region made by createRegion("foo", size) is the POSIX shared-memory
 * object "/sb.foo" (/dev/shm/sb.foo). Unless it was created with
 * { raw: true }, it starts with a 256-byte struct sb_region_header and the
 * user's `size` bytes follow at offset SB_REGION_HEADER_SIZE: offsets that
 * Node code gives inside `region.buffer` are relative to that point.
 *
 * 2. Rings
 * --------
 * A ring lives at an 8-aligned offset inside the user bytes: a 256-byte
 * struct sb_ring_header, then `capacity` data bytes (a power of two).
 * `tail` counts bytes ever published by the producer, `head` bytes ever
 * consumed; both wrap at 2^32 and used = tail - head (mod 2^32), which is a
 * multiple of 8 and never more than capacity.
 *
 * The data area holds records at 8-aligned positions. A record is an 8-byte
 * struct sb_ring_record followed by `length` payload bytes, padded to a
 * multiple of 8. A record never wraps: if it does not fit before the end of
 * the data area, the producer writes an SB_REC_PAD record that fills the rest
 * (its length is the remaining bytes minus 8) and continues at position 0.
 * A message is one SB_REC_WHOLE record, or SB_REC_FIRST (payload starts with
 * u32 total message length and u32 zero, then the first chunk), any number of
 * SB_REC_MIDDLE, and one SB_REC_LAST. Keep every record at most capacity/4
 * bytes so both sides always make progress.
 *
 * Producer: write record(s) at tail, then store tail (release: this publishes
 * the bytes); then, if consumer_may_sleep is nonzero, make that store
 * seq_cst (a full fence after it) and, if consumer_sleeping is 1, set it to 0
 * and FUTEX_WAKE tail. Wait for space by setting producer_sleeping = 1,
 * re-reading head, and FUTEX_WAIT on head.
 *
 * Sleep announcements (version 2): an end that never sleeps costs its peer
 * nothing. The *_may_sleep words (producer_may_sleep for producers,
 * consumer_may_sleep for the consumer) count the ends of that side that may
 * sleep. Before its first futex sleep, an end adds 1 to its side's word
 * ("arms"), then keeps polling for SB_RING_ARM_US microseconds before it
 * sleeps: a peer that read the word as 0 just before has published by then
 * (sb_ring_arm() below does both). An armed end may withdraw (subtract 1)
 * whenever it will not sleep again before arming anew, and does so when it
 * detaches; a dead end's count stays, which only costs speed. An end that
 * publishes looks at its peer's word on every publish (line 0 is
 * read-mostly) and, when it is 0, stores its index with release semantics
 * and skips the sleeping-flag check, whose fence would otherwise wait for the
 * index's cache line to reach the peer (measured: 0.20 -> 0.16 us per
 * 64-byte round trip in C). Every sleep is bounded (Node ends: livenessMs),
 * so even a wake-up missed against these rules is a delay, not a hang.
 *
 * Attach by storing your thread id (gettid) in a free producers[] slot,
 * adding 1 to `attached` and setting ever_attached = 1;
 * detach by subtracting 1 from `attached`, then (still holding the slot) if
 * consumer_sleeping is 1 writing an SB_REC_ABORT record and publishing it
 * (MPSC: only if prod_lock can be had at once), then clearing the slot and
 * waking tail. The ABORT moves the tail under a consumer that went to sleep
 * just as you detached: its FUTEX_WAIT on the tail cannot then miss the end.
 *
 * Consumer: the mirror image on head / consumer_sleeping / FUTEX_WAIT tail,
 * with producer_may_sleep.
 * A consumer that finds the ring empty, ever_attached = 1 and attached = 0
 * has reached the end. A producer whose thread died while attached is seen
 * by the consumer's liveness check (kill(tid, 0) and /proc) as a reset.
 * Futexes are shared (no FUTEX_PRIVATE_FLAG): the ring is in a MAP_SHARED
 * mapping of another process.
 *
 * MPSC rings (flags & SB_RING_MPSC) also require producers to hold the mutex
 * at prod_lock (layout of src/shm/mutex.ts: state word = holder tid, bit 30 =
 * waiters, word 1 = inconsistent) around each whole message; a producer that
 * takes the lock over from a dead holder writes an SB_REC_ABORT record first,
 * so the consumer drops the dead producer's partial message. Likewise a
 * producer attaching to an SPSC ring that had a producer before (ever_attached
 * already 1) writes an SB_REC_ABORT record before its first message. An ABORT
 * with no partial message pending is ignored.
 *
 * The consumer closes with closed |= SB_RING_CLOSED_BY_CONSUMER (producers
 * then fail with EPIPE) and wakes head.
 */
#ifndef SWITCHBOARD_RING_H
#define SWITCHBOARD_RING_H

#include <stdint.h>
#include <time.h>

#define SB_SHM_PREFIX "/sb."

#define SB_REGION_MAGIC 0x47524253u /* "SBRG" */
#define SB_REGION_VERSION 1u
#define SB_REGION_HEADER_SIZE 256u
#define SB_REGION_UNLINK_ON_LAST_DETACH 1u
#define SB_REGION_SLOTS 48
/* An attach slot: pid | (count << 22); 0 = free. */
#define SB_REGION_SLOT_PID(w) ((uint32_t)(w) & 0x3fffffu)
#define SB_REGION_SLOT_COUNT(w) ((uint32_t)(w) >> 22)

struct sb_region_header {
  uint32_t magic;        /* 0  SB_REGION_MAGIC, written last by the creator */
  uint32_t version;      /* 4 */
  uint32_t header_size;  /* 8  SB_REGION_HEADER_SIZE */
  uint32_t flags;        /* 12 */
  uint32_t size_lo;      /* 16 user size */
  uint32_t size_hi;      /* 20 */
  int32_t creator_pid;   /* 24 */
  int32_t overflow;      /* 28 attachments that found no slot */
  int32_t reserved[8];   /* 32 */
  int32_t slots[SB_REGION_SLOTS]; /* 64 */
};

#define SB_RING_MAGIC 0x4e524253u /* "SBRN" */
#define SB_RING_VERSION 2u /* 2: the *_may_sleep words */
#define SB_RING_ARM_US 50u
#define SB_RING_HEADER_SIZE 256u
#define SB_RING_MIN_CAPACITY 256u
#define SB_RING_MAX_CAPACITY (1u << 30)
#define SB_RING_MPSC 1u
#define SB_RING_MAX_PRODUCERS 8
#define SB_RING_CLOSED_BY_CONSUMER 1

enum sb_ring_record_type {
  SB_REC_WHOLE = 1,
  SB_REC_FIRST = 2,
  SB_REC_MIDDLE = 3,
  SB_REC_LAST = 4,
  SB_REC_ABORT = 5,
  SB_REC_PAD = 6,
};

struct sb_ring_record {
  uint32_t length; /* payload bytes after this header (before padding to 8) */
  uint32_t type;   /* enum sb_ring_record_type */
};

struct sb_ring_header {
  /* line 0: fixed at creation */
  uint32_t magic;         /* 0   SB_RING_MAGIC, written last by the creator */
  uint32_t version;       /* 4 */
  uint32_t capacity;      /* 8   data bytes, power of two */
  uint32_t flags;         /* 12  SB_RING_MPSC */
  uint32_t header_size;   /* 16  SB_RING_HEADER_SIZE */
  uint32_t max_record;    /* 20  capacity / 4: advised largest record */
  int32_t consumer_tid;   /* 24  0 when no consumer is attached */
  int32_t closed;         /* 28  SB_RING_CLOSED_BY_CONSUMER */
  int32_t ever_attached;  /* 32  1 once a producer attached */
  int32_t attached;       /* 36  producers attached now */
  int32_t producer_died;  /* 40  1 once a consumer found an attached producer dead */
  int32_t consumer_may_sleep; /* 44  consumers that may sleep on the tail's futex (0 or 1) */
  int32_t producer_may_sleep; /* 48  producers that may sleep on the head's futex */
  int32_t reserved0[3];   /* 52 */
  /* line 1: written by producers */
  uint32_t tail;              /* 64 */
  int32_t consumer_sleeping;  /* 68 */
  int32_t prod_lock[4];       /* 72  MPSC mutex */
  int32_t reserved1[10];      /* 88 */
  /* line 2: written by the consumer */
  uint32_t head;              /* 128 */
  int32_t producer_sleeping;  /* 132 */
  int32_t reserved2[14];      /* 136 */
  /* line 3 */
  int32_t producers[SB_RING_MAX_PRODUCERS]; /* 192 tids of attached producers */
  int32_t reserved3[8];       /* 224 */
};                            /* 256 */

#ifdef __cplusplus
static_assert(sizeof(struct sb_region_header) == SB_REGION_HEADER_SIZE, "region header size");
static_assert(sizeof(struct sb_ring_header) == SB_RING_HEADER_SIZE, "ring header size");
#else
_Static_assert(sizeof(struct sb_region_header) == SB_REGION_HEADER_SIZE, "region header size");
_Static_assert(sizeof(struct sb_ring_header) == SB_RING_HEADER_SIZE, "ring header size");
#endif

static inline unsigned char *sb_ring_data(struct sb_ring_header *r) {
  return (unsigned char *)r + SB_RING_HEADER_SIZE;
}

static inline uint32_t sb_load(const volatile void *p) {
  return __atomic_load_n((const volatile uint32_t *)p, __ATOMIC_SEQ_CST);
}

static inline void sb_store(volatile void *p, uint32_t v) {
  __atomic_store_n((volatile uint32_t *)p, v, __ATOMIC_SEQ_CST);
}

/*
 * Publish `value` at `index` (a ring's tail, or its head) as the rules above
 * say: a release store while the peer's *_may_sleep word is 0; else a
 * seq_cst store and, if the peer's sleeping flag is 1, clear it. Returns 1
 * when the caller must then FUTEX_WAKE `index` (the peer sleeps on it), 0
 * otherwise. For the tail: sb_ring_publish(&r->tail, tail,
 * &r->consumer_may_sleep, &r->consumer_sleeping); for the head, the
 * producer_* words.
 */
static inline int sb_ring_publish(volatile uint32_t *index, uint32_t value, const volatile int32_t *peer_may_sleep, volatile int32_t *peer_sleeping) {
  if (__atomic_load_n(peer_may_sleep, __ATOMIC_RELAXED) == 0) {
    __atomic_store_n(index, value, __ATOMIC_RELEASE);
    return 0;
  }
  sb_store(index, value);
  int32_t one = 1;
  return sb_load(peer_sleeping) != 0 && __atomic_compare_exchange_n(peer_sleeping, &one, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/*
 * Before an end's first futex sleep (see "Sleep announcements" above):
 * count it in *may_sleep (&ring->producer_may_sleep or
 * &ring->consumer_may_sleep), then poll *index while it equals `value` for
 * SB_RING_ARM_US. Returns 1 when the index moved (no need to sleep), 0 when
 * the caller may now go on to its sleeping flag and FUTEX_WAIT. Call it once
 * per arming; withdraw with __atomic_sub_fetch(may_sleep, 1, __ATOMIC_SEQ_CST).
 */
static inline int sb_ring_arm(volatile int32_t *may_sleep, const volatile uint32_t *index, uint32_t value) {
  struct timespec t0, t;
  __atomic_add_fetch(may_sleep, 1, __ATOMIC_SEQ_CST);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    if (sb_load(index) != value) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < (long)SB_RING_ARM_US * 1000L);
  return sb_load(index) != value;
}

/*
 * Optional, for speed (not part of the protocol): right after publishing
 * `tail`, a producer that will write again soon may ask for the cache line
 * after the tail's for writing, while the consumer is busy with what was
 * published; its next record's stores then need not wait for that line (the
 * addon does this; with C at both ends, 64-byte round trips, blocks in turn:
 * 0.165 -> 0.135 us; when the tail is at a line's start, asking for that
 * line instead gained half as much). `head_seen` is the head it read last (the true head is
 * at or past it): only a line with no published bytes and free room up to
 * its end is asked for, never one the consumer may still read. A hint only:
 * the data stays what it is.
 */
static inline void sb_ring_prefetch_next(const unsigned char *data, uint32_t capacity, uint32_t tail, uint32_t head_seen) {
  uint32_t pos = tail & (capacity - 1u), next = (pos | 63u) + 1u;
  if (tail - head_seen <= capacity && capacity - (tail - head_seen) >= next - pos + 64u) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetchw %0" : : "m"(data[next & (capacity - 1u)]));
#else
    __builtin_prefetch(data + (next & (capacity - 1u)), 1, 3);
#endif
  }
}

/* Size of a record with `length` payload bytes, padding included. */
static inline uint32_t sb_ring_record_size(uint32_t length) {
  return 8u + ((length + 7u) & ~7u);
}

#endif /* SWITCHBOARD_RING_H */
