/* Metrics tests: the exact Prometheus text for known observations (buckets, sums, escaping),
 * registry checks that refuse bad names and unbounded series, removal that leaves no trace,
 * many threads updating while another renders and removes, the history's rates and percentiles
 * for a known latency distribution, `since` filtering, the ring's bound, and allocation failure
 * at every allocation of creation (no crash, no leak).
 *   test_metrics [--dump FILE]    --dump: also write a sample /metrics page to FILE (for
 *                                 promtool check metrics in tests/test_deploy.sh) */
#include "serve/metrics.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

static int g_pass, g_fail;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            g_pass++;                                      \
            printf("PASS ");                               \
        } else {                                           \
            g_fail++;                                      \
            printf("FAIL ");                               \
        }                                                  \
        printf(__VA_ARGS__);                               \
        printf("\n");                                      \
    } while (0)

static char *render(ifd_metrics *r) {
    ifd_sbuf b = {0};
    ifd_metrics_render(r, &b);
    ifd_sbuf_puts(&b, ""); /* an empty registry still gives a string */
    return b.data;
}

/* Print where two texts first differ (for a failing exact comparison). */
static void show_diff(const char *got, const char *want) {
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    printf("  first difference at byte %zu\n  got:  ...%.120s\n  want: ...%.120s\n", i, got + from,
           want + from);
}

/* ---- formatting ------------------------------------------------------------------------------ */

static void test_format(void) {
    struct {
        double v;
        const char *want;
    } cases[] = {
        {0.1, "0.1"},       {0.0001, "0.0001"},  {2.5, "2.5"},         {1024, "1024"},
        {-3, "-3"},         {1e21, "1e+21"},     {INFINITY, "+Inf"},   {-INFINITY, "-Inf"},
        {NAN, "NaN"},       {1.0 / 3, "0.3333333333333333"},           {0, "0"},
        {0.1 + 0.2, "0.30000000000000004"},
    };
    for (size_t i = 0; i < IFD_ARRAY_LEN(cases); i++) {
        char buf[32];
        ifd_metrics_format_double(cases[i].v, buf, sizeof buf);
        CHECK(strcmp(buf, cases[i].want) == 0, "format_double %s (got %s)", cases[i].want, buf);
    }
}

/* ---- registry checks ------------------------------------------------------------------------- */

static void test_registry_checks(void) {
    ifd_metrics *r;
    CHECK(ifd_metrics_create(3, &r) == IFD_OK, "registry create");
    ifd_metric_family *f = NULL;
    const double good[] = {1, 2};
    const double bad_order[] = {2, 1};
    const double bad_inf[] = {1, INFINITY};
    const char *ab[] = {"a", "b"};
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_COUNTER, "x_count", "h", 0, NULL, 0, NULL, &f) ==
                  IFD_ERR_INVALID_ARGUMENT &&
              strstr(ifd_last_error(), "_total"),
          "counter name without _total refused: %s", ifd_last_error());
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "9x", "h", 0, NULL, 0, NULL, &f) ==
              IFD_ERR_INVALID_ARGUMENT,
          "metric name starting with a digit refused: %s", ifd_last_error());
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "x-y", "h", 0, NULL, 0, NULL, &f) ==
              IFD_ERR_INVALID_ARGUMENT,
          "metric name with '-' refused");
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "g", "h", 1, (const char *[]){"__x"}, 0,
                                    NULL, &f) == IFD_ERR_INVALID_ARGUMENT,
          "label name with __ refused: %s", ifd_last_error());
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_HISTOGRAM, "h", "h", 1, (const char *[]){"le"},
                                    2, good, &f) == IFD_ERR_INVALID_ARGUMENT &&
              strstr(ifd_last_error(), "le"),
          "histogram label 'le' refused: %s", ifd_last_error());
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_HISTOGRAM, "h", "h", 0, NULL, 2, bad_order,
                                    &f) == IFD_ERR_INVALID_ARGUMENT,
          "decreasing bucket bounds refused: %s", ifd_last_error());
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_HISTOGRAM, "h", "h", 0, NULL, 2, bad_inf, &f) ==
              IFD_ERR_INVALID_ARGUMENT,
          "infinite bucket bound refused (implied)");
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "g", "h", 2, (const char *[]){"a", "a"},
                                    0, NULL, &f) == IFD_ERR_INVALID_ARGUMENT,
          "duplicate label name refused");
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "g", "h", 2, ab, 0, NULL, &f) == IFD_OK,
          "gauge family created");
    ifd_metric_family *g2;
    CHECK(ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "g", "h", 0, NULL, 0, NULL, &g2) ==
              IFD_ERR_INVALID_ARGUMENT,
          "second family with the same name refused: %s", ifd_last_error());
    CHECK(ifd_metrics_family_find(r, "g") == f && ifd_metrics_family_find(r, "nope") == NULL,
          "family_find");

    ifd_metric_series *s1, *s2, *s3, *s4;
    CHECK(ifd_metric_series_get(f, (const char *[]){"\xff", "x"}, &s1) ==
                  IFD_ERR_INVALID_ARGUMENT &&
              strstr(ifd_last_error(), "UTF-8"),
          "invalid UTF-8 label value refused: %s", ifd_last_error());
    CHECK(ifd_metric_series_get(f, (const char *[]){"\xed\xa0\x80", "x"}, &s1) ==
              IFD_ERR_INVALID_ARGUMENT,
          "UTF-8 surrogate refused");
    char *huge = malloc(IFD_METRICS_MAX_LABEL_VALUE + 2);
    memset(huge, 'x', IFD_METRICS_MAX_LABEL_VALUE + 1);
    huge[IFD_METRICS_MAX_LABEL_VALUE + 1] = 0;
    CHECK(ifd_metric_series_get(f, (const char *[]){huge, "x"}, &s1) == IFD_ERR_TOO_BIG,
          "label value over the cap refused: %s", ifd_last_error());
    free(huge);
    CHECK(ifd_metric_series_get(f, (const char *[]){"x", NULL}, &s1) == IFD_ERR_INVALID_ARGUMENT,
          "missing label value refused");
    CHECK(ifd_metric_series_get(f, (const char *[]){"\xc3\xa9t\xc3\xa9", "1"}, &s1) == IFD_OK,
          "UTF-8 label value accepted");
    CHECK(ifd_metric_series_get(f, (const char *[]){"\xc3\xa9t\xc3\xa9", "1"}, &s2) == IFD_OK &&
              s1 == s2,
          "same label values give the same series");
    CHECK(ifd_metric_series_get(f, (const char *[]){"b", "1"}, &s3) == IFD_OK && s3 != s1,
          "other label values give another series");
    CHECK(ifd_metric_series_get(f, (const char *[]){"c", "1"}, &s4) == IFD_OK,
          "third series (at the cap of 3)");
    ifd_metric_series *s5;
    CHECK(ifd_metric_series_get(f, (const char *[]){"d", "1"}, &s5) == IFD_ERR_TOO_BIG &&
              ifd_metrics_series_count(r) == 3,
          "series past the registry cap refused: %s", ifd_last_error());
    ifd_metric_series_remove(s3);
    CHECK(ifd_metric_series_get(f, (const char *[]){"d", "1"}, &s5) == IFD_OK,
          "a removed series frees its place under the cap");
    CHECK(ifd_metrics_callback_create(r, IFD_METRIC_HISTOGRAM, "cb", "h", NULL, NULL) ==
              IFD_ERR_INVALID_ARGUMENT,
          "callback without a function refused");
    ifd_metrics_free(r);
}

/* ---- exact text ------------------------------------------------------------------------------ */

static double cb_value(void *arg) { return *(double *)arg; }

static void test_exact_text(void) {
    ifd_metrics *r;
    ifd_metrics_create(0, &r);
    ifd_metric_family *req, *temp, *lat, *up;
    const char *mo[] = {"model", "outcome"};
    const double bounds[] = {0.1, 0.5, 1};
    ifd_metrics_family_create(r, IFD_METRIC_COUNTER, "t_requests_total",
                              "Requests, by \"outcome\".\nSecond line with a \\ backslash.", 2,
                              mo, 0, NULL, &req);
    ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "t_temperature", "Temperature.", 0, NULL, 0,
                              NULL, &temp);
    ifd_metrics_family_create(r, IFD_METRIC_HISTOGRAM, "t_latency_seconds", "Latency.", 1,
                              (const char *[]){"model"}, 3, bounds, &lat);
    ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "t_empty", "No series: not rendered.", 0, NULL,
                              0, NULL, &up);
    double cb = 2.5;
    ifd_metrics_callback_create(r, IFD_METRIC_COUNTER, "t_cpu_seconds_total", "CPU.", cb_value,
                                &cb);

    ifd_metric_series *ok, *bad, *t, *h1, *h2;
    ifd_metric_series_get(req, (const char *[]){"a\\b\"c\nd", "success"}, &ok);
    ifd_metric_series_get(req, (const char *[]){"plain", "timeout"}, &bad);
    ifd_metric_series_get(temp, NULL, &t);
    ifd_metric_series_get(lat, (const char *[]){"m1"}, &h1);
    ifd_metric_series_get(lat, (const char *[]){"m2"}, &h2);
    ifd_counter_add(ok, 3);
    ifd_counter_add(ok, 4);
    ifd_counter_add(bad, 1);
    ifd_gauge_set(t, 20);
    ifd_gauge_add(t, -0.5);
    /* exact binary fractions, so _sum is exact: 0.1 falls in le=0.1 (bounds are inclusive) */
    const double obs[] = {0.0625, 0.1, 0.25, 0.5, 0.75, 2, 3};
    for (size_t i = 0; i < IFD_ARRAY_LEN(obs); i++) ifd_histogram_observe(h1, obs[i]);
    ifd_histogram_observe(h1, NAN); /* ignored */
    ifd_histogram_observe(h2, INFINITY);

    const char *want =
        "# HELP t_requests_total Requests, by \"outcome\".\\nSecond line with a \\\\ backslash.\n"
        "# TYPE t_requests_total counter\n"
        "t_requests_total{model=\"a\\\\b\\\"c\\nd\",outcome=\"success\"} 7\n"
        "t_requests_total{model=\"plain\",outcome=\"timeout\"} 1\n"
        "# HELP t_temperature Temperature.\n"
        "# TYPE t_temperature gauge\n"
        "t_temperature 19.5\n"
        "# HELP t_latency_seconds Latency.\n"
        "# TYPE t_latency_seconds histogram\n"
        "t_latency_seconds_bucket{model=\"m1\",le=\"0.1\"} 2\n"
        "t_latency_seconds_bucket{model=\"m1\",le=\"0.5\"} 4\n"
        "t_latency_seconds_bucket{model=\"m1\",le=\"1\"} 5\n"
        "t_latency_seconds_bucket{model=\"m1\",le=\"+Inf\"} 7\n"
        "t_latency_seconds_sum{model=\"m1\"} 6.6625\n"
        "t_latency_seconds_count{model=\"m1\"} 7\n"
        "t_latency_seconds_bucket{model=\"m2\",le=\"0.1\"} 0\n"
        "t_latency_seconds_bucket{model=\"m2\",le=\"0.5\"} 0\n"
        "t_latency_seconds_bucket{model=\"m2\",le=\"1\"} 0\n"
        "t_latency_seconds_bucket{model=\"m2\",le=\"+Inf\"} 1\n"
        "t_latency_seconds_sum{model=\"m2\"} +Inf\n"
        "t_latency_seconds_count{model=\"m2\"} 1\n"
        "# HELP t_cpu_seconds_total CPU.\n"
        "# TYPE t_cpu_seconds_total counter\n"
        "t_cpu_seconds_total 2.5\n";
    char *got = render(r);
    bool same = strcmp(got, want) == 0;
    CHECK(same, "exact exposition text: escaping, cumulative buckets, +Inf, _sum, _count");
    if (!same) show_diff(got, want);
    ifd_free(got);

    uint64_t counts[8];
    double sum;
    size_t n = ifd_histogram_read(h1, counts, 8, &sum);
    CHECK(n == 4 && counts[0] == 2 && counts[1] == 2 && counts[2] == 1 && counts[3] == 2 &&
              sum == 6.6625,
          "histogram_read: per-bucket counts 2,2,1,2 and sum 6.6625");
    CHECK(ifd_metric_series_value(ok) == 7 && ifd_metric_series_value(t) == 19.5 &&
              ifd_metric_series_value(h1) == 7,
          "series_value of counter, gauge, histogram");

    /* removal: the series and, with its last series, the family's HELP/TYPE vanish */
    ifd_metric_series_remove(h2);
    ifd_metric_series_remove(t);
    got = render(r);
    CHECK(!strstr(got, "m2") && !strstr(got, "t_temperature") && strstr(got, "m1"),
          "removed series leave no line, and an empty family no HELP/TYPE");
    ifd_free(got);
    size_t removed = ifd_metrics_remove_matching(r, 1, (const char *[]){"model"},
                                                 (const char *[]){"m1"});
    CHECK(removed == 1, "remove_matching by model removes 1 series (got %zu)", removed);
    removed = ifd_metrics_remove_matching(r, 2, (const char *[]){"model", "outcome"},
                                          (const char *[]){"plain", "timeout"});
    got = render(r);
    CHECK(removed == 1 && !strstr(got, "plain") && strstr(got, "success"),
          "remove_matching on two labels removes only the matching series");
    ifd_free(got);
    ifd_metrics_free(r);
}

/* ---- quantiles ------------------------------------------------------------------------------- */

static bool near(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(1, fabs(b)); }

static void test_quantile(void) {
    const double bounds[] = {1, 2, 4};
    const uint64_t c1[] = {0, 10, 10, 0}; /* 10 in (1,2], 10 in (2,4] */
    CHECK(near(ifd_histogram_quantile(0.5, bounds, 3, c1), 2), "quantile at a bucket edge");
    CHECK(near(ifd_histogram_quantile(0.25, bounds, 3, c1), 1.5), "quantile interpolated");
    CHECK(near(ifd_histogram_quantile(0.75, bounds, 3, c1), 3), "quantile in a later bucket");
    const uint64_t c2[] = {4, 0, 0, 0};
    CHECK(near(ifd_histogram_quantile(0.5, bounds, 3, c2), 0.5), "first bucket starts at 0");
    const uint64_t c3[] = {0, 0, 1, 9};
    CHECK(near(ifd_histogram_quantile(0.99, bounds, 3, c3), 4),
          "+Inf bucket answers the highest finite bound");
    const uint64_t c4[] = {0, 0, 0, 0};
    CHECK(isnan(ifd_histogram_quantile(0.5, bounds, 3, c4)), "no observations: NaN");
}

/* ---- inferd's metric set --------------------------------------------------------------------- */

static json_t *history(ifd_serve_metrics *sm, int64_t since) {
    ifd_sbuf b = {0};
    ifd_serve_metrics_history_json(sm, since, &b);
    json_error_t err;
    json_t *j = b.failed ? NULL : json_loadb(b.data, b.len, 0, &err);
    if (!j) printf("  history JSON does not parse: %s\n", b.failed ? "buffer failed" : err.text);
    ifd_sbuf_free(&b);
    return j;
}

static json_t *model_entry(json_t *h, const char *model, const char *version) {
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(h, "models"), i, m) {
        if (strcmp(json_string_value(json_object_get(m, "model")), model) == 0 &&
            strcmp(json_string_value(json_object_get(m, "version")), version) == 0)
            return m;
    }
    return NULL;
}

static double at(json_t *obj, const char *key, size_t i) {
    json_t *v = json_array_get(json_object_get(obj, key), i);
    return json_is_number(v) ? json_number_value(v) : json_is_null(v) ? NAN : -12345;
}

static bool near_f(double a, double b) { return fabs(a - b) <= 1e-5 * fmax(1e-3, fabs(b)); }

static void test_serve_metrics(void) {
    size_t mem0 = ifd_memory_in_use();
    ifd_serve_metrics *sm;
    CHECK(ifd_serve_metrics_create(&sm) == IFD_OK, "serve metrics create");
    ifd_metrics *r = ifd_serve_metrics_registry(sm);
    size_t base_series = ifd_metrics_series_count(r);
    ifd_version_metrics *vm, *vm2, *dup;
    CHECK(ifd_serve_metrics_version_add(sm, "digits", 1, &vm) == IFD_OK && vm, "version add");
    CHECK(ifd_serve_metrics_version_add(sm, "digits", 1, &dup) == IFD_ERR_INVALID_ARGUMENT &&
              !dup,
          "adding the same version twice refused: %s", ifd_last_error());
    CHECK(ifd_serve_metrics_version_add(sm, "alpha", 7, &vm2) == IFD_OK, "second model added");
    ifd_version_metrics_loaded(vm, true, 0.125);
    ifd_version_metrics_loaded(vm2, true, 2);

    /* Clock: points at made-up times 1000, 2000, ... (the first only sets the baseline, as it
     * goes back from the creation time) */
    ifd_serve_metrics_sample(sm, 1000);
    json_t *h = history(sm, 0);
    CHECK(h && json_array_size(json_object_get(model_entry(h, "digits", "1"), "t")) == 0,
          "first sample is a baseline (no point)");
    json_decref(h);

    /* second 1: 40 requests at 0.8 ms, 40 at 4 ms, 20 at 200 ms; 3 queue_full, 2 timeouts;
     * 25 batches of 4 */
    for (int i = 0; i < 100; i++) {
        double lat = i < 40 ? 0.0008 : i < 80 ? 0.004 : 0.2;
        ifd_request_timing t = {lat, 0.001, 0.0001, lat / 2, 0.0002};
        ifd_version_metrics_pending(vm, 1);
        ifd_version_metrics_request(vm, IFD_OUTCOME_SUCCESS, &t);
        ifd_version_metrics_pending(vm, -1);
    }
    for (int i = 0; i < 3; i++) ifd_version_metrics_request(vm, IFD_OUTCOME_QUEUE_FULL, NULL);
    ifd_request_timing only_total = {0.05, -1, -1, -1, -1};
    for (int i = 0; i < 2; i++)
        ifd_version_metrics_request(vm, IFD_OUTCOME_TIMEOUT, &only_total);
    for (int i = 0; i < 25; i++) ifd_version_metrics_batch(vm, 4);
    ifd_version_metrics_pending(vm, 2); /* two still queued */
    ifd_serve_metrics_sample(sm, 2000);
    /* seconds 2-3: nothing, sampled once over 2 s */
    ifd_serve_metrics_sample(sm, 4000);
    /* second 5: 10 requests at 30 ms */
    for (int i = 0; i < 10; i++) {
        ifd_request_timing t = {0.03, 0, 0, 0.02, 0};
        ifd_version_metrics_request(vm, IFD_OUTCOME_SUCCESS, &t);
    }
    ifd_serve_metrics_sample(sm, 5000);

    h = history(sm, 0);
    json_t *m = model_entry(h, "digits", "1");
    CHECK(m && json_array_size(json_object_get(m, "t")) == 3 && at(m, "t", 0) == 2000 &&
              at(m, "t", 2) == 5000,
          "three points at 2000, 4000, 5000");
    CHECK(m && near_f(at(m, "request_rate", 0), 105) && near_f(at(m, "request_rate", 1), 0) &&
              near_f(at(m, "request_rate", 2), 10),
          "request rate 105/s, 0/s, 10/s (got %g %g %g)", at(m, "request_rate", 0),
          at(m, "request_rate", 1), at(m, "request_rate", 2));
    CHECK(m && near_f(at(m, "inference_rate", 0), 100), "inference rate 100/s (got %g)",
          at(m, "inference_rate", 0));
    json_t *errs = json_object_get(m, "errors");
    CHECK(near_f(at(errs, "queue_full", 0), 3) && near_f(at(errs, "timeout", 0), 2) &&
              near_f(at(errs, "internal", 0), 0) && near_f(at(errs, "invalid_input", 0), 0) &&
              near_f(at(errs, "not_found", 0), 0),
          "error rates by outcome: queue_full 3/s, timeout 2/s, others 0");
    /* cumulative over buckets: (0.0005,0.001] 40, (0.0025,0.005] 40, (0.025,0.05] 2 timeouts,
     * (0.1,0.25] 20; 102 observations in all (the queue_full ones carry no time) */
    double p50 = at(m, "latency_p50_s", 0), p95 = at(m, "latency_p95_s", 0),
           p99 = at(m, "latency_p99_s", 0);
    double want50 = 0.0025 + 0.0025 * ((0.5 * 102 - 40) / 40);
    double want95 = 0.1 + 0.15 * ((0.95 * 102 - 82) / 20);
    double want99 = 0.1 + 0.15 * ((0.99 * 102 - 82) / 20);
    CHECK(near_f(p50, want50) && near_f(p95, want95) && near_f(p99, want99),
          "p50/p95/p99 interpolated from bucket deltas: %g %g %g (want %g %g %g)", p50, p95, p99,
          want50, want95, want99);
    CHECK(isnan(at(m, "latency_p99_s", 1)) && isnan(at(m, "queue_mean_s", 1)) &&
              isnan(at(m, "batch_mean", 1)),
          "an interval without requests has null percentiles and means");
    CHECK(near_f(at(m, "latency_p50_s", 2), 0.025 + 0.025 * 0.5) &&
              near_f(at(m, "latency_p99_s", 2), 0.025 + 0.025 * 0.99),
          "percentiles use only the last interval's observations (%g %g)",
          at(m, "latency_p50_s", 2), at(m, "latency_p99_s", 2));
    CHECK(near_f(at(m, "queue_mean_s", 0), 0.001) && near_f(at(m, "batch_mean", 0), 4),
          "mean queue time 1 ms and mean batch 4 (got %g, %g)", at(m, "queue_mean_s", 0),
          at(m, "batch_mean", 0));
    CHECK(json_number_value(json_object_get(m, "loaded")) == 1 &&
              json_number_value(json_object_get(m, "pending")) == 2,
          "loaded 1 and pending 2 in the stats");
    json_t *models = json_object_get(h, "models");
    CHECK(json_array_size(models) == 2 &&
              strcmp(json_string_value(json_object_get(json_array_get(models, 0), "model")),
                     "alpha") == 0,
          "models listed sorted by name");
    json_t *srv = json_object_get(h, "server");
    CHECK(json_array_size(json_object_get(srv, "t")) == 3 && at(srv, "rss_bytes", 0) > 1e5 &&
              at(srv, "allocator_bytes", 0) > 0 && at(srv, "cpu_cores", 0) >= 0,
          "server history: rss %g, allocator bytes %g, cpu %g", at(srv, "rss_bytes", 0),
          at(srv, "allocator_bytes", 0), at(srv, "cpu_cores", 0));
    json_decref(h);

    /* since: only newer points */
    h = history(sm, 2000);
    m = model_entry(h, "digits", "1");
    CHECK(m && json_array_size(json_object_get(m, "t")) == 2 && at(m, "t", 0) == 4000 &&
              json_array_size(json_object_get(m, "request_rate")) == 2 &&
              json_array_size(json_object_get(json_object_get(m, "errors"), "timeout")) == 2 &&
              json_array_size(json_object_get(json_object_get(h, "server"), "t")) == 2,
          "since=2000 returns the 2 newer points in every column");
    json_decref(h);
    h = history(sm, 5000);
    m = model_entry(h, "digits", "1");
    CHECK(m && json_array_size(json_object_get(m, "t")) == 0 &&
              json_array_size(json_object_get(m, "latency_p99_s")) == 0,
          "since=latest returns no points");
    json_decref(h);

    /* the Prometheus page of the same traffic */
    ifd_serve_metrics_http_request(sm, 200);
    ifd_serve_metrics_http_request(sm, 200);
    ifd_serve_metrics_http_request(sm, 503);
    ifd_serve_metrics_http_request(sm, 1000); /* ignored */
    ifd_serve_metrics_connections_add(sm, 3);
    ifd_serve_metrics_connections_add(sm, -1);
    ifd_serve_metrics_load_failure(sm, "broken");
    ifd_serve_metrics_load_failure(sm, "broken");
    ifd_metric_series *drift;
    CHECK(ifd_version_metrics_drift_series(vm, "input_0", &drift) == IFD_OK && drift,
          "drift series created");
    ifd_gauge_set(drift, 0.3);
    ifd_version_metrics_drift_threshold(vm, 0.2);
    ifd_sbuf b = {0};
    ifd_serve_metrics_render(sm, &b);
    const char *lines[] = {
        "inferd_requests_total{model=\"digits\",version=\"1\",outcome=\"success\"} 110\n",
        "inferd_requests_total{model=\"digits\",version=\"1\",outcome=\"queue_full\"} 3\n",
        "inferd_requests_total{model=\"digits\",version=\"1\",outcome=\"timeout\"} 2\n",
        "inferd_requests_total{model=\"digits\",version=\"1\",outcome=\"internal\"} 0\n",
        "inferd_inferences_total{model=\"digits\",version=\"1\"} 100\n",
        "inferd_executions_total{model=\"digits\",version=\"1\"} 25\n",
        "inferd_request_duration_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.0005\"} 0\n",
        "inferd_request_duration_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.001\"} 40\n",
        "inferd_request_duration_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.005\"} 80\n",
        "inferd_request_duration_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.05\"} 92\n",
        "inferd_request_duration_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.1\"} 92\n",
        "inferd_request_duration_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.25\"} 112\n",
        "inferd_request_duration_seconds_bucket{model=\"digits\",version=\"1\",le=\"+Inf\"} 112\n",
        "inferd_request_duration_seconds_count{model=\"digits\",version=\"1\"} 112\n",
        "inferd_queue_duration_seconds_count{model=\"digits\",version=\"1\"} 110\n",
        "inferd_queue_duration_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.0001\"} 10\n",
        "inferd_batch_size_bucket{model=\"digits\",version=\"1\",le=\"2\"} 0\n",
        "inferd_batch_size_bucket{model=\"digits\",version=\"1\",le=\"4\"} 25\n",
        "inferd_batch_size_sum{model=\"digits\",version=\"1\"} 100\n",
        "inferd_pending_requests{model=\"digits\",version=\"1\"} 2\n",
        "inferd_model_loaded{model=\"digits\",version=\"1\"} 1\n",
        "inferd_model_load_duration_seconds{model=\"digits\",version=\"1\"} 0.125\n",
        "inferd_model_load_failures_total{model=\"broken\"} 2\n",
        "inferd_drift_score{model=\"digits\",version=\"1\",tensor=\"input_0\"} 0.3\n",
        "inferd_drift_threshold{model=\"digits\",version=\"1\"} 0.2\n",
        "inferd_http_requests_total{code=\"200\"} 2\n",
        "inferd_http_requests_total{code=\"503\"} 1\n",
        "inferd_http_open_connections 2\n",
        "inferd_build_info{version=\"" IFD_VERSION_STRING "\"} 1\n",
        "# TYPE process_cpu_seconds_total counter\n",
        "# TYPE inferd_request_duration_seconds histogram\n",
        "# TYPE inferd_pending_requests gauge\n",
    };
    for (size_t i = 0; i < IFD_ARRAY_LEN(lines); i++) {
        bool found = b.data && strstr(b.data, lines[i]);
        CHECK(found, "/metrics has: %.*s", (int)strlen(lines[i]) - 1, lines[i]);
    }
    CHECK(b.data && !strstr(b.data, "code=\"1000\""), "an out-of-range HTTP code is not a series");
    int hist_help = 0;
    for (const char *p = b.data; p && (p = strstr(p, "# TYPE inferd_request_duration_seconds "));
         p++)
        hist_help++;
    CHECK(hist_help == 1, "TYPE once per family, not per series (%d)", hist_help);
    double rss = 0, start = 0, uptime = -1, alloc = 0;
    const char *p;
    if (b.data && (p = strstr(b.data, "\nprocess_resident_memory_bytes "))) rss = atof(p + 31);
    if (b.data && (p = strstr(b.data, "\nprocess_start_time_seconds "))) start = atof(p + 28);
    if (b.data && (p = strstr(b.data, "\ninferd_uptime_seconds "))) uptime = atof(p + 23);
    if (b.data && (p = strstr(b.data, "\ninferd_allocator_bytes "))) alloc = atof(p + 24);
    double now = (double)time(NULL);
    CHECK(rss > 1e5 && start > now - 86400 * 7 && start <= now + 1 && uptime >= 0 &&
              uptime < 60 && alloc > 0,
          "process gauges: rss %g, start %g (now %g), uptime %g, allocator %g", rss, start, now,
          uptime, alloc);
    ifd_sbuf_free(&b);

    /* the drift values reach the stats too */
    h = history(sm, 0);
    m = model_entry(h, "digits", "1");
    CHECK(m && near(json_number_value(json_object_get(json_object_get(m, "drift"), "input_0")),
                    0.3) &&
              near(json_number_value(json_object_get(m, "drift_threshold")), 0.2),
          "drift score and threshold in the stats");
    json_decref(h);

    /* removal: no trace of the version in /metrics or the stats, series count back */
    ifd_serve_metrics_version_remove(sm, vm);
    b = (ifd_sbuf){0};
    ifd_serve_metrics_render(sm, &b);
    CHECK(b.data && !strstr(b.data, "\"digits\"") && strstr(b.data, "\"alpha\""),
          "a removed version leaves no series in /metrics (drift included)");
    ifd_sbuf_free(&b);
    h = history(sm, 0);
    CHECK(h && !model_entry(h, "digits", "1") && model_entry(h, "alpha", "7"),
          "a removed version leaves the stats");
    json_decref(h);
    ifd_serve_metrics_model_remove(sm, "broken");
    ifd_serve_metrics_model_remove(sm, "alpha");
    b = (ifd_sbuf){0};
    ifd_serve_metrics_render(sm, &b);
    CHECK(b.data && !strstr(b.data, "broken") && !strstr(b.data, "alpha") &&
              !strstr(b.data, "inferd_model_loaded") && !strstr(b.data, "inferd_requests_total"),
          "model_remove takes load failures and versions; empty families disappear");
    ifd_sbuf_free(&b);
    /* what stays: the server's series plus code="200" and code="503" */
    CHECK(ifd_metrics_series_count(r) == base_series + 2, "series count back to %zu (got %zu)",
          base_series + 2, ifd_metrics_series_count(r));

    /* a burst of unknown models must not grow anything: only load_failure and version_add
     * create model series, and the server calls them for repository entries only; the HTTP
     * counter is bounded by the code range */
    for (int i = 0; i < 10000; i++) ifd_serve_metrics_http_request(sm, 404);
    CHECK(ifd_metrics_series_count(r) == base_series + 3,
          "10000 404s add one series (code=\"404\"), not one per request");

    /* the ring holds one hour: 3700 samples keep the last 3600 and no more memory */
    ifd_serve_metrics_version_add(sm, "ring", 1, &vm);
    size_t mem_ring = ifd_memory_in_use();
    for (int i = 0; i < IFD_HISTORY_POINTS + 100; i++)
        ifd_serve_metrics_sample(sm, 10000 + 1000 * (int64_t)i);
    h = history(sm, 0);
    m = model_entry(h, "ring", "1");
    json_t *tt = json_object_get(m, "t");
    CHECK(json_array_size(tt) == IFD_HISTORY_POINTS &&
              at(m, "t", 0) == 10000 + 1000 * 100 &&
              at(m, "t", IFD_HISTORY_POINTS - 1) == 10000 + 1000 * (IFD_HISTORY_POINTS + 99) &&
              json_array_size(json_object_get(json_object_get(h, "server"), "t")) ==
                  IFD_HISTORY_POINTS,
          "ring keeps the newest %d points, oldest first", IFD_HISTORY_POINTS);
    CHECK(ifd_memory_in_use() == mem_ring, "sampling allocates nothing (%zd bytes)",
          (ssize_t)(ifd_memory_in_use() - mem_ring));
    json_decref(h);
    ifd_serve_metrics_free(sm);
    CHECK(ifd_memory_in_use() == mem0, "serve metrics free returns every byte (%zd left)",
          (ssize_t)(ifd_memory_in_use() - mem0));

    /* NULL everywhere: metrics off */
    ifd_serve_metrics_version_add(NULL, "x", 1, &vm);
    ifd_version_metrics_request(vm, IFD_OUTCOME_SUCCESS, &(ifd_request_timing){1, 1, 1, 1, 1});
    ifd_version_metrics_batch(vm, 3);
    ifd_serve_metrics_http_request(NULL, 200);
    ifd_serve_metrics_sample(NULL, 0);
    CHECK(vm == NULL, "metrics off: NULL handles make every call a no-op");
}

/* ---- hot path allocates nothing -------------------------------------------------------------- */

static void test_hot_path_no_alloc(void) {
    ifd_serve_metrics *sm;
    ifd_version_metrics *vm;
    ifd_serve_metrics_create(&sm);
    ifd_serve_metrics_version_add(sm, "m", 1, &vm);
    ifd_serve_metrics_http_request(sm, 200); /* first use of a code creates its series */
    size_t n0 = ifd_alloc_count();
    for (int i = 0; i < 1000; i++) {
        ifd_request_timing t = {0.01, 0.001, 0.001, 0.005, 0.001};
        ifd_version_metrics_pending(vm, 1);
        ifd_version_metrics_batch(vm, 1);
        ifd_version_metrics_request(vm, IFD_OUTCOME_SUCCESS, &t);
        ifd_version_metrics_pending(vm, -1);
        ifd_serve_metrics_http_request(sm, 200);
    }
    CHECK(ifd_alloc_count() == n0, "updates make no allocation (%zu made)",
          ifd_alloc_count() - n0);
    ifd_serve_metrics_free(sm);
}

/* ---- allocation failure ---------------------------------------------------------------------- */

static void test_alloc_failures(void) {
    size_t base = ifd_memory_in_use();
    int failures = 0, leaks = 0, n;
    for (n = 1; n < 2000; n++) {
        ifd_alloc_fail_at(n);
        ifd_serve_metrics *sm = NULL;
        ifd_version_metrics *vm = NULL;
        ifd_status st = ifd_serve_metrics_create(&sm);
        if (st == IFD_OK) st = ifd_serve_metrics_version_add(sm, "m", 1, &vm);
        ifd_metric_series *d = NULL;
        if (st == IFD_OK) st = ifd_version_metrics_drift_series(vm, "x", &d);
        if (st == IFD_OK) {
            ifd_sbuf b = {0};
            ifd_serve_metrics_render(sm, &b);
            ifd_serve_metrics_history_json(sm, 0, &b);
            ifd_sbuf_free(&b);
        }
        ifd_alloc_fail_at(0);
        bool done = st == IFD_OK;
        if (st != IFD_OK) failures++;
        ifd_serve_metrics_free(sm);
        if (ifd_memory_in_use() != base) {
            leaks++;
            printf("  allocation %d failing leaks %zu bytes (%s)\n", n,
                   ifd_memory_in_use() - base, ifd_last_error());
            base = ifd_memory_in_use();
        }
        if (done) break;
    }
    CHECK(failures > 20 && leaks == 0,
          "allocation failure at each of the first %d allocations: clean errors, no leak", n - 1);
}

/* ---- concurrency ----------------------------------------------------------------------------- */

enum { N_WORKERS = 4, N_ITERS = 50000 };

/* Each worker makes N_ITERS exact updates on shared series and on its own version, says so, and
 * then keeps adding to a shared counter until told to stop, so renders and removals are sure to
 * overlap updates on other threads. */
typedef struct worker_arg {
    ifd_metric_series *shared_counter, *shared_hist, *shared_gauge, *tail_counter;
    ifd_version_metrics *vm; /* this worker's own version: removed once vm_done */
    atomic_bool vm_done;
    atomic_bool *stop;
    uint64_t tail_adds;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg *a = p;
    for (int i = 0; i < N_ITERS; i++) {
        ifd_counter_add(a->shared_counter, 1);
        ifd_histogram_observe(a->shared_hist, (i & 3) * 0.25); /* exact binary fractions */
        ifd_gauge_add(a->shared_gauge, 1);
        ifd_gauge_add(a->shared_gauge, -1);
        ifd_request_timing t = {0.001 * (i % 7), 0.0001, 0.0001, 0.0005, 0.0001};
        ifd_version_metrics_request(a->vm, i % 10 ? IFD_OUTCOME_SUCCESS : IFD_OUTCOME_TIMEOUT,
                                    &t);
        ifd_version_metrics_batch(a->vm, 1 + i % 8);
    }
    atomic_store(&a->vm_done, true); /* no use of a->vm after this */
    while (!atomic_load(a->stop)) {
        ifd_counter_add(a->tail_counter, 1);
        ifd_histogram_observe(a->shared_hist, 2); /* +Inf bucket of the shared histogram */
        a->tail_adds++;
    }
    return NULL;
}

typedef struct churn_arg {
    ifd_metric_family *fam;
    ifd_serve_metrics *sm;
    atomic_bool stop;
    int rounds;
} churn_arg;

/* Creates and removes series (and whole versions) while everything else runs. */
static void *churn_main(void *p) {
    churn_arg *c = p;
    while (!atomic_load(&c->stop)) {
        char name[32];
        snprintf(name, sizeof name, "tmp%d", c->rounds % 5);
        ifd_metric_series *s;
        if (ifd_metric_series_get(c->fam, (const char *[]){name}, &s) == IFD_OK) {
            ifd_histogram_observe(s, 0.5);
            ifd_metric_series_remove(s);
        }
        ifd_version_metrics *vm;
        if (ifd_serve_metrics_version_add(c->sm, "churn", c->rounds % 3 + 1, &vm) == IFD_OK) {
            ifd_version_metrics_request(vm, IFD_OUTCOME_SUCCESS, NULL);
            ifd_serve_metrics_version_remove(c->sm, vm);
        }
        c->rounds++;
    }
    return NULL;
}

/* One /metrics page and one stats page; false when either failed. */
static bool render_both(ifd_serve_metrics *sm) {
    ifd_sbuf b = {0};
    ifd_serve_metrics_render(sm, &b);
    ifd_serve_metrics_history_json(sm, 0, &b);
    bool ok = !b.failed && b.len > 0;
    ifd_sbuf_free(&b);
    return ok;
}

static void test_concurrency(void) {
    size_t mem0 = ifd_memory_in_use();
    ifd_serve_metrics *sm;
    ifd_serve_metrics_create(&sm);
    ifd_metrics *r = ifd_serve_metrics_registry(sm);
    ifd_metric_family *cf, *hf, *gf;
    const double bounds[] = {0.25, 0.5};
    ifd_metrics_family_create(r, IFD_METRIC_COUNTER, "c_total", "c", 1, (const char *[]){"k"}, 0,
                              NULL, &cf);
    ifd_metrics_family_create(r, IFD_METRIC_HISTOGRAM, "h", "h", 1, (const char *[]){"k"}, 2,
                              bounds, &hf);
    ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "g", "g", 0, NULL, 0, NULL, &gf);
    worker_arg args[N_WORKERS];
    pthread_t th[N_WORKERS];
    ifd_metric_series *sc, *sh, *sg, *tail;
    ifd_metric_series_get(cf, (const char *[]){"shared"}, &sc);
    ifd_metric_series_get(cf, (const char *[]){"tail"}, &tail);
    ifd_metric_series_get(hf, (const char *[]){"shared"}, &sh);
    ifd_metric_series_get(gf, NULL, &sg);
    atomic_bool stop;
    atomic_init(&stop, false);
    for (int i = 0; i < N_WORKERS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].shared_counter = sc;
        args[i].shared_hist = sh;
        args[i].shared_gauge = sg;
        args[i].tail_counter = tail;
        args[i].stop = &stop;
        atomic_init(&args[i].vm_done, false);
        ifd_serve_metrics_version_add(sm, "w", i + 1, &args[i].vm);
    }
    ifd_serve_metrics_start_sampler(sm, 1);
    churn_arg churn = {.fam = hf, .sm = sm};
    atomic_init(&churn.stop, false);
    pthread_t churn_th;
    pthread_create(&churn_th, NULL, churn_main, &churn);
    for (int i = 0; i < N_WORKERS; i++) pthread_create(&th[i], NULL, worker_main, &args[i]);

    /* render while they run; remove each worker's version once it is done with it (the other
     * workers keep updating meanwhile) */
    int renders = 0;
    bool parse_ok = true, all_exact = true;
    for (int i = 0; i < N_WORKERS; i++) {
        do {
            parse_ok = render_both(sm) && parse_ok;
            renders++;
        } while (!atomic_load(&args[i].vm_done));
        ifd_sbuf b = {0};
        ifd_serve_metrics_render(sm, &b);
        char line[160];
        snprintf(line, sizeof line,
                 "inferd_requests_total{model=\"w\",version=\"%d\",outcome=\"success\"} %d\n",
                 i + 1, N_ITERS - N_ITERS / 10);
        bool exact = b.data && strstr(b.data, line);
        snprintf(line, sizeof line,
                 "inferd_request_duration_seconds_count{model=\"w\",version=\"%d\"} %d\n", i + 1,
                 N_ITERS);
        exact = exact && strstr(b.data, line);
        snprintf(line, sizeof line, "inferd_batch_size_sum{model=\"w\",version=\"%d\"} %d\n",
                 i + 1, N_ITERS / 8 * 36);
        exact = exact && strstr(b.data, line);
        ifd_sbuf_free(&b);
        if (!exact) printf("  worker %d: counts not exact\n", i + 1);
        all_exact = all_exact && exact;
        ifd_serve_metrics_version_remove(sm, args[i].vm);
    }
    CHECK(all_exact, "every worker's version counts are exact once it is done (%d updates each)",
          N_ITERS);
    /* every version is gone; the workers still update the shared series */
    int overlapping = 0;
    for (; overlapping < 20; overlapping++) parse_ok = render_both(sm) && parse_ok;
    atomic_store(&stop, true);
    uint64_t tail_adds = 0;
    for (int i = 0; i < N_WORKERS; i++) {
        pthread_join(th[i], NULL);
        tail_adds += args[i].tail_adds;
    }
    atomic_store(&churn.stop, true);
    pthread_join(churn_th, NULL);
    ifd_serve_metrics_stop_sampler(sm);
    CHECK(parse_ok, "%d renders during updates, removals and churn, all complete", renders + 20);
    CHECK(ifd_metric_series_value(sc) == (double)N_WORKERS * N_ITERS &&
              ifd_metric_series_value(tail) == (double)tail_adds,
          "shared counters exact under %d threads (%g, tail %g of %llu)", N_WORKERS,
          ifd_metric_series_value(sc), ifd_metric_series_value(tail),
          (unsigned long long)tail_adds);
    uint64_t counts[3];
    double sum;
    ifd_histogram_read(sh, counts, 3, &sum);
    double want_sum = (double)N_WORKERS * (N_ITERS / 4) * (0 + 0.25 + 0.5 + 0.75) +
                      2.0 * (double)tail_adds;
    CHECK(counts[0] == (uint64_t)N_WORKERS * N_ITERS / 2 &&
              counts[1] == (uint64_t)N_WORKERS * N_ITERS / 4 &&
              counts[2] == (uint64_t)N_WORKERS * N_ITERS / 4 + tail_adds && sum == want_sum,
          "shared histogram buckets and sum exact (%g, want %g)", sum, want_sum);
    CHECK(ifd_metric_series_value(sg) == 0, "gauge +1/-1 balanced to 0");
    ifd_sbuf b = {0};
    ifd_serve_metrics_render(sm, &b);
    CHECK(b.data && !strstr(b.data, "model=\"w\"") && !strstr(b.data, "tmp") &&
              !strstr(b.data, "churn"),
          "removed versions and churned series leave no trace (%d churn rounds)", churn.rounds);
    ifd_sbuf_free(&b);
    ifd_serve_metrics_free(sm);
    CHECK(ifd_memory_in_use() == mem0, "no bytes left after the concurrent run");
}

/* ---- sampler thread -------------------------------------------------------------------------- */

static void test_sampler(void) {
    ifd_serve_metrics *sm;
    ifd_version_metrics *vm;
    ifd_serve_metrics_create(&sm);
    ifd_serve_metrics_version_add(sm, "s", 1, &vm);
    CHECK(ifd_serve_metrics_start_sampler(sm, 20) == IFD_OK, "sampler starts");
    CHECK(ifd_serve_metrics_start_sampler(sm, 20) == IFD_ERR_INVALID_ARGUMENT,
          "second start refused");
    struct timespec ts = {0, 130 * 1000000L};
    nanosleep(&ts, NULL);
    ifd_serve_metrics_stop_sampler(sm);
    json_t *h = history(sm, 0);
    size_t n = json_array_size(json_object_get(model_entry(h, "s", "1"), "t"));
    CHECK(n >= 3 && n <= 8, "sampler every 20 ms took %zu points in 130 ms", n);
    CHECK(json_integer_value(json_object_get(h, "interval_ms")) == 20, "interval_ms in the stats");
    json_decref(h);
    ifd_serve_metrics_stop_sampler(sm); /* twice: no-op */
    ifd_serve_metrics_free(sm);
}

/* A representative page for promtool check metrics. */
static int dump_page(const char *path) {
    ifd_serve_metrics *sm;
    ifd_version_metrics *vm;
    if (ifd_serve_metrics_create(&sm) != IFD_OK) return 1;
    ifd_serve_metrics_version_add(sm, "digits", 1, &vm);
    ifd_version_metrics_loaded(vm, true, 0.02);
    ifd_request_timing t = {0.002, 0.0005, 0.0001, 0.001, 0.0001};
    ifd_version_metrics_request(vm, IFD_OUTCOME_SUCCESS, &t);
    ifd_version_metrics_batch(vm, 1);
    ifd_metric_series *d;
    ifd_version_metrics_drift_series(vm, "x", &d);
    ifd_gauge_set(d, 0.01);
    ifd_version_metrics_drift_threshold(vm, 0.2);
    ifd_serve_metrics_load_failure(sm, "broken");
    ifd_serve_metrics_http_request(sm, 200);
    ifd_sbuf b = {0};
    ifd_serve_metrics_render(sm, &b);
    FILE *f = fopen(path, "w");
    int rc = !f || b.failed || fwrite(b.data, 1, b.len, f) != b.len;
    if (f && fclose(f) != 0) rc = 1;
    ifd_sbuf_free(&b);
    ifd_serve_metrics_free(sm);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--dump") == 0) return dump_page(argv[2]);
    test_format();
    test_registry_checks();
    test_exact_text();
    test_quantile();
    test_serve_metrics();
    test_hot_path_no_alloc();
    test_alloc_failures();
    test_concurrency();
    test_sampler();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
