/* SPDX-License-Identifier: MIT */
/*
 * Each customer's set of bought items (the union of their baskets) as an
 * sm_csr indexed by dense customer id: the input of cross-sell
 * recommendations, shared by `segmint baskets` and `segmint run`.
 */
#ifndef SEGMINT_ENGINE_CUSTOMER_ITEMS_H
#define SEGMINT_ENGINE_CUSTOMER_ITEMS_H

#include <stdint.h>

#include "segmint/common.h"
#include "segmint/error.h"

/* baskets: the basket matrix; basket_customer: one customer id per basket
 * row (SM_CUSTOMER_NONE rows are skipped). On success *offsets and *items
 * own the arrays `out` points into (release with sm_free). */
int sm_customer_items(const sm_csr *baskets, const sm_customer_id *basket_customer, uint32_t n_customers,
                      sm_csr *out, uint64_t **offsets, sm_item_id **items, sm_error *err);

#endif
