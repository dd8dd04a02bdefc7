/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness: run a case several times after a warm-up, keep the
 * median (and min/max), peak RSS and throughput, and print one Markdown row
 * (stdout) and one JSON record (appended to $BENCH_JSON, if set) per case.
 * Comparisons with other tools (scikit-learn, FAISS, ...) run as child
 * processes in the same invocation, case by case, and are skipped with a
 * note when the tool is missing. Timings belong here, never in tests/.
 */
#ifndef SEGMINT_BENCH_HARNESS_H
#define SEGMINT_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bench_stats {
    double median; /* seconds */
    double min;
    double max;
    int reps;
} bench_stats;

typedef struct bench_record {
    const char *bench;      /* benchmark program, e.g. "kmeans" */
    const char *case_name;  /* e.g. "n=1M d=8 k=8" */
    const char *impl;       /* e.g. "segmint lloyd", "sklearn elkan" */
    bench_stats stats;      /* seconds per unit of `per` below */
    const char *per;        /* what one measured second covers: "iteration", "run" */
    double throughput;      /* items per second, 0 = not applicable */
    const char *throughput_unit; /* e.g. "rows/s" */
    long peak_rss_kb;       /* peak RSS during the case, 0 = not measured */
    int threads;
    double ratio;           /* anchor time / our time (speed-up), 0 = none */
    const char *note;       /* free text, may be NULL */
} bench_record;

typedef void (*bench_fn)(void *ctx);

/* Runs fn `warmup` times unmeasured, then `reps` times; returns the stats. */
bench_stats bench_time(bench_fn fn, void *ctx, int warmup, int reps);

/* Median/min/max of `n` samples (the array is sorted in place). */
bench_stats bench_summarise(double *samples, int n);

double bench_now(void);

/* Peak resident set: reset the high-water mark, read it (kB). */
void bench_peak_rss_reset(void);
long bench_peak_rss_kb(void);

/* Threads OpenMP will use (what OMP_NUM_THREADS or the default gives). */
int bench_threads(void);

/* Prints the table header once per program. */
void bench_print_header(const char *title);
/* Prints the Markdown row and appends the JSON record. */
void bench_report(const bench_record *record);

/* Data-set file under $SEGMINT_DATA (default ../shared/datasets), or NULL
 * if absent: benchmarks then print a skip note. */
const char *bench_data_path(const char *relative, char *buf, size_t len);

/* Runs `/usr/bin/python3 bench/compare/<script> args...` and copies its last
 * stdout line (a JSON object) into out. Returns false, with `why` filled, if
 * Python or the module is missing or the script failed. */
bool bench_run_python(const char *script, const char *args, char *out, size_t out_len, char *why,
                      size_t why_len);

/* Extracts a number from a flat JSON object ("key": value). NaN if absent. */
double bench_json_number(const char *json, const char *key);

/* The machine floors measured by bench_floors in this run (read from
 * $BENCH_FLOORS, a JSON file). NaN when not measured. */
double bench_floor_sgemm_gflops(void); /* all threads */
double bench_floor_triad_gbs(void);    /* all threads */

/* Removes a file or a directory tree (best effort; for scratch stores). */
void bench_remove_tree(const char *path);

/* Scratch directory for generated inputs (bench/results/tmp). */
const char *bench_scratch_dir(void);

#endif
