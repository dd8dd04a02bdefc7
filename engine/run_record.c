/* SPDX-License-Identifier: MIT */
#include "engine/run_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/output.h"
#include "kernels/core.h"
#include "storage/fields.h"

static void put_time_or_null(FILE *f, int64_t t)
{
    if (t == 0) {
        fputs("null", f);
        return;
    }
    char buf[32];
    sm_format_time_iso(t, buf);
    sm_json_put_string(f, buf);
}

static void put_names(FILE *f, const char *const *names, uint32_t n)
{
    fputc('[', f);
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        sm_json_put_string(f, names[i]);
    }
    fputc(']', f);
}

static void put_vector(FILE *f, const double *v, uint32_t n)
{
    if (v == NULL) {
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        sm_json_put_double(f, v[i]);
    }
    fputc(']', f);
}

static void put_pairs(FILE *f, const sm_run_pair *pairs, uint32_t n)
{
    fputc('{', f);
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        sm_json_put_string(f, pairs[i].name);
        fputc(':', f);
        sm_json_put_double(f, pairs[i].value);
    }
    fputc('}', f);
}

int sm_run_record_render(const sm_run_description *run, char **json, size_t *len, sm_error *err)
{
    *json = NULL;
    *len = 0;
    FILE *f = open_memstream(json, len);
    if (f == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory rendering a run record");
    fputs("{\"kind\":", f);
    sm_json_put_string(f, run->kind);
    fputs(",\"segmint_version\":", f);
    sm_json_put_string(f, SEGMINT_VERSION_STRING);
    fputs(",\"started\":", f);
    put_time_or_null(f, run->started);
    fputs(",\"finished\":", f);
    put_time_or_null(f, run->finished);
    fputs(",\"as_of\":", f);
    put_time_or_null(f, run->as_of);
    fputs(",\"config\":", f);
    if (run->config != NULL)
        sm_json_put_string(f, run->config);
    else
        fputs("null", f);
    fputs(",\"features\":", f);
    put_names(f, run->features, run->n_features);
    fputs(",\"segments\":[", f);
    for (uint32_t s = 0; s < run->n_segments; s++) {
        const sm_run_segment *seg = &run->segments[s];
        fprintf(f, "%s{\"id\":%" PRIu32 ",\"name\":", s ? "," : "", s);
        sm_json_put_string(f, seg->name ? seg->name : "");
        fprintf(f, ",\"size\":%" PRIu64 ",\"centre\":", seg->size);
        put_vector(f, seg->centre, run->n_features);
        fputs(",\"centre_original\":", f);
        put_vector(f, seg->centre_original, run->n_features);
        fputc('}', f);
    }
    fputs("],\"rfm_segments\":", f);
    put_names(f, run->rfm_segments, run->n_rfm_segments);
    fputs(",\"lifecycle\":", f);
    put_names(f, run->lifecycle, run->n_lifecycle);
    fputs(",\"value_tiers\":", f);
    put_names(f, sm_value_tier_names, 3);
    fputs(",\"counts\":", f);
    put_pairs(f, run->counts, run->n_counts);
    fputs(",\"timings\":", f);
    put_pairs(f, run->timings, run->n_timings);
    fputs(",\"details\":", f);
    fputs(run->details_json != NULL ? run->details_json : "{}", f);
    fputs("}", f);
    if (fclose(f) != 0 || *json == NULL) {
        free(*json);
        *json = NULL;
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory rendering a run record");
    }
    /* The details are the caller's JSON: make sure the whole record parses. */
    sm_json check;
    int rc = sm_json_parse(*json, *len, &check, err);
    if (rc != SM_OK) {
        free(*json);
        *json = NULL;
        return sm_error_set(err, SM_ERR_INVALID_ARG, "the run record is not valid JSON (details?)");
    }
    sm_json_free(&check);
    return SM_OK;
}

int sm_run_store(sm_store *store, const sm_run_description *run, const sm_customer_id *customers,
                 const sm_assignment *rows, uint64_t n, uint64_t *run_id, sm_error *err)
{
    char *json;
    size_t len;
    int rc = sm_run_record_render(run, &json, &len, err);
    if (rc != SM_OK)
        return rc;
    unsigned char *values = sm_alloc_array(n ? n : 1, SM_ASSIGNMENT_BYTES);
    if (values == NULL) {
        free(json);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for %" PRIu64 " assignment rows", n);
    }
    for (uint64_t i = 0; i < n; i++)
        sm_assignment_encode(&rows[i], values + i * SM_ASSIGNMENT_BYTES);
    rc = sm_store_run_write(store, json, len, customers, values, SM_ASSIGNMENT_BYTES, n, run_id, err);
    sm_free(values);
    free(json);
    return rc;
}

/* Pointers to the "name" strings of an array of objects, or to the strings
 * of an array of strings. */
static int collect_names(const sm_json *array, bool objects, const char ***out, uint32_t *n, sm_error *err)
{
    *out = NULL;
    *n = 0;
    if (array == NULL || array->type != SM_JSON_ARRAY || array->n == 0)
        return SM_OK;
    const char **names = sm_calloc(array->n, sizeof *names);
    if (names == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory reading a run record");
    for (size_t i = 0; i < array->n; i++) {
        const sm_json *item = &array->items[i];
        const char *name = objects ? sm_json_get_string(item, "name", NULL)
                                   : (item->type == SM_JSON_STRING ? item->string : NULL);
        names[i] = name != NULL ? name : "";
    }
    *out = names;
    *n = (uint32_t)array->n;
    return SM_OK;
}

void sm_run_loaded_free(sm_run_loaded *run)
{
    sm_json_free(&run->record);
    sm_free(run->info.record);
    sm_free(run->segment_names);
    sm_free(run->rfm_segment_names);
    sm_free(run->lifecycle_names);
    memset(run, 0, sizeof *run);
}

int sm_run_load(sm_store *store, uint64_t run_id, sm_run_loaded *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    sm_run_info *runs = NULL;
    size_t n = 0;
    int rc = sm_store_runs_list(store, &runs, &n, err);
    if (rc != SM_OK)
        return rc;
    const sm_run_info *found = NULL;
    for (size_t i = 0; i < n; i++)
        if ((run_id == 0 && (found == NULL || runs[i].id > found->id)) || runs[i].id == run_id)
            found = &runs[i];
    if (found == NULL) {
        sm_run_info_free(runs, n);
        if (run_id == 0)
            return sm_error_set_at(err, SM_ERR_NOT_FOUND, sm_store_path(store), 0, 0, NULL, "the store holds no runs");
        return sm_error_set_at(err, SM_ERR_NOT_FOUND, sm_store_path(store), 0, 0, NULL,
                               "no run %" PRIu64 " (segmint runs lists them)", run_id);
    }
    out->info = *found;
    out->info.record = sm_malloc(found->record_len + 1);
    if (out->info.record == NULL) {
        sm_run_info_free(runs, n);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory reading run %" PRIu64, found->id);
    }
    memcpy(out->info.record, found->record, found->record_len + 1);
    sm_run_info_free(runs, n);

    rc = sm_json_parse(out->info.record, out->info.record_len, &out->record, err);
    if (rc == SM_ERR_NOMEM) {
        sm_run_loaded_free(out);
        return rc;
    }
    if (rc != SM_OK || out->record.type != SM_JSON_OBJECT || sm_json_get_string(&out->record, "kind", NULL) == NULL) {
        uint64_t id = out->info.id;
        sm_run_loaded_free(out);
        return sm_error_set_at(err, SM_ERR_STORAGE, sm_store_path(store), 0, 0, NULL,
                               "run %" PRIu64 " has a record that is not a segmint run record", id);
    }
    if ((rc = collect_names(sm_json_get(&out->record, "segments"), true, &out->segment_names, &out->n_segments,
                            err)) != SM_OK ||
        (rc = collect_names(sm_json_get(&out->record, "rfm_segments"), false, &out->rfm_segment_names,
                            &out->n_rfm_segments, err)) != SM_OK ||
        (rc = collect_names(sm_json_get(&out->record, "lifecycle"), false, &out->lifecycle_names, &out->n_lifecycle,
                            err)) != SM_OK) {
        sm_run_loaded_free(out);
        return rc;
    }
    return SM_OK;
}
