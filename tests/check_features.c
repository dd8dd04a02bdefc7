/* SPDX-License-Identifier: MIT */
/* Customer statistics and the feature matrix against hand computation. */
#include "engine/customer_stats.h"
#include "engine/features.h"
#include "kernels/core.h"
#include "kernels/rng.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

enum { DAY = 86400 };
static const int64_t T0 = 1700000000 / DAY * DAY; /* a midnight */

/* Three customers, money scale 100 (amounts in cents):
 *  c0: day 0 basket 0: item 1 for 10.00 and item 2 for 5.00
 *      day 10 basket 1: item 1 for 3.00
 *      day 12 basket 2: returns item 2, -5.00
 *  c1: day 5 basket 3: item 3 for 2.50; day 40 basket 4 (after as_of)
 *  c2: day 3 basket 5: a return only, -1.00
 * as_of = day 30. */
static uint64_t offsets[] = {0, 4, 6, 7};
static int64_t times[] = {T0, T0, T0 + 10 * DAY, T0 + 12 * DAY, T0 + 5 * DAY, T0 + 40 * DAY, T0 + 3 * DAY};
static int64_t amounts[] = {1000, 500, 300, -500, 250, 999, -100};
static int32_t quantities[] = {1, 1, 1, -1, 1, 1, -1};
static sm_item_id items[] = {1, 2, 1, 2, 3, 3, 4};
static sm_basket_id baskets[] = {0, 0, 1, 2, 3, 4, 5};
static uint16_t flags[] = {0, 0, 0, SM_TX_RETURN, 0, 0, SM_TX_RETURN};

static sm_tx_table fixture(void)
{
    return (sm_tx_table){.n_customers = 3, .n_rows = 7, .money_scale = 100, .customer_offsets = offsets,
                         .time = times, .amount = amounts, .quantity = quantities, .item = items,
                         .basket = baskets, .flags = flags};
}

START_TEST(stats_match_hand_computation)
{
    sm_tx_table tx = fixture();
    sm_customer_stats s;
    sm_error err;
    ck_assert_int_eq(sm_customer_stats_compute(&tx, T0 + 30 * DAY, 2, &s, &err), SM_OK);
    ck_assert_uint_eq(s.with_purchase, 2);
    ck_assert_int_eq(s.first_purchase[0], T0);
    ck_assert_int_eq(s.last_purchase[0], T0 + 10 * DAY);
    ck_assert_uint_eq(s.baskets[0], 2);
    ck_assert_uint_eq(s.purchase_days[0], 2);
    ck_assert_uint_eq(s.distinct_items[0], 2);
    ck_assert_uint_eq(s.purchase_rows[0], 3);
    ck_assert_uint_eq(s.return_rows[0], 1);
    ck_assert_double_eq(s.gross_amount[0], 18.0);
    ck_assert_double_eq(s.returned_amount[0], 5.0);
    ck_assert_double_eq(s.net_amount[0], 13.0);
    ck_assert_double_eq(s.first_day_amount[0], 15.0);
    /* c1: the day-40 purchase is after as_of and ignored */
    ck_assert_uint_eq(s.baskets[1], 1);
    ck_assert_double_eq(s.gross_amount[1], 2.5);
    ck_assert_int_eq(s.last_purchase[1], T0 + 5 * DAY);
    /* c2 bought nothing */
    ck_assert_int_eq(s.first_purchase[2], SM_NO_PURCHASE);
    ck_assert_double_eq(s.net_amount[2], -1.0);
    sm_customer_stats_free(&s);
}
END_TEST

START_TEST(features_match_hand_computation)
{
    sm_tx_table tx = fixture();
    sm_customer_stats s;
    sm_feature_set f;
    sm_error err;
    ck_assert_int_eq(sm_customer_stats_compute(&tx, T0 + 30 * DAY, 1, &s, &err), SM_OK);
    ck_assert_int_eq(sm_features_build(&s, &f, &err), SM_OK);
    ck_assert_uint_eq(f.matrix.n, 2);
    ck_assert_uint_eq(f.matrix.d, SM_FEATURE_COLUMNS);
    ck_assert_uint_eq(f.without_purchase, 1);
    ck_assert_uint_eq(f.customers[0], 0);
    ck_assert_uint_eq(f.customers[1], 1);
    ck_assert_str_eq(f.matrix.column_names[5], "interpurchase_days");
    const float expect0[SM_FEATURE_COLUMNS] = {20, 2, 13, 6.5f, 30, 10, 2, (float)(5.0 / 18.0)};
    const float expect1[SM_FEATURE_COLUMNS] = {25, 1, 2.5f, 2.5f, 25, 25, 1, 0};
    for (int j = 0; j < SM_FEATURE_COLUMNS; j++) {
        ck_assert_float_eq(f.matrix.data[j], expect0[j]);
        ck_assert_float_eq(f.matrix.data[f.matrix.ld + j], expect1[j]);
    }
    sm_feature_set_free(&f);

    /* before anyone bought: nothing to build */
    sm_customer_stats_free(&s);
    ck_assert_int_eq(sm_customer_stats_compute(&tx, T0 - DAY, 1, &s, &err), SM_OK);
    ck_assert_int_eq(sm_features_build(&s, &f, &err), SM_ERR_INVALID_ARG);
    sm_customer_stats_free(&s);
}
END_TEST

START_TEST(stats_do_not_depend_on_thread_count)
{
    /* A random table: 3000 customers, up to 40 rows each, shared baskets. */
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(5), 0);
    uint32_t n = 3000;
    uint64_t *off = calloc(n + 1, sizeof *off);
    for (uint32_t c = 0; c < n; c++)
        off[c + 1] = off[c] + sm_rng_below(&rng, 40);
    uint64_t rows = off[n];
    int64_t *t = malloc(rows * sizeof *t), *a = malloc(rows * sizeof *a);
    int32_t *q = malloc(rows * sizeof *q);
    sm_item_id *it = malloc(rows * sizeof *it);
    sm_basket_id *b = malloc(rows * sizeof *b);
    uint16_t *fl = malloc(rows * sizeof *fl);
    for (uint32_t c = 0; c < n; c++) {
        int64_t now = T0;
        for (uint64_t r = off[c]; r < off[c + 1]; r++) {
            now += (int64_t)sm_rng_below(&rng, 20 * DAY);
            bool ret = sm_rng_below(&rng, 10) == 0;
            t[r] = now;
            q[r] = ret ? -1 : 1 + (int32_t)sm_rng_below(&rng, 5);
            a[r] = q[r] * (int64_t)(1 + sm_rng_below(&rng, 5000));
            it[r] = (sm_item_id)sm_rng_below(&rng, 500);
            b[r] = (sm_basket_id)(r / 3);
            fl[r] = ret ? SM_TX_RETURN : 0;
        }
    }
    sm_tx_table tx = {.n_customers = n, .n_rows = rows, .money_scale = 100, .customer_offsets = off, .time = t,
                      .amount = a, .quantity = q, .item = it, .basket = b, .flags = fl};
    sm_customer_stats one, many;
    sm_error err;
    ck_assert_int_eq(sm_customer_stats_compute(&tx, T0 + 300 * DAY, 1, &one, &err), SM_OK);
    ck_assert_int_eq(sm_customer_stats_compute(&tx, T0 + 300 * DAY, 3, &many, &err), SM_OK);
    ck_assert_int_eq(memcmp(one.net_amount, many.net_amount, n * sizeof(double)), 0);
    ck_assert_int_eq(memcmp(one.baskets, many.baskets, n * sizeof(uint32_t)), 0);
    ck_assert_int_eq(memcmp(one.distinct_items, many.distinct_items, n * sizeof(uint32_t)), 0);
    ck_assert_int_eq(memcmp(one.last_purchase, many.last_purchase, n * sizeof(int64_t)), 0);
    ck_assert_uint_eq(one.with_purchase, many.with_purchase);
    sm_customer_stats_free(&one);
    sm_customer_stats_free(&many);
    free(off), free(t), free(a), free(q), free(it), free(b), free(fl);
}
END_TEST

START_TEST(out_of_memory_is_reported)
{
    sm_tx_table tx = fixture();
    for (uint64_t nth = 1;; nth++) {
        sm_customer_stats s;
        sm_error err;
        sm_alloc_fail_at(nth, false);
        int rc = sm_customer_stats_compute(&tx, T0 + 30 * DAY, 2, &s, &err);
        sm_alloc_fail_at(0, false);
        if (rc == SM_OK) {
            sm_customer_stats_free(&s);
            break;
        }
        ck_assert_int_eq(rc, SM_ERR_NOMEM);
        ck_assert_uint_lt(nth, 40);
    }
}
END_TEST

static Suite *features_suite(void)
{
    Suite *s = suite_create("features");
    TCase *core = tcase_create("core");
    tcase_add_test(core, stats_match_hand_computation);
    tcase_add_test(core, features_match_hand_computation);
    suite_add_tcase(s, core);
    TCase *determinism = tcase_create("determinism");
    tcase_add_test(determinism, stats_do_not_depend_on_thread_count);
    suite_add_tcase(s, determinism);
    TCase *oom = tcase_create("oom");
    tcase_add_test(oom, out_of_memory_is_reported);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    return sm_test_run(features_suite());
}
