/* The access log: one JSON line per (sampled) inference request, written by a thread of its own
 * so that the request path only copies a small record into a bounded ring (and drops it, counted,
 * when the writer falls behind). Off unless `inferd serve --access-log FILE`.
 *
 * Line format (fields in this order):
 *   {"time":"2026-11-28T17:45:11.123Z","model":"digits","version":"1","protocol":"kserve",
 *    "status":200,"request_ms":1.234,"queue_ms":0.1,"input_ms":0.05,"compute_ms":0.9,
 *    "output_ms":0.02,"batch_size":1,"execution_batch":8}
 * request_ms runs from the moment the request was queued to the moment its reply was ready. */
#ifndef IFD_SERVE_ACCESSLOG_H
#define IFD_SERVE_ACCESSLOG_H

#include "serve/serve.h"

typedef struct ifd_access_log ifd_access_log;

/* sample: fraction of requests written, in (0, 1]; exactly every 1/sample-th request is kept
 * (deterministic, so a test can count lines). */
ifd_status ifd_access_log_open(const char *path, double sample, ifd_access_log **out);
/* Record a finished job (any thread; never blocks on the file). */
void ifd_access_log_record(ifd_access_log *l, const char *model, int64_t version,
                           const ifd_serve_job *job);
/* Records dropped because the writer was behind. */
long long ifd_access_log_dropped(const ifd_access_log *l);
/* Write what is queued, stop the writer, close the file. */
void ifd_access_log_close(ifd_access_log *l);

#endif
