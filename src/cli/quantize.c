/* inferd quantize: float ONNX model -> int8 ONNX model (opt/quantize). */
#include "cli.h"

#include "opt/quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_NAMED_NODES 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd quantize IN.onnx OUT.onnx [options]\n"
            "\n"
            "Writes an int8 version of IN.onnx that inferd and ONNX Runtime both run.\n"
            "\n"
            "  --mode dynamic|static   dynamic (default): int8 weights, activations quantized at\n"
            "                          run time; static: QDQ with activation ranges calibrated\n"
            "                          on --calibration data\n"
            "  --calibration DIR       sample inputs (.npy; see docs/QUANTIZE.md for the layout)\n"
            "  --per-channel           one weight scale per output channel (default)\n"
            "  --per-tensor            one weight scale per tensor\n"
            "  --method minmax|percentile|entropy   static calibration method (default minmax)\n"
            "  --percentile P          for --method percentile (default 99.99)\n"
            "  --exclude NODE          keep this node float (repeatable)\n"
            "  --node NODE             quantize only the named nodes (repeatable); a named node\n"
            "                          that cannot be quantized is an error\n"
            "  --include-first-last    static: also quantize the first and last layers\n"
            "  --report                error of each quantized node and cosine similarity of the\n"
            "                          outputs, on the calibration data\n"
            "  --threads N             threads for calibration and report runs (default: all)\n"
            "  --json                  print the summary as one JSON object\n");
}

static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* JSON has no Inf/NaN: print null for them. */
static void json_number(double v) {
    if (isfinite(v))
        printf("%.9g", v);
    else
        printf("null");
}

static const char *mode_name(ifd_quantize_mode m) {
    return m == IFD_QUANTIZE_STATIC ? "static" : "dynamic";
}

static const char *method_name(ifd_calibration_method m) {
    return m == IFD_CALIBRATE_PERCENTILE ? "percentile"
           : m == IFD_CALIBRATE_ENTROPY  ? "entropy"
                                         : "minmax";
}

static void print_json(const char *in, const char *out, const ifd_quantize_options *o,
                       const ifd_quantize_result *r) {
    printf("{\"input\": ");
    json_string(in);
    printf(", \"output\": ");
    json_string(out);
    printf(", \"mode\": \"%s\", \"per_channel\": %s", mode_name(o->mode),
           o->per_channel ? "true" : "false");
    if (o->mode == IFD_QUANTIZE_STATIC) {
        printf(", \"method\": \"%s\"", method_name(o->method));
        if (o->method == IFD_CALIBRATE_PERCENTILE) printf(", \"percentile\": %g", o->percentile);
    }
    printf(", \"opset_in\": %lld, \"opset_out\": %lld, \"bytes_in\": %zu, \"bytes_out\": %zu, "
           "\"size_ratio\": ",
           (long long)r->opset_in, (long long)r->opset_out, r->bytes_in, r->bytes_out);
    json_number(r->bytes_in ? (double)r->bytes_out / (double)r->bytes_in : 0);
    printf(", \"quantized\": %zu, \"calibration_batches\": %zu, \"nodes\": [", r->n_quantized,
           r->calibration_batches);
    for (size_t i = 0; i < r->n_nodes; i++) {
        const ifd_quantize_node *n = &r->nodes[i];
        printf("%s{\"name\": ", i ? ", " : "");
        json_string(n->name);
        printf(", \"op\": \"%s\", \"quantized\": %s", n->op_type, n->quantized ? "true" : "false");
        if (n->reason) {
            printf(", \"reason\": ");
            json_string(n->reason);
        }
        if (n->has_error) {
            printf(", \"max_abs_error\": ");
            json_number(n->max_abs_error);
            printf(", \"rel_error\": ");
            json_number(n->rel_error);
        }
        printf("}");
    }
    printf("]");
    if (r->n_outputs) {
        printf(", \"outputs\": [");
        for (size_t i = 0; i < r->n_outputs; i++) {
            printf("%s{\"name\": ", i ? ", " : "");
            json_string(r->outputs[i].name);
            printf(", \"cosine\": ");
            json_number(r->outputs[i].cosine);
            printf(", \"max_abs_error\": ");
            json_number(r->outputs[i].max_abs_error);
            printf("}");
        }
        printf("]");
    }
    printf("}\n");
}

static void print_text(const char *in, const char *out, const ifd_quantize_options *o,
                       const ifd_quantize_result *r, bool report) {
    printf("%s: quantized %zu of %zu nodes (%s, %s", out, r->n_quantized, r->n_nodes,
           mode_name(o->mode), o->per_channel ? "per-channel" : "per-tensor");
    if (o->mode == IFD_QUANTIZE_STATIC) printf(", %s calibration", method_name(o->method));
    printf(")\n");
    printf("size: %zu -> %zu bytes (%.1f%% of %s)\n", r->bytes_in, r->bytes_out,
           r->bytes_in ? 100.0 * (double)r->bytes_out / (double)r->bytes_in : 0.0, in);
    if (r->opset_out != r->opset_in)
        printf("opset: %lld -> %lld\n", (long long)r->opset_in, (long long)r->opset_out);
    for (size_t i = 0; i < r->n_nodes; i++) {
        const ifd_quantize_node *n = &r->nodes[i];
        printf("  %-7s %-40s %s", n->op_type, n->name, n->quantized ? "int8" : "float: ");
        if (!n->quantized) printf("%s", n->reason ? n->reason : "");
        if (n->has_error)
            printf("  max abs error %.4g, relative error %.4g", n->max_abs_error, n->rel_error);
        printf("\n");
    }
    if (report) {
        printf("report on %zu calibration batch%s:\n", r->calibration_batches,
               r->calibration_batches == 1 ? "" : "es");
        for (size_t i = 0; i < r->n_outputs; i++)
            printf("  output %-32s cosine similarity %.6f, max abs error %.4g\n",
                   r->outputs[i].name, r->outputs[i].cosine, r->outputs[i].max_abs_error);
    }
}

int ifd_cli_quantize(int argc, char **argv) {
    ifd_quantize_options o;
    ifd_quantize_result *r = NULL;
    const char *paths[2] = {NULL, NULL};
    const char *exclude[MAX_NAMED_NODES], *nodes[MAX_NAMED_NODES];
    int n_paths = 0;
    bool json = false;
    ifd_quantize_options_init(&o);
    o.exclude = exclude;
    o.nodes = nodes;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--mode") || !strcmp(a, "--calibration") ||
                     !strcmp(a, "--method") || !strcmp(a, "--percentile") ||
                     !strcmp(a, "--exclude") || !strcmp(a, "--node") || !strcmp(a, "--threads");
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (takes && !v) {
            fprintf(stderr, "inferd quantize: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "dynamic")) o.mode = IFD_QUANTIZE_DYNAMIC;
            else if (!strcmp(v, "static")) o.mode = IFD_QUANTIZE_STATIC;
            else {
                fprintf(stderr, "inferd quantize: --mode '%s': expected dynamic or static\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--calibration")) {
            o.calibration_dir = v;
        } else if (!strcmp(a, "--method")) {
            if (!strcmp(v, "minmax")) o.method = IFD_CALIBRATE_MINMAX;
            else if (!strcmp(v, "percentile")) o.method = IFD_CALIBRATE_PERCENTILE;
            else if (!strcmp(v, "entropy")) o.method = IFD_CALIBRATE_ENTROPY;
            else {
                fprintf(stderr,
                        "inferd quantize: --method '%s': expected minmax, percentile or entropy\n",
                        v);
                return 2;
            }
        } else if (!strcmp(a, "--percentile")) {
            char *end;
            o.percentile = strtod(v, &end);
            if (*end || end == v || !(o.percentile > 0 && o.percentile <= 100)) {
                fprintf(stderr, "inferd quantize: --percentile '%s': expected a number in (0, 100]\n",
                        v);
                return 2;
            }
        } else if (!strcmp(a, "--exclude") || !strcmp(a, "--node")) {
            bool ex = !strcmp(a, "--exclude");
            size_t *n = ex ? &o.n_exclude : &o.n_nodes;
            if (*n == MAX_NAMED_NODES) {
                fprintf(stderr, "inferd quantize: more than %d %s options\n", MAX_NAMED_NODES, a);
                return 2;
            }
            (ex ? exclude : nodes)[(*n)++] = v;
        } else if (!strcmp(a, "--threads")) {
            long long t;
            if (!ifd_cli_parse_int(v, 0, 1024, &t)) {
                fprintf(stderr, "inferd quantize: --threads '%s': expected 0 to 1024\n", v);
                return 2;
            }
            o.num_threads = (int)t;
        } else if (!strcmp(a, "--per-channel")) {
            o.per_channel = true;
        } else if (!strcmp(a, "--per-tensor")) {
            o.per_channel = false;
        } else if (!strcmp(a, "--include-first-last")) {
            o.include_first_last = true;
        } else if (!strcmp(a, "--report")) {
            o.report = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "inferd quantize: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        } else {
            if (n_paths == 2) {
                fprintf(stderr, "inferd quantize: unexpected argument '%s'\n", a);
                return 2;
            }
            paths[n_paths++] = a;
        }
        if (takes) i++;
    }
    if (n_paths != 2) {
        usage(stderr);
        return 2;
    }
    if (o.mode == IFD_QUANTIZE_DYNAMIC && o.method != IFD_CALIBRATE_MINMAX) {
        fprintf(stderr, "inferd quantize: --method applies to --mode static only\n");
        return 2;
    }
    /* Same file in and out would replace the input before anything checked the output. */
    struct stat si, so;
    if (stat(paths[0], &si) == 0 && stat(paths[1], &so) == 0 && si.st_dev == so.st_dev &&
        si.st_ino == so.st_ino) {
        fprintf(stderr, "inferd quantize: the output '%s' is the input file\n", paths[1]);
        return 2;
    }
    ifd_status st = ifd_quantize_file(paths[0], paths[1], &o, &r);
    if (st) {
        ifd_quantize_result_free(r);
        return ifd_cli_error("quantize", st);
    }
    if (json)
        print_json(paths[0], paths[1], &o, r);
    else
        print_text(paths[0], paths[1], &o, r, o.report);
    ifd_quantize_result_free(r);
    return 0;
}
