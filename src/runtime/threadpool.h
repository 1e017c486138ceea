/* A fixed pool of worker threads owned by one session. The calling thread takes part, so a
 * pool of N threads starts N-1 workers. */
#ifndef IFD_THREADPOOL_H
#define IFD_THREADPOOL_H

#include "base/base.h"

typedef struct ifd_thread_pool ifd_thread_pool;

/* fn(arg, begin, end) runs over [begin, end) chunks that together cover [0, n). */
typedef void (*ifd_parallel_fn)(void *arg, int64_t begin, int64_t end);

ifd_status ifd_thread_pool_create(int num_threads, ifd_thread_pool **out);
void ifd_thread_pool_free(ifd_thread_pool *pool);
int ifd_thread_pool_size(const ifd_thread_pool *pool); /* 1 when pool is NULL */

/* Split [0, n) into chunks of at least min_chunk items and run them on the pool, waiting
 * for all. Runs inline when pool is NULL, has one thread, or n <= min_chunk. Not reentrant:
 * a task must not call ifd_parallel_for on the same pool (it then runs inline). */
void ifd_parallel_for(ifd_thread_pool *pool, int64_t n, int64_t min_chunk, ifd_parallel_fn fn,
                      void *arg);

#endif
