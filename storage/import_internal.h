/* SPDX-License-Identifier: MIT */
/*
 * The contract between the format parsers (import_formats.c: one function per
 * input format, turning text into validated rows or rejections) and the
 * import engine (import.c: key interning, sorting with spilled runs, the
 * single write transaction). Not installed.
 */
#ifndef SEGMINT_STORAGE_IMPORT_INTERNAL_H
#define SEGMINT_STORAGE_IMPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/store.h"

typedef struct importer importer;

/* A byte string inside the current record (not NUL-terminated in general). */
typedef struct imp_text {
    const char *s; /* NULL = absent */
    size_t len;
} imp_text;

/* One validated transaction row. Keys are trimmed, non-empty and checked
 * (sm_check_key) by the parser; absent ones have s == NULL. */
typedef struct imp_row {
    imp_text customer;    /* absent: kept for baskets only */
    imp_text basket;      /* absent: the basket is (customer, time), or the row alone */
    imp_text item;        /* absent: SM_ITEM_NONE */
    imp_text description; /* may be absent */
    int64_t time;         /* UTC seconds */
    int64_t amount;       /* minor units, negative for returns */
    int32_t quantity;     /* nonzero, negative for returns */
    uint16_t flags;       /* SM_TX_* */
    uint64_t line;        /* physical line in the current file */
} imp_row;

/* Per-file context a parser reads. */
typedef struct imp_file {
    const char *path;
    uint32_t source;          /* index of the file in the store's source list */
    int scale_digits;         /* log10 of the money scale */
    int64_t now;              /* future cut-off */
} imp_file;

const sm_import_options *imp_options(const importer *im);

/* The reader's on_read hook (user = the importer): every block of the file
 * goes to the checksum, taken on the consuming side in the same order. */
int imp_add_bytes(void *importer, const char *bytes, size_t len);

/* Adds a row. Returns SM_OK, or a status that must stop the import. */
int imp_add_row(importer *im, const imp_row *row);

/* Adds a basket without customer or time (FIMI, basket-csv) from its item
 * keys; duplicates collapse. n may be 0 only if the caller counts it. */
int imp_add_basket(importer *im, uint64_t line, const imp_text *items, size_t n);

/* Rejects the current row: counted, reported to on_reject, written to the
 * rejects file. Returns SM_OK to go on, or SM_ERR_PARSE under --strict
 * (the error record then holds this rejection). */
int imp_reject(importer *im, const char *path, uint64_t line, uint32_t column, const char *field,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Counts a data row read from input (before it is added or rejected). */
void imp_count_row(importer *im);
void imp_count_blank(importer *im, uint64_t n);

/* Progress through the current file; returns SM_ERR_CANCELLED to stop. */
int imp_progress(importer *im, uint64_t bytes_done, uint64_t bytes_total);

/* The error record of the import (for parsers' fatal errors). */
sm_error *imp_error(importer *im);

/* Parses one file in `format`, calling the functions above. */
int imp_parse_file(importer *im, const imp_file *file, sm_import_format format);

#endif
