/* SPDX-License-Identifier: MIT */
/* `segmint gen`: writes a synthetic transaction log plus its truth files. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datasets/gen.h"
#include "engine/cli/cli.h"
#include "engine/output.h"

static const char usage[] =
    "usage: segmint gen --customers N --out FILE.csv [options]\n"
    "\n"
    "Writes a realistic synthetic transaction log: planted behavioural segments\n"
    "(champions, loyal, occasional, new, lapsing), Zipf item popularity, planted\n"
    "co-purchase rules, Nov-Dec seasonality, returns as C invoices and a few planted\n"
    "anomalies. Same seed, same bytes, whatever the thread count.\n"
    "\n"
    "  --customers N       number of customers (required)\n"
    "  --out FILE.csv      transaction log: invoice,customer_id,time,item,description,quantity,price\n"
    "  --truth FILE        per-customer truth (default: FILE.truth.csv beside --out)\n"
    "  --rules FILE        planted rules (default: FILE.rules.csv beside --out)\n"
    "  --seed S            random seed (default 1)\n"
    "  --items N           catalogue size (default 2000)\n"
    "  --start YYYY-MM-DD  first day of the log (default 2023-01-01)\n"
    "  --days D            length of the log in days (default 730)\n"
    "  --anomaly-rate R    share of customers with a planted anomaly (default 0.005)\n"
    "  --threads T         threads (default: all cores)\n"
    "  --force             overwrite existing files\n"
    "  --quiet             no progress line\n";

static int parse_day(const char *text, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(text, "%Y-%m-%d", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* "dir/name.csv" -> "dir/name<suffix>" */
static char *sibling_path(const char *path, const char *suffix)
{
    size_t len = strlen(path);
    const char *ext = sm_path_extension(path);
    if (ext[0] != '\0')
        len -= strlen(ext) + 1;
    char *out = malloc(len + strlen(suffix) + 1);
    if (out != NULL) {
        memcpy(out, path, len);
        strcpy(out + len, suffix);
    }
    return out;
}

static int run_gen(int argc, char **argv);
const sm_cli_command sm_cmd_gen = {"gen", "generate a synthetic transaction log with known truth", usage, run_gen};

static int run_gen(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_gen, argc, argv))
        return SM_EXIT_OK;
    sm_gen_params params;
    sm_gen_params_init(&params);
    const char *out_path = NULL, *truth_arg = NULL, *rules_arg = NULL;
    bool force = false, quiet = false, have_customers = false;
    enum { OPT_CUSTOMERS = 256, OPT_OUT, OPT_TRUTH, OPT_RULES, OPT_SEED, OPT_ITEMS, OPT_START, OPT_DAYS,
           OPT_ANOMALY, OPT_THREADS, OPT_FORCE, OPT_QUIET };
    static const struct option options[] = {
        {"customers", required_argument, NULL, OPT_CUSTOMERS}, {"out", required_argument, NULL, OPT_OUT},
        {"truth", required_argument, NULL, OPT_TRUTH},         {"rules", required_argument, NULL, OPT_RULES},
        {"seed", required_argument, NULL, OPT_SEED},           {"items", required_argument, NULL, OPT_ITEMS},
        {"start", required_argument, NULL, OPT_START},         {"days", required_argument, NULL, OPT_DAYS},
        {"anomaly-rate", required_argument, NULL, OPT_ANOMALY}, {"threads", required_argument, NULL, OPT_THREADS},
        {"force", no_argument, NULL, OPT_FORCE},               {"quiet", no_argument, NULL, OPT_QUIET},
        {NULL, 0, NULL, 0}};
    opterr = 0;
    int opt;
    uint64_t value;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_CUSTOMERS:
            if (!sm_cli_parse_u64(&sm_cmd_gen, "--customers", optarg, 1, (uint64_t)1 << 31, &params.n_customers))
                return SM_EXIT_USAGE;
            have_customers = true;
            break;
        case OPT_OUT: out_path = optarg; break;
        case OPT_TRUTH: truth_arg = optarg; break;
        case OPT_RULES: rules_arg = optarg; break;
        case OPT_SEED:
            if (!sm_cli_parse_u64(&sm_cmd_gen, "--seed", optarg, 0, UINT64_MAX, &params.seed))
                return SM_EXIT_USAGE;
            break;
        case OPT_ITEMS:
            if (!sm_cli_parse_u64(&sm_cmd_gen, "--items", optarg, 100, 10000000, &value))
                return SM_EXIT_USAGE;
            params.n_items = (uint32_t)value;
            break;
        case OPT_START:
            if (parse_day(optarg, &params.start_time) != 0)
                return sm_cli_usage_error(&sm_cmd_gen, "--start: expected YYYY-MM-DD, got '%s'", optarg);
            break;
        case OPT_DAYS:
            if (!sm_cli_parse_u64(&sm_cmd_gen, "--days", optarg, 30, 36500, &value))
                return SM_EXIT_USAGE;
            params.days = (uint32_t)value;
            break;
        case OPT_ANOMALY:
            if (!sm_cli_parse_double(&sm_cmd_gen, "--anomaly-rate", optarg, 0.0, 0.2, &params.anomaly_rate))
                return SM_EXIT_USAGE;
            break;
        case OPT_THREADS:
            if (!sm_cli_parse_threads(&sm_cmd_gen, optarg, &params.n_threads))
                return SM_EXIT_USAGE;
            break;
        case OPT_FORCE: force = true; break;
        case OPT_QUIET: quiet = true; break;
        default:
            return sm_cli_usage_error(&sm_cmd_gen, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return sm_cli_usage_error(&sm_cmd_gen, "unexpected argument '%s'", argv[optind]);
    if (!have_customers || out_path == NULL)
        return sm_cli_usage_error(&sm_cmd_gen, "--customers and --out are required");

    char *truth_path = truth_arg ? strdup(truth_arg) : sibling_path(out_path, ".truth.csv");
    char *rules_path = rules_arg ? strdup(rules_arg) : sibling_path(out_path, ".rules.csv");
    sm_error err;
    sm_error_clear(&err);
    sm_output *tx = NULL, *truth = NULL, *rules = NULL;
    int rc = truth_path && rules_path ? SM_OK : sm_error_set(&err, SM_ERR_NOMEM, "out of memory");
    if (rc == SM_OK)
        rc = sm_output_open(out_path, force, &tx, &err);
    if (rc == SM_OK)
        rc = sm_output_open(truth_path, force, &truth, &err);
    if (rc == SM_OK)
        rc = sm_output_open(rules_path, force, &rules, &err);
    sm_gen_summary summary;
    sm_cli_progress bar;
    sm_progress progress = sm_cli_progress_start(&bar, quiet);
    double started = sm_cli_now();
    if (rc == SM_OK)
        rc = sm_gen_write(&params, sm_output_stream(tx), sm_output_stream(truth), sm_output_stream(rules),
                          &progress, &summary, &err);
    sm_cli_progress_end(&bar);
    /* Commit the log last: its presence means the truth files are complete. */
    if (rc == SM_OK)
        rc = sm_output_commit(truth, &err), truth = NULL;
    if (rc == SM_OK)
        rc = sm_output_commit(rules, &err), rules = NULL;
    if (rc == SM_OK)
        rc = sm_output_commit(tx, &err), tx = NULL;
    sm_output_abort(tx);
    sm_output_abort(truth);
    sm_output_abort(rules);
    if (rc != SM_OK) {
        free(truth_path);
        free(rules_path);
        return sm_cli_fail(&err);
    }
    if (!quiet) {
        printf("wrote %s: %" PRIu64 " rows, %" PRIu64 " customers, %" PRIu64 " invoices, %" PRIu64
               " return lines, %" PRIu64 " planted anomalies (%.1fs)\n",
               out_path, summary.rows, params.n_customers, summary.invoices, summary.return_lines,
               summary.anomalies, sm_cli_now() - started);
        printf("planted segments:");
        for (int s = 0; s < SM_GEN_SEGMENTS; s++)
            printf(" %s %" PRIu64 "%s", sm_gen_segment_name(s), summary.per_segment[s],
                   s + 1 < SM_GEN_SEGMENTS ? "," : "\n");
        printf("truth: %s, planted rules: %s\n", truth_path, rules_path);
    }
    free(truth_path);
    free(rules_path);
    return SM_EXIT_OK;
}
