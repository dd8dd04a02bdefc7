/* SPDX-License-Identifier: MIT */
/*
 * BG/NBD (Fader, Hardie & Lee, "Counting your customers the easy way",
 * Marketing Science 24(2), 2005): log-likelihood (eq. 6) in log space with
 * its analytic gradient, the maximum-likelihood fit (BFGS on log-parameters),
 * predictions (eq. 9, 10 and P(alive)) and a simulator of the process.
 *
 * LL_i = C(x_i) + r ln alpha + logsumexp(A_i, B_i), where C(x) holds the
 * lgamma terms of x alone, A = -(r+x) ln(alpha+T) and, for x > 0,
 * B = ln a - ln(b+x-1) - (r+x) ln(alpha+t_x). C(x) is computed once per
 * distinct x (histogram); the per-customer loop needs two logs and one exp.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/clv_internal.h"
#include "kernels/clv_special.h"
#include "kernels/core.h"
#include "kernels/optimize.h"
#include "kernels/rng.h"

/* Per block: loglik part, d/dr, d/dalpha, sum of w_B (d/da = that / a), d/db. */
#define BG_PARTS 5

typedef struct bg_ctx {
    const sm_clv_summary *s;
    int n_threads;
    size_t n_blocks;
    double *partials;  /* n_blocks * BG_PARTS */
    uint64_t *xcount;  /* histogram of x (NULL: x too large, compute per customer) */
    size_t xsize;      /* entries of xcount, lb, ib */
    double *lb;        /* ln(b + x - 1) for x >= 1 present in the data */
    double *ib;        /* 1 / (b + x - 1) */
    sm_progress progress;
    int evaluations;
    int cancelled;
} bg_ctx;

int sm_bgnbd_params_check(const sm_bgnbd_params *p, sm_error *err)
{
    if (p == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "BG/NBD parameters are NULL");
    const double v[4] = {p->r, p->alpha, p->a, p->b};
    const char *names[4] = {"r", "alpha", "a", "b"};
    for (int j = 0; j < 4; j++)
        if (!(isfinite(v[j]) && v[j] > 0.0))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, names[j],
                                   "BG/NBD parameter %s=%g must be finite and > 0", names[j], v[j]);
    return SM_OK;
}

static void bg_ctx_free(bg_ctx *c)
{
    sm_free(c->partials);
    sm_free(c->xcount);
    sm_free(c->lb);
    sm_free(c->ib);
}

static int bg_ctx_init(bg_ctx *c, const sm_clv_summary *s, int n_threads, sm_progress progress,
                       size_t *n_repeat, sm_error *err)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    c->n_threads = n_threads;
    c->progress = progress;
    c->n_blocks = sm_block_count(s->n, SM_REDUCE_BLOCK);
    c->partials = sm_alloc_array(c->n_blocks * BG_PARTS, sizeof(double));
    if (c->partials == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu likelihood blocks",
                            c->n_blocks);
    size_t selected;
    int rc = sm_clv_count_frequencies(&c->xcount, &c->xsize, &selected, s, SM_CLV_ALL, err);
    if (rc != SM_OK) {
        bg_ctx_free(c);
        return rc;
    }
    if (c->xcount != NULL) {
        c->lb = sm_alloc_array(c->xsize, sizeof(double));
        c->ib = sm_alloc_array(c->xsize, sizeof(double));
        if (c->lb == NULL || c->ib == NULL) {
            bg_ctx_free(c);
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory for frequency tables");
        }
    }
    if (n_repeat != NULL) {
        size_t k = 0;
        for (size_t i = 0; i < s->n; i++)
            k += s->frequency[i] > 0.0;
        *n_repeat = k;
    }
    return SM_OK;
}

/* lgamma/digamma terms of x alone: C(x) and its gradient (d/dr, d/da, d/db). */
static void bg_x_terms(double x, double r, double a, double b, double lg_r, double lg_b,
                       double lg_ab, double ps_r, double ps_b, double ps_ab, double *C, double *dr,
                       double *da, double *db)
{
    double lg_rx = sm_lgamma(r + x), lg_bx = sm_lgamma(b + x), lg_abx = sm_lgamma(a + b + x);
    *C = lg_rx - lg_r + lg_ab + lg_bx - lg_b - lg_abx;
    double ps_abx = sm_digamma(a + b + x);
    *dr = sm_digamma(r + x) - ps_r;
    *da = ps_ab - ps_abx;
    *db = ps_ab + sm_digamma(b + x) - ps_b - ps_abx;
}

/* Total log-likelihood and its gradient in (r, alpha, a, b). */
static void bg_eval(bg_ctx *c, const sm_bgnbd_params *p, double *ll_out, double grad[4])
{
    const sm_clv_summary *s = c->s;
    const double r = p->r, alpha = p->alpha, a = p->a, b = p->b;
    const double log_a = log(a), log_alpha = log(alpha);
    const double lg_r = sm_lgamma(r), lg_b = sm_lgamma(b), lg_ab = sm_lgamma(a + b);
    const double ps_r = sm_digamma(r), ps_b = sm_digamma(b), ps_ab = sm_digamma(a + b);
    const bool table = c->xcount != NULL;
    if (table) {
        for (size_t x = 1; x < c->xsize; x++) {
            if (c->xcount[x] == 0)
                continue;
            double bx = b + (double)x - 1.0;
            c->lb[x] = log(bx);
            c->ib[x] = 1.0 / bx;
        }
    }
    const double *X = s->frequency, *TX = s->recency, *TT = s->T;
    const size_t n = s->n, n_blocks = c->n_blocks;
    double *partials = c->partials;

#pragma omp parallel for schedule(static) num_threads(c->n_threads > 0 ? c->n_threads : omp_get_max_threads()) \
    default(none) shared(X, TX, TT, partials, c) firstprivate(n, n_blocks, r, alpha, a, b, log_a, \
    lg_r, lg_b, lg_ab, ps_r, ps_b, ps_ab, table)
    for (size_t blk = 0; blk < n_blocks; blk++) {
        size_t lo = blk * SM_REDUCE_BLOCK, hi = SM_MIN(n, lo + SM_REDUCE_BLOCK);
        double ll = 0.0, g_r = 0.0, g_alpha = 0.0, w_b = 0.0, g_b = 0.0;
        for (size_t i = lo; i < hi; i++) {
            double x = X[i], T = TT[i];
            double rx = r + x;
            double lT = log(alpha + T), iT = 1.0 / (alpha + T);
            double A = -rx * lT;
            if (x > 0.0) {
                double tx = TX[i];
                double ltx = log(alpha + tx), itx = 1.0 / (alpha + tx);
                double lbx, ibx;
                if (table) {
                    lbx = c->lb[(size_t)x];
                    ibx = c->ib[(size_t)x];
                } else {
                    lbx = log(b + x - 1.0);
                    ibx = 1.0 / (b + x - 1.0);
                }
                double B = log_a - lbx - rx * ltx;
                /* log-sum-exp with weights wA + wB = 1 */
                double wA, wB, S;
                if (A >= B) {
                    double e = exp(B - A);
                    S = A + log1p(e);
                    wB = e / (1.0 + e);
                    wA = 1.0 - wB;
                } else {
                    double e = exp(A - B);
                    S = B + log1p(e);
                    wA = e / (1.0 + e);
                    wB = 1.0 - wA;
                }
                ll += S;
                g_r -= wA * lT + wB * ltx;
                g_alpha -= rx * (wA * iT + wB * itx);
                w_b += wB;
                g_b -= wB * ibx;
            } else {
                ll += A;
                g_r -= lT;
                g_alpha -= rx * iT;
            }
            if (!table && x > 0.0) {
                double C, dr, da, db;
                bg_x_terms(x, r, a, b, lg_r, lg_b, lg_ab, ps_r, ps_b, ps_ab, &C, &dr, &da, &db);
                ll += C;
                g_r += dr;
                /* d/da of C is added to w_b scaled by a, since w_b is divided by a */
                w_b += a * da;
                g_b += db;
            }
        }
        double *out = partials + blk * BG_PARTS;
        out[0] = ll;
        out[1] = g_r;
        out[2] = g_alpha;
        out[3] = w_b;
        out[4] = g_b;
    }
    /* Combine blocks in index order: the result is independent of threads. */
    double sum[BG_PARTS] = {0};
    for (size_t blk = 0; blk < n_blocks; blk++)
        for (int j = 0; j < BG_PARTS; j++)
            sum[j] += partials[blk * BG_PARTS + j];
    double nd = (double)n;
    double ll = sum[0] + nd * r * log_alpha;
    double g_r = sum[1] + nd * log_alpha, g_alpha = sum[2] + nd * r / alpha;
    double g_a = sum[3] / a, g_b = sum[4];
    if (table) {
        for (size_t x = 1; x < c->xsize; x++) {
            if (c->xcount[x] == 0)
                continue;
            double C, dr, da, db, w = (double)c->xcount[x];
            bg_x_terms((double)x, r, a, b, lg_r, lg_b, lg_ab, ps_r, ps_b, ps_ab, &C, &dr, &da, &db);
            ll += w * C;
            g_r += w * dr;
            g_a += w * da;
            g_b += w * db;
        }
    }
    *ll_out = ll;
    if (grad != NULL) {
        grad[0] = g_r;
        grad[1] = g_alpha;
        grad[2] = g_a;
        grad[3] = g_b;
    }
}

int sm_bgnbd_loglik(double *loglik, double *grad, const sm_bgnbd_params *p,
                    const sm_clv_summary *s, int n_threads, sm_error *err)
{
    int rc = sm_bgnbd_params_check(p, err);
    if (rc == SM_OK)
        rc = sm_clv_summary_check(s, err);
    if (rc != SM_OK)
        return rc;
    bg_ctx c;
    rc = bg_ctx_init(&c, s, n_threads, (sm_progress){0}, NULL, err);
    if (rc != SM_OK)
        return rc;
    double g[4];
    bg_eval(&c, p, loglik, g);
    if (grad != NULL)
        memcpy(grad, g, sizeof g);
    bg_ctx_free(&c);
    return SM_OK;
}

/* Objective for the optimiser: mean negative log-likelihood in log-params,
 * so that the gradient tolerance does not depend on the number of customers. */
static int bg_objective(void *ctx, const double *theta, double *f, double *grad)
{
    bg_ctx *c = ctx;
    c->evaluations++;
    if (sm_progress_report(&c->progress, "bgnbd", (uint64_t)c->evaluations, 0) != 0)
        return SM_ERR_CANCELLED;
    sm_bgnbd_params p = {exp(theta[0]), exp(theta[1]), exp(theta[2]), exp(theta[3])};
    if (!(p.r > 0.0 && p.alpha > 0.0 && p.a > 0.0 && p.b > 0.0) || !isfinite(p.r) ||
        !isfinite(p.alpha) || !isfinite(p.a) || !isfinite(p.b)) {
        *f = INFINITY;
        return 0;
    }
    double ll, g[4];
    bg_eval(c, &p, &ll, g);
    double nd = (double)c->s->n;
    *f = -ll / nd;
    if (grad != NULL) {
        grad[0] = -g[0] * p.r / nd;
        grad[1] = -g[1] * p.alpha / nd;
        grad[2] = -g[2] * p.a / nd;
        grad[3] = -g[3] * p.b / nd;
    }
    return 0;
}

int sm_bgnbd_fit_model(sm_bgnbd_fit *out, const sm_clv_summary *s, const sm_clv_fit_options *opt,
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
    out->n = s->n;

    bg_ctx c;
    rc = bg_ctx_init(&c, s, opt->n_threads, opt->progress, &out->n_repeat, err);
    if (rc != SM_OK)
        return rc;
    if (out->n_repeat == 0) {
        bg_ctx_free(&c);
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "frequency",
                               "no customer has a repeat purchase (all %zu frequencies are 0): "
                               "BG/NBD cannot identify purchase and dropout rates",
                               s->n);
    }
    double mean_x = 0.0, mean_T = 0.0;
    for (size_t i = 0; i < s->n; i++) {
        mean_x += s->frequency[i];
        mean_T += s->T[i];
    }
    mean_x /= (double)s->n;
    mean_T /= (double)s->n;

    /* Starts: a purchase rate r/alpha matching the observed repeat rate,
     * a = b = 1 (mean dropout 1/2); the second start assumes rarer, more
     * heterogeneous buying and little dropout. */
    double starts[2][4] = {{1.0, mean_T / fmax(mean_x, 0.1), 1.0, 1.0},
                           {0.2, 0.2 * mean_T / fmax(mean_x, 0.1), 0.5, 5.0}};
    if (opt->has_init)
        memcpy(starts[0], opt->init, sizeof starts[0]);

    double scratch[4 * 4 + 9 * 4];
    SM_ASSERT(SM_ARRAY_LEN(scratch) >= sm_opt_bfgs_scratch_size(4));
    sm_opt_params op = {.max_iter = opt->max_iter, .max_eval = 20 * opt->max_iter + 100,
                        .gtol = opt->gtol};
    sm_opt_result res = {0};
    double theta[4];
    int total_iter = 0, total_eval = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        for (int j = 0; j < 4; j++)
            theta[j] = log(starts[attempt][j]);
        rc = sm_opt_bfgs(theta, 4, bg_objective, &c, &op, scratch, &res);
        total_iter += res.iterations;
        total_eval += res.evaluations;
        if (rc != 0 || (sm_opt_accepted(&res, opt->gtol) && sm_clv_log_params_bounded(theta, 4)))
            break;
    }
    if (rc != 0) {
        bg_ctx_free(&c);
        if (rc == SM_ERR_CANCELLED)
            return sm_error_set(err, rc, "BG/NBD fit cancelled");
        return sm_error_set(err, rc, "BG/NBD fit failed: %s", sm_strerror(rc));
    }
    out->params = (sm_bgnbd_params){exp(theta[0]), exp(theta[1]), exp(theta[2]), exp(theta[3])};
    out->loglik = -res.f * (double)s->n;
    out->iterations = total_iter;
    out->evaluations = total_eval;
    out->grad_norm = res.grad_norm;
    bool bounded = sm_clv_log_params_bounded(theta, 4);
    out->converged = sm_opt_accepted(&res, opt->gtol) && bounded;
    bg_ctx_free(&c);
    if (!out->converged) {
        const char *why = !bounded ? "a parameter left [1e-6, 1e6]"
                          : res.reason == SM_OPT_MAX_ITER      ? "iteration limit reached"
                          : res.reason == SM_OPT_NONFINITE ? "log-likelihood not finite at the start"
                                                           : "line search could not decrease the "
                                                             "objective";
        return sm_error_set(err, SM_ERR_NUMERIC,
                            "BG/NBD fit did not converge (%s) after %d iterations: max |gradient| "
                            "%.3g, gtol %.3g, at r=%.6g alpha=%.6g a=%.6g b=%.6g; a parameter "
                            "running to 0 or infinity means the data do not identify it",
                            why, total_iter, res.grad_norm, opt->gtol, out->params.r,
                            out->params.alpha, out->params.a, out->params.b);
    }
    return SM_OK;
}

/* --- predictions ------------------------------------------------------------ */

static bool bg_valid(const sm_bgnbd_params *p)
{
    return p != NULL && isfinite(p->r) && p->r > 0.0 && isfinite(p->alpha) && p->alpha > 0.0 &&
           isfinite(p->a) && p->a > 0.0 && isfinite(p->b) && p->b > 0.0;
}

static bool customer_valid(double x, double tx, double T)
{
    return isfinite(x) && x >= 0.0 && x == floor(x) && isfinite(T) && T > 0.0 && tx >= 0.0 &&
           tx <= T && (x > 0.0 || tx == 0.0);
}

double sm_bgnbd_expected_transactions(const sm_bgnbd_params *p, double t)
{
    if (!bg_valid(p) || !(t >= 0.0) || !isfinite(t))
        return NAN;
    /* A new customer is the x = 0, T = 0 case of the alive expectation. */
    return sm_bgnbd_alive_expectation(p->r, p->alpha, p->a, p->b, 0.0, 0.0, t);
}

/* ln of the odds "dropped out after the last purchase" : "alive"
 * = ln a - ln(b+x-1) + (r+x) ln((alpha+T)/(alpha+t_x)), x > 0. */
static double dead_log_odds(const sm_bgnbd_params *p, double x, double tx, double T)
{
    return log(p->a) - log(p->b + x - 1.0) + (p->r + x) * log1p((T - tx) / (p->alpha + tx));
}

double sm_bgnbd_p_alive(const sm_bgnbd_params *p, double x, double tx, double T)
{
    if (!bg_valid(p) || !customer_valid(x, tx, T))
        return NAN;
    if (x == 0.0)
        return 1.0;
    double lo = dead_log_odds(p, x, tx, T);
    /* 1 / (1 + e^lo) without overflow */
    return lo > 0.0 ? exp(-lo) / (1.0 + exp(-lo)) : 1.0 / (1.0 + exp(lo));
}

double sm_bgnbd_conditional_expected(const sm_bgnbd_params *p, double t, double x, double tx,
                                     double T)
{
    if (!bg_valid(p) || !customer_valid(x, tx, T) || !(t >= 0.0) || !isfinite(t))
        return NAN;
    double alive = sm_bgnbd_p_alive(p, x, tx, T);
    if (alive == 0.0)
        return 0.0;
    return alive * sm_bgnbd_alive_expectation(p->r, p->alpha, p->a, p->b, x, T, t);
}

int sm_bgnbd_predict(double *p_alive, double *expected, const sm_bgnbd_params *p,
                     const sm_clv_summary *s, double t, int n_threads, sm_error *err)
{
    int rc = sm_bgnbd_params_check(p, err);
    if (rc == SM_OK)
        rc = sm_clv_summary_check(s, err);
    if (rc != SM_OK)
        return rc;
    if (!(t >= 0.0) || !isfinite(t))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "t",
                               "prediction horizon t=%g must be finite and >= 0", t);
    const size_t n = s->n;
    const double *X = s->frequency, *TX = s->recency, *TT = s->T;
    size_t bad = SIZE_MAX;
#pragma omp parallel for schedule(dynamic, 1024) num_threads(n_threads > 0 ? n_threads : omp_get_max_threads()) \
    default(none) shared(X, TX, TT, p_alive, expected, p) firstprivate(n, t) reduction(min : bad)
    for (size_t i = 0; i < n; i++) {
        double alive = sm_bgnbd_p_alive(p, X[i], TX[i], TT[i]);
        if (p_alive != NULL)
            p_alive[i] = alive;
        if (expected != NULL) {
            double e = alive == 0.0 ? 0.0
                                    : alive * sm_bgnbd_alive_expectation(p->r, p->alpha, p->a,
                                                                         p->b, X[i], TT[i], t);
            expected[i] = e;
            if (!isfinite(e) && i < bad)
                bad = i;
        }
        if (!isfinite(alive) && i < bad)
            bad = i;
    }
    if (bad != SIZE_MAX)
        return sm_error_set_at(err, SM_ERR_NUMERIC, NULL, (uint64_t)bad + 1, 0, "expected",
                               "BG/NBD prediction is not finite for customer %zu (x=%g t_x=%g "
                               "T=%g, horizon %g)",
                               bad + 1, X[bad], TX[bad], TT[bad], t);
    return SM_OK;
}

int sm_bgnbd_holdout(sm_holdout_row *rows, size_t n_rows, sm_holdout_totals *totals,
                     const sm_bgnbd_params *p, const sm_clv_summary *s,
                     const double *holdout_frequency, double holdout_length, int n_threads,
                     sm_error *err)
{
    if (rows == NULL || n_rows < 2 || n_rows > UINT32_MAX)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_rows",
                               "the holdout table needs at least 2 rows (got %zu)", n_rows);
    if (!(holdout_length > 0.0) || !isfinite(holdout_length))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "holdout_length",
                               "holdout_length=%g must be finite and > 0", holdout_length);
    if (holdout_frequency == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "holdout frequencies are required");
    int rc = sm_clv_summary_check(s, err);
    if (rc != SM_OK)
        return rc;
    for (size_t i = 0; i < s->n; i++)
        if (!(holdout_frequency[i] >= 0.0) || !isfinite(holdout_frequency[i]))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0,
                                   "holdout_frequency",
                                   "holdout frequency %g must be finite and >= 0",
                                   holdout_frequency[i]);
    double *pred = sm_alloc_array(s->n, sizeof *pred);
    if (pred == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu predictions", s->n);
    rc = sm_bgnbd_predict(NULL, pred, p, s, holdout_length, n_threads, err);
    if (rc != SM_OK) {
        sm_free(pred);
        return rc;
    }
    for (size_t k = 0; k < n_rows; k++)
        rows[k] = (sm_holdout_row){(uint32_t)k, 0, 0.0, 0.0};
    sm_holdout_totals tot = {0};
    /* One pass in index order: sums do not depend on the thread count. */
    for (size_t i = 0; i < s->n; i++) {
        double x = s->frequency[i];
        size_t k = x >= (double)(n_rows - 1) ? n_rows - 1 : (size_t)x;
        rows[k].customers++;
        rows[k].actual_mean += holdout_frequency[i];
        rows[k].predicted_mean += pred[i];
        tot.actual += holdout_frequency[i];
        tot.predicted += pred[i];
        tot.mae += fabs(pred[i] - holdout_frequency[i]);
    }
    size_t used_rows = 0;
    for (size_t k = 0; k < n_rows; k++) {
        if (rows[k].customers == 0)
            continue;
        rows[k].actual_mean /= (double)rows[k].customers;
        rows[k].predicted_mean /= (double)rows[k].customers;
        tot.bucket_mae += fabs(rows[k].predicted_mean - rows[k].actual_mean);
        used_rows++;
    }
    tot.bucket_mae /= (double)used_rows;
    tot.mae /= (double)s->n;
    tot.relative_error = tot.actual > 0.0 ? (tot.predicted - tot.actual) / tot.actual : NAN;
    if (totals != NULL)
        *totals = tot;
    sm_free(pred);
    return SM_OK;
}

/* --- simulation -------------------------------------------------------------- */

/* ln of a Gamma(shape, 1) variate (Marsaglia & Tsang, ACM TOMS 26(3), 2000;
 * shape < 1 by the boost Gamma(k) = Gamma(k+1) U^(1/k), kept in log space so
 * that tiny shapes do not underflow). */
static double log_gamma_variate(sm_rng *rng, double shape)
{
    double boost = 0.0;
    if (shape < 1.0) {
        double u = sm_rng_uniform(rng);
        boost = log1p(-u) / shape; /* 1-u in (0,1]: never log(0) */
        shape += 1.0;
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double z = sm_rng_normal(rng);
        double v = 1.0 + c * z;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = 1.0 - sm_rng_uniform(rng); /* (0, 1] */
        if (u < 1.0 - 0.0331 * z * z * z * z || log(u) < 0.5 * z * z + d * (1.0 - v + log(v)))
            return log(d * v) + boost;
    }
}

int sm_clv_simulate(double *frequency, double *recency, double *monetary,
                    const sm_bgnbd_params *bg, const sm_gg_params *gg, const double *T, size_t n,
                    uint64_t seed, int n_threads, sm_error *err)
{
    int rc = sm_bgnbd_params_check(bg, err);
    if (rc != SM_OK)
        return rc;
    if (monetary != NULL) {
        rc = sm_gg_params_check(gg, err);
        if (rc != SM_OK)
            return rc;
    }
    if (frequency == NULL || recency == NULL || T == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "frequency, recency and T must not be NULL");
    for (size_t i = 0; i < n; i++)
        if (!(isfinite(T[i]) && T[i] > 0.0))
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, (uint64_t)i + 1, 0, "T",
                                   "T=%g must be finite and > 0", T[i]);
    const sm_bgnbd_params P = *bg;
    const sm_gg_params G = gg != NULL ? *gg : (sm_gg_params){1.0, 2.0, 1.0};
#pragma omp parallel for schedule(dynamic, 256) num_threads(n_threads > 0 ? n_threads : omp_get_max_threads()) \
    default(none) shared(frequency, recency, monetary, T) firstprivate(n, seed, P, G)
    for (size_t i = 0; i < n; i++) {
        sm_rng rng;
        sm_rng_init(&rng, seed, (uint64_t)i);
        double lambda = exp(log_gamma_variate(&rng, P.r)) / P.alpha;
        double lga = log_gamma_variate(&rng, P.a), lgb = log_gamma_variate(&rng, P.b);
        double p = 1.0 / (1.0 + exp(lgb - lga)); /* Beta(a, b) = Ga / (Ga + Gb) */
        double nu = monetary != NULL ? exp(log_gamma_variate(&rng, G.q)) / G.v : 0.0;
        double t = 0.0, x = 0.0, tx = 0.0, spend = 0.0;
        for (;;) {
            if (!(lambda > 0.0))
                break;
            t += -log1p(-sm_rng_uniform(&rng)) / lambda;
            if (!(t <= T[i]))
                break;
            x += 1.0;
            tx = t;
            if (monetary != NULL)
                spend += exp(log_gamma_variate(&rng, G.p)) / nu;
            if (sm_rng_uniform(&rng) < p)
                break; /* dropped out after this purchase */
        }
        frequency[i] = x;
        recency[i] = tx;
        if (monetary != NULL)
            monetary[i] = x > 0.0 ? spend / x : 0.0;
    }
    return SM_OK;
}
