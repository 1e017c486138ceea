/* Helpers shared by the subcommands: input files, symbolic dims, random inputs. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ifd_cli_error(const char *what, ifd_status st) {
    const char *detail = ifd_last_error();
    if (detail[0])
        fprintf(stderr, "inferd: %s: %s [%s]\n", what, detail, ifd_status_string(st));
    else
        fprintf(stderr, "inferd: %s: %s\n", what, ifd_status_string(st));
    return 1;
}

bool ifd_cli_parse_int(const char *s, long long min, long long max, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int ifd_cli_add_input(ifd_cli_inputs *in, const ifd_session *session, const char *spec) {
    const char *eq = strchr(spec, '=');
    char name[512];
    const char *path;
    ifd_status st;
    if (in->n >= 64) {
        fprintf(stderr, "inferd: too many inputs\n");
        return 1;
    }
    if (eq) {
        snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
        path = eq + 1;
    } else {
        ifd_io_info info;
        if (ifd_session_input_count(session) != 1) {
            fprintf(stderr, "inferd: -i %s: the model has %zu inputs; write -i NAME=FILE\n", spec,
                    ifd_session_input_count(session));
            return 1;
        }
        ifd_session_input_info(session, 0, &info);
        snprintf(name, sizeof name, "%s", info.name);
        path = spec;
    }
    ifd_tensor *t = NULL;
    if (ends_with(path, ".pb"))
        st = ifd_tensorproto_read(path, &t);
    else
        st = ifd_npy_read(path, &t);
    if (st) return ifd_cli_error(path, st);
    in->names[in->n] = strdup(name);
    in->tensors[in->n] = t;
    in->n++;
    return 0;
}

void ifd_cli_inputs_free(ifd_cli_inputs *in) {
    for (size_t i = 0; i < in->n; i++) {
        free(in->names[i]);
        ifd_tensor_free(in->tensors[i]);
    }
    in->n = 0;
}

int ifd_cli_add_dim(ifd_cli_dims *dims, const char *spec) {
    const char *eq = strchr(spec, '=');
    long long v;
    if (!eq || dims->n >= 32 || !ifd_cli_parse_int(eq + 1, 0, 1LL << 40, &v)) {
        fprintf(stderr, "inferd: --dim wants NAME=VALUE, got '%s'\n", spec);
        return 1;
    }
    snprintf(dims->names[dims->n], sizeof dims->names[0], "%.*s", (int)(eq - spec), spec);
    dims->values[dims->n++] = v;
    return 0;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}

static void fill_random(ifd_tensor *t, bool zeros) {
    int64_t n = ifd_tensor_count(t);
    void *p = ifd_tensor_data(t);
    if (zeros || ifd_tensor_dtype(t) == IFD_DTYPE_STRING) return; /* created zeroed; strings stay "" */
    for (int64_t i = 0; i < n; i++) {
        float f = (float)(rnd() % 2000000) / 1000000.0f - 1.0f;
        switch (ifd_tensor_dtype(t)) {
        case IFD_DTYPE_FLOAT: ((float *)p)[i] = f; break;
        case IFD_DTYPE_DOUBLE: ((double *)p)[i] = f; break;
        case IFD_DTYPE_INT64: ((int64_t *)p)[i] = rnd() % 8; break;
        case IFD_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)(rnd() % 8); break;
        case IFD_DTYPE_BOOL: ((uint8_t *)p)[i] = rnd() & 1; break;
        default:
            /* other types: small non-negative integers in every byte width */
            memset((char *)p + (size_t)i * ifd_dtype_size(ifd_tensor_dtype(t)), (int)(rnd() % 4),
                   1);
            break;
        }
    }
}

int ifd_cli_fill_missing_inputs(ifd_cli_inputs *in, const ifd_session *session,
                                const ifd_cli_dims *dims, bool zeros) {
    for (size_t i = 0; i < ifd_session_input_count(session); i++) {
        ifd_io_info info;
        ifd_session_input_info(session, i, &info);
        bool given = false;
        for (size_t k = 0; k < in->n; k++)
            if (!strcmp(in->names[k], info.name)) given = true;
        if (given) continue;
        if (in->n >= 64) return 1;
        int64_t shape[IFD_MAX_RANK];
        int rank = info.rank < 0 ? 0 : info.rank;
        for (int d = 0; d < rank; d++) {
            shape[d] = info.dims[d];
            if (shape[d] < 0) {
                shape[d] = 1;
                for (size_t k = 0; k < dims->n; k++)
                    if (info.dim_names[d] && !strcmp(dims->names[k], info.dim_names[d]))
                        shape[d] = dims->values[k];
            }
        }
        ifd_dtype dt = info.dtype == IFD_DTYPE_UNDEFINED ? IFD_DTYPE_FLOAT : info.dtype;
        ifd_tensor *t = NULL;
        ifd_status st = ifd_tensor_create(dt, rank, shape, &t);
        if (st) return ifd_cli_error(info.name, st);
        fill_random(t, zeros);
        in->names[in->n] = strdup(info.name);
        in->tensors[in->n] = t;
        in->n++;
    }
    return 0;
}

int ifd_cli_open(const char *model_path, long long threads, int n_specs, const char *const *specs,
                 ifd_cli_inputs *in, ifd_model **model, ifd_session **session) {
    ifd_status st = ifd_model_load_file(model_path, model);
    if (st) return ifd_cli_error(model_path, st);
    ifd_session_options opts;
    ifd_session_options_init(&opts);
    opts.num_threads = (int)threads;
    if ((st = ifd_session_create(*model, &opts, session)) != IFD_OK)
        return ifd_cli_error(model_path, st);
    for (int i = 0; i < n_specs; i++)
        if (ifd_cli_add_input(in, *session, specs[i])) return 1;
    return 0;
}
