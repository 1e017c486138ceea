/* DIR/<name>/config.json: Triton's field names. Every field is checked; an unknown field or a
 * bad value fails the model's load with a message naming the field. */
#include "serve/serve.h"

#include <stdio.h>
#include <string.h>

void ifd_serve_config_default(ifd_serve_config *c) {
    memset(c, 0, sizeof *c);
    c->instance_count = 1;
    c->policy = IFD_POLICY_LATEST;
    c->latest_n = 1;
    c->drift_enabled = true;
    c->drift_threshold = 0.25;
    c->drift_window = 20000;
}

static bool get_int(const json_t *v, int64_t lo, int64_t hi, int64_t *out);

/* {"enabled": true, "threshold": 0.25, "window": 20000} */
static bool parse_drift(const json_t *v, ifd_serve_config *c, char *err, size_t errsize) {
    if (!json_is_object(v)) {
        snprintf(err, errsize, "config field 'drift' must be an object");
        return false;
    }
    const char *key;
    json_t *f;
    json_object_foreach((json_t *)v, key, f) {
        if (!strcmp(key, "enabled")) {
            if (!json_is_boolean(f)) {
                snprintf(err, errsize, "config field 'drift.enabled' must be true or false");
                return false;
            }
            c->drift_enabled = json_is_true(f);
        } else if (!strcmp(key, "threshold")) {
            double t = json_is_number(f) ? json_number_value(f) : -1;
            if (!(t > 0 && t <= 100)) {
                snprintf(err, errsize, "config field 'drift.threshold' must be a number in "
                         "(0, 100] (a PSI; 0.25 is the usual 'shifted')");
                return false;
            }
            c->drift_threshold = t;
        } else if (!strcmp(key, "window")) {
            if (!get_int(f, 100, 100000000, &c->drift_window)) {
                snprintf(err, errsize, "config field 'drift.window' must be in 100..100000000 "
                         "(sampled elements)");
                return false;
            }
        } else {
            snprintf(err, errsize, "config field 'drift.%.64s' is unknown", key);
            return false;
        }
    }
    return true;
}

static bool get_int(const json_t *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!json_is_integer(v)) return false;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return false;
    *out = x;
    return true;
}

static bool parse_policy(const json_t *p, ifd_serve_config *c, char *err, size_t errsize) {
    if (!json_is_object(p) || json_object_size(p) != 1) {
        snprintf(err, errsize,
                 "config field 'version_policy' must hold exactly one of latest, specific, all");
        return false;
    }
    const json_t *v;
    int64_t n;
    if ((v = json_object_get(p, "latest"))) {
        /* {"latest": N} or Triton's {"latest": {"num_versions": N}} */
        const json_t *nv = json_is_object(v) ? json_object_get(v, "num_versions") : v;
        if ((json_is_object(v) && json_object_size(v) != 1) || !get_int(nv, 1, 64, &n)) {
            snprintf(err, errsize,
                     "config field 'version_policy.latest' must be a count in 1..64 "
                     "(or {\"num_versions\": N})");
            return false;
        }
        c->policy = IFD_POLICY_LATEST;
        c->latest_n = (int)n;
        return true;
    }
    if ((v = json_object_get(p, "specific"))) {
        const json_t *list = json_is_object(v) ? json_object_get(v, "versions") : v;
        if ((json_is_object(v) && json_object_size(v) != 1) || !json_is_array(list) ||
            json_array_size(list) == 0 || json_array_size(list) > IFD_ARRAY_LEN(c->specific)) {
            snprintf(err, errsize,
                     "config field 'version_policy.specific' must list 1..64 versions");
            return false;
        }
        c->policy = IFD_POLICY_SPECIFIC;
        c->n_specific = 0;
        for (size_t i = 0; i < json_array_size(list); i++) {
            if (!get_int(json_array_get(list, i), 1, INT64_MAX, &n)) {
                snprintf(err, errsize,
                         "config field 'version_policy.specific' entry %zu is not a positive "
                         "integer", i);
                return false;
            }
            c->specific[c->n_specific++] = n;
        }
        return true;
    }
    if ((v = json_object_get(p, "all"))) {
        if (!(json_is_object(v) && json_object_size(v) == 0) && !json_is_true(v)) {
            snprintf(err, errsize, "config field 'version_policy.all' must be {}");
            return false;
        }
        c->policy = IFD_POLICY_ALL;
        return true;
    }
    snprintf(err, errsize, "config field 'version_policy' has an unknown policy '%.64s'",
             json_object_iter_key(json_object_iter((json_t *)p)));
    return false;
}

/* {"max_queue_delay_microseconds": N, "preferred_batch_size": [..]} */
static bool parse_batching(const json_t *v, ifd_serve_config *c, char *err, size_t errsize) {
    if (!json_is_object(v)) {
        snprintf(err, errsize, "config field 'dynamic_batching' must be an object");
        return false;
    }
    const char *key;
    json_t *f;
    int64_t n;
    c->dynamic_batching = true;
    json_object_foreach((json_t *)v, key, f) {
        if (!strcmp(key, "max_queue_delay_microseconds")) {
            if (!get_int(f, 0, 60000000, &c->max_queue_delay_us)) {
                snprintf(err, errsize, "config field 'dynamic_batching.max_queue_delay_microseconds'"
                         " must be in 0..60000000");
                return false;
            }
        } else if (!strcmp(key, "preferred_batch_size")) {
            if (!json_is_array(f) || json_array_size(f) > IFD_ARRAY_LEN(c->preferred_batch)) {
                snprintf(err, errsize, "config field 'dynamic_batching.preferred_batch_size' must "
                         "be an array of at most %zu sizes", IFD_ARRAY_LEN(c->preferred_batch));
                return false;
            }
            c->n_preferred = 0;
            for (size_t i = 0; i < json_array_size(f); i++) {
                if (!get_int(json_array_get(f, i), 1, 1 << 30, &n)) {
                    snprintf(err, errsize, "config field 'dynamic_batching.preferred_batch_size' "
                             "entry %zu is not a positive integer", i);
                    return false;
                }
                c->preferred_batch[c->n_preferred++] = n;
            }
        } else {
            snprintf(err, errsize, "config field 'dynamic_batching.%.64s' is unknown", key);
            return false;
        }
    }
    return true;
}

/* {"stable": 1, "canary": 2}: label names as TF Serving allows them. */
static bool parse_labels(const json_t *v, ifd_serve_config *c, char *err, size_t errsize) {
    if (!json_is_object(v) || json_object_size(v) > IFD_SERVE_MAX_LABELS) {
        snprintf(err, errsize, "config field 'version_labels' must be an object of at most %d "
                 "labels, each {\"label\": version}", IFD_SERVE_MAX_LABELS);
        return false;
    }
    const char *key;
    json_t *f;
    json_object_foreach((json_t *)v, key, f) {
        size_t n = strlen(key);
        bool ok = n > 0 && n <= IFD_SERVE_MAX_LABEL_LEN;
        for (size_t i = 0; ok && i < n; i++)
            ok = (key[i] >= 'a' && key[i] <= 'z') || (key[i] >= 'A' && key[i] <= 'Z') ||
                 (key[i] >= '0' && key[i] <= '9' && i > 0) || key[i] == '_' || key[i] == '-';
        if (!ok) {
            snprintf(err, errsize, "config field 'version_labels' has a bad label '%.64s' (1..%d "
                     "of [A-Za-z0-9_-], not starting with a digit)", key, IFD_SERVE_MAX_LABEL_LEN);
            return false;
        }
        int64_t ver;
        if (!get_int(f, 1, INT64_MAX, &ver)) {
            snprintf(err, errsize, "config field 'version_labels.%s' must be a positive version "
                     "number", key);
            return false;
        }
        memcpy(c->labels[c->n_labels], key, n + 1);
        c->label_version[c->n_labels++] = ver;
    }
    return true;
}

/* {"1": 90, "2": 10}: weights (not necessarily summing to 100) per version. */
static bool parse_traffic(const json_t *v, ifd_serve_config *c, char *err, size_t errsize) {
    if (!json_is_object(v) || json_object_size(v) == 0 ||
        json_object_size(v) > IFD_SERVE_MAX_LABELS) {
        snprintf(err, errsize, "config field 'traffic' must map 1..%d versions to weights, "
                 "e.g. {\"1\": 90, \"2\": 10}", IFD_SERVE_MAX_LABELS);
        return false;
    }
    const char *key;
    json_t *f;
    int64_t total = 0;
    json_object_foreach((json_t *)v, key, f) {
        int64_t ver, w;
        if (!ifd_serve_parse_version(key, &ver)) {
            snprintf(err, errsize, "config field 'traffic' key '%.64s' is not a version number",
                     key);
            return false;
        }
        if (!get_int(f, 0, 1000000, &w)) {
            snprintf(err, errsize, "config field 'traffic.%s' must be a weight in 0..1000000", key);
            return false;
        }
        c->traffic_version[c->n_traffic] = ver;
        c->traffic_weight[c->n_traffic++] = w;
        total += w;
    }
    if (total == 0) {
        snprintf(err, errsize, "config field 'traffic' needs a weight above 0");
        return false;
    }
    return true;
}

static const struct {
    const char *name;
    ifd_dtype dtype;
} g_triton_types[] = {
    {"TYPE_BOOL", IFD_DTYPE_BOOL},     {"TYPE_UINT8", IFD_DTYPE_UINT8},
    {"TYPE_UINT16", IFD_DTYPE_UINT16}, {"TYPE_UINT32", IFD_DTYPE_UINT32},
    {"TYPE_UINT64", IFD_DTYPE_UINT64}, {"TYPE_INT8", IFD_DTYPE_INT8},
    {"TYPE_INT16", IFD_DTYPE_INT16},   {"TYPE_INT32", IFD_DTYPE_INT32},
    {"TYPE_INT64", IFD_DTYPE_INT64},   {"TYPE_FP16", IFD_DTYPE_FLOAT16},
    {"TYPE_FP32", IFD_DTYPE_FLOAT},    {"TYPE_FP64", IFD_DTYPE_DOUBLE},
    {"TYPE_BF16", IFD_DTYPE_BFLOAT16}, {"TYPE_STRING", IFD_DTYPE_STRING},
};

/* Triton's "input": [{"name", "data_type", "dims"}] (and "output"). */
static bool parse_io(const json_t *v, const char *field, ifd_serve_config *c, char *err,
                     size_t errsize) {
    if (!json_is_array(v) || c->n_io + json_array_size(v) > IFD_SERVE_MAX_IO) {
        snprintf(err, errsize, "config field '%s' must be an array (at most %d entries with "
                 "input and output together)", field, IFD_SERVE_MAX_IO);
        return false;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        ifd_serve_io_config *io = &c->io[c->n_io];
        memset(io, 0, sizeof *io);
        io->is_output = !strcmp(field, "output");
        io->rank = -1;
        io->dtype = IFD_DTYPE_UNDEFINED;
        if (!json_is_object(e)) {
            snprintf(err, errsize, "config field '%s[%zu]' must be an object", field, i);
            return false;
        }
        const char *key;
        json_t *f;
        json_object_foreach((json_t *)e, key, f) {
            if (!strcmp(key, "name")) {
                const char *s = json_string_value(f);
                if (!s || !*s || strlen(s) > IFD_KSERVE_MAX_NAME) {
                    snprintf(err, errsize, "config field '%s[%zu].name' must be a non-empty "
                             "string", field, i);
                    return false;
                }
                strcpy(io->name, s);
            } else if (!strcmp(key, "data_type")) {
                const char *s = json_string_value(f);
                for (size_t k = 0; s && k < IFD_ARRAY_LEN(g_triton_types); k++)
                    if (!strcmp(s, g_triton_types[k].name)) io->dtype = g_triton_types[k].dtype;
                if (io->dtype == IFD_DTYPE_UNDEFINED) {
                    snprintf(err, errsize, "config field '%s[%zu].data_type' must be a Triton type "
                             "name such as \"TYPE_FP32\"", field, i);
                    return false;
                }
            } else if (!strcmp(key, "dims")) {
                if (!json_is_array(f) || json_array_size(f) > IFD_MAX_RANK - 1) {
                    snprintf(err, errsize, "config field '%s[%zu].dims' must be an array of at "
                             "most %d sizes", field, i, IFD_MAX_RANK - 1);
                    return false;
                }
                io->rank = (int)json_array_size(f);
                for (int d = 0; d < io->rank; d++)
                    if (!get_int(json_array_get(f, (size_t)d), -1, INT64_MAX / 2, &io->dims[d]) ||
                        io->dims[d] == 0) {
                        snprintf(err, errsize, "config field '%s[%zu].dims' entry %d must be -1 "
                                 "or a positive size", field, i, d);
                        return false;
                    }
            } else {
                snprintf(err, errsize, "config field '%s[%zu].%.64s' is unknown", field, i, key);
                return false;
            }
        }
        if (!io->name[0]) {
            snprintf(err, errsize, "config field '%s[%zu].name' is missing", field, i);
            return false;
        }
        for (size_t k = 0; k < c->n_io; k++)
            if (c->io[k].is_output == io->is_output && !strcmp(c->io[k].name, io->name)) {
                snprintf(err, errsize, "config field '%s' names '%.64s' twice", field, io->name);
                return false;
            }
        c->n_io++;
    }
    return true;
}

bool ifd_serve_config_parse(const char *text, size_t len, const char *model_name,
                            ifd_serve_config *c, char *err, size_t errsize) {
    bool ok = false;
    json_error_t je;
    ifd_serve_config_default(c);
    if (!ifd_kserve_depth_ok(text, len, 16)) {
        snprintf(err, errsize, "config.json nests deeper than 16");
        return false;
    }
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errsize, "config.json: %s (line %d, column %d)", je.text, je.line, je.column);
        return false;
    }
    if (!json_is_object(root)) {
        snprintf(err, errsize, "config.json must hold an object");
        goto out;
    }
    const char *key;
    json_t *v;
    int64_t n;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "name")) {
            if (!json_is_string(v) || strcmp(json_string_value(v), model_name)) {
                snprintf(err, errsize, "config field 'name' must equal the folder name '%s'",
                         model_name);
                goto out;
            }
        } else if (!strcmp(key, "platform") || !strcmp(key, "backend")) {
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            if (strcmp(s, "onnx") && strcmp(s, "onnxruntime") && strcmp(s, "onnxruntime_onnx")) {
                snprintf(err, errsize, "config field '%s' must be \"onnx\"", key);
                goto out;
            }
        } else if (!strcmp(key, "max_batch_size")) {
            if (!get_int(v, 0, 1 << 30, &c->max_batch_size)) {
                snprintf(err, errsize, "config field 'max_batch_size' must be an integer >= 0");
                goto out;
            }
        } else if (!strcmp(key, "instance_count")) {
            if (!get_int(v, 1, 64, &n)) {
                snprintf(err, errsize, "config field 'instance_count' must be in 1..64");
                goto out;
            }
            c->instance_count = (int)n;
        } else if (!strcmp(key, "version_policy")) {
            if (!parse_policy(v, c, err, errsize)) goto out;
        } else if (!strcmp(key, "max_queue_size")) {
            if (!get_int(v, 0, 1 << 30, &c->max_queue_size)) {
                snprintf(err, errsize, "config field 'max_queue_size' must be an integer >= 0");
                goto out;
            }
        } else if (!strcmp(key, "default_timeout_microseconds")) {
            if (!get_int(v, 0, INT64_MAX / 1000, &c->default_timeout_us)) {
                snprintf(err, errsize,
                         "config field 'default_timeout_microseconds' must be an integer >= 0");
                goto out;
            }
        } else if (!strcmp(key, "dynamic_batching")) {
            if (!parse_batching(v, c, err, errsize)) goto out;
        } else if (!strcmp(key, "version_labels")) {
            if (!parse_labels(v, c, err, errsize)) goto out;
        } else if (!strcmp(key, "traffic")) {
            if (!parse_traffic(v, c, err, errsize)) goto out;
        } else if (!strcmp(key, "drift")) {
            if (!parse_drift(v, c, err, errsize)) goto out;
        } else if (!strcmp(key, "input") || !strcmp(key, "output")) {
            if (!parse_io(v, key, c, err, errsize)) goto out;
        } else {
            snprintf(err, errsize, "config field '%.64s' is unknown", key);
            goto out;
        }
    }
    for (size_t i = 0; i < c->n_traffic; i++)
        for (size_t k = 0; k < i; k++)
            if (c->traffic_version[k] == c->traffic_version[i]) {
                snprintf(err, errsize, "config field 'traffic' names version %lld twice",
                         (long long)c->traffic_version[i]);
                goto out;
            }
    for (size_t i = 0; i < c->n_preferred; i++)
        if (c->max_batch_size == 0 || c->preferred_batch[i] > c->max_batch_size) {
            snprintf(err, errsize, "config field 'dynamic_batching.preferred_batch_size' needs "
                     "sizes <= max_batch_size (%lld)", (long long)c->max_batch_size);
            goto out;
        }
    ok = true;
out:
    json_decref(root);
    return ok;
}
