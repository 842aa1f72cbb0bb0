// Marker header of CCPU.AVX2 (see module.modulemap): present only in builds whose code may use AVX2 and FMA.
#include <immintrin.h>
