/* SPDX-License-Identifier: MIT */
/*
 * Per-customer purchase statistics as of a date, computed in one parallel
 * pass over the transaction table. Every per-customer model (features,
 * RFM, CLV summaries, the segmentation run) starts from these, so the
 * definitions of "purchase", "basket" and "net amount" live in one place:
 *
 *   purchase row  a row without SM_TX_RETURN, dated at or before as_of
 *   return row    a row with SM_TX_RETURN, dated at or before as_of
 *   baskets       distinct basket ids among purchase rows
 *   purchase days distinct UTC calendar days among purchase rows
 *   net amount    purchases minus returns, in major units (amount / money_scale)
 *
 * Rows after as_of are ignored, so statistics "as of" a calibration date
 * never see the holdout period.
 */
#ifndef SEGMINT_ENGINE_CUSTOMER_STATS_H
#define SEGMINT_ENGINE_CUSTOMER_STATS_H

#include <stdint.h>

#include "segmint/error.h"
#include "segmint/store.h"

#define SM_NO_PURCHASE INT64_MIN /* first/last_purchase of a customer who bought nothing */

/* Days since 1970-01-01 of a UTC time (floor, also before 1970). */
static inline int64_t sm_utc_day(int64_t t)
{
    return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

/* The last second of t's UTC day: statistics "as of a date" include the
 * whole of that day, as day-based measures (RFM recency) expect. */
static inline int64_t sm_end_of_day(int64_t t)
{
    return sm_utc_day(t) * 86400 + 86399;
}

typedef struct sm_customer_stats {
    uint32_t n;               /* customers (= tx->n_customers), indexed by dense id */
    int64_t as_of;            /* UTC seconds */
    int64_t *first_purchase;  /* UTC seconds, or SM_NO_PURCHASE */
    int64_t *last_purchase;   /* UTC seconds, or SM_NO_PURCHASE */
    uint32_t *baskets;        /* distinct purchase baskets */
    uint32_t *purchase_days;  /* distinct UTC days with a purchase */
    uint32_t *distinct_items; /* distinct items bought (items with SM_ITEM_NONE not counted) */
    uint32_t *purchase_rows;
    uint32_t *return_rows;
    double *gross_amount;     /* sum of purchase rows, major units */
    double *returned_amount;  /* |sum of return rows|, major units */
    double *net_amount;       /* gross - returned */
    double *first_day_amount; /* purchases on the first purchase day (lifetimes' monetary leaves it out) */
    uint32_t with_purchase;   /* customers with at least one purchase */
} sm_customer_stats;

/* Computes the statistics as of `as_of` (UTC seconds). Deterministic and
 * independent of the thread count (each customer is computed by exactly one
 * thread, with no shared reductions). n_threads 0 = OpenMP default.
 * Errors: SM_ERR_NOMEM, SM_ERR_INVALID_ARG (inconsistent table). */
int sm_customer_stats_compute(const sm_tx_table *tx, int64_t as_of, int n_threads, sm_customer_stats *out,
                              sm_error *err);

void sm_customer_stats_free(sm_customer_stats *stats);

#endif
