/* SPDX-License-Identifier: MIT */
/* Column scaling for clustering (see scale.h). Statistics in double; the
 * robust percentiles come from quickselect on a copy of each column. */
#include "engine/scale.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/core.h"

static const char *const method_names[] = {"none", "zscore", "robust"};

int sm_scale_method_parse(const char *name, sm_scale_method *out)
{
    for (size_t i = 0; name != NULL && i < SM_ARRAY_LEN(method_names); i++)
        if (strcmp(name, method_names[i]) == 0) {
            *out = (sm_scale_method)i;
            return SM_OK;
        }
    return SM_ERR_INVALID_ARG;
}

const char *sm_scale_method_name(sm_scale_method method)
{
    return (unsigned)method < SM_ARRAY_LEN(method_names) ? method_names[method] : "?";
}

void sm_scaler_free(sm_scaler *s)
{
    if (s == NULL)
        return;
    sm_free(s->log1p);
    sm_free(s->center);
    sm_free(s->scale);
    memset(s, 0, sizeof *s);
}

static inline double column_value(const sm_scaler *s, const float *x, size_t f)
{
    return s->log1p[f] ? log1p((double)x[f]) : (double)x[f];
}

/* The kth smallest of v[0..n) (0-based); reorders v so that everything after
 * position kth is >= the result. Three-way partition around a median-of-three
 * pivot: deterministic, O(n) expected, fast on repeated values. */
static double select_kth(double *v, size_t n, size_t kth)
{
    size_t lo = 0, hi = n; /* the answer lies in [lo, hi) */
    while (hi - lo > 1) {
        double a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi - 1];
        double pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            double t = v[i];
            if (t < pivot) {
                v[i++] = v[lt];
                v[lt++] = t;
            } else if (t > pivot) {
                v[i] = v[--gt];
                v[gt] = t;
            } else {
                i++;
            }
        }
        if (kth < lt)
            hi = lt;
        else if (kth >= gt)
            lo = gt;
        else
            return pivot;
    }
    return v[lo];
}

/* numpy.percentile(v, q) with linear interpolation (v is reordered). */
static double percentile(double *v, size_t n, double q)
{
    double pos = q / 100.0 * (double)(n - 1);
    size_t below = (size_t)floor(pos);
    double frac = pos - (double)below;
    double lo = select_kth(v, n, below);
    if (frac == 0.0 || below + 1 >= n)
        return lo;
    /* the next order statistic is the smallest value above position `below` */
    double hi = v[below + 1];
    for (size_t i = below + 1; i < n; i++)
        if (v[i] < hi)
            hi = v[i];
    return lo + frac * (hi - lo);
}

int sm_scaler_fit(sm_scaler *s, const float *x, size_t n, size_t d, size_t ld,
                  sm_scale_method method, const bool *log1p_columns, const char *const *names,
                  int n_threads, sm_error *err)
{
    memset(s, 0, sizeof *s);
    if (n == 0 || d == 0 || ld < d || (unsigned)method > SM_SCALE_ROBUST)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "scaling needs n >= 1, d >= 1, ld >= d");
    s->d = d;
    s->method = method;
    s->log1p = sm_calloc(d, sizeof(bool));
    s->center = sm_calloc(d, sizeof(double));
    s->scale = sm_alloc_array(d, sizeof(double));
    if (s->log1p == NULL || s->center == NULL || s->scale == NULL) {
        sm_scaler_free(s);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for scaling");
    }
    for (size_t f = 0; f < d; f++) {
        s->log1p[f] = log1p_columns != NULL && log1p_columns[f];
        s->scale[f] = 1.0;
    }
    for (size_t f = 0; f < d; f++) {
        if (!s->log1p[f])
            continue;
        for (size_t i = 0; i < n; i++)
            if (!(x[i * ld + f] > -1.0f)) {
                int rc = sm_error_set(err, SM_ERR_NUMERIC,
                                      "column \"%s\", row %zu: log1p needs values > -1, got %.9g",
                                      names != NULL ? names[f] : "?", i + 1, (double)x[i * ld + f]);
                sm_scaler_free(s);
                return rc;
            }
    }
    if (method == SM_SCALE_NONE)
        return SM_OK;
    double *columns = NULL;
    if (method == SM_SCALE_ROBUST) {
        columns = sm_alloc_array((size_t)(n_threads > 0 ? n_threads : 1) * n, sizeof(double));
        if (columns == NULL) {
            sm_scaler_free(s);
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory for robust scaling (%zu rows)", n);
        }
    }
    /* One column per iteration: each result depends on its column only. */
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(dynamic, 1)
    for (size_t f = 0; f < d; f++) {
        if (method == SM_SCALE_ZSCORE) {
            double mean = 0.0, ss = 0.0;
            for (size_t i = 0; i < n; i++)
                mean += column_value(s, x + i * ld, f);
            mean /= (double)n;
            for (size_t i = 0; i < n; i++) {
                double t = column_value(s, x + i * ld, f) - mean;
                ss += t * t;
            }
            double sd = sqrt(ss / (double)n);
            s->center[f] = mean;
            s->scale[f] = sd > 0.0 ? sd : 1.0;
        } else {
            double *v = columns + (size_t)omp_get_thread_num() * n;
            for (size_t i = 0; i < n; i++)
                v[i] = column_value(s, x + i * ld, f);
            double q25 = percentile(v, n, 25.0);
            double q50 = percentile(v, n, 50.0);
            double q75 = percentile(v, n, 75.0);
            s->center[f] = q50;
            s->scale[f] = q75 - q25 > 0.0 ? q75 - q25 : 1.0;
        }
    }
    sm_free(columns);
    return SM_OK;
}

void sm_scaler_transform(const sm_scaler *s, float *out, size_t ldo, const float *x, size_t n,
                         size_t ld)
{
    for (size_t i = 0; i < n; i++)
        for (size_t f = 0; f < s->d; f++)
            out[i * ldo + f] = (float)((column_value(s, x + i * ld, f) - s->center[f]) / s->scale[f]);
}

void sm_scaler_inverse(const sm_scaler *s, float *out, const float *c, size_t k)
{
    for (size_t j = 0; j < k; j++)
        for (size_t f = 0; f < s->d; f++) {
            double v = (double)c[j * s->d + f] * s->scale[f] + s->center[f];
            out[j * s->d + f] = (float)(s->log1p[f] ? expm1(v) : v);
        }
}
