/* SPDX-License-Identifier: MIT */
/*
 * k-means: the distance kernels against naive loops, hand-computed cases, a
 * naive double-precision Lloyd as the reference, agreement of every exact
 * algorithm from the same start, the B7 rows (k <= 0, k > n, fewer distinct
 * points than k, all points identical), empty-cluster relocation, bit-identical
 * results across thread counts (F11) and the out-of-memory loop.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"
#include "kernels/kmeans_dist.h"
#include "kernels/rng.h"
#include "segmint/kmeans.h"
#include "testutil.h"

/* --- data and references ---------------------------------------------------------- */

/* n rows of d floats (leading dimension ld) around `blobs` centers drawn
 * uniformly in [-spread, spread]^d, unit normal noise. Caller frees. */
static float *make_blobs(size_t n, size_t d, size_t ld, size_t blobs, double spread, uint64_t seed)
{
    float *x = malloc(n * ld * sizeof(float));
    double *centers = malloc(blobs * d * sizeof(double));
    sm_rng rng;
    sm_rng_init(&rng, seed, 0);
    for (size_t j = 0; j < blobs * d; j++)
        centers[j] = (2.0 * sm_rng_uniform(&rng) - 1.0) * spread;
    for (size_t i = 0; i < n; i++) {
        size_t b = (size_t)sm_rng_below(&rng, blobs);
        for (size_t f = 0; f < ld; f++)
            x[i * ld + f] = f < d ? (float)(centers[b * d + f] + sm_rng_normal(&rng)) : 12345.0f;
    }
    free(centers);
    return x;
}

static double dist2_double(const float *a, const float *b, size_t d)
{
    double s = 0.0;
    for (size_t f = 0; f < d; f++) {
        double t = (double)a[f] - (double)b[f];
        s += t * t;
    }
    return s;
}

static size_t nearest_double(const float *x, const float *c, size_t k, size_t d)
{
    size_t best = 0;
    double bd = INFINITY;
    for (size_t j = 0; j < k; j++) {
        double v = dist2_double(x, c + j * d, d);
        if (v < bd) {
            bd = v;
            best = j;
        }
    }
    return best;
}

/* The textbook Lloyd in double with scikit-learn's stopping rules (no empty
 * clusters in the data it is given). Returns the iterations run. */
static int ref_lloyd(sm_cluster_id *labels, float *centers, const float *x, size_t n, size_t d,
                     size_t ld, size_t k, int max_iter, double tol_scaled)
{
    double *sums = calloc(k * d, sizeof(double));
    size_t *counts = calloc(k, sizeof(size_t));
    sm_cluster_id *prev = malloc(n * sizeof *prev);
    for (size_t i = 0; i < n; i++)
        prev[i] = (sm_cluster_id)-1;
    int it;
    bool strict = false;
    for (it = 0; it < max_iter; it++) {
        memset(sums, 0, k * d * sizeof(double));
        memset(counts, 0, k * sizeof(size_t));
        size_t changed = 0;
        for (size_t i = 0; i < n; i++) {
            labels[i] = (sm_cluster_id)nearest_double(x + i * ld, centers, k, d);
            changed += labels[i] != prev[i];
            prev[i] = labels[i];
            counts[labels[i]]++;
            for (size_t f = 0; f < d; f++)
                sums[labels[i] * d + f] += x[i * ld + f];
        }
        double shift = 0.0;
        for (size_t j = 0; j < k; j++) {
            ck_assert_msg(counts[j] > 0, "reference data must not empty a cluster");
            for (size_t f = 0; f < d; f++) {
                float v = (float)(sums[j * d + f] / (double)counts[j]);
                double t = (double)v - centers[j * d + f];
                shift += t * t;
                centers[j * d + f] = v;
            }
        }
        if (it > 0 && changed == 0) {
            strict = true;
            it++;
            break;
        }
        if (shift <= tol_scaled) {
            it++;
            break;
        }
    }
    if (!strict)
        for (size_t i = 0; i < n; i++)
            labels[i] = (sm_cluster_id)nearest_double(x + i * ld, centers, k, d);
    free(sums);
    free(counts);
    free(prev);
    return it;
}

static double ref_inertia(const float *x, size_t n, size_t d, size_t ld, const sm_cluster_id *labels,
                          const float *centers)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += dist2_double(x + i * ld, centers + (size_t)labels[i] * d, d);
    return s;
}

static double mean_variance(const float *x, size_t n, size_t d, size_t ld)
{
    double total = 0.0;
    for (size_t f = 0; f < d; f++) {
        double m = 0.0, v = 0.0;
        for (size_t i = 0; i < n; i++)
            m += x[i * ld + f];
        m /= (double)n;
        for (size_t i = 0; i < n; i++)
            v += (x[i * ld + f] - m) * (x[i * ld + f] - m);
        total += v / (double)n;
    }
    return total / (double)d;
}

typedef struct fit_out {
    sm_cluster_id *labels;
    float *centers;
    sm_kmeans_result res;
} fit_out;

static void fit_out_free(fit_out *o)
{
    free(o->labels);
    free(o->centers);
}

/* Fits and copies the results out; fails the test on error. */
static fit_out fit(const sm_kmeans_params *p, const float *x, const float *init)
{
    sm_kmeans *km = NULL;
    sm_error err;
    fit_out o = {NULL, NULL, {0}};
    int rc = sm_kmeans_create(p, &km, &err);
    ck_assert_msg(rc == SM_OK, "create: %s", err.msg);
    rc = sm_kmeans_fit(km, x, init, &err);
    ck_assert_msg(rc == SM_OK, "fit: %s", err.msg);
    ck_assert_int_eq(sm_kmeans_get_result(km, &o.res), SM_OK);
    o.labels = malloc(p->n * sizeof *o.labels);
    o.centers = malloc((size_t)p->k * p->d * sizeof(float));
    memcpy(o.labels, sm_kmeans_get_labels(km), p->n * sizeof *o.labels);
    memcpy(o.centers, sm_kmeans_get_centers(km), (size_t)p->k * p->d * sizeof(float));
    sm_kmeans_destroy(km);
    return o;
}

static sm_kmeans_params params_for(size_t n, size_t d, int k)
{
    sm_kmeans_params p;
    sm_kmeans_params_init(&p);
    p.n = n;
    p.d = d;
    p.k = k;
    p.seed = sm_test_seed(7);
    return p;
}

static void assert_centers_close(const float *a, const float *b, size_t k, size_t d, double rel,
                                 const char *what)
{
    for (size_t j = 0; j < k * d; j++) {
        double scale = fmax(1.0, fmax(fabs(a[j]), fabs(b[j])));
        ck_assert_msg(fabs((double)a[j] - b[j]) <= rel * scale, "%s: center value %zu: %.9g vs %.9g",
                      what, j, a[j], b[j]);
    }
}

/* --- distance kernels ---------------------------------------------------------------- */

START_TEST(kernels_match_naive_loops)
{
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(11), 0);
    const size_t ds[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 40};
    const size_t ks[] = {1, 2, 5, 16, 17, 33, 70};
    for (size_t a = 0; a < SM_ARRAY_LEN(ds); a++)
        for (size_t b = 0; b < SM_ARRAY_LEN(ks); b++) {
            size_t d = ds[a], k = ks[b], rows = 37, ld = d + 3;
            float *x = malloc(rows * ld * sizeof(float)), *c = malloc(k * d * sizeof(float));
            for (size_t i = 0; i < rows * ld; i++)
                x[i] = (float)(sm_rng_uniform(&rng) * 4.0 - 2.0);
            for (size_t i = 0; i < k * d; i++)
                c[i] = (float)(sm_rng_uniform(&rng) * 4.0 - 2.0);
            size_t np = km_panel_count(k), lanes = np * KM_LANES;
            float *panels = sm_aligned_alloc(np * d * KM_LANES, sizeof(float));
            float *bias = sm_aligned_alloc(lanes, sizeof(float));
            float *small = sm_aligned_alloc(k * 16, sizeof(float));
            float *all = malloc(rows * lanes * sizeof(float)), *dd = malloc(rows * sizeof(float));
            float *xc = sm_aligned_alloc(rows * d, sizeof(float));
            float *mean = calloc(d, sizeof(float));
            sm_cluster_id *lab = malloc(rows * sizeof *lab);
            km_pack_direct(panels, c, d, k, d);
            km_dist_direct(all, lanes, x, ld, rows, d, panels, np);
            for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < k; j++) {
                    double ref = dist2_double(x + r * ld, c + j * d, d);
                    /* float sums of d squares: relative error below d * 2^-23 */
                    ck_assert_msg(fabs(all[r * lanes + j] - ref) <= 1e-6 * (double)d * (ref + 1e-3),
                                  "dist d=%zu k=%zu r=%zu j=%zu", d, k, r, j);
                    ck_assert_float_eq_tol(km_dist2(x + r * ld, c + j * d, d), all[r * lanes + j],
                                           1e-6 * (double)d * (ref + 1e-3));
                }
            km_argmin_direct(lab, dd, x, ld, rows, d, panels, np);
            for (size_t r = 0; r < rows; r++) {
                /* the arg-min of the kernel's own distances, ties to the smallest */
                size_t best = 0;
                for (size_t j = 1; j < k; j++)
                    if (all[r * lanes + j] < all[r * lanes + best])
                        best = j;
                ck_assert_uint_eq(lab[r], best);
                ck_assert_float_eq(dd[r], all[r * lanes + best]);
            }
            if (d <= 16) {
                km_pack_small(small, c, d, k, d);
                sm_cluster_id *lab2 = malloc(rows * sizeof *lab2);
                float *dd2 = malloc(rows * sizeof(float));
                km_argmin_small(lab2, dd2, x, ld, rows, d, small, k);
                ck_assert_int_eq(memcmp(lab, lab2, rows * sizeof *lab), 0);
                ck_assert_int_eq(memcmp(dd, dd2, rows * sizeof(float)), 0);
                free(lab2);
                free(dd2);
            }
            km_pack_dot(panels, bias, c, d, k, d, mean);
            for (size_t r = 0; r < rows; r++)
                memcpy(xc + r * d, x + r * ld, d * sizeof(float));
            km_argmin_dot(lab, dd, xc, rows, d, panels, bias, np);
            for (size_t r = 0; r < rows; r++) {
                size_t ref = nearest_double(x + r * ld, c, k, d);
                double gap = dist2_double(x + r * ld, c + lab[r] * d, d) -
                             dist2_double(x + r * ld, c + ref * d, d);
                /* the expansion loses ~d ulps of |x|^2 + |c|^2 (<= 8 d here) */
                ck_assert_msg(lab[r] == ref || gap <= 1e-5 * 8.0 * (double)d, "dot arg-min r=%zu", r);
            }
            free(x), free(c), free(all), free(dd), free(mean), free(lab);
            sm_free(panels), sm_free(bias), sm_free(small), sm_free(xc);
        }
}
END_TEST

/* --- hand-computed cases -------------------------------------------------------------- */

START_TEST(k_equals_n_returns_the_points)
{
    const float x[] = {0, 0, 5, 1, -3, 2, 7, 7, 1, -4};
    sm_kmeans_params p = params_for(5, 2, 5);
    for (int init = SM_KMEANS_INIT_PLUSPLUS; init <= SM_KMEANS_INIT_RANDOM; init++) {
        p.init = (sm_kmeans_init)init;
        fit_out o = fit(&p, x, NULL);
        ck_assert_double_eq(o.res.inertia, 0.0);
        ck_assert_int_eq(o.res.n_nonempty, 5);
        for (size_t i = 0; i < 5; i++) {
            ck_assert_float_eq(o.centers[o.labels[i] * 2], x[i * 2]);
            ck_assert_float_eq(o.centers[o.labels[i] * 2 + 1], x[i * 2 + 1]);
        }
        fit_out_free(&o);
    }
}
END_TEST

START_TEST(two_separated_blobs_by_hand)
{
    const float x[] = {0, 0, 0, 1, 1, 0, 1, 1, 10, 10, 10, 11, 11, 10, 11, 11};
    sm_kmeans_params p = params_for(8, 2, 2);
    for (int alg = SM_KMEANS_AUTO; alg <= SM_KMEANS_YINYANG; alg++) {
        p.algorithm = (sm_kmeans_algorithm)alg;
        fit_out o = fit(&p, x, NULL);
        /* every point is 0.5^2 + 0.5^2 from its blob's mean */
        ck_assert_double_eq_tol(o.res.inertia, 8 * 0.5, 1e-12);
        sm_cluster_id a = o.labels[0], b = o.labels[4];
        ck_assert_uint_ne(a, b);
        for (int i = 0; i < 4; i++) {
            ck_assert_uint_eq(o.labels[i], a);
            ck_assert_uint_eq(o.labels[4 + i], b);
        }
        ck_assert_float_eq(o.centers[a * 2], 0.5f);
        ck_assert_float_eq(o.centers[a * 2 + 1], 0.5f);
        ck_assert_float_eq(o.centers[b * 2], 10.5f);
        ck_assert_float_eq(o.centers[b * 2 + 1], 10.5f);
        ck_assert(o.res.converged);
        fit_out_free(&o);
    }
}
END_TEST

/* The rule in kernels/kmeans.c: Hamerly's bounds pay off up to d = 16, the
 * fused Lloyd tile above; "auto" must resolve, and say what it ran. */
START_TEST(auto_picks_hamerly_for_small_d_and_lloyd_above)
{
    ck_assert_int_eq(sm_kmeans_auto_algorithm(1000000, 4, 10), SM_KMEANS_HAMERLY);
    ck_assert_int_eq(sm_kmeans_auto_algorithm(1000000, 16, 64), SM_KMEANS_HAMERLY);
    ck_assert_int_eq(sm_kmeans_auto_algorithm(1000000, 17, 8), SM_KMEANS_LLOYD);
    ck_assert_int_eq(sm_kmeans_auto_algorithm(200000, 128, 256), SM_KMEANS_LLOYD);
    const float x[] = {0, 0, 0, 1, 1, 0, 1, 1, 10, 10, 10, 11, 11, 10, 11, 11};
    sm_kmeans_params p = params_for(8, 2, 2);
    fit_out o = fit(&p, x, NULL);
    ck_assert_int_eq(o.res.algorithm, SM_KMEANS_HAMERLY);
    fit_out_free(&o);
}
END_TEST

START_TEST(k_one_is_the_mean)
{
    size_t n = 5000, d = 3;
    float *x = make_blobs(n, d, d, 4, 20.0, sm_test_seed(5));
    sm_kmeans_params p = params_for(n, d, 1);
    for (int alg = SM_KMEANS_LLOYD; alg <= SM_KMEANS_YINYANG; alg++) {
        p.algorithm = (sm_kmeans_algorithm)alg;
        fit_out o = fit(&p, x, NULL);
        for (size_t f = 0; f < d; f++) {
            double m = 0.0;
            for (size_t i = 0; i < n; i++)
                m += x[i * d + f];
            ck_assert_float_eq(o.centers[f], (float)(m / (double)n));
        }
        for (size_t i = 0; i < n; i++)
            ck_assert_uint_eq(o.labels[i], 0);
        double ref = ref_inertia(x, n, d, d, o.labels, o.centers);
        ck_assert_double_eq_tol(o.res.inertia, ref, 1e-12 * ref);
        fit_out_free(&o);
    }
    free(x);
}
END_TEST

/* Points 0, 1, 2, 10 on a line, centers 1 and 100: the second gets nothing
 * in the first pass and takes the farthest point (10, at distance 81). */
START_TEST(empty_cluster_takes_the_farthest_point)
{
    const float x[] = {0, 1, 2, 10};
    const float init[] = {1, 100};
    sm_kmeans_params p = params_for(4, 1, 2);
    p.init = SM_KMEANS_INIT_GIVEN;
    for (int alg = SM_KMEANS_LLOYD; alg <= SM_KMEANS_YINYANG; alg++) {
        p.algorithm = (sm_kmeans_algorithm)alg;
        fit_out o = fit(&p, x, init);
        ck_assert_float_eq(o.centers[0], 1.0f);
        ck_assert_float_eq(o.centers[1], 10.0f);
        ck_assert_uint_eq(o.labels[0], 0);
        ck_assert_uint_eq(o.labels[2], 0);
        ck_assert_uint_eq(o.labels[3], 1);
        ck_assert_double_eq(o.res.inertia, 2.0);
        ck_assert_int_eq(o.res.n_nonempty, 2);
        fit_out_free(&o);
    }
}
END_TEST

/* --- against the naive reference ---------------------------------------------------- */

START_TEST(lloyd_matches_naive_reference)
{
    const struct {
        size_t n, d, k;
    } shapes[] = {{3000, 2, 5}, {4000, 8, 12}, {2500, 20, 9}, {2000, 40, 20}};
    for (size_t s = 0; s < SM_ARRAY_LEN(shapes); s++) {
        size_t n = shapes[s].n, d = shapes[s].d, k = shapes[s].k;
        float *x = make_blobs(n, d, d, k, 30.0, sm_test_seed(100 + s));
        float *init = malloc(k * d * sizeof(float));
        memcpy(init, x, k * d * sizeof(float)); /* the first k rows */
        sm_kmeans_params p = params_for(n, d, (int)k);
        p.init = SM_KMEANS_INIT_GIVEN;
        p.algorithm = SM_KMEANS_LLOYD;
        p.max_iter = 50;
        for (int kernel = SM_KMEANS_KERNEL_FUSED; kernel <= SM_KMEANS_KERNEL_SGEMM; kernel++) {
            p.kernel = (sm_kmeans_kernel)kernel;
            fit_out o = fit(&p, x, init);
            sm_cluster_id *rl = malloc(n * sizeof *rl);
            float *rc = malloc(k * d * sizeof(float));
            memcpy(rc, init, k * d * sizeof(float));
            int it = ref_lloyd(rl, rc, x, n, d, d, k, p.max_iter,
                               p.tol * mean_variance(x, n, d, d));
            ck_assert_int_eq(o.res.n_iter, it);
            ck_assert_int_eq(memcmp(o.labels, rl, n * sizeof *rl), 0);
            assert_centers_close(o.centers, rc, k, d, 1e-6, "lloyd vs reference");
            double ref = ref_inertia(x, n, d, d, o.labels, o.centers);
            ck_assert_double_eq_tol(o.res.inertia, ref, 1e-12 * ref);
            free(rl);
            free(rc);
            fit_out_free(&o);
        }
        free(x);
        free(init);
    }
}
END_TEST

START_TEST(exact_algorithms_agree_from_the_same_start)
{
    const struct {
        size_t n, d, k;
        double spread;
    } shapes[] = {{6000, 2, 6, 10.0}, {6000, 8, 16, 8.0}, {5000, 20, 25, 6.0}, {3000, 40, 33, 5.0},
                  {9000, 4, 3, 3.0}};
    for (size_t s = 0; s < SM_ARRAY_LEN(shapes); s++) {
        size_t n = shapes[s].n, d = shapes[s].d, k = shapes[s].k;
        float *x = make_blobs(n, d, d, k, shapes[s].spread, sm_test_seed(200 + s));
        sm_kmeans_params p = params_for(n, d, (int)k);
        p.algorithm = SM_KMEANS_LLOYD;
        p.max_iter = 1; /* only to get a k-means++ start */
        fit_out start = fit(&p, x, NULL);
        p.init = SM_KMEANS_INIT_GIVEN;
        p.max_iter = 100;
        p.tol = 0.0;
        fit_out ref = {NULL, NULL, {0}};
        for (int alg = SM_KMEANS_LLOYD; alg <= SM_KMEANS_YINYANG; alg++) {
            p.algorithm = (sm_kmeans_algorithm)alg;
            fit_out o = fit(&p, x, start.centers);
            if (alg == SM_KMEANS_LLOYD) {
                ref = o;
                continue;
            }
            ck_assert_msg(memcmp(o.labels, ref.labels, n * sizeof *o.labels) == 0,
                          "%s labels differ from lloyd (shape %zu)", sm_kmeans_algorithm_name(p.algorithm), s);
            assert_centers_close(o.centers, ref.centers, k, d, 1e-5, sm_kmeans_algorithm_name(p.algorithm));
            ck_assert_int_eq(o.res.n_iter, ref.res.n_iter);
            ck_assert_double_eq_tol(o.res.inertia, ref.res.inertia, 1e-9 * ref.res.inertia);
            ck_assert_uint_lt(o.res.n_distances, ref.res.n_distances);
            fit_out_free(&o);
        }
        fit_out_free(&ref);
        fit_out_free(&start);
        free(x);
    }
}
END_TEST

typedef struct trace {
    double inertia[512];
    int count;
} trace;

static int record_iteration(void *user, const sm_kmeans_iteration *info)
{
    trace *t = user;
    if (t->count < 512)
        t->inertia[t->count++] = info->inertia;
    return 0;
}

START_TEST(inertia_never_increases_across_lloyd_iterations)
{
    size_t n = 8000, d = 5, k = 20;
    /* overlapping blobs so that Lloyd needs many iterations */
    float *x = make_blobs(n, d, d, 30, 3.0, sm_test_seed(9));
    for (int alg = SM_KMEANS_LLOYD; alg <= SM_KMEANS_YINYANG; alg++) {
        sm_kmeans_params p = params_for(n, d, (int)k);
        p.algorithm = (sm_kmeans_algorithm)alg;
        p.tol = 0.0;
        p.init = SM_KMEANS_INIT_RANDOM;
        p.n_init = 1;
        trace t = {{0}, 0};
        p.on_iteration = record_iteration;
        p.on_iteration_user = &t;
        fit_out o = fit(&p, x, NULL);
        ck_assert_int_ge(t.count, 5);
        for (int i = 1; i < t.count; i++)
            /* from cluster sums in double: ~1e-16 of the total scatter */
            ck_assert_msg(t.inertia[i] <= t.inertia[i - 1] * (1.0 + 1e-12),
                          "%s: iteration %d inertia %.17g > %.17g", sm_kmeans_algorithm_name(p.algorithm),
                          i + 1, t.inertia[i], t.inertia[i - 1]);
        ck_assert_double_le(o.res.inertia, t.inertia[t.count - 1] * (1.0 + 1e-12));
        fit_out_free(&o);
    }
    free(x);
}
END_TEST

/* On well separated blobs every seeding finds one center per blob, so the
 * fit reaches the inertia of the true partition. */
START_TEST(seedings_find_separated_blobs)
{
    size_t n = 20000, d = 6, k = 10;
    float *x = make_blobs(n, d, d, k, 100.0, sm_test_seed(21));
    sm_kmeans_params p = params_for(n, d, (int)k);
    p.algorithm = SM_KMEANS_LLOYD;
    fit_out truth = fit(&p, x, NULL);
    /* (random rows would often put two seeds in one blob: not tested here) */
    for (int init = SM_KMEANS_INIT_PLUSPLUS; init <= SM_KMEANS_INIT_PARALLEL; init++) {
        p.init = (sm_kmeans_init)init;
        fit_out o = fit(&p, x, NULL);
        /* unit noise: inertia ~ n d; a merged blob pair would add ~1e4 per row */
        ck_assert_double_le(o.res.inertia, 1.1 * (double)n * (double)d);
        ck_assert_double_eq_tol(o.res.inertia, truth.res.inertia, 1e-9 * truth.res.inertia);
        fit_out_free(&o);
    }
    fit_out_free(&truth);
    free(x);
}
END_TEST

START_TEST(minibatch_approaches_lloyd)
{
    size_t n = 30000, d = 4, k = 8;
    float *x = make_blobs(n, d, d, k, 40.0, sm_test_seed(31));
    sm_kmeans_params p = params_for(n, d, (int)k);
    p.algorithm = SM_KMEANS_LLOYD;
    fit_out full = fit(&p, x, NULL);
    p.algorithm = SM_KMEANS_MINIBATCH;
    fit_out mb = fit(&p, x, NULL);
    ck_assert_int_eq(mb.res.algorithm, SM_KMEANS_MINIBATCH);
    ck_assert_double_le(mb.res.inertia, 1.05 * full.res.inertia);
    double ref = ref_inertia(x, n, d, d, mb.labels, mb.centers);
    ck_assert_double_eq_tol(mb.res.inertia, ref, 1e-12 * ref);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(mb.labels[i], nearest_double(x + i * d, mb.centers, k, d));
    fit_out_free(&full);
    fit_out_free(&mb);
    free(x);
}
END_TEST

START_TEST(predict_labels_the_nearest_center)
{
    size_t n = 3000, d = 24, k = 7;
    float *x = make_blobs(n, d, d, k, 10.0, sm_test_seed(41));
    sm_kmeans_params p = params_for(n, d, (int)k);
    sm_kmeans *km;
    sm_error err;
    ck_assert_int_eq(sm_kmeans_create(&p, &km, &err), SM_OK);
    sm_cluster_id lab[10];
    ck_assert_int_eq(sm_kmeans_predict(km, lab, NULL, x, 10, d, &err), SM_ERR_INVALID_STATE);
    ck_assert_int_eq(sm_kmeans_fit(km, x, NULL, &err), SM_OK);
    sm_cluster_id *pl = malloc(n * sizeof *pl);
    float *pd = malloc(n * sizeof *pd);
    ck_assert_int_eq(sm_kmeans_predict(km, pl, pd, x, n, d, &err), SM_OK);
    ck_assert_int_eq(memcmp(pl, sm_kmeans_get_labels(km), n * sizeof *pl), 0);
    for (size_t i = 0; i < n; i++) {
        double ref = dist2_double(x + i * d, sm_kmeans_get_centers(km) + pl[i] * d, d);
        ck_assert_double_eq_tol(pd[i], ref, 1e-5 * (ref + 1.0));
    }
    free(pl);
    free(pd);
    sm_kmeans_destroy(km);
    free(x);
}
END_TEST

/* --- edge cases (B7) ---------------------------------------------------------------------- */

static void expect_invalid(const sm_kmeans_params *p, const char *text)
{
    sm_error err;
    sm_kmeans *km = (sm_kmeans *)&err; /* must be reset to NULL */
    ck_assert_int_ne(sm_kmeans_params_check(p, &err), SM_OK);
    ck_assert_msg(strstr(err.msg, text) != NULL, "message '%s' lacks '%s'", err.msg, text);
    ck_assert_int_ne(sm_kmeans_create(p, &km, &err), SM_OK);
    ck_assert_ptr_null(km);
}

START_TEST(invalid_parameters_are_named)
{
    sm_kmeans_params p = params_for(3, 2, 5);
    expect_invalid(&p, "n_samples=3 should be >= n_clusters=5.");
    p = params_for(10, 2, 0);
    expect_invalid(&p, "n_clusters=0 should be >= 1");
    p = params_for(10, 2, -3);
    expect_invalid(&p, "n_clusters=-3");
    p = params_for(0, 2, 1);
    expect_invalid(&p, "n=0");
    p = params_for(10, 0, 1);
    expect_invalid(&p, "d=0");
    p = params_for(10, 4, 2);
    p.ld = 3;
    expect_invalid(&p, "ld=3 should be >= d=4");
    p = params_for(10, 2, 2);
    p.max_iter = 0;
    expect_invalid(&p, "max_iter=0");
    p = params_for(10, 2, 2);
    p.tol = NAN;
    expect_invalid(&p, "tol=");
    p = params_for(10, 2, 2);
    p.algorithm = (sm_kmeans_algorithm)42;
    expect_invalid(&p, "algorithm=42");
    p = params_for((size_t)1 << 62, 8, 2);
    sm_error err;
    ck_assert_int_eq(sm_kmeans_params_check(&p, &err), SM_ERR_OVERFLOW);
    ck_assert_int_eq(sm_kmeans_params_check(NULL, &err), SM_ERR_INVALID_ARG);
}
END_TEST

START_TEST(fit_arguments_are_checked)
{
    float x[] = {1, 2, 3, 4};
    sm_kmeans_params p = params_for(4, 1, 2);
    sm_kmeans *km;
    sm_error err;
    ck_assert_int_eq(sm_kmeans_create(&p, &km, &err), SM_OK);
    ck_assert_int_eq(sm_kmeans_fit(km, NULL, NULL, &err), SM_ERR_INVALID_ARG);
    ck_assert_int_eq(sm_kmeans_fit(km, x, x, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_null(sm_kmeans_get_labels(km));
    ck_assert(!sm_kmeans_is_fitted(km));
    sm_kmeans_result r;
    ck_assert_int_eq(sm_kmeans_get_result(km, &r), SM_ERR_INVALID_STATE);
    sm_kmeans_destroy(km);
    p.init = SM_KMEANS_INIT_GIVEN;
    ck_assert_int_eq(sm_kmeans_create(&p, &km, &err), SM_OK);
    ck_assert_int_eq(sm_kmeans_fit(km, x, NULL, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "init=given"));
    sm_kmeans_destroy(km);
    sm_kmeans_destroy(NULL);
    ck_assert_int_eq(sm_kmeans_create(&p, NULL, &err), SM_ERR_INVALID_ARG);
    sm_kmeans_algorithm a;
    ck_assert_int_eq(sm_kmeans_algorithm_parse("elkan", &a), SM_OK);
    ck_assert_int_eq(a, SM_KMEANS_ELKAN);
    ck_assert_int_eq(sm_kmeans_algorithm_parse("bogus", &a), SM_ERR_INVALID_ARG);
    ck_assert_str_eq(sm_kmeans_algorithm_name(SM_KMEANS_YINYANG), "yinyang");
}
END_TEST

START_TEST(fewer_distinct_points_than_k_warns)
{
    size_t n = 300, d = 2;
    float *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        x[i * d] = (float)(i % 3) * 10.0f;
        x[i * d + 1] = 1.0f;
    }
    for (int alg = SM_KMEANS_LLOYD; alg <= SM_KMEANS_MINIBATCH; alg++)
        for (int init = SM_KMEANS_INIT_PLUSPLUS; init <= SM_KMEANS_INIT_RANDOM; init++) {
            sm_kmeans_params p = params_for(n, d, 5);
            p.algorithm = (sm_kmeans_algorithm)alg;
            p.init = (sm_kmeans_init)init;
            fit_out o = fit(&p, x, NULL);
            ck_assert_double_eq(o.res.inertia, 0.0);
            ck_assert_int_eq(o.res.n_nonempty, 3);
            ck_assert(o.res.fewer_clusters);
            ck_assert_ptr_nonnull(strstr(o.res.warning, "number of distinct clusters (3)"));
            for (size_t i = 0; i < n; i++) {
                ck_assert_uint_lt(o.labels[i], 5);
                ck_assert_float_eq(o.centers[o.labels[i] * d], x[i * d]);
            }
            fit_out_free(&o);
        }
    free(x);
}
END_TEST

START_TEST(identical_points_form_one_cluster)
{
    size_t n = 10000, d = 3;
    float *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n * d; i++)
        x[i] = 2.5f;
    for (int alg = SM_KMEANS_LLOYD; alg <= SM_KMEANS_MINIBATCH; alg++) {
        sm_kmeans_params p = params_for(n, d, 4);
        p.algorithm = (sm_kmeans_algorithm)alg;
        fit_out o = fit(&p, x, NULL);
        ck_assert_double_eq(o.res.inertia, 0.0);
        ck_assert_int_eq(o.res.n_nonempty, 1);
        ck_assert(o.res.fewer_clusters);
        for (size_t i = 0; i < n; i++)
            ck_assert_uint_eq(o.labels[i], 0); /* ties go to the smallest index */
        for (size_t j = 0; j < 4 * d; j++)
            ck_assert_float_eq(o.centers[j], 2.5f);
        fit_out_free(&o);
    }
    free(x);
}
END_TEST

START_TEST(leading_dimension_is_respected)
{
    size_t n = 5000, d = 5, ld = 9, k = 6;
    float *wide = make_blobs(n, d, ld, k, 15.0, sm_test_seed(51));
    float *narrow = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n; i++)
        memcpy(narrow + i * d, wide + i * ld, d * sizeof(float));
    for (int alg = SM_KMEANS_LLOYD; alg <= SM_KMEANS_MINIBATCH; alg++) {
        sm_kmeans_params p = params_for(n, d, (int)k);
        p.algorithm = (sm_kmeans_algorithm)alg;
        fit_out a = fit(&p, narrow, NULL);
        p.ld = ld;
        fit_out b = fit(&p, wide, NULL);
        ck_assert_int_eq(memcmp(a.labels, b.labels, n * sizeof *a.labels), 0);
        ck_assert_int_eq(memcmp(a.centers, b.centers, k * d * sizeof(float)), 0);
        ck_assert_double_eq(a.res.inertia, b.res.inertia);
        fit_out_free(&a);
        fit_out_free(&b);
    }
    free(wide);
    free(narrow);
}
END_TEST

START_TEST(restarts_keep_the_lowest_inertia)
{
    size_t n = 6000, d = 3, k = 9;
    float *x = make_blobs(n, d, d, 12, 6.0, sm_test_seed(61));
    sm_kmeans_params p = params_for(n, d, (int)k);
    p.init = SM_KMEANS_INIT_RANDOM;
    p.n_init = 6;
    fit_out best = fit(&p, x, NULL);
    ck_assert_int_eq(best.res.total_iterations >= best.res.n_iter, 1);
    double ref = ref_inertia(x, n, d, d, best.labels, best.centers);
    ck_assert_double_eq_tol(best.res.inertia, ref, 1e-12 * ref);
    /* each single restart r can be replayed by... running with n_init = r + 1
     * and the kept one can never be worse than the first */
    p.n_init = 1;
    fit_out first = fit(&p, x, NULL);
    ck_assert_double_le(best.res.inertia, first.res.inertia);
    fit_out_free(&best);
    fit_out_free(&first);
    free(x);
}
END_TEST

/* --- determinism (F11) --------------------------------------------------------------------- */

START_TEST(bit_identical_across_thread_counts)
{
    /* 5 blocks of rows so that several threads really share the work */
    size_t n = 5 * 4096 + 123, d = 7, k = 13;
    float *x = make_blobs(n, d, d, 20, 5.0, sm_test_seed(71));
    float *x40 = make_blobs(n / 3, 40, 40, 20, 5.0, sm_test_seed(72));
    const int threads[] = {1, 2, 3, 8};
    for (int alg = SM_KMEANS_LLOYD; alg <= SM_KMEANS_MINIBATCH; alg++)
        for (int init = SM_KMEANS_INIT_PLUSPLUS; init <= SM_KMEANS_INIT_RANDOM; init++)
            for (int wide = 0; wide < 2; wide++) {
                if (wide && init != SM_KMEANS_INIT_PLUSPLUS)
                    continue;
                sm_kmeans_params p = wide ? params_for(n / 3, 40, 17) : params_for(n, d, (int)k);
                p.algorithm = (sm_kmeans_algorithm)alg;
                p.init = (sm_kmeans_init)init;
                p.n_init = 2;
                p.max_iter = 12;
                p.batch_size = 2048;
                fit_out ref = {NULL, NULL, {0}};
                for (size_t t = 0; t < SM_ARRAY_LEN(threads); t++) {
                    p.n_threads = threads[t];
                    fit_out o = fit(&p, wide ? x40 : x, NULL);
                    if (t == 0) {
                        ref = o;
                        continue;
                    }
                    ck_assert_msg(memcmp(o.labels, ref.labels, p.n * sizeof *o.labels) == 0,
                                  "%s init %d: labels differ with %d threads",
                                  sm_kmeans_algorithm_name(p.algorithm), init, threads[t]);
                    ck_assert_msg(memcmp(o.centers, ref.centers, (size_t)p.k * p.d * sizeof(float)) == 0,
                                  "%s init %d: centers differ with %d threads",
                                  sm_kmeans_algorithm_name(p.algorithm), init, threads[t]);
                    ck_assert(memcmp(&o.res.inertia, &ref.res.inertia, sizeof(double)) == 0);
                    ck_assert_int_eq(o.res.n_iter, ref.res.n_iter);
                    fit_out_free(&o);
                }
                fit_out_free(&ref);
            }
    free(x);
    free(x40);
}
END_TEST

/* --- out of memory ---------------------------------------------------------------------------- */

START_TEST(out_of_memory_is_reported_cleanly)
{
    /* Small on purpose: every failing allocation costs a fit and a refit,
     * for 5 algorithms x 3 seedings, and this also runs under ASan. n < one
     * reduction block changes no code path. */
    size_t n = 500, d = 18, k = 12;
    float *x = make_blobs(n, d, d, k, 5.0, sm_test_seed(81));
    /* every algorithm after k-means++, every seeding before Lloyd: the
     * seedings' allocations do not depend on the algorithm that follows */
    for (int alg = SM_KMEANS_LLOYD; alg <= SM_KMEANS_MINIBATCH; alg++)
        for (int init = SM_KMEANS_INIT_PLUSPLUS; init <= SM_KMEANS_INIT_RANDOM; init++) {
            if (alg != SM_KMEANS_LLOYD && init != SM_KMEANS_INIT_PLUSPLUS)
                continue;
            sm_kmeans_params p = params_for(n, d, (int)k);
            p.algorithm = (sm_kmeans_algorithm)alg;
            p.init = (sm_kmeans_init)init;
            p.n_init = 2;
            p.max_iter = 3;
            p.n_threads = 2;
            for (uint64_t nth = 1;; nth++) {
                sm_error err;
                sm_kmeans *km = NULL;
                sm_alloc_fail_at(nth, false);
                int rc = sm_kmeans_create(&p, &km, &err);
                if (rc == SM_OK)
                    rc = sm_kmeans_fit(km, x, NULL, &err);
                sm_alloc_fail_at(0, false);
                if (rc == SM_OK) {
                    ck_assert(sm_kmeans_is_fitted(km));
                    sm_kmeans_destroy(km);
                    break;
                }
                ck_assert_msg(rc == SM_ERR_NOMEM, "allocation %llu: rc %d (%s)",
                              (unsigned long long)nth, rc, err.msg);
                ck_assert(!sm_kmeans_is_fitted(km));
                /* a failed fit leaves an object that can be fitted again */
                if (km != NULL) {
                    ck_assert_int_eq(sm_kmeans_fit(km, x, NULL, &err), SM_OK);
                    sm_kmeans_destroy(km);
                }
                ck_assert_uint_lt(nth, 500);
            }
        }
    free(x);
}
END_TEST

static int cancel_at_third(void *user, const sm_kmeans_iteration *info)
{
    (void)user;
    return info->iteration >= 3;
}

START_TEST(iteration_callback_cancels)
{
    size_t n = 4000, d = 3;
    float *x = make_blobs(n, d, d, 30, 3.0, sm_test_seed(91));
    sm_kmeans_params p = params_for(n, d, 10);
    p.tol = 0.0;
    p.on_iteration = cancel_at_third;
    sm_kmeans *km;
    sm_error err;
    ck_assert_int_eq(sm_kmeans_create(&p, &km, &err), SM_OK);
    ck_assert_int_eq(sm_kmeans_fit(km, x, NULL, &err), SM_ERR_CANCELLED);
    ck_assert(!sm_kmeans_is_fitted(km));
    sm_kmeans_destroy(km);
    free(x);
}
END_TEST

static Suite *kmeans_suite(void)
{
    Suite *s = suite_create("kmeans");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 120);
    tcase_add_test(core, kernels_match_naive_loops);
    tcase_add_test(core, k_equals_n_returns_the_points);
    tcase_add_test(core, two_separated_blobs_by_hand);
    tcase_add_test(core, auto_picks_hamerly_for_small_d_and_lloyd_above);
    tcase_add_test(core, k_one_is_the_mean);
    tcase_add_test(core, empty_cluster_takes_the_farthest_point);
    tcase_add_test(core, lloyd_matches_naive_reference);
    tcase_add_test(core, exact_algorithms_agree_from_the_same_start);
    tcase_add_test(core, inertia_never_increases_across_lloyd_iterations);
    tcase_add_test(core, seedings_find_separated_blobs);
    tcase_add_test(core, minibatch_approaches_lloyd);
    tcase_add_test(core, predict_labels_the_nearest_center);
    tcase_add_test(core, restarts_keep_the_lowest_inertia);
    suite_add_tcase(s, core);
    TCase *edge = tcase_create("edge");
    tcase_add_test(edge, invalid_parameters_are_named);
    tcase_add_test(edge, fit_arguments_are_checked);
    tcase_add_test(edge, fewer_distinct_points_than_k_warns);
    tcase_add_test(edge, identical_points_form_one_cluster);
    tcase_add_test(edge, leading_dimension_is_respected);
    tcase_add_test(edge, iteration_callback_cancels);
    suite_add_tcase(s, edge);
    TCase *det = tcase_create("determinism");
    tcase_set_timeout(det, 300);
    tcase_add_test(det, bit_identical_across_thread_counts);
    suite_add_tcase(s, det);
    TCase *oom = tcase_create("oom");
    tcase_set_timeout(oom, 300);
    tcase_add_test(oom, out_of_memory_is_reported_cleanly);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    /* BLAS runs single-threaded inside our OpenMP regions (see kmeans.h). */
    openblas_set_num_threads(1);
    return sm_test_run(kmeans_suite());
}
