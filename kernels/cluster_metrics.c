/* SPDX-License-Identifier: MIT */
/*
 * Silhouette (Rousseeuw, "Silhouettes: a graphical aid...", J. Comput. Appl.
 * Math. 1987), Calinski-Harabasz (Commun. Stat. 1974) and Davies-Bouldin
 * (IEEE TPAMI 1979), with scikit-learn's conventions for the edge cases.
 * Everything is summed in double per fixed chunk of rows and combined in
 * chunk order; the silhouette sample comes from one seeded stream.
 */
#include "kernels/cluster_metrics.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"
#include "kernels/kmeans_dist.h"
#include "kernels/rng.h"

#define METRIC_MAX_CHUNKS 64

static int threads_of(int n_threads)
{
    return n_threads > 0 ? n_threads : omp_get_max_threads();
}

/* Rows per chunk: whole SM_REDUCE_BLOCKs, at most METRIC_MAX_CHUNKS chunks
 * (depends on n only). */
static size_t chunk_rows_for(size_t n)
{
    size_t blocks = sm_block_count(n, SM_REDUCE_BLOCK);
    return sm_block_count(blocks, METRIC_MAX_CHUNKS) * SM_REDUCE_BLOCK;
}

static int check_labels(const sm_cluster_id *labels, size_t n, size_t k, sm_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= k)
            return sm_error_set(err, SM_ERR_INVALID_ARG, "label %" SM_PRI_CLUSTER " of row %zu is >= k=%zu",
                                labels[i], i + 1, k);
    return SM_OK;
}

int km_cluster_means(double *means, int64_t *counts, const float *x, size_t n, size_t d, size_t ld,
                     const sm_cluster_id *labels, size_t k, int n_threads, sm_error *err)
{
    size_t rows = chunk_rows_for(n), nc = sm_block_count(n, rows);
    double *part = sm_alloc_array(nc * k, d * sizeof(double));
    if (part == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for cluster means");
#pragma omp parallel for num_threads(threads_of(n_threads)) schedule(dynamic, 1)
    for (size_t ch = 0; ch < nc; ch++) {
        double *s = part + ch * k * d;
        memset(s, 0, k * d * sizeof(double));
        size_t i1 = SM_MIN(n, (ch + 1) * rows);
        for (size_t i = ch * rows; i < i1; i++)
            for (size_t f = 0; f < d; f++)
                s[labels[i] * d + f] += x[i * ld + f];
    }
    for (size_t j = 0; j < k; j++)
        counts[j] = 0;
    for (size_t i = 0; i < n; i++)
        counts[labels[i]]++;
    for (size_t j = 0; j < k * d; j++) {
        double s = 0.0;
        for (size_t ch = 0; ch < nc; ch++)
            s += part[ch * k * d + j];
        means[j] = counts[j / d] > 0 ? s / (double)counts[j / d] : 0.0;
    }
    sm_free(part);
    return SM_OK;
}

/* Number of non-empty clusters and the check 2 <= m <= rows - 1. */
static int check_cluster_count(const int64_t *counts, size_t k, size_t rows, size_t *m, sm_error *err)
{
    size_t nonempty = 0;
    for (size_t j = 0; j < k; j++)
        nonempty += counts[j] > 0;
    *m = nonempty;
    if (nonempty < 2 || nonempty > rows - 1)
        return sm_error_set(err, SM_ERR_INVALID_ARG,
                            "number of labels is %zu; valid values are 2 to n_samples - 1 = %zu (inclusive)",
                            nonempty, rows - 1);
    return SM_OK;
}

int sm_calinski_harabasz_score(double *out, const float *x, size_t n, size_t d, size_t ld,
                               const sm_cluster_id *labels, int k, int n_threads, sm_error *err)
{
    if (out == NULL || x == NULL || labels == NULL || k <= 0 || n == 0 || d == 0 || ld < d)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "Calinski-Harabasz needs data, labels and k >= 1");
    size_t kk = (size_t)k, m;
    int rc = check_labels(labels, n, kk, err);
    if (rc != SM_OK)
        return rc;
    double *means = sm_alloc_array(kk + 1, d * sizeof(double));
    int64_t *counts = sm_alloc_array(kk, sizeof(int64_t));
    size_t rows = chunk_rows_for(n), nc = sm_block_count(n, rows);
    double *part = sm_alloc_array(nc, sizeof(double));
    if (means == NULL || counts == NULL || part == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for Calinski-Harabasz");
        goto out;
    }
    rc = km_cluster_means(means, counts, x, n, d, ld, labels, kk, n_threads, err);
    if (rc == SM_OK)
        rc = check_cluster_count(counts, kk, n, &m, err);
    if (rc != SM_OK)
        goto out;
    double *mu = means + kk * d;
    for (size_t f = 0; f < d; f++) {
        double s = 0.0;
        for (size_t j = 0; j < kk; j++)
            s += (double)counts[j] * means[j * d + f];
        mu[f] = s / (double)n;
    }
    double extra = 0.0;
    for (size_t j = 0; j < kk; j++)
        for (size_t f = 0; f < d; f++) {
            double t = means[j * d + f] - mu[f];
            extra += (double)counts[j] * t * t;
        }
#pragma omp parallel for num_threads(threads_of(n_threads)) schedule(dynamic, 1)
    for (size_t ch = 0; ch < nc; ch++) {
        double s = 0.0;
        size_t i1 = SM_MIN(n, (ch + 1) * rows);
        for (size_t i = ch * rows; i < i1; i++)
            for (size_t f = 0; f < d; f++) {
                double t = x[i * ld + f] - means[labels[i] * d + f];
                s += t * t;
            }
        part[ch] = s;
    }
    double intra = 0.0;
    for (size_t ch = 0; ch < nc; ch++)
        intra += part[ch];
    *out = intra == 0.0 ? 1.0 : extra * (double)(n - m) / (intra * (double)(m - 1));
out:
    sm_free(means);
    sm_free(counts);
    sm_free(part);
    return rc;
}

int sm_davies_bouldin_score(double *out, const float *x, size_t n, size_t d, size_t ld,
                            const sm_cluster_id *labels, int k, int n_threads, sm_error *err)
{
    if (out == NULL || x == NULL || labels == NULL || k <= 0 || n == 0 || d == 0 || ld < d)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "Davies-Bouldin needs data, labels and k >= 1");
    size_t kk = (size_t)k, m;
    int rc = check_labels(labels, n, kk, err);
    if (rc != SM_OK)
        return rc;
    double *means = sm_alloc_array(kk, d * sizeof(double));
    int64_t *counts = sm_alloc_array(kk, sizeof(int64_t));
    size_t rows = chunk_rows_for(n), nc = sm_block_count(n, rows);
    double *part = sm_alloc_array(nc, kk * sizeof(double));
    double *spread = sm_alloc_array(kk, sizeof(double));
    if (means == NULL || counts == NULL || part == NULL || spread == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for Davies-Bouldin");
        goto out;
    }
    rc = km_cluster_means(means, counts, x, n, d, ld, labels, kk, n_threads, err);
    if (rc == SM_OK)
        rc = check_cluster_count(counts, kk, n, &m, err);
    if (rc != SM_OK)
        goto out;
#pragma omp parallel for num_threads(threads_of(n_threads)) schedule(dynamic, 1)
    for (size_t ch = 0; ch < nc; ch++) {
        double *s = part + ch * kk;
        memset(s, 0, kk * sizeof(double));
        size_t i1 = SM_MIN(n, (ch + 1) * rows);
        for (size_t i = ch * rows; i < i1; i++) {
            double e = 0.0;
            for (size_t f = 0; f < d; f++) {
                double t = x[i * ld + f] - means[labels[i] * d + f];
                e += t * t;
            }
            s[labels[i]] += sqrt(e);
        }
    }
    bool all_spread_zero = true, all_centers_equal = true;
    for (size_t j = 0; j < kk; j++) {
        double s = 0.0;
        for (size_t ch = 0; ch < nc; ch++)
            s += part[ch * kk + j];
        spread[j] = counts[j] > 0 ? s / (double)counts[j] : 0.0;
        all_spread_zero &= fabs(spread[j]) <= 1e-8;
    }
    double total = 0.0;
    for (size_t a = 0; a < kk; a++) {
        if (counts[a] == 0)
            continue;
        double worst = 0.0;
        for (size_t b = 0; b < kk; b++) {
            if (b == a || counts[b] == 0)
                continue;
            double dist = 0.0;
            for (size_t f = 0; f < d; f++) {
                double t = means[a * d + f] - means[b * d + f];
                dist += t * t;
            }
            dist = sqrt(dist);
            all_centers_equal &= dist <= 1e-8;
            /* coincident centroids count as infinitely far (ratio 0), as in scikit-learn */
            double ratio = dist > 0.0 ? (spread[a] + spread[b]) / dist : 0.0;
            worst = SM_MAX(worst, ratio);
        }
        total += worst;
    }
    *out = all_spread_zero || all_centers_equal ? 0.0 : total / (double)m;
out:
    sm_free(means);
    sm_free(counts);
    sm_free(part);
    sm_free(spread);
    return rc;
}

/* m distinct indices of [0, n), sorted (Floyd's algorithm with a hash set). */
static int sample_rows(size_t *out, size_t n, size_t m, uint64_t seed, sm_error *err)
{
    size_t cap = 16;
    while (cap < 2 * m)
        cap *= 2;
    size_t *set = sm_alloc_array(cap, sizeof(size_t));
    if (set == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for the silhouette sample");
    for (size_t i = 0; i < cap; i++)
        set[i] = SIZE_MAX;
    sm_rng rng;
    sm_rng_init(&rng, seed, 0x5117u);
    size_t got = 0;
    for (size_t j = n - m; j < n; j++) {
        size_t t = (size_t)sm_rng_below(&rng, (uint64_t)j + 1);
        for (int pass = 0; pass < 2; pass++) {
            size_t h = (t * 0x9E3779B97F4A7C15ull) & (cap - 1);
            while (set[h] != SIZE_MAX && set[h] != t)
                h = (h + 1) & (cap - 1);
            if (set[h] == t) {
                t = j;
                continue;
            }
            set[h] = t;
            out[got++] = t;
            break;
        }
    }
    sm_free(set);
    return SM_OK;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

int sm_silhouette_score(double *out, const float *x, size_t n, size_t d, size_t ld,
                        const sm_cluster_id *labels, int k, size_t sample_size, uint64_t seed,
                        int n_threads, sm_error *err)
{
    if (out == NULL || x == NULL || labels == NULL || k <= 0 || n == 0 || d == 0 || ld < d)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "silhouette needs data, labels and k >= 1");
    size_t kk = (size_t)k;
    int rc = check_labels(labels, n, kk, err);
    if (rc != SM_OK)
        return rc;
    size_t m = sample_size > 0 && sample_size < n ? sample_size : n, nthreads = (size_t)threads_of(n_threads);
    size_t np = km_panel_count(m), lanes = np * KM_LANES;
    size_t *rows = sm_alloc_array(m, sizeof(size_t));
    float *xs = sm_aligned_alloc(m, d * sizeof(float));
    sm_cluster_id *ls = sm_alloc_array(m, sizeof(sm_cluster_id));
    int64_t *counts = sm_calloc(kk, sizeof(int64_t));
    float *panels = sm_aligned_alloc(np * d, KM_LANES * sizeof(float));
    double *sil = sm_alloc_array(m, sizeof(double));
    double *sums = sm_alloc_array(nthreads, kk * sizeof(double));
    float *dist = sm_aligned_alloc(nthreads * KM_LANES, lanes * sizeof(float));
    if (rows == NULL || xs == NULL || ls == NULL || counts == NULL || panels == NULL || sil == NULL ||
        sums == NULL || dist == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for the silhouette of %zu rows", m);
        goto out;
    }
    if (m < n) {
        rc = sample_rows(rows, n, m, seed, err);
        if (rc != SM_OK)
            goto out;
        qsort(rows, m, sizeof *rows, cmp_size);
    } else {
        for (size_t i = 0; i < n; i++)
            rows[i] = i;
    }
    for (size_t i = 0; i < m; i++) {
        memcpy(xs + i * d, x + rows[i] * ld, d * sizeof(float));
        ls[i] = labels[rows[i]];
        counts[ls[i]]++;
    }
    size_t nonempty;
    rc = check_cluster_count(counts, kk, m, &nonempty, err);
    if (rc != SM_OK)
        goto out;
    km_pack_direct(panels, xs, d, m, d);
    size_t groups = sm_block_count(m, KM_LANES);
    /* 16 sampled rows at a time against every sampled row (all rows packed
     * as "centers"); each row's per-cluster sums run in sample order. */
#pragma omp parallel num_threads((int)nthreads)
    {
        size_t me = (size_t)omp_get_thread_num();
        double *s = sums + me * kk;
        float *dr = dist + me * KM_LANES * lanes;
#pragma omp for schedule(dynamic, 1)
        for (size_t g = 0; g < groups; g++) {
            size_t r0 = g * KM_LANES, nr = SM_MIN((size_t)KM_LANES, m - r0);
            km_dist_direct(dr, lanes, xs + r0 * d, d, nr, d, panels, np);
            for (size_t r = 0; r < nr; r++) {
                size_t i = r0 + r;
                memset(s, 0, kk * sizeof(double));
                const float *row = dr + r * lanes;
                for (size_t j = 0; j < m; j++)
                    s[ls[j]] += sqrt((double)row[j]);
                size_t own = ls[i];
                if (counts[own] <= 1) {
                    sil[i] = 0.0;
                    continue;
                }
                /* the row's distance to itself is 0 (exactly: x - x) */
                double a = s[own] / (double)(counts[own] - 1), b = INFINITY;
                for (size_t j = 0; j < kk; j++)
                    if (j != own && counts[j] > 0)
                        b = SM_MIN(b, s[j] / (double)counts[j]);
                double mx = SM_MAX(a, b);
                sil[i] = mx > 0.0 ? (b - a) / mx : 0.0;
            }
        }
    }
    double total = 0.0;
    for (size_t i = 0; i < m; i++)
        total += sil[i];
    *out = total / (double)m;
out:
    sm_free(rows);
    sm_free(xs);
    sm_free(ls);
    sm_free(counts);
    sm_free(panels);
    sm_free(sil);
    sm_free(sums);
    sm_free(dist);
    return rc;
}
