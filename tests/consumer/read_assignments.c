/* SPDX-License-Identifier: MIT */
/*
 * A CRM system's view of a segmint store: reads the latest run's assignments
 * with nothing but liblmdb and the layout in storage/SCHEMA.md, and prints
 * customer_id,segment,value_tier,clv_historic for each customer.
 *
 *   cc read_assignments.c $(pkg-config --cflags --libs lmdb)
 *   ./a.out STORE_DIR
 */
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint32_t get_u32_le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static double get_f64_le(const unsigned char *p)
{
    uint64_t bits = (uint64_t)get_u32_le(p) | (uint64_t)get_u32_le(p + 4) << 32;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "%s: %s\n", #call, mdb_strerror(rc_));                                 \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s STORE_DIR\n", argv[0]);
        return 2;
    }
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi runs, assignments, customer_keys;
    CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_maxdbs(env, 32));
    CHECK(mdb_env_open(env, argv[1], MDB_RDONLY, 0644));
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    CHECK(mdb_dbi_open(txn, "runs", 0, &runs));
    CHECK(mdb_dbi_open(txn, "assignments", 0, &assignments));
    CHECK(mdb_dbi_open(txn, "customer_keys", 0, &customer_keys));

    /* the latest run: the last key of `runs` (run id, u64 big-endian) */
    MDB_cursor *cursor;
    MDB_val key, value;
    CHECK(mdb_cursor_open(txn, runs, &cursor));
    CHECK(mdb_cursor_get(cursor, &key, &value, MDB_LAST));
    unsigned char run[8];
    memcpy(run, key.mv_data, 8);
    mdb_cursor_close(cursor);

    static const char *const tiers[] = {"key", "ordinary", "small"};
    unsigned char start[12] = {0};
    memcpy(start, run, 8);
    key.mv_data = start;
    key.mv_size = sizeof start;
    CHECK(mdb_cursor_open(txn, assignments, &cursor));
    int rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    printf("customer_id,segment,value_tier,clv_historic\n");
    while (rc == 0 && key.mv_size == 12 && memcmp(key.mv_data, run, 8) == 0 && value.mv_size == 128) {
        const unsigned char *k = key.mv_data, *v = value.mv_data;
        MDB_val ckey = {4, (void *)(k + 8)}, cval;
        CHECK(mdb_get(txn, customer_keys, &ckey, &cval));
        printf("%.*s,", (int)cval.mv_size, (const char *)cval.mv_data);
        uint32_t segment = get_u32_le(v);
        if (segment != UINT32_MAX)
            printf("%u", segment);
        printf(",%s,", v[12] < 3 ? tiers[v[12]] : "");
        double clv = get_f64_le(v + 16);
        if (clv == clv) /* NaN means not computed: an empty field */
            printf("%.2f", clv);
        printf("\n");
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : 1;
}
