/* SPDX-License-Identifier: MIT */
/*
 * RFM grading: quintile scores with ties against a naive O(n^2) reference
 * and hand cases, the default segment table, segment files, value tiers on
 * a constructed Pareto distribution, lifecycle rules, the tx-table
 * pipeline, determinism across thread counts and the OOM loop.
 * Arrays are at least 37 long where a loop could be vectorised, so that the
 * vector body and the remainder are both checked.
 */
#include "engine/rfm_features.h"
#include "engine/rfm_segments.h"
#include "kernels/core.h"
#include "kernels/rng.h"
#include "segmint/rfm.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rule in rfm.h, written the slow way: 1 + floor(5 B / n), B = number of
 * strictly worse values. */
static uint8_t naive_score(const double *v, size_t n, size_t i, bool higher_better)
{
    size_t worse = 0;
    for (size_t j = 0; j < n; j++)
        worse += higher_better ? v[j] < v[i] : v[j] > v[i];
    return (uint8_t)(1 + 5 * worse / n);
}

START_TEST(quintiles_match_naive_reference)
{
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(7), 0);
    const size_t sizes[] = {1, 2, 5, 7, 37, 1003};
    for (size_t s = 0; s < SM_ARRAY_LEN(sizes); s++) {
        size_t n = sizes[s];
        double *v = malloc(n * sizeof *v);
        uint8_t *hi = malloc(n), *lo = malloc(n);
        for (size_t i = 0; i < n; i++)
            v[i] = (double)sm_rng_below(&rng, 1 + n / 3); /* many ties */
        ck_assert_int_eq(sm_rfm_quintiles(hi, v, n, SM_RFM_HIGHER_IS_BETTER, 0, NULL), SM_OK);
        ck_assert_int_eq(sm_rfm_quintiles(lo, v, n, SM_RFM_LOWER_IS_BETTER, 0, NULL), SM_OK);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_eq(hi[i], naive_score(v, n, i, true));
            ck_assert_uint_eq(lo[i], naive_score(v, n, i, false));
            for (size_t j = 0; j < n; j++)
                if (v[i] == v[j])
                    ck_assert_uint_eq(hi[i], hi[j]); /* equal values, equal scores */
        }
        free(v);
        free(hi);
        free(lo);
    }
}
END_TEST

START_TEST(quintiles_hand_cases)
{
    /* distinct: two customers per score */
    double d[10] = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
    uint8_t s[10];
    ck_assert_int_eq(sm_rfm_quintiles(s, d, 10, SM_RFM_HIGHER_IS_BETTER, 0, NULL), SM_OK);
    const uint8_t want[10] = {5, 1, 5, 1, 4, 2, 4, 2, 3, 3};
    ck_assert(memcmp(s, want, 10) == 0);
    /* recency: fewer days since the last purchase is better */
    ck_assert_int_eq(sm_rfm_quintiles(s, d, 10, SM_RFM_LOWER_IS_BETTER, 0, NULL), SM_OK);
    const uint8_t want_lo[10] = {1, 5, 1, 5, 2, 4, 2, 4, 3, 3};
    ck_assert(memcmp(s, want_lo, 10) == 0);
    /* ties: five 1s share the lowest score; 2 has 5 worse -> 1+floor(25/10)=3 */
    double t[10] = {1, 1, 1, 1, 1, 2, 3, 4, 5, 6};
    ck_assert_int_eq(sm_rfm_quintiles(s, t, 10, SM_RFM_HIGHER_IS_BETTER, 0, NULL), SM_OK);
    const uint8_t want_t[10] = {1, 1, 1, 1, 1, 3, 4, 4, 5, 5};
    ck_assert(memcmp(s, want_t, 10) == 0);
    /* all equal: everyone gets 1 (nobody is worse) */
    double e[4] = {3, 3, 3, 3};
    ck_assert_int_eq(sm_rfm_quintiles(s, e, 4, SM_RFM_HIGHER_IS_BETTER, 0, NULL), SM_OK);
    ck_assert(s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1);
    ck_assert_uint_eq(sm_rfm_code(5, 3, 1), 531);
    /* errors name the customer */
    sm_error err;
    d[3] = NAN;
    ck_assert_int_eq(sm_rfm_quintiles(s, d, 10, SM_RFM_HIGHER_IS_BETTER, 0, &err),
                     SM_ERR_INVALID_ARG);
    ck_assert_int_eq(err.line, 4);
    ck_assert_int_eq(sm_rfm_quintiles(s, d, 0, SM_RFM_HIGHER_IS_BETTER, 0, &err),
                     SM_ERR_INVALID_ARG);
}
END_TEST

static const char *segment_of(uint8_t r, uint8_t f, uint8_t m)
{
    const sm_rfm_segment_table *t = sm_rfm_default_segments();
    uint16_t seg;
    ck_assert_int_eq(sm_rfm_assign_segments(&seg, &r, &f, &m, 1, t, 0, NULL), SM_OK);
    return seg < t->n_rules ? t->rules[seg].name : SM_RFM_OTHER;
}

START_TEST(default_segments_cover_the_grid)
{
    const sm_rfm_segment_table *t = sm_rfm_default_segments();
    ck_assert_int_eq(sm_rfm_segment_table_check(t, NULL), SM_OK);
    ck_assert_uint_eq(t->n_rules, 11);
    /* every triple has a segment, and all 11 names occur */
    uint8_t r[125], f[125], m[125];
    uint16_t seg[125];
    for (int c = 0; c < 125; c++) {
        r[c] = (uint8_t)(c / 25 + 1);
        f[c] = (uint8_t)(c / 5 % 5 + 1);
        m[c] = (uint8_t)(c % 5 + 1);
    }
    ck_assert_int_eq(sm_rfm_assign_segments(seg, r, f, m, 125, t, 0, NULL), SM_OK);
    int used[12] = {0};
    for (int c = 0; c < 125; c++) {
        ck_assert_uint_lt(seg[c], t->n_rules);
        used[seg[c]]++;
    }
    for (size_t k = 0; k < t->n_rules; k++)
        ck_assert_msg(used[k] > 0, "segment %s never used", t->rules[k].name);
    /* the grid of rfm.c's comment */
    ck_assert_str_eq(segment_of(5, 5, 1), "Champions");
    ck_assert_str_eq(segment_of(5, 4, 5), "Champions");
    ck_assert_str_eq(segment_of(4, 5, 3), "Loyal");
    ck_assert_str_eq(segment_of(3, 4, 1), "Loyal");
    ck_assert_str_eq(segment_of(5, 2, 2), "Potential loyalist");
    ck_assert_str_eq(segment_of(4, 3, 5), "Potential loyalist");
    ck_assert_str_eq(segment_of(5, 1, 1), "New");
    ck_assert_str_eq(segment_of(4, 1, 4), "Promising");
    ck_assert_str_eq(segment_of(3, 3, 3), "Need attention");
    ck_assert_str_eq(segment_of(3, 2, 5), "About to sleep");
    ck_assert_str_eq(segment_of(2, 3, 3), "At risk");
    ck_assert_str_eq(segment_of(1, 4, 1), "At risk");
    ck_assert_str_eq(segment_of(1, 5, 5), "Cannot lose them");
    ck_assert_str_eq(segment_of(2, 5, 1), "Cannot lose them");
    ck_assert_str_eq(segment_of(2, 2, 2), "Hibernating");
    ck_assert_str_eq(segment_of(1, 2, 4), "Hibernating");
    ck_assert_str_eq(segment_of(1, 1, 1), "Lost");
    ck_assert_str_eq(segment_of(1, 2, 2), "Lost");
}
END_TEST

START_TEST(custom_segments_first_match_and_other)
{
    const sm_rfm_segment_rule rules[] = {{"Top", 5, 5, 5, 5, 5, 5}, {"Recent", 4, 5, 1, 5, 1, 5},
                                         {"Top twice", 5, 5, 5, 5, 5, 5}};
    sm_rfm_segment_table t = {3, rules};
    enum { N = 40 };
    uint8_t r[N], f[N], m[N];
    uint16_t seg[N];
    for (int i = 0; i < N; i++) {
        r[i] = (uint8_t)(i % 5 + 1);
        f[i] = 5;
        m[i] = 5;
    }
    ck_assert_int_eq(sm_rfm_assign_segments(seg, r, f, m, N, &t, 3, NULL), SM_OK);
    for (int i = 0; i < N; i++) {
        uint16_t want = r[i] == 5 ? 0 : r[i] == 4 ? 1 : 3; /* 3 = Other */
        ck_assert_uint_eq(seg[i], want);
    }
    sm_rfm_segment_rule bad[] = {{"Bad", 3, 2, 1, 5, 1, 5}};
    sm_rfm_segment_table tb = {1, bad};
    sm_error err;
    ck_assert_int_eq(sm_rfm_segment_table_check(&tb, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "r");
    r[0] = 6;
    ck_assert_int_eq(sm_rfm_assign_segments(seg, r, f, m, N, &t, 0, &err), SM_ERR_INVALID_ARG);
    ck_assert_int_eq(err.line, 1);
}
END_TEST

START_TEST(segment_files_round_trip_and_errors)
{
    char dir[4096], path[4200], text[512];
    sm_test_tmpdir(dir, sizeof dir, "rfm");
    snprintf(path, sizeof path, "%s/seg.csv", dir);
    FILE *f = fopen(path, "w");
    sm_rfm_segments_write(f, sm_rfm_default_segments());
    fclose(f);
    sm_rfm_segment_file file;
    sm_error err;
    ck_assert_int_eq(sm_rfm_segments_read(path, &file, &err), SM_OK);
    const sm_rfm_segment_table *def = sm_rfm_default_segments();
    ck_assert_uint_eq(file.table.n_rules, def->n_rules);
    ck_assert(memcmp(file.table.rules, def->rules, def->n_rules * sizeof *def->rules) == 0);
    sm_rfm_segments_free(&file);

    /* any column order, comments, a quoted name with a comma */
    sm_test_write_file(path, "# mine\nr_min,r_max,segment,f_min,f_max,m_min,m_max\n"
                             "4,5,\"Best, recent\",1,5,1,5\n# tail\n");
    ck_assert_int_eq(sm_rfm_segments_read(path, &file, &err), SM_OK);
    ck_assert_uint_eq(file.table.n_rules, 1);
    ck_assert_str_eq(file.table.rules[0].name, "Best, recent");
    ck_assert(file.table.rules[0].r_min == 4 && file.table.rules[0].m_max == 5);
    sm_rfm_segments_free(&file);

    sm_test_write_file(path, "segment,r_min,r_max,f_min,f_max,m_min,m_max\nA,1,5,1,6,1,5\n");
    ck_assert_int_eq(sm_rfm_segments_read(path, &file, &err), SM_ERR_INVALID_ARG);
    sm_error_format(&err, text, sizeof text);
    ck_assert_msg(strstr(text, "seg.csv:2:5: field \"f_max\": score 6 is outside 1..5") != NULL,
                  "%s", text);
    sm_test_write_file(path, "segment,r_min,r_max,f_min,f_max,m_min,m_max\nA,4,2,1,5,1,5\n");
    ck_assert_int_eq(sm_rfm_segments_read(path, &file, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "r_min");
    sm_test_write_file(path, "segment,r_min,r_max,f_min,f_max,m_min,m_max\nA,x,2,1,5,1,5\n");
    ck_assert_int_eq(sm_rfm_segments_read(path, &file, &err), SM_ERR_PARSE);
    ck_assert_int_eq(err.column, 2);
    sm_test_write_file(path, "segment,r_min,r_max,f_min,f_max,m_min\nA,1,2,1,5,1\n");
    ck_assert_int_eq(sm_rfm_segments_read(path, &file, &err), SM_ERR_PARSE);
    ck_assert_str_eq(err.field, "m_max");
    sm_test_write_file(path, "segment,r_min,r_max,f_min,f_max,m_min,m_max\n");
    ck_assert_int_eq(sm_rfm_segments_read(path, &file, &err), SM_ERR_INVALID_ARG);
    sm_test_write_file(path, "segment,r_min,r_max,f_min,f_max,m_min,m_max\n"
                             "0123456789012345678901234567890123456789012345678,1,5,1,5,1,5\n");
    ck_assert_int_eq(sm_rfm_segments_read(path, &file, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "segment");
    sm_test_rmtree(dir);
}
END_TEST

/* A discrete Pareto where the 80/20 rule holds at every scale: 1 customer
 * with 256, 4 with 16, 20 with 4, 100 with 1 (n = 125, total 500). The top
 * 25 customers (20%) hold 400 (80%), the top 5 (4%) hold 320 (64%). */
static void pareto_values(double *v)
{
    int k = 0;
    v[k++] = 256;
    for (int i = 0; i < 4; i++)
        v[k++] = 16;
    for (int i = 0; i < 20; i++)
        v[k++] = 4;
    for (int i = 0; i < 100; i++)
        v[k++] = 1;
    /* shuffle deterministically so that ranking, not input order, decides */
    for (int i = 124; i > 0; i--) {
        int j = (i * 37 + 11) % (i + 1);
        double t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

START_TEST(tiers_cut_a_constructed_pareto)
{
    double v[125], curve[5];
    uint8_t tier[125];
    pareto_values(v);
    sm_tier_params p;
    sm_tier_params_init(&p);
    sm_tier_summary s;
    ck_assert_int_eq(sm_value_tiers(tier, curve, 5, &s, v, 125, &p, 0, NULL), SM_OK);
    /* default cuts: the 25 customers making 80% are the first 20%: all key */
    ck_assert_uint_eq(s.count[SM_TIER_KEY], 25);
    ck_assert_uint_eq(s.count[SM_TIER_ORDINARY], 0);
    ck_assert_uint_eq(s.count[SM_TIER_SMALL], 100);
    ck_assert_double_eq_tol(s.total_value, 500, 1e-12);
    ck_assert_double_eq_tol(s.top20_value_share, 0.8, 1e-15);
    ck_assert_double_eq_tol(s.customers_for_80, 0.2, 1e-15);
    for (int i = 0; i < 125; i++)
        ck_assert_uint_eq(tier[i], v[i] >= 4 ? SM_TIER_KEY : SM_TIER_SMALL);
    /* curve at customer shares 0, 25%, 50%, 75%, 100%: top 0, 31 (round
     * 31.25), 63 (round 62.5 away from 0), 94, 125 customers:
     * 0, (400+6)/500, (400+38)/500, (400+69)/500, 1 */
    const double want[5] = {0.0, 0.812, 0.876, 0.938, 1.0};
    for (int j = 0; j < 5; j++)
        ck_assert_double_eq_tol(curve[j], want[j], 1e-15);
    /* key = the first 4% (5 customers): 256 and the 16s; ordinary = the 4s */
    p.key_customer_share = 0.04;
    ck_assert_int_eq(sm_value_tiers(tier, NULL, 0, &s, v, 125, &p, 0, NULL), SM_OK);
    ck_assert_uint_eq(s.count[SM_TIER_KEY], 5);
    ck_assert_uint_eq(s.count[SM_TIER_ORDINARY], 20);
    ck_assert_double_eq_tol(s.value[SM_TIER_KEY], 320, 1e-12);
    ck_assert_double_eq_tol(s.value[SM_TIER_ORDINARY], 80, 1e-12);
    for (int i = 0; i < 125; i++)
        ck_assert_uint_eq(tier[i], v[i] >= 16 ? SM_TIER_KEY
                                   : v[i] == 4 ? SM_TIER_ORDINARY
                                               : SM_TIER_SMALL);
    /* a 64% value share keeps only the top 5 */
    p.value_share = 0.64;
    p.key_customer_share = 0.01; /* floor(1.25) = 1 key customer */
    ck_assert_int_eq(sm_value_tiers(tier, NULL, 0, &s, v, 125, &p, 0, NULL), SM_OK);
    ck_assert_uint_eq(s.count[SM_TIER_KEY], 1);
    ck_assert_uint_eq(s.count[SM_TIER_ORDINARY], 4);
}
END_TEST

START_TEST(tiers_ties_negatives_and_errors)
{
    /* ties straddling the key cut: floor(0.2 * 10) = 2 key slots, but the
     * three 50s tie, so all three are key */
    double v[10] = {100, 50, 50, 50, 10, 5, 0, -20, 3, 2};
    uint8_t tier[10];
    sm_tier_params p;
    sm_tier_params_init(&p);
    sm_tier_summary s;
    ck_assert_int_eq(sm_value_tiers(tier, NULL, 0, &s, v, 10, &p, 0, NULL), SM_OK);
    ck_assert(tier[0] == SM_TIER_KEY && tier[1] == SM_TIER_KEY && tier[2] == SM_TIER_KEY &&
              tier[3] == SM_TIER_KEY);
    /* total positive 270; 80% = 216: 100+50+50 = 200 < 216, so the third 50
     * crosses it and is in; 10 is not */
    ck_assert_uint_eq(tier[4], SM_TIER_SMALL);
    ck_assert_uint_eq(tier[6], SM_TIER_SMALL); /* 0 and negatives are always small */
    ck_assert_uint_eq(tier[7], SM_TIER_SMALL);
    ck_assert_double_eq_tol(s.total_value, 270, 1e-12);
    /* nothing positive: all small, shares 0 */
    double z[3] = {0, -1, 0};
    double curve[3];
    ck_assert_int_eq(sm_value_tiers(tier, curve, 3, &s, z, 3, &p, 0, NULL), SM_OK);
    ck_assert_uint_eq(s.count[SM_TIER_SMALL], 3);
    ck_assert(curve[2] == 0.0);
    /* one customer */
    double one = 5.0;
    ck_assert_int_eq(sm_value_tiers(tier, NULL, 0, &s, &one, 1, &p, 0, NULL), SM_OK);
    ck_assert_uint_eq(tier[0], SM_TIER_ORDINARY); /* floor(0.2) = 0 key slots */
    sm_error err;
    p.value_share = 0.0;
    ck_assert_int_eq(sm_value_tiers(tier, NULL, 0, &s, v, 10, &p, 0, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "value_share");
    sm_tier_params_init(&p);
    ck_assert_int_eq(sm_value_tiers(tier, curve, 1, &s, v, 10, &p, 0, &err), SM_ERR_INVALID_ARG);
    v[9] = INFINITY;
    ck_assert_int_eq(sm_value_tiers(tier, NULL, 0, &s, v, 10, &p, 0, &err), SM_ERR_INVALID_ARG);
    ck_assert_int_eq(err.line, 10);
}
END_TEST

/* One hand case per rule, each repeated so that n > 37. Days; as_of = 1000. */
START_TEST(lifecycle_rules)
{
    enum { CASES = 9, REPS = 5, N = CASES * REPS };
    const double first_c[CASES] = {0, 100, 950, 800, 500, 500, 800, 700, 600};
    const double last_c[CASES] = {0, 600, 990, 800, 700, 950, 990, 990, 980};
    const uint32_t count_c[CASES] = {0, 3, 2, 1, 3, 6, 3, 2, 10};
    const double alive_c[CASES] = {1, 1, 1, 1, 1, 1, 1, 1, 0.2};
    /* 0 potential; 1 churned (gap 400 > 365); 2 new (first 50 days ago);
     * 3 one purchase 200 days ago, not churned: at risk; 4 gap 300 > 2 x mean
     * IPT 100: at risk; 5 gap 50 <= 2 x 90, 6 purchases: loyal; 6 gap 10,
     * 3 purchases: repeat; 7 gap 10, 2 purchases: repeat; 8 P(alive) 0.2 <
     * 0.5: churned */
    const uint8_t want_c[CASES] = {SM_STAGE_POTENTIAL, SM_STAGE_CHURNED, SM_STAGE_NEW,
                                   SM_STAGE_AT_RISK,   SM_STAGE_AT_RISK, SM_STAGE_LOYAL,
                                   SM_STAGE_REPEAT,    SM_STAGE_REPEAT,  SM_STAGE_CHURNED};
    double first[N], last[N], alive[N];
    uint32_t count[N];
    uint8_t stage[N];
    for (int i = 0; i < N; i++) {
        first[i] = first_c[i % CASES];
        last[i] = last_c[i % CASES];
        count[i] = count_c[i % CASES];
        alive[i] = alive_c[i % CASES];
    }
    sm_lifecycle_params p;
    sm_lifecycle_params_init(&p);
    p.as_of = 1000;
    ck_assert_int_eq(sm_lifecycle_stages(stage, first, last, count, alive, N, &p, 0, NULL), SM_OK);
    for (int i = 0; i < N; i++)
        ck_assert_msg(stage[i] == want_c[i % CASES], "case %d: %s, want %s", i % CASES,
                      sm_lifecycle_stage_name(stage[i]), sm_lifecycle_stage_name(want_c[i % CASES]));
    /* without P(alive), case 8 (gap 20 vs 2 x 42.2) is loyal */
    ck_assert_int_eq(sm_lifecycle_stages(stage, first, last, count, NULL, N, &p, 0, NULL), SM_OK);
    ck_assert_uint_eq(stage[8], SM_STAGE_LOYAL);
    ck_assert_str_eq(sm_lifecycle_stage_name(SM_STAGE_AT_RISK), "at_risk");
    ck_assert_str_eq(sm_lifecycle_stage_name(42), "unknown");
    sm_error err;
    last[3] = 1200; /* after as_of */
    ck_assert_int_eq(sm_lifecycle_stages(stage, first, last, count, NULL, N, &p, 0, &err),
                     SM_ERR_INVALID_ARG);
    ck_assert_int_eq(err.line, 4);
    p.at_risk_factor = 0.5;
    ck_assert_int_eq(sm_lifecycle_stages(stage, first, last, count, NULL, N, &p, 0, &err),
                     SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "at_risk_factor");
}
END_TEST

/* A store-like tx table: 3 customers, one without a purchase before as_of. */
START_TEST(pipeline_from_tx_table)
{
    const int64_t day = 86400, t0 = 18000 * day; /* 2019-04-14 */
    /* customer 0: baskets 0 (2 rows) and 1, then a return; customer 1: one
     * purchase; customer 2: only after as_of */
    uint64_t offsets[] = {0, 4, 5, 6};
    int64_t time[] = {t0, t0 + 60, t0 + 10 * day, t0 + 12 * day, t0 + 5 * day, t0 + 90 * day};
    int64_t amount[] = {1000, 500, 2000, -700, 900, 100};
    int32_t qty[] = {1, 1, 2, -1, 1, 1};
    sm_item_id item[] = {0, 1, 0, 0, 2, 2};
    sm_basket_id basket[] = {0, 0, 1, 2, 3, 4};
    uint16_t flags[] = {0, 0, 0, SM_TX_RETURN, 0, 0};
    sm_tx_table tx = {.n_customers = 3, .n_rows = 6, .money_scale = 100,
                      .customer_offsets = offsets, .time = time, .amount = amount,
                      .quantity = qty, .item = item, .basket = basket, .flags = flags};
    sm_tier_params tp;
    sm_tier_params_init(&tp);
    sm_lifecycle_params lp;
    sm_lifecycle_params_init(&lp);
    sm_rfm_result r;
    sm_error err;
    sm_customer_stats stats;
    ck_assert_int_eq(sm_customer_stats_compute(&tx, sm_end_of_day(t0 + 20 * day + 3600), 1, &stats, &err), SM_OK);
    int rc = sm_rfm_compute(&stats, sm_rfm_default_segments(), &tp, &lp, NULL, NULL, 0, &r, &err);
    ck_assert_msg(rc == SM_OK, "%s", err.msg);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_uint_eq(r.n_no_purchase, 1);
    ck_assert_uint_eq(r.customer[0], 0);
    ck_assert_uint_eq(r.frequency[0], 2);                 /* baskets 0 and 1 */
    ck_assert_double_eq_tol(r.monetary[0], 28.0, 1e-12);  /* 10 + 5 + 20 - 7 */
    ck_assert(r.recency_days[0] == 10.0); /* last purchase day 10, as of 20 */
    ck_assert(r.recency_days[1] == 15.0);
    /* customer 0 is better on all three; with n = 2 one customer is worse,
     * so its scores are 1 + floor(5 * 1 / 2) = 3 */
    ck_assert_uint_eq(r.code[0], 333);
    ck_assert_uint_eq(r.code[1], 111);
    ck_assert_str_eq(sm_rfm_default_segments()->rules[r.segment[0]].name, "Need attention");
    ck_assert_str_eq(sm_rfm_default_segments()->rules[r.segment[1]].name, "Lost");
    ck_assert_uint_eq(r.stage[0], SM_STAGE_NEW);
    ck_assert_uint_eq(r.stage[1], SM_STAGE_NEW);
    /* floor(0.2 * 2) = 0 key slots; 28 of 37 is below 80%, so the second
     * customer is still needed to reach it: both ordinary */
    ck_assert_uint_eq(r.tier[0], SM_TIER_ORDINARY);
    ck_assert_uint_eq(r.tier[1], SM_TIER_ORDINARY);
    sm_rfm_result_free(&r);
    /* CLV replaces monetary for the tiers */
    double clv[3] = {1.0, 50.0, 7.0};
    ck_assert_int_eq(sm_rfm_compute(&stats, sm_rfm_default_segments(), &tp, &lp, clv, NULL, 0, &r, &err), SM_OK);
    ck_assert_uint_eq(r.tier[1], SM_TIER_ORDINARY);
    ck_assert_uint_eq(r.tier[0], SM_TIER_SMALL);
    sm_rfm_result_free(&r);
    sm_customer_stats_free(&stats);
    ck_assert_int_eq(sm_customer_stats_compute(&tx, sm_end_of_day(t0 - day), 1, &stats, &err), SM_OK);
    ck_assert_int_eq(sm_rfm_compute(&stats, sm_rfm_default_segments(), &tp, &lp, NULL, NULL, 0, &r, &err),
                     SM_ERR_INVALID_ARG);
    sm_customer_stats_free(&stats);
}
END_TEST

START_TEST(results_do_not_depend_on_thread_count)
{
    enum { N = 20000 };
    double *v = malloc(N * sizeof *v), *w = malloc(N * sizeof *w);
    double *first = malloc(N * sizeof *first), *last = malloc(N * sizeof *last);
    uint32_t *count = malloc(N * sizeof *count);
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(9), 0);
    for (int i = 0; i < N; i++) {
        v[i] = floor(sm_rng_uniform(&rng) * 500.0);
        w[i] = exp(3.0 * sm_rng_normal(&rng));
        first[i] = floor(sm_rng_uniform(&rng) * 900.0);
        last[i] = first[i] + floor(sm_rng_uniform(&rng) * (1000.0 - first[i]));
        count[i] = (uint32_t)sm_rng_below(&rng, 12);
    }
    const int threads[] = {1, 2, 3, 8};
    uint8_t *out[4];
    for (int k = 0; k < 4; k++) {
        out[k] = malloc(6 * N);
        uint8_t *s = out[k];
        ck_assert_int_eq(sm_rfm_quintiles(s, v, N, SM_RFM_LOWER_IS_BETTER, threads[k], NULL), SM_OK);
        ck_assert_int_eq(sm_rfm_quintiles(s + N, w, N, SM_RFM_HIGHER_IS_BETTER, threads[k], NULL),
                         SM_OK);
        uint16_t *seg = malloc(N * sizeof *seg);
        ck_assert_int_eq(sm_rfm_assign_segments(seg, s, s + N, s + N, N, sm_rfm_default_segments(),
                                                threads[k], NULL),
                         SM_OK);
        for (int i = 0; i < N; i++)
            s[2 * N + i] = (uint8_t)seg[i];
        free(seg);
        sm_tier_params tp;
        sm_tier_params_init(&tp);
        ck_assert_int_eq(sm_value_tiers(s + 3 * N, NULL, 0, NULL, w, N, &tp, threads[k], NULL),
                         SM_OK);
        sm_lifecycle_params lp;
        sm_lifecycle_params_init(&lp);
        lp.as_of = 1000;
        ck_assert_int_eq(sm_lifecycle_stages(s + 4 * N, first, last, count, NULL, N, &lp,
                                             threads[k], NULL),
                         SM_OK);
    }
    for (int k = 1; k < 4; k++)
        ck_assert_msg(memcmp(out[0], out[k], 5 * N) == 0, "differs at %d threads", threads[k]);
    for (int k = 0; k < 4; k++)
        free(out[k]);
    free(v);
    free(w);
    free(first);
    free(last);
    free(count);
}
END_TEST

typedef struct oom_ctx {
    double *v;
    size_t n;
} oom_ctx;

static int oom_quintiles(oom_ctx *c)
{
    uint8_t s[64];
    return sm_rfm_quintiles(s, c->v, c->n, SM_RFM_HIGHER_IS_BETTER, 0, NULL);
}

static int oom_tiers(oom_ctx *c)
{
    uint8_t t[64];
    double curve[5];
    sm_tier_params p;
    sm_tier_params_init(&p);
    return sm_value_tiers(t, curve, 5, NULL, c->v, c->n, &p, 0, NULL);
}

static int oom_segments_read(const char *path)
{
    sm_rfm_segment_file f;
    int rc = sm_rfm_segments_read(path, &f, NULL);
    sm_rfm_segments_free(&f);
    return rc;
}

START_TEST(oom_loop_every_allocation)
{
    double v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (i * 17) % 23;
    oom_ctx c = {v, 64};
    char dir[4096], path[4200];
    sm_test_tmpdir(dir, sizeof dir, "rfm-oom");
    snprintf(path, sizeof path, "%s/seg.csv", dir);
    FILE *f = fopen(path, "w");
    sm_rfm_segments_write(f, sm_rfm_default_segments());
    fclose(f);
    for (int which = 0; which < 3; which++) {
        for (int persistent = 0; persistent < 2; persistent++) {
            for (uint64_t nth = 1;; nth++) {
                ck_assert_uint_lt(nth, 1000);
                sm_alloc_fail_at(nth, persistent != 0);
                int rc = which == 0   ? oom_quintiles(&c)
                         : which == 1 ? oom_tiers(&c)
                                      : oom_segments_read(path);
                sm_alloc_fail_at(0, false);
                if (rc == SM_OK)
                    break;
                ck_assert_int_eq(rc, SM_ERR_NOMEM);
            }
        }
    }
    sm_test_rmtree(dir);
}
END_TEST

static Suite *rfm_suite(void)
{
    Suite *s = suite_create("rfm");
    TCase *core = tcase_create("core");
    tcase_add_test(core, quintiles_match_naive_reference);
    tcase_add_test(core, quintiles_hand_cases);
    tcase_add_test(core, default_segments_cover_the_grid);
    tcase_add_test(core, custom_segments_first_match_and_other);
    tcase_add_test(core, segment_files_round_trip_and_errors);
    tcase_add_test(core, tiers_cut_a_constructed_pareto);
    tcase_add_test(core, tiers_ties_negatives_and_errors);
    tcase_add_test(core, lifecycle_rules);
    tcase_add_test(core, pipeline_from_tx_table);
    suite_add_tcase(s, core);
    TCase *det = tcase_create("determinism");
    tcase_add_test(det, results_do_not_depend_on_thread_count);
    suite_add_tcase(s, det);
    TCase *oom = tcase_create("oom");
    tcase_add_test(oom, oom_loop_every_allocation);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    return sm_test_run(rfm_suite());
}
