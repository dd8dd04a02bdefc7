/* SPDX-License-Identifier: MIT */
/*
 * k-means: parameters, the object, the fit driver (restarts, convergence,
 * empty clusters), Lloyd's iteration and mini-batch (Sculley, "Web-scale
 * k-means clustering", WWW 2010). Initialisation lives in kmeans_init.c,
 * the bound-based iterations in kmeans_bounds.c, the distance kernels in
 * kmeans_dist.c. No I/O: warnings travel in the result.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kmeans_internal.h"

struct sm_kmeans {
    sm_kmeans_params params;
    sm_cluster_id *labels; /* n, the kept restart */
    sm_cluster_id *spare;  /* n, the running restart when n_init > 1 */
    float *centers;        /* k x d, the kept restart */
    sm_kmeans_result result;
    bool fitted;
};

/* --- names and the automatic choice ------------------------------------------ */

static const char *const algorithm_names[] = {"auto", "lloyd", "hamerly", "elkan", "yinyang",
                                              "minibatch"};

const char *sm_kmeans_algorithm_name(sm_kmeans_algorithm algorithm)
{
    if ((unsigned)algorithm >= SM_ARRAY_LEN(algorithm_names))
        return "?";
    return algorithm_names[algorithm];
}

int sm_kmeans_algorithm_parse(const char *name, sm_kmeans_algorithm *out)
{
    for (size_t i = 0; name != NULL && i < SM_ARRAY_LEN(algorithm_names); i++)
        if (strcmp(name, algorithm_names[i]) == 0) {
            *out = (sm_kmeans_algorithm)i;
            return SM_OK;
        }
    return SM_ERR_INVALID_ARG;
}

/*
 * Hamerly for d <= 16, Lloyd above. Measured 2026-12-05 (AMD EPYC, AVX-512,
 * 2 threads, quiet machine; 1M Gaussian-blob rows, k-means++ start, run to
 * tol 1e-4 or 100 iterations; seconds per iteration, lloyd / hamerly / yinyang):
 *   d=4  k=8   0.0045 / 0.0032 / 0.0033     d=4  k=32  0.0055 / 0.0035 / 0.0071
 *   d=8  k=8   0.0054 / 0.0038 / 0.0037     d=8  k=32  0.0072 / 0.0050 / 0.0094
 *   d=8  k=128 0.0158 / 0.0114 / -          d=16 k=8   0.0098 / 0.0040 / 0.0040
 *   d=16 k=32  0.0139 / 0.0062 / 0.0130     d=24 k=8   0.0121 / 0.0162 / 0.0298
 *   d=24 k=32  0.0126 / 0.0232 / 0.0440
 * and in bench/kmeans (20 iterations): (5M,4,10) 0.0248 / 0.0256, (1M,32,64)
 * 0.0237 / 0.0613, (200k,128,256) 0.0408 / 0.0695. Hamerly's bounds skip
 * 55-65% of the distances at small d, where Lloyd's fused kernel is limited
 * by the per-row arg-min rather than by flops; from d = 24 the register-
 * blocked Lloyd tile is faster than any per-point pruning. Yinyang never beat
 * Hamerly by more than noise and Elkan (n*k bounds) lost everywhere, so
 * neither is chosen. Neither n nor k moved the crossover within 200k..5M rows
 * and k = 8..256, so only d decides; both are kept in the signature so a
 * future rule (say, minibatch past memory) does not change the API.
 */
sm_kmeans_algorithm sm_kmeans_auto_algorithm(size_t n, size_t d, int k)
{
    (void)n;
    (void)k;
    return d <= 16 ? SM_KMEANS_HAMERLY : SM_KMEANS_LLOYD;
}

/* --- parameters ------------------------------------------------------------------ */

void sm_kmeans_params_init(sm_kmeans_params *p)
{
    memset(p, 0, sizeof *p);
    p->algorithm = SM_KMEANS_AUTO;
    p->init = SM_KMEANS_INIT_PLUSPLUS;
    p->kernel = SM_KMEANS_KERNEL_AUTO;
    p->max_iter = 300;
    p->tol = 1e-4;
    p->n_init = 0;
    p->oversampling = 2.0;
    p->init_rounds = 5;
    p->batch_size = 1024;
    p->max_no_improvement = 10;
}

int sm_kmeans_params_check(const sm_kmeans_params *p, sm_error *err)
{
    if (p == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "params is NULL");
    if (p->k <= 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "n_clusters=%d should be >= 1", p->k);
    if (p->n == 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "n=0: the data has no rows");
    if (p->d == 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "d=0: the data has no columns");
    if (p->ld != 0 && p->ld < p->d)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "ld=%zu should be >= d=%zu", p->ld, p->d);
    if ((size_t)p->k > p->n)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "n_samples=%zu should be >= n_clusters=%d.",
                            p->n, p->k);
    if ((uint64_t)p->k > UINT32_MAX)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "n_clusters=%d does not fit a label", p->k);
    size_t ld = p->ld ? p->ld : p->d, cells, kd;
    if (!sm_mul_size(p->n, ld, &cells) || !sm_mul_size(cells, sizeof(float), &cells) ||
        !sm_mul_size((size_t)p->k, p->d, &kd) || !sm_mul_size(kd, sizeof(double), &kd))
        return sm_error_set(err, SM_ERR_OVERFLOW, "n=%zu x ld=%zu (or k x d) overflows size_t",
                            p->n, ld);
    if ((unsigned)p->algorithm > SM_KMEANS_MINIBATCH)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "algorithm=%d is not an sm_kmeans_algorithm",
                            (int)p->algorithm);
    if ((unsigned)p->init > SM_KMEANS_INIT_GIVEN)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "init=%d is not an sm_kmeans_init",
                            (int)p->init);
    if ((unsigned)p->kernel > SM_KMEANS_KERNEL_SGEMM)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "kernel=%d is not an sm_kmeans_kernel",
                            (int)p->kernel);
    if (p->max_iter < 1)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "max_iter=%d should be >= 1", p->max_iter);
    if (!(p->tol >= 0.0) || isinf(p->tol))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "tol=%g should be finite and >= 0", p->tol);
    if (p->n_init < 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "n_init=%d should be >= 0 (0 = auto)",
                            p->n_init);
    if (p->n_threads < 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "n_threads=%d should be >= 0 (0 = default)",
                            p->n_threads);
    if (p->n_local_trials < 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "n_local_trials=%d should be >= 0 (0 = auto)",
                            p->n_local_trials);
    if (!(p->oversampling > 0.0) || isinf(p->oversampling))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "oversampling=%g should be finite and > 0",
                            p->oversampling);
    if (p->init_rounds < 1)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "init_rounds=%d should be >= 1",
                            p->init_rounds);
    if (p->batch_size < 1)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "batch_size=%zu should be >= 1",
                            p->batch_size);
    if (p->max_no_improvement < 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "max_no_improvement=%d should be >= 0",
                            p->max_no_improvement);
    return SM_OK;
}

/* --- the object ------------------------------------------------------------------ */

int sm_kmeans_create(const sm_kmeans_params *params, sm_kmeans **out, sm_error *err)
{
    if (out == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    int rc = sm_kmeans_params_check(params, err);
    if (rc != SM_OK)
        return rc;
    sm_kmeans *km = sm_calloc(1, sizeof *km);
    if (km == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory creating k-means");
    km->params = *params;
    if (km->params.ld == 0)
        km->params.ld = km->params.d;
    km->labels = sm_alloc_array(params->n, sizeof *km->labels);
    km->centers = sm_aligned_alloc((size_t)params->k * params->d, sizeof(float));
    if (km->labels == NULL || km->centers == NULL) {
        sm_kmeans_destroy(km);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu labels and %d x %zu centers",
                            params->n, params->k, params->d);
    }
    *out = km;
    return SM_OK;
}

void sm_kmeans_destroy(sm_kmeans *km)
{
    if (km == NULL)
        return;
    sm_free(km->labels);
    sm_free(km->spare);
    sm_free(km->centers);
    sm_free(km);
}

bool sm_kmeans_is_fitted(const sm_kmeans *km)
{
    return km != NULL && km->fitted;
}

const sm_cluster_id *sm_kmeans_get_labels(const sm_kmeans *km)
{
    return sm_kmeans_is_fitted(km) ? km->labels : NULL;
}

const float *sm_kmeans_get_centers(const sm_kmeans *km)
{
    return sm_kmeans_is_fitted(km) ? km->centers : NULL;
}

int sm_kmeans_get_result(const sm_kmeans *km, sm_kmeans_result *out)
{
    if (!sm_kmeans_is_fitted(km) || out == NULL)
        return SM_ERR_INVALID_STATE;
    *out = km->result;
    return SM_OK;
}

/* --- the pass machinery ------------------------------------------------------------ */

static int resolve_threads(int requested)
{
    return requested > 0 ? requested : omp_get_max_threads();
}

uint64_t km_run_pass(km_ctx *c)
{
    const size_t k = c->k, d = c->d;
    uint64_t changed = 0, ndist = 0;
#pragma omp parallel num_threads(c->n_threads) reduction(+ : changed, ndist)
    {
        float *scratch = c->scratch + (size_t)omp_get_thread_num() * c->scratch_floats;
#pragma omp for schedule(dynamic, 1)
        for (size_t ch = 0; ch < c->n_chunks; ch++) {
            km_part *pt = &c->parts[ch];
            memset(pt->touched, 0, k);
            pt->changed = 0;
            pt->ndist = 0;
            size_t i0 = ch * c->chunk_rows;
            size_t i1 = SM_MIN(c->n, i0 + c->chunk_rows);
            c->rows_fn(c, pt, i0, i1, scratch);
            changed += pt->changed;
            ndist += pt->ndist;
        }
    }
    /* Fold the parts in chunk order: the only floating-point reduction. */
    const bool full = c->full_sums;
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
    for (size_t j = 0; j < k; j++) {
        double *dst = c->sums + j * d;
        int64_t count = full ? 0 : c->counts[j];
        if (full)
            for (size_t f = 0; f < d; f++)
                dst[f] = 0.0;
        for (size_t ch = 0; ch < c->n_chunks; ch++) {
            const km_part *pt = &c->parts[ch];
            if (!pt->touched[j])
                continue;
            const double *src = pt->sum + j * c->dpad;
            for (size_t f = 0; f < d; f++)
                dst[f] += src[f];
            count += pt->count[j];
        }
        c->counts[j] = count;
    }
    c->n_distances += ndist;
    return changed;
}

void km_pack_centers(km_ctx *c)
{
    if (c->use_small && !c->use_sgemm) {
        km_pack_small(c->small_c, c->centers, c->d, c->k, c->d);
    } else {
        /* the dot family; for sgemm small_c holds the shifted centers row-major */
        km_pack_dot(c->panels, c->bias, c->centers, c->d, c->k, c->d, c->mean);
        if (c->use_sgemm)
            for (size_t j = 0; j < c->k; j++)
                for (size_t f = 0; f < c->d; f++)
                    c->small_c[j * c->d + f] = c->centers[j * c->d + f] - c->mean[f];
    }
}

/* Copies `rows` rows shifted by the mean into buf (leading dimension d). */
static void shift_rows(float *buf, const float *x, size_t ld, size_t rows, size_t d,
                       const float *mean)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t f = 0; f < d; f++)
            buf[r * d + f] = x[r * ld + f] - mean[f];
}

/* Nearest center of `rows` rows starting at x (Lloyd's kernels). scratch
 * holds KM_SUB_ROWS * (d + k) floats. */
static void assign_rows(const km_ctx *c, sm_cluster_id *labels, const float *x, size_t ld,
                        size_t rows, float *scratch)
{
    const size_t d = c->d, k = c->k;
    if (c->use_sgemm) {
        float *xc = scratch, *tile = scratch + KM_SUB_ROWS * d;
        shift_rows(xc, x, ld, rows, d, c->mean);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)d, -2.0f, xc,
                    (int)d, c->small_c, (int)d, 0.0f, tile, (int)k);
        for (size_t r = 0; r < rows; r++) {
            const float *t = tile + r * k;
            float best = t[0] + c->bias[0];
            size_t best_j = 0;
            for (size_t j = 1; j < k; j++) {
                float v = t[j] + c->bias[j];
                if (v < best) {
                    best = v;
                    best_j = j;
                }
            }
            labels[r] = (sm_cluster_id)best_j;
        }
    } else if (c->use_small) {
        km_argmin_small(labels, NULL, x, ld, rows, d, c->small_c, k);
    } else {
        float *xc = scratch;
        shift_rows(xc, x, ld, rows, d, c->mean);
        km_argmin_dot(labels, NULL, xc, rows, d, c->panels, c->bias, km_panel_count(k));
    }
}

static void accumulate(km_part *pt, const sm_cluster_id *lab, const float *x, size_t ld,
                       size_t rows, size_t d, size_t dpad)
{
    for (size_t r = 0; r < rows; r++) {
        size_t j = lab[r];
        pt->count[j]++;
        km_row_add(pt->sum + j * dpad, x + r * ld, d, +1);
    }
}

/* Lloyd: label every row; with full_sums also rebuild the cluster sums (the
 * chunk's partial is zeroed whole: every cluster counts as touched). */
static void lloyd_rows(km_ctx *c, km_part *pt, size_t i0, size_t i1, float *scratch)
{
    sm_cluster_id lab[KM_SUB_ROWS];
    const size_t d = c->d, ld = c->ld, k = c->k;
    if (c->full_sums) {
        memset(pt->sum, 0, k * c->dpad * sizeof(double));
        memset(pt->count, 0, k * sizeof(int64_t));
        memset(pt->touched, 1, k);
    }
    uint64_t changed = 0;
    for (size_t s = i0; s < i1; s += KM_SUB_ROWS) {
        size_t rows = SM_MIN((size_t)KM_SUB_ROWS, i1 - s);
        const float *x = c->x + s * ld;
        assign_rows(c, lab, x, ld, rows, scratch);
        sm_cluster_id *old = c->labels + s;
        for (size_t r = 0; r < rows; r++) {
            changed += lab[r] != old[r];
            old[r] = lab[r];
        }
        if (c->full_sums)
            accumulate(pt, lab, x, ld, rows, d, c->dpad);
    }
    pt->changed += changed;
    pt->ndist += (uint64_t)(i1 - i0) * k;
}

/* --- statistics, relocation, the update ------------------------------------------ */

/* Column means (into c->mean), the summed squared deviation and the scaled
 * tolerance, with chunked partials combined in chunk order. */
static int data_stats(km_ctx *c, sm_error *err)
{
    const size_t d = c->d, nc = c->n_chunks;
    double *part = sm_alloc_array(nc * 2, d * sizeof(double));
    double *mean = sm_calloc(d, sizeof(double));
    if (part == NULL || mean == NULL) {
        sm_free(part);
        sm_free(mean);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for column statistics");
    }
    double *first = part, *second = part + nc * d;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
    for (size_t ch = 0; ch < nc; ch++) {
        double *s = first + ch * d;
        for (size_t f = 0; f < d; f++)
            s[f] = 0.0;
        size_t i1 = SM_MIN(c->n, (ch + 1) * c->chunk_rows);
        for (size_t i = ch * c->chunk_rows; i < i1; i++)
            for (size_t f = 0; f < d; f++)
                s[f] += c->x[i * c->ld + f];
    }
    for (size_t ch = 0; ch < nc; ch++)
        for (size_t f = 0; f < d; f++)
            mean[f] += first[ch * d + f];
    for (size_t f = 0; f < d; f++)
        mean[f] /= (double)c->n;
    /* Two-pass variance: exact enough even when the mean is far from 0. */
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
    for (size_t ch = 0; ch < nc; ch++) {
        double *s = second + ch * d;
        for (size_t f = 0; f < d; f++)
            s[f] = 0.0;
        size_t i1 = SM_MIN(c->n, (ch + 1) * c->chunk_rows);
        for (size_t i = ch * c->chunk_rows; i < i1; i++)
            for (size_t f = 0; f < d; f++) {
                double t = c->x[i * c->ld + f] - mean[f];
                s[f] += t * t;
            }
    }
    double total = 0.0;
    for (size_t f = 0; f < d; f++) {
        double ss = 0.0;
        for (size_t ch = 0; ch < nc; ch++)
            ss += second[ch * d + f];
        total += ss;
        c->mean[f] = (float)mean[f];
    }
    c->total_ss = total;
    c->tol_scaled = c->p->tol * (total / (double)c->n) / (double)d;
    sm_free(part);
    sm_free(mean);
    return SM_OK;
}

/* Exact inertia of `labels` against `centers`, in double, chunk-ordered;
 * counts[j] (if not NULL) receives the cluster sizes. */
static double exact_inertia(const km_ctx *c, const sm_cluster_id *labels, const float *centers,
                            int64_t *counts, double *part)
{
    const size_t d = c->d;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
    for (size_t ch = 0; ch < c->n_chunks; ch++) {
        double s = 0.0;
        size_t i1 = SM_MIN(c->n, (ch + 1) * c->chunk_rows);
        for (size_t i = ch * c->chunk_rows; i < i1; i++) {
            const float *x = c->x + i * c->ld, *m = centers + (size_t)labels[i] * d;
            double e = 0.0;
            for (size_t f = 0; f < d; f++) {
                double t = (double)x[f] - (double)m[f];
                e += t * t;
            }
            s += e;
        }
        part[ch] = s;
    }
    double total = 0.0;
    for (size_t ch = 0; ch < c->n_chunks; ch++)
        total += part[ch];
    if (counts != NULL) {
        for (size_t j = 0; j < c->k; j++)
            counts[j] = 0;
        for (size_t i = 0; i < c->n; i++)
            counts[labels[i]]++;
    }
    return total;
}

/* Inertia of the labels of the last pass against c->centers, from the
 * cluster sums: E = sum ||x - m||^2 - sum_j (2 c'.S'_j - n_j ||c'||^2) with
 * c' = c_j - m, S'_j = S_j - n_j m. O(k d); for the iteration callback. */
static double inertia_from_sums(const km_ctx *c)
{
    double e = c->total_ss;
    for (size_t j = 0; j < c->k; j++) {
        double nj = (double)c->counts[j], cs = 0.0, cc = 0.0;
        for (size_t f = 0; f < c->d; f++) {
            double cf = (double)c->centers[j * c->d + f] - c->mean[f];
            double sf = c->sums[j * c->d + f] - nj * c->mean[f];
            cs += cf * sf;
            cc += cf * cf;
        }
        e -= 2.0 * cs - nj * cc;
    }
    return e > 0.0 ? e : 0.0;
}

typedef struct far_point {
    double dist;
    size_t index;
} far_point;

/* True if a should come before b: farther first, then the smaller index. */
static bool far_before(far_point a, far_point b)
{
    return a.dist > b.dist || (a.dist == b.dist && a.index < b.index);
}

/* Min-heap on far_before (the root is the last of the kept ones). */
static void heap_sift_down(far_point *h, size_t m, size_t at)
{
    for (;;) {
        size_t l = 2 * at + 1, r = l + 1, worst = at;
        if (l < m && far_before(h[worst], h[l]))
            worst = l;
        if (r < m && far_before(h[worst], h[r]))
            worst = r;
        if (worst == at)
            return;
        far_point t = h[at];
        h[at] = h[worst];
        h[worst] = t;
        at = worst;
    }
}

static int cmp_far(const void *a, const void *b)
{
    far_point x = *(const far_point *)a, y = *(const far_point *)b;
    return far_before(x, y) ? -1 : far_before(y, x) ? 1 : 0;
}

/* Empty clusters take the points farthest from their centers (the centers
 * of this pass), as scikit-learn does: the point's row moves from its
 * cluster's sum to the empty one, and its label follows (so incremental sums
 * stay exact and the next pass sees the change). A point is never taken
 * from a cluster it would leave empty. Deterministic: distances are exact
 * doubles and ties go to the smaller index. Returns the points moved. */
static int relocate_empty(km_ctx *c, uint64_t *moved, sm_error *err)
{
    const size_t k = c->k, d = c->d, n = c->n;
    size_t n_empty = 0;
    for (size_t j = 0; j < k; j++)
        n_empty += c->counts[j] == 0;
    *moved = 0;
    if (n_empty == 0)
        return SM_OK;
    double *dist = sm_alloc_array(n, sizeof *dist);
    if (dist == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory relocating empty clusters");
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float *x = c->x + i * c->ld, *m = c->centers + (size_t)c->labels[i] * d;
        double e = 0.0;
        for (size_t f = 0; f < d; f++) {
            double t = (double)x[f] - (double)m[f];
            e += t * t;
        }
        dist[i] = e;
    }
    size_t want = SM_MIN(n, 2 * n_empty + 16);
    int rc = SM_OK;
    size_t next_empty = 0;
    for (;;) {
        far_point *heap = sm_alloc_array(want, sizeof *heap);
        if (heap == NULL) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory relocating empty clusters");
            break;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            far_point fp = {dist[i], i};
            if (m < want) {
                heap[m++] = fp;
                if (m == want)
                    for (size_t a = want / 2; a-- > 0;)
                        heap_sift_down(heap, m, a);
            } else if (far_before(fp, heap[0])) {
                heap[0] = fp;
                heap_sift_down(heap, m, 0);
            }
        }
        qsort(heap, m, sizeof *heap, cmp_far);
        size_t used = 0;
        for (; next_empty < k; next_empty++) {
            if (c->counts[next_empty] != 0)
                continue;
            while (used < m) {
                size_t i = heap[used].index;
                /* skip points already moved and points alone in their cluster */
                if (c->counts[c->labels[i]] > 1 && dist[i] >= 0.0)
                    break;
                used++;
            }
            if (used == m)
                break;
            size_t i = heap[used++].index, old = c->labels[i];
            const float *x = c->x + i * c->ld;
            double *so = c->sums + old * d, *sn = c->sums + next_empty * d;
            for (size_t f = 0; f < d; f++) {
                so[f] -= x[f];
                sn[f] = x[f];
            }
            c->counts[old]--;
            c->counts[next_empty] = 1;
            c->labels[i] = (sm_cluster_id)next_empty;
            dist[i] = -1.0; /* taken */
            if (c->upper != NULL)
                km_bounds_reset_row(c, i);
            (*moved)++;
        }
        sm_free(heap);
        if (next_empty >= k || want == n)
            break;
        want = SM_MIN(n, want * 4);
    }
    sm_free(dist);
    return rc;
}

/* Rounds a non-negative double up to a float that is not smaller. */
static float round_up_float(double v)
{
    float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

/* centers_new = sums / counts; drift and shift_total from the move. */
static void update_centers(km_ctx *c)
{
    const size_t k = c->k, d = c->d;
    double total = 0.0;
    float top[2] = {0.0f, 0.0f};
    uint32_t top_index = 0;
    for (size_t j = 0; j < k; j++) {
        const float *old = c->centers + j * d;
        float *nw = c->centers_new + j * d;
        if (c->counts[j] > 0) {
            double inv = (double)c->counts[j];
            for (size_t f = 0; f < d; f++)
                nw[f] = (float)(c->sums[j * d + f] / inv);
        } else {
            memcpy(nw, old, d * sizeof *nw);
        }
        double s = 0.0;
        for (size_t f = 0; f < d; f++) {
            double t = (double)nw[f] - (double)old[f];
            s += t * t;
        }
        total += s;
        float drift = round_up_float(sqrt(s));
        c->drift[j] = drift;
        if (drift > top[0]) {
            top[1] = top[0];
            top[0] = drift;
            top_index = (uint32_t)j;
        } else if (drift > top[1]) {
            top[1] = drift;
        }
    }
    c->shift_total = total;
    c->max_drift[0] = top[0];
    c->max_drift[1] = top[1];
    c->max_drift_index = top_index;
}

/* --- one restart of a full-batch algorithm ------------------------------------ */

static int report_iteration(km_ctx *c, int restart, int iteration, double inertia,
                            uint64_t changed, uint64_t ndist)
{
    const sm_kmeans_params *p = c->p;
    if (p->on_iteration != NULL) {
        sm_kmeans_iteration info = {restart, iteration, inertia, c->shift_total, changed, ndist};
        if (p->on_iteration(p->on_iteration_user, &info) != 0)
            return SM_ERR_CANCELLED;
    }
    if (sm_progress_report(&p->progress, "kmeans", (uint64_t)iteration, (uint64_t)p->max_iter))
        return SM_ERR_CANCELLED;
    return SM_OK;
}

static int run_full_batch(km_ctx *c, int restart, int *n_iter, bool *converged, sm_error *err)
{
    const sm_kmeans_params *p = c->p;
    const bool bounds = c->algorithm != SM_KMEANS_LLOYD;
    bool strict = false;
    int it = 0, rc = SM_OK;
    *converged = false;
    for (size_t i = 0; i < c->n; i++)
        c->labels[i] = (sm_cluster_id)-1; /* every label changes in the first pass */
    if (bounds) {
        if (c->algorithm == SM_KMEANS_YINYANG)
            km_yinyang_group(c, c->centers);
        km_bounds_prepare(c, c->centers);
    }
    for (it = 0; it < p->max_iter; it++) {
        uint64_t before = c->n_distances;
        if (!bounds) {
            km_pack_centers(c);
            c->rows_fn = lloyd_rows;
            c->full_sums = true;
        } else if (it == 0) {
            km_bounds_first_pass(c);
        } else {
            km_bounds_next_pass(c);
        }
        uint64_t changed = km_run_pass(c);
        double inertia = p->on_iteration != NULL ? inertia_from_sums(c) : NAN;
        uint64_t moved = 0;
        rc = relocate_empty(c, &moved, err);
        if (rc != SM_OK)
            return rc;
        changed += moved;
        update_centers(c);
        rc = report_iteration(c, restart, it + 1, inertia, changed, c->n_distances - before);
        if (rc != SM_OK)
            return sm_error_set(err, rc, "k-means cancelled at iteration %d", it + 1);
        if (bounds)
            km_bounds_prepare(c, c->centers_new);
        float *t = c->centers;
        c->centers = c->centers_new;
        c->centers_new = t;
        if (it > 0 && changed == 0) {
            strict = true;
            *converged = true;
            it++;
            break;
        }
        if (c->shift_total <= c->tol_scaled) {
            *converged = true;
            it++;
            break;
        }
    }
    *n_iter = it;
    if (!strict) {
        /* Labels must match the returned centers: one more assignment. */
        if (!bounds) {
            km_pack_centers(c);
            c->rows_fn = lloyd_rows;
        } else {
            km_bounds_next_pass(c);
        }
        c->full_sums = false;
        /* deltas are folded into sums but no longer used */
        km_run_pass(c);
    }
    return SM_OK;
}

/* --- mini-batch ----------------------------------------------------------------- */

enum { PURPOSE_INIT = 1, PURPOSE_PAR = 2, PURPOSE_MINIBATCH = 3, PURPOSE_RANDOM = 4 };

/* scikit-learn's MiniBatchKMeans update: each step draws batch_size rows
 * with replacement, labels them against the current centers, and moves each
 * center to the running mean of every row it has received. Sums over the
 * batch are taken in batch order, so the result ignores the thread count.
 * Stops after max_iter passes' worth of steps, when the squared center
 * change is <= the scaled tol (tol > 0), or when the smoothed batch inertia
 * has not improved for max_no_improvement steps. */
static int run_minibatch(km_ctx *c, int restart, int *n_iter, bool *converged, sm_error *err)
{
    const sm_kmeans_params *p = c->p;
    const size_t n = c->n, d = c->d, k = c->k;
    const size_t b = SM_MIN(p->batch_size, n);
    size_t steps_per_pass = n / b + (n % b != 0);
    uint64_t n_steps = (uint64_t)p->max_iter * steps_per_pass;
    float *batch = sm_aligned_alloc(b, d * sizeof(float));
    sm_cluster_id *blab = sm_alloc_array(b, sizeof *blab);
    float *bdist = sm_alloc_array(b, sizeof *bdist);
    size_t *bidx = sm_alloc_array(b, sizeof *bidx);
    double *weight = sm_calloc(k, sizeof *weight);
    double *bsum = sm_alloc_array(k, d * sizeof(double));
    double *bcount = sm_alloc_array(k, sizeof(double));
    int rc = SM_OK;
    if (batch == NULL || blab == NULL || bdist == NULL || bidx == NULL || weight == NULL ||
        bsum == NULL || bcount == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for mini-batch buffers");
        goto out_free;
    }
    double alpha = 2.0 * (double)b / ((double)n + 1.0);
    if (alpha > 1.0)
        alpha = 1.0;
    double ewa = 0.0, ewa_min = INFINITY;
    int no_improvement = 0;
    uint64_t step;
    *converged = false;
    for (size_t i = 0; i < n; i++)
        c->labels[i] = (sm_cluster_id)-1;
    for (step = 0; step < n_steps; step++) {
        sm_rng rng;
        sm_rng_init(&rng, p->seed, km_stream((uint64_t)restart, PURPOSE_MINIBATCH, step));
        for (size_t r = 0; r < b; r++) {
            bidx[r] = (size_t)sm_rng_below(&rng, n);
            memcpy(batch + r * d, c->x + bidx[r] * c->ld, d * sizeof(float));
        }
        km_pack_centers(c);
        size_t nsub = b / KM_SUB_ROWS + (b % KM_SUB_ROWS != 0);
#pragma omp parallel num_threads(c->n_threads)
        {
            float *scratch = c->scratch + (size_t)omp_get_thread_num() * c->scratch_floats;
#pragma omp for schedule(static)
            for (size_t s = 0; s < nsub; s++) {
                size_t r0 = s * KM_SUB_ROWS, rows = SM_MIN((size_t)KM_SUB_ROWS, b - r0);
                assign_rows(c, blab + r0, batch + r0 * d, d, rows, scratch);
            }
        }
        c->n_distances += (uint64_t)b * k;
        double batch_inertia = 0.0;
        memset(bcount, 0, k * sizeof *bcount);
        for (size_t r = 0; r < b; r++) {
            size_t j = blab[r];
            const float *x = batch + r * d;
            double *s = bsum + j * d;
            if (bcount[j] == 0.0)
                for (size_t f = 0; f < d; f++)
                    s[f] = 0.0;
            bcount[j] += 1.0;
            double e = 0.0;
            for (size_t f = 0; f < d; f++) {
                double t = (double)x[f] - (double)c->centers[j * d + f];
                e += t * t;
                s[f] += x[f];
            }
            batch_inertia += e;
        }
        double change = 0.0;
        for (size_t j = 0; j < k; j++) {
            if (bcount[j] == 0.0)
                continue;
            double w = weight[j] + bcount[j];
            float *cj = c->centers + j * d;
            for (size_t f = 0; f < d; f++) {
                float nv = (float)(((double)cj[f] * weight[j] + bsum[j * d + f]) / w);
                double t = (double)nv - (double)cj[f];
                change += t * t;
                cj[f] = nv;
            }
            weight[j] = w;
        }
        /* Centers that have received nothing after ten passes' worth of
         * rows restart at the batch rows farthest from their centers. */
        if (step + 1 == 10 * steps_per_pass || (step + 1) % (10 * steps_per_pass) == 0) {
            for (size_t j = 0; j < k; j++) {
                if (weight[j] != 0.0)
                    continue;
                size_t far = 0;
                double far_d = -1.0;
                for (size_t r = 0; r < b; r++) {
                    double e = 0.0;
                    for (size_t f = 0; f < d; f++) {
                        double t = (double)batch[r * d + f] - (double)c->centers[blab[r] * d + f];
                        e += t * t;
                    }
                    if (e > far_d) {
                        far_d = e;
                        far = r;
                    }
                }
                memcpy(c->centers + j * d, batch + far * d, d * sizeof(float));
                weight[j] = 1.0;
            }
        }
        c->shift_total = change;
        batch_inertia /= (double)b;
        ewa = step == 0 ? batch_inertia : ewa * (1.0 - alpha) + batch_inertia * alpha;
        if (step % (steps_per_pass > 200 ? steps_per_pass / 200 : 1) == 0 || step + 1 == n_steps) {
            if (p->on_iteration != NULL) {
                sm_kmeans_iteration info = {restart, (int)SM_MIN(step + 1, (uint64_t)INT32_MAX),
                                            batch_inertia * (double)n, change, 0, (uint64_t)b * k};
                if (p->on_iteration(p->on_iteration_user, &info) != 0) {
                    rc = sm_error_set(err, SM_ERR_CANCELLED, "mini-batch cancelled");
                    goto out_free;
                }
            }
            if (sm_progress_report(&p->progress, "kmeans", step + 1, n_steps)) {
                rc = sm_error_set(err, SM_ERR_CANCELLED, "mini-batch cancelled");
                goto out_free;
            }
        }
        if (p->tol > 0.0 && change <= c->tol_scaled) {
            *converged = true;
            step++;
            break;
        }
        if (ewa < ewa_min) {
            ewa_min = ewa;
            no_improvement = 0;
        } else if (p->max_no_improvement > 0 && ++no_improvement >= p->max_no_improvement) {
            *converged = true;
            step++;
            break;
        }
    }
    *n_iter = (int)SM_MIN(step, (uint64_t)INT32_MAX);
    /* The labels of every row against the final centers. */
    km_pack_centers(c);
    c->rows_fn = lloyd_rows;
    c->full_sums = false;
    km_run_pass(c);
out_free:
    sm_free(batch);
    sm_free(blab);
    sm_free(bdist);
    sm_free(bidx);
    sm_free(weight);
    sm_free(bsum);
    sm_free(bcount);
    return rc;
}

/* --- the fit ------------------------------------------------------------------------ */

static void ctx_free(km_ctx *c)
{
    km_bounds_free(c);
    sm_free(c->mean);
    sm_free(c->parts);
    sm_free(c->part_sum);
    sm_free(c->part_count);
    sm_free(c->part_touched);
    sm_free(c->centers);
    sm_free(c->centers_new);
    sm_free(c->sums);
    sm_free(c->counts);
    sm_free(c->drift);
    sm_free(c->panels);
    sm_free(c->bias);
    sm_free(c->small_c);
    sm_free(c->scratch);
}

static int ctx_init(km_ctx *c, const sm_kmeans_params *p, const float *x, sm_error *err)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    c->x = x;
    c->n = p->n;
    c->d = p->d;
    c->ld = p->ld;
    c->k = (size_t)p->k;
    c->n_threads = resolve_threads(p->n_threads);
    c->algorithm = p->algorithm == SM_KMEANS_AUTO
                       ? sm_kmeans_auto_algorithm(p->n, p->d, p->k)
                       : p->algorithm;
    const size_t n = c->n, d = c->d, k = c->k;
    c->use_small = d <= 16;
    c->dpad = (d + 7) & ~(size_t)7;
    c->use_sgemm = p->kernel == SM_KMEANS_KERNEL_SGEMM;

    /* Chunks: whole blocks, at most KM_MAX_CHUNKS, partials within budget. */
    size_t blocks = sm_block_count(n, SM_REDUCE_BLOCK);
    size_t per_chunk = k * c->dpad * sizeof(double) + k * (sizeof(int64_t) + 1);
    size_t max_chunks = SM_MAX((size_t)1, SM_MIN((size_t)KM_MAX_CHUNKS, KM_PARTIAL_BUDGET / per_chunk));
    size_t chunk_blocks = sm_block_count(blocks, max_chunks);
    c->chunk_rows = chunk_blocks * SM_REDUCE_BLOCK;
    c->n_chunks = sm_block_count(n, c->chunk_rows);

    size_t np = km_panel_count(k), kd = k * d;
    size_t small_floats = SM_MAX(k * km_small_width(d), kd);
    /* the largest user: bounds with 4 lists of KM_SUB_ROWS, KM_SUB_ROWS rows
     * of d or k floats and a 64-row block of distances */
    c->scratch_floats = KM_SUB_ROWS * (d + k + 4) + 16 * np * 64 + 64;
    c->scratch_floats = (c->scratch_floats + 15) & ~(size_t)15; /* keep 64-byte alignment */
    c->mean = sm_alloc_array(d, sizeof(float));
    c->parts = sm_calloc(c->n_chunks, sizeof *c->parts);
    c->part_sum = sm_aligned_alloc(c->n_chunks * k, c->dpad * sizeof(double));
    c->part_count = sm_alloc_array(c->n_chunks * k, sizeof(int64_t));
    c->part_touched = sm_calloc(c->n_chunks, k);
    c->centers = sm_aligned_alloc(kd, sizeof(float));
    c->centers_new = sm_aligned_alloc(kd, sizeof(float));
    c->sums = sm_alloc_array(kd, sizeof(double));
    c->counts = sm_calloc(k, sizeof(int64_t));
    c->drift = sm_calloc(k, sizeof(float));
    c->panels = sm_aligned_alloc(np * d * KM_LANES, sizeof(float));
    c->bias = sm_aligned_alloc(np * KM_LANES, sizeof(float));
    c->small_c = sm_aligned_alloc(small_floats, sizeof(float));
    c->scratch = sm_aligned_alloc((size_t)c->n_threads * c->scratch_floats, sizeof(float));
    if (c->mean == NULL || c->parts == NULL || c->part_sum == NULL || c->part_count == NULL ||
        c->part_touched == NULL || c->centers == NULL || c->centers_new == NULL ||
        c->sums == NULL || c->counts == NULL || c->drift == NULL || c->panels == NULL ||
        c->bias == NULL || c->small_c == NULL || c->scratch == NULL) {
        ctx_free(c);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for k-means work space (n=%zu d=%zu k=%zu)",
                            n, d, k);
    }
    for (size_t ch = 0; ch < c->n_chunks; ch++) {
        c->parts[ch].sum = c->part_sum + ch * k * c->dpad;
        c->parts[ch].count = c->part_count + ch * k;
        c->parts[ch].touched = c->part_touched + ch * k;
    }
    return SM_OK;
}

static int choose_initial_centers(km_ctx *c, float *out, const float *given, int restart, sm_error *err)
{
    const sm_kmeans_params *p = c->p;
    uint64_t stream = km_stream((uint64_t)restart, PURPOSE_INIT, 0);
    switch (p->init) {
    case SM_KMEANS_INIT_GIVEN:
        memcpy(out, given, c->k * c->d * sizeof(float));
        return SM_OK;
    case SM_KMEANS_INIT_RANDOM:
        return km_init_random(c, out, km_stream((uint64_t)restart, PURPOSE_RANDOM, 0), err);
    case SM_KMEANS_INIT_PARALLEL:
        return km_init_parallel(c, out, km_stream((uint64_t)restart, PURPOSE_PAR, 0), err);
    case SM_KMEANS_INIT_PLUSPLUS:
    default:
        return km_init_plusplus(c, out, c->x, c->n, c->ld, NULL, c->k, stream, err);
    }
}

/* Formats into a fixed buffer without stdio (kernels do no I/O): the error
 * record's formatter does the work. */
static void format_warning(char *out, size_t len, int nonempty, size_t k)
{
    sm_error tmp;
    sm_error_set(&tmp, SM_OK,
                 "number of distinct clusters (%d) found smaller than n_clusters (%zu); possibly "
                 "due to duplicate points in the data",
                 nonempty, k);
    size_t m = strlen(tmp.msg);
    if (m >= len)
        m = len - 1;
    memcpy(out, tmp.msg, m);
    out[m] = '\0';
}

static double now_seconds(void)
{
    return omp_get_wtime();
}

int sm_kmeans_fit(sm_kmeans *km, const float *x, const float *init_centers, sm_error *err)
{
    if (km == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "k-means object is NULL");
    km->fitted = false;
    const sm_kmeans_params *p = &km->params;
    if (x == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "x is NULL");
    if (p->init == SM_KMEANS_INIT_GIVEN && init_centers == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "init=given needs the %d x %zu initial centers",
                            p->k, p->d);
    if (p->init != SM_KMEANS_INIT_GIVEN && init_centers != NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG,
                            "initial centers were passed but init is not 'given'");
    int n_init = p->n_init;
    if (p->init == SM_KMEANS_INIT_GIVEN)
        n_init = 1;
    else if (n_init == 0)
        n_init = p->init == SM_KMEANS_INIT_RANDOM ? 10 : 1;
    if (n_init > 1 && km->spare == NULL) {
        km->spare = sm_alloc_array(p->n, sizeof *km->spare);
        if (km->spare == NULL)
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory for restart labels");
    }

    km_ctx ctx, *c = &ctx;
    int rc = ctx_init(c, p, x, err);
    if (rc != SM_OK)
        return rc;
    int64_t *sizes = sm_alloc_array(c->k, sizeof *sizes);
    double *part = sm_alloc_array(c->n_chunks, sizeof *part);
    if (sizes == NULL || part == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for k-means results");
        goto out;
    }
    rc = data_stats(c, err);
    if (rc != SM_OK)
        goto out;
    if (c->algorithm == SM_KMEANS_HAMERLY || c->algorithm == SM_KMEANS_ELKAN ||
        c->algorithm == SM_KMEANS_YINYANG) {
        rc = km_bounds_alloc(c, err);
        if (rc != SM_OK)
            goto out;
    }

    sm_kmeans_result res;
    memset(&res, 0, sizeof res);
    res.algorithm = c->algorithm;
    res.inertia = INFINITY;
    sm_cluster_id *best_labels = km->labels, *run_labels = km->labels;
    for (int r = 0; r < n_init; r++) {
        /* The first restart writes straight into the kept buffer; later ones
         * into the other buffer, swapped in when they do better. */
        run_labels = r == 0 ? km->labels : (best_labels == km->labels ? km->spare : km->labels);
        c->labels = run_labels;
        double t0 = now_seconds();
        rc = choose_initial_centers(c, c->centers, init_centers, r, err);
        if (rc != SM_OK)
            goto out;
        double t1 = now_seconds();
        int n_iter = 0;
        bool converged = false;
        if (c->algorithm == SM_KMEANS_MINIBATCH)
            rc = run_minibatch(c, r, &n_iter, &converged, err);
        else
            rc = run_full_batch(c, r, &n_iter, &converged, err);
        if (rc != SM_OK)
            goto out;
        double inertia = exact_inertia(c, run_labels, c->centers, NULL, part);
        res.seconds_init += t1 - t0;
        res.seconds_iterations += now_seconds() - t1;
        res.total_iterations += n_iter;
        if (r == 0 || inertia < res.inertia) {
            res.inertia = inertia;
            res.n_iter = n_iter;
            res.converged = converged;
            res.best_restart = r;
            best_labels = run_labels;
            memcpy(km->centers, c->centers, c->k * c->d * sizeof(float));
        }
    }
    if (best_labels != km->labels) {
        sm_cluster_id *t = km->labels;
        km->labels = best_labels;
        km->spare = t;
    }
    exact_inertia(c, km->labels, km->centers, sizes, part);
    res.n_distances = c->n_distances;
    for (size_t j = 0; j < c->k; j++)
        res.n_nonempty += sizes[j] > 0;
    if ((size_t)res.n_nonempty < c->k) {
        res.fewer_clusters = true;
        format_warning(res.warning, sizeof res.warning, res.n_nonempty, c->k);
    }
    km->result = res;
    km->fitted = true;
out:
    sm_free(sizes);
    sm_free(part);
    ctx_free(c);
    return rc;
}

int sm_kmeans_init_centers(sm_kmeans *km, const float *x, float *centers, sm_error *err)
{
    if (km == NULL || x == NULL || centers == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "k-means object, x or centers is NULL");
    if (km->params.init == SM_KMEANS_INIT_GIVEN)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "init is 'given': nothing to compute");
    km_ctx ctx;
    int rc = ctx_init(&ctx, &km->params, x, err);
    if (rc != SM_OK)
        return rc;
    rc = data_stats(&ctx, err);
    if (rc == SM_OK)
        rc = choose_initial_centers(&ctx, ctx.centers, NULL, 0, err);
    if (rc == SM_OK)
        memcpy(centers, ctx.centers, ctx.k * ctx.d * sizeof(float));
    ctx_free(&ctx);
    return rc;
}

int sm_kmeans_predict(const sm_kmeans *km, sm_cluster_id *labels, float *distances, const float *x,
                      size_t n_rows, size_t ld, sm_error *err)
{
    if (!sm_kmeans_is_fitted(km))
        return sm_error_set(err, SM_ERR_INVALID_STATE, "predict before a successful fit");
    const size_t d = km->params.d, k = (size_t)km->params.k;
    if (labels == NULL || (x == NULL && n_rows > 0))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "labels or x is NULL");
    if (ld < d)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "ld=%zu should be >= d=%zu", ld, d);
    size_t np = km_panel_count(k);
    float *panels = sm_aligned_alloc(np * d * KM_LANES, sizeof(float));
    float *small = sm_aligned_alloc(k * km_small_width(d), sizeof(float));
    if (panels == NULL || small == NULL) {
        sm_free(panels);
        sm_free(small);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for predict");
    }
    bool use_small = d <= 16;
    if (use_small)
        km_pack_small(small, km->centers, d, k, d);
    else
        km_pack_direct(panels, km->centers, d, k, d);
    size_t nsub = n_rows / KM_SUB_ROWS + (n_rows % KM_SUB_ROWS != 0);
#pragma omp parallel for num_threads(resolve_threads(km->params.n_threads)) schedule(dynamic, 1)
    for (size_t s = 0; s < nsub; s++) {
        size_t r0 = s * KM_SUB_ROWS, rows = SM_MIN((size_t)KM_SUB_ROWS, n_rows - r0);
        if (use_small)
            km_argmin_small(labels + r0, distances ? distances + r0 : NULL, x + r0 * ld, ld, rows,
                            d, small, k);
        else
            km_argmin_direct(labels + r0, distances ? distances + r0 : NULL, x + r0 * ld, ld, rows,
                             d, panels, np);
    }
    sm_free(panels);
    sm_free(small);
    return SM_OK;
}
