/* inferd inspect MODEL.onnx [--json] [--dim NAME=V]...
 * Inputs, outputs, opsets, operator histogram, parameter count, file size, and FLOPs
 * estimated by running the model once on zeros (symbolic dims 1 unless set with --dim). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f, "usage: inferd inspect MODEL.onnx [--json] [--dim NAME=VALUE]...\n");
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void print_io(const ifd_io_info *info, bool json) {
    if (json) {
        printf("{\"name\": ");
        json_str(info->name);
        printf(", \"dtype\": \"%s\", \"shape\": ", ifd_dtype_name(info->dtype));
        if (info->rank < 0) {
            printf("null}");
            return;
        }
        printf("[");
        for (int d = 0; d < info->rank; d++) {
            if (d) printf(", ");
            if (info->dims[d] >= 0) printf("%lld", (long long)info->dims[d]);
            else if (info->dim_names[d] && info->dim_names[d][0]) json_str(info->dim_names[d]);
            else printf("null");
        }
        printf("]}");
        return;
    }
    printf("  %-24s %-8s ", info->name, ifd_dtype_name(info->dtype));
    if (info->rank < 0) {
        printf("(unknown shape)\n");
        return;
    }
    printf("[");
    for (int d = 0; d < info->rank; d++) {
        if (d) printf(", ");
        if (info->dims[d] >= 0) printf("%lld", (long long)info->dims[d]);
        else printf("%s", info->dim_names[d] && info->dim_names[d][0] ? info->dim_names[d] : "?");
    }
    printf("]\n");
}

int ifd_cli_inspect(int argc, char **argv) {
    const char *model_path = NULL;
    bool json = false;
    ifd_cli_dims dims = {0};
    ifd_model *model = NULL;
    ifd_session *session = NULL;
    ifd_cli_inputs in = {0};
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--dim") && i + 1 < argc) {
            if (ifd_cli_add_dim(&dims, argv[++i])) return 2;
        } else if (argv[i][0] != '-' && !model_path) {
            model_path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!model_path) {
        usage(stderr);
        return 2;
    }
    ifd_status st = ifd_model_load_file(model_path, &model);
    if (st) return ifd_cli_error(model_path, st);
    struct stat sb;
    long long file_size = stat(model_path, &sb) == 0 ? (long long)sb.st_size : -1;
    ifd_model_summary sum;
    ifd_model_summary_get(model, &sum);
    /* FLOPs: one run on zeros */
    long long macs = -1;
    const char *flops_note = "";
    ifd_session_options opts;
    ifd_session_options_init(&opts);
    opts.num_threads = 1;
    if (ifd_session_create(model, &opts, &session) == IFD_OK &&
        ifd_cli_fill_missing_inputs(&in, session, &dims, true) == 0) {
        size_t n_out = ifd_session_output_count(session);
        ifd_tensor **outs = calloc(n_out ? n_out : 1, sizeof *outs);
        if (outs && ifd_session_run(session, in.n, (const char *const *)in.names,
                                    (const ifd_tensor *const *)in.tensors, n_out, NULL,
                                    outs) == IFD_OK)
            macs = ifd_session_last_run_macs(session);
        else
            flops_note = ifd_last_error();
        for (size_t k = 0; outs && k < n_out; k++) ifd_tensor_free(outs[k]);
        free(outs);
    } else {
        flops_note = ifd_last_error();
    }
    if (json) {
        printf("{\"model\": ");
        json_str(model_path);
        printf(", \"file_bytes\": %lld, \"ir_version\": %lld, \"producer\": ", file_size,
               (long long)sum.ir_version);
        json_str(sum.producer_name ? sum.producer_name : "");
        printf(", \"opsets\": {");
        for (size_t i = 0; i < sum.opset_count; i++) {
            printf("%s", i ? ", " : "");
            json_str(sum.opset_domains[i][0] ? sum.opset_domains[i] : "ai.onnx");
            printf(": %lld", (long long)sum.opset_versions[i]);
        }
        printf("}, \"inputs\": [");
        for (size_t i = 0; i < ifd_model_input_count(model); i++) {
            ifd_io_info info;
            ifd_model_input_info(model, i, &info);
            printf("%s", i ? ", " : "");
            print_io(&info, true);
        }
        printf("], \"outputs\": [");
        for (size_t i = 0; i < ifd_model_output_count(model); i++) {
            ifd_io_info info;
            ifd_model_output_info(model, i, &info);
            printf("%s", i ? ", " : "");
            print_io(&info, true);
        }
        printf("], \"nodes\": %zu, \"operators\": {", sum.node_count);
        for (size_t i = 0; i < ifd_model_op_kinds(model); i++) {
            const char *op, *dom;
            size_t count;
            ifd_model_op_kind(model, i, &op, &dom, &count);
            char full[256];
            snprintf(full, sizeof full, "%s%s%s", dom && dom[0] ? dom : "", dom && dom[0] ? ":" : "", op);
            printf("%s", i ? ", " : "");
            json_str(full);
            printf(": %zu", count);
        }
        printf("}, \"parameters\": %lld, \"parameter_bytes\": %lld, \"flops\": ",
               (long long)sum.param_count, (long long)sum.param_bytes);
        if (macs >= 0) printf("%lld", macs * 2);
        else printf("null");
        printf("}\n");
    } else {
        printf("model:      %s (%lld bytes)\n", model_path, file_size);
        printf("producer:   %s %s, IR version %lld\n", sum.producer_name ? sum.producer_name : "",
               sum.producer_version ? sum.producer_version : "", (long long)sum.ir_version);
        printf("opsets:    ");
        for (size_t i = 0; i < sum.opset_count; i++)
            printf(" %s=%lld", sum.opset_domains[i][0] ? sum.opset_domains[i] : "ai.onnx",
                   (long long)sum.opset_versions[i]);
        printf("\ninputs:\n");
        for (size_t i = 0; i < ifd_model_input_count(model); i++) {
            ifd_io_info info;
            ifd_model_input_info(model, i, &info);
            print_io(&info, false);
        }
        printf("outputs:\n");
        for (size_t i = 0; i < ifd_model_output_count(model); i++) {
            ifd_io_info info;
            ifd_model_output_info(model, i, &info);
            print_io(&info, false);
        }
        printf("parameters: %lld (%lld bytes)\n", (long long)sum.param_count, (long long)sum.param_bytes);
        if (macs >= 0)
            printf("FLOPs:      %.4g per run (%lld multiply-adds; symbolic dims = 1 unless --dim)\n",
                   (double)macs * 2, macs);
        else
            printf("FLOPs:      unknown (%s)\n", flops_note);
        printf("operators:  %zu nodes\n", sum.node_count);
        for (size_t i = 0; i < ifd_model_op_kinds(model); i++) {
            const char *op, *dom;
            size_t count;
            ifd_model_op_kind(model, i, &op, &dom, &count);
            printf("  %6zu  %s%s%s\n", count, dom && dom[0] ? dom : "", dom && dom[0] ? ":" : "", op);
        }
    }
    rc = 0;
    ifd_cli_inputs_free(&in);
    ifd_session_free(session);
    ifd_model_free(model);
    return rc;
}
