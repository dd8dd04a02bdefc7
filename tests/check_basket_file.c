/* SPDX-License-Identifier: MIT */
/* FIMI .dat and basket-CSV readers against hand-written files and the real
 * data sets' published shapes (RELIABILITY.md B1, B8, F5). */
#include "kernels/core.h"
#include "storage/basket_file.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

/* Renders baskets as "label label;label;" (empty basket = ";"). */
static void render(const sm_basket_data *b, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint64_t r = 0; r < b->csr.n_rows; r++) {
        for (uint64_t k = b->csr.offsets[r]; k < b->csr.offsets[r + 1]; k++) {
            if (k > b->csr.offsets[r])
                ck_assert_uint_gt(b->csr.items[k], b->csr.items[k - 1]); /* sorted, distinct */
            used += (size_t)snprintf(out + used, cap - used, "%s%s", k > b->csr.offsets[r] ? " " : "",
                                     b->labels[b->csr.items[k]]);
        }
        used += (size_t)snprintf(out + used, cap - used, ";");
        ck_assert_uint_lt(used, cap);
    }
}

START_TEST(fimi_trailing_spaces_crlf_duplicates_blank_lines)
{
    const char *text = "3 1 2 \r\n7 7 3\n\n  10\t1 \n1 2";
    sm_basket_data *b;
    sm_error err;
    ck_assert_int_eq(sm_basket_parse_fimi(text, strlen(text), "t.dat", &b, &err), SM_OK);
    char got[256];
    render(b, got, sizeof got);
    ck_assert_str_eq(got, "1 2 3;3 7;;1 10;1 2;");
    ck_assert_uint_eq(b->csr.n_rows, 5);
    ck_assert_uint_eq(b->csr.n_items, 5); /* 1 2 3 7 10, numeric order */
    ck_assert_str_eq(b->labels[4], "10");
    ck_assert_uint_eq(b->n_empty, 1);
    ck_assert_uint_eq(b->n_duplicates, 1);
    ck_assert_uint_eq(b->n_occurrences, 9);
    sm_basket_data_destroy(b);
}
END_TEST

START_TEST(fimi_sparse_ids_take_the_sorted_path)
{
    const char *text = "4000000000 5\n5 123456789\n";
    sm_basket_data *b;
    ck_assert_int_eq(sm_basket_parse_fimi(text, strlen(text), "s.dat", &b, NULL), SM_OK);
    char got[256];
    render(b, got, sizeof got);
    ck_assert_str_eq(got, "5 4000000000;5 123456789;");
    ck_assert_uint_eq(b->csr.n_items, 3);
    sm_basket_data_destroy(b);
}
END_TEST

START_TEST(fimi_errors_name_line_and_column)
{
    sm_basket_data *b = (sm_basket_data *)1;
    sm_error err;
    const char *bad = "1 2\n3 x4\n";
    ck_assert_int_eq(sm_basket_parse_fimi(bad, strlen(bad), "bad.dat", &b, &err), SM_ERR_PARSE);
    ck_assert_ptr_null(b);
    ck_assert_uint_eq(err.line, 2);
    ck_assert_uint_eq(err.column, 3);
    ck_assert_str_eq(err.path, "bad.dat");
    const char *neg = "1 -2\n";
    ck_assert_int_eq(sm_basket_parse_fimi(neg, strlen(neg), "neg.dat", &b, &err), SM_ERR_PARSE);
    ck_assert_uint_eq(err.column, 3);
    const char *big = "4294967295\n";
    ck_assert_int_eq(sm_basket_parse_fimi(big, strlen(big), "big.dat", &b, &err), SM_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "4294967294"));
    const char *glued = "12a\n";
    ck_assert_int_eq(sm_basket_parse_fimi(glued, strlen(glued), "g.dat", &b, &err), SM_ERR_PARSE);
    ck_assert_uint_eq(err.column, 3);
    char buf[512];
    sm_error_format(&err, buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "g.dat:1:3"));
    ck_assert_int_eq(sm_basket_read_fimi("/nonexistent/x.dat", &b, &err), SM_ERR_IO);
    ck_assert_str_eq(err.path, "/nonexistent/x.dat");
}
END_TEST

START_TEST(csv_quoted_ragged_duplicates_blank_lines)
{
    const char *text = "milk,bread\r\n\"butter, salted\",milk,milk\n\nbread,\n\"say \"\"hi\"\"\"\n";
    sm_basket_data *b;
    sm_error err;
    ck_assert_int_eq(sm_basket_parse_csv(text, strlen(text), "b.csv", &b, &err), SM_OK);
    char got[256];
    render(b, got, sizeof got);
    /* ids follow byte order: "butter, salted" < bread? no: 'b','u' > 'b','r' */
    ck_assert_str_eq(got, "bread milk;butter, salted milk;;bread;say \"hi\";");
    ck_assert_uint_eq(b->csr.n_items, 4);
    ck_assert_str_eq(b->labels[0], "bread");
    ck_assert_str_eq(b->labels[1], "butter, salted");
    ck_assert_uint_eq(b->n_empty, 1);
    ck_assert_uint_eq(b->n_duplicates, 1);
    ck_assert_uint_eq(b->n_blank_fields, 1);
    sm_basket_data_destroy(b);
}
END_TEST

START_TEST(csv_errors_name_line_and_column)
{
    sm_basket_data *b;
    sm_error err;
    const char *bad = "a,b\nc,\"d\"x\n";
    ck_assert_int_eq(sm_basket_parse_csv(bad, strlen(bad), "bad.csv", &b, &err), SM_ERR_PARSE);
    ck_assert_uint_eq(err.line, 2);
    ck_assert_uint_eq(err.column, 2);
    const char latin1[] = "caf\xe9,tea\n";
    ck_assert_int_eq(sm_basket_parse_csv(latin1, strlen(latin1), "l.csv", &b, &err), SM_ERR_PARSE);
    ck_assert_uint_eq(err.line, 1);
    ck_assert_uint_eq(err.column, 1);
}
END_TEST

START_TEST(files_on_disk)
{
    char dir[512], path[600];
    sm_test_tmpdir(dir, sizeof dir, "basket_file");
    snprintf(path, sizeof path, "%s/x.dat", dir);
    sm_test_write_file(path, "1 2 \n2 3 \n");
    sm_basket_data *b;
    ck_assert_int_eq(sm_basket_read_fimi(path, &b, NULL), SM_OK);
    ck_assert_uint_eq(b->csr.n_rows, 2);
    sm_basket_data_destroy(b);
    snprintf(path, sizeof path, "%s/x.csv", dir);
    sm_test_write_file(path, "x,y\ny\n");
    ck_assert_int_eq(sm_basket_read_csv(path, &b, NULL), SM_OK);
    ck_assert_uint_eq(b->csr.n_rows, 2);
    ck_assert_uint_eq(b->n_occurrences, 3);
    sm_basket_data_destroy(b);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(oom_loop)
{
    const char *fimi = "3 1 2 \n7 7 3\n\n10 1\n";
    const char *csv = "a,b\nb,c,c\n\"d\"\n";
    for (int form = 0; form < 2; form++) {
        for (uint64_t n = 1;; n++) {
            sm_basket_data *b = NULL;
            sm_error err;
            sm_alloc_fail_at(n, false);
            int rc = form == 0 ? sm_basket_parse_fimi(fimi, strlen(fimi), "o.dat", &b, &err)
                               : sm_basket_parse_csv(csv, strlen(csv), "o.csv", &b, &err);
            sm_alloc_fail_at(0, false);
            if (rc == SM_OK) {
                ck_assert_uint_eq(b->csr.n_rows, form == 0 ? 4 : 3);
                sm_basket_data_destroy(b);
                break;
            }
            ck_assert_int_eq(rc, SM_ERR_NOMEM);
            ck_assert_ptr_null(b);
            ck_assert_uint_lt(n, 1000);
        }
    }
}
END_TEST

/* Shapes from datasets/MANIFEST.tsv (rows, distinct items, occurrences). */
START_TEST(real_data_shapes)
{
    static const struct {
        const char *file;
        uint64_t rows;
        uint32_t items;
        uint64_t occurrences;
    } cases[] = {
        {"baskets/retail.dat", 88162, 16470, 908576},
        {"baskets/T10I4D100K.dat", 100000, 870, 1010228},
        {"baskets/chess.dat", 3196, 75, 3196 * 37},
        {"baskets/mushroom.dat", 8124, 119, 8124 * 23},
        {"baskets/groceries.csv", 9835, 169, 43367},
    };
    int found = 0;
    for (size_t c = 0; c < SM_ARRAY_LEN(cases); c++) {
        const char *path = sm_test_data_path(cases[c].file);
        if (path == NULL)
            continue;
        found++;
        sm_basket_data *b;
        sm_error err;
        int rc = strstr(path, ".csv") ? sm_basket_read_csv(path, &b, &err)
                                      : sm_basket_read_fimi(path, &b, &err);
        ck_assert_int_eq(rc, SM_OK);
        ck_assert_uint_eq(b->csr.n_rows, cases[c].rows);
        ck_assert_uint_eq(b->csr.n_items, cases[c].items);
        ck_assert_uint_eq(b->n_occurrences, cases[c].occurrences);
        ck_assert_uint_eq(b->n_empty, 0);
        sm_basket_data_destroy(b);
    }
    if (found == 0)
        SM_TEST_SKIP("no basket data under SEGMINT_DATA");
}
END_TEST

static Suite *basket_file_suite(void)
{
    Suite *s = suite_create("basket_file");
    TCase *core = tcase_create("core");
    tcase_add_test(core, fimi_trailing_spaces_crlf_duplicates_blank_lines);
    tcase_add_test(core, fimi_sparse_ids_take_the_sorted_path);
    tcase_add_test(core, csv_quoted_ragged_duplicates_blank_lines);
    tcase_add_test(core, files_on_disk);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, fimi_errors_name_line_and_column);
    tcase_add_test(errors, csv_errors_name_line_and_column);
    suite_add_tcase(s, errors);
    TCase *oom = tcase_create("oom");
    tcase_add_test(oom, oom_loop);
    suite_add_tcase(s, oom);
    TCase *regress = tcase_create("regress");
    tcase_add_test(regress, real_data_shapes);
    suite_add_tcase(s, regress);
    return s;
}

int main(void)
{
    return sm_test_run(basket_file_suite());
}
