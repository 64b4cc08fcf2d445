/*
 * pin-fork.c -- LD_PRELOAD shim for `npm run bench` (section shm): a C
 * benchmark that forks its far end runs with a core each, from the first
 * round trip. After fork(), the parent keeps CPU PIN_FORK_PARENT (default 0)
 * and the child takes CPU PIN_FORK_CHILD (default 1). The benchmark itself
 * is not changed; this does what taskset would do, at the moment of the fork.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

static void pin(const char *var, int dflt) {
  const char *v = getenv(var);
  int cpu = v ? atoi(v) : dflt;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)sched_setaffinity(0, sizeof set, &set);
}

pid_t fork(void) {
  static pid_t (*real)(void);
  if (!real) real = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
  pid_t p = real();
  if (p == 0) pin("PIN_FORK_CHILD", 1);
  else if (p > 0) pin("PIN_FORK_PARENT", 0);
  return p;
}
