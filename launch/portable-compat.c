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

static double (*hypot_2_2_5)(double, double);
static float (*hypotf_2_2_5)(float, float);

double __wrap_hypot(double x, double y) {
    double (*f)(double, double) = __atomic_load_n(&hypot_2_2_5, __ATOMIC_ACQUIRE);
    if (!f) {
        f = (double (*)(double, double))dlvsym(RTLD_DEFAULT, "hypot", "GLIBC_2.2.5");
        if (!f) f = (double (*)(double, double))dlsym(RTLD_DEFAULT, "hypot");
        __atomic_store_n(&hypot_2_2_5, f, __ATOMIC_RELEASE);
    }
    return f(x, y);
}

float __wrap_hypotf(float x, float y) {
    float (*f)(float, float) = __atomic_load_n(&hypotf_2_2_5, __ATOMIC_ACQUIRE);
    if (!f) {
        f = (float (*)(float, float))dlvsym(RTLD_DEFAULT, "hypotf", "GLIBC_2.2.5");
        if (!f) f = (float (*)(float, float))dlsym(RTLD_DEFAULT, "hypotf");
        __atomic_store_n(&hypotf_2_2_5, f, __ATOMIC_RELEASE);
    }
    return f(x, y);
}

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
