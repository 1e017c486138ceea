/* The access log (accesslog.h): a bounded ring of fixed-size records filled by workers and
 * drained into the file by a writer thread. */
#include "serve/accesslog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RING 8192

typedef struct record {
    struct timespec wall;
    char model[IFD_KSERVE_MAX_NAME + 1];
    int64_t version;
    int protocol, status;
    int64_t t_enqueued, t_dequeued, t_decoded, t_computed, t_encoded;
    int64_t batch, exec_batch;
} record;

struct ifd_access_log {
    FILE *f;
    double sample;
    atomic_llong seen;
    atomic_llong dropped;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    record *ring;
    size_t head, count;     /* records ring[head .. head+count) mod RING are queued */
    bool stop;
    pthread_t writer;
};

static double ms(int64_t from, int64_t to) { return from && to > from ? (double)(to - from) / 1e6 : 0; }

static void write_record(FILE *f, const record *r) {
    struct tm tm;
    gmtime_r(&r->wall.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    /* model names are [A-Za-z0-9_.-]: nothing to escape */
    int64_t end = r->t_encoded ? r->t_encoded : r->t_computed ? r->t_computed
                : r->t_decoded ? r->t_decoded : r->t_dequeued;
    fprintf(f, "{\"time\":\"%s.%03ldZ\",\"model\":\"%s\",\"version\":\"%lld\",\"protocol\":\"%s\","
               "\"status\":%d,\"request_ms\":%.3f,\"queue_ms\":%.3f,\"input_ms\":%.3f,"
               "\"compute_ms\":%.3f,\"output_ms\":%.3f,\"batch_size\":%lld,"
               "\"execution_batch\":%lld}\n",
            when, r->wall.tv_nsec / 1000000L, r->model, (long long)r->version,
            r->protocol == IFD_SERVE_PROTO_TFS ? "tfserving" : "kserve", r->status,
            ms(r->t_enqueued, end), ms(r->t_enqueued, r->t_dequeued),
            ms(r->t_dequeued, r->t_decoded), ms(r->t_decoded, r->t_computed),
            ms(r->t_computed, r->t_encoded), (long long)r->batch, (long long)r->exec_batch);
}

static void *writer_main(void *p) {
    ifd_access_log *l = p;
    record *batch = ifd_malloc(256 * sizeof *batch);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        /* wake every 100 ms, or early when the ring is half full: no wakeup per request */
        while (!l->stop && l->count < RING / 2) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += 100000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&l->cv, &l->mu, &until) == ETIMEDOUT && l->count) break;
        }
        if (!l->count && l->stop) break;
        if (!l->count) continue;
        /* copy a batch out, write it without the lock */
        size_t n = l->count < 256 ? l->count : 256;
        for (size_t i = 0; batch && i < n; i++) batch[i] = l->ring[(l->head + i) % RING];
        l->head = (l->head + n) % RING;
        l->count -= n;
        pthread_mutex_unlock(&l->mu);
        for (size_t i = 0; batch && i < n; i++) write_record(l->f, &batch[i]);
        fflush(l->f);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    ifd_free(batch);
    return NULL;
}

ifd_status ifd_access_log_open(const char *path, double sample, ifd_access_log **out) {
    *out = NULL;
    if (!(sample > 0 && sample <= 1))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "access log sample rate must be in (0, 1]");
    ifd_access_log *l = ifd_calloc(1, sizeof *l);
    if (!l || !(l->ring = ifd_calloc(RING, sizeof *l->ring))) {
        ifd_free(l);
        return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    }
    if (!(l->f = fopen(path, "a"))) {
        int e = errno;
        ifd_free(l->ring);
        ifd_free(l);
        return ifd_error(IFD_ERR_IO, "cannot open access log '%s': %s", path, strerror(e));
    }
    l->sample = sample;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&l->writer, NULL, writer_main, l)) {
        fclose(l->f);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        ifd_free(l->ring);
        ifd_free(l);
        return ifd_error(IFD_ERR_INTERNAL, "cannot start the access log writer");
    }
    *out = l;
    return IFD_OK;
}

void ifd_access_log_record(ifd_access_log *l, const char *model, int64_t version,
                           const ifd_serve_job *job) {
    if (!l) return;
    /* keep request k when floor(k * sample) moves: exactly a `sample` fraction, evenly spread */
    long long k = atomic_fetch_add(&l->seen, 1);
    if (l->sample < 1 && floor((double)(k + 1) * l->sample) == floor((double)k * l->sample))
        return;
    pthread_mutex_lock(&l->mu);
    if (l->count == RING || l->stop) {
        pthread_mutex_unlock(&l->mu);
        atomic_fetch_add(&l->dropped, 1);
        return;
    }
    record *r = &l->ring[(l->head + l->count) % RING];
    clock_gettime(CLOCK_REALTIME, &r->wall);
    snprintf(r->model, sizeof r->model, "%s", model);
    r->version = version;
    r->protocol = job->protocol;
    r->status = job->status;
    r->t_enqueued = job->t_enqueued;
    r->t_dequeued = job->t_dequeued;
    r->t_decoded = job->t_decoded;
    r->t_computed = job->t_computed;
    r->t_encoded = job->t_encoded;
    r->batch = job->batch_elements;
    r->exec_batch = job->exec_elements;
    if (++l->count == RING / 2) pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

long long ifd_access_log_dropped(const ifd_access_log *l) {
    return l ? atomic_load(&((ifd_access_log *)l)->dropped) : 0;
}

void ifd_access_log_close(ifd_access_log *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->writer, NULL);
    fclose(l->f);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    ifd_free(l->ring);
    ifd_free(l);
}
