/* SPDX-License-Identifier: MIT */
/* The synthetic generator keeps its promises: same bytes for a seed whatever
 * the thread count, planted shares and rules visible in the output, every
 * row well-formed and inside the window. */
#include "datasets/gen.h"
#include "kernels/core.h"
#include "storage/csv.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct generated {
    char *tx, *truth, *rules;
    size_t tx_len, truth_len, rules_len;
    sm_gen_summary summary;
} generated;

static void generate(const sm_gen_params *p, generated *g)
{
    FILE *tx = open_memstream(&g->tx, &g->tx_len);
    FILE *truth = open_memstream(&g->truth, &g->truth_len);
    FILE *rules = open_memstream(&g->rules, &g->rules_len);
    sm_error err;
    ck_assert_int_eq(sm_gen_write(p, tx, truth, rules, NULL, &g->summary, &err), SM_OK);
    fclose(tx);
    fclose(truth);
    fclose(rules);
}

static void release(generated *g)
{
    free(g->tx);
    free(g->truth);
    free(g->rules);
}

START_TEST(same_bytes_whatever_the_thread_count)
{
    sm_gen_params p;
    sm_gen_params_init(&p);
    p.n_customers = 5000; /* several 1024-customer blocks, a partial last one */
    p.seed = sm_test_seed(7);
    generated one, many;
    p.n_threads = 1;
    generate(&p, &one);
    p.n_threads = 3;
    generate(&p, &many);
    ck_assert_uint_eq(one.tx_len, many.tx_len);
    ck_assert_int_eq(memcmp(one.tx, many.tx, one.tx_len), 0);
    ck_assert_uint_eq(one.truth_len, many.truth_len);
    ck_assert_int_eq(memcmp(one.truth, many.truth, one.truth_len), 0);
    p.seed += 1;
    generated other;
    generate(&p, &other);
    ck_assert(other.tx_len != one.tx_len || memcmp(other.tx, one.tx, one.tx_len) != 0);
    release(&one);
    release(&many);
    release(&other);
}
END_TEST

/* Every row parses, has 7 fields, a time inside the window, a positive
 * price; returns (and only returns) have C invoices and negative
 * quantities; the planted rules show up as conditional frequencies. */
START_TEST(rows_are_well_formed_and_rules_are_planted)
{
    sm_gen_params p;
    sm_gen_params_init(&p);
    p.n_customers = 20000;
    p.seed = sm_test_seed(11);
    generated g;
    generate(&p, &g);

    /* planted rules: antecedent,consequent,probability */
    uint32_t antecedent[SM_GEN_RULES], consequent[SM_GEN_RULES];
    double probability[SM_GEN_RULES];
    char *line = strchr(g.rules, '\n') + 1;
    for (int r = 0; r < SM_GEN_RULES; r++) {
        ck_assert_int_eq(sscanf(line, "SKU%" SCNu32 ",SKU%" SCNu32 ",%lf", &antecedent[r], &consequent[r], &probability[r]), 3);
        line = strchr(line, '\n') + 1;
    }

    sm_csv_reader *reader;
    sm_error err;
    ck_assert_int_eq(sm_csv_open_memory(g.tx, g.tx_len, "gen.csv", NULL, &reader, &err), SM_OK);
    sm_csv_record rec;
    ck_assert_int_eq(sm_csv_next(reader, &rec, &err), 1);
    ck_assert_str_eq(rec.fields[0], "invoice");
    uint64_t rows = 0, returns = 0;
    /* per invoice: which antecedents and consequents it holds */
    char current[32] = "";
    bool has_a[SM_GEN_RULES], has_b[SM_GEN_RULES];
    uint64_t with_a[SM_GEN_RULES] = {0}, with_both[SM_GEN_RULES] = {0};
    memset(has_a, 0, sizeof has_a);
    memset(has_b, 0, sizeof has_b);
    while (sm_csv_next(reader, &rec, &err) == 1) {
        ck_assert_int_eq(rec.problem, SM_CSV_OK);
        ck_assert_uint_eq(rec.n_fields, 7);
        rows++;
        bool is_return = rec.fields[0][0] == 'C';
        long quantity = strtol(rec.fields[5], NULL, 10);
        ck_assert(is_return ? quantity < 0 : quantity > 0);
        returns += is_return;
        ck_assert(strtod(rec.fields[6], NULL) > 0.0);
        ck_assert(strcmp(rec.fields[2], "2023-01-01T00:00:00Z") >= 0 && strcmp(rec.fields[2], "2025-01-01T00:00:00Z") < 0);
        if (is_return)
            continue;
        if (strcmp(rec.fields[0], current) != 0) {
            for (int r = 0; r < SM_GEN_RULES; r++) {
                with_a[r] += has_a[r];
                with_both[r] += has_a[r] && has_b[r];
                has_a[r] = has_b[r] = false;
            }
            snprintf(current, sizeof current, "%s", rec.fields[0]);
        }
        uint32_t item = (uint32_t)strtoul(rec.fields[3] + 3, NULL, 10);
        for (int r = 0; r < SM_GEN_RULES; r++) {
            has_a[r] |= item == antecedent[r];
            has_b[r] |= item == consequent[r];
        }
    }
    sm_csv_close(reader);
    ck_assert_uint_eq(rows, g.summary.rows);
    ck_assert_uint_eq(returns, g.summary.return_lines);
    for (int r = 0; r < SM_GEN_RULES; r++) {
        ck_assert_uint_gt(with_a[r], 100);
        double confidence = (double)with_both[r] / (double)with_a[r];
        /* The planted probability is a floor (the consequent may also be
         * drawn on its own); with >100 baskets the sampling sd is < 0.05. */
        ck_assert_msg(confidence > probability[r] - 0.15, "rule %d: confidence %.3f, planted %.3f", r, confidence,
                      probability[r]);
    }
    /* planted shares within 5 sd of 20000 Bernoulli draws */
    static const double share[SM_GEN_SEGMENTS] = {0.08, 0.20, 0.37, 0.15, 0.20};
    for (int s = 0; s < SM_GEN_SEGMENTS; s++) {
        double observed = (double)g.summary.per_segment[s] / 20000.0;
        ck_assert_double_eq_tol(observed, share[s], 5 * sqrt(share[s] * (1 - share[s]) / 20000.0));
    }
    ck_assert_uint_gt(g.summary.anomalies, 50);
    ck_assert_uint_lt(g.summary.anomalies, 160); /* 0.5% of 20000 = 100 */
    release(&g);
}
END_TEST

START_TEST(parameters_are_checked)
{
    sm_gen_params p;
    sm_gen_params_init(&p);
    sm_error err;
    p.n_customers = 0;
    ck_assert_int_eq(sm_gen_params_check(&p, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "customers=0"));
    sm_gen_params_init(&p);
    p.anomaly_rate = 0.5;
    ck_assert_int_eq(sm_gen_params_check(&p, &err), SM_ERR_INVALID_ARG);
    sm_gen_params_init(&p);
    p.days = 3;
    ck_assert_int_eq(sm_gen_params_check(&p, &err), SM_ERR_INVALID_ARG);
}
END_TEST

static Suite *gen_suite(void)
{
    Suite *s = suite_create("gen");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 120);
    tcase_add_test(core, rows_are_well_formed_and_rules_are_planted);
    tcase_add_test(core, parameters_are_checked);
    suite_add_tcase(s, core);
    TCase *determinism = tcase_create("determinism");
    tcase_add_test(determinism, same_bytes_whatever_the_thread_count);
    suite_add_tcase(s, determinism);
    return s;
}

int main(void)
{
    return sm_test_run(gen_suite());
}
