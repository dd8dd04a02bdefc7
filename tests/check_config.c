/* SPDX-License-Identifier: MIT */
/* The strict configuration parser and the date parser. */
#include "engine/config.h"
#include "kernels/core.h"
#include "storage/fields.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

typedef struct demo_config {
    uint64_t k;
    uint64_t trees;
    double contamination;
    bool verbose;
    char segments[SM_CONFIG_STRING_MAX];
    int algorithm;
    int64_t as_of;
} demo_config;

static const char *const algorithms[] = {"auto", "lloyd", "elkan", NULL};
static const sm_config_key keys[] = {
    {"as_of", SM_CONFIG_DATE, offsetof(demo_config, as_of), 0, 0, NULL, "date"},
    {"kmeans.k", SM_CONFIG_UINT_OR_AUTO, offsetof(demo_config, k), 1, 1000, NULL, "clusters"},
    {"kmeans.algorithm", SM_CONFIG_CHOICE, offsetof(demo_config, algorithm), 0, 0, algorithms, "algorithm"},
    {"anomaly.trees", SM_CONFIG_UINT, offsetof(demo_config, trees), 1, 10000, NULL, "trees"},
    {"anomaly.contamination", SM_CONFIG_DOUBLE, offsetof(demo_config, contamination), 0.0001, 0.5, NULL, "share"},
    {"output.verbose", SM_CONFIG_BOOL, offsetof(demo_config, verbose), 0, 0, NULL, "verbose"},
    {"rfm.segments", SM_CONFIG_STRING, offsetof(demo_config, segments), 0, 0, NULL, "table"},
};

static demo_config defaults(void)
{
    demo_config c;
    memset(&c, 0, sizeof c);
    c.k = 8;
    c.trees = 100;
    c.contamination = 0.01;
    return c;
}

static char dir[4096], path[4200];

static void setup(void)
{
    sm_test_tmpdir(dir, sizeof dir, "config");
    snprintf(path, sizeof path, "%s/run.conf", dir);
}

static void teardown(void)
{
    sm_test_rmtree(dir);
}

START_TEST(sections_comments_and_values)
{
    sm_test_write_file(path, "# a run\n"
                             "as_of = 2011-12-09\n"
                             "[kmeans]\n"
                             "k = auto   # sweep\n"
                             "algorithm = elkan\n"
                             "\n"
                             "[anomaly]\n"
                             "  trees = 250\n"
                             "contamination = 0.02\n"
                             "[output]\nverbose = true\n"
                             "[rfm]\nsegments = \"my # table.csv\"\n");
    demo_config c = defaults();
    sm_error err;
    ck_assert_int_eq(sm_config_parse_file(path, keys, SM_ARRAY_LEN(keys), &c, &err), SM_OK);
    ck_assert_uint_eq(c.k, 0);
    ck_assert_int_eq(c.algorithm, 2);
    ck_assert_uint_eq(c.trees, 250);
    ck_assert_double_eq(c.contamination, 0.02);
    ck_assert(c.verbose);
    ck_assert_str_eq(c.segments, "my # table.csv");
    ck_assert_int_eq(c.as_of, 1323388800); /* 2011-12-09T00:00:00Z */
}
END_TEST

START_TEST(errors_name_file_line_and_key)
{
    static const struct {
        const char *text;
        uint64_t line;
        const char *field, *words;
    } cases[] = {
        {"[kmeans]\nk = 8\nkk = 3\n", 3, "kmeans.kk", "unknown setting"},
        {"[kmeans]\nk = 8\nk = 9\n", 3, "kmeans.k", "set twice"},
        {"[anomaly]\ntrees = -4\n", 2, "anomaly.trees", "not a valid non-negative integer"},
        {"[anomaly]\ntrees = 0\n", 2, "anomaly.trees", "outside [1, 10000]"},
        {"[anomaly]\ncontamination = nan\n", 2, "anomaly.contamination", "not a finite number"},
        {"[kmeans]\nalgorithm = fast\n", 2, "kmeans.algorithm", "not one of: auto, lloyd, elkan"},
        {"[output]\nverbose = yes\n", 2, "output.verbose", "expected true or false"},
        {"as_of = 2011-02-30\n", 1, "as_of", "not a date"},
        {"[kmeans\n", 1, "", "malformed section"},
        {"just words\n", 1, "", "expected 'key = value'"},
        {"[rfm]\nsegments = \"open\n", 2, "rfm.segments", "unbalanced quotes"},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
        sm_test_write_file(path, cases[i].text);
        demo_config c = defaults();
        sm_error err;
        ck_assert_int_eq(sm_config_parse_file(path, keys, SM_ARRAY_LEN(keys), &c, &err), SM_ERR_PARSE);
        ck_assert_str_eq(err.path, path);
        ck_assert_uint_eq(err.line, cases[i].line);
        ck_assert_str_eq(err.field, cases[i].field);
        ck_assert_msg(strstr(err.msg, cases[i].words) != NULL, "case %zu: '%s'", i, err.msg);
    }
    sm_error err;
    demo_config c = defaults();
    ck_assert_int_eq(sm_config_parse_file("/nonexistent/run.conf", keys, SM_ARRAY_LEN(keys), &c, &err), SM_ERR_IO);
    ck_assert_str_eq(err.path, "/nonexistent/run.conf");
}
END_TEST

START_TEST(printed_configuration_parses_back_identically)
{
    demo_config c = defaults();
    sm_error err;
    ck_assert_int_eq(sm_config_set(keys, SM_ARRAY_LEN(keys), &c, "anomaly.contamination", "0.1", "--set", 0, &err), SM_OK);
    ck_assert_int_eq(sm_config_set(keys, SM_ARRAY_LEN(keys), &c, "rfm.segments", "table.csv", "--set", 0, &err), SM_OK);
    ck_assert_int_eq(sm_config_set(keys, SM_ARRAY_LEN(keys), &c, "as_of", "2011-12-09T12:00:00+01:00", "--set", 0, &err),
                     SM_OK);
    ck_assert_int_eq(sm_config_set(keys, SM_ARRAY_LEN(keys), &c, "kmeans.k", "nine", "--set", 0, &err), SM_ERR_PARSE);
    ck_assert_str_eq(err.path, "--set");
    FILE *f = fopen(path, "w");
    sm_config_print(f, keys, SM_ARRAY_LEN(keys), &c);
    fclose(f);
    demo_config back = defaults();
    back.k = 77;
    ck_assert_int_eq(sm_config_parse_file(path, keys, SM_ARRAY_LEN(keys), &back, &err), SM_OK);
    ck_assert_int_eq(memcmp(&back, &c, sizeof c), 0);
}
END_TEST

/* The DATE settings go through storage's ISO 8601 parser; these are the
 * forms a user types for --as-of and calibration dates. Expected epochs
 * computed with Python's datetime.timestamp(). */
START_TEST(dates)
{
    static const struct {
        const char *text;
        int64_t expect;
    } good[] = {
        {"1970-01-01", 0},
        {"2000-02-29T23:59:59Z", 951868799},
        {"2011-12-09 12:50:00", 1323435000},
        {"2011-12-09T12:50:00.250-05:30", 1323435000 + 5 * 3600 + 1800},
        {"1969-12-31T23:00:00Z", -3600},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(good); i++) {
        int64_t t = 0;
        ck_assert_int_eq(sm_parse_time_iso(good[i].text, strlen(good[i].text), &t), SM_FIELD_OK);
        ck_assert_int_eq(t, good[i].expect);
    }
    static const char *const bad[] = {"1900-02-29", "2011-13-01", "2011-12-09T25:00", "2011-12-9", "2011-12-09x"};
    for (size_t i = 0; i < SM_ARRAY_LEN(bad); i++) {
        int64_t t;
        ck_assert_int_ne(sm_parse_time_iso(bad[i], strlen(bad[i]), &t), SM_FIELD_OK);
    }
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *core = tcase_create("core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_test(core, sections_comments_and_values);
    tcase_add_test(core, printed_configuration_parses_back_identically);
    tcase_add_test(core, dates);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_checked_fixture(errors, setup, teardown);
    tcase_add_test(errors, errors_name_file_line_and_key);
    suite_add_tcase(s, errors);
    return s;
}

int main(void)
{
    return sm_test_run(config_suite());
}
