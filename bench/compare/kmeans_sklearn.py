#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""scikit-learn k-means on a .npy matrix from given initial centers (bench/bench_kmeans.c).

Fit mode: KMeans(init=centers, n_init=1, max_iter=N, tol=0, algorithm=lloyd|elkan), timed
around fit(); prints one JSON line with seconds per iteration, iterations and inertia, and
writes the labels (int32 .npy) when --labels is given. Init mode: times
sklearn.cluster.kmeans_plusplus (the greedy k-means++ KMeans uses) on the data.
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--init")
    ap.add_argument("--k", type=int)
    ap.add_argument("--algorithm", default="lloyd", choices=["lloyd", "elkan"])
    ap.add_argument("--max-iter", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--labels")
    ap.add_argument("--mode", default="fit", choices=["fit", "init"])
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import numpy as np
    import sklearn
    from sklearn.cluster import KMeans, kmeans_plusplus
    from threadpoolctl import threadpool_limits

    x = np.load(a.data, mmap_mode=None)
    with threadpool_limits(limits=a.threads, user_api="openmp"), threadpool_limits(limits=1, user_api="blas"):
        if a.mode == "init":
            t0 = time.perf_counter()
            kmeans_plusplus(x, a.k, random_state=0)
            t = time.perf_counter() - t0
            print(json.dumps({"impl": "sklearn kmeans_plusplus", "version": sklearn.__version__, "seconds": t}))
            return 0
        c = np.load(a.init)
        km = KMeans(n_clusters=c.shape[0], init=c, n_init=1, max_iter=a.max_iter, tol=0.0,
                    algorithm=a.algorithm, copy_x=True)
        t0 = time.perf_counter()
        km.fit(x)
        t = time.perf_counter() - t0
    if a.labels:
        np.save(a.labels, km.labels_.astype(np.int32))
    print(json.dumps({"impl": "sklearn " + a.algorithm, "version": sklearn.__version__, "seconds": t,
                      "n_iter": int(km.n_iter_), "per_iter": t / km.n_iter_, "inertia": float(km.inertia_)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
