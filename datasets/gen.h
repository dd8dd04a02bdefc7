/* SPDX-License-Identifier: MIT */
/*
 * The synthetic transaction-log generator behind `segmint gen`.
 *
 * Customers belong to planted behavioural segments (champions, loyal,
 * occasional, new, lapsing). Each buys as a thinned Poisson process with a
 * seasonal rate (Nov-Dec peak, quiet Sundays), a gamma-distributed personal
 * rate, and a chance of dropping out after each purchase, which is the
 * story the BG/NBD model tells. Items follow a Zipf popularity law; planted
 * co-purchase rules add a consequent item to baskets holding their
 * antecedent; some lines are returned later as "C" invoices; a small share of
 * customers get a planted anomaly. Output streams in bounded memory and is
 * byte-identical for a seed whatever the thread count.
 */
#ifndef SEGMINT_DATASETS_GEN_H
#define SEGMINT_DATASETS_GEN_H

#include <stdint.h>
#include <stdio.h>

#include "segmint/common.h"
#include "segmint/error.h"

enum { SM_GEN_SEGMENTS = 5, SM_GEN_RULES = 24 };

typedef struct sm_gen_params {
    uint64_t n_customers;  /* >= 1 */
    uint64_t seed;
    uint32_t n_items;      /* catalogue size, >= 100; default 2000 */
    int64_t start_time;    /* UTC seconds of the first day; default 2023-01-01 */
    uint32_t days;         /* length of the log, >= 30; default 730 */
    double anomaly_rate;   /* share of customers with a planted anomaly, [0, 0.2]; default 0.005 */
    int n_threads;         /* 0 = OpenMP default */
} sm_gen_params;

typedef struct sm_gen_summary {
    uint64_t rows;                       /* transaction lines written */
    uint64_t invoices;                   /* purchase invoices (returns excluded) */
    uint64_t return_lines;               /* lines of "C" invoices */
    uint64_t anomalies;                  /* customers with a planted anomaly */
    uint64_t per_segment[SM_GEN_SEGMENTS];
} sm_gen_summary;

void sm_gen_params_init(sm_gen_params *params);
int sm_gen_params_check(const sm_gen_params *params, sm_error *err);

/* Segment names as written in the truth file ("champions", ...). */
const char *sm_gen_segment_name(int segment);

/* Writes the transaction log (CSV with header
 * invoice,customer_id,time,item,description,quantity,price), the truth file
 * (customer_id,segment,segment_name,anomaly,anomaly_kind) and the planted
 * rules (antecedent,consequent,probability; items separated by ';').
 * `truth` and `rules` may be NULL. Errors: SM_ERR_INVALID_ARG, SM_ERR_NOMEM,
 * SM_ERR_IO (a write failed), SM_ERR_CANCELLED. */
int sm_gen_write(const sm_gen_params *params, FILE *transactions, FILE *truth, FILE *rules,
                 const sm_progress *progress, sm_gen_summary *summary, sm_error *err);

#endif
