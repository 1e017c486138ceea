/* Session thread pool: workers sleep on a condition variable; a parallel_for publishes one
 * job whose chunks are claimed with an atomic counter by the workers and the caller alike. */
#include "runtime/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>

struct ifd_thread_pool {
    int size;
    pthread_t *threads;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t generation; /* bumped per job */
    bool stop;
    /* the current job */
    ifd_parallel_fn fn;
    void *arg;
    int64_t n, chunk, n_chunks;
    atomic_llong next_chunk;
    atomic_int active; /* workers still inside the job */
};

static _Thread_local bool t_in_pool_task;

static void run_chunks(ifd_thread_pool *p) {
    for (;;) {
        long long c = atomic_fetch_add(&p->next_chunk, 1);
        if (c >= p->n_chunks) break;
        int64_t b = c * p->chunk, e = b + p->chunk;
        if (e > p->n) e = p->n;
        p->fn(p->arg, b, e);
    }
}

static void *worker_main(void *arg) {
    ifd_thread_pool *p = arg;
    uint64_t seen = 0;
    t_in_pool_task = true;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p);
        pthread_mutex_lock(&p->mu);
        if (atomic_fetch_sub(&p->active, 1) == 1) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ifd_status ifd_thread_pool_create(int num_threads, ifd_thread_pool **out) {
    ifd_thread_pool *p = ifd_calloc(1, sizeof *p);
    *out = NULL;
    if (!p) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory for a thread pool");
    if (num_threads < 1) num_threads = 1;
    if (num_threads > 256) num_threads = 256;
    p->size = num_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (num_threads > 1) {
        p->threads = ifd_calloc((size_t)num_threads - 1, sizeof(pthread_t));
        if (!p->threads) goto fail;
        for (int i = 0; i < num_threads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) goto fail;
            p->n_started++;
        }
    }
    *out = p;
    return IFD_OK;
fail:
    ifd_thread_pool_free(p);
    return ifd_error(IFD_ERR_NO_MEMORY, "cannot start %d worker threads", num_threads - 1);
}

void ifd_thread_pool_free(ifd_thread_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    ifd_free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    ifd_free(p);
}

int ifd_thread_pool_size(const ifd_thread_pool *p) { return p ? p->size : 1; }

void ifd_parallel_for(ifd_thread_pool *p, int64_t n, int64_t min_chunk, ifd_parallel_fn fn,
                      void *arg) {
    if (n <= 0) return;
    if (min_chunk < 1) min_chunk = 1;
    if (!p || p->n_started == 0 || n <= min_chunk || t_in_pool_task) {
        fn(arg, 0, n);
        return;
    }
    int workers = p->n_started + 1;
    /* about 4 chunks per thread for balance, never smaller than min_chunk */
    int64_t chunk = (n + workers * 4 - 1) / (workers * 4);
    if (chunk < min_chunk) chunk = min_chunk;
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->n_chunks = (n + chunk - 1) / chunk;
    atomic_store(&p->next_chunk, 0);
    atomic_store(&p->active, p->n_started);
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    t_in_pool_task = true;
    run_chunks(p);
    t_in_pool_task = false;
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->active) > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
