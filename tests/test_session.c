/* Session tests: the memory plan (no allocation per node once shapes are known), input
 * validation errors, and allocation failure injected at every allocation of load, session
 * creation and run (RELIABILITY.md item 24): a clean error, no crash, no leak. */
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_pass, g_fail;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            g_pass++;                                      \
            printf("PASS ");                               \
        } else {                                           \
            g_fail++;                                      \
            printf("FAIL ");                               \
        }                                                  \
        printf(__VA_ARGS__);                               \
        printf("\n");                                      \
    } while (0)

static const char *g_root;

typedef struct loaded {
    ifd_model *model;
    ifd_session *session;
    ifd_tensor *in[8];
    const char *names[8];
    size_t n_in, n_out;
} loaded;

static void unload(loaded *l) {
    for (size_t i = 0; i < l->n_in; i++) ifd_tensor_free(l->in[i]);
    ifd_session_free(l->session);
    ifd_model_free(l->model);
    memset(l, 0, sizeof *l);
}

/* Load a conformance case and its first inputs. */
static ifd_status load_case(const char *name, int threads, loaded *l) {
    char path[1024];
    ifd_status st;
    memset(l, 0, sizeof *l);
    snprintf(path, sizeof path, "%s/node/%s/model.onnx", g_root, name);
    if ((st = ifd_model_load_file(path, &l->model)) != IFD_OK) goto fail;
    ifd_session_options o;
    ifd_session_options_init(&o);
    o.num_threads = threads;
    if ((st = ifd_session_create(l->model, &o, &l->session)) != IFD_OK) goto fail;
    l->n_out = ifd_session_output_count(l->session);
    for (size_t i = 0; i < ifd_session_input_count(l->session) && i < 8; i++) {
        ifd_io_info info;
        ifd_session_input_info(l->session, i, &info);
        l->names[i] = info.name;
        snprintf(path, sizeof path, "%s/node/%s/test_data_set_0/input_%zu.pb", g_root, name, i);
        if ((st = ifd_tensorproto_read(path, &l->in[i])) != IFD_OK) goto fail;
        l->n_in++;
    }
    return IFD_OK;
fail:
    unload(l);
    return st;
}

static ifd_status run_once(loaded *l) {
    ifd_tensor *out[8] = {0};
    ifd_status st = ifd_session_run(l->session, l->n_in, l->names, (const ifd_tensor *const *)l->in,
                                    l->n_out, NULL, out);
    for (int i = 0; i < 8; i++) ifd_tensor_free(out[i]);
    return st;
}

static void test_memory_plan(const char *name) {
    loaded l;
    if (load_case(name, 1, &l)) {
        CHECK(0, "plan %s: load: %s", name, ifd_last_error());
        return;
    }
    run_once(&l); /* first run on these shapes: plans */
    run_once(&l);
    size_t before = ifd_alloc_count();
    ifd_status st = run_once(&l);
    size_t allocs = ifd_alloc_count() - before;
    /* only the outputs handed to the caller: a header and a buffer each */
    CHECK(st == IFD_OK && allocs <= 2 * l.n_out, "plan %s: steady-state run made %zu allocations "
          "(outputs: %zu)", name, allocs, l.n_out);
    unload(&l);
}

static void test_bad_inputs(void) {
    loaded l;
    if (load_case("test_add", 1, &l)) {
        CHECK(0, "bad inputs: load: %s", ifd_last_error());
        return;
    }
    ifd_tensor *out[1] = {0};
    const char *names[2] = {"x", "nosuch"};
    ifd_status st = ifd_session_run(l.session, 2, names, (const ifd_tensor *const *)l.in, 1, NULL, out);
    CHECK(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "unknown input 'nosuch'") &&
          strstr(ifd_last_error(), "'x', 'y'"), "unknown input name lists the model's inputs: %s",
          ifd_last_error());
    st = ifd_session_run(l.session, 1, names, (const ifd_tensor *const *)l.in, 1, NULL, out);
    CHECK(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "missing input 'y'"),
          "missing input: %s", ifd_last_error());
    const char *twice[2] = {"x", "x"};
    st = ifd_session_run(l.session, 2, twice, (const ifd_tensor *const *)l.in, 1, NULL, out);
    CHECK(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "twice"), "duplicate input: %s",
          ifd_last_error());
    ifd_tensor *wrong = NULL;
    int64_t dims[3] = {3, 4, 6};
    ifd_tensor_create(IFD_DTYPE_FLOAT, 3, dims, &wrong);
    const ifd_tensor *ins[2] = {wrong, l.in[1]};
    const char *xy[2] = {"x", "y"};
    st = ifd_session_run(l.session, 2, xy, ins, 1, NULL, out);
    CHECK(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "[3,4,6]") &&
          strstr(ifd_last_error(), "[3,4,5]"), "wrong shape names both shapes: %s", ifd_last_error());
    ifd_tensor_free(wrong);
    ifd_tensor_create(IFD_DTYPE_INT64, 3, (int64_t[]){3, 4, 5}, &wrong);
    ins[0] = wrong;
    st = ifd_session_run(l.session, 2, xy, ins, 1, NULL, out);
    CHECK(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "float32"),
          "wrong dtype: %s", ifd_last_error());
    ifd_tensor_free(wrong);
    st = ifd_session_run(l.session, 2, xy, (const ifd_tensor *const *)l.in, 1,
                         (const char *[]){"nosuch"}, out);
    CHECK(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "unknown output"),
          "unknown output: %s", ifd_last_error());
    CHECK(run_once(&l) == IFD_OK, "session still runs after the errors");
    unload(&l);
}

/* Fail allocation N for N = 1, 2, ... until a whole load+create+run succeeds. */
static void test_alloc_failures(const char *name) {
    size_t base = ifd_memory_in_use();
    int crashes_avoided = 0, leaks = 0, wrong_status = 0;
    long n;
    for (n = 1; n < 100000; n++) {
        loaded l;
        ifd_alloc_fail_at(n);
        ifd_status st = load_case(name, 1, &l);
        if (!st) {
            st = run_once(&l);
            if (!st) st = run_once(&l);
        }
        bool fired = false;
        ifd_alloc_fail_at(0);
        /* if the failure never fired, everything succeeded: done */
        if (!st) {
            unload(&l);
            fired = ifd_memory_in_use() != base;
            if (fired) leaks++;
            break;
        }
        if (st != IFD_ERR_NO_MEMORY) {
            if (wrong_status < 3)
                printf("  failing allocation %ld of %s gave %s: %s\n", n, name, ifd_status_string(st),
                       ifd_last_error());
            wrong_status++;
        }
        unload(&l);
        if (ifd_memory_in_use() != base) {
            if (leaks < 3)
                printf("  leak after failing allocation %ld of %s: %zu bytes (%s)\n", n, name,
                       ifd_memory_in_use() - base, ifd_last_error());
            leaks++;
        }
        crashes_avoided++;
    }
    CHECK(leaks == 0 && wrong_status == 0 && crashes_avoided > 10,
          "allocation failure at each of %d allocations of %s: %d leaks, %d non-OOM statuses",
          crashes_avoided, name, leaks, wrong_status);
}

int main(int argc, char **argv) {
    g_root = argc > 1 ? argv[1] : getenv("IFD_ONNX_TESTS");
    if (!g_root) g_root = "../shared/onnx-tests";
    const char *plan_cases[] = {"test_conv_with_strides_padding", "test_add_bcast", "test_gemm_default_matrix_bias",
                                "test_softmax_axis_1", "test_lstm_defaults", "test_resize_downsample_scales_linear"};
    for (size_t i = 0; i < sizeof plan_cases / sizeof *plan_cases; i++) test_memory_plan(plan_cases[i]);
    test_bad_inputs();
    const char *oom_cases[] = {"test_conv_with_strides_padding", "test_if", "test_loop11", "test_lstm_defaults",
                               "test_scan9_sum", "test_nonzero_example"};
    for (size_t i = 0; i < sizeof oom_cases / sizeof *oom_cases; i++) test_alloc_failures(oom_cases[i]);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
