/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bench_stats bench_summarise(double *samples, int n)
{
    bench_stats stats = {NAN, NAN, NAN, n};
    if (n <= 0)
        return stats;
    qsort(samples, (size_t)n, sizeof *samples, compare_doubles);
    stats.min = samples[0];
    stats.max = samples[n - 1];
    stats.median = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
    return stats;
}

bench_stats bench_time(bench_fn fn, void *ctx, int warmup, int reps)
{
    for (int i = 0; i < warmup; i++)
        fn(ctx);
    double *samples = calloc((size_t)(reps > 0 ? reps : 1), sizeof *samples);
    for (int i = 0; i < reps; i++) {
        double start = bench_now();
        fn(ctx);
        samples[i] = bench_now() - start;
    }
    bench_stats stats = bench_summarise(samples, reps);
    free(samples);
    return stats;
}

void bench_peak_rss_reset(void)
{
    /* Writing 5 to clear_refs resets VmHWM (Linux >= 4.0). */
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "5", 1) != 1) {
            /* best effort: the figure then covers the whole process */
        }
        close(fd);
    }
}

long bench_peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    long kb = 0;
    if (f != NULL) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
                break;
        fclose(f);
    }
    if (kb == 0) {
        struct rusage usage;
        getrusage(RUSAGE_SELF, &usage);
        kb = usage.ru_maxrss;
    }
    return kb;
}

int bench_threads(void)
{
    return omp_get_max_threads();
}

void bench_print_header(const char *title)
{
    printf("\n### %s\n\n", title);
    printf("| case | implementation | median s | min s | max s | per | throughput | peak RSS MiB | threads | speed-up vs anchor | note |\n");
    printf("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|\n");
    fflush(stdout);
}

static void json_string(FILE *f, const char *text)
{
    fputc('"', f);
    for (const char *p = text ? text : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double value)
{
    if (isfinite(value))
        fprintf(f, "%.6g", value);
    else
        fputs("null", f);
}

void bench_report(const bench_record *r)
{
    char throughput[64] = "";
    if (r->throughput > 0)
        snprintf(throughput, sizeof throughput, "%.3g %s", r->throughput,
                 r->throughput_unit ? r->throughput_unit : "/s");
    char ratio[32] = "";
    if (r->ratio > 0)
        snprintf(ratio, sizeof ratio, "%.2fx", r->ratio);
    char rss[32] = "";
    if (r->peak_rss_kb > 0)
        snprintf(rss, sizeof rss, "%.0f", (double)r->peak_rss_kb / 1024.0);
    printf("| %s | %s | %.4g | %.4g | %.4g | %s | %s | %s | %d | %s | %s |\n", r->case_name, r->impl,
           r->stats.median, r->stats.min, r->stats.max, r->per ? r->per : "run", throughput, rss,
           r->threads, ratio, r->note ? r->note : "");
    fflush(stdout);

    const char *json_path = getenv("BENCH_JSON");
    if (json_path == NULL || json_path[0] == '\0')
        return;
    FILE *f = fopen(json_path, "a");
    if (f == NULL)
        return;
    fputs("{\"bench\":", f);
    json_string(f, r->bench);
    fputs(",\"case\":", f);
    json_string(f, r->case_name);
    fputs(",\"impl\":", f);
    json_string(f, r->impl);
    fputs(",\"median_s\":", f);
    json_number(f, r->stats.median);
    fputs(",\"min_s\":", f);
    json_number(f, r->stats.min);
    fputs(",\"max_s\":", f);
    json_number(f, r->stats.max);
    fprintf(f, ",\"reps\":%d,\"per\":", r->stats.reps);
    json_string(f, r->per ? r->per : "run");
    fputs(",\"throughput\":", f);
    json_number(f, r->throughput > 0 ? r->throughput : NAN);
    fputs(",\"throughput_unit\":", f);
    json_string(f, r->throughput_unit);
    fprintf(f, ",\"peak_rss_kb\":%ld,\"threads\":%d,\"ratio\":", r->peak_rss_kb, r->threads);
    json_number(f, r->ratio > 0 ? r->ratio : NAN);
    fputs(",\"note\":", f);
    json_string(f, r->note);
    fputs("}\n", f);
    fclose(f);
}

const char *bench_data_path(const char *relative, char *buf, size_t len)
{
    const char *root = getenv("SEGMINT_DATA");
    if (root == NULL || root[0] == '\0')
        root = SEGMINT_DATA_DEFAULT;
    snprintf(buf, len, "%s/%s", root, relative);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

bool bench_run_python(const char *script, const char *args, char *out, size_t out_len, char *why,
                      size_t why_len)
{
    const char *python = getenv("BENCH_PYTHON");
    if (python == NULL || python[0] == '\0')
        python = "/usr/bin/python3";
    if (access(python, X_OK) != 0) {
        snprintf(why, why_len, "%s not found", python);
        return false;
    }
    char command[8192];
    snprintf(command, sizeof command, "%s %s/bench/compare/%s %s 2>&1", python, SEGMINT_SOURCE_DIR,
             script, args ? args : "");
    FILE *pipe = popen(command, "r");
    if (pipe == NULL) {
        snprintf(why, why_len, "cannot run %s: %s", python, strerror(errno));
        return false;
    }
    char line[8192], last[8192] = "";
    while (fgets(line, sizeof line, pipe) != NULL)
        if (line[0] != '\n')
            snprintf(last, sizeof last, "%s", line);
    int status = pclose(pipe);
    size_t n = strlen(last);
    while (n > 0 && (last[n - 1] == '\n' || last[n - 1] == '\r'))
        last[--n] = '\0';
    if (status != 0 || last[0] != '{') {
        snprintf(why, why_len, "%s failed: %.200s", script, last);
        return false;
    }
    snprintf(out, out_len, "%s", last);
    return true;
}

double bench_json_number(const char *json, const char *key)
{
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (at == NULL)
        return NAN;
    at += strlen(pattern);
    while (*at == ' ')
        at++;
    char *end;
    double value = strtod(at, &end);
    return end == at ? NAN : value;
}

static double floor_value(const char *key)
{
    const char *path = getenv("BENCH_FLOORS");
    if (path == NULL || path[0] == '\0')
        return NAN;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NAN;
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return bench_json_number(text, key);
}

double bench_floor_sgemm_gflops(void)
{
    return floor_value("sgemm_gflops_all");
}

double bench_floor_triad_gbs(void)
{
    return floor_value("triad_gbs_all");
}

const char *bench_scratch_dir(void)
{
    static char dir[4096];
    const char *env = getenv("BENCH_SCRATCH");
    if (env != NULL && env[0] != '\0')
        snprintf(dir, sizeof dir, "%s", env);
    else
        snprintf(dir, sizeof dir, "%s/bench/results/tmp", SEGMINT_SOURCE_DIR);
    char parent[4096];
    snprintf(parent, sizeof parent, "%s/bench/results", SEGMINT_SOURCE_DIR);
    mkdir(parent, 0755);
    mkdir(dir, 0755);
    return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void bench_remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
