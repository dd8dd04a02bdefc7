/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the store and import suites: scratch stores, fixture
 * files, a deterministic transaction-log generator, rejection capture and a
 * whole-content comparison of two stores. Header-only (static inline) so
 * each suite stays one executable.
 */
#ifndef SEGMINT_TESTS_STORETEST_H
#define SEGMINT_TESTS_STORETEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/rng.h"
#include "segmint/store.h"
#include "testutil.h"

typedef struct rejects {
    int n;
    char text[64][512];
} rejects;

static inline void rejects_collect(void *user, const sm_error *e)
{
    rejects *r = user;
    if (r->n < 64)
        sm_error_format(e, r->text[r->n], sizeof r->text[0]);
    r->n++;
}

/* Opens (creating) a store in a fresh scratch directory with `flags` (|
 * SM_STORE_CREATE). */
static inline sm_store *scratch_store_with(char *dir, size_t cap, const char *tag, unsigned flags)
{
    sm_test_tmpdir(dir, cap, tag);
    sm_store *s = NULL;
    sm_error err;
    int rc = sm_store_open(dir, flags | SM_STORE_CREATE, &s, &err);
    ck_assert_msg(rc == SM_OK, "open %s: %s", dir, err.msg);
    return s;
}

static inline sm_store *scratch_store(char *dir, size_t cap, const char *tag)
{
    return scratch_store_with(dir, cap, tag, SM_STORE_CREATE);
}

/* Writes `text` to dir/name; the path goes to `path`. */
static inline void fixture(const char *dir, const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    sm_test_write_file(path, text);
}

/* Imports one file with `o` (or defaults), collecting rejections. */
static inline int import_one(sm_store *s, const char *path, const sm_import_options *o, sm_import_result *res,
                             rejects *rej, sm_error *err)
{
    sm_import_options opt;
    if (o != NULL)
        opt = *o;
    else
        sm_import_options_init(&opt);
    if (rej != NULL) {
        memset(rej, 0, sizeof *rej);
        opt.on_reject = rejects_collect;
        opt.reject_user = rej;
    }
    const char *paths[1] = {path};
    return sm_store_import(s, paths, 1, &opt, res, err);
}

/* A transaction log of n rows: customer,invoice,sku,description,quantity,
 * unit_price,timestamp with baskets of 1..6 rows, 2% returns, times spread
 * over three years and out of order. Same seed, same bytes. */
static inline void generate_log(const char *path, uint64_t n, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs("customer_id,invoice,sku,description,quantity,unit_price,timestamp\n", f);
    sm_rng rng;
    sm_rng_init(&rng, seed, 0);
    uint64_t n_customers = n / 8 + 1, rows = 0, basket = 0;
    while (rows < n) {
        uint64_t c = sm_rng_below(&rng, n_customers);
        int64_t t = 1577836800 + (int64_t)sm_rng_below(&rng, 3 * 365 * 86400);
        uint64_t k = 1 + sm_rng_below(&rng, 6);
        basket++;
        for (uint64_t j = 0; j < k && rows < n; j++, rows++) {
            uint64_t item = sm_rng_below(&rng, 50) * sm_rng_below(&rng, 40);
            int q = 1 + (int)sm_rng_below(&rng, 5);
            if (sm_rng_below(&rng, 50) == 0)
                q = -q;
            uint64_t cents = 50 + sm_rng_below(&rng, 5000);
            fprintf(f, "C%07llu,INV%09llu,SKU%05llu,Item %llu,%d,%llu.%02llu,%lld\n", (unsigned long long)c,
                    (unsigned long long)basket, (unsigned long long)item, (unsigned long long)item, q,
                    (unsigned long long)(cents / 100), (unsigned long long)(cents % 100), (long long)t);
        }
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* Every transaction, basket and key of two stores are identical. */
static inline void assert_same_content(sm_store *a, sm_store *b)
{
    sm_error err;
    sm_store_info ia, ib;
    ck_assert_int_eq(sm_store_get_info(a, &ia, &err), SM_OK);
    ck_assert_int_eq(sm_store_get_info(b, &ib, &err), SM_OK);
    ck_assert_uint_eq(ia.rows, ib.rows);
    ck_assert_uint_eq(ia.rejected, ib.rejected);
    ck_assert_uint_eq(ia.customers, ib.customers);
    ck_assert_uint_eq(ia.items, ib.items);
    ck_assert_uint_eq(ia.baskets, ib.baskets);
    ck_assert_uint_eq(ia.basket_items, ib.basket_items);
    ck_assert_int_eq(ia.total_amount, ib.total_amount);
    ck_assert_int_eq(ia.first_time, ib.first_time);
    ck_assert_int_eq(ia.last_time, ib.last_time);
    sm_tx_table ta, tb;
    ck_assert_int_eq(sm_store_load_tx(a, &ta, NULL, &err), SM_OK);
    ck_assert_int_eq(sm_store_load_tx(b, &tb, NULL, &err), SM_OK);
    ck_assert_uint_eq(ta.n_rows, tb.n_rows);
    size_t n = (size_t)ta.n_rows;
    ck_assert(memcmp(ta.customer_offsets, tb.customer_offsets, (ta.n_customers + 1) * sizeof(uint64_t)) == 0);
    ck_assert(memcmp(ta.time, tb.time, n * sizeof *ta.time) == 0);
    ck_assert(memcmp(ta.amount, tb.amount, n * sizeof *ta.amount) == 0);
    ck_assert(memcmp(ta.quantity, tb.quantity, n * sizeof *ta.quantity) == 0);
    ck_assert(memcmp(ta.item, tb.item, n * sizeof *ta.item) == 0);
    ck_assert(memcmp(ta.basket, tb.basket, n * sizeof *ta.basket) == 0);
    ck_assert(memcmp(ta.flags, tb.flags, n * sizeof *ta.flags) == 0);
    sm_tx_table_free(&ta);
    sm_tx_table_free(&tb);
    sm_basket_table ba, bb;
    ck_assert_int_eq(sm_store_load_baskets(a, SM_BASKETS_ALL, &ba, NULL, &err), SM_OK);
    ck_assert_int_eq(sm_store_load_baskets(b, SM_BASKETS_ALL, &bb, NULL, &err), SM_OK);
    ck_assert_uint_eq(ba.csr.n_rows, bb.csr.n_rows);
    size_t nb = (size_t)ba.csr.n_rows;
    ck_assert(memcmp(ba.offsets, bb.offsets, (nb + 1) * sizeof *ba.offsets) == 0);
    ck_assert(memcmp(ba.items, bb.items, ba.offsets[nb] * sizeof *ba.items) == 0);
    ck_assert(memcmp(ba.customer, bb.customer, nb * sizeof *ba.customer) == 0);
    ck_assert(memcmp(ba.time, bb.time, nb * sizeof *ba.time) == 0);
    ck_assert(memcmp(ba.flags, bb.flags, nb * sizeof *ba.flags) == 0);
    sm_basket_table_free(&ba);
    sm_basket_table_free(&bb);
    for (int kind = SM_KEYS_CUSTOMERS; kind <= SM_KEYS_BASKETS; kind++) {
        sm_key_table ka, kb;
        ck_assert_int_eq(sm_store_load_keys(a, (sm_key_kind)kind, &ka, &err), SM_OK);
        ck_assert_int_eq(sm_store_load_keys(b, (sm_key_kind)kind, &kb, &err), SM_OK);
        ck_assert_uint_eq(ka.n, kb.n);
        for (uint32_t i = 0; i < ka.n; i++) {
            ck_assert_str_eq(ka.keys[i], kb.keys[i]);
            if (kind == SM_KEYS_ITEMS)
                ck_assert_str_eq(ka.descriptions[i], kb.descriptions[i]);
        }
        sm_key_table_free(&ka);
        sm_key_table_free(&kb);
    }
}

#endif
