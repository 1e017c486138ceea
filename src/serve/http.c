/* The HTTP front end: one I/O thread runs libevent's evhttp (parsing, keep-alive, limits) and
 * the KServe v2 routes. Infer requests go to the model version's worker threads; a worker
 * appends the finished job to a locked list and wakes the I/O thread with event_active, which
 * sends every reply (evhttp is not thread-safe, so only the I/O thread touches requests). */
#include "serve/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

typedef struct server {
    const ifd_serve_options *opts;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *done_ev, *sigterm_ev, *sigint_ev, *drain_ev, *ready_ev;
    ifd_serve_repo *repo;
    pthread_mutex_t done_mu;
    ifd_serve_job *done_head;
    size_t inflight;  /* requests handed to workers */
    size_t writing;   /* replies queued but not yet written out */
    bool draining;
    int port;
    /* connections that have sent a request (libevent 2.1 has no accept hook to count others;
     * idle ones are closed by the read timeout) */
    struct evhttp_connection **conns;
    size_t n_conns;
} server;

typedef struct route_args {
    const char *model;
    int64_t version; /* 0: none given */
} route_args;

/* ---- replies --------------------------------------------------------------------------------- */

/* Exit the loop once draining and nothing is in flight or still being written. */
static void maybe_finish_drain(server *s) {
    if (s->draining && s->inflight == 0 && s->writing == 0) event_base_loopexit(s->base, NULL);
}

static void on_reply_written(struct evhttp_request *req, void *arg) {
    server *s = arg;
    s->writing--;
    maybe_finish_drain(s);
}

static void release_body(const void *data, size_t len, void *extra) { ifd_free((void *)data); }

/* Send body (ifd_malloc'd, ownership taken; NULL for an empty body). */
static void reply(server *s, struct evhttp_request *req, int code, char *body, size_t len,
                  bool retry_after) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();
    if (body && !evhttp_find_header(h, "Content-Type"))
        evhttp_add_header(h, "Content-Type", "application/json");
    if (retry_after) evhttp_add_header(h, "Retry-After", "1");
    if (s->draining) evhttp_add_header(h, "Connection", "close");
    if (buf && body && evbuffer_add_reference(buf, body, len, release_body, NULL) == 0)
        body = NULL;
    ifd_free(body);
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (bev) {
        struct timeval rd = {s->opts->read_timeout_secs, 0}, wr = {s->opts->write_timeout_secs, 0};
        bufferevent_set_timeouts(bev, &rd, &wr);
    }
    if (evcon) {
        /* libevent calls this once the reply is written; a client gone earlier has no evcon */
        s->writing++;
        evhttp_request_set_on_complete_cb(req, on_reply_written, s);
    }
    evhttp_send_reply(req, code, NULL, buf);
    if (buf) evbuffer_free(buf);
}

static void reply_error(server *s, struct evhttp_request *req, int code, const char *fmt, ...)
    IFD_PRINTF(4, 5);
static void reply_error(server *s, struct evhttp_request *req, int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len;
    char *body = ifd_serve_error_json(msg, &len);
    reply(s, req, code, body, len, code == 503);
}

static void reply_sbuf(server *s, struct evhttp_request *req, ifd_sbuf *b) {
    if (b->failed) {
        ifd_sbuf_free(b);
        reply_error(s, req, 500, "out of memory");
        return;
    }
    reply(s, req, 200, b->data, b->len, false);
    b->data = NULL;
}

/* ---- completion of worker jobs -------------------------------------------------------------- */

static void job_done(ifd_serve_job *job, void *arg) {
    server *s = arg;
    pthread_mutex_lock(&s->done_mu);
    job->next = s->done_head;
    s->done_head = job;
    pthread_mutex_unlock(&s->done_mu);
    event_active(s->done_ev, EV_READ, 0);
}

static void on_jobs_done(evutil_socket_t fd, short what, void *arg) {
    server *s = arg;
    pthread_mutex_lock(&s->done_mu);
    ifd_serve_job *list = s->done_head;
    s->done_head = NULL;
    pthread_mutex_unlock(&s->done_mu);
    while (list) {
        ifd_serve_job *job = list;
        list = job->next;
        if (job->reply && job->status == 200 && job->reply_header_len) {
            /* binary tensor data: the JSON header, then raw output bytes */
            struct evkeyvalq *h = evhttp_request_get_output_headers(job->http_request);
            char n[32];
            snprintf(n, sizeof n, "%zu", job->reply_header_len);
            evhttp_add_header(h, "Inference-Header-Content-Length", n);
            evhttp_add_header(h, "Content-Type", "application/octet-stream");
        }
        if (job->reply) reply(s, job->http_request, job->status, job->reply, job->reply_len,
                              job->status == 503);
        else reply_error(s, job->http_request, 500, "out of memory");
        ifd_free(job);
        s->inflight--;
    }
    maybe_finish_drain(s);
}

/* ---- connection cap ---------------------------------------------------------------------------- */

static void on_conn_close(struct evhttp_connection *evcon, void *arg) {
    server *s = arg;
    for (size_t i = 0; i < s->n_conns; i++)
        if (s->conns[i] == evcon) {
            s->conns[i] = s->conns[--s->n_conns];
            return;
        }
}

/* False when this connection is new and the cap is reached. */
static bool track_connection(server *s, struct evhttp_request *req) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon) return true;
    for (size_t i = 0; i < s->n_conns; i++)
        if (s->conns[i] == evcon) return true;
    if (s->n_conns >= (size_t)s->opts->max_connections) return false;
    s->conns[s->n_conns++] = evcon;
    evhttp_connection_set_closecb(evcon, on_conn_close, s);
    return true;
}

/* ---- KServe v2 handlers ------------------------------------------------------------------------- */

static const char *model_unready_reason(ifd_serve_model *m) {
    if (m->error) return m->error;
    for (size_t i = m->n_versions; i-- > 0;)
        if (m->versions[i]->error) return m->versions[i]->error;
    return "no version is available";
}

/* The model and version a route names, or a reply sent and NULL. */
static ifd_serve_version *resolve(server *s, struct evhttp_request *req, const route_args *a,
                                  bool need_ready, ifd_serve_model **model_out) {
    ifd_serve_model *m = ifd_serve_repo_find(s->repo, a->model);
    if (model_out) *model_out = m;
    if (!m) {
        if (!atomic_load(&s->repo->ready))
            reply_error(s, req, 503, "server is not ready: models are still loading");
        else reply_error(s, req, 404, "unknown model '%s'", a->model);
        return NULL;
    }
    ifd_serve_version *v = ifd_serve_model_version(m, a->version);
    if (!v) {
        if (a->version)
            reply_error(s, req, 404, "unknown version %lld of model '%s'", (long long)a->version,
                        a->model);
        else if (need_ready)
            reply_error(s, req, 503, "model '%s' is not ready: %s", a->model,
                        model_unready_reason(m));
        return NULL;
    }
    if (atomic_load(&v->state) != IFD_VERSION_AVAILABLE) {
        if (need_ready)
            reply_error(s, req, 503, "model '%s' version %lld is not ready: %s", a->model,
                        (long long)v->number, v->error ? v->error : "loading");
        return NULL;
    }
    return v;
}

static void h_live(server *s, struct evhttp_request *req, const route_args *a) {
    reply(s, req, 200, NULL, 0, false);
}

static void h_ready(server *s, struct evhttp_request *req, const route_args *a) {
    if (atomic_load(&s->repo->ready) && !s->draining) reply(s, req, 200, NULL, 0, false);
    else reply_error(s, req, 503, s->draining ? "server is shutting down"
                                              : "server is not ready: models are still loading");
}

static void h_server_metadata(server *s, struct evhttp_request *req, const route_args *a) {
    ifd_sbuf b = {0};
    ifd_sbuf_puts(&b, "{\"name\":\"inferd\",\"version\":\"" IFD_VERSION_STRING
                      "\",\"extensions\":[\"binary_tensor_data\"]}");
    reply_sbuf(s, req, &b);
}

static void put_io(ifd_sbuf *b, const ifd_io_info *io, size_t n) {
    for (size_t i = 0; i < n; i++) {
        ifd_sbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        ifd_sbuf_json_string(b, io[i].name);
        ifd_sbuf_printf(b, ",\"datatype\":\"%s\",\"shape\":[", ifd_kserve_dtype_name(io[i].dtype));
        for (int d = 0; d < io[i].rank; d++)
            ifd_sbuf_printf(b, d ? ",%lld" : "%lld",
                            (long long)(io[i].dims[d] < 0 ? -1 : io[i].dims[d]));
        ifd_sbuf_puts(b, "]}");
    }
}

static void h_model_metadata(server *s, struct evhttp_request *req, const route_args *a) {
    ifd_serve_model *m;
    ifd_serve_version *v = resolve(s, req, a, true, &m);
    if (!v) return;
    ifd_sbuf b = {0};
    ifd_sbuf_puts(&b, "{\"name\":");
    ifd_sbuf_json_string(&b, m->name);
    ifd_sbuf_puts(&b, ",\"versions\":[");
    bool first = true;
    for (size_t i = 0; i < m->n_versions; i++) {
        if (atomic_load(&m->versions[i]->state) != IFD_VERSION_AVAILABLE) continue;
        ifd_sbuf_printf(&b, first ? "\"%lld\"" : ",\"%lld\"", (long long)m->versions[i]->number);
        first = false;
    }
    ifd_sbuf_puts(&b, "],\"platform\":\"onnx\",\"inputs\":[");
    put_io(&b, v->inputs, v->n_inputs);
    ifd_sbuf_puts(&b, "],\"outputs\":[");
    put_io(&b, v->outputs, v->n_outputs);
    ifd_sbuf_puts(&b, "]}");
    reply_sbuf(s, req, &b);
}

static void h_model_ready(server *s, struct evhttp_request *req, const route_args *a) {
    if (resolve(s, req, a, true, NULL)) reply(s, req, 200, NULL, 0, false);
}

/* Inference-Header-Content-Length: 0 when absent, else 1..len; -1 with a reply sent. */
static int64_t binary_header(server *s, struct evhttp_request *req, size_t len) {
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *val = NULL;
    int count = 0;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next)
        if (!strcasecmp(kv->key, "Inference-Header-Content-Length")) {
            val = kv->value;
            count++;
        }
    if (!val) return 0;
    int64_t n = 0;
    size_t digits = strspn(val, "0123456789");
    bool ok = count == 1 && digits > 0 && digits <= 18 && val[digits] == 0;
    for (size_t i = 0; ok && i < digits; i++) n = n * 10 + (val[i] - '0');
    if (!ok || n == 0) {
        reply_error(s, req, 400, "Inference-Header-Content-Length must be given once as a "
                    "positive decimal byte count, got '%.32s'", val);
        return -1;
    }
    if ((uint64_t)n > len) {
        reply_error(s, req, 400, "Inference-Header-Content-Length (%lld) is larger than the "
                    "body (%zu bytes)", (long long)n, len);
        return -1;
    }
    return n;
}

static void submit_job(server *s, struct evhttp_request *req, const route_args *a, int protocol) {
    ifd_serve_version *v = resolve(s, req, a, true, NULL);
    if (!v) return;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0) {
        reply_error(s, req, 400, "empty request body; expected a JSON %s request",
                    protocol == IFD_SERVE_PROTO_TFS ? "predict" : "infer");
        return;
    }
    int64_t header_len = protocol == IFD_SERVE_PROTO_KSERVE ? binary_header(s, req, len) : 0;
    if (header_len < 0) return;
    /* contiguous body; libevent leaves the input buffer alone until the reply is sent */
    const char *body = (const char *)evbuffer_pullup(in, -1);
    ifd_serve_job *job = body ? ifd_calloc(1, sizeof *job) : NULL;
    if (!job) {
        reply_error(s, req, 500, "out of memory");
        return;
    }
    job->http_request = req;
    job->body = body;
    job->body_len = len;
    job->version = v;
    job->protocol = protocol;
    job->binary_header_len = (size_t)header_len;
    if (!ifd_serve_submit(job)) {
        ifd_free(job);
        reply_error(s, req, 503, "model '%s' queue is full; retry later", a->model);
        return;
    }
    s->inflight++;
}

static void h_infer(server *s, struct evhttp_request *req, const route_args *a) {
    submit_job(s, req, a, IFD_SERVE_PROTO_KSERVE);
}

static void h_repository_index(server *s, struct evhttp_request *req, const route_args *a) {
    ifd_sbuf b = {0};
    ifd_sbuf_puts(&b, "[");
    pthread_mutex_lock(&s->repo->mu);
    for (size_t i = 0; i < s->repo->n_models; i++) {
        ifd_serve_model *m = s->repo->models[i];
        if (m->n_versions == 0) {
            ifd_sbuf_puts(&b, b.len > 1 ? ",{\"name\":" : "{\"name\":");
            ifd_sbuf_json_string(&b, m->name);
            ifd_sbuf_puts(&b, ",\"state\":\"UNAVAILABLE\",\"reason\":");
            ifd_sbuf_json_string(&b, m->error ? m->error : "");
            ifd_sbuf_puts(&b, "}");
        }
        for (size_t k = 0; k < m->n_versions; k++) {
            ifd_serve_version *v = m->versions[k];
            int st = atomic_load(&v->state);
            ifd_sbuf_puts(&b, b.len > 1 ? ",{\"name\":" : "{\"name\":");
            ifd_sbuf_json_string(&b, m->name);
            ifd_sbuf_printf(&b, ",\"version\":\"%lld\",\"state\":\"%s\",\"reason\":",
                            (long long)v->number,
                            st == IFD_VERSION_AVAILABLE ? "READY"
                            : st == IFD_VERSION_LOADING ? "LOADING" : "UNAVAILABLE");
            ifd_sbuf_json_string(&b, v->error ? v->error : "");
            /* Triton's statistics names: batch elements served, session runs */
            ifd_sbuf_printf(&b, ",\"inference_count\":%lld,\"execution_count\":%lld}",
                            (long long)atomic_load(&v->inference_count),
                            (long long)atomic_load(&v->execution_count));
        }
    }
    pthread_mutex_unlock(&s->repo->mu);
    ifd_sbuf_puts(&b, "]");
    reply_sbuf(s, req, &b);
}

/* ---- routing -------------------------------------------------------------------------------------- */

typedef void (*handler_fn)(server *, struct evhttp_request *, const route_args *);

static const struct {
    enum evhttp_cmd_type method;
    const char *pattern; /* "{m}": a model name, "{v}": a version number */
    handler_fn fn;
} g_routes[] = {
    {EVHTTP_REQ_GET, "/v2", h_server_metadata},
    {EVHTTP_REQ_GET, "/v2/health/live", h_live},
    {EVHTTP_REQ_GET, "/v2/health/ready", h_ready},
    {EVHTTP_REQ_GET, "/v2/models/{m}", h_model_metadata},
    {EVHTTP_REQ_GET, "/v2/models/{m}/versions/{v}", h_model_metadata},
    {EVHTTP_REQ_GET, "/v2/models/{m}/ready", h_model_ready},
    {EVHTTP_REQ_GET, "/v2/models/{m}/versions/{v}/ready", h_model_ready},
    {EVHTTP_REQ_POST, "/v2/models/{m}/infer", h_infer},
    {EVHTTP_REQ_POST, "/v2/models/{m}/versions/{v}/infer", h_infer},
    {EVHTTP_REQ_POST, "/v2/repository/index", h_repository_index},
};

#define MAX_SEGMENTS 8

/* Split "/a/b/c" into segments (in place in buf). -1 when malformed. */
static int split_path(char *buf, char **seg) {
    int n = 0;
    char *p = buf;
    if (*p != '/') return -1;
    while (*p == '/') {
        *p++ = 0;
        if (n == MAX_SEGMENTS) return -1;
        seg[n++] = p;
        while (*p && *p != '/') p++;
    }
    if (*p) return -1;
    return n;
}

/* A bad request before routing: duplicate Content-Length, or one next to Transfer-Encoding
 * (request smuggling shapes). */
static const char *bad_framing(struct evhttp_request *req) {
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    int n_cl = 0, n_te = 0;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        if (!strcasecmp(kv->key, "Content-Length")) n_cl++;
        else if (!strcasecmp(kv->key, "Transfer-Encoding")) n_te++;
    }
    if (n_cl > 1) return "duplicate Content-Length";
    if (n_cl && n_te) return "Content-Length together with Transfer-Encoding";
    return NULL;
}

/* ---- TF Serving REST ------------------------------------------------------------------------------ */

/* /v1/models/NAME[/versions/N|/labels/L][:predict|/metadata]; the verb rides on the last
 * segment ("NAME:predict", "N:predict"). */
static void route_tfs(server *s, struct evhttp_request *req, char **seg, int n,
                      enum evhttp_cmd_type method) {
    static const char usage[] =
        "expected /v1/models/NAME[/versions/N][:predict|/metadata] with NAME of [A-Za-z0-9_.-]";
    if (n < 3 || strcmp(seg[1], "models")) {
        reply_error(s, req, 404, "unknown endpoint; %s", usage);
        return;
    }
    char *verb = strchr(seg[n - 1], ':');
    if (verb) *verb++ = 0;
    route_args a = {.model = seg[2]};
    if (!ifd_serve_valid_model_name(a.model)) {
        reply_error(s, req, 400, "invalid model name in the path; %s", usage);
        return;
    }
    int i = 3;
    if (i < n && (!strcmp(seg[i], "versions") || !strcmp(seg[i], "labels"))) {
        if (i + 1 >= n) {
            reply_error(s, req, 404, "unknown endpoint; %s", usage);
            return;
        }
        if (!strcmp(seg[i], "labels")) {
            reply_error(s, req, 400, "version labels not supported yet; use /versions/N");
            return;
        }
        if (!ifd_serve_parse_version(seg[i + 1], &a.version)) {
            reply_error(s, req, 400, "invalid model version in the path: a positive integer");
            return;
        }
        i += 2;
    }
    bool metadata = false;
    if (i < n && !strcmp(seg[i], "metadata") && !verb) {
        metadata = true;
        i++;
    }
    if (i != n) {
        reply_error(s, req, 404, "unknown endpoint; %s", usage);
        return;
    }
    if (verb) {
        if (strcmp(verb, "predict")) {
            reply_error(s, req, 400, "only :predict is supported, not :%.32s", verb);
            return;
        }
        if (method != EVHTTP_REQ_POST) {
            reply_error(s, req, 405, "method not allowed: :predict takes POST");
            return;
        }
        submit_job(s, req, &a, IFD_SERVE_PROTO_TFS);
        return;
    }
    if (method != EVHTTP_REQ_GET) {
        reply_error(s, req, 405, "method not allowed on this path");
        return;
    }
    ifd_sbuf b = {0};
    if (metadata) {
        ifd_serve_version *v = resolve(s, req, &a, true, NULL);
        if (!v) return;
        ifd_tfs_model_metadata(v, &b);
        reply_sbuf(s, req, &b);
        return;
    }
    ifd_serve_model *m = ifd_serve_repo_find(s->repo, a.model);
    if (!m) {
        if (!atomic_load(&s->repo->ready))
            reply_error(s, req, 503, "server is not ready: models are still loading");
        else reply_error(s, req, 404, "unknown model '%s'", a.model);
        return;
    }
    char err[1024];
    int code = ifd_tfs_model_status(m, a.version, &b, err, sizeof err);
    if (code == 200) reply_sbuf(s, req, &b);
    else reply_error(s, req, code, "%s", err);
}

static void on_request(struct evhttp_request *req, void *arg) {
    server *s = arg;
    char path[1024];
    char *seg[MAX_SEGMENTS];
    if (!track_connection(s, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        reply_error(s, req, 503, "too many connections (limit %d)", s->opts->max_connections);
        return;
    }
    if (s->draining) {
        reply_error(s, req, 503, "server is shutting down");
        return;
    }
    const char *framing = bad_framing(req);
    if (framing) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        reply_error(s, req, 400, "%s", framing);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!raw || strlen(raw) >= sizeof path) {
        reply_error(s, req, 400, "request path missing or longer than %zu bytes", sizeof path - 1);
        return;
    }
    /* names are [A-Za-z0-9_.-], so a percent-escape in the path is never needed: refusing it
     * keeps "%2e%2e" and "%2F" from ever being decoded into something else */
    if (strchr(raw, '%')) {
        reply_error(s, req, 400, "percent-encoded characters are not allowed in the path");
        return;
    }
    strcpy(path, raw);
    int n = split_path(path, seg);
    if (n < 0) {
        reply_error(s, req, 400, "malformed request path");
        return;
    }
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    if (n >= 1 && !strcmp(seg[0], "v1")) {
        route_tfs(s, req, seg, n, method);
        return;
    }
    bool path_matched = false;
    for (size_t r = 0; r < IFD_ARRAY_LEN(g_routes); r++) {
        char pat[128];
        char *pseg[MAX_SEGMENTS];
        snprintf(pat, sizeof pat, "%s", g_routes[r].pattern);
        int pn = split_path(pat, pseg);
        if (pn != n) continue;
        route_args a = {0};
        const char *bad = NULL;
        int i = 0;
        for (; i < n; i++) {
            if (!strcmp(pseg[i], "{m}")) {
                if (!ifd_serve_valid_model_name(seg[i])) bad = "model name";
                a.model = seg[i];
            } else if (!strcmp(pseg[i], "{v}")) {
                if (!ifd_serve_parse_version(seg[i], &a.version)) bad = "model version";
            } else if (strcmp(pseg[i], seg[i])) {
                break;
            }
        }
        if (i < n) continue;
        path_matched = true;
        if (method != g_routes[r].method) continue;
        if (bad) {
            reply_error(s, req, 400, "invalid %s in the path: names are 1-%d of [A-Za-z0-9_.-] "
                        "not starting with '.', versions positive integers", bad,
                        IFD_KSERVE_MAX_NAME);
            return;
        }
        g_routes[r].fn(s, req, &a);
        return;
    }
    if (path_matched) reply_error(s, req, 405, "method not allowed on this path");
    else if (n >= 2 && !strcmp(seg[0], "v2") && !strcmp(seg[1], "models"))
        reply_error(s, req, 400, "malformed model path: expected /v2/models/NAME[/versions/N]"
                                 "[/ready|/infer] with NAME of [A-Za-z0-9_.-]");
    else reply_error(s, req, 404, "unknown endpoint");
}

/* ---- lifecycle ----------------------------------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    server *s = arg;
    if (s->draining) return;
    s->draining = true;
    if (s->bound) evhttp_del_accept_socket(s->http, s->bound);
    s->bound = NULL;
    fprintf(stderr, "inferd: %s: finishing %zu requests in flight, then exiting\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", s->inflight);
    struct timeval tv = {s->opts->drain_timeout_secs, 0};
    evtimer_add(s->drain_ev, &tv);
    maybe_finish_drain(s);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg) {
    server *s = arg;
    fprintf(stderr, "inferd: drain timeout: %zu requests running, %zu replies unsent\n",
            s->inflight, s->writing);
    event_base_loopexit(s->base, NULL);
}

static void on_ready_poll(evutil_socket_t fd, short what, void *arg) {
    server *s = arg;
    if (!atomic_load(&s->repo->ready)) return;
    event_del(s->ready_ev);
    printf("inferd: serving %zu models on http://127.0.0.1:%d/ (KServe v2 at /v2)\n",
           ifd_serve_repo_ready_count(s->repo), s->port);
    fflush(stdout);
}

void ifd_serve_options_init(ifd_serve_options *o) {
    memset(o, 0, sizeof *o);
    o->http_address = "0.0.0.0";
    o->http_port = 8000;
    o->threads = 0;
    o->max_body_bytes = 64u << 20;
    o->max_header_bytes = 16u << 10;
    o->max_tensor_bytes = 256u << 20;
    o->max_connections = 1000;
    o->read_timeout_secs = 30;
    o->write_timeout_secs = 30;
    o->drain_timeout_secs = 30;
    o->http_threads = 0;
    o->model_control_mode = IFD_CONTROL_NONE;
    o->repository_poll_secs = 15;
}

static void *jansson_malloc(size_t n) { return ifd_malloc(n); }
static void jansson_free(void *p) { ifd_free(p); }

int ifd_serve_run(const ifd_serve_options *o) {
    int rc = 1;
    server s = {.opts = o};
    pthread_mutex_init(&s.done_mu, NULL);
    struct stat st;
    if (stat(o->model_repository, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "inferd serve: model repository '%s' is not a readable folder\n",
                o->model_repository);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    json_set_alloc_funcs(jansson_malloc, jansson_free);
    if (evthread_use_pthreads() != 0 || !(s.base = event_base_new()) ||
        !(s.http = evhttp_new(s.base))) {
        fprintf(stderr, "inferd serve: cannot initialize libevent\n");
        goto out;
    }
    s.conns = ifd_calloc((size_t)o->max_connections + 1, sizeof *s.conns);
    if (!s.conns) goto out;
    if (ifd_serve_repo_create(o, job_done, &s, &s.repo) != IFD_OK) goto out;
    s.done_ev = event_new(s.base, -1, 0, on_jobs_done, &s);
    s.sigterm_ev = evsignal_new(s.base, SIGTERM, on_signal, &s);
    s.sigint_ev = evsignal_new(s.base, SIGINT, on_signal, &s);
    s.drain_ev = evtimer_new(s.base, on_drain_timeout, &s);
    s.ready_ev = event_new(s.base, -1, EV_PERSIST, on_ready_poll, &s);
    if (!s.done_ev || !s.sigterm_ev || !s.sigint_ev || !s.drain_ev || !s.ready_ev) goto out;
    evsignal_add(s.sigterm_ev, NULL);
    evsignal_add(s.sigint_ev, NULL);
    evhttp_set_allowed_methods(s.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_max_body_size(s.http, (ev_ssize_t)o->max_body_bytes);
    evhttp_set_max_headers_size(s.http, (ev_ssize_t)o->max_header_bytes);
    struct timeval tv = {o->read_timeout_secs, 0};
    evhttp_set_timeout_tv(s.http, &tv);
    evhttp_set_default_content_type(s.http, "text/plain; charset=utf-8");
    evhttp_set_gencb(s.http, on_request, &s);
    s.bound = evhttp_bind_socket_with_handle(s.http, o->http_address, (ev_uint16_t)o->http_port);
    if (!s.bound) {
        fprintf(stderr, "inferd serve: cannot listen on %s:%d: %s\n", o->http_address,
                o->http_port, strerror(errno));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    s.port = o->http_port;
    if (getsockname(evhttp_bound_socket_get_fd(s.bound), (struct sockaddr *)&ss, &sl) == 0)
        s.port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ifd_serve_repo_start(s.repo) != IFD_OK) {
        fprintf(stderr, "inferd serve: %s\n", ifd_last_error());
        goto out;
    }
    struct timeval poll_tv = {0, 20000};
    event_add(s.ready_ev, &poll_tv);
    event_base_dispatch(s.base);
    rc = 0;
out:
    if (s.repo) {
        /* workers finish their current job; what they finish now is dropped with its request */
        ifd_serve_job *left = ifd_serve_repo_stop(s.repo);
        while (left) {
            ifd_serve_job *j = left;
            left = j->next;
            ifd_free(j->reply);
            ifd_free(j);
        }
        pthread_mutex_lock(&s.done_mu);
        left = s.done_head;
        s.done_head = NULL;
        pthread_mutex_unlock(&s.done_mu);
        while (left) {
            ifd_serve_job *j = left;
            left = j->next;
            ifd_free(j->reply);
            ifd_free(j);
        }
    }
    if (s.http) evhttp_free(s.http);
    if (s.done_ev) event_free(s.done_ev);
    if (s.sigterm_ev) event_free(s.sigterm_ev);
    if (s.sigint_ev) event_free(s.sigint_ev);
    if (s.drain_ev) event_free(s.drain_ev);
    if (s.ready_ev) event_free(s.ready_ev);
    ifd_serve_repo_free(s.repo);
    ifd_free(s.conns);
    if (s.base) event_base_free(s.base);
    pthread_mutex_destroy(&s.done_mu);
    libevent_global_shutdown();
    return rc;
}
