/* SPDX-License-Identifier: MIT */
/*
 * Frequent itemset miner: depth-first over a set-enumeration tree with items
 * coded by ascending support. The root's rows are written in code order by a
 * transpose; each node's conditional database is built by occurrence delivery
 * (Uno et al., LCM ver. 2, FIMI'04), reduced to the items still frequent
 * there, with identical transactions merged (weights); once at most 64 items
 * remain, transactions become 64-bit masks. Items in every transaction of a
 * node (perfect extensions, Borgelt FIMI'04) are hoisted: counted as 2^m
 * subsets, or enumerated when writing. For kind all a node counts the pairs
 * of its items (a triangle, or per-candidate rows over masks), so children
 * know their items without a database and leaves get none (Grahne and Zhu's
 * FP-array, FIMI'03); when only counting, small subtrees are counted from
 * pattern weights by superset sums. Closed and maximal sets keep the
 * "earlier" items in the databases so that closure and maximality are
 * decided locally (LCM's prefix-preserving test), which keeps branches
 * independent. Top-level branches run in parallel; a branch whose turn it is
 * writes straight to the sink, the others buffer (bounded) and wait.
 * No I/O here; the caller's sink does the writing.
 */
#include "segmint/fim.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__AVX512F__) || defined(__BMI2__)
#include <immintrin.h>
#endif

#include "kernels/core.h"

/* --- parameters ------------------------------------------------------------------ */

void sm_fim_params_init(sm_fim_params *p)
{
    memset(p, 0, sizeof *p);
    p->min_support = 0.01;
    p->support_is_count = false;
    p->max_len = SM_FIM_NO_MAX_LEN;
    p->kind = SM_FIM_ALL;
    p->max_itemsets = 0;
    p->n_threads = 0;
}

int sm_fim_params_check(const sm_fim_params *p, sm_error *err)
{
    if (p == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "params is NULL");
#define FIELD_FAIL(field_name, ...)                                                                \
    do {                                                                                           \
        sm_error_set(err, SM_ERR_INVALID_ARG, __VA_ARGS__);                                        \
        if (err)                                                                                   \
            strncpy(err->field, field_name, sizeof err->field - 1);                                \
        return SM_ERR_INVALID_ARG;                                                                 \
    } while (0)
    double s = p->min_support;
    if (isnan(s))
        FIELD_FAIL("min_support", "min_support is NaN");
    if (!(s > 0))
        FIELD_FAIL("min_support", "min_support must be > 0, got %g", s);
    if (p->support_is_count) {
        if (s != floor(s) || s > 18446744073709549568.0)
            FIELD_FAIL("min_support", "an absolute min_support must be a whole count, got %g", s);
    } else if (s > 1) {
        FIELD_FAIL("min_support", "a fractional min_support must be in (0, 1], got %g "
                                  "(give an absolute count to mean baskets)", s);
    }
    if (p->max_len == 0)
        FIELD_FAIL("max_len", "max_len must be >= 1 (SM_FIM_NO_MAX_LEN for no limit)");
    if (p->kind != SM_FIM_ALL && p->kind != SM_FIM_CLOSED && p->kind != SM_FIM_MAXIMAL)
        FIELD_FAIL("kind", "kind must be all, closed or maximal, got %d", (int)p->kind);
    if (p->n_threads < 0)
        FIELD_FAIL("n_threads", "n_threads must be >= 0 (0 = all cores), got %d", p->n_threads);
#undef FIELD_FAIL
    return SM_OK;
}

int sm_fim_min_count(const sm_fim_params *p, uint64_t n_baskets, sm_count *out, sm_error *err)
{
    int rc = sm_fim_params_check(p, err);
    if (rc != SM_OK)
        return rc;
    if (p->support_is_count) {
        *out = (sm_count)p->min_support;
    } else {
        /* The factor absorbs the binary error of decimal fractions (0.07*100 = 7.000000000000001). */
        double c = ceil(p->min_support * (double)n_baskets * (1.0 - 0x1p-40));
        *out = c < 1 ? 1 : (sm_count)c;
    }
    return SM_OK;
}

/* --- per-thread stack arena --------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    _Alignas(64) unsigned char data[];
} chunk;

typedef struct arena {
    chunk *first, *cur;
} arena;

typedef struct amark {
    chunk *c;
    size_t used;
} amark;

static void *arena_alloc(arena *a, size_t bytes)
{
    bytes = (bytes + 63) & ~(size_t)63;
    chunk *c = a->cur;
    while (c != NULL && c->cap - c->used < bytes) {
        c = c->next;
        if (c != NULL)
            c->used = 0;
    }
    if (c == NULL) {
        size_t cap = SM_MAX(bytes, (size_t)1 << 20);
        c = sm_aligned_alloc(1, sizeof(chunk) + cap);
        if (c == NULL)
            return NULL;
        c->next = NULL;
        c->cap = cap;
        c->used = 0;
        /* append after the last chunk so marks stay ordered */
        if (a->first == NULL) {
            a->first = c;
        } else {
            chunk *last = a->cur ? a->cur : a->first;
            while (last->next != NULL)
                last = last->next;
            last->next = c;
        }
    }
    a->cur = c;
    void *p = c->data + c->used;
    c->used += bytes;
    return p;
}

static amark arena_mark(const arena *a)
{
    amark m = {a->cur, a->cur ? a->cur->used : 0};
    return m;
}

static void arena_release(arena *a, amark m)
{
    if (m.c == NULL) {
        a->cur = a->first;
        if (a->cur)
            a->cur->used = 0;
        return;
    }
    a->cur = m.c;
    m.c->used = m.used;
}

static void arena_free(arena *a)
{
    chunk *c = a->first;
    while (c != NULL) {
        chunk *next = c->next;
        sm_free(c);
        c = next;
    }
    a->first = a->cur = NULL;
}

/* --- shared state ------------------------------------------------------------------------ */

/* Output of one top-level branch that is not yet its turn: records of
 * [len, support lo, support hi, items...]. */
typedef struct unit_out {
    uint32_t *buf;
    size_t n, cap;
    int done; /* guarded by the mutex */
} unit_out;

enum { UNIT_BUFFER_WORDS = 1 << 20 }; /* 4 MiB per waiting branch */

typedef struct miner {
    uint32_t nf;                 /* frequent items (global codes 0..nf-1) */
    const sm_item_id *item_of;   /* code -> item id */
    uint32_t minsup;
    sm_fim_kind kind;
    uint32_t max_len;
    sm_fim_sink_fn sink;
    void *user;
    sm_count cap;                /* 0 = none */
    const sm_progress *progress;

    unit_out *units;
    size_t n_units;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_size_t head;          /* next unit whose output goes to the sink */
    atomic_int stop;             /* set on error, cancel, cap */
    atomic_int first_error;      /* first failure status (0 none) */
    sm_count emitted;            /* touched only by the thread owning the head */
    bool truncated;
    atomic_uint_fast64_t counted; /* count mode with a cap */
    atomic_size_t units_done;
    atomic_int over_cap;         /* count mode: the count passed the cap */
} miner;

typedef struct tview {
    const uint32_t *items;
    uint32_t len;
    uint32_t w;
} tview;

typedef struct worker {
    miner *m;
    arena ar;
    uint32_t *cnt;      /* nf, kept zero between uses */
    uint32_t *newcode;  /* nf */
    uint32_t *touched;  /* nf */
    uint64_t *bits;     /* nf bits, kept zero between uses */
    uint32_t *prefix;   /* global codes; nf + 1 */
    uint32_t plen;
    uint32_t *pe;       /* hoisted perfect extensions (kind all); nf */
    uint32_t pelen;
    uint32_t *scratch;  /* one itemset's codes; nf + 1 */
    sm_item_id *ids;    /* one itemset's ids; nf + 1 */
    sm_count count;     /* itemsets counted (count mode) */
    sm_count published; /* part of count already added to m->counted */
    size_t unit;
    bool is_head;
    bool master;
    uint64_t ticks;
} worker;

#define STOPPED 1 /* internal: unwind because m->stop is set */

static void set_error(miner *m, int code)
{
    int expected = 0;
    atomic_compare_exchange_strong(&m->first_error, &expected, code);
    atomic_store(&m->stop, 1);
}

static void wake_all(miner *m)
{
    pthread_mutex_lock(&m->mu);
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

/* --- emission ------------------------------------------------------------------------------ */

/* Writes one itemset to the sink; only the head's thread calls this. */
static int sink_call(miner *m, const sm_item_id *ids, uint32_t len, sm_count support)
{
    if (m->cap != 0 && m->emitted >= m->cap) {
        m->truncated = true;
        atomic_store(&m->stop, 1);
        return STOPPED;
    }
    int rc = m->sink(m->user, ids, len, support);
    if (rc != 0) {
        set_error(m, rc < 0 ? rc : SM_ERR_CANCELLED);
        return STOPPED;
    }
    m->emitted++;
    return SM_OK;
}

static int flush_unit(miner *m, unit_out *u)
{
    size_t i = 0;
    int rc = SM_OK;
    while (i < u->n && rc == SM_OK) {
        uint32_t len = u->buf[i];
        sm_count support = (sm_count)u->buf[i + 1] | (sm_count)u->buf[i + 2] << 32;
        rc = sink_call(m, u->buf + i + 3, len, support);
        i += 3 + (size_t)len;
    }
    sm_free(u->buf);
    u->buf = NULL;
    u->n = u->cap = 0;
    return rc;
}

static void sort_ids(sm_item_id *a, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        sm_item_id x = a[i];
        uint32_t j = i;
        for (; j > 0 && a[j - 1] > x; j--)
            a[j] = a[j - 1];
        a[j] = x;
    }
}

/* One itemset given by global codes. */
static int emit(worker *w, const uint32_t *codes, uint32_t len, uint32_t support)
{
    miner *m = w->m;
    for (uint32_t i = 0; i < len; i++)
        w->ids[i] = m->item_of[codes[i]];
    sort_ids(w->ids, len);
    if (!w->is_head && atomic_load_explicit(&m->head, memory_order_acquire) == w->unit) {
        w->is_head = true;
        int rc = flush_unit(m, &m->units[w->unit]);
        if (rc != SM_OK)
            return rc;
    }
    if (w->is_head)
        return sink_call(m, w->ids, len, support);
    unit_out *u = &m->units[w->unit];
    size_t need = 3 + (size_t)len;
    if (u->n + need > u->cap) {
        if (u->cap >= UNIT_BUFFER_WORDS) {
            /* Bounded memory: wait for our turn, then write through. */
            /* Timed, because a stop raised while the mutex is held elsewhere
             * is not signalled. */
            pthread_mutex_lock(&m->mu);
            while (atomic_load(&m->head) != w->unit && !atomic_load(&m->stop)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 10 * 1000 * 1000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            }
            pthread_mutex_unlock(&m->mu);
            if (atomic_load(&m->stop))
                return STOPPED;
            w->is_head = true;
            int rc = flush_unit(m, u);
            return rc != SM_OK ? rc : sink_call(m, w->ids, len, support);
        }
        size_t cap = SM_MAX(u->cap * 2, (size_t)4096);
        uint32_t *buf = sm_realloc_array(u->buf, cap, sizeof *buf);
        if (buf == NULL) {
            set_error(m, SM_ERR_NOMEM);
            return STOPPED;
        }
        u->buf = buf;
        u->cap = cap;
    }
    u->buf[u->n] = len;
    u->buf[u->n + 1] = support;
    u->buf[u->n + 2] = 0;
    memcpy(u->buf + u->n + 3, w->ids, len * sizeof *w->ids);
    u->n += need;
    return SM_OK;
}

/* Called once per unit after it ran (or was skipped). */
static void unit_finish(worker *w)
{
    miner *m = w->m;
    pthread_mutex_lock(&m->mu);
    m->units[w->unit].done = 1;
    size_t h = atomic_load(&m->head);
    if (h == w->unit) {
        if (!w->is_head && m->sink != NULL && !atomic_load(&m->stop))
            flush_unit(m, &m->units[h]);
        h++;
        while (h < m->n_units && m->units[h].done) {
            if (m->sink != NULL && !atomic_load(&m->stop))
                flush_unit(m, &m->units[h]);
            h++;
        }
        atomic_store_explicit(&m->head, h, memory_order_release);
        pthread_cond_broadcast(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
    w->is_head = false;
}

/* --- counting and reporting --------------------------------------------------------------- */

/* sum_{k=lo}^{hi} C(n, k), or false on overflow of 64 bits. */
static bool binomial_sum(uint32_t n, uint32_t lo, uint32_t hi, sm_count *out)
{
    if (hi > n)
        hi = n;
    unsigned __int128 c = 1, sum = 0; /* c = C(n, k) */
    for (uint32_t k = 0; k <= hi; k++) {
        if (k > 0)
            c = c * (n - k + 1) / k;
        if (c > UINT64_MAX)
            return false;
        if (k >= lo)
            sum += c;
        if (sum > UINT64_MAX)
            return false;
    }
    *out = (sm_count)sum;
    return true;
}

static int add_count(worker *w, sm_count x)
{
    miner *m = w->m;
    if (__builtin_add_overflow(w->count, x, &w->count)) {
        if (m->cap != 0) {
            atomic_store(&m->over_cap, 1);
            atomic_store(&m->stop, 1);
        } else {
            set_error(m, SM_ERR_OVERFLOW);
        }
        return STOPPED;
    }
    if (m->cap != 0 && w->count - w->published >= 4096) {
        uint64_t total = atomic_fetch_add(&m->counted, w->count - w->published) + (w->count - w->published);
        w->published = w->count;
        if (total > m->cap) {
            atomic_store(&m->stop, 1);
            return STOPPED;
        }
    }
    return SM_OK;
}

/* Enumerates prefix u S for S a subset of pe[i..] (size-limited). */
static int emit_subsets(worker *w, uint32_t i, uint32_t len, uint32_t support)
{
    if (i == w->pelen)
        return len == 0 ? SM_OK : emit(w, w->scratch, len, support);
    int rc = emit_subsets(w, i + 1, len, support);
    if (rc == SM_OK && len < w->m->max_len) {
        w->scratch[len] = w->pe[i];
        rc = emit_subsets(w, i + 1, len + 1, support);
    }
    return rc;
}

/* Count mode: adds `times` x the number of subsets T of the hoisted items
 * with plen + extra + |T| <= max_len (T may be empty unless the itemset
 * would be). */
static int count_pe(worker *w, uint32_t extra, sm_count times)
{
    miner *m = w->m;
    uint64_t len = (uint64_t)w->plen + extra;
    if (len > m->max_len)
        return SM_OK;
    uint32_t lo = len == 0 ? 1 : 0;
    sm_count n;
    bool ok = true;
    if (m->max_len == SM_FIM_NO_MAX_LEN && w->pelen < 64)
        n = ((sm_count)1 << w->pelen) - lo;
    else
        ok = binomial_sum(w->pelen, lo, m->max_len - (uint32_t)len, &n);
    if (!ok || __builtin_mul_overflow(n, times, &n)) {
        if (m->cap != 0) { /* more than any cap: answer "truncated" */
            atomic_store(&m->over_cap, 1);
            atomic_store(&m->stop, 1);
        } else {
            set_error(m, SM_ERR_OVERFLOW);
        }
        return STOPPED;
    }
    return add_count(w, n);
}

/* Reports the node whose prefix and hoisted extensions are on the stacks. */
static int report_all(worker *w, uint32_t support)
{
    if (w->plen > w->m->max_len)
        return SM_OK;
    if (w->m->sink == NULL)
        return count_pe(w, 0, 1);
    memcpy(w->scratch, w->prefix, w->plen * sizeof *w->scratch);
    return emit_subsets(w, 0, w->plen, support);
}

/* Count mode, below a node with at most SUBSET_BITS items to extend with:
 * f holds the weight of each of the 2^b patterns of those items; superset
 * sums (a zeta transform, b 2^b additions) give the support of every subset
 * at once, so the subtree is counted without being walked. */
enum { SUBSET_BITS = 8 };

static int count_patterns(worker *w, uint32_t *f, uint32_t b)
{
    uint32_t size = 1u << b, minsup = w->m->minsup;
    for (uint32_t i = 0; i < b; i++)
        for (uint32_t x = 0; x < size; x++)
            if (!(x >> i & 1))
                f[x] += f[x | 1u << i];
    sm_count hist[SUBSET_BITS + 1] = {0};
    for (uint32_t x = 1; x < size; x++)
        hist[__builtin_popcount(x)] += f[x] >= minsup;
    int rc = SM_OK;
    for (uint32_t k = 1; k <= b && rc == SM_OK; k++)
        if (hist[k] != 0)
            rc = count_pe(w, k, hist[k]);
    return rc;
}

static int report_one(worker *w, uint32_t support)
{
    if (w->plen == 0 || w->plen > w->m->max_len)
        return SM_OK;
    if (w->m->sink == NULL)
        return add_count(w, 1);
    return emit(w, w->prefix, w->plen, support);
}

/* Cancellation and progress: every thread polls the flag; the caller's
 * thread (OpenMP's master) also calls the progress callback now and then. */
static int poll_stop(worker *w)
{
    miner *m = w->m;
    if (atomic_load_explicit(&m->stop, memory_order_relaxed))
        return STOPPED;
    if (w->master && (++w->ticks & 0x3fff) == 0 && m->progress != NULL) {
        if (sm_progress_report(m->progress, "mine", atomic_load(&m->units_done), m->n_units)) {
            set_error(m, SM_ERR_CANCELLED);
            wake_all(m);
            return STOPPED;
        }
    }
    return SM_OK;
}

/* --- mask nodes (at most 64 items) ------------------------------------------------------- */

static inline uint64_t above(uint32_t c)
{
    return c >= 63 ? 0 : ~(uint64_t)0 << (c + 1);
}

static inline uint64_t below(uint32_t c)
{
    return c == 0 ? 0 : ~(uint64_t)0 >> (64 - c);
}

/* The bits of x selected by sel, packed (BMI2's pext). */
static inline uint32_t extract_bits(uint64_t x, uint64_t sel)
{
#if defined(__BMI2__)
    return (uint32_t)_pext_u64(x, sel);
#else
    uint32_t r = 0, k = 0;
    for (; sel; sel &= sel - 1, k++)
        r |= (uint32_t)((x >> __builtin_ctzll(sel)) & 1) << k;
    return r;
#endif
}

static void count_masks(const uint64_t *mk, const uint32_t *wt, size_t n, uint32_t cnt[64])
{
#if defined(__AVX512F__)
    /* One masked add per 16 items, whatever the number of bits set. */
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
    for (size_t i = 0; i < n; i++) {
        __m512i wv = _mm512_set1_epi32((int)wt[i]);
        uint64_t x = mk[i];
        c0 = _mm512_mask_add_epi32(c0, (__mmask16)x, c0, wv);
        c1 = _mm512_mask_add_epi32(c1, (__mmask16)(x >> 16), c1, wv);
        c2 = _mm512_mask_add_epi32(c2, (__mmask16)(x >> 32), c2, wv);
        c3 = _mm512_mask_add_epi32(c3, (__mmask16)(x >> 48), c3, wv);
    }
    _mm512_storeu_si512(cnt, c0);
    _mm512_storeu_si512(cnt + 16, c1);
    _mm512_storeu_si512(cnt + 32, c2);
    _mm512_storeu_si512(cnt + 48, c3);
#else
    memset(cnt, 0, 64 * sizeof *cnt);
    for (size_t i = 0; i < n; i++)
        for (uint64_t x = mk[i]; x; x &= x - 1)
            cnt[__builtin_ctzll(x)] += wt[i];
#endif
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Merges equal masks of in[0..n) (none zero) into out; returns the count. */
static size_t dedupe_masks(worker *w, const uint64_t *in, const uint32_t *win, size_t n, uint64_t *out,
                           uint32_t *wout, int *rc)
{
    if (n <= 8) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            size_t j = 0;
            while (j < k && out[j] != in[i])
                j++;
            if (j == k) {
                out[k] = in[i];
                wout[k++] = win[i];
            } else {
                wout[j] += win[i];
            }
        }
        return k;
    }
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    uint32_t *slot = arena_alloc(&w->ar, size * sizeof *slot);
    if (slot == NULL) {
        *rc = SM_ERR_NOMEM;
        return 0;
    }
    memset(slot, 0, size * sizeof *slot);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t h = mix64(in[i]) & (size - 1);
        for (;;) {
            uint32_t s = slot[h];
            if (s == 0) {
                slot[h] = (uint32_t)k + 1;
                out[k] = in[i];
                wout[k++] = win[i];
                break;
            }
            if (out[s - 1] == in[i]) {
                wout[s - 1] += win[i];
                break;
            }
            h = (h + 1) & (size - 1);
        }
    }
    return k;
}

static int mine_mask(worker *w, const uint64_t *mk, const uint32_t *wt, size_t n, const uint32_t *gcode,
                     uint32_t tail, uint32_t s);
static int mask_pairs(worker *w, const uint64_t *mk, const uint32_t *wt, size_t n, const uint32_t *gcode,
                      const uint32_t *sup, uint64_t keep, uint64_t cand);

/* Children of a mask node: for each candidate c, the masks containing c,
 * restricted to `keep` (and to items after c for kind all), merged. */
static int mask_children(worker *w, const uint64_t *mk, const uint32_t *wt, size_t n, const uint32_t *gcode,
                         const uint32_t *sup, uint64_t keep, uint64_t cand)
{
    miner *m = w->m;
    bool all = m->kind == SM_FIM_ALL;
    if (all)
        return mask_pairs(w, mk, wt, n, gcode, sup, keep, cand);
    amark mark = arena_mark(&w->ar);
    uint64_t *tmp = arena_alloc(&w->ar, n * sizeof *tmp);
    uint32_t *tw = arena_alloc(&w->ar, n * sizeof *tw);
    if (tmp == NULL || tw == NULL) {
        set_error(m, SM_ERR_NOMEM);
        return STOPPED;
    }
    int rc = SM_OK;
    for (uint64_t cs = cand; cs && rc == SM_OK; cs &= cs - 1) {
        uint32_t c = (uint32_t)__builtin_ctzll(cs);
        uint64_t bit = (uint64_t)1 << c;
        uint64_t restrict_to = all ? keep & above(c) : keep & ~bit;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (mk[i] & bit) {
                uint64_t x = mk[i] & restrict_to;
                if (x != 0) {
                    tmp[k] = x;
                    tw[k++] = wt[i];
                }
            }
        }
        amark inner = arena_mark(&w->ar);
        uint64_t *cm = arena_alloc(&w->ar, (k ? k : 1) * sizeof *cm);
        uint32_t *cw = arena_alloc(&w->ar, (k ? k : 1) * sizeof *cw);
        if (cm == NULL || cw == NULL) {
            set_error(m, SM_ERR_NOMEM);
            return STOPPED;
        }
        int drc = SM_OK;
        size_t kn = dedupe_masks(w, tmp, tw, k, cm, cw, &drc);
        if (drc != SM_OK) {
            set_error(m, drc);
            return STOPPED;
        }
        w->prefix[w->plen++] = gcode[c];
        rc = mine_mask(w, cm, cw, kn, gcode, c, sup[c]);
        w->plen--;
        arena_release(&w->ar, inner);
    }
    arena_release(&w->ar, mark);
    return rc;
}

static int mine_mask(worker *w, const uint64_t *mk, const uint32_t *wt, size_t n, const uint32_t *gcode,
                     uint32_t tail, uint32_t s)
{
    miner *m = w->m;
    if (poll_stop(w))
        return STOPPED;
    bool all = m->kind == SM_FIM_ALL;
    uint32_t cnt[64];
    uint64_t perfect = 0, freq = 0, present = 0;
    if (n > 0) {
        count_masks(mk, wt, n, cnt);
        for (size_t i = 0; i < n; i++)
            present |= mk[i];
        for (uint64_t x = present; x; x &= x - 1) {
            uint32_t b = (uint32_t)__builtin_ctzll(x);
            if (cnt[b] >= m->minsup) {
                freq |= (uint64_t)1 << b;
                if (cnt[b] == s)
                    perfect |= (uint64_t)1 << b;
            }
        }
    }
    if (!all && (perfect & below(tail)))
        return SM_OK; /* an earlier item is in every transaction: no closed set here */
    uint64_t pe = all ? perfect : perfect & above(tail);
    uint64_t keep = freq & ~perfect;
    uint64_t cand = all ? keep : keep & above(tail);
    uint32_t saved_plen = w->plen, saved_pelen = w->pelen;
    for (uint64_t x = pe; x; x &= x - 1) {
        uint32_t g = gcode[__builtin_ctzll(x)];
        if (all)
            w->pe[w->pelen++] = g;
        else
            w->prefix[w->plen++] = g;
    }
    int rc;
    if (all)
        rc = report_all(w, s);
    else if (m->kind == SM_FIM_CLOSED)
        rc = report_one(w, s);
    else
        rc = keep == 0 ? report_one(w, s) : SM_OK;
    if (rc == SM_OK && cand != 0 && w->plen < m->max_len) {
        if (all && n == 1) {
            /* never reached: a single transaction makes every item perfect */
        }
        rc = mask_children(w, mk, wt, n, gcode, cnt, keep, cand);
    }
    w->plen = saved_plen;
    w->pelen = saved_pelen;
    return rc;
}

/* Kind all: the children of a mask node from pair counts. One pass over the
 * node's masks counts, for every candidate c, the items after c in the masks
 * holding c; each child then knows its frequent and perfect items at once,
 * and only a child with items left to extend gets masks of its own (most
 * are leaves in sparse data). Masks hold only `keep` items. */
static int mask_pairs(worker *w, const uint64_t *mk, const uint32_t *wt, size_t n, const uint32_t *gcode,
                      const uint32_t *sup, uint64_t keep, uint64_t cand)
{
    miner *m = w->m;
    (void)keep; /* the masks hold only keep items */
    uint32_t nc = (uint32_t)__builtin_popcountll(cand);
    amark mark = arena_mark(&w->ar);
    uint32_t *rows = arena_alloc(&w->ar, (size_t)nc * 64 * sizeof *rows);
    uint64_t *tmp = arena_alloc(&w->ar, 2 * n * sizeof *tmp);
    uint32_t *tw = arena_alloc(&w->ar, 2 * n * sizeof *tw);
    if (rows == NULL || tmp == NULL || tw == NULL) {
        set_error(m, SM_ERR_NOMEM);
        return STOPPED;
    }
    memset(rows, 0, (size_t)nc * 64 * sizeof *rows);
    uint8_t idx[64];
    {
        uint8_t k = 0;
        for (uint64_t cs = cand; cs; cs &= cs - 1)
            idx[__builtin_ctzll(cs)] = k++;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t x = mk[i];
#if defined(__AVX512F__)
        __m512i wv = _mm512_set1_epi32((int)wt[i]);
#endif
        for (uint64_t y = x & cand; y; y &= y - 1) {
            uint32_t c = (uint32_t)__builtin_ctzll(y);
            uint64_t a = x & above(c);
            uint32_t *r = rows + (size_t)idx[c] * 64;
#if defined(__AVX512F__)
            for (int q = 0; q < 4; q++) {
                __m512i v = _mm512_loadu_si512(r + 16 * q);
                v = _mm512_mask_add_epi32(v, (__mmask16)(a >> (16 * q)), v, wv);
                _mm512_storeu_si512(r + 16 * q, v);
            }
#else
            for (; a; a &= a - 1)
                r[__builtin_ctzll(a)] += wt[i];
#endif
        }
    }
    int rc = SM_OK;
    for (uint64_t cs = cand; cs && rc == SM_OK; cs &= cs - 1) {
        if (poll_stop(w)) {
            rc = STOPPED;
            break;
        }
        uint32_t c = (uint32_t)__builtin_ctzll(cs);
        const uint32_t *row = rows + (size_t)idx[c] * 64;
        uint64_t f = 0, p = 0;
#if defined(__AVX512F__)
        __m512i ms = _mm512_set1_epi32((int)m->minsup), sc = _mm512_set1_epi32((int)sup[c]);
        for (int q = 0; q < 4; q++) {
            __m512i v = _mm512_loadu_si512(row + 16 * q);
            f |= (uint64_t)_mm512_cmpge_epu32_mask(v, ms) << (16 * q);
            p |= (uint64_t)_mm512_cmpeq_epu32_mask(v, sc) << (16 * q);
        }
#else
        for (uint64_t a = keep & above(c); a; a &= a - 1) {
            uint32_t b = (uint32_t)__builtin_ctzll(a);
            f |= (uint64_t)(row[b] >= m->minsup) << b;
            p |= (uint64_t)(row[b] == sup[c]) << b;
        }
#endif
        p &= f;
        uint64_t k2 = f & ~p;
        uint32_t saved_pelen = w->pelen;
        for (uint64_t x = p; x; x &= x - 1)
            w->pe[w->pelen++] = gcode[__builtin_ctzll(x)];
        w->prefix[w->plen++] = gcode[c];
        rc = report_all(w, sup[c]);
        if (rc == SM_OK && k2 != 0 && w->plen < m->max_len && m->sink == NULL &&
            __builtin_popcountll(k2) <= SUBSET_BITS) {
            uint32_t f[1u << SUBSET_BITS], b = (uint32_t)__builtin_popcountll(k2);
            memset(f, 0, (sizeof f[0]) << b);
            for (size_t i = 0; i < n; i++)
                if (mk[i] >> c & 1)
                    f[extract_bits(mk[i], k2)] += wt[i];
            rc = count_patterns(w, f, b);
        } else if (rc == SM_OK && k2 != 0 && w->plen < m->max_len) {
            uint64_t bit = (uint64_t)1 << c;
            size_t k = 0;
            for (size_t i = 0; i < n; i++) {
                uint64_t x = mk[i] & k2;
                if ((mk[i] & bit) && x != 0) {
                    tmp[k] = x;
                    tw[k++] = wt[i];
                }
            }
            int drc = SM_OK;
            size_t kn = dedupe_masks(w, tmp, tw, k, tmp + n, tw + n, &drc);
            if (drc != SM_OK) {
                set_error(m, drc);
                rc = STOPPED;
            } else {
                rc = mask_pairs(w, tmp + n, tw + n, kn, gcode, row, k2, k2);
            }
        }
        w->plen--;
        w->pelen = saved_pelen;
    }
    arena_release(&w->ar, mark);
    return rc;
}

/* --- list nodes ------------------------------------------------------------------------------ */

static uint64_t hash_items(const uint32_t *a, uint32_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ a[i]) * 0x100000001b3ull;
    return mix64(h);
}

/* Largest node (kept items) whose pair counts are kept in a triangle. */
enum { PAIR_MATRIX_MAX = 1024 };

static int mine_list(worker *w, const tview *v, size_t nv, const uint32_t *gcode, uint32_t tail, uint32_t s);

/* Children of a list node for kind all, from a triangle of pair counts: one
 * pass over the reduced database counts every pair, so each child knows its
 * frequent and perfect items without a database of its own. Only children
 * with items left to extend get one (masks when at most 64 remain). In sparse
 * data most children are leaves (T10I4D100K@10: 2 in 3), and this is where
 * FP-growth* (Grahne and Zhu, FIMI'03) saves its counting pass too. */
static int pair_children(worker *w, const uint32_t *items, const size_t *start, const uint32_t *tw, size_t nt,
                         uint32_t mk, const uint32_t *kg, const uint32_t *ksup, const uint32_t *occ)
{
    miner *m = w->m;
    const uint32_t minsup = m->minsup;
    size_t tri = (size_t)mk * (mk - 1) / 2;
    uint32_t *pm = arena_alloc(&w->ar, (tri ? tri : 1) * sizeof *pm);
    size_t *rb = arena_alloc(&w->ar, (size_t)mk * sizeof *rb);
    size_t *vstart = arena_alloc(&w->ar, ((size_t)mk + 1) * sizeof *vstart);
    uint32_t *pos = arena_alloc(&w->ar, (size_t)mk * sizeof *pos);
    uint32_t *nfq = arena_alloc(&w->ar, (size_t)mk * sizeof *nfq);
    if (pm == NULL || rb == NULL || vstart == NULL || pos == NULL || nfq == NULL) {
        set_error(m, SM_ERR_NOMEM);
        return STOPPED;
    }
    memset(pm, 0, tri * sizeof *pm);
    /* Pair (a, b), b > a, is at pm[rb[a] + b]; rb[0] wraps (unsigned
     * arithmetic), the sum never does for b > a. */
    for (uint32_t a = 0, acc = 0; a < mk; a++) {
        rb[a] = (size_t)acc - a - 1;
        acc += mk - 1 - a;
    }
    for (size_t t = 0; t < nt; t++) {
        const uint32_t *it = items + start[t];
        uint32_t len = (uint32_t)(start[t + 1] - start[t]), wt = tw[t];
        for (uint32_t i = 0; i + 1 < len; i++) {
            size_t base = rb[it[i]];
            for (uint32_t j = i + 1; j < len; j++)
                pm[base + it[j]] += wt;
        }
    }
    /* Per child: how many items are frequent, how many perfect (branch-free
     * sums over each row, which vectorise). Views only for children with an
     * item to extend with. */
    size_t n_views = 0;
    for (uint32_t c = 0; c < mk; c++) {
        const uint32_t *row = pm + (rb[c] + c + 1);
        uint32_t len = mk - c - 1, nfreq = 0, nperf = 0, sc = ksup[c];
        for (uint32_t b = 0; b < len; b++) {
            nfreq += row[b] >= minsup;
            nperf += row[b] == sc;
        }
        nfq[c] = nfreq - nperf; /* sc >= minsup: perfect items are frequent */
        vstart[c] = n_views;
        pos[c] = nfq[c] ? (uint32_t)n_views : UINT32_MAX;
        n_views += nfq[c] ? occ[c] : 0;
        nfq[c] |= nperf ? 0x80000000u : 0; /* flag: has perfect extensions */
    }
    vstart[mk] = n_views;
    tview *views = arena_alloc(&w->ar, (n_views ? n_views : 1) * sizeof *views);
    if (views == NULL) {
        set_error(m, SM_ERR_NOMEM);
        return STOPPED;
    }
    for (size_t t = 0; t < nt; t++) {
        const uint32_t *it = items + start[t];
        uint32_t len = (uint32_t)(start[t + 1] - start[t]);
        for (uint32_t j = 0; j < len; j++) {
            uint32_t c = it[j];
            if (pos[c] != UINT32_MAX)
                views[pos[c]++] = (tview){it + j + 1, len - j - 1, tw[t]};
        }
    }
    uint32_t *bitof = w->newcode; /* code -> bit in the child's masks */
    for (uint32_t b = 0; b < mk; b++)
        bitof[b] = UINT32_MAX;
    int rc = SM_OK;
    for (uint32_t c = 0; c < mk && rc == SM_OK; c++) {
        if (poll_stop(w))
            return STOPPED;
        uint32_t saved_pelen = w->pelen, nf = 0;
        uint32_t fcode[64], fg[64], fsup[64];
        bool wide = (nfq[c] & 0x7fffffffu) > 64;
        if (nfq[c] != 0 && !wide) {
            for (uint32_t b = c + 1; b < mk; b++) {
                uint32_t x = pm[rb[c] + b];
                if (x < minsup)
                    continue;
                if (x == ksup[c]) {
                    w->pe[w->pelen++] = kg[b];
                } else {
                    fcode[nf] = b;
                    fg[nf] = kg[b];
                    fsup[nf++] = x;
                }
            }
        }
        const tview *cv = views + vstart[c];
        size_t ncv = pos[c] == UINT32_MAX ? 0 : vstart[c + 1] - vstart[c];
        w->prefix[w->plen++] = kg[c];
        if (wide) {
            /* More than 64 items to extend with: an ordinary list node. */
            w->pelen = saved_pelen;
            rc = mine_list(w, cv, ncv, kg, c, ksup[c]);
            for (uint32_t b = 0; b < mk; b++)
                bitof[b] = UINT32_MAX;
        } else {
            rc = report_all(w, ksup[c]);
            if (rc == SM_OK && nf > 0 && w->plen < m->max_len && m->sink == NULL && nf <= SUBSET_BITS) {
                uint32_t f[1u << SUBSET_BITS];
                memset(f, 0, (sizeof f[0]) << nf);
                for (uint32_t i = 0; i < nf; i++)
                    bitof[fcode[i]] = i;
                for (size_t i = 0; i < ncv; i++) {
                    uint32_t x = 0;
                    for (uint32_t j = 0; j < cv[i].len; j++) {
                        uint32_t bit = bitof[cv[i].items[j]];
                        x |= bit != UINT32_MAX ? 1u << bit : 0;
                    }
                    f[x] += cv[i].w;
                }
                for (uint32_t i = 0; i < nf; i++)
                    bitof[fcode[i]] = UINT32_MAX;
                rc = count_patterns(w, f, nf);
            } else if (rc == SM_OK && nf > 0 && w->plen < m->max_len) {
                amark mark = arena_mark(&w->ar);
                uint64_t *mks = arena_alloc(&w->ar, ncv * 2 * sizeof *mks);
                uint32_t *mw = arena_alloc(&w->ar, ncv * 2 * sizeof *mw);
                if (mks == NULL || mw == NULL) {
                    set_error(m, SM_ERR_NOMEM);
                    return STOPPED;
                }
                for (uint32_t i = 0; i < nf; i++)
                    bitof[fcode[i]] = i;
                size_t k = 0;
                for (size_t i = 0; i < ncv; i++) {
                    uint64_t x = 0;
                    for (uint32_t j = 0; j < cv[i].len; j++) {
                        uint32_t bit = bitof[cv[i].items[j]];
                        if (bit != UINT32_MAX)
                            x |= (uint64_t)1 << bit;
                    }
                    if (x != 0) {
                        mks[k] = x;
                        mw[k++] = cv[i].w;
                    }
                }
                for (uint32_t i = 0; i < nf; i++)
                    bitof[fcode[i]] = UINT32_MAX;
                int drc = SM_OK;
                size_t nu = dedupe_masks(w, mks, mw, k, mks + ncv, mw + ncv, &drc);
                if (drc != SM_OK) {
                    set_error(m, drc);
                    return STOPPED;
                }
                uint64_t keep = nf == 64 ? ~(uint64_t)0 : ((uint64_t)1 << nf) - 1;
                rc = mask_children(w, mks + ncv, mw + ncv, nu, fg, fsup, keep, keep);
                arena_release(&w->ar, mark);
            }
        }
        w->plen--;
        w->pelen = saved_pelen;
    }
    return rc;
}

/* Sorts distinct codes: insertion sort when few, else a bitmap sweep over
 * their range (cheaper than any comparison sort once there are dozens). */
static void sort_codes(worker *w, uint32_t *a, uint32_t n)
{
    if (n <= 24) {
        for (uint32_t i = 1; i < n; i++) {
            uint32_t x = a[i], j = i;
            for (; j > 0 && a[j - 1] > x; j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
        return;
    }
    uint64_t *bits = w->bits;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t i = 0; i < n; i++) {
        bits[a[i] >> 6] |= (uint64_t)1 << (a[i] & 63);
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    uint32_t k = 0;
    for (uint32_t wd = lo >> 6; wd <= hi >> 6; wd++) {
        for (uint64_t x = bits[wd]; x; x &= x - 1)
            a[k++] = wd << 6 | (uint32_t)__builtin_ctzll(x);
        bits[wd] = 0;
    }
}

/* A node over views of transactions (codes of the parent). For kind
 * all the views hold only items after the node's last item; otherwise they
 * are whole transactions and `tail` (the last item) is skipped. */
static int mine_list(worker *w, const tview *v, size_t nv, const uint32_t *gcode,
                     uint32_t tail, uint32_t s)
{
    miner *m = w->m;
    if (poll_stop(w))
        return STOPPED;
    bool all = m->kind == SM_FIM_ALL;
    uint32_t *cnt = w->cnt, *touched = w->touched, *newcode = w->newcode;
    uint32_t nt = 0;
    for (size_t i = 0; i < nv; i++) {
        if (i + 8 < nv) /* views point all over their database */
            __builtin_prefetch(v[i + 8].items);
        const uint32_t *it = v[i].items;
        uint32_t wt = v[i].w;
        for (uint32_t k = 0; k < v[i].len; k++) {
            uint32_t c = it[k];
            touched[nt] = c; /* branch-free: kept only when c is new */
            nt += cnt[c] == 0;
            cnt[c] += wt;
        }
    }
    /* Only frequent items need ordering; the others are dropped here. */
    uint32_t nfq = 0;
    for (uint32_t i = 0; i < nt; i++) {
        uint32_t c = touched[i];
        if (cnt[c] >= m->minsup) {
            touched[nfq++] = c;
        } else {
            newcode[c] = UINT32_MAX;
            cnt[c] = 0;
        }
    }
    nt = nfq;
    sort_codes(w, touched, nt);
    /* Classify. kept items get new codes in the same order. */
    uint32_t saved_plen = w->plen, saved_pelen = w->pelen;
    uint32_t mk = 0, first_cand = UINT32_MAX;
    bool pruned = false;
    for (uint32_t i = 0; i < nt; i++) {
        uint32_t c = touched[i], x = cnt[c];
        if (!all && c == tail) {
            newcode[c] = UINT32_MAX;
            continue;
        }
        bool earlier = !all && c < tail;
        if (x >= m->minsup && x == s) {
            if (earlier) {
                pruned = true;
            } else if (all) {
                w->pe[w->pelen++] = gcode[c];
            } else {
                w->prefix[w->plen++] = gcode[c];
            }
            newcode[c] = UINT32_MAX;
        } else if (x >= m->minsup) {
            if (!earlier && first_cand == UINT32_MAX)
                first_cand = mk;
            newcode[c] = mk++;
        } else {
            newcode[c] = UINT32_MAX;
        }
    }
    int rc = SM_OK;
    amark mark = arena_mark(&w->ar);
    uint32_t *ksup = NULL, *kg = NULL;
    if (!pruned && mk > 0) {
        ksup = arena_alloc(&w->ar, mk * sizeof *ksup);
        kg = arena_alloc(&w->ar, SM_MAX(mk, 64) * sizeof *kg);
        if (ksup == NULL || kg == NULL) {
            rc = SM_ERR_NOMEM;
        } else {
            for (uint32_t i = 0; i < nt; i++) {
                uint32_t c = touched[i];
                if (newcode[c] != UINT32_MAX) {
                    ksup[newcode[c]] = cnt[c];
                    kg[newcode[c]] = gcode[c];
                }
            }
        }
    }
    for (uint32_t i = 0; i < nt; i++)
        cnt[touched[i]] = 0;
    if (rc != SM_OK) {
        set_error(m, rc);
        rc = STOPPED;
        goto out;
    }
    if (pruned)
        goto out;
    if (all)
        rc = report_all(w, s);
    else if (m->kind == SM_FIM_CLOSED)
        rc = report_one(w, s);
    else
        rc = mk == 0 ? report_one(w, s) : SM_OK;
    if (rc != SM_OK || first_cand == UINT32_MAX || w->plen >= m->max_len)
        goto out;

    if (all && m->sink == NULL && mk <= SUBSET_BITS) {
        /* Count the subtree from pattern weights. */
        uint32_t f[1u << SUBSET_BITS];
        memset(f, 0, (sizeof f[0]) << mk);
        for (size_t i = 0; i < nv; i++) {
            uint32_t x = 0;
            for (uint32_t j = 0; j < v[i].len; j++) {
                uint32_t nc = newcode[v[i].items[j]];
                x |= nc != UINT32_MAX ? 1u << nc : 0;
            }
            f[x] += v[i].w;
        }
        rc = count_patterns(w, f, mk);
        goto out;
    }
    if (mk <= 64) {
        /* Switch to masks. */
        uint64_t *masks = arena_alloc(&w->ar, (nv ? nv : 1) * sizeof *masks);
        uint32_t *mw = arena_alloc(&w->ar, (nv ? nv : 1) * sizeof *mw);
        uint64_t *um = arena_alloc(&w->ar, (nv ? nv : 1) * sizeof *um);
        uint32_t *uw = arena_alloc(&w->ar, (nv ? nv : 1) * sizeof *uw);
        if (masks == NULL || mw == NULL || um == NULL || uw == NULL) {
            set_error(m, SM_ERR_NOMEM);
            rc = STOPPED;
            goto out;
        }
        size_t k = 0;
        for (size_t i = 0; i < nv; i++) {
            uint64_t x = 0;
            for (uint32_t j = 0; j < v[i].len; j++) {
                uint32_t nc = newcode[v[i].items[j]];
                if (nc != UINT32_MAX)
                    x |= (uint64_t)1 << nc;
            }
            if (x != 0) {
                masks[k] = x;
                mw[k++] = v[i].w;
            }
        }
        int drc = SM_OK;
        size_t nu = dedupe_masks(w, masks, mw, k, um, uw, &drc);
        if (drc != SM_OK) {
            set_error(m, drc);
            rc = STOPPED;
            goto out;
        }
        uint64_t keep = mk == 64 ? ~(uint64_t)0 : ((uint64_t)1 << mk) - 1;
        uint64_t cand = keep & ~below(first_cand);
        rc = mask_children(w, um, uw, nu, kg, ksup, keep, cand);
        goto out;
    }

    /* Reduced list database: kept items only, equal transactions merged. */
    size_t total = 0;
    for (size_t i = 0; i < nv; i++)
        total += v[i].len;
    size_t hsize = 16;
    while (hsize < 2 * nv)
        hsize *= 2;
    uint32_t *items = arena_alloc(&w->ar, (total ? total : 1) * sizeof *items);
    size_t *start = arena_alloc(&w->ar, (nv + 1) * sizeof *start);
    uint32_t *tw = arena_alloc(&w->ar, (nv ? nv : 1) * sizeof *tw);
    uint32_t *slot = arena_alloc(&w->ar, hsize * sizeof *slot);
    uint32_t *occ = arena_alloc(&w->ar, (size_t)mk * sizeof *occ);
    if (items == NULL || start == NULL || tw == NULL || slot == NULL || occ == NULL) {
        set_error(m, SM_ERR_NOMEM);
        rc = STOPPED;
        goto out;
    }
    memset(slot, 0, hsize * sizeof *slot);
    memset(occ, 0, (size_t)mk * sizeof *occ);
    size_t nt2 = 0, used = 0;
    start[0] = 0;
    for (size_t i = 0; i < nv; i++) {
        uint32_t *dst = items + used, len = 0;
        for (uint32_t j = 0; j < v[i].len; j++) {
            uint32_t nc = newcode[v[i].items[j]];
            if (nc != UINT32_MAX)
                dst[len++] = nc;
        }
        if (len == 0 || dst[len - 1] < first_cand)
            continue; /* no candidate item: contributes to no child */
        size_t h = hash_items(dst, len) & (hsize - 1);
        for (;;) {
            uint32_t sl = slot[h];
            if (sl == 0) {
                slot[h] = (uint32_t)nt2 + 1;
                tw[nt2] = v[i].w;
                used += len;
                start[++nt2] = used;
                for (uint32_t j = 0; j < len; j++)
                    occ[dst[j]]++;
                break;
            }
            size_t o = start[sl - 1], ol = start[sl] - o;
            if (ol == len && memcmp(items + o, dst, len * sizeof *dst) == 0) {
                tw[sl - 1] += v[i].w;
                break;
            }
            h = (h + 1) & (hsize - 1);
        }
    }
    if (all && mk <= PAIR_MATRIX_MAX) {
        rc = pair_children(w, items, start, tw, nt2, mk, kg, ksup, occ);
        goto out;
    }
    /* Occurrence delivery: views per candidate item. */
    size_t n_views = 0;
    size_t *vstart = arena_alloc(&w->ar, ((size_t)mk + 1) * sizeof *vstart);
    if (vstart == NULL) {
        set_error(m, SM_ERR_NOMEM);
        rc = STOPPED;
        goto out;
    }
    for (uint32_t c = 0; c < mk; c++) {
        vstart[c] = n_views;
        if (c >= first_cand)
            n_views += occ[c];
    }
    vstart[mk] = n_views;
    tview *views = arena_alloc(&w->ar, (n_views ? n_views : 1) * sizeof *views);
    if (views == NULL) {
        set_error(m, SM_ERR_NOMEM);
        rc = STOPPED;
        goto out;
    }
    for (uint32_t c = 0; c < mk; c++)
        occ[c] = (uint32_t)vstart[c];
    for (size_t t = 0; t < nt2; t++) {
        const uint32_t *it = items + start[t];
        uint32_t len = (uint32_t)(start[t + 1] - start[t]);
        for (uint32_t j = 0; j < len; j++) {
            uint32_t c = it[j];
            if (c < first_cand)
                continue;
            tview *tv = &views[occ[c]++];
            if (all) {
                tv->items = it + j + 1;
                tv->len = len - j - 1;
            } else {
                tv->items = it;
                tv->len = len;
            }
            tv->w = tw[t];
        }
    }
    for (uint32_t c = first_cand; c < mk && rc == SM_OK; c++) {
        w->prefix[w->plen++] = kg[c];
        rc = mine_list(w, views + vstart[c], vstart[c + 1] - vstart[c], kg, c, ksup[c]);
        w->plen--;
    }

out:
    arena_release(&w->ar, mark);
    w->plen = saved_plen;
    w->pelen = saved_pelen;
    return rc;
}

/* --- driver ------------------------------------------------------------------------------------ */

typedef struct item_rank {
    uint64_t support;
    sm_item_id item;
} item_rank;

static int cmp_rank(const void *a, const void *b)
{
    const item_rank *x = a, *y = b;
    if (x->support != y->support)
        return x->support < y->support ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

typedef struct root_db {
    uint32_t nf;
    sm_item_id *item_of;
    uint32_t *support;  /* per code */
    uint32_t *items;    /* transactions as ascending codes */
    size_t *start;
    size_t n_tx;
    uint32_t *occ_tid;  /* per code, in row order: the rows holding it */
    uint32_t *occ_pos;  /* ... and its position in each */
    size_t *vstart;     /* nf + 1: code c's occurrences are [vstart[c], vstart[c+1]) */
    uint32_t *identity; /* code -> code */
    uint32_t *root_pe;  /* codes (global ids) of items in every basket */
    uint32_t n_root_pe;
} root_db;

static void root_free(root_db *r)
{
    sm_free(r->item_of);
    sm_free(r->support);
    sm_free(r->items);
    sm_free(r->start);
    sm_free(r->occ_tid);
    sm_free(r->occ_pos);
    sm_free(r->vstart);
    sm_free(r->identity);
    sm_free(r->root_pe);
}

static int root_build(const sm_csr *b, uint32_t minsup, root_db *r, sm_error *err)
{
    memset(r, 0, sizeof *r);
    uint32_t ni = b->n_items;
    uint64_t *supp = sm_calloc(ni ? ni : 1, sizeof *supp);
    uint32_t *code = sm_alloc_array(ni ? ni : 1, sizeof *code);
    item_rank *rank = sm_alloc_array(ni ? ni : 1, sizeof *rank);
    int rc = SM_OK;
    if (supp == NULL || code == NULL || rank == NULL)
        goto out_nomem;
    /* Rows are trusted to be sorted and distinct, but not to lie outside items. */
    for (uint64_t t = 0; t <= b->n_rows; t++)
        if (t == 0 ? b->offsets[0] != 0 : b->offsets[t] < b->offsets[t - 1]) {
            rc = sm_error_set(err, SM_ERR_INVALID_ARG,
                              "basket offsets must start at 0 and never decrease (offset %" PRIu64 ")", t);
            goto out;
        }
    size_t n_occ = (size_t)b->offsets[b->n_rows];
    for (size_t k = 0; k < n_occ; k++) {
        if (b->items[k] >= ni) {
            rc = sm_error_set(err, SM_ERR_INVALID_ARG, "basket item id %" SM_PRI_ITEM " >= n_items %" PRIu32,
                              b->items[k], ni);
            goto out;
        }
        supp[b->items[k]]++;
    }
    uint32_t nf = 0, npe = 0;
    for (uint32_t i = 0; i < ni; i++) {
        if (supp[i] >= minsup && supp[i] == b->n_rows)
            npe++;
        else if (supp[i] >= minsup)
            rank[nf++] = (item_rank){supp[i], i};
    }
    qsort(rank, nf, sizeof *rank, cmp_rank);
    r->nf = nf;
    r->item_of = sm_alloc_array((size_t)nf + npe + 1, sizeof *r->item_of);
    r->support = sm_alloc_array(nf ? nf : 1, sizeof *r->support);
    r->identity = sm_alloc_array(SM_MAX(nf, 64), sizeof *r->identity);
    r->root_pe = sm_alloc_array(npe ? npe : 1, sizeof *r->root_pe);
    if (r->item_of == NULL || r->support == NULL || r->identity == NULL || r->root_pe == NULL)
        goto out_nomem;
    for (uint32_t i = 0; i < ni; i++)
        code[i] = UINT32_MAX;
    for (uint32_t c = 0; c < nf; c++) {
        code[rank[c].item] = c;
        r->item_of[c] = rank[c].item;
        r->support[c] = (uint32_t)rank[c].support;
        r->identity[c] = c;
    }
    /* Items in every basket get codes after the others (used only for output). */
    for (uint32_t i = 0; i < ni; i++)
        if (supp[i] >= minsup && supp[i] == b->n_rows) {
            r->item_of[nf + r->n_root_pe] = i;
            r->root_pe[r->n_root_pe] = nf + r->n_root_pe;
            r->n_root_pe++;
        }
    /* Transactions over codes, ascending, without sorting: the occurrences
     * are first listed per code (a transpose), then written back row by row
     * in code order. Each code's occurrences come out in row order; a branch
     * builds its views from them (12 bytes an occurrence here, not 20). */
    size_t kept = 0;
    for (uint32_t c = 0; c < nf; c++)
        kept += r->support[c];
    r->items = sm_alloc_array(kept ? kept : 1, sizeof *r->items);
    r->start = sm_alloc_array((size_t)b->n_rows + 1, sizeof *r->start);
    r->vstart = sm_alloc_array((size_t)nf + 1, sizeof *r->vstart);
    r->occ_tid = sm_alloc_array(kept ? kept : 1, sizeof *r->occ_tid);
    r->occ_pos = sm_alloc_array(kept ? kept : 1, sizeof *r->occ_pos);
    uint32_t *fill = sm_alloc_array(b->n_rows ? b->n_rows : 1, sizeof *fill);
    if (r->items == NULL || r->start == NULL || r->vstart == NULL || r->occ_tid == NULL || r->occ_pos == NULL ||
        fill == NULL) {
        sm_free(fill);
        goto out_nomem;
    }
    r->vstart[0] = 0;
    for (uint32_t c = 0; c < nf; c++)
        r->vstart[c + 1] = r->vstart[c] + r->support[c];
    /* rank[c].support now counts down the occurrences of code c still to place. */
    size_t used = 0;
    r->start[0] = 0;
    for (uint64_t t = 0; t < b->n_rows; t++) {
        uint32_t len = 0;
        for (uint64_t k = b->offsets[t]; k < b->offsets[t + 1]; k++) {
            uint32_t c = code[b->items[k]];
            if (c != UINT32_MAX) {
                r->occ_tid[r->vstart[c + 1] - rank[c].support--] = (uint32_t)r->n_tx;
                len++;
            }
        }
        if (len == 0)
            continue;
        fill[r->n_tx] = 0;
        used += len;
        r->start[++r->n_tx] = used;
    }
    for (uint32_t c = 0; c < nf; c++) {
        for (size_t e = r->vstart[c]; e < r->vstart[c + 1]; e++) {
            uint32_t t = r->occ_tid[e], j = fill[t]++;
            r->items[r->start[t] + j] = c;
            r->occ_pos[e] = j;
        }
    }
    sm_free(fill);
    goto out;
out_nomem:
    rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory preparing %" PRIu64 " baskets", b->n_rows);
out:
    sm_free(supp);
    sm_free(code);
    sm_free(rank);
    if (rc != SM_OK)
        root_free(r);
    return rc;
}

/* One top-level branch: the views of code u's rows, then its node. */
static int mine_unit(worker *w, const root_db *r, uint32_t u)
{
    bool all = w->m->kind == SM_FIM_ALL;
    size_t n = r->vstart[u + 1] - r->vstart[u];
    amark mark = arena_mark(&w->ar);
    tview *v = arena_alloc(&w->ar, (n ? n : 1) * sizeof *v);
    if (v == NULL)
        return SM_ERR_NOMEM;
    const uint32_t *tid = r->occ_tid + r->vstart[u], *pos = r->occ_pos + r->vstart[u];
    for (size_t i = 0; i < n; i++) {
        if (i + 16 < n) /* rows are scattered over the whole database */
            __builtin_prefetch(r->start + tid[i + 16]);
        size_t s0 = r->start[tid[i]], s1 = r->start[tid[i] + 1];
        v[i].items = all ? r->items + s0 + pos[i] + 1 : r->items + s0;
        v[i].len = all ? (uint32_t)(s1 - s0) - pos[i] - 1 : (uint32_t)(s1 - s0);
        v[i].w = 1;
    }
    int rc = mine_list(w, v, n, r->identity, u, r->support[u]);
    arena_release(&w->ar, mark);
    return rc;
}

static int worker_init(worker *w, miner *m)
{
    memset(w, 0, sizeof *w);
    w->m = m;
    size_t n = (size_t)m->nf + 65; /* prefix may also hold the items of every basket */
    w->cnt = sm_calloc(n, sizeof *w->cnt);
    w->newcode = sm_alloc_array(n, sizeof *w->newcode);
    w->touched = sm_alloc_array(n, sizeof *w->touched);
    w->bits = sm_calloc(n / 64 + 1, sizeof *w->bits);
    w->prefix = NULL;
    w->pe = NULL;
    w->scratch = NULL;
    w->ids = NULL;
    if (w->cnt == NULL || w->newcode == NULL || w->touched == NULL || w->bits == NULL)
        return SM_ERR_NOMEM;
    return SM_OK;
}

static int worker_stacks(worker *w, size_t n)
{
    w->prefix = sm_alloc_array(n, sizeof *w->prefix);
    w->pe = sm_alloc_array(n, sizeof *w->pe);
    w->scratch = sm_alloc_array(n, sizeof *w->scratch);
    w->ids = sm_alloc_array(n, sizeof *w->ids);
    return w->prefix && w->pe && w->scratch && w->ids ? SM_OK : SM_ERR_NOMEM;
}

static void worker_free(worker *w)
{
    sm_free(w->cnt);
    sm_free(w->newcode);
    sm_free(w->touched);
    sm_free(w->bits);
    sm_free(w->prefix);
    sm_free(w->pe);
    sm_free(w->scratch);
    sm_free(w->ids);
    arena_free(&w->ar);
}

/* Puts the items of every basket on the stacks: hoisted (all) or in the prefix. */
static void push_root_pe(worker *w, const root_db *r)
{
    for (uint32_t i = 0; i < r->n_root_pe; i++) {
        if (w->m->kind == SM_FIM_ALL)
            w->pe[w->pelen++] = r->root_pe[i];
        else
            w->prefix[w->plen++] = r->root_pe[i];
    }
}

int sm_fim_mine(const sm_csr *baskets, const sm_fim_params *params, sm_fim_sink_fn sink, void *user,
                sm_fim_result *result, sm_error *err)
{
    if (result)
        memset(result, 0, sizeof *result);
    if (baskets == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "baskets is NULL");
    sm_count min_count;
    int rc = sm_fim_min_count(params, baskets->n_rows, &min_count, err);
    if (rc != SM_OK)
        return rc;
    if (baskets->n_rows >= UINT32_MAX)
        return sm_error_set(err, SM_ERR_OVERFLOW, "%" PRIu64 " baskets: at most 4294967294 are supported",
                            baskets->n_rows);
    if (result)
        result->min_count = min_count;
    if (min_count > baskets->n_rows)
        return SM_OK; /* nothing can be frequent */

    root_db r;
    rc = root_build(baskets, (uint32_t)min_count, &r, err);
    if (rc != SM_OK)
        return rc;
    if (result)
        result->n_frequent_items = r.nf + r.n_root_pe;

    miner m;
    memset(&m, 0, sizeof m);
    m.nf = r.nf;
    m.item_of = r.item_of;
    m.minsup = (uint32_t)min_count;
    m.kind = params->kind;
    m.max_len = params->max_len;
    m.sink = sink;
    m.user = user;
    m.cap = params->max_itemsets;
    m.progress = &params->progress;
    m.n_units = r.nf;
    atomic_init(&m.head, 0);
    atomic_init(&m.stop, 0);
    atomic_init(&m.first_error, 0);
    atomic_init(&m.counted, 0);
    atomic_init(&m.units_done, 0);
    atomic_init(&m.over_cap, 0);
    /* One report before any work, on the caller's thread: a cancel already
     * requested is honoured whatever share of the work the master gets. */
    if (sm_progress_report(m.progress, "mine", 0, m.n_units)) {
        root_free(&r);
        return sm_error_set(err, SM_ERR_CANCELLED, "mining cancelled");
    }
    m.units = sm_calloc(r.nf ? r.nf : 1, sizeof *m.units);
    if (m.units == NULL) {
        root_free(&r);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&m.mu, NULL);
    pthread_cond_init(&m.cv, NULL);
    size_t stack = (size_t)r.nf + r.n_root_pe + 2;

    /* The root: itemsets made only of items in every basket. */
    sm_count total = 0;
    {
        worker w0;
        rc = worker_init(&w0, &m);
        if (rc == SM_OK)
            rc = worker_stacks(&w0, stack);
        if (rc == SM_OK) {
            w0.is_head = true; /* root output precedes every unit */
            w0.master = true;
            push_root_pe(&w0, &r);
            int r0;
            if (m.kind == SM_FIM_ALL)
                r0 = report_all(&w0, (uint32_t)baskets->n_rows);
            else if (m.kind == SM_FIM_CLOSED)
                r0 = report_one(&w0, (uint32_t)baskets->n_rows);
            else
                r0 = r.nf == 0 ? report_one(&w0, (uint32_t)baskets->n_rows) : SM_OK;
            (void)r0;
            total = w0.count;
            if (m.cap != 0)
                atomic_fetch_add(&m.counted, w0.count);
        } else {
            set_error(&m, rc);
        }
        worker_free(&w0);
    }

    int n_threads = params->n_threads > 0 ? params->n_threads : omp_get_max_threads();
    sm_count *unit_count = sm_calloc(r.nf ? r.nf : 1, sizeof *unit_count);
    if (unit_count == NULL)
        set_error(&m, SM_ERR_NOMEM);
    if (r.nf > 0 && !atomic_load(&m.stop)) {
#pragma omp parallel num_threads(n_threads) default(none) shared(m, r, unit_count, stack)
        {
            worker w;
            int wrc = worker_init(&w, &m);
            if (wrc == SM_OK)
                wrc = worker_stacks(&w, stack);
            if (wrc != SM_OK) {
                set_error(&m, SM_ERR_NOMEM);
                wake_all(&m);
            }
            w.master = omp_get_thread_num() == 0;
#pragma omp for schedule(dynamic, 1)
            for (size_t u = 0; u < r.nf; u++) {
                w.unit = u;
                w.is_head = false;
                if (w.master && wrc == SM_OK && m.progress->fn != NULL &&
                    sm_progress_report(m.progress, "mine", atomic_load(&m.units_done), m.n_units)) {
                    set_error(&m, SM_ERR_CANCELLED);
                    wake_all(&m);
                }
                if (wrc == SM_OK && !atomic_load(&m.stop)) {
                    w.count = 0;
                    w.published = 0;
                    w.plen = 0;
                    w.pelen = 0;
                    push_root_pe(&w, &r);
                    w.prefix[w.plen++] = (uint32_t)u;
                    int urc = mine_unit(&w, &r, (uint32_t)u);
                    if (urc != SM_OK && urc != STOPPED)
                        set_error(&m, urc);
                    if (atomic_load(&m.stop))
                        wake_all(&m);
                    unit_count[u] = w.count;
                    if (m.cap != 0 && w.count > w.published)
                        atomic_fetch_add(&m.counted, w.count - w.published);
                }
                atomic_fetch_add(&m.units_done, 1);
                unit_finish(&w);
            }
            worker_free(&w);
        }
    }
    rc = atomic_load(&m.first_error);
    bool over = atomic_load(&m.over_cap) != 0;
    if (rc == SM_OK && sink == NULL && !over) {
        for (size_t u = 0; u < r.nf; u++)
            if (__builtin_add_overflow(total, unit_count[u], &total))
                over = true;
        if (over && m.cap == 0)
            rc = SM_ERR_OVERFLOW;
    }
    if (rc == SM_OK && result) {
        if (sink != NULL) {
            result->n_itemsets = m.emitted;
            result->truncated = m.truncated;
        } else if (m.cap != 0 && (over || total > m.cap || atomic_load(&m.stop))) {
            result->n_itemsets = m.cap;
            result->truncated = true;
        } else {
            result->n_itemsets = total;
        }
    }
    for (size_t u = 0; u < m.n_units; u++)
        sm_free(m.units[u].buf);
    sm_free(m.units);
    sm_free(unit_count);
    pthread_mutex_destroy(&m.mu);
    pthread_cond_destroy(&m.cv);
    root_free(&r);
    if (rc != SM_OK) {
        switch (rc) {
        case SM_ERR_NOMEM: return sm_error_set(err, rc, "out of memory while mining");
        case SM_ERR_OVERFLOW: return sm_error_set(err, rc, "more than 2^64-1 itemsets");
        case SM_ERR_CANCELLED: return sm_error_set(err, rc, "mining cancelled");
        default: return sm_error_set(err, rc, "the itemset sink failed: %s", sm_strerror(rc));
        }
    }
    return SM_OK;
}
