/* SPDX-License-Identifier: MIT */
/* Fuzz target for the importers: the first byte picks the format (and
 * --strict), the rest is the input file. Any input must be imported or
 * refused without crashing or leaking, rows read must equal rows stored plus
 * rows rejected, and the store must load back consistently. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "segmint/store.h"

static void remove_all(const char *dir)
{
    char path[512];
    static const char *const names[] = {"store/data.mdb", "store/lock.mdb", "store/rejects-0001.txt", "in.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/store", dir);
    rmdir(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char dir[] = "/tmp/segmint-fuzz-import-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 0;
    char input[512];
    snprintf(input, sizeof input, "%s/in.txt", dir);
    FILE *f = fopen(input, "wb");
    if (f == NULL || fwrite(data + 1, 1, size - 1, f) != size - 1) {
        if (f != NULL)
            fclose(f);
        remove_all(dir);
        return 0;
    }
    fclose(f);
    sm_store *store;
    char store_dir[512];
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    if (sm_store_open(store_dir, SM_STORE_CREATE, &store, NULL) != SM_OK) {
        remove_all(dir);
        return 0;
    }
    sm_import_options o;
    sm_import_options_init(&o);
    o.format = (sm_import_format)(data[0] % 5);
    o.strict = (data[0] & 0x08) != 0;
    o.now = 1800000000;
    o.memory_budget = (data[0] & 0x10) ? 4096 : 0; /* reach the spilled-run path too */
    const char *paths[1] = {input};
    sm_import_result r;
    if (sm_store_import(store, paths, 1, &o, &r, NULL) == SM_OK) {
        if (r.rows_read != r.rows_stored + r.rejected)
            __builtin_trap();
        sm_store_info info;
        sm_tx_table t;
        sm_basket_table b;
        if (sm_store_get_info(store, &info, NULL) != SM_OK || info.rows != r.rows_stored)
            __builtin_trap();
        if (sm_store_load_tx(store, &t, NULL, NULL) != SM_OK || t.n_rows != info.tx_rows)
            __builtin_trap();
        sm_tx_table_free(&t);
        if (sm_store_load_baskets(store, 0, &b, NULL, NULL) != SM_OK || b.csr.n_rows != info.baskets)
            __builtin_trap();
        sm_basket_table_free(&b);
    }
    sm_store_close(store);
    remove_all(dir);
    return 0;
}
