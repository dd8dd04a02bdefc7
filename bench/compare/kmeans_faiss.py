#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""FAISS k-means on a .npy matrix from given initial centers (bench/bench_kmeans.c).

faiss.Kmeans with niter=N and no subsampling (max_points_per_centroid = n), trained from
the given centroids, timed around train(); prints one JSON line with seconds per iteration
and the inertia of the final centroids (one exact assignment, not timed).
"""
import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--max-iter", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import numpy as np
    import faiss

    faiss.omp_set_num_threads(a.threads)
    x = np.ascontiguousarray(np.load(a.data), dtype=np.float32)
    c = np.ascontiguousarray(np.load(a.init), dtype=np.float32)
    n, d = x.shape
    km = faiss.Kmeans(d, c.shape[0], niter=a.max_iter, verbose=False, seed=1,
                      max_points_per_centroid=n, min_points_per_centroid=1)
    t0 = time.perf_counter()
    km.train(x, init_centroids=c)
    t = time.perf_counter() - t0
    dist, _ = km.index.search(x, 1)
    print(json.dumps({"impl": "faiss", "version": faiss.__version__, "seconds": t, "n_iter": a.max_iter,
                      "per_iter": t / a.max_iter, "inertia": float(dist.astype(np.float64).sum())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
