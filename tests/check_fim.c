/* SPDX-License-Identifier: MIT */
/* Frequent itemsets, rules and recommendations against a naive Apriori
 * reference, hand-made databases and the real FIMI/arules data
 * (RELIABILITY.md L3, L4, B8, B9, F5, F11, S2). */
#include "kernels/core.h"
#include "kernels/rng.h"
#include "segmint/fim.h"
#include "storage/basket_file.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- a basket database built in the test ----------------------------------------- */

typedef struct db {
    uint64_t n;
    uint32_t n_items;
    uint64_t offsets[512];
    sm_item_id items[8192];
} db;

static sm_csr db_csr(const db *d)
{
    sm_csr c = {d->n, d->n_items, d->offsets, d->items};
    return c;
}

/* Baskets from "0 1 2|1 2||3" ('|' separates baskets, ids ascending). */
static void db_parse(db *d, uint32_t n_items, const char *text)
{
    memset(d, 0, sizeof *d);
    d->n_items = n_items;
    const char *p = text;
    uint64_t k = 0;
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p >= '0' && *p <= '9') {
            d->items[k++] = (sm_item_id)strtoul(p, (char **)&p, 10);
            continue;
        }
        d->offsets[++d->n] = k;
        if (*p == '\0')
            break;
        p++; /* '|' */
    }
}

/* Random database: n baskets over m items, item i present with probability
 * that falls with i (so supports differ), from the Philox stream `seed`. */
static void db_random(db *d, uint64_t seed, uint64_t n, uint32_t m, double density)
{
    memset(d, 0, sizeof *d);
    d->n_items = m;
    sm_rng rng;
    sm_rng_init(&rng, seed, 0);
    uint64_t k = 0;
    for (uint64_t t = 0; t < n; t++) {
        for (uint32_t i = 0; i < m; i++)
            if (sm_rng_uniform(&rng) < density * (1.0 - 0.5 * i / m))
                d->items[k++] = i;
        d->offsets[++d->n] = k;
    }
}

/* --- collected itemsets --------------------------------------------------------------- */

typedef struct iset {
    uint32_t len;
    sm_item_id items[16];
    sm_count support;
} iset;

typedef struct iset_list {
    iset *v;
    size_t n, cap;
} iset_list;

static int collect(void *user, const sm_item_id *items, uint32_t len, sm_count support)
{
    iset_list *l = user;
    ck_assert_uint_ge(len, 1);
    ck_assert_uint_le(len, 16);
    for (uint32_t i = 1; i < len; i++)
        ck_assert_uint_lt(items[i - 1], items[i]); /* ascending ids */
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    iset *s = &l->v[l->n++];
    s->len = len;
    memcpy(s->items, items, len * sizeof *items);
    s->support = support;
    return 0;
}

static int iset_cmp(const void *a, const void *b)
{
    const iset *x = a, *y = b;
    for (uint32_t i = 0; i < x->len && i < y->len; i++)
        if (x->items[i] != y->items[i])
            return x->items[i] < y->items[i] ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return 0;
}

/* --- the naive reference: level-wise Apriori over bit sets of baskets ---------------- */

static sm_count support_of(const db *d, const sm_item_id *items, uint32_t len)
{
    sm_count s = 0;
    for (uint64_t t = 0; t < d->n; t++) {
        uint32_t hit = 0;
        for (uint32_t j = 0; j < len; j++)
            for (uint64_t k = d->offsets[t]; k < d->offsets[t + 1]; k++)
                if (d->items[k] == items[j]) {
                    hit++;
                    break;
                }
        s += hit == len;
    }
    return s;
}

/* All frequent itemsets (any length), then the kind and length filters. */
static void apriori(const db *d, sm_count minc, sm_fim_kind kind, uint32_t max_len, iset_list *out)
{
    iset_list all = {0};
    iset_list level = {0};
    for (sm_item_id i = 0; i < d->n_items; i++) {
        sm_count s = support_of(d, &i, 1);
        if (s >= minc)
            collect(&level, &i, 1, s);
    }
    while (level.n > 0) {
        for (size_t a = 0; a < level.n; a++)
            collect(&all, level.v[a].items, level.v[a].len, level.v[a].support);
        iset_list next = {0};
        /* Join pairs sharing all but the last item; prune by subsets. */
        for (size_t a = 0; a < level.n; a++)
            for (size_t b = a + 1; b < level.n; b++) {
                const iset *x = &level.v[a], *y = &level.v[b];
                if (memcmp(x->items, y->items, (x->len - 1) * sizeof *x->items) != 0)
                    continue;
                iset c = *x;
                sm_item_id lo = SM_MIN(x->items[x->len - 1], y->items[y->len - 1]);
                sm_item_id hi = SM_MAX(x->items[x->len - 1], y->items[y->len - 1]);
                c.items[c.len - 1] = lo;
                c.items[c.len++] = hi;
                sm_count s = support_of(d, c.items, c.len);
                if (s >= minc)
                    collect(&next, c.items, c.len, s);
            }
        free(level.v);
        level = next;
    }
    free(level.v);
    for (size_t a = 0; a < all.n; a++) {
        const iset *x = &all.v[a];
        bool keep = true;
        if (kind != SM_FIM_ALL) {
            for (sm_item_id i = 0; i < d->n_items && keep; i++) {
                bool in = false;
                for (uint32_t j = 0; j < x->len; j++)
                    in |= x->items[j] == i;
                if (in)
                    continue;
                iset y = *x;
                y.items[y.len++] = i;
                sm_count s = support_of(d, y.items, y.len);
                if (kind == SM_FIM_CLOSED && s == x->support)
                    keep = false;
                if (kind == SM_FIM_MAXIMAL && s >= minc)
                    keep = false;
            }
        }
        if (keep && x->len <= max_len)
            collect(out, x->items, x->len, x->support);
    }
    free(all.v);
}

static void mine(const db *d, const sm_fim_params *p, iset_list *out, sm_fim_result *res)
{
    sm_csr c = db_csr(d);
    sm_error err;
    int rc = sm_fim_mine(&c, p, collect, out, res, &err);
    ck_assert_msg(rc == SM_OK, "sm_fim_mine: %s", err.msg);
}

static void expect_same(iset_list *got, iset_list *want, const char *what)
{
    if (got->n > 1) /* qsort's pointer must not be NULL, even for 0 elements */
        qsort(got->v, got->n, sizeof *got->v, iset_cmp);
    if (want->n > 1)
        qsort(want->v, want->n, sizeof *want->v, iset_cmp);
    ck_assert_msg(got->n == want->n, "%s: %zu itemsets, reference %zu", what, got->n, want->n);
    for (size_t i = 0; i < got->n; i++) {
        ck_assert_msg(iset_cmp(&got->v[i], &want->v[i]) == 0, "%s: itemset %zu differs", what, i);
        ck_assert_msg(got->v[i].support == want->v[i].support, "%s: support of itemset %zu", what, i);
    }
}

/* --- core: hand-made databases -------------------------------------------------------- */

START_TEST(hand_made_database)
{
    /* a=0 b=1 c=2 d=3: {abc, ab, ac, bc, a, d}; minsup 2 gives
     * a4 b3 c3 ab2 ac2 bc2 (abc 1, d 1 infrequent). */
    db d;
    db_parse(&d, 4, "0 1 2|0 1|0 2|1 2|0|3");
    sm_fim_params p;
    sm_fim_params_init(&p);
    p.min_support = 2;
    p.support_is_count = true;
    iset_list got = {0};
    sm_fim_result res;
    mine(&d, &p, &got, &res);
    qsort(got.v, got.n, sizeof *got.v, iset_cmp);
    static const char *want[] = {"0:4", "0 1:2", "0 2:2", "1:3", "1 2:2", "2:3"};
    ck_assert_uint_eq(got.n, 6);
    ck_assert_uint_eq(res.n_itemsets, 6);
    ck_assert_uint_eq(res.min_count, 2);
    for (size_t i = 0; i < got.n; i++) {
        char buf[64];
        size_t u = 0;
        for (uint32_t j = 0; j < got.v[i].len; j++)
            u += (size_t)snprintf(buf + u, sizeof buf - u, "%s%u", j ? " " : "", got.v[i].items[j]);
        snprintf(buf + u, sizeof buf - u, ":%llu", (unsigned long long)got.v[i].support);
        ck_assert_str_eq(buf, want[i]);
    }
    free(got.v);
    /* closed: a4 b3 c3 ab2 ac2 bc2 are all closed (abc has support 1) */
    p.kind = SM_FIM_CLOSED;
    iset_list closed = {0};
    mine(&d, &p, &closed, &res);
    ck_assert_uint_eq(closed.n, 6);
    free(closed.v);
    p.kind = SM_FIM_MAXIMAL; /* ab ac bc */
    iset_list maximal = {0};
    mine(&d, &p, &maximal, &res);
    ck_assert_uint_eq(maximal.n, 3);
    free(maximal.v);
}
END_TEST

START_TEST(agrees_with_apriori_on_random_databases)
{
    uint64_t seed0 = sm_test_seed(4);
    for (uint64_t seed = seed0; seed < seed0 + 6; seed++) {
        db d;
        db_random(&d, seed, 40 + seed % 20, 10, seed % 2 ? 0.45 : 0.7);
        for (sm_count minc = 1; minc <= 13; minc += 3) {
            for (int kind = 0; kind < 3; kind++) {
                for (int lim = 0; lim < 2; lim++) {
                    sm_fim_params p;
                    sm_fim_params_init(&p);
                    p.min_support = (double)minc;
                    p.support_is_count = true;
                    p.kind = (sm_fim_kind)kind;
                    p.max_len = lim ? 3 : SM_FIM_NO_MAX_LEN;
                    p.n_threads = 1 + (int)(seed % 3);
                    iset_list got = {0}, want = {0};
                    sm_fim_result res;
                    mine(&d, &p, &got, &res);
                    apriori(&d, minc, p.kind, p.max_len, &want);
                    char what[128];
                    snprintf(what, sizeof what, "seed %llu minc %llu kind %d max_len %u",
                             (unsigned long long)seed, (unsigned long long)minc, kind, p.max_len);
                    expect_same(&got, &want, what);
                    ck_assert_uint_eq(res.n_itemsets, want.n);
                    /* counting alone gives the same number */
                    sm_csr c = db_csr(&d);
                    sm_fim_result cnt;
                    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &cnt, NULL), SM_OK);
                    ck_assert_uint_eq(cnt.n_itemsets, want.n);
                    free(got.v);
                    free(want.v);
                }
            }
        }
    }
}
END_TEST

/* More than 64 frequent items: the list representation before the masks. */
START_TEST(agrees_with_apriori_beyond_64_items)
{
    db d;
    memset(&d, 0, sizeof d);
    d.n_items = 90;
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(11), 1);
    uint64_t k = 0;
    for (uint64_t t = 0; t < 60; t++) {
        for (uint32_t i = 0; i < 90; i++)
            if (sm_rng_uniform(&rng) < (i < 70 ? 0.06 : 0.3))
                d.items[k++] = i;
        d.offsets[++d.n] = k;
    }
    for (int kind = 0; kind < 3; kind++) {
        sm_fim_params p;
        sm_fim_params_init(&p);
        p.min_support = 2;
        p.support_is_count = true;
        p.kind = (sm_fim_kind)kind;
        iset_list got = {0}, want = {0};
        sm_fim_result res;
        mine(&d, &p, &got, &res);
        ck_assert_uint_gt(res.n_frequent_items, 64);
        apriori(&d, 2, p.kind, p.max_len, &want);
        expect_same(&got, &want, "90 items");
        free(got.v);
        free(want.v);
    }
}
END_TEST

/* Closed and maximal by their definitions, checked on the output itself. */
START_TEST(closed_and_maximal_satisfy_definitions)
{
    db d;
    db_random(&d, sm_test_seed(7), 50, 10, 0.6);
    sm_csr c = db_csr(&d);
    for (int kind = 1; kind < 3; kind++) {
        sm_fim_params p;
        sm_fim_params_init(&p);
        p.min_support = 5;
        p.support_is_count = true;
        p.kind = (sm_fim_kind)kind;
        iset_list got = {0};
        sm_fim_result res;
        ck_assert_int_eq(sm_fim_mine(&c, &p, collect, &got, &res, NULL), SM_OK);
        ck_assert_uint_gt(got.n, 0);
        for (size_t a = 0; a < got.n; a++) {
            const iset *x = &got.v[a];
            ck_assert_uint_eq(x->support, support_of(&d, x->items, x->len));
            ck_assert_uint_ge(x->support, 5);
            for (sm_item_id i = 0; i < d.n_items; i++) {
                bool in = false;
                for (uint32_t j = 0; j < x->len; j++)
                    in |= x->items[j] == i;
                if (in)
                    continue;
                iset y = *x;
                y.items[y.len++] = i;
                sm_count s = support_of(&d, y.items, y.len);
                if (kind == SM_FIM_CLOSED)
                    ck_assert_uint_lt(s, x->support);
                else
                    ck_assert_uint_lt(s, 5);
            }
        }
        free(got.v);
    }
}
END_TEST

/* --- edge: thresholds, empty baskets, duplicates, items in every basket ------------------ */

START_TEST(edge_thresholds)
{
    db d;
    db_parse(&d, 4, "0 1|0 2|0|1 2 3");
    sm_csr c = db_csr(&d);
    sm_fim_params p;
    sm_fim_params_init(&p);
    sm_fim_result res;
    /* above every item's support: nothing, cleanly */
    p.min_support = 4;
    p.support_is_count = true;
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, NULL), SM_OK);
    ck_assert_uint_eq(res.n_itemsets, 0);
    p.min_support = 1000;
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, NULL), SM_OK);
    ck_assert_uint_eq(res.n_itemsets, 0);
    /* minsup = 1: every subset of every basket: {0,1,01}{2,02}{}{1,2,3,12,13,23,123} -> 0 1 2 3 01 02 12 13 23 123 */
    p.min_support = 1;
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, NULL), SM_OK);
    ck_assert_uint_eq(res.n_itemsets, 10);
    /* 1/n as a fraction is the same as a count of 1 */
    p.support_is_count = false;
    p.min_support = 1.0 / 4;
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, NULL), SM_OK);
    ck_assert_uint_eq(res.min_count, 1);
    ck_assert_uint_eq(res.n_itemsets, 10);
    /* fraction rounding: smallest count >= f*n */
    sm_count mc;
    p.min_support = 0.07;
    ck_assert_int_eq(sm_fim_min_count(&p, 100, &mc, NULL), SM_OK);
    ck_assert_uint_eq(mc, 7);
    p.min_support = 0.001;
    ck_assert_int_eq(sm_fim_min_count(&p, 9835, &mc, NULL), SM_OK);
    ck_assert_uint_eq(mc, 10);
    p.min_support = 0.6;
    ck_assert_int_eq(sm_fim_min_count(&p, 3196, &mc, NULL), SM_OK);
    ck_assert_uint_eq(mc, 1918);
    p.min_support = 1.0;
    ck_assert_int_eq(sm_fim_min_count(&p, 3196, &mc, NULL), SM_OK);
    ck_assert_uint_eq(mc, 3196);
}
END_TEST

START_TEST(edge_invalid_parameters)
{
    db d;
    db_parse(&d, 2, "0 1|1");
    sm_csr c = db_csr(&d);
    sm_fim_params p;
    sm_error err;
    struct {
        double s;
        bool count;
        uint32_t max_len;
        const char *field;
    } bad[] = {
        {0, false, SM_FIM_NO_MAX_LEN, "min_support"},   {-0.1, false, SM_FIM_NO_MAX_LEN, "min_support"},
        {NAN, false, SM_FIM_NO_MAX_LEN, "min_support"}, {1.5, false, SM_FIM_NO_MAX_LEN, "min_support"},
        {2.5, true, SM_FIM_NO_MAX_LEN, "min_support"},  {0, true, SM_FIM_NO_MAX_LEN, "min_support"},
        {0.5, false, 0, "max_len"},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(bad); i++) {
        sm_fim_params_init(&p);
        p.min_support = bad[i].s;
        p.support_is_count = bad[i].count;
        p.max_len = bad[i].max_len;
        ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, NULL, &err), SM_ERR_INVALID_ARG);
        ck_assert_str_eq(err.field, bad[i].field);
    }
    sm_fim_params_init(&p);
    p.kind = (sm_fim_kind)7;
    ck_assert_int_eq(sm_fim_params_check(&p, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "kind");
    /* Malformed rows are refused rather than read out of bounds. */
    sm_fim_params_init(&p);
    p.min_support = 1;
    p.support_is_count = true;
    uint64_t off_late[] = {1, 2, 3}, off_back[] = {0, 2, 1};
    sm_csr late = {2, 2, off_late, d.items}, back = {2, 2, off_back, d.items};
    ck_assert_int_eq(sm_fim_mine(&late, &p, NULL, NULL, NULL, &err), SM_ERR_INVALID_ARG);
    ck_assert_int_eq(sm_fim_mine(&back, &p, NULL, NULL, NULL, &err), SM_ERR_INVALID_ARG);
}
END_TEST

START_TEST(edge_item_in_every_basket_and_empty_baskets)
{
    /* item 0 in every non-empty basket... and in every basket when no empty one */
    db d;
    db_parse(&d, 3, "0 1|0 2|0 1 2|0");
    sm_fim_params p;
    sm_fim_params_init(&p);
    p.min_support = 1;
    p.support_is_count = true;
    for (int kind = 0; kind < 3; kind++) {
        p.kind = (sm_fim_kind)kind;
        iset_list got = {0}, want = {0};
        sm_fim_result res;
        mine(&d, &p, &got, &res);
        apriori(&d, 1, p.kind, p.max_len, &want);
        expect_same(&got, &want, "item in every basket");
        free(got.v);
        free(want.v);
    }
    /* all 7 non-empty subsets of {0,1,2}: 0 is never dropped */
    p.kind = SM_FIM_ALL;
    sm_csr c = db_csr(&d);
    sm_fim_result res;
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, NULL), SM_OK);
    ck_assert_uint_eq(res.n_itemsets, 7);
    /* Empty baskets count in the total a fraction refers to, and add nothing. */
    db e;
    db_parse(&e, 3, "0 1|||0 1|0");
    c = db_csr(&e);
    p.support_is_count = false;
    p.min_support = 0.4; /* 2 of 5 */
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, NULL), SM_OK);
    ck_assert_uint_eq(res.min_count, 2);
    ck_assert_uint_eq(res.n_itemsets, 3); /* 0:3 1:2 01:2 */
    /* Only empty baskets, and no baskets at all. */
    db_parse(&e, 3, "||");
    c = db_csr(&e);
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, NULL), SM_OK);
    ck_assert_uint_eq(res.n_itemsets, 0);
    sm_csr none = {0, 3, e.offsets, e.items};
    ck_assert_int_eq(sm_fim_mine(&none, &p, NULL, NULL, &res, NULL), SM_OK);
    ck_assert_uint_eq(res.n_itemsets, 0);
}
END_TEST

START_TEST(edge_duplicates_collapse_through_the_reader)
{
    const char *text = "1 1 2\n2 1 2 2\n1\n";
    sm_basket_data *b;
    ck_assert_int_eq(sm_basket_parse_fimi(text, strlen(text), "dup.dat", &b, NULL), SM_OK);
    ck_assert_uint_eq(b->n_duplicates, 3);
    sm_fim_params p;
    sm_fim_params_init(&p);
    p.min_support = 2;
    p.support_is_count = true;
    iset_list got = {0};
    ck_assert_int_eq(sm_fim_mine(&b->csr, &p, collect, &got, NULL, NULL), SM_OK);
    qsort(got.v, got.n, sizeof *got.v, iset_cmp);
    ck_assert_uint_eq(got.n, 3); /* 1:3 2:2 12:2 */
    ck_assert_uint_eq(got.v[0].support, 3);
    ck_assert_uint_eq(got.v[1].support, 2);
    ck_assert_uint_eq(got.v[2].support, 2);
    free(got.v);
    sm_basket_data_destroy(b);
}
END_TEST

/* S2: counts past 2^32 come from 64-bit counters; past 2^64 is an error. */
START_TEST(edge_counts_beyond_32_bits)
{
    static db d;
    memset(&d, 0, sizeof d);
    d.n_items = 70;
    for (uint64_t t = 0; t < 3; t++) {
        for (uint32_t i = 0; i < 70; i++)
            d.items[t * 70 + i] = i;
        d.offsets[++d.n] = (t + 1) * 70;
    }
    sm_csr c = db_csr(&d);
    sm_fim_params p;
    sm_fim_params_init(&p);
    p.min_support = 1;
    p.support_is_count = true;
    p.max_len = 9; /* sum_{k=1..9} C(70,k) */
    sm_fim_result res;
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, NULL), SM_OK);
    sm_count want = 0, binom = 1;
    for (uint32_t k = 1; k <= 9; k++) {
        binom = binom * (70 - k + 1) / k;
        want += binom;
    }
    ck_assert_uint_gt(want, (sm_count)1 << 32);
    ck_assert_uint_eq(res.n_itemsets, want);
    p.max_len = SM_FIM_NO_MAX_LEN; /* 2^70 - 1 */
    sm_error err;
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, &err), SM_ERR_OVERFLOW);
    /* with a cap the count is answered as "more than the cap" instead */
    p.max_itemsets = 1000000;
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, &err), SM_OK);
    ck_assert(res.truncated);
    ck_assert_uint_eq(res.n_itemsets, 1000000);
}
END_TEST

START_TEST(edge_output_cap)
{
    db d;
    db_random(&d, sm_test_seed(3), 60, 12, 0.6);
    sm_csr c = db_csr(&d);
    sm_fim_params p;
    sm_fim_params_init(&p);
    p.min_support = 3;
    p.support_is_count = true;
    iset_list full = {0};
    sm_fim_result res;
    ck_assert_int_eq(sm_fim_mine(&c, &p, collect, &full, &res, NULL), SM_OK);
    ck_assert(!res.truncated);
    ck_assert_uint_gt(full.n, 100);
    for (int threads = 1; threads <= 3; threads++) {
        p.max_itemsets = 100;
        p.n_threads = threads;
        iset_list capped = {0};
        ck_assert_int_eq(sm_fim_mine(&c, &p, collect, &capped, &res, NULL), SM_OK);
        ck_assert(res.truncated);
        ck_assert_uint_eq(res.n_itemsets, 100);
        ck_assert_uint_eq(capped.n, 100);
        /* the first 100 of the canonical order */
        for (size_t i = 0; i < 100; i++)
            ck_assert_int_eq(iset_cmp(&capped.v[i], &full.v[i]), 0);
        free(capped.v);
        ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &res, NULL), SM_OK);
        ck_assert(res.truncated);
        ck_assert_uint_eq(res.n_itemsets, 100);
    }
    free(full.v);
}
END_TEST

static int stop_after_5(void *user, const sm_item_id *items, uint32_t len, sm_count support)
{
    (void)items;
    (void)len;
    (void)support;
    int *n = user;
    return ++*n >= 5 ? SM_ERR_IO : 0;
}

static int cancel_now(void *user, const char *stage, uint64_t done, uint64_t total)
{
    (void)user;
    (void)stage;
    (void)done;
    (void)total;
    return 1;
}

START_TEST(errors_from_sink_and_progress)
{
    db d;
    db_random(&d, sm_test_seed(5), 60, 12, 0.6);
    sm_csr c = db_csr(&d);
    sm_fim_params p;
    sm_fim_params_init(&p);
    p.min_support = 1;
    p.support_is_count = true;
    p.n_threads = 2;
    int n = 0;
    sm_error err;
    ck_assert_int_eq(sm_fim_mine(&c, &p, stop_after_5, &n, NULL, &err), SM_ERR_IO);
    ck_assert_int_eq(n, 5);
    /* a large job polled often enough to see the cancel */
    static db big;
    db_random(&big, 9, 500, 16, 0.9);
    c = db_csr(&big);
    p.progress.fn = cancel_now;
    ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, NULL, &err), SM_ERR_CANCELLED);
}
END_TEST

/* --- determinism: same stream whatever the thread count (F11) ----------------------------- */

typedef struct stream_hash {
    uint64_t h, n;
} stream_hash;

static int hash_sink(void *user, const sm_item_id *items, uint32_t len, sm_count support)
{
    stream_hash *s = user;
    for (uint32_t i = 0; i < len; i++)
        s->h = (s->h ^ items[i]) * 0x100000001b3ull;
    s->h = (s->h ^ support ^ ((uint64_t)len << 40)) * 0x100000001b3ull;
    s->n++;
    return 0;
}

/* --- a second reference: Eclat over sorted tid-lists, for databases too big for Apriori --- */

typedef struct big_db {
    uint64_t n;
    uint32_t n_items;
    uint64_t *offsets;
    sm_item_id *items;
    size_t cap;
} big_db;

static void big_add_row(big_db *d, const bool *in, uint32_t m)
{
    uint64_t end = d->offsets[d->n];
    for (uint32_t i = 0; i < m; i++) {
        if (!in[i])
            continue;
        if (end + 1 > d->cap) {
            d->cap = d->cap ? 2 * d->cap : 4096;
            d->items = realloc(d->items, d->cap * sizeof *d->items);
        }
        d->items[end++] = i;
    }
    d->offsets[++d->n] = end;
}

static void big_init(big_db *d, uint64_t rows, uint32_t m)
{
    memset(d, 0, sizeof *d);
    d->n_items = m;
    d->offsets = calloc(rows + 1, sizeof *d->offsets);
}

static void big_free(big_db *d)
{
    free(d->offsets);
    free(d->items);
}

/* Extends `prefix` by each of the nc candidates (ascending ids, their row
 * lists), recursing on pairwise intersections; every itemset is collected. */
static void eclat_rec(sm_item_id *prefix, uint32_t plen, const sm_item_id *ci, uint32_t **ct, const uint32_t *cn,
                      uint32_t nc, sm_count minc, uint32_t max_len, iset_list *out)
{
    for (uint32_t a = 0; a < nc; a++) {
        prefix[plen] = ci[a];
        collect(out, prefix, plen + 1, cn[a]);
        if (plen + 1 >= max_len)
            continue;
        sm_item_id *ni = malloc((nc + 1) * sizeof *ni);
        uint32_t **nt = malloc((nc + 1) * sizeof *nt);
        uint32_t *nn = malloc((nc + 1) * sizeof *nn);
        uint32_t k = 0;
        for (uint32_t b = a + 1; b < nc; b++) {
            uint32_t *x = malloc((cn[a] + 1) * sizeof *x), n = 0;
            for (uint32_t i = 0, j = 0; i < cn[a] && j < cn[b];) {
                if (ct[a][i] < ct[b][j])
                    i++;
                else if (ct[a][i] > ct[b][j])
                    j++;
                else {
                    x[n++] = ct[a][i];
                    i++;
                    j++;
                }
            }
            if (n >= minc) {
                ni[k] = ci[b];
                nt[k] = x;
                nn[k++] = n;
            } else {
                free(x);
            }
        }
        eclat_rec(prefix, plen + 1, ni, nt, nn, k, minc, max_len, out);
        for (uint32_t i = 0; i < k; i++)
            free(nt[i]);
        free(ni);
        free(nt);
        free(nn);
    }
}

static void eclat(const big_db *d, sm_count minc, uint32_t max_len, iset_list *out)
{
    uint32_t m = d->n_items;
    uint32_t **t = calloc(m, sizeof *t), *n = calloc(m, sizeof *n);
    for (uint64_t r = 0; r < d->n; r++)
        for (uint64_t k = d->offsets[r]; k < d->offsets[r + 1]; k++) {
            sm_item_id i = d->items[k];
            t[i] = realloc(t[i], (n[i] + 1) * sizeof *t[i]);
            t[i][n[i]++] = (uint32_t)r;
        }
    sm_item_id *ci = malloc(m * sizeof *ci);
    uint32_t **ct = malloc(m * sizeof *ct), *cn = malloc(m * sizeof *cn), k = 0;
    for (uint32_t i = 0; i < m; i++)
        if (n[i] >= minc) {
            ci[k] = i;
            ct[k] = t[i];
            cn[k++] = n[i];
        }
    sm_item_id prefix[16];
    eclat_rec(prefix, 0, ci, ct, cn, k, minc, max_len < 16 ? max_len : 16, out);
    for (uint32_t i = 0; i < m; i++)
        free(t[i]);
    free(t);
    free(n);
    free(ci);
    free(ct);
    free(cn);
}

/* Kind all, sink and counting, against Eclat, on 1..8 threads; the stream is
 * identical whatever the thread count. */
static void check_against_eclat(const big_db *d, sm_count minc, uint32_t max_len, const char *what)
{
    sm_csr c = {d->n, d->n_items, d->offsets, d->items};
    iset_list want = {0};
    eclat(d, minc, max_len, &want);
    stream_hash ref = {0, 0};
    const int threads[] = {1, 2, 3, 8};
    for (size_t t = 0; t < 4; t++) {
        sm_fim_params p;
        sm_fim_params_init(&p);
        p.min_support = (double)minc;
        p.support_is_count = true;
        p.max_len = max_len;
        p.n_threads = threads[t];
        if (t == 0) {
            iset_list got = {0};
            sm_fim_result res;
            sm_error err;
            int rc = sm_fim_mine(&c, &p, collect, &got, &res, &err);
            ck_assert_msg(rc == SM_OK, "%s: %s", what, err.msg);
            expect_same(&got, &want, what);
            free(got.v);
        }
        stream_hash s = {1469598103934665603ull, 0};
        ck_assert_int_eq(sm_fim_mine(&c, &p, hash_sink, &s, NULL, NULL), SM_OK);
        if (t == 0)
            ref = s;
        ck_assert_uint_eq(s.n, want.n);
        ck_assert_uint_eq(s.h, ref.h);
        sm_fim_result cnt;
        ck_assert_int_eq(sm_fim_mine(&c, &p, NULL, NULL, &cnt, NULL), SM_OK);
        ck_assert_msg(cnt.n_itemsets == want.n, "%s, %d threads: counted %llu, reference %zu", what, threads[t],
                      (unsigned long long)cnt.n_itemsets, want.n);
    }
    free(want.v);
}

/* Sparse baskets with skewed item frequencies (the shape of retail and
 * T10I4D100K), plus a repeated basket: branches with more than 64 frequent
 * items take the pair-count path, their children the mask path, several
 * levels deep. */
static void big_sparse(big_db *d, uint64_t seed, uint64_t rows)
{
    big_init(d, rows, 160);
    sm_rng rng;
    sm_rng_init(&rng, seed, 2);
    bool in[160];
    for (uint64_t r = 0; r < rows; r++) {
        memset(in, 0, sizeof in);
        if (r % 50 == 49) { /* merged transactions */
            for (uint32_t i = 0; i < 6; i++)
                in[3 * i + 1] = true;
        } else {
            uint32_t len = 2 + sm_rng_below(&rng, 14);
            for (uint32_t k = 0; k < len; k++) {
                double x = sm_rng_uniform(&rng);
                in[(uint32_t)(160 * x * x)] = true; /* low ids are frequent */
            }
        }
        big_add_row(d, in, 160);
    }
}

START_TEST(agrees_with_eclat_on_sparse_databases)
{
    for (uint64_t seed = sm_test_seed(31); seed < sm_test_seed(31) + 3; seed++) {
        big_db d;
        big_sparse(&d, seed, 3000);
        char what[96];
        snprintf(what, sizeof what, "sparse seed %llu minc 3", (unsigned long long)seed);
        check_against_eclat(&d, 3, SM_FIM_NO_MAX_LEN, what);
        snprintf(what, sizeof what, "sparse seed %llu minc 8 max_len 2", (unsigned long long)seed);
        check_against_eclat(&d, 8, 2, what);
        snprintf(what, sizeof what, "sparse seed %llu minc 2 max_len 3", (unsigned long long)seed);
        check_against_eclat(&d, 2, 3, what);
        big_free(&d);
    }
}
END_TEST

/* A dense block of 90 items in 22 baskets beside sparse ones: children with
 * more than 64 items to extend with (an ordinary list node below the pair
 * counts), bounded by max_len so that the reference stays small. */
START_TEST(agrees_with_eclat_in_wide_nodes)
{
    big_db d;
    big_init(&d, 62, 140);
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(41), 3);
    bool in[140];
    for (uint64_t r = 0; r < 62; r++) {
        for (uint32_t i = 0; i < 140; i++) {
            double p = r < 22 ? (i < 90 ? 0.7 : 0.0) : (i < 90 ? 0.02 : 0.08);
            in[i] = sm_rng_uniform(&rng) < p;
        }
        big_add_row(&d, in, 140);
    }
    check_against_eclat(&d, 2, 3, "dense block, max_len 3");
    check_against_eclat(&d, 4, 2, "dense block, max_len 2");
    big_free(&d);
}
END_TEST

START_TEST(determinism_across_threads)
{
    static db d;
    db_random(&d, sm_test_seed(21), 300, 24, 0.5);
    sm_csr c = db_csr(&d);
    for (int kind = 0; kind < 3; kind++) {
        stream_hash ref = {0, 0};
        const int threads[] = {1, 2, 3, 8};
        for (size_t t = 0; t < 4; t++) {
            sm_fim_params p;
            sm_fim_params_init(&p);
            p.min_support = 0.02;
            p.kind = (sm_fim_kind)kind;
            p.n_threads = threads[t];
            stream_hash s = {1469598103934665603ull, 0};
            sm_fim_result res;
            ck_assert_int_eq(sm_fim_mine(&c, &p, hash_sink, &s, &res, NULL), SM_OK);
            ck_assert_uint_eq(res.n_itemsets, s.n);
            if (t == 0)
                ref = s;
            ck_assert_uint_eq(s.n, ref.n);
            ck_assert_uint_eq(s.h, ref.h);
        }
    }
}
END_TEST

/* mushroom@5% writes 3.7M itemsets: branches overflow their buffers and wait. */
START_TEST(determinism_on_mushroom_stream)
{
    const char *path = sm_test_data_path("baskets/mushroom.dat");
    if (path == NULL)
        SM_TEST_SKIP("baskets/mushroom.dat not present");
    sm_basket_data *b;
    ck_assert_int_eq(sm_basket_read_fimi(path, &b, NULL), SM_OK);
    stream_hash ref = {0, 0};
    const int threads[] = {1, 2, 3, 8};
    for (size_t t = 0; t < 4; t++) {
        sm_fim_params p;
        sm_fim_params_init(&p);
        p.min_support = 0.05;
        p.n_threads = threads[t];
        stream_hash s = {1469598103934665603ull, 0};
        ck_assert_int_eq(sm_fim_mine(&b->csr, &p, hash_sink, &s, NULL, NULL), SM_OK);
        ck_assert_uint_eq(s.n, 3755511);
        if (t == 0)
            ref = s;
        ck_assert_uint_eq(s.h, ref.h);
    }
    sm_basket_data_destroy(b);
}
END_TEST

/* --- OOM loop (F5) --------------------------------------------------------------------------- */

START_TEST(oom_loop)
{
    static db d;
    db_random(&d, sm_test_seed(2), 120, 80, 0.12); /* > 64 items: list nodes too */
    big_db sparse;
    big_sparse(&sparse, sm_test_seed(2), 1000); /* pair counts at minsup 2 */
    for (int run = 0; run < 4; run++) {
        int sinked = run & 1;
        sm_csr c = db_csr(&d);
        if (run >= 2)
            c = (sm_csr){sparse.n, sparse.n_items, sparse.offsets, sparse.items};
        for (uint64_t n = 1;; n++) {
            sm_fim_params p;
            sm_fim_params_init(&p);
            p.min_support = 2;
            p.support_is_count = true;
            p.n_threads = 2;
            iset_list got = {0};
            sm_fim_result res;
            sm_error err;
            sm_alloc_fail_at(n, false);
            int rc = sm_fim_mine(&c, &p, sinked ? collect : NULL, &got, &res, &err);
            sm_alloc_fail_at(0, false);
            free(got.v);
            if (rc == SM_OK) {
                ck_assert_uint_gt(res.n_itemsets, 0);
                break;
            }
            ck_assert_int_eq(rc, SM_ERR_NOMEM);
            ck_assert_uint_lt(n, 100000);
        }
    }
    big_free(&sparse);
}
END_TEST

/* --- real data (L4) ---------------------------------------------------------------------------- */

/* Counts of non-empty frequent itemsets. The first threshold of each file is
 * the figure (Borgelt's fpgrowth/eclat); the others were computed
 * once by an independent Eclat over Python big-int tid sets (/usr/bin/python3,
 * see the commit message), which agrees with the figures. */
static const struct {
    const char *file;
    double support;
    bool count;
    sm_count itemsets;
} real_counts[] = {
    {"baskets/chess.dat", 0.6, false, 254944},
    {"baskets/chess.dat", 0.7, false, 48731},
    {"baskets/chess.dat", 0.8, false, 8227},
    {"baskets/chess.dat", 0.9, false, 622},
    {"baskets/mushroom.dat", 0.05, false, 3755511},
    {"baskets/mushroom.dat", 0.15, false, 98575},
    {"baskets/mushroom.dat", 0.2, false, 53583},
    {"baskets/mushroom.dat", 0.3, false, 2735},
    {"baskets/retail.dat", 9, true, 240852},
    {"baskets/retail.dat", 0.002, false, 2691},
    {"baskets/retail.dat", 0.005, false, 580},
    {"baskets/retail.dat", 0.01, false, 159},
    {"baskets/T10I4D100K.dat", 10, true, 411365},
    {"baskets/T10I4D100K.dat", 0.002, false, 13255},
    {"baskets/T10I4D100K.dat", 0.005, false, 1073},
    {"baskets/T10I4D100K.dat", 0.01, false, 385},
};

START_TEST(real_data_counts)
{
    int found = 0;
    for (size_t i = 0; i < SM_ARRAY_LEN(real_counts); i++) {
        const char *path = sm_test_data_path(real_counts[i].file);
        if (path == NULL)
            continue;
        found++;
        sm_basket_data *b;
        ck_assert_int_eq(sm_basket_read_fimi(path, &b, NULL), SM_OK);
        for (int threads = 1; threads <= 2; threads++) {
            sm_fim_params p;
            sm_fim_params_init(&p);
            p.min_support = real_counts[i].support;
            p.support_is_count = real_counts[i].count;
            p.n_threads = threads;
            sm_fim_result res;
            ck_assert_int_eq(sm_fim_mine(&b->csr, &p, NULL, NULL, &res, NULL), SM_OK);
            ck_assert_msg(res.n_itemsets == real_counts[i].itemsets, "%s @ %g: %llu itemsets, reference %llu",
                          real_counts[i].file, real_counts[i].support, (unsigned long long)res.n_itemsets,
                          (unsigned long long)real_counts[i].itemsets);
        }
        sm_basket_data_destroy(b);
    }
    if (found == 0)
        SM_TEST_SKIP("no FIMI data under SEGMINT_DATA");
}
END_TEST


/* --- rules ------------------------------------------------------------------------------------ */

static sm_itemsets *all_itemsets(const sm_csr *c, double support, bool count)
{
    sm_fim_params p;
    sm_fim_params_init(&p);
    p.min_support = support;
    p.support_is_count = count;
    sm_itemsets *t;
    ck_assert_int_eq(sm_itemsets_create(&t, NULL), SM_OK);
    ck_assert_int_eq(sm_fim_mine(c, &p, sm_itemsets_sink, t, NULL, NULL), SM_OK);
    return t;
}

START_TEST(rules_hand_made)
{
    db d;
    db_parse(&d, 4, "0 1 2|0 1|0 2|1 2|0|3");
    sm_csr c = db_csr(&d);
    sm_itemsets *t = all_itemsets(&c, 2, true);
    ck_assert_uint_eq(sm_itemsets_count(t), 6);
    sm_item_id ab[] = {0, 1};
    ck_assert_uint_eq(sm_itemsets_support(t, ab, 2), 2);
    sm_rules_params rp;
    sm_rules_params_init(&rp);
    rp.min_confidence = 0.5;
    sm_rules *rules;
    ck_assert_int_eq(sm_rules_generate(t, 6, &rp, &rules, NULL), SM_OK);
    /* b->a b->c c->a c->b (2/3), then a->b a->c (1/2), ties by antecedent, consequent */
    static const sm_item_id want[6][2] = {{1, 0}, {1, 2}, {2, 0}, {2, 1}, {0, 1}, {0, 2}};
    ck_assert_uint_eq(sm_rules_count(rules), 6);
    for (sm_count i = 0; i < 6; i++) {
        const sm_rule *r = sm_rules_get(rules, i);
        ck_assert_uint_eq(r->n_antecedent, 1);
        ck_assert_uint_eq(r->antecedent[0], want[i][0]);
        ck_assert_uint_eq(r->consequent[0], want[i][1]);
        ck_assert_uint_eq(r->support, 2);
    }
    const sm_rule *bc = sm_rules_get(rules, 1); /* b->c: conf 2/3, lift (2/3)/(3/6) */
    ck_assert_double_eq_tol(bc->confidence, 2.0 / 3, 1e-15);
    ck_assert_double_eq_tol(bc->lift, 4.0 / 3, 1e-15);
    ck_assert_double_eq_tol(bc->leverage, 2.0 / 6 - (3.0 / 6) * (3.0 / 6), 1e-15);
    ck_assert_double_eq_tol(bc->conviction, (1 - 3.0 / 6) / (1 - 2.0 / 3), 1e-14);
    /* filters: min lift 1.2 keeps b->c and c->b; max_rules 1 keeps the best */
    rp.min_lift = 1.2;
    sm_rules *lifted;
    ck_assert_int_eq(sm_rules_generate(t, 6, &rp, &lifted, NULL), SM_OK);
    ck_assert_uint_eq(sm_rules_count(lifted), 2);
    sm_rules_destroy(lifted);
    rp.min_lift = 0;
    rp.max_rules = 1;
    rp.sort_by = SM_RULE_BY_LIFT;
    ck_assert_int_eq(sm_rules_generate(t, 6, &rp, &lifted, NULL), SM_OK);
    ck_assert_uint_eq(sm_rules_count(lifted), 1);
    ck_assert_uint_eq(sm_rules_get(lifted, 0)->antecedent[0], 1); /* b->c: lift 4/3, support tie, conf tie, lex */
    sm_rules_destroy(lifted);

    /* recommendations from the six rules: customers {a}, {b}, {a b c}, {} */
    db cust;
    db_parse(&cust, 4, "0|1|0 1 2|");
    sm_csr cc = db_csr(&cust);
    sm_recommend_params qp;
    sm_recommend_params_init(&qp);
    sm_recommendations *recs;
    ck_assert_int_eq(sm_recommend(&cc, rules, &qp, &recs, NULL), SM_OK);
    ck_assert_uint_eq(recs->n_customers, 4);
    /* {a}: a->b and a->c both score 0.5 x 1: ties by item id */
    ck_assert_uint_eq(recs->offsets[1] - recs->offsets[0], 2);
    ck_assert_uint_eq(recs->entries[0].item, 1);
    ck_assert_uint_eq(recs->entries[0].rule, 4);
    ck_assert_double_eq_tol(recs->entries[0].score, 0.5, 1e-15);
    ck_assert_uint_eq(recs->entries[1].item, 2);
    /* {b}: c scores 2/3 x 4/3 (rule 1), a scores 2/3 x 1 (rule 0) */
    const sm_recommendation *e = recs->entries + recs->offsets[1];
    ck_assert_uint_eq(recs->offsets[2] - recs->offsets[1], 2);
    ck_assert_uint_eq(e[0].item, 2);
    ck_assert_uint_eq(e[0].rule, 1);
    ck_assert_double_eq_tol(e[0].score, 8.0 / 9, 1e-15);
    ck_assert_uint_eq(e[1].item, 0);
    ck_assert_uint_eq(recs->offsets[3], recs->offsets[2]); /* bought everything */
    ck_assert_uint_eq(recs->offsets[4], recs->offsets[3]); /* bought nothing */
    sm_recommendations_destroy(recs);
    qp.top_n = 0;
    ck_assert_int_eq(sm_recommend(&cc, rules, &qp, &recs, NULL), SM_ERR_INVALID_ARG);
    sm_rules_destroy(rules);
    sm_itemsets_destroy(t);
}
END_TEST

/* Every rule against supports counted directly; the count against a
 * brute-force enumeration (consequent sizes 1 and 2). */
START_TEST(rules_agree_with_naive)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        db d;
        db_random(&d, sm_test_seed(seed), 50, 9, 0.6);
        sm_csr c = db_csr(&d);
        sm_itemsets *t = all_itemsets(&c, 4, true);
        iset_list sets = {0};
        apriori(&d, 4, SM_FIM_ALL, SM_FIM_NO_MAX_LEN, &sets);
        for (uint32_t cs = 1; cs <= 2; cs++) {
            sm_rules_params rp;
            sm_rules_params_init(&rp);
            rp.min_confidence = 0.6;
            rp.consequent_size = cs;
            sm_rules *rules;
            ck_assert_int_eq(sm_rules_generate(t, d.n, &rp, &rules, NULL), SM_OK);
            size_t want = 0;
            for (size_t i = 0; i < sets.n; i++) {
                const iset *x = &sets.v[i];
                for (uint32_t mask = 1; mask + 1 < (1u << x->len); mask++) {
                    if ((uint32_t)__builtin_popcount(mask) > cs)
                        continue;
                    sm_item_id a[16];
                    uint32_t na = 0;
                    for (uint32_t j = 0; j < x->len; j++)
                        if (!(mask >> j & 1))
                            a[na++] = x->items[j];
                    want += (double)x->support / (double)support_of(&d, a, na) >= 0.6;
                }
            }
            ck_assert_uint_eq(sm_rules_count(rules), want);
            for (sm_count i = 0; i < sm_rules_count(rules); i++) {
                const sm_rule *r = sm_rules_get(rules, i);
                sm_item_id u[16];
                memcpy(u, r->antecedent, r->n_antecedent * sizeof *u);
                memcpy(u + r->n_antecedent, r->consequent, r->n_consequent * sizeof *u);
                ck_assert_uint_eq(r->support, support_of(&d, u, r->n_antecedent + r->n_consequent));
                ck_assert_uint_eq(r->antecedent_support, support_of(&d, r->antecedent, r->n_antecedent));
                ck_assert_uint_eq(r->consequent_support, support_of(&d, r->consequent, r->n_consequent));
                ck_assert(r->confidence >= 0.6);
                if (i > 0)
                    ck_assert(sm_rules_get(rules, i - 1)->confidence >= r->confidence);
            }
            sm_rules_destroy(rules);
        }
        free(sets.v);
        sm_itemsets_destroy(t);
    }
}
END_TEST

START_TEST(rules_invalid_parameters)
{
    sm_rules_params rp;
    sm_error err;
    sm_rules_params_init(&rp);
    rp.min_confidence = 1.5;
    ck_assert_int_eq(sm_rules_params_check(&rp, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "min_confidence");
    rp.min_confidence = -0.1;
    ck_assert_int_eq(sm_rules_params_check(&rp, &err), SM_ERR_INVALID_ARG);
    rp.min_confidence = NAN;
    ck_assert_int_eq(sm_rules_params_check(&rp, &err), SM_ERR_INVALID_ARG);
    sm_rules_params_init(&rp);
    rp.consequent_size = 0;
    ck_assert_int_eq(sm_rules_params_check(&rp, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "consequent_size");
    /* a table that lacks subsets (closed sets only) is refused */
    db d;
    db_parse(&d, 3, "0 1 2|0 1 2|0");
    sm_csr c = db_csr(&d);
    sm_fim_params p;
    sm_fim_params_init(&p);
    p.min_support = 2;
    p.support_is_count = true;
    p.kind = SM_FIM_CLOSED;
    sm_itemsets *t;
    ck_assert_int_eq(sm_itemsets_create(&t, NULL), SM_OK);
    ck_assert_int_eq(sm_fim_mine(&c, &p, sm_itemsets_sink, t, NULL, NULL), SM_OK);
    sm_rules_params_init(&rp);
    sm_rules *rules;
    ck_assert_int_eq(sm_rules_generate(t, 3, &rp, &rules, &err), SM_ERR_INVALID_STATE);
    sm_itemsets_destroy(t);
}
END_TEST

/* L3: arules' apriori on Groceries at supp 0.001, conf 0.5 gives 5668 rules
 * with this rule-length histogram (summary() in the arules examples):
 * 2: 11, 3: 1461, 4: 3211, 5: 939, 6: 46. */
START_TEST(rules_groceries_arules_figures)
{
    const char *path = sm_test_data_path("baskets/groceries.csv");
    if (path == NULL)
        SM_TEST_SKIP("baskets/groceries.csv not present");
    sm_basket_data *b;
    ck_assert_int_eq(sm_basket_read_csv(path, &b, NULL), SM_OK);
    sm_itemsets *t = all_itemsets(&b->csr, 0.001, false);
    sm_rules_params rp;
    sm_rules_params_init(&rp);
    rp.min_confidence = 0.5;
    sm_rules *rules;
    ck_assert_int_eq(sm_rules_generate(t, b->csr.n_rows, &rp, &rules, NULL), SM_OK);
    ck_assert_uint_eq(sm_rules_count(rules), 5668);
    sm_count hist[8] = {0};
    for (sm_count i = 0; i < sm_rules_count(rules); i++) {
        const sm_rule *r = sm_rules_get(rules, i);
        hist[SM_MIN(r->n_antecedent + r->n_consequent, 7)]++;
        ck_assert_uint_ge(r->support, 10); /* arules' smallest support is 0.001017 = 10/9835 */
    }
    ck_assert_uint_eq(hist[2], 11);
    ck_assert_uint_eq(hist[3], 1461);
    ck_assert_uint_eq(hist[4], 3211);
    ck_assert_uint_eq(hist[5], 939);
    ck_assert_uint_eq(hist[6], 46);
    ck_assert_uint_eq(hist[7], 0);
    /* recommendations are the same whatever the thread count */
    sm_recommendations *ref = NULL;
    const int threads[] = {1, 2, 3, 8};
    for (size_t k = 0; k < 4; k++) {
        sm_recommend_params qp;
        sm_recommend_params_init(&qp);
        qp.n_threads = threads[k];
        sm_recommendations *recs;
        ck_assert_int_eq(sm_recommend(&b->csr, rules, &qp, &recs, NULL), SM_OK);
        if (ref == NULL) {
            ref = recs;
            ck_assert_uint_gt(ref->offsets[ref->n_customers], 1000);
            /* Customers are scored in chunks (4096): a customer on either
             * side of a boundary gets what it gets alone. */
            const uint64_t rows[] = {0, 4095, 4096, 4097, 8191, 8192, b->csr.n_rows - 1};
            for (size_t q = 0; q < SM_ARRAY_LEN(rows); q++) {
                uint64_t r = rows[q], off[2] = {0, b->csr.offsets[r + 1] - b->csr.offsets[r]};
                sm_csr one = {1, b->csr.n_items, off, b->csr.items + b->csr.offsets[r]};
                sm_recommendations *alone;
                ck_assert_int_eq(sm_recommend(&one, rules, &qp, &alone, NULL), SM_OK);
                ck_assert_uint_eq(alone->offsets[1], ref->offsets[r + 1] - ref->offsets[r]);
                for (uint64_t i = 0; i < alone->offsets[1]; i++) {
                    const sm_recommendation *x = &alone->entries[i], *y = &ref->entries[ref->offsets[r] + i];
                    ck_assert_uint_eq(x->item, y->item);
                    ck_assert_uint_eq(x->rule, y->rule);
                    ck_assert(memcmp(&x->score, &y->score, sizeof(double)) == 0);
                }
                sm_recommendations_destroy(alone);
            }
            continue;
        }
        ck_assert_int_eq(memcmp(recs->offsets, ref->offsets, (ref->n_customers + 1) * sizeof *ref->offsets), 0);
        for (uint64_t i = 0; i < ref->offsets[ref->n_customers]; i++) { /* field by field: padding */
            ck_assert_uint_eq(recs->entries[i].item, ref->entries[i].item);
            ck_assert_uint_eq(recs->entries[i].rule, ref->entries[i].rule);
            ck_assert(memcmp(&recs->entries[i].score, &ref->entries[i].score, sizeof(double)) == 0);
        }
        sm_recommendations_destroy(recs);
    }
    sm_recommendations_destroy(ref);
    sm_rules_destroy(rules);
    sm_itemsets_destroy(t);
    sm_basket_data_destroy(b);
}
END_TEST

START_TEST(rules_oom_loop)
{
    db d;
    db_random(&d, sm_test_seed(8), 50, 9, 0.6);
    sm_csr c = db_csr(&d);
    for (uint64_t n = 1;; n++) {
        sm_itemsets *t = NULL;
        sm_rules *rules = NULL;
        sm_recommendations *recs = NULL;
        sm_alloc_fail_at(n, false);
        int rc = sm_itemsets_create(&t, NULL);
        sm_fim_params p;
        sm_fim_params_init(&p);
        p.min_support = 4;
        p.support_is_count = true;
        if (rc == SM_OK)
            rc = sm_fim_mine(&c, &p, sm_itemsets_sink, t, NULL, NULL);
        sm_rules_params rp;
        sm_rules_params_init(&rp);
        rp.min_confidence = 0.5;
        if (rc == SM_OK)
            rc = sm_rules_generate(t, d.n, &rp, &rules, NULL);
        sm_recommend_params qp;
        sm_recommend_params_init(&qp);
        qp.n_threads = 2;
        if (rc == SM_OK)
            rc = sm_recommend(&c, rules, &qp, &recs, NULL);
        sm_alloc_fail_at(0, false);
        sm_recommendations_destroy(recs);
        sm_rules_destroy(rules);
        sm_itemsets_destroy(t);
        if (rc == SM_OK)
            break;
        ck_assert_int_eq(rc, SM_ERR_NOMEM);
        ck_assert_uint_lt(n, 100000);
    }
}
END_TEST

static Suite *fim_suite(void)
{
    Suite *s = suite_create("fim");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 120);
    tcase_add_test(core, hand_made_database);
    tcase_add_test(core, agrees_with_apriori_on_random_databases);
    tcase_add_test(core, agrees_with_apriori_beyond_64_items);
    tcase_add_test(core, closed_and_maximal_satisfy_definitions);
    tcase_add_test(core, agrees_with_eclat_on_sparse_databases);
    tcase_add_test(core, agrees_with_eclat_in_wide_nodes);
    suite_add_tcase(s, core);
    TCase *edge = tcase_create("edge");
    tcase_add_test(edge, edge_thresholds);
    tcase_add_test(edge, edge_invalid_parameters);
    tcase_add_test(edge, edge_item_in_every_basket_and_empty_baskets);
    tcase_add_test(edge, edge_duplicates_collapse_through_the_reader);
    tcase_add_test(edge, edge_counts_beyond_32_bits);
    tcase_add_test(edge, edge_output_cap);
    suite_add_tcase(s, edge);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, errors_from_sink_and_progress);
    suite_add_tcase(s, errors);
    TCase *det = tcase_create("determinism");
    tcase_set_timeout(det, 300);
    tcase_add_test(det, determinism_across_threads);
    tcase_add_test(det, determinism_on_mushroom_stream);
    suite_add_tcase(s, det);
    TCase *oom = tcase_create("oom");
    tcase_set_timeout(oom, 300);
    tcase_add_test(oom, oom_loop);
    suite_add_tcase(s, oom);
    TCase *rules = tcase_create("rules");
    tcase_set_timeout(rules, 300);
    tcase_add_test(rules, rules_hand_made);
    tcase_add_test(rules, rules_agree_with_naive);
    tcase_add_test(rules, rules_invalid_parameters);
    tcase_add_test(rules, rules_groceries_arules_figures);
    tcase_add_test(rules, rules_oom_loop);
    suite_add_tcase(s, rules);
    TCase *regress = tcase_create("regress");
    tcase_set_timeout(regress, 300);
    tcase_add_test(regress, real_data_counts);
    suite_add_tcase(s, regress);
    return s;
}

int main(void)
{
    return sm_test_run(fim_suite());
}
