/* SPDX-License-Identifier: MIT */
/*
 * A streaming RFC 4180 reader: quoted fields with doubled quotes, embedded
 * delimiters and newlines, CRLF or LF line ends, a configurable delimiter,
 * a UTF-8 byte-order mark skipped and a UTF-16 one refused. It never loses
 * data silently: a malformed record (unbalanced quote, text after a closing
 * quote, longer than the limit) comes back flagged with its line so the
 * caller can reject it with a reason, and reading resumes at the next line.
 * Blank lines are skipped and counted. It does not interpret field values.
 */
#ifndef SEGMINT_STORAGE_CSV_H
#define SEGMINT_STORAGE_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/error.h"

typedef struct sm_csv_options {
    char delimiter;          /* field separator, default ','; '\t' for TSV */
    size_t max_record_bytes; /* longer records are flagged SM_CSV_TOO_LONG and skipped; default 1 MiB */
    bool general_scanner;    /* tests: skip the fast path for plain lines (the result is the same) */
    /* When set, called with every block read from the input, in order, before
     * any record in it is returned: read to the end, the blocks are exactly
     * the bytes parsed (sm_csv_seek then refuses). A status other than SM_OK
     * (the hook records its error) fails the read with that status. */
    int (*on_read)(void *user, const char *bytes, size_t len);
    void *on_read_user;
} sm_csv_options;

/* Fills the defaults above. */
void sm_csv_options_init(sm_csv_options *options);

typedef enum sm_csv_problem {
    SM_CSV_OK = 0,
    SM_CSV_UNBALANCED_QUOTE, /* a quoted field never closes (within the limit) */
    SM_CSV_TEXT_AFTER_QUOTE, /* "abc"x: characters between a closing quote and the delimiter */
    SM_CSV_TOO_LONG          /* record exceeds max_record_bytes */
} sm_csv_problem;

typedef struct sm_csv_record {
    size_t n_fields;       /* >= 1 */
    char **fields;         /* unescaped, NUL-terminated; valid until the next sm_csv_next */
    const size_t *lengths; /* byte lengths (fields may contain NUL bytes from the input) */
    uint64_t line;         /* physical line where the record starts, 1-based */
    uint64_t offset;       /* byte offset of the record's first byte in the input */
    uint64_t end_offset;   /* byte offset just past the record (and its line end) */
    sm_csv_problem problem; /* SM_CSV_OK, or why the record is malformed (fields then unreliable) */
    uint32_t problem_column; /* 1-based field where the problem was seen */
    bool has_nul;          /* some field holds a NUL byte from the input */
} sm_csv_record;

typedef struct sm_csv_reader sm_csv_reader;

/* Opens a file. Fails with SM_ERR_IO (cause = errno) naming the path, or
 * SM_ERR_PARSE for a UTF-16 byte-order mark. */
int sm_csv_open(const char *path, const sm_csv_options *options, sm_csv_reader **out, sm_error *err);

/* Reads from a caller-owned buffer that must outlive the reader; `name`
 * appears in messages. Used by the fuzz target and by tests. */
int sm_csv_open_memory(const void *data, size_t len, const char *name, const sm_csv_options *options,
                       sm_csv_reader **out, sm_error *err);

/* Positions the reader at a byte offset previously returned in end_offset
 * (to resume an interrupted import), with `line` as the line number there. */
int sm_csv_seek(sm_csv_reader *reader, uint64_t offset, uint64_t line, sm_error *err);

/* Reads the next record. Returns 1 when *record is filled, 0 at the end of
 * input, or a negative status (I/O error, out of memory). */
int sm_csv_next(sm_csv_reader *reader, sm_csv_record *record, sm_error *err);

/* sm_csv_next for readers of small files that take no partial input
 * (matrices, segment tables, cost lists): a malformed record is an
 * SM_ERR_PARSE error at the reader's name, line and column. */
int sm_csv_next_wellformed(sm_csv_reader *reader, sm_csv_record *record, sm_error *err);

/* SM_OK when `record` has the header's `n_fields` fields, else an
 * SM_ERR_PARSE error at the reader's name and the record's line. */
int sm_csv_check_width(const sm_csv_reader *reader, const sm_csv_record *record, size_t n_fields,
                       sm_error *err);

/* Name given at open (the path), bytes consumed so far, total size if known
 * (0 for pipes), and blank lines skipped. */
const char *sm_csv_name(const sm_csv_reader *reader);
uint64_t sm_csv_bytes_consumed(const sm_csv_reader *reader);
uint64_t sm_csv_size(const sm_csv_reader *reader);
uint64_t sm_csv_blank_lines(const sm_csv_reader *reader);

/* Short English description of a problem ("unbalanced quote"). */
const char *sm_csv_problem_text(sm_csv_problem problem);

void sm_csv_close(sm_csv_reader *reader);

/* True if bytes [s, s+len) are valid UTF-8 (no overlongs, no surrogates).
 * On failure *bad_offset receives the first invalid byte's offset. */
bool sm_utf8_valid(const char *s, size_t len, size_t *bad_offset);

#endif
