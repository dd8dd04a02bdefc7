/* SPDX-License-Identifier: MIT */
/*
 * Digamma, the Gauss hypergeometric function 2F1 and BG/NBD's conditional
 * expectation. 2F1 past z = 1/2 is continued along the real axis by Taylor
 * steps of its ODE z(1-z)y'' + [c-(a+b+1)z]y' - ab y = 0 (the "Taylor
 * series method" of Pearson, Olver & Porter, "Numerical methods for the
 * computation of the confluent and Gauss hypergeometric functions", Numer.
 * Algorithms 74, 2017, sec. 4.2), which avoids the special cases of the
 * z -> 1-z connection formulas when c - a - b is an integer. Its accuracy
 * is checked rather than assumed: with large parameters the series and the
 * Taylor steps cancel, and the answer is then NaN.
 *
 * The BG/NBD expectation does not go through that continuation any more:
 * see the section at the end.
 */
#include "kernels/clv_special.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>

/* Terms smaller than this relative to the sum are dropped (below half an
 * ulp of the sum). */
#define SERIES_TOL 1e-17
#define SERIES_MAX_TERMS 20000
#define TAYLOR_MAX_TERMS 600
#define TAYLOR_MAX_STEPS 400
#define HYP_TOL 1e-11 /* 2F1: bound on the relative error, else NaN */

double sm_lgamma(double x)
{
    int sign;
    return lgamma_r(x, &sign);
}

double sm_digamma(double x)
{
    if (isnan(x))
        return x;
    if (x <= 0.0) {
        if (x == floor(x))
            return NAN;
        /* Reflection: psi(1-x) - psi(x) = pi cot(pi x). */
        return sm_digamma(1.0 - x) - M_PI / tan(M_PI * x);
    }
    double acc = 0.0;
    while (x < 10.0) {
        acc -= 1.0 / x;
        x += 1.0;
    }
    /* Asymptotic series ln x - 1/(2x) - sum B_2k / (2k x^2k); at x >= 10 the
     * first omitted term (1/12 x^-14) is below 1e-15. */
    double f = 1.0 / (x * x);
    double series =
        f * (1.0 / 12 -
             f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132 - f * (691.0 / 32760))))));
    return acc + log(x) - 0.5 / x - series;
}

/*
 * 2F1(A, B; C; z) = sum_k u_k, u_0 = 1, u_{k+1} = u_k (A+k)(B+k) z / ((C+k)(k+1)),
 * and its derivative in z. Returns 0, or -1 if the series did not converge
 * or its first-order rounding bound (6 roundings per recurrence step, the
 * summation) exceeds HYP_TOL of the value or of the derivative: terms that
 * cancel (A or B negative) can leave nothing but rounding.
 */
static int power_series(double A, double B, double C, double z, double *value, double *deriv)
{
    const double u_r = DBL_EPSILON / 2.0;
    double s = 0.0, ds = 0.0, u = 1.0;
    double s_abs = 0.0, ks_abs = 0.0, kks_abs = 0.0; /* sum |u_k|, k |u_k|, k^2 |u_k| */
    int small = 0;
    for (int k = 0; k < SERIES_MAX_TERMS; k++) {
        double kd = (double)k;
        s += u;
        ds += kd * u; /* z * derivative, divided below */
        s_abs += fabs(u);
        ks_abs += kd * fabs(u);
        kks_abs += kd * kd * fabs(u);
        double ratio = (A + kd) * (B + kd) / ((C + kd) * (kd + 1.0)) * z;
        double next = u * ratio;
        if (!isfinite(next) || !isfinite(s))
            return -1;
        if (next == 0.0) {
            small = 2;
        } else if (fabs(next) <= SERIES_TOL * fabs(s) && fabs(ratio) < 1.0 &&
                   fabs((kd + 1.0) * next) <= SERIES_TOL * fabs(ds)) {
            small++;
        } else {
            small = 0;
        }
        if (small >= 2) {
            double n = kd + 1.0;
            double err = u_r * (6.0 * ks_abs + n * s_abs);
            double derr = u_r * (6.0 * kks_abs + n * ks_abs);
            if (!(err <= HYP_TOL * fabs(s)) || !(derr <= HYP_TOL * fabs(ds)))
                return -1;
            *value = s;
            *deriv = z != 0.0 ? ds / z : 0.0;
            return 0;
        }
        u = next;
    }
    return -1;
}

/*
 * Continues the solution of z(1-z)y'' + [C-(A+B+1)z]y' - AB y = 0 from
 * (z0, y, y') to z (z0 < z < 1) by Taylor steps of half the distance to the
 * singular point z = 1. Returns 0, or -1 on failure (including a step whose
 * terms cancel beyond HYP_TOL / 10).
 */
static int taylor_continue(double A, double B, double C, double z0, double y, double dy, double z,
                           double *out)
{
    const double u_r = DBL_EPSILON / 2.0;
    const double q1 = -(A + B + 1.0), ab = A * B;
    for (int step = 0; step < TAYLOR_MAX_STEPS; step++) {
        if (z0 >= z) {
            *out = y;
            return 0;
        }
        double reach = 0.5 * (1.0 - z0);
        bool last = z - z0 <= reach;
        double h = last ? z - z0 : reach;
        double p0 = z0 * (1.0 - z0), p1 = 1.0 - 2.0 * z0, q0 = C - (A + B + 1.0) * z0;
        /* Terms t_n = c_n h^n of y(z0 + h) = sum c_n h^n. The coefficients
         * c_n grow like (1-z0)^-n near the singular point and would overflow;
         * the terms shrink like 2^-n. Three-term recurrence from the ODE:
         * t_{n+2} = -[(p1 n(n+1) + q0 (n+1)) h t_{n+1}
         *             + (-n(n-1) + q1 n - ab) h^2 t_n] / (p0 (n+1)(n+2)). */
        const double hp0 = h / p0, h2p0 = h * hp0;
        double tm = y, tn = dy * h; /* t_0, t_1 */
        double val = tm + tn, dsum = tn; /* dsum = sum n t_n = h y'(z0+h) */
        double t_abs = fabs(tm) + fabs(tn), nt_abs = fabs(tn); /* for the rounding bound */
        int small = 0;
        int n = 0;
        for (; n < TAYLOR_MAX_TERMS; n++) {
            double nn = (double)n;
            double num = (p1 * nn * (nn + 1.0) + q0 * (nn + 1.0)) * hp0 * tn +
                         (-nn * (nn - 1.0) + q1 * nn - ab) * h2p0 * tm;
            double t2 = -num / ((nn + 1.0) * (nn + 2.0));
            double dterm = (nn + 2.0) * t2;
            val += t2;
            dsum += dterm;
            t_abs += fabs(t2);
            nt_abs += fabs(dterm);
            if (!isfinite(val) || !isfinite(dsum))
                return -1;
            if (fabs(t2) <= SERIES_TOL * fabs(val) && fabs(dterm) <= SERIES_TOL * fabs(dsum))
                small++;
            else
                small = 0;
            if (small >= 2)
                break;
            tm = tn;
            tn = t2;
        }
        double der = dsum / h;
        if (n == TAYLOR_MAX_TERMS)
            return -1;
        /* terms that cancel (large parameters) leave only rounding */
        double nn = n + 3.0;
        if (!(nn * u_r * t_abs <= 0.1 * HYP_TOL * fabs(val)) ||
            !(nn * u_r * nt_abs <= 0.1 * HYP_TOL * fabs(dsum)))
            return -1;
        y = val;
        dy = der;
        z0 = last ? z : z0 + h;
    }
    return -1;
}

static bool nonpositive_integer(double v)
{
    return v <= 0.0 && v == floor(v);
}

double sm_hyp2f1(double a, double b, double c, double z)
{
    if (isnan(a) || isnan(b) || isnan(c) || isnan(z) || nonpositive_integer(c) || z > 1.0)
        return NAN;
    if (z == 0.0 || a == 0.0 || b == 0.0)
        return 1.0;
    double value, deriv;
    if (nonpositive_integer(a) || nonpositive_integer(b)) {
        /* A polynomial: the series terminates, any z < 1 is fine. */
        return power_series(a, b, c, z, &value, &deriv) == 0 ? value : NAN;
    }
    if (z == 1.0) {
        /* Gauss: Gamma(c) Gamma(c-a-b) / (Gamma(c-a) Gamma(c-b)), c-a-b > 0. */
        if (!(c - a - b > 0.0))
            return NAN;
        int s1, s2, s3, s4;
        double l = lgamma_r(c, &s1) + lgamma_r(c - a - b, &s2) - lgamma_r(c - a, &s3) -
                   lgamma_r(c - b, &s4);
        return (double)(s1 * s2 * s3 * s4) * exp(l);
    }
    if (z < 0.0) {
        /* Pfaff: F(a,b;c;z) = (1-z)^-a F(a, c-b; c; z/(z-1)), argument in (0,1). */
        double w = z / (z - 1.0);
        double f = sm_hyp2f1(a, c - b, c, w);
        return pow(1.0 - z, -a) * f;
    }
    double z0 = z <= 0.5 ? z : 0.5;
    if (power_series(a, b, c, z0, &value, &deriv) != 0)
        return NAN;
    if (z == z0)
        return value;
    /* The continuation has no cheap error bound (its recurrences can cancel
     * for large parameters), so it runs twice, from z = 1/2 and from z = 2/5,
     * each in steps of half the distance to z = 1: two different paths,
     * equally accurate, that must agree. */
    double half, other, v2, d2;
    if (taylor_continue(a, b, c, z0, value, deriv, z, &half) != 0 ||
        power_series(a, b, c, 0.4, &v2, &d2) != 0 ||
        taylor_continue(a, b, c, 0.4, v2, d2, z, &other) != 0)
        return NAN;
    if (!(fabs(half - other) <= HYP_TOL * fabs(half)))
        return NAN;
    return half;
}

/* --- BG/NBD: E[Y(t) | alive at T] ------------------------------------------ */

/*
 * With B = b + x, m = r + x and s = t / (alpha + T), a customer alive at T
 * has, a posteriori, purchase rate lambda ~ Gamma(m, alpha + T) and dropout
 * probability p ~ Beta(a, B). Averaging (1 - e^{-lambda p t}) / p over
 * lambda gives the Euler integral of FHL's eq. 10:
 *   E[Y(t) | alive] = E_p[g(p)],  g(p) = (1 - (1 + p s)^-m) / p,
 * where g is positive, decreasing and convex (so E >= g(E[p])), and
 * finite at p = 0 (g(0) = m s): the mean exists for every a > 0.
 *
 * Two methods. The series of eq. 10 after Euler's transform is fast but can
 * cancel catastrophically or converge slowly (large a, b or r, a < 1 with a
 * large b, t >> alpha + T), so it is summed with a running bound on its
 * rounding error and used only when that bound is below BG_SERIES_TOL.
 * Otherwise the integral is computed by adaptive Gauss-Kronrod quadrature in
 * y = logit p, where the Beta density is log-concave with exponential tails.
 * (The series used to be continued past z = 1/2 by the Taylor steps above,
 * unchecked: at a = 50, b = 125 that gave E[X(39)] = -41585.9 for 0.92686,
 * and NaN or errors of 0.2% for a < 1 with b in the hundreds.)
 */

#define BG_SERIES_TOL 1e-12 /* accepted bound on the series' relative error */
#define BG_SERIES_MAX 1500  /* terms; beyond that the quadrature is cheaper */
#define BG_QUAD_TOL 1e-8    /* target of sum |Kronrod - Gauss| over panels, relative */
#define BG_QUAD_PANELS 128
#define BG_TAIL_EXP 16.0    /* closed-form tails where e^{|y|} K <= e^-16 */

/* s = x + y rounded, *err = the exact rounding error (Knuth's TwoSum). */
static double two_sum(double x, double y, double *err)
{
    double s = x + y, bv = s - x;
    *err = (x - (s - bv)) + (y - bv);
    return s;
}

/*
 * The series route. E = -c E1 - (1-z)^eps S(z), c = a+B-1, eps = a-1,
 * A = a+b-1-r, z = t/(alpha+T+t), L = ln(1-z), E1 = expm1(eps L)/eps and
 * S(z) = sum_{k>=1} (A)_k (a)_{k-1} / ((c+1)_{k-1} k!) z^k, which has no
 * 1/eps or 1/c factor (exact at a = 1, fine when a + b < 1).
 *
 * When the two terms of E nearly cancel (a < 1 with a large b: by a factor
 * of 400 at a = 0.8, b = 300), every relative error in S is amplified: so A
 * and c are kept as unevaluated sums hi + lo (exact for the inputs), S is
 * summed with Neumaier's compensation, and a first-order bound on what is
 * left (12 roundings per term of the recurrence, the powers of z, e^{eps L},
 * the geometric tail after the last term) decides. Returns E, or NaN when
 * that bound exceeds BG_SERIES_TOL relative or the series is too long.
 */
double sm_bgnbd_alive_series(double r, double a, double b, double x, double base, double t)
{
    const double u = DBL_EPSILON / 2.0;
    const double eps = a - 1.0; /* exact for a in [1/2, 2]; else one rounding */
    double e1, e2, e3;
    double ab = two_sum(a, b, &e1);
    double A_hi = two_sum(ab, -1.0, &e2);
    A_hi = two_sum(A_hi, -r, &e3);
    const double A_lo = e1 + e2 + e3;
    double cp1_hi = two_sum(ab, x, &e2); /* c + 1 = a + b + x */
    const double cp1_lo = e1 + e2;
    double c_hi = two_sum(cp1_hi, -1.0, &e3);
    const double c_lo = cp1_lo + e3, c = c_hi + c_lo;
    const double z = t / (base + t), L = -log1p(t / base);
    /* the terms end up decreasing like z^k: skip what cannot converge in time */
    if (40.0 * (base + t) > BG_SERIES_MAX * base)
        return NAN;
    double term = (A_hi + A_lo) * z, S = 0.0, comp = 0.0, sum_abs = 0.0, ksum_abs = 0.0;
    double tail = INFINITY;
    int n = 0;
    for (int k = 1; k <= BG_SERIES_MAX; k++) {
        /* Neumaier: comp collects the rounding errors of the running sum */
        double S1 = S + term;
        comp += fabs(S) >= fabs(term) ? (S - S1) + term : (term - S1) + S;
        S = S1;
        sum_abs += fabs(term);
        ksum_abs += (double)k * fabs(term);
        n = k;
        double kd = (double)k;
        double next = term * (((A_hi + kd) + A_lo) * (a + (kd - 1.0)) * z /
                              (((c_hi + kd) + c_lo) * (kd + 1.0)));
        if (!isfinite(next) || !isfinite(S))
            return NAN;
        if (fabs(next) <= 1e-17 * fabs(S + comp) || next == 0.0) {
            /* Every later ratio is z R(j), j > k, with R(j) - 1 =
             * (al j + be) / ((j + c)(j + 1)) <= (|al| + |be|/(k+1)) / (k+1+c),
             * al = A + a - c - 2, be = A (a-1) - c: a geometric bound. */
            double A = A_hi + A_lo;
            double al = (A - c) + (a - 2.0), be = A * (a - 1.0) - c;
            double rho = z * (1.0 + (fabs(al) + fabs(be) / (kd + 1.0)) / (kd + 1.0 + c));
            if (rho < 1.0) {
                tail = fabs(next) / (1.0 - rho);
                break;
            }
        }
        term = next;
    }
    if (!isfinite(tail))
        return NAN; /* not converged within BG_SERIES_MAX terms */
    S += comp;
    /* term k carries <= 12 k roundings; the compensated sum adds 2u|S| */
    double err_S = u * (12.0 * ksum_abs + 2.0 * fabs(S)) + (double)n * n * u * u * sum_abs + tail;
    double eL = eps * L;
    double E1 = eps != 0.0 ? expm1(eL) / eps : L;
    double P = exp(eL);
    double E = -c * E1 - P * S;
    /* eps, L and the exp/expm1 each add a few roundings, scaled by |eps L| */
    double err = u * (fabs(c * E1) * (8.0 + 3.0 * fabs(eL)) + P * fabs(S) * (6.0 + 3.0 * fabs(eL))) +
                 P * err_S;
    if (!(E > 0.0) || !isfinite(E) || !(err <= BG_SERIES_TOL * E))
        return NAN;
    return E;
}

/* The quadrature route: J = m s H / D in y = y0 + d, y0 = ln(a/B) the mode
 * of the Beta density in y,
 *   D = int w(d) dd,  H = int w(d) h(d) dd,  h = g / (m s) in (0, 1],
 *   w = p^a (1-p)^B / (p0^a q0^B),  p0 = a/(a+B), q0 = B/(a+B),
 * so w(0) = 1 and w is log-concave. Taking the ratio of two quadratures
 * cancels most of their common error. */
typedef struct bg_quad {
    double a, B, m, s;
    double p0, q0;
} bg_quad;

/* ln(1 + v) and e^v - 1: log1p and expm1 where they matter, the cheaper
 * log and exp where the result cannot lose more than 2 bits (|v| > 1/2). */
static inline double ln1p(double v)
{
    return fabs(v) < 0.5 ? log1p(v) : log(1.0 + v);
}

static inline double ex_m1(double v)
{
    return fabs(v) < 0.5 ? expm1(v) : exp(v) - 1.0;
}

/* h(w) = (1 - (1+w)^-m) / (m w), w = p s, for all w >= 0 without cancellation. */
static double bg_h(double w, double m)
{
    if (!(w > 0.0))
        return 1.0;
    double L = ln1p(w), v = m * L;
    double phi = v < 1e-5 ? 1.0 - v * (0.5 - v / 6.0) : -ex_m1(-v) / v;
    return phi * (L / w);
}

/* w and h at offset d from the mode. With lp = ln(p/p0) and lq = ln(q/q0),
 * lp = lq + d, so ln w = a lp + B lq = (a+B) lq + a d = (a+B) lp - B d;
 * the form with min(a, B) cancels least (its two terms agree to first order
 * in d). lq = -ln(1 + p0 (e^d - 1)) and lp = -ln(1 + q0 (e^-d - 1)) stay
 * accurate for tiny d and huge a, B. */
static void bg_point(const bg_quad *q, double d, double *w, double *h)
{
    double em, ep; /* e^-d - 1 and e^d - 1, the second also when the first is inf */
    if (d >= 0.0) {
        ep = ex_m1(d);
        em = -1.0 / (1.0 + 1.0 / ep);
    } else {
        em = ex_m1(-d);
        ep = -1.0 / (1.0 + 1.0 / em);
    }
    double lw = q->a <= q->B ? (q->a + q->B) * -ln1p(q->p0 * ep) + q->a * d
                             : (q->a + q->B) * -ln1p(q->q0 * em) - q->B * d;
    *w = exp(lw);
    double p = q->p0 / (1.0 + q->q0 * em);
    *h = bg_h(p * q->s, q->m);
}

/* p at offset d (for the tail bounds). */
static double bg_p(const bg_quad *q, double d)
{
    return d >= 0.0 ? q->p0 / (1.0 - q->q0 / (1.0 + 1.0 / expm1(d))) : q->p0 / (1.0 + q->q0 * expm1(-d));
}

typedef struct bg_panel {
    double lo, hi;
    double H, D;   /* Kronrod estimates */
    double eH, eD; /* |Kronrod - Gauss| */
} bg_panel;

/* QUADPACK's 15-point Kronrod rule and its embedded 7-point Gauss rule
 * (Piessens et al., 1983): nodes in (0, 1], largest first, and weights. */
static const double gk_x[8] = {0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                               0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                               0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                               0.207784955007898467600689403773245, 0.0};
static const double gk_wk[8] = {0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                                0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                                0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                                0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
static const double gk_wg[4] = {0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                                0.381830050505118944950369775488975, 0.417959183673469387755102040816327};

static void bg_panel_eval(const bg_quad *q, bg_panel *pn)
{
    double mid = 0.5 * (pn->lo + pn->hi), half = 0.5 * (pn->hi - pn->lo);
    double kH = 0.0, kD = 0.0, gH = 0.0, gD = 0.0, w, h;
    for (int j = 0; j < 7; j++) {
        double w1, h1, w2, h2;
        bg_point(q, mid - half * gk_x[j], &w1, &h1);
        bg_point(q, mid + half * gk_x[j], &w2, &h2);
        double sD = w1 + w2, sH = w1 * h1 + w2 * h2;
        kD += gk_wk[j] * sD;
        kH += gk_wk[j] * sH;
        if (j % 2 == 1) {
            gD += gk_wg[j / 2] * sD;
            gH += gk_wg[j / 2] * sH;
        }
    }
    bg_point(q, mid, &w, &h);
    kD += gk_wk[7] * w;
    kH += gk_wk[7] * w * h;
    gD += gk_wg[3] * w;
    gH += gk_wg[3] * w * h;
    pn->D = half * kD;
    pn->H = half * kH;
    pn->eD = half * fabs(kD - gD);
    pn->eH = half * fabs(kH - gH);
}

/* ln Gamma(x) - [(x - 1/2) ln x - x + ln(2 pi)/2], the Stirling remainder. */
static double stirling_rem(double x)
{
    if (x >= 10.0) {
        double f = 1.0 / (x * x);
        return (1.0 / 12 -
                f * (1.0 / 360 - f * (1.0 / 1260 - f * (1.0 / 1680 - f * (1.0 / 1188 - f * (691.0 / 360360)))))) /
               x;
    }
    return sm_lgamma(x) - (x - 0.5) * log(x) + x - 0.5 * log(2.0 * M_PI);
}

double sm_bgnbd_alive_quadrature(double r, double a, double b, double x, double base, double t)
{
    const double B = b + x, m = r + x, s = t / base;
    if (!(s > 0.0) || !isfinite(s) || !isfinite(a + B) || !isfinite(m))
        return NAN;
    const bg_quad q = {a, B, m, s, a / (a + B), B / (a + B)};
    /* D over the real line is B(a, B) / (p0^a q0^B), which the Stirling
     * formula turns into this form free of large cancelling logarithms. */
    const double D_exact = sqrt(2.0 * M_PI * (1.0 / a + 1.0 / B)) *
                           exp(stirling_rem(a) + stirling_rem(B) - stirling_rem(a + B));
    const double h0 = bg_h(q.p0 * s, m); /* J >= m s h0 (Jensen) */
    /* A tail beyond d1 holds at most w(d1) / |(ln w)'(d1)| of D (log-
     * concavity: (ln w)' = (a+B)(p0 - p)) and, as 0 < h <= 1 decreases, at
     * most that over h0 of H relatively (left) or no more (right): cut where
     * this is below 1e-14 of the result. */
    const double cut = 1e-14 * D_exact, cut_left = cut * h0;
    /* Beyond y_L = -16 - ln K_L (and y_R = 16 + ln K_R) the integrand is
     * e^{a d} (resp. e^{-B d}) times a function with a convergent expansion
     * in e^y (e^-y), whose second-order term is below e^-32 there: those
     * tails are integrated in closed form from the first two terms. */
    const double y0 = log(a) - log(B);
    const double lKL = fmax(0.0, fmax(log(a + B), log1p(m) + log(s)));
    const double lKR = fmax(0.0, fmax(log(a + B), log1p(m)));
    const double dL = -BG_TAIL_EXP - lKL - y0, dR = BG_TAIL_EXP + lKR - y0;
    if (!isfinite(dL) || !isfinite(dR))
        return NAN;
    const double d0 = fmin(fmax(0.0, dL), dR);
    const double sigma = fmin(1.0, sqrt(1.0 / a + 1.0 / B));
    /* Per-panel error budgets: H >= h0 D since J >= m s h0. */
    const double bud_D = 0.1 * BG_QUAD_TOL * D_exact, bud_H = bud_D * h0;
    const double struct_lo = -lKL - 2.0, struct_hi = lKR + 2.0;
    bg_panel pan[BG_QUAD_PANELS];
    int np = 0, tries = 0;
    double H = 0.0, D = 0.0;
    /* March out from the mode, each panel's width predicted from the
     * previous panel's error (Gauss 7 error ~ width^14), starting at the
     * core's width. Within the region where the integrand has singular
     * points at |Im y| = pi a panel is at most 3 wide, so that no feature
     * can hide between nodes; further out only the error estimate rules. */
    for (int dir = -1; dir <= 1; dir += 2) {
        double d = d0, width = 2.0 * sigma;
        const double end = dir > 0 ? dR : dL;
        while (dir > 0 ? d < end : d > end) {
            double y = y0 + d;
            bool inside = dir > 0 ? y < struct_hi : y > struct_lo;
            double step = inside ? fmin(width, 3.0) : width, next = d + dir * step;
            /* a remainder shorter than half a step joins this panel */
            bool last = dir > 0 ? next + 0.5 * step >= end : next - 0.5 * step <= end;
            if (last) {
                next = end;
                step = fabs(end - d);
            }
            if (np == BG_QUAD_PANELS || ++tries > 2 * BG_QUAD_PANELS)
                return NAN;
            bg_panel *pn = &pan[np];
            pn->lo = fmin(d, next);
            pn->hi = fmax(d, next);
            bg_panel_eval(&q, pn);
            double e = fmax(pn->eD / bud_D, pn->eH / bud_H);
            if (!(e <= 1.0) && step > 1e-3 * sigma) {
                width = step * fmax(0.25, 0.8 * pow(e, -1.0 / 14.0)); /* retry */
                continue;
            }
            np++;
            d = next;
            if (last)
                break;
            double p = bg_p(&q, d), w, h;
            bg_point(&q, d, &w, &h);
            if (w <= (dir > 0 ? cut : cut_left) * (a + B) * fabs(p - q.p0))
                break;
            width = step * fmin(4.0, fmax(1.0, 0.8 * pow(fmax(e, 1e-300), -1.0 / 14.0)));
        }
        if (d == end) {
            /* the analytic tail */
            if (dir < 0) {
                double v = exp(y0 + dL), pre = exp(a * dL + (a + B) * log1p(a / B));
                D += pre * (1.0 / a - (a + B) * v / (a + 1.0));
                H += pre * (1.0 / a - ((a + B) + 0.5 * (m + 1.0) * s) * v / (a + 1.0));
            } else {
                double v = exp(-(y0 + dR)), pre = exp(-B * dR + (a + B) * log1p(B / a));
                double h1 = bg_h(s, m), h1d = -h1 + exp(-(m + 1.0) * log1p(s));
                D += pre * (1.0 / B - (a + B) * v / (B + 1.0));
                H += pre * (h1 / B - ((a + B) * h1 + h1d) * v / (B + 1.0));
            }
        }
    }
    /* Global adaptive refinement: bisect the panel with the largest error. */
    for (;;) {
        double sH = H, sD = D, eH = 0.0, eD = 0.0;
        int worst = -1;
        double worst_e = -1.0;
        for (int i = 0; i < np; i++) {
            sH += pan[i].H;
            sD += pan[i].D;
            eH += pan[i].eH;
            eD += pan[i].eD;
        }
        if (!(sH > 0.0) || !(sD > 0.0) || !isfinite(sH) || !isfinite(sD))
            return NAN;
        if (eH <= BG_QUAD_TOL * sH && eD <= BG_QUAD_TOL * sD) {
            /* D is also known exactly: a last check of the rule. */
            if (!(fabs(sD - D_exact) <= 1e-10 * D_exact))
                return NAN;
            return m * s * (sH / sD);
        }
        for (int i = 0; i < np; i++) {
            double e = pan[i].eH / sH + pan[i].eD / sD;
            if (e > worst_e) {
                worst_e = e;
                worst = i;
            }
        }
        if (np == BG_QUAD_PANELS)
            return NAN;
        bg_panel *old = &pan[worst], *add = &pan[np++];
        double mid = 0.5 * (old->lo + old->hi);
        add->lo = mid;
        add->hi = old->hi;
        old->hi = mid;
        bg_panel_eval(&q, old);
        bg_panel_eval(&q, add);
    }
}

double sm_bgnbd_alive_expectation(double r, double alpha, double a, double b, double x, double T,
                                  double t)
{
    const double v[7] = {r, alpha, a, b, x, T, t};
    for (int j = 0; j < 7; j++)
        if (!isfinite(v[j]) || !(v[j] >= 0.0))
            return NAN;
    if (!(r > 0.0 && alpha > 0.0 && a > 0.0 && b > 0.0))
        return NAN;
    if (t == 0.0)
        return 0.0;
    double base = alpha + T;
    double e = sm_bgnbd_alive_series(r, a, b, x, base, t);
    if (!isnan(e))
        return e;
    return sm_bgnbd_alive_quadrature(r, a, b, x, base, t);
}
