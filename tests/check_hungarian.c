/* SPDX-License-Identifier: MIT */
/* Minimum-cost assignment against hand cases and brute force. */
#include "kernels/core.h"
#include "kernels/hungarian.h"
#include "kernels/rng.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

static double solve(size_t *column_of, const double *cost, size_t rows, size_t cols)
{
    double *d = malloc(sm_hungarian_scratch_doubles(rows, cols) * sizeof *d);
    size_t *i = malloc(sm_hungarian_scratch_indices(rows, cols) * sizeof *i);
    double total = sm_hungarian(column_of, cost, rows, cols, d, i);
    free(d);
    free(i);
    return total;
}

/* Smallest total over all injective maps rows -> cols, by recursion. */
static double brute(const double *cost, size_t rows, size_t cols, size_t row, bool *taken)
{
    if (row == rows)
        return 0.0;
    double best = INFINITY;
    for (size_t j = 0; j < cols; j++) {
        if (taken[j])
            continue;
        taken[j] = true;
        double total = cost[row * cols + j] + brute(cost, rows, cols, row + 1, taken);
        taken[j] = false;
        best = total < best ? total : best;
    }
    return best;
}

START_TEST(hand_cases)
{
    /* The classic 3x3 example: rows take columns 1, 0, 2 for 1 + 2 + 2 = 5. */
    const double cost[] = {4, 1, 3, 2, 0, 5, 3, 2, 2};
    size_t col[3];
    ck_assert_double_eq(solve(col, cost, 3, 3), 5.0);
    ck_assert_uint_eq(col[0], 1);
    ck_assert_uint_eq(col[1], 0);
    ck_assert_uint_eq(col[2], 2);
    /* rectangular: two rows, three columns */
    const double rect[] = {10, 1, 7, 1, 10, 7};
    size_t c2[2];
    ck_assert_double_eq(solve(c2, rect, 2, 3), 2.0);
    ck_assert_uint_eq(c2[0], 1);
    ck_assert_uint_eq(c2[1], 0);
    /* all equal: ties go to the lowest free column, row by row */
    const double flat[] = {1, 1, 1, 1};
    size_t c3[2];
    ck_assert_double_eq(solve(c3, flat, 2, 2), 2.0);
    ck_assert_uint_ne(c3[0], c3[1]);
}
END_TEST

START_TEST(matches_brute_force_on_random_matrices)
{
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(17), 0);
    for (int trial = 0; trial < 300; trial++) {
        size_t rows = 1 + sm_rng_below(&rng, 6), cols = rows + sm_rng_below(&rng, 3);
        double cost[8 * 8];
        for (size_t k = 0; k < rows * cols; k++)
            cost[k] = trial % 3 == 0 ? (double)sm_rng_below(&rng, 4) : 100.0 * sm_rng_uniform(&rng);
        size_t col[8];
        double total = solve(col, cost, rows, cols);
        bool taken[8] = {false};
        ck_assert_double_eq_tol(total, brute(cost, rows, cols, 0, taken), 1e-9);
        bool seen[8] = {false};
        for (size_t r = 0; r < rows; r++) {
            ck_assert_uint_lt(col[r], cols);
            ck_assert(!seen[col[r]]);
            seen[col[r]] = true;
        }
    }
}
END_TEST

static Suite *hungarian_suite(void)
{
    Suite *s = suite_create("hungarian");
    TCase *core = tcase_create("core");
    tcase_add_test(core, hand_cases);
    tcase_add_test(core, matches_brute_force_on_random_matrices);
    suite_add_tcase(s, core);
    return s;
}

int main(void)
{
    return sm_test_run(hungarian_suite());
}
