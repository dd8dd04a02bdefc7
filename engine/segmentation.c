/* SPDX-License-Identifier: MIT */
/*
 * The segmentation run's stages (see segmentation.h). Everything is computed
 * from two loads, the transaction table and the basket table; each stage
 * reads those arrays or the previous stages' results, never the store.
 */
#include "engine/segmentation.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clv_model.h"
#include "engine/customer_items.h"
#include "engine/customer_stats.h"
#include "engine/output.h"
#include "engine/rfm_features.h"
#include "engine/rfm_segments.h"
#include "engine/scale.h"
#include "kernels/core.h"
#include "kernels/rng.h"
#include "segmint/anomaly.h"
#include "segmint/fim.h"
#include "segmint/kmeans.h"
#include "segmint/rfm.h"

const char *const sm_run_algorithms[] = {"auto", "lloyd", "hamerly", "elkan", "yinyang", "minibatch", NULL};
const char *const sm_run_scales[] = {"none", "zscore", "robust", NULL};
const char *const sm_run_time_units[] = {"day", "week", "month", NULL};

#define KEY(name, type, field, lo, hi, choices, help) \
    {name, type, offsetof(sm_run_config, field), lo, hi, choices, help}
const sm_config_key sm_run_config_keys[] = {
    KEY("as_of", SM_CONFIG_DATE, as_of, 0, 0, NULL, "grade as of this date (default: the last transaction's day)"),
    KEY("threads", SM_CONFIG_UINT, threads, 0, 4096, NULL, "threads (0 = all cores; results do not depend on it)"),
    KEY("kmeans.k", SM_CONFIG_UINT_OR_AUTO, k, 1, 1000, NULL, "segments, or auto (best silhouette over k_min..k_max)"),
    KEY("kmeans.k_min", SM_CONFIG_UINT, k_min, 2, 1000, NULL, "smallest k tried by auto"),
    KEY("kmeans.k_max", SM_CONFIG_UINT, k_max, 2, 1000, NULL, "largest k tried by auto"),
    KEY("kmeans.algorithm", SM_CONFIG_CHOICE, algorithm, 0, 0, sm_run_algorithms, "k-means algorithm"),
    KEY("kmeans.n_init", SM_CONFIG_UINT, n_init, 1, 1000, NULL, "restarts; the lowest inertia is kept"),
    KEY("kmeans.max_iter", SM_CONFIG_UINT, max_iter, 1, 100000, NULL, "iterations per restart"),
    KEY("kmeans.tol", SM_CONFIG_DOUBLE, tol, 0, 1, NULL, "convergence tolerance (scikit-learn's rule)"),
    KEY("kmeans.seed", SM_CONFIG_UINT, seed, 0, 1.8e19, NULL, "random seed of every stage"),
    KEY("kmeans.columns", SM_CONFIG_STRING, columns, 0, 0, NULL, "feature columns to cluster on"),
    KEY("kmeans.log1p", SM_CONFIG_STRING, log1p, 0, 0, NULL, "columns log1p-transformed before scaling"),
    KEY("kmeans.scale", SM_CONFIG_CHOICE, scale, 0, 0, sm_run_scales, "column scaling"),
    KEY("kmeans.silhouette_sample", SM_CONFIG_UINT, silhouette_sample, 0, 1e9, NULL,
        "rows sampled for the silhouette of auto (0 = all)"),
    KEY("kmeans.sweep_rows", SM_CONFIG_UINT, sweep_rows, 100, 1e12, NULL,
        "auto: choose k on a seeded sample of this many rows, then fit all rows"),
    KEY("rfm.segments", SM_CONFIG_STRING, rfm_segments, 0, 0, NULL, "RFM segment table file (\"\" = built-in)"),
    KEY("rfm.key_customer_share", SM_CONFIG_DOUBLE, key_customer_share, 0, 1, NULL, "key tier: at most this share of customers"),
    KEY("rfm.value_share", SM_CONFIG_DOUBLE, value_share, 0, 1, NULL, "key + ordinary make this share of value"),
    KEY("rfm.new_days", SM_CONFIG_DOUBLE, new_days, 0, 1e5, NULL, "lifecycle: first purchase within this many days = new"),
    KEY("rfm.churn_days", SM_CONFIG_DOUBLE, churn_days, 0, 1e5, NULL, "lifecycle: no purchase for this many days = churned"),
    KEY("rfm.at_risk_factor", SM_CONFIG_DOUBLE, at_risk_factor, 1, 1e3, NULL,
        "lifecycle: gap beyond this x own inter-purchase time = at risk"),
    KEY("rfm.loyal_purchases", SM_CONFIG_UINT, loyal_purchases, 2, 1e6, NULL, "lifecycle: purchases for loyal"),
    KEY("rfm.churn_p_alive", SM_CONFIG_DOUBLE, churn_p_alive, 0, 1, NULL, "lifecycle: P(alive) below this = churned"),
    KEY("clv.margin", SM_CONFIG_DOUBLE, margin, 0, 1, NULL, "profit as a share of revenue"),
    KEY("clv.monthly_discount", SM_CONFIG_DOUBLE, monthly_discount, 0, 1, NULL, "discount rate per month"),
    KEY("clv.horizon_months", SM_CONFIG_UINT, horizon_months, 1, 1200, NULL, "CLV horizon in months"),
    KEY("clv.time_unit", SM_CONFIG_CHOICE, time_unit, 0, 0, sm_run_time_units, "BG/NBD time unit"),
    KEY("clv.acquisition_cost", SM_CONFIG_DOUBLE, acquisition_cost, 0, 1e12, NULL, "per customer, subtracted from CLV"),
    KEY("clv.retention", SM_CONFIG_DOUBLE, retention, 0, 1, NULL, "monthly retention of the discounted CLV"),
    KEY("anomaly.trees", SM_CONFIG_UINT, trees, 1, 100000, NULL, "Isolation Forest trees"),
    KEY("anomaly.sample", SM_CONFIG_UINT, sample, 2, 1e9, NULL, "rows per tree (psi)"),
    KEY("anomaly.contamination", SM_CONFIG_DOUBLE, contamination, 1e-6, 0.5, NULL, "share of customers flagged"),
    KEY("baskets.min_support", SM_CONFIG_DOUBLE, min_support, 1e-9, 1, NULL, "itemset support, share of baskets"),
    KEY("baskets.min_confidence", SM_CONFIG_DOUBLE, min_confidence, 0, 1, NULL, "rule confidence"),
    KEY("baskets.min_lift", SM_CONFIG_DOUBLE, min_lift, 0, 1e9, NULL, "rule lift"),
    KEY("baskets.max_len", SM_CONFIG_UINT, max_len, 2, 64, NULL, "longest itemset"),
    KEY("baskets.cross_sell", SM_CONFIG_UINT, cross_sell, 0, SM_CROSS_SELL_MAX, NULL,
        "cross-sell items per customer (0 = skip basket analysis)"),
    KEY("baskets.include_returns", SM_CONFIG_BOOL, include_returns, 0, 0, NULL, "keep return baskets when mining"),
};
#undef KEY
const size_t sm_run_config_n_keys = SM_ARRAY_LEN(sm_run_config_keys);

void sm_run_config_init(sm_run_config *c)
{
    memset(c, 0, sizeof *c);
    c->k = 0;
    c->k_min = 2;
    c->k_max = 12;
    c->algorithm = 0;
    c->n_init = 4;
    c->max_iter = 300;
    c->tol = 1e-4;
    c->seed = 42;
    strcpy(c->columns, "recency_days,frequency,monetary_mean,tenure_days,interpurchase_days");
    strcpy(c->log1p, "frequency,monetary_mean,interpurchase_days");
    c->scale = 1; /* zscore */
    c->silhouette_sample = 5000;
    c->sweep_rows = 50000;
    c->key_customer_share = 0.2;
    c->value_share = 0.8;
    c->new_days = 90;
    c->churn_days = 365;
    c->at_risk_factor = 2;
    c->loyal_purchases = 5;
    c->churn_p_alive = 0.5;
    c->margin = 0.3;
    c->monthly_discount = 0.01;
    c->horizon_months = 12;
    c->time_unit = 1; /* week, as the BG/NBD paper */
    c->acquisition_cost = 0;
    c->retention = 0.9;
    c->trees = 100;
    c->sample = 256;
    c->contamination = 0.01;
    c->min_support = 0.003;
    c->min_confidence = 0.3;
    c->min_lift = 1.0;
    c->max_len = 4;
    c->cross_sell = 5;
    c->include_returns = false;
}

void sm_segmentation_free(sm_segmentation *s)
{
    sm_free(s->customers);
    sm_free(s->rows);
    if (s->columns != NULL)
        for (uint32_t j = 0; j < s->d; j++)
            sm_free(s->columns[j]);
    sm_free(s->columns);
    sm_free(s->segments);
    sm_free(s->centres);
    sm_free(s->centres_original);
    sm_free(s->sweep);
    if (s->rfm_names != NULL)
        for (uint32_t i = 0; i < s->n_rfm_names; i++)
            sm_free(s->rfm_names[i]);
    sm_free(s->rfm_names);
    memset(s, 0, sizeof *s);
}

static void note(sm_segmentation *s, const char *fmt, const char *detail)
{
    size_t used = strlen(s->notes);
    snprintf(s->notes + used, sizeof s->notes - used, fmt, detail);
}

static void timing(sm_segmentation *s, const char *stage, double started)
{
    if (s->n_timings < SM_ARRAY_LEN(s->timings))
        s->timings[s->n_timings++] = (sm_run_pair){stage, omp_get_wtime() - started};
}

/* --- segment names ------------------------------------------------------------- */

/*
 * A readable name from a segment's member means relative to the population
 * (README "segmint run" documents the rule):
 *   lapsed  mean recency >= 2x the population's and >= 90 days
 *   new     mean tenure <= 0.5x the population's and recency <= the population's
 *   value   mean monetary_total >= 2x the population's: high-value (big spenders),
 *           <= 0.5x: low-value (low spenders), else mid-value (mid spenders)
 *   rhythm  mean frequency >= 2x: frequent, <= 0.5x: occasional, else regular
 * giving "lapsed big spenders", "new low-value customers", "high-value
 * frequent", ...; a repeated name gets " #2", " #3" in segment order.
 */
static void name_segments(sm_segmentation *s)
{
    enum { RECENCY = 0, FREQUENCY = 1, MONETARY = 2, TENURE = 4 };
    const double *pop = s->population_mean;
    for (uint32_t c = 0; c < s->k; c++) {
        const double *m = s->segments[c].mean;
        double value = pop[MONETARY] > 0 ? m[MONETARY] / pop[MONETARY] : 1.0;
        double rhythm = pop[FREQUENCY] > 0 ? m[FREQUENCY] / pop[FREQUENCY] : 1.0;
        int v = value >= 2.0 ? 0 : value <= 0.5 ? 2 : 1;
        static const char *const value_word[] = {"high-value", "mid-value", "low-value"};
        static const char *const spender_word[] = {"big spenders", "mid spenders", "low spenders"};
        const char *rhythm_word = rhythm >= 2.0 ? "frequent" : rhythm <= 0.5 ? "occasional" : "regular";
        char *name = s->segments[c].name;
        size_t cap = sizeof s->segments[c].name;
        if (m[RECENCY] >= 2.0 * pop[RECENCY] && m[RECENCY] >= 90.0)
            snprintf(name, cap, "lapsed %s", spender_word[v]);
        else if (m[TENURE] <= 0.5 * pop[TENURE] && m[RECENCY] <= pop[RECENCY])
            snprintf(name, cap, "new %s customers", value_word[v]);
        else
            snprintf(name, cap, "%s %s", value_word[v], rhythm_word);
    }
    for (uint32_t c = 1; c < s->k; c++) {
        int repeats = 1;
        for (uint32_t p = 0; p < c; p++) {
            const char *other = s->segments[p].name;
            size_t len = strlen(s->segments[c].name);
            if (strncmp(other, s->segments[c].name, len) == 0 && (other[len] == '\0' || other[len] == ' '))
                repeats++;
        }
        if (repeats > 1) {
            size_t len = strlen(s->segments[c].name);
            snprintf(s->segments[c].name + len, sizeof s->segments[c].name - len, " #%d", repeats);
        }
    }
}

/* --- stages ------------------------------------------------------------------------ */

typedef struct run_state {
    const sm_run_config *cfg;
    int threads;
    sm_tx_table tx;
    sm_basket_table baskets;
    bool have_baskets;
    sm_customer_stats stats;
    sm_feature_set features;
    /* per store customer */
    double *p_alive, *expected, *clv_model;
} run_state;

static int stage_kmeans(run_state *st, sm_segmentation *s, const sm_progress *progress, sm_error *err)
{
    const sm_run_config *cfg = st->cfg;
    /* A store too small for the configured k (a pilot, a test shop) still
     * gets its RFM, CLV and baskets; the segment columns stay empty. */
    size_t needed = cfg->k == 0 ? (size_t)cfg->k_min + 1 : (size_t)cfg->k;
    if (st->features.matrix.n < needed) {
        char why[160];
        snprintf(why, sizeof why, "%zu customers are too few for k %s %llu, segment columns are empty",
                 st->features.matrix.n, cfg->k == 0 ? "auto from" : "=",
                 (unsigned long long)(cfg->k == 0 ? cfg->k_min : cfg->k));
        note(s, "kmeans: %s; ", why);
        return SM_OK;
    }
    sm_matrix x;
    int rc = sm_matrix_alloc(&x, st->features.matrix.n, st->features.matrix.d, err);
    if (rc != SM_OK)
        return rc;
    memcpy(x.data, st->features.matrix.data, x.n * x.d * sizeof(float));
    for (size_t j = 0; j < x.d; j++) {
        sm_free(x.column_names[j]);
        x.column_names[j] = sm_strdup(sm_feature_names[j]);
        if (x.column_names[j] == NULL)
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    }
    bool *logs = NULL;
    sm_scaler scaler;
    memset(&scaler, 0, sizeof scaler);
    sm_kmeans *km = NULL;
    sm_cluster_id *labels = NULL;
    float *dist = NULL, *orig = NULL, *sample = NULL;
    if (rc == SM_OK)
        rc = sm_matrix_select_columns(&x, cfg->columns, "kmeans.columns", err);
    if (rc == SM_OK) {
        logs = sm_alloc_array(x.d, sizeof *logs);
        rc = logs ? sm_matrix_column_flags(&x, cfg->log1p, "kmeans.log1p", logs, err)
                  : sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    }
    if (rc == SM_OK)
        rc = sm_scaler_fit(&scaler, x.data, x.n, x.d, x.ld, (sm_scale_method)cfg->scale, logs,
                           st->threads, err);
    if (rc != SM_OK)
        goto out;
    sm_scaler_transform(&scaler, x.data, x.ld, x.data, x.n, x.ld);

    sm_kmeans_params p;
    sm_kmeans_params_init(&p);
    sm_kmeans_algorithm_parse(sm_run_algorithms[cfg->algorithm], &p.algorithm);
    p.n_init = (int)cfg->n_init;
    p.max_iter = (int)cfg->max_iter;
    p.tol = cfg->tol;
    p.seed = cfg->seed;
    p.n_threads = st->threads;
    p.progress = *progress;
    /* Restarts and the choice of k are paid on a seeded sample of rows
     * (sweep_rows): the best model there gives the centres that all rows
     * then refine in a few Lloyd-type iterations. With n <= sweep_rows the
     * sample is the data and nothing is refitted. */
    size_t rows = x.n;
    if (x.n > cfg->sweep_rows) {
        rows = cfg->sweep_rows;
        sample = sm_alloc_array(rows, x.d * sizeof(float));
        if (sample == NULL) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
            goto out;
        }
        sm_rng rng;
        sm_rng_init(&rng, cfg->seed, 0x5EED);
        /* selection sampling (Knuth's Algorithm S): rows in order, each with the right odds */
        size_t taken = 0;
        for (size_t i = 0; i < x.n && taken < rows; i++)
            if (sm_rng_below(&rng, x.n - i) < rows - taken)
                memcpy(sample + taken++ * x.d, x.data + i * x.ld, x.d * sizeof(float));
    }
    const float *fit_x = sample ? sample : x.data;
    size_t fit_ld = sample ? x.d : x.ld;
    if (cfg->k == 0) {
        int lo = (int)cfg->k_min, hi = (int)SM_MAX(cfg->k_max, cfg->k_min);
        s->sweep = sm_calloc((size_t)(hi - lo + 1), sizeof *s->sweep);
        rc = s->sweep ? sm_kmeans_sweep(&p, fit_x, rows, x.d, fit_ld, lo, hi, cfg->silhouette_sample, s->sweep,
                                        &s->n_sweep, &s->chosen, &km, err)
                      : sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    } else {
        p.k = (int)cfg->k;
        p.n = rows;
        p.d = x.d;
        p.ld = fit_ld;
        rc = sm_kmeans_create(&p, &km, err);
        if (rc == SM_OK)
            rc = sm_kmeans_fit(km, fit_x, NULL, err);
    }
    if (rc == SM_OK && sample != NULL) {
        sm_kmeans *refined = NULL;
        p.k = cfg->k == 0 ? s->sweep[s->chosen].k : (int)cfg->k;
        p.n = x.n;
        p.d = x.d;
        p.ld = x.ld;
        p.init = SM_KMEANS_INIT_GIVEN;
        p.n_init = 1;
        rc = sm_kmeans_create(&p, &refined, err);
        if (rc == SM_OK)
            rc = sm_kmeans_fit(refined, x.data, sm_kmeans_get_centers(km), err);
        sm_kmeans_destroy(km);
        km = refined;
    }
    if (rc != SM_OK)
        goto out;
    sm_kmeans_result result;
    sm_kmeans_get_result(km, &result);
    if (result.fewer_clusters)
        note(s, "kmeans: %s; ", result.warning);
    uint32_t k = (uint32_t)(cfg->k == 0 ? s->sweep[s->chosen].k : (int)cfg->k);
    s->k = k;
    s->d = (uint32_t)x.d;
    labels = sm_alloc_array(x.n, sizeof *labels);
    dist = sm_alloc_array(x.n, sizeof *dist);
    orig = sm_alloc_array((size_t)k * x.d, sizeof *orig);
    s->segments = sm_calloc(k, sizeof *s->segments);
    s->centres = sm_alloc_array((size_t)k * x.d, sizeof *s->centres);
    s->centres_original = sm_alloc_array((size_t)k * x.d, sizeof *s->centres_original);
    s->columns = sm_calloc(x.d, sizeof *s->columns);
    if (!labels || !dist || !orig || !s->segments || !s->centres || !s->centres_original || !s->columns) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for %u segments", k);
        goto out;
    }
    for (size_t j = 0; j < x.d; j++)
        if ((s->columns[j] = sm_strdup(x.column_names[j])) == NULL) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
            goto out;
        }
    rc = sm_kmeans_predict(km, labels, dist, x.data, x.n, x.ld, err);
    if (rc != SM_OK)
        goto out;
    const float *centres = sm_kmeans_get_centers(km);
    sm_scaler_inverse(&scaler, orig, centres, k);
    for (size_t i = 0; i < (size_t)k * x.d; i++) {
        s->centres[i] = centres[i];
        s->centres_original[i] = orig[i];
    }
    /* profiles: member means of every feature, in original units */
    const sm_matrix *f = &st->features.matrix;
    for (size_t i = 0; i < f->n; i++) {
        sm_segment_profile *seg = &s->segments[labels[i]];
        seg->size++;
        for (size_t j = 0; j < SM_FEATURE_COLUMNS; j++)
            seg->mean[j] += f->data[i * f->ld + j];
    }
    for (uint32_t c = 0; c < k; c++)
        for (size_t j = 0; j < SM_FEATURE_COLUMNS; j++)
            s->segments[c].mean[j] = s->segments[c].size ? s->segments[c].mean[j] / (double)s->segments[c].size : NAN;
    name_segments(s);
    for (size_t i = 0; i < f->n; i++) {
        sm_assignment *a = &s->rows[st->features.customers[i]];
        a->segment = labels[i];
        a->distance = sqrtf(dist[i]);
    }
out:
    sm_kmeans_destroy(km);
    sm_free(sample);
    sm_free(labels);
    sm_free(dist);
    sm_free(orig);
    sm_free(logs);
    sm_scaler_free(&scaler);
    sm_matrix_free(&x);
    return rc;
}

/* Model CLV, P(alive) and expected purchases; historic and discounted CLV. */
static int stage_clv(run_state *st, sm_segmentation *s, const sm_progress *progress, sm_error *err)
{
    const sm_run_config *cfg = st->cfg;
    const uint32_t n = s->n;
    st->p_alive = sm_alloc_array(n + 1, sizeof(double));
    st->expected = sm_alloc_array(n + 1, sizeof(double));
    st->clv_model = sm_alloc_array(n + 1, sizeof(double));
    double *revenue = sm_alloc_array(n + 1, sizeof(double));
    double *acquisition = sm_alloc_array(n + 1, sizeof(double));
    double *monthly_margin = sm_alloc_array(n + 1, sizeof(double));
    double *historic = sm_alloc_array(n + 1, sizeof(double));
    double *discounted = sm_alloc_array(n + 1, sizeof(double));
    int rc = SM_OK;
    if (!st->p_alive || !st->expected || !st->clv_model || !revenue || !acquisition || !monthly_margin ||
        !historic || !discounted) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for the CLV of %u customers", n);
        goto out;
    }
    sm_clv_job_options jo = {.unit = (sm_time_unit)cfg->time_unit, .months = (uint32_t)cfg->horizon_months,
                             .discount = cfg->monthly_discount, .margin = cfg->margin, .n_threads = st->threads,
                             .progress = *progress, .gg_optional = true};
    sm_clv_job job;
    memset(&job, 0, sizeof job);
    sm_error model_err;
    sm_error_clear(&model_err);
    int model_rc = sm_clv_from_tx(&st->tx, &st->stats, &jo, sm_time_unit_per_month(jo.unit), st->p_alive, st->expected,
                                  st->clv_model, &job, &model_err);
    if (model_rc == SM_ERR_NOMEM || model_rc == SM_ERR_CANCELLED) {
        *err = model_err;
        rc = model_rc;
        goto out;
    }
    if (model_rc == SM_OK) {
        s->have_bgnbd = true;
        s->bgnbd = job.fit;
        s->have_gg = job.have_gg;
        s->gg = job.gg;
        if (!job.have_gg)
            note(s, "clv: no Gamma-Gamma spend model (%s), so clv_model is empty; ", job.gg_note);
    } else {
        /* The data do not support the model (too few repeat buyers, no
         * convergence): its columns stay empty, the rest of the run goes on. */
        note(s, "clv: BG/NBD not fitted (%s); p_alive, expected_purchases and clv_model are empty; ", model_err.msg);
        for (uint32_t c = 0; c < n; c++)
            st->p_alive[c] = st->expected[c] = st->clv_model[c] = NAN;
    }
    sm_clv_job_free(&job);

    /* Historic: margin x net revenue to date minus acquisition cost.
     * Discounted: the customer's average monthly margin to date, carried
     * forward over the horizon at the monthly retention and discount rates. */
    size_t m = 0;
    sm_customer_id *who = sm_alloc_array(n + 1, sizeof *who);
    if (who == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (uint32_t c = 0; c < n; c++) {
        if (st->stats.first_purchase[c] == SM_NO_PURCHASE)
            continue;
        double months = (double)(st->stats.as_of - st->stats.first_purchase[c]) / (86400.0 * 365.25 / 12.0);
        revenue[m] = st->stats.net_amount[c];
        acquisition[m] = cfg->acquisition_cost;
        monthly_margin[m] = cfg->margin * st->stats.net_amount[c] / SM_MAX(months, 1.0);
        who[m++] = c;
    }
    sm_clv_discount_params dp = {.periods = (uint32_t)cfg->horizon_months, .retention = cfg->retention,
                                 .discount = cfg->monthly_discount, .acquisition_cost = cfg->acquisition_cost};
    rc = sm_clv_historic(historic, revenue, NULL, acquisition, NULL, cfg->margin, m, err);
    if (rc == SM_OK)
        rc = sm_clv_discounted(discounted, monthly_margin, NULL, m, &dp, st->threads, err);
    for (size_t i = 0; rc == SM_OK && i < m; i++) {
        sm_assignment *a = &s->rows[who[i]];
        a->clv_historic = historic[i];
        a->clv_discounted = discounted[i];
    }
    for (uint32_t c = 0; rc == SM_OK && c < n; c++) {
        if (st->stats.first_purchase[c] == SM_NO_PURCHASE)
            continue;
        s->rows[c].p_alive = st->p_alive[c];
        s->rows[c].expected_purchases = st->expected[c];
        s->rows[c].clv_model = st->clv_model[c];
    }
    sm_free(who);
out:
    sm_free(revenue);
    sm_free(acquisition);
    sm_free(monthly_margin);
    sm_free(historic);
    sm_free(discounted);
    return rc;
}

static int stage_rfm(run_state *st, sm_segmentation *s, sm_error *err)
{
    const sm_run_config *cfg = st->cfg;
    sm_rfm_segment_file file;
    memset(&file, 0, sizeof file);
    const sm_rfm_segment_table *table = sm_rfm_default_segments();
    int rc = SM_OK;
    if (cfg->rfm_segments[0] != '\0') {
        rc = sm_rfm_segments_read(cfg->rfm_segments, &file, err);
        if (rc != SM_OK)
            return rc;
        table = &file.table;
    }
    s->n_rfm_names = (uint32_t)table->n_rules + 1;
    s->rfm_names = sm_calloc(s->n_rfm_names, sizeof *s->rfm_names);
    for (size_t i = 0; s->rfm_names != NULL && i < s->n_rfm_names; i++)
        if ((s->rfm_names[i] = sm_strdup(i < table->n_rules ? table->rules[i].name : SM_RFM_OTHER)) == NULL)
            break;
    if (s->rfm_names == NULL || s->rfm_names[s->n_rfm_names - 1] == NULL) {
        sm_rfm_segments_free(&file);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for the RFM segment names");
    }
    sm_tier_params tiers = {.value_share = cfg->value_share, .key_customer_share = cfg->key_customer_share};
    sm_lifecycle_params life;
    sm_lifecycle_params_init(&life);
    life.new_window = cfg->new_days;
    life.churn_after = cfg->churn_days;
    life.at_risk_factor = cfg->at_risk_factor;
    life.loyal_min_purchases = (uint32_t)cfg->loyal_purchases;
    life.churn_p_alive = cfg->churn_p_alive;
    sm_rfm_result r;
    rc = sm_rfm_compute(&st->stats, table, &tiers, &life, s->have_gg ? st->clv_model : NULL,
                        s->have_bgnbd ? st->p_alive : NULL, st->threads, &r, err);
    sm_rfm_segments_free(&file);
    if (rc != SM_OK)
        return rc;
    for (size_t i = 0; i < r.n; i++) {
        sm_assignment *a = &s->rows[r.customer[i]];
        a->r_score = r.r[i];
        a->f_score = r.f[i];
        a->m_score = r.m[i];
        a->rfm_segment = (uint8_t)SM_MIN(r.segment[i], (uint16_t)(SM_INDEX_NONE - 1));
        a->value_tier = r.tier[i];
        a->lifecycle = r.stage[i];
        s->tier_count[r.tier[i]]++;
        s->stage_count[r.stage[i] < 6 ? r.stage[i] : 5]++;
    }
    s->pareto_top20_share = r.pareto[4]; /* 0%, 5%, ..., 20% of customers */
    sm_rfm_result_free(&r);
    return SM_OK;
}

static int stage_anomaly(run_state *st, sm_segmentation *s, const sm_progress *progress, sm_error *err)
{
    const sm_run_config *cfg = st->cfg;
    const sm_matrix *f = &st->features.matrix;
    if (f->n < 2) {
        note(s, "%s", "anomaly: fewer than 2 customers, nothing to score; ");
        return SM_OK;
    }
    sm_iforest_params p;
    sm_iforest_params_init(&p);
    p.n_trees = (uint32_t)cfg->trees;
    p.sample_size = (uint32_t)SM_MIN(cfg->sample, (uint64_t)f->n);
    p.seed = cfg->seed;
    p.n_threads = st->threads;
    p.progress = *progress;
    sm_iforest *forest = NULL;
    double *scores = sm_alloc_array(f->n, sizeof *scores);
    uint8_t *flags = sm_alloc_array(f->n, 1);
    int rc = scores && flags ? sm_iforest_fit(&p, f->data, f->n, f->d, f->ld, &forest, err)
                             : sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    if (rc == SM_OK)
        rc = sm_iforest_score(forest, scores, f->data, f->n, f->d, f->ld, st->threads, progress, err);
    if (rc == SM_OK)
        rc = sm_anomaly_threshold(&s->anomaly_threshold, scores, f->n, cfg->contamination, err);
    if (rc == SM_OK) {
        s->flagged = sm_anomaly_flag(flags, NULL, scores, f->n, s->anomaly_threshold, SM_DETECTOR_IFOREST);
        for (size_t i = 0; i < f->n; i++) {
            sm_assignment *a = &s->rows[st->features.customers[i]];
            a->anomaly_score = (float)scores[i];
            a->anomaly_flag = flags[i];
        }
    }
    sm_iforest_destroy(forest);
    sm_free(scores);
    sm_free(flags);
    return rc;
}

static int stage_baskets(run_state *st, sm_segmentation *s, const sm_progress *progress, sm_error *err)
{
    const sm_run_config *cfg = st->cfg;
    if (cfg->cross_sell == 0)
        return SM_OK;
    const sm_csr *b = &st->baskets.csr;
    s->n_baskets = b->n_rows;
    if (b->n_rows == 0) {
        note(s, "%s", "baskets: the store holds no baskets, cross_sell is empty; ");
        return SM_OK;
    }
    sm_fim_params fp;
    sm_fim_params_init(&fp);
    fp.min_support = cfg->min_support;
    fp.max_len = (uint32_t)cfg->max_len;
    fp.n_threads = st->threads;
    fp.progress = *progress;
    sm_itemsets *itemsets = NULL;
    sm_rules *rules = NULL;
    sm_recommendations *recs = NULL;
    uint64_t *offsets = NULL;
    sm_item_id *items = NULL;
    sm_fim_result fr;
    int rc = sm_itemsets_create(&itemsets, err);
    if (rc == SM_OK)
        rc = sm_fim_mine(b, &fp, sm_itemsets_sink, itemsets, &fr, err);
    if (rc == SM_OK) {
        s->n_itemsets = fr.n_itemsets;
        sm_rules_params rp;
        sm_rules_params_init(&rp);
        rp.min_confidence = cfg->min_confidence;
        rp.min_lift = cfg->min_lift;
        rc = sm_rules_generate(itemsets, b->n_rows, &rp, &rules, err);
    }
    if (rc == SM_OK) {
        s->n_rules = sm_rules_count(rules);
        if (s->n_rules == 0)
            note(s, "%s", "baskets: no rule meets the support/confidence/lift thresholds, cross_sell is empty; ");
    }
    sm_csr bought;
    if (rc == SM_OK && s->n_rules > 0)
        rc = sm_customer_items(b, st->baskets.customer, s->n, &bought, &offsets, &items, err);
    if (rc == SM_OK && s->n_rules > 0) {
        sm_recommend_params rp;
        sm_recommend_params_init(&rp);
        rp.top_n = (uint32_t)cfg->cross_sell;
        rp.n_threads = st->threads;
        rc = sm_recommend(&bought, rules, &rp, &recs, err);
    }
    if (rc == SM_OK && recs != NULL) {
        for (uint32_t c = 0; c < s->n; c++) {
            sm_assignment *a = &s->rows[c];
            uint64_t lo = recs->offsets[c], hi = recs->offsets[c + 1];
            a->n_cross_sell = (uint8_t)SM_MIN(hi - lo, (uint64_t)SM_CROSS_SELL_MAX);
            for (uint8_t j = 0; j < a->n_cross_sell; j++) {
                a->cross_sell_item[j] = recs->entries[lo + j].item;
                a->cross_sell_score[j] = (float)recs->entries[lo + j].score;
            }
            s->with_cross_sell += a->n_cross_sell > 0;
        }
    }
    sm_recommendations_destroy(recs);
    sm_free(offsets);
    sm_free(items);
    sm_rules_destroy(rules);
    sm_itemsets_destroy(itemsets);
    return rc;
}

/* Prefixes a stage's failure with the stage name. */
static int in_stage(int rc, const char *stage, sm_error *err)
{
    if (rc != SM_OK && rc != SM_ERR_CANCELLED && err != NULL && strncmp(err->msg, stage, strlen(stage)) != 0) {
        /* a long message loses its tail, never the stage that failed */
        char msg[SM_ERROR_MSG_MAX + 32];
        snprintf(msg, sizeof msg, "%s: %s", stage, err->msg);
        snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, msg);
    }
    return rc;
}

/* The run reports progress under its own seven stage names, whatever the
 * kernels inside call their steps (k-means alone has "kmeans-init" and
 * "kmeans" for every k and restart), so a terminal shows one line per stage. */
typedef struct stage_progress {
    const sm_progress *outer;
    const char *stage;
} stage_progress;

static int forward_under_stage(void *user, const char *inner, uint64_t done, uint64_t total)
{
    (void)inner;
    const stage_progress *sp = user;
    return sp->outer->fn(sp->outer->user, sp->stage, done, total);
}

/* Names the stage now running and announces it (a stage without steps of
 * its own still gets its line); nonzero from the callback cancels. */
static int begin_stage(stage_progress *sp, const char *stage, sm_error *err)
{
    sp->stage = stage;
    if (sp->outer->fn != NULL && sp->outer->fn(sp->outer->user, stage, 0, 0) != 0)
        return sm_error_set(err, SM_ERR_CANCELLED, "cancelled at the start of %s", stage);
    return SM_OK;
}

int sm_segmentation_run(sm_store *store, const sm_run_config *cfg, const sm_progress *outer_progress,
                        sm_segmentation *out, sm_error *err)
{
    const sm_progress silent = {NULL, NULL};
    stage_progress staged = {outer_progress != NULL ? outer_progress : &silent, NULL};
    const sm_progress stage_progress_fn = {staged.outer->fn != NULL ? forward_under_stage : NULL, &staged};
    const sm_progress *progress = &stage_progress_fn;
    memset(out, 0, sizeof *out);
    run_state st;
    memset(&st, 0, sizeof st);
    st.cfg = cfg;
    st.threads = (int)cfg->threads;
    sm_segmentation *s = out;
    double t = omp_get_wtime();

    /* load: the transaction log once, the baskets once */
    sm_store_info info;
    int rc = begin_stage(&staged, "load", err);
    if (rc == SM_OK)
        rc = sm_store_get_info(store, &info, err);
    if (rc == SM_OK && (!info.has_time || info.customers == 0))
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, sm_store_path(store), 0, 0, NULL,
                             "the store has no dated customer transactions to segment");
    if (rc == SM_OK)
        rc = sm_store_load_tx(store, &st.tx, progress, err);
    if (rc == SM_OK && cfg->cross_sell > 0) {
        rc = sm_store_load_baskets(store,
                                   (cfg->include_returns ? 0u : SM_BASKETS_EXCLUDE_RETURNS) | SM_BASKETS_SKIP_EMPTY,
                                   &st.baskets, progress, err);
        st.have_baskets = rc == SM_OK;
    }
    if (rc != SM_OK)
        goto out;
    timing(s, "load", t);

    /* features */
    t = omp_get_wtime();
    s->as_of = sm_end_of_day(cfg->as_of != 0 ? cfg->as_of : info.last_time);
    s->n = st.tx.n_customers;
    s->customers = sm_alloc_array(s->n + 1, sizeof *s->customers);
    s->rows = sm_alloc_array(s->n + 1, sizeof *s->rows);
    if (s->customers == NULL || s->rows == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for %u assignment rows", s->n);
        goto out;
    }
    for (uint32_t c = 0; c < s->n; c++) {
        s->customers[c] = c;
        sm_assignment_clear(&s->rows[c]);
    }
    rc = begin_stage(&staged, "features", err);
    if (rc == SM_OK)
        rc = sm_customer_stats_compute(&st.tx, s->as_of, st.threads, &st.stats, err);
    if (rc == SM_OK)
        rc = sm_features_build(&st.stats, &st.features, err);
    if ((rc = in_stage(rc, "features", err)) != SM_OK)
        goto out;
    s->graded = st.stats.with_purchase;
    for (size_t i = 0; i < st.features.matrix.n; i++)
        for (size_t j = 0; j < SM_FEATURE_COLUMNS; j++)
            s->population_mean[j] += st.features.matrix.data[i * st.features.matrix.ld + j];
    for (size_t j = 0; j < SM_FEATURE_COLUMNS; j++)
        s->population_mean[j] /= (double)st.features.matrix.n;
    timing(s, "features", t);

    t = omp_get_wtime();
    if ((rc = begin_stage(&staged, "kmeans", err)) != SM_OK ||
        (rc = in_stage(stage_kmeans(&st, s, progress, err), "kmeans", err)) != SM_OK)
        goto out;
    timing(s, "kmeans", t);
    t = omp_get_wtime();
    if ((rc = begin_stage(&staged, "clv", err)) != SM_OK ||
        (rc = in_stage(stage_clv(&st, s, progress, err), "clv", err)) != SM_OK)
        goto out;
    timing(s, "clv", t);
    t = omp_get_wtime();
    if ((rc = begin_stage(&staged, "rfm", err)) != SM_OK ||
        (rc = in_stage(stage_rfm(&st, s, err), "rfm", err)) != SM_OK)
        goto out;
    timing(s, "rfm", t);
    t = omp_get_wtime();
    if ((rc = begin_stage(&staged, "anomaly", err)) != SM_OK ||
        (rc = in_stage(stage_anomaly(&st, s, progress, err), "anomaly", err)) != SM_OK)
        goto out;
    timing(s, "anomaly", t);
    t = omp_get_wtime();
    if ((rc = begin_stage(&staged, "baskets", err)) != SM_OK ||
        (rc = in_stage(stage_baskets(&st, s, progress, err), "baskets", err)) != SM_OK)
        goto out;
    timing(s, "baskets", t);
out:
    sm_free(st.p_alive);
    sm_free(st.expected);
    sm_free(st.clv_model);
    sm_feature_set_free(&st.features);
    sm_customer_stats_free(&st.stats);
    if (st.have_baskets)
        sm_basket_table_free(&st.baskets);
    sm_tx_table_free(&st.tx);
    if (rc != SM_OK)
        sm_segmentation_free(s);
    return rc;
}

/* --- the run record ------------------------------------------------------------------ */

int sm_segmentation_describe(const sm_segmentation *s, int64_t started, int64_t finished, const char *config_text,
                             const sm_store_info *info, sm_run_description *run, sm_run_segment *segments,
                             const char **lifecycle_names, char **details_buf, sm_error *err)
{
    memset(run, 0, sizeof *run);
    run->kind = "run";
    run->started = started;
    run->finished = finished;
    run->as_of = s->as_of;
    run->config = config_text;
    run->features = (const char *const *)s->columns;
    run->n_features = s->d;
    for (uint32_t c = 0; c < s->k; c++)
        segments[c] = (sm_run_segment){s->segments[c].name, s->segments[c].size, s->centres + (size_t)c * s->d,
                                       s->centres_original + (size_t)c * s->d};
    run->segments = segments;
    run->n_segments = s->k;
    run->rfm_segments = (const char *const *)s->rfm_names;
    run->n_rfm_segments = s->n_rfm_names;
    for (int i = 0; i < 6; i++)
        lifecycle_names[i] = sm_lifecycle_stage_name(i);
    run->lifecycle = lifecycle_names;
    run->n_lifecycle = 6;
    const sm_run_pair counts[] = {
        {"customers", s->n},
        {"graded", s->graded},
        {"rows", (double)info->rows},
        {"rejected", (double)info->rejected},
        {"tx_rows", (double)info->tx_rows},
        {"baskets", (double)info->baskets},
        {"items", info->items},
        {"key", (double)s->tier_count[0]},
        {"ordinary", (double)s->tier_count[1]},
        {"small", (double)s->tier_count[2]},
        {"anomalies_flagged", (double)s->flagged},
        {"itemsets", (double)s->n_itemsets},
        {"rules", (double)s->n_rules},
        {"with_cross_sell", (double)s->with_cross_sell},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(counts); i++)
        run->counts[run->n_counts++] = counts[i];
    for (uint32_t i = 0; i < s->n_timings; i++)
        run->timings[run->n_timings++] = s->timings[i];

    size_t len = 0;
    FILE *f = open_memstream(details_buf, &len);
    if (f == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory describing the run");
    fputs("{\"bgnbd\":", f);
    if (s->have_bgnbd) {
        fputs("{\"r\":", f);
        sm_json_put_double(f, s->bgnbd.params.r);
        fputs(",\"alpha\":", f);
        sm_json_put_double(f, s->bgnbd.params.alpha);
        fputs(",\"a\":", f);
        sm_json_put_double(f, s->bgnbd.params.a);
        fputs(",\"b\":", f);
        sm_json_put_double(f, s->bgnbd.params.b);
        fputs(",\"loglik\":", f);
        sm_json_put_double(f, s->bgnbd.loglik);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs(",\"gamma_gamma\":", f);
    if (s->have_gg) {
        fputs("{\"p\":", f);
        sm_json_put_double(f, s->gg.params.p);
        fputs(",\"q\":", f);
        sm_json_put_double(f, s->gg.params.q);
        fputs(",\"v\":", f);
        sm_json_put_double(f, s->gg.params.v);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs(",\"anomaly_threshold\":", f);
    sm_json_put_double(f, s->flagged || s->anomaly_threshold != 0 ? s->anomaly_threshold : NAN);
    fputs(",\"top20_value_share\":", f);
    sm_json_put_double(f, s->pareto_top20_share);
    fputs(",\"k_sweep\":[", f);
    for (size_t i = 0; i < s->n_sweep; i++) {
        fprintf(f, "%s{\"k\":%d,\"inertia\":", i ? "," : "", s->sweep[i].k);
        sm_json_put_double(f, s->sweep[i].inertia);
        fputs(",\"silhouette\":", f);
        sm_json_put_double(f, s->sweep[i].silhouette);
        fputs(",\"calinski_harabasz\":", f);
        sm_json_put_double(f, s->sweep[i].calinski_harabasz);
        fputs(",\"davies_bouldin\":", f);
        sm_json_put_double(f, s->sweep[i].davies_bouldin);
        fprintf(f, ",\"iterations\":%d,\"seconds\":", s->sweep[i].n_iter);
        sm_json_put_double(f, s->sweep[i].seconds);
        fputc('}', f);
    }
    fputs("],\"notes\":", f);
    sm_json_put_string(f, s->notes);
    fputs("}", f);
    if (fclose(f) != 0)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory describing the run");
    run->details_json = *details_buf;
    return SM_OK;
}
