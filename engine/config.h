/* SPDX-License-Identifier: MIT */
/*
 * Strict key = value configuration, TOML-like: `[section]` headers prefix
 * the keys that follow ("[kmeans]" then "k = 8" sets kmeans.k), `#` starts a
 * comment, strings may be bare or "double-quoted", booleans are true/false.
 * A table of sm_config_key descriptors says which keys exist, their types,
 * ranges and help; anything else is an error naming the file, line and key.
 * The same table prints the effective configuration back in the same
 * syntax, so a printed configuration is itself a valid config file.
 */
#ifndef SEGMINT_ENGINE_CONFIG_H
#define SEGMINT_ENGINE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "segmint/error.h"

enum { SM_CONFIG_STRING_MAX = 512 };

typedef enum sm_config_type {
    SM_CONFIG_UINT,        /* uint64_t */
    SM_CONFIG_UINT_OR_AUTO,/* uint64_t; "auto" stores 0 */
    SM_CONFIG_DOUBLE,      /* double */
    SM_CONFIG_BOOL,        /* bool */
    SM_CONFIG_STRING,      /* char[SM_CONFIG_STRING_MAX]; "" = unset */
    SM_CONFIG_CHOICE,      /* int: index into choices */
    SM_CONFIG_DATE         /* int64_t UTC seconds; 0 = unset; ISO 8601 (storage/fields.h sm_parse_time_iso) */
} sm_config_type;

typedef struct sm_config_key {
    const char *name;             /* "kmeans.k" */
    sm_config_type type;
    size_t offset;                /* of the field in the configuration struct */
    double min, max;              /* inclusive range for numbers */
    const char *const *choices;   /* SM_CONFIG_CHOICE: NULL-terminated names */
    const char *help;             /* one line, printed as a comment */
} sm_config_key;

/* Parses a config file into `config`, which holds the defaults beforehand.
 * Errors: SM_ERR_IO (unreadable), SM_ERR_PARSE (path:line: what is wrong:
 * unknown key, duplicate key, bad value, malformed line). */
int sm_config_parse_file(const char *path, const sm_config_key *keys, size_t n_keys, void *config,
                         sm_error *err);

/* Sets one key from text, as the command line does (`origin` names where it
 * came from in errors, e.g. "--set" or a file; line 0 if none). */
int sm_config_set(const sm_config_key *keys, size_t n_keys, void *config, const char *name, const char *value,
                  const char *origin, uint64_t line, sm_error *err);

/* Writes the configuration in the file syntax, grouped by section, with
 * each key's help as a comment. */
void sm_config_print(FILE *out, const sm_config_key *keys, size_t n_keys, const void *config);

#endif
