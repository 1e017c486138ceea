/* int8 kernel tests: every qgemm path this CPU has (amx, avx512vnni, avx2, scalar; a path
 * the CPU or OS lacks is skipped) against a scalar reference over odd shapes, signedness,
 * zero points (none, per tensor, per row/column), packed, raw and producer-filled (b_fill)
 * operands, the fused epilogues (int32, float with scales and bias, float with GELU, uint8
 * requantization with relu/clip clamps) at 1 and 2 threads; the saturation extremes; and,
 * given a folder of models from tests/quant_models.py, the fused graph (optimize=1) against
 * the unfused one (optimize=0), the small models on every path.
 *     test_qkernels [MODELS_DIR]        (MODELS_DIR: the output of tests/quant_models.py) */
#include "kernels/qgemm.h"
#include "inferd/inferd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int g_pass, g_fail;
static uint64_t g_rng = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

static void report(bool ok, const char *name, const char *why) {
    if (ok) {
        g_pass++;
        printf("PASS %s\n", name);
    } else {
        g_fail++;
        printf("FAIL %s: %s\n", name, why);
    }
}

typedef struct qcase {
    int64_t m, n, k;
    bool a_signed, b_signed;
    int za, zb;     /* zero point counts: 0, 1, or 2 meaning per row / per column */
    int pack;       /* 0 raw, 1 A packed, 2 B packed, 3 B from a producer (b_fill) */
    int out;        /* ifd_qgemm_out */
    int act;        /* uint8/float: 0 none, 1 relu, 2 clip; float: 3 gelu */
    int extreme;    /* 0 random; 1 A max (255 / 127), B min; 2 A max, B max */
    int threads;
} qcase;

static uint8_t val(bool sgn, int extreme, bool is_a) {
    if (extreme == 1) return is_a ? (sgn ? 127 : 255) : (sgn ? (uint8_t)-128 : 0);
    if (extreme == 2) return is_a ? (sgn ? (uint8_t)-128 : 255) : (sgn ? 127 : 255);
    return (uint8_t)rnd();
}

typedef struct {
    const uint8_t *b;
    int64_t ldb, k, n;
    bool bad; /* a piece outside B was asked for */
} fill_ctx;

/* The producer of the b_fill tests: copies from the raw B. */
static void fill_from(void *ctx, int64_t k0, int nk, int64_t n0, int nn, uint8_t *dst, int64_t ld) {
    fill_ctx *f = ctx;
    if (k0 < 0 || nk < 1 || k0 + nk > f->k || n0 < 0 || nn < 1 || n0 + nn > f->n) {
        f->bad = true;
        return;
    }
    for (int r = 0; r < nk; r++) memcpy(dst + r * ld, f->b + (k0 + r) * f->ldb + n0, (size_t)nn);
}

static bool check_case(const char *path, const qcase *t, ifd_thread_pool *pool, char *why,
                       size_t whylen) {
    int64_t m = t->m, n = t->n, k = t->k, lda = k + 3, ldb = n + 5, ldc = n + 2;
    uint8_t *a = malloc((size_t)(m * lda + 1)), *b = malloc((size_t)(k * ldb + 1));
    int32_t *za = malloc(sizeof(int32_t) * (size_t)(m + 1)), *zb = malloc(sizeof(int32_t) * (size_t)(n + 1));
    float *rs = malloc(sizeof(float) * (size_t)(m + 1)), *cs = malloc(sizeof(float) * (size_t)(n + 1));
    float *rb = malloc(sizeof(float) * (size_t)(m + 1)), *cb = malloc(sizeof(float) * (size_t)(n + 1));
    void *c = malloc((size_t)(m * ldc + 1) * 4);
    bool ok = true;
    ifd_qgemm_packed *pa = NULL, *pb = NULL;
    void *ws = NULL;
    for (int64_t i = 0; i < m * lda; i++) a[i] = val(t->a_signed, t->extreme, true);
    for (int64_t i = 0; i < k * ldb; i++) b[i] = val(t->b_signed, t->extreme, false);
    for (int64_t i = 0; i < m; i++) {
        za[i] = t->extreme ? (t->a_signed ? -128 : 0) : (t->a_signed ? (int8_t)rnd() : (uint8_t)rnd());
        rs[i] = 0.001f + (float)(rnd() % 1000) * 1e-5f;
        rb[i] = (float)((int)(rnd() % 200) - 100) * 0.0371f; /* off a grid: no exact .5 ties */
    }
    for (int64_t i = 0; i < n; i++) {
        zb[i] = t->extreme ? 0 : (t->b_signed ? (int8_t)rnd() : (uint8_t)rnd());
        cs[i] = 0.5f + (float)(rnd() % 1000) * 1e-3f;
        cb[i] = (float)((int)(rnd() % 200) - 100) * 0.0293f;
    }
    int64_t nza = t->za == 2 ? m : t->za, nzb = t->zb == 2 ? n : t->zb;
    ifd_qgemm_epilogue ep = {(ifd_qgemm_out)t->out, 0.75f, rs, cs, rb, cb, -INFINITY, INFINITY,
                             t->out == IFD_QGEMM_OUT_UINT8 ? 37.0f : 0.0f, t->act == 3};
    if (t->act == 1) ep.lo = 0.0f;
    if (t->act == 2) {
        ep.lo = -20.0f;
        ep.hi = 60.0f;
    }
    if (t->out == IFD_QGEMM_OUT_UINT8) ep.scale = 0.002f;
    ifd_qgemm_args args = {.m = m, .n = n, .k = k, .a = a, .lda = lda, .a_signed = t->a_signed,
                           .a_zero = nza ? za : NULL, .a_zero_count = nza, .b = b, .ldb = ldb,
                           .b_signed = t->b_signed, .b_zero = nzb ? zb : NULL,
                           .b_zero_count = nzb, .c = c, .ldc = ldc,
                           .ep = t->out ? &ep : NULL};
    if (t->pack == 1 && ifd_qgemm_pack(false, m, k, a, lda, t->a_signed, args.a_zero, nza, &pa)) {
        snprintf(why, whylen, "pack A failed: %s", ifd_last_error());
        ok = false;
        goto out;
    }
    if (t->pack == 2 && ifd_qgemm_pack(true, k, n, b, ldb, t->b_signed, args.b_zero, nzb, &pb)) {
        snprintf(why, whylen, "pack B failed: %s", ifd_last_error());
        ok = false;
        goto out;
    }
    args.pa = pa;
    args.pb = pb;
    fill_ctx fc = {b, ldb, k, n, false};
    if (t->pack == 3) {
        args.b = NULL;
        args.b_fill = fill_from;
        args.b_fill_ctx = &fc;
    }
    size_t bytes = 0;
    if (!ifd_qgemm_ex_workspace_size(&args, &bytes) || !(ws = aligned_alloc(64, (bytes + 63) & ~(size_t)63))) {
        snprintf(why, whylen, "workspace");
        ok = false;
        goto out;
    }
    ifd_qgemm_ex(&args, ws, pool);
    if (fc.bad) {
        snprintf(why, whylen, "b_fill was asked for a piece outside B");
        ok = false;
        goto out;
    }
    int64_t bad = 0;
    for (int64_t i = 0; i < m && ok; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t acc = 0;
            int32_t zav = nza ? za[nza == 1 ? 0 : i] : 0, zbv = nzb ? zb[nzb == 1 ? 0 : j] : 0;
            for (int64_t q = 0; q < k; q++) {
                int32_t av = t->a_signed ? (int8_t)a[i * lda + q] : a[i * lda + q];
                int32_t bv = t->b_signed ? (int8_t)b[q * ldb + j] : b[q * ldb + j];
                acc += (int64_t)(av - zav) * (bv - zbv);
            }
            int32_t acc32 = (int32_t)(uint32_t)(uint64_t)acc;
            if (t->out == IFD_QGEMM_OUT_INT32) {
                int32_t got = ((int32_t *)c)[i * ldc + j];
                if (got != acc32) {
                    snprintf(why, whylen, "C[%lld][%lld] = %d, want %d", (long long)i, (long long)j, got, acc32);
                    ok = false;
                    break;
                }
                continue;
            }
            double v = (double)acc32 * ep.scale * rs[i] * cs[j] + rb[i] + cb[j];
            v = v > ep.lo ? v : ep.lo;
            v = v < ep.hi ? v : ep.hi;
            if (t->act == 3) v = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
            if (t->out == IFD_QGEMM_OUT_FLOAT) {
                float got = ((float *)c)[i * ldc + j];
                if (fabs(got - v) > 1e-4 * (1 + fabs(v))) {
                    snprintf(why, whylen, "C[%lld][%lld] = %g, want %g", (long long)i, (long long)j, got, v);
                    ok = false;
                    break;
                }
            } else {
                double q = nearbyint(v + ep.zero_point);
                q = q < 0 ? 0 : q > 255 ? 255 : q;
                int got = ((uint8_t *)c)[i * ldc + j];
                /* float vs double: a value at .5 may round either way; count those */
                if (fabs(got - q) > 1) {
                    snprintf(why, whylen, "C[%lld][%lld] = %d, want %g", (long long)i, (long long)j, got, q);
                    ok = false;
                    break;
                }
                if (got != q) bad++;
            }
        }
    if (ok && bad * 100 > m * n) {
        snprintf(why, whylen, "%lld of %lld uint8 results off by one", (long long)bad, (long long)(m * n));
        ok = false;
    }
out:
    (void)path;
    ifd_qgemm_packed_free(pa);
    ifd_qgemm_packed_free(pb);
    free(ws);
    free(a); free(b); free(za); free(zb); free(rs); free(cs); free(rb); free(cb); free(c);
    return ok;
}

static void kernel_tests(void) {
    static const char *paths[] = {"amx", "avx512vnni", "avx2", "scalar"};
    ifd_thread_pool *pools[2] = {NULL, NULL};
    if (ifd_thread_pool_create(1, &pools[0]) || ifd_thread_pool_create(2, &pools[1])) {
        report(false, "thread pools", ifd_last_error());
        return;
    }
    static const int64_t shapes[][3] = {{1, 1, 1}, {7, 33, 5}, {8, 32, 4}, {13, 70, 67},
                                        {64, 96, 256}, {3, 130, 1}, {33, 17, 129}, {5, 9, 0},
                                        {40, 300, 70}};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (!ifd_qgemm_force_kernel(paths[p])) {
            printf("# %s: not on this CPU, skipped\n", paths[p]);
            continue;
        }
        int run = 0, failed = 0;
        char first[512] = "";
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int combo = 0; combo < 24; combo++) {
                qcase t = {shapes[s][0], shapes[s][1], shapes[s][2], combo & 1, (combo >> 1) & 1,
                           combo % 3, (combo / 3) % 3, (combo / 6) % 4, combo % 3,
                           (combo / 2) % 3, 0, 1 + (combo & 1)};
                char why[256] = "";
                run++;
                if (!check_case(paths[p], &t, pools[t.threads - 1], why, sizeof why)) {
                    if (!failed++)
                        snprintf(first, sizeof first, "m%lld n%lld k%lld combo %d: %s",
                                 (long long)t.m, (long long)t.n, (long long)t.k, combo, why);
                }
            }
        char name[128], why[600];
        snprintf(name, sizeof name, "qgemm_%s_random (%d cases)", paths[p], run);
        snprintf(why, sizeof why, "%d failed, first: %s", failed, first);
        report(failed == 0, name, why);
        /* the saturation extremes: A at its max, B at min / max, long K, every packing */
        failed = 0;
        first[0] = 0;
        for (int ex = 1; ex <= 2; ex++)
            for (int sg = 0; sg < 4; sg++)
                for (int pk = 0; pk < 4; pk++) {
                    qcase t = {9, 40, 2048, sg & 1, (sg >> 1) & 1, 1, 1, pk, 0, 0, ex, 1};
                    char w[256] = "";
                    if (!check_case(paths[p], &t, pools[0], w, sizeof w) && !failed++)
                        snprintf(first, sizeof first, "extreme %d signs %d pack %d: %s", ex, sg, pk, w);
                }
        snprintf(name, sizeof name, "qgemm_%s_no_saturation", paths[p]);
        snprintf(why, sizeof why, "%d failed, first: %s", failed, first);
        report(failed == 0, name, why);
        /* float output with GELU in the epilogue: every packing, odd shapes, 1 and 2 threads */
        failed = 0;
        first[0] = 0;
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
            for (int pk = 0; pk < 4; pk++) {
                qcase t = {shapes[sh][0], shapes[sh][1], shapes[sh][2], pk & 1, (pk >> 1) & 1,
                           1, pk % 3, pk, IFD_QGEMM_OUT_FLOAT, 3, 0, 1 + (pk & 1)};
                char w[256] = "";
                if (!check_case(paths[p], &t, pools[t.threads - 1], w, sizeof w) && !failed++)
                    snprintf(first, sizeof first, "m%lld n%lld k%lld pack %d: %s",
                             (long long)t.m, (long long)t.n, (long long)t.k, pk, w);
            }
        snprintf(name, sizeof name, "qgemm_%s_float_gelu", paths[p]);
        snprintf(why, sizeof why, "%d failed, first: %s", failed, first);
        report(failed == 0, name, why);
    }
    /* a packed operand from another path is refused, not misread */
    if (ifd_qgemm_force_kernel("scalar")) {
        uint8_t w[16] = {0};
        ifd_qgemm_packed *pk = NULL;
        bool made = ifd_qgemm_pack(true, 4, 4, w, 4, true, NULL, 0, &pk) == IFD_OK;
        ifd_qgemm_force_kernel(NULL);
        ifd_qgemm_args a = {.m = 2, .n = 4, .k = 5, .a = w, .lda = 5, .pb = pk};
        size_t bytes;
        report(made && !ifd_qgemm_ex_workspace_size(&a, &bytes), "qgemm_packed_shape_mismatch_refused",
               "a packed B of the wrong shape was accepted");
        ifd_qgemm_packed_free(pk);
    }
    ifd_qgemm_force_kernel(NULL);
    ifd_thread_pool_free(pools[0]);
    ifd_thread_pool_free(pools[1]);
}

/* ---- fused vs unfused on the models of tests/quant_models.py ---------------------------------- */

static ifd_status run_model(const char *dir, int optimize, int threads, size_t *nout,
                            ifd_tensor **outs) {
    char path[1024];
    ifd_model *model = NULL;
    ifd_session *s = NULL;
    ifd_tensor *ins[8] = {0};
    const char *names[8];
    char namebuf[8][256];
    int nin = 0;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    ifd_status st = ifd_model_load_file(path, &model);
    if (st) return st;
    ifd_session_options o;
    ifd_session_options_init(&o);
    o.optimize = optimize;
    o.num_threads = threads;
    if ((st = ifd_session_create(model, &o, &s))) goto out;
    for (size_t i = 0; i < ifd_session_input_count(s) && i < 8; i++) {
        ifd_io_info info;
        if ((st = ifd_session_input_info(s, i, &info))) goto out;
        snprintf(namebuf[nin], sizeof namebuf[nin], "%s", info.name);
        snprintf(path, sizeof path, "%s/input_%zu_%s.npy", dir, i, info.name);
        if ((st = ifd_npy_read(path, &ins[nin]))) goto out;
        names[nin] = namebuf[nin];
        nin++;
    }
    *nout = ifd_session_output_count(s);
    if (*nout > 8) *nout = 8;
    st = ifd_session_run(s, (size_t)nin, names, (const ifd_tensor *const *)ins, *nout, NULL, outs);
out:
    for (int i = 0; i < nin; i++) ifd_tensor_free(ins[i]);
    ifd_session_free(s);
    ifd_model_free(model);
    return st;
}

/* The kernel path forced for the model tests ("" : CPUID's choice), part of their names. */
static const char *g_model_path = "";

static void model_test(const char *root, const char *name, double max_rel, double min_cos) {
    char dir[1024], label[300], why[512];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    snprintf(label, sizeof label, "fused_vs_unfused_%s%s%s", name, g_model_path[0] ? "_" : "",
             g_model_path);
    if (stat(dir, &sb) != 0) {
        printf("# %s: no model (tests/quant_models.py), skipped\n", name);
        return;
    }
    for (int threads = 1; threads <= 2; threads++) {
        ifd_tensor *ref[8] = {0}, *got[8] = {0};
        size_t n1 = 0, n2 = 0;
        ifd_status s1 = run_model(dir, 0, threads, &n1, ref);
        const char *e1 = s1 ? ifd_last_error() : "";
        snprintf(why, sizeof why, "unfused run failed: %s", e1);
        bool ok = s1 == IFD_OK;
        ifd_status s2 = ok ? run_model(dir, 1, threads, &n2, got) : IFD_OK;
        if (ok && s2) {
            snprintf(why, sizeof why, "fused run failed: %s", ifd_last_error());
            ok = false;
        }
        for (size_t i = 0; ok && i < n1; i++) {
            if (!got[i] || ifd_tensor_count(got[i]) != ifd_tensor_count(ref[i])) {
                snprintf(why, sizeof why, "output %zu: shape differs", i);
                ok = false;
                break;
            }
            const float *x = ifd_tensor_cdata(ref[i]), *y = ifd_tensor_cdata(got[i]);
            double dot = 0, nx = 0, ny = 0, maxd = 0, maxr = 0;
            for (int64_t j = 0; j < ifd_tensor_count(ref[i]); j++) {
                dot += (double)x[j] * y[j];
                nx += (double)x[j] * x[j];
                ny += (double)y[j] * y[j];
                maxd = fmax(maxd, fabs((double)x[j] - y[j]));
                maxr = fmax(maxr, fabs((double)x[j]));
            }
            double cosv = nx && ny ? dot / sqrt(nx * ny) : (nx == ny ? 1 : 0);
            if (maxd > max_rel * (maxr + 1e-6) || cosv < min_cos) {
                snprintf(why, sizeof why, "output %zu: max |diff| %.4g (max |ref| %.4g), cosine %.6f",
                         i, maxd, maxr, cosv);
                ok = false;
            }
        }
        char l2[340];
        snprintf(l2, sizeof l2, "%s_%dthread", label, threads);
        report(ok, l2, why);
        for (int i = 0; i < 8; i++) {
            ifd_tensor_free(ref[i]);
            ifd_tensor_free(got[i]);
        }
    }
}

int main(int argc, char **argv) {
    kernel_tests();
    if (argc > 1) {
        /* the small models on every kernel path this CPU has (each path packs and fills
         * operands its own way), the golden ones on CPUID's choice */
        static const char *paths[] = {"amx", "avx512vnni", "avx2", "scalar"};
        for (int p = 0; p < 4; p++) {
            if (!ifd_qgemm_force_kernel(paths[p])) continue;
            g_model_path = paths[p];
            /* dynamic: the same integer sums and the same float steps, so near bit-exact */
            model_test(argv[1], "qmlp_dyn", 1e-5, 0.999999);
            model_test(argv[1], "qcnn_dyn", 1e-5, 0.999999);
            /* static: the requantization may round a value at .5 the other way (one step),
             * and a step propagates through the following layers */
            model_test(argv[1], "qcnn_qdq", 0.05, 0.999);
            model_test(argv[1], "qwide_qdq", 0.05, 0.999);
            /* the uint8 Add does the unfused nodes' float steps: identical results */
            model_test(argv[1], "qadd_qdq", 1e-6, 0.999999);
        }
        ifd_qgemm_force_kernel(NULL);
        g_model_path = "";
        model_test(argv[1], "bert_int8", 1e-4, 0.99999);
        model_test(argv[1], "resnet18_qdq", 0.1, 0.995);
    }
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
