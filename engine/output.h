/* SPDX-License-Identifier: MIT */
/*
 * Output files that are never half-written and never overwrite by surprise,
 * and the field writers that make CSV and JSON safe for the CRM systems that
 * consume them (RELIABILITY.md S1, S5).
 *
 * A file is written unnamed (O_TMPFILE) in the target's directory, synced,
 * and linked under its name on commit, so failure, cancellation or a kill
 * leaves nothing, and never a truncated `name`. Two cases leave a stray
 * `.name.tmp.XXXXXX` behind a kill: a file system without O_TMPFILE (or no
 * /proc), where a named temporary sibling is renamed into place instead, and
 * `force` over an existing file, killed between linking that sibling and
 * renaming it over the target. An existing target is refused unless `force`;
 * a symbolic link as the target is always refused. If the environment sets
 * SEGMINT_OUTPUT_ROOT, every output must resolve inside that directory.
 */
#ifndef SEGMINT_ENGINE_OUTPUT_H
#define SEGMINT_ENGINE_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "segmint/error.h"

typedef struct sm_output sm_output;

/* Opens `path` for writing ("-" = standard output, written directly).
 * Errors: SM_ERR_EXISTS (target exists and !force), SM_ERR_INVALID_ARG
 * (symlink target, outside SEGMINT_OUTPUT_ROOT, a directory), SM_ERR_IO. */
int sm_output_open(const char *path, bool force, sm_output **out, sm_error *err);

/* The stream to write to; valid until commit or abort. */
FILE *sm_output_stream(sm_output *output);

/* Flushes, syncs, gives the file its name (atomically replacing the target
 * with force), syncs the directory, then frees the handle (also on
 * failure). Errors: SM_ERR_IO naming the path (disk full, I/O error),
 * SM_ERR_EXISTS if the target appeared meanwhile and !force. */
int sm_output_commit(sm_output *output, sm_error *err);

/* Discards what was written and frees the handle. Accepts NULL. */
void sm_output_abort(sm_output *output);

/* Lower-case extension of path without the dot ("csv", "jsonl", "npy"),
 * or "" if none. Points into path. */
const char *sm_path_extension(const char *path);

/* --- field writers -------------------------------------------------------------- */

/* A text field of a CSV row: quoted when it holds the delimiter, a quote,
 * CR or LF (RFC 4180), and prefixed with a single quote when a spreadsheet
 * would read it as a formula (starts with = + - @ TAB or CR and is not a plain
 * number). */
void sm_csv_put_text(FILE *out, const char *text, char delimiter);

/* A JSON string literal with quotes; control characters escaped and invalid
 * UTF-8 bytes replaced by U+FFFD so the output is always valid JSON. */
void sm_json_put_string(FILE *out, const char *text);

/* Numbers that read back exactly: the shortest of %.15g..%.17g (doubles) or
 * %.6g..%.9g (floats) that round-trips.
 * NaN/inf are written as an empty CSV field or JSON null by these helpers. */
void sm_csv_put_double(FILE *out, double value);
void sm_csv_put_float(FILE *out, float value);
void sm_json_put_double(FILE *out, double value);
void sm_json_put_float(FILE *out, float value);

#endif
