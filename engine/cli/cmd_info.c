/* SPDX-License-Identifier: MIT */
/*
 * `segmint info`: what a store holds, for people (aligned text) or for
 * tools (--json: one object whose keys rows, rejected, customers, items,
 * baskets, first_time, last_time and schema_version are a contract).
 */
#include <stdio.h>
#include <string.h>

#include "engine/cli/cli.h"
#include "engine/output.h"
#include "segmint/store.h"
#include "storage/fields.h"

static const char usage[] =
    "usage: segmint info --store DIR [--json] [--verify]\n"
    "\n"
    "Prints a store's counts (rows, customers, items, baskets, rejected rows), its date\n"
    "range, total amount, schema version and imported files.\n"
    "\n"
    "options:\n"
    "  --store DIR  the store directory (opened read-only)\n"
    "  --json       one JSON object: rows, rejected, customers, items, baskets, first_time,\n"
    "               last_time (ISO 8601, null when no row has a time), schema_version, and more\n"
    "  --verify     first check every page of the store file (for stores from elsewhere)\n";

static int run(int argc, char **argv);

const sm_cli_command sm_cmd_info = {"info", "show what a store holds", usage, run};

/* An amount in minor units as an exact decimal: 974774793 at scale 100 -> 9747747.93 */
static void format_amount(char *buf, size_t cap, int64_t minor, uint32_t scale)
{
    int digits = 0;
    for (uint32_t s = scale; s > 1; s /= 10)
        digits++;
    uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    char fraction[8] = "";
    uint64_t rest = mag % (scale ? scale : 1);
    for (int i = digits - 1; i >= 0 && i < 7; i--) {
        fraction[i] = (char)('0' + rest % 10);
        rest /= 10;
    }
    fraction[digits < 7 ? digits : 7] = '\0';
    snprintf(buf, cap, "%s%" PRIu64 "%s%s", minor < 0 ? "-" : "", mag / (scale ? scale : 1), digits ? "." : "",
             fraction);
}

static void print_json(const sm_store *store, const sm_store_info *info, const sm_store_source *sources,
                       size_t n_sources)
{
    char first[32], last[32], amount[48], customer_amount[48];
    sm_format_time_iso(info->first_time, first);
    sm_format_time_iso(info->last_time, last);
    format_amount(amount, sizeof amount, info->total_amount, info->money_scale);
    format_amount(customer_amount, sizeof customer_amount, info->customer_amount, info->money_scale);
    printf("{\"store\":");
    sm_json_put_string(stdout, sm_store_path(store));
    printf(",\"schema_version\":%" PRIu32, info->schema_version);
    printf(",\"rows\":%" PRIu64 ",\"rejected\":%" PRIu64, info->rows, info->rejected);
    printf(",\"customers\":%" PRIu32 ",\"items\":%" PRIu32 ",\"baskets\":%" PRIu64, info->customers, info->items,
           info->baskets);
    if (info->has_time)
        printf(",\"first_time\":\"%s\",\"last_time\":\"%s\"", first, last);
    else
        printf(",\"first_time\":null,\"last_time\":null");
    printf(",\"tx_rows\":%" PRIu64 ",\"rows_without_customer\":%" PRIu64 ",\"returns\":%" PRIu64
           ",\"future_rows\":%" PRIu64 ",\"basket_items\":%" PRIu64,
           info->tx_rows, info->rows_without_customer, info->returns, info->future_rows, info->basket_items);
    printf(",\"money_scale\":%" PRIu32 ",\"total_amount\":%s,\"total_amount_minor\":%" PRId64
           ",\"customer_amount\":%s,\"customer_amount_minor\":%" PRId64,
           info->money_scale, amount, info->total_amount, customer_amount, info->customer_amount);
    printf(",\"imports\":%" PRIu32 ",\"feature_sets\":%" PRIu32 ",\"runs\":%" PRIu64, info->imports,
           info->feature_sets, info->runs);
    printf(",\"map_size\":%" PRIu64 ",\"used_bytes\":%" PRIu64, info->map_size, info->used_bytes);
    printf(",\"sources\":[");
    for (size_t i = 0; i < n_sources; i++) {
        const sm_store_source *s = &sources[i];
        char when[32];
        sm_format_time_iso(s->imported_at, when);
        printf("%s{\"path\":", i ? "," : "");
        sm_json_put_string(stdout, s->path);
        printf(",\"format\":");
        sm_json_put_string(stdout, s->format);
        printf(",\"sha256\":\"%s\",\"bytes\":%" PRIu64 ",\"rows\":%" PRIu64 ",\"rejected\":%" PRIu64
               ",\"import_id\":%" PRIu32 ",\"imported_at\":\"%s\",\"rejects_file\":",
               s->sha256, s->bytes, s->rows, s->rejected, s->import_id, when);
        if (s->rejects_path[0])
            sm_json_put_string(stdout, s->rejects_path);
        else
            printf("null");
        printf("}");
    }
    printf("]}\n");
}

static void print_text(const sm_store *store, const sm_store_info *info, const sm_store_source *sources,
                       size_t n_sources)
{
    char a[48], b[48], c[48], d[48];
    printf("store          %s\n", sm_store_path(store));
    printf("schema         version %" PRIu32 "\n", info->schema_version);
    sm_cli_format_count(a, sizeof a, info->rows);
    sm_cli_format_count(b, sizeof b, info->rows_without_customer);
    sm_cli_format_count(c, sizeof c, info->returns);
    sm_cli_format_count(d, sizeof d, info->future_rows);
    printf("rows           %s (%s without customer, %s returns, %s future-dated)\n", a, b, c, d);
    sm_cli_format_count(a, sizeof a, info->rejected);
    printf("rejected       %s\n", a);
    sm_cli_format_count(a, sizeof a, info->customers);
    printf("customers      %s\n", a);
    sm_cli_format_count(a, sizeof a, info->items);
    printf("items          %s\n", a);
    sm_cli_format_count(a, sizeof a, info->baskets);
    sm_cli_format_count(b, sizeof b, info->basket_items);
    printf("baskets        %s (%s distinct items in all)\n", a, b);
    if (info->has_time) {
        sm_format_time_iso(info->first_time, a);
        sm_format_time_iso(info->last_time, b);
        printf("dates          %s .. %s\n", a, b);
    } else {
        printf("dates          none (no row has a time)\n");
    }
    format_amount(a, sizeof a, info->total_amount, info->money_scale);
    format_amount(b, sizeof b, info->customer_amount, info->money_scale);
    printf("total amount   %s (customers: %s; net of returns; scale %" PRIu32 " minor units)\n", a, b,
           info->money_scale);
    printf("features       %" PRIu32 " set%s; runs %" PRIu64 "\n", info->feature_sets,
           info->feature_sets == 1 ? "" : "s", info->runs);
    printf("store size     %.1f MiB used of a %.1f MiB map\n", (double)info->used_bytes / 1048576.0,
           (double)info->map_size / 1048576.0);
    printf("sources        %" PRIu32 " file%s in %" PRIu32 " import%s\n", info->sources, info->sources == 1 ? "" : "s",
           info->imports, info->imports == 1 ? "" : "s");
    for (size_t i = 0; i < n_sources; i++) {
        const sm_store_source *s = &sources[i];
        sm_cli_format_count(a, sizeof a, s->rows);
        sm_cli_format_count(b, sizeof b, s->rejected);
        sm_format_time_iso(s->imported_at, c);
        printf("  #%-3" PRIu32 " %s (%s) %s rows, %s rejected, sha256 %.12s, %s\n", s->import_id, s->path, s->format,
               a, b, s->sha256, c);
        if (s->rejects_path[0])
            printf("       rejects: %s\n", s->rejects_path);
    }
}

static int run(int argc, char **argv)
{
    if (sm_cli_wants_help(&sm_cmd_info, argc, argv))
        return SM_EXIT_OK;
    const char *store_dir = NULL;
    bool json = false, verify = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--verify") == 0)
            verify = true;
        else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            store_dir = argv[++i];
        else if (strcmp(argv[i], "--store") == 0)
            return sm_cli_usage_error(&sm_cmd_info, "--store needs a value");
        else
            return sm_cli_usage_error(&sm_cmd_info, "unexpected argument '%s'", argv[i]);
    }
    if (store_dir == NULL)
        return sm_cli_usage_error(&sm_cmd_info, "--store DIR is required");
    sm_error err;
    sm_error_clear(&err);
    sm_store *store;
    if (sm_store_open(store_dir, SM_STORE_READ_ONLY | (verify ? SM_STORE_VERIFY : 0), &store, &err) != SM_OK)
        return sm_cli_fail(&err);
    sm_store_info info;
    sm_store_source *sources = NULL;
    size_t n_sources = 0;
    int status = sm_store_get_info(store, &info, &err);
    if (status == SM_OK)
        status = sm_store_sources(store, &sources, &n_sources, &err);
    if (status != SM_OK) {
        sm_store_close(store);
        return sm_cli_fail(&err);
    }
    if (json)
        print_json(store, &info, sources, n_sources);
    else
        print_text(store, &info, sources, n_sources);
    sm_store_sources_free(sources, n_sources);
    sm_store_close(store);
    return fflush(stdout) == 0 ? SM_EXIT_OK : SM_EXIT_FAILURE;
}
