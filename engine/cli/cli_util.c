/* SPDX-License-Identifier: MIT */
/* Option parsing, signals and the progress line shared by all commands. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/cli/cli.h"

int sm_cli_fail(const sm_error *err)
{
    char text[SM_ERROR_MSG_MAX + SM_ERROR_PATH_MAX + 128];
    sm_error_format(err, text, sizeof text);
    fprintf(stderr, "segmint: %s\n", text);
    return err != NULL && err->code == SM_ERR_CANCELLED ? SM_EXIT_INTERRUPTED : SM_EXIT_FAILURE;
}

int sm_cli_usage_error(const sm_cli_command *cmd, const char *fmt, ...)
{
    fprintf(stderr, "segmint %s: ", cmd->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'segmint %s --help')\n", cmd->name);
    return SM_EXIT_USAGE;
}

bool sm_cli_wants_help(const sm_cli_command *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(cmd->usage, stdout);
            return true;
        }
    }
    return false;
}

bool sm_cli_parse_u64(const sm_cli_command *cmd, const char *option, const char *text, uint64_t min,
                      uint64_t max, uint64_t *out)
{
    errno = 0;
    char *end = NULL;
    if (text == NULL || text[0] == '\0' || text[0] == '-') {
        sm_cli_usage_error(cmd, "%s: expected a non-negative integer, got '%s'", option,
                           text ? text : "");
        return false;
    }
    unsigned long long value = strtoull(text, &end, 10);
    if (*end != '\0') {
        sm_cli_usage_error(cmd, "%s: expected an integer, got '%s'", option, text);
        return false;
    }
    if (errno == ERANGE || value < min || value > max) {
        sm_cli_usage_error(cmd, "%s: %s is outside [%" PRIu64 ", %" PRIu64 "]", option, text, min,
                           max);
        return false;
    }
    *out = value;
    return true;
}

bool sm_cli_parse_double(const sm_cli_command *cmd, const char *option, const char *text, double min,
                         double max, double *out)
{
    errno = 0;
    char *end = NULL;
    double value = text ? strtod(text, &end) : NAN;
    if (text == NULL || text[0] == '\0' || *end != '\0') {
        sm_cli_usage_error(cmd, "%s: expected a number, got '%s'", option, text ? text : "");
        return false;
    }
    if (isnan(value)) {
        sm_cli_usage_error(cmd, "%s: NaN is not allowed", option);
        return false;
    }
    if (isinf(value) || errno == ERANGE) {
        sm_cli_usage_error(cmd, "%s: '%s' is infinite or too large", option, text);
        return false;
    }
    if (value < min || value > max) {
        sm_cli_usage_error(cmd, "%s: %s is outside [%g, %g]", option, text, min, max);
        return false;
    }
    *out = value;
    return true;
}

bool sm_cli_parse_threads(const sm_cli_command *cmd, const char *text, int *out)
{
    uint64_t threads;
    if (!sm_cli_parse_u64(cmd, "--threads", text, 0, 4096, &threads))
        return false;
    *out = (int)threads;
    return true;
}

bool sm_cli_parse_run_id(const sm_cli_command *cmd, const char *text, uint64_t *out)
{
    if (text != NULL && strcmp(text, "latest") == 0) {
        *out = 0;
        return true;
    }
    return sm_cli_parse_u64(cmd, "--run", text, 1, UINT64_MAX, out);
}

void sm_cli_format_count(char *buf, size_t cap, uint64_t value)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, value);
    size_t w = 0;
    for (int i = 0; i < n && w + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[w++] = ',';
        buf[w++] = digits[i];
    }
    buf[w] = '\0';
}

/* --- signals ------------------------------------------------------------------ */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int signo)
{
    if (interrupted) {
        /* Second request: leave now. LMDB never exposes an uncommitted txn. */
        signal(signo, SIG_DFL);
        raise(signo);
        return;
    }
    interrupted = 1;
}

void sm_cli_install_signal_handlers(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

bool sm_cli_interrupted(void)
{
    return interrupted != 0;
}

/* --- progress ----------------------------------------------------------------- */

double sm_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void format_count(char *buf, size_t len, uint64_t value)
{
    if (value >= 10000000000ull)
        snprintf(buf, len, "%.1fG", (double)value / 1e9);
    else if (value >= 10000000ull)
        snprintf(buf, len, "%.1fM", (double)value / 1e6);
    else if (value >= 10000ull)
        snprintf(buf, len, "%.1fk", (double)value / 1e3);
    else
        snprintf(buf, len, "%" PRIu64, value);
}

static int progress_draw(void *user, const char *stage, uint64_t done, uint64_t total)
{
    sm_cli_progress *state = user;
    if (!state->draw)
        return sm_cli_interrupted();
    double now = sm_cli_now();
    bool new_stage = state->stage == NULL || strcmp(state->stage, stage) != 0;
    if (new_stage) {
        if (state->line_open)
            fputc('\n', stderr);
        state->stage = stage;
        state->stage_start = now;
        state->last_draw = 0.0;
    }
    bool finished = total > 0 && done >= total;
    /* Redrawing more than ~10 times a second only costs time. */
    if (!new_stage && !finished && now - state->last_draw < 0.1)
        return sm_cli_interrupted();
    state->last_draw = now;

    char done_text[32], total_text[32];
    format_count(done_text, sizeof done_text, done);
    format_count(total_text, sizeof total_text, total);
    double elapsed = now - state->stage_start;
    if (total > 0) {
        enum { WIDTH = 30 };
        double fraction = (double)done / (double)total;
        if (fraction > 1.0)
            fraction = 1.0;
        int filled = (int)(fraction * WIDTH);
        char bar[WIDTH + 1];
        for (int i = 0; i < WIDTH; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[WIDTH] = '\0';
        fprintf(stderr, "\r\033[K  %-10s [%s] %3.0f%%  %s/%s  %.1fs", stage, bar, 100.0 * fraction,
                done_text, total_text, elapsed);
    } else {
        fprintf(stderr, "\r\033[K  %-10s %s  %.1fs", stage, done_text, elapsed);
    }
    state->line_open = true;
    fflush(stderr);
    return sm_cli_interrupted();
}

sm_progress sm_cli_progress_start(sm_cli_progress *state, bool quiet)
{
    memset(state, 0, sizeof *state);
    state->draw = !quiet && isatty(STDERR_FILENO);
    return (sm_progress){.fn = progress_draw, .user = state};
}

void sm_cli_progress_end(sm_cli_progress *state)
{
    if (state->draw && state->line_open) {
        fputc('\n', stderr);
        fflush(stderr);
    }
    state->line_open = false;
    state->stage = NULL;
}
