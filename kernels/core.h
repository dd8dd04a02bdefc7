/* SPDX-License-Identifier: MIT */
/*
 * Internal toolkit shared by every segmint module: error recording, checked
 * allocation (with a test hook that fails the Nth allocation, as SQLite's
 * OOM loop does), overflow-checked size arithmetic and invariant macros.
 * Not installed; not part of the public API.
 */
#ifndef SEGMINT_KERNELS_CORE_H
#define SEGMINT_KERNELS_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/common.h"
#include "segmint/error.h"

#if defined(__GNUC__)
#define SM_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define SM_PRINTF(fmt_index, args_index)
#endif

/* --- errors ------------------------------------------------------------- */

/* Record a failure in `err` (which may be NULL) and return `code`, so call
 * sites read `return sm_error_set(err, SM_ERR_INVALID_ARG, "k=%d ...", k);` */
int sm_error_set(sm_error *err, int code, const char *fmt, ...) SM_PRINTF(3, 4);

/* As sm_error_set, for a problem at a position in an input file. `field` may
 * be NULL; line/column 0 mean unknown. */
int sm_error_set_at(sm_error *err, int code, const char *path, uint64_t line, uint32_t column,
                    const char *field, const char *fmt, ...) SM_PRINTF(7, 8);

/* Attach the errno/LMDB cause to an already filled record. */
void sm_error_set_cause(sm_error *err, int cause);

/* --- allocation ----------------------------------------------------------- */

/* All library allocations go through these so that the fault-injection hook
 * sees them. Sizes are checked: an n*size that overflows returns NULL. */
void *sm_malloc(size_t size);
void *sm_calloc(size_t n, size_t size);
void *sm_alloc_array(size_t n, size_t size);
void *sm_realloc_array(void *p, size_t n, size_t size);
/* 64-byte aligned (cache lines, AVX-512 rows); release with sm_free. */
void *sm_aligned_alloc(size_t n, size_t size);
char *sm_strdup(const char *s);
void sm_free(void *p);

/* Test hook: make allocation number `nth` (1-based, counted from this call)
 * fail; with `persistent`, every later one fails too. nth = 0 disables.
 * Thread-safe; intended for tests only. */
void sm_alloc_fail_at(uint64_t nth, bool persistent);
/* Allocations attempted since the last sm_alloc_fail_at call. */
uint64_t sm_alloc_attempts(void);

/* --- size arithmetic ---------------------------------------------------- */

/* *out = a * b; false (and *out untouched) if it overflows. */
static inline bool sm_mul_size(size_t a, size_t b, size_t *out)
{
    size_t product; /* the builtin stores the wrapped value even on overflow */
    if (__builtin_mul_overflow(a, b, &product))
        return false;
    *out = product;
    return true;
}
static inline bool sm_add_size(size_t a, size_t b, size_t *out)
{
    size_t sum;
    if (__builtin_add_overflow(a, b, &sum))
        return false;
    *out = sum;
    return true;
}

/* --- invariants ----------------------------------------------------------- */

/* SM_ASSERT states an internal invariant that no input can break.
 * SM_ALWAYS/SM_NEVER mark defensive checks we believe cannot fire: they
 * assert in debug builds and pass the value through in release builds. */
#ifdef NDEBUG
#define SM_ASSERT(x) ((void)0)
#define SM_ALWAYS(x) (x)
#define SM_NEVER(x) (x)
#else
#include <assert.h>
#define SM_ASSERT(x) assert(x)
#define SM_ALWAYS(x) ((x) ? 1 : (assert(0), 0))
#define SM_NEVER(x) ((x) ? (assert(0), 1) : 0)
#endif

#define SM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SM_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- deterministic parallelism ------------------------------------------ */

/* Rows per block for reductions whose result must not depend on the thread
 * count: each block produces a partial in double, partials are combined in
 * block order on one thread. Constant, never derived from omp_get_num_threads. */
#define SM_REDUCE_BLOCK 4096

/* Number of blocks of `block` rows covering n rows. */
static inline size_t sm_block_count(size_t n, size_t block)
{
    return n / block + (n % block != 0);
}

/* Calls the progress callback if one is set; returns nonzero to cancel. */
static inline int sm_progress_report(const sm_progress *progress, const char *stage, uint64_t done,
                                     uint64_t total)
{
    if (progress == NULL || progress->fn == NULL)
        return 0;
    return progress->fn(progress->user, stage, done, total);
}

#endif /* SEGMINT_KERNELS_CORE_H */
