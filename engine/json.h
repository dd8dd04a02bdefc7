/* SPDX-License-Identifier: MIT */
/*
 * A small strict JSON reader (RFC 8259) for the records segmint itself
 * writes (run records) and reads back: objects, arrays, strings with escapes
 * (\uXXXX and surrogate pairs to UTF-8), numbers as double, true/false/null.
 * Nesting is limited (64 levels) so hostile input cannot exhaust the stack.
 */
#ifndef SEGMINT_ENGINE_JSON_H
#define SEGMINT_ENGINE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "segmint/error.h"

typedef enum sm_json_type { SM_JSON_NULL, SM_JSON_BOOL, SM_JSON_NUMBER, SM_JSON_STRING, SM_JSON_ARRAY, SM_JSON_OBJECT } sm_json_type;

typedef struct sm_json sm_json;
struct sm_json {
    sm_json_type type;
    bool boolean;
    double number;
    char *string;      /* NUL-terminated UTF-8 (SM_JSON_STRING) */
    size_t n;          /* elements of an array / members of an object */
    sm_json *items;    /* array elements or object values */
    char **keys;       /* object member names, parallel to items */
};

/* Parses text[0..len) into *out. Errors: SM_ERR_PARSE naming the byte
 * offset (as the column) and what was expected, SM_ERR_NOMEM. */
int sm_json_parse(const char *text, size_t len, sm_json *out, sm_error *err);

void sm_json_free(sm_json *value);

/* Member `key` of an object, or NULL (also when `object` is not one). */
const sm_json *sm_json_get(const sm_json *object, const char *key);

/* Typed getters with a fallback for a missing or mistyped member. */
double sm_json_get_number(const sm_json *object, const char *key, double fallback);
const char *sm_json_get_string(const sm_json *object, const char *key, const char *fallback);

#endif
