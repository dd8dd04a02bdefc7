/* SPDX-License-Identifier: MIT */
/*
 * The foundation's throughput: generate -> import -> features on synthetic
 * logs of about 1M and 10M rows (100M with BENCH_IMPORT_100M=1), timed
 * stage by stage through the library exactly as the CLI runs them. Each
 * import goes into a fresh store; medians of BENCH_REPS runs (default 3).
 * Reports rows/s, customers/s, peak RSS of each stage and the store size.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/gen.h"
#include "engine/customer_stats.h"
#include "engine/features.h"
#include "harness.h"
#include "kernels/core.h"
#include "segmint/store.h"

static void die(const char *what, const sm_error *err)
{
    char text[1024];
    sm_error_format(err, text, sizeof text);
    fprintf(stderr, "bench_import: %s: %s\n", what, text);
    exit(1);
}

typedef struct import_case {
    const char *csv;
    char store[4096];
    sm_import_result result;
    long rss_kb;
} import_case;

static void run_import(void *ctx)
{
    import_case *c = ctx;
    sm_error err;
    sm_store *store;
    if (sm_store_open(c->store, SM_STORE_CREATE | SM_STORE_BULK, &store, &err) != SM_OK)
        die("open", &err);
    sm_import_options options;
    sm_import_options_init(&options);
    const char *paths[] = {c->csv};
    bench_peak_rss_reset();
    if (sm_store_import(store, paths, 1, &options, &c->result, &err) != SM_OK)
        die("import", &err);
    c->rss_kb = bench_peak_rss_kb();
    sm_store_close(store);
}

typedef struct features_case {
    const char *store_dir;
    uint64_t customers;
    double load_s, compute_s, store_s;
    long rss_kb;
} features_case;

static void run_features(void *ctx)
{
    features_case *c = ctx;
    sm_error err;
    sm_store *store;
    bench_peak_rss_reset();
    double t0 = bench_now();
    if (sm_store_open(c->store_dir, SM_STORE_READ_WRITE, &store, &err) != SM_OK)
        die("open", &err);
    sm_store_info info;
    sm_tx_table tx;
    if (sm_store_get_info(store, &info, &err) != SM_OK || sm_store_load_tx(store, &tx, NULL, &err) != SM_OK)
        die("load", &err);
    double t1 = bench_now();
    sm_customer_stats stats;
    sm_feature_set set;
    if (sm_customer_stats_compute(&tx, info.last_time, 0, &stats, &err) != SM_OK ||
        sm_features_build(&stats, &set, &err) != SM_OK)
        die("features", &err);
    double t2 = bench_now();
    if (sm_store_features_put(store, "bench", set.matrix.data, set.matrix.n, (uint32_t)set.matrix.d, set.matrix.ld,
                              (const char *const *)set.matrix.column_names, set.customers, &err) != SM_OK)
        die("features put", &err);
    double t3 = bench_now();
    c->customers = set.matrix.n;
    c->load_s = t1 - t0;
    c->compute_s = t2 - t1;
    c->store_s = t3 - t2;
    c->rss_kb = bench_peak_rss_kb();
    sm_feature_set_free(&set);
    sm_customer_stats_free(&stats);
    sm_tx_table_free(&tx);
    sm_store_close(store);
}

static double file_mib(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / 1048576.0 : 0.0;
}

static void one_size(uint64_t customers, const char *label, int reps)
{
    const char *dir = bench_scratch_dir();
    char csv[4096], truth[4200], rules[4200], shape[128];
    snprintf(csv, sizeof csv, "%s/import_%s.csv", dir, label);
    snprintf(truth, sizeof truth, "%s/import_%s.truth.csv", dir, label);
    snprintf(rules, sizeof rules, "%s/import_%s.rules.csv", dir, label);

    /* generate (once; its own row) */
    sm_gen_params params;
    sm_gen_params_init(&params);
    params.n_customers = customers;
    params.seed = 2026;
    sm_gen_summary summary;
    sm_error err;
    bench_peak_rss_reset();
    double t0 = bench_now();
    FILE *f = fopen(csv, "w"), *ft = fopen(truth, "w"), *fr = fopen(rules, "w");
    if (f == NULL || ft == NULL || fr == NULL || sm_gen_write(&params, f, ft, fr, NULL, &summary, &err) != SM_OK)
        die("generate", &err);
    fclose(f);
    fclose(ft);
    fclose(fr);
    double gen_s = bench_now() - t0;
    snprintf(shape, sizeof shape, "%s rows (%" PRIu64 " customers, %.0f MiB CSV)", label, customers, file_mib(csv));
    int threads = bench_threads();
    bench_record gen = {.bench = "import", .case_name = shape, .impl = "segmint gen",
                        .stats = {gen_s, gen_s, gen_s, 1}, .per = "run",
                        .throughput = (double)summary.rows / gen_s, .throughput_unit = "rows/s",
                        .peak_rss_kb = bench_peak_rss_kb(), .threads = threads};
    bench_report(&gen);

    import_case ic = {.csv = csv};
    snprintf(ic.store, sizeof ic.store, "%s/import_%s.store", dir, label);
    /* Each import goes into a fresh store; deleting the last one (a
     * gigabyte of file at 10M rows) is not part of the import's time. */
    double samples[64];
    reps = reps < 64 ? reps : 64;
    for (int r = 0; r < reps; r++) {
        bench_remove_tree(ic.store);
        double start = bench_now();
        run_import(&ic);
        samples[r] = bench_now() - start;
    }
    bench_stats imp = bench_summarise(samples, reps);
    char note[160], data_mdb[4200];
    snprintf(data_mdb, sizeof data_mdb, "%s/data.mdb", ic.store);
    sm_store *store;
    sm_store_info info;
    if (sm_store_open(ic.store, SM_STORE_READ_ONLY, &store, &err) != SM_OK || sm_store_get_info(store, &info, &err) != SM_OK)
        die("info", &err);
    sm_store_close(store);
    snprintf(note, sizeof note, "store %.0f MiB used, data.mdb %.0f MiB, %u map growths, %u spilled runs",
             (double)info.used_bytes / 1048576.0, file_mib(data_mdb), ic.result.map_growths,
             ic.result.spilled_runs);
    bench_record r = {.bench = "import", .case_name = shape, .impl = "segmint import", .stats = imp, .per = "run",
                      .throughput = (double)ic.result.rows_stored / imp.median, .throughput_unit = "rows/s",
                      .peak_rss_kb = ic.rss_kb, .threads = threads, .note = note};
    bench_report(&r);

    features_case fc = {.store_dir = ic.store};
    double *load = calloc((size_t)reps, sizeof *load), *compute = calloc((size_t)reps, sizeof *compute);
    double *total = calloc((size_t)reps, sizeof *total);
    for (int i = 0; i < reps; i++) {
        run_features(&fc);
        load[i] = fc.load_s;
        compute[i] = fc.compute_s;
        total[i] = fc.load_s + fc.compute_s + fc.store_s;
    }
    bench_stats load_stats = bench_summarise(load, reps), compute_stats = bench_summarise(compute, reps);
    bench_stats total_stats = bench_summarise(total, reps);
    snprintf(note, sizeof note, "load tx %.3f s + compute %.3f s + store (median parts)", load_stats.median,
             compute_stats.median);
    bench_record feat = {.bench = "import", .case_name = shape, .impl = "segmint features (load+compute+store)",
                         .stats = total_stats, .per = "run", .throughput = (double)fc.customers / total_stats.median,
                         .throughput_unit = "customers/s", .peak_rss_kb = fc.rss_kb, .threads = threads, .note = note};
    bench_report(&feat);
    bench_record comp = {.bench = "import", .case_name = shape, .impl = "features compute only",
                         .stats = compute_stats, .per = "run",
                         .throughput = (double)fc.customers / compute_stats.median,
                         .throughput_unit = "customers/s", .threads = threads};
    bench_report(&comp);
    free(load);
    free(compute);
    free(total);
    bench_remove_tree(ic.store);
    unlink(csv);
    unlink(truth);
    unlink(rules);
}

int main(void)
{
    const char *reps_env = getenv("BENCH_REPS");
    int reps = reps_env ? atoi(reps_env) : 3;
    if (reps < 1)
        reps = 1;
    bench_print_header("Import: generate -> import -> features");
    /* ~12.2 rows per generated customer */
    one_size(82000, "1M", reps);
    one_size(820000, "10M", reps);
    if (getenv("BENCH_IMPORT_100M") != NULL)
        one_size(8200000, "100M", 1);
    return 0;
}
