/* SPDX-License-Identifier: MIT */
/*
 * Frequent itemset mining on the shapes (retail@9, T10I4D100K@10,
 * chess@60%, mushroom@5%, Groceries@0.1%): counting only, 1 and 2 threads,
 * medians, beside the reference figures the issue gives (Borgelt's fpgrowth
 * 6.18 / eclat 5.21, 1 thread, counting only, measured on another day on
 * this machine kind). Timed from the loaded sm_csr (recoding included, file
 * parsing not; the parse time is reported separately). Also times the output
 * path: SPMF text written to a scratch file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "segmint/fim.h"
#include "storage/basket_file.h"

typedef struct shape {
    const char *file;
    const char *label;
    double support;
    bool count;
    unsigned long long ref_count; /* 0 = none published */
    double ref_seconds;           /* 0 = none published */
    const char *ref_tool;
} shape;

static const shape shapes[] = {
    {"baskets/retail.dat", "retail@9", 9, true, 240852, 0.29, "eclat 5.21"},
    {"baskets/T10I4D100K.dat", "T10I4D100K@10", 10, true, 411365, 0.33, "eclat 5.21"},
    {"baskets/chess.dat", "chess@60%", 0.6, false, 254944, 0.019, "fpgrowth 6.18"},
    {"baskets/mushroom.dat", "mushroom@5%", 0.05, false, 3755511, 0.026, "fpgrowth 6.18"},
    {"baskets/groceries.csv", "groceries@0.1%", 0.001, false, 0, 0, NULL},
};

typedef struct run_ctx {
    const sm_csr *csr;
    sm_fim_params params;
    sm_fim_result result;
    const char *out_path;
    int rc;
} run_ctx;

static void run_count(void *p)
{
    run_ctx *c = p;
    c->rc = sm_fim_mine(c->csr, &c->params, NULL, NULL, &c->result, NULL);
}

typedef struct spmf {
    FILE *f;
    const char *const *labels;
} spmf;

static int spmf_sink(void *user, const sm_item_id *items, uint32_t len, sm_count support)
{
    spmf *s = user;
    for (uint32_t i = 0; i < len; i++) {
        if (i)
            fputc(' ', s->f);
        fputs(s->labels[items[i]], s->f);
    }
    fprintf(s->f, " #SUP: %llu\n", (unsigned long long)support);
    return 0;
}

static const char *const *bench_labels;

static void run_write(void *p)
{
    run_ctx *c = p;
    spmf s = {fopen(c->out_path, "w"), bench_labels};
    if (s.f == NULL) {
        c->rc = -1;
        return;
    }
    c->rc = sm_fim_mine(c->csr, &c->params, spmf_sink, &s, &c->result, NULL);
    fclose(s.f);
}

int main(void)
{
    bench_print_header("Frequent itemsets (counting only unless noted; reference: the issue's figures, "
                       "another day, same machine kind)");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *sh = &shapes[i];
        char path[1024];
        if (bench_data_path(sh->file, path, sizeof path) == NULL) {
            printf("| %s | skipped: %s not under SEGMINT_DATA | | | | | | | | | |\n", sh->label, sh->file);
            continue;
        }
        double t0 = bench_now();
        sm_basket_data *b;
        int rc = strstr(sh->file, ".csv") ? sm_basket_read_csv(path, &b, NULL) : sm_basket_read_fimi(path, &b, NULL);
        double parse = bench_now() - t0;
        if (rc != SM_OK) {
            printf("| %s | read failed (%d) | | | | | | | | | |\n", sh->label, rc);
            continue;
        }
        bench_labels = b->labels;
        for (int threads = 1; threads <= 2; threads++) {
            run_ctx c;
            memset(&c, 0, sizeof c);
            c.csr = &b->csr;
            sm_fim_params_init(&c.params);
            c.params.min_support = sh->support;
            c.params.support_is_count = sh->count;
            c.params.n_threads = threads;
            bench_peak_rss_reset();
            bench_stats st = bench_time(run_count, &c, 1, 7);
            char note[256];
            if (sh->ref_count)
                snprintf(note, sizeof note, "count %llu (ref %llu%s); ref %.3f s %s 1 thread; parse %.3f s",
                         (unsigned long long)c.result.n_itemsets, sh->ref_count,
                         c.result.n_itemsets == sh->ref_count ? ", equal" : ", DIFFERENT", sh->ref_seconds,
                         sh->ref_tool, parse);
            else
                snprintf(note, sizeof note, "count %llu; no reference time; parse %.3f s",
                         (unsigned long long)c.result.n_itemsets, parse);
            bench_record r = {.bench = "fim",
                              .case_name = sh->label,
                              .impl = "segmint count",
                              .stats = st,
                              .per = "run",
                              .throughput = (double)c.result.n_itemsets / st.median,
                              .throughput_unit = "itemsets/s",
                              .peak_rss_kb = bench_peak_rss_kb(),
                              .threads = threads,
                              .ratio = sh->ref_seconds > 0 ? sh->ref_seconds / st.median : 0,
                              .note = note};
            bench_report(&r);
        }
        /* The output path: every itemset written as SPMF text. */
        char out[1200];
        snprintf(out, sizeof out, "%s/fim_bench.spmf", bench_scratch_dir());
        run_ctx c;
        memset(&c, 0, sizeof c);
        c.csr = &b->csr;
        c.out_path = out;
        sm_fim_params_init(&c.params);
        c.params.min_support = sh->support;
        c.params.support_is_count = sh->count;
        c.params.n_threads = 1;
        bench_peak_rss_reset();
        bench_stats st = bench_time(run_write, &c, 0, 3);
        char note[128];
        snprintf(note, sizeof note, "%llu itemsets written as SPMF text", (unsigned long long)c.result.n_itemsets);
        bench_record r = {.bench = "fim", .case_name = sh->label, .impl = "segmint write SPMF", .stats = st,
                          .per = "run", .throughput = (double)c.result.n_itemsets / st.median,
                          .throughput_unit = "itemsets/s", .peak_rss_kb = bench_peak_rss_kb(), .threads = 1,
                          .ratio = 0, .note = note};
        bench_report(&r);
        remove(out);
        sm_basket_data_destroy(b);
    }
    return 0;
}
