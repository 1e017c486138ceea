/* KServe v2 JSON request decoder tests (serve/kserve_json.c): numbers against strtod/strtof on
 * over a million random and edge-case strings (shortest reprs, 17-digit reprs of floats, many
 * digits, halfway cases, subnormals, exponent limits, -0), every dtype's range limits, the
 * request checks (RELIABILITY.md items 7-13, 15) with their statuses and messages, a comparison
 * with the jansson-based decoder on random valid requests, BYTES tensors (JSON strings with every
 * escape, the binary extension's length-prefixed elements and their errors, the byte cap, the
 * encoder's JSON and binary forms, non-UTF-8 outputs), the batcher's string-safe copies, the
 * common-form fast path against the general path, and allocation failure at every allocation
 * of a parse; and the encoder's numbers: floats and doubles
 * in their shortest round-trip form (against a %.Pe + strtof/strtod search on 5M random floats
 * and the edges), every FP16/BF16 value, integers, and read back through the decoder.
 * `test_kserve_json quick` runs a tenth of the random strings; `test_kserve_json exhaustive
 * [FROM TO]` checks the float output on every float (minutes). */
#include "serve/serve.h"
#include "test_kserve_same.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static locale_t g_c;

/* ---- random numbers and strings -------------------------------------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* xorshift64*: fixed seed, same strings every run */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545f4914f6cdd1dull;
}

static double rnd_double(void) {
    for (;;) {
        uint64_t b = rnd();
        double d;
        memcpy(&d, &b, 8);
        if (isfinite(d)) return d;
    }
}

static float rnd_float(void) {
    for (;;) {
        uint32_t b = (uint32_t)rnd();
        float f;
        memcpy(&f, &b, 4);
        if (isfinite(f)) return f;
    }
}

/* The shortest %.Ng that reads back as d (what Python's repr gives, up to the last digit). */
static void shortest_double(char *buf, size_t size, double d) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, size, "%.*g", p, d);
        if (strtod_l(buf, NULL, g_c) == d) return;
    }
}

static void shortest_float(char *buf, size_t size, float f) {
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, size, "%.*g", p, (double)f);
        if (strtof_l(buf, NULL, g_c) == f) return;
    }
}

/* A random decimal in JSON grammar: 1-25 digits, a point anywhere, an exponent in [elo, ehi]. */
static void random_decimal(char *buf, size_t size, int elo, int ehi) {
    char digits[32];
    int n = 1 + (int)(rnd() % 25), pos = (int)(rnd() % (uint64_t)(n + 1)), k = 0;
    for (int i = 0; i < n; i++) digits[i] = (char)('0' + rnd() % 10);
    if (pos > 0 && digits[0] == '0') digits[0] = (char)('1' + rnd() % 9); /* no leading zero */
    if (rnd() % 4 == 0) buf[k++] = '-';
    if (pos == 0) {
        buf[k++] = '0';
        buf[k++] = '.';
    }
    for (int i = 0; i < n; i++) {
        if (i == pos && pos > 0) buf[k++] = '.';
        buf[k++] = digits[i];
    }
    buf[k] = 0;
    if (rnd() % 2) snprintf(buf + k, size - (size_t)k, "e%d", elo + (int)(rnd() % (uint64_t)(ehi - elo + 1)));
}

/* Exact decimal of x with trailing zeros cut (glibc prints exact expansions). */
static void exact_fixed(char *buf, size_t size, long double x, int frac_digits) {
    snprintf(buf, size, "%.*Lf", frac_digits, x);
    char *dot = strchr(buf, '.');
    if (!dot) return;
    char *e = buf + strlen(buf);
    while (e > dot + 1 && e[-1] == '0') e--;
    if (e == dot + 1) e = dot;
    *e = 0;
}

/* ---- number checks against libc ------------------------------------------------------------ */

typedef struct strlist {
    char **s;
    size_t n, cap;
} strlist;

static void add(strlist *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->s = realloc(l->s, l->cap * sizeof *l->s);
    }
    l->s[l->n++] = strdup(s);
}

static void strlist_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

/* Decode strings [from, to) as one FP32/FP64 request; compare each element with strtof/strtod.
 * Returns the number of mismatches (printing the first few). */
static size_t check_chunk(const strlist *l, size_t from, size_t to, bool single) {
    size_t cap = 256;
    for (size_t i = from; i < to; i++) cap += strlen(l->s[i]) + 2;
    char *body = malloc(cap), err[512];
    int n = snprintf(body, cap, "{\"inputs\":[{\"name\":\"x\",\"shape\":[%zu],\"datatype\":\"%s\","
                     "\"data\":[", to - from, single ? "FP32" : "FP64");
    size_t len = (size_t)n;
    for (size_t i = from; i < to; i++) {
        size_t sl = strlen(l->s[i]);
        if (i > from) body[len++] = ',';
        memcpy(body + len, l->s[i], sl);
        len += sl;
    }
    memcpy(body + len, "]}]}", 4);
    len += 4;
    ifd_kserve_request r;
    size_t bad = 0;
    int rc = ifd_kserve_request_parse(body, len, (size_t)1 << 30, &r, err, sizeof err);
    if (rc) {
        printf("  parse failed (%d): %s\n", rc, err);
        bad = to - from;
    } else {
        const void *data = ifd_tensor_cdata(r.inputs[0].tensor);
        for (size_t i = from; i < to; i++) {
            bool same;
            if (single) {
                float want = strtof_l(l->s[i], NULL, g_c), got = ((const float *)data)[i - from];
                same = !memcmp(&want, &got, 4);
                if (!same && bad < 5)
                    printf("  %s: strtof %a, decoded %a\n", l->s[i], (double)want, (double)got);
            } else {
                double want = strtod_l(l->s[i], NULL, g_c), got = ((const double *)data)[i - from];
                same = !memcmp(&want, &got, 8);
                if (!same && bad < 5) printf("  %s: strtod %a, decoded %a\n", l->s[i], want, got);
            }
            bad += !same;
        }
    }
    ifd_kserve_request_free(&r);
    free(body);
    return bad;
}

static void check_list(const char *name, const strlist *l, bool single) {
    size_t bad = 0;
    for (size_t i = 0; i < l->n; i += 50000) bad += check_chunk(l, i, IFD_MIN(l->n, i + 50000), single);
    CHECK(bad == 0, "%s: %zu strings decoded as %s decodes them (%zu differ)", name, l->n,
          single ? "strtof" : "strtod", bad);
}

/* Keep a string for bulk checks only when libc finds it in range (overflow is an error). */
static void add_finite(strlist *l, const char *s, bool single) {
    if (single ? isinf(strtof_l(s, NULL, g_c)) : isinf(strtod_l(s, NULL, g_c))) return;
    add(l, s);
}

static const char *g_edge_doubles[] = {
    "0", "-0", "0.0", "-0.0", "0e0", "0E+0", "-0e-999999999", "0.000000000000000000000000000e5",
    "1", "-1", "1e0", "1E22", "1e23", "1e-22", "1e-23", "9007199254740992", "9007199254740993",
    "9007199254740993.0000000001", "18446744073709551615", "18446744073709551616",
    "9999999999999999999", "99999999999999999999", "1.7976931348623157e308",
    "1.7976931348623158e308", "1.797693134862315807937289714053e308", "2.2250738585072011e-308",
    "2.2250738585072014e-308", "2.2250738585072012e-308", "4.9406564584124654e-324",
    "2.4703282292062327e-324", "2.4703282292062328e-324", "1e-324", "1e-400", "5e-324",
    "1e-999999999999999999999", "0.1", "0.2", "0.3", "123456789012345678901234567890",
    "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124",
    "1.00000000000000011102230246251565404236316680908203126", "8.98846567431158e307",
    "3.141592653589793238462643383279502884197169399375105820974944",
    "1000000000000000000000000000000000000000000000000000e-52",
    "0.0000000000000000000000000000000000000000000000000000000001e57", "7e-10", "12345678901234567e-19",
    "12345678901234567e19", "1234567890123456789e-19", "1234567890123456789e19", "1e19", "1e-19",
};

static const char *g_edge_floats[] = {
    "0", "-0", "1", "-1", "16777216", "16777217", "16777218", "16777219", "33554433",
    "16777217.0000000001", "16777216.9999999999", "3.4028234663852886e38", "3.4028235e38",
    "3.40282356779733661637539395458142568447e38", "1.17549435e-38", "1.1754942e-38",
    "1.401298464324817e-45", "7.006492321624085e-46", "7.006492321624086e-46", "1e-46",
    "1e-50", "0.1", "1.1176220178604126", "-1.3871248960494995", "0.123457", "-0.0749932",
    "1e10", "1e11", "1e-10", "1e-11", "8388609", "8388608.5", "8388609.5",
    "1.00000005960464477539062500", "1.00000005960464477539062501",
    "1.00000005960464477539062499", "1.0000000596046448", "1.0000000596046447",
    "9999999999999999999e19", "1e-22", "9.999999e-23", "4294967297", "4294967808",
    "4294967807.99999", "0.000000000000000000000000000000000000000000001",
};

static void test_numbers(bool quick) {
    size_t scale = quick ? 10 : 1;
    char buf[1024];
    strlist l = {0};
    /* FP64 */
    for (size_t i = 0; i < IFD_ARRAY_LEN(g_edge_doubles); i++) add_finite(&l, g_edge_doubles[i], false);
    check_list("fp64_edge_cases", &l, false);
    strlist_free(&l);
    for (size_t i = 0; i < 150000 / scale; i++) {
        shortest_double(buf, sizeof buf, rnd_double());
        add(&l, buf);
    }
    check_list("fp64_shortest_repr_of_random_doubles", &l, false);
    strlist_free(&l);
    for (size_t i = 0; i < 150000 / scale; i++) {
        snprintf(buf, sizeof buf, "%.17g", rnd_double());
        add(&l, buf);
        snprintf(buf, sizeof buf, "%.16g", (double)rnd() / 18446744073709551616.0);
        add(&l, buf);
    }
    check_list("fp64_17_and_16_digit_reprs", &l, false);
    strlist_free(&l);
    for (size_t i = 0; i < 200000 / scale; i++) {
        random_decimal(buf, sizeof buf, -340, 320);
        add_finite(&l, buf, false);
    }
    check_list("fp64_random_decimals_many_digits", &l, false);
    strlist_free(&l);
    /* points halfway between doubles, exact (ties to even) and a hair above; the ones in
     * [2^33, 2^64) have at most ~20 digits and reach the exact-integer path */
    for (size_t i = 0; i < 40000 / scale; i++) {
        int k = 33 + (int)(rnd() % 31);
        double d = ldexp(1.0 + (double)(rnd() >> 12) / 4503599627370496.0, k);
        long double mid = ((long double)d + (long double)nextafter(d, INFINITY)) / 2;
        exact_fixed(buf, sizeof buf, mid, 30);
        add(&l, buf);
        strcat(buf, strchr(buf, '.') ? "000001" : ".000001");
        add(&l, buf);
        double t = rnd_double();
        mid = ((long double)t + (long double)nextafter(t, INFINITY)) / 2;
        if (isfinite(nextafter(t, INFINITY))) {
            snprintf(buf, sizeof buf, "%.800Le", mid); /* exact: slow path */
            add_finite(&l, buf, false);
        }
    }
    check_list("fp64_halfway_cases", &l, false);
    strlist_free(&l);
    for (size_t i = 0; i < 30000 / scale; i++) { /* subnormals and the ends of the range */
        double d = ldexp((double)(rnd() >> 11), -1074 - 53 + (int)(rnd() % 110));
        snprintf(buf, sizeof buf, "%.*g", 1 + (int)(rnd() % 20), d);
        add_finite(&l, buf, false);
        d = ldexp(1.0 + (double)(rnd() >> 12) / 4503599627370496.0, 1000 + (int)(rnd() % 24));
        snprintf(buf, sizeof buf, "%.*g", 1 + (int)(rnd() % 20), d);
        add_finite(&l, buf, false);
    }
    check_list("fp64_subnormals_and_limits", &l, false);
    strlist_free(&l);

    /* FP32 */
    for (size_t i = 0; i < IFD_ARRAY_LEN(g_edge_floats); i++) add_finite(&l, g_edge_floats[i], true);
    for (size_t i = 0; i < IFD_ARRAY_LEN(g_edge_doubles); i++) add_finite(&l, g_edge_doubles[i], true);
    check_list("fp32_edge_cases", &l, true);
    strlist_free(&l);
    for (size_t i = 0; i < 150000 / scale; i++) {
        shortest_float(buf, sizeof buf, rnd_float());
        add(&l, buf);
    }
    check_list("fp32_shortest_repr_of_random_floats", &l, true);
    strlist_free(&l);
    for (size_t i = 0; i < 150000 / scale; i++) {
        /* json.dumps(float32 array .tolist()): the double's shortest repr, ~17 digits */
        float f = (float)((double)(int64_t)rnd() / 4e18);
        shortest_double(buf, sizeof buf, (double)f);
        add(&l, buf);
        snprintf(buf, sizeof buf, "%.17g", (double)rnd_float());
        add_finite(&l, buf, true);
    }
    check_list("fp32_double_reprs_of_floats", &l, true);
    strlist_free(&l);
    for (size_t i = 0; i < 150000 / scale; i++) {
        exact_fixed(buf, sizeof buf, (long double)(float)((double)(int64_t)rnd() / 3e18), 6);
        add(&l, buf); /* round(x, 6) */
        random_decimal(buf, sizeof buf, -60, 50);
        add_finite(&l, buf, true);
    }
    check_list("fp32_six_decimals_and_random_decimals", &l, true);
    strlist_free(&l);
    for (size_t i = 0; i < 60000 / scale; i++) {
        /* halfway between floats: exact, a hair above, a hair below */
        int k = 4 + (int)(rnd() % 60);
        float f = ldexpf(1.0f + (float)(rnd() >> 41) / 8388608.0f, k);
        long double mid = ((long double)f + (long double)nextafterf(f, INFINITY)) / 2;
        exact_fixed(buf, sizeof buf, mid, 30);
        add(&l, buf);
        char *dot = strchr(buf, '.');
        strcat(buf, dot ? "0000000001" : ".0000000001");
        add(&l, buf);
        exact_fixed(buf, sizeof buf, mid - ldexpl(1.0L, k - 60), 30);
        add(&l, buf);
        float t = rnd_float();
        if (isfinite(nextafterf(t, INFINITY))) {
            mid = ((long double)t + (long double)nextafterf(t, INFINITY)) / 2;
            snprintf(buf, sizeof buf, "%.200Le", mid);
            add_finite(&l, buf, true);
        }
    }
    check_list("fp32_halfway_cases", &l, true);
    strlist_free(&l);
    for (size_t i = 0; i < 100000 / scale; i++) {
        /* the D.DDDD form (one integer digit, up to 16 decimals) within a few double ulps of a
         * point halfway between floats */
        float f = ldexpf(1.0f + (float)(rnd() >> 41) / 8388608.0f, (int)(rnd() % 4));
        if (f >= 10.0f) continue;
        long double mid = ((long double)f + (long double)nextafterf(f, INFINITY)) / 2;
        snprintf(buf, sizeof buf, "%s%.*Lf", rnd() % 2 ? "-" : "", 13 + (int)(rnd() % 4), mid);
        add(&l, buf);
    }
    check_list("fp32_near_halfway_short_form", &l, true);
    strlist_free(&l);
    for (size_t i = 0; i < 20000 / scale; i++) {
        float f = ldexpf((float)(rnd() >> 40), -149 - 24 + (int)(rnd() % 60));
        snprintf(buf, sizeof buf, "%.*g", 1 + (int)(rnd() % 12), (double)f);
        add_finite(&l, buf, true);
        f = ldexpf(1.0f + (float)(rnd() >> 41) / 8388608.0f, 110 + (int)(rnd() % 18));
        snprintf(buf, sizeof buf, "%.*g", 1 + (int)(rnd() % 12), (double)f);
        add_finite(&l, buf, true);
    }
    check_list("fp32_subnormals_and_limits", &l, true);
    strlist_free(&l);
}

/* ---- requests ---------------------------------------------------------------------------- */

static int parse(const char *body, size_t cap, ifd_kserve_request *r, char *err, size_t errsize) {
    return ifd_kserve_request_parse(body, strlen(body), cap, r, err, errsize);
}

/* One input named x: body from a dtype, shape and data text. */
static char *one_input(const char *dtype, const char *shape, const char *data) {
    size_t n = strlen(data) + strlen(shape) + 128;
    char *b = malloc(n);
    snprintf(b, n, "{\"inputs\":[{\"name\":\"x\",\"shape\":%s,\"datatype\":\"%s\",\"data\":%s}]}",
             shape, dtype, data);
    return b;
}

/* Expect the request to fail with status and a message containing want. */
static void expect_error(const char *name, const char *body, size_t len, int status, const char *want) {
    ifd_kserve_request r;
    char err[1024] = "";
    int rc = ifd_kserve_request_parse(body, len, 1 << 20, &r, err, sizeof err);
    ifd_kserve_request_free(&r);
    CHECK(rc == status && strstr(err, want), "%s: %d \"%s\" (want %d with \"%s\")", name, rc, err,
          status, want);
}

static void expect_error_s(const char *name, const char *body, int status, const char *want) {
    expect_error(name, body, strlen(body), status, want);
}

static void expect_value_error(const char *name, const char *dtype, const char *data, const char *want) {
    char *b = one_input(dtype, "[1]", data);
    expect_error_s(name, b, 400, want);
    free(b);
}

/* Decode one element of dtype from text and compare its bytes. */
static void expect_value(const char *name, const char *dtype, const char *text, const void *want,
                         size_t size) {
    char data[1024], err[512] = "";
    snprintf(data, sizeof data, "[%s]", text);
    char *b = one_input(dtype, "[1]", data);
    ifd_kserve_request r;
    int rc = parse(b, 1 << 20, &r, err, sizeof err);
    bool ok = rc == 0 && ifd_tensor_nbytes(r.inputs[0].tensor) == size &&
              !memcmp(ifd_tensor_cdata(r.inputs[0].tensor), want, size);
    CHECK(ok, "%s: %s %s -> %s", name, dtype, text, rc ? err : ok ? "expected bytes" : "wrong bytes");
    ifd_kserve_request_free(&r);
    free(b);
}

static void test_integers(void) {
    int8_t i8[] = {-128, 127};
    expect_value("int8_min", "INT8", "-128", &i8[0], 1);
    expect_value("int8_max", "INT8", "127", &i8[1], 1);
    expect_value_error("int8_below", "INT8", "[-129]", "element 0 (-129) is out of range for INT8");
    expect_value_error("int8_above", "INT8", "[128]", "out of range for INT8");
    int16_t i16[] = {-32768, 32767};
    expect_value("int16_min", "INT16", "-32768", &i16[0], 2);
    expect_value("int16_max", "INT16", "32767", &i16[1], 2);
    expect_value_error("int16_below", "INT16", "[-32769]", "out of range for INT16");
    expect_value_error("int16_above", "INT16", "[32768]", "out of range for INT16");
    int32_t i32[] = {INT32_MIN, INT32_MAX};
    expect_value("int32_min", "INT32", "-2147483648", &i32[0], 4);
    expect_value("int32_max", "INT32", "2147483647", &i32[1], 4);
    expect_value_error("int32_below", "INT32", "[-2147483649]", "out of range for INT32");
    expect_value_error("int32_above", "INT32", "[2147483648]", "out of range for INT32");
    int64_t i64[] = {INT64_MIN, INT64_MAX, 9007199254740993, -9007199254740993};
    expect_value("int64_min", "INT64", "-9223372036854775808", &i64[0], 8);
    expect_value("int64_max", "INT64", "9223372036854775807", &i64[1], 8);
    expect_value("int64_exact_past_2^53", "INT64", "9007199254740993", &i64[2], 8);
    expect_value("int64_exact_negative", "INT64", "-9007199254740993", &i64[3], 8);
    expect_value_error("int64_below", "INT64", "[-9223372036854775809]", "out of range for INT64");
    expect_value_error("int64_above", "INT64", "[9223372036854775808]", "out of range for INT64");
    expect_value_error("int64_2^64", "INT64", "[18446744073709551616]", "out of range for INT64");
    expect_value_error("int64_huge", "INT64", "[123456789012345678901234567890]", "out of range");
    uint8_t u8[] = {0, 255};
    expect_value("uint8_zero", "UINT8", "0", &u8[0], 1);
    expect_value("uint8_minus_zero", "UINT8", "-0", &u8[0], 1);
    expect_value("uint8_max", "UINT8", "255", &u8[1], 1);
    expect_value_error("uint8_negative", "UINT8", "[-1]", "out of range for UINT8");
    expect_value_error("uint8_above", "UINT8", "[256]", "out of range for UINT8");
    uint16_t u16 = 65535;
    expect_value("uint16_max", "UINT16", "65535", &u16, 2);
    expect_value_error("uint16_above", "UINT16", "[65536]", "out of range for UINT16");
    uint32_t u32 = UINT32_MAX;
    expect_value("uint32_max", "UINT32", "4294967295", &u32, 4);
    expect_value_error("uint32_above", "UINT32", "[4294967296]", "out of range for UINT32");
    uint64_t u64 = UINT64_MAX;
    expect_value("uint64_max", "UINT64", "18446744073709551615", &u64, 8);
    expect_value_error("uint64_2^64", "UINT64", "[18446744073709551616]", "out of range for UINT64");
    expect_value_error("uint64_negative", "UINT64", "[-1]", "out of range for UINT64");
    expect_value_error("int_fraction", "INT32", "[1.5]", "element 0 is not an integer");
    expect_value_error("int_point_zero", "INT32", "[1.0]", "not an integer");
    expect_value_error("int_exponent", "INT64", "[1e2]", "not an integer");
    expect_value_error("int_string", "INT64", "[\"1\"]", "not an integer");
    expect_value_error("int_null", "INT64", "[null]", "not an integer");
    expect_value_error("int_bool", "INT8", "[true]", "not an integer");
    expect_value_error("int_leading_zero", "INT32", "[01]", "invalid JSON");
    expect_value_error("int_bare_minus", "INT32", "[-]", "not an integer");
    unsigned char bools[] = {1, 0};
    expect_value("bool_true", "BOOL", "true", &bools[0], 1);
    expect_value("bool_false", "BOOL", "false", &bools[1], 1);
    expect_value_error("bool_number", "BOOL", "[1]", "element 0 is not true/false");
    expect_value_error("bool_string", "BOOL", "[\"true\"]", "not true/false");
    expect_value_error("bool_truex", "BOOL", "[truex]", "invalid JSON");
}

static void test_floats(void) {
    float f;
    double d;
    f = FLT_MAX;
    expect_value("fp32_max_rounds_down", "FP32", "3.4028235e38", &f, 4);
    expect_value("fp32_max_written_by_encoder", "FP32", "3.40282347e+38", &f, 4);
    expect_value_error("fp32_past_max", "FP32", "[3.4028236e38]", "out of range for FP32");
    expect_value_error("fp32_1e39", "FP32", "[1e39]", "element 0 (1e39) is out of range for FP32");
    expect_value_error("fp32_1e400", "FP32", "[1e400]", "out of range for FP32");
    expect_value_error("fp32_minus_1e400", "FP32", "[-1e400]", "out of range for FP32");
    expect_value_error("fp64_1e400", "FP64", "[1e400]", "out of range for FP64");
    d = DBL_MAX;
    expect_value("fp64_max", "FP64", "1.7976931348623157e308", &d, 8);
    f = 0.0f;
    expect_value("fp32_underflow_is_zero", "FP32", "1e-50", &f, 4);
    f = -0.0f;
    expect_value("fp32_minus_zero", "FP32", "-0", &f, 4);
    f = 1.401298464324817e-45f;
    expect_value("fp32_min_subnormal", "FP32", "1e-45", &f, 4);
    f = NAN;
    expect_value("fp32_nan_string", "FP32", "\"NaN\"", &f, 4);
    expect_value("fp32_nan_lower", "FP32", "\"nan\"", &f, 4);
    expect_value("fp32_nan_escaped", "FP32", "\"\\u004eaN\"", &f, 4);
    f = INFINITY;
    expect_value("fp32_infinity", "FP32", "\"Infinity\"", &f, 4);
    expect_value("fp32_inf", "FP32", "\"inf\"", &f, 4);
    f = -INFINITY;
    expect_value("fp32_minus_infinity", "FP32", "\"-Infinity\"", &f, 4);
    d = -INFINITY;
    expect_value("fp64_minus_inf", "FP64", "\"-inf\"", &d, 8);
    expect_value_error("fp32_abc", "FP32", "[\"abc\"]", "element 0 is not a number");
    expect_value_error("fp32_long_string", "FP32", "[\"NaNNaNNaNNaNNaNNaNNaNNaNNaNNaNNaNNaN\"]", "not a number");
    expect_value_error("fp32_true", "FP32", "[true]", "not a number");
    expect_value_error("fp32_null", "FP32", "[null]", "not a number");
    expect_value_error("fp32_object", "FP32", "[{\"a\":1}]", "not a number");
    expect_value_error("fp32_bad_utf8_string", "FP32", "[\"\xff\"]", "invalid UTF-8");
    uint16_t h;
    h = 0x3c00;
    expect_value("fp16_one", "FP16", "1", &h, 2);
    h = 0x7bff;
    expect_value("fp16_max", "FP16", "65504", &h, 2);
    expect_value("fp16_rounds_to_max", "FP16", "65519", &h, 2);
    expect_value_error("fp16_rounds_past_max", "FP16", "[65520]", "out of range for FP16");
    expect_value_error("fp16_70000", "FP16", "[70000.0]", "element 0 (70000.0) is out of range for FP16");
    h = 0x0001;
    expect_value("fp16_min_subnormal", "FP16", "5.9604645e-8", &h, 2);
    h = 0x7c00;
    expect_value("fp16_infinity", "FP16", "\"Infinity\"", &h, 2);
    h = 0x8000;
    expect_value("fp16_minus_zero", "FP16", "-0.0", &h, 2);
    h = 0x3f80;
    expect_value("bf16_one", "BF16", "1", &h, 2);
    expect_value("bf16_tie_to_even", "BF16", "1.00390625", &h, 2);
    h = 0x3f82;
    expect_value("bf16_tie_to_even_up", "BF16", "1.01171875", &h, 2);
    h = 0x4049;
    expect_value("bf16_pi", "BF16", "3.14159265", &h, 2);
    expect_value_error("bf16_1e39", "BF16", "[1e39]", "out of range for BF16");
    expect_value_error("bf16_rounds_past_max", "BF16", "[3.4e38]", "out of range for BF16");
    h = 0x7f7f;
    expect_value("bf16_max", "BF16", "3.3895314e38", &h, 2);
    /* a token longer than the on-stack copy takes the allocated strtod copy */
    char longnum[400];
    memset(longnum, '1', sizeof longnum - 1);
    longnum[0] = '0';
    longnum[1] = '.';
    longnum[sizeof longnum - 1] = 0;
    d = strtod_l(longnum, NULL, g_c);
    expect_value("fp64_400_digit_token", "FP64", longnum, &d, 8);
}

static void test_request_errors(void) {
    static const struct {
        const char *name, *body;
        int status;
        const char *want;
    } cases[] = {
        {"empty_body", "", 400, "invalid JSON"},
        {"whitespace_body", "  \n ", 400, "invalid JSON"},
        {"top_level_array", "[]", 400, "must be a JSON object"},
        {"top_level_number", "5", 400, "invalid JSON"},
        {"truncated_object", "{", 400, "invalid JSON"},
        {"truncated_inputs", "{\"inputs\": [", 400, "invalid JSON"},
        {"truncated_data", "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,", 400, "invalid JSON"},
        {"trailing_garbage", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]} x", 400, "invalid JSON: end of input expected"},
        {"trailing_object", "{\"inputs\":[]}{}", 400, "invalid JSON"},
        {"bad_utf8_id", "{\"id\": \"\xff\xfe\", \"inputs\": []}", 400, "invalid JSON"},
        {"bad_utf8_key", "{\"\xc0\x80\": 1, \"inputs\": []}", 400, "invalid JSON: invalid UTF-8"},
        {"surrogate_utf8_name", "{\"inputs\":[{\"name\":\"\xed\xa0\x80\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}", 400, "invalid JSON"},
        {"lone_surrogate_escape", "{\"id\":\"\\ud800\",\"inputs\":[]}", 400, "invalid JSON"},
        {"nul_escape_in_key", "{\"a\\u0000\":1,\"inputs\":[]}", 400, "invalid JSON"},
        {"control_char_in_key", "{\"a\tb\":1,\"inputs\":[]}", 400, "invalid JSON"},
        {"duplicate_root_key", "{\"inputs\": [], \"inputs\": []}", 400, "invalid JSON: duplicate object key \"inputs\""},
        {"duplicate_escaped_key", "{\"id\":\"a\",\"\\u0069d\":\"b\",\"inputs\":[]}", 400, "duplicate object key"},
        {"duplicate_data", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],\"data\":[2]}]}", 400, "duplicate object key \"data\""},
        {"duplicate_escaped_data", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],\"d\\u0061ta\":[2]}]}", 400, "duplicate object key"},
        {"duplicate_in_parameters", "{\"parameters\":{\"a\":1,\"a\":2},\"inputs\":[]}", 400, "invalid JSON"},
        {"missing_colon", "{\"inputs\" []}", 400, "invalid JSON"},
        {"missing_comma", "{\"id\":\"a\" \"inputs\":[]}", 400, "invalid JSON"},
        {"trailing_comma_root", "{\"inputs\":[],}", 400, "invalid JSON"},
        {"single_quotes", "{'inputs':[]}", 400, "invalid JSON"},
        {"inputs_empty", "{\"inputs\": []}", 400, "\"inputs\" must be a non-empty array"},
        {"inputs_number", "{\"inputs\": 5}", 400, "non-empty array"},
        {"input_not_object", "{\"inputs\": [5]}", 400, "\"name\" must be a string"},
        {"name_only", "{\"inputs\": [{\"name\": \"x\"}]}", 400, "input 'x'"},
        {"unknown_field", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],\"bogus\":1}", 400, "unknown field \"bogus\""},
        {"id_not_string", "{\"id\":5,\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}", 400, "\"id\" must be a string"},
        {"parameters_not_object", "{\"parameters\":[],\"inputs\":[]}", 400, "\"parameters\" must be an object"},
        {"binary_output_not_bool", "{\"parameters\":{\"binary_data_output\":1},\"inputs\":[]}", 400, "binary_data_output"},
        {"unknown_dtype", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"NOPE\",\"data\":[1]}]}", 400, "input 'x': unknown datatype \"NOPE\""},
        {"bytes_number_element", "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"a\",5]}]}", 400, "input 'x': element 1 is not a string"},
        {"shape_string_dim", "{\"inputs\":[{\"name\":\"x\",\"shape\":[3,\"5\"],\"datatype\":\"FP32\",\"data\":[1]}]}", 400, "input 'x': shape[1] is not an integer"},
        {"shape_negative", "{\"inputs\":[{\"name\":\"x\",\"shape\":[3,-4],\"datatype\":\"FP32\",\"data\":[1]}]}", 400, "negative"},
        {"shape_rank_17", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],\"datatype\":\"FP32\",\"data\":[1]}]}", 400, "rank 17"},
        {"shape_overflow_zero_first", "{\"inputs\":[{\"name\":\"x\",\"shape\":[0,4294967296,4294967296],\"datatype\":\"FP32\",\"data\":[]}]}", 400, "overflows"},
        {"shape_overflow_zero_last", "{\"inputs\":[{\"name\":\"x\",\"shape\":[4294967296,4294967296,0],\"datatype\":\"FP32\",\"data\":[]}]}", 400, "overflows"},
        {"shape_overflow_2^31", "{\"inputs\":[{\"name\":\"x\",\"shape\":[2147483648,2147483648,8],\"datatype\":\"FP32\",\"data\":[]}]}", 400, "overflows"},
        {"shape_2^64", "{\"inputs\":[{\"name\":\"x\",\"shape\":[18446744073709551616],\"datatype\":\"FP32\",\"data\":[]}]}", 400, "invalid JSON"},
        {"huge_valid_shape", "{\"inputs\":[{\"name\":\"x\",\"shape\":[10000000000],\"datatype\":\"FP32\",\"data\":[1]}]}", 413, "input 'x': shape needs more than"},
        {"count_past_data", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1000,100],\"datatype\":\"FP32\",\"data\":[1]}]}", 400, "cannot hold"},
        {"data_missing", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\"}]}", 400, "\"data\" is missing"},
        {"ragged_lengths", "{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[[1,2],[3]]}]}", 400, "input 'x': ragged"},
        {"ragged_depth", "{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[[1,2],3]}]}", 400, "ragged"},
        {"ragged_scalar_first", "{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[1,[2,3]]}]}", 400, "ragged"},
        {"ragged_inner", "{\"inputs\":[{\"name\":\"x\",\"shape\":[5],\"datatype\":\"FP32\",\"data\":[[[1],[2]],[[3],[4,5]]]}]}", 400, "ragged"},
        {"ragged_empty", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[[],[1]]}]}", 400, "ragged"},
        {"too_few", "{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[1,2]}]}", 400, "data holds 2 elements, shape declares 3"},
        {"too_many", "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}", 400, "more than the 2 elements"},
        {"data_depth_17", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}]}", 400, "nests deeper than 16"},
        {"data_trailing_comma", "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2,]}]}", 400, "invalid JSON in \"data\""},
        {"data_leading_comma", "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[,1,2]}]}", 400, "invalid JSON"},
        {"data_missing_comma", "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1 2]}]}", 400, "invalid JSON"},
        {"data_bad_number_dot", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1.]}]}", 400, "invalid JSON"},
        {"data_bad_number_exp", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1e]}]}", 400, "invalid JSON"},
        {"data_leading_zero", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[01.5]}]}", 400, "invalid JSON"},
        {"data_plus_sign", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[+1]}]}", 400, "not a number"},
        {"data_double_dot", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1.2.3]}]}", 400, "invalid JSON"},
        {"data_hex", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[0x10]}]}", 400, "invalid JSON"},
        {"data_mismatched_bracket", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1}]}", 400, "invalid JSON"},
        {"data_unterminated_string", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[\"NaN]}]}", 400, "invalid JSON"},
        {"data_and_binary_size", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],\"parameters\":{\"binary_data_size\":4}}]}", 400, "both"},
        {"binary_size_without_header", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":4}}]}", 400, "Inference-Header-Content-Length"},
        {"outputs_not_array", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],\"outputs\":{}}", 400, "\"outputs\" must be an array"},
        {"output_without_name", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],\"outputs\":[{}]}", 400, "outputs[0]"},
        {"output_flag_not_bool", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":1}}]}", 400, "binary_data"},
        {"second_input_named", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]},{\"name\":\"why\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[\"no\"]}]}", 400, "input 'why': element 0 is not a number"},
    };
    for (size_t i = 0; i < IFD_ARRAY_LEN(cases); i++)
        expect_error_s(cases[i].name, cases[i].body, cases[i].status, cases[i].want);
    /* a NUL byte inside the text */
    static const char nul[] = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1\0]}]}";
    expect_error("nul_byte_in_data", nul, sizeof nul - 1, 400, "invalid JSON");
    static const char nul2[] = "{\"id\":\"a\0b\",\"inputs\":[]}";
    expect_error("nul_byte_in_string", nul2, sizeof nul2 - 1, 400, "invalid JSON");

    /* nesting: 50000 '[' and deep data are refused by the depth cap, without recursion */
    size_t n = 50000;
    char *deep = malloc(2 * n + 200);
    memset(deep, '[', n);
    deep[n] = 0;
    expect_error_s("depth_50000_brackets", deep, 400, "deeper than 64");
    int k = sprintf(deep, "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":");
    memset(deep + k, '[', 30000);
    deep[k + 30000] = '1';
    memset(deep + k + 30001, ']', 30000);
    strcpy(deep + k + 60001, "}]}");
    expect_error_s("depth_30000_in_data", deep, 400, "deeper than 64");
    /* 64 levels in all is the cap: root, parameters, then 62 arrays */
    for (int levels = 64; levels <= 65; levels++) {
        k = sprintf(deep, "{\"parameters\":{\"p\":");
        int arrays = levels - 2;
        memset(deep + k, '[', (size_t)arrays);
        memset(deep + k + arrays, ']', (size_t)arrays);
        strcpy(deep + k + 2 * arrays, "},\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}");
        ifd_kserve_request r;
        char err[512] = "";
        int rc = parse(deep, 1 << 20, &r, err, sizeof err);
        ifd_kserve_request_free(&r);
        if (levels == 64) CHECK(rc == 0, "depth_64_accepted: %d %s", rc, err);
        else CHECK(rc == 400 && strstr(err, "deeper than 64"), "depth_65_refused: %d %s", rc, err);
    }
    free(deep);
    /* the message says where */
    ifd_kserve_request r;
    char err[512] = "";
    parse("{\"inputs\":[{\"name\":\"x\",\n\"shape\":[2],\"datatype\":\"FP32\",\n\"data\":[1,2x]}]}", 1 << 20, &r, err, sizeof err);
    ifd_kserve_request_free(&r);
    CHECK(strstr(err, "line 3, column 12") != NULL, "error_position: %s", err);
}

static void test_request_forms(void) {
    ifd_kserve_request r;
    char err[512] = "";
    /* keys in any order: data before shape and datatype; whitespace everywhere; outputs */
    const char *b = " \r\n\t{ \"outputs\" : [ {\"name\":\"y\",\"parameters\":{\"binary_data\":true}}, "
                    "{\"name\":\"z\"} ] , \"inputs\" : [ { \"data\" : [ [ 1 , 2 ] ,\n [3,4] ] , "
                    "\"extra\": {\"k\": [1, {\"q\": null}]}, \"shape\" : [ 2 , 2 ] , "
                    "\"datatype\" : \"INT32\" , \"name\" : \"x\\u00e9\" } , {\"name\":\"s\","
                    "\"datatype\":\"FP64\",\"shape\":[],\"data\":2.5} ] , \"id\" : \"r\\\"1\" , "
                    "\"parameters\" : {\"binary_data_output\": false} } \n";
    int rc = parse(b, 1 << 20, &r, err, sizeof err);
    bool ok = rc == 0 && r.n_inputs == 2 && !strcmp(r.inputs[0].name, "x\xc3\xa9") &&
              r.inputs[0].dtype == IFD_DTYPE_INT32 && ifd_tensor_rank(r.inputs[0].tensor) == 2 &&
              !memcmp(ifd_tensor_cdata(r.inputs[0].tensor), (int32_t[]){1, 2, 3, 4}, 16) &&
              ifd_tensor_rank(r.inputs[1].tensor) == 0 &&
              *(const double *)ifd_tensor_cdata(r.inputs[1].tensor) == 2.5 && r.id &&
              !strcmp(r.id, "r\"1") && r.n_outputs == 2 && !strcmp(r.outputs[0], "y") &&
              r.output_binary[0] == 1 && r.output_binary[1] == -1 && !r.binary_output;
    CHECK(ok, "any_key_order_whitespace_outputs_scalar: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[0,3],\"datatype\":\"FP32\",\"data\":[]}]}", 1 << 20, &r, err, sizeof err);
    CHECK(rc == 0 && ifd_tensor_count(r.inputs[0].tensor) == 0, "empty_tensor: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[[1],[2],[3]]}]}", 1 << 20, &r, err, sizeof err);
    CHECK(rc == 0, "nesting_need_not_match_shape: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    /* names, datatypes and shapes in their plain form are built without jansson; everything
     * else about them still goes through it and fails the same way */
    static const struct { const char *name, *shape, *dtype_name; int status; const char *want; }
        plain[] = {
            {"\"x\"", "[ 2 ,1 ]", "\"FP32\"", 0, NULL},
            {"\"x\"", "[]", "\"FP32\"", 400, "shape"},          /* 0 dims, 2 values */
            {"\"x\"", "[01,2]", "\"FP32\"", 400, "invalid JSON"}, /* leading zero */
            {"\"x\"", "[2,]", "\"FP32\"", 400, "invalid JSON"},
            {"\"x\"", "[2,1", "\"FP32\"", 400, "invalid JSON"},
            {"\"x\"", "[-2,-1]", "\"FP32\"", 400, "shape"},
            {"\"x\"", "[1234567890123456789012,1]", "\"FP32\"", 400, "invalid JSON"},
            {"\"x\"", "[2.0,1]", "\"FP32\"", 400, "shape"},
            {"\"\xff\"", "[2,1]", "\"FP32\"", 400, "invalid JSON"}, /* not UTF-8 */
            {"\"\\u0078\"", "[2,1]", "\"FP32\"", 0, NULL},       /* escaped "x" */
            {"\"x\"", "[2,1]", "\"FP\\u0033\\u0032\"", 0, NULL},
        };
    for (size_t i = 0; i < IFD_ARRAY_LEN(plain); i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"inputs\":[{\"name\":%s,\"shape\":%s,\"datatype\":%s,"
                 "\"data\":[1,2]}]}", plain[i].name, plain[i].shape, plain[i].dtype_name);
        rc = parse(body, 1 << 20, &r, err, sizeof err);
        ok = rc == plain[i].status && (plain[i].want ? strstr(err, plain[i].want) != NULL
                                       : !strcmp(r.inputs[0].name, "x") &&
                                             r.inputs[0].dtype == IFD_DTYPE_FLOAT &&
                                             ifd_tensor_dims(r.inputs[0].tensor)[0] == 2);
        CHECK(ok, "plain_values_%zu: %s -> %d %s", i, body, rc, err);
        ifd_kserve_request_free(&r); /* a refused parse may hold what it had read */
    }
    /* the byte cap counts every input together */
    const char *two = "{\"inputs\":[{\"name\":\"a\",\"shape\":[4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]},"
                      "{\"name\":\"b\",\"shape\":[4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}";
    rc = parse(two, 32, &r, err, sizeof err);
    CHECK(rc == 0, "cap_fits_exactly: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = parse(two, 31, &r, err, sizeof err);
    CHECK(rc == 413 && strstr(err, "input 'b'"), "cap_counts_all_inputs: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    /* binary extension: JSON header, then the bytes of each input in order */
    const char *hdr = "{\"inputs\":[{\"name\":\"a\",\"shape\":[2],\"datatype\":\"INT32\","
                      "\"parameters\":{\"binary_data_size\":8}},{\"name\":\"b\",\"shape\":[3],"
                      "\"datatype\":\"BOOL\",\"parameters\":{\"binary_data_size\":3}}]}";
    size_t hl = strlen(hdr);
    char *body = malloc(hl + 11);
    memcpy(body, hdr, hl);
    memcpy(body + hl, (int32_t[]){7, -7}, 8);
    memcpy(body + hl + 8, "\1\0\1", 3);
    rc = ifd_kserve_request_parse_binary(body, hl + 11, hl, 1 << 20, &r, err, sizeof err);
    ok = rc == 0 && !memcmp(ifd_tensor_cdata(r.inputs[0].tensor), (int32_t[]){7, -7}, 8) &&
         !memcmp(ifd_tensor_cdata(r.inputs[1].tensor), "\1\0\1", 3);
    CHECK(ok, "binary_inputs: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    body[hl + 9] = 2;
    rc = ifd_kserve_request_parse_binary(body, hl + 11, hl, 1 << 20, &r, err, sizeof err);
    CHECK(rc == 400 && strstr(err, "BOOL element 1 is 2"), "binary_bool_not_0_or_1: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = ifd_kserve_request_parse_binary(body, hl + 10, hl, 1 << 20, &r, err, sizeof err);
    CHECK(rc == 400 && strstr(err, "past the end"), "binary_short: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = ifd_kserve_request_parse_binary(body, hl + 11, hl - 5, 1 << 20, &r, err, sizeof err);
    CHECK(rc == 400 && strstr(err, "invalid JSON"), "binary_header_cuts_json: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = ifd_kserve_request_parse_binary(body, hl + 11, hl + 12, 1 << 20, &r, err, sizeof err);
    CHECK(rc == 400 && strstr(err, "larger than the body"), "binary_header_too_long: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    free(body);
}

/* ---- against the jansson decoder ------------------------------------------------------------ */

static const char *const g_dtype_names[] = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8",
                                            "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BF16"};

/* A random element of dtype, as text, within what jansson can read (integers within int64). */
static void random_element(char *buf, size_t size, ifd_dtype dt) {
    switch (dt) {
    case IFD_DTYPE_BOOL: snprintf(buf, size, rnd() % 2 ? "true" : "false"); return;
    case IFD_DTYPE_FLOAT:
    case IFD_DTYPE_DOUBLE:
    case IFD_DTYPE_FLOAT16:
    case IFD_DTYPE_BFLOAT16:
        switch (rnd() % 5) {
        case 0: snprintf(buf, size, "\"%s\"", rnd() % 2 ? "NaN" : "-Infinity"); return;
        case 1: snprintf(buf, size, "%lld", (long long)(rnd() % 200000) - 100000); return;
        case 2: snprintf(buf, size, "%.6f", (double)(int64_t)rnd() / 4e18); return;
        default: snprintf(buf, size, "%.*g", 1 + (int)(rnd() % 17), (double)(int64_t)rnd() / 1e15 * (dt == IFD_DTYPE_FLOAT16 ? 1e-3 : 1)); return;
        }
    default: break;
    }
    bool is_signed = ifd_dtype_is_signed_int(dt);
    int bits = (int)ifd_dtype_size(dt) * 8;
    uint64_t v = rnd();
    if (bits < 64) v &= (1ull << bits) - 1;
    if (is_signed) {
        int64_t s = bits < 64 ? (int64_t)v - (int64_t)(1ull << (bits - 1)) : (int64_t)v;
        snprintf(buf, size, "%lld", (long long)s);
    } else {
        if (bits == 64) v >>= 1; /* jansson holds integers as long long */
        snprintf(buf, size, "%llu", (unsigned long long)v);
    }
}

static void test_against_jansson(void) {
    size_t bad = 0, runs = 3000;
    char elem[64], err[512], err2[512];
    for (size_t run = 0; run < runs; run++) {
        ifd_dtype dt = ifd_kserve_dtype_from_name(g_dtype_names[rnd() % IFD_ARRAY_LEN(g_dtype_names)]);
        int rank = (int)(rnd() % 4);
        int64_t dims[4], count = 1;
        for (int i = 0; i < rank; i++) count *= dims[i] = (int64_t)(rnd() % 5);
        size_t cap = 256 + (size_t)count * 80, len = 0;
        char *body = malloc(cap);
        len += (size_t)sprintf(body, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"%s\",\"shape\":[",
                               ifd_kserve_dtype_name(dt));
        for (int i = 0; i < rank; i++) len += (size_t)sprintf(body + len, i ? ",%lld" : "%lld", (long long)dims[i]);
        len += (size_t)sprintf(body + len, "],\"data\":");
        /* nested as the shape says, or flat */
        bool nested = rnd() % 2 && rank > 0;
        int64_t idx[4] = {0};
        if (!nested || rank == 0) body[len++] = '[';
        for (int64_t e = 0; e < count || (nested && count == 0 && e == 0); e++) {
            if (nested) {
                int opened = 0;
                for (int i = rank - 1; i >= 0 && idx[i] == 0; i--) opened++;
                if (e > 0) body[len++] = ',';
                for (int i = 0; i < (count ? opened : rank); i++) body[len++] = '[';
                if (!count) {
                    for (int i = 0; i < rank; i++) body[len++] = ']';
                    break;
                }
            } else if (e > 0) {
                body[len++] = ',';
                if (rnd() % 4 == 0) body[len++] = ' ';
            }
            random_element(elem, sizeof elem, dt);
            len += (size_t)sprintf(body + len, "%s", elem);
            if (nested) {
                int closed = 0;
                for (int i = rank - 1; i >= 0; i--) {
                    if (++idx[i] < dims[i]) break;
                    idx[i] = 0;
                    closed++;
                }
                for (int i = 0; i < closed; i++) body[len++] = ']';
            }
        }
        if (!nested || rank == 0) body[len++] = ']';
        len += (size_t)sprintf(body + len, "}]}");
        ifd_kserve_request r;
        int rc = ifd_kserve_request_parse(body, len, 1 << 24, &r, err, sizeof err);
        json_error_t je;
        json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        const json_t *data = json_object_get(json_array_get(json_object_get(root, "inputs"), 0), "data");
        void *want = calloc(1, (size_t)count * 8 + 8);
        int rc2 = root ? ifd_kserve_decode_values(data, dt, count, want, "t", err2, sizeof err2) : -1;
        bool same = rc == rc2;
        if (same && rc == 0) {
            size_t es = ifd_dtype_size(dt), nb = (size_t)count * es;
            const unsigned char *got = ifd_tensor_cdata(r.inputs[0].tensor), *w = want;
            same = ifd_tensor_nbytes(r.inputs[0].tensor) == nb;
            for (size_t i = 0; same && i < (size_t)count; i++) {
                if (!memcmp(got + i * es, w + i * es, es)) continue;
                /* the jansson path rounds FP32/FP16/BF16 through double: one unit apart at most */
                uint32_t a = 0, b2 = 0;
                memcpy(&a, got + i * es, es);
                memcpy(&b2, w + i * es, es);
                same = (dt == IFD_DTYPE_FLOAT || dt == IFD_DTYPE_FLOAT16 || dt == IFD_DTYPE_BFLOAT16) &&
                       (a - b2 == 1 || b2 - a == 1);
            }
        }
        if (!same && bad++ < 3)
            printf("  %.300s\n  new %d %s / jansson %d %s\n", body, rc, rc ? err : "", rc2, rc2 ? err2 : "");
        ifd_kserve_request_free(&r);
        json_decref(root);
        free(want);
        free(body);
    }
    CHECK(bad == 0, "same_as_jansson_decoder: %zu random requests over every dtype, %zu differ", runs, bad);
}

/* ---- BYTES tensors ----------------------------------------------------------------------------- */

/* Element i of a string tensor is want[0, len). */
static bool string_is(const ifd_tensor *t, int64_t i, const char *want, size_t len) {
    size_t got_len = 0;
    const char *got = ifd_tensor_get_string(t, i, &got_len);
    return got && got_len == len && !memcmp(got, want, len);
}

/* A binary-extension body: header (JSON) then bin[0, bin_len). */
static int parse_bin(const char *header, const char *bin, size_t bin_len, size_t cap,
                     ifd_kserve_request *r, char *err, size_t errsize) {
    size_t hl = strlen(header);
    char *body = malloc(hl + bin_len + 1);
    memcpy(body, header, hl);
    memcpy(body + hl, bin, bin_len);
    int rc = ifd_kserve_request_parse_binary(body, hl + bin_len, hl, cap, r, err, errsize);
    /* string elements are copies: the body can go at once */
    memset(body, 0, hl + bin_len);
    free(body);
    return rc;
}

static void test_bytes_decode(void) {
    ifd_kserve_request r;
    char err[1024] = "";
    /* escapes (\u0000, a surrogate pair, \/), raw UTF-8, empty strings; nested data */
    const char *b = "{\"inputs\":[{\"name\":\"s\",\"shape\":[2,3],\"datatype\":\"BYTES\","
                    "\"data\":[[\"plain\",\"\",\"a\\u0000b\"],[\"\\ud83d\\ude00 \\u00e9\\/\\\\\\\"\\n\\t\\b\\f\\r\","
                    "\"h\xc3\xa9llo \xe2\x9c\x93\",\"\\u0000\"]]}]}";
    int rc = parse(b, 1 << 20, &r, err, sizeof err);
    const ifd_tensor *t = rc == 0 ? r.inputs[0].tensor : NULL;
    bool ok = t && r.inputs[0].dtype == IFD_DTYPE_STRING && ifd_tensor_count(t) == 6 &&
              string_is(t, 0, "plain", 5) && string_is(t, 1, "", 0) &&
              string_is(t, 2, "a\0b", 3) &&
              string_is(t, 3, "\xf0\x9f\x98\x80 \xc3\xa9/\\\"\n\t\b\f\r", 15) &&
              string_is(t, 4, "h\xc3\xa9llo \xe2\x9c\x93", 10) && string_is(t, 5, "\0", 1);
    CHECK(ok, "bytes_json_escapes_unicode_empty_nul_nested: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = parse("{\"inputs\":[{\"name\":\"s\",\"shape\":[2,2],\"datatype\":\"BYTES\","
               "\"data\":[\"a\",\"bb\",\"ccc\",\"\"]}]}", 1 << 20, &r, err, sizeof err);
    t = rc == 0 ? r.inputs[0].tensor : NULL;
    CHECK(t && string_is(t, 0, "a", 1) && string_is(t, 2, "ccc", 3) && string_is(t, 3, "", 0),
          "bytes_json_flat_data: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = parse("{\"inputs\":[{\"name\":\"s\",\"shape\":[],\"datatype\":\"BYTES\","
               "\"data\":\"x\\u0000y\"}]}", 1 << 20, &r, err, sizeof err);
    t = rc == 0 ? r.inputs[0].tensor : NULL;
    CHECK(t && ifd_tensor_rank(t) == 0 && string_is(t, 0, "x\0y", 3), "bytes_json_scalar: %d %s",
          rc, err);
    ifd_kserve_request_free(&r);
    rc = parse("{\"inputs\":[{\"name\":\"s\",\"shape\":[0],\"datatype\":\"BYTES\","
               "\"data\":[]}]}", 1 << 20, &r, err, sizeof err);
    CHECK(rc == 0 && ifd_tensor_count(r.inputs[0].tensor) == 0, "bytes_json_empty_tensor: %d %s",
          rc, err);
    ifd_kserve_request_free(&r);

    static const struct {
        const char *name, *data, *shape;
        int status;
        const char *want;
    } bad[] = {
        {"bytes_number", "[1]", "[1]", 400, "element 0 is not a string"},
        {"bytes_bool", "[\"a\",true]", "[2]", 400, "element 1 is not a string"},
        {"bytes_null", "[null]", "[1]", 400, "not a string"},
        {"bytes_object", "[{\"b64\":\"AA==\"}]", "[1]", 400, "not a string"},
        {"bytes_too_few", "[\"a\",\"b\",\"c\"]", "[2,2]", 400, "data holds 3 elements, shape declares 4"},
        {"bytes_too_many", "[\"a\",\"b\",\"c\"]", "[2]", 400, "more than the 2 elements"},
        {"bytes_ragged", "[[\"a\",\"b\"],[\"c\"]]", "[3]", 400, "ragged"},
        {"bytes_count_past_data", "[\"a\"]", "[50000]", 400, "cannot hold"},
        {"bytes_lone_high_surrogate", "[\"\\ud83d\"]", "[1]", 400, "surrogate"},
        {"bytes_lone_low_surrogate", "[\"\\ude00x\"]", "[1]", 400, "surrogate"},
        {"bytes_bad_escape", "[\"\\x41\"]", "[1]", 400, "invalid escape"},
        {"bytes_short_u_escape", "[\"\\u12\"]", "[1]", 400, "invalid escape"},
        {"bytes_raw_invalid_utf8", "[\"\xff\"]", "[1]", 400, "invalid UTF-8"},
        {"bytes_raw_control_char", "[\"a\x01\"]", "[1]", 400, "control character"},
        {"bytes_unterminated", "[\"abc]", "[1]", 400, "invalid JSON"},
        {"bytes_missing_comma", "[\"a\" \"b\"]", "[2]", 400, "invalid JSON"},
        {"bytes_huge_shape", "[\"a\"]", "[10000000000]", 413, "shape needs more than"},
    };
    for (size_t i = 0; i < IFD_ARRAY_LEN(bad); i++) {
        char *body = one_input("BYTES", bad[i].shape, bad[i].data);
        expect_error_s(bad[i].name, body, bad[i].status, bad[i].want);
        free(body);
    }
    /* a string where a number is expected, and BYTES text in a number input */
    expect_value_error("fp32_given_string", "FP32", "[\"abc\"]", "element 0 is not a number");
    expect_value_error("int64_given_string", "INT64", "[\"12\"]", "element 0 is not an integer");
    /* the budget counts each element's bytes and a 16-byte slot: "abcd" x 2 costs 40 */
    const char *two = "{\"inputs\":[{\"name\":\"s\",\"shape\":[2],\"datatype\":\"BYTES\","
                      "\"data\":[\"abcd\",\"ab\\u0063d\"]}]}";
    rc = parse(two, 40, &r, err, sizeof err);
    CHECK(rc == 0, "bytes_budget_fits_exactly: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = parse(two, 39, &r, err, sizeof err);
    CHECK(rc == 413 && strstr(err, "input 's'"), "bytes_budget_counts_string_bytes: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = parse(two, 31, &r, err, sizeof err);
    CHECK(rc == 413 && strstr(err, "shape needs more"), "bytes_budget_counts_slots_first: %d %s",
          rc, err);
    ifd_kserve_request_free(&r);
}

static void test_bytes_binary(void) {
    ifd_kserve_request r;
    char err[1024] = "";
    /* "ab", "", "\xff\0z": lengths 2, 0, 3 -> 4+2 + 4 + 4+3 = 17 bytes */
    static const char bin[] = "\2\0\0\0ab\0\0\0\0\3\0\0\0\xff\0z";
    const size_t bl = sizeof bin - 1;
    char hdr[512];
    const char *fmt = "{\"inputs\":[{\"name\":\"s\",\"shape\":[%s],\"datatype\":\"BYTES\","
                      "\"parameters\":{\"binary_data_size\":%zu}}]}";
    snprintf(hdr, sizeof hdr, fmt, "3", bl);
    int rc = parse_bin(hdr, bin, bl, 1 << 20, &r, err, sizeof err);
    const ifd_tensor *t = rc == 0 ? r.inputs[0].tensor : NULL;
    CHECK(t && string_is(t, 0, "ab", 2) && string_is(t, 1, "", 0) &&
          string_is(t, 2, "\xff\0z", 3), "bytes_binary_input: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    /* an odd header length leaves the lengths unaligned; they are read bytewise */
    char hdr2[520];
    snprintf(hdr2, sizeof hdr2, "%s ", hdr);
    rc = parse_bin(hdr2, bin, bl, 1 << 20, &r, err, sizeof err);
    CHECK(rc == 0 && string_is(r.inputs[0].tensor, 2, "\xff\0z", 3), "bytes_binary_unaligned: %d %s",
          rc, err);
    ifd_kserve_request_free(&r);
    /* budget: 3 slots (48) + 5 bytes */
    rc = parse_bin(hdr, bin, bl, 53, &r, err, sizeof err);
    CHECK(rc == 0, "bytes_binary_budget_exact: %d %s", rc, err);
    ifd_kserve_request_free(&r);
    rc = parse_bin(hdr, bin, bl, 52, &r, err, sizeof err);
    CHECK(rc == 413, "bytes_binary_budget_over: %d %s", rc, err);
    ifd_kserve_request_free(&r);

    static const struct {
        const char *name, *shape;
        const char *bin;
        size_t bin_len, size;
        const char *want;
    } bad[] = {
        {"bytes_binary_truncated_length", "2", "\1\0\0\0a\1\0\0", 8, 8, "4-byte length is cut off"},
        {"bytes_binary_length_past_end", "2", "\1\0\0\0a\x64\0\0\0abc", 12, 12,
         "length 100 runs past the end"},
        {"bytes_binary_huge_length", "1", "\xff\xff\xff\xff", 4, 4, "runs past the end"},
        {"bytes_binary_size_more_than_elements", "1", "\1\0\0\0ab", 6, 6,
         "binary_data_size is 6 bytes; its 1 BYTES elements take 5"},
        {"bytes_binary_size_past_section", "1", "\1\0\0\0a", 5, 9, "past the end of the binary"},
        {"bytes_binary_size_below_4_per_element", "3", "\0\0\0\0\0\0\0\0", 8, 8,
         "need at least 12"},
        {"bytes_binary_count_past_data", "1000000", "\0\0\0\0", 4, 4, "need at least"},
    };
    for (size_t i = 0; i < IFD_ARRAY_LEN(bad); i++) {
        snprintf(hdr, sizeof hdr, fmt, bad[i].shape, bad[i].size);
        rc = parse_bin(hdr, bad[i].bin, bad[i].bin_len, 1 << 30, &r, err, sizeof err);
        ifd_kserve_request_free(&r);
        CHECK(rc == 400 && strstr(err, "input 's'") && strstr(err, bad[i].want),
              "%s: %d \"%s\" (want 400 with \"%s\")", bad[i].name, rc, err, bad[i].want);
    }
    /* the sum of sizes must cover the section exactly: a BYTES input followed by stray bytes */
    snprintf(hdr, sizeof hdr, fmt, "3", bl);
    char more[32];
    memcpy(more, bin, bl);
    memcpy(more + bl, "zz", 2);
    rc = parse_bin(hdr, more, bl + 2, 1 << 20, &r, err, sizeof err);
    ifd_kserve_request_free(&r);
    CHECK(rc == 400 && strstr(err, "add up to"), "bytes_binary_section_longer: %d %s", rc, err);
    rc = parse("{\"inputs\":[{\"name\":\"s\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a\"],"
               "\"parameters\":{\"binary_data_size\":5}}]}", 1 << 20, &r, err, sizeof err);
    ifd_kserve_request_free(&r);
    CHECK(rc == 400 && strstr(err, "both"), "bytes_data_and_binary_size: %d %s", rc, err);
    rc = parse("{\"inputs\":[{\"name\":\"s\",\"shape\":[1],\"datatype\":\"BYTES\","
               "\"parameters\":{\"binary_data_size\":5}}]}", 1 << 20, &r, err, sizeof err);
    ifd_kserve_request_free(&r);
    CHECK(rc == 400 && strstr(err, "Inference-Header-Content-Length"),
          "bytes_binary_without_header: %d %s", rc, err);
}

/* A string tensor of n elements from strs (lengths lens). */
static ifd_tensor *string_tensor(int64_t n, const char *const *strs, const size_t *lens) {
    ifd_tensor *t = NULL;
    if (ifd_tensor_create(IFD_DTYPE_STRING, 1, &n, &t) != IFD_OK) return NULL;
    for (int64_t i = 0; i < n; i++) ifd_tensor_set_string(t, i, strs[i], lens[i]);
    return t;
}

static void test_bytes_encode(void) {
    static const char *const strs[] = {"plain", "", "q\"b\\s/\n\t\r\x01\x1f\x7f", "nul\0in",
                                       "h\xc3\xa9 \xf0\x9f\x98\x80"};
    static const size_t lens[] = {5, 0, 12, 6, 8};
    ifd_tensor *t = string_tensor(5, strs, lens);
    ifd_sbuf b = {0};
    ifd_kserve_encode_tensor(&b, "s", t);
    /* jansson reads the JSON back (NUL allowed in values) to the same bytes */
    json_error_t je;
    json_t *v = b.failed ? NULL : json_loadb(b.data, b.len, JSON_ALLOW_NUL, &je);
    const json_t *data = json_object_get(v, "data");
    bool ok = v && !strcmp(json_string_value(json_object_get(v, "datatype")), "BYTES") &&
              json_array_size(data) == 5;
    for (size_t i = 0; ok && i < 5; i++) {
        const json_t *e = json_array_get(data, i);
        ok = json_is_string(e) && json_string_length(e) == lens[i] &&
             !memcmp(json_string_value(e), strs[i], lens[i]);
    }
    CHECK(ok, "bytes_encode_json_reads_back: %s", b.data ? b.data : "(null)");
    CHECK(b.data && strstr(b.data, "\"nul\\u0000in\"") && strstr(b.data, "\\u0001\\u001f"),
          "bytes_encode_escapes_controls: %s", b.data ? b.data : "(null)");
    json_decref(v);
    ifd_sbuf_free(&b);

    /* the response: JSON form for UTF-8, binary form on request, an error for non-UTF-8 JSON */
    ifd_kserve_request req;
    memset(&req, 0, sizeof req);
    const char *names[] = {"s"};
    ifd_tensor *outs[] = {t};
    size_t json_len = 1;
    char err[512] = "";
    int rc = ifd_kserve_encode_response(&b, "m", 1, &req, 1, names, outs, &json_len, err,
                                        sizeof err);
    CHECK(rc == 0 && json_len == 0 && b.data && strstr(b.data, "\"plain\""),
          "bytes_response_json: %d %s", rc, err);
    ifd_sbuf_free(&b);
    req.binary_output = true;
    rc = ifd_kserve_encode_response(&b, "m", 1, &req, 1, names, outs, &json_len, err, sizeof err);
    /* 5 lengths and 31 bytes */
    static const char want_bin[] = "\5\0\0\0plain\0\0\0\0\x0c\0\0\0q\"b\\s/\n\t\r\x01\x1f\x7f"
                                   "\6\0\0\0nul\0in\x08\0\0\0h\xc3\xa9 \xf0\x9f\x98\x80";
    ok = rc == 0 && json_len > 0 && b.len - json_len == sizeof want_bin - 1 &&
         !memcmp(b.data + json_len, want_bin, sizeof want_bin - 1) &&
         strstr(b.data, "\"binary_data_size\":51");
    CHECK(ok, "bytes_response_binary_length_prefixed: %d %s", rc, err);
    ifd_sbuf_free(&b);
    ifd_tensor_set_string(t, 1, "\xc3\x28", 2); /* an invalid UTF-8 pair */
    rc = ifd_kserve_encode_response(&b, "m", 1, &req, 1, names, outs, &json_len, err, sizeof err);
    CHECK(rc == 0 && json_len > 0, "bytes_response_binary_any_bytes: %d %s", rc, err);
    ifd_sbuf_free(&b);
    req.binary_output = false;
    rc = ifd_kserve_encode_response(&b, "m", 1, &req, 1, names, outs, &json_len, err, sizeof err);
    CHECK(rc == 400 && b.len == 0 && strstr(err, "output 's' element 1 is not valid UTF-8") &&
          strstr(err, "binary_data"), "bytes_response_non_utf8_json_refused: %d %s", rc, err);
    ifd_sbuf_free(&b);
    /* put_string alone keeps JSON valid: the bad byte becomes U+FFFD */
    ifd_kserve_put_string(&b, "a\xffz", 3);
    CHECK(b.data && !strcmp(b.data, "\"a\\ufffdz\""), "bytes_put_string_replaces_bad_byte: %s",
          b.data ? b.data : "(null)");
    ifd_sbuf_free(&b);
    size_t at = 0;
    CHECK(!ifd_kserve_utf8_valid("ok\xe2\x82", 4, &at) && at == 2 &&
          ifd_kserve_utf8_valid("\xe2\x82\xac\0", 4, NULL) &&
          !ifd_kserve_utf8_valid("\xed\xa0\x80", 3, &at) && at == 0,
          "bytes_utf8_check: truncated sequence, NUL, surrogate");
    ifd_tensor_free(t);

    /* decode -> encode -> decode keeps every byte (JSON form and binary form) */
    const char *in = "{\"inputs\":[{\"name\":\"s\",\"shape\":[3],\"datatype\":\"BYTES\","
                     "\"data\":[\"\\u0000\\u0001\",\"\\ud83d\\ude00\\\"\",\"\"]}]}";
    ifd_kserve_request r1, r2;
    int rc1 = parse(in, 1 << 20, &r1, err, sizeof err);
    ifd_sbuf_puts(&b, "{\"inputs\":[");
    if (rc1 == 0) ifd_kserve_encode_tensor(&b, "s", r1.inputs[0].tensor);
    ifd_sbuf_puts(&b, "]}");
    int rc2 = parse(b.data, 1 << 20, &r2, err, sizeof err);
    ok = rc1 == 0 && rc2 == 0;
    for (int64_t i = 0; ok && i < 3; i++) {
        size_t l1, l2;
        const char *s1 = ifd_tensor_get_string(r1.inputs[0].tensor, i, &l1);
        const char *s2 = ifd_tensor_get_string(r2.inputs[0].tensor, i, &l2);
        ok = l1 == l2 && !memcmp(s1, s2, l1);
    }
    CHECK(ok, "bytes_json_round_trip: %d %d %s", rc1, rc2, b.data);
    ifd_kserve_request_free(&r1);
    ifd_kserve_request_free(&r2);
    ifd_sbuf_free(&b);
}

/* Dynamic batching's joins and splits (infer.c), string tensors included. */
static void test_batch_copies(void) {
    static const char *const sa[] = {"a", "", "ccc", "d\0d", "e", "ff"};
    static const size_t la[] = {1, 0, 3, 3, 1, 2};
    ifd_tensor *p1 = NULL, *p2 = NULL, *cat = NULL, *rows = NULL;
    ifd_tensor_create(IFD_DTYPE_STRING, 2, (int64_t[]){1, 2}, &p1);
    ifd_tensor_create(IFD_DTYPE_STRING, 2, (int64_t[]){2, 2}, &p2);
    for (int i = 0; i < 2; i++) ifd_tensor_set_string(p1, i, sa[i], la[i]);
    for (int i = 0; i < 4; i++) ifd_tensor_set_string(p2, i, sa[2 + i], la[2 + i]);
    const ifd_tensor *parts[] = {p1, p2};
    ifd_status st = ifd_serve_tensor_concat(parts, 2, 3, &cat);
    bool ok = st == IFD_OK && ifd_tensor_dims(cat)[0] == 3 && ifd_tensor_dims(cat)[1] == 2;
    for (int i = 0; ok && i < 6; i++) ok = string_is(cat, i, sa[i], la[i]);
    CHECK(ok, "batch_concat_strings: %d", (int)st);
    st = ifd_serve_tensor_rows(cat, 1, 2, &rows);
    ok = st == IFD_OK && ifd_tensor_dims(rows)[0] == 2 && ifd_tensor_count(rows) == 4;
    for (int i = 0; ok && i < 4; i++) ok = string_is(rows, i, sa[2 + i], la[2 + i]);
    CHECK(ok, "batch_rows_strings: %d", (int)st);
    ifd_tensor_free(rows);
    rows = NULL;
    st = ifd_serve_tensor_rows(cat, 2, 2, &rows);
    CHECK(st != IFD_OK && !rows, "batch_rows_out_of_range_refused");
    ifd_tensor *bad = NULL;
    st = ifd_serve_tensor_concat(parts, 2, 4, &bad);
    CHECK(st != IFD_OK && !bad, "batch_concat_wrong_total_refused");
    ifd_tensor_free(p1);
    ifd_tensor_free(p2);
    ifd_tensor_free(cat);
    /* numbers: raw bytes */
    ifd_tensor *f1 = NULL, *f2 = NULL, *fc = NULL, *fr = NULL;
    ifd_tensor_create(IFD_DTYPE_FLOAT, 1, (int64_t[]){2}, &f1);
    ifd_tensor_create(IFD_DTYPE_FLOAT, 1, (int64_t[]){1}, &f2);
    memcpy(ifd_tensor_data(f1), (float[]){1, 2}, 8);
    memcpy(ifd_tensor_data(f2), (float[]){3}, 4);
    const ifd_tensor *fp[] = {f1, f2};
    ifd_serve_tensor_concat(fp, 2, 3, &fc);
    ifd_serve_tensor_rows(fc, 1, 2, &fr);
    CHECK(fc && fr && !memcmp(ifd_tensor_cdata(fc), (float[]){1, 2, 3}, 12) &&
          !memcmp(ifd_tensor_cdata(fr), (float[]){2, 3}, 8), "batch_concat_rows_numbers");
    ifd_tensor_free(f1);
    ifd_tensor_free(f2);
    ifd_tensor_free(fc);
    ifd_tensor_free(fr);
}

/* ---- allocation failure ------------------------------------------------------------------ */

/* Fail the decode's nth allocation for n = 1, 2, ... until it succeeds: each failure must be a
 * 500 "out of memory" (and free what it took: LSan); false when one is not or it never succeeds.
 * bin NULL: body is the whole JSON request; else the binary extension's header and section. */
static bool alloc_sweep(const char *body, const char *bin, size_t bin_len) {
    int failures = 0;
    for (long n = 1; n < 200; n++) {
        ifd_kserve_request r;
        char err[512];
        ifd_alloc_fail_at(n);
        int rc = bin ? parse_bin(body, bin, bin_len, 1 << 20, &r, err, sizeof err)
                     : parse(body, 1 << 20, &r, err, sizeof err);
        ifd_alloc_fail_at(0);
        ifd_kserve_request_free(&r);
        if (rc == 0) return failures == 0;
        if (rc != 500 || !strstr(err, "out of memory")) {
            printf("  allocation %ld: %d %s\n", n, rc, err);
            failures++;
        }
    }
    return false;
}

static void test_alloc_failures(void) {
    /* escaped keys, several inputs, outputs and a long number take every allocation path */
    const char *b = "{\"id\":\"q\",\"inputs\":[{\"na\\u006de\":\"a\",\"shape\":[2],\"datatype\":\"FP64\","
                    "\"data\":[0.1111111111111111111111111111111111111111111111111111111111111111111"
                    "111111111111111111111111111111111111111111111111111111111111111111111111111111111,"
                    "2]},{\"name\":\"b\",\"shape\":[1],\"datatype\":\"INT8\",\"data\":[3]}],"
                    "\"outputs\":[{\"name\":\"o\"}]}";
    CHECK(alloc_sweep(b, NULL, 0), "alloc_failure_each_allocation: an out-of-memory error each time, "
          "then success");
    /* BYTES: JSON strings (one escaped, so the scratch buffer is used) and binary elements */
    static const char bin[] = "\2\0\0\0ab\0\0\0\0";
    const char *hdr = "{\"inputs\":[{\"name\":\"s\",\"shape\":[2],\"datatype\":\"BYTES\","
                      "\"data\":[\"x\\u0000y\",\"plain\"]},{\"name\":\"t\",\"shape\":[2],"
                      "\"datatype\":\"BYTES\",\"parameters\":{\"binary_data_size\":10}}]}";
    CHECK(alloc_sweep(hdr, bin, sizeof bin - 1), "alloc_failure_bytes_request: an out-of-memory "
          "error each time, then success");
}

/* ---- the common-form fast path ------------------------------------------------------------ */

/* Requests of the common form are read without jansson; with "inputs" spelled with an escape
 * the same request goes the general way. Both must give the same request, and the common form
 * two allocations for a small numeric input (the request's block and the tensor). */
static void test_common_form(void) {
    static char big[24000];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"inputs\":[{\"name\":\"big\",\"shape\":[2000],"
                                "\"datatype\":\"FP32\",\"data\":[");
    for (int i = 0; i < 2000; i++) n += (size_t)snprintf(big + n, sizeof big - n, i ? ",%d.5" : "%d.5", i);
    snprintf(big + n, sizeof big - n, "]}],\"id\":\"long\"}");
    const char *bodies[] = {
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,2,2],\"datatype\":\"FP32\",\"data\":[1.0,2.0,3.0,4.0]}]}",
        " {\n \"inputs\" : [ { \"data\" : [ [1, 2] , [3, 4] ] ,\"datatype\":\"INT64\", \"shape\" : [ 2 , 2 ] ,"
        "\"name\" : \"a b\" } ] } \r\n",
        "{\"id\":\"req-7\",\"parameters\":{\"binary_data_output\":false},\"inputs\":[{\"name\":\"x\","
        "\"shape\":[3],\"datatype\":\"FP16\",\"data\":[0.5,-2,\"NaN\"],\"parameters\":{}},{\"name\":\"m\","
        "\"shape\":[2],\"datatype\":\"BOOL\",\"data\":[true,false]}],\"outputs\":[{\"name\":\"y\","
        "\"parameters\":{\"binary_data\":true}},{\"name\":\"z\",\"parameters\":{\"binary_data_output\":false,"
        "\"binary_data\":false}},{\"parameters\":{},\"name\":\"w\"}]}",
        "{\"outputs\":[],\"inputs\":[{\"name\":\"s\",\"shape\":[3],\"datatype\":\"BYTES\","
        "\"data\":[\"plain\",\"t\\u00e9\\n\\\"q\\\"\",\"\"]},{\"name\":\"e\",\"shape\":[0,3],\"datatype\":\"UINT8\","
        "\"data\":[]}],\"parameters\":{\"binary_data_output\":true}}",
        "{\"inputs\":[{\"name\":\"i\",\"shape\":[],\"datatype\":\"INT32\",\"data\":[-7]},"
        "{\"name\":\"d\",\"shape\":[2],\"datatype\":\"FP64\",\"data\":[1e300,-0.0]}],\"id\":\"\"}",
        big,
    };
    bool all_same = true;
    for (size_t k = 0; k < IFD_ARRAY_LEN(bodies); k++) {
        const char *b = bodies[k];
        size_t len = strlen(b), glen = 0;
        char *general = general_form(b, len, &glen);
        ifd_kserve_request r1, r2;
        char e1[512] = "", e2[512] = "";
        int rc1 = parse(b, 1 << 20, &r1, e1, sizeof e1);
        int rc2 = ifd_kserve_request_parse(general, glen, 1 << 20, &r2, e2, sizeof e2);
        /* the general path keeps its json_t, the fast path has none */
        bool same = rc1 == 0 && rc2 == 0 && !r1.root && r2.root && same_request(&r1, &r2);
        if (!same) printf("  body %zu: %d %s / %d %s\n", k, rc1, e1, rc2, e2);
        all_same = all_same && same;
        ifd_kserve_request_free(&r1);
        ifd_kserve_request_free(&r2);
        free(general);
    }
    CHECK(all_same, "common_form_same_as_general: %zu requests read the same both ways",
          IFD_ARRAY_LEN(bodies));
    ifd_kserve_request r;
    char err[512];
    size_t before = ifd_alloc_count();
    int rc = parse(bodies[0], 1 << 20, &r, err, sizeof err);
    size_t allocs = ifd_alloc_count() - before;
    ifd_kserve_request_free(&r);
    CHECK(rc == 0 && allocs == 2, "common_form_allocations: %zu allocations for a 4-element input",
          allocs);
    /* errors found after the fast path's scan (a tensor allocated meanwhile) still come from
     * the general path, with its messages */
    rc = parse("{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}",
               1 << 20, &r, err, sizeof err);
    ifd_kserve_request_free(&r);
    CHECK(rc == 400 && strstr(err, "input 'x'"), "common_form_error_message: %d %s", rc, err);
    CHECK(alloc_sweep(bodies[2], NULL, 0), "alloc_failure_common_form: an out-of-memory error each "
          "time, then success");
}

/* ---- number output ------------------------------------------------------------------------ */

/* Element 0 of v as the encoder writes it. */
static const char *put_one(ifd_sbuf *b, ifd_dtype dt, const void *v) {
    b->len = 0;
    b->failed = false;
    ifd_kserve_put_element(b, dt, v, 0);
    return b->failed || !b->data ? "" : b->data;
}

/* The significant digits of the JSON number s (no leading or trailing zeros; "" for zero) and
 * the decimal exponent of the first; false when s is not in JSON number grammar. */
static bool number_digits(const char *s, bool *neg, char *digits, int *exp10) {
    char raw[64];
    int n = 0, int_digits = 0;
    *neg = *s == '-';
    s += *neg;
    if (*s == '0') raw[n++] = *s++, int_digits = 1;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9' && n < 60) raw[n++] = *s++, int_digits++;
    else return false;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9')) return false;
        while (*s >= '0' && *s <= '9' && n < 60) raw[n++] = *s++;
    }
    int e = 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        bool eneg = *s == '-';
        if (*s == '+' || *s == '-') s++;
        if (!(*s >= '0' && *s <= '9')) return false;
        while (*s >= '0' && *s <= '9') e = e * 10 + (*s++ - '0');
        if (eneg) e = -e;
    }
    if (*s) return false;
    int lead = 0;
    while (lead < n && raw[lead] == '0') lead++;
    while (n > lead && raw[n - 1] == '0') n--;
    memcpy(digits, raw + lead, (size_t)(n - lead));
    digits[n - lead] = 0;
    *exp10 = n > lead ? int_digits - 1 - lead + e : 0;
    return true;
}

/* What the encoder should print for (-1)^neg 0.digits * 10^(X+1): fixed notation for
 * -4 <= X < fixed_below, else d.ddde+XX (two exponent digits at least), as %g does. */
static void expected_text(char *out, size_t size, bool neg, const char *digits, int X,
                          int fixed_below) {
    static const char zeros[] = "0000000000000000000000000";
    int n = (int)strlen(digits);
    const char *sign = neg ? "-" : "";
    if (n == 0) snprintf(out, size, "%s0", sign);
    else if (X >= -4 && X < 0) snprintf(out, size, "%s0.%.*s%s", sign, -X - 1, zeros, digits);
    else if (X >= 0 && X < fixed_below && X >= n - 1)
        snprintf(out, size, "%s%s%.*s", sign, digits, X - n + 1, zeros);
    else if (X >= 0 && X < fixed_below)
        snprintf(out, size, "%s%.*s.%s", sign, X + 1, digits, digits + X + 1);
    else
        snprintf(out, size, "%s%c%s%s%se%c%02d", sign, digits[0], n > 1 ? "." : "", digits + 1, "",
                 X < 0 ? '-' : '+', X < 0 ? -X : X);
}

/* The reference: the fewest digits P for which printf's correctly rounded %.{P-1}e reads back
 * (strtof/strtod) as x, as text. */
static void reference_shortest(char *buf, size_t size, double x, bool single) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, size, "%.*e", p - 1, x);
        if (single ? strtof_l(buf, NULL, g_c) == (float)x : strtod_l(buf, NULL, g_c) == x) return;
    }
}

/* One finite value: the encoder's text reads back to the same bits and is the reference's
 * digits in the expected notation. */
static bool check_one_float(ifd_sbuf *b, double x, bool single, size_t *bad) {
    float f = (float)x;
    const char *got = single ? put_one(b, IFD_DTYPE_FLOAT, &f) : put_one(b, IFD_DTYPE_DOUBLE, &x);
    char ref[64], want[64], digits[64];
    bool neg;
    int X;
    bool same;
    if (single) {
        float back = strtof_l(got, NULL, g_c);
        same = !memcmp(&back, &f, 4);
    } else {
        double back = strtod_l(got, NULL, g_c);
        same = !memcmp(&back, &x, 8);
    }
    if (x == 0) {
        snprintf(want, sizeof want, "%s", signbit(x) ? "-0" : "0");
    } else {
        reference_shortest(ref, sizeof ref, x, single);
        if (!number_digits(ref, &neg, digits, &X)) snprintf(digits, sizeof digits, "?");
        expected_text(want, sizeof want, neg, digits, X, single ? 9 : 16);
    }
    bool ok = same && !strcmp(got, want);
    if (!ok && (*bad)++ < 5)
        printf("  %a: wrote %s, want %s%s\n", x, got, want, same ? "" : " (does not read back)");
    return ok;
}

static const double g_pow10_test[10] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double bits_double(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void test_number_output(bool quick) {
    ifd_sbuf b = {0};
    static const struct {
        float f;
        const char *want;
    } fl[] = {
        {0.1f, "0.1"}, {3.0f, "3"}, {-3.0f, "-3"}, {0.0f, "0"}, {-0.0f, "-0"}, {1e-5f, "1e-05"},
        {1e-4f, "0.0001"}, {0.00012345f, "0.00012345"}, {1e9f, "1e+09"}, {3e8f, "300000000"},
        {123456789.0f, "123456790"}, {16777216.0f, "16777216"}, {2.5f, "2.5"},
        {-1.5e-7f, "-1.5e-07"},
        {FLT_MAX, "3.4028235e+38"}, {FLT_MIN, "1.1754944e-38"}, {FLT_TRUE_MIN, "1e-45"},
        {1.0f / 3.0f, "0.33333334"}, {0.3f, "0.3"}, {1e38f, "1e+38"}, {65504.0f, "65504"},
    };
    bool ok = true;
    for (size_t i = 0; i < IFD_ARRAY_LEN(fl); i++) {
        const char *got = put_one(&b, IFD_DTYPE_FLOAT, &fl[i].f);
        if (strcmp(got, fl[i].want)) {
            printf("  %a: %s, want %s\n", (double)fl[i].f, got, fl[i].want);
            ok = false;
        }
    }
    CHECK(ok, "float_output_examples: 0.1f as 0.1 (was 0.100000001), 3.0f as 3, -0, 1e-05, "
              "1e+09, FLT_MAX, FLT_TRUE_MIN");
    static const struct {
        double d;
        const char *want;
    } db[] = {
        {0.1, "0.1"}, {1.0 / 3.0, "0.3333333333333333"}, {1e16, "1e+16"},
        {1e15, "1000000000000000"}, {4.9406564584124654e-324, "5e-324"}, {-1e-5, "-1e-05"},
        {DBL_MAX, "1.7976931348623157e+308"}, {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {123.456, "123.456"}, {1e22, "1e+22"}, {9007199254740993.0, "9007199254740992"},
        {-0.0, "-0"}, {5e-310, "5e-310"},
    };
    ok = true;
    for (size_t i = 0; i < IFD_ARRAY_LEN(db); i++) {
        const char *got = put_one(&b, IFD_DTYPE_DOUBLE, &db[i].d);
        if (strcmp(got, db[i].want)) {
            printf("  %a: %s, want %s\n", db[i].d, got, db[i].want);
            ok = false;
        }
    }
    CHECK(ok, "double_output_examples: 0.1, 1/3, 1e+16, 5e-324, DBL_MAX");
    float specials_f[] = {NAN, INFINITY, -INFINITY};
    double specials_d[] = {NAN, INFINITY, -INFINITY};
    const char *sw[] = {"\"NaN\"", "\"Infinity\"", "\"-Infinity\""};
    ok = true;
    for (int i = 0; i < 3; i++) {
        ok &= !strcmp(put_one(&b, IFD_DTYPE_FLOAT, &specials_f[i]), sw[i]);
        ok &= !strcmp(put_one(&b, IFD_DTYPE_DOUBLE, &specials_d[i]), sw[i]);
    }
    CHECK(ok, "float_output_nan_infinity_strings");

    /* floats: random bit patterns and the edges, each against the %.Pe + strtof search */
    size_t n_random = quick ? 500000 : 5000000, checked = 0, bad = 0;
    for (size_t i = 0; i < n_random; i++, checked++) check_one_float(&b, rnd_float(), true, &bad);
    for (int e = -149; e <= 127; e++) { /* powers of two and their neighbours */
        float p = ldexpf(1.0f, e);
        float near[] = {p, nextafterf(p, 0), nextafterf(p, INFINITY), -p};
        for (int k = 0; k < 4; k++, checked++)
            if (isfinite(near[k])) check_one_float(&b, near[k], true, &bad);
    }
    for (uint32_t m = 1; m < (1u << 23); m += 1 + m / 64, checked++) /* subnormals */
        check_one_float(&b, bits_float(m), true, &bad);
    for (int e = -46; e <= 38; e++) { /* powers of ten and their neighbours */
        char s[16];
        snprintf(s, sizeof s, "1e%d", e);
        float p = strtof_l(s, NULL, g_c);
        float near[] = {p, nextafterf(p, 0), nextafterf(p, INFINITY)};
        for (int k = 0; k < 3; k++, checked++)
            if (isfinite(near[k])) check_one_float(&b, near[k], true, &bad);
    }
    float edges[] = {0.0f, -0.0f, FLT_MIN, FLT_MAX, FLT_TRUE_MIN, -FLT_MAX, 1e-5f, 1e9f,
                     nextafterf(1e-5f, 0), nextafterf(1e-5f, 1), nextafterf(1e9f, 0),
                     nextafterf(1e9f, INFINITY), 9.9999997e-5f, nextafterf(1e-4f, 0), 1e-4f,
                     nextafterf(FLT_MIN, 0), nextafterf(FLT_MAX, 0), 16777217.0f, 8388607.5f};
    for (size_t i = 0; i < IFD_ARRAY_LEN(edges); i++, checked++)
        check_one_float(&b, edges[i], true, &bad);
    CHECK(bad == 0, "float_output_shortest: %zu floats (random bit patterns, powers of 2 and 10 "
          "and their neighbours, subnormals, FLT_MIN/MAX/TRUE_MIN, 0, -0) read back exactly and "
          "have the fewest digits that do, in %%g notation (%zu wrong)", checked, bad);

    /* doubles likewise, fewer */
    size_t n_double = quick ? 20000 : 200000;
    checked = bad = 0;
    for (size_t i = 0; i < n_double; i++, checked++) check_one_float(&b, rnd_double(), false, &bad);
    for (size_t i = 0; i < n_double / 4; i++, checked++) /* short decimals: 1-15 digits */
        check_one_float(&b, (double)(rnd() % 1000000) / g_pow10_test[rnd() % 10], false, &bad);
    for (int e = -1074; e <= 1023; e++) {
        double p = ldexp(1.0, e);
        double near[] = {p, nextafter(p, 0), nextafter(p, INFINITY)};
        for (int k = 0; k < 3; k++, checked++)
            if (isfinite(near[k])) check_one_float(&b, near[k], false, &bad);
    }
    for (uint64_t m = 1; m < (1ull << 52); m += 1 + m / 2, checked++) /* subnormals */
        check_one_float(&b, bits_double(m), false, &bad);
    double dedges[] = {DBL_MIN, DBL_MAX, -DBL_MAX, 4.9406564584124654e-324, 1e-5, 1e16, 1e15,
                       nextafter(1e16, 0), nextafter(1e-5, 0), nextafter(DBL_MIN, 0), 0.1, -0.0};
    for (size_t i = 0; i < IFD_ARRAY_LEN(dedges); i++, checked++)
        check_one_float(&b, dedges[i], false, &bad);
    CHECK(bad == 0, "double_output_shortest: %zu doubles (random bit patterns, short decimals, "
          "powers of 2 and neighbours, subnormals, DBL_MIN/MAX) read back exactly and have the "
          "fewest digits that do (%zu wrong)", checked, bad);

    /* FP16 and BF16: every bit pattern, written as the float it widens to */
    size_t wrong = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t hv = (uint16_t)h;
        uint32_t e = h >> 10 & 31, m = h & 1023;
        float fh = e == 31 ? (m ? NAN : INFINITY) : e ? ldexpf((float)(m | 1024), (int)e - 25)
                                                     : ldexpf((float)m, -24);
        if (h & 0x8000) fh = -fh;
        float fb = bits_float(h << 16);
        char want[64];
        snprintf(want, sizeof want, "%s", put_one(&b, IFD_DTYPE_FLOAT, &fh));
        if (strcmp(put_one(&b, IFD_DTYPE_FLOAT16, &hv), want) && wrong++ < 5)
            printf("  FP16 %04x: %s, want %s\n", h, b.data, want);
        snprintf(want, sizeof want, "%s", put_one(&b, IFD_DTYPE_FLOAT, &fb));
        if (strcmp(put_one(&b, IFD_DTYPE_BFLOAT16, &hv), want) && wrong++ < 5)
            printf("  BF16 %04x: %s, want %s\n", h, b.data, want);
    }
    CHECK(wrong == 0, "half_output_every_pattern: all 65536 FP16 and BF16 values as their float's "
          "shortest form (%zu differ)", wrong);

    /* integers against printf */
    wrong = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t u = rnd() >> (rnd() % 64);
        if (i < 4) u = (uint64_t[]){0, 1, UINT64_MAX, (uint64_t)INT64_MIN}[i];
        int64_t s = (int64_t)u;
        char want[32];
        int8_t i8 = (int8_t)u;
        int16_t i16 = (int16_t)u;
        int32_t i32 = (int32_t)u;
        uint8_t u8 = (uint8_t)u;
        uint16_t u16 = (uint16_t)u;
        uint32_t u32 = (uint32_t)u;
        struct {
            ifd_dtype dt;
            const void *v;
            long long sv;
            unsigned long long uv;
            bool is_signed;
        } c[] = {{IFD_DTYPE_INT8, &i8, i8, 0, true},      {IFD_DTYPE_INT16, &i16, i16, 0, true},
                 {IFD_DTYPE_INT32, &i32, i32, 0, true},   {IFD_DTYPE_INT64, &s, s, 0, true},
                 {IFD_DTYPE_UINT8, &u8, 0, u8, false},    {IFD_DTYPE_UINT16, &u16, 0, u16, false},
                 {IFD_DTYPE_UINT32, &u32, 0, u32, false}, {IFD_DTYPE_UINT64, &u, 0, u, false}};
        for (size_t k = 0; k < IFD_ARRAY_LEN(c); k++) {
            if (c[k].is_signed) snprintf(want, sizeof want, "%lld", c[k].sv);
            else snprintf(want, sizeof want, "%llu", c[k].uv);
            if (strcmp(put_one(&b, c[k].dt, c[k].v), want) && wrong++ < 5)
                printf("  dtype %d: %s, want %s\n", (int)c[k].dt, b.data, want);
        }
    }
    CHECK(wrong == 0, "integer_output: every integer dtype on 20000 values and the limits, as "
          "printf writes them (%zu differ)", wrong);

    /* the encoder's data array read back by the decoder: the same bits, NaN and infinities too */
    for (int single = 1; single >= 0; single--) {
        int64_t dims[1] = {4000};
        ifd_tensor *t = NULL;
        ifd_tensor_create(single ? IFD_DTYPE_FLOAT : IFD_DTYPE_DOUBLE, 1, dims, &t);
        unsigned char *data = t ? ifd_tensor_data(t) : NULL;
        for (int64_t i = 0; data && i < dims[0]; i++) {
            double v = i < 4 ? (double[]){NAN, INFINITY, -INFINITY, -0.0}[i]
                     : i % 2 ? rnd_double() : ((double)(rnd() % 2000000) - 1e6) / 4096.0;
            if (single) ((float *)data)[i] = i % 2 ? rnd_float() : (float)v;
            else ((double *)data)[i] = v;
        }
        ifd_sbuf body = {0};
        ifd_sbuf_puts(&body, "{\"inputs\":[");
        if (t) ifd_kserve_encode_tensor(&body, "x", t);
        ifd_sbuf_puts(&body, "]}");
        ifd_kserve_request r = {0};
        char err[256] = "";
        int rc = body.failed ? -1 : ifd_kserve_request_parse(body.data, body.len, (size_t)1 << 30,
                                                             &r, err, sizeof err);
        ok = t && rc == 0 && r.n_inputs == 1 &&
             ifd_tensor_nbytes(r.inputs[0].tensor) == ifd_tensor_nbytes(t);
        if (ok) { /* NaN compares by bits too: the encoder writes "NaN", the decoder's NAN */
            const unsigned char *back = ifd_tensor_cdata(r.inputs[0].tensor);
            size_t w = single ? 4 : 8;
            ok = !memcmp(back + w, data + w, ifd_tensor_nbytes(t) - w) &&
                 (single ? isnan(((const float *)back)[0]) : isnan(((const double *)back)[0]));
        }
        CHECK(ok, "output_reads_back_through_decoder_%s: 4000 elements, same bits (%d %s)",
              single ? "fp32" : "fp64", rc, rc > 0 ? err : "");
        ifd_kserve_request_free(&r);
        ifd_sbuf_free(&body);

        /* the buffer's cap holds with numbers formatted in place: exactly enough fits */
        ifd_sbuf full = {0};
        if (t) ifd_kserve_encode_tensor(&full, "x", t);
        ifd_sbuf fits = {.limit = full.len + 1}, short_by_one = {.limit = full.len};
        if (t) ifd_kserve_encode_tensor(&fits, "x", t);
        if (t) ifd_kserve_encode_tensor(&short_by_one, "x", t);
        CHECK(!full.failed && !fits.failed && fits.len == full.len &&
                  !memcmp(fits.data, full.data, full.len) && short_by_one.failed &&
                  short_by_one.len < full.len,
              "output_cap_%s: %zu bytes fit a cap of %zu, not one of %zu", single ? "fp32" : "fp64",
              full.len, full.len + 1, full.len);
        ifd_sbuf_free(&full);
        ifd_sbuf_free(&fits);
        ifd_sbuf_free(&short_by_one);
        ifd_tensor_free(t);
    }
    ifd_sbuf_free(&b);
}

/* D * 10^e as text for strtof/strtod. */
static void decimal_text(char *buf, uint64_t D, int e) {
    char tmp[24];
    int n = 0;
    do tmp[n++] = (char)('0' + D % 10);
    while (D /= 10);
    int k = 0;
    while (n) buf[k++] = tmp[--n];
    buf[k++] = 'e';
    if (e < 0) buf[k++] = '-', e = -e;
    n = 0;
    do tmp[n++] = (char)('0' + e % 10);
    while (e /= 10);
    while (n) buf[k++] = tmp[--n];
    buf[k] = 0;
}

/* `test_kserve_json exhaustive [FROM TO]`: every positive finite float with bits in [FROM, TO)
 * (hex; all of them by default, then each negative one as "-" and its positive's text), with
 * cheaper checks than the reference search so that 2^31 values take minutes: the text is in
 * the expected notation and reads back; no decimal with one digit fewer reads back (the two
 * that bracket the value are the only candidates), or at a power of two, where the interval
 * is lopsided, one does but the value rounded to that many digits does not (so %g's count,
 * the rule here, is one more than the shortest decimal's); and its digits are the value correctly
 * rounded (the midpoints D +- 1/2 lie on either side of it, decided by strtod, with the
 * printf reference where strtod cannot tell). */
static void test_float_exhaustive(uint32_t from, uint32_t to) {
    ifd_sbuf b = {0}, nb = {0};
    uint64_t count = 0, bad = 0, unsure = 0, lopsided = 0;
    for (uint32_t u = from; u < to && u < 0x7f800000u; u++) {
        float f = bits_float(u);
        char text[64], digits[64], want[64], s[48];
        snprintf(text, sizeof text, "%s", put_one(&b, IFD_DTYPE_FLOAT, &f));
        bool neg, ok = true;
        int X;
        float back = strtof_l(text, NULL, g_c);
        if (memcmp(&back, &f, 4) || !number_digits(text, &neg, digits, &X)) {
            ok = false;
        } else if (u) {
            expected_text(want, sizeof want, false, digits, X, 9);
            int P = (int)strlen(digits);
            uint64_t D = strtoull(digits, NULL, 10);
            int e = X - P + 1; /* f ~ D * 10^e */
            ok = !strcmp(text, want);
            for (int k = 0; ok && P > 1 && k < 2; k++) { /* one digit fewer */
                decimal_text(s, D / 10 + (uint64_t)k, e + 1);
                if (strtof_l(s, NULL, g_c) != f) continue;
                /* it reads back but is not f rounded to P - 1 digits, which does not (the
                 * rule here, %g's): only where the interval is lopsided, at a power of two */
                snprintf(s, sizeof s, "%.*e", P - 2, (double)f);
                ok = (u & 0x7fffffu) == 0 && strtof_l(s, NULL, g_c) != f;
                lopsided += ok;
                break;
            }
            for (int k = 0; ok && k < 2; k++) { /* (2D -+ 1) * 5 * 10^(e-1): the midpoints */
                decimal_text(s, (2 * D + (k ? 1 : -1)) * 5, e - 1);
                double mid = strtod_l(s, NULL, g_c);
                if (mid == (double)f) { /* too close for a double to tell: ask printf */
                    unsure++;
                    snprintf(s, sizeof s, "%.*e", P - 1, (double)f);
                    ok = strtod_l(s, NULL, g_c) == strtod_l(text, NULL, g_c);
                } else {
                    ok = k ? mid > (double)f : mid < (double)f;
                }
            }
        }
        float nf = -f;
        const char *ntext = put_one(&nb, IFD_DTYPE_FLOAT, &nf);
        ok = ok && ntext[0] == '-' && !strcmp(ntext + 1, text);
        count += 2;
        if (!ok && bad++ < 10) printf("  %08x (%a): %s\n", u, (double)f, text);
    }
    CHECK(bad == 0, "float_output_exhaustive: %llu floats with bits in [%08x, %08x) and their "
          "negatives: shortest, correctly rounded, read back (%llu wrong, %llu midpoints decided "
          "by printf, %llu powers of two with a shorter decimal that is not the nearest)",
          (unsigned long long)count, from, to, (unsigned long long)bad,
          (unsigned long long)unsure, (unsigned long long)lopsided);
    ifd_sbuf_free(&b);
    ifd_sbuf_free(&nb);
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && !strcmp(argv[1], "quick");
    g_c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (argc > 1 && !strcmp(argv[1], "exhaustive")) { /* a one-off check, minutes long */
        uint32_t from = argc > 3 ? (uint32_t)strtoul(argv[2], NULL, 16) : 0;
        uint32_t to = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 16) : 0x7f800000u;
        test_float_exhaustive(from, to);
        printf("%d passed, %d failed\n", g_pass, g_fail);
        return g_fail ? 1 : 0;
    }
    test_integers();
    test_floats();
    test_request_errors();
    test_request_forms();
    test_bytes_decode();
    test_bytes_binary();
    test_bytes_encode();
    test_batch_copies();
    test_against_jansson();
    test_alloc_failures();
    test_common_form();
    test_numbers(quick);
    test_number_output(quick);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
