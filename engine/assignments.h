/* SPDX-License-Identifier: MIT */
/*
 * One assignment row per customer: what `segmint run` computes and what CRM
 * systems consume, as CSV, JSON Lines, or the store's assignments table.
 *
 * The table's value is a fixed 128-byte little-endian record (layout in
 * storage/SCHEMA.md, "assignments values"). Names (segment names, RFM
 * segment names) live once in the run record, not in every row. A value
 * that was not computed is stored as NaN (floats), 0 (scores) or 255 /
 * UINT32_MAX (indexes), and written as an empty CSV field or JSON null —
 * never as zero.
 */
#ifndef SEGMINT_ENGINE_ASSIGNMENTS_H
#define SEGMINT_ENGINE_ASSIGNMENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "segmint/common.h"
#include "segmint/error.h"
#include "segmint/rfm.h"

enum {
    SM_ASSIGNMENT_BYTES = 128,
    SM_CROSS_SELL_MAX = 8,        /* cross-sell items kept per customer */
    SM_INDEX_NONE = 255,          /* rfm_segment, value_tier, lifecycle, anomaly_flag not computed */
};
#define SM_SEGMENT_NONE UINT32_MAX

/* sm_value_tier (key, ordinary, small) is the public one of segmint/rfm.h. */

typedef struct sm_assignment {
    uint32_t segment;             /* k-means segment, SM_SEGMENT_NONE if not clustered */
    float distance;               /* to the segment centre, in the scaled space; NaN = none */
    uint8_t r_score, f_score, m_score; /* 1..5; 0 = none */
    uint8_t rfm_segment;          /* index into the run's RFM segment names; SM_INDEX_NONE = none */
    uint8_t value_tier;           /* sm_value_tier or SM_INDEX_NONE */
    uint8_t lifecycle;            /* index into the run's lifecycle names or SM_INDEX_NONE */
    uint8_t anomaly_flag;         /* 0, 1 or SM_INDEX_NONE */
    uint8_t n_cross_sell;         /* 0..SM_CROSS_SELL_MAX */
    double clv_historic;          /* major units; NaN = none */
    double clv_discounted;
    double clv_model;
    double p_alive;               /* [0, 1] */
    double expected_purchases;    /* next period */
    float anomaly_score;          /* (0, 1], higher = more anomalous; NaN = none */
    sm_item_id cross_sell_item[SM_CROSS_SELL_MAX];
    float cross_sell_score[SM_CROSS_SELL_MAX];
} sm_assignment;

/* A row with nothing computed yet. */
void sm_assignment_clear(sm_assignment *a);

/* The 128-byte table value, and back. Decoding checks every field's range
 * and returns SM_ERR_STORAGE for a value no writer could have produced. */
void sm_assignment_encode(const sm_assignment *a, unsigned char out[SM_ASSIGNMENT_BYTES]);
int sm_assignment_decode(const unsigned char in[SM_ASSIGNMENT_BYTES], sm_assignment *a, sm_error *err);

/* Names that turn the indexes of a row into text. Any array may be NULL
 * (then the indexes are printed as numbers). */
typedef struct sm_assignment_names {
    const char *const *customer_keys;   /* by dense customer id */
    uint32_t n_customers;
    const char *const *item_keys;       /* by dense item id */
    uint32_t n_items;
    const char *const *segment_names;   /* by segment id */
    uint32_t n_segments;
    const char *const *rfm_segment_names;
    uint32_t n_rfm_segments;
    const char *const *lifecycle_names;
    uint32_t n_lifecycle;
} sm_assignment_names;

/* The column names of CSV and the keys of JSON, in order (a contract). */
extern const char *const sm_assignment_columns[];
enum { SM_ASSIGNMENT_COLUMNS = 19 };

/* CSV (RFC 4180, header first) and JSON Lines writers. */
void sm_assignment_csv_header(FILE *out);
void sm_assignment_csv_row(FILE *out, sm_customer_id customer, const sm_assignment *a,
                           const sm_assignment_names *names);
void sm_assignment_jsonl_row(FILE *out, sm_customer_id customer, const sm_assignment *a,
                             const sm_assignment_names *names);

extern const char *const sm_value_tier_names[3];

#endif
