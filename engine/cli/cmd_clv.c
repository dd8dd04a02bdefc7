/* SPDX-License-Identifier: MIT */
/*
 * `segmint clv`: customer lifetime value from a store's transactions (with
 * an optional calibration/holdout split) or from a per-customer summary CSV
 * (the lifetimes layout): BG/NBD + Gamma-Gamma with the lifetimes-style CLV,
 * the classic discounted CLV, or the historic value; fitted parameters to
 * stdout (text or one JSON object), per-customer results to CSV / JSONL and
 * as a run in the store.
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
#include "engine/run_record.h"
#include "segmint/clv.h"
#include "segmint/store.h"
#include "storage/fields.h"

static const char usage[] =
    "usage: segmint clv --store DIR | --summary FILE.csv [options]\n"
    "\n"
    "Customer lifetime value per customer. With --store, the summary is built from the\n"
    "store's transactions (purchases grouped by UTC day, as lifetimes does) up to\n"
    "--calibration-end, and the rest of the log is the holdout the fit is checked on.\n"
    "With --summary, a CSV with a header naming frequency (or x), recency (or t_x), T\n"
    "and optionally customer_id (or ID) and monetary_value (or zbar), in any order (the\n"
    "lifetimes layout): frequency counts repeat purchases, recency and T are in\n"
    "--time-unit units.\n"
    "\n"
    "  --store DIR           the store (results are also stored there as a run)\n"
    "  --summary FILE.csv    a per-customer summary instead of a store\n"
    "  --calibration-end D   with --store: fit on purchases up to day D (YYYY-MM-DD) and\n"
    "                        report predicted vs actual holdout purchases (default: all data)\n"
    "  --model M             bgnbd (default): BG/NBD fit, P(alive), expected purchases,\n"
    "                        and with spend a Gamma-Gamma fit and CLV;\n"
    "                        discounted: sum_{t=1..N} m r^t/(1+d)^t - AC per customer;\n"
    "                        historic: margin x revenue to date - AC - RC, or with\n"
    "                        --item-costs revenue - cost of goods - AC - RC\n"
    "  --time-unit U         day (default), week or month\n"
    "  --horizon N           months to value (default 12)\n"
    "  --discount R          monthly discount rate (default 0.01)\n"
    "  --margin M            profit share of revenue (default 1)\n"
    "  --retention R         monthly retention rate, required by --model discounted\n"
    "  --acquisition-cost C  subtracted once per customer (discounted, historic only; default 0)\n"
    "  --retention-cost C    historic: retention spending per customer to date, subtracted\n"
    "                        (default 0; the discounted formula has no such term and\n"
    "                        refuses it; not the same as --retention, a rate)\n"
    "  --item-costs FILE     historic, with --store: a CSV item,unit_cost (the store's item\n"
    "                        codes, cost per unit in major units >= 0); cost of goods =\n"
    "                        sum of quantity x unit cost over the rows that make revenue\n"
    "                        (returns give cost back); replaces --margin\n"
    "  --missing-cost P      error (default): a counted row whose item the file does not\n"
    "                        price is an error; zero: it costs 0 (counted in a warning)\n"
    "  --out FILE            per-customer results, .csv or .jsonl\n"
    "  --json                print the fitted model as one JSON object\n"
    "  --no-store            with --store: do not store the run (opens the store read-only)\n"
    "  --threads T           threads (default: all cores)\n"
    "  --force               overwrite --out if it exists\n"
    "  --quiet               no progress line\n"
    "\n"
    "BG/NBD CLV follows lifetimes' customer_lifetime_value: for each month k of the\n"
    "horizon, expected purchases in month k (E[Y(k u)] - E[Y((k-1) u)], u = 30 days,\n"
    "4.345 weeks or 1 month) x Gamma-Gamma expected spend x margin / (1+R)^k.\n"
    "The discounted model's monthly margin is margin x monetary_value x frequency / T\n"
    "per unit of time x units per month (the observed repeat revenue rate). Historic\n"
    "revenue is the store's net revenue to calibration end; from a summary only the\n"
    "repeat revenue monetary_value x frequency is known.\n";

typedef enum model { MODEL_BGNBD, MODEL_DISCOUNTED, MODEL_HISTORIC } model;
static const char *const model_names[] = {"bgnbd", "discounted", "historic"};

typedef struct clv_args {
    int64_t started; /* UTC seconds, for the run record */
    const char *summary, *store, *out;
    int64_t calibration_end; /* 0 = none */
    bool no_store;
    model model;
    sm_time_unit unit;
    uint64_t horizon;
    double discount, margin, retention, acquisition, retention_cost;
    bool has_retention, has_margin, has_retention_cost, has_acquisition, json, force, quiet;
    const char *item_costs; /* --item-costs FILE, or NULL */
    bool missing_zero;      /* --missing-cost zero */
    int threads;
} clv_args;

/* Per-customer results, NULL columns are not written. */
typedef struct columns {
    double *p_alive, *expected, *spend, *clv, *cost;
} columns;

static int run_clv(int argc, char **argv);
const sm_cli_command sm_cmd_clv = {"clv", "customer lifetime value: BG/NBD + Gamma-Gamma, discounted, historic",
                                   usage, run_clv};

static int parse_args(int argc, char **argv, clv_args *a)
{
    memset(a, 0, sizeof *a);
    a->started = (int64_t)time(NULL);
    a->model = MODEL_BGNBD;
    a->unit = SM_UNIT_DAY;
    a->horizon = 12;
    a->discount = 0.01;
    a->margin = 1.0;
    enum { OPT_SUMMARY = 256, OPT_STORE, OPT_CAL, OPT_MODEL, OPT_UNIT, OPT_HORIZON, OPT_DISCOUNT,
           OPT_MARGIN, OPT_RETENTION, OPT_ACQ, OPT_RETENTION_COST, OPT_ITEM_COSTS,
           OPT_MISSING_COST, OPT_OUT, OPT_JSON, OPT_NO_STORE, OPT_THREADS, OPT_FORCE, OPT_QUIET };
    static const struct option options[] = {
        {"summary", required_argument, NULL, OPT_SUMMARY},
        {"store", required_argument, NULL, OPT_STORE},
        {"calibration-end", required_argument, NULL, OPT_CAL},
        {"model", required_argument, NULL, OPT_MODEL},
        {"time-unit", required_argument, NULL, OPT_UNIT},
        {"horizon", required_argument, NULL, OPT_HORIZON},
        {"discount", required_argument, NULL, OPT_DISCOUNT},
        {"margin", required_argument, NULL, OPT_MARGIN},
        {"retention", required_argument, NULL, OPT_RETENTION},
        {"acquisition-cost", required_argument, NULL, OPT_ACQ},
        {"retention-cost", required_argument, NULL, OPT_RETENTION_COST},
        {"item-costs", required_argument, NULL, OPT_ITEM_COSTS},
        {"missing-cost", required_argument, NULL, OPT_MISSING_COST},
        {"out", required_argument, NULL, OPT_OUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"no-store", no_argument, NULL, OPT_NO_STORE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"force", no_argument, NULL, OPT_FORCE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {NULL, 0, NULL, 0}};
    const sm_cli_command *cmd = &sm_cmd_clv;
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_SUMMARY: a->summary = optarg; break;
        case OPT_STORE: a->store = optarg; break;
        case OPT_CAL:
            if (sm_parse_time_iso(optarg, strlen(optarg), &a->calibration_end) != SM_FIELD_OK)
                return sm_cli_usage_error(cmd, "--calibration-end: '%s' is not a date (YYYY-MM-DD)",
                                          optarg);
            break;
        case OPT_NO_STORE: a->no_store = true; break;
        case OPT_MODEL: {
            size_t k = 0;
            while (k < 3 && strcmp(optarg, model_names[k]) != 0)
                k++;
            if (k == 3)
                return sm_cli_usage_error(cmd, "--model: expected bgnbd, discounted or historic, got '%s'",
                                          optarg);
            a->model = (model)k;
            break;
        }
        case OPT_UNIT:
            if (sm_time_unit_parse(optarg, &a->unit) != SM_OK)
                return sm_cli_usage_error(cmd, "--time-unit: expected day, week or month, got '%s'",
                                          optarg);
            break;
        case OPT_HORIZON:
            if (!sm_cli_parse_u64(cmd, "--horizon", optarg, 1, 1200, &a->horizon))
                return SM_EXIT_USAGE;
            break;
        case OPT_DISCOUNT:
            if (!sm_cli_parse_double(cmd, "--discount", optarg, 0.0, 10.0, &a->discount))
                return SM_EXIT_USAGE;
            break;
        case OPT_MARGIN:
            if (!sm_cli_parse_double(cmd, "--margin", optarg, -10.0, 10.0, &a->margin))
                return SM_EXIT_USAGE;
            a->has_margin = true;
            break;
        case OPT_RETENTION:
            if (!sm_cli_parse_double(cmd, "--retention", optarg, 0.0, 1.0, &a->retention))
                return SM_EXIT_USAGE;
            a->has_retention = true;
            break;
        case OPT_ACQ:
            if (!sm_cli_parse_double(cmd, "--acquisition-cost", optarg, 0.0, 1e15, &a->acquisition))
                return SM_EXIT_USAGE;
            a->has_acquisition = true;
            break;
        case OPT_RETENTION_COST:
            if (!sm_cli_parse_double(cmd, "--retention-cost", optarg, 0.0, 1e15, &a->retention_cost))
                return SM_EXIT_USAGE;
            a->has_retention_cost = true;
            break;
        case OPT_ITEM_COSTS: a->item_costs = optarg; break;
        case OPT_MISSING_COST:
            if (strcmp(optarg, "zero") != 0 && strcmp(optarg, "error") != 0)
                return sm_cli_usage_error(cmd, "--missing-cost: expected zero or error, got '%s'",
                                          optarg);
            a->missing_zero = strcmp(optarg, "zero") == 0;
            break;
        case OPT_OUT: a->out = optarg; break;
        case OPT_JSON: a->json = true; break;
        case OPT_THREADS:
            if (!sm_cli_parse_threads(cmd, optarg, &a->threads))
                return SM_EXIT_USAGE;
            break;
        case OPT_FORCE: a->force = true; break;
        case OPT_QUIET: a->quiet = true; break;
        default:
            return sm_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return sm_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if ((a->summary == NULL) == (a->store == NULL))
        return sm_cli_usage_error(cmd, "give either --store DIR or --summary FILE.csv");
    if (a->calibration_end != 0 && a->store == NULL)
        return sm_cli_usage_error(cmd, "--calibration-end needs --store (a summary CSV is already "
                                       "a calibration summary)");
    if (a->no_store && a->store == NULL)
        return sm_cli_usage_error(cmd, "--no-store needs --store");
    if (a->model == MODEL_DISCOUNTED && !a->has_retention)
        return sm_cli_usage_error(cmd, "--model discounted needs --retention R (monthly, 0..1)");
    /* Costs to date belong to the historic value only: the classic
     * discounted CLV sum m r^t/(1+d)^t - AC has no retention-cost term, and
     * silently dropping a cost the user gave would overstate the value. */
    if (a->has_retention_cost && a->model != MODEL_HISTORIC)
        return sm_cli_usage_error(cmd, "--retention-cost applies to --model historic only (the "
                                       "discounted CLV sum m r^t/(1+d)^t - AC has no retention-cost "
                                       "term)");
    if (a->has_acquisition && a->model == MODEL_BGNBD)
        return sm_cli_usage_error(cmd, "--acquisition-cost applies to --model historic and discounted "
                                       "(the BG/NBD + Gamma-Gamma CLV is lifetimes' value of future "
                                       "purchases, with no cost term)");
    if (a->item_costs != NULL && a->model != MODEL_HISTORIC)
        return sm_cli_usage_error(cmd, "--item-costs applies to --model historic only");
    if (a->item_costs != NULL && a->store == NULL)
        return sm_cli_usage_error(cmd, "--item-costs needs --store (a summary CSV has no items)");
    if (a->item_costs != NULL && a->has_margin)
        return sm_cli_usage_error(cmd, "--item-costs and --margin exclude each other: with item "
                                       "costs the margin is revenue - cost of goods");
    if (a->missing_zero && a->item_costs == NULL)
        return sm_cli_usage_error(cmd, "--missing-cost needs --item-costs FILE");
    const char *ext = a->out != NULL ? sm_path_extension(a->out) : "";
    if (a->out != NULL && strcmp(a->out, "-") != 0 && strcmp(ext, "csv") != 0 &&
        strcmp(ext, "jsonl") != 0)
        return sm_cli_usage_error(cmd, "--out: expected a .csv or .jsonl file, got '%s'", a->out);
    return SM_EXIT_OK;
}

/* --- writing ---------------------------------------------------------------------- */

static int write_results(const clv_args *a, const sm_summary_table *t, const columns *c,
                         sm_error *err)
{
    sm_output *out = NULL;
    int rc = sm_output_open(a->out, a->force, &out, err);
    if (rc != SM_OK)
        return rc;
    FILE *f = sm_output_stream(out);
    bool jsonl = strcmp(sm_path_extension(a->out), "jsonl") == 0;
    const char *names[] = {"customer_id", "frequency",          "recency",        "T",
                           "monetary_value", "p_alive",         "expected_purchases",
                           "expected_spend", "cost_of_goods",   "clv"};
    const bool present[] = {true, true, true, true, t->monetary != NULL, c->p_alive != NULL,
                            c->expected != NULL, c->spend != NULL, c->cost != NULL,
                            c->clv != NULL};
    if (!jsonl) {
        bool first = true;
        for (size_t k = 0; k < SM_ARRAY_LEN(names); k++)
            if (present[k]) {
                fprintf(f, "%s%s", first ? "" : ",", names[k]);
                first = false;
            }
        fputc('\n', f);
    }
    for (size_t i = 0; i < t->n; i++) {
        char row_id[32];
        snprintf(row_id, sizeof row_id, "%zu", i + 1);
        const char *id = t->ids != NULL ? t->ids[i] : row_id;
        const double values[] = {0,
                                 t->frequency[i],
                                 t->recency[i],
                                 t->T[i],
                                 t->monetary ? t->monetary[i] : 0,
                                 c->p_alive ? c->p_alive[i] : 0,
                                 c->expected ? c->expected[i] : 0,
                                 c->spend ? c->spend[i] : 0,
                                 c->cost ? c->cost[i] : 0,
                                 c->clv ? c->clv[i] : 0};
        if (jsonl) {
            fputs("{\"customer_id\": ", f);
            sm_json_put_string(f, id);
            for (size_t k = 1; k < SM_ARRAY_LEN(names); k++)
                if (present[k]) {
                    fprintf(f, ", \"%s\": ", names[k]);
                    sm_json_put_double(f, values[k]);
                }
            fputs("}\n", f);
        } else {
            sm_csv_put_text(f, id, ',');
            for (size_t k = 1; k < SM_ARRAY_LEN(names); k++)
                if (present[k]) {
                    fputc(',', f);
                    sm_csv_put_double(f, values[k]);
                }
            fputc('\n', f);
        }
    }
    return sm_output_commit(out, err);
}

static void warn(const char *fmt, const char *detail)
{
    fprintf(stderr, "segmint clv: warning: ");
    fprintf(stderr, fmt, detail);
    fputc('\n', stderr);
}

static void print_gg_warnings(const sm_gg_fit *gg)
{
    char text[160];
    if (gg->n_nonpositive_monetary > 0) {
        snprintf(text, sizeof text, "%zu", gg->n_nonpositive_monetary);
        warn("%s repeat customers with monetary_value <= 0 left out of the Gamma-Gamma fit", text);
    }
    if (gg->warnings & SM_CLV_WARN_GG_Q_LE_1) {
        snprintf(text, sizeof text, "%.4g", gg->params.q);
        warn("Gamma-Gamma q = %s <= 1: the population mean spend does not exist", text);
    }
    if (gg->warnings & SM_CLV_WARN_GG_CORRELATION) {
        snprintf(text, sizeof text, "%.3f", gg->corr_frequency_monetary);
        warn("corr(frequency, monetary_value) = %s: Gamma-Gamma assumes spend independent of "
             "frequency",
             text);
    }
    if (gg->warnings & SM_CLV_WARN_GG_FEW_CUSTOMERS) {
        snprintf(text, sizeof text, "%zu", gg->n_used);
        warn("only %s customers carry spend information: the Gamma-Gamma fit is fragile", text);
    }
}

/* --- the store --------------------------------------------------------------------- */

/* What a store adds to a run: the handle, customer keys and the holdout. */
typedef struct store_ctx {
    sm_store *store;
    sm_key_table keys;
    int64_t calibration_end, observation_end; /* observation_end 0 = no holdout */
    double *cost;                /* with --item-costs: cost of goods per summary customer */
    sm_item_cost_report cost_report;
    size_t cost_rows, cost_unknown; /* rows of the cost file; of them naming no store item */
    bool cost_missing;           /* the job failed on an uncosted row (for the hint) */
} store_ctx;

static const char *unit_name(sm_time_unit u)
{
    return u == SM_UNIT_DAY ? "day" : u == SM_UNIT_WEEK ? "week" : "month";
}

static int load_from_store(const clv_args *a, store_ctx *sc, sm_summary_table *t,
                           const sm_progress *progress, sm_error *err)
{
    int rc = sm_store_open(a->store, a->no_store ? SM_STORE_READ_ONLY : SM_STORE_READ_WRITE,
                           &sc->store, err);
    sm_store_info info;
    if (rc == SM_OK)
        rc = sm_store_get_info(sc->store, &info, err);
    if (rc == SM_OK && (!info.has_time || info.customers == 0))
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, a->store, 0, 0, NULL,
                             "the store has no dated customer transactions");
    if (rc != SM_OK)
        return rc;
    sc->calibration_end = a->calibration_end != 0 ? a->calibration_end : info.last_time;
    /* The holdout runs to the last stored day; a calibration end at or past
     * it leaves none. */
    sc->observation_end = a->calibration_end != 0 && info.last_time > a->calibration_end
                              ? info.last_time
                              : 0;
    /* The cost file is read before the transactions so that its mistakes
     * show before the long load. */
    sm_key_table items;
    memset(&items, 0, sizeof items);
    sm_item_costs costs;
    memset(&costs, 0, sizeof costs);
    if (a->item_costs != NULL) {
        rc = sm_store_load_keys(sc->store, SM_KEYS_ITEMS, &items, err);
        if (rc == SM_OK)
            rc = sm_item_costs_read(a->item_costs, &items, &costs, err);
    }
    sm_tx_table tx;
    memset(&tx, 0, sizeof tx);
    if (rc == SM_OK)
        rc = sm_store_load_tx(sc->store, &tx, progress, err);
    if (rc == SM_OK)
        rc = sm_summary_from_tx(&tx, sc->calibration_end, sc->observation_end, a->unit, t, err);
    if (rc == SM_OK && a->item_costs != NULL) {
        sc->cost_rows = costs.n_rows;
        sc->cost_unknown = costs.n_unknown;
        sc->cost = malloc((t->n > 0 ? t->n : 1) * sizeof *sc->cost);
        if (sc->cost == NULL)
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu customer costs", t->n);
        else
            rc = sm_summary_item_costs(&tx, t, sc->calibration_end, &costs, a->missing_zero,
                                       sc->cost, &sc->cost_report, err);
        sc->cost_missing = rc == SM_ERR_NOT_FOUND;
    }
    sm_tx_table_free(&tx);
    sm_item_costs_free(&costs);
    sm_key_table_free(&items);
    if (rc == SM_OK)
        rc = sm_store_load_keys(sc->store, SM_KEYS_CUSTOMERS, &sc->keys, err);
    if (rc == SM_OK) {
        t->ids = sm_alloc_array(t->n, sizeof *t->ids);
        if (t->ids == NULL)
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu customer keys", t->n);
        for (size_t i = 0; i < t->n; i++)
            t->ids[i] = sc->keys.keys[t->customers[i]];
    }
    return rc;
}

/* Stores one assignment row per customer (CLV fields, the rest "none") and
 * the run record (kind "clv"; the job's options and fit under "details")
 * through engine/run_record, so that `segmint runs/export/diff` read it. */
static int store_run(const clv_args *a, store_ctx *sc, const sm_summary_table *t,
                     const columns *c, const char *details, int64_t started, uint64_t *run_id,
                     sm_error *err)
{
    sm_assignment *rows = malloc(t->n * sizeof *rows);
    if (rows == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu assignments", t->n);
    for (size_t i = 0; i < t->n; i++) {
        sm_assignment *row = &rows[i];
        sm_assignment_clear(row);
        if (a->model == MODEL_HISTORIC)
            row->clv_historic = c->clv[i];
        else if (a->model == MODEL_DISCOUNTED)
            row->clv_discounted = c->clv[i];
        else if (c->clv != NULL)
            row->clv_model = c->clv[i];
        if (c->p_alive != NULL)
            row->p_alive = c->p_alive[i];
        if (c->expected != NULL)
            row->expected_purchases = c->expected[i];
    }
    sm_run_description run;
    memset(&run, 0, sizeof run);
    run.kind = "clv";
    run.started = started;
    run.finished = (int64_t)time(NULL);
    run.as_of = sc->calibration_end;
    run.counts[run.n_counts++] = (sm_run_pair){"customers", (double)t->n};
    run.counts[run.n_counts++] = (sm_run_pair){"left_out", (double)t->n_skipped};
    run.details_json = details;
    int rc = sm_run_store(sc->store, &run, t->customers, rows, t->n, run_id, err);
    free(rows);
    return rc;
}

/* --- output ------------------------------------------------------------------------ */

/* The JSON object for bgnbd: exactly these keys, in this order. */
static void print_bgnbd_json(FILE *f, const sm_clv_job *j)
{
    fprintf(f, "{\"model\": \"bgnbd\", \"params\": {\"r\": ");
    sm_json_put_double(f, j->fit.params.r);
    fprintf(f, ", \"alpha\": ");
    sm_json_put_double(f, j->fit.params.alpha);
    fprintf(f, ", \"a\": ");
    sm_json_put_double(f, j->fit.params.a);
    fprintf(f, ", \"b\": ");
    sm_json_put_double(f, j->fit.params.b);
    fprintf(f, "}, \"loglik\": ");
    sm_json_put_double(f, j->fit.loglik);
    fprintf(f, ", \"iterations\": %d, \"converged\": %s", j->fit.iterations,
            j->fit.converged ? "true" : "false");
    if (j->have_gg) {
        fprintf(f, ", \"gamma_gamma\": {\"p\": ");
        sm_json_put_double(f, j->gg.params.p);
        fprintf(f, ", \"q\": ");
        sm_json_put_double(f, j->gg.params.q);
        fprintf(f, ", \"v\": ");
        sm_json_put_double(f, j->gg.params.v);
        fprintf(f, ", \"loglik\": ");
        sm_json_put_double(f, j->gg.loglik);
        fprintf(f, "}");
    }
    fprintf(f, "}");
}

/* The run record's details: the job's options, then its result. */
static char *run_record(const clv_args *a, const store_ctx *sc, const sm_clv_job *j,
                        double total_clv, double total_cost, size_t n, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (f == NULL)
        return NULL;
    char cal[32];
    sm_format_time_iso(sc->calibration_end, cal);
    fprintf(f, "{\"model\": \"%s\", \"time_unit\": \"%s\", "
               "\"calibration_end\": \"%s\", \"customers\": %zu, \"horizon_months\": %llu, "
               "\"discount\": ",
            model_names[a->model], unit_name(a->unit), cal, n, (unsigned long long)a->horizon);
    sm_json_put_double(f, a->discount);
    if (a->item_costs == NULL) { /* with item costs no margin applies */
        fprintf(f, ", \"margin\": ");
        sm_json_put_double(f, a->margin);
    }
    if (a->model == MODEL_DISCOUNTED) {
        fprintf(f, ", \"retention\": ");
        sm_json_put_double(f, a->retention);
    }
    if (a->model != MODEL_BGNBD) {
        fprintf(f, ", \"acquisition_cost\": ");
        sm_json_put_double(f, a->acquisition);
    }
    if (a->model == MODEL_HISTORIC) {
        fprintf(f, ", \"retention_cost\": ");
        sm_json_put_double(f, a->retention_cost);
    }
    if (a->item_costs != NULL) {
        fprintf(f, ", \"item_costs\": ");
        sm_json_put_string(f, a->item_costs);
        fprintf(f, ", \"missing_cost\": \"%s\", \"rows_without_cost\": %llu, "
                   "\"cost_of_goods\": ",
                a->missing_zero ? "zero" : "error",
                (unsigned long long)(sc->cost_report.rows_missing +
                                     sc->cost_report.rows_without_item));
        sm_json_put_double(f, total_cost);
    }
    fprintf(f, ", \"total_clv\": ");
    sm_json_put_double(f, total_clv);
    if (j != NULL) {
        fprintf(f, ", \"fit\": ");
        print_bgnbd_json(f, j);
    }
    fputc('}', f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void print_holdout(FILE *f, const clv_args *a, const store_ctx *sc, const sm_clv_job *j,
                          const sm_summary_table *t, sm_error *err, int *rc)
{
    sm_holdout_row rows[8];
    sm_holdout_totals tot;
    *rc = sm_bgnbd_holdout(rows, 8, &tot, &j->fit.params, &t->view, t->holdout_frequency,
                           t->holdout_length, a->threads, err);
    if (*rc != SM_OK)
        return;
    char cal[32], obs[32];
    sm_format_time_iso(sc->calibration_end, cal);
    sm_format_time_iso(sc->observation_end, obs);
    fprintf(f, "holdout %.10s .. %.10s (%.4g %ss): repeat purchase days per customer by "
               "calibration frequency\n",
            cal, obs, t->holdout_length, unit_name(a->unit));
    fprintf(f, "  %-4s %10s %10s %10s\n", "x", "customers", "actual", "predicted");
    for (int k = 0; k < 8; k++)
        fprintf(f, "  %u%-3s %10zu %10.4f %10.4f\n", rows[k].frequency, k == 7 ? "+" : "",
                rows[k].customers, rows[k].actual_mean, rows[k].predicted_mean);
    fprintf(f, "  total actual %.0f, predicted %.1f (%+.1f%%); mean absolute error %.4f per "
               "customer, %.4f per row\n",
            tot.actual, tot.predicted, 100.0 * tot.relative_error, tot.mae, tot.bucket_mae);
}

/* --- the models ---------------------------------------------------------------------- */

static int run_bgnbd(const clv_args *a, store_ctx *sc, const sm_summary_table *t,
                     sm_cli_progress *bar, const sm_progress *progress, sm_error *err)
{
    sm_clv_job_options jo = {.unit = a->unit, .months = (uint32_t)a->horizon,
                             .discount = a->discount, .margin = a->margin,
                             .n_threads = a->threads, .progress = *progress,
                             /* a BG/NBD fit is worth reporting even when spend cannot be modelled */
                             .gg_optional = true};
    sm_clv_job j;
    int rc = sm_clv_job_run(t, &jo, &j, err);
    sm_cli_progress_end(bar); /* before anything is printed */
    if (rc != SM_OK)
        return rc;
    if (j.have_gg)
        print_gg_warnings(&j.gg);
    else if (j.gg_note[0] != '\0' && t->monetary != NULL)
        fprintf(stderr, "segmint clv: warning: no Gamma-Gamma spend model (%s); CLV is left out, "
                        "P(alive) and expected purchases are reported\n", j.gg_note);
    columns c = {j.p_alive, j.expected, j.spend, j.clv, NULL};
    size_t n = t->n;
    if (a->out != NULL && (rc = write_results(a, t, &c, err)) != SM_OK)
        goto out;
    double sum_alive = 0, sum_expected = 0, sum_clv = 0;
    for (size_t i = 0; i < n; i++) {
        sum_alive += j.p_alive[i];
        sum_expected += j.expected[i];
        sum_clv += j.have_gg ? j.clv[i] : 0.0;
    }
    uint64_t run_id = 0;
    if (sc->store != NULL && !a->no_store) {
        size_t len;
        char *record = run_record(a, sc, &j, j.have_gg ? sum_clv : NAN, 0.0, n, &len);
        if (record == NULL) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for the run record");
            goto out;
        }
        rc = store_run(a, sc, t, &c, record, a->started, &run_id, err);
        free(record);
        if (rc != SM_OK)
            goto out;
    }
    if (a->json) {
        print_bgnbd_json(stdout, &j);
        fputc('\n', stdout);
    } else {
        printf("BG/NBD on %zu customers (%zu repeat): r=%.6g alpha=%.6g a=%.6g b=%.6g\n", n,
               j.fit.n_repeat, j.fit.params.r, j.fit.params.alpha, j.fit.params.a, j.fit.params.b);
        printf("  log-likelihood %.6f, %d iterations, %s (max |gradient| %.2g)\n", j.fit.loglik,
               j.fit.iterations, j.fit.converged ? "converged" : "NOT converged", j.fit.grad_norm);
        if (j.have_gg) {
            printf("Gamma-Gamma on %zu repeat customers with spend: p=%.6g q=%.6g v=%.6g\n",
                   j.gg.n_used, j.gg.params.p, j.gg.params.q, j.gg.params.v);
            printf("  log-likelihood %.6f, %d iterations, %s\n", j.gg.loglik, j.gg.iterations,
                   j.gg.converged ? "converged" : "NOT converged");
        }
        printf("over %llu months (%.6g %ss): mean P(alive) %.4f, expected purchases %.6g "
               "(a new customer: %.4g)",
               (unsigned long long)a->horizon, j.horizon_units, unit_name(a->unit),
               sum_alive / (double)n, sum_expected, j.new_expected);
        if (j.have_gg)
            printf(", CLV total %.6g (mean %.6g) at %.4g/month discount, margin %.4g", sum_clv,
                   sum_clv / (double)n, a->discount, a->margin);
        printf("\n");
    }
    /* The validation table goes with the text; after --json it goes to
     * stderr so that stdout stays one JSON object. */
    if (sc->store != NULL && t->holdout_frequency != NULL && t->holdout_length > 0.0) {
        print_holdout(a->json ? stderr : stdout, a, sc, &j, t, err, &rc);
        if (rc != SM_OK)
            goto out;
    }
    if (sc->store != NULL) {
        if (t->n_skipped > 0)
            fprintf(a->json ? stderr : stdout,
                    "%zu customers without a purchase day before the calibration end's were left "
                    "out\n",
                    t->n_skipped);
        if (run_id != 0)
            fprintf(a->json ? stderr : stdout, "stored as run %llu in %s\n",
                    (unsigned long long)run_id, a->store);
    }
out:
    sm_clv_job_free(&j);
    return rc;
}

/* With --missing-cost zero, uncosted rows are counted, not hidden. */
static void print_cost_notes(const clv_args *a, const store_ctx *sc)
{
    const sm_item_cost_report *r = &sc->cost_report;
    if (r->rows_missing > 0)
        fprintf(stderr, "segmint clv: warning: %llu rows of %u items have no unit cost in %s and "
                        "count as costing 0 (--missing-cost zero)\n",
                (unsigned long long)r->rows_missing, r->items_missing, a->item_costs);
    if (r->rows_without_item > 0)
        fprintf(stderr, "segmint clv: warning: %llu rows carry no item code and count as costing 0 "
                        "(--missing-cost zero)\n",
                (unsigned long long)r->rows_without_item);
    if (sc->cost_unknown > 0)
        fprintf(stderr, "segmint clv: %zu of the %zu items in %s are not in the store (not used)\n",
                sc->cost_unknown, sc->cost_rows, a->item_costs);
}

/* A per-customer constant as the kernel's per-customer array, or NULL for 0. */
static int constant_array(double value, size_t n, double **out)
{
    *out = NULL;
    if (value == 0.0)
        return SM_OK;
    *out = malloc((n > 0 ? n : 1) * sizeof **out);
    if (*out == NULL)
        return SM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        (*out)[i] = value;
    return SM_OK;
}

static int run_value(const clv_args *a, store_ctx *sc, const sm_summary_table *t, sm_error *err)
{
    if (t->monetary == NULL)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, a->summary, 0, 0, "monetary_value",
                               "--model %s needs a monetary_value (or zbar) column",
                               model_names[a->model]);
    size_t n = t->n;
    columns c = {NULL, NULL, NULL, NULL, NULL};
    c.clv = malloc(n * sizeof(double));
    c.cost = sc->cost; /* NULL without --item-costs */
    double *per_month = malloc(n * sizeof(double));
    double *acquisition = NULL, *retention_cost = NULL;
    int rc = SM_OK;
    if (c.clv == NULL || per_month == NULL ||
        constant_array(a->model == MODEL_HISTORIC ? a->acquisition : 0.0, n, &acquisition) != SM_OK ||
        constant_array(a->retention_cost, n, &retention_cost) != SM_OK) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu customers", n);
        goto out;
    }
    const double units = sm_time_unit_per_month(a->unit);
    if (a->model == MODEL_HISTORIC) {
        /* A store knows every purchase; a summary only the repeat ones.
         * With item costs the kernel takes revenue - cost and ignores the
         * margin (parse_args refuses an explicit --margin then). */
        for (size_t i = 0; i < n; i++)
            per_month[i] = t->revenue != NULL ? t->revenue[i] : t->monetary[i] * t->frequency[i];
        rc = sm_clv_historic(c.clv, per_month, c.cost, acquisition, retention_cost, a->margin, n,
                             err);
    } else {
        for (size_t i = 0; i < n; i++)
            per_month[i] = a->margin * t->monetary[i] * t->frequency[i] / t->T[i] * units;
        sm_clv_discount_params p = {.periods = (uint32_t)a->horizon, .retention = a->retention,
                                    .discount = a->discount, .acquisition_cost = a->acquisition};
        rc = sm_clv_discounted(c.clv, per_month, NULL, n, &p, a->threads, err);
    }
    if (rc != SM_OK)
        goto out;
    if (c.cost != NULL)
        print_cost_notes(a, sc);
    if (a->out != NULL && (rc = write_results(a, t, &c, err)) != SM_OK)
        goto out;
    double total = 0, total_cost = 0;
    for (size_t i = 0; i < n; i++) {
        total += c.clv[i];
        total_cost += c.cost != NULL ? c.cost[i] : 0.0;
    }
    uint64_t run_id = 0;
    if (sc->store != NULL && !a->no_store) {
        size_t len;
        char *record = run_record(a, sc, NULL, total, total_cost, n, &len);
        if (record == NULL) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for the run record");
            goto out;
        }
        rc = store_run(a, sc, t, &c, record, a->started, &run_id, err);
        free(record);
        if (rc != SM_OK)
            goto out;
    }
    if (a->json) {
        printf("{\"model\": \"%s\", \"customers\": %zu, \"total_clv\": ", model_names[a->model], n);
        sm_json_put_double(stdout, total);
        printf(", \"mean_clv\": ");
        sm_json_put_double(stdout, total / (double)n);
        if (c.cost != NULL) {
            printf(", \"cost_of_goods\": ");
            sm_json_put_double(stdout, total_cost);
        }
        printf("}\n");
    } else {
        printf("%s CLV of %zu customers: total %.6g, mean %.6g\n", model_names[a->model], n, total,
               total / (double)n);
        if (c.cost != NULL)
            printf("  cost of goods from %s: total %.6g over %llu priced rows\n", a->item_costs,
                   total_cost, (unsigned long long)sc->cost_report.rows_costed);
    }
    if (run_id != 0)
        fprintf(a->json ? stderr : stdout, "stored as run %llu in %s\n",
                (unsigned long long)run_id, a->store);
out:
    free(c.clv);
    free(per_month);
    free(acquisition);
    free(retention_cost);
    return rc;
}

static int run_clv(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_clv, argc, argv))
        return SM_EXIT_OK;
    clv_args a;
    int code = parse_args(argc, argv, &a);
    if (code != SM_EXIT_OK)
        return code;
    sm_error err;
    sm_error_clear(&err);
    sm_summary_table t;
    memset(&t, 0, sizeof t);
    store_ctx sc;
    memset(&sc, 0, sizeof sc);
    sm_cli_progress bar;
    sm_progress progress = sm_cli_progress_start(&bar, a.quiet);
    int rc = a.store != NULL ? load_from_store(&a, &sc, &t, &progress, &err)
                             : sm_summary_read(a.summary, &t, &err);
    if (rc == SM_OK && a.model == MODEL_BGNBD)
        rc = run_bgnbd(&a, &sc, &t, &bar, &progress, &err);
    else if (rc == SM_OK)
        rc = run_value(&a, &sc, &t, &err);
    sm_cli_progress_end(&bar);
    /* ids of a store summary point into the key table: free them first */
    sm_summary_table_free(&t);
    sm_key_table_free(&sc.keys);
    free(sc.cost);
    sm_store_close(sc.store);
    if (rc == SM_OK)
        return SM_EXIT_OK;
    code = sm_cli_fail(&err);
    if (sc.cost_missing)
        fprintf(stderr, "segmint clv: give every item a unit cost, or count uncosted rows as 0 "
                        "with --missing-cost zero\n");
    return code;
}
