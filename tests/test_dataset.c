/* Dataset folder reader (src/opt/dataset.c): the three layouts, batch order and row counts,
 * every malformed folder (a clear error naming the file), and allocation failure injected at
 * every allocation of ifd_dataset_open (RELIABILITY.md item 24): an error, no crash, no leak.
 * Writes its folders under a fresh mkdtemp() directory and removes them. */
#include "base/base.h"
#include "opt/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static char g_root[256];

/* Paths under the temp root; created files are listed for removal at the end. */
static char g_made[128][512];
static int g_n_made;

static const char *path_of(const char *rel) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", g_root, rel);
    return buf;
}

static void make_dir(const char *rel) {
    mkdir(path_of(rel), 0755);
    if (g_n_made < 128) snprintf(g_made[g_n_made++], sizeof g_made[0], "%s", path_of(rel));
}

static void remember(const char *rel) {
    if (g_n_made < 128) snprintf(g_made[g_n_made++], sizeof g_made[0], "%s", path_of(rel));
}

/* A float32 or other tensor of the given shape whose first element is `tag`, saved as .npy. */
static void write_npy(const char *rel, ifd_dtype dt, int rank, const int64_t *dims, float tag) {
    ifd_tensor *t = NULL;
    if (ifd_tensor_create(dt, rank, dims, &t) != IFD_OK) return;
    if (dt == IFD_DTYPE_FLOAT && ifd_tensor_count(t) > 0) ((float *)ifd_tensor_data(t))[0] = tag;
    ifd_npy_write(path_of(rel), t);
    ifd_tensor_free(t);
    remember(rel);
}

static void write_text(const char *rel, const char *text) {
    FILE *f = fopen(path_of(rel), "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    remember(rel);
}

static ifd_io_info input(const char *name, ifd_dtype dt, int rank, const int64_t *dims) {
    ifd_io_info info;
    memset(&info, 0, sizeof info);
    info.name = name;
    info.dtype = dt;
    info.rank = rank;
    for (int d = 0; d < rank; d++) info.dims[d] = dims[d];
    return info;
}

static float first(const ifd_tensor *t) { return ((const float *)ifd_tensor_cdata(t))[0]; }

/* One input [batch, 3]: a.npy (2 rows), b.npy (3), c.npy (1), written out of order; a README
 * and a hidden file that must be skipped. */
static void test_one_input(void) {
    const int64_t d2[] = {2, 3}, d3[] = {3, 3}, d1[] = {1, 3}, in_dims[] = {-1, 3};
    make_dir("one");
    write_npy("one/c.npy", IFD_DTYPE_FLOAT, 2, d1, 30);
    write_npy("one/a.npy", IFD_DTYPE_FLOAT, 2, d2, 10);
    write_npy("one/b.npy", IFD_DTYPE_FLOAT, 2, d3, 20);
    write_text("one/README.txt", "not a sample\n");
    write_npy("one/.hidden.npy", IFD_DTYPE_FLOAT, 2, d1, 99);
    ifd_io_info in = input("x", IFD_DTYPE_FLOAT, 2, in_dims);
    ifd_dataset *d = NULL;
    ifd_status st = ifd_dataset_open(path_of("one"), 1, &in, &d);
    CHECK(st == IFD_OK, "one input: open (%s)", st ? ifd_last_error() : "ok");
    if (st) return;
    CHECK(ifd_dataset_count(d) == 3 && ifd_dataset_total_rows(d) == 6,
          "one input: 3 batches, 6 rows (got %zu, %lld)", ifd_dataset_count(d),
          (long long)ifd_dataset_total_rows(d));
    bool order = ifd_dataset_count(d) == 3 && first(ifd_dataset_batch(d, 0)[0]) == 10 &&
                 first(ifd_dataset_batch(d, 1)[0]) == 20 && first(ifd_dataset_batch(d, 2)[0]) == 30 &&
                 ifd_dataset_batch_rows(d, 0) == 2 && ifd_dataset_batch_rows(d, 1) == 3 &&
                 ifd_dataset_batch_rows(d, 2) == 1;
    CHECK(order, "one input: batches in file-name order with their rows");
    CHECK(!strcmp(ifd_dataset_input_names(d)[0], "x") && ifd_dataset_batch(d, 3) == NULL &&
              ifd_dataset_batch_rows(d, 3) == 0,
          "one input: names; batch past the end is NULL");
    ifd_dataset_free(d);

    /* no .npy directly in the folder: the subfolder layout */
    make_dir("one_sub");
    make_dir("one_sub/s1");
    make_dir("one_sub/s0");
    write_npy("one_sub/s1/x.npy", IFD_DTYPE_FLOAT, 2, d3, 2);
    write_npy("one_sub/s0/x.npy", IFD_DTYPE_FLOAT, 2, d2, 1);
    st = ifd_dataset_open(path_of("one_sub"), 1, &in, &d);
    CHECK(st == IFD_OK && ifd_dataset_count(d) == 2 && first(ifd_dataset_batch(d, 0)[0]) == 1 &&
              ifd_dataset_total_rows(d) == 5,
          "one input: subfolder layout (%s)", st ? ifd_last_error() : "ok");
    ifd_dataset_free(d);
}

/* Two inputs: a scalar "scale" (rank 0) and "b:0" [n, 2] stored as b_0.npy. */
static void test_two_inputs(void) {
    const int64_t b_dims[] = {-1, 2}, r4[] = {4, 2}, r1[] = {1, 2};
    ifd_io_info in[2] = {input("scale", IFD_DTYPE_FLOAT, 0, NULL),
                         input("b:0", IFD_DTYPE_FLOAT, 2, b_dims)};
    make_dir("two");
    make_dir("two/s1");
    make_dir("two/s0");
    write_npy("two/s0/scale.npy", IFD_DTYPE_FLOAT, 0, NULL, 5);
    write_npy("two/s0/b_0.npy", IFD_DTYPE_FLOAT, 2, r4, 6);
    write_npy("two/s1/scale.npy", IFD_DTYPE_FLOAT, 0, NULL, 7);
    write_npy("two/s1/b_0.npy", IFD_DTYPE_FLOAT, 2, r1, 8);
    ifd_dataset *d = NULL;
    ifd_status st = ifd_dataset_open(path_of("two"), 2, in, &d);
    CHECK(st == IFD_OK, "two inputs: subfolders open (%s)", st ? ifd_last_error() : "ok");
    if (!st) {
        const ifd_tensor *const *b0 = ifd_dataset_batch(d, 0);
        CHECK(ifd_dataset_count(d) == 2 && first(b0[0]) == 5 && first(b0[1]) == 6 &&
                  first(ifd_dataset_batch(d, 1)[1]) == 8,
              "two inputs: model order within a batch, subfolders by name");
        CHECK(ifd_dataset_batch_rows(d, 0) == 4 && ifd_dataset_batch_rows(d, 1) == 1 &&
                  ifd_dataset_total_rows(d) == 5,
              "two inputs: rows from the first input with a dim 0 (%lld, %lld)",
              (long long)ifd_dataset_batch_rows(d, 0), (long long)ifd_dataset_batch_rows(d, 1));
        CHECK(!strcmp(ifd_dataset_input_names(d)[1], "b:0"), "two inputs: names unsanitized");
    }
    ifd_dataset_free(d);

    make_dir("flat");
    write_npy("flat/scale.npy", IFD_DTYPE_FLOAT, 0, NULL, 1);
    write_npy("flat/b_0.npy", IFD_DTYPE_FLOAT, 2, r4, 2);
    st = ifd_dataset_open(path_of("flat"), 2, in, &d);
    CHECK(st == IFD_OK && ifd_dataset_count(d) == 1 && ifd_dataset_total_rows(d) == 4,
          "two inputs: DIR/<input>.npy is one batch (%s)", st ? ifd_last_error() : "ok");
    ifd_dataset_free(d);
}

/* Open must fail with the status given and a message containing `want`. */
static void expect_error(const char *what, const char *rel, size_t n, const ifd_io_info *in,
                         ifd_status want_st, const char *want) {
    ifd_dataset *d = (ifd_dataset *)1; /* must be reset to NULL on failure */
    size_t before = ifd_memory_in_use();
    ifd_status st = ifd_dataset_open(path_of(rel), n, in, &d);
    CHECK(st == want_st && d == NULL && strstr(ifd_last_error(), want) &&
              ifd_memory_in_use() == before,
          "error: %s -> %s", what, ifd_last_error());
    if (st == IFD_OK) ifd_dataset_free(d);
}

static void test_errors(void) {
    const int64_t x_dims[] = {-1, 3}, bad[] = {2, 4}, ok[] = {2, 3}, r3[] = {2, 3, 1};
    ifd_io_info x = input("x", IFD_DTYPE_FLOAT, 2, x_dims);
    ifd_io_info two[2] = {input("a", IFD_DTYPE_FLOAT, 2, x_dims), input("b", IFD_DTYPE_FLOAT, 2, x_dims)};
    make_dir("e_dim");
    write_npy("e_dim/0.npy", IFD_DTYPE_FLOAT, 2, ok, 0);
    write_npy("e_dim/1.npy", IFD_DTYPE_FLOAT, 2, bad, 0);
    expect_error("fixed dim differs", "e_dim", 1, &x, IFD_ERR_SHAPE, "e_dim/1.npy': shape [2,4]");
    make_dir("e_rank");
    write_npy("e_rank/0.npy", IFD_DTYPE_FLOAT, 3, r3, 0);
    expect_error("rank differs", "e_rank", 1, &x, IFD_ERR_SHAPE, "does not fit input 'x' [?,3]");
    make_dir("e_dtype");
    write_npy("e_dtype/0.npy", IFD_DTYPE_INT32, 2, ok, 0);
    expect_error("dtype differs", "e_dtype", 1, &x, IFD_ERR_INVALID_ARGUMENT,
                 "dtype int32, but input 'x' is float32");
    make_dir("e_npy");
    write_text("e_npy/0.npy", "\x93NUMPY\x01");
    expect_error("truncated .npy", "e_npy", 1, &x, IFD_ERR_INVALID_ARGUMENT, "e_npy/0.npy");
    make_dir("e_empty");
    write_text("e_empty/notes.txt", "no samples here\n");
    expect_error("no samples", "e_empty", 1, &x, IFD_ERR_NOT_FOUND, "holds no .npy samples");
    expect_error("no such folder", "e_nowhere", 1, &x, IFD_ERR_IO, "cannot open data folder");
    make_dir("e_missing");
    make_dir("e_missing/s0");
    write_npy("e_missing/s0/a.npy", IFD_DTYPE_FLOAT, 2, ok, 0);
    expect_error("input file missing", "e_missing", 2, two, IFD_ERR_NOT_FOUND,
                 "e_missing/s0' has no b.npy for input 'b'");
    make_dir("e_stray");
    write_npy("e_stray/a.npy", IFD_DTYPE_FLOAT, 2, ok, 0);
    write_npy("e_stray/b.npy", IFD_DTYPE_FLOAT, 2, ok, 0);
    write_npy("e_stray/bb.npy", IFD_DTYPE_FLOAT, 2, ok, 0);
    expect_error("stray file", "e_stray", 2, two, IFD_ERR_INVALID_ARGUMENT,
                 "bb.npy' is not named after any model input");
    ifd_io_info clash[2] = {input("a:0", IFD_DTYPE_FLOAT, 2, x_dims),
                            input("a/0", IFD_DTYPE_FLOAT, 2, x_dims)};
    expect_error("names share a file", "e_stray", 2, clash, IFD_ERR_UNSUPPORTED,
                 "would both be read from a_0.npy");
    expect_error("no inputs", "e_stray", 0, NULL, IFD_ERR_INVALID_ARGUMENT, "no inputs");
    ifd_dataset *d = NULL;
    CHECK(ifd_dataset_open(NULL, 1, &x, &d) == IFD_ERR_INVALID_ARGUMENT && d == NULL,
          "error: NULL folder");
    ifd_dataset_free(NULL);
    CHECK(ifd_dataset_count(NULL) == 0 && ifd_dataset_batch(NULL, 0) == NULL &&
              ifd_dataset_total_rows(NULL) == 0,
          "NULL dataset: empty answers");
}

/* Fail the Nth allocation of ifd_dataset_open for every N until it succeeds. */
static void test_alloc_failures(const char *rel, size_t n, const ifd_io_info *in) {
    int failures = 0, bad = 0;
    for (long k = 1; k < 10000; k++) {
        size_t before = ifd_memory_in_use();
        ifd_dataset *d = NULL;
        ifd_alloc_fail_at(k);
        ifd_status st = ifd_dataset_open(path_of(rel), n, in, &d);
        ifd_alloc_fail_at(0);
        if (st == IFD_OK) {
            bool whole = ifd_dataset_count(d) > 0;
            ifd_dataset_free(d);
            CHECK(whole && ifd_memory_in_use() == before && bad == 0,
                  "allocation failures in open(%s): %d injected, each a clean error, no leak",
                  rel, failures);
            return;
        }
        failures++;
        if (st != IFD_ERR_NO_MEMORY || d != NULL || ifd_memory_in_use() != before) {
            if (bad++ == 0)
                printf("  allocation %ld: status %d, '%s', %zu bytes held\n", k, (int)st,
                       ifd_last_error(), ifd_memory_in_use() - before);
        }
    }
    CHECK(0, "allocation failures in open(%s): never succeeded", rel);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/ifd_dataset_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_root)) {
        printf("FAIL mkdtemp %s\n0 passed, 1 failed\n", g_root);
        return 1;
    }
    test_one_input();
    test_two_inputs();
    test_errors();
    const int64_t x_dims[] = {-1, 3}, b_dims[] = {-1, 2};
    ifd_io_info x = input("x", IFD_DTYPE_FLOAT, 2, x_dims);
    ifd_io_info two[2] = {input("scale", IFD_DTYPE_FLOAT, 0, NULL),
                          input("b:0", IFD_DTYPE_FLOAT, 2, b_dims)};
    test_alloc_failures("one", 1, &x);
    test_alloc_failures("two", 2, two);
    /* files before their folders: remove in reverse order of creation */
    for (int i = g_n_made - 1; i >= 0; i--) remove(g_made[i]);
    rmdir(g_root);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
