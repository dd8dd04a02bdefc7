/* SPDX-License-Identifier: MIT */
/*
 * BFGS with a strong-Wolfe line search (Nocedal & Wright 2006, alg. 6.1,
 * 3.5, 3.6; initial inverse Hessian scaled by eq. 6.20). Dense inverse
 * Hessian: meant for the handful of parameters of likelihood models, not
 * for large problems (no L-BFGS memory here).
 */
#include "kernels/optimize.h"

#include <math.h>
#include <string.h>

#include "kernels/core.h"

/* Armijo and curvature constants of the strong Wolfe conditions; 0.9 is the
 * usual choice for quasi-Newton directions (N&W p. 142). */
#define C1 1e-4
#define C2 0.9
#define MAX_BRACKET 40
#define MAX_ZOOM 40

size_t sm_opt_bfgs_scratch_size(size_t d)
{
    return d * d + 9 * d;
}

static double max_abs(const double *v, size_t d)
{
    double m = 0.0;
    for (size_t i = 0; i < d; i++) {
        double a = fabs(v[i]);
        if (!(a <= m)) /* also propagates NaN */
            m = a;
    }
    return m;
}

static double dot(const double *a, const double *b, size_t d)
{
    double s = 0.0;
    for (size_t i = 0; i < d; i++)
        s += a[i] * b[i];
    return s;
}

/* State shared by the line search and its zoom phase. */
typedef struct line {
    sm_opt_fn fn;
    void *ctx;
    size_t d;
    const double *x0; /* start of the line */
    const double *dir;
    double f0, d0;    /* phi(0), phi'(0) < 0 */
    double *xt, *gt;  /* trial point and its gradient */
    double *xlo, *glo; /* best acceptable-so-far point (for zoom) */
    int *evaluations;
    int max_eval;
} line;

/* Evaluates phi(alpha) = f(x0 + alpha dir) into xt/gt. Non-finite values
 * are reported as +inf so that comparisons treat them as "too far". */
static int line_eval(line *ln, double alpha, double *phi, double *dphi)
{
    for (size_t i = 0; i < ln->d; i++)
        ln->xt[i] = ln->x0[i] + alpha * ln->dir[i];
    double f = NAN;
    (*ln->evaluations)++;
    int rc = ln->fn(ln->ctx, ln->xt, &f, ln->gt);
    if (rc != 0)
        return rc;
    double g = dot(ln->gt, ln->dir, ln->d);
    if (!isfinite(f) || !isfinite(g)) {
        *phi = INFINITY;
        *dphi = NAN;
    } else {
        *phi = f;
        *dphi = g;
    }
    return 0;
}

/* Minimiser of the cubic through (a, fa, da) and (b, fb, db), or NaN when it
 * does not exist (N&W eq. 3.59). */
static double cubic_min(double a, double fa, double da, double b, double fb, double db)
{
    double d1 = da + db - 3.0 * (fa - fb) / (a - b);
    double disc = d1 * d1 - da * db;
    if (!(disc >= 0.0))
        return NAN;
    double d2 = copysign(sqrt(disc), b - a);
    double denom = db - da + 2.0 * d2;
    if (denom == 0.0)
        return NAN;
    return b - (b - a) * (db + d2 - d1) / denom;
}

/* Zoom phase (alg. 3.6) between lo (satisfies Armijo, lowest phi so far) and
 * hi. On success xt/gt hold the accepted point. Returns 1 accepted, 0 not
 * found, <0 error. */
static int zoom(line *ln, double lo, double flo, double dlo, double hi, double fhi, double dhi,
                double *alpha_out, double *f_out)
{
    bool have_lo = lo > 0.0;
    for (int j = 0; j < MAX_ZOOM && *ln->evaluations < ln->max_eval; j++) {
        double width = hi - lo;
        double trial = NAN;
        if (isfinite(fhi) && isfinite(dhi))
            trial = cubic_min(lo, flo, dlo, hi, fhi, dhi);
        /* Safeguard: stay well inside the bracket; bisect when the cubic is
         * unusable (e.g. hi lies outside the domain). */
        double lo_edge = lo + 0.1 * width, hi_edge = hi - 0.1 * width;
        if (lo_edge > hi_edge) {
            double t = lo_edge;
            lo_edge = hi_edge;
            hi_edge = t;
        }
        if (!isfinite(trial) || trial < lo_edge || trial > hi_edge)
            trial = isfinite(fhi) ? lo + 0.5 * width : lo + 0.25 * width;
        if (trial == lo || trial == hi)
            break;
        double f, g;
        int rc = line_eval(ln, trial, &f, &g);
        if (rc != 0)
            return rc;
        if (!(f <= ln->f0 + C1 * trial * ln->d0) || f >= flo) {
            hi = trial;
            fhi = f;
            dhi = g;
        } else {
            if (fabs(g) <= -C2 * ln->d0) {
                *alpha_out = trial;
                *f_out = f;
                return 1;
            }
            if (g * (hi - lo) >= 0.0) {
                hi = lo;
                fhi = flo;
                dhi = dlo;
            }
            lo = trial;
            flo = f;
            dlo = g;
            have_lo = true;
            memcpy(ln->xlo, ln->xt, ln->d * sizeof(double));
            memcpy(ln->glo, ln->gt, ln->d * sizeof(double));
        }
        if (fabs(hi - lo) <= 1e-16 * fmax(1.0, fabs(lo)))
            break;
    }
    /* No point met the curvature condition, but one with sufficient decrease
     * is still progress: take it (BFGS skips the update if s'y <= 0). */
    if (have_lo && flo < ln->f0) {
        memcpy(ln->xt, ln->xlo, ln->d * sizeof(double));
        memcpy(ln->gt, ln->glo, ln->d * sizeof(double));
        *alpha_out = lo;
        *f_out = flo;
        return 1;
    }
    return 0;
}

/* Line search (alg. 3.5). Returns 1 with xt/gt/f_out set, 0 if no step
 * decreased f, <0 on error. */
static int line_search(line *ln, double alpha, double *alpha_out, double *f_out)
{
    double prev = 0.0, fprev = ln->f0, dprev = ln->d0;
    for (int i = 0; i < MAX_BRACKET && *ln->evaluations < ln->max_eval; i++) {
        double f, g;
        int rc = line_eval(ln, alpha, &f, &g);
        if (rc != 0)
            return rc;
        if (!(f <= ln->f0 + C1 * alpha * ln->d0) || (i > 0 && f >= fprev)) {
            /* xlo/glo hold prev (copied below when it was accepted), which
             * zoom falls back to if no point meets the curvature condition. */
            int z = zoom(ln, prev, fprev, dprev, alpha, f, g, alpha_out, f_out);
            return z;
        }
        if (fabs(g) <= -C2 * ln->d0) {
            *alpha_out = alpha;
            *f_out = f;
            return 1;
        }
        if (g >= 0.0) {
            memcpy(ln->xlo, ln->xt, ln->d * sizeof(double));
            memcpy(ln->glo, ln->gt, ln->d * sizeof(double));
            int z = zoom(ln, alpha, f, g, prev, fprev, dprev, alpha_out, f_out);
            if (z == 0) {
                /* alpha itself had sufficient decrease: accept it. */
                memcpy(ln->xt, ln->xlo, ln->d * sizeof(double));
                memcpy(ln->gt, ln->glo, ln->d * sizeof(double));
                *alpha_out = alpha;
                *f_out = f;
                return 1;
            }
            return z;
        }
        prev = alpha;
        fprev = f;
        dprev = g;
        memcpy(ln->xlo, ln->xt, ln->d * sizeof(double));
        memcpy(ln->glo, ln->gt, ln->d * sizeof(double));
        alpha *= 2.0;
    }
    if (prev > 0.0 && fprev < ln->f0) {
        memcpy(ln->xt, ln->xlo, ln->d * sizeof(double));
        memcpy(ln->gt, ln->glo, ln->d * sizeof(double));
        *alpha_out = prev;
        *f_out = fprev;
        return 1;
    }
    return 0;
}

int sm_opt_bfgs(double *x, size_t d, sm_opt_fn fn, void *ctx, const sm_opt_params *params,
                double *scratch, sm_opt_result *res)
{
    double *H = scratch;          /* d*d inverse Hessian approximation */
    double *g = H + d * d;        /* gradient at x */
    double *dir = g + d;          /* search direction */
    double *xt = dir + d;         /* trial point */
    double *gt = xt + d;          /* gradient at the trial point */
    double *s = gt + d;           /* step */
    double *y = s + d;            /* gradient change */
    double *xlo = y + d;          /* line-search fallback point */
    double *glo = xlo + d;
    double *Hy = glo + d;          /* H y in the update */

    memset(res, 0, sizeof *res);
    double f = NAN;
    res->evaluations = 1;
    int rc = fn(ctx, x, &f, g);
    if (rc != 0)
        return rc;
    res->f = f;
    res->grad_norm = max_abs(g, d);
    if (!isfinite(f) || !isfinite(res->grad_norm)) {
        res->reason = SM_OPT_NONFINITE;
        return 0;
    }
    for (size_t i = 0; i < d * d; i++)
        H[i] = 0.0;
    for (size_t i = 0; i < d; i++)
        H[i * d + i] = 1.0;
    bool scaled = false;
    int restarts = 0;

    line ln = {.fn = fn, .ctx = ctx, .d = d, .x0 = x, .dir = dir, .xt = xt, .gt = gt,
               .xlo = xlo, .glo = glo, .evaluations = &res->evaluations,
               .max_eval = params->max_eval};

    while (res->grad_norm > params->gtol) {
        if (res->iterations >= params->max_iter || res->evaluations >= params->max_eval) {
            res->reason = SM_OPT_MAX_ITER;
            return 0;
        }
        /* dir = -H g */
        for (size_t i = 0; i < d; i++) {
            double acc = 0.0;
            for (size_t j = 0; j < d; j++)
                acc += H[i * d + j] * g[j];
            dir[i] = -acc;
        }
        double d0 = dot(g, dir, d);
        if (!(d0 < 0.0)) {
            /* H lost positive definiteness to rounding: restart from the
             * steepest descent direction. */
            for (size_t i = 0; i < d * d; i++)
                H[i] = 0.0;
            for (size_t i = 0; i < d; i++) {
                H[i * d + i] = 1.0;
                dir[i] = -g[i];
            }
            d0 = dot(g, dir, d);
            scaled = false;
        }
        /* First step of a fresh H: at most unit length in the max norm, so a
         * steep start does not jump far out of the useful region. */
        double alpha = 1.0;
        if (!scaled) {
            double dn = max_abs(dir, d);
            if (dn > 1.0)
                alpha = 1.0 / dn;
        }
        ln.f0 = f;
        ln.d0 = d0;
        double alpha_taken = 0.0, fnew = f;
        int ls = line_search(&ln, alpha, &alpha_taken, &fnew);
        if (ls < 0)
            return ls;
        if (ls == 0) {
            if (scaled && restarts < 2) {
                /* A stale curvature model can point badly: retry once more
                 * from steepest descent before giving up. */
                restarts++;
                for (size_t i = 0; i < d * d; i++)
                    H[i] = 0.0;
                for (size_t i = 0; i < d; i++)
                    H[i * d + i] = 1.0;
                scaled = false;
                continue;
            }
            res->reason = SM_OPT_LINE_SEARCH;
            return 0;
        }
        for (size_t i = 0; i < d; i++) {
            s[i] = xt[i] - x[i];
            y[i] = gt[i] - g[i];
        }
        memcpy(x, xt, d * sizeof(double));
        memcpy(g, gt, d * sizeof(double));
        f = fnew;
        res->f = f;
        res->grad_norm = max_abs(g, d);
        res->iterations++;

        double sy = dot(s, y, d);
        if (sy > 1e-300 && isfinite(sy)) {
            double yy = dot(y, y, d);
            if (!scaled) {
                /* N&W eq. 6.20: scale H0 to the curvature along the step. */
                double gamma = sy / yy;
                for (size_t i = 0; i < d * d; i++)
                    H[i] = 0.0;
                for (size_t i = 0; i < d; i++)
                    H[i * d + i] = gamma;
                scaled = true;
            }
            /* H <- (I - rho s y') H (I - rho y s') + rho s s', written with
             * Hy = H y: H - rho (s Hy' + Hy s') + (rho^2 y'Hy + rho) s s'. */
            double rho = 1.0 / sy;
            for (size_t i = 0; i < d; i++) {
                double acc = 0.0;
                for (size_t j = 0; j < d; j++)
                    acc += H[i * d + j] * y[j];
                Hy[i] = acc;
            }
            double yhy = dot(y, Hy, d);
            double coef = rho * rho * yhy + rho;
            for (size_t i = 0; i < d; i++)
                for (size_t j = 0; j < d; j++)
                    H[i * d + j] += -rho * (s[i] * Hy[j] + Hy[i] * s[j]) + coef * s[i] * s[j];
        }
    }
    res->reason = SM_OPT_CONVERGED;
    return 0;
}
