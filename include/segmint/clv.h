/* SPDX-License-Identifier: MIT */
/**
 * @file clv.h
 * @brief Customer lifetime value: historic and discounted CLV, the BG/NBD
 *        purchase model and the Gamma-Gamma spend model.
 *
 * Models:
 * - BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy
 *   way: an alternative to the Pareto/NBD model", Marketing Science 24(2).
 * - Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value
 *   curves for customer base analysis", JMR 42(4); Hardie's note 025.
 * - The model-based CLV follows the convention the Python `lifetimes`
 *   library documents: a discounted sum over future months of expected
 *   transactions x expected spend (x margin here).
 *
 * Input is the per-customer summary of a calibration period, in one time
 * unit of the caller's choosing (day, week, ...):
 * frequency x = number of repeat purchases, recency t_x = time of the last
 * purchase measured from the first, T = age (time from the first purchase to
 * the end of calibration), monetary = mean value of the repeat purchases.
 *
 * Results never depend on the number of threads: likelihood sums are reduced
 * per fixed block of SM_REDUCE_BLOCK customers and combined in block order.
 * No function here keeps a pointer to its inputs after it returns; all are
 * reentrant (distinct calls may run concurrently on distinct outputs).
 */
#ifndef SEGMINT_CLV_H
#define SEGMINT_CLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/common.h"
#include "segmint/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/* Per-customer summary                                                      */
/* ======================================================================== */

/** The calibration summary of n customers (arrays of n, borrowed). */
typedef struct sm_clv_summary {
    size_t n;                /**< customers, >= 1 */
    const double *frequency; /**< x: repeat purchases, integer-valued, 0 <= x < 2^53 */
    const double *recency;   /**< t_x: last purchase time since the first, 0 <= t_x <= T; 0 when x = 0 */
    const double *T;         /**< age at the end of calibration, > 0 */
    const double *monetary;  /**< mean value of the repeat purchases; NULL = unknown */
} sm_clv_summary;

/**
 * Validates a summary (reliability row B10).
 *
 * Rejects: n = 0; NULL arrays; NaN or infinite values; frequency < 0 or not
 * an integer; recency < 0 or recency > T; T <= 0; recency != 0 when
 * frequency = 0; NaN/inf monetary values. Monetary values <= 0 are accepted
 * (returns, refunds) and later left out of the Gamma-Gamma fit, counted.
 *
 * @param[in]  s    the summary
 * @param[out] err  on failure: field names the column ("frequency",
 *                  "recency", "T", "monetary_value"), line is the 1-based
 *                  customer index, msg states the rule. May be NULL.
 * @return SM_OK or SM_ERR_INVALID_ARG.
 */
SM_API int sm_clv_summary_check(const sm_clv_summary *s, sm_error *err);

/* ======================================================================== */
/* Fitting options shared by BG/NBD and Gamma-Gamma                          */
/* ======================================================================== */

/** Warnings a fit reports in its result (never printed by the library). */
enum sm_clv_warning {
    SM_CLV_WARN_GG_Q_LE_1 = 1u << 0,       /**< GG: q <= 1, the mean spend v p/(q-1) does not exist */
    SM_CLV_WARN_GG_CORRELATION = 1u << 1,  /**< GG: |corr(frequency, monetary)| above the threshold */
    SM_CLV_WARN_GG_FEW_CUSTOMERS = 1u << 2 /**< GG: fewer than 10 repeat customers with spend > 0 */
};

/** Options of sm_bgnbd_fit_model and sm_gg_fit_model. */
typedef struct sm_clv_fit_options {
    int n_threads;       /**< 0 = OpenMP default; results do not depend on it */
    int max_iter;        /**< quasi-Newton iterations, >= 1 (default 200) */
    double gtol;         /**< converged when max |d mean-LL / d log-param| <= gtol (default 1e-9),
                              or when the line search stalls with it <= 1e3 gtol; either way only
                              with every parameter in [1e-6, 1e6] */
    bool has_init;       /**< start from init[] instead of the data-driven start */
    double init[4];      /**< BG/NBD: r, alpha, a, b; GG: p, q, v (all > 0) */
    double corr_warn;    /**< GG: warn when |corr(frequency, monetary)| > corr_warn (default 0.3) */
    sm_progress progress; /**< stage "bgnbd" or "gamma-gamma", one call per iteration; may cancel */
} sm_clv_fit_options;

/** Fills documented defaults. */
SM_API void sm_clv_fit_options_init(sm_clv_fit_options *opt);

/**
 * Checks options: max_iter >= 1, 0 < gtol < 1, corr_warn in (0, 1], n_threads
 * >= 0, init values finite and > 0 when has_init.
 * @return SM_OK or SM_ERR_INVALID_ARG (err->field names the option).
 */
SM_API int sm_clv_fit_options_check(const sm_clv_fit_options *opt, sm_error *err);

/* ======================================================================== */
/* BG/NBD                                                                    */
/* ======================================================================== */

/** BG/NBD parameters: purchase rate lambda ~ Gamma(r, alpha) (alpha a rate,
 *  in 1/time unit), dropout probability p ~ Beta(a, b). All > 0. */
typedef struct sm_bgnbd_params {
    double r;
    double alpha;
    double a;
    double b;
} sm_bgnbd_params;

/** Result of a BG/NBD maximum-likelihood fit. */
typedef struct sm_bgnbd_fit {
    sm_bgnbd_params params; /**< the estimate (the last iterate if not converged) */
    double loglik;          /**< total log-likelihood at params */
    int iterations;         /**< quasi-Newton iterations */
    int evaluations;        /**< likelihood + gradient evaluations */
    bool converged;         /**< the acceptance rule of sm_clv_fit_options.gtol met */
    double grad_norm;       /**< max |d mean-LL / d log-param| at params */
    size_t n;               /**< customers fitted */
    size_t n_repeat;        /**< customers with frequency > 0 */
    unsigned warnings;      /**< sm_clv_warning bits (none defined for BG/NBD yet) */
} sm_bgnbd_fit;

/**
 * BG/NBD log-likelihood (FHL 2005 eq. 6, in log space) and its gradient.
 *
 * @param[out] loglik  total log-likelihood sum_i LL_i
 * @param[out] grad    4 entries d loglik / d(r, alpha, a, b); may be NULL
 * @param[in]  p       parameters, all > 0 and finite
 * @param[in]  s       validated summary
 * @param[in]  n_threads 0 = OpenMP default
 * @return SM_OK, SM_ERR_INVALID_ARG (bad parameter or summary), SM_ERR_NOMEM.
 */
SM_API int sm_bgnbd_loglik(double *loglik, double *grad, const sm_bgnbd_params *p,
                           const sm_clv_summary *s, int n_threads, sm_error *err);

/**
 * Fits BG/NBD by maximum likelihood: BFGS with a strong-Wolfe line search
 * on the log-parameters, analytic gradient, mean log-likelihood scale.
 *
 * Starts from r = 1, alpha = mean(T)/max(mean(x), 0.1), a = 1, b = 1 (or
 * opt->init) and, if that does not converge, once more from a second start.
 *
 * @param[out] out  filled on SM_OK and on SM_ERR_NUMERIC (then converged =
 *                  false and params is the last iterate)
 * @return SM_OK; SM_ERR_INVALID_ARG (bad summary/options, or no customer with
 *         frequency > 0: the dropout process is not identified);
 *         SM_ERR_NUMERIC (did not converge: the message gives the gradient
 *         and the parameters; typically a parameter drifting to 0 or
 *         infinity because the data do not identify it); SM_ERR_NOMEM;
 *         SM_ERR_CANCELLED.
 */
SM_API int sm_bgnbd_fit_model(sm_bgnbd_fit *out, const sm_clv_summary *s,
                              const sm_clv_fit_options *opt, sm_error *err);

/** Checks that r, alpha, a, b are finite and > 0. */
SM_API int sm_bgnbd_params_check(const sm_bgnbd_params *p, sm_error *err);

/**
 * E[X(t)]: expected purchases in (0, t] of a customer who made a first
 * purchase at time 0 (FHL eq. 9), computed as sm_bgnbd_conditional_expected
 * computes E[Y(t) | alive] (x = 0, T = 0): relative error below ~1e-12 for
 * all valid parameters, a <= 1 included. Returns NaN if p is invalid or
 * t < 0.
 */
SM_API double sm_bgnbd_expected_transactions(const sm_bgnbd_params *p, double t);

/**
 * P(alive | x, t_x, T) (FHL 2008 note, eq. 2), computed in log space: 1 when
 * x = 0; tends to 1 for large x with t_x = T and to 0 for large x with
 * t_x << T. NaN for invalid arguments.
 */
SM_API double sm_bgnbd_p_alive(const sm_bgnbd_params *p, double x, double t_x, double T);

/**
 * E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] (FHL eq. 10), as
 * P(alive) times E[Y(t) | alive] = E_p[(1 - (1 + p t/(alpha+T))^-(r+x)) / p]
 * over the posterior p ~ Beta(a, b+x). That mean is summed as eq. 10's
 * hypergeometric series after Euler's transform (exact at a = 1, stable
 * for large x) when the series' own rounding-error bound is below 1e-12,
 * and otherwise (large a or b, a < 1 with a large b, r >> a + b, t >>
 * alpha + T) integrated by adaptive Gauss-Kronrod quadrature. Relative
 * error below ~1e-12 for all r, alpha, a, b > 0 and valid x, t_x, T, t
 * (P(alive) adds a few ulps times the size of its log-odds); NaN for
 * invalid arguments.
 */
SM_API double sm_bgnbd_conditional_expected(const sm_bgnbd_params *p, double t, double x,
                                            double t_x, double T);

/**
 * Per-customer predictions over a horizon t (time units of the summary).
 *
 * @param[out] p_alive   n entries, or NULL
 * @param[out] expected  n entries E[Y(t) | x_i, t_x_i, T_i], or NULL
 * @return SM_OK, SM_ERR_INVALID_ARG, SM_ERR_NUMERIC (a value could not be
 *         computed; err->line names the customer).
 */
SM_API int sm_bgnbd_predict(double *p_alive, double *expected, const sm_bgnbd_params *p,
                            const sm_clv_summary *s, double t, int n_threads, sm_error *err);

/* ======================================================================== */
/* Gamma-Gamma spend model                                                   */
/* ======================================================================== */

/** Gamma-Gamma parameters: each transaction value ~ Gamma(p, nu), nu ~
 *  Gamma(q, v). All > 0; the mean spend v p / (q - 1) exists for q > 1. */
typedef struct sm_gg_params {
    double p;
    double q;
    double v;
} sm_gg_params;

/** Result of a Gamma-Gamma fit. */
typedef struct sm_gg_fit {
    sm_gg_params params;          /**< the estimate (last iterate if not converged) */
    double loglik;                /**< total log-likelihood over the customers used */
    int iterations;
    int evaluations;
    bool converged;
    double grad_norm;             /**< max |d mean-LL / d log-param| */
    size_t n_used;                /**< customers with frequency > 0 and monetary > 0 */
    size_t n_zero_frequency;      /**< left out: frequency = 0 */
    size_t n_nonpositive_monetary; /**< left out: frequency > 0 but monetary <= 0 */
    double corr_frequency_monetary; /**< Pearson correlation over the customers used (NaN if < 2) */
    unsigned warnings;            /**< sm_clv_warning bits */
} sm_gg_fit;

/**
 * Gamma-Gamma log-likelihood of the mean repeat spend (Hardie's note 025,
 * eq. 1a) over the customers with frequency > 0 and monetary > 0, and its
 * gradient d/d(p, q, v) (grad may be NULL).
 * @return SM_OK, SM_ERR_INVALID_ARG (bad parameters, monetary NULL, or no
 *         usable customer), SM_ERR_NOMEM.
 */
SM_API int sm_gg_loglik(double *loglik, double *grad, const sm_gg_params *p,
                        const sm_clv_summary *s, int n_threads, sm_error *err);

/**
 * Fits Gamma-Gamma by maximum likelihood (same optimiser as BG/NBD) on the
 * customers with frequency > 0 and monetary > 0; the others are counted in
 * the result, not used. Warnings (q <= 1, high correlation, few customers)
 * are set in out->warnings; the library prints nothing.
 * @return as sm_bgnbd_fit_model; SM_ERR_INVALID_ARG also when monetary is
 *         NULL or no customer is usable.
 */
SM_API int sm_gg_fit_model(sm_gg_fit *out, const sm_clv_summary *s, const sm_clv_fit_options *opt,
                           sm_error *err);

/** Checks that p, q, v are finite and > 0. */
SM_API int sm_gg_params_check(const sm_gg_params *p, sm_error *err);

/**
 * Expected mean transaction value E[Z | x, mbar] = (v p + p x mbar) /
 * (p x + q - 1) (note 025 eq. 5): a weighted average of the customer's own
 * mean and the population mean v p / (q - 1). Customers with x = 0 or
 * monetary <= 0 get the population mean; where p x + q - 1 <= 0 (q <= 1)
 * the mean does not exist and the value is +inf.
 * @param[out] out  n entries
 * @return SM_OK or SM_ERR_INVALID_ARG.
 */
SM_API int sm_gg_expected_spend(double *out, const sm_gg_params *p, const sm_clv_summary *s,
                                int n_threads, sm_error *err);

/** One row of the calibration/holdout validation table (FHL 2005, fig. 5):
 *  customers grouped by calibration frequency. */
typedef struct sm_holdout_row {
    uint32_t frequency;     /**< calibration repeat purchases x (the last row: x or more) */
    size_t customers;       /**< customers in the row */
    double actual_mean;     /**< mean repeat purchases observed in the holdout */
    double predicted_mean;  /**< mean E[Y(holdout_length) | x, t_x, T] */
} sm_holdout_row;

/** Totals of the validation table. */
typedef struct sm_holdout_totals {
    double actual;          /**< repeat purchases in the holdout, all customers */
    double predicted;       /**< their predicted count */
    double relative_error;  /**< (predicted - actual) / actual (NaN if actual = 0) */
    double mae;             /**< mean |predicted_i - actual_i| over customers */
    double bucket_mae;      /**< mean over rows of |predicted_mean - actual_mean| */
} sm_holdout_totals;

/**
 * Predicted vs actual holdout purchases per calibration-frequency bucket:
 * rows[k] holds customers with x = k for k < n_rows-1, and x >= n_rows-1 in
 * the last row (FHL use 8 rows: 0..6 and 7+).
 * @param[out] rows      n_rows entries (n_rows >= 2)
 * @param[out] totals    may be NULL
 * @param[in]  holdout_frequency n actual holdout repeat purchases (>= 0)
 * @param[in]  holdout_length    holdout duration in the summary's time unit (> 0)
 * @return SM_OK, SM_ERR_INVALID_ARG, SM_ERR_NUMERIC, SM_ERR_NOMEM.
 */
SM_API int sm_bgnbd_holdout(sm_holdout_row *rows, size_t n_rows, sm_holdout_totals *totals,
                            const sm_bgnbd_params *p, const sm_clv_summary *s,
                            const double *holdout_frequency, double holdout_length, int n_threads,
                            sm_error *err);

/**
 * Simulates n customers from BG/NBD (and, when gg and monetary are given,
 * from Gamma-Gamma spend), for testing and benchmarking.
 *
 * Customer i gets its own Philox stream (seed, i), so the output does not
 * depend on the thread count. The first purchase is at time 0; after each
 * repeat purchase the customer drops out with probability p (FHL's process).
 *
 * @param[out] frequency, recency  n entries each
 * @param[out] monetary  n entries (mean spend of repeat purchases, 0 when
 *                       x = 0) or NULL
 * @param[in]  T         n ages, > 0
 * @param[in]  gg        spend parameters, or NULL when monetary is NULL
 * @return SM_OK or SM_ERR_INVALID_ARG.
 */
SM_API int sm_clv_simulate(double *frequency, double *recency, double *monetary,
                           const sm_bgnbd_params *bg, const sm_gg_params *gg,
                           const double *T, size_t n, uint64_t seed, int n_threads,
                           sm_error *err);

/* ======================================================================== */
/* CLV                                                                       */
/* ======================================================================== */

/**
 * Historic CLV: margin earned to date minus costs, per customer:
 * clv_i = (cost ? revenue_i - cost_i : margin * revenue_i)
 *         - acquisition_i - retention_i   (absent arrays count as 0).
 * @param[out] clv  n entries
 * @param[in]  revenue n entries; cost, acquisition, retention n entries or NULL
 * @param[in]  margin  profit fraction of revenue, used when cost is NULL
 * @return SM_OK or SM_ERR_INVALID_ARG (NaN/inf input; err->line = customer).
 */
SM_API int sm_clv_historic(double *clv, const double *revenue, const double *cost,
                           const double *acquisition, const double *retention, double margin,
                           size_t n, sm_error *err);

/** Parameters of the classic discounted CLV. */
typedef struct sm_clv_discount_params {
    uint32_t periods;        /**< horizon T in periods, >= 1 */
    double retention;        /**< r in [0, 1]: probability of being retained each period */
    double discount;         /**< d > -1: discount rate per period */
    double acquisition_cost; /**< AC, subtracted once (>= 0) */
} sm_clv_discount_params;

/**
 * Discounted CLV, the classic definition:
 *   CLV = sum_{t=1..T} m_t r^t / (1 + d)^t - AC.
 * Period convention: the margin of period t is received at the end of period
 * t, so the first margin is already discounted once and already needs one
 * retention (r^1); "now" is the end of period 0, when AC is paid.
 * @param[in] margin  m_1..m_T (T = p->periods entries)
 * @return the CLV, or NaN if an argument is invalid.
 */
SM_API double sm_clv_discounted_schedule(const double *margin, const sm_clv_discount_params *p);

/**
 * Discounted CLV per customer with a constant margin per period:
 * clv_i = m_i * sum_{t=1..T} (r_i / (1 + d))^t - AC.
 * @param[out] clv       n entries
 * @param[in]  margin    n per-period margins m_i
 * @param[in]  retention n per-customer retention rates, or NULL to use p->retention
 * @return SM_OK or SM_ERR_INVALID_ARG.
 */
SM_API int sm_clv_discounted(double *clv, const double *margin, const double *retention, size_t n,
                             const sm_clv_discount_params *p, int n_threads, sm_error *err);

/** Options of the model-based (lifetimes-style) CLV. */
typedef struct sm_clv_model_options {
    uint32_t months;          /**< horizon in months, >= 1 (lifetimes' `time`, default 12) */
    double discount;          /**< monthly discount rate, > -1 (default 0.01) */
    double margin;            /**< profit fraction of spend (default 1) */
    double units_per_month;   /**< summary time units per month: day 30, week 4.345, month 1 */
} sm_clv_model_options;

/** Fills the defaults above with units_per_month = 4.345 (weeks). */
SM_API void sm_clv_model_options_init(sm_clv_model_options *opt);

/**
 * Model-based CLV (the convention of lifetimes' customer_lifetime_value):
 *   clv_i = margin * sum_{k=1..months} spend_i * (E[Y(k u)] - E[Y((k-1) u)])
 *           / (1 + discount)^k,
 * with u = units_per_month, E[Y(t)] = sm_bgnbd_conditional_expected for the
 * customer, and spend_i the Gamma-Gamma expected mean spend
 * (sm_gg_expected_spend).
 * @param[out] clv  n entries
 * @return SM_OK, SM_ERR_INVALID_ARG, SM_ERR_NUMERIC (err->line = customer).
 */
SM_API int sm_clv_bgnbd_gg(double *clv, const sm_bgnbd_params *bg, const sm_gg_params *gg,
                           const sm_clv_summary *s, const sm_clv_model_options *opt, int n_threads,
                           sm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SEGMINT_CLV_H */
