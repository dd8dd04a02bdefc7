/* SPDX-License-Identifier: MIT */
/*
 * `segmint baskets`: frequent itemsets, association rules and cross-sell
 * recommendations from a store, a FIMI .dat file or a basket CSV. Loading
 * gives one shape whatever the source (an sm_csr of baskets, item labels and
 * descriptions, and the customer of each basket); the kernels do the rest and
 * this file only formats. Outputs are atomic files (engine/output.h).
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli/cli.h"
#include "engine/customer_items.h"
#include "engine/output.h"
#include "segmint/fim.h"
#include "segmint/store.h"
#include "storage/basket_file.h"

static const char usage[] =
    "usage: segmint baskets --store DIR | --fimi FILE | --basket-csv FILE --min-support S [options]\n"
    "\n"
    "Frequent itemsets, association rules and per-customer cross-sell lists.\n"
    "\n"
    "  --min-support S       a fraction of baskets (0.001, 1.0) or a count (9, abs:9);\n"
    "                        a fraction f means the smallest count >= f x baskets\n"
    "  --max-len L           longest itemset (default: no limit)\n"
    "  --kind K              all | closed | maximal (default all)\n"
    "  --itemsets OUT        write the itemsets ('-' = stdout)\n"
    "  --rules OUT           write association rules A ==> C\n"
    "  --min-confidence C    rules: confidence >= C (default 0.8)\n"
    "  --min-lift X          rules: lift >= X (default 0)\n"
    "  --consequent-size N   rules: up to N items in C (default 1)\n"
    "  --max-rules N         rules: keep the first N after sorting\n"
    "  --sort-by M           confidence | lift | support | leverage | conviction (default confidence)\n"
    "  --recommend N --out OUT  top N cross-sell items per customer (CSV or JSONL)\n"
    "  --score S             confidence-lift (default) | confidence | lift\n"
    "  --format F            spmf | csv | jsonl for itemsets and rules (default: by the\n"
    "                        extension of OUT, .csv or .jsonl, else spmf)\n"
    "  --max-itemsets N      stop writing after N itemsets (a warning says so beforehand)\n"
    "  --max-rule-itemsets N rules, recommend: refuse to run when more than N frequent\n"
    "                        itemsets (of any --kind/--max-len) would be held in memory\n"
    "                        for them (default 100000000; about 40-110 bytes each)\n"
    "  --include-returns     store: keep baskets that are cancellations/returns\n"
    "  --threads T           threads (default: all cores)\n"
    "  --json                print the summary as {\"itemsets\":..,\"rules\":..,\"seconds\":..,\n"
    "                        \"empty_baskets\":..,\"duplicate_items\":..}\n"
    "  --force               overwrite existing output files\n"
    "  --quiet               no progress line\n";

static int run_baskets(int argc, char **argv);
const sm_cli_command sm_cmd_baskets = {"baskets", "frequent itemsets, association rules, cross-sell lists", usage,
                                       run_baskets};

enum fmt { FMT_AUTO, FMT_SPMF, FMT_CSV, FMT_JSONL };

/* Past this many itemsets a run warns before writing them, and refuses to hold
 * them for rules unless --max-rule-itemsets says otherwise: at 40-110 bytes
 * each, 10^8 itemsets are already 4-11 GB. */
static const sm_count default_limit = 100000000;

/* The baskets whatever their source. For file inputs each basket is its own
 * customer (id = basket index, 0-based). */
typedef struct baskets_input {
    sm_csr csr;
    const char *const *labels;       /* n_items */
    const char *const *descriptions; /* n_items or NULL */
    const sm_customer_id *customer;  /* n_rows or NULL (basket = customer) */
    const char *const *customer_keys; /* or NULL: customers printed as numbers */
    uint32_t n_customers;
    sm_basket_data *file;
    sm_store *store;
    sm_basket_table table;
    sm_key_table items, customers;
} baskets_input;

static void input_free(baskets_input *in)
{
    sm_basket_data_destroy(in->file);
    if (in->store) {
        sm_basket_table_free(&in->table);
        sm_key_table_free(&in->items);
        sm_key_table_free(&in->customers);
        sm_store_close(in->store);
    }
}

static int load_input(const char *store, const char *fimi, const char *csv, bool include_returns,
                      const sm_progress *progress, baskets_input *in, sm_error *err)
{
    memset(in, 0, sizeof *in);
    int rc;
    if (fimi || csv) {
        rc = fimi ? sm_basket_read_fimi(fimi, &in->file, err) : sm_basket_read_csv(csv, &in->file, err);
        if (rc != SM_OK)
            return rc;
        in->csr = in->file->csr;
        in->labels = in->file->labels;
        return SM_OK;
    }
    rc = sm_store_open(store, SM_STORE_READ_ONLY, &in->store, err);
    if (rc != SM_OK)
        return rc;
    rc = sm_store_load_baskets(in->store, include_returns ? SM_BASKETS_ALL : SM_BASKETS_EXCLUDE_RETURNS,
                               &in->table, progress, err);
    if (rc == SM_OK)
        rc = sm_store_load_keys(in->store, SM_KEYS_ITEMS, &in->items, err);
    if (rc == SM_OK)
        rc = sm_store_load_keys(in->store, SM_KEYS_CUSTOMERS, &in->customers, err);
    if (rc != SM_OK)
        return rc;
    in->csr = in->table.csr;
    in->labels = (const char *const *)in->items.keys;
    in->descriptions = (const char *const *)in->items.descriptions;
    in->customer = in->table.customer;
    in->customer_keys = (const char *const *)in->customers.keys;
    in->n_customers = in->customers.n;
    return SM_OK;
}

/* --- writers ---------------------------------------------------------------------- */

typedef struct writer {
    FILE *f;
    enum fmt fmt;
    const baskets_input *in;
    uint64_t n_baskets;
    sm_itemsets *table; /* also collect (rules) when not NULL */
    bool write;
} writer;

static void put_set_text(FILE *f, const baskets_input *in, const sm_item_id *items, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        if (i)
            fputc(' ', f);
        fputs(in->labels[items[i]], f);
    }
}

/* "{a,b}" for CSV (then quoted/neutralised as one field). */
static char *set_braced(const baskets_input *in, const sm_item_id *items, uint32_t len)
{
    size_t n = 3;
    for (uint32_t i = 0; i < len; i++)
        n += strlen(in->labels[items[i]]) + 1;
    char *s = malloc(n);
    if (s == NULL)
        return NULL;
    size_t u = 0;
    s[u++] = '{';
    for (uint32_t i = 0; i < len; i++) {
        if (i)
            s[u++] = ',';
        size_t l = strlen(in->labels[items[i]]);
        memcpy(s + u, in->labels[items[i]], l);
        u += l;
    }
    s[u++] = '}';
    s[u] = '\0';
    return s;
}

static int put_set_csv(FILE *f, const baskets_input *in, const sm_item_id *items, uint32_t len)
{
    char *s = set_braced(in, items, len);
    if (s == NULL)
        return SM_ERR_NOMEM;
    sm_csv_put_text(f, s, ',');
    free(s);
    return SM_OK;
}

static void put_set_json(FILE *f, const baskets_input *in, const sm_item_id *items, uint32_t len)
{
    fputc('[', f);
    for (uint32_t i = 0; i < len; i++) {
        if (i)
            fputc(',', f);
        sm_json_put_string(f, in->labels[items[i]]);
    }
    fputc(']', f);
}

static int itemset_sink(void *user, const sm_item_id *items, uint32_t len, sm_count support)
{
    writer *w = user;
    if (w->table != NULL && sm_itemsets_add(w->table, items, len, support) != SM_OK)
        return SM_ERR_NOMEM;
    if (!w->write)
        return 0;
    FILE *f = w->f;
    double frac = (double)support / (double)w->n_baskets;
    switch (w->fmt) {
    case FMT_CSV:
        if (put_set_csv(f, w->in, items, len) != SM_OK)
            return SM_ERR_NOMEM;
        fprintf(f, ",%u,%" SM_PRI_COUNT ",", len, support);
        sm_csv_put_double(f, frac);
        fputc('\n', f);
        break;
    case FMT_JSONL:
        fputs("{\"items\":", f);
        put_set_json(f, w->in, items, len);
        fprintf(f, ",\"count\":%" SM_PRI_COUNT ",\"support\":", support);
        sm_json_put_double(f, frac);
        fputs("}\n", f);
        break;
    default:
        put_set_text(f, w->in, items, len);
        fprintf(f, " #SUP: %" SM_PRI_COUNT "\n", support);
    }
    return ferror(f) ? SM_ERR_IO : 0;
}

static int write_rules(FILE *f, enum fmt fmt, const baskets_input *in, const sm_rules *rules, uint64_t n_baskets)
{
    if (fmt == FMT_CSV)
        fputs("antecedent,consequent,count,support,confidence,lift,leverage,conviction\n", f);
    for (sm_count i = 0; i < sm_rules_count(rules); i++) {
        const sm_rule *r = sm_rules_get(rules, i);
        double supp = (double)r->support / (double)n_baskets;
        if (fmt == FMT_CSV) {
            if (put_set_csv(f, in, r->antecedent, r->n_antecedent) != SM_OK)
                return SM_ERR_NOMEM;
            fputc(',', f);
            if (put_set_csv(f, in, r->consequent, r->n_consequent) != SM_OK)
                return SM_ERR_NOMEM;
            fprintf(f, ",%" SM_PRI_COUNT ",", r->support);
            const double v[] = {supp, r->confidence, r->lift, r->leverage};
            for (size_t k = 0; k < 4; k++) {
                sm_csv_put_double(f, v[k]);
                fputc(',', f);
            }
            if (isinf(r->conviction))
                fputs("inf", f);
            else
                sm_csv_put_double(f, r->conviction);
            fputc('\n', f);
        } else if (fmt == FMT_JSONL) {
            fputs("{\"antecedent\":", f);
            put_set_json(f, in, r->antecedent, r->n_antecedent);
            fputs(",\"consequent\":", f);
            put_set_json(f, in, r->consequent, r->n_consequent);
            fprintf(f, ",\"count\":%" SM_PRI_COUNT, r->support);
            const char *keys[] = {"support", "confidence", "lift", "leverage", "conviction"};
            const double v[] = {supp, r->confidence, r->lift, r->leverage, r->conviction};
            for (size_t k = 0; k < 5; k++) { /* conviction +inf is written as null */
                fprintf(f, ",\"%s\":", keys[k]);
                sm_json_put_double(f, v[k]);
            }
            fputs("}\n", f);
        } else {
            put_set_text(f, in, r->antecedent, r->n_antecedent);
            fputs(" ==> ", f);
            put_set_text(f, in, r->consequent, r->n_consequent);
            fprintf(f, " #SUP: %" SM_PRI_COUNT " #CONF: ", r->support);
            sm_csv_put_double(f, r->confidence);
            fputs(" #LIFT: ", f);
            sm_csv_put_double(f, r->lift);
            fputc('\n', f);
        }
    }
    return ferror(f) ? SM_ERR_IO : SM_OK;
}

static void customer_name(const baskets_input *in, uint64_t c, char *buf, size_t cap)
{
    if (in->customer_keys != NULL)
        snprintf(buf, cap, "%s", in->customer_keys[c]);
    else
        snprintf(buf, cap, "%" PRIu64, c);
}

static int write_recs(FILE *f, bool jsonl, const baskets_input *in, const sm_rules *rules,
                      const sm_recommendations *recs)
{
    if (!jsonl)
        fputs("customer,item,description,score,rule\n", f);
    char name[512];
    for (uint64_t c = 0; c < recs->n_customers; c++) {
        customer_name(in, c, name, sizeof name);
        for (uint64_t k = recs->offsets[c]; k < recs->offsets[c + 1]; k++) {
            const sm_recommendation *e = &recs->entries[k];
            const sm_rule *r = sm_rules_get(rules, e->rule);
            char *a = set_braced(in, r->antecedent, r->n_antecedent);
            char *cq = set_braced(in, r->consequent, r->n_consequent);
            if (a == NULL || cq == NULL) {
                free(a);
                free(cq);
                return SM_ERR_NOMEM;
            }
            size_t rl = strlen(a) + strlen(cq) + 8;
            char *rule = malloc(rl);
            if (rule == NULL) {
                free(a);
                free(cq);
                return SM_ERR_NOMEM;
            }
            snprintf(rule, rl, "%s ==> %s", a, cq);
            const char *desc = in->descriptions ? in->descriptions[e->item] : "";
            if (jsonl) {
                fputs("{\"customer\":", f);
                sm_json_put_string(f, name);
                fputs(",\"item\":", f);
                sm_json_put_string(f, in->labels[e->item]);
                fputs(",\"description\":", f);
                sm_json_put_string(f, desc);
                fputs(",\"score\":", f);
                sm_json_put_double(f, e->score);
                fputs(",\"rule\":", f);
                sm_json_put_string(f, rule);
                fputs(",\"confidence\":", f);
                sm_json_put_double(f, r->confidence);
                fputs(",\"lift\":", f);
                sm_json_put_double(f, r->lift);
                fputs("}\n", f);
            } else {
                sm_csv_put_text(f, name, ',');
                fputc(',', f);
                sm_csv_put_text(f, in->labels[e->item], ',');
                fputc(',', f);
                sm_csv_put_text(f, desc, ',');
                fputc(',', f);
                sm_csv_put_double(f, e->score);
                fputc(',', f);
                sm_csv_put_text(f, rule, ',');
                fputc('\n', f);
            }
            free(a);
            free(cq);
            free(rule);
        }
    }
    return ferror(f) ? SM_ERR_IO : SM_OK;
}

/* --- options ---------------------------------------------------------------------------- */

static bool parse_support(const char *text, sm_fim_params *p)
{
    const char *s = text;
    bool count = false;
    if (strncmp(s, "abs:", 4) == 0) {
        s += 4;
        count = true;
    } else {
        count = strpbrk(s, ".eE") == NULL; /* a plain integer is a count; 1.0 is 100% */
    }
    if (count) {
        uint64_t v;
        if (!sm_cli_parse_u64(&sm_cmd_baskets, "--min-support", s, 1, UINT32_MAX, &v))
            return false;
        p->min_support = (double)v;
        p->support_is_count = true;
        return true;
    }
    double v;
    if (!sm_cli_parse_double(&sm_cmd_baskets, "--min-support", s, -INFINITY, INFINITY, &v))
        return false;
    if (!(v > 0 && v <= 1)) {
        sm_cli_usage_error(&sm_cmd_baskets, "--min-support: a fraction must be in (0, 1], got %s "
                                            "(write abs:N for a count of baskets)", text);
        return false;
    }
    p->min_support = v;
    p->support_is_count = false;
    return true;
}

static enum fmt format_for(enum fmt given, const char *path)
{
    if (given != FMT_AUTO)
        return given;
    const char *ext = path ? sm_path_extension(path) : "";
    if (strcmp(ext, "csv") == 0)
        return FMT_CSV;
    if (strcmp(ext, "jsonl") == 0 || strcmp(ext, "json") == 0)
        return FMT_JSONL;
    return FMT_SPMF;
}

static int run_baskets(int argc, char **argv)
{
    const sm_cli_command *cmd = &sm_cmd_baskets;
    if (sm_cli_wants_help(cmd, argc, argv))
        return SM_EXIT_OK;
    enum {
        O_STORE = 256, O_FIMI, O_BCSV, O_MINSUP, O_MAXLEN, O_KIND, O_ITEMSETS, O_RULES, O_MINCONF, O_MINLIFT,
        O_CSIZE, O_MAXRULES, O_SORT, O_RECOMMEND, O_OUT, O_SCORE, O_FORMAT, O_MAXSETS, O_RETURNS, O_THREADS,
        O_JSON, O_FORCE, O_QUIET, O_RULELIMIT
    };
    static const struct option opts[] = {
        {"store", required_argument, 0, O_STORE}, {"fimi", required_argument, 0, O_FIMI},
        {"basket-csv", required_argument, 0, O_BCSV}, {"min-support", required_argument, 0, O_MINSUP},
        {"max-len", required_argument, 0, O_MAXLEN}, {"kind", required_argument, 0, O_KIND},
        {"itemsets", required_argument, 0, O_ITEMSETS}, {"rules", required_argument, 0, O_RULES},
        {"min-confidence", required_argument, 0, O_MINCONF}, {"min-lift", required_argument, 0, O_MINLIFT},
        {"consequent-size", required_argument, 0, O_CSIZE}, {"max-rules", required_argument, 0, O_MAXRULES},
        {"sort-by", required_argument, 0, O_SORT}, {"recommend", required_argument, 0, O_RECOMMEND},
        {"out", required_argument, 0, O_OUT}, {"score", required_argument, 0, O_SCORE},
        {"format", required_argument, 0, O_FORMAT}, {"max-itemsets", required_argument, 0, O_MAXSETS},
        {"include-returns", no_argument, 0, O_RETURNS}, {"threads", required_argument, 0, O_THREADS},
        {"json", no_argument, 0, O_JSON}, {"force", no_argument, 0, O_FORCE}, {"quiet", no_argument, 0, O_QUIET},
        {"max-rule-itemsets", required_argument, 0, O_RULELIMIT}, {0, 0, 0, 0}};
    const char *store = NULL, *fimi = NULL, *bcsv = NULL, *itemsets_out = NULL, *rules_out = NULL,
               *recs_out = NULL;
    bool have_support = false, json = false, force = false, quiet = false, include_returns = false;
    uint64_t top_n = 0;
    sm_count rule_limit = default_limit;
    enum fmt fmt = FMT_AUTO;
    sm_fim_params fp;
    sm_fim_params_init(&fp);
    sm_rules_params rp;
    sm_rules_params_init(&rp);
    sm_recommend_params qp;
    sm_recommend_params_init(&qp);
    int threads = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        uint64_t v;
        double d;
        switch (c) {
        case O_STORE: store = optarg; break;
        case O_FIMI: fimi = optarg; break;
        case O_BCSV: bcsv = optarg; break;
        case O_MINSUP:
            if (!parse_support(optarg, &fp))
                return SM_EXIT_USAGE;
            have_support = true;
            break;
        case O_MAXLEN:
            if (!sm_cli_parse_u64(cmd, "--max-len", optarg, 1, UINT32_MAX - 1, &v))
                return SM_EXIT_USAGE;
            fp.max_len = (uint32_t)v;
            break;
        case O_KIND:
            if (strcmp(optarg, "all") == 0)
                fp.kind = SM_FIM_ALL;
            else if (strcmp(optarg, "closed") == 0)
                fp.kind = SM_FIM_CLOSED;
            else if (strcmp(optarg, "maximal") == 0)
                fp.kind = SM_FIM_MAXIMAL;
            else
                return sm_cli_usage_error(cmd, "--kind: expected all, closed or maximal, got '%s'", optarg);
            break;
        case O_ITEMSETS: itemsets_out = optarg; break;
        case O_RULES: rules_out = optarg; break;
        case O_MINCONF:
            if (!sm_cli_parse_double(cmd, "--min-confidence", optarg, 0, 1, &d))
                return SM_EXIT_USAGE;
            rp.min_confidence = d;
            break;
        case O_MINLIFT:
            if (!sm_cli_parse_double(cmd, "--min-lift", optarg, 0, 1e300, &d))
                return SM_EXIT_USAGE;
            rp.min_lift = d;
            break;
        case O_CSIZE:
            if (!sm_cli_parse_u64(cmd, "--consequent-size", optarg, 1, 63, &v))
                return SM_EXIT_USAGE;
            rp.consequent_size = (uint32_t)v;
            break;
        case O_MAXRULES:
            if (!sm_cli_parse_u64(cmd, "--max-rules", optarg, 1, UINT64_MAX, &v))
                return SM_EXIT_USAGE;
            rp.max_rules = v;
            break;
        case O_SORT:
            if (strcmp(optarg, "confidence") == 0)
                rp.sort_by = SM_RULE_BY_CONFIDENCE;
            else if (strcmp(optarg, "lift") == 0)
                rp.sort_by = SM_RULE_BY_LIFT;
            else if (strcmp(optarg, "support") == 0)
                rp.sort_by = SM_RULE_BY_SUPPORT;
            else if (strcmp(optarg, "leverage") == 0)
                rp.sort_by = SM_RULE_BY_LEVERAGE;
            else if (strcmp(optarg, "conviction") == 0)
                rp.sort_by = SM_RULE_BY_CONVICTION;
            else
                return sm_cli_usage_error(cmd, "--sort-by: unknown measure '%s'", optarg);
            break;
        case O_RECOMMEND:
            if (!sm_cli_parse_u64(cmd, "--recommend", optarg, 1, 100000, &top_n))
                return SM_EXIT_USAGE;
            break;
        case O_OUT: recs_out = optarg; break;
        case O_SCORE:
            if (strcmp(optarg, "confidence-lift") == 0)
                qp.score = SM_SCORE_CONFIDENCE_LIFT;
            else if (strcmp(optarg, "confidence") == 0)
                qp.score = SM_SCORE_CONFIDENCE;
            else if (strcmp(optarg, "lift") == 0)
                qp.score = SM_SCORE_LIFT;
            else
                return sm_cli_usage_error(cmd, "--score: expected confidence-lift, confidence or lift");
            break;
        case O_FORMAT:
            if (strcmp(optarg, "spmf") == 0)
                fmt = FMT_SPMF;
            else if (strcmp(optarg, "csv") == 0)
                fmt = FMT_CSV;
            else if (strcmp(optarg, "jsonl") == 0)
                fmt = FMT_JSONL;
            else
                return sm_cli_usage_error(cmd, "--format: expected spmf, csv or jsonl, got '%s'", optarg);
            break;
        case O_MAXSETS:
            if (!sm_cli_parse_u64(cmd, "--max-itemsets", optarg, 1, UINT64_MAX, &v))
                return SM_EXIT_USAGE;
            fp.max_itemsets = v;
            break;
        case O_RULELIMIT:
            if (!sm_cli_parse_u64(cmd, "--max-rule-itemsets", optarg, 1, UINT64_MAX, &v))
                return SM_EXIT_USAGE;
            rule_limit = v;
            break;
        case O_RETURNS: include_returns = true; break;
        case O_THREADS:
            if (!sm_cli_parse_threads(cmd, optarg, &threads))
                return SM_EXIT_USAGE;
            break;
        case O_JSON: json = true; break;
        case O_FORCE: force = true; break;
        case O_QUIET: quiet = true; break;
        default:
            return sm_cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return sm_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if ((store != NULL) + (fimi != NULL) + (bcsv != NULL) != 1)
        return sm_cli_usage_error(cmd, "give exactly one of --store, --fimi, --basket-csv");
    if (!have_support)
        return sm_cli_usage_error(cmd, "--min-support is required");
    if ((top_n != 0) != (recs_out != NULL))
        return sm_cli_usage_error(cmd, "--recommend N and --out OUT go together");
    if (include_returns && store == NULL)
        return sm_cli_usage_error(cmd, "--include-returns applies to --store only");
    fp.n_threads = threads;
    qp.n_threads = threads;
    qp.top_n = (uint32_t)top_n;

    sm_cli_progress progress_state;
    sm_progress progress = sm_cli_progress_start(&progress_state, quiet);
    fp.progress = progress;
    double t0 = sm_cli_now();
    sm_error err;
    sm_error_clear(&err);
    baskets_input in;
    int rc = load_input(store, fimi, bcsv, include_returns, &progress, &in, &err);
    sm_output *o_sets = NULL, *o_rules = NULL, *o_recs = NULL;
    sm_itemsets *table = NULL;
    sm_rules *rules = NULL;
    sm_recommendations *recs = NULL;
    uint64_t *coff = NULL;
    sm_item_id *citems = NULL;
    sm_count n_itemsets = 0, n_rules = 0;
    uint64_t n_empty = 0, n_duplicates = 0;
    bool truncated = false;
    bool want_rules = rules_out != NULL || recs_out != NULL;
    if (rc != SM_OK)
        goto out;
    uint64_t n = in.csr.n_rows;
    /* Reported (RELIABILITY B8) because both change the results silently: an
     * empty basket still counts in the n that a fractional support and every
     * rule measure divide by, and a collapsed duplicate is a purchase line the
     * itemsets do not see. A store's baskets hold distinct items already. */
    n_duplicates = in.file ? in.file->n_duplicates : 0;
    for (uint64_t r = 0; r < n; r++)
        n_empty += in.csr.offsets[r] == in.csr.offsets[r + 1];

    /* Rules and recommendations hold every frequent itemset in memory (about
     * 40-110 bytes each), whatever --kind and --max-len say, since each
     * antecedent needs its support. So their guard counts all of them, against
     * a limit of its own: --max-itemsets caps only what is written. */
    bool rule_sets = fp.kind == SM_FIM_ALL && fp.max_len == SM_FIM_NO_MAX_LEN; /* reported = held for rules */
    bool counted = false;
    sm_fim_result res;
    if (want_rules) {
        sm_fim_params guard = fp;
        guard.kind = SM_FIM_ALL;
        guard.max_len = SM_FIM_NO_MAX_LEN;
        guard.max_itemsets = rule_limit;
        rc = sm_fim_mine(&in.csr, &guard, NULL, NULL, &res, &err);
        if (rc != SM_OK)
            goto out;
        if (res.truncated) {
            sm_error_set(&err, SM_ERR_OVERFLOW, "more than %" SM_PRI_COUNT " frequent itemsets: too many to hold "
                         "for rules (about 40-110 bytes each); raise --min-support, or --max-rule-itemsets "
                         "if memory allows", rule_limit);
            rc = SM_ERR_OVERFLOW;
            goto out;
        }
        if (rule_sets) {
            n_itemsets = res.n_itemsets;
            counted = true;
        }
    }
    if (itemsets_out == NULL && !counted) {
        /* Nothing written: the count is the answer, and counting holds nothing
         * in memory, so it runs without a cap and the summary is exact. */
        sm_fim_params all = fp;
        all.max_itemsets = 0;
        rc = sm_fim_mine(&in.csr, &all, NULL, NULL, &res, &err);
        if (rc != SM_OK)
            goto out;
        n_itemsets = res.n_itemsets;
    } else if (itemsets_out != NULL) {
        /* Count first (cheap) so that a run about to explode says so. */
        sm_count cap = fp.max_itemsets ? fp.max_itemsets : default_limit;
        bool over = counted && n_itemsets > cap;
        if (!counted) {
            sm_fim_params pre = fp;
            pre.max_itemsets = cap;
            rc = sm_fim_mine(&in.csr, &pre, NULL, NULL, &res, &err);
            if (rc != SM_OK)
                goto out;
            over = res.truncated;
        }
        if (over && fp.max_itemsets)
            fprintf(stderr, "segmint baskets: warning: more than %" SM_PRI_COUNT " itemsets at this support; "
                            "the output stops there (--max-itemsets)\n", fp.max_itemsets);
        else if (over)
            fprintf(stderr, "segmint baskets: warning: more than %" SM_PRI_COUNT " itemsets at this support; "
                            "the output will be very large (cap it with --max-itemsets N)\n", default_limit);
    }
    if (want_rules && (rc = sm_itemsets_create(&table, &err)) != SM_OK)
        goto out;

    writer w = {NULL, format_for(fmt, itemsets_out), &in, n, NULL, false};
    if (itemsets_out != NULL) {
        rc = sm_output_open(itemsets_out, force, &o_sets, &err);
        if (rc != SM_OK)
            goto out;
        w.f = sm_output_stream(o_sets);
        w.write = true;
        if (w.fmt == FMT_CSV)
            fputs("items,length,count,support\n", w.f);
        /* one pass serves both when the kinds agree */
        w.table = fp.kind == SM_FIM_ALL && fp.max_len == SM_FIM_NO_MAX_LEN && fp.max_itemsets == 0 ? table : NULL;
        rc = sm_fim_mine(&in.csr, &fp, itemset_sink, &w, &res, &err);
        if (rc != SM_OK)
            goto out;
        n_itemsets = res.n_itemsets;
        truncated = res.truncated;
        rc = sm_output_commit(o_sets, &err);
        o_sets = NULL;
        if (rc != SM_OK)
            goto out;
    }
    if (want_rules && sm_itemsets_count(table) == 0) {
        /* rules need every frequent itemset, whatever --kind and --max-len say */
        sm_fim_params all = fp;
        all.kind = SM_FIM_ALL;
        all.max_len = SM_FIM_NO_MAX_LEN;
        all.max_itemsets = 0;
        writer tw = {NULL, FMT_SPMF, &in, n, table, false};
        rc = sm_fim_mine(&in.csr, &all, itemset_sink, &tw, NULL, &err);
        if (rc != SM_OK)
            goto out;
    }
    if (want_rules) {
        rc = sm_rules_generate(table, n, &rp, &rules, &err);
        if (rc != SM_OK)
            goto out;
        n_rules = sm_rules_count(rules);
    }
    if (rules_out != NULL) {
        rc = sm_output_open(rules_out, force, &o_rules, &err);
        if (rc == SM_OK)
            rc = write_rules(sm_output_stream(o_rules), format_for(fmt, rules_out), &in, rules, n);
        else
            goto out; /* open failed: err says why */
        if (rc != SM_OK) {
            sm_error_set(&err, rc, "writing %s failed", rules_out);
            goto out;
        }
        rc = sm_output_commit(o_rules, &err);
        o_rules = NULL;
        if (rc != SM_OK)
            goto out;
    }
    if (recs_out != NULL) {
        sm_csr customers = in.csr;
        if (in.customer != NULL) {
            rc = sm_customer_items(&in.csr, in.customer, in.n_customers, &customers, &coff, &citems, &err);
            if (rc != SM_OK)
                goto out;
        }
        rc = sm_recommend(&customers, rules, &qp, &recs, &err);
        if (rc != SM_OK)
            goto out;
        rc = sm_output_open(recs_out, force, &o_recs, &err);
        if (rc != SM_OK)
            goto out;
        bool jsonl = format_for(FMT_AUTO, recs_out) == FMT_JSONL || fmt == FMT_JSONL;
        rc = write_recs(sm_output_stream(o_recs), jsonl, &in, rules, recs);
        if (rc != SM_OK) {
            sm_error_set(&err, rc, "writing %s failed", recs_out);
            goto out;
        }
        rc = sm_output_commit(o_recs, &err);
        o_recs = NULL;
        if (rc != SM_OK)
            goto out;
    }
out:
    sm_cli_progress_end(&progress_state);
    sm_output_abort(o_sets);
    sm_output_abort(o_rules);
    sm_output_abort(o_recs);
    double seconds = sm_cli_now() - t0;
    int exit_code = SM_EXIT_OK;
    if (rc != SM_OK) {
        exit_code = sm_cli_fail(&err);
    } else {
        bool to_stdout = (itemsets_out && strcmp(itemsets_out, "-") == 0) ||
                         (rules_out && strcmp(rules_out, "-") == 0) || (recs_out && strcmp(recs_out, "-") == 0);
        FILE *s = to_stdout ? stderr : stdout;
        if (json)
            fprintf(s, "{\"itemsets\":%" SM_PRI_COUNT ",\"rules\":%" SM_PRI_COUNT ",\"seconds\":%.3f,"
                       "\"empty_baskets\":%" PRIu64 ",\"duplicate_items\":%" PRIu64 "%s}\n",
                    n_itemsets, n_rules, seconds, n_empty, n_duplicates, truncated ? ",\"truncated\":true" : "");
        else
            fprintf(s, "baskets: %" PRIu64 " baskets (%" PRIu64 " empty, %" PRIu64 " duplicate item%s collapsed), %"
                       SM_PRI_COUNT "%s itemsets, %" SM_PRI_COUNT " rules, %.3f s\n",
                    in.csr.n_rows, n_empty, n_duplicates, n_duplicates == 1 ? "" : "s", n_itemsets,
                    truncated ? "+" : "", n_rules, seconds);
    }
    sm_recommendations_destroy(recs);
    sm_rules_destroy(rules);
    sm_itemsets_destroy(table);
    sm_free(coff);
    sm_free(citems);
    input_free(&in);
    return exit_code;
}
