/* SPDX-License-Identifier: MIT */
/*
 * Dense float32 matrices in and out of files: CSV (an optional header row of
 * column names, then numbers) and NumPy .npy (float32 or float64, C order,
 * 1-D or 2-D). What comes in is validated the way scikit-learn validates:
 * NaN, infinity and values beyond float32 are refused with the row and
 * column named (RELIABILITY.md B5). Rows are 64-byte aligned for the kernels.
 */
#ifndef SEGMINT_ENGINE_MATRIX_IO_H
#define SEGMINT_ENGINE_MATRIX_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/error.h"

typedef struct sm_matrix {
    float *data;         /* n x ld floats, row-major, 64-byte aligned (sm_aligned_alloc) */
    size_t n;            /* rows */
    size_t d;            /* columns */
    size_t ld;           /* floats between row starts; ld >= d, a multiple of 16 */
    char **column_names; /* d names ("x1".. when the input has none), owned */
} sm_matrix;

/* Reads a CSV or .npy file (chosen by extension: .npy, else CSV).
 * A CSV header is recognised when any field of the first row is not a
 * number. Errors: SM_ERR_IO, SM_ERR_PARSE (malformed, ragged rows),
 * SM_ERR_NUMERIC (NaN/inf/too large; path:line:column named),
 * SM_ERR_INVALID_ARG (empty matrix), SM_ERR_OVERFLOW, SM_ERR_NOMEM.
 * On failure *m is left empty. */
int sm_matrix_read(const char *path, sm_matrix *m, sm_error *err);

/* Allocates an n x d matrix with zeroed padding and generated names x1..xd. */
int sm_matrix_alloc(sm_matrix *m, size_t n, size_t d, sm_error *err);

/* Releases what *m owns and empties it. Accepts an empty matrix. */
void sm_matrix_free(sm_matrix *m);

/* Writes n x d floats (leading dimension ld) as .npy (float32) or CSV (a
 * header from column_names, or x1..xd when NULL), by the path's extension.
 * Atomic and refusing to overwrite unless force (engine/output.h). */
int sm_matrix_write(const char *path, const float *data, size_t n, size_t d, size_t ld,
                    const char *const *column_names, bool force, sm_error *err);

/* Writes one int32 label per row: .npy ('<i4', shape (n,)) or CSV (header
 * "label", then one value per line). */
int sm_labels_write(const char *path, const int32_t *labels, size_t n, bool force, sm_error *err);

/* Keeps only the columns named in `list` ("a,b,c"), in that order. `what`
 * names the option in errors ("--columns"). Errors: SM_ERR_INVALID_ARG
 * (empty or malformed list), SM_ERR_NOT_FOUND (unknown name), SM_ERR_NOMEM. */
int sm_matrix_select_columns(sm_matrix *m, const char *list, const char *what, sm_error *err);

/* flags[j] = column j is named in `list` ("all" marks every column; NULL or
 * "" none). Errors as sm_matrix_select_columns. */
int sm_matrix_column_flags(const sm_matrix *m, const char *list, const char *what, bool *flags, sm_error *err);

/* Index of the column called `name`, or -1. */
int sm_matrix_find_column(const sm_matrix *m, const char *name);

/* Parses a finite double filling the whole field (blanks around it
 * allowed), locale-free: SM_OK, or SM_ERR_PARSE (empty, not a number) /
 * SM_ERR_NUMERIC (NaN, infinite or beyond double) with `why` set to a static
 * explanation that tells NaN and infinity apart (B5). */
int sm_parse_number(const char *text, double *out, const char **why);

/* Parses a float32 the way the matrix reader does, for other readers: the
 * whole text must be a finite number within float32 range. Returns SM_OK,
 * or SM_ERR_NUMERIC / SM_ERR_PARSE with `why` set to a static explanation. */
int sm_parse_float32(const char *text, float *out, const char **why);

#endif
