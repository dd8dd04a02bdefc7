/* SPDX-License-Identifier: MIT */
/*
 * The record of a run, stored as JSON in the runs sub-database beside its
 * assignment rows (engine/assignments.h), and the one function that stores
 * both in a single write transaction. Every command that writes per-customer
 * results to a store (`run`, and `kmeans`/`anomalies`/`clv`/`rfm` with
 * --store) goes through here, so `runs`, `export` and `diff` read them all.
 *
 * Record keys (README "Output formats" documents them for consumers):
 *   kind, segmint_version, started, finished, as_of (ISO 8601 or null),
 *   config (the effective configuration text), features [names],
 *   segments [{id, name, size, centre [scaled], centre_original [units]}],
 *   rfm_segments [names], lifecycle [names], value_tiers [names],
 *   counts {name: number}, timings {stage: seconds}, details {free-form}.
 */
#ifndef SEGMINT_ENGINE_RUN_RECORD_H
#define SEGMINT_ENGINE_RUN_RECORD_H

#include <stdint.h>

#include "engine/assignments.h"
#include "engine/json.h"
#include "segmint/error.h"
#include "segmint/store.h"

enum { SM_RUN_MAX_PAIRS = 32 };

typedef struct sm_run_pair {
    const char *name; /* static or owned by the caller while writing */
    double value;
} sm_run_pair;

typedef struct sm_run_segment {
    const char *name;
    uint64_t size;
    const double *centre;          /* n_features values in the scaled space, or NULL */
    const double *centre_original; /* n_features values in original units, or NULL */
} sm_run_segment;

/* What a command knows about its run; everything but kind may be empty. */
typedef struct sm_run_description {
    const char *kind;              /* "run", "kmeans", "anomalies", "clv", "rfm" */
    int64_t started, finished;     /* UTC seconds */
    int64_t as_of;                 /* UTC seconds; 0 = none */
    const char *config;            /* effective configuration text, or NULL */
    const char *const *features;   /* n_features names */
    uint32_t n_features;
    const sm_run_segment *segments;
    uint32_t n_segments;
    const char *const *rfm_segments;
    uint32_t n_rfm_segments;
    const char *const *lifecycle;
    uint32_t n_lifecycle;
    sm_run_pair counts[SM_RUN_MAX_PAIRS];
    uint32_t n_counts;
    sm_run_pair timings[SM_RUN_MAX_PAIRS];
    uint32_t n_timings;
    const char *details_json;      /* a JSON object written verbatim under "details", or NULL */
} sm_run_description;

/* Renders the record as JSON (a new string, *len bytes, NUL-terminated). */
int sm_run_record_render(const sm_run_description *run, char **json, size_t *len, sm_error *err);

/* Stores the record and one assignment row per customer (customers strictly
 * ascending) in one write transaction. */
int sm_run_store(sm_store *store, const sm_run_description *run, const sm_customer_id *customers,
                 const sm_assignment *rows, uint64_t n, uint64_t *run_id, sm_error *err);

/* A run read back: its header, the parsed record and name tables that
 * point into it (valid until sm_run_loaded_free). */
typedef struct sm_run_loaded {
    sm_run_info info;
    sm_json record;
    const char **segment_names;     /* n_segments */
    uint32_t n_segments;
    const char **rfm_segment_names;
    uint32_t n_rfm_segments;
    const char **lifecycle_names;
    uint32_t n_lifecycle;
} sm_run_loaded;

/* Reads run `run_id` (0 = the latest) and parses its record.
 * Errors: SM_ERR_NOT_FOUND (no such run / no runs), SM_ERR_STORAGE (record
 * not valid JSON or not a segmint record), SM_ERR_NOMEM. */
int sm_run_load(sm_store *store, uint64_t run_id, sm_run_loaded *out, sm_error *err);
void sm_run_loaded_free(sm_run_loaded *run);

#endif
