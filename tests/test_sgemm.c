/* SGEMM tests: every microkernel this CPU has (avx512, avx2, scalar) against a double-precision
 * reference over odd shapes, transposes, alpha/beta, padded leading dimensions, packed B,
 * fused epilogues and 1/2 threads. `test_sgemm --bench` prints GFLOP/s instead. */
#include "kernels/sgemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_pass, g_fail;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct gcase {
    bool ta, tb;
    int64_t m, n, k;
    float alpha, beta;
    int64_t pad; /* extra leading-dimension elements */
    int packed; /* 1: B packed, 2: A packed */
    bool epilogue;
    int act; /* with epilogue: 0 none, 1 relu, 2 clip, 3 leaky relu, 4 sigmoid */
    int threads;
} gcase;

static void check(const char *kernel, const gcase *t, ifd_thread_pool *pool) {
    const int64_t m = t->m, n = t->n, k = t->k;
    const int64_t lda = (t->ta ? m : k) + t->pad, ldb = (t->tb ? k : n) + t->pad, ldc = n + t->pad;
    const int64_t arows = t->ta ? k : m, brows = t->tb ? n : k;
    float *a = malloc(sizeof(float) * (size_t)(arows * lda + 1));
    float *b = malloc(sizeof(float) * (size_t)(brows * ldb + 1));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    float *c0 = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    float *bias_col = malloc(sizeof(float) * (size_t)n), *bias_row = malloc(sizeof(float) * (size_t)m);
    for (int64_t i = 0; i < arows * lda; i++) a[i] = frand();
    for (int64_t i = 0; i < brows * ldb; i++) b[i] = frand();
    for (int64_t i = 0; i < m * ldc; i++) c[i] = t->beta == 0 ? NAN : frand();
    for (int64_t i = 0; i < n; i++) bias_col[i] = frand();
    for (int64_t i = 0; i < m; i++) bias_row[i] = frand();
    memcpy(c0, c, sizeof(float) * (size_t)(m * ldc));
    static const ifd_activation acts[] = {{IFD_ACT_NONE, 0, 0},
                                          {IFD_ACT_RELU, 0, 0},
                                          {IFD_ACT_CLIP, -0.5f, 0.7f},
                                          {IFD_ACT_LEAKY_RELU, 0.1f, 0},
                                          {IFD_ACT_SIGMOID, 0, 0}};
    ifd_sgemm_epilogue ep = {bias_col, bias_row, &acts[t->act]};
    const ifd_sgemm_epilogue *epp = t->epilogue ? &ep : NULL;
    bool ok = true;
    if (t->packed == 2) {
        ifd_sgemm_packed_a *pa = NULL;
        if (ifd_sgemm_pack_a(t->ta, m, k, a, lda, &pa) != IFD_OK) {
            ok = false;
        } else {
            ifd_sgemm_packed_a_ex(pa, t->tb, n, t->alpha, b, ldb, t->beta, c, ldc, epp, pool);
            ifd_sgemm_packed_a_free(pa);
        }
    } else if (t->packed) {
        ifd_sgemm_packed_b *pb = NULL;
        if (ifd_sgemm_pack_b(t->tb, n, k, b, ldb, &pb) != IFD_OK) {
            ok = false;
        } else {
            ifd_sgemm_packed_ex(t->ta, m, a, lda, t->alpha, pb, t->beta, c, ldc, epp, pool);
            ifd_sgemm_packed_b_free(pb);
        }
    } else {
        ifd_sgemm_ex(t->ta, t->tb, m, n, k, t->alpha, a, lda, b, ldb, t->beta, c, ldc, epp, pool);
    }
    double max_err = 0;
    for (int64_t i = 0; ok && i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (int64_t p = 0; p < k; p++) {
                double av = t->ta ? a[p * lda + i] : a[i * lda + p];
                double bv = t->tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
                mag += fabs(av * bv);
            }
            double r = t->alpha * s, cin = c0[i * ldc + j];
            if (t->beta != 0) r += t->beta * cin;
            if (t->epilogue) {
                r += bias_col[j] + bias_row[i];
                switch (t->act) {
                case 1: r = r > 0 ? r : 0; break;
                case 2: r = r < -0.5 ? -0.5 : r > 0.7 ? 0.7 : r; break;
                case 3: r = r < 0 ? 0.1 * r : r; break;
                case 4: r = 1 / (1 + exp(-r)); break;
                default: break;
                }
            }
            double tol = 2e-6 * (fabs(t->alpha) * mag + fabs(t->beta * (t->beta ? cin : 0)) + 2) + 1e-6;
            double e = fabs((double)c[i * ldc + j] - r);
            if (!(e <= tol)) {
                if (ok)
                    printf("  mismatch at [%lld,%lld]: got %g want %g\n", (long long)i,
                           (long long)j, c[i * ldc + j], r);
                ok = false;
            }
            if (e > max_err) max_err = e;
        }
    /* the padding between rows of C must be untouched */
    for (int64_t i = 0; ok && i < m; i++)
        for (int64_t j = n; j < ldc; j++)
            if (memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float)) != 0) {
                printf("  wrote padding at [%lld,%lld]\n", (long long)i, (long long)j);
                ok = false;
                break;
            }
    printf("%s %s m=%lld n=%lld k=%lld ta=%d tb=%d alpha=%g beta=%g pad=%lld packed=%d ep=%d "
           "act=%d threads=%d (max err %.2g)\n",
           ok ? "PASS" : "FAIL", kernel, (long long)m, (long long)n, (long long)k, t->ta, t->tb,
           t->alpha, t->beta, (long long)t->pad, t->packed, t->epilogue, t->act, t->threads, max_err);
    ok ? g_pass++ : g_fail++;
    free(a);
    free(b);
    free(c);
    free(c0);
    free(bias_col);
    free(bias_row);
}

static double now_clock(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now(void) { return now_clock(CLOCK_MONOTONIC); }

static void bench_one(const char *label, int packed, int64_t m, int64_t n, int64_t k,
                      ifd_thread_pool *pool) {
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(k * n));
    float *c = malloc(sizeof(float) * (size_t)(m * n));
    for (int64_t i = 0; i < m * k; i++) a[i] = frand();
    for (int64_t i = 0; i < k * n; i++) b[i] = frand();
    ifd_sgemm_packed_b *pb = NULL;
    ifd_sgemm_packed_a *pa = NULL;
    if (packed == 1 && ifd_sgemm_pack_b(false, n, k, b, n, &pb) != IFD_OK) packed = 0;
    if (packed == 2 && ifd_sgemm_pack_a(false, m, k, a, k, &pa) != IFD_OK) packed = 0;
    double best = 1e30, best_cpu = 1e30;
    for (int rep = 0; rep < 7; rep++) {
        int iters = 0;
        double t0 = now(), t1, c0 = now_clock(CLOCK_PROCESS_CPUTIME_ID);
        do {
            if (packed == 2)
                ifd_sgemm_packed_a_ex(pa, false, n, 1.0f, b, n, 0.0f, c, n, NULL, pool);
            else if (packed)
                ifd_sgemm_packed(false, m, a, k, 1.0f, pb, 0.0f, c, n, pool);
            else
                ifd_sgemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n, pool);
            iters++;
            t1 = now();
        } while (t1 - t0 < 0.05);
        double per = (t1 - t0) / iters;
        double cpu = (now_clock(CLOCK_PROCESS_CPUTIME_ID) - c0) / iters;
        if (per < best) best = per;
        if (cpu < best_cpu) best_cpu = cpu;
    }
    /* CPU-time rate: per busy core, robust to sharing the machine with other processes */
    printf("%-8s %-6s %-8s m=%-5lld n=%-5lld k=%-5lld threads=%d  %6.1f GFLOP/s wall, "
           "%6.1f GFLOP/s per busy core\n",
           ifd_sgemm_kernel_name(), label, packed == 2 ? "packedA" : packed ? "packedB" : "plain", (long long)m, (long long)n,
           (long long)k, ifd_thread_pool_size(pool), 2.0 * m * n * k / best * 1e-9,
           2.0 * m * n * k / best_cpu * 1e-9);
    ifd_sgemm_packed_b_free(pb);
    ifd_sgemm_packed_a_free(pa);
    free(a);
    free(b);
    free(c);
}

static int bench(void) {
    static const char *kernels[] = {"avx512", "avx2"};
    for (int threads = 1; threads <= 2; threads++) {
        ifd_thread_pool *pool = NULL;
        if (ifd_thread_pool_create(threads, &pool) != IFD_OK) return 1;
        for (size_t ki = 0; ki < 2; ki++) {
            if (!ifd_sgemm_force_kernel(kernels[ki])) continue;
            bench_one("square", 0, 512, 512, 512, pool);
            bench_one("square", 1, 512, 512, 512, pool);
            bench_one("conv", 0, 64, 3136, 576, pool);
            bench_one("conv", 2, 64, 3136, 576, pool);
            bench_one("conv", 0, 256, 784, 1152, pool);
            bench_one("conv", 2, 256, 784, 1152, pool);
            bench_one("fc", 1, 64, 1024, 1024, pool);
        }
        ifd_thread_pool_free(pool);
    }
    ifd_sgemm_force_kernel(NULL);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--bench")) return bench();
    static const char *kernels[] = {"avx512", "avx2", "scalar"};
    static const int64_t dims[][3] = {
        {1, 1, 1},     {1, 7, 5},     {7, 1, 5},      {1, 300, 33},  {300, 1, 33},
        {2, 3, 4},     {13, 17, 19},  {14, 32, 1},    {15, 33, 7},   {29, 63, 257},
        {6, 16, 300},  {37, 5, 129},  {101, 97, 255}, {224, 31, 9},  {225, 65, 513},
        {299, 131, 3}, {64, 300, 77}, {3, 299, 260},  {150, 150, 150}, {97, 300, 290},
        {290, 50, 300}, {300, 257, 131},
    };
    static const float ab[][2] = {{1, 0}, {0.5f, 2}, {-1.5f, 1}};
    ifd_thread_pool *pool2 = NULL;
    if (ifd_thread_pool_create(2, &pool2) != IFD_OK) {
        printf("FAIL cannot create a thread pool\n");
        return 1;
    }
    int variant = 0;
    for (size_t ki = 0; ki < IFD_ARRAY_LEN(kernels); ki++) {
        if (!ifd_sgemm_force_kernel(kernels[ki])) {
            printf("SKIP %s (CPU lacks it)\n", kernels[ki]);
            continue;
        }
        if (strcmp(ifd_sgemm_kernel_name(), kernels[ki]) != 0) {
            printf("FAIL forced %s but got %s\n", kernels[ki], ifd_sgemm_kernel_name());
            g_fail++;
        }
        for (size_t di = 0; di < IFD_ARRAY_LEN(dims); di++) {
            for (int tr = 0; tr < 4; tr++) {
                gcase t = {.ta = tr & 1, .tb = (tr >> 1) & 1, .m = dims[di][0], .n = dims[di][1],
                           .k = dims[di][2]};
                int v = variant++;
                t.alpha = ab[v % 3][0];
                t.beta = ab[v % 3][1];
                t.pad = (v % 4 == 1) ? 3 : (v % 4 == 3) ? 16 : 0;
                t.packed = (v % 5) == 2 ? 1 : (v % 5) == 4 ? 2 : 0;
                t.epilogue = (v % 3) == 1;
                t.act = (v / 3) % 5;
                t.threads = (v % 2) ? 2 : 1;
                check(kernels[ki], &t, t.threads == 2 ? pool2 : NULL);
            }
        }
        /* k == 0: C = beta * C, then the epilogue */
        gcase z = {.m = 5, .n = 9, .k = 0, .alpha = 1, .beta = 0.5f, .epilogue = true};
        check(kernels[ki], &z, NULL);
        gcase z2 = {.m = 5, .n = 9, .k = 0, .alpha = 1, .beta = 0, .packed = 1};
        check(kernels[ki], &z2, NULL);
        gcase z3 = {.m = 5, .n = 9, .k = 0, .alpha = 1, .beta = 2, .packed = 2};
        check(kernels[ki], &z3, NULL);
    }
    ifd_sgemm_force_kernel(NULL);
    ifd_thread_pool_free(pool2);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
