/* SPDX-License-Identifier: MIT */
/*
 * The store itself: opening and its refusals (S1 paths and symlinks, S4/F6
 * foreign, newer, truncated and damaged files, with random bit flips under
 * SM_STORE_VERIFY), readers during an import (F7, processes and threads),
 * reader slots left by killed processes (F1), feature matrices, runs and
 * assignments.
 */
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/core.h"
#include "storetest.h"

static void import_log(sm_store *s, const char *dir, const char *name, uint64_t rows, uint64_t seed)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    generate_log(path, rows, seed);
    sm_import_options o;
    sm_import_options_init(&o);
    sm_error err;
    ck_assert_msg(import_one(s, path, &o, NULL, NULL, &err) == SM_OK, "%s", err.msg);
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert(a != NULL && b != NULL);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    ck_assert_int_eq(fclose(b), 0);
}

/* --- opening --------------------------------------------------------------------------------- */

START_TEST(open_refuses_bad_paths_by_name)
{
    char dir[1024], path[1200];
    sm_test_tmpdir(dir, sizeof dir, "paths");
    sm_store *s;
    sm_error err;
    snprintf(path, sizeof path, "%s/absent", dir);
    ck_assert_int_eq(sm_store_open(path, SM_STORE_READ_ONLY, &s, &err), SM_ERR_NOT_FOUND);
    ck_assert_ptr_null(s);
    ck_assert_str_eq(err.path, path);
    ck_assert_ptr_nonnull(strstr(err.msg, "no store here"));
    snprintf(path, sizeof path, "%s/no/such/parent", dir);
    ck_assert_int_eq(sm_store_open(path, SM_STORE_CREATE, &s, &err), SM_ERR_IO);
    ck_assert_str_eq(err.path, path);
    snprintf(path, sizeof path, "%s/file", dir);
    sm_test_write_file(path, "x");
    ck_assert_int_eq(sm_store_open(path, SM_STORE_CREATE, &s, &err), SM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a directory"));
    ck_assert_int_eq(sm_store_open("", SM_STORE_READ_ONLY, &s, &err), SM_ERR_INVALID_ARG);
    /* a new store goes only into a new or empty directory */
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_CREATE, &s, &err), SM_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(err.msg, "holds other files but no store"));
    /* an empty directory is not a store */
    snprintf(path, sizeof path, "%s/empty", dir);
    mkdir(path, 0755);
    ck_assert_int_eq(sm_store_open(path, SM_STORE_READ_WRITE, &s, &err), SM_ERR_NOT_FOUND);
    /* a symlinked data.mdb is refused, never followed */
    char store_dir[1200], target[1300], link[1300];
    snprintf(store_dir, sizeof store_dir, "%s/linked", dir);
    mkdir(store_dir, 0755);
    snprintf(target, sizeof target, "%s/elsewhere.mdb", dir);
    sm_test_write_file(target, "");
    snprintf(link, sizeof link, "%s/data.mdb", store_dir);
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_eq(sm_store_open(store_dir, SM_STORE_CREATE, &s, &err), SM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "symbolic link"));
    ck_assert_str_eq(err.path, link);
    struct stat st;
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_int_eq((int)st.st_size, 0); /* untouched */
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(open_twice_in_one_process_and_read_only_writes_are_refused)
{
    char dir[1024];
    sm_store *s = scratch_store(dir, sizeof dir, "twice");
    sm_store *again;
    sm_error err;
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_ONLY, &again, &err), SM_ERR_INVALID_STATE);
    ck_assert_ptr_nonnull(strstr(err.msg, "already open"));
    sm_store_close(s);
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_ONLY, &s, &err), SM_OK);
    ck_assert_str_eq(sm_store_path(s), dir);
    float x[2] = {1, 2};
    const char *names[] = {"a", "b"};
    sm_customer_id ids[1] = {0};
    ck_assert_int_eq(sm_store_features_put(s, "f", x, 1, 2, 2, names, ids, &err), SM_ERR_INVALID_STATE);
    sm_import_options o;
    sm_import_options_init(&o);
    ck_assert_int_eq(import_one(s, "/dev/null", &o, NULL, NULL, &err), SM_ERR_INVALID_STATE);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

static void raw_lmdb_put(const char *dir, const char *db, const char *key, const void *val, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

START_TEST(schema_is_checked_on_open)
{
    char dir[1024];
    sm_store *s = scratch_store(dir, sizeof dir, "schema");
    sm_store_close(s);
    /* a newer segmint's store */
    unsigned char rec[24] = "SEGMINT";
    rec[8] = 99;
    rec[12] = 100;
    raw_lmdb_put(dir, "meta", "schema", rec, sizeof rec);
    sm_error err;
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_ONLY, &s, &err), SM_ERR_SCHEMA);
    ck_assert_ptr_nonnull(strstr(err.msg, "schema version 99, newer than"));
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_WRITE, &s, &err), SM_ERR_SCHEMA);
    /* an unknown record */
    raw_lmdb_put(dir, "meta", "schema", "hello", 5);
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_ONLY, &s, &err), SM_ERR_SCHEMA);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a segmint store"));
    sm_test_rmtree(dir);
    /* some other program's LMDB environment */
    sm_test_tmpdir(dir, sizeof dir, "foreign");
    raw_lmdb_put(dir, NULL, "key", "value", 5);
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_CREATE, &s, &err), SM_ERR_SCHEMA);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a segmint store"));
    sm_test_rmtree(dir);
}
END_TEST

static int open_copy(const char *dir, const char *src_data, void (*damage)(const char *path, void *ctx), void *ctx,
                     unsigned flags, sm_error *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    copy_file(src_data, path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    damage(path, ctx);
    sm_store *s;
    int rc = sm_store_open(dir, flags, &s, err);
    if (rc == SM_OK)
        sm_store_close(s);
    return rc;
}

static void truncate_to(const char *path, void *ctx)
{
    ck_assert_int_eq(truncate(path, *(off_t *)ctx), 0);
}

static void poke(const char *path, void *ctx)
{
    const long *at = ctx;
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char b;
    ck_assert_int_eq(pread(fd, &b, 1, at[0]), 1);
    b ^= (unsigned char)at[1];
    ck_assert_int_eq(pwrite(fd, &b, 1, at[0]), 1);
    close(fd);
}

START_TEST(damaged_files_are_reported_not_read)
{
    char dir[1024], good[1200], work[1024];
    sm_store *s = scratch_store(dir, sizeof dir, "damage-src");
    import_log(s, dir, "log.csv", 5000, 1);
    sm_store_close(s);
    snprintf(good, sizeof good, "%s/data.mdb", dir);
    sm_test_tmpdir(work, sizeof work, "damage");
    sm_error err;
    struct stat st;
    ck_assert_int_eq(stat(good, &st), 0);
    off_t len = 0;
    ck_assert_int_eq(open_copy(work, good, truncate_to, &len, SM_STORE_READ_ONLY, &err), SM_ERR_STORAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "too short to hold its two meta pages"));
    len = st.st_size / 2;
    ck_assert_int_eq(open_copy(work, good, truncate_to, &len, SM_STORE_READ_ONLY, &err), SM_ERR_STORAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated"));
    long magic[2] = {16, 0xFF}; /* meta page 0, mm_magic */
    ck_assert_int_eq(open_copy(work, good, poke, magic, SM_STORE_READ_ONLY, &err), SM_ERR_STORAGE);
    ck_assert_int_eq(err.cause, MDB_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "damaged"));
    long meta2[2] = {4096 + 16, 0x01}; /* meta page 1 */
    ck_assert_int_eq(open_copy(work, good, poke, meta2, SM_STORE_READ_ONLY, &err), SM_ERR_STORAGE);
    sm_test_rmtree(work);
    sm_test_rmtree(dir);
}
END_TEST

/* F6/S4: random bit flips anywhere in data.mdb, opened with VERIFY and then
 * fully loaded, in child processes: each must end in a clean refusal or a
 * consistent load, never a crash. */
START_TEST(random_bit_flips_never_crash_a_verified_open)
{
    char dir[1024], good[1200], work[1024];
    sm_store *s = scratch_store(dir, sizeof dir, "flip-src");
    import_log(s, dir, "log.csv", 4000, 2);
    float x[6] = {1, 2, 3, 4, 5, 6};
    const char *names[] = {"a", "b"};
    sm_customer_id ids[3] = {0, 1, 2};
    sm_error err;
    ck_assert_int_eq(sm_store_features_put(s, "f", x, 3, 2, 2, names, ids, &err), SM_OK);
    sm_store_close(s);
    snprintf(good, sizeof good, "%s/data.mdb", dir);
    sm_test_tmpdir(work, sizeof work, "flip");
    struct stat st;
    ck_assert_int_eq(stat(good, &st), 0);
    sm_rng rng;
    sm_rng_init(&rng, sm_test_seed(17), 0);
    int refused = 0, loaded = 0;
    for (int trial = 0; trial < 150; trial++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/data.mdb", work);
        copy_file(good, path);
        snprintf(path, sizeof path, "%s/lock.mdb", work);
        unlink(path);
        snprintf(path, sizeof path, "%s/data.mdb", work);
        int flips = 1 + (int)sm_rng_below(&rng, 8);
        for (int f = 0; f < flips; f++) {
            long at[2] = {(long)sm_rng_below(&rng, (uint64_t)st.st_size), 1L << sm_rng_below(&rng, 8)};
            poke(path, at);
        }
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            sm_store *c;
            sm_error e;
            if (sm_store_open(work, SM_STORE_READ_ONLY | SM_STORE_VERIFY, &c, &e) != SM_OK)
                _exit(1);
            sm_store_info info;
            sm_tx_table t;
            sm_basket_table b;
            sm_key_table k;
            sm_feature_matrix m;
            sm_store_source *src;
            size_t n_src;
            int bad = 0;
            bad |= sm_store_get_info(c, &info, &e) != SM_OK;
            if (sm_store_load_tx(c, &t, NULL, &e) == SM_OK)
                sm_tx_table_free(&t);
            if (sm_store_load_baskets(c, 0, &b, NULL, &e) == SM_OK)
                sm_basket_table_free(&b);
            if (sm_store_load_keys(c, SM_KEYS_ITEMS, &k, &e) == SM_OK)
                sm_key_table_free(&k);
            if (sm_store_load_keys(c, SM_KEYS_BASKETS, &k, &e) == SM_OK)
                sm_key_table_free(&k);
            if (sm_store_features_get(c, "f", &m, &e) == SM_OK)
                sm_feature_matrix_free(&m);
            if (sm_store_sources(c, &src, &n_src, &e) == SM_OK)
                sm_store_sources_free(src, n_src);
            sm_store_close(c);
            _exit(bad ? 2 : 0);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status), "trial %d: the child died of signal %d", trial,
                      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        if (WEXITSTATUS(status) == 0)
            loaded++;
        else
            refused++;
    }
    ck_assert_int_gt(refused, 0); /* the walker found real damage */
    ck_assert_int_gt(loaded, 0);  /* and flips in unused bytes are harmless */
    sm_test_rmtree(work);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(verify_accepts_a_healthy_store)
{
    char dir[1024];
    sm_store *s = scratch_store(dir, sizeof dir, "verify");
    import_log(s, dir, "log.csv", 20000, 4);
    sm_store_close(s);
    sm_error err;
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_ONLY | SM_STORE_VERIFY, &s, &err), SM_OK);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* --- readers during an import (F7) ------------------------------------------------------------- */

/* A reader sees one snapshot at a time: each load succeeds (the loader
 * checks its rows against the same snapshot's counts) with either the old
 * or the new row count. */
static int reader_loop(const char *dir, uint64_t before, uint64_t after, int max_iterations)
{
    sm_store *s;
    sm_error err;
    if (sm_store_open(dir, SM_STORE_READ_ONLY, &s, &err) != SM_OK)
        return 2;
    int result = 1;
    for (int i = 0; i < max_iterations; i++) {
        sm_tx_table t;
        if (sm_store_load_tx(s, &t, NULL, &err) != SM_OK) {
            fprintf(stderr, "reader: %s\n", err.msg);
            result = 3;
            break;
        }
        uint64_t n = t.n_rows;
        sm_tx_table_free(&t);
        if (n != before && n != after) {
            result = 4;
            break;
        }
        if (n == after) {
            result = 0;
            break;
        }
        usleep(2000);
    }
    sm_store_close(s);
    return result;
}

/* A store holding a 2,000-row base import, a log of `pending` more rows
 * written to dir/NAME but not imported, and the store's row count now. */
static sm_store *store_with_pending_log(char *dir, size_t cap, const char *tag, char *path, size_t path_cap,
                                       const char *name, uint64_t pending, uint64_t seed, uint64_t *rows_now)
{
    sm_store *s = scratch_store(dir, cap, tag);
    import_log(s, dir, "base.csv", 2000, 1);
    snprintf(path, path_cap, "%s/%s", dir, name);
    generate_log(path, pending, seed);
    sm_store_info info;
    sm_error err;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    *rows_now = info.tx_rows;
    return s;
}

START_TEST(reader_processes_see_whole_snapshots_during_an_import)
{
    char dir[1024], path[1200];
    uint64_t before;
    sm_store *s = store_with_pending_log(dir, sizeof dir, "readers", path, sizeof path, "big.csv", 150000, 2, &before);
    uint64_t after = before + 150000;
    sm_error err;
    enum { READERS = 8 };
    pid_t pids[READERS];
    for (int r = 0; r < READERS; r++) {
        pids[r] = fork();
        ck_assert_int_ge(pids[r], 0);
        if (pids[r] == 0)
            _exit(reader_loop(dir, before, after, 20000));
    }
    /* a tiny map, so the import also grows it under the readers */
    sm_import_options o;
    sm_import_options_init(&o);
    o.map_size = 256 << 10;
    o.grow_on_demand = true;
    sm_import_result res;
    ck_assert_int_eq(import_one(s, path, &o, &res, NULL, &err), SM_OK);
    ck_assert_uint_gt(res.map_growths, 0);
    for (int r = 0; r < READERS; r++) {
        int status;
        ck_assert_int_eq(waitpid(pids[r], &status, 0), pids[r]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader %d: status %d", r, status);
    }
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* A pinned snapshot keeps showing the store as it was when pinned, through
 * an import another process commits meanwhile; ending it shows the import. */
static int pinned_reader(const char *dir, uint64_t before, uint64_t after, int ready_fd, int go_fd)
{
    sm_store *s;
    sm_error err;
    if (sm_store_open(dir, SM_STORE_READ_ONLY, &s, &err) != SM_OK)
        return 2;
    int result = 0;
    sm_store_info info;
    sm_tx_table t;
    char byte = 'r';
    if (sm_store_snapshot_begin(s, &err) != SM_OK || sm_store_snapshot_begin(s, &err) != SM_ERR_INVALID_STATE)
        result = 3;
    else if (write(ready_fd, &byte, 1) != 1 || read(go_fd, &byte, 1) != 1)
        result = 4;
    else if (sm_store_get_info(s, &info, &err) != SM_OK || info.tx_rows != before)
        result = 5; /* the import has committed, the pinned view must not show it */
    else if (sm_store_load_tx(s, &t, NULL, &err) != SM_OK)
        result = 6;
    else {
        result = t.n_rows == before ? 0 : 7;
        sm_tx_table_free(&t);
    }
    sm_store_snapshot_end(s);
    if (result == 0 && (sm_store_get_info(s, &info, &err) != SM_OK || info.tx_rows != after))
        result = 8;
    sm_store_close(s);
    return result;
}

START_TEST(a_pinned_snapshot_hides_a_concurrent_import)
{
    char dir[1024], path[1200];
    uint64_t before;
    sm_store *s = store_with_pending_log(dir, sizeof dir, "pinned", path, sizeof path, "more.csv", 3000, 5, &before);
    sm_error err;
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(pinned_reader(dir, before, before + 3000, ready[1], go[0]));
    char byte;
    ck_assert_int_eq(read(ready[0], &byte, 1), 1);
    sm_import_result res;
    ck_assert_int_eq(import_one(s, path, NULL, &res, NULL, &err), SM_OK);
    ck_assert_int_eq(write(go[1], "g", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pinned reader: status %d", status);
    /* and on the writing handle, a pin refuses writes until it ends */
    snprintf(path, sizeof path, "%s/third.csv", dir);
    generate_log(path, 100, 6);
    ck_assert_int_eq(sm_store_snapshot_begin(s, &err), SM_OK);
    ck_assert_int_eq(import_one(s, path, NULL, &res, NULL, &err), SM_ERR_INVALID_STATE);
    ck_assert_msg(strstr(err.msg, "snapshot is pinned") != NULL, "%s", err.msg);
    sm_store_snapshot_end(s);
    for (int i = 0; i < 2; i++)
        close(ready[i]), close(go[i]);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

typedef struct thread_reader {
    sm_store *store;
    uint64_t before, after;
    volatile int *stop;
    int loads, failures;
} thread_reader;

static void *reader_thread(void *arg)
{
    thread_reader *r = arg;
    while (!*r->stop) {
        sm_tx_table t;
        sm_error err;
        if (sm_store_load_tx(r->store, &t, NULL, &err) != SM_OK) {
            r->failures++;
            continue;
        }
        if (t.n_rows != r->before && t.n_rows != r->after)
            r->failures++;
        sm_tx_table_free(&t);
        r->loads++;
    }
    return NULL;
}

START_TEST(reader_threads_share_the_handle_while_it_imports_and_grows)
{
    char dir[1024], path[1200];
    uint64_t before;
    sm_store *s = store_with_pending_log(dir, sizeof dir, "threads", path, sizeof path, "big.csv", 60000, 3, &before);
    sm_error err;
    volatile int stop = 0;
    thread_reader r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (thread_reader){s, before, before + 60000, &stop, 0, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_thread, &r[i]), 0);
    }
    sm_import_options o;
    sm_import_options_init(&o);
    o.map_size = 256 << 10;
    o.grow_on_demand = true;
    sm_import_result res;
    ck_assert_int_eq(import_one(s, path, &o, &res, NULL, &err), SM_OK);
    ck_assert_uint_gt(res.map_growths, 0);
    stop = 1;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(r[i].failures, 0);
        ck_assert_int_gt(r[i].loads, 0);
    }
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* --- stale reader slots (F1) ------------------------------------------------------------------- */

/* A process that keeps the store's LMDB environment open, with no
 * transaction, until *ctl is closed. While any process has it open, LMDB
 * never resets lock.mdb, so a killed reader's slot stays, as it does beside
 * a long-lived server. max_readers sizes a lock file it creates (0: LMDB's
 * default). */
static pid_t spawn_holder(const char *dir, unsigned max_readers, int *ctl)
{
    int ready[2], hold[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(hold), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        close(hold[1]);
        MDB_env *env = NULL;
        bool ok = mdb_env_create(&env) == 0 && (max_readers == 0 || mdb_env_set_maxreaders(env, max_readers) == 0) &&
                  mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644) == 0;
        char c = ok ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        while (read(hold[0], &c, 1) > 0)
            ;
        mdb_env_close(env);
        _exit(ok ? 0 : 1);
    }
    close(ready[1]);
    close(hold[0]);
    char c = 0;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    ck_assert_int_eq(c, 'y');
    *ctl = hold[1];
    return pid;
}

static void stop_holder(pid_t pid, int ctl)
{
    close(ctl);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "holder status %d", status);
}

/* Forks a process that starts a read transaction on dir with plain LMDB
 * (the store API never holds one past a call), SIGKILLs it while it holds
 * it, reaps it and returns its pid. */
static pid_t kill_a_reader(const char *dir)
{
    int ready[2], hold[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(hold), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        close(hold[1]);
        MDB_env *env = NULL;
        MDB_txn *txn;
        bool ok = mdb_env_create(&env) == 0 && mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644) == 0 &&
                  mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0;
        char c = ok ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        while (read(hold[0], &c, 1) > 0) /* until killed, or the test itself dies */
            ;
        _exit(3);
    }
    close(ready[1]);
    close(hold[0]);
    char c = 0;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    ck_assert_int_eq(c, 'y');
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(hold[1]);
    return pid;
}

static int append_line(const char *msg, void *ctx)
{
    char *text = ctx;
    size_t len = strlen(text);
    snprintf(text + len, 4096 - len, "%s", msg);
    return 0;
}

/* Whether pid holds a slot in dir's reader table, as mdb_reader_list
 * ("    pid     thread     txnid", then one line per slot) shows it. Asked
 * in a child: closing a second environment on the file in this process would
 * drop the locks of a store it has open. */
static bool reader_listed(const char *dir, pid_t pid)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        MDB_env *env = NULL;
        char text[4096] = "";
        if (mdb_env_create(&env) != 0 || mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644) != 0 ||
            mdb_reader_list(env, append_line, text) < 0)
            _exit(2);
        for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            long listed;
            if (sscanf(line, "%ld", &listed) == 1 && listed == (long)pid)
                _exit(0);
        }
        _exit(1);
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) <= 1, "reader list: status %d", status);
    return WEXITSTATUS(status) == 0;
}

START_TEST(open_clears_reader_slots_left_by_killed_processes)
{
    char dir[1024];
    sm_store *s = scratch_store(dir, sizeof dir, "stale");
    sm_store_close(s);
    int ctl;
    pid_t holder = spawn_holder(dir, 0, &ctl);
    sm_error err;
    for (unsigned flags = SM_STORE_READ_ONLY; flags <= SM_STORE_READ_WRITE; flags++) {
        pid_t dead = kill_a_reader(dir);
        /* LMDB alone keeps the slot of the killed reader */
        ck_assert_msg(reader_listed(dir, dead), "flags %u: no stale slot to clear", flags);
        ck_assert_int_eq(sm_store_open(dir, flags, &s, &err), SM_OK);
        sm_store_close(s);
        ck_assert_msg(!reader_listed(dir, dead), "flags %u: the slot of killed reader %ld survived the open",
                      flags, (long)dead);
    }
    stop_holder(holder, ctl);
    sm_test_rmtree(dir);
}
END_TEST

START_TEST(a_reader_table_full_of_killed_readers_is_cleared_and_retried)
{
    char dir[1024], lock[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "full");
    sm_store_close(s);
    /* The first opener sizes lock.mdb: a fresh one made by the holder has
     * two slots, so two killed readers fill it. */
    snprintf(lock, sizeof lock, "%s/lock.mdb", dir);
    ck_assert_int_eq(unlink(lock), 0);
    int ctl;
    pid_t holder = spawn_holder(dir, 2, &ctl);
    sm_error err;
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_ONLY, &s, &err), SM_OK);
    /* killed after the open, so only the retry on MDB_READERS_FULL can help */
    pid_t a = kill_a_reader(dir), b = kill_a_reader(dir);
    ck_assert(reader_listed(dir, a) && reader_listed(dir, b));
    sm_store_info info;
    ck_assert_msg(sm_store_get_info(s, &info, &err) == SM_OK, "%s", err.msg);
    sm_store_close(s);
    ck_assert(!reader_listed(dir, a) && !reader_listed(dir, b));
    stop_holder(holder, ctl);
    sm_test_rmtree(dir);
}
END_TEST

/* --- features ---------------------------------------------------------------------------------- */

START_TEST(features_round_trip_replace_and_list)
{
    char dir[1024];
    sm_store *s = scratch_store(dir, sizeof dir, "features");
    float x[3 * 4] = {1, 2, 3, 99, 4, 5, 6, 99, 7, 8, 9, 99}; /* ld 4, d 3 */
    const char *names[] = {"recency", "frequency", "monetary"};
    sm_customer_id ids[3] = {5, 6, 9};
    sm_error err;
    ck_assert_int_eq(sm_store_features_put(s, "rfm", x, 3, 3, 4, names, ids, &err), SM_OK);
    sm_feature_matrix m;
    ck_assert_int_eq(sm_store_features_get(s, "rfm", &m, &err), SM_OK);
    ck_assert_uint_eq(m.n, 3);
    ck_assert_uint_eq(m.d, 3);
    ck_assert_uint_eq(m.ld, 3);
    ck_assert_uint_eq((uintptr_t)m.data % 64, 0);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            ck_assert_float_eq(m.data[i * 3 + j], x[i * 4 + j]);
    ck_assert_str_eq(m.column_names[2], "monetary");
    ck_assert_uint_eq(m.customers[2], 9);
    sm_feature_matrix_free(&m);
    /* replaced by a smaller one of the same name */
    float y[2] = {0.5f, -0.5f};
    const char *one[] = {"score"};
    ck_assert_int_eq(sm_store_features_put(s, "rfm", y, 2, 1, 1, one, ids, &err), SM_OK);
    ck_assert_int_eq(sm_store_features_put(s, "other", y, 2, 1, 1, one, ids, &err), SM_OK);
    ck_assert_int_eq(sm_store_features_get(s, "rfm", &m, &err), SM_OK);
    ck_assert_uint_eq(m.n, 2);
    ck_assert_uint_eq(m.d, 1);
    ck_assert_float_eq(m.data[1], -0.5f);
    sm_feature_matrix_free(&m);
    char **list;
    size_t n;
    ck_assert_int_eq(sm_store_features_list(s, &list, &n, &err), SM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(list[0], "other");
    ck_assert_str_eq(list[1], "rfm");
    sm_store_names_free(list, n);
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.feature_sets, 2);
    ck_assert_int_eq(sm_store_features_get(s, "absent", &m, &err), SM_ERR_NOT_FOUND);
    y[1] = 0.0f / 0.0f;
    ck_assert_int_eq(sm_store_features_put(s, "nan", y, 2, 1, 1, one, ids, &err), SM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "NaN"));
    ck_assert_int_eq(sm_store_features_put(s, "", y, 2, 1, 1, one, ids, &err), SM_ERR_INVALID_ARG);

    /* a matrix larger than one 16 MiB chunk, into a small map that must grow */
    uint64_t big_n = 600000;
    uint32_t d = 8;
    float *big = sm_aligned_alloc(big_n * d, sizeof *big);
    sm_customer_id *big_ids = sm_alloc_array(big_n, sizeof *big_ids);
    for (uint64_t i = 0; i < big_n * d; i++)
        big[i] = (float)i * 0.25f;
    for (uint64_t i = 0; i < big_n; i++)
        big_ids[i] = (sm_customer_id)i;
    const char *cols[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    ck_assert_int_eq(sm_store_features_put(s, "big", big, big_n, d, d, cols, big_ids, &err), SM_OK);
    ck_assert_int_eq(sm_store_features_get(s, "big", &m, &err), SM_OK);
    ck_assert(memcmp(m.data, big, big_n * d * sizeof(float)) == 0);
    ck_assert(memcmp(m.customers, big_ids, big_n * sizeof *big_ids) == 0);
    sm_feature_matrix_free(&m);
    sm_free(big);
    sm_free(big_ids);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* --- runs --------------------------------------------------------------------------------------- */

START_TEST(runs_and_assignments_round_trip)
{
    char dir[1024];
    sm_store *s = scratch_store(dir, sizeof dir, "runs");
    const char *json = "{\"k\":3,\"seed\":42}";
    sm_customer_id ids[3] = {0, 4, 7};
    struct {
        uint32_t cluster;
        float score;
    } values[3] = {{1, 0.5f}, {0, 1.5f}, {2, -1.0f}};
    uint64_t id1, id2;
    sm_error err;
    ck_assert_int_eq(sm_store_run_write(s, json, strlen(json), ids, values, sizeof values[0], 3, &id1, &err), SM_OK);
    ck_assert_int_eq(sm_store_run_write(s, "{}", 2, ids, values, sizeof values[0], 2, &id2, &err), SM_OK);
    ck_assert_uint_eq(id1, 1);
    ck_assert_uint_eq(id2, 2);
    sm_run_info *runs;
    size_t n;
    ck_assert_int_eq(sm_store_runs_list(s, &runs, &n, &err), SM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq((const char *)runs[0].record, json);
    ck_assert_uint_eq(runs[0].n_assignments, 3);
    ck_assert_uint_eq(runs[1].n_assignments, 2);
    ck_assert_uint_eq(runs[0].value_size, sizeof values[0]);
    sm_run_info_free(runs, n);
    sm_assignments a;
    ck_assert_int_eq(sm_store_run_assignments(s, 1, &a, &err), SM_OK);
    ck_assert_uint_eq(a.n, 3);
    ck_assert(memcmp(a.customers, ids, sizeof ids) == 0);
    ck_assert(memcmp(a.values, values, sizeof values) == 0);
    sm_assignments_free(&a);
    ck_assert_int_eq(sm_store_run_assignments(s, 2, &a, &err), SM_OK);
    ck_assert_uint_eq(a.n, 2);
    sm_assignments_free(&a);
    ck_assert_int_eq(sm_store_run_assignments(s, 3, &a, &err), SM_ERR_NOT_FOUND);
    sm_customer_id unsorted[2] = {4, 4};
    ck_assert_int_eq(sm_store_run_write(s, "{}", 2, unsorted, values, 8, 2, &id1, &err), SM_ERR_INVALID_ARG);
    ck_assert_int_eq(sm_store_run_write(s, "{}", 2, ids, values, 0, 2, &id1, &err), SM_ERR_INVALID_ARG);
    sm_store_info info;
    ck_assert_int_eq(sm_store_get_info(s, &info, &err), SM_OK);
    ck_assert_uint_eq(info.runs, 2);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* --- basket keys ------------------------------------------------------------------------------------ */

/* The store keeps basket keys only as key -> id; the loader turns them
 * around. Hand-derived: baskets are numbered in the order the import meets
 * them, so INV-7, INV-3, INV-9 are ids 0, 1, 2; a second file without a
 * basket column makes basket 3 from (c3, time), which has no invoice key. */
START_TEST(basket_keys_map_ids_back_to_invoices)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "basket-keys");
    sm_import_options o;
    sm_import_options_init(&o);
    sm_error err;
    fixture(dir, "shop.csv",
            "customer,basket,item,quantity,price,time\n"
            "c1,INV-7,A,2,1.50,2021-01-02T10:00:00Z\n"
            "c2,INV-3,B,1,0.25,2021-01-01T09:00:00Z\n"
            "c1,INV-7,B,1,0.25,2021-01-02T10:00:00Z\n"
            "c1,INV-9,A,1,1.50,2021-01-05T00:00:00Z\n",
            path, sizeof path);
    ck_assert_msg(import_one(s, path, &o, NULL, NULL, &err) == SM_OK, "%s", err.msg);
    fixture(dir, "more.csv", "customer,time,amount\nc3,2021-02-01,5\n", path, sizeof path);
    ck_assert_msg(import_one(s, path, &o, NULL, NULL, &err) == SM_OK, "%s", err.msg);

    sm_key_table k;
    ck_assert_msg(sm_store_load_keys(s, SM_KEYS_BASKETS, &k, &err) == SM_OK, "%s", err.msg);
    ck_assert_uint_eq(k.n, 4);
    ck_assert_ptr_null(k.descriptions);
    ck_assert_str_eq(k.keys[0], "INV-7");
    ck_assert_str_eq(k.keys[1], "INV-3");
    ck_assert_str_eq(k.keys[2], "INV-9");
    ck_assert_str_eq(k.keys[3], ""); /* synthesised (c3, 2021-02-01): no invoice */
    /* The ids the transactions carry map back to the invoices of their rows:
     * c1 (customer 0) has INV-7 twice (01-02) then INV-9; c2 has INV-3. */
    sm_tx_table t;
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_uint_eq(t.n_rows, 5);
    static const char *const invoice_of_row[] = {"INV-7", "INV-7", "INV-9", "INV-3", ""};
    for (int r = 0; r < 5; r++)
        ck_assert_str_eq(k.keys[t.basket[r]], invoice_of_row[r]);
    sm_tx_table_free(&t);
    sm_key_table_free(&k);
    uint32_t id = 0;
    ck_assert_int_eq(sm_store_find(s, SM_KEYS_BASKETS, "INV-9", 5, &id, &err), SM_OK);
    ck_assert_uint_eq(id, 2);
    ck_assert_int_eq(sm_store_find(s, SM_KEYS_BASKETS, "INV-1", 5, &id, &err), SM_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "no basket \"INV-1\""));
    char buf[SM_STORE_KEY_MAX + 1];
    ck_assert_int_eq(sm_store_key(s, SM_KEYS_BASKETS, 0, buf, sizeof buf, NULL, 0, &err), SM_ERR_INVALID_ARG);
    sm_store_close(s);

    /* A key record pointing past the basket count, or a second key for an
     * id, is damage: refused, never a wrong table. */
    const unsigned char beyond[4] = {4, 0, 0, 0}, twice[4] = {1, 0, 0, 0};
    raw_lmdb_put(dir, "basket_keys", "INV-X", beyond, sizeof beyond);
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_ONLY, &s, &err), SM_OK);
    ck_assert_int_eq(sm_store_load_keys(s, SM_KEYS_BASKETS, &k, &err), SM_ERR_STORAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "basket 4, beyond the 4 baskets"));
    ck_assert_ptr_null(k.keys);
    sm_store_close(s);
    raw_lmdb_put(dir, "basket_keys", "INV-X", twice, sizeof twice);
    ck_assert_int_eq(sm_store_open(dir, SM_STORE_READ_ONLY, &s, &err), SM_OK);
    ck_assert_int_eq(sm_store_load_keys(s, SM_KEYS_BASKETS, &k, &err), SM_ERR_STORAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "two keys to basket 1"));
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

/* --- edge sizes (L1) -------------------------------------------------------------------------------- */

START_TEST(empty_store_and_tiny_inputs)
{
    char dir[1024], path[1200];
    sm_store *s = scratch_store(dir, sizeof dir, "tiny");
    sm_error err;
    sm_tx_table t;
    sm_basket_table b;
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_uint_eq(t.n_rows, 0);
    ck_assert_uint_eq(t.customer_offsets[0], 0);
    sm_tx_table_free(&t);
    ck_assert_int_eq(sm_store_load_baskets(s, 0, &b, NULL, &err), SM_OK);
    ck_assert_uint_eq(b.csr.n_rows, 0);
    sm_basket_table_free(&b);
    sm_import_options o;
    sm_import_options_init(&o);
    sm_import_result r;
    fixture(dir, "empty.csv", "", path, sizeof path);
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "empty"));
    fixture(dir, "header.csv", "customer,time,amount\n", path, sizeof path);
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_OK);
    ck_assert_uint_eq(r.rows_read, 0);
    fixture(dir, "one.csv", "customer,time,amount\nx,2020-01-01,1\n", path, sizeof path);
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_OK);
    ck_assert_int_eq(sm_store_load_tx(s, &t, NULL, &err), SM_OK);
    ck_assert_uint_eq(t.n_rows, 1);
    ck_assert_uint_eq(t.customer_offsets[1], 1);
    ck_assert_uint_eq(t.item[0], SM_ITEM_NONE);
    sm_tx_table_free(&t);
    ck_assert_int_eq(import_one(s, dir, &o, &r, NULL, &err), SM_ERR_IO); /* a directory */
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
    snprintf(path, sizeof path, "%s/absent.csv", dir);
    ck_assert_int_eq(import_one(s, path, &o, &r, NULL, &err), SM_ERR_NOT_FOUND);
    ck_assert_str_eq(err.path, path);
    sm_store_close(s);
    sm_test_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *open = tcase_create("errors");
    tcase_add_test(open, open_refuses_bad_paths_by_name);
    tcase_add_test(open, open_twice_in_one_process_and_read_only_writes_are_refused);
    tcase_add_test(open, schema_is_checked_on_open);
    tcase_add_test(open, damaged_files_are_reported_not_read);
    tcase_add_test(open, random_bit_flips_never_crash_a_verified_open);
    tcase_add_test(open, verify_accepts_a_healthy_store);
    suite_add_tcase(s, open);
    TCase *conc = tcase_create("concurrency");
    tcase_add_test(conc, reader_processes_see_whole_snapshots_during_an_import);
    tcase_add_test(conc, a_pinned_snapshot_hides_a_concurrent_import);
    tcase_add_test(conc, reader_threads_share_the_handle_while_it_imports_and_grows);
    tcase_add_test(conc, open_clears_reader_slots_left_by_killed_processes);
    tcase_add_test(conc, a_reader_table_full_of_killed_readers_is_cleared_and_retried);
    suite_add_tcase(s, conc);
    TCase *core = tcase_create("core");
    tcase_add_test(core, features_round_trip_replace_and_list);
    tcase_add_test(core, runs_and_assignments_round_trip);
    tcase_add_test(core, empty_store_and_tiny_inputs);
    tcase_add_test(core, basket_keys_map_ids_back_to_invoices);
    suite_add_tcase(s, core);
    return sm_test_run(s);
}
