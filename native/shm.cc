/*
 * sb_shm: POSIX shared memory for Node, with the memory exposed as a real
 * SharedArrayBuffer so that Atomics and typed arrays work on it.
 *
 * Node-API cannot wrap foreign memory in a SharedArrayBuffer, so this addon
 * uses V8 directly (SharedArrayBuffer::NewBackingStore with a deleter that
 * unmaps) and is built against the headers of the Node that runs it. It is
 * context-aware, so worker_threads can load it too.
 *
 * What it offers, each validated before any pointer is formed:
 *   shm_open / ftruncate / fallocate / fstat / close / shm_unlink
 *   mmap(fd) -> SharedArrayBuffer (a window of the mapping), msync
 *   futex wait/wake on Int32Array elements (shared futexes: no
 *   FUTEX_PRIVATE_FLAG, so they work across processes), sync and async
 *   named POSIX semaphores (sem_open and friends), sync and async
 *   gettid, and a liveness test for a thread/process id.
 *
 * The library is linked with -z nodelete: Node unloads addons when a worker
 * exits, but our pool threads and the close callback of a worker's uv handle
 * may still run code from it afterwards.
 *
 * Async waits run on a small pool of dedicated threads (not libuv's pool, so a
 * long wait never starves fs or dns work) and report back through one
 * uv_async_t per environment.
 */
#include <node.h>
#include <uv.h>
#include <v8.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <linux/futex.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <memory>
#include <new>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../include/switchboard-ring.h"
#include "fast-call.h"

using v8::Array;
using v8::ArrayBuffer;
using v8::BackingStore;
using v8::Context;
using v8::External;
using v8::Function;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Global;
using v8::HandleScope;
using v8::Int32Array;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

namespace {

/* ------------------------------------------------------------------ errors */

void ThrowErrno(Isolate *iso, int err, const std::string &what) {
  const char *name = strerrorname_np(err);
  std::string msg = what + ": " + strerror(err);
  Local<Value> e = v8::Exception::Error(String::NewFromUtf8(iso, msg.c_str()).ToLocalChecked());
  Local<Context> ctx = iso->GetCurrentContext();
  e.As<Object>()
      ->Set(ctx, String::NewFromUtf8Literal(iso, "code"),
            String::NewFromUtf8(iso, name ? name : "EIO").ToLocalChecked())
      .Check();
  e.As<Object>()->Set(ctx, String::NewFromUtf8Literal(iso, "errno"), Integer::New(iso, err)).Check();
  iso->ThrowException(e);
}

void ThrowType(Isolate *iso, const char *msg) {
  iso->ThrowException(v8::Exception::TypeError(String::NewFromUtf8(iso, msg).ToLocalChecked()));
}

void ThrowRange(Isolate *iso, const char *msg) {
  iso->ThrowException(v8::Exception::RangeError(String::NewFromUtf8(iso, msg).ToLocalChecked()));
}

bool ArgInt(const FunctionCallbackInfo<Value> &a, int i, int64_t *out, const char *what) {
  Isolate *iso = a.GetIsolate();
  if (i >= a.Length() || !a[i]->IsNumber()) {
    ThrowType(iso, what);
    return false;
  }
  double d = a[i].As<Number>()->Value();
  if (!std::isfinite(d) || d != std::floor(d) || d < -9007199254740991.0 || d > 9007199254740991.0) {
    ThrowRange(iso, what);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

bool ArgString(const FunctionCallbackInfo<Value> &a, int i, std::string *out, const char *what) {
  Isolate *iso = a.GetIsolate();
  if (i >= a.Length() || !a[i]->IsString()) {
    ThrowType(iso, what);
    return false;
  }
  String::Utf8Value s(iso, a[i]);
  if (*s == nullptr) {
    ThrowType(iso, what);
    return false;
  }
  out->assign(*s, s.length());
  if (out->find('\0') != std::string::npos) {
    ThrowType(iso, what);
    return false;
  }
  return true;
}

/* A timeout argument: a finite number >= 0 in ms, or anything negative / Infinity for "forever". */
bool ArgTimeout(const FunctionCallbackInfo<Value> &a, int i, double *out) {
  if (i >= a.Length() || !a[i]->IsNumber()) {
    ThrowType(a.GetIsolate(), "timeout must be a number (ms; Infinity or -1 for none)");
    return false;
  }
  double d = a[i].As<Number>()->Value();
  if (std::isnan(d)) {
    ThrowRange(a.GetIsolate(), "timeout is NaN");
    return false;
  }
  *out = (d < 0 || std::isinf(d)) ? -1 : d;
  return true;
}

/* Resolve (Int32Array, index) to an aligned address inside a SharedArrayBuffer. */
int32_t *ArgCell(const FunctionCallbackInfo<Value> &a, int ai, int ii, std::shared_ptr<BackingStore> *keep) {
  Isolate *iso = a.GetIsolate();
  if (ai >= a.Length() || !a[ai]->IsInt32Array()) {
    ThrowType(iso, "expected an Int32Array over a SharedArrayBuffer");
    return nullptr;
  }
  Local<Int32Array> arr = a[ai].As<Int32Array>();
  Local<ArrayBuffer> buf = arr->Buffer();
  if (!Local<Value>(buf)->IsSharedArrayBuffer()) {
    ThrowType(iso, "the Int32Array must view a SharedArrayBuffer");
    return nullptr;
  }
  int64_t idx;
  if (!ArgInt(a, ii, &idx, "index must be an integer")) return nullptr;
  size_t len = arr->Length();
  if (idx < 0 || (uint64_t)idx >= len) {
    ThrowRange(iso, "index out of range");
    return nullptr;
  }
  std::shared_ptr<BackingStore> bs = buf->GetBackingStore();
  char *base = static_cast<char *>(bs->Data());
  if (base == nullptr || arr->ByteOffset() + (size_t)(idx + 1) * 4 > bs->ByteLength()) {
    ThrowRange(iso, "index out of range of the buffer");
    return nullptr;
  }
  if (keep) *keep = bs;
  return reinterpret_cast<int32_t *>(base + arr->ByteOffset() + (size_t)idx * 4);
}

/* ------------------------------------------------------------------- futex */

long Futex(int32_t *addr, int op, int32_t val, const struct timespec *ts) {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, 0);
}

double NowMs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

struct timespec MsToTs(double ms) {
  struct timespec ts;
  if (ms < 0) ms = 0;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

enum WaitResult { WR_OK = 0, WR_NOT_EQUAL = 1, WR_TIMED_OUT = 2, WR_CANCELLED = 3 };

const char *ResultName(int r) {
  switch (r) {
    case WR_OK: return "ok";
    case WR_NOT_EQUAL: return "not-equal";
    case WR_TIMED_OUT: return "timed-out";
    default: return "cancelled";
  }
}

/*
 * One futex wait honouring a total timeout (-1 = none), retried on EINTR.
 * `cancel` (may be null) is polled every `sliceMs` so a pool thread can be
 * stopped; sliceMs < 0 means no slicing.
 */
int FutexWaitLoop(int32_t *addr, int32_t expected, double timeoutMs, const std::atomic<bool> *cancel, double sliceMs) {
  double deadline = timeoutMs < 0 ? -1 : NowMs() + timeoutMs;
  /* Like Atomics.wait: a value that already differs is 'not-equal', even with no time to wait. */
  if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != expected) return WR_NOT_EQUAL;
  for (;;) {
    if (cancel && cancel->load(std::memory_order_acquire)) return WR_CANCELLED;
    double wait = -1;
    if (deadline >= 0) {
      wait = deadline - NowMs();
      if (wait <= 0) return WR_TIMED_OUT;
    }
    if (sliceMs >= 0 && (wait < 0 || wait > sliceMs)) wait = sliceMs;
    struct timespec ts;
    if (wait >= 0) ts = MsToTs(wait);
    long r = Futex(addr, FUTEX_WAIT, expected, wait >= 0 ? &ts : nullptr);
    if (r == 0) return WR_OK;
    if (errno == EAGAIN) return WR_NOT_EQUAL;
    if (errno == EINTR || errno == ETIMEDOUT) continue;
    return WR_OK; /* EFAULT and the like cannot happen on a validated address; let the caller re-check */
  }
}

/* ------------------------------------------------------------- semaphores */

struct Sem {
  sem_t *s;
  explicit Sem(sem_t *p) : s(p) {}
  ~Sem() { sem_close(s); }
};

std::mutex g_sem_mu;
std::unordered_map<int32_t, std::shared_ptr<Sem>> g_sems;
int32_t g_sem_next = 1;

std::shared_ptr<Sem> LookupSem(const FunctionCallbackInfo<Value> &a, int i) {
  int64_t id;
  if (!ArgInt(a, i, &id, "semaphore handle must be an integer")) return nullptr;
  std::lock_guard<std::mutex> g(g_sem_mu);
  auto it = g_sems.find((int32_t)id);
  if (it == g_sems.end()) {
    ThrowErrno(a.GetIsolate(), EBADF, "semaphore handle is closed");
    return nullptr;
  }
  return it->second;
}

int SemWaitLoop(sem_t *s, double timeoutMs, const std::atomic<bool> *cancel, double sliceMs) {
  double deadline = timeoutMs < 0 ? -1 : NowMs() + timeoutMs;
  for (;;) {
    if (cancel && cancel->load(std::memory_order_acquire)) return WR_CANCELLED;
    double wait = -1;
    if (deadline >= 0) {
      wait = deadline - NowMs();
      if (wait <= 0) {
        if (sem_trywait(s) == 0) return WR_OK;
        return WR_TIMED_OUT;
      }
    }
    if (sliceMs >= 0 && (wait < 0 || wait > sliceMs)) wait = sliceMs;
    int r;
    if (wait < 0) {
      r = sem_wait(s);
    } else {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      struct timespec add = MsToTs(wait);
      ts.tv_sec += add.tv_sec;
      ts.tv_nsec += add.tv_nsec;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      r = sem_timedwait(s, &ts);
    }
    if (r == 0) return WR_OK;
    if (errno == EINTR || errno == ETIMEDOUT) continue;
    return -errno;
  }
}

/* ------------------------------------------------------- async wait pool */

struct EnvData;

struct Job {
  uint64_t id;
  std::shared_ptr<EnvData> env;
  std::shared_ptr<BackingStore> bs; /* keeps the mapping alive while waiting */
  int32_t *addr = nullptr;
  int32_t expected = 0;
  std::shared_ptr<Sem> sem;
  double timeoutMs = -1;
  std::atomic<bool> cancelled{false};
  int result = WR_OK;
};

struct EnvData {
  Isolate *iso = nullptr;
  uv_async_t *async = nullptr;
  std::mutex mu;
  bool alive = true;
  std::deque<std::pair<uint64_t, int>> done;
  /* JS-thread only: */
  struct Pending {
    std::shared_ptr<Job> job;
    Global<Function> cb;
    bool ref;
  };
  std::unordered_map<uint64_t, Pending> pending;
  int refs = 0;
  uint64_t next_id = 1;

  void UpdateRef() {
    if (!async) return;
    if (refs > 0)
      uv_ref(reinterpret_cast<uv_handle_t *>(async));
    else
      uv_unref(reinterpret_cast<uv_handle_t *>(async));
  }
};

/* Polling interval of waiting pool threads for cancellation. */
constexpr double kSliceMs = 100;

class Pool {
 public:
  /* One thread per waiting job; false when that would pass kMaxThreads. */
  bool Submit(std::shared_ptr<Job> job) {
    std::lock_guard<std::mutex> g(mu_);
    if (idle_ <= (int)queue_.size()) {
      if (threads_ >= kMaxThreads) return false;
      /* pthread_create, not std::thread: addons build without exceptions, and we want the error code. */
      pthread_t t;
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_attr_setstacksize(&attr, 256 * 1024);
      int r = pthread_create(&t, &attr, &Pool::Start, this);
      pthread_attr_destroy(&attr);
      if (r != 0) return false;
      threads_++;
    }
    queue_.push_back(std::move(job));
    cv_.notify_one();
    return true;
  }

  static constexpr int kMaxThreads = 1024;

 private:
  static void *Start(void *self) {
    static_cast<Pool *>(self)->Run();
    return nullptr;
  }

  void Run() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      idle_++;
      bool got = cv_.wait_for(lk, std::chrono::seconds(30), [this] { return !queue_.empty(); });
      idle_--;
      if (!got) { /* idle for long: let the thread go */
        threads_--;
        return;
      }
      std::shared_ptr<Job> job = std::move(queue_.front());
      queue_.pop_front();
      lk.unlock();
      if (job->sem)
        job->result = SemWaitLoop(job->sem->s, job->timeoutMs, &job->cancelled, kSliceMs);
      else
        job->result = FutexWaitLoop(job->addr, job->expected, job->timeoutMs, &job->cancelled, kSliceMs);
      {
        std::shared_ptr<EnvData> env = job->env;
        std::lock_guard<std::mutex> g(env->mu);
        if (env->alive) {
          env->done.emplace_back(job->id, job->result);
          uv_async_send(env->async);
          /* Let the memory go now, while the environment cannot end (it takes env->mu to): a
             JS-allocated SharedArrayBuffer is freed through its isolate's allocator. */
          job->bs.reset();
        } else if (job->bs) {
          /* The environment ended while we waited (a worker that exited, a process at exit): its
             allocator may be gone, so its memory is never released from here. */
          new std::shared_ptr<BackingStore>(std::move(job->bs));
        }
      }
      job.reset();
      lk.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  int idle_ = 0;
  int threads_ = 0;
};

Pool *g_pool = new Pool(); /* never destroyed: detached threads may still use it at exit */

/* Holder so the shared_ptr can be reached from the uv handle and the cleanup hook. */
struct EnvHolder {
  std::shared_ptr<EnvData> env;
};

void OnAsync(uv_async_t *h) {
  EnvHolder *holder = static_cast<EnvHolder *>(h->data);
  std::shared_ptr<EnvData> env = holder->env;
  std::deque<std::pair<uint64_t, int>> done;
  {
    std::lock_guard<std::mutex> g(env->mu);
    done.swap(env->done);
  }
  Isolate *iso = env->iso;
  HandleScope hs(iso);
  for (auto &d : done) {
    auto it = env->pending.find(d.first);
    if (it == env->pending.end()) continue; /* cancelled */
    Local<Function> cb = it->second.cb.Get(iso);
    if (it->second.ref) env->refs--;
    env->pending.erase(it);
    env->UpdateRef();
    Local<Context> ctx = cb->GetCreationContextChecked();
    Local<Value> argv[1];
    if (d.second < 0)
      argv[0] = Integer::New(iso, d.second);
    else
      argv[0] = String::NewFromUtf8(iso, ResultName(d.second)).ToLocalChecked();
    /* MakeCallback drains the microtask queue afterwards, so awaiting code runs now. */
    node::MakeCallback(iso, ctx->Global(), cb, 1, argv, node::async_context{0, 0});
  }
}

void ReleaseBoundOf(const EnvData *env);

void CleanupEnv(void *arg) {
  EnvHolder *holder = static_cast<EnvHolder *>(arg);
  std::shared_ptr<EnvData> env = holder->env;
  /* A thread that ends without closing its ring ends (a worker that exits) gives their slots back here. */
  ReleaseBoundOf(env.get());
  {
    std::lock_guard<std::mutex> g(env->mu);
    env->alive = false;
  }
  for (auto &p : env->pending) {
    p.second.job->cancelled.store(true, std::memory_order_release);
    p.second.cb.Reset();
  }
  env->pending.clear();
  uv_close(reinterpret_cast<uv_handle_t *>(env->async), [](uv_handle_t *h) {
    delete static_cast<EnvHolder *>(h->data);
    delete reinterpret_cast<uv_async_t *>(h);
  });
  env->async = nullptr;
}

EnvData *GetEnv(const FunctionCallbackInfo<Value> &a) {
  return static_cast<EnvHolder *>(a.Data().As<External>()->Value())->env.get();
}

std::shared_ptr<EnvData> GetEnvShared(const FunctionCallbackInfo<Value> &a) {
  return static_cast<EnvHolder *>(a.Data().As<External>()->Value())->env;
}

/* Registers a job with its callback and hands it to the pool; returns the job id. */
void StartJob(const FunctionCallbackInfo<Value> &a, std::shared_ptr<Job> job, int refArg, int cbArg) {
  Isolate *iso = a.GetIsolate();
  if (cbArg >= a.Length() || !a[cbArg]->IsFunction()) return ThrowType(iso, "callback must be a function");
  bool ref = refArg < a.Length() && a[refArg]->BooleanValue(iso);
  std::shared_ptr<EnvData> env = GetEnvShared(a);
  job->id = env->next_id++;
  job->env = env;
  EnvData::Pending p{job, Global<Function>(iso, a[cbArg].As<Function>()), ref};
  env->pending.emplace(job->id, std::move(p));
  if (!g_pool->Submit(job)) {
    env->pending.erase(job->id);
    return ThrowErrno(iso, EAGAIN, "too many pending asynchronous waits");
  }
  if (ref) {
    env->refs++;
    env->UpdateRef();
  }
  a.GetReturnValue().Set(Number::New(iso, (double)job->id));
}

/* --------------------------------------------------------------- bindings */

void JsGettid(const FunctionCallbackInfo<Value> &a) { a.GetReturnValue().Set((int32_t)syscall(SYS_gettid)); }

/* yield(): give the CPU to another runnable thread (a spinning ring end whose peer may be waiting for this CPU). */
void JsYield(const FunctionCallbackInfo<Value> &) { sched_yield(); }

/* alive(id): is the thread or process `id` still running (a zombie counts as dead)? */
/*
 * copy(target, targetOffset, source, sourceOffset, length): memmove between
 * two typed arrays (either may view a SharedArrayBuffer). V8 copies shared
 * memory with relaxed atomic word stores (and byte by byte when the two sides
 * are not aligned alike), about 3x slower than memcpy; big messages leaving or
 * entering a ring come through here. Every offset is checked against the views.
 */
bool ViewBytes(const FunctionCallbackInfo<Value> &a, int i, uint8_t **data, size_t *len) {
  if (i >= a.Length() || !a[i]->IsArrayBufferView()) {
    ThrowType(a.GetIsolate(), "copy: expected a typed array");
    return false;
  }
  Local<v8::ArrayBufferView> v = a[i].As<v8::ArrayBufferView>();
  *len = v->ByteLength();
  if (*len == 0) {
    *data = nullptr;
    return true;
  }
  void *base = v->Buffer()->Data();
  if (base == nullptr) {
    ThrowType(a.GetIsolate(), "copy: detached buffer");
    return false;
  }
  *data = static_cast<uint8_t *>(base) + v->ByteOffset();
  return true;
}

void JsCopy(const FunctionCallbackInfo<Value> &a) {
  uint8_t *dst, *src;
  size_t dlen, slen;
  int64_t doff, soff, n;
  if (!ViewBytes(a, 0, &dst, &dlen) || !ArgInt(a, 1, &doff, "copy: targetOffset must be an integer") ||
      !ViewBytes(a, 2, &src, &slen) || !ArgInt(a, 3, &soff, "copy: sourceOffset must be an integer") ||
      !ArgInt(a, 4, &n, "copy: length must be an integer"))
    return;
  if (n < 0 || doff < 0 || soff < 0 || (uint64_t)doff > dlen || (uint64_t)n > dlen - (uint64_t)doff ||
      (uint64_t)soff > slen || (uint64_t)n > slen - (uint64_t)soff) {
    ThrowRange(a.GetIsolate(), "copy: range out of bounds");
    return;
  }
  uint8_t *d = dst + doff;
  const uint8_t *s = src + soff;
  size_t len = (size_t)n;
  /*
   * A forward copy whose target lies just past its source modulo 4096 runs
   * 5 to 10x slower here (4K aliasing: each load seems to depend on the store
   * just made), and glibc copies forward unless the ranges overlap. Such
   * copies go backward in 64-byte blocks, where loads stay clear of the
   * stores before them.
   */
  size_t skew = ((uintptr_t)d - (uintptr_t)s) & 4095;
  if (len >= 4096 && skew != 0 && skew < 256 && (s + len <= d || d + len <= s)) {
    while (len >= 64) {
      len -= 64;
      memcpy(d + len, s + len, 64);
    }
    if (len > 0) memcpy(d, s, len);
  } else if (len > 0) {
    memmove(d, s, len);
  }
}

void JsAlive(const FunctionCallbackInfo<Value> &a) {
  int64_t id;
  if (!ArgInt(a, 0, &id, "id must be an integer")) return;
  if (id <= 0 || id > INT_MAX) return a.GetReturnValue().Set(false);
  if (kill((pid_t)id, 0) != 0 && errno == ESRCH) return a.GetReturnValue().Set(false);
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)id);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return a.GetReturnValue().Set(errno != ENOENT);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return a.GetReturnValue().Set(true);
  buf[n] = 0;
  char *rp = strrchr(buf, ')'); /* the command name may contain spaces and parentheses */
  if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X' || rp[2] == 'x')) return a.GetReturnValue().Set(false);
  a.GetReturnValue().Set(true);
}

/* shmOpen(name, create: 0|1|2 (no, yes, exclusive), mode) -> fd */
void JsShmOpen(const FunctionCallbackInfo<Value> &a) {
  std::string name;
  int64_t create, mode;
  if (!ArgString(a, 0, &name, "name must be a string") || !ArgInt(a, 1, &create, "create must be 0, 1 or 2") ||
      !ArgInt(a, 2, &mode, "mode must be an integer"))
    return;
  int flags = O_RDWR | O_CLOEXEC;
  if (create >= 1) flags |= O_CREAT;
  if (create >= 2) flags |= O_EXCL;
  int fd = shm_open(name.c_str(), flags, (mode_t)(mode & 07777));
  if (fd < 0) return ThrowErrno(a.GetIsolate(), errno, "shm_open " + name);
  a.GetReturnValue().Set(fd);
}

void JsShmUnlink(const FunctionCallbackInfo<Value> &a) {
  std::string name;
  if (!ArgString(a, 0, &name, "name must be a string")) return;
  if (shm_unlink(name.c_str()) != 0) return ThrowErrno(a.GetIsolate(), errno, "shm_unlink " + name);
}

void JsFtruncate(const FunctionCallbackInfo<Value> &a) {
  int64_t fd, size;
  if (!ArgInt(a, 0, &fd, "fd must be an integer") || !ArgInt(a, 1, &size, "size must be an integer")) return;
  if (size < 0) return ThrowRange(a.GetIsolate(), "size must be >= 0");
  if (ftruncate((int)fd, (off_t)size) != 0) return ThrowErrno(a.GetIsolate(), errno, "ftruncate");
}

/* Reserve the pages now, so a full /dev/shm fails here rather than with SIGBUS later. */
void JsFallocate(const FunctionCallbackInfo<Value> &a) {
  int64_t fd, size;
  if (!ArgInt(a, 0, &fd, "fd must be an integer") || !ArgInt(a, 1, &size, "size must be an integer")) return;
  if (size <= 0) return;
  int r = posix_fallocate((int)fd, 0, (off_t)size);
  if (r != 0 && r != EOPNOTSUPP && r != EINVAL) return ThrowErrno(a.GetIsolate(), r, "fallocate");
}

void JsFstat(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  int64_t fd;
  if (!ArgInt(a, 0, &fd, "fd must be an integer")) return;
  struct stat st;
  if (fstat((int)fd, &st) != 0) return ThrowErrno(iso, errno, "fstat");
  Local<Context> ctx = iso->GetCurrentContext();
  Local<Object> o = Object::New(iso);
  o->Set(ctx, String::NewFromUtf8Literal(iso, "size"), Number::New(iso, (double)st.st_size)).Check();
  o->Set(ctx, String::NewFromUtf8Literal(iso, "mode"), Integer::New(iso, (int32_t)st.st_mode)).Check();
  o->Set(ctx, String::NewFromUtf8Literal(iso, "uid"), Integer::New(iso, (int32_t)st.st_uid)).Check();
  a.GetReturnValue().Set(o);
}

void JsClose(const FunctionCallbackInfo<Value> &a) {
  int64_t fd;
  if (!ArgInt(a, 0, &fd, "fd must be an integer")) return;
  if (close((int)fd) != 0 && errno != EINTR) return ThrowErrno(a.GetIsolate(), errno, "close");
}

struct Mapping {
  void *base;
  size_t length;
};

void Unmap(void *data, size_t length, void *ctx) {
  (void)data;
  (void)length;
  Mapping *m = static_cast<Mapping *>(ctx);
  munmap(m->base, m->length);
  delete m;
}

/*
 * mmap(fd, length, windowOffset, windowLength) -> SharedArrayBuffer over
 * [windowOffset, windowOffset + windowLength) of a shared mapping of the
 * first `length` bytes of fd. The object must already be that long: mapping
 * past its end would turn later accesses into SIGBUS.
 */
void JsMmap(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  int64_t fd, length, woff, wlen;
  if (!ArgInt(a, 0, &fd, "fd must be an integer") || !ArgInt(a, 1, &length, "length must be an integer") ||
      !ArgInt(a, 2, &woff, "window offset must be an integer") ||
      !ArgInt(a, 3, &wlen, "window length must be an integer"))
    return;
  if (length <= 0) return ThrowRange(iso, "length must be > 0");
  if (woff < 0 || wlen < 0 || woff > length || wlen > length - woff) return ThrowRange(iso, "window outside the mapping");
  struct stat st;
  if (fstat((int)fd, &st) != 0) return ThrowErrno(iso, errno, "fstat");
  if (st.st_size < length) return ThrowErrno(iso, EOVERFLOW, "mmap: the object is shorter than the mapping");
  void *p = mmap(nullptr, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
  if (p == MAP_FAILED) return ThrowErrno(iso, errno, "mmap");
  Mapping *m = new Mapping{p, (size_t)length};
  std::unique_ptr<BackingStore> bs =
      SharedArrayBuffer::NewBackingStore(static_cast<char *>(p) + woff, (size_t)wlen, Unmap, m);
  Local<SharedArrayBuffer> sab = SharedArrayBuffer::New(iso, std::move(bs));
  a.GetReturnValue().Set(sab);
}

/* msync(sab, offset, length, sync) over the part of the mapping under a SharedArrayBuffer. */
void JsMsync(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  if (a.Length() < 1 || !a[0]->IsSharedArrayBuffer()) return ThrowType(iso, "expected a SharedArrayBuffer");
  int64_t off, len;
  if (!ArgInt(a, 1, &off, "offset must be an integer") || !ArgInt(a, 2, &len, "length must be an integer")) return;
  bool sync = a.Length() > 3 && a[3]->BooleanValue(iso);
  std::shared_ptr<BackingStore> bs = a[0].As<SharedArrayBuffer>()->GetBackingStore();
  if (off < 0 || len < 0 || (uint64_t)off > bs->ByteLength() || (uint64_t)len > bs->ByteLength() - (uint64_t)off)
    return ThrowRange(iso, "range outside the buffer");
  if (len == 0) return;
  uintptr_t start = reinterpret_cast<uintptr_t>(bs->Data()) + (uintptr_t)off;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t aligned = start & ~(page - 1);
  if (msync(reinterpret_cast<void *>(aligned), (size_t)(start + (uintptr_t)len - aligned), sync ? MS_SYNC : MS_ASYNC) != 0)
    return ThrowErrno(iso, errno, "msync");
}

/* futexWait(i32, index, expected, timeoutMs) -> 'ok' | 'not-equal' | 'timed-out' (blocks this thread) */
void JsFutexWait(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  int32_t *addr = ArgCell(a, 0, 1, nullptr);
  if (!addr) return;
  int64_t expected;
  double timeout;
  if (!ArgInt(a, 2, &expected, "expected must be an integer") || !ArgTimeout(a, 3, &timeout)) return;
  int r = FutexWaitLoop(addr, (int32_t)expected, timeout, nullptr, -1);
  a.GetReturnValue().Set(String::NewFromUtf8(iso, ResultName(r)).ToLocalChecked());
}

/* futexWake(i32, index, count) -> number of waiters woken (in every process) */
void JsFutexWake(const FunctionCallbackInfo<Value> &a) {
  int32_t *addr = ArgCell(a, 0, 1, nullptr);
  if (!addr) return;
  int64_t count;
  if (!ArgInt(a, 2, &count, "count must be an integer")) return;
  if (count < 0 || count > INT_MAX) count = INT_MAX;
  long r = Futex(addr, FUTEX_WAKE, (int32_t)count, nullptr);
  a.GetReturnValue().Set((int32_t)(r < 0 ? 0 : r));
}

/* futexWaitAsync(i32, index, expected, timeoutMs, ref, cb(result)) -> job id */
void JsFutexWaitAsync(const FunctionCallbackInfo<Value> &a) {
  auto job = std::make_shared<Job>();
  job->addr = ArgCell(a, 0, 1, &job->bs);
  if (!job->addr) return;
  int64_t expected;
  if (!ArgInt(a, 2, &expected, "expected must be an integer") || !ArgTimeout(a, 3, &job->timeoutMs)) return;
  job->expected = (int32_t)expected;
  StartJob(a, job, 4, 5);
}

/* cancelWait(id): the callback of that wait will not be called. */
void JsCancelWait(const FunctionCallbackInfo<Value> &a) {
  int64_t id;
  if (!ArgInt(a, 0, &id, "id must be an integer")) return;
  EnvData *env = GetEnv(a);
  auto it = env->pending.find((uint64_t)id);
  if (it == env->pending.end()) return a.GetReturnValue().Set(false);
  it->second.job->cancelled.store(true, std::memory_order_release);
  if (it->second.ref) env->refs--;
  env->pending.erase(it);
  env->UpdateRef();
  a.GetReturnValue().Set(true);
}

/* semOpen(name, create: 0|1|2, mode, value) -> handle */
void JsSemOpen(const FunctionCallbackInfo<Value> &a) {
  std::string name;
  int64_t create, mode, value;
  if (!ArgString(a, 0, &name, "name must be a string") || !ArgInt(a, 1, &create, "create must be 0, 1 or 2") ||
      !ArgInt(a, 2, &mode, "mode must be an integer") || !ArgInt(a, 3, &value, "value must be an integer"))
    return;
  if (value < 0 || value > SEM_VALUE_MAX) return ThrowRange(a.GetIsolate(), "initial value out of range");
  int flags = 0;
  if (create >= 1) flags |= O_CREAT;
  if (create >= 2) flags |= O_EXCL;
  sem_t *s = create >= 1 ? sem_open(name.c_str(), flags, (mode_t)(mode & 07777), (unsigned)value) : sem_open(name.c_str(), 0);
  if (s == SEM_FAILED) return ThrowErrno(a.GetIsolate(), errno, "sem_open " + name);
  std::lock_guard<std::mutex> g(g_sem_mu);
  int32_t id = g_sem_next++;
  g_sems.emplace(id, std::make_shared<Sem>(s));
  a.GetReturnValue().Set(id);
}

/* semClose(handle): the sem_t is closed once no async wait still uses it. */
void JsSemClose(const FunctionCallbackInfo<Value> &a) {
  int64_t id;
  if (!ArgInt(a, 0, &id, "semaphore handle must be an integer")) return;
  std::lock_guard<std::mutex> g(g_sem_mu);
  g_sems.erase((int32_t)id);
}

void JsSemUnlink(const FunctionCallbackInfo<Value> &a) {
  std::string name;
  if (!ArgString(a, 0, &name, "name must be a string")) return;
  if (sem_unlink(name.c_str()) != 0) return ThrowErrno(a.GetIsolate(), errno, "sem_unlink " + name);
}

void JsSemPost(const FunctionCallbackInfo<Value> &a) {
  std::shared_ptr<Sem> s = LookupSem(a, 0);
  if (!s) return;
  if (sem_post(s->s) != 0) return ThrowErrno(a.GetIsolate(), errno, "sem_post");
}

void JsSemTryWait(const FunctionCallbackInfo<Value> &a) {
  std::shared_ptr<Sem> s = LookupSem(a, 0);
  if (!s) return;
  for (;;) {
    if (sem_trywait(s->s) == 0) return a.GetReturnValue().Set(true);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return a.GetReturnValue().Set(false);
    return ThrowErrno(a.GetIsolate(), errno, "sem_trywait");
  }
}

void JsSemGetValue(const FunctionCallbackInfo<Value> &a) {
  std::shared_ptr<Sem> s = LookupSem(a, 0);
  if (!s) return;
  int v;
  if (sem_getvalue(s->s, &v) != 0) return ThrowErrno(a.GetIsolate(), errno, "sem_getvalue");
  a.GetReturnValue().Set(v);
}

/* semWait(handle, timeoutMs) -> 'ok' | 'timed-out' (blocks this thread) */
void JsSemWait(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  std::shared_ptr<Sem> s = LookupSem(a, 0);
  if (!s) return;
  double timeout;
  if (!ArgTimeout(a, 1, &timeout)) return;
  int r = SemWaitLoop(s->s, timeout, nullptr, -1);
  if (r < 0) return ThrowErrno(iso, -r, "sem_wait");
  a.GetReturnValue().Set(String::NewFromUtf8(iso, ResultName(r)).ToLocalChecked());
}

/* semWaitAsync(handle, timeoutMs, ref, cb(result)) -> job id */
void JsSemWaitAsync(const FunctionCallbackInfo<Value> &a) {
  auto job = std::make_shared<Job>();
  job->sem = LookupSem(a, 0);
  if (!job->sem) return;
  if (!ArgTimeout(a, 1, &job->timeoutMs)) return;
  StartJob(a, job, 2, 3);
}

/* ---------------------------------------------------- ring waits, in C
 *
 * A spinning ring end polls one word of shared memory. From JS each poll is
 * an Atomics.load builtin call (10-13 ns) in an interpreted-then-optimised
 * loop, and the message is then taken with a few more; here the poll is a
 * plain load and a pause, and ringRead() also takes the message (checks,
 * copy, head publish, wake) in the same call. The spin policy (whether to
 * spin, for how long, scoring) stays in src/shm/spin-policy.ts: these
 * functions only carry out one spin with the parameters it chose.
 */

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

inline uint64_t NowNs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/*
 * Polls between yields (and clock reads). A poll here is a load and a pause
 * (about 25 ns on the EPYC VMs we run on), twice a JS Atomics.load: 64 of
 * them take the time of spin-policy.ts's 128 JS polls.
 */
constexpr int kPollsPerRound = 64;

enum SpinOutcome { SPIN_HIT = 1, SPIN_LATE = 2, SPIN_MISS = 3 };

/*
 * Poll *p while it equals `old`; *seen gets the last value read.
 * budgetNs > 0 (adaptive): `first` polls, then rounds of sched_yield and
 * kPollsPerRound polls until budgetNs have passed: HIT when the change came
 * within the budget, LATE after it (the CPU was lost to someone else), MISS
 * when it did not come. budgetNs <= 0 (forced spin): `rounds` rounds of
 * kPollsPerRound polls with a yield after each, no clock: HIT or MISS.
 */
int SpinWhile(const uint32_t *p, uint32_t old, int64_t budgetNs, int first, int rounds, uint32_t *seen) {
  uint32_t v;
  if (budgetNs <= 0) {
    for (int r = rounds; r > 0; r--) {
      for (int i = kPollsPerRound; i > 0; i--) {
        if ((v = sb_load(p)) != old) return *seen = v, SPIN_HIT;
        CpuRelax();
      }
      sched_yield();
    }
    *seen = old;
    return SPIN_MISS;
  }
  for (int i = first; i > 0; i--) {
    if ((v = sb_load(p)) != old) return *seen = v, SPIN_HIT;
    CpuRelax();
  }
  uint64_t end = NowNs() + (uint64_t)budgetNs;
  for (;;) {
    sched_yield();
    for (int i = kPollsPerRound; i > 0; i--) {
      if ((v = sb_load(p)) != old) {
        *seen = v;
        return NowNs() <= end ? SPIN_HIT : SPIN_LATE;
      }
      CpuRelax();
    }
    if (NowNs() >= end) {
      *seen = old;
      return SPIN_MISS;
    }
  }
}

bool ArgSpin(const FunctionCallbackInfo<Value> &a, int i, int64_t *budgetNs, int64_t *first, int64_t *rounds) {
  if (!ArgInt(a, i, budgetNs, "spin budget must be an integer (ns)") || !ArgInt(a, i + 1, first, "polls must be an integer") ||
      !ArgInt(a, i + 2, rounds, "rounds must be an integer"))
    return false;
  if (*first < 0 || *first > (1 << 24) || *rounds < 0 || *rounds > (1 << 20) || *budgetNs > (int64_t)60e9) {
    ThrowRange(a.GetIsolate(), "spin parameters out of range");
    return false;
  }
  return true;
}

/* spinWhile(i32, index, value, budgetNs, polls, rounds) -> 1 hit | 2 late hit | 3 miss (see SpinWhile) */
void JsSpinWhile(const FunctionCallbackInfo<Value> &a) {
  int32_t *addr = ArgCell(a, 0, 1, nullptr);
  if (!addr) return;
  int64_t value, budget, first, rounds;
  if (!ArgInt(a, 2, &value, "value must be an integer") || !ArgSpin(a, 3, &budget, &first, &rounds)) return;
  uint32_t seen;
  a.GetReturnValue().Set(SpinWhile(reinterpret_cast<const uint32_t *>(addr), (uint32_t)value, budget, (int)first, (int)rounds, &seen));
}

/*
 * The ring at an Int32Array over its 256-byte header, with the capacity the
 * JS end validated when it attached (never the one in shared memory, which
 * anyone can overwrite): both pointers checked against the buffer.
 */
struct RingView {
  sb_ring_header *hdr;
  uint8_t *data;
  uint32_t cap;
};

bool ArgRing(const FunctionCallbackInfo<Value> &a, int hi, int64_t cap, RingView *r) {
  Isolate *iso = a.GetIsolate();
  if (hi >= a.Length() || !a[hi]->IsInt32Array()) {
    ThrowType(iso, "ring: expected the Int32Array over the ring header");
    return false;
  }
  if (cap < SB_RING_MIN_CAPACITY || cap > SB_RING_MAX_CAPACITY || (cap & (cap - 1)) != 0) {
    ThrowRange(iso, "ring: impossible capacity");
    return false;
  }
  Local<Int32Array> arr = a[hi].As<Int32Array>();
  Local<ArrayBuffer> buf = arr->Buffer();
  if (!Local<Value>(buf)->IsSharedArrayBuffer()) {
    ThrowType(iso, "ring: the header must view a SharedArrayBuffer");
    return false;
  }
  size_t off = arr->ByteOffset();
  uint8_t *base = static_cast<uint8_t *>(buf->Data());
  if (base == nullptr || arr->Length() * 4 < SB_RING_HEADER_SIZE || off % 8 != 0 ||
      off + SB_RING_HEADER_SIZE + (uint64_t)cap > buf->ByteLength()) {
    ThrowRange(iso, "ring: the ring does not fit in its buffer");
    return false;
  }
  r->hdr = reinterpret_cast<sb_ring_header *>(base + off);
  r->data = base + off + SB_RING_HEADER_SIZE;
  r->cap = (uint32_t)cap;
  return true;
}

/* An Int32Array of at least n elements (ordinary or shared memory). */
int32_t *ArgWords(const FunctionCallbackInfo<Value> &a, int i, size_t n) {
  if (i >= a.Length() || !a[i]->IsInt32Array()) {
    ThrowType(a.GetIsolate(), "expected an Int32Array");
    return nullptr;
  }
  Local<Int32Array> arr = a[i].As<Int32Array>();
  void *base = arr->Buffer()->Data();
  if (base == nullptr || arr->Length() < n) {
    ThrowRange(a.GetIsolate(), "Int32Array too short");
    return nullptr;
  }
  return reinterpret_cast<int32_t *>(static_cast<uint8_t *>(base) + arr->ByteOffset());
}

/*
 * Publish `value` at `index` (a ring's tail or head) for a peer that polls
 * it (sb_ring_publish in include/switchboard-ring.h), and FUTEX_WAKE the
 * index when the peer sleeps on it. Returns 1 when it woke the peer.
 * (Always inlined: as a call, it made a 64-byte spin round trip between two
 * Node processes 6-7% slower.)
 */
inline __attribute__((always_inline)) int32_t PublishIndex(uint32_t *index, uint32_t value, const int32_t *peerMaySleep, int32_t *peerSleeping) {
  if (sb_ring_publish(index, value, peerMaySleep, peerSleeping) == 0) return 0;
  Futex(reinterpret_cast<int32_t *>(index), FUTEX_WAKE, 1, nullptr);
  return 1;
}

/*
 * memmove, with messages of 16 to 64 bytes moved inline: every load before
 * any store (so overlapping ranges are safe), no call into libc. The round
 * trip's path between seeing a message and publishing the answer is short
 * enough that each instruction on it shows (measured with C at both ends:
 * 50 more instructions between take and put, +2-4%).
 */
inline __attribute__((always_inline)) void MoveBytes(uint8_t *dst, const uint8_t *src, size_t len) {
  if (len >= 16 && len <= 64) {
    uint8_t a[16], b[16], c[16], d[16];
    if (len > 32) {
      memcpy(a, src, 16);
      memcpy(b, src + 16, 16);
      memcpy(c, src + len - 32, 16);
      memcpy(d, src + len - 16, 16);
      memcpy(dst, a, 16);
      memcpy(dst + 16, b, 16);
      memcpy(dst + len - 32, c, 16);
      memcpy(dst + len - 16, d, 16);
    } else {
      memcpy(a, src, 16);
      memcpy(d, src + len - 16, 16);
      memcpy(dst, a, 16);
      memcpy(dst + len - 16, d, 16);
    }
  } else if (len > 0) {
    memmove(dst, src, len);
  }
}

/* ringRead results (besides a length >= 0), and the words of its `io` array (ring.ts has the same list). */
enum RingReadResult { RR_EMPTY = -1, RR_SLOW = -2, RR_BAD_INDICES = -3, RR_BAD_RECORD = -4, RR_BAD_ARGS = -5, RR_BAD_SLOT = -6 };
enum RingIo {
  IO_HEAD = 0,      /* in/out: the consumer's head */
  IO_TAIL = 1,      /* in/out: the tail it saw last */
  IO_MAX_WHOLE = 2, /* in: largest message for this path */
  IO_WOKE = 3,      /* out: 1 = woke the producer */
  IO_SPIN = 4,      /* out: spin outcome, 0 = no spin */
  IO_DETAIL = 5,    /* out: the bad value behind BAD_INDICES / BAD_RECORD */
  IO_CAP = 6,       /* in: capacity, as validated by the JS end at attach */
  IO_BUDGET = 7,    /* in: spin budget in ns (see SpinWhile) */
  IO_POLLS = 8,     /* in: polls before the first yield */
  IO_ROUNDS = 9,    /* in: rounds of a forced spin */
  IO_SLEEP = 10,    /* in: then sleep on the tail's futex for up to this many ms (0: do not sleep) */
  IO_SLEPT = 11,    /* out: 1 = went to sleep (a wait the spin policy counts) */
  IO_WORDS = 12
};

/*
 * ringRead(h, target, io) -> length | result
 *
 * Every number travels in the Int32Array `io` (ordinary memory of the
 * calling thread), not as arguments: V8 takes about 9 ns to hand a C
 * function each number, more than the rest of a call that finds a message.
 *
 * The consumer's fast path (RingConsumer #peek/#take) in one call: if the
 * ring holds nothing past io[HEAD] (io[TAIL] is the tail seen last), spin
 * on the tail as SpinWhile does with io[BUDGET], io[POLLS] and io[ROUNDS]
 * (budget and rounds both 0: do not spin); if still nothing and io[SLEEP] >
 * 0, sleep on the tail's futex for up to io[SLEEP] ms as the JS consumer
 * does (consumer_sleeping set, the tail looked at again, then FUTEX_WAIT;
 * never when every producer has gone: the JS side reports the end), and
 * look once more; then if the
 * record at the head is a whole message of at most io[MAX_WHOLE] bytes that
 * fits in `target`, copy it there, store the new head (waking a sleeping
 * producer) and return its length. io[HEAD] and io[TAIL] are updated,
 * io[WOKE] = 1 when the producer was woken, io[SPIN] = the spin outcome
 * (0 = no spin).
 *
 * Every index read from shared memory is checked as ring.ts checks it before
 * anything is read through it: tail - head beyond the capacity or not a
 * multiple of 8 is BAD_INDICES (io[DETAIL] = tail - head); a record running
 * past the published bytes or the data area is BAD_RECORD (io[DETAIL] = its
 * size). Anything else off the fast path (padding, fragments, aborts, a
 * message too big for `target` or for io[MAX_WHOLE]) is SLOW: the JS
 * consumer's general path takes it from the same head.
 */
/* Spin parameters outside these ranges: RR_BAD_ARGS. */
int32_t RingReadCore(const RingView &r, int32_t *io, uint8_t *dst, size_t dlen) {
  const int64_t budget = io[IO_BUDGET], first = io[IO_POLLS], rounds = io[IO_ROUNDS];
  if (budget < 0 || first < 0 || first > (1 << 24) || rounds < 0 || rounds > (1 << 20)) return RR_BAD_ARGS;
  const uint32_t head = (uint32_t)io[IO_HEAD];
  uint32_t tail = (uint32_t)io[IO_TAIL];
  io[IO_WOKE] = 0;
  io[IO_SPIN] = 0;
  io[IO_SLEPT] = 0;
  if (tail == head) {
    tail = sb_load(&r.hdr->tail);
    if (tail == head) {
      const int32_t sleepMs = io[IO_SLEEP];
      if (budget == 0 && rounds == 0 && sleepMs <= 0) return RR_EMPTY;
      if (budget != 0 || rounds != 0) io[IO_SPIN] = SpinWhile(&r.hdr->tail, head, budget, (int)first, (int)rounds, &tail);
      /* (only an end that announced it may sleep sleeps: see SB_RING_ARM_US; the JS end arms first) */
      if (tail == head && sleepMs > 0 && sb_load(&r.hdr->consumer_may_sleep) != 0) {
        /*
         * Woken here, the thread copies the message and returns once, instead of returning from
         * a futex call to JS and calling again to read (measured: 90-96 us per blocking 64-byte
         * round trip between two Node processes against 108-114 us).
         */
        sb_store(&r.hdr->consumer_sleeping, 1);
        tail = sb_load(&r.hdr->tail);
        /* (the end is for the JS side to report: every producer gone, do not sleep through it) */
        if (tail == head && !(sb_load(&r.hdr->ever_attached) != 0 && sb_load(&r.hdr->attached) == 0)) {
          io[IO_SLEPT] = 1;
          struct timespec ts = MsToTs((double)sleepMs);
          Futex(reinterpret_cast<int32_t *>(&r.hdr->tail), FUTEX_WAIT, (int32_t)head, &ts);
          tail = sb_load(&r.hdr->tail);
        }
        sb_store(&r.hdr->consumer_sleeping, 0);
      }
      if (tail == head) return RR_EMPTY;
    }
    io[IO_TAIL] = (int32_t)tail;
  }
  const uint32_t used = tail - head;
  /* head must be 8-aligned too: a record header at cap - 4 would be read past the data. */
  if (used > r.cap || ((used | head) & 7u) != 0) {
    io[IO_DETAIL] = (int32_t)used;
    return RR_BAD_INDICES;
  }
  const uint32_t pos = head & (r.cap - 1);
  /*
   * When published bytes run on into the next cache line (a 64-byte message with its 8-byte
   * header always does), ask for that line now: its miss then overlaps the header's instead of
   * following it (measured in C with this protocol: 0.24 -> 0.21 us per 64-byte round trip).
   * Only published bytes, and only inside the data area: never a line the producer still writes.
   */
  const uint32_t nextLine = (pos | 63u) + 1u;
  if (used > nextLine - pos && nextLine < r.cap) __builtin_prefetch(r.data + nextLine);
  /* pos is 8-aligned (checked above) and below cap, cap >= 256: the 8-byte record header is inside the data. */
  const sb_ring_record *rec = reinterpret_cast<const sb_ring_record *>(r.data + pos);
  const uint32_t len = __atomic_load_n(&rec->length, __ATOMIC_RELAXED);
  const uint32_t type = __atomic_load_n(&rec->type, __ATOMIC_RELAXED);
  if (type != SB_REC_WHOLE || len > (uint32_t)io[IO_MAX_WHOLE] || len > r.cap || len > dlen) return RR_SLOW;
  const uint32_t size = sb_ring_record_size(len);
  if (size > used || pos + size > r.cap) {
    io[IO_DETAIL] = (int32_t)size;
    return RR_BAD_RECORD;
  }
  /* (as memmove: nothing stops a caller from passing a view of the ring itself) */
  MoveBytes(dst, r.data + pos + sizeof(sb_ring_record), len);
  const uint32_t next = head + size;
  io[IO_HEAD] = (int32_t)next;
  io[IO_WOKE] = PublishIndex(&r.hdr->head, next, &r.hdr->producer_may_sleep, &r.hdr->producer_sleeping);
  return (int32_t)len;
}

void JsRingRead(const FunctionCallbackInfo<Value> &a) {
  int32_t *io = ArgWords(a, 2, IO_WORDS);
  if (!io) return;
  RingView r;
  if (!ArgRing(a, 0, io[IO_CAP], &r)) return;
  uint8_t *dst;
  size_t dlen;
  if (!ViewBytes(a, 1, &dst, &dlen)) return;
  const int32_t n = RingReadCore(r, io, dst, dlen);
  if (n == RR_BAD_ARGS) return ThrowRange(a.GetIsolate(), "ringRead: spin parameters out of range");
  a.GetReturnValue().Set(n);
}

/*
 * Bound calls: ringRead (and the producer's write) with their arrays checked
 * once, not on every call. ringBind(h, io) checks the ring header and the io
 * words as ringRead does and returns a slot; ringBindBuffer(slot, bytes)
 * names the buffer messages are copied into (a consumer) or from (a
 * producer); ringReadBound(slot, length) is then ringRead into the first
 * `length` bytes of that buffer, and ringWriteBound(slot, length) writes its
 * first `length` bytes as one message. The caller passes the buffer's current
 * length, so a buffer that shrank or was detached since is never read or
 * written past its end. Both take two small integers, which lets V8 call them
 * as fast API calls (fast-call.h). The slot keeps the three buffers' memory
 * alive until ringUnbind(slot), or until the environment that bound it ends.
 *
 * A slot belongs to one ring end in one thread (its environment, checked):
 * the table is only locked to hand slots out and take them back.
 */
struct BoundRing {
  /* The environment (main thread or worker) that bound it: only it may use or free the slot. */
  const EnvData *owner = nullptr;
  RingView r;
  int32_t *io;
  /* The bound buffer: a consumer's target, or a producer's source. */
  uint8_t *buf = nullptr;
  size_t len = 0;
  std::shared_ptr<BackingStore> keepRing, keepIo, keepBuf;
};
constexpr int32_t kBoundSlots = 1 << 12;
std::atomic<BoundRing *> g_bound[kBoundSlots];
std::mutex g_bound_mu;

BoundRing *ArgBound(const FunctionCallbackInfo<Value> &a, int i) {
  int64_t slot;
  if (!ArgInt(a, i, &slot, "slot must be an integer")) return nullptr;
  BoundRing *b = slot >= 0 && slot < kBoundSlots ? g_bound[slot].load(std::memory_order_relaxed) : nullptr;
  if (!b) ThrowRange(a.GetIsolate(), "ring slot not bound");
  else if (b->owner != GetEnv(a)) {
    ThrowRange(a.GetIsolate(), "ring slot bound by another thread");
    return nullptr;
  }
  return b;
}

void ReleaseBoundOf(const EnvData *env) {
  std::lock_guard<std::mutex> lock(g_bound_mu);
  for (int32_t s = 0; s < kBoundSlots; s++) {
    BoundRing *b = g_bound[s].load(std::memory_order_relaxed);
    if (b != nullptr && b->owner == env) {
      g_bound[s].store(nullptr, std::memory_order_relaxed);
      delete b;
    }
  }
}

/* ringBind(h, io) -> slot */
void JsRingBind(const FunctionCallbackInfo<Value> &a) {
  int32_t *io = ArgWords(a, 1, IO_WORDS);
  if (!io) return;
  RingView r;
  if (!ArgRing(a, 0, io[IO_CAP], &r)) return;
  auto *b = new BoundRing();
  b->owner = GetEnv(a);
  b->r = r;
  b->io = io;
  b->keepRing = a[0].As<Int32Array>()->Buffer()->GetBackingStore();
  b->keepIo = a[1].As<Int32Array>()->Buffer()->GetBackingStore();
  std::lock_guard<std::mutex> lock(g_bound_mu);
  for (int32_t s = 0; s < kBoundSlots; s++) {
    if (g_bound[s].load(std::memory_order_relaxed) == nullptr) {
      g_bound[s].store(b, std::memory_order_release);
      return a.GetReturnValue().Set(s);
    }
  }
  delete b;
  a.GetReturnValue().Set(-1);
}

/* ringBindBuffer(slot, bytes): a consumer's target, or a producer's source */
void JsRingBindBuffer(const FunctionCallbackInfo<Value> &a) {
  BoundRing *b = ArgBound(a, 0);
  if (!b) return;
  uint8_t *p;
  size_t n;
  if (!ViewBytes(a, 1, &p, &n)) return;
  b->keepBuf = n == 0 ? nullptr : a[1].As<v8::ArrayBufferView>()->Buffer()->GetBackingStore();
  b->buf = p;
  b->len = n;
}

/* ringUnbind(slot) */
void JsRingUnbind(const FunctionCallbackInfo<Value> &a) {
  BoundRing *b = ArgBound(a, 0);
  if (!b) return;
  std::lock_guard<std::mutex> lock(g_bound_mu);
  for (int32_t s = 0; s < kBoundSlots; s++) {
    if (g_bound[s].load(std::memory_order_relaxed) == b) g_bound[s].store(nullptr, std::memory_order_relaxed);
  }
  delete b;
}

/* ringBoundCount() -> slots in use (for tests: close() gives them back) */
void JsRingBoundCount(const FunctionCallbackInfo<Value> &a) {
  std::lock_guard<std::mutex> lock(g_bound_mu);
  int32_t n = 0;
  for (int32_t s = 0; s < kBoundSlots; s++) n += g_bound[s].load(std::memory_order_relaxed) != nullptr;
  a.GetReturnValue().Set(n);
}

/* The work of ringReadBound: RR_BAD_SLOT for a slot that is not bound. */
int32_t RingReadBound(int32_t slot, int32_t length) {
  BoundRing *b = slot >= 0 && slot < kBoundSlots ? g_bound[slot].load(std::memory_order_acquire) : nullptr;
  if (!b) return RR_BAD_SLOT;
  const size_t n = length <= 0 ? 0 : (size_t)length < b->len ? (size_t)length : b->len;
  return RingReadCore(b->r, b->io, b->buf, n);
}

/* ringReadBound(slot, length) -> length | result (RR_BAD_ARGS and RR_BAD_SLOT included: it never throws) */
void JsRingReadBound(const FunctionCallbackInfo<Value> &a) {
  const Local<Context> ctx = a.GetIsolate()->GetCurrentContext();
  const int32_t slot = a.Length() > 0 ? a[0]->Int32Value(ctx).FromMaybe(-1) : -1;
  const int32_t length = a.Length() > 1 ? a[1]->Int32Value(ctx).FromMaybe(0) : 0;
  a.GetReturnValue().Set(RingReadBound(slot, length));
}

/* Calls that came in through the fast path (test/shm/ring-bound.test.ts looks). */
/* (not a thread_local: in a shared library that costs a __tls_get_addr call; a lost count between threads is harmless) */
uint32_t g_fast_calls = 0;

#if SB_FAST_CALLS
int32_t FastRingReadBound(Local<Object>, int32_t slot, int32_t length) {
  __atomic_store_n(&g_fast_calls, __atomic_load_n(&g_fast_calls, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
  return RingReadBound(slot, length);
}
#endif

void JsFastCallsTaken(const FunctionCallbackInfo<Value> &a) { a.GetReturnValue().Set(__atomic_load_n(&g_fast_calls, __ATOMIC_RELAXED)); }

/*
 * The producer's fast path (RingProducer #fastWrite) in C: one whole-message
 * record of the first `length` bytes of the slot's source at the tail, then
 * the tail published and a sleeping consumer woken. The producer's words in
 * `io`: [0] its tail (in/out), [1] the head it saw last (in/out), [2] the
 * largest payload of one record, [3] out: 1 = woke the consumer, [6] the
 * capacity. Returns 1 when written, RW_SLOW when the JS general path must
 * decide (no room even after re-reading the head, padding needed at the end
 * of the data area, a message over the limit, the consumer closed, or a head
 * that makes no sense, which the JS path reports as corruption).
 */
enum { RW_SLOW = -2 };
int32_t RingWriteCore(const RingView &r, int32_t *io, const uint8_t *src, size_t len) {
  if (len > (uint32_t)io[IO_MAX_WHOLE] || len > r.cap) return RW_SLOW;
  const uint32_t size = sb_ring_record_size((uint32_t)len);
  const uint32_t tail = (uint32_t)io[0];
  const uint32_t pos = tail & (r.cap - 1);
  if ((tail & 7u) != 0 || pos + size > r.cap) return RW_SLOW;
  /* (io[1] is the JS end's own cache of the head; a value that makes no sense is re-read, never trusted) */
  if (tail - (uint32_t)io[1] > r.cap || r.cap - (tail - (uint32_t)io[1]) < size) {
    const uint32_t head = sb_load(&r.hdr->head);
    const uint32_t used = tail - head;
    if (used > r.cap || (used & 7u) != 0) return RW_SLOW;
    io[1] = (int32_t)head;
    if (r.cap - used < size) return RW_SLOW;
  }
  if ((sb_load(&r.hdr->closed) & SB_RING_CLOSED_BY_CONSUMER) != 0) return RW_SLOW;
  sb_ring_record *rec = reinterpret_cast<sb_ring_record *>(r.data + pos);
  __atomic_store_n(&rec->length, (uint32_t)len, __ATOMIC_RELAXED);
  __atomic_store_n(&rec->type, (uint32_t)SB_REC_WHOLE, __ATOMIC_RELAXED);
  /* (as memmove: nothing stops a caller from binding a view of the ring itself) */
  MoveBytes(r.data + pos + sizeof(sb_ring_record), src, len);
  const uint32_t next = tail + size;
  io[0] = (int32_t)next;
  io[IO_WOKE] = PublishIndex(&r.hdr->tail, next, &r.hdr->consumer_may_sleep, &r.hdr->consumer_sleeping);
  /* (the next line, asked for writing while the consumer is busy: see include/switchboard-ring.h) */
  sb_ring_prefetch_next(r.data, r.cap, next, (uint32_t)io[1]);
  return 1;
}

int32_t RingWriteBound(int32_t slot, int32_t length) {
  BoundRing *b = slot >= 0 && slot < kBoundSlots ? g_bound[slot].load(std::memory_order_acquire) : nullptr;
  if (!b) return RR_BAD_SLOT;
  if (length < 0 || (size_t)length > b->len) return RW_SLOW;
  return RingWriteCore(b->r, b->io, b->buf, (size_t)length);
}

/* ringWriteBound(slot, length) -> 1 | RW_SLOW | RR_BAD_SLOT (never throws) */
void JsRingWriteBound(const FunctionCallbackInfo<Value> &a) {
  const Local<Context> ctx = a.GetIsolate()->GetCurrentContext();
  const int32_t slot = a.Length() > 0 ? a[0]->Int32Value(ctx).FromMaybe(-1) : -1;
  const int32_t length = a.Length() > 1 ? a[1]->Int32Value(ctx).FromMaybe(-1) : -1;
  a.GetReturnValue().Set(RingWriteBound(slot, length));
}

#if SB_FAST_CALLS
int32_t FastRingWriteBound(Local<Object>, int32_t slot, int32_t length) {
  __atomic_store_n(&g_fast_calls, __atomic_load_n(&g_fast_calls, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
  return RingWriteBound(slot, length);
}
#endif

void Set(Isolate *iso, Local<Context> ctx, Local<Object> exports, Local<External> data, const char *name,
         v8::FunctionCallback fn, const v8::CFunction *fast = nullptr, int length = 0) {
  Local<FunctionTemplate> t = FunctionTemplate::New(iso, fn, data, Local<v8::Signature>(), length, v8::ConstructorBehavior::kThrow,
                                                    v8::SideEffectType::kHasSideEffect, fast);
  exports->Set(ctx, String::NewFromUtf8(iso, name).ToLocalChecked(), t->GetFunction(ctx).ToLocalChecked()).Check();
}

#if SB_FAST_CALLS
/* Built once per process (the library is never unloaded: -z nodelete). */
const v8::CFunction *FastRingReadBoundFn() {
  static sb_fast::Int32Signature<2> sig;
  static const v8::CFunction *fn = sig.Make(reinterpret_cast<const void *>(&FastRingReadBound));
  return fn;
}
const v8::CFunction *FastRingWriteBoundFn() {
  static sb_fast::Int32Signature<2> sig;
  static const v8::CFunction *fn = sig.Make(reinterpret_cast<const void *>(&FastRingWriteBound));
  return fn;
}
#endif

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  /* (not context->GetIsolate(): V8 14, in Node 26, no longer has it) */
  Isolate *iso = Isolate::GetCurrent();
  EnvHolder *holder = new EnvHolder{std::make_shared<EnvData>()};
  holder->env->iso = iso;
  uv_async_t *async = new uv_async_t;
  uv_async_init(node::GetCurrentEventLoop(iso), async, OnAsync);
  async->data = holder;
  holder->env->async = async;
  holder->env->UpdateRef();
  node::AddEnvironmentCleanupHook(iso, CleanupEnv, holder);
  Local<External> data = External::New(iso, holder);

  Set(iso, context, exports, data, "gettid", JsGettid);
  Set(iso, context, exports, data, "alive", JsAlive);
  Set(iso, context, exports, data, "yield", JsYield);
  Set(iso, context, exports, data, "copy", JsCopy);
  Set(iso, context, exports, data, "spinWhile", JsSpinWhile);
  Set(iso, context, exports, data, "ringRead", JsRingRead);
  Set(iso, context, exports, data, "ringBind", JsRingBind);
  Set(iso, context, exports, data, "ringBindBuffer", JsRingBindBuffer);
  Set(iso, context, exports, data, "ringUnbind", JsRingUnbind);
  Set(iso, context, exports, data, "ringBoundCount", JsRingBoundCount);
#if SB_FAST_CALLS
  Set(iso, context, exports, data, "ringReadBound", JsRingReadBound, FastRingReadBoundFn(), 2);
  Set(iso, context, exports, data, "ringWriteBound", JsRingWriteBound, FastRingWriteBoundFn(), 2);
#else
  Set(iso, context, exports, data, "ringReadBound", JsRingReadBound, nullptr, 2);
  Set(iso, context, exports, data, "ringWriteBound", JsRingWriteBound, nullptr, 2);
#endif
  Set(iso, context, exports, data, "fastCallsTaken", JsFastCallsTaken);
  exports->Set(context, String::NewFromUtf8Literal(iso, "fastCalls"), v8::Boolean::New(iso, SB_FAST_CALLS != 0)).Check();
  Set(iso, context, exports, data, "shmOpen", JsShmOpen);
  Set(iso, context, exports, data, "shmUnlink", JsShmUnlink);
  Set(iso, context, exports, data, "ftruncate", JsFtruncate);
  Set(iso, context, exports, data, "fallocate", JsFallocate);
  Set(iso, context, exports, data, "fstat", JsFstat);
  Set(iso, context, exports, data, "close", JsClose);
  Set(iso, context, exports, data, "mmap", JsMmap);
  Set(iso, context, exports, data, "msync", JsMsync);
  Set(iso, context, exports, data, "futexWait", JsFutexWait);
  Set(iso, context, exports, data, "futexWake", JsFutexWake);
  Set(iso, context, exports, data, "futexWaitAsync", JsFutexWaitAsync);
  Set(iso, context, exports, data, "cancelWait", JsCancelWait);
  Set(iso, context, exports, data, "semOpen", JsSemOpen);
  Set(iso, context, exports, data, "semClose", JsSemClose);
  Set(iso, context, exports, data, "semUnlink", JsSemUnlink);
  Set(iso, context, exports, data, "semPost", JsSemPost);
  Set(iso, context, exports, data, "semTryWait", JsSemTryWait);
  Set(iso, context, exports, data, "semGetValue", JsSemGetValue);
  Set(iso, context, exports, data, "semWait", JsSemWait);
  Set(iso, context, exports, data, "semWaitAsync", JsSemWaitAsync);
}
