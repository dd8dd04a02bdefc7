/* SPDX-License-Identifier: MIT */
/*
 * `segmint diff`: how customers moved between two runs. Segments of run B
 * are matched to run A's by their centres (minimum total distance, the
 * Hungarian algorithm), so a segment keeps A's id when it is "the same"
 * segment; B's unmatched segments get new ids after A's. Centres are
 * compared in original units, each feature standardised by the spread of
 * all centres of both runs, so the two runs' own scalings do not matter.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/assignments.h"
#include "engine/cli/cli.h"
#include "engine/output.h"
#include "engine/run_record.h"
#include "kernels/hungarian.h"
#include "segmint/store.h"

static const char usage[] =
    "usage: segmint diff --store DIR --run A --run B [--json]\n"
    "\n"
    "Migration between two runs: a matrix of customers moving from run A's segments to\n"
    "run B's (B's segments matched to A's by their centres so the same segment keeps its\n"
    "id), and the same for value tiers (key/ordinary/small) and lifecycle stages.\n"
    "  --run ID|latest   give it twice: the earlier run A, then run B\n"
    "  --json            one JSON object instead of tables\n";

static int run_diff(int argc, char **argv);
const sm_cli_command sm_cmd_diff = {"diff", "show how customers moved between two runs", usage, run_diff};

/* Centres (original units) of a run's segments: k x d, NaN-free, or NULL. */
static double *run_centres(const sm_run_loaded *run, uint32_t *d_out)
{
    const sm_json *features = sm_json_get(&run->record, "features");
    const sm_json *segments = sm_json_get(&run->record, "segments");
    if (features == NULL || segments == NULL || features->n == 0 || segments->n == 0)
        return NULL;
    uint32_t d = (uint32_t)features->n;
    double *c = calloc(segments->n * d, sizeof *c);
    for (size_t s = 0; c != NULL && s < segments->n; s++) {
        const sm_json *v = sm_json_get(&segments->items[s], "centre_original");
        if (v == NULL || v->type != SM_JSON_ARRAY || v->n != d) {
            free(c);
            return NULL;
        }
        for (uint32_t j = 0; j < d; j++)
            c[s * d + j] = v->items[j].number;
    }
    *d_out = d;
    return c;
}

static bool same_features(const sm_run_loaded *a, const sm_run_loaded *b)
{
    const sm_json *fa = sm_json_get(&a->record, "features"), *fb = sm_json_get(&b->record, "features");
    if (fa == NULL || fb == NULL || fa->n != fb->n)
        return false;
    for (size_t j = 0; j < fa->n; j++)
        if (fa->items[j].type != SM_JSON_STRING || fb->items[j].type != SM_JSON_STRING ||
            strcmp(fa->items[j].string, fb->items[j].string) != 0)
            return false;
    return true;
}

/* b_to_a[j] = id in A's numbering for B's segment j. */
static bool match_segments(const sm_run_loaded *a, const sm_run_loaded *b, uint32_t *b_to_a, double *distance)
{
    uint32_t ka = a->n_segments, kb = b->n_segments, da = 0, db = 0;
    for (uint32_t j = 0; j < kb; j++) {
        b_to_a[j] = j; /* identity when centres cannot be compared */
        distance[j] = NAN;
    }
    if (ka == 0 || kb == 0 || !same_features(a, b))
        return false;
    double *ca = run_centres(a, &da), *cb = run_centres(b, &db);
    bool ok = ca != NULL && cb != NULL && da == db;
    if (ok) {
        uint32_t d = da;
        /* standardise each feature by the spread of all centres */
        for (uint32_t f = 0; f < d; f++) {
            double sum = 0, sumsq = 0;
            for (uint32_t s = 0; s < ka; s++)
                sum += ca[s * d + f], sumsq += ca[s * d + f] * ca[s * d + f];
            for (uint32_t s = 0; s < kb; s++)
                sum += cb[s * d + f], sumsq += cb[s * d + f] * cb[s * d + f];
            double n = ka + kb, mean = sum / n, sd = sqrt(fmax(sumsq / n - mean * mean, 0.0));
            double scale = sd > 0 ? 1.0 / sd : 1.0;
            for (uint32_t s = 0; s < ka; s++)
                ca[s * d + f] = (ca[s * d + f] - mean) * scale;
            for (uint32_t s = 0; s < kb; s++)
                cb[s * d + f] = (cb[s * d + f] - mean) * scale;
        }
        /* rows = the smaller side, as the solver wants rows <= cols */
        bool b_rows = kb <= ka;
        size_t rows = b_rows ? kb : ka, cols = b_rows ? ka : kb;
        double *cost = malloc(rows * cols * sizeof *cost);
        double *sd = malloc(sm_hungarian_scratch_doubles(rows, cols) * sizeof *sd);
        size_t *si = malloc(sm_hungarian_scratch_indices(rows, cols) * sizeof *si);
        size_t *col = malloc(rows * sizeof *col);
        ok = cost && sd && si && col;
        for (size_t r = 0; ok && r < rows; r++)
            for (size_t c = 0; c < cols; c++) {
                const double *x = b_rows ? cb + r * d : ca + r * d, *y = b_rows ? ca + c * d : cb + c * d;
                double dist = 0;
                for (uint32_t f = 0; f < d; f++)
                    dist += (x[f] - y[f]) * (x[f] - y[f]);
                cost[r * cols + c] = dist;
            }
        if (ok) {
            sm_hungarian(col, cost, rows, cols, sd, si);
            bool *matched_b = calloc(kb, sizeof *matched_b);
            for (size_t r = 0; r < rows; r++) {
                uint32_t jb = (uint32_t)(b_rows ? r : col[r]), ia = (uint32_t)(b_rows ? col[r] : r);
                b_to_a[jb] = ia;
                distance[jb] = sqrt(cost[r * cols + col[r]]);
                if (matched_b)
                    matched_b[jb] = true;
            }
            /* B's extra segments (kb > ka) get ids after A's, in B's order */
            uint32_t next = ka;
            for (uint32_t j = 0; matched_b && j < kb; j++)
                if (!matched_b[j])
                    b_to_a[j] = next++;
            free(matched_b);
        }
        free(cost);
        free(sd);
        free(si);
        free(col);
    }
    free(ca);
    free(cb);
    return ok;
}

typedef struct matrix {
    const char *title;                    /* for people */
    const char *key;                      /* for JSON consumers: an identifier */
    uint32_t rows, cols;
    const char **row_names, **col_names; /* last row/col is "none" */
    uint64_t *count;                      /* (rows) x (cols) */
} matrix;

static void print_matrix(const matrix *m, bool json, bool first)
{
    if (json) {
        printf("%s\"%s\":{\"from\":[", first ? "" : ",", m->key);
        for (uint32_t r = 0; r < m->rows; r++) {
            fputs(r ? "," : "", stdout);
            sm_json_put_string(stdout, m->row_names[r]);
        }
        fputs("],\"to\":[", stdout);
        for (uint32_t c = 0; c < m->cols; c++) {
            fputs(c ? "," : "", stdout);
            sm_json_put_string(stdout, m->col_names[c]);
        }
        fputs("],\"counts\":[", stdout);
        for (uint32_t r = 0; r < m->rows; r++) {
            fputs(r ? ",[" : "[", stdout);
            for (uint32_t c = 0; c < m->cols; c++)
                printf("%s%" PRIu64, c ? "," : "", m->count[r * m->cols + c]);
            fputc(']', stdout);
        }
        fputs("]}", stdout);
        return;
    }
    uint64_t moved = 0, total = 0;
    for (uint32_t r = 0; r < m->rows; r++)
        for (uint32_t c = 0; c < m->cols; c++) {
            total += m->count[r * m->cols + c];
            moved += strcmp(m->row_names[r], m->col_names[c]) != 0 ? m->count[r * m->cols + c] : 0;
        }
    printf("\n%s: %" PRIu64 " of %" PRIu64 " customers changed (%.1f%%); rows = run A, columns = run B\n", m->title,
           moved, total, total ? 100.0 * (double)moved / (double)total : 0.0);
    printf("  %-24s", "");
    for (uint32_t c = 0; c < m->cols; c++)
        printf(" %12.12s", m->col_names[c]);
    putchar('\n');
    for (uint32_t r = 0; r < m->rows; r++) {
        printf("  %-24.24s", m->row_names[r]);
        for (uint32_t c = 0; c < m->cols; c++) {
            char count[32];
            sm_cli_format_count(count, sizeof count, m->count[r * m->cols + c]);
            printf(" %12s", count);
        }
        putchar('\n');
    }
}

static int run_diff(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_diff, argc, argv))
        return SM_EXIT_OK;
    const char *store_dir = NULL;
    uint64_t ids[2];
    int n_ids = 0;
    bool json = false;
    static const struct option options[] = {{"store", required_argument, NULL, 's'},
                                            {"run", required_argument, NULL, 'r'},
                                            {"json", no_argument, NULL, 'j'},
                                            {NULL, 0, NULL, 0}};
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == 's')
            store_dir = optarg;
        else if (opt == 'j')
            json = true;
        else if (opt == 'r') {
            if (n_ids == 2)
                return sm_cli_usage_error(&sm_cmd_diff, "--run is given twice, not more");
            if (!sm_cli_parse_run_id(&sm_cmd_diff, optarg, &ids[n_ids++]))
                return SM_EXIT_USAGE;
        } else
            return sm_cli_usage_error(&sm_cmd_diff, "unknown option '%s'", argv[optind - 1]);
    }
    if (store_dir == NULL || n_ids != 2 || optind < argc)
        return sm_cli_usage_error(&sm_cmd_diff, "--store DIR and two --run options are required");

    sm_error err;
    sm_error_clear(&err);
    sm_store *store = NULL;
    sm_run_loaded run[2];
    memset(run, 0, sizeof run);
    sm_assignments rows[2];
    memset(rows, 0, sizeof rows);
    int rc = sm_store_open(store_dir, SM_STORE_READ_ONLY, &store, &err);
    for (int i = 0; i < 2 && rc == SM_OK; i++) {
        rc = sm_run_load(store, ids[i], &run[i], &err);
        if (rc == SM_OK)
            rc = sm_store_run_assignments(store, run[i].info.id, &rows[i], &err);
        if (rc == SM_OK && rows[i].value_size != SM_ASSIGNMENT_BYTES)
            rc = sm_error_set_at(&err, SM_ERR_STORAGE, store_dir, 0, 0, NULL, "run %" PRIu64 " is not segmint's row layout",
                                 run[i].info.id);
    }
    if (rc != SM_OK) {
        for (int i = 0; i < 2; i++) {
            sm_assignments_free(&rows[i]);
            sm_run_loaded_free(&run[i]);
        }
        sm_store_close(store);
        return sm_cli_fail(&err);
    }
    uint32_t ka = run[0].n_segments, kb = run[1].n_segments;
    uint32_t *b_to_a = calloc(kb + 1, sizeof *b_to_a);
    double *match_distance = calloc(kb + 1, sizeof *match_distance);
    uint32_t seg_cols = SM_MAX(ka, kb) + 1; /* + "none" */
    const char **seg_rows = calloc(ka + 1, sizeof *seg_rows);
    const char **seg_cols_names = calloc(seg_cols, sizeof *seg_cols_names);
    uint32_t nl = SM_MAX(run[0].n_lifecycle, run[1].n_lifecycle);
    const char **life_names = calloc(nl + 1, sizeof *life_names);
    const char *tier_names[4] = {"key", "ordinary", "small", "(none)"};
    matrix seg = {"segments", "segments", ka + 1, seg_cols, seg_rows, seg_cols_names, calloc((size_t)(ka + 1) * seg_cols, sizeof(uint64_t))};
    matrix tier = {"value tiers", "value_tiers", 4, 4, tier_names, tier_names, calloc(16, sizeof(uint64_t))};
    matrix life = {"lifecycle", "lifecycle", nl + 1, nl + 1, life_names, life_names, calloc((size_t)(nl + 1) * (nl + 1), sizeof(uint64_t))};
    bool matched = false;
    if (b_to_a == NULL || match_distance == NULL || seg_rows == NULL || seg_cols_names == NULL ||
        life_names == NULL || seg.count == NULL || tier.count == NULL || life.count == NULL) {
        sm_error_set(&err, SM_ERR_NOMEM, "out of memory comparing runs %" PRIu64 " and %" PRIu64,
                     run[0].info.id, run[1].info.id);
        rc = SM_ERR_NOMEM;
    } else {
        matched = match_segments(&run[0], &run[1], b_to_a, match_distance);
        /* names: segments by A's id (B's new ones by B's name), tiers, lifecycle */
        for (uint32_t s = 0; s < ka; s++)
            seg_rows[s] = run[0].segment_names[s];
        seg_rows[ka] = "(none)";
        for (uint32_t c = 0; c + 1 < seg_cols; c++)
            seg_cols_names[c] = c < ka ? run[0].segment_names[c] : "";
        for (uint32_t j = 0; j < kb; j++)
            if (b_to_a[j] >= ka && b_to_a[j] + 1 < seg_cols)
                seg_cols_names[b_to_a[j]] = run[1].segment_names[j];
        seg_cols_names[seg_cols - 1] = "(none)";
        for (uint32_t s = 0; s < nl; s++)
            life_names[s] = s < run[0].n_lifecycle ? run[0].lifecycle_names[s] : run[1].lifecycle_names[s];
        life_names[nl] = "(none)";
    }

    /* walk both runs' rows in customer order */
    uint64_t i = 0, j = 0, only_a = 0, only_b = 0;
    while (rc == SM_OK && (i < rows[0].n || j < rows[1].n)) {
        sm_customer_id ca = i < rows[0].n ? rows[0].customers[i] : UINT32_MAX;
        sm_customer_id cb = j < rows[1].n ? rows[1].customers[j] : UINT32_MAX;
        if (ca < cb) {
            only_a++, i++;
            continue;
        }
        if (cb < ca) {
            only_b++, j++;
            continue;
        }
        sm_assignment a, b;
        if (sm_assignment_decode(rows[0].values + i * SM_ASSIGNMENT_BYTES, &a, &err) != SM_OK ||
            sm_assignment_decode(rows[1].values + j * SM_ASSIGNMENT_BYTES, &b, &err) != SM_OK) {
            rc = SM_ERR_STORAGE;
            break;
        }
        i++, j++;
        uint32_t from = a.segment < ka ? a.segment : ka;
        uint32_t to = b.segment < kb ? b_to_a[b.segment] : seg_cols - 1;
        if (to >= seg_cols)
            to = seg_cols - 1;
        seg.count[from * seg_cols + to]++;
        tier.count[(a.value_tier < 3 ? a.value_tier : 3) * 4 + (b.value_tier < 3 ? b.value_tier : 3)]++;
        life.count[(a.lifecycle < nl ? a.lifecycle : nl) * (nl + 1) + (b.lifecycle < nl ? b.lifecycle : nl)]++;
    }
    if (rc == SM_OK) {
        if (json) {
            printf("{\"run_a\":%" PRIu64 ",\"run_b\":%" PRIu64 ",\"only_in_a\":%" PRIu64 ",\"only_in_b\":%" PRIu64
                   ",\"segments_matched_by_centres\":%s,\"segment_mapping\":[",
                   run[0].info.id, run[1].info.id, only_a, only_b, matched ? "true" : "false");
            for (uint32_t s = 0; s < kb; s++) {
                printf("%s{\"b\":%" PRIu32 ",\"a\":%" PRIu32 ",\"distance\":", s ? "," : "", s, b_to_a[s]);
                sm_json_put_double(stdout, match_distance[s]);
                fputc('}', stdout);
            }
            fputs("],\"migration\":{", stdout);
            print_matrix(&seg, true, true);
            print_matrix(&tier, true, false);
            print_matrix(&life, true, false);
            fputs("}}\n", stdout);
        } else {
            printf("run %" PRIu64 " -> run %" PRIu64 ": %" PRIu64 " customers in both, %" PRIu64 " only in %" PRIu64
                   ", %" PRIu64 " only in %" PRIu64 "\n",
                   run[0].info.id, run[1].info.id, rows[0].n - only_a, only_a, run[0].info.id, only_b, run[1].info.id);
            if (matched) {
                printf("segments of run %" PRIu64 " matched to run %" PRIu64 "'s by their centres:\n", run[1].info.id,
                       run[0].info.id);
                for (uint32_t s = 0; s < kb; s++)
                    printf("  %-24s -> %-24s (distance %.3f)\n", run[1].segment_names[s],
                           b_to_a[s] < ka ? run[0].segment_names[b_to_a[s]] : "(new segment)", match_distance[s]);
            } else if (kb > 0) {
                printf("segments kept their ids (the runs' features differ or centres are missing)\n");
            }
            print_matrix(&seg, false, true);
            print_matrix(&tier, false, false);
            print_matrix(&life, false, false);
        }
    } else if (rc == SM_ERR_STORAGE) {
        sm_error_set_at(&err, SM_ERR_STORAGE, store_dir, 0, 0, NULL, "an assignment row is damaged");
    }
    free(seg.count), free(tier.count), free(life.count);
    free(seg_rows), free(seg_cols_names), free(life_names);
    free(b_to_a), free(match_distance);
    for (int k = 0; k < 2; k++) {
        sm_assignments_free(&rows[k]);
        sm_run_loaded_free(&run[k]);
    }
    sm_store_close(store);
    return rc == SM_OK ? SM_EXIT_OK : sm_cli_fail(&err);
}
