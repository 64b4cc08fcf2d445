/*
 * V8 fast API calls for the addon's hottest functions, where the build's V8
 * allows them.
 *
 * A function template can carry a "fast" C function that optimized JS code
 * calls directly (about 5 ns) instead of going through the generic callback
 * machinery (20-60 ns with argument checks). V8 describes the C signature
 * with three small structs declared in v8-fast-api-calls.h, a header that
 * neither the Debian Node headers nor Node's own release headers ship. The
 * structs are plain data, and V8 builds the one with a constructor itself
 * (v8::CFunctionInfo's constructor is exported from the node binary), so we
 * declare the layout here for exactly the V8s we checked it against, on
 * x86-64:
 *
 *   V8 11.3 (Node 20)
 *     CTypeInfo     = { uint8 type; uint8 sequence_type; uint8 flags }       3 bytes
 *     CFunctionInfo = { CTypeInfo return; uint32 arg_count @4; CTypeInfo *args @8 }
 *   V8 13.6 (Node 24)
 *     CTypeInfo     = as in 11.3                                              3 bytes
 *     CFunctionInfo = { CTypeInfo return; uint8 int64_repr @3; uint32 arg_count @4; args @8 }
 *   V8 14.6 (Node 26)
 *     CTypeInfo     = { uint8 type; uint8 flags }                             2 bytes
 *     CFunctionInfo = { CTypeInfo return; uint8 int64_repr @2; uint32 arg_count @4; args @8 }
 *   all three: CFunction = { const void *address; const CFunctionInfo *info }
 *
 * (Read off each binary: the exported constructor's stores give the
 * CFunctionInfo offsets and ArgumentInfo's index scaling gives CTypeInfo's
 * size; a signature V8 itself registers, read from a running node with gdb,
 * gives the type numbering, unchanged across the three: kInt32 = 3, kV8Value
 * = 10 (the receiver). From 13.6 on the constructor takes the 64-bit integer
 * representation as a fourth argument; ours take no 64-bit integers, so it
 * is kNumber = 0.)
 *
 * Any other V8 (or architecture) gets SB_FAST_CALLS 0 and ordinary callbacks
 * only: the fast functions are an optimisation, never a requirement, and
 * every one of them has an ordinary callback with the same behaviour.
 * test/shm/ring-bound.test.ts checks that optimized code really takes the
 * fast path on these builds. Never include v8-fast-api-calls.h beside this.
 */
#ifndef SB_FAST_CALL_H
#define SB_FAST_CALL_H

#include <v8-version.h>
#include <v8.h>

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && V8_MAJOR_VERSION == 11 && V8_MINOR_VERSION == 3
#define SB_FAST_CALLS 1
#define SB_FAST_CTYPE_BYTES 3
#define SB_FAST_INT64_REPR 0
#elif defined(__x86_64__) && V8_MAJOR_VERSION == 13 && V8_MINOR_VERSION == 6
#define SB_FAST_CALLS 1
#define SB_FAST_CTYPE_BYTES 3
#define SB_FAST_INT64_REPR 1
#elif defined(__x86_64__) && V8_MAJOR_VERSION == 14 && V8_MINOR_VERSION == 6
#define SB_FAST_CALLS 1
#define SB_FAST_CTYPE_BYTES 2
#define SB_FAST_INT64_REPR 1
#endif

#if SB_FAST_CALLS
namespace v8 {
class CTypeInfo {
 public:
  uint8_t type;
#if SB_FAST_CTYPE_BYTES == 3
  uint8_t sequence_type;
#endif
  uint8_t flags;
};
static_assert(sizeof(CTypeInfo) == SB_FAST_CTYPE_BYTES, "CTypeInfo's size in this V8");

class CFunctionInfo {
 public:
#if SB_FAST_INT64_REPR
  enum class Int64Representation : uint8_t { kNumber = 0, kBigInt = 1 };
  /* Defined in V8 (exported): stores the fields below. */
  CFunctionInfo(const CTypeInfo &return_info, unsigned int arg_count, const CTypeInfo *arg_info, Int64Representation repr);
  CTypeInfo return_info;
  Int64Representation repr;
#else
  /* Defined in V8 (exported): stores the three fields below. */
  CFunctionInfo(const CTypeInfo &return_info, unsigned int arg_count, const CTypeInfo *arg_info);
  CTypeInfo return_info;
#endif
  unsigned int arg_count;
  const CTypeInfo *arg_info;
};
static_assert(sizeof(CFunctionInfo) == 16, "CFunctionInfo is 16 bytes in these V8s");
static_assert(offsetof(CFunctionInfo, arg_count) == 4 && offsetof(CFunctionInfo, arg_info) == 8, "CFunctionInfo's offsets");

class CFunction {
 public:
  const void *address;
  const CFunctionInfo *type_info;
};
}  // namespace v8

namespace sb_fast {
constexpr uint8_t kInt32 = 3;
constexpr uint8_t kV8Value = 10;

constexpr v8::CTypeInfo Type(uint8_t t) {
#if SB_FAST_CTYPE_BYTES == 3
  return {t, 0, 0};
#else
  return {t, 0};
#endif
}

/* The signature int32_t f(Local<Object> receiver, int32_t, ... (n int32 arguments)). */
template <unsigned N>
struct Int32Signature {
  v8::CTypeInfo args[N + 1];
  alignas(8) unsigned char info[sizeof(v8::CFunctionInfo)];
  v8::CFunction fn;

  const v8::CFunction *Make(const void *address) {
    static const v8::CTypeInfo ret = Type(kInt32);
    args[0] = Type(kV8Value);
    for (unsigned i = 1; i <= N; i++) args[i] = Type(kInt32);
    fn.address = address;
#if SB_FAST_INT64_REPR
    fn.type_info = new (info) v8::CFunctionInfo(ret, N + 1, args, v8::CFunctionInfo::Int64Representation::kNumber);
#else
    fn.type_info = new (info) v8::CFunctionInfo(ret, N + 1, args);
#endif
    return &fn;
  }
};
}  // namespace sb_fast

#else
#define SB_FAST_CALLS 0
#endif

#endif
