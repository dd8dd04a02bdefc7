/* SPDX-License-Identifier: MIT */
#include "engine/features.h"

#include <string.h>

#include "kernels/core.h"

const char *const sm_feature_names[SM_FEATURE_COLUMNS] = {
    "recency_days", "frequency", "monetary_total", "monetary_mean",
    "tenure_days", "interpurchase_days", "distinct_items", "return_rate"};

void sm_feature_set_free(sm_feature_set *set)
{
    sm_matrix_free(&set->matrix);
    sm_free(set->customers);
    memset(set, 0, sizeof *set);
}

int sm_features_build(const sm_customer_stats *s, sm_feature_set *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    if (s->with_purchase == 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "no customer has a purchase on or before the as-of date");
    int rc = sm_matrix_alloc(&out->matrix, s->with_purchase, SM_FEATURE_COLUMNS, err);
    if (rc != SM_OK)
        return rc;
    for (int j = 0; j < SM_FEATURE_COLUMNS; j++) {
        sm_free(out->matrix.column_names[j]);
        out->matrix.column_names[j] = sm_strdup(sm_feature_names[j]);
        if (out->matrix.column_names[j] == NULL) {
            sm_feature_set_free(out);
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory for feature names");
        }
    }
    out->customers = sm_alloc_array(s->with_purchase, sizeof *out->customers);
    if (out->customers == NULL) {
        sm_feature_set_free(out);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %" PRIu32 " feature rows", s->with_purchase);
    }
    const double day = 86400.0;
    size_t row = 0;
    for (uint32_t c = 0; c < s->n; c++) {
        if (s->baskets[c] == 0 || s->first_purchase[c] == SM_NO_PURCHASE) {
            out->without_purchase++;
            continue;
        }
        float *x = out->matrix.data + row * out->matrix.ld;
        double recency = (double)(s->as_of - s->last_purchase[c]) / day;
        double tenure = (double)(s->as_of - s->first_purchase[c]) / day;
        double frequency = s->baskets[c];
        double span = (double)(s->last_purchase[c] - s->first_purchase[c]) / day;
        double return_rate = s->gross_amount[c] > 0.0 ? s->returned_amount[c] / s->gross_amount[c] : 0.0;
        x[0] = (float)recency;
        x[1] = (float)frequency;
        x[2] = (float)s->net_amount[c];
        x[3] = (float)(s->net_amount[c] / frequency);
        x[4] = (float)tenure;
        x[5] = (float)(s->baskets[c] >= 2 ? span / (frequency - 1.0) : tenure);
        x[6] = (float)s->distinct_items[c];
        x[7] = (float)(return_rate < 0.0 ? 0.0 : return_rate > 1.0 ? 1.0 : return_rate);
        out->customers[row++] = c;
    }
    SM_ASSERT(row == s->with_purchase);
    return SM_OK;
}
