/* SPDX-License-Identifier: MIT */
/*
 * Validation of the per-customer summary (reliability row B10), the fit
 * options shared by BG/NBD and Gamma-Gamma, and the frequency histogram.
 */
#include <math.h>
#include <string.h>

#include "kernels/clv_internal.h"
#include "kernels/core.h"

/* Frequencies are counts; above 2^53 a double no longer holds every integer. */
#define MAX_EXACT_INTEGER 9007199254740992.0

/* err->line is the 1-based customer index; the caller maps it to a file
 * line when the summary came from a file. */
static int bad_value(sm_error *err, size_t i, const char *field, const char *fmt, double v)
{
    return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, field, fmt, v);
}

static int bad_nan(sm_error *err, size_t i, const char *field)
{
    return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, field,
                           "%s is NaN", field);
}

int sm_clv_summary_check(const sm_clv_summary *s, sm_error *err)
{
    if (s == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "summary is NULL");
    if (s->n == 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n",
                               "no customers: the summary needs at least one row");
    if (s->frequency == NULL || s->recency == NULL || s->T == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG,
                            "summary arrays frequency, recency and T are required");
    for (size_t i = 0; i < s->n; i++) {
        double x = s->frequency[i], tx = s->recency[i], T = s->T[i];
        if (isnan(x))
            return bad_nan(err, i, "frequency");
        if (!isfinite(x))
            return bad_value(err, i, "frequency", "frequency %g is infinite", x);
        if (x < 0.0)
            return bad_value(err, i, "frequency", "frequency %g must be >= 0", x);
        if (x != floor(x))
            return bad_value(err, i, "frequency",
                             "frequency %.17g is not an integer (it counts repeat purchases)", x);
        if (x >= MAX_EXACT_INTEGER)
            return bad_value(err, i, "frequency", "frequency %g is too large (must be < 2^53)", x);
        if (isnan(T))
            return bad_nan(err, i, "T");
        if (!isfinite(T))
            return bad_value(err, i, "T", "T %g is infinite", T);
        if (!(T > 0.0))
            return bad_value(err, i, "T",
                             "T %g must be > 0 (age: time from the first purchase to the end of "
                             "calibration)",
                             T);
        if (isnan(tx))
            return bad_nan(err, i, "recency");
        if (tx < 0.0)
            return bad_value(err, i, "recency", "recency %g must be >= 0", tx);
        if (tx > T) {
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, "recency",
                                   "recency %.17g is larger than T %.17g (the last purchase "
                                   "cannot follow the end of calibration)",
                                   tx, T);
        }
        if (x == 0.0 && tx != 0.0)
            return bad_value(err, i, "recency",
                             "recency %g must be 0 when frequency is 0 (no repeat purchase)", tx);
        if (s->monetary != NULL) {
            double m = s->monetary[i];
            if (isnan(m))
                return bad_nan(err, i, "monetary_value");
            if (!isfinite(m))
                return bad_value(err, i, "monetary_value", "monetary_value %g is infinite", m);
        }
    }
    return SM_OK;
}

void sm_clv_fit_options_init(sm_clv_fit_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->n_threads = 0;
    opt->max_iter = 200;
    opt->gtol = 1e-9;
    opt->has_init = false;
    opt->corr_warn = 0.3;
}

int sm_clv_fit_options_check(const sm_clv_fit_options *opt, sm_error *err)
{
    if (opt == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "options are NULL");
    if (opt->n_threads < 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_threads",
                               "n_threads=%d must be >= 0 (0 = OpenMP default)", opt->n_threads);
    if (opt->max_iter < 1)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "max_iter",
                               "max_iter=%d must be >= 1", opt->max_iter);
    if (!(opt->gtol > 0.0 && opt->gtol < 1.0))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "gtol",
                               "gtol=%g must be in (0, 1)", opt->gtol);
    if (!(opt->corr_warn > 0.0 && opt->corr_warn <= 1.0))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "corr_warn",
                               "corr_warn=%g must be in (0, 1]", opt->corr_warn);
    if (opt->has_init) {
        for (int j = 0; j < 4; j++)
            if (!(isfinite(opt->init[j]) && opt->init[j] > 0.0))
                return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "init",
                                       "init[%d]=%g must be finite and > 0", j, opt->init[j]);
    }
    return SM_OK;
}

int sm_clv_count_frequencies(uint64_t **counts, size_t *size, size_t *n_selected,
                             const sm_clv_summary *s, int select, sm_error *err)
{
    double xmax = 0.0;
    size_t selected = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!sm_clv_selected(s, i, select))
            continue;
        selected++;
        if (s->frequency[i] > xmax)
            xmax = s->frequency[i];
    }
    *n_selected = selected;
    *counts = NULL;
    *size = 0;
    if (xmax > (double)SM_CLV_TABLE_MAX)
        return SM_OK;
    size_t len = (size_t)xmax + 1;
    uint64_t *c = sm_calloc(len, sizeof *c);
    if (c == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for a frequency table of %zu entries",
                            len);
    for (size_t i = 0; i < s->n; i++)
        if (sm_clv_selected(s, i, select))
            c[(size_t)s->frequency[i]]++;
    *counts = c;
    *size = len;
    return SM_OK;
}
