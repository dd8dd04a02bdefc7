/* SPDX-License-Identifier: MIT */
/* Atomic output files (S1), CSV/JSON field safety (S5), matrix files (B5). */
#include "engine/matrix_io.h"
#include "engine/output.h"
#include "kernels/core.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *render_csv_text(const char *text)
{
    static char buf[256];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    sm_csv_put_text(f, text, ',');
    fclose(f);
    return buf;
}

static char *render_json(const char *text)
{
    static char buf[256];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    sm_json_put_string(f, text);
    fclose(f);
    return buf;
}

START_TEST(csv_fields_are_quoted_and_neutralised)
{
    ck_assert_str_eq(render_csv_text("plain"), "plain");
    ck_assert_str_eq(render_csv_text("a,b"), "\"a,b\"");
    ck_assert_str_eq(render_csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
    ck_assert_str_eq(render_csv_text("two\nlines"), "\"two\nlines\"");
    /* S5: formulas are defused, plain numbers are left alone */
    ck_assert_str_eq(render_csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    ck_assert_str_eq(render_csv_text("+cmd"), "'+cmd");
    ck_assert_str_eq(render_csv_text("-2+3"), "'-2+3");
    ck_assert_str_eq(render_csv_text("@SUM(A1)"), "'@SUM(A1)");
    ck_assert_str_eq(render_csv_text("-12.5"), "-12.5");
    ck_assert_str_eq(render_csv_text("-1e3"), "-1e3");
}
END_TEST

START_TEST(json_strings_are_escaped_and_valid_utf8)
{
    ck_assert_str_eq(render_json("a\"b\\c"), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(render_json("tab\there\n\x01"), "\"tab\\there\\n\\u0001\"");
    ck_assert_str_eq(render_json("\xC2\xA3"), "\"\xC2\xA3\"");
    ck_assert_str_eq(render_json("bad\xA3!"), "\"bad\xEF\xBF\xBD!\"");   /* Latin-1 pound */
    ck_assert_str_eq(render_json("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""); /* surrogate */
}
END_TEST

START_TEST(numbers_are_shortest_exact)
{
    char buf[64];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    sm_csv_put_double(f, 0.1);
    fputc(' ', f);
    sm_csv_put_double(f, 1.0 / 3.0);
    fputc(' ', f);
    sm_csv_put_float(f, 0.1f);
    fputc(' ', f);
    sm_csv_put_double(f, NAN);
    fputc(' ', f);
    sm_json_put_double(f, INFINITY);
    fclose(f);
    /* Python repr() gives the same shortest round-trip forms. */
    ck_assert_str_eq(buf, "0.1 0.3333333333333333 0.1  null");
}
END_TEST

START_TEST(output_is_atomic_and_refuses_overwrite)
{
    char dir[4096], path[4200], link_path[4200];
    sm_test_tmpdir(dir, sizeof dir, "out");
    snprintf(path, sizeof path, "%s/result.csv", dir);
    sm_error err;
    sm_output *o;
    ck_assert_int_eq(sm_output_open(path, false, &o, &err), SM_OK);
    fputs("partial", sm_output_stream(o));
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing visible before commit */
    sm_output_abort(o);
    ck_assert_int_eq(access(path, F_OK), -1);

    ck_assert_int_eq(sm_output_open(path, false, &o, &err), SM_OK);
    fputs("v1\n", sm_output_stream(o));
    ck_assert_int_eq(sm_output_commit(o, &err), SM_OK);
    ck_assert_int_eq(access(path, F_OK), 0);

    ck_assert_int_eq(sm_output_open(path, false, &o, &err), SM_ERR_EXISTS);
    ck_assert_str_eq(err.path, path);
    ck_assert_ptr_nonnull(strstr(err.msg, "--force"));
    ck_assert_int_eq(sm_output_open(path, true, &o, &err), SM_OK);
    fputs("v2\n", sm_output_stream(o));
    ck_assert_int_eq(sm_output_commit(o, &err), SM_OK);

    snprintf(link_path, sizeof link_path, "%s/link.csv", dir);
    ck_assert_int_eq(symlink(path, link_path), 0);
    ck_assert_int_eq(sm_output_open(link_path, true, &o, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "symbolic link"));

    /* S1: an output root confines where outputs may go. */
    char sub[4200], escape[4300];
    snprintf(sub, sizeof sub, "%s/root", dir);
    mkdir(sub, 0755);
    setenv("SEGMINT_OUTPUT_ROOT", sub, 1);
    snprintf(escape, sizeof escape, "%s/../escape.csv", sub);
    ck_assert_int_eq(sm_output_open(escape, false, &o, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "outside the allowed output root"));
    snprintf(escape, sizeof escape, "%s/inside.csv", sub);
    ck_assert_int_eq(sm_output_open(escape, false, &o, &err), SM_OK);
    sm_output_abort(o);
    unsetenv("SEGMINT_OUTPUT_ROOT");

    FILE *f = fopen(path, "r");
    char line[16] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "v2\n");
    sm_test_rmtree(dir);
}
END_TEST

static int compare_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The names in dir other than . and .., sorted and joined by spaces. */
static void list_dir(const char *dir, char *buf, size_t cap)
{
    char names[16][256];
    int n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && n < 16)
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], compare_names);
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? " " : "", names[i]);
}

START_TEST(a_process_that_dies_before_commit_leaves_nothing)
{
    char dir[4096], path[4200], listing[4096];
    sm_test_tmpdir(dir, sizeof dir, "killed");
    snprintf(path, sizeof path, "%s/killed.csv", dir);
    /* Dying without commit or abort is what SIGKILL does to `segmint run`:
     * no cleanup code runs, so only an unnamed file leaves nothing. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        sm_output *o;
        sm_error err;
        if (sm_output_open(path, false, &o, &err) != SM_OK)
            _exit(2);
        fputs("a,b\n1,2\n", sm_output_stream(o));
        _exit(fflush(sm_output_stream(o)) == 0 ? 0 : 3);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    list_dir(dir, listing, sizeof listing);
    int probe = open(dir, O_TMPFILE | O_WRONLY, 0600);
    if (probe >= 0) {
        close(probe);
        ck_assert_msg(listing[0] == '\0', "left behind: %s", listing);
    } else {
        /* the documented fallback without O_TMPFILE: one named temporary */
        fprintf(stderr, "note: no O_TMPFILE in %s (%s); checking the fallback\n", dir, strerror(errno));
        ck_assert_msg(strncmp(listing, ".killed.csv.tmp.", 16) == 0 && strchr(listing, ' ') == NULL,
                      "left behind: %s", listing);
        sm_test_rmtree(dir);
        return;
    }

    /* Committed, and then replaced with force: only the target is there. */
    sm_output *o;
    sm_error err;
    ck_assert_int_eq(sm_output_open(path, false, &o, &err), SM_OK);
    fputs("v1\n", sm_output_stream(o));
    ck_assert_int_eq(sm_output_commit(o, &err), SM_OK);
    list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "killed.csv");
    ck_assert_int_eq(sm_output_open(path, true, &o, &err), SM_OK);
    fputs("v2\n", sm_output_stream(o));
    ck_assert_int_eq(sm_output_commit(o, &err), SM_OK);
    list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "killed.csv");
    FILE *f = fopen(path, "r");
    char line[16] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "v2\n");
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644); /* as before, whatever the umask */
    ck_assert_int_eq(st.st_nlink, 1);          /* the temporary name is gone */
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(matrix_csv_round_trip_with_header)
{
    char dir[4096], path[4200];
    sm_test_tmpdir(dir, sizeof dir, "mat");
    snprintf(path, sizeof path, "%s/m.csv", dir);
    sm_test_write_file(path, "recency,spend\r\n1, 2.5\n-3,1e-3\n");
    sm_matrix m;
    sm_error err;
    ck_assert_int_eq(sm_matrix_read(path, &m, &err), SM_OK);
    ck_assert_uint_eq(m.n, 2);
    ck_assert_uint_eq(m.d, 2);
    ck_assert_str_eq(m.column_names[1], "spend");
    ck_assert_float_eq(m.data[1], 2.5f);
    ck_assert_float_eq(m.data[2], -3.0f);
    ck_assert_float_eq(m.data[3], 1e-3f);

    snprintf(path, sizeof path, "%s/copy.npy", dir);
    ck_assert_int_eq(sm_matrix_write(path, m.data, m.n, m.d, m.ld, (const char *const *)m.column_names, false, &err),
                     SM_OK);
    sm_matrix back;
    ck_assert_int_eq(sm_matrix_read(path, &back, &err), SM_OK);
    ck_assert_uint_eq(back.n, 2);
    ck_assert_int_eq(memcmp(back.data, m.data, 4 * sizeof(float)), 0);
    sm_matrix_free(&back);
    sm_matrix_free(&m);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(matrix_csv_without_header_gets_generated_names)
{
    char dir[4096], path[4200];
    sm_test_tmpdir(dir, sizeof dir, "mat");
    snprintf(path, sizeof path, "%s/m.csv", dir);
    sm_test_write_file(path, "1,2,3\n4,5,6\n");
    sm_matrix m;
    sm_error err;
    ck_assert_int_eq(sm_matrix_read(path, &m, &err), SM_OK);
    ck_assert_uint_eq(m.n, 2);
    ck_assert_str_eq(m.column_names[2], "x3");
    ck_assert_float_eq(m.data[5], 6.0f);
    sm_matrix_free(&m);
    sm_test_rmtree(dir);
}
END_TEST

/* B5: NaN and infinity are told apart and located. */
START_TEST(matrix_csv_rejects_nan_inf_and_empty_with_location)
{
    char dir[4096], path[4200];
    sm_test_tmpdir(dir, sizeof dir, "mat");
    snprintf(path, sizeof path, "%s/m.csv", dir);
    static const struct {
        const char *text;
        int code;
        uint64_t line;
        uint32_t column;
        const char *field, *words;
    } cases[] = {
        {"a,b\n1,2\n3,nan\n", SM_ERR_NUMERIC, 3, 2, "b", "NaN"},
        {"a,b\n1,inf\n", SM_ERR_NUMERIC, 2, 2, "b", "infinite"},
        {"a,b\n1e309,1\n", SM_ERR_NUMERIC, 2, 1, "a", "infinite or too large"},
        {"a,b\n1e39,1\n", SM_ERR_NUMERIC, 2, 1, "a", "too large for float32"},
        {"a,b\n1,\n", SM_ERR_PARSE, 2, 2, "b", "empty value"},
        {"a,b\n1,x\n", SM_ERR_PARSE, 2, 2, "b", "not a number"},
        {"a,b\n1,2,3\n", SM_ERR_PARSE, 2, 0, "", "expected 2 fields"},
        {"a,b\n", SM_ERR_INVALID_ARG, 0, 0, "", "no data rows"},
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
        sm_test_write_file(path, cases[i].text);
        sm_matrix m;
        sm_error err;
        ck_assert_int_eq(sm_matrix_read(path, &m, &err), cases[i].code);
        ck_assert_ptr_null(m.data);
        ck_assert_uint_eq(err.line, cases[i].line);
        ck_assert_uint_eq(err.column, cases[i].column);
        ck_assert_str_eq(err.field, cases[i].field);
        ck_assert_msg(strstr(err.msg, cases[i].words) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg,
                      cases[i].words);
    }
    sm_test_rmtree(dir);
}
END_TEST

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Builds a version-1 .npy exactly as the format document describes it. */
static size_t make_npy(unsigned char *buf, const char *dict, const void *data, size_t data_len)
{
    size_t dict_len = strlen(dict);
    size_t header_len = (10 + dict_len + 1 + 63) / 64 * 64 - 10;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(header_len & 0xFF);
    buf[9] = (unsigned char)(header_len >> 8);
    memset(buf + 10, ' ', header_len);
    memcpy(buf + 10, dict, dict_len);
    buf[10 + header_len - 1] = '\n';
    memcpy(buf + 10 + header_len, data, data_len);
    return 10 + header_len + data_len;
}

START_TEST(npy_float64_and_errors)
{
    char dir[4096], path[4200];
    sm_test_tmpdir(dir, sizeof dir, "npy");
    snprintf(path, sizeof path, "%s/m.npy", dir);
    unsigned char buf[512];
    double values[6] = {1.5, -2, 3, 4, 5, 6e30};
    size_t len = make_npy(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", values, sizeof values);
    write_bytes(path, buf, len);
    sm_matrix m;
    sm_error err;
    ck_assert_int_eq(sm_matrix_read(path, &m, &err), SM_OK);
    ck_assert_uint_eq(m.n, 3);
    ck_assert_uint_eq(m.d, 2);
    ck_assert_float_eq(m.data[0], 1.5f);
    ck_assert_float_eq(m.data[5], 6e30f);
    sm_matrix_free(&m);

    values[3] = NAN;
    len = make_npy(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", values, sizeof values);
    write_bytes(path, buf, len);
    ck_assert_int_eq(sm_matrix_read(path, &m, &err), SM_ERR_NUMERIC);
    ck_assert_uint_eq(err.line, 2);   /* row 1 (0-based) */
    ck_assert_uint_eq(err.column, 2); /* column 1 (0-based) */

    len = make_npy(buf, "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }", values, sizeof values);
    write_bytes(path, buf, len);
    ck_assert_int_eq(sm_matrix_read(path, &m, &err), SM_ERR_PARSE);
    ck_assert_str_eq(err.field, "fortran_order");

    /* S2: a shape whose byte size overflows, and a truncated body. */
    len = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }", values, 8);
    write_bytes(path, buf, len);
    ck_assert_int_eq(sm_matrix_read(path, &m, &err), SM_ERR_OVERFLOW);
    len = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 8), }", values, 8);
    write_bytes(path, buf, len);
    ck_assert_int_eq(sm_matrix_read(path, &m, &err), SM_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated"));
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(npy_written_header_matches_the_format)
{
    char dir[4096], path[4200];
    sm_test_tmpdir(dir, sizeof dir, "npy");
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    int32_t labels[3] = {2, 0, 1};
    sm_error err;
    ck_assert_int_eq(sm_labels_write(path, labels, 3, false, &err), SM_OK);
    unsigned char buf[256];
    FILE *f = fopen(path, "rb");
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* numpy 1.24's np.save writes the same 140 bytes: a 118-byte header
     * (0x76) so the data start at 128. */
    static const char expected[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
    ck_assert_uint_eq(len, 128 + 12);
    ck_assert_int_eq(memcmp(buf, expected, sizeof expected - 1), 0);
    ck_assert_int_eq(buf[127], '\n');
    int32_t back[3];
    memcpy(back, buf + 128, sizeof back);
    ck_assert_int_eq(back[0], 2);
    ck_assert_int_eq(back[2], 1);
    sm_test_rmtree(dir);
}
END_TEST

static Suite *output_suite(void)
{
    Suite *s = suite_create("output");
    TCase *core = tcase_create("core");
    tcase_add_test(core, csv_fields_are_quoted_and_neutralised);
    tcase_add_test(core, json_strings_are_escaped_and_valid_utf8);
    tcase_add_test(core, numbers_are_shortest_exact);
    tcase_add_test(core, output_is_atomic_and_refuses_overwrite);
    tcase_add_test(core, a_process_that_dies_before_commit_leaves_nothing);
    tcase_add_test(core, matrix_csv_round_trip_with_header);
    tcase_add_test(core, matrix_csv_without_header_gets_generated_names);
    tcase_add_test(core, npy_written_header_matches_the_format);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, matrix_csv_rejects_nan_inf_and_empty_with_location);
    tcase_add_test(errors, npy_float64_and_errors);
    suite_add_tcase(s, errors);
    return s;
}

int main(void)
{
    return sm_test_run(output_suite());
}
