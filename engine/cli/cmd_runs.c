/* SPDX-License-Identifier: MIT */
/* `segmint runs`: the runs a store holds, newest last. */
#include <getopt.h>
#include <string.h>

#include "engine/cli/cli.h"
#include "engine/json.h"
#include "engine/output.h"
#include "segmint/store.h"
#include "storage/fields.h"

static const char usage[] =
    "usage: segmint runs --store DIR [--json]\n"
    "\n"
    "Lists the runs stored by segmint run (and by kmeans/anomalies/clv/rfm with --store):\n"
    "id, time, kind, customers assigned, segments, as-of date and duration.\n"
    "  --json   one JSON array of {id, created, kind, customers, segments, as_of, seconds}\n";

static int run_runs(int argc, char **argv);
const sm_cli_command sm_cmd_runs = {"runs", "list the runs stored in a store", usage, run_runs};

static int run_runs(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_runs, argc, argv))
        return SM_EXIT_OK;
    const char *store_dir = NULL;
    bool json = false;
    static const struct option options[] = {{"store", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
                                            {NULL, 0, NULL, 0}};
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == 's')
            store_dir = optarg;
        else if (opt == 'j')
            json = true;
        else
            return sm_cli_usage_error(&sm_cmd_runs, "unknown option '%s'", argv[optind - 1]);
    }
    if (store_dir == NULL || optind < argc)
        return sm_cli_usage_error(&sm_cmd_runs, "--store DIR is required (and nothing else)");
    sm_error err;
    sm_store *store;
    int rc = sm_store_open(store_dir, SM_STORE_READ_ONLY, &store, &err);
    if (rc != SM_OK)
        return sm_cli_fail(&err);
    sm_run_info *runs = NULL;
    size_t n = 0;
    rc = sm_store_runs_list(store, &runs, &n, &err);
    if (rc != SM_OK) {
        sm_store_close(store);
        return sm_cli_fail(&err);
    }
    if (json)
        fputc('[', stdout);
    else if (n == 0)
        printf("no runs in %s\n", store_dir);
    else
        printf("%5s  %-20s  %-10s  %10s  %8s  %-20s  %9s\n", "run", "created", "kind", "customers", "segments",
               "as of", "seconds");
    for (size_t i = 0; i < n; i++) {
        sm_json record;
        sm_error parse_err;
        bool parsed = sm_json_parse(runs[i].record, runs[i].record_len, &record, &parse_err) == SM_OK;
        const char *kind = parsed ? sm_json_get_string(&record, "kind", "?") : "?";
        const char *as_of = parsed ? sm_json_get_string(&record, "as_of", "") : "";
        const sm_json *segments = parsed ? sm_json_get(&record, "segments") : NULL;
        size_t k = segments != NULL && segments->type == SM_JSON_ARRAY ? segments->n : 0;
        double seconds = -1.0;
        const char *started = parsed ? sm_json_get_string(&record, "started", NULL) : NULL;
        const char *finished = parsed ? sm_json_get_string(&record, "finished", NULL) : NULL;
        int64_t t0, t1;
        if (started && finished && sm_parse_time_iso(started, strlen(started), &t0) == SM_FIELD_OK &&
            sm_parse_time_iso(finished, strlen(finished), &t1) == SM_FIELD_OK)
            seconds = (double)(t1 - t0);
        char created[32];
        sm_format_time_iso(runs[i].created, created);
        if (json) {
            printf("%s{\"id\":%" PRIu64 ",\"created\":\"%s\",\"kind\":", i ? "," : "", runs[i].id, created);
            sm_json_put_string(stdout, kind);
            printf(",\"customers\":%" PRIu64 ",\"segments\":%zu,\"as_of\":", runs[i].n_assignments, k);
            if (as_of[0])
                sm_json_put_string(stdout, as_of);
            else
                fputs("null", stdout);
            fputs(",\"seconds\":", stdout);
            if (seconds >= 0)
                printf("%.0f", seconds);
            else
                fputs("null", stdout);
            fputc('}', stdout);
        } else {
            char count[32], duration[32] = "-";
            sm_cli_format_count(count, sizeof count, runs[i].n_assignments);
            if (seconds >= 0)
                snprintf(duration, sizeof duration, "%.0f", seconds);
            printf("%5" PRIu64 "  %-20s  %-10s  %10s  %8zu  %-20s  %9s\n", runs[i].id, created, kind, count, k,
                   as_of[0] ? as_of : "-", duration);
        }
        if (parsed)
            sm_json_free(&record);
    }
    if (json)
        fputs("]\n", stdout);
    sm_run_info_free(runs, n);
    sm_store_close(store);
    return SM_EXIT_OK;
}
