/* SPDX-License-Identifier: MIT */
/*
 * The grading pipeline of `segmint rfm` and `segmint run`: from customer
 * statistics as of a date, per customer R, F and M, their quintile
 * scores, RFM code and named segment, value tier and lifecycle stage. The
 * command only loads the table and writes what this returns.
 */
#ifndef SEGMINT_ENGINE_RFM_FEATURES_H
#define SEGMINT_ENGINE_RFM_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "engine/customer_stats.h"
#include "segmint/error.h"
#include "segmint/rfm.h"
#include "segmint/store.h"

#define SM_RFM_PARETO_POINTS 21 /* customer shares 0, 5%, ..., 100% */

typedef struct sm_rfm_result {
    size_t n;                   /* customers with a purchase by as_of */
    size_t n_no_purchase;       /* store customers without one (not graded), counted */
    sm_customer_id *customer;   /* n store ids, ascending */
    double *recency_days;       /* n: days from the last purchase day to as_of's day */
    uint32_t *frequency;        /* n: orders (distinct baskets with a non-return row) */
    double *monetary;           /* n: net amount, major units (returns subtracted) */
    double *first_day, *last_day; /* n: UTC days since 1970 of the first and last purchase */
    double *value;              /* n: the value graded into tiers (CLV if given, else monetary) */
    uint8_t *r, *f, *m;         /* n scores 1..5 */
    uint16_t *code;             /* n RFM codes 111..555 */
    uint16_t *segment;          /* n indexes into the segment table (n_rules = Other) */
    uint8_t *tier;              /* n sm_value_tier */
    uint8_t *stage;             /* n sm_lifecycle_stage */
    sm_tier_summary tiers;
    double pareto[SM_RFM_PARETO_POINTS];
} sm_rfm_result;

void sm_rfm_result_free(sm_rfm_result *r);

/*
 * Grades every customer who has a purchase in `stats` (engine/customer_stats.h
 * defines purchase, basket and net amount): R = days from the last purchase
 * day to stats->as_of's day, F = purchase baskets, M = net amount. Grading
 * "as of a date" means statistics up to the end of that day
 * (sm_end_of_day), since RFM counts whole days. `life` gives the lifecycle
 * thresholds in days (its as_of is replaced by as_of's day). `clv`, when not
 * NULL, holds one value per store customer (stats->n) used for the tiers
 * instead of monetary; `p_alive` likewise feeds the lifecycle's churn rule.
 * Errors: SM_ERR_INVALID_ARG (no customer purchased by as_of, bad table or
 * parameters), SM_ERR_NOMEM.
 */
int sm_rfm_compute(const sm_customer_stats *stats, const sm_rfm_segment_table *segments,
                   const sm_tier_params *tiers, const sm_lifecycle_params *life, const double *clv,
                   const double *p_alive, int n_threads, sm_rfm_result *out, sm_error *err);

#endif /* SEGMINT_ENGINE_RFM_FEATURES_H */
