/* SPDX-License-Identifier: MIT */
/* `segmint features`: per-customer feature matrix from the store's transactions. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli/cli.h"
#include "engine/customer_stats.h"
#include "engine/features.h"
#include "engine/output.h"
#include "segmint/store.h"
#include "storage/fields.h"

static const char usage[] =
    "usage: segmint features --store DIR [--as-of DATE] [--name NAME] [--out FILE.csv|FILE.npy]\n"
    "\n"
    "Builds the per-customer feature matrix from the store's transactions in one pass\n"
    "and stores it in the features sub-database under NAME (default \"default\").\n"
    "Columns: recency_days, frequency, monetary_total, monetary_mean, tenure_days,\n"
    "interpurchase_days, distinct_items, return_rate (README: Features).\n"
    "\n"
    "  --store DIR        the store\n"
    "  --as-of DATE       YYYY-MM-DD or an ISO 8601 date-time; rows after it are ignored\n"
    "                     (default: the last transaction time in the store)\n"
    "  --name NAME        feature-set name in the store (default \"default\")\n"
    "  --out FILE         also write the matrix (.npy float32, or CSV with a customer_id column)\n"
    "  --no-store         compute and write --out only, leaving the store untouched\n"
    "  --threads T        threads (default: all cores)\n"
    "  --force            overwrite --out if it exists\n"
    "  --quiet            no progress line or summary\n";

static int run_features(int argc, char **argv);
const sm_cli_command sm_cmd_features = {"features", "build the per-customer feature matrix", usage, run_features};

/* CSV: customer_id then the features, one row per customer. */
static int write_csv(const char *path, bool force, const sm_feature_set *set, const sm_key_table *keys, sm_error *err)
{
    sm_output *output;
    int rc = sm_output_open(path, force, &output, err);
    if (rc != SM_OK)
        return rc;
    FILE *f = sm_output_stream(output);
    fputs("customer_id", f);
    for (size_t j = 0; j < set->matrix.d; j++) {
        fputc(',', f);
        sm_csv_put_text(f, set->matrix.column_names[j], ',');
    }
    fputc('\n', f);
    for (size_t i = 0; i < set->matrix.n; i++) {
        sm_csv_put_text(f, keys->keys[set->customers[i]], ',');
        const float *x = set->matrix.data + i * set->matrix.ld;
        for (size_t j = 0; j < set->matrix.d; j++) {
            fputc(',', f);
            sm_csv_put_float(f, x[j]);
        }
        fputc('\n', f);
    }
    return sm_output_commit(output, err);
}

static int run_features(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_features, argc, argv))
        return SM_EXIT_OK;
    const char *store_dir = NULL, *as_of_text = NULL, *name = "default", *out_path = NULL;
    bool force = false, quiet = false, no_store = false;
    int threads = 0;
    enum { OPT_STORE = 256, OPT_AS_OF, OPT_NAME, OPT_OUT, OPT_NO_STORE, OPT_THREADS, OPT_FORCE, OPT_QUIET };
    static const struct option options[] = {
        {"store", required_argument, NULL, OPT_STORE}, {"as-of", required_argument, NULL, OPT_AS_OF},
        {"name", required_argument, NULL, OPT_NAME},   {"out", required_argument, NULL, OPT_OUT},
        {"no-store", no_argument, NULL, OPT_NO_STORE}, {"threads", required_argument, NULL, OPT_THREADS},
        {"force", no_argument, NULL, OPT_FORCE},       {"quiet", no_argument, NULL, OPT_QUIET},
        {NULL, 0, NULL, 0}};
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_STORE: store_dir = optarg; break;
        case OPT_AS_OF: as_of_text = optarg; break;
        case OPT_NAME: name = optarg; break;
        case OPT_OUT: out_path = optarg; break;
        case OPT_NO_STORE: no_store = true; break;
        case OPT_THREADS:
            if (!sm_cli_parse_threads(&sm_cmd_features, optarg, &threads))
                return SM_EXIT_USAGE;
            break;
        case OPT_FORCE: force = true; break;
        case OPT_QUIET: quiet = true; break;
        default: return sm_cli_usage_error(&sm_cmd_features, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return sm_cli_usage_error(&sm_cmd_features, "unexpected argument '%s'", argv[optind]);
    if (store_dir == NULL)
        return sm_cli_usage_error(&sm_cmd_features, "--store is required");
    if (no_store && out_path == NULL)
        return sm_cli_usage_error(&sm_cmd_features, "--no-store needs --out (otherwise nothing is kept)");
    int64_t as_of = 0;
    if (as_of_text != NULL && sm_parse_time_iso(as_of_text, strlen(as_of_text), &as_of) != SM_FIELD_OK)
        return sm_cli_usage_error(&sm_cmd_features, "--as-of: '%s' is not a date (YYYY-MM-DD or ISO 8601)",
                                  as_of_text);

    sm_error err;
    sm_error_clear(&err);
    sm_store *store = NULL;
    sm_tx_table tx = {0};
    sm_customer_stats stats = {0};
    sm_feature_set set = {0};
    sm_key_table keys = {0};
    sm_cli_progress bar;
    sm_progress progress = sm_cli_progress_start(&bar, quiet);
    double started = sm_cli_now();
    int rc = sm_store_open(store_dir, no_store ? SM_STORE_READ_ONLY : SM_STORE_READ_WRITE, &store, &err);
    sm_store_info info;
    if (rc == SM_OK)
        rc = sm_store_get_info(store, &info, &err);
    if (rc == SM_OK && as_of_text == NULL) {
        if (!info.has_time || info.customers == 0)
            rc = sm_error_set_at(&err, SM_ERR_INVALID_ARG, store_dir, 0, 0, NULL,
                                 "the store has no dated customer transactions to build features from");
        as_of = info.last_time;
    }
    if (rc == SM_OK)
        rc = sm_store_load_tx(store, &tx, &progress, &err);
    double loaded = sm_cli_now();
    if (rc == SM_OK)
        rc = sm_customer_stats_compute(&tx, as_of, threads, &stats, &err);
    if (rc == SM_OK)
        rc = sm_features_build(&stats, &set, &err);
    double built = sm_cli_now();
    if (rc == SM_OK && !no_store)
        rc = sm_store_features_put(store, name, set.matrix.data, set.matrix.n, (uint32_t)set.matrix.d, set.matrix.ld,
                                   (const char *const *)set.matrix.column_names, set.customers, &err);
    if (rc == SM_OK && out_path != NULL) {
        if (strcmp(sm_path_extension(out_path), "npy") == 0) {
            rc = sm_matrix_write(out_path, set.matrix.data, set.matrix.n, set.matrix.d, set.matrix.ld,
                                 (const char *const *)set.matrix.column_names, force, &err);
        } else {
            rc = sm_store_load_keys(store, SM_KEYS_CUSTOMERS, &keys, &err);
            if (rc == SM_OK)
                rc = write_csv(out_path, force, &set, &keys, &err);
        }
    }
    sm_cli_progress_end(&bar);
    if (rc == SM_OK && !quiet) {
        char when[32];
        sm_format_time_iso(as_of, when);
        printf("features of %zu customers as of %s (%" PRIu32 " without a purchase by then left out)\n",
               set.matrix.n, when, set.without_purchase);
        printf("  loaded %" PRIu64 " transactions in %.2f s, built in %.2f s%s%s\n", tx.n_rows, loaded - started,
               built - loaded, no_store ? "" : "; stored as ", no_store ? "" : name);
        printf("  %-20s %14s %14s\n", "column", "mean", "max");
        for (size_t j = 0; j < set.matrix.d; j++) {
            double sum = 0.0, max = -1e300;
            for (size_t i = 0; i < set.matrix.n; i++) {
                double v = set.matrix.data[i * set.matrix.ld + j];
                sum += v;
                max = v > max ? v : max;
            }
            printf("  %-20s %14.3f %14.3f\n", set.matrix.column_names[j], sum / (double)set.matrix.n, max);
        }
        if (out_path != NULL)
            printf("  wrote %s\n", out_path);
    }
    sm_key_table_free(&keys);
    sm_feature_set_free(&set);
    sm_customer_stats_free(&stats);
    sm_tx_table_free(&tx);
    sm_store_close(store);
    return rc == SM_OK ? SM_EXIT_OK : sm_cli_fail(&err);
}
