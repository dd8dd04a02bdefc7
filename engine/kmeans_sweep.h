/* SPDX-License-Identifier: MIT */
/*
 * Model selection for k-means (`-k auto`): fit every k of a range from the
 * same seed, score each by the silhouette (sampled and seeded), with
 * Calinski-Harabasz and Davies-Bouldin reported beside it and the inertia
 * curve for an elbow plot, and keep the model of the best silhouette.
 * Shared by `segmint kmeans` and `segmint run`.
 */
#ifndef SEGMINT_ENGINE_KMEANS_SWEEP_H
#define SEGMINT_ENGINE_KMEANS_SWEEP_H

#include <stddef.h>

#include "segmint/kmeans.h"

typedef struct sm_k_score {
    int k;
    double inertia;
    double silhouette;        /* NaN when fewer than 2 clusters are non-empty */
    double calinski_harabasz;
    double davies_bouldin;
    double seconds;
    int n_iter;
} sm_k_score;

/* Fits k = k_lo..k_hi (clamped to n - 1) with `base` (its k, n, d and ld are
 * set here), scoring each; scores gets k_hi - k_lo + 1 entries (*n_scores
 * says how many were fitted). The best model (highest silhouette, the
 * smallest k on ties) is returned in *best_model, its index in *best.
 * Errors: SM_ERR_INVALID_ARG (fewer than k_lo + 1 rows), the fits' errors. */
int sm_kmeans_sweep(const sm_kmeans_params *base, const float *x, size_t n, size_t d, size_t ld, int k_lo,
                    int k_hi, size_t silhouette_sample, sm_k_score *scores, size_t *n_scores, size_t *best,
                    sm_kmeans **best_model, sm_error *err);

#endif
