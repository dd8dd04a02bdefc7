/* SPDX-License-Identifier: MIT */
/*
 * Anomaly detection: Isolation Forest (c(n), hand cases, planted outliers,
 * determinism, model format and corruption), the robust detectors
 * (centroid/MAD, MCD Mahalanobis, per-customer transactions) and thresholds.
 * Oracles: hand calculations, naive reference implementations written here
 * independently of the kernels (a preorder tree walker that reads the
 * documented model format; sort-based medians; dense covariance by
 * definition), and invariants.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"
#include "kernels/rng.h"
#include "segmint/anomaly.h"
#include "testutil.h"

/* --- helpers ------------------------------------------------------------- */

/* n x d Gaussian blob (mean 0, sd 1), row-major with leading dimension ld. */
static float *gaussian(size_t n, size_t d, size_t ld, uint64_t seed)
{
    float *x = calloc(n * ld + 1, sizeof *x);
    sm_rng r;
    sm_rng_init(&r, seed, 777);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * ld + j] = (float)sm_rng_normal(&r);
    return x;
}

static sm_iforest *fit_forest(const float *x, size_t n, size_t d, size_t ld, uint32_t trees,
                              uint32_t psi, uint64_t seed, int threads)
{
    sm_iforest_params p;
    sm_iforest_params_init(&p);
    p.n_trees = trees;
    p.sample_size = psi;
    p.seed = seed;
    p.n_threads = threads;
    sm_iforest *f = NULL;
    sm_error err;
    int rc = sm_iforest_fit(&p, x, n, d, ld, &f, &err);
    ck_assert_msg(rc == SM_OK, "fit failed: %s", err.msg);
    return f;
}

static uint8_t *serialize(const sm_iforest *f, size_t *len)
{
    *len = sm_iforest_serialized_size(f);
    uint8_t *buf = malloc(*len);
    ck_assert_int_eq(sm_iforest_serialize(f, buf, *len, NULL), SM_OK);
    return buf;
}

/* --- the naive reference: reads the documented format, walks preorder ---- */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Restores the trailing FNV-1a hash after a test edits a model. */
static void rehash(uint8_t *buf, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i + 8 < len; i++) {
        h ^= buf[i];
        h *= 0x100000001b3ull;
    }
    for (int i = 0; i < 8; i++)
        buf[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

/* c(n) written from the paper's definition with the harmonic number summed
 * exactly, to check the kernel's ln(i) + gamma form where they agree. */
static double ref_c_exact(uint64_t n)
{
    if (n <= 1)
        return 0.0;
    if (n == 2)
        return 1.0;
    double h = 0.0;
    for (uint64_t i = 1; i < n; i++)
        h += 1.0 / (double)i;
    return 2.0 * h - 2.0 * (double)(n - 1) / (double)n;
}

static double ref_c(uint64_t n)
{
    if (n <= 1)
        return 0.0;
    if (n == 2)
        return 1.0;
    return 2.0 * (log((double)(n - 1)) + 0.5772156649015329) - 2.0 * (double)(n - 1) / (double)n;
}

/* Path length of row v in the preorder subtree starting at node *pos. */
static double ref_path(const uint8_t *nodes, uint64_t *pos, const float *v, double depth,
                       double *result)
{
    uint32_t a = rd32(nodes + 8 * *pos), b = rd32(nodes + 8 * *pos + 4);
    (*pos)++;
    if (a == 0xFFFFFFFFu) {
        if (*result < 0)
            *result = depth + ref_c(b);
        return 0;
    }
    float t;
    memcpy(&t, &b, sizeof t);
    /* Visit both subtrees to advance pos; only the taken one sets result. */
    double taken_left = v[a] <= t;
    double left = -1, right = -1;
    ref_path(nodes, pos, v, depth + 1, &left);
    ref_path(nodes, pos, v, depth + 1, &right);
    if (*result < 0)
        *result = taken_left ? left : right;
    return 0;
}

static void ref_score(double *scores, const uint8_t *model, const float *x, size_t n, size_t ld)
{
    uint32_t trees = rd32(model + 12), psi = rd32(model + 16);
    const uint8_t *counts = model + 48;
    const uint8_t *nodes = counts + 4 * (size_t)trees;
    for (size_t i = 0; i < n; i++) {
        double sum = 0;
        uint64_t pos = 0;
        for (uint32_t t = 0; t < trees; t++) {
            double h = -1;
            uint64_t before = pos;
            ref_path(nodes, &pos, x + i * ld, 0, &h);
            ck_assert_uint_eq(pos - before, rd32(counts + 4 * t));
            sum += h;
        }
        scores[i] = pow(2.0, -(sum / trees) / ref_c(psi));
    }
}

/* --- Isolation Forest: core ---------------------------------------------- */

START_TEST(iforest_c_hand_values)
{
    ck_assert_double_eq(sm_iforest_c(0), 0.0);
    ck_assert_double_eq(sm_iforest_c(1), 0.0);
    ck_assert_double_eq(sm_iforest_c(2), 1.0);
    /* c(3) = 2 (ln 2 + gamma) - 4/3 = 1.2073924...; c(256) = 2 (ln 255 + gamma) - 510/256. */
    ck_assert_double_eq_tol(sm_iforest_c(3), 1.20739236, 1e-7);
    ck_assert_double_eq_tol(sm_iforest_c(256), 10.2447709, 1e-7);
    /* H(i) ~ ln(i) + gamma is off by ~1/(2i): within 1/i of the exact sum. */
    for (uint64_t n = 3; n < 2000; n += 37)
        ck_assert_double_eq_tol(sm_iforest_c(n), ref_c_exact(n), 1.0 / (double)(n - 1));
}
END_TEST

START_TEST(iforest_two_points_score_half)
{
    /* psi = 2: height limit 1, the root splits the two points into leaves of
     * size 1 at depth 1, so h = 1 = c(2) and s = 2^-1 for any row. */
    float x[4] = {0.0f, 5.0f, 1.0f, -3.0f};
    sm_iforest *f = fit_forest(x, 2, 2, 2, 50, 256, sm_test_seed(1), 0);
    ck_assert_uint_eq(sm_iforest_sample_size(f), 2);
    ck_assert_uint_eq(sm_iforest_depth_limit(f), 1);
    double s[2];
    ck_assert_int_eq(sm_iforest_score(f, s, x, 2, 2, 2, 0, NULL, NULL), SM_OK);
    ck_assert_double_eq(s[0], 0.5);
    ck_assert_double_eq(s[1], 0.5);
    sm_iforest_destroy(f);
}
END_TEST

START_TEST(iforest_three_points_hand_expectation)
{
    /* 1-D points {0, 1, 10}, psi = 3, limit 2. The root threshold is uniform
     * in [0, 10): with p = 0.1 it isolates 0, else 10. So h(1) = 2 always,
     * E h(10) = 0.9*1 + 0.1*2 = 1.1 and E h(0) = 1.9. With 20000 trees the
     * sd of the mean of h(10) is 0.3/sqrt(20000) = 0.0021; allow 5 sd. */
    float x[3] = {0.0f, 1.0f, 10.0f};
    sm_iforest *f = fit_forest(x, 3, 1, 1, 20000, 256, sm_test_seed(2), 0);
    double s[3];
    ck_assert_int_eq(sm_iforest_score(f, s, x, 3, 1, 1, 0, NULL, NULL), SM_OK);
    double c3 = sm_iforest_c(3);
    ck_assert_double_eq_tol(s[1], pow(2.0, -2.0 / c3), 1e-12);
    double h10 = -log2(s[2]) * c3, h0 = -log2(s[0]) * c3;
    ck_assert_double_eq_tol(h10, 1.1, 5 * 0.0021);
    ck_assert_double_eq_tol(h0, 1.9, 5 * 0.0021);
    ck_assert(s[2] > s[0] && s[0] > s[1]);
    sm_iforest_destroy(f);
}
END_TEST

START_TEST(iforest_planted_outlier_gets_top_score)
{
    const size_t n = 2000, d = 6, ld = 7;
    float *x = gaussian(n, d, ld, sm_test_seed(3));
    const size_t planted = 1234;
    for (size_t j = 0; j < d; j++)
        x[planted * ld + j] = 6.0f;
    sm_iforest *f = fit_forest(x, n, d, ld, 100, 256, sm_test_seed(3), 0);
    double *s = malloc(n * sizeof *s);
    ck_assert_int_eq(sm_iforest_score(f, s, x, n, d, ld, 0, NULL, NULL), SM_OK);
    for (size_t i = 0; i < n; i++) {
        ck_assert(isfinite(s[i]) && s[i] > 0.0 && s[i] <= 1.0);
        if (i != planted)
            ck_assert_msg(s[i] < s[planted], "row %zu scores %g >= planted %g", i, s[i],
                          s[planted]);
    }
    /* An isolated point sits far above the 0.5 line, blob rows well below. */
    ck_assert(s[planted] > 0.7);
    sm_iforest_destroy(f);
    free(s);
    free(x);
}
END_TEST

START_TEST(iforest_matches_naive_reference)
{
    /* Shapes that reach every scoring path: d <= 16 (transposed block) and
     * d > 16 (gathers), ld > d, n not a multiple of 16 or 256, psi not a power
     * of two, and trees deeper than 8 levels (psi 777: limit 10). */
    const struct {
        size_t n, d, ld;
        uint32_t psi;
    } cases[] = {
        {777, 5, 5, 256}, {777, 5, 8, 100}, {777, 5, 5, 3}, {777, 5, 5, 777},
        {600, 20, 23, 256}, {600, 17, 17, 600}, {300, 16, 16, 16}, {40, 1, 1, 32},
    };
    for (size_t k = 0; k < SM_ARRAY_LEN(cases); k++) {
        size_t n = cases[k].n, d = cases[k].d, ld = cases[k].ld;
        float *x = gaussian(n, d, ld, sm_test_seed(4) + k);
        sm_iforest *f = fit_forest(x, n, d, ld, 37, cases[k].psi, sm_test_seed(4) + k, 0);
        size_t len;
        uint8_t *model = serialize(f, &len);
        double *s = malloc(n * sizeof *s), *r = malloc(n * sizeof *r);
        ck_assert_int_eq(sm_iforest_score(f, s, x, n, d, ld, 0, NULL, NULL), SM_OK);
        ref_score(r, model, x, n, ld);
        /* The kernel stores each leaf's path length as float (relative error
         * 2^-24 on values < 20), the reference keeps double: 1e-6 relative. */
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(fabs(s[i] - r[i]) <= 1e-6 * r[i], "case %zu row %zu: %.17g vs %.17g", k,
                          i, s[i], r[i]);
        free(s);
        free(r);
        free(model);
        sm_iforest_destroy(f);
        free(x);
    }
}
END_TEST

/* The tree shape invariants the format promises, checked on a fitted model:
 * every split threshold lies inside the feature's range in the data, leaf
 * sizes sum to psi, and no internal node exceeds the height limit. */
START_TEST(iforest_tree_invariants)
{
    const size_t n = 500, d = 3, ld = 3;
    float *x = gaussian(n, d, ld, sm_test_seed(5));
    sm_iforest *f = fit_forest(x, n, d, ld, 20, 64, sm_test_seed(5), 0);
    size_t len;
    uint8_t *model = serialize(f, &len);
    ck_assert_uint_eq(rd32(model + 20), 6); /* ceil(log2 64) */
    uint32_t trees = rd32(model + 12);
    uint64_t total = rd64(model + 40);
    const uint8_t *nodes = model + 48 + 4 * trees;
    uint64_t leaf_rows = 0;
    for (uint64_t i = 0; i < total; i++) {
        uint32_t a = rd32(nodes + 8 * i), b = rd32(nodes + 8 * i + 4);
        if (a == 0xFFFFFFFFu) {
            leaf_rows += b;
            continue;
        }
        ck_assert_uint_lt(a, d);
        float t;
        memcpy(&t, &b, sizeof t);
        float mn = x[a], mx = x[a];
        for (size_t r = 1; r < n; r++) {
            mn = fminf(mn, x[r * ld + a]);
            mx = fmaxf(mx, x[r * ld + a]);
        }
        ck_assert(t >= mn && t < mx);
    }
    ck_assert_uint_eq(leaf_rows, 64 * (uint64_t)trees);
    free(model);
    sm_iforest_destroy(f);
    free(x);
}
END_TEST

/* --- Isolation Forest: edges (B12, L1) ------------------------------------ */

START_TEST(iforest_constant_columns_never_split)
{
    const size_t n = 300, d = 4, ld = 4;
    float *x = gaussian(n, d, ld, sm_test_seed(6));
    for (size_t i = 0; i < n; i++) {
        x[i * ld + 1] = 3.25f; /* constant column */
        x[i * ld + 3] = -1.0f; /* another */
    }
    sm_iforest *f = fit_forest(x, n, d, ld, 50, 256, sm_test_seed(6), 0);
    size_t len;
    uint8_t *model = serialize(f, &len);
    uint32_t trees = rd32(model + 12);
    uint64_t total = rd64(model + 40);
    const uint8_t *nodes = model + 48 + 4 * trees;
    for (uint64_t i = 0; i < total; i++) {
        uint32_t a = rd32(nodes + 8 * i);
        ck_assert(a == 0xFFFFFFFFu || a == 0 || a == 2);
    }
    double *s = malloc(n * sizeof *s);
    ck_assert_int_eq(sm_iforest_score(f, s, x, n, d, ld, 0, NULL, NULL), SM_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert(isfinite(s[i]) && s[i] > 0.0 && s[i] <= 1.0);
    free(s);
    free(model);
    sm_iforest_destroy(f);
    free(x);
}
END_TEST

START_TEST(iforest_all_constant_scores_half)
{
    /* No node can split: every tree is one leaf of psi rows, h = c(psi),
     * s = 2^-1 exactly (the documented offset for a constant matrix). */
    const size_t n = 40, d = 3;
    float x[120];
    for (size_t i = 0; i < n * d; i++)
        x[i] = 7.0f;
    sm_iforest *f = fit_forest(x, n, d, d, 10, 256, sm_test_seed(7), 0);
    double s[40];
    ck_assert_int_eq(sm_iforest_score(f, s, x, n, d, d, 0, NULL, NULL), SM_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_double_eq_tol(s[i], 0.5, 1e-7);
    /* A different row against the same forest is still 0.5: nothing was learned. */
    float other[3] = {-100.0f, 0.0f, 1e30f};
    ck_assert_int_eq(sm_iforest_score(f, s, other, 1, d, d, 0, NULL, NULL), SM_OK);
    ck_assert_double_eq_tol(s[0], 0.5, 1e-7);
    sm_iforest_destroy(f);
}
END_TEST

START_TEST(iforest_small_n_uses_n_as_psi)
{
    const size_t n = 100, d = 2;
    float *x = gaussian(n, d, d, sm_test_seed(8));
    sm_iforest *f = fit_forest(x, n, d, d, 100, 256, sm_test_seed(8), 0);
    ck_assert_uint_eq(sm_iforest_sample_size(f), 100);
    ck_assert_uint_eq(sm_iforest_depth_limit(f), 7);
    double s[100];
    ck_assert_int_eq(sm_iforest_score(f, s, x, n, d, d, 0, NULL, NULL), SM_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert(isfinite(s[i]) && s[i] > 0.0 && s[i] <= 1.0);
    sm_iforest_destroy(f);
    free(x);
}
END_TEST

START_TEST(iforest_duplicates_and_extreme_values)
{
    /* Half the rows identical, others spread over many orders of magnitude:
     * splits stay inside [min, max) in float, scores stay finite. */
    const size_t n = 64, d = 2;
    float x[128];
    for (size_t i = 0; i < n; i++) {
        x[2 * i] = i < 32 ? 1.0f : (float)ldexp(1.0, (int)i - 40);
        x[2 * i + 1] = i < 32 ? 1.0f : -3e37f + (float)i * 1e36f;
    }
    sm_iforest *f = fit_forest(x, n, d, d, 30, 16, sm_test_seed(9), 0);
    double s[64];
    ck_assert_int_eq(sm_iforest_score(f, s, x, n, d, d, 0, NULL, NULL), SM_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert(isfinite(s[i]) && s[i] > 0.0 && s[i] <= 1.0);
    sm_iforest_destroy(f);
}
END_TEST

START_TEST(iforest_rejects_bad_arguments)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    sm_iforest_params p;
    sm_iforest_params_init(&p);
    ck_assert_uint_eq(p.n_trees, 100);
    ck_assert_uint_eq(p.sample_size, 256);
    sm_iforest *f = (sm_iforest *)&p; /* must be reset to NULL on failure */
    sm_error err;
    ck_assert_int_eq(sm_iforest_fit(&p, x, 1, 2, 2, &f, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(strstr(err.msg, "n_samples=1"));
    ck_assert_int_eq(sm_iforest_fit(&p, x, 0, 2, 2, &f, &err), SM_ERR_INVALID_ARG);
    ck_assert_int_eq(sm_iforest_fit(&p, x, 3, 2, 1, &f, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "ld");
    ck_assert_int_eq(sm_iforest_fit(&p, x, 3, 0, 2, &f, &err), SM_ERR_INVALID_ARG);
    p.n_trees = 0;
    ck_assert_int_eq(sm_iforest_params_check(&p, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "n_trees");
    sm_iforest_params_init(&p);
    p.sample_size = 1;
    ck_assert_int_eq(sm_iforest_fit(&p, x, 3, 2, 2, &f, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "sample_size");
    p.sample_size = SM_IFOREST_MAX_SAMPLE + 1;
    ck_assert_int_eq(sm_iforest_params_check(&p, &err), SM_ERR_INVALID_ARG);
    sm_iforest_params_init(&p);
    p.n_threads = -1;
    ck_assert_int_eq(sm_iforest_params_check(&p, &err), SM_ERR_INVALID_ARG);

    sm_iforest_params_init(&p);
    ck_assert_int_eq(sm_iforest_fit(&p, x, 3, 2, 2, &f, &err), SM_OK);
    double s[3];
    ck_assert_int_eq(sm_iforest_score(f, s, x, 2, 3, 3, 0, NULL, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "fitted on 2 features"));
    ck_assert_int_eq(sm_iforest_score(f, s, x, 3, 2, 1, 0, NULL, &err), SM_ERR_INVALID_ARG);
    /* n = 0 scores nothing and succeeds. */
    ck_assert_int_eq(sm_iforest_score(f, s, x, 0, 2, 2, 0, NULL, &err), SM_OK);
    sm_iforest_destroy(f);
    sm_iforest_destroy(NULL);
}
END_TEST

/* --- determinism (F11) -------------------------------------------------------- */

START_TEST(iforest_same_bits_for_any_thread_count)
{
    const size_t n = 5000, d = 7, ld = 9;
    float *x = gaussian(n, d, ld, sm_test_seed(10));
    const int threads[] = {1, 2, 3, 8};
    uint8_t *model0 = NULL;
    double *s0 = NULL;
    size_t len0 = 0;
    for (size_t k = 0; k < SM_ARRAY_LEN(threads); k++) {
        sm_iforest *f = fit_forest(x, n, d, ld, 70, 256, sm_test_seed(10), threads[k]);
        size_t len;
        uint8_t *model = serialize(f, &len);
        double *s = malloc(n * sizeof *s);
        ck_assert_int_eq(sm_iforest_score(f, s, x, n, d, ld, threads[k], NULL, NULL), SM_OK);
        if (k == 0) {
            model0 = model, s0 = s, len0 = len;
        } else {
            ck_assert_uint_eq(len, len0);
            ck_assert_msg(memcmp(model, model0, len) == 0, "model differs with %d threads",
                          threads[k]);
            ck_assert_msg(memcmp(s, s0, n * sizeof *s) == 0, "scores differ with %d threads",
                          threads[k]);
            free(model);
            free(s);
        }
        sm_iforest_destroy(f);
    }
    /* A different seed gives a different forest. */
    sm_iforest *g = fit_forest(x, n, d, ld, 70, 256, sm_test_seed(10) + 1, 0);
    size_t len;
    uint8_t *model = serialize(g, &len);
    ck_assert(len != len0 || memcmp(model, model0, len) != 0);
    free(model);
    sm_iforest_destroy(g);
    free(model0);
    free(s0);
    free(x);
}
END_TEST

/* A row's score must not depend on its neighbours: the batch goes through
 * the 16-wide vector walk, a single row through the scalar one. */
START_TEST(iforest_row_alone_equals_batch)
{
    const size_t shapes[][2] = {{300, 6}, {300, 24}};
    for (size_t k = 0; k < 2; k++) {
        size_t n = shapes[k][0], d = shapes[k][1];
        float *x = gaussian(n, d, d, sm_test_seed(15) + k);
        sm_iforest *f = fit_forest(x, n, d, d, 25, 256, sm_test_seed(15), 0);
        double *batch = malloc(n * sizeof *batch);
        ck_assert_int_eq(sm_iforest_score(f, batch, x, n, d, d, 0, NULL, NULL), SM_OK);
        for (size_t i = 0; i < n; i++) {
            double one;
            ck_assert_int_eq(sm_iforest_score(f, &one, x + i * d, 1, d, d, 1, NULL, NULL), SM_OK);
            ck_assert_msg(memcmp(&one, &batch[i], sizeof one) == 0, "d %zu row %zu: %.17g vs %.17g",
                          d, i, one, batch[i]);
        }
        free(batch);
        sm_iforest_destroy(f);
        free(x);
    }
}
END_TEST

/* --- model format ---------------------------------------------------------- */

START_TEST(iforest_save_load_round_trip)
{
    const size_t n = 1000, d = 4, ld = 4;
    float *x = gaussian(n, d, ld, sm_test_seed(11));
    sm_iforest *f = fit_forest(x, n, d, ld, 64, 128, sm_test_seed(11), 0);
    size_t len;
    uint8_t *model = serialize(f, &len);
    ck_assert_mem_eq(model, "SMIFORST", 8);
    ck_assert_uint_eq(rd32(model + 8), SM_IFOREST_FORMAT_VERSION);
    ck_assert_uint_eq(rd64(model + 32), sm_test_seed(11));
    sm_iforest *g = NULL;
    sm_error err;
    ck_assert_int_eq(sm_iforest_deserialize(model, len, &g, &err), SM_OK);
    ck_assert_uint_eq(sm_iforest_n_trees(g), 64);
    ck_assert_uint_eq(sm_iforest_sample_size(g), 128);
    ck_assert_uint_eq(sm_iforest_n_features(g), 4);
    /* Score new data (not the training rows) with both. */
    float *y = gaussian(300, d, ld, sm_test_seed(11) + 99);
    double a[300], b[300];
    ck_assert_int_eq(sm_iforest_score(f, a, y, 300, d, ld, 0, NULL, NULL), SM_OK);
    ck_assert_int_eq(sm_iforest_score(g, b, y, 300, d, ld, 0, NULL, NULL), SM_OK);
    ck_assert_mem_eq(a, b, sizeof a);
    size_t len2;
    uint8_t *again = serialize(g, &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert_mem_eq(model, again, len);
    /* Too small a buffer is refused, not overrun. */
    ck_assert_int_eq(sm_iforest_serialize(f, again, len - 1, &err), SM_ERR_INVALID_ARG);
    free(again);
    free(model);
    free(y);
    free(x);
    sm_iforest_destroy(f);
    sm_iforest_destroy(g);
}
END_TEST

static int expect_refused(const uint8_t *buf, size_t len)
{
    sm_iforest *g = (sm_iforest *)buf;
    sm_error err;
    int rc = sm_iforest_deserialize(buf, len, &g, &err);
    ck_assert_int_ne(rc, SM_OK);
    ck_assert_ptr_null(g);
    ck_assert(err.msg[0] != '\0');
    return rc;
}

START_TEST(iforest_corrupted_model_refused)
{
    const size_t n = 200, d = 3;
    float *x = gaussian(n, d, d, sm_test_seed(12));
    sm_iforest *f = fit_forest(x, n, d, d, 8, 32, sm_test_seed(12), 0);
    size_t len;
    uint8_t *model = serialize(f, &len);
    uint8_t *bad = malloc(len);

    /* Every single-bit flip anywhere is caught (hash or structure). */
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, model, len);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        expect_refused(bad, len);
    }
    /* Every truncation, and trailing junk. */
    for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 13))
        expect_refused(model, cut);
    uint8_t *longer = malloc(len + 4);
    memcpy(longer, model, len);
    memset(longer + len, 0, 4);
    expect_refused(longer, len + 4);
    free(longer);

    /* A newer format version is refused as such. */
    memcpy(bad, model, len);
    wr32(bad + 8, SM_IFOREST_FORMAT_VERSION + 1);
    ck_assert_int_eq(expect_refused(bad, len), SM_ERR_SCHEMA);

    /* Crafted models with a valid hash: the structure checks must refuse them. */
    uint32_t trees = rd32(model + 12);
    uint8_t *nodes = model + 48 + 4 * trees;
    size_t first_internal = 0;
    while (rd32(nodes + 8 * first_internal) == 0xFFFFFFFFu)
        first_internal++;
    struct {
        size_t at;
        uint32_t value;
        const char *why;
    } edits[] = {
        {48 + 4 * trees + 8 * first_internal, (uint32_t)d, "feature index >= d"},
        {48 + 4 * trees + 8 * first_internal + 4, 0x7FC00000u, "NaN threshold"},
        {48 + 4 * trees + 8 * first_internal + 4, 0x7F800000u, "inf threshold"},
        {48, 0, "tree with zero nodes"},
        {16, 64, "sample size without matching height limit"},
        {20, 9, "wrong height limit"},
        {12, 0, "zero trees"},
    };
    for (size_t k = 0; k < SM_ARRAY_LEN(edits); k++) {
        memcpy(bad, model, len);
        wr32(bad + edits[k].at, edits[k].value);
        rehash(bad, len);
        ck_assert_msg(expect_refused(bad, len) == SM_ERR_PARSE, "accepted: %s", edits[k].why);
    }
    /* A leaf claiming more rows than psi, and leaf sizes not summing to psi. */
    size_t first_leaf = 0;
    while (rd32(nodes + 8 * first_leaf) != 0xFFFFFFFFu)
        first_leaf++;
    memcpy(bad, model, len);
    wr32(bad + 48 + 4 * trees + 8 * first_leaf + 4, 33);
    rehash(bad, len);
    expect_refused(bad, len);
    memcpy(bad, model, len);
    wr32(bad + 48 + 4 * trees + 8 * first_leaf + 4,
         rd32(nodes + 8 * first_leaf + 4) == 1 ? 2 : 1);
    rehash(bad, len);
    expect_refused(bad, len);
    /* An internal node turned into a leaf breaks the preorder. */
    memcpy(bad, model, len);
    wr32(bad + 48 + 4 * trees + 8 * first_internal, 0xFFFFFFFFu);
    wr32(bad + 48 + 4 * trees + 8 * first_internal + 4, 1);
    rehash(bad, len);
    expect_refused(bad, len);

    ck_assert_int_eq(expect_refused((const uint8_t *)"SMIFORST", 8), SM_ERR_PARSE);
    free(bad);
    free(model);
    sm_iforest_destroy(f);
    free(x);
}
END_TEST

/* --- OOM (F5) --------------------------------------------------------------- */

START_TEST(iforest_oom_loop)
{
    const size_t n = 300, d = 3;
    float *x = gaussian(n, d, d, sm_test_seed(13));
    sm_iforest_params p;
    sm_iforest_params_init(&p);
    p.n_trees = 70; /* three fit chunks: the node array grows twice */
    p.sample_size = 64;
    p.n_threads = 2;
    int rc = SM_ERR_NOMEM;
    sm_iforest *f = NULL;
    for (uint64_t nth = 1; rc == SM_ERR_NOMEM; nth++) {
        sm_alloc_fail_at(nth, (nth % 2) == 0);
        sm_error err;
        rc = sm_iforest_fit(&p, x, n, d, d, &f, &err);
        sm_alloc_fail_at(0, false);
        if (rc == SM_ERR_NOMEM)
            ck_assert_ptr_null(f);
        ck_assert_msg(rc == SM_OK || rc == SM_ERR_NOMEM, "nth %" PRIu64 ": rc %d", nth, rc);
        ck_assert_uint_lt(nth, 10000);
    }
    size_t len;
    uint8_t *model = serialize(f, &len);
    rc = SM_ERR_NOMEM;
    for (uint64_t nth = 1; rc == SM_ERR_NOMEM; nth++) {
        sm_iforest *g = NULL;
        sm_alloc_fail_at(nth, false);
        rc = sm_iforest_deserialize(model, len, &g, NULL);
        sm_alloc_fail_at(0, false);
        ck_assert(rc == SM_OK || rc == SM_ERR_NOMEM);
        if (rc == SM_ERR_NOMEM)
            ck_assert_ptr_null(g);
        sm_iforest_destroy(g);
    }
    free(model);
    sm_iforest_destroy(f);
    free(x);
}
END_TEST

/* --- progress and cancellation --------------------------------------------- */

typedef struct progress_log {
    int calls;
    int cancel_at;
    uint64_t last_done, last_total;
} progress_log;

static int count_progress(void *user, const char *stage, uint64_t done, uint64_t total)
{
    progress_log *log = user;
    (void)stage;
    ck_assert_uint_le(done, total);
    ck_assert_uint_ge(done, log->last_done);
    log->last_done = done;
    log->last_total = total;
    return ++log->calls == log->cancel_at;
}

START_TEST(iforest_progress_and_cancel)
{
    const size_t n = 70000, d = 2;
    float *x = gaussian(n, d, d, sm_test_seed(14));
    sm_iforest_params p;
    sm_iforest_params_init(&p);
    p.n_trees = 40;
    progress_log log = {0};
    p.progress = (sm_progress){count_progress, &log};
    sm_iforest *f = NULL;
    ck_assert_int_eq(sm_iforest_fit(&p, x, n, d, d, &f, NULL), SM_OK);
    ck_assert_int_eq(log.calls, 2); /* 32 + 8 trees */
    ck_assert_uint_eq(log.last_done, 40);
    double *s = malloc(n * sizeof *s);
    progress_log slog = {0};
    sm_progress sp = {count_progress, &slog};
    ck_assert_int_eq(sm_iforest_score(f, s, x, n, d, d, 0, &sp, NULL), SM_OK);
    ck_assert_uint_eq(slog.last_done, n);
    slog = (progress_log){.cancel_at = 1};
    sm_error err;
    ck_assert_int_eq(sm_iforest_score(f, s, x, n, d, d, 0, &sp, &err), SM_ERR_CANCELLED);
    sm_iforest_destroy(f);
    log = (progress_log){.cancel_at = 1};
    ck_assert_int_eq(sm_iforest_fit(&p, x, n, d, d, &f, &err), SM_ERR_CANCELLED);
    ck_assert_ptr_null(f);
    free(s);
    free(x);
}
END_TEST

/* --- thresholding ------------------------------------------------------------- */

START_TEST(threshold_matches_numpy_percentile)
{
    /* np.percentile(1..10, 90) = 9.1; np.percentile(1..10, 50) = 5.5. */
    double s[10] = {4, 9, 1, 10, 2, 7, 3, 8, 6, 5};
    double thr;
    ck_assert_int_eq(sm_anomaly_threshold(&thr, s, 10, 0.1, NULL), SM_OK);
    ck_assert_double_eq_tol(thr, 9.1, 1e-12);
    uint8_t flags[10], det[10];
    ck_assert_uint_eq(sm_anomaly_flag(flags, det, s, 10, thr, SM_DETECTOR_IFOREST), 1);
    ck_assert_uint_eq(flags[3], 1);
    ck_assert_uint_eq(det[3], SM_DETECTOR_IFOREST);
    ck_assert_uint_eq(det[0], SM_DETECTOR_NONE);
    ck_assert_int_eq(sm_anomaly_threshold(&thr, s, 10, 0.5, NULL), SM_OK);
    ck_assert_double_eq_tol(thr, 5.5, 1e-12);
    ck_assert_uint_eq(sm_anomaly_flag(flags, NULL, s, 10, thr, SM_DETECTOR_IFOREST), 5);
    /* The input is not reordered. */
    ck_assert_double_eq(s[0], 4);
    ck_assert_double_eq(s[9], 5);
    /* Ties at the threshold are not flagged. */
    double tied[4] = {1, 1, 1, 1};
    ck_assert_int_eq(sm_anomaly_threshold(&thr, tied, 4, 0.25, NULL), SM_OK);
    ck_assert_uint_eq(sm_anomaly_flag(flags, NULL, tied, 4, thr, SM_DETECTOR_IFOREST), 0);
    ck_assert_int_eq(sm_anomaly_threshold(&thr, s, 1, 0.3, NULL), SM_OK);
    ck_assert_double_eq(thr, 4);
    ck_assert_str_eq(sm_detector_name(SM_DETECTOR_MAHALANOBIS), "mahalanobis");
    ck_assert_str_eq(sm_detector_name(99), "unknown");
}
END_TEST

START_TEST(threshold_rejects_bad_contamination)
{
    double s[3] = {1, 2, 3}, thr;
    sm_error err;
    const double bad[] = {0.0, -0.1, 0.5000001, 1.0, NAN, INFINITY};
    for (size_t i = 0; i < SM_ARRAY_LEN(bad); i++) {
        ck_assert_int_eq(sm_anomaly_threshold(&thr, s, 3, bad[i], &err), SM_ERR_INVALID_ARG);
        ck_assert_str_eq(err.field, "contamination");
    }
    ck_assert_int_eq(sm_anomaly_threshold(&thr, s, 3, 0.5, &err), SM_OK);
    ck_assert_int_eq(sm_anomaly_threshold(&thr, s, 0, 0.1, &err), SM_ERR_INVALID_ARG);
    s[1] = NAN;
    ck_assert_int_eq(sm_anomaly_threshold(&thr, s, 3, 0.1, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "score 1 is NaN"));
}
END_TEST

/* --- robust column statistics ---------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sort-based median, the reference for the selection-based one. */
static double ref_median(const double *v, size_t n)
{
    double *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

static double ref_scale(const double *v, size_t n, double *median)
{
    double med = ref_median(v, n);
    double *dev = malloc(n * sizeof *dev);
    double mean_ad = 0;
    for (size_t i = 0; i < n; i++) {
        dev[i] = fabs(v[i] - med);
        mean_ad += dev[i] / (double)n;
    }
    double mad = ref_median(dev, n);
    free(dev);
    *median = med;
    return mad > 0 ? 1.482602218505602 * mad : 1.2533141373155003 * mean_ad;
}

START_TEST(column_stats_hand_cases)
{
    /* Columns: {1,2,3,4,100} median 3 MAD 1; {5,5,5,5,9} MAD 0 -> mean abs
     * dev 0.8 * 1.2533; constant 7 -> 0; {-1,0,0,2,2} median 0 MAD 1. */
    const float x[] = {1, 5, 7, -1, 2, 5, 7, 0, 3, 5, 7, 0, 4, 5, 7, 2, 100, 9, 7, 2};
    double med[4], scl[4];
    ck_assert_int_eq(sm_robust_column_stats(med, scl, x, 5, 4, 4, 0, NULL), SM_OK);
    ck_assert_double_eq(med[0], 3);
    ck_assert_double_eq_tol(scl[0], 1.482602218505602, 1e-15);
    ck_assert_double_eq(med[1], 5);
    ck_assert_double_eq_tol(scl[1], 0.8 * 1.2533141373155003, 1e-15);
    ck_assert_double_eq(med[2], 7);
    ck_assert_double_eq(scl[2], 0);
    ck_assert_double_eq(med[3], 0);
    ck_assert_double_eq_tol(scl[3], 1.482602218505602, 1e-15);
    /* Even n: {1,2,3,4} median 2.5, MAD 1. */
    const float y[] = {4, 1, 3, 2};
    ck_assert_int_eq(sm_robust_column_stats(med, scl, y, 4, 1, 1, 0, NULL), SM_OK);
    ck_assert_double_eq(med[0], 2.5);
    ck_assert_double_eq_tol(scl[0], 1.482602218505602, 1e-15);
}
END_TEST

START_TEST(column_stats_match_reference_any_threads)
{
    const size_t n = 1001, d = 5, ld = 6;
    float *x = gaussian(n, d, ld, sm_test_seed(20));
    for (size_t i = 0; i < n; i++)
        x[i * ld + 2] = (float)(i % 7); /* many ties */
    double *col = malloc(n * sizeof *col);
    double med0[5], scl0[5];
    const int threads[] = {1, 2, 3, 8};
    for (size_t t = 0; t < SM_ARRAY_LEN(threads); t++) {
        double med[5], scl[5];
        ck_assert_int_eq(sm_robust_column_stats(med, scl, x, n, d, ld, threads[t], NULL), SM_OK);
        if (t == 0) {
            memcpy(med0, med, sizeof med);
            memcpy(scl0, scl, sizeof scl);
        }
        ck_assert_mem_eq(med, med0, sizeof med);
        ck_assert_mem_eq(scl, scl0, sizeof scl);
    }
    for (size_t j = 0; j < d; j++) {
        for (size_t i = 0; i < n; i++)
            col[i] = x[i * ld + j];
        double rm, rs = ref_scale(col, n, &rm);
        ck_assert_double_eq(med0[j], rm);
        ck_assert_double_eq_tol(scl0[j], rs, 1e-12 * rs);
    }
    free(col);
    free(x);
}
END_TEST

/* --- centroid detector ----------------------------------------------------- */

START_TEST(centroid_hand_case)
{
    /* Cluster 0 around centre 0: distances {0,1,2,3,10}, median 2, MAD 1.
     * Cluster 1 around centre 100 with members {99, 101, 103}: distances
     * {1, 1, 3}, median 1, MAD 0, mean abs dev 2/3 -> scale 0.8355. */
    const float x[] = {0, 1, -2, 3, 10, 99, 101, 103};
    const sm_cluster_id labels[] = {0, 0, 0, 0, 0, 1, 1, 1};
    const float centers[] = {0, 100};
    double s[8], med[2], scl[2];
    ck_assert_int_eq(sm_centroid_outliers(s, med, scl, x, 8, 1, 1, labels, centers, 2, 0, NULL),
                     SM_OK);
    ck_assert_double_eq(med[0], 2);
    ck_assert_double_eq_tol(scl[0], 1.482602218505602, 1e-15);
    ck_assert_double_eq_tol(s[4], 8.0 / 1.482602218505602, 1e-12);
    ck_assert_double_eq_tol(s[0], -2.0 / 1.482602218505602, 1e-12);
    ck_assert_double_eq(med[1], 1);
    ck_assert_double_eq_tol(scl[1], 2.0 / 3.0 * 1.2533141373155003, 1e-12);
    ck_assert_double_eq_tol(s[7], 2.0 / scl[1], 1e-12);
    /* With centers = NULL the cluster means are used: cluster 1 mean 101. */
    ck_assert_int_eq(sm_centroid_outliers(s, med, scl, x, 8, 1, 1, labels, NULL, 2, 0, NULL), SM_OK);
    ck_assert_double_eq_tol(med[1], 2, 1e-12); /* distances {2, 0, 2} */
}
END_TEST

/* Distances given (a stored k-means run's), not recomputed. Cluster 0:
 * {50, 40, 30, 20, 10, 0, 150} (seven customers' |x - 70|), median 30,
 * absolute deviations {20, 10, 0, 10, 20, 30, 120}, MAD 20, so the far one
 * scores 120 / (1.4826 * 20) = 4.0469. Cluster 1: {2, 2}: no spread, 0. */
START_TEST(centroid_from_given_distances)
{
    const double dist[] = {50, 40, 30, 20, 10, 0, 150, 2, 2};
    const sm_cluster_id labels[] = {0, 0, 0, 0, 0, 0, 0, 1, 1};
    double s[9], med[2], scl[2];
    ck_assert_int_eq(sm_centroid_distance_scores(s, med, scl, dist, 9, labels, 2, 0, NULL), SM_OK);
    ck_assert_double_eq(med[0], 30);
    ck_assert_double_eq_tol(scl[0], 20 * 1.482602218505602, 1e-12);
    ck_assert_double_eq_tol(s[6], 120 / (20 * 1.482602218505602), 1e-12);
    ck_assert_double_eq_tol(s[6], 4.0469, 1e-4);
    ck_assert_double_eq_tol(s[5], -30 / (20 * 1.482602218505602), 1e-12);
    ck_assert_double_eq(s[7], 0);
    ck_assert_double_eq(scl[1], 0);
    /* The same rows through sm_centroid_outliers with one column x and
     * centre 70 give the same scores. */
    const float x[] = {20, 30, 40, 50, 60, 70, 220, 1, 5};
    const float centers[] = {70, 3};
    double s2[9];
    ck_assert_int_eq(sm_centroid_outliers(s2, NULL, NULL, x, 9, 1, 1, labels, centers, 2, 3, NULL), SM_OK);
    ck_assert_mem_eq(s, s2, sizeof s);
    /* A negative or NaN distance is refused with its row. */
    sm_error err;
    const double bad[] = {1, 2, -1};
    ck_assert_int_eq(sm_centroid_distance_scores(s, NULL, NULL, bad, 3, labels, 1, 0, &err),
                     SM_ERR_INVALID_ARG);
    ck_assert_uint_eq(err.line, 3);
    ck_assert_ptr_nonnull(strstr(err.msg, "row 2 has distance -1"));
}
END_TEST

START_TEST(centroid_matches_reference_and_flags_misfit)
{
    /* Three blobs of different widths; row 5 sits in cluster 0's label but
     * at cluster 2's centre: far from its own segment. */
    const size_t n = 900, d = 4, k = 3;
    float *x = gaussian(n, d, d, sm_test_seed(21));
    sm_cluster_id *labels = malloc(n * sizeof *labels);
    const float width[3] = {0.5f, 1.0f, 3.0f}, offset[3] = {0, 20, 40};
    for (size_t i = 0; i < n; i++) {
        labels[i] = (sm_cluster_id)(i % k);
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = x[i * d + j] * width[labels[i]] + offset[labels[i]];
    }
    for (size_t j = 0; j < d; j++)
        x[5 * d + j] = 40.0f; /* labels[5] = 2 ... */
    labels[5] = 0;            /* ... relabelled to cluster 0 */
    double *s = malloc(n * sizeof *s), *s2 = malloc(n * sizeof *s2);
    ck_assert_int_eq(sm_centroid_outliers(s, NULL, NULL, x, n, d, d, labels, NULL, k, 1, NULL), SM_OK);
    ck_assert_int_eq(sm_centroid_outliers(s2, NULL, NULL, x, n, d, d, labels, NULL, k, 3, NULL), SM_OK);
    ck_assert_mem_eq(s, s2, n * sizeof *s);
    size_t top = 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] > s[top])
            top = i;
    ck_assert_uint_eq(top, 5);
    /* Reference: means, distances, sort-based median/MAD per cluster. */
    double mean[3][4] = {{0}}, count[3] = {0};
    for (size_t i = 0; i < n; i++) {
        count[labels[i]]++;
        for (size_t j = 0; j < d; j++)
            mean[labels[i]][j] += x[i * d + j];
    }
    double *dist = malloc(n * sizeof *dist), *member = malloc(n * sizeof *member);
    for (size_t i = 0; i < n; i++) {
        double t = 0;
        for (size_t j = 0; j < d; j++) {
            double v = x[i * d + j] - mean[labels[i]][j] / count[labels[i]];
            t += v * v;
        }
        dist[i] = sqrt(t);
    }
    for (size_t c = 0; c < k; c++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (labels[i] == c)
                member[m++] = dist[i];
        double med, scl = ref_scale(member, m, &med);
        for (size_t i = 0; i < n; i++)
            if (labels[i] == c)
                ck_assert_double_eq_tol(s[i], (dist[i] - med) / scl, 1e-9);
    }
    /* A label >= k is refused with its row. */
    sm_error err;
    labels[17] = 3;
    ck_assert_int_eq(sm_centroid_outliers(s, NULL, NULL, x, n, d, d, labels, NULL, k, 0, &err),
                     SM_ERR_INVALID_ARG);
    ck_assert_uint_eq(err.line, 18);
    ck_assert_ptr_nonnull(strstr(err.msg, "row 17"));
    free(dist);
    free(member);
    free(s);
    free(s2);
    free(labels);
    free(x);
}
END_TEST

/* --- transactions ------------------------------------------------------------- */

START_TEST(transactions_hand_case)
{
    /* Customer 0: {10, 11, 9, 10, 100}: median 10, MAD 1 -> 100 scores 90/1.4826.
     * Customer 1: 2 transactions < min_history: not assessed.
     * Customer 2: {5, 5, 5}: no spread, all 0. Customer 3: none. */
    const uint64_t off[] = {0, 5, 7, 10, 10};
    const double v[] = {10, 11, 9, 10, 100, 1, 1000, 5, 5, 5};
    double s[10], cmax[4];
    uint64_t assessed = 99;
    ck_assert_int_eq(sm_transaction_outliers(s, cmax, &assessed, off, v, 4, 3, 0, NULL), SM_OK);
    ck_assert_double_eq_tol(s[4], 90.0 / 1.482602218505602, 1e-12);
    ck_assert_double_eq_tol(s[1], 1.0 / 1.482602218505602, 1e-12);
    ck_assert_double_eq(s[0], 0);
    ck_assert_double_eq(s[5], 0);
    ck_assert_double_eq(s[6], 0);
    ck_assert_double_eq(s[8], 0);
    ck_assert_double_eq_tol(cmax[0], 90.0 / 1.482602218505602, 1e-12);
    ck_assert_double_eq(cmax[1], 0);
    ck_assert_double_eq(cmax[3], 0);
    ck_assert_uint_eq(assessed, 2);
}
END_TEST

START_TEST(transactions_reference_threads_and_errors)
{
    const size_t customers = 500;
    uint64_t *off = malloc((customers + 1) * sizeof *off);
    off[0] = 0;
    sm_rng r;
    sm_rng_init(&r, sm_test_seed(22), 1);
    for (size_t c = 0; c < customers; c++)
        off[c + 1] = off[c] + sm_rng_below(&r, 40);
    size_t m = off[customers];
    double *v = malloc(m * sizeof *v);
    for (size_t t = 0; t < m; t++)
        v[t] = floor(exp(sm_rng_normal(&r)) * 100.0) / 100.0; /* prices: many ties */
    double *s1 = malloc(m * sizeof *s1), *s8 = malloc(m * sizeof *s8);
    ck_assert_int_eq(sm_transaction_outliers(s1, NULL, NULL, off, v, customers, 5, 1, NULL), SM_OK);
    ck_assert_int_eq(sm_transaction_outliers(s8, NULL, NULL, off, v, customers, 5, 8, NULL), SM_OK);
    ck_assert_mem_eq(s1, s8, m * sizeof *s1);
    for (size_t c = 0; c < customers; c++) {
        size_t len = off[c + 1] - off[c];
        if (len < 5)
            continue;
        double med, scl = ref_scale(v + off[c], len, &med);
        for (uint64_t t = off[c]; t < off[c + 1]; t++)
            ck_assert_double_eq_tol(s1[t], scl > 0 ? fabs(v[t] - med) / scl : 0.0, 1e-12);
    }
    sm_error err;
    ck_assert_int_eq(sm_transaction_outliers(s1, NULL, NULL, off, v, customers, 2, 0, &err),
                     SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "min_history");
    v[3] = NAN;
    ck_assert_int_eq(sm_transaction_outliers(s1, NULL, NULL, off, v, customers, 5, 0, &err),
                     SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "transaction 3 has a NaN"));
    v[3] = 1;
    uint64_t save = off[10];
    off[10] = off[11] + 1;
    ck_assert_int_eq(sm_transaction_outliers(s1, NULL, NULL, off, v, customers, 5, 0, &err),
                     SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "customer 10"));
    off[10] = save;
    free(off);
    free(v);
    free(s1);
    free(s8);
}
END_TEST

/* --- chi-square quantiles ----------------------------------------------------- */

START_TEST(chi2_quantile_known_values)
{
    /* dof 2 is exponential: q = -2 ln(1 - p). */
    ck_assert_double_eq_tol(sm_chi2_quantile(0.975, 2), -2.0 * log(0.025), 1e-12);
    ck_assert_double_eq_tol(sm_chi2_quantile(0.5, 2), 2.0 * log(2.0), 1e-12);
    /* dof 1: P(X <= q) = erf(sqrt(q / 2)). */
    double q = sm_chi2_quantile(0.975, 1);
    ck_assert_double_eq_tol(erf(sqrt(q / 2.0)), 0.975, 1e-13);
    /* Printed tables (Abramowitz & Stegun 26.8): 3 and 10 dof at 0.975. */
    ck_assert_double_eq_tol(sm_chi2_quantile(0.975, 3), 9.348, 5e-4);
    ck_assert_double_eq_tol(sm_chi2_quantile(0.975, 10), 20.483, 5e-4);
    ck_assert_double_eq_tol(sm_chi2_quantile(0.999, 50), 86.661, 5e-4);
    ck_assert(isnan(sm_chi2_quantile(0.0, 3)));
    ck_assert(isnan(sm_chi2_quantile(1.0, 3)));
    ck_assert(isnan(sm_chi2_quantile(0.5, 0)));
}
END_TEST

/* --- MCD -------------------------------------------------------------------------- */

/* Naive d^2 from the reported location and covariance: Gauss-Jordan inverse. */
static void ref_mahalanobis(double *d2, const float *x, size_t n, size_t d, const double *loc,
                            const double *cov)
{
    double *a = malloc(d * 2 * d * sizeof *a);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < 2 * d; j++)
            a[i * 2 * d + j] = j < d ? cov[i * d + j] : (j - d == i);
    for (size_t c = 0; c < d; c++) {
        size_t piv = c;
        for (size_t r = c + 1; r < d; r++)
            if (fabs(a[r * 2 * d + c]) > fabs(a[piv * 2 * d + c]))
                piv = r;
        for (size_t j = 0; j < 2 * d; j++) {
            double t = a[c * 2 * d + j];
            a[c * 2 * d + j] = a[piv * 2 * d + j];
            a[piv * 2 * d + j] = t;
        }
        double dv = a[c * 2 * d + c];
        for (size_t j = 0; j < 2 * d; j++)
            a[c * 2 * d + j] /= dv;
        for (size_t r = 0; r < d; r++)
            if (r != c) {
                double f = a[r * 2 * d + c];
                for (size_t j = 0; j < 2 * d; j++)
                    a[r * 2 * d + j] -= f * a[c * 2 * d + j];
            }
    }
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t p = 0; p < d; p++)
            for (size_t q = 0; q < d; q++)
                s += (x[i * d + p] - loc[p]) * a[p * 2 * d + d + q] * (x[i * d + q] - loc[q]);
        d2[i] = s;
    }
    free(a);
}

/* n rows: a Gaussian with covariance L L' (L lower 3x3) and the last
 * `outliers` rows shifted to (8, -8, 8). */
static float *contaminated(size_t n, size_t outliers, uint64_t seed)
{
    const double L[3][3] = {{1, 0, 0}, {0.5, 1.3229, 0}, {0, 0.2268, 0.6690}};
    float *x = malloc(n * 3 * sizeof *x);
    sm_rng r;
    sm_rng_init(&r, seed, 5);
    for (size_t i = 0; i < n; i++) {
        double z[3] = {sm_rng_normal(&r), sm_rng_normal(&r), sm_rng_normal(&r)};
        for (size_t a = 0; a < 3; a++) {
            double v = 0;
            for (size_t b = 0; b <= a; b++)
                v += L[a][b] * z[b];
            if (i >= n - outliers)
                v = (a == 1 ? -8.0 : 8.0) + 0.3 * z[a];
            x[i * 3 + a] = (float)v;
        }
    }
    return x;
}

static sm_mcd *fit_mcd(const float *x, size_t n, size_t d, uint64_t seed, int threads)
{
    sm_mcd_params p;
    sm_mcd_params_init(&p);
    p.seed = seed;
    p.n_threads = threads;
    p.n_trials = 100;
    sm_mcd *m = NULL;
    sm_error err;
    int rc = sm_mcd_fit(&p, x, n, d, d, &m, &err);
    ck_assert_msg(rc == SM_OK, "mcd: %s", err.msg);
    return m;
}

START_TEST(mcd_resists_contamination)
{
    /* 20% outliers: the robust estimate stays at the inliers' mean 0 and
     * covariance [[1,.5,0],[.5,2,.3],[0,.3,.5]]; with 800 inliers the
     * sampling sd of a mean is ~0.05 and of a variance ~0.1: allow 4-5 sd. */
    const size_t n = 1000, out = 200;
    float *x = contaminated(n, out, sm_test_seed(23));
    sm_mcd *m = fit_mcd(x, n, 3, sm_test_seed(23), 0);
    const double *loc = sm_mcd_location(m), *cov = sm_mcd_covariance(m);
    const double truth[9] = {1, 0.5, 0, 0.5, 2, 0.3, 0, 0.3, 0.5};
    for (size_t j = 0; j < 3; j++)
        ck_assert_double_eq_tol(loc[j], 0.0, 0.25);
    for (size_t j = 0; j < 9; j++)
        ck_assert_double_eq_tol(cov[j], truth[j], 0.25 * sqrt(truth[(j / 3) * 4] * truth[(j % 3) * 4]) + 0.05);
    ck_assert_uint_eq(sm_mcd_dof(m), 3);
    if (sm_test_seed(23) == 23) {
        /* scikit-learn 1.2.1 MinCovDet(random_state=0) on these exact 1000
         * rows (written out as float32 and fitted in Python): the same
         * support and, to print precision, the same reweighted estimate. */
        const double sk_loc[3] = {0.08864296, -0.00653693, -0.02764377};
        const double sk_cov[9] = {0.87289899, 0.39743665, 0.0020647, 0.39743665, 1.73592858,
                                  0.27942837, 0.0020647, 0.27942837, 0.50752102};
        ck_assert_uint_eq(sm_mcd_support_size(m), 791);
        for (size_t j = 0; j < 3; j++)
            ck_assert_double_eq_tol(loc[j], sk_loc[j], 1e-7);
        for (size_t j = 0; j < 9; j++)
            ck_assert_double_eq_tol(cov[j], sk_cov[j], 1e-7);
    }
    ck_assert_uint_le(sm_mcd_support_size(m), n - out + 10);
    ck_assert_uint_ge(sm_mcd_support_size(m), (n + 4) / 2);
    double *d2 = malloc(n * sizeof *d2), *ref = malloc(n * sizeof *ref);
    ck_assert_int_eq(sm_mcd_distance(m, d2, x, n, 3, 3, 0, NULL), SM_OK);
    ref_mahalanobis(ref, x, n, 3, loc, cov);
    double cut = sm_chi2_quantile(0.975, 3);
    size_t inliers_over = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_double_eq_tol(d2[i], ref[i], 1e-8 * (1 + ref[i]));
        if (i >= n - out)
            ck_assert_msg(d2[i] > 10 * cut, "outlier %zu has d2 %g", i, d2[i]);
        else
            inliers_over += d2[i] > cut;
    }
    ck_assert_uint_lt(inliers_over, (n - out) / 10); /* about 2.5% expected */
    free(d2);
    free(ref);
    sm_mcd_destroy(m);
    free(x);
}
END_TEST

START_TEST(mcd_large_n_and_threads)
{
    /* n > 1500 takes the subsample path; same bits for any thread count. */
    const size_t n = 4000, out = 400;
    float *x = contaminated(n, out, sm_test_seed(24));
    const int threads[] = {1, 2, 3, 8};
    double loc0[3], cov0[9], *d0 = malloc(n * sizeof *d0), *d2 = malloc(n * sizeof *d2);
    for (size_t t = 0; t < SM_ARRAY_LEN(threads); t++) {
        sm_mcd *m = fit_mcd(x, n, 3, sm_test_seed(24), threads[t]);
        ck_assert_int_eq(sm_mcd_distance(m, d2, x, n, 3, 3, threads[t], NULL), SM_OK);
        if (t == 0) {
            memcpy(loc0, sm_mcd_location(m), sizeof loc0);
            memcpy(cov0, sm_mcd_covariance(m), sizeof cov0);
            memcpy(d0, d2, n * sizeof *d0);
        }
        ck_assert_mem_eq(loc0, sm_mcd_location(m), sizeof loc0);
        ck_assert_mem_eq(cov0, sm_mcd_covariance(m), sizeof cov0);
        ck_assert_mem_eq(d0, d2, n * sizeof *d0);
        sm_mcd_destroy(m);
    }
    double cut = sm_chi2_quantile(0.975, 3);
    for (size_t i = n - out; i < n; i++)
        ck_assert(d0[i] > 10 * cut);
    for (size_t j = 0; j < 3; j++)
        ck_assert_double_eq_tol(loc0[j], 0.0, 0.15);
    free(d0);
    free(d2);
    free(x);
}
END_TEST

START_TEST(mcd_affine_equivariant)
{
    /* Rescaling and shifting columns leaves the distances unchanged: the
     * ridge is in robustly standardised units, so only float rounding of the
     * inputs differs. */
    const size_t n = 600;
    float *x = contaminated(n, 60, sm_test_seed(25));
    float *y = malloc(n * 3 * sizeof *y);
    const float a[3] = {1000.0f, 0.01f, -3.0f}, b[3] = {5e4f, -2.0f, 7.0f};
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < 3; j++)
            y[i * 3 + j] = a[j] * x[i * 3 + j] + b[j];
    sm_mcd *mx = fit_mcd(x, n, 3, sm_test_seed(25), 0), *my = fit_mcd(y, n, 3, sm_test_seed(25), 0);
    double *dx = malloc(n * sizeof *dx), *dy = malloc(n * sizeof *dy);
    ck_assert_int_eq(sm_mcd_distance(mx, dx, x, n, 3, 3, 0, NULL), SM_OK);
    ck_assert_int_eq(sm_mcd_distance(my, dy, y, n, 3, 3, 0, NULL), SM_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_double_eq_tol(dx[i], dy[i], 1e-3 * (1 + dx[i]));
    free(dx);
    free(dy);
    sm_mcd_destroy(mx);
    sm_mcd_destroy(my);
    free(x);
    free(y);
}
END_TEST

START_TEST(mcd_constant_and_mostly_constant_columns)
{
    /* Column 1 constant: left out (dof 2), location keeps 4.5. Column 2 is 0
     * in 70% of rows: the majority has no spread there, the ridge keeps the
     * distances finite. */
    const size_t n = 400, d = 3;
    float *x = gaussian(n, d, d, sm_test_seed(26));
    for (size_t i = 0; i < n; i++) {
        x[i * d + 1] = 4.5f;
        x[i * d + 2] = i % 10 < 7 ? 0.0f : (float)(1 + i % 3);
    }
    sm_mcd *m = fit_mcd(x, n, d, sm_test_seed(26), 0);
    ck_assert_uint_eq(sm_mcd_dof(m), 2);
    ck_assert_double_eq(sm_mcd_location(m)[1], 4.5);
    ck_assert_double_eq(sm_mcd_covariance(m)[1 * d + 1], 0.0);
    double *d2 = malloc(n * sizeof *d2);
    ck_assert_int_eq(sm_mcd_distance(m, d2, x, n, d, d, 0, NULL), SM_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert(isfinite(d2[i]) && d2[i] >= 0);
    free(d2);
    sm_mcd_destroy(m);
    free(x);
}
END_TEST

START_TEST(mcd_auto_ridge_tames_zero_inflated_columns)
{
    /* Column 2 is 0 for 80% of rows (a return rate): the majority has no
     * spread there. A negligible fixed ridge gives the other 20% distances
     * of order 1/ridge (an exact fit); the automatic MRCD-style ridge bounds
     * the start's condition number by 50, so they stay comparable with the
     * other columns' distances. Well-conditioned data get a negligible ridge. */
    const size_t n = 1000, d = 3;
    float *x = gaussian(n, d, d, sm_test_seed(28));
    for (size_t i = 0; i < n; i++)
        x[i * d + 2] = i % 5 == 0 ? (float)(0.05 + 0.01 * (double)(i % 7)) : 0.0f;
    sm_mcd_params p;
    sm_mcd_params_init(&p);
    p.n_trials = 50;
    double *d_auto = malloc(n * sizeof *d_auto), *d_tiny = malloc(n * sizeof *d_tiny);
    sm_mcd *m = NULL;
    ck_assert_int_eq(sm_mcd_fit(&p, x, n, d, d, &m, NULL), SM_OK);
    ck_assert_double_gt(sm_mcd_ridge(m), 1e-3);
    ck_assert_int_eq(sm_mcd_distance(m, d_auto, x, n, d, d, 0, NULL), SM_OK);
    sm_mcd_destroy(m);
    p.ridge = 1e-9;
    ck_assert_int_eq(sm_mcd_fit(&p, x, n, d, d, &m, NULL), SM_OK);
    ck_assert_double_eq(sm_mcd_ridge(m), 1e-9);
    ck_assert_int_eq(sm_mcd_distance(m, d_tiny, x, n, d, d, 0, NULL), SM_OK);
    sm_mcd_destroy(m);
    for (size_t i = 0; i < n; i += 5) {
        ck_assert_double_gt(d_tiny[i], 1e5);
        ck_assert_double_lt(d_auto[i], 1e4);
    }
    /* The Gaussian blob alone is well conditioned: the automatic ridge is
     * the 1e-9 relative floor. */
    float *g = gaussian(n, d, d, sm_test_seed(29));
    p.ridge = 0.0;
    ck_assert_int_eq(sm_mcd_fit(&p, g, n, d, d, &m, NULL), SM_OK);
    ck_assert_double_lt(sm_mcd_ridge(m), 1e-8);
    sm_mcd_destroy(m);
    free(g);
    free(d_auto);
    free(d_tiny);
    free(x);
}
END_TEST

START_TEST(mcd_rejects_bad_input)
{
    float x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    sm_mcd_params p;
    sm_mcd_params_init(&p);
    sm_mcd *m = (sm_mcd *)x;
    sm_error err;
    ck_assert_int_eq(sm_mcd_fit(&p, x, 3, 2, 2, &m, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err.msg, "n_samples=3"));
    float c[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    ck_assert_int_eq(sm_mcd_fit(&p, c, 4, 2, 2, &m, &err), SM_ERR_NUMERIC);
    p.support_fraction = 0.3;
    ck_assert_int_eq(sm_mcd_params_check(&p, &err), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(err.field, "support_fraction");
    sm_mcd_params_init(&p);
    p.ridge = -1;
    ck_assert_int_eq(sm_mcd_params_check(&p, &err), SM_ERR_INVALID_ARG);
    sm_mcd_params_init(&p);
    p.n_trials = 0;
    ck_assert_int_eq(sm_mcd_params_check(&p, &err), SM_ERR_INVALID_ARG);
    sm_mcd_destroy(NULL);
}
END_TEST

/* --- OOM for the robust detectors ------------------------------------------------ */

START_TEST(robust_oom_loops)
{
    const size_t n = 300;
    float *x = contaminated(n, 30, sm_test_seed(27));
    sm_mcd_params p;
    sm_mcd_params_init(&p);
    p.n_trials = 20;
    p.n_threads = 2;
    int rc = SM_ERR_NOMEM;
    for (uint64_t nth = 1; rc == SM_ERR_NOMEM; nth++) {
        sm_mcd *m = NULL;
        sm_alloc_fail_at(nth, nth % 3 == 0);
        rc = sm_mcd_fit(&p, x, n, 3, 3, &m, NULL);
        sm_alloc_fail_at(0, false);
        ck_assert_msg(rc == SM_OK || rc == SM_ERR_NOMEM, "nth %" PRIu64 ": %d", nth, rc);
        if (rc == SM_ERR_NOMEM)
            ck_assert_ptr_null(m);
        sm_mcd_destroy(m);
    }
    sm_cluster_id labels[300];
    for (size_t i = 0; i < n; i++)
        labels[i] = (sm_cluster_id)(i % 4);
    double s[300], med[4], scl[4], thr;
    rc = SM_ERR_NOMEM;
    for (uint64_t nth = 1; rc == SM_ERR_NOMEM; nth++) {
        sm_alloc_fail_at(nth, false);
        rc = sm_centroid_outliers(s, med, scl, x, n, 3, 3, labels, NULL, 4, 2, NULL);
        sm_alloc_fail_at(0, false);
        ck_assert(rc == SM_OK || rc == SM_ERR_NOMEM);
    }
    rc = SM_ERR_NOMEM;
    for (uint64_t nth = 1; rc == SM_ERR_NOMEM; nth++) {
        sm_alloc_fail_at(nth, false);
        rc = sm_robust_column_stats(med, scl, x, n, 3, 3, 2, NULL);
        sm_alloc_fail_at(0, false);
        ck_assert(rc == SM_OK || rc == SM_ERR_NOMEM);
    }
    rc = SM_ERR_NOMEM;
    for (uint64_t nth = 1; rc == SM_ERR_NOMEM; nth++) {
        sm_alloc_fail_at(nth, false);
        rc = sm_anomaly_threshold(&thr, s, n, 0.1, NULL);
        sm_alloc_fail_at(0, false);
        ck_assert(rc == SM_OK || rc == SM_ERR_NOMEM);
    }
    const uint64_t off[] = {0, 100, 300};
    double v[300], ts[300];
    for (size_t i = 0; i < 300; i++)
        v[i] = x[i];
    rc = SM_ERR_NOMEM;
    for (uint64_t nth = 1; rc == SM_ERR_NOMEM; nth++) {
        sm_alloc_fail_at(nth, false);
        rc = sm_transaction_outliers(ts, NULL, NULL, off, v, 2, 3, 2, NULL);
        sm_alloc_fail_at(0, false);
        ck_assert(rc == SM_OK || rc == SM_ERR_NOMEM);
    }
    free(x);
}
END_TEST

/* --- suite ----------------------------------------------------------------- */

static Suite *anomaly_suite(void)
{
    Suite *s = suite_create("anomaly");
    TCase *core = tcase_create("core");
    tcase_add_test(core, iforest_c_hand_values);
    tcase_add_test(core, iforest_two_points_score_half);
    tcase_add_test(core, iforest_three_points_hand_expectation);
    tcase_add_test(core, iforest_planted_outlier_gets_top_score);
    tcase_add_test(core, iforest_matches_naive_reference);
    tcase_add_test(core, iforest_tree_invariants);
    tcase_add_test(core, iforest_save_load_round_trip);
    tcase_add_test(core, iforest_progress_and_cancel);
    tcase_add_test(core, threshold_matches_numpy_percentile);
    tcase_add_test(core, column_stats_hand_cases);
    tcase_add_test(core, column_stats_match_reference_any_threads);
    tcase_add_test(core, centroid_hand_case);
    tcase_add_test(core, centroid_from_given_distances);
    tcase_add_test(core, centroid_matches_reference_and_flags_misfit);
    tcase_add_test(core, transactions_hand_case);
    tcase_add_test(core, transactions_reference_threads_and_errors);
    tcase_add_test(core, chi2_quantile_known_values);
    tcase_add_test(core, mcd_resists_contamination);
    tcase_add_test(core, mcd_affine_equivariant);
    suite_add_tcase(s, core);

    TCase *edge = tcase_create("edge");
    tcase_add_test(edge, iforest_constant_columns_never_split);
    tcase_add_test(edge, iforest_all_constant_scores_half);
    tcase_add_test(edge, iforest_small_n_uses_n_as_psi);
    tcase_add_test(edge, iforest_duplicates_and_extreme_values);
    tcase_add_test(edge, mcd_constant_and_mostly_constant_columns);
    tcase_add_test(edge, mcd_auto_ridge_tames_zero_inflated_columns);
    suite_add_tcase(s, edge);

    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, iforest_rejects_bad_arguments);
    tcase_add_test(errors, iforest_corrupted_model_refused);
    tcase_add_test(errors, threshold_rejects_bad_contamination);
    tcase_add_test(errors, mcd_rejects_bad_input);
    suite_add_tcase(s, errors);

    TCase *determinism = tcase_create("determinism");
    tcase_add_test(determinism, iforest_same_bits_for_any_thread_count);
    tcase_add_test(determinism, iforest_row_alone_equals_batch);
    tcase_add_test(determinism, mcd_large_n_and_threads);
    suite_add_tcase(s, determinism);

    TCase *oom = tcase_create("oom");
    tcase_add_test(oom, iforest_oom_loop);
    tcase_add_test(oom, robust_oom_loops);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    /* As the CLI does: BLAS runs single-threaded inside our OpenMP regions
     * (Debian's OpenBLAS is the pthread build and would oversubscribe). */
    openblas_set_num_threads(1);
    return sm_test_run(anomaly_suite());
}
