/* SPDX-License-Identifier: MIT */
/*
 * k-means against scikit-learn (lloyd, elkan) and FAISS on the same Gaussian
 * blobs and the same k-means++ start, 20 iterations with tol = 0, seconds per
 * iteration (median of BENCH_KMEANS_REPS runs, the implementations alternating
 * rep by rep), with the machine's floors: 2nkd flops at the measured sgemm
 * rate and n*d*4 bytes at the measured triad bandwidth. Also: initialisation
 * time at (1M, 32, 64), agreement with scikit-learn from the same start, and
 * (BENCH_KMEANS_BIG=1) 10M x 16, k = 64 with peak RSS.
 *
 * Environment: BENCH_KMEANS_REPS (3), BENCH_KMEANS_SHAPES ("0,1,2,3"),
 * BENCH_KMEANS_NO_PYTHON=1 (segmint only), BENCH_KMEANS_BIG=1.
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kernels/rng.h"
#include "segmint/kmeans.h"

#define ITERATIONS 20

typedef struct shape {
    size_t n, d;
    int k;
    const char *name;
} shape;

static const shape shapes[] = {
    {1000000, 8, 8, "n=1M d=8 k=8"},
    {1000000, 32, 64, "n=1M d=32 k=64"},
    {200000, 128, 256, "n=200k d=128 k=256"},
    {5000000, 4, 10, "n=5M d=4 k=10"},
};

/* Gaussian blobs: k centers with coordinates N(0, s^2), s = 3 / sqrt(d) (so
 * two centers are ~4.2 apart whatever d is), unit normal noise, blob sizes
 * uniform at random. The blobs overlap, as customer segments do, so Lloyd is
 * still moving after 20 iterations. Rows come from per-block streams. */
static float *make_blobs(size_t n, size_t d, size_t blobs, uint64_t seed)
{
    float *x = malloc(n * d * sizeof(float));
    double *centers = malloc(blobs * d * sizeof(double));
    if (x == NULL || centers == NULL) {
        fprintf(stderr, "bench_kmeans: out of memory for %zu x %zu\n", n, d);
        exit(1);
    }
    sm_rng rng;
    sm_rng_init(&rng, seed, 0);
    double s = 3.0 / sqrt((double)d);
    for (size_t j = 0; j < blobs * d; j++)
        centers[j] = s * sm_rng_normal(&rng);
    size_t blocks = (n + 65535) / 65536;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t b = 0; b < blocks; b++) {
        sm_rng r;
        sm_rng_init(&r, seed, b + 1);
        size_t i1 = (b + 1) * 65536 < n ? (b + 1) * 65536 : n;
        for (size_t i = b * 65536; i < i1; i++) {
            size_t c = (size_t)sm_rng_below(&r, blobs);
            for (size_t f = 0; f < d; f++)
                x[i * d + f] = (float)(centers[c * d + f] + sm_rng_normal(&r));
        }
    }
    free(centers);
    return x;
}

/* Writes a C-order float32 (or int32) .npy file. */
static int write_npy(const char *path, const void *data, size_t rows, size_t cols, const char *descr)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    char header[256];
    int len = snprintf(header, sizeof header,
                       "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }", descr, rows,
                       cols);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    magic[8] = (unsigned char)((len + pad + 1) & 0xff);
    magic[9] = (unsigned char)((len + pad + 1) >> 8);
    fwrite(magic, 1, 10, f);
    fwrite(header, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    size_t wrote = fwrite(data, 4, rows * cols, f);
    int rc = fclose(f);
    return wrote == rows * cols && rc == 0 ? 0 : -1;
}

static int read_npy_int32(const char *path, int32_t *out, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    unsigned char magic[10];
    if (fread(magic, 1, 10, f) != 10) {
        fclose(f);
        return -1;
    }
    size_t hlen = magic[8] | (size_t)magic[9] << 8;
    fseek(f, (long)(10 + hlen), SEEK_SET);
    size_t got = fread(out, sizeof(int32_t), n, f);
    fclose(f);
    return got == n ? 0 : -1;
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? atoi(v) : fallback;
}

typedef struct run_out {
    double per_iter;
    double inertia;
    int n_iter;
    uint64_t n_distances;
} run_out;

/* One fit from the given centers, 20 iterations, tol 0. */
static run_out run_segmint(const float *x, const shape *s, const float *init, sm_kmeans_algorithm alg,
                           sm_kmeans_kernel kernel, sm_cluster_id *labels_out)
{
    sm_kmeans_params p;
    sm_kmeans_params_init(&p);
    p.n = s->n;
    p.d = s->d;
    p.k = s->k;
    p.algorithm = alg;
    p.kernel = kernel;
    p.init = SM_KMEANS_INIT_GIVEN;
    p.max_iter = ITERATIONS;
    p.tol = 0.0;
    sm_kmeans *km;
    sm_error err;
    run_out o = {NAN, NAN, 0, 0};
    if (sm_kmeans_create(&p, &km, &err) != SM_OK) {
        fprintf(stderr, "bench_kmeans: %s\n", err.msg);
        exit(1);
    }
    double t0 = bench_now();
    if (sm_kmeans_fit(km, x, init, &err) != SM_OK) {
        fprintf(stderr, "bench_kmeans: %s\n", err.msg);
        exit(1);
    }
    double t = bench_now() - t0;
    sm_kmeans_result r;
    sm_kmeans_get_result(km, &r);
    o.per_iter = t / r.n_iter;
    o.inertia = r.inertia;
    o.n_iter = r.n_iter;
    o.n_distances = r.n_distances;
    if (labels_out != NULL)
        memcpy(labels_out, sm_kmeans_get_labels(km), s->n * sizeof *labels_out);
    sm_kmeans_destroy(km);
    return o;
}

typedef struct impl {
    const char *name;
    sm_kmeans_algorithm alg;  /* segmint */
    sm_kmeans_kernel kernel;
    const char *script;       /* anchors: bench/compare/<script> */
    const char *args;
    double samples[16];
    int count;
    double inertia;
    int n_iter;
    uint64_t n_distances;
    bool failed;
    char why[256];
} impl;

static void print_note_rows(const shape *s, double best_sklearn, impl *impls, size_t n_impls)
{
    double flops = 2.0 * (double)s->n * (double)s->k * (double)s->d;
    double bytes = (double)s->n * (double)s->d * 4.0;
    double gf = bench_floor_sgemm_gflops(), bw = bench_floor_triad_gbs();
    for (size_t i = 0; i < n_impls; i++) {
        impl *m = &impls[i];
        if (m->failed || m->count == 0) {
            bench_record r = {.bench = "kmeans", .case_name = s->name, .impl = m->name,
                              .stats = {NAN, NAN, NAN, 0}, .per = "iteration",
                              .threads = bench_threads(), .note = m->why};
            bench_report(&r);
            continue;
        }
        bench_stats st = bench_summarise(m->samples, m->count);
        char note[512];
        int len = snprintf(note, sizeof note, "%d it, inertia %.7g", m->n_iter, m->inertia);
        if (m->script == NULL) {
            if (isfinite(gf))
                len += snprintf(note + len, sizeof note - (size_t)len, ", %.2fx sgemm floor",
                                st.median / (flops / (gf * 1e9)));
            if (isfinite(bw))
                len += snprintf(note + len, sizeof note - (size_t)len, ", %.1fx memory floor",
                                st.median / (bytes / (bw * 1e9)));
            if (m->n_distances > 0)
                snprintf(note + len, sizeof note - (size_t)len, ", %.1f%% of distances",
                         100.0 * (double)m->n_distances /
                             ((double)s->n * (double)s->k * (double)(m->n_iter + 1)));
        }
        bench_record r = {.bench = "kmeans", .case_name = s->name, .impl = m->name, .stats = st,
                          .per = "iteration", .throughput = (double)s->n / st.median,
                          .throughput_unit = "rows/s", .threads = bench_threads(),
                          .ratio = m->script == NULL && best_sklearn > 0 ? best_sklearn / st.median : 0,
                          .note = note};
        bench_report(&r);
    }
    if (isfinite(gf) && isfinite(bw)) {
        bench_record r = {.bench = "kmeans", .case_name = s->name, .impl = "floor: 2nkd flops / n*d*4 B",
                          .stats = {flops / (gf * 1e9), bytes / (bw * 1e9), NAN, 1}, .per = "iteration",
                          .threads = bench_threads(), .note = "median = sgemm floor, min = memory floor"};
        char note[160];
        snprintf(note, sizeof note, "sgemm %.0f GFLOP/s, triad %.1f GB/s (bench_floors)", gf, bw);
        r.note = note;
        bench_report(&r);
    }
}

/* Labels that differ from scikit-learn's, and how many of those are ties
 * (the two centers within 1e-3 relative distance of the row). */
static void agreement(const shape *s, const float *x, const sm_cluster_id *ours, const char *sk_path,
                      const float *centers, double our_inertia, double sk_inertia)
{
    int32_t *theirs = malloc(s->n * sizeof *theirs);
    if (theirs == NULL || read_npy_int32(sk_path, theirs, s->n) != 0) {
        printf("\nagreement %s: could not read %s\n", s->name, sk_path);
        free(theirs);
        return;
    }
    size_t differ = 0, ties = 0;
    for (size_t i = 0; i < s->n; i++) {
        if ((int32_t)ours[i] == theirs[i])
            continue;
        differ++;
        double da = 0, db = 0;
        for (size_t f = 0; f < s->d; f++) {
            double a = x[i * s->d + f] - centers[ours[i] * s->d + f];
            double b = x[i * s->d + f] - centers[(size_t)theirs[i] * s->d + f];
            da += a * a;
            db += b * b;
        }
        ties += fabs(sqrt(da) - sqrt(db)) <= 1e-3 * sqrt(da);
    }
    double rel = fabs(our_inertia - sk_inertia) / sk_inertia;
    printf("\nagreement with scikit-learn lloyd, %s, same start, %d iterations: inertia %.9g vs "
           "%.9g (relative difference %.2e, %s 1e-4); labels differ for %zu of %zu rows, %zu of them "
           "within 1e-3 of a tie\n",
           s->name, ITERATIONS, our_inertia, sk_inertia, rel, rel <= 1e-4 ? "within" : "NOT within",
           differ, s->n, ties);
    free(theirs);
}

static void bench_shape(const shape *s, int reps, bool python, const char *scratch)
{
    float *x = make_blobs(s->n, s->d, (size_t)s->k, 20240601 + s->n + s->d);
    float *init = malloc((size_t)s->k * s->d * sizeof(float));
    sm_kmeans_params p;
    sm_kmeans_params_init(&p);
    p.n = s->n;
    p.d = s->d;
    p.k = s->k;
    p.seed = 1;
    sm_kmeans *km;
    sm_error err;
    if (sm_kmeans_create(&p, &km, &err) != SM_OK || sm_kmeans_init_centers(km, x, init, &err) != SM_OK) {
        fprintf(stderr, "bench_kmeans: %s\n", err.msg);
        exit(1);
    }
    sm_kmeans_destroy(km);
    char xpath[1024], cpath[1024], lpath[1024], args_lloyd[4096], args_elkan[4096], args_faiss[4096];
    snprintf(xpath, sizeof xpath, "%s/kmeans_x_%zu_%zu.npy", scratch, s->n, s->d);
    snprintf(cpath, sizeof cpath, "%s/kmeans_c_%zu_%zu_%d.npy", scratch, s->n, s->d, s->k);
    snprintf(lpath, sizeof lpath, "%s/kmeans_sklearn_labels_%zu_%zu_%d.npy", scratch, s->n, s->d, s->k);
    if (python && (write_npy(xpath, x, s->n, s->d, "<f4") != 0 ||
                   write_npy(cpath, init, (size_t)s->k, s->d, "<f4") != 0)) {
        fprintf(stderr, "bench_kmeans: cannot write %s: %s\n", xpath, strerror(errno));
        python = false;
    }
    int threads = bench_threads();
    snprintf(args_lloyd, sizeof args_lloyd, "--data %s --init %s --algorithm lloyd --max-iter %d --threads %d --labels %s",
             xpath, cpath, ITERATIONS, threads, lpath);
    snprintf(args_elkan, sizeof args_elkan, "--data %s --init %s --algorithm elkan --max-iter %d --threads %d",
             xpath, cpath, ITERATIONS, threads);
    snprintf(args_faiss, sizeof args_faiss, "--data %s --init %s --max-iter %d --threads %d", xpath,
             cpath, ITERATIONS, threads);
    impl impls[] = {
        {"segmint lloyd", SM_KMEANS_LLOYD, SM_KMEANS_KERNEL_FUSED, NULL, NULL, {0}, 0, 0, 0, 0, false, ""},
        {"segmint lloyd (sgemm tiles)", SM_KMEANS_LLOYD, SM_KMEANS_KERNEL_SGEMM, NULL, NULL, {0}, 0, 0, 0, 0, false, ""},
        {"segmint hamerly", SM_KMEANS_HAMERLY, 0, NULL, NULL, {0}, 0, 0, 0, 0, false, ""},
        {"segmint elkan", SM_KMEANS_ELKAN, 0, NULL, NULL, {0}, 0, 0, 0, 0, false, ""},
        {"segmint yinyang", SM_KMEANS_YINYANG, 0, NULL, NULL, {0}, 0, 0, 0, 0, false, ""},
        {"sklearn lloyd", 0, 0, "kmeans_sklearn.py", args_lloyd, {0}, 0, 0, 0, 0, false, ""},
        {"sklearn elkan", 0, 0, "kmeans_sklearn.py", args_elkan, {0}, 0, 0, 0, 0, false, ""},
        {"faiss", 0, 0, "kmeans_faiss.py", args_faiss, {0}, 0, 0, 0, 0, false, ""},
    };
    size_t n_impls = sizeof impls / sizeof impls[0];
    sm_cluster_id *our_labels = malloc(s->n * sizeof *our_labels);
    for (int rep = 0; rep < reps; rep++) {
        for (size_t i = 0; i < n_impls; i++) {
            impl *m = &impls[i];
            if (m->failed)
                continue;
            if (m->script == NULL) {
                run_out o = run_segmint(x, s, init, m->alg, m->kernel, i == 0 ? our_labels : NULL);
                m->samples[m->count++] = o.per_iter;
                m->inertia = o.inertia;
                m->n_iter = o.n_iter;
                m->n_distances = o.n_distances;
            } else if (python) {
                char out[8192];
                if (!bench_run_python(m->script, m->args, out, sizeof out, m->why, sizeof m->why)) {
                    m->failed = true;
                    continue;
                }
                m->samples[m->count++] = bench_json_number(out, "per_iter");
                m->inertia = bench_json_number(out, "inertia");
                m->n_iter = (int)bench_json_number(out, "n_iter");
            } else {
                m->failed = true;
                snprintf(m->why, sizeof m->why, "skipped (BENCH_KMEANS_NO_PYTHON)");
            }
        }
    }
    double best_sklearn = 0;
    for (size_t i = 0; i < n_impls; i++)
        if (impls[i].script != NULL && strstr(impls[i].name, "sklearn") && !impls[i].failed &&
            impls[i].count > 0) {
            bench_stats st = bench_summarise(impls[i].samples, impls[i].count);
            if (best_sklearn == 0 || st.median < best_sklearn)
                best_sklearn = st.median;
        }
    print_note_rows(s, best_sklearn, impls, n_impls);
    if (python && !impls[5].failed) {
        /* our centers after the same 20 iterations, for the tie test */
        sm_kmeans_params q;
        sm_kmeans_params_init(&q);
        q.n = s->n;
        q.d = s->d;
        q.k = s->k;
        q.init = SM_KMEANS_INIT_GIVEN;
        q.max_iter = ITERATIONS;
        q.tol = 0.0;
        q.algorithm = SM_KMEANS_LLOYD;
        if (sm_kmeans_create(&q, &km, &err) == SM_OK && sm_kmeans_fit(km, x, init, &err) == SM_OK) {
            agreement(s, x, sm_kmeans_get_labels(km), lpath, sm_kmeans_get_centers(km),
                      impls[0].inertia, impls[5].inertia);
        }
        sm_kmeans_destroy(km);
        remove(lpath);
    }
    if (python) {
        remove(xpath);
        remove(cpath);
    }
    free(our_labels);
    free(x);
    free(init);
}

/* k-means++ and k-means|| at (1M, 32, 64), against scikit-learn's kmeans_plusplus. */
static void bench_init(int reps, bool python, const char *scratch)
{
    const shape *s = &shapes[1];
    float *x = make_blobs(s->n, s->d, (size_t)s->k, 20240601 + s->n + s->d);
    float *centers = malloc((size_t)s->k * s->d * sizeof(float));
    bench_print_header("k-means initialisation, n=1M d=32 k=64 (seconds per initialisation)");
    double sk = 0;
    char why[256] = "", out[8192];
    char xpath[1024];
    snprintf(xpath, sizeof xpath, "%s/kmeans_x_init.npy", scratch);
    if (python && write_npy(xpath, x, s->n, s->d, "<f4") == 0) {
        char args[8192];
        snprintf(args, sizeof args, "--data %s --k %d --mode init --threads %d", xpath, s->k,
                 bench_threads());
        if (bench_run_python("kmeans_sklearn.py", args, out, sizeof out, why, sizeof why)) {
            sk = bench_json_number(out, "seconds");
            bench_record r = {.bench = "kmeans", .case_name = "init n=1M d=32 k=64",
                              .impl = "sklearn kmeans_plusplus", .stats = {sk, sk, sk, 1},
                              .per = "init", .threads = bench_threads(), .note = "one run (slow)"};
            bench_report(&r);
        }
        remove(xpath);
    }
    const struct {
        sm_kmeans_init init;
        const char *name;
    } inits[] = {{SM_KMEANS_INIT_PLUSPLUS, "segmint k-means++"}, {SM_KMEANS_INIT_PARALLEL, "segmint k-means||"}};
    for (size_t m = 0; m < 2; m++) {
        double samples[16];
        int count = 0;
        for (int rep = 0; rep < reps; rep++) {
            sm_kmeans_params p;
            sm_kmeans_params_init(&p);
            p.n = s->n;
            p.d = s->d;
            p.k = s->k;
            p.seed = (uint64_t)rep + 1;
            p.init = inits[m].init;
            sm_kmeans *km;
            sm_error err;
            sm_kmeans_create(&p, &km, &err);
            double t0 = bench_now();
            if (sm_kmeans_init_centers(km, x, centers, &err) != SM_OK) {
                fprintf(stderr, "bench_kmeans: %s\n", err.msg);
                exit(1);
            }
            samples[count++] = bench_now() - t0;
            sm_kmeans_destroy(km);
        }
        bench_stats st = bench_summarise(samples, count);
        bench_record r = {.bench = "kmeans", .case_name = "init n=1M d=32 k=64", .impl = inits[m].name,
                          .stats = st, .per = "init", .threads = bench_threads(),
                          .ratio = sk > 0 ? sk / st.median : 0,
                          .note = "includes the column statistics pass"};
        bench_report(&r);
    }
    free(x);
    free(centers);
}

/* 10M customers x 16 features, k = 64, fully in memory. */
static void bench_big(void)
{
    shape s = {10000000, 16, 64, "n=10M d=16 k=64"};
    bench_print_header("k-means, 10M x 16, k = 64, in memory (whole fit, k-means++ + auto algorithm, default tol)");
    bench_peak_rss_reset();
    float *x = make_blobs(s.n, s.d, (size_t)s.k, 77);
    sm_kmeans_params p;
    sm_kmeans_params_init(&p);
    p.n = s.n;
    p.d = s.d;
    p.k = s.k;
    p.seed = 1;
    sm_kmeans *km;
    sm_error err;
    sm_kmeans_create(&p, &km, &err);
    double t0 = bench_now();
    if (sm_kmeans_fit(km, x, NULL, &err) != SM_OK) {
        fprintf(stderr, "bench_kmeans: %s\n", err.msg);
        exit(1);
    }
    double t = bench_now() - t0;
    sm_kmeans_result r;
    sm_kmeans_get_result(km, &r);
    char note[256];
    snprintf(note, sizeof note, "%s, %d iterations (%.3f s each), init %.2f s, inertia %.7g",
             sm_kmeans_algorithm_name(r.algorithm), r.n_iter, r.seconds_iterations / r.n_iter,
             r.seconds_init, r.inertia);
    bench_record rec = {.bench = "kmeans", .case_name = s.name, .impl = "segmint (auto)",
                        .stats = {t, t, t, 1}, .per = "fit", .throughput = (double)s.n / t,
                        .throughput_unit = "rows/s", .peak_rss_kb = bench_peak_rss_kb(),
                        .threads = bench_threads(), .note = note};
    bench_report(&rec);
    sm_kmeans_destroy(km);
    free(x);
}

int main(void)
{
    openblas_set_num_threads(1);
    int reps = env_int("BENCH_KMEANS_REPS", 3);
    if (reps < 1 || reps > 16)
        reps = 3;
    bool python = !env_flag("BENCH_KMEANS_NO_PYTHON");
    const char *scratch = bench_scratch_dir();
    const char *only = getenv("BENCH_KMEANS_SHAPES");
    bench_print_header("k-means, 20 iterations from the same k-means++ start (seconds per iteration; "
                       "speed-up = best scikit-learn / segmint)");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char id[8];
        snprintf(id, sizeof id, "%zu", i);
        if (only != NULL && only[0] != '\0' && strstr(only, id) == NULL)
            continue;
        bench_shape(&shapes[i], reps, python, scratch);
    }
    if (only == NULL || only[0] == '\0' || strstr(only, "init") != NULL)
        bench_init(reps, python, scratch);
    if (env_flag("BENCH_KMEANS_BIG"))
        bench_big();
    return 0;
}
