/* SPDX-License-Identifier: MIT */
/* RFM segment table files: parser (storage/csv.h) and writer. */
#include "engine/rfm_segments.h"

#include <string.h>
#include <strings.h>

#include "engine/output.h"
#include "kernels/core.h"
#include "storage/csv.h"

enum { C_NAME, C_RMIN, C_RMAX, C_FMIN, C_FMAX, C_MMIN, C_MMAX, N_COLS };
static const char *const column_names[N_COLS] = {"segment", "r_min", "r_max", "f_min",
                                                 "f_max",   "m_min", "m_max"};

void sm_rfm_segments_free(sm_rfm_segment_file *file)
{
    if (file == NULL)
        return;
    sm_free(file->rules);
    memset(file, 0, sizeof *file);
}

/* "1".."5" with optional blanks around. */
static bool parse_score(const char *text, uint8_t *out)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text < '0' || *text > '9')
        return false;
    unsigned v = 0;
    while (*text >= '0' && *text <= '9' && v < 100)
        v = v * 10 + (unsigned)(*text++ - '0');
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text != '\0')
        return false;
    *out = (uint8_t)(v > 255 ? 255 : v);
    return true;
}

int sm_rfm_segments_read(const char *path, sm_rfm_segment_file *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    sm_csv_reader *reader = NULL;
    int rc = sm_csv_open(path, NULL, &reader, err);
    if (rc != SM_OK)
        return rc;
    int col[N_COLS];
    for (int k = 0; k < N_COLS; k++)
        col[k] = -1;
    bool header = true;
    size_t n = 0, cap = 0, n_fields = 0;
    sm_rfm_segment_rule *rules = NULL;
    sm_csv_record rec;
    while ((rc = sm_csv_next_wellformed(reader, &rec, err)) == 1) {
        if (rec.fields[0][0] == '#')
            continue; /* a comment line */
        if (header) {
            header = false;
            n_fields = rec.n_fields;
            for (size_t j = 0; j < rec.n_fields; j++) {
                for (int k = 0; k < N_COLS; k++) {
                    if (strcasecmp(rec.fields[j], column_names[k]) != 0)
                        continue;
                    if (col[k] >= 0) {
                        rc = sm_error_set_at(err, SM_ERR_PARSE, path, rec.line, (uint32_t)j + 1,
                                             column_names[k], "column %s appears twice",
                                             column_names[k]);
                        goto fail;
                    }
                    col[k] = (int)j;
                }
            }
            for (int k = 0; k < N_COLS; k++)
                if (col[k] < 0) {
                    rc = sm_error_set_at(err, SM_ERR_PARSE, path, rec.line, 0, column_names[k],
                                         "the header names no %s column (expected segment, "
                                         "r_min, r_max, f_min, f_max, m_min, m_max)",
                                         column_names[k]);
                    goto fail;
                }
            continue;
        }
        if ((rc = sm_csv_check_width(reader, &rec, n_fields, err)) != SM_OK)
            goto fail;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            sm_rfm_segment_rule *bigger = sm_realloc_array(rules, cap, sizeof *rules);
            if (bigger == NULL) {
                rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory reading %s", path);
                goto fail;
            }
            rules = bigger;
        }
        sm_rfm_segment_rule *rule = &rules[n];
        memset(rule, 0, sizeof *rule);
        const char *name = rec.fields[col[C_NAME]];
        size_t len = rec.lengths[col[C_NAME]];
        if (len == 0 || len >= SM_RFM_SEGMENT_NAME_MAX || memchr(name, '\0', len) != NULL) {
            rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, rec.line, (uint32_t)col[C_NAME] + 1,
                                 "segment", "a segment name must be 1..%d bytes",
                                 SM_RFM_SEGMENT_NAME_MAX - 1);
            goto fail;
        }
        memcpy(rule->name, name, len);
        uint8_t *dest[N_COLS] = {NULL,          &rule->r_min, &rule->r_max, &rule->f_min,
                                 &rule->f_max, &rule->m_min, &rule->m_max};
        for (int k = C_RMIN; k < N_COLS; k++) {
            const char *text = rec.fields[col[k]];
            if (!parse_score(text, dest[k])) {
                rc = sm_error_set_at(err, SM_ERR_PARSE, path, rec.line, (uint32_t)col[k] + 1,
                                     column_names[k], "expected a score 1..5, got '%.20s'", text);
                goto fail;
            }
            if (*dest[k] < 1 || *dest[k] > 5) {
                rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, rec.line, (uint32_t)col[k] + 1,
                                     column_names[k], "score %u is outside 1..5", *dest[k]);
                goto fail;
            }
        }
        const uint8_t lo[3] = {rule->r_min, rule->f_min, rule->m_min};
        const uint8_t hi[3] = {rule->r_max, rule->f_max, rule->m_max};
        for (int k = 0; k < 3; k++)
            if (lo[k] > hi[k]) {
                int c = col[C_RMIN + 2 * k];
                rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, rec.line, (uint32_t)c + 1,
                                     column_names[C_RMIN + 2 * k], "min %u is above max %u", lo[k],
                                     hi[k]);
                goto fail;
            }
        n++;
    }
    if (rc < 0)
        goto fail;
    if (n == 0) {
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL, "holds no segment rules");
        goto fail;
    }
    out->rules = rules;
    out->table = (sm_rfm_segment_table){n, rules};
    rc = sm_rfm_segment_table_check(&out->table, err);
    if (rc != SM_OK) {
        sm_rfm_segments_free(out);
        sm_csv_close(reader);
        return rc;
    }
    sm_csv_close(reader);
    return SM_OK;
fail:
    sm_free(rules);
    sm_csv_close(reader);
    return rc;
}

void sm_rfm_segments_write(FILE *out, const sm_rfm_segment_table *table)
{
    fputs("# RFM segments: first matching rule wins; scores 1..5 (5 = best);\n"
          "# customers no rule matches are \"" SM_RFM_OTHER "\".\n"
          "segment,r_min,r_max,f_min,f_max,m_min,m_max\n",
          out);
    for (size_t k = 0; k < table->n_rules; k++) {
        const sm_rfm_segment_rule *r = &table->rules[k];
        sm_csv_put_text(out, r->name, ',');
        fprintf(out, ",%u,%u,%u,%u,%u,%u\n", r->r_min, r->r_max, r->f_min, r->f_max, r->m_min,
                r->m_max);
    }
}
