/* ONNX backend conformance runner over ../shared/onnx-tests.
 *
 *   ifd_conformance [--root DIR] [--filter SUBSTR]... [--verbose] [--threads N]
 *                   [--xfail FILE] [--ops-doc FILE] [--no-fork] [--timeout SECS]
 *
 * Each case runs in a child process (a crash is a failure, not the end of the run) and prints
 * one line: PASS, FAIL (with the error or the first mismatch), SKIP (out-of-scope operator
 * family: training, sequence/optional/map types, random generators, image decoding,
 * ai.onnx.ml operators this build does not register), or XFAIL (a failure listed in the expected-failures file). The run fails when a
 * case fails that is not listed, or a listed case passes (the list must shrink, never rot).
 * Last line: "N passed, N failed, N skipped". */
#include "base/base.h"
#include "ops/op.h"
#include "onnx.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPS_PER_CASE 64

static const char *g_out_of_scope_ops[] = {
    /* sequence / optional types */
    "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert",
    "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence", "Optional",
    "OptionalGetElement", "OptionalHasElement",
    /* random generators */
    "Bernoulli", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
    "Multinomial",
    /* image decoding */
    "ImageDecoder",
};

typedef struct case_info {
    char name[512]; /* suite/case */
    char dir[1024];
    char model[1024];
    bool light;
    char skip_reason[256];
    bool training_dropout; /* Dropout with a training_mode input: random unless ratio is 0 */
    char ops[MAX_OPS_PER_CASE][64];
    int n_ops;
} case_info;

typedef struct options {
    const char *root;
    const char *filters[32];
    int n_filters;
    bool verbose, no_fork;
    int threads;
    const char *xfail_path, *ops_doc;
    int timeout;
} options;

/* ---- scope classification, straight from the protobuf ------------------------------------- */

static void add_op(case_info *c, const char *domain, const char *op) {
    char full[64];
    snprintf(full, sizeof full, "%s%s%s", domain && domain[0] && strcmp(domain, "ai.onnx") ? domain : "",
             domain && domain[0] && strcmp(domain, "ai.onnx") ? ":" : "", op);
    for (int i = 0; i < c->n_ops; i++)
        if (!strcmp(c->ops[i], full)) return;
    if (c->n_ops < MAX_OPS_PER_CASE) snprintf(c->ops[c->n_ops++], 64, "%s", full);
}

static const char *type_scope(const Onnx__TypeProto *t) {
    if (!t) return NULL;
    switch (t->value_case) {
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: return "sequence type";
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: return "map type";
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: return "optional type";
    default: return NULL;
    }
}

static void classify_graph(case_info *c, const Onnx__GraphProto *g, int depth) {
    if (!g || depth > 16) return;
    for (size_t i = 0; i < g->n_input && !c->skip_reason[0]; i++) {
        const char *r = type_scope(g->input[i]->type);
        if (r) snprintf(c->skip_reason, sizeof c->skip_reason, "%s (input '%s')", r, g->input[i]->name);
    }
    for (size_t i = 0; i < g->n_output && !c->skip_reason[0]; i++) {
        const char *r = type_scope(g->output[i]->type);
        if (r) snprintf(c->skip_reason, sizeof c->skip_reason, "%s (output '%s')", r, g->output[i]->name);
    }
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        const char *dom = n->domain ? n->domain : "";
        add_op(c, dom, n->op_type);
        if (!strcmp(n->op_type, "Dropout") && n->n_input >= 3 && n->input[2][0]) c->training_dropout = true;
        if (!c->skip_reason[0]) {
            /* ai.onnx.ml: in scope only for the operators this build registers */
            if ((!strcmp(dom, "ai.onnx.ml") && !ifd_op_find(dom, n->op_type)) ||
                !strcmp(dom, "ai.onnx.preview.training"))
                snprintf(c->skip_reason, sizeof c->skip_reason, "operator %s:%s (domain out of scope)",
                         dom, n->op_type);
            for (size_t k = 0; k < IFD_ARRAY_LEN(g_out_of_scope_ops) && !c->skip_reason[0]; k++)
                if (!strcmp(n->op_type, g_out_of_scope_ops[k]) && (!dom[0] || !strcmp(dom, "ai.onnx")))
                    snprintf(c->skip_reason, sizeof c->skip_reason, "operator %s (family out of scope)",
                             n->op_type);
        }
        for (size_t a = 0; a < n->n_attribute; a++) {
            classify_graph(c, n->attribute[a]->g, depth + 1);
            for (size_t k = 0; k < n->attribute[a]->n_graphs; k++)
                classify_graph(c, n->attribute[a]->graphs[k], depth + 1);
        }
    }
}

static void classify(case_info *c) {
    void *data = NULL;
    size_t size = 0;
    if (ifd_read_file(c->model, 0, &data, &size)) return;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (m) {
        classify_graph(c, m->graph, 0);
        onnx__model_proto__free_unpacked(m, NULL);
    }
    ifd_free(data);
}

/* ---- comparison --------------------------------------------------------------------------------- */

static bool is_floatish(ifd_dtype d) { return ifd_dtype_is_float(d); }

static double elem_f64(const ifd_tensor *t, int64_t i) {
    const void *p = ifd_tensor_cdata(t);
    switch (ifd_tensor_dtype(t)) {
    case IFD_DTYPE_FLOAT: return ((const float *)p)[i];
    case IFD_DTYPE_DOUBLE: return ((const double *)p)[i];
    case IFD_DTYPE_FLOAT16: {
        uint16_t h = ((const uint16_t *)p)[i];
        uint32_t sign = (uint32_t)(h >> 15), e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, (int)e - 25);
        return sign ? -v : v;
    }
    case IFD_DTYPE_BFLOAT16: {
        uint32_t bits = (uint32_t)((const uint16_t *)p)[i] << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    default: return NAN;
    }
}

static int64_t elem_i64(const ifd_tensor *t, int64_t i, uint64_t *u) {
    const void *p = ifd_tensor_cdata(t);
    *u = 0;
    switch (ifd_tensor_dtype(t)) {
    case IFD_DTYPE_INT64: return ((const int64_t *)p)[i];
    case IFD_DTYPE_INT32: return ((const int32_t *)p)[i];
    case IFD_DTYPE_INT16: return ((const int16_t *)p)[i];
    case IFD_DTYPE_UINT64: *u = ((const uint64_t *)p)[i]; return 0;
    case IFD_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case IFD_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case IFD_DTYPE_INT8: case IFD_DTYPE_INT4: case IFD_DTYPE_INT2: return ((const int8_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}

/* 8-bit and 4-bit floats are compared by bit pattern: they are exact by construction. */
static bool compare(const ifd_tensor *got, const ifd_tensor *want, double rtol, double atol,
                    char *msg, size_t msg_size) {
    char a[256], b[256];
    ifd_dtype dt = ifd_tensor_dtype(want);
    if (ifd_tensor_dtype(got) != dt) {
        snprintf(msg, msg_size, "dtype %s, expected %s", ifd_dtype_name(ifd_tensor_dtype(got)),
                 ifd_dtype_name(dt));
        return false;
    }
    bool shape_ok = ifd_tensor_rank(got) == ifd_tensor_rank(want);
    for (int d = 0; shape_ok && d < ifd_tensor_rank(got); d++)
        shape_ok = ifd_tensor_dims(got)[d] == ifd_tensor_dims(want)[d];
    if (!shape_ok) {
        snprintf(msg, msg_size, "shape %s, expected %s",
                 ifd_shape_str(ifd_tensor_rank(got), ifd_tensor_dims(got), a, sizeof a),
                 ifd_shape_str(ifd_tensor_rank(want), ifd_tensor_dims(want), b, sizeof b));
        return false;
    }
    int64_t n = ifd_tensor_count(want);
    if (dt == IFD_DTYPE_STRING) {
        /* byte-exact */
        for (int64_t i = 0; i < n; i++) {
            size_t lx, ly;
            const char *x = ifd_tensor_get_string(got, i, &lx), *y = ifd_tensor_get_string(want, i, &ly);
            if (!x || !y || lx != ly || memcmp(x, y, lx)) {
                snprintf(msg, msg_size, "element %lld: \"%.*s\" (%zu bytes), expected \"%.*s\" (%zu "
                         "bytes)", (long long)i, (int)IFD_MIN(lx, (size_t)60), x ? x : "", lx,
                         (int)IFD_MIN(ly, (size_t)60), y ? y : "", ly);
                return false;
            }
        }
        return true;
    }
    bool fp = dt == IFD_DTYPE_FLOAT || dt == IFD_DTYPE_DOUBLE || dt == IFD_DTYPE_FLOAT16 ||
              dt == IFD_DTYPE_BFLOAT16;
    if (dt == IFD_DTYPE_FLOAT16 || dt == IFD_DTYPE_BFLOAT16) rtol = rtol > 1e-2 ? rtol : 1e-2;
    if (!fp && is_floatish(dt)) {
        const uint8_t *x = ifd_tensor_cdata(got), *y = ifd_tensor_cdata(want);
        for (int64_t i = 0; i < n; i++)
            if (x[i] != y[i]) {
                snprintf(msg, msg_size, "element %lld: bits 0x%02x, expected 0x%02x", (long long)i,
                         x[i], y[i]);
                return false;
            }
        return true;
    }
    for (int64_t i = 0; i < n; i++) {
        if (fp) {
            double x = elem_f64(got, i), y = elem_f64(want, i);
            bool ok = (isnan(x) && isnan(y)) || x == y || fabs(x - y) <= atol + rtol * fabs(y);
            if (!ok) {
                snprintf(msg, msg_size, "element %lld: %.9g, expected %.9g (of %lld)", (long long)i,
                         x, y, (long long)n);
                return false;
            }
        } else {
            uint64_t ux, uy;
            int64_t x = elem_i64(got, i, &ux), y = elem_i64(want, i, &uy);
            if (x != y || ux != uy) {
                snprintf(msg, msg_size, "element %lld: %lld, expected %lld (of %lld)", (long long)i,
                         (long long)(ux ? (int64_t)ux : x), (long long)(uy ? (int64_t)uy : y),
                         (long long)n);
                return false;
            }
        }
    }
    return true;
}

/* ---- running a case ------------------------------------------------------------------------------ */

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fail_msg(char *out, size_t size, const char *what) {
    snprintf(out, size, "FAIL %s: %s", what, ifd_last_error());
}

/* Returns the result line in out: "PASS", "FAIL ...". */
static void run_case(const case_info *c, const options *o, char *out, size_t out_size) {
    ifd_model *model = NULL;
    ifd_session *session = NULL;
    ifd_session_options so;
    ifd_tensor *inputs[64] = {0}, *outputs[64] = {0}, *expected[64] = {0};
    const char *names[64];
    size_t n_in = 0, n_out = 0;
    char msg[768];
    double rtol = 1e-3, atol = 1e-7;
    DIR *d = NULL;
    char *sets[64];
    int n_sets = 0;
    snprintf(out, out_size, "PASS");
    if (ifd_model_load_file(c->model, &model)) {
        fail_msg(out, out_size, "load");
        goto out;
    }
    ifd_session_options_init(&so);
    so.num_threads = o->threads;
    if (ifd_session_create(model, &so, &session)) {
        fail_msg(out, out_size, "session");
        goto out;
    }
    n_in = ifd_session_input_count(session);
    n_out = ifd_session_output_count(session);
    if (n_in > 64 || n_out > 64) {
        snprintf(out, out_size, "FAIL too many inputs/outputs");
        goto out;
    }
    for (size_t i = 0; i < n_in; i++) {
        ifd_io_info info;
        ifd_session_input_info(session, i, &info);
        names[i] = info.name;
    }
    if (c->light) {
        /* arange(n).reshape(shape) / n for each input, unknown dims as 1 */
        if (strstr(c->name, "densenet")) rtol = 2e-3;
        for (size_t i = 0; i < n_in; i++) {
            ifd_io_info info;
            int64_t dims[IFD_MAX_RANK];
            ifd_session_input_info(session, i, &info);
            for (int k = 0; k < info.rank; k++) dims[k] = info.dims[k] < 0 ? 1 : info.dims[k];
            if (ifd_tensor_create(IFD_DTYPE_FLOAT, info.rank < 0 ? 0 : info.rank, dims, &inputs[i])) {
                fail_msg(out, out_size, "input");
                goto out;
            }
            float *p = ifd_tensor_data(inputs[i]);
            int64_t cnt = ifd_tensor_count(inputs[i]);
            for (int64_t k = 0; k < cnt; k++) p[k] = (float)((double)k / (double)cnt);
        }
        char path[1200];
        snprintf(path, sizeof path, "%.*s_output_0.pb", (int)(strlen(c->model) - 5), c->model);
        if (ifd_tensorproto_read(path, &expected[0])) {
            fail_msg(out, out_size, "expected output");
            goto out;
        }
        if (ifd_session_run(session, n_in, names, (const ifd_tensor *const *)inputs, n_out, NULL,
                            outputs)) {
            fail_msg(out, out_size, "run");
            goto out;
        }
        if (!compare(outputs[0], expected[0], rtol, atol, msg, sizeof msg))
            snprintf(out, out_size, "FAIL output 0: %s", msg);
        goto out;
    }
    d = opendir(c->dir);
    if (!d) {
        snprintf(out, out_size, "FAIL cannot open %s", c->dir);
        goto out;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (!strncmp(e->d_name, "test_data_set_", 14) && n_sets < 64) sets[n_sets++] = strdup(e->d_name);
    qsort(sets, (size_t)n_sets, sizeof *sets, cmp_str);
    if (n_sets == 0) snprintf(out, out_size, "FAIL no test_data_set");
    for (int sidx = 0; sidx < n_sets; sidx++) {
        char path[1600];
        size_t got_in = 0, got_out = 0;
        for (size_t i = 0; i < 64; i++) {
            snprintf(path, sizeof path, "%s/%s/input_%zu.pb", c->dir, sets[sidx], i);
            if (!file_exists(path)) break;
            if (i >= n_in) {
                snprintf(out, out_size, "FAIL test data has more inputs than the model (%zu)", n_in);
                goto out;
            }
            if (ifd_tensorproto_read(path, &inputs[i])) {
                fail_msg(out, out_size, "input data");
                goto out;
            }
            got_in++;
        }
        for (size_t i = 0; i < 64; i++) {
            snprintf(path, sizeof path, "%s/%s/output_%zu.pb", c->dir, sets[sidx], i);
            if (!file_exists(path)) break;
            if (ifd_tensorproto_read(path, &expected[i])) {
                fail_msg(out, out_size, "output data");
                goto out;
            }
            got_out++;
        }
        if (got_out != n_out) {
            snprintf(out, out_size, "FAIL model has %zu outputs, test data %zu", n_out, got_out);
            goto out;
        }
        if (ifd_session_run(session, got_in, names, (const ifd_tensor *const *)inputs, n_out, NULL,
                            outputs)) {
            fail_msg(out, out_size, "run");
            goto out;
        }
        for (size_t i = 0; i < n_out; i++)
            if (!compare(outputs[i], expected[i], rtol, atol, msg, sizeof msg)) {
                snprintf(out, out_size, "FAIL %s output %zu: %s", sets[sidx], i, msg);
                goto out;
            }
        for (size_t i = 0; i < 64; i++) {
            ifd_tensor_free(inputs[i]);
            ifd_tensor_free(outputs[i]);
            ifd_tensor_free(expected[i]);
            inputs[i] = outputs[i] = expected[i] = NULL;
        }
    }
out:
    for (size_t i = 0; i < 64; i++) {
        ifd_tensor_free(inputs[i]);
        ifd_tensor_free(outputs[i]);
        ifd_tensor_free(expected[i]);
    }
    for (int i = 0; i < n_sets; i++) free(sets[i]);
    if (d) closedir(d);
    ifd_session_free(session);
    ifd_model_free(model);
    for (char *p = out; *p; p++)
        if (*p == '\n') *p = ' ';
}

static void run_case_isolated(const case_info *c, const options *o, char *out, size_t out_size) {
    int fds[2];
    if (o->no_fork || pipe(fds) != 0) {
        run_case(c, o, out, out_size);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        char buf[1024];
        alarm((unsigned)o->timeout);
        run_case(c, o, buf, sizeof buf);
        ssize_t w = write(fds[1], buf, strlen(buf));
        (void)w;
        close(fds[1]);
        /* exit(), not _exit(): LeakSanitizer checks at exit in sanitizer builds */
        exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fds[0], out + len, out_size - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        if (len >= out_size - 1) break;
    }
    out[len] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (len > 0 && !strcmp(out, "PASS") && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        snprintf(out, out_size, "FAIL passed, but the process then %s %d (leak or sanitizer report)",
                 WIFSIGNALED(status) ? "died with signal" : "exited with status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        return;
    }
    if (len == 0) {
        if (WIFSIGNALED(status))
            snprintf(out, out_size, "FAIL crashed with signal %d%s", WTERMSIG(status),
                     WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
        else
            snprintf(out, out_size, "FAIL child exited with status %d", WEXITSTATUS(status));
    }
}

/* ---- discovery, expected failures, docs ------------------------------------------------------------ */

static case_info *g_cases;
static int g_n_cases, g_cap_cases;

static case_info *new_case(void) {
    if (g_n_cases == g_cap_cases) {
        g_cap_cases = g_cap_cases ? g_cap_cases * 2 : 2048;
        g_cases = realloc(g_cases, (size_t)g_cap_cases * sizeof *g_cases);
        if (!g_cases) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
    }
    case_info *c = &g_cases[g_n_cases++];
    memset(c, 0, sizeof *c);
    return c;
}

static void discover(const char *root, const char *suite) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, suite);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s: %s\n", dir, strerror(errno));
        return;
    }
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        bool light = !strcmp(suite, "light");
        size_t len = strlen(names[i]);
        if (light && (len < 5 || strcmp(names[i] + len - 5, ".onnx"))) {
            free(names[i]);
            continue;
        }
        case_info *c = new_case();
        c->light = light;
        if (light) {
            snprintf(c->name, sizeof c->name, "light/%.*s", (int)(len - 5), names[i]);
            snprintf(c->dir, sizeof c->dir, "%s", dir);
            snprintf(c->model, sizeof c->model, "%s/%s", dir, names[i]);
        } else {
            snprintf(c->name, sizeof c->name, "%s/%s", suite, names[i]);
            snprintf(c->dir, sizeof c->dir, "%s/%s", dir, names[i]);
            snprintf(c->model, sizeof c->model, "%s/model.onnx", c->dir);
            if (!file_exists(c->model)) {
                g_n_cases--;
                free(names[i]);
                continue;
            }
        }
        free(names[i]);
    }
    free(names);
}

static char **g_xfail;
static int g_n_xfail;

static void load_xfail(const char *path) {
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f) {
        fprintf(stderr, "cannot open expected-failures file %s\n", path);
        exit(2);
    }
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ') p++;
        p[strcspn(p, " \t\r\n#")] = 0;
        if (!*p) continue;
        g_xfail = realloc(g_xfail, (size_t)(g_n_xfail + 1) * sizeof *g_xfail);
        g_xfail[g_n_xfail++] = strdup(p);
    }
    fclose(f);
}

static bool is_xfail(const char *name) {
    for (int i = 0; i < g_n_xfail; i++)
        if (!strcmp(g_xfail[i], name)) return true;
    return false;
}

typedef struct op_stat {
    char name[64];
    int pass, fail, skip;
} op_stat;

static op_stat *find_stat(op_stat *stats, int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(stats[i].name, name)) return &stats[i];
    snprintf(stats[*n].name, sizeof stats[*n].name, "%s", name);
    return &stats[(*n)++];
}

static int cmp_stat(const void *a, const void *b) {
    return strcmp(((const op_stat *)a)->name, ((const op_stat *)b)->name);
}

/* A node/ case counts toward the operator named by its test: the model's op whose name matches
 * the case name best (test_<op>...), else every op of the model. */
static void write_ops_doc(const char *path, char (*results)[8]) {
    op_stat *stats = calloc(4096, sizeof *stats);
    int n = 0;
    for (size_t i = 0; i < ifd_op_count(); i++) {
        const ifd_op_def *d = ifd_op_at(i);
        char full[64];
        snprintf(full, sizeof full, "%s%s%s", d->domain[0] ? d->domain : "", d->domain[0] ? ":" : "", d->name);
        find_stat(stats, &n, full);
    }
    for (int c = 0; c < g_n_cases; c++) {
        case_info *ci = &g_cases[c];
        if (strncmp(ci->name, "node/", 5) || !results[c][0]) continue;
        for (int k = 0; k < ci->n_ops; k++) {
            op_stat *s = find_stat(stats, &n, ci->ops[k]);
            if (results[c][0] == 'P') s->pass++;
            else if (results[c][0] == 'S') s->skip++;
            else s->fail++;
        }
    }
    qsort(stats, (size_t)n, sizeof *stats, cmp_stat);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        free(stats);
        return;
    }
    fprintf(f, "# Operators\n\nGenerated by `ifd_conformance --ops-doc` from the operator registry "
               "and a run over the ONNX backend node tests (../shared/onnx-tests/node). A test case "
               "counts toward every operator its model uses, so the `*_expanded` cases also exercise "
               "the primitive operators they expand to.\n\n"
               "| operator | opsets | node tests passed | failed | skipped (out of scope) |\n"
               "| --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < n; i++) {
        const char *colon = strchr(stats[i].name, ':');
        const ifd_op_def *d = colon ? NULL : ifd_op_find("", stats[i].name);
        if (colon) {
            char dom[64];
            snprintf(dom, sizeof dom, "%.*s", (int)(colon - stats[i].name), stats[i].name);
            d = ifd_op_find(dom, colon + 1);
        }
        char range[32];
        if (d) snprintf(range, sizeof range, "%d-%d", d->since, IFD_MAX_OPSET);
        else snprintf(range, sizeof range, "out of scope");
        fprintf(f, "| %s | %s | %d | %d | %d |\n", stats[i].name, range, stats[i].pass, stats[i].fail,
                stats[i].skip);
    }
    fclose(f);
    free(stats);
}

static void usage(void) {
    fprintf(stderr, "usage: ifd_conformance [--root DIR] [--filter SUBSTR]... [--verbose] "
                    "[--threads N] [--xfail FILE] [--ops-doc FILE] [--no-fork] [--timeout SECS]\n");
}

int main(int argc, char **argv) {
    options o = {.root = getenv("IFD_ONNX_TESTS"), .threads = 1, .timeout = 120};
    if (!o.root) o.root = "../shared/onnx-tests";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--root") && v) o.root = argv[++i];
        else if (!strcmp(a, "--filter") && v && o.n_filters < 32) o.filters[o.n_filters++] = argv[++i];
        else if (!strcmp(a, "--verbose")) o.verbose = true;
        else if (!strcmp(a, "--no-fork")) o.no_fork = true;
        else if (!strcmp(a, "--threads") && v) o.threads = atoi(argv[++i]);
        else if (!strcmp(a, "--timeout") && v) o.timeout = atoi(argv[++i]);
        else if (!strcmp(a, "--xfail") && v) o.xfail_path = argv[++i];
        else if (!strcmp(a, "--ops-doc") && v) o.ops_doc = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    const char *suites[] = {"node", "simple", "pytorch-converted", "pytorch-operator", "light"};
    for (size_t s = 0; s < IFD_ARRAY_LEN(suites); s++) discover(o.root, suites[s]);
    if (g_n_cases == 0) {
        fprintf(stderr, "no conformance cases under %s\n", o.root);
        return 2;
    }
    if (o.xfail_path) load_xfail(o.xfail_path);
    char (*results)[8] = calloc((size_t)g_n_cases, sizeof *results);
    int pass = 0, fail = 0, skip = 0, xfail = 0, xpass = 0;
    for (int c = 0; c < g_n_cases; c++) {
        case_info *ci = &g_cases[c];
        if (o.n_filters) {
            bool match = false;
            for (int k = 0; k < o.n_filters; k++)
                if (strstr(ci->name, o.filters[k])) match = true;
            if (!match) continue;
        }
        classify(ci);
        if (ci->skip_reason[0]) {
            skip++;
            strcpy(results[c], "S");
            if (o.verbose) printf("SKIP %s: %s\n", ci->name, ci->skip_reason);
            continue;
        }
        char res[1024];
        run_case_isolated(ci, &o, res, sizeof res);
        bool ok = !strcmp(res, "PASS");
        if (!ok && ci->training_dropout && strstr(res, "is random")) {
            /* Dropout in training mode with a non-zero ratio draws random numbers: out of scope */
            skip++;
            strcpy(results[c], "S");
            if (o.verbose) printf("SKIP %s: Dropout in training mode is a random generator\n", ci->name);
            continue;
        }
        bool expected_fail = is_xfail(ci->name);
        strcpy(results[c], ok ? "P" : "F");
        if (ok && expected_fail) {
            xpass++;
            printf("XPASS %s (listed as an expected failure: remove it from the list)\n", ci->name);
        } else if (ok) {
            pass++;
            if (o.verbose) printf("PASS %s\n", ci->name);
        } else if (expected_fail) {
            xfail++;
            printf("XFAIL %s: %s\n", ci->name, res + 5);
        } else {
            fail++;
            printf("FAIL %s: %s\n", ci->name, res + 5);
        }
        fflush(stdout);
    }
    if (o.ops_doc) write_ops_doc(o.ops_doc, results);
    printf("conformance: %d passed, %d failed, %d expected failures, %d skipped (out of scope)%s\n",
           pass, fail, xfail, skip, xpass ? ", some expected failures now pass" : "");
    printf("%d passed, %d failed, %d skipped\n", pass, fail + xpass, skip);
    free(results);
    return fail || xpass ? 1 : 0;
}
