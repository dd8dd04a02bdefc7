/* SPDX-License-Identifier: MIT */
/*
 * `segmint rfm`: grades every customer of a store as of a date: RFM scores,
 * code and named segment, value tier (80/20) with the Pareto curve, and
 * lifecycle stage; optionally with BG/NBD + Gamma-Gamma CLV for the tiers
 * and P(alive) for churn. Per-customer rows to CSV / JSONL and as a run.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/assignments.h"
#include "engine/cli/cli.h"
#include "engine/clv_model.h"
#include "engine/clv_summary.h"
#include "engine/output.h"
#include "engine/rfm_features.h"
#include "engine/rfm_segments.h"
#include "engine/run_record.h"
#include "segmint/rfm.h"
#include "segmint/store.h"
#include "storage/fields.h"

static const char usage[] =
    "usage: segmint rfm --store DIR [--as-of DATE] [--segments FILE] [--out OUT] [options]\n"
    "\n"
    "Grades every customer with a purchase by the as-of date: R = days since the last\n"
    "purchase, F = orders, M = net spend, each scored 1..5 by quintiles (equal values get\n"
    "equal scores: 1 + floor(5 x customers strictly worse / n)), the RFM code, a named\n"
    "segment (first matching rule of the segment table), a value tier (key / ordinary /\n"
    "small: the customers making the top 80% of value, the first 20% of all customers\n"
    "being key) and a lifecycle stage (potential, new, repeat, loyal, at_risk, churned).\n"
    "\n"
    "  --store DIR          the store (the grading is stored there as a run)\n"
    "  --as-of DATE         YYYY-MM-DD or ISO 8601 (default: the last stored transaction)\n"
    "  --segments FILE      segment table (CSV: segment,r_min,r_max,f_min,f_max,m_min,m_max;\n"
    "                       first match wins; see --print-segments for the default)\n"
    "  --print-segments     print the segment table in that format and exit\n"
    "  --out FILE           per-customer rows, .csv or .jsonl\n"
    "  --clv                fit BG/NBD + Gamma-Gamma (days) as of the date: tiers by 12-month\n"
    "                       CLV instead of net spend, churn also by P(alive) < 0.5\n"
    "  --value-share S      value share of the top customers (default 0.8)\n"
    "  --key-share S        share of all customers that can be key (default 0.2)\n"
    "  --new-days D         first purchase within D days: new (default 90)\n"
    "  --churn-days D       no purchase for D days: churned (default 365)\n"
    "  --at-risk-factor F   gap > F x own inter-purchase time: at risk (default 2)\n"
    "  --loyal-orders K     orders for loyal (default 5)\n"
    "  --json               print the summary as one JSON object\n"
    "  --no-store           do not store the run (opens the store read-only)\n"
    "  --threads T          threads (default: all cores)\n"
    "  --force              overwrite --out if it exists\n"
    "  --quiet              no progress line\n";

static int run_rfm(int argc, char **argv);
const sm_cli_command sm_cmd_rfm = {"rfm", "RFM scores and segments, value tiers, lifecycle stages",
                                   usage, run_rfm};

typedef struct rfm_args {
    int64_t started; /* UTC seconds, for the run record */
    const char *store, *segments, *out;
    int64_t as_of;
    bool print_segments, clv, json, no_store, force, quiet;
    int threads;
    sm_tier_params tiers;
    sm_lifecycle_params life;
} rfm_args;

static int parse_args(int argc, char **argv, rfm_args *a)
{
    memset(a, 0, sizeof *a);
    a->started = (int64_t)time(NULL);
    sm_tier_params_init(&a->tiers);
    sm_lifecycle_params_init(&a->life);
    enum { OPT_STORE = 256, OPT_AS_OF, OPT_SEGMENTS, OPT_PRINT, OPT_OUT, OPT_CLV, OPT_VALUE_SHARE,
           OPT_KEY_SHARE, OPT_NEW, OPT_CHURN, OPT_RISK, OPT_LOYAL, OPT_JSON, OPT_NO_STORE,
           OPT_THREADS, OPT_FORCE, OPT_QUIET };
    static const struct option options[] = {
        {"store", required_argument, NULL, OPT_STORE},
        {"as-of", required_argument, NULL, OPT_AS_OF},
        {"segments", required_argument, NULL, OPT_SEGMENTS},
        {"print-segments", no_argument, NULL, OPT_PRINT},
        {"out", required_argument, NULL, OPT_OUT},
        {"clv", no_argument, NULL, OPT_CLV},
        {"value-share", required_argument, NULL, OPT_VALUE_SHARE},
        {"key-share", required_argument, NULL, OPT_KEY_SHARE},
        {"new-days", required_argument, NULL, OPT_NEW},
        {"churn-days", required_argument, NULL, OPT_CHURN},
        {"at-risk-factor", required_argument, NULL, OPT_RISK},
        {"loyal-orders", required_argument, NULL, OPT_LOYAL},
        {"json", no_argument, NULL, OPT_JSON},
        {"no-store", no_argument, NULL, OPT_NO_STORE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"force", no_argument, NULL, OPT_FORCE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {NULL, 0, NULL, 0}};
    const sm_cli_command *cmd = &sm_cmd_rfm;
    opterr = 0;
    optind = 1;
    int opt;
    uint64_t k;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_STORE: a->store = optarg; break;
        case OPT_AS_OF:
            if (sm_parse_time_iso(optarg, strlen(optarg), &a->as_of) != SM_FIELD_OK)
                return sm_cli_usage_error(cmd, "--as-of: '%s' is not a date (YYYY-MM-DD or ISO 8601)",
                                          optarg);
            break;
        case OPT_SEGMENTS: a->segments = optarg; break;
        case OPT_PRINT: a->print_segments = true; break;
        case OPT_OUT: a->out = optarg; break;
        case OPT_CLV: a->clv = true; break;
        case OPT_VALUE_SHARE:
            if (!sm_cli_parse_double(cmd, "--value-share", optarg, 1e-9, 1.0, &a->tiers.value_share))
                return SM_EXIT_USAGE;
            break;
        case OPT_KEY_SHARE:
            if (!sm_cli_parse_double(cmd, "--key-share", optarg, 1e-9, 1.0,
                                     &a->tiers.key_customer_share))
                return SM_EXIT_USAGE;
            break;
        case OPT_NEW:
            if (!sm_cli_parse_double(cmd, "--new-days", optarg, 0.0, 36500.0, &a->life.new_window))
                return SM_EXIT_USAGE;
            break;
        case OPT_CHURN:
            if (!sm_cli_parse_double(cmd, "--churn-days", optarg, 1.0, 36500.0, &a->life.churn_after))
                return SM_EXIT_USAGE;
            break;
        case OPT_RISK:
            if (!sm_cli_parse_double(cmd, "--at-risk-factor", optarg, 1.0, 1000.0,
                                     &a->life.at_risk_factor))
                return SM_EXIT_USAGE;
            break;
        case OPT_LOYAL:
            if (!sm_cli_parse_u64(cmd, "--loyal-orders", optarg, 2, 1000000, &k))
                return SM_EXIT_USAGE;
            a->life.loyal_min_purchases = (uint32_t)k;
            break;
        case OPT_JSON: a->json = true; break;
        case OPT_NO_STORE: a->no_store = true; break;
        case OPT_THREADS:
            if (!sm_cli_parse_threads(cmd, optarg, &a->threads))
                return SM_EXIT_USAGE;
            break;
        case OPT_FORCE: a->force = true; break;
        case OPT_QUIET: a->quiet = true; break;
        default: return sm_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return sm_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (a->store == NULL && !a->print_segments)
        return sm_cli_usage_error(cmd, "--store DIR is required");
    const char *ext = a->out != NULL ? sm_path_extension(a->out) : "";
    if (a->out != NULL && strcmp(a->out, "-") != 0 && strcmp(ext, "csv") != 0 &&
        strcmp(ext, "jsonl") != 0)
        return sm_cli_usage_error(cmd, "--out: expected a .csv or .jsonl file, got '%s'", a->out);
    return SM_EXIT_OK;
}

static const char *segment_name(const sm_rfm_segment_table *t, uint16_t s)
{
    return s < t->n_rules ? t->rules[s].name : SM_RFM_OTHER;
}

static int write_rows(const rfm_args *a, const sm_rfm_result *r, const sm_rfm_segment_table *seg,
                      const sm_key_table *keys, const double *p_alive, const double *clv,
                      sm_error *err)
{
    sm_output *out = NULL;
    int rc = sm_output_open(a->out, a->force, &out, err);
    if (rc != SM_OK)
        return rc;
    FILE *f = sm_output_stream(out);
    bool jsonl = strcmp(sm_path_extension(a->out), "jsonl") == 0;
    if (!jsonl)
        fprintf(f, "customer_id,recency_days,frequency,monetary,r,f,m,rfm_code,segment,value,tier,"
                   "lifecycle%s\n",
                p_alive != NULL ? ",p_alive,clv" : "");
    for (size_t i = 0; i < r->n; i++) {
        sm_customer_id c = r->customer[i];
        const char *key = keys->keys[c];
        const char *name = segment_name(seg, r->segment[i]);
        if (jsonl) {
            fputs("{\"customer_id\": ", f);
            sm_json_put_string(f, key);
            fputs(", \"recency_days\": ", f);
            sm_json_put_double(f, r->recency_days[i]);
            fprintf(f, ", \"frequency\": %u, \"monetary\": ", r->frequency[i]);
            sm_json_put_double(f, r->monetary[i]);
            fprintf(f, ", \"r\": %u, \"f\": %u, \"m\": %u, \"rfm_code\": %u, \"segment\": ", r->r[i],
                    r->f[i], r->m[i], r->code[i]);
            sm_json_put_string(f, name);
            fputs(", \"value\": ", f);
            sm_json_put_double(f, r->value[i]);
            fprintf(f, ", \"tier\": \"%s\", \"lifecycle\": \"%s\"", sm_value_tier_names[r->tier[i]],
                    sm_lifecycle_stage_name(r->stage[i]));
            if (p_alive != NULL) {
                fputs(", \"p_alive\": ", f);
                sm_json_put_double(f, p_alive[c]);
                fputs(", \"clv\": ", f);
                sm_json_put_double(f, clv != NULL ? clv[c] : NAN);
            }
            fputs("}\n", f);
        } else {
            sm_csv_put_text(f, key, ',');
            fputc(',', f);
            sm_csv_put_double(f, r->recency_days[i]);
            fprintf(f, ",%u,", r->frequency[i]);
            sm_csv_put_double(f, r->monetary[i]);
            fprintf(f, ",%u,%u,%u,%u,", r->r[i], r->f[i], r->m[i], r->code[i]);
            sm_csv_put_text(f, name, ',');
            fputc(',', f);
            sm_csv_put_double(f, r->value[i]);
            fprintf(f, ",%s,%s", sm_value_tier_names[r->tier[i]],
                    sm_lifecycle_stage_name(r->stage[i]));
            if (p_alive != NULL) {
                fputc(',', f);
                sm_csv_put_double(f, p_alive[c]);
                fputc(',', f);
                sm_csv_put_double(f, clv != NULL ? clv[c] : NAN);
            }
            fputc('\n', f);
        }
    }
    return sm_output_commit(out, err);
}

/* Summary as JSON: counts per segment, tiers, Pareto curve, lifecycle. */
static void print_summary(FILE *f, bool json, const rfm_args *a, int64_t as_of,
                          const sm_rfm_result *r, const sm_rfm_segment_table *seg, bool by_clv)
{
    size_t n_seg = seg->n_rules + 1, stages[6] = {0};
    size_t *per_seg = calloc(n_seg, sizeof *per_seg);
    for (size_t i = 0; i < r->n; i++) {
        if (per_seg != NULL)
            per_seg[r->segment[i]]++;
        stages[r->stage[i]]++;
    }
    char when[32];
    sm_format_time_iso(as_of, when);
    const sm_tier_summary *t = &r->tiers;
    if (json) {
        fprintf(f, "{\"customers\": %zu, \"as_of\": \"%s\", \"value\": \"%s\", \"segments\": {",
                r->n, when, by_clv ? "clv" : "monetary");
        bool first = true;
        for (size_t k = 0; per_seg != NULL && k < n_seg; k++) {
            if (per_seg[k] == 0)
                continue;
            fprintf(f, "%s", first ? "" : ", ");
            sm_json_put_string(f, k < seg->n_rules ? seg->rules[k].name : SM_RFM_OTHER);
            fprintf(f, ": %zu", per_seg[k]);
            first = false;
        }
        fprintf(f, "}, \"tiers\": {");
        for (int k = 0; k < 3; k++) {
            fprintf(f, "%s\"%s\": {\"customers\": %zu, \"value_share\": ", k ? ", " : "",
                    sm_value_tier_names[k], t->count[k]);
            sm_json_put_double(f, t->total_value > 0 ? t->value[k] / t->total_value : 0.0);
            fputc('}', f);
        }
        fprintf(f, "}, \"top20_value_share\": ");
        sm_json_put_double(f, t->top20_value_share);
        fprintf(f, ", \"customers_for_80\": ");
        sm_json_put_double(f, t->customers_for_80);
        fprintf(f, ", \"pareto\": [");
        for (int k = 0; k < SM_RFM_PARETO_POINTS; k++) {
            fprintf(f, "%s", k ? ", " : "");
            sm_json_put_double(f, r->pareto[k]);
        }
        fprintf(f, "], \"lifecycle\": {");
        for (int k = 0; k < 6; k++)
            fprintf(f, "%s\"%s\": %zu", k ? ", " : "", sm_lifecycle_stage_name(k), stages[k]);
        fprintf(f, "}}\n");
    } else {
        fprintf(f, "graded %zu customers as of %.10s (%zu without a purchase by then left out)\n",
                r->n, when, r->n_no_purchase);
        fprintf(f, "segments:\n");
        for (size_t k = 0; per_seg != NULL && k < n_seg; k++)
            if (per_seg[k] > 0)
                fprintf(f, "  %-20s %8zu  %5.1f%%\n",
                        k < seg->n_rules ? seg->rules[k].name : SM_RFM_OTHER, per_seg[k],
                        100.0 * (double)per_seg[k] / (double)r->n);
        fprintf(f, "value tiers by %s (top %.0f%% of value; key = first %.0f%% of customers):\n",
                by_clv ? "CLV" : "net spend", 100.0 * a->tiers.value_share,
                100.0 * a->tiers.key_customer_share);
        for (int k = 0; k < 3; k++)
            fprintf(f, "  %-9s %8zu customers  %5.1f%% of value\n", sm_value_tier_names[k],
                    t->count[k], t->total_value > 0 ? 100.0 * t->value[k] / t->total_value : 0.0);
        fprintf(f, "  Pareto: the top 20%% of customers hold %.1f%% of value; %.1f%% of customers "
                   "hold 80%%\n",
                100.0 * t->top20_value_share, 100.0 * t->customers_for_80);
        /* the whole curve, for a reader who wants to see where it bends */
        fprintf(f, "  Pareto curve (share of customers: share of value):");
        for (int k = 1; k < SM_RFM_PARETO_POINTS; k++)
            fprintf(f, "%s %.0f%%: %.1f%%", k % 5 == 1 ? "\n   " : "",
                    100.0 * k / (SM_RFM_PARETO_POINTS - 1), 100.0 * r->pareto[k]);
        fprintf(f, "\n");
        fprintf(f, "lifecycle:");
        for (int k = 0; k < 6; k++)
            fprintf(f, " %s %zu%s", sm_lifecycle_stage_name(k), stages[k], k < 5 ? "," : "\n");
    }
    free(per_seg);
}

/* The run record's details: the options and the summary object. */
static char *run_details(const rfm_args *a, int64_t as_of, const sm_rfm_result *r,
                         const sm_rfm_segment_table *seg, bool by_clv, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (f == NULL)
        return NULL;
    fprintf(f, "{\"value_share\": ");
    sm_json_put_double(f, a->tiers.value_share);
    fprintf(f, ", \"key_customer_share\": ");
    sm_json_put_double(f, a->tiers.key_customer_share);
    fprintf(f, ", \"summary\": ");
    print_summary(f, true, a, as_of, r, seg, by_clv);
    fprintf(f, "}");
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    /* print_summary ends its object with a newline: keep the record on one line */
    for (char *p = text; (p = strchr(p, '\n')) != NULL;)
        *p = ' ';
    return text;
}

/* Stores one assignment row per graded customer and the run record (kind
 * "rfm", the segment and stage names the rows index) through
 * engine/run_record, so that `segmint runs/export/diff` read it. */
static int store_run(sm_store *store, const rfm_args *a, int64_t as_of, const sm_rfm_result *r,
                     const sm_rfm_segment_table *seg, const double *p_alive, const double *clv,
                     const char *details, uint64_t *run_id, sm_error *err)
{
    if (seg->n_rules >= SM_INDEX_NONE)
        return sm_error_set(err, SM_ERR_INVALID_ARG,
                            "a stored run holds at most %d segment rules (the table has %zu); use "
                            "--no-store",
                            SM_INDEX_NONE - 1, seg->n_rules);
    sm_assignment *rows = malloc(r->n * sizeof *rows);
    const char **names = malloc((seg->n_rules + 1) * sizeof *names);
    if (rows == NULL || names == NULL) {
        free(rows);
        free(names);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu assignments", r->n);
    }
    for (size_t k = 0; k <= seg->n_rules; k++)
        names[k] = k < seg->n_rules ? seg->rules[k].name : SM_RFM_OTHER;
    const char *stages[6];
    for (int k = 0; k < 6; k++)
        stages[k] = sm_lifecycle_stage_name(k);
    for (size_t i = 0; i < r->n; i++) {
        sm_assignment *row = &rows[i];
        sm_assignment_clear(row);
        row->r_score = r->r[i];
        row->f_score = r->f[i];
        row->m_score = r->m[i];
        row->rfm_segment = (uint8_t)r->segment[i];
        row->value_tier = r->tier[i];
        row->lifecycle = r->stage[i];
        if (p_alive != NULL)
            row->p_alive = p_alive[r->customer[i]];
        if (clv != NULL)
            row->clv_model = clv[r->customer[i]];
    }
    sm_run_description run;
    memset(&run, 0, sizeof run);
    run.kind = "rfm";
    run.started = a->started;
    run.finished = (int64_t)time(NULL);
    run.as_of = as_of;
    run.rfm_segments = names;
    run.n_rfm_segments = (uint32_t)seg->n_rules + 1;
    run.lifecycle = stages;
    run.n_lifecycle = 6;
    run.counts[run.n_counts++] = (sm_run_pair){"customers", (double)r->n};
    run.counts[run.n_counts++] = (sm_run_pair){"without_purchase", (double)r->n_no_purchase};
    for (int k = 0; k < 3; k++)
        run.counts[run.n_counts++] = (sm_run_pair){sm_value_tier_names[k], (double)r->tiers.count[k]};
    run.details_json = details;
    int rc = sm_run_store(store, &run, r->customer, rows, r->n, run_id, err);
    free(rows);
    free(names);
    return rc;
}

static int run_rfm(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_rfm, argc, argv))
        return SM_EXIT_OK;
    rfm_args a;
    int code = parse_args(argc, argv, &a);
    if (code != SM_EXIT_OK)
        return code;
    sm_error err;
    sm_error_clear(&err);
    sm_rfm_segment_file file;
    memset(&file, 0, sizeof file);
    const sm_rfm_segment_table *seg = sm_rfm_default_segments();
    if (a.segments != NULL) {
        if (sm_rfm_segments_read(a.segments, &file, &err) != SM_OK)
            return sm_cli_fail(&err);
        seg = &file.table;
    }
    if (a.print_segments) {
        sm_rfm_segments_write(stdout, seg);
        sm_rfm_segments_free(&file);
        return SM_EXIT_OK;
    }
    sm_store *store = NULL;
    sm_tx_table tx;
    memset(&tx, 0, sizeof tx);
    sm_key_table keys;
    memset(&keys, 0, sizeof keys);
    sm_rfm_result r;
    memset(&r, 0, sizeof r);
    double *p_alive = NULL, *clv = NULL;
    sm_cli_progress bar;
    sm_progress progress = sm_cli_progress_start(&bar, a.quiet);
    int rc = sm_store_open(a.store, a.no_store ? SM_STORE_READ_ONLY : SM_STORE_READ_WRITE, &store,
                           &err);
    sm_store_info info;
    if (rc == SM_OK)
        rc = sm_store_get_info(store, &info, &err);
    if (rc == SM_OK && (!info.has_time || info.customers == 0))
        rc = sm_error_set_at(&err, SM_ERR_INVALID_ARG, a.store, 0, 0, NULL,
                             "the store has no dated customer transactions");
    int64_t as_of = a.as_of;
    if (rc == SM_OK && as_of == 0)
        as_of = info.last_time;
    if (rc == SM_OK)
        rc = sm_store_load_tx(store, &tx, &progress, &err);
    if (rc == SM_OK)
        rc = sm_store_load_keys(store, SM_KEYS_CUSTOMERS, &keys, &err);
    sm_customer_stats stats;
    memset(&stats, 0, sizeof stats);
    if (rc == SM_OK)
        rc = sm_customer_stats_compute(&tx, sm_end_of_day(as_of), a.threads, &stats, &err);
    if (rc == SM_OK && a.clv) {
        /* --clv: BG/NBD + Gamma-Gamma in days, 12 months at 1% a month, margin 1 */
        size_t n = tx.n_customers + 1;
        p_alive = malloc(n * sizeof *p_alive);
        clv = malloc(n * sizeof *clv);
        double *next = malloc(n * sizeof *next);
        sm_clv_job job;
        memset(&job, 0, sizeof job);
        sm_clv_job_options jo = {.unit = SM_UNIT_DAY, .months = 12, .discount = 0.01, .margin = 1.0,
                                 .n_threads = a.threads};
        rc = p_alive && clv && next ? sm_clv_from_tx(&tx, &stats, &jo, 30.0, p_alive, next, clv, &job, &err)
                                    : sm_error_set(&err, SM_ERR_NOMEM, "out of memory");
        if (rc == SM_OK && !job.have_gg) { /* no spend model: tiers by monetary */
            free(clv);
            clv = NULL;
        }
        sm_clv_job_free(&job);
        free(next);
    }
    if (rc == SM_OK)
        rc = sm_rfm_compute(&stats, seg, &a.tiers, &a.life, clv, p_alive, a.threads, &r, &err);
    sm_customer_stats_free(&stats);
    sm_cli_progress_end(&bar);
    if (rc == SM_OK && a.out != NULL)
        rc = write_rows(&a, &r, seg, &keys, p_alive, clv, &err);
    uint64_t run_id = 0;
    if (rc == SM_OK && !a.no_store) {
        size_t len;
        char *record = run_details(&a, as_of, &r, seg, clv != NULL, &len);
        rc = record != NULL ? store_run(store, &a, as_of, &r, seg, p_alive, clv, record, &run_id, &err)
                            : sm_error_set(&err, SM_ERR_NOMEM, "out of memory");
        free(record);
    }
    if (rc == SM_OK) {
        print_summary(stdout, a.json, &a, as_of, &r, seg, clv != NULL);
        if (run_id != 0)
            fprintf(a.json ? stderr : stdout, "stored as run %llu in %s\n",
                    (unsigned long long)run_id, a.store);
    }
    sm_rfm_result_free(&r);
    free(p_alive);
    free(clv);
    sm_key_table_free(&keys);
    sm_tx_table_free(&tx);
    sm_store_close(store);
    sm_rfm_segments_free(&file);
    return rc == SM_OK ? SM_EXIT_OK : sm_cli_fail(&err);
}
