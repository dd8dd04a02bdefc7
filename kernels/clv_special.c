/* SPDX-License-Identifier: MIT */
/*
 * Digamma, the Gauss hypergeometric function 2F1 and the BG/NBD
 * conditional-expectation series. 2F1 past z = 1/2 is continued along the
 * real axis by Taylor steps of its ODE z(1-z)y'' + [c-(a+b+1)z]y' - ab y = 0
 * (the "Taylor series method" of Pearson, Olver & Porter, "Numerical methods
 * for the computation of the confluent and Gauss hypergeometric functions",
 * Numer. Algorithms 74, 2017, sec. 4.2), which avoids the special cases of
 * the z -> 1-z connection formulas when c - a - b is an integer.
 */
#include "kernels/clv_special.h"

#include <math.h>
#include <stdbool.h>

/* Terms smaller than this relative to the sum are dropped (below half an
 * ulp of the sum). */
#define SERIES_TOL 1e-17
#define SERIES_MAX_TERMS 20000
#define TAYLOR_MAX_TERMS 600
#define TAYLOR_MAX_STEPS 400

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
 * sum_{k >= k0} u_k with u_{k0} = u0 and u_{k+1} = u_k (A+k)(B+k) z / ((C+k)(k+1)),
 * and its derivative in z. Returns 0, or -1 if it did not converge.
 */
static int power_series(double A, double B, double C, double z, int k0, double u0, double *value,
                        double *deriv)
{
    double s = 0.0, ds = 0.0, u = u0;
    int small = 0;
    for (int k = k0; k < SERIES_MAX_TERMS; k++) {
        s += u;
        ds += (double)k * u; /* z * derivative, divided below */
        double ratio = (A + k) * (B + k) / ((C + k) * (k + 1.0)) * z;
        double next = u * ratio;
        if (!isfinite(next) || !isfinite(s))
            return -1;
        if (next == 0.0) {
            small = 2;
        } else if (fabs(next) <= SERIES_TOL * fabs(s) && fabs(ratio) < 1.0 &&
                   fabs((double)(k + 1) * next) <= SERIES_TOL * fabs(ds)) {
            small++;
        } else {
            small = 0;
        }
        if (small >= 2) {
            *value = s;
            *deriv = z != 0.0 ? ds / z : 0.0;
            return 0;
        }
        u = next;
    }
    return -1;
}

/*
 * Continues the solution of z(1-z)y'' + [C-(A+B+1)z]y' - AB y = R from
 * (z0, y, y') to z (z0 < z < 1) by Taylor steps of half the distance to the
 * singular point z = 1. Returns 0, or -1 on failure.
 */
static int taylor_continue(double A, double B, double C, double R, double z0, double y, double dy,
                           double z, double *out)
{
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
         *             + (-n(n-1) + q1 n - ab) h^2 t_n - R h^2 [n=0]]
         *           / (p0 (n+1)(n+2)). */
        const double hp0 = h / p0, h2p0 = h * hp0;
        double tm = y, tn = dy * h; /* t_0, t_1 */
        double val = tm + tn, dsum = tn; /* dsum = sum n t_n = h y'(z0+h) */
        int small = 0;
        int n = 0;
        for (; n < TAYLOR_MAX_TERMS; n++) {
            double nn = (double)n;
            double num = (p1 * nn * (nn + 1.0) + q0 * (nn + 1.0)) * hp0 * tn +
                         (-nn * (nn - 1.0) + q1 * nn - ab) * h2p0 * tm - (n == 0 ? R * h2p0 : 0.0);
            double t2 = -num / ((nn + 1.0) * (nn + 2.0));
            double dterm = (nn + 2.0) * t2;
            val += t2;
            dsum += dterm;
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
        return power_series(a, b, c, z, 0, 1.0, &value, &deriv) == 0 ? value : NAN;
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
    if (power_series(a, b, c, z0, 0, 1.0, &value, &deriv) != 0)
        return NAN;
    if (z == z0)
        return value;
    double out;
    if (taylor_continue(a, b, c, 0.0, z0, value, deriv, z, &out) != 0)
        return NAN;
    return out;
}

double sm_bgnbd_alive_expectation(double r, double alpha, double a, double b, double x, double T,
                                  double t)
{
    if (t == 0.0)
        return 0.0;
    double base = alpha + T;
    double z = t / (base + t);
    double L = -log1p(t / base); /* ln(1 - z), exact for small t */
    double c = a + b + x - 1.0, eps = a - 1.0, A = a + b - 1.0 - r;
    /* S(z) = sum_{k>=1} (A)_k (a)_{k-1} / ((c+1)_{k-1} k!) z^k: the same term
     * ratio as 2F1(A, eps; c; z), first term A z, ODE right-hand side A c. */
    double z0 = z <= 0.5 ? z : 0.5;
    double S, dS;
    if (power_series(A, eps, c, z0, 1, A * z0, &S, &dS) != 0)
        return NAN;
    if (z > z0 && taylor_continue(A, eps, c, A * c, z0, S, dS, z, &S) != 0)
        return NAN;
    double E1 = eps != 0.0 ? expm1(eps * L) / eps : L;
    return -c * E1 - exp(eps * L) * S;
}
