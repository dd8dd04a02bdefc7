/* SPDX-License-Identifier: MIT */
/*
 * `segmint anomalies`: per-customer anomaly scores and flags (Isolation
 * Forest, distance to the own segment's centre, robust Mahalanobis, and
 * purchases far outside the customer's own history), a saved-forest round
 * trip, a run in the store, and a summary naming the features that make each
 * top row unusual. The detectors are kernels/iforest.c and
 * kernels/robust_outliers.c; this file only reads, composes and writes. The
 * input (a matrix file, or a store's features and transactions) is gathered
 * into one anomaly_input so every detector runs the same way on both.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine/cli/cli.h"
#include "engine/customer_stats.h"
#include "engine/features.h"
#include "engine/matrix_io.h"
#include "engine/output.h"
#include "engine/run_record.h"
#include "segmint/anomaly.h"
#include "segmint/store.h"
#include "storage/fields.h"

static const char usage[] =
    "usage: segmint anomalies (--matrix FILE | --store DIR) [options]\n"
    "\n"
    "Scores every customer (matrix row) for how anomalous it is (higher = more\n"
    "anomalous), flags those above a threshold, and summarises the top ones with the\n"
    "features furthest from typical (robust z = (value - median) / (1.4826 MAD), shown\n"
    "in the input's units). Same seed, same scores, whatever the thread count.\n"
    "\n"
    "input:\n"
    "  --matrix FILE        CSV (optional header) or .npy float32/float64 matrix, one row\n"
    "                       per customer; NaN/inf refused with row and column\n"
    "  --store DIR          a segmint store: the per-customer features (README: Features)\n"
    "                       as of --as-of, and each customer's purchases; the result is\n"
    "                       stored as a run (kind \"anomalies\") unless --no-store\n"
    "  --as-of DATE         store: YYYY-MM-DD or ISO 8601 (default: the last transaction)\n"
    "  --features NAME      store: use a stored feature set instead of building one\n"
    "  --no-store           store: read only, do not record the run\n"
    "\n"
    "detectors:\n"
    "  --method M           iforest (default) | centroid | mahalanobis | transactions | all\n"
    "                         iforest      Isolation Forest score s in (0, 1]\n"
    "                         centroid     robust z of the distance to the customer's own\n"
    "                                      segment centre, within the segment (see below)\n"
    "                         mahalanobis  squared robust (FastMCD) Mahalanobis distance\n"
    "                         transactions (store) largest robust z of a purchase's amount\n"
    "                                      or item count against the customer's own history\n"
    "                         all          every detector whose input is there (centroid:\n"
    "                                      segments given; transactions: a store); one that\n"
    "                                      cannot run on this data (too few rows for a\n"
    "                                      covariance, ...) is skipped with a warning and its\n"
    "                                      columns left empty\n"
    "  --min-history N      transactions: purchases a customer needs to be judged (default 5)\n"
    "  --trees T            isolation trees (default 100)\n"
    "  --sample PSI         rows drawn per tree (default 256; n when n is smaller)\n"
    "  --contamination C    flag the top C fraction per detector, C in (0, 0.5]\n"
    "  --threshold S        flag scores above S (one method only)\n"
    "                       default thresholds: iforest 0.5 (the paper's and scikit-learn's\n"
    "                       'auto' offset), centroid 3.5, mahalanobis chi2(p, 0.975),\n"
    "                       transactions 3.5\n"
    "  --seed S             random seed (default 0)\n"
    "  --model-out FILE     save the fitted forest (versioned binary, checked on load)\n"
    "  --model-in FILE      score with a saved forest instead of fitting one\n"
    "\n"
    "centroid: the segments, and which centre, measured in which space (store: with\n"
    "neither --kmeans-run nor --segments-run, --segments-run 0)\n"
    "  --kmeans-run ID|latest  store: a k-means run's (segmint kmeans --store or segmint\n"
    "                       run) segments, and the distance to the assigned k-means centre\n"
    "                       that run recorded for each customer, in the scaled space it\n"
    "                       clustered in (its features as of that run)\n"
    "  --segments-run ID    store: segments of stored run ID (0 = latest); the centre is the\n"
    "                       segment's mean of this command's features, robustly standardised\n"
    "                       ((x - median) / robust scale), not the run's k-means centre\n"
    "  --labels FILE        matrix: cluster label per row (CSV column or .npy); without\n"
    "                       --centers the centre is the label's mean of the robustly\n"
    "                       standardised columns, as for --segments-run\n"
    "  --centers FILE       matrix, with --labels: k x d centres (CSV or .npy) in the units of\n"
    "                       --matrix, e.g. segmint kmeans --centroids of an unscaled (default)\n"
    "                       fit on this matrix; distances are then to these centres, unscaled\n"
    "\n"
    "output:\n"
    "  --out FILE           per-row results, CSV or .jsonl by extension ('-' = stdout):\n"
    "                       matrix: row,score,flag   store: customer_id,score,flag,detector\n"
    "                       with --method all, then <detector>_score,<detector>_flag for\n"
    "                       each detector (empty, or null in JSONL, for one skipped);\n"
    "                       score is the first detector's that ran (iforest's) and\n"
    "                       detector lists the detectors that flagged ('iforest+centroid',\n"
    "                       'none')\n"
    "  --tx-out FILE        store, transactions: the flagged purchases, CSV or .jsonl\n"
    "                       customer_id,time,basket,basket_key,amount,items,amount_z,\n"
    "                       items_z,score; basket = the store's internal basket id,\n"
    "                       basket_key = its invoice/order key (empty, null in JSONL, when\n"
    "                       the input had no basket column: customer and time identify it)\n"
    "  --top N              rows listed in the summary (default 10, 0 = none)\n"
    "  --threads T          threads (default: all cores)\n"
    "  --force              overwrite existing output files\n"
    "  --quiet              no progress line, no summary\n";

static int run_anomalies(int argc, char **argv);
const sm_cli_command sm_cmd_anomalies = {"anomalies", "score and flag anomalous customers (Isolation Forest, robust distances)",
                                         usage, run_anomalies};

enum { MAX_DETECTORS = 4 };

typedef struct options {
    const char *matrix_path, *store_dir, *as_of_text, *features_name, *labels_path, *centers_path;
    const char *model_in, *model_out, *out_path, *tx_out;
    bool want[SM_DETECTOR_TRANSACTION + 1];
    bool all, no_store, have_segments_run, have_kmeans_run;
    uint64_t trees, sample, seed, top, segments_run, kmeans_run, min_history;
    double contamination, threshold;
    bool have_contamination, have_threshold;
    int threads;
    bool force, quiet;
} options;

/* What the detectors run on, from a matrix file or a store. */
typedef struct anomaly_input {
    const char *source;        /* file or store directory, for messages */
    sm_matrix x;               /* n rows (customers) x d features */
    sm_cluster_id *labels;     /* n segment labels, or NULL */
    size_t k;
    float *centers;            /* matrix --centers: k x d (leading dimension d), or NULL */
    double *run_distance;      /* --kmeans-run: n distances to the assigned centre, or NULL */
    uint64_t kmeans_run;       /* the run they came from */
    uint64_t segments_run;     /* --segments-run: the run the labels came from */
    /* store only */
    sm_customer_id *customers; /* n dense ids, ascending */
    sm_key_table keys;         /* customer keys by dense id */
    sm_key_table basket_keys;  /* invoice/order keys by basket id (--tx-out only) */
    int64_t as_of;
    /* Purchases per row: row i's baskets are [tx_offsets[i], tx_offsets[i+1]). */
    uint64_t *tx_offsets;
    double *tx_amount;         /* basket amount, major units */
    double *tx_items;          /* purchase lines in the basket */
    int64_t *tx_time;
    sm_basket_id *tx_basket;
} anomaly_input;

/* One detector's results. */
typedef struct detector_result {
    int id;
    double *score;    /* n */
    uint8_t *flag;    /* n */
    double threshold;
    size_t flagged;
    char rule[96];    /* how the threshold was chosen, for the summary */
    bool skipped;     /* --method all: could not run on this data */
    char why[SM_ERROR_MSG_MAX]; /* why, for the warning, the summary and the run record */
    /* transactions: per-basket z of amount and item count, and the score */
    double *tx_amount_z, *tx_items_z, *tx_score;
} detector_result;

static void input_free(anomaly_input *in)
{
    sm_matrix_free(&in->x);
    free(in->labels);
    free(in->centers);
    free(in->run_distance);
    free(in->customers);
    sm_key_table_free(&in->keys);
    sm_key_table_free(&in->basket_keys);
    free(in->tx_offsets);
    free(in->tx_amount);
    free(in->tx_items);
    free(in->tx_time);
    free(in->tx_basket);
}

/* Label of row i as the customer's key (store) or the row number. */
static const char *row_name(const anomaly_input *in, size_t i, char *buf, size_t cap)
{
    if (in->customers != NULL)
        return in->keys.keys[in->customers[i]];
    snprintf(buf, cap, "%zu", i);
    return buf;
}

static int read_labels(const char *path, size_t n, anomaly_input *in, sm_error *err)
{
    sm_matrix m;
    int rc = sm_matrix_read(path, &m, err);
    if (rc != SM_OK)
        return rc;
    if (m.d != 1 || m.n != n) {
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL,
                             "expected one label column with %zu rows (one per matrix row), got %zu x %zu",
                             n, m.n, m.d);
        sm_matrix_free(&m);
        return rc;
    }
    in->labels = malloc(n * sizeof *in->labels);
    if (in->labels == NULL) {
        sm_matrix_free(&m);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu labels", n);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        float v = m.data[i * m.ld];
        if (!(v >= 0.0f && v < 16777216.0f) || v != floorf(v)) {
            sm_matrix_free(&m);
            /* Line i+2: the header is line 1 (CSV labels as sm_labels_write writes them). */
            return sm_error_set_at(err, SM_ERR_PARSE, path, i + 2, 1, "label",
                                   "label %g of row %zu is not a non-negative integer", (double)v, i);
        }
        in->labels[i] = (sm_cluster_id)v;
        k = SM_MAX(k, (size_t)in->labels[i] + 1);
    }
    in->k = k;
    sm_matrix_free(&m);
    return SM_OK;
}

/* --centers: one row per label, in the matrix's columns. */
static int read_centers(const char *path, anomaly_input *in, sm_error *err)
{
    sm_matrix m;
    int rc = sm_matrix_read(path, &m, err);
    if (rc != SM_OK)
        return rc;
    if (m.d != in->x.d || m.n < in->k)
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL,
                             "expected a row for each label 0..%zu and a column for each of the "
                             "matrix's %zu, got %zu x %zu",
                             in->k - 1, in->x.d, m.n, m.d);
    /* The kernel takes the centres with leading dimension d. */
    if (rc == SM_OK && (in->centers = malloc(m.n * m.d * sizeof *in->centers)) == NULL)
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu centres", m.n);
    for (size_t c = 0; rc == SM_OK && c < m.n; c++)
        memcpy(in->centers + c * m.d, m.data + c * m.ld, m.d * sizeof *in->centers);
    if (rc == SM_OK)
        in->k = m.n; /* a centre no row is labelled with is allowed: it is just unused */
    sm_matrix_free(&m);
    return rc;
}

/* --- store input -------------------------------------------------------------- */

typedef struct line_ref {
    sm_basket_id basket;
    uint64_t row;
} line_ref;

static int by_basket(const void *a, const void *b)
{
    const line_ref *x = a, *y = b;
    if (x->basket != y->basket)
        return x->basket < y->basket ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Each feature row's purchases as baskets: amount (major units), purchase
 * lines and time, from purchase rows (not returns) dated at or before as_of. */
static int build_baskets(const sm_tx_table *tx, anomaly_input *in, sm_error *err)
{
    const size_t n = in->x.n;
    in->tx_offsets = calloc(n + 1, sizeof *in->tx_offsets);
    size_t longest = 0;
    for (size_t i = 0; i < n; i++) {
        sm_customer_id c = in->customers[i];
        longest = SM_MAX(longest, (size_t)(tx->customer_offsets[c + 1] - tx->customer_offsets[c]));
    }
    line_ref *lines = malloc(SM_MAX(longest, (size_t)1) * sizeof *lines);
    size_t cap = 0, used = 0;
    int rc = in->tx_offsets && lines ? SM_OK : sm_error_set(err, SM_ERR_NOMEM, "out of memory for baskets");
    for (size_t i = 0; i < n && rc == SM_OK; i++) {
        sm_customer_id c = in->customers[i];
        size_t m = 0;
        for (uint64_t r = tx->customer_offsets[c]; r < tx->customer_offsets[c + 1]; r++)
            if (!(tx->flags[r] & SM_TX_RETURN) && tx->time[r] <= in->as_of)
                lines[m++] = (line_ref){tx->basket[r], r};
        qsort(lines, m, sizeof *lines, by_basket);
        for (size_t a = 0; a < m;) {
            size_t b = a;
            double amount = 0.0;
            while (b < m && lines[b].basket == lines[a].basket)
                amount += (double)tx->amount[lines[b++].row];
            if (used == cap) {
                cap = cap ? 2 * cap : 1024;
                double *am = realloc(in->tx_amount, cap * sizeof *am);
                if (am != NULL)
                    in->tx_amount = am;
                double *it = realloc(in->tx_items, cap * sizeof *it);
                if (it != NULL)
                    in->tx_items = it;
                int64_t *tm = realloc(in->tx_time, cap * sizeof *tm);
                if (tm != NULL)
                    in->tx_time = tm;
                sm_basket_id *bk = realloc(in->tx_basket, cap * sizeof *bk);
                if (bk != NULL)
                    in->tx_basket = bk;
                if (am == NULL || it == NULL || tm == NULL || bk == NULL) {
                    rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for baskets");
                    break;
                }
            }
            in->tx_amount[used] = amount / (double)tx->money_scale;
            in->tx_items[used] = (double)(b - a);
            in->tx_time[used] = tx->time[lines[a].row];
            in->tx_basket[used] = lines[a].basket;
            used++;
            a = b;
        }
        in->tx_offsets[i + 1] = used;
    }
    free(lines);
    return rc;
}

/* Segment labels of the feature rows from a stored run. */
static int load_segments(sm_store *store, const options *o, anomaly_input *in, sm_error *err)
{
    uint64_t run_id = o->segments_run;
    if (run_id == 0) {
        sm_run_info *runs = NULL;
        size_t n_runs = 0;
        int rc = sm_store_runs_list(store, &runs, &n_runs, err);
        if (rc != SM_OK)
            return rc;
        run_id = n_runs > 0 ? runs[n_runs - 1].id : 0;
        sm_run_info_free(runs, n_runs);
        if (run_id == 0)
            return sm_error_set_at(err, SM_ERR_NOT_FOUND, in->source, 0, 0, NULL,
                                   "no runs in the store to take segments from (run `segmint run` first)");
    }
    in->segments_run = run_id;
    sm_assignments a = {0};
    int rc = sm_store_run_assignments(store, run_id, &a, err);
    if (rc != SM_OK)
        return rc;
    in->labels = malloc(in->x.n * sizeof *in->labels);
    if (in->labels == NULL) {
        sm_assignments_free(&a);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for labels");
    }
    size_t j = 0;
    in->k = 0;
    for (size_t i = 0; i < in->x.n && rc == SM_OK; i++) {
        while (j < a.n && a.customers[j] < in->customers[i])
            j++;
        sm_assignment row;
        if (j == a.n || a.customers[j] != in->customers[i] || a.value_size != SM_ASSIGNMENT_BYTES)
            rc = SM_ERR_NOT_FOUND;
        else
            rc = sm_assignment_decode(a.values + j * SM_ASSIGNMENT_BYTES, &row, err);
        if (rc == SM_OK && row.segment == SM_SEGMENT_NONE)
            rc = SM_ERR_NOT_FOUND;
        if (rc == SM_ERR_NOT_FOUND)
            sm_error_set_at(err, SM_ERR_NOT_FOUND, in->source, 0, 0, NULL,
                            "customer %s has no segment in run %" PRIu64
                            " (give --segments-run a segmentation run; see `segmint runs`)",
                            in->keys.keys[in->customers[i]], run_id);
        if (rc == SM_OK) {
            in->labels[i] = row.segment;
            in->k = SM_MAX(in->k, (size_t)row.segment + 1);
        }
    }
    sm_assignments_free(&a);
    return rc;
}

/* Whether a run record comes from k-means (segmint kmeans --store or
 * segmint run with segments): segments with their centres. */
static bool is_kmeans_record(const sm_json *record, size_t *n_segments)
{
    const char *kind = sm_json_get_string(record, "kind", "");
    const sm_json *segs = sm_json_get(record, "segments");
    if ((strcmp(kind, "kmeans") != 0 && strcmp(kind, "run") != 0) || segs == NULL ||
        segs->type != SM_JSON_ARRAY || segs->n == 0)
        return false;
    const sm_json *centre = sm_json_get(&segs->items[0], "centre");
    *n_segments = segs->n;
    return centre != NULL && centre->type == SM_JSON_ARRAY;
}

/* --kmeans-run: each feature row's segment and the distance to its k-means
 * centre as the run recorded it (assignment `distance`: Euclidean, in the
 * space the run clustered in after its scaling). The scaling itself is not
 * stored, so the distance cannot be recomputed here; measuring this
 * command's features against centre_original instead would let money
 * columns decide every distance, unlike the k-means the run did. */
static int load_kmeans_run(sm_store *store, const options *o, anomaly_input *in, sm_error *err)
{
    sm_run_info *runs = NULL;
    size_t n_runs = 0, n_segments = 0;
    int rc = sm_store_runs_list(store, &runs, &n_runs, err);
    if (rc != SM_OK)
        return rc;
    uint64_t run_id = 0;
    char kind[32] = "";
    for (size_t r = n_runs; r-- > 0 && run_id == 0 && rc == SM_OK;) {
        if (o->kmeans_run != 0 && runs[r].id != o->kmeans_run)
            continue;
        sm_json record;
        sm_error ignored;
        if (sm_json_parse(runs[r].record, runs[r].record_len, &record, &ignored) != SM_OK) {
            if (o->kmeans_run != 0)
                rc = sm_error_set_at(err, SM_ERR_STORAGE, in->source, 0, 0, NULL,
                                     "run %" PRIu64 " has a record that is not JSON", runs[r].id);
            continue;
        }
        if (is_kmeans_record(&record, &n_segments))
            run_id = runs[r].id;
        else if (o->kmeans_run != 0)
            snprintf(kind, sizeof kind, "%s", sm_json_get_string(&record, "kind", "?"));
        sm_json_free(&record);
        if (o->kmeans_run != 0 && run_id == 0 && rc == SM_OK)
            rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, in->source, 0, 0, "kmeans-run",
                                 "run %" PRIu64 " is of kind '%s', without k-means segments (segmint "
                                 "kmeans --store or segmint run make one; segmint runs lists them)",
                                 o->kmeans_run, kind);
    }
    sm_run_info_free(runs, n_runs);
    if (rc != SM_OK)
        return rc;
    if (run_id == 0 && o->kmeans_run != 0)
        return sm_error_set_at(err, SM_ERR_NOT_FOUND, in->source, 0, 0, "kmeans-run",
                               "no run %" PRIu64 " in the store (segmint runs lists them)", o->kmeans_run);
    if (run_id == 0)
        return sm_error_set_at(err, SM_ERR_NOT_FOUND, in->source, 0, 0, "kmeans-run",
                               "no k-means run in the store (segmint kmeans --store or segmint run make one)");
    sm_assignments a = {0};
    rc = sm_store_run_assignments(store, run_id, &a, err);
    if (rc != SM_OK)
        return rc;
    in->labels = malloc(in->x.n * sizeof *in->labels);
    in->run_distance = malloc(in->x.n * sizeof *in->run_distance);
    if (in->labels == NULL || in->run_distance == NULL)
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for labels");
    if (rc == SM_OK && a.value_size != SM_ASSIGNMENT_BYTES)
        rc = sm_error_set_at(err, SM_ERR_STORAGE, in->source, 0, 0, NULL,
                             "run %" PRIu64 " has %" PRIu32 "-byte assignments, not segmint's %d", run_id,
                             a.value_size, SM_ASSIGNMENT_BYTES);
    size_t j = 0;
    for (size_t i = 0; i < in->x.n && rc == SM_OK; i++) {
        while (j < a.n && a.customers[j] < in->customers[i])
            j++;
        sm_assignment row;
        const char *key = in->keys.keys[in->customers[i]];
        if (j == a.n || a.customers[j] != in->customers[i])
            rc = sm_error_set_at(err, SM_ERR_NOT_FOUND, in->source, 0, 0, "kmeans-run",
                                 "customer %s is not in k-means run %" PRIu64
                                 " (it clustered other customers: rerun it on these features)",
                                 key, run_id);
        else
            rc = sm_assignment_decode(a.values + j * SM_ASSIGNMENT_BYTES, &row, err);
        if (rc == SM_OK && (row.segment >= n_segments || !(row.distance >= 0.0f && isfinite(row.distance))))
            rc = sm_error_set_at(err, SM_ERR_STORAGE, in->source, 0, 0, "kmeans-run",
                                 "customer %s has segment %" PRIu32 " and distance %g in k-means run %" PRIu64
                                 " of %zu segments",
                                 key, row.segment, (double)row.distance, run_id, n_segments);
        if (rc == SM_OK) {
            in->labels[i] = row.segment;
            in->run_distance[i] = (double)row.distance;
        }
    }
    in->k = n_segments;
    in->kmeans_run = run_id;
    sm_assignments_free(&a);
    return rc;
}

static int read_store(const options *o, sm_store **store_out, anomaly_input *in,
                      const sm_progress *progress, sm_error *err)
{
    sm_store *store = NULL;
    int rc = sm_store_open(o->store_dir, o->no_store ? SM_STORE_READ_ONLY : SM_STORE_READ_WRITE, &store, err);
    if (rc != SM_OK)
        return rc;
    *store_out = store;
    sm_store_info info;
    rc = sm_store_get_info(store, &info, err);
    if (rc != SM_OK)
        return rc;
    in->as_of = info.last_time;
    if (o->as_of_text != NULL &&
        sm_parse_time_iso(o->as_of_text, strlen(o->as_of_text), &in->as_of) != SM_FIELD_OK)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, NULL, 0, 0, "as-of",
                               "'%s' is not a date (YYYY-MM-DD or ISO 8601)", o->as_of_text);
    if (o->as_of_text == NULL && (!info.has_time || info.customers == 0))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, o->store_dir, 0, 0, NULL,
                               "the store has no dated customer transactions to score");
    rc = sm_store_load_keys(store, SM_KEYS_CUSTOMERS, &in->keys, err);
    sm_tx_table tx = {0};
    bool need_tx = o->features_name == NULL || o->want[SM_DETECTOR_TRANSACTION];
    if (rc == SM_OK && need_tx)
        rc = sm_store_load_tx(store, &tx, progress, err);
    if (rc == SM_OK && o->features_name != NULL) {
        sm_feature_matrix fm = {0};
        rc = sm_store_features_get(store, o->features_name, &fm, err);
        if (rc == SM_OK)
            rc = sm_matrix_alloc(&in->x, fm.n, fm.d, err);
        in->customers = rc == SM_OK ? malloc(fm.n * sizeof *in->customers) : NULL;
        if (rc == SM_OK && in->customers == NULL)
            rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
        for (size_t i = 0; rc == SM_OK && i < fm.n; i++) {
            memcpy(in->x.data + i * in->x.ld, fm.data + i * fm.ld, fm.d * sizeof(float));
            in->customers[i] = fm.customers[i];
            if (i > 0 && fm.customers[i] <= fm.customers[i - 1])
                rc = sm_error_set_at(err, SM_ERR_STORAGE, o->store_dir, 0, 0, NULL,
                                     "feature set %s is not in customer order", o->features_name);
        }
        for (size_t j = 0; rc == SM_OK && j < fm.d; j++) {
            char *name = sm_strdup(fm.column_names[j]);
            if (name == NULL) {
                rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
                break;
            }
            sm_free(in->x.column_names[j]);
            in->x.column_names[j] = name;
        }
        sm_feature_matrix_free(&fm);
    } else if (rc == SM_OK) {
        sm_customer_stats stats = {0};
        sm_feature_set set = {0};
        rc = sm_customer_stats_compute(&tx, in->as_of, o->threads, &stats, err);
        if (rc == SM_OK)
            rc = sm_features_build(&stats, &set, err);
        if (rc == SM_OK) {
            in->x = set.matrix;
            in->customers = malloc(set.matrix.n * sizeof *in->customers);
            if (in->customers == NULL)
                rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory");
            else
                memcpy(in->customers, set.customers, set.matrix.n * sizeof *in->customers);
            set.matrix = (sm_matrix){0};
        }
        sm_feature_set_free(&set);
        sm_customer_stats_free(&stats);
    }
    if (rc == SM_OK && o->want[SM_DETECTOR_TRANSACTION])
        rc = build_baskets(&tx, in, err);
    sm_tx_table_free(&tx);
    if (rc == SM_OK && o->tx_out != NULL)
        rc = sm_store_load_keys(store, SM_KEYS_BASKETS, &in->basket_keys, err);
    if (rc == SM_OK && o->want[SM_DETECTOR_CENTROID])
        rc = o->have_kmeans_run ? load_kmeans_run(store, o, in, err) : load_segments(store, o, in, err);
    return rc;
}

/* --- detectors ---------------------------------------------------------------- */

static int read_file(const char *path, uint8_t **buf, size_t *len, sm_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        sm_error_set_at(err, e == ENOENT ? SM_ERR_NOT_FOUND : SM_ERR_IO, path, 0, 0, NULL, "%s",
                        strerror(e));
        sm_error_set_cause(err, e);
        return e == ENOENT ? SM_ERR_NOT_FOUND : SM_ERR_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "not a regular file");
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len > 0 ? *len : 1);
    if (*buf == NULL) {
        fclose(f);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", path);
    }
    if (fread(*buf, 1, *len, f) != *len) {
        free(*buf);
        *buf = NULL;
        fclose(f);
        return sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "short read");
    }
    fclose(f);
    return SM_OK;
}

static int write_model(const char *path, const sm_iforest *forest, bool force, sm_error *err)
{
    size_t len = sm_iforest_serialized_size(forest);
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory serialising the model");
    int rc = sm_iforest_serialize(forest, buf, len, err);
    sm_output *out = NULL;
    if (rc == SM_OK)
        rc = sm_output_open(path, force, &out, err);
    if (rc == SM_OK && fwrite(buf, 1, len, sm_output_stream(out)) != len)
        rc = sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "write failed");
    if (rc == SM_OK)
        rc = sm_output_commit(out, err), out = NULL;
    sm_output_abort(out);
    free(buf);
    return rc;
}

static int run_iforest(const options *o, const anomaly_input *in, const sm_progress *progress,
                       double *scores, sm_error *err)
{
    sm_iforest *forest = NULL;
    int rc;
    if (o->model_in != NULL) {
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = read_file(o->model_in, &buf, &len, err);
        if (rc == SM_OK) {
            rc = sm_iforest_deserialize(buf, len, &forest, err);
            if (rc != SM_OK) /* name the file: the kernel knows only bytes */
                snprintf(err->path, sizeof err->path, "%s", o->model_in);
        }
        free(buf);
        if (rc == SM_OK && sm_iforest_n_features(forest) != in->x.d)
            rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, o->model_in, 0, 0, NULL,
                                 "the model was fitted on %zu features, %s has %zu",
                                 sm_iforest_n_features(forest), in->source, in->x.d);
    } else {
        sm_iforest_params p;
        sm_iforest_params_init(&p);
        p.n_trees = (uint32_t)o->trees;
        p.sample_size = (uint32_t)o->sample;
        p.seed = o->seed;
        p.n_threads = o->threads;
        p.progress = *progress;
        rc = sm_iforest_fit(&p, in->x.data, in->x.n, in->x.d, in->x.ld, &forest, err);
    }
    if (rc == SM_OK)
        rc = sm_iforest_score(forest, scores, in->x.data, in->x.n, in->x.d, in->x.ld, o->threads,
                              progress, err);
    if (rc == SM_OK && o->model_out != NULL)
        rc = write_model(o->model_out, forest, o->force, err);
    sm_iforest_destroy(forest);
    return rc;
}

static int run_mahalanobis(const options *o, const anomaly_input *in, const sm_progress *progress,
                           double *scores, double *default_threshold, sm_error *err)
{
    sm_mcd_params p;
    sm_mcd_params_init(&p);
    p.seed = o->seed;
    p.n_threads = o->threads;
    p.progress = *progress;
    sm_mcd *mcd = NULL;
    int rc = sm_mcd_fit(&p, in->x.data, in->x.n, in->x.d, in->x.ld, &mcd, err);
    if (rc == SM_OK)
        rc = sm_mcd_distance(mcd, scores, in->x.data, in->x.n, in->x.d, in->x.ld, o->threads, err);
    if (rc == SM_OK)
        *default_threshold = sm_chi2_quantile(0.975, (double)sm_mcd_dof(mcd));
    sm_mcd_destroy(mcd);
    return rc;
}

/* Distances to the segment centres: as a k-means run recorded them
 * (--kmeans-run), to given centres in the matrix's units (--centers), or
 * else to each segment's mean on robustly standardised columns, so that a
 * feature in large units (money) does not decide every distance alone. */
static int run_centroid(const options *o, const anomaly_input *in, double *scores, sm_error *err)
{
    const sm_matrix *x = &in->x;
    if (in->run_distance != NULL)
        return sm_centroid_distance_scores(scores, NULL, NULL, in->run_distance, x->n, in->labels, in->k,
                                           o->threads, err);
    if (in->centers != NULL)
        return sm_centroid_outliers(scores, NULL, NULL, x->data, x->n, x->d, x->ld, in->labels, in->centers,
                                    in->k, o->threads, err);
    double *median = malloc(x->d * sizeof *median), *scale = malloc(x->d * sizeof *scale);
    float *z = malloc(x->n * x->ld * sizeof *z);
    int rc = median && scale && z ? SM_OK : sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    if (rc == SM_OK)
        rc = sm_robust_column_stats(median, scale, x->data, x->n, x->d, x->ld, o->threads, err);
    if (rc == SM_OK) {
        for (size_t i = 0; i < x->n; i++)
            for (size_t j = 0; j < x->d; j++) {
                double v = (double)x->data[i * x->ld + j] - median[j];
                z[i * x->ld + j] = (float)(scale[j] > 0 ? v / scale[j] : v);
            }
        rc = sm_centroid_outliers(scores, NULL, NULL, z, x->n, x->d, x->ld, in->labels, NULL, in->k,
                                  o->threads, err);
    }
    free(median);
    free(scale);
    free(z);
    return rc;
}

/* Per-basket robust z of amount and of item count against the customer's
 * own baskets; the customer's score is the largest basket score. */
static int run_transactions(const options *o, const anomaly_input *in, detector_result *r,
                            sm_error *err)
{
    const size_t n = in->x.n;
    const uint64_t m = in->tx_offsets[n];
    double *customer_items = malloc(n * sizeof *customer_items);
    r->tx_amount_z = malloc((m ? m : 1) * sizeof *r->tx_amount_z);
    r->tx_items_z = malloc((m ? m : 1) * sizeof *r->tx_items_z);
    r->tx_score = malloc((m ? m : 1) * sizeof *r->tx_score);
    int rc = customer_items && r->tx_amount_z && r->tx_items_z && r->tx_score
                 ? SM_OK
                 : sm_error_set(err, SM_ERR_NOMEM, "out of memory for %" PRIu64 " baskets", m);
    /* Basket amounts and sizes are right-skewed (log-normal-like): judged on
     * a log scale, a customer's ordinary variation does not read as extreme
     * while a 100x order still does. */
    double *log_amount = malloc((m ? m : 1) * sizeof *log_amount);
    double *log_items = malloc((m ? m : 1) * sizeof *log_items);
    if (rc == SM_OK && (log_amount == NULL || log_items == NULL))
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for %" PRIu64 " baskets", m);
    for (uint64_t t = 0; rc == SM_OK && t < m; t++) {
        log_amount[t] = log1p(SM_MAX(in->tx_amount[t], 0.0));
        log_items[t] = log1p(in->tx_items[t]);
    }
    if (rc == SM_OK)
        rc = sm_transaction_outliers(r->tx_amount_z, r->score, NULL, in->tx_offsets, log_amount, n,
                                     (uint32_t)o->min_history, o->threads, err);
    if (rc == SM_OK)
        rc = sm_transaction_outliers(r->tx_items_z, customer_items, NULL, in->tx_offsets, log_items,
                                     n, (uint32_t)o->min_history, o->threads, err);
    free(log_amount);
    free(log_items);
    if (rc == SM_OK) {
        for (size_t i = 0; i < n; i++)
            r->score[i] = SM_MAX(r->score[i], customer_items[i]);
        for (uint64_t t = 0; t < m; t++)
            r->tx_score[t] = SM_MAX(r->tx_amount_z[t], r->tx_items_z[t]);
    }
    free(customer_items);
    return rc;
}

static int run_detector(const options *o, const anomaly_input *in, const sm_progress *progress,
                        detector_result *r, sm_error *err)
{
    const size_t n = in->x.n;
    r->score = malloc(n * sizeof *r->score);
    r->flag = malloc(n);
    if (r->score == NULL || r->flag == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu scores", n);
    double default_threshold = 3.5;
    int rc;
    switch (r->id) {
    case SM_DETECTOR_IFOREST:
        rc = run_iforest(o, in, progress, r->score, err);
        default_threshold = 0.5;
        break;
    case SM_DETECTOR_CENTROID:
        rc = run_centroid(o, in, r->score, err);
        break;
    case SM_DETECTOR_TRANSACTION:
        rc = run_transactions(o, in, r, err);
        break;
    default:
        rc = run_mahalanobis(o, in, progress, r->score, &default_threshold, err);
        break;
    }
    if (rc != SM_OK)
        return rc;
    if (o->have_contamination) {
        rc = sm_anomaly_threshold(&r->threshold, r->score, n, o->contamination, err);
        if (rc != SM_OK)
            return rc;
        snprintf(r->rule, sizeof r->rule, "top %g of rows (--contamination)", o->contamination);
    } else if (o->have_threshold) {
        r->threshold = o->threshold;
        snprintf(r->rule, sizeof r->rule, "--threshold");
    } else {
        r->threshold = default_threshold;
        snprintf(r->rule, sizeof r->rule, "default for %s", sm_detector_name(r->id));
    }
    r->flagged = sm_anomaly_flag(r->flag, NULL, r->score, n, r->threshold, r->id);
    return SM_OK;
}

/* Under --method all, whether a detector's failure means only that it does
 * not apply to this data: too few rows for it (the kernels name the field
 * "n": MCD needs n >= d + 2, a tree n >= 2) or data it cannot use (MCD with
 * every column constant). Everything else (memory, I/O, a model file that
 * does not fit) still fails the command, and so does an Isolation Forest the
 * user asked to save or load. */
static bool cannot_run_on_this_data(const options *o, int detector, int rc, const sm_error *err)
{
    if (detector == SM_DETECTOR_IFOREST && (o->model_in != NULL || o->model_out != NULL))
        return false;
    return rc == SM_ERR_NUMERIC || (rc == SM_ERR_INVALID_ARG && strcmp(err->field, "n") == 0);
}

/* --- outputs ---------------------------------------------------------------------- */

/* The detector whose score is `score` (the first that ran). */
static const detector_result *primary(const detector_result *det, size_t n_det)
{
    for (size_t k = 0; k < n_det; k++)
        if (!det[k].skipped)
            return &det[k];
    return &det[0]; /* not reached: a run with every detector skipped fails first */
}

/* Names of the detectors that flagged row i, joined by '+', or "none". */
static void flagged_by(const detector_result *det, size_t n_det, size_t i, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t k = 0; k < n_det; k++)
        if (!det[k].skipped && det[k].flag[i]) {
            size_t len = strlen(buf);
            snprintf(buf + len, cap - len, "%s%s", len ? "+" : "", sm_detector_name(det[k].id));
        }
    if (buf[0] == '\0')
        snprintf(buf, cap, "none");
}

static int write_results(const options *o, const anomaly_input *in, const detector_result *det,
                         size_t n_det, sm_error *err)
{
    sm_output *out = NULL;
    int rc = sm_output_open(o->out_path, o->force, &out, err);
    if (rc != SM_OK)
        return rc;
    FILE *f = sm_output_stream(out);
    const char *ext = sm_path_extension(o->out_path);
    const bool jsonl = strcmp(ext, "jsonl") == 0 || strcmp(ext, "json") == 0;
    const bool store = in->customers != NULL;
    const bool with_detector = o->all || store;
    char who[64], num[32];
    const detector_result *first = primary(det, n_det);
    if (!jsonl) {
        fputs(store ? "customer_id,score,flag" : "row,score,flag", f);
        if (with_detector)
            fputs(",detector", f);
        for (size_t k = 0; o->all && k < n_det; k++)
            fprintf(f, ",%s_score,%s_flag", sm_detector_name(det[k].id), sm_detector_name(det[k].id));
        fputc('\n', f);
    }
    for (size_t i = 0; i < in->x.n; i++) {
        uint8_t any = 0;
        for (size_t k = 0; k < n_det; k++)
            any |= !det[k].skipped && det[k].flag[i];
        flagged_by(det, n_det, i, who, sizeof who);
        const char *name = row_name(in, i, num, sizeof num);
        if (jsonl) {
            if (store) {
                fputs("{\"customer_id\":", f);
                sm_json_put_string(f, name);
            } else {
                fprintf(f, "{\"row\":%s", name);
            }
            fputs(",\"score\":", f);
            sm_json_put_double(f, first->score[i]);
            fprintf(f, ",\"flag\":%d", any);
            if (with_detector) {
                fputs(",\"detector\":", f);
                sm_json_put_string(f, who);
            }
            for (size_t k = 0; o->all && k < n_det; k++) {
                const char *dn = sm_detector_name(det[k].id);
                if (det[k].skipped) { /* not computed: null, never a 0 that reads as a result */
                    fprintf(f, ",\"%s_score\":null,\"%s_flag\":null", dn, dn);
                    continue;
                }
                fprintf(f, ",\"%s_score\":", dn);
                sm_json_put_double(f, det[k].score[i]);
                fprintf(f, ",\"%s_flag\":%d", dn, det[k].flag[i]);
            }
            fputs("}\n", f);
        } else {
            if (store)
                sm_csv_put_text(f, name, ',');
            else
                fputs(name, f);
            fputc(',', f);
            sm_csv_put_double(f, first->score[i]);
            fprintf(f, ",%d", any);
            if (with_detector)
                fprintf(f, ",%s", who);
            for (size_t k = 0; o->all && k < n_det; k++) {
                if (det[k].skipped) { /* empty cells: not computed */
                    fputs(",,", f);
                    continue;
                }
                fputc(',', f);
                sm_csv_put_double(f, det[k].score[i]);
                fprintf(f, ",%d", det[k].flag[i]);
            }
            fputc('\n', f);
        }
    }
    if (ferror(f)) {
        sm_output_abort(out);
        return sm_error_set_at(err, SM_ERR_IO, o->out_path, 0, 0, NULL, "write failed");
    }
    return sm_output_commit(out, err);
}

/* The flagged purchases: one row per basket above the threshold, with the
 * store's basket id and the invoice/order key it was imported with (the
 * id alone names nothing outside the store). */
static int write_transactions(const options *o, const anomaly_input *in, const detector_result *r,
                              sm_error *err)
{
    sm_output *out = NULL;
    int rc = sm_output_open(o->tx_out, o->force, &out, err);
    if (rc != SM_OK)
        return rc;
    FILE *f = sm_output_stream(out);
    const char *ext = sm_path_extension(o->tx_out);
    const bool jsonl = strcmp(ext, "jsonl") == 0 || strcmp(ext, "json") == 0;
    if (!jsonl)
        fputs("customer_id,time,basket,basket_key,amount,items,amount_z,items_z,score\n", f);
    char when[32];
    for (size_t i = 0; i < in->x.n; i++)
        for (uint64_t t = in->tx_offsets[i]; t < in->tx_offsets[i + 1]; t++) {
            if (!(r->tx_score[t] > r->threshold))
                continue;
            const sm_basket_id b = in->tx_basket[t];
            const char *key = b < in->basket_keys.n ? in->basket_keys.keys[b] : "";
            sm_format_time_iso(in->tx_time[t], when);
            if (jsonl) {
                fputs("{\"customer_id\":", f);
                sm_json_put_string(f, in->keys.keys[in->customers[i]]);
                fprintf(f, ",\"time\":\"%s\",\"basket\":%" SM_PRI_BASKET ",\"basket_key\":", when, b);
                if (key[0] != '\0')
                    sm_json_put_string(f, key);
                else
                    fputs("null", f);
                fputs(",\"amount\":", f);
                sm_json_put_double(f, in->tx_amount[t]);
                fprintf(f, ",\"items\":%.0f,\"amount_z\":", in->tx_items[t]);
                sm_json_put_double(f, r->tx_amount_z[t]);
                fputs(",\"items_z\":", f);
                sm_json_put_double(f, r->tx_items_z[t]);
                fputs(",\"score\":", f);
                sm_json_put_double(f, r->tx_score[t]);
                fputs("}\n", f);
                continue;
            }
            sm_csv_put_text(f, in->keys.keys[in->customers[i]], ',');
            fprintf(f, ",%s,%" SM_PRI_BASKET ",", when, b);
            sm_csv_put_text(f, key, ',');
            fputc(',', f);
            sm_csv_put_double(f, in->tx_amount[t]);
            fprintf(f, ",%.0f,", in->tx_items[t]);
            sm_csv_put_double(f, r->tx_amount_z[t]);
            fputc(',', f);
            sm_csv_put_double(f, r->tx_items_z[t]);
            fputc(',', f);
            sm_csv_put_double(f, r->tx_score[t]);
            fputc('\n', f);
        }
    if (ferror(f)) {
        sm_output_abort(out);
        return sm_error_set_at(err, SM_ERR_IO, o->tx_out, 0, 0, NULL, "write failed");
    }
    return sm_output_commit(out, err);
}

/* The run's details: which score, each detector's cut or why it was
 * skipped, and where the centroid detector's centres came from. */
static int render_details(const options *o, const anomaly_input *in, const detector_result *det, size_t n_det,
                          char **json, sm_error *err)
{
    size_t len = 0;
    *json = NULL;
    FILE *f = open_memstream(json, &len);
    if (f == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for the run record");
    fprintf(f, "{\"score\":\"%s\",\"seed\":%" PRIu64 ",\"detectors\":[",
            sm_detector_name(primary(det, n_det)->id), o->seed);
    for (size_t k = 0; k < n_det; k++) {
        fprintf(f, "%s{\"name\":\"%s\",", k ? "," : "", sm_detector_name(det[k].id));
        if (det[k].skipped) {
            fputs("\"skipped\":", f);
            sm_json_put_string(f, det[k].why);
        } else {
            fputs("\"threshold\":", f);
            sm_json_put_double(f, det[k].threshold);
            fprintf(f, ",\"flagged\":%zu", det[k].flagged);
        }
        if (det[k].id == SM_DETECTOR_CENTROID && in->kmeans_run != 0)
            fprintf(f, ",\"centres\":\"k-means run\",\"kmeans_run\":%" PRIu64, in->kmeans_run);
        else if (det[k].id == SM_DETECTOR_CENTROID)
            fprintf(f, ",\"centres\":\"segment means, robustly standardised\",\"segments_run\":%" PRIu64,
                    in->segments_run);
        fputc('}', f);
    }
    fputc(']', f);
    if (o->want[SM_DETECTOR_IFOREST])
        fprintf(f, ",\"trees\":%" PRIu64 ",\"sample\":%" PRIu64, o->trees, o->sample);
    if (o->have_contamination) {
        fputs(",\"contamination\":", f);
        sm_json_put_double(f, o->contamination);
    }
    fputc('}', f);
    if (fclose(f) != 0 || *json == NULL) {
        free(*json);
        *json = NULL;
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for the run record");
    }
    return SM_OK;
}

/* The run in the store: one assignment row per scored customer with the
 * first detector's score and the any-detector flag; thresholds and counts in
 * the record. */
static int store_run(sm_store *store, const options *o, const anomaly_input *in,
                     const detector_result *det, size_t n_det, int64_t started, uint64_t *run_id,
                     sm_error *err)
{
    const size_t n = in->x.n;
    const detector_result *first = primary(det, n_det);
    char *details = NULL;
    sm_assignment *rows = malloc(n * sizeof *rows);
    if (rows == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu assignment rows", n);
    size_t any_flagged = 0;
    for (size_t i = 0; i < n; i++) {
        sm_assignment_clear(&rows[i]);
        uint8_t any = 0;
        for (size_t k = 0; k < n_det; k++)
            any |= !det[k].skipped && det[k].flag[i];
        rows[i].anomaly_flag = any;
        rows[i].anomaly_score = (float)first->score[i];
        any_flagged += any;
    }
    int rc = render_details(o, in, det, n_det, &details, err);
    if (rc == SM_OK) {
        sm_run_description run = {.kind = "anomalies", .started = started, .finished = (int64_t)time(NULL),
                                  .as_of = in->as_of, .features = (const char *const *)in->x.column_names,
                                  .n_features = (uint32_t)in->x.d, .details_json = details};
        run.counts[run.n_counts++] = (sm_run_pair){"customers", (double)n};
        run.counts[run.n_counts++] = (sm_run_pair){"flagged", (double)any_flagged};
        rc = sm_run_store(store, &run, in->customers, rows, n, run_id, err);
    }
    free(details);
    free(rows);
    return rc;
}

typedef struct ranked {
    double score;
    size_t row;
} ranked;

static int by_score_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return (x->row > y->row) - (x->row < y->row);
}

typedef struct feature_z {
    double z;
    size_t col;
} feature_z;

static int by_abs_z_desc(const void *a, const void *b)
{
    const feature_z *x = a, *y = b;
    double ax = fabs(x->z), ay = fabs(y->z);
    if (ax != ay)
        return ax < ay ? 1 : -1;
    return (x->col > y->col) - (x->col < y->col);
}

/* Top rows by the first detector's score, each with its three features
 * furthest from the column median in robust z units. */
static int print_summary(FILE *f, const options *o, const anomaly_input *in,
                         const detector_result *det, size_t n_det, sm_error *err)
{
    const sm_matrix *x = &in->x;
    const detector_result *first = primary(det, n_det);
    fprintf(f, "segmint anomalies: %zu %s x %zu features from %s\n", x->n,
            in->customers ? "customers" : "rows", x->d, in->source);
    bool hint = false;
    for (size_t k = 0; k < n_det; k++) {
        if (det[k].skipped) {
            fprintf(f, "  %-12s skipped: %s\n", sm_detector_name(det[k].id), det[k].why);
            continue;
        }
        fprintf(f, "  %-12s flagged %zu (%.2f%%): score > %.6g (%s)\n", sm_detector_name(det[k].id),
                det[k].flagged, 100.0 * (double)det[k].flagged / (double)x->n, det[k].threshold,
                det[k].rule);
        hint |= !o->have_contamination && !o->have_threshold && det[k].flagged * 10 > x->n;
        if (det[k].id == SM_DETECTOR_CENTROID && in->kmeans_run != 0)
            fprintf(f, "  %-12s centres: k-means run %" PRIu64 "'s, distances as it measured them (its "
                       "scaled space, its features)\n", "", in->kmeans_run);
        else if (det[k].id == SM_DETECTOR_CENTROID && in->centers != NULL)
            fprintf(f, "  %-12s centres: %s, distances in the matrix's units\n", "", o->centers_path);
        else if (det[k].id == SM_DETECTOR_CENTROID)
            fprintf(f, "  %-12s centres: segment means of the robustly standardised features (not "
                       "k-means centres)\n", "");
    }
    if (hint)
        fprintf(f, "  note: a default cut flags over 10%% of the rows (skewed or zero-inflated "
                   "features); --contamination C flags a fixed share\n");
    size_t top = SM_MIN((size_t)o->top, x->n);
    if (top == 0)
        return SM_OK;
    double *median = malloc(x->d * sizeof *median), *scale = malloc(x->d * sizeof *scale);
    ranked *rank = malloc(x->n * sizeof *rank);
    feature_z *fz = malloc(x->d * sizeof *fz);
    int rc = median && scale && rank && fz ? SM_OK : sm_error_set(err, SM_ERR_NOMEM, "out of memory");
    if (rc == SM_OK)
        rc = sm_robust_column_stats(median, scale, x->data, x->n, x->d, x->ld, o->threads, err);
    if (rc == SM_OK) {
        for (size_t i = 0; i < x->n; i++)
            rank[i] = (ranked){first->score[i], i};
        qsort(rank, x->n, sizeof *rank, by_score_desc);
        fprintf(f, "top %zu by %s score (feature = value, robust z, column median):\n", top,
                sm_detector_name(first->id));
        char who[64], num[32];
        for (size_t r = 0; r < top; r++) {
            size_t i = rank[r].row;
            flagged_by(det, n_det, i, who, sizeof who);
            fprintf(f, "  %2zu. %s %s  score %.4g  flagged: %s\n     ", r + 1,
                    in->customers ? "customer" : "row", row_name(in, i, num, sizeof num), rank[r].score,
                    who);
            for (size_t j = 0; j < x->d; j++) {
                double v = x->data[i * x->ld + j], dev = v - median[j];
                /* A column with no spread: any departure is infinitely unusual. */
                fz[j] = (feature_z){scale[j] > 0 ? dev / scale[j] : (dev == 0 ? 0.0 : copysign(INFINITY, dev)), j};
            }
            qsort(fz, x->d, sizeof *fz, by_abs_z_desc);
            for (size_t q = 0; q < SM_MIN((size_t)3, x->d); q++) {
                size_t j = fz[q].col;
                fprintf(f, "%s%s = %.6g (z %+.1f, median %.6g)", q ? "; " : "", x->column_names[j],
                        (double)x->data[i * x->ld + j], fz[q].z, median[j]);
            }
            fputc('\n', f);
        }
    }
    free(median);
    free(scale);
    free(rank);
    free(fz);
    return rc;
}

static int parse_options(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->trees = 100;
    o->sample = 256;
    o->top = 10;
    o->min_history = 5;
    const char *method = "iforest";
    enum { OPT_MATRIX = 256, OPT_STORE, OPT_AS_OF, OPT_FEATURES, OPT_NO_STORE, OPT_METHOD, OPT_LABELS,
           OPT_CENTERS, OPT_KMEANS_RUN, OPT_SEGMENTS_RUN, OPT_MIN_HISTORY, OPT_TREES, OPT_SAMPLE, OPT_CONTAMINATION, OPT_THRESHOLD,
           OPT_SEED, OPT_MODEL_OUT, OPT_MODEL_IN, OPT_OUT, OPT_TX_OUT, OPT_TOP, OPT_THREADS, OPT_FORCE,
           OPT_QUIET };
    static const struct option long_options[] = {
        {"matrix", required_argument, NULL, OPT_MATRIX},
        {"store", required_argument, NULL, OPT_STORE},
        {"as-of", required_argument, NULL, OPT_AS_OF},
        {"features", required_argument, NULL, OPT_FEATURES},
        {"no-store", no_argument, NULL, OPT_NO_STORE},
        {"method", required_argument, NULL, OPT_METHOD},
        {"labels", required_argument, NULL, OPT_LABELS},
        {"centers", required_argument, NULL, OPT_CENTERS},
        {"kmeans-run", required_argument, NULL, OPT_KMEANS_RUN},
        {"segments-run", required_argument, NULL, OPT_SEGMENTS_RUN},
        {"min-history", required_argument, NULL, OPT_MIN_HISTORY},
        {"trees", required_argument, NULL, OPT_TREES},
        {"sample", required_argument, NULL, OPT_SAMPLE},
        {"contamination", required_argument, NULL, OPT_CONTAMINATION},
        {"threshold", required_argument, NULL, OPT_THRESHOLD},
        {"seed", required_argument, NULL, OPT_SEED},
        {"model-out", required_argument, NULL, OPT_MODEL_OUT},
        {"model-in", required_argument, NULL, OPT_MODEL_IN},
        {"out", required_argument, NULL, OPT_OUT},
        {"tx-out", required_argument, NULL, OPT_TX_OUT},
        {"top", required_argument, NULL, OPT_TOP},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"force", no_argument, NULL, OPT_FORCE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {NULL, 0, NULL, 0}};
    const sm_cli_command *cmd = &sm_cmd_anomalies;
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (opt) {
        case OPT_MATRIX: o->matrix_path = optarg; break;
        case OPT_STORE: o->store_dir = optarg; break;
        case OPT_AS_OF: o->as_of_text = optarg; break;
        case OPT_FEATURES: o->features_name = optarg; break;
        case OPT_NO_STORE: o->no_store = true; break;
        case OPT_METHOD: method = optarg; break;
        case OPT_LABELS: o->labels_path = optarg; break;
        case OPT_CENTERS: o->centers_path = optarg; break;
        case OPT_KMEANS_RUN:
            if (strcmp(optarg, "latest") == 0)
                o->kmeans_run = 0;
            else if (!sm_cli_parse_u64(cmd, "--kmeans-run", optarg, 1, UINT64_MAX, &o->kmeans_run))
                return SM_EXIT_USAGE;
            o->have_kmeans_run = true;
            break;
        case OPT_SEGMENTS_RUN:
            if (!sm_cli_parse_u64(cmd, "--segments-run", optarg, 0, UINT64_MAX, &o->segments_run))
                return SM_EXIT_USAGE;
            o->have_segments_run = true;
            break;
        case OPT_MIN_HISTORY:
            if (!sm_cli_parse_u64(cmd, "--min-history", optarg, 3, 1000000, &o->min_history))
                return SM_EXIT_USAGE;
            break;
        case OPT_TREES:
            if (!sm_cli_parse_u64(cmd, "--trees", optarg, 1, SM_IFOREST_MAX_TREES, &o->trees))
                return SM_EXIT_USAGE;
            break;
        case OPT_SAMPLE:
            if (!sm_cli_parse_u64(cmd, "--sample", optarg, 2, SM_IFOREST_MAX_SAMPLE, &o->sample))
                return SM_EXIT_USAGE;
            break;
        case OPT_CONTAMINATION:
            if (!sm_cli_parse_double(cmd, "--contamination", optarg, -INFINITY, INFINITY, &o->contamination))
                return SM_EXIT_USAGE;
            if (!(o->contamination > 0.0 && o->contamination <= 0.5))
                return sm_cli_usage_error(cmd, "--contamination: %s is outside (0, 0.5]", optarg);
            o->have_contamination = true;
            break;
        case OPT_THRESHOLD:
            if (!sm_cli_parse_double(cmd, "--threshold", optarg, -INFINITY, INFINITY, &o->threshold))
                return SM_EXIT_USAGE;
            o->have_threshold = true;
            break;
        case OPT_SEED:
            if (!sm_cli_parse_u64(cmd, "--seed", optarg, 0, UINT64_MAX, &o->seed))
                return SM_EXIT_USAGE;
            break;
        case OPT_MODEL_OUT: o->model_out = optarg; break;
        case OPT_MODEL_IN: o->model_in = optarg; break;
        case OPT_OUT: o->out_path = optarg; break;
        case OPT_TX_OUT: o->tx_out = optarg; break;
        case OPT_TOP:
            if (!sm_cli_parse_u64(cmd, "--top", optarg, 0, 1000000, &o->top))
                return SM_EXIT_USAGE;
            break;
        case OPT_THREADS:
            if (!sm_cli_parse_threads(cmd, optarg, &o->threads))
                return SM_EXIT_USAGE;
            break;
        case OPT_FORCE: o->force = true; break;
        case OPT_QUIET: o->quiet = true; break;
        default:
            return sm_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return sm_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if ((o->matrix_path == NULL) == (o->store_dir == NULL))
        return sm_cli_usage_error(cmd, "give one input: --matrix FILE or --store DIR");
    const bool store = o->store_dir != NULL;
    if (!store && (o->as_of_text || o->features_name || o->no_store || o->have_segments_run ||
                   o->have_kmeans_run || o->tx_out))
        return sm_cli_usage_error(cmd, "--as-of, --features, --no-store, --segments-run, --kmeans-run and "
                                       "--tx-out need --store");
    if (store && (o->labels_path || o->centers_path))
        return sm_cli_usage_error(cmd, "with --store the segments come from a stored run: use "
                                       "--kmeans-run ID|latest or --segments-run ID");
    if (o->have_kmeans_run && o->have_segments_run)
        return sm_cli_usage_error(cmd, "give --kmeans-run (the run's k-means distances) or --segments-run "
                                       "(its segments, centred here), not both");
    if (o->centers_path && !o->labels_path)
        return sm_cli_usage_error(cmd, "--centers needs --labels FILE (which centre each row belongs to)");
    if (strcmp(method, "iforest") == 0) {
        o->want[SM_DETECTOR_IFOREST] = true;
    } else if (strcmp(method, "centroid") == 0) {
        o->want[SM_DETECTOR_CENTROID] = true;
    } else if (strcmp(method, "mahalanobis") == 0) {
        o->want[SM_DETECTOR_MAHALANOBIS] = true;
    } else if (strcmp(method, "transactions") == 0) {
        if (!store)
            return sm_cli_usage_error(cmd, "--method transactions needs --store (each customer's "
                                           "purchase history)");
        o->want[SM_DETECTOR_TRANSACTION] = true;
    } else if (strcmp(method, "all") == 0) {
        o->all = true;
        o->want[SM_DETECTOR_IFOREST] = o->want[SM_DETECTOR_MAHALANOBIS] = true;
        o->want[SM_DETECTOR_CENTROID] = o->labels_path != NULL || o->have_segments_run || o->have_kmeans_run;
        o->want[SM_DETECTOR_TRANSACTION] = store;
    } else {
        return sm_cli_usage_error(cmd, "--method: expected iforest, centroid, mahalanobis, "
                                       "transactions or all, got '%s'", method);
    }
    if (o->want[SM_DETECTOR_CENTROID] && !store && o->labels_path == NULL)
        return sm_cli_usage_error(cmd, "--method centroid needs --labels FILE (a cluster label per row)");
    if (o->tx_out && !o->want[SM_DETECTOR_TRANSACTION])
        return sm_cli_usage_error(cmd, "--tx-out needs --method transactions or all");
    if (o->have_threshold && o->all)
        return sm_cli_usage_error(cmd, "--threshold applies to one method; with --method all use "
                                       "--contamination or the defaults");
    if (o->have_threshold && o->have_contamination)
        return sm_cli_usage_error(cmd, "give --threshold or --contamination, not both");
    if ((o->model_in || o->model_out) && !o->want[SM_DETECTOR_IFOREST])
        return sm_cli_usage_error(cmd, "--model-in/--model-out save Isolation Forests: use --method "
                                       "iforest or all");
    if (o->model_in && o->model_out)
        return sm_cli_usage_error(cmd, "give --model-in or --model-out, not both");
    return -1; /* parsed */
}

static int run_anomalies(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_anomalies, argc, argv))
        return SM_EXIT_OK;
    options o;
    int parsed = parse_options(argc, argv, &o);
    if (parsed >= 0)
        return parsed;
    const int64_t started = (int64_t)time(NULL);
    sm_error err;
    sm_error_clear(&err);
    anomaly_input in;
    memset(&in, 0, sizeof in);
    in.source = o.matrix_path ? o.matrix_path : o.store_dir;
    detector_result det[MAX_DETECTORS];
    memset(det, 0, sizeof det);
    size_t n_det = 0;
    const int order[MAX_DETECTORS] = {SM_DETECTOR_IFOREST, SM_DETECTOR_MAHALANOBIS, SM_DETECTOR_CENTROID,
                                      SM_DETECTOR_TRANSACTION};
    for (size_t k = 0; k < MAX_DETECTORS; k++)
        if (o.want[order[k]])
            det[n_det++].id = order[k];

    sm_store *store = NULL;
    uint64_t run_id = 0;
    sm_cli_progress bar;
    sm_progress progress = sm_cli_progress_start(&bar, o.quiet);
    int rc;
    if (o.store_dir != NULL) {
        rc = read_store(&o, &store, &in, &progress, &err);
    } else {
        rc = sm_matrix_read(o.matrix_path, &in.x, &err);
        if (rc == SM_OK && o.labels_path != NULL)
            rc = read_labels(o.labels_path, in.x.n, &in, &err);
        if (rc == SM_OK && o.centers_path != NULL)
            rc = read_centers(o.centers_path, &in, &err);
    }
    size_t ran = 0;
    for (size_t k = 0; k < n_det && rc == SM_OK; k++) {
        rc = run_detector(&o, &in, &progress, &det[k], &err);
        if (rc != SM_OK && o.all && cannot_run_on_this_data(&o, det[k].id, rc, &err)) {
            det[k].skipped = true;
            snprintf(det[k].why, sizeof det[k].why, "%s", err.msg);
            sm_error_clear(&err);
            rc = SM_OK;
        }
        ran += rc == SM_OK && !det[k].skipped;
    }
    sm_cli_progress_end(&bar);
    for (size_t k = 0; k < n_det && rc == SM_OK; k++)
        if (det[k].skipped)
            fprintf(stderr, "segmint: warning: --method all: %s skipped: %s\n", sm_detector_name(det[k].id),
                    det[k].why);
    if (rc == SM_OK && ran == 0)
        rc = sm_error_set_at(&err, SM_ERR_INVALID_ARG, in.source, 0, 0, "method",
                             "no detector can run on these %zu rows (see the warnings above)", in.x.n);
    if (rc == SM_OK && o.out_path != NULL)
        rc = write_results(&o, &in, det, n_det, &err);
    if (rc == SM_OK && o.tx_out != NULL)
        rc = write_transactions(&o, &in, &det[n_det - 1], &err);
    if (rc == SM_OK && store != NULL && !o.no_store)
        rc = store_run(store, &o, &in, det, n_det, started, &run_id, &err);
    if (rc == SM_OK && !o.quiet) {
        /* Keep stdout clean when the results go there. */
        FILE *f = o.out_path != NULL && strcmp(o.out_path, "-") == 0 ? stderr : stdout;
        rc = print_summary(f, &o, &in, det, n_det, &err);
        if (rc == SM_OK && o.model_out != NULL)
            fprintf(f, "model: %s\n", o.model_out);
        if (rc == SM_OK && run_id != 0)
            fprintf(f, "stored as run %" PRIu64 " in %s\n", run_id, o.store_dir);
    }
    for (size_t k = 0; k < n_det; k++) {
        free(det[k].score);
        free(det[k].flag);
        free(det[k].tx_amount_z);
        free(det[k].tx_items_z);
        free(det[k].tx_score);
    }
    input_free(&in);
    sm_store_close(store);
    return rc == SM_OK ? SM_EXIT_OK : sm_cli_fail(&err);
}
