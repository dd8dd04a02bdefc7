/* SPDX-License-Identifier: MIT */
/* The RFC 4180 reader against hand-written inputs (RELIABILITY.md B1, B2). */
#include "kernels/core.h"
#include "storage/csv.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads every record of `text` and renders them as "f1|f2;f1|f2;" with the
 * problem code prefixed as "!N@line" for flagged records. */
static void render(const char *text, size_t len, char delimiter, size_t max_record, char *out, size_t cap)
{
    sm_csv_options options;
    sm_csv_options_init(&options);
    options.delimiter = delimiter;
    if (max_record)
        options.max_record_bytes = max_record;
    sm_csv_reader *reader;
    sm_error err;
    ck_assert_int_eq(sm_csv_open_memory(text, len, "mem.csv", &options, &reader, &err), SM_OK);
    sm_csv_record rec;
    size_t used = 0;
    out[0] = '\0';
    int rc;
    while ((rc = sm_csv_next(reader, &rec, &err)) == 1) {
        if (rec.problem != SM_CSV_OK)
            used += (size_t)snprintf(out + used, cap - used, "!%d@%" PRIu64 ":%u;", (int)rec.problem,
                                     rec.line, rec.problem_column);
        else {
            used += (size_t)snprintf(out + used, cap - used, "%" PRIu64 ":", rec.line);
            for (size_t i = 0; i < rec.n_fields; i++)
                used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "|" : "", rec.fields[i]);
            used += (size_t)snprintf(out + used, cap - used, ";");
        }
        ck_assert_uint_lt(used, cap);
    }
    ck_assert_int_eq(rc, 0);
    sm_csv_close(reader);
}

#define EXPECT_CSV(text, expected)                                                                 \
    do {                                                                                           \
        char got[4096];                                                                            \
        render(text, strlen(text), ',', 0, got, sizeof got);                                       \
        ck_assert_str_eq(got, expected);                                                           \
    } while (0)

START_TEST(plain_and_quoted_fields)
{
    EXPECT_CSV("a,b,c\n1,2,3\n", "1:a|b|c;2:1|2|3;");
    EXPECT_CSV("\"x,y\",\"say \"\"hi\"\"\",z\n", "1:x,y|say \"hi\"|z;");
    EXPECT_CSV("last,line,no newline", "1:last|line|no newline;");
    EXPECT_CSV("a\"b,c\n", "1:a\"b|c;"); /* a quote inside an unquoted field is literal */
    EXPECT_CSV("\"\",,\"\"\n", "1:||;");
}
END_TEST

START_TEST(embedded_newline_counts_lines)
{
    EXPECT_CSV("id,text\n1,\"two\nlines\"\n2,x\n", "1:id|text;2:1|two\nlines;4:2|x;");
}
END_TEST

START_TEST(crlf_lf_mix_and_blank_lines)
{
    EXPECT_CSV("a,b\r\n1,2\n\r\n\n3,4\r\n", "1:a|b;2:1|2;5:3|4;");
    EXPECT_CSV("\"q\"\r\nz", "1:q;2:z;");
}
END_TEST

START_TEST(trailing_delimiter_is_an_empty_field)
{
    EXPECT_CSV("a,b,\n", "1:a|b|;");
}
END_TEST

START_TEST(other_delimiters)
{
    char got[256];
    const char *tsv = "a\tb c\t\"d\te\"\n";
    render(tsv, strlen(tsv), '\t', 0, got, sizeof got);
    ck_assert_str_eq(got, "1:a|b c|d\te;");
    const char *semi = "1;2,5;3\n";
    render(semi, strlen(semi), ';', 0, got, sizeof got);
    ck_assert_str_eq(got, "1:1|2,5|3;");
}
END_TEST

START_TEST(utf8_bom_skipped_utf16_refused)
{
    EXPECT_CSV("\xEF\xBB\xBFid,name\n1,\xC2\xA3\n", "1:id|name;2:1|\xC2\xA3;");
    const char utf16[] = "\xFF\xFEi\0d\0";
    sm_csv_reader *reader = NULL;
    sm_error err;
    ck_assert_int_eq(sm_csv_open_memory(utf16, sizeof utf16 - 1, "u16.csv", NULL, &reader, &err),
                     SM_ERR_PARSE);
    ck_assert_ptr_null(reader);
    ck_assert_str_eq(err.path, "u16.csv");
    ck_assert_ptr_nonnull(strstr(err.msg, "UTF-16"));
}
END_TEST

START_TEST(unbalanced_quote_loses_one_line_only)
{
    /* Line 2 opens a quote that never closes: it is flagged, and lines 3-4
     * still arrive. */
    EXPECT_CSV("a,b\n1,\"oops\n3,x\n4,y\n", "1:a|b;!1@2:2;3:3|x;4:4|y;");
    EXPECT_CSV("1,\"unterminated", "!1@1:2;");
}
END_TEST

START_TEST(text_after_closing_quote_is_flagged)
{
    EXPECT_CSV("\"abc\"x,2\nok,1\n", "!2@1:1;2:ok|1;");
}
END_TEST

START_TEST(overlong_line_is_flagged_and_skipped)
{
    /* B1: a line over the limit (1 MiB by default) is rejected with its line
     * number and reading resumes at the next line. */
    size_t big = (size_t)3 << 20;
    char *text = malloc(big + 64);
    strcpy(text, "h1,h2\n");
    size_t len = strlen(text);
    memset(text + len, 'x', big);
    len += big;
    strcpy(text + len, "\nafter,1\n");
    len += strlen("\nafter,1\n");
    char got[256];
    render(text, len, ',', 0, got, sizeof got);
    ck_assert_str_eq(got, "1:h1|h2;!3@2:1;3:after|1;");
    /* A runaway quoted field over the limit resynchronises after its line. */
    const char *runaway = "1,\"abc\n2,def\n3,ghi\n";
    render(runaway, strlen(runaway), ',', 8, got, sizeof got);
    ck_assert_str_eq(got, "!3@1:1;2:2|def;3:3|ghi;");
    free(text);
}
END_TEST

START_TEST(records_straddling_chunks_are_whole)
{
    /* Many quoted records so that several cross the 1 MiB read boundary. */
    size_t n = 60000, cap = n * 64;
    char *text = malloc(cap);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "%zu,\"v,%zu\n\"\"q\"\"\",tail%zu\r\n", i, i * 7, i);
    sm_csv_reader *reader;
    sm_error err;
    ck_assert_int_eq(sm_csv_open_memory(text, len, "mem", NULL, &reader, &err), SM_OK);
    sm_csv_record rec;
    size_t count = 0;
    char expect[64];
    while (sm_csv_next(reader, &rec, &err) == 1) {
        ck_assert_int_eq(rec.problem, SM_CSV_OK);
        ck_assert_uint_eq(rec.n_fields, 3);
        ck_assert_uint_eq(rec.line, 2 * count + 1);
        snprintf(expect, sizeof expect, "v,%zu\n\"q\"", count * 7);
        ck_assert_str_eq(rec.fields[1], expect);
        snprintf(expect, sizeof expect, "tail%zu", count);
        ck_assert_str_eq(rec.fields[2], expect);
        count++;
    }
    ck_assert_uint_eq(count, n);
    ck_assert_uint_eq(sm_csv_bytes_consumed(reader), len);
    sm_csv_close(reader);
    free(text);
}
END_TEST

/* Plain lines take a one-pass fast path; it must give exactly what the
 * general scanner gives, record by record, on input full of the cases it
 * hands over (quotes, CR, blank lines, NULs, long lines, many fields, lines
 * across the 1 MiB chunk boundary). */
static sm_csv_reader *open_random(const char *text, size_t len, bool general)
{
    sm_csv_options options;
    sm_csv_options_init(&options);
    options.max_record_bytes = 200;
    options.general_scanner = general;
    sm_csv_reader *reader;
    sm_error err;
    ck_assert_int_eq(sm_csv_open_memory(text, len, "rand.csv", &options, &reader, &err), SM_OK);
    return reader;
}

START_TEST(fast_path_equals_the_general_scanner)
{
    static const char alphabet[] = "abcdefgh0123456789 .-,,,,\n\n\r\"";
    size_t len = (size_t)3 << 20;
    char *text = malloc(len);
    ck_assert_ptr_nonnull(text);
    uint64_t x = sm_test_seed(2026);
    for (size_t i = 0; i < len; i++) {
        x = x * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
        unsigned r = (unsigned)(x >> 33);
        /* mostly plain lines of 7 fields; now and then a special byte */
        if (r % 1000 == 0)
            text[i] = '\0';
        else if (r % 97 == 0)
            text[i] = alphabet[(r / 97) % (sizeof alphabet - 1)];
        else if (r % 11 == 0)
            text[i] = ',';
        else if (r % 53 == 0)
            text[i] = '\n';
        else
            text[i] = (char)('a' + r % 26);
    }
    sm_csv_reader *fast = open_random(text, len, false), *general = open_random(text, len, true);
    sm_csv_record a, b;
    sm_error err;
    size_t records = 0, with_nul = 0;
    int ra, rb;
    while ((ra = sm_csv_next(fast, &a, &err)) == 1) {
        rb = sm_csv_next(general, &b, &err);
        ck_assert_int_eq(rb, 1);
        ck_assert_uint_eq(a.line, b.line);
        ck_assert_uint_eq(a.offset, b.offset);
        ck_assert_uint_eq(a.end_offset, b.end_offset);
        ck_assert_int_eq(a.problem, b.problem);
        ck_assert_uint_eq(a.problem_column, b.problem_column);
        ck_assert_uint_eq(a.n_fields, b.n_fields);
        ck_assert(a.has_nul == b.has_nul);
        bool nul = false;
        for (size_t f = 0; f < a.n_fields && a.problem == SM_CSV_OK; f++) {
            ck_assert_uint_eq(a.lengths[f], b.lengths[f]);
            ck_assert_int_eq(memcmp(a.fields[f], b.fields[f], a.lengths[f]), 0);
            ck_assert_int_eq(a.fields[f][a.lengths[f]], '\0');
            nul = nul || memchr(a.fields[f], '\0', a.lengths[f]) != NULL;
        }
        if (a.problem == SM_CSV_OK)
            ck_assert(a.has_nul == nul);
        with_nul += a.has_nul;
        records++;
    }
    ck_assert_int_eq(ra, 0);
    ck_assert_int_eq(sm_csv_next(general, &b, &err), 0);
    ck_assert_uint_eq(sm_csv_blank_lines(fast), sm_csv_blank_lines(general));
    ck_assert_uint_ge(records, 50000);
    ck_assert_uint_gt(with_nul, 100);
    sm_csv_close(fast);
    sm_csv_close(general);
    free(text);
}
END_TEST

START_TEST(file_input_and_resume_from_offset)
{
    char dir[4096], path[4200];
    sm_test_tmpdir(dir, sizeof dir, "csv");
    snprintf(path, sizeof path, "%s/in.csv", dir);
    sm_test_write_file(path, "a,b\n1,2\n3,4\n5,6\n");
    sm_csv_reader *reader;
    sm_error err;
    ck_assert_int_eq(sm_csv_open(path, NULL, &reader, &err), SM_OK);
    ck_assert_uint_eq(sm_csv_size(reader), 16);
    sm_csv_record rec;
    ck_assert_int_eq(sm_csv_next(reader, &rec, &err), 1);
    ck_assert_int_eq(sm_csv_next(reader, &rec, &err), 1);
    uint64_t resume = rec.end_offset, line = rec.line + 1;
    ck_assert_uint_eq(resume, 8);
    sm_csv_close(reader);

    ck_assert_int_eq(sm_csv_open(path, NULL, &reader, &err), SM_OK);
    ck_assert_int_eq(sm_csv_seek(reader, resume, line, &err), SM_OK);
    ck_assert_int_eq(sm_csv_next(reader, &rec, &err), 1);
    ck_assert_str_eq(rec.fields[0], "3");
    ck_assert_uint_eq(rec.line, 3);
    sm_csv_close(reader);

    snprintf(path, sizeof path, "%s/missing.csv", dir);
    ck_assert_int_eq(sm_csv_open(path, NULL, &reader, &err), SM_ERR_IO);
    ck_assert_str_eq(err.path, path);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(utf8_validation)
{
    size_t bad = 0;
    ck_assert(sm_utf8_valid("plain", 5, &bad));
    ck_assert(sm_utf8_valid("\xC2\xA3 \xE2\x82\xAC \xF0\x9F\x98\x80", 12, &bad));
    ck_assert(!sm_utf8_valid("ab\xA3", 3, &bad)); /* Latin-1 pound sign */
    ck_assert_uint_eq(bad, 2);
    ck_assert(!sm_utf8_valid("\xC0\xAF", 2, &bad));         /* overlong '/' */
    ck_assert(!sm_utf8_valid("\xED\xA0\x80", 3, &bad));     /* surrogate */
    ck_assert(!sm_utf8_valid("\xE2\x82", 2, &bad));         /* truncated */
    ck_assert(!sm_utf8_valid("\xF4\x90\x80\x80", 4, &bad)); /* > U+10FFFF */
}
END_TEST

START_TEST(out_of_memory_is_reported)
{
    const char *text = "a,b\n1,2\n";
    for (uint64_t nth = 1;; nth++) {
        sm_alloc_fail_at(nth, false);
        sm_csv_reader *reader = NULL;
        sm_error err;
        int rc = sm_csv_open_memory(text, strlen(text), "m", NULL, &reader, &err);
        sm_alloc_fail_at(0, false);
        if (rc == SM_OK) {
            sm_csv_close(reader);
            break;
        }
        ck_assert_int_eq(rc, SM_ERR_NOMEM);
        ck_assert_ptr_null(reader);
        ck_assert_uint_lt(nth, 20);
    }
}
END_TEST

static Suite *csv_suite(void)
{
    Suite *s = suite_create("csv");
    TCase *core = tcase_create("core");
    tcase_add_test(core, plain_and_quoted_fields);
    tcase_add_test(core, embedded_newline_counts_lines);
    tcase_add_test(core, crlf_lf_mix_and_blank_lines);
    tcase_add_test(core, trailing_delimiter_is_an_empty_field);
    tcase_add_test(core, other_delimiters);
    tcase_add_test(core, records_straddling_chunks_are_whole);
    tcase_add_test(core, fast_path_equals_the_general_scanner);
    tcase_add_test(core, file_input_and_resume_from_offset);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, utf8_bom_skipped_utf16_refused);
    tcase_add_test(errors, unbalanced_quote_loses_one_line_only);
    tcase_add_test(errors, text_after_closing_quote_is_flagged);
    tcase_add_test(errors, overlong_line_is_flagged_and_skipped);
    tcase_add_test(errors, utf8_validation);
    suite_add_tcase(s, errors);
    TCase *oom = tcase_create("oom");
    tcase_add_test(oom, out_of_memory_is_reported);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    return sm_test_run(csv_suite());
}
