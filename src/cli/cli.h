/* cli/: the inferd command-line tool. Each subcommand is one file; they use only the public
 * API (include/inferd). */
#ifndef IFD_CLI_H
#define IFD_CLI_H

#include "inferd/inferd.h"

#include <stdbool.h>
#include <stdio.h>

int ifd_cli_run(int argc, char **argv);
int ifd_cli_bench(int argc, char **argv);
int ifd_cli_inspect(int argc, char **argv);
int ifd_cli_quantize(int argc, char **argv);
int ifd_cli_eval(int argc, char **argv);
int ifd_cli_prune(int argc, char **argv);
int ifd_cli_baseline(int argc, char **argv);

/* Shared by subcommands (cli/common.c). */
typedef struct ifd_cli_inputs {
    size_t n;
    char *names[64];
    ifd_tensor *tensors[64];
} ifd_cli_inputs;

/* Parse "NAME=FILE" (or "FILE" for a single-input model) and read .npy or .pb. */
int ifd_cli_add_input(ifd_cli_inputs *in, const ifd_session *session, const char *spec);
void ifd_cli_inputs_free(ifd_cli_inputs *in);
/* Symbolic dims given with --dim NAME=VALUE. */
typedef struct ifd_cli_dims {
    size_t n;
    char names[32][128];
    int64_t values[32];
} ifd_cli_dims;
int ifd_cli_add_dim(ifd_cli_dims *dims, const char *spec);
/* Fill every input not given with random data of its declared shape. */
int ifd_cli_fill_missing_inputs(ifd_cli_inputs *in, const ifd_session *session,
                                const ifd_cli_dims *dims, bool zeros);
/* Load model_path, create a session with `threads` worker threads (0: all cores) and bind the
 * -i specs. Returns 0, or the exit status after printing the error; *model and *session hold
 * what was created either way (the caller frees them). */
int ifd_cli_open(const char *model_path, long long threads, int n_specs, const char *const *specs,
                 ifd_cli_inputs *in, ifd_model **model, ifd_session **session);
int ifd_cli_error(const char *what, ifd_status st);
bool ifd_cli_parse_int(const char *s, long long min, long long max, long long *out);

#endif
