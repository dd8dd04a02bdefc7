/* SPDX-License-Identifier: MIT */
/*
 * Readers for the two plain-text basket formats: FIMI .dat (one basket per
 * line, whitespace-separated non-negative integer item ids, trailing spaces,
 * LF or CRLF) and arules-style basket CSV (one basket per line, comma-separated
 * item names, ragged, RFC 4180 quoting). Both give an sm_csr whose rows are
 * sorted and distinct, plus one label per dense item id. They do not mine.
 */
#ifndef SEGMINT_STORAGE_BASKET_FILE_H
#define SEGMINT_STORAGE_BASKET_FILE_H

#include <stdint.h>

#include "segmint/common.h"
#include "segmint/error.h"

/* Baskets read from a file. Everything here is owned by the object and lives
 * until sm_basket_data_destroy. */
typedef struct sm_basket_data {
    sm_csr csr;              /* n_rows baskets (empty ones included), items dense 0..n_items-1 */
    const char *const *labels; /* n_items labels: FIMI: the id as written ("17"); CSV: the name */
    uint64_t n_empty;        /* baskets with no item (kept as empty rows, counted in n_rows) */
    uint64_t n_duplicates;   /* item occurrences dropped because the basket already had the item */
    uint64_t n_occurrences;  /* item occurrences kept (= csr.offsets[n_rows]) */
    uint64_t n_blank_fields; /* CSV only: empty item names skipped (",," or a trailing comma) */
} sm_basket_data;

/* Reads a FIMI .dat file. Dense item ids follow the numeric order of the ids in
 * the file, and labels are their decimal text, so "7 3 7" becomes the basket
 * {3, 7} with one duplicate counted. A blank line is an empty basket.
 * Errors: SM_ERR_IO (cause = errno, path set); SM_ERR_PARSE naming
 * path:line:column for a character that is not a digit or whitespace, or an id
 * above 4294967294; SM_ERR_NOMEM; SM_ERR_OVERFLOW past 2^32-1 distinct items. */
int sm_basket_read_fimi(const char *path, sm_basket_data **out, sm_error *err);

/* Reads an arules-style basket CSV (no header). Item names are kept verbatim
 * (no trimming); dense ids follow the byte order of the names, as arules sorts
 * its item labels. A blank line is an empty basket.
 * Errors: SM_ERR_IO; SM_ERR_PARSE naming path:line:column for a malformed
 * record (unbalanced quote, text after a quote, a record over 1 MiB) or an
 * item name that is not UTF-8; SM_ERR_NOMEM. */
int sm_basket_read_csv(const char *path, sm_basket_data **out, sm_error *err);

/* As the two readers, from a caller-owned buffer (`name` appears in errors). */
int sm_basket_parse_fimi(const char *text, size_t len, const char *name, sm_basket_data **out,
                         sm_error *err);
int sm_basket_parse_csv(const char *text, size_t len, const char *name, sm_basket_data **out,
                        sm_error *err);

/* Releases everything. Accepts NULL. */
void sm_basket_data_destroy(sm_basket_data *data);

#endif
