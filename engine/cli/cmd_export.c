/* SPDX-License-Identifier: MIT */
/* `segmint export`: re-exports a stored run as CSV or JSON Lines. */
#include <getopt.h>
#include <string.h>

#include "engine/assignments.h"
#include "engine/cli/cli.h"
#include "engine/output.h"
#include "engine/run_record.h"
#include "segmint/store.h"

static const char usage[] =
    "usage: segmint export --store DIR [--run ID|latest] [--format csv|jsonl] [--out FILE] [--force]\n"
    "\n"
    "Writes a stored run's assignment rows, one per customer, in the documented layout\n"
    "(README: Output formats). Exporting the same run twice gives identical bytes.\n"
    "  --run ID|latest   which run (default latest; see segmint runs)\n"
    "  --format F        csv or jsonl (default: from --out's extension, else csv)\n"
    "  --out FILE        output file (default: standard output)\n"
    "  --force           overwrite --out if it exists\n";

static int run_export(int argc, char **argv);
const sm_cli_command sm_cmd_export = {"export", "write a stored run as CSV or JSON Lines", usage, run_export};

static int run_export(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_export, argc, argv))
        return SM_EXIT_OK;
    const char *store_dir = NULL, *format = NULL, *out_path = "-";
    uint64_t run_id = 0;
    bool force = false;
    static const struct option options[] = {
        {"store", required_argument, NULL, 's'}, {"run", required_argument, NULL, 'r'},
        {"format", required_argument, NULL, 'f'}, {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'F'},        {NULL, 0, NULL, 0}};
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 's': store_dir = optarg; break;
        case 'r':
            if (!sm_cli_parse_run_id(&sm_cmd_export, optarg, &run_id))
                return SM_EXIT_USAGE;
            break;
        case 'f': format = optarg; break;
        case 'o': out_path = optarg; break;
        case 'F': force = true; break;
        default: return sm_cli_usage_error(&sm_cmd_export, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (store_dir == NULL || optind < argc)
        return sm_cli_usage_error(&sm_cmd_export, "--store DIR is required (and no other arguments)");
    if (format == NULL) {
        const char *ext = sm_path_extension(out_path);
        format = strcmp(ext, "jsonl") == 0 || strcmp(ext, "json") == 0 ? "jsonl" : "csv";
    }
    bool jsonl = strcmp(format, "jsonl") == 0;
    if (!jsonl && strcmp(format, "csv") != 0)
        return sm_cli_usage_error(&sm_cmd_export, "--format: expected csv or jsonl, got '%s'", format);

    sm_error err;
    sm_error_clear(&err);
    sm_store *store = NULL;
    sm_run_loaded run = {0};
    sm_assignments rows = {0};
    sm_key_table customers = {0}, items = {0};
    sm_output *output = NULL;
    int rc = sm_store_open(store_dir, SM_STORE_READ_ONLY, &store, &err);
    if (rc == SM_OK)
        rc = sm_run_load(store, run_id, &run, &err);
    if (rc == SM_OK)
        rc = sm_store_run_assignments(store, run.info.id, &rows, &err);
    if (rc == SM_OK && rows.value_size != SM_ASSIGNMENT_BYTES)
        rc = sm_error_set_at(&err, SM_ERR_STORAGE, store_dir, 0, 0, NULL,
                             "run %" PRIu64 " has %u-byte assignment values, not segmint's %d-byte rows", run.info.id,
                             rows.value_size, SM_ASSIGNMENT_BYTES);
    if (rc == SM_OK)
        rc = sm_store_load_keys(store, SM_KEYS_CUSTOMERS, &customers, &err);
    if (rc == SM_OK)
        rc = sm_store_load_keys(store, SM_KEYS_ITEMS, &items, &err);
    if (rc == SM_OK)
        rc = sm_output_open(out_path, force, &output, &err);
    if (rc == SM_OK) {
        sm_assignment_names names = {
            (const char *const *)customers.keys, customers.n, (const char *const *)items.keys, items.n,
            run.segment_names, run.n_segments, run.rfm_segment_names, run.n_rfm_segments,
            run.lifecycle_names, run.n_lifecycle};
        FILE *f = sm_output_stream(output);
        if (!jsonl)
            sm_assignment_csv_header(f);
        for (uint64_t i = 0; i < rows.n && rc == SM_OK; i++) {
            sm_assignment a;
            rc = sm_assignment_decode(rows.values + i * SM_ASSIGNMENT_BYTES, &a, &err);
            if (rc != SM_OK)
                break;
            if (jsonl)
                sm_assignment_jsonl_row(f, rows.customers[i], &a, &names);
            else
                sm_assignment_csv_row(f, rows.customers[i], &a, &names);
        }
        rc = rc == SM_OK ? sm_output_commit(output, &err) : (sm_output_abort(output), rc);
    }
    sm_key_table_free(&customers);
    sm_key_table_free(&items);
    sm_assignments_free(&rows);
    sm_run_loaded_free(&run);
    sm_store_close(store);
    return rc == SM_OK ? SM_EXIT_OK : sm_cli_fail(&err);
}
