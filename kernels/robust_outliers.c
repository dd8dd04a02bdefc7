/* SPDX-License-Identifier: MIT */
/*
 * The detectors that complement Isolation Forest, all on robust statistics
 * (medians and MADs, Iglewicz & Hoaglin 1993): distance to the own segment's
 * centre, robust Mahalanobis distance from FastMCD (Rousseeuw & Van Driessen,
 * Technometrics 41(3) 1999, with scikit-learn's consistency correction and
 * reweighting), per-customer transaction z-scores, and thresholding. No I/O;
 * BLAS (cblas_dsyrk, cblas_dtrsm) for the covariance and the distances, a
 * small Cholesky of our own for the p x p factor.
 */
#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/core.h"
#include "kernels/rng.h"
#include "segmint/anomaly.h"

/* sqrt(pi / 2): mean absolute deviation to sigma for the normal. */
#define MEANAD_NORMAL 1.2533141373155003
/* FastMCD: trials run on at most this many rows; this many best trials are refined. */
#define MCD_WORK_ROWS 1500
#define MCD_KEEP 10
#define MCD_TRIAL_CSTEPS 2
/* Trials per parallel region (progress and cancellation between regions). */
#define MCD_TRIAL_CHUNK 64
/* Largest condition number of the starting scatter before regularisation (MRCD's 50). */
#define MRCD_CONDITION 50.0

const char *sm_detector_name(int detector)
{
    switch (detector) {
    case SM_DETECTOR_NONE: return "none";
    case SM_DETECTOR_IFOREST: return "iforest";
    case SM_DETECTOR_CENTROID: return "centroid";
    case SM_DETECTOR_MAHALANOBIS: return "mahalanobis";
    case SM_DETECTOR_TRANSACTION: return "transaction";
    default: return "unknown";
    }
}

static int thread_count(int requested)
{
#ifdef _OPENMP
    return requested > 0 ? requested : omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* --- order statistics ---------------------------------------------------- */

static void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Moves the k-th smallest (0-based) of v[0, n) to v[k], smaller ones before,
 * larger after (Wirth's selection; deterministic). v holds no NaN. */
static void select_kth(double *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (lo < hi) {
        double pivot = v[kk];
        ptrdiff_t i = lo, j = hi;
        do {
            while (v[i] < pivot)
                i++;
            while (pivot < v[j])
                j--;
            if (i <= j) {
                swap_d(&v[i], &v[j]);
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk)
            lo = i;
        if (kk < i)
            hi = j;
    }
}

static double min_of(const double *v, size_t n)
{
    double m = v[0];
    for (size_t i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

/* Median of v[0, n), n >= 1; reorders v. */
static double median_inplace(double *v, size_t n)
{
    size_t k = (n - 1) / 2;
    select_kth(v, n, k);
    if (n % 2 == 1)
        return v[k];
    return 0.5 * (v[k] + min_of(v + k + 1, n - k - 1));
}

/* Robust scale of v[0, n) about its median (returned in *median):
 * 1.4826 MAD, else 1.2533 mean absolute deviation, else 0. Reorders v. */
static double robust_scale(double *v, size_t n, double *median)
{
    double med = median_inplace(v, n);
    double mean_ad = 0.0;
    for (size_t i = 0; i < n; i++) {
        v[i] = fabs(v[i] - med);
        mean_ad += v[i];
    }
    mean_ad /= (double)n;
    *median = med;
    double mad = median_inplace(v, n);
    if (mad > 0.0)
        return SM_MAD_NORMAL * mad;
    return MEANAD_NORMAL * mean_ad; /* 0 when every value equals the median */
}

/* --- thresholding ----------------------------------------------------------- */

int sm_anomaly_threshold(double *threshold, const double *scores, size_t n, double contamination,
                         sm_error *err)
{
    if (threshold == NULL || (scores == NULL && n > 0))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "threshold or scores is NULL");
    if (!(contamination > 0.0 && contamination <= 0.5))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "contamination",
                               "contamination=%g must be in (0, 0.5]", contamination);
    if (n == 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n",
                               "no scores to take a threshold from");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(scores[i]))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "scores",
                                   "score %zu is %s", i, isnan(scores[i]) ? "NaN" : "infinite");
    double *v = sm_alloc_array(n, sizeof *v);
    if (v == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu scores", n);
    memcpy(v, scores, n * sizeof *v);
    /* numpy's linear percentile at q = 1 - contamination. */
    double pos = (1.0 - contamination) * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    if (lo > n - 1)
        lo = n - 1;
    double t = pos - (double)lo;
    select_kth(v, n, lo);
    double a = v[lo], b = lo + 1 < n ? min_of(v + lo + 1, n - lo - 1) : a;
    *threshold = t < 0.5 ? a + (b - a) * t : b - (b - a) * (1.0 - t);
    sm_free(v);
    return SM_OK;
}

size_t sm_anomaly_flag(uint8_t *flags, uint8_t *detector_out, const double *scores, size_t n,
                       double threshold, int detector)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t f = scores[i] > threshold;
        flags[i] = f;
        if (detector_out != NULL)
            detector_out[i] = f ? (uint8_t)detector : (uint8_t)SM_DETECTOR_NONE;
        count += f;
    }
    return count;
}

/* --- per-column robust statistics ----------------------------------------- */

int sm_robust_column_stats(double *median, double *scale, const float *x, size_t n, size_t d,
                           size_t ld, int n_threads, sm_error *err)
{
    if (median == NULL || scale == NULL || x == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "median, scale or x is NULL");
    if (n < 1 || d < 1 || ld < d)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n",
                               "need n >= 1, d >= 1 and ld >= d (n=%zu, d=%zu, ld=%zu)", n, d, ld);
    if (n_threads < 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_threads",
                               "n_threads=%d must be >= 0", n_threads);
    const int threads = (int)SM_MIN((size_t)thread_count(n_threads), d);
    size_t total;
    if (!sm_mul_size(n, (size_t)threads, &total))
        return sm_error_set(err, SM_ERR_OVERFLOW, "column scratch overflows");
    double *buf = sm_alloc_array(total, sizeof *buf);
    if (buf == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %d column buffers of %zu", threads, n);
    /* One column per iteration; the buffer is per thread, the result per column. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) default(none) \
    shared(buf, x, n, d, ld, median, scale)
    for (size_t j = 0; j < d; j++) {
        double *v = buf + (size_t)thread_id() * n;
        for (size_t i = 0; i < n; i++)
            v[i] = x[i * ld + j];
        scale[j] = robust_scale(v, n, &median[j]);
    }
    sm_free(buf);
    return SM_OK;
}

/* --- centroid distance ----------------------------------------------------- */

static int check_labels(const sm_cluster_id *labels, size_t n, size_t k, sm_error *err)
{
    for (size_t i = 0; i < n; i++)
        if ((size_t)labels[i] >= k)
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, i + 1, 0, "labels",
                                   "row %zu has label %" SM_PRI_CLUSTER " >= k=%zu", i, labels[i], k);
    return SM_OK;
}

/* The per-cluster robust z of distances; labels already checked. */
static int distance_scores(double *scores, double *cluster_median, double *cluster_scale,
                           const double *dist, size_t n, const sm_cluster_id *labels, size_t k,
                           int threads, sm_error *err)
{
    int rc = SM_OK;
    size_t *start = sm_calloc(k + 1, sizeof *start), *fill = sm_alloc_array(k, sizeof *fill);
    double *med = sm_alloc_array(k, sizeof *med), *scl = sm_alloc_array(k, sizeof *scl);
    double *grouped = sm_alloc_array(n, sizeof *grouped);
    if (start == NULL || fill == NULL || med == NULL || scl == NULL || grouped == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for the centroid detector");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        start[labels[i] + 1]++;
    for (size_t c = 0; c < k; c++)
        start[c + 1] += start[c];
    memcpy(fill, start, k * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        grouped[fill[labels[i]]++] = dist[i];
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) default(none) \
    shared(grouped, start, med, scl, k)
    for (size_t c = 0; c < k; c++) {
        size_t members = start[c + 1] - start[c];
        med[c] = 0.0;
        scl[c] = 0.0;
        if (members > 0)
            scl[c] = robust_scale(grouped + start[c], members, &med[c]);
    }
    for (size_t i = 0; i < n; i++) {
        sm_cluster_id c = labels[i];
        scores[i] = scl[c] > 0.0 ? (dist[i] - med[c]) / scl[c] : 0.0;
    }
    if (cluster_median != NULL)
        memcpy(cluster_median, med, k * sizeof *med);
    if (cluster_scale != NULL)
        memcpy(cluster_scale, scl, k * sizeof *scl);
out:
    sm_free(start);
    sm_free(fill);
    sm_free(med);
    sm_free(scl);
    sm_free(grouped);
    return rc;
}

/* The centroid scorers' shared argument rules, after their shape checks. */
static int check_threads_and_labels(int n_threads, const sm_cluster_id *labels, size_t n, size_t k,
                                    sm_error *err)
{
    if (n_threads < 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_threads",
                               "n_threads=%d must be >= 0", n_threads);
    return check_labels(labels, n, k, err);
}

int sm_centroid_distance_scores(double *scores, double *cluster_median, double *cluster_scale,
                                const double *distances, size_t n, const sm_cluster_id *labels,
                                size_t k, int n_threads, sm_error *err)
{
    if (scores == NULL || distances == NULL || labels == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "scores, distances or labels is NULL");
    if (n < 1 || k < 1)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "k",
                               "need n >= 1, k >= 1 (n=%zu, k=%zu)", n, k);
    int rc = check_threads_and_labels(n_threads, labels, n, k, err);
    if (rc != SM_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (!(distances[i] >= 0.0 && isfinite(distances[i])))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, i + 1, 0, "distances",
                                   "row %zu has distance %g (need a finite value >= 0)", i,
                                   distances[i]);
    return distance_scores(scores, cluster_median, cluster_scale, distances, n, labels, k,
                           thread_count(n_threads), err);
}

int sm_centroid_outliers(double *scores, double *cluster_median, double *cluster_scale,
                         const float *x, size_t n, size_t d, size_t ld,
                         const sm_cluster_id *labels, const float *centers, size_t k,
                         int n_threads, sm_error *err)
{
    if (scores == NULL || x == NULL || labels == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "scores, x or labels is NULL");
    if (n < 1 || d < 1 || ld < d || k < 1)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "k",
                               "need n >= 1, d >= 1, ld >= d, k >= 1 (n=%zu, d=%zu, ld=%zu, k=%zu)",
                               n, d, ld, k);
    int rc = check_threads_and_labels(n_threads, labels, n, k, err);
    if (rc != SM_OK)
        return rc;
    const int threads = thread_count(n_threads);
    double *mean = NULL, *dist = sm_alloc_array(n, sizeof *dist);
    size_t *members = NULL;
    if (centers == NULL) {
        mean = sm_calloc(k * d, sizeof *mean);
        members = sm_calloc(k, sizeof *members);
    }
    if (dist == NULL || (centers == NULL && (mean == NULL || members == NULL))) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for the centroid detector");
        goto out;
    }
    if (centers == NULL) {
        /* Cluster means in double, rows summed in index order. */
        for (size_t i = 0; i < n; i++) {
            members[labels[i]]++;
            for (size_t j = 0; j < d; j++)
                mean[labels[i] * d + j] += x[i * ld + j];
        }
        for (size_t c = 0; c < k; c++)
            for (size_t j = 0; j < d && members[c] > 0; j++)
                mean[c * d + j] /= (double)members[c];
    }
#pragma omp parallel for schedule(static) num_threads(threads) default(none) \
    shared(dist, x, n, d, ld, labels, centers, mean)
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < d; j++) {
            double c = centers != NULL ? (double)centers[labels[i] * d + j] : mean[labels[i] * d + j];
            double t = (double)x[i * ld + j] - c;
            s += t * t;
        }
        dist[i] = sqrt(s);
    }
    rc = distance_scores(scores, cluster_median, cluster_scale, dist, n, labels, k, threads, err);
out:
    sm_free(dist);
    sm_free(mean);
    sm_free(members);
    return rc;
}

/* --- transactions against the customer's own history ------------------------ */

int sm_transaction_outliers(double *scores, double *customer_max, uint64_t *n_assessed,
                            const uint64_t *offsets, const double *values, size_t n_customers,
                            uint32_t min_history, int n_threads, sm_error *err)
{
    if (offsets == NULL || (n_customers > 0 && offsets[n_customers] > 0 &&
                            (scores == NULL || values == NULL)))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "offsets, scores or values is NULL");
    if (min_history < 3)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "min_history",
                               "min_history=%u must be >= 3 (a MAD needs a few values)", min_history);
    if (n_threads < 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_threads",
                               "n_threads=%d must be >= 0", n_threads);
    if (offsets[0] != 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "offsets",
                               "offsets[0]=%" PRIu64 " must be 0", offsets[0]);
    size_t longest = 0;
    for (size_t c = 0; c < n_customers; c++) {
        if (offsets[c + 1] < offsets[c])
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "offsets",
                                   "offsets decrease at customer %zu (%" PRIu64 " < %" PRIu64 ")",
                                   c, offsets[c + 1], offsets[c]);
        longest = SM_MAX(longest, (size_t)(offsets[c + 1] - offsets[c]));
    }
    const uint64_t m = offsets[n_customers];
    for (uint64_t t = 0; t < m; t++)
        if (!isfinite(values[t]))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "values",
                                   "transaction %" PRIu64 " has a %s value", t,
                                   isnan(values[t]) ? "NaN" : "infinite");
    const int threads = thread_count(n_threads);
    size_t total;
    if (!sm_mul_size(SM_MAX(longest, (size_t)1), (size_t)threads, &total))
        return sm_error_set(err, SM_ERR_OVERFLOW, "history scratch overflows");
    double *buf = sm_alloc_array(total, sizeof *buf);
    if (buf == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %d buffers of %zu", threads, longest);
    uint64_t assessed = 0;
    /* Integer counts add exactly in any order, so the reduction is safe. */
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads) default(none) \
    shared(buf, offsets, values, scores, customer_max, n_customers, min_history, longest) \
    reduction(+ : assessed)
    for (size_t c = 0; c < n_customers; c++) {
        uint64_t lo = offsets[c], hi = offsets[c + 1];
        size_t len = (size_t)(hi - lo);
        double best = 0.0;
        if (len >= min_history) {
            double *v = buf + (size_t)thread_id() * longest;
            memcpy(v, values + lo, len * sizeof *v);
            double med;
            double scl = robust_scale(v, len, &med);
            for (uint64_t t = lo; t < hi; t++) {
                double z = scl > 0.0 ? fabs(values[t] - med) / scl : 0.0;
                scores[t] = z;
                best = z > best ? z : best;
            }
            assessed++;
        } else {
            for (uint64_t t = lo; t < hi; t++)
                scores[t] = 0.0;
        }
        if (customer_max != NULL)
            customer_max[c] = best;
    }
    sm_free(buf);
    if (n_assessed != NULL)
        *n_assessed = assessed;
    return SM_OK;
}

/* --- chi-square quantile ------------------------------------------------------ */

/* Regularised lower incomplete gamma P(a, x): the series for x < a + 1, the
 * continued fraction (modified Lentz) for the upper tail otherwise. */
static double gamma_p(double a, double x)
{
    if (x <= 0.0)
        return 0.0;
    double log_prefix = a * log(x) - x - lgamma(a);
    if (x < a + 1.0) {
        double term = 1.0 / a, sum = term;
        for (int k = 1; k < 10000; k++) {
            term *= x / (a + k);
            sum += term;
            if (fabs(term) < fabs(sum) * 1e-17)
                break;
        }
        return sum * exp(log_prefix);
    }
    const double tiny = 1e-300;
    double b = x + 1.0 - a, c = 1.0 / tiny, dd = 1.0 / b, h = dd;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2.0;
        dd = an * dd + b;
        if (fabs(dd) < tiny)
            dd = tiny;
        c = b + an / c;
        if (fabs(c) < tiny)
            c = tiny;
        dd = 1.0 / dd;
        double delta = dd * c;
        h *= delta;
        if (fabs(delta - 1.0) < 1e-17)
            break;
    }
    return 1.0 - exp(log_prefix) * h;
}

double sm_chi2_quantile(double p, double dof)
{
    if (!(p > 0.0 && p < 1.0) || !(dof > 0.0) || !isfinite(dof))
        return NAN;
    double a = 0.5 * dof, lo = 0.0, hi = dof + 10.0;
    while (gamma_p(a, 0.5 * hi) < p)
        hi *= 2.0;
    /* Bisection to the resolution of doubles: at most ~1100 halvings. */
    for (int i = 0; i < 2000; i++) {
        double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi)
            break;
        if (gamma_p(a, 0.5 * mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* --- FastMCD ------------------------------------------------------------------- */

void sm_mcd_params_init(sm_mcd_params *params)
{
    memset(params, 0, sizeof *params);
    params->support_fraction = 0.0;
    params->n_trials = 500;
    params->max_csteps = 100;
    params->ridge = 0.0;
}

int sm_mcd_params_check(const sm_mcd_params *params, sm_error *err)
{
    if (params == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "params is NULL");
    if (!(params->support_fraction == 0.0 ||
          (params->support_fraction >= 0.5 && params->support_fraction <= 1.0)))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "support_fraction",
                               "support_fraction=%g must be 0 (automatic) or in [0.5, 1]",
                               params->support_fraction);
    if (params->n_trials < 1)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_trials",
                               "n_trials=%u must be >= 1", params->n_trials);
    if (params->max_csteps < 1)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "max_csteps",
                               "max_csteps=%u must be >= 1", params->max_csteps);
    if (!(params->ridge >= 0.0) || !isfinite(params->ridge))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "ridge",
                               "ridge=%g must be finite and >= 0", params->ridge);
    if (params->n_threads < 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_threads",
                               "n_threads=%d must be >= 0", params->n_threads);
    return SM_OK;
}

struct sm_mcd {
    size_t d, p;           /* all columns, non-constant columns */
    size_t *cols;          /* p column indices */
    double *center, *scale; /* p: the standardisation z = (x - center) / scale */
    double *mu;            /* p: location in z units */
    double *chol;          /* p x p lower factor of the covariance in z units (ridge included) */
    double *location;      /* d, original units */
    double *covariance;    /* d x d, original units */
    size_t support;
    double ridge;          /* regularisation used, standardised units */
};

void sm_mcd_destroy(sm_mcd *mcd)
{
    if (mcd == NULL)
        return;
    sm_free(mcd->cols);
    sm_free(mcd->center);
    sm_free(mcd->scale);
    sm_free(mcd->mu);
    sm_free(mcd->chol);
    sm_free(mcd->location);
    sm_free(mcd->covariance);
    sm_free(mcd);
}

const double *sm_mcd_location(const sm_mcd *mcd) { return mcd->location; }
const double *sm_mcd_covariance(const sm_mcd *mcd) { return mcd->covariance; }
size_t sm_mcd_dof(const sm_mcd *mcd) { return mcd->p; }
size_t sm_mcd_support_size(const sm_mcd *mcd) { return mcd->support; }
double sm_mcd_ridge(const sm_mcd *mcd) { return mcd->ridge; }

/* In-place lower Cholesky of the p x p matrix a (row-major, upper part
 * zeroed). False if a pivot is not clearly positive (singular to working
 * precision). *logdet = log det a. */
static bool cholesky(double *a, size_t p, double *logdet)
{
    double max_diag = 0.0;
    for (size_t j = 0; j < p; j++)
        max_diag = SM_MAX(max_diag, a[j * p + j]);
    double ld = 0.0;
    for (size_t j = 0; j < p; j++) {
        double s = a[j * p + j];
        for (size_t k = 0; k < j; k++)
            s -= a[j * p + k] * a[j * p + k];
        if (!(s > 1e-13 * max_diag) || !isfinite(s))
            return false;
        double l = sqrt(s);
        a[j * p + j] = l;
        ld += 2.0 * log(l);
        for (size_t i = j + 1; i < p; i++) {
            double t = a[i * p + j];
            for (size_t k = 0; k < j; k++)
                t -= a[i * p + k] * a[j * p + k];
            a[i * p + j] = t / l;
        }
        for (size_t i = 0; i < j; i++)
            a[i * p + j] = 0.0;
    }
    *logdet = ld;
    return true;
}

/* Eigenvalues of the symmetric p x p matrix a (overwritten) by cyclic Jacobi
 * rotations; p is small (the number of features). */
static void sym_eigenvalues(double *a, size_t p, double *ev)
{
    for (int sweep = 0; sweep < 64; sweep++) {
        double off = 0.0, total = 0.0;
        for (size_t i = 0; i < p; i++)
            for (size_t j = 0; j < p; j++) {
                total += a[i * p + j] * a[i * p + j];
                if (i != j)
                    off += a[i * p + j] * a[i * p + j];
            }
        if (!(off > 1e-30 * total))
            break;
        for (size_t i = 0; i < p; i++)
            for (size_t j = i + 1; j < p; j++) {
                double aij = a[i * p + j];
                if (aij == 0.0)
                    continue;
                double theta = (a[j * p + j] - a[i * p + i]) / (2.0 * aij);
                double t = (theta >= 0.0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (size_t k = 0; k < p; k++) {
                    double aki = a[k * p + i], akj = a[k * p + j];
                    a[k * p + i] = c * aki - s * akj;
                    a[k * p + j] = s * aki + c * akj;
                }
                for (size_t k = 0; k < p; k++) {
                    double aik = a[i * p + k], ajk = a[j * p + k];
                    a[i * p + k] = c * aik - s * ajk;
                    a[j * p + k] = s * aik + c * ajk;
                }
            }
    }
    for (size_t i = 0; i < p; i++)
        ev[i] = a[i * p + i];
}

/* Rows of the standardised data: either a dense double matrix (the work
 * set) or the caller's float matrix standardised on the fly. */
typedef struct zsrc {
    const double *w;    /* m x p, or NULL */
    const float *x;     /* with ld, cols, center, scale when w is NULL */
    size_t ld;
    const size_t *cols;
    const double *center, *scale;
    size_t p;
} zsrc;

static void load_rows(const zsrc *s, double *out, size_t r0, size_t r1)
{
    const size_t p = s->p;
    if (s->w != NULL) {
        memcpy(out, s->w + r0 * p, (r1 - r0) * p * sizeof *out);
        return;
    }
    for (size_t r = r0; r < r1; r++)
        for (size_t j = 0; j < p; j++)
            out[(r - r0) * p + j] = ((double)s->x[r * s->ld + s->cols[j]] - s->center[j]) / s->scale[j];
}

/* Scratch for mean/covariance/distances over m rows with `threads` threads. */
typedef struct mcd_work {
    size_t m, p;
    int threads;
    double *block;     /* threads x SM_REDUCE_BLOCK x p */
    double *partial;   /* n_blocks x (p + p*p) */
    size_t n_blocks;
} mcd_work;

static void work_free(mcd_work *w)
{
    sm_free(w->block);
    sm_free(w->partial);
    w->block = NULL;
    w->partial = NULL;
}

static bool work_alloc(mcd_work *w, size_t m, size_t p, int threads)
{
    memset(w, 0, sizeof *w);
    w->m = m, w->p = p, w->threads = threads;
    w->n_blocks = sm_block_count(m, SM_REDUCE_BLOCK);
    size_t rows = SM_MIN((size_t)SM_REDUCE_BLOCK, m), per_block = p + p * p, a, b;
    if (!sm_mul_size(rows * p, (size_t)threads, &a) || !sm_mul_size(w->n_blocks, per_block, &b))
        return false;
    w->block = sm_alloc_array(a, sizeof *w->block);
    w->partial = sm_alloc_array(b, sizeof *w->partial);
    if (w->block == NULL || w->partial == NULL) {
        work_free(w);
        return false;
    }
    return true;
}

/* d2[i] = |L^-1 (z_i - mu)|^2 for the m rows. Rows are independent, so any
 * thread count gives the same bits. */
static void distances(const mcd_work *w, const zsrc *s, const double *mu, const double *chol,
                      double *d2)
{
    const size_t p = w->p, m = w->m;
#pragma omp parallel for schedule(dynamic, 1) num_threads(w->threads) default(none) \
    shared(w, s, mu, chol, d2, p, m)
    for (size_t blk = 0; blk < w->n_blocks; blk++) {
        size_t r0 = blk * SM_REDUCE_BLOCK, r1 = SM_MIN(m, r0 + SM_REDUCE_BLOCK);
        double *z = w->block + (size_t)thread_id() * SM_MIN((size_t)SM_REDUCE_BLOCK, m) * p;
        load_rows(s, z, r0, r1);
        for (size_t r = 0; r < r1 - r0; r++)
            for (size_t j = 0; j < p; j++)
                z[r * p + j] -= mu[j];
        /* Y L^T = Z  =>  Y = Z L^-T: row y_i = L^-1 (z_i - mu). */
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)(r1 - r0),
                    (int)p, 1.0, chol, (int)p, z, (int)p);
        for (size_t r = 0; r < r1 - r0; r++) {
            double t = 0.0;
            for (size_t j = 0; j < p; j++)
                t += z[r * p + j] * z[r * p + j];
            d2[r0 + r] = t;
        }
    }
}

/* Mean and covariance (divided by the count) of the rows with sel[i] != 0
 * (all rows when sel is NULL); per-block partials in double, combined in
 * block order, so the result does not depend on the thread count. */
static void mean_cov(const mcd_work *w, const zsrc *s, const uint8_t *sel, double *mu, double *cov)
{
    const size_t p = w->p, m = w->m, per = p + p * p;
    /* Pass 1: per-block sums and counts (the count rides in the p*p slot 0). */
#pragma omp parallel for schedule(dynamic, 1) num_threads(w->threads) default(none) \
    shared(w, s, sel, p, m, per)
    for (size_t blk = 0; blk < w->n_blocks; blk++) {
        size_t r0 = blk * SM_REDUCE_BLOCK, r1 = SM_MIN(m, r0 + SM_REDUCE_BLOCK);
        double *z = w->block + (size_t)thread_id() * SM_MIN((size_t)SM_REDUCE_BLOCK, m) * p;
        double *part = w->partial + blk * per;
        memset(part, 0, per * sizeof *part);
        load_rows(s, z, r0, r1);
        for (size_t r = 0; r < r1 - r0; r++) {
            if (sel != NULL && !sel[r0 + r])
                continue;
            for (size_t j = 0; j < p; j++)
                part[j] += z[r * p + j];
            part[p] += 1.0;
        }
    }
    double count = 0.0;
    for (size_t j = 0; j < p; j++)
        mu[j] = 0.0;
    for (size_t blk = 0; blk < w->n_blocks; blk++) {
        for (size_t j = 0; j < p; j++)
            mu[j] += w->partial[blk * per + j];
        count += w->partial[blk * per + p];
    }
    for (size_t j = 0; j < p; j++)
        mu[j] /= count;
    /* Pass 2: centred selected rows packed at the top of the block, then one
     * dsyrk per block into its partial. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(w->threads) default(none) \
    shared(w, s, sel, mu, p, m, per)
    for (size_t blk = 0; blk < w->n_blocks; blk++) {
        size_t r0 = blk * SM_REDUCE_BLOCK, r1 = SM_MIN(m, r0 + SM_REDUCE_BLOCK);
        double *z = w->block + (size_t)thread_id() * SM_MIN((size_t)SM_REDUCE_BLOCK, m) * p;
        double *part = w->partial + blk * per;
        load_rows(s, z, r0, r1);
        size_t kept = 0;
        for (size_t r = 0; r < r1 - r0; r++) {
            if (sel != NULL && !sel[r0 + r])
                continue;
            for (size_t j = 0; j < p; j++)
                z[kept * p + j] = z[r * p + j] - mu[j];
            kept++;
        }
        memset(part, 0, p * p * sizeof *part);
        if (kept > 0)
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)p, (int)kept, 1.0, z, (int)p,
                        0.0, part, (int)p);
    }
    memset(cov, 0, p * p * sizeof *cov);
    for (size_t blk = 0; blk < w->n_blocks; blk++)
        for (size_t i = 0; i < p; i++)
            for (size_t j = 0; j <= i; j++)
                cov[i * p + j] += w->partial[blk * per + i * p + j];
    for (size_t i = 0; i < p; i++)
        for (size_t j = 0; j <= i; j++) {
            cov[i * p + j] /= count;
            cov[j * p + i] = cov[i * p + j];
        }
}

/* Moves the k indices with the smallest (key, index) to idx[0, k), k >= 1
 * (Wirth's selection with the index as tie-break, so the set is unique). */
static void select_rows(size_t *idx, const double *key, size_t n, size_t k)
{
#define ROW_LESS(a, b) (key[a] < key[b] || (key[a] == key[b] && (a) < (b)))
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k - 1;
    while (lo < hi) {
        size_t pivot = idx[kk];
        ptrdiff_t i = lo, j = hi;
        do {
            while (ROW_LESS(idx[i], pivot))
                i++;
            while (ROW_LESS(pivot, idx[j]))
                j--;
            if (i <= j) {
                size_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk)
            lo = i;
        if (kk < i)
            hi = j;
    }
#undef ROW_LESS
}

/* One candidate (location, scatter) and its selection. */
typedef struct mcd_fit {
    double *mu, *cov, *chol; /* p, p*p, p*p */
    double logdet;
    bool valid;
} mcd_fit;

typedef struct mcd_ctx {
    size_t p;
    double ridge;        /* added to the diagonal, in robustly standardised units */
} mcd_ctx;

/* cov += ridge * I, copy to chol and factor. */
static bool factor(const mcd_ctx *c, mcd_fit *f)
{
    const size_t p = c->p;
    for (size_t j = 0; j < p; j++)
        f->cov[j * p + j] += c->ridge;
    memcpy(f->chol, f->cov, p * p * sizeof *f->chol);
    f->valid = cholesky(f->chol, p, &f->logdet);
    return f->valid;
}

/* C-steps from f (which must be valid) on the m rows of s with support h,
 * until the determinant stops decreasing or `steps` are done. Scratch: d2
 * (m), idx (m), sel (m). */
static void csteps(const mcd_ctx *c, const mcd_work *w, const zsrc *s, size_t h, uint32_t steps,
                   mcd_fit *f, mcd_fit *next, double *d2, size_t *idx, uint8_t *sel)
{
    const size_t p = c->p, m = w->m;
    for (uint32_t step = 0; step < steps; step++) {
        distances(w, s, f->mu, f->chol, d2);
        for (size_t i = 0; i < m; i++)
            idx[i] = i;
        select_rows(idx, d2, m, h);
        memset(sel, 0, m);
        for (size_t i = 0; i < h; i++)
            sel[idx[i]] = 1;
        mean_cov(w, s, sel, next->mu, next->cov);
        /* The first step always moves to an h-subset estimate: the start may
         * come from p+1 rows or from the work set, whose determinant is not
         * comparable. After that a C-step never increases the determinant
         * (Rousseeuw & Van Driessen, Theorem 1); stop when it stalls. */
        if (!factor(c, next) || (step > 0 && !(next->logdet < f->logdet)))
            return;
        memcpy(f->mu, next->mu, p * sizeof *f->mu);
        memcpy(f->cov, next->cov, p * p * sizeof *f->cov);
        memcpy(f->chol, next->chol, p * p * sizeof *f->chol);
        f->logdet = next->logdet;
    }
}

static bool fit_alloc(mcd_fit *f, size_t p)
{
    f->mu = sm_alloc_array(p, sizeof *f->mu);
    f->cov = sm_alloc_array(p * p, sizeof *f->cov);
    f->chol = sm_alloc_array(p * p, sizeof *f->chol);
    f->valid = false;
    return f->mu != NULL && f->cov != NULL && f->chol != NULL;
}

static void fit_free(mcd_fit *f)
{
    sm_free(f->mu);
    sm_free(f->cov);
    sm_free(f->chol);
    f->mu = f->cov = f->chol = NULL;
}

/* Scratch for one trial on the work set. */
typedef struct trial_scratch {
    mcd_work w;
    mcd_fit next;
    double *d2;
    size_t *idx;
    uint8_t *sel;
} trial_scratch;

static void trial_scratch_free(trial_scratch *t)
{
    work_free(&t->w);
    fit_free(&t->next);
    sm_free(t->d2);
    sm_free(t->idx);
    sm_free(t->sel);
    t->d2 = NULL;
    t->idx = NULL;
    t->sel = NULL;
}

static bool trial_scratch_alloc(trial_scratch *t, size_t m, size_t p)
{
    memset(t, 0, sizeof *t);
    bool ok = work_alloc(&t->w, m, p, 1);
    ok = fit_alloc(&t->next, p) && ok;
    t->d2 = sm_alloc_array(m, sizeof *t->d2);
    t->idx = sm_alloc_array(m, sizeof *t->idx);
    t->sel = sm_alloc_array(m, 1);
    if (!ok || t->d2 == NULL || t->idx == NULL || t->sel == NULL) {
        trial_scratch_free(t);
        return false;
    }
    return true;
}

/* One FastMCD trial: a random (p+1)-subset of the work set (grown one random
 * row at a time while its scatter is singular), then C-steps. */
static void run_trial(const mcd_ctx *c, const zsrc *work, size_t m, size_t h, uint64_t seed,
                      uint64_t trial, trial_scratch *t, mcd_fit *f)
{
    const size_t p = c->p;
    sm_rng rng;
    sm_rng_init(&rng, seed, 1 + trial);
    /* Partial Fisher-Yates over idx draws distinct rows. */
    for (size_t i = 0; i < m; i++)
        t->idx[i] = i;
    size_t size = 0;
    memset(t->sel, 0, m);
    f->valid = false;
    while (size < h) { /* h rows still singular: an exact fit, no valid start */
        size_t r = size + (size_t)sm_rng_below(&rng, m - size);
        size_t tmp = t->idx[size];
        t->idx[size] = t->idx[r];
        t->idx[r] = tmp;
        t->sel[t->idx[size]] = 1;
        size++;
        if (size < p + 1)
            continue;
        mean_cov(&t->w, work, t->sel, f->mu, f->cov);
        if (factor(c, f))
            break;
    }
    if (!f->valid)
        return;
    csteps(c, &t->w, work, h, MCD_TRIAL_CSTEPS, f, &t->next, t->d2, t->idx, t->sel);
}

/* Sorts trial indices by (logdet, index), invalid last. */
static void rank_trials(size_t *order, const mcd_fit *fits, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = order[i], k = i;
        while (k > 0) {
            const mcd_fit *a = &fits[order[k - 1]], *b = &fits[v];
            bool v_first = !a->valid ? b->valid || order[k - 1] > v
                                     : b->valid && (b->logdet < a->logdet ||
                                                    (b->logdet == a->logdet && v < order[k - 1]));
            if (!v_first)
                break;
            order[k] = order[k - 1];
            k--;
        }
        order[k] = v;
    }
}

int sm_mcd_fit(const sm_mcd_params *params, const float *x, size_t n, size_t d, size_t ld,
               sm_mcd **out, sm_error *err)
{
    if (out == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    int rc = sm_mcd_params_check(params, err);
    if (rc != SM_OK)
        return rc;
    if (x == NULL || d < 1 || ld < d)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "d",
                               "need x, d >= 1 and ld >= d (d=%zu, ld=%zu)", d, ld);
    if (n < d + 2)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n",
                               "n_samples=%zu should be >= n_features + 2 = %zu for a covariance", n,
                               d + 2);
    const int threads = thread_count(params->n_threads);
    sm_mcd *mcd = sm_calloc(1, sizeof *mcd);
    double *cmin = NULL, *cmax = NULL, *med = NULL, *scl = NULL, *ev = NULL, *W = NULL, *d2 = NULL;
    double *d2_copy = NULL;
    size_t *idx = NULL, *order = NULL;
    uint8_t *sel = NULL;
    mcd_fit *fits = NULL, next = {0}, best = {0};
    trial_scratch *ts = NULL;
    size_t n_fits = 0, n_ts = 0;
    mcd_work full = {0};
    if (mcd == NULL)
        goto out_nomem;
    mcd->d = d;
    cmin = sm_alloc_array(d, sizeof *cmin);
    cmax = sm_alloc_array(d, sizeof *cmax);
    med = sm_alloc_array(d, sizeof *med);
    scl = sm_alloc_array(d, sizeof *scl);
    mcd->cols = sm_alloc_array(d, sizeof *mcd->cols);
    mcd->location = sm_alloc_array(d, sizeof *mcd->location);
    mcd->covariance = sm_calloc(d * d, sizeof *mcd->covariance);
    if (cmin == NULL || cmax == NULL || med == NULL || scl == NULL || mcd->cols == NULL ||
        mcd->location == NULL || mcd->covariance == NULL)
        goto out_nomem;
    for (size_t j = 0; j < d; j++)
        cmin[j] = cmax[j] = x[j];
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double v = x[i * ld + j];
            cmin[j] = v < cmin[j] ? v : cmin[j];
            cmax[j] = v > cmax[j] ? v : cmax[j];
        }
    rc = sm_robust_column_stats(med, scl, x, n, d, ld, params->n_threads, err);
    if (rc != SM_OK)
        goto out;
    size_t p = 0;
    for (size_t j = 0; j < d; j++)
        if (cmax[j] > cmin[j])
            mcd->cols[p++] = j;
    mcd->p = p;
    if (p == 0) {
        rc = sm_error_set(err, SM_ERR_NUMERIC, "every column is constant: no covariance to estimate");
        goto out;
    }
    mcd->center = sm_alloc_array(p, sizeof *mcd->center);
    mcd->scale = sm_alloc_array(p, sizeof *mcd->scale);
    mcd->mu = sm_alloc_array(p, sizeof *mcd->mu);
    mcd->chol = sm_alloc_array(p * p, sizeof *mcd->chol);
    ev = sm_alloc_array(p, sizeof *ev);
    if (mcd->center == NULL || mcd->scale == NULL || mcd->mu == NULL || mcd->chol == NULL ||
        ev == NULL)
        goto out_nomem;
    for (size_t jj = 0; jj < p; jj++) {
        size_t j = mcd->cols[jj];
        mcd->center[jj] = med[j];
        /* A column constant in more than half the rows has a robust scale of
         * 0: fall back to its range, which is > 0 for a non-constant column. */
        mcd->scale[jj] = scl[j] > 0.0 ? scl[j] : (cmax[j] - cmin[j]);
    }
    zsrc all = {.x = x, .ld = ld, .cols = mcd->cols, .center = mcd->center, .scale = mcd->scale, .p = p};
    if (!work_alloc(&full, n, p, threads) || !fit_alloc(&next, p) || !fit_alloc(&best, p))
        goto out_nomem;
    size_t h = params->support_fraction == 0.0 ? (n + p + 1) / 2
                                               : (size_t)ceil(params->support_fraction * (double)n);
    h = SM_MIN(SM_MAX(h, p + 1), n);
    d2 = sm_alloc_array(n, sizeof *d2);
    idx = sm_alloc_array(n, sizeof *idx);
    sel = sm_alloc_array(n, 1);
    if (d2 == NULL || idx == NULL || sel == NULL)
        goto out_nomem;
    /* The regularisation, fixed once as MRCD does (Boudt, Rousseeuw, Vanduffel &
     * Verdonck, Statistics and Computing 30, 2020): from the scatter of the h
     * rows nearest the coordinatewise median (in standardised units), the
     * smallest ridge that bounds its condition number by MRCD_CONDITION. A
     * majority that is constant in some column (a return rate that is 0 for
     * most customers) then keeps a finite, comparable distance instead of an
     * exact fit that makes every other customer infinitely far. */
    for (size_t j = 0; j < p; j++) {
        best.mu[j] = 0.0;
        for (size_t k = 0; k < p; k++)
            best.chol[j * p + k] = j == k;
    }
    distances(&full, &all, best.mu, best.chol, d2);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    select_rows(idx, d2, n, h);
    memset(sel, 0, n);
    for (size_t i = 0; i < h; i++)
        sel[idx[i]] = 1;
    mean_cov(&full, &all, sel, best.mu, best.cov);
    memcpy(best.chol, best.cov, p * p * sizeof *best.chol);
    sym_eigenvalues(best.chol, p, ev);
    double ev_min = ev[0], ev_max = ev[0];
    for (size_t j = 1; j < p; j++) {
        ev_min = SM_MIN(ev_min, ev[j]);
        ev_max = SM_MAX(ev_max, ev[j]);
    }
    double ridge = params->ridge;
    if (ridge == 0.0) {
        ridge = SM_MAX(0.0, (ev_max - MRCD_CONDITION * ev_min) / (MRCD_CONDITION - 1.0));
        /* Keep every scatter invertible even when the start is well conditioned. */
        ridge = SM_MAX(ridge, 1e-9 * SM_MAX(ev_max, 1e-300));
    }
    mcd->ridge = ridge;
    mcd_ctx ctx = {.p = p, .ridge = ridge};
    if (h == n)
        mean_cov(&full, &all, NULL, best.mu, best.cov); /* the classical estimate */

    if (h == n) {
        /* Nothing to trim: the classical estimate (in best, before the ridge). */
        if (!factor(&ctx, &best)) {
            rc = sm_error_set(err, SM_ERR_NUMERIC, "the covariance is singular (collinear columns); "
                                                   "set ridge > 0");
            goto out;
        }
    } else {
        /* Work set: all rows, or a random MCD_WORK_ROWS of them in row order. */
        size_t m = SM_MIN(n, (size_t)MCD_WORK_ROWS);
        W = sm_alloc_array(m * p, sizeof *W);
        if (W == NULL)
            goto out_nomem;
        if (m == n) {
            load_rows(&all, W, 0, n);
        } else {
            sm_rng rng;
            sm_rng_init(&rng, params->seed, 0);
            for (size_t i = 0; i < n; i++)
                idx[i] = i;
            for (size_t i = 0; i < m; i++) { /* partial Fisher-Yates */
                size_t r = i + (size_t)sm_rng_below(&rng, n - i), t = idx[i];
                idx[i] = idx[r];
                idx[r] = t;
            }
            memset(sel, 0, n);
            for (size_t i = 0; i < m; i++)
                sel[idx[i]] = 1;
            for (size_t i = 0, k = 0; i < n; i++)
                if (sel[i])
                    load_rows(&all, W + p * k++, i, i + 1);
        }
        zsrc work = {.w = W, .p = p};
        size_t h_work = m == n ? h : (size_t)ceil((double)h * (double)m / (double)n);
        h_work = SM_MIN(SM_MAX(h_work, p + 1), m);

        const size_t n_trials = params->n_trials;
        fits = sm_calloc(n_trials, sizeof *fits);
        order = sm_alloc_array(n_trials, sizeof *order);
        if (fits == NULL || order == NULL)
            goto out_nomem;
        for (n_fits = 0; n_fits < n_trials; n_fits++)
            if (!fit_alloc(&fits[n_fits], p)) {
                n_fits++;
                goto out_nomem;
            }
        const size_t chunk = SM_MIN((size_t)MCD_TRIAL_CHUNK, n_trials);
        ts = sm_calloc(chunk, sizeof *ts);
        if (ts == NULL)
            goto out_nomem;
        for (; n_ts < chunk; n_ts++)
            if (!trial_scratch_alloc(&ts[n_ts], m, p))
                goto out_nomem;
        for (size_t first = 0; first < n_trials; first += chunk) {
            size_t count = SM_MIN(chunk, n_trials - first);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) default(none) \
    shared(ctx, work, m, h_work, params, ts, fits, first, count)
            for (size_t t = 0; t < count; t++)
                run_trial(&ctx, &work, m, h_work, params->seed, first + t, &ts[t], &fits[first + t]);
            if (sm_progress_report(&params->progress, "mcd trials", first + count, n_trials)) {
                rc = sm_error_set(err, SM_ERR_CANCELLED, "MCD cancelled");
                goto out;
            }
        }
        for (size_t t = 0; t < n_trials; t++)
            order[t] = t;
        rank_trials(order, fits, n_trials);
        if (!fits[order[0]].valid) {
            rc = sm_error_set(err, SM_ERR_NUMERIC,
                              "every subset's covariance is singular (more than h rows on a "
                              "hyperplane); set ridge > 0");
            goto out;
        }
        /* Refine the best candidates to convergence on all rows; keep the
         * smallest determinant (ties: the better-ranked trial). */
        size_t keep = SM_MIN((size_t)MCD_KEEP, n_trials);
        best.valid = false;
        for (size_t r = 0; r < keep; r++) {
            mcd_fit *f = &fits[order[r]];
            if (!f->valid)
                break;
            csteps(&ctx, &full, &all, h, params->max_csteps, f, &next, d2, idx, sel);
            if (!best.valid || f->logdet < best.logdet) {
                memcpy(best.mu, f->mu, p * sizeof *best.mu);
                memcpy(best.cov, f->cov, p * p * sizeof *best.cov);
                memcpy(best.chol, f->chol, p * p * sizeof *best.chol);
                best.logdet = f->logdet;
                best.valid = true;
            }
            if (sm_progress_report(&params->progress, "mcd refine", r + 1, keep)) {
                rc = sm_error_set(err, SM_ERR_CANCELLED, "MCD cancelled");
                goto out;
            }
        }
    }

    /* Consistency: scale the raw scatter so the median distance matches the
     * chi-square median (scikit-learn's correct_covariance). */
    distances(&full, &all, best.mu, best.chol, d2);
    d2_copy = sm_alloc_array(n, sizeof *d2_copy);
    if (d2_copy == NULL)
        goto out_nomem;
    memcpy(d2_copy, d2, n * sizeof *d2);
    double correction = median_inplace(d2_copy, n) / sm_chi2_quantile(0.5, (double)p);
    if (!(correction > 0.0) || !isfinite(correction))
        correction = 1.0;
    /* Reweighting: rows within chi2_{p,0.975} of the corrected estimate. */
    double cut = sm_chi2_quantile(0.975, (double)p) * correction;
    size_t support = 0;
    for (size_t i = 0; i < n; i++) {
        sel[i] = d2[i] <= cut;
        support += sel[i];
    }
    if (support >= p + 1) {
        mean_cov(&full, &all, sel, next.mu, next.cov);
        if (factor(&ctx, &next)) {
            memcpy(best.mu, next.mu, p * sizeof *best.mu);
            memcpy(best.cov, next.cov, p * p * sizeof *best.cov);
            memcpy(best.chol, next.chol, p * p * sizeof *best.chol);
            correction = 1.0;
        } else {
            support = h;
        }
    } else {
        support = h;
    }
    if (correction != 1.0) {
        /* Reweighting failed: keep the corrected raw estimate. */
        for (size_t i = 0; i < p * p; i++)
            best.cov[i] *= correction;
        memcpy(best.chol, best.cov, p * p * sizeof *best.chol);
        if (!cholesky(best.chol, p, &best.logdet)) {
            rc = sm_error_set(err, SM_ERR_NUMERIC, "the robust covariance is singular");
            goto out;
        }
    }
    mcd->support = support;
    memcpy(mcd->mu, best.mu, p * sizeof *mcd->mu);
    memcpy(mcd->chol, best.chol, p * p * sizeof *mcd->chol);
    /* Back to original units: location = center + scale * mu; constant
     * columns keep their value; covariance = D S D on the active block. */
    for (size_t j = 0; j < d; j++)
        mcd->location[j] = cmin[j];
    for (size_t a = 0; a < p; a++) {
        mcd->location[mcd->cols[a]] = mcd->center[a] + mcd->scale[a] * best.mu[a];
        for (size_t b = 0; b < p; b++)
            mcd->covariance[mcd->cols[a] * d + mcd->cols[b]] =
                mcd->scale[a] * mcd->scale[b] * best.cov[a * p + b];
    }
    *out = mcd;
    mcd = NULL;
    rc = SM_OK;
    goto out;

out_nomem:
    rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory in the MCD fit");
out:
    for (size_t i = 0; i < n_fits; i++)
        fit_free(&fits[i]);
    for (size_t i = 0; i < n_ts; i++)
        trial_scratch_free(&ts[i]);
    sm_free(fits);
    sm_free(ts);
    sm_free(order);
    fit_free(&next);
    fit_free(&best);
    work_free(&full);
    sm_free(cmin);
    sm_free(cmax);
    sm_free(med);
    sm_free(scl);
    sm_free(ev);
    sm_free(W);
    sm_free(d2);
    sm_free(idx);
    sm_free(sel);
    sm_free(d2_copy);
    sm_mcd_destroy(mcd);
    return rc;
}

int sm_mcd_distance(const sm_mcd *mcd, double *d2, const float *x, size_t n, size_t d, size_t ld,
                    int n_threads, sm_error *err)
{
    if (mcd == NULL || d2 == NULL || (x == NULL && n > 0))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "mcd, d2 or x is NULL");
    if (d != mcd->d || ld < d)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "d",
                               "the estimate has %zu features, the input %zu (ld %zu)", mcd->d, d, ld);
    if (n_threads < 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_threads",
                               "n_threads=%d must be >= 0", n_threads);
    if (n == 0)
        return SM_OK;
    mcd_work w;
    if (!work_alloc(&w, n, mcd->p, thread_count(n_threads)))
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for MCD distances");
    zsrc s = {.x = x, .ld = ld, .cols = mcd->cols, .center = mcd->center, .scale = mcd->scale,
              .p = mcd->p};
    distances(&w, &s, mcd->mu, mcd->chol, d2);
    work_free(&w);
    return SM_OK;
}
