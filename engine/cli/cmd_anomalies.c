/* SPDX-License-Identifier: MIT */
/*
 * `segmint anomalies`: per-row anomaly scores and flags for a feature matrix
 * (Isolation Forest, distance to the own segment's centre, robust
 * Mahalanobis), a saved-forest round trip, and a summary naming the features
 * that make each top row unusual. The detectors are kernels/iforest.c and
 * kernels/robust_outliers.c; this file only reads, composes and writes.
 * Input is a matrix file; a detector set and its input are kept apart
 * (anomaly_input) so store-built features and per-customer transactions can
 * feed the same path.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/cli/cli.h"
#include "engine/matrix_io.h"
#include "engine/output.h"
#include "segmint/anomaly.h"

static const char usage[] =
    "usage: segmint anomalies --matrix FILE [options]\n"
    "\n"
    "Scores every row of a feature matrix for how anomalous it is (higher = more\n"
    "anomalous), flags the rows above a threshold, and summarises the top rows with\n"
    "the features furthest from typical (robust z = (value - median) / (1.4826 MAD),\n"
    "shown in the input's units). Same seed, same scores, whatever the thread count.\n"
    "\n"
    "  --matrix FILE        CSV (optional header) or .npy float32/float64 matrix, one row\n"
    "                       per customer; NaN/inf refused with row and column\n"
    "  --method M           iforest (default) | centroid | mahalanobis | all\n"
    "                         iforest      Isolation Forest score s in (0, 1]\n"
    "                         centroid     robust z of the distance to the row's own\n"
    "                                      cluster centre (needs --labels)\n"
    "                         mahalanobis  squared robust (FastMCD) Mahalanobis distance\n"
    "                         all          iforest + mahalanobis (+ centroid with --labels)\n"
    "  --labels FILE        cluster label per row (CSV column or .npy), for centroid\n"
    "  --trees T            isolation trees (default 100)\n"
    "  --sample PSI         rows drawn per tree (default 256; n when n is smaller)\n"
    "  --contamination C    flag the top C fraction per detector, C in (0, 0.5]\n"
    "  --threshold S        flag scores above S (one method only)\n"
    "                       default thresholds: iforest 0.5 (the paper's and scikit-learn's\n"
    "                       'auto' offset), centroid 3.5, mahalanobis chi2(p, 0.975)\n"
    "  --seed S             random seed (default 0)\n"
    "  --model-out FILE     save the fitted forest (versioned binary, checked on load)\n"
    "  --model-in FILE      score with a saved forest instead of fitting one\n"
    "  --out FILE           per-row results, CSV or .jsonl by extension ('-' = stdout):\n"
    "                       row,score,flag (one method) or, for all,\n"
    "                       row,score,flag,detector,<detector>_score,<detector>_flag...\n"
    "                       where score is the iforest score and detector lists the\n"
    "                       detectors that flagged the row ('iforest+mahalanobis', 'none')\n"
    "  --top N              rows listed in the summary (default 10, 0 = none)\n"
    "  --threads T          threads (default: all cores)\n"
    "  --force              overwrite existing output files\n"
    "  --quiet              no progress line, no summary\n";

static int run_anomalies(int argc, char **argv);
const sm_cli_command sm_cmd_anomalies = {"anomalies", "score and flag anomalous customers (Isolation Forest, robust distances)",
                                         usage, run_anomalies};

enum { MAX_DETECTORS = 3 };

typedef struct options {
    const char *matrix_path, *labels_path, *model_in, *model_out, *out_path;
    bool want[SM_DETECTOR_TRANSACTION + 1];
    bool all;
    uint64_t trees, sample, seed, top;
    double contamination, threshold;
    bool have_contamination, have_threshold;
    int threads;
    bool force, quiet;
} options;

/* What the detectors run on. A store would fill the same fields from its
 * feature matrix (row_keys = customer keys). */
typedef struct anomaly_input {
    sm_matrix x;
    sm_cluster_id *labels; /* n, or NULL */
    size_t k;
} anomaly_input;

/* One detector's results. */
typedef struct detector_result {
    int id;
    double *score;    /* n */
    uint8_t *flag;    /* n */
    double threshold;
    size_t flagged;
    char rule[96];    /* how the threshold was chosen, for the summary */
} detector_result;

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
                                 sm_iforest_n_features(forest), o->matrix_path, in->x.d);
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

static int run_detector(const options *o, const anomaly_input *in, const sm_progress *progress,
                        detector_result *r, sm_error *err)
{
    const size_t n = in->x.n;
    r->score = malloc(n * sizeof *r->score);
    r->flag = malloc(n);
    if (r->score == NULL || r->flag == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu scores", n);
    double default_threshold = 0.0;
    int rc;
    switch (r->id) {
    case SM_DETECTOR_IFOREST:
        rc = run_iforest(o, in, progress, r->score, err);
        default_threshold = 0.5;
        break;
    case SM_DETECTOR_CENTROID:
        rc = sm_centroid_outliers(r->score, NULL, NULL, in->x.data, n, in->x.d, in->x.ld, in->labels,
                                  NULL, in->k, o->threads, err);
        default_threshold = 3.5;
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

/* Names of the detectors that flagged row i, joined by '+', or "none". */
static void flagged_by(const detector_result *det, size_t n_det, size_t i, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t k = 0; k < n_det; k++)
        if (det[k].flag[i]) {
            size_t len = strlen(buf);
            snprintf(buf + len, cap - len, "%s%s", len ? "+" : "", sm_detector_name(det[k].id));
        }
    if (buf[0] == '\0')
        snprintf(buf, cap, "none");
}

static int write_results(const options *o, const detector_result *det, size_t n_det, size_t n,
                         sm_error *err)
{
    sm_output *out = NULL;
    int rc = sm_output_open(o->out_path, o->force, &out, err);
    if (rc != SM_OK)
        return rc;
    FILE *f = sm_output_stream(out);
    const char *ext = sm_path_extension(o->out_path);
    bool jsonl = strcmp(ext, "jsonl") == 0 || strcmp(ext, "json") == 0;
    char who[64];
    if (!jsonl) {
        fputs("row,score,flag", f);
        if (o->all) {
            fputs(",detector", f);
            for (size_t k = 0; k < n_det; k++)
                fprintf(f, ",%s_score,%s_flag", sm_detector_name(det[k].id), sm_detector_name(det[k].id));
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t any = 0;
        for (size_t k = 0; k < n_det; k++)
            any |= det[k].flag[i];
        if (jsonl) {
            fprintf(f, "{\"row\":%zu,\"score\":", i);
            sm_json_put_double(f, det[0].score[i]);
            fprintf(f, ",\"flag\":%d", any);
            if (o->all) {
                flagged_by(det, n_det, i, who, sizeof who);
                fputs(",\"detector\":", f);
                sm_json_put_string(f, who);
                for (size_t k = 0; k < n_det; k++) {
                    fprintf(f, ",\"%s_score\":", sm_detector_name(det[k].id));
                    sm_json_put_double(f, det[k].score[i]);
                    fprintf(f, ",\"%s_flag\":%d", sm_detector_name(det[k].id), det[k].flag[i]);
                }
            }
            fputs("}\n", f);
        } else {
            fprintf(f, "%zu,", i);
            sm_csv_put_double(f, det[0].score[i]);
            fprintf(f, ",%d", any);
            if (o->all) {
                flagged_by(det, n_det, i, who, sizeof who);
                fprintf(f, ",%s", who);
                for (size_t k = 0; k < n_det; k++) {
                    fputc(',', f);
                    sm_csv_put_double(f, det[k].score[i]);
                    fprintf(f, ",%d", det[k].flag[i]);
                }
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
    fprintf(f, "segmint anomalies: %zu rows x %zu features from %s\n", x->n, x->d, o->matrix_path);
    for (size_t k = 0; k < n_det; k++)
        fprintf(f, "  %-11s flagged %zu (%.2f%%): score > %.6g (%s)\n", sm_detector_name(det[k].id),
                det[k].flagged, 100.0 * (double)det[k].flagged / (double)x->n, det[k].threshold,
                det[k].rule);
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
            rank[i] = (ranked){det[0].score[i], i};
        qsort(rank, x->n, sizeof *rank, by_score_desc);
        fprintf(f, "top %zu by %s score (feature = value, robust z, column median):\n", top,
                sm_detector_name(det[0].id));
        char who[64];
        for (size_t r = 0; r < top; r++) {
            size_t i = rank[r].row;
            flagged_by(det, n_det, i, who, sizeof who);
            fprintf(f, "  %2zu. row %zu  score %.4g  flagged: %s\n     ", r + 1, i, rank[r].score, who);
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
    const char *method = "iforest";
    enum { OPT_MATRIX = 256, OPT_STORE, OPT_METHOD, OPT_LABELS, OPT_TREES, OPT_SAMPLE, OPT_CONTAMINATION,
           OPT_THRESHOLD, OPT_SEED, OPT_MODEL_OUT, OPT_MODEL_IN, OPT_OUT, OPT_TOP, OPT_THREADS, OPT_FORCE,
           OPT_QUIET };
    static const struct option long_options[] = {
        {"matrix", required_argument, NULL, OPT_MATRIX},
        {"store", required_argument, NULL, OPT_STORE},
        {"method", required_argument, NULL, OPT_METHOD},
        {"labels", required_argument, NULL, OPT_LABELS},
        {"trees", required_argument, NULL, OPT_TREES},
        {"sample", required_argument, NULL, OPT_SAMPLE},
        {"contamination", required_argument, NULL, OPT_CONTAMINATION},
        {"threshold", required_argument, NULL, OPT_THRESHOLD},
        {"seed", required_argument, NULL, OPT_SEED},
        {"model-out", required_argument, NULL, OPT_MODEL_OUT},
        {"model-in", required_argument, NULL, OPT_MODEL_IN},
        {"out", required_argument, NULL, OPT_OUT},
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
        case OPT_STORE:
            return sm_cli_usage_error(cmd, "--store: this build has no store layer yet; export the "
                                           "features with --matrix");
        case OPT_METHOD: method = optarg; break;
        case OPT_LABELS: o->labels_path = optarg; break;
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
    if (o->matrix_path == NULL)
        return sm_cli_usage_error(cmd, "--matrix FILE is required");
    if (strcmp(method, "iforest") == 0) {
        o->want[SM_DETECTOR_IFOREST] = true;
    } else if (strcmp(method, "centroid") == 0) {
        o->want[SM_DETECTOR_CENTROID] = true;
    } else if (strcmp(method, "mahalanobis") == 0) {
        o->want[SM_DETECTOR_MAHALANOBIS] = true;
    } else if (strcmp(method, "all") == 0) {
        o->all = true;
        o->want[SM_DETECTOR_IFOREST] = o->want[SM_DETECTOR_MAHALANOBIS] = true;
        o->want[SM_DETECTOR_CENTROID] = o->labels_path != NULL;
    } else if (strcmp(method, "transactions") == 0) {
        return sm_cli_usage_error(cmd, "--method transactions needs --store (per-customer "
                                       "transaction histories), which this build does not have yet");
    } else {
        return sm_cli_usage_error(cmd, "--method: expected iforest, centroid, mahalanobis or all, got '%s'",
                                  method);
    }
    if (o->want[SM_DETECTOR_CENTROID] && o->labels_path == NULL)
        return sm_cli_usage_error(cmd, "--method centroid needs --labels FILE (a cluster label per row)");
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
    sm_error err;
    sm_error_clear(&err);
    anomaly_input in;
    memset(&in, 0, sizeof in);
    detector_result det[MAX_DETECTORS];
    memset(det, 0, sizeof det);
    size_t n_det = 0;
    const int order[MAX_DETECTORS] = {SM_DETECTOR_IFOREST, SM_DETECTOR_MAHALANOBIS, SM_DETECTOR_CENTROID};
    for (size_t k = 0; k < MAX_DETECTORS; k++)
        if (o.want[order[k]])
            det[n_det++].id = order[k];

    sm_cli_progress bar;
    sm_progress progress = sm_cli_progress_start(&bar, o.quiet);
    int rc = sm_matrix_read(o.matrix_path, &in.x, &err);
    if (rc == SM_OK && o.labels_path != NULL)
        rc = read_labels(o.labels_path, in.x.n, &in, &err);
    for (size_t k = 0; k < n_det && rc == SM_OK; k++)
        rc = run_detector(&o, &in, &progress, &det[k], &err);
    sm_cli_progress_end(&bar);
    if (rc == SM_OK && o.out_path != NULL)
        rc = write_results(&o, det, n_det, in.x.n, &err);
    if (rc == SM_OK && !o.quiet) {
        /* Keep stdout clean when the results go there. */
        FILE *f = o.out_path != NULL && strcmp(o.out_path, "-") == 0 ? stderr : stdout;
        rc = print_summary(f, &o, &in, det, n_det, &err);
        if (rc == SM_OK && o.model_out != NULL)
            fprintf(f, "model: %s\n", o.model_out);
    }
    for (size_t k = 0; k < n_det; k++) {
        free(det[k].score);
        free(det[k].flag);
    }
    free(in.labels);
    sm_matrix_free(&in.x);
    return rc == SM_OK ? SM_EXIT_OK : sm_cli_fail(&err);
}
