/*
 * V8 fast API calls for the addon's hottest functions, where the build's V8
 * allows them.
 *
 * A function template can carry a "fast" C function that optimized JS code
 * calls directly (about 5 ns) instead of going through the generic callback
 * machinery (20-60 ns with argument checks). V8 describes the C signature
 * with three small structs declared in v8-fast-api-calls.h, a header the
 * Debian Node headers do not ship. The structs are plain data, and V8 builds
 * the one with a constructor itself (v8::CFunctionInfo's constructor is
 * exported from the node binary), so we declare the layout here for exactly
 * the V8 we checked it against: V8 11.3 (Node 20) on x86-64, where
 *
 *   CTypeInfo     = { uint8 type; uint8 sequence_type; uint8 flags }   3 bytes
 *   CFunctionInfo = { CTypeInfo return; uint32 arg_count; CTypeInfo *args }
 *   CFunction     = { const void *address; const CFunctionInfo *info }
 *
 * (CFunctionInfo's layout read off the exported constructor: return info at
 * 0, count at 4, argument array at 8; CTypeInfo's type numbering is V8's
 * public enum, of which we use kInt32 = 3 and kV8Value = 10, the receiver.)
 *
 * Any other V8 (or architecture) gets SB_FAST_CALLS 0 and ordinary callbacks
 * only: the fast functions are an optimisation, never a requirement, and
 * every one of them has an ordinary callback with the same behaviour.
 * test/shm/ring-bound.test.ts checks that optimized code really takes the
 * fast path on this build. Never include v8-fast-api-calls.h beside this.
 */
#ifndef SB_FAST_CALL_H
#define SB_FAST_CALL_H

#include <v8-version.h>
#include <v8.h>

#include <stdint.h>

#if V8_MAJOR_VERSION == 11 && V8_MINOR_VERSION == 3 && defined(__x86_64__)
#define SB_FAST_CALLS 1

namespace v8 {
class CTypeInfo {
 public:
  uint8_t type;
  uint8_t sequence_type;
  uint8_t flags;
};
static_assert(sizeof(CTypeInfo) == 3, "CTypeInfo is 3 bytes in V8 11.3");

class CFunctionInfo {
 public:
  /* Defined in V8 (exported): stores the three fields below. */
  CFunctionInfo(const CTypeInfo &return_info, unsigned int arg_count, const CTypeInfo *arg_info);
  CTypeInfo return_info;
  unsigned int arg_count;
  const CTypeInfo *arg_info;
};
static_assert(sizeof(CFunctionInfo) == 16, "CFunctionInfo is 16 bytes in V8 11.3");

class CFunction {
 public:
  const void *address;
  const CFunctionInfo *type_info;
};
}  // namespace v8

namespace sb_fast {
constexpr uint8_t kInt32 = 3;
constexpr uint8_t kV8Value = 10;

/* The signature int32_t f(Local<Object> receiver, int32_t, ... (n int32 arguments)). */
template <unsigned N>
struct Int32Signature {
  v8::CTypeInfo args[N + 1];
  alignas(8) unsigned char info[sizeof(v8::CFunctionInfo)];
  v8::CFunction fn;

  const v8::CFunction *Make(const void *address) {
    static const v8::CTypeInfo ret = {kInt32, 0, 0};
    args[0] = {kV8Value, 0, 0};
    for (unsigned i = 1; i <= N; i++) args[i] = {kInt32, 0, 0};
    fn.address = address;
    fn.type_info = new (info) v8::CFunctionInfo(ret, N + 1, args);
    return &fn;
  }
};
}  // namespace sb_fast

#else
#define SB_FAST_CALLS 0
#endif

#endif
