/* SPDX-License-Identifier: MIT */
/*
 * segmint run end to end, as a user runs it: generate 1M customers (about
 * 12.6M transactions; BENCH_RUN_CUSTOMERS changes it), import them, then run
 * the `segmint` binary BENCH_REPS times (default 3) with --out and the store
 * write included, and report the median of the total and of every stage
 * (the stage times come from `segmint run --json`), with the child's peak RSS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static const char *const stages[] = {"load", "features", "kmeans", "clv", "rfm", "anomaly", "baskets"};
enum { N_STAGES = sizeof stages / sizeof stages[0], MAX_REPS = 16 };

/* Runs argv, its stdout into `out` (may be NULL); returns the exit status and
 * the child's peak RSS in kB. */
static int run_child(char *const argv[], const char *out, long *rss_kb, double *seconds)
{
    double start = bench_now();
    pid_t pid = fork();
    if (pid == 0) {
        if (out != NULL && freopen(out, "w", stdout) == NULL)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    wait4(pid, &status, 0, &usage);
    *seconds = bench_now() - start;
    *rss_kb = usage.ru_maxrss;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static double json_stage(const char *path, const char *stage)
{
    FILE *f = fopen(path, "r");
    static char text[65536];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    const char *timings = strstr(text, "\"timings\":");
    return timings ? bench_json_number(timings, stage) : -1.0;
}

int main(void)
{
    const char *env = getenv("BENCH_RUN_CUSTOMERS");
    unsigned long customers = env ? strtoul(env, NULL, 10) : 1000000;
    env = getenv("BENCH_REPS");
    int reps = env ? atoi(env) : 3;
    if (reps < 1 || reps > MAX_REPS)
        reps = 3;
    const char *dir = bench_scratch_dir();
    char csv[4096], store[4096], out[4096], json[4096], count[32];
    snprintf(csv, sizeof csv, "%s/run_log.csv", dir);
    snprintf(store, sizeof store, "%s/run.store", dir);
    snprintf(out, sizeof out, "%s/run_segments.csv", dir);
    snprintf(json, sizeof json, "%s/run_summary.json", dir);
    snprintf(count, sizeof count, "%lu", customers);
    bench_remove_tree(store);
    unlink(csv);

    /* --force: the truth and rules files next to the log survive from the last run */
    char *gen[] = {SEGMINT_CLI_PATH, "gen", "--customers", count, "--seed", "2026", "--out", csv, "--force", "--quiet", NULL};
    char *import[] = {SEGMINT_CLI_PATH, "import", "--store", store, csv, NULL};
    char *run[] = {SEGMINT_CLI_PATH, "run", "--store", store, "--out", out, "--force", "--json", NULL};
    long rss;
    double seconds;
    bench_print_header("segmint run end to end (generate -> import -> run)");
    char shape[128];
    snprintf(shape, sizeof shape, "%lu customers", customers);
    if (run_child(gen, "/dev/null", &rss, &seconds) != 0 || run_child(import, "/dev/null", &rss, &seconds) != 0) {
        fprintf(stderr, "bench_run: generating or importing failed\n");
        return 1;
    }
    bench_record imp = {.bench = "run", .case_name = shape, .impl = "segmint import (once, for the run)",
                        .stats = {seconds, seconds, seconds, 1}, .per = "run", .peak_rss_kb = rss,
                        .threads = bench_threads()};
    bench_report(&imp);

    double total[MAX_REPS], stage[N_STAGES][MAX_REPS];
    long peak = 0;
    for (int r = 0; r < reps; r++) {
        if (run_child(run, json, &rss, &total[r]) != 0) {
            fprintf(stderr, "bench_run: segmint run failed\n");
            return 1;
        }
        peak = rss > peak ? rss : peak;
        for (int s = 0; s < N_STAGES; s++)
            stage[s][r] = json_stage(json, stages[s]);
    }
    bench_stats t = bench_summarise(total, reps);
    char note[256];
    snprintf(note, sizeof note, "goal < 30 s on 2 cores; includes writing %s and the store run", "the CSV");
    bench_record all = {.bench = "run", .case_name = shape, .impl = "segmint run (total, wall)", .stats = t,
                        .per = "run", .throughput = (double)customers / t.median, .throughput_unit = "customers/s",
                        .peak_rss_kb = peak, .threads = bench_threads(), .note = note};
    bench_report(&all);
    for (int s = 0; s < N_STAGES; s++) {
        char impl[64];
        snprintf(impl, sizeof impl, "  stage %s", stages[s]);
        bench_record row = {.bench = "run", .case_name = shape, .impl = impl, .stats = bench_summarise(stage[s], reps),
                            .per = "run", .threads = bench_threads()};
        bench_report(&row);
    }
    bench_remove_tree(store);
    unlink(csv);
    unlink(out);
    unlink(json);
    return 0;
}
