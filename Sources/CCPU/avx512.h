// Marker header of CCPU.AVX512 (see module.modulemap): present only in builds whose code may use AVX-512F.
#include <immintrin.h>
