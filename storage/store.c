/* SPDX-License-Identifier: MIT */
/*
 * Opening, checking and closing a store; its meta records; transactions that
 * survive map growth by this or another process. Opening never trusts the
 * files: the directory and data files must be what they claim (no symlinks),
 * data.mdb must hold every page its meta page promises (a truncated file
 * would otherwise fault on first touch), and the schema record must be ours
 * and not newer. The layout itself is storage/SCHEMA.md.
 */
#include "storage/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/verify.h"

const char *const sm_store_db_names[DB_COUNT] = {
    "meta", "customers", "customer_keys", "items", "item_keys", "baskets",
    "basket_keys", "tx", "features", "runs", "assignments",
};

enum { STORE_MAX_DBS = 16, STORE_MAX_READERS = 1024 };
#define STORE_DEFAULT_MAP (UINT64_C(64) << 20)
/* A bulk open allocates the whole map on disk, and the import sizes it
 * for its data anyway: a new store starts small. */
#define STORE_BULK_INITIAL_MAP (UINT64_C(1) << 20)

/* --- one open handle per data file per process --------------------------------------- */

/* LMDB forbids opening one environment twice in a process: closing either
 * handle would drop the other's POSIX locks. The registry refuses it. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    dev_t dev;
    ino_t ino;
    pid_t pid; /* a forked child inherits the table but not the handles' use */
} registry[64];
static size_t registry_n;

static bool registry_add(dev_t dev, ino_t ino)
{
    bool ok = true;
    pid_t self = getpid();
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < registry_n; i++)
        if (registry[i].pid != self)
            registry[i--] = registry[--registry_n];
        else if (registry[i].dev == dev && registry[i].ino == ino)
            ok = false;
    if (ok && registry_n < SM_ARRAY_LEN(registry)) {
        registry[registry_n].dev = dev;
        registry[registry_n].ino = ino;
        registry[registry_n].pid = self;
        registry_n++;
    }
    pthread_mutex_unlock(&registry_lock);
    return ok;
}

static void registry_remove(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < registry_n; i++)
        if (registry[i].dev == dev && registry[i].ino == ino && registry[i].pid == getpid()) {
            registry[i] = registry[--registry_n];
            break;
        }
    pthread_mutex_unlock(&registry_lock);
}

/* --- errors ------------------------------------------------------------------------ */

int store_fail(const sm_store *store, sm_error *err, int rc, const char *what)
{
    const char *path = store != NULL ? store->data_path : "";
    int code;
    const char *hint = "";
    switch (rc) {
    case ENOMEM:
        code = SM_ERR_NOMEM;
        break;
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EACCES:
    case EROFS:
    case EFBIG:
        code = SM_ERR_IO;
        if (rc == ENOSPC || rc == EDQUOT || rc == EIO || rc == EFBIG)
            hint = " (a write to the store file failed, e.g. a full disk; the store is unchanged)";
        break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        code = SM_ERR_STORAGE;
        hint = " (the store file is damaged or not an LMDB file)";
        break;
    case MDB_READERS_FULL:
        code = SM_ERR_STORAGE;
        hint = " (more than 1024 concurrent readers; close some)";
        break;
    case MDB_BAD_VALSIZE:
        code = SM_ERR_INVALID_ARG;
        break;
    default:
        code = SM_ERR_STORAGE;
        break;
    }
    sm_error_set_at(err, code, path, 0, 0, NULL, "%s: %s%s", what, mdb_strerror(rc), hint);
    sm_error_set_cause(err, rc);
    return code;
}

int store_corrupt(const sm_store *store, sm_error *err, const char *fmt, ...)
{
    char text[SM_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    sm_error_set_at(err, SM_ERR_STORAGE, store != NULL ? store->data_path : "", 0, 0, NULL,
                    "corrupt store: %s", text);
    sm_error_set_cause(err, MDB_CORRUPTED);
    return SM_ERR_STORAGE;
}

int store_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* --- transactions ------------------------------------------------------------------- */

static int adopt_resized_map(sm_store *store, sm_error *err)
{
    pthread_rwlock_wrlock(&store->resize_lock);
    int rc = mdb_env_set_mapsize(store->env, 0);
    pthread_rwlock_unlock(&store->resize_lock);
    if (rc != 0)
        return store_fail(store, err, rc, "adopting the map size grown by another process");
    return SM_OK;
}

static int begin(sm_store *store, unsigned flags, MDB_txn **txn, sm_error *err)
{
    *txn = NULL;
    bool readers_checked = false;
    for (int attempt = 0;; attempt++) {
        pthread_rwlock_rdlock(&store->resize_lock);
        int rc = mdb_txn_begin(store->env, NULL, flags, txn);
        if (rc == 0)
            return SM_OK;
        pthread_rwlock_unlock(&store->resize_lock);
        *txn = NULL;
        if (rc == MDB_MAP_RESIZED && attempt < 8) {
            int status = adopt_resized_map(store, err);
            if (status != SM_OK)
                return status;
            continue;
        }
        /* The table may be full of slots left by readers killed since the
         * open cleared them (F1); if clearing frees any, try once more. */
        int dead = 0;
        if (rc == MDB_READERS_FULL && !readers_checked && mdb_reader_check(store->env, &dead) == 0 && dead > 0) {
            readers_checked = true;
            continue;
        }
        return store_fail(store, err, rc, flags & MDB_RDONLY ? "starting a read transaction"
                                                             : "starting a write transaction");
    }
}

int store_read_begin(sm_store *store, MDB_txn **txn, sm_error *err)
{
    if (store->snapshot != NULL) {
        *txn = store->snapshot;
        return SM_OK;
    }
    return begin(store, MDB_RDONLY, txn, err);
}

void store_read_end(sm_store *store, MDB_txn *txn)
{
    if (txn == NULL || txn == store->snapshot)
        return;
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&store->resize_lock);
}

/* With MDB_WRITEMAP, LMDB extends data.mdb to the map size as a sparse file
 * and writes new pages through the map, so a full disk would strike as
 * SIGBUS on a page fault in the middle of a transaction. Allocating the file
 * up to the map size before the map grows (LMDB would leave its handle
 * unusable if it failed to extend the file itself) and before each write
 * transaction (another process may have grown the map) turns that into an
 * error with nothing written. */
static int reserve_file(sm_store *store, uint64_t size, sm_error *err)
{
    if (size <= store->file_reserved)
        return SM_OK;
    int fd;
    int rc = mdb_env_get_fd(store->env, &fd);
    if (rc != 0)
        return store_fail(store, err, rc, "reserving room for the map");
    rc = posix_fallocate(fd, 0, (off_t)size);
    if (rc != 0) {
        sm_error_set_at(err, SM_ERR_IO, store->data_path, 0, 0, NULL,
                        "cannot allocate %" PRIu64 " bytes for the store's map: %s; the store is unchanged", size,
                        strerror(rc));
        sm_error_set_cause(err, rc);
        return SM_ERR_IO;
    }
    store->file_reserved = size;
    return SM_OK;
}

int store_write_begin(sm_store *store, MDB_txn **txn, sm_error *err)
{
    if (store->read_only) {
        *txn = NULL;
        return sm_error_set_at(err, SM_ERR_INVALID_STATE, store->path, 0, 0, NULL,
                               "store was opened read-only");
    }
    if (store->snapshot != NULL) {
        /* the pinned reader holds the resize lock shared: a write that
         * grew the map would wait for it forever */
        *txn = NULL;
        return sm_error_set_at(err, SM_ERR_INVALID_STATE, store->path, 0, 0, NULL,
                               "a read snapshot is pinned on this handle; end it before writing");
    }
    int status = begin(store, 0, txn, err);
    if (status == SM_OK && store->write_map && (status = reserve_file(store, store_map_size(store), err)) != SM_OK) {
        store_write_abort(store, *txn);
        *txn = NULL;
    }
    return status;
}

int sm_store_snapshot_begin(sm_store *store, sm_error *err)
{
    if (store->snapshot != NULL)
        return sm_error_set_at(err, SM_ERR_INVALID_STATE, store->path, 0, 0, NULL,
                               "a read snapshot is already pinned on this handle");
    MDB_txn *txn;
    int rc = begin(store, MDB_RDONLY, &txn, err);
    if (rc == SM_OK)
        store->snapshot = txn;
    return rc;
}

void sm_store_snapshot_end(sm_store *store)
{
    if (store == NULL || store->snapshot == NULL)
        return;
    MDB_txn *txn = store->snapshot;
    store->snapshot = NULL;
    store_read_end(store, txn);
}

int store_commit(sm_store *store, MDB_txn *txn, sm_error *err)
{
    int rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&store->resize_lock);
    if (rc != 0)
        return store_fail(store, err, rc, "commit failed");
    return SM_OK;
}

void store_write_abort(sm_store *store, MDB_txn *txn)
{
    store_read_end(store, txn);
}

uint64_t store_map_size(sm_store *store)
{
    MDB_envinfo info;
    if (mdb_env_info(store->env, &info) != 0)
        return 0;
    return (uint64_t)info.me_mapsize;
}

uint64_t store_used_bytes(sm_store *store)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(store->env, &info) != 0 || mdb_env_stat(store->env, &st) != 0)
        return 0;
    return ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
}

void store_warm_file(sm_store *store, uint64_t from, uint64_t to, const atomic_int *stop)
{
    enum { CHUNK = 256 << 10 };
    int fd;
    if (!store->write_map || mdb_env_get_fd(store->env, &fd) != 0)
        return;
    char *buf = sm_malloc(CHUNK);
    if (buf == NULL)
        return; /* only a head start lost */
    for (uint64_t off = from; off < to && !atomic_load_explicit(stop, memory_order_acquire); off += CHUNK)
        if (pread(fd, buf, CHUNK, (off_t)off) <= 0)
            break; /* the end of the file, or an error the writer will meet and report */
    sm_free(buf);
}

static int set_map(sm_store *store, uint64_t size, bool shrink, sm_error *err)
{
    uint64_t page = 4096;
    if (size > SIZE_MAX - page)
        return sm_error_set(err, SM_ERR_OVERFLOW, "map size %" PRIu64 " does not fit", size);
    size = (size + page - 1) / page * page;
    pthread_rwlock_wrlock(&store->resize_lock);
    int rc = 0;
    uint64_t used = store_used_bytes(store);
    if (size < used)
        size = used;
    if (size > store_map_size(store) || (shrink && size != store_map_size(store))) {
        if (store->write_map && size > store_map_size(store)) {
            int status = reserve_file(store, size, err);
            if (status != SM_OK) {
                pthread_rwlock_unlock(&store->resize_lock);
                return status;
            }
        }
        rc = mdb_env_set_mapsize(store->env, (size_t)size);
        if (rc == 0 && store->write_map)
            store->file_reserved = SM_MIN(store->file_reserved, size); /* a smaller map truncates the file */
    }
    pthread_rwlock_unlock(&store->resize_lock);
    if (rc != 0)
        return store_fail(store, err, rc, "resizing the map");
    return SM_OK;
}

int store_grow_map(sm_store *store, uint64_t size, sm_error *err)
{
    return set_map(store, size, false, err);
}

int store_set_map(sm_store *store, uint64_t size, sm_error *err)
{
    return set_map(store, size, true, err);
}

/* --- meta records -------------------------------------------------------------------- */

static MDB_val text_key(const char *s)
{
    MDB_val v = {strlen(s), (void *)s};
    return v;
}

int store_read_schema(sm_store *store, MDB_txn *txn, store_schema *schema, sm_error *err)
{
    MDB_val key = text_key(SM_META_SCHEMA), val;
    int rc = mdb_get(txn, store->dbi[DB_META], &key, &val);
    if (rc == MDB_NOTFOUND)
        return sm_error_set_at(err, SM_ERR_SCHEMA, store->path, 0, 0, NULL,
                               "not a segmint store: the meta record has no schema entry");
    if (rc != 0)
        return store_fail(store, err, rc, "reading the schema record");
    const unsigned char *p = val.mv_data;
    if (val.mv_size < SCHEMA_RECORD_BYTES || memcmp(p, SM_SCHEMA_MAGIC, 8) != 0)
        return sm_error_set_at(err, SM_ERR_SCHEMA, store->path, 0, 0, NULL,
                               "not a segmint store: unknown schema record (%zu bytes)", val.mv_size);
    schema->version = le32_get(p + 8);
    schema->money_scale = le32_get(p + 12);
    schema->created = (int64_t)le64_get(p + 16);
    if (schema->version == 0)
        return sm_error_set_at(err, SM_ERR_SCHEMA, store->path, 0, 0, NULL,
                               "unknown store schema version 0");
    if (schema->version > SM_STORE_SCHEMA_VERSION)
        return sm_error_set_at(err, SM_ERR_SCHEMA, store->path, 0, 0, NULL,
                               "the store has schema version %" PRIu32 ", newer than this segmint "
                               "(%s) reads (up to %u); upgrade segmint to open it",
                               schema->version, "this build", SM_STORE_SCHEMA_VERSION);
    uint32_t s = schema->money_scale;
    if (s != 1 && s != 10 && s != 100 && s != 1000 && s != 10000 && s != 100000 && s != 1000000)
        return store_corrupt(store, err, "money scale %" PRIu32 " is not a power of 10 up to 10^6", s);
    return SM_OK;
}

int store_write_schema(sm_store *store, MDB_txn *txn, const store_schema *schema, sm_error *err)
{
    unsigned char buf[SCHEMA_RECORD_BYTES];
    memcpy(buf, SM_SCHEMA_MAGIC, 8);
    le32_put(buf + 8, schema->version);
    le32_put(buf + 12, schema->money_scale);
    le64_put(buf + 16, (uint64_t)schema->created);
    MDB_val key = text_key(SM_META_SCHEMA), val = {sizeof buf, buf};
    int rc = mdb_put(txn, store->dbi[DB_META], &key, &val, 0);
    if (rc != 0)
        return store_fail(store, err, rc, "writing the schema record");
    return SM_OK;
}

int store_read_stats(sm_store *store, MDB_txn *txn, store_stats *stats, sm_error *err)
{
    memset(stats, 0, sizeof *stats);
    MDB_val key = text_key(SM_META_STATS), val;
    int rc = mdb_get(txn, store->dbi[DB_META], &key, &val);
    if (rc == MDB_NOTFOUND)
        return store_corrupt(store, err, "the meta record has no stats entry");
    if (rc != 0)
        return store_fail(store, err, rc, "reading the stats record");
    if (val.mv_size < STATS_RECORD_BYTES || val.mv_size % 8 != 0)
        return store_corrupt(store, err, "stats record has %zu bytes, expected %d", val.mv_size,
                             STATS_RECORD_BYTES);
    for (int i = 0; i < ST_COUNT; i++)
        stats->v[i] = le64_get((const unsigned char *)val.mv_data + 8 * i);
    if (stats->v[ST_CUSTOMERS] > UINT32_MAX || stats->v[ST_ITEMS] > UINT32_MAX ||
        stats->v[ST_BASKETS] > UINT32_MAX || stats->v[ST_TX_ROWS] > stats->v[ST_ROWS])
        return store_corrupt(store, err, "stats record counts are out of range");
    return SM_OK;
}

int store_write_stats(sm_store *store, MDB_txn *txn, const store_stats *stats, sm_error *err)
{
    unsigned char buf[STATS_RECORD_BYTES];
    for (int i = 0; i < ST_COUNT; i++)
        le64_put(buf + 8 * i, stats->v[i]);
    MDB_val key = text_key(SM_META_STATS), val = {sizeof buf, buf};
    int rc = mdb_put(txn, store->dbi[DB_META], &key, &val, 0);
    if (rc != 0)
        return store_fail(store, err, rc, "writing the stats record");
    return SM_OK;
}

/* --- opening -------------------------------------------------------------------------- */

static char *join_path(const char *dir, const char *name)
{
    size_t len;
    size_t a = strlen(dir), b = strlen(name);
    if (!sm_add_size(a, b, &len) || !sm_add_size(len, 2, &len))
        return NULL;
    char *p = sm_malloc(len);
    if (p != NULL)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* A store file, if present, must be a regular file and not a symlink (S1):
 * LMDB would follow a link and write wherever it points. */
static int check_store_file(const char *dir, const char *name, bool *exists, off_t *size, sm_error *err)
{
    char *path = join_path(dir, name);
    if (path == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    struct stat st;
    int rc = SM_OK;
    *exists = false;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            int saved = errno;
            rc = sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "cannot inspect: %s", strerror(saved));
            sm_error_set_cause(err, saved);
        }
    } else if (S_ISLNK(st.st_mode)) {
        rc = sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL,
                             "is a symbolic link; a store's files must be regular files (refusing to follow it)");
    } else if (!S_ISREG(st.st_mode)) {
        rc = sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "is not a regular file");
    } else {
        *exists = true;
        if (size != NULL)
            *size = st.st_size;
    }
    sm_free(path);
    return rc;
}

/* Empty but for a stray lock.mdb: the only place a new store may go, so
 * that `--store ~` cannot scatter store files among someone's files. */
static bool directory_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    bool empty = true;
    struct dirent *e;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, "lock.mdb") == 0;
    closedir(d);
    return empty;
}

static int prepare_directory(const char *dir, unsigned flags, char **canonical, sm_error *err)
{
    *canonical = NULL;
    if (dir == NULL || dir[0] == '\0')
        return sm_error_set(err, SM_ERR_INVALID_ARG, "the store directory path is empty");
    struct stat st;
    if (stat(dir, &st) != 0) {
        int saved = errno;
        if (saved == ENOENT && (flags & SM_STORE_CREATE) == SM_STORE_CREATE) {
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                saved = errno;
                sm_error_set_at(err, SM_ERR_IO, dir, 0, 0, NULL, "cannot create the store directory: %s",
                                strerror(saved));
                sm_error_set_cause(err, saved);
                return SM_ERR_IO;
            }
        } else if (saved == ENOENT) {
            sm_error_set_at(err, SM_ERR_NOT_FOUND, dir, 0, 0, NULL,
                            "no store here (the directory does not exist); create one with `segmint import`");
            sm_error_set_cause(err, saved);
            return SM_ERR_NOT_FOUND;
        } else {
            sm_error_set_at(err, SM_ERR_IO, dir, 0, 0, NULL, "cannot open the store directory: %s",
                            strerror(saved));
            sm_error_set_cause(err, saved);
            return SM_ERR_IO;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        return sm_error_set_at(err, SM_ERR_IO, dir, 0, 0, NULL,
                               "is not a directory (a store is a directory holding data.mdb)");
    }
    char *real = realpath(dir, NULL);
    if (real == NULL) {
        int saved = errno;
        sm_error_set_at(err, SM_ERR_IO, dir, 0, 0, NULL, "cannot resolve the store directory: %s",
                        strerror(saved));
        sm_error_set_cause(err, saved);
        return SM_ERR_IO;
    }
    *canonical = sm_strdup(real);
    free(real);
    if (*canonical == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    return SM_OK;
}

static int open_databases(sm_store *store, bool create, sm_error *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(store->env, NULL, store->read_only ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        return store_fail(store, err, rc, "starting the open transaction");
    /* Is it a segmint store at all? Look for "meta" before touching others. */
    rc = mdb_dbi_open(txn, "meta", 0, &store->dbi[DB_META]);
    if (rc == MDB_NOTFOUND) {
        MDB_dbi main_db;
        MDB_stat st;
        bool empty = mdb_dbi_open(txn, NULL, 0, &main_db) == 0 && mdb_stat(txn, main_db, &st) == 0 &&
                     st.ms_entries == 0;
        if (!create || !empty) {
            mdb_txn_abort(txn);
            return sm_error_set_at(err, SM_ERR_SCHEMA, store->path, 0, 0, NULL,
                                   empty ? "the store is empty (no meta record): not a segmint store"
                                         : "an LMDB environment but not a segmint store (no meta sub-database)");
        }
        for (int i = 0; i < DB_COUNT; i++) {
            rc = mdb_dbi_open(txn, sm_store_db_names[i], MDB_CREATE, &store->dbi[i]);
            if (rc != 0) {
                mdb_txn_abort(txn);
                return store_fail(store, err, rc, "creating the sub-databases");
            }
        }
        store_schema schema = {SM_STORE_SCHEMA_VERSION, 100, (int64_t)time(NULL)};
        store_stats stats;
        memset(&stats, 0, sizeof stats);
        stats.v[ST_NEXT_RUN] = 1;
        int status = store_write_schema(store, txn, &schema, err);
        if (status == SM_OK)
            status = store_write_stats(store, txn, &stats, err);
        if (status != SM_OK) {
            mdb_txn_abort(txn);
            return status;
        }
        rc = mdb_txn_commit(txn);
        if (rc != 0)
            return store_fail(store, err, rc, "creating the store");
        return SM_OK;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store_fail(store, err, rc, "opening the meta sub-database");
    }
    store_schema schema;
    int status = store_read_schema(store, txn, &schema, err);
    if (status != SM_OK) {
        mdb_txn_abort(txn);
        return status;
    }
    for (int i = 1; i < DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, sm_store_db_names[i], 0, &store->dbi[i]);
        if (rc != 0) {
            mdb_txn_abort(txn);
            if (rc == MDB_NOTFOUND)
                return sm_error_set_at(err, SM_ERR_SCHEMA, store->path, 0, 0, NULL,
                                       "schema version %" PRIu32 " store lacks the \"%s\" sub-database",
                                       schema.version, sm_store_db_names[i]);
            return store_fail(store, err, rc, "opening a sub-database");
        }
        /* A named database must be a plain one; flags from elsewhere (dupsort,
         * integer keys) would change how every key is compared. */
        unsigned dbflags = 0;
        if (mdb_dbi_flags(txn, store->dbi[i], &dbflags) == 0 && dbflags != 0) {
            mdb_txn_abort(txn);
            return store_corrupt(store, err, "sub-database \"%s\" has unexpected flags 0x%x",
                                 sm_store_db_names[i], dbflags);
        }
    }
    store_stats stats;
    status = store_read_stats(store, txn, &stats, err);
    if (status != SM_OK) {
        mdb_txn_abort(txn);
        return status;
    }
    rc = mdb_txn_commit(txn); /* keeps the DBI handles */
    if (rc != 0)
        return store_fail(store, err, rc, "opening the sub-databases");
    return SM_OK;
}

/* data.mdb must hold every page the current meta page claims; LMDB maps the
 * file and would fault (SIGBUS) on a page past a truncated end. */
static int check_file_size(sm_store *store, sm_error *err)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(store->env, &info);
    if (rc == 0)
        rc = mdb_env_stat(store->env, &st);
    if (rc != 0)
        return store_fail(store, err, rc, "reading the environment header");
    struct stat fs;
    if (stat(store->data_path, &fs) != 0) {
        int saved = errno;
        sm_error_set_at(err, SM_ERR_IO, store->data_path, 0, 0, NULL, "cannot inspect: %s", strerror(saved));
        sm_error_set_cause(err, saved);
        return SM_ERR_IO;
    }
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)fs.st_size < need)
        return sm_error_set_at(err, SM_ERR_STORAGE, store->data_path, 0, 0, NULL,
                               "corrupt store: the file is truncated (%" PRIu64 " bytes, its header needs %" PRIu64
                               "); restore it from a copy",
                               (uint64_t)fs.st_size, need);
    if (info.me_mapsize < need)
        return sm_error_set_at(err, SM_ERR_STORAGE, store->data_path, 0, 0, NULL,
                               "corrupt store: map size %zu is smaller than the data (%" PRIu64 " bytes)",
                               info.me_mapsize, need);
    return SM_OK;
}

int sm_store_open(const char *dir, unsigned flags, sm_store **out, sm_error *err)
{
    *out = NULL;
    char *canonical;
    int status = prepare_directory(dir, flags, &canonical, err);
    if (status != SM_OK)
        return status;
    bool create = (flags & SM_STORE_CREATE) == SM_STORE_CREATE;
    bool read_only = (flags & SM_STORE_READ_WRITE) == 0;
    bool data_exists, lock_exists;
    off_t data_size = 0;
    status = check_store_file(canonical, "data.mdb", &data_exists, &data_size, err);
    if (status == SM_OK)
        status = check_store_file(canonical, "lock.mdb", &lock_exists, NULL, err);
    if (status != SM_OK) {
        sm_free(canonical);
        return status;
    }
    if (!data_exists && create && !directory_is_empty(canonical)) {
        sm_error_set_at(err, SM_ERR_EXISTS, canonical, 0, 0, NULL,
                        "the directory holds other files but no store; a new store needs a new or empty "
                        "directory");
        sm_free(canonical);
        return SM_ERR_EXISTS;
    }
    if (!data_exists && !create) {
        sm_error_set_at(err, SM_ERR_NOT_FOUND, canonical, 0, 0, NULL,
                        "no store here (no data.mdb); create one with `segmint import`");
        sm_free(canonical);
        return SM_ERR_NOT_FOUND;
    }
    if (data_exists && data_size < 2 * 4096) {
        sm_error_set_at(err, SM_ERR_STORAGE, canonical, 0, 0, NULL,
                        "corrupt store: data.mdb is %lld bytes, too short to hold its two meta pages "
                        "(an interrupted creation or a truncated copy)",
                        (long long)data_size);
        sm_free(canonical);
        return SM_ERR_STORAGE;
    }

    sm_store *store = sm_calloc(1, sizeof *store);
    if (store == NULL) {
        sm_free(canonical);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory opening %s", dir);
    }
    store->path = canonical;
    store->data_path = join_path(canonical, "data.mdb");
    store->read_only = read_only;
    store->write_map = !read_only && (flags & SM_STORE_BULK) == SM_STORE_BULK;
    if (store->data_path == NULL) {
        sm_store_close(store);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory opening %s", dir);
    }
    /* Writer-preferring: a steady stream of readers must not starve the
     * importer waiting to resize the map. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&store->resize_lock, &attr);
    pthread_rwlockattr_destroy(&attr);

    if (data_exists) {
        /* Before LMDB opens it: a second env on the same file in one process
         * would drop the first one's locks when closed. */
        struct stat st;
        if (stat(store->data_path, &st) != 0) {
            int saved = errno;
            status = sm_error_set_at(err, SM_ERR_IO, store->data_path, 0, 0, NULL, "cannot inspect: %s",
                                     strerror(saved));
            sm_error_set_cause(err, saved);
            sm_store_close(store);
            return status;
        }
        if (!registry_add(st.st_dev, st.st_ino)) {
            status = sm_error_set_at(err, SM_ERR_INVALID_STATE, canonical, 0, 0, NULL,
                                     "this store is already open in this process; share the handle instead");
            sm_store_close(store);
            return status;
        }
        store->dev = st.st_dev;
        store->ino = st.st_ino;
        store->registered = true;
    }

    if (data_exists) {
        /* LMDB trusts the meta pages while opening (it divides by their
         * page size); a file from elsewhere must pass this first. */
        status = (flags & SM_STORE_VERIFY) ? sm_store_verify_file(store->data_path, err)
                                           : sm_store_check_header(store->data_path, err);
        if (status != SM_OK) {
            sm_store_close(store);
            return status;
        }
    }

    int rc = mdb_env_create(&store->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(store->env, STORE_MAX_DBS);
    if (rc == 0)
        rc = mdb_env_set_maxreaders(store->env, STORE_MAX_READERS);
    if (rc == 0 && !data_exists)
        rc = mdb_env_set_mapsize(store->env, (size_t)(store->write_map ? STORE_BULK_INITIAL_MAP : STORE_DEFAULT_MAP));
    if (rc != 0) {
        status = store_fail(store, err, rc, "creating the environment");
        sm_store_close(store);
        return status;
    }
    unsigned env_flags = MDB_NOTLS | (read_only ? MDB_RDONLY : 0) | (store->write_map ? MDB_WRITEMAP : 0);
    rc = mdb_env_open(store->env, canonical, env_flags, 0644);
    if (rc != 0 && read_only && (rc == EACCES || rc == EROFS)) {
        /* A read-only directory cannot hold lock.mdb; with no writer
         * possible there, reading without the lock table is safe. */
        mdb_env_close(store->env);
        store->env = NULL;
        rc = mdb_env_create(&store->env);
        if (rc == 0)
            rc = mdb_env_set_maxdbs(store->env, STORE_MAX_DBS);
        if (rc == 0)
            rc = mdb_env_open(store->env, canonical, env_flags | MDB_NOLOCK, 0644);
        store->no_lock = rc == 0;
    }
    if (rc == 0) {
        /* F1: a reader killed while it held a transaction (kill -9, OOM
         * killer) leaves its slot in lock.mdb as long as any other process
         * keeps the store open, pinning old pages so the file grows and
         * eventually filling the table (MDB_READERS_FULL). LMDB clears such
         * slots only when asked. A failure here costs space, not
         * correctness, so it does not fail the open. */
        (void)mdb_reader_check(store->env, NULL);
    }
    if (rc != 0) {
        if (rc == ENOENT)
            status = sm_error_set_at(err, SM_ERR_NOT_FOUND, canonical, 0, 0, NULL,
                                     "no store here (no data.mdb)");
        else
            status = store_fail(store, err, rc, "opening the store");
        sm_store_close(store);
        return status;
    }
    if (!data_exists) {
        struct stat st;
        if (stat(store->data_path, &st) != 0 || !registry_add(st.st_dev, st.st_ino)) {
            status = sm_error_set_at(err, SM_ERR_IO, store->data_path, 0, 0, NULL,
                                     "the new store file vanished or was opened concurrently");
            sm_store_close(store);
            return status;
        }
        store->dev = st.st_dev;
        store->ino = st.st_ino;
        store->registered = true;
    }
    status = check_file_size(store, err);
    if (status == SM_OK)
        status = open_databases(store, create, err);
    if (status != SM_OK) {
        sm_store_close(store);
        return status;
    }
    *out = store;
    return SM_OK;
}

void sm_store_close(sm_store *store)
{
    if (store == NULL)
        return;
    sm_store_snapshot_end(store);
    if (store->env != NULL)
        mdb_env_close(store->env);
    if (store->registered)
        registry_remove(store->dev, store->ino);
    if (store->data_path != NULL)
        pthread_rwlock_destroy(&store->resize_lock);
    sm_free(store->path);
    sm_free(store->data_path);
    sm_free(store);
}

const char *sm_store_path(const sm_store *store)
{
    return store->path;
}

/* --- info and sources --------------------------------------------------------------------- */

int sm_store_get_info(sm_store *store, sm_store_info *info, sm_error *err)
{
    memset(info, 0, sizeof *info);
    MDB_txn *txn;
    int status = store_read_begin(store, &txn, err);
    if (status != SM_OK)
        return status;
    store_schema schema;
    store_stats s;
    status = store_read_schema(store, txn, &schema, err);
    if (status == SM_OK)
        status = store_read_stats(store, txn, &s, err);
    store_read_end(store, txn);
    if (status != SM_OK)
        return status;
    info->schema_version = schema.version;
    info->money_scale = schema.money_scale;
    info->rows = s.v[ST_ROWS];
    info->rejected = s.v[ST_REJECTED];
    info->tx_rows = s.v[ST_TX_ROWS];
    info->rows_without_customer = s.v[ST_ROWS_WITHOUT_CUSTOMER];
    info->returns = s.v[ST_RETURNS];
    info->future_rows = s.v[ST_FUTURE_ROWS];
    info->customers = (uint32_t)s.v[ST_CUSTOMERS];
    info->items = (uint32_t)s.v[ST_ITEMS];
    info->baskets = s.v[ST_BASKETS];
    info->basket_items = s.v[ST_BASKET_ITEMS];
    info->has_time = (s.v[ST_FLAGS] & ST_FLAG_HAS_TIME) != 0;
    info->first_time = (int64_t)s.v[ST_FIRST_TIME];
    info->last_time = (int64_t)s.v[ST_LAST_TIME];
    info->total_amount = (int64_t)s.v[ST_TOTAL_AMOUNT];
    info->customer_amount = (int64_t)s.v[ST_CUSTOMER_AMOUNT];
    info->sources = (uint32_t)s.v[ST_SOURCES];
    info->imports = (uint32_t)s.v[ST_IMPORTS];
    info->feature_sets = (uint32_t)s.v[ST_FEATURE_SETS];
    info->runs = s.v[ST_RUNS];
    info->map_size = store_map_size(store);
    info->used_bytes = store_used_bytes(store);
    return SM_OK;
}

void sm_store_sources_free(sm_store_source *sources, size_t n)
{
    if (sources == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        sm_free(sources[i].path);
        sm_free(sources[i].format);
        sm_free(sources[i].rejects_path);
    }
    sm_free(sources);
}

static char *dup_bytes(const unsigned char *p, size_t len)
{
    char *s = sm_malloc(len + 1);
    if (s != NULL) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

int sm_store_sources(sm_store *store, sm_store_source **out, size_t *n_out, sm_error *err)
{
    *out = NULL;
    *n_out = 0;
    MDB_txn *txn;
    int status = store_read_begin(store, &txn, err);
    if (status != SM_OK)
        return status;
    store_stats stats;
    status = store_read_stats(store, txn, &stats, err);
    if (status != SM_OK) {
        store_read_end(store, txn);
        return status;
    }
    size_t n = (size_t)stats.v[ST_SOURCES];
    if (!store_plausible(n, 80 + 8 + 11, store_used_bytes(store))) {
        store_read_end(store, txn);
        return store_corrupt(store, err, "the meta record counts more sources than the file can hold");
    }
    sm_store_source *list = n ? sm_calloc(n, sizeof *list) : NULL;
    if (n > 0 && list == NULL) {
        store_read_end(store, txn);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory listing %zu sources", n);
    }
    for (size_t i = 0; i < n && status == SM_OK; i++) {
        unsigned char keybuf[sizeof SM_META_SOURCE_PREFIX - 1 + 4];
        memcpy(keybuf, SM_META_SOURCE_PREFIX, sizeof SM_META_SOURCE_PREFIX - 1);
        be32_put(keybuf + sizeof SM_META_SOURCE_PREFIX - 1, (uint32_t)i);
        MDB_val key = {sizeof keybuf, keybuf}, val;
        int rc = mdb_get(txn, store->dbi[DB_META], &key, &val);
        if (rc != 0) {
            status = rc == MDB_NOTFOUND ? store_corrupt(store, err, "source record %zu is missing", i)
                                        : store_fail(store, err, rc, "reading a source record");
            break;
        }
        const unsigned char *p = val.mv_data;
        /* sha256[32] bytes u64 rows u64 rejected u64 imported_at i64
         * import_id u32 format u8 pad[3] path_len u16 rejects_len u16 */
        if (val.mv_size < 80) {
            status = store_corrupt(store, err, "source record %zu is %zu bytes", i, val.mv_size);
            break;
        }
        size_t path_len = le16_get(p + 76), rejects_len = le16_get(p + 78);
        if (val.mv_size != 80 + path_len + rejects_len || p[68] > SM_FORMAT_BASKET_CSV) {
            status = store_corrupt(store, err, "source record %zu has inconsistent lengths", i);
            break;
        }
        sm_store_source *s = &list[i];
        static const char hex[] = "0123456789abcdef";
        for (int b = 0; b < 32; b++) {
            s->sha256[2 * b] = hex[p[b] >> 4];
            s->sha256[2 * b + 1] = hex[p[b] & 15];
        }
        s->sha256[64] = '\0';
        s->bytes = le64_get(p + 32);
        s->rows = le64_get(p + 40);
        s->rejected = le64_get(p + 48);
        s->imported_at = (int64_t)le64_get(p + 56);
        s->import_id = le32_get(p + 64);
        s->format = sm_strdup(sm_import_format_name((sm_import_format)p[68]));
        s->path = dup_bytes(p + 80, path_len);
        s->rejects_path = dup_bytes(p + 80 + path_len, rejects_len);
        if (s->format == NULL || s->path == NULL || s->rejects_path == NULL)
            status = sm_error_set(err, SM_ERR_NOMEM, "out of memory listing sources");
    }
    store_read_end(store, txn);
    if (status != SM_OK) {
        sm_store_sources_free(list, n);
        return status;
    }
    *out = list;
    *n_out = n;
    return SM_OK;
}
