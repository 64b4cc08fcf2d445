/*
 * sb_fd: the few system calls Node does not expose and that the transport
 * layer needs: pipe(2), socketpair(2), mkfifo(3), SO_PEERCRED, FD_CLOEXEC,
 * and a non-blocking read for polling progress (message passing spins on a
 * socket the way MPI's progress engine does, instead of sleeping in epoll),
 * a bounded wait for one descriptor to become readable, and a non-blocking
 * receive of one datagram that reports truncation.
 * Node-API only, so it loads under every Node version of the ABI.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
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

static ssize_t recv_one(int32_t fd, void *data, size_t len, void *addr);

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
  /* (recv_one: MSG_TRUNC is never reported on a byte stream) */
  return int_or_errno(env, recv_one(fd, data, len, NULL));
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

/*
 * recvDatagram(fd, target): receive one datagram now, never waiting.
 * Returns its length, a negative errno (-EAGAIN when none is queued), or
 * target.length + 1 when the datagram was longer than target: its first
 * target.length bytes are in target and the rest is lost (MSG_TRUNC), so
 * the caller can tell a cut datagram from one that just fits. On a stream
 * socket it reads like readNonblock (truncation is never reported there).
 */
#define SOCKADDR_BYTES ((int32_t)sizeof(struct sockaddr_in6))

/*
 * One datagram now, never waiting (the shared body of recvDatagram and
 * recvFrom): its length, len + 1 when it was cut (MSG_TRUNC), or -1 with
 * errno. `addr` (SOCKADDR_BYTES, may be NULL) gets the sender's address. On
 * something that is not a socket it reads like readNonblock.
 */
static ssize_t recv_one(int32_t fd, void *data, size_t len, void *addr) {
  struct iovec iov = {data, len};
  struct msghdr msg;
  ssize_t n;
  do {
    memset(&msg, 0, sizeof msg);
    if (addr != NULL) {
      memset(addr, 0, (size_t)SOCKADDR_BYTES);
      msg.msg_name = addr;
      msg.msg_namelen = (socklen_t)SOCKADDR_BYTES;
    }
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK && addr == NULL) n = read(fd, data, len);
  } while (n < 0 && errno == EINTR);
  if (n >= 0 && (msg.msg_flags & MSG_TRUNC)) n = (ssize_t)len + 1;
  return n;
}

static napi_value js_recv_datagram(napi_env env, napi_callback_info info) {
  int32_t fd;
  void *data;
  size_t len;
  if (fd_and_bytes(env, info, "recvDatagram(fd, Uint8Array)", &fd, &data, &len) != 0) return NULL;
  if (len >= INT32_MAX) {
    napi_throw_range_error(env, "EINVAL", "recvDatagram: target must be shorter than 2 GiB");
    return NULL;
  }
  return int_or_errno(env, recv_one(fd, data, len, NULL));
}

/*
 * recvFrom(fd, target, from): recvDatagram on an unconnected socket, with
 * the sender's address written into `from` (a Uint8Array of at least
 * SOCKADDR_BYTES bytes, raw struct sockaddr) for sendTo() and peerName().
 * Same returns as recvDatagram.
 */

static int bytes_arg(napi_env env, napi_value v, void **data, size_t *len) {
  return napi_get_typedarray_info(env, v, NULL, len, data, NULL, NULL) == napi_ok ? 0 : -1;
}

static napi_value js_recv_from(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  void *data, *addr;
  size_t len, alen;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || bytes_arg(env, argv[1], &data, &len) != 0 ||
      bytes_arg(env, argv[2], &addr, &alen) != 0 || alen < (size_t)SOCKADDR_BYTES) {
    napi_throw_type_error(env, "EINVAL", "recvFrom(fd, Uint8Array, Uint8Array of 28+ bytes)");
    return NULL;
  }
  if (len >= INT32_MAX) {
    napi_throw_range_error(env, "EINVAL", "recvFrom: target must be shorter than 2 GiB");
    return NULL;
  }
  return int_or_errno(env, recv_one(fd, data, len, addr));
}

/* The sockaddr in `from` and its length, checked (AF_INET or AF_INET6 only). */
static int sockaddr_arg(napi_env env, napi_value v, struct sockaddr **sa, socklen_t *salen) {
  void *addr;
  size_t alen;
  if (bytes_arg(env, v, &addr, &alen) != 0 || alen < (size_t)SOCKADDR_BYTES) return -1;
  sa_family_t fam;
  memcpy(&fam, addr, sizeof fam);
  if (fam == AF_INET) *salen = sizeof(struct sockaddr_in);
  else if (fam == AF_INET6) *salen = sizeof(struct sockaddr_in6);
  else return -1;
  *sa = (struct sockaddr *)addr;
  return 0;
}

/*
 * sendTo(fd, data, to): one datagram to the address recvFrom() wrote, never
 * waiting. The byte count or a negative errno (-EAGAIN: the buffer is full).
 */
static napi_value js_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  void *data;
  size_t len;
  struct sockaddr *sa;
  socklen_t salen;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || bytes_arg(env, argv[1], &data, &len) != 0 ||
      sockaddr_arg(env, argv[2], &sa, &salen) != 0) {
    napi_throw_type_error(env, "EINVAL", "sendTo(fd, Uint8Array, address from recvFrom)");
    return NULL;
  }
  ssize_t n;
  do {
    n = sendto(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, sa, salen);
  } while (n < 0 && errno == EINTR);
  return int_or_errno(env, n);
}

/* peerName(from): "host:port" ("[v6]:port") of an address recvFrom() wrote, as the dgram module spells it. */
static napi_value js_peer_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr *sa;
  socklen_t salen;
  if (argc < 1 || sockaddr_arg(env, argv[0], &sa, &salen) != 0) {
    napi_throw_type_error(env, "EINVAL", "peerName(address from recvFrom)");
    return NULL;
  }
  char host[INET6_ADDRSTRLEN];
  char out[INET6_ADDRSTRLEN + 16];
  if (sa->sa_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    snprintf(out, sizeof out, "%s:%u", host, (unsigned)ntohs(in->sin_port));
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    snprintf(out, sizeof out, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
  }
  napi_value v;
  napi_create_string_utf8(env, out, NAPI_AUTO_LENGTH, &v);
  return v;
}

/*
 * sockaddrOf(host, port, out): the raw address of a numeric IPv4 or IPv6
 * host and a port, written into `out` (SOCKADDR_BYTES or more) for sendTo().
 * Returns 0, or -EINVAL when the host is not a numeric address.
 */
static napi_value js_sockaddr_of(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char host[INET6_ADDRSTRLEN + 1];
  size_t hlen;
  int32_t port;
  void *out;
  size_t olen;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hlen) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || bytes_arg(env, argv[2], &out, &olen) != 0 ||
      olen < (size_t)SOCKADDR_BYTES || port < 0 || port > 65535) {
    napi_throw_type_error(env, "EINVAL", "sockaddrOf(host, port, Uint8Array of 28+ bytes)");
    return NULL;
  }
  memset(out, 0, (size_t)SOCKADDR_BYTES);
  int rc = 0;
  if (strchr(host, ':') != NULL) {
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &in6.sin6_addr) == 1) memcpy(out, &in6, sizeof in6);
    else rc = -EINVAL;
  } else {
    struct sockaddr_in in4;
    memset(&in4, 0, sizeof in4);
    in4.sin_family = AF_INET;
    in4.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &in4.sin_addr) == 1) memcpy(out, &in4, sizeof in4);
    else rc = -EINVAL;
  }
  napi_value v;
  napi_create_int32(env, rc, &v);
  return v;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * waitReadable(fd, timeoutUs): sleep in the kernel until `fd` is readable
 * (or at its end, or in error: a read then says which) or timeoutUs
 * microseconds pass. Returns 1 readable, 0 timed out, or a negative errno
 * (-EBADF for a descriptor that is not open). A signal does not cut the
 * wait short: it goes on for the time that is left. Blocks the calling
 * thread: callers bound timeoutUs.
 */
static napi_value js_wait_readable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  double us;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_double(env, argv[1], &us) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "waitReadable(fd, timeoutUs)");
    return NULL;
  }
  /* At most an hour: a longer block of the event loop is a mistake, not a policy. */
  if (fd < 0 || !(us >= 0 && us <= 3600e6)) {
    napi_throw_range_error(env, "EINVAL", "waitReadable: fd must be >= 0 and timeoutUs from 0 to 3600e6");
    return NULL;
  }
  int64_t end = now_ns() + (int64_t)(us * 1000);
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  for (;;) {
    int64_t left = end - now_ns();
    if (left < 0) left = 0;
    struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
    p.revents = 0;
    r = ppoll(&p, 1, &ts, NULL);
    if (r >= 0 || errno != EINTR) break;
  }
  int32_t out;
  if (r < 0) out = -errno;
  else if (r == 0) out = 0;
  else if (p.revents & POLLNVAL) out = -EBADF;
  else out = 1;
  napi_value v;
  napi_create_int32(env, out, &v);
  return v;
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
    {"recvDatagram", NULL, js_recv_datagram, NULL, NULL, NULL, napi_default, NULL},
    {"recvFrom", NULL, js_recv_from, NULL, NULL, NULL, napi_default, NULL},
    {"sendTo", NULL, js_send_to, NULL, NULL, NULL, napi_default, NULL},
    {"peerName", NULL, js_peer_name, NULL, NULL, NULL, napi_default, NULL},
    {"sockaddrOf", NULL, js_sockaddr_of, NULL, NULL, NULL, napi_default, NULL},
    {"waitReadable", NULL, js_wait_readable, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
