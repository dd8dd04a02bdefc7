/* SPDX-License-Identifier: MIT */
/**
 * @file common.h
 * @brief Types every segmint module shares: sizes, ids, progress and cancellation.
 *
 * Naming: `n` points (customers, rows, baskets), `d` dimensions (features),
 * `k` clusters. Matrices are row-major float32 with an explicit leading
 * dimension `ld` (elements between the starts of consecutive rows, ld >= d).
 */
#ifndef SEGMINT_COMMON_H
#define SEGMINT_COMMON_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Only functions marked SM_API are exported from the shared library
 * (the build uses -fvisibility=hidden). */
#if defined(SM_BUILDING_LIBRARY) && defined(__GNUC__)
#define SM_API __attribute__((visibility("default")))
#else
#define SM_API
#endif

typedef uint32_t sm_customer_id; /**< dense customer id, 0..n_customers-1 */
typedef uint32_t sm_item_id;     /**< dense item id, 0..n_items-1 */
typedef uint32_t sm_cluster_id;  /**< cluster label, 0..k-1 */
typedef uint64_t sm_count;       /**< counts that may exceed 2^32 (rows, itemsets) */

#define SM_PRI_CUSTOMER PRIu32
#define SM_PRI_ITEM PRIu32
#define SM_PRI_CLUSTER PRIu32
#define SM_PRI_COUNT PRIu64

/**
 * Progress callback for long jobs.
 *
 * Called from the thread that started the job (never from inside a parallel
 * region), at most a few hundred times per job, with `done` <= `total`
 * (`total` may be 0 when unknown). `stage` is a static string naming the
 * phase ("assign", "import", ...).
 *
 * @return 0 to continue; any other value cancels the job, which then stops at
 *         the next safe point, releases what it allocated and returns
 *         SM_ERR_CANCELLED. Stored data are never left half-written.
 */
typedef int (*sm_progress_fn)(void *user, const char *stage, uint64_t done, uint64_t total);

/** A progress callback together with its user pointer; a NULL fn means silent. */
typedef struct sm_progress {
    sm_progress_fn fn; /**< may be NULL */
    void *user;        /**< passed back to fn unchanged */
} sm_progress;

/**
 * Compressed sparse rows of item ids: the basket matrix.
 * Row r holds items[offsets[r] .. offsets[r+1]-1], sorted ascending, distinct.
 */
typedef struct sm_csr {
    uint64_t n_rows;        /**< number of baskets */
    uint32_t n_items;       /**< item ids are < n_items */
    const uint64_t *offsets; /**< n_rows+1 entries, offsets[0] = 0 */
    const sm_item_id *items; /**< offsets[n_rows] entries */
} sm_csr;

#ifdef __cplusplus
}
#endif
#endif /* SEGMINT_COMMON_H */
