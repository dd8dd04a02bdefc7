/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the store's source files: the handle, the byte codecs
 * of storage/SCHEMA.md, transaction helpers that cope with map resizing, and
 * the mapping of LMDB/errno codes to sm_status. Not installed.
 */
#ifndef SEGMINT_STORAGE_STORE_INTERNAL_H
#define SEGMINT_STORAGE_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "kernels/core.h"
#include "segmint/store.h"

/* --- the handle ------------------------------------------------------------ */

enum store_db {
    DB_META = 0,
    DB_CUSTOMERS,     /* external key -> id */
    DB_CUSTOMER_KEYS, /* id -> external key */
    DB_ITEMS,         /* external key -> id */
    DB_ITEM_KEYS,     /* id -> key + description */
    DB_BASKETS,       /* id -> basket record */
    DB_BASKET_KEYS,   /* external key -> id */
    DB_TX,            /* (customer, time, line) -> row */
    DB_FEATURES,      /* (name, part) -> matrix chunk */
    DB_RUNS,          /* run id -> run record */
    DB_ASSIGNMENTS,   /* (run id, customer) -> value */
    DB_COUNT
};

extern const char *const sm_store_db_names[DB_COUNT];

struct sm_store {
    MDB_env *env;
    char *path;            /* canonical directory */
    char *data_path;       /* path/data.mdb, for messages */
    bool read_only;
    bool no_lock;          /* read-only store in a directory we cannot write: MDB_NOLOCK */
    bool write_map;        /* SM_STORE_BULK: MDB_WRITEMAP */
    uint64_t file_reserved; /* write_map: data.mdb is allocated up to here */
    MDB_dbi dbi[DB_COUNT];
    /* Read and write calls hold it shared while they have a transaction
     * open; changing the map size (which LMDB allows only with no
     * transaction active in the process) holds it exclusively. */
    pthread_rwlock_t resize_lock;
    /* sm_store_snapshot_begin's read transaction: while set, every read
     * uses it instead of starting its own, so a job sees one commit. */
    MDB_txn *snapshot;
    dev_t dev;
    ino_t ino;
    bool registered;       /* dev/ino are in the open-store registry */
};

/* --- meta records ------------------------------------------------------------ */

#define SM_SCHEMA_MAGIC "SEGMINT\0"
#define SM_META_SCHEMA "schema"
#define SM_META_STATS "stats"
#define SM_META_SOURCE_PREFIX "source/"
#define SM_META_SHA_PREFIX "sha256/"

/* The "stats" record: little-endian 64-bit fields in this order. */
enum stats_field {
    ST_ROWS = 0,
    ST_REJECTED,
    ST_TX_ROWS,
    ST_ROWS_WITHOUT_CUSTOMER,
    ST_RETURNS,
    ST_FUTURE_ROWS,
    ST_CUSTOMERS,
    ST_ITEMS,
    ST_BASKETS,
    ST_BASKET_ITEMS,
    ST_FIRST_TIME,
    ST_LAST_TIME,
    ST_TOTAL_AMOUNT,
    ST_CUSTOMER_AMOUNT,
    ST_SOURCES,
    ST_IMPORTS,
    ST_NEXT_RUN,
    ST_RUNS,
    ST_FEATURE_SETS,
    ST_FLAGS, /* bit 0: has_time */
    ST_COUNT
};
#define ST_FLAG_HAS_TIME 1u

typedef struct store_stats {
    uint64_t v[ST_COUNT];
} store_stats;

typedef struct store_schema {
    uint32_t version;
    uint32_t money_scale;
    int64_t created;
} store_schema;

enum { SCHEMA_RECORD_BYTES = 24, STATS_RECORD_BYTES = ST_COUNT * 8 };

/* --- byte codecs ---------------------------------------------------------------- */

static inline void be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}
static inline uint32_t be32_get(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void be64_put(unsigned char *p, uint64_t v)
{
    be32_put(p, (uint32_t)(v >> 32));
    be32_put(p + 4, (uint32_t)v);
}
static inline uint64_t be64_get(const unsigned char *p)
{
    return ((uint64_t)be32_get(p) << 32) | be32_get(p + 4);
}
/* Times sort as unsigned big-endian bytes once the sign bit is flipped. */
static inline void time_key_put(unsigned char *p, int64_t t)
{
    be64_put(p, (uint64_t)t ^ UINT64_C(0x8000000000000000));
}
static inline int64_t time_key_get(const unsigned char *p)
{
    return (int64_t)(be64_get(p) ^ UINT64_C(0x8000000000000000));
}
/* Values are little-endian; memcpy keeps unaligned access defined. */
static inline void le16_put(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline uint16_t le16_get(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline void le32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}
static inline uint32_t le32_get(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void le64_put(unsigned char *p, uint64_t v)
{
    le32_put(p, (uint32_t)v);
    le32_put(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t le64_get(const unsigned char *p)
{
    return (uint64_t)le32_get(p) | ((uint64_t)le32_get(p + 4) << 32);
}

/* tx: key = customer u32 BE | time (sign-flipped) u64 BE | line u64 BE,
 * where line = source index << 40 | physical line. */
enum { TX_KEY_BYTES = 20, TX_VALUE_BYTES = 24 };
#define TX_LINE_BITS 40
#define TX_LINE_MAX ((UINT64_C(1) << TX_LINE_BITS) - 1)
static inline uint64_t tx_line_pack(uint32_t source, uint64_t line)
{
    return ((uint64_t)source << TX_LINE_BITS) | line;
}

/* baskets value header; items (u32 LE each) follow. */
enum { BASKET_HEADER_BYTES = 24 };

/* features: key = name | 0x00 | kind | part u32 BE */
enum { FEATURE_PART_BYTES = 16u << 20 }; /* largest value chunk */
#define FEATURE_KIND_HEADER 'h'
#define FEATURE_KIND_IDS 'i'
#define FEATURE_KIND_DATA 'x'

enum { RUN_HEADER_BYTES = 32, RUN_RECORD_MAX = 64u << 20, RUN_VALUE_MAX = 4096 };

/* --- error mapping ------------------------------------------------------------------ */

/* Fills err for an LMDB or errno failure `rc` during `what`, naming the
 * store's data file, and returns the sm_status. */
int store_fail(const sm_store *store, sm_error *err, int rc, const char *what);

/* --- transactions -------------------------------------------------------------------- */

/* Begins a read-only transaction, adopting a map grown by another process
 * (MDB_MAP_RESIZED). Holds resize_lock shared until store_read_end. */
int store_read_begin(sm_store *store, MDB_txn **txn, sm_error *err);
void store_read_end(sm_store *store, MDB_txn *txn);

/* Same for the (single) write transaction. store_write_end aborts when
 * txn is not NULL (commit is done by the caller with store_commit). */
int store_write_begin(sm_store *store, MDB_txn **txn, sm_error *err);
int store_commit(sm_store *store, MDB_txn *txn, sm_error *err);
void store_write_abort(sm_store *store, MDB_txn *txn);

/* Grows the map to at least `size` bytes (rounded up to 4 KiB); no
 * transaction of this process may be open (the lock makes sure). */
int store_grow_map(sm_store *store, uint64_t size, sm_error *err);
/* Sets the map to `size` (never below the pages in use), shrinking too. */
int store_set_map(sm_store *store, uint64_t size, sm_error *err);
uint64_t store_map_size(sm_store *store);
uint64_t store_used_bytes(sm_store *store);

/* For a bulk write on another thread: reads data.mdb's bytes [from, to)
 * through the page cache, stopping early once *stop is set. A writable map
 * (SM_STORE_BULK) fills fresh pages of the allocated file, and bringing
 * each into the page cache (allocating and zeroing it) costs the writer
 * more than writing it; read ahead, the writer finds them there. Changes
 * nothing the writer sees; a no-op for other stores. */
void store_warm_file(sm_store *store, uint64_t from, uint64_t to, const atomic_int *stop);

/* Meta records within a transaction. */
int store_read_schema(sm_store *store, MDB_txn *txn, store_schema *schema, sm_error *err);
int store_read_stats(sm_store *store, MDB_txn *txn, store_stats *stats, sm_error *err);
int store_write_stats(sm_store *store, MDB_txn *txn, const store_stats *stats, sm_error *err);
int store_write_schema(sm_store *store, MDB_txn *txn, const store_schema *schema, sm_error *err);

/* True when `count` records of at least `bytes_each` bytes can fit in the
 * pages in use: counts read from a damaged or hostile file must not drive
 * allocations larger than the file itself. */
static inline bool store_plausible(uint64_t count, uint64_t bytes_each, uint64_t used_bytes)
{
    return bytes_each == 0 || count <= used_bytes / bytes_each;
}

/* A store record that fails a consistency check. */
int store_corrupt(const sm_store *store, sm_error *err, const char *fmt, ...) SM_PRINTF(3, 4);

/* Writes `len` bytes to fd entirely (EINTR-safe). 0 or errno. */
int store_write_all(int fd, const void *data, size_t len);

#endif
