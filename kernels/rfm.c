/* SPDX-License-Identifier: MIT */
/*
 * Customer grading on plain arrays: RFM quintile scores (ties share a
 * score), named segments from a rule table, value tiers by cumulative value
 * share (the 80/20 rule) with the Pareto curve, and lifecycle stages.
 * It does not compute R, F and M from transactions: the engine does that.
 */
#include "segmint/rfm.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"

#define THREADS(n) ((n) > 0 ? (n) : omp_get_max_threads())

static int finite_values(const double *value, size_t n, const char *field, sm_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(value[i]))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, field,
                                   "%s of customer %zu is %s", field, i + 1,
                                   isnan(value[i]) ? "NaN" : "infinite");
    return SM_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Number of entries of sorted[0..n) that are < v (lower bound). */
static size_t count_less(const double *sorted, size_t n, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Number of entries of sorted[0..n) that are <= v (upper bound). */
static size_t count_less_equal(const double *sorted, size_t n, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int sm_rfm_quintiles(uint8_t *score, const double *value, size_t n, sm_rfm_direction direction,
                     int n_threads, sm_error *err)
{
    if (n == 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n",
                               "no customers to score");
    if (score == NULL || value == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "score and value must not be NULL");
    if (direction != SM_RFM_HIGHER_IS_BETTER && direction != SM_RFM_LOWER_IS_BETTER)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "direction",
                               "unknown score direction %d", (int)direction);
    int rc = finite_values(value, n, "value", err);
    if (rc != SM_OK)
        return rc;
    double *sorted = sm_alloc_array(n, sizeof *sorted);
    if (sorted == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory sorting %zu values", n);
    memcpy(sorted, value, n * sizeof *sorted);
    /* Equal doubles are indistinguishable, so qsort's instability cannot
     * change the result. */
    qsort(sorted, n, sizeof *sorted, cmp_double);
    const bool higher = direction == SM_RFM_HIGHER_IS_BETTER;
#pragma omp parallel for schedule(static) num_threads(THREADS(n_threads)) default(none) \
    shared(score, value, sorted) firstprivate(n, higher)
    for (size_t i = 0; i < n; i++) {
        /* worse = customers with a strictly worse value */
        size_t worse = higher ? count_less(sorted, n, value[i])
                              : n - count_less_equal(sorted, n, value[i]);
        score[i] = (uint8_t)(1 + (5 * (unsigned __int128)worse) / n);
    }
    sm_free(sorted);
    return SM_OK;
}

/* --- segments ------------------------------------------------------------------- */

/* The R x F grid most RFM guides use (R rows, F columns, 5 = best):
 *   R=5: New | Potential loyalist x2 | Champions x2
 *   R=4: Promising | Potential loyalist x2 | Loyal x2
 *   R=3: About to sleep x2 | Need attention | Loyal x2
 *   R=2: Hibernating x2 | At risk x2 | Cannot lose them
 *   R=1: Lost (M <= 2) or Hibernating x2 | At risk x2 | Cannot lose them
 * First match wins, so the order below matters. */
static const sm_rfm_segment_rule default_rules[] = {
    {"Champions", 5, 5, 4, 5, 1, 5},
    {"Loyal", 3, 4, 4, 5, 1, 5},
    {"Potential loyalist", 4, 5, 2, 3, 1, 5},
    {"New", 5, 5, 1, 1, 1, 5},
    {"Promising", 4, 4, 1, 1, 1, 5},
    {"Need attention", 3, 3, 3, 3, 1, 5},
    {"About to sleep", 3, 3, 1, 2, 1, 5},
    {"Cannot lose them", 1, 2, 5, 5, 1, 5},
    {"At risk", 1, 2, 3, 4, 1, 5},
    {"Lost", 1, 1, 1, 2, 1, 2},
    {"Hibernating", 1, 2, 1, 2, 1, 5},
};

static const sm_rfm_segment_table default_table = {SM_ARRAY_LEN(default_rules), default_rules};

const sm_rfm_segment_table *sm_rfm_default_segments(void)
{
    return &default_table;
}

int sm_rfm_segment_table_check(const sm_rfm_segment_table *t, sm_error *err)
{
    if (t == NULL || t->rules == NULL || t->n_rules == 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "the segment table has no rules");
    if (t->n_rules >= UINT16_MAX)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "the segment table has %zu rules (max %u)",
                            t->n_rules, (unsigned)UINT16_MAX - 1);
    for (size_t k = 0; k < t->n_rules; k++) {
        const sm_rfm_segment_rule *rule = &t->rules[k];
        size_t len = strnlen(rule->name, SM_RFM_SEGMENT_NAME_MAX);
        if (len == 0 || len == SM_RFM_SEGMENT_NAME_MAX)
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)k + 1, 0, "segment",
                                   "rule %zu: the name must be 1..%d bytes", k + 1,
                                   SM_RFM_SEGMENT_NAME_MAX - 1);
        const uint8_t lo[3] = {rule->r_min, rule->f_min, rule->m_min};
        const uint8_t hi[3] = {rule->r_max, rule->f_max, rule->m_max};
        const char *names[3] = {"r", "f", "m"};
        for (int j = 0; j < 3; j++)
            if (lo[j] < 1 || hi[j] > 5 || lo[j] > hi[j])
                return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)k + 1, 0, names[j],
                                       "rule %zu (%s): %s range %u..%u must lie in 1..5 with "
                                       "min <= max",
                                       k + 1, rule->name, names[j], lo[j], hi[j]);
    }
    return SM_OK;
}

int sm_rfm_assign_segments(uint16_t *segment, const uint8_t *r, const uint8_t *f, const uint8_t *m,
                           size_t n, const sm_rfm_segment_table *t, int n_threads, sm_error *err)
{
    int rc = sm_rfm_segment_table_check(t, err);
    if (rc != SM_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (r[i] < 1 || r[i] > 5 || f[i] < 1 || f[i] > 5 || m[i] < 1 || m[i] > 5)
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, "score",
                                   "customer %zu has scores %u%u%u outside 1..5", i + 1, r[i],
                                   f[i], m[i]);
    /* Resolve all 125 score triples once; customers then look theirs up. */
    uint16_t lookup[125];
    for (int code = 0; code < 125; code++) {
        int rs = code / 25 + 1, fs = code / 5 % 5 + 1, ms = code % 5 + 1;
        lookup[code] = (uint16_t)t->n_rules;
        for (size_t k = 0; k < t->n_rules; k++) {
            const sm_rfm_segment_rule *rule = &t->rules[k];
            if (rs >= rule->r_min && rs <= rule->r_max && fs >= rule->f_min && fs <= rule->f_max &&
                ms >= rule->m_min && ms <= rule->m_max) {
                lookup[code] = (uint16_t)k;
                break;
            }
        }
    }
#pragma omp parallel for schedule(static) num_threads(THREADS(n_threads)) default(none) \
    shared(segment, r, f, m, lookup) firstprivate(n)
    for (size_t i = 0; i < n; i++)
        segment[i] = lookup[(r[i] - 1) * 25 + (f[i] - 1) * 5 + (m[i] - 1)];
    return SM_OK;
}

/* --- value tiers ----------------------------------------------------------------- */

void sm_tier_params_init(sm_tier_params *p)
{
    p->value_share = 0.8;
    p->key_customer_share = 0.2;
}

typedef struct ranked {
    double value;
    size_t index;
} ranked;

/* Descending value, then ascending index: a total order, so the ranking is
 * the same whatever qsort does with equal keys. */
static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->value != b->value)
        return a->value > b->value ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

int sm_value_tiers(uint8_t *tier, double *pareto, size_t n_points, sm_tier_summary *summary,
                   const double *value, size_t n, const sm_tier_params *p, int n_threads,
                   sm_error *err)
{
    (void)n_threads; /* sorting and the cumulative sums are sequential by nature */
    if (n == 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n", "no customers to grade");
    if (tier == NULL || value == NULL || p == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "tier, value and params must not be NULL");
    if (!(p->value_share > 0.0 && p->value_share <= 1.0))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "value_share",
                               "value_share=%g must be in (0, 1]", p->value_share);
    if (!(p->key_customer_share > 0.0 && p->key_customer_share <= 1.0))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "key_customer_share",
                               "key_customer_share=%g must be in (0, 1]", p->key_customer_share);
    if (pareto != NULL && n_points < 2)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_points",
                               "the Pareto curve needs n_points >= 2 (got %zu)", n_points);
    int rc = finite_values(value, n, "value", err);
    if (rc != SM_OK)
        return rc;
    size_t n1;
    if (!sm_add_size(n, 1, &n1))
        return sm_error_set(err, SM_ERR_OVERFLOW, "too many customers");
    ranked *order = sm_alloc_array(n, sizeof *order);
    double *prefix = sm_alloc_array(n1, sizeof *prefix);
    if (order == NULL || prefix == NULL) {
        sm_free(order);
        sm_free(prefix);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory ranking %zu customers", n);
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (ranked){value[i], i};
    qsort(order, n, sizeof *order, cmp_ranked);
    /* prefix[k] = positive value of the top k customers */
    prefix[0] = 0.0;
    for (size_t k = 0; k < n; k++)
        prefix[k + 1] = prefix[k] + (order[k].value > 0.0 ? order[k].value : 0.0);
    const double total = prefix[n];
    const size_t key_count = (size_t)floor(p->key_customer_share * (double)n);

    sm_tier_summary sum;
    memset(&sum, 0, sizeof sum);
    sum.total_value = total;
    size_t group_start = 0;
    uint8_t group_tier = SM_TIER_SMALL;
    for (size_t k = 0; k < n; k++) {
        const double v = order[k].value;
        uint8_t t = SM_TIER_SMALL;
        if (v > 0.0 && prefix[k] < p->value_share * total)
            t = k < key_count ? SM_TIER_KEY : SM_TIER_ORDINARY;
        /* Equal values share the tier of the group's first (best) member. */
        if (k == 0 || v != order[group_start].value) {
            group_start = k;
            group_tier = t;
        } else {
            t = group_tier;
        }
        tier[order[k].index] = t;
        sum.count[t]++;
        sum.value[t] += v > 0.0 ? v : 0.0;
    }
    if (total > 0.0) {
        size_t top20 = (size_t)llround(0.2 * (double)n);
        sum.top20_value_share = prefix[top20] / total;
        size_t k = 0;
        while (k < n && prefix[k] < 0.8 * total)
            k++;
        sum.customers_for_80 = (double)k / (double)n;
    }
    if (pareto != NULL) {
        for (size_t j = 0; j < n_points; j++) {
            size_t top = (size_t)llround((double)j / (double)(n_points - 1) * (double)n);
            pareto[j] = total > 0.0 ? prefix[top] / total : 0.0;
        }
    }
    if (summary != NULL)
        *summary = sum;
    sm_free(order);
    sm_free(prefix);
    return SM_OK;
}

/* --- lifecycle ------------------------------------------------------------------- */

const char *sm_lifecycle_stage_name(int stage)
{
    switch (stage) {
    case SM_STAGE_POTENTIAL: return "potential";
    case SM_STAGE_NEW: return "new";
    case SM_STAGE_REPEAT: return "repeat";
    case SM_STAGE_LOYAL: return "loyal";
    case SM_STAGE_AT_RISK: return "at_risk";
    case SM_STAGE_CHURNED: return "churned";
    default: return "unknown";
    }
}

void sm_lifecycle_params_init(sm_lifecycle_params *p)
{
    p->as_of = 0.0;
    p->new_window = 90.0;
    p->churn_after = 365.0;
    p->at_risk_factor = 2.0;
    p->loyal_min_purchases = 5;
    p->churn_p_alive = 0.5;
}

static int lifecycle_params_check(const sm_lifecycle_params *p, sm_error *err)
{
    if (p == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "lifecycle parameters are NULL");
    if (!isfinite(p->as_of))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "as_of", "as_of must be finite");
    if (!(p->new_window >= 0.0) || !isfinite(p->new_window))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "new_window",
                               "new_window=%g must be finite and >= 0", p->new_window);
    if (!(p->churn_after > 0.0) || !isfinite(p->churn_after))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "churn_after",
                               "churn_after=%g must be finite and > 0", p->churn_after);
    if (!(p->at_risk_factor >= 1.0) || !isfinite(p->at_risk_factor))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "at_risk_factor",
                               "at_risk_factor=%g must be finite and >= 1", p->at_risk_factor);
    if (p->loyal_min_purchases < 2)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "loyal_min_purchases",
                               "loyal_min_purchases=%u must be >= 2",
                               (unsigned)p->loyal_min_purchases);
    if (!(p->churn_p_alive >= 0.0 && p->churn_p_alive <= 1.0))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "churn_p_alive",
                               "churn_p_alive=%g must be in [0, 1]", p->churn_p_alive);
    return SM_OK;
}

int sm_lifecycle_stages(uint8_t *stage, const double *first, const double *last,
                        const uint32_t *purchases, const double *p_alive, size_t n,
                        const sm_lifecycle_params *p, int n_threads, sm_error *err)
{
    int rc = lifecycle_params_check(p, err);
    if (rc != SM_OK)
        return rc;
    if (stage == NULL || first == NULL || last == NULL || purchases == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "stage, first, last and purchases are required");
    for (size_t i = 0; i < n; i++) {
        if (purchases[i] == 0)
            continue;
        if (!(isfinite(first[i]) && isfinite(last[i]) && first[i] <= last[i] && last[i] <= p->as_of))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, "last",
                                   "customer %zu: need first <= last <= as_of (first=%g last=%g "
                                   "as_of=%g)",
                                   i + 1, first[i], last[i], p->as_of);
        if (p_alive != NULL && !(p_alive[i] >= 0.0 && p_alive[i] <= 1.0))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, "p_alive",
                                   "customer %zu: P(alive)=%g must be in [0, 1]", i + 1,
                                   p_alive[i]);
    }
    const sm_lifecycle_params P = *p;
#pragma omp parallel for schedule(static) num_threads(THREADS(n_threads)) default(none) \
    shared(stage, first, last, purchases, p_alive) firstprivate(n, P)
    for (size_t i = 0; i < n; i++) {
        uint32_t k = purchases[i];
        uint8_t s;
        double gap = P.as_of - last[i];
        if (k == 0)
            s = SM_STAGE_POTENTIAL;
        else if (gap > P.churn_after || (p_alive != NULL && p_alive[i] < P.churn_p_alive))
            s = SM_STAGE_CHURNED;
        else if (P.as_of - first[i] <= P.new_window)
            s = SM_STAGE_NEW;
        else if (k == 1)
            s = SM_STAGE_AT_RISK;
        else if (gap > P.at_risk_factor * (last[i] - first[i]) / (double)(k - 1))
            s = SM_STAGE_AT_RISK;
        else if (k >= P.loyal_min_purchases)
            s = SM_STAGE_LOYAL;
        else
            s = SM_STAGE_REPEAT;
        stage[i] = s;
    }
    return SM_OK;
}
