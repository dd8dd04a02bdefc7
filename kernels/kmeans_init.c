/* SPDX-License-Identifier: MIT */
/*
 * k-means initialisation: greedy k-means++ (Arthur & Vassilvitskii, SODA
 * 2007; the greedy variant with 2 + ln k candidates per step that
 * scikit-learn uses), k-means|| (Bahmani et al., "Scalable k-means++", VLDB
 * 2012) and k distinct random rows (Floyd's sampling). Every sum is taken per
 * fixed block of rows and combined in block order; every random draw comes
 * from a stream named by (restart, purpose, block), so the chosen centers do
 * not depend on the thread count.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/kmeans_internal.h"


enum { STREAM_SEQUENTIAL = 0 };

/* Rows per distance-kernel call inside a block. */
#define INIT_SUB_ROWS 64

typedef struct pp_state {
    const float *pts;
    size_t m, ldp, d;
    const double *w;       /* NULL = all 1 */
    float *closest;        /* m: squared distance to the nearest chosen center */
    float **mins;          /* trials buffers of m: min(closest, distance to candidate t) */
    double *block_mass;    /* nb: sum of w * closest per block, in row order */
    double *block_prefix;  /* nb + 1 */
    size_t nb;
} pp_state;

/* First index i whose running sum of w * closest reaches r (numpy's
 * searchsorted on the cumulative sum), found through the block sums. */
static size_t pp_search(const pp_state *s, double r)
{
    size_t lo = 0, hi = s->nb - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->block_prefix[mid + 1] >= r)
            hi = mid;
        else
            lo = mid + 1;
    }
    size_t i0 = lo * SM_REDUCE_BLOCK, i1 = SM_MIN(s->m, i0 + SM_REDUCE_BLOCK);
    double acc = s->block_prefix[lo];
    size_t last_positive = i0;
    for (size_t i = i0; i < i1; i++) {
        double mass = (s->w ? s->w[i] : 1.0) * s->closest[i];
        acc += mass;
        if (mass > 0.0)
            last_positive = i;
        if (acc >= r)
            return i;
    }
    /* The scan rounds differently from the block sum: take the block's last
     * row that can be drawn at all. */
    return last_positive;
}

/* closest[i] = |x_i - center|^2 for the first center, then the block
 * masses and prefix sums. */
static void pp_first(km_ctx *c, pp_state *s, const float *center)
{
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
    for (size_t b = 0; b < s->nb; b++) {
        size_t i0 = b * SM_REDUCE_BLOCK, i1 = SM_MIN(s->m, i0 + SM_REDUCE_BLOCK);
        double mass = 0.0;
        for (size_t i = i0; i < i1; i++) {
            float v = km_dist2(s->pts + i * s->ldp, center, s->d);
            s->closest[i] = v;
            mass += (s->w ? s->w[i] : 1.0) * v;
        }
        s->block_mass[b] = mass;
    }
    s->block_prefix[0] = 0.0;
    for (size_t b = 0; b < s->nb; b++)
        s->block_prefix[b + 1] = s->block_prefix[b] + s->block_mass[b];
}

/* acc[t] = sum over rows [i0, i1) of w * min(closest, |x - cand_t|^2). */
static void pp_block_potentials(double *acc, float *dist, const pp_state *s, size_t i0, size_t i1,
                                const float *cand, size_t ldc, size_t trials)
{
    for (size_t t0 = 0; t0 < trials; t0 += KM_LANES) {
        size_t L = SM_MIN((size_t)KM_LANES, trials - t0);
#if defined(__AVX512F__)
        __m512d lo[KM_LANES], hi[KM_LANES];
        for (size_t t = 0; t < L; t++)
            lo[t] = hi[t] = _mm512_setzero_pd();
        for (size_t r0 = i0; r0 < i1; r0 += KM_LANES) {
            size_t rows = SM_MIN((size_t)KM_LANES, i1 - r0);
            __mmask16 valid = (__mmask16)(rows == KM_LANES ? 0xFFFFu : (1u << rows) - 1u);
            km_candidate_dists(dist, s->pts + r0 * s->ldp, s->ldp, rows, s->d, cand + t0 * ldc, ldc, L);
            __m512 cl = _mm512_maskz_loadu_ps(valid, s->closest + r0);
            __m512d wlo = _mm512_set1_pd(1.0), whi = wlo;
            if (s->w != NULL) {
                wlo = _mm512_maskz_loadu_pd((__mmask8)valid, s->w + r0);
                whi = _mm512_maskz_loadu_pd((__mmask8)(valid >> 8), s->w + r0 + 8);
            }
            for (size_t t = 0; t < L; t++) {
                __m512 v = _mm512_min_ps(_mm512_loadu_ps(dist + t * KM_LANES), cl);
                v = _mm512_maskz_mov_ps(valid, v);
                _mm512_mask_storeu_ps(s->mins[t0 + t] + r0, valid, v);
                lo[t] = _mm512_fmadd_pd(wlo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)), lo[t]);
                hi[t] = _mm512_fmadd_pd(whi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), hi[t]);
            }
        }
        for (size_t t = 0; t < L; t++)
            acc[t0 + t] = _mm512_reduce_add_pd(_mm512_add_pd(lo[t], hi[t]));
#else
        for (size_t t = 0; t < L; t++)
            acc[t0 + t] = 0.0;
        for (size_t r0 = i0; r0 < i1; r0 += KM_LANES) {
            size_t rows = SM_MIN((size_t)KM_LANES, i1 - r0);
            km_candidate_dists(dist, s->pts + r0 * s->ldp, s->ldp, rows, s->d, cand + t0 * ldc, ldc, L);
            for (size_t t = 0; t < L; t++)
                for (size_t r = 0; r < rows; r++) {
                    float v = dist[t * KM_LANES + r], cl = s->closest[r0 + r];
                    v = v < cl ? v : cl;
                    s->mins[t0 + t][r0 + r] = v;
                    acc[t0 + t] += (s->w ? s->w[r0 + r] : 1.0) * (double)v;
                }
        }
#endif
    }
}

/* Block masses and prefix sums of w * closest (row order within a block). */
static void pp_masses(km_ctx *c, pp_state *s)
{
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
    for (size_t b = 0; b < s->nb; b++) {
        size_t i1 = SM_MIN(s->m, (b + 1) * SM_REDUCE_BLOCK);
        double mass = 0.0;
        for (size_t i = b * SM_REDUCE_BLOCK; i < i1; i++)
            mass += (s->w ? s->w[i] : 1.0) * s->closest[i];
        s->block_mass[b] = mass;
    }
    s->block_prefix[0] = 0.0;
    for (size_t b = 0; b < s->nb; b++)
        s->block_prefix[b + 1] = s->block_prefix[b] + s->block_mass[b];
}

/* Index drawn with probability proportional to w (uniform when w is NULL). */
static size_t draw_weighted(sm_rng *rng, const double *w, size_t m)
{
    if (w == NULL)
        return (size_t)sm_rng_below(rng, m);
    double total = 0.0;
    for (size_t i = 0; i < m; i++)
        total += w[i];
    double r = sm_rng_uniform(rng) * total, acc = 0.0;
    for (size_t i = 0; i < m; i++) {
        acc += w[i];
        if (acc > r)
            return i;
    }
    return m - 1;
}

int km_init_plusplus(km_ctx *c, float *out, const float *pts, size_t m, size_t ldp,
                     const double *weights, size_t k, uint64_t stream, sm_error *err)
{
    const sm_kmeans_params *p = c->p;
    const size_t d = c->d;
    size_t trials = p->n_local_trials > 0 ? (size_t)p->n_local_trials
                                          : 2 + (size_t)log((double)k);
    size_t lanes = KM_LANES * KM_LANES; /* per-thread distance block: 16 candidates x 16 rows */
    pp_state s = {pts, m, ldp, d, weights, NULL, NULL, NULL, NULL, sm_block_count(m, SM_REDUCE_BLOCK)};
    /* trials + 1 buffers of m floats: closest and one per candidate; choosing
     * candidate t swaps its buffer in as the new closest (no second pass) */
    float **bufs = sm_calloc(trials + 1, sizeof(float *));
    bool bufs_ok = bufs != NULL;
    for (size_t t = 0; bufs_ok && t <= trials; t++)
        bufs_ok = (bufs[t] = sm_alloc_array(m, sizeof(float))) != NULL;
    if (bufs_ok) {
        s.closest = bufs[trials];
        s.mins = bufs;
    }
    s.block_mass = sm_alloc_array(s.nb, sizeof(double));
    s.block_prefix = sm_alloc_array(s.nb + 1, sizeof(double));
    double *pot_part = sm_alloc_array(s.nb, trials * sizeof(double));
    size_t *cand = sm_alloc_array(trials, sizeof(size_t));
    /* candidate rows zero-padded for km_candidate_dists */
    const size_t cw = km_candidate_width(d), ldc = (d + cw - 1) / cw * cw;
    float *cand_rows = sm_aligned_alloc(trials, ldc * sizeof(float));
    float *buf = sm_aligned_alloc((size_t)c->n_threads, lanes * sizeof(float));
    int rc = SM_OK;
    if (!bufs_ok || s.block_mass == NULL || s.block_prefix == NULL || pot_part == NULL ||
        cand == NULL || cand_rows == NULL || buf == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for k-means++ (%zu rows)", m);
        goto out_free;
    }
    sm_rng rng;
    sm_rng_init(&rng, p->seed, stream);
    size_t first = draw_weighted(&rng, weights, m);
    memcpy(out, pts + first * ldp, d * sizeof(float));
    pp_first(c, &s, out);
    for (size_t ci = 1; ci < k; ci++) {
        double pot = s.block_prefix[s.nb];
        for (size_t t = 0; t < trials; t++) {
            cand[t] = pp_search(&s, sm_rng_uniform(&rng) * pot);
            memcpy(cand_rows + t * ldc, pts + cand[t] * ldp, d * sizeof(float));
            memset(cand_rows + t * ldc + d, 0, (ldc - d) * sizeof(float));
        }
        /* Potential of each candidate: sum of min(closest, |x - cand|^2),
         * 16 rows at a time in 8-lane double accumulators (a fixed order). */
#pragma omp parallel num_threads(c->n_threads)
        {
            float *dist = buf + (size_t)omp_get_thread_num() * lanes;
#pragma omp for schedule(dynamic, 1)
            for (size_t b = 0; b < s.nb; b++) {
                double *acc = pot_part + b * trials;
                size_t i1 = SM_MIN(m, (b + 1) * SM_REDUCE_BLOCK);
                pp_block_potentials(acc, dist, &s, b * SM_REDUCE_BLOCK, i1, cand_rows, ldc, trials);
            }
        }
        size_t best = 0;
        double best_pot = INFINITY;
        for (size_t t = 0; t < trials; t++) {
            double pot_t = 0.0;
            for (size_t b = 0; b < s.nb; b++)
                pot_t += pot_part[b * trials + t];
            if (pot_t < best_pot) {
                best_pot = pot_t;
                best = t;
            }
        }
        memcpy(out + ci * d, cand_rows + best * ldc, d * sizeof(float));
        float *t = bufs[best];
        bufs[best] = bufs[trials];
        bufs[trials] = t;
        s.closest = t;
        pp_masses(c, &s);
        c->n_distances += (uint64_t)m * trials;
        if (sm_progress_report(&p->progress, "kmeans-init", ci + 1, k)) {
            rc = sm_error_set(err, SM_ERR_CANCELLED, "k-means++ cancelled");
            goto out_free;
        }
    }
out_free:
    for (size_t t = 0; bufs != NULL && t <= trials; t++)
        sm_free(bufs[t]);
    sm_free(bufs);
    sm_free(s.block_mass);
    sm_free(s.block_prefix);
    sm_free(pot_part);
    sm_free(cand);
    sm_free(cand_rows);
    sm_free(buf);
    return rc;
}

int km_init_parallel(km_ctx *c, float *out, uint64_t stream, sm_error *err)
{
    const sm_kmeans_params *p = c->p;
    const size_t n = c->n, d = c->d, k = c->k, ld = c->ld;
    const size_t nb = sm_block_count(n, SM_REDUCE_BLOCK);
    const double ell = p->oversampling * (double)k;
    float *closest = sm_alloc_array(n, sizeof(float));
    uint32_t *nearest = sm_alloc_array(n, sizeof(uint32_t));
    double *mass = sm_alloc_array(nb, sizeof(double));
    size_t *picked_count = sm_calloc(nb, sizeof(size_t));
    size_t **picked = sm_calloc(nb, sizeof(size_t *));
    size_t cap = k + 1, m = 0;
    float *cand = sm_aligned_alloc(cap, d * sizeof(float));
    float *panels = NULL;
    sm_cluster_id *lab = NULL;
    float *dist = NULL;
    double *weight = NULL;
    int rc = SM_OK;
    if (closest == NULL || nearest == NULL || mass == NULL || picked_count == NULL ||
        picked == NULL || cand == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for k-means||");
        goto out_free;
    }
    sm_rng rng;
    sm_rng_init(&rng, p->seed, stream);
    size_t first = (size_t)sm_rng_below(&rng, n);
    memcpy(cand, c->x + first * ld, d * sizeof(float));
    m = 1;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
    for (size_t b = 0; b < nb; b++) {
        size_t i1 = SM_MIN(n, (b + 1) * SM_REDUCE_BLOCK);
        double s = 0.0;
        for (size_t i = b * SM_REDUCE_BLOCK; i < i1; i++) {
            closest[i] = km_dist2(c->x + i * ld, cand, d);
            nearest[i] = 0;
            s += closest[i];
        }
        mass[b] = s;
    }
    for (int round = 0; round < p->init_rounds; round++) {
        double phi = 0.0;
        for (size_t b = 0; b < nb; b++)
            phi += mass[b];
        if (!(phi > 0.0))
            break; /* every row coincides with a candidate */
        /* Each row joins independently with probability ell * d^2 / phi,
         * drawn from its block's own stream. */
        int fail = 0;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1) reduction(| : fail)
        for (size_t b = 0; b < nb; b++) {
            sm_rng brng;
            sm_rng_init(&brng, p->seed,
                        stream ^ km_stream(0, 0, (uint64_t)round * nb + b + 1));
            size_t i0 = b * SM_REDUCE_BLOCK, i1 = SM_MIN(n, i0 + SM_REDUCE_BLOCK), got = 0;
            sm_free(picked[b]);
            picked[b] = NULL;
            picked_count[b] = 0;
            for (size_t i = i0; i < i1; i++) {
                double prob = ell * (double)closest[i] / phi;
                if (sm_rng_uniform(&brng) < prob) {
                    if (picked[b] == NULL) {
                        picked[b] = sm_alloc_array(i1 - i0, sizeof(size_t));
                        if (picked[b] == NULL) {
                            fail = 1;
                            break;
                        }
                    }
                    picked[b][got++] = i;
                }
            }
            picked_count[b] = got;
        }
        if (fail) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for k-means|| candidates");
            goto out_free;
        }
        size_t added = 0;
        for (size_t b = 0; b < nb; b++)
            added += picked_count[b];
        if (added == 0)
            continue;
        if (m + added > cap) {
            size_t ncap = SM_MAX(cap * 2, m + added);
            float *grown = sm_aligned_alloc(ncap, d * sizeof(float));
            if (grown == NULL) {
                rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for k-means|| candidates");
                goto out_free;
            }
            memcpy(grown, cand, m * d * sizeof(float));
            sm_free(cand);
            cand = grown;
            cap = ncap;
        }
        size_t base = m;
        for (size_t b = 0; b < nb; b++)
            for (size_t t = 0; t < picked_count[b]; t++)
                memcpy(cand + (m++) * d, c->x + picked[b][t] * ld, d * sizeof(float));
        /* Nearest of the new candidates for every row. */
        size_t np = km_panel_count(added);
        sm_free(panels);
        panels = sm_aligned_alloc(np * d * KM_LANES, sizeof(float));
        if (panels == NULL) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for k-means|| candidates");
            goto out_free;
        }
        km_pack_direct(panels, cand + base * d, d, added, d);
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 1)
        for (size_t b = 0; b < nb; b++) {
            sm_cluster_id l[INIT_SUB_ROWS];
            float dd[INIT_SUB_ROWS];
            size_t i1 = SM_MIN(n, (b + 1) * SM_REDUCE_BLOCK);
            double s = 0.0;
            for (size_t i0 = b * SM_REDUCE_BLOCK; i0 < i1; i0 += INIT_SUB_ROWS) {
                size_t rows = SM_MIN((size_t)INIT_SUB_ROWS, i1 - i0);
                km_argmin_direct(l, dd, c->x + i0 * ld, ld, rows, d, panels, np);
                for (size_t r = 0; r < rows; r++) {
                    if (dd[r] < closest[i0 + r]) {
                        closest[i0 + r] = dd[r];
                        nearest[i0 + r] = (uint32_t)(base + l[r]);
                    }
                    s += closest[i0 + r];
                }
            }
            mass[b] = s;
        }
        c->n_distances += (uint64_t)n * added;
        if (sm_progress_report(&p->progress, "kmeans-init", (uint64_t)round + 1,
                               (uint64_t)p->init_rounds)) {
            rc = sm_error_set(err, SM_ERR_CANCELLED, "k-means|| cancelled");
            goto out_free;
        }
    }
    if (m <= k) {
        /* Too few candidates (few distinct rows): plain k-means++ decides. */
        rc = km_init_plusplus(c, out, c->x, n, ld, NULL, k, stream, err);
        goto out_free;
    }
    /* Weight = rows nearest to each candidate (integers: order-free). */
    weight = sm_calloc(m, sizeof(double));
    if (weight == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for k-means|| weights");
        goto out_free;
    }
    for (size_t i = 0; i < n; i++)
        weight[nearest[i]] += 1.0;
    rc = km_init_plusplus(c, out, cand, m, d, weight, k, stream ^ km_stream(0, 0, 0xFFFFFFFFu),
                          err);
out_free:
    for (size_t b = 0; picked != NULL && b < nb; b++)
        sm_free(picked[b]);
    sm_free(picked);
    sm_free(picked_count);
    sm_free(closest);
    sm_free(nearest);
    sm_free(mass);
    sm_free(cand);
    sm_free(panels);
    sm_free(lab);
    sm_free(dist);
    sm_free(weight);
    return rc;
}

/* Floyd's algorithm: k distinct indices of [0, n) with one draw each; a
 * small open-addressing set remembers the chosen ones. */
int km_init_random(km_ctx *c, float *out, uint64_t stream, sm_error *err)
{
    const size_t n = c->n, k = c->k, d = c->d;
    size_t cap = 16;
    while (cap < 2 * k)
        cap *= 2;
    size_t *set = sm_alloc_array(cap, sizeof(size_t));
    size_t *order = sm_alloc_array(k, sizeof(size_t));
    if (set == NULL || order == NULL) {
        sm_free(set);
        sm_free(order);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for random init");
    }
    for (size_t i = 0; i < cap; i++)
        set[i] = SIZE_MAX;
    sm_rng rng;
    sm_rng_init(&rng, c->p->seed, stream);
    size_t got = 0;
    for (size_t j = n - k; j < n; j++) {
        size_t t = (size_t)sm_rng_below(&rng, (uint64_t)j + 1);
        for (int pass = 0; pass < 2; pass++) {
            size_t h = (t * 0x9E3779B97F4A7C15ull) & (cap - 1);
            while (set[h] != SIZE_MAX && set[h] != t)
                h = (h + 1) & (cap - 1);
            if (set[h] == t) { /* taken: Floyd takes j instead (never taken yet) */
                t = j;
                continue;
            }
            set[h] = t;
            order[got++] = t;
            break;
        }
    }
    for (size_t j = 0; j < k; j++)
        memcpy(out + j * d, c->x + order[j] * c->ld, d * sizeof(float));
    sm_free(set);
    sm_free(order);
    return SM_OK;
}
