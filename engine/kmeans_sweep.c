/* SPDX-License-Identifier: MIT */
#include "engine/kmeans_sweep.h"

#include <math.h>
#include <omp.h>

#include "kernels/core.h"

int sm_kmeans_sweep(const sm_kmeans_params *base, const float *x, size_t n, size_t d, size_t ld, int k_lo,
                    int k_hi, size_t silhouette_sample, sm_k_score *scores, size_t *n_scores, size_t *best,
                    sm_kmeans **best_model, sm_error *err)
{
    *best_model = NULL;
    *n_scores = 0;
    *best = 0;
    if (n < 2 || (size_t)k_hi > n - 1)
        k_hi = n < 2 ? 0 : (int)(n - 1);
    if (k_lo < 1 || k_hi < k_lo)
        return sm_error_set(err, SM_ERR_INVALID_ARG,
                            "-k auto needs at least %d rows for the range %d..%d (n_samples=%zu)", k_lo + 1, k_lo,
                            k_hi, n);
    sm_kmeans *kept = NULL;
    int rc = SM_OK;
    for (int k = k_lo; k <= k_hi; k++) {
        sm_k_score *s = &scores[k - k_lo];
        double started = omp_get_wtime();
        sm_kmeans_params p = *base;
        p.k = k;
        p.n = n;
        p.d = d;
        p.ld = ld;
        sm_kmeans *km = NULL;
        rc = sm_kmeans_create(&p, &km, err);
        if (rc == SM_OK)
            rc = sm_kmeans_fit(km, x, NULL, err);
        sm_kmeans_result r;
        if (rc == SM_OK) {
            sm_kmeans_get_result(km, &r);
            *s = (sm_k_score){k, r.inertia, NAN, NAN, NAN, 0, r.n_iter};
            const sm_cluster_id *labels = sm_kmeans_get_labels(km);
            rc = sm_silhouette_score(&s->silhouette, x, n, d, ld, labels, k, silhouette_sample, base->seed,
                                     base->n_threads, err);
            if (rc == SM_ERR_INVALID_ARG) { /* < 2 non-empty clusters (duplicates): not a candidate */
                rc = SM_OK;
                s->silhouette = NAN;
            } else if (rc == SM_OK) {
                rc = sm_calinski_harabasz_score(&s->calinski_harabasz, x, n, d, ld, labels, k, base->n_threads, err);
                if (rc == SM_OK)
                    rc = sm_davies_bouldin_score(&s->davies_bouldin, x, n, d, ld, labels, k, base->n_threads, err);
            }
        }
        s->seconds = omp_get_wtime() - started;
        if (rc != SM_OK) {
            sm_kmeans_destroy(km);
            break;
        }
        (*n_scores)++;
        const sm_k_score *b = &scores[*best];
        bool better = kept == NULL || (!isnan(s->silhouette) && (isnan(b->silhouette) || s->silhouette > b->silhouette));
        if (better) {
            sm_kmeans_destroy(kept);
            kept = km;
            *best = (size_t)(k - k_lo);
        } else {
            sm_kmeans_destroy(km);
        }
    }
    if (rc != SM_OK) {
        sm_kmeans_destroy(kept);
        return rc;
    }
    *best_model = kept;
    return SM_OK;
}
