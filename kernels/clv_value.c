/* SPDX-License-Identifier: MIT */
/*
 * Customer lifetime value from margins: historic (to date), the classic
 * discounted definition sum_{t=1..T} m_t r^t / (1+d)^t - AC (see e.g. Gupta &
 * Lehmann, "Customers as assets", J. Interactive Marketing 17(1), 2003), and
 * the model-based value of BG/NBD x Gamma-Gamma in the convention of the
 * lifetimes library (monthly steps, monthly discount rate).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/clv_special.h"
#include "kernels/core.h"
#include "segmint/clv.h"

int sm_clv_historic(double *clv, const double *revenue, const double *cost,
                    const double *acquisition, const double *retention, double margin, size_t n,
                    sm_error *err)
{
    if (clv == NULL || revenue == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "clv and revenue must not be NULL");
    if (cost == NULL && !isfinite(margin))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "margin",
                               "margin=%g must be finite", margin);
    for (size_t i = 0; i < n; i++) {
        double rev = revenue[i];
        double c = cost != NULL ? cost[i] : 0.0;
        double ac = acquisition != NULL ? acquisition[i] : 0.0;
        double rc = retention != NULL ? retention[i] : 0.0;
        const char *bad = !isfinite(rev) ? "revenue"
                          : !isfinite(c) ? "cost"
                          : !isfinite(ac) ? "acquisition"
                          : !isfinite(rc) ? "retention"
                                          : NULL;
        if (bad != NULL)
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, bad,
                                   "%s of customer %zu is not a finite number", bad, i + 1);
        clv[i] = (cost != NULL ? rev - c : margin * rev) - ac - rc;
    }
    return SM_OK;
}

static int discount_params_check(const sm_clv_discount_params *p, sm_error *err)
{
    if (p == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "discount parameters are NULL");
    if (p->periods < 1)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "periods",
                               "periods=%u must be >= 1", (unsigned)p->periods);
    if (!(p->retention >= 0.0 && p->retention <= 1.0))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "retention",
                               "retention=%g must be in [0, 1]", p->retention);
    if (!(p->discount > -1.0) || !isfinite(p->discount))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "discount",
                               "discount=%g must be finite and > -1", p->discount);
    if (!(p->acquisition_cost >= 0.0) || !isfinite(p->acquisition_cost))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "acquisition_cost",
                               "acquisition_cost=%g must be finite and >= 0", p->acquisition_cost);
    return SM_OK;
}

double sm_clv_discounted_schedule(const double *margin, const sm_clv_discount_params *p)
{
    if (margin == NULL || discount_params_check(p, NULL) != SM_OK)
        return NAN;
    double q = p->retention / (1.0 + p->discount), w = 1.0, sum = 0.0;
    for (uint32_t t = 1; t <= p->periods; t++) {
        w *= q; /* r^t / (1+d)^t */
        sum += margin[t - 1] * w;
    }
    return sum - p->acquisition_cost;
}

/* sum_{t=1..T} q^t, summed term by term (T is a horizon in periods, small). */
static double geometric_weight(double q, uint32_t T)
{
    double w = 1.0, sum = 0.0;
    for (uint32_t t = 1; t <= T; t++) {
        w *= q;
        sum += w;
    }
    return sum;
}

int sm_clv_discounted(double *clv, const double *margin, const double *retention, size_t n,
                      const sm_clv_discount_params *p, int n_threads, sm_error *err)
{
    int rc = discount_params_check(p, err);
    if (rc != SM_OK)
        return rc;
    if (clv == NULL || margin == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "clv and margin must not be NULL");
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(margin[i]))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, "margin",
                                   "margin of customer %zu is not a finite number", i + 1);
        if (retention != NULL && !(retention[i] >= 0.0 && retention[i] <= 1.0))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, "retention",
                                   "retention %g of customer %zu must be in [0, 1]", retention[i],
                                   i + 1);
    }
    const double d = p->discount, ac = p->acquisition_cost;
    const uint32_t T = p->periods;
    const double common = geometric_weight(p->retention / (1.0 + d), T);
#pragma omp parallel for schedule(static) num_threads(n_threads > 0 ? n_threads : omp_get_max_threads()) \
    default(none) shared(clv, margin, retention) firstprivate(n, d, ac, T, common)
    for (size_t i = 0; i < n; i++) {
        double g = retention != NULL ? geometric_weight(retention[i] / (1.0 + d), T) : common;
        clv[i] = margin[i] * g - ac;
    }
    return SM_OK;
}

void sm_clv_model_options_init(sm_clv_model_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->months = 12;
    opt->discount = 0.01;
    opt->margin = 1.0;
    opt->units_per_month = 4.345; /* weeks, the factor lifetimes uses */
}

int sm_clv_bgnbd_gg(double *clv, const sm_bgnbd_params *bg, const sm_gg_params *gg,
                    const sm_clv_summary *s, const sm_clv_model_options *opt, int n_threads,
                    sm_error *err)
{
    if (opt == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "CLV options are NULL");
    if (opt->months < 1)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "months",
                               "months=%u must be >= 1", (unsigned)opt->months);
    if (!(opt->discount > -1.0) || !isfinite(opt->discount))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "discount",
                               "discount=%g must be finite and > -1", opt->discount);
    if (!isfinite(opt->margin))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "margin",
                               "margin=%g must be finite", opt->margin);
    if (!(opt->units_per_month > 0.0) || !isfinite(opt->units_per_month))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "units_per_month",
                               "units_per_month=%g must be finite and > 0", opt->units_per_month);
    int rc = sm_bgnbd_params_check(bg, err);
    if (rc != SM_OK)
        return rc;
    /* The expected spend validates gg and the summary, and needs monetary. */
    rc = sm_gg_expected_spend(clv, gg, s, n_threads, err);
    if (rc != SM_OK)
        return rc;
    const sm_bgnbd_params P = *bg;
    const double *X = s->frequency, *TX = s->recency, *TT = s->T;
    const size_t n = s->n;
    const uint32_t months = opt->months;
    const double u = opt->units_per_month, margin = opt->margin, disc = 1.0 + opt->discount;
    size_t bad = SIZE_MAX;
#pragma omp parallel for schedule(dynamic, 512) num_threads(n_threads > 0 ? n_threads : omp_get_max_threads()) \
    default(none) shared(clv, X, TX, TT) firstprivate(n, P, months, u, margin, disc) reduction(min : bad)
    for (size_t i = 0; i < n; i++) {
        double spend = clv[i]; /* expected spend, overwritten by the CLV */
        double alive = sm_bgnbd_p_alive(&P, X[i], TX[i], TT[i]);
        double prev = 0.0, w = 1.0, sum = 0.0;
        for (uint32_t k = 1; k <= months && alive > 0.0; k++) {
            double e = alive * sm_bgnbd_alive_expectation(P.r, P.alpha, P.a, P.b, X[i], TT[i],
                                                          (double)k * u);
            w /= disc;
            sum += (e - prev) * w;
            prev = e;
        }
        double value = margin * spend * sum;
        if (alive == 0.0 || sum == 0.0)
            value = 0.0; /* a certainly-dead customer is worth 0 even if spend is inf */
        clv[i] = value;
        if (!isfinite(value) && i < bad)
            bad = i;
    }
    if (bad != SIZE_MAX)
        return sm_error_set_at(err, SM_ERR_NUMERIC, NULL, (uint64_t)bad + 1, 0, "clv",
                               "CLV of customer %zu is not finite (x=%g t_x=%g T=%g; infinite "
                               "expected spend means Gamma-Gamma q <= 1)",
                               bad + 1, X[bad], TX[bad], TT[bad]);
    return SM_OK;
}
