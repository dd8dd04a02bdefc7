/* SPDX-License-Identifier: MIT */
/*
 * CLV summaries for the engine: the lifetimes-style summary CSV reader and
 * the builder from a store's transaction table (calibration + holdout).
 * The kernels never see files or the store; they get the arrays made here.
 */
#include "engine/clv_summary.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/matrix_io.h"
#include "kernels/core.h"
#include "storage/csv.h"
#include "storage/fields.h"

void sm_summary_table_free(sm_summary_table *t)
{
    if (t == NULL)
        return;
    sm_free(t->ids);
    sm_free(t->id_text);
    sm_free(t->frequency);
    sm_free(t->recency);
    sm_free(t->T);
    sm_free(t->monetary);
    sm_free(t->revenue);
    sm_free(t->lines);
    sm_free(t->holdout_frequency);
    sm_free(t->customers);
    memset(t, 0, sizeof *t);
}

static void set_view(sm_summary_table *t)
{
    t->view = (sm_clv_summary){t->n, t->frequency, t->recency, t->T, t->monetary};
}

/* --- the summary CSV --------------------------------------------------------------- */

enum { COL_ID, COL_FREQUENCY, COL_RECENCY, COL_T, COL_MONETARY, N_COLS };

static const char *const column_label[N_COLS] = {"customer_id", "frequency", "recency", "T",
                                                 "monetary_value"};

/* Which summary column a header name denotes (case-insensitive, surrounding
 * blanks ignored), or -1. lifetimes' names and FHL's x, t_x, zbar both work. */
static int column_kind(const char *name)
{
    while (*name == ' ' || *name == '\t')
        name++;
    size_t len = strlen(name);
    while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
        len--;
    static const struct {
        const char *name;
        int kind;
    } names[] = {
        {"customer_id", COL_ID},     {"id", COL_ID},           {"customer", COL_ID},
        {"frequency", COL_FREQUENCY}, {"x", COL_FREQUENCY},     {"recency", COL_RECENCY},
        {"t_x", COL_RECENCY},        {"t", COL_T},              {"monetary_value", COL_MONETARY},
        {"monetary", COL_MONETARY},  {"zbar", COL_MONETARY},
    };
    for (size_t k = 0; k < SM_ARRAY_LEN(names); k++)
        if (strlen(names[k].name) == len && strncasecmp(names[k].name, name, len) == 0)
            return names[k].kind;
    return -1;
}

typedef struct grow {
    size_t n, cap;
    size_t text_len, text_cap;
} grow;

static int ensure_rows(sm_summary_table *t, grow *g, bool has_id, bool has_monetary)
{
    if (g->n < g->cap)
        return SM_OK;
    size_t cap = g->cap ? g->cap * 2 : 1024;
    double **arrays[4] = {&t->frequency, &t->recency, &t->T, &t->monetary};
    for (int k = 0; k < 4; k++) {
        if (k == 3 && !has_monetary)
            continue;
        double *bigger = sm_realloc_array(*arrays[k], cap, sizeof(double));
        if (bigger == NULL)
            return SM_ERR_NOMEM;
        *arrays[k] = bigger;
    }
    uint64_t *lines = sm_realloc_array(t->lines, cap, sizeof *lines);
    if (lines == NULL)
        return SM_ERR_NOMEM;
    t->lines = lines;
    if (has_id) {
        /* ids hold offsets into id_text while reading; pointers at the end */
        char **ids = sm_realloc_array(t->ids, cap, sizeof *ids);
        if (ids == NULL)
            return SM_ERR_NOMEM;
        t->ids = ids;
    }
    g->cap = cap;
    return SM_OK;
}

static int append_id(sm_summary_table *t, grow *g, const char *id, size_t len)
{
    size_t need;
    if (!sm_add_size(g->text_len, len + 1, &need))
        return SM_ERR_OVERFLOW;
    if (need > g->text_cap) {
        size_t cap = g->text_cap ? g->text_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *bigger = sm_realloc_array(t->id_text, cap, 1);
        if (bigger == NULL)
            return SM_ERR_NOMEM;
        t->id_text = bigger;
        g->text_cap = cap;
    }
    memcpy(t->id_text + g->text_len, id, len);
    t->id_text[g->text_len + len] = '\0';
    t->ids[g->n] = (char *)(uintptr_t)g->text_len;
    g->text_len = need;
    return SM_OK;
}

int sm_summary_read(const char *path, sm_summary_table *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    sm_csv_reader *reader = NULL;
    int rc = sm_csv_open(path, NULL, &reader, err);
    if (rc != SM_OK)
        return rc;
    sm_summary_table t;
    memset(&t, 0, sizeof t);
    grow g = {0};
    int col[N_COLS];
    for (int k = 0; k < N_COLS; k++)
        col[k] = -1;
    size_t n_fields = 0;
    bool header = true;
    sm_csv_record rec;
    while ((rc = sm_csv_next_wellformed(reader, &rec, err)) == 1) {
        if (header) {
            header = false;
            n_fields = rec.n_fields;
            for (size_t j = 0; j < rec.n_fields; j++) {
                int kind = column_kind(rec.fields[j]);
                if (kind < 0)
                    continue;
                if (col[kind] >= 0) {
                    rc = sm_error_set_at(err, SM_ERR_PARSE, path, rec.line, (uint32_t)(j + 1),
                                         rec.fields[j],
                                         "column %s appears twice (columns %d and %zu)",
                                         column_label[kind], col[kind] + 1, j + 1);
                    goto fail;
                }
                col[kind] = (int)j;
            }
            for (int kind = COL_FREQUENCY; kind <= COL_T; kind++)
                if (col[kind] < 0) {
                    rc = sm_error_set_at(err, SM_ERR_PARSE, path, rec.line, 0, column_label[kind],
                                         "the header names no %s column (expected frequency or "
                                         "x, recency or t_x, T; optional customer_id or ID, "
                                         "monetary_value or zbar)",
                                         column_label[kind]);
                    goto fail;
                }
            continue;
        }
        if ((rc = sm_csv_check_width(reader, &rec, n_fields, err)) != SM_OK)
            goto fail;
        if (ensure_rows(&t, &g, col[COL_ID] >= 0, col[COL_MONETARY] >= 0) != SM_OK) {
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s (%zu rows)", path, g.n);
            goto fail;
        }
        double *dest[N_COLS] = {NULL, t.frequency, t.recency, t.T, t.monetary};
        for (int kind = COL_FREQUENCY; kind < N_COLS; kind++) {
            if (col[kind] < 0)
                continue;
            const char *why;
            int prc = sm_parse_number(rec.fields[col[kind]], &dest[kind][g.n], &why);
            if (prc != SM_OK) {
                rc = sm_error_set_at(err, prc, path, rec.line, (uint32_t)col[kind] + 1,
                                     column_label[kind], "%s: '%.40s'", why,
                                     rec.fields[col[kind]]);
                goto fail;
            }
        }
        if (col[COL_ID] >= 0) {
            int arc = append_id(&t, &g, rec.fields[col[COL_ID]], rec.lengths[col[COL_ID]]);
            if (arc != SM_OK) {
                rc = sm_error_set(err, arc, "out of memory reading %s (%zu rows)", path, g.n);
                goto fail;
            }
        }
        t.lines[g.n] = rec.line;
        g.n++;
    }
    if (rc < 0)
        goto fail;
    if (header || g.n == 0) {
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL,
                             header ? "is empty (a header and rows are expected)"
                                    : "holds a header but no customer rows");
        goto fail;
    }
    t.n = g.n;
    if (t.ids != NULL)
        for (size_t i = 0; i < t.n; i++)
            t.ids[i] = t.id_text + (uintptr_t)t.ids[i];
    set_view(&t);
    sm_error row_err;
    rc = sm_clv_summary_check(&t.view, &row_err);
    if (rc != SM_OK) {
        /* Map the customer index to the file position of the offending field. */
        int kind = strcmp(row_err.field, "frequency") == 0 ? COL_FREQUENCY
                   : strcmp(row_err.field, "recency") == 0 ? COL_RECENCY
                   : strcmp(row_err.field, "T") == 0       ? COL_T
                                                          : COL_MONETARY;
        uint64_t line = row_err.line > 0 ? t.lines[row_err.line - 1] : 0;
        rc = sm_error_set_at(err, rc, path, line, col[kind] >= 0 ? (uint32_t)col[kind] + 1 : 0,
                             row_err.field, "%s", row_err.msg);
        goto fail;
    }
    sm_csv_close(reader);
    *out = t;
    set_view(out);
    return SM_OK;
fail:
    sm_summary_table_free(&t);
    sm_csv_close(reader);
    return rc;
}

/* --- time units ------------------------------------------------------------------- */

int sm_time_unit_parse(const char *text, sm_time_unit *out)
{
    if (text == NULL)
        return SM_ERR_INVALID_ARG;
    if (strcmp(text, "day") == 0)
        *out = SM_UNIT_DAY;
    else if (strcmp(text, "week") == 0)
        *out = SM_UNIT_WEEK;
    else if (strcmp(text, "month") == 0)
        *out = SM_UNIT_MONTH;
    else
        return SM_ERR_INVALID_ARG;
    return SM_OK;
}

double sm_time_unit_days(sm_time_unit unit)
{
    switch (unit) {
    case SM_UNIT_WEEK: return 7.0;
    case SM_UNIT_MONTH: return 365.25 / 12.0;
    default: return 1.0;
    }
}

double sm_time_unit_per_month(sm_time_unit unit)
{
    /* lifetimes' customer_lifetime_value factors */
    switch (unit) {
    case SM_UNIT_WEEK: return 4.345;
    case SM_UNIT_MONTH: return 1.0;
    default: return 30.0;
    }
}

/* --- from transactions --------------------------------------------------------------- */

static int64_t utc_day(int64_t seconds)
{
    int64_t d = seconds / 86400;
    return (seconds % 86400 != 0 && seconds < 0) ? d - 1 : d;
}

/* The rows [k, returned end) of one customer that share row k's UTC day
 * (a customer's rows are sorted by time), whether that day is a purchase
 * day (a row that is neither a return nor a cancellation) and its net
 * amount in minor units. The summary and the cost of goods both walk days
 * through this one definition, so that costs cover the rows revenue does. */
static uint64_t day_rows(const sm_tx_table *tx, uint64_t k, uint64_t hi, int64_t *day,
                         bool *purchase, int64_t *amount)
{
    const int64_t d = utc_day(tx->time[k]);
    bool any = false;
    int64_t sum = 0;
    for (; k < hi && utc_day(tx->time[k]) == d; k++) {
        sum += tx->amount[k];
        if ((tx->flags[k] & (SM_TX_RETURN | SM_TX_CANCELLED)) == 0)
            any = true;
    }
    *day = d;
    *purchase = any;
    *amount = sum;
    return k;
}

int sm_summary_from_tx(const sm_tx_table *tx, int64_t calibration_end, int64_t observation_end,
                       sm_time_unit unit, sm_summary_table *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    if (tx == NULL || (tx->n_customers > 0 && tx->customer_offsets == NULL))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "no transaction table");
    const int64_t cal_day = utc_day(calibration_end);
    const bool holdout = observation_end > calibration_end;
    const int64_t obs_day = holdout ? utc_day(observation_end) : cal_day;
    const double unit_days = sm_time_unit_days(unit);
    const double scale = tx->money_scale > 0 ? (double)tx->money_scale : 1.0;
    sm_summary_table t;
    memset(&t, 0, sizeof t);
    size_t cap = tx->n_customers > 0 ? tx->n_customers : 1;
    t.frequency = sm_alloc_array(cap, sizeof(double));
    t.recency = sm_alloc_array(cap, sizeof(double));
    t.T = sm_alloc_array(cap, sizeof(double));
    t.monetary = sm_alloc_array(cap, sizeof(double));
    t.revenue = sm_alloc_array(cap, sizeof(double));
    t.customers = sm_alloc_array(cap, sizeof(sm_customer_id));
    if (holdout)
        t.holdout_frequency = sm_alloc_array(cap, sizeof(double));
    if (t.frequency == NULL || t.recency == NULL || t.T == NULL || t.monetary == NULL ||
        t.revenue == NULL || t.customers == NULL || (holdout && t.holdout_frequency == NULL)) {
        sm_summary_table_free(&t);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu customer summaries", cap);
    }
    size_t n = 0;
    for (uint32_t c = 0; c < tx->n_customers; c++) {
        uint64_t lo = tx->customer_offsets[c], hi = tx->customer_offsets[c + 1];
        int64_t first = INT64_MIN, last = INT64_MIN;
        double repeat_days = 0.0, repeat_amount = 0.0, holdout_days = 0.0, revenue = 0.0;
        for (uint64_t k = lo; k < hi;) {
            int64_t day, day_amount;
            bool purchase;
            k = day_rows(tx, k, hi, &day, &purchase, &day_amount);
            if (!purchase)
                continue;
            if (day <= cal_day) {
                revenue += (double)day_amount / scale;
                if (first == INT64_MIN) {
                    first = day;
                } else {
                    repeat_days += 1.0;
                    repeat_amount += (double)day_amount / scale;
                }
                last = day;
            } else if (holdout && day <= obs_day && first != INT64_MIN) {
                holdout_days += 1.0;
            }
        }
        if (first == INT64_MIN || first == cal_day) {
            /* No purchase by calibration end, or age T = 0: BG/NBD has
             * nothing to learn from them (and rejects T = 0). */
            t.n_skipped++;
            continue;
        }
        t.customers[n] = c;
        t.frequency[n] = repeat_days;
        t.recency[n] = (double)(last - first) / unit_days;
        t.T[n] = (double)(cal_day - first) / unit_days;
        t.monetary[n] = repeat_days > 0.0 ? repeat_amount / repeat_days : 0.0;
        t.revenue[n] = revenue;
        if (holdout)
            t.holdout_frequency[n] = holdout_days;
        n++;
    }
    if (n == 0) {
        sm_summary_table_free(&t);
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "calibration_end",
                               "no customer made a purchase by the end of calibration");
    }
    t.n = n;
    t.holdout_length = holdout ? (double)(obs_day - cal_day) / unit_days : 0.0;
    set_view(&t);
    *out = t;
    set_view(out);
    return SM_OK;
}

/* --- per-item costs --------------------------------------------------------------------- */

void sm_item_costs_free(sm_item_costs *c)
{
    if (c == NULL)
        return;
    sm_free(c->unit_cost);
    memset(c, 0, sizeof *c);
}

/* One row of a cost file while it is matched to the store's items. */
typedef struct cost_row {
    const char *item; /* trimmed, NUL-terminated (in the row text block) */
    double cost;
    uint64_t line;
} cost_row;

static int cost_row_cmp(const void *pa, const void *pb)
{
    const cost_row *a = pa, *b = pb;
    int c = strcmp(a->item, b->item);
    /* by line within an item: the first occurrence leads its duplicates */
    return c != 0 ? c : (a->line > b->line) - (a->line < b->line);
}

static int key_ptr_cmp(const void *pa, const void *pb)
{
    return strcmp(**(char *const *const *)pa, **(char *const *const *)pb);
}

enum { CC_ITEM, CC_COST, N_COST_COLS };
static const char *const cost_column[N_COST_COLS] = {"item", "unit_cost"};

int sm_item_costs_read(const char *path, const sm_key_table *items, sm_item_costs *out,
                       sm_error *err)
{
    memset(out, 0, sizeof *out);
    if (path == NULL || items == NULL || (items->n > 0 && items->keys == NULL))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "no cost file or no item keys");
    sm_csv_reader *reader = NULL;
    int rc = sm_csv_open(path, NULL, &reader, err);
    if (rc != SM_OK)
        return rc;
    /* Rows are kept (item text in one block, offsets until the end) so that
     * they can be sorted: duplicates then sit side by side, and matching to
     * the store's sorted keys is one merge, with no hash table. */
    cost_row *rows = NULL;
    char *text = NULL, ***sorted = NULL;
    double *unit_cost = NULL;
    size_t n = 0, cap = 0, text_len = 0, text_cap = 0, n_fields = 0;
    int col[N_COST_COLS] = {-1, -1};
    bool header = true;
    sm_csv_record rec;
    while ((rc = sm_csv_next_wellformed(reader, &rec, err)) == 1) {
        if (header) {
            header = false;
            n_fields = rec.n_fields;
            for (size_t j = 0; j < rec.n_fields; j++) {
                const char *name = rec.fields[j];
                size_t len = rec.lengths[j];
                sm_trim(&name, &len);
                for (int k = 0; k < N_COST_COLS; k++) {
                    if (len != strlen(cost_column[k]) || strncasecmp(name, cost_column[k], len) != 0)
                        continue;
                    if (col[k] >= 0) {
                        rc = sm_error_set_at(err, SM_ERR_PARSE, path, rec.line, (uint32_t)j + 1,
                                             cost_column[k], "column %s appears twice (columns %d and %zu)",
                                             cost_column[k], col[k] + 1, j + 1);
                        goto out;
                    }
                    col[k] = (int)j;
                }
            }
            for (int k = 0; k < N_COST_COLS; k++)
                if (col[k] < 0) {
                    rc = sm_error_set_at(err, SM_ERR_PARSE, path, rec.line, 0, cost_column[k],
                                         "the header names no %s column (expected item,unit_cost)",
                                         cost_column[k]);
                    goto out;
                }
            continue;
        }
        if ((rc = sm_csv_check_width(reader, &rec, n_fields, err)) != SM_OK)
            goto out;
        const char *key = rec.fields[col[CC_ITEM]];
        size_t key_len = rec.lengths[col[CC_ITEM]];
        const uint32_t item_col = (uint32_t)col[CC_ITEM] + 1, cost_col = (uint32_t)col[CC_COST] + 1;
        sm_trim(&key, &key_len);
        size_t bad = 0;
        sm_key_problem kp = key_len == 0 ? SM_KEY_OK : sm_check_key(key, key_len, &bad);
        if (key_len == 0 || kp != SM_KEY_OK) {
            rc = sm_error_set_at(err, SM_ERR_PARSE, path, rec.line, item_col, "item",
                                 key_len == 0 ? "is empty"
                                 : kp == SM_KEY_TOO_LONG ? "is longer than 255 bytes"
                                 : kp == SM_KEY_CONTROL  ? "contains a control character"
                                                         : "is not valid UTF-8");
            goto out;
        }
        double cost;
        const char *why;
        int prc = sm_parse_number(rec.fields[col[CC_COST]], &cost, &why);
        if (prc != SM_OK) {
            rc = sm_error_set_at(err, prc, path, rec.line, cost_col, "unit_cost", "%s: '%.40s'", why,
                                 rec.fields[col[CC_COST]]);
            goto out;
        }
        if (cost < 0.0) {
            rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, rec.line, cost_col, "unit_cost",
                                 "unit cost %g of item '%.*s' must be >= 0", cost, (int)key_len, key);
            goto out;
        }
        if (n == cap) {
            size_t bigger_cap = cap ? 2 * cap : 256;
            cost_row *bigger = sm_realloc_array(rows, bigger_cap, sizeof *rows);
            if (bigger == NULL) {
                rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s (%zu rows)", path, n);
                goto out;
            }
            rows = bigger;
            cap = bigger_cap;
        }
        if (text_len + key_len + 1 > text_cap) {
            size_t bigger_cap = text_cap ? text_cap : 4096;
            while (bigger_cap < text_len + key_len + 1)
                bigger_cap *= 2;
            char *bigger = sm_realloc_array(text, bigger_cap, 1);
            if (bigger == NULL) {
                rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s (%zu rows)", path, n);
                goto out;
            }
            text = bigger;
            text_cap = bigger_cap;
        }
        memcpy(text + text_len, key, key_len);
        text[text_len + key_len] = '\0';
        rows[n] = (cost_row){(const char *)(uintptr_t)text_len, cost, rec.line};
        text_len += key_len + 1;
        n++;
    }
    if (rc < 0)
        goto out;
    if (header || n == 0) {
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL,
                             header ? "is empty (a header item,unit_cost and rows are expected)"
                                    : "holds a header but no item rows");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        rows[i].item = text + (uintptr_t)rows[i].item;
    qsort(rows, n, sizeof *rows, cost_row_cmp);
    /* Report the duplicate met first when reading the file: the smallest
     * line of a second occurrence. */
    size_t dup = SIZE_MAX;
    for (size_t i = 1; i < n; i++)
        if (strcmp(rows[i].item, rows[i - 1].item) == 0 && (dup == SIZE_MAX || rows[i].line < rows[dup].line))
            dup = i;
    if (dup != SIZE_MAX) {
        size_t first = dup;
        while (first > 0 && strcmp(rows[first - 1].item, rows[dup].item) == 0)
            first--;
        rc = sm_error_set_at(err, SM_ERR_PARSE, path, rows[dup].line, (uint32_t)col[CC_ITEM] + 1,
                             "item", "item '%s' appears twice (lines %llu and %llu)", rows[dup].item,
                             (unsigned long long)rows[first].line, (unsigned long long)rows[dup].line);
        goto out;
    }
    unit_cost = sm_alloc_array(items->n > 0 ? items->n : 1, sizeof *unit_cost);
    sorted = sm_alloc_array(items->n > 0 ? items->n : 1, sizeof *sorted);
    if (unit_cost == NULL || sorted == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for the costs of %u items", items->n);
        goto out;
    }
    for (uint32_t i = 0; i < items->n; i++) {
        unit_cost[i] = NAN;
        sorted[i] = &items->keys[i];
    }
    qsort(sorted, items->n, sizeof *sorted, key_ptr_cmp);
    size_t unknown = 0, s = 0;
    for (size_t r = 0; r < n; r++) {
        while (s < items->n && strcmp(*sorted[s], rows[r].item) < 0)
            s++;
        if (s < items->n && strcmp(*sorted[s], rows[r].item) == 0)
            unit_cost[sorted[s] - items->keys] = rows[r].cost;
        else
            unknown++;
    }
    out->path = path;
    out->items = items;
    out->unit_cost = unit_cost;
    out->n_rows = n;
    out->n_unknown = unknown;
    unit_cost = NULL;
    rc = SM_OK;
out:
    sm_free(unit_cost);
    sm_free(sorted);
    sm_free(rows);
    sm_free(text);
    sm_csv_close(reader);
    return rc;
}

int sm_summary_item_costs(const sm_tx_table *tx, const sm_summary_table *t,
                          int64_t calibration_end, const sm_item_costs *costs, bool missing_zero,
                          double *cost, sm_item_cost_report *report, sm_error *err)
{
    sm_item_cost_report rep;
    memset(&rep, 0, sizeof rep);
    if (report != NULL)
        *report = rep;
    if (tx == NULL || t == NULL || costs == NULL || costs->items == NULL || cost == NULL ||
        (t->n > 0 && t->customers == NULL) || (tx->n_customers > 0 && tx->customer_offsets == NULL))
        return sm_error_set(err, SM_ERR_INVALID_ARG,
                            "item costs need a transaction table and a summary built from it");
    const uint32_t n_items = costs->items->n;
    if (n_items > 0 && costs->unit_cost == NULL)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "the item cost table has no costs");
    /* which items lack a cost, to count them and name the first one */
    bool *missing = sm_calloc(n_items > 0 ? n_items : 1, sizeof *missing);
    if (missing == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %u items", n_items);
    const int64_t cal_day = utc_day(calibration_end);
    sm_item_id first_missing = SM_ITEM_NONE;
    bool any_missing = false;
    int rc = SM_OK;
    for (size_t i = 0; i < t->n; i++) {
        sm_customer_id c = t->customers[i];
        if (c >= tx->n_customers) {
            rc = sm_error_set(err, SM_ERR_INVALID_ARG, "summary customer %zu is not in the "
                              "transaction table", i + 1);
            goto out;
        }
        uint64_t lo = tx->customer_offsets[c], hi = tx->customer_offsets[c + 1];
        double sum = 0.0;
        for (uint64_t k = lo; k < hi;) {
            int64_t day, amount;
            bool purchase;
            uint64_t end = day_rows(tx, k, hi, &day, &purchase, &amount);
            if (day > cal_day)
                break; /* rows are in time order: the rest is past calibration */
            for (; purchase && k < end; k++) {
                sm_item_id item = tx->item[k];
                double unit = item < n_items ? costs->unit_cost[item] : NAN;
                if (isnan(unit)) {
                    if (item >= n_items) {
                        rep.rows_without_item++;
                    } else {
                        rep.rows_missing++;
                        rep.items_missing += !missing[item];
                        missing[item] = true;
                    }
                    if (!any_missing)
                        first_missing = item;
                    any_missing = true;
                    continue; /* costs 0 (with missing_zero; an error otherwise) */
                }
                rep.rows_costed++;
                sum += (double)tx->quantity[k] * unit;
            }
            k = end;
        }
        cost[i] = sum;
    }
    if (any_missing && !missing_zero) {
        char without[96] = "";
        if (rep.rows_without_item > 0)
            snprintf(without, sizeof without, "; %llu rows carry no item code at all",
                     (unsigned long long)rep.rows_without_item);
        if (first_missing < n_items)
            rc = sm_error_set_at(err, SM_ERR_NOT_FOUND, costs->path, 0, 0, "item",
                                 "item '%s' of the store has no unit cost in the file (%llu rows "
                                 "of %u items up to the calibration end lack one%s)",
                                 costs->items->keys[first_missing],
                                 (unsigned long long)rep.rows_missing, rep.items_missing, without);
        else
            rc = sm_error_set_at(err, SM_ERR_NOT_FOUND, costs->path, 0, 0, "item",
                                 "%llu transaction rows up to the calibration end carry no item "
                                 "code, so no unit cost applies to them (a store imported without "
                                 "an item column?)",
                                 (unsigned long long)rep.rows_without_item);
    }
out:
    sm_free(missing);
    if (report != NULL)
        *report = rep;
    return rc;
}
