/*
 * sb_fd: the few system calls Node does not expose and that the transport
 * layer needs: pipe(2), socketpair(2), mkfifo(3), SO_PEERCRED, FD_CLOEXEC,
 * and a non-blocking read for polling progress (message passing spins on a
 * socket the way MPI's progress engine does, instead of sleeping in epoll).
 * Node-API only, so it loads under every Node version of the ABI.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, name ? name : "EIO", msg);
  return NULL;
}

static napi_value pair_result(napi_env env, int a, int b) {
  napi_value arr, va, vb;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_int32(env, a, &va);
  napi_create_int32(env, b, &vb);
  napi_set_element(env, arr, 0, va);
  napi_set_element(env, arr, 1, vb);
  return arr;
}

static int arg_int(napi_env env, napi_callback_info info, size_t idx, int *out) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (idx >= argc) return -1;
  return napi_get_value_int32(env, argv[idx], out) == napi_ok ? 0 : -1;
}

static napi_value js_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return throw_errno(env, errno, "pipe");
  return pair_result(env, fds[0], fds[1]);
}

static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return throw_errno(env, errno, "socketpair");
  return pair_result(env, fds[0], fds[1]);
}

static napi_value js_mkfifo(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[4096];
  size_t len = 0;
  int mode = 0600;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || len == 0 || len >= sizeof path - 1) {
    napi_throw_type_error(env, "EINVAL", "mkfifo: path must be a non-empty string");
    return NULL;
  }
  if (argc >= 2) napi_get_value_int32(env, argv[1], &mode);
  if (mkfifo(path, (mode_t)mode) != 0) return throw_errno(env, errno, "mkfifo");
  return NULL;
}

static napi_value js_peercred(napi_env env, napi_callback_info info) {
  int fd;
  if (arg_int(env, info, 0, &fd) != 0) {
    napi_throw_type_error(env, "EINVAL", "peerCred: fd must be an integer");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return throw_errno(env, errno, "getsockopt(SO_PEERCRED)");
  napi_value obj, v;
  napi_create_object(env, &obj);
  napi_create_int32(env, cred.pid, &v);
  napi_set_named_property(env, obj, "pid", v);
  napi_create_uint32(env, cred.uid, &v);
  napi_set_named_property(env, obj, "uid", v);
  napi_create_uint32(env, cred.gid, &v);
  napi_set_named_property(env, obj, "gid", v);
  return obj;
}

static napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
  int fd, on;
  if (arg_int(env, info, 0, &fd) != 0 || arg_int(env, info, 1, &on) != 0) {
    napi_throw_type_error(env, "EINVAL", "setCloexec(fd, on)");
    return NULL;
  }
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return throw_errno(env, errno, "fcntl(F_GETFD)");
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (fcntl(fd, F_SETFD, flags) != 0) return throw_errno(env, errno, "fcntl(F_SETFD)");
  return NULL;
}

static napi_value js_fd_type(napi_env env, napi_callback_info info) {
  int fd;
  if (arg_int(env, info, 0, &fd) != 0) {
    napi_throw_type_error(env, "EINVAL", "fdType: fd must be an integer");
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return throw_errno(env, errno, "fstat");
  const char *t = S_ISFIFO(st.st_mode) ? "fifo" : S_ISSOCK(st.st_mode) ? "socket" : S_ISREG(st.st_mode) ? "file"
                : S_ISCHR(st.st_mode) ? "char" : "other";
  napi_value v;
  napi_create_string_utf8(env, t, NAPI_AUTO_LENGTH, &v);
  return v;
}

/* (fd, Uint8Array) arguments of the non-blocking calls; 0, or -1 with a TypeError thrown naming `usage`. */
static int fd_and_bytes(napi_env env, napi_callback_info info, const char *usage, int32_t *fd, void **data, size_t *len) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_int32(env, argv[0], fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], NULL, len, data, NULL, NULL) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", usage);
    return -1;
  }
  return 0;
}

static napi_value int_or_errno(napi_env env, ssize_t n) {
  napi_value out;
  napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &out);
  return out;
}

/*
 * readNonblock(fd, target): read what is there now, never waiting.
 * Returns the byte count (0 at end of stream) or a negative errno
 * (-EAGAIN when nothing is there). Never throws on I/O errors: the caller
 * polls in a hot loop and leaves errors to the event loop's own read.
 */
static napi_value js_read_nonblock(napi_env env, napi_callback_info info) {
  int32_t fd;
  void *data;
  size_t len;
  if (fd_and_bytes(env, info, "readNonblock(fd, Uint8Array)", &fd, &data, &len) != 0) return NULL;
  ssize_t n;
  do {
    n = recv(fd, data, len, MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK) n = read(fd, data, len);
  } while (n < 0 && errno == EINTR);
  return int_or_errno(env, n);
}

/*
 * writeNonblock(fd, data): one non-blocking send of as much of `data` as the
 * kernel takes now. Returns the byte count or a negative errno (-EAGAIN when
 * the socket buffer is full); never raises SIGPIPE, never throws on I/O errors.
 */
static napi_value js_write_nonblock(napi_env env, napi_callback_info info) {
  int32_t fd;
  void *data;
  size_t len;
  if (fd_and_bytes(env, info, "writeNonblock(fd, Uint8Array)", &fd, &data, &len) != 0) return NULL;
  ssize_t n;
  do {
    n = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = write(fd, data, len);
  } while (n < 0 && errno == EINTR);
  return int_or_errno(env, n);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"pipe", NULL, js_pipe, NULL, NULL, NULL, napi_default, NULL},
    {"socketpair", NULL, js_socketpair, NULL, NULL, NULL, napi_default, NULL},
    {"mkfifo", NULL, js_mkfifo, NULL, NULL, NULL, napi_default, NULL},
    {"peerCred", NULL, js_peercred, NULL, NULL, NULL, napi_default, NULL},
    {"setCloexec", NULL, js_set_cloexec, NULL, NULL, NULL, napi_default, NULL},
    {"fdType", NULL, js_fd_type, NULL, NULL, NULL, napi_default, NULL},
    {"readNonblock", NULL, js_read_nonblock, NULL, NULL, NULL, napi_default, NULL},
    {"writeNonblock", NULL, js_write_nonblock, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
