/* inferd serve --model-repository DIR [options]: the KServe v2 HTTP server (src/serve/). */
#include "cli.h"
#include "serve/serve.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd serve --model-repository DIR [options]\n"
            "  --model-repository DIR   models as DIR/NAME/VERSION/model.onnx, optional\n"
            "                           DIR/NAME/config.json (Triton field names)\n"
            "  --http-port N            HTTP port (default 8000; 0 picks a free one)\n"
            "  --http-address ADDR      address to listen on (default 0.0.0.0)\n"
            "  --threads N              threads per model instance (default: all cores)\n"
            "  --model-control-mode M   none (default: load at start, rescan on SIGHUP),\n"
            "                           poll (rescan every --repository-poll-secs) or\n"
            "                           explicit (load/unload through the repository API)\n"
            "  --repository-poll-secs N poll mode: seconds between rescans (default 15)\n"
            "  --load-model NAME        explicit mode: load NAME at start (repeatable; * = all)\n"
            "  --allow-remote-management  serve the repository API to non-loopback clients\n"
            "  --http-threads N         HTTP I/O threads (default: 1 per 2 cores, at least 1)\n"
            "  --inline-max-us N        models whose requests cost under N us run on the I/O\n"
            "                           thread when idle, skipping the worker hand-off\n"
            "                           (default 50; 0: always on the model's workers)\n"
            "  --max-body-bytes N       request body limit (default 67108864)\n"
            "  --max-header-bytes N     request line + headers limit (default 16384)\n"
            "  --max-tensor-bytes N     decoded input tensor bytes per request (default 268435456)\n"
            "  --max-connections N      connections served at once (default 1000)\n"
            "  --read-timeout-secs N    idle/read timeout (default 30)\n"
            "  --write-timeout-secs N   send timeout (default 30)\n"
            "  --drain-timeout-secs N   on SIGTERM, wait this long for requests in flight (default 30)\n"
            "  --no-metrics             no /metrics, no dashboard history (default: on)\n"
            "  --metrics-port N         also serve /metrics (only) on port N of --http-address\n"
            "  --no-drift               no drift watching, whatever config.json says\n"
            "  --access-log FILE        append one JSON line per inference request (off by default)\n"
            "  --access-log-sample R    log this fraction of requests, 0 < R <= 1 (default 1)\n");
}

int ifd_cli_serve(int argc, char **argv) {
    ifd_serve_options o;
    const char *load[256];
    size_t n_load = 0;
    ifd_serve_options_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long v = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--allow-remote-management")) {
            o.allow_remote_management = true;
            continue;
        }
        if (!strcmp(a, "--no-metrics")) {
            o.no_metrics = true;
            continue;
        }
        if (!strcmp(a, "--no-drift")) {
            o.no_drift = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "inferd serve: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        const char *val = argv[++i];
#define INT_FLAG(flag, lo, hi, field)                                                    \
    if (!strcmp(a, flag)) {                                                              \
        if (!ifd_cli_parse_int(val, lo, hi, &v)) {                                       \
            fprintf(stderr, "inferd serve: %s wants a number in %lld..%lld\n", flag,     \
                    (long long)(lo), (long long)(hi));                                   \
            return 2;                                                                    \
        }                                                                                \
        o.field = v;                                                                     \
        continue;                                                                        \
    }
        INT_FLAG("--http-port", 0, 65535, http_port)
        INT_FLAG("--threads", 0, 1024, threads)
        INT_FLAG("--max-body-bytes", 1, 1LL << 40, max_body_bytes)
        INT_FLAG("--max-header-bytes", 256, 1 << 24, max_header_bytes)
        INT_FLAG("--max-tensor-bytes", 1, 1LL << 40, max_tensor_bytes)
        INT_FLAG("--max-connections", 1, 1 << 20, max_connections)
        INT_FLAG("--read-timeout-secs", 1, 86400, read_timeout_secs)
        INT_FLAG("--write-timeout-secs", 1, 86400, write_timeout_secs)
        INT_FLAG("--drain-timeout-secs", 0, 86400, drain_timeout_secs)
        INT_FLAG("--repository-poll-secs", 1, 86400, repository_poll_secs)
        INT_FLAG("--http-threads", 0, 64, http_threads)
        INT_FLAG("--metrics-port", 0, 65535, metrics_port)
        INT_FLAG("--inline-max-us", 0, 1000000, inline_max_us)
#undef INT_FLAG
        if (!strcmp(a, "--model-repository")) {
            o.model_repository = val;
        } else if (!strcmp(a, "--http-address")) {
            o.http_address = val;
        } else if (!strcmp(a, "--access-log")) {
            o.access_log = val;
        } else if (!strcmp(a, "--access-log-sample")) {
            char *end = NULL;
            double r = strtod(val, &end);
            if (!end || *end || !(r > 0 && r <= 1)) {
                fprintf(stderr, "inferd serve: --access-log-sample wants a fraction in (0, 1]\n");
                return 2;
            }
            o.access_log_sample = r;
        } else if (!strcmp(a, "--model-control-mode")) {
            if (!strcmp(val, "none")) {
                o.model_control_mode = IFD_CONTROL_NONE;
            } else if (!strcmp(val, "poll")) {
                o.model_control_mode = IFD_CONTROL_POLL;
            } else if (!strcmp(val, "explicit")) {
                o.model_control_mode = IFD_CONTROL_EXPLICIT;
            } else {
                fprintf(stderr, "inferd serve: --model-control-mode wants none, poll or explicit, "
                                "got '%s'\n", val);
                return 2;
            }
        } else if (!strcmp(a, "--load-model")) {
            if (n_load == IFD_ARRAY_LEN(load)) {
                fprintf(stderr, "inferd serve: at most %zu --load-model flags\n",
                        IFD_ARRAY_LEN(load));
                return 2;
            }
            if (strcmp(val, "*") && !ifd_serve_valid_model_name(val)) {
                fprintf(stderr, "inferd serve: --load-model '%s' is not a valid model name\n", val);
                return 2;
            }
            load[n_load++] = val;
        } else {
            fprintf(stderr, "inferd serve: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o.model_repository) {
        fprintf(stderr, "inferd serve: --model-repository DIR is required\n");
        usage(stderr);
        return 2;
    }
    if (n_load && o.model_control_mode != IFD_CONTROL_EXPLICIT) {
        fprintf(stderr, "inferd serve: --load-model needs --model-control-mode explicit\n");
        return 2;
    }
    o.load_models = load;
    o.n_load_models = n_load;
    return ifd_serve_run(&o);
}
