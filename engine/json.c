/* SPDX-License-Identifier: MIT */
#include "engine/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"

enum { MAX_DEPTH = 64 };

typedef struct parser {
    const char *text;
    size_t len, pos;
    sm_error *err;
} parser;

static int fail(parser *p, const char *what)
{
    return sm_error_set_at(p->err, SM_ERR_PARSE, "json", 1, (uint32_t)SM_MIN(p->pos + 1, (size_t)UINT32_MAX), NULL,
                           "%s at byte %zu", what, p->pos);
}

static void skip_space(parser *p)
{
    while (p->pos < p->len &&
           (p->text[p->pos] == ' ' || p->text[p->pos] == '\t' || p->text[p->pos] == '\n' || p->text[p->pos] == '\r'))
        p->pos++;
}

static bool literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos >= n && memcmp(p->text + p->pos, word, n) == 0) {
        p->pos += n;
        return true;
    }
    return false;
}

static int hex4(parser *p, uint32_t *out)
{
    if (p->len - p->pos < 4)
        return fail(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->text[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return fail(p, "bad hex digit in \\u escape");
    }
    *out = v;
    return SM_OK;
}

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string literal (p->pos at the opening quote) into a new buffer;
 * the output is never longer than the input. */
static int parse_string(parser *p, char **out)
{
    p->pos++;
    size_t start = p->pos, end = start;
    while (end < p->len && p->text[end] != '"')
        end += p->text[end] == '\\' ? 2 : 1;
    if (end >= p->len)
        return fail(p, "unterminated string");
    char *buf = sm_malloc(end - start + 1);
    if (buf == NULL)
        return sm_error_set(p->err, SM_ERR_NOMEM, "out of memory parsing JSON");
    size_t w = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->text[p->pos++];
        if (c < 0x20) {
            sm_free(buf);
            return fail(p, "control character in a string");
        }
        if (c != '\\') {
            buf[w++] = (char)c;
            continue;
        }
        char e = p->text[p->pos++];
        switch (e) {
        case '"': buf[w++] = '"'; break;
        case '\\': buf[w++] = '\\'; break;
        case '/': buf[w++] = '/'; break;
        case 'b': buf[w++] = '\b'; break;
        case 'f': buf[w++] = '\f'; break;
        case 'n': buf[w++] = '\n'; break;
        case 'r': buf[w++] = '\r'; break;
        case 't': buf[w++] = '\t'; break;
        case 'u': {
            uint32_t cp, low;
            if (hex4(p, &cp) != SM_OK) {
                sm_free(buf);
                return SM_ERR_PARSE;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p->pos + 6 > end || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u') {
                    sm_free(buf);
                    return fail(p, "unpaired surrogate");
                }
                p->pos += 2;
                if (hex4(p, &low) != SM_OK || low < 0xDC00 || low > 0xDFFF) {
                    sm_free(buf);
                    return fail(p, "unpaired surrogate");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                sm_free(buf);
                return fail(p, "unpaired surrogate");
            }
            w += put_utf8(buf + w, cp);
            break;
        }
        default:
            sm_free(buf);
            return fail(p, "bad escape in a string");
        }
    }
    p->pos = end + 1;
    buf[w] = '\0';
    *out = buf;
    return SM_OK;
}

static int parse_value(parser *p, sm_json *out, int depth);

static int append(parser *p, sm_json *container, size_t *cap, char *key, sm_json *value)
{
    if (container->n == *cap) {
        size_t new_cap = *cap ? *cap * 2 : 4;
        sm_json *items = sm_realloc_array(container->items, new_cap, sizeof *items);
        if (items == NULL)
            goto nomem;
        container->items = items;
        if (container->type == SM_JSON_OBJECT) {
            char **keys = sm_realloc_array(container->keys, new_cap, sizeof *keys);
            if (keys == NULL)
                goto nomem;
            container->keys = keys;
        }
        *cap = new_cap;
    }
    container->items[container->n] = *value;
    if (container->type == SM_JSON_OBJECT)
        container->keys[container->n] = key;
    container->n++;
    return SM_OK;
nomem:
    sm_free(key);
    sm_json_free(value);
    return sm_error_set(p->err, SM_ERR_NOMEM, "out of memory parsing JSON");
}

static int parse_container(parser *p, sm_json *out, int depth, bool object)
{
    out->type = object ? SM_JSON_OBJECT : SM_JSON_ARRAY;
    char close = object ? '}' : ']';
    size_t cap = 0;
    p->pos++;
    skip_space(p);
    if (p->pos < p->len && p->text[p->pos] == close) {
        p->pos++;
        return SM_OK;
    }
    for (;;) {
        char *key = NULL;
        skip_space(p);
        if (object) {
            if (p->pos >= p->len || p->text[p->pos] != '"')
                return fail(p, "expected a member name");
            int rc = parse_string(p, &key);
            if (rc != SM_OK)
                return rc;
            skip_space(p);
            if (p->pos >= p->len || p->text[p->pos] != ':') {
                sm_free(key);
                return fail(p, "expected ':'");
            }
            p->pos++;
        }
        sm_json value;
        int rc = parse_value(p, &value, depth + 1);
        if (rc != SM_OK) {
            sm_free(key);
            return rc;
        }
        rc = append(p, out, &cap, key, &value);
        if (rc != SM_OK)
            return rc;
        skip_space(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == close) {
            p->pos++;
            return SM_OK;
        }
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_number(parser *p, sm_json *out)
{
    size_t start = p->pos;
    if (p->pos < p->len && p->text[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len || p->text[p->pos] < '0' || p->text[p->pos] > '9')
        return fail(p, "expected a value");
    if (p->text[p->pos] == '0' && p->pos + 1 < p->len && p->text[p->pos + 1] >= '0' && p->text[p->pos + 1] <= '9')
        return fail(p, "leading zero in a number");
    while (p->pos < p->len && strchr("0123456789.eE+-", p->text[p->pos]) != NULL)
        p->pos++;
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf)
        return fail(p, "number too long");
    memcpy(buf, p->text + start, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    out->type = SM_JSON_NUMBER;
    out->number = strtod(buf, &end);
    if (*end != '\0')
        return fail(p, "malformed number");
    return SM_OK;
}

static int parse_value(parser *p, sm_json *out, int depth)
{
    memset(out, 0, sizeof *out);
    if (depth > MAX_DEPTH)
        return fail(p, "nesting deeper than 64 levels");
    skip_space(p);
    if (p->pos >= p->len)
        return fail(p, "unexpected end of input");
    char c = p->text[p->pos];
    int rc;
    if (c == '{' || c == '[') {
        rc = parse_container(p, out, depth, c == '{');
        if (rc != SM_OK)
            sm_json_free(out);
        return rc;
    }
    if (c == '"') {
        out->type = SM_JSON_STRING;
        return parse_string(p, &out->string);
    }
    if (literal(p, "true")) {
        out->type = SM_JSON_BOOL;
        out->boolean = true;
        return SM_OK;
    }
    if (literal(p, "false")) {
        out->type = SM_JSON_BOOL;
        return SM_OK;
    }
    if (literal(p, "null"))
        return SM_OK;
    return parse_number(p, out);
}

int sm_json_parse(const char *text, size_t len, sm_json *out, sm_error *err)
{
    parser p = {text, len, 0, err};
    int rc = parse_value(&p, out, 0);
    if (rc != SM_OK)
        return rc;
    skip_space(&p);
    if (p.pos != p.len) {
        sm_json_free(out);
        return fail(&p, "trailing characters after the value");
    }
    return SM_OK;
}

void sm_json_free(sm_json *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++) {
        sm_json_free(&v->items[i]);
        if (v->keys != NULL)
            sm_free(v->keys[i]);
    }
    sm_free(v->items);
    sm_free(v->keys);
    sm_free(v->string);
    memset(v, 0, sizeof *v);
}

const sm_json *sm_json_get(const sm_json *object, const char *key)
{
    if (object == NULL || object->type != SM_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < object->n; i++)
        if (strcmp(object->keys[i], key) == 0)
            return &object->items[i];
    return NULL;
}

double sm_json_get_number(const sm_json *object, const char *key, double fallback)
{
    const sm_json *v = sm_json_get(object, key);
    return v != NULL && v->type == SM_JSON_NUMBER ? v->number : fallback;
}

const char *sm_json_get_string(const sm_json *object, const char *key, const char *fallback)
{
    const sm_json *v = sm_json_get(object, key);
    return v != NULL && v->type == SM_JSON_STRING ? v->string : fallback;
}
