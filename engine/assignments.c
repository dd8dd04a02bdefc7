/* SPDX-License-Identifier: MIT */
/*
 * Assignment rows: the byte layout of the store's assignments values and the
 * CSV / JSON Lines renderings. Byte order is explicit (little-endian, IEEE
 * 754), so another program can read the table with liblmdb alone.
 */
#include "engine/assignments.h"

#include <math.h>
#include <string.h>

#include "engine/output.h"
#include "kernels/core.h"

const char *const sm_assignment_columns[] = {
    "customer_id", "segment",     "segment_name",   "distance",       "r_score",
    "f_score",     "m_score",     "rfm_code",       "rfm_segment",    "value_tier",
    "lifecycle",   "clv_historic", "clv_discounted", "clv_model",     "p_alive",
    "expected_purchases", "anomaly_score", "anomaly_flag", "cross_sell"};

const char *const sm_value_tier_names[3] = {"key", "ordinary", "small"};

void sm_assignment_clear(sm_assignment *a)
{
    memset(a, 0, sizeof *a);
    a->segment = SM_SEGMENT_NONE;
    a->distance = NAN;
    a->rfm_segment = a->value_tier = a->lifecycle = a->anomaly_flag = SM_INDEX_NONE;
    a->clv_historic = a->clv_discounted = a->clv_model = NAN;
    a->p_alive = a->expected_purchases = NAN;
    a->anomaly_score = NAN;
}

/* --- byte layout (storage/SCHEMA.md "assignments values") ------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_f32(unsigned char *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    put_u32(p, bits);
}

static float get_f32(const unsigned char *p)
{
    uint32_t bits = get_u32(p);
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

static void put_f64(unsigned char *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    put_u32(p, (uint32_t)bits);
    put_u32(p + 4, (uint32_t)(bits >> 32));
}

static double get_f64(const unsigned char *p)
{
    uint64_t bits = (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

void sm_assignment_encode(const sm_assignment *a, unsigned char out[SM_ASSIGNMENT_BYTES])
{
    memset(out, 0, SM_ASSIGNMENT_BYTES);
    put_u32(out + 0, a->segment);
    put_f32(out + 4, a->distance);
    out[8] = a->r_score;
    out[9] = a->f_score;
    out[10] = a->m_score;
    out[11] = a->rfm_segment;
    out[12] = a->value_tier;
    out[13] = a->lifecycle;
    out[14] = a->anomaly_flag;
    out[15] = a->n_cross_sell;
    put_f64(out + 16, a->clv_historic);
    put_f64(out + 24, a->clv_discounted);
    put_f64(out + 32, a->clv_model);
    put_f64(out + 40, a->p_alive);
    put_f64(out + 48, a->expected_purchases);
    put_f32(out + 56, a->anomaly_score);
    /* 60..63 reserved, zero */
    for (int i = 0; i < a->n_cross_sell && i < SM_CROSS_SELL_MAX; i++) {
        put_u32(out + 64 + 8 * i, a->cross_sell_item[i]);
        put_f32(out + 68 + 8 * i, a->cross_sell_score[i]);
    }
}

int sm_assignment_decode(const unsigned char in[SM_ASSIGNMENT_BYTES], sm_assignment *a, sm_error *err)
{
    sm_assignment_clear(a);
    a->segment = get_u32(in + 0);
    a->distance = get_f32(in + 4);
    a->r_score = in[8];
    a->f_score = in[9];
    a->m_score = in[10];
    a->rfm_segment = in[11];
    a->value_tier = in[12];
    a->lifecycle = in[13];
    a->anomaly_flag = in[14];
    a->n_cross_sell = in[15];
    a->clv_historic = get_f64(in + 16);
    a->clv_discounted = get_f64(in + 24);
    a->clv_model = get_f64(in + 32);
    a->p_alive = get_f64(in + 40);
    a->expected_purchases = get_f64(in + 48);
    a->anomaly_score = get_f32(in + 56);
    if (a->r_score > 5 || a->f_score > 5 || a->m_score > 5 ||
        (a->value_tier > SM_TIER_SMALL && a->value_tier != SM_INDEX_NONE) ||
        (a->anomaly_flag > 1 && a->anomaly_flag != SM_INDEX_NONE) || a->n_cross_sell > SM_CROSS_SELL_MAX ||
        in[60] | in[61] | in[62] | in[63])
        return sm_error_set(err, SM_ERR_STORAGE, "an assignment value is out of range (damaged store?)");
    for (int i = 0; i < a->n_cross_sell; i++) {
        a->cross_sell_item[i] = get_u32(in + 64 + 8 * i);
        a->cross_sell_score[i] = get_f32(in + 68 + 8 * i);
    }
    return SM_OK;
}

/* --- text renderings ------------------------------------------------------------- */

static const char *name_of(const char *const *names, uint32_t n, uint32_t index)
{
    return names != NULL && index < n ? names[index] : NULL;
}

void sm_assignment_csv_header(FILE *out)
{
    for (int i = 0; i < SM_ASSIGNMENT_COLUMNS; i++)
        fprintf(out, "%s%s", i ? "," : "", sm_assignment_columns[i]);
    fputc('\n', out);
}

static void csv_index(FILE *out, uint32_t value, uint32_t none)
{
    if (value != none)
        fprintf(out, "%" PRIu32, value);
}

static void csv_name(FILE *out, const char *name, uint32_t index, uint32_t none)
{
    if (name != NULL)
        sm_csv_put_text(out, name, ',');
    else
        csv_index(out, index, none);
}

void sm_assignment_csv_row(FILE *out, sm_customer_id customer, const sm_assignment *a,
                           const sm_assignment_names *names)
{
    const char *key = name_of(names->customer_keys, names->n_customers, customer);
    if (key != NULL)
        sm_csv_put_text(out, key, ',');
    else
        fprintf(out, "%" PRIu32, customer);
    fputc(',', out);
    csv_index(out, a->segment, SM_SEGMENT_NONE);
    fputc(',', out);
    if (a->segment != SM_SEGMENT_NONE)
        csv_name(out, name_of(names->segment_names, names->n_segments, a->segment), a->segment, SM_SEGMENT_NONE);
    fputc(',', out);
    sm_csv_put_float(out, a->distance);
    fputc(',', out);
    if (a->r_score)
        fprintf(out, "%u,%u,%u,%u%u%u", a->r_score, a->f_score, a->m_score, a->r_score, a->f_score, a->m_score);
    else
        fputs(",,,", out);
    fputc(',', out);
    if (a->rfm_segment != SM_INDEX_NONE)
        csv_name(out, name_of(names->rfm_segment_names, names->n_rfm_segments, a->rfm_segment), a->rfm_segment,
                 SM_INDEX_NONE);
    fputc(',', out);
    if (a->value_tier != SM_INDEX_NONE)
        fputs(sm_value_tier_names[a->value_tier], out);
    fputc(',', out);
    if (a->lifecycle != SM_INDEX_NONE)
        csv_name(out, name_of(names->lifecycle_names, names->n_lifecycle, a->lifecycle), a->lifecycle, SM_INDEX_NONE);
    const double values[] = {a->clv_historic, a->clv_discounted, a->clv_model, a->p_alive, a->expected_purchases};
    for (size_t i = 0; i < SM_ARRAY_LEN(values); i++) {
        fputc(',', out);
        sm_csv_put_double(out, values[i]);
    }
    fputc(',', out);
    sm_csv_put_float(out, a->anomaly_score);
    fputc(',', out);
    if (a->anomaly_flag != SM_INDEX_NONE)
        fprintf(out, "%u", a->anomaly_flag);
    fputc(',', out);
    /* item ids separated by ';' in one field, quoted if any id needs it */
    if (a->n_cross_sell > 0) {
        char list[SM_CROSS_SELL_MAX * 260];
        size_t used = 0;
        for (int i = 0; i < a->n_cross_sell; i++) {
            const char *item = name_of(names->item_keys, names->n_items, a->cross_sell_item[i]);
            if (item != NULL)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ";" : "", item);
            else
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%" PRIu32, i ? ";" : "",
                                         a->cross_sell_item[i]);
            if (used >= sizeof list)
                break;
        }
        sm_csv_put_text(out, list, ',');
    }
    fputc('\n', out);
}

static void json_name_or_null(FILE *out, const char *name, uint32_t index, bool present)
{
    if (!present)
        fputs("null", out);
    else if (name != NULL)
        sm_json_put_string(out, name);
    else
        fprintf(out, "\"%" PRIu32 "\"", index);
}

void sm_assignment_jsonl_row(FILE *out, sm_customer_id customer, const sm_assignment *a,
                             const sm_assignment_names *names)
{
    fputs("{\"customer_id\":", out);
    const char *key = name_of(names->customer_keys, names->n_customers, customer);
    if (key != NULL)
        sm_json_put_string(out, key);
    else
        fprintf(out, "\"%" PRIu32 "\"", customer);
    fputs(",\"segment\":", out);
    if (a->segment != SM_SEGMENT_NONE)
        fprintf(out, "%" PRIu32, a->segment);
    else
        fputs("null", out);
    fputs(",\"segment_name\":", out);
    json_name_or_null(out, name_of(names->segment_names, names->n_segments, a->segment), a->segment,
                      a->segment != SM_SEGMENT_NONE);
    fputs(",\"distance\":", out);
    sm_json_put_float(out, a->distance);
    if (a->r_score)
        fprintf(out, ",\"r_score\":%u,\"f_score\":%u,\"m_score\":%u,\"rfm_code\":\"%u%u%u\"", a->r_score, a->f_score,
                a->m_score, a->r_score, a->f_score, a->m_score);
    else
        fputs(",\"r_score\":null,\"f_score\":null,\"m_score\":null,\"rfm_code\":null", out);
    fputs(",\"rfm_segment\":", out);
    json_name_or_null(out, name_of(names->rfm_segment_names, names->n_rfm_segments, a->rfm_segment), a->rfm_segment,
                      a->rfm_segment != SM_INDEX_NONE);
    fputs(",\"value_tier\":", out);
    json_name_or_null(out, a->value_tier <= SM_TIER_SMALL ? sm_value_tier_names[a->value_tier] : NULL, a->value_tier,
                      a->value_tier != SM_INDEX_NONE);
    fputs(",\"lifecycle\":", out);
    json_name_or_null(out, name_of(names->lifecycle_names, names->n_lifecycle, a->lifecycle), a->lifecycle,
                      a->lifecycle != SM_INDEX_NONE);
    static const char *const number_keys[] = {"clv_historic", "clv_discounted", "clv_model", "p_alive",
                                             "expected_purchases"};
    const double values[] = {a->clv_historic, a->clv_discounted, a->clv_model, a->p_alive, a->expected_purchases};
    for (size_t i = 0; i < SM_ARRAY_LEN(values); i++) {
        fprintf(out, ",\"%s\":", number_keys[i]);
        sm_json_put_double(out, values[i]);
    }
    fputs(",\"anomaly_score\":", out);
    sm_json_put_float(out, a->anomaly_score);
    fputs(",\"anomaly_flag\":", out);
    if (a->anomaly_flag != SM_INDEX_NONE)
        fputs(a->anomaly_flag ? "true" : "false", out);
    else
        fputs("null", out);
    fputs(",\"cross_sell\":[", out);
    for (int i = 0; i < a->n_cross_sell; i++) {
        fputs(i ? ",{\"item\":" : "{\"item\":", out);
        const char *item = name_of(names->item_keys, names->n_items, a->cross_sell_item[i]);
        if (item != NULL)
            sm_json_put_string(out, item);
        else
            fprintf(out, "\"%" PRIu32 "\"", a->cross_sell_item[i]);
        fputs(",\"score\":", out);
        sm_json_put_float(out, a->cross_sell_score[i]);
        fputc('}', out);
    }
    fputs("]}\n", out);
}
