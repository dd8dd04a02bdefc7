/* SPDX-License-Identifier: MIT */
#include "engine/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/output.h"
#include "kernels/core.h"
#include "storage/fields.h"

static const sm_config_key *find_key(const sm_config_key *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

int sm_config_set(const sm_config_key *keys, size_t n_keys, void *config, const char *name, const char *value,
                  const char *origin, uint64_t line, sm_error *err)
{
    const sm_config_key *key = find_key(keys, n_keys, name);
    if (key == NULL)
        return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name, "unknown setting");
    char *field = (char *)config + key->offset;
    char *end = NULL;
    errno = 0;
    switch (key->type) {
    case SM_CONFIG_UINT_OR_AUTO:
        if (strcmp(value, "auto") == 0) {
            *(uint64_t *)field = 0;
            return SM_OK;
        }
        /* fall through */
    case SM_CONFIG_UINT: {
        if (value[0] == '-' || value[0] == '\0')
            goto bad_number;
        unsigned long long v = strtoull(value, &end, 10);
        if (*end != '\0' || errno == ERANGE)
            goto bad_number;
        if ((double)v < key->min || (double)v > key->max)
            return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name, "%s is outside [%g, %g]", value,
                                   key->min, key->max);
        *(uint64_t *)field = v;
        return SM_OK;
    }
    case SM_CONFIG_DOUBLE: {
        double v = strtod(value, &end);
        if (value[0] == '\0' || *end != '\0')
            goto bad_number;
        if (!isfinite(v))
            return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name, "'%s' is not a finite number", value);
        if (v < key->min || v > key->max)
            return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name, "%s is outside [%g, %g]", value,
                                   key->min, key->max);
        *(double *)field = v;
        return SM_OK;
    }
    case SM_CONFIG_BOOL:
        if (strcmp(value, "true") == 0)
            *(bool *)field = true;
        else if (strcmp(value, "false") == 0)
            *(bool *)field = false;
        else
            return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name, "expected true or false, got '%s'",
                                   value);
        return SM_OK;
    case SM_CONFIG_STRING:
        if (strchr(value, '"') != NULL)
            return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name, "quotes are not allowed inside a value");
        if (strlen(value) >= SM_CONFIG_STRING_MAX)
            return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name, "value longer than %d bytes",
                                   SM_CONFIG_STRING_MAX - 1);
        strcpy(field, value);
        return SM_OK;
    case SM_CONFIG_CHOICE: {
        char allowed[256] = "";
        for (int i = 0; key->choices[i] != NULL; i++) {
            if (strcmp(key->choices[i], value) == 0) {
                *(int *)field = i;
                return SM_OK;
            }
            snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s", i ? ", " : "",
                     key->choices[i]);
        }
        return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name, "'%s' is not one of: %s", value, allowed);
    }
    case SM_CONFIG_DATE:
        if (value[0] == '\0') {
            *(int64_t *)field = 0;
            return SM_OK;
        }
        if (sm_parse_time_iso(value, strlen(value), (int64_t *)field) != SM_FIELD_OK)
            return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name,
                                   "'%s' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)", value);
        return SM_OK;
    }
    return sm_error_set(err, SM_ERR_INVALID_ARG, "bad configuration descriptor for %s", name);
bad_number:
    return sm_error_set_at(err, SM_ERR_PARSE, origin, line, 0, name, "'%s' is not a valid %s", value,
                           key->type == SM_CONFIG_DOUBLE ? "number" : "non-negative integer");
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int sm_config_parse_file(const char *path, const sm_config_key *keys, size_t n_keys, void *config, sm_error *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int saved = errno;
        sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "cannot open the configuration: %s", strerror(saved));
        sm_error_set_cause(err, saved);
        return SM_ERR_IO;
    }
    bool *seen = sm_calloc(n_keys, sizeof *seen);
    if (seen == NULL) {
        fclose(f);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", path);
    }
    char section[128] = "", text[2048];
    uint64_t line = 0;
    int rc = SM_OK;
    while (rc == SM_OK && fgets(text, sizeof text, f) != NULL) {
        line++;
        size_t len = strlen(text);
        if (len == sizeof text - 1 && text[len - 1] != '\n') {
            rc = sm_error_set_at(err, SM_ERR_PARSE, path, line, 0, NULL, "line longer than %zu bytes", sizeof text - 2);
            break;
        }
        /* strip a comment that is not inside a quoted value */
        bool quoted = false;
        for (char *p = text; *p; p++) {
            if (*p == '"')
                quoted = !quoted;
            else if (*p == '#' && !quoted) {
                *p = '\0';
                break;
            }
        }
        char *body = trim(text);
        if (*body == '\0')
            continue;
        if (*body == '[') {
            char *close = strchr(body, ']');
            if (close == NULL || close[1] != '\0' || close == body + 1) {
                rc = sm_error_set_at(err, SM_ERR_PARSE, path, line, 0, NULL, "malformed section header '%s'", body);
                break;
            }
            *close = '\0';
            snprintf(section, sizeof section, "%s", trim(body + 1));
            continue;
        }
        char *equals = strchr(body, '=');
        if (equals == NULL) {
            rc = sm_error_set_at(err, SM_ERR_PARSE, path, line, 0, NULL, "expected 'key = value', got '%s'", body);
            break;
        }
        *equals = '\0';
        char *key = trim(body), *value = trim(equals + 1);
        char name[256];
        if (section[0] != '\0')
            snprintf(name, sizeof name, "%s.%s", section, key);
        else
            snprintf(name, sizeof name, "%s", key);
        size_t value_len = strlen(value);
        if (value_len >= 2 && value[0] == '"' && value[value_len - 1] == '"') {
            value[value_len - 1] = '\0';
            value++;
        } else if (strchr(value, '"') != NULL) {
            rc = sm_error_set_at(err, SM_ERR_PARSE, path, line, 0, name, "unbalanced quotes in the value");
            break;
        }
        const sm_config_key *descriptor = find_key(keys, n_keys, name);
        if (descriptor != NULL && seen[descriptor - keys]) {
            rc = sm_error_set_at(err, SM_ERR_PARSE, path, line, 0, name, "set twice in this file");
            break;
        }
        rc = sm_config_set(keys, n_keys, config, name, value, path, line, err);
        if (rc == SM_OK)
            seen[descriptor - keys] = true;
    }
    if (rc == SM_OK && ferror(f))
        rc = sm_error_set_at(err, SM_ERR_IO, path, line, 0, NULL, "read failed");
    sm_free(seen);
    fclose(f);
    return rc;
}

void sm_config_print(FILE *out, const sm_config_key *keys, size_t n_keys, const void *config)
{
    char current[128] = "";
    for (size_t i = 0; i < n_keys; i++) {
        const sm_config_key *key = &keys[i];
        const char *dot = strrchr(key->name, '.');
        char section[128] = "";
        if (dot != NULL)
            snprintf(section, sizeof section, "%.*s", (int)(dot - key->name), key->name);
        if (strcmp(section, current) != 0) {
            fprintf(out, "\n[%s]\n", section);
            snprintf(current, sizeof current, "%s", section);
        }
        const char *field = (const char *)config + key->offset;
        fprintf(out, "%s = ", dot ? dot + 1 : key->name);
        switch (key->type) {
        case SM_CONFIG_UINT_OR_AUTO:
            if (*(const uint64_t *)field == 0) {
                fputs("auto", out);
                break;
            }
            /* fall through */
        case SM_CONFIG_UINT: fprintf(out, "%" PRIu64, *(const uint64_t *)field); break;
        case SM_CONFIG_DOUBLE: sm_csv_put_double(out, *(const double *)field); break;
        case SM_CONFIG_BOOL: fputs(*(const bool *)field ? "true" : "false", out); break;
        case SM_CONFIG_STRING: fprintf(out, "\"%s\"", field); break;
        case SM_CONFIG_CHOICE: fputs(key->choices[*(const int *)field], out); break;
        case SM_CONFIG_DATE: {
            int64_t t = *(const int64_t *)field;
            if (t == 0) {
                fputs("\"\"", out);
            } else {
                char buf[32];
                sm_format_time_iso(t, buf);
                fputs(buf, out);
            }
            break;
        }
        }
        fprintf(out, "    # %s\n", key->help);
    }
}
