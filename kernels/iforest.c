/* SPDX-License-Identifier: MIT */
/*
 * Isolation Forest (Liu, Ting & Zhou, ICDM 2008; ACM TKDD 6(1), 2012): fit,
 * score, and a versioned byte format for saving a forest. No file I/O here:
 * the engine writes the bytes. Each tree is kept twice: in preorder (the
 * canonical form that is serialised) and as a perfect binary tree of depth
 * ceil(log2 psi) in struct-of-arrays form, where a leaf above the height
 * limit becomes a chain of pass-through nodes (threshold +inf), so scoring
 * walks a fixed number of levels without branches.
 */
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/core.h"
#include "kernels/rng.h"
#include "segmint/anomaly.h"

#define EULER_GAMMA 0.5772156649015329
#define LEAF_MARK 0xFFFFFFFFu
/* Trees built per parallel region; progress is reported between regions. */
#define FIT_CHUNK 32
/* Rows scored together: a block stays in L1 while every tree walks it. */
#define SCORE_BLOCK 256
/* Blocks per parallel region in scoring (progress and cancellation points). */
#define SCORE_CHUNK_BLOCKS 256
#define HEADER_BYTES 48
#define TABLE_PAD 32
#define MAGIC "SMIFORST"

struct sm_iforest {
    uint32_t n_trees;
    uint32_t psi;        /* sample size actually used */
    uint32_t depth;      /* height limit L = ceil(log2 psi) */
    size_t d;
    uint64_t seed;
    double c_psi;        /* c(psi), the score normaliser */
    /* Preorder form: tree j is nodes[2*start[j] .. 2*start[j+1]-1] as
     * (a, b) pairs: internal (feature, threshold bits) or leaf (LEAF_MARK, size). */
    uint64_t *start;     /* n_trees + 1 */
    uint32_t *nodes;
    /* Scoring form: perfect tree, heap order (children of p: 2p+1, 2p+2). */
    size_t n_internal;   /* 2^L - 1 per tree */
    size_t n_leaves;     /* 2^L per tree */
    uint32_t *feat;      /* n_trees * n_internal */
    float *thr;          /* n_trees * n_internal; x <= thr goes left */
    float *leaf;         /* n_trees * n_leaves: depth + c(leaf size) */
};

double sm_iforest_c(uint64_t n)
{
    if (n <= 1)
        return 0.0;
    if (n == 2)
        return 1.0;
    double m = (double)(n - 1);
    return 2.0 * (log(m) + EULER_GAMMA) - 2.0 * m / (double)n;
}

void sm_iforest_params_init(sm_iforest_params *params)
{
    memset(params, 0, sizeof *params);
    params->n_trees = 100;
    params->sample_size = 256;
    params->seed = 0;
    params->n_threads = 0;
}

int sm_iforest_params_check(const sm_iforest_params *params, sm_error *err)
{
    if (params == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "params is NULL");
    if (params->n_trees < 1 || params->n_trees > SM_IFOREST_MAX_TREES)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_trees",
                               "n_trees=%u must be in [1, %u]", params->n_trees,
                               SM_IFOREST_MAX_TREES);
    if (params->sample_size < 2 || params->sample_size > SM_IFOREST_MAX_SAMPLE)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "sample_size",
                               "sample_size=%u must be in [2, %u]", params->sample_size,
                               SM_IFOREST_MAX_SAMPLE);
    if (params->n_threads < 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_threads",
                               "n_threads=%d must be >= 0 (0 = all cores)", params->n_threads);
    return SM_OK;
}

static uint32_t ceil_log2(uint32_t v)
{
    uint32_t l = 0;
    while (((uint64_t)1 << l) < v)
        l++;
    return l;
}

static int thread_count(int requested)
{
#ifdef _OPENMP
    return requested > 0 ? requested : omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

/* --- the scoring layout ------------------------------------------------- */

/* Fills the subtree under heap index p (at depth `depth`) as a leaf: every
 * internal descendant passes rows to the left (threshold +inf; inputs are
 * finite) and every leaf descendant holds the leaf's path length, so the
 * fixed-depth walk ends with the right value whichever way it went. */
static void fill_leaf(uint32_t *feat, float *thr, float *leaf, uint32_t depth_limit, size_t p,
                      uint32_t depth, float value)
{
    size_t first = p, count = 1;
    for (uint32_t level = depth; level < depth_limit; level++) {
        for (size_t q = first; q < first + count; q++) {
            feat[q] = 0;
            thr[q] = INFINITY;
        }
        first = 2 * first + 1;
        count *= 2;
    }
    size_t leaf_base = ((size_t)1 << depth_limit) - 1;
    for (size_t q = first; q < first + count; q++)
        leaf[q - leaf_base] = value;
}

typedef struct place_ctx {
    const uint32_t *nodes; /* pairs */
    uint64_t count;
    uint64_t pos;
    uint64_t leaf_rows;
    uint32_t depth_limit;
    uint32_t psi;
    size_t d;
    uint32_t *feat;
    float *thr;
    float *leaf;
    const char *problem; /* static text of the first failed check */
} place_ctx;

static float bits_to_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t float_to_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* Consumes one subtree in preorder and writes it into the heap layout.
 * Recursion depth <= depth_limit + 1 <= 17. Returns false on the first
 * malformed node (the layout is then garbage and must be discarded). */
static bool place_subtree(place_ctx *c, size_t p, uint32_t depth)
{
    if (c->pos >= c->count) {
        c->problem = "tree ends before its preorder is complete";
        return false;
    }
    uint32_t a = c->nodes[2 * c->pos], b = c->nodes[2 * c->pos + 1];
    c->pos++;
    if (a == LEAF_MARK) {
        if (b < 1 || b > c->psi) {
            c->problem = "leaf size outside [1, sample size]";
            return false;
        }
        c->leaf_rows += b;
        float value = (float)((double)depth + sm_iforest_c(b));
        fill_leaf(c->feat, c->thr, c->leaf, c->depth_limit, p, depth, value);
        return true;
    }
    if (depth >= c->depth_limit) {
        c->problem = "internal node below the height limit";
        return false;
    }
    if ((size_t)a >= c->d) {
        c->problem = "split feature index >= number of features";
        return false;
    }
    float t = bits_to_float(b);
    if (!isfinite(t)) {
        c->problem = "split threshold is not finite";
        return false;
    }
    c->feat[p] = a;
    c->thr[p] = t;
    return place_subtree(c, 2 * p + 1, depth + 1) && place_subtree(c, 2 * p + 2, depth + 1);
}

/* Builds tree j's scoring layout from its preorder; NULL on success, else the
 * failed check. */
static const char *layout_tree(sm_iforest *f, uint32_t j)
{
    place_ctx c = {
        .nodes = f->nodes + 2 * f->start[j],
        .count = f->start[j + 1] - f->start[j],
        .depth_limit = f->depth,
        .psi = f->psi,
        .d = f->d,
        .feat = f->feat + (size_t)j * f->n_internal,
        .thr = f->thr + (size_t)j * f->n_internal,
        .leaf = f->leaf + (size_t)j * f->n_leaves,
    };
    if (!place_subtree(&c, 0, 0))
        return c.problem;
    if (c.pos != c.count)
        return "tree has nodes after its preorder is complete";
    if (c.leaf_rows != f->psi)
        return "leaf sizes do not sum to the sample size";
    return NULL;
}

/* Allocates the object and its scoring arrays (preorder arrays are set by
 * the caller). */
static int forest_alloc(sm_iforest **out, uint32_t n_trees, uint32_t psi, size_t d, sm_error *err)
{
    *out = NULL;
    sm_iforest *f = sm_calloc(1, sizeof *f);
    if (f == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory allocating the forest");
    f->n_trees = n_trees;
    f->psi = psi;
    f->depth = ceil_log2(psi);
    f->d = d;
    f->c_psi = sm_iforest_c(psi);
    f->n_leaves = (size_t)1 << f->depth;
    f->n_internal = f->n_leaves - 1;
    size_t internal_total, leaf_total;
    if (!sm_mul_size(f->n_internal, n_trees, &internal_total) ||
        !sm_mul_size(f->n_leaves, n_trees, &leaf_total) ||
        !sm_add_size(leaf_total, TABLE_PAD, &(size_t){0})) {
        sm_free(f);
        return sm_error_set(err, SM_ERR_OVERFLOW, "forest size overflows");
    }
    f->start = sm_calloc((size_t)n_trees + 1, sizeof *f->start);
    /* The vector lookups read up to 32 entries past a level's start; padding
     * keeps the last tree's reads inside the allocation. */
    f->feat = sm_aligned_alloc(internal_total + TABLE_PAD, sizeof *f->feat);
    f->thr = sm_aligned_alloc(internal_total + TABLE_PAD, sizeof *f->thr);
    f->leaf = sm_aligned_alloc(leaf_total + TABLE_PAD, sizeof *f->leaf);
    if (f->start == NULL || f->feat == NULL || f->thr == NULL || f->leaf == NULL) {
        sm_iforest_destroy(f);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory allocating %u trees of depth %u",
                            n_trees, ceil_log2(psi));
    }
    /* Padding is read (and ignored) by the lookups: give it defined values. */
    memset(f->feat + internal_total, 0, TABLE_PAD * sizeof *f->feat);
    memset(f->thr + internal_total, 0, TABLE_PAD * sizeof *f->thr);
    memset(f->leaf + leaf_total, 0, TABLE_PAD * sizeof *f->leaf);
    *out = f;
    return SM_OK;
}

void sm_iforest_destroy(sm_iforest *forest)
{
    if (forest == NULL)
        return;
    sm_free(forest->start);
    sm_free(forest->nodes);
    sm_free(forest->feat);
    sm_free(forest->thr);
    sm_free(forest->leaf);
    sm_free(forest);
}

uint32_t sm_iforest_n_trees(const sm_iforest *forest) { return forest->n_trees; }
uint32_t sm_iforest_sample_size(const sm_iforest *forest) { return forest->psi; }
uint32_t sm_iforest_depth_limit(const sm_iforest *forest) { return forest->depth; }
size_t sm_iforest_n_features(const sm_iforest *forest) { return forest->d; }

/* --- fit ------------------------------------------------------------------ */

/* Per-tree scratch for building one tree. */
typedef struct tree_scratch {
    uint64_t *rows;    /* psi sampled row indices */
    uint64_t *hash;    /* open-addressing set for Floyd's sampling; hash_mask+1 slots */
    size_t hash_mask;
    uint32_t *features; /* a permutation of 0..d-1, drawn from without replacement */
    uint32_t *out;     /* preorder pairs, 2 * (2 psi - 1) */
    uint64_t n_out;    /* pairs written */
} tree_scratch;

typedef struct build_ctx {
    const float *x;
    size_t d, ld;
    uint32_t depth_limit;
    sm_rng rng;
    tree_scratch *s;
} build_ctx;

static void emit(tree_scratch *s, uint32_t a, uint32_t b)
{
    s->out[2 * s->n_out] = a;
    s->out[2 * s->n_out + 1] = b;
    s->n_out++;
}

/* Floyd's algorithm draws psi distinct rows of n with psi draws; membership is
 * an open-addressing set keyed by row + 1 (0 = empty). Rows are then sorted so
 * the tree builder touches memory in order. */
static void sample_rows(build_ctx *b, size_t n, uint32_t psi)
{
    tree_scratch *s = b->s;
    if ((size_t)psi == n) {
        for (size_t i = 0; i < n; i++)
            s->rows[i] = i;
        return;
    }
    memset(s->hash, 0, (s->hash_mask + 1) * sizeof *s->hash);
    size_t taken = 0;
    for (size_t j = n - psi; j < n; j++) {
        uint64_t t = sm_rng_below(&b->rng, (uint64_t)j + 1);
        uint64_t pick = t;
        for (int pass = 0; pass < 2; pass++) {
            size_t slot = (size_t)((pick * 0x9E3779B97F4A7C15ull) >> 20) & s->hash_mask;
            bool present = false;
            while (s->hash[slot] != 0) {
                if (s->hash[slot] == pick + 1) {
                    present = true;
                    break;
                }
                slot = (slot + 1) & s->hash_mask;
            }
            if (!present) {
                s->hash[slot] = pick + 1;
                s->rows[taken++] = pick;
                break;
            }
            pick = j; /* t was taken: j itself is new (Floyd) */
        }
    }
    SM_ASSERT(taken == psi);
    /* Shell sort with Ciura's gaps: few hundred elements, no allocation. */
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < SM_ARRAY_LEN(gaps); g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < taken; i++) {
            uint64_t v = s->rows[i];
            size_t k = i;
            while (k >= gap && s->rows[k - gap] > v) {
                s->rows[k] = s->rows[k - gap];
                k -= gap;
            }
            s->rows[k] = v;
        }
    }
}

/* The largest float <= v: with it, x <= threshold for float x means exactly
 * x <= v, so the split is the one drawn in double. */
static float float_at_or_below(double v)
{
    float t = (float)v;
    if ((double)t > v)
        t = nextafterf(t, -INFINITY);
    return t;
}

/* Splits rows[lo, hi) recursively, writing preorder nodes. */
static void build_node(build_ctx *b, size_t lo, size_t hi, uint32_t depth)
{
    tree_scratch *s = b->s;
    size_t size = hi - lo;
    if (depth >= b->depth_limit || size <= 1) {
        emit(s, LEAF_MARK, (uint32_t)size);
        return;
    }
    const float *x = b->x;
    const uint64_t *rows = s->rows;
    /* Draw features without replacement until one varies in this node (the
     * choice is uniform over the non-constant features, as scikit-learn's
     * random splitter does); if none varies the node cannot be split. */
    uint32_t feature = 0;
    float lo_v = 0.0f, hi_v = 0.0f;
    bool found = false;
    for (size_t j = 0; j < b->d && !found; j++) {
        size_t r = j + (size_t)sm_rng_below(&b->rng, b->d - j);
        uint32_t tmp = s->features[j];
        s->features[j] = s->features[r];
        s->features[r] = tmp;
        feature = s->features[j];
        float mn = x[rows[lo] * b->ld + feature], mx = mn;
        for (size_t i = lo + 1; i < hi; i++) {
            float v = x[rows[i] * b->ld + feature];
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        if (mx > mn) {
            found = true;
            lo_v = mn;
            hi_v = mx;
        }
    }
    if (!found) {
        emit(s, LEAF_MARK, (uint32_t)size);
        return;
    }
    double u = sm_rng_uniform(&b->rng);
    double split = (double)lo_v + u * ((double)hi_v - (double)lo_v);
    if (split >= (double)hi_v) /* rounding reached max: keep both sides non-empty */
        split = lo_v;
    float threshold = float_at_or_below(split);
    /* invariant: lo_v <= threshold < hi_v, so both children are non-empty */
    size_t i = lo, j = hi;
    while (i < j) {
        if (x[s->rows[i] * b->ld + feature] <= threshold) {
            i++;
        } else {
            j--;
            uint64_t tmp = s->rows[i];
            s->rows[i] = s->rows[j];
            s->rows[j] = tmp;
        }
    }
    SM_ASSERT(i > lo && i < hi);
    emit(s, feature, float_to_bits(threshold));
    build_node(b, lo, i, depth + 1);
    build_node(b, i, hi, depth + 1);
}

static void scratch_free(tree_scratch *s, size_t count)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < count; i++) {
        sm_free(s[i].rows);
        sm_free(s[i].hash);
        sm_free(s[i].features);
        sm_free(s[i].out);
    }
    sm_free(s);
}

static tree_scratch *scratch_alloc(size_t count, uint32_t psi, size_t d)
{
    tree_scratch *s = sm_calloc(count, sizeof *s);
    if (s == NULL)
        return NULL;
    size_t slots = 1;
    while (slots < 2 * (size_t)psi)
        slots *= 2;
    for (size_t i = 0; i < count; i++) {
        s[i].rows = sm_alloc_array(psi, sizeof *s[i].rows);
        s[i].hash = sm_alloc_array(slots, sizeof *s[i].hash);
        s[i].hash_mask = slots - 1;
        s[i].features = sm_alloc_array(d, sizeof *s[i].features);
        s[i].out = sm_alloc_array(2 * (2 * (size_t)psi - 1), sizeof *s[i].out);
        if (s[i].rows == NULL || s[i].hash == NULL || s[i].features == NULL || s[i].out == NULL) {
            scratch_free(s, count);
            return NULL;
        }
    }
    return s;
}

int sm_iforest_fit(const sm_iforest_params *params, const float *x, size_t n, size_t d, size_t ld,
                   sm_iforest **out, sm_error *err)
{
    if (out == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    int rc = sm_iforest_params_check(params, err);
    if (rc != SM_OK)
        return rc;
    if (x == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "x is NULL");
    if (n < 2)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n",
                               "n_samples=%zu should be >= 2 to build an isolation tree", n);
    if (d < 1 || d >= (size_t)LEAF_MARK)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "d",
                               "n_features=%zu must be in [1, %u]", d, LEAF_MARK - 1);
    if (ld < d)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "ld",
                               "leading dimension %zu < n_features %zu", ld, d);
    uint32_t psi = (size_t)params->sample_size < n ? params->sample_size : (uint32_t)n;
    uint32_t n_trees = params->n_trees;
    sm_iforest *f = NULL;
    rc = forest_alloc(&f, n_trees, psi, d, err);
    if (rc != SM_OK)
        return rc;
    f->seed = params->seed;

    size_t chunk = SM_MIN((size_t)FIT_CHUNK, (size_t)n_trees);
    tree_scratch *scratch = scratch_alloc(chunk, psi, d);
    uint64_t capacity = 0;
    if (scratch == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for tree-building scratch");
        goto out_free_forest;
    }
    const int threads = thread_count(params->n_threads);
    for (uint32_t first = 0; first < n_trees; first += (uint32_t)chunk) {
        uint32_t count = (uint32_t)SM_MIN((size_t)chunk, (size_t)(n_trees - first));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) default(none) \
    shared(scratch, x, n, d, ld, psi, count, first, f, params)
        for (uint32_t j = 0; j < count; j++) {
            build_ctx b = {.x = x, .d = d, .ld = ld, .depth_limit = f->depth, .s = &scratch[j]};
            sm_rng_init(&b.rng, params->seed, (uint64_t)first + j);
            for (size_t q = 0; q < d; q++)
                scratch[j].features[q] = (uint32_t)q;
            scratch[j].n_out = 0;
            sample_rows(&b, n, psi);
            build_node(&b, 0, psi, 0);
        }
        /* Append the chunk's preorders in tree order. */
        uint64_t total = f->start[first];
        for (uint32_t j = 0; j < count; j++)
            total += scratch[j].n_out;
        if (total > capacity) {
            uint64_t grown = SM_MAX(total, capacity + capacity / 2);
            uint32_t *nodes = sm_realloc_array(f->nodes, (size_t)grown, 2 * sizeof *nodes);
            if (nodes == NULL) {
                rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory storing %u trees", n_trees);
                goto out_free_scratch;
            }
            f->nodes = nodes;
            capacity = grown;
        }
        for (uint32_t j = 0; j < count; j++) {
            uint64_t at = f->start[first + j];
            memcpy(f->nodes + 2 * at, scratch[j].out, (size_t)scratch[j].n_out * 2 * sizeof(uint32_t));
            f->start[first + j + 1] = at + scratch[j].n_out;
            const char *problem = layout_tree(f, first + j);
            if (SM_NEVER(problem != NULL)) {
                rc = sm_error_set(err, SM_ERR_INVALID_STATE, "internal: tree %u: %s", first + j,
                                  problem);
                goto out_free_scratch;
            }
        }
        if (sm_progress_report(&params->progress, "iforest fit", first + count, n_trees)) {
            rc = sm_error_set(err, SM_ERR_CANCELLED, "isolation forest fit cancelled");
            goto out_free_scratch;
        }
    }
    scratch_free(scratch, chunk);
    *out = f;
    return SM_OK;

out_free_scratch:
    scratch_free(scratch, chunk);
out_free_forest:
    sm_iforest_destroy(f);
    return rc;
}

/* --- score ---------------------------------------------------------------- */

/* Walks every tree for rows [0, m) of a block (m <= SCORE_BLOCK) level by
 * level: all rows take one step before any takes the next, so the steps of
 * different rows are independent and overlap in the pipeline. acc[i] gets
 * the path lengths summed in tree order. */
static void score_block_scalar(const sm_iforest *f, double *acc, const float *xb, size_t m,
                               size_t ld)
{
    uint32_t node[SCORE_BLOCK];
    for (size_t i = 0; i < m; i++)
        acc[i] = 0.0;
    for (uint32_t t = 0; t < f->n_trees; t++) {
        const uint32_t *feat = f->feat + (size_t)t * f->n_internal;
        const float *thr = f->thr + (size_t)t * f->n_internal;
        const float *leaf = f->leaf + (size_t)t * f->n_leaves - f->n_internal;
        for (size_t i = 0; i < m; i++)
            node[i] = 0;
        for (uint32_t level = 0; level < f->depth; level++) {
            for (size_t i = 0; i < m; i++) {
                uint32_t p = node[i];
                float v = xb[i * ld + feat[p]];
                node[i] = 2 * p + 1 + (v > thr[p]);
            }
        }
        for (size_t i = 0; i < m; i++)
            acc[i] += (double)leaf[node[i]];
    }
}

#if defined(__AVX512F__)
/*
 * The same walk, 16 rows per vector. Gathers are slow on the machines we
 * measured (about one cycle per element on Zen 4, several times a scalar
 * load), so the walk avoids them where it can:
 *  - node features and thresholds of levels 0..7 (at most 128 nodes) come
 *    from in-register table lookups (vpermt2d and blends);
 *  - leaf values of trees up to depth 8 (256 leaves) likewise;
 *  - with d <= 16 the block is transposed to columns once, and a row's value
 *    at its node's feature is a masked load per feature (or, at levels 0..2,
 *    a blend of the few candidate columns) instead of a gather.
 * Path lengths are added per row in tree order as in the scalar walk, so
 * both give identical bits. Needs m % 16 == 0 and 16 * ld < 2^31.
 */

/* tab[q] for each lane, for a table of 2^w entries (w <= 8) at tab, where
 * q < 2^w. Reads max(16, 2^w) entries: the arrays are padded for that. */
static inline __m512i lut_epi32(const uint32_t *tab, __m512i q, uint32_t w)
{
    if (w <= 4)
        return _mm512_permutexvar_epi32(q, _mm512_loadu_si512(tab));
    __m512i r[8];
    const uint32_t pairs = 1u << (w - 5);
    for (uint32_t k = 0; k < pairs; k++)
        r[k] = _mm512_permutex2var_epi32(_mm512_loadu_si512(tab + 32 * k), q,
                                         _mm512_loadu_si512(tab + 32 * k + 16));
    for (uint32_t bit = 5, live = pairs; bit < w; bit++, live /= 2) {
        __mmask16 high = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1 << bit));
        for (uint32_t k = 0; k < live / 2; k++)
            r[k] = _mm512_mask_blend_epi32(high, r[2 * k], r[2 * k + 1]);
    }
    return r[0];
}

static inline __m512 lut_ps(const float *tab, __m512i q, uint32_t w)
{
    return _mm512_castsi512_ps(lut_epi32((const uint32_t *)(const void *)tab, q, w));
}

/* Lookups above this width use gathers. */
#define LUT_MAX_BITS 8u
/* Levels whose x values are blends of contiguous column loads (2^level
 * candidate columns) in the transposed path. */
#define BLEND_LEVELS 3u
/* Widest d for the transposed path. */
#define NARROW_D 16u

static void score_block_avx512(const sm_iforest *f, double *acc, const float *xb, size_t m,
                               size_t ld)
{
    enum { GROUPS = SCORE_BLOCK / 16 };
    __m512i node[GROUPS];
    __m512d sum_lo[GROUPS], sum_hi[GROUPS];
    /* Columns of the block for the narrow path: xt[j * SCORE_BLOCK + i]. */
    _Alignas(64) float xt[NARROW_D * SCORE_BLOCK];
    const size_t groups = m / 16, d = f->d;
    const bool narrow = d <= NARROW_D;
    const uint32_t depth = f->depth;
    const __m512i lane_row = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)ld));
    const __m512i one = _mm512_set1_epi32(1);
    if (narrow)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < d; j++)
                xt[j * SCORE_BLOCK + i] = xb[i * ld + j];
    for (size_t g = 0; g < groups; g++) {
        sum_lo[g] = _mm512_setzero_pd();
        sum_hi[g] = _mm512_setzero_pd();
    }
    for (uint32_t t = 0; t < f->n_trees; t++) {
        const uint32_t *feat = f->feat + (size_t)t * f->n_internal;
        const float *thr = f->thr + (size_t)t * f->n_internal;
        const float *leaf = f->leaf + (size_t)t * f->n_leaves;
        for (size_t g = 0; g < groups; g++)
            node[g] = _mm512_setzero_si512();
        for (uint32_t level = 0; level < depth; level++) {
            const uint32_t first = (1u << level) - 1; /* heap index of the level's first node */
            const __m512i vfirst = _mm512_set1_epi32((int)first);
            const bool lut = level <= LUT_MAX_BITS - 1;
            for (size_t g = 0; g < groups; g++) {
                const __m512i p = node[g];
                const __m512i q = _mm512_sub_epi32(p, vfirst);
                const float *xg = xt + 16 * g;
                __m512 v, th;
                if (narrow && level < BLEND_LEVELS) {
                    __m512 c[1u << BLEND_LEVELS];
                    const uint32_t width = 1u << level;
                    for (uint32_t k = 0; k < width; k++)
                        c[k] = _mm512_load_ps(xg + (size_t)feat[first + k] * SCORE_BLOCK);
                    for (uint32_t bit = 0, live = width; bit < level; bit++, live /= 2) {
                        __mmask16 high = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1 << bit));
                        for (uint32_t k = 0; k < live / 2; k++)
                            c[k] = _mm512_mask_blend_ps(high, c[2 * k], c[2 * k + 1]);
                    }
                    v = c[0];
                    th = lut_ps(thr + first, q, level);
                } else {
                    __m512i fi;
                    if (lut) {
                        fi = lut_epi32(feat + first, q, level);
                        th = lut_ps(thr + first, q, level);
                    } else {
                        fi = _mm512_i32gather_epi32(p, (const void *)feat, 4);
                        th = _mm512_i32gather_ps(p, thr, 4);
                    }
                    if (narrow) {
                        v = _mm512_load_ps(xg);
                        for (size_t j = 1; j < d; j++)
                            v = _mm512_mask_load_ps(
                                v, _mm512_cmpeq_epi32_mask(fi, _mm512_set1_epi32((int)j)),
                                xg + j * SCORE_BLOCK);
                    } else {
                        v = _mm512_i32gather_ps(_mm512_add_epi32(lane_row, fi), xb + g * 16 * ld, 4);
                    }
                }
                __mmask16 right = _mm512_cmp_ps_mask(v, th, _CMP_GT_OQ);
                __m512i child = _mm512_add_epi32(_mm512_add_epi32(p, p), one);
                node[g] = _mm512_mask_add_epi32(child, right, child, one);
            }
        }
        const __m512i vleaf = _mm512_set1_epi32((int)f->n_internal);
        for (size_t g = 0; g < groups; g++) {
            __m512i q = _mm512_sub_epi32(node[g], vleaf);
            __m512 lv = depth <= LUT_MAX_BITS ? lut_ps(leaf, q, depth)
                                               : _mm512_i32gather_ps(q, leaf, 4);
            sum_lo[g] = _mm512_add_pd(sum_lo[g], _mm512_cvtps_pd(_mm512_castps512_ps256(lv)));
            sum_hi[g] = _mm512_add_pd(sum_hi[g],
                                      _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
                                          _mm512_castps_pd(lv), 1))));
        }
    }
    for (size_t g = 0; g < groups; g++) {
        _mm512_storeu_pd(acc + 16 * g, sum_lo[g]);
        _mm512_storeu_pd(acc + 16 * g + 8, sum_hi[g]);
    }
}
#endif

int sm_iforest_score(const sm_iforest *forest, double *scores, const float *x, size_t n, size_t d,
                     size_t ld, int n_threads, const sm_progress *progress, sm_error *err)
{
    if (forest == NULL || scores == NULL || (x == NULL && n > 0))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "forest, scores or x is NULL");
    if (d != forest->d)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "d",
                               "the forest was fitted on %zu features, the input has %zu",
                               forest->d, d);
    if (ld < d)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "ld",
                               "leading dimension %zu < n_features %zu", ld, d);
    if (n_threads < 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "n_threads",
                               "n_threads=%d must be >= 0", n_threads);
    const double scale = -1.0 / ((double)forest->n_trees * forest->c_psi);
    const size_t n_blocks = sm_block_count(n, SCORE_BLOCK);
    const int threads = thread_count(n_threads);
    /* 32-bit gather offsets reach 16 rows of the block only if 16 ld < 2^31. */
    const bool wide = ld <= (size_t)INT32_MAX / 16;
    for (size_t first = 0; first < n_blocks; first += SCORE_CHUNK_BLOCKS) {
        size_t last = SM_MIN(n_blocks, first + SCORE_CHUNK_BLOCKS);
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) default(none) \
    shared(forest, scores, x, n, ld, first, last, scale) firstprivate(wide)
        for (size_t blk = first; blk < last; blk++) {
            double acc[SCORE_BLOCK];
            size_t r0 = blk * SCORE_BLOCK;
            size_t m = SM_MIN((size_t)SCORE_BLOCK, n - r0);
            const float *xb = x + r0 * ld;
#if defined(__AVX512F__)
            size_t m16 = wide ? m - m % 16 : 0;
            if (m16 > 0)
                score_block_avx512(forest, acc, xb, m16, ld);
            if (m16 < m)
                score_block_scalar(forest, acc + m16, xb + m16 * ld, m - m16, ld);
#else
            (void)wide;
            score_block_scalar(forest, acc, xb, m, ld);
#endif
            for (size_t i = 0; i < m; i++)
                scores[r0 + i] = exp2(acc[i] * scale);
        }
        uint64_t done = SM_MIN((uint64_t)last * SCORE_BLOCK, (uint64_t)n);
        if (sm_progress_report(progress, "iforest score", done, n))
            return sm_error_set(err, SM_ERR_CANCELLED, "isolation forest scoring cancelled");
    }
    return SM_OK;
}

/* --- serialisation -------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint64_t fnv1a64(const uint8_t *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

size_t sm_iforest_serialized_size(const sm_iforest *forest)
{
    return HEADER_BYTES + 4 * (size_t)forest->n_trees + 8 * (size_t)forest->start[forest->n_trees] +
           8;
}

int sm_iforest_serialize(const sm_iforest *forest, uint8_t *buf, size_t capacity, sm_error *err)
{
    if (forest == NULL || buf == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "forest or buf is NULL");
    size_t need = sm_iforest_serialized_size(forest);
    if (capacity < need)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "capacity",
                               "buffer of %zu bytes is smaller than the %zu the model needs",
                               capacity, need);
    uint64_t total = forest->start[forest->n_trees];
    memcpy(buf, MAGIC, 8);
    put_u32(buf + 8, SM_IFOREST_FORMAT_VERSION);
    put_u32(buf + 12, forest->n_trees);
    put_u32(buf + 16, forest->psi);
    put_u32(buf + 20, forest->depth);
    put_u64(buf + 24, forest->d);
    put_u64(buf + 32, forest->seed);
    put_u64(buf + 40, total);
    uint8_t *p = buf + HEADER_BYTES;
    for (uint32_t j = 0; j < forest->n_trees; j++, p += 4)
        put_u32(p, (uint32_t)(forest->start[j + 1] - forest->start[j]));
    for (uint64_t i = 0; i < 2 * total; i++, p += 4)
        put_u32(p, forest->nodes[i]);
    put_u64(p, fnv1a64(buf, (size_t)(p - buf)));
    return SM_OK;
}

static int corrupt(sm_error *err, uint64_t offset, const char *what)
{
    return sm_error_set_at(err, SM_ERR_PARSE, NULL, offset + 1, 0, "model",
                           "not a valid segmint isolation forest: %s", what);
}

int sm_iforest_deserialize(const uint8_t *buf, size_t len, sm_iforest **out, sm_error *err)
{
    if (out == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (buf == NULL && len > 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "buf is NULL");
    if (len < 8 || memcmp(buf, MAGIC, 8) != 0)
        return corrupt(err, 0, "missing the SMIFORST magic");
    if (len < HEADER_BYTES + 8)
        return corrupt(err, len, "truncated header");
    uint32_t version = get_u32(buf + 8);
    if (version > SM_IFOREST_FORMAT_VERSION)
        return sm_error_set_at(err, SM_ERR_SCHEMA, NULL, 9, 0, "model",
                               "model format version %u is newer than this build's %u", version,
                               SM_IFOREST_FORMAT_VERSION);
    if (version != SM_IFOREST_FORMAT_VERSION)
        return corrupt(err, 8, "unknown format version");
    /* The hash covers everything, so a flipped bit anywhere is refused before
     * any field is trusted. */
    if (get_u64(buf + len - 8) != fnv1a64(buf, len - 8))
        return corrupt(err, len - 8, "checksum mismatch (file damaged or truncated)");
    uint32_t n_trees = get_u32(buf + 12), psi = get_u32(buf + 16), depth = get_u32(buf + 20);
    uint64_t d = get_u64(buf + 24), seed = get_u64(buf + 32), total = get_u64(buf + 40);
    if (n_trees < 1 || n_trees > SM_IFOREST_MAX_TREES)
        return corrupt(err, 12, "tree count out of range");
    if (psi < 2 || psi > SM_IFOREST_MAX_SAMPLE)
        return corrupt(err, 16, "sample size out of range");
    if (depth != ceil_log2(psi))
        return corrupt(err, 20, "height limit is not ceil(log2(sample size))");
    if (d < 1 || d >= LEAF_MARK || d > SIZE_MAX)
        return corrupt(err, 24, "feature count out of range");
    /* Each tree has at most 2 psi - 1 nodes; bounding total first keeps the
     * size arithmetic below from overflowing. */
    if (total < n_trees || total > (uint64_t)n_trees * (2 * (uint64_t)psi - 1))
        return corrupt(err, 40, "node count out of range");
    uint64_t expect = HEADER_BYTES + 4 * (uint64_t)n_trees + 8 * total + 8;
    if ((uint64_t)len != expect)
        return corrupt(err, len, "length does not match the header");

    sm_iforest *f = NULL;
    int rc = forest_alloc(&f, n_trees, psi, (size_t)d, err);
    if (rc != SM_OK)
        return rc;
    f->seed = seed;
    f->nodes = sm_alloc_array((size_t)total, 2 * sizeof *f->nodes);
    if (f->nodes == NULL) {
        sm_iforest_destroy(f);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory loading %" PRIu64 " nodes", total);
    }
    const uint8_t *p = buf + HEADER_BYTES;
    uint64_t sum = 0;
    for (uint32_t j = 0; j < n_trees; j++, p += 4) {
        uint32_t count = get_u32(p);
        if (count < 1 || count > 2 * (uint64_t)psi - 1 || sum + count > total) {
            sm_iforest_destroy(f);
            return corrupt(err, (uint64_t)(p - buf), "tree node count out of range");
        }
        f->start[j] = sum;
        sum += count;
    }
    f->start[n_trees] = sum;
    if (sum != total) {
        sm_iforest_destroy(f);
        return corrupt(err, 40, "tree node counts do not sum to the total");
    }
    for (uint64_t i = 0; i < 2 * total; i++, p += 4)
        f->nodes[i] = get_u32(p);
    for (uint32_t j = 0; j < n_trees; j++) {
        const char *problem = layout_tree(f, j);
        if (problem != NULL) {
            uint64_t at = HEADER_BYTES + 4 * (uint64_t)n_trees + 8 * f->start[j];
            sm_iforest_destroy(f);
            return sm_error_set_at(err, SM_ERR_PARSE, NULL, at + 1, 0, "model",
                                   "not a valid segmint isolation forest: tree %u: %s", j, problem);
        }
    }
    *out = f;
    return SM_OK;
}
