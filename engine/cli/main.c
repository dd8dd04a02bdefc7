/* SPDX-License-Identifier: MIT */
/* `segmint`: dispatches to engine/cli/cmd_<name>.c. The only place that exits. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_commands.h"
#include "engine/cli/cli.h"
#include "segmint/segmint.h"

static void print_overview(FILE *out)
{
    fprintf(out,
            "segmint %s: customer segmentation from transaction logs\n\n"
            "usage: segmint <command> [options]   (segmint <command> --help for its options)\n\n"
            "commands:\n",
            sm_version());
    for (size_t i = 0; sm_cli_commands[i] != NULL; i++)
        fprintf(out, "  %-10s %s\n", sm_cli_commands[i]->name, sm_cli_commands[i]->summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return SM_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            for (size_t i = 0; sm_cli_commands[i] != NULL; i++)
                if (strcmp(sm_cli_commands[i]->name, argv[2]) == 0) {
                    fputs(sm_cli_commands[i]->usage, stdout);
                    return SM_EXIT_OK;
                }
        }
        print_overview(stdout);
        return SM_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("segmint %s\n", sm_version());
        return SM_EXIT_OK;
    }
    /* All parallelism is OpenMP's; BLAS is called from inside our parallel
     * regions and must not start its own pool (the Debian OpenBLAS is the
     * pthread build, which ignores OMP_NUM_THREADS). */
    openblas_set_num_threads(1);
    sm_cli_install_signal_handlers();
    for (size_t i = 0; sm_cli_commands[i] != NULL; i++)
        if (strcmp(sm_cli_commands[i]->name, name) == 0)
            return sm_cli_commands[i]->run(argc - 1, argv + 1);
    fprintf(stderr, "segmint: unknown command '%s'\n\n", name);
    print_overview(stderr);
    return SM_EXIT_USAGE;
}
