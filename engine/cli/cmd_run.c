/* SPDX-License-Identifier: MIT */
/*
 * `segmint run`: the whole segmentation in one command (engine/segmentation.h),
 * one row per customer to CSV/JSONL and to the store's runs/assignments in one
 * write transaction. The output file is renamed into place only after the
 * store commit, so Ctrl-C or a failure leaves neither half-written.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/assignments.h"
#include "engine/cli/cli.h"
#include "engine/config.h"
#include "engine/output.h"
#include "engine/run_record.h"
#include "engine/segmentation.h"
#include "segmint/rfm.h"
#include "segmint/store.h"
#include "storage/fields.h"

static const char usage[] =
    "usage: segmint run --store DIR [--out segments.csv|segments.jsonl] [options]\n"
    "\n"
    "Segments every customer of the store in one pass: k-means segment and name, RFM\n"
    "scores and segment, value tier, lifecycle stage, CLV (historic, discounted, BG/NBD +\n"
    "Gamma-Gamma), P(alive), expected purchases, anomaly score and flag, and cross-sell\n"
    "items. One row per customer (README: Output formats), stored as a run.\n"
    "\n"
    "  --store DIR         the store (opened read-write to record the run)\n"
    "  --out FILE          write the rows as CSV or JSON Lines (by extension or --format)\n"
    "  --format F          csv or jsonl\n"
    "  --config FILE       settings file (key = value, [sections]; see --dry-run)\n"
    "  --set KEY=VALUE     one setting, e.g. --set kmeans.k=6 (repeatable)\n"
    "  --as-of DATE        same as --set as_of=DATE\n"
    "  -k K|auto           same as --set kmeans.k=K\n"
    "  --threads T         same as --set threads=T\n"
    "  --dry-run           print the effective configuration and stop\n"
    "  --no-store          do not record the run in the store (opens it read-only)\n"
    "  --force             overwrite --out if it exists\n"
    "  --quiet             no progress lines or summary\n"
    "  --json              print the summary as one JSON object\n"
    "Command-line settings override the config file, wherever they appear.\n";

static int run_run(int argc, char **argv);
const sm_cli_command sm_cmd_run = {"run", "segment every customer: the full CRM assignment run", usage, run_run};

enum { MAX_SETTINGS = 128 };

typedef struct run_args {
    const char *store, *out, *format, *config;
    const char *keys[MAX_SETTINGS], *values[MAX_SETTINGS];
    char *owned[MAX_SETTINGS];
    int n_settings;
    bool dry_run, no_store, force, quiet, json;
} run_args;

static bool add_setting(run_args *a, const char *key, const char *value)
{
    if (a->n_settings == MAX_SETTINGS)
        return false;
    a->keys[a->n_settings] = key;
    a->values[a->n_settings] = value;
    a->n_settings++;
    return true;
}

static int parse_args(int argc, char **argv, run_args *a)
{
    memset(a, 0, sizeof *a);
    static const struct option options[] = {
        {"store", required_argument, NULL, 's'},   {"out", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},  {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'S'},     {"as-of", required_argument, NULL, 'a'},
        {"threads", required_argument, NULL, 't'}, {"dry-run", no_argument, NULL, 'D'},
        {"no-store", no_argument, NULL, 'N'},      {"force", no_argument, NULL, 'F'},
        {"quiet", no_argument, NULL, 'q'},         {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0}};
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "k:", options, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
        case 's': a->store = optarg; break;
        case 'o': a->out = optarg; break;
        case 'f': a->format = optarg; break;
        case 'c': a->config = optarg; break;
        case 'a': ok = add_setting(a, "as_of", optarg); break;
        case 'k': ok = add_setting(a, "kmeans.k", optarg); break;
        case 't': ok = add_setting(a, "threads", optarg); break;
        case 'S': {
            char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg)
                return sm_cli_usage_error(&sm_cmd_run, "--set: expected KEY=VALUE, got '%s'", optarg);
            *eq = '\0';
            ok = add_setting(a, optarg, eq + 1);
            break;
        }
        case 'D': a->dry_run = true; break;
        case 'N': a->no_store = true; break;
        case 'F': a->force = true; break;
        case 'q': a->quiet = true; break;
        case 'j': a->json = true; break;
        default: return sm_cli_usage_error(&sm_cmd_run, "unknown option '%s'", argv[optind - 1]);
        }
        if (!ok)
            return sm_cli_usage_error(&sm_cmd_run, "at most %d settings", MAX_SETTINGS);
    }
    if (optind < argc)
        return sm_cli_usage_error(&sm_cmd_run, "unexpected argument '%s'", argv[optind]);
    if (a->store == NULL && !a->dry_run)
        return sm_cli_usage_error(&sm_cmd_run, "--store is required");
    if (a->format != NULL && strcmp(a->format, "csv") != 0 && strcmp(a->format, "jsonl") != 0)
        return sm_cli_usage_error(&sm_cmd_run, "--format: expected csv or jsonl, got '%s'", a->format);
    return -1;
}

static bool wants_jsonl(const run_args *a)
{
    if (a->format != NULL)
        return strcmp(a->format, "jsonl") == 0;
    const char *ext = sm_path_extension(a->out);
    return strcmp(ext, "jsonl") == 0 || strcmp(ext, "json") == 0;
}

static void print_summary(const sm_segmentation *s, uint64_t run_id, const char *out, double seconds)
{
    char as_of[32];
    sm_format_time_iso(s->as_of, as_of);
    printf("segmented %u customers (%u with a purchase by %s) in %.2f s\n", s->n, s->graded, as_of, seconds);
    printf("\n  %-28s %9s %7s %10s %10s %12s %10s\n", "segment", "customers", "share", "recency d", "orders",
           "monetary", "tenure d");
    for (uint32_t c = 0; c < s->k; c++) {
        const sm_segment_profile *p = &s->segments[c];
        printf("  %-28.28s %9" PRIu64 " %6.1f%% %10.1f %10.2f %12.2f %10.1f\n", p->name, p->size,
               100.0 * (double)p->size / (double)SM_MAX(s->graded, 1u), p->mean[0], p->mean[1], p->mean[2], p->mean[4]);
    }
    printf("  %-28s %9u %7s %10.1f %10.2f %12.2f %10.1f\n", "(all customers)", s->graded, "", s->population_mean[0],
           s->population_mean[1], s->population_mean[2], s->population_mean[4]);
    printf("\n  value tiers: key %" PRIu64 ", ordinary %" PRIu64 ", small %" PRIu64
           "; the top 20%% of customers make %.1f%% of value\n",
           s->tier_count[0], s->tier_count[1], s->tier_count[2], 100.0 * s->pareto_top20_share);
    printf("  lifecycle:");
    for (int i = 0; i < 6; i++)
        printf(" %s %" PRIu64 "%s", sm_lifecycle_stage_name(i), s->stage_count[i], i < 5 ? "," : "\n");
    if (s->have_bgnbd)
        printf("  BG/NBD r=%.4g alpha=%.4g a=%.4g b=%.4g (log-likelihood %.6g)%s\n", s->bgnbd.params.r,
               s->bgnbd.params.alpha, s->bgnbd.params.a, s->bgnbd.params.b, s->bgnbd.loglik,
               s->bgnbd.converged ? "" : " NOT CONVERGED");
    if (s->have_gg)
        printf("  Gamma-Gamma p=%.4g q=%.4g v=%.4g\n", s->gg.params.p, s->gg.params.q, s->gg.params.v);
    printf("  anomalies flagged: %" PRIu64 " (score > %.4f)\n", s->flagged, s->anomaly_threshold);
    printf("  baskets: %" PRIu64 " itemsets, %" PRIu64 " rules; %" PRIu64 " customers with cross-sell items\n",
           s->n_itemsets, s->n_rules, s->with_cross_sell);
    if (s->notes[0] != '\0')
        printf("  notes: %s\n", s->notes);
    printf("  stage seconds:");
    for (uint32_t i = 0; i < s->n_timings; i++)
        printf(" %s %.2f%s", s->timings[i].name, s->timings[i].value, i + 1 < s->n_timings ? "," : "\n");
    if (run_id != 0)
        printf("  stored as run %" PRIu64 "\n", run_id);
    if (out != NULL)
        printf("  wrote %s\n", out);
}

static void print_json_summary(const sm_segmentation *s, uint64_t run_id, const char *out, double seconds)
{
    printf("{\"run\":");
    if (run_id)
        printf("%" PRIu64, run_id);
    else
        fputs("null", stdout);
    printf(",\"customers\":%u,\"graded\":%u,\"seconds\":%.3f,\"segments\":[", s->n, s->graded, seconds);
    for (uint32_t c = 0; c < s->k; c++) {
        printf("%s{\"id\":%u,\"name\":", c ? "," : "", c);
        sm_json_put_string(stdout, s->segments[c].name);
        printf(",\"size\":%" PRIu64 "}", s->segments[c].size);
    }
    printf("],\"tiers\":{\"key\":%" PRIu64 ",\"ordinary\":%" PRIu64 ",\"small\":%" PRIu64 "},\"lifecycle\":{",
           s->tier_count[0], s->tier_count[1], s->tier_count[2]);
    for (int i = 0; i < 6; i++)
        printf("%s\"%s\":%" PRIu64, i ? "," : "", sm_lifecycle_stage_name(i), s->stage_count[i]);
    printf("},\"anomalies\":%" PRIu64 ",\"rules\":%" PRIu64 ",\"timings\":{", s->flagged, s->n_rules);
    for (uint32_t i = 0; i < s->n_timings; i++)
        printf("%s\"%s\":%.3f", i ? "," : "", s->timings[i].name, s->timings[i].value);
    fputs("},\"out\":", stdout);
    if (out)
        sm_json_put_string(stdout, out);
    else
        fputs("null", stdout);
    fputs(",\"notes\":", stdout);
    sm_json_put_string(stdout, s->notes);
    fputs("}\n", stdout);
}

static int run_run(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_run, argc, argv))
        return SM_EXIT_OK;
    run_args a;
    int code = parse_args(argc, argv, &a);
    if (code >= 0)
        return code;

    sm_error err;
    sm_error_clear(&err);
    sm_run_config config;
    sm_run_config_init(&config);
    int rc = SM_OK;
    if (a.config != NULL)
        rc = sm_config_parse_file(a.config, sm_run_config_keys, sm_run_config_n_keys, &config, &err);
    for (int i = 0; rc == SM_OK && i < a.n_settings; i++)
        rc = sm_config_set(sm_run_config_keys, sm_run_config_n_keys, &config, a.keys[i], a.values[i], "command line",
                           0, &err);
    if (rc != SM_OK)
        return sm_cli_fail(&err);
    char *config_text = NULL;
    size_t config_len = 0;
    FILE *cf = open_memstream(&config_text, &config_len);
    if (cf == NULL)
        return SM_EXIT_FAILURE;
    fputs("# segmint run configuration\n", cf);
    sm_config_print(cf, sm_run_config_keys, sm_run_config_n_keys, &config);
    fclose(cf);
    if (a.dry_run) {
        fputs(config_text, stdout);
        free(config_text);
        return SM_EXIT_OK;
    }

    sm_store *store = NULL;
    sm_output *output = NULL;
    sm_segmentation seg;
    memset(&seg, 0, sizeof seg);
    sm_key_table customers, items;
    memset(&customers, 0, sizeof customers);
    memset(&items, 0, sizeof items);
    char *details = NULL;
    uint64_t run_id = 0;
    int64_t started_utc = (int64_t)time(NULL);
    double started = sm_cli_now();
    sm_cli_progress bar;
    sm_progress progress = sm_cli_progress_start(&bar, a.quiet || a.json);

    /* Refuse an existing --out before the work, not after it. */
    if (a.out != NULL)
        rc = sm_output_open(a.out, a.force, &output, &err);
    if (rc == SM_OK)
        rc = sm_store_open(a.store, a.no_store ? SM_STORE_READ_ONLY : SM_STORE_READ_WRITE, &store, &err);
    /* Everything the run reads comes from one commit, so the counts stored
     * with the run describe the rows it segmented even if an import
     * commits meanwhile. */
    if (rc == SM_OK)
        rc = sm_store_snapshot_begin(store, &err);
    sm_store_info info;
    if (rc == SM_OK)
        rc = sm_store_get_info(store, &info, &err);
    if (rc == SM_OK)
        rc = sm_segmentation_run(store, &config, &progress, &seg, &err);
    if (rc == SM_OK && sm_cli_interrupted())
        rc = sm_error_set(&err, SM_ERR_CANCELLED, "interrupted; nothing was written");
    if (rc == SM_OK)
        rc = sm_store_load_keys(store, SM_KEYS_CUSTOMERS, &customers, &err);
    if (rc == SM_OK)
        rc = sm_store_load_keys(store, SM_KEYS_ITEMS, &items, &err);
    sm_store_snapshot_end(store);
    if (rc == SM_OK && output != NULL) {
        /* rows into the temporary file; renamed after the store commit */
        sm_assignment_names names = {(const char *const *)customers.keys, customers.n,
                                     (const char *const *)items.keys, items.n,
                                     NULL, 0, (const char *const *)seg.rfm_names, seg.n_rfm_names, NULL, 6};
        const char *segment_names[SM_MAX(seg.k, 1u)];
        for (uint32_t c = 0; c < seg.k; c++)
            segment_names[c] = seg.segments[c].name;
        const char *lifecycle[6];
        for (int i = 0; i < 6; i++)
            lifecycle[i] = sm_lifecycle_stage_name(i);
        names.segment_names = segment_names;
        names.n_segments = seg.k;
        names.lifecycle_names = lifecycle;
        FILE *f = sm_output_stream(output);
        bool jsonl = wants_jsonl(&a);
        if (!jsonl)
            sm_assignment_csv_header(f);
        for (uint32_t c = 0; c < seg.n; c++) {
            if (jsonl)
                sm_assignment_jsonl_row(f, seg.customers[c], &seg.rows[c], &names);
            else
                sm_assignment_csv_row(f, seg.customers[c], &seg.rows[c], &names);
        }
    }
    if (rc == SM_OK && !a.no_store) {
        sm_run_description run;
        sm_run_segment segments[SM_MAX(seg.k, 1u)];
        const char *lifecycle[6];
        rc = sm_segmentation_describe(&seg, started_utc, (int64_t)time(NULL), config_text, &info, &run, segments,
                                      lifecycle, &details, &err);
        if (rc == SM_OK && sm_cli_interrupted())
            rc = sm_error_set(&err, SM_ERR_CANCELLED, "interrupted; nothing was written");
        if (rc == SM_OK)
            rc = sm_run_store(store, &run, seg.customers, seg.rows, seg.n, &run_id, &err);
    }
    if (rc == SM_OK && output != NULL) {
        rc = sm_output_commit(output, &err);
        output = NULL;
    }
    sm_output_abort(output);
    sm_cli_progress_end(&bar);
    double seconds = sm_cli_now() - started;
    if (rc == SM_OK && a.json)
        print_json_summary(&seg, run_id, a.out, seconds);
    else if (rc == SM_OK && !a.quiet)
        print_summary(&seg, run_id, a.out, seconds);
    if (rc == SM_ERR_CANCELLED) {
        char why[SM_ERROR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err.msg);
        sm_error_set(&err, SM_ERR_CANCELLED, "interrupted (%.200s); the store and --out are as they were", why);
    }
    free(details);
    free(config_text);
    sm_key_table_free(&customers);
    sm_key_table_free(&items);
    sm_segmentation_free(&seg);
    sm_store_close(store);
    return rc == SM_OK ? SM_EXIT_OK : sm_cli_fail(&err);
}
