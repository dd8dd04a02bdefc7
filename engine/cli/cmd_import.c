/* SPDX-License-Identifier: MIT */
/*
 * `segmint import`: loads transaction logs or basket files into a store
 * (created if absent) in one atomic transaction, printing the first rejected
 * rows and a summary. The work is sm_store_import (storage/import.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/cli/cli.h"
#include "segmint/store.h"
#include "storage/fields.h"

static const char usage[] =
    "usage: segmint import --store DIR [--format F] [options] FILE...\n"
    "\n"
    "Imports FILEs into the store in DIR (created if absent) in one transaction:\n"
    "if anything fails, or the import is interrupted or killed, the store is unchanged.\n"
    "\n"
    "formats (--format):\n"
    "  csv            transaction CSV with a header (default); columns from --map or header names\n"
    "  online-retail  UCI Online Retail (InvoiceNo,StockCode,Description,Quantity,InvoiceDate,...)\n"
    "  cdnow          CDNOW log: customer date(YYYYMMDD) quantity dollars (sample: 2 id columns)\n"
    "  fimi           one basket per line, space-separated item ids\n"
    "  basket-csv     one basket per line, comma-separated item names\n"
    "\n"
    "options:\n"
    "  --store DIR          the store directory (required)\n"
    "  --format F           input format (see above)\n"
    "  --map ROLE=COL,...   csv columns by header name or 1-based number; roles: customer, time,\n"
    "                       basket, item, description, quantity, price, amount\n"
    "  --delimiter C        field separator for csv and basket-csv (default ','; 'tab' for tabs)\n"
    "  --time-format FMT    strptime format of the time column (default: ISO 8601 or epoch seconds)\n"
    "  --now DATE           reference time for future dates (ISO 8601 or epoch; default: now)\n"
    "  --future reject|keep rows dated after --now: rejected (default) or kept and flagged\n"
    "  --money-scale N      minor units per currency unit for a new store (default 100)\n"
    "  --strict             the first bad row aborts the import; nothing is written\n"
    "  --force              import files the store has already seen (same sha256)\n"
    "  --memory SIZE        parsed rows held in memory before sorted runs spill to disk (default 1G)\n"
    "  --temp-dir DIR       where spilled runs go (default: the store directory)\n"
    "  --map-size SIZE      initial map size of a new store (default 64M)\n"
    "  --map-max SIZE       hard cap on map growth (default 1T)\n"
    "  --quiet              no progress line and no summary\n"
    "\n"
    "Rejected rows are reported as FILE:LINE:COLUMN: field \"X\": why (the first 20 here, all of\n"
    "them in DIR/rejects-NNNN.txt) and counted by `segmint info`.\n";

static int run(int argc, char **argv);

const sm_cli_command sm_cmd_import = {"import", "load transaction or basket files into a store", usage, run};

enum { SHOW_REJECTS = 20 };

typedef struct reject_printer {
    uint64_t seen;
} reject_printer;

static void print_reject(void *user, const sm_error *reject)
{
    reject_printer *p = user;
    if (p->seen++ < SHOW_REJECTS) {
        char text[SM_ERROR_MSG_MAX + SM_ERROR_PATH_MAX + 128];
        sm_error_format(reject, text, sizeof text);
        fprintf(stderr, "segmint: rejected: %s\n", text);
    }
}

/* "512M", "2G", "1048576" -> bytes (binary suffixes). */
static bool parse_size(const char *option, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        sm_cli_usage_error(&sm_cmd_import, "%s: expected a size such as 512M or 2G, got '%s'", option,
                           text ? text : "");
        return false;
    }
    unsigned long long v = strtoull(text, &end, 10);
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    else if (*end == 't' || *end == 'T')
        shift = 40;
    if (shift)
        end++;
    if (*end != '\0' || errno == ERANGE || v == 0 || (shift && v > (UINT64_MAX >> shift))) {
        sm_cli_usage_error(&sm_cmd_import, "%s: expected a positive size such as 512M or 2G, got '%s'", option, text);
        return false;
    }
    *out = (uint64_t)v << shift;
    return true;
}

static void print_count(FILE *f, uint64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            fputc(',', f);
        fputc(digits[i], f);
    }
}

/* Undoes the creation of a store directory whose first import failed. */
static void remove_new_store(const char *dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t len = strlen(dir) + strlen(files[i]) + 2;
        char *path = malloc(len);
        if (path == NULL)
            return;
        snprintf(path, len, "%s/%s", dir, files[i]);
        unlink(path);
        free(path);
    }
    rmdir(dir); /* only if nothing else is in it */
}

static int run(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_import, argc, argv))
        return SM_EXIT_OK;
    sm_import_options opt;
    sm_import_options_init(&opt);
    const char *store_dir = NULL;
    bool quiet = false;
    const char **files = calloc((size_t)argc, sizeof *files);
    size_t n_files = 0;
    if (files == NULL) {
        fprintf(stderr, "segmint import: out of memory\n");
        return SM_EXIT_FAILURE;
    }
    int exit_code = SM_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = true;
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++)
                files[n_files++] = argv[i];
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            files[n_files++] = a;
            continue;
        }
        if (strcmp(a, "--strict") == 0) {
            opt.strict = true;
            takes_value = false;
        } else if (strcmp(a, "--force") == 0) {
            opt.force = true;
            takes_value = false;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
            takes_value = false;
        } else if (value == NULL) {
            sm_cli_usage_error(&sm_cmd_import, "%s needs a value", a);
            goto out;
        } else if (strcmp(a, "--store") == 0) {
            store_dir = value;
        } else if (strcmp(a, "--format") == 0) {
            if (sm_import_format_parse(value, &opt.format) != SM_OK) {
                sm_cli_usage_error(&sm_cmd_import,
                                   "--format: unknown format '%s' (csv, online-retail, cdnow, fimi, basket-csv)", value);
                goto out;
            }
        } else if (strcmp(a, "--map") == 0) {
            opt.map = value;
        } else if (strcmp(a, "--delimiter") == 0) {
            if (strcmp(value, "tab") == 0 || strcmp(value, "\\t") == 0)
                opt.delimiter = '\t';
            else if (strlen(value) == 1 && value[0] != '"' && value[0] != '\n' && value[0] != '\r')
                opt.delimiter = value[0];
            else {
                sm_cli_usage_error(&sm_cmd_import, "--delimiter: expected one character or 'tab', got '%s'", value);
                goto out;
            }
        } else if (strcmp(a, "--time-format") == 0) {
            opt.time_format = value;
        } else if (strcmp(a, "--now") == 0) {
            if (sm_parse_time_auto(value, strlen(value), &opt.now) != SM_FIELD_OK || opt.now == 0) {
                sm_cli_usage_error(&sm_cmd_import, "--now: expected an ISO 8601 date or epoch seconds, got '%s'",
                                   value);
                goto out;
            }
        } else if (strcmp(a, "--future") == 0) {
            if (strcmp(value, "reject") == 0)
                opt.future = SM_FUTURE_REJECT;
            else if (strcmp(value, "keep") == 0)
                opt.future = SM_FUTURE_KEEP;
            else {
                sm_cli_usage_error(&sm_cmd_import, "--future: expected 'reject' or 'keep', got '%s'", value);
                goto out;
            }
        } else if (strcmp(a, "--money-scale") == 0) {
            uint64_t scale;
            if (!sm_cli_parse_u64(&sm_cmd_import, "--money-scale", value, 1, 1000000, &scale))
                goto out;
            opt.money_scale = (uint32_t)scale;
        } else if (strcmp(a, "--memory") == 0) {
            if (!parse_size("--memory", value, &opt.memory_budget))
                goto out;
        } else if (strcmp(a, "--temp-dir") == 0) {
            opt.temp_dir = value;
        } else if (strcmp(a, "--map-size") == 0) {
            if (!parse_size("--map-size", value, &opt.map_size))
                goto out;
        } else if (strcmp(a, "--map-max") == 0) {
            if (!parse_size("--map-max", value, &opt.map_size_max))
                goto out;
        } else if (strcmp(a, "--threads") == 0) {
            if (!sm_cli_parse_threads(&sm_cmd_import, value, &opt.n_threads))
                goto out;
        } else {
            sm_cli_usage_error(&sm_cmd_import, "unknown option '%s'", a);
            goto out;
        }
        if (takes_value)
            i++;
    }
    if (store_dir == NULL) {
        sm_cli_usage_error(&sm_cmd_import, "--store DIR is required");
        goto out;
    }
    if (n_files == 0) {
        sm_cli_usage_error(&sm_cmd_import, "no input files given");
        goto out;
    }

    sm_error err;
    sm_error_clear(&err);
    sm_store *store;
    struct stat before;
    bool created = stat(store_dir, &before) != 0; /* a failed first import leaves no store behind */
    if (sm_store_open(store_dir, SM_STORE_CREATE | SM_STORE_BULK, &store, &err) != SM_OK) {
        exit_code = sm_cli_fail(&err);
        goto out;
    }
    reject_printer printer = {0};
    opt.on_reject = print_reject;
    opt.reject_user = &printer;
    sm_cli_progress progress_state;
    opt.progress = sm_cli_progress_start(&progress_state, quiet);
    sm_import_result result;
    double started = sm_cli_now();
    int status = sm_store_import(store, files, n_files, &opt, &result, &err);
    sm_cli_progress_end(&progress_state);
    double seconds = sm_cli_now() - started;
    if (printer.seen > SHOW_REJECTS)
        fprintf(stderr, "segmint: ... and %" PRIu64 " more rejected rows%s%s\n", printer.seen - SHOW_REJECTS,
                status == SM_OK ? ": all are listed in " : "", status == SM_OK ? result.rejects_path : "");
    if (status != SM_OK) {
        exit_code = sm_cli_fail(&err);
        sm_store_close(store);
        if (created)
            remove_new_store(store_dir);
        goto out;
    }
    if (!quiet) {
        printf("imported ");
        print_count(stdout, result.rows_read);
        printf(" rows from %zu file%s into %s in %.2f s\n", n_files, n_files == 1 ? "" : "s", sm_store_path(store),
               seconds);
        printf("  stored    ");
        print_count(stdout, result.rows_stored);
        printf(" (");
        print_count(stdout, result.rows_without_customer);
        printf(" without customer, ");
        print_count(stdout, result.returns);
        printf(" returns");
        if (result.future_rows) {
            printf(", ");
            print_count(stdout, result.future_rows);
            printf(" future-dated");
        }
        printf(")\n  rejected  ");
        print_count(stdout, result.rejected);
        if (result.rejected)
            printf(" (listed in %s)", result.rejects_path);
        printf("\n  new       ");
        print_count(stdout, result.new_customers);
        printf(" customers, ");
        print_count(stdout, result.new_items);
        printf(" items, ");
        print_count(stdout, result.new_baskets);
        printf(" baskets\n");
        if (result.map_growths)
            printf("  map grown %" PRIu32 " time%s to %" PRIu64 " MiB\n", result.map_growths,
                   result.map_growths == 1 ? "" : "s", result.map_size >> 20);
    }
    sm_store_close(store);
    exit_code = SM_EXIT_OK;
out:
    free(files);
    return exit_code;
}
