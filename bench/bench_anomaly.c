/* SPDX-License-Identifier: MIT */
/*
 * Isolation Forest against scikit-learn, side by side in one run:
 *  (a) ROC AUC on every ODDS-style set in $SEGMINT_DATA/anomaly (CSV, header
 *      x1..xd,outlier), both averaged over 10 seeds with t = 100, psi = 256,
 *      next to the AUCs published in Liu, Ting & Zhou (ICDM 2008, Table 2);
 *  (b) fit + score time on those sets and on synthetic (n = 1M, d = 10), with
 *      scikit-learn at n_jobs = 2, runs alternated, medians and ratios.
 * Environment: BENCH_ANOMALY_SEEDS (10), BENCH_ANOMALY_N (1000000),
 * BENCH_ANOMALY_REPS (3), BENCH_ANOMALY_SKLEARN=0 to skip scikit-learn.
 */
#include <cblas.h>
#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine/matrix_io.h"
#include "harness.h"
#include "kernels/rng.h"
#include "segmint/segmint.h"

enum { TREES = 100, PSI = 256 };

/* The iForest column of Table 2 in Liu, Ting & Zhou, "Isolation Forest",
 * ICDM 2008 (the same figures appear in the TKDD 2012 version), for the sets
 * the paper shares with the ODDS collection. */
static const struct {
    const char *name;
    double auc;
} paper_auc[] = {
    {"arrhythmia", 0.80}, {"ionosphere", 0.85}, {"pima", 0.67}, {"satellite", 0.71}, {"shuttle", 1.00},
};

static double paper_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof paper_auc / sizeof paper_auc[0]; i++)
        if (strcmp(paper_auc[i].name, name) == 0)
            return paper_auc[i].auc;
    return NAN;
}

static long env_long(const char *name, long fallback)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? strtol(v, NULL, 10) : fallback;
}

/* An ODDS set: features and the 0/1 outlier column (the last one), read
 * with the engine's matrix reader (NaN/inf refused with line and column). */
typedef struct labelled {
    sm_matrix m; /* n x (d + 1); the detectors see the first d columns */
    int *y;      /* n */
    size_t n, d, ld;
    const float *x;
} labelled;

static bool read_labelled_csv(const char *path, labelled *out)
{
    memset(out, 0, sizeof *out);
    sm_error err;
    if (sm_matrix_read(path, &out->m, &err) != SM_OK) {
        char text[1024];
        sm_error_format(&err, text, sizeof text);
        fprintf(stderr, "bench_anomaly: %s\n", text);
        return false;
    }
    if (out->m.d < 2 || out->m.n < 2) {
        sm_matrix_free(&out->m);
        return false;
    }
    out->n = out->m.n;
    out->d = out->m.d - 1;
    out->ld = out->m.ld;
    out->x = out->m.data;
    out->y = malloc(out->n * sizeof *out->y);
    for (size_t i = 0; i < out->n; i++)
        out->y[i] = out->m.data[i * out->ld + out->d] != 0.0f;
    return true;
}

static void labelled_free(labelled *l)
{
    sm_matrix_free(&l->m);
    free(l->y);
}

/* --- ROC AUC (Mann-Whitney U, ties share their average rank) ---------------- */

typedef struct scored {
    double s;
    int y;
} scored;

static int by_score(const void *a, const void *b)
{
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

static double roc_auc(const double *scores, const int *y, size_t n)
{
    scored *v = malloc(n * sizeof *v);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = (scored){scores[i], y[i]};
        pos += y[i] != 0;
    }
    qsort(v, n, sizeof *v, by_score);
    double rank_sum = 0.0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s)
            j++;
        double avg_rank = 0.5 * (double)(i + 1 + j); /* ranks i+1 .. j */
        for (size_t k = i; k < j; k++)
            if (v[k].y)
                rank_sum += avg_rank;
        i = j;
    }
    free(v);
    double neg = (double)(n - pos);
    return (rank_sum - (double)pos * (double)(pos + 1) / 2.0) / ((double)pos * neg);
}

/* --- segmint runs ---------------------------------------------------------------- */

/* CPU seconds (user + system) of every thread of this process so far: unlike
 * wall time it barely moves when other jobs share the machine. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

/* Fits and scores once; returns false on failure. */
static bool segmint_run(const float *x, size_t n, size_t d, size_t ld, uint64_t seed,
                        double *scores, double *fit_s, double *score_s)
{
    sm_iforest_params p;
    sm_iforest_params_init(&p);
    p.n_trees = TREES;
    p.sample_size = PSI;
    p.seed = seed;
    sm_iforest *f = NULL;
    sm_error err;
    double t0 = bench_now();
    if (sm_iforest_fit(&p, x, n, d, ld, &f, &err) != SM_OK) {
        fprintf(stderr, "bench_anomaly: fit: %s\n", err.msg);
        return false;
    }
    double t1 = bench_now();
    int rc = sm_iforest_score(f, scores, x, n, d, ld, 0, NULL, &err);
    double t2 = bench_now();
    sm_iforest_destroy(f);
    if (rc != SM_OK) {
        fprintf(stderr, "bench_anomaly: score: %s\n", err.msg);
        return false;
    }
    *fit_s = t1 - t0;
    *score_s = t2 - t1;
    return true;
}

static double mean_sd(const double *v, int n, double *sd)
{
    double m = 0.0, s = 0.0;
    for (int i = 0; i < n; i++)
        m += v[i];
    m /= n;
    for (int i = 0; i < n; i++)
        s += (v[i] - m) * (v[i] - m);
    *sd = n > 1 ? sqrt(s / (n - 1)) : 0.0;
    return m;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct auc_row {
    char name[64];
    size_t n, d, outliers;
    double ours, ours_sd, theirs, theirs_sd, paper;
    bench_stats ours_time, theirs_time;
    bool have_theirs;
} auc_row;

static void run_sets(int seeds, bool sklearn)
{
    char dir_buf[4096];
    const char *dir = bench_data_path("anomaly", dir_buf, sizeof dir_buf);
    if (dir == NULL) {
        printf("\n(skipped the ODDS sets: no anomaly/ folder under SEGMINT_DATA)\n");
        return;
    }
    DIR *dp = opendir(dir);
    if (dp == NULL)
        return;
    char *names[256];
    size_t count = 0;
    for (struct dirent *e; (e = readdir(dp)) != NULL && count < 256;) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".csv") == 0)
            names[count++] = strdup(e->d_name);
    }
    closedir(dp);
    qsort(names, count, sizeof *names, by_name);

    auc_row *rows = calloc(count, sizeof *rows);
    size_t n_rows = 0;
    for (size_t k = 0; k < count; k++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        labelled data;
        if (!read_labelled_csv(path, &data))
            continue;
        auc_row *r = &rows[n_rows++];
        snprintf(r->name, sizeof r->name, "%.*s", (int)(strlen(names[k]) - 4), names[k]);
        r->n = data.n, r->d = data.d;
        for (size_t i = 0; i < data.n; i++)
            r->outliers += data.y[i] != 0;
        r->paper = paper_lookup(r->name);
        double *scores = malloc(data.n * sizeof *scores);
        double aucs[64], times[64];
        for (int s = 0; s < seeds; s++) {
            double fit_s, score_s;
            if (!segmint_run(data.x, data.n, data.d, data.ld, (uint64_t)s, scores, &fit_s, &score_s))
                exit(1);
            aucs[s] = roc_auc(scores, data.y, data.n);
            times[s] = fit_s + score_s;
        }
        r->ours = mean_sd(aucs, seeds, &r->ours_sd);
        r->ours_time = bench_summarise(times, seeds);
        if (sklearn) {
            char args[8400], json[8192], why[512];
            snprintf(args, sizeof args, "auc '%s' %d %d %d 2", path, seeds, TREES, PSI);
            if (bench_run_python("iforest_sklearn.py", args, json, sizeof json, why, sizeof why)) {
                r->have_theirs = true;
                r->theirs = bench_json_number(json, "auc_mean");
                r->theirs_sd = bench_json_number(json, "auc_sd");
                double t = bench_json_number(json, "fit_median_s") +
                           bench_json_number(json, "score_median_s");
                r->theirs_time = (bench_stats){t, t, t, seeds};
            } else {
                fprintf(stderr, "bench_anomaly: scikit-learn skipped: %s\n", why);
            }
        }
        free(scores);
        labelled_free(&data);
    }

    printf("\n### Isolation Forest ROC AUC (t = %d, psi = %d, mean (sd) over %d seeds)\n\n", TREES,
           PSI, seeds);
    printf("| set | n | d | outliers | segmint | scikit-learn | abs diff | diff / s.e. | within 0.01 | paper (ICDM'08 Tab. 2) |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n");
    size_t within = 0, compared = 0;
    for (size_t k = 0; k < n_rows; k++) {
        auc_row *r = &rows[k];
        char theirs[64] = "-", diff[32] = "-", z[32] = "-", ok[16] = "-", paper[16] = "-";
        if (r->have_theirs) {
            double dv = fabs(r->ours - r->theirs);
            /* Standard error of the difference of two means of `seeds` runs:
             * the 0.01 check is only meaningful where this is well below it. */
            double se = sqrt((r->ours_sd * r->ours_sd + r->theirs_sd * r->theirs_sd) / seeds);
            snprintf(theirs, sizeof theirs, "%.4f (%.4f)", r->theirs, r->theirs_sd);
            snprintf(diff, sizeof diff, "%.4f", dv);
            snprintf(z, sizeof z, "%.1f", se > 0 ? dv / se : 0.0);
            snprintf(ok, sizeof ok, "%s", dv <= 0.01 ? "yes" : "NO");
            compared++;
            within += dv <= 0.01;
        }
        if (!isnan(r->paper))
            snprintf(paper, sizeof paper, "%.2f", r->paper);
        printf("| %s | %zu | %zu | %zu | %.4f (%.4f) | %s | %s | %s | %s | %s |\n", r->name, r->n,
               r->d, r->outliers, r->ours, r->ours_sd, theirs, diff, z, ok, paper);
    }
    printf("\nAUC check |segmint - scikit-learn| <= 0.01: %zu of %zu sets\n", within, compared);

    bench_print_header("Isolation Forest fit + score per ODDS set (median over the seeds)");
    for (size_t k = 0; k < n_rows; k++) {
        auc_row *r = &rows[k];
        char case_name[128];
        snprintf(case_name, sizeof case_name, "%s (%zu x %zu)", r->name, r->n, r->d);
        bench_record rec = {.bench = "anomaly", .case_name = case_name, .impl = "segmint iforest",
                            .stats = r->ours_time, .per = "fit+score",
                            .throughput = (double)r->n / r->ours_time.median,
                            .throughput_unit = "rows/s", .threads = bench_threads()};
        if (r->have_theirs)
            rec.ratio = r->theirs_time.median / r->ours_time.median;
        bench_report(&rec);
        if (r->have_theirs) {
            bench_record skl = {.bench = "anomaly", .case_name = case_name,
                                .impl = "sklearn IsolationForest n_jobs=2", .stats = r->theirs_time,
                                .per = "fit+score", .throughput = (double)r->n / r->theirs_time.median,
                                .throughput_unit = "rows/s", .threads = 2, .note = "anchor"};
            bench_report(&skl);
        }
    }
    for (size_t k = 0; k < count; k++)
        free(names[k]);
    free(rows);
}

/* (n, d) Gaussian blob with 0.1% planted far points, written to a raw
 * float32 file for scikit-learn so both score the same bytes. */
static void run_synthetic(size_t n, size_t d, int reps, bool sklearn)
{
    float *x = malloc(n * d * sizeof *x);
    double *scores = malloc(n * sizeof *scores);
    if (x == NULL || scores == NULL) {
        fprintf(stderr, "bench_anomaly: out of memory for n=%zu\n", n);
        exit(1);
    }
#pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < (n + 4095) / 4096; blk++) {
        sm_rng r;
        sm_rng_init(&r, 42, blk);
        for (size_t i = blk * 4096; i < n && i < (blk + 1) * 4096; i++) {
            double shift = (i % 1000 == 999) ? 6.0 : 0.0;
            for (size_t j = 0; j < d; j++)
                x[i * d + j] = (float)(sm_rng_normal(&r) + shift);
        }
    }
    char raw[4200];
    snprintf(raw, sizeof raw, "%s/anomaly_%zux%zu.f32", bench_scratch_dir(), n, d);
    if (sklearn) {
        FILE *f = fopen(raw, "wb");
        if (f == NULL || fwrite(x, sizeof *x, n * d, f) != n * d) {
            fprintf(stderr, "bench_anomaly: cannot write %s\n", raw);
            sklearn = false;
        }
        if (f != NULL)
            fclose(f);
    }
    double ours_fit[16], ours_score[16], ours_total[16], ours_cpu[16];
    double their_fit[16], their_score[16], their_total[16], their_cpu[16];
    int theirs = 0;
    long rss = 0;
    double fit_s, score_s;
    segmint_run(x, n, d, d, 1000, scores, &fit_s, &score_s); /* warm-up: pages, threads */
    for (int rep = 0; rep < reps; rep++) {
        bench_peak_rss_reset();
        double cpu0 = cpu_seconds();
        if (!segmint_run(x, n, d, d, (uint64_t)rep, scores, &fit_s, &score_s))
            exit(1);
        ours_cpu[rep] = cpu_seconds() - cpu0;
        rss = bench_peak_rss_kb();
        ours_fit[rep] = fit_s, ours_score[rep] = score_s, ours_total[rep] = fit_s + score_s;
        if (sklearn) {
            char args[4400], json[8192], why[512];
            snprintf(args, sizeof args, "speed '%s' %zu %zu %d %d 2 %d", raw, n, d, TREES, PSI, rep);
            if (bench_run_python("iforest_sklearn.py", args, json, sizeof json, why, sizeof why)) {
                their_fit[theirs] = bench_json_number(json, "fit_s");
                their_score[theirs] = bench_json_number(json, "score_s");
                their_total[theirs] = their_fit[theirs] + their_score[theirs];
                their_cpu[theirs] = bench_json_number(json, "fit_cpu_s") +
                                    bench_json_number(json, "score_cpu_s");
                theirs++;
            } else {
                fprintf(stderr, "bench_anomaly: scikit-learn skipped: %s\n", why);
                sklearn = false;
            }
        }
    }
    if (sklearn)
        remove(raw);

    char case_name[96];
    snprintf(case_name, sizeof case_name, "synthetic n=%zu d=%zu", n, d);
    bench_print_header("Isolation Forest speed, t = 100, psi = 256 (runs alternated with scikit-learn)");
    const char *parts[3] = {"fit", "score", "fit+score"};
    double *ours[3] = {ours_fit, ours_score, ours_total};
    double *their[3] = {their_fit, their_score, their_total};
    for (int k = 0; k < 3; k++) {
        bench_stats us = bench_summarise(ours[k], reps);
        bench_stats them = theirs > 0 ? bench_summarise(their[k], theirs) : (bench_stats){0};
        bench_record rec = {.bench = "anomaly", .case_name = case_name, .impl = "segmint iforest",
                            .stats = us, .per = parts[k], .throughput = (double)n / us.median,
                            .throughput_unit = "rows/s", .peak_rss_kb = rss,
                            .threads = bench_threads(),
                            .ratio = theirs > 0 ? them.median / us.median : 0};
        bench_report(&rec);
        if (theirs > 0) {
            bench_record skl = {.bench = "anomaly", .case_name = case_name,
                                .impl = "sklearn IsolationForest n_jobs=2", .stats = them,
                                .per = parts[k], .throughput = (double)n / them.median,
                                .throughput_unit = "rows/s", .threads = 2, .note = "anchor"};
            bench_report(&skl);
        }
    }
    bench_stats us_cpu = bench_summarise(ours_cpu, reps);
    printf("\nCPU seconds of fit+score, all threads (median): segmint %.3f", us_cpu.median);
    if (theirs > 0) {
        bench_stats them_cpu = bench_summarise(their_cpu, theirs);
        printf(", scikit-learn %.3f, ratio %.1fx", them_cpu.median, them_cpu.median / us_cpu.median);
    }
    printf("\n");
    free(x);
    free(scores);
}

int main(void)
{
    int seeds = (int)env_long("BENCH_ANOMALY_SEEDS", 10);
    long n = env_long("BENCH_ANOMALY_N", 1000000);
    int reps = (int)env_long("BENCH_ANOMALY_REPS", 3);
    bool sklearn = env_long("BENCH_ANOMALY_SKLEARN", 1) != 0;
    if (seeds < 2 || seeds > 64 || reps < 1 || reps > 16 || n < 2) {
        fprintf(stderr, "bench_anomaly: need 2 <= seeds <= 64, 1 <= reps <= 16, n >= 2\n");
        return 2;
    }
    openblas_set_num_threads(1); /* BLAS inside our OpenMP regions, as the CLI does */
    printf("\n## Anomaly detection (segmint %s, %d OpenMP threads)\n", sm_version(), bench_threads());
    run_synthetic((size_t)n, 10, reps, sklearn);
    run_sets(seeds, sklearn);
    return 0;
}
