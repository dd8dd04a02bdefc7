/* SPDX-License-Identifier: MIT */
/*
 * Page walker for LMDB 0.9 data files on 64-bit hosts (layout from mdb.c:
 * MDB_page, MDB_meta, MDB_db, MDB_node). Pages are read with pread into a
 * buffer; every offset taken from the file is checked before use.
 */
#include "storage/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/core.h"

enum {
    PAGEHDRSZ = 16,      /* pgno u64, pad u16, flags u16, lower u16, upper u16 */
    NODESIZE = 8,        /* lo u16, hi u16, flags u16, ksize u16 */
    DB_RECORD = 48,      /* MDB_db */
    META_DBS_OFFSET = 24,/* magic, version, address, mapsize */
    MAX_DEPTH = 32,      /* LMDB's CURSOR_STACK */
    MAX_KEY = 511,
    META_BYTES = PAGEHDRSZ + META_DBS_OFFSET + 2 * DB_RECORD + 16, /* through mm_txnid */
    FREE_DB_FLAGS = 0x08,  /* MDB_INTEGERKEY: how LMDB creates its free-page database */
    MDB_INVALID_CODE = -30793
};
enum {
    P_BRANCH = 0x01, P_LEAF = 0x02, P_OVERFLOW = 0x04, P_META = 0x08, P_LEAF2 = 0x20, P_SUBP = 0x40
};
enum { F_BIGDATA = 0x01, F_SUBDATA = 0x02, F_DUPDATA = 0x04 };
#define MDB_MAGIC 0xBEEFC0DEu
#define P_INVALID UINT64_MAX

typedef struct walker {
    int fd;
    const char *path;
    uint64_t psize;
    uint64_t n_pages;     /* pages that fit in the file */
    uint64_t last_pg;     /* highest valid page number per the meta page */
    unsigned char *page;  /* one page buffer per depth level */
    unsigned char *levels;
    uint8_t *visited;     /* bit per page */
    sm_error *err;
} walker;

static uint16_t u16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int bad(walker *w, uint64_t pgno, const char *what)
{
    return sm_error_set_at(w->err, SM_ERR_STORAGE, w->path, 0, 0, NULL,
                           "corrupt store: page %" PRIu64 ": %s", pgno, what);
}

static int read_page(walker *w, uint64_t pgno, unsigned char *buf)
{
    if (pgno > w->last_pg || pgno >= w->n_pages)
        return bad(w, pgno, "page number beyond the end of the file");
    size_t done = 0;
    while (done < w->psize) {
        ssize_t n = pread(w->fd, buf + done, w->psize - done, (off_t)(pgno * w->psize + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = n < 0 ? errno : EIO;
            sm_error_set_at(w->err, SM_ERR_IO, w->path, 0, 0, NULL, "cannot read page %" PRIu64 ": %s", pgno,
                            strerror(saved));
            sm_error_set_cause(w->err, saved);
            return SM_ERR_IO;
        }
        done += (size_t)n;
    }
    if (u64(buf) != pgno)
        return bad(w, pgno, "page header names another page");
    return SM_OK;
}

enum db_kind { DB_FREE, DB_MAIN, DB_NAMED };
static int walk_tree(walker *w, uint64_t root, unsigned depth_left, enum db_kind kind, int level);

/* Checks one MDB_db record (a meta page's or a named database's). */
static int check_db(walker *w, const unsigned char *db, enum db_kind kind, uint64_t where, int level)
{
    uint16_t flags = u16(db + 4), depth = u16(db + 6);
    uint64_t root = u64(db + 40);
    /* Our databases use no flags; MDB_INTEGERKEY/DUPSORT/... would change
     * how LMDB reads nodes, so anything else is refused. */
    if (kind == DB_NAMED && flags != 0)
        return bad(w, where, "a named database has unexpected flags");
    if (root == P_INVALID)
        return depth == 0 ? SM_OK : bad(w, where, "empty database with nonzero depth");
    if (depth == 0 || depth > MAX_DEPTH)
        return bad(w, where, "database depth out of range");
    return walk_tree(w, root, depth, kind, level);
}

static int walk_tree(walker *w, uint64_t pgno, unsigned depth_left, enum db_kind kind, int level)
{
    if (level >= 2 * MAX_DEPTH)
        return bad(w, pgno, "tree deeper than LMDB allows");
    if (pgno < 2)
        return bad(w, pgno, "a tree points at a meta page"); /* LMDB asserts root > 1 */
    if (pgno > w->last_pg || pgno >= w->n_pages)
        return bad(w, pgno, "child page number beyond the end of the file");
    if (w->visited[pgno >> 3] & (1u << (pgno & 7)))
        return SM_OK; /* shared with the other meta page's tree: checked already */
    w->visited[pgno >> 3] |= (uint8_t)(1u << (pgno & 7));
    unsigned char *page = w->levels + (size_t)level * w->psize;
    int status = read_page(w, pgno, page);
    if (status != SM_OK)
        return status;
    uint16_t flags = u16(page + 10), lower = u16(page + 12), upper = u16(page + 14);
    bool branch = (flags & P_BRANCH) != 0, leaf = (flags & P_LEAF) != 0;
    if (branch == leaf || (flags & (P_OVERFLOW | P_META | P_LEAF2 | P_SUBP)))
        return bad(w, pgno, "page is neither a plain branch nor a plain leaf");
    if (lower < PAGEHDRSZ || upper > w->psize || lower > upper || (lower - PAGEHDRSZ) % 2 != 0)
        return bad(w, pgno, "page free-space bounds are inconsistent");
    if ((depth_left == 1) != leaf)
        return bad(w, pgno, "tree depth differs from the database record");
    unsigned n = (lower - PAGEHDRSZ) / 2u;
    /* LMDB never leaves an empty page in a tree (an emptied root becomes
     * P_INVALID), and mdb_cursor_first reads node 0 without looking. */
    if (n == 0)
        return bad(w, pgno, "page holds no nodes");
    for (unsigned i = 0; i < n; i++) {
        uint16_t off = u16(page + PAGEHDRSZ + 2 * i);
        if (off < upper || (uint64_t)off + NODESIZE > w->psize)
            return bad(w, pgno, "node offset outside the page");
        const unsigned char *node = page + off;
        uint16_t lo = u16(node), hi = u16(node + 2), nflags = u16(node + 4), ksize = u16(node + 6);
        if (ksize > MAX_KEY || (uint64_t)off + NODESIZE + ksize > w->psize)
            return bad(w, pgno, "key size exceeds the page");
        if (branch) {
            uint64_t child = (uint64_t)lo | ((uint64_t)hi << 16) | ((uint64_t)nflags << 32);
            status = walk_tree(w, child, depth_left - 1, kind, level + 1);
            if (status != SM_OK)
                return status;
            /* the recursion reused deeper buffers only; this level's page is intact */
            continue;
        }
        uint64_t dsize = (uint64_t)lo | ((uint64_t)hi << 16);
        const unsigned char *data = node + NODESIZE + ksize;
        if (nflags & ~(unsigned)(F_BIGDATA | F_SUBDATA | F_DUPDATA))
            return bad(w, pgno, "unknown node flags");
        if (nflags & F_DUPDATA)
            return bad(w, pgno, "duplicate-sorted node in a database that has none");
        if (nflags & F_BIGDATA) {
            if ((uint64_t)off + NODESIZE + ksize + 8 > w->psize)
                return bad(w, pgno, "overflow reference exceeds the page");
            uint64_t ov = u64(data);
            unsigned char *head = w->page;
            status = read_page(w, ov, head);
            if (status != SM_OK)
                return status;
            uint32_t pages = u32(head + 12);
            if (!(u16(head + 10) & P_OVERFLOW) || pages == 0 || ov + pages - 1 > w->last_pg ||
                ov + pages > w->n_pages || (uint64_t)pages * w->psize - PAGEHDRSZ < dsize)
                return bad(w, ov, "overflow page run is inconsistent");
            continue;
        }
        if ((uint64_t)off + NODESIZE + ksize + dsize > w->psize)
            return bad(w, pgno, "data size exceeds the page");
        if (nflags & F_SUBDATA) {
            if (kind != DB_MAIN || dsize != DB_RECORD)
                return bad(w, pgno, "misplaced named-database record");
            unsigned char db[DB_RECORD];
            memcpy(db, data, DB_RECORD);
            status = check_db(w, db, DB_NAMED, pgno, level + 1); /* below this page's buffer */
            if (status != SM_OK)
                return status;
        }
    }
    return SM_OK;
}

/* Reads and checks both meta pages: LMDB divides by their page size and
 * maps by their sizes before it looks at anything else (CVE-2019-16228). */
static int read_metas(walker *w, unsigned char meta_buf[2][META_BYTES])
{
    struct stat st;
    if (fstat(w->fd, &st) != 0 || st.st_size < (off_t)(2 * 512))
        return sm_error_set_at(w->err, SM_ERR_STORAGE, w->path, 0, 0, NULL,
                               "corrupt store: the file is too short for its two meta pages");
    for (int m = 0; m < 2; m++) {
        /* The second meta page sits one page in; the page size is in the first. */
        off_t at = m == 0 ? 0 : (off_t)u32(meta_buf[0] + PAGEHDRSZ + META_DBS_OFFSET);
        if (at + (off_t)META_BYTES > st.st_size ||
            pread(w->fd, meta_buf[m], META_BYTES, at) != (ssize_t)META_BYTES)
            return sm_error_set_at(w->err, SM_ERR_STORAGE, w->path, 0, 0, NULL,
                                   "corrupt store: cannot read meta page %d", m);
        const unsigned char *mp = meta_buf[m];
        if (u64(mp) != (uint64_t)m || !(u16(mp + 10) & P_META) || u32(mp + PAGEHDRSZ) != MDB_MAGIC ||
            u32(mp + PAGEHDRSZ + 4) != 1) {
            sm_error_set_at(w->err, SM_ERR_STORAGE, w->path, 0, 0, NULL,
                            "corrupt store: meta page %d has a wrong magic or version (not an LMDB 0.9 file, "
                            "or damaged)", m);
            sm_error_set_cause(w->err, MDB_INVALID);
            return SM_ERR_STORAGE;
        }
        uint32_t psize = u32(mp + PAGEHDRSZ + META_DBS_OFFSET); /* mm_dbs[0].md_pad */
        if (psize < 512 || psize > 65536 || (psize & (psize - 1)) != 0)
            return sm_error_set_at(w->err, SM_ERR_STORAGE, w->path, 0, 0, NULL,
                                   "corrupt store: meta page %d has an implausible page size %" PRIu32, m, psize);
        if (m == 0)
            w->psize = psize;
        else if (psize != w->psize)
            return sm_error_set_at(w->err, SM_ERR_STORAGE, w->path, 0, 0, NULL,
                                   "corrupt store: the meta pages disagree on the page size");
    }
    w->n_pages = (uint64_t)st.st_size / w->psize;
    for (int m = 0; m < 2; m++) {
        const unsigned char *meta = meta_buf[m] + PAGEHDRSZ;
        uint64_t mapsize = u64(meta + 16);
        uint64_t last_pg = u64(meta + META_DBS_OFFSET + 2 * DB_RECORD);
        const unsigned char *free_db = meta + META_DBS_OFFSET, *main_db = free_db + DB_RECORD;
        bool roots_ok = true;
        for (int d = 0; d < 2; d++) {
            const unsigned char *db = d == 0 ? free_db : main_db;
            uint64_t root = u64(db + 40);
            roots_ok = roots_ok && (root == P_INVALID || (root >= 2 && root <= last_pg)) && u16(db + 6) <= MAX_DEPTH;
        }
        if (last_pg < 1 || last_pg >= w->n_pages)
            return sm_error_set_at(w->err, SM_ERR_STORAGE, w->path, 0, 0, NULL,
                                   "corrupt store: the file is truncated (meta page %d needs %" PRIu64
                                   " pages, the file holds %" PRIu64 "); restore it from a copy",
                                   m, last_pg + 1, w->n_pages);
        if (mapsize / w->psize < last_pg + 1 || mapsize > (UINT64_C(1) << 46) || !roots_ok ||
            u16(free_db + 4) != FREE_DB_FLAGS || u16(main_db + 4) != 0)
            return sm_error_set_at(w->err, SM_ERR_STORAGE, w->path, 0, 0, NULL,
                                   "corrupt store: meta page %d holds impossible sizes or database records", m);
    }
    return SM_OK;
}

static int open_walker(walker *w, const char *data_path, sm_error *err)
{
    memset(w, 0, sizeof *w);
    w->path = data_path;
    w->err = err;
    w->fd = open(data_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (w->fd < 0) {
        int saved = errno;
        sm_error_set_at(err, SM_ERR_IO, data_path, 0, 0, NULL, "cannot open: %s", strerror(saved));
        sm_error_set_cause(err, saved);
        return SM_ERR_IO;
    }
    return SM_OK;
}

int sm_store_check_header(const char *data_path, sm_error *err)
{
    walker w;
    int status = open_walker(&w, data_path, err);
    if (status != SM_OK)
        return status;
    unsigned char meta_buf[2][META_BYTES];
    status = read_metas(&w, meta_buf);
    close(w.fd);
    return status;
}

int sm_store_verify_file(const char *data_path, sm_error *err)
{
    walker w;
    int status = open_walker(&w, data_path, err);
    if (status != SM_OK)
        return status;
    unsigned char meta_buf[2][META_BYTES];
    status = read_metas(&w, meta_buf);
    if (status != SM_OK)
        goto out;
    w.page = sm_malloc(w.psize);
    w.levels = sm_alloc_array(2 * MAX_DEPTH, w.psize); /* main tree, then a named tree below it */
    w.visited = sm_calloc(w.n_pages / 8 + 1, 1);
    if (w.page == NULL || w.levels == NULL || w.visited == NULL) {
        status = sm_error_set(err, SM_ERR_NOMEM, "out of memory verifying %s", data_path);
        goto out;
    }
    w.visited[0] |= 3; /* the meta pages */
    for (int m = 0; m < 2 && status == SM_OK; m++) {
        const unsigned char *meta = meta_buf[m] + PAGEHDRSZ;
        w.last_pg = u64(meta + META_DBS_OFFSET + 2 * DB_RECORD);
        status = check_db(&w, meta + META_DBS_OFFSET, DB_FREE, (uint64_t)m, 0);
        if (status == SM_OK)
            status = check_db(&w, meta + META_DBS_OFFSET + DB_RECORD, DB_MAIN, (uint64_t)m, 0);
    }
out:
    close(w.fd);
    sm_free(w.page);
    sm_free(w.levels);
    sm_free(w.visited);
    return status;
}
