/* Vectorized float math. Each function body is written once against a small set of vector
 * macros (V_ADD, V_SEL, ...) and instantiated for AVX-512 and AVX2+FMA; the macros are
 * redefined between the two instantiations (macro bodies expand at their use). Scalar code
 * uses libm so that machines without AVX2 get correctly rounded results. */
#include "kernels/vecmath.h"

#include "ops/op.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define IFD_VM_X86 1
#include <immintrin.h>
#else
#define IFD_VM_X86 0
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define IFD_AUTOVEC __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define IFD_AUTOVEC
#endif

enum { VM_SCALAR = 0, VM_AVX2 = 1, VM_AVX512 = 2 };

static int vm_level(void) {
#if IFD_VM_X86
    if (__builtin_cpu_supports("avx512f")) return VM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VM_AVX2;
#endif
    return VM_SCALAR;
}

/* ---- polynomial constants (Cephes single precision) --------------------------------------- */
#define C_EXP_HI 88.7228394f
#define C_EXP_LO (-87.3365478f)
#define C_LOG2E 1.44269504088896341f
#define C_LN2_HI 0.693359375f
#define C_LN2_LO (-2.12194440e-4f)
#define C_SQRTHF 0.707106781186547524f

/* ---- bodies, written against V_* macros --------------------------------------------------- */

/* exp(x): range reduction x = n ln2 + r, polynomial in r, scale by 2^n built in the exponent
 * field (as 2^(n-1) * 2 so that n = 128 still fits). */
#define BODY_EXP(x, out)                                                                     \
    do {                                                                                     \
        VF ex_x_ = (x);                                                                         \
        VM ex_nan_ = V_CMP_UNORD(ex_x_, ex_x_);                                                       \
        VM ex_big_ = V_CMP_GT(ex_x_, V_SET1(C_EXP_HI));                                            \
        VF ex_c_ = V_MAX(V_MIN(ex_x_, V_SET1(C_EXP_HI)), V_SET1(C_EXP_LO));                        \
        VF ex_fx_ = V_ROUND(V_MUL(ex_c_, V_SET1(C_LOG2E)));                                        \
        VF ex_r_ = V_FMA(ex_fx_, V_SET1(-C_LN2_HI), ex_c_);                                           \
        ex_r_ = V_FMA(ex_fx_, V_SET1(-C_LN2_LO), ex_r_);                                              \
        VF ex_p_ = V_SET1(1.9875691500E-4f);                                                    \
        ex_p_ = V_FMA(ex_p_, ex_r_, V_SET1(1.3981999507E-3f));                                        \
        ex_p_ = V_FMA(ex_p_, ex_r_, V_SET1(8.3334519073E-3f));                                        \
        ex_p_ = V_FMA(ex_p_, ex_r_, V_SET1(4.1665795894E-2f));                                        \
        ex_p_ = V_FMA(ex_p_, ex_r_, V_SET1(1.6666665459E-1f));                                        \
        ex_p_ = V_FMA(ex_p_, ex_r_, V_SET1(5.0000001201E-1f));                                        \
        ex_p_ = V_FMA(ex_p_, V_MUL(ex_r_, ex_r_), V_ADD(ex_r_, V_SET1(1.0f)));                              \
        VI ex_n_ = V_CVT_I(ex_fx_);                                                                \
        VF ex_s_ = V_CAST_IF(V_I_SLLI(V_I_ADD(ex_n_, V_I_SET1(126)), 23));                         \
        VF ex_y_ = V_MUL(V_MUL(ex_p_, ex_s_), V_SET1(2.0f));                                          \
        ex_y_ = V_SEL(ex_big_, ex_y_, V_SET1(INFINITY));                                              \
        (out) = V_SEL(ex_nan_, ex_y_, ex_x_);                                                         \
    } while (0)

/* log(x): x = m 2^e with m in [sqrt(1/2), sqrt(2)), polynomial in m - 1. */
#define BODY_LOG(x, out)                                                                     \
    do {                                                                                     \
        VF lg_x_ = (x);                                                                         \
        VM lg_den_ = V_CMP_LT(lg_x_, V_SET1(1.17549435e-38f));                                     \
        VF lg_xs_ = V_SEL(lg_den_, lg_x_, V_MUL(lg_x_, V_SET1(8388608.0f)));                             \
        VF lg_eadj_ = V_SEL(lg_den_, V_SET1(0.0f), V_SET1(-23.0f));                                \
        VI lg_xi_ = V_CAST_FI(lg_xs_);                                                             \
        VF lg_e_ = V_ADD(V_I2F(V_I_SUB(V_I_SRLI(lg_xi_, 23), V_I_SET1(126))), lg_eadj_);               \
        VF lg_m_ = V_CAST_IF(V_I_OR(V_I_AND(lg_xi_, V_I_SET1(0x007fffff)), V_I_SET1(0x3f000000))); \
        VM lg_lo_ = V_CMP_LT(lg_m_, V_SET1(C_SQRTHF));                                             \
        lg_e_ = V_SEL(lg_lo_, lg_e_, V_SUB(lg_e_, V_SET1(1.0f)));                                        \
        lg_m_ = V_SUB(V_SEL(lg_lo_, lg_m_, V_ADD(lg_m_, lg_m_)), V_SET1(1.0f));                             \
        VF lg_z_ = V_MUL(lg_m_, lg_m_);                                                               \
        VF lg_p_ = V_SET1(7.0376836292E-2f);                                                    \
        lg_p_ = V_FMA(lg_p_, lg_m_, V_SET1(-1.1514610310E-1f));                                       \
        lg_p_ = V_FMA(lg_p_, lg_m_, V_SET1(1.1676998740E-1f));                                        \
        lg_p_ = V_FMA(lg_p_, lg_m_, V_SET1(-1.2420140846E-1f));                                       \
        lg_p_ = V_FMA(lg_p_, lg_m_, V_SET1(1.4249322787E-1f));                                        \
        lg_p_ = V_FMA(lg_p_, lg_m_, V_SET1(-1.6668057665E-1f));                                       \
        lg_p_ = V_FMA(lg_p_, lg_m_, V_SET1(2.0000714765E-1f));                                        \
        lg_p_ = V_FMA(lg_p_, lg_m_, V_SET1(-2.4999993993E-1f));                                       \
        lg_p_ = V_FMA(lg_p_, lg_m_, V_SET1(3.3333331174E-1f));                                        \
        VF lg_y_ = V_MUL(V_MUL(lg_p_, lg_m_), lg_z_);                                                    \
        lg_y_ = V_FMA(lg_e_, V_SET1(C_LN2_LO), lg_y_);                                                \
        lg_y_ = V_FMA(lg_z_, V_SET1(-0.5f), lg_y_);                                                   \
        lg_y_ = V_ADD(lg_m_, lg_y_);                                                                  \
        lg_y_ = V_FMA(lg_e_, V_SET1(C_LN2_HI), lg_y_);                                                \
        lg_y_ = V_SEL(V_CMP_EQ(lg_x_, V_SET1(0.0f)), lg_y_, V_SET1(-INFINITY));                       \
        lg_y_ = V_SEL(V_CMP_LT(lg_x_, V_SET1(0.0f)), lg_y_, V_SET1(NAN));                             \
        lg_y_ = V_SEL(V_CMP_EQ(lg_x_, V_SET1(INFINITY)), lg_y_, lg_x_);                                  \
        (out) = V_SEL(V_CMP_UNORD(lg_x_, lg_x_), lg_y_, lg_x_);                                          \
    } while (0)

/* tanh: odd polynomial for |x| <= 0.625, else 1 - 2 / (exp(2|x|) + 1) with the sign put back. */
#define BODY_TANH(x, out)                                                                    \
    do {                                                                                     \
        VF th_x_ = (x);                                                                         \
        VF th_ax_ = V_ABS(th_x_);                                                                  \
        VF th_e_;                                                                               \
        BODY_EXP(V_MIN(V_ADD(th_ax_, th_ax_), V_SET1(18.0f)), th_e_);                                                       \
        VF th_big_ = V_SUB(V_SET1(1.0f), V_MUL(V_SET1(2.0f), V_RCP(V_ADD(th_e_, V_SET1(1.0f)))));         \
        th_big_ = V_OR(th_big_, V_AND(th_x_, V_SET1(-0.0f)));                                         \
        VF th_z_ = V_MUL(th_x_, th_x_);                                                               \
        VF th_p_ = V_SET1(-5.70498872745E-3f);                                                  \
        th_p_ = V_FMA(th_p_, th_z_, V_SET1(2.06390887954E-2f));                                       \
        th_p_ = V_FMA(th_p_, th_z_, V_SET1(-5.37397155531E-2f));                                      \
        th_p_ = V_FMA(th_p_, th_z_, V_SET1(1.33314422036E-1f));                                       \
        th_p_ = V_FMA(th_p_, th_z_, V_SET1(-3.33332819422E-1f));                                      \
        VF th_sm_ = V_FMA(V_MUL(th_p_, th_z_), th_x_, th_x_);                                               \
        (out) = V_SEL(V_CMP_GT(th_ax_, V_SET1(0.625f)), th_sm_, th_big_);                             \
    } while (0)

#define BODY_SIGMOID(x, out)                                                                 \
    do {                                                                                     \
        VF sg_e_;                                                                               \
        BODY_EXP(V_MAX(V_MIN(V_SUB(V_SET1(0.0f), (x)), V_SET1(87.0f)), V_SET1(-87.0f)), sg_e_);                                              \
        (out) = V_SEL(V_CMP_UNORD((x), (x)), V_RCP(V_ADD(V_SET1(1.0f), sg_e_)), (x));                                \
    } while (0)

/* erf: Taylor series for |x| < 0.5, Abramowitz-Stegun 7.1.26 beyond (abs error 1.5e-7). */
#define BODY_ERF(x, out)                                                                     \
    do {                                                                                     \
        VF ef_x_ = (x);                                                                         \
        VF ef_ax_ = V_MIN(V_ABS(ef_x_), V_SET1(10.0f));                                            \
        VF ef_z_ = V_MUL(ef_x_, ef_x_);                                                               \
        VF ef_q_ = V_SET1(-1.0f / 1320.0f);                                                     \
        ef_q_ = V_FMA(ef_q_, ef_z_, V_SET1(1.0f / 216.0f));                                           \
        ef_q_ = V_FMA(ef_q_, ef_z_, V_SET1(-1.0f / 42.0f));                                           \
        ef_q_ = V_FMA(ef_q_, ef_z_, V_SET1(1.0f / 10.0f));                                            \
        ef_q_ = V_FMA(ef_q_, ef_z_, V_SET1(-1.0f / 3.0f));                                            \
        ef_q_ = V_FMA(ef_q_, ef_z_, V_SET1(1.0f));                                                    \
        VF ef_small_ = V_MUL(V_MUL(ef_q_, ef_x_), V_SET1(1.12837916709551257f));                      \
        VF ef_t_ = V_RCP(V_FMA(ef_ax_, V_SET1(0.3275911f), V_SET1(1.0f)));           \
        VF ef_p_ = V_SET1(1.061405429f);                                                        \
        ef_p_ = V_FMA(ef_p_, ef_t_, V_SET1(-1.453152027f));                                           \
        ef_p_ = V_FMA(ef_p_, ef_t_, V_SET1(1.421413741f));                                            \
        ef_p_ = V_FMA(ef_p_, ef_t_, V_SET1(-0.284496736f));                                           \
        ef_p_ = V_FMA(ef_p_, ef_t_, V_SET1(0.254829592f));                                            \
        ef_p_ = V_MUL(ef_p_, ef_t_);                                                                  \
        VF ef_e_;                                                                               \
        BODY_EXP(V_SUB(V_SET1(0.0f), V_MUL(ef_ax_, ef_ax_)), ef_e_);                                  \
        VF ef_big_ = V_SUB(V_SET1(1.0f), V_MUL(ef_p_, ef_e_));                                        \
        ef_big_ = V_OR(ef_big_, V_AND(ef_x_, V_SET1(-0.0f)));                                         \
        VF ef_y_ = V_SEL(V_CMP_LT(V_ABS(ef_x_), V_SET1(0.5f)), ef_big_, ef_small_);                      \
        (out) = V_SEL(V_CMP_UNORD(ef_x_, ef_x_), ef_y_, ef_x_);                                          \
    } while (0)

/* ---- loop drivers: whole vectors, then the tail through a padded local block ---------------- */
#define DEFINE_MAP(NAME, BODY)                                                               \
    static V_TARGET void NAME(const float *x, float *y, int64_t n) {                         \
        int64_t i = 0;                                                                       \
        for (; i + V_W <= n; i += V_W) {                                                     \
            VF mp_v_ = V_LOAD(x + i), mp_r_;                                                       \
            BODY(mp_v_, mp_r_);                                                                    \
            V_STORE(y + i, mp_r_);                                                              \
        }                                                                                    \
        if (i < n) {                                                                         \
            float mp_buf_[V_W] = {0};                                                           \
            memcpy(mp_buf_, x + i, (size_t)(n - i) * sizeof(float));                            \
            VF mp_v_ = V_LOAD(mp_buf_), mp_r_;                                                        \
            BODY(mp_v_, mp_r_);                                                                    \
            V_STORE(mp_buf_, mp_r_);                                                               \
            memcpy(y + i, mp_buf_, (size_t)(n - i) * sizeof(float));                            \
        }                                                                                    \
    }

#define BODY_SWISH(x, out)                                                                   \
    do {                                                                                     \
        VF sw_xx_ = (x), sw_s_;                                                                    \
        BODY_SIGMOID(V_MUL(sw_xx_, V_SET1(alpha)), sw_s_);                                         \
        (out) = V_MUL(sw_xx_, sw_s_);                                                              \
    } while (0)

#define BODY_GELU(x, out)                                                                    \
    do {                                                                                     \
        VF gl_xx_ = (x), gl_e2_;                                                                   \
        BODY_ERF(V_MUL(gl_xx_, V_SET1(0.70710678118654752f)), gl_e2_);                             \
        (out) = V_MUL(V_MUL(gl_xx_, V_SET1(0.5f)), V_ADD(V_SET1(1.0f), gl_e2_));                   \
    } while (0)

#define BODY_GELU_TANH(x, out)                                                               \
    do {                                                                                     \
        VF gt_xx_ = (x), gt_t2_;                                                                   \
        VF gt_in_ = V_MUL(V_FMA(V_MUL(V_MUL(gt_xx_, gt_xx_), gt_xx_), V_SET1(0.044715f), gt_xx_),            \
                       V_SET1(0.79788456080286536f));                                        \
        BODY_TANH(gt_in_, gt_t2_);                                                                 \
        (out) = V_MUL(V_MUL(gt_xx_, V_SET1(0.5f)), V_ADD(V_SET1(1.0f), gt_t2_));                   \
    } while (0)

/* softplus(x) = max(x, 0) + log(1 + exp(-|x|)) */
#define BODY_SOFTPLUS(x, out)                                                                \
    do {                                                                                     \
        VF sp_xx_ = (x), sp_e3_, sp_l3_;                                                              \
        BODY_EXP(V_SUB(V_SET1(0.0f), V_ABS(sp_xx_)), sp_e3_);                                      \
        BODY_LOG(V_ADD(V_SET1(1.0f), sp_e3_), sp_l3_);                                  \
        /* log1p(e) = log(u) e / (u - 1) with u = 1 + e rounded: exact-ish for tiny e */      \
        VF sp_d_ = V_SUB(V_ADD(V_SET1(1.0f), sp_e3_), V_SET1(1.0f));                         \
        VF sp_q_ = V_MUL(sp_l3_, V_DIV(sp_e3_, V_MAX(sp_d_, V_SET1(1e-30f))));                \
        sp_l3_ = V_SEL(V_CMP_EQ(sp_d_, V_SET1(0.0f)), sp_q_, sp_e3_);                                             \
        VF sp_r3_ = V_ADD(V_MAX(sp_xx_, V_SET1(0.0f)), sp_l3_);                                       \
        (out) = V_SEL(V_CMP_UNORD(sp_xx_, sp_xx_), sp_r3_, sp_xx_);                                      \
    } while (0)

#define DEFINE_ALL(SUFFIX)                                                                   \
    DEFINE_MAP(exp_##SUFFIX, BODY_EXP)                                                       \
    DEFINE_MAP(log_##SUFFIX, BODY_LOG)                                                       \
    DEFINE_MAP(tanh_##SUFFIX, BODY_TANH)                                                     \
    DEFINE_MAP(sigmoid_##SUFFIX, BODY_SIGMOID)                                               \
    DEFINE_MAP(erf_##SUFFIX, BODY_ERF)                                                       \
    DEFINE_MAP(gelu_##SUFFIX, BODY_GELU)                                                     \
    DEFINE_MAP(gelu_tanh_##SUFFIX, BODY_GELU_TANH)                                           \
    DEFINE_MAP(softplus_##SUFFIX, BODY_SOFTPLUS)                                             \
    static V_TARGET void swish_##SUFFIX(const float *x, float *y, int64_t n, float alpha) {  \
        int64_t i = 0;                                                                       \
        for (; i + V_W <= n; i += V_W) {                                                     \
            VF mp_v_ = V_LOAD(x + i), mp_r_;                                                       \
            BODY_SWISH(mp_v_, mp_r_);                                                              \
            V_STORE(y + i, mp_r_);                                                              \
        }                                                                                    \
        if (i < n) {                                                                         \
            float mp_buf_[V_W] = {0};                                                           \
            memcpy(mp_buf_, x + i, (size_t)(n - i) * sizeof(float));                            \
            VF mp_v_ = V_LOAD(mp_buf_), mp_r_;                                                        \
            BODY_SWISH(mp_v_, mp_r_);                                                              \
            V_STORE(mp_buf_, mp_r_);                                                               \
            memcpy(y + i, mp_buf_, (size_t)(n - i) * sizeof(float));                            \
        }                                                                                    \
    }

#if IFD_VM_X86
/* ---- AVX2 + FMA ----------------------------------------------------------------------------- */
#define V_TARGET __attribute__((target("avx2,fma")))
#define V_W 8
#define VF __m256
#define VI __m256i
#define VM __m256
#define V_LOAD _mm256_loadu_ps
#define V_STORE _mm256_storeu_ps
#define V_SET1 _mm256_set1_ps
#define V_ADD _mm256_add_ps
#define V_SUB _mm256_sub_ps
#define V_MUL _mm256_mul_ps
#define V_DIV _mm256_div_ps
/* 1/a for finite a > 0: estimate plus one Newton step (~1 ulp), much cheaper than a divide */
#define V_RCP(a) vm_rcp_avx2(a)
#define V_MIN _mm256_min_ps
#define V_MAX _mm256_max_ps
#define V_FMA _mm256_fmadd_ps
#define V_AND _mm256_and_ps
#define V_OR _mm256_or_ps
#define V_ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (a))
#define V_CMP_LT(a, b) _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define V_CMP_GT(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define V_CMP_EQ(a, b) _mm256_cmp_ps((a), (b), _CMP_EQ_OQ)
#define V_CMP_UNORD(a, b) _mm256_cmp_ps((a), (b), _CMP_UNORD_Q)
#define V_SEL(m, a, b) _mm256_blendv_ps((a), (b), (m)) /* m ? b : a */
#define V_ROUND(a) _mm256_round_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_CVT_I _mm256_cvtps_epi32
#define V_I2F _mm256_cvtepi32_ps
#define V_CAST_IF _mm256_castsi256_ps
#define V_CAST_FI _mm256_castps_si256
#define V_I_ADD _mm256_add_epi32
#define V_I_SUB _mm256_sub_epi32
#define V_I_AND _mm256_and_si256
#define V_I_OR _mm256_or_si256
#define V_I_SLLI _mm256_slli_epi32
#define V_I_SRLI _mm256_srli_epi32
#define V_I_SET1 _mm256_set1_epi32
static inline __attribute__((target("avx2,fma"))) __m256 vm_rcp_avx2(__m256 a) {
    __m256 r = _mm256_rcp_ps(a);
    return _mm256_fmadd_ps(r, _mm256_fnmadd_ps(a, r, _mm256_set1_ps(1.0f)), r);
}
DEFINE_ALL(avx2)
#undef V_TARGET
#undef V_W
#undef VF
#undef VI
#undef VM
#undef V_LOAD
#undef V_STORE
#undef V_SET1
#undef V_ADD
#undef V_SUB
#undef V_MUL
#undef V_DIV
#undef V_RCP
#undef V_MIN
#undef V_MAX
#undef V_FMA
#undef V_AND
#undef V_OR
#undef V_ABS
#undef V_CMP_LT
#undef V_CMP_GT
#undef V_CMP_EQ
#undef V_CMP_UNORD
#undef V_SEL
#undef V_ROUND
#undef V_CVT_I
#undef V_I2F
#undef V_CAST_IF
#undef V_CAST_FI
#undef V_I_ADD
#undef V_I_SUB
#undef V_I_AND
#undef V_I_OR
#undef V_I_SLLI
#undef V_I_SRLI
#undef V_I_SET1

/* ---- AVX-512F --------------------------------------------------------------------------------- */
#define V_TARGET __attribute__((target("avx512f")))
#define V_W 16
#define VF __m512
#define VI __m512i
#define VM __mmask16
#define V_LOAD _mm512_loadu_ps
#define V_STORE _mm512_storeu_ps
#define V_SET1 _mm512_set1_ps
#define V_ADD _mm512_add_ps
#define V_SUB _mm512_sub_ps
#define V_MUL _mm512_mul_ps
#define V_DIV _mm512_div_ps
#define V_RCP(a) vm_rcp_avx512(a)
#define V_MIN _mm512_min_ps
#define V_MAX _mm512_max_ps
#define V_FMA _mm512_fmadd_ps
#define V_AND(a, b)                                                                          \
    _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)))
#define V_OR(a, b)                                                                           \
    _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)))
#define V_ABS(a)                                                                             \
    _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)))
#define V_CMP_LT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ)
#define V_CMP_GT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)
#define V_CMP_EQ(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ)
#define V_CMP_UNORD(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_UNORD_Q)
#define V_SEL(m, a, b) _mm512_mask_blend_ps((m), (a), (b))
#define V_ROUND(a) _mm512_roundscale_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_CVT_I _mm512_cvtps_epi32
#define V_I2F _mm512_cvtepi32_ps
#define V_CAST_IF _mm512_castsi512_ps
#define V_CAST_FI _mm512_castps_si512
#define V_I_ADD _mm512_add_epi32
#define V_I_SUB _mm512_sub_epi32
#define V_I_AND _mm512_and_si512
#define V_I_OR _mm512_or_si512
#define V_I_SLLI _mm512_slli_epi32
#define V_I_SRLI _mm512_srli_epi32
#define V_I_SET1 _mm512_set1_epi32
static inline __attribute__((target("avx512f"))) __m512 vm_rcp_avx512(__m512 a) {
    __m512 r = _mm512_rcp14_ps(a);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(a, r, _mm512_set1_ps(1.0f)), r);
}
DEFINE_ALL(avx512)
#endif /* IFD_VM_X86 */

/* ---- public entry points ------------------------------------------------------------------- */

static float gelu_ref(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
static float gelu_tanh_ref(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static float softplus_ref(float x) {
    if (isnan(x)) return x;
    return (x > 0 ? x : 0.0f) + log1pf(expf(-fabsf(x)));
}

#if IFD_VM_X86
#define VM_DISPATCH(name, scalar_expr)                                                       \
    void ifd_vec_##name(const float *x, float *y, int64_t n) {                               \
        int lv = vm_level();                                                                 \
        if (lv == VM_AVX512) { name##_avx512(x, y, n); return; }                             \
        if (lv == VM_AVX2) { name##_avx2(x, y, n); return; }                                 \
        for (int64_t i = 0; i < n; i++) { float v = x[i]; y[i] = (scalar_expr); }            \
    }
#else
#define VM_DISPATCH(name, scalar_expr)                                                       \
    void ifd_vec_##name(const float *x, float *y, int64_t n) {                               \
        for (int64_t i = 0; i < n; i++) { float v = x[i]; y[i] = (scalar_expr); }            \
    }
#endif

VM_DISPATCH(exp, expf(v))
VM_DISPATCH(log, logf(v))
VM_DISPATCH(tanh, tanhf(v))
VM_DISPATCH(sigmoid, 1.0f / (1.0f + expf(-v)))
VM_DISPATCH(erf, erff(v))
VM_DISPATCH(gelu, gelu_ref(v))
VM_DISPATCH(gelu_tanh, gelu_tanh_ref(v))
VM_DISPATCH(softplus, softplus_ref(v))

void ifd_vec_swish(const float *x, float *y, int64_t n, float alpha) {
#if IFD_VM_X86
    int lv = vm_level();
    if (lv == VM_AVX512) { swish_avx512(x, y, n, alpha); return; }
    if (lv == VM_AVX2) { swish_avx2(x, y, n, alpha); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-alpha * x[i]));
}

/* ---- half conversions --------------------------------------------------------------------- */

#if IFD_VM_X86
/* Every AVX2 CPU has F16C; clang cannot test for it by name. */
__attribute__((target("avx2,f16c"))) static void f16_to_f32_f16c(const uint16_t *x, float *y,
                                                                  int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = ifd_fp16_to_f32(x[i]);
}
__attribute__((target("avx2,f16c"))) static void f32_to_f16_f16c(const float *x, uint16_t *y,
                                                                  int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = ifd_f32_to_fp16(x[i]);
}
#endif

void ifd_vec_f16_to_f32(const uint16_t *x, float *y, int64_t n) {
#if IFD_VM_X86
    if (vm_level() >= VM_AVX2) { f16_to_f32_f16c(x, y, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = ifd_fp16_to_f32(x[i]);
}

void ifd_vec_f32_to_f16(const float *x, uint16_t *y, int64_t n) {
#if IFD_VM_X86
    if (vm_level() >= VM_AVX2) { f32_to_f16_f16c(x, y, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = ifd_f32_to_fp16(x[i]);
}

IFD_AUTOVEC void ifd_vec_bf16_to_f32(const uint16_t *restrict x, float *restrict y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)x[i] << 16;
        float f;
        memcpy(&f, &b, 4);
        y[i] = f;
    }
}

IFD_AUTOVEC void ifd_vec_f32_to_bf16(const float *restrict x, uint16_t *restrict y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], 4);
        uint32_t r = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
        y[i] = (uint16_t)((b & 0x7fffffffu) > 0x7f800000u ? (b >> 16) | 0x40u : r);
    }
}

/* ---- map with conversion and threads ---------------------------------------------------------- */

typedef struct map_job {
    ifd_dtype dtype;
    const void *x;
    void *y;
    ifd_vec_f32_fn fn;
    const void *param;
} map_job;

enum { MAP_BLOCK = 1024 };

static void map_task(void *arg, int64_t begin, int64_t end) {
    const map_job *j = arg;
    if (j->dtype == IFD_DTYPE_FLOAT) {
        j->fn((const float *)j->x + begin, (float *)j->y + begin, end - begin, j->param);
        return;
    }
    float buf[MAP_BLOCK];
    const uint16_t *x = j->x;
    uint16_t *y = j->y;
    for (int64_t i = begin; i < end; i += MAP_BLOCK) {
        int64_t m = IFD_MIN((int64_t)MAP_BLOCK, end - i);
        if (j->dtype == IFD_DTYPE_FLOAT16)
            ifd_vec_f16_to_f32(x + i, buf, m);
        else
            ifd_vec_bf16_to_f32(x + i, buf, m);
        j->fn(buf, buf, m, j->param);
        if (j->dtype == IFD_DTYPE_FLOAT16)
            ifd_vec_f32_to_f16(buf, y + i, m);
        else
            ifd_vec_f32_to_bf16(buf, y + i, m);
    }
}

bool ifd_vec_map(ifd_thread_pool *pool, ifd_dtype dtype, const void *x, void *y, int64_t n,
                 ifd_vec_f32_fn fn, const void *param, int64_t min_chunk) {
    if (dtype != IFD_DTYPE_FLOAT && dtype != IFD_DTYPE_FLOAT16 && dtype != IFD_DTYPE_BFLOAT16)
        return false;
    if (n <= 0) return true;
    map_job j = {dtype, x, y, fn, param};
    ifd_parallel_for(pool, n, min_chunk < 1 ? 1 : min_chunk, map_task, &j);
    return true;
}
