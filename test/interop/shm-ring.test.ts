/**
 * A C program as the other end of a Switchboard ring: it maps the region by
 * name, attaches as the producer using only include/switchboard-ring.h, and
 * sends checksummed messages (whole and fragmented) to a Node consumer. It
 * waits for a named POSIX semaphore that Node posts, and posts one back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NamedSemaphore, RingConsumer, createRegion, initRing, ringBytes } from '../../src/shm/index.js';

/** The repository's include/ (from test/interop, or dist/test/interop when compiled). */
function includeDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'include', 'switchboard-ring.h'))) return join(dir, 'include');
    dir = dirname(dir);
  }
  throw new Error('include/switchboard-ring.h not found');
}
const INCLUDE = includeDir();

const PRODUCER_C = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "switchboard-ring.h"

static struct sb_ring_header *ring;
static uint32_t tail, cap, maxrec;
static int armed; /* counted in producer_may_sleep */

static void futex_wake(void *addr) { syscall(SYS_futex, addr, FUTEX_WAKE, 1, NULL, NULL, 0); }
static void futex_wait(void *addr, uint32_t val) {
  struct timespec ts = {0, 50 * 1000000};
  syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void publish(void) {
  sb_store(&ring->tail, tail);
  if (sb_load(&ring->consumer_sleeping) &&
      __atomic_exchange_n(&ring->consumer_sleeping, 0, __ATOMIC_SEQ_CST))
    futex_wake(&ring->tail);
}

/* Room for a record of size n at the tail (padding to the start if needed). */
static unsigned char *reserve(uint32_t n) {
  for (;;) {
    uint32_t pos = tail & (cap - 1), to_end = cap - pos;
    uint32_t need = n <= to_end ? n : to_end + n;
    uint32_t head = sb_load(&ring->head);
    if (cap - (tail - head) >= need) {
      if (n > to_end) {
        struct sb_ring_record *pad = (void *)(sb_ring_data(ring) + pos);
        pad->length = to_end - 8;
        pad->type = SB_REC_PAD;
        tail += to_end;
      }
      return sb_ring_data(ring) + (tail & (cap - 1));
    }
    publish();
    /* (the first time: announce that this producer may sleep, and poll a while before it does) */
    if (!armed) {
      armed = 1;
      if (sb_ring_arm(&ring->producer_may_sleep, &ring->head, head)) continue;
    }
    sb_store(&ring->producer_sleeping, 1);
    if (sb_load(&ring->head) == head) futex_wait(&ring->head, head);
    sb_store(&ring->producer_sleeping, 0);
  }
}

static uint32_t fnv(const unsigned char *p, size_t n) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x01000193u;
  return h;
}

static void send_msg(const unsigned char *m, uint32_t len) {
  if (sb_ring_record_size(len) <= maxrec) {
    unsigned char *at = reserve(sb_ring_record_size(len));
    struct sb_ring_record *r = (void *)at;
    r->length = len;
    r->type = SB_REC_WHOLE;
    memcpy(at + 8, m, len);
    tail += sb_ring_record_size(len);
    return;
  }
  uint32_t off = 0;
  int first = 1;
  while (off < len) {
    uint32_t room = (maxrec - 8 - (first ? 8 : 0)) & ~7u;
    uint32_t chunk = len - off < room ? len - off : room;
    uint32_t plen = chunk + (first ? 8 : 0);
    unsigned char *at = reserve(sb_ring_record_size(plen));
    struct sb_ring_record *r = (void *)at;
    r->length = plen;
    r->type = first ? SB_REC_FIRST : (off + chunk == len ? SB_REC_LAST : SB_REC_MIDDLE);
    unsigned char *p = at + 8;
    if (first) {
      uint32_t total[2] = {len, 0};
      memcpy(p, total, 8);
      p += 8;
    }
    memcpy(p, m + off, chunk);
    tail += sb_ring_record_size(plen);
    publish();
    off += chunk;
    first = 0;
  }
}

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  const char *name = argv[1];
  long count = atol(argv[2]);
  sem_t *go = sem_open(argv[3], 0), *done = sem_open(argv[4], 0);
  if (go == SEM_FAILED || done == SEM_FAILED) { perror("sem_open"); return 1; }
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) { perror("shm_open"); return 1; }
  struct stat st;
  fstat(fd, &st);
  unsigned char *base = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) { perror("mmap"); return 1; }
  struct sb_region_header *rh = (void *)base;
  if (rh->magic != SB_REGION_MAGIC) { fprintf(stderr, "bad region magic\n"); return 1; }
  ring = (void *)(base + SB_REGION_HEADER_SIZE);
  if (ring->magic != SB_RING_MAGIC || ring->version != SB_RING_VERSION) { fprintf(stderr, "bad ring\n"); return 1; }
  cap = ring->capacity;
  maxrec = ring->max_record;

  /* attach as the producer */
  int32_t me = (int32_t)syscall(SYS_gettid), zero = 0;
  if (!__atomic_compare_exchange_n(&ring->producers[0], &zero, me, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    fprintf(stderr, "producer slot taken\n");
    return 1;
  }
  __atomic_add_fetch(&ring->attached, 1, __ATOMIC_SEQ_CST);
  sb_store(&ring->ever_attached, 1);
  tail = sb_load(&ring->tail);

  while (sem_wait(go) != 0) {}
  unsigned char *m = malloc(300000);
  for (long i = 0; i < count; i++) {
    uint32_t len = (i % 500 == 499) ? 200000 + (uint32_t)i : 8 + (uint32_t)(i % 300);
    for (uint32_t k = 8; k < len; k++) m[k] = (unsigned char)(i * 31 + k * 7);
    uint32_t seq = (uint32_t)i, sum = fnv(m + 8, len - 8);
    memcpy(m, &seq, 4);
    memcpy(m + 4, &sum, 4);
    send_msg(m, len);
    if (i % 64 == 63) publish(); /* batches of 64 */
  }
  publish();
  /* detach: the consumer sees the end */
  if (armed) __atomic_sub_fetch(&ring->producer_may_sleep, 1, __ATOMIC_SEQ_CST);
  sb_store(&ring->producers[0], 0);
  __atomic_sub_fetch(&ring->attached, 1, __ATOMIC_SEQ_CST);
  futex_wake(&ring->tail);
  sem_post(done);
  return 0;
}
`;

function checksum(b: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193);
  return h >>> 0;
}

const gcc = spawnSync('gcc', ['--version']);

test('a C producer (switchboard-ring.h) feeds a Node consumer', { skip: gcc.status === 0 ? false : 'gcc is not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-shm-interop-'));
  const tag = `interop-${process.pid}`;
  const region = createRegion(tag, ringBytes(1 << 16));
  const go = NamedSemaphore.open(`${tag}-go`, { create: true, exclusive: true });
  const done = NamedSemaphore.open(`${tag}-done`, { create: true, exclusive: true });
  try {
    writeFileSync(join(dir, 'producer.c'), PRODUCER_C);
    const cc = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-I', INCLUDE, '-o', join(dir, 'producer'), join(dir, 'producer.c'), '-lpthread', '-lrt'], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    initRing(region, 0, { capacity: 1 << 16 });
    const consumer = new RingConsumer(region, 0);
    const count = 20_000;
    const child = spawn(join(dir, 'producer'), [region.path as string, String(count), go.path, done.path], { stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise<number | null>((res) => child.on('close', res));
    go.post();
    let n = 0;
    for (;;) {
      const m = await consumer.read({ timeoutMs: 20_000 });
      if (m === null) break;
      const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
      assert.equal(dv.getUint32(0, true), n, 'in order');
      assert.equal(dv.getUint32(4, true), checksum(m, 8, m.byteLength), `checksum of message ${n} (${m.byteLength} bytes)`);
      assert.equal(m.byteLength, n % 500 === 499 ? 200_000 + n : 8 + (n % 300));
      n++;
    }
    assert.equal(n, count);
    await done.waitAsync({ timeoutMs: 10_000 });
    assert.equal(await exited, 0);
    consumer.close();
  } finally {
    region.close();
    region.unlink();
    go.close();
    done.close();
    go.unlink();
    done.unlink();
    rmSync(dir, { recursive: true, force: true });
  }
});
