/* Element type conversions (see dtype_convert.h for the semantics). */
#include "base/dtype_convert.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IFD_X86 1
#endif

/* gcc -O2 only vectorizes loops whose trip count is a multiple of the vector width; these
 * conversion loops are the hot path of Cast, so let the cost model decide. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

/* ---- scalar helpers -------------------------------------------------------------------- */

static inline float bits_to_f32(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}
static inline uint32_t f32_to_bits(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static float half_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float */
        float v = (float)mant * 5.9604644775390625e-8f;
        return bits_to_f32(f32_to_bits(v) | sign);
    }
    if (exp == 31) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static uint16_t f32_to_half(float f) {
    uint32_t x = f32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf stays inf, NaN stays a quiet NaN */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds past 65504 */
    if (ax < 0x38800000u) { /* half subnormal: the ulp is 2^-24; rint rounds to even */
        float scaled = bits_to_f32(ax) * 16777216.0f;
        return (uint16_t)(sign | (uint32_t)rintf(scaled));
    }
    uint32_t h = ((ax >> 23) - 112) << 10 | ((ax & 0x7fffff) >> 13);
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline float bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

static inline uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* float -> int as NumPy does on x86: cvtt* to 32 or 64 bits, "integer indefinite" (the most
 * negative value) when out of range or NaN, then the low bits. */
static inline int32_t f2i32(double x) {
    return (x > -2147483649.0 && x < 2147483648.0) ? (int32_t)x : INT32_MIN;
}
static inline int32_t f2i32f(float x) {
    return (x >= -2147483648.0f && x < 2147483648.0f) ? (int32_t)x : INT32_MIN;
}
static inline int64_t f2i64(double x) {
    return (x >= -9223372036854775808.0 && x < 9223372036854775808.0) ? (int64_t)x : INT64_MIN;
}
static inline int64_t f2i64f(float x) {
    return (x >= -9223372036854775808.0f && x < 9223372036854775808.0f) ? (int64_t)x : INT64_MIN;
}
static inline uint64_t f2u64(double x) {
    return (x >= 0.0 && x < 18446744073709551616.0) ? (uint64_t)x : (uint64_t)f2i64(x);
}
static inline uint64_t f2u64f(float x) {
    return (x >= 0.0f && x < 18446744073709551616.0f) ? (uint64_t)x : (uint64_t)f2i64f(x);
}

/* ---- 8-bit and 4-bit float formats ------------------------------------------------------- */

typedef enum { MF_IEEE, MF_FN, MF_FNUZ, MF_FP4 } mf_kind;

typedef struct {
    int mbits, bias;
    double maxval;
    mf_kind kind;
} mf_format;

static const mf_format *mf_get(ifd_dtype t) {
    static const mf_format e4m3fn = {3, 7, 448.0, MF_FN};
    static const mf_format e4m3fnuz = {3, 8, 240.0, MF_FNUZ};
    static const mf_format e5m2 = {2, 15, 57344.0, MF_IEEE};
    static const mf_format e5m2fnuz = {2, 16, 57344.0, MF_FNUZ};
    static const mf_format e2m1 = {1, 1, 6.0, MF_FP4};
    switch (t) {
    case IFD_DTYPE_FLOAT8E4M3FN: return &e4m3fn;
    case IFD_DTYPE_FLOAT8E4M3FNUZ: return &e4m3fnuz;
    case IFD_DTYPE_FLOAT8E5M2: return &e5m2;
    case IFD_DTYPE_FLOAT8E5M2FNUZ: return &e5m2fnuz;
    case IFD_DTYPE_FLOAT4E2M1: return &e2m1;
    default: return NULL;
    }
}

bool ifd_dtype_is_minifloat(ifd_dtype t) { return mf_get(t) || t == IFD_DTYPE_FLOAT8E8M0; }

float ifd_minifloat_to_f32(ifd_dtype t, uint8_t c) {
    if (t == IFD_DTYPE_FLOAT8E8M0) return c == 0xff ? NAN : ldexpf(1.0f, (int)c - 127);
    const mf_format *f = mf_get(t);
    if (!f) return NAN;
    int total = f->kind == MF_FP4 ? 4 : 8;
    unsigned signbit = 1u << (total - 1);
    c &= (uint8_t)((1u << total) - 1);
    unsigned mag = c & (signbit - 1);
    int ebits = total - 1 - f->mbits;
    unsigned e = mag >> f->mbits, m = mag & ((1u << f->mbits) - 1);
    switch (f->kind) {
    case MF_FN:
        if (mag == 0x7f) return NAN;
        break;
    case MF_FNUZ:
        if (c == 0x80) return NAN;
        break;
    case MF_IEEE:
        if (e == (1u << ebits) - 1) return m ? NAN : ((c & signbit) ? -INFINITY : INFINITY);
        break;
    case MF_FP4: break;
    }
    float v = e == 0 ? ldexpf((float)m, 1 - f->bias - f->mbits)
                     : ldexpf((float)(m | (1u << f->mbits)), (int)e - f->bias - f->mbits);
    return (c & signbit) ? -v : v;
}

uint8_t ifd_f32_to_minifloat(ifd_dtype t, float x, bool saturate) {
    if (t == IFD_DTYPE_FLOAT8E8M0) return ifd_f32_to_e8m0(x, saturate, IFD_E8M0_ROUND_UP);
    const mf_format *f = mf_get(t);
    if (!f) return 0;
    bool fp4 = f->kind == MF_FP4, neg = signbit(x) != 0;
    uint8_t sign = neg ? (fp4 ? 0x8 : 0x80) : 0;
    uint8_t maxcode = fp4 ? 0x7 : f->kind == MF_FN ? 0x7e : f->kind == MF_FNUZ ? 0x7f : 0x7b;
    uint8_t overflow; /* what a value past max becomes without saturation */
    switch (f->kind) {
    case MF_FN: overflow = 0x7f | sign; break;
    case MF_FNUZ: overflow = 0x80; break;
    case MF_IEEE: overflow = 0x7c | sign; break;
    default: overflow = maxcode | sign; break;
    }
    if (isnan(x)) {
        switch (f->kind) {
        case MF_FN: return 0x7f | sign;
        case MF_FNUZ: return 0x80;
        case MF_IEEE: return 0x7e | sign;
        default: return 0x8; /* what ml_dtypes produces; float4 has no NaN */
        }
    }
    if (saturate || fp4) overflow = maxcode | sign;
    double a = fabs((double)x);
    if (isinf(a)) return overflow;
    if (a == 0.0) return f->kind == MF_FNUZ ? 0 : sign;
    int e, emin = 1 - f->bias;
    frexp(a, &e);
    int ex = e - 1 < emin ? emin : e - 1;
    double q = ldexp(1.0, ex - f->mbits);
    double v = nearbyint(a / q) * q; /* round to nearest even at this exponent's spacing */
    if (v > f->maxval) return overflow;
    if (v == 0.0) return f->kind == MF_FNUZ ? 0 : sign;
    frexp(v, &e);
    ex = e - 1;
    unsigned code;
    if (ex < emin)
        code = (unsigned)(v / ldexp(1.0, emin - f->mbits));
    else
        code = (unsigned)(ex + f->bias) << f->mbits |
               ((unsigned)(v / ldexp(1.0, ex - f->mbits)) - (1u << f->mbits));
    return (uint8_t)(code | sign);
}

uint8_t ifd_f32_to_e8m0(float x, bool saturate, ifd_e8m0_round mode) {
    uint32_t b = f32_to_bits(x);
    unsigned e = (b >> 23) & 0xff;
    if (e == 0xff) return 0xff;
    bool up = false;
    switch (mode) {
    case IFD_E8M0_ROUND_UP: up = (b & 0x7fffff) != 0; break;
    case IFD_E8M0_ROUND_DOWN: break;
    case IFD_E8M0_ROUND_NEAREST: {
        /* guard bit set and (round, sticky or "lsb") set, as the ONNX reference does */
        bool g = b & 0x400000, r = b & 0x200000, s = b & 0x1fffff;
        up = g && (r || s || e > 0);
        break;
    }
    }
    if (up && saturate && e == 0xfe) up = false;
    return (uint8_t)(e + up);
}

/* ---- native C type loops --------------------------------------------------------------- */

#define CV_FLOAT(x) ((float)(x))
#define CV_DOUBLE(x) ((double)(x))
#define CV_NARROW_(T, x) \
    _Generic((x), float: (T)(uint32_t)f2i32f((float)(x)), double: (T)(uint32_t)f2i32((double)(x)), \
             default: (T)(x))
#define CV_INT8(x) CV_NARROW_(int8_t, x)
#define CV_UINT8(x) CV_NARROW_(uint8_t, x)
#define CV_INT16(x) CV_NARROW_(int16_t, x)
#define CV_UINT16(x) CV_NARROW_(uint16_t, x)
#define CV_INT32(x) CV_NARROW_(int32_t, x)
#define CV_UINT32(x) \
    _Generic((x), float: (uint32_t)f2i64f((float)(x)), double: (uint32_t)f2i64((double)(x)), \
             default: (uint32_t)(x))
#define CV_INT64(x) \
    _Generic((x), float: f2i64f((float)(x)), double: f2i64((double)(x)), default: (int64_t)(x))
#define CV_UINT64(x) \
    _Generic((x), float: f2u64f((float)(x)), double: f2u64((double)(x)), default: (uint64_t)(x))
#define CV_BOOL(x) ((uint8_t)((x) != 0))

#define NATIVE_TYPES(X)                                                                      \
    X(FLOAT, float) X(DOUBLE, double) X(INT8, int8_t) X(UINT8, uint8_t) X(INT16, int16_t)   \
    X(UINT16, uint16_t) X(INT32, int32_t) X(UINT32, uint32_t) X(INT64, int64_t)            \
    X(UINT64, uint64_t) X(BOOL, uint8_t)

#define NATIVE_DST(X, SN, ST)                                                                \
    X(SN, ST, FLOAT, float) X(SN, ST, DOUBLE, double) X(SN, ST, INT8, int8_t)               \
    X(SN, ST, UINT8, uint8_t) X(SN, ST, INT16, int16_t) X(SN, ST, UINT16, uint16_t)         \
    X(SN, ST, INT32, int32_t) X(SN, ST, UINT32, uint32_t) X(SN, ST, INT64, int64_t)         \
    X(SN, ST, UINT64, uint64_t) X(SN, ST, BOOL, uint8_t)

typedef void (*cvt_fn)(const void *src, void *dst, int64_t n);

#define DEF_LOOP(SN, ST, DN, DT)                                                  \
    static void cvt_##SN##_##DN(const void *s, void *d, int64_t n) {              \
        const ST *restrict a = (const ST *)s;                                     \
        DT *restrict b = (DT *)d;                                                 \
        for (int64_t i = 0; i < n; i++) b[i] = CV_##DN(a[i]);                     \
    }
#define DEF_ROW(SN, ST) NATIVE_DST(DEF_LOOP, SN, ST)
NATIVE_TYPES(DEF_ROW)

#define REF_LOOP(SN, ST, DN, DT) [IFD_DTYPE_##SN][IFD_DTYPE_##DN] = cvt_##SN##_##DN,
#define REF_ROW(SN, ST) NATIVE_DST(REF_LOOP, SN, ST)
static const cvt_fn g_native[IFD_DTYPE_COUNT][IFD_DTYPE_COUNT] = {NATIVE_TYPES(REF_ROW)};

/* ---- float16 / bfloat16 fast paths ----------------------------------------------------- */

static void f32_to_f16_scalar(const float *restrict s, uint16_t *restrict d, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = f32_to_half(s[i]);
}
static void f16_to_f32_scalar(const uint16_t *restrict s, float *restrict d, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = half_to_f32(s[i]);
}

#ifdef IFD_X86
__attribute__((target("avx2,f16c"))) static void f32_to_f16_f16c(const float *s, uint16_t *d,
                                                                  int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    f32_to_f16_scalar(s + i, d + i, n - i);
}
__attribute__((target("avx2,f16c"))) static void f16_to_f32_f16c(const uint16_t *s, float *d,
                                                                  int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    f16_to_f32_scalar(s + i, d + i, n - i);
}
static bool have_f16c(void) {
    static int cached = -1; /* benign race: every thread computes the same value */
    if (cached < 0) {
        __builtin_cpu_init();
        /* every AVX2 CPU has F16C; clang cannot query "f16c" by name */
        cached = __builtin_cpu_supports("avx2");
    }
    return cached;
}
#endif

static void f32_to_f16(const float *s, uint16_t *d, int64_t n) {
#ifdef IFD_X86
    if (have_f16c()) {
        f32_to_f16_f16c(s, d, n);
        return;
    }
#endif
    f32_to_f16_scalar(s, d, n);
}
static void f16_to_f32(const uint16_t *s, float *d, int64_t n) {
#ifdef IFD_X86
    if (have_f16c()) {
        f16_to_f32_f16c(s, d, n);
        return;
    }
#endif
    f16_to_f32_scalar(s, d, n);
}
static void f32_to_bf16_loop(const float *restrict s, uint16_t *restrict d, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = f32_to_bf16(s[i]);
}
static void bf16_to_f32_loop(const uint16_t *restrict s, float *restrict d, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = bf16_to_f32(s[i]);
}

/* ---- generic path: through double (float sources) or int64 (integer sources) ---------- */

static bool is_numeric(ifd_dtype t) {
    switch (t) {
    case IFD_DTYPE_STRING: case IFD_DTYPE_COMPLEX64: case IFD_DTYPE_COMPLEX128:
    case IFD_DTYPE_UNDEFINED:
        return false;
    default:
        return (unsigned)t < IFD_DTYPE_COUNT;
    }
}

bool ifd_convert_supported(ifd_dtype s, ifd_dtype d) { return is_numeric(s) && is_numeric(d); }

enum { BLOCK = 256 };

static void load_f64(ifd_dtype t, const void *p, int64_t n, double *out) {
    switch (t) {
    case IFD_DTYPE_FLOAT16:
        for (int64_t i = 0; i < n; i++) out[i] = half_to_f32(((const uint16_t *)p)[i]);
        return;
    case IFD_DTYPE_BFLOAT16:
        for (int64_t i = 0; i < n; i++) out[i] = bf16_to_f32(((const uint16_t *)p)[i]);
        return;
    case IFD_DTYPE_FLOAT8E4M3FN: case IFD_DTYPE_FLOAT8E4M3FNUZ: case IFD_DTYPE_FLOAT8E5M2:
    case IFD_DTYPE_FLOAT8E5M2FNUZ: case IFD_DTYPE_FLOAT4E2M1: case IFD_DTYPE_FLOAT8E8M0:
        for (int64_t i = 0; i < n; i++) out[i] = ifd_minifloat_to_f32(t, ((const uint8_t *)p)[i]);
        return;
    case IFD_DTYPE_INT4:
        for (int64_t i = 0; i < n; i++)
            out[i] = (double)(int8_t)((((const uint8_t *)p)[i] & 0xf) ^ 8) - 8;
        return;
    case IFD_DTYPE_INT2:
        for (int64_t i = 0; i < n; i++)
            out[i] = (double)(int8_t)((((const uint8_t *)p)[i] & 0x3) ^ 2) - 2;
        return;
    case IFD_DTYPE_UINT4:
        for (int64_t i = 0; i < n; i++) out[i] = ((const uint8_t *)p)[i] & 0xf;
        return;
    case IFD_DTYPE_UINT2:
        for (int64_t i = 0; i < n; i++) out[i] = ((const uint8_t *)p)[i] & 0x3;
        return;
    default:
        g_native[t][IFD_DTYPE_DOUBLE](p, out, n);
        return;
    }
}

static void load_i64(ifd_dtype t, const void *p, int64_t n, int64_t *out) {
    switch (t) {
    case IFD_DTYPE_INT4: case IFD_DTYPE_INT2: case IFD_DTYPE_UINT4: case IFD_DTYPE_UINT2: {
        double tmp[BLOCK];
        load_f64(t, p, n, tmp);
        for (int64_t i = 0; i < n; i++) out[i] = (int64_t)tmp[i];
        return;
    }
    default:
        g_native[t][IFD_DTYPE_INT64](p, out, n);
        return;
    }
}

static inline int8_t wrap_signed(int64_t v, int bits) {
    int64_t m = ((int64_t)1 << bits) - 1, h = (int64_t)1 << (bits - 1);
    return (int8_t)(((v & m) ^ h) - h);
}

static void store_i64(ifd_dtype t, void *p, int64_t n, const int64_t *in) {
    uint8_t *b = p;
    switch (t) {
    case IFD_DTYPE_INT4: for (int64_t i = 0; i < n; i++) b[i] = (uint8_t)wrap_signed(in[i], 4); return;
    case IFD_DTYPE_INT2: for (int64_t i = 0; i < n; i++) b[i] = (uint8_t)wrap_signed(in[i], 2); return;
    case IFD_DTYPE_UINT4: for (int64_t i = 0; i < n; i++) b[i] = (uint8_t)(in[i] & 0xf); return;
    case IFD_DTYPE_UINT2: for (int64_t i = 0; i < n; i++) b[i] = (uint8_t)(in[i] & 0x3); return;
    default: g_native[IFD_DTYPE_INT64][t](in, p, n); return;
    }
}

static void store_f64(ifd_dtype t, void *p, int64_t n, const double *in, bool sat,
                      ifd_e8m0_round rm) {
    switch (t) {
    case IFD_DTYPE_FLOAT16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)p)[i] = f32_to_half((float)in[i]);
        return;
    case IFD_DTYPE_BFLOAT16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)p)[i] = f32_to_bf16((float)in[i]);
        return;
    case IFD_DTYPE_FLOAT8E8M0:
        for (int64_t i = 0; i < n; i++) ((uint8_t *)p)[i] = ifd_f32_to_e8m0((float)in[i], sat, rm);
        return;
    case IFD_DTYPE_FLOAT8E4M3FN: case IFD_DTYPE_FLOAT8E4M3FNUZ: case IFD_DTYPE_FLOAT8E5M2:
    case IFD_DTYPE_FLOAT8E5M2FNUZ: case IFD_DTYPE_FLOAT4E2M1:
        for (int64_t i = 0; i < n; i++)
            ((uint8_t *)p)[i] = ifd_f32_to_minifloat(t, (float)in[i], sat);
        return;
    case IFD_DTYPE_INT4: case IFD_DTYPE_INT2: case IFD_DTYPE_UINT4: case IFD_DTYPE_UINT2: {
        int64_t tmp[BLOCK];
        for (int64_t i = 0; i < n; i++) tmp[i] = f2i64(in[i]);
        store_i64(t, p, n, tmp);
        return;
    }
    default:
        g_native[IFD_DTYPE_DOUBLE][t](in, p, n);
        return;
    }
}

ifd_status ifd_convert_ex(ifd_dtype st, const void *src, ifd_dtype dt, void *dst, int64_t n,
                          bool saturate, ifd_e8m0_round rm) {
    if (!ifd_convert_supported(st, dt))
        return ifd_error(IFD_ERR_UNSUPPORTED, "conversion from %s to %s is not supported",
                         ifd_dtype_name(st), ifd_dtype_name(dt));
    if (n <= 0) return IFD_OK;
    if (st == dt) {
        memcpy(dst, src, (size_t)n * ifd_dtype_size(st));
        return IFD_OK;
    }
    cvt_fn fn = g_native[st][dt];
    if (fn) {
        fn(src, dst, n);
        return IFD_OK;
    }
    if (st == IFD_DTYPE_FLOAT && dt == IFD_DTYPE_FLOAT16) {
        f32_to_f16(src, dst, n);
        return IFD_OK;
    }
    if (st == IFD_DTYPE_FLOAT16 && dt == IFD_DTYPE_FLOAT) {
        f16_to_f32(src, dst, n);
        return IFD_OK;
    }
    if (st == IFD_DTYPE_FLOAT && dt == IFD_DTYPE_BFLOAT16) {
        f32_to_bf16_loop(src, dst, n);
        return IFD_OK;
    }
    if (st == IFD_DTYPE_BFLOAT16 && dt == IFD_DTYPE_FLOAT) {
        bf16_to_f32_loop(src, dst, n);
        return IFD_OK;
    }
    size_t ss = ifd_dtype_size(st), ds = ifd_dtype_size(dt);
    bool src_float = ifd_dtype_is_float(st), dst_float = ifd_dtype_is_float(dt);
    const uint8_t *s = src;
    uint8_t *d = dst;
    for (int64_t off = 0; off < n; off += BLOCK) {
        int64_t m = n - off < BLOCK ? n - off : BLOCK;
        if (src_float || dst_float) {
            double buf[BLOCK];
            load_f64(st, s + (size_t)off * ss, m, buf);
            store_f64(dt, d + (size_t)off * ds, m, buf, saturate, rm);
        } else {
            int64_t buf[BLOCK];
            load_i64(st, s + (size_t)off * ss, m, buf);
            store_i64(dt, d + (size_t)off * ds, m, buf);
        }
    }
    return IFD_OK;
}

ifd_status ifd_convert(ifd_dtype st, const void *src, ifd_dtype dt, void *dst, int64_t n,
                       bool saturate) {
    return ifd_convert_ex(st, src, dt, dst, n, saturate, IFD_E8M0_ROUND_UP);
}
