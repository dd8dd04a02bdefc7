/* SPDX-License-Identifier: MIT */
/*
 * Gamma-Gamma spend model (Fader, Hardie & Lee, "RFM and CLV: using
 * iso-value curves for customer base analysis", JMR 42(4), 2005; Hardie,
 * "The Gamma-Gamma model of monetary value", note 025, 2013): the density of
 * a customer's mean repeat spend mbar given x purchases,
 *   ln f = lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln mbar + px ln x
 *          - (px+q) ln(x mbar + v),
 * its maximum-likelihood fit and the expected mean spend (note 025 eq. 5).
 * Customers with x = 0 or mbar <= 0 carry no spend information and are
 * left out of the fit, counted (reliability row B3).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/clv_internal.h"
#include "kernels/clv_special.h"
#include "kernels/core.h"
#include "kernels/optimize.h"

#define GG_PARTS 4

typedef struct gg_ctx {
    const sm_clv_summary *s;
    int n_threads;
    size_t n_blocks;
    size_t n_used;
    double *partials;  /* n_blocks * GG_PARTS */
    uint64_t *xcount;  /* histogram of x over the customers used; NULL: per customer */
    size_t xsize;
    sm_progress progress;
    int evaluations;
} gg_ctx;

int sm_gg_params_check(const sm_gg_params *p, sm_error *err)
{
    if (p == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "Gamma-Gamma parameters are NULL");
    const double v[3] = {p->p, p->q, p->v};
    const char *names[3] = {"p", "q", "v"};
    for (int j = 0; j < 3; j++)
        if (!(isfinite(v[j]) && v[j] > 0.0))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, names[j],
                                   "Gamma-Gamma parameter %s=%g must be finite and > 0", names[j],
                                   v[j]);
    return SM_OK;
}

static void gg_ctx_free(gg_ctx *c)
{
    sm_free(c->partials);
    sm_free(c->xcount);
}

static int gg_ctx_init(gg_ctx *c, const sm_clv_summary *s, int n_threads, sm_progress progress,
                       sm_error *err)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    c->n_threads = n_threads;
    c->progress = progress;
    if (s->monetary == NULL)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "monetary_value",
                               "Gamma-Gamma needs monetary values (mean spend per repeat purchase)");
    c->n_blocks = sm_block_count(s->n, SM_REDUCE_BLOCK);
    c->partials = sm_alloc_array(c->n_blocks * GG_PARTS, sizeof(double));
    if (c->partials == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu likelihood blocks",
                            c->n_blocks);
    int rc = sm_clv_count_frequencies(&c->xcount, &c->xsize, &c->n_used, s, SM_CLV_SPENDERS, err);
    if (rc != SM_OK) {
        gg_ctx_free(c);
        return rc;
    }
    if (c->n_used == 0) {
        gg_ctx_free(c);
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "monetary_value",
                               "no customer with frequency > 0 and monetary_value > 0: nothing "
                               "to fit the Gamma-Gamma model on");
    }
    return SM_OK;
}

/* Terms of x alone (x > 0): value and d/dp, d/dq (d/dv is q/v per customer). */
static void gg_x_terms(double x, double p, double q, double lg_q, double ps_q, double log_v,
                       double *T, double *dp, double *dq)
{
    double px = p * x;
    double ps_pxq = sm_digamma(px + q);
    *T = sm_lgamma(px + q) - sm_lgamma(px) - lg_q + q * log_v;
    *dp = x * (ps_pxq - sm_digamma(px));
    *dq = ps_pxq - ps_q + log_v;
}

static void gg_eval(gg_ctx *c, const sm_gg_params *par, double *ll_out, double grad[3])
{
    const sm_clv_summary *s = c->s;
    const double p = par->p, q = par->q, v = par->v;
    const double lg_q = sm_lgamma(q), ps_q = sm_digamma(q), log_v = log(v);
    const bool table = c->xcount != NULL;
    const double *X = s->frequency, *M = s->monetary;
    const size_t n = s->n, n_blocks = c->n_blocks;
    double *partials = c->partials;

#pragma omp parallel for schedule(static) num_threads(c->n_threads > 0 ? c->n_threads : omp_get_max_threads()) \
    default(none) shared(X, M, partials) firstprivate(n, n_blocks, p, q, v, lg_q, ps_q, log_v, table)
    for (size_t blk = 0; blk < n_blocks; blk++) {
        size_t lo = blk * SM_REDUCE_BLOCK, hi = SM_MIN(n, lo + SM_REDUCE_BLOCK);
        double ll = 0.0, g_p = 0.0, g_q = 0.0, g_v = 0.0;
        for (size_t i = lo; i < hi; i++) {
            double x = X[i], m = M[i];
            if (!(x > 0.0 && m > 0.0))
                continue;
            double px = p * x;
            double lm = log(m), lx = log(x), L = log(x * m + v);
            ll += (px - 1.0) * lm + px * lx - (px + q) * L;
            g_p += x * (lm + lx - L);
            g_q -= L;
            g_v -= (px + q) / (x * m + v);
            if (!table) {
                double T, dp, dq;
                gg_x_terms(x, p, q, lg_q, ps_q, log_v, &T, &dp, &dq);
                ll += T;
                g_p += dp;
                g_q += dq;
                g_v += q / v;
            }
        }
        double *out = partials + blk * GG_PARTS;
        out[0] = ll;
        out[1] = g_p;
        out[2] = g_q;
        out[3] = g_v;
    }
    double sum[GG_PARTS] = {0};
    for (size_t blk = 0; blk < n_blocks; blk++)
        for (int j = 0; j < GG_PARTS; j++)
            sum[j] += partials[blk * GG_PARTS + j];
    if (table) {
        for (size_t x = 1; x < c->xsize; x++) {
            if (c->xcount[x] == 0)
                continue;
            double w = (double)c->xcount[x], T, dp, dq;
            gg_x_terms((double)x, p, q, lg_q, ps_q, log_v, &T, &dp, &dq);
            sum[0] += w * T;
            sum[1] += w * dp;
            sum[2] += w * dq;
        }
        sum[3] += (double)c->n_used * q / v;
    }
    *ll_out = sum[0];
    if (grad != NULL) {
        grad[0] = sum[1];
        grad[1] = sum[2];
        grad[2] = sum[3];
    }
}

int sm_gg_loglik(double *loglik, double *grad, const sm_gg_params *p, const sm_clv_summary *s,
                 int n_threads, sm_error *err)
{
    int rc = sm_gg_params_check(p, err);
    if (rc == SM_OK)
        rc = sm_clv_summary_check(s, err);
    if (rc != SM_OK)
        return rc;
    gg_ctx c;
    rc = gg_ctx_init(&c, s, n_threads, (sm_progress){0}, err);
    if (rc != SM_OK)
        return rc;
    double g[3];
    gg_eval(&c, p, loglik, g);
    if (grad != NULL)
        memcpy(grad, g, sizeof g);
    gg_ctx_free(&c);
    return SM_OK;
}

static int gg_objective(void *ctx, const double *theta, double *f, double *grad)
{
    gg_ctx *c = ctx;
    c->evaluations++;
    if (sm_progress_report(&c->progress, "gamma-gamma", (uint64_t)c->evaluations, 0) != 0)
        return SM_ERR_CANCELLED;
    sm_gg_params p = {exp(theta[0]), exp(theta[1]), exp(theta[2])};
    if (!(p.p > 0.0 && p.q > 0.0 && p.v > 0.0 && isfinite(p.p) && isfinite(p.q) && isfinite(p.v))) {
        *f = INFINITY;
        return 0;
    }
    double ll, g[3];
    gg_eval(c, &p, &ll, g);
    double nd = (double)c->n_used;
    *f = -ll / nd;
    if (grad != NULL) {
        grad[0] = -g[0] * p.p / nd;
        grad[1] = -g[1] * p.q / nd;
        grad[2] = -g[2] * p.v / nd;
    }
    return 0;
}

/* Pearson correlation of frequency and monetary over the customers used,
 * two-pass in one thread (O(n), deterministic). */
static double spend_correlation(const sm_clv_summary *s)
{
    double sx = 0.0, sm = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (sm_clv_selected(s, i, SM_CLV_SPENDERS)) {
            sx += s->frequency[i];
            sm += s->monetary[i];
            k++;
        }
    if (k < 2)
        return NAN;
    double mx = sx / (double)k, mm = sm / (double)k;
    double cxx = 0.0, cmm = 0.0, cxm = 0.0;
    for (size_t i = 0; i < s->n; i++)
        if (sm_clv_selected(s, i, SM_CLV_SPENDERS)) {
            double dx = s->frequency[i] - mx, dm = s->monetary[i] - mm;
            cxx += dx * dx;
            cmm += dm * dm;
            cxm += dx * dm;
        }
    if (cxx == 0.0 || cmm == 0.0)
        return NAN;
    return cxm / sqrt(cxx * cmm);
}

int sm_gg_fit_model(sm_gg_fit *out, const sm_clv_summary *s, const sm_clv_fit_options *opt,
                    sm_error *err)
{
    sm_clv_fit_options defaults;
    if (opt == NULL) {
        sm_clv_fit_options_init(&defaults);
        opt = &defaults;
    }
    int rc = sm_clv_fit_options_check(opt, err);
    if (rc == SM_OK)
        rc = sm_clv_summary_check(s, err);
    if (rc != SM_OK)
        return rc;
    memset(out, 0, sizeof *out);
    gg_ctx c;
    rc = gg_ctx_init(&c, s, opt->n_threads, opt->progress, err);
    if (rc != SM_OK)
        return rc;
    double mean_m = 0.0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->frequency[i] == 0.0)
            out->n_zero_frequency++;
        else if (!(s->monetary[i] > 0.0))
            out->n_nonpositive_monetary++;
        else
            mean_m += s->monetary[i];
    }
    out->n_used = c.n_used;
    mean_m /= (double)c.n_used;
    out->corr_frequency_monetary = spend_correlation(s);

    /* Starts with the population mean v p / (q - 1) equal to the observed
     * mean spend: (p, q) = (1, 2), then (5, 5). */
    double starts[2][3] = {{1.0, 2.0, mean_m}, {5.0, 5.0, 0.8 * mean_m}};
    if (opt->has_init)
        memcpy(starts[0], opt->init, sizeof starts[0]);
    double scratch[3 * 3 + 9 * 3];
    SM_ASSERT(SM_ARRAY_LEN(scratch) >= sm_opt_bfgs_scratch_size(3));
    sm_opt_params op = {.max_iter = opt->max_iter, .max_eval = 20 * opt->max_iter + 100,
                        .gtol = opt->gtol};
    sm_opt_result res = {0};
    double theta[3];
    int total_iter = 0, total_eval = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        for (int j = 0; j < 3; j++)
            theta[j] = log(starts[attempt][j]);
        rc = sm_opt_bfgs(theta, 3, gg_objective, &c, &op, scratch, &res);
        total_iter += res.iterations;
        total_eval += res.evaluations;
        if (rc != 0 || (sm_opt_accepted(&res, opt->gtol) && sm_clv_log_params_bounded(theta, 3)))
            break;
    }
    double n_used = (double)c.n_used;
    gg_ctx_free(&c);
    if (rc != 0) {
        if (rc == SM_ERR_CANCELLED)
            return sm_error_set(err, rc, "Gamma-Gamma fit cancelled");
        return sm_error_set(err, rc, "Gamma-Gamma fit failed: %s", sm_strerror(rc));
    }
    out->params = (sm_gg_params){exp(theta[0]), exp(theta[1]), exp(theta[2])};
    out->loglik = -res.f * n_used;
    out->iterations = total_iter;
    out->evaluations = total_eval;
    out->grad_norm = res.grad_norm;
    bool bounded = sm_clv_log_params_bounded(theta, 3);
    out->converged = sm_opt_accepted(&res, opt->gtol) && bounded;
    if (out->params.q <= 1.0)
        out->warnings |= SM_CLV_WARN_GG_Q_LE_1;
    if (fabs(out->corr_frequency_monetary) > opt->corr_warn)
        out->warnings |= SM_CLV_WARN_GG_CORRELATION;
    if (out->n_used < 10)
        out->warnings |= SM_CLV_WARN_GG_FEW_CUSTOMERS;
    if (!out->converged)
        return sm_error_set(err, SM_ERR_NUMERIC,
                            "Gamma-Gamma fit did not converge (%s) after %d iterations: max "
                            "|gradient| %.3g, gtol %.3g, at p=%.6g q=%.6g v=%.6g; a parameter "
                            "running to 0 or infinity means the spend data do not identify it",
                            bounded ? "gradient above tolerance" : "a parameter left [1e-6, 1e6]",
                            total_iter, res.grad_norm, opt->gtol, out->params.p, out->params.q,
                            out->params.v);
    return SM_OK;
}

int sm_gg_expected_spend(double *out, const sm_gg_params *par, const sm_clv_summary *s,
                         int n_threads, sm_error *err)
{
    int rc = sm_gg_params_check(par, err);
    if (rc == SM_OK)
        rc = sm_clv_summary_check(s, err);
    if (rc != SM_OK)
        return rc;
    if (s->monetary == NULL)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "monetary_value",
                               "expected spend needs monetary values");
    const double p = par->p, q = par->q, v = par->v;
    const double *X = s->frequency, *M = s->monetary;
    const size_t n = s->n;
#pragma omp parallel for schedule(static) num_threads(n_threads > 0 ? n_threads : omp_get_max_threads()) \
    default(none) shared(X, M, out) firstprivate(n, p, q, v)
    for (size_t i = 0; i < n; i++) {
        /* (v p + p x mbar) / (p x + q - 1): the posterior mean of p/nu, with
         * x taken as 0 for customers without spend information. Written
         * without nested conditionals: GCC 12.2 at -O3 -march=native
         * (AVX-512 masks) miscompiled `own ? px * M[i] : 0.0` inside
         * `denom > 0 ? ... : INFINITY`, giving 0 (test
         * expected_spend_vectorised_regression). */
        double x = X[i], m = M[i];
        double w = x > 0.0 && m > 0.0 ? x : 0.0;
        double px = p * w;
        double denom = px + q - 1.0;
        double num = v * p + px * m;
        out[i] = denom > 0.0 ? num / denom : INFINITY;
    }
    return SM_OK;
}
