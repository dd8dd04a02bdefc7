/* SPDX-License-Identifier: MIT */
/* Field conversions of the importers (B5 numbers, B6 dates) and SHA-256,
 * against hand-computed values and naive references. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"
#include "kernels/rng.h"
#include "storage/fields.h"
#include "storage/sha256.h"
#include "testutil.h"

static sm_field_status dec(const char *s, int64_t *m, int32_t *e)
{
    sm_decimal d = {0, 0};
    sm_field_status st = sm_parse_decimal(s, strlen(s), &d);
    *m = d.mantissa;
    *e = d.exponent;
    return st;
}

START_TEST(decimal_exact_forms)
{
    int64_t m;
    int32_t e;
    ck_assert_int_eq(dec("2.55", &m, &e), SM_FIELD_OK);
    ck_assert_int_eq(m, 255);
    ck_assert_int_eq(e, -2);
    ck_assert_int_eq(dec(" -0.50 ", &m, &e), SM_FIELD_OK);
    ck_assert_int_eq(m, -5); /* trailing zero dropped */
    ck_assert_int_eq(e, -1);
    ck_assert_int_eq(dec("1200", &m, &e), SM_FIELD_OK);
    ck_assert_int_eq(m, 12);
    ck_assert_int_eq(e, 2);
    ck_assert_int_eq(dec("1200.5", &m, &e), SM_FIELD_OK);
    ck_assert_int_eq(m, 12005);
    ck_assert_int_eq(e, -1);
    ck_assert_int_eq(dec(".5", &m, &e), SM_FIELD_OK);
    ck_assert_int_eq(m, 5);
    ck_assert_int_eq(dec("5.", &m, &e), SM_FIELD_OK);
    ck_assert_int_eq(m, 5);
    ck_assert_int_eq(dec("1.5e2", &m, &e), SM_FIELD_OK);
    ck_assert_int_eq(m, 15);
    ck_assert_int_eq(e, 1);
    ck_assert_int_eq(dec("0000", &m, &e), SM_FIELD_OK);
    ck_assert_int_eq(m, 0);
    ck_assert_int_eq(dec("+7", &m, &e), SM_FIELD_OK);
    ck_assert_int_eq(m, 7);
}
END_TEST

START_TEST(decimal_rejections_name_the_problem)
{
    int64_t m;
    int32_t e;
    ck_assert_int_eq(dec("", &m, &e), SM_FIELD_EMPTY);
    ck_assert_int_eq(dec("   ", &m, &e), SM_FIELD_EMPTY);
    ck_assert_int_eq(dec("NaN", &m, &e), SM_FIELD_NAN);
    ck_assert_int_eq(dec("-nan", &m, &e), SM_FIELD_NAN);
    ck_assert_int_eq(dec("inf", &m, &e), SM_FIELD_INFINITE);
    ck_assert_int_eq(dec("-Infinity", &m, &e), SM_FIELD_INFINITE);
    ck_assert_int_eq(dec("1e309", &m, &e), SM_FIELD_INFINITE);
    ck_assert_int_eq(dec("abc", &m, &e), SM_FIELD_SYNTAX);
    ck_assert_int_eq(dec("1,5", &m, &e), SM_FIELD_SYNTAX);
    ck_assert_int_eq(dec("£2.55", &m, &e), SM_FIELD_SYNTAX);
    ck_assert_int_eq(dec("1.2.3", &m, &e), SM_FIELD_SYNTAX);
    ck_assert_int_eq(dec("1e", &m, &e), SM_FIELD_SYNTAX);
    ck_assert_int_eq(dec("-", &m, &e), SM_FIELD_SYNTAX);
    ck_assert_int_eq(dec("1234567890123456789", &m, &e), SM_FIELD_TOO_LARGE);
    ck_assert_str_eq(sm_field_status_text(SM_FIELD_NAN), "is NaN (not a number)");
    ck_assert_str_eq(sm_field_status_text(SM_FIELD_INFINITE), "is infinity or a value too large");
}
END_TEST

static int64_t minor(const char *s, int64_t factor, int scale_digits, sm_field_status *st)
{
    sm_decimal d;
    *st = sm_parse_decimal(s, strlen(s), &d);
    int64_t out = -999;
    if (*st == SM_FIELD_OK)
        *st = sm_decimal_to_minor(d, factor, scale_digits, &out);
    return out;
}

START_TEST(money_rounds_once_half_away_from_zero)
{
    sm_field_status st;
    ck_assert_int_eq(minor("2.55", 6, 2, &st), 1530); /* 6 x 2.55 = 15.30 exactly */
    ck_assert_int_eq(minor("0.125", 1, 2, &st), 13);
    ck_assert_int_eq(minor("-0.125", 1, 2, &st), -13);
    ck_assert_int_eq(minor("0.124", 1, 2, &st), 12);
    ck_assert_int_eq(minor("0.001", 3, 2, &st), 0);  /* 0.003 -> 0.00 */
    ck_assert_int_eq(minor("0.001", 5, 2, &st), 1);  /* 0.005 -> 0.01: one rounding of the product */
    ck_assert_int_eq(minor("0.333", 3, 2, &st), 100); /* 0.999 -> 1.00, not 3 x 0.33 */
    ck_assert_int_eq(minor("19.99", 1, 0, &st), 20);
    ck_assert_int_eq(minor("12", 1, 3, &st), 12000);
    ck_assert_int_eq(minor("1e-50", 1, 2, &st), 0);
    minor("1e20", 1, 2, &st);
    ck_assert_int_eq(st, SM_FIELD_TOO_LARGE);
    minor("100000000000000000", 2, 0, &st);
    ck_assert_int_eq(st, SM_FIELD_TOO_LARGE);
    /* naive reference on many random prices: exact integer arithmetic */
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(7), 0);
    for (int i = 0; i < 20000; i++) {
        int64_t cents_thousandths = (int64_t)sm_rng_below(&rng, 10000000); /* price with 3 decimals */
        int64_t q = (int64_t)sm_rng_below(&rng, 200) - 100;
        char text[64];
        snprintf(text, sizeof text, "%lld.%03lld", (long long)(cents_thousandths / 1000),
                 (long long)(cents_thousandths % 1000));
        int64_t prod = q * cents_thousandths; /* in 1/1000 units */
        int64_t mag = prod < 0 ? -prod : prod;
        int64_t want = (mag + 5) / 10;
        if (prod < 0)
            want = -want;
        ck_assert_int_eq(minor(text, q, 2, &st), want);
    }
}
END_TEST

START_TEST(quantities_are_whole_numbers)
{
    int32_t q;
    ck_assert_int_eq(sm_parse_quantity("6", 1, &q), SM_FIELD_OK);
    ck_assert_int_eq(q, 6);
    ck_assert_int_eq(sm_parse_quantity("-80995", 6, &q), SM_FIELD_OK);
    ck_assert_int_eq(q, -80995);
    ck_assert_int_eq(sm_parse_quantity("6.0", 3, &q), SM_FIELD_OK);
    ck_assert_int_eq(q, 6);
    ck_assert_int_eq(sm_parse_quantity("2e3", 3, &q), SM_FIELD_OK);
    ck_assert_int_eq(q, 2000);
    ck_assert_int_eq(sm_parse_quantity("6.5", 3, &q), SM_FIELD_NOT_INTEGER);
    ck_assert_int_eq(sm_parse_quantity("3000000000", 10, &q), SM_FIELD_TOO_LARGE);
    ck_assert_int_eq(sm_parse_quantity("", 0, &q), SM_FIELD_EMPTY);
    ck_assert_int_eq(sm_parse_quantity("nan", 3, &q), SM_FIELD_NAN);
}
END_TEST

static sm_field_status iso(const char *s, int64_t *t)
{
    return sm_parse_time_iso(s, strlen(s), t);
}

START_TEST(iso_dates_normalise_to_utc)
{
    int64_t t;
    ck_assert_int_eq(iso("1970-01-01", &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 0);
    ck_assert_int_eq(iso("2010-12-01 08:26:00", &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960); /* date -u -d '2010-12-01 08:26:00' +%s */
    ck_assert_int_eq(iso("2010-12-01T08:26:00Z", &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960);
    ck_assert_int_eq(iso("2010-12-01T10:26:00+02:00", &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960);
    ck_assert_int_eq(iso("2010-12-01T03:26-0500", &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960);
    ck_assert_int_eq(iso("2010-12-01T09:26:00.999+01", &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960); /* fraction truncated */
    ck_assert_int_eq(iso("2000-02-29", &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 951782400);
    ck_assert_int_eq(iso("1900-02-29", &t), SM_FIELD_BAD_DATE);
    ck_assert_int_eq(iso("2011-02-30", &t), SM_FIELD_BAD_DATE);
    ck_assert_int_eq(iso("2011-13-01", &t), SM_FIELD_BAD_DATE);
    ck_assert_int_eq(iso("2011-01-01T24:00", &t), SM_FIELD_BAD_DATE);
    ck_assert_int_eq(iso("2011-01-01T10:00+25:00", &t), SM_FIELD_BAD_DATE);
    ck_assert_int_eq(iso("0999-12-31", &t), SM_FIELD_DATE_RANGE);
    ck_assert_int_eq(iso("2011-1-1", &t), SM_FIELD_SYNTAX);
    ck_assert_int_eq(iso("yesterday", &t), SM_FIELD_SYNTAX);
    ck_assert_int_eq(iso("2011-01-01x", &t), SM_FIELD_SYNTAX);
    ck_assert_int_eq(iso("", &t), SM_FIELD_EMPTY);
}
END_TEST

START_TEST(other_date_forms)
{
    int64_t t;
    ck_assert_int_eq(sm_parse_time_mdy("12/1/2010 8:26", 14, &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960);
    ck_assert_int_eq(sm_parse_time_mdy("2/29/2011 8:26", 14, &t), SM_FIELD_BAD_DATE);
    ck_assert_int_eq(sm_parse_time_yyyymmdd("19970101", 8, &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 852076800);
    ck_assert_int_eq(sm_parse_time_yyyymmdd("1997011", 7, &t), SM_FIELD_SYNTAX);
    ck_assert_int_eq(sm_parse_time_epoch("1291191960", 10, &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960);
    ck_assert_int_eq(sm_parse_time_epoch("99999999999999", 14, &t), SM_FIELD_DATE_RANGE);
    ck_assert_int_eq(sm_parse_time_auto("1291191960", 10, &t), SM_FIELD_OK);
    ck_assert_int_eq(sm_parse_time_auto("2010-12-01 08:26:00", 19, &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960);
    ck_assert_int_eq(sm_parse_time_strptime("01.12.2010 08:26", "%d.%m.%Y %H:%M", &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960);
    ck_assert_int_eq(sm_parse_time_strptime("2010-12-01 09:26 +0100", "%Y-%m-%d %H:%M %z", &t), SM_FIELD_OK);
    ck_assert_int_eq(t, 1291191960);
    ck_assert_int_eq(sm_parse_time_strptime("01.12.2010 08:26 junk", "%d.%m.%Y %H:%M", &t), SM_FIELD_SYNTAX);
}
END_TEST

/* The civil-date conversion against a naive day-by-day walk. */
START_TEST(civil_days_match_a_naive_calendar)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = sm_days_from_civil(1600, 1, 1);
    for (int y = 1600; y < 2401; y++)
        for (unsigned m = 1; m <= 12; m++) {
            int n = dim[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
            for (int d = 1; d <= n; d++, days++) {
                ck_assert_int_eq(sm_days_from_civil(y, m, (unsigned)d), days);
                int64_t yy;
                unsigned mm, dd;
                sm_civil_from_days(days, &yy, &mm, &dd);
                ck_assert(yy == y && mm == m && dd == (unsigned)d);
            }
        }
    char buf[32];
    sm_format_time_iso(1291191960, buf);
    ck_assert_str_eq(buf, "2010-12-01T08:26:00Z");
    sm_format_time_iso(-1, buf);
    ck_assert_str_eq(buf, "1969-12-31T23:59:59Z");
}
END_TEST

START_TEST(keys_are_normalised_and_checked)
{
    const char *s = "17850.0";
    size_t len = 7;
    sm_canonical_numeric_id(&s, &len);
    ck_assert_int_eq((int)len, 5);
    ck_assert(memcmp(s, "17850", 5) == 0);
    s = "00004";
    len = 5;
    sm_canonical_numeric_id(&s, &len);
    ck_assert(len == 1 && s[0] == '4');
    s = "0";
    len = 1;
    sm_canonical_numeric_id(&s, &len);
    ck_assert(len == 1 && s[0] == '0');
    s = "17850.5";
    len = 7;
    sm_canonical_numeric_id(&s, &len);
    ck_assert_int_eq((int)len, 7);
    s = "A123";
    len = 4;
    sm_canonical_numeric_id(&s, &len);
    ck_assert_int_eq((int)len, 4);
    size_t off;
    ck_assert_int_eq(sm_check_key("abc", 3, &off), SM_KEY_OK);
    ck_assert_int_eq(sm_check_key("caf\xc3\xa9", 5, &off), SM_KEY_OK);
    ck_assert_int_eq(sm_check_key("caf\xe9", 4, &off), SM_KEY_BAD_UTF8);
    ck_assert_int_eq((int)off, 3);
    ck_assert_int_eq(sm_check_key("a\tb", 3, &off), SM_KEY_CONTROL);
    ck_assert_int_eq((int)off, 1);
    char longkey[300];
    memset(longkey, 'k', sizeof longkey);
    ck_assert_int_eq(sm_check_key(longkey, 256, &off), SM_KEY_TOO_LONG);
    ck_assert_int_eq(sm_check_key(longkey, 255, &off), SM_KEY_OK);
}
END_TEST

static void sha_hex(const char *data, size_t len, bool portable, char hex[65])
{
    sm_sha256 h;
    if (portable)
        sm_sha256_init_portable(&h);
    else
        sm_sha256_init(&h);
    sm_sha256_update(&h, data, len);
    unsigned char d[32];
    sm_sha256_final(&h, d);
    sm_sha256_hex(d, hex);
}

START_TEST(sha256_known_vectors)
{
    static const struct {
        const char *in;
        const char *out;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (int portable = 0; portable < 2; portable++)
        for (size_t i = 0; i < SM_ARRAY_LEN(v); i++) {
            char hex[65];
            sha_hex(v[i].in, strlen(v[i].in), portable, hex);
            ck_assert_str_eq(hex, v[i].out);
        }
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    char hex[65];
    sha_hex(million, 1000000, false, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}
END_TEST

/* Hardware and portable paths agree on random data fed in random pieces. */
START_TEST(sha256_paths_agree)
{
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(11), 0);
    unsigned char data[5000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)sm_rng_u32(&rng);
    for (int trial = 0; trial < 200; trial++) {
        size_t len = sm_rng_below(&rng, sizeof data);
        sm_sha256 a, b;
        sm_sha256_init(&a);
        sm_sha256_init_portable(&b);
        size_t pos = 0;
        while (pos < len) {
            size_t want = (size_t)sm_rng_below(&rng, 200) + 1; /* SM_MIN evaluates twice */
            size_t piece = SM_MIN(len - pos, want);
            sm_sha256_update(&a, data + pos, piece);
            pos += piece;
        }
        sm_sha256_update(&b, data, len);
        unsigned char da[32], db[32];
        sm_sha256_final(&a, da);
        sm_sha256_final(&b, db);
        ck_assert(memcmp(da, db, 32) == 0);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fields");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, decimal_exact_forms);
    tcase_add_test(tc, decimal_rejections_name_the_problem);
    tcase_add_test(tc, money_rounds_once_half_away_from_zero);
    tcase_add_test(tc, quantities_are_whole_numbers);
    tcase_add_test(tc, iso_dates_normalise_to_utc);
    tcase_add_test(tc, other_date_forms);
    tcase_add_test(tc, civil_days_match_a_naive_calendar);
    tcase_add_test(tc, keys_are_normalised_and_checked);
    tcase_add_test(tc, sha256_known_vectors);
    tcase_add_test(tc, sha256_paths_agree);
    suite_add_tcase(s, tc);
    return sm_test_run(s);
}
