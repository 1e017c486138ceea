/* A 16 x 16 float transpose in AVX-512 registers, shared by the GEMM epilogues (sgemm.c,
 * spgemm.c) and the convolution output writer (conv.c). x86 only; callers include it inside
 * their x86 sections. */
#ifndef IFD_KERNELS_TRANSPOSE16_H
#define IFD_KERNELS_TRANSPOSE16_H

#include <immintrin.h>

/* r[i] holds row i; afterwards r[c] holds column c. */
static inline __attribute__((always_inline, target("avx512f"))) void
ifd_avx512_transpose16(__m512 r[16]) {
    __m512 a[16], b[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        b[4 * g + 0] = _mm512_shuffle_ps(a[4 * g], a[4 * g + 2], 0x44);
        b[4 * g + 1] = _mm512_shuffle_ps(a[4 * g], a[4 * g + 2], 0xEE);
        b[4 * g + 2] = _mm512_shuffle_ps(a[4 * g + 1], a[4 * g + 3], 0x44);
        b[4 * g + 3] = _mm512_shuffle_ps(a[4 * g + 1], a[4 * g + 3], 0xEE);
    }
    /* b[4g + e], 128-bit lane L: rows 4g..4g+3 at column 4L + e */
#pragma GCC unroll 4
    for (int e = 0; e < 4; e++) {
        __m512 c1 = _mm512_shuffle_f32x4(b[e], b[4 + e], 0x88);
        __m512 c2 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0x88);
        __m512 d1 = _mm512_shuffle_f32x4(b[e], b[4 + e], 0xDD);
        __m512 d2 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0xDD);
        r[e] = _mm512_shuffle_f32x4(c1, c2, 0x88);
        r[8 + e] = _mm512_shuffle_f32x4(c1, c2, 0xDD);
        r[4 + e] = _mm512_shuffle_f32x4(d1, d2, 0x88);
        r[12 + e] = _mm512_shuffle_f32x4(d1, d2, 0xDD);
    }
}

#endif
