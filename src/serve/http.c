/* The HTTP front end: --http-threads I/O threads, each running its own libevent event_base and
 * evhttp (parsing, keep-alive, limits) on its own SO_REUSEPORT listening socket, so the kernel
 * spreads new connections over the threads and a connection lives on the thread that accepted
 * it; the KServe v2 and TF Serving routes run on that thread. Infer requests go to the model
 * version's worker threads. A worker pushes the finished job onto a lock-free list of the
 * thread that owns the request and writes that thread's eventfd only when the list was empty,
 * so one wakeup carries every reply finished meanwhile; evhttp is not thread-safe, so only the
 * owning thread touches a request, and libevent runs without its locks.
 *
 * libevent 2.1 has no hook at accept time, so the front end makes each connection's
 * bufferevent itself (evhttp_set_bevcb): that is where a connection is counted against
 * --max-connections (idle and slow ones included), and where a callback on its input buffer
 * checks the raw bytes of each request head, which evhttp does not: it takes a bare LF as a
 * line end and cuts a header value at a NUL. */
#include "serve/serve.h"
#include "serve/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SPARE_PENDING 256 /* recycled request records kept per thread */
#define MAX_LINGERING 64      /* refused connections read out at once per thread */
#define LINGER_SECS 2         /* how long a refused connection is read out before closing */

typedef struct front front;
typedef struct conn conn;
typedef struct pending pending;
typedef struct control_req control_req;

/* One I/O thread. Its name is what the route handlers see of the server: the options, the
 * repository, and whether this thread is draining. */
typedef struct server {
    const ifd_serve_options *opts;
    ifd_serve_repo *repo;
    bool draining;
    front *f;
    int index;
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    int listen_fd;                       /* -1 once its listener owns (or closed) it */
    int wake_fd;                         /* eventfd: finished jobs, drain and stop orders */
    struct event *wake_ev, *adopt_ev;
    _Atomic(ifd_serve_job *) done_head;  /* finished jobs pushed by workers, newest first */
    _Atomic(control_req *) ctl_head;     /* finished load/unload requests, from the loader */
    atomic_size_t inflight;              /* requests handed to workers (atomic: SIGTERM's message) */
    size_t writing;                      /* replies queued but not yet written out */
    bool drain_reported;
    conn *conns;                         /* adopted connections */
    conn *unadopted;                     /* bufferevents made since the last adopt pass */
    conn **buckets;                      /* evhttp_connection -> conn */
    size_t n_buckets, n_hashed;
    pending *spare;                      /* recycled request records */
    size_t n_spare;
    struct event *lingering[MAX_LINGERING]; /* refused connections still being read out */
    size_t n_lingering;
} server;

/* What the I/O threads share. Thread 0 is the caller of ifd_serve_run: it owns the signals,
 * the drain timer and the ready line. */
struct front {
    const ifd_serve_options *opts;
    ifd_serve_repo *repo;
    int n_threads;
    server *threads;
    int port;
    atomic_int n_conns;                  /* accepted connections open now, all threads */
    atomic_bool draining, stop;
    atomic_int drained;                  /* threads with nothing left in flight */
    struct event *sigterm_ev, *sigint_ev, *sighup_ev, *drain_ev, *ready_ev;
    struct evhttp *metrics_http;         /* --metrics-port: /metrics alone, on thread 0 */
    struct timespec started;
};

/* One accepted connection. */
struct conn {
    conn *prev, *next;                   /* server's conns (or unadopted) */
    conn *hnext;                         /* hash chain */
    server *t;
    struct bufferevent *bev;
    struct evhttp_connection *evcon;
    struct evbuffer_cb_entry *head_cb;
    bool over_cap;                       /* refused at adoption */
    bool writing;                        /* a reply of ours is being written */
    /* request head check: the bytes from the start of the input buffer belong to a request
     * head until its empty line; `scanned` of them are checked */
    bool in_head, seen_line, prev_cr, poisoned, in_check;
    size_t line_len, scanned;
};

/* One request handed to a worker; the repository sees only `job` (job.http_request points
 * back here). */
struct pending {
    ifd_serve_job job;
    struct evhttp_request *req;
    server *t;
    pending *next_spare;
};


typedef struct route_args {
    const char *model;
    int64_t version;   /* 0: none given */
    const char *label; /* TF Serving /labels/{l}; NULL: none */
} route_args;

/* A load or unload request: the loader thread runs it and calls control_done, which hands the
 * outcome back to the I/O thread that owns the request, like a finished job. */
struct control_req {
    control_req *next;
    server *t;
    struct evhttp_request *req;
    int status;
    char *message;
};

static void maybe_finish_drain(server *s);

/* ---- connections, by evhttp_connection ------------------------------------------------------ */

static size_t conn_hash(const struct evhttp_connection *evcon, size_t n_buckets) {
    uint64_t h = (uint64_t)(uintptr_t)evcon * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (n_buckets - 1);
}

static conn *conn_find(server *t, const struct evhttp_connection *evcon) {
    for (conn *c = t->buckets[conn_hash(evcon, t->n_buckets)]; c; c = c->hnext)
        if (c->evcon == evcon) return c;
    return NULL;
}

static void conn_hash_insert(server *t, conn *c) {
    if (t->n_hashed >= t->n_buckets) {
        /* grow; without memory the chains just get longer */
        size_t n = t->n_buckets * 2;
        conn **nb = ifd_calloc(n, sizeof *nb);
        if (nb) {
            for (size_t i = 0; i < t->n_buckets; i++)
                for (conn *x = t->buckets[i], *next; x; x = next) {
                    next = x->hnext;
                    size_t h = conn_hash(x->evcon, n);
                    x->hnext = nb[h];
                    nb[h] = x;
                }
            ifd_free(t->buckets);
            t->buckets = nb;
            t->n_buckets = n;
        }
    }
    size_t h = conn_hash(c->evcon, t->n_buckets);
    c->hnext = t->buckets[h];
    t->buckets[h] = c;
    t->n_hashed++;
}

static void conn_hash_remove(server *t, conn *c) {
    for (conn **p = &t->buckets[conn_hash(c->evcon, t->n_buckets)]; *p; p = &(*p)->hnext)
        if (*p == c) {
            *p = c->hnext;
            t->n_hashed--;
            return;
        }
}

static void conn_link(conn **list, conn *c) {
    c->prev = NULL;
    c->next = *list;
    if (*list) (*list)->prev = c;
    *list = c;
}

static void conn_unlink(conn **list, conn *c) {
    if (c->prev) c->prev->next = c->next;
    else *list = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* ---- request head check ----------------------------------------------------------------------- */

/* evhttp ends lines at a bare LF and keeps header values only up to a NUL; RFC 9112 wants both
 * refused. A line evhttp itself rejects (no colon, no spaces) goes in front of the bad head:
 * evhttp has consumed only whole lines, so it reads that line next, answers 400 and closes the
 * connection as for any other malformed head. */
static void poison_head(conn *c, struct evbuffer *in) {
    static const char bad_line[] = "\x01\r\n";
    c->poisoned = true;
    c->in_head = false;
    c->in_check = true; /* the prepend calls check_head again */
    evbuffer_prepend(in, bad_line, sizeof bad_line - 1);
    c->in_check = false;
}

/* Check the head bytes of `in` past c->scanned, up to the head's empty line. */
static void scan_head(conn *c, struct evbuffer *in) {
    size_t len = evbuffer_get_length(in);
    while (c->in_head && c->scanned < len) {
        struct evbuffer_ptr pos;
        struct evbuffer_iovec vec[8];
        if (evbuffer_ptr_set(in, &pos, c->scanned, EVBUFFER_PTR_SET) != 0) return;
        int n = evbuffer_peek(in, (ev_ssize_t)(len - c->scanned), &pos, vec, 8);
        if (n <= 0) return;
        if (n > 8) n = 8;
        for (int k = 0; k < n && c->in_head; k++) {
            const unsigned char *p = vec[k].iov_base;
            for (size_t i = 0; i < vec[k].iov_len; i++) {
                unsigned char ch = p[i];
                c->scanned++;
                if (c->prev_cr) {
                    if (ch != '\n') goto bad; /* bare CR */
                    c->prev_cr = false;
                    if (c->line_len == 0 && c->seen_line) {
                        c->in_head = false; /* the empty line: a body or the next request follows */
                        break;
                    }
                    /* (empty lines before the request line are tolerated, RFC 9112 2.2) */
                    c->seen_line |= c->line_len > 0;
                    c->line_len = 0;
                } else if (ch == '\r') {
                    c->prev_cr = true;
                } else if (ch == '\n' || ch == 0) {
                    goto bad;
                } else {
                    c->line_len++;
                }
            }
        }
    }
    return;
bad:
    poison_head(c, in);
}

static void check_head(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg) {
    conn *c = arg;
    if (c->in_check || c->poisoned) return;
    /* evhttp drains what it has parsed from the front */
    c->scanned = info->n_deleted < c->scanned ? c->scanned - info->n_deleted : 0;
    if (info->n_added && c->in_head) scan_head(c, in);
}

/* The reply of the previous request is out: what the input buffer holds (pipelined) or gets
 * next is the next request's head. */
static void rearm_head_check(conn *c) {
    if (c->poisoned) return;
    c->in_head = true;
    c->seen_line = c->prev_cr = false;
    c->line_len = c->scanned = 0;
    scan_head(c, bufferevent_get_input(c->bev));
}

/* ---- replies --------------------------------------------------------------------------------- */

static void on_reply_written(struct evhttp_request *req, void *arg) {
    conn *c = arg;
    server *s = c->t;
    if (c->writing) {
        c->writing = false;
        s->writing--;
    }
    rearm_head_check(c);
    maybe_finish_drain(s);
}

static void release_body(const void *data, size_t len, void *extra) { ifd_free((void *)data); }

/* Send body (ifd_malloc'd, ownership taken; NULL for an empty body). */
static void reply(server *s, struct evhttp_request *req, int code, char *body, size_t len,
                  bool retry_after) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (body && !evhttp_find_header(h, "Content-Type"))
        evhttp_add_header(h, "Content-Type", "application/json");
    if (retry_after) evhttp_add_header(h, "Retry-After", "1");
    if (s->draining) evhttp_add_header(h, "Connection", "close");
    ifd_serve_metrics_http_request(s->repo->metrics, code);
    /* the body goes out by reference, freed once written */
    if (body && evbuffer_add_reference(evhttp_request_get_output_buffer(req), body, len,
                                       release_body, NULL) != 0) {
        ifd_free(body);
        code = 500;
    }
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    conn *c = evcon ? conn_find(s, evcon) : NULL;
    if (c) {
        /* libevent calls this once the reply is written; a client gone earlier has no evcon,
         * and one gone while the reply is written is settled in on_conn_close */
        c->writing = true;
        s->writing++;
        evhttp_request_set_on_complete_cb(req, on_reply_written, c);
    }
    evhttp_send_reply(req, code, NULL, NULL);
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

static void wake(server *t) {
    uint64_t one = 1;
    ssize_t r = write(t->wake_fd, &one, sizeof one);
    (void)r; /* a full counter (never in practice) still leaves the fd readable */
}

static pending *pending_get(server *t) {
    pending *p = t->spare;
    if (p) {
        t->spare = p->next_spare;
        t->n_spare--;
        memset(p, 0, sizeof *p);
        return p;
    }
    return ifd_calloc(1, sizeof *p);
}

static void pending_put(server *t, pending *p) {
    if (t->n_spare >= MAX_SPARE_PENDING) {
        ifd_free(p);
        return;
    }
    p->next_spare = t->spare;
    t->spare = p;
    t->n_spare++;
}

/* From a worker thread: hand the finished job back to the I/O thread that owns its request. */
static void job_done(ifd_serve_job *job, void *arg) {
    pending *p = job->http_request;
    server *t = p->t;
    ifd_serve_job *head = atomic_load_explicit(&t->done_head, memory_order_relaxed);
    do {
        job->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&t->done_head, &head, job,
                                                    memory_order_release, memory_order_relaxed));
    /* only the push onto an empty list wakes the thread; it takes the whole list at once */
    if (!head) wake(t);
}

static void send_job_reply(server *s, ifd_serve_job *job) {
    pending *p = job->http_request;
    if (job->reply && job->status == 200 && job->reply_header_len) {
        /* binary tensor data: the JSON header, then raw output bytes */
        struct evkeyvalq *h = evhttp_request_get_output_headers(p->req);
        char n[32];
        snprintf(n, sizeof n, "%zu", job->reply_header_len);
        evhttp_add_header(h, "Inference-Header-Content-Length", n);
        evhttp_add_header(h, "Content-Type", "application/octet-stream");
    }
    if (job->reply) reply(s, p->req, job->status, job->reply, job->reply_len, job->status == 503);
    else reply_error(s, p->req, 500, "out of memory");
    job->reply = NULL;
    ifd_serve_version_release(job->version);
    pending_put(s, p);
    s->inflight--;
}

static void start_drain(server *s);
static void stop_all(front *f);

/* The thread's eventfd: finished jobs, and the drain and stop orders of thread 0. */
static void on_wake(evutil_socket_t fd, short what, void *arg) {
    server *s = arg;
    front *f = s->f;
    uint64_t n;
    /* read before taking the list: a push after the read writes the fd again */
    ssize_t r = read(s->wake_fd, &n, sizeof n);
    (void)r;
    if (atomic_load(&f->stop)) {
        event_base_loopexit(s->base, NULL);
        return;
    }
    ifd_serve_job *list = atomic_exchange_explicit(&s->done_head, NULL, memory_order_acquire);
    ifd_serve_job *fifo = NULL;
    while (list) { /* oldest first */
        ifd_serve_job *j = list;
        list = j->next;
        j->next = fifo;
        fifo = j;
    }
    while (fifo) {
        ifd_serve_job *j = fifo;
        fifo = j->next;
        send_job_reply(s, j);
    }
    control_req *ctl = atomic_exchange_explicit(&s->ctl_head, NULL, memory_order_acquire);
    while (ctl) {
        control_req *c = ctl;
        ctl = c->next;
        if (c->status == 200) reply(s, c->req, 200, NULL, 0, false);
        else reply_error(s, c->req, c->status, "%s", c->message ? c->message : "failed");
        ifd_free(c->message);
        ifd_free(c);
        s->inflight--;
    }
    if (atomic_load(&f->draining) && !s->draining) start_drain(s);
    maybe_finish_drain(s);
    /* thread 0 stops every loop once the last thread reported its drain done */
    if (s->index == 0 && s->drain_reported && atomic_load(&f->drained) == f->n_threads)
        stop_all(f);
}

/* ---- connections: count, cap, adoption -------------------------------------------------------- */

static void on_conn_close(struct evhttp_connection *evcon, void *arg) {
    conn *c = arg;
    server *t = c->t;
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    if (c->head_cb) evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->head_cb);
    if (c->writing) {
        /* the client went away (or the send timeout hit) with our reply unsent */
        t->writing--;
        maybe_finish_drain(t);
    }
    conn_hash_remove(t, c);
    conn_unlink(&t->conns, c);
    atomic_fetch_sub(&t->f->n_conns, 1);
    ifd_serve_metrics_connections_add(t->repo->metrics, -1);
    ifd_free(c);
}

/* evhttp_set_bevcb: called by evhttp for each accepted connection, before it has an fd. */
static struct bufferevent *make_bufferevent(struct event_base *base, void *arg) {
    server *t = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    conn *c = bev ? ifd_calloc(1, sizeof *c) : NULL;
    if (!c) {
        /* without memory evhttp makes its own and the connection goes uncounted; it still has
         * the read timeout */
        if (bev) bufferevent_free(bev);
        return NULL;
    }
    c->t = t;
    c->bev = bev;
    c->in_head = true;
    c->over_cap = atomic_fetch_add(&t->f->n_conns, 1) >= t->opts->max_connections;
    ifd_serve_metrics_connections_add(t->repo->metrics, +1);
    c->head_cb = evbuffer_add_cb(bufferevent_get_input(bev), check_head, c);
    /* evhttp fills in its evhttp_connection after this returns; adopt_connections finds it.
     * The extra reference keeps bev valid until then even if evhttp drops it meanwhile. */
    bufferevent_incref(bev);
    conn_link(&t->unadopted, c);
    event_active(t->adopt_ev, EV_READ, 0);
    return bev;
}

static void end_linger(server *t, size_t i) {
    int fd = event_get_fd(t->lingering[i]);
    event_free(t->lingering[i]);
    close(fd);
    t->lingering[i] = t->lingering[--t->n_lingering];
}

static void on_linger(evutil_socket_t fd, short what, void *arg) {
    server *t = arg;
    char buf[4096];
    if (what & EV_READ) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;
    }
    for (size_t i = 0; i < t->n_lingering; i++)
        if (event_get_fd(t->lingering[i]) == fd) {
            end_linger(t, i);
            return;
        }
}

/* A connection over --max-connections: a 503 and the end of writing, then its input is read
 * out for a moment so that closing does not reset the connection before the client read the
 * 503 (a close with unread input sends RST). */
static void refuse_connection(server *t, conn *c) {
#define REFUSED_BODY "{\"error\":\"too many connections; retry later\"}"
    char msg[256];
    int len = snprintf(msg, sizeof msg,
                       "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                       "Retry-After: 1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                       sizeof REFUSED_BODY - 1, REFUSED_BODY);
#undef REFUSED_BODY
    /* Take the socket from the bufferevent instead of dup()ing it: the epoll changelist
     * (thread_init) must never see two fds of one socket. */
    int keep = bufferevent_getfd(c->bev);
    if (keep >= 0) bufferevent_setfd(c->bev, -1);
    if (keep >= 0) {
        ssize_t r = send(keep, msg, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)r;
        shutdown(keep, SHUT_WR);
    }
    /* the bufferevent has no fd left to close; calls on_conn_close, which frees c */
    evhttp_connection_free(c->evcon);
    if (keep < 0) return;
    if (t->n_lingering >= MAX_LINGERING) {
        close(keep);
        return;
    }
    struct event *ev = event_new(t->base, keep, EV_READ | EV_PERSIST, on_linger, t);
    struct timeval tv = {LINGER_SECS, 0};
    if (!ev || event_add(ev, &tv) != 0) {
        if (ev) event_free(ev);
        close(keep);
        return;
    }
    t->lingering[t->n_lingering++] = ev;
}

/* Runs after the accept callbacks: each new bufferevent now belongs to an evhttp_connection
 * (evhttp's callback argument on it), which gets our close callback, timeouts and the cap. */
static void adopt_connections(evutil_socket_t fd, short what, void *arg) {
    server *t = arg;
    while (t->unadopted) {
        conn *c = t->unadopted;
        conn_unlink(&t->unadopted, c);
        bufferevent_event_cb eventcb = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(c->bev, NULL, NULL, &eventcb, &cbarg);
        struct evhttp_connection *evcon = cbarg;
        if (!eventcb || !evcon || evhttp_connection_get_bufferevent(evcon) != c->bev) {
            /* evhttp gave the connection up (out of memory) before we saw it */
            if (c->head_cb) evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->head_cb);
            bufferevent_decref(c->bev);
            atomic_fetch_sub(&t->f->n_conns, 1);
            ifd_serve_metrics_connections_add(t->repo->metrics, -1);
            ifd_free(c);
            continue;
        }
        c->evcon = evcon;
        conn_link(&t->conns, c);
        conn_hash_insert(t, c);
        evhttp_connection_set_closecb(evcon, on_conn_close, c);
        bufferevent_decref(c->bev); /* evhttp's reference is the one left */
        if (c->over_cap || t->draining) {
            refuse_connection(t, c);
            continue;
        }
        /* evhttp set both to the read timeout; a client that does not read its reply is
         * closed at the send timeout, with at most that one reply buffered (evhttp reads no
         * further request until the reply is out) */
        struct timeval rd = {t->opts->read_timeout_secs, 0};
        struct timeval wr = {t->opts->write_timeout_secs, 0};
        bufferevent_set_timeouts(c->bev, &rd, &wr);
    }
}

/* ---- KServe v2 handlers ------------------------------------------------------------------------- */

/* The version a route names, with a reference the caller releases; or a reply sent and NULL. */
static ifd_serve_version *resolve(server *s, struct evhttp_request *req, const route_args *a) {
    char err[1024];
    ifd_serve_version *v = NULL;
    int code = ifd_serve_acquire(s->repo, a->model, a->version, a->label, &v, err, sizeof err);
    if (code != 200) {
        reply_error(s, req, code, "%s", err);
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
    ifd_serve_version *v = resolve(s, req, a);
    if (!v) return;
    ifd_sbuf b = {0};
    ifd_sbuf_puts(&b, "{\"name\":");
    ifd_sbuf_json_string(&b, v->model->name);
    ifd_sbuf_puts(&b, ",\"versions\":[");
    ifd_serve_model_put_versions(v->model, &b);
    ifd_sbuf_puts(&b, "],\"platform\":\"onnx\",\"inputs\":[");
    put_io(&b, v->inputs, v->n_inputs);
    ifd_sbuf_puts(&b, "],\"outputs\":[");
    put_io(&b, v->outputs, v->n_outputs);
    ifd_sbuf_puts(&b, "]}");
    ifd_serve_version_release(v);
    reply_sbuf(s, req, &b);
}

static void h_model_ready(server *s, struct evhttp_request *req, const route_args *a) {
    ifd_serve_version *v = resolve(s, req, a);
    if (!v) return;
    ifd_serve_version_release(v);
    reply(s, req, 200, NULL, 0, false);
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
    ifd_serve_version *v = resolve(s, req, a);
    if (!v) return;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0) {
        ifd_serve_version_release(v);
        reply_error(s, req, 400, "empty request body; expected a JSON %s request",
                    protocol == IFD_SERVE_PROTO_TFS ? "predict" : "infer");
        return;
    }
    int64_t header_len = protocol == IFD_SERVE_PROTO_KSERVE ? binary_header(s, req, len) : 0;
    if (header_len < 0) {
        ifd_serve_version_release(v);
        return;
    }
    /* contiguous body; libevent leaves the input buffer alone until the reply is sent */
    const char *body = (const char *)evbuffer_pullup(in, -1);
    pending *p = body ? pending_get(s) : NULL;
    if (!p) {
        ifd_serve_version_release(v);
        reply_error(s, req, 500, "out of memory");
        return;
    }
    p->req = req;
    p->t = s;
    ifd_serve_job *job = &p->job;
    job->http_request = p;
    job->body = body;
    job->body_len = len;
    job->version = v;
    job->protocol = protocol;
    job->binary_header_len = (size_t)header_len;
    if (ifd_serve_try_inline(job)) {
        s->inflight++; /* send_job_reply counts it out */
        send_job_reply(s, job);
        return;
    }
    if (!ifd_serve_submit(job)) {
        pending_put(s, p);
        ifd_serve_count_rejected(v);
        ifd_serve_version_release(v);
        reply_error(s, req, 503, "model '%s' queue is full; retry later", a->model);
        return;
    }
    s->inflight++;
}

static void h_infer(server *s, struct evhttp_request *req, const route_args *a) {
    submit_job(s, req, a, IFD_SERVE_PROTO_KSERVE);
}

/* The repository API changes what the server runs: loopback clients only, unless
 * --allow-remote-management. */
static bool management_allowed(server *s, struct evhttp_request *req) {
    if (s->opts->allow_remote_management) return true;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    const char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon) evhttp_connection_get_peer(evcon, (char **)&addr, &port);
    if (addr && (!strncmp(addr, "127.", 4) || !strcmp(addr, "::1") ||
                 !strncmp(addr, "::ffff:127.", 11)))
        return true;
    reply_error(s, req, 403, "the repository API is served to loopback clients only (start the "
                "server with --allow-remote-management to change that)");
    return false;
}

static void h_repository_index(server *s, struct evhttp_request *req, const route_args *a) {
    if (!management_allowed(s, req)) return;
    /* optional body {"ready": true}: only models that can serve */
    bool ready_only = false;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len) {
        const char *body = (const char *)evbuffer_pullup(in, -1);
        json_error_t je;
        json_t *root = body && ifd_kserve_depth_ok(body, len, 8)
                           ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
        json_t *r = root ? json_object_get(root, "ready") : NULL;
        if (!root || !json_is_object(root) || (r && !json_is_boolean(r))) {
            json_decref(root);
            reply_error(s, req, 400, "the index request body must be a JSON object such as "
                        "{\"ready\": true}");
            return;
        }
        ready_only = json_is_true(r);
        json_decref(root);
    }
    ifd_sbuf b = {0};
    ifd_serve_repo_index(s->repo, ready_only, &b);
    reply_sbuf(s, req, &b);
}

/* From the loader thread: hand the outcome to the I/O thread that owns the request. */
static void control_done(void *arg, int status, const char *message) {
    control_req *c = arg;
    server *t = c->t;
    c->status = status;
    c->message = message && *message ? ifd_strdup(message) : NULL;
    control_req *head = atomic_load_explicit(&t->ctl_head, memory_order_relaxed);
    do {
        c->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&t->ctl_head, &head, c, memory_order_release,
                                                    memory_order_relaxed));
    wake(t);
}

static void h_repository_control(server *s, struct evhttp_request *req, const route_args *a,
                                 bool load) {
    if (!management_allowed(s, req)) return;
    control_req *c = ifd_calloc(1, sizeof *c);
    if (!c) {
        reply_error(s, req, 500, "out of memory");
        return;
    }
    c->t = s;
    c->req = req;
    char err[512];
    int code = ifd_serve_repo_control(s->repo, load, a->model, control_done, c, err, sizeof err);
    if (code) {
        ifd_free(c);
        reply_error(s, req, code, "%s", err);
        return;
    }
    s->inflight++;
}

static void h_repository_load(server *s, struct evhttp_request *req, const route_args *a) {
    h_repository_control(s, req, a, true);
}

static void h_repository_unload(server *s, struct evhttp_request *req, const route_args *a) {
    h_repository_control(s, req, a, false);
}

/* ---- monitoring: /metrics, /api/stats and the dashboard page ------------------------------------- */

extern const unsigned char ifd_dashboard_html[];
extern const unsigned long ifd_dashboard_html_len;

static void reply_typed(server *s, struct evhttp_request *req, ifd_sbuf *b, const char *type) {
    if (b->failed) {
        ifd_sbuf_free(b);
        reply_error(s, req, 500, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    reply(s, req, 200, b->data, b->len, false);
    b->data = NULL;
}

static void h_dashboard(server *s, struct evhttp_request *req, const route_args *a) {
    ifd_sbuf b = {0};
    ifd_sbuf_append(&b, ifd_dashboard_html, (size_t)ifd_dashboard_html_len);
    reply_typed(s, req, &b, "text/html; charset=utf-8");
}

static void h_metrics(server *s, struct evhttp_request *req, const route_args *a) {
    if (!s->repo->metrics) {
        reply_error(s, req, 404, "metrics are off (--no-metrics)");
        return;
    }
    ifd_sbuf b = {.limit = 256u << 20};
    ifd_serve_metrics_render(s->repo->metrics, &b);
    reply_typed(s, req, &b, IFD_METRICS_CONTENT_TYPE);
}

/* GET /api/stats[?since=<unix ms>]: the dashboard's data: history newer than `since`, the
 * repository's models and versions with states and reasons, drift summaries, uptime. */
static void h_stats(server *s, struct evhttp_request *req, const route_args *a) {
    long long since = 0;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (q && *q) {
        char *end = NULL;
        if (strncmp(q, "since=", 6) || (since = strtoll(q + 6, &end, 10), *end) || since < 0) {
            reply_error(s, req, 400, "the only query parameter is since=<unix milliseconds>");
            return;
        }
    }
    ifd_sbuf b = {.limit = 256u << 20};
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    ifd_sbuf_printf(&b, "{\"uptime_s\":%.3f,\"history\":",
                    (double)(now.tv_sec - s->f->started.tv_sec) +
                        (double)(now.tv_nsec - s->f->started.tv_nsec) / 1e9);
    ifd_serve_metrics_history_json(s->repo->metrics, since, &b);
    ifd_sbuf_puts(&b, ",\"repository\":");
    ifd_serve_repo_index(s->repo, false, &b);
    ifd_sbuf_puts(&b, ",\"drift\":");
    ifd_serve_repo_drift_json(s->repo, &b);
    ifd_sbuf_puts(&b, "}");
    reply_typed(s, req, &b, "application/json");
}

/* The --metrics-port listener: /metrics and nothing else. */
static void on_metrics_port_request(struct evhttp_request *req, void *arg) {
    server *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || strcmp(path, "/metrics")) {
        reply_error(s, req, 404, "this port serves /metrics only");
        return;
    }
    h_metrics(s, req, NULL);
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
    {EVHTTP_REQ_POST, "/v2/repository/models/{m}/load", h_repository_load},
    {EVHTTP_REQ_POST, "/v2/repository/models/{m}/unload", h_repository_unload},
    {EVHTTP_REQ_GET, "/", h_dashboard},
    {EVHTTP_REQ_GET, "/metrics", h_metrics},
    {EVHTTP_REQ_GET, "/api/stats", h_stats},
};

#define MAX_SEGMENTS 8

/* Match the path segments against a route pattern, filling a; false when it does not match.
 * *bad names the (last) segment that fills {m} or {v} with something invalid. */
static bool match_route(const char *pattern, char **seg, int n, route_args *a, const char **bad) {
    const char *p = pattern;
    for (int i = 0; i < n; i++) {
        if (*p != '/') return false;
        p++;
        size_t plen = strcspn(p, "/");
        if (plen == 3 && !memcmp(p, "{m}", 3)) {
            if (!ifd_serve_valid_model_name(seg[i])) *bad = "model name";
            a->model = seg[i];
        } else if (plen == 3 && !memcmp(p, "{v}", 3)) {
            if (!ifd_serve_parse_version(seg[i], &a->version)) *bad = "model version";
        } else if (strncmp(p, seg[i], plen) || seg[i][plen]) {
            return false;
        }
        p += plen;
    }
    return *p == 0;
}

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
        "expected /v1/models/NAME[/versions/N|/labels/L][:predict|/metadata] with NAME of "
        "[A-Za-z0-9_.-]";
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
            const char *l = seg[i + 1];
            size_t ln = strlen(l), ok = ln > 0 && ln <= IFD_SERVE_MAX_LABEL_LEN;
            for (size_t k = 0; ok && k < ln; k++)
                ok = (l[k] >= 'a' && l[k] <= 'z') || (l[k] >= 'A' && l[k] <= 'Z') ||
                     (l[k] >= '0' && l[k] <= '9') || l[k] == '_' || l[k] == '-';
            if (!ok) {
                reply_error(s, req, 400, "invalid version label in the path: 1-%d of "
                            "[A-Za-z0-9_-]", IFD_SERVE_MAX_LABEL_LEN);
                return;
            }
            a.label = l;
        } else if (!ifd_serve_parse_version(seg[i + 1], &a.version)) {
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
        ifd_serve_version *v = resolve(s, req, &a);
        if (!v) return;
        ifd_tfs_model_metadata(v, &b);
        ifd_serve_version_release(v);
        reply_sbuf(s, req, &b);
        return;
    }
    if (!atomic_load(&s->repo->ready) && !ifd_serve_repo_find(s->repo, a.model)) {
        reply_error(s, req, 503, "server is not ready: models are still loading");
        return;
    }
    char err[1024];
    int code = ifd_tfs_model_status(s->repo, a.model, a.version, a.label, &b, err, sizeof err);
    if (code == 200) reply_sbuf(s, req, &b);
    else reply_error(s, req, code, "%s", err);
}

static void on_request(struct evhttp_request *req, void *arg) {
    server *s = arg;
    char path[1024];
    char *seg[MAX_SEGMENTS];
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
        route_args a = {0};
        const char *bad = NULL;
        if (!match_route(g_routes[r].pattern, seg, n, &a, &bad)) continue;
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

/* ---- drain and stop ------------------------------------------------------------------------------ */

static void stop_all(front *f) {
    atomic_store(&f->stop, true);
    for (int i = 1; i < f->n_threads; i++) wake(&f->threads[i]);
    event_base_loopexit(f->threads[0].base, NULL);
}

/* Report once when draining and nothing is in flight or still being written; thread 0 stops
 * every loop when all threads have reported. */
static void maybe_finish_drain(server *s) {
    front *f = s->f;
    if (!s->draining || atomic_load_explicit(&s->inflight, memory_order_relaxed) || s->writing ||
        s->drain_reported || atomic_load(&f->stop))
        return;
    s->drain_reported = true;
    if (atomic_fetch_add(&f->drained, 1) + 1 == f->n_threads) {
        if (s->index == 0) stop_all(f);
        else wake(&f->threads[0]);
    }
}

/* Stop accepting on this thread (its listening socket closes with its listener) and answer
 * what is in flight. */
static void start_drain(server *s) {
    s->draining = true;
    if (s->bound) evhttp_del_accept_socket(s->http, s->bound);
    s->bound = NULL;
    maybe_finish_drain(s);
}

static size_t count_inflight(front *f) {
    size_t n = 0;
    for (int i = 0; i < f->n_threads; i++)
        n += atomic_load_explicit(&f->threads[i].inflight, memory_order_relaxed);
    return n;
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    front *f = arg;
    if (atomic_load(&f->draining)) return;
    atomic_store(&f->draining, true);
    fprintf(stderr, "inferd: %s: finishing %zu requests in flight, then exiting\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", count_inflight(f));
    struct timeval tv = {f->opts->drain_timeout_secs, 0};
    evtimer_add(f->drain_ev, &tv);
    for (int i = 1; i < f->n_threads; i++) wake(&f->threads[i]);
    start_drain(&f->threads[0]);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg) {
    front *f = arg;
    fprintf(stderr, "inferd: SIGHUP: rescanning the model repository\n");
    ifd_serve_repo_rescan(f->repo);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg) {
    front *f = arg;
    fprintf(stderr, "inferd: drain timeout: %zu requests still running\n", count_inflight(f));
    stop_all(f);
}

static void on_ready_poll(evutil_socket_t fd, short what, void *arg) {
    front *f = arg;
    if (!atomic_load(&f->repo->ready)) return;
    event_del(f->ready_ev);
    printf("inferd: serving %zu models on http://127.0.0.1:%d/ "
           "(dashboard at /, KServe v2 at /v2, metrics at /metrics)\n",
           ifd_serve_repo_ready_count(f->repo), f->port);
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
    o->metrics_port = -1;
    o->inline_max_us = 50;
}

/* ---- listening sockets ---------------------------------------------------------------------------- */

/* A socket bound to addr:port; reuse_port joins the SO_REUSEPORT group of the I/O threads.
 * -1 with the reason in *why. */
static int bind_socket(const struct addrinfo *ai, int port, bool reuse_port, const char **why) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET6) ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    else ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)) {
        *why = "socket";
    } else if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0) {
        *why = "bind";
    } else if (reuse_port && listen(fd, SOMAXCONN) != 0) {
        *why = "listen";
    } else {
        return fd;
    }
    int e = errno;
    if (fd >= 0) close(fd);
    errno = e;
    return -1;
}

static int bound_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return -1;
    return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* One SO_REUSEPORT listening socket per I/O thread on the same port. A first bind without
 * SO_REUSEPORT finds the port (for port 0) and fails if another process listens there, which
 * the group alone would join silently. */
static bool open_listeners(front *f) {
    const ifd_serve_options *o = f->opts;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    const char *why = "resolve";
    int rc = getaddrinfo(o->http_address, NULL, &hints, &ai);
    bool ok = false;
    if (rc != 0) {
        fprintf(stderr, "inferd serve: cannot listen on %s:%d: %s\n", o->http_address,
                o->http_port, gai_strerror(rc));
        return false;
    }
    int probe = bind_socket(ai, o->http_port, false, &why);
    int port = probe >= 0 ? bound_port(probe) : -1;
    if (probe >= 0) close(probe);
    if (port < 0) goto out;
    for (int i = 0; i < f->n_threads; i++) {
        f->threads[i].listen_fd = bind_socket(ai, port, true, &why);
        if (f->threads[i].listen_fd < 0) goto out;
    }
    f->port = port;
    ok = true;
out:
    if (!ok)
        fprintf(stderr, "inferd serve: cannot listen on %s:%d: %s: %s\n", o->http_address,
                o->http_port, why, strerror(errno));
    freeaddrinfo(ai);
    return ok;
}

/* ---- I/O threads ---------------------------------------------------------------------------------- */

static bool thread_init(front *f, server *s, int index) {
    const ifd_serve_options *o = f->opts;
    s->opts = o;
    s->repo = f->repo;
    s->f = f;
    s->index = index;
    atomic_init(&s->done_head, NULL);
    atomic_init(&s->ctl_head, NULL);
    s->n_buckets = 64;
    s->buckets = ifd_calloc(s->n_buckets, sizeof *s->buckets);
    struct event_config *cfg = event_config_new();
    if (cfg) {
        /* one thread per base: no locks. The changelist applies event changes once per loop
         * turn, so evhttp's disable/enable of a connection's read and write events while it
         * answers a request costs 2 epoll_ctl calls per request instead of 4 (libevent's
         * condition for it: no dup()ed fds, see refuse_connection). */
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        s->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!s->buckets || !s->base || s->wake_fd < 0 || !(s->http = evhttp_new(s->base)))
        return false;
    s->wake_ev = event_new(s->base, s->wake_fd, EV_READ | EV_PERSIST, on_wake, s);
    s->adopt_ev = event_new(s->base, -1, 0, adopt_connections, s);
    if (!s->wake_ev || !s->adopt_ev || event_add(s->wake_ev, NULL) != 0) return false;
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_max_body_size(s->http, (ev_ssize_t)o->max_body_bytes);
    evhttp_set_max_headers_size(s->http, (ev_ssize_t)o->max_header_bytes);
    struct timeval tv = {o->read_timeout_secs, 0};
    evhttp_set_timeout_tv(s->http, &tv);
    evhttp_set_default_content_type(s->http, "text/plain; charset=utf-8");
    evhttp_set_gencb(s->http, on_request, s);
    evhttp_set_bevcb(s->http, make_bufferevent, s);
    struct evconnlistener *lev =
        evconnlistener_new(s->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                           -1, s->listen_fd);
    if (!lev) return false;
    s->listen_fd = -1; /* the listener closes it */
    s->bound = evhttp_bind_listener(s->http, lev);
    if (!s->bound) {
        evconnlistener_free(lev);
        return false;
    }
    return true;
}

static void *thread_main(void *arg) {
    server *s = arg;
    char name[16];
    snprintf(name, sizeof name, "inferd-http-%d", s->index);
    pthread_setname_np(pthread_self(), name); /* tests and top tell the I/O threads apart */
    event_base_dispatch(s->base);
    return NULL;
}

/* A job whose reply will never be sent (stopped past the drain timeout). A request whose
 * client left is ours to free; the others go with their connection in evhttp_free. */
static void drop_job(ifd_serve_job *j) {
    pending *p = j->http_request;
    if (!evhttp_request_get_connection(p->req)) evhttp_request_free(p->req);
    ifd_serve_version_release(j->version);
    ifd_free(j->reply);
    ifd_free(p);
}

/* After the loops stopped and the workers were joined. */
static void thread_free(server *s) {
    /* finished jobs nobody replied to; their requests go with evhttp_free */
    ifd_serve_job *list = atomic_exchange(&s->done_head, NULL);
    while (list) {
        ifd_serve_job *j = list;
        list = j->next;
        drop_job(j);
    }
    /* load/unload outcomes nobody answered (their requests go with evhttp_free) */
    control_req *ctl = atomic_exchange(&s->ctl_head, NULL);
    while (ctl) {
        control_req *c = ctl;
        ctl = c->next;
        ifd_free(c->message);
        ifd_free(c);
    }
    if (s->http) evhttp_free(s->http); /* closes every connection: on_conn_close frees each */
    while (s->unadopted) {
        conn *c = s->unadopted;
        conn_unlink(&s->unadopted, c);
        if (c->head_cb) evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->head_cb);
        bufferevent_decref(c->bev);
        ifd_free(c);
    }
    while (s->spare) {
        pending *p = s->spare;
        s->spare = p->next_spare;
        ifd_free(p);
    }
    if (s->wake_ev) event_free(s->wake_ev);
    if (s->adopt_ev) event_free(s->adopt_ev);
    while (s->n_lingering) end_linger(s, 0);
    if (s->base) event_base_free(s->base);
    if (s->wake_fd >= 0) close(s->wake_fd);
    if (s->listen_fd >= 0) close(s->listen_fd);
    ifd_free(s->buckets);
}

static void *jansson_malloc(size_t n) { return ifd_malloc(n); }
static void jansson_free(void *p) { ifd_free(p); }

static int default_http_threads(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores >= 4 ? (int)(cores / 2) : 1;
}

int ifd_serve_run(const ifd_serve_options *o) {
    int rc = 1;
    front f = {.opts = o};
    struct stat st;
    if (stat(o->model_repository, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "inferd serve: model repository '%s' is not a readable folder\n",
                o->model_repository);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    json_set_alloc_funcs(jansson_malloc, jansson_free);
    f.n_threads = o->http_threads > 0 ? o->http_threads : default_http_threads();
    f.threads = ifd_calloc((size_t)f.n_threads, sizeof *f.threads);
    if (!f.threads) goto out;
    for (int i = 0; i < f.n_threads; i++) f.threads[i].wake_fd = f.threads[i].listen_fd = -1;
    clock_gettime(CLOCK_MONOTONIC, &f.started);
    if (ifd_serve_repo_create(o, job_done, &f, &f.repo) != IFD_OK) {
        fprintf(stderr, "inferd serve: %s\n", ifd_last_error());
        goto out;
    }
    if (!open_listeners(&f)) goto out;
    for (int i = 0; i < f.n_threads; i++)
        if (!thread_init(&f, &f.threads[i], i)) {
            fprintf(stderr, "inferd serve: cannot initialize libevent\n");
            goto out;
        }
    struct event_base *base0 = f.threads[0].base;
    f.sigterm_ev = evsignal_new(base0, SIGTERM, on_signal, &f);
    f.sigint_ev = evsignal_new(base0, SIGINT, on_signal, &f);
    f.sighup_ev = evsignal_new(base0, SIGHUP, on_sighup, &f);
    f.drain_ev = evtimer_new(base0, on_drain_timeout, &f);
    f.ready_ev = event_new(base0, -1, EV_PERSIST, on_ready_poll, &f);
    if (!f.sigterm_ev || !f.sigint_ev || !f.sighup_ev || !f.drain_ev || !f.ready_ev) goto out;
    /* libevent restores the disposition it found when the signal events are freed: ignoring
     * them then keeps a second SIGTERM during the cleanup below from killing the process */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    evsignal_add(f.sigterm_ev, NULL);
    evsignal_add(f.sigint_ev, NULL);
    evsignal_add(f.sighup_ev, NULL);
    if (o->metrics_port >= 0 && !o->no_metrics) {
        if (!(f.metrics_http = evhttp_new(base0))) goto out;
        evhttp_set_allowed_methods(f.metrics_http, EVHTTP_REQ_GET);
        evhttp_set_timeout(f.metrics_http, o->read_timeout_secs);
        evhttp_set_gencb(f.metrics_http, on_metrics_port_request, &f.threads[0]);
        if (evhttp_bind_socket(f.metrics_http, o->http_address, (ev_uint16_t)o->metrics_port)) {
            fprintf(stderr, "inferd serve: cannot listen on %s:%d for metrics: %s\n",
                    o->http_address, o->metrics_port, strerror(errno));
            goto out;
        }
    }
    if (ifd_serve_repo_start(f.repo) != IFD_OK) {
        fprintf(stderr, "inferd serve: %s\n", ifd_last_error());
        goto out;
    }
    for (int i = 1; i < f.n_threads; i++) {
        if (pthread_create(&f.threads[i].thread, NULL, thread_main, &f.threads[i]) != 0) {
            fprintf(stderr, "inferd serve: cannot start I/O thread %d\n", i);
            stop_all(&f);
            goto out;
        }
        f.threads[i].started = true;
    }
    struct timeval poll_tv = {0, 20000};
    event_add(f.ready_ev, &poll_tv);
    event_base_dispatch(base0);
    rc = 0;
out:
    if (f.threads) {
        atomic_store(&f.stop, true);
        for (int i = 1; i < f.n_threads; i++)
            if (f.threads[i].started) {
                wake(&f.threads[i]);
                pthread_join(f.threads[i].thread, NULL);
            }
    }
    if (f.repo) {
        /* workers finish their current job; what they finish now is dropped with its request */
        ifd_serve_job *left = ifd_serve_repo_stop(f.repo);
        while (left) {
            ifd_serve_job *j = left;
            left = j->next;
            drop_job(j);
        }
    }
    if (f.sigterm_ev) event_free(f.sigterm_ev);
    if (f.sigint_ev) event_free(f.sigint_ev);
    if (f.sighup_ev) event_free(f.sighup_ev);
    if (f.metrics_http) evhttp_free(f.metrics_http);
    if (f.drain_ev) event_free(f.drain_ev);
    if (f.ready_ev) event_free(f.ready_ev);
    for (int i = 0; f.threads && i < f.n_threads; i++) thread_free(&f.threads[i]);
    ifd_serve_repo_free(f.repo);
    ifd_free(f.threads);
    libevent_global_shutdown();
    return rc;
}
