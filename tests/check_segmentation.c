/* SPDX-License-Identifier: MIT */
/* The segmentation run as a library call: identical rows whatever the thread
 * count (F11), and a clean SM_ERR_NOMEM, no leak, no crash, when any
 * allocation of the run path fails (F5). */
#include "datasets/gen.h"
#include "engine/segmentation.h"
#include "kernels/core.h"
#include "testutil.h"

#include <string.h>

static char dir[4096], store_dir[4200];

/* A store of `customers` generated customers. */
static sm_store *generated_store(uint64_t customers)
{
    sm_test_tmpdir(dir, sizeof dir, "seg");
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/log.csv", dir);
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    sm_gen_params gp;
    sm_gen_params_init(&gp);
    gp.n_customers = customers;
    gp.seed = sm_test_seed(11);
    gp.anomaly_rate = 0.02;
    sm_gen_summary summary;
    sm_error err;
    FILE *f = fopen(csv, "w");
    ck_assert_int_eq(sm_gen_write(&gp, f, NULL, NULL, NULL, &summary, &err), SM_OK);
    fclose(f);
    sm_store *store;
    ck_assert_int_eq(sm_store_open(store_dir, SM_STORE_CREATE, &store, &err), SM_OK);
    sm_import_options options;
    sm_import_options_init(&options);
    sm_import_result result;
    const char *paths[] = {csv};
    ck_assert_int_eq(sm_store_import(store, paths, 1, &options, &result, &err), SM_OK);
    return store;
}

static void small_config(sm_run_config *c, int threads)
{
    sm_run_config_init(c);
    c->threads = (uint64_t)threads;
    c->k = 4;
    c->n_init = 2;
    c->trees = 20;
    c->min_support = 0.01;
}

START_TEST(rows_do_not_depend_on_thread_count)
{
    sm_store *store = generated_store(1500);
    sm_segmentation one, many;
    sm_run_config config;
    sm_error err;
    sm_progress silent = {NULL, NULL};
    small_config(&config, 1);
    config.k = 0; /* the k sweep included */
    config.k_max = 6;
    ck_assert_int_eq(sm_segmentation_run(store, &config, &silent, &one, &err), SM_OK);
    small_config(&config, 3);
    config.k = 0;
    config.k_max = 6;
    ck_assert_int_eq(sm_segmentation_run(store, &config, &silent, &many, &err), SM_OK);
    ck_assert_uint_eq(one.n, 1500);
    ck_assert_uint_eq(one.n, many.n);
    ck_assert_uint_eq(one.k, many.k);
    /* every field of every row, bit for bit */
    ck_assert_int_eq(memcmp(one.rows, many.rows, one.n * sizeof *one.rows), 0);
    ck_assert_int_eq(memcmp(one.centres, many.centres, (size_t)one.k * one.d * sizeof(double)), 0);
    ck_assert(one.have_bgnbd);
    ck_assert_double_eq(one.bgnbd.params.r, many.bgnbd.params.r);
    ck_assert_uint_eq(one.flagged, many.flagged);
    /* every customer has a segment, scores, a tier, a stage */
    for (uint32_t c = 0; c < one.n; c++) {
        ck_assert_uint_lt(one.rows[c].segment, one.k);
        ck_assert_uint_ge(one.rows[c].r_score, 1);
        ck_assert_uint_le(one.rows[c].value_tier, SM_TIER_SMALL);
    }
    uint64_t sizes = 0;
    for (uint32_t s = 0; s < one.k; s++)
        sizes += one.segments[s].size;
    ck_assert_uint_eq(sizes, one.graded);
    sm_segmentation_free(&one);
    sm_segmentation_free(&many);
    sm_store_close(store);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(every_allocation_failure_is_reported)
{
    sm_store *store = generated_store(120);
    sm_run_config config;
    small_config(&config, 2);
    config.sweep_rows = 100; /* the sample and refine path too */
    sm_progress silent = {NULL, NULL};
    uint64_t nth = 1;
    for (;; nth++) {
        sm_segmentation s;
        sm_error err;
        sm_error_clear(&err);
        sm_alloc_fail_at(nth, false);
        int rc = sm_segmentation_run(store, &config, &silent, &s, &err);
        sm_alloc_fail_at(0, false);
        if (rc == SM_OK) {
            sm_segmentation_free(&s);
            break;
        }
        ck_assert_msg(rc == SM_ERR_NOMEM, "allocation %" PRIu64 ": %s (%s)", nth, sm_strerror(rc), err.msg);
        ck_assert_ptr_null(s.rows); /* nothing half-built is handed back */
    }
    ck_assert_uint_gt(nth, 50);
    sm_store_close(store);
    sm_test_rmtree(dir);
}
END_TEST

static Suite *segmentation_suite(void)
{
    Suite *s = suite_create("segmentation");
    TCase *determinism = tcase_create("determinism");
    tcase_set_timeout(determinism, 300);
    tcase_add_test(determinism, rows_do_not_depend_on_thread_count);
    suite_add_tcase(s, determinism);
    TCase *oom = tcase_create("oom");
    tcase_set_timeout(oom, 600);
    tcase_add_test(oom, every_allocation_failure_is_reported);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    return sm_test_run(segmentation_suite());
}
