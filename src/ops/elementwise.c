/* Operator family: elementwise.
 *
 * Binary/ternary/variadic operators share one broadcast engine: the output shape is
 * collapsed into runs of axes along which every input is either contiguous or broadcast the
 * same way, so [N,C,H,W] + [C,1,1] becomes [N, C, H*W] with the inner run contiguous in A and
 * constant in B. Each inner run goes to a per-type loop written for the four stride patterns
 * (vector/vector, scalar/vector, vector/scalar, scalar/scalar) that the compiler vectorizes;
 * rows (or blocks of long rows) are split over the thread pool. float16/bfloat16 go through
 * the float loops in small converted blocks. */
#include "ops/op.h"

#include "kernels/vecmath.h"

#include <math.h>
#include <string.h>

/* Plain loops the compiler vectorizes; -O2 alone would not (gcc's cheap cost model), and the
 * build has no -march, so an AVX2 clone is chosen at load time where the CPU has it. */
#if defined(__x86_64__) || defined(__i386__)
#define EW_VEC_CLONES target_clones("avx2", "default"),
#else
#define EW_VEC_CLONES
#endif
#if defined(__GNUC__) && !defined(__clang__)
#define EW_VEC __attribute__((EW_VEC_CLONES optimize("tree-vectorize", "vect-cost-model=dynamic")))
#elif defined(__x86_64__) || defined(__i386__)
#define EW_VEC __attribute__((target_clones("avx2", "default")))
#else
#define EW_VEC
#endif

#define EW_CAT_(a, b) a##b
#define EW_CAT(a, b) EW_CAT_(a, b)

#define EW_MAX_IN 3
#define EW_GRAIN ((int64_t)1 << 15) /* elements per task for cheap loops */
#define EW_HALF_BLOCK 512

/* Type lists: X(dtype, C type, wide unsigned type used for wrapping arithmetic, suffix). */
#define EW_SINT(X)                                                                           \
    X(IFD_DTYPE_INT8, int8_t, uint32_t, _i8)                                                 \
    X(IFD_DTYPE_INT16, int16_t, uint32_t, _i16)                                              \
    X(IFD_DTYPE_INT32, int32_t, uint32_t, _i32)                                              \
    X(IFD_DTYPE_INT64, int64_t, uint64_t, _i64)
#define EW_UINT(X)                                                                           \
    X(IFD_DTYPE_UINT8, uint8_t, uint32_t, _u8)                                               \
    X(IFD_DTYPE_UINT16, uint16_t, uint32_t, _u16)                                            \
    X(IFD_DTYPE_UINT32, uint32_t, uint32_t, _u32)                                            \
    X(IFD_DTYPE_UINT64, uint64_t, uint64_t, _u64)
#define EW_FLT(X)                                                                            \
    X(IFD_DTYPE_FLOAT, float, float, _f32)                                                   \
    X(IFD_DTYPE_DOUBLE, double, double, _f64)
#define EW_INT(X) EW_SINT(X) EW_UINT(X)
#define EW_NUM(X) EW_INT(X) EW_FLT(X)

/* ---- loop shapes ------------------------------------------------------------------------- */

/* mode: 0 both vectors, 1 a scalar, 2 b scalar, 3 both scalar */
typedef void (*bin_fn)(const void *a, const void *b, void *o, int64_t n, int mode);
typedef void (*un_fn)(const void *x, void *y, int64_t n, const void *param);

#define EW_BIN(NAME, T, TO, EXPR)                                                            \
    static EW_VEC void NAME(const void *a_, const void *b_, void *o_, int64_t n, int mode) { \
        const T *restrict a = a_;                                                            \
        const T *restrict b = b_;                                                            \
        TO *restrict o = o_;                                                                 \
        switch (mode) {                                                                      \
        case 0:                                                                              \
            for (int64_t i = 0; i < n; i++) {                                                \
                T x = a[i], y = b[i];                                                        \
                o[i] = (TO)(EXPR);                                                           \
            }                                                                                \
            break;                                                                           \
        case 1: {                                                                            \
            T x = a[0];                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                \
                T y = b[i];                                                                  \
                o[i] = (TO)(EXPR);                                                           \
            }                                                                                \
        } break;                                                                             \
        case 2: {                                                                            \
            T y = b[0];                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                \
                T x = a[i];                                                                  \
                o[i] = (TO)(EXPR);                                                           \
            }                                                                                \
        } break;                                                                             \
        default: {                                                                           \
            T x = a[0], y = b[0];                                                            \
            TO v = (TO)(EXPR);                                                               \
            for (int64_t i = 0; i < n; i++) o[i] = v;                                        \
        }                                                                                    \
        }                                                                                    \
    }

#define EW_UN(NAME, T, TO, EXPR)                                                             \
    static EW_VEC void NAME(const void *x_, void *y_, int64_t n, const void *param) {        \
        const T *restrict xs = x_;                                                           \
        TO *restrict ys = y_;                                                                \
        for (int64_t i = 0; i < n; i++) {                                                    \
            T x = xs[i];                                                                     \
            ys[i] = (TO)(EXPR);                                                              \
        }                                                                                    \
    }

/* Define CUR<suffix> for each type of a list with expression EXPR(T, WU). */
#define EW_DEF_BIN(dt, T, WU, S) EW_BIN(EW_CAT(EW_CUR, S), T, T, EW_EXPR(T, WU))
#define EW_DEF_CMP(dt, T, WU, S) EW_BIN(EW_CAT(EW_CUR, S), T, uint8_t, EW_EXPR(T, WU))
#define EW_DEF_UN(dt, T, WU, S) EW_UN(EW_CAT(EW_CUR, S), T, T, EW_EXPR(T, WU))
#define EW_DEF_UNB(dt, T, WU, S) EW_UN(EW_CAT(EW_CUR, S), T, uint8_t, EW_EXPR(T, WU))
#define EW_ENT(dt, T, WU, S) [dt] = EW_CAT(EW_CUR, S),

/* ---- scalar helpers for the integer corner cases (no traps on /0 or INT_MIN/-1) -------------- */

static inline int64_t i_div(int64_t x, int64_t y) {
    if (y == 0) return 0;
    if (y == -1) return (int64_t)(0 - (uint64_t)x);
    return x / y;
}
static inline int64_t i_mod_trunc(int64_t x, int64_t y) {
    if (y == 0 || y == -1) return 0;
    return x % y;
}
static inline int64_t i_mod_floor(int64_t x, int64_t y) {
    int64_t r = i_mod_trunc(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}
static inline float f_mod_floor(float x, float y) {
    float r = fmodf(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}
static inline double d_mod_floor(double x, double y) {
    double r = fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}
/* Saturating double -> int64 (C leaves out-of-range conversions undefined). */
static inline int64_t d_to_i64(double v) {
    if (!(v == v)) return INT64_MIN;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}
static inline int64_t i_pow(int64_t b, int64_t e) {
    if (e < 0) return b == 1 ? 1 : b == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, x = (uint64_t)b;
    while (e) {
        if (e & 1) r *= x;
        x *= x;
        e >>= 1;
    }
    return (int64_t)r;
}
static inline int64_t i_pow_d(int64_t b, double e) {
    if (e == floor(e) && fabs(e) < 9.2e18) return i_pow(b, (int64_t)e);
    return d_to_i64(pow((double)b, e));
}

/* ---- arithmetic -------------------------------------------------------------------------- */

#define EW_CUR add
#define EW_EXPR(T, WU) (T)((WU)x + (WU)y)
EW_NUM(EW_DEF_BIN)
static const bin_fn add_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR
#undef EW_EXPR

#define EW_CUR sub
#define EW_EXPR(T, WU) (T)((WU)x - (WU)y)
EW_NUM(EW_DEF_BIN)
static const bin_fn sub_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR
#undef EW_EXPR

#define EW_CUR mul
#define EW_EXPR(T, WU) (T)((WU)x * (WU)y)
EW_NUM(EW_DEF_BIN)
static const bin_fn mul_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR
#undef EW_EXPR

#define EW_CUR div
#define EW_EXPR(T, WU) x / y
EW_FLT(EW_DEF_BIN)
#undef EW_EXPR
#define EW_EXPR(T, WU) i_div(x, y)
EW_SINT(EW_DEF_BIN)
#undef EW_EXPR
#define EW_EXPR(T, WU) (y ? x / y : 0)
EW_UINT(EW_DEF_BIN)
static const bin_fn div_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR
#undef EW_EXPR

/* Max/Min propagate NaN like numpy.maximum/minimum. */
#define EW_CUR max
#define EW_EXPR(T, WU) ((x > y || x != x) ? x : y)
EW_NUM(EW_DEF_BIN)
static const bin_fn max_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR
#undef EW_EXPR

#define EW_CUR min
#define EW_EXPR(T, WU) ((x < y || x != x) ? x : y)
EW_NUM(EW_DEF_BIN)
static const bin_fn min_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR
#undef EW_EXPR

#define EW_CUR prelu
#define EW_EXPR(T, WU) (x < 0 ? (T)((WU)x * (WU)y) : x)
EW_SINT(EW_DEF_BIN)
EW_FLT(EW_DEF_BIN)
#undef EW_EXPR
#define EW_EXPR(T, WU) x + 0 * y
EW_UINT(EW_DEF_BIN)
static const bin_fn prelu_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR
#undef EW_EXPR

/* Mod: fmod=0 takes the divisor's sign (numpy.mod), fmod=1 the dividend's (C fmod). */
#define EW_CUR modf_
#define EW_EXPR(T, WU) i_mod_trunc(x, y)
EW_SINT(EW_DEF_BIN)
#undef EW_EXPR
#define EW_EXPR(T, WU) (y ? x % y : 0)
EW_UINT(EW_DEF_BIN)
#undef EW_EXPR
EW_BIN(modf__f32, float, float, fmodf(x, y))
EW_BIN(modf__f64, double, double, fmod(x, y))
static const bin_fn modf_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR

#define EW_CUR modi_
#define EW_EXPR(T, WU) i_mod_floor(x, y)
EW_SINT(EW_DEF_BIN)
#undef EW_EXPR
#define EW_EXPR(T, WU) (y ? x % y : 0)
EW_UINT(EW_DEF_BIN)
#undef EW_EXPR
EW_BIN(modi__f32, float, float, f_mod_floor(x, y))
EW_BIN(modi__f64, double, double, d_mod_floor(x, y))
static const bin_fn modi_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR

/* Pow with matching types; mixed exponents are converted first (see run_pow). */
EW_BIN(pow_f32, float, float, powf(x, y))
EW_BIN(pow_f64, double, double, pow(x, y))
#define EW_CUR powi
#define EW_EXPR(T, WU) i_pow((int64_t)x, (int64_t)y)
EW_SINT(EW_DEF_BIN)
#undef EW_EXPR
#define EW_EXPR(T, WU) (T)i_pow((int64_t)x, (int64_t)y)
EW_UINT(EW_DEF_BIN)
#undef EW_EXPR
static const bin_fn pow_tab[IFD_DTYPE_COUNT] = {
    EW_INT(EW_ENT)[IFD_DTYPE_FLOAT] = pow_f32, [IFD_DTYPE_DOUBLE] = pow_f64};
#undef EW_CUR

/* Integer base with a double exponent (already converted). */
#define EW_DEF_POWD(dt, T, WU, S)                                                            \
    static void EW_CAT(powd, S)(const void *a_, const void *b_, void *o_, int64_t n,         \
                                int mode) {                                                  \
        const T *a = a_;                                                                     \
        const double *b = b_;                                                                \
        T *o = o_;                                                                           \
        for (int64_t i = 0; i < n; i++)                                                      \
            o[i] = (T)i_pow_d((int64_t)a[(mode & 1) ? 0 : i], b[(mode & 2) ? 0 : i]);        \
    }
EW_INT(EW_DEF_POWD)
#define EW_CUR powd
static const bin_fn powd_tab[IFD_DTYPE_COUNT] = {EW_INT(EW_ENT)};
#undef EW_CUR

/* ---- bit and logic ------------------------------------------------------------------------- */

#define EW_CUR shl
#define EW_EXPR(T, WU) (y >= (T)(sizeof(T) * 8) ? 0 : (T)((WU)x << y))
EW_UINT(EW_DEF_BIN)
static const bin_fn shl_tab[IFD_DTYPE_COUNT] = {EW_UINT(EW_ENT)};
#undef EW_CUR
#undef EW_EXPR
#define EW_CUR shr
#define EW_EXPR(T, WU) (y >= (T)(sizeof(T) * 8) ? 0 : (T)(x >> y))
EW_UINT(EW_DEF_BIN)
static const bin_fn shr_tab[IFD_DTYPE_COUNT] = {EW_UINT(EW_ENT)};
#undef EW_CUR
#undef EW_EXPR

/* Bitwise operators only depend on the element size. */
#define EW_BITS(X)                                                                           \
    X(1, uint8_t, uint8_t, _b1) X(2, uint16_t, uint16_t, _b2) X(4, uint32_t, uint32_t, _b4)  \
        X(8, uint64_t, uint64_t, _b8)
#define EW_ENT_SZ(sz, T, WU, S) [sz] = EW_CAT(EW_CUR, S),
#define EW_CUR band
#define EW_EXPR(T, WU) x &y
EW_BITS(EW_DEF_BIN)
static const bin_fn band_sz[9] = {EW_BITS(EW_ENT_SZ)};
#undef EW_CUR
#undef EW_EXPR
#define EW_CUR bor
#define EW_EXPR(T, WU) x | y
EW_BITS(EW_DEF_BIN)
static const bin_fn bor_sz[9] = {EW_BITS(EW_ENT_SZ)};
#undef EW_CUR
#undef EW_EXPR
#define EW_CUR bxor
#define EW_EXPR(T, WU) x ^ y
EW_BITS(EW_DEF_BIN)
static const bin_fn bxor_sz[9] = {EW_BITS(EW_ENT_SZ)};
#undef EW_CUR
#undef EW_EXPR

EW_BIN(land_b, uint8_t, uint8_t, (x != 0) & (y != 0))
EW_BIN(lor_b, uint8_t, uint8_t, (x != 0) | (y != 0))
EW_BIN(lxor_b, uint8_t, uint8_t, (x != 0) ^ (y != 0))

/* ---- comparisons (bool output) --------------------------------------------------------------- */

#define EW_CMP_OP(NAME, OP)                                                                  \
    EW_NUM(EW_DEF_CMP)                                                                       \
    static const bin_fn NAME##_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)[IFD_DTYPE_BOOL] =       \
                                                           EW_CAT(EW_CUR, _u8)};
#define EW_CUR eq
#define EW_EXPR(T, WU) x == y
EW_CMP_OP(eq, ==)
#undef EW_CUR
#undef EW_EXPR
#define EW_CUR gt
#define EW_EXPR(T, WU) x > y
EW_CMP_OP(gt, >)
#undef EW_CUR
#undef EW_EXPR
#define EW_CUR ge
#define EW_EXPR(T, WU) x >= y
EW_CMP_OP(ge, >=)
#undef EW_CUR
#undef EW_EXPR
#define EW_CUR lt
#define EW_EXPR(T, WU) x < y
EW_CMP_OP(lt, <)
#undef EW_CUR
#undef EW_EXPR
#define EW_CUR le
#define EW_EXPR(T, WU) x <= y
EW_CMP_OP(le, <=)
#undef EW_CUR
#undef EW_EXPR

/* ---- broadcast engine ------------------------------------------------------------------------ */

typedef struct ew_operand {
    const void *data;
    ifd_dtype dtype;
    int rank;
    const int64_t *dims;
} ew_operand;

typedef struct ew_plan {
    int rank; /* collapsed axes, >= 1 */
    int64_t dims[IFD_MAX_RANK];
    int64_t strides[EW_MAX_IN][IFD_MAX_RANK]; /* elements; 0 where broadcast */
    int64_t inner;                            /* dims[rank - 1] */
    unsigned inner_scalar;                    /* bit i: input i constant along inner */
    int64_t outer;
} ew_plan;

struct ew_kernel;
typedef void (*ew_row_fn)(const struct ew_kernel *k, const void *const *in, unsigned smask,
                          void *out, int64_t n);

typedef struct ew_kernel {
    ew_row_fn row;
    bin_fn bin;      /* the typed loop (float loop for half types) */
    ifd_dtype half;  /* FLOAT16/BFLOAT16 when inputs go through float, else 0 */
    bool out_bool;   /* half path: output is bool, not converted back */
    size_t esz;      /* Where: element size */
} ew_kernel;

static void row_bin(const ew_kernel *k, const void *const *in, unsigned smask, void *out,
                    int64_t n) {
    k->bin(in[0], in[1], out, n, (int)(smask & 3u));
}

static void row_bin_half(const ew_kernel *k, const void *const *in, unsigned smask, void *out,
                         int64_t n) {
    float ba[EW_HALF_BLOCK], bb[EW_HALF_BLOCK], bo[EW_HALF_BLOCK];
    const uint16_t *a = in[0], *b = in[1];
    int mode = (int)(smask & 3u);
    if (mode & 1) ifd_load_f32(k->half, a, ba, 1);
    if (mode & 2) ifd_load_f32(k->half, b, bb, 1);
    for (int64_t s = 0; s < n; s += EW_HALF_BLOCK) {
        int64_t m = IFD_MIN((int64_t)EW_HALF_BLOCK, n - s);
        if (!(mode & 1)) ifd_load_f32(k->half, a + s, ba, m);
        if (!(mode & 2)) ifd_load_f32(k->half, b + s, bb, m);
        if (k->out_bool) {
            k->bin(ba, bb, (uint8_t *)out + s, m, mode);
        } else {
            k->bin(ba, bb, bo, m, mode);
            ifd_store_f32(k->half, bo, (uint16_t *)out + s, m);
        }
    }
}

#define EW_DEF_WHERE(sz, T, WU, S)                                                           \
    static EW_VEC void EW_CAT(where, S)(const uint8_t *restrict c, const T *restrict x,      \
                                        const T *restrict y, T *restrict o, int64_t n,       \
                                        unsigned sm) {                                       \
        if (sm == 0) {                                                                       \
            for (int64_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : y[i];                       \
        } else if (sm == 2) {                                                                \
            T xv = x[0];                                                                     \
            for (int64_t i = 0; i < n; i++) o[i] = c[i] ? xv : y[i];                         \
        } else if (sm == 4) {                                                                \
            T yv = y[0];                                                                     \
            for (int64_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : yv;                         \
        } else if (sm == 6) {                                                                \
            T xv = x[0], yv = y[0];                                                          \
            for (int64_t i = 0; i < n; i++) o[i] = c[i] ? xv : yv;                           \
        } else if (sm == 1) {                                                                \
            const T *s = c[0] ? x : y;                                                       \
            for (int64_t i = 0; i < n; i++) o[i] = s[i];                                     \
        } else {                                                                             \
            int64_t ic = (sm & 1) ? 0 : 1, ix = (sm & 2) ? 0 : 1, iy = (sm & 4) ? 0 : 1;     \
            for (int64_t i = 0; i < n; i++) o[i] = c[i * ic] ? x[i * ix] : y[i * iy];        \
        }                                                                                    \
    }
EW_BITS(EW_DEF_WHERE)

static void row_where(const ew_kernel *k, const void *const *in, unsigned smask, void *out,
                      int64_t n) {
    switch (k->esz) {
    case 1: where_b1(in[0], in[1], in[2], out, n, smask); break;
    case 2: where_b2(in[0], in[1], in[2], out, n, smask); break;
    case 4: where_b4(in[0], in[1], in[2], out, n, smask); break;
    default: where_b8(in[0], in[1], in[2], out, n, smask); break;
    }
}

static ifd_status ew_broadcast(const ifd_kernel_ctx *ctx, int k, const ew_operand *ops,
                               int *rank, int64_t *dims) {
    int r = ops[0].rank;
    memcpy(dims, ops[0].dims, sizeof(int64_t) * (size_t)r);
    for (int i = 1; i < k; i++) {
        int64_t tmp[IFD_MAX_RANK];
        int rr;
        if (ops[i].rank > IFD_MAX_RANK ||
            ifd_broadcast_shape(r, dims, ops[i].rank, ops[i].dims, &rr, tmp) != IFD_OK)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "inputs do not broadcast: %s",
                                    ifd_last_error());
        r = rr;
        memcpy(dims, tmp, sizeof(int64_t) * (size_t)r);
    }
    *rank = r;
    return IFD_OK;
}

static void ew_plan_build(ew_plan *p, int k, const ew_operand *ops, int R, const int64_t *od) {
    int nk = 0;
    unsigned pat[IFD_MAX_RANK];
    for (int d = 0; d < R; d++) {
        if (od[d] == 1) continue;
        unsigned pt = 0;
        for (int i = 0; i < k; i++) {
            int id = d - (R - ops[i].rank);
            if (id < 0 || ops[i].dims[id] == 1) pt |= 1u << i;
        }
        if (nk > 0 && pat[nk - 1] == pt) {
            p->dims[nk - 1] *= od[d];
        } else {
            p->dims[nk] = od[d];
            pat[nk++] = pt;
        }
    }
    if (nk == 0) {
        p->dims[0] = 1;
        pat[0] = 0;
        nk = 1;
    }
    p->rank = nk;
    for (int i = 0; i < k; i++) {
        int64_t s = 1;
        for (int c = nk - 1; c >= 0; c--) {
            if (pat[c] & (1u << i)) {
                p->strides[i][c] = 0;
            } else {
                p->strides[i][c] = s;
                s *= p->dims[c];
            }
        }
    }
    p->inner = p->dims[nk - 1];
    p->inner_scalar = pat[nk - 1];
    p->outer = 1;
    for (int c = 0; c < nk - 1; c++) p->outer *= p->dims[c];
}

typedef struct ew_job {
    const ew_plan *p;
    const ew_kernel *kern;
    int k;
    const char *in[EW_MAX_IN];
    size_t isz[EW_MAX_IN];
    char *out;
    size_t osz;
    int64_t blk, nblk;
} ew_job;

static void ew_task(void *arg, int64_t begin, int64_t end) {
    const ew_job *j = arg;
    const ew_plan *p = j->p;
    int64_t row = begin / j->nblk, q = begin % j->nblk;
    int64_t idx[IFD_MAX_RANK], off[EW_MAX_IN] = {0, 0, 0};
    int no = p->rank - 1;
    int64_t r = row;
    for (int d = no - 1; d >= 0; d--) {
        idx[d] = r % p->dims[d];
        r /= p->dims[d];
        for (int i = 0; i < j->k; i++) off[i] += idx[d] * p->strides[i][d];
    }
    for (int64_t t = begin; t < end; t++) {
        int64_t s = q * j->blk, n = IFD_MIN(j->blk, p->inner - s);
        const void *ins[EW_MAX_IN] = {NULL, NULL, NULL};
        for (int i = 0; i < j->k; i++)
            ins[i] = j->in[i] +
                     (size_t)(off[i] + ((p->inner_scalar >> i) & 1u ? 0 : s)) * j->isz[i];
        j->kern->row(j->kern, ins, p->inner_scalar, j->out + (size_t)(row * p->inner + s) * j->osz,
                     n);
        if (++q == j->nblk) {
            q = 0;
            row++;
            for (int d = no - 1; d >= 0; d--) {
                for (int i = 0; i < j->k; i++) off[i] += p->strides[i][d];
                if (++idx[d] < p->dims[d]) break;
                for (int i = 0; i < j->k; i++) off[i] -= p->strides[i][d] * p->dims[d];
                idx[d] = 0;
            }
        }
    }
}

/* Run kern over the broadcast of ops into out (shape out_rank/out_dims, already allocated). */
static void ew_launch(ifd_kernel_ctx *ctx, int k, const ew_operand *ops, int out_rank,
                      const int64_t *out_dims, void *out, size_t osz, const ew_kernel *kern,
                      int64_t grain) {
    ew_plan p;
    int64_t count = 1;
    for (int d = 0; d < out_rank; d++) count *= out_dims[d];
    if (count == 0) return;
    ew_plan_build(&p, k, ops, out_rank, out_dims);
    ew_job j;
    memset(&j, 0, sizeof j);
    j.p = &p;
    j.kern = kern;
    j.k = k;
    for (int i = 0; i < k; i++) {
        j.in[i] = ops[i].data;
        j.isz[i] = ifd_dtype_size(ops[i].dtype);
    }
    j.out = out;
    j.osz = osz;
    j.blk = p.inner;
    if (p.inner > 2 * grain) j.blk = grain;
    j.nblk = (p.inner + j.blk - 1) / j.blk;
    int64_t tasks = p.outer * j.nblk;
    int64_t min_chunk = IFD_MAX((int64_t)1, grain / j.blk);
    ifd_parallel_for(ctx->pool, tasks, min_chunk, ew_task, &j);
}

static ew_operand ew_op_of(const ifd_tensor *t) {
    ew_operand o = {t->data, t->dtype, t->rank, t->dims};
    return o;
}

static bool is_half(ifd_dtype dt) {
    return dt == IFD_DTYPE_FLOAT16 || dt == IFD_DTYPE_BFLOAT16;
}

/* Pick the loop for dtype: the table entry, or the float loop through conversion for
 * half types. */
static bool ew_pick(const bin_fn *tab, ifd_dtype dt, bool out_bool, ew_kernel *k) {
    memset(k, 0, sizeof *k);
    k->out_bool = out_bool;
    if (dt > 0 && dt < IFD_DTYPE_COUNT && tab[dt]) {
        k->row = row_bin;
        k->bin = tab[dt];
        return true;
    }
    if (is_half(dt) && tab[IFD_DTYPE_FLOAT]) {
        k->row = row_bin_half;
        k->bin = tab[IFD_DTYPE_FLOAT];
        k->half = dt;
        return true;
    }
    return false;
}

/* Legacy (opset < 7) broadcasting: B aligned to A starting at `axis`. */
static ifd_status legacy_shape(const ifd_kernel_ctx *ctx, const ifd_tensor *a,
                               const ifd_tensor *b, int *rank, int64_t *dims) {
    *rank = b->rank;
    memcpy(dims, b->dims, sizeof(int64_t) * (size_t)b->rank);
    if (ctx->opset >= 7 || !ifd_attr_int(ctx->node, "broadcast", 0) ||
        !ifd_attr_has(ctx->node, "axis"))
        return IFD_OK;
    int64_t axis = ifd_attr_int(ctx->node, "axis", 0);
    if (axis < 0) axis += a->rank;
    if (axis < 0 || axis + b->rank > a->rank)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "legacy broadcast axis %lld out of range",
                                (long long)ifd_attr_int(ctx->node, "axis", 0));
    int r = a->rank;
    for (int d = 0; d < r; d++) {
        int id = d - (int)axis;
        dims[d] = id >= 0 && id < b->rank ? b->dims[id] : 1;
    }
    *rank = r;
    return IFD_OK;
}

static ifd_status run_binary_tab(ifd_kernel_ctx *ctx, const bin_fn *tab, bool out_bool) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *a = ctx->inputs[0], *b = ctx->inputs[1];
    if (a->dtype != b->dtype)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input types differ: %s and %s",
                                ifd_dtype_name(a->dtype), ifd_dtype_name(b->dtype));
    ew_kernel k;
    if (!ew_pick(tab, a->dtype, out_bool, &k))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "type %s is not supported",
                                ifd_dtype_name(a->dtype));
    int64_t bdims[IFD_MAX_RANK];
    int brank;
    if ((st = legacy_shape(ctx, a, b, &brank, bdims))) return st;
    ew_operand ops[2] = {ew_op_of(a), {b->data, b->dtype, brank, bdims}};
    int64_t od[IFD_MAX_RANK];
    int orank;
    if ((st = ew_broadcast(ctx, 2, ops, &orank, od))) return st;
    ifd_dtype odt = out_bool ? IFD_DTYPE_BOOL : a->dtype;
    ifd_tensor *out;
    if ((st = ifd_kernel_output(ctx, 0, odt, orank, od, &out)) || !out) return st;
    ew_launch(ctx, 2, ops, orank, od, out->data, ifd_dtype_size(odt), &k, EW_GRAIN);
    return IFD_OK;
}

static ifd_status run_add(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, add_tab, false); }
static ifd_status run_sub(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, sub_tab, false); }
static ifd_status run_mul(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, mul_tab, false); }
static ifd_status run_div(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, div_tab, false); }
static ifd_status run_equal(ifd_kernel_ctx *ctx) {
    if (ctx->n_inputs > 0 && ctx->inputs[0] && ctx->inputs[0]->dtype == IFD_DTYPE_STRING)
        return ifd_string_equal(ctx);
    return run_binary_tab(ctx, eq_tab, true);
}
static ifd_status run_greater(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, gt_tab, true); }
static ifd_status run_greater_eq(ifd_kernel_ctx *ctx) {
    return run_binary_tab(ctx, ge_tab, true);
}
static ifd_status run_less(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, lt_tab, true); }
static ifd_status run_less_eq(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, le_tab, true); }

static ifd_status run_mod(ifd_kernel_ctx *ctx) {
    bool fm = ifd_attr_int(ctx->node, "fmod", 0) != 0;
    return run_binary_tab(ctx, fm ? modf_tab : modi_tab, false);
}

static ifd_status run_bitshift(ifd_kernel_ctx *ctx) {
    const char *dir = ifd_attr_string(ctx->node, "direction", "");
    if (strcmp(dir, "LEFT") && strcmp(dir, "RIGHT"))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "direction must be LEFT or RIGHT, got '%s'", dir);
    return run_binary_tab(ctx, strcmp(dir, "LEFT") ? shr_tab : shl_tab, false);
}

static ifd_status run_bitwise(ifd_kernel_ctx *ctx, const bin_fn *by_size) {
    if (ctx->n_inputs >= 1 && ctx->inputs[0]) {
        ifd_dtype dt = ctx->inputs[0]->dtype;
        if (!(ifd_dtype_is_signed_int(dt) || ifd_dtype_is_unsigned_int(dt)) ||
            ifd_dtype_size(dt) > 8)
            return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "type %s is not supported",
                                    ifd_dtype_name(dt));
        bin_fn tab[IFD_DTYPE_COUNT] = {0};
        tab[dt] = by_size[ifd_dtype_size(dt)];
        return run_binary_tab(ctx, tab, false);
    }
    return ifd_kernel_require_input(ctx, 0);
}
static ifd_status run_bitwise_and(ifd_kernel_ctx *ctx) { return run_bitwise(ctx, band_sz); }
static ifd_status run_bitwise_or(ifd_kernel_ctx *ctx) { return run_bitwise(ctx, bor_sz); }
static ifd_status run_bitwise_xor(ifd_kernel_ctx *ctx) { return run_bitwise(ctx, bxor_sz); }

static const bin_fn land_tab[IFD_DTYPE_COUNT] = {[IFD_DTYPE_BOOL] = land_b};
static const bin_fn lor_tab[IFD_DTYPE_COUNT] = {[IFD_DTYPE_BOOL] = lor_b};
static const bin_fn lxor_tab[IFD_DTYPE_COUNT] = {[IFD_DTYPE_BOOL] = lxor_b};
static ifd_status run_and(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, land_tab, false); }
static ifd_status run_or(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, lor_tab, false); }
static ifd_status run_xor(ifd_kernel_ctx *ctx) { return run_binary_tab(ctx, lxor_tab, false); }

/* PRelu: slope broadcasts to X (unidirectional). Before opset 7 a 1-D slope of size C is
 * per channel (axis 1), which is how old PyTorch exports use it. */
static ifd_status run_prelu(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0], *s = ctx->inputs[1];
    if (x->dtype != s->dtype)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "X is %s but slope is %s",
                                ifd_dtype_name(x->dtype), ifd_dtype_name(s->dtype));
    ew_kernel k;
    if (!ew_pick(prelu_tab, x->dtype, false, &k))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "type %s is not supported",
                                ifd_dtype_name(x->dtype));
    int64_t sd[IFD_MAX_RANK];
    int sr = s->rank;
    memcpy(sd, s->dims, sizeof(int64_t) * (size_t)sr);
    if (s->rank == 1 && x->rank >= 2 && s->dims[0] != 1 && s->dims[0] == x->dims[1] &&
        (ctx->opset < 7 || s->dims[0] != x->dims[x->rank - 1])) {
        sr = x->rank - 1;
        sd[0] = s->dims[0];
        for (int d = 1; d < sr; d++) sd[d] = 1;
    }
    ew_operand ops[2] = {ew_op_of(x), {s->data, s->dtype, sr, sd}};
    int64_t od[IFD_MAX_RANK];
    int orank;
    if ((st = ew_broadcast(ctx, 2, ops, &orank, od))) return st;
    ifd_tensor *out;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, orank, od, &out)) || !out) return st;
    ew_launch(ctx, 2, ops, orank, od, out->data, ifd_dtype_size(x->dtype), &k, EW_GRAIN);
    return IFD_OK;
}

/* ---- variadic: Max, Min, Sum, Mean ------------------------------------------------------------ */

EW_UN(scale_f32, float, float, x * *(const float *)param)
EW_UN(scale_f64, double, double, x * *(const double *)param)

static ifd_status run_variadic(ifd_kernel_ctx *ctx, const bin_fn *tab, bool mean) {
    ifd_status st;
    int n = ctx->n_inputs;
    if (n < 1) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "needs at least one input");
    if (n > 64) return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "too many inputs (%d)", n);
    ew_operand ops[64];
    for (int i = 0; i < n; i++) {
        if ((st = ifd_kernel_require_input(ctx, i))) return st;
        ops[i] = ew_op_of(ctx->inputs[i]);
        if (ops[i].dtype != ops[0].dtype)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "input %d is %s but input 0 is %s", i,
                                    ifd_dtype_name(ops[i].dtype), ifd_dtype_name(ops[0].dtype));
    }
    ifd_dtype dt = ops[0].dtype;
    ew_kernel k;
    if (!ew_pick(tab, dt, false, &k))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "type %s is not supported",
                                ifd_dtype_name(dt));
    if (mean && !(dt == IFD_DTYPE_FLOAT || dt == IFD_DTYPE_DOUBLE || is_half(dt)))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "type %s is not supported",
                                ifd_dtype_name(dt));
    int64_t od[IFD_MAX_RANK];
    int orank;
    if ((st = ew_broadcast(ctx, n, ops, &orank, od))) return st;
    ifd_tensor *out;
    if ((st = ifd_kernel_output(ctx, 0, dt, orank, od, &out)) || !out) return st;
    size_t esz = ifd_dtype_size(dt);
    if (n == 1) {
        if (out->nbytes) memcpy(out->data, ops[0].data, out->nbytes);
    } else {
        ew_launch(ctx, 2, ops, orank, od, out->data, esz, &k, EW_GRAIN);
        for (int i = 2; i < n; i++) {
            /* out (already full shape) combined in place with the next input */
            ew_operand pair[2] = {{out->data, dt, orank, od}, ops[i]};
            ew_launch(ctx, 2, pair, orank, od, out->data, esz, &k, EW_GRAIN);
        }
    }
    if (mean && n > 1) {
        if (dt == IFD_DTYPE_DOUBLE) {
            double inv = 1.0 / n;
            scale_f64(out->data, out->data, out->count, &inv);
        } else if (dt == IFD_DTYPE_FLOAT) {
            float inv = 1.0f / (float)n;
            scale_f32(out->data, out->data, out->count, &inv);
        } else {
            uint16_t *h = out->data;
            float buf[EW_HALF_BLOCK];
            float inv = 1.0f / (float)n;
            for (int64_t s = 0; s < out->count; s += EW_HALF_BLOCK) {
                int64_t m = IFD_MIN((int64_t)EW_HALF_BLOCK, out->count - s);
                ifd_load_f32(dt, h + s, buf, m);
                scale_f32(buf, buf, m, &inv);
                ifd_store_f32(dt, buf, h + s, m);
            }
        }
    }
    return IFD_OK;
}

static ifd_status run_max(ifd_kernel_ctx *ctx) { return run_variadic(ctx, max_tab, false); }
static ifd_status run_min(ifd_kernel_ctx *ctx) { return run_variadic(ctx, min_tab, false); }
static ifd_status run_sum(ifd_kernel_ctx *ctx) { return run_variadic(ctx, add_tab, false); }
static ifd_status run_mean(ifd_kernel_ctx *ctx) { return run_variadic(ctx, add_tab, true); }

/* ---- Where ------------------------------------------------------------------------------------ */

static ifd_status run_where(ifd_kernel_ctx *ctx) {
    ifd_status st;
    for (int i = 0; i < 3; i++)
        if ((st = ifd_kernel_require_input(ctx, i))) return st;
    const ifd_tensor *c = ctx->inputs[0], *x = ctx->inputs[1], *y = ctx->inputs[2];
    if (x->dtype == IFD_DTYPE_STRING) return ifd_string_where(ctx);
    if (c->dtype != IFD_DTYPE_BOOL)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "condition must be bool, got %s",
                                ifd_dtype_name(c->dtype));
    if (x->dtype != y->dtype)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "X is %s but Y is %s",
                                ifd_dtype_name(x->dtype), ifd_dtype_name(y->dtype));
    size_t esz = ifd_dtype_size(x->dtype);
    if (esz != 1 && esz != 2 && esz != 4 && esz != 8)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "type %s is not supported",
                                ifd_dtype_name(x->dtype));
    ew_operand ops[3] = {ew_op_of(c), ew_op_of(x), ew_op_of(y)};
    int64_t od[IFD_MAX_RANK];
    int orank;
    if ((st = ew_broadcast(ctx, 3, ops, &orank, od))) return st;
    ifd_tensor *out;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, orank, od, &out)) || !out) return st;
    ew_kernel k;
    memset(&k, 0, sizeof k);
    k.row = row_where;
    k.esz = esz;
    ew_launch(ctx, 3, ops, orank, od, out->data, esz, &k, EW_GRAIN);
    return IFD_OK;
}

/* ---- unary engine ------------------------------------------------------------------------------ */

typedef struct un_job {
    un_fn fn;
    const void *param;
    const char *x;
    char *y;
    size_t isz, osz;
    ifd_dtype half; /* input goes through float */
    bool out_bool;
} un_job;

static void un_task(void *arg, int64_t b, int64_t e) {
    const un_job *j = arg;
    if (!j->half) {
        j->fn(j->x + (size_t)b * j->isz, j->y + (size_t)b * j->osz, e - b, j->param);
        return;
    }
    float buf[EW_HALF_BLOCK];
    for (int64_t s = b; s < e; s += EW_HALF_BLOCK) {
        int64_t m = IFD_MIN((int64_t)EW_HALF_BLOCK, e - s);
        ifd_load_f32(j->half, (const uint16_t *)j->x + s, buf, m);
        if (j->out_bool) {
            j->fn(buf, (uint8_t *)j->y + s, m, j->param);
        } else {
            j->fn(buf, buf, m, j->param);
            ifd_store_f32(j->half, buf, (uint16_t *)j->y + s, m);
        }
    }
}

/* y = fn(x) elementwise with the loop for x's dtype (half types through tab[FLOAT]). */
static ifd_status run_unary_tab(ifd_kernel_ctx *ctx, const un_fn *tab, bool out_bool,
                                const void *param, int64_t grain) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0))) return st;
    const ifd_tensor *x = ctx->inputs[0];
    un_job j;
    memset(&j, 0, sizeof j);
    ifd_dtype dt = x->dtype;
    if (dt > 0 && dt < IFD_DTYPE_COUNT && tab[dt]) {
        j.fn = tab[dt];
    } else if (is_half(dt) && tab[IFD_DTYPE_FLOAT]) {
        j.fn = tab[IFD_DTYPE_FLOAT];
        j.half = dt;
    } else {
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "type %s is not supported",
                                ifd_dtype_name(dt));
    }
    ifd_dtype odt = out_bool ? IFD_DTYPE_BOOL : dt;
    ifd_tensor *out;
    if ((st = ifd_kernel_output(ctx, 0, odt, x->rank, x->dims, &out)) || !out) return st;
    j.param = param;
    j.x = x->data;
    j.y = out->data;
    j.isz = ifd_dtype_size(dt);
    j.osz = ifd_dtype_size(odt);
    j.out_bool = out_bool;
    if (x->count > 0) ifd_parallel_for(ctx->pool, x->count, grain, un_task, &j);
    return IFD_OK;
}

#define EW_UN_F(NAME, EXPR_F, EXPR_D)                                                        \
    EW_UN(NAME##_f32, float, float, EXPR_F)                                                  \
    EW_UN(NAME##_f64, double, double, EXPR_D)

EW_UN_F(ceil, ceilf(x), ceil(x))
EW_UN_F(floor, floorf(x), floor(x))
EW_UN_F(round, nearbyintf(x), nearbyint(x))
EW_UN_F(recip, 1.0f / x, 1.0 / x)
EW_UN_F(sqrt, sqrtf(x), sqrt(x))
EW_UN_F(sin, sinf(x), sin(x))
EW_UN_F(cos, cosf(x), cos(x))
EW_UN_F(tan, tanf(x), tan(x))
EW_UN_F(asin, asinf(x), asin(x))
EW_UN_F(acos, acosf(x), acos(x))
EW_UN_F(atan, atanf(x), atan(x))
EW_UN_F(sinh, sinhf(x), sinh(x))
EW_UN_F(cosh, coshf(x), cosh(x))
EW_UN_F(asinh, asinhf(x), asinh(x))
EW_UN_F(acosh, acoshf(x), acosh(x))
EW_UN_F(atanh, atanhf(x), atanh(x))
EW_UN(exp_f64, double, double, exp(x))
EW_UN(log_f64, double, double, log(x))
EW_UN(erf_f64, double, double, erf(x))

static void exp_f32(const void *x, void *y, int64_t n, const void *p) { ifd_vec_exp(x, y, n); }
static void log_f32(const void *x, void *y, int64_t n, const void *p) { ifd_vec_log(x, y, n); }
static void erf_f32(const void *x, void *y, int64_t n, const void *p) { ifd_vec_erf(x, y, n); }

#define EW_FLT_TAB(NAME)                                                                     \
    static const un_fn NAME##_tab[IFD_DTYPE_COUNT] = {[IFD_DTYPE_FLOAT] = NAME##_f32,        \
                                                      [IFD_DTYPE_DOUBLE] = NAME##_f64};      \
    static ifd_status run_##NAME(ifd_kernel_ctx *ctx) {                                      \
        return run_unary_tab(ctx, NAME##_tab, false, NULL, EW_GRAIN / 8);                    \
    }
EW_FLT_TAB(ceil)
EW_FLT_TAB(floor)
EW_FLT_TAB(round)
EW_FLT_TAB(recip)
EW_FLT_TAB(sqrt)
EW_FLT_TAB(sin)
EW_FLT_TAB(cos)
EW_FLT_TAB(tan)
EW_FLT_TAB(asin)
EW_FLT_TAB(acos)
EW_FLT_TAB(atan)
EW_FLT_TAB(sinh)
EW_FLT_TAB(cosh)
EW_FLT_TAB(asinh)
EW_FLT_TAB(acosh)
EW_FLT_TAB(atanh)
EW_FLT_TAB(exp)
EW_FLT_TAB(log)
EW_FLT_TAB(erf)

#define EW_CUR abs
#define EW_EXPR(T, WU) (x < 0 ? (T)(0 - (WU)x) : x)
EW_SINT(EW_DEF_UN)
#undef EW_EXPR
#define EW_EXPR(T, WU) x
EW_UINT(EW_DEF_UN)
#undef EW_EXPR
EW_UN(abs_f32, float, float, fabsf(x))
EW_UN(abs_f64, double, double, fabs(x))
static const un_fn abs_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR

#define EW_CUR neg
#define EW_EXPR(T, WU) (T)(0 - (WU)x)
EW_SINT(EW_DEF_UN)
#undef EW_EXPR
EW_UN(neg_f32, float, float, -x)
EW_UN(neg_f64, double, double, -x)
static const un_fn neg_tab[IFD_DTYPE_COUNT] = {EW_SINT(EW_ENT) EW_FLT(EW_ENT)};
#undef EW_CUR

#define EW_CUR sign
#define EW_EXPR(T, WU) (x > 0 ? (T)1 : x < 0 ? (T)-1 : x)
EW_SINT(EW_DEF_UN)
EW_FLT(EW_DEF_UN)
#undef EW_EXPR
#define EW_EXPR(T, WU) (x > 0 ? (T)1 : (T)0)
EW_UINT(EW_DEF_UN)
#undef EW_EXPR
static const un_fn sign_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR

static ifd_status run_abs(ifd_kernel_ctx *ctx) {
    return run_unary_tab(ctx, abs_tab, false, NULL, EW_GRAIN);
}
static ifd_status run_neg(ifd_kernel_ctx *ctx) {
    return run_unary_tab(ctx, neg_tab, false, NULL, EW_GRAIN);
}
static ifd_status run_sign(ifd_kernel_ctx *ctx) {
    return run_unary_tab(ctx, sign_tab, false, NULL, EW_GRAIN);
}

EW_UN(isnan_f32, float, uint8_t, x != x)
EW_UN(isnan_f64, double, uint8_t, x != x)
static const un_fn isnan_tab[IFD_DTYPE_COUNT] = {[IFD_DTYPE_FLOAT] = isnan_f32,
                                                 [IFD_DTYPE_DOUBLE] = isnan_f64};
static ifd_status run_isnan(ifd_kernel_ctx *ctx) {
    return run_unary_tab(ctx, isnan_tab, true, NULL, EW_GRAIN);
}

/* param: int[2] = {detect_negative, detect_positive} */
EW_UN(isinf_f32, float, uint8_t,
      (x == INFINITY && ((const int *)param)[1]) || (x == -INFINITY && ((const int *)param)[0]))
EW_UN(isinf_f64, double, uint8_t,
      (x == INFINITY && ((const int *)param)[1]) || (x == -INFINITY && ((const int *)param)[0]))
static const un_fn isinf_tab[IFD_DTYPE_COUNT] = {[IFD_DTYPE_FLOAT] = isinf_f32,
                                                 [IFD_DTYPE_DOUBLE] = isinf_f64};
static ifd_status run_isinf(ifd_kernel_ctx *ctx) {
    int det[2] = {ifd_attr_int(ctx->node, "detect_negative", 1) != 0,
                  ifd_attr_int(ctx->node, "detect_positive", 1) != 0};
    return run_unary_tab(ctx, isinf_tab, true, det, EW_GRAIN);
}

EW_UN(not_b, uint8_t, uint8_t, x == 0)
static const un_fn not_tab[IFD_DTYPE_COUNT] = {[IFD_DTYPE_BOOL] = not_b};
static ifd_status run_not(ifd_kernel_ctx *ctx) {
    return run_unary_tab(ctx, not_tab, false, NULL, EW_GRAIN);
}

EW_UN(bnot_b1, uint8_t, uint8_t, ~x)
EW_UN(bnot_b2, uint16_t, uint16_t, ~x)
EW_UN(bnot_b4, uint32_t, uint32_t, ~x)
EW_UN(bnot_b8, uint64_t, uint64_t, ~x)
static ifd_status run_bitwise_not(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0))) return st;
    ifd_dtype dt = ctx->inputs[0]->dtype;
    un_fn tab[IFD_DTYPE_COUNT] = {0};
    if (ifd_dtype_is_signed_int(dt) || ifd_dtype_is_unsigned_int(dt)) {
        switch (ifd_dtype_size(dt)) {
        case 1: tab[dt] = bnot_b1; break;
        case 2: tab[dt] = bnot_b2; break;
        case 4: tab[dt] = bnot_b4; break;
        case 8: tab[dt] = bnot_b8; break;
        default: break;
        }
    }
    return run_unary_tab(ctx, tab, false, NULL, EW_GRAIN);
}

/* ---- Clip ------------------------------------------------------------------------------------- */

/* param: two values of the element type, {lo, hi}; result min(max(x, lo), hi) so that
 * lo > hi gives hi everywhere, as the spec says. */
#define EW_DEF_CLIP(dt, T, WU, S)                                                            \
    EW_UN(EW_CAT(clip, S), T, T,                                                             \
          (x < ((const T *)param)[0] ? ((const T *)param)[0] : x) > ((const T *)param)[1]    \
              ? ((const T *)param)[1]                                                        \
              : (x < ((const T *)param)[0] ? ((const T *)param)[0] : x))
EW_NUM(EW_DEF_CLIP)
#define EW_CUR clip
static const un_fn clip_tab[IFD_DTYPE_COUNT] = {EW_NUM(EW_ENT)};
#undef EW_CUR

static bool clip_bound(const ifd_kernel_ctx *ctx, int i) {
    return i < ctx->n_inputs && ctx->inputs[i] && ctx->inputs[i]->count > 0;
}

static ifd_status run_clip(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0))) return st;
    ifd_dtype dt = ctx->inputs[0]->dtype;
    union {
        int64_t i64[2];
        uint64_t u64[2];
        double f64[2];
        float f32[2];
        int32_t i32[2];
        uint32_t u32[2];
        int16_t i16[2];
        uint16_t u16[2];
        int8_t i8[2];
        uint8_t u8[2];
    } b;
    memset(&b, 0, sizeof b);
    double lo = -INFINITY, hi = INFINITY;
    int64_t ilo = INT64_MIN, ihi = INT64_MAX; /* integer bounds read exactly */
    bool has_lo = false, has_hi = false;
    if (ctx->opset < 11) {
        lo = ifd_attr_float(ctx->node, "min", -3.402823466e+38f);
        hi = ifd_attr_float(ctx->node, "max", 3.402823466e+38f);
        has_lo = has_hi = true;
        ilo = d_to_i64(lo);
        ihi = d_to_i64(hi);
    } else {
        for (int i = 1; i <= 2; i++) {
            if (!clip_bound(ctx, i)) continue;
            if (ctx->inputs[i]->dtype != dt)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                        "bound input %d is %s but input is %s", i,
                                        ifd_dtype_name(ctx->inputs[i]->dtype),
                                        ifd_dtype_name(dt));
        }
    }
    if (ctx->opset >= 11) {
        if (clip_bound(ctx, 1)) {
            has_lo = true;
            lo = ifd_tensor_get_f64(ctx->inputs[1], 0);
            ilo = ifd_tensor_get_i64(ctx->inputs[1], 0);
        }
        if (clip_bound(ctx, 2)) {
            has_hi = true;
            hi = ifd_tensor_get_f64(ctx->inputs[2], 0);
            ihi = ifd_tensor_get_i64(ctx->inputs[2], 0);
        }
    }
    switch (dt) {
    case IFD_DTYPE_FLOAT:
    case IFD_DTYPE_FLOAT16:
    case IFD_DTYPE_BFLOAT16:
        b.f32[0] = has_lo ? (float)lo : -INFINITY;
        b.f32[1] = has_hi ? (float)hi : INFINITY;
        break;
    case IFD_DTYPE_DOUBLE:
        b.f64[0] = has_lo ? lo : -INFINITY;
        b.f64[1] = has_hi ? hi : INFINITY;
        break;
#define EW_CLIP_INT(DT, F, T, MN, MX)                                                        \
    case DT:                                                                                 \
        b.F[0] = has_lo ? (T)ilo : (T)(MN);                                                  \
        b.F[1] = has_hi ? (T)ihi : (T)(MX);                                                  \
        break;
        EW_CLIP_INT(IFD_DTYPE_INT8, i8, int8_t, INT8_MIN, INT8_MAX)
        EW_CLIP_INT(IFD_DTYPE_INT16, i16, int16_t, INT16_MIN, INT16_MAX)
        EW_CLIP_INT(IFD_DTYPE_INT32, i32, int32_t, INT32_MIN, INT32_MAX)
        EW_CLIP_INT(IFD_DTYPE_INT64, i64, int64_t, INT64_MIN, INT64_MAX)
        EW_CLIP_INT(IFD_DTYPE_UINT8, u8, uint8_t, 0, UINT8_MAX)
        EW_CLIP_INT(IFD_DTYPE_UINT16, u16, uint16_t, 0, UINT16_MAX)
        EW_CLIP_INT(IFD_DTYPE_UINT32, u32, uint32_t, 0, UINT32_MAX)
    case IFD_DTYPE_UINT64:
        b.u64[0] = has_lo ? (uint64_t)ilo : 0;
        b.u64[1] = has_hi ? (uint64_t)ihi : UINT64_MAX;
        break;
#undef EW_CLIP_INT
    default:
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "type %s is not supported",
                                ifd_dtype_name(dt));
    }
    return run_unary_tab(ctx, clip_tab, false, &b, EW_GRAIN);
}

/* ---- Pow -------------------------------------------------------------------------------------- */

/* Exponent values converted to double (or float) in scratch, for mixed-type Pow. */
static ifd_status pow_convert(ifd_kernel_ctx *ctx, const ifd_tensor *e, ifd_dtype to,
                              void **out) {
    ifd_status st = IFD_OK;
    void *p = ifd_kernel_scratch_array(ctx, (size_t)e->count, ifd_dtype_size(to), &st);
    if (!p) return st;
    for (int64_t i = 0; i < e->count; i++) ifd_store_f64(p, to, i, ifd_tensor_get_f64(e, i));
    *out = p;
    return IFD_OK;
}

EW_UN(sq_f32, float, float, x *x)
EW_UN(cube_f32, float, float, x *x *x)
EW_UN(sq_f64, double, double, x *x)

static ifd_status run_pow(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *a = ctx->inputs[0], *e = ctx->inputs[1];
    ifd_dtype dt = a->dtype;
    bool base_float = dt == IFD_DTYPE_FLOAT || dt == IFD_DTYPE_DOUBLE || is_half(dt);
    bool base_int = ifd_dtype_is_signed_int(dt) || ifd_dtype_is_unsigned_int(dt);
    if ((!base_float && !base_int) || ifd_dtype_size(dt) > 8 ||
        !(ifd_dtype_is_float(e->dtype) || ifd_dtype_is_signed_int(e->dtype) ||
          ifd_dtype_is_unsigned_int(e->dtype)))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "types %s ^ %s are not supported",
                                ifd_dtype_name(dt), ifd_dtype_name(e->dtype));
    int64_t bdims[IFD_MAX_RANK];
    int brank;
    if ((st = legacy_shape(ctx, a, e, &brank, bdims))) return st;
    ew_operand ops[2] = {ew_op_of(a), {e->data, e->dtype, brank, bdims}};
    int64_t od[IFD_MAX_RANK];
    int orank;
    if ((st = ew_broadcast(ctx, 2, ops, &orank, od))) return st;
    ifd_tensor *out;
    if ((st = ifd_kernel_output(ctx, 0, dt, orank, od, &out)) || !out) return st;
    size_t esz = ifd_dtype_size(dt);
    /* common exported forms x^2, x^3, x^0.5 with a constant exponent */
    if (e->count == 1 && (dt == IFD_DTYPE_FLOAT || dt == IFD_DTYPE_DOUBLE) && a->count == out->count) {
        double v = ifd_tensor_get_f64(e, 0);
        un_fn f = NULL;
        if (v == 2.0) f = dt == IFD_DTYPE_FLOAT ? sq_f32 : sq_f64;
        else if (v == 3.0 && dt == IFD_DTYPE_FLOAT) f = cube_f32;
        else if (v == 0.5) f = dt == IFD_DTYPE_FLOAT ? sqrt_f32 : sqrt_f64;
        else if (v == 1.0) {
            if (out->nbytes) memcpy(out->data, a->data, out->nbytes);
            return IFD_OK;
        }
        if (f) {
            un_job j;
            memset(&j, 0, sizeof j);
            j.fn = f;
            j.x = a->data;
            j.y = out->data;
            j.isz = j.osz = esz;
            if (a->count) ifd_parallel_for(ctx->pool, a->count, EW_GRAIN, un_task, &j);
            return IFD_OK;
        }
    }
    ew_kernel k;
    if (base_float) {
        if (e->dtype != dt) {
            void *conv;
            if ((st = pow_convert(ctx, e, dt, &conv))) return st;
            ops[1].data = conv;
            ops[1].dtype = dt;
        }
        ew_pick(pow_tab, dt, false, &k);
    } else if (e->dtype == dt) {
        ew_pick(pow_tab, dt, false, &k);
    } else {
        void *conv;
        if ((st = pow_convert(ctx, e, IFD_DTYPE_DOUBLE, &conv))) return st;
        ops[1].data = conv;
        ops[1].dtype = IFD_DTYPE_DOUBLE;
        ew_pick(powd_tab, dt, false, &k);
    }
    if (!k.row)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "types %s ^ %s are not supported",
                                ifd_dtype_name(dt), ifd_dtype_name(e->dtype));
    ew_launch(ctx, 2, ops, orank, od, out->data, esz, &k, EW_GRAIN / 4);
    return IFD_OK;
}

const ifd_op_def ifd_ops_elementwise[] = {
    {"", "Add", 1, run_add, NULL, NULL, 0},
    {"", "Sub", 1, run_sub, NULL, NULL, 0},
    {"", "Mul", 1, run_mul, NULL, NULL, 0},
    {"", "Div", 1, run_div, NULL, NULL, 0},
    {"", "Pow", 1, run_pow, NULL, NULL, 0},
    {"", "Mod", 10, run_mod, NULL, NULL, 0},
    {"", "BitShift", 11, run_bitshift, NULL, NULL, 0},
    {"", "BitwiseAnd", 18, run_bitwise_and, NULL, NULL, 0},
    {"", "BitwiseOr", 18, run_bitwise_or, NULL, NULL, 0},
    {"", "BitwiseXor", 18, run_bitwise_xor, NULL, NULL, 0},
    {"", "BitwiseNot", 18, run_bitwise_not, NULL, NULL, 0},
    {"", "And", 1, run_and, NULL, NULL, 0},
    {"", "Or", 1, run_or, NULL, NULL, 0},
    {"", "Xor", 1, run_xor, NULL, NULL, 0},
    {"", "Not", 1, run_not, NULL, NULL, 0},
    {"", "Equal", 1, run_equal, NULL, NULL, IFD_OP_STRINGS},
    {"", "Greater", 1, run_greater, NULL, NULL, 0},
    {"", "GreaterOrEqual", 12, run_greater_eq, NULL, NULL, 0},
    {"", "Less", 1, run_less, NULL, NULL, 0},
    {"", "LessOrEqual", 12, run_less_eq, NULL, NULL, 0},
    {"", "PRelu", 1, run_prelu, NULL, NULL, 0},
    {"", "Max", 1, run_max, NULL, NULL, 0},
    {"", "Min", 1, run_min, NULL, NULL, 0},
    {"", "Sum", 1, run_sum, NULL, NULL, 0},
    {"", "Mean", 1, run_mean, NULL, NULL, 0},
    {"", "Where", 9, run_where, NULL, NULL, IFD_OP_STRINGS},
    {"", "Clip", 1, run_clip, NULL, NULL, 0},
    {"", "Abs", 1, run_abs, NULL, NULL, 0},
    {"", "Neg", 1, run_neg, NULL, NULL, 0},
    {"", "Sign", 9, run_sign, NULL, NULL, 0},
    {"", "Ceil", 1, run_ceil, NULL, NULL, 0},
    {"", "Floor", 1, run_floor, NULL, NULL, 0},
    {"", "Round", 11, run_round, NULL, NULL, 0},
    {"", "Reciprocal", 1, run_recip, NULL, NULL, 0},
    {"", "Sqrt", 1, run_sqrt, NULL, NULL, 0},
    {"", "Exp", 1, run_exp, NULL, NULL, 0},
    {"", "Log", 1, run_log, NULL, NULL, 0},
    {"", "Sin", 7, run_sin, NULL, NULL, 0},
    {"", "Cos", 7, run_cos, NULL, NULL, 0},
    {"", "Tan", 7, run_tan, NULL, NULL, 0},
    {"", "Asin", 7, run_asin, NULL, NULL, 0},
    {"", "Acos", 7, run_acos, NULL, NULL, 0},
    {"", "Atan", 7, run_atan, NULL, NULL, 0},
    {"", "Sinh", 9, run_sinh, NULL, NULL, 0},
    {"", "Cosh", 9, run_cosh, NULL, NULL, 0},
    {"", "Asinh", 9, run_asinh, NULL, NULL, 0},
    {"", "Acosh", 9, run_acosh, NULL, NULL, 0},
    {"", "Atanh", 9, run_atanh, NULL, NULL, 0},
    {"", "Erf", 9, run_erf, NULL, NULL, 0},
    {"", "IsNaN", 9, run_isnan, NULL, NULL, 0},
    {"", "IsInf", 10, run_isinf, NULL, NULL, 0},
    {0},
};
