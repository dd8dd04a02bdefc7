/* SPDX-License-Identifier: MIT */
/*
 * The machine's floors, measured once per `bench/run`: single-precision GEMM
 * rate through cblas (1 thread and all threads; at 4096^3 and at the tall
 * skinny shape k-means uses) and memory bandwidth (a STREAM-style triad,
 * a[i] = b[i] + s*c[i], counted as 3 x 8 bytes per element as STREAM does).
 * Other benchmarks read the result from $BENCH_FLOORS to state how close
 * each kernel comes to the limit.
 */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

typedef struct gemm_case {
    int m, n, k;
    float *a, *b, *c;
} gemm_case;

static void run_gemm(void *ctx)
{
    gemm_case *g = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->m, g->n, g->k, 1.0f, g->a, g->k, g->b,
                g->k, 0.0f, g->c, g->n);
}

static double gemm_gflops(int m, int n, int k, int threads, bench_stats *stats_out)
{
    gemm_case g = {m, n, k, NULL, NULL, NULL};
    g.a = aligned_alloc(64, ((size_t)m * k * sizeof(float) + 63) & ~(size_t)63);
    g.b = aligned_alloc(64, ((size_t)n * k * sizeof(float) + 63) & ~(size_t)63);
    g.c = aligned_alloc(64, ((size_t)m * n * sizeof(float) + 63) & ~(size_t)63);
    for (size_t i = 0; i < (size_t)m * k; i++)
        g.a[i] = (float)(i % 97) * 0.01f;
    for (size_t i = 0; i < (size_t)n * k; i++)
        g.b[i] = (float)(i % 89) * 0.01f;
    openblas_set_num_threads(threads);
    *stats_out = bench_time(run_gemm, &g, 1, 5);
    free(g.a);
    free(g.b);
    free(g.c);
    return 2.0 * m * n * (double)k / stats_out->median / 1e9;
}

typedef struct triad_case {
    size_t n;
    double *a, *b, *c;
} triad_case;

static void run_triad(void *ctx)
{
    triad_case *t = ctx;
    const double s = 3.0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < t->n; i++)
        t->a[i] = t->b[i] + s * t->c[i];
}

int main(void)
{
    int all = omp_get_max_threads();
    bench_print_header("Machine floors (measured in this run)");

    struct {
        int m, n, k;
        const char *label;
    } shapes[] = {{4096, 4096, 4096, "sgemm 4096^3"}, {65536, 64, 32, "sgemm 65536x64x32 (k-means tile)"}};
    double sgemm_all = 0, sgemm_one = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int pass = 0; pass < 2; pass++) {
            int threads = pass == 0 ? 1 : all;
            bench_stats stats;
            double gflops = gemm_gflops(shapes[s].m, shapes[s].n, shapes[s].k, threads, &stats);
            if (s == 0 && pass == 0)
                sgemm_one = gflops;
            if (s == 0 && pass == 1)
                sgemm_all = gflops;
            bench_record r = {.bench = "floors", .case_name = shapes[s].label, .impl = "OpenBLAS cblas_sgemm",
                              .stats = stats, .per = "call", .throughput = gflops * 1e9,
                              .throughput_unit = "flop/s", .threads = threads};
            bench_report(&r);
        }
    }
    openblas_set_num_threads(1);

    triad_case t = {.n = (size_t)1 << 25};
    t.a = malloc(t.n * sizeof(double));
    t.b = malloc(t.n * sizeof(double));
    t.c = malloc(t.n * sizeof(double));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < t.n; i++) {
        t.a[i] = 0.0;
        t.b[i] = 1.0;
        t.c[i] = 2.0;
    }
    double triad_gbs[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        int threads = pass == 0 ? 1 : all;
        omp_set_num_threads(threads);
        bench_stats stats = bench_time(run_triad, &t, 2, 9);
        triad_gbs[pass] = 3.0 * 8.0 * (double)t.n / stats.median / 1e9;
        bench_record r = {.bench = "floors", .case_name = "triad 3 x 256 MiB", .impl = "OpenMP triad",
                          .stats = stats, .per = "pass", .throughput = triad_gbs[pass] * 1e9,
                          .throughput_unit = "B/s", .threads = threads};
        bench_report(&r);
    }
    free(t.a);
    free(t.b);
    free(t.c);

    const char *path = getenv("BENCH_FLOORS");
    if (path != NULL && path[0] != '\0') {
        FILE *f = fopen(path, "w");
        if (f != NULL) {
            fprintf(f,
                    "{\"sgemm_gflops_1\": %.3f, \"sgemm_gflops_all\": %.3f, \"triad_gbs_1\": %.3f, "
                    "\"triad_gbs_all\": %.3f, \"threads\": %d}\n",
                    sgemm_one, sgemm_all, triad_gbs[0], triad_gbs[1], all);
            fclose(f);
        }
    }
    return 0;
}
