/* SPDX-License-Identifier: MIT */
/*
 * Cluster-quality indices for choosing k (declared publicly in
 * segmint/kmeans.h: silhouette, Calinski-Harabasz, Davies-Bouldin) and the
 * per-cluster means they share, which the CLI also uses for segment
 * profiles. Pure: arrays in, numbers out; deterministic for any thread count
 * (per-chunk double partials combined in chunk order).
 */
#ifndef SEGMINT_KERNELS_CLUSTER_METRICS_H
#define SEGMINT_KERNELS_CLUSTER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "segmint/kmeans.h"

/* means[j * d + f] = mean of column f over the rows labelled j (0 for an
 * empty cluster), counts[j] = rows labelled j; labels must be < k.
 * Errors: SM_ERR_NOMEM. */
int km_cluster_means(double *means, int64_t *counts, const float *x, size_t n, size_t d, size_t ld,
                     const sm_cluster_id *labels, size_t k, int n_threads, sm_error *err);

#endif
