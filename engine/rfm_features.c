/* SPDX-License-Identifier: MIT */
/* The `segmint rfm` pipeline: tx table -> R, F, M -> scores, segments, tiers, stages. */
#include "engine/rfm_features.h"

#include <math.h>
#include <string.h>

#include "kernels/core.h"

void sm_rfm_result_free(sm_rfm_result *r)
{
    if (r == NULL)
        return;
    void *arrays[] = {r->customer, r->recency_days, r->frequency, r->monetary, r->first_day,
                      r->last_day, r->value, r->r, r->f, r->m, r->code, r->segment, r->tier,
                      r->stage};
    for (size_t k = 0; k < SM_ARRAY_LEN(arrays); k++)
        sm_free(arrays[k]);
    memset(r, 0, sizeof *r);
}

int sm_rfm_compute(const sm_customer_stats *stats, const sm_rfm_segment_table *segments,
                   const sm_tier_params *tiers, const sm_lifecycle_params *life, const double *clv,
                   const double *p_alive, int n_threads, sm_rfm_result *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    if (stats == NULL || segments == NULL || tiers == NULL || life == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "rfm: table, segments and parameters required");
    int rc = sm_rfm_segment_table_check(segments, err);
    if (rc != SM_OK)
        return rc;
    const int64_t asof_day = sm_utc_day(stats->as_of);
    size_t cap = stats->n > 0 ? stats->n : 1;
    sm_rfm_result r;
    memset(&r, 0, sizeof r);
    r.customer = sm_alloc_array(cap, sizeof *r.customer);
    r.recency_days = sm_alloc_array(cap, sizeof(double));
    r.frequency = sm_alloc_array(cap, sizeof(uint32_t));
    r.monetary = sm_alloc_array(cap, sizeof(double));
    r.first_day = sm_alloc_array(cap, sizeof(double));
    r.last_day = sm_alloc_array(cap, sizeof(double));
    r.value = sm_alloc_array(cap, sizeof(double));
    r.r = sm_alloc_array(cap, 1);
    r.f = sm_alloc_array(cap, 1);
    r.m = sm_alloc_array(cap, 1);
    r.code = sm_alloc_array(cap, sizeof(uint16_t));
    r.segment = sm_alloc_array(cap, sizeof(uint16_t));
    r.tier = sm_alloc_array(cap, 1);
    r.stage = sm_alloc_array(cap, 1);
    double *alive = p_alive != NULL ? sm_alloc_array(cap, sizeof(double)) : NULL;
    double *freq_d = sm_alloc_array(cap, sizeof(double));
    if (!r.customer || !r.recency_days || !r.frequency || !r.monetary || !r.first_day ||
        !r.last_day || !r.value || !r.r || !r.f || !r.m || !r.code || !r.segment || !r.tier ||
        !r.stage || !freq_d || (p_alive != NULL && alive == NULL)) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory grading %zu customers", cap);
        goto fail;
    }
    size_t n = 0;
    for (uint32_t c = 0; c < stats->n; c++) {
        if (stats->first_purchase[c] == SM_NO_PURCHASE) {
            r.n_no_purchase++;
            continue;
        }
        int64_t first = sm_utc_day(stats->first_purchase[c]), last = sm_utc_day(stats->last_purchase[c]);
        r.customer[n] = c;
        r.recency_days[n] = (double)(asof_day - last);
        r.frequency[n] = stats->baskets[c];
        freq_d[n] = (double)stats->baskets[c];
        r.monetary[n] = stats->net_amount[c];
        r.first_day[n] = (double)first;
        r.last_day[n] = (double)last;
        r.value[n] = clv != NULL ? clv[c] : r.monetary[n];
        if (alive != NULL)
            alive[n] = p_alive[c];
        n++;
    }
    if (n == 0) {
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "as_of",
                             "no customer made a purchase by the as-of date");
        goto fail;
    }
    r.n = n;
    if ((rc = sm_rfm_quintiles(r.r, r.recency_days, n, SM_RFM_LOWER_IS_BETTER, n_threads, err)) ||
        (rc = sm_rfm_quintiles(r.f, freq_d, n, SM_RFM_HIGHER_IS_BETTER, n_threads, err)) ||
        (rc = sm_rfm_quintiles(r.m, r.monetary, n, SM_RFM_HIGHER_IS_BETTER, n_threads, err)) ||
        (rc = sm_rfm_assign_segments(r.segment, r.r, r.f, r.m, n, segments, n_threads, err)) ||
        (rc = sm_value_tiers(r.tier, r.pareto, SM_RFM_PARETO_POINTS, &r.tiers, r.value, n, tiers,
                             n_threads, err)))
        goto fail;
    for (size_t i = 0; i < n; i++)
        r.code[i] = sm_rfm_code(r.r[i], r.f[i], r.m[i]);
    sm_lifecycle_params lp = *life;
    lp.as_of = (double)asof_day;
    if ((rc = sm_lifecycle_stages(r.stage, r.first_day, r.last_day, r.frequency, alive, n, &lp,
                                  n_threads, err)))
        goto fail;
    sm_free(alive);
    sm_free(freq_d);
    *out = r;
    return SM_OK;
fail:
    sm_free(alive);
    sm_free(freq_d);
    sm_rfm_result_free(&r);
    return rc;
}
