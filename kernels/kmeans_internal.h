/* SPDX-License-Identifier: MIT */
/*
 * What kmeans.c, kmeans_init.c and kmeans_bounds.c share: the per-fit
 * context, the chunked accumulators that make every reduction independent of
 * the thread count, and the entry points of each algorithm. Not installed.
 *
 * Determinism scheme: rows are split into chunks of a whole number of
 * SM_REDUCE_BLOCK rows, a count that depends on n, d and k only. One thread
 * handles a chunk in row order and accumulates into that chunk's own double
 * partials; partials are then added in chunk order. Labels are written by
 * exactly one thread each; integer counters are summed in any order.
 */
#ifndef SEGMINT_KERNELS_KMEANS_INTERNAL_H
#define SEGMINT_KERNELS_KMEANS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/core.h"
#include "kernels/kmeans_dist.h"
#include "kernels/rng.h"
#include "segmint/kmeans.h"

/* Rows handed to a distance kernel at once (and the size of per-thread
 * scratch); changing it changes speed only, never results. */
#define KM_SUB_ROWS 256
/* At most this many chunks: enough to balance 100+ threads, few enough that
 * the partials stay small. */
#define KM_MAX_CHUNKS 128
/* Upper bound for all chunk partials together (bytes). */
#define KM_PARTIAL_BUDGET ((size_t)512 << 20)

/* Per-chunk accumulator: sums (or deltas) of rows per cluster, in double. */
typedef struct km_part {
    double *sum;        /* k x dpad (dpad = d rounded up to 8), rows zeroed lazily on first
                           touch; the padding stays 0 */
    int64_t *count;     /* k */
    uint8_t *touched;   /* k: row j of sum/count is live in this pass */
    uint64_t changed;   /* labels changed */
    uint64_t ndist;     /* point-center distances evaluated */
} km_part;

typedef struct km_ctx km_ctx;

/* Processes rows [i0, i1) of one chunk for the current pass. `scratch` is
 * this thread's km_ctx.scratch_floats floats (64-byte aligned). */
typedef void (*km_rows_fn)(km_ctx *c, km_part *part, size_t i0, size_t i1, float *scratch);

struct km_ctx {
    const sm_kmeans_params *p;
    sm_kmeans_algorithm algorithm; /* resolved */
    const float *x;
    size_t n, d, ld, k;
    size_t dpad;        /* d rounded up to a multiple of 8: row stride of the partials */
    int n_threads;

    /* data statistics */
    float *mean;        /* d */
    double total_ss;    /* sum ||x - mean||^2 */
    double tol_scaled;  /* tol * mean column variance */

    /* chunks */
    size_t chunk_rows, n_chunks;
    km_part *parts;     /* n_chunks */
    double *part_sum;   /* n_chunks * k * d */
    int64_t *part_count;
    uint8_t *part_touched;

    /* state of the running restart */
    sm_cluster_id *labels; /* n */
    float *centers;        /* k x d: the centers the next pass assigns against */
    float *centers_new;    /* k x d */
    double *sums;          /* k x d: sum of rows per cluster for `labels` */
    int64_t *counts;       /* k */
    float *drift;          /* k: distance each center moved in the last update (rounded up) */
    double shift_total;    /* sum of squared moves of the last update */

    /* packed centers for the distance kernels */
    float *panels;      /* km_panel_count(k) * d * 16 */
    float *bias;        /* km_panel_count(k) * 16 */
    float *small_c;     /* k * km_small_width(d) */
    bool use_small;     /* d <= 16: the transposed kernel */
    bool use_sgemm;     /* Lloyd through cblas_sgemm tiles (kernel choice) */

    /* per-thread scratch */
    float *scratch;
    size_t scratch_floats;

    /* bounds (hamerly, elkan, yinyang) */
    float *upper;       /* n */
    float *lower;       /* n * lower_stride */
    size_t lower_stride;
    float *center_half; /* k: half the distance to the nearest other center */
    float *cc;          /* k x k center-center distances (elkan), halved */
    size_t n_groups;    /* yinyang */
    uint32_t *group_of;     /* k */
    uint32_t *group_start;  /* n_groups + 1 */
    uint32_t *group_members;/* k, by group */
    float *group_drift;     /* n_groups */
    double *group_work;     /* n_groups * (2 d + 1): grouping scratch */
    float max_drift[2];     /* largest and second largest drift (hamerly) */
    uint32_t max_drift_index;

    /* the current pass */
    km_rows_fn rows_fn;
    bool full_sums;     /* pass rebuilds sums from scratch (else deltas) */
    uint64_t n_distances;
};

/* --- kmeans.c: the pass machinery ---------------------------------------- */

/* s[0..dpad) += x[0..d) (sign +1) or -= (sign -1), in double; s is 64-byte
 * aligned with dpad a multiple of 8, so whole registers load and store it. */
static inline void km_row_add(double *s, const float *x, size_t d, int sign)
{
#if defined(__AVX512F__)
    size_t f = 0;
    for (; f + 8 <= d; f += 8) {
        __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(x + f));
        __m512d a = _mm512_load_pd(s + f);
        _mm512_store_pd(s + f, sign > 0 ? _mm512_add_pd(a, v) : _mm512_sub_pd(a, v));
    }
    if (f < d) {
        __m512d v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)((1u << (d - f)) - 1u), x + f));
        __m512d a = _mm512_load_pd(s + f);
        _mm512_store_pd(s + f, sign > 0 ? _mm512_add_pd(a, v) : _mm512_sub_pd(a, v));
    }
#else
    if (sign > 0)
        for (size_t f = 0; f < d; f++)
            s[f] += (double)x[f];
    else
        for (size_t f = 0; f < d; f++)
            s[f] -= (double)x[f];
#endif
}

/* Adds (sign +1) or removes (sign -1) row x from cluster j of a chunk part. */
static inline void km_part_add(km_part *pt, size_t j, const float *x, size_t d, size_t dpad,
                               int sign)
{
    double *s = pt->sum + j * dpad;
    if (!pt->touched[j]) {
        pt->touched[j] = 1;
        pt->count[j] = 0;
        for (size_t f = 0; f < dpad; f++)
            s[f] = 0.0;
    }
    pt->count[j] += sign;
    km_row_add(s, x, d, sign);
}

/* Runs c->rows_fn over every chunk in parallel, then folds the chunk parts
 * into c->sums/c->counts (replacing them when c->full_sums, else adding the
 * deltas). Returns the labels changed. */
uint64_t km_run_pass(km_ctx *c);

/* Packs c->centers for the distance kernel the algorithm uses. */
void km_pack_centers(km_ctx *c);

/* --- kmeans_init.c --------------------------------------------------------- */

/* Greedy k-means++ over `m` rows of `pts` (leading dimension ldp) with
 * optional weights, writing k centers into out (k x d). Streams derive from
 * `stream`. Uses c's threads and scratch; allocates its own buffers. */
int km_init_plusplus(km_ctx *c, float *out, const float *pts, size_t m, size_t ldp,
                     const double *weights, size_t k, uint64_t stream, sm_error *err);
/* k-means|| followed by weighted k-means++ on the candidates. */
int km_init_parallel(km_ctx *c, float *out, uint64_t stream, sm_error *err);
/* k distinct rows uniformly at random. */
int km_init_random(km_ctx *c, float *out, uint64_t stream, sm_error *err);

/* --- kmeans_bounds.c ------------------------------------------------------- */

/* Allocates the bound arrays for c->algorithm (hamerly, elkan, yinyang). */
int km_bounds_alloc(km_ctx *c, sm_error *err);
void km_bounds_free(km_ctx *c);
/* Sets c->rows_fn for the first pass (all distances; bounds initialised). */
void km_bounds_first_pass(km_ctx *c);
/* Sets c->rows_fn for a later pass (bounds filter, incremental sums). */
void km_bounds_next_pass(km_ctx *c);
/* Called after c->centers_new is final and c->drift is set, before the
 * swap: center distances, group drifts, ... for the next pass. Also called
 * with the initial centers (all drifts 0). */
void km_bounds_prepare(km_ctx *c, const float *centers);
/* Forgets the bounds of row i (after an empty-cluster relocation moved it). */
void km_bounds_reset_row(km_ctx *c, size_t i);
/* Groups the centers for Yinyang (k-means on the centers). */
void km_yinyang_group(km_ctx *c, const float *centers);

/* Stream ids: restart r, purpose q, block b. */
static inline uint64_t km_stream(uint64_t restart, uint64_t purpose, uint64_t block)
{
    return (restart << 40) ^ (purpose << 32) ^ block;
}

#endif
