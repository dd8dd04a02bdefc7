/* SPDX-License-Identifier: MIT */
/*
 * Unconstrained quasi-Newton minimisation for small smooth problems (a few
 * to a few dozen variables) with an analytic gradient: BFGS on the inverse
 * Hessian with a strong-Wolfe line search (Nocedal & Wright, "Numerical
 * Optimization", 2nd ed., algorithms 6.1, 3.5 and 3.6). Constrained
 * parameters are handled by the caller (e.g. optimise log-parameters).
 * No allocation: the caller passes scratch of sm_opt_bfgs_scratch_size(d).
 * Internal to segmint; reusable by any kernel.
 */
#ifndef SEGMINT_KERNELS_OPTIMIZE_H
#define SEGMINT_KERNELS_OPTIMIZE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Objective: writes f(x) and, when grad is not NULL, its gradient (d
 * entries). A point outside the domain may set *f to +inf or NaN; the line
 * search then backs off. Returns 0, or a negative sm_status that stops the
 * minimisation and is returned unchanged (out of memory, cancelled).
 */
typedef int (*sm_opt_fn)(void *ctx, const double *x, double *f, double *grad);

typedef struct sm_opt_params {
    int max_iter;  /* iterations, >= 1 */
    int max_eval;  /* objective evaluations, >= 1 */
    double gtol;   /* stop when max_i |grad_i| <= gtol */
} sm_opt_params;

enum sm_opt_reason {
    SM_OPT_CONVERGED = 0,     /* max |grad| <= gtol */
    SM_OPT_MAX_ITER = 1,      /* iteration or evaluation budget spent */
    SM_OPT_LINE_SEARCH = 2,   /* no step along the search direction decreased f */
    SM_OPT_NONFINITE = 3      /* f or grad not finite at the start point */
};

typedef struct sm_opt_result {
    double f;          /* f at the returned x */
    double grad_norm;  /* max |grad| at the returned x */
    int iterations;
    int evaluations;
    int reason;        /* enum sm_opt_reason */
} sm_opt_result;

/* Scratch doubles needed for d variables: d*d + 9*d. */
size_t sm_opt_bfgs_scratch_size(size_t d);

/*
 * Minimises fn from x (d entries; overwritten with the best point found).
 * Returns 0 when the run ended normally (see res->reason: not converging is
 * not an error here; the caller decides), or the negative status fn
 * returned. Deterministic: the same fn gives the same path.
 */
int sm_opt_bfgs(double *x, size_t d, sm_opt_fn fn, void *ctx, const sm_opt_params *params,
                double *scratch, sm_opt_result *res);

#endif /* SEGMINT_KERNELS_OPTIMIZE_H */
