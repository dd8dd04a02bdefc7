/* SPDX-License-Identifier: MIT */
/*
 * Feature matrices and runs: small write transactions that grow the map and
 * retry on MDB_MAP_FULL, and readers that copy chunks straight into
 * caller-owned, 64-byte-aligned arrays. The engine chooses what a run record
 * and an assignment value mean; here they are opaque bytes (SCHEMA.md).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "storage/store_internal.h"

#define WRITE_MAP_CAP (UINT64_C(1) << 40)

typedef int (*write_fn)(sm_store *store, MDB_txn *txn, void *ctx, sm_error *err);

/* Runs fn in a write transaction; on MDB_MAP_FULL (from fn, seen as
 * err->cause, or from the commit) grows the map x2 outside any transaction
 * and runs fn again from the start. */
static int write_with_retry(sm_store *store, write_fn fn, void *ctx, sm_error *err)
{
    sm_error local;
    if (err == NULL)
        err = &local; /* the retry decision reads err->cause */
    for (;;) {
        MDB_txn *txn;
        int status = store_write_begin(store, &txn, err);
        if (status != SM_OK)
            return status;
        status = fn(store, txn, ctx, err);
        bool full;
        if (status == SM_OK) {
            int rc = mdb_txn_commit(txn);
            pthread_rwlock_unlock(&store->resize_lock);
            if (rc == 0)
                return SM_OK;
            full = rc == MDB_MAP_FULL;
            if (!full)
                return store_fail(store, err, rc, "commit failed");
        } else {
            store_write_abort(store, txn);
            full = err != NULL && err->cause == MDB_MAP_FULL;
            if (!full)
                return status;
        }
        uint64_t size = store_map_size(store);
        if (size >= WRITE_MAP_CAP)
            return sm_error_set_at(err, SM_ERR_STORAGE, store->data_path, 0, 0, NULL,
                                   "the map reached its cap of %" PRIu64 " bytes", (uint64_t)WRITE_MAP_CAP);
        status = store_grow_map(store, SM_MIN(size * 2, WRITE_MAP_CAP), err);
        if (status != SM_OK)
            return status;
    }
}

static int put(sm_store *store, MDB_txn *txn, int db, const void *key, size_t klen, const void *val, size_t vlen,
               unsigned flags, sm_error *err)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_put(txn, store->dbi[db], &k, &v, flags);
    if (rc != 0)
        return store_fail(store, err, rc, "writing");
    return SM_OK;
}

/* --- features ---------------------------------------------------------------------------------- */

enum { FEATURE_HEADER_FIXED = 32 };

static size_t feature_key(unsigned char *buf, const char *name, size_t name_len, char kind, uint32_t part)
{
    memcpy(buf, name, name_len);
    buf[name_len] = 0;
    buf[name_len + 1] = (unsigned char)kind;
    be32_put(buf + name_len + 2, part);
    return name_len + 6;
}

typedef struct features_put_ctx {
    const char *name;
    size_t name_len;
    const float *x;
    uint64_t n;
    uint32_t d;
    size_t ld;
    const char *const *column_names;
    const sm_customer_id *customers;
    uint64_t rows_per_part;
    uint64_t ids_per_part;
} features_put_ctx;

/* Deletes every record of feature set `name`; *existed tells whether any did. */
static int delete_features(sm_store *store, MDB_txn *txn, const char *name, size_t name_len, bool *existed,
                           sm_error *err)
{
    *existed = false;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, store->dbi[DB_FEATURES], &cursor);
    if (rc != 0)
        return store_fail(store, err, rc, "opening a cursor");
    unsigned char prefix[SM_STORE_NAME_MAX + 1];
    memcpy(prefix, name, name_len);
    prefix[name_len] = 0;
    MDB_val k = {name_len + 1, prefix}, v;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > name_len + 1 && memcmp(k.mv_data, prefix, name_len + 1) == 0) {
        *existed = true;
        rc = mdb_cursor_del(cursor, 0);
        if (rc == 0)
            rc = mdb_cursor_get(cursor, &k, &v, MDB_GET_CURRENT);
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL)
        return store_fail(store, err, rc, "replacing a feature set");
    return SM_OK;
}

static int features_put_txn(sm_store *store, MDB_txn *txn, void *vctx, sm_error *err)
{
    features_put_ctx *c = vctx;
    bool existed;
    int status = delete_features(store, txn, c->name, c->name_len, &existed, err);
    if (status != SM_OK)
        return status;
    unsigned char key[SM_STORE_NAME_MAX + 8];
    /* header: n u64 | d u32 | rows_per_part u32 | created i64 | ids_per_part u32 | pad u32 | names */
    size_t header_len = FEATURE_HEADER_FIXED;
    for (uint32_t j = 0; j < c->d; j++)
        header_len += 2 + strlen(c->column_names[j]);
    unsigned char *header = sm_malloc(header_len);
    if (header == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory storing features");
    le64_put(header, c->n);
    le32_put(header + 8, c->d);
    le32_put(header + 12, (uint32_t)c->rows_per_part);
    le64_put(header + 16, (uint64_t)(int64_t)time(NULL));
    le32_put(header + 24, (uint32_t)c->ids_per_part);
    le32_put(header + 28, 0);
    size_t at = FEATURE_HEADER_FIXED;
    for (uint32_t j = 0; j < c->d; j++) {
        size_t len = strlen(c->column_names[j]);
        le16_put(header + at, (uint16_t)len);
        memcpy(header + at + 2, c->column_names[j], len);
        at += 2 + len;
    }
    size_t klen = feature_key(key, c->name, c->name_len, FEATURE_KIND_HEADER, 0);
    status = put(store, txn, DB_FEATURES, key, klen, header, header_len, 0, err);
    sm_free(header);
    /* customer ids, LE u32, in parts */
    unsigned char *buf = NULL;
    if (status == SM_OK && c->n > 0) {
        size_t cap = (size_t)SM_MAX(c->ids_per_part * 4, c->rows_per_part * c->d * 4);
        buf = sm_malloc(cap);
        if (buf == NULL)
            status = sm_error_set(err, SM_ERR_NOMEM, "out of memory storing features");
    }
    for (uint64_t start = 0, part = 0; status == SM_OK && start < c->n; start += c->ids_per_part, part++) {
        uint64_t m = SM_MIN(c->ids_per_part, c->n - start);
        for (uint64_t i = 0; i < m; i++)
            le32_put(buf + 4 * i, c->customers[start + i]);
        klen = feature_key(key, c->name, c->name_len, FEATURE_KIND_IDS, (uint32_t)part);
        status = put(store, txn, DB_FEATURES, key, klen, buf, (size_t)m * 4, 0, err);
    }
    /* data: rows of d float32 (native little-endian on every supported host) */
    for (uint64_t start = 0, part = 0; status == SM_OK && start < c->n; start += c->rows_per_part, part++) {
        uint64_t m = SM_MIN(c->rows_per_part, c->n - start);
        for (uint64_t i = 0; i < m; i++)
            memcpy(buf + (size_t)(i * c->d) * 4, c->x + (start + i) * c->ld, (size_t)c->d * 4);
        klen = feature_key(key, c->name, c->name_len, FEATURE_KIND_DATA, (uint32_t)part);
        status = put(store, txn, DB_FEATURES, key, klen, buf, (size_t)(m * c->d) * 4, 0, err);
    }
    sm_free(buf);
    if (status == SM_OK && !existed) {
        store_stats stats;
        status = store_read_stats(store, txn, &stats, err);
        if (status == SM_OK) {
            stats.v[ST_FEATURE_SETS]++;
            status = store_write_stats(store, txn, &stats, err);
        }
    }
    return status;
}

static int check_name(const char *name, sm_error *err)
{
    if (name == NULL || name[0] == '\0')
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "name", "a feature set needs a name");
    if (strlen(name) > SM_STORE_NAME_MAX)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "name", "longer than %u bytes", SM_STORE_NAME_MAX);
    return SM_OK;
}

int sm_store_features_put(sm_store *store, const char *name, const float *x, uint64_t n, uint32_t d, size_t ld,
                          const char *const *column_names, const sm_customer_id *customers, sm_error *err)
{
    int status = check_name(name, err);
    if (status != SM_OK)
        return status;
    if (d == 0 || ld < d || column_names == NULL || (n > 0 && (x == NULL || customers == NULL)))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "d", "need d >= 1, ld >= d, names, data and ids");
    if (d > 65535)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "d", "at most 65535 columns");
    size_t row_bytes;
    if (!sm_mul_size(d, 4, &row_bytes) || n > UINT32_MAX)
        return sm_error_set(err, SM_ERR_OVERFLOW, "feature matrix too large");
    for (uint32_t j = 0; j < d; j++)
        if (column_names[j] == NULL || strlen(column_names[j]) > 255)
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "column_names",
                                   "column %" PRIu32 " has no name or one longer than 255 bytes", j + 1);
    for (uint64_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < d; j++)
            if (!isfinite(x[i * ld + j]))
                return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", i + 1, j + 1, column_names[j],
                                       "%s in feature row %" PRIu64, isnan(x[i * ld + j]) ? "NaN" : "infinity", i);
    features_put_ctx c = {name, strlen(name), x, n, d, ld, column_names, customers, 0, FEATURE_PART_BYTES / 4};
    c.rows_per_part = SM_MAX((uint64_t)1, (uint64_t)FEATURE_PART_BYTES / row_bytes);
    return write_with_retry(store, features_put_txn, &c, err);
}

void sm_feature_matrix_free(sm_feature_matrix *m)
{
    if (m == NULL)
        return;
    sm_free(m->data);
    if (m->column_names != NULL)
        for (uint32_t j = 0; j < m->d; j++)
            sm_free(m->column_names[j]);
    sm_free(m->column_names);
    sm_free(m->customers);
    memset(m, 0, sizeof *m);
}

int sm_store_features_get(sm_store *store, const char *name, sm_feature_matrix *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    int status = check_name(name, err);
    if (status != SM_OK)
        return status;
    MDB_txn *txn;
    status = store_read_begin(store, &txn, err);
    if (status != SM_OK)
        return status;
    size_t name_len = strlen(name);
    unsigned char key[SM_STORE_NAME_MAX + 8];
    MDB_val k = {feature_key(key, name, name_len, FEATURE_KIND_HEADER, 0), key}, v;
    int rc = mdb_get(txn, store->dbi[DB_FEATURES], &k, &v);
    if (rc != 0) {
        status = rc == MDB_NOTFOUND ? sm_error_set_at(err, SM_ERR_NOT_FOUND, store->path, 0, 0, NULL,
                                                      "no feature set named \"%s\"", name)
                                    : store_fail(store, err, rc, "reading features");
        store_read_end(store, txn);
        return status;
    }
    const unsigned char *h = v.mv_data;
    if (v.mv_size < FEATURE_HEADER_FIXED) {
        store_read_end(store, txn);
        return store_corrupt(store, err, "feature header of %zu bytes", v.mv_size);
    }
    uint64_t n = le64_get(h);
    uint32_t d = le32_get(h + 8);
    uint64_t rows_per_part = le32_get(h + 12), ids_per_part = le32_get(h + 24);
    out->created = (int64_t)le64_get(h + 16);
    size_t total;
    if (d == 0 || rows_per_part == 0 || ids_per_part == 0 || n > UINT32_MAX || !sm_mul_size((size_t)n, d, &total) ||
        !store_plausible(total, 4, store_used_bytes(store)) || !store_plausible(d, 2, v.mv_size)) {
        store_read_end(store, txn);
        return store_corrupt(store, err, "feature header of \"%s\" is inconsistent", name);
    }
    out->n = n;
    out->d = d;
    out->ld = d;
    out->column_names = sm_calloc(d, sizeof *out->column_names);
    out->data = sm_aligned_alloc(total ? total : 1, sizeof(float));
    out->customers = sm_alloc_array(n ? (size_t)n : 1, sizeof *out->customers);
    if (out->column_names == NULL || out->data == NULL || out->customers == NULL) {
        store_read_end(store, txn);
        sm_feature_matrix_free(out);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory reading features \"%s\"", name);
    }
    size_t at = FEATURE_HEADER_FIXED;
    for (uint32_t j = 0; j < d && status == SM_OK; j++) {
        size_t len = at + 2 <= v.mv_size ? le16_get(h + at) : SIZE_MAX;
        if (len == SIZE_MAX || at + 2 + len > v.mv_size) {
            status = store_corrupt(store, err, "feature header of \"%s\" is truncated", name);
            break;
        }
        out->column_names[j] = sm_malloc(len + 1);
        if (out->column_names[j] == NULL) {
            status = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(out->column_names[j], h + at + 2, len);
        out->column_names[j][len] = '\0';
        at += 2 + len;
    }
    for (uint64_t start = 0, part = 0; status == SM_OK && start < n; start += ids_per_part, part++) {
        uint64_t m = SM_MIN(ids_per_part, n - start);
        k.mv_data = key;
        k.mv_size = feature_key(key, name, name_len, FEATURE_KIND_IDS, (uint32_t)part);
        rc = mdb_get(txn, store->dbi[DB_FEATURES], &k, &v);
        if (rc != 0 || v.mv_size != m * 4) {
            status = rc != 0 && rc != MDB_NOTFOUND ? store_fail(store, err, rc, "reading features")
                                                   : store_corrupt(store, err, "feature ids of \"%s\" are incomplete", name);
            break;
        }
        memcpy(out->customers + start, v.mv_data, (size_t)m * 4);
    }
    for (uint64_t start = 0, part = 0; status == SM_OK && start < n; start += rows_per_part, part++) {
        uint64_t m = SM_MIN(rows_per_part, n - start);
        k.mv_data = key;
        k.mv_size = feature_key(key, name, name_len, FEATURE_KIND_DATA, (uint32_t)part);
        rc = mdb_get(txn, store->dbi[DB_FEATURES], &k, &v);
        if (rc != 0 || v.mv_size != m * d * 4) {
            status = rc != 0 && rc != MDB_NOTFOUND ? store_fail(store, err, rc, "reading features")
                                                   : store_corrupt(store, err, "feature data of \"%s\" are incomplete", name);
            break;
        }
        memcpy(out->data + start * d, v.mv_data, (size_t)(m * d) * 4);
    }
    store_read_end(store, txn);
    if (status != SM_OK)
        sm_feature_matrix_free(out);
    return status;
}

void sm_store_names_free(char **names, size_t n)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        sm_free(names[i]);
    sm_free(names);
}

int sm_store_features_list(sm_store *store, char ***names_out, size_t *n_out, sm_error *err)
{
    *names_out = NULL;
    *n_out = 0;
    MDB_txn *txn;
    int status = store_read_begin(store, &txn, err);
    if (status != SM_OK)
        return status;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, store->dbi[DB_FEATURES], &cursor);
    if (rc != 0) {
        store_read_end(store, txn);
        return store_fail(store, err, rc, "opening a cursor");
    }
    char **names = NULL;
    size_t n = 0;
    MDB_val k, v;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == 0 && status == SM_OK) {
        const unsigned char *p = k.mv_data;
        if (k.mv_size >= 7 && p[k.mv_size - 6] == 0 && p[k.mv_size - 5] == FEATURE_KIND_HEADER) {
            char **bigger = sm_realloc_array(names, n + 1, sizeof *names);
            char *name = sm_malloc(k.mv_size - 5);
            if (bigger == NULL || name == NULL) {
                sm_free(name);
                if (bigger != NULL)
                    names = bigger;
                status = sm_error_set(err, SM_ERR_NOMEM, "out of memory listing features");
                break;
            }
            names = bigger;
            memcpy(name, p, k.mv_size - 6);
            name[k.mv_size - 6] = '\0';
            names[n++] = name;
        }
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (status == SM_OK && rc != MDB_NOTFOUND)
        status = store_fail(store, err, rc, "listing features");
    mdb_cursor_close(cursor);
    store_read_end(store, txn);
    if (status != SM_OK) {
        sm_store_names_free(names, n);
        return status;
    }
    *names_out = names;
    *n_out = n;
    return SM_OK;
}

/* --- runs ------------------------------------------------------------------------------------------ */

typedef struct run_ctx {
    const void *record;
    size_t record_len;
    const sm_customer_id *customers;
    const unsigned char *values;
    uint32_t value_size;
    uint64_t n;
    uint64_t id;
} run_ctx;

static int run_write_txn(sm_store *store, MDB_txn *txn, void *vctx, sm_error *err)
{
    run_ctx *c = vctx;
    store_stats stats;
    int status = store_read_stats(store, txn, &stats, err);
    if (status != SM_OK)
        return status;
    c->id = stats.v[ST_NEXT_RUN] ? stats.v[ST_NEXT_RUN] : 1;
    unsigned char *rec = sm_malloc(RUN_HEADER_BYTES + c->record_len);
    if (rec == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory writing a run");
    /* created i64 | n u64 | value_size u32 | record_len u32 | reserved u64 | record */
    le64_put(rec, (uint64_t)(int64_t)time(NULL));
    le64_put(rec + 8, c->n);
    le32_put(rec + 16, c->value_size);
    le32_put(rec + 20, (uint32_t)c->record_len);
    le64_put(rec + 24, 0);
    if (c->record_len)
        memcpy(rec + RUN_HEADER_BYTES, c->record, c->record_len);
    unsigned char key[12];
    be64_put(key, c->id);
    status = put(store, txn, DB_RUNS, key, 8, rec, RUN_HEADER_BYTES + c->record_len, MDB_NOOVERWRITE, err);
    sm_free(rec);
    MDB_cursor *cursor = NULL;
    if (status == SM_OK) {
        int rc = mdb_cursor_open(txn, store->dbi[DB_ASSIGNMENTS], &cursor);
        if (rc != 0)
            status = store_fail(store, err, rc, "opening a cursor");
    }
    /* (run, customer) keys ascend and the run id is the largest yet. */
    for (uint64_t i = 0; i < c->n && status == SM_OK; i++) {
        be32_put(key + 8, c->customers[i]);
        MDB_val k = {12, key}, v = {c->value_size, (void *)(c->values + i * c->value_size)};
        int rc = mdb_cursor_put(cursor, &k, &v, MDB_APPEND);
        if (rc != 0)
            status = store_fail(store, err, rc, "writing assignments");
    }
    if (cursor != NULL)
        mdb_cursor_close(cursor);
    if (status == SM_OK) {
        stats.v[ST_NEXT_RUN] = c->id + 1;
        stats.v[ST_RUNS]++;
        status = store_write_stats(store, txn, &stats, err);
    }
    return status;
}

int sm_store_run_write(sm_store *store, const void *record, size_t record_len, const sm_customer_id *customers,
                       const void *values, uint32_t value_size, uint64_t n, uint64_t *run_id, sm_error *err)
{
    if (record_len > RUN_RECORD_MAX || (record_len > 0 && record == NULL))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "record", "at most %u bytes", RUN_RECORD_MAX);
    if (value_size == 0 || value_size > RUN_VALUE_MAX)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "value_size", "%" PRIu32 " is outside 1..%d",
                               value_size, RUN_VALUE_MAX);
    size_t bytes;
    if (n > SIZE_MAX || !sm_mul_size((size_t)n, value_size, &bytes))
        return sm_error_set(err, SM_ERR_OVERFLOW, "%" PRIu64 " assignments of %" PRIu32 " bytes", n, value_size);
    if (n > 0 && (customers == NULL || values == NULL))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "customers", "customers and values are required");
    for (uint64_t i = 1; i < n; i++)
        if (customers[i] <= customers[i - 1])
            return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "customers",
                                   "customer ids must be strictly ascending (position %" PRIu64 ")", i);
    run_ctx c = {record, record_len, customers, values, value_size, n, 0};
    int status = write_with_retry(store, run_write_txn, &c, err);
    if (status == SM_OK && run_id != NULL)
        *run_id = c.id;
    return status;
}

void sm_run_info_free(sm_run_info *runs, size_t n)
{
    if (runs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        sm_free(runs[i].record);
    sm_free(runs);
}

static int decode_run(sm_store *store, const MDB_val *k, const MDB_val *v, sm_run_info *out, sm_error *err)
{
    const unsigned char *p = v->mv_data;
    if (k->mv_size != 8 || v->mv_size < RUN_HEADER_BYTES || v->mv_size != RUN_HEADER_BYTES + le32_get(p + 20))
        return store_corrupt(store, err, "run record of %zu bytes", v->mv_size);
    out->id = be64_get(k->mv_data);
    out->created = (int64_t)le64_get(p);
    out->n_assignments = le64_get(p + 8);
    out->value_size = le32_get(p + 16);
    out->record_len = le32_get(p + 20);
    if (out->value_size == 0 || out->value_size > RUN_VALUE_MAX)
        return store_corrupt(store, err, "run %" PRIu64 " has value size %" PRIu32, out->id, out->value_size);
    out->record = sm_malloc(out->record_len + 1);
    if (out->record == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory reading runs");
    memcpy(out->record, p + RUN_HEADER_BYTES, out->record_len);
    ((char *)out->record)[out->record_len] = '\0';
    return SM_OK;
}

int sm_store_runs_list(sm_store *store, sm_run_info **runs_out, size_t *n_out, sm_error *err)
{
    *runs_out = NULL;
    *n_out = 0;
    MDB_txn *txn;
    int status = store_read_begin(store, &txn, err);
    if (status != SM_OK)
        return status;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, store->dbi[DB_RUNS], &cursor);
    if (rc != 0) {
        store_read_end(store, txn);
        return store_fail(store, err, rc, "opening a cursor");
    }
    sm_run_info *runs = NULL;
    size_t n = 0;
    MDB_val k, v;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == 0) {
        sm_run_info *bigger = sm_realloc_array(runs, n + 1, sizeof *runs);
        if (bigger == NULL) {
            status = sm_error_set(err, SM_ERR_NOMEM, "out of memory listing runs");
            break;
        }
        runs = bigger;
        memset(&runs[n], 0, sizeof runs[n]);
        status = decode_run(store, &k, &v, &runs[n], err);
        n++;
        if (status != SM_OK)
            break;
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (status == SM_OK && rc != MDB_NOTFOUND)
        status = store_fail(store, err, rc, "listing runs");
    mdb_cursor_close(cursor);
    store_read_end(store, txn);
    if (status != SM_OK) {
        sm_run_info_free(runs, n);
        return status;
    }
    *runs_out = runs;
    *n_out = n;
    return SM_OK;
}

void sm_assignments_free(sm_assignments *a)
{
    if (a == NULL)
        return;
    sm_free(a->customers);
    sm_free(a->values);
    memset(a, 0, sizeof *a);
}

int sm_store_run_assignments(sm_store *store, uint64_t run_id, sm_assignments *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int status = store_read_begin(store, &txn, err);
    if (status != SM_OK)
        return status;
    unsigned char key[12];
    be64_put(key, run_id);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(txn, store->dbi[DB_RUNS], &k, &v);
    sm_run_info info;
    memset(&info, 0, sizeof info);
    if (rc == MDB_NOTFOUND)
        status = sm_error_set_at(err, SM_ERR_NOT_FOUND, store->path, 0, 0, NULL, "no run %" PRIu64, run_id);
    else if (rc != 0)
        status = store_fail(store, err, rc, "reading a run");
    else
        status = decode_run(store, &k, &v, &info, err);
    sm_free(info.record);
    size_t bytes = 0;
    if (status == SM_OK && (info.n_assignments > UINT32_MAX ||
                            !sm_mul_size((size_t)info.n_assignments, info.value_size, &bytes) ||
                            !store_plausible(info.n_assignments, 8 + 12 + info.value_size, store_used_bytes(store))))
        status = store_corrupt(store, err, "run %" PRIu64 " claims %" PRIu64 " assignments", run_id, info.n_assignments);
    if (status == SM_OK) {
        out->n = info.n_assignments;
        out->value_size = info.value_size;
        out->customers = sm_alloc_array(out->n ? (size_t)out->n : 1, sizeof *out->customers);
        out->values = sm_malloc(bytes ? bytes : 1);
        if (out->customers == NULL || out->values == NULL)
            status = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading run %" PRIu64, run_id);
    }
    MDB_cursor *cursor = NULL;
    if (status == SM_OK && (rc = mdb_cursor_open(txn, store->dbi[DB_ASSIGNMENTS], &cursor)) != 0)
        status = store_fail(store, err, rc, "opening a cursor");
    uint64_t got = 0;
    if (status == SM_OK) {
        be32_put(key + 8, 0);
        k.mv_size = 12;
        k.mv_data = key;
        rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
        while (rc == 0 && k.mv_size == 12 && be64_get(k.mv_data) == run_id) {
            uint32_t customer = be32_get((const unsigned char *)k.mv_data + 8);
            if (got >= out->n || v.mv_size != out->value_size || (got > 0 && customer <= out->customers[got - 1])) {
                status = store_corrupt(store, err, "assignments of run %" PRIu64 " do not match its record", run_id);
                break;
            }
            out->customers[got] = customer;
            memcpy(out->values + got * out->value_size, v.mv_data, out->value_size);
            got++;
            rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
        }
        if (status == SM_OK && rc != 0 && rc != MDB_NOTFOUND)
            status = store_fail(store, err, rc, "reading assignments");
        if (status == SM_OK && got != out->n)
            status = store_corrupt(store, err, "run %" PRIu64 " has %" PRIu64 " assignments, its record says %" PRIu64,
                                   run_id, got, out->n);
    }
    if (cursor != NULL)
        mdb_cursor_close(cursor);
    store_read_end(store, txn);
    if (status != SM_OK)
        sm_assignments_free(out);
    return status;
}
