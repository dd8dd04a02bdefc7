/* SPDX-License-Identifier: MIT */
/*
 * Association rules from a table of frequent itemsets (Agrawal & Srikant's
 * rule generation, one consequent item by default as in arules and Borgelt's
 * programs), and cross-sell recommendations scored from the rules. The table
 * is a hash over the itemsets' contents so that antecedent and consequent
 * supports are one probe each. No mining and no I/O here.
 */
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"
#include "segmint/fim.h"

/* --- itemset table ---------------------------------------------------------------- */

/* Records [len, support lo, support hi, items...] in one array; slots hold
 * record offset + 1 (0 = empty). */
struct sm_itemsets {
    uint32_t *data;
    size_t used, cap;
    size_t *slots;
    size_t n_slots;
    sm_count n;
};

static uint64_t hash_set(const sm_item_id *items, uint32_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ len;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ items[i]) * 0x100000001b3ull;
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ull;
    return h ^ (h >> 27);
}

int sm_itemsets_create(sm_itemsets **out, sm_error *err)
{
    *out = sm_calloc(1, sizeof **out);
    return *out ? SM_OK : sm_error_set(err, SM_ERR_NOMEM, "out of memory");
}

void sm_itemsets_destroy(sm_itemsets *t)
{
    if (t == NULL)
        return;
    sm_free(t->data);
    sm_free(t->slots);
    sm_free(t);
}

sm_count sm_itemsets_count(const sm_itemsets *t)
{
    return t->n;
}

static size_t *find_slot(const sm_itemsets *t, const sm_item_id *items, uint32_t len)
{
    size_t h = hash_set(items, len) & (t->n_slots - 1);
    for (;;) {
        size_t s = t->slots[h];
        if (s == 0)
            return &t->slots[h];
        const uint32_t *r = t->data + s - 1;
        if (r[0] == len && memcmp(r + 3, items, len * sizeof *items) == 0)
            return &t->slots[h];
        h = (h + 1) & (t->n_slots - 1);
    }
}

static int grow_slots(sm_itemsets *t)
{
    size_t n = t->n_slots ? t->n_slots * 2 : 1024;
    size_t *slots = sm_calloc(n, sizeof *slots);
    if (slots == NULL)
        return SM_ERR_NOMEM;
    size_t *old = t->slots, old_n = t->n_slots;
    t->slots = slots;
    t->n_slots = n;
    for (size_t i = 0; i < old_n; i++)
        if (old[i] != 0) {
            const uint32_t *r = t->data + old[i] - 1;
            *find_slot(t, r + 3, r[0]) = old[i];
        }
    sm_free(old);
    return SM_OK;
}

int sm_itemsets_add(sm_itemsets *t, const sm_item_id *items, uint32_t len, sm_count support)
{
    if ((t->n + 1) * 2 > t->n_slots && grow_slots(t) != SM_OK)
        return SM_ERR_NOMEM;
    size_t need = 3 + (size_t)len;
    if (t->used + need > t->cap) {
        size_t cap = SM_MAX(t->cap * 2, t->used + need + 4096);
        uint32_t *data = sm_realloc_array(t->data, cap, sizeof *data);
        if (data == NULL)
            return SM_ERR_NOMEM;
        t->data = data;
        t->cap = cap;
    }
    size_t *slot = find_slot(t, items, len);
    if (*slot != 0) { /* already held: keep the first */
        return SM_OK;
    }
    uint32_t *r = t->data + t->used;
    r[0] = len;
    r[1] = (uint32_t)support;
    r[2] = (uint32_t)(support >> 32);
    memcpy(r + 3, items, len * sizeof *items);
    *slot = t->used + 1;
    t->used += need;
    t->n++;
    return SM_OK;
}

int sm_itemsets_sink(void *table, const sm_item_id *items, uint32_t len, sm_count support)
{
    return sm_itemsets_add(table, items, len, support);
}

sm_count sm_itemsets_support(const sm_itemsets *t, const sm_item_id *items, uint32_t len)
{
    if (t->n_slots == 0)
        return 0;
    size_t s = *find_slot(t, items, len);
    if (s == 0)
        return 0;
    const uint32_t *r = t->data + s - 1;
    return (sm_count)r[1] | (sm_count)r[2] << 32;
}

/* --- rules --------------------------------------------------------------------------- */

void sm_rules_params_init(sm_rules_params *p)
{
    memset(p, 0, sizeof *p);
    p->min_confidence = 0.8;
    p->min_lift = 0;
    p->consequent_size = 1;
    p->max_rules = 0;
    p->sort_by = SM_RULE_BY_CONFIDENCE;
}

static int field_error(sm_error *err, const char *field, const char *msg, double v)
{
    sm_error_set(err, SM_ERR_INVALID_ARG, "%s, got %g", msg, v);
    if (err)
        strncpy(err->field, field, sizeof err->field - 1);
    return SM_ERR_INVALID_ARG;
}

int sm_rules_params_check(const sm_rules_params *p, sm_error *err)
{
    if (p == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "params is NULL");
    if (!(p->min_confidence >= 0 && p->min_confidence <= 1))
        return field_error(err, "min_confidence", "min_confidence must be in [0, 1]", p->min_confidence);
    if (!(p->min_lift >= 0) || isinf(p->min_lift))
        return field_error(err, "min_lift", "min_lift must be a finite number >= 0", p->min_lift);
    if (p->consequent_size == 0)
        return field_error(err, "consequent_size", "consequent_size must be >= 1", 0);
    if ((int)p->sort_by < SM_RULE_BY_NONE || p->sort_by > SM_RULE_BY_CONVICTION)
        return field_error(err, "sort_by", "unknown sort measure", (double)p->sort_by);
    return SM_OK;
}

typedef struct rule_rec {
    sm_rule r;
    size_t off; /* antecedent then consequent items in `items` */
} rule_rec;

struct sm_rules {
    rule_rec *v;
    size_t n, cap;
    sm_item_id *items;
    size_t used, icap;
    sm_rule_measure sort_by;
};

sm_count sm_rules_count(const sm_rules *rules)
{
    return rules->n;
}

const sm_rule *sm_rules_get(const sm_rules *rules, sm_count i)
{
    return i < rules->n ? &rules->v[i].r : NULL;
}

void sm_rules_destroy(sm_rules *rules)
{
    if (rules == NULL)
        return;
    sm_free(rules->v);
    sm_free(rules->items);
    sm_free(rules);
}

static double measure(const sm_rule *r, sm_rule_measure m)
{
    switch (m) {
    case SM_RULE_BY_SUPPORT: return (double)r->support;
    case SM_RULE_BY_CONFIDENCE: return r->confidence;
    case SM_RULE_BY_LIFT: return r->lift;
    case SM_RULE_BY_LEVERAGE: return r->leverage;
    case SM_RULE_BY_CONVICTION: return r->conviction;
    case SM_RULE_BY_NONE: break;
    }
    return 0;
}

static int lex(const sm_item_id *a, uint32_t na, const sm_item_id *b, uint32_t nb)
{
    for (uint32_t i = 0; i < na && i < nb; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return (na > nb) - (na < nb);
}

/* Total order: measure, support, confidence (descending), then items. */
static int rule_cmp(const sm_rule *x, const sm_rule *y, sm_rule_measure m)
{
    double a = measure(x, m), b = measure(y, m);
    if (a != b)
        return a > b ? -1 : 1;
    if (x->support != y->support)
        return x->support > y->support ? -1 : 1;
    if (x->confidence != y->confidence)
        return x->confidence > y->confidence ? -1 : 1;
    int c = lex(x->antecedent, x->n_antecedent, y->antecedent, y->n_antecedent);
    if (c != 0)
        return c;
    return lex(x->consequent, x->n_consequent, y->consequent, y->n_consequent);
}

static void rule_sort(rule_rec *v, rule_rec *tmp, size_t n, sm_rule_measure m)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    rule_sort(v, tmp, h, m);
    rule_sort(v + h, tmp, n - h, m);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = rule_cmp(&v[j].r, &v[i].r, m) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static int push_rule(sm_rules *rs, const sm_item_id *a, uint32_t na, const sm_item_id *c, uint32_t nc,
                     const sm_rule *q)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 1024;
        rule_rec *v = sm_realloc_array(rs->v, cap, sizeof *v);
        if (v == NULL)
            return SM_ERR_NOMEM;
        rs->v = v;
        rs->cap = cap;
    }
    if (rs->used + na + nc > rs->icap) {
        size_t cap = SM_MAX(rs->icap * 2, rs->used + na + nc + 4096);
        sm_item_id *items = sm_realloc_array(rs->items, cap, sizeof *items);
        if (items == NULL)
            return SM_ERR_NOMEM;
        rs->items = items;
        rs->icap = cap;
    }
    rule_rec *r = &rs->v[rs->n++];
    r->r = *q;
    r->off = rs->used;
    memcpy(rs->items + rs->used, a, na * sizeof *a);
    memcpy(rs->items + rs->used + na, c, nc * sizeof *c);
    rs->used += na + nc;
    return SM_OK;
}

int sm_rules_generate(const sm_itemsets *t, uint64_t n_baskets, const sm_rules_params *p, sm_rules **out,
                      sm_error *err)
{
    *out = NULL;
    int rc = sm_rules_params_check(p, err);
    if (rc != SM_OK)
        return rc;
    if (t == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "itemsets is NULL");
    sm_rules *rs = sm_calloc(1, sizeof *rs);
    if (rs == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    rs->sort_by = p->sort_by;
    double n = (double)n_baskets;
    sm_item_id a[64], c[64];
    uint32_t idx[64];
    for (size_t off = 0; off < t->used; off += 3 + (size_t)t->data[off]) {
        uint32_t len = t->data[off];
        const sm_item_id *x = t->data + off + 3;
        sm_count sx = (sm_count)t->data[off + 1] | (sm_count)t->data[off + 2] << 32;
        if (len < 2)
            continue;
        if (len > 64) {
            rc = sm_error_set(err, SM_ERR_INVALID_ARG, "itemset of %u items: rules need at most 64", len);
            goto out_fail;
        }
        uint32_t kmax = SM_MIN(p->consequent_size, len - 1);
        for (uint32_t k = 1; k <= kmax; k++) {
            for (uint32_t i = 0; i < k; i++)
                idx[i] = i;
            for (;;) {
                /* consequent = x[idx[0..k)], antecedent = the rest, both ascending */
                uint32_t na = 0, nc = 0, j = 0;
                for (uint32_t i = 0; i < len; i++) {
                    if (j < k && idx[j] == i) {
                        c[nc++] = x[i];
                        j++;
                    } else {
                        a[na++] = x[i];
                    }
                }
                sm_count sa = sm_itemsets_support(t, a, na), sc = sm_itemsets_support(t, c, nc);
                if (sa == 0 || sc == 0) {
                    rc = sm_error_set(err, SM_ERR_INVALID_STATE,
                                      "a subset of a held itemset is missing: rules need every frequent "
                                      "itemset (kind all, no length limit below the rule length)");
                    goto out_fail;
                }
                sm_rule q;
                memset(&q, 0, sizeof q);
                q.n_antecedent = na;
                q.n_consequent = nc;
                q.support = sx;
                q.antecedent_support = sa;
                q.consequent_support = sc;
                q.confidence = (double)sx / (double)sa;
                q.lift = q.confidence * n / (double)sc;
                q.leverage = (double)sx / n - ((double)sa / n) * ((double)sc / n);
                q.conviction = q.confidence >= 1 ? INFINITY : (1 - (double)sc / n) / (1 - q.confidence);
                if (q.confidence >= p->min_confidence && q.lift >= p->min_lift &&
                    push_rule(rs, a, na, c, nc, &q) != SM_OK) {
                    rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory holding rules");
                    goto out_fail;
                }
                /* next combination of k indices out of len */
                int i = (int)k - 1;
                while (i >= 0 && idx[i] == len - k + (uint32_t)i)
                    i--;
                if (i < 0)
                    break;
                idx[i]++;
                for (uint32_t m = (uint32_t)i + 1; m < k; m++)
                    idx[m] = idx[m - 1] + 1;
            }
        }
    }
    for (size_t i = 0; i < rs->n; i++) {
        rs->v[i].r.antecedent = rs->items + rs->v[i].off;
        rs->v[i].r.consequent = rs->items + rs->v[i].off + rs->v[i].r.n_antecedent;
    }
    if (p->sort_by != SM_RULE_BY_NONE && rs->n > 1) {
        rule_rec *tmp = sm_alloc_array(rs->n, sizeof *tmp);
        if (tmp == NULL) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory sorting rules");
            goto out_fail;
        }
        rule_sort(rs->v, tmp, rs->n, p->sort_by);
        sm_free(tmp);
    }
    if (p->max_rules != 0 && rs->n > p->max_rules)
        rs->n = (size_t)p->max_rules;
    *out = rs;
    return SM_OK;
out_fail:
    sm_rules_destroy(rs);
    return rc;
}

/* --- recommendations --------------------------------------------------------------- */

/* Customers scored between two appends to the result, and the entries their
 * buffer may hold (24 MiB); fixed, so the result never depends on threads. */
enum { REC_CHUNK_ROWS = 4096, REC_CHUNK_ENTRIES = 1 << 20 };

void sm_recommend_params_init(sm_recommend_params *p)
{
    memset(p, 0, sizeof *p);
    p->top_n = 5;
    p->score = SM_SCORE_CONFIDENCE_LIFT;
    p->n_threads = 0;
}

void sm_recommendations_destroy(sm_recommendations *recs)
{
    if (recs == NULL)
        return;
    sm_free((void *)recs->offsets);
    sm_free((void *)recs->entries);
    sm_free(recs);
}

static double rule_score(const sm_rule *r, sm_recommend_score s)
{
    switch (s) {
    case SM_SCORE_CONFIDENCE: return r->confidence;
    case SM_SCORE_LIFT: return r->lift;
    case SM_SCORE_CONFIDENCE_LIFT: break;
    }
    return r->confidence * r->lift;
}

static int rec_cmp(const void *a, const void *b)
{
    const sm_recommendation *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

int sm_recommend(const sm_csr *customers, const sm_rules *rules, const sm_recommend_params *p,
                 sm_recommendations **out, sm_error *err)
{
    *out = NULL;
    if (customers == NULL || rules == NULL || p == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "customers, rules and params are required");
    if (p->top_n == 0) {
        sm_error_set(err, SM_ERR_INVALID_ARG, "top_n must be >= 1");
        if (err)
            strncpy(err->field, "top_n", sizeof err->field - 1);
        return SM_ERR_INVALID_ARG;
    }
    if (p->score != SM_SCORE_CONFIDENCE_LIFT && p->score != SM_SCORE_CONFIDENCE && p->score != SM_SCORE_LIFT)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "unknown score %d", (int)p->score);
    uint32_t ni = customers->n_items;
    size_t nr = rules->n;
    for (size_t i = 0; i < nr; i++) {
        const sm_rule *r = &rules->v[i].r;
        for (uint32_t j = 0; j < r->n_antecedent + r->n_consequent; j++)
            if (r->antecedent[j] >= ni) /* consequent follows antecedent in storage */
                return sm_error_set(err, SM_ERR_INVALID_ARG,
                                    "rule %zu names item %" SM_PRI_ITEM " but customers have %" PRIu32 " items",
                                    i, r->antecedent[j], ni);
    }
    uint64_t n = customers->n_rows;
    /* Customers go in chunks of at most REC_CHUNK_ROWS whose top lists are
     * appended, compacted, to the result: memory follows the recommendations
     * made, not n_customers x top_n. No customer gets more than n_items. */
    uint32_t top = SM_MIN(p->top_n, ni ? ni : 1);
    size_t chunk = SM_MAX((size_t)1, SM_MIN((size_t)REC_CHUNK_ROWS, (size_t)REC_CHUNK_ENTRIES / top));
    /* Rules indexed by their first antecedent item, in rule order. */
    size_t *istart = sm_calloc((size_t)ni + 1, sizeof *istart);
    uint32_t *ilist = sm_alloc_array(nr ? nr : 1, sizeof *ilist);
    sm_recommendation *tmp = sm_alloc_array(chunk * top, sizeof *tmp);
    uint32_t *counts = sm_calloc(chunk, sizeof *counts);
    sm_recommendations *recs = sm_calloc(1, sizeof *recs);
    uint64_t *offsets = sm_alloc_array((size_t)n + 1, sizeof *offsets);
    sm_recommendation *entries = NULL;
    size_t cap = 0;
    int rc = SM_OK;
    if (istart == NULL || ilist == NULL || tmp == NULL || counts == NULL || recs == NULL || offsets == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nr; i++)
        istart[rules->v[i].r.antecedent[0] + 1]++;
    for (uint32_t i = 0; i < ni; i++)
        istart[i + 1] += istart[i];
    {
        size_t *fill = sm_alloc_array((size_t)ni + 1, sizeof *fill);
        if (fill == NULL) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(fill, istart, ((size_t)ni + 1) * sizeof *fill);
        for (size_t i = 0; i < nr; i++)
            ilist[fill[rules->v[i].r.antecedent[0]]++] = (uint32_t)i;
        sm_free(fill);
    }
    offsets[0] = 0;
    atomic_int failed = 0;
    int threads = p->n_threads > 0 ? p->n_threads : omp_get_max_threads();
#pragma omp parallel num_threads(threads) default(none)                                            \
    shared(customers, rules, p, ni, n, istart, ilist, tmp, counts, failed, top, chunk, offsets, entries, cap)
    {
        /* stamp[i] == row + 1: bought; seen[i] == row + 1: scored (best[i], by[i]) */
        uint64_t *stamp = sm_calloc((size_t)ni + 1, sizeof *stamp);
        uint64_t *seen = sm_calloc((size_t)ni + 1, sizeof *seen);
        double *best = sm_alloc_array((size_t)ni + 1, sizeof *best);
        uint32_t *by = sm_alloc_array((size_t)ni + 1, sizeof *by);
        sm_recommendation *cand = sm_alloc_array((size_t)ni + 1, sizeof *cand);
        uint32_t *touched = sm_alloc_array((size_t)ni + 1, sizeof *touched);
        bool ok = stamp && seen && best && by && cand && touched;
        if (!ok)
            atomic_store(&failed, 1);
        /* Every thread walks the same chunks: the worksharing loop and the
         * append below are met by all of them, in the same order. */
        for (uint64_t c0 = 0; c0 < n; c0 += chunk) {
            uint64_t c1 = SM_MIN(n, c0 + chunk);
#pragma omp for schedule(dynamic, 64)
            for (uint64_t row = c0; row < c1; row++) {
                if (!ok || atomic_load_explicit(&failed, memory_order_relaxed))
                    continue;
                uint64_t tag = row + 1;
                const sm_item_id *bought = customers->items + customers->offsets[row];
                size_t nb = (size_t)(customers->offsets[row + 1] - customers->offsets[row]);
                for (size_t k = 0; k < nb; k++)
                    stamp[bought[k]] = tag;
                uint32_t nt = 0;
                for (size_t k = 0; k < nb; k++) {
                    for (size_t q = istart[bought[k]]; q < istart[bought[k] + 1]; q++) {
                        uint32_t ri = ilist[q];
                        const sm_rule *r = &rules->v[ri].r;
                        uint32_t j = 1;
                        while (j < r->n_antecedent && stamp[r->antecedent[j]] == tag)
                            j++;
                        if (j < r->n_antecedent)
                            continue;
                        double s = rule_score(r, p->score);
                        for (uint32_t c = 0; c < r->n_consequent; c++) {
                            sm_item_id it = r->consequent[c];
                            if (stamp[it] == tag)
                                continue;
                            if (seen[it] != tag) {
                                seen[it] = tag;
                                best[it] = s;
                                by[it] = ri;
                                touched[nt++] = it;
                            } else if (s > best[it] || (s == best[it] && ri < by[it])) {
                                best[it] = s;
                                by[it] = ri;
                            }
                        }
                    }
                }
                for (uint32_t i = 0; i < nt; i++)
                    cand[i] = (sm_recommendation){touched[i], best[touched[i]], by[touched[i]]};
                qsort(cand, nt, sizeof *cand, rec_cmp);
                uint32_t keep = SM_MIN(nt, top);
                memcpy(tmp + (row - c0) * top, cand, keep * sizeof *cand);
                counts[row - c0] = keep;
            }
#pragma omp single
            if (!atomic_load(&failed)) {
                for (uint64_t row = c0; row < c1; row++)
                    offsets[row + 1] = offsets[row] + counts[row - c0];
                if (offsets[c1] > cap) {
                    size_t grown = SM_MAX((size_t)offsets[c1], 2 * cap);
                    sm_recommendation *e = sm_realloc_array(entries, grown, sizeof *e);
                    if (e == NULL) {
                        atomic_store(&failed, 1);
                    } else {
                        entries = e;
                        cap = grown;
                    }
                }
                if (!atomic_load(&failed)) {
                    for (uint64_t row = c0; row < c1; row++)
                        if (counts[row - c0] != 0) /* entries may still be NULL */
                            memcpy(entries + offsets[row], tmp + (row - c0) * top, counts[row - c0] * sizeof *tmp);
                }
            }
        }
        sm_free(stamp);
        sm_free(seen);
        sm_free(best);
        sm_free(by);
        sm_free(cand);
        sm_free(touched);
    }
    if (atomic_load(&failed)) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (entries == NULL) { /* no recommendation at all: still a valid array */
        entries = sm_alloc_array(1, sizeof *entries);
        if (entries == NULL) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
            goto out;
        }
    } else if (cap > offsets[n]) { /* give back the growth slack */
        sm_recommendation *e = sm_realloc_array(entries, offsets[n], sizeof *e);
        if (e != NULL)
            entries = e;
    }
    recs->n_customers = n;
    recs->offsets = offsets;
    recs->entries = entries;
    *out = recs;
    recs = NULL;
    offsets = NULL;
    entries = NULL;
out:
    sm_free(istart);
    sm_free(ilist);
    sm_free(tmp);
    sm_free(entries);
    sm_free(counts);
    sm_free(offsets);
    sm_free(recs);
    return rc;
}
