/* SPDX-License-Identifier: MIT */
/*
 * FIMI .dat and basket-CSV readers. Both first collect rows of provisional
 * item ids (the raw number for FIMI, the order of first appearance for CSV),
 * then renumber items densely in a canonical order (numeric, or byte order
 * of the names) so that ids do not depend on where an item first appears,
 * and finally sort each row and collapse duplicates, counting them.
 */
#include "storage/basket_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/core.h"
#include "storage/csv.h"

/* --- growable arrays ------------------------------------------------------------ */

typedef struct u32_vec {
    uint32_t *v;
    size_t n, cap;
} u32_vec;

typedef struct u64_vec {
    uint64_t *v;
    size_t n, cap;
} u64_vec;

static int u32_push(u32_vec *a, uint32_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        uint32_t *v = sm_realloc_array(a->v, cap, sizeof *v);
        if (v == NULL)
            return SM_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return SM_OK;
}

static int u64_push(u64_vec *a, uint64_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        uint64_t *v = sm_realloc_array(a->v, cap, sizeof *v);
        if (v == NULL)
            return SM_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return SM_OK;
}

/* The object behind sm_basket_data: the public part first. */
typedef struct basket_owner {
    sm_basket_data pub;
    uint64_t *offsets;
    sm_item_id *items;
    char **labels;
    char *label_text;
} basket_owner;

void sm_basket_data_destroy(sm_basket_data *data)
{
    if (data == NULL)
        return;
    basket_owner *o = (basket_owner *)data;
    sm_free(o->offsets);
    sm_free(o->items);
    sm_free(o->labels);
    sm_free(o->label_text);
    sm_free(o);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Rows of dense ids (already renumbered) -> sorted, distinct rows, in place. */
static void sort_dedupe_rows(basket_owner *o, const uint64_t *raw_offsets, uint64_t n_rows)
{
    uint64_t out = 0;
    o->offsets[0] = 0;
    for (uint64_t r = 0; r < n_rows; r++) {
        uint32_t *row = o->items + raw_offsets[r];
        size_t len = (size_t)(raw_offsets[r + 1] - raw_offsets[r]);
        if (len <= 16) {
            for (size_t i = 1; i < len; i++) {
                uint32_t x = row[i];
                size_t j = i;
                for (; j > 0 && row[j - 1] > x; j--)
                    row[j] = row[j - 1];
                row[j] = x;
            }
        } else {
            qsort(row, len, sizeof *row, cmp_u32);
        }
        for (size_t i = 0; i < len; i++) {
            if (i > 0 && row[i] == row[i - 1]) {
                o->pub.n_duplicates++;
                continue;
            }
            o->items[out++] = row[i]; /* out <= raw_offsets[r] + i: never overtakes */
        }
        o->offsets[r + 1] = out;
        if (out == o->offsets[r])
            o->pub.n_empty++;
    }
    o->pub.n_occurrences = out;
}

/* Takes ownership of `ids` (row contents, already dense) and `offsets`. */
static int finish(basket_owner *o, u32_vec *ids, u64_vec *offsets, uint32_t n_items)
{
    uint64_t n_rows = offsets->n - 1;
    o->items = ids->v;
    ids->v = NULL;
    /* Dedupe writes offsets[r+1] after reading raw_offsets[r+1]: use the raw
     * array as the source and a fresh one as the destination. */
    o->offsets = sm_alloc_array((size_t)n_rows + 1, sizeof *o->offsets);
    if (o->offsets == NULL)
        return SM_ERR_NOMEM;
    sort_dedupe_rows(o, offsets->v, n_rows);
    if (o->pub.n_occurrences < ids->n) {
        sm_item_id *shrunk = sm_realloc_array(o->items, o->pub.n_occurrences ? o->pub.n_occurrences : 1,
                                              sizeof *shrunk);
        if (shrunk != NULL)
            o->items = shrunk;
    }
    o->pub.csr.n_rows = n_rows;
    o->pub.csr.n_items = n_items;
    o->pub.csr.offsets = o->offsets;
    o->pub.csr.items = o->items;
    o->pub.labels = (const char *const *)o->labels;
    return SM_OK;
}

/* --- whole-file input ------------------------------------------------------------ */

static int slurp(const char *path, char **text, size_t *len, sm_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "cannot open: %s", strerror(e));
        sm_error_set_cause(err, e);
        return SM_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
        close(fd);
        sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "cannot read: %s", strerror(e));
        sm_error_set_cause(err, e);
        return SM_ERR_IO;
    }
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 65536, n = 0;
    char *buf = sm_malloc(cap);
    if (buf == NULL) {
        close(fd);
        return sm_error_set(err, SM_ERR_NOMEM, "cannot hold %s in memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) { /* pipes and files that grew while we read */
            char *bigger = sm_realloc_array(buf, cap, 2);
            if (bigger == NULL) {
                sm_free(buf);
                close(fd);
                return sm_error_set(err, SM_ERR_NOMEM, "cannot hold %s in memory", path);
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            sm_free(buf);
            close(fd);
            sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "read failed: %s", strerror(e));
            sm_error_set_cause(err, e);
            return SM_ERR_IO;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return SM_OK;
}

/* --- FIMI ------------------------------------------------------------------------- */

int sm_basket_parse_fimi(const char *text, size_t len, const char *name, sm_basket_data **out,
                         sm_error *err)
{
    *out = NULL;
    int rc = SM_OK;
    basket_owner *o = sm_calloc(1, sizeof *o);
    u32_vec ids = {0};
    u64_vec offsets = {0};
    uint32_t *dense = NULL, *distinct = NULL;
    if (o == NULL || u64_push(&offsets, 0) != SM_OK) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", name);
        goto out_fail;
    }
    uint64_t line = 1;
    size_t line_start = 0;
    uint32_t max_id = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n' || (c == '\r' && i + 1 < len && text[i + 1] == '\n') ||
            (c == '\r' && i + 1 == len)) {
            if (u64_push(&offsets, ids.n) != SM_OK)
                goto out_nomem;
            i += c == '\r' ? 2 : 1;
            line++;
            line_start = i;
            continue;
        }
        if (c == ' ' || c == '\t') {
            i++;
            continue;
        }
        if (c < '0' || c > '9') {
            if (c >= 0x20 && c < 0x7f)
                rc = sm_error_set_at(err, SM_ERR_PARSE, name, line, (uint32_t)(i - line_start + 1), NULL,
                                     "expected an item id (digits) or whitespace, got '%c'", c);
            else
                rc = sm_error_set_at(err, SM_ERR_PARSE, name, line, (uint32_t)(i - line_start + 1), NULL,
                                     "expected an item id (digits) or whitespace, got byte 0x%02x", c);
            goto out_fail;
        }
        size_t start = i;
        uint64_t v = 0;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            v = v * 10 + (uint64_t)(text[i] - '0');
            if (v > UINT32_MAX - 1) {
                rc = sm_error_set_at(err, SM_ERR_PARSE, name, line, (uint32_t)(start - line_start + 1),
                                     NULL, "item id is larger than 4294967294");
                goto out_fail;
            }
            i++;
        }
        if (i < len && text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            rc = sm_error_set_at(err, SM_ERR_PARSE, name, line, (uint32_t)(i - line_start + 1), NULL,
                                 "item ids must be separated by spaces");
            goto out_fail;
        }
        if (u32_push(&ids, (uint32_t)v) != SM_OK)
            goto out_nomem;
        if (v > max_id)
            max_id = (uint32_t)v;
    }
    if (line_start < len && u64_push(&offsets, ids.n) != SM_OK) /* last line without newline */
        goto out_nomem;

    /* Renumber: a presence table when ids are compact, else sort the distinct values. */
    uint32_t n_items = 0;
    if (ids.n > 0 && (uint64_t)max_id < 4 * (uint64_t)ids.n + (1u << 20)) {
        dense = sm_alloc_array((size_t)max_id + 1, sizeof *dense);
        if (dense == NULL)
            goto out_nomem;
        memset(dense, 0xff, ((size_t)max_id + 1) * sizeof *dense);
        for (size_t k = 0; k < ids.n; k++)
            dense[ids.v[k]] = 0;
        for (size_t v = 0; v <= max_id; v++)
            if (dense[v] == 0)
                dense[v] = n_items++;
            else
                dense[v] = UINT32_MAX;
        distinct = sm_alloc_array(n_items ? n_items : 1, sizeof *distinct);
        if (distinct == NULL)
            goto out_nomem;
        for (size_t v = 0; v <= max_id; v++)
            if (dense[v] != UINT32_MAX)
                distinct[dense[v]] = (uint32_t)v;
        for (size_t k = 0; k < ids.n; k++)
            ids.v[k] = dense[ids.v[k]];
    } else if (ids.n > 0) {
        distinct = sm_alloc_array(ids.n, sizeof *distinct);
        if (distinct == NULL)
            goto out_nomem;
        memcpy(distinct, ids.v, ids.n * sizeof *distinct);
        qsort(distinct, ids.n, sizeof *distinct, cmp_u32);
        size_t m = 0;
        for (size_t k = 0; k < ids.n; k++)
            if (k == 0 || distinct[k] != distinct[m - 1])
                distinct[m++] = distinct[k];
        n_items = (uint32_t)m;
        for (size_t k = 0; k < ids.n; k++) {
            uint32_t *hit = bsearch(&ids.v[k], distinct, m, sizeof *distinct, cmp_u32);
            ids.v[k] = (uint32_t)(hit - distinct);
        }
    }

    /* Labels: the ids' decimal text, one buffer. */
    o->labels = sm_alloc_array(n_items ? n_items : 1, sizeof *o->labels);
    o->label_text = sm_alloc_array(n_items ? n_items : 1, 11);
    if (o->labels == NULL || o->label_text == NULL)
        goto out_nomem;
    for (uint32_t k = 0; k < n_items; k++) {
        o->labels[k] = o->label_text + (size_t)k * 11;
        snprintf(o->labels[k], 11, "%" PRIu32, distinct[k]);
    }
    rc = finish(o, &ids, &offsets, n_items);
    if (rc != SM_OK)
        goto out_nomem;
    sm_free(dense);
    sm_free(distinct);
    sm_free(offsets.v);
    *out = &o->pub;
    return SM_OK;

out_nomem:
    rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", name);
out_fail:
    sm_free(dense);
    sm_free(distinct);
    sm_free(ids.v);
    sm_free(offsets.v);
    sm_basket_data_destroy(o ? &o->pub : NULL);
    return rc;
}

int sm_basket_read_fimi(const char *path, sm_basket_data **out, sm_error *err)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = slurp(path, &text, &len, err);
    if (rc != SM_OK)
        return rc;
    rc = sm_basket_parse_fimi(text, len, path, out, err);
    sm_free(text);
    return rc;
}

/* --- basket CSV ------------------------------------------------------------------- */

/* Item names: an open-addressing hash from name to first-appearance id; the
 * names themselves live in one growing text buffer. */
typedef struct name_table {
    uint32_t *slots; /* id + 1, 0 = empty */
    size_t n_slots;
    u64_vec start;   /* id -> offset of its name in text */
    u32_vec length;  /* id -> byte length */
    char *text;
    size_t text_len, text_cap;
} name_table;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int names_grow(name_table *t)
{
    size_t n = t->n_slots ? t->n_slots * 2 : 1024;
    uint32_t *slots = sm_calloc(n, sizeof *slots);
    if (slots == NULL)
        return SM_ERR_NOMEM;
    for (size_t id = 0; id < t->start.n; id++) {
        size_t s = hash_bytes(t->text + t->start.v[id], t->length.v[id]) & (n - 1);
        while (slots[s] != 0)
            s = (s + 1) & (n - 1);
        slots[s] = (uint32_t)id + 1;
    }
    sm_free(t->slots);
    t->slots = slots;
    t->n_slots = n;
    return SM_OK;
}

/* *id = the name's id, adding it if new. */
static int names_intern(name_table *t, const char *s, size_t n, uint32_t *id)
{
    if (2 * (t->start.n + 1) > t->n_slots && names_grow(t) != SM_OK)
        return SM_ERR_NOMEM;
    size_t slot = hash_bytes(s, n) & (t->n_slots - 1);
    while (t->slots[slot] != 0) {
        uint32_t k = t->slots[slot] - 1;
        if (t->length.v[k] == n && memcmp(t->text + t->start.v[k], s, n) == 0) {
            *id = k;
            return SM_OK;
        }
        slot = (slot + 1) & (t->n_slots - 1);
    }
    if (t->start.n >= UINT32_MAX - 1)
        return SM_ERR_OVERFLOW;
    if (t->text_len + n + 1 > t->text_cap) {
        size_t cap = SM_MAX(t->text_cap * 2, t->text_len + n + 1 + 4096);
        char *text = sm_realloc_array(t->text, cap, 1);
        if (text == NULL)
            return SM_ERR_NOMEM;
        t->text = text;
        t->text_cap = cap;
    }
    memcpy(t->text + t->text_len, s, n);
    t->text[t->text_len + n] = '\0';
    if (u64_push(&t->start, t->text_len) != SM_OK || u32_push(&t->length, (uint32_t)n) != SM_OK)
        return SM_ERR_NOMEM;
    t->text_len += n + 1;
    *id = (uint32_t)(t->start.n - 1);
    t->slots[slot] = *id + 1;
    return SM_OK;
}

static void names_free(name_table *t)
{
    sm_free(t->slots);
    sm_free(t->start.v);
    sm_free(t->length.v);
    sm_free(t->text);
}

/* qsort has no context argument; the sort below is a merge sort that has. */
static int name_cmp(const name_table *t, uint32_t a, uint32_t b)
{
    size_t la = t->length.v[a], lb = t->length.v[b];
    int c = memcmp(t->text + t->start.v[a], t->text + t->start.v[b], SM_MIN(la, lb));
    return c != 0 ? c : (la > lb) - (la < lb);
}

static void name_sort(const name_table *t, uint32_t *a, uint32_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    name_sort(t, a, tmp, h);
    name_sort(t, a + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = name_cmp(t, a[j], a[i]) < 0 ? a[j++] : a[i++];
    while (i < h)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

static int parse_csv_reader(sm_csv_reader *reader, sm_basket_data **out, sm_error *err)
{
    const char *name = sm_csv_name(reader);
    int rc = SM_OK;
    basket_owner *o = sm_calloc(1, sizeof *o);
    u32_vec ids = {0};
    u64_vec offsets = {0};
    name_table names = {0};
    uint32_t *order = NULL, *tmp = NULL, *rank = NULL;
    if (o == NULL || u64_push(&offsets, 0) != SM_OK)
        goto out_nomem;
    uint64_t blanks_seen = 0;
    sm_csv_record rec;
    while ((rc = sm_csv_next(reader, &rec, err)) == 1) {
        /* Blank lines the reader skipped before this record are empty baskets. */
        for (uint64_t b = sm_csv_blank_lines(reader); blanks_seen < b; blanks_seen++)
            if (u64_push(&offsets, ids.n) != SM_OK)
                goto out_nomem;
        if (rec.problem != SM_CSV_OK) {
            rc = sm_error_set_at(err, SM_ERR_PARSE, name, rec.line, rec.problem_column, NULL, "%s",
                                 sm_csv_problem_text(rec.problem));
            goto out_fail;
        }
        for (size_t f = 0; f < rec.n_fields; f++) {
            size_t n = rec.lengths[f];
            size_t bad;
            if (n == 0) {
                o->pub.n_blank_fields++;
                continue;
            }
            if (memchr(rec.fields[f], '\0', n) != NULL || !sm_utf8_valid(rec.fields[f], n, &bad)) {
                rc = sm_error_set_at(err, SM_ERR_PARSE, name, rec.line, (uint32_t)(f + 1), NULL,
                                     "item name is not valid UTF-8 text");
                goto out_fail;
            }
            uint32_t id;
            int irc = names_intern(&names, rec.fields[f], n, &id);
            if (irc == SM_ERR_OVERFLOW) {
                rc = sm_error_set_at(err, SM_ERR_OVERFLOW, name, rec.line, (uint32_t)(f + 1), NULL,
                                     "more than 4294967294 distinct items");
                goto out_fail;
            }
            if (irc != SM_OK || u32_push(&ids, id) != SM_OK)
                goto out_nomem;
        }
        if (u64_push(&offsets, ids.n) != SM_OK)
            goto out_nomem;
    }
    if (rc < 0)
        goto out_fail;
    for (uint64_t b = sm_csv_blank_lines(reader); blanks_seen < b; blanks_seen++)
        if (u64_push(&offsets, ids.n) != SM_OK)
            goto out_nomem;

    uint32_t n_items = (uint32_t)names.start.n;
    size_t m = n_items ? n_items : 1;
    order = sm_alloc_array(m, sizeof *order);
    tmp = sm_alloc_array(m, sizeof *tmp);
    rank = sm_alloc_array(m, sizeof *rank);
    o->labels = sm_alloc_array(m, sizeof *o->labels);
    if (order == NULL || tmp == NULL || rank == NULL || o->labels == NULL)
        goto out_nomem;
    for (uint32_t k = 0; k < n_items; k++)
        order[k] = k;
    name_sort(&names, order, tmp, n_items);
    for (uint32_t k = 0; k < n_items; k++) {
        rank[order[k]] = k;
        o->labels[k] = names.text + names.start.v[order[k]];
    }
    for (size_t k = 0; k < ids.n; k++)
        ids.v[k] = rank[ids.v[k]];
    o->label_text = names.text; /* the labels point into it */
    names.text = NULL;
    rc = finish(o, &ids, &offsets, n_items);
    if (rc != SM_OK)
        goto out_nomem;
    names_free(&names);
    sm_free(order);
    sm_free(tmp);
    sm_free(rank);
    sm_free(offsets.v);
    *out = &o->pub;
    return SM_OK;

out_nomem:
    rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", name);
out_fail:
    names_free(&names);
    sm_free(order);
    sm_free(tmp);
    sm_free(rank);
    sm_free(ids.v);
    sm_free(offsets.v);
    sm_basket_data_destroy(o ? &o->pub : NULL);
    return rc;
}

static int read_csv_common(sm_csv_reader *reader, sm_basket_data **out, sm_error *err)
{
    int rc = parse_csv_reader(reader, out, err);
    sm_csv_close(reader);
    return rc;
}

int sm_basket_read_csv(const char *path, sm_basket_data **out, sm_error *err)
{
    *out = NULL;
    sm_csv_options options;
    sm_csv_options_init(&options);
    sm_csv_reader *reader;
    int rc = sm_csv_open(path, &options, &reader, err);
    if (rc != SM_OK)
        return rc;
    return read_csv_common(reader, out, err);
}

int sm_basket_parse_csv(const char *text, size_t len, const char *name, sm_basket_data **out,
                        sm_error *err)
{
    *out = NULL;
    sm_csv_options options;
    sm_csv_options_init(&options);
    sm_csv_reader *reader;
    int rc = sm_csv_open_memory(text, len, name, &options, &reader, err);
    if (rc != SM_OK)
        return rc;
    return read_csv_common(reader, out, err);
}
