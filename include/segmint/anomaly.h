/* SPDX-License-Identifier: MIT */
/**
 * @file anomaly.h
 * @brief Anomaly detection: Isolation Forest, robust per-segment and
 *        Mahalanobis outlier scores, per-customer transaction checks, and
 *        thresholding.
 *
 * Every detector returns one score per row where a higher score means more
 * anomalous, and a flag from a threshold (a contamination fraction or an
 * explicit score). Isolation Forest follows Liu, Ting & Zhou, "Isolation
 * Forest" (ICDM 2008) and "Isolation-Based Anomaly Detection" (ACM TKDD 6(1),
 * 2012); the robust covariance is FastMCD (Rousseeuw & Van Driessen,
 * Technometrics 41(3), 1999).
 *
 * Inputs are row-major float32 matrices `x` of n rows and d columns with a
 * leading dimension ld >= d, already checked for NaN/inf by the caller (the
 * engine's matrix reader does it). Results never depend on the thread count.
 * Objects are not thread-safe to mutate, but a fitted sm_iforest or sm_mcd is
 * read-only and may score from several threads at once.
 */
#ifndef SEGMINT_ANOMALY_H
#define SEGMINT_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

#include "segmint/common.h"
#include "segmint/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Which detector produced a score or raised a flag. */
typedef enum sm_detector {
    SM_DETECTOR_NONE = 0,        /**< no detector flagged the row */
    SM_DETECTOR_IFOREST = 1,     /**< Isolation Forest, score s in (0, 1] */
    SM_DETECTOR_CENTROID = 2,    /**< robust z of the distance to the own segment's centre */
    SM_DETECTOR_MAHALANOBIS = 3, /**< squared robust Mahalanobis distance (MCD) */
    SM_DETECTOR_TRANSACTION = 4  /**< robust z of a transaction against the customer's history */
} sm_detector;

/** Short lower-case name of a detector ("iforest", "centroid", ...); "none"
 *  for SM_DETECTOR_NONE and "unknown" otherwise. Never NULL. */
SM_API const char *sm_detector_name(int detector);

/* ------------------------------------------------------------------------- */
/* Isolation Forest                                                           */
/* ------------------------------------------------------------------------- */

/** Largest sample size psi accepted (2^16): a tree then has at most 2^17
 *  nodes in its scoring layout. */
#define SM_IFOREST_MAX_SAMPLE 65536u
/** Largest number of trees accepted. */
#define SM_IFOREST_MAX_TREES 100000u
/** Version of the serialised model format written by sm_iforest_serialize. */
#define SM_IFOREST_FORMAT_VERSION 1u

typedef struct sm_iforest_params {
    uint32_t n_trees;     /**< t, trees in the forest, 1..SM_IFOREST_MAX_TREES (default 100) */
    uint32_t sample_size; /**< psi, rows drawn without replacement per tree,
                               2..SM_IFOREST_MAX_SAMPLE (default 256); min(psi, n) is used */
    uint64_t seed;        /**< random seed; tree j draws from Philox stream j (default 0) */
    int n_threads;        /**< OpenMP threads, 0 = the OpenMP default; never changes results */
    sm_progress progress; /**< optional; stage "iforest fit" counts trees */
} sm_iforest_params;

/** Fills the documented defaults (t = 100, psi = 256, seed 0, all threads). */
SM_API void sm_iforest_params_init(sm_iforest_params *params);

/**
 * Validates parameters; names the field and the rule in `err`.
 * @return SM_OK or SM_ERR_INVALID_ARG.
 */
SM_API int sm_iforest_params_check(const sm_iforest_params *params, sm_error *err);

/** A fitted Isolation Forest (opaque, read-only after fit or load). */
typedef struct sm_iforest sm_iforest;

/**
 * Average path length of an unsuccessful search in a binary search tree of
 * n points, the normaliser c(n) of the paper: c(n) = 2 H(n-1) - 2 (n-1)/n
 * with H(i) = ln(i) + 0.5772156649 (Euler's constant) for n > 2, c(2) = 1,
 * c(n) = 0 for n <= 1 (TKDD 2012, eq. 1; scikit-learn uses the same).
 */
SM_API double sm_iforest_c(uint64_t n);

/**
 * Builds an Isolation Forest on x.
 *
 * Each tree draws psi' = min(psi, n) distinct rows, then splits recursively
 * to the height limit ceil(log2 psi'): at each node it picks a feature
 * uniformly among those not constant in the node and a threshold uniformly
 * in [min, max) of that feature; rows with x <= threshold go left. A node
 * whose rows are all identical becomes a leaf, so constant columns are never
 * split on and an all-constant matrix gives a forest of single leaves
 * (every score is then exactly 0.5).
 *
 * @param[in]  params  validated as by sm_iforest_params_check
 * @param[in]  x       n x d row-major, leading dimension ld; finite values
 * @param[in]  n       rows, >= 2
 * @param[in]  d       columns, 1..2^31-1
 * @param[in]  ld      leading dimension, >= d
 * @param[out] out     the forest on success (destroy with sm_iforest_destroy);
 *                     NULL on failure
 * @param[out] err     optional details
 * @return SM_OK, SM_ERR_INVALID_ARG, SM_ERR_NOMEM, SM_ERR_CANCELLED.
 */
SM_API int sm_iforest_fit(const sm_iforest_params *params, const float *x, size_t n, size_t d,
                          size_t ld, sm_iforest **out, sm_error *err);

/**
 * Anomaly scores s(x) = 2^(-E[h(x)] / c(psi')) in (0, 1] for n rows, where
 * h(x) is the number of edges from the root to the leaf x reaches plus
 * c(size of that leaf). Scores near 1 are anomalies; well below 0.5, normal.
 *
 * Rows are scored in fixed blocks and each row sums its path lengths over
 * the trees in tree order, so the scores are bit-identical for any thread
 * count.
 *
 * @param[in]  forest    fitted or loaded forest
 * @param[out] scores    n entries
 * @param[in]  x         n x d row-major with leading dimension ld; d must equal
 *                       the forest's number of features
 * @param[in]  n_threads 0 = OpenMP default
 * @param[in]  progress  optional (NULL = silent); stage "iforest score" counts rows
 * @return SM_OK, SM_ERR_INVALID_ARG (d mismatch, ld < d), SM_ERR_NOMEM,
 *         SM_ERR_CANCELLED.
 */
SM_API int sm_iforest_score(const sm_iforest *forest, double *scores, const float *x, size_t n,
                            size_t d, size_t ld, int n_threads, const sm_progress *progress,
                            sm_error *err);

/** Releases a forest; accepts NULL. */
SM_API void sm_iforest_destroy(sm_iforest *forest);

/** Number of trees t. */
SM_API uint32_t sm_iforest_n_trees(const sm_iforest *forest);
/** Sample size psi' actually used (min(psi, n) at fit time). */
SM_API uint32_t sm_iforest_sample_size(const sm_iforest *forest);
/** Height limit ceil(log2 psi'). */
SM_API uint32_t sm_iforest_depth_limit(const sm_iforest *forest);
/** Number of features d the forest was fitted on. */
SM_API size_t sm_iforest_n_features(const sm_iforest *forest);

/**
 * Bytes sm_iforest_serialize writes for this forest.
 */
SM_API size_t sm_iforest_serialized_size(const sm_iforest *forest);

/**
 * Writes the forest into buf in the versioned, little-endian format below
 * (independent of the host's byte order), so it can be saved to a file and
 * scored against later with sm_iforest_deserialize.
 *
 * Format version 1 (all integers little-endian):
 *   0   8  magic "SMIFORST"
 *   8   4  format version (1)
 *   12  4  n_trees t
 *   16  4  sample size psi'
 *   20  4  height limit ceil(log2 psi')
 *   24  8  number of features d
 *   32  8  seed used at fit
 *   40  8  total node count N
 *   48  4t node count of each tree
 *   ..  8N nodes, each tree in preorder (node, left subtree, right subtree):
 *          internal: u32 feature (< d), u32 IEEE-754 bits of the float32 threshold
 *          leaf:     u32 0xFFFFFFFF,   u32 number of training rows in the leaf
 *   end 8  FNV-1a 64-bit hash of every preceding byte
 *
 * @param[out] buf      at least `capacity` bytes
 * @param[in]  capacity must be >= sm_iforest_serialized_size(forest)
 * @return SM_OK or SM_ERR_INVALID_ARG (buffer too small).
 */
SM_API int sm_iforest_serialize(const sm_iforest *forest, uint8_t *buf, size_t capacity,
                                sm_error *err);

/**
 * Rebuilds a forest from a buffer written by sm_iforest_serialize. The
 * buffer is treated as untrusted: size, hash, version, every tree's shape
 * (complete preorder, depth within the limit, leaf sizes summing to psi'),
 * feature indices and thresholds are checked, and anything else is refused.
 *
 * @param[in]  buf  `len` bytes (not kept after the call)
 * @param[out] out  the forest on success, NULL on failure
 * @return SM_OK, SM_ERR_PARSE (corrupt or truncated, the message says which
 *         check failed and err->line holds the byte offset + 1 when known),
 *         SM_ERR_SCHEMA (a newer format version), SM_ERR_NOMEM.
 */
SM_API int sm_iforest_deserialize(const uint8_t *buf, size_t len, sm_iforest **out,
                                  sm_error *err);

/* ------------------------------------------------------------------------- */
/* Thresholding                                                               */
/* ------------------------------------------------------------------------- */

/**
 * The score above which the top `contamination` fraction of `scores` lies:
 * the (1 - contamination) quantile with linear interpolation between order
 * statistics (numpy's default, as scikit-learn's offset_ uses). Rows with
 * score > threshold are flagged, so ties at the threshold are not flagged.
 *
 * @param[out] threshold    the quantile
 * @param[in]  scores       n finite values (not modified)
 * @param[in]  n            >= 1
 * @param[in]  contamination in (0, 0.5]
 * @return SM_OK, SM_ERR_INVALID_ARG (contamination outside (0, 0.5], n = 0,
 *         a non-finite score), SM_ERR_NOMEM.
 */
SM_API int sm_anomaly_threshold(double *threshold, const double *scores, size_t n,
                                double contamination, sm_error *err);

/**
 * flags[i] = scores[i] > threshold; when detector_out is not NULL,
 * detector_out[i] = detector for flagged rows and SM_DETECTOR_NONE otherwise.
 * @return the number of flagged rows.
 */
SM_API size_t sm_anomaly_flag(uint8_t *flags, uint8_t *detector_out, const double *scores,
                              size_t n, double threshold, int detector);

/* ------------------------------------------------------------------------- */
/* Robust per-feature statistics                                              */
/* ------------------------------------------------------------------------- */

/** MAD consistency constant for the normal distribution, 1 / Phi^-1(3/4). */
#define SM_MAD_NORMAL 1.482602218505602

/**
 * Per-column median and robust scale of x: scale_j = 1.4826 * MAD_j; when
 * MAD_j = 0 (more than half the values equal) the mean absolute deviation
 * from the median times sqrt(pi/2) = 1.2533 is used instead, and when that is
 * 0 too (a constant column) scale_j = 0. The engine uses these to say which
 * features make a row unusual: z_ij = (x_ij - median_j) / scale_j.
 *
 * @param[out] median d entries
 * @param[out] scale  d entries, >= 0
 * @param[in]  x      n x d, ld >= d, n >= 1
 * @return SM_OK, SM_ERR_INVALID_ARG, SM_ERR_NOMEM.
 */
SM_API int sm_robust_column_stats(double *median, double *scale, const float *x, size_t n,
                                  size_t d, size_t ld, int n_threads, sm_error *err);

/* ------------------------------------------------------------------------- */
/* Distance to the own segment's centre, scaled per segment                   */
/* ------------------------------------------------------------------------- */

/**
 * Centroid detector: for each row i in cluster c = labels[i], the Euclidean
 * distance r_i to centre c, turned into a robust z-score against that
 * cluster's members: score_i = (r_i - median_c(r)) / scale_c, with
 * scale_c = 1.4826 * MAD_c(r) (falling back to 1.2533 * mean absolute
 * deviation when the MAD is 0, and to a score of 0 when every member is at
 * the same distance). A customer far from their own segment gets a high
 * score even if the segment is wide for other segments' standards. A
 * conventional threshold is 3.5 (Iglewicz & Hoaglin, 1993).
 *
 * @param[out] scores         n entries
 * @param[out] cluster_median k entries or NULL: median member distance
 * @param[out] cluster_scale  k entries or NULL: the robust scale used
 * @param[in]  x              n x d, ld >= d
 * @param[in]  labels         n entries, each < k
 * @param[in]  centers        k x d row-major (leading dimension d), or NULL to
 *                            use each cluster's mean (computed in double)
 * @param[in]  k              >= 1
 * @return SM_OK, SM_ERR_INVALID_ARG (label >= k, with the row), SM_ERR_NOMEM.
 */
SM_API int sm_centroid_outliers(double *scores, double *cluster_median, double *cluster_scale,
                                const float *x, size_t n, size_t d, size_t ld,
                                const sm_cluster_id *labels, const float *centers, size_t k,
                                int n_threads, sm_error *err);

/**
 * The same score from distances measured elsewhere: row i's distance to the
 * centre of its cluster labels[i], e.g. the distance a stored k-means run
 * recorded in the scaled space it clustered in (whose scaling is not kept),
 * so the detector judges exactly the distances k-means saw.
 *
 * @param[in] distances n finite values >= 0
 * @return SM_OK, SM_ERR_INVALID_ARG (label >= k or a negative or non-finite
 *         distance, with the row), SM_ERR_NOMEM.
 */
SM_API int sm_centroid_distance_scores(double *scores, double *cluster_median,
                                       double *cluster_scale, const double *distances, size_t n,
                                       const sm_cluster_id *labels, size_t k, int n_threads,
                                       sm_error *err);

/* ------------------------------------------------------------------------- */
/* Robust Mahalanobis distance (FastMCD)                                      */
/* ------------------------------------------------------------------------- */

typedef struct sm_mcd_params {
    double support_fraction; /**< h/n in [0.5, 1]; 0 = the maximum breakdown point
                                  h = floor((n + d + 1) / 2) (default 0) */
    uint32_t n_trials;       /**< random (d+1)-subsets to start from, >= 1 (default 500) */
    uint32_t max_csteps;     /**< C-step limit per final candidate, >= 1 (default 100) */
    double ridge;            /**< >= 0, added to the covariance diagonal in robustly
                                  standardised units ((x - median) / robust scale); 0 =
                                  automatic, as MRCD: the smallest value that bounds the
                                  condition number of the starting scatter by 50
                                  (default 0) */
    uint64_t seed;           /**< trial j draws from Philox stream j (default 0) */
    int n_threads;           /**< 0 = OpenMP default */
    sm_progress progress;    /**< optional; stage "mcd" */
} sm_mcd_params;

/** Fills the defaults above. */
SM_API void sm_mcd_params_init(sm_mcd_params *params);
/** @return SM_OK or SM_ERR_INVALID_ARG naming the field. */
SM_API int sm_mcd_params_check(const sm_mcd_params *params, sm_error *err);

/** A fitted robust location and scatter (opaque, read-only after fit). */
typedef struct sm_mcd sm_mcd;

/**
 * Minimum Covariance Determinant by FastMCD: random (d+1)-subsets grown to
 * h rows, C-steps (each never increases the determinant), the best
 * candidates iterated to convergence, then the consistency correction
 * (median distance matched to the chi-square median) and one reweighting
 * step keeping rows with d^2 <= chi2_{d, 0.975}, as in scikit-learn's
 * MinCovDet. Above 1500 rows the trials run on a random subset of 1500 rows
 * and the 10 best candidates are refined on all rows. Columns constant over
 * all rows carry no information and are left out of the distance. Every
 * scatter is regularised by params->ridge on the standardised diagonal
 * (automatically as in MRCD, Boudt et al., Statistics and Computing 30,
 * 2020), so a majority that is constant in some column (zero-inflated
 * features such as a return rate) does not give an exact fit with infinite
 * distances for everyone else.
 *
 * @param[in]  x  n x d, ld >= d, n > d + 1 is required (else SM_ERR_INVALID_ARG)
 * @param[out] out the estimate on success (sm_mcd_destroy), NULL on failure
 * @return SM_OK, SM_ERR_INVALID_ARG, SM_ERR_NUMERIC (no non-constant column),
 *         SM_ERR_NOMEM, SM_ERR_CANCELLED.
 */
SM_API int sm_mcd_fit(const sm_mcd_params *params, const float *x, size_t n, size_t d, size_t ld,
                      sm_mcd **out, sm_error *err);

/**
 * Squared robust Mahalanobis distances d2_i = (x_i - mu)' S^-1 (x_i - mu)
 * with the reweighted MCD estimate. Under a Gaussian majority they follow
 * about a chi-square with p degrees of freedom, p = sm_mcd_dof (threshold:
 * sm_chi2_quantile(0.975, p)).
 * @param[out] d2 n entries, >= 0
 * @return SM_OK, SM_ERR_INVALID_ARG (d mismatch), SM_ERR_NOMEM.
 */
SM_API int sm_mcd_distance(const sm_mcd *mcd, double *d2, const float *x, size_t n, size_t d,
                           size_t ld, int n_threads, sm_error *err);

/** Robust location, d entries (constant columns hold their value). Borrowed
 *  until sm_mcd_destroy. */
SM_API const double *sm_mcd_location(const sm_mcd *mcd);
/** Robust covariance, d x d row-major (rows and columns of constant columns
 *  are 0). Borrowed until sm_mcd_destroy. */
SM_API const double *sm_mcd_covariance(const sm_mcd *mcd);
/** Degrees of freedom of the distance: the number of non-constant columns. */
SM_API size_t sm_mcd_dof(const sm_mcd *mcd);
/** Rows in the final reweighted support. */
SM_API size_t sm_mcd_support_size(const sm_mcd *mcd);
/** The regularisation used (params->ridge, or the automatic choice). */
SM_API double sm_mcd_ridge(const sm_mcd *mcd);
/** Releases an estimate; accepts NULL. */
SM_API void sm_mcd_destroy(sm_mcd *mcd);

/**
 * Quantile of the chi-square distribution: the x with P(X <= x) = p for
 * `dof` degrees of freedom (regularised incomplete gamma, solved by
 * bisection to full double precision). p in (0, 1), dof > 0; NaN otherwise.
 */
SM_API double sm_chi2_quantile(double p, double dof);

/* ------------------------------------------------------------------------- */
/* Transactions against the customer's own history                            */
/* ------------------------------------------------------------------------- */

/**
 * Robust z-score of each transaction value (amount, basket size, ...)
 * against the same customer's history: score = |v - median_c| / scale_c with
 * scale_c = 1.4826 * MAD_c (1.2533 * mean absolute deviation when the MAD is
 * 0; when every value of the customer is equal, scores are 0). Customers with
 * fewer than `min_history` transactions are not assessed: their scores are 0.
 *
 * @param[out] scores       offsets[n_customers] entries, one per transaction
 * @param[out] customer_max n_customers entries or NULL: each customer's largest score
 * @param[out] n_assessed   or NULL: customers with at least min_history transactions
 * @param[in]  offsets      n_customers + 1 non-decreasing entries, offsets[0] = 0:
 *                          customer c's transactions are values[offsets[c] .. offsets[c+1]-1]
 * @param[in]  values       finite values
 * @param[in]  min_history  >= 3
 * @return SM_OK, SM_ERR_INVALID_ARG (offsets not monotone, with the customer;
 *         non-finite value, with its index; min_history < 3), SM_ERR_NOMEM.
 */
SM_API int sm_transaction_outliers(double *scores, double *customer_max, uint64_t *n_assessed,
                                   const uint64_t *offsets, const double *values,
                                   size_t n_customers, uint32_t min_history, int n_threads,
                                   sm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SEGMINT_ANOMALY_H */
