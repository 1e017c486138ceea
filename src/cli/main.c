/* inferd: entry point and subcommand dispatch. */
#include "cli.h"

#include <string.h>

int ifd_cli_serve(int argc, char **argv); /* cli/serve.c */

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} g_commands[] = {
    {"run", ifd_cli_run, "run a model on .npy/.pb inputs, write .npy outputs"},
    {"bench", ifd_cli_bench, "measure inference latency (median, p90)"},
    {"inspect", ifd_cli_inspect, "describe a model: inputs, outputs, opsets, operators, size, FLOPs"},
    {"serve", ifd_cli_serve, "serve a model repository over HTTP (KServe v2 and TF Serving REST)"},
    {"quantize", ifd_cli_quantize, "int8-quantize a model (dynamic, or static QDQ with calibration)"},
    {"prune", ifd_cli_prune, "prune a model (unstructured, 2:4 or channel pruning)"},
    {"eval", ifd_cli_eval, "compare a candidate model with a base: size, latency, accuracy, errors"},
    {"baseline", ifd_cli_baseline, "record a model's drift baseline from sample inputs"},
};

static void usage(FILE *f) {
    fprintf(f, "inferd %s: ONNX model runtime and server\n\nusage: inferd COMMAND [options]\n\n",
            IFD_VERSION_STRING);
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        fprintf(f, "  %-9s %s\n", g_commands[i].name, g_commands[i].help);
    fprintf(f, "\nRun 'inferd COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("inferd %s\n", IFD_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        if (!strcmp(argv[1], g_commands[i].name)) return g_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "inferd: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
