/* One KServe v2 infer request on a worker thread: decode the body, check it against the
 * model's inputs, run the session, encode the reply. Never called on the I/O thread. */
#include "serve/serve.h"
#include "serve/drift.h"
#include "serve/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *ifd_serve_error_json(const char *msg, size_t *len) {
    ifd_sbuf b = {0};
    ifd_sbuf_puts(&b, "{\"error\":");
    ifd_sbuf_json_string(&b, msg);
    ifd_sbuf_puts(&b, "}");
    if (b.failed) {
        ifd_sbuf_free(&b);
        *len = 0;
        return NULL;
    }
    *len = b.len;
    return b.data;
}

void ifd_serve_job_error(ifd_serve_job *job, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ifd_free(job->reply);
    job->status = status;
    job->reply = ifd_serve_error_json(msg, &job->reply_len);
}

/* "expected inputs: x (FP32 [3,4,5]), y (INT64 [-1])" */
static void describe_io(char *buf, size_t size, const char *what, const ifd_io_info *io, size_t n) {
    size_t used = (size_t)snprintf(buf, size, "expected %s: ", what);
    for (size_t i = 0; i < n && used < size; i++) {
        used += (size_t)snprintf(buf + used, size - used, "%s%s (%s [", i ? ", " : "", io[i].name,
                                 ifd_kserve_dtype_name(io[i].dtype));
        for (int d = 0; d < io[i].rank && used < size; d++)
            used += (size_t)snprintf(buf + used, size - used, d ? ",%lld" : "%lld",
                                     (long long)(io[i].dims[d] < 0 ? -1 : io[i].dims[d]));
        if (used < size) used += (size_t)snprintf(buf + used, size - used, "])");
    }
}

static long elapsed_us(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000000L + (now.tv_nsec - since->tv_nsec) / 1000L;
}

void ifd_serve_call_free(ifd_serve_call *c) {
    for (size_t j = 0; c->outs && j < c->n_out; j++) ifd_tensor_free(c->outs[j]);
    ifd_free(c->in_names); /* the block of all four arrays (ifd_serve_decode) */
    ifd_kserve_request_free(&c->req);
    memset(c, 0, sizeof *c);
}

/* Row size of t along dim 0 in elements (1 for a rank-1 tensor). */
static int64_t row_elements(const ifd_tensor *t) {
    int64_t n = 1;
    for (int d = 1; d < ifd_tensor_rank(t); d++) n *= ifd_tensor_dims(t)[d];
    return n;
}

ifd_status ifd_serve_tensor_concat(const ifd_tensor *const *parts, size_t n, int64_t total,
                                   ifd_tensor **out) {
    const ifd_tensor *t0 = parts[0];
    int rank = ifd_tensor_rank(t0);
    int64_t dims[IFD_MAX_RANK];
    *out = NULL;
    if (rank == 0) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "a scalar has no dim 0 to join");
    memcpy(dims, ifd_tensor_dims(t0), (size_t)rank * sizeof *dims);
    dims[0] = total;
    ifd_status st = ifd_tensor_create(ifd_tensor_dtype(t0), rank, dims, out);
    if (st != IFD_OK) return st;
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const ifd_tensor *p = parts[i];
        bool same = ifd_tensor_dtype(p) == ifd_tensor_dtype(t0) && ifd_tensor_rank(p) == rank;
        for (int d = 1; same && d < rank; d++) same = ifd_tensor_dims(p)[d] == dims[d];
        if (!same) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "part %zu differs in type or in dims past 0",
                           i);
            goto fail;
        }
        sum += ifd_tensor_dims(p)[0];
    }
    if (sum != total) {
        st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "the parts hold %lld rows, not %lld",
                       (long long)sum, (long long)total);
        goto fail;
    }
    if (ifd_tensor_dtype(t0) != IFD_DTYPE_STRING) {
        char *dst = ifd_tensor_data(*out);
        for (size_t i = 0; i < n; i++) {
            size_t nb = ifd_tensor_nbytes(parts[i]);
            if (nb) memcpy(dst, ifd_tensor_cdata(parts[i]), nb);
            dst += nb;
        }
        return IFD_OK;
    }
    /* string elements are owned by their tensor: each is copied into the new one */
    int64_t at = 0;
    for (size_t i = 0; i < n; i++)
        for (int64_t e = 0; e < ifd_tensor_count(parts[i]); e++) {
            size_t len = 0;
            const char *s = ifd_tensor_get_string(parts[i], e, &len);
            if ((st = ifd_tensor_set_string(*out, at++, s, len)) != IFD_OK) goto fail;
        }
    return IFD_OK;
fail:
    ifd_tensor_free(*out);
    *out = NULL;
    return st;
}

ifd_status ifd_serve_tensor_rows(const ifd_tensor *src, int64_t first, int64_t rows,
                                 ifd_tensor **out) {
    int rank = ifd_tensor_rank(src);
    int64_t dims[IFD_MAX_RANK];
    *out = NULL;
    if (rank == 0 || first < 0 || rows < 0 || first > ifd_tensor_dims(src)[0] - rows)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "rows [%lld, %lld) are not in the tensor",
                         (long long)first, (long long)(first + rows));
    memcpy(dims, ifd_tensor_dims(src), (size_t)rank * sizeof *dims);
    dims[0] = rows;
    ifd_status st = ifd_tensor_create(ifd_tensor_dtype(src), rank, dims, out);
    if (st != IFD_OK) return st;
    int64_t per = row_elements(src), from = first * per, count = rows * per;
    if (ifd_tensor_dtype(src) != IFD_DTYPE_STRING) {
        size_t es = ifd_dtype_size(ifd_tensor_dtype(src));
        if (count)
            memcpy(ifd_tensor_data(*out), (const char *)ifd_tensor_cdata(src) + (size_t)from * es,
                   (size_t)count * es);
        return IFD_OK;
    }
    for (int64_t e = 0; e < count; e++) {
        size_t len = 0;
        const char *s = ifd_tensor_get_string(src, from + e, &len);
        if ((st = ifd_tensor_set_string(*out, e, s, len)) != IFD_OK) {
            ifd_tensor_free(*out);
            *out = NULL;
            return st;
        }
    }
    return IFD_OK;
}

void ifd_serve_job_run_error(ifd_serve_job *job, ifd_status st) {
    /* bad values or shapes the model refuses (a symbolic dim that must match another)
     * are the client's; anything else is ours */
    int code = st == IFD_ERR_INVALID_ARGUMENT || st == IFD_ERR_SHAPE ||
                       st == IFD_ERR_UNSUPPORTED ? 400
               : st == IFD_ERR_TOO_BIG ? 413 : 500;
    ifd_serve_job_error(job, code, "inference failed: %s",
                        ifd_last_error()[0] ? ifd_last_error() : ifd_status_string(st));
}

/* One request, one session run: models without dynamic batching. */
void ifd_serve_infer(ifd_serve_version *v, ifd_session *session, ifd_serve_job *job,
                     const ifd_serve_options *opts) {
    ifd_serve_call c;
    int64_t timeout = v->config.default_timeout_us;
    if (timeout && elapsed_us(&job->enqueued) > timeout) {
        ifd_serve_job_error(job, 503, "request waited longer than the model's timeout of %lld us",
                            (long long)timeout);
        return;
    }
    if (!job->t_dequeued) job->t_dequeued = ifd_serve_now_ns(); /* inline runs set it */
    if (!ifd_serve_decode(v, job, opts, &c)) return;
    job->t_decoded = ifd_serve_now_ns();
    ifd_serve_test_delay(); /* part of the "compute" stage */
    ifd_status st = ifd_session_run(session, v->n_inputs, c.in_names, c.in_tensors, c.n_out,
                                    c.out_names, c.outs);
    atomic_fetch_add(&v->execution_count, 1);
    job->t_computed = ifd_serve_now_ns();
    if (st != IFD_OK) {
        ifd_serve_job_run_error(job, st);
    } else {
        ifd_serve_observe(v, c.in_tensors, c.n_out, c.out_names, c.outs);
        /* Triton counts each batch element of a batching model as one inference */
        int64_t n = 1;
        if (v->config.max_batch_size > 0 && v->n_inputs &&
            ifd_tensor_rank(c.in_tensors[0]) > 0)
            n = ifd_tensor_dims(c.in_tensors[0])[0];
        job->batch_elements = job->exec_elements = n;
        ifd_version_metrics_batch(v->vm, n);
        ifd_serve_encode(v, job, &c);
        job->t_encoded = ifd_serve_now_ns();
        if (job->status == 200) atomic_fetch_add(&v->inference_count, n);
    }
    ifd_serve_call_free(&c);
}

void ifd_serve_observe(ifd_serve_version *v, const ifd_tensor *const *ins, size_t n,
                       const char *const *names, ifd_tensor *const *outs) {
    if (!v->drift) return;
    for (size_t k = 0; k < v->n_inputs; k++) ifd_drift_observe(v->drift, k, ins[k]);
    for (size_t j = 0; j < n; j++) {
        size_t k = 0;
        while (k < v->n_outputs && strcmp(v->outputs[k].name, names[j])) k++;
        if (k < v->n_outputs) ifd_drift_observe(v->drift, v->n_inputs + k, outs[j]);
    }
    /* the scores move slowly: refresh the exported gauges every 16 runs */
    if (v->drift_series && atomic_fetch_add(&v->observed, 1) % 16 == 0)
        for (size_t k = 0; k < v->n_inputs + v->n_outputs; k++) {
            double score = ifd_drift_score(v->drift, k);
            if (score == score) ifd_gauge_set(v->drift_series[k], score);
        }
}

bool ifd_serve_decode(ifd_serve_version *v, ifd_serve_job *job, const ifd_serve_options *opts,
                      ifd_serve_call *c) {
    char err[1024], expected[768];
    ifd_kserve_request req;
    const char **in_names = NULL, **out_names = NULL;
    const ifd_tensor **in_tensors = NULL;
    ifd_tensor **outs = NULL;
    size_t n_out = 0, n_in = v->n_inputs;
    memset(c, 0, sizeof *c);
    int rc = job->protocol == IFD_SERVE_PROTO_TFS
                 ? ifd_tfs_request_parse(job->body, job->body_len, v->inputs, v->n_inputs,
                                         opts->max_tensor_bytes, &req, err, sizeof err)
                 : ifd_kserve_request_parse_binary(job->body, job->body_len,
                                                   job->binary_header_len, opts->max_tensor_bytes,
                                                   &req, err, sizeof err);
    if (rc) {
        ifd_serve_job_error(job, rc, "%s", err);
        goto out;
    }
    /* the four arrays of the call in one zeroed block (in_names first, which frees it):
     * in_names and in_tensors [n_in], out_names and outs [n_out] (all outputs by default) */
    n_out = req.n_outputs ? req.n_outputs : v->n_outputs;
    size_t at_tensors = n_in * sizeof *in_names, at_out_names, at_outs, size;
    if (!ifd_add_size(at_tensors, n_in * sizeof *in_tensors, &at_out_names) ||
        !ifd_mul_size(n_out, sizeof *out_names, &at_outs) ||
        !ifd_add_size(at_out_names, at_outs, &at_outs) ||
        !ifd_mul_size(n_out + 1, sizeof *outs, &size) || !ifd_add_size(at_outs, size, &size))
        goto oom;
    char *block = ifd_calloc(1, size);
    if (!block) goto oom;
    in_names = (const char **)(void *)block;
    in_tensors = (const ifd_tensor **)(void *)(block + at_tensors);
    out_names = (const char **)(void *)(block + at_out_names);
    outs = (ifd_tensor **)(void *)(block + at_outs);
    /* bind every request input to a model input, exactly once, with matching type and shape;
     * the list of what the model expects is written only for an error message */
#define EXPECTED_INPUTS (describe_io(expected, sizeof expected, "inputs", v->inputs, v->n_inputs), \
                         expected)
    for (size_t i = 0; i < req.n_inputs; i++) {
        const ifd_kserve_input *ri = &req.inputs[i];
        size_t k = 0;
        while (k < v->n_inputs && strcmp(v->inputs[k].name, ri->name)) k++;
        if (k == v->n_inputs) {
            ifd_serve_job_error(job, 400, "unknown input '%.256s'; %s", ri->name,
                                EXPECTED_INPUTS);
            goto out;
        }
        if (in_names[k]) {
            ifd_serve_job_error(job, 400, "input '%.256s' given twice; %s", ri->name,
                                EXPECTED_INPUTS);
            goto out;
        }
        const ifd_io_info *mi = &v->inputs[k];
        if (ri->dtype != mi->dtype) {
            ifd_serve_job_error(job, 400, "input '%.256s' has datatype %s, the model wants %s; %s",
                                ri->name, ifd_kserve_dtype_name(ri->dtype),
                                ifd_kserve_dtype_name(mi->dtype), EXPECTED_INPUTS);
            goto out;
        }
        int rank = ifd_tensor_rank(ri->tensor);
        const int64_t *dims = ifd_tensor_dims(ri->tensor);
        bool shape_ok = mi->rank < 0 || mi->rank == rank;
        for (int d = 0; shape_ok && mi->rank >= 0 && d < rank; d++)
            if (mi->dims[d] >= 0 && mi->dims[d] != dims[d]) shape_ok = false;
        if (!shape_ok) {
            ifd_serve_job_error(job, 400, "input '%.256s' has the wrong shape; %s", ri->name,
                                EXPECTED_INPUTS);
            goto out;
        }
        in_names[k] = ri->name;
        in_tensors[k] = ri->tensor;
    }
    for (size_t k = 0; k < v->n_inputs; k++)
        if (!in_names[k]) {
            ifd_serve_job_error(job, 400, "input '%s' is missing; %s", v->inputs[k].name,
                                EXPECTED_INPUTS);
            goto out;
        }
    /* with a batch dim (Triton's max_batch_size > 0) every input's dim 0 is the batch size */
    int64_t max_batch = v->config.max_batch_size;
    for (size_t k = 0; max_batch > 0 && k < v->n_inputs; k++) {
        int rank = ifd_tensor_rank(in_tensors[k]);
        int64_t n = rank > 0 ? ifd_tensor_dims(in_tensors[k])[0] : 0;
        if (rank == 0 || n > max_batch || n != ifd_tensor_dims(in_tensors[0])[0]) {
            ifd_serve_job_error(job, 400, "input '%s' has batch size (dim 0) %lld; the model "
                                "takes 1 to %lld, the same for every input", v->inputs[k].name,
                                (long long)n, (long long)max_batch);
            goto out;
        }
    }
    /* requested outputs, each a known name, once */
#define EXPECTED_OUTPUTS (describe_io(expected, sizeof expected, "outputs", v->outputs, \
                                      v->n_outputs), expected)
    for (size_t j = 0; j < n_out; j++) {
        const char *name = req.n_outputs ? req.outputs[j] : v->outputs[j].name;
        size_t k = 0;
        while (k < v->n_outputs && strcmp(v->outputs[k].name, name)) k++;
        if (k == v->n_outputs) {
            ifd_serve_job_error(job, 400, "unknown output '%.256s'; %s", name,
                                EXPECTED_OUTPUTS);
            goto out;
        }
        for (size_t i = 0; i < j; i++)
            if (!strcmp(out_names[i], name)) {
                ifd_serve_job_error(job, 400, "output '%.256s' requested twice", name);
                goto out;
            }
        out_names[j] = name;
    }
#undef EXPECTED_INPUTS
#undef EXPECTED_OUTPUTS
    c->req = req;
    c->in_names = in_names;
    c->in_tensors = in_tensors;
    c->n_out = n_out;
    c->out_names = out_names;
    c->outs = outs;
    return true;
oom:
    ifd_serve_job_error(job, 500, "out of memory");
out:
    ifd_free(in_names);
    ifd_kserve_request_free(&req);
    return false;
}

void ifd_serve_encode(ifd_serve_version *v, ifd_serve_job *job, ifd_serve_call *c) {
    ifd_kserve_request req = c->req; /* a read-only view */
    size_t n_out = c->n_out;
    const char **out_names = c->out_names;
    ifd_tensor **outs = c->outs;
    ifd_sbuf b = {.limit = SIZE_MAX / 2};
    size_t json_len = 0;
    if (job->protocol == IFD_SERVE_PROTO_TFS) {
        char err[512];
        if (ifd_tfs_encode_response(&b, &req, n_out, out_names, outs, err, sizeof err)) {
            ifd_serve_job_error(job, 400, "%s", err);
            goto out;
        }
    } else {
        char err[512];
        int rc = ifd_kserve_encode_response(&b, v->model->name, v->number, &req, n_out, out_names,
                                            outs, &json_len, err, sizeof err);
        if (rc) {
            ifd_serve_job_error(job, rc, "%s", err);
            goto out;
        }
    }
    if (b.failed) goto oom;
    job->reply_header_len = json_len;
    ifd_free(job->reply);
    job->status = 200;
    job->reply = b.data;
    job->reply_len = b.len;
    b.data = NULL;
    goto out;
oom:
    ifd_serve_job_error(job, 500, "out of memory");
out:
    ifd_sbuf_free(&b);
}
