// What the CPU's vector unit offers (cpuid, xgetbv); header-only, compiled into the Swift code that calls it.
// What the build itself was compiled for is told by the submodules CCPU.AVX2 / CCPU.AVX512 (module.modulemap).
#include <stdint.h>
#include "bf16.h"

// Asks for the cache line holding `address` ahead of a write to it (a hint: no fault, no effect on the values).
static inline void plexus_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }

#if defined(__x86_64__) || defined(__i386__)
// registers[0..3] = eax, ebx, ecx, edx of cpuid(leaf, subleaf).
static inline void plexus_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t registers[4]) {
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(subleaf));
    registers[0] = a; registers[1] = b; registers[2] = c; registers[3] = d;
}

// Extended control register `index` (XCR0: which register state the OS saves); only valid when cpuid says OSXSAVE.
static inline uint64_t plexus_xgetbv(uint32_t index) {
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(index));
    return ((uint64_t)high << 32) | low;
}
#else
static inline void plexus_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t registers[4]) {
    (void)leaf; (void)subleaf;
    registers[0] = registers[1] = registers[2] = registers[3] = 0;
}
static inline uint64_t plexus_xgetbv(uint32_t index) { (void)index; return 0; }
#endif
