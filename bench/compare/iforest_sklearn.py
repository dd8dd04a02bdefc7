# SPDX-License-Identifier: MIT
"""scikit-learn's IsolationForest on the same data as bench_anomaly, for the
side-by-side AUC and speed tables. Prints one JSON object as its last line.

  auc   CSV SEEDS TREES PSI JOBS   ODDS-style CSV (header x1..xd,outlier): mean
                                   ROC AUC over seeds 0..SEEDS-1, median fit
                                   and score seconds
  speed RAW N D TREES PSI JOBS SEED  float32 row-major file of N x D values:
                                   one fit and one score_samples, timed

Scores are -score_samples (higher = more anomalous), as segmint's are.
"""
import json
import sys
import time
import warnings

import numpy as np
from sklearn import __version__ as sklearn_version
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score


def fit_score(x, trees, psi, jobs, seed):
    model = IsolationForest(n_estimators=trees, max_samples=min(psi, x.shape[0]),
                            n_jobs=jobs, random_state=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(x)
    t1, c1 = time.perf_counter(), time.process_time()
    scores = -model.score_samples(x)
    t2, c2 = time.perf_counter(), time.process_time()
    fit_score.cpu = (c1 - c0, c2 - c1)  # CPU seconds of all threads: insensitive to other load
    return scores, t1 - t0, t2 - t1


def auc(path, seeds, trees, psi, jobs):
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    x, y = data[:, :-1].astype(np.float32), data[:, -1].astype(np.int64)
    aucs, fits, scores_t = [], [], []
    for seed in range(seeds):
        scores, fit_s, score_s = fit_score(x, trees, psi, jobs, seed)
        aucs.append(roc_auc_score(y, scores))
        fits.append(fit_s)
        scores_t.append(score_s)
    return {"auc_mean": float(np.mean(aucs)), "auc_sd": float(np.std(aucs, ddof=1)),
            "fit_median_s": float(np.median(fits)), "score_median_s": float(np.median(scores_t)),
            "n": int(x.shape[0]), "d": int(x.shape[1]), "sklearn": sklearn_version}


def speed(path, n, d, trees, psi, jobs, seed):
    x = np.fromfile(path, dtype=np.float32, count=n * d).reshape(n, d)
    _, fit_s, score_s = fit_score(x, trees, psi, jobs, seed)
    return {"fit_s": fit_s, "score_s": score_s, "fit_cpu_s": fit_score.cpu[0],
            "score_cpu_s": fit_score.cpu[1], "sklearn": sklearn_version}


def main(argv):
    warnings.simplefilter("ignore")
    if len(argv) == 6 and argv[0] == "auc":
        out = auc(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5]))
    elif len(argv) == 8 and argv[0] == "speed":
        out = speed(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5]),
                    int(argv[6]), int(argv[7]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
