/* SPDX-License-Identifier: MIT */
/*
 * The segmentation run: one pass over what a store holds to one assignment
 * row per customer (engine/assignments.h). Stages, each timed:
 *
 *   load       transactions and baskets, once each
 *   features   per-customer statistics and the feature matrix
 *   kmeans     scaling, k (given, or swept by silhouette), labels, distances,
 *              segment profiles and names
 *   clv        BG/NBD + Gamma-Gamma (P(alive), expected purchases, model
 *              CLV), historic and discounted CLV
 *   rfm        RFM scores and segments, value tiers (by model CLV when
 *              available), lifecycle stages (with P(alive))
 *   anomaly    Isolation Forest on the features, flagged by contamination
 *   baskets    frequent itemsets, rules, top cross-sell items per customer
 *
 * A stage that cannot run on the data (no dated repeat buyers for BG/NBD,
 * no rules above the thresholds) leaves its columns empty and says why in
 * the result's notes; it never writes zeros.
 */
#ifndef SEGMINT_ENGINE_SEGMENTATION_H
#define SEGMINT_ENGINE_SEGMENTATION_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/assignments.h"
#include "engine/config.h"
#include "engine/features.h"
#include "engine/kmeans_sweep.h"
#include "engine/run_record.h"
#include "segmint/clv.h"
#include "segmint/store.h"

/* Every parameter of a run (README "segmint run" lists them with defaults). */
typedef struct sm_run_config {
    int64_t as_of;                /* 0 = the day of the store's last transaction */
    uint64_t threads;             /* 0 = all cores */
    /* [kmeans] */
    uint64_t k;                   /* 0 = auto */
    uint64_t k_min, k_max;
    int algorithm;                /* index into sm_run_algorithms */
    uint64_t n_init, max_iter;
    double tol;
    uint64_t seed;
    char columns[SM_CONFIG_STRING_MAX];
    char log1p[SM_CONFIG_STRING_MAX];
    int scale;                    /* index into sm_run_scales */
    uint64_t silhouette_sample;
    uint64_t sweep_rows;          /* auto: sweep k on a seeded sample of this many rows, then fit all */
    /* [rfm] */
    char rfm_segments[SM_CONFIG_STRING_MAX]; /* "" = the built-in table */
    double key_customer_share, value_share;
    double new_days, churn_days, at_risk_factor, churn_p_alive;
    uint64_t loyal_purchases;
    /* [clv] */
    double margin;                /* profit share of revenue */
    double monthly_discount;
    uint64_t horizon_months;
    int time_unit;                /* index into sm_run_time_units */
    double acquisition_cost;      /* per customer, major units */
    double retention;             /* per month, discounted CLV */
    /* [anomaly] */
    uint64_t trees, sample;
    double contamination;
    /* [baskets] */
    double min_support, min_confidence, min_lift;
    uint64_t max_len, cross_sell;
    bool include_returns;
} sm_run_config;

extern const char *const sm_run_algorithms[];
extern const char *const sm_run_scales[];
extern const char *const sm_run_time_units[];
extern const sm_config_key sm_run_config_keys[];
extern const size_t sm_run_config_n_keys;

void sm_run_config_init(sm_run_config *config);

/* A segment as the run describes it. */
typedef struct sm_segment_profile {
    char name[64];
    uint64_t size;
    double mean[SM_FEATURE_COLUMNS]; /* mean of each feature over the members, original units */
} sm_segment_profile;

typedef struct sm_segmentation {
    int64_t as_of;
    uint32_t n;                   /* store customers = rows */
    sm_customer_id *customers;    /* n, 0..n-1 */
    sm_assignment *rows;          /* n */
    uint32_t graded;              /* customers with a purchase by as_of */
    /* k-means */
    uint32_t d;                   /* clustering columns */
    char **columns;               /* d names */
    uint32_t k;
    sm_segment_profile *segments; /* k */
    double *centres;              /* k x d, scaled space */
    double *centres_original;     /* k x d, original units */
    double population_mean[SM_FEATURE_COLUMNS];
    sm_k_score *sweep;            /* -k auto: n_sweep scores, the chosen at `chosen` */
    size_t n_sweep, chosen;
    /* names */
    char **rfm_names;             /* n_rfm_names, last = "Other" */
    uint32_t n_rfm_names;
    /* models and counts */
    bool have_bgnbd, have_gg;
    sm_bgnbd_fit bgnbd;
    sm_gg_fit gg;
    uint64_t tier_count[3];
    uint64_t stage_count[6];
    double pareto_top20_share;    /* share of value made by the top 20% of customers */
    uint64_t flagged;
    double anomaly_threshold;
    uint64_t n_itemsets, n_rules, n_baskets;
    uint64_t with_cross_sell;
    sm_run_pair timings[16];
    uint32_t n_timings;
    char notes[1024];             /* why a stage left its columns empty, "" if none did */
} sm_segmentation;

/* Runs every stage on the open store. Errors: those of the stages (the
 * message names the stage), SM_ERR_CANCELLED from the progress callback. */
int sm_segmentation_run(sm_store *store, const sm_run_config *config, const sm_progress *progress,
                        sm_segmentation *out, sm_error *err);

void sm_segmentation_free(sm_segmentation *s);

/* The run record (kind "run") describing `s`; the pointers inside point
 * into `s` and `config_text`, which must outlive it. details_buf receives
 * the models as JSON (caller frees). */
int sm_segmentation_describe(const sm_segmentation *s, int64_t started, int64_t finished, const char *config_text,
                             const sm_store_info *info, sm_run_description *run, sm_run_segment *segments,
                             const char **lifecycle_names, char **details_buf, sm_error *err);

#endif
