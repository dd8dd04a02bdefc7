/* SPDX-License-Identifier: MIT */
/*
 * The one random-number generator of segmint: Philox4x32-10 (Salmon et al.,
 * "Parallel random numbers: as easy as 1, 2, 3", SC 2011), counter-based.
 *
 * A draw is a pure function of (seed, stream, counter). Kernels derive the
 * stream from a restart, tree or block index, never from a thread id, so a
 * result is the same whatever the thread count. Header-only so the hot loops
 * inline it.
 */
#ifndef SEGMINT_KERNELS_RNG_H
#define SEGMINT_KERNELS_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct sm_rng {
    uint32_t key[2];     /* the seed */
    uint32_t ctr[4];     /* ctr[0..1]: position in the stream, ctr[2..3]: the stream */
    uint32_t out[4];     /* the last block of outputs */
    unsigned used;       /* outputs of `out` already consumed (4 = refill) */
} sm_rng;

/* One Philox4x32 round function applied 10 times; exposed for the
 * known-answer test. */
static inline void sm_philox4x32_10(uint32_t out[4], const uint32_t ctr_in[4], const uint32_t key_in[2])
{
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
    uint32_t k0 = key_in[0], k1 = key_in[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)M0 * c0;
        uint64_t p1 = (uint64_t)M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += W0;
        k1 += W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* Positions the generator at the start of `stream` for `seed`. */
static inline void sm_rng_init(sm_rng *rng, uint64_t seed, uint64_t stream)
{
    rng->key[0] = (uint32_t)seed;
    rng->key[1] = (uint32_t)(seed >> 32);
    rng->ctr[0] = 0;
    rng->ctr[1] = 0;
    rng->ctr[2] = (uint32_t)stream;
    rng->ctr[3] = (uint32_t)(stream >> 32);
    rng->used = 4;
}

static inline uint32_t sm_rng_u32(sm_rng *rng)
{
    if (rng->used == 4) {
        sm_philox4x32_10(rng->out, rng->ctr, rng->key);
        if (++rng->ctr[0] == 0)
            ++rng->ctr[1];
        rng->used = 0;
    }
    return rng->out[rng->used++];
}

static inline uint64_t sm_rng_u64(sm_rng *rng)
{
    uint64_t hi = sm_rng_u32(rng);
    return (hi << 32) | sm_rng_u32(rng);
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double sm_rng_uniform(sm_rng *rng)
{
    return (double)(sm_rng_u64(rng) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, bound), bound > 0, without modulo bias
 * (Lemire, "Fast random integer generation in an interval", 2019). */
static inline uint64_t sm_rng_below(sm_rng *rng, uint64_t bound)
{
    unsigned __int128 m = (unsigned __int128)sm_rng_u64(rng) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t threshold = (0 - bound) % bound;
        while (low < threshold) {
            m = (unsigned __int128)sm_rng_u64(rng) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* Standard normal variate (Marsaglia polar method; consumes a variable
 * number of draws but deterministically for a given stream). */
static inline double sm_rng_normal(sm_rng *rng)
{
    for (;;) {
        double u = 2.0 * sm_rng_uniform(rng) - 1.0;
        double v = 2.0 * sm_rng_uniform(rng) - 1.0;
        double s = u * u + v * v;
        if (s > 0.0 && s < 1.0)
            return u * sqrt(-2.0 * log(s) / s);
    }
}

#endif /* SEGMINT_KERNELS_RNG_H */
