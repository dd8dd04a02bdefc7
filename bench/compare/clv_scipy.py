# SPDX-License-Identifier: MIT
"""The lifetimes-style BG/NBD fit and prediction, for bench_clv's comparison.

Same likelihood as segmint (FHL 2005 eq. 6 in log space), maximised the way
the lifetimes library does it: scipy.optimize.minimize (BFGS) on the
log-parameters of the mean negative log-likelihood, tol=1e-7, here with
scipy's finite-difference gradient (lifetimes >= 0.10 gets its gradient from
autograd, which Debian does not package). Predictions: P(alive) and
E[Y(t) | x, t_x, T] with scipy.special.hyp2f1, vectorised over customers.

usage: clv_scipy.py DATA N HORIZON R ALPHA A B
  DATA     raw little-endian float64: x[N], t_x[N], T[N]
  HORIZON  prediction horizon t
  R..B     starting parameters (segmint's start, so both take the same path)
Prints one JSON object (last line) with the timings and the estimate.
"""
import json
import sys
import time

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1


def negative_mean_loglik(log_params, x, tx, T):
    r, alpha, a, b = np.exp(log_params)
    A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    A2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    A3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    A4 = np.full_like(x, -np.inf)
    A4[repeat] = (np.log(a) - np.log(b + x[repeat] - 1)
                  - (r + x[repeat]) * np.log(alpha + tx[repeat]))
    return -(A1 + A2 + np.logaddexp(A3, A4)).mean()


def predict(params, x, tx, T, t):
    r, alpha, a, b = params
    with np.errstate(divide="ignore"):
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300)
                        * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
    p_alive = 1.0 / (1.0 + odds)
    z = t / (alpha + T + t)
    alive_expectation = ((a + b + x - 1) / (a - 1)
                         * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)
                            * hyp2f1(r + x, b + x, a + b + x - 1, z)))
    return p_alive, p_alive * alive_expectation


def main():
    path, n, horizon = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    start = np.log([float(v) for v in sys.argv[4:8]])
    data = np.fromfile(path, dtype="<f8")
    if data.size != 3 * n:
        raise SystemExit(f"{path}: expected {3 * n} doubles, found {data.size}")
    x, tx, T = data[:n], data[n:2 * n], data[2 * n:]

    t0 = time.perf_counter()
    res = minimize(negative_mean_loglik, start, args=(x, tx, T), method="BFGS", tol=1e-7)
    t1 = time.perf_counter()
    params = np.exp(res.x)
    p_alive, expected = predict(params, x, tx, T, horizon)
    t2 = time.perf_counter()
    r, alpha, a, b = params
    print(json.dumps({
        "fit_s": t1 - t0, "predict_s": t2 - t1, "total_s": t2 - t0,
        "r": r, "alpha": alpha, "a": a, "b": b,
        "loglik": -res.fun * n, "iterations": int(res.nit), "evaluations": int(res.nfev),
        "converged": bool(res.success),
        "sum_p_alive": float(p_alive.sum()), "sum_expected": float(expected.sum()),
    }))


if __name__ == "__main__":
    main()
