/* SPDX-License-Identifier: MIT */
/*
 * Special functions behind the CLV models: digamma, the Gauss
 * hypergeometric function 2F1 for real parameters and z < 1, and BG/NBD's
 * conditional expectation (FHL eq. 10) for all valid parameters.
 * Internal to segmint (tests include it); pure, thread-safe, no allocation.
 */
#ifndef SEGMINT_KERNELS_CLV_SPECIAL_H
#define SEGMINT_KERNELS_CLV_SPECIAL_H

/* psi(x) = d/dx ln Gamma(x); NaN at 0, -1, -2, ... Relative error ~1e-15
 * for x > 0 (recurrence to x >= 10, then the asymptotic series). */
double sm_digamma(double x);

/* ln Gamma(x) without touching the global signgam (thread-safe). */
double sm_lgamma(double x);

/*
 * 2F1(a, b; c; z) for real a, b, c (c not 0, -1, -2, ...) and z < 1; z = 1
 * only when c - a - b > 0 (Gauss's sum). Method: the power series for
 * |z| <= 1/2; Pfaff's transform z -> z/(z-1) for z < 0; for 1/2 < z < 1,
 * Taylor continuation of the hypergeometric ODE from z = 1/2 in steps of
 * half the distance to the singular point 1 (no special cases for integer
 * c - a - b). The result is accurate to ~1e-11 relative or NaN: the series
 * and each Taylor step carry a rounding-error bound, and the continuation is
 * repeated from z = 2/5 and must agree. Moderate parameters (|a|, |b|, |c|
 * up to ~100) typically give ~1e-14; large ones, where the terms cancel,
 * often give NaN. Not used by the BG/NBD predictions (see below).
 */
double sm_hyp2f1(double a, double b, double c, double z);

/*
 * E[Y(t) | alive at T] of BG/NBD for a customer with x repeat purchases and
 * age T: the expected purchases in (T, T + t] given the customer is alive,
 *   (c/eps) [1 - (1-z)^{r+x} 2F1(r+x, b+x; c; z)],
 * c = a+b+x-1, eps = a-1, z = t/(alpha+T+t); equivalently the Euler integral
 *   E_p[(1 - (1 + p s)^-(r+x)) / p],  p ~ Beta(a, b+x), s = t/(alpha+T),
 * finite for every a > 0 (the a = 1 case of eq. 10 is its limit). x = 0,
 * T = 0 gives E[X(t)] (eq. 9). Valid for all r, alpha, a, b > 0, x, T,
 * t >= 0 (finite): relative error below ~1e-12 (measured: <= 1e-13 on
 * thousands of random cases against mpmath). NaN only for invalid input or
 * when t/(alpha+T) overflows.
 *
 * Method: sm_bgnbd_alive_series when its own error bound is below 1e-12,
 * else sm_bgnbd_alive_quadrature.
 */
double sm_bgnbd_alive_expectation(double r, double alpha, double a, double b, double x, double T,
                                  double t);

/*
 * The two methods of sm_bgnbd_alive_expectation, exposed for tests; base =
 * alpha + T, arguments already valid (t > 0).
 *
 * series: eq. 10 after Euler's transform, -c expm1(eps L)/eps - (1-z)^eps
 * S(z) with L = ln(1-z) and S a power series in z with no 1/eps or 1/c
 * factor, summed directly at z (A = a+b-1-r and c as exact double-double
 * sums, compensated summation). Returns NaN, leaving the case to the
 * quadrature, when its first-order rounding-error bound exceeds 1e-12 of the
 * result (the two terms cancel: large a, b or r, a < 1 with a large b) or it
 * would need more than 1500 terms (z close to 1: t >> alpha + T).
 *
 * quadrature: the Euler integral in y = logit p around the Beta mode, by
 * Gauss-Kronrod (7, 15) panels marched out from the mode with step-size
 * control, closed-form tails beyond e^{|y|} ~ e^-16 / max(a+b+x, ...),
 * global adaptive bisection to sum |K - G| <= 1e-8 (the Kronrod results
 * are then accurate to ~1e-14), and the integral of the Beta density itself,
 * known exactly, as a final check. About 120-180 integrand evaluations
 * (5-10 us). NaN if that check or the panel budget fails (not seen).
 */
double sm_bgnbd_alive_series(double r, double a, double b, double x, double base, double t);
double sm_bgnbd_alive_quadrature(double r, double a, double b, double x, double base, double t);

#endif /* SEGMINT_KERNELS_CLV_SPECIAL_H */
