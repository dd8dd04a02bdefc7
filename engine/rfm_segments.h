/* SPDX-License-Identifier: MIT */
/*
 * RFM segment tables as files, so a user can replace the default named
 * segments (`segmint rfm --segments FILE`). The format is CSV:
 *
 *   # comment lines start with '#'
 *   segment,r_min,r_max,f_min,f_max,m_min,m_max
 *   Champions,5,5,4,5,1,5
 *   ...
 *
 * Columns may come in any order; scores are integers 1..5, min <= max; rules
 * are tried in file order and the first match wins; customers no rule
 * matches are "Other". `segmint rfm --print-segments` writes the default.
 */
#ifndef SEGMINT_ENGINE_RFM_SEGMENTS_H
#define SEGMINT_ENGINE_RFM_SEGMENTS_H

#include <stdio.h>

#include "segmint/error.h"
#include "segmint/rfm.h"

/* A table read from a file; `table.rules` points into `rules`. */
typedef struct sm_rfm_segment_file {
    sm_rfm_segment_table table;
    sm_rfm_segment_rule *rules;
} sm_rfm_segment_file;

/* Reads and validates a segment file. Errors name path:line:column and the
 * column: SM_ERR_IO, SM_ERR_PARSE (malformed CSV, missing/duplicate column,
 * not an integer), SM_ERR_INVALID_ARG (score outside 1..5, min > max, empty
 * or too long name, no rules), SM_ERR_NOMEM. */
int sm_rfm_segments_read(const char *path, sm_rfm_segment_file *out, sm_error *err);

/* Releases a table read by sm_rfm_segments_read and zeroes it. Accepts NULL. */
void sm_rfm_segments_free(sm_rfm_segment_file *file);

/* Writes `table` in the file format above (with a comment header), names
 * quoted as CSV needs. */
void sm_rfm_segments_write(FILE *out, const sm_rfm_segment_table *table);

#endif /* SEGMINT_ENGINE_RFM_SEGMENTS_H */
