/* SPDX-License-Identifier: MIT */
#include "engine/customer_items.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"
#include "segmint/store.h"

static int compare_items(const void *a, const void *b)
{
    sm_item_id x = *(const sm_item_id *)a, y = *(const sm_item_id *)b;
    return (x > y) - (x < y);
}

int sm_customer_items(const sm_csr *baskets, const sm_customer_id *basket_customer, uint32_t n_customers,
                      sm_csr *out, uint64_t **offsets, sm_item_id **items_out, sm_error *err)
{
    uint64_t nc = n_customers;
    uint64_t *off = sm_calloc(nc + 1, sizeof *off);
    uint64_t *fill = sm_alloc_array(nc + 1, sizeof *fill);
    uint64_t total = baskets->offsets[baskets->n_rows];
    sm_item_id *items = sm_alloc_array(total ? total : 1, sizeof *items);
    if (off == NULL || fill == NULL || items == NULL) {
        sm_free(off);
        sm_free(fill);
        sm_free(items);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory grouping %" PRIu64 " baskets by customer",
                            baskets->n_rows);
    }
    for (uint64_t r = 0; r < baskets->n_rows; r++)
        if (basket_customer[r] != SM_CUSTOMER_NONE && basket_customer[r] < nc)
            off[basket_customer[r] + 1] += baskets->offsets[r + 1] - baskets->offsets[r];
    for (uint64_t c = 0; c < nc; c++)
        off[c + 1] += off[c];
    memcpy(fill, off, (nc + 1) * sizeof *fill);
    for (uint64_t r = 0; r < baskets->n_rows; r++) {
        sm_customer_id c = basket_customer[r];
        if (c == SM_CUSTOMER_NONE || c >= nc)
            continue;
        for (uint64_t k = baskets->offsets[r]; k < baskets->offsets[r + 1]; k++)
            items[fill[c]++] = baskets->items[k];
    }
    /* sort and dedupe each customer's items, compacting in place */
    uint64_t w = 0;
    for (uint64_t c = 0; c < nc; c++) {
        sm_item_id *row = items + off[c];
        uint64_t len = off[c + 1] - off[c];
        qsort(row, len, sizeof *row, compare_items);
        uint64_t start = w;
        for (uint64_t i = 0; i < len; i++)
            if (i == 0 || row[i] != row[i - 1])
                items[w++] = row[i];
        off[c] = start;
    }
    off[nc] = w;
    sm_free(fill);
    out->n_rows = nc;
    out->n_items = baskets->n_items;
    out->offsets = off;
    out->items = items;
    *offsets = off;
    *items_out = items;
    return SM_OK;
}
