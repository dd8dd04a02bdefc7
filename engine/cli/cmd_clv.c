/* SPDX-License-Identifier: MIT */
/*
 * `segmint clv`: customer lifetime value from a per-customer summary CSV
 * (the lifetimes layout): BG/NBD + Gamma-Gamma with the lifetimes-style CLV,
 * the classic discounted CLV, or the historic value; fitted parameters to
 * stdout (text or one JSON object), per-customer results to CSV / JSONL.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli/cli.h"
#include "engine/clv_summary.h"
#include "engine/output.h"
#include "segmint/clv.h"

static const char usage[] =
    "usage: segmint clv --summary FILE.csv [options]\n"
    "\n"
    "Customer lifetime value from a per-customer calibration summary with a header\n"
    "naming frequency (or x), recency (or t_x), T and optionally customer_id (or ID)\n"
    "and monetary_value (or zbar), in any order: the layout of the lifetimes library.\n"
    "frequency counts repeat purchases; recency and T are in --time-unit units.\n"
    "\n"
    "  --summary FILE.csv    the summary (required)\n"
    "  --model M             bgnbd (default): BG/NBD fit, P(alive), expected purchases,\n"
    "                        and with monetary_value a Gamma-Gamma fit and CLV;\n"
    "                        discounted: sum_{t=1..N} m r^t/(1+d)^t - AC per customer;\n"
    "                        historic: margin x repeat revenue to date - AC\n"
    "  --time-unit U         day (default), week or month: the unit of recency and T\n"
    "  --horizon N           months to value (default 12)\n"
    "  --discount R          monthly discount rate (default 0.01)\n"
    "  --margin M            profit share of revenue (default 1)\n"
    "  --retention R         monthly retention rate, required by --model discounted\n"
    "  --acquisition-cost C  subtracted once per customer (discounted, historic; default 0)\n"
    "  --out FILE            per-customer results, .csv or .jsonl\n"
    "  --json                print the fitted model as one JSON object\n"
    "  --threads T           threads (default: all cores)\n"
    "  --force               overwrite --out if it exists\n"
    "  --quiet               no progress line\n"
    "\n"
    "BG/NBD CLV follows lifetimes' customer_lifetime_value: for each month k of the\n"
    "horizon, expected purchases in month k (E[Y(k u)] - E[Y((k-1) u)], u = 30 days,\n"
    "4.345 weeks or 1 month) x Gamma-Gamma expected spend x margin / (1+R)^k.\n"
    "The discounted model's monthly margin is margin x monetary_value x frequency / T\n"
    "per unit of time x units per month (the observed repeat revenue rate).\n";

typedef enum model { MODEL_BGNBD, MODEL_DISCOUNTED, MODEL_HISTORIC } model;
static const char *const model_names[] = {"bgnbd", "discounted", "historic"};

typedef struct clv_args {
    const char *summary, *out;
    model model;
    sm_time_unit unit;
    uint64_t horizon;
    double discount, margin, retention, acquisition;
    bool has_retention, json, force, quiet;
    int threads;
} clv_args;

/* Per-customer results, NULL columns are not written. */
typedef struct columns {
    double *p_alive, *expected, *spend, *clv;
} columns;

static int run_clv(int argc, char **argv);
const sm_cli_command sm_cmd_clv = {"clv", "customer lifetime value: BG/NBD + Gamma-Gamma, discounted, historic",
                                   usage, run_clv};

static int parse_args(int argc, char **argv, clv_args *a)
{
    memset(a, 0, sizeof *a);
    a->model = MODEL_BGNBD;
    a->unit = SM_UNIT_DAY;
    a->horizon = 12;
    a->discount = 0.01;
    a->margin = 1.0;
    enum { OPT_SUMMARY = 256, OPT_STORE, OPT_CAL, OPT_MODEL, OPT_UNIT, OPT_HORIZON, OPT_DISCOUNT,
           OPT_MARGIN, OPT_RETENTION, OPT_ACQ, OPT_OUT, OPT_JSON, OPT_THREADS, OPT_FORCE, OPT_QUIET };
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
        {"out", required_argument, NULL, OPT_OUT},
        {"json", no_argument, NULL, OPT_JSON},
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
        case OPT_STORE:
        case OPT_CAL:
            /* The store's transaction table plugs into sm_summary_from_tx
             * (engine/clv_summary.h) once the store can be opened. */
            return sm_cli_usage_error(cmd, "%s: this build reads summaries only (--summary); the "
                                           "store has no reader yet",
                                      argv[optind - 1]);
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
            break;
        case OPT_RETENTION:
            if (!sm_cli_parse_double(cmd, "--retention", optarg, 0.0, 1.0, &a->retention))
                return SM_EXIT_USAGE;
            a->has_retention = true;
            break;
        case OPT_ACQ:
            if (!sm_cli_parse_double(cmd, "--acquisition-cost", optarg, 0.0, 1e15, &a->acquisition))
                return SM_EXIT_USAGE;
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
    if (a->summary == NULL)
        return sm_cli_usage_error(cmd, "--summary FILE.csv is required");
    if (a->model == MODEL_DISCOUNTED && !a->has_retention)
        return sm_cli_usage_error(cmd, "--model discounted needs --retention R (monthly, 0..1)");
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
    const char *names[] = {"customer_id", "frequency", "recency", "T", "monetary_value",
                           "p_alive",     "expected_purchases", "expected_spend", "clv"};
    const bool present[] = {true, true, true, true, t->monetary != NULL, c->p_alive != NULL,
                            c->expected != NULL, c->spend != NULL, c->clv != NULL};
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

/* --- the models ---------------------------------------------------------------------- */

static int run_bgnbd(const clv_args *a, const sm_summary_table *t, sm_error *err)
{
    sm_clv_fit_options opt;
    sm_clv_fit_options_init(&opt);
    opt.n_threads = a->threads;
    sm_cli_progress bar;
    opt.progress = sm_cli_progress_start(&bar, a->quiet);
    sm_bgnbd_fit fit;
    sm_gg_fit gg;
    bool have_gg = false;
    columns c = {0};
    int rc = sm_bgnbd_fit_model(&fit, &t->view, &opt, err);
    if (rc == SM_OK && t->monetary != NULL) {
        rc = sm_gg_fit_model(&gg, &t->view, &opt, err);
        have_gg = rc == SM_OK;
    }
    sm_cli_progress_end(&bar);
    if (rc != SM_OK)
        return rc;
    if (have_gg)
        print_gg_warnings(&gg);
    const double units = sm_time_unit_per_month(a->unit);
    const double horizon_units = (double)a->horizon * units;
    size_t n = t->n;
    c.p_alive = malloc(n * sizeof(double));
    c.expected = malloc(n * sizeof(double));
    if (have_gg) {
        c.spend = malloc(n * sizeof(double));
        c.clv = malloc(n * sizeof(double));
    }
    if (!c.p_alive || !c.expected || (have_gg && (!c.spend || !c.clv))) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu predictions", n);
        goto out;
    }
    rc = sm_bgnbd_predict(c.p_alive, c.expected, &fit.params, &t->view, horizon_units, a->threads,
                          err);
    if (rc == SM_OK && have_gg) {
        rc = sm_gg_expected_spend(c.spend, &gg.params, &t->view, a->threads, err);
        sm_clv_model_options mo = {.months = (uint32_t)a->horizon, .discount = a->discount,
                                   .margin = a->margin, .units_per_month = units};
        if (rc == SM_OK)
            rc = sm_clv_bgnbd_gg(c.clv, &fit.params, &gg.params, &t->view, &mo, a->threads, err);
    }
    if (rc != SM_OK)
        goto out;
    if (a->out != NULL && (rc = write_results(a, t, &c, err)) != SM_OK)
        goto out;
    double sum_alive = 0, sum_expected = 0, sum_clv = 0;
    for (size_t i = 0; i < n; i++) {
        sum_alive += c.p_alive[i];
        sum_expected += c.expected[i];
        sum_clv += have_gg ? c.clv[i] : 0.0;
    }
    if (a->json) {
        printf("{\"model\": \"bgnbd\", \"params\": {\"r\": ");
        sm_json_put_double(stdout, fit.params.r);
        printf(", \"alpha\": ");
        sm_json_put_double(stdout, fit.params.alpha);
        printf(", \"a\": ");
        sm_json_put_double(stdout, fit.params.a);
        printf(", \"b\": ");
        sm_json_put_double(stdout, fit.params.b);
        printf("}, \"loglik\": ");
        sm_json_put_double(stdout, fit.loglik);
        printf(", \"iterations\": %d, \"converged\": %s", fit.iterations,
               fit.converged ? "true" : "false");
        if (have_gg) {
            printf(", \"gamma_gamma\": {\"p\": ");
            sm_json_put_double(stdout, gg.params.p);
            printf(", \"q\": ");
            sm_json_put_double(stdout, gg.params.q);
            printf(", \"v\": ");
            sm_json_put_double(stdout, gg.params.v);
            printf(", \"loglik\": ");
            sm_json_put_double(stdout, gg.loglik);
            printf("}");
        }
        printf("}\n");
    } else {
        printf("BG/NBD on %zu customers (%zu repeat): r=%.6g alpha=%.6g a=%.6g b=%.6g\n", n,
               fit.n_repeat, fit.params.r, fit.params.alpha, fit.params.a, fit.params.b);
        printf("  log-likelihood %.6f, %d iterations, %s (max |gradient| %.2g)\n", fit.loglik,
               fit.iterations, fit.converged ? "converged" : "NOT converged", fit.grad_norm);
        if (have_gg) {
            printf("Gamma-Gamma on %zu repeat customers with spend: p=%.6g q=%.6g v=%.6g\n",
                   gg.n_used, gg.params.p, gg.params.q, gg.params.v);
            printf("  log-likelihood %.6f, %d iterations, %s\n", gg.loglik, gg.iterations,
                   gg.converged ? "converged" : "NOT converged");
        }
        printf("over %llu months (%.6g %ss): mean P(alive) %.4f, expected purchases %.6g",
               (unsigned long long)a->horizon, horizon_units,
               a->unit == SM_UNIT_DAY ? "day" : a->unit == SM_UNIT_WEEK ? "week" : "month",
               sum_alive / (double)n, sum_expected);
        if (have_gg)
            printf(", CLV total %.6g (mean %.6g) at %.4g/month discount, margin %.4g", sum_clv,
                   sum_clv / (double)n, a->discount, a->margin);
        printf("\n");
    }
out:
    free(c.p_alive);
    free(c.expected);
    free(c.spend);
    free(c.clv);
    return rc;
}

static int run_value(const clv_args *a, const sm_summary_table *t, sm_error *err)
{
    if (t->monetary == NULL)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, a->summary, 0, 0, "monetary_value",
                               "--model %s needs a monetary_value (or zbar) column",
                               model_names[a->model]);
    size_t n = t->n;
    columns c = {0};
    c.clv = malloc(n * sizeof(double));
    double *per_month = malloc(n * sizeof(double));
    int rc = SM_OK;
    if (c.clv == NULL || per_month == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu customers", n);
        goto out;
    }
    const double units = sm_time_unit_per_month(a->unit);
    if (a->model == MODEL_HISTORIC) {
        /* The summary knows the repeat purchases only: revenue = mean x count. */
        for (size_t i = 0; i < n; i++)
            per_month[i] = t->monetary[i] * t->frequency[i];
        for (size_t i = 0; i < n; i++)
            c.clv[i] = a->margin * per_month[i] - a->acquisition;
    } else {
        for (size_t i = 0; i < n; i++)
            per_month[i] = a->margin * t->monetary[i] * t->frequency[i] / t->T[i] * units;
        sm_clv_discount_params p = {.periods = (uint32_t)a->horizon, .retention = a->retention,
                                    .discount = a->discount, .acquisition_cost = a->acquisition};
        rc = sm_clv_discounted(c.clv, per_month, NULL, n, &p, a->threads, err);
        if (rc != SM_OK)
            goto out;
    }
    if (a->out != NULL && (rc = write_results(a, t, &c, err)) != SM_OK)
        goto out;
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += c.clv[i];
    if (a->json) {
        printf("{\"model\": \"%s\", \"customers\": %zu, \"total_clv\": ", model_names[a->model], n);
        sm_json_put_double(stdout, total);
        printf(", \"mean_clv\": ");
        sm_json_put_double(stdout, total / (double)n);
        printf("}\n");
    } else {
        printf("%s CLV of %zu customers: total %.6g, mean %.6g\n", model_names[a->model], n, total,
               total / (double)n);
    }
out:
    free(c.clv);
    free(per_month);
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
    int rc = sm_summary_read(a.summary, &t, &err);
    if (rc != SM_OK)
        return sm_cli_fail(&err);
    rc = a.model == MODEL_BGNBD ? run_bgnbd(&a, &t, &err) : run_value(&a, &t, &err);
    sm_summary_table_free(&t);
    if (rc != SM_OK)
        return sm_cli_fail(&err);
    return SM_EXIT_OK;
}
