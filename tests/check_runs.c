/* SPDX-License-Identifier: MIT */
/* Runs: a record and its assignment rows stored together and read back. */
#include "engine/run_record.h"
#include "kernels/core.h"
#include "segmint/store.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static char dir[4096];

static sm_store *store_with_customers(void)
{
    sm_test_tmpdir(dir, sizeof dir, "runs");
    char csv[4200], store_dir[4200];
    snprintf(csv, sizeof csv, "%s/log.csv", dir);
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    sm_test_write_file(csv, "invoice,customer_id,time,item,quantity,price\n"
                            "1,a,2023-01-01,x,1,1.00\n2,b,2023-01-02,y,1,2.00\n3,c,2023-01-03,x,1,3.00\n");
    sm_store *store;
    sm_error err;
    ck_assert_int_eq(sm_store_open(store_dir, SM_STORE_CREATE, &store, &err), SM_OK);
    sm_import_options options;
    sm_import_options_init(&options);
    sm_import_result result;
    const char *paths[] = {csv};
    ck_assert_int_eq(sm_store_import(store, paths, 1, &options, &result, &err), SM_OK);
    return store;
}

START_TEST(record_and_rows_round_trip)
{
    sm_store *store = store_with_customers();
    static const char *const features[] = {"recency_days", "frequency"};
    const double c0[] = {1, 2}, c1[] = {3, 4};
    sm_run_segment segments[] = {{"recent", 2, c0, c0}, {"lapsed \"big\" spenders", 1, c1, c1}};
    static const char *const lifecycle[] = {"new", "repeat"};
    sm_run_description run = {.kind = "run", .started = 1700000000, .finished = 1700000005, .as_of = 1699999999,
                              .config = "[kmeans]\nk = 2\n", .features = features, .n_features = 2,
                              .segments = segments, .n_segments = 2, .lifecycle = lifecycle, .n_lifecycle = 2,
                              .n_counts = 1, .n_timings = 1, .details_json = "{\"bgnbd\":{\"r\":0.243}}"};
    run.counts[0] = (sm_run_pair){"customers", 3};
    run.timings[0] = (sm_run_pair){"kmeans", 0.25};
    sm_customer_id customers[3] = {0, 1, 2};
    sm_assignment rows[3];
    for (int i = 0; i < 3; i++) {
        sm_assignment_clear(&rows[i]);
        rows[i].segment = (uint32_t)(i % 2);
        rows[i].lifecycle = (uint8_t)(i % 2);
    }
    rows[2].clv_model = 12.5;
    uint64_t id1, id2;
    sm_error err;
    ck_assert_int_eq(sm_run_store(store, &run, customers, rows, 3, &id1, &err), SM_OK);
    run.kind = "kmeans";
    ck_assert_int_eq(sm_run_store(store, &run, customers, rows, 2, &id2, &err), SM_OK);
    ck_assert_uint_eq(id2, id1 + 1);

    sm_run_loaded loaded;
    ck_assert_int_eq(sm_run_load(store, 0, &loaded, &err), SM_OK); /* 0 = latest */
    ck_assert_uint_eq(loaded.info.id, id2);
    ck_assert_str_eq(sm_json_get_string(&loaded.record, "kind", ""), "kmeans");
    sm_run_loaded_free(&loaded);
    ck_assert_int_eq(sm_run_load(store, id1, &loaded, &err), SM_OK);
    ck_assert_uint_eq(loaded.n_segments, 2);
    ck_assert_str_eq(loaded.segment_names[1], "lapsed \"big\" spenders");
    ck_assert_str_eq(loaded.lifecycle_names[1], "repeat");
    ck_assert_str_eq(sm_json_get_string(&loaded.record, "as_of", ""), "2023-11-14T22:13:19Z");
    ck_assert_str_eq(sm_json_get_string(&loaded.record, "config", ""), "[kmeans]\nk = 2\n");
    ck_assert_double_eq(sm_json_get_number(sm_json_get(sm_json_get(&loaded.record, "details"), "bgnbd"), "r", 0), 0.243);
    ck_assert_uint_eq(loaded.info.n_assignments, 3);

    sm_assignments stored;
    ck_assert_int_eq(sm_store_run_assignments(store, id1, &stored, &err), SM_OK);
    ck_assert_uint_eq(stored.value_size, SM_ASSIGNMENT_BYTES);
    sm_assignment back;
    ck_assert_int_eq(sm_assignment_decode(stored.values + 2 * SM_ASSIGNMENT_BYTES, &back, &err), SM_OK);
    ck_assert_double_eq(back.clv_model, 12.5);
    ck_assert(isnan(back.p_alive));
    sm_assignments_free(&stored);
    sm_run_loaded_free(&loaded);

    ck_assert_int_eq(sm_run_load(store, 99, &loaded, &err), SM_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "no run 99"));
    /* invalid caller JSON in details never reaches the store */
    run.details_json = "{broken";
    ck_assert_int_eq(sm_run_store(store, &run, customers, rows, 3, &id1, &err), SM_ERR_INVALID_ARG);
    sm_store_close(store);
    sm_test_rmtree(dir);
}
END_TEST

static Suite *runs_suite(void)
{
    Suite *s = suite_create("runs");
    TCase *core = tcase_create("core");
    tcase_add_test(core, record_and_rows_round_trip);
    suite_add_tcase(s, core);
    return s;
}

int main(void)
{
    return sm_test_run(runs_suite());
}
