/* SPDX-License-Identifier: MIT */
/*
 * Register-blocked distance kernels for k-means (see kmeans_dist.h). The
 * AVX-512 path keeps an R x P tile of accumulators (R rows x P panels of 16
 * centers) in registers while walking the d coordinates, then folds the
 * panels into a per-row arg-min with a strict `<` so ties keep the smallest
 * center index. Other targets get the same arithmetic in plain loops.
 */
#include "kernels/kmeans_dist.h"

#include <math.h>
#include <string.h>

#include "kernels/core.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

void km_pack_direct(float *panels, const float *c, size_t ldc, size_t k, size_t d)
{
    size_t np = km_panel_count(k);
    for (size_t p = 0; p < np; p++)
        for (size_t f = 0; f < d; f++)
            for (size_t l = 0; l < KM_LANES; l++) {
                size_t j = p * KM_LANES + l;
                panels[(p * d + f) * KM_LANES + l] = j < k ? c[j * ldc + f] : INFINITY;
            }
}

void km_pack_dot(float *panels, float *bias, const float *c, size_t ldc, size_t k, size_t d,
                 const float *mean)
{
    size_t np = km_panel_count(k);
    for (size_t p = 0; p < np; p++) {
        for (size_t l = 0; l < KM_LANES; l++) {
            size_t j = p * KM_LANES + l;
            double norm = 0.0;
            for (size_t f = 0; f < d; f++) {
                float v = j < k ? c[j * ldc + f] - mean[f] : 0.0f;
                panels[(p * d + f) * KM_LANES + l] = v;
                norm += (double)v * v;
            }
            bias[j] = j < k ? (float)norm : INFINITY;
        }
    }
}

void km_pack_small(float *cp, const float *c, size_t ldc, size_t k, size_t d)
{
    size_t w = km_small_width(d);
    for (size_t j = 0; j < k; j++)
        for (size_t f = 0; f < w; f++)
            cp[j * w + f] = f < d ? c[j * ldc + f] : 0.0f;
}

float km_dist2(const float *a, const float *b, size_t d)
{
#if defined(__AVX512F__)
    __m512 acc = _mm512_setzero_ps();
    size_t f = 0;
    for (; f + KM_LANES <= d; f += KM_LANES) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + f), _mm512_loadu_ps(b + f));
        acc = _mm512_fmadd_ps(t, t, acc);
    }
    if (f < d) {
        __mmask16 m = (__mmask16)((1u << (d - f)) - 1u);
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + f), _mm512_maskz_loadu_ps(m, b + f));
        acc = _mm512_fmadd_ps(t, t, acc);
    }
    return _mm512_reduce_add_ps(acc);
#else
    float s = 0.0f;
    for (size_t f = 0; f < d; f++) {
        float t = a[f] - b[f];
        s += t * t;
    }
    return s;
#endif
}

#if defined(__AVX512F__)

#define KM_INLINE static inline __attribute__((always_inline))
#define KM_RMAX 16
#define KM_PMAX 4

enum { MODE_DIRECT = 0, MODE_DOT = 1 };

/* acc[r][p] = sum over f of (c - x)^2 (direct) or x*c (dot) for R rows and
 * P panels starting at `pan`. R and P are constants after inlining, so the
 * tile lives in registers. */
KM_INLINE void tile_acc(__m512 acc[KM_RMAX][KM_PMAX], const float *x, size_t ldx, size_t d,
                        const float *pan, size_t pstride, const int R, const int P, const int mode)
{
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int p = 0; p < P; p++)
            acc[r][p] = _mm512_setzero_ps();
    for (size_t f = 0; f < d; f++) {
        __m512 c[KM_PMAX];
#pragma GCC unroll 4
        for (int p = 0; p < P; p++)
            c[p] = _mm512_load_ps(pan + p * pstride + f * KM_LANES);
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            __m512 xb = _mm512_set1_ps(x[(size_t)r * ldx + f]);
#pragma GCC unroll 4
            for (int p = 0; p < P; p++) {
                if (mode == MODE_DIRECT) {
                    __m512 t = _mm512_sub_ps(c[p], xb);
                    acc[r][p] = _mm512_fmadd_ps(t, t, acc[r][p]);
                } else {
                    acc[r][p] = _mm512_fmadd_ps(xb, c[p], acc[r][p]);
                }
            }
        }
    }
}

KM_INLINE void fold_min(__m512 *best, __m512i *index, __m512 v, __m512i idx)
{
    __mmask16 less = _mm512_cmp_ps_mask(v, *best, _CMP_LT_OQ);
    *best = _mm512_mask_mov_ps(*best, less, v);
    *index = _mm512_mask_mov_epi32(*index, less, idx);
}

/* Arg-min for exactly R rows over all np panels, in groups of at most PG
 * panels (PG <= KM_PMAX). Lanes beyond k hold +inf (direct) or bias +inf
 * (dot) and lose every comparison; lane 0 of panel 0 is a real center, so
 * even an overflowing row gets a label < k. */
KM_INLINE void argmin_rows(sm_cluster_id *labels, float *out, const float *x, size_t ldx,
                           size_t d, const float *panels, const float *bias, size_t np,
                           const int R, const int PG, const int mode)
{
    const size_t pstride = d * KM_LANES;
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 best[KM_RMAX];
    __m512i index[KM_RMAX];
    __m512 acc[KM_RMAX][KM_PMAX];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
        best[r] = _mm512_set1_ps(INFINITY);
        index[r] = iota;
    }
    for (size_t p0 = 0; p0 < np; p0 += (size_t)PG) {
        size_t left = np - p0;
        int P = left < (size_t)PG ? (int)left : PG;
#define KM_GROUP(PC)                                                                            \
    if (P == (PC)) {                                                                            \
        tile_acc(acc, x, ldx, d, panels + p0 * pstride, pstride, R, (PC), mode);                \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                    \
        {                                                                                       \
            _Pragma("GCC unroll 4") for (int p = 0; p < (PC); p++)                              \
            {                                                                                   \
                __m512 v = acc[r][p];                                                           \
                if (mode == MODE_DOT)                                                           \
                    v = _mm512_fmadd_ps(v, _mm512_set1_ps(-2.0f),                               \
                                        _mm512_load_ps(bias + (p0 + (size_t)p) * KM_LANES));    \
                __m512i idx = _mm512_add_epi32(iota, _mm512_set1_epi32((int)((p0 + (size_t)p) * \
                                                                             KM_LANES)));      \
                fold_min(&best[r], &index[r], v, idx);                                          \
            }                                                                                   \
        }                                                                                       \
    }
        if (PG >= 4)
            KM_GROUP(4)
        if (PG >= 3)
            KM_GROUP(3)
        if (PG >= 2)
            KM_GROUP(2)
        KM_GROUP(1)
#undef KM_GROUP
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
        float m = _mm512_reduce_min_ps(best[r]);
        __mmask16 eq = _mm512_cmp_ps_mask(best[r], _mm512_set1_ps(m), _CMP_EQ_OQ);
        labels[r] = (sm_cluster_id)_mm512_mask_reduce_min_epi32(eq, index[r]);
        if (out != NULL)
            out[r] = m;
    }
}

#define KM_DEFINE_ARGMIN(NAME, R, PG, MODE)                                                     \
    static void NAME(sm_cluster_id *labels, float *out, const float *x, size_t ldx, size_t d,   \
                     const float *panels, const float *bias, size_t np)                         \
    {                                                                                           \
        argmin_rows(labels, out, x, ldx, d, panels, bias, np, R, PG, MODE);                     \
    }

KM_DEFINE_ARGMIN(argmin_direct_16x1, 16, 1, MODE_DIRECT)
KM_DEFINE_ARGMIN(argmin_direct_12x2, 12, 2, MODE_DIRECT)
KM_DEFINE_ARGMIN(argmin_direct_8x3, 8, 3, MODE_DIRECT)
KM_DEFINE_ARGMIN(argmin_direct_6x4, 6, 4, MODE_DIRECT)
KM_DEFINE_ARGMIN(argmin_direct_1x4, 1, 4, MODE_DIRECT)
KM_DEFINE_ARGMIN(argmin_dot_16x1, 16, 1, MODE_DOT)
KM_DEFINE_ARGMIN(argmin_dot_12x2, 12, 2, MODE_DOT)
KM_DEFINE_ARGMIN(argmin_dot_8x3, 8, 3, MODE_DOT)
KM_DEFINE_ARGMIN(argmin_dot_6x4, 6, 4, MODE_DOT)
KM_DEFINE_ARGMIN(argmin_dot_1x4, 1, 4, MODE_DOT)

typedef void (*argmin_fn)(sm_cluster_id *, float *, const float *, size_t, size_t, const float *,
                          const float *, size_t);

static void argmin_dispatch(sm_cluster_id *labels, float *out, const float *x, size_t ldx,
                            size_t rows, size_t d, const float *panels, const float *bias,
                            size_t np, int mode)
{
    static const argmin_fn direct[4] = {argmin_direct_16x1, argmin_direct_12x2, argmin_direct_8x3,
                                        argmin_direct_6x4};
    static const argmin_fn dot[4] = {argmin_dot_16x1, argmin_dot_12x2, argmin_dot_8x3,
                                     argmin_dot_6x4};
    static const size_t block_rows[4] = {16, 12, 8, 6};
    size_t sel = np <= 4 ? np - 1 : 3;
    argmin_fn wide = mode == MODE_DIRECT ? direct[sel] : dot[sel];
    argmin_fn one = mode == MODE_DIRECT ? argmin_direct_1x4 : argmin_dot_1x4;
    size_t R = block_rows[sel], r = 0;
    for (; r + R <= rows; r += R)
        wide(labels + r, out ? out + r : NULL, x + r * ldx, ldx, d, panels, bias, np);
    for (; r < rows; r++)
        one(labels + r, out ? out + r : NULL, x + r * ldx, ldx, d, panels, bias, np);
}

void km_argmin_direct(sm_cluster_id *labels, float *dist2, const float *x, size_t ldx, size_t rows,
                      size_t d, const float *panels, size_t np)
{
    argmin_dispatch(labels, dist2, x, ldx, rows, d, panels, NULL, np, MODE_DIRECT);
}

void km_argmin_dot(sm_cluster_id *labels, float *keys, const float *xc, size_t rows, size_t d,
                   const float *panels, const float *bias, size_t np)
{
    argmin_dispatch(labels, keys, xc, d, rows, d, panels, bias, np, MODE_DOT);
}

KM_INLINE void dist_rows(float *out, size_t ldo, const float *x, size_t ldx, size_t d,
                         const float *panels, size_t np, const int R, const int PG)
{
    const size_t pstride = d * KM_LANES;
    __m512 acc[KM_RMAX][KM_PMAX];
    for (size_t p0 = 0; p0 < np; p0 += (size_t)PG) {
        size_t left = np - p0;
        int P = left < (size_t)PG ? (int)left : PG;
#define KM_STORE(PC)                                                                            \
    if (P == (PC)) {                                                                            \
        tile_acc(acc, x, ldx, d, panels + p0 * pstride, pstride, R, (PC), MODE_DIRECT);         \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                    \
            _Pragma("GCC unroll 4") for (int p = 0; p < (PC); p++)                              \
                _mm512_storeu_ps(out + (size_t)r * ldo + (p0 + (size_t)p) * KM_LANES, acc[r][p]); \
    }
        if (PG >= 4)
            KM_STORE(4)
        if (PG >= 3)
            KM_STORE(3)
        if (PG >= 2)
            KM_STORE(2)
        KM_STORE(1)
#undef KM_STORE
    }
}

#define KM_DEFINE_DIST(NAME, R, PG)                                                             \
    static void NAME(float *out, size_t ldo, const float *x, size_t ldx, size_t d,              \
                     const float *panels, size_t np)                                            \
    {                                                                                           \
        dist_rows(out, ldo, x, ldx, d, panels, np, R, PG);                                      \
    }

KM_DEFINE_DIST(dist_rows_16x1, 16, 1)
KM_DEFINE_DIST(dist_rows_12x2, 12, 2)
KM_DEFINE_DIST(dist_rows_8x3, 8, 3)
KM_DEFINE_DIST(dist_rows_6x4, 6, 4)
KM_DEFINE_DIST(dist_rows_1x4, 1, 4)

void km_dist_direct(float *out, size_t ldo, const float *x, size_t ldx, size_t rows, size_t d,
                    const float *panels, size_t np)
{
    typedef void (*dist_fn)(float *, size_t, const float *, size_t, size_t, const float *, size_t);
    static const dist_fn wide[4] = {dist_rows_16x1, dist_rows_12x2, dist_rows_8x3, dist_rows_6x4};
    static const size_t block_rows[4] = {16, 12, 8, 6};
    size_t sel = np <= 4 ? np - 1 : 3, R = block_rows[sel], r = 0;
    for (; r + R <= rows; r += R)
        wide[sel](out + r * ldo, ldo, x + r * ldx, ldx, d, panels, np);
    for (; r < rows; r++)
        dist_rows_1x4(out + r * ldo, ldo, x + r * ldx, ldx, d, panels, np);
}

/* Small d: 16 rows per register (one lane per row), every center broadcast
 * in turn, so no horizontal reductions at all. Rows are padded with zeros to
 * W = 4, 8 or 16 floats (zeros add exactly 0 to the sums), loaded W floats
 * per row, and transposed with vpermt2ps stages that each swap one register
 * bit with one lane bit of the element index (tables from a small script:
 * stage s pairs registers g and g | 1 << s; the last stage also puts row r
 * in lane r). Gathers would do the same but are several times slower on Zen 4. */
static const int32_t transpose_4[2][2][16] = {
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
     {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
    {{0, 4, 8, 12, 1, 5, 9, 13, 16, 20, 24, 28, 17, 21, 25, 29},
     {2, 6, 10, 14, 3, 7, 11, 15, 18, 22, 26, 30, 19, 23, 27, 31}},
};
static const int32_t transpose_8[3][2][16] = {
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
     {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
     {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 8, 1, 9, 2, 10, 3, 11, 16, 24, 17, 25, 18, 26, 19, 27},
     {4, 12, 5, 13, 6, 14, 7, 15, 20, 28, 21, 29, 22, 30, 23, 31}},
};
static const int32_t transpose_16[4][2][16] = {
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
     {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
     {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
     {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
     {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
};

/* Loads `left` (<= 16) rows of width d padded to W and leaves coordinate f
 * of row i in lane i of xf[f]. Row i starts at base + (idx ? idx[i] : i) * ldx. */
KM_INLINE void load_transposed(__m512 xf[16], const float *base, size_t ldx, size_t left, size_t d,
                               const uint32_t *idx, const int W)
{
#define KM_ROW(i) (base + (idx != NULL ? (size_t)idx[i] : (size_t)(i)) * ldx)
    const int rpr = KM_LANES / W; /* rows per register before the transpose */
#pragma GCC unroll 16
    for (int g = 0; g < W; g++) {
        if (W == 16) {
            size_t r = (size_t)g;
            xf[g] = r < left ? _mm512_maskz_loadu_ps((__mmask16)((1u << d) - 1u), KM_ROW(r))
                             : _mm512_setzero_ps();
        } else if (W == 8) {
            size_t r = (size_t)g * 2;
            __mmask8 m = (__mmask8)((1u << d) - 1u);
            __m256 lo = r < left ? _mm256_maskz_loadu_ps(m, KM_ROW(r)) : _mm256_setzero_ps();
            __m256 hi = r + 1 < left ? _mm256_maskz_loadu_ps(m, KM_ROW(r + 1)) : _mm256_setzero_ps();
            xf[g] = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
        } else {
            size_t r = (size_t)g * 4;
            __mmask8 m = (__mmask8)((1u << d) - 1u);
            __m128 q0 = r < left ? _mm_maskz_loadu_ps(m, KM_ROW(r)) : _mm_setzero_ps();
            __m128 q1 = r + 1 < left ? _mm_maskz_loadu_ps(m, KM_ROW(r + 1)) : _mm_setzero_ps();
            __m128 q2 = r + 2 < left ? _mm_maskz_loadu_ps(m, KM_ROW(r + 2)) : _mm_setzero_ps();
            __m128 q3 = r + 3 < left ? _mm_maskz_loadu_ps(m, KM_ROW(r + 3)) : _mm_setzero_ps();
            __m512 v = _mm512_castps128_ps512(q0);
            v = _mm512_insertf32x4(v, q1, 1);
            v = _mm512_insertf32x4(v, q2, 2);
            xf[g] = _mm512_insertf32x4(v, q3, 3);
        }
    }
    (void)rpr;
#undef KM_ROW
    const int stages = W == 4 ? 2 : W == 8 ? 3 : 4;
#pragma GCC unroll 4
    for (int s = 0; s < stages; s++) {
        const int32_t *i0 = W == 4 ? transpose_4[s][0] : W == 8 ? transpose_8[s][0] : transpose_16[s][0];
        const int32_t *i1 = W == 4 ? transpose_4[s][1] : W == 8 ? transpose_8[s][1] : transpose_16[s][1];
        __m512i idx0 = _mm512_loadu_si512(i0), idx1 = _mm512_loadu_si512(i1);
#pragma GCC unroll 16
        for (int g = 0; g < W; g++) {
            if (g & (1 << s))
                continue;
            __m512 a = xf[g], b = xf[g | (1 << s)];
            xf[g] = _mm512_permutex2var_ps(a, idx0, b);
            xf[g | (1 << s)] = _mm512_permutex2var_ps(a, idx1, b);
        }
    }
}

KM_INLINE void small_rows(sm_cluster_id *labels, float *out, const float *x, size_t ldx,
                          size_t rows, size_t d, const float *cp, size_t k, const int W)
{
    for (size_t r0 = 0; r0 < rows; r0 += KM_LANES) {
        size_t left = rows - r0;
        __mmask16 valid = left >= KM_LANES ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        __m512 xf[16];
        load_transposed(xf, x + r0 * ldx, ldx, left, d, NULL, W);
        __m512 best = _mm512_set1_ps(INFINITY);
        __m512i index = _mm512_setzero_si512();
        for (size_t j = 0; j < k; j++) {
            const float *cj = cp + j * (size_t)W;
            __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 16
            for (int f = 0; f < W; f++) {
                __m512 t = _mm512_sub_ps(xf[f], _mm512_set1_ps(cj[f]));
                acc = _mm512_fmadd_ps(t, t, acc);
            }
            __mmask16 less = _mm512_cmp_ps_mask(acc, best, _CMP_LT_OQ);
            best = _mm512_mask_mov_ps(best, less, acc);
            index = _mm512_mask_mov_epi32(index, less, _mm512_set1_epi32((int)j));
        }
        _mm512_mask_storeu_epi32(labels + r0, valid, index);
        if (out != NULL)
            _mm512_mask_storeu_ps(out + r0, valid, best);
    }
}

static void small_4(sm_cluster_id *l, float *o, const float *x, size_t ldx, size_t rows, size_t d,
                    const float *cp, size_t k)
{
    small_rows(l, o, x, ldx, rows, d, cp, k, 4);
}
static void small_8(sm_cluster_id *l, float *o, const float *x, size_t ldx, size_t rows, size_t d,
                    const float *cp, size_t k)
{
    small_rows(l, o, x, ldx, rows, d, cp, k, 8);
}
static void small_16(sm_cluster_id *l, float *o, const float *x, size_t ldx, size_t rows, size_t d,
                     const float *cp, size_t k)
{
    small_rows(l, o, x, ldx, rows, d, cp, k, 16);
}

void km_argmin_small(sm_cluster_id *labels, float *dist2, const float *x, size_t ldx, size_t rows,
                     size_t d, const float *cp, size_t k)
{
    size_t w = km_small_width(d);
    if (w == 4)
        small_4(labels, dist2, x, ldx, rows, d, cp, k);
    else if (w == 8)
        small_8(labels, dist2, x, ldx, rows, d, cp, k);
    else
        small_16(labels, dist2, x, ldx, rows, d, cp, k);
}

/* Best and second-best center of gathered rows, 16 rows per register. */
KM_INLINE void best2_rows(sm_cluster_id *best, float *d1, float *d2, float *allt, const float *x,
                          size_t ld, const uint32_t *idx, size_t count, size_t d, const float *cp,
                          size_t k, const int W)
{
    for (size_t r0 = 0; r0 < count; r0 += KM_LANES) {
        size_t left = count - r0;
        __mmask16 valid = left >= KM_LANES ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        __m512 xf[16];
        load_transposed(xf, x, ld, left, d, idx + r0, W);
        __m512 b1 = _mm512_set1_ps(INFINITY), b2 = b1;
        __m512i i1 = _mm512_setzero_si512();
        float *at = allt != NULL ? allt + r0 * k : NULL;
        for (size_t j = 0; j < k; j++) {
            const float *cj = cp + j * (size_t)W;
            __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 16
            for (int f = 0; f < W; f++) {
                __m512 t = _mm512_sub_ps(xf[f], _mm512_set1_ps(cj[f]));
                acc = _mm512_fmadd_ps(t, t, acc);
            }
            if (at != NULL)
                _mm512_storeu_ps(at + j * KM_LANES, acc);
            __mmask16 lt = _mm512_cmp_ps_mask(acc, b1, _CMP_LT_OQ);
            b2 = _mm512_mask_mov_ps(_mm512_min_ps(b2, acc), lt, b1);
            b1 = _mm512_mask_mov_ps(b1, lt, acc);
            i1 = _mm512_mask_mov_epi32(i1, lt, _mm512_set1_epi32((int)j));
        }
        _mm512_mask_storeu_epi32(best + r0, valid, i1);
        _mm512_mask_storeu_ps(d1 + r0, valid, b1);
        _mm512_mask_storeu_ps(d2 + r0, valid, b2);
    }
}

static void best2_4(sm_cluster_id *b, float *d1, float *d2, float *a, const float *x, size_t ld,
                    const uint32_t *idx, size_t count, size_t d, const float *cp, size_t k)
{
    best2_rows(b, d1, d2, a, x, ld, idx, count, d, cp, k, 4);
}
static void best2_8(sm_cluster_id *b, float *d1, float *d2, float *a, const float *x, size_t ld,
                    const uint32_t *idx, size_t count, size_t d, const float *cp, size_t k)
{
    best2_rows(b, d1, d2, a, x, ld, idx, count, d, cp, k, 8);
}
static void best2_16(sm_cluster_id *b, float *d1, float *d2, float *a, const float *x, size_t ld,
                     const uint32_t *idx, size_t count, size_t d, const float *cp, size_t k)
{
    best2_rows(b, d1, d2, a, x, ld, idx, count, d, cp, k, 16);
}

void km_small_best2(sm_cluster_id *best, float *d1, float *d2, float *allt, const float *x,
                    size_t ld, const uint32_t *idx, size_t count, size_t d, const float *cp, size_t k)
{
    size_t w = km_small_width(d);
    if (w == 4)
        best2_4(best, d1, d2, allt, x, ld, idx, count, d, cp, k);
    else if (w == 8)
        best2_8(best, d1, d2, allt, x, ld, idx, count, d, cp, k);
    else
        best2_16(best, d1, d2, allt, x, ld, idx, count, d, cp, k);
}

/* Squared distances of up to 16 rows to L candidates, rows in lanes: d is
 * walked in chunks of W coordinates, each chunk transposed once and compared
 * with every candidate. Candidates are zero-padded to a multiple of W, and
 * the transposed rows are zero beyond d, so padding adds exact zeros. */
KM_INLINE void cand_block(float *out, const float *x, size_t ld, size_t rows, size_t d,
                          const float *cand, size_t ldc, size_t L, const int W)
{
    __m512 acc[KM_LANES];
    for (size_t t = 0; t < L; t++)
        acc[t] = _mm512_setzero_ps();
    for (size_t f0 = 0; f0 < d; f0 += (size_t)W) {
        size_t w = SM_MIN((size_t)W, d - f0);
        __m512 xf[16];
        load_transposed(xf, x + f0, ld, rows, w, NULL, W);
        for (size_t t = 0; t < L; t++) {
            const float *ct = cand + t * ldc + f0;
            __m512 a = acc[t];
#pragma GCC unroll 16
            for (int f = 0; f < W; f++) {
                __m512 u = _mm512_sub_ps(xf[f], _mm512_set1_ps(ct[f]));
                a = _mm512_fmadd_ps(u, u, a);
            }
            acc[t] = a;
        }
    }
    for (size_t t = 0; t < L; t++)
        _mm512_storeu_ps(out + t * KM_LANES, acc[t]);
}

static void cand_block_4(float *out, const float *x, size_t ld, size_t rows, size_t d,
                         const float *cand, size_t ldc, size_t L)
{
    cand_block(out, x, ld, rows, d, cand, ldc, L, 4);
}

static void cand_block_8(float *out, const float *x, size_t ld, size_t rows, size_t d,
                         const float *cand, size_t ldc, size_t L)
{
    cand_block(out, x, ld, rows, d, cand, ldc, L, 8);
}

static void cand_block_16(float *out, const float *x, size_t ld, size_t rows, size_t d,
                          const float *cand, size_t ldc, size_t L)
{
    cand_block(out, x, ld, rows, d, cand, ldc, L, 16);
}

void km_candidate_dists(float *out, const float *x, size_t ld, size_t rows, size_t d,
                        const float *cand, size_t ldc, size_t L)
{
    size_t w = km_candidate_width(d);
    if (w == 4)
        cand_block_4(out, x, ld, rows, d, cand, ldc, L);
    else if (w == 8)
        cand_block_8(out, x, ld, rows, d, cand, ldc, L);
    else
        cand_block_16(out, x, ld, rows, d, cand, ldc, L);
}

#else /* portable path: the same arithmetic lane by lane */

static void lane_values(float v[KM_LANES], const float *x, size_t d, const float *pan,
                        const float *bias, int dot)
{
    for (int l = 0; l < KM_LANES; l++)
        v[l] = 0.0f;
    for (size_t f = 0; f < d; f++)
        for (int l = 0; l < KM_LANES; l++) {
            float c = pan[f * KM_LANES + l];
            if (dot) {
                v[l] = fmaf(x[f], c, v[l]);
            } else {
                float t = c - x[f];
                v[l] = fmaf(t, t, v[l]);
            }
        }
    if (dot)
        for (int l = 0; l < KM_LANES; l++)
            v[l] = fmaf(v[l], -2.0f, bias[l]);
}

static void argmin_portable(sm_cluster_id *labels, float *out, const float *x, size_t ldx,
                            size_t rows, size_t d, const float *panels, const float *bias,
                            size_t np, int dot)
{
    float v[KM_LANES];
    for (size_t r = 0; r < rows; r++) {
        float best = INFINITY;
        size_t best_j = 0;
        int first = 1;
        for (size_t p = 0; p < np; p++) {
            lane_values(v, x + r * ldx, d, panels + p * d * KM_LANES,
                        dot ? bias + p * KM_LANES : NULL, dot);
            for (int l = 0; l < KM_LANES; l++)
                if (first || v[l] < best) {
                    best = v[l];
                    best_j = p * KM_LANES + (size_t)l;
                    first = 0;
                }
        }
        labels[r] = (sm_cluster_id)best_j;
        if (out != NULL)
            out[r] = best;
    }
}

void km_argmin_direct(sm_cluster_id *labels, float *dist2, const float *x, size_t ldx, size_t rows,
                      size_t d, const float *panels, size_t np)
{
    argmin_portable(labels, dist2, x, ldx, rows, d, panels, NULL, np, 0);
}

void km_argmin_dot(sm_cluster_id *labels, float *keys, const float *xc, size_t rows, size_t d,
                   const float *panels, const float *bias, size_t np)
{
    argmin_portable(labels, keys, xc, d, rows, d, panels, bias, np, 1);
}

void km_argmin_small(sm_cluster_id *labels, float *dist2, const float *x, size_t ldx, size_t rows,
                     size_t d, const float *cp, size_t k)
{
    size_t w = km_small_width(d);
    for (size_t r = 0; r < rows; r++) {
        float best = INFINITY;
        size_t best_j = 0;
        for (size_t j = 0; j < k; j++) {
            float acc = 0.0f;
            for (size_t f = 0; f < d; f++) {
                float t = x[r * ldx + f] - cp[j * w + f];
                acc = fmaf(t, t, acc);
            }
            if (j == 0 || acc < best) {
                best = acc;
                best_j = j;
            }
        }
        labels[r] = (sm_cluster_id)best_j;
        if (dist2 != NULL)
            dist2[r] = best;
    }
}

void km_small_best2(sm_cluster_id *best, float *d1, float *d2, float *allt, const float *x,
                    size_t ld, const uint32_t *idx, size_t count, size_t d, const float *cp, size_t k)
{
    size_t w = km_small_width(d);
    for (size_t r = 0; r < count; r++) {
        const float *xr = x + (size_t)idx[r] * ld;
        float b1 = INFINITY, b2 = INFINITY;
        size_t i1 = 0;
        for (size_t j = 0; j < k; j++) {
            float acc = 0.0f;
            for (size_t f = 0; f < d; f++) {
                float t = xr[f] - cp[j * w + f];
                acc = fmaf(t, t, acc);
            }
            if (allt != NULL)
                allt[(r / KM_LANES) * KM_LANES * k + j * KM_LANES + r % KM_LANES] = acc;
            if (acc < b1) {
                b2 = b1;
                b1 = acc;
                i1 = j;
            } else if (acc < b2) {
                b2 = acc;
            }
        }
        best[r] = (sm_cluster_id)i1;
        d1[r] = b1;
        d2[r] = b2;
    }
}

void km_candidate_dists(float *out, const float *x, size_t ld, size_t rows, size_t d,
                        const float *cand, size_t ldc, size_t L)
{
    for (size_t t = 0; t < L; t++)
        for (size_t r = 0; r < KM_LANES; r++) {
            float acc = 0.0f;
            for (size_t f = 0; r < rows && f < d; f++) {
                float u = x[r * ld + f] - cand[t * ldc + f];
                acc = fmaf(u, u, acc);
            }
            out[t * KM_LANES + r] = acc;
        }
}

void km_dist_direct(float *out, size_t ldo, const float *x, size_t ldx, size_t rows, size_t d,
                    const float *panels, size_t np)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t p = 0; p < np; p++)
            lane_values(out + r * ldo + p * KM_LANES, x + r * ldx, d, panels + p * d * KM_LANES,
                        NULL, 0);
}

#endif
