/* SPDX-License-Identifier: MIT */
/**
 * @file store.h
 * @brief The segmint store: one LMDB environment directory holding a
 *        transaction log, its baskets, feature matrices and segmentation runs.
 *
 * A store is created and filled by sm_store_import() (the `segmint import`
 * command) and read by the engine through bulk loaders that return plain
 * arrays in one cursor pass: sm_store_load_tx() (every transaction, grouped
 * by customer and sorted by time) and sm_store_load_baskets() (the basket
 * matrix as CSR). The exact on-disk layout is storage/SCHEMA.md.
 *
 * Thread safety: one sm_store handle may be shared by threads. Read calls
 * may run concurrently with each other and with one writing call (LMDB
 * readers never block the writer); writing calls (import, features_put,
 * run_write) are serialised by LMDB's writer lock, also across processes.
 * Do not open the same store twice in one process (refused with
 * SM_ERR_INVALID_STATE) and do not call store functions from a progress
 * callback. After fork() the child must not use the parent's handle; it may
 * open the store again. GNU OpenMP does not survive fork(): a child whose
 * parent ran an import with more than one thread hangs in its first
 * parallel region, so such a child imports with n_threads = 1 (or exec()s).
 *
 * Every returned array is owned by the caller and released with the matching
 * *_free function, which accepts a zeroed or already freed struct.
 */
#ifndef SEGMINT_STORE_H
#define SEGMINT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/common.h"
#include "segmint/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Schema version this build writes and the newest it reads. */
#define SM_STORE_SCHEMA_VERSION 1u

typedef uint32_t sm_basket_id; /**< dense basket id, 0..n_baskets-1 */
#define SM_PRI_BASKET PRIu32

#define SM_CUSTOMER_NONE UINT32_MAX /**< a basket or row without a customer */
#define SM_ITEM_NONE UINT32_MAX     /**< a row without an item (CDNOW) */
#define SM_TIME_NONE INT64_MIN      /**< a basket without a timestamp (FIMI) */
#define SM_STORE_KEY_MAX 255u       /**< longest external key (customer, item, basket), bytes */
#define SM_STORE_NAME_MAX 200u      /**< longest feature-set name, bytes */

/** Flags of a transaction row (sm_tx_table.flags). */
enum {
    SM_TX_RETURN = 1u << 0,    /**< a return: quantity and amount are negative */
    SM_TX_CANCELLED = 1u << 1, /**< on a cancellation invoice ("C..." in Online Retail) */
    SM_TX_FUTURE = 1u << 2     /**< dated after the import's "now" (kept by --future keep) */
};

/** Flags of a basket (sm_basket_table.flags). */
enum {
    SM_BASKET_RETURN = 1u << 0,      /**< every row of the basket is a return */
    SM_BASKET_HAS_RETURNS = 1u << 1, /**< at least one row is a return */
    SM_BASKET_CANCELLED = 1u << 2    /**< a cancellation invoice */
};

/* ------------------------------------------------------------------------- */
/** @name Opening and closing */
/** @{ */

/** sm_store_open() flags. */
enum {
    SM_STORE_READ_ONLY = 0,       /**< MDB_RDONLY; an untrusted store is checked, never trusted */
    SM_STORE_READ_WRITE = 1u << 0,
    SM_STORE_CREATE = (1u << 1) | (1u << 0), /**< create the directory and an empty store if absent */
    SM_STORE_VERIFY = 1u << 2,    /**< also walk every page of data.mdb before LMDB maps it (reads the whole
                                       file; use it for stores from elsewhere: LMDB trusts page contents) */
    SM_STORE_BULK = (1u << 3) | (1u << 0) /**< read-write, for imports: LMDB writes pages in place through a
                                       writable map (MDB_WRITEMAP) instead of allocating and copying them,
                                       and data.mdb is kept allocated up to the map size, so a full disk is
                                       an error before a write, never SIGBUS during one. Combine with
                                       SM_STORE_CREATE as needed */
};

typedef struct sm_store sm_store;

/**
 * Opens (or with SM_STORE_CREATE creates) the store in directory `dir`.
 *
 * The directory must be a real directory and data.mdb/lock.mdb, when present,
 * regular files (a symlink is refused). The schema record is checked: a
 * directory that is not a segmint store, or one written by a newer segmint,
 * is refused with a message saying which. Both LMDB meta pages are checked
 * before LMDB opens the file, so a truncated file or a damaged header is
 * reported, never mapped past its end. A read-only open of a store in a
 * directory we cannot write (no lock.mdb possible) reads without LMDB's lock
 * table, which is safe only while no process writes that store.
 *
 * @param[in]  dir   store directory (created with mode 0755 under SM_STORE_CREATE)
 * @param[in]  flags SM_STORE_READ_ONLY, SM_STORE_READ_WRITE or SM_STORE_CREATE, optionally | SM_STORE_VERIFY
 *                   or | SM_STORE_BULK
 * @param[out] out   the handle; NULL on failure (nothing to clean up)
 * @return SM_OK; SM_ERR_NOT_FOUND (no store there and no CREATE); SM_ERR_IO
 *         (path unusable; cause = errno); SM_ERR_SCHEMA (not a segmint store,
 *         or a newer schema); SM_ERR_STORAGE (corrupt or truncated; cause =
 *         LMDB code); SM_ERR_INVALID_STATE (already open in this process);
 *         SM_ERR_NOMEM.
 */
SM_API int sm_store_open(const char *dir, unsigned flags, sm_store **out, sm_error *err);

/** Closes the store. Accepts NULL. No call may be running on the handle. */
SM_API void sm_store_close(sm_store *store);

/** The directory the store was opened from. Valid until sm_store_close. */
SM_API const char *sm_store_path(const sm_store *store);

/** @} */

/* ------------------------------------------------------------------------- */
/** @name Summary */
/** @{ */

/** Counts and ranges from the store's meta record (read in O(1)). */
typedef struct sm_store_info {
    uint32_t schema_version;      /**< SM_STORE_SCHEMA_VERSION of the writer */
    uint32_t money_scale;         /**< minor units per major unit: 1, 10, 100 (default), ... 10^6 */
    sm_count rows;                /**< input rows stored: returns and rows without a customer included */
    sm_count rejected;            /**< input rows rejected, all imports together */
    sm_count tx_rows;             /**< rows with a customer (the tx sub-database) */
    sm_count rows_without_customer; /**< rows kept for baskets only */
    sm_count returns;             /**< rows flagged SM_TX_RETURN */
    sm_count future_rows;         /**< rows flagged SM_TX_FUTURE */
    uint32_t customers;           /**< dense customer ids are 0..customers-1 */
    uint32_t items;               /**< dense item ids are 0..items-1 */
    sm_count baskets;             /**< dense basket ids are 0..baskets-1 */
    sm_count basket_items;        /**< sum over baskets of distinct items */
    bool has_time;                /**< false when no stored row has a timestamp (FIMI only) */
    int64_t first_time;           /**< earliest row, UTC seconds (valid if has_time) */
    int64_t last_time;            /**< latest row, UTC seconds (valid if has_time) */
    int64_t total_amount;         /**< sum of all stored rows' amounts, minor units, net of returns */
    int64_t customer_amount;      /**< the same over rows with a customer */
    uint32_t sources;             /**< input files imported */
    uint32_t imports;             /**< successful sm_store_import calls */
    uint32_t feature_sets;        /**< named feature matrices */
    uint64_t runs;                /**< stored runs */
    uint64_t map_size;            /**< current LMDB map size, bytes */
    uint64_t used_bytes;          /**< pages in use, bytes (data.mdb may be larger) */
} sm_store_info;

/**
 * Pins one read snapshot on the handle: until sm_store_snapshot_end, every
 * read through it (info, loads, keys, runs) sees the same committed state,
 * and commits by other processes, such as an import running meanwhile, stay
 * invisible. A job that reads the store several times (segmint run) pins
 * one so its counts, transactions and baskets describe the same data.
 * While pinned, reads must come from one thread at a time and writes through
 * this handle are refused (SM_ERR_INVALID_STATE); end it before writing.
 * Old pages stay reserved while it is held, so do not keep it for days.
 * @return SM_OK; SM_ERR_INVALID_STATE (already pinned); SM_ERR_STORAGE.
 */
SM_API int sm_store_snapshot_begin(sm_store *store, sm_error *err);

/** Releases the pinned snapshot; a no-op when none is pinned. Accepts NULL. */
SM_API void sm_store_snapshot_end(sm_store *store);

/** Fills `info`. Thread-safe (one thread at a time while a snapshot is pinned). @return SM_OK, SM_ERR_STORAGE. */
SM_API int sm_store_get_info(sm_store *store, sm_store_info *info, sm_error *err);

/** One imported input file (meta record). */
typedef struct sm_store_source {
    char *path;            /**< path as given to import (absolute) */
    char *format;          /**< "csv", "online-retail", "cdnow", "fimi", "basket-csv" */
    char sha256[65];       /**< hex checksum of the file's bytes; the duplicate check */
    uint64_t bytes;        /**< file size */
    sm_count rows;         /**< rows stored from it */
    sm_count rejected;     /**< rows rejected from it */
    int64_t imported_at;   /**< UTC seconds */
    uint32_t import_id;    /**< 1-based number of the import that brought it */
    char *rejects_path;    /**< rejects file of that import, "" when nothing was rejected */
} sm_store_source;

/** Lists the imported files in import order. Free with sm_store_sources_free. */
SM_API int sm_store_sources(sm_store *store, sm_store_source **out, size_t *n, sm_error *err);
SM_API void sm_store_sources_free(sm_store_source *sources, size_t n);

/** @} */

/* ------------------------------------------------------------------------- */
/** @name Bulk loads for the engine */
/** @{ */

/**
 * Every transaction row with a customer, grouped by customer id and sorted by
 * (time, input order) within a customer: customer c's rows are
 * [customer_offsets[c], customer_offsets[c+1]). Rows without a customer are
 * not here (they are only in baskets). All arrays have n_rows entries except
 * customer_offsets (n_customers+1). Owned by the caller.
 */
typedef struct sm_tx_table {
    uint32_t n_customers;        /**< = sm_store_info.customers */
    uint64_t n_rows;             /**< = sm_store_info.tx_rows */
    uint32_t money_scale;        /**< amounts are in 1/money_scale major units */
    uint64_t *customer_offsets;  /**< n_customers+1, nondecreasing, [0] = 0, [n_customers] = n_rows */
    int64_t *time;               /**< UTC seconds */
    int64_t *amount;             /**< minor units; negative for returns */
    int32_t *quantity;           /**< negative for returns; never 0 */
    sm_item_id *item;            /**< < n_items, or SM_ITEM_NONE */
    sm_basket_id *basket;        /**< < n_baskets */
    uint16_t *flags;             /**< SM_TX_* */
} sm_tx_table;

/**
 * Loads sm_tx_table in one cursor pass over the tx sub-database. Every record
 * is checked (sizes, ids in range, order), so a damaged store gives
 * SM_ERR_STORAGE rather than a wrong table. Thread-safe.
 * @param[in] progress optional; stage "load tx"; cancelling gives SM_ERR_CANCELLED
 * @return SM_OK, SM_ERR_NOMEM, SM_ERR_STORAGE, SM_ERR_CANCELLED.
 */
SM_API int sm_store_load_tx(sm_store *store, sm_tx_table *out, const sm_progress *progress, sm_error *err);
SM_API void sm_tx_table_free(sm_tx_table *table);

/** sm_store_load_baskets() options. */
enum {
    SM_BASKETS_ALL = 0,
    SM_BASKETS_EXCLUDE_RETURNS = 1u << 0, /**< leave out baskets flagged SM_BASKET_RETURN */
    SM_BASKETS_SKIP_EMPTY = 1u << 1       /**< leave out baskets with no items (CDNOW rows) */
};

/**
 * The basket matrix: row r of `csr` is basket basket_id[r] with its sorted
 * distinct items. `csr` points into `offsets` and `items`, which the table
 * owns. Rows are in basket-id order; n = csr.n_rows.
 */
typedef struct sm_basket_table {
    sm_csr csr;                /**< n_rows baskets; n_items = store items */
    uint64_t *offsets;         /**< n+1 */
    sm_item_id *items;         /**< offsets[n] */
    sm_basket_id *basket_id;   /**< n; the store's id of each row */
    sm_customer_id *customer;  /**< n; SM_CUSTOMER_NONE when the basket has no customer */
    int64_t *time;             /**< n; earliest row of the basket, or SM_TIME_NONE */
    uint16_t *flags;           /**< n; SM_BASKET_* */
    sm_count skipped_returns;  /**< baskets left out by SM_BASKETS_EXCLUDE_RETURNS */
    sm_count skipped_empty;    /**< baskets left out by SM_BASKETS_SKIP_EMPTY */
} sm_basket_table;

/** Loads the baskets in one cursor pass. Thread-safe. @return as sm_store_load_tx. */
SM_API int sm_store_load_baskets(sm_store *store, unsigned options, sm_basket_table *out,
                                 const sm_progress *progress, sm_error *err);
SM_API void sm_basket_table_free(sm_basket_table *table);

/** Which key space a lookup is about. */
typedef enum sm_key_kind {
    SM_KEYS_CUSTOMERS = 0,
    SM_KEYS_ITEMS = 1,
    /** Basket (invoice/order) keys. The store keeps only key -> id for
     *  baskets, and not every basket has an external key: see
     *  sm_store_load_keys. */
    SM_KEYS_BASKETS = 2
} sm_key_kind;

/**
 * All external keys of one kind, indexed by dense id: keys[i] is the
 * NUL-terminated key of id i; for items, descriptions[i] is the first
 * description seen ("" when none; NULL array for customers and baskets). The
 * strings live in one block owned by the table.
 */
typedef struct sm_key_table {
    uint32_t n;                 /**< number of ids */
    char **keys;                /**< n */
    char **descriptions;        /**< n for items, NULL for customers and baskets */
    char *text;                 /**< backing store of all strings */
} sm_key_table;

/**
 * Loads every key of `kind` in one pass. Thread-safe.
 *
 * SM_KEYS_BASKETS: keys[b] is the invoice/order key basket b was imported
 * with (the basket column), built in one cursor pass over the key -> id
 * records. A basket without one has keys[b] = "": baskets synthesised from
 * (customer, time) when the input has no basket column, whose internal key
 * (starting with 0x1F, storage/SCHEMA.md) is not an external key, and
 * baskets of FIMI and basket-CSV lines, which have no key at all.
 * @return SM_OK, SM_ERR_INVALID_ARG (unknown kind), SM_ERR_NOMEM,
 *         SM_ERR_STORAGE (records that do not match the meta counts, an id
 *         out of range or met twice, a malformed key).
 */
SM_API int sm_store_load_keys(sm_store *store, sm_key_kind kind, sm_key_table *out, sm_error *err);
SM_API void sm_key_table_free(sm_key_table *table);

/**
 * One key by id, copied NUL-terminated into buf (cap bytes; SM_STORE_KEY_MAX+1
 * always suffices). With `description` non-NULL (items only) the item's
 * description is copied there too (desc_cap bytes, truncated at a UTF-8
 * boundary if longer). Customers and items only: basket keys are stored
 * key -> id, so finding one by id is a scan (sm_store_load_keys does it once
 * for all). @return SM_OK, SM_ERR_NOT_FOUND (id out of range),
 * SM_ERR_INVALID_ARG (buffer too small, SM_KEYS_BASKETS), SM_ERR_STORAGE.
 */
SM_API int sm_store_key(sm_store *store, sm_key_kind kind, uint32_t id, char *buf, size_t cap,
                        char *description, size_t desc_cap, sm_error *err);

/** Dense id of an external key (any kind). @return SM_OK, SM_ERR_NOT_FOUND, SM_ERR_STORAGE. */
SM_API int sm_store_find(sm_store *store, sm_key_kind kind, const char *key, size_t len, uint32_t *id,
                         sm_error *err);

/** @} */

/* ------------------------------------------------------------------------- */
/** @name Feature matrices */
/** @{ */

/**
 * Stores a float32 row-major matrix under `name` (replacing one of the same
 * name) in one write transaction: n rows (one per customer), d columns.
 * @param[in] x            n rows of d floats, row r at x + r*ld (ld >= d)
 * @param[in] column_names d NUL-terminated names (each < 256 bytes)
 * @param[in] customers    n customer ids, the row owners
 * @return SM_OK, SM_ERR_INVALID_ARG (name empty/too long, d = 0, ld < d,
 *         NaN or infinity in x), SM_ERR_OVERFLOW, SM_ERR_STORAGE, SM_ERR_NOMEM.
 */
SM_API int sm_store_features_put(sm_store *store, const char *name, const float *x, uint64_t n, uint32_t d,
                                 size_t ld, const char *const *column_names, const sm_customer_id *customers,
                                 sm_error *err);

/** A feature matrix read back: data is 64-byte aligned, n x d, ld = d. */
typedef struct sm_feature_matrix {
    uint64_t n;                 /**< rows */
    uint32_t d;                 /**< columns */
    size_t ld;                  /**< = d */
    float *data;                /**< n*ld floats, 64-byte aligned (sm_aligned_alloc) */
    char **column_names;        /**< d strings */
    sm_customer_id *customers;  /**< n */
    int64_t created;            /**< UTC seconds of the put */
} sm_feature_matrix;

/**
 * Reads `name` back with one memcpy per stored chunk into an aligned buffer.
 * @return SM_OK, SM_ERR_NOT_FOUND, SM_ERR_STORAGE, SM_ERR_NOMEM.
 */
SM_API int sm_store_features_get(sm_store *store, const char *name, sm_feature_matrix *out, sm_error *err);
SM_API void sm_feature_matrix_free(sm_feature_matrix *m);

/** Names of the stored feature matrices, sorted. Free with sm_store_names_free. */
SM_API int sm_store_features_list(sm_store *store, char ***names, size_t *n, sm_error *err);
SM_API void sm_store_names_free(char **names, size_t n);

/** @} */

/* ------------------------------------------------------------------------- */
/** @name Runs and assignments */
/** @{ */

/**
 * Writes a run and its per-customer assignment values in ONE write
 * transaction: either both are visible afterwards or neither is.
 * @param[in]  record      opaque run description chosen by the engine (e.g. JSON), record_len bytes (<= 64 MiB)
 * @param[in]  customers   n customer ids, strictly ascending
 * @param[in]  values      n values of value_size bytes each (value_size 1..4096), in customers' order
 * @param[out] run_id      the new run's id (1, 2, ...)
 * @return SM_OK, SM_ERR_INVALID_ARG (sizes, order), SM_ERR_OVERFLOW, SM_ERR_STORAGE, SM_ERR_NOMEM.
 */
SM_API int sm_store_run_write(sm_store *store, const void *record, size_t record_len,
                              const sm_customer_id *customers, const void *values, uint32_t value_size,
                              uint64_t n, uint64_t *run_id, sm_error *err);

/** A stored run's header and record. */
typedef struct sm_run_info {
    uint64_t id;
    int64_t created;           /**< UTC seconds */
    uint64_t n_assignments;
    uint32_t value_size;
    size_t record_len;
    void *record;              /**< record_len bytes + a NUL (so JSON can be used as a string) */
} sm_run_info;

/** Lists runs in id order. Free with sm_run_info_free. */
SM_API int sm_store_runs_list(sm_store *store, sm_run_info **runs, size_t *n, sm_error *err);
SM_API void sm_run_info_free(sm_run_info *runs, size_t n);

/** A run's assignments in customer order. */
typedef struct sm_assignments {
    uint64_t n;
    uint32_t value_size;
    sm_customer_id *customers; /**< n, ascending */
    unsigned char *values;     /**< n*value_size bytes */
} sm_assignments;

/** Reads run `run_id`'s assignments in one cursor pass. @return SM_OK, SM_ERR_NOT_FOUND, ... */
SM_API int sm_store_run_assignments(sm_store *store, uint64_t run_id, sm_assignments *out, sm_error *err);
SM_API void sm_assignments_free(sm_assignments *a);

/** @} */

/* ------------------------------------------------------------------------- */
/** @name Import */
/** @{ */

/** Input formats (README "The store and importers" describes each). */
typedef enum sm_import_format {
    SM_FORMAT_CSV = 0,          /**< generic transaction CSV with a header (--map or detected columns) */
    SM_FORMAT_ONLINE_RETAIL,    /**< UCI Online Retail layout */
    SM_FORMAT_CDNOW,            /**< CDNOW master (4 columns) or sample (5 columns), whitespace separated */
    SM_FORMAT_FIMI,             /**< one basket per line, space-separated item ids */
    SM_FORMAT_BASKET_CSV        /**< one basket per line, delimiter-separated item names */
} sm_import_format;

/** "csv", "online-retail", ... -> format. @return SM_OK or SM_ERR_INVALID_ARG. */
SM_API int sm_import_format_parse(const char *name, sm_import_format *out);
/** The name of a format ("csv"). */
SM_API const char *sm_import_format_name(sm_import_format format);

/** What to do with rows dated after `now`. */
typedef enum sm_future_policy {
    SM_FUTURE_REJECT = 0,  /**< default: reject the row, naming the date */
    SM_FUTURE_KEEP = 1     /**< keep it, flagged SM_TX_FUTURE and counted */
} sm_future_policy;

/** Called once per rejected row with its location and reason (not after --strict aborts). */
typedef void (*sm_reject_fn)(void *user, const sm_error *reject);

typedef struct sm_import_options {
    sm_import_format format;   /**< default SM_FORMAT_CSV */
    const char *map;           /**< csv: "customer=COL,time=COL,..." (names or 1-based numbers); NULL = detect from the header */
    char delimiter;            /**< csv, basket-csv; default ',' */
    const char *time_format;   /**< strptime format for the time column; NULL = ISO 8601 or epoch seconds */
    int64_t now;               /**< UTC seconds that "future" is relative to; 0 = the time of the import */
    sm_future_policy future;   /**< default SM_FUTURE_REJECT */
    bool strict;               /**< the first bad row aborts the import, nothing written */
    bool force;                /**< import files whose checksum is already in the store */
    uint32_t money_scale;      /**< a new store's scale (power of 10, <= 10^6); 0 = 100; an existing store keeps its own */
    uint64_t memory_budget;    /**< bytes of parsed rows held before sorted runs spill to disk; 0 = 1 GiB */
    const char *temp_dir;      /**< directory for spilled runs; NULL = the store directory */
    uint64_t map_size;         /**< map size to start this import with (never below the data); 0 = keep (new stores start at 64 MiB) */
    uint64_t map_size_max;     /**< hard cap on map growth; 0 = 1 TiB */
    bool grow_on_demand;       /**< do not pre-size the map from an estimate: only grow on MDB_MAP_FULL (tests) */
    int n_threads;             /**< 0 = OpenMP default; >= 2 parses and interns in two threads; 1 enters no OpenMP region */
    sm_progress progress;      /**< stages "checksum", "parse" (bytes), "sort", "write" (rows), "write baskets",
                                    "commit"; always called on the calling thread */
    sm_reject_fn on_reject;    /**< optional */
    void *reject_user;         /**< passed to on_reject */
} sm_import_options;

/** Fills the defaults documented above. */
SM_API void sm_import_options_init(sm_import_options *options);

/** What an import did. */
typedef struct sm_import_result {
    sm_count rows_read;          /**< data rows seen (header and blank lines excluded) */
    sm_count rows_stored;        /**< = rows_read - rejected */
    sm_count rejected;
    sm_count rows_without_customer;
    sm_count returns;
    sm_count future_rows;
    sm_count blank_lines;        /**< skipped, not rows */
    uint32_t new_customers;
    uint32_t new_items;
    sm_count new_baskets;
    uint32_t import_id;          /**< 1-based */
    uint32_t map_growths;        /**< MDB_MAP_FULL -> grow x2 -> replay events */
    uint64_t map_size;           /**< final map size */
    uint32_t spilled_runs;       /**< sorted runs written to temp files */
    char rejects_path[SM_ERROR_PATH_MAX]; /**< rejects file, "" when none */
} sm_import_result;

/**
 * Imports files into an open read-write store in ONE write transaction: on
 * any failure, cancellation or kill, the store is exactly as before.
 * Rows are parsed and validated, sorted (spilling sorted runs to temp files
 * beyond memory_budget) and written in key order. Each rejected row is passed
 * to on_reject and written to a rejects file in the store directory.
 * @param[in] paths n_paths input files
 * @return SM_OK; SM_ERR_EXISTS (a file was imported before and !force);
 *         SM_ERR_PARSE (header/--map problem, or the first bad row under
 *         strict); SM_ERR_IO (unreadable input or temp/rejects file; path set);
 *         SM_ERR_STORAGE (LMDB failure, disk full, map cap reached: the
 *         message names the input file and line reached); SM_ERR_SCHEMA;
 *         SM_ERR_CANCELLED; SM_ERR_OVERFLOW; SM_ERR_NOMEM; SM_ERR_INVALID_ARG.
 */
SM_API int sm_store_import(sm_store *store, const char *const *paths, size_t n_paths,
                           const sm_import_options *options, sm_import_result *result, sm_error *err);

/** @} */

#ifdef __cplusplus
}
#endif
#endif /* SEGMINT_STORE_H */
