/* SPDX-License-Identifier: MIT */
/*
 * The BG/NBD + Gamma-Gamma job shared by `segmint clv` and `segmint rfm
 * --clv`: fit both models on a summary, predict P(alive), expected
 * purchases, expected spend and the lifetimes-style CLV for every customer,
 * and the same for a customer whose first purchase is today (x = 0, T = 0:
 * a summary cannot hold such a customer because T must be > 0).
 */
#ifndef SEGMINT_ENGINE_CLV_MODEL_H
#define SEGMINT_ENGINE_CLV_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/clv_summary.h"
#include "engine/customer_stats.h"
#include "segmint/clv.h"

typedef struct sm_clv_job_options {
    sm_time_unit unit;    /* of the summary's recency and T */
    uint32_t months;      /* horizon */
    double discount;      /* monthly */
    double margin;
    int n_threads;
    sm_progress progress; /* stages "bgnbd", "gamma-gamma" */
} sm_clv_job_options;

typedef struct sm_clv_job {
    sm_bgnbd_fit fit;
    bool have_gg;         /* monetary given and at least one spender */
    sm_gg_fit gg;
    double horizon_units; /* months x units per month */
    double *p_alive;      /* n */
    double *expected;     /* n purchases over the horizon */
    double *spend;        /* n or NULL without Gamma-Gamma */
    double *clv;          /* n or NULL without Gamma-Gamma */
    double new_expected;  /* E[X(horizon)] of a brand-new customer */
    double new_clv;       /* its CLV (NaN without Gamma-Gamma) */
} sm_clv_job;

/* Runs the job. A summary with monetary values but no usable spender gets
 * no Gamma-Gamma (have_gg false), not an error. Errors: those of the fits
 * and predictions (SM_ERR_INVALID_ARG, SM_ERR_NUMERIC, SM_ERR_CANCELLED),
 * SM_ERR_NOMEM. */
int sm_clv_job_run(const sm_summary_table *t, const sm_clv_job_options *opt, sm_clv_job *out,
                   sm_error *err);

void sm_clv_job_free(sm_clv_job *job);

/*
 * The job on a store's transactions as of a date, spread back onto store
 * customers (stats->n entries each): P(alive), expected purchases in the
 * next `next_units` time units, and the model CLV over opt->months (NaN
 * without Gamma-Gamma). Customers whose first purchase is on the as-of day
 * (age 0, outside the BG/NBD summary) get the new-customer values; those
 * without any purchase get NaN ("not computed", never 0).
 * `job` receives the fitted models (free with sm_clv_job_free).
 * Errors: those of sm_summary_from_tx and sm_clv_job_run.
 */
int sm_clv_from_tx(const sm_tx_table *tx, const sm_customer_stats *stats, const sm_clv_job_options *opt,
                   double next_units, double *p_alive, double *expected_next, double *clv, sm_clv_job *job,
                   sm_error *err);

#endif /* SEGMINT_ENGINE_CLV_MODEL_H */
