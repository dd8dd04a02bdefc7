/* SPDX-License-Identifier: MIT */
/* Assignment rows (byte layout, CSV, JSON Lines) and the JSON reader that
 * reads run records back. */
#include "engine/assignments.h"
#include "engine/json.h"
#include "kernels/core.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sm_assignment sample(void)
{
    sm_assignment a;
    sm_assignment_clear(&a);
    a.segment = 2;
    a.distance = 0.5f;
    a.r_score = 5, a.f_score = 4, a.m_score = 3;
    a.rfm_segment = 1;
    a.value_tier = SM_TIER_KEY;
    a.lifecycle = 2;
    a.anomaly_flag = 0;
    a.clv_historic = 1234.5;
    a.clv_model = 99.25;
    a.p_alive = 0.875;
    a.anomaly_score = 0.25f;
    a.n_cross_sell = 2;
    a.cross_sell_item[0] = 7, a.cross_sell_score[0] = 2.5f;
    a.cross_sell_item[1] = 1, a.cross_sell_score[1] = 1.0f;
    return a;
}

static const char *const customer_keys[] = {"c0", "=cmd()"};
static const char *const item_keys[] = {"MUG", "JAR,LARGE", "", "", "", "", "", "BOX"};
static const char *const segment_names[] = {"s0", "s1", "high-value frequent"};
static const char *const rfm_names[] = {"Champions", "Loyal"};
static const char *const lifecycle_names[] = {"new", "repeat", "loyal"};

static sm_assignment_names names(void)
{
    return (sm_assignment_names){customer_keys, 2, item_keys, 8, segment_names, 3, rfm_names, 2, lifecycle_names, 3};
}

START_TEST(bytes_round_trip_and_layout)
{
    sm_assignment a = sample(), back;
    unsigned char bytes[SM_ASSIGNMENT_BYTES];
    sm_assignment_encode(&a, bytes);
    /* spot-check the documented offsets (storage/SCHEMA.md) */
    ck_assert_uint_eq(bytes[0], 2);     /* segment, little-endian u32 */
    ck_assert_uint_eq(bytes[8], 5);     /* r_score */
    ck_assert_uint_eq(bytes[12], SM_TIER_KEY);
    ck_assert_uint_eq(bytes[15], 2);    /* n_cross_sell */
    double p_alive;
    memcpy(&p_alive, bytes + 40, 8);
    ck_assert_double_eq(p_alive, 0.875);
    ck_assert_uint_eq(bytes[64], 7);    /* first cross-sell item */
    sm_error err;
    ck_assert_int_eq(sm_assignment_decode(bytes, &back, &err), SM_OK);
    ck_assert_uint_eq(back.segment, 2);
    ck_assert_double_eq(back.clv_historic, 1234.5);
    ck_assert(isnan(back.clv_discounted));
    ck_assert_uint_eq(back.cross_sell_item[1], 1);
    ck_assert_float_eq(back.cross_sell_score[0], 2.5f);
    bytes[8] = 9; /* a score no writer produces */
    ck_assert_int_eq(sm_assignment_decode(bytes, &back, &err), SM_ERR_STORAGE);
}
END_TEST

static char *render(bool json, sm_customer_id customer, const sm_assignment *a)
{
    static char buf[2048];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    sm_assignment_names n = names();
    if (json)
        sm_assignment_jsonl_row(f, customer, a, &n);
    else
        sm_assignment_csv_row(f, customer, a, &n);
    fclose(f);
    return buf;
}

START_TEST(csv_and_jsonl_rows)
{
    sm_assignment a = sample();
    ck_assert_str_eq(render(false, 0, &a),
                     "c0,2,high-value frequent,0.5,5,4,3,543,Loyal,key,loyal,1234.5,,99.25,0.875,,0.25,0,"
                     "\"BOX;JAR,LARGE\"\n");
    /* S5: a customer id that looks like a formula is neutralised */
    ck_assert_str_eq(strtok(render(false, 1, &a), ","), "'=cmd()");
    ck_assert_str_eq(render(true, 0, &a),
                     "{\"customer_id\":\"c0\",\"segment\":2,\"segment_name\":\"high-value frequent\",\"distance\":0.5,"
                     "\"r_score\":5,\"f_score\":4,\"m_score\":3,\"rfm_code\":\"543\",\"rfm_segment\":\"Loyal\","
                     "\"value_tier\":\"key\",\"lifecycle\":\"loyal\",\"clv_historic\":1234.5,\"clv_discounted\":null,"
                     "\"clv_model\":99.25,\"p_alive\":0.875,\"expected_purchases\":null,\"anomaly_score\":0.25,"
                     "\"anomaly_flag\":false,\"cross_sell\":[{\"item\":\"BOX\",\"score\":2.5},"
                     "{\"item\":\"JAR,LARGE\",\"score\":1}]}\n");
    /* nothing computed: every field empty / null, never zero */
    sm_assignment none;
    sm_assignment_clear(&none);
    ck_assert_str_eq(render(false, 0, &none), "c0,,,,,,,,,,,,,,,,,,\n");
    ck_assert_ptr_nonnull(strstr(render(true, 0, &none), "\"segment\":null,\"segment_name\":null,\"distance\":null"));
    /* the header is the contract of the issue, in order */
    char header[512];
    FILE *f = fmemopen(header, sizeof header, "w");
    sm_assignment_csv_header(f);
    fclose(f);
    ck_assert_str_eq(header, "customer_id,segment,segment_name,distance,r_score,f_score,m_score,rfm_code,"
                             "rfm_segment,value_tier,lifecycle,clv_historic,clv_discounted,clv_model,p_alive,"
                             "expected_purchases,anomaly_score,anomaly_flag,cross_sell\n");
}
END_TEST

START_TEST(json_reader_accepts_valid_documents)
{
    const char *text = " {\"id\": 3, \"name\": \"caf\\u00e9 \\ud83d\\ude00\", \"xs\": [1.5, -2e3, true, null],"
                       " \"nested\": {\"empty\": [], \"o\": {}}} ";
    sm_json v;
    sm_error err;
    ck_assert_int_eq(sm_json_parse(text, strlen(text), &v, &err), SM_OK);
    ck_assert_double_eq(sm_json_get_number(&v, "id", -1), 3);
    ck_assert_str_eq(sm_json_get_string(&v, "name", ""), "caf\xC3\xA9 \xF0\x9F\x98\x80");
    const sm_json *xs = sm_json_get(&v, "xs");
    ck_assert_uint_eq(xs->n, 4);
    ck_assert_double_eq(xs->items[1].number, -2000);
    ck_assert(xs->items[2].boolean);
    ck_assert_int_eq(xs->items[3].type, SM_JSON_NULL);
    ck_assert_uint_eq(sm_json_get(sm_json_get(&v, "nested"), "empty")->n, 0);
    ck_assert_ptr_null(sm_json_get(&v, "missing"));
    ck_assert_str_eq(sm_json_get_string(&v, "id", "fallback"), "fallback");
    sm_json_free(&v);
}
END_TEST

START_TEST(json_reader_rejects_malformed_documents)
{
    static const char *const bad[] = {"", "{", "{\"a\" 1}", "{\"a\":1,}", "[1 2]", "\"open", "01", "tru",
                                      "{\"a\":1} x", "\"\\x\"", "\"\\ud800\"", "\"tab\there\"", "[1,]", "-"};
    for (size_t i = 0; i < SM_ARRAY_LEN(bad); i++) {
        sm_json v;
        sm_error err;
        ck_assert_msg(sm_json_parse(bad[i], strlen(bad[i]), &v, &err) == SM_ERR_PARSE, "accepted '%s'", bad[i]);
    }
    /* deep nesting is refused, not recursed into */
    char deep[200];
    memset(deep, '[', sizeof deep);
    sm_json v;
    sm_error err;
    ck_assert_int_eq(sm_json_parse(deep, sizeof deep, &v, &err), SM_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "nesting"));
}
END_TEST

START_TEST(json_reader_out_of_memory)
{
    const char *text = "{\"a\": [1, 2, {\"b\": \"c\"}], \"d\": \"e\"}";
    for (uint64_t nth = 1;; nth++) {
        sm_json v;
        sm_error err;
        sm_alloc_fail_at(nth, false);
        int rc = sm_json_parse(text, strlen(text), &v, &err);
        sm_alloc_fail_at(0, false);
        if (rc == SM_OK) {
            sm_json_free(&v);
            break;
        }
        ck_assert_int_eq(rc, SM_ERR_NOMEM);
        ck_assert_uint_lt(nth, 50);
    }
}
END_TEST

static Suite *assignments_suite(void)
{
    Suite *s = suite_create("assignments");
    TCase *core = tcase_create("core");
    tcase_add_test(core, bytes_round_trip_and_layout);
    tcase_add_test(core, csv_and_jsonl_rows);
    tcase_add_test(core, json_reader_accepts_valid_documents);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, json_reader_rejects_malformed_documents);
    suite_add_tcase(s, errors);
    TCase *oom = tcase_create("oom");
    tcase_add_test(oom, json_reader_out_of_memory);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    return sm_test_run(assignments_suite());
}
