/* SPDX-License-Identifier: MIT */
/*
 * Per-customer CLV summaries in the engine: read from a lifetimes-style
 * summary CSV, or built from a store's transaction table (sm_tx_table) for a
 * calibration period, with the holdout counts that validate a fit. Either
 * way the result is plain arrays that plug into the kernels' sm_clv_summary.
 */
#ifndef SEGMINT_ENGINE_CLV_SUMMARY_H
#define SEGMINT_ENGINE_CLV_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmint/clv.h"
#include "segmint/error.h"
#include "segmint/store.h"

/* A summary table owned by the engine; `view` points into its arrays. */
typedef struct sm_summary_table {
    size_t n;
    char **ids;          /* n customer ids (text), or NULL when the input has none */
    char *id_text;       /* backing store of ids */
    double *frequency;   /* n */
    double *recency;     /* n */
    double *T;           /* n */
    double *monetary;    /* n, or NULL */
    double *revenue;     /* n net amount of all purchase days to calibration end (from a store), or NULL */
    uint64_t *lines;     /* n input lines (CSV), or NULL */
    double *holdout_frequency; /* n repeat purchase periods after calibration (from a store), or NULL */
    double holdout_length;     /* length of the holdout period in time units (0 = none) */
    sm_customer_id *customers; /* n store ids (from a store), or NULL */
    size_t n_skipped;          /* store customers left out: first purchase on or after calibration end */
    sm_clv_summary view;
} sm_summary_table;

/* Releases what t owns and zeroes it. Accepts a zeroed table. */
void sm_summary_table_free(sm_summary_table *t);

/*
 * Reads a summary CSV with a header naming, in any order and any case:
 * frequency (or x), recency (or t_x), T, and optionally customer_id (or id,
 * customer) and monetary_value (or monetary, zbar). Other columns are
 * ignored. Every value is validated (sm_clv_summary_check), errors name
 * path:line:column and the column.
 * Errors: SM_ERR_IO, SM_ERR_PARSE (malformed CSV, missing or duplicate
 * column, non-numeric field), SM_ERR_NUMERIC (NaN/inf), SM_ERR_INVALID_ARG
 * (a rule of B10: negative or fractional frequency, recency > T, T <= 0, no
 * rows), SM_ERR_NOMEM.
 */
int sm_summary_read(const char *path, sm_summary_table *out, sm_error *err);

/* Time units of a summary built from transactions. */
typedef enum sm_time_unit {
    SM_UNIT_DAY = 0,
    SM_UNIT_WEEK = 1,
    SM_UNIT_MONTH = 2
} sm_time_unit;

/* "day", "week", "month" -> unit. Returns SM_OK or SM_ERR_INVALID_ARG. */
int sm_time_unit_parse(const char *text, sm_time_unit *out);
/* Days per unit: 1, 7, 365.25/12. */
double sm_time_unit_days(sm_time_unit unit);
/* Units per month in lifetimes' convention (day 30, week 4.345, month 1). */
double sm_time_unit_per_month(sm_time_unit unit);

/*
 * Builds the BG/NBD summary from transactions, in the convention of
 * lifetimes' summary_data_from_transaction_data (and of the FHL CDNOW data):
 * purchases are grouped by UTC calendar day; a customer's first purchase day
 * is time 0; frequency = purchase days after the first one up to and
 * including calibration_end's day; recency = (last - first purchase day) and
 * T = (calibration_end day - first purchase day), both in `unit`; monetary =
 * mean net amount of the repeat purchase days (major units), 0 when none;
 * revenue = net amount of all purchase days, the first one included.
 * Customers whose first purchase is after calibration_end, or on its day
 * (age T = 0), are left out and counted (n_skipped). A purchase day is a
 * day with at least one row that is not a return or cancellation; its
 * amount is the net of all that day's rows (same-day returns reduce it). Days with only returns are neither
 * purchases nor amounts. Repeat customers whose net spend is <= 0 thus get
 * monetary <= 0, which the Gamma-Gamma fit leaves out, counted (B3).
 * With observation_end > calibration_end, holdout_frequency counts each
 * customer's purchase days in (calibration_end, observation_end] and
 * holdout_length = (observation_end - calibration_end) days in `unit`.
 * @param[in] calibration_end, observation_end  UTC seconds (any time of day;
 *            only the day counts); observation_end 0 = no holdout
 * Errors: SM_ERR_INVALID_ARG (no customer purchased by calibration_end),
 * SM_ERR_NOMEM.
 */
int sm_summary_from_tx(const sm_tx_table *tx, int64_t calibration_end, int64_t observation_end,
                       sm_time_unit unit, sm_summary_table *out, sm_error *err);

/* --- per-item costs for the historic CLV ------------------------------------------ */

/* Unit costs of a store's items, read from a cost file. */
typedef struct sm_item_costs {
    const char *path;          /* the file, for messages (borrowed: must outlive the table) */
    const sm_key_table *items; /* the store's item keys (borrowed), to name items in messages */
    double *unit_cost;         /* items->n, major units; NaN = the file has no cost for the item */
    size_t n_rows;             /* cost rows in the file */
    size_t n_unknown;          /* rows naming an item the store does not hold (not used) */
} sm_item_costs;

/*
 * Reads a CSV with a header naming the columns `item` and `unit_cost` (any
 * order and case; other columns ignored) and one row per item: the item code
 * as imported (blanks around it trimmed, as the importer trims) and its cost
 * per unit in major currency units, a finite number >= 0 (sm_parse_number).
 * Items the store does not hold are counted (n_unknown) and not used: a
 * price list may cover more than one store.
 * Errors name path:line:column and the field: SM_ERR_IO, SM_ERR_PARSE
 * (malformed CSV, missing/duplicate column, wrong field count, not a
 * number, an item named twice: "appears twice (lines A and B)", an empty or
 * invalid item code), SM_ERR_NUMERIC (NaN/inf), SM_ERR_INVALID_ARG (a
 * negative cost, no rows), SM_ERR_NOMEM.
 */
int sm_item_costs_read(const char *path, const sm_key_table *items, sm_item_costs *out,
                       sm_error *err);

/* Releases what sm_item_costs_read allocated and zeroes c. Accepts a zeroed table. */
void sm_item_costs_free(sm_item_costs *c);

/* What sm_summary_item_costs found beside the costs. */
typedef struct sm_item_cost_report {
    uint64_t rows_costed;       /* counted rows with a unit cost */
    uint64_t rows_missing;      /* counted rows whose item has no cost in the file */
    uint64_t rows_without_item; /* counted rows that carry no item at all (e.g. CDNOW) */
    uint32_t items_missing;     /* distinct items behind rows_missing */
} sm_item_cost_report;

/*
 * Cost of goods per customer of t (a summary built by sm_summary_from_tx
 * from the same tx and calibration_end; cost[i] belongs to t->customers[i]):
 * the sum of quantity x unit cost over exactly the rows whose amounts make
 * t->revenue[i], i.e. all rows of the customer's purchase days up to
 * calibration_end's day. A same-day return (negative quantity) thus gives
 * its cost back just as it reduces the day's revenue; a day with only
 * returns adds neither revenue nor cost. Rows after the calibration end
 * are not counted.
 * A counted row whose item has no cost (or no item) is an error naming the
 * first such item and the file, with the counts, unless missing_zero: then
 * it costs 0 and is only counted in *report (may be NULL).
 * Errors: SM_ERR_INVALID_ARG (t not from a store, mismatched tables),
 * SM_ERR_NOT_FOUND (a missing cost), SM_ERR_NOMEM.
 */
int sm_summary_item_costs(const sm_tx_table *tx, const sm_summary_table *t,
                          int64_t calibration_end, const sm_item_costs *costs, bool missing_zero,
                          double *cost, sm_item_cost_report *report, sm_error *err);

#endif /* SEGMINT_ENGINE_CLV_SUMMARY_H */
