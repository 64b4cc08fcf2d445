/*
 * ring-pingpong.c -- both ends of a Switchboard ring pair in C, for `npm run
 * bench` (section shm): the round trip of our ring protocol with no Node at
 * all, beside the C spin handshake of ../shared/peers/native and the Node
 * rows. It follows include/switchboard-ring.h the way the addon's ringRead
 * and ringWrite do (whole-message records, padding at the end of the data
 * area, index stores that are seq_cst with the sleeping flag looked at after
 * them only when the peer announced it may sleep (nobody does here), the
 * next cache line prefetched when published bytes run into it, the line
 * after the tail's asked for writing after each publish), and spins without
 * ever sleeping. Two processes (fork), an anonymous shared
 * mapping, rings of 1 MiB.
 *
 *   ring-pingpong SIZE ITERS ROUNDS   ->  RESULT|ring-pingpong|SIZE|median_us|min_us
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "switchboard-ring.h"

#define CAP (1u << 20)

struct end {
  struct sb_ring_header *h;
  unsigned char *d;
  uint32_t head, tail, tail_seen, head_seen;
};

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void put(struct end *e, const unsigned char *src, uint32_t len) {
  uint32_t size = sb_ring_record_size(len);
  uint32_t pos = e->tail & (CAP - 1);
  if (pos + size > CAP) {
    while (CAP - (e->tail - e->head_seen) < CAP - pos) e->head_seen = sb_load(&e->h->head);
    struct sb_ring_record *pad = (struct sb_ring_record *)(e->d + pos);
    pad->length = CAP - pos - 8;
    pad->type = SB_REC_PAD;
    e->tail += CAP - pos;
    pos = 0;
  }
  while (CAP - (e->tail - e->head_seen) < size) e->head_seen = sb_load(&e->h->head);
  struct sb_ring_record *rec = (struct sb_ring_record *)(e->d + pos);
  rec->length = len;
  rec->type = SB_REC_WHOLE;
  memcpy(e->d + pos + 8, src, len);
  e->tail += size;
  /* as the addon does (nobody sleeps here, so nobody is to be woken) */
  (void)sb_ring_publish(&e->h->tail, e->tail, &e->h->consumer_may_sleep, &e->h->consumer_sleeping);
  sb_ring_prefetch_next(e->d, CAP, e->tail, e->head_seen); /* as the addon does */
}

static uint32_t take(struct end *e, unsigned char *dst) {
  for (;;) {
    /* (look first, pause only when nothing came: a pause after the look that sees the tail move
       costs a pause's latency on every message, 0.22 -> 0.17 us per round trip here) */
    if (e->tail_seen == e->head)
      while ((e->tail_seen = sb_load(&e->h->tail)) == e->head) __builtin_ia32_pause();
    uint32_t pos = e->head & (CAP - 1);
    uint32_t next_line = (pos | 63u) + 1u;
    if (e->tail_seen - e->head > next_line - pos && next_line < CAP) __builtin_prefetch(e->d + next_line);
    struct sb_ring_record *rec = (struct sb_ring_record *)(e->d + pos);
    uint32_t len = rec->length, type = rec->type;
    if (type == SB_REC_PAD) {
      e->head += CAP - pos;
      continue;
    }
    memcpy(dst, e->d + pos + 8, len);
    e->head += sb_ring_record_size(len);
    (void)sb_ring_publish(&e->h->head, e->head, &e->h->producer_may_sleep, &e->h->producer_sleeping);
    return len;
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  uint32_t size = argc > 1 ? (uint32_t)atoi(argv[1]) : 64;
  long iters = argc > 2 ? atol(argv[2]) : 100000;
  int rounds = argc > 3 ? atoi(argv[3]) : 5;
  if (size < 1 || size > 65536 || iters < 1 || rounds < 1 || rounds > 100) {
    fprintf(stderr, "usage: ring-pingpong SIZE(1..65536) ITERS ROUNDS(1..100)\n");
    return 2;
  }
  size_t rb = SB_RING_HEADER_SIZE + CAP;
  unsigned char *m = mmap(NULL, 2 * rb, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return perror("mmap"), 1;
  struct end a = {(struct sb_ring_header *)m, m + SB_RING_HEADER_SIZE, 0, 0, 0, 0};
  struct end b = {(struct sb_ring_header *)(m + rb), m + rb + SB_RING_HEADER_SIZE, 0, 0, 0, 0};
  static unsigned char msg[65536], got[65536];
  memset(msg, 7, size);
  pid_t pid = fork();
  if (pid < 0) return perror("fork"), 1;
  if (pid == 0) {
    for (;;) {
      uint32_t n = take(&a, got);
      if (n == 0) _exit(0);
      put(&b, got, n);
    }
  }
  for (long i = 0; i < iters / 10 + 1; i++) put(&a, msg, size), take(&b, got);
  double per[100];
  for (int r = 0; r < rounds; r++) {
    double t0 = now_us();
    for (long i = 0; i < iters; i++) put(&a, msg, size), take(&b, got);
    per[r] = (now_us() - t0) / (double)iters;
  }
  put(&a, msg, 0);
  waitpid(pid, NULL, 0);
  if (memcmp(got, msg, size) != 0) return fprintf(stderr, "echo mismatch\n"), 1;
  qsort(per, (size_t)rounds, sizeof per[0], cmp);
  printf("RESULT|ring-pingpong|%u|%.3f|%.3f\n", size, per[rounds / 2], per[0]);
  return 0;
}
