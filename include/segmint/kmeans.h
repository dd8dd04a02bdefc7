/* SPDX-License-Identifier: MIT */
/**
 * @file kmeans.h
 * @brief k-means clustering of a float32 matrix, deterministic whatever the thread count.
 *
 * Usage: fill an sm_kmeans_params with sm_kmeans_params_init(), set k and
 * the data shape (n, d, ld), create the object, fit it on the data, read the
 * labels, centers and result, destroy it:
 *
 *     sm_kmeans_params p;
 *     sm_kmeans_params_init(&p);
 *     p.k = 8; p.n = n; p.d = d;
 *     sm_kmeans *km;
 *     if (sm_kmeans_create(&p, &km, &err) == SM_OK && sm_kmeans_fit(km, x, NULL, &err) == SM_OK)
 *         use(sm_kmeans_get_labels(km), sm_kmeans_get_centers(km));
 *     sm_kmeans_destroy(km);
 *
 * Initialisation: greedy k-means++ (Arthur & Vassilvitskii 2007, with the
 * 2 + ln k candidates per step that scikit-learn uses), k-means|| (Bahmani et
 * al. 2012), random rows, or centers given by the caller. Algorithms: Lloyd,
 * Hamerly (2010), Elkan (2003), Yinyang (Ding et al. 2015) and mini-batch
 * (Sculley 2010). From the same initial centers lloyd, hamerly, elkan and
 * yinyang return the same labels and centers except where a point is
 * equidistant from two centers to within float32 rounding.
 *
 * Determinism: for a given seed the labels, centers and inertia are
 * bit-identical whatever n_threads is. The Lloyd path calls cblas_sgemm from
 * inside OpenMP regions: the caller must run BLAS single-threaded
 * (openblas_set_num_threads(1) or OPENBLAS_NUM_THREADS=1), as the segmint CLI does.
 *
 * Thread safety: one sm_kmeans object must not be used from two threads at
 * once; distinct objects are independent. No global state.
 */
#ifndef SEGMINT_KMEANS_H
#define SEGMINT_KMEANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/common.h"
#include "segmint/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The iteration scheme. All give the same result from the same start (see file doc). */
typedef enum sm_kmeans_algorithm {
    SM_KMEANS_AUTO = 0,  /**< chosen from n, d and k (rule in kernels/kmeans.c) */
    SM_KMEANS_LLOYD,     /**< every point against every center, fused distance + arg-min */
    SM_KMEANS_HAMERLY,   /**< one upper and one lower bound per point */
    SM_KMEANS_ELKAN,     /**< one upper and k lower bounds per point (n*k floats) */
    SM_KMEANS_YINYANG,   /**< one upper bound and one lower bound per group of centers */
    SM_KMEANS_MINIBATCH  /**< Sculley's mini-batch updates; approximate, not comparable */
} sm_kmeans_algorithm;

/** How the first centers are chosen. */
typedef enum sm_kmeans_init {
    SM_KMEANS_INIT_PLUSPLUS = 0, /**< greedy k-means++ */
    SM_KMEANS_INIT_PARALLEL,     /**< k-means|| (oversampling rounds, then weighted k-means++) */
    SM_KMEANS_INIT_RANDOM,       /**< k distinct rows drawn uniformly */
    SM_KMEANS_INIT_GIVEN         /**< the k x d centers passed to sm_kmeans_fit */
} sm_kmeans_init;

/** How Lloyd computes its point-center distances (results agree up to ties). */
typedef enum sm_kmeans_kernel {
    SM_KMEANS_KERNEL_AUTO = 0, /**< the fused kernels (the faster on every shape measured) */
    SM_KMEANS_KERNEL_FUSED,    /**< register-blocked distance + arg-min, no n x k matrix */
    SM_KMEANS_KERNEL_SGEMM     /**< cblas_sgemm on cache-sized tiles, then the arg-min */
} sm_kmeans_kernel;

/** What sm_kmeans_params.on_iteration receives after each iteration. */
typedef struct sm_kmeans_iteration {
    int restart;           /**< 0..n_init-1 */
    int iteration;         /**< 1-based within the restart */
    double inertia;        /**< sum of squared distances of the labels just computed to the
                                centers they were computed against (from the cluster sums) */
    double center_shift;   /**< sum over centers of the squared move of this update */
    uint64_t n_changed;    /**< points whose label changed in this iteration */
    uint64_t n_distances;  /**< point-center distances evaluated in this iteration */
} sm_kmeans_iteration;

/** Iteration callback: return nonzero to cancel the fit (SM_ERR_CANCELLED). */
typedef int (*sm_kmeans_iteration_fn)(void *user, const sm_kmeans_iteration *info);

/** Parameters: fill with sm_kmeans_params_init(), then set k, n and d at least. */
typedef struct sm_kmeans_params {
    int k;                        /**< clusters, 1 <= k <= n */
    size_t n;                     /**< rows of the data, >= 1 */
    size_t d;                     /**< columns of the data, >= 1 */
    size_t ld;                    /**< floats between consecutive rows, >= d; 0 means d */
    sm_kmeans_algorithm algorithm; /**< default SM_KMEANS_AUTO */
    sm_kmeans_init init;          /**< default SM_KMEANS_INIT_PLUSPLUS */
    sm_kmeans_kernel kernel;      /**< Lloyd's distance kernel, default SM_KMEANS_KERNEL_AUTO */
    int max_iter;                 /**< iterations per restart, >= 1 (default 300); for
                                       minibatch: passes over the data */
    double tol;                   /**< >= 0 (default 1e-4): stop when the summed squared center
                                       shift is <= tol * mean column variance (scikit-learn's rule) */
    int n_init;                   /**< restarts, the lowest inertia is kept; 0 = auto: 1, or 10
                                       for random init; forced to 1 for given centers */
    uint64_t seed;                /**< every random draw derives from it (default 0) */
    int n_threads;                /**< OpenMP threads, 0 = the OpenMP default; never changes results */
    int n_local_trials;           /**< k-means++ candidates per step, 0 = 2 + floor(ln k) */
    double oversampling;          /**< k-means|| expected samples per round / k, > 0 (default 2) */
    int init_rounds;              /**< k-means|| rounds, >= 1 (default 5) */
    size_t batch_size;            /**< minibatch rows per step, >= 1 (default 1024) */
    int max_no_improvement;       /**< minibatch: stop after this many steps without a better
                                       smoothed inertia, 0 = never (default 10) */
    sm_progress progress;         /**< optional; stages "kmeans-init" and "kmeans" */
    sm_kmeans_iteration_fn on_iteration; /**< optional, called on the calling thread */
    void *on_iteration_user;      /**< passed back to on_iteration */
} sm_kmeans_params;

/** Outcome of the last successful sm_kmeans_fit. */
typedef struct sm_kmeans_result {
    double inertia;               /**< sum of squared distances to the assigned centers,
                                       recomputed exactly in double after the last assignment */
    int n_iter;                   /**< iterations of the kept restart */
    bool converged;               /**< the kept restart stopped before max_iter */
    int best_restart;             /**< index of the kept restart */
    sm_kmeans_algorithm algorithm; /**< what ran (auto resolved) */
    int n_nonempty;               /**< clusters with at least one point */
    bool fewer_clusters;          /**< n_nonempty < k: duplicate points; see warning */
    char warning[SM_ERROR_MSG_MAX]; /**< "" or a human warning (never printed by the library) */
    double seconds_init;          /**< wall time in initialisation, all restarts */
    double seconds_iterations;    /**< wall time in iterations, all restarts */
    int total_iterations;         /**< iterations summed over restarts */
    uint64_t n_distances;         /**< point-center distances evaluated, all restarts */
} sm_kmeans_result;

typedef struct sm_kmeans sm_kmeans; /**< opaque */

/** Fills `params` with the documented defaults (k, n and d are left 0). */
SM_API void sm_kmeans_params_init(sm_kmeans_params *params);

/**
 * Validates `params` and names the first bad field and its rule
 * ("n_samples=3 should be >= n_clusters=5").
 * @return SM_OK, SM_ERR_INVALID_ARG, or SM_ERR_OVERFLOW (n*ld does not fit size_t).
 */
SM_API int sm_kmeans_params_check(const sm_kmeans_params *params, sm_error *err);

/**
 * Creates an unfitted object for data of the shape given in `params` (copied).
 * All-or-nothing: on failure *out is NULL and nothing needs freeing.
 * @param[out] out receives the object; release it with sm_kmeans_destroy.
 * @return SM_OK, SM_ERR_INVALID_ARG, SM_ERR_OVERFLOW, SM_ERR_NOMEM.
 */
SM_API int sm_kmeans_create(const sm_kmeans_params *params, sm_kmeans **out, sm_error *err);

/**
 * Clusters the n x d matrix `x` (row-major, leading dimension ld, finite
 * values: NaN and inf are the readers' job to refuse). The object keeps no
 * pointer to `x` or `init_centers` after the call.
 * @param[in] x            n rows of ld floats (the first d of each row are used).
 * @param[in] init_centers k x d row-major centers when params.init is
 *                         SM_KMEANS_INIT_GIVEN (used as is), else must be NULL.
 * @return SM_OK; SM_ERR_INVALID_ARG (NULL x, centers given or missing against
 *         params.init); SM_ERR_NOMEM; SM_ERR_CANCELLED (progress or iteration
 *         callback asked to stop). On failure the object is unfitted (getters
 *         return NULL / SM_ERR_INVALID_STATE) and may be fitted again.
 */
SM_API int sm_kmeans_fit(sm_kmeans *km, const float *x, const float *init_centers, sm_error *err);

/**
 * Runs only the configured initialisation (that of restart 0, as sm_kmeans_fit
 * would) and writes the k x d initial centers (row-major, leading dimension d)
 * into `centers`. Lets several implementations start from the same centers.
 * @return SM_OK, SM_ERR_INVALID_ARG (NULL x or centers, or init is 'given'),
 *         SM_ERR_NOMEM, SM_ERR_CANCELLED. The object's fitted state is unchanged.
 */
SM_API int sm_kmeans_init_centers(sm_kmeans *km, const float *x, float *centers, sm_error *err);

/** True after a successful sm_kmeans_fit. */
SM_API bool sm_kmeans_is_fitted(const sm_kmeans *km);

/**
 * The n labels (0..k-1, input order) of the last fit, or NULL if unfitted.
 * Borrowed: valid until the next sm_kmeans_fit or sm_kmeans_destroy.
 */
SM_API const sm_cluster_id *sm_kmeans_get_labels(const sm_kmeans *km);

/**
 * The k x d centers (row-major, leading dimension d) of the last fit, or NULL
 * if unfitted. Borrowed: valid until the next sm_kmeans_fit or sm_kmeans_destroy.
 */
SM_API const float *sm_kmeans_get_centers(const sm_kmeans *km);

/** Copies the result of the last fit. @return SM_OK or SM_ERR_INVALID_STATE. */
SM_API int sm_kmeans_get_result(const sm_kmeans *km, sm_kmeans_result *out);

/**
 * Labels new rows with their nearest fitted center (ties: the smallest index).
 * @param[out] labels     n_rows entries.
 * @param[out] distances  n_rows squared distances, or NULL.
 * @param[in]  x          n_rows x d, leading dimension ld >= d.
 * @return SM_OK, SM_ERR_INVALID_STATE (unfitted), SM_ERR_INVALID_ARG, SM_ERR_NOMEM.
 */
SM_API int sm_kmeans_predict(const sm_kmeans *km, sm_cluster_id *labels, float *distances,
                             const float *x, size_t n_rows, size_t ld, sm_error *err);

/** Releases the object and everything it owns. Accepts NULL. */
SM_API void sm_kmeans_destroy(sm_kmeans *km);

/** "lloyd", "hamerly", ... ; "auto" for SM_KMEANS_AUTO; "?" if out of range. */
SM_API const char *sm_kmeans_algorithm_name(sm_kmeans_algorithm algorithm);

/** Parses an algorithm name as sm_kmeans_algorithm_name spells it. @return SM_OK or SM_ERR_INVALID_ARG. */
SM_API int sm_kmeans_algorithm_parse(const char *name, sm_kmeans_algorithm *out);

/** The algorithm `auto` resolves to for this shape (the measured rule). */
SM_API sm_kmeans_algorithm sm_kmeans_auto_algorithm(size_t n, size_t d, int k);

/* --- cluster-quality indices (kernels/cluster_metrics.c) ------------------- */

/**
 * Mean silhouette coefficient (Rousseeuw 1987), as scikit-learn's
 * silhouette_score: when 0 < sample_size < n, it is the silhouette of a
 * seeded uniform sample of sample_size rows drawn without replacement (the
 * sample is clustered as labelled), else of all rows. Cost: m^2 d for m rows;
 * distances in float, sums in double, deterministic for a seed whatever the
 * thread count. Rows alone in their cluster (within the sample) score 0.
 * @param[out] out     the mean silhouette in [-1, 1].
 * @param[in]  labels  n labels in 0..k-1.
 * @return SM_OK, SM_ERR_INVALID_ARG (a label >= k, or fewer than 2 or more than
 *         m - 1 distinct labels in the rows used), SM_ERR_NOMEM.
 */
SM_API int sm_silhouette_score(double *out, const float *x, size_t n, size_t d, size_t ld,
                               const sm_cluster_id *labels, int k, size_t sample_size,
                               uint64_t seed, int n_threads, sm_error *err);

/**
 * Calinski-Harabasz index (Calinski & Harabasz 1974): between- over
 * within-cluster dispersion times (n - m) / (m - 1) for m non-empty clusters;
 * higher is better; 1 when the within dispersion is 0 (scikit-learn's rule).
 * @return SM_OK, SM_ERR_INVALID_ARG (a label >= k, or fewer than 2 or more than
 *         n - 1 non-empty clusters), SM_ERR_NOMEM.
 */
SM_API int sm_calinski_harabasz_score(double *out, const float *x, size_t n, size_t d, size_t ld,
                                      const sm_cluster_id *labels, int k, int n_threads,
                                      sm_error *err);

/**
 * Davies-Bouldin index (Davies & Bouldin 1979): the mean over clusters of the
 * largest (s_i + s_j) / |c_i - c_j|, s = mean distance to the centroid; lower
 * is better; 0 when all s or all centroid distances are 0 (scikit-learn's rule).
 * @return SM_OK, SM_ERR_INVALID_ARG (a label >= k, or fewer than 2 or more than
 *         n - 1 non-empty clusters), SM_ERR_NOMEM.
 */
SM_API int sm_davies_bouldin_score(double *out, const float *x, size_t n, size_t d, size_t ld,
                                   const sm_cluster_id *labels, int k, int n_threads,
                                   sm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SEGMINT_KMEANS_H */
