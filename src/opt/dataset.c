/* A folder of .npy input samples, read whole at open and checked against the model's inputs
 * (layout in dataset.h). Used by `inferd eval` (every batch through two models) and by
 * `inferd quantize --calibration` (activation ranges). */
#include "opt/dataset.h"

#include "base/base.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ifd_dataset {
    size_t n_inputs;
    char **names;           /* [n_inputs] the model's input names, in model order */
    size_t n_batches;
    ifd_tensor **tensors;   /* [n_batches * n_inputs] batch-major */
    int64_t *rows;          /* [n_batches] */
    int64_t total_rows;
};

/* Entries of one folder, sorted by name: .npy regular files and subfolders. Hidden entries
 * (".x") and other files (a README, a labels .txt) are skipped. */
typedef struct name_list {
    size_t n, cap;
    char **items;
} name_list;

static void name_list_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) ifd_free(l->items[i]);
    ifd_free(l->items);
    memset(l, 0, sizeof *l);
}

static ifd_status name_list_add(name_list *l, const char *name) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16, bytes;
        if (!ifd_mul_size(cap, sizeof *l->items, &bytes))
            return ifd_error(IFD_ERR_TOO_BIG, "too many files in the data folder");
        char **items = ifd_realloc(l->items, bytes);
        if (!items) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory listing the data folder");
        l->items = items;
        l->cap = cap;
    }
    if (!(l->items[l->n] = ifd_strdup(name)))
        return ifd_error(IFD_ERR_NO_MEMORY, "out of memory listing the data folder");
    l->n++;
    return IFD_OK;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool ends_with_npy(const char *s) {
    size_t n = strlen(s);
    return n > 4 && !strcmp(s + n - 4, ".npy");
}

/* "dir/name", allocated (free with ifd_free). */
static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name), total;
    if (!ifd_add_size(a, b, &total) || !ifd_add_size(total, 2, &total)) return NULL;
    char *p = ifd_malloc(total);
    if (p) snprintf(p, total, "%s/%s", dir, name);
    return p;
}

static ifd_status list_folder(const char *dir, name_list *files, name_list *subdirs) {
    ifd_status st = IFD_OK;
    DIR *d = opendir(dir);
    if (!d) return ifd_error(IFD_ERR_IO, "cannot open data folder '%s': %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *path = join_path(dir, e->d_name);
        struct stat sb;
        if (!path) {
            st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory listing '%s'", dir);
            goto out;
        }
        /* stat, not d_type: d_type is DT_UNKNOWN on some file systems, and a symlink to a
         * sample file should count as one */
        int rc = stat(path, &sb);
        ifd_free(path);
        if (rc != 0) continue; /* a dangling link: not a sample */
        if (S_ISREG(sb.st_mode) && ends_with_npy(e->d_name))
            st = name_list_add(files, e->d_name);
        else if (S_ISDIR(sb.st_mode) && subdirs)
            st = name_list_add(subdirs, e->d_name);
        if (st) goto out;
    }
    if (files->n) qsort(files->items, files->n, sizeof *files->items, cmp_names);
    if (subdirs && subdirs->n) qsort(subdirs->items, subdirs->n, sizeof *subdirs->items, cmp_names);
out:
    closedir(d);
    return st;
}

/* The file name an input's samples are stored under: the name with every character outside
 * [A-Za-z0-9._-] as '_' (what `inferd run -o` writes), plus ".npy". */
static char *input_file_name(const char *input) {
    size_t n = strlen(input), total;
    if (!ifd_add_size(n, 5, &total)) return NULL;
    char *s = ifd_malloc(total);
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = input[i];
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
        s[i] = keep ? c : '_';
    }
    memcpy(s + n, ".npy", 5);
    return s;
}

/* "[batch,1,8,8]" with symbolic dims by name ("?" when unnamed). */
static const char *info_shape_str(const ifd_io_info *info, char *buf, size_t size) {
    size_t used = 0;
    if (info->rank < 0) {
        snprintf(buf, size, "(any shape)");
        return buf;
    }
    used += (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < info->rank && used < size; d++) {
        const char *sep = d ? "," : "";
        if (info->dims[d] >= 0)
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", sep,
                                     (long long)info->dims[d]);
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%s", sep,
                                     info->dim_names[d] && info->dim_names[d][0]
                                         ? info->dim_names[d]
                                         : "?");
    }
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* Does the tensor read from `path` fit `info`? dtype, rank and every fixed dim must match;
 * symbolic dims take any size. */
static ifd_status check_fits(const char *path, const ifd_io_info *info, const ifd_tensor *t) {
    char have[256], want[256];
    if (info->dtype != IFD_DTYPE_UNDEFINED && t->dtype != info->dtype)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "'%s': dtype %s, but input '%s' is %s", path,
                         ifd_dtype_name(t->dtype), info->name, ifd_dtype_name(info->dtype));
    if (info->rank < 0) return IFD_OK;
    bool fits = t->rank == info->rank;
    for (int d = 0; fits && d < info->rank; d++)
        if (info->dims[d] >= 0 && t->dims[d] != info->dims[d]) fits = false;
    if (!fits)
        return ifd_error(IFD_ERR_SHAPE, "'%s': shape %s does not fit input '%s' %s", path,
                         ifd_shape_str(t->rank, t->dims, have, sizeof have), info->name,
                         info_shape_str(info, want, sizeof want));
    return IFD_OK;
}

/* Room for one more batch; the batch's tensor slots are zeroed. */
static ifd_status add_batch(ifd_dataset *d, ifd_tensor ***slots) {
    size_t nb, nt, tbytes, rbytes;
    if (!ifd_add_size(d->n_batches, 1, &nb) || !ifd_mul_size(nb, d->n_inputs, &nt) ||
        !ifd_mul_size(nt, sizeof *d->tensors, &tbytes) ||
        !ifd_mul_size(nb, sizeof *d->rows, &rbytes))
        return ifd_error(IFD_ERR_TOO_BIG, "too many batches");
    ifd_tensor **tensors = ifd_realloc(d->tensors, tbytes);
    if (!tensors) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory reading the data folder");
    d->tensors = tensors;
    int64_t *rows = ifd_realloc(d->rows, rbytes);
    if (!rows) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory reading the data folder");
    d->rows = rows;
    *slots = d->tensors + d->n_batches * d->n_inputs;
    memset(*slots, 0, d->n_inputs * sizeof **slots);
    d->rows[d->n_batches] = 0;
    d->n_batches = nb;
    return IFD_OK;
}

/* Read input k of the current batch from `path` and check it. */
static ifd_status read_sample(const char *path, const ifd_io_info *info, ifd_tensor **slot) {
    ifd_status st = ifd_npy_read(path, slot);
    if (st) return st; /* the message names the file */
    return check_fits(path, info, *slot);
}

/* Samples in a batch: dim 0 of the first input that has one. Inputs without a batch dim (a
 * rank-0 scalar) count as one sample. */
static ifd_status finish_batch(ifd_dataset *d, const char *where) {
    size_t b = d->n_batches - 1;
    ifd_tensor **slots = d->tensors + b * d->n_inputs;
    int64_t rows = 1;
    for (size_t k = 0; k < d->n_inputs; k++)
        if (slots[k]->rank > 0) {
            rows = slots[k]->dims[0];
            break;
        }
    d->rows[b] = rows;
    if (!ifd_add_i64(d->total_rows, rows, &d->total_rows))
        return ifd_error(IFD_ERR_TOO_BIG, "%s: too many samples", where);
    return IFD_OK;
}

/* files: the .npy names in one folder; each must be one of `file_names` (an input's file). */
static ifd_status check_no_strays(const char *dir, const name_list *files, size_t n_inputs,
                                  char *const *file_names, const ifd_io_info *inputs) {
    for (size_t f = 0; f < files->n; f++) {
        bool known = false;
        for (size_t k = 0; k < n_inputs && !known; k++)
            known = !strcmp(files->items[f], file_names[k]);
        if (known) continue;
        char expected[512];
        size_t used = 0;
        expected[0] = 0;
        for (size_t k = 0; k < n_inputs && used < sizeof expected; k++)
            used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%s (input '%s')",
                                     k ? ", " : "", file_names[k], inputs[k].name);
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "'%s/%s' is not named after any model input; expected %s", dir,
                         files->items[f], expected);
    }
    return IFD_OK;
}

/* One batch from one folder holding <input>.npy for every input. */
static ifd_status read_named_batch(ifd_dataset *d, const char *dir, const ifd_io_info *inputs,
                                   char *const *file_names) {
    name_list files = {0};
    ifd_tensor **slots;
    ifd_status st = list_folder(dir, &files, NULL);
    if (st) goto out;
    if ((st = check_no_strays(dir, &files, d->n_inputs, file_names, inputs))) goto out;
    if ((st = add_batch(d, &slots))) goto out;
    for (size_t k = 0; k < d->n_inputs; k++) {
        bool present = false;
        for (size_t f = 0; f < files.n && !present; f++)
            present = !strcmp(files.items[f], file_names[k]);
        if (!present) {
            st = ifd_error(IFD_ERR_NOT_FOUND, "'%s' has no %s for input '%s'", dir, file_names[k],
                           inputs[k].name);
            goto out;
        }
        char *path = join_path(dir, file_names[k]);
        if (!path) {
            st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        st = read_sample(path, &inputs[k], &slots[k]);
        ifd_free(path);
        if (st) goto out;
    }
    st = finish_batch(d, dir);
out:
    name_list_free(&files);
    return st;
}

ifd_status ifd_dataset_open(const char *dir, size_t n_inputs, const ifd_io_info *inputs,
                            ifd_dataset **out) {
    ifd_status st = IFD_OK;
    ifd_dataset *d = NULL;
    name_list files = {0}, subdirs = {0};
    char **file_names = NULL;
    if (out) *out = NULL;
    if (!dir || !out || (n_inputs && !inputs))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "ifd_dataset_open: NULL argument");
    if (n_inputs == 0)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "the model has no inputs: there is nothing to read from '%s'", dir);
    if (!(d = ifd_calloc(1, sizeof *d)) || !(d->names = ifd_calloc(n_inputs, sizeof *d->names)) ||
        !(file_names = ifd_calloc(n_inputs, sizeof *file_names))) {
        st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory opening '%s'", dir);
        goto out;
    }
    d->n_inputs = n_inputs;
    for (size_t k = 0; k < n_inputs; k++) {
        if (!inputs[k].name) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "input %zu has no name", k);
            goto out;
        }
        if (!(d->names[k] = ifd_strdup(inputs[k].name)) ||
            !(file_names[k] = input_file_name(inputs[k].name))) {
            st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory opening '%s'", dir);
            goto out;
        }
        /* two names that differ only in characters outside [A-Za-z0-9._-] would share a file */
        for (size_t j = 0; j < k; j++)
            if (!strcmp(file_names[j], file_names[k])) {
                st = ifd_error(IFD_ERR_UNSUPPORTED,
                               "inputs '%s' and '%s' would both be read from %s", inputs[j].name,
                               inputs[k].name, file_names[k]);
                goto out;
            }
    }
    if ((st = list_folder(dir, &files, &subdirs))) goto out;

    if (n_inputs == 1 && files.n) {
        /* one input: every .npy in the folder is one batch of it, whatever its name */
        for (size_t f = 0; f < files.n; f++) {
            ifd_tensor **slots;
            char *path = join_path(dir, files.items[f]);
            if (!path) {
                st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
                goto out;
            }
            if (!(st = add_batch(d, &slots)) && !(st = read_sample(path, &inputs[0], &slots[0])))
                st = finish_batch(d, path);
            ifd_free(path);
            if (st) goto out;
        }
    } else if (files.n) {
        /* several inputs, DIR/<input>.npy: one batch holding every sample */
        if ((st = read_named_batch(d, dir, inputs, file_names))) goto out;
    } else if (subdirs.n) {
        /* DIR/<sample>/<input>.npy: one batch per subfolder */
        for (size_t s = 0; s < subdirs.n; s++) {
            char *sub = join_path(dir, subdirs.items[s]);
            if (!sub) {
                st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
                goto out;
            }
            st = read_named_batch(d, sub, inputs, file_names);
            ifd_free(sub);
            if (st) goto out;
        }
    } else {
        char expected[512];
        size_t used = 0;
        expected[0] = 0;
        for (size_t k = 0; k < n_inputs && used < sizeof expected; k++)
            used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%s",
                                     k ? ", " : "", file_names[k]);
        st = ifd_error(IFD_ERR_NOT_FOUND,
                       "'%s' holds no .npy samples: expected %s, or one subfolder per batch "
                       "holding %s",
                       dir, n_inputs == 1 ? "one .npy file per batch" : expected, expected);
        goto out;
    }
    *out = d;
    d = NULL;
out:
    if (file_names)
        for (size_t k = 0; k < n_inputs; k++) ifd_free(file_names[k]);
    ifd_free(file_names);
    name_list_free(&files);
    name_list_free(&subdirs);
    ifd_dataset_free(d);
    return st;
}

size_t ifd_dataset_count(const ifd_dataset *d) { return d ? d->n_batches : 0; }

const ifd_tensor *const *ifd_dataset_batch(const ifd_dataset *d, size_t i) {
    if (!d || i >= d->n_batches) return NULL;
    return (const ifd_tensor *const *)(d->tensors + i * d->n_inputs);
}

const char *const *ifd_dataset_input_names(const ifd_dataset *d) {
    return d ? (const char *const *)d->names : NULL;
}

int64_t ifd_dataset_batch_rows(const ifd_dataset *d, size_t i) {
    return d && i < d->n_batches ? d->rows[i] : 0;
}

int64_t ifd_dataset_total_rows(const ifd_dataset *d) { return d ? d->total_rows : 0; }

void ifd_dataset_free(ifd_dataset *d) {
    if (!d) return;
    if (d->tensors) {
        /* the last batch may be partly filled when open failed: its empty slots are NULL */
        for (size_t i = 0; i < d->n_batches * d->n_inputs; i++) ifd_tensor_free(d->tensors[i]);
    }
    if (d->names)
        for (size_t k = 0; k < d->n_inputs; k++) ifd_free(d->names[k]);
    ifd_free(d->names);
    ifd_free(d->tensors);
    ifd_free(d->rows);
    ifd_free(d);
}
