/* SPDX-License-Identifier: MIT */
/*
 * The importers on hand-written fixtures (values checked against hand
 * calculation), their rejections (B1-B6: file, line, column, field, reason),
 * appends and duplicate files, the external sort, map growth (F3), a killed
 * import (F1), a full disk at commit (F4), the OOM loop (F5) and the real
 * data sets with their published counts (L5).
 */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/core.h"
#include "storage/sha256.h"
#include "storetest.h"

#define T0 INT64_C(1609459200) /* 2021-01-01T00:00:00Z */
#define NOW_2026 INT64_C(1795000000)

static void opts(sm_import_options *o, sm_import_format f)
{
    sm_import_options_init(o);
    o->format = f;
    o->now = NOW_2026;
}

/* --- generic csv ----------------------------------------------------------------------- */

static const char *const SHOP_CSV =
    "CustomerID,InvoiceNo,StockCode,Description,Quantity,UnitPrice,InvoiceDate\n"
    "c1,i1,A,\"Apple, red\",2,1.50,2021-01-02T10:00:00Z\n"
    "c1,i1,B,Banana,1,0.25,2021-01-02T10:00:00Z\n"
    "c2,i2,A,Apple,3,1.50,2021-01-01 09:00:00\n"
    "c1,i3,A,Apple,-1,1.50,2021-01-05T00:00:00+01:00\n"
    ",i4,B,Banana,4,0.25,2021-01-03\n"
    "c2,i5,C,\"Cherry \"\"bio\"\"\",1,2.00,1609632000\n";

START_TEST(csv_detected_columns_give_hand_computed_tables)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "csv");
    fixture(dir, "shop.csv", SHOP_CSV, path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    sm_import_result r;
    rejects rej;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, &rej, &err), SM_OK);
    ck_assert_int_eq(rej.n, 0);
    ck_assert_uint_eq(r.rows_read, 6);
    ck_assert_uint_eq(r.rows_stored, 6);
    ck_assert_uint_eq(r.rows_without_customer, 1);
    ck_assert_uint_eq(r.returns, 1);
    ck_assert_uint_eq(r.new_customers, 2);
    ck_assert_uint_eq(r.new_items, 3);
    ck_assert_uint_eq(r.new_baskets, 5);

    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.schema_version, SM_STORE_SCHEMA_VERSION);
    ck_assert_uint_eq(info.rows, 6);
    ck_assert_uint_eq(info.tx_rows, 5);
    ck_assert_uint_eq(info.money_scale, 100);
    /* 2x1.50 + 0.25 + 3x1.50 - 1.50 + 4x0.25 + 2.00 */
    ck_assert_int_eq(info.total_amount, 300 + 25 + 450 - 150 + 100 + 200);
    ck_assert_int_eq(info.customer_amount, 300 + 25 + 450 - 150 + 200);
    ck_assert(info.has_time);
    ck_assert_int_eq(info.first_time, T0 + 9 * 3600);
    ck_assert_int_eq(info.last_time, T0 + 3 * 86400 + 23 * 3600); /* 01-05T00:00+01:00 */
    ck_assert_uint_eq(info.basket_items, 6);

    sm_tx_table t;
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_uint_eq(t.n_customers, 2);
    ck_assert_uint_eq(t.n_rows, 5);
    ck_assert_uint_eq(t.money_scale, 100);
    /* c1 (id 0): i1 two rows at 01-02T10, then the return at 01-04T23 */
    static const uint64_t offsets[] = {0, 3, 5};
    static const int64_t times[] = {T0 + 86400 + 36000, T0 + 86400 + 36000, T0 + 3 * 86400 + 23 * 3600,
                                    T0 + 9 * 3600, T0 + 2 * 86400};
    static const int64_t amounts[] = {300, 25, -150, 450, 200};
    static const int32_t quantities[] = {2, 1, -1, 3, 1};
    static const uint32_t items[] = {0, 1, 0, 0, 2};
    static const uint32_t baskets[] = {0, 0, 2, 1, 4};
    static const uint16_t flags[] = {0, 0, SM_TX_RETURN, 0, 0};
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(t.customer_offsets[i], offsets[i]);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(t.time[i], times[i]);
        ck_assert_int_eq(t.amount[i], amounts[i]);
        ck_assert_int_eq(t.quantity[i], quantities[i]);
        ck_assert_uint_eq(t.item[i], items[i]);
        ck_assert_uint_eq(t.basket[i], baskets[i]);
        ck_assert_uint_eq(t.flags[i], flags[i]);
    }
    sm_tx_table_free(&t);

    sm_basket_table b;
    ck_assert_int_eq(sm_store_load_baskets(s, SM_BASKETS_ALL, &b, NULL, &err), SM_OK);
    ck_assert_uint_eq(b.csr.n_rows, 5);
    ck_assert_uint_eq(b.csr.n_items, 3);
    static const uint64_t boff[] = {0, 2, 3, 4, 5, 6};
    static const uint32_t bitems[] = {0, 1, 0, 0, 1, 2};
    static const uint32_t bcust[] = {0, 1, 0, SM_CUSTOMER_NONE, 1};
    static const int64_t btime[] = {T0 + 86400 + 36000, T0 + 9 * 3600, T0 + 3 * 86400 + 23 * 3600, T0 + 2 * 86400,
                                    T0 + 2 * 86400};
    for (int i = 0; i <= 5; i++)
        ck_assert_uint_eq(b.offsets[i], boff[i]);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(b.items[i], bitems[i]);
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(b.basket_id[i], (uint32_t)i);
        ck_assert_uint_eq(b.customer[i], bcust[i]);
        ck_assert_int_eq(b.time[i], btime[i]);
    }
    ck_assert_uint_eq(b.flags[2], SM_BASKET_RETURN | SM_BASKET_HAS_RETURNS);
    ck_assert_uint_eq(b.flags[0], 0);
    sm_basket_table_free(&b);
    ck_assert_int_eq(sm_store_load_baskets(s, SM_BASKETS_EXCLUDE_RETURNS, &b, NULL, &err), SM_OK);
    ck_assert_uint_eq(b.csr.n_rows, 4);
    ck_assert_uint_eq(b.skipped_returns, 1);
    ck_assert_uint_eq(b.basket_id[2], 3);
    sm_basket_table_free(&b);

    sm_key_table k;
    ck_assert_int_eq(sm_store_load_keys(s, SM_KEYS_ITEMS, &k, &err), SM_OK);
    ck_assert_uint_eq(k.n, 3);
    ck_assert_str_eq(k.keys[0], "A");
    ck_assert_str_eq(k.descriptions[0], "Apple, red"); /* the first one seen */
    ck_assert_str_eq(k.descriptions[2], "Cherry \"bio\"");
    sm_key_table_free(&k);
    ck_assert_int_eq(sm_store_load_keys(s, SM_KEYS_CUSTOMERS, &k, &err), SM_OK);
    ck_assert_str_eq(k.keys[0], "c1");
    ck_assert_str_eq(k.keys[1], "c2");
    ck_assert_ptr_null(k.descriptions);
    sm_key_table_free(&k);
    char key[SM_STORE_KEY_MAX + 1], desc[8];
    ck_assert_int_eq(sm_store_key(s, SM_KEYS_ITEMS, 0, key, sizeof key, desc, sizeof desc, &err), SM_OK);
    ck_assert_str_eq(key, "A");
    ck_assert_str_eq(desc, "Apple, ");
    ck_assert_int_eq(sm_store_key(s, SM_KEYS_CUSTOMERS, 7, key, sizeof key, NULL, 0, &err), SM_ERR_NOT_FOUND);
    uint32_t id;
    ck_assert_int_eq(sm_store_find(s, SM_KEYS_CUSTOMERS, "c2", 2, &id, &err), SM_OK);
    ck_assert_uint_eq(id, 1);
    ck_assert_int_eq(sm_store_find(s, SM_KEYS_ITEMS, "Z", 1, &id, &err), SM_ERR_NOT_FOUND);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(csv_map_delimiter_time_format_and_amounts)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "map");
    fixture(dir, "de.csv",
            "kunde;datum;artikel;menge;betrag\r\n"
            "k1;01.02.2021;X;2;10,00\r\n"  /* decimal comma: rejected, not guessed */
            "k1;01.02.2021;X;2;10.00\r\n"
            "k1;01.02.2021;Y;1;2.5\r\n"
            "k2;03.02.2021;Y;1;-2.5\r\n",
            path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    o.delimiter = ';';
    o.map = "customer=kunde,time=datum,item=artikel,quantity=menge,amount=5";
    o.time_format = "%d.%m.%Y";
    sm_import_result r;
    rejects rej;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, &rej, &err), SM_OK);
    ck_assert_int_eq(rej.n, 1);
    char want[1400];
    snprintf(want, sizeof want, "%s:2:5: field \"betrag\": \"10,00\" is not a number", path);
    ck_assert_str_eq(rej.text[0], want);
    ck_assert_uint_eq(r.rows_stored, 3);
    ck_assert_uint_eq(r.new_baskets, 2); /* no basket column: (customer, time) */
    sm_tx_table t;
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_int_eq(t.amount[0], 1000); /* the amount column is taken as is */
    ck_assert_int_eq(t.amount[1], 250);
    ck_assert_int_eq(t.amount[2], -250); /* negative amount: a return */
    ck_assert_int_eq(t.quantity[2], -1);
    ck_assert_uint_eq(t.flags[2], SM_TX_RETURN);
    ck_assert_int_eq(t.time[0], T0 + 31 * 86400);
    ck_assert_uint_eq(t.basket[0], t.basket[1]);
    sm_tx_table_free(&t);

    /* --map naming a column that does not exist: the header is listed */
    fixture(dir, "other.csv", "a,b\n1,2\n", path, sizeof path);
    o.delimiter = ',';
    o.map = "customer=a,time=zzz,amount=b";
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "time=zzz: no such column; the header has \"a\", \"b\""));
    o.map = "client=a";
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown role 'client'"));
    o.map = NULL;
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "no time column"));
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.rows, 3); /* the failed imports changed nothing */
    ck_assert_uint_eq(info.imports, 1);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

static const char *const BAD_CSV =
    "customer,time,item,quantity,price\n"   /* 1 */
    "c1,2021-01-01,A,1,nan\n"               /* 2 */
    "c1,2021-01-01,A,1,-inf\n"              /* 3 */
    "c1,2021-01-01,A,1,1e309\n"             /* 4 */
    "c1,2021-01-01,A,,1.0\n"                /* 5 */
    "c1,2021-01-01,A,0,1.0\n"               /* 6 */
    "c1,2021-01-01,A,1.5,1.0\n"             /* 7 */
    "c1,2021-13-01,A,1,1.0\n"               /* 8 */
    "c1,soon,A,1,1.0\n"                     /* 9 */
    "c1,2999-01-01,A,1,1.0\n"               /* 10 */
    "c1,2021-01-01,A,1,1.0,extra\n"         /* 11 */
    "\"c1,2021-01-01,A,1,1.0\n"             /* 12 */
    "c1,2021-01-01,,1,1.0\n"                /* 13 */
    "c\x01x,2021-01-01,A,1,1.0\n"           /* 14 */
    "c1,2021-01-01,A,1,-2.0\n"              /* 15 */
    "c1,2021-01-01,A,1,\n"                  /* 16 */
    "c1,2021-01-01,A,1,1.00\n"              /* 17: the only good row */
    "c1,2021-01-01,KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK"
    "KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK"
    "KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK,1,1.0\n"; /* 18: 300-byte item */

START_TEST(bad_rows_are_rejected_with_location_and_reason)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "bad");
    fixture(dir, "bad.csv", BAD_CSV, path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    sm_import_result r;
    rejects rej;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, &rej, &err), SM_OK);
    static const char *const why[] = {
        "2:5: field \"price\": \"nan\" is NaN (not a number)",
        "3:5: field \"price\": \"-inf\" is infinity or a value too large",
        "4:5: field \"price\": \"1e309\" is infinity or a value too large",
        "5:4: field \"quantity\": is empty",
        "6:4: field \"quantity\": is 0: neither a purchase nor a return",
        "7:4: field \"quantity\": \"1.5\" is not a whole number",
        "8:2: field \"time\": \"2021-13-01\" is not a valid date or time",
        "9:2: field \"time\": \"soon\" is not a date (ISO 8601 or epoch seconds; see --time-format)",
        "10:2: field \"time\": 2999-01-01T00:00:00Z is after the import's reference time 2026-11-18T11:06:40Z (a "
        "future date; --future keep keeps such rows, --now sets the reference)",
        "11:6: the row has 6 fields, the header has 5",
        "12:1: unbalanced quote: a quoted field is never closed",
        "13:3: field \"item\": is empty",
        "14:1: field \"customer\": contains a control character (at byte 2)",
        "15:5: field \"price\": \"-2.0\" is a negative unit price (an accounting adjustment, not a sale or return)",
        "16:5: field \"price\": is empty",
        "18:3: field \"item\": is longer than 255 bytes (at byte 256)",
    };
    ck_assert_int_eq(rej.n, (int)SM_ARRAY_LEN(why));
    for (size_t i = 0; i < SM_ARRAY_LEN(why); i++) {
        char want[1400];
        snprintf(want, sizeof want, "%s:%s", path, why[i]);
        ck_assert_str_eq(rej.text[i], want);
    }
    ck_assert_uint_eq(r.rows_read, 17);
    ck_assert_uint_eq(r.rejected, 16);
    ck_assert_uint_eq(r.rows_stored, 1);
    ck_assert_uint_eq(r.rows_read, r.rows_stored + r.rejected);
    /* all of them in the rejects file, in the same words */
    ck_assert(r.rejects_path[0] != '\0');
    FILE *f = fopen(r.rejects_path, "r");
    ck_assert_ptr_nonnull(f);
    char line[1400];
    int lines = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        ck_assert_str_eq(line, rej.text[lines]);
        lines++;
    }
    fclose(f);
    ck_assert_int_eq(lines, 16);
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.rejected, 16);
    sm_store_source *src;
    size_t n_src;
    ck_assert_int_eq(sm_store_sources(s, &src, &n_src, &err), SM_OK);
    ck_assert_uint_eq(n_src, 1);
    ck_assert_uint_eq(src[0].rows, 1);
    ck_assert_uint_eq(src[0].rejected, 16);
    ck_assert_str_eq(src[0].rejects_path, r.rejects_path);
    ck_assert_str_eq(src[0].format, "csv");
    sm_store_sources_free(src, n_src);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(strict_aborts_on_the_first_bad_row_with_nothing_written)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "strict");
    fixture(dir, "bad.csv", BAD_CSV, path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    o.strict = true;
    sm_import_result r;
    rejects rej;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, &rej, &err), SM_ERR_PARSE);
    ck_assert_int_eq(rej.n, 0);
    ck_assert_uint_eq(err.line, 2);
    ck_assert_uint_eq(err.column, 5);
    ck_assert_str_eq(err.field, "price");
    ck_assert_ptr_nonnull(strstr(err.msg, "--strict: nothing was imported"));
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.rows, 0);
    ck_assert_uint_eq(info.rejected, 0);
    ck_assert_uint_eq(info.sources, 0);
    char rejects_file[1200];
    snprintf(rejects_file, sizeof rejects_file, "%s/rejects-0001.txt", dir);
    ck_assert_int_ne(access(rejects_file, F_OK), 0);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(future_dates_can_be_kept_and_flagged)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "future");
    fixture(dir, "f.csv", "customer,time,amount\nc,2021-01-01,1\nc,2030-01-01T00:00:00Z,2\n", path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    o.future = SM_FUTURE_KEEP;
    sm_import_result r;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_eq(r.future_rows, 1);
    sm_tx_table t;
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_uint_eq(t.flags[1], SM_TX_FUTURE);
    ck_assert_int_eq(t.quantity[0], 1); /* no quantity column: 1 */
    sm_tx_table_free(&t);
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.future_rows, 1);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(encodings_bom_and_latin1)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "enc");
    /* UTF-8 BOM skipped; a Latin-1 pound sign refused by name */
    fixture(dir, "e.csv",
            "\xEF\xBB\xBF" "customer,time,item,description,price\n"
            "c,2021-01-01,A,Caf\xC3\xA9,1\n"
            "c,2021-01-01,B,\xA3 price,1\n",
            path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    sm_import_result r;
    rejects rej;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, &rej, &err), SM_OK);
    ck_assert_int_eq(rej.n, 1);
    ck_assert_ptr_nonnull(strstr(rej.text[0], ":3:4: field \"description\": is not valid UTF-8 (byte 1)"));
    ck_assert_uint_eq(r.rows_stored, 1);
    /* UTF-16 is refused as a whole with advice */
    fixture(dir, "u16.csv", "\xFF\xFE" "c\0u\0", path, sizeof path);
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "UTF-16"));
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* --- online retail, cdnow, fimi, basket csv --------------------------------------------------- */

START_TEST(online_retail_returns_ids_and_both_date_forms)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "uci");
    fixture(dir, "uci.csv",
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
            "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom\n"
            "C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527.0,United Kingdom\n"
            "536414,22139,,56,2010-12-01 11:52:00,0.00,,United Kingdom\n"
            "536381,71270,PHOTO CLIP LINE,-1,2010-12-01 09:41:00,0.00,17850,United Kingdom\n"
            "A563186,B,Adjust bad debt,1,2011-08-12 14:51:00,-11062.06,,United Kingdom\n",
            path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_ONLINE_RETAIL);
    sm_import_result r;
    rejects rej;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, &rej, &err), SM_OK);
    ck_assert_int_eq(rej.n, 1);
    ck_assert_ptr_nonnull(strstr(rej.text[0], ":7:6: field \"UnitPrice\": \"-11062.06\" is a negative unit price"));
    ck_assert_uint_eq(r.rows_read, 6);
    ck_assert_uint_eq(r.rows_stored, 5);
    ck_assert_uint_eq(r.rows_without_customer, 1);
    ck_assert_uint_eq(r.returns, 2);
    ck_assert_uint_eq(r.new_customers, 2); /* "17850.0" and "17850" are one customer */
    sm_tx_table t;
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_uint_eq(t.n_rows, 4);
    const int64_t t0826 = 1291191960;
    /* customer 17850: two rows at 08:26 (both date forms), the return at 09:41 */
    ck_assert_int_eq(t.time[0], t0826);
    ck_assert_int_eq(t.time[1], t0826);
    ck_assert_int_eq(t.amount[0], 1530);
    ck_assert_int_eq(t.amount[1], 2034);
    ck_assert_int_eq(t.amount[2], 0);
    ck_assert_int_eq(t.quantity[2], -1);
    ck_assert_uint_eq(t.flags[2], SM_TX_RETURN);
    ck_assert_int_eq(t.amount[3], -2750); /* C invoice */
    ck_assert_uint_eq(t.flags[3], SM_TX_RETURN | SM_TX_CANCELLED);
    sm_tx_table_free(&t);
    sm_basket_table b;
    ck_assert_int_eq(sm_store_load_baskets(s, SM_BASKETS_ALL, &b, NULL, &err), SM_OK);
    ck_assert_uint_eq(b.csr.n_rows, 4);
    ck_assert_uint_eq(b.flags[1], SM_BASKET_RETURN | SM_BASKET_HAS_RETURNS | SM_BASKET_CANCELLED);
    ck_assert_uint_eq(b.customer[2], SM_CUSTOMER_NONE); /* 536414 kept for baskets */
    ck_assert_uint_eq(b.offsets[3] - b.offsets[2], 1);
    sm_basket_table_free(&b);
    sm_key_table k;
    ck_assert_int_eq(sm_store_load_keys(s, SM_KEYS_CUSTOMERS, &k, &err), SM_OK);
    ck_assert_str_eq(k.keys[0], "17850");
    ck_assert_str_eq(k.keys[1], "14527");
    sm_key_table_free(&k);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(cdnow_master_and_sample_layouts)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "cdnow");
    fixture(dir, "master.txt",
            " customer_id  date number_of_cds  dollar_value\r\n"
            " 00001 19970101  1   11.77\r\n"
            " 00002 19970112  1   12.00\r\n"
            " 00002 19970112  2   20.76\r\n"
            " 00003 1997x112  2   20.76\r\n"
            " 00003 19970102  2\r\n",
            path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_CDNOW);
    sm_import_result r;
    rejects rej;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, &rej, &err), SM_OK);
    ck_assert_int_eq(rej.n, 2);
    ck_assert_ptr_nonnull(strstr(rej.text[0], ":5:2: field \"date\": \"1997x112\" is not a date (YYYYMMDD)"));
    ck_assert_ptr_nonnull(strstr(rej.text[1], ":6:4: expected 4 columns"));
    ck_assert_uint_eq(r.rows_read, 5); /* the header line is not a row */
    ck_assert_uint_eq(r.rows_stored, 3);
    ck_assert_uint_eq(r.new_customers, 2);
    ck_assert_uint_eq(r.new_baskets, 2); /* customer 2's two rows on one day: one basket */
    sm_tx_table t;
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_int_eq(t.amount[0], 1177); /* dollars are the row's amount, not per unit */
    ck_assert_int_eq(t.amount[2], 2076);
    ck_assert_int_eq(t.quantity[2], 2);
    ck_assert_int_eq(t.time[0], 852076800);
    ck_assert_uint_eq(t.item[0], SM_ITEM_NONE);
    sm_tx_table_free(&t);
    sm_key_table k;
    ck_assert_int_eq(sm_store_load_keys(s, SM_KEYS_CUSTOMERS, &k, &err), SM_OK);
    ck_assert_str_eq(k.keys[0], "1"); /* leading zeros dropped */
    sm_key_table_free(&k);
    sm_store_close(s);

    s = scratch_store(dir, sizeof dir, "cdnow-sample");
    fixture(dir, "sample.txt", " 00004 0001 19970101  2   29.33\r\n 00004 0001 19970118  2   29.73\r\n 00018 0002 19970101  2   29.33\r\n", path, sizeof path);
    ck_assert_int_eq(import_one(s, path, &o, &r, &rej, &err), SM_OK);
    ck_assert_int_eq(rej.n, 0);
    ck_assert_uint_eq(r.rows_stored, 3);
    ck_assert_int_eq(sm_store_load_keys(s, SM_KEYS_CUSTOMERS, &k, &err), SM_OK);
    ck_assert_uint_eq(k.n, 2);
    ck_assert_str_eq(k.keys[0], "1"); /* the sample's own id, as in cdnow_customers_summary.csv */
    ck_assert_str_eq(k.keys[1], "2");
    sm_key_table_free(&k);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(fimi_and_basket_csv_make_baskets_without_customers)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "fimi");
    fixture(dir, "t.dat", "1 3 5 \n3 1\n\n   \n7 7 7\n", path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_FIMI);
    sm_import_result r;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_eq(r.rows_stored, 3);
    ck_assert_uint_eq(r.blank_lines, 2); /* the empty line and the line of blanks */
    ck_assert_uint_eq(r.rows_without_customer, 3);
    sm_basket_table b;
    ck_assert_int_eq(sm_store_load_baskets(s, SM_BASKETS_ALL, &b, NULL, &err), SM_OK);
    ck_assert_uint_eq(b.csr.n_rows, 3);
    /* items 1,3,5,7 are ids 0,1,2,3 in first-seen order */
    static const uint64_t off[] = {0, 3, 5, 6};
    static const uint32_t items[] = {0, 1, 2, 0, 1, 3};
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(b.offsets[i], off[i]);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(b.items[i], items[i]);
    ck_assert_int_eq(b.time[0], SM_TIME_NONE);
    ck_assert_uint_eq(b.customer[0], SM_CUSTOMER_NONE);
    sm_basket_table_free(&b);
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert(!info.has_time);
    ck_assert_uint_eq(info.tx_rows, 0);
    sm_store_close(s);

    s = scratch_store(dir, sizeof dir, "groceries");
    fixture(dir, "g.csv", "citrus fruit,semi-finished bread,margarine\nwhole milk\n\"milk, whole\",whole milk,whole milk\n",
            path, sizeof path);
    opts(&o, SM_FORMAT_BASKET_CSV);
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_eq(r.rows_stored, 3);
    ck_assert_uint_eq(r.new_items, 5);
    ck_assert_int_eq(sm_store_load_baskets(s, SM_BASKETS_ALL, &b, NULL, &err), SM_OK);
    ck_assert_uint_eq(b.offsets[3], 3 + 1 + 2);
    sm_basket_table_free(&b);
    sm_key_table k;
    ck_assert_int_eq(sm_store_load_keys(s, SM_KEYS_ITEMS, &k, &err), SM_OK);
    ck_assert_str_eq(k.keys[4], "milk, whole");
    sm_key_table_free(&k);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* --- appends, duplicates, scale ------------------------------------------------------------------- */

START_TEST(appends_reuse_ids_merge_baskets_and_refuse_duplicates)
{
    char dir[1024], a[1200], b[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "append");
    fixture(dir, "a.csv", SHOP_CSV, a, sizeof a);
    fixture(dir, "b.csv",
            "customer,basket,item,quantity,price,time\n"
            "c1,i1,C,1,2.00,2021-01-02T09:00:00Z\n" /* joins basket i1, earlier */
            "c3,i9,A,1,1.50,2020-12-31T00:00:00Z\n",
            b, sizeof b);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    sm_import_result r;
    sm_error err;
    ck_assert_int_eq(import_one(s, a, &o, &r, NULL, &err), SM_OK);
    ck_assert_int_eq(import_one(s, b, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_eq(r.new_customers, 1);
    ck_assert_uint_eq(r.new_items, 0);
    ck_assert_uint_eq(r.new_baskets, 1);
    ck_assert_uint_eq(r.import_id, 2);
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.rows, 8);
    ck_assert_uint_eq(info.customers, 3);
    ck_assert_uint_eq(info.baskets, 6);
    ck_assert_uint_eq(info.basket_items, 8);
    ck_assert_int_eq(info.first_time, T0 - 86400);
    ck_assert_uint_eq(info.imports, 2);
    ck_assert_uint_eq(info.sources, 2);
    sm_basket_table bt;
    ck_assert_int_eq(sm_store_load_baskets(s, SM_BASKETS_ALL, &bt, NULL, &err), SM_OK);
    ck_assert_uint_eq(bt.offsets[1], 3); /* i1 = {A, B, C} */
    ck_assert_uint_eq(bt.items[2], 2);
    ck_assert_int_eq(bt.time[0], T0 + 86400 + 9 * 3600);
    sm_basket_table_free(&bt);
    sm_tx_table t;
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_uint_eq(t.customer_offsets[1], 4); /* c1 now has 4 rows, the new one first in time */
    ck_assert_int_eq(t.time[0], T0 + 86400 + 9 * 3600);
    ck_assert_int_eq(t.amount[0], 200);
    sm_tx_table_free(&t);

    /* the same file again: refused by checksum, store unchanged */
    ck_assert_int_eq(import_one(s, a, &o, &r, NULL, &err), SM_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(err.msg, "already imported"));
    ck_assert_str_eq(err.path, a);
    /* --force: the rows come again */
    o.force = true;
    ck_assert_int_eq(import_one(s, a, &o, &r, NULL, &err), SM_OK);
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.rows, 14);
    ck_assert_uint_eq(info.baskets, 6); /* i1..i5 are keyed: the rows join the baskets they had */
    /* the same file twice in one call */
    o.force = false;
    const char *twice[] = {b, b};
    ck_assert_int_eq(sm_store_import(s, twice, 2, &o, &r, &err), SM_ERR_EXISTS);
    /* another money scale cannot join a store with rows */
    o.money_scale = 1000;
    fixture(dir, "c.csv", "customer,time,amount\nq,2021-01-01,1\n", b, sizeof b);
    ck_assert_int_eq(import_one(s, b, &o, &r, NULL, &err), SM_ERR_INVALID_ARG);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* Writes a CSV of `rows` rows and `blank_tail` bytes of blank lines after
 * them (with a UTF-8 byte-order mark when asked) to dir/name and its
 * SHA-256 in hex to `hex`; returns its length. */
static size_t checksummed_fixture(const char *dir, const char *name, int rows, size_t blank_tail, bool bom, char *path,
                                  size_t path_cap, char hex[65])
{
    size_t cap = (size_t)rows * 40 + blank_tail + 64;
    char *text = sm_malloc(cap);
    ck_assert_ptr_nonnull(text);
    size_t len = (size_t)snprintf(text, cap, "%scustomer,time,item,price\n", bom ? "\xEF\xBB\xBF" : "");
    for (int i = 0; i < rows; i++)
        len += (size_t)snprintf(text + len, cap - len, "c%d,2021-01-%02d,i%d,%d.25\n", (i + (int)blank_tail) % 997,
                                1 + i % 28, i % 31, i % 50);
    memset(text + len, '\n', blank_tail);
    len += blank_tail;
    text[len] = '\0';
    fixture(dir, name, text, path, path_cap);
    sm_sha256 h;
    sm_sha256_init(&h);
    sm_sha256_update(&h, text, len);
    unsigned char digest[32];
    sm_sha256_final(&h, digest);
    sm_sha256_hex(digest, hex);
    sm_free(text);
    return len;
}

/* The checksum is taken from the blocks the reader reads, on the consuming
 * side: it must cover every byte once, the byte-order mark the reader skips,
 * every 1 MiB block and trailing blank lines included, each file on its
 * own, with one thread or two (_i: 1 + _i threads). */
START_TEST(stored_checksum_covers_every_byte_of_the_file)
{
    char dir[1024], a[1200], b[1200], a_hex[65], b_hex[65];
    sm_store *s = scratch_store(dir, sizeof dir, "sha");
    /* a.csv: whole batches of rows (8192 each), then more than a read block
     * of blank lines, read after its last batch is full: they go to a batch
     * of their own that holds no row and must still reach a.csv's checksum */
    size_t a_len = checksummed_fixture(dir, "a.csv", 16 * 8192, (3u << 20) / 2, true, a, sizeof a, a_hex);
    size_t b_len = checksummed_fixture(dir, "b.csv", 50000, 0, false, b, sizeof b, b_hex);

    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    o.n_threads = 1 + _i;
    sm_import_result r;
    sm_error err;
    const char *both[] = {a, b};
    ck_assert_int_eq(sm_store_import(s, both, 2, &o, &r, &err), SM_OK);
    ck_assert_uint_eq(r.rejected, 0);
    sm_store_source *src;
    size_t n;
    ck_assert_int_eq(sm_store_sources(s, &src, &n, &err), SM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(src[0].sha256, a_hex);
    ck_assert_uint_eq(src[0].bytes, a_len);
    ck_assert_str_eq(src[1].sha256, b_hex);
    ck_assert_uint_eq(src[1].bytes, b_len);
    sm_store_sources_free(src, n);
    /* and it is what refuses a file the second time */
    ck_assert_int_eq(import_one(s, b, &o, &r, NULL, &err), SM_ERR_EXISTS);
    b_hex[16] = '\0'; /* the message quotes the first 16 hex digits */
    ck_assert_ptr_nonnull(strstr(err.msg, b_hex));
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(money_scale_of_a_new_store)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "scale");
    fixture(dir, "m.csv", "customer,time,quantity,price\nc,2021-01-01,3,0.125\n", path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    o.money_scale = 1000;
    sm_import_result r;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_OK);
    sm_tx_table t;
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_uint_eq(t.money_scale, 1000);
    ck_assert_int_eq(t.amount[0], 375);
    sm_tx_table_free(&t);
    o.money_scale = 7;
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_ERR_INVALID_ARG);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* --- sorting, map growth, faults -------------------------------------------------------------------- */

START_TEST(external_sort_equals_in_memory_sort)
{
    char dir[1024], dir2[1024], path[1200];
    sm_store *a = scratch_store(dir, sizeof dir, "spill");
    sm_store *b = scratch_store(dir2, sizeof dir2, "nospill");
    snprintf(path, sizeof path, "%s/log.csv", dir);
    generate_log(path, 30000, sm_test_seed(3));
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    o.memory_budget = 100000; /* about 1,000 rows per run */
    sm_import_result r;
    sm_error err;
    ck_assert_int_eq(import_one(a, path, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_gt(r.spilled_runs, 20);
    o.memory_budget = 0;
    ck_assert_int_eq(import_one(b, path, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_eq(r.spilled_runs, 0);
    assert_same_content(a, b);
    /* the order really is (customer, time, input line) */
    sm_tx_table t;
    ck_assert_int_eq(sm_store_load_tx(a, &t, NULL, &err), SM_OK);
    for (uint32_t c = 0; c < t.n_customers; c++)
        for (uint64_t i = t.customer_offsets[c] + 1; i < t.customer_offsets[c + 1]; i++)
            ck_assert_int_le(t.time[i - 1], t.time[i]);
    sm_tx_table_free(&t);
    sm_store_close(a);
    sm_store_close(b);
    sm_test_rmtree(dir);
    sm_test_rmtree(dir2);
}
END_TEST

/* The same bytes in, the same store out, whatever the thread count (the
 * pipeline hands batches over in input order). */
START_TEST(thread_count_does_not_change_the_store)
{
    char dirs[4][1024], path[1200];
    static const int threads[4] = {1, 2, 3, 8};
    sm_store *stores[4];
    for (int i = 0; i < 4; i++)
        stores[i] = scratch_store(dirs[i], sizeof dirs[i], "threads");
    snprintf(path, sizeof path, "%s/log.csv", dirs[0]);
    generate_log(path, 40000, sm_test_seed(21));
    for (int i = 0; i < 4; i++) {
        sm_import_options o;
        opts(&o, SM_FORMAT_CSV);
        o.n_threads = threads[i];
        o.memory_budget = 400000; /* spilled runs too */
        sm_error err;
        ck_assert_int_eq(import_one(stores[i], path, &o, NULL, NULL, &err), SM_OK);
    }
    for (int i = 1; i < 4; i++)
        assert_same_content(stores[0], stores[i]);
    for (int i = 0; i < 4; i++) {
        sm_store_close(stores[i]);
        sm_test_rmtree(dirs[i]);
    }
}
END_TEST

/* SM_STORE_BULK writes through a writable map: the same store as a plain
 * open, in a file allocated up to the map (so a full disk cannot strike
 * mid-write), which a later plain open and a second bulk import accept. */
START_TEST(bulk_import_equals_plain_and_allocates_its_map)
{
    char plain_dir[1024], bulk_dir[1024], path[1200], data[1200];
    sm_store *plain = scratch_store(plain_dir, sizeof plain_dir, "plain");
    sm_store *bulk = scratch_store_with(bulk_dir, sizeof bulk_dir, "bulk", SM_STORE_BULK);
    snprintf(path, sizeof path, "%s/log.csv", plain_dir);
    generate_log(path, 30000, sm_test_seed(11));
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    sm_import_result r;
    sm_error err;
    ck_assert_int_eq(import_one(plain, path, &o, NULL, NULL, &err), SM_OK);
    ck_assert_int_eq(import_one(bulk, path, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_eq(r.rows_stored, 30000);
    assert_same_content(plain, bulk);
    snprintf(data, sizeof data, "%s/data.mdb", bulk_dir);
    struct stat st;
    ck_assert_int_eq(stat(data, &st), 0);
    ck_assert_uint_ge((uint64_t)st.st_size, r.map_size);
    ck_assert_uint_ge((uint64_t)st.st_blocks * 512, r.map_size);
    sm_store_close(bulk);
    /* a plain reader, then a second bulk import on top */
    ck_assert_int_eq(sm_store_open(bulk_dir, SM_STORE_READ_ONLY, &bulk, &err), SM_OK);
    assert_same_content(plain, bulk);
    sm_store_close(bulk);
    snprintf(path, sizeof path, "%s/more.csv", plain_dir);
    generate_log(path, 5000, sm_test_seed(12));
    ck_assert_int_eq(sm_store_open(bulk_dir, SM_STORE_BULK, &bulk, &err), SM_OK);
    ck_assert_int_eq(import_one(plain, path, &o, NULL, NULL, &err), SM_OK);
    ck_assert_int_eq(import_one(bulk, path, &o, NULL, NULL, &err), SM_OK);
    assert_same_content(plain, bulk);
    sm_store_close(bulk);
    sm_store_close(plain);
    sm_test_rmtree(plain_dir);
    sm_test_rmtree(bulk_dir);
}
END_TEST

/* The fault tests run once for each way an importing store is opened: the
 * loop index picks the flags. */
static const unsigned import_modes[] = {SM_STORE_READ_WRITE, SM_STORE_BULK};

START_TEST(tiny_map_grows_and_replays)
{
    char dir[1024], dir2[1024], path[1200];
    sm_store *a = scratch_store_with(dir, sizeof dir, "tiny", import_modes[_i]);
    sm_store *b = scratch_store(dir2, sizeof dir2, "roomy");
    snprintf(path, sizeof path, "%s/log.csv", dir);
    generate_log(path, 20000, sm_test_seed(5));
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    o.map_size = 64 << 10;
    o.grow_on_demand = true;
    sm_import_result r;
    sm_error err;
    ck_assert_int_eq(import_one(a, path, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_ge(r.map_growths, 3);
    ck_assert_uint_ge(r.map_size, 1 << 20);
    sm_import_options plain;
    opts(&plain, SM_FORMAT_CSV);
    ck_assert_int_eq(import_one(b, path, &plain, &r, NULL, &err), SM_OK);
    ck_assert_uint_eq(r.map_growths, 0);
    assert_same_content(a, b);
    sm_store_close(a);
    sm_store_close(b);
    sm_test_rmtree(dir);
    sm_test_rmtree(dir2);
}
END_TEST

START_TEST(map_cap_names_the_input_reached_and_changes_nothing)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store_with(dir, sizeof dir, "cap", import_modes[_i]);
    snprintf(path, sizeof path, "%s/log.csv", dir);
    generate_log(path, 20000, sm_test_seed(5));
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    o.map_size = 64 << 10;
    o.map_size_max = 512 << 10;
    o.grow_on_demand = true;
    sm_import_result r;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_ERR_STORAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "reached its cap of 524288 bytes"));
    ck_assert_str_eq(err.path, path); /* the input file ... */
    ck_assert_uint_gt(err.line, 1);   /* ... and the line whose row was being stored */
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.rows, 0);
    ck_assert_uint_eq(info.imports, 0);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

typedef struct killer {
    const char *stage;
    uint64_t at; /* calls of that stage before the kill */
    uint64_t seen;
} killer;

static int kill_at(void *user, const char *stage, uint64_t done, uint64_t total)
{
    (void)done;
    (void)total;
    killer *k = user;
    if (strcmp(stage, k->stage) == 0 && k->seen++ == k->at)
        kill(getpid(), SIGKILL);
    return 0;
}

/* F1: SIGKILL at several points of an import over an existing store; each
 * time the store reopens with exactly its earlier content. */
START_TEST(killed_import_leaves_the_store_as_it_was)
{
    char dir[1024], ref_dir[1024], base[1200], big[1200];
    sm_store *ref = scratch_store(ref_dir, sizeof ref_dir, "killref");
    sm_test_tmpdir(dir, sizeof dir, "kill");
    snprintf(base, sizeof base, "%s/base.csv", ref_dir);
    snprintf(big, sizeof big, "%s/big.csv", ref_dir);
    generate_log(base, 3000, 1);
    generate_log(big, 200000, 2);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    /* GNU OpenMP does not survive fork(): a child hangs in its first parallel
     * region if the parent ever ran one. This process forks, so it imports
     * with one thread (no region); the children use the default. */
    o.n_threads = 1;
    sm_error err;
    ck_assert_int_eq(import_one(ref, base, &o, NULL, NULL, &err), SM_OK);
    sm_store *s;
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_CREATE | import_modes[_i], &s, &err), SM_OK);
    ck_assert_int_eq(import_one(s, base, &o, NULL, NULL, &err), SM_OK);
    sm_store_close(s);
    static const killer points[] = {{"parse", 2, 0}, {"sort", 0, 0}, {"write", 0, 0}, {"write", 1, 0},
                                    {"write", 2, 0}, {"commit", 0, 0}};
    for (size_t p = 0; p < SM_ARRAY_LEN(points); p++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            killer k = points[p];
            sm_store *c;
            if (sm_store_open(dir, import_modes[_i], &c, NULL) != SM_OK)
                _exit(3);
            sm_import_options co;
            opts(&co, SM_FORMAT_CSV);
            co.progress.fn = kill_at;
            co.progress.user = &k;
            import_one(c, big, &co, NULL, NULL, NULL);
            _exit(4); /* the kill point was never reached */
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "kill point %zu (%s #%llu) not reached",
                      p, points[p].stage, (unsigned long long)points[p].at);
        ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_WRITE, &s, &err), SM_OK);
        assert_same_content(s, ref);
        sm_store_info info;
        ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
        ck_assert_uint_eq(info.imports, 1);
        sm_store_close(s);
    }
    /* and the import then runs to completion (no stale lock, no leftovers) */
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_WRITE, &s, &err), SM_OK);
    sm_import_result r;
    ck_assert_int_eq(import_one(s, big, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_eq(r.rows_stored, 200000);
    ck_assert_int_eq(import_one(ref, big, &o, NULL, NULL, &err), SM_OK);
    assert_same_content(s, ref);
    sm_store_close(s);
    sm_store_close(ref);
    sm_test_rmtree(dir);
    sm_test_rmtree(ref_dir);
}
END_TEST

/* F4: the file system refuses to grow data.mdb at commit (RLIMIT_FSIZE
 * stands in for a full disk): a clean error naming the store file, nothing
 * committed. */
START_TEST(disk_full_at_commit_is_a_clean_error)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store_with(dir, sizeof dir, "full", import_modes[_i]);
    snprintf(path, sizeof path, "%s/../full-log-%d.csv", dir, (int)getpid());
    generate_log(path, 50000, 9);
    sm_store_close(s);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {1 << 20, 1 << 20};
        setrlimit(RLIMIT_FSIZE, &lim);
        sm_store *c;
        sm_error e;
        if (sm_store_open(dir, import_modes[_i], &c, &e) != SM_OK)
            _exit(3);
        sm_import_options o;
        opts(&o, SM_FORMAT_CSV);
        o.temp_dir = "/tmp";
        int rc = import_one(c, path, &o, NULL, NULL, &e);
        char expect[1200];
        snprintf(expect, sizeof expect, "%s/data.mdb", dir);
        bool named = strcmp(e.path, expect) == 0 || strstr(e.msg, "data.mdb") != NULL;
        if (rc != SM_ERR_IO || !named)
            fprintf(stderr, "disk-full child: rc %d cause %d path %s msg %s\n", rc, e.cause, e.path, e.msg);
        /* LMDB turns a short write into EIO */
        bool cause = e.cause == EFBIG || e.cause == EIO || e.cause == ENOSPC;
        bool unchanged = strstr(e.msg, "the store is unchanged") != NULL;
        _exit(rc == SM_ERR_IO && cause && named && unchanged ? 0 : 10 + (rc < 0 ? -rc : rc));
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_ONLY, &s, NULL), SM_OK);
    sm_store_info info;
    sm_error err;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.rows, 0);
    sm_store_close(s);
    unlink(path);
    sm_test_rmtree(dir);
}
END_TEST

/* F5: every allocation of an import fails in turn; each failure is a clean
 * SM_ERR_NOMEM with the store unchanged. */
START_TEST(oom_loop_over_an_import)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "oom");
    fixture(dir, "shop.csv", SHOP_CSV, path, sizeof path);
    sm_import_options o;
    opts(&o, SM_FORMAT_CSV);
    sm_error err;
    int rc = SM_ERR_NOMEM;
    uint64_t n;
    for (n = 1; n < 10000 && rc != SM_OK; n++) {
        sm_alloc_fail_at(n, false);
        rc = import_one(s, path, &o, NULL, NULL, &err);
        sm_alloc_fail_at(0, false);
        if (rc != SM_OK) {
            ck_assert_msg(rc == SM_ERR_NOMEM, "allocation %llu: %d %s", (unsigned long long)n, rc, err.msg);
            sm_store_info info;
            ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
            ck_assert_uint_eq(info.rows, 0);
        }
    }
    ck_assert_int_eq(rc, SM_OK);
    ck_assert_uint_gt(n, 10);
    /* and the loads */
    sm_tx_table t;
    sm_basket_table b;
    sm_key_table k;
    for (int which = 0; which < 3; which++) {
        rc = SM_ERR_NOMEM;
        for (n = 1; rc != SM_OK; n++) {
            sm_alloc_fail_at(n, true);
            rc = which == 0 ? sm_store_load_tx(s, &t, NULL, &err)
                 : which == 1 ? sm_store_load_baskets(s, 0, &b, NULL, &err)
                              : sm_store_load_keys(s, SM_KEYS_ITEMS, &k, &err);
            sm_alloc_fail_at(0, false);
            ck_assert(rc == SM_OK || rc == SM_ERR_NOMEM);
        }
    }
    sm_tx_table_free(&t);
    sm_basket_table_free(&b);
    sm_key_table_free(&k);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* --- real data (skipped when SEGMINT_DATA is absent) ------------------------------------------------- */

/* A naive reference total: sum of round(quantity * price * 100) over data
 * rows with a customer or without, skipping negative prices, parsed with a
 * quote-aware split and exact integer cents. */
static int64_t naive_online_retail_total(const char *path, uint64_t *rows, uint64_t *no_customer)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    int64_t total = 0;
    *rows = *no_customer = 0;
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    while (fgets(line, sizeof line, f) != NULL) {
        char *field[16];
        int n = 0;
        bool quoted = false;
        field[n++] = line;
        for (char *p = line; *p; p++) {
            if (*p == '"')
                quoted = !quoted;
            else if (*p == ',' && !quoted && n < 16) {
                *p = '\0';
                field[n++] = p + 1;
            }
        }
        ck_assert_int_eq(n, 8);
        (*rows)++;
        if (field[6][0] == '\0')
            (*no_customer)++;
        long q = strtol(field[3], NULL, 10);
        /* price in thousandths, exactly */
        long whole = strtol(field[5], NULL, 10);
        const char *dot = strchr(field[5], '.');
        long frac = 0;
        int digits = 0;
        if (dot)
            for (const char *p = dot + 1; *p >= '0' && *p <= '9'; p++, digits++)
                frac = frac * 10 + (*p - '0');
        for (; digits < 3; digits++)
            frac *= 10;
        if (field[5][0] == '-')
            continue; /* the adjustments the importer rejects */
        long long milli = (long long)whole * 1000 + frac;
        long long prod = (long long)(q < 0 ? -q : q) * milli;
        long long cents = (prod + 5) / 10;
        total += field[0][0] == 'C' || q < 0 ? -cents : cents;
    }
    fclose(f);
    return total;
}

START_TEST(real_online_retail_accounts_for_every_row)
{
    const char *data = sm_test_data_path("online_retail/online_retail.csv");
    if (data == NULL)
        SM_TEST_SKIP("online_retail/online_retail.csv not found under SEGMINT_DATA");
    char path[4096];
    snprintf(path, sizeof path, "%s", data);
    char dir[1024];
    sm_store *s = scratch_store(dir, sizeof dir, "uci-real");
    sm_import_options o;
    opts(&o, SM_FORMAT_ONLINE_RETAIL);
    sm_import_result r;
    rejects rej;
    sm_error err;
    ck_assert_int_eq(import_one(s, path, &o, &r, &rej, &err), SM_OK);
    /* MANIFEST.tsv: 541,909 rows; 4,372 customers; 135,080 rows without
     * CustomerID; 25,900 invoices. Two rows (invoices A563186/7, no
     * customer) are bad-debt adjustments with negative prices: rejected. */
    ck_assert_uint_eq(r.rows_read, 541909);
    ck_assert_uint_eq(r.rows_stored + r.rejected, 541909);
    ck_assert_uint_eq(r.rejected, 2);
    ck_assert_int_eq(rej.n, 2);
    ck_assert_ptr_nonnull(strstr(rej.text[0], "negative unit price"));
    ck_assert_uint_eq(r.new_customers, 4372);
    ck_assert_uint_eq(r.rows_without_customer + 2, 135080);
    ck_assert_uint_eq(r.new_baskets + 2, 25900);
    ck_assert_uint_eq(r.new_items, 4070);
    uint64_t rows, no_customer;
    int64_t want = naive_online_retail_total(path, &rows, &no_customer);
    ck_assert_uint_eq(rows, 541909);
    ck_assert_uint_eq(no_customer, 135080);
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_int_eq(info.total_amount, want);
    ck_assert_int_eq(info.first_time, 1291191960); /* 2010-12-01 08:26 */
    ck_assert_int_eq(info.last_time, 1323435000);  /* 2011-12-09 12:50 */
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(real_cdnow_published_counts)
{
    const char *files[] = {"cdnow/CDNOW_master.txt", "cdnow/CDNOW_sample.txt"};
    const uint64_t rows[] = {69659, 6919};
    const uint32_t customers[] = {23570, 2357};
    for (int i = 0; i < 2; i++) {
        const char *data = sm_test_data_path(files[i]);
        if (data == NULL)
            SM_TEST_SKIP("CDNOW files not found under SEGMINT_DATA");
        char path[4096];
        snprintf(path, sizeof path, "%s", data);
        char dir[1024];
        sm_store *s = scratch_store(dir, sizeof dir, "cdnow-real");
        sm_import_options o;
        opts(&o, SM_FORMAT_CDNOW);
        sm_import_result r;
        sm_error err;
        ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_OK);
        ck_assert_uint_eq(r.rejected, 0);
        ck_assert_uint_eq(r.rows_stored, rows[i]);
        ck_assert_uint_eq(r.new_customers, customers[i]);
        sm_store_info info;
        ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
        ck_assert_int_eq(info.first_time, 852076800); /* 1997-01-01 */
        ck_assert_int_eq(info.last_time, 899164800);  /* 1998-06-30 */
        if (i == 0)
            ck_assert_int_eq(info.total_amount, 250031563); /* MANIFEST: "sum dollars 2500316" */
        sm_store_close(s);
        sm_test_rmtree(dir);
    }
}
END_TEST

START_TEST(real_basket_files_published_counts)
{
    static const struct {
        const char *file;
        sm_import_format format;
        uint64_t baskets;
        uint32_t items;
        uint64_t occurrences;
    } sets[] = {
        {"baskets/retail.dat", SM_FORMAT_FIMI, 88162, 16470, 908576},
        {"baskets/chess.dat", SM_FORMAT_FIMI, 3196, 75, 3196 * 37},
        {"baskets/groceries.csv", SM_FORMAT_BASKET_CSV, 9835, 169, 43367},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(sets); i++) {
        const char *data = sm_test_data_path(sets[i].file);
        if (data == NULL)
            SM_TEST_SKIP("basket files not found under SEGMINT_DATA");
        char path[4096];
        snprintf(path, sizeof path, "%s", data);
        char dir[1024];
        sm_store *s = scratch_store(dir, sizeof dir, "baskets-real");
        sm_import_options o;
        opts(&o, sets[i].format);
        sm_import_result r;
        sm_error err;
        ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_OK);
        ck_assert_uint_eq(r.rejected, 0);
        ck_assert_uint_eq(r.new_baskets, sets[i].baskets);
        ck_assert_uint_eq(r.new_items, sets[i].items);
        sm_store_info info;
        ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
        ck_assert_uint_eq(info.basket_items, sets[i].occurrences);
        sm_store_close(s);
        sm_test_rmtree(dir);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("import");
    TCase *core = tcase_create("core");
    tcase_add_test(core, csv_detected_columns_give_hand_computed_tables);
    tcase_add_test(core, csv_map_delimiter_time_format_and_amounts);
    tcase_add_test(core, online_retail_returns_ids_and_both_date_forms);
    tcase_add_test(core, cdnow_master_and_sample_layouts);
    tcase_add_test(core, fimi_and_basket_csv_make_baskets_without_customers);
    tcase_add_test(core, appends_reuse_ids_merge_baskets_and_refuse_duplicates);
    tcase_add_test(core, money_scale_of_a_new_store);
    tcase_add_loop_test(core, stored_checksum_covers_every_byte_of_the_file, 0, 2);
    tcase_add_test(core, bulk_import_equals_plain_and_allocates_its_map);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, bad_rows_are_rejected_with_location_and_reason);
    tcase_add_test(errors, strict_aborts_on_the_first_bad_row_with_nothing_written);
    tcase_add_test(errors, future_dates_can_be_kept_and_flagged);
    tcase_add_test(errors, encodings_bom_and_latin1);
    suite_add_tcase(s, errors);
    TCase *faults = tcase_create("faults");
    tcase_add_test(faults, external_sort_equals_in_memory_sort);
    tcase_add_test(faults, thread_count_does_not_change_the_store);
    tcase_add_loop_test(faults, tiny_map_grows_and_replays, 0, (int)SM_ARRAY_LEN(import_modes));
    tcase_add_loop_test(faults, map_cap_names_the_input_reached_and_changes_nothing, 0, (int)SM_ARRAY_LEN(import_modes));
    tcase_add_loop_test(faults, killed_import_leaves_the_store_as_it_was, 0, (int)SM_ARRAY_LEN(import_modes));
    tcase_add_loop_test(faults, disk_full_at_commit_is_a_clean_error, 0, (int)SM_ARRAY_LEN(import_modes));
    tcase_add_test(faults, oom_loop_over_an_import);
    suite_add_tcase(s, faults);
    TCase *real = tcase_create("real");
    tcase_set_timeout(real, 600);
    tcase_add_test(real, real_cdnow_published_counts);
    tcase_add_test(real, real_basket_files_published_counts);
    suite_add_tcase(s, real);
    /* 0.5 s in Release, ~10 s under ASan: left out of the sanitizer run */
    TCase *real_slow = tcase_create("real_slow");
    tcase_set_tags(real_slow, "slow");
    tcase_set_timeout(real_slow, 600);
    tcase_add_test(real_slow, real_online_retail_accounts_for_every_row);
    suite_add_tcase(s, real_slow);
    return sm_test_run(s);
}
