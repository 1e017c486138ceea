/* Drift summaries and PSI scores (src/serve/drift.c) on known distributions. */
#include "serve/drift.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int g_pass, g_fail;

#define CHECK(cond, ...)                                                                         \
    do {                                                                                         \
        if (cond) {                                                                              \
            g_pass++;                                                                            \
        } else {                                                                                 \
            g_fail++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                          \
            printf(__VA_ARGS__);                                                                 \
            printf("\n");                                                                        \
        }                                                                                        \
    } while (0)

static uint64_t g_rng = 88172645463325252ull;

static double uniform(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void) {
    return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
}

/* x [rows, 8] ~ N(mean, 1); y [rows, 10] one-hot-ish scores peaking at a class drawn from
 * `classes` (uniform over 0..9 when NULL, else always *classes). */
static void make_batch(ifd_tensor **x, ifd_tensor **y, int rows, double mean, const int *cls) {
    int64_t dx[2] = {rows, 8}, dy[2] = {rows, 10};
    ifd_tensor_create(IFD_DTYPE_FLOAT, 2, dx, x);
    ifd_tensor_create(IFD_DTYPE_FLOAT, 2, dy, y);
    float *px = ifd_tensor_data(*x), *py = ifd_tensor_data(*y);
    for (int i = 0; i < rows * 8; i++) px[i] = (float)(mean + normal());
    for (int r = 0; r < rows; r++) {
        int c = cls ? *cls : (int)(uniform() * 10);
        for (int k = 0; k < 10; k++) py[r * 10 + k] = k == c ? 0.9f : 0.01f;
    }
}

static const char *g_names[2] = {"x", "y"};
static const bool g_out[2] = {false, true};
static const int64_t g_rank2[2] = {8, 10};

static char *build_baseline(size_t *len) {
    enum { B = 40 };
    ifd_tensor *xs[B], *ys[B];
    const ifd_tensor *rows[B][2];
    const ifd_tensor *const *batches[B];
    for (int b = 0; b < B; b++) {
        make_batch(&xs[b], &ys[b], 64, 0.0, NULL);
        rows[b][0] = xs[b];
        rows[b][1] = ys[b];
        batches[b] = rows[b];
    }
    ifd_sbuf out = {0};
    ifd_status st = ifd_drift_baseline_build(2, g_names, g_out, g_rank2, B, batches, &out);
    CHECK(st == IFD_OK, "baseline build: %s", ifd_last_error());
    for (int b = 0; b < B; b++) {
        ifd_tensor_free(xs[b]);
        ifd_tensor_free(ys[b]);
    }
    *len = out.len;
    return out.data;
}

static void feed(ifd_drift *d, int n_batches, double mean, const int *cls) {
    for (int b = 0; b < n_batches; b++) {
        ifd_tensor *x, *y;
        make_batch(&x, &y, 16, mean, cls);
        ifd_drift_observe(d, 0, x);
        ifd_drift_observe(d, 1, y);
        ifd_tensor_free(x);
        ifd_tensor_free(y);
    }
}

static void test_scores(const char *baseline, size_t len) {
    ifd_drift *d = NULL;
    ifd_status st = ifd_drift_create(2, g_names, g_out, g_rank2, baseline, len, 4000, &d);
    CHECK(st == IFD_OK && d, "create: %s", ifd_last_error());
    if (!d) return;
    ifd_drift_summary s;
    ifd_drift_summarize(d, 0, &s);
    CHECK(isnan(s.score) && s.count == 0, "no data yet: score NaN (got %g)", s.score);

    feed(d, 200, 0.0, NULL);
    ifd_drift_summarize(d, 0, &s);
    CHECK(s.score < 0.05, "unshifted input PSI %g should stay < 0.05", s.score);
    CHECK(fabs(s.mean) < 0.05 && fabs(s.std - 1) < 0.05, "mean %g std %g of N(0,1)", s.mean, s.std);
    CHECK(s.count == 200 * 16 * 8, "count %lld", (long long)s.count);
    ifd_drift_summarize(d, 1, &s);
    CHECK(s.n_classes == 10 && s.class_score < 0.05, "classes %d, unshifted class PSI %g",
          s.n_classes, s.class_score);

    feed(d, 200, 1.0, NULL);
    ifd_drift_summarize(d, 0, &s);
    CHECK(s.score > 0.5, "input shifted by one std: PSI %g should be > 0.5", s.score);
    CHECK(ifd_drift_score(d, 0) == s.score, "score() is the value PSI");

    /* the window forgets: back to the baseline distribution, the score falls again */
    feed(d, 400, 0.0, NULL);
    ifd_drift_summarize(d, 0, &s);
    CHECK(s.score < 0.1, "after returning to N(0,1) PSI %g should fall below 0.1", s.score);

    int three = 3;
    feed(d, 200, 0.0, &three);
    ifd_drift_summarize(d, 1, &s);
    CHECK(s.class_score > 1.0, "every prediction class 3: class PSI %g", s.class_score);
    CHECK(ifd_drift_score(d, 1) >= s.class_score, "score() takes the larger");

    ifd_sbuf b = {0};
    ifd_drift_render_json(d, &b);
    CHECK(b.data && strstr(b.data, "\"name\":\"x\"") && strstr(b.data, "\"class_score\":"),
          "render: %s", b.data ? b.data : "(null)");
    ifd_sbuf_free(&b);
    ifd_drift_free(d);
}

static void test_special_values(void) {
    ifd_drift *d = NULL;
    CHECK(ifd_drift_create(2, g_names, g_out, g_rank2, NULL, 0, 0, &d) == IFD_OK, "no baseline");
    int64_t dims[1] = {6};
    ifd_tensor *t;
    ifd_tensor_create(IFD_DTYPE_FLOAT, 1, dims, &t);
    float *p = ifd_tensor_data(t);
    p[0] = NAN;
    p[1] = INFINITY;
    p[2] = -INFINITY;
    p[3] = 1;
    p[4] = 3;
    p[5] = -0.0f;
    ifd_drift_observe(d, 0, t);
    ifd_drift_summary s;
    ifd_drift_summarize(d, 0, &s);
    CHECK(s.count == 6 && s.nan_count == 1 && s.inf_count == 2, "count %lld nan %lld inf %lld",
          (long long)s.count, (long long)s.nan_count, (long long)s.inf_count);
    CHECK(fabs(s.mean - 4.0 / 3) < 1e-12 && s.min == 0 && s.max == 3, "mean %g min %g max %g",
          s.mean, s.min, s.max);
    CHECK(isnan(s.score) && !s.has_baseline, "no baseline: no score");
    ifd_tensor_free(t);
    /* other dtypes */
    ifd_tensor_create(IFD_DTYPE_INT64, 1, dims, &t);
    int64_t *q = ifd_tensor_data(t);
    for (int i = 0; i < 6; i++) q[i] = i * 2;
    ifd_drift_observe(d, 0, t);
    ifd_drift_summarize(d, 0, &s);
    CHECK(s.count == 12 && s.max == 10, "int64 values counted: %lld max %g", (long long)s.count,
          s.max);
    ifd_tensor_free(t);
    /* big tensors are sampled, not read whole */
    int64_t big[1] = {1000000};
    ifd_tensor_create(IFD_DTYPE_FLOAT, 1, big, &t);
    memset(ifd_tensor_data(t), 0, ifd_tensor_nbytes(t));
    ifd_drift_observe(d, 0, t);
    ifd_drift_summarize(d, 0, &s);
    CHECK(s.count == 12 + IFD_DRIFT_SAMPLE, "sampled %lld", (long long)s.count);
    ifd_tensor_free(t);
    ifd_drift_free(d);
}

static void test_bad_baselines(void) {
    static const char *bad[] = {
        "not json",
        "{\"format\":\"other\",\"tensors\":[]}",
        "{\"format\":\"inferd-drift-baseline/1\"}",
        "{\"format\":\"inferd-drift-baseline/1\",\"tensors\":[{\"edges\":[]}]}",
        "{\"format\":\"inferd-drift-baseline/1\",\"tensors\":[{\"name\":\"x\",\"edges\":[1,2],"
        "\"proportions\":[1]}]}",
        "{\"format\":\"inferd-drift-baseline/1\",\"tensors\":[{\"name\":\"x\",\"edges\":"
        "[9,8,7,6,5,4,3,2,1],\"proportions\":[0,0,0,0,0,0,0,0,0,1]}]}",
        "{\"format\":\"inferd-drift-baseline/1\",\"tensors\":[{\"name\":\"y\",\"edges\":"
        "[1,2,3,4,5,6,7,8,9],\"proportions\":[0,0,0,0,0,0,0,0,0,1],\"class_proportions\":[1]}]}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ifd_drift *d = NULL;
        ifd_status st = ifd_drift_create(2, g_names, g_out, g_rank2, bad[i], strlen(bad[i]), 0, &d);
        CHECK(st != IFD_OK && !d && ifd_last_error()[0], "bad baseline %zu accepted", i);
        ifd_drift_free(d);
    }
    /* a tensor the model no longer has is ignored */
    const char *extra = "{\"format\":\"inferd-drift-baseline/1\",\"tensors\":[{\"name\":\"gone\","
                        "\"edges\":[1,2,3,4,5,6,7,8,9],\"proportions\":[0,0,0,0,0,0,0,0,0,1]}]}";
    ifd_drift *d = NULL;
    CHECK(ifd_drift_create(2, g_names, g_out, g_rank2, extra, strlen(extra), 0, &d) == IFD_OK,
          "unknown tensor in the baseline: %s", ifd_last_error());
    ifd_drift_free(d);
}

typedef struct {
    ifd_drift *d;
} thread_arg;

static void *observer(void *p) {
    thread_arg *a = p;
    int64_t dims[1] = {100};
    ifd_tensor *t;
    ifd_tensor_create(IFD_DTYPE_FLOAT, 1, dims, &t);
    float *v = ifd_tensor_data(t);
    for (int i = 0; i < 100; i++) v[i] = (float)i;
    for (int k = 0; k < 1000; k++) ifd_drift_observe(a->d, 0, t);
    ifd_tensor_free(t);
    return NULL;
}

static void test_threads(const char *baseline, size_t len) {
    ifd_drift *d = NULL;
    CHECK(ifd_drift_create(2, g_names, g_out, g_rank2, baseline, len, 0, &d) == IFD_OK, "create");
    pthread_t th[4];
    thread_arg a = {d};
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, observer, &a);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    ifd_drift_summary s;
    ifd_drift_summarize(d, 0, &s);
    CHECK(s.count == 4 * 1000 * 100 && s.min == 0 && s.max == 99, "4 threads: count %lld",
          (long long)s.count);
    ifd_drift_free(d);
}

int main(void) {
    size_t len = 0;
    char *baseline = build_baseline(&len);
    CHECK(baseline && strstr(baseline, "\"class_proportions\""), "classifier output gets class "
          "proportions");
    if (baseline) {
        test_scores(baseline, len);
        test_threads(baseline, len);
    }
    test_special_values();
    test_bad_baselines();
    ifd_free(baseline);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
