/* SPDX-License-Identifier: MIT */
/**
 * @file rfm.h
 * @brief Customer grading: RFM quintile scores and named segments, value
 *        tiers (the 80/20 rule) with the Pareto curve, lifecycle stages.
 *
 * All functions take plain per-customer arrays (the engine builds them from
 * the store), allocate only scratch, keep no pointer after returning, and
 * give the same result whatever the thread count.
 *
 * Tie rule of the quintile scores: a customer's score is
 *   1 + floor(5 * B / n),
 * where B is the number of customers with a strictly WORSE value (smaller
 * frequency or monetary; larger recency, i.e. longer since the last
 * purchase). Equal values therefore always get equal scores, ties take the
 * score of their lowest-ranked member, and without ties each score holds
 * exactly n/5 customers (when 5 divides n).
 */
#ifndef SEGMINT_RFM_H
#define SEGMINT_RFM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/common.h"
#include "segmint/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/* RFM scores                                                                */
/* ======================================================================== */

/** Direction of a score: which end of the value scale earns 5. */
typedef enum sm_rfm_direction {
    SM_RFM_HIGHER_IS_BETTER = 0, /**< frequency, monetary */
    SM_RFM_LOWER_IS_BETTER = 1   /**< recency as time since the last purchase */
} sm_rfm_direction;

/**
 * Quintile scores 1..5 with the tie rule in the file comment.
 * @param[out] score  n entries in 1..5
 * @param[in]  value  n finite values
 * @param[in]  n_threads 0 = OpenMP default
 * @return SM_OK, SM_ERR_INVALID_ARG (n = 0, NaN/inf: err->line = 1-based
 *         customer index), SM_ERR_NOMEM.
 */
SM_API int sm_rfm_quintiles(uint8_t *score, const double *value, size_t n,
                            sm_rfm_direction direction, int n_threads, sm_error *err);

/** The three-digit RFM code 100 R + 10 F + M (111..555). */
static inline uint16_t sm_rfm_code(uint8_t r, uint8_t f, uint8_t m)
{
    return (uint16_t)(100u * r + 10u * f + m);
}

/* ======================================================================== */
/* Named segments                                                            */
/* ======================================================================== */

#define SM_RFM_SEGMENT_NAME_MAX 48

/**
 * One row of a segment table: a customer belongs to the segment when each of
 * its R, F and M scores lies in the inclusive range. Rules are tried in
 * order and the first match wins; a customer no rule matches is "Other".
 */
typedef struct sm_rfm_segment_rule {
    char name[SM_RFM_SEGMENT_NAME_MAX]; /**< 1..47 bytes, UTF-8 */
    uint8_t r_min, r_max;               /**< 1 <= min <= max <= 5 */
    uint8_t f_min, f_max;
    uint8_t m_min, m_max;
} sm_rfm_segment_rule;

/** A segment table (borrowed rules). */
typedef struct sm_rfm_segment_table {
    size_t n_rules;                    /**< 1..65535 */
    const sm_rfm_segment_rule *rules;
} sm_rfm_segment_table;

/** Label of customers no rule matches. */
#define SM_RFM_OTHER "Other"

/**
 * The default table: the eleven widely used segments (Champions, Loyal,
 * Potential loyalist, New, Promising, Need attention, About to sleep, At
 * risk, Cannot lose them, Hibernating, Lost) on the R x F grid, with M
 * separating Lost from Hibernating. It covers all 125 score triples. Static
 * storage; never NULL.
 */
SM_API const sm_rfm_segment_table *sm_rfm_default_segments(void);

/** Checks names (non-empty, NUL-terminated) and ranges (1..5, min <= max). */
SM_API int sm_rfm_segment_table_check(const sm_rfm_segment_table *table, sm_error *err);

/**
 * Assigns each customer the index of the first matching rule, or
 * table->n_rules for "Other".
 * @param[out] segment  n entries
 * @param[in]  r, f, m  n scores each, in 1..5
 * @return SM_OK or SM_ERR_INVALID_ARG (bad table, score outside 1..5).
 */
SM_API int sm_rfm_assign_segments(uint16_t *segment, const uint8_t *r, const uint8_t *f,
                                  const uint8_t *m, size_t n, const sm_rfm_segment_table *table,
                                  int n_threads, sm_error *err);

/* ======================================================================== */
/* Value tiers and the Pareto curve                                          */
/* ======================================================================== */

/** Value tiers, best first. */
typedef enum sm_value_tier {
    SM_TIER_KEY = 0,
    SM_TIER_ORDINARY = 1,
    SM_TIER_SMALL = 2
} sm_value_tier;

/** Where the tiers are cut. */
typedef struct sm_tier_params {
    double value_share;        /**< the "top" customers make this share of value (default 0.8) */
    double key_customer_share; /**< key = the first this share of all customers, within the top (default 0.2) */
} sm_tier_params;

/** Fills the defaults (0.8, 0.2). */
SM_API void sm_tier_params_init(sm_tier_params *p);

/** Counts and shares of a tiering, and the two 80/20 figures. */
typedef struct sm_tier_summary {
    size_t count[3];               /**< customers per tier (key, ordinary, small) */
    double value[3];               /**< sum of positive value per tier */
    double total_value;            /**< sum of positive values */
    double top20_value_share;      /**< share of value held by the top 20% of customers */
    double customers_for_80;       /**< smallest share of customers holding >= 80% of value */
} sm_tier_summary;

/**
 * Grades customers by value into key / ordinary / small.
 *
 * Customers are ranked by value, descending (ties by index for the ranking;
 * see below). Only positive values count towards shares: customers with
 * value <= 0 are always small. A customer is in the top group when the share
 * of value of the customers ranked before it is < value_share (so the
 * customer who crosses the threshold is included). Top customers ranked
 * within the first floor(key_customer_share * n) are key, the other top
 * customers ordinary, the rest small. Customers with equal values always
 * get the same tier: a tie group straddling a cut takes the better tier.
 *
 * The Pareto curve: pareto[j], j = 0..n_points-1, is the share of positive
 * value held by the top round(j / (n_points-1) * n) customers.
 *
 * @param[out] tier     n entries (sm_value_tier values)
 * @param[out] pareto   n_points entries, or NULL (then n_points is ignored)
 * @param[out] summary  may be NULL
 * @param[in]  value    n finite values (CLV, else net monetary)
 * @return SM_OK, SM_ERR_INVALID_ARG (n = 0, NaN/inf, shares outside (0, 1],
 *         n_points = 1), SM_ERR_NOMEM.
 */
SM_API int sm_value_tiers(uint8_t *tier, double *pareto, size_t n_points, sm_tier_summary *summary,
                          const double *value, size_t n, const sm_tier_params *p, int n_threads,
                          sm_error *err);

/* ======================================================================== */
/* Lifecycle stages                                                          */
/* ======================================================================== */

/** Lifecycle stages. */
typedef enum sm_lifecycle_stage {
    SM_STAGE_POTENTIAL = 0, /**< no purchase yet (purchases = 0) */
    SM_STAGE_NEW = 1,       /**< first purchase within new_window of as_of */
    SM_STAGE_REPEAT = 2,    /**< >= 2 purchases, below the loyal threshold */
    SM_STAGE_LOYAL = 3,     /**< >= loyal_min_purchases purchases, buying on schedule */
    SM_STAGE_AT_RISK = 4,   /**< gap since the last purchase well beyond the usual one */
    SM_STAGE_CHURNED = 5    /**< beyond churn_after, or P(alive) below churn_p_alive */
} sm_lifecycle_stage;

/** Static lower-case name ("new", "at_risk", ...); "unknown" otherwise. */
SM_API const char *sm_lifecycle_stage_name(int stage);

/** Thresholds, in the caller's time unit (days for the defaults). */
typedef struct sm_lifecycle_params {
    double as_of;               /**< the date the stages are computed at */
    double new_window;          /**< first purchase within this of as_of: new (default 90) */
    double churn_after;         /**< gap since the last purchase beyond this: churned (default 365) */
    double at_risk_factor;      /**< gap > factor x own mean inter-purchase time: at risk (default 2) */
    uint32_t loyal_min_purchases; /**< purchases for loyal (default 5) */
    double churn_p_alive;       /**< with p_alive given: P(alive) below this is churned (default 0.5) */
} sm_lifecycle_params;

/** Fills the defaults above (as_of = 0: set it). */
SM_API void sm_lifecycle_params_init(sm_lifecycle_params *p);

/**
 * Lifecycle stage per customer, rules tried in this order:
 * 1. purchases = 0: potential;
 * 2. as_of - last > churn_after, or p_alive[i] < churn_p_alive: churned;
 * 3. as_of - first <= new_window: new;
 * 4. one purchase only (and not new): at risk (did not come back within the
 *    new-customer window);
 * 5. as_of - last > at_risk_factor * (last - first) / (purchases - 1): at
 *    risk (the gap is well beyond the customer's own inter-purchase time);
 * 6. purchases >= loyal_min_purchases: loyal; otherwise repeat.
 * @param[out] stage     n entries (sm_lifecycle_stage values)
 * @param[in]  first, last  n times of the first and last purchase (ignored
 *                       when purchases = 0); first <= last <= as_of
 * @param[in]  purchases n purchase counts (first purchase included)
 * @param[in]  p_alive   n BG/NBD P(alive) values, or NULL
 * @return SM_OK or SM_ERR_INVALID_ARG (err->line = customer).
 */
SM_API int sm_lifecycle_stages(uint8_t *stage, const double *first, const double *last,
                               const uint32_t *purchases, const double *p_alive, size_t n,
                               const sm_lifecycle_params *p, int n_threads, sm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SEGMINT_RFM_H */
