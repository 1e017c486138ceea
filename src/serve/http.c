/* The HTTP front end: --http-threads I/O threads, each running its own libevent event_base on
 * its own SO_REUSEPORT listening socket, so the kernel spreads new connections over the threads
 * and a connection lives on the thread that accepted it; the KServe v2 and TF Serving routes run
 * on that thread. Infer requests go to the model version's worker threads (or, for cheap
 * models, run right here: repository.c's inline runs). A worker pushes the finished job onto a
 * lock-free list of the thread that owns the request and writes that thread's eventfd only when
 * the list was empty, so one wakeup carries every reply finished meanwhile; only the owning
 * thread touches a connection, and libevent runs without its locks.
 *
 * HTTP/1.1 itself is http1.c (request heads, chunked bodies); this file moves the bytes. A
 * connection reads into one buffer that holds the request head and its body contiguously (a
 * chunked body is decoded in place), so a request's body goes to the decoder without a copy;
 * a reply is its header block and body in one writev. Per request that is one read and one
 * write system call, the event staying registered for reading throughout, and no timer: a
 * tick every TICK_MS closes connections past --read-timeout-secs (idle, or a request arriving
 * too slowly) or --write-timeout-secs (a reply the client does not read). libevent's evhttp
 * cost twice nginx's CPU per request on its own, half the requests per second; this costs about
 * what nginx costs (bench/serve_http.sh).
 *
 * One request per connection is in the works at a time: pipelined requests wait in the buffer
 * (reading pauses when it is full) and the next is parsed once the reply is out, so at most
 * one reply per connection is buffered. */
#include "serve/serve.h"
#include "serve/http1.h"
#include "serve/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_SPARE_PENDING 256 /* recycled request records kept per thread */
#define MAX_LINGERING 64      /* closed connections read out at once per thread */
#define LINGER_SECS 2         /* how long a closed connection is read out before the close */
#define TICK_MS 250           /* timeout checks and the Date header */
#define IN_INITIAL 4096       /* a connection's first input buffer */
#define IN_KEEP (64u << 10)   /* an idle connection's larger buffer is cut back to IN_INITIAL */
#define IN_SLACK (64u << 10)  /* buffer room past head + body: chunk framing read ahead */
#define MAX_METRICS_CONNS 64  /* --metrics-port connections at once (not in --max-connections) */
#define MAX_PATH 1024

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
    int listen_fd, metrics_fd;           /* -1: none (metrics: thread 0 with --metrics-port) */
    struct event *listen_ev, *metrics_ev, *wake_ev, *tick_ev;
    int wake_fd;                         /* eventfd: finished jobs, drain and stop orders */
    _Atomic(ifd_serve_job *) done_head;  /* finished jobs pushed by workers, newest first */
    _Atomic(control_req *) ctl_head;     /* finished load/unload requests, from the loader */
    atomic_size_t inflight;              /* requests handed to workers (atomic: SIGTERM's message) */
    size_t writing;                      /* replies started but not yet written out */
    bool drain_reported;
    conn *conns;                         /* every connection of this thread */
    int n_metrics_conns;
    bool accept_paused;                  /* out of descriptors: listeners off until the tick */
    pending *spare;                      /* recycled request records */
    size_t n_spare;
    int lingering[MAX_LINGERING];        /* closed connections still being read out */
    struct event *linger_ev[MAX_LINGERING];
    size_t n_lingering;
    int64_t now_ms;                      /* CLOCK_MONOTONIC, updated each tick */
    time_t date_sec;
    char date[40];                       /* "Date: ...\r\n" */
    size_t date_len;
} server;

/* What the I/O threads share. Thread 0 is the caller of ifd_serve_run: it owns the signals,
 * the drain timer, the ready line and the --metrics-port listener. */
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
    struct timespec started;
};

/* Where a connection is with its current request. */
enum {
    C_HEAD,    /* reading a request head (or idle between requests) */
    C_BODY,    /* reading a Content-Length body */
    C_CHUNKED, /* reading a chunked body */
    C_BUSY,    /* the request is with a handler, a worker or the loader */
    C_WRITING, /* the reply is partly written; waiting for the socket */
    C_DEAD,    /* the socket is closed but a worker still holds the request */
};

/* One accepted connection: its socket, input buffer and the request in the works. Route
 * handlers take it as the request. */
struct conn {
    conn *prev, *next;
    server *t;
    int fd;
    struct event *ev;
    short events;                        /* what ev waits for now: EV_READ, EV_WRITE or 0 */
    int state;                           /* C_* */
    bool metrics_only;                   /* accepted on --metrics-port */
    bool loopback;                       /* the peer is 127.0.0.0/8 or ::1 */
    bool peer_eof;                       /* the client shut down its side */
    bool close_after;                    /* close once the reply is out */
    bool in_process;                     /* process() is on the stack: do not free */
    char *in;                            /* input: [0, in_len) read, capacity in_cap */
    size_t in_len, in_cap;
    size_t scanned;                      /* head bytes already checked */
    ifd_http_head head;
    size_t head_len;
    ifd_http_chunked ch;
    const char *body;                    /* the request's body (in `in`) */
    size_t body_len;
    size_t msg_end;                      /* where the request ends in `in` */
    int64_t stamp;                       /* t->now_ms at the last progress */
    /* the reply: set by handlers, then written */
    const char *r_type;                  /* Content-Type (application/json when NULL) */
    bool r_no_store;                     /* Cache-Control: no-store */
    size_t r_header_len;                 /* Inference-Header-Content-Length; 0: none */
    char hdr[384];
    size_t hdr_len, hdr_off;
    char *out;                           /* body, ifd_malloc'd */
    size_t out_len, out_off;
};

/* One request handed to a worker; the repository sees only `job` (job.http_request points
 * back here). */
struct pending {
    ifd_serve_job job;
    conn *req;
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
    conn *req;
    int status;
    char *message;
};

static void maybe_finish_drain(server *s);
static void process(conn *c);
static void on_request(server *s, conn *req);

/* ---- lingering close ------------------------------------------------------------------------ */

static void end_linger(server *t, size_t i) {
    event_free(t->linger_ev[i]);
    close(t->lingering[i]);
    t->n_lingering--;
    t->linger_ev[i] = t->linger_ev[t->n_lingering];
    t->lingering[i] = t->lingering[t->n_lingering];
}

static void on_linger(evutil_socket_t fd, short what, void *arg) {
    server *t = arg;
    char buf[4096];
    if (what & EV_READ) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;
    }
    for (size_t i = 0; i < t->n_lingering; i++)
        if (t->lingering[i] == fd) {
            end_linger(t, i);
            return;
        }
}

/* Close fd after what was written to it: end our side, then read out what the client still
 * sends for a moment (closing with unread input would send a reset, which can destroy the reply
 * before the client read it), then close. */
static void linger_close(server *t, int fd) {
    shutdown(fd, SHUT_WR);
    if (t->n_lingering >= MAX_LINGERING) {
        close(fd);
        return;
    }
    struct event *ev = event_new(t->base, fd, EV_READ | EV_PERSIST, on_linger, t);
    struct timeval tv = {LINGER_SECS, 0};
    if (!ev || event_add(ev, &tv) != 0) {
        if (ev) event_free(ev);
        close(fd);
        return;
    }
    t->lingering[t->n_lingering] = fd;
    t->linger_ev[t->n_lingering++] = ev;
}

/* ---- connections ------------------------------------------------------------------------------ */

static void conn_link(server *t, conn *c) {
    c->prev = NULL;
    c->next = t->conns;
    if (t->conns) t->conns->prev = c;
    t->conns = c;
}

static void conn_unlink(server *t, conn *c) {
    if (c->prev) c->prev->next = c->next;
    else t->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void set_events(conn *c, short what) {
    if (c->events == what) return;
    event_del(c->ev);
    c->events = what;
    if (!what) return;
    event_assign(c->ev, c->t->base, c->fd, (short)(what | EV_PERSIST), event_get_callback(c->ev),
                 c);
    event_add(c->ev, NULL);
}

/* Give up the socket: lingering when a reply went out and input may follow. */
static void drop_socket(conn *c, bool linger) {
    server *t = c->t;
    if (c->fd < 0) return;
    event_del(c->ev);
    c->events = 0;
    if (linger) linger_close(t, c->fd);
    else close(c->fd);
    c->fd = -1;
    if (c->metrics_only) {
        t->n_metrics_conns--;
    } else {
        atomic_fetch_sub(&t->f->n_conns, 1);
        ifd_serve_metrics_connections_add(t->repo->metrics, -1);
    }
}

static void conn_free(conn *c) {
    server *t = c->t;
    drop_socket(c, false);
    if (c->state == C_WRITING) t->writing--;
    conn_unlink(t, c);
    if (c->ev) event_free(c->ev);
    ifd_free(c->in);
    ifd_free(c->out);
    ifd_free(c);
}

/* Close the connection. A request a worker or the loader still holds keeps the record (C_DEAD)
 * until it comes back; inside process() the record goes when process() returns. */
static void conn_close(conn *c, bool linger) {
    server *t = c->t;
    if (c->state == C_BUSY) {
        drop_socket(c, linger);
        c->state = C_DEAD;
        return;
    }
    if (c->in_process) {
        drop_socket(c, linger);
        if (c->state == C_WRITING) t->writing--;
        c->state = C_DEAD; /* process() frees it when it returns */
        return;
    }
    conn_free(c);
    maybe_finish_drain(t);
}

/* ---- replies --------------------------------------------------------------------------------- */

static const char *status_text(int code) {
    switch (code) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return code < 300 ? "OK" : code < 500 ? "Bad Request" : "Internal Server Error";
    }
}

static char *put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, lit) put(p, lit, sizeof lit - 1)

static char *put_uint(char *p, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* Write what is left of the reply. 1: all out; 0: the socket is full; -1: the connection is
 * broken. */
static int flush(conn *c) {
    while (c->hdr_off < c->hdr_len || c->out_off < c->out_len) {
        struct iovec v[2];
        int n = 0;
        if (c->hdr_off < c->hdr_len)
            v[n++] = (struct iovec){c->hdr + c->hdr_off, c->hdr_len - c->hdr_off};
        if (c->out_off < c->out_len)
            v[n++] = (struct iovec){c->out + c->out_off, c->out_len - c->out_off};
        ssize_t w = writev(c->fd, v, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        c->stamp = c->t->now_ms;
        size_t k = (size_t)w;
        size_t h = c->hdr_len - c->hdr_off < k ? c->hdr_len - c->hdr_off : k;
        c->hdr_off += h;
        c->out_off += k - h;
    }
    return 1;
}

/* The reply is out: drop the request from the buffer and go on with the next. */
static void request_done(conn *c) {
    server *t = c->t;
    if (c->state == C_WRITING) t->writing--;
    ifd_free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = c->hdr_len = c->hdr_off = 0;
    c->r_type = NULL;
    c->r_no_store = false;
    c->r_header_len = 0;
    if (c->close_after) {
        c->state = C_HEAD;
        conn_close(c, true);
        return;
    }
    size_t rest = c->in_len - c->msg_end;
    if (rest) memmove(c->in, c->in + c->msg_end, rest);
    c->in_len = rest;
    c->msg_end = 0;
    c->scanned = 0;
    c->state = C_HEAD;
    if (c->in_cap > IN_KEEP && rest < IN_INITIAL) {
        char *small = ifd_realloc(c->in, IN_INITIAL);
        if (small) {
            c->in = small;
            c->in_cap = IN_INITIAL;
        }
    }
    c->stamp = t->now_ms;
    set_events(c, EV_READ);
    maybe_finish_drain(t);
    if (!c->in_process) process(c);
}

/* Send body (ifd_malloc'd, ownership taken; NULL for an empty body). */
static void reply(server *s, conn *c, int code, char *body, size_t len, bool retry_after) {
    ifd_serve_metrics_http_request(s->repo->metrics, code);
    if (c->state == C_DEAD) { /* the client left while a worker had its request */
        ifd_free(body);
        if (!c->in_process) conn_free(c);
        maybe_finish_drain(s);
        return;
    }
    bool close = c->close_after || !c->head.keep_alive || s->draining || c->peer_eof;
    c->close_after = close;
    char *p = c->hdr;
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = put_uint(p, (uint64_t)code);
    *p++ = ' ';
    const char *text = status_text(code);
    p = put(p, text, strlen(text));
    p = PUT_LIT(p, "\r\n");
    p = put(p, s->date, s->date_len);
    if (body) {
        const char *type = c->r_type ? c->r_type : "application/json";
        p = PUT_LIT(p, "Content-Type: ");
        p = put(p, type, strlen(type)); /* the handlers' constants: short */
        p = PUT_LIT(p, "\r\n");
    }
    if (c->r_no_store) p = PUT_LIT(p, "Cache-Control: no-store\r\n");
    if (c->r_header_len) {
        p = PUT_LIT(p, "Inference-Header-Content-Length: ");
        p = put_uint(p, c->r_header_len);
        p = PUT_LIT(p, "\r\n");
    }
    if (retry_after) p = PUT_LIT(p, "Retry-After: 1\r\n");
    if (close) p = PUT_LIT(p, "Connection: close\r\n");
    else if (c->head.version_minor == 0) p = PUT_LIT(p, "Connection: keep-alive\r\n");
    p = PUT_LIT(p, "Content-Length: ");
    p = put_uint(p, body ? len : 0);
    p = PUT_LIT(p, "\r\n\r\n");
    c->hdr_len = (size_t)(p - c->hdr);
    c->hdr_off = 0;
    c->out = body;
    c->out_len = body ? len : 0;
    c->out_off = 0;
    int r = flush(c);
    if (r > 0) {
        request_done(c);
    } else if (r == 0) {
        c->state = C_WRITING;
        s->writing++;
        set_events(c, EV_WRITE);
    } else {
        c->state = C_HEAD;
        conn_close(c, false);
    }
}

static void reply_error(server *s, conn *req, int code, const char *fmt, ...) IFD_PRINTF(4, 5);
static void reply_error(server *s, conn *req, int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len;
    char *body = ifd_serve_error_json(msg, &len);
    reply(s, req, code, body, len, code == 503);
}

static void reply_sbuf(server *s, conn *req, ifd_sbuf *b) {
    if (b->failed) {
        ifd_sbuf_free(b);
        reply_error(s, req, 500, "out of memory");
        return;
    }
    reply(s, req, 200, b->data, b->len, false);
    b->data = NULL;
}

/* ---- reading requests ------------------------------------------------------------------------ */

/* A request that cannot be read on: answer and close. */
static void fail_request(conn *c, int code, const char *why) {
    c->state = C_BUSY;
    c->close_after = true;
    c->msg_end = c->in_len;
    reply_error(c->t, c, code, "%s", why);
}

/* Room for `need` bytes of input in all, within the cap; false when out of memory. */
static bool reserve(conn *c, size_t need) {
    if (need <= c->in_cap) return true;
    size_t cap = c->in_cap * 2 > need ? c->in_cap * 2 : need;
    uintptr_t old = (uintptr_t)c->in, old_end = old + c->in_cap;
    char *p = ifd_realloc(c->in, cap);
    if (!p) return false;
    c->in = p;
    c->in_cap = cap;
    /* the parsed head points into the buffer: move its pointers along */
#define REBASE(ptr)                                                              \
    do {                                                                         \
        if ((ptr) && (uintptr_t)(ptr) >= old && (uintptr_t)(ptr) < old_end)       \
            (ptr) = p + ((uintptr_t)(ptr) - old);                                \
    } while (0)
    REBASE(c->head.path);
    REBASE(c->head.query);
    for (size_t i = 0; i < c->head.n_headers; i++) {
        REBASE(c->head.headers[i].name);
        REBASE(c->head.headers[i].value);
    }
#undef REBASE
    return true;
}

static void dispatch(conn *c, const char *body, size_t len, size_t end) {
    c->body = body;
    c->body_len = len;
    c->msg_end = end;
    c->state = C_BUSY;
    on_request(c->t, c);
}

/* Parse and run what the buffer holds, request after request, until a request stays with a
 * worker or more bytes are needed. */
static void process(conn *c) {
    server *s = c->t;
    const ifd_serve_options *o = s->opts;
    const char *why = NULL;
    c->in_process = true;
    for (;;) {
        if (c->state == C_HEAD) {
            if (!c->in_len) break;
            long r = ifd_http_parse_head(c->in, c->in_len, &c->scanned, o->max_header_bytes,
                                         o->max_body_bytes, &c->head, &why);
            if (r == 0) break;
            if (r < 0) {
                fail_request(c, (int)-r, why);
                continue;
            }
            c->head_len = (size_t)r;
            if (c->head.method != IFD_HTTP_GET && c->head.method != IFD_HTTP_POST) {
                fail_request(c, 405, "method not allowed: the server takes GET and POST");
                continue;
            }
            size_t need = c->head_len;
            if (c->head.chunked) {
                memset(&c->ch, 0, sizeof c->ch);
                c->state = C_CHUNKED;
            } else {
                need += c->head.content_length > 0 ? (size_t)c->head.content_length : 0;
                c->state = C_BODY;
            }
            if (!reserve(c, need + (c->head.chunked ? IN_INITIAL : 0))) {
                fail_request(c, 500, "out of memory");
                continue;
            }
            if (c->head.expect_continue && c->head.version_minor == 1 && c->in_len < need + 1 &&
                (c->head.chunked || c->head.content_length > 0)) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                if (send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL | MSG_DONTWAIT) !=
                    (ssize_t)(sizeof cont - 1)) {
                    conn_close(c, false);
                    break;
                }
            }
            continue;
        }
        if (c->state == C_BODY) {
            size_t end = c->head_len + (c->head.content_length > 0 ? (size_t)c->head.content_length : 0);
            if (c->in_len < end) break;
            dispatch(c, c->in + c->head_len, end - c->head_len, end);
            continue;
        }
        if (c->state == C_CHUNKED) {
            int r = ifd_http_chunked_decode(&c->ch, c->in + c->head_len, c->in_len - c->head_len,
                                            o->max_body_bytes, &why);
            if (r < 0) {
                fail_request(c, -r, why);
                continue;
            }
            if (r == 0) {
                /* move what is not decoded yet down to the decoded data: the buffer holds the
                 * body, not its framing */
                size_t body0 = c->head_len;
                if (c->ch.raw > c->ch.out) {
                    memmove(c->in + body0 + c->ch.out, c->in + body0 + c->ch.raw,
                            c->in_len - body0 - c->ch.raw);
                    c->in_len -= c->ch.raw - c->ch.out;
                    c->ch.raw = c->ch.out;
                }
                break;
            }
            dispatch(c, c->in + c->head_len, c->ch.out, c->head_len + c->ch.raw);
            continue;
        }
        break; /* C_BUSY, C_WRITING, C_DEAD */
    }
    c->in_process = false;
    if (c->state == C_DEAD) {
        /* closed while on the stack: a request a worker holds stops the loop as C_BUSY, so no
         * worker holds this one */
        conn_free(c);
        maybe_finish_drain(s);
        return;
    }
    if (c->peer_eof && (c->state == C_HEAD || c->state == C_BODY || c->state == C_CHUNKED))
        conn_close(c, false); /* the client ended without (the rest of) a request */
}

/* Readable: read what fits. While a request is in the works the buffer is not grown or moved
 * (the handler reads its body from it): reading pauses when it is full. */
static void on_readable(conn *c) {
    server *t = c->t;
    bool busy = c->state == C_BUSY || c->state == C_WRITING;
    if (c->in_len == c->in_cap) {
        size_t limit = t->opts->max_header_bytes + t->opts->max_body_bytes + IN_SLACK;
        if (busy) {
            set_events(c, 0); /* request_done reads on */
            return;
        }
        if (c->in_cap >= limit || !reserve(c, c->in_cap * 2 < limit ? c->in_cap * 2 : limit)) {
            fail_request(c, c->in_cap >= limit ? 413 : 500,
                         c->in_cap >= limit ? "request too large" : "out of memory");
            return;
        }
    }
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n > 0) {
        c->in_len += (size_t)n;
        c->stamp = t->now_ms;
        if (!busy) process(c);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n == 0 && busy) {
        /* a client that shut down its sending side still gets the reply, then the close */
        c->peer_eof = true;
        if (c->state == C_BUSY) set_events(c, 0);
        return;
    }
    if (n == 0 && c->state != C_HEAD) {
        c->peer_eof = true;
        process(c);
        return;
    }
    conn_close(c, false);
}

static void on_io(evutil_socket_t fd, short what, void *arg) {
    conn *c = arg;
    if (what & EV_WRITE) {
        int r = flush(c);
        if (r > 0) request_done(c);
        else if (r < 0) conn_close(c, false);
        return;
    }
    on_readable(c);
}

/* ---- accepting ------------------------------------------------------------------------------ */

static bool is_loopback(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* A connection over --max-connections (or arriving while draining): a 503 and the lingering
 * close. */
static void refuse_connection(server *t, int fd) {
#define REFUSED_BODY "{\"error\":\"too many connections; retry later\"}"
    static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                              "Retry-After: 1\r\nConnection: close\r\nContent-Length: 45\r\n\r\n"
                              REFUSED_BODY;
    _Static_assert(sizeof REFUSED_BODY - 1 == 45, "Content-Length of the refusal");
#undef REFUSED_BODY
    ssize_t r = send(fd, msg, sizeof msg - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)r;
    linger_close(t, fd);
}

static void accept_on(server *t, int lfd, bool metrics) {
    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the connection waits in the backlog and the socket stays readable: waiting
                 * on it would spin, so accepting stops until the next tick */
                struct event *ev = metrics ? t->metrics_ev : t->listen_ev;
                if (ev) event_del(ev);
                t->accept_paused = true;
            }
            return; /* EAGAIN: all taken */
        }
        if (metrics ? t->n_metrics_conns >= MAX_METRICS_CONNS
                    : atomic_fetch_add(&t->f->n_conns, 1) >= t->opts->max_connections ||
                          t->draining) {
            if (!metrics) atomic_fetch_sub(&t->f->n_conns, 1);
            refuse_connection(t, fd);
            continue;
        }
        conn *c = ifd_calloc(1, sizeof *c);
        char *in = c ? ifd_malloc(IN_INITIAL) : NULL;
        struct event *ev = in ? event_new(t->base, fd, EV_READ | EV_PERSIST, on_io, c) : NULL;
        if (!ev || event_add(ev, NULL) != 0) {
            if (ev) event_free(ev);
            ifd_free(in);
            ifd_free(c);
            if (!metrics) atomic_fetch_sub(&t->f->n_conns, 1);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->t = t;
        c->fd = fd;
        c->ev = ev;
        c->events = EV_READ;
        c->in = in;
        c->in_cap = IN_INITIAL;
        c->metrics_only = metrics;
        c->loopback = is_loopback(&ss);
        c->stamp = t->now_ms;
        if (metrics) t->n_metrics_conns++;
        else ifd_serve_metrics_connections_add(t->repo->metrics, +1);
        conn_link(t, c);
    }
}

static void on_accept(evutil_socket_t fd, short what, void *arg) { accept_on(arg, fd, false); }
static void on_accept_metrics(evutil_socket_t fd, short what, void *arg) {
    accept_on(arg, fd, true);
}

/* Every TICK_MS: the clock, the Date header, and the timeouts. */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    server *t = arg;
    t->now_ms = ifd_serve_now_ns() / 1000000;
    time_t sec = time(NULL);
    if (sec != t->date_sec) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        t->date_len = strftime(t->date, sizeof t->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        t->date_sec = sec;
    }
    if (t->accept_paused) {
        t->accept_paused = false;
        if (t->listen_ev) event_add(t->listen_ev, NULL);
        if (t->metrics_ev) event_add(t->metrics_ev, NULL);
    }
    int64_t rd = (int64_t)t->opts->read_timeout_secs * 1000;
    int64_t wr = (int64_t)t->opts->write_timeout_secs * 1000;
    for (conn *c = t->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == C_WRITING && t->now_ms - c->stamp > wr) {
            conn_close(c, false); /* the client does not read its reply */
        } else if ((c->state == C_HEAD || c->state == C_BODY || c->state == C_CHUNKED) &&
                   t->now_ms - c->stamp > rd) {
            if (c->in_len) fail_request(c, 408, "request not received in time");
            else conn_close(c, false); /* idle keep-alive connection */
        }
    }
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
        p->req->r_header_len = job->reply_header_len;
        p->req->r_type = "application/octet-stream";
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

/* ---- KServe v2 handlers ------------------------------------------------------------------------- */

/* The version a route names, with a reference the caller releases; or a reply sent and NULL. */
static ifd_serve_version *resolve(server *s, conn *req, const route_args *a) {
    char err[1024];
    ifd_serve_version *v = NULL;
    int code = ifd_serve_acquire(s->repo, a->model, a->version, a->label, &v, err, sizeof err);
    if (code != 200) {
        reply_error(s, req, code, "%s", err);
        return NULL;
    }
    return v;
}

static void h_live(server *s, conn *req, const route_args *a) {
    reply(s, req, 200, NULL, 0, false);
}

static void h_ready(server *s, conn *req, const route_args *a) {
    if (atomic_load(&s->repo->ready) && !s->draining) reply(s, req, 200, NULL, 0, false);
    else reply_error(s, req, 503, s->draining ? "server is shutting down"
                                              : "server is not ready: models are still loading");
}

static void h_server_metadata(server *s, conn *req, const route_args *a) {
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

static void h_model_metadata(server *s, conn *req, const route_args *a) {
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

static void h_model_ready(server *s, conn *req, const route_args *a) {
    ifd_serve_version *v = resolve(s, req, a);
    if (!v) return;
    ifd_serve_version_release(v);
    reply(s, req, 200, NULL, 0, false);
}

/* Inference-Header-Content-Length: 0 when absent, else 1..len; -1 with a reply sent. */
static int64_t binary_header(server *s, conn *req, size_t len) {
    int count = 0;
    const ifd_http_header *h =
        ifd_http_find_header(&req->head, "Inference-Header-Content-Length", &count);
    if (!h) return 0;
    int64_t n = 0;
    size_t digits = 0;
    while (digits < h->value_len && h->value[digits] >= '0' && h->value[digits] <= '9') digits++;
    bool ok = count == 1 && digits > 0 && digits <= 18 && digits == h->value_len;
    for (size_t i = 0; ok && i < digits; i++) n = n * 10 + (h->value[i] - '0');
    if (!ok || n == 0) {
        reply_error(s, req, 400, "Inference-Header-Content-Length must be given once as a "
                    "positive decimal byte count, got '%.*s'",
                    (int)(h->value_len < 32 ? h->value_len : 32), h->value);
        return -1;
    }
    if ((uint64_t)n > len) {
        reply_error(s, req, 400, "Inference-Header-Content-Length (%lld) is larger than the "
                    "body (%zu bytes)", (long long)n, len);
        return -1;
    }
    return n;
}

static void submit_job(server *s, conn *req, const route_args *a, int protocol) {
    ifd_serve_version *v = resolve(s, req, a);
    if (!v) return;
    size_t len = req->body_len;
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
    /* the body stays where it is in the connection's buffer until the reply is sent */
    const char *body = req->body;
    pending *p = pending_get(s);
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

static void h_infer(server *s, conn *req, const route_args *a) {
    submit_job(s, req, a, IFD_SERVE_PROTO_KSERVE);
}

/* The repository API changes what the server runs: loopback clients only, unless
 * --allow-remote-management. */
static bool management_allowed(server *s, conn *req) {
    if (s->opts->allow_remote_management || req->loopback) return true;
    reply_error(s, req, 403, "the repository API is served to loopback clients only (start the "
                "server with --allow-remote-management to change that)");
    return false;
}

static void h_repository_index(server *s, conn *req, const route_args *a) {
    if (!management_allowed(s, req)) return;
    /* optional body {"ready": true}: only models that can serve */
    bool ready_only = false;
    size_t len = req->body_len;
    if (len) {
        const char *body = req->body;
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

static void h_repository_control(server *s, conn *req, const route_args *a,
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

static void h_repository_load(server *s, conn *req, const route_args *a) {
    h_repository_control(s, req, a, true);
}

static void h_repository_unload(server *s, conn *req, const route_args *a) {
    h_repository_control(s, req, a, false);
}

/* ---- monitoring: /metrics, /api/stats and the dashboard page ------------------------------------- */

extern const unsigned char ifd_dashboard_html[];
extern const unsigned long ifd_dashboard_html_len;

static void reply_typed(server *s, conn *req, ifd_sbuf *b, const char *type) {
    if (b->failed) {
        ifd_sbuf_free(b);
        reply_error(s, req, 500, "out of memory");
        return;
    }
    req->r_type = type;
    req->r_no_store = true;
    reply(s, req, 200, b->data, b->len, false);
    b->data = NULL;
}

static void h_dashboard(server *s, conn *req, const route_args *a) {
    ifd_sbuf b = {0};
    ifd_sbuf_append(&b, ifd_dashboard_html, (size_t)ifd_dashboard_html_len);
    reply_typed(s, req, &b, "text/html; charset=utf-8");
}

static void h_metrics(server *s, conn *req, const route_args *a) {
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
static void h_stats(server *s, conn *req, const route_args *a) {
    long long since = 0;
    char q[64] = "";
    if (req->head.query && req->head.query_len >= sizeof q) {
        reply_error(s, req, 400, "the only query parameter is since=<unix milliseconds>");
        return;
    }
    if (req->head.query) {
        memcpy(q, req->head.query, req->head.query_len);
        q[req->head.query_len] = 0;
    }
    if (*q) {
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

/* ---- routing -------------------------------------------------------------------------------------- */

typedef void (*handler_fn)(server *, conn *, const route_args *);

static const struct {
    int method;
    const char *pattern; /* "{m}": a model name, "{v}": a version number */
    handler_fn fn;
} g_routes[] = {
    {IFD_HTTP_GET, "/v2", h_server_metadata},
    {IFD_HTTP_GET, "/v2/health/live", h_live},
    {IFD_HTTP_GET, "/v2/health/ready", h_ready},
    {IFD_HTTP_GET, "/v2/models/{m}", h_model_metadata},
    {IFD_HTTP_GET, "/v2/models/{m}/versions/{v}", h_model_metadata},
    {IFD_HTTP_GET, "/v2/models/{m}/ready", h_model_ready},
    {IFD_HTTP_GET, "/v2/models/{m}/versions/{v}/ready", h_model_ready},
    {IFD_HTTP_POST, "/v2/models/{m}/infer", h_infer},
    {IFD_HTTP_POST, "/v2/models/{m}/versions/{v}/infer", h_infer},
    {IFD_HTTP_POST, "/v2/repository/index", h_repository_index},
    {IFD_HTTP_POST, "/v2/repository/models/{m}/load", h_repository_load},
    {IFD_HTTP_POST, "/v2/repository/models/{m}/unload", h_repository_unload},
    {IFD_HTTP_GET, "/", h_dashboard},
    {IFD_HTTP_GET, "/metrics", h_metrics},
    {IFD_HTTP_GET, "/api/stats", h_stats},
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

/* ---- TF Serving REST ------------------------------------------------------------------------------ */

/* /v1/models/NAME[/versions/N|/labels/L][:predict|/metadata]; the verb rides on the last
 * segment ("NAME:predict", "N:predict"). */
static void route_tfs(server *s, conn *req, char **seg, int n, int method) {
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
        if (method != IFD_HTTP_POST) {
            reply_error(s, req, 405, "method not allowed: :predict takes POST");
            return;
        }
        submit_job(s, req, &a, IFD_SERVE_PROTO_TFS);
        return;
    }
    if (method != IFD_HTTP_GET) {
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

static void on_request(server *s, conn *req) {
    char path[MAX_PATH];
    char *seg[MAX_SEGMENTS];
    if (req->metrics_only) { /* the --metrics-port listener: /metrics and nothing else */
        if (req->head.path_len == 8 && !memcmp(req->head.path, "/metrics", 8) &&
            req->head.method == IFD_HTTP_GET)
            h_metrics(s, req, NULL);
        else reply_error(s, req, 404, "this port serves /metrics only");
        return;
    }
    if (s->draining) {
        reply_error(s, req, 503, "server is shutting down");
        return;
    }
    if (req->head.path_len >= sizeof path) {
        reply_error(s, req, 400, "request path longer than %zu bytes", sizeof path - 1);
        return;
    }
    /* names are [A-Za-z0-9_.-], so a percent-escape in the path is never needed: refusing it
     * keeps "%2e%2e" and "%2F" from ever being decoded into something else */
    if (memchr(req->head.path, '%', req->head.path_len)) {
        reply_error(s, req, 400, "percent-encoded characters are not allowed in the path");
        return;
    }
    memcpy(path, req->head.path, req->head.path_len);
    path[req->head.path_len] = 0;
    int n = split_path(path, seg);
    if (n < 0) {
        reply_error(s, req, 400, "malformed request path");
        return;
    }
    int method = req->head.method;
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
    if (s->listen_ev) event_free(s->listen_ev);
    s->listen_ev = NULL;
    if (s->listen_fd >= 0) close(s->listen_fd);
    s->listen_fd = -1;
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
static int bind_socket(const struct addrinfo *ai, int port, bool reuse_port, bool do_listen,
                       const char **why) {
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
    } else if (do_listen && listen(fd, SOMAXCONN) != 0) {
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
    int probe = bind_socket(ai, o->http_port, false, false, &why);
    int port = probe >= 0 ? bound_port(probe) : -1;
    if (probe >= 0) close(probe);
    if (port < 0) goto out;
    for (int i = 0; i < f->n_threads; i++) {
        f->threads[i].listen_fd = bind_socket(ai, port, true, true, &why);
        if (f->threads[i].listen_fd < 0) goto out;
    }
    if (o->metrics_port >= 0 && !o->no_metrics) {
        f->threads[0].metrics_fd = bind_socket(ai, o->metrics_port, false, true, &why);
        if (f->threads[0].metrics_fd < 0) {
            fprintf(stderr, "inferd serve: cannot listen on %s:%d for metrics: %s: %s\n",
                    o->http_address, o->metrics_port, why, strerror(errno));
            freeaddrinfo(ai);
            return false;
        }
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
    s->opts = f->opts;
    s->repo = f->repo;
    s->f = f;
    s->index = index;
    atomic_init(&s->done_head, NULL);
    atomic_init(&s->ctl_head, NULL);
    struct event_config *cfg = event_config_new();
    if (cfg) {
        /* one thread per base: no locks. The changelist applies event changes once per loop
         * turn, so switching a connection between reading and writing within a turn costs
         * no system call (libevent's condition for it: no dup()ed fds). */
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        s->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!s->base || s->wake_fd < 0) return false;
    s->wake_ev = event_new(s->base, s->wake_fd, EV_READ | EV_PERSIST, on_wake, s);
    s->tick_ev = event_new(s->base, -1, EV_PERSIST, on_tick, s);
    s->listen_ev = event_new(s->base, s->listen_fd, EV_READ | EV_PERSIST, on_accept, s);
    if (s->metrics_fd >= 0)
        s->metrics_ev = event_new(s->base, s->metrics_fd, EV_READ | EV_PERSIST, on_accept_metrics, s);
    struct timeval tick = {0, TICK_MS * 1000};
    if (!s->wake_ev || !s->tick_ev || !s->listen_ev || (s->metrics_fd >= 0 && !s->metrics_ev) ||
        event_add(s->wake_ev, NULL) != 0 || event_add(s->tick_ev, &tick) != 0 ||
        event_add(s->listen_ev, NULL) != 0 || (s->metrics_ev && event_add(s->metrics_ev, NULL) != 0))
        return false;
    on_tick(-1, 0, s); /* the clock and the Date header */
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

/* A job whose reply will never be sent (stopped past the drain timeout); its connection goes
 * with the thread's in thread_free. */
static void drop_job(ifd_serve_job *j) {
    pending *p = j->http_request;
    ifd_serve_version_release(j->version);
    ifd_free(j->reply);
    ifd_free(p);
}

/* After the loops stopped and the workers were joined. */
static void thread_free(server *s) {
    /* finished jobs nobody replied to */
    ifd_serve_job *list = atomic_exchange(&s->done_head, NULL);
    while (list) {
        ifd_serve_job *j = list;
        list = j->next;
        drop_job(j);
    }
    /* load/unload outcomes nobody answered */
    control_req *ctl = atomic_exchange(&s->ctl_head, NULL);
    while (ctl) {
        control_req *c = ctl;
        ctl = c->next;
        ifd_free(c->message);
        ifd_free(c);
    }
    while (s->conns) {
        conn *c = s->conns;
        c->in_process = false;
        conn_free(c);
    }
    while (s->spare) {
        pending *p = s->spare;
        s->spare = p->next_spare;
        ifd_free(p);
    }
    if (s->wake_ev) event_free(s->wake_ev);
    if (s->tick_ev) event_free(s->tick_ev);
    if (s->listen_ev) event_free(s->listen_ev);
    if (s->metrics_ev) event_free(s->metrics_ev);
    while (s->n_lingering) end_linger(s, 0);
    if (s->base) event_base_free(s->base);
    if (s->wake_fd >= 0) close(s->wake_fd);
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->metrics_fd >= 0) close(s->metrics_fd);
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
    /* every connection is a descriptor: take what the hard limit allows (Debian's soft
     * default, 1024, is about --max-connections' default) */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    json_set_alloc_funcs(jansson_malloc, jansson_free);
    f.n_threads = o->http_threads > 0 ? o->http_threads : default_http_threads();
    f.threads = ifd_calloc((size_t)f.n_threads, sizeof *f.threads);
    if (!f.threads) goto out;
    for (int i = 0; i < f.n_threads; i++)
        f.threads[i].wake_fd = f.threads[i].listen_fd = f.threads[i].metrics_fd = -1;
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
    if (f.drain_ev) event_free(f.drain_ev);
    if (f.ready_ev) event_free(f.ready_ev);
    for (int i = 0; f.threads && i < f.n_threads; i++) thread_free(&f.threads[i]);
    ifd_serve_repo_free(f.repo);
    ifd_free(f.threads);
    libevent_global_shutdown();
    return rc;
}

