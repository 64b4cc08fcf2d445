/*
 * sb_daemon: the one system call the daemon habits need that Node lacks:
 * flock(2), for a pidfile lock the kernel drops when the holder dies (so a
 * stale pidfile is never mistaken for a live daemon, whatever pid it names).
 * Node-API only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, name ? name : "EIO", msg);
  return NULL;
}

/* tryLockExclusive(fd): true when the lock is taken, false when another open file holds it. */
static napi_value js_try_lock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "tryLockExclusive: fd must be an integer");
    return NULL;
  }
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB); while (r != 0 && errno == EINTR);
  napi_value out;
  if (r == 0) {
    napi_get_boolean(env, 1, &out);
    return out;
  }
  if (errno == EWOULDBLOCK) {
    napi_get_boolean(env, 0, &out);
    return out;
  }
  return throw_errno(env, errno, "flock");
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"tryLockExclusive", NULL, js_try_lock, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
