/* SPDX-License-Identifier: MIT */
/* BG/NBD + Gamma-Gamma fits and per-customer predictions for the CLI commands. */
#include "engine/clv_model.h"

#include <math.h>
#include <string.h>

#include "kernels/core.h"

void sm_clv_job_free(sm_clv_job *job)
{
    if (job == NULL)
        return;
    sm_free(job->p_alive);
    sm_free(job->expected);
    sm_free(job->spend);
    sm_free(job->clv);
    memset(job, 0, sizeof *job);
}

int sm_clv_job_run(const sm_summary_table *t, const sm_clv_job_options *opt, sm_clv_job *out,
                   sm_error *err)
{
    memset(out, 0, sizeof *out);
    sm_clv_fit_options fo;
    sm_clv_fit_options_init(&fo);
    fo.n_threads = opt->n_threads;
    fo.progress = opt->progress;
    sm_clv_job j;
    memset(&j, 0, sizeof j);
    int rc = sm_bgnbd_fit_model(&j.fit, &t->view, &fo, err);
    if (rc != SM_OK)
        return rc;
    if (t->monetary != NULL) {
        size_t spenders = 0;
        for (size_t i = 0; i < t->n; i++)
            spenders += t->frequency[i] > 0.0 && t->monetary[i] > 0.0;
        if (spenders > 0) {
            rc = sm_gg_fit_model(&j.gg, &t->view, &fo, err);
            if (rc != SM_OK)
                return rc;
            j.have_gg = true;
        }
    }
    const double units = sm_time_unit_per_month(opt->unit);
    j.horizon_units = (double)opt->months * units;
    size_t n = t->n;
    j.p_alive = sm_alloc_array(n, sizeof(double));
    j.expected = sm_alloc_array(n, sizeof(double));
    if (j.have_gg) {
        j.spend = sm_alloc_array(n, sizeof(double));
        j.clv = sm_alloc_array(n, sizeof(double));
    }
    if (j.p_alive == NULL || j.expected == NULL || (j.have_gg && (j.spend == NULL || j.clv == NULL))) {
        sm_clv_job_free(&j);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu predictions", n);
    }
    rc = sm_bgnbd_predict(j.p_alive, j.expected, &j.fit.params, &t->view, j.horizon_units,
                          opt->n_threads, err);
    sm_clv_model_options mo = {.months = opt->months, .discount = opt->discount,
                               .margin = opt->margin, .units_per_month = units};
    if (rc == SM_OK && j.have_gg)
        rc = sm_gg_expected_spend(j.spend, &j.gg.params, &t->view, opt->n_threads, err);
    if (rc == SM_OK && j.have_gg)
        rc = sm_clv_bgnbd_gg(j.clv, &j.fit.params, &j.gg.params, &t->view, &mo, opt->n_threads, err);
    if (rc != SM_OK) {
        sm_clv_job_free(&j);
        return rc;
    }
    /* A new customer: P(alive) = 1, E[X(t)] of eq. 9, the population's mean
     * spend, the same monthly discounting as sm_clv_bgnbd_gg. */
    j.new_expected = sm_bgnbd_expected_transactions(&j.fit.params, j.horizon_units);
    j.new_clv = NAN;
    if (j.have_gg) {
        double q = j.gg.params.q;
        double spend = q > 1.0 ? j.gg.params.v * j.gg.params.p / (q - 1.0) : INFINITY;
        double prev = 0.0, w = 1.0, sum = 0.0;
        for (uint32_t k = 1; k <= opt->months; k++) {
            double e = sm_bgnbd_expected_transactions(&j.fit.params, (double)k * units);
            w /= 1.0 + opt->discount;
            sum += (e - prev) * w;
            prev = e;
        }
        j.new_clv = opt->margin * spend * sum;
    }
    *out = j;
    return SM_OK;
}

int sm_clv_from_tx(const sm_tx_table *tx, const sm_customer_stats *stats, const sm_clv_job_options *opt,
                   double next_units, double *p_alive, double *expected_next, double *clv, sm_clv_job *job,
                   sm_error *err)
{
    memset(job, 0, sizeof *job);
    sm_summary_table t;
    int rc = sm_summary_from_tx(tx, stats->as_of, 0, opt->unit, &t, err);
    if (rc != SM_OK)
        return rc;
    rc = sm_clv_job_run(&t, opt, job, err);
    if (rc != SM_OK) {
        sm_summary_table_free(&t);
        return rc;
    }
    const double new_next = sm_bgnbd_expected_transactions(&job->fit.params, next_units);
    for (uint32_t c = 0; c < stats->n; c++) {
        bool bought = stats->first_purchase[c] != SM_NO_PURCHASE;
        p_alive[c] = bought ? 1.0 : NAN;
        expected_next[c] = bought ? new_next : NAN;
        clv[c] = bought ? job->new_clv : NAN;
    }
    for (size_t i = 0; i < t.n; i++) {
        sm_customer_id c = t.customers[i];
        p_alive[c] = job->p_alive[i];
        expected_next[c] =
            sm_bgnbd_conditional_expected(&job->fit.params, next_units, t.frequency[i], t.recency[i], t.T[i]);
        clv[c] = job->have_gg ? job->clv[i] : NAN;
    }
    sm_summary_table_free(&t);
    return SM_OK;
}
