/* SPDX-License-Identifier: MIT */
/* Fuzz target for opening an untrusted store (S4/F6): the input is data.mdb.
 * Opened read-only with SM_STORE_VERIFY, then every loader runs; each must
 * succeed or refuse cleanly, never read out of bounds or crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "segmint/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/tmp/segmint-fuzz-store-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 0;
    char path[512], lock[512];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    snprintf(lock, sizeof lock, "%s/lock.mdb", dir);
    FILE *f = fopen(path, "wb");
    if (f != NULL && fwrite(data, 1, size, f) == size && fclose(f) == 0) {
        sm_store *store;
        if (sm_store_open(dir, SM_STORE_READ_ONLY | SM_STORE_VERIFY, &store, NULL) == SM_OK) {
            sm_store_info info;
            sm_tx_table t;
            sm_basket_table b;
            sm_key_table k;
            sm_store_source *src;
            size_t n;
            char **names;
            sm_run_info *runs;
            (void)sm_store_get_info(store, &info, NULL);
            if (sm_store_load_tx(store, &t, NULL, NULL) == SM_OK)
                sm_tx_table_free(&t);
            if (sm_store_load_baskets(store, SM_BASKETS_EXCLUDE_RETURNS, &b, NULL, NULL) == SM_OK)
                sm_basket_table_free(&b);
            for (int kind = SM_KEYS_CUSTOMERS; kind <= SM_KEYS_BASKETS; kind++)
                if (sm_store_load_keys(store, (sm_key_kind)kind, &k, NULL) == SM_OK)
                    sm_key_table_free(&k);
            if (sm_store_sources(store, &src, &n, NULL) == SM_OK)
                sm_store_sources_free(src, n);
            if (sm_store_features_list(store, &names, &n, NULL) == SM_OK) {
                for (size_t i = 0; i < n; i++) {
                    sm_feature_matrix m;
                    if (sm_store_features_get(store, names[i], &m, NULL) == SM_OK)
                        sm_feature_matrix_free(&m);
                }
                sm_store_names_free(names, n);
            }
            if (sm_store_runs_list(store, &runs, &n, NULL) == SM_OK) {
                for (size_t i = 0; i < n; i++) {
                    sm_assignments a;
                    if (sm_store_run_assignments(store, runs[i].id, &a, NULL) == SM_OK)
                        sm_assignments_free(&a);
                }
                sm_run_info_free(runs, n);
            }
            sm_store_close(store);
        }
    } else if (f != NULL) {
        fclose(f);
    }
    unlink(path);
    unlink(lock);
    rmdir(dir);
    return 0;
}
