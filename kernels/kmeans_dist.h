/* SPDX-License-Identifier: MIT */
/*
 * Distance kernels of k-means: nearest center, all distances, one pair.
 * Centers are packed in "panels" of 16 (d x 16 floats, one center per lane) so
 * one AVX-512 register holds a coordinate of 16 centers and a point is
 * compared with 16 centers without horizontal sums. Two families: "direct"
 * computes sum (x - c)^2 lane-wise (exact to float rounding, used by every
 * bound-based algorithm), "dot" computes ||c'||^2 - 2 x'.c' on rows and
 * centers both shifted by the data mean (the Lloyd path for larger d).
 * Pure: no allocation, no threads; callers give scratch and split rows.
 */
#ifndef SEGMINT_KERNELS_KMEANS_DIST_H
#define SEGMINT_KERNELS_KMEANS_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "segmint/common.h"

#define KM_LANES 16

/* Panels needed for k centers. */
static inline size_t km_panel_count(size_t k)
{
    return (k + KM_LANES - 1) / KM_LANES;
}

/* Packs k centers (rows of c, leading dimension ldc) into km_panel_count(k)
 * panels of d x 16 floats; lanes >= k hold +inf so they never win. panels
 * must be 64-byte aligned and hold km_panel_count(k) * d * 16 floats. */
void km_pack_direct(float *panels, const float *c, size_t ldc, size_t k, size_t d);

/* As km_pack_direct for the dot family: panels hold c - mean, bias[j] =
 * ||c_j - mean||^2 (computed in double), and padding lanes hold 0 with
 * bias +inf. bias holds km_panel_count(k) * 16 floats. */
void km_pack_dot(float *panels, float *bias, const float *c, size_t ldc, size_t k, size_t d,
                 const float *mean);

/* For rows r < rows of x (leading dimension ldx): labels[r] = index of the
 * nearest of the packed centers (ties: smallest index) and, when dist2 is
 * not NULL, dist2[r] = its squared distance. */
void km_argmin_direct(sm_cluster_id *labels, float *dist2, const float *x, size_t ldx, size_t rows,
                      size_t d, const float *panels, size_t np);

/* Width the small-d kernel pads rows to: 4, 8 or 16 (d <= 16). */
static inline size_t km_small_width(size_t d)
{
    return d <= 4 ? 4 : d <= 8 ? 8 : 16;
}

/* Copies k centers into cp (k x km_small_width(d), zero padded). */
void km_pack_small(float *cp, const float *c, size_t ldc, size_t k, size_t d);

/* As km_argmin_direct for d <= 16 from centers packed by km_pack_small:
 * 16 rows per register, no horizontal reductions. The same sums in the same
 * order as the direct family (padding adds exact zeros), so the same labels. */
void km_argmin_small(sm_cluster_id *labels, float *dist2, const float *x, size_t ldx, size_t rows,
                     size_t d, const float *cp, size_t k);

/* For `count` rows x + idx[r] * ld and the centers packed by km_pack_small
 * (d <= 16): best[r] = nearest center (ties: smallest index), d1[r] its
 * squared distance, d2[r] the second smallest (ties count: a tie gives
 * d2 == d1). When allt is not NULL it receives every squared distance in
 * groups of 16 rows: row r, center j at allt[(r / 16) * 16 * k + j * 16 + r % 16]. */
void km_small_best2(sm_cluster_id *best, float *d1, float *d2, float *allt, const float *x,
                    size_t ld, const uint32_t *idx, size_t count, size_t d, const float *cp, size_t k);

/* Candidate rows passed to km_candidate_dists are zero-padded to a multiple
 * of this width (4, 8 or 16). */
static inline size_t km_candidate_width(size_t d)
{
    return d <= 4 ? 4 : d <= 8 ? 8 : 16;
}

/* Squared distances of `rows` (<= 16) rows x (leading dimension ld) to L
 * (<= 16) candidates (L rows of ldc floats, ldc = d rounded up to
 * km_candidate_width(d), zero padded): out[t * 16 + r]; lanes r >= rows
 * hold 0. Rows are transposed in registers, so every lane works. */
void km_candidate_dists(float *out, const float *x, size_t ld, size_t rows, size_t d,
                        const float *cand, size_t ldc, size_t L);

/* The dot family: xc holds `rows` rows already shifted by the mean
 * (leading dimension d, 64-byte aligned). keys[r] (if not NULL) receives
 * ||c'||^2 - 2 x'.c' of the winner; add ||x'||^2 for the squared distance. */
void km_argmin_dot(sm_cluster_id *labels, float *keys, const float *xc, size_t rows, size_t d,
                   const float *panels, const float *bias, size_t np);

/* All squared distances: out[r * ldo + j] for j < np * 16 (padding lanes +inf). */
void km_dist_direct(float *out, size_t ldo, const float *x, size_t ldx, size_t rows, size_t d,
                    const float *panels, size_t np);

/* Squared distance between two d-vectors, accumulated in float. */
float km_dist2(const float *a, const float *b, size_t d);

#endif
