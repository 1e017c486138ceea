/* inferd prune: magnitude pruning of a float ONNX model (opt/prune). */
#include "cli.h"

#include "opt/prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_EXCLUDED 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd prune IN.onnx OUT.onnx --sparsity S [options]\n"
            "\n"
            "Writes a pruned version of IN.onnx that inferd and ONNX Runtime both run.\n"
            "\n"
            "  --sparsity S            fraction to remove, in (0, 1): of the weights\n"
            "                          (unstructured), or of each layer's output channels\n"
            "                          (channel); 2:4 is always 0.5 and may leave it out\n"
            "  --pattern unstructured|2:4|channel\n"
            "                          unstructured (default): zero the smallest |w|, the file\n"
            "                          keeps its dense layout (it compresses, it does not\n"
            "                          shrink); 2:4: keep the 2 largest of every 4 weights along\n"
            "                          the reduction axis; channel: remove the output channels\n"
            "                          with the smallest L1 norm and rewrite their consumers\n"
            "  --scope layer|global    unstructured: the smallest fraction S of each weight\n"
            "                          (layer, default) or of all of them together (global)\n"
            "  --exclude NODE          leave this node alone (repeatable)\n"
            "  --json                  print the report as one JSON object\n");
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

static const char *pattern_name(ifd_prune_pattern p) {
    return p == IFD_PRUNE_2_4 ? "2:4" : p == IFD_PRUNE_CHANNEL ? "channel" : "unstructured";
}

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

static void print_json(const char *in, const char *out, const ifd_prune_options *o,
                       const ifd_prune_result *r) {
    printf("{\"input\": ");
    json_string(in);
    printf(", \"output\": ");
    json_string(out);
    printf(", \"pattern\": \"%s\", \"scope\": \"%s\", \"sparsity\": %g", pattern_name(o->pattern),
           o->scope == IFD_PRUNE_SCOPE_GLOBAL ? "global" : "layer",
           o->pattern == IFD_PRUNE_2_4 ? 0.5 : o->sparsity);
    printf(", \"bytes_in\": %zu, \"bytes_out\": %zu, \"size_ratio\": %.6f", r->bytes_in,
           r->bytes_out, r->bytes_in ? (double)r->bytes_out / (double)r->bytes_in : 0.0);
    printf(", \"params_before\": %lld, \"params_after\": %lld, \"nonzero_before\": %lld, "
           "\"nonzero_after\": %lld, \"pruned\": %zu, \"layers\": [",
           (long long)r->params_before, (long long)r->params_after, (long long)r->nonzero_before,
           (long long)r->nonzero_after, r->n_pruned);
    for (size_t i = 0; i < r->n_layers; i++) {
        const ifd_prune_layer *l = &r->layers[i];
        printf("%s{\"name\": ", i ? ", " : "");
        json_string(l->name);
        printf(", \"op\": \"%s\", \"weight\": ", l->op_type);
        json_string(l->weight);
        printf(", \"pruned\": %s", l->pruned ? "true" : "false");
        if (l->reason) {
            printf(", \"reason\": ");
            json_string(l->reason);
        }
        printf(", \"params_before\": %lld, \"params_after\": %lld", (long long)l->params_before,
               (long long)l->params_after);
        if (o->pattern == IFD_PRUNE_CHANNEL)
            printf(", \"channels_before\": %lld, \"channels_after\": %lld",
                   (long long)l->channels_before, (long long)l->channels_after);
        else if (l->pruned)
            printf(", \"nonzero_before\": %lld, \"nonzero_after\": %lld, \"sparsity\": %.6f",
                   (long long)l->nonzero_before, (long long)l->nonzero_after,
                   1.0 - ratio(l->nonzero_after, l->params_before));
        printf("}");
    }
    printf("]}\n");
}

static void print_text(const char *in, const char *out, const ifd_prune_options *o,
                       const ifd_prune_result *r) {
    printf("%s: pruned %zu of %zu layers (%s", out, r->n_pruned, r->n_layers,
           pattern_name(o->pattern));
    if (o->pattern != IFD_PRUNE_2_4) printf(", sparsity %g", o->sparsity);
    if (o->pattern == IFD_PRUNE_UNSTRUCTURED)
        printf(", %s scope", o->scope == IFD_PRUNE_SCOPE_GLOBAL ? "global" : "per-layer");
    printf(")\n");
    printf("size: %zu -> %zu bytes (%.1f%% of %s)\n", r->bytes_in, r->bytes_out,
           100.0 * ratio((int64_t)r->bytes_out, (int64_t)r->bytes_in), in);
    printf("parameters: %lld -> %lld; nonzero: %lld -> %lld (%.1f%%)\n",
           (long long)r->params_before, (long long)r->params_after, (long long)r->nonzero_before,
           (long long)r->nonzero_after, 100.0 * ratio(r->nonzero_after, r->nonzero_before));
    if (o->pattern != IFD_PRUNE_CHANNEL)
        printf("the layout stays dense: the file compresses, it does not shrink "
               "(docs/PRUNE.md)\n");
    for (size_t i = 0; i < r->n_layers; i++) {
        const ifd_prune_layer *l = &r->layers[i];
        printf("  %-6s %-40s ", l->op_type, l->name);
        if (!l->pruned)
            printf("kept: %s\n", l->reason ? l->reason : "");
        else if (o->pattern == IFD_PRUNE_CHANNEL)
            printf("channels %lld -> %lld, parameters %lld -> %lld\n",
                   (long long)l->channels_before, (long long)l->channels_after,
                   (long long)l->params_before, (long long)l->params_after);
        else
            printf("sparsity %.1f%% (%lld of %lld nonzero)\n",
                   100.0 * (1.0 - ratio(l->nonzero_after, l->params_before)),
                   (long long)l->nonzero_after, (long long)l->params_before);
    }
}

int ifd_cli_prune(int argc, char **argv) {
    ifd_prune_options o;
    ifd_prune_result *r = NULL;
    const char *paths[2] = {NULL, NULL};
    const char *exclude[MAX_EXCLUDED];
    int n_paths = 0;
    bool json = false, have_sparsity = false;
    ifd_prune_options_init(&o);
    o.exclude = exclude;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--sparsity") || !strcmp(a, "--pattern") ||
                     !strcmp(a, "--scope") || !strcmp(a, "--exclude");
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (takes && !v) {
            fprintf(stderr, "inferd prune: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--sparsity")) {
            char *end;
            o.sparsity = strtod(v, &end);
            if (*end || end == v || !(o.sparsity > 0 && o.sparsity < 1)) {
                fprintf(stderr, "inferd prune: --sparsity '%s': expected a number in (0, 1)\n",
                        v);
                return 2;
            }
            have_sparsity = true;
        } else if (!strcmp(a, "--pattern")) {
            if (!strcmp(v, "unstructured")) o.pattern = IFD_PRUNE_UNSTRUCTURED;
            else if (!strcmp(v, "2:4")) o.pattern = IFD_PRUNE_2_4;
            else if (!strcmp(v, "channel")) o.pattern = IFD_PRUNE_CHANNEL;
            else {
                fprintf(stderr,
                        "inferd prune: --pattern '%s': expected unstructured, 2:4 or channel\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--scope")) {
            if (!strcmp(v, "layer")) o.scope = IFD_PRUNE_SCOPE_LAYER;
            else if (!strcmp(v, "global")) o.scope = IFD_PRUNE_SCOPE_GLOBAL;
            else {
                fprintf(stderr, "inferd prune: --scope '%s': expected layer or global\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--exclude")) {
            if (o.n_exclude == MAX_EXCLUDED) {
                fprintf(stderr, "inferd prune: more than %d --exclude options\n", MAX_EXCLUDED);
                return 2;
            }
            exclude[o.n_exclude++] = v;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "inferd prune: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        } else {
            if (n_paths == 2) {
                fprintf(stderr, "inferd prune: unexpected argument '%s'\n", a);
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
    if (!have_sparsity && o.pattern != IFD_PRUNE_2_4) {
        fprintf(stderr, "inferd prune: --sparsity S is required (a number in (0, 1))\n");
        return 2;
    }
    /* Same file in and out would replace the input before anything checked the output. */
    struct stat si, so;
    if (stat(paths[0], &si) == 0 && stat(paths[1], &so) == 0 && si.st_dev == so.st_dev &&
        si.st_ino == so.st_ino) {
        fprintf(stderr, "inferd prune: the output '%s' is the input file\n", paths[1]);
        return 2;
    }
    ifd_status st = ifd_prune_file(paths[0], paths[1], &o, &r);
    if (st) {
        ifd_prune_result_free(r);
        return ifd_cli_error("prune", st);
    }
    if (json)
        print_json(paths[0], paths[1], &o, r);
    else
        print_text(paths[0], paths[1], &o, r);
    ifd_prune_result_free(r);
    return 0;
}
