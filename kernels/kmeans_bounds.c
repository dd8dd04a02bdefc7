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

static void first_rows(km_ctx *c, km_part *pt, size_t i0, size_t i1, float *scratch)
{
    const size_t k = c->k, d = c->d, ld = c->ld, np = km_panel_count(k);
    const size_t lanes = np * KM_LANES, t = c->n_groups;
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
            c->upper[i] = sqrtf(b1);
            float *l = c->lower + i * c->lower_stride;
            if (c->algorithm == SM_KMEANS_HAMERLY) {
                l[0] = sqrtf(b2);
            } else if (c->algorithm == SM_KMEANS_ELKAN) {
                for (size_t j = 0; j < k; j++)
                    l[j] = sqrtf(dr[j]);
            } else {
                for (size_t g = 0; g < t; g++) {
                    float m = INFINITY;
                    for (uint32_t q = c->group_start[g]; q < c->group_start[g + 1]; q++) {
                        uint32_t j = c->group_members[q];
                        if (j != best && dr[j] < m)
                            m = dr[j];
                    }
                    l[g] = sqrtf(m);
                }
            }
            pt->changed += c->labels[i] != best;
            c->labels[i] = (sm_cluster_id)best;
            km_part_add(pt, best, c->x + i * ld, d, +1);
        }
    }
    pt->ndist += (uint64_t)(i1 - i0) * k;
}

/* Records a label change of row x from a to b in the chunk's deltas. */
static inline void move_row(km_part *pt, const float *x, size_t d, size_t a, size_t b)
{
    km_part_add(pt, a, x, d, -1);
    km_part_add(pt, b, x, d, +1);
    pt->changed++;
}

/* --- Hamerly -------------------------------------------------------------------------- */

static void hamerly_rows(km_ctx *c, km_part *pt, size_t i0, size_t i1, float *scratch)
{
    const size_t k = c->k, d = c->d, ld = c->ld, np = km_panel_count(k);
    float *dist = scratch;
    uint64_t nd = 0;
    for (size_t i = i0; i < i1; i++) {
        size_t a = c->labels[i];
        float u = c->upper[i] + c->drift[a];
        float l = c->lower[i] - (a == c->max_drift_index ? c->max_drift[1] : c->max_drift[0]);
        float bound = SM_MAX(l, c->center_half[a]);
        /* Prune only on a strict inequality: on a tie the full scan below
         * gives the smallest index, as Lloyd does (duplicate centers). */
        if (!(u < bound)) {
            const float *x = c->x + i * ld;
            u = sqrtf(km_dist2(x, c->centers + a * d, d));
            nd++;
            if (!(u < bound)) {
                km_dist_direct(dist, np * KM_LANES, x, ld, 1, d, c->panels, np);
                nd += k;
                size_t best = 0;
                float b1 = dist[0], b2 = INFINITY;
                for (size_t j = 1; j < k; j++) {
                    float v = dist[j];
                    if (v < b1) {
                        b2 = b1;
                        b1 = v;
                        best = j;
                    } else if (v < b2) {
                        b2 = v;
                    }
                }
                u = sqrtf(b1);
                l = sqrtf(b2);
                if (best != a) {
                    move_row(pt, x, d, a, best);
                    c->labels[i] = (sm_cluster_id)best;
                }
            }
        }
        c->upper[i] = u;
        c->lower[i] = l;
    }
    pt->ndist += nd;
}

/* --- Elkan ---------------------------------------------------------------------------- */

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
                move_row(pt, x, d, a0, a);
                c->labels[i] = (sm_cluster_id)a;
            }
        }
        c->upper[i] = u;
    }
    pt->ndist += nd;
}

/* --- Yinyang --------------------------------------------------------------------------- */

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
            move_row(pt, x, d, a, b);
            c->labels[i] = (sm_cluster_id)b;
        }
        c->upper[i] = best;
    }
    pt->ndist += nd;
}

/* --- pass selection -------------------------------------------------------------------- */

void km_bounds_first_pass(km_ctx *c)
{
    km_pack_direct(c->panels, c->centers, c->d, c->k, c->d);
    c->rows_fn = first_rows;
    c->full_sums = true;
}

void km_bounds_next_pass(km_ctx *c)
{
    km_pack_direct(c->panels, c->centers, c->d, c->k, c->d);
    c->full_sums = false;
    if (c->algorithm == SM_KMEANS_HAMERLY)
        c->rows_fn = hamerly_rows;
    else if (c->algorithm == SM_KMEANS_ELKAN)
        c->rows_fn = elkan_rows;
    else
        c->rows_fn = yinyang_rows;
}
