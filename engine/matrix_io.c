/* SPDX-License-Identifier: MIT */
/*
 * Matrix files. The .npy reader follows the format's documented layout
 * (magic, version, little-endian header length, a Python dict literal with
 * descr/fortran_order/shape, then raw C-order data) and trusts nothing in it:
 * sizes are checked against the file length with overflow-checked arithmetic.
 */
#include "engine/matrix_io.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/output.h"
#include "kernels/core.h"
#include "storage/csv.h"

int sm_parse_number(const char *text, double *out, const char **why)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text == '\0') {
        *why = "empty value (missing values are not accepted)";
        return SM_ERR_PARSE;
    }
    errno = 0;
    char *end;
    double value = strtod(text, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == text || *end != '\0') {
        *why = "not a number";
        return SM_ERR_PARSE;
    }
    if (isnan(value)) {
        *why = "value is NaN (missing values are not accepted)";
        return SM_ERR_NUMERIC;
    }
    if (isinf(value) || (errno == ERANGE && fabs(value) > 1.0)) {
        *why = "value is infinite or too large for float64";
        return SM_ERR_NUMERIC;
    }
    *out = value;
    return SM_OK;
}

int sm_parse_float32(const char *text, float *out, const char **why)
{
    double value;
    int rc = sm_parse_number(text, &value, why);
    if (rc != SM_OK)
        return rc;
    if (fabs(value) > FLT_MAX) {
        *why = "value is too large for float32";
        return SM_ERR_NUMERIC;
    }
    *out = (float)value;
    return SM_OK;
}

void sm_matrix_free(sm_matrix *m)
{
    if (m->column_names != NULL)
        for (size_t j = 0; j < m->d; j++)
            sm_free(m->column_names[j]);
    sm_free(m->column_names);
    sm_free(m->data);
    memset(m, 0, sizeof *m);
}

static int set_names(sm_matrix *m, size_t d, char *const *given, sm_error *err)
{
    m->column_names = sm_calloc(d, sizeof *m->column_names);
    if (m->column_names == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %zu column names", d);
    for (size_t j = 0; j < d; j++) {
        char generated[32];
        snprintf(generated, sizeof generated, "x%zu", j + 1);
        m->column_names[j] = sm_strdup(given != NULL ? given[j] : generated);
        if (m->column_names[j] == NULL)
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory for column names");
    }
    return SM_OK;
}

int sm_matrix_alloc(sm_matrix *m, size_t n, size_t d, sm_error *err)
{
    memset(m, 0, sizeof *m);
    size_t cells;
    if (!sm_mul_size(n, d, &cells))
        return sm_error_set(err, SM_ERR_OVERFLOW, "a %zu x %zu matrix does not fit in memory", n, d);
    m->data = sm_aligned_alloc(cells, sizeof(float));
    if (m->data == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for a %zu x %zu matrix", n, d);
    m->n = n;
    m->d = d;
    m->ld = d;
    int rc = set_names(m, d, NULL, err);
    if (rc != SM_OK)
        sm_matrix_free(m);
    return rc;
}

/* --- CSV ------------------------------------------------------------------------ */

static bool looks_numeric(const char *text)
{
    char *end;
    while (*text == ' ')
        text++;
    if (*text == '\0')
        return true; /* an empty cell is a missing number, not a name */
    strtod(text, &end);
    while (*end == ' ')
        end++;
    return end != text && *end == '\0';
}

static int read_csv(const char *path, sm_matrix *m, sm_error *err)
{
    sm_csv_reader *reader = NULL;
    int rc = sm_csv_open(path, NULL, &reader, err);
    if (rc != SM_OK)
        return rc;
    sm_csv_record rec;
    size_t d = 0, n = 0, cap_rows = 0;
    float *rows = NULL;
    char **header = NULL;
    bool first = true;
    while ((rc = sm_csv_next_wellformed(reader, &rec, err)) == 1) {
        if (first) {
            first = false;
            d = rec.n_fields;
            bool is_header = false;
            for (size_t j = 0; j < d; j++)
                is_header |= !looks_numeric(rec.fields[j]);
            if (is_header) {
                header = sm_calloc(d, sizeof *header);
                if (header == NULL) {
                    rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", path);
                    goto out;
                }
                for (size_t j = 0; j < d; j++)
                    if ((header[j] = sm_strdup(rec.fields[j])) == NULL) {
                        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", path);
                        goto out;
                    }
                continue;
            }
        }
        if (rec.n_fields != d) {
            rc = sm_error_set_at(err, SM_ERR_PARSE, path, rec.line, 0, NULL,
                                 "expected %zu fields (as in the first row), found %zu", d, rec.n_fields);
            goto out;
        }
        if (n == cap_rows) {
            cap_rows = cap_rows ? cap_rows * 2 : 1024;
            float *bigger = sm_realloc_array(rows, cap_rows, d * sizeof(float));
            if (bigger == NULL) {
                rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s (%zu rows)", path, n);
                goto out;
            }
            rows = bigger;
        }
        for (size_t j = 0; j < d; j++) {
            const char *why;
            int parse_rc = sm_parse_float32(rec.fields[j], &rows[n * d + j], &why);
            if (parse_rc != SM_OK) {
                char name[32];
                snprintf(name, sizeof name, "x%zu", j + 1);
                rc = sm_error_set_at(err, parse_rc, path, rec.line, (uint32_t)(j + 1),
                                     header ? header[j] : name, "%s: '%.40s'", why, rec.fields[j]);
                goto out;
            }
        }
        n++;
    }
    if (rc < 0)
        goto out;
    if (n == 0 || d == 0) {
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL, "holds no data rows");
        goto out;
    }
    rc = sm_matrix_alloc(m, n, d, err);
    if (rc != SM_OK)
        goto out;
    memcpy(m->data, rows, n * d * sizeof(float));
    if (header != NULL)
        for (size_t j = 0; j < d; j++) {
            sm_free(m->column_names[j]);
            m->column_names[j] = header[j];
            header[j] = NULL;
        }
out:
    if (header != NULL)
        for (size_t j = 0; j < d; j++)
            sm_free(header[j]);
    sm_free(header);
    sm_free(rows);
    sm_csv_close(reader);
    return rc;
}

/* --- .npy ------------------------------------------------------------------------ */

typedef struct npy_header {
    size_t data_offset;
    size_t item_size;   /* 4 or 8 */
    bool big_endian;
    bool is_int;        /* '<i4' (labels) */
    size_t shape[2];
    int ndim;
} npy_header;

/* Finds `'key':` in the dict literal and returns the text after it. */
static const char *dict_value(const char *dict, const char *key)
{
    char pattern[32];
    snprintf(pattern, sizeof pattern, "'%s':", key);
    const char *at = strstr(dict, pattern);
    if (at == NULL)
        return NULL;
    at += strlen(pattern);
    while (*at == ' ')
        at++;
    return at;
}

static int parse_npy_header(FILE *f, const char *path, uint64_t file_size, npy_header *h, sm_error *err)
{
    unsigned char prefix[12];
    if (fread(prefix, 1, 10, f) != 10 || memcmp(prefix, "\x93NUMPY", 6) != 0)
        return sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, NULL, "not a NumPy .npy file (bad magic)");
    unsigned major = prefix[6];
    size_t header_len, prefix_len;
    if (major == 1) {
        header_len = (size_t)prefix[8] | (size_t)prefix[9] << 8;
        prefix_len = 10;
    } else if (major == 2 || major == 3) {
        if (fread(prefix + 10, 1, 2, f) != 2)
            return sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, NULL, "truncated .npy header");
        header_len = (size_t)prefix[8] | (size_t)prefix[9] << 8 | (size_t)prefix[10] << 16 |
                     (size_t)prefix[11] << 24;
        prefix_len = 12;
    } else {
        return sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, NULL, ".npy format version %u is not supported",
                               major);
    }
    if (header_len > 65536 || prefix_len + header_len > file_size)
        return sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, NULL, "implausible .npy header length %zu",
                               header_len);
    char *dict = sm_malloc(header_len + 1);
    if (dict == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", path);
    int rc = SM_OK;
    if (fread(dict, 1, header_len, f) != header_len) {
        rc = sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, NULL, "truncated .npy header");
        goto out;
    }
    dict[header_len] = '\0';
    h->data_offset = prefix_len + header_len;

    const char *descr = dict_value(dict, "descr");
    const char *order = dict_value(dict, "fortran_order");
    const char *shape = dict_value(dict, "shape");
    if (descr == NULL || order == NULL || shape == NULL) {
        rc = sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, NULL,
                             ".npy header lacks descr, fortran_order or shape");
        goto out;
    }
    if (strncmp(descr, "'<f4'", 5) == 0 || strncmp(descr, "'|f4'", 5) == 0)
        h->item_size = 4;
    else if (strncmp(descr, "'<f8'", 5) == 0)
        h->item_size = 8;
    else if (strncmp(descr, "'>f4'", 5) == 0)
        h->item_size = 4, h->big_endian = true;
    else if (strncmp(descr, "'>f8'", 5) == 0)
        h->item_size = 8, h->big_endian = true;
    else if (strncmp(descr, "'<i4'", 5) == 0)
        h->item_size = 4, h->is_int = true;
    else {
        rc = sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, "descr",
                             "dtype %.12s is not supported; save as float32 or float64", descr);
        goto out;
    }
    if (strncmp(order, "False", 5) != 0) {
        rc = sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, "fortran_order",
                             "Fortran-ordered arrays are not supported; save np.ascontiguousarray(x)");
        goto out;
    }
    if (*shape != '(') {
        rc = sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, "shape", "malformed shape");
        goto out;
    }
    const char *p = shape + 1;
    h->ndim = 0;
    while (*p != ')' && *p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        errno = 0;
        char *end;
        unsigned long long dim = strtoull(p, &end, 10);
        if (end == p || errno == ERANGE || h->ndim == 2) {
            rc = sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, "shape",
                                 "only 1-D and 2-D arrays with integer shapes are supported");
            goto out;
        }
        h->shape[h->ndim++] = (size_t)dim;
        p = end;
    }
    if (h->ndim == 0) {
        rc = sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, "shape", "a scalar is not a matrix");
        goto out;
    }
    if (h->ndim == 1)
        h->shape[1] = 1;
    size_t cells, bytes, needed;
    if (!sm_mul_size(h->shape[0], h->shape[1], &cells) || !sm_mul_size(cells, h->item_size, &bytes) ||
        !sm_add_size(bytes, h->data_offset, &needed)) {
        rc = sm_error_set_at(err, SM_ERR_OVERFLOW, path, 0, 0, "shape", "shape %zu x %zu overflows", h->shape[0],
                             h->shape[1]);
        goto out;
    }
    if (needed > file_size) {
        rc = sm_error_set_at(err, SM_ERR_PARSE, path, 0, 0, NULL,
                             "truncated: the header promises %zu bytes of data, the file has %" PRIu64,
                             bytes, file_size - h->data_offset);
        goto out;
    }
out:
    sm_free(dict);
    return rc;
}

static double decode_value(const unsigned char *b, const npy_header *h)
{
    unsigned char tmp[8];
    if (h->big_endian) {
        for (size_t i = 0; i < h->item_size; i++)
            tmp[i] = b[h->item_size - 1 - i];
        b = tmp;
    }
    if (h->is_int) {
        int32_t v;
        memcpy(&v, b, 4);
        return v;
    }
    if (h->item_size == 4) {
        float v;
        memcpy(&v, b, 4);
        return v;
    }
    double v;
    memcpy(&v, b, 8);
    return v;
}

static int read_npy(const char *path, sm_matrix *m, sm_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int saved = errno;
        sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "cannot open: %s", strerror(saved));
        sm_error_set_cause(err, saved);
        return SM_ERR_IO;
    }
    struct stat st;
    npy_header h;
    memset(&h, 0, sizeof h);
    int rc = fstat(fileno(f), &st) == 0 ? SM_OK : SM_ERR_IO;
    if (rc != SM_OK)
        sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "cannot stat: %s", strerror(errno));
    else
        rc = parse_npy_header(f, path, (uint64_t)st.st_size, &h, err);
    if (rc == SM_OK && (h.shape[0] == 0 || h.shape[1] == 0))
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL, "holds an empty %zu x %zu array",
                             h.shape[0], h.shape[1]);
    if (rc == SM_OK)
        rc = sm_matrix_alloc(m, h.shape[0], h.shape[1], err);
    enum { CHUNK = 1 << 16 };
    unsigned char *chunk = rc == SM_OK ? sm_alloc_array(CHUNK, h.item_size) : NULL;
    if (rc == SM_OK && chunk == NULL)
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", path);
    size_t total = m->n * m->d;
    for (size_t done = 0; rc == SM_OK && done < total;) {
        size_t want = SM_MIN((size_t)CHUNK, total - done);
        if (fread(chunk, h.item_size, want, f) != want) {
            rc = sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "read failed after %zu values", done);
            break;
        }
        for (size_t i = 0; i < want; i++) {
            double v = decode_value(chunk + i * h.item_size, &h);
            size_t cell = done + i;
            const char *why = NULL;
            if (isnan(v))
                why = "value is NaN (missing values are not accepted)";
            else if (isinf(v))
                why = "value is infinite";
            else if (fabs(v) > FLT_MAX)
                why = "value is too large for float32";
            if (why != NULL) {
                /* .npy rows and columns are reported 1-based like CSV lines. */
                rc = sm_error_set_at(err, SM_ERR_NUMERIC, path, cell / m->d + 1, (uint32_t)(cell % m->d + 1),
                                     m->column_names[cell % m->d], "%s (row %zu, column %zu, 0-based)", why,
                                     cell / m->d, cell % m->d);
                break;
            }
            m->data[cell] = (float)v;
        }
        done += want;
    }
    sm_free(chunk);
    fclose(f);
    if (rc != SM_OK)
        sm_matrix_free(m);
    return rc;
}

int sm_matrix_read(const char *path, sm_matrix *m, sm_error *err)
{
    memset(m, 0, sizeof *m);
    int rc = strcmp(sm_path_extension(path), "npy") == 0 ? read_npy(path, m, err) : read_csv(path, m, err);
    if (rc != SM_OK)
        sm_matrix_free(m);
    return rc;
}

/* --- writing ------------------------------------------------------------------------ */

static void write_npy_header(FILE *f, const char *descr, size_t n, size_t d, bool one_dimensional)
{
    char dict[256];
    int len = one_dimensional
                  ? snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu,), }", descr, n)
                  : snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }",
                             descr, n, d);
    /* Pad with spaces and a newline so the data start on a 64-byte boundary. */
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t header_len = padded - 10;
    unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(header_len & 0xFF),
                                (unsigned char)(header_len >> 8)};
    fwrite(prefix, 1, 10, f);
    fwrite(dict, 1, (size_t)len, f);
    for (size_t i = 10 + (size_t)len; i < padded - 1; i++)
        fputc(' ', f);
    fputc('\n', f);
}

int sm_matrix_write(const char *path, const float *data, size_t n, size_t d, size_t ld,
                    const char *const *column_names, bool force, sm_error *err)
{
    sm_output *output;
    int rc = sm_output_open(path, force, &output, err);
    if (rc != SM_OK)
        return rc;
    FILE *f = sm_output_stream(output);
    if (strcmp(sm_path_extension(path), "npy") == 0) {
        write_npy_header(f, "<f4", n, d, false);
        for (size_t i = 0; i < n; i++)
            fwrite(data + i * ld, sizeof(float), d, f);
    } else {
        for (size_t j = 0; j < d; j++) {
            if (j)
                fputc(',', f);
            if (column_names != NULL)
                sm_csv_put_text(f, column_names[j], ',');
            else
                fprintf(f, "x%zu", j + 1);
        }
        fputc('\n', f);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < d; j++) {
                if (j)
                    fputc(',', f);
                sm_csv_put_float(f, data[i * ld + j]);
            }
            fputc('\n', f);
        }
    }
    return sm_output_commit(output, err);
}

int sm_labels_write(const char *path, const int32_t *labels, size_t n, bool force, sm_error *err)
{
    sm_output *output;
    int rc = sm_output_open(path, force, &output, err);
    if (rc != SM_OK)
        return rc;
    FILE *f = sm_output_stream(output);
    if (strcmp(sm_path_extension(path), "npy") == 0) {
        write_npy_header(f, "<i4", n, 1, true);
        fwrite(labels, sizeof(int32_t), n, f);
    } else {
        fputs("label\n", f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%" PRId32 "\n", labels[i]);
    }
    return sm_output_commit(output, err);
}

/* --- column selection ----------------------------------------------------------------- */

int sm_matrix_find_column(const sm_matrix *m, const char *name)
{
    for (size_t j = 0; j < m->d; j++)
        if (strcmp(m->column_names[j], name) == 0)
            return (int)j;
    return -1;
}

/* Resolves "a,b,c" to column indexes; *count receives how many. */
static int resolve_names(const sm_matrix *m, const char *list, const char *what, size_t *index, size_t cap,
                         size_t *count, sm_error *err)
{
    *count = 0;
    char *copy = sm_strdup(list);
    if (copy == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %s", what);
    int rc = SM_OK;
    char *save = NULL;
    for (char *name = strtok_r(copy, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        int j = sm_matrix_find_column(m, name);
        if (j < 0) {
            rc = sm_error_set(err, SM_ERR_NOT_FOUND, "%s: no column named \"%s\" (columns: %s, ...)", what, name,
                              m->column_names[0]);
            break;
        }
        if (*count == cap) {
            rc = sm_error_set(err, SM_ERR_INVALID_ARG, "%s: more names than the %zu columns", what, cap);
            break;
        }
        index[(*count)++] = (size_t)j;
    }
    if (rc == SM_OK && *count == 0)
        rc = sm_error_set(err, SM_ERR_INVALID_ARG, "%s '%s': expected a comma list of column names", what, list);
    sm_free(copy);
    return rc;
}

int sm_matrix_select_columns(sm_matrix *m, const char *list, const char *what, sm_error *err)
{
    size_t *index = sm_alloc_array(m->d, sizeof *index), count = 0;
    if (index == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %s", what);
    int rc = resolve_names(m, list, what, index, m->d, &count, err);
    sm_matrix sel;
    if (rc == SM_OK)
        rc = sm_matrix_alloc(&sel, m->n, count, err);
    if (rc == SM_OK) {
        for (size_t i = 0; i < m->n; i++)
            for (size_t c = 0; c < count; c++)
                sel.data[i * sel.ld + c] = m->data[i * m->ld + index[c]];
        for (size_t c = 0; c < count && rc == SM_OK; c++) {
            char *name = sm_strdup(m->column_names[index[c]]);
            if (name == NULL)
                rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory for %s", what);
            else {
                sm_free(sel.column_names[c]);
                sel.column_names[c] = name;
            }
        }
        if (rc == SM_OK) {
            sm_matrix_free(m);
            *m = sel;
        } else {
            sm_matrix_free(&sel);
        }
    }
    sm_free(index);
    return rc;
}

int sm_matrix_column_flags(const sm_matrix *m, const char *list, const char *what, bool *flags, sm_error *err)
{
    bool all = list != NULL && strcmp(list, "all") == 0;
    for (size_t j = 0; j < m->d; j++)
        flags[j] = all;
    if (list == NULL || list[0] == '\0' || all)
        return SM_OK;
    size_t *index = sm_alloc_array(m->d, sizeof *index), count = 0;
    if (index == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %s", what);
    int rc = resolve_names(m, list, what, index, m->d, &count, err);
    for (size_t c = 0; rc == SM_OK && c < count; c++)
        flags[index[c]] = true;
    sm_free(index);
    return rc;
}
