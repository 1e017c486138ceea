/* Session thread pool. A parallel_for publishes one job (bumping an atomic generation); workers
 * spin briefly on the generation before sleeping on a condition variable, so back-to-back
 * parallel regions (one per operator) do not pay a futex wake-up each; chunks are claimed with
 * an atomic counter by the workers and the caller alike, and the caller spins until the
 * workers have finished the job. */
#include "runtime/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle worker spins before it sleeps (50-100 us was the intent of the old count of
 * 2000 pause instructions, but a pause takes 11 ns on some x86 cores and 140 on others: it was
 * 22 us on the former). That is shorter than the single-threaded stretch between some parallel
 * operators (Add, Relu, global pooling and Flatten before a classifier; each operator's own
 * set-up), and the next parallel region then waited out a futex wake-up of its worker, tens of
 * microseconds in a VM, while the caller ran alone. So it is measured on the clock. */
#define SPIN_NS 50000
#define SPINS_PER_CLOCK_READ 64

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct ifd_thread_pool {
    int size;
    pthread_t *threads;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_ullong generation; /* bumped per job */
    atomic_int sleepers;      /* workers blocked (or about to block) on `wake` */
    atomic_bool stop;
    /* the current job, written before `generation` is bumped */
    ifd_parallel_fn fn;
    void *arg;
    int64_t n, chunk, n_chunks;
    atomic_llong next_chunk;
    /* workers that joined the current job (JOB_CLOSED set once the caller stops waiting for
     * more), and of those, the ones done: the caller waits only for workers that joined, so
     * a worker the OS has not scheduled does not hold up the job */
    atomic_int entered, finished;
};

#define JOB_CLOSED 0x40000000

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
    unsigned long long seen = 0;
    t_in_pool_task = true;
    for (;;) {
        int spins = 0;
        int64_t spin_from = now_ns();
        while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop)) {
            if (++spins % SPINS_PER_CLOCK_READ != 0 || now_ns() - spin_from < SPIN_NS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load(&p->generation);
        if (atomic_fetch_add(&p->entered, 1) & JOB_CLOSED) continue; /* finished without us */
        run_chunks(p);
        atomic_fetch_add(&p->finished, 1);
    }
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
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    ifd_free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
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
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->n_chunks = (n + chunk - 1) / chunk;
    atomic_store(&p->finished, 0);
    atomic_store(&p->entered, 0);
    atomic_store(&p->next_chunk, 0);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    t_in_pool_task = true;
    run_chunks(p);
    t_in_pool_task = false;
    int joined = atomic_fetch_or(&p->entered, JOB_CLOSED) & ~JOB_CLOSED;
    for (int spins = 0; atomic_load(&p->finished) < joined; spins++) {
        if (spins < 100000)
            cpu_relax();
        else
            sched_yield();
    }
}
