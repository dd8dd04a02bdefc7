/* SPDX-License-Identifier: MIT */
/*
 * The input formats: generic transaction CSV (columns from --map or detected
 * from header names), UCI Online Retail, CDNOW logs, FIMI and basket CSV.
 * Each turns records from the RFC 4180 reader into validated rows or
 * rejections with file, line, column, field and reason. Policies (returns,
 * missing customers, numbers, dates) are the README's "The store and
 * importers"; this file is where they are enforced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"
#include "storage/csv.h"
#include "storage/fields.h"
#include "storage/import_internal.h"

enum role { R_CUSTOMER, R_TIME, R_BASKET, R_ITEM, R_DESCRIPTION, R_QUANTITY, R_PRICE, R_AMOUNT, R_COUNT };

static const char *const role_names[R_COUNT] = {"customer", "time",     "basket", "item",
                                                "description", "quantity", "price", "amount"};

/* Header names per role, normalised (lower case, letters and digits only),
 * in order of preference. */
static const char *const role_aliases[R_COUNT][9] = {
    {"customer", "customerid", "customerno", "customernumber", "clientid", "client", "userid", NULL},
    {"timestamp", "invoicedate", "datetime", "date", "time", "orderdate", "transactiondate", "purchasedate", NULL},
    {"basket", "basketid", "invoice", "invoiceno", "invoiceid", "order", "orderid", "orderno", NULL},
    {"item", "itemid", "sku", "stockcode", "product", "productid", "article", NULL},
    {"description", "itemdescription", "productdescription", "productname", NULL},
    {"quantity", "qty", "units", NULL},
    {"price", "unitprice", "itemprice", NULL},
    {"amount", "lineamount", "linetotal", "total", NULL},
};

typedef struct layout {
    int col[R_COUNT];        /* 0-based field index or -1 */
    size_t n_fields;         /* header width */
    char *names[R_COUNT];    /* header name of each used column (for messages) */
} layout;

static void layout_free(layout *l)
{
    for (int r = 0; r < R_COUNT; r++)
        sm_free(l->names[r]);
}

static void normalise_name(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < cap; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            out[n++] = c;
    }
    out[n] = '\0';
}

static bool all_digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Resolves COL of --map against the header: an exact name, then a
 * case-insensitive one, then a 1-based column number. */
static int find_column(const sm_csv_record *header, const char *col, size_t col_len)
{
    for (size_t i = 0; i < header->n_fields; i++) {
        const char *h = header->fields[i];
        size_t hl = header->lengths[i];
        sm_trim(&h, &hl);
        if (hl == col_len && memcmp(h, col, col_len) == 0)
            return (int)i;
    }
    for (size_t i = 0; i < header->n_fields; i++) {
        const char *h = header->fields[i];
        size_t hl = header->lengths[i];
        sm_trim(&h, &hl);
        if (hl == col_len && strncasecmp(h, col, col_len) == 0)
            return (int)i;
    }
    if (all_digits(col, col_len) && col_len < 9) {
        long n = strtol(col, NULL, 10);
        if (n >= 1 && (size_t)n <= header->n_fields)
            return (int)(n - 1);
    }
    return -1;
}

static void header_list(const sm_csv_record *header, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < header->n_fields && used + 4 < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s\"%.*s\"", i ? ", " : "",
                                 (int)SM_MIN(header->lengths[i], (size_t)40), header->fields[i]);
}

static int build_layout(importer *im, const imp_file *file, const sm_csv_record *header, bool online_retail,
                        layout *l)
{
    sm_error *err = imp_error(im);
    const sm_import_options *o = imp_options(im);
    memset(l, 0, sizeof *l);
    for (int r = 0; r < R_COUNT; r++)
        l->col[r] = -1;
    l->n_fields = header->n_fields;
    if (header->problem != SM_CSV_OK)
        return sm_error_set_at(err, SM_ERR_PARSE, file->path, header->line, header->problem_column, NULL,
                               "header: %s", sm_csv_problem_text(header->problem));
    if (o->map != NULL && o->map[0] != '\0') {
        const char *p = o->map;
        while (*p != '\0') {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            const char *eq = memchr(p, '=', len);
            if (eq == NULL)
                return sm_error_set_at(err, SM_ERR_PARSE, file->path, 0, 0, "--map",
                                       "'%.*s' is not ROLE=COLUMN", (int)len, p);
            size_t role_len = (size_t)(eq - p);
            int role = -1;
            for (int r = 0; r < R_COUNT; r++)
                if (strlen(role_names[r]) == role_len && strncmp(role_names[r], p, role_len) == 0)
                    role = r;
            if (role < 0)
                return sm_error_set_at(err, SM_ERR_PARSE, file->path, 0, 0, "--map",
                                       "unknown role '%.*s' (roles: customer, time, basket, item, description, "
                                       "quantity, price, amount)",
                                       (int)role_len, p);
            const char *col = eq + 1;
            size_t col_len = len - role_len - 1;
            int c = find_column(header, col, col_len);
            if (c < 0) {
                char names[512];
                header_list(header, names, sizeof names);
                return sm_error_set_at(err, SM_ERR_PARSE, file->path, header->line, 0, "--map",
                                       "%s=%.*s: no such column; the header has %s", role_names[role], (int)col_len,
                                       col, names);
            }
            l->col[role] = c;
            p += len;
            if (*p == ',')
                p++;
        }
    } else {
        bool taken[4096] = {false};
        for (int r = 0; r < R_COUNT; r++) {
            for (int a = 0; role_aliases[r][a] != NULL && l->col[r] < 0; a++) {
                for (size_t i = 0; i < header->n_fields && i < SM_ARRAY_LEN(taken); i++) {
                    char norm[64];
                    normalise_name(header->fields[i], header->lengths[i], norm, sizeof norm);
                    if (!taken[i] && strcmp(norm, role_aliases[r][a]) == 0) {
                        l->col[r] = (int)i;
                        taken[i] = true;
                        break;
                    }
                }
            }
        }
    }
    const char *missing = NULL;
    if (l->col[R_TIME] < 0)
        missing = "time";
    else if (l->col[R_PRICE] < 0 && l->col[R_AMOUNT] < 0)
        missing = "price or amount";
    else if (online_retail && l->col[R_CUSTOMER] < 0)
        missing = "customer (CustomerID)";
    else if (online_retail && l->col[R_BASKET] < 0)
        missing = "basket (InvoiceNo)";
    else if (online_retail && l->col[R_ITEM] < 0)
        missing = "item (StockCode)";
    else if (online_retail && l->col[R_QUANTITY] < 0)
        missing = "quantity (Quantity)";
    if (missing != NULL) {
        char names[512];
        header_list(header, names, sizeof names);
        return sm_error_set_at(err, SM_ERR_PARSE, file->path, header->line, 0, NULL,
                               "no %s column: the header has %s; name the columns with --map "
                               "customer=COL,time=COL,basket=COL,item=COL,quantity=COL,price=COL",
                               missing, names);
    }
    for (int r = 0; r < R_COUNT; r++) {
        if (l->col[r] < 0)
            continue;
        for (int q = 0; q < r; q++)
            if (l->col[q] == l->col[r])
                return sm_error_set_at(err, SM_ERR_PARSE, file->path, header->line, 0, "--map",
                                       "column %d is mapped to both %s and %s", l->col[r] + 1, role_names[q],
                                       role_names[r]);
        const char *h = header->fields[l->col[r]];
        size_t hl = header->lengths[l->col[r]];
        sm_trim(&h, &hl);
        l->names[r] = sm_malloc(hl + 1);
        if (l->names[r] == NULL)
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory");
        memcpy(l->names[r], h, hl);
        l->names[r][hl] = '\0';
    }
    return SM_OK;
}

/* --- shared validation ------------------------------------------------------------ */

static const char *key_problem_text(sm_key_problem p)
{
    switch (p) {
    case SM_KEY_TOO_LONG: return "is longer than 255 bytes";
    case SM_KEY_CONTROL: return "contains a control character";
    case SM_KEY_BAD_UTF8: return "is not valid UTF-8 (convert the file, e.g. iconv -f LATIN1 -t UTF-8)";
    case SM_KEY_OK: break;
    }
    return "is invalid";
}

/* Trims and checks a key field; an empty one becomes absent. Returns SM_OK,
 * 1 when the row was rejected, or a fatal status. */
static int take_key(importer *im, const imp_file *file, uint64_t line, uint32_t column, const char *field,
                    const char *s, size_t len, bool numeric_id, imp_text *out)
{
    sm_trim(&s, &len);
    if (numeric_id)
        sm_canonical_numeric_id(&s, &len);
    out->s = NULL;
    out->len = 0;
    if (len == 0)
        return SM_OK;
    size_t offset = 0;
    sm_key_problem p = sm_check_key(s, len, &offset);
    if (p != SM_KEY_OK) {
        int rc = imp_reject(im, file->path, line, column, field, "%s (at byte %zu)", key_problem_text(p), offset + 1);
        return rc == SM_OK ? 1 : rc;
    }
    out->s = s;
    out->len = len;
    return SM_OK;
}

/* `syntax`, when not NULL, replaces the generic "is not a number" text. */
static int reject_field(importer *im, const imp_file *file, uint64_t line, uint32_t column, const char *field,
                        const char *value, size_t len, sm_field_status st, const char *syntax)
{
    const char *v = value;
    size_t vl = len;
    sm_trim(&v, &vl);
    int rc;
    if (st == SM_FIELD_EMPTY)
        rc = imp_reject(im, file->path, line, column, field, "is empty");
    else
        rc = imp_reject(im, file->path, line, column, field, "\"%.*s\" %s", (int)SM_MIN(vl, (size_t)60), v,
                        st == SM_FIELD_SYNTAX && syntax != NULL ? syntax : sm_field_status_text(st));
    return rc == SM_OK ? 1 : rc;
}

/* Future-date policy; returns SM_OK (flags may gain SM_TX_FUTURE), 1 when
 * rejected, or a fatal status. */
static int check_future(importer *im, const imp_file *file, uint64_t line, uint32_t column, const char *field,
                        int64_t t, uint16_t *flags)
{
    if (t <= file->now)
        return SM_OK;
    if (imp_options(im)->future == SM_FUTURE_KEEP) {
        *flags |= SM_TX_FUTURE;
        return SM_OK;
    }
    char when[32], now[32];
    sm_format_time_iso(t, when);
    sm_format_time_iso(file->now, now);
    int rc = imp_reject(im, file->path, line, column, field,
                        "%s is after the import's reference time %s (a future date; --future keep keeps such rows, "
                        "--now sets the reference)",
                        when, now);
    return rc == SM_OK ? 1 : rc;
}

/* --- csv and online-retail ------------------------------------------------------------ */

static sm_field_status parse_time_field(const sm_import_options *o, bool online_retail, const char *s, size_t len,
                                        int64_t *t)
{
    if (o->time_format != NULL && o->time_format[0] != '\0')
        return sm_parse_time_strptime(s, o->time_format, t);
    if (online_retail) {
        sm_field_status st = sm_parse_time_iso(s, len, t);
        if (st == SM_FIELD_SYNTAX)
            st = sm_parse_time_mdy(s, len, t);
        return st;
    }
    return sm_parse_time_auto(s, len, t);
}

static int csv_row(importer *im, const imp_file *file, const layout *l, const sm_csv_record *rec,
                   bool online_retail)
{
    const sm_import_options *o = imp_options(im);
    uint64_t line = rec->line;
    if (rec->problem != SM_CSV_OK) {
        int rc = imp_reject(im, file->path, line, rec->problem_column, NULL, "%s",
                            sm_csv_problem_text(rec->problem));
        return rc;
    }
    if (rec->n_fields != l->n_fields) {
        int rc = imp_reject(im, file->path, line, (uint32_t)SM_MIN(rec->n_fields, l->n_fields) + 1, NULL,
                            "the row has %zu fields, the header has %zu", rec->n_fields, l->n_fields);
        return rc;
    }
#define FIELD(r) rec->fields[l->col[r]], rec->lengths[l->col[r]]
#define COLUMN(r) ((uint32_t)l->col[r] + 1)
    imp_row row;
    memset(&row, 0, sizeof row);
    row.line = line;
    int rc;
    for (int r = 0; r < R_COUNT && rec->has_nul; r++) {
        if (l->col[r] < 0)
            continue;
        const char *s = rec->fields[l->col[r]];
        if (memchr(s, '\0', rec->lengths[l->col[r]]) != NULL)
            return imp_reject(im, file->path, line, COLUMN(r), l->names[r], "contains a NUL byte");
    }
    if (l->col[R_CUSTOMER] >= 0) {
        rc = take_key(im, file, line, COLUMN(R_CUSTOMER), l->names[R_CUSTOMER], FIELD(R_CUSTOMER), online_retail,
                      &row.customer);
        if (rc != SM_OK)
            return rc > 0 ? SM_OK : rc;
    }
    if (l->col[R_BASKET] >= 0) {
        rc = take_key(im, file, line, COLUMN(R_BASKET), l->names[R_BASKET], FIELD(R_BASKET), false, &row.basket);
        if (rc != SM_OK)
            return rc > 0 ? SM_OK : rc;
    }
    if (l->col[R_ITEM] >= 0) {
        rc = take_key(im, file, line, COLUMN(R_ITEM), l->names[R_ITEM], FIELD(R_ITEM), false, &row.item);
        if (rc != SM_OK)
            return rc > 0 ? SM_OK : rc;
        if (row.item.s == NULL)
            return imp_reject(im, file->path, line, COLUMN(R_ITEM), l->names[R_ITEM], "is empty");
    }
    if (l->col[R_DESCRIPTION] >= 0) {
        const char *s = rec->fields[l->col[R_DESCRIPTION]];
        size_t len = rec->lengths[l->col[R_DESCRIPTION]];
        sm_trim(&s, &len);
        size_t bad;
        if (!sm_utf8_valid(s, len, &bad))
            return imp_reject(im, file->path, line, COLUMN(R_DESCRIPTION), l->names[R_DESCRIPTION],
                              "is not valid UTF-8 (byte %zu); convert the file, e.g. iconv -f LATIN1 -t UTF-8",
                              bad + 1);
        if (len > 0) {
            row.description.s = s;
            row.description.len = len;
        }
    }
    sm_field_status st = parse_time_field(o, online_retail, FIELD(R_TIME), &row.time);
    if (st != SM_FIELD_OK) {
        rc = reject_field(im, file, line, COLUMN(R_TIME), l->names[R_TIME], FIELD(R_TIME), st,
                          o->time_format ? "does not match --time-format"
                                         : (online_retail ? "is not a date (YYYY-MM-DD HH:MM:SS or M/D/YYYY H:MM)"
                                                          : "is not a date (ISO 8601 or epoch seconds; see --time-format)"));
        return rc > 0 ? SM_OK : rc;
    }
    rc = check_future(im, file, line, COLUMN(R_TIME), l->names[R_TIME], row.time, &row.flags);
    if (rc != SM_OK)
        return rc > 0 ? SM_OK : rc;

    int32_t quantity = 1;
    if (l->col[R_QUANTITY] >= 0) {
        st = sm_parse_quantity(FIELD(R_QUANTITY), &quantity);
        if (st != SM_FIELD_OK) {
            rc = reject_field(im, file, line, COLUMN(R_QUANTITY), l->names[R_QUANTITY], FIELD(R_QUANTITY), st, NULL);
            return rc > 0 ? SM_OK : rc;
        }
        if (quantity == 0)
            return imp_reject(im, file->path, line, COLUMN(R_QUANTITY), l->names[R_QUANTITY],
                              "is 0: neither a purchase nor a return");
    }
    int64_t amount;
    sm_decimal d;
    if (l->col[R_AMOUNT] >= 0) {
        st = sm_parse_decimal(FIELD(R_AMOUNT), &d);
        if (st == SM_FIELD_OK)
            st = sm_decimal_to_minor(d, 1, file->scale_digits, &amount);
        if (st != SM_FIELD_OK) {
            rc = reject_field(im, file, line, COLUMN(R_AMOUNT), l->names[R_AMOUNT], FIELD(R_AMOUNT), st, NULL);
            return rc > 0 ? SM_OK : rc;
        }
    } else {
        st = sm_parse_decimal(FIELD(R_PRICE), &d);
        if (st != SM_FIELD_OK) {
            rc = reject_field(im, file, line, COLUMN(R_PRICE), l->names[R_PRICE], FIELD(R_PRICE), st, NULL);
            return rc > 0 ? SM_OK : rc;
        }
        if (d.mantissa < 0) {
            const char *v = rec->fields[l->col[R_PRICE]];
            size_t vl = rec->lengths[l->col[R_PRICE]];
            sm_trim(&v, &vl);
            return imp_reject(im, file->path, line, COLUMN(R_PRICE), l->names[R_PRICE],
                              "\"%.*s\" is a negative unit price (an accounting adjustment, not a sale or return)",
                              (int)SM_MIN(vl, (size_t)40), v);
        }
        st = sm_decimal_to_minor(d, quantity < 0 ? -(int64_t)quantity : quantity, file->scale_digits, &amount);
        if (st != SM_FIELD_OK) {
            rc = reject_field(im, file, line, COLUMN(R_PRICE), l->names[R_PRICE], FIELD(R_PRICE), st, NULL);
            return rc > 0 ? SM_OK : rc;
        }
    }
    /* Returns: negative quantity or amount, or (Online Retail) an invoice
     * starting with C. Both numbers are then stored negative. */
    bool is_return = quantity < 0 || amount < 0;
    if (online_retail && row.basket.s != NULL && (row.basket.s[0] == 'C' || row.basket.s[0] == 'c')) {
        row.flags |= SM_TX_CANCELLED;
        is_return = true;
    }
    if (is_return) {
        row.flags |= SM_TX_RETURN;
        quantity = quantity < 0 ? quantity : -quantity;
        amount = amount < 0 ? amount : -amount;
    }
    row.quantity = quantity;
    row.amount = amount;
    return imp_add_row(im, &row);
#undef FIELD
#undef COLUMN
}

static int open_reader(importer *im, const imp_file *file, char delimiter, sm_csv_reader **reader)
{
    sm_csv_options options;
    sm_csv_options_init(&options);
    options.delimiter = delimiter;
    options.on_read = imp_add_bytes;
    options.on_read_user = im;
    return sm_csv_open(file->path, &options, reader, imp_error(im));
}

enum { PROGRESS_EVERY = 1 << 14 };

static int parse_transactions_csv(importer *im, const imp_file *file, bool online_retail)
{
    const sm_import_options *o = imp_options(im);
    sm_csv_reader *reader;
    int rc = open_reader(im, file, o->delimiter ? o->delimiter : ',', &reader);
    if (rc != SM_OK)
        return rc;
    sm_csv_record rec;
    layout l;
    memset(&l, 0, sizeof l);
    bool have_header = false;
    uint64_t count = 0;
    int got;
    while ((got = sm_csv_next(reader, &rec, imp_error(im))) == 1) {
        if (!have_header) {
            rc = build_layout(im, file, &rec, online_retail, &l);
            have_header = true;
            if (rc != SM_OK)
                break;
            continue;
        }
        imp_count_row(im);
        rc = csv_row(im, file, &l, &rec, online_retail);
        if (rc != SM_OK)
            break;
        if (++count % PROGRESS_EVERY == 0) {
            rc = imp_progress(im, sm_csv_bytes_consumed(reader), sm_csv_size(reader));
            if (rc != SM_OK)
                break;
        }
    }
    if (got < 0)
        rc = got;
    if (rc == SM_OK && !have_header)
        rc = sm_error_set_at(imp_error(im), SM_ERR_PARSE, file->path, 1, 0, NULL,
                             "the file is empty: a header line is expected");
    if (rc == SM_OK)
        imp_count_blank(im, sm_csv_blank_lines(reader));
    layout_free(&l);
    sm_csv_close(reader);
    return rc;
}

/* --- whitespace-separated formats ------------------------------------------------------ */

enum { MAX_TOKENS = 65536 };

/* Splits a record read with delimiter ' ' into non-empty tokens, also on tabs. */
static size_t tokens_of(const sm_csv_record *rec, imp_text *tokens, size_t cap, bool *overflow)
{
    size_t n = 0;
    *overflow = false;
    for (size_t f = 0; f < rec->n_fields; f++) {
        const char *s = rec->fields[f];
        size_t len = rec->lengths[f], i = 0;
        while (i < len) {
            while (i < len && (s[i] == '\t' || s[i] == '\r' || s[i] == ' '))
                i++;
            size_t start = i;
            while (i < len && s[i] != '\t' && s[i] != '\r' && s[i] != ' ')
                i++;
            if (i > start) {
                if (n == cap) {
                    *overflow = true;
                    return n;
                }
                tokens[n].s = s + start;
                tokens[n].len = i - start;
                n++;
            }
        }
    }
    return n;
}

static int cdnow_row(importer *im, const imp_file *file, const sm_csv_record *rec, const imp_text *tok, size_t n)
{
    const sm_import_options *o = imp_options(im);
    uint64_t line = rec->line;
    if (n != 4 && n != 5)
        return imp_reject(im, file->path, line, (uint32_t)SM_MIN(n, (size_t)5) + 1, NULL,
                          "expected 4 columns (customer date quantity dollars) or 5 (master_id sample_id date "
                          "quantity dollars), got %zu",
                          n);
    size_t base = n - 4; /* the sample's second id column is its customer key */
    imp_row row;
    memset(&row, 0, sizeof row);
    row.line = line;
    static const char *const names[5] = {"customer_id", "date", "number_of_cds", "dollar_value", NULL};
    for (size_t i = 0; i < n; i++)
        if (memchr(tok[i].s, '\0', tok[i].len) != NULL)
            return imp_reject(im, file->path, line, (uint32_t)i + 1, NULL, "contains a NUL byte");
    int rc = take_key(im, file, line, (uint32_t)base + 1, names[0], tok[base].s, tok[base].len, true, &row.customer);
    if (rc != SM_OK)
        return rc > 0 ? SM_OK : rc;
    sm_field_status st;
    if (o->time_format != NULL && o->time_format[0] != '\0') {
        char buf[64];
        size_t len = SM_MIN(tok[base + 1].len, sizeof buf - 1);
        memcpy(buf, tok[base + 1].s, len);
        buf[len] = '\0';
        st = tok[base + 1].len < sizeof buf ? sm_parse_time_strptime(buf, o->time_format, &row.time) : SM_FIELD_SYNTAX;
    } else {
        st = sm_parse_time_yyyymmdd(tok[base + 1].s, tok[base + 1].len, &row.time);
    }
    if (st != SM_FIELD_OK) {
        rc = reject_field(im, file, line, (uint32_t)base + 2, names[1], tok[base + 1].s, tok[base + 1].len, st,
                          o->time_format ? "does not match --time-format" : "is not a date (YYYYMMDD)");
        return rc > 0 ? SM_OK : rc;
    }
    rc = check_future(im, file, line, (uint32_t)base + 2, names[1], row.time, &row.flags);
    if (rc != SM_OK)
        return rc > 0 ? SM_OK : rc;
    int32_t quantity;
    st = sm_parse_quantity(tok[base + 2].s, tok[base + 2].len, &quantity);
    if (st != SM_FIELD_OK) {
        rc = reject_field(im, file, line, (uint32_t)base + 3, names[2], tok[base + 2].s, tok[base + 2].len, st, NULL);
        return rc > 0 ? SM_OK : rc;
    }
    if (quantity == 0)
        return imp_reject(im, file->path, line, (uint32_t)base + 3, names[2], "is 0: neither a purchase nor a return");
    sm_decimal d;
    int64_t amount;
    st = sm_parse_decimal(tok[base + 3].s, tok[base + 3].len, &d);
    if (st == SM_FIELD_OK)
        st = sm_decimal_to_minor(d, 1, file->scale_digits, &amount);
    if (st != SM_FIELD_OK) {
        rc = reject_field(im, file, line, (uint32_t)base + 4, names[3], tok[base + 3].s, tok[base + 3].len, st, NULL);
        return rc > 0 ? SM_OK : rc;
    }
    if (quantity < 0 || amount < 0) {
        row.flags |= SM_TX_RETURN;
        quantity = quantity < 0 ? quantity : -quantity;
        amount = amount < 0 ? amount : -amount;
    }
    row.quantity = quantity;
    row.amount = amount;
    return imp_add_row(im, &row);
}

static bool looks_numeric(const imp_text *t)
{
    return t->len > 0 && t->s[0] >= '0' && t->s[0] <= '9';
}

static int parse_tokens(importer *im, const imp_file *file, sm_import_format format)
{
    sm_csv_reader *reader;
    char delimiter = format == SM_FORMAT_BASKET_CSV ? (imp_options(im)->delimiter ? imp_options(im)->delimiter : ',')
                                                    : ' ';
    int rc = open_reader(im, file, delimiter, &reader);
    if (rc != SM_OK)
        return rc;
    imp_text *tokens = sm_alloc_array(MAX_TOKENS, sizeof *tokens);
    if (tokens == NULL) {
        sm_csv_close(reader);
        return sm_error_set(imp_error(im), SM_ERR_NOMEM, "out of memory");
    }
    sm_csv_record rec;
    uint64_t count = 0, empty = 0;
    int got;
    bool first = true;
    while ((got = sm_csv_next(reader, &rec, imp_error(im))) == 1) {
        size_t n;
        bool overflow = false;
        if (rec.problem != SM_CSV_OK) {
            imp_count_row(im);
            rc = imp_reject(im, file->path, rec.line, rec.problem_column, NULL, "%s", sm_csv_problem_text(rec.problem));
            first = false;
            if (rc != SM_OK)
                break;
            continue;
        }
        if (format == SM_FORMAT_BASKET_CSV) {
            n = 0;
            for (size_t f = 0; f < rec.n_fields; f++) {
                const char *s = rec.fields[f];
                size_t len = rec.lengths[f];
                sm_trim(&s, &len);
                if (len == 0)
                    continue;
                if (n == MAX_TOKENS) {
                    overflow = true;
                    break;
                }
                tokens[n].s = s;
                tokens[n].len = len;
                n++;
            }
        } else {
            n = tokens_of(&rec, tokens, MAX_TOKENS, &overflow);
        }
        if (n == 0 && !overflow) {
            empty++; /* a line of blanks or delimiters: an empty basket, counted */
            continue;
        }
        if (format == SM_FORMAT_CDNOW && first && !looks_numeric(&tokens[0])) {
            first = false; /* the header line lifetimes added to the master file */
            continue;
        }
        first = false;
        imp_count_row(im);
        if (overflow) {
            rc = imp_reject(im, file->path, rec.line, MAX_TOKENS + 1, NULL, "more than %d items on one line",
                            MAX_TOKENS);
        } else if (format == SM_FORMAT_CDNOW) {
            rc = cdnow_row(im, file, &rec, tokens, n);
        } else {
            bool bad = false;
            for (size_t i = 0; i < n && !bad; i++) {
                imp_text key;
                rc = take_key(im, file, rec.line, (uint32_t)i + 1, "item", tokens[i].s, tokens[i].len, false, &key);
                if (rc != SM_OK)
                    bad = true;
                else if (memchr(tokens[i].s, '\0', tokens[i].len) != NULL) {
                    rc = imp_reject(im, file->path, rec.line, (uint32_t)i + 1, "item", "contains a NUL byte");
                    bad = true;
                    if (rc == SM_OK)
                        rc = 1;
                }
            }
            if (bad)
                rc = rc > 0 ? SM_OK : rc;
            else
                rc = imp_add_basket(im, rec.line, tokens, n);
        }
        if (rc != SM_OK)
            break;
        if (++count % PROGRESS_EVERY == 0) {
            rc = imp_progress(im, sm_csv_bytes_consumed(reader), sm_csv_size(reader));
            if (rc != SM_OK)
                break;
        }
    }
    if (got < 0)
        rc = got;
    if (rc == SM_OK)
        imp_count_blank(im, sm_csv_blank_lines(reader) + empty);
    sm_free(tokens);
    sm_csv_close(reader);
    return rc;
}

int imp_parse_file(importer *im, const imp_file *file, sm_import_format format)
{
    switch (format) {
    case SM_FORMAT_CSV: return parse_transactions_csv(im, file, false);
    case SM_FORMAT_ONLINE_RETAIL: return parse_transactions_csv(im, file, true);
    case SM_FORMAT_CDNOW:
    case SM_FORMAT_FIMI:
    case SM_FORMAT_BASKET_CSV: return parse_tokens(im, file, format);
    }
    return sm_error_set(imp_error(im), SM_ERR_INVALID_ARG, "unknown import format %d", (int)format);
}
