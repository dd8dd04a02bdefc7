/* SPDX-License-Identifier: MIT */
/* Error records, the checked allocator and the Philox generator. */
#include "kernels/core.h"
#include "kernels/rng.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(error_format_names_file_line_column_field)
{
    sm_error err;
    int rc = sm_error_set_at(&err, SM_ERR_PARSE, "customers.csv", 1289, 14, "spend",
                             "expected a number, got \"%s\"", "N/A");
    ck_assert_int_eq(rc, SM_ERR_PARSE);
    char text[512];
    sm_error_format(&err, text, sizeof text);
    ck_assert_str_eq(text, "customers.csv:1289:14: field \"spend\": expected a number, got \"N/A\"");

    sm_error_set(&err, SM_ERR_INVALID_ARG, "k=%d must be >= 1", 0);
    sm_error_format(&err, text, sizeof text);
    ck_assert_str_eq(text, "k=0 must be >= 1");
    ck_assert_int_eq(err.line, 0);

    /* NULL error records are allowed everywhere. */
    ck_assert_int_eq(sm_error_set(NULL, SM_ERR_IO, "ignored"), SM_ERR_IO);
    ck_assert_str_eq(sm_strerror(SM_ERR_NOMEM), "out of memory");
    ck_assert_str_eq(sm_strerror(12345), "unknown error");
}
END_TEST

START_TEST(error_format_truncates_safely)
{
    sm_error err;
    char long_path[2000];
    memset(long_path, 'p', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    sm_error_set_at(&err, SM_ERR_IO, long_path, 1, 1, NULL, "x");
    ck_assert_uint_eq(strlen(err.path), SM_ERROR_PATH_MAX - 1);
    char small[16];
    int needed = sm_error_format(&err, small, sizeof small);
    ck_assert_int_gt(needed, (int)sizeof small);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
}
END_TEST

START_TEST(alloc_overflow_returns_null)
{
    ck_assert_ptr_null(sm_alloc_array(SIZE_MAX / 2, 3));
    ck_assert_ptr_null(sm_calloc(SIZE_MAX / 8, 16));
    ck_assert_ptr_null(sm_aligned_alloc(SIZE_MAX, 2));
    size_t out = 7;
    ck_assert(!sm_mul_size((size_t)1 << 33, (size_t)1 << 32, &out));
    ck_assert_uint_eq(out, 7);
    ck_assert(sm_mul_size((size_t)1 << 31, 8, &out));
    ck_assert_uint_eq(out, (size_t)1 << 34);
}
END_TEST

START_TEST(alloc_fail_hook_fails_the_nth)
{
    sm_alloc_fail_at(3, false);
    void *a = sm_malloc(8), *b = sm_malloc(8), *c = sm_malloc(8), *d = sm_malloc(8);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(d); /* transient: only the 3rd fails */
    sm_free(a), sm_free(b), sm_free(d);

    sm_alloc_fail_at(2, true);
    a = sm_malloc(8);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(sm_malloc(8));
    ck_assert_ptr_null(sm_calloc(1, 8)); /* persistent: all later ones fail */
    sm_alloc_fail_at(0, false);
    sm_free(a);
}
END_TEST

START_TEST(aligned_alloc_is_64_byte_aligned)
{
    for (size_t n = 1; n < 200; n += 17) {
        float *p = sm_aligned_alloc(n, sizeof(float));
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 64, 0);
        sm_free(p);
    }
}
END_TEST

/* Known-answer vectors published with Random123 (kat_vectors, philox4x32_10). */
START_TEST(philox_known_answers)
{
    static const struct {
        uint32_t ctr[4], key[2], expect[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(kat); i++) {
        uint32_t out[4];
        sm_philox4x32_10(out, kat[i].ctr, kat[i].key);
        for (int j = 0; j < 4; j++)
            ck_assert_msg(out[j] == kat[i].expect[j], "vector %zu word %d: %08x != %08x", i, j,
                          out[j], kat[i].expect[j]);
    }
}
END_TEST

START_TEST(rng_streams_are_reproducible_and_distinct)
{
    uint64_t seed = sm_test_seed(42);
    sm_rng a, b, c;
    sm_rng_init(&a, seed, 7);
    sm_rng_init(&b, seed, 7);
    sm_rng_init(&c, seed, 8);
    int same_as_other_stream = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = sm_rng_u64(&a);
        ck_assert_uint_eq(x, sm_rng_u64(&b));
        same_as_other_stream += x == sm_rng_u64(&c);
    }
    ck_assert_int_eq(same_as_other_stream, 0);
}
END_TEST

START_TEST(rng_uniform_and_bounded_draws_are_unbiased)
{
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(1), 0);
    enum { N = 200000, BINS = 10 };
    int counts[BINS] = {0};
    double sum = 0.0;
    for (int i = 0; i < N; i++) {
        double u = sm_rng_uniform(&rng);
        ck_assert(u >= 0.0 && u < 1.0);
        sum += u;
        counts[sm_rng_below(&rng, BINS)]++;
    }
    /* mean of U(0,1) has sd 1/sqrt(12 N) ~ 0.00065; 5 sd bound */
    ck_assert_double_eq_tol(sum / N, 0.5, 0.0033);
    /* chi-square with 9 degrees of freedom: 99.99th percentile ~ 33.7 */
    double chi2 = 0.0;
    for (int b = 0; b < BINS; b++) {
        double e = (double)N / BINS;
        chi2 += (counts[b] - e) * (counts[b] - e) / e;
    }
    ck_assert_double_lt(chi2, 33.7);
}
END_TEST

START_TEST(rng_normal_has_unit_variance)
{
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(3), 1);
    enum { N = 100000 };
    double sum = 0.0, sumsq = 0.0;
    for (int i = 0; i < N; i++) {
        double z = sm_rng_normal(&rng);
        sum += z;
        sumsq += z * z;
    }
    double mean = sum / N, var = sumsq / N - mean * mean;
    ck_assert_double_eq_tol(mean, 0.0, 0.02);  /* sd of mean 0.0032 */
    ck_assert_double_eq_tol(var, 1.0, 0.03);   /* sd of variance ~0.0045 */
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, error_format_names_file_line_column_field);
    tcase_add_test(tc, error_format_truncates_safely);
    tcase_add_test(tc, alloc_overflow_returns_null);
    tcase_add_test(tc, aligned_alloc_is_64_byte_aligned);
    suite_add_tcase(s, tc);
    TCase *oom = tcase_create("oom");
    tcase_add_test(oom, alloc_fail_hook_fails_the_nth);
    suite_add_tcase(s, oom);
    TCase *rng = tcase_create("rng");
    tcase_add_test(rng, philox_known_answers);
    tcase_add_test(rng, rng_streams_are_reproducible_and_distinct);
    tcase_add_test(rng, rng_uniform_and_bounded_draws_are_unbiased);
    tcase_add_test(rng, rng_normal_has_unit_variance);
    suite_add_tcase(s, rng);
    return s;
}

int main(void)
{
    return sm_test_run(core_suite());
}
