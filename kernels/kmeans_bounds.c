/* SPDX-License-Identifier: MIT */
/*
 * Bound-based exact k-means iterations: Hamerly ("Making k-means even
 * faster", SDM 2010), Elkan ("Using the triangle inequality to accelerate
 * k-means", ICML 2003) and Yinyang (Ding et al., "Yinyang K-Means", ICML
 * 2015). Each keeps an upper bound on the distance to the assigned center and
 * lower bounds on the others, moves them by how far the centers moved, and
 * computes a distance only when the bounds cannot prove the label. Labels that
 * change update per-chunk deltas of the cluster sums, so rows whose label is
 * proved are never read. Distances are Euclidean (not squared), in float.
 */
#include <math.h>
#include <string.h>

#include "kernels/kmeans_internal.h"

/* The index lists are written 16 entries at a time; keep room after them. */
#define IDX_SLACK KM_LANES

/* Rows per all-distances call in the first pass. */
#define FIRST_ROWS 64

/* Rounds a non-negative double down to a float that is not larger (lower
 * bounds must not grow by rounding). */
static float round_down_float(double v)
{
    float f = (float)v;
    return (double)f > v ? nextafterf(f, 0.0f) : f;
}

int km_bounds_alloc(km_ctx *c, sm_error *err)
{
    const size_t n = c->n, k = c->k;
    size_t stride = 1;
    if (c->algorithm == SM_KMEANS_ELKAN) {
        stride = k;
    } else if (c->algorithm == SM_KMEANS_YINYANG) {
        /* t = k/10 groups, as in the paper. */
        c->n_groups = SM_MAX((size_t)1, k / 10);
        stride = c->n_groups;
    }
    c->lower_stride = stride;
    size_t cells;
    if (!sm_mul_size(n, stride, &cells))
        return sm_error_set(err, SM_ERR_OVERFLOW, "n=%zu x %zu lower bounds overflow", n, stride);
    c->upper = sm_alloc_array(n, sizeof(float));
    c->lower = sm_alloc_array(cells, sizeof(float));
    c->center_half = sm_alloc_array(k, sizeof(float));
    bool ok = c->upper != NULL && c->lower != NULL && c->center_half != NULL;
    if (ok && c->algorithm == SM_KMEANS_ELKAN) {
        c->cc = sm_alloc_array(k, k * sizeof(float));
        ok = c->cc != NULL;
    }
    if (ok && c->algorithm == SM_KMEANS_YINYANG) {
        c->group_of = sm_alloc_array(k, sizeof(uint32_t));
        c->group_start = sm_alloc_array(c->n_groups + 1, sizeof(uint32_t));
        c->group_members = sm_alloc_array(k, sizeof(uint32_t));
        c->group_drift = sm_calloc(c->n_groups, sizeof(float));
        /* group centers and sums (t x d doubles each) and counts (t) */
        c->group_work = sm_alloc_array(c->n_groups, (2 * c->d + 1) * sizeof(double));
        ok = c->group_of != NULL && c->group_start != NULL && c->group_members != NULL &&
             c->group_drift != NULL && c->group_work != NULL;
    }
    if (!ok) {
        km_bounds_free(c);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %s bounds (%zu x %zu floats)",
                            sm_kmeans_algorithm_name(c->algorithm), n, stride);
    }
    return SM_OK;
}

void km_bounds_free(km_ctx *c)
{
    sm_free(c->upper);
    sm_free(c->lower);
    sm_free(c->center_half);
    sm_free(c->cc);
    sm_free(c->group_of);
    sm_free(c->group_start);
    sm_free(c->group_members);
    sm_free(c->group_drift);
    sm_free(c->group_work);
    c->group_work = NULL;
    c->upper = c->lower = c->center_half = c->cc = c->group_drift = NULL;
    c->group_of = c->group_start = c->group_members = NULL;
}

void km_bounds_reset_row(km_ctx *c, size_t i)
{
    /* An infinite upper bound and zero lower bounds prove nothing, so the
     * next pass recomputes this row from scratch. */
    c->upper[i] = INFINITY;
    float *l = c->lower + i * c->lower_stride;
    for (size_t g = 0; g < c->lower_stride; g++)
        l[g] = 0.0f;
}

static double center_dist(const float *a, const float *b, size_t d)
{
    double s = 0.0;
    for (size_t f = 0; f < d; f++) {
        double t = (double)a[f] - (double)b[f];
        s += t * t;
    }
    return sqrt(s);
}

void km_bounds_prepare(km_ctx *c, const float *centers)
{
    const size_t k = c->k, d = c->d;
    if (c->algorithm == SM_KMEANS_HAMERLY || c->algorithm == SM_KMEANS_ELKAN) {
        bool elkan = c->algorithm == SM_KMEANS_ELKAN;
#pragma omp parallel for num_threads(c->n_threads) schedule(dynamic, 4)
        for (size_t j = 0; j < k; j++) {
            double nearest = INFINITY;
            for (size_t m = 0; m < k; m++) {
                if (m == j) {
                    if (elkan)
                        c->cc[j * k + m] = 0.0f;
                    continue;
                }
                double dist = center_dist(centers + j * d, centers + m * d, d);
                if (elkan)
                    c->cc[j * k + m] = round_down_float(0.5 * dist);
                if (dist < nearest)
                    nearest = dist;
            }
            c->center_half[j] = isinf(nearest) ? INFINITY : round_down_float(0.5 * nearest);
        }
    } else if (c->algorithm == SM_KMEANS_YINYANG) {
        for (size_t g = 0; g < c->n_groups; g++) {
            float m = 0.0f;
            for (uint32_t t = c->group_start[g]; t < c->group_start[g + 1]; t++)
                m = SM_MAX(m, c->drift[c->group_members[t]]);
            c->group_drift[g] = m;
        }
    }
}

void km_yinyang_group(km_ctx *c, const float *centers)
{
    /* Lloyd on the k centers for 5 iterations (the paper's grouping), from
     * t evenly spaced centers; serial and tiny (5 k t d). */
    const size_t k = c->k, d = c->d, t = c->n_groups;
    double *gcent = c->group_work, *gsum = gcent + t * d;
    size_t *gcount = (size_t *)(gsum + t * d);
    for (size_t g = 0; g < t; g++)
        for (size_t f = 0; f < d; f++)
            gcent[g * d + f] = centers[(g * k / t) * d + f];
    for (int it = 0; it < 5; it++) {
        for (size_t j = 0; j < k; j++) {
            size_t best = 0;
            double best_d = INFINITY;
            for (size_t g = 0; g < t; g++) {
                double s = 0.0;
                for (size_t f = 0; f < d; f++) {
                    double u = (double)centers[j * d + f] - gcent[g * d + f];
                    s += u * u;
                }
                if (s < best_d) {
                    best_d = s;
                    best = g;
                }
            }
            c->group_of[j] = (uint32_t)best;
        }
        for (size_t g = 0; g < t; g++) {
            gcount[g] = 0;
            for (size_t f = 0; f < d; f++)
                gsum[g * d + f] = 0.0;
        }
        for (size_t j = 0; j < k; j++) {
            size_t g = c->group_of[j];
            gcount[g]++;
            for (size_t f = 0; f < d; f++)
                gsum[g * d + f] += centers[j * d + f];
        }
        for (size_t g = 0; g < t; g++)
            if (gcount[g] > 0)
                for (size_t f = 0; f < d; f++)
                    gcent[g * d + f] = gsum[g * d + f] / (double)gcount[g];
    }
    /* Members by group (counting sort keeps index order inside a group). */
    for (size_t g = 0; g <= t; g++)
        c->group_start[g] = 0;
    for (size_t j = 0; j < k; j++)
        c->group_start[c->group_of[j] + 1]++;
    for (size_t g = 0; g < t; g++)
        c->group_start[g + 1] += c->group_start[g];
    for (size_t g = 0; g < t; g++)
        gcount[g] = c->group_start[g];
    for (size_t j = 0; j < k; j++)
        c->group_members[gcount[c->group_of[j]]++] = (uint32_t)j;
}

/* --- the first pass: every distance, then the bounds -------------------------------- */

/* Sets the bounds of row i from its squared distances: dist(j) gives the
 * squared distance to center j, best is the nearest, b1/b2 the two smallest. */
#define KM_SET_BOUNDS(c, i, best, b1, b2, DIST)                                                 \
    do {                                                                                        \
        (c)->upper[i] = sqrtf(b1);                                                              \
        float *l_ = (c)->lower + (i) * (c)->lower_stride;                                       \
        if ((c)->algorithm == SM_KMEANS_HAMERLY || (c)->n_groups == 1) {                        \
            /* one group: the bound is the second-best distance */                              \
            l_[0] = sqrtf(b2);                                                                  \
        } else if ((c)->algorithm == SM_KMEANS_ELKAN) {                                         \
            for (size_t j_ = 0; j_ < (c)->k; j_++)                                              \
                l_[j_] = sqrtf(DIST(j_));                                                       \
        } else {                                                                                \
            for (size_t g_ = 0; g_ < (c)->n_groups; g_++) {                                     \
                float m_ = INFINITY;                                                            \
                for (uint32_t q_ = (c)->group_start[g_]; q_ < (c)->group_start[g_ + 1]; q_++) { \
                    uint32_t j_ = (c)->group_members[q_];                                       \
                    if (j_ != (best) && DIST(j_) < m_)                                          \
                        m_ = DIST(j_);                                                          \
                }                                                                               \
                l_[g_] = sqrtf(m_);                                                             \
            }                                                                                   \
        }                                                                                       \
    } while (0)

/* Small-d scratch: index list, best, d1, d2 (KM_SUB_ROWS each), then the
 * all-distances block (KM_SUB_ROWS x k). */
typedef struct small_scratch {
    uint32_t *idx;
    sm_cluster_id *best;
    float *d1, *d2, *allt;
} small_scratch;

static small_scratch small_split(float *scratch)
{
    small_scratch w;
    w.idx = (uint32_t *)scratch;
    w.best = (sm_cluster_id *)(scratch + KM_SUB_ROWS + IDX_SLACK);
    w.d1 = scratch + 2 * KM_SUB_ROWS + IDX_SLACK;
    w.d2 = scratch + 3 * KM_SUB_ROWS + IDX_SLACK;
    w.allt = scratch + 4 * KM_SUB_ROWS + 2 * IDX_SLACK;
    return w;
}

static inline float allt_at(const float *allt, size_t k, size_t q, size_t j)
{
    return allt[(q / KM_LANES) * KM_LANES * k + j * KM_LANES + q % KM_LANES];
}

static void first_rows(km_ctx *c, km_part *pt, size_t i0, size_t i1, float *scratch)
{
    const size_t k = c->k, d = c->d, ld = c->ld, np = km_panel_count(k);
    const size_t lanes = np * KM_LANES;
    if (c->use_small) {
        small_scratch w = small_split(scratch);
        bool all = c->algorithm == SM_KMEANS_ELKAN ||
                   (c->algorithm == SM_KMEANS_YINYANG && c->n_groups > 1);
        for (size_t s = i0; s < i1; s += KM_SUB_ROWS) {
            size_t rows = SM_MIN((size_t)KM_SUB_ROWS, i1 - s);
            for (size_t r = 0; r < rows; r++)
                w.idx[r] = (uint32_t)r;
            km_small_best2(w.best, w.d1, w.d2, all ? w.allt : NULL, c->x + s * ld, ld, w.idx, rows,
                           d, c->small_c, k);
            for (size_t r = 0; r < rows; r++) {
                size_t i = s + r, best = w.best[r];
#define KM_DIST_SMALL(j) allt_at(w.allt, k, r, (j))
                KM_SET_BOUNDS(c, i, best, w.d1[r], w.d2[r], KM_DIST_SMALL);
#undef KM_DIST_SMALL
                pt->changed += c->labels[i] != best;
                c->labels[i] = (sm_cluster_id)best;
                km_part_add(pt, best, c->x + i * ld, d, c->dpad, +1);
            }
        }
        pt->ndist += (uint64_t)(i1 - i0) * k;
        return;
    }
    float *dist = scratch;
    for (size_t s = i0; s < i1; s += FIRST_ROWS) {
        size_t rows = SM_MIN((size_t)FIRST_ROWS, i1 - s);
        km_dist_direct(dist, lanes, c->x + s * ld, ld, rows, d, c->panels, np);
        for (size_t r = 0; r < rows; r++) {
            size_t i = s + r;
            float *dr = dist + r * lanes;
            size_t best = 0;
            float b1 = dr[0], b2 = INFINITY;
            for (size_t j = 1; j < k; j++) {
                float v = dr[j];
                if (v < b1) {
                    b2 = b1;
                    b1 = v;
                    best = j;
                } else if (v < b2) {
                    b2 = v;
                }
            }
#define KM_DIST_ROW(j) dr[(j)]
            KM_SET_BOUNDS(c, i, best, b1, b2, KM_DIST_ROW);
#undef KM_DIST_ROW
            pt->changed += c->labels[i] != best;
            c->labels[i] = (sm_cluster_id)best;
            km_part_add(pt, best, c->x + i * ld, d, c->dpad, +1);
        }
    }
    pt->ndist += (uint64_t)(i1 - i0) * k;
}

/* Records a label change of row x from a to b in the chunk's deltas. */
static inline void move_row(km_part *pt, const float *x, size_t d, size_t dpad, size_t a,
                            size_t b)
{
    km_part_add(pt, a, x, d, dpad, -1);
    km_part_add(pt, b, x, d, dpad, +1);
    pt->changed++;
}

/* --- Hamerly -------------------------------------------------------------------------- */

/* Rows whose bounds fail are collected (branch-free) and recomputed in
 * batches: for d <= 16 with the transposed kernel (no tightening step: a
 * full row costs little more than one distance), otherwise after tightening
 * the upper bound, by copying them together for the blocked kernel. */
static void hamerly_rows(km_ctx *c, km_part *pt, size_t i0, size_t i1, float *scratch)
{
    const size_t k = c->k, d = c->d, ld = c->ld, np = km_panel_count(k);
    const float m1 = c->max_drift[0], m2 = c->max_drift[1];
    const size_t imax = c->max_drift_index;
    small_scratch w = small_split(scratch);
    float *rowbuf = w.allt;                    /* large d: KM_SUB_ROWS x d copied rows */
    float *dist = rowbuf + KM_SUB_ROWS * d;    /* large d: FIRST_ROWS x lanes */
    uint64_t nd = 0;
    for (size_t s = i0; s < i1; s += KM_SUB_ROWS) {
        size_t rows = SM_MIN((size_t)KM_SUB_ROWS, i1 - s), cnt = 0, r = 0;
#if defined(__AVX512F__)
        if (k <= KM_LANES) {
            /* 16 rows at a time; per-center values come from one register */
            __mmask16 km = (__mmask16)((1u << k) - 1u);
            __m512 vdrift = _mm512_maskz_loadu_ps(km, c->drift);
            __m512 vhalf = _mm512_maskz_loadu_ps(km, c->center_half);
            __m512i vimax = _mm512_set1_epi32((int)imax), iota = _mm512_setr_epi32(
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            for (; r + KM_LANES <= rows; r += KM_LANES) {
                size_t i = s + r;
                __m512i a = _mm512_loadu_si512(c->labels + i);
                __m512 u = _mm512_add_ps(_mm512_loadu_ps(c->upper + i), _mm512_permutexvar_ps(a, vdrift));
                __mmask16 is_max = _mm512_cmpeq_epi32_mask(a, vimax);
                __m512 shrink = _mm512_mask_mov_ps(_mm512_set1_ps(m1), is_max, _mm512_set1_ps(m2));
                __m512 l = _mm512_sub_ps(_mm512_loadu_ps(c->lower + i), shrink);
                __m512 bound = _mm512_max_ps(l, _mm512_permutexvar_ps(a, vhalf));
                _mm512_storeu_ps(c->upper + i, u);
                _mm512_storeu_ps(c->lower + i, l);
                __mmask16 need = _mm512_cmp_ps_mask(u, bound, _CMP_NLT_UQ);
                __m512i rows_v = _mm512_add_epi32(iota, _mm512_set1_epi32((int)r));
                _mm512_storeu_si512(w.idx + cnt, _mm512_maskz_compress_epi32(need, rows_v));
                cnt += (size_t)__builtin_popcount(need);
            }
        }
#endif
        for (; r < rows; r++) {
            size_t i = s + r, a = c->labels[i];
            float u = c->upper[i] + c->drift[a];
            float l = c->lower[i] - (a == imax ? m2 : m1);
            float bound = SM_MAX(l, c->center_half[a]);
            c->upper[i] = u;
            c->lower[i] = l;
            w.idx[cnt] = (uint32_t)r;
            /* Prune only on a strict inequality: on a tie the recomputation
             * gives the smallest index, as Lloyd does (duplicate centers). */
            cnt += !(u < bound);
        }
        if (!c->use_small) {
            /* tighten the upper bound; keep the rows it does not settle */
            size_t kept = 0;
            for (size_t q = 0; q < cnt; q++) {
                size_t i = s + w.idx[q], a = c->labels[i];
                float u = sqrtf(km_dist2(c->x + i * ld, c->centers + a * d, d));
                float bound = SM_MAX(c->lower[i], c->center_half[a]);
                c->upper[i] = u;
                w.idx[kept] = w.idx[q];
                kept += !(u < bound);
            }
            nd += cnt;
            cnt = kept;
        }
        if (cnt == 0)
            continue;
        nd += (uint64_t)cnt * k;
        if (c->use_small) {
            km_small_best2(w.best, w.d1, w.d2, NULL, c->x + s * ld, ld, w.idx, cnt, d, c->small_c, k);
        } else {
            for (size_t q = 0; q < cnt; q++)
                memcpy(rowbuf + q * d, c->x + (s + w.idx[q]) * ld, d * sizeof(float));
            for (size_t q0 = 0; q0 < cnt; q0 += FIRST_ROWS) {
                size_t m = SM_MIN((size_t)FIRST_ROWS, cnt - q0), lanes = np * KM_LANES;
                km_dist_direct(dist, lanes, rowbuf + q0 * d, d, m, d, c->panels, np);
                for (size_t q = q0; q < q0 + m; q++) {
                    const float *dr = dist + (q - q0) * lanes;
                    size_t best = 0;
                    float b1 = dr[0], b2 = INFINITY;
                    for (size_t j = 1; j < k; j++) {
                        float v = dr[j];
                        if (v < b1) {
                            b2 = b1;
                            b1 = v;
                            best = j;
                        } else if (v < b2) {
                            b2 = v;
                        }
                    }
                    w.best[q] = (sm_cluster_id)best;
                    w.d1[q] = b1;
                    w.d2[q] = b2;
                }
            }
        }
        for (size_t q = 0; q < cnt; q++) {
            size_t i = s + w.idx[q], a = c->labels[i], best = w.best[q];
            c->upper[i] = sqrtf(w.d1[q]);
            c->lower[i] = sqrtf(w.d2[q]);
            if (best != a) {
                move_row(pt, c->x + i * ld, d, c->dpad, a, best);
                c->labels[i] = (sm_cluster_id)best;
            }
        }
    }
    pt->ndist += nd;
}

/* --- Elkan ---------------------------------------------------------------------------- */

/* Elkan for d <= 16: the bound tests as usual, but a row that any test
 * fails gets all k distances from the batched kernel (as cheap as a few
 * single distances at this d), which also makes every lower bound exact. */
static void elkan_rows_small(km_ctx *c, km_part *pt, size_t i0, size_t i1, float *scratch)
{
    const size_t k = c->k, d = c->d, ld = c->ld;
    const float *drift = c->drift;
    small_scratch w = small_split(scratch);
    uint64_t nd = 0;
    for (size_t s = i0; s < i1; s += KM_SUB_ROWS) {
        size_t rows = SM_MIN((size_t)KM_SUB_ROWS, i1 - s), cnt = 0, r = 0;
#if defined(__AVX512F__)
        if (k <= KM_LANES) {
            /* one row per register: k lower bounds, k drifts, k halved
             * center distances */
            __mmask16 km = (__mmask16)((1u << k) - 1u);
            __m512 vdrift = _mm512_maskz_loadu_ps(km, drift);
            for (; r < rows; r++) {
                size_t i = s + r, a = c->labels[i];
                float *l = c->lower + i * k;
                __m512 lv = _mm512_max_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(km, l), vdrift),
                                          _mm512_setzero_ps());
                _mm512_mask_storeu_ps(l, km, lv);
                float u = c->upper[i] + drift[a];
                c->upper[i] = u;
                __m512 z = _mm512_max_ps(lv, _mm512_maskz_loadu_ps(km, c->cc + a * k));
                __mmask16 fail = _mm512_mask_cmp_ps_mask((__mmask16)(km & ~(1u << a)),
                                                         _mm512_set1_ps(u), z, _CMP_NLT_UQ);
                w.idx[cnt] = (uint32_t)r;
                cnt += fail != 0 && !(u < c->center_half[a]);
            }
        }
#endif
        for (; r < rows; r++) {
            size_t i = s + r, a = c->labels[i];
            float *l = c->lower + i * k;
            for (size_t j = 0; j < k; j++) {
                float v = l[j] - drift[j];
                l[j] = v > 0.0f ? v : 0.0f;
            }
            float u = c->upper[i] + drift[a];
            c->upper[i] = u;
            bool need = false;
            if (!(u < c->center_half[a])) /* strict, as in hamerly_rows */
                for (size_t j = 0; j < k && !need; j++)
                    need = j != a && !(u < SM_MAX(l[j], c->cc[a * k + j]));
            w.idx[cnt] = (uint32_t)r;
            cnt += need;
        }
        if (cnt == 0)
            continue;
        nd += (uint64_t)cnt * k;
        km_small_best2(w.best, w.d1, w.d2, w.allt, c->x + s * ld, ld, w.idx, cnt, d, c->small_c, k);
        for (size_t q = 0; q < cnt; q++) {
            size_t i = s + w.idx[q], a = c->labels[i], best = w.best[q];
            float *l = c->lower + i * k;
            for (size_t j = 0; j < k; j++)
                l[j] = sqrtf(allt_at(w.allt, k, q, j));
            c->upper[i] = sqrtf(w.d1[q]);
            if (best != a) {
                move_row(pt, c->x + i * ld, d, c->dpad, a, best);
                c->labels[i] = (sm_cluster_id)best;
            }
        }
    }
    pt->ndist += nd;
}

static void elkan_rows(km_ctx *c, km_part *pt, size_t i0, size_t i1, float *scratch)
{
    (void)scratch;
    const size_t k = c->k, d = c->d, ld = c->ld;
    const float *drift = c->drift;
    uint64_t nd = 0;
    for (size_t i = i0; i < i1; i++) {
        float *l = c->lower + i * k;
        for (size_t j = 0; j < k; j++) {
            float v = l[j] - drift[j];
            l[j] = v > 0.0f ? v : 0.0f;
        }
        size_t a = c->labels[i], a0 = a;
        float u = c->upper[i] + drift[a];
        if (!(u < c->center_half[a])) { /* strict, as in hamerly_rows */
            const float *x = c->x + i * ld;
            bool tight = false;
            for (size_t j = 0; j < k; j++) {
                if (j == a)
                    continue;
                float z = SM_MAX(l[j], c->cc[a * k + j]);
                if (u < z)
                    continue;
                if (!tight) {
                    u = sqrtf(km_dist2(x, c->centers + a * d, d));
                    l[a] = u;
                    tight = true;
                    nd++;
                    if (u < z)
                        continue;
                }
                float dj = sqrtf(km_dist2(x, c->centers + j * d, d));
                nd++;
                l[j] = dj;
                if (dj < u || (dj == u && j < a)) {
                    a = j;
                    u = dj;
                }
            }
            if (a != a0) {
                move_row(pt, x, d, c->dpad, a0, a);
                c->labels[i] = (sm_cluster_id)a;
            }
        }
        c->upper[i] = u;
    }
    pt->ndist += nd;
}

/* --- Yinyang --------------------------------------------------------------------------- */

/* Yinyang for d <= 16: the global filter as usual; a row that fails it gets
 * all k distances from the batched kernel and exact group bounds. */
static void yinyang_rows_small(km_ctx *c, km_part *pt, size_t i0, size_t i1, float *scratch)
{
    const size_t k = c->k, d = c->d, ld = c->ld, t = c->n_groups;
    small_scratch w = small_split(scratch);
    uint64_t nd = 0;
    for (size_t s = i0; s < i1; s += KM_SUB_ROWS) {
        size_t rows = SM_MIN((size_t)KM_SUB_ROWS, i1 - s), cnt = 0, r = 0;
#if defined(__AVX512F__)
        if (t == 1 && k <= KM_LANES) {
            __m512 vdrift = _mm512_maskz_loadu_ps((__mmask16)((1u << k) - 1u), c->drift);
            __m512 gd = _mm512_set1_ps(c->group_drift[0]);
            __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            for (; r + KM_LANES <= rows; r += KM_LANES) {
                size_t i = s + r;
                __m512i a = _mm512_loadu_si512(c->labels + i);
                __m512 u = _mm512_add_ps(_mm512_loadu_ps(c->upper + i), _mm512_permutexvar_ps(a, vdrift));
                __m512 lb = _mm512_sub_ps(_mm512_loadu_ps(c->lower + i), gd);
                _mm512_storeu_ps(c->upper + i, u);
                _mm512_storeu_ps(c->lower + i, lb);
                __mmask16 need = _mm512_cmp_ps_mask(u, lb, _CMP_NLT_UQ);
                __m512i rows_v = _mm512_add_epi32(iota, _mm512_set1_epi32((int)r));
                _mm512_storeu_si512(w.idx + cnt, _mm512_maskz_compress_epi32(need, rows_v));
                cnt += (size_t)__builtin_popcount(need);
            }
        }
#endif
        for (; r < rows; r++) {
            size_t i = s + r, a = c->labels[i];
            float *lb = c->lower + i * t;
            float glb = INFINITY;
            for (size_t g = 0; g < t; g++) {
                lb[g] -= c->group_drift[g];
                glb = SM_MIN(glb, lb[g]);
            }
            float u = c->upper[i] + c->drift[a];
            c->upper[i] = u;
            w.idx[cnt] = (uint32_t)r;
            cnt += !(u < glb); /* strict, as in hamerly_rows */
        }
        if (cnt == 0)
            continue;
        nd += (uint64_t)cnt * k;
        km_small_best2(w.best, w.d1, w.d2, t > 1 ? w.allt : NULL, c->x + s * ld, ld, w.idx, cnt, d,
                       c->small_c, k);
        for (size_t q = 0; q < cnt; q++) {
            size_t i = s + w.idx[q], a = c->labels[i], best = w.best[q];
#define KM_DIST_SMALL(j) allt_at(w.allt, k, q, (j))
            KM_SET_BOUNDS(c, i, best, w.d1[q], w.d2[q], KM_DIST_SMALL);
#undef KM_DIST_SMALL
            if (best != a) {
                move_row(pt, c->x + i * ld, d, c->dpad, a, best);
                c->labels[i] = (sm_cluster_id)best;
            }
        }
    }
    pt->ndist += nd;
}

static void yinyang_rows(km_ctx *c, km_part *pt, size_t i0, size_t i1, float *scratch)
{
    const size_t k = c->k, d = c->d, ld = c->ld, t = c->n_groups;
    const float *drift = c->drift;
    float *old = scratch;          /* t: group bounds before this update */
    float *val = scratch + t;      /* k: exact distance or bound, per member examined */
    uint32_t *examined = (uint32_t *)(scratch + t + k); /* t */
    uint64_t nd = 0;
    for (size_t i = i0; i < i1; i++) {
        float *lb = c->lower + i * t;
        size_t a = c->labels[i];
        float u = c->upper[i] + drift[a];
        float glb = INFINITY;
        for (size_t g = 0; g < t; g++) {
            old[g] = lb[g];
            lb[g] = old[g] - c->group_drift[g];
            glb = SM_MIN(glb, lb[g]);
        }
        if (u < glb) { /* global filter; strict, as in hamerly_rows */
            c->upper[i] = u;
            continue;
        }
        const float *x = c->x + i * ld;
        u = sqrtf(km_dist2(x, c->centers + a * d, d));
        nd++;
        if (u < glb) {
            c->upper[i] = u;
            continue;
        }
        size_t b = a, nex = 0;
        float best = u;
        for (size_t g = 0; g < t; g++) {
            if (lb[g] > best) /* group filter */
                continue;
            examined[nex++] = (uint32_t)g;
            for (uint32_t q = c->group_start[g]; q < c->group_start[g + 1]; q++) {
                uint32_t j = c->group_members[q];
                if (j == a) {
                    val[j] = u;
                    continue;
                }
                float bound = old[g] - drift[j];
                if (bound > best) { /* local filter: cannot beat the best */
                    val[j] = bound;
                    continue;
                }
                float dj = sqrtf(km_dist2(x, c->centers + (size_t)j * d, d));
                nd++;
                val[j] = dj;
                if (dj < best || (dj == best && j < b)) {
                    best = dj;
                    b = j;
                }
            }
        }
        /* Invariant: lb[g] <= min over members j != label of d(x, c_j). */
        for (size_t e = 0; e < nex; e++) {
            size_t g = examined[e];
            float m = INFINITY;
            for (uint32_t q = c->group_start[g]; q < c->group_start[g + 1]; q++) {
                uint32_t j = c->group_members[q];
                if (j != b && val[j] < m)
                    m = val[j];
            }
            lb[g] = m;
        }
        if (b != a) {
            size_t ga = c->group_of[a];
            bool ga_examined = false;
            for (size_t e = 0; e < nex; e++)
                ga_examined |= examined[e] == ga;
            if (!ga_examined)
                lb[ga] = SM_MIN(lb[ga], u);
            move_row(pt, x, d, c->dpad, a, b);
            c->labels[i] = (sm_cluster_id)b;
        }
        c->upper[i] = best;
    }
    pt->ndist += nd;
}

/* --- pass selection -------------------------------------------------------------------- */

void km_bounds_first_pass(km_ctx *c)
{
    if (c->use_small)
        km_pack_small(c->small_c, c->centers, c->d, c->k, c->d);
    else
        km_pack_direct(c->panels, c->centers, c->d, c->k, c->d);
    c->rows_fn = first_rows;
    c->full_sums = true;
}

void km_bounds_next_pass(km_ctx *c)
{
    if (c->use_small)
        km_pack_small(c->small_c, c->centers, c->d, c->k, c->d);
    else
        km_pack_direct(c->panels, c->centers, c->d, c->k, c->d);
    c->full_sums = false;
    if (c->algorithm == SM_KMEANS_HAMERLY)
        c->rows_fn = hamerly_rows;
    else if (c->algorithm == SM_KMEANS_ELKAN)
        c->rows_fn = c->use_small ? elkan_rows_small : elkan_rows;
    else
        c->rows_fn = c->use_small ? yinyang_rows_small : yinyang_rows;
}
