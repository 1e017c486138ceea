/* Sparse GEMM tests: every kernel this CPU has (avx512, avx2, scalar) against a double-precision
 * reference over odd shapes, transposes, alpha/beta, padded leading dimensions, unstructured
 * and 2:4 weights, empty columns, fused epilogues and 1/2/3 threads (each way the driver splits
 * a product: whole row blocks, or blocks cut into column pieces that share the packing).
 * `test_spgemm --bench` prints sparse vs dense SGEMM times on the BERT-style encoder's shapes. */
#include "kernels/spgemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_check.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) & 0xffff) / 32768.0f - 1.0f;
}

/* pattern: 0 unstructured with the given sparsity, 1 2:4 along k, 2 unstructured with some
 * columns entirely zero */
static void make_weight(float *b, bool tb, int64_t n, int64_t k, int64_t ldb, double sparsity,
                        int pattern) {
    for (int64_t j = 0; j < n; j++)
        for (int64_t p = 0; p < k; p++) {
            float v = frand();
            bool zero;
            if (pattern == 1) {
                /* keep positions (p % 4) in {j % 4, (j + 1) % 4} ... then drop some more */
                int e = (int)(p % 4);
                zero = !(e == (int)(j % 4) || e == (int)((j + 2) % 4)) || frand() > 0.8f;
            } else {
                zero = (frand() + 1.0f) * 0.5f < (float)sparsity || (pattern == 2 && j % 5 == 1);
            }
            b[tb ? j * ldb + p : p * ldb + j] = zero ? 0.0f : v;
        }
}

typedef struct scase {
    bool ta, tb;
    int64_t m, n, k;
    float alpha, beta;
    int64_t pad;
    double sparsity;
    int pattern;
    bool epilogue;
    int act; /* 0 none, 1 relu, 2 clip, 3 leaky relu, 4 sigmoid */
    int threads;
} scase;

static void check_case(const char *kernel, const scase *t, ifd_thread_pool *pool) {
    const int64_t m = t->m, n = t->n, k = t->k;
    const int64_t lda = (t->ta ? m : k) + t->pad, ldb = (t->tb ? k : n) + t->pad, ldc = n + t->pad;
    const int64_t arows = t->ta ? k : m, brows = t->tb ? n : k;
    float *a = malloc(sizeof(float) * (size_t)(arows * lda + 1));
    float *b = calloc((size_t)(brows * ldb + 1), sizeof(float));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    float *c0 = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    float *bias_col = malloc(sizeof(float) * (size_t)(n + 1));
    float *bias_row = malloc(sizeof(float) * (size_t)(m + 1));
    for (int64_t i = 0; i < arows * lda; i++) a[i] = frand();
    make_weight(b, t->tb, n, k, ldb, t->sparsity, t->pattern);
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
    bool ok = true;
    char why[200] = "";
    ifd_spgemm_b *sb = NULL;
    void *scratch = NULL;
    if (ifd_spgemm_pack(t->tb, n, k, b, ldb, &sb) != IFD_OK) {
        ok = false;
        snprintf(why, sizeof why, "pack: %s", ifd_last_error());
    } else {
        if (t->pattern == 1 && k % 4 == 0 && !ifd_spgemm_is_2_4(sb)) {
            ok = false;
            snprintf(why, sizeof why, "2:4 weight not packed in the 2:4 layout");
        }
        size_t bytes = ifd_spgemm_scratch_bytes(sb, m);
        scratch = bytes ? ifd_malloc_aligned(bytes) : NULL;
        ifd_spgemm_run(t->ta, m, a, lda, t->alpha, sb, t->beta, c, ldc, t->epilogue ? &ep : NULL,
                       scratch, pool);
    }
    double max_err = 0;
    for (int64_t i = 0; i < m && ok; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (int64_t p = 0; p < k; p++) {
                double x = t->ta ? a[p * lda + i] : a[i * lda + p];
                double w = t->tb ? b[j * ldb + p] : b[p * ldb + j];
                s += x * w;
                mag += fabs(x * w);
            }
            double ref = t->alpha * s;
            if (t->beta != 0) ref += t->beta * c0[i * ldc + j];
            if (t->epilogue) {
                ref += bias_col[j] + bias_row[i];
                float f = (float)ref;
                ifd_activation_apply(&acts[t->act], &f, 1);
                ref = f;
            }
            double err = fabs(c[i * ldc + j] - ref);
            double tol = 1e-5 * (fabs(t->alpha) * mag + fabs(t->beta) + 4) + 1e-6;
            if (!(err <= tol)) {
                ok = false;
                snprintf(why, sizeof why, "C[%lld][%lld] = %g, expected %g", (long long)i,
                         (long long)j, (double)c[i * ldc + j], ref);
                break;
            }
            if (err > max_err) max_err = err;
        }
    /* padding columns of C are never written */
    for (int64_t i = 0; i < m && ok && t->pad; i++)
        for (int64_t j = n; j < ldc; j++)
            if (memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float))) {
                ok = false;
                snprintf(why, sizeof why, "wrote the padding of row %lld", (long long)i);
                break;
            }
    result(ok, "%s m=%lld n=%lld k=%lld ta=%d tb=%d alpha=%g beta=%g pad=%lld %s%s act=%d "
               "threads=%d%s%s",
           kernel, (long long)m, (long long)n, (long long)k, t->ta, t->tb, (double)t->alpha,
           (double)t->beta, (long long)t->pad,
           t->pattern == 1 ? "2:4" : t->pattern == 2 ? "empty-columns" : "unstructured",
           t->epilogue ? " epilogue" : "", t->act, t->threads, ok ? "" : ": ", why);
    ifd_free_aligned(scratch);
    ifd_spgemm_free(sb);
    free(a);
    free(b);
    free(c);
    free(c0);
    free(bias_col);
    free(bias_row);
}

/* Tasks that share a row block pack its At together (a unit of k each) and wait for each
 * other's units: run a product whose one block has 16 units on 2 threads many times (the
 * worker joins at a different moment each time) and compare it bit for bit with the
 * single-threaded result, which computes every column the same way. */
static void check_shared_pack(const char *kernel, ifd_thread_pool *pool, int64_t m, int64_t n,
                              int64_t k, int64_t reps) {
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = calloc((size_t)(k * n), sizeof(float));
    float *c1 = malloc(sizeof(float) * (size_t)(m * n)), *c2 = malloc(sizeof(float) * (size_t)(m * n));
    for (int64_t i = 0; i < m * k; i++) a[i] = frand();
    make_weight(b, false, n, k, n, 0.9, 0);
    ifd_spgemm_b *sb = NULL;
    void *scratch = NULL;
    bool ok = ifd_spgemm_pack(false, n, k, b, n, &sb) == IFD_OK;
    int64_t bad = -1;
    if (ok) {
        const size_t bytes = ifd_spgemm_scratch_bytes(sb, m);
        scratch = ifd_malloc_aligned(bytes);
        ifd_spgemm_run(false, m, a, k, 1.0f, sb, 0.0f, c1, n, NULL, scratch, NULL);
        for (int64_t r = 0; r < reps && bad < 0; r++) {
            /* a pause of 0 to 190 us: the worker is sometimes spinning, sometimes asleep, so
             * it joins at a different point of the caller's packing each time */
            struct timespec pause = {0, (long)(r % 20) * 10000};
            nanosleep(&pause, NULL);
            memset(c2, 0xff, sizeof(float) * (size_t)(m * n));
            /* NaN in At: a task that read it before it was packed cannot get the last run's
             * (equal) values */
            memset(scratch, 0xff, bytes);
            ifd_spgemm_run(false, m, a, k, 1.0f, sb, 0.0f, c2, n, NULL, scratch, pool);
            if (memcmp(c1, c2, sizeof(float) * (size_t)(m * n))) bad = r;
        }
    }
    result(ok && bad < 0, "%s m=%lld n=%lld k=%lld on %d threads, %lld runs, equals 1 thread bit "
                          "for bit%s",
           kernel, (long long)m, (long long)n, (long long)k, ifd_thread_pool_size(pool),
           (long long)reps,
           !ok ? ": pack failed" : bad >= 0 ? ": differs (a task read At before it was packed?)" : "");
    ifd_free_aligned(scratch);
    ifd_spgemm_free(sb);
    free(a);
    free(b);
    free(c1);
    free(c2);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Median-free quick timing: best of `reps`. */
static void bench(void) {
    static const int64_t shapes[][3] = {{128, 256, 256}, {128, 256, 1024}, {128, 1024, 256},
                                        {16, 256, 1024}, {1, 1024, 256}};
    static const double sparsities[] = {0.5, 0.75, 0.9, 0.95};
    printf("kernel %s; times in microseconds, best of 20\n", ifd_spgemm_kernel_name());
    for (size_t s = 0; s < IFD_ARRAY_LEN(shapes); s++) {
        const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(k * n));
        float *c = malloc(sizeof(float) * (size_t)(m * n));
        for (int64_t i = 0; i < m * k; i++) a[i] = frand();
        for (int pat = 0; pat < 5; pat++) {
            if (pat < 4)
                make_weight(b, false, n, k, n, sparsities[pat], 0);
            else
                make_weight(b, false, n, k, n, 0, 1);
            ifd_sgemm_packed_b *pb;
            ifd_spgemm_b *sb;
            if (ifd_sgemm_pack_b(false, n, k, b, n, &pb) || ifd_spgemm_pack(false, n, k, b, n, &sb))
                exit(1);
            void *scratch = ifd_malloc_aligned(ifd_spgemm_scratch_bytes(sb, m) + 64);
            double td = 1e9, ts = 1e9;
            for (int r = 0; r < 20; r++) {
                double t0 = now_s();
                ifd_sgemm_packed_ex(false, m, a, k, 1.0f, pb, 0.0f, c, n, NULL, NULL);
                double t1 = now_s();
                ifd_spgemm_run(false, m, a, k, 1.0f, sb, 0.0f, c, n, NULL, scratch, NULL);
                double t2 = now_s();
                td = fmin(td, t1 - t0);
                ts = fmin(ts, t2 - t1);
            }
            char label[32];
            if (pat < 4)
                snprintf(label, sizeof label, "%.0f%% unstr.", 100 * sparsities[pat]);
            else
                snprintf(label, sizeof label, "2:4");
            printf("m=%4lld n=%4lld k=%4lld %-12s dense %8.1f sparse %8.1f  speedup %.2fx\n",
                   (long long)m, (long long)n, (long long)k, label, td * 1e6, ts * 1e6, td / ts);
            ifd_free_aligned(scratch);
            ifd_sgemm_packed_b_free(pb);
            ifd_spgemm_free(sb);
        }
        free(a);
        free(b);
        free(c);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench();
        return 0;
    }
    ifd_thread_pool *pool2 = NULL, *pool3 = NULL;
    if (ifd_thread_pool_create(2, &pool2) != IFD_OK || ifd_thread_pool_create(3, &pool3) != IFD_OK) {
        printf("FAIL thread pool: %s\n0 passed, 1 failed\n", ifd_last_error());
        ifd_thread_pool_free(pool2);
        return 1;
    }
    static const char *const kernels[] = {"avx512", "avx2", "scalar"};
    const scase cases[] = {
        {false, false, 1, 1, 1, 1, 0, 0, 0.5, 0, false, 0, 1},
        {false, false, 7, 13, 29, 1, 0, 0, 0.9, 0, false, 0, 1},
        {false, false, 64, 64, 64, 1, 0, 0, 0.9, 0, false, 0, 1},
        {false, false, 65, 33, 100, 1, 0, 0, 0.8, 0, false, 0, 1},
        {false, true, 130, 47, 77, 1, 0, 0, 0.95, 0, false, 0, 1},
        {true, false, 37, 19, 53, 1, 0, 0, 0.7, 0, false, 0, 1},
        {true, true, 129, 40, 64, 0.5f, 0.25f, 3, 0.9, 0, false, 0, 1},
        {false, false, 33, 70, 48, 1.5f, 1, 2, 0.9, 2, false, 0, 1},
        {false, false, 20, 24, 64, 1, 0, 0, 0, 1, false, 0, 1},
        {false, true, 100, 31, 128, 1, 0, 1, 0, 1, true, 0, 1},
        {false, false, 17, 9, 12, 1, 0, 0, 0, 1, true, 1, 1},
        {false, false, 50, 45, 60, 1, 0.5f, 0, 0.9, 0, true, 2, 1},
        {false, false, 50, 45, 60, 1, 0, 0, 0.9, 0, true, 3, 1},
        {false, false, 50, 45, 60, 1, 0, 0, 0.9, 0, true, 4, 1},
        {false, false, 200, 300, 256, 1, 0, 0, 0.9, 0, true, 1, 2},
        {false, false, 3, 300, 256, 1, 0, 0, 0.9, 1, false, 0, 2},
        {false, false, 8, 5, 0, 1, 0.5f, 0, 0.9, 0, true, 0, 1},
        {false, false, 9, 17, 40, 1, 0, 0, 1.0, 0, true, 0, 1},
        /* How the driver splits a product among threads (column_pieces in spgemm.c), with k
         * past one pack unit of 128 and a partial last unit (packing is shared by unit):
         * one row block for two threads: two column pieces pack At together */
        {false, false, 64, 256, 300, 1, 0, 0, 0.9, 0, true, 1, 2},
        {true, false, 64, 256, 300, 0.5f, 0.5f, 1, 0.9, 0, true, 2, 2},
        /* 16 rows: a single block under every kernel, split into pieces */
        {false, false, 16, 512, 256, 1, 0, 0, 0.8, 0, false, 0, 2},
        /* 3 blocks of 64 rows (avx512, avx2) for 2 threads: pieces of 112 (104) and 88 (96)
         * columns; scalar (16-row blocks) gets whole blocks */
        {false, true, 150, 200, 260, 1, 0, 0, 0.85, 0, true, 0, 2},
        /* 2 blocks for 3 threads: 3 pieces per block, the last narrower */
        {false, false, 128, 256, 256, 1, 0, 0, 0.9, 0, true, 3, 3},
        /* 5 blocks, 2:4 weight, 96 columns in 2 pieces */
        {true, true, 300, 96, 384, 1, 0, 0, 0.9, 1, true, 1, 2},
        /* whole row blocks, one per thread (the BERT encoder's shape) */
        {false, false, 128, 256, 256, 1, 0, 0, 0.9, 0, false, 0, 2},
    };
    for (size_t kn = 0; kn < IFD_ARRAY_LEN(kernels); kn++) {
        if (!ifd_spgemm_force_kernel(kernels[kn])) {
            printf("# %s: not on this CPU\n", kernels[kn]);
            continue;
        }
        for (size_t i = 0; i < IFD_ARRAY_LEN(cases); i++)
            check_case(kernels[kn], &cases[i],
                       cases[i].threads > 2 ? pool3 : cases[i].threads > 1 ? pool2 : NULL);
        check_shared_pack(kernels[kn], pool2, 40, 512, 2048, 200);
        check_shared_pack(kernels[kn], pool3, 128, 256, 256, 200);
        check_shared_pack(kernels[kn], pool2, 16, 256, 1024, 200);
    }
    ifd_spgemm_force_kernel(NULL);

    /* sparsity count and format selection */
    float w[16] = {0, 1, 0, 2, 3, 0, 0, 0, 0, 0, 0, 4, 5, 6, 7, 0};
    double sp = ifd_spgemm_sparsity(false, 4, 4, w, 4);
    result(fabs(sp - 9.0 / 16.0) < 1e-12, "sparsity of a 4x4 weight with 7 nonzeros is 9/16 (got %g)",
           sp);
    ifd_spgemm_b *sb = NULL;
    /* k x n = 4 x 4: columns {0, 3, 0, 5}, {1, 0, 0, 6}, {0, 0, 0, 7}, {2, 0, 4, 0}: at most 2
     * nonzeros in the group of 4 -> 2:4, two entries per column */
    bool ok = ifd_spgemm_pack(false, 4, 4, w, 4, &sb) == IFD_OK && ifd_spgemm_is_2_4(sb) &&
              ifd_spgemm_nnz(sb) == 8;
    result(ok, "a 4x4 weight with <= 2 nonzeros per group of 4 along k packs as 2:4 with 8 entries");
    ifd_spgemm_free(sb);
    w[8] = 8; /* column 0 = {0, 3, 8, 5}: 3 in the group */
    ok = ifd_spgemm_pack(false, 4, 4, w, 4, &sb) == IFD_OK && !ifd_spgemm_is_2_4(sb) &&
         ifd_spgemm_nnz(sb) == 8;
    result(ok, "3 nonzeros in a group of 4 packs unstructured with its 8 nonzeros");
    ifd_spgemm_free(sb);
    ifd_thread_pool_free(pool2);
    ifd_thread_pool_free(pool3);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
