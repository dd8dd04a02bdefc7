/* SPDX-License-Identifier: MIT */
/*
 * Bulk loads for the engine: every transaction (grouped by customer), the
 * basket matrix (CSR) and the key tables, each in one cursor pass. Records
 * are validated as they are read (sizes, id ranges, order, counts against
 * the meta record), so a damaged or hostile store yields SM_ERR_STORAGE and
 * never an out-of-bounds write.
 */
#include <stdio.h>
#include <stdlib.h>

#include "storage/store_internal.h"

static int begin_with_stats(sm_store *store, MDB_txn **txn, store_stats *stats, store_schema *schema, sm_error *err)
{
    int status = store_read_begin(store, txn, err);
    if (status != SM_OK)
        return status;
    status = store_read_stats(store, *txn, stats, err);
    if (status == SM_OK && schema != NULL)
        status = store_read_schema(store, *txn, schema, err);
    if (status != SM_OK) {
        store_read_end(store, *txn);
        *txn = NULL;
    }
    return status;
}

static int open_cursor(sm_store *store, MDB_txn *txn, int db, MDB_cursor **cursor, sm_error *err)
{
    int rc = mdb_cursor_open(txn, store->dbi[db], cursor);
    if (rc != 0)
        return store_fail(store, err, rc, "opening a cursor");
    return SM_OK;
}

/* --- transactions ---------------------------------------------------------------------------- */

void sm_tx_table_free(sm_tx_table *t)
{
    if (t == NULL)
        return;
    sm_free(t->customer_offsets);
    sm_free(t->time);
    sm_free(t->amount);
    sm_free(t->quantity);
    sm_free(t->item);
    sm_free(t->basket);
    sm_free(t->flags);
    memset(t, 0, sizeof *t);
}

int sm_store_load_tx(sm_store *store, sm_tx_table *out, const sm_progress *progress, sm_error *err)
{
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    store_stats stats;
    store_schema schema;
    int status = begin_with_stats(store, &txn, &stats, &schema, err);
    if (status != SM_OK)
        return status;
    uint64_t n = stats.v[ST_TX_ROWS];
    uint32_t n_customers = (uint32_t)stats.v[ST_CUSTOMERS];
    uint32_t n_items = (uint32_t)stats.v[ST_ITEMS];
    uint64_t n_baskets = stats.v[ST_BASKETS];
    size_t alloc_n = n ? (size_t)n : 1;
    uint64_t used = store_used_bytes(store);
    if (!store_plausible(n, 8 + TX_KEY_BYTES + TX_VALUE_BYTES, used) || !store_plausible(n_customers, 8, used)) {
        store_read_end(store, txn);
        return store_corrupt(store, err, "the meta record counts more rows or customers than the file can hold");
    }
    if (n > SIZE_MAX / 8) {
        store_read_end(store, txn);
        return sm_error_set(err, SM_ERR_OVERFLOW, "%" PRIu64 " transaction rows do not fit in memory", n);
    }
    out->n_customers = n_customers;
    out->n_rows = n;
    out->money_scale = schema.money_scale;
    out->customer_offsets = sm_alloc_array((size_t)n_customers + 1, sizeof *out->customer_offsets);
    out->time = sm_alloc_array(alloc_n, sizeof *out->time);
    out->amount = sm_alloc_array(alloc_n, sizeof *out->amount);
    out->quantity = sm_alloc_array(alloc_n, sizeof *out->quantity);
    out->item = sm_alloc_array(alloc_n, sizeof *out->item);
    out->basket = sm_alloc_array(alloc_n, sizeof *out->basket);
    out->flags = sm_alloc_array(alloc_n, sizeof *out->flags);
    if (out->customer_offsets == NULL || out->time == NULL || out->amount == NULL || out->quantity == NULL ||
        out->item == NULL || out->basket == NULL || out->flags == NULL) {
        store_read_end(store, txn);
        sm_tx_table_free(out);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory loading %" PRIu64 " transaction rows", n);
    }
    MDB_cursor *cursor = NULL;
    status = open_cursor(store, txn, DB_TX, &cursor, err);
    uint64_t row = 0;
    uint32_t next_customer = 0; /* customers whose offset is set: [0, next_customer) */
    unsigned char prev_key[TX_KEY_BYTES];
    MDB_val k, v;
    int rc = status == SM_OK ? mdb_cursor_get(cursor, &k, &v, MDB_FIRST) : 0;
    while (status == SM_OK && rc == 0) {
        if (k.mv_size != TX_KEY_BYTES || v.mv_size != TX_VALUE_BYTES) {
            status = store_corrupt(store, err, "tx record %" PRIu64 " has a %zu-byte key and %zu-byte value", row,
                                   k.mv_size, v.mv_size);
            break;
        }
        const unsigned char *key = k.mv_data, *val = v.mv_data;
        if (row >= n) {
            status = store_corrupt(store, err, "tx holds more rows than the %" PRIu64 " counted", n);
            break;
        }
        if (row > 0 && memcmp(prev_key, key, TX_KEY_BYTES) >= 0) {
            status = store_corrupt(store, err, "tx keys out of order at row %" PRIu64, row);
            break;
        }
        memcpy(prev_key, key, TX_KEY_BYTES);
        uint32_t customer = be32_get(key);
        uint32_t item = le32_get(val + 12), basket = le32_get(val + 16);
        int32_t quantity = (int32_t)le32_get(val + 8);
        if (customer >= n_customers || (item >= n_items && item != SM_ITEM_NONE) || basket >= n_baskets ||
            quantity == 0) {
            status = store_corrupt(store, err, "tx row %" PRIu64 " has an id out of range", row);
            break;
        }
        while (next_customer <= customer)
            out->customer_offsets[next_customer++] = row;
        out->time[row] = time_key_get(key + 4);
        out->amount[row] = (int64_t)le64_get(val);
        out->quantity[row] = quantity;
        out->item[row] = item;
        out->basket[row] = basket;
        out->flags[row] = le16_get(val + 20);
        row++;
        if (progress != NULL && row % (1u << 20) == 0 && sm_progress_report(progress, "load tx", row, n)) {
            status = sm_error_set(err, SM_ERR_CANCELLED, "cancelled");
            break;
        }
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (status == SM_OK && rc != 0 && rc != MDB_NOTFOUND)
        status = store_fail(store, err, rc, "reading tx");
    if (status == SM_OK && row != n)
        status = store_corrupt(store, err, "tx holds %" PRIu64 " rows, the meta record counts %" PRIu64, row, n);
    if (status == SM_OK) {
        while (next_customer <= n_customers)
            out->customer_offsets[next_customer++] = row;
    }
    if (cursor != NULL)
        mdb_cursor_close(cursor);
    store_read_end(store, txn);
    if (status != SM_OK) {
        sm_tx_table_free(out);
        return status;
    }
    return SM_OK;
}

/* --- baskets ------------------------------------------------------------------------------------ */

void sm_basket_table_free(sm_basket_table *t)
{
    if (t == NULL)
        return;
    sm_free(t->offsets);
    sm_free(t->items);
    sm_free(t->basket_id);
    sm_free(t->customer);
    sm_free(t->time);
    sm_free(t->flags);
    memset(t, 0, sizeof *t);
}

int sm_store_load_baskets(sm_store *store, unsigned options, sm_basket_table *out, const sm_progress *progress,
                          sm_error *err)
{
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    store_stats stats;
    int status = begin_with_stats(store, &txn, &stats, NULL, err);
    if (status != SM_OK)
        return status;
    uint64_t n = stats.v[ST_BASKETS], total = stats.v[ST_BASKET_ITEMS];
    uint32_t n_items = (uint32_t)stats.v[ST_ITEMS];
    uint32_t n_customers = (uint32_t)stats.v[ST_CUSTOMERS];
    uint64_t file_bytes = store_used_bytes(store);
    if (!store_plausible(n, 8 + 4 + BASKET_HEADER_BYTES, file_bytes) || !store_plausible(total, 4, file_bytes)) {
        store_read_end(store, txn);
        return store_corrupt(store, err, "the meta record counts more baskets than the file can hold");
    }
    if (n > SIZE_MAX / 8 || total > SIZE_MAX / 8) {
        store_read_end(store, txn);
        return sm_error_set(err, SM_ERR_OVERFLOW, "the basket matrix does not fit in memory");
    }
    out->offsets = sm_alloc_array((size_t)n + 1, sizeof *out->offsets);
    out->items = sm_alloc_array(total ? (size_t)total : 1, sizeof *out->items);
    out->basket_id = sm_alloc_array(n ? (size_t)n : 1, sizeof *out->basket_id);
    out->customer = sm_alloc_array(n ? (size_t)n : 1, sizeof *out->customer);
    out->time = sm_alloc_array(n ? (size_t)n : 1, sizeof *out->time);
    out->flags = sm_alloc_array(n ? (size_t)n : 1, sizeof *out->flags);
    if (out->offsets == NULL || out->items == NULL || out->basket_id == NULL || out->customer == NULL ||
        out->time == NULL || out->flags == NULL) {
        store_read_end(store, txn);
        sm_basket_table_free(out);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory loading %" PRIu64 " baskets", n);
    }
    MDB_cursor *cursor = NULL;
    status = open_cursor(store, txn, DB_BASKETS, &cursor, err);
    uint64_t seen = 0, rows = 0, used = 0, all_items = 0;
    out->offsets[0] = 0;
    MDB_val k, v;
    int rc = status == SM_OK ? mdb_cursor_get(cursor, &k, &v, MDB_FIRST) : 0;
    while (status == SM_OK && rc == 0) {
        const unsigned char *p = v.mv_data;
        if (k.mv_size != 4 || be32_get(k.mv_data) != seen || seen >= n) {
            status = store_corrupt(store, err, "basket keys are not the dense ids 0..%" PRIu64, n);
            break;
        }
        if (v.mv_size < BASKET_HEADER_BYTES || (v.mv_size - BASKET_HEADER_BYTES) % 4 != 0 ||
            le32_get(p + 20) != (v.mv_size - BASKET_HEADER_BYTES) / 4) {
            status = store_corrupt(store, err, "basket %" PRIu64 " record of %zu bytes", seen, v.mv_size);
            break;
        }
        uint32_t count = le32_get(p + 20), customer = le32_get(p);
        uint16_t flags = le16_get(p + 4);
        all_items += count;
        if (all_items > total || (customer >= n_customers && customer != SM_CUSTOMER_NONE)) {
            status = store_corrupt(store, err, "basket %" PRIu64 " has an id or count out of range", seen);
            break;
        }
        bool skip = false;
        if ((options & SM_BASKETS_EXCLUDE_RETURNS) && (flags & SM_BASKET_RETURN)) {
            out->skipped_returns++;
            skip = true;
        } else if ((options & SM_BASKETS_SKIP_EMPTY) && count == 0) {
            out->skipped_empty++;
            skip = true;
        }
        if (!skip) {
            const unsigned char *items = p + BASKET_HEADER_BYTES;
            for (uint32_t i = 0; i < count; i++) {
                uint32_t item = le32_get(items + 4 * i);
                if (item >= n_items || (i > 0 && item <= out->items[used - 1])) {
                    status = store_corrupt(store, err, "basket %" PRIu64 " items are not sorted distinct ids", seen);
                    break;
                }
                out->items[used++] = item;
            }
            if (status != SM_OK)
                break;
            out->basket_id[rows] = (sm_basket_id)seen;
            out->customer[rows] = customer;
            out->time[rows] = (int64_t)le64_get(p + 8);
            out->flags[rows] = flags;
            out->offsets[++rows] = used;
        }
        seen++;
        if (progress != NULL && seen % (1u << 20) == 0 && sm_progress_report(progress, "load baskets", seen, n)) {
            status = sm_error_set(err, SM_ERR_CANCELLED, "cancelled");
            break;
        }
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (status == SM_OK && rc != 0 && rc != MDB_NOTFOUND)
        status = store_fail(store, err, rc, "reading baskets");
    if (status == SM_OK && (seen != n || all_items != total))
        status = store_corrupt(store, err, "%" PRIu64 " baskets with %" PRIu64 " items, the meta record counts %" PRIu64
                               " and %" PRIu64, seen, all_items, n, total);
    if (cursor != NULL)
        mdb_cursor_close(cursor);
    store_read_end(store, txn);
    if (status != SM_OK) {
        sm_basket_table_free(out);
        return status;
    }
    out->csr.n_rows = rows;
    out->csr.n_items = n_items;
    out->csr.offsets = out->offsets;
    out->csr.items = out->items;
    return SM_OK;
}

/* --- keys --------------------------------------------------------------------------------------- */

void sm_key_table_free(sm_key_table *t)
{
    if (t == NULL)
        return;
    sm_free(t->keys);
    sm_free(t->descriptions);
    sm_free(t->text);
    memset(t, 0, sizeof *t);
}

/* Splits an *_keys value into key and description. */
static int split_key_value(sm_store *store, sm_key_kind kind, const MDB_val *v, const unsigned char **key,
                           size_t *key_len, const unsigned char **desc, size_t *desc_len, sm_error *err)
{
    const unsigned char *p = v->mv_data;
    if (kind == SM_KEYS_CUSTOMERS) {
        *key = p;
        *key_len = v->mv_size;
        *desc = NULL;
        *desc_len = 0;
    } else {
        if (v->mv_size < 2 || (size_t)le16_get(p) + 2 > v->mv_size)
            return store_corrupt(store, err, "item key record of %zu bytes", v->mv_size);
        *key = p + 2;
        *key_len = le16_get(p);
        *desc = p + 2 + *key_len;
        *desc_len = v->mv_size - 2 - *key_len;
    }
    if (*key_len == 0 || *key_len > SM_STORE_KEY_MAX || memchr(*key, '\0', *key_len) != NULL ||
        (*desc_len > 0 && memchr(*desc, '\0', *desc_len) != NULL))
        return store_corrupt(store, err, "a key record holds an invalid key");
    return SM_OK;
}

/* Longest basket_keys key: the synthesised 0x1F customer 0x1F time, with a
 * 255-byte customer key and a 20-character time. */
#define BASKET_KEY_RECORD_MAX (SM_STORE_KEY_MAX + 22u)

/* Appends `len` bytes and a NUL to the growing key text (doubling it as
 * needed) and gives their offset: the key tables point into one block. */
static int append_text(char **text, size_t *cap, size_t *used, const void *bytes, size_t len, size_t *offset,
                       sm_error *err)
{
    size_t need = *used + len + 1;
    if (need > *cap) {
        size_t grown = *cap;
        while (grown < need)
            grown *= 2;
        char *bigger = sm_realloc_array(*text, grown, 1);
        if (bigger == NULL)
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory loading keys");
        *text = bigger;
        *cap = grown;
    }
    *offset = *used;
    if (len > 0)
        memcpy(*text + *used, bytes, len);
    *used += len;
    (*text)[(*used)++] = '\0';
    return SM_OK;
}

/* Basket keys by id from basket_keys (key -> id; there is no id -> key
 * sub-database), in one cursor pass. Ids without an external key point at
 * the "" at text[0]. */
static int load_basket_keys(sm_store *store, sm_key_table *out, sm_error *err)
{
    MDB_txn *txn;
    store_stats stats;
    int status = begin_with_stats(store, &txn, &stats, NULL, err);
    if (status != SM_OK)
        return status;
    /* Every basket has a record of at least 24 bytes in `baskets`. */
    if (stats.v[ST_BASKETS] > UINT32_MAX || !store_plausible(stats.v[ST_BASKETS], 24, store_used_bytes(store))) {
        store_read_end(store, txn);
        return store_corrupt(store, err, "the meta record counts more baskets than the file can hold");
    }
    const uint32_t n = (uint32_t)stats.v[ST_BASKETS];
    size_t *key_off = sm_calloc((size_t)n + 1, sizeof *key_off); /* 0: "" */
    uint8_t *seen = sm_calloc((size_t)n + 1, 1);
    size_t cap = 1 << 16, used = 0;
    char *text = sm_malloc(cap);
    out->keys = sm_alloc_array((size_t)n + 1, sizeof *out->keys);
    MDB_cursor *cursor = NULL;
    if (key_off == NULL || seen == NULL || text == NULL || out->keys == NULL) {
        status = sm_error_set(err, SM_ERR_NOMEM, "out of memory loading %" PRIu32 " basket keys", n);
        goto out;
    }
    text[used++] = '\0';
    status = open_cursor(store, txn, DB_BASKET_KEYS, &cursor, err);
    if (status != SM_OK)
        goto out;
    MDB_val k, v;
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (v.mv_size != 4) {
            status = store_corrupt(store, err, "basket_keys record of %zu bytes", v.mv_size);
            break;
        }
        uint32_t id = le32_get(v.mv_data);
        if (id >= n || seen[id]) {
            status = store_corrupt(store, err,
                                   id >= n ? "basket_keys maps a key to basket %" PRIu32 ", beyond the %" PRIu32
                                             " baskets the meta record counts"
                                           : "basket_keys maps two keys to basket %" PRIu32 " (of %" PRIu32 ")",
                                   id, n);
            break;
        }
        seen[id] = 1;
        const unsigned char *key = k.mv_data;
        if (k.mv_size == 0 || k.mv_size > BASKET_KEY_RECORD_MAX || memchr(key, '\0', k.mv_size) != NULL ||
            (key[0] != 0x1F && k.mv_size > SM_STORE_KEY_MAX)) {
            status = store_corrupt(store, err, "basket_keys holds an invalid key for basket %" PRIu32, id);
            break;
        }
        /* 0x1F: synthesised from (customer, time), not an external key */
        if (key[0] != 0x1F && (status = append_text(&text, &cap, &used, key, k.mv_size, &key_off[id], err)) != SM_OK)
            break;
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (status == SM_OK && rc != MDB_NOTFOUND)
        status = store_fail(store, err, rc, "reading basket keys");
    if (status == SM_OK) {
        out->n = n;
        out->text = text;
        text = NULL;
        for (uint32_t i = 0; i < n; i++)
            out->keys[i] = out->text + key_off[i];
    }
out:
    if (cursor != NULL)
        mdb_cursor_close(cursor);
    store_read_end(store, txn);
    sm_free(key_off);
    sm_free(seen);
    sm_free(text);
    if (status != SM_OK)
        sm_key_table_free(out);
    return status;
}

int sm_store_load_keys(sm_store *store, sm_key_kind kind, sm_key_table *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    if (kind == SM_KEYS_BASKETS)
        return load_basket_keys(store, out, err);
    if (kind != SM_KEYS_CUSTOMERS && kind != SM_KEYS_ITEMS)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "unknown key kind %d", (int)kind);
    MDB_txn *txn;
    store_stats stats;
    int status = begin_with_stats(store, &txn, &stats, NULL, err);
    if (status != SM_OK)
        return status;
    uint32_t n = (uint32_t)(kind == SM_KEYS_CUSTOMERS ? stats.v[ST_CUSTOMERS] : stats.v[ST_ITEMS]);
    int db = kind == SM_KEYS_CUSTOMERS ? DB_CUSTOMER_KEYS : DB_ITEM_KEYS;
    if (!store_plausible(n, 8 + 4 + 1, store_used_bytes(store))) {
        store_read_end(store, txn);
        return store_corrupt(store, err, "the meta record counts more keys than the file can hold");
    }
    size_t *key_off = sm_alloc_array((size_t)n + 1, sizeof *key_off);
    size_t *desc_off = sm_alloc_array((size_t)n + 1, sizeof *desc_off);
    size_t cap = 1 << 16, used = 0;
    char *text = sm_malloc(cap);
    out->keys = sm_alloc_array((size_t)n + 1, sizeof *out->keys);
    if (kind == SM_KEYS_ITEMS)
        out->descriptions = sm_alloc_array((size_t)n + 1, sizeof *out->descriptions);
    if (key_off == NULL || desc_off == NULL || text == NULL || out->keys == NULL ||
        (kind == SM_KEYS_ITEMS && out->descriptions == NULL)) {
        status = sm_error_set(err, SM_ERR_NOMEM, "out of memory loading %" PRIu32 " keys", n);
        goto out;
    }
    MDB_cursor *cursor;
    status = open_cursor(store, txn, db, &cursor, err);
    if (status != SM_OK)
        goto out;
    uint32_t seen = 0;
    MDB_val k, v;
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size != 4 || be32_get(k.mv_data) != seen || seen >= n) {
            status = store_corrupt(store, err, "%s keys are not the dense ids 0..%" PRIu32, sm_store_db_names[db], n);
            break;
        }
        const unsigned char *key, *desc;
        size_t key_len, desc_len;
        status = split_key_value(store, kind, &v, &key, &key_len, &desc, &desc_len, err);
        if (status != SM_OK)
            break;
        if ((status = append_text(&text, &cap, &used, key, key_len, &key_off[seen], err)) != SM_OK ||
            (status = append_text(&text, &cap, &used, desc, desc_len, &desc_off[seen], err)) != SM_OK)
            break;
        seen++;
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (status == SM_OK && rc != MDB_NOTFOUND)
        status = store_fail(store, err, rc, "reading keys");
    if (status == SM_OK && seen != n)
        status = store_corrupt(store, err, "%" PRIu32 " keys, the meta record counts %" PRIu32, seen, n);
    mdb_cursor_close(cursor);
    if (status == SM_OK) {
        out->n = n;
        out->text = text;
        text = NULL;
        for (uint32_t i = 0; i < n; i++) {
            out->keys[i] = out->text + key_off[i];
            if (out->descriptions != NULL)
                out->descriptions[i] = out->text + desc_off[i];
        }
    }
out:
    store_read_end(store, txn);
    sm_free(key_off);
    sm_free(desc_off);
    sm_free(text);
    if (status != SM_OK)
        sm_key_table_free(out);
    return status;
}

/* Copies at most cap-1 bytes, cutting at a UTF-8 character boundary. */
static void copy_utf8(char *dst, size_t cap, const unsigned char *src, size_t len)
{
    if (len >= cap) {
        len = cap - 1;
        while (len > 0 && (src[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

int sm_store_key(sm_store *store, sm_key_kind kind, uint32_t id, char *buf, size_t cap, char *description,
                 size_t desc_cap, sm_error *err)
{
    if (kind == SM_KEYS_BASKETS)
        return sm_error_set(err, SM_ERR_INVALID_ARG,
                            "basket keys are stored key -> id only: load them with sm_store_load_keys");
    if (kind != SM_KEYS_CUSTOMERS && kind != SM_KEYS_ITEMS)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "unknown key kind %d", (int)kind);
    if (buf == NULL || cap == 0 || (description != NULL && desc_cap == 0))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "a key buffer of at least 1 byte is required");
    MDB_txn *txn;
    int status = store_read_begin(store, &txn, err);
    if (status != SM_OK)
        return status;
    unsigned char kb[4];
    be32_put(kb, id);
    MDB_val k = {4, kb}, v;
    int db = kind == SM_KEYS_CUSTOMERS ? DB_CUSTOMER_KEYS : DB_ITEM_KEYS;
    int rc = mdb_get(txn, store->dbi[db], &k, &v);
    if (rc == MDB_NOTFOUND) {
        status = sm_error_set_at(err, SM_ERR_NOT_FOUND, store->path, 0, 0, NULL, "no %s with id %" PRIu32,
                                 kind == SM_KEYS_CUSTOMERS ? "customer" : "item", id);
    } else if (rc != 0) {
        status = store_fail(store, err, rc, "reading a key");
    } else {
        const unsigned char *key, *desc;
        size_t key_len, desc_len;
        status = split_key_value(store, kind, &v, &key, &key_len, &desc, &desc_len, err);
        if (status == SM_OK && key_len >= cap)
            status = sm_error_set(err, SM_ERR_INVALID_ARG, "key of %zu bytes does not fit a %zu-byte buffer", key_len,
                                  cap);
        if (status == SM_OK) {
            memcpy(buf, key, key_len);
            buf[key_len] = '\0';
            if (description != NULL)
                copy_utf8(description, desc_cap, desc, desc_len);
        }
    }
    store_read_end(store, txn);
    return status;
}

static const char *kind_name(sm_key_kind kind)
{
    return kind == SM_KEYS_CUSTOMERS ? "customer" : kind == SM_KEYS_ITEMS ? "item" : "basket";
}

int sm_store_find(sm_store *store, sm_key_kind kind, const char *key, size_t len, uint32_t *id, sm_error *err)
{
    if (kind != SM_KEYS_CUSTOMERS && kind != SM_KEYS_ITEMS && kind != SM_KEYS_BASKETS)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "unknown key kind %d", (int)kind);
    if (len == 0 || len > SM_STORE_KEY_MAX)
        return sm_error_set(err, SM_ERR_NOT_FOUND, "no key of %zu bytes exists", len);
    MDB_txn *txn;
    int status = store_read_begin(store, &txn, err);
    if (status != SM_OK)
        return status;
    MDB_val k = {len, (void *)key}, v;
    int db = kind == SM_KEYS_CUSTOMERS ? DB_CUSTOMERS : kind == SM_KEYS_ITEMS ? DB_ITEMS : DB_BASKET_KEYS;
    int rc = mdb_get(txn, store->dbi[db], &k, &v);
    if (rc == MDB_NOTFOUND)
        status = sm_error_set_at(err, SM_ERR_NOT_FOUND, store->path, 0, 0, NULL, "no %s \"%.*s\"", kind_name(kind),
                                 (int)SM_MIN(len, (size_t)80), key);
    else if (rc != 0)
        status = store_fail(store, err, rc, "looking up a key");
    else if (v.mv_size != 4)
        status = store_corrupt(store, err, "key record of %zu bytes", v.mv_size);
    else
        *id = le32_get(v.mv_data);
    store_read_end(store, txn);
    return status;
}
