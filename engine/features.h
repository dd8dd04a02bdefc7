/* SPDX-License-Identifier: MIT */
/*
 * The per-customer feature matrix that clustering and anomaly detection run
 * on, built from sm_customer_stats. One row per customer with at least one
 * purchase as of the date; columns (float32, in these units):
 *
 *   recency_days        days from the last purchase to as_of
 *   frequency           distinct purchase baskets
 *   monetary_total      net amount (purchases minus returns), major units
 *   monetary_mean       monetary_total / frequency
 *   tenure_days         days from the first purchase to as_of
 *   interpurchase_days  (last - first purchase) / (frequency - 1); for a
 *                       single purchase, tenure_days: the customer has gone
 *                       at least that long without a repeat (a censored
 *                       lower bound, never a made-up zero)
 *   distinct_items      distinct items bought
 *   return_rate         returned amount / purchased amount, clamped to [0, 1]
 */
#ifndef SEGMINT_ENGINE_FEATURES_H
#define SEGMINT_ENGINE_FEATURES_H

#include <stdint.h>

#include "engine/customer_stats.h"
#include "engine/matrix_io.h"

enum { SM_FEATURE_COLUMNS = 8 };

/* Column names in matrix order (static strings). */
extern const char *const sm_feature_names[SM_FEATURE_COLUMNS];

typedef struct sm_feature_set {
    sm_matrix matrix;          /* rows x SM_FEATURE_COLUMNS, names = sm_feature_names */
    sm_customer_id *customers; /* row -> dense customer id, ascending */
    uint32_t without_purchase; /* customers left out: nothing bought as of the date */
} sm_feature_set;

/* Builds the matrix from statistics. Errors: SM_ERR_NOMEM, SM_ERR_INVALID_ARG
 * (no customer has a purchase as of the date). */
int sm_features_build(const sm_customer_stats *stats, sm_feature_set *out, sm_error *err);

void sm_feature_set_free(sm_feature_set *set);

#endif
