/* SPDX-License-Identifier: MIT */
/*
 * Cluster-quality indices and column scaling: a fixed example checked against
 * scikit-learn 1.2.1's values (silhouette_score, calinski_harabasz_score,
 * davies_bouldin_score, StandardScaler, RobustScaler), naive double-precision
 * references on random data, the edge rules, thread-count independence and
 * the out-of-memory loop.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/scale.h"
#include "kernels/cluster_metrics.h"
#include "kernels/core.h"
#include "kernels/rng.h"
#include "segmint/kmeans.h"
#include "testutil.h"

/* Ten points, three clusters. scikit-learn 1.2.1 gives silhouette 0.6547735
 * (float32 input), and from the same values as float64 (what we compute in)
 * Calinski-Harabasz 12.709293680297396, Davies-Bouldin 0.9934040338982739. */
static const float ten[] = {0, 0, 0, 1, 1, 0, 1, 1, 10, 10, 10, 11, 11, 10, 11, 11, 5, 6, 20, 0};
static const sm_cluster_id ten_labels[] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2};

START_TEST(indices_match_scikit_learn_on_a_fixed_example)
{
    double v;
    sm_error err;
    ck_assert_int_eq(sm_silhouette_score(&v, ten, 10, 2, 2, ten_labels, 3, 0, 1, 1, &err), SM_OK);
    ck_assert_double_eq_tol(v, 0.6547735, 1e-6); /* sklearn's float32 result: 7 digits */
    ck_assert_int_eq(sm_calinski_harabasz_score(&v, ten, 10, 2, 2, ten_labels, 3, 1, &err), SM_OK);
    ck_assert_double_eq_tol(v, 12.709293680297396, 1e-12);
    ck_assert_int_eq(sm_davies_bouldin_score(&v, ten, 10, 2, 2, ten_labels, 3, 1, &err), SM_OK);
    ck_assert_double_eq_tol(v, 0.9934040338982739, 1e-13);
}
END_TEST

/* --- naive references ------------------------------------------------------------- */

static double ref_dist(const float *a, const float *b, size_t d)
{
    double s = 0.0;
    for (size_t f = 0; f < d; f++)
        s += ((double)a[f] - b[f]) * ((double)a[f] - b[f]);
    return sqrt(s);
}

static double ref_silhouette(const float *x, size_t n, size_t d, const sm_cluster_id *l, size_t k)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double *sum = calloc(k, sizeof(double));
        size_t *cnt = calloc(k, sizeof(size_t));
        for (size_t j = 0; j < n; j++) {
            sum[l[j]] += ref_dist(x + i * d, x + j * d, d);
            cnt[l[j]]++;
        }
        if (cnt[l[i]] > 1) {
            double a = sum[l[i]] / (double)(cnt[l[i]] - 1), b = INFINITY;
            for (size_t c = 0; c < k; c++)
                if (c != l[i] && cnt[c] > 0 && sum[c] / (double)cnt[c] < b)
                    b = sum[c] / (double)cnt[c];
            total += (b - a) / fmax(a, b);
        }
        free(sum);
        free(cnt);
    }
    return total / (double)n;
}

static void ref_means(double *means, size_t *cnt, const float *x, size_t n, size_t d,
                      const sm_cluster_id *l, size_t k)
{
    memset(means, 0, k * d * sizeof(double));
    memset(cnt, 0, k * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        cnt[l[i]]++;
        for (size_t f = 0; f < d; f++)
            means[l[i] * d + f] += x[i * d + f];
    }
    for (size_t j = 0; j < k; j++)
        for (size_t f = 0; f < d; f++)
            means[j * d + f] /= (double)cnt[j];
}

static double ref_ch(const float *x, size_t n, size_t d, const sm_cluster_id *l, size_t k)
{
    double *means = malloc(k * d * sizeof(double)), mu[64] = {0}, extra = 0, intra = 0;
    size_t *cnt = malloc(k * sizeof(size_t));
    ref_means(means, cnt, x, n, d, l, k);
    for (size_t i = 0; i < n; i++)
        for (size_t f = 0; f < d; f++)
            mu[f] += x[i * d + f] / (double)n;
    for (size_t j = 0; j < k; j++)
        for (size_t f = 0; f < d; f++)
            extra += (double)cnt[j] * (means[j * d + f] - mu[f]) * (means[j * d + f] - mu[f]);
    for (size_t i = 0; i < n; i++)
        for (size_t f = 0; f < d; f++)
            intra += (x[i * d + f] - means[l[i] * d + f]) * (x[i * d + f] - means[l[i] * d + f]);
    free(means);
    free(cnt);
    return extra * (double)(n - k) / (intra * (double)(k - 1));
}

static double ref_db(const float *x, size_t n, size_t d, const sm_cluster_id *l, size_t k)
{
    double *means = malloc(k * d * sizeof(double)), *s = calloc(k, sizeof(double)), total = 0;
    size_t *cnt = malloc(k * sizeof(size_t));
    ref_means(means, cnt, x, n, d, l, k);
    for (size_t i = 0; i < n; i++) {
        double e = 0;
        for (size_t f = 0; f < d; f++)
            e += (x[i * d + f] - means[l[i] * d + f]) * (x[i * d + f] - means[l[i] * d + f]);
        s[l[i]] += sqrt(e) / (double)cnt[l[i]];
    }
    for (size_t a = 0; a < k; a++) {
        double worst = 0;
        for (size_t b = 0; b < k; b++) {
            if (a == b)
                continue;
            double m = 0;
            for (size_t f = 0; f < d; f++)
                m += (means[a * d + f] - means[b * d + f]) * (means[a * d + f] - means[b * d + f]);
            worst = fmax(worst, (s[a] + s[b]) / sqrt(m));
        }
        total += worst;
    }
    free(means);
    free(s);
    free(cnt);
    return total / (double)k;
}

static float *random_clusters(size_t n, size_t d, size_t k, sm_cluster_id *labels, uint64_t seed)
{
    float *x = malloc(n * d * sizeof(float));
    sm_rng rng;
    sm_rng_init(&rng, seed, 0);
    for (size_t i = 0; i < n; i++) {
        labels[i] = (sm_cluster_id)(i % k);
        for (size_t f = 0; f < d; f++)
            x[i * d + f] = (float)(3.0 * (double)labels[i] * (f % 2 ? -1 : 1) + sm_rng_normal(&rng));
    }
    return x;
}

START_TEST(indices_match_naive_references)
{
    size_t n = 9000, d = 5, k = 4;
    sm_cluster_id *l = malloc(n * sizeof *l);
    float *x = random_clusters(n, d, k, l, sm_test_seed(3));
    sm_error err;
    double v;
    ck_assert_int_eq(sm_calinski_harabasz_score(&v, x, n, d, d, l, (int)k, 2, &err), SM_OK);
    double ref = ref_ch(x, n, d, l, k);
    ck_assert_double_eq_tol(v, ref, 1e-10 * ref);
    ck_assert_int_eq(sm_davies_bouldin_score(&v, x, n, d, d, l, (int)k, 2, &err), SM_OK);
    ref = ref_db(x, n, d, l, k);
    ck_assert_double_eq_tol(v, ref, 1e-10 * ref);
    /* the silhouette of all rows of a 1200-row prefix: float distances, so
     * ~1e-6 relative per distance */
    size_t m = 1200;
    ck_assert_int_eq(sm_silhouette_score(&v, x, m, d, d, l, (int)k, 0, 1, 2, &err), SM_OK);
    ck_assert_double_eq_tol(v, ref_silhouette(x, m, d, l, k), 1e-5);
    free(x);
    free(l);
}
END_TEST

START_TEST(silhouette_sample_is_seeded_and_thread_independent)
{
    size_t n = 20000, d = 3, k = 5;
    sm_cluster_id *l = malloc(n * sizeof *l);
    float *x = random_clusters(n, d, k, l, sm_test_seed(4));
    sm_error err;
    double a, b, c, full;
    ck_assert_int_eq(sm_silhouette_score(&a, x, n, d, d, l, (int)k, 2000, 42, 1, &err), SM_OK);
    ck_assert_int_eq(sm_silhouette_score(&b, x, n, d, d, l, (int)k, 2000, 42, 3, &err), SM_OK);
    ck_assert_int_eq(sm_silhouette_score(&c, x, n, d, d, l, (int)k, 2000, 43, 2, &err), SM_OK);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
    ck_assert(a != c);
    ck_assert_int_eq(sm_silhouette_score(&full, x, 6000, d, d, l, (int)k, 0, 0, 2, &err), SM_OK);
    /* a 2000-row sample estimates the mean of per-row values in [-1, 1] */
    ck_assert_double_eq_tol(a, full, 0.05);
    double ch1, ch8, db1, db8;
    sm_calinski_harabasz_score(&ch1, x, n, d, d, l, (int)k, 1, &err);
    sm_calinski_harabasz_score(&ch8, x, n, d, d, l, (int)k, 8, &err);
    sm_davies_bouldin_score(&db1, x, n, d, d, l, (int)k, 1, &err);
    sm_davies_bouldin_score(&db8, x, n, d, d, l, (int)k, 8, &err);
    ck_assert(memcmp(&ch1, &ch8, sizeof ch1) == 0);
    ck_assert(memcmp(&db1, &db8, sizeof db1) == 0);
    free(x);
    free(l);
}
END_TEST

START_TEST(index_edge_rules)
{
    sm_error err;
    double v;
    const sm_cluster_id one[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ck_assert_int_eq(sm_silhouette_score(&v, ten, 10, 2, 2, one, 3, 0, 1, 1, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "number of labels is 1"));
    ck_assert_int_eq(sm_calinski_harabasz_score(&v, ten, 10, 2, 2, one, 1, 1, &err), SM_ERR_INVALID_ARG);
    ck_assert_int_eq(sm_davies_bouldin_score(&v, ten, 10, 2, 2, one, 1, 1, &err), SM_ERR_INVALID_ARG);
    const sm_cluster_id each[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    ck_assert_int_eq(sm_silhouette_score(&v, ten, 10, 2, 2, each, 10, 0, 1, 1, &err), SM_ERR_INVALID_ARG);
    const sm_cluster_id bad[] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 7};
    ck_assert_int_eq(sm_calinski_harabasz_score(&v, ten, 10, 2, 2, bad, 3, 1, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "row 10"));
    /* tight clusters: CH is 1 when the within dispersion is 0 (sklearn's rule),
     * DB 0 when every cluster has zero spread */
    const float pairs[] = {1, 1, 1, 1, 5, 5, 5, 5};
    const sm_cluster_id pl[] = {0, 0, 1, 1};
    ck_assert_int_eq(sm_calinski_harabasz_score(&v, pairs, 4, 2, 2, pl, 2, 1, &err), SM_OK);
    ck_assert_double_eq(v, 1.0);
    ck_assert_int_eq(sm_davies_bouldin_score(&v, pairs, 4, 2, 2, pl, 2, 1, &err), SM_OK);
    ck_assert_double_eq(v, 0.0);
    /* singletons in a cluster score 0 in the silhouette: (0,0) alone, the
     * others two tight pairs far away: mean = (0 + 4 * s) / 5 */
    const float three[] = {0, 0, 9, 9, 9, 10, 20, 20, 20, 21};
    const sm_cluster_id tl[] = {0, 1, 1, 2, 2};
    ck_assert_int_eq(sm_silhouette_score(&v, three, 5, 2, 2, tl, 3, 0, 1, 1, &err), SM_OK);
    ck_assert_double_eq_tol(v, ref_silhouette(three, 5, 2, tl, 3), 1e-6);
}
END_TEST

/* --- scaling ---------------------------------------------------------------------- */

static const float five[] = {1, 100, 2, 300, 3, 250, 4, 50, 10, 4000};

START_TEST(scalers_match_scikit_learn)
{
    sm_scaler s;
    sm_error err;
    ck_assert_int_eq(sm_scaler_fit(&s, five, 5, 2, 2, SM_SCALE_ZSCORE, NULL, NULL, 1, &err), SM_OK);
    ck_assert_double_eq_tol(s.center[0], 4.0, 1e-12);
    ck_assert_double_eq_tol(s.center[1], 940.0, 1e-9);
    ck_assert_double_eq_tol(s.scale[0], 3.16227766, 1e-8);
    ck_assert_double_eq_tol(s.scale[1], 1532.77526076, 1e-7);
    sm_scaler_free(&s);
    ck_assert_int_eq(sm_scaler_fit(&s, five, 5, 2, 2, SM_SCALE_ROBUST, NULL, NULL, 2, &err), SM_OK);
    ck_assert_double_eq(s.center[0], 3.0);
    ck_assert_double_eq(s.center[1], 250.0);
    ck_assert_double_eq(s.scale[0], 2.0);
    ck_assert_double_eq(s.scale[1], 200.0);
    sm_scaler_free(&s);
    const bool logs[] = {false, true};
    ck_assert_int_eq(sm_scaler_fit(&s, five, 5, 2, 2, SM_SCALE_ROBUST, logs, NULL, 1, &err), SM_OK);
    ck_assert_double_eq_tol(s.center[1], 5.52545294, 1e-8);
    ck_assert_double_eq_tol(s.scale[1], 1.09198975, 1e-8);
    /* transform then inverse gives the rows back (float rounding) */
    float t[10], back[10];
    sm_scaler_transform(&s, t, 2, five, 5, 2);
    ck_assert_float_eq_tol(t[1], (float)((log1p(100.0) - 5.52545294) / 1.09198975), 1e-6);
    sm_scaler_inverse(&s, back, t, 5);
    for (int i = 0; i < 10; i++)
        ck_assert_float_eq_tol(back[i], five[i], 1e-5f * fabsf(five[i]));
    sm_scaler_free(&s);
}
END_TEST

START_TEST(robust_percentiles_interpolate_like_numpy)
{
    /* numpy.percentile([7, 1, 3, 3, 9, 2], [25, 50, 75]) = [2.25, 3.0, 6.0] */
    const float col[] = {7, 1, 3, 3, 9, 2};
    sm_scaler s;
    sm_error err;
    ck_assert_int_eq(sm_scaler_fit(&s, col, 6, 1, 1, SM_SCALE_ROBUST, NULL, NULL, 1, &err), SM_OK);
    ck_assert_double_eq(s.center[0], 3.0);
    ck_assert_double_eq(s.scale[0], 6.0 - 2.25);
    sm_scaler_free(&s);
    /* constant column: scale stays 1 */
    const float flat[] = {4, 4, 4, 4};
    ck_assert_int_eq(sm_scaler_fit(&s, flat, 4, 1, 1, SM_SCALE_ROBUST, NULL, NULL, 1, &err), SM_OK);
    ck_assert_double_eq(s.scale[0], 1.0);
    sm_scaler_free(&s);
    ck_assert_int_eq(sm_scaler_fit(&s, flat, 4, 1, 1, SM_SCALE_ZSCORE, NULL, NULL, 1, &err), SM_OK);
    ck_assert_double_eq(s.scale[0], 1.0);
    sm_scaler_free(&s);
    /* many ties and a long column against a sorted reference */
    size_t n = 10001;
    float *v = malloc(n * sizeof(float));
    double *sorted = malloc(n * sizeof(double));
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(8), 0);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)sm_rng_below(&rng, 50);
    for (size_t i = 0; i < n; i++)
        sorted[i] = v[i];
    for (size_t i = 1; i < n; i++) /* insertion sort: the reference, not the code under test */
        for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            double t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    ck_assert_int_eq(sm_scaler_fit(&s, v, n, 1, 1, SM_SCALE_ROBUST, NULL, NULL, 1, &err), SM_OK);
    ck_assert_double_eq(s.center[0], sorted[5000]);
    ck_assert_double_eq(s.scale[0] == 1.0 ? 0.0 : s.scale[0], sorted[7500] - sorted[2500]);
    sm_scaler_free(&s);
    free(v);
    free(sorted);
}
END_TEST

START_TEST(log1p_refuses_values_at_or_below_minus_one)
{
    const float x[] = {1, 2, 3, -1, 5, 6};
    const bool logs[] = {false, true};
    const char *names[] = {"frequency", "monetary_total"};
    sm_scaler s;
    sm_error err;
    ck_assert_int_eq(sm_scaler_fit(&s, x, 3, 2, 2, SM_SCALE_ZSCORE, logs, names, 1, &err), SM_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(err.msg, "column \"monetary_total\", row 2"));
    sm_scale_method m;
    ck_assert_int_eq(sm_scale_method_parse("robust", &m), SM_OK);
    ck_assert_int_eq(m, SM_SCALE_ROBUST);
    ck_assert_int_eq(sm_scale_method_parse("minmax", &m), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(sm_scale_method_name(SM_SCALE_ZSCORE), "zscore");
}
END_TEST

START_TEST(out_of_memory_is_reported_cleanly)
{
    size_t n = 3000, d = 3, k = 4;
    sm_cluster_id *l = malloc(n * sizeof *l);
    float *x = random_clusters(n, d, k, l, sm_test_seed(5));
    for (int which = 0; which < 4; which++)
        for (uint64_t nth = 1;; nth++) {
            sm_error err;
            double v;
            sm_scaler s;
            sm_alloc_fail_at(nth, false);
            int rc = which == 0   ? sm_silhouette_score(&v, x, n, d, d, l, (int)k, 500, 1, 2, &err)
                     : which == 1 ? sm_calinski_harabasz_score(&v, x, n, d, d, l, (int)k, 2, &err)
                     : which == 2 ? sm_davies_bouldin_score(&v, x, n, d, d, l, (int)k, 2, &err)
                                  : sm_scaler_fit(&s, x, n, d, d, SM_SCALE_ROBUST, NULL, NULL, 2, &err);
            sm_alloc_fail_at(0, false);
            if (rc == SM_OK) {
                if (which == 3)
                    sm_scaler_free(&s);
                break;
            }
            ck_assert_int_eq(rc, SM_ERR_NOMEM);
            ck_assert_uint_lt(nth, 100);
        }
    free(x);
    free(l);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("cluster_metrics");
    TCase *core = tcase_create("core");
    tcase_add_test(core, indices_match_scikit_learn_on_a_fixed_example);
    tcase_add_test(core, indices_match_naive_references);
    tcase_add_test(core, silhouette_sample_is_seeded_and_thread_independent);
    tcase_add_test(core, scalers_match_scikit_learn);
    tcase_add_test(core, robust_percentiles_interpolate_like_numpy);
    suite_add_tcase(s, core);
    TCase *edge = tcase_create("edge");
    tcase_add_test(edge, index_edge_rules);
    tcase_add_test(edge, log1p_refuses_values_at_or_below_minus_one);
    suite_add_tcase(s, edge);
    TCase *oom = tcase_create("oom");
    tcase_add_test(oom, out_of_memory_is_reported_cleanly);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    return sm_test_run(metrics_suite());
}
