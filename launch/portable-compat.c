// Linked into the portable package's binary only (launch/package) so that it needs glibc 2.34,
// not the 2.36 of the build machine. The link wraps (ld --wrap) the three symbols whose only
// versions in a Debian 12 build are newer than 2.34:
//   hypot, hypotf  GLIBC_2.35 (new default versions; Foundation references them): call the
//                  GLIBC_2.2.5 versions, which every glibc has, found at run time by dlvsym because
//                  a link-time reference to "hypot@GLIBC_2.2.5" would itself be wrapped;
//   arc4random     GLIBC_2.36 (libstdc++.a's std::random_device): the same 32 random bits from
//                  getrandom (GLIBC_2.25).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <sys/random.h>

// __wrap_NAME(x, y) calls NAME@GLIBC_2.2.5 (TYPE NAME(TYPE, TYPE)), looked up once.
#define WRAP_GLIBC_2_2_5(TYPE, NAME)                                                     \
    static TYPE (*NAME##_2_2_5)(TYPE, TYPE);                                             \
    TYPE __wrap_##NAME(TYPE x, TYPE y) {                                                 \
        TYPE (*f)(TYPE, TYPE) = __atomic_load_n(&NAME##_2_2_5, __ATOMIC_ACQUIRE);        \
        if (!f) {                                                                        \
            f = (TYPE (*)(TYPE, TYPE))dlvsym(RTLD_DEFAULT, #NAME, "GLIBC_2.2.5");         \
            if (!f) f = (TYPE (*)(TYPE, TYPE))dlsym(RTLD_DEFAULT, #NAME);                 \
            __atomic_store_n(&NAME##_2_2_5, f, __ATOMIC_RELEASE);                        \
        }                                                                                \
        return f(x, y);                                                                  \
    }

WRAP_GLIBC_2_2_5(double, hypot)
WRAP_GLIBC_2_2_5(float, hypotf)

uint32_t __wrap_arc4random(void) {
    uint32_t value;
    unsigned char *bytes = (unsigned char *)&value;
    size_t filled = 0;
    while (filled < sizeof value) {  // getrandom may return fewer bytes, or -1 with EINTR
        ssize_t n = getrandom(bytes + filled, sizeof value - filled, 0);
        if (n > 0) filled += (size_t)n;
    }
    return value;
}
