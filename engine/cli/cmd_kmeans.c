/* SPDX-License-Identifier: MIT */
/*
 * `segmint kmeans`: clusters a matrix file (CSV or .npy) or a store's feature
 * matrix, optionally choosing k by silhouette, and writes labels, centers
 * (scaled and original units), a summary and, for a store, a run with one
 * assignment row per customer. The input becomes one sm_matrix with column
 * names whichever the source, so every later step is shared.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/cli/cli.h"
#include "engine/kmeans_sweep.h"
#include "engine/matrix_io.h"
#include "engine/output.h"
#include "engine/run_record.h"
#include "engine/scale.h"
#include "kernels/cluster_metrics.h"
#include "segmint/kmeans.h"
#include "segmint/store.h"

static const char usage[] =
    "usage: segmint kmeans (--matrix FILE | --store DIR [--features NAME]) -k K|auto [options]\n"
    "\n"
    "Clusters the rows of a matrix (CSV with an optional header, or NumPy .npy float32/float64)\n"
    "or of a store's feature matrix (segmint features) with k-means.\n"
    "\n"
    "input\n"
    "  --matrix FILE          CSV or .npy, one row per point\n"
    "  --store DIR            the store; its feature matrix NAME (default \"default\") is clustered\n"
    "                         and the result is stored as a run (runs/assignments)\n"
    "  --features NAME        feature matrix name in the store\n"
    "  --columns a,b,c        use only these columns (by header name; x1.. when there is none)\n"
    "  --scale zscore|robust|none  column scaling before clustering (default: zscore for a\n"
    "                         store, none for a matrix file)\n"
    "  --log1p COLS           log1p these columns first (comma list, or 'all'); values must be > -1\n"
    "clustering\n"
    "  -k K|auto              clusters; auto sweeps --k-range and keeps the best silhouette\n"
    "  --k-range LO..HI       k values for -k auto (default 2..12)\n"
    "  --init METHOD|FILE     kmeans++ (default), kmeans-par (k-means||), random, or a k x d\n"
    "                         matrix file of initial centers in the scaled space, used as is\n"
    "  --algorithm A          auto (default), lloyd, hamerly, elkan, yinyang, minibatch\n"
    "  --max-iter N           iterations per restart (default 300)\n"
    "  --tol T                stop when the summed squared center shift <= T x mean column\n"
    "                         variance (default 1e-4)\n"
    "  --n-init N             restarts, the lowest inertia is kept (default 1; 10 for random)\n"
    "  --seed S               random seed (default 0); results do not depend on --threads\n"
    "  --silhouette-sample N  rows sampled for the silhouette of -k auto (default 10000, 0 = all)\n"
    "  --threads T            threads (default: all cores)\n"
    "output\n"
    "  --labels FILE          one 0-based label per input row, in input order (.npy int32 or CSV)\n"
    "  --centroids FILE       k x d centers in the space the algorithm ran in (.npy float32 or CSV)\n"
    "  --centroids-original FILE  the centers in the original units\n"
    "  --no-store             with --store: do not write a run\n"
    "  --force                overwrite output files\n"
    "  --quiet                no progress line and no summary\n";

static int run_kmeans(int argc, char **argv);
const sm_cli_command sm_cmd_kmeans = {"kmeans", "cluster customers (or any matrix) with k-means", usage,
                                      run_kmeans};

typedef struct options {
    const char *matrix, *store, *features, *columns, *log1p, *init, *labels, *centroids, *original;
    bool have_scale, k_auto, no_store, force, quiet;
    sm_scale_method scale;
    int k, k_lo, k_hi;
    sm_kmeans_params params;
    uint64_t silhouette_sample;
} options;

/* --- the iteration line ---------------------------------------------------------- */

typedef struct iter_line {
    bool draw;
    int k;
    double last_draw, last_inertia;
    bool open;
} iter_line;

static int on_iteration(void *user, const sm_kmeans_iteration *it)
{
    iter_line *line = user;
    if (line->draw) {
        double now = sm_cli_now();
        if (now - line->last_draw >= 0.1 || it->iteration == 1) {
            double change = line->last_inertia > 0 && it->iteration > 1
                                ? 100.0 * (it->inertia - line->last_inertia) / line->last_inertia
                                : 0.0;
            fprintf(stderr, "\r\033[K  kmeans k=%d  restart %d  iteration %d  inertia %.6g  change %+.4f%%  moved %" PRIu64,
                    line->k, it->restart + 1, it->iteration, it->inertia, change, it->n_changed);
            fflush(stderr);
            line->last_draw = now;
            line->open = true;
        }
        line->last_inertia = it->inertia;
    }
    return sm_cli_interrupted();
}

static void iter_line_end(iter_line *line)
{
    if (line->open) {
        fputc('\n', stderr);
        fflush(stderr);
        line->open = false;
    }
}

/* --- input ------------------------------------------------------------------------ */

/* A store's feature matrix as an sm_matrix (data and names moved over). */
static int load_store(sm_store *store, const char *name, sm_matrix *m, sm_customer_id **customers,
                      sm_error *err)
{
    sm_feature_matrix fm;
    memset(&fm, 0, sizeof fm);
    int rc = sm_store_features_get(store, name, &fm, err);
    if (rc != SM_OK)
        return rc;
    rc = sm_matrix_alloc(m, fm.n, fm.d, err);
    if (rc == SM_OK) {
        for (size_t i = 0; i < fm.n; i++)
            memcpy(m->data + i * m->ld, fm.data + i * fm.ld, fm.d * sizeof(float));
        for (size_t j = 0; j < fm.d; j++) {
            sm_free(m->column_names[j]);
            m->column_names[j] = fm.column_names[j];
            fm.column_names[j] = NULL;
        }
        *customers = fm.customers;
        fm.customers = NULL;
    }
    sm_feature_matrix_free(&fm);
    return rc;
}

/* --- output ----------------------------------------------------------------------- */

static int write_centers(const char *path, const float *c, size_t k, size_t d, char **names, bool force,
                         sm_error *err)
{
    return sm_matrix_write(path, c, k, d, d, (const char *const *)names, force, err);
}

static int write_labels(const char *path, const sm_cluster_id *labels, size_t n, bool force, sm_error *err)
{
    int32_t *l = sm_alloc_array(n, sizeof(int32_t));
    if (l == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu labels", n);
    for (size_t i = 0; i < n; i++)
        l[i] = (int32_t)labels[i];
    int rc = sm_labels_write(path, l, n, force, err);
    sm_free(l);
    return rc;
}

/* --- the command ------------------------------------------------------------------ */

static int fit_one(const options *o, const sm_matrix *x, int k, const float *init, iter_line *line,
                   sm_kmeans **out, sm_error *err)
{
    sm_kmeans_params p = o->params;
    p.k = k;
    p.n = x->n;
    p.d = x->d;
    p.ld = x->ld;
    p.on_iteration = on_iteration;
    p.on_iteration_user = line;
    line->k = k;
    line->last_inertia = 0;
    int rc = sm_kmeans_create(&p, out, err);
    if (rc == SM_OK)
        rc = sm_kmeans_fit(*out, x->data, init, err);
    iter_line_end(line);
    return rc;
}

static bool parse_k_range(const char *text, int *lo, int *hi)
{
    char *end;
    long a = strtol(text, &end, 10);
    if (end == text || end[0] != '.' || end[1] != '.')
        return false;
    const char *rest = end + 2;
    long b = strtol(rest, &end, 10);
    if (end == rest || *end != '\0' || a < 2 || b < a || b > 100000)
        return false;
    *lo = (int)a;
    *hi = (int)b;
    return true;
}

static int parse_options(int argc, char **argv, options *o)
{
    const sm_cli_command *cmd = &sm_cmd_kmeans;
    memset(o, 0, sizeof *o);
    sm_kmeans_params_init(&o->params);
    o->features = "default";
    o->k_lo = 2;
    o->k_hi = 12;
    o->silhouette_sample = 10000;
    enum {
        OPT_MATRIX = 256, OPT_STORE, OPT_FEATURES, OPT_COLUMNS, OPT_SCALE, OPT_LOG1P, OPT_K, OPT_K_RANGE,
        OPT_INIT, OPT_ALGORITHM, OPT_MAX_ITER, OPT_TOL, OPT_N_INIT, OPT_SEED, OPT_SIL, OPT_THREADS,
        OPT_LABELS, OPT_CENTROIDS, OPT_ORIGINAL, OPT_NO_STORE, OPT_FORCE, OPT_QUIET
    };
    static const struct option options[] = {
        {"matrix", required_argument, NULL, OPT_MATRIX}, {"store", required_argument, NULL, OPT_STORE},
        {"features", required_argument, NULL, OPT_FEATURES}, {"columns", required_argument, NULL, OPT_COLUMNS},
        {"scale", required_argument, NULL, OPT_SCALE}, {"log1p", required_argument, NULL, OPT_LOG1P},
        {"k", required_argument, NULL, OPT_K}, {"k-range", required_argument, NULL, OPT_K_RANGE},
        {"init", required_argument, NULL, OPT_INIT}, {"algorithm", required_argument, NULL, OPT_ALGORITHM},
        {"max-iter", required_argument, NULL, OPT_MAX_ITER}, {"tol", required_argument, NULL, OPT_TOL},
        {"n-init", required_argument, NULL, OPT_N_INIT}, {"seed", required_argument, NULL, OPT_SEED},
        {"silhouette-sample", required_argument, NULL, OPT_SIL}, {"threads", required_argument, NULL, OPT_THREADS},
        {"labels", required_argument, NULL, OPT_LABELS}, {"centroids", required_argument, NULL, OPT_CENTROIDS},
        {"centroids-original", required_argument, NULL, OPT_ORIGINAL},
        {"no-store", no_argument, NULL, OPT_NO_STORE}, {"force", no_argument, NULL, OPT_FORCE},
        {"quiet", no_argument, NULL, OPT_QUIET}, {NULL, 0, NULL, 0}};
    bool have_k = false;
    uint64_t u;
    double v;
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "k:", options, NULL)) != -1) {
        switch (opt) {
        case OPT_MATRIX: o->matrix = optarg; break;
        case OPT_STORE: o->store = optarg; break;
        case OPT_FEATURES: o->features = optarg; break;
        case OPT_COLUMNS: o->columns = optarg; break;
        case OPT_SCALE:
            if (sm_scale_method_parse(optarg, &o->scale) != SM_OK)
                return sm_cli_usage_error(cmd, "--scale: '%s' is not zscore, robust or none", optarg);
            o->have_scale = true;
            break;
        case OPT_LOG1P: o->log1p = optarg; break;
        case 'k':
        case OPT_K:
            have_k = true;
            if (strcmp(optarg, "auto") == 0) {
                o->k_auto = true;
            } else {
                if (!sm_cli_parse_u64(cmd, "-k", optarg, 1, INT32_MAX, &u))
                    return SM_EXIT_USAGE;
                o->k = (int)u;
            }
            break;
        case OPT_K_RANGE:
            if (!parse_k_range(optarg, &o->k_lo, &o->k_hi))
                return sm_cli_usage_error(cmd, "--k-range: '%s' is not LO..HI with 2 <= LO <= HI", optarg);
            break;
        case OPT_INIT: o->init = optarg; break;
        case OPT_ALGORITHM:
            if (sm_kmeans_algorithm_parse(optarg, &o->params.algorithm) != SM_OK)
                return sm_cli_usage_error(cmd, "--algorithm: '%s' is not auto, lloyd, hamerly, elkan, yinyang or minibatch",
                                          optarg);
            break;
        case OPT_MAX_ITER:
            if (!sm_cli_parse_u64(cmd, "--max-iter", optarg, 1, INT32_MAX, &u))
                return SM_EXIT_USAGE;
            o->params.max_iter = (int)u;
            break;
        case OPT_TOL:
            if (!sm_cli_parse_double(cmd, "--tol", optarg, 0.0, 1e300, &v))
                return SM_EXIT_USAGE;
            o->params.tol = v;
            break;
        case OPT_N_INIT:
            if (!sm_cli_parse_u64(cmd, "--n-init", optarg, 1, 100000, &u))
                return SM_EXIT_USAGE;
            o->params.n_init = (int)u;
            break;
        case OPT_SEED:
            if (!sm_cli_parse_u64(cmd, "--seed", optarg, 0, UINT64_MAX, &u))
                return SM_EXIT_USAGE;
            o->params.seed = u;
            break;
        case OPT_SIL:
            if (!sm_cli_parse_u64(cmd, "--silhouette-sample", optarg, 0, UINT64_MAX, &u))
                return SM_EXIT_USAGE;
            o->silhouette_sample = u;
            break;
        case OPT_THREADS:
            if (!sm_cli_parse_threads(cmd, optarg, &o->params.n_threads))
                return SM_EXIT_USAGE;
            break;
        case OPT_LABELS: o->labels = optarg; break;
        case OPT_CENTROIDS: o->centroids = optarg; break;
        case OPT_ORIGINAL: o->original = optarg; break;
        case OPT_NO_STORE: o->no_store = true; break;
        case OPT_FORCE: o->force = true; break;
        case OPT_QUIET: o->quiet = true; break;
        case ':': return sm_cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default: return sm_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return sm_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if ((o->matrix == NULL) == (o->store == NULL))
        return sm_cli_usage_error(cmd, "give exactly one of --matrix FILE or --store DIR");
    if (o->no_store && o->store == NULL)
        return sm_cli_usage_error(cmd, "--no-store only applies to --store");
    bool init_file = o->init != NULL && strcmp(o->init, "kmeans++") != 0 && strcmp(o->init, "kmeans-par") != 0 &&
                     strcmp(o->init, "random") != 0;
    if (!have_k && !init_file)
        return sm_cli_usage_error(cmd, "-k K|auto is required (or --init FILE, whose rows give k)");
    if (o->k_auto && init_file)
        return sm_cli_usage_error(cmd, "-k auto cannot start from --init FILE (it fixes k)");
    if (o->init != NULL && !init_file)
        o->params.init = strcmp(o->init, "kmeans++") == 0   ? SM_KMEANS_INIT_PLUSPLUS
                         : strcmp(o->init, "kmeans-par") == 0 ? SM_KMEANS_INIT_PARALLEL
                                                              : SM_KMEANS_INIT_RANDOM;
    if (init_file)
        o->params.init = SM_KMEANS_INIT_GIVEN;
    if (!o->have_scale)
        o->scale = o->store != NULL ? SM_SCALE_ZSCORE : SM_SCALE_NONE;
    return -1; /* parsed */
}

static void print_summary(const options *o, const sm_matrix *m, const sm_kmeans_result *r, const int64_t *sizes,
                          size_t k, double seconds)
{
    printf("k-means of %zu rows x %zu columns (scaling: %s): k=%zu, %s, init %s, seed %" PRIu64 "\n", m->n, m->d,
           sm_scale_method_name(o->scale), k, sm_kmeans_algorithm_name(r->algorithm),
           o->params.init == SM_KMEANS_INIT_GIVEN      ? o->init
           : o->params.init == SM_KMEANS_INIT_PARALLEL ? "kmeans-par"
           : o->params.init == SM_KMEANS_INIT_RANDOM   ? "random"
                                                       : "kmeans++",
           o->params.seed);
    char restart[48] = "";
    if (r->total_iterations > r->n_iter)
        snprintf(restart, sizeof restart, ", restart %d kept", r->best_restart + 1);
    printf("  inertia %.9g, %d iterations (%s%s), %.4f s per iteration, init %.3f s, total %.2f s\n", r->inertia,
           r->n_iter, r->converged ? "converged" : "max-iter reached", restart,
           r->total_iterations > 0 ? r->seconds_iterations / r->total_iterations : 0.0, r->seconds_init, seconds);
    printf("  %-8s %12s %8s\n", "cluster", "size", "share");
    for (size_t j = 0; j < k; j++)
        printf("  %-8zu %12" PRId64 " %7.2f%%\n", j, sizes[j], 100.0 * (double)sizes[j] / (double)m->n);
}

/* Feature means of each segment against the population, in original units. */
static int print_profile(const sm_matrix *orig, const sm_cluster_id *labels, size_t k, int threads, sm_error *err)
{
    size_t d = orig->d;
    double *means = sm_alloc_array(k + 1, d * sizeof(double));
    int64_t *counts = sm_alloc_array(k + 1, sizeof(int64_t));
    int rc = means && counts ? SM_OK : sm_error_set(err, SM_ERR_NOMEM, "out of memory for the profile");
    if (rc == SM_OK)
        rc = km_cluster_means(means, counts, orig->data, orig->n, d, orig->ld, labels, k, threads, err);
    if (rc == SM_OK) {
        double *pop = means + k * d;
        for (size_t f = 0; f < d; f++) {
            double s = 0.0;
            for (size_t j = 0; j < k; j++)
                s += means[j * d + f] * (double)counts[j];
            pop[f] = s / (double)orig->n;
        }
        printf("  profile (segment mean, and its ratio to the population mean):\n  %-20s %14s", "feature", "population");
        for (size_t j = 0; j < k; j++)
            printf(" %18zu", j);
        printf("\n");
        for (size_t f = 0; f < d; f++) {
            printf("  %-20.20s %14.6g", orig->column_names[f], pop[f]);
            for (size_t j = 0; j < k; j++) {
                double v = means[j * d + f];
                if (pop[f] != 0.0)
                    printf(" %11.5g (%4.2fx)", v, v / pop[f]);
                else
                    printf(" %18.6g", v);
            }
            printf("\n");
        }
    }
    sm_free(means);
    sm_free(counts);
    return rc;
}

/* The run record and assignment rows of a store fit. */
static int store_run(sm_store *store, const options *o, const sm_matrix *x, char **names, const sm_kmeans *km,
                     const sm_scaler *scaler, const sm_customer_id *customers, int64_t started, double init_s,
                     double iter_s, uint64_t *run_id, sm_error *err)
{
    const size_t n = x->n, d = x->d, k = (size_t)o->params.k;
    const float *c = sm_kmeans_get_centers(km);
    const sm_cluster_id *labels = sm_kmeans_get_labels(km);
    sm_kmeans_result r;
    sm_kmeans_get_result(km, &r);
    sm_run_segment *segs = sm_calloc(k, sizeof *segs);
    double *centre = sm_alloc_array(2 * k, d * sizeof(double));
    float *orig = sm_alloc_array(k, d * sizeof(float));
    char *seg_names = sm_alloc_array(k, 32);
    sm_assignment *rows = sm_alloc_array(n, sizeof *rows);
    int rc = SM_OK;
    if (!segs || !centre || !orig || !seg_names || !rows) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for the run of %zu customers", n);
        goto out;
    }
    sm_scaler_inverse(scaler, orig, c, k);
    for (size_t j = 0; j < k; j++) {
        snprintf(seg_names + j * 32, 32, "segment %zu", j);
        segs[j].name = seg_names + j * 32;
        for (size_t f = 0; f < d; f++) {
            centre[j * d + f] = c[j * d + f];
            centre[k * d + j * d + f] = orig[j * d + f];
        }
        segs[j].centre = centre + j * d;
        segs[j].centre_original = centre + k * d + j * d;
    }
    for (size_t i = 0; i < n; i++) {
        sm_assignment_clear(&rows[i]);
        rows[i].segment = labels[i];
        segs[labels[i]].size++;
        /* distance to its center in the scaled space, exact in double */
        double e = 0.0;
        for (size_t f = 0; f < d; f++) {
            double t = (double)x->data[i * x->ld + f] - (double)c[labels[i] * d + f];
            e += t * t;
        }
        rows[i].distance = (float)sqrt(e);
    }
    char config[512];
    snprintf(config, sizeof config,
             "kmeans features=%s k=%d scale=%s algorithm=%s init=%s max_iter=%d tol=%g n_init=%d seed=%" PRIu64,
             o->features, o->params.k, sm_scale_method_name(o->scale), sm_kmeans_algorithm_name(r.algorithm),
             o->init ? o->init : "kmeans++", o->params.max_iter, o->params.tol, o->params.n_init, o->params.seed);
    char details[256];
    snprintf(details, sizeof details, "{\"inertia\": %.17g, \"iterations\": %d, \"converged\": %s}", r.inertia,
             r.n_iter, r.converged ? "true" : "false");
    sm_run_description run;
    memset(&run, 0, sizeof run);
    run.kind = "kmeans";
    run.started = started;
    run.finished = (int64_t)time(NULL);
    run.config = config;
    run.features = (const char *const *)names;
    run.n_features = (uint32_t)d;
    run.segments = segs;
    run.n_segments = (uint32_t)k;
    run.counts[run.n_counts++] = (sm_run_pair){"customers", (double)n};
    run.counts[run.n_counts++] = (sm_run_pair){"k", (double)k};
    run.counts[run.n_counts++] = (sm_run_pair){"iterations", (double)r.n_iter};
    run.timings[run.n_timings++] = (sm_run_pair){"init", init_s};
    run.timings[run.n_timings++] = (sm_run_pair){"iterations", iter_s};
    run.details_json = details;
    rc = sm_run_store(store, &run, customers, rows, n, run_id, err);
out:
    sm_free(segs);
    sm_free(centre);
    sm_free(orig);
    sm_free(seg_names);
    sm_free(rows);
    return rc;
}

static int run_kmeans(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_kmeans, argc, argv))
        return SM_EXIT_OK;
    options o;
    int parsed = parse_options(argc, argv, &o);
    if (parsed >= 0)
        return parsed;

    sm_error err;
    sm_error_clear(&err);
    sm_matrix data, init_m;
    memset(&data, 0, sizeof data);
    memset(&init_m, 0, sizeof init_m);
    sm_matrix work;
    memset(&work, 0, sizeof work);
    sm_store *store = NULL;
    sm_customer_id *customers = NULL;
    sm_scaler scaler;
    memset(&scaler, 0, sizeof scaler);
    bool *logs = NULL;
    sm_kmeans *km = NULL;
    sm_k_score *sweep = NULL;
    int64_t *sizes = NULL;
    float *orig = NULL;
    iter_line line = {!o.quiet && isatty(2), 0, 0, 0, false};
    double started = sm_cli_now();
    int64_t started_utc = (int64_t)time(NULL);
    int rc;

    /* input: one sm_matrix with names, from either source */
    if (o.matrix != NULL) {
        rc = sm_matrix_read(o.matrix, &data, &err);
    } else {
        rc = sm_store_open(o.store, o.no_store ? SM_STORE_READ_ONLY : SM_STORE_READ_WRITE, &store, &err);
        if (rc == SM_OK)
            rc = load_store(store, o.features, &data, &customers, &err);
    }
    if (rc == SM_OK && o.columns != NULL)
        rc = sm_matrix_select_columns(&data, o.columns, "--columns", &err);
    if (rc == SM_OK) {
        logs = sm_alloc_array(data.d, sizeof(bool));
        rc = logs ? sm_matrix_column_flags(&data, o.log1p, "--log1p", logs, &err)
                  : sm_error_set(&err, SM_ERR_NOMEM, "out of memory");
    }
    if (rc == SM_OK)
        rc = sm_scaler_fit(&scaler, data.data, data.n, data.d, data.ld, o.scale, logs,
                           (const char *const *)data.column_names, o.params.n_threads, &err);
    if (rc == SM_OK)
        rc = sm_matrix_alloc(&work, data.n, data.d, &err);
    if (rc != SM_OK)
        goto out;
    sm_scaler_transform(&scaler, work.data, work.ld, data.data, data.n, data.ld);
    for (size_t j = 0; j < data.d; j++) {
        char *name = sm_strdup(data.column_names[j]);
        if (name == NULL) {
            rc = sm_error_set(&err, SM_ERR_NOMEM, "out of memory");
            goto out;
        }
        sm_free(work.column_names[j]);
        work.column_names[j] = name;
    }
    if (o.params.init == SM_KMEANS_INIT_GIVEN) {
        rc = sm_matrix_read(o.init, &init_m, &err);
        if (rc != SM_OK)
            goto out;
        if (init_m.d != work.d) {
            rc = sm_error_set_at(&err, SM_ERR_INVALID_ARG, o.init, 0, 0, NULL,
                                 "initial centers have %zu columns, the data %zu", init_m.d, work.d);
            goto out;
        }
        if (o.k != 0 && (size_t)o.k != init_m.n) {
            rc = sm_error_set_at(&err, SM_ERR_INVALID_ARG, o.init, 0, 0, NULL,
                                 "-k %d but the file holds %zu initial centers", o.k, init_m.n);
            goto out;
        }
        o.k = (int)init_m.n;
        /* the kernel takes the centers with leading dimension d */
        for (size_t j = 0; j < init_m.n; j++)
            memmove(init_m.data + j * init_m.d, init_m.data + j * init_m.ld, init_m.d * sizeof(float));
    }

    /* -k auto: fit each k, score it, keep the best silhouette's model */
    double sweep_fit_s = -1.0;
    if (o.k_auto) {
        size_t count = (size_t)(o.k_hi - o.k_lo + 1), fitted = 0, best = 0;
        sweep = sm_calloc(count, sizeof *sweep);
        if (sweep == NULL) {
            rc = sm_error_set(&err, SM_ERR_NOMEM, "out of memory");
            goto out;
        }
        sm_kmeans_params base = o.params;
        base.on_iteration = on_iteration;
        base.on_iteration_user = &line;
        rc = sm_kmeans_sweep(&base, work.data, work.n, work.d, work.ld, o.k_lo, o.k_hi, (size_t)o.silhouette_sample,
                             sweep, &fitted, &best, &km, &err);
        iter_line_end(&line);
        if (rc != SM_OK)
            goto out;
        if (!o.quiet) {
            printf("k sweep (silhouette on %s rows, seed %" PRIu64 "; higher silhouette and Calinski-Harabasz, "
                   "lower Davies-Bouldin are better):\n",
                   o.silhouette_sample == 0 || o.silhouette_sample >= work.n ? "all" : "sampled", o.params.seed);
            printf("  %4s %16s %11s %17s %14s %6s %9s\n", "k", "inertia", "silhouette", "calinski-harabasz",
                   "davies-bouldin", "iters", "seconds");
            for (size_t t = 0; t < fitted; t++)
                printf("  %4d %16.9g %11.4f %17.6g %14.4f %6d %9.2f%s\n", sweep[t].k, sweep[t].inertia,
                       sweep[t].silhouette, sweep[t].calinski_harabasz, sweep[t].davies_bouldin, sweep[t].n_iter,
                       sweep[t].seconds, t == best ? "  <- chosen" : "");
        }
        o.k = sweep[best].k;
        sweep_fit_s = sweep[best].seconds;
    }
    o.params.k = o.k;

    double t0 = sm_cli_now();
    if (km == NULL) /* the sweep already kept its best model */
        rc = fit_one(&o, &work, o.k, o.params.init == SM_KMEANS_INIT_GIVEN ? init_m.data : NULL, &line, &km, &err);
    double fit_s = sweep_fit_s >= 0 ? sweep_fit_s : sm_cli_now() - t0;
    if (rc != SM_OK)
        goto out;
    sm_kmeans_result r;
    sm_kmeans_get_result(km, &r);
    const sm_cluster_id *labels = sm_kmeans_get_labels(km);
    const float *centers = sm_kmeans_get_centers(km);
    size_t k = (size_t)o.k;
    sizes = sm_calloc(k, sizeof *sizes);
    orig = sm_alloc_array(k, work.d * sizeof(float));
    if (sizes == NULL || orig == NULL) {
        rc = sm_error_set(&err, SM_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < work.n; i++)
        sizes[labels[i]]++;
    if (r.fewer_clusters)
        fprintf(stderr, "segmint: warning: %s\n", r.warning);

    if (o.labels != NULL)
        rc = write_labels(o.labels, labels, work.n, o.force, &err);
    if (rc == SM_OK && o.centroids != NULL)
        rc = write_centers(o.centroids, centers, k, work.d, work.column_names, o.force, &err);
    sm_scaler_inverse(&scaler, orig, centers, k);
    if (rc == SM_OK && o.original != NULL)
        rc = write_centers(o.original, orig, k, work.d, work.column_names, o.force, &err);
    uint64_t run_id = 0;
    if (rc == SM_OK && store != NULL && !o.no_store)
        rc = store_run(store, &o, &work, work.column_names, km, &scaler, customers, started_utc, r.seconds_init,
                       r.seconds_iterations, &run_id, &err);
    if (rc != SM_OK)
        goto out;
    if (!o.quiet) {
        print_summary(&o, &work, &r, sizes, k, fit_s);
        if (store != NULL) {
            rc = print_profile(&data, labels, k, o.params.n_threads, &err);
            if (rc != SM_OK)
                goto out;
            if (run_id != 0)
                printf("  stored as run %" PRIu64 " in %s\n", run_id, o.store);
        }
        if (o.labels != NULL)
            printf("  wrote %s\n", o.labels);
        if (o.centroids != NULL)
            printf("  wrote %s\n", o.centroids);
        if (o.original != NULL)
            printf("  wrote %s\n", o.original);
    }
    (void)started;
out:
    iter_line_end(&line);
    sm_kmeans_destroy(km);
    sm_free(sweep);
    sm_free(sizes);
    sm_free(orig);
    sm_free(logs);
    sm_scaler_free(&scaler);
    sm_matrix_free(&work);
    sm_matrix_free(&init_m);
    sm_matrix_free(&data);
    sm_free(customers);
    sm_store_close(store);
    return rc == SM_OK ? SM_EXIT_OK : sm_cli_fail(&err);
}
