/* SPDX-License-Identifier: MIT */
/*
 * Special functions behind the CLV models: digamma, the Gauss
 * hypergeometric function 2F1 for real parameters and z < 1, and the
 * series that gives BG/NBD's conditional expectation without cancellation.
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
 * c - a - b). Accurate to ~1e-14 relative for moderate parameters (|a|, |b|,
 * |c| up to ~100); NaN when a series does not converge.
 */
double sm_hyp2f1(double a, double b, double c, double z);

/*
 * E[Y(t) | alive at T] of BG/NBD for a customer with x repeat purchases and
 * age T: the expected purchases in (T, T + t] given the customer is alive,
 *   (c/eps) [1 - (1-z)^{r+x} 2F1(r+x, b+x; c; z)],
 * c = a+b+x-1, eps = a-1, z = t/(alpha+T+t). By Euler's transform this
 * equals -c expm1(eps L)/eps - (1-z)^eps S(z), L = ln(1-z), where S solves
 * a hypergeometric ODE with S(0) = 0 and has no 1/eps or 1/c factor: exact
 * at a = 1, stable when a + b < 1 and for huge x. NaN if the series fails.
 */
double sm_bgnbd_alive_expectation(double r, double alpha, double a, double b, double x, double T,
                                  double t);

#endif /* SEGMINT_KERNELS_CLV_SPECIAL_H */
