/* SPDX-License-Identifier: MIT */
/*
 * What every `segmint <command>` shares: the command record, exit codes,
 * option parsing that names the offending option, Ctrl-C handling, and the
 * progress line drawn on a TTY. Each command lives in engine/cli/cmd_<name>.c
 * and defines `const sm_cli_command sm_cmd_<name>`; CMake builds the table.
 */
#ifndef SEGMINT_ENGINE_CLI_H
#define SEGMINT_ENGINE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/core.h"
#include "segmint/common.h"
#include "segmint/error.h"

typedef struct sm_cli_command {
    const char *name;    /* as typed after `segmint` */
    const char *summary; /* one line for `segmint --help` */
    const char *usage;   /* full option list for `segmint <name> --help` */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} sm_cli_command;

enum {
    SM_EXIT_OK = 0,
    SM_EXIT_FAILURE = 1,     /* the job failed; the message says why */
    SM_EXIT_USAGE = 2,       /* bad command line */
    SM_EXIT_INTERRUPTED = 130 /* Ctrl-C / SIGTERM; nothing half-written */
};

/* Prints `segmint: <path:line:col: field "x": message>` to stderr and
 * returns the exit code for that error (130 when cancelled). */
int sm_cli_fail(const sm_error *err);

/* Prints `segmint <cmd>: <message>` and a usage hint; returns SM_EXIT_USAGE. */
int sm_cli_usage_error(const sm_cli_command *cmd, const char *fmt, ...) SM_PRINTF(2, 3);

/* True if argv holds -h/--help; prints the command's usage to stdout. */
bool sm_cli_wants_help(const sm_cli_command *cmd, int argc, char **argv);

/* Number parsing that rejects trailing junk, NaN/inf and out-of-range
 * values, and prints `segmint <cmd>: --option: why` on failure. */
bool sm_cli_parse_u64(const sm_cli_command *cmd, const char *option, const char *text, uint64_t min,
                      uint64_t max, uint64_t *out);
bool sm_cli_parse_double(const sm_cli_command *cmd, const char *option, const char *text, double min,
                         double max, double *out);
/* --threads: 0 means all cores (the OpenMP default). */
bool sm_cli_parse_threads(const sm_cli_command *cmd, const char *text, int *out);

/* --run ID|latest: "latest" gives 0 (the run loaders read 0 as the newest). */
bool sm_cli_parse_run_id(const sm_cli_command *cmd, const char *text, uint64_t *out);

/* 1234567 -> "1,234,567" (buf of 32 bytes is always enough). */
void sm_cli_format_count(char *buf, size_t cap, uint64_t value);

/* SIGINT/SIGTERM set a flag that every progress callback returns, so jobs
 * stop at their next safe point; a second Ctrl-C exits at once (the store is
 * still intact: LMDB commits are atomic). */
void sm_cli_install_signal_handlers(void);
bool sm_cli_interrupted(void);

/* The progress line. Draws on stderr only when it is a TTY and not quiet;
 * always forwards cancellation. */
typedef struct sm_cli_progress {
    bool draw;            /* stderr is a TTY and --quiet was not given */
    const char *stage;    /* stage currently drawn */
    double stage_start;   /* monotonic seconds */
    double last_draw;     /* monotonic seconds of the last redraw */
    bool line_open;       /* a partial line is on screen */
} sm_cli_progress;

sm_progress sm_cli_progress_start(sm_cli_progress *state, bool quiet);
/* Finishes the current line (if any). */
void sm_cli_progress_end(sm_cli_progress *state);

/* Monotonic clock in seconds. */
double sm_cli_now(void);

#endif
