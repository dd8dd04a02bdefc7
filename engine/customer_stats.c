/* SPDX-License-Identifier: MIT */
#include "engine/customer_stats.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"

void sm_customer_stats_free(sm_customer_stats *s)
{
    sm_free(s->first_purchase);
    sm_free(s->last_purchase);
    sm_free(s->baskets);
    sm_free(s->purchase_days);
    sm_free(s->distinct_items);
    sm_free(s->purchase_rows);
    sm_free(s->return_rows);
    sm_free(s->gross_amount);
    sm_free(s->returned_amount);
    sm_free(s->net_amount);
    sm_free(s->first_day_amount);
    memset(s, 0, sizeof *s);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Number of distinct values among values[0..n). Sequences that arrive in
 * nondecreasing order (the common case: rows are time-sorted, and basket
 * ids follow import order) are counted in one pass; others are sorted. */
static uint32_t count_distinct(uint64_t *values, size_t n)
{
    if (n == 0)
        return 0;
    size_t i = 1;
    while (i < n && values[i] >= values[i - 1])
        i++;
    if (i < n)
        qsort(values, n, sizeof *values, compare_u64);
    uint32_t distinct = 1;
    for (i = 1; i < n; i++)
        distinct += values[i] != values[i - 1];
    return distinct;
}

int sm_customer_stats_compute(const sm_tx_table *tx, int64_t as_of, int n_threads, sm_customer_stats *out,
                              sm_error *err)
{
    memset(out, 0, sizeof *out);
    const uint32_t n = tx->n_customers;
    if (tx->money_scale == 0 || (n > 0 && tx->customer_offsets[n] != tx->n_rows))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "inconsistent transaction table");
    out->n = n;
    out->as_of = as_of;
    out->first_purchase = sm_alloc_array(n, sizeof(int64_t));
    out->last_purchase = sm_alloc_array(n, sizeof(int64_t));
    out->baskets = sm_alloc_array(n, sizeof(uint32_t));
    out->purchase_days = sm_alloc_array(n, sizeof(uint32_t));
    out->distinct_items = sm_alloc_array(n, sizeof(uint32_t));
    out->purchase_rows = sm_alloc_array(n, sizeof(uint32_t));
    out->return_rows = sm_alloc_array(n, sizeof(uint32_t));
    out->gross_amount = sm_alloc_array(n, sizeof(double));
    out->returned_amount = sm_alloc_array(n, sizeof(double));
    out->net_amount = sm_alloc_array(n, sizeof(double));
    out->first_day_amount = sm_alloc_array(n, sizeof(double));
    if (!out->first_purchase || !out->last_purchase || !out->baskets || !out->purchase_days ||
        !out->distinct_items || !out->purchase_rows || !out->return_rows || !out->gross_amount ||
        !out->returned_amount || !out->net_amount || !out->first_day_amount) {
        sm_customer_stats_free(out);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for statistics of %" PRIu32 " customers", n);
    }
    /* Scratch for the distinct counts: as long as the longest history. */
    uint64_t longest = 0;
    for (uint32_t c = 0; c < n; c++)
        longest = SM_MAX(longest, tx->customer_offsets[c + 1] - tx->customer_offsets[c]);
    /* Distinct items are counted with a per-thread stamp per item id
     * (stamp = customer + 1), which touches each row once. */
    uint64_t n_items = 0;
    for (uint64_t r = 0; r < tx->n_rows; r++)
        if (tx->item[r] != SM_ITEM_NONE && tx->item[r] >= n_items)
            n_items = (uint64_t)tx->item[r] + 1;
    const double scale = (double)tx->money_scale;
    int threads = n_threads > 0 ? n_threads : omp_get_max_threads();
    uint64_t **scratch = sm_calloc((size_t)threads, sizeof *scratch);
    uint32_t **stamps = sm_calloc((size_t)threads, sizeof *stamps);
    bool scratch_ok = scratch != NULL && stamps != NULL;
    for (int t = 0; scratch_ok && t < threads; t++)
        scratch_ok = (scratch[t] = sm_alloc_array(longest + 1, sizeof(uint64_t))) != NULL &&
                     (stamps[t] = sm_calloc(n_items + 1, sizeof(uint32_t))) != NULL;
    if (!scratch_ok) {
        for (int t = 0; t < threads; t++) {
            if (scratch != NULL)
                sm_free(scratch[t]);
            if (stamps != NULL)
                sm_free(stamps[t]);
        }
        sm_free(scratch);
        sm_free(stamps);
        sm_customer_stats_free(out);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for a history of %" PRIu64 " rows", longest);
    }

    uint32_t with_purchase = 0;
#pragma omp parallel num_threads(threads) reduction(+ : with_purchase)
    {
        uint64_t *keys = scratch[omp_get_thread_num()];
        uint32_t *stamp = stamps[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 4096)
        for (uint32_t c = 0; c < n; c++) {
            const uint64_t begin = tx->customer_offsets[c], end = tx->customer_offsets[c + 1];
            int64_t first = SM_NO_PURCHASE, last = SM_NO_PURCHASE;
            int64_t gross = 0, returned = 0, first_day_total = 0;
            uint32_t purchases = 0, returns = 0;
            size_t n_keys = 0;
            /* rows are sorted by time: stop at the first row after as_of */
            for (uint64_t r = begin; r < end && tx->time[r] <= as_of; r++) {
                if (tx->flags[r] & SM_TX_RETURN) {
                    returns++;
                    returned -= tx->amount[r];
                    continue;
                }
                purchases++;
                gross += tx->amount[r];
                if (first == SM_NO_PURCHASE)
                    first = tx->time[r];
                last = tx->time[r];
                if (sm_utc_day(tx->time[r]) == sm_utc_day(first))
                    first_day_total += tx->amount[r];
            }
            out->first_purchase[c] = first;
            out->last_purchase[c] = last;
            out->purchase_rows[c] = purchases;
            out->return_rows[c] = returns;
            out->gross_amount[c] = (double)gross / scale;
            out->returned_amount[c] = (double)returned / scale;
            out->net_amount[c] = (double)(gross - returned) / scale;
            out->first_day_amount[c] = (double)first_day_total / scale;
            with_purchase += purchases > 0;

            for (uint64_t r = begin; r < end && tx->time[r] <= as_of; r++)
                if (!(tx->flags[r] & SM_TX_RETURN))
                    keys[n_keys++] = tx->basket[r];
            out->baskets[c] = count_distinct(keys, n_keys);
            n_keys = 0;
            for (uint64_t r = begin; r < end && tx->time[r] <= as_of; r++)
                if (!(tx->flags[r] & SM_TX_RETURN))
                    keys[n_keys++] = (uint64_t)sm_utc_day(tx->time[r]);
            out->purchase_days[c] = count_distinct(keys, n_keys);
            uint32_t distinct_items = 0;
            for (uint64_t r = begin; r < end && tx->time[r] <= as_of; r++) {
                sm_item_id item = tx->item[r];
                if (!(tx->flags[r] & SM_TX_RETURN) && item != SM_ITEM_NONE && stamp[item] != c + 1) {
                    stamp[item] = c + 1;
                    distinct_items++;
                }
            }
            out->distinct_items[c] = distinct_items;
        }
    }
    out->with_purchase = with_purchase;
    for (int t = 0; t < threads; t++) {
        sm_free(scratch[t]);
        sm_free(stamps[t]);
    }
    sm_free(scratch);
    sm_free(stamps);
    return SM_OK;
}
