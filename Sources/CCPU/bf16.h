// AVX512_BF16 intrinsics as functions Swift can call (Swift cannot name the instructions). Each carries the target
// attribute, so it compiles in any x86-64 build; it inlines into Swift code compiled for a CPU with AVX512_BF16 (a
// native build on such a CPU), elsewhere it stays a call. Call them only where cpuid reports AVX512_BF16.
#if defined(__x86_64__)
#include <immintrin.h>

typedef float plexus_float16 __attribute__((ext_vector_type(16)));
typedef uint32_t plexus_uint16 __attribute__((ext_vector_type(16)));

#define PLEXUS_BF16 __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl"), always_inline))

// acc[i] += a.bf16[2i]·b.bf16[2i] + a.bf16[2i+1]·b.bf16[2i+1] for 16 fp32 lanes (vdpbf16ps)
static inline PLEXUS_BF16 plexus_float16 plexus_dpbf16(plexus_float16 acc, plexus_uint16 a, plexus_uint16 b) {
    return (plexus_float16)_mm512_dpbf16_ps((__m512)acc, (__m512bh)a, (__m512bh)b);
}

// bf16 words 0..15 = low rounded, 16..31 = high rounded (round to nearest even; vcvtne2ps2bf16)
static inline PLEXUS_BF16 plexus_uint16 plexus_cvtne2ps_pbh(plexus_float16 high, plexus_float16 low) {
    return (plexus_uint16)_mm512_cvtne2ps_pbh((__m512)high, (__m512)low);
}

// 16-bit word i of the result = word index[i] of v (vpermw)
static inline PLEXUS_BF16 plexus_uint16 plexus_permutexvar_epi16(plexus_uint16 index, plexus_uint16 v) {
    return (plexus_uint16)_mm512_permutexvar_epi16((__m512i)index, (__m512i)v);
}
#endif
