/* SPDX-License-Identifier: MIT */
/*
 * Streaming RFC 4180 reader. The input is read in 1 MiB chunks into one
 * buffer; a record is first delimited without modifying the buffer (so a
 * record that straddles a chunk boundary can be rescanned after a refill),
 * then its fields are unescaped and NUL-terminated in place. Lines without
 * a quote character take a fast path that finds the line end and the
 * delimiters in one pass of 16-byte compares.
 */
#include "storage/csv.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "kernels/core.h"

enum { CHUNK_BYTES = 1 << 20, MIN_BUFFER_BYTES = 4 << 20 };

struct sm_csv_reader {
    int fd;                 /* -1 when reading from memory */
    const char *memory;     /* memory input, caller-owned */
    size_t memory_len;
    size_t memory_pos;
    char *buf;
    size_t cap;             /* always > end, so a NUL fits after the last byte */
    size_t start;           /* first unconsumed byte */
    size_t end;             /* one past the last valid byte */
    bool eof;
    uint64_t buf_offset;    /* input offset of buf[0] */
    uint64_t line;          /* line number of buf[start] */
    uint64_t size;
    uint64_t blank_lines;
    sm_csv_options options;
    char *name;
    char **fields;
    size_t *lengths;
    size_t field_cap;
    char empty_field[1];    /* the one field of a skipped record */
};

void sm_csv_options_init(sm_csv_options *options)
{
    options->delimiter = ',';
    options->max_record_bytes = (size_t)1 << 20;
    options->general_scanner = false;
    options->on_read = NULL;
    options->on_read_user = NULL;
}

const char *sm_csv_problem_text(sm_csv_problem problem)
{
    switch (problem) {
    case SM_CSV_OK: return "ok";
    case SM_CSV_UNBALANCED_QUOTE: return "unbalanced quote: a quoted field is never closed";
    case SM_CSV_TEXT_AFTER_QUOTE: return "text after the closing quote of a field";
    case SM_CSV_TOO_LONG: return "record longer than the limit";
    }
    return "unknown problem";
}

/* --- input -------------------------------------------------------------------- */

/* Moves unconsumed bytes to the front, grows the buffer if it is full, and
 * appends up to one chunk. Returns SM_OK (eof set when nothing is left). */
static int fill(sm_csv_reader *r, sm_error *err)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->buf_offset += r->start;
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - r->end < CHUNK_BYTES + 1) {
        size_t new_cap;
        if (!sm_mul_size(r->cap, 2, &new_cap))
            return sm_error_set(err, SM_ERR_OVERFLOW, "%s: CSV buffer size overflow", r->name);
        char *bigger = sm_realloc_array(r->buf, new_cap, 1);
        if (bigger == NULL)
            return sm_error_set(err, SM_ERR_NOMEM, "%s: out of memory growing the CSV buffer to %zu bytes",
                                r->name, new_cap);
        r->buf = bigger;
        r->cap = new_cap;
    }
    size_t want = r->cap - r->end - 1;
    if (want > CHUNK_BYTES)
        want = CHUNK_BYTES;
    if (r->fd < 0) {
        size_t left = r->memory_len - r->memory_pos;
        size_t n = left < want ? left : want;
        memcpy(r->buf + r->end, r->memory + r->memory_pos, n);
        if (r->options.on_read != NULL && n > 0) {
            int rc = r->options.on_read(r->options.on_read_user, r->buf + r->end, n);
            if (rc != SM_OK)
                return rc;
        }
        r->memory_pos += n;
        r->end += n;
        r->eof = r->memory_pos == r->memory_len;
        return SM_OK;
    }
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, want);
        if (n > 0) {
            if (r->options.on_read != NULL) {
                int rc = r->options.on_read(r->options.on_read_user, r->buf + r->end, (size_t)n);
                if (rc != SM_OK)
                    return rc;
            }
            r->end += (size_t)n;
            return SM_OK;
        }
        if (n == 0) {
            r->eof = true;
            return SM_OK;
        }
        if (errno != EINTR) {
            int saved = errno;
            sm_error_set_at(err, SM_ERR_IO, r->name, 0, 0, NULL, "read failed: %s", strerror(saved));
            sm_error_set_cause(err, saved);
            return SM_ERR_IO;
        }
    }
}

static int check_byte_order_mark(sm_csv_reader *r, sm_error *err)
{
    int rc = fill(r, err);
    if (rc != SM_OK)
        return rc;
    const unsigned char *b = (const unsigned char *)r->buf;
    size_t n = r->end;
    if (n >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) || (b[0] == 0xFE && b[1] == 0xFF)))
        return sm_error_set_at(err, SM_ERR_PARSE, r->name, 1, 1, NULL,
                               "the file is UTF-16 encoded (byte-order mark %02X %02X); convert it to "
                               "UTF-8 first, e.g. iconv -f UTF-16 -t UTF-8",
                               b[0], b[1]);
    if (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
        r->start = 3;
    return SM_OK;
}

static int reader_create(const char *name, const sm_csv_options *options, sm_csv_reader **out,
                         sm_error *err)
{
    *out = NULL;
    sm_csv_reader *r = sm_calloc(1, sizeof *r);
    if (r == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory opening %s", name);
    r->fd = -1;
    if (options != NULL)
        r->options = *options;
    else
        sm_csv_options_init(&r->options);
    if (r->options.max_record_bytes == 0)
        r->options.max_record_bytes = (size_t)1 << 20;
    r->cap = MIN_BUFFER_BYTES;
    if (r->options.max_record_bytes < SIZE_MAX / 4 && 2 * r->options.max_record_bytes + CHUNK_BYTES > r->cap)
        r->cap = 2 * r->options.max_record_bytes + CHUNK_BYTES;
    r->buf = sm_malloc(r->cap);
    r->name = sm_strdup(name);
    r->field_cap = 16;
    r->fields = sm_alloc_array(r->field_cap, sizeof *r->fields);
    r->lengths = sm_alloc_array(r->field_cap, sizeof *r->lengths);
    r->line = 1;
    if (r->buf == NULL || r->name == NULL || r->fields == NULL || r->lengths == NULL) {
        sm_csv_close(r);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory opening %s", name);
    }
    *out = r;
    return SM_OK;
}

int sm_csv_open(const char *path, const sm_csv_options *options, sm_csv_reader **out, sm_error *err)
{
    sm_csv_reader *r;
    int rc = reader_create(path, options, &r, err);
    if (rc != SM_OK)
        return rc;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int saved = errno;
        sm_csv_close(r);
        *out = NULL;
        sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "cannot open: %s", strerror(saved));
        sm_error_set_cause(err, saved);
        return SM_ERR_IO;
    }
    struct stat st;
    if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode))
        r->size = (uint64_t)st.st_size;
    else if (fstat(r->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        sm_csv_close(r);
        return sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "is a directory, not a file");
    }
    rc = check_byte_order_mark(r, err);
    if (rc != SM_OK) {
        sm_csv_close(r);
        return rc;
    }
    *out = r;
    return SM_OK;
}

int sm_csv_open_memory(const void *data, size_t len, const char *name, const sm_csv_options *options,
                       sm_csv_reader **out, sm_error *err)
{
    sm_csv_reader *r;
    int rc = reader_create(name, options, &r, err);
    if (rc != SM_OK)
        return rc;
    r->memory = data;
    r->memory_len = len;
    r->size = len;
    rc = check_byte_order_mark(r, err);
    if (rc != SM_OK) {
        sm_csv_close(r);
        return rc;
    }
    *out = r;
    return SM_OK;
}

int sm_csv_seek(sm_csv_reader *r, uint64_t offset, uint64_t line, sm_error *err)
{
    if (r->options.on_read != NULL)
        return sm_error_set_at(err, SM_ERR_INVALID_STATE, r->name, 0, 0, NULL,
                               "cannot skip bytes while every byte read is being passed on");
    if (offset > r->size && r->size > 0)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, r->name, 0, 0, NULL,
                               "cannot resume at byte %" PRIu64 ": the file has only %" PRIu64 " bytes",
                               offset, r->size);
    if (r->fd >= 0) {
        if (lseek(r->fd, (off_t)offset, SEEK_SET) < 0) {
            int saved = errno;
            sm_error_set_at(err, SM_ERR_IO, r->name, 0, 0, NULL, "seek failed: %s", strerror(saved));
            sm_error_set_cause(err, saved);
            return SM_ERR_IO;
        }
    } else {
        r->memory_pos = (size_t)offset;
    }
    r->start = r->end = 0;
    r->buf_offset = offset;
    r->eof = false;
    r->line = line;
    return SM_OK;
}

void sm_csv_close(sm_csv_reader *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    sm_free(r->buf);
    sm_free(r->name);
    sm_free(r->fields);
    sm_free(r->lengths);
    sm_free(r);
}

const char *sm_csv_name(const sm_csv_reader *r)
{
    return r->name;
}

uint64_t sm_csv_bytes_consumed(const sm_csv_reader *r)
{
    return r->buf_offset + r->start;
}

uint64_t sm_csv_size(const sm_csv_reader *r)
{
    return r->size;
}

uint64_t sm_csv_blank_lines(const sm_csv_reader *r)
{
    return r->blank_lines;
}

/* --- delimiting a record ----------------------------------------------------- */

typedef enum scan_status { SCAN_COMPLETE, SCAN_NEED_MORE, SCAN_TOO_LONG } scan_status;

typedef struct scan_result {
    size_t content_end;     /* end of the record's text, line end excluded */
    size_t next;            /* first byte of the next record */
    uint64_t newlines;      /* line ends inside the record (quoted newlines) plus its own */
    bool has_quote;         /* the slow path must unescape */
    sm_csv_problem problem;
    uint32_t problem_column;
    size_t first_newline;   /* first '\n' after the record start, or SIZE_MAX */
} scan_result;

static scan_status scan_record(const sm_csv_reader *r, size_t p, scan_result *out)
{
    const char *buf = r->buf;
    const size_t end = r->end;
    const char delim = r->options.delimiter;
    const size_t limit = r->options.max_record_bytes;
    memset(out, 0, sizeof *out);
    out->first_newline = SIZE_MAX;

    /* Fast path: a complete line without any quote character. */
    const char *nl = memchr(buf + p, '\n', end - p);
    if (nl != NULL) {
        size_t line_end = (size_t)(nl - buf);
        out->first_newline = line_end;
        if (line_end - p <= limit && memchr(buf + p, '"', line_end - p) == NULL) {
            out->content_end = line_end > p && buf[line_end - 1] == '\r' ? line_end - 1 : line_end;
            out->next = line_end + 1;
            out->newlines = 1;
            return SCAN_COMPLETE;
        }
    }

    bool in_quotes = false, field_start = true, after_quote = false;
    uint32_t column = 1;
    size_t i = p;
    while (i < end) {
        if (i - p > limit)
            return SCAN_TOO_LONG;
        char c = buf[i];
        if (in_quotes) {
            if (c == '"') {
                if (i + 1 >= end && !r->eof)
                    return SCAN_NEED_MORE;
                if (i + 1 < end && buf[i + 1] == '"') {
                    i += 2;
                    continue;
                }
                in_quotes = false;
                after_quote = true;
            } else if (c == '\n') {
                out->newlines++;
            }
            i++;
            continue;
        }
        if (c == delim) {
            column++;
            field_start = true;
            after_quote = false;
        } else if (c == '\n') {
            out->content_end = i > p && buf[i - 1] == '\r' ? i - 1 : i;
            out->next = i + 1;
            out->newlines++;
            return SCAN_COMPLETE;
        } else if (c == '"' && field_start) {
            in_quotes = true;
            out->has_quote = true;
            field_start = false;
        } else {
            if (after_quote && c != '\r' && out->problem == SM_CSV_OK) {
                out->problem = SM_CSV_TEXT_AFTER_QUOTE;
                out->problem_column = column;
            }
            field_start = false;
        }
        i++;
    }
    if (!r->eof)
        return SCAN_NEED_MORE;
    if (in_quotes) {
        out->problem = SM_CSV_UNBALANCED_QUOTE;
        out->problem_column = column;
    }
    out->content_end = end > p && buf[end - 1] == '\r' && !in_quotes ? end - 1 : end;
    out->next = end;
    out->newlines++;
    return SCAN_COMPLETE;
}

/* --- splitting fields in place --------------------------------------------- */

static int add_field(sm_csv_reader *r, size_t index, char *start, size_t len, sm_error *err)
{
    if (index == r->field_cap) {
        size_t cap = r->field_cap * 2;
        char **fields = sm_realloc_array(r->fields, cap, sizeof *fields);
        if (fields == NULL)
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory splitting a record of %s", r->name);
        r->fields = fields;
        size_t *lengths = sm_realloc_array(r->lengths, cap, sizeof *lengths);
        if (lengths == NULL)
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory splitting a record of %s", r->name);
        r->lengths = lengths;
        r->field_cap = cap;
    }
    r->fields[index] = start;
    r->lengths[index] = len;
    return SM_OK;
}

/* Splits [p, content_end) into fields; with `unescape`, quoted fields lose
 * their quotes and doubled quotes become one. Returns the field count or a
 * negative status. The byte at content_end may be overwritten with NUL: it is
 * the line end, or the spare byte past the data. */
static int split_fields(sm_csv_reader *r, size_t p, size_t content_end, bool unescape, sm_error *err)
{
    char *buf = r->buf;
    const char delim = r->options.delimiter;
    size_t count = 0, i = p;
    for (;;) {
        size_t w = i, field_begin = i;
        if (unescape && i < content_end && buf[i] == '"') {
            i++;
            while (i < content_end) {
                if (buf[i] == '"') {
                    if (i + 1 < content_end && buf[i + 1] == '"') {
                        buf[w++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                buf[w++] = buf[i++];
            }
        }
        while (i < content_end && buf[i] != delim)
            buf[w++] = buf[i++];
        bool more = i < content_end;
        buf[w] = '\0';
        int rc = add_field(r, count++, buf + field_begin, w - field_begin, err);
        if (rc != SM_OK)
            return rc;
        if (!more)
            return (int)SM_MIN(count, (size_t)INT32_MAX);
        i++;
    }
}

/* A record over the limit is either one enormous physical line or a quoted
 * field that never closes; both resynchronise after the first line end
 * following the record's start, so one bad line never swallows the file. */
static int skip_too_long(sm_csv_reader *r, sm_csv_record *rec, sm_error *err)
{
    for (;;) {
        const char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl != NULL) {
            r->start = (size_t)(nl - r->buf) + 1;
            break;
        }
        r->start = r->end;
        if (r->eof)
            break;
        int rc = fill(r, err);
        if (rc != SM_OK)
            return rc;
    }
    r->line += 1;
    r->fields[0] = r->empty_field;
    r->lengths[0] = 0;
    rec->n_fields = 1;
    rec->fields = r->fields;
    rec->lengths = r->lengths;
    rec->problem = SM_CSV_TOO_LONG;
    rec->problem_column = 1;
    rec->end_offset = r->buf_offset + r->start;
    return 1;
}

/* --- the fast path: a plain line ------------------------------------------- */

/* Bit masks of the bytes equal to newline, quote, NUL and the delimiter in
 * buf[i, i + n), n <= 16: sixteen at once with SSE2, else one by one. */
typedef struct byte_classes {
    uint32_t newline, quote, nul, delim;
} byte_classes;

static byte_classes classify(const char *buf, size_t i, size_t n, char delim)
{
    byte_classes c = {0, 0, 0, 0};
#ifdef __SSE2__
    if (n == 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + i));
        c.newline = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
        c.quote = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
        c.nul = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()));
        c.delim = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(delim)));
        return c;
    }
#endif
    for (size_t k = 0; k < n; k++) {
        char b = buf[i + k];
        c.newline |= (uint32_t)(b == '\n') << k;
        c.quote |= (uint32_t)(b == '"') << k;
        c.nul |= (uint32_t)(b == '\0') << k;
        c.delim |= (uint32_t)(b == delim) << k;
    }
    return c;
}

/* Most records are one line without a quote. This finds such a line's end
 * and its delimiters in one pass, sixteen bytes at a time, and splits it in
 * place: what the general scanner and splitter below do in three passes
 * and a byte loop. Anything else (a quote, a blank line, no line end in the
 * buffer yet, an over-long line, more fields than there is room for) is
 * left to them: false, with nothing changed. */
static bool split_plain_line(sm_csv_reader *r, sm_csv_record *rec)
{
    char *buf = r->buf;
    const size_t p = r->start, end = r->end;
    const char delim = r->options.delimiter;
    size_t n_fields = 0, field_begin = p, i = p, line_end;
    bool has_nul = false;
    for (;;) {
        size_t n = SM_MIN(end - i, (size_t)16);
        if (n == 0 || i - p > r->options.max_record_bytes)
            return false;
        byte_classes c = classify(buf, i, n, delim);
        uint32_t before_newline = c.newline ? (c.newline & -c.newline) - 1 : UINT32_MAX;
        if (c.quote & before_newline)
            return false;
        has_nul |= (c.nul & before_newline) != 0;
        for (uint32_t d = c.delim & before_newline; d != 0; d &= d - 1) {
            if (n_fields + 1 >= r->field_cap)
                return false;
            size_t at = i + (size_t)__builtin_ctz(d);
            r->fields[n_fields] = buf + field_begin;
            r->lengths[n_fields++] = at - field_begin;
            field_begin = at + 1;
        }
        if (c.newline) {
            line_end = i + (size_t)__builtin_ctz(c.newline);
            break;
        }
        i += n;
    }
    size_t content_end = line_end > p && buf[line_end - 1] == '\r' ? line_end - 1 : line_end;
    if (content_end == p || line_end - p > r->options.max_record_bytes || field_begin > content_end)
        return false; /* blank, too long, or a delimiter right before the \r of CRLF (rare) */
    r->fields[n_fields] = buf + field_begin;
    r->lengths[n_fields++] = content_end - field_begin;
    for (size_t f = 0; f < n_fields; f++)
        r->fields[f][r->lengths[f]] = '\0';
    memset(rec, 0, sizeof *rec);
    rec->line = r->line;
    rec->offset = r->buf_offset + p;
    rec->n_fields = n_fields;
    rec->fields = r->fields;
    rec->lengths = r->lengths;
    rec->has_nul = has_nul;
    r->line += 1;
    r->start = line_end + 1;
    rec->end_offset = r->buf_offset + r->start;
    return true;
}

int sm_csv_next(sm_csv_reader *r, sm_csv_record *rec, sm_error *err)
{
    for (;;) {
        if (r->start < r->end && !r->options.general_scanner && split_plain_line(r, rec))
            return 1;
        if (r->start == r->end) {
            if (r->eof)
                return 0;
            int rc = fill(r, err);
            if (rc != SM_OK)
                return rc;
            continue;
        }
        scan_result scan;
        scan_status status = scan_record(r, r->start, &scan);
        if (status == SCAN_NEED_MORE) {
            int rc = fill(r, err);
            if (rc != SM_OK)
                return rc;
            continue;
        }
        memset(rec, 0, sizeof *rec);
        rec->line = r->line;
        rec->offset = r->buf_offset + r->start;
        if (status == SCAN_TOO_LONG)
            return skip_too_long(r, rec, err);
        if (scan.problem == SM_CSV_UNBALANCED_QUOTE && scan.first_newline != SIZE_MAX) {
            /* Lose one physical line, not the rest of the file. */
            scan.content_end = scan.first_newline;
            scan.next = scan.first_newline + 1;
            scan.newlines = 1;
        }
        if (scan.content_end == r->start && scan.problem == SM_CSV_OK) {
            r->blank_lines++;
            r->line += scan.newlines;
            r->start = scan.next;
            continue;
        }
        rec->has_nul = memchr(r->buf + r->start, '\0', scan.content_end - r->start) != NULL;
        int n = split_fields(r, r->start, scan.content_end, scan.has_quote, err);
        if (n < 0)
            return n;
        rec->n_fields = (size_t)n;
        rec->fields = r->fields;
        rec->lengths = r->lengths;
        rec->problem = scan.problem;
        rec->problem_column = scan.problem_column;
        r->line += scan.newlines;
        r->start = scan.next;
        rec->end_offset = r->buf_offset + r->start;
        return 1;
    }
}

int sm_csv_check_width(const sm_csv_reader *r, const sm_csv_record *rec, size_t n_fields, sm_error *err)
{
    if (rec->n_fields == n_fields)
        return SM_OK;
    return sm_error_set_at(err, SM_ERR_PARSE, sm_csv_name(r), rec->line, 0, NULL,
                           "expected %zu fields (as in the header), found %zu", n_fields, rec->n_fields);
}

int sm_csv_next_wellformed(sm_csv_reader *r, sm_csv_record *rec, sm_error *err)
{
    int rc = sm_csv_next(r, rec, err);
    if (rc == 1 && rec->problem != SM_CSV_OK)
        return sm_error_set_at(err, SM_ERR_PARSE, sm_csv_name(r), rec->line, rec->problem_column, NULL,
                               "%s", sm_csv_problem_text(rec->problem));
    return rc;
}

/* --- UTF-8 ---------------------------------------------------------------------- */

bool sm_utf8_valid(const char *text, size_t len, size_t *bad_offset)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t min, cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1, min = 0x80, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2, min = 0x800, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3, min = 0x10000, cp = c & 0x07;
        } else {
            goto invalid;
        }
        if (len - i <= need)
            goto invalid;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                goto invalid;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto invalid;
        i += need + 1;
    }
    return true;
invalid:
    if (bad_offset != NULL)
        *bad_offset = i;
    return false;
}
