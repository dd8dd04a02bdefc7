/* SPDX-License-Identifier: MIT */
/*
 * Column scaling before clustering: optional log1p of chosen columns (skewed
 * money amounts), then z-score (mean, population standard deviation, as
 * scikit-learn's StandardScaler) or robust scaling (median and interquartile
 * range with numpy's linear-interpolation percentiles, as RobustScaler).
 * A column with zero spread keeps scale 1. The inverse maps centers back to
 * original units (expm1 after unscaling for log1p columns). Not a kernel:
 * it validates values (log1p needs > -1) and names the row and column.
 */
#ifndef SEGMINT_ENGINE_SCALE_H
#define SEGMINT_ENGINE_SCALE_H

#include <stdbool.h>
#include <stddef.h>

#include "segmint/error.h"

typedef enum sm_scale_method {
    SM_SCALE_NONE = 0, /* center 0, scale 1 */
    SM_SCALE_ZSCORE,   /* (x - mean) / std */
    SM_SCALE_ROBUST    /* (x - median) / (q75 - q25) */
} sm_scale_method;

typedef struct sm_scaler {
    size_t d;
    sm_scale_method method;
    bool *log1p;    /* d: log1p applied before centering */
    double *center; /* d */
    double *scale;  /* d, never 0 */
} sm_scaler;

/* Parses "zscore", "robust" or "none". Returns SM_OK or SM_ERR_INVALID_ARG. */
int sm_scale_method_parse(const char *name, sm_scale_method *out);
const char *sm_scale_method_name(sm_scale_method method);

/* Learns the transform of an n x d matrix (leading dimension ld).
 * log1p_columns (d flags, may be NULL) marks the columns to log1p first;
 * their values must be > -1 (SM_ERR_NUMERIC naming `names[col]` and the
 * 1-based row). names may be NULL. The scaler owns its arrays: release with
 * sm_scaler_free. Errors: SM_ERR_NUMERIC, SM_ERR_NOMEM, SM_ERR_INVALID_ARG. */
int sm_scaler_fit(sm_scaler *s, const float *x, size_t n, size_t d, size_t ld,
                  sm_scale_method method, const bool *log1p_columns, const char *const *names,
                  int n_threads, sm_error *err);

/* out = transform(x), n x d; out may equal x (same ld). */
void sm_scaler_transform(const sm_scaler *s, float *out, size_t ldo, const float *x, size_t n,
                         size_t ld);

/* out = inverse(c) for k rows of d (both leading dimension d): centers in
 * the original units. */
void sm_scaler_inverse(const sm_scaler *s, float *out, const float *c, size_t k);

void sm_scaler_free(sm_scaler *s);

#endif
