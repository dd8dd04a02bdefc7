/* SPDX-License-Identifier: MIT */
/*
 * Bulk import in four phases. (1) checksum every file and refuse ones the
 * store has seen; (2) parse and validate rows (import_formats.c), interning
 * customer, item and basket keys into dense ids and collecting fixed-size
 * records, which are radix-sorted and spilled to temporary run files
 * whenever they outgrow the memory budget; (3) in ONE write transaction,
 * merge the runs and write keys, transactions and baskets in key order with
 * MDB_APPEND; (4) commit. A failure, Ctrl-C or kill before the commit leaves
 * the store exactly as it was. MDB_MAP_FULL aborts the transaction, doubles
 * the map outside any transaction, and replays phase 3 from the runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <omp.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/fields.h"
#include "storage/import_internal.h"
#include "storage/sha256.h"
#include "storage/store_internal.h"

/* --- options ----------------------------------------------------------------------------- */

static const char *const format_names[] = {"csv", "online-retail", "cdnow", "fimi", "basket-csv"};

int sm_import_format_parse(const char *name, sm_import_format *out)
{
    for (size_t i = 0; i < SM_ARRAY_LEN(format_names); i++)
        if (name != NULL && strcmp(name, format_names[i]) == 0) {
            *out = (sm_import_format)i;
            return SM_OK;
        }
    return SM_ERR_INVALID_ARG;
}

const char *sm_import_format_name(sm_import_format format)
{
    if ((unsigned)format < SM_ARRAY_LEN(format_names))
        return format_names[format];
    return "unknown";
}

void sm_import_options_init(sm_import_options *o)
{
    memset(o, 0, sizeof *o);
    o->format = SM_FORMAT_CSV;
    o->delimiter = ',';
    o->future = SM_FUTURE_REJECT;
}

#define DEFAULT_BUDGET (UINT64_C(1) << 30)
#define DEFAULT_MAP_MAX (UINT64_C(1) << 40)

/* --- records ----------------------------------------------------------------------------- */

/* One transaction row with a customer, as sorted and spilled. */
typedef struct tx_rec {
    uint32_t customer;
    uint32_t item;
    int64_t time;
    uint64_t line;   /* source << 40 | physical line */
    int64_t amount;
    int32_t quantity;
    uint32_t basket;
    uint16_t flags;
    uint16_t pad[3];
} tx_rec;

/* A basket touched by this import. */
typedef struct basket_head {
    uint32_t id;        /* global basket id */
    uint32_t customer;  /* first customer seen, or SM_CUSTOMER_NONE */
    int64_t time;       /* earliest row, or SM_TIME_NONE */
    uint32_t n_rows;
    uint32_t n_returns;
    uint16_t flags;     /* SM_BASKET_CANCELLED gathered here */
    uint16_t source;
    uint8_t existing;   /* already in the store: merge on write */
} basket_head;

/* --- key dictionaries ------------------------------------------------------------------------- */

typedef struct key_dict {
    char *text;
    size_t text_len, text_cap;
    uint64_t *off;
    uint32_t *len;
    uint32_t *hash;
    uint32_t *value;    /* global id (customers, items) or basket_head index */
    uint8_t *is_new;
    uint64_t *desc_off; /* items: description in text, or UINT64_MAX */
    uint32_t *desc_len;
    uint32_t n, cap;
    uint32_t *new_by_key; /* dict_sort_new: the new entries in key order */
    uint32_t n_new;
    uint64_t *slots;    /* hash << 32 | (local index + 1); 0 = empty */
    uint32_t mask;
    bool with_desc;
} key_dict;

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ (len * UINT64_C(0xff51afd7ed558ccd));
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * UINT64_C(0xbf58476d1ce4e5b9);
        h ^= h >> 31;
        s += 8;
        len -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, len);
    h = (h ^ v) * UINT64_C(0x94d049bb133111eb);
    h ^= h >> 29;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 32;
    return h;
}

static void dict_free(key_dict *d)
{
    sm_free(d->text);
    sm_free(d->off);
    sm_free(d->len);
    sm_free(d->hash);
    sm_free(d->value);
    sm_free(d->is_new);
    sm_free(d->desc_off);
    sm_free(d->desc_len);
    sm_free(d->slots);
    sm_free(d->new_by_key);
    memset(d, 0, sizeof *d);
}

/* Room for `more` bytes after the `len` in use of a byte buffer, doubling
 * its capacity (from `first` bytes). SM_ERR_OVERFLOW or SM_ERR_NOMEM. */
static int reserve_bytes(char **buf, size_t *cap, size_t len, size_t more, size_t first)
{
    size_t need;
    if (!sm_add_size(len, more, &need))
        return SM_ERR_OVERFLOW;
    if (need <= *cap)
        return SM_OK;
    size_t grown = *cap ? *cap : first;
    while (grown < need)
        if (!sm_mul_size(grown, 2, &grown))
            return SM_ERR_OVERFLOW;
    char *p = sm_realloc_array(*buf, grown, 1);
    if (p == NULL)
        return SM_ERR_NOMEM;
    *buf = p;
    *cap = grown;
    return SM_OK;
}

static int dict_reserve_text(key_dict *d, size_t more)
{
    return reserve_bytes(&d->text, &d->text_cap, d->text_len, more, 1 << 16);
}

#define DICT_CAP_MAX (UINT32_C(1) << 30) /* twice as many slots still count in 32 bits */

/* Room for `cap` entries (a power of two above the current capacity). */
static int dict_grow_to(key_dict *d, uint32_t cap)
{
    if (cap > DICT_CAP_MAX)
        return SM_ERR_OVERFLOW;
#define GROW(field)                                                                                \
    do {                                                                                           \
        void *p = sm_realloc_array(d->field, cap, sizeof *d->field);                               \
        if (p == NULL)                                                                             \
            return SM_ERR_NOMEM;                                                                   \
        d->field = p;                                                                              \
    } while (0)
    GROW(off);
    GROW(len);
    GROW(hash);
    GROW(value);
    GROW(is_new);
    if (d->with_desc) {
        GROW(desc_off);
        GROW(desc_len);
    }
#undef GROW
    /* Slots at load <= 1/2; each holds the hash so probing a miss touches
     * no entry arrays. */
    uint32_t nslots = cap * 2;
    uint64_t *slots = sm_calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return SM_ERR_NOMEM;
    d->cap = cap; /* only now: the old slots must keep room for d->cap entries */
    sm_free(d->slots);
    d->slots = slots;
    d->mask = nslots - 1;
    for (uint32_t i = 0; i < d->n; i++) {
        uint32_t s = d->hash[i] & d->mask;
        while (slots[s] != 0)
            s = (s + 1) & d->mask;
        slots[s] = ((uint64_t)d->hash[i] << 32) | (i + 1);
    }
    return SM_OK;
}

static int dict_grow(key_dict *d)
{
    if (d->cap >= DICT_CAP_MAX)
        return SM_ERR_OVERFLOW;
    return dict_grow_to(d, d->cap ? d->cap * 2 : 1024);
}

/* Room for about `n` entries and `text` bytes of keys, so that a large
 * import rehashes and copies nothing; a no-op below the current room. */
static int dict_reserve(key_dict *d, uint64_t n, uint64_t text)
{
    uint32_t cap = d->cap ? d->cap : 1024;
    while (cap < n && cap < DICT_CAP_MAX)
        cap *= 2;
    int rc = cap > d->cap ? dict_grow_to(d, cap) : SM_OK;
    if (rc == SM_OK && text > d->text_len)
        rc = dict_reserve_text(d, (size_t)(text - d->text_len));
    return rc;
}

/* Finds key; on a miss adds it (value unset) and sets *added. */
static int dict_find_or_add(key_dict *d, const char *s, size_t len, uint32_t *local, bool *added)
{
    *added = false;
    if (d->n == d->cap) {
        int rc = dict_grow(d);
        if (rc != SM_OK)
            return rc;
    }
    uint32_t h = (uint32_t)hash_bytes(s, len);
    uint32_t slot = h & d->mask;
    for (;;) {
        uint64_t v = d->slots[slot];
        if (v == 0)
            break;
        uint32_t e = (uint32_t)v - 1;
        if ((uint32_t)(v >> 32) == h && d->len[e] == len && memcmp(d->text + d->off[e], s, len) == 0) {
            *local = e;
            return SM_OK;
        }
        slot = (slot + 1) & d->mask;
    }
    int rc = dict_reserve_text(d, len);
    if (rc != SM_OK)
        return rc;
    uint32_t e = d->n++;
    memcpy(d->text + d->text_len, s, len);
    d->off[e] = d->text_len;
    d->len[e] = (uint32_t)len;
    d->text_len += len;
    d->hash[e] = h;
    d->is_new[e] = 0;
    d->value[e] = 0;
    if (d->with_desc) {
        d->desc_off[e] = UINT64_MAX;
        d->desc_len[e] = 0;
    }
    d->slots[slot] = ((uint64_t)h << 32) | (e + 1);
    *local = e;
    *added = true;
    return SM_OK;
}

static void dict_drop_slots(key_dict *d)
{
    sm_free(d->slots);
    d->slots = NULL;
    d->mask = 0;
}

static int dict_set_description(key_dict *d, uint32_t e, const char *s, size_t len)
{
    if (len > UINT32_MAX)
        return SM_ERR_OVERFLOW;
    int rc = dict_reserve_text(d, len);
    if (rc != SM_OK)
        return rc;
    memcpy(d->text + d->text_len, s, len);
    d->desc_off[e] = d->text_len;
    d->desc_len[e] = (uint32_t)len;
    d->text_len += len;
    return SM_OK;
}

/* LMDB's default key order: memcmp, then shorter first. */
static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, SM_MIN(alen, blen));
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int dict_key_cmp(const void *pa, const void *pb, void *ctx)
{
    const key_dict *d = ctx;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return key_cmp(d->text + d->off[a], d->len[a], d->text + d->off[b], d->len[b]);
}

static int radix_sort_idx(uint64_t *key, uint32_t *idx, size_t n);

/* Lists the entries this import adds in LMDB's key order, for writing
 * them with MDB_APPEND. */
static int dict_sort_new(key_dict *d)
{
    uint32_t n_new = 0;
    for (uint32_t i = 0; i < d->n; i++)
        n_new += d->is_new[i];
    sm_free(d->new_by_key);
    d->new_by_key = sm_alloc_array(n_new ? n_new : 1, sizeof *d->new_by_key);
    if (d->new_by_key == NULL)
        return SM_ERR_NOMEM;
    d->n_new = 0;
    for (uint32_t i = 0; i < d->n; i++)
        if (d->is_new[i])
            d->new_by_key[d->n_new++] = i;
    /* Keys often arrive sorted already (invoice numbers); check first. */
    bool sorted = true;
    for (uint32_t j = 1; j < n_new && sorted; j++)
        sorted = dict_key_cmp(&d->new_by_key[j - 1], &d->new_by_key[j], d) < 0;
    if (sorted)
        return SM_OK;
    /* Radix-sort on the first 8 bytes, zero-padded: keys hold no NUL, so
     * that is memcmp-then-shorter-first order. Only keys sharing all 8
     * bytes still need comparing. Half the time of qsort on 0.5M keys. */
    uint64_t *prefix = sm_alloc_array(n_new, sizeof *prefix);
    if (prefix == NULL)
        return SM_ERR_NOMEM;
    for (uint32_t j = 0; j < n_new; j++) {
        uint32_t e = d->new_by_key[j];
        unsigned char head[8] = {0};
        memcpy(head, d->text + d->off[e], SM_MIN(d->len[e], 8u));
        prefix[j] = be64_get(head);
    }
    int rc = radix_sort_idx(prefix, d->new_by_key, n_new);
    for (uint32_t a = 0, b; rc == SM_OK && a < n_new; a = b) {
        for (b = a + 1; b < n_new && prefix[b] == prefix[a]; b++)
            ;
        if (b - a > 1)
            qsort_r(d->new_by_key + a, b - a, sizeof *d->new_by_key, dict_key_cmp, d);
    }
    sm_free(prefix);
    return rc;
}

/* --- temporary run files ------------------------------------------------------------------ */

typedef struct run_file {
    int fd;
    uint64_t n; /* records */
} run_file;

/* An unnamed file in `dir` (O_TMPFILE), so a killed import leaves nothing. */
static int temp_file(const char *dir, int *fd_out, sm_error *err)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL || errno == ENOENT)) {
        size_t len = strlen(dir) + 32;
        char *name = sm_malloc(len);
        if (name == NULL)
            return sm_error_set(err, SM_ERR_NOMEM, "out of memory");
        snprintf(name, len, "%s/.segmint-tmp-XXXXXX", dir);
        fd = mkstemp(name);
        if (fd >= 0)
            unlink(name);
        sm_free(name);
    }
    if (fd < 0) {
        int saved = errno;
        sm_error_set_at(err, SM_ERR_IO, dir, 0, 0, NULL, "cannot create a temporary file: %s", strerror(saved));
        sm_error_set_cause(err, saved);
        return SM_ERR_IO;
    }
    *fd_out = fd;
    return SM_OK;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* --- batches between the parsing and the consuming side ------------------------------------- */

enum { N_BATCHES = 4, BATCH_ROWS = 8192, BATCH_BYTES = 1 << 20 };
enum { BATCH_FREE = 0, BATCH_READY = 1 };
#define TEXT_ABSENT UINT32_MAX

typedef struct staged_text {
    uint32_t off; /* into the batch arena, or TEXT_ABSENT */
    uint32_t len;
} staged_text;

/* A parsed row (or, for FIMI and basket CSV, a basket) waiting to be interned. */
typedef struct staged {
    staged_text customer, basket, item, description;
    int64_t time;
    int64_t amount;
    int32_t quantity;
    uint16_t flags;
    uint8_t is_basket;
    uint64_t line;
    uint32_t first_item, n_items; /* baskets: their items in batch->items */
} staged;

typedef struct batch {
    _Alignas(64) atomic_int state; /* a line of its own: each side works on another batch */
    size_t current;        /* the source file all its rows come from */
    staged *rows;
    size_t n, cap;
    staged_text *items;
    size_t n_items, cap_items;
    char *arena;
    size_t used, arena_cap;
    char *raw;             /* the file's bytes read while this batch filled, for the checksum */
    size_t raw_len, raw_cap;
} batch;

/* --- the importer ---------------------------------------------------------------------------- */

typedef struct source_state {
    char *path;               /* absolute */
    sm_sha256 digest;         /* of the bytes read so far (consuming side) */
    unsigned char sha[32];
    uint64_t bytes;
    uint64_t rows;
    uint64_t rejected;
    uint32_t index;           /* store-wide source index */
} source_state;

/* The two sides of the pipeline write their own fields on every row. Each
 * group starts a cache line of its own (the importer is 64-byte aligned):
 * sharing one would move the line between the cores row after row. */
struct importer {
    /* set up before the pipeline, read-only while it runs */
    sm_store *store;
    sm_import_options opt;
    sm_error *err;
    sm_import_result *result;
    store_schema schema;
    store_stats before;
    MDB_txn *read_txn;        /* lookups of existing keys during parsing */
    source_state *sources;
    size_t n_sources;
    uint64_t bytes_total;
    uint64_t budget;
    bool pipelined;
    int threads;              /* 1: no OpenMP region is entered */

    /* Parsing and consuming (interning, collecting records) run as a
     * pipeline of batches in input order; see "the pipeline" below. */
    _Alignas(64) atomic_int stop; /* either side failed: the other gives up */
    atomic_int parse_done;
    atomic_uint_fast64_t rows_expected; /* the parsing side's estimate; 0 until known */
    batch batches[N_BATCHES];
    /* sorting beside the writer: how far it got, or that it ran out of memory */
    _Alignas(64) atomic_int sorted;
    atomic_int sort_failed;

    /* the parsing side */
    _Alignas(64) uint64_t rows_read, rejected, blank;
    size_t current;           /* index into sources */
    uint64_t bytes_done_before;
    uint64_t fill_index;
    imp_file file;
    sm_error perr;            /* the parsing side's error record */
    int rejects_fd;
    FILE *rejects;            /* unnamed temporary, linked into the store directory at commit */

    /* the consuming side */
    _Alignas(64) key_dict customers, items, baskets;
    basket_head *heads;
    size_t n_heads, cap_heads;
    uint32_t next_customer, next_item;
    uint64_t next_basket;

    tx_rec *tx;
    size_t n_tx, cap_tx;
    uint64_t *pairs;          /* basket id << 32 | item id */
    size_t n_pairs, cap_pairs;
    run_file *tx_runs, *pair_runs;
    size_t n_tx_runs, n_pair_runs;
    uint64_t total_tx, total_pairs;
    uint32_t *tx_perm;        /* sort order of the in-memory batch */

    /* totals of this import */
    uint64_t rows_stored, without_customer, returns, future;
    uint64_t basket_items_added;
    int64_t total_amount, customer_amount;
    bool has_time;
    int64_t first_time, last_time;

    size_t work_current;      /* index into sources */
    uint64_t take_index;
    bool reserved;            /* the consuming side sized its arrays from rows_expected */
    int consume_status;       /* the consuming side's failure (its error is in err) */
    imp_text *scratch_items;
    size_t scratch_cap;

    /* caches for runs of rows with the same key */
    uint32_t last_customer;   /* local index in the customer dictionary */
    bool have_last_customer;
    uint32_t last_basket;     /* local index in the basket dictionary */
    bool have_last_basket;
    char synth[SM_STORE_KEY_MAX * 2 + 64];

    /* where writing stood when the map filled */
    const char *stage;
    uint32_t reached_source;
    uint64_t reached_line;
};

const sm_import_options *imp_options(const importer *im)
{
    return &im->opt;
}

sm_error *imp_error(importer *im)
{
    return &im->perr;
}

void imp_count_row(importer *im)
{
    im->rows_read++;
}

void imp_count_blank(importer *im, uint64_t n)
{
    im->blank += n;
}

int imp_progress(importer *im, uint64_t bytes_done, uint64_t bytes_total)
{
    (void)bytes_total;
    uint64_t done = im->bytes_done_before + bytes_done;
    if (done > 0 && atomic_load_explicit(&im->rows_expected, memory_order_relaxed) == 0) {
        double expected = (double)im->rows_read * ((double)im->bytes_total / (double)done);
        atomic_store_explicit(&im->rows_expected, (uint64_t)SM_MIN(expected, 1e15) + 1, memory_order_release);
    }
    if (sm_progress_report(&im->opt.progress, "parse", im->bytes_done_before + bytes_done, im->bytes_total))
        return sm_error_set(&im->perr, SM_ERR_CANCELLED, "import cancelled; the store is unchanged");
    if (atomic_load_explicit(&im->stop, memory_order_acquire))
        return SM_ERR_INVALID_STATE; /* the consuming side failed; its error is reported */
    return SM_OK;
}

int imp_reject(importer *im, const char *path, uint64_t line, uint32_t column, const char *field, const char *fmt,
               ...)
{
    sm_error rej;
    sm_error_clear(&rej);
    char msg[SM_ERROR_MSG_MAX - 40]; /* room for the --strict note */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sm_error_set_at(&rej, SM_ERR_PARSE, path, line, column, field, "%s", msg);
    if (im->opt.strict) {
        im->perr = rej;
        snprintf(im->perr.msg, sizeof im->perr.msg, "%s (--strict: nothing was imported)", msg);
        return SM_ERR_PARSE;
    }
    im->rejected++;
    im->sources[im->current].rejected++;
    if (im->opt.on_reject != NULL)
        im->opt.on_reject(im->opt.reject_user, &rej);
    if (im->rejects == NULL) {
        int fd;
        int rc = temp_file(im->store->path, &fd, &im->perr);
        if (rc != SM_OK)
            return rc;
        im->rejects = fdopen(fd, "w+");
        if (im->rejects == NULL) {
            close(fd);
            return sm_error_set_at(&im->perr, SM_ERR_NOMEM, im->store->path, 0, 0, NULL,
                                   "cannot buffer the rejects file");
        }
        im->rejects_fd = fd;
    }
    char text[SM_ERROR_MSG_MAX + SM_ERROR_PATH_MAX + 128];
    sm_error_format(&rej, text, sizeof text);
    if (fprintf(im->rejects, "%s\n", text) < 0) {
        int saved = errno;
        sm_error_set_at(&im->perr, SM_ERR_IO, im->store->path, 0, 0, NULL, "cannot write the rejects file: %s",
                        strerror(saved));
        sm_error_set_cause(&im->perr, saved);
        return SM_ERR_IO;
    }
    return SM_OK;
}

static int nomem(importer *im)
{
    return sm_error_set(im->err, SM_ERR_NOMEM, "out of memory while importing %s",
                        im->n_sources ? im->sources[im->work_current].path : "");
}

/* --- interning --------------------------------------------------------------------------------- */

/* Looks an external key up in a store sub-database (key -> u32 LE id). */
static int lookup_existing(importer *im, int db, const char *s, size_t len, uint32_t *id, bool *found)
{
    *found = false;
    static const int count_of[DB_COUNT] = {[DB_CUSTOMERS] = ST_CUSTOMERS, [DB_ITEMS] = ST_ITEMS,
                                           [DB_BASKET_KEYS] = ST_BASKETS};
    if (im->read_txn == NULL || im->before.v[count_of[db]] == 0)
        return SM_OK; /* nothing to find in an empty key space */
    MDB_val key = {len, (void *)s}, val;
    int rc = mdb_get(im->read_txn, im->store->dbi[db], &key, &val);
    if (rc == MDB_NOTFOUND)
        return SM_OK;
    if (rc != 0)
        return store_fail(im->store, im->err, rc, "looking up an existing key");
    if (val.mv_size != 4)
        return store_corrupt(im->store, im->err, "%s record of %zu bytes", sm_store_db_names[db], val.mv_size);
    *id = le32_get(val.mv_data);
    *found = true;
    return SM_OK;
}

static int intern_customer(importer *im, const imp_text *t, uint32_t *id)
{
    key_dict *d = &im->customers;
    if (im->have_last_customer && t->len == d->len[im->last_customer] &&
        memcmp(t->s, d->text + d->off[im->last_customer], t->len) == 0) {
        *id = d->value[im->last_customer];
        return SM_OK;
    }
    uint32_t local;
    bool added;
    int rc = dict_find_or_add(&im->customers, t->s, t->len, &local, &added);
    if (rc != SM_OK)
        return rc == SM_ERR_NOMEM ? nomem(im) : sm_error_set(im->err, rc, "too many customers");
    if (added) {
        bool found;
        uint32_t existing = 0;
        rc = lookup_existing(im, DB_CUSTOMERS, t->s, t->len, &existing, &found);
        if (rc != SM_OK)
            return rc;
        if (found) {
            if (existing >= im->before.v[ST_CUSTOMERS])
                return store_corrupt(im->store, im->err, "customer id %" PRIu32 " beyond the count", existing);
            im->customers.value[local] = existing;
        } else {
            if (im->next_customer >= SM_CUSTOMER_NONE)
                return sm_error_set(im->err, SM_ERR_OVERFLOW, "more than %u customers", SM_CUSTOMER_NONE - 1);
            im->customers.value[local] = im->next_customer++;
            im->customers.is_new[local] = 1;
        }
    }
    *id = im->customers.value[local];
    im->last_customer = local;
    im->have_last_customer = true;
    return SM_OK;
}

static int intern_item(importer *im, const imp_text *t, const imp_text *description, uint32_t *id)
{
    uint32_t local;
    bool added;
    int rc = dict_find_or_add(&im->items, t->s, t->len, &local, &added);
    if (rc != SM_OK)
        return rc == SM_ERR_NOMEM ? nomem(im) : sm_error_set(im->err, rc, "too many items");
    if (added) {
        bool found;
        uint32_t existing = 0;
        rc = lookup_existing(im, DB_ITEMS, t->s, t->len, &existing, &found);
        if (rc != SM_OK)
            return rc;
        if (found) {
            if (existing >= im->before.v[ST_ITEMS])
                return store_corrupt(im->store, im->err, "item id %" PRIu32 " beyond the count", existing);
            im->items.value[local] = existing;
        } else {
            if (im->next_item >= SM_ITEM_NONE)
                return sm_error_set(im->err, SM_ERR_OVERFLOW, "more than %u items", SM_ITEM_NONE - 1);
            im->items.value[local] = im->next_item++;
            im->items.is_new[local] = 1;
        }
    }
    /* The first non-empty description of a new item is kept. */
    if (description != NULL && description->s != NULL && im->items.is_new[local] &&
        im->items.desc_off[local] == UINT64_MAX) {
        rc = dict_set_description(&im->items, local, description->s, description->len);
        if (rc != SM_OK)
            return rc == SM_ERR_NOMEM ? nomem(im) : sm_error_set(im->err, rc, "descriptions too large");
    }
    *id = im->items.value[local];
    return SM_OK;
}

static int new_head(importer *im, uint32_t *index)
{
    if (im->n_heads == im->cap_heads) {
        size_t cap = im->cap_heads ? im->cap_heads * 2 : 4096;
        basket_head *h = sm_realloc_array(im->heads, cap, sizeof *h);
        if (h == NULL)
            return nomem(im);
        im->heads = h;
        im->cap_heads = cap;
    }
    if (im->n_heads >= UINT32_MAX)
        return sm_error_set(im->err, SM_ERR_OVERFLOW, "more than 2^32 baskets in one import");
    *index = (uint32_t)im->n_heads++;
    basket_head *h = &im->heads[*index];
    memset(h, 0, sizeof *h);
    h->customer = SM_CUSTOMER_NONE;
    h->time = SM_TIME_NONE;
    h->source = (uint16_t)im->sources[im->work_current].index;
    return SM_OK;
}

static int new_basket_id(importer *im, uint32_t *id)
{
    if (im->next_basket >= UINT32_MAX)
        return sm_error_set(im->err, SM_ERR_OVERFLOW, "more than %u baskets", UINT32_MAX - 1);
    *id = (uint32_t)im->next_basket++;
    return SM_OK;
}

/* The basket a row belongs to: its basket key, else (customer, time), else
 * a basket of its own. */
static int intern_basket(importer *im, const imp_row *row, uint32_t *head_index)
{
    const char *s;
    size_t len;
    if (row->basket.s != NULL) {
        s = row->basket.s;
        len = row->basket.len;
    } else if (row->customer.s != NULL) {
        /* 0x1f cannot start a stored key (control characters are refused). */
        int n = snprintf(im->synth, sizeof im->synth, "\x1f%.*s\x1f%" PRId64, (int)row->customer.len,
                         row->customer.s, row->time);
        s = im->synth;
        len = (size_t)n;
    } else {
        int rc = new_head(im, head_index);
        if (rc == SM_OK)
            rc = new_basket_id(im, &im->heads[*head_index].id);
        return rc;
    }
    /* Rows of one basket usually follow each other. */
    if (im->have_last_basket && len == im->baskets.len[im->last_basket] &&
        memcmp(s, im->baskets.text + im->baskets.off[im->last_basket], len) == 0) {
        *head_index = im->baskets.value[im->last_basket];
        return SM_OK;
    }
    uint32_t local;
    bool added;
    int rc = dict_find_or_add(&im->baskets, s, len, &local, &added);
    if (rc != SM_OK)
        return rc == SM_ERR_NOMEM ? nomem(im) : sm_error_set(im->err, rc, "too many baskets");
    im->last_basket = local;
    im->have_last_basket = true;
    if (added) {
        uint32_t h;
        rc = new_head(im, &h);
        if (rc != SM_OK)
            return rc;
        bool found;
        uint32_t existing = 0;
        rc = lookup_existing(im, DB_BASKET_KEYS, s, len, &existing, &found);
        if (rc != SM_OK)
            return rc;
        if (found) {
            if (existing >= im->before.v[ST_BASKETS])
                return store_corrupt(im->store, im->err, "basket id %" PRIu32 " beyond the count", existing);
            im->heads[h].id = existing;
            im->heads[h].existing = 1;
        } else {
            rc = new_basket_id(im, &im->heads[h].id);
            if (rc != SM_OK)
                return rc;
            im->baskets.is_new[local] = 1;
        }
        im->baskets.value[local] = h;
    }
    *head_index = im->baskets.value[local];
    return SM_OK;
}

/* --- collecting records ------------------------------------------------------------------------ */

static int spill(importer *im);

static uint64_t batch_bytes(const importer *im)
{
    /* records plus the sort scratch they will need */
    return (uint64_t)im->n_tx * (sizeof(tx_rec) + 24) + (uint64_t)im->n_pairs * 16;
}

static int push_pair(importer *im, uint32_t basket, uint32_t item)
{
    if (im->n_pairs == im->cap_pairs) {
        size_t cap = im->cap_pairs ? im->cap_pairs * 2 : 1 << 16;
        uint64_t *p = sm_realloc_array(im->pairs, cap, sizeof *p);
        if (p == NULL)
            return nomem(im);
        im->pairs = p;
        im->cap_pairs = cap;
    }
    im->pairs[im->n_pairs++] = ((uint64_t)basket << 32) | item;
    return SM_OK;
}

static int check_budget(importer *im)
{
    if (batch_bytes(im) >= im->budget)
        return spill(im);
    return SM_OK;
}

static int consume_row(importer *im, const imp_row *row)
{
    source_state *src = &im->sources[im->work_current];
    const char *path = src->path;
    uint32_t customer = SM_CUSTOMER_NONE, item = SM_ITEM_NONE, head;
    int rc;
    if (row->line > TX_LINE_MAX)
        return sm_error_set_at(im->err, SM_ERR_OVERFLOW, path, row->line, 0, NULL,
                               "more than 2^40 lines in one file");
    if (row->customer.s != NULL && (rc = intern_customer(im, &row->customer, &customer)) != SM_OK)
        return rc;
    if (row->item.s != NULL && (rc = intern_item(im, &row->item, &row->description, &item)) != SM_OK)
        return rc;
    if ((rc = intern_basket(im, row, &head)) != SM_OK)
        return rc;
    basket_head *h = &im->heads[head];
    h->n_rows++;
    if (row->flags & SM_TX_RETURN)
        h->n_returns++;
    if (row->flags & SM_TX_CANCELLED)
        h->flags |= SM_BASKET_CANCELLED;
    if (h->time == SM_TIME_NONE || row->time < h->time)
        h->time = row->time;
    if (h->customer == SM_CUSTOMER_NONE)
        h->customer = customer;

    if (customer != SM_CUSTOMER_NONE) {
        if (im->n_tx == im->cap_tx) {
            size_t cap = im->cap_tx ? im->cap_tx * 2 : 1 << 16;
            tx_rec *t = sm_realloc_array(im->tx, cap, sizeof *t);
            if (t == NULL)
                return nomem(im);
            im->tx = t;
            im->cap_tx = cap;
        }
        tx_rec *r = &im->tx[im->n_tx++];
        r->customer = customer;
        r->item = item;
        r->time = row->time;
        r->line = tx_line_pack(src->index, row->line);
        r->amount = row->amount;
        r->quantity = row->quantity;
        r->basket = h->id;
        r->flags = row->flags;
        memset(r->pad, 0, sizeof r->pad);
        im->total_tx++;
        if (__builtin_add_overflow(im->customer_amount, row->amount, &im->customer_amount))
            return sm_error_set_at(im->err, SM_ERR_OVERFLOW, path, row->line, 0, NULL,
                                   "the total amount overflows 64 bits");
    } else {
        im->without_customer++;
    }
    if (item != SM_ITEM_NONE && (rc = push_pair(im, h->id, item)) != SM_OK)
        return rc;
    if (__builtin_add_overflow(im->total_amount, row->amount, &im->total_amount))
        return sm_error_set_at(im->err, SM_ERR_OVERFLOW, path, row->line, 0, NULL,
                               "the total amount overflows 64 bits");
    if (!im->has_time || row->time < im->first_time)
        im->first_time = row->time;
    if (!im->has_time || row->time > im->last_time)
        im->last_time = row->time;
    im->has_time = true;
    im->rows_stored++;
    src->rows++;
    if (row->flags & SM_TX_RETURN)
        im->returns++;
    if (row->flags & SM_TX_FUTURE)
        im->future++;
    return check_budget(im);
}

static int consume_basket(importer *im, const imp_text *items, size_t n)
{
    uint32_t head;
    int rc = new_head(im, &head);
    if (rc == SM_OK)
        rc = new_basket_id(im, &im->heads[head].id);
    if (rc != SM_OK)
        return rc;
    im->heads[head].n_rows = 1;
    uint32_t id = im->heads[head].id;
    for (size_t i = 0; i < n; i++) {
        uint32_t item = 0;
        if ((rc = intern_item(im, &items[i], NULL, &item)) != SM_OK)
            return rc;
        if ((rc = push_pair(im, id, item)) != SM_OK)
            return rc;
    }
    im->rows_stored++;
    im->without_customer++;
    im->sources[im->work_current].rows++;
    return check_budget(im);
}

/* --- the pipeline ------------------------------------------------------------------------------
 * The parsing side (the calling thread) fills batches of staged rows; the
 * consuming side interns keys and collects records from them in the same
 * order. With two or more threads they run at once, handing batches over
 * through a ring of N_BATCHES; with one thread each batch is consumed as
 * soon as it is full. Either way the same rows reach consume_row in the same
 * order, so ids and results do not depend on the thread count. */

/* One round of waiting for the other thread: spins briefly, then yields,
 * then sleeps, as the machine may be busy. */
static void back_off(unsigned spin)
{
    if (spin < 256)
        return;
    if (spin < 2048) {
        sched_yield();
        return;
    }
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

/* Waits until *state == want, or until `stop` is set; false when stopped. */
static bool wait_state(atomic_int *state, int want, atomic_int *stop, atomic_int *also_done)
{
    for (unsigned spin = 0;; spin++) {
        if (atomic_load_explicit(state, memory_order_acquire) == want)
            return true;
        if (atomic_load_explicit(stop, memory_order_acquire))
            return false;
        if (also_done != NULL && atomic_load_explicit(also_done, memory_order_acquire) &&
            atomic_load_explicit(state, memory_order_acquire) != want)
            return false;
        back_off(spin);
    }
}

static void batch_free(batch *b)
{
    sm_free(b->rows);
    sm_free(b->items);
    sm_free(b->arena);
    sm_free(b->raw);
}

/* Sizes the records and the key dictionaries that grow with the rows for
 * the whole import, as the rows consumed so far and the parsing side's
 * estimate of all rows predict (plus 10%). Growing them row by row costs a
 * rehash or a copy at every doubling and, where page faults are dear, most
 * of the consuming side's time (README, "Import speed"). Items are left to
 * grow: they are few, and a table sized from the first rows' rate of new
 * items would be too large to stay in cache. */
static int reserve_for_import(importer *im, uint64_t rows_expected)
{
    if (im->rows_stored == 0 || rows_expected <= im->rows_stored || im->n_tx_runs + im->n_pair_runs > 0)
        return SM_OK;
    double scale = 1.1 * (double)rows_expected / (double)im->rows_stored;
#define PREDICT(n) ((uint64_t)SM_MIN((double)(n) * scale, 1e15) + 1)
#define RESERVE(array, cap, want)                                                                  \
    do {                                                                                           \
        size_t want_ = (size_t)(want);                                                             \
        if (want_ > (cap)) {                                                                       \
            void *p_ = sm_realloc_array((array), want_, sizeof *(array));                          \
            if (p_ == NULL)                                                                        \
                return nomem(im);                                                                  \
            (array) = p_;                                                                          \
            (cap) = want_;                                                                         \
        }                                                                                          \
    } while (0)
    /* past the budget records spill, so room beyond it would go unused */
    RESERVE(im->tx, im->cap_tx, SM_MIN(PREDICT(im->n_tx), im->budget / (sizeof(tx_rec) + 24)));
    RESERVE(im->pairs, im->cap_pairs, SM_MIN(PREDICT(im->n_pairs), im->budget / 16));
    RESERVE(im->heads, im->cap_heads, SM_MIN(PREDICT(im->n_heads), UINT32_MAX));
#undef RESERVE
    key_dict *grow[] = {&im->customers, &im->baskets};
    for (size_t i = 0; i < SM_ARRAY_LEN(grow); i++) {
        int rc = dict_reserve(grow[i], PREDICT(grow[i]->n), PREDICT(grow[i]->text_len));
        if (rc != SM_OK)
            return rc == SM_ERR_NOMEM ? nomem(im) : SM_OK; /* past the id space: fails when it is reached */
    }
#undef PREDICT
    return SM_OK;
}

/* Rows of one basket follow each other, but every new basket key probes a
 * table far larger than the cache (a million baskets: 16 MiB of slots), and
 * the consuming side would stall on each probe. Touching the slot of the
 * basket PREFETCH_ROWS rows ahead overlaps those misses. */
enum { PREFETCH_ROWS = 16 };

static void prefetch_basket_slot(const importer *im, const batch *b, size_t i)
{
    const staged *st = &b->rows[i], *prev = &b->rows[i - 1];
    if (st->is_basket || st->basket.off == TEXT_ABSENT || im->baskets.slots == NULL)
        return;
    const char *key = b->arena + st->basket.off;
    if (!prev->is_basket && prev->basket.off != TEXT_ABSENT && prev->basket.len == st->basket.len &&
        memcmp(b->arena + prev->basket.off, key, st->basket.len) == 0)
        return; /* the same basket: its slot is warm */
    uint32_t h = (uint32_t)hash_bytes(key, st->basket.len);
    __builtin_prefetch(&im->baskets.slots[h & im->baskets.mask]);
}

static int consume_batch(importer *im, batch *b)
{
    if (!im->reserved) {
        uint64_t expected = atomic_load_explicit(&im->rows_expected, memory_order_acquire);
        if (expected > 0) {
            im->reserved = true;
            int rc = reserve_for_import(im, expected);
            if (rc != SM_OK)
                return rc;
        }
    }
    if (b->current != im->work_current) {
        im->work_current = b->current;
        im->have_last_customer = false;
        im->have_last_basket = false;
    }
    /* The checksum is taken here, not where the bytes are read: the
     * parsing side is the busier one. Batches come in file order. */
    if (b->raw_len > 0)
        sm_sha256_update(&im->sources[b->current].digest, b->raw, b->raw_len);
    int rc = SM_OK;
    for (size_t i = 0; i < b->n && rc == SM_OK; i++) {
        if (i + PREFETCH_ROWS < b->n)
            prefetch_basket_slot(im, b, i + PREFETCH_ROWS);
        const staged *st = &b->rows[i];
#define TEXT(t) ((imp_text){(t).off == TEXT_ABSENT ? NULL : b->arena + (t).off, (t).len})
        if (st->is_basket) {
            if (st->n_items > im->scratch_cap) {
                imp_text *bigger = sm_realloc_array(im->scratch_items, st->n_items, sizeof *bigger);
                if (bigger == NULL)
                    return nomem(im);
                im->scratch_items = bigger;
                im->scratch_cap = st->n_items;
            }
            for (uint32_t j = 0; j < st->n_items; j++)
                im->scratch_items[j] = TEXT(b->items[st->first_item + j]);
            rc = consume_basket(im, im->scratch_items, st->n_items);
        } else {
            imp_row row = {TEXT(st->customer), TEXT(st->basket), TEXT(st->item), TEXT(st->description),
                           st->time, st->amount, st->quantity, st->flags, st->line};
            rc = consume_row(im, &row);
        }
#undef TEXT
    }
    b->n = b->n_items = b->used = b->raw_len = 0;
    return rc;
}

/* The consuming side's loop (pipelined mode). */
static int consume_all(importer *im)
{
    int rc = SM_OK;
    for (;;) {
        batch *b = &im->batches[im->take_index % N_BATCHES];
        if (!wait_state(&b->state, BATCH_READY, &im->stop, &im->parse_done))
            break;
        rc = consume_batch(im, b);
        atomic_store_explicit(&b->state, BATCH_FREE, memory_order_release);
        im->take_index++;
        if (rc != SM_OK) {
            atomic_store_explicit(&im->stop, 1, memory_order_release);
            break;
        }
    }
    return rc;
}

/* Hands the filling batch over (or consumes it right away without a
 * second thread). */
static int publish(importer *im)
{
    batch *b = &im->batches[im->fill_index % N_BATCHES];
    if (b->n == 0 && b->raw_len == 0)
        return SM_OK;
    if (!im->pipelined) {
        int rc = consume_batch(im, b);
        if (rc != SM_OK) {
            /* the consuming side's error is in im->err */
            im->consume_status = rc;
            atomic_store_explicit(&im->stop, 1, memory_order_release);
            return SM_ERR_INVALID_STATE;
        }
        return SM_OK;
    }
    atomic_store_explicit(&b->state, BATCH_READY, memory_order_release);
    im->fill_index++;
    return SM_OK;
}

/* The batch to fill next, once the consuming side has released it. */
static int filling_batch(importer *im, batch **out)
{
    batch *b = &im->batches[im->fill_index % N_BATCHES];
    if (im->pipelined && !wait_state(&b->state, BATCH_FREE, &im->stop, NULL))
        return SM_ERR_INVALID_STATE;
    bool filled = b->n > 0 || b->raw_len > 0;
    if (filled && (b->current != im->current || b->n == BATCH_ROWS || b->used >= BATCH_BYTES)) {
        int rc = publish(im);
        if (rc != SM_OK)
            return rc;
        return filling_batch(im, out);
    }
    b->current = im->current;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        staged *rows = sm_realloc_array(b->rows, cap, sizeof *rows);
        if (rows == NULL)
            return sm_error_set(&im->perr, SM_ERR_NOMEM, "out of memory staging rows");
        b->rows = rows;
        b->cap = cap;
    }
    *out = b;
    return SM_OK;
}

static int stage_text(importer *im, batch *b, const imp_text *t, staged_text *out)
{
    if (t->s == NULL) {
        out->off = TEXT_ABSENT;
        out->len = 0;
        return SM_OK;
    }
    if (t->len > UINT32_MAX / 4 || b->used + t->len >= TEXT_ABSENT)
        return sm_error_set(&im->perr, SM_ERR_OVERFLOW, "a field of %zu bytes is too long", t->len);
    if (reserve_bytes(&b->arena, &b->arena_cap, b->used, t->len, 1 << 16) != SM_OK)
        return sm_error_set(&im->perr, SM_ERR_NOMEM, "out of memory staging rows");
    memcpy(b->arena + b->used, t->s, t->len);
    out->off = (uint32_t)b->used;
    out->len = (uint32_t)t->len;
    b->used += t->len;
    return SM_OK;
}

int imp_add_row(importer *im, const imp_row *row)
{
    batch *b;
    int rc = filling_batch(im, &b);
    if (rc != SM_OK)
        return rc;
    staged *st = &b->rows[b->n];
    if ((rc = stage_text(im, b, &row->customer, &st->customer)) != SM_OK ||
        (rc = stage_text(im, b, &row->basket, &st->basket)) != SM_OK ||
        (rc = stage_text(im, b, &row->item, &st->item)) != SM_OK ||
        (rc = stage_text(im, b, &row->description, &st->description)) != SM_OK)
        return rc;
    st->time = row->time;
    st->amount = row->amount;
    st->quantity = row->quantity;
    st->flags = row->flags;
    st->is_basket = 0;
    st->line = row->line;
    st->first_item = st->n_items = 0;
    b->n++;
    return SM_OK;
}

int imp_add_bytes(void *user, const char *bytes, size_t len)
{
    importer *im = user;
    batch *b;
    int rc = filling_batch(im, &b);
    if (rc != SM_OK)
        return rc;
    if (reserve_bytes(&b->raw, &b->raw_cap, b->raw_len, len, 1 << 20) != SM_OK)
        return sm_error_set(&im->perr, SM_ERR_NOMEM, "out of memory staging the file's bytes");
    memcpy(b->raw + b->raw_len, bytes, len);
    b->raw_len += len;
    return SM_OK;
}

int imp_add_basket(importer *im, uint64_t line, const imp_text *items, size_t n)
{
    batch *b;
    int rc = filling_batch(im, &b);
    if (rc != SM_OK)
        return rc;
    if (b->n_items + n > b->cap_items) {
        size_t cap = b->cap_items ? b->cap_items : 4096;
        while (cap < b->n_items + n)
            cap *= 2;
        staged_text *bigger = sm_realloc_array(b->items, cap, sizeof *bigger);
        if (bigger == NULL)
            return sm_error_set(&im->perr, SM_ERR_NOMEM, "out of memory staging baskets");
        b->items = bigger;
        b->cap_items = cap;
    }
    staged *st = &b->rows[b->n];
    memset(st, 0, sizeof *st);
    st->is_basket = 1;
    st->line = line;
    st->first_item = (uint32_t)b->n_items;
    st->n_items = (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        if ((rc = stage_text(im, b, &items[i], &b->items[b->n_items + i])) != SM_OK)
            return rc;
    b->n_items += n;
    b->n++;
    return SM_OK;
}

/* --- sorting ------------------------------------------------------------------------------------- */

static bool is_sorted_u64(const uint64_t *key, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (key[i - 1] > key[i])
            return false;
    return true;
}

/* Stable LSD radix sort of (key, idx) by key, 8 bits per pass, skipping
 * passes in which every key has the same digit. Logs grouped by customer
 * in time order arrive sorted: then one pass over them is all. */
static int radix_sort_idx(uint64_t *key, uint32_t *idx, size_t n)
{
    if (n < 2 || is_sorted_u64(key, n))
        return SM_OK;
    uint64_t *k2 = sm_alloc_array(n, sizeof *k2);
    uint32_t *i2 = sm_alloc_array(n, sizeof *i2);
    size_t(*count)[256] = sm_calloc(8, sizeof *count);
    if (k2 == NULL || i2 == NULL || count == NULL) {
        sm_free(k2);
        sm_free(i2);
        sm_free(count);
        return SM_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            count[b][(key[i] >> (8 * b)) & 255]++;
    uint64_t *ks = key, *kd = k2;
    uint32_t *is = idx, *id = i2;
    for (int b = 0; b < 8; b++) {
        if (count[b][(ks[0] >> (8 * b)) & 255] == n)
            continue;
        size_t pos[256], sum = 0;
        for (int d = 0; d < 256; d++) {
            pos[d] = sum;
            sum += count[b][d];
        }
        for (size_t i = 0; i < n; i++) {
            size_t p = pos[(ks[i] >> (8 * b)) & 255]++;
            kd[p] = ks[i];
            id[p] = is[i];
        }
        uint64_t *kt = ks;
        ks = kd;
        kd = kt;
        uint32_t *it = is;
        is = id;
        id = it;
    }
    if (ks != key) {
        memcpy(key, ks, n * sizeof *key);
        memcpy(idx, is, n * sizeof *idx);
    }
    sm_free(k2);
    sm_free(i2);
    sm_free(count);
    return SM_OK;
}

static int radix_sort_u64(uint64_t *key, size_t n)
{
    if (n < 2 || is_sorted_u64(key, n))
        return SM_OK;
    uint64_t *k2 = sm_alloc_array(n, sizeof *k2);
    size_t(*count)[256] = sm_calloc(8, sizeof *count);
    if (k2 == NULL || count == NULL) {
        sm_free(k2);
        sm_free(count);
        return SM_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            count[b][(key[i] >> (8 * b)) & 255]++;
    uint64_t *ks = key, *kd = k2;
    for (int b = 0; b < 8; b++) {
        if (count[b][(ks[0] >> (8 * b)) & 255] == n)
            continue;
        size_t pos[256], sum = 0;
        for (int d = 0; d < 256; d++) {
            pos[d] = sum;
            sum += count[b][d];
        }
        for (size_t i = 0; i < n; i++)
            kd[pos[(ks[i] >> (8 * b)) & 255]++] = ks[i];
        uint64_t *kt = ks;
        ks = kd;
        kd = kt;
    }
    if (ks != key)
        memcpy(key, ks, n * sizeof *key);
    sm_free(k2);
    sm_free(count);
    return SM_OK;
}

static int tx_cmp(const tx_rec *a, const tx_rec *b)
{
    if (a->customer != b->customer)
        return a->customer < b->customer ? -1 : 1;
    if (a->time != b->time)
        return a->time < b->time ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return 0;
}

static int tx_idx_cmp(const void *pa, const void *pb, void *ctx)
{
    const tx_rec *t = ctx;
    return tx_cmp(&t[*(const uint32_t *)pa], &t[*(const uint32_t *)pb]);
}

/* Sorts the in-memory records into im->tx_perm by (customer, time, line).
 * SM_ERR_NOMEM is its only failure, which the caller records (it may run
 * beside the writer). */
static int sort_batch(importer *im)
{
    size_t n = im->n_tx;
    sm_free(im->tx_perm);
    im->tx_perm = sm_alloc_array(n ? n : 1, sizeof *im->tx_perm);
    if (im->tx_perm == NULL)
        return SM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        im->tx_perm[i] = (uint32_t)i;
    if (n < 2)
        return SM_OK;
    int64_t tmin = im->tx[0].time, tmax = im->tx[0].time;
    for (size_t i = 1; i < n; i++) {
        tmin = SM_MIN(tmin, im->tx[i].time);
        tmax = SM_MAX(tmax, im->tx[i].time);
    }
    uint64_t range = (uint64_t)tmax - (uint64_t)tmin;
    if (range <= UINT32_MAX) {
        /* Rows arrive in line order, so a stable sort on (customer, time)
         * is the full (customer, time, line) order. */
        uint64_t *key = sm_alloc_array(n, sizeof *key);
        if (key == NULL)
            return SM_ERR_NOMEM;
        for (size_t i = 0; i < n; i++)
            key[i] = ((uint64_t)im->tx[i].customer << 32) | ((uint64_t)im->tx[i].time - (uint64_t)tmin);
        int rc = radix_sort_idx(key, im->tx_perm, n);
        sm_free(key);
        if (rc != SM_OK)
            return SM_ERR_NOMEM;
    } else {
        qsort_r(im->tx_perm, n, sizeof *im->tx_perm, tx_idx_cmp, im->tx);
    }
    return SM_OK;
}

static size_t sort_pairs(importer *im)
{
    if (radix_sort_u64(im->pairs, im->n_pairs) != SM_OK)
        return SIZE_MAX;
    size_t w = 0;
    for (size_t i = 0; i < im->n_pairs; i++)
        if (w == 0 || im->pairs[i] != im->pairs[w - 1])
            im->pairs[w++] = im->pairs[i];
    im->n_pairs = w;
    return w;
}

static int add_run(run_file **runs, size_t *n, int fd, uint64_t count)
{
    run_file *r = sm_realloc_array(*runs, *n + 1, sizeof **runs);
    if (r == NULL)
        return SM_ERR_NOMEM;
    r[*n].fd = fd;
    r[*n].n = count;
    *runs = r;
    (*n)++;
    return SM_OK;
}

/* Sorts the batch and writes it to two run files, emptying the batch. */
static int spill(importer *im)
{
    const char *dir = im->opt.temp_dir ? im->opt.temp_dir : im->store->path;
    int rc = sort_batch(im);
    if (rc != SM_OK || sort_pairs(im) == SIZE_MAX)
        return nomem(im);
    int fd;
    if (im->n_tx > 0) {
        if ((rc = temp_file(dir, &fd, im->err)) != SM_OK)
            return rc;
        if (add_run(&im->tx_runs, &im->n_tx_runs, fd, im->n_tx) != SM_OK) {
            close(fd);
            return nomem(im);
        }
        enum { CHUNK = 8192 };
        tx_rec *buf = sm_alloc_array(CHUNK, sizeof *buf);
        if (buf == NULL)
            return nomem(im);
        for (size_t i = 0; i < im->n_tx && rc == SM_OK; i += CHUNK) {
            size_t m = SM_MIN((size_t)CHUNK, im->n_tx - i);
            for (size_t j = 0; j < m; j++)
                buf[j] = im->tx[im->tx_perm[i + j]];
            int e = store_write_all(fd, buf, m * sizeof *buf);
            if (e != 0) {
                sm_error_set_at(im->err, SM_ERR_IO, dir, 0, 0, NULL, "cannot write a sorted run: %s", strerror(e));
                sm_error_set_cause(im->err, e);
                rc = SM_ERR_IO;
            }
        }
        sm_free(buf);
        if (rc != SM_OK)
            return rc;
    }
    if (im->n_pairs > 0) {
        if ((rc = temp_file(dir, &fd, im->err)) != SM_OK)
            return rc;
        if (add_run(&im->pair_runs, &im->n_pair_runs, fd, im->n_pairs) != SM_OK) {
            close(fd);
            return nomem(im);
        }
        int e = store_write_all(fd, im->pairs, im->n_pairs * sizeof *im->pairs);
        if (e != 0) {
            sm_error_set_at(im->err, SM_ERR_IO, dir, 0, 0, NULL, "cannot write a sorted run: %s", strerror(e));
            sm_error_set_cause(im->err, e);
            return SM_ERR_IO;
        }
    }
    im->total_pairs += im->n_pairs;
    im->n_tx = 0;
    im->n_pairs = 0;
    sm_free(im->tx_perm);
    im->tx_perm = NULL;
    return SM_OK;
}

/* --- merging sorted streams ------------------------------------------------------------------------ */

enum { STREAM_BUF = 4096 };

typedef struct tx_stream {
    int fd;                 /* -1: the in-memory batch */
    uint64_t n, next;       /* records in the stream, next to deliver */
    tx_rec *buf;
    size_t buf_n, buf_i;
    uint64_t file_pos;
    const tx_rec *mem;
    const uint32_t *perm;
} tx_stream;

typedef struct tx_merge {
    tx_stream *s;
    size_t k;
    const tx_rec **head;    /* current record of each stream, NULL when done */
} tx_merge;

static int tx_stream_advance(tx_stream *s, const tx_rec **out)
{
    if (s->next == s->n) {
        *out = NULL;
        return 0;
    }
    if (s->fd < 0) {
        *out = &s->mem[s->perm[s->next++]];
        return 0;
    }
    if (s->buf_i == s->buf_n) {
        size_t m = (size_t)SM_MIN((uint64_t)STREAM_BUF, s->n - s->next);
        int e = pread_all(s->fd, s->buf, m * sizeof *s->buf, s->file_pos);
        if (e != 0)
            return e;
        s->file_pos += m * sizeof *s->buf;
        s->buf_n = m;
        s->buf_i = 0;
    }
    s->next++;
    *out = &s->buf[s->buf_i++];
    return 0;
}

static void tx_merge_free(tx_merge *m)
{
    if (m->s != NULL)
        for (size_t i = 0; i < m->k; i++)
            sm_free(m->s[i].buf);
    sm_free(m->s);
    sm_free(m->head);
    memset(m, 0, sizeof *m);
}

static int tx_merge_open(importer *im, tx_merge *m)
{
    memset(m, 0, sizeof *m);
    m->k = im->n_tx_runs + 1;
    m->s = sm_calloc(m->k, sizeof *m->s);
    m->head = sm_calloc(m->k, sizeof *m->head);
    if (m->s == NULL || m->head == NULL) {
        tx_merge_free(m);
        return nomem(im);
    }
    for (size_t i = 0; i < m->k; i++) {
        tx_stream *s = &m->s[i];
        if (i < im->n_tx_runs) {
            s->fd = im->tx_runs[i].fd;
            s->n = im->tx_runs[i].n;
            s->buf = sm_alloc_array(STREAM_BUF, sizeof *s->buf);
            if (s->buf == NULL) {
                tx_merge_free(m);
                return nomem(im);
            }
        } else {
            s->fd = -1;
            s->n = im->n_tx;
            s->mem = im->tx;
            s->perm = im->tx_perm;
        }
        int e = tx_stream_advance(s, &m->head[i]);
        if (e != 0) {
            tx_merge_free(m);
            sm_error_set_at(im->err, SM_ERR_IO, im->store->path, 0, 0, NULL, "cannot read a sorted run: %s",
                            strerror(e));
            return SM_ERR_IO;
        }
    }
    return SM_OK;
}

/* Next record in (customer, time, line) order, or NULL at the end. */
static int tx_merge_next(importer *im, tx_merge *m, tx_rec *out, bool *done)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < m->k; i++)
        if (m->head[i] != NULL && (best == SIZE_MAX || tx_cmp(m->head[i], m->head[best]) < 0))
            best = i;
    if (best == SIZE_MAX) {
        *done = true;
        return SM_OK;
    }
    *done = false;
    *out = *m->head[best];
    int e = tx_stream_advance(&m->s[best], &m->head[best]);
    if (e != 0) {
        sm_error_set_at(im->err, SM_ERR_IO, im->store->path, 0, 0, NULL, "cannot read a sorted run: %s", strerror(e));
        return SM_ERR_IO;
    }
    return SM_OK;
}

typedef struct pair_stream {
    int fd;
    uint64_t n, next, file_pos;
    uint64_t *buf;
    size_t buf_n, buf_i;
    const uint64_t *mem;
    bool has;
    uint64_t head;
} pair_stream;

typedef struct pair_merge {
    pair_stream *s;
    size_t k;
    bool have_last;
    uint64_t last;
} pair_merge;

static int pair_stream_advance(pair_stream *s)
{
    if (s->next == s->n) {
        s->has = false;
        return 0;
    }
    if (s->fd < 0) {
        s->head = s->mem[s->next++];
        s->has = true;
        return 0;
    }
    if (s->buf_i == s->buf_n) {
        size_t m = (size_t)SM_MIN((uint64_t)STREAM_BUF, s->n - s->next);
        int e = pread_all(s->fd, s->buf, m * sizeof *s->buf, s->file_pos);
        if (e != 0)
            return e;
        s->file_pos += m * sizeof *s->buf;
        s->buf_n = m;
        s->buf_i = 0;
    }
    s->next++;
    s->head = s->buf[s->buf_i++];
    s->has = true;
    return 0;
}

static void pair_merge_free(pair_merge *m)
{
    if (m->s != NULL)
        for (size_t i = 0; i < m->k; i++)
            sm_free(m->s[i].buf);
    sm_free(m->s);
    memset(m, 0, sizeof *m);
}

static int pair_merge_open(importer *im, pair_merge *m)
{
    memset(m, 0, sizeof *m);
    m->k = im->n_pair_runs + 1;
    m->s = sm_calloc(m->k, sizeof *m->s);
    if (m->s == NULL)
        return nomem(im);
    for (size_t i = 0; i < m->k; i++) {
        pair_stream *s = &m->s[i];
        if (i < im->n_pair_runs) {
            s->fd = im->pair_runs[i].fd;
            s->n = im->pair_runs[i].n;
            s->buf = sm_alloc_array(STREAM_BUF, sizeof *s->buf);
            if (s->buf == NULL) {
                pair_merge_free(m);
                return nomem(im);
            }
        } else {
            s->fd = -1;
            s->n = im->n_pairs;
            s->mem = im->pairs;
        }
        int e = pair_stream_advance(s);
        if (e != 0) {
            pair_merge_free(m);
            sm_error_set_at(im->err, SM_ERR_IO, im->store->path, 0, 0, NULL, "cannot read a sorted run: %s",
                            strerror(e));
            return SM_ERR_IO;
        }
    }
    return SM_OK;
}

/* Smallest pending pair without consuming it; false at the end. */
static bool pair_merge_peek(pair_merge *m, uint64_t *out, size_t *which)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < m->k; i++)
        if (m->s[i].has && (best == SIZE_MAX || m->s[i].head < m->s[best].head))
            best = i;
    if (best == SIZE_MAX)
        return false;
    *out = m->s[best].head;
    *which = best;
    return true;
}

/* --- writing ---------------------------------------------------------------------------------------- */

enum { MAP_FULL_STATUS = 1 };

/* Sorted puts into one database: MDB_APPEND from the first key beyond the
 * database's last key on (the input is sorted), plain puts before it. */
typedef struct sorted_putter {
    MDB_cursor *cursor;
    bool appending;
    unsigned char last[600];
    size_t last_len;
} sorted_putter;

static int sorted_put_open(importer *im, MDB_txn *txn, int db, sorted_putter *sp)
{
    memset(sp, 0, sizeof *sp);
    int rc = mdb_cursor_open(txn, im->store->dbi[db], &sp->cursor);
    if (rc != 0)
        return store_fail(im->store, im->err, rc, "opening a cursor");
    MDB_val k, v;
    rc = mdb_cursor_get(sp->cursor, &k, &v, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        sp->appending = true;
        return SM_OK;
    }
    if (rc != 0) {
        mdb_cursor_close(sp->cursor);
        sp->cursor = NULL;
        return store_fail(im->store, im->err, rc, "reading the last key");
    }
    if (k.mv_size > sizeof sp->last) {
        mdb_cursor_close(sp->cursor);
        sp->cursor = NULL;
        return store_corrupt(im->store, im->err, "a %s key of %zu bytes", sm_store_db_names[db], k.mv_size);
    }
    memcpy(sp->last, k.mv_data, k.mv_size);
    sp->last_len = k.mv_size;
    return SM_OK;
}

static void sorted_put_close(sorted_putter *sp)
{
    if (sp->cursor != NULL)
        mdb_cursor_close(sp->cursor);
    sp->cursor = NULL;
}

static int put_rc(importer *im, int rc, const char *what)
{
    if (rc == 0)
        return SM_OK;
    if (rc == MDB_MAP_FULL)
        return MAP_FULL_STATUS;
    return store_fail(im->store, im->err, rc, what);
}

static int sorted_put(importer *im, sorted_putter *sp, const void *key, size_t klen, const void *val, size_t vlen,
                      const char *what)
{
    if (!sp->appending && key_cmp(key, klen, sp->last, sp->last_len) > 0)
        sp->appending = true;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_cursor_put(sp->cursor, &k, &v, sp->appending ? MDB_APPEND : MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return store_corrupt(im->store, im->err, "%s: a key written by this import already exists", what);
    return put_rc(im, rc, what);
}

/* Writes the new entries (dict_sort_new ran) in id order, which is the
 * order they were first seen, and in key order. */
static int write_keys(importer *im, MDB_txn *txn, key_dict *d, int by_key_db, int by_id_db, bool baskets)
{
    if (d->n_new == 0)
        return SM_OK;
    unsigned char *buf = NULL;
    int status = SM_OK;
    sorted_putter sp;
    if (by_id_db >= 0) {
        size_t cap = 1024;
        buf = sm_malloc(cap);
        if (buf == NULL)
            return nomem(im);
        status = sorted_put_open(im, txn, by_id_db, &sp);
        for (uint32_t e = 0; e < d->n && status == SM_OK; e++) {
            if (!d->is_new[e])
                continue;
            unsigned char key[4];
            be32_put(key, d->value[e]);
            size_t len = d->len[e], vlen = len;
            const void *val = d->text + d->off[e];
            if (d->with_desc) {
                /* item_keys value: key_len u16 | key | description */
                size_t dlen = d->desc_off[e] == UINT64_MAX ? 0 : d->desc_len[e];
                vlen = 2 + len + dlen;
                if (vlen > cap) {
                    unsigned char *bigger = sm_realloc_array(buf, vlen, 1);
                    if (bigger == NULL) {
                        status = nomem(im);
                        break;
                    }
                    buf = bigger;
                    cap = vlen;
                }
                le16_put(buf, (uint16_t)len);
                memcpy(buf + 2, d->text + d->off[e], len);
                if (dlen)
                    memcpy(buf + 2 + len, d->text + d->desc_off[e], dlen);
                val = buf;
            }
            status = sorted_put(im, &sp, key, 4, val, vlen, sm_store_db_names[by_id_db]);
        }
        sorted_put_close(&sp);
    }
    if (status == SM_OK) {
        status = sorted_put_open(im, txn, by_key_db, &sp);
        for (uint32_t j = 0; j < d->n_new && status == SM_OK; j++) {
            uint32_t e = d->new_by_key[j];
            unsigned char val[4];
            le32_put(val, baskets ? im->heads[d->value[e]].id : d->value[e]);
            status = sorted_put(im, &sp, d->text + d->off[e], d->len[e], val, 4, sm_store_db_names[by_key_db]);
        }
        sorted_put_close(&sp);
    }
    sm_free(buf);
    return status;
}

static int write_tx(importer *im, MDB_txn *txn)
{
    tx_merge m;
    int status = tx_merge_open(im, &m);
    if (status != SM_OK)
        return status;
    sorted_putter sp;
    status = sorted_put_open(im, txn, DB_TX, &sp);
    uint64_t done = 0;
    while (status == SM_OK) {
        tx_rec r;
        bool end;
        status = tx_merge_next(im, &m, &r, &end);
        if (status != SM_OK || end)
            break;
        unsigned char key[TX_KEY_BYTES], val[TX_VALUE_BYTES];
        be32_put(key, r.customer);
        time_key_put(key + 4, r.time);
        be64_put(key + 12, r.line);
        le64_put(val, (uint64_t)r.amount);
        le32_put(val + 8, (uint32_t)r.quantity);
        le32_put(val + 12, r.item);
        le32_put(val + 16, r.basket);
        le16_put(val + 20, r.flags);
        le16_put(val + 22, 0);
        im->reached_source = (uint32_t)(r.line >> TX_LINE_BITS);
        im->reached_line = r.line & TX_LINE_MAX;
        status = sorted_put(im, &sp, key, sizeof key, val, sizeof val, "writing tx");
        if (status == SM_OK && ++done % 65536 == 0 &&
            sm_progress_report(&im->opt.progress, "write", done, im->total_tx))
            status = sm_error_set(im->err, SM_ERR_CANCELLED, "import cancelled; the store is unchanged");
    }
    sorted_put_close(&sp);
    tx_merge_free(&m);
    return status;
}

/* Decodes a stored basket to merge rows into it. */
static int read_basket(importer *im, MDB_txn *txn, uint32_t id, basket_head *h, const uint32_t **items,
                       uint32_t *n_items)
{
    unsigned char key[4];
    be32_put(key, id);
    MDB_val k = {4, key}, v;
    int rc = mdb_get(txn, im->store->dbi[DB_BASKETS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return store_corrupt(im->store, im->err, "basket %" PRIu32 " has a key but no record", id);
    if (rc != 0)
        return store_fail(im->store, im->err, rc, "reading a basket");
    const unsigned char *p = v.mv_data;
    if (v.mv_size < BASKET_HEADER_BYTES || (v.mv_size - BASKET_HEADER_BYTES) % 4 != 0 ||
        le32_get(p + 20) != (v.mv_size - BASKET_HEADER_BYTES) / 4)
        return store_corrupt(im->store, im->err, "basket %" PRIu32 " record of %zu bytes", id, v.mv_size);
    h->customer = le32_get(p);
    h->flags = le16_get(p + 4);
    h->source = le16_get(p + 6);
    h->time = (int64_t)le64_get(p + 8);
    h->n_rows = le32_get(p + 16);
    *n_items = le32_get(p + 20);
    *items = (const uint32_t *)(p + BASKET_HEADER_BYTES); /* LMDB values are 2-byte aligned: read with le32_get */
    return SM_OK;
}

static int write_baskets(importer *im, MDB_txn *txn)
{
    /* Heads in global id order: touched existing baskets (sorted), then the
     * new ones, whose ids were handed out in head order. */
    size_t n = im->n_heads, n_existing = 0;
    uint32_t *order = sm_alloc_array(n ? n : 1, sizeof *order);
    uint32_t *items = NULL;
    unsigned char *buf = NULL;
    size_t items_cap = 0, buf_cap = 0;
    if (order == NULL)
        return nomem(im);
    for (size_t i = 0; i < n; i++)
        if (im->heads[i].existing)
            order[n_existing++] = (uint32_t)i;
    for (size_t a = 1; a < n_existing; a++) { /* insertion sort: appends touch few old baskets */
        uint32_t v = order[a];
        size_t b = a;
        while (b > 0 && im->heads[order[b - 1]].id > im->heads[v].id) {
            order[b] = order[b - 1];
            b--;
        }
        order[b] = v;
    }
    size_t w = n_existing;
    for (size_t i = 0; i < n; i++)
        if (!im->heads[i].existing)
            order[w++] = (uint32_t)i;
    pair_merge m;
    int status = pair_merge_open(im, &m);
    if (status != SM_OK) {
        sm_free(order);
        return status;
    }
    sorted_putter sp;
    status = sorted_put_open(im, txn, DB_BASKETS, &sp);
    im->basket_items_added = 0;
    for (size_t j = 0; j < n && status == SM_OK; j++) {
        basket_head h = im->heads[order[j]];
        size_t n_items = 0;
        uint64_t pair;
        size_t which;
        /* this basket's new items, distinct and ascending */
        while (pair_merge_peek(&m, &pair, &which) && (uint32_t)(pair >> 32) <= h.id) {
            if ((uint32_t)(pair >> 32) == h.id && (n_items == 0 || items[n_items - 1] != (uint32_t)pair)) {
                if (n_items == items_cap) {
                    size_t cap = items_cap ? items_cap * 2 : 256;
                    uint32_t *bigger = sm_realloc_array(items, cap, sizeof *items);
                    if (bigger == NULL) {
                        status = nomem(im);
                        break;
                    }
                    items = bigger;
                    items_cap = cap;
                }
                items[n_items++] = (uint32_t)pair;
            }
            int e = pair_stream_advance(&m.s[which]);
            if (e != 0) {
                status = sm_error_set_at(im->err, SM_ERR_IO, im->store->path, 0, 0, NULL,
                                         "cannot read a sorted run: %s", strerror(e));
                break;
            }
        }
        if (status != SM_OK)
            break;
        uint16_t flags = h.flags;
        if (h.n_returns > 0)
            flags |= SM_BASKET_HAS_RETURNS;
        if (h.n_returns == h.n_rows && h.n_rows > 0)
            flags |= SM_BASKET_RETURN;
        uint32_t n_rows = h.n_rows, customer = h.customer;
        int64_t t = h.time;
        uint16_t source = h.source;
        size_t total = n_items;
        const uint32_t *old = NULL;
        uint32_t n_old = 0;
        if (h.existing) {
            basket_head prev;
            memset(&prev, 0, sizeof prev);
            status = read_basket(im, txn, h.id, &prev, &old, &n_old);
            if (status != SM_OK)
                break;
            /* RETURN holds only if it held before and holds for the new rows */
            flags = (uint16_t)((flags | prev.flags) & ~SM_BASKET_RETURN);
            if ((prev.flags & SM_BASKET_RETURN) && h.n_returns == h.n_rows)
                flags |= SM_BASKET_RETURN;
            n_rows += prev.n_rows;
            if (prev.customer != SM_CUSTOMER_NONE)
                customer = prev.customer;
            if (prev.time != SM_TIME_NONE && (t == SM_TIME_NONE || prev.time < t))
                t = prev.time;
            source = prev.source;
            total += n_old;
        }
        size_t need = BASKET_HEADER_BYTES + 4 * total;
        if (need > buf_cap) {
            unsigned char *bigger = sm_realloc_array(buf, need, 1);
            if (bigger == NULL) {
                status = nomem(im);
                break;
            }
            buf = bigger;
            buf_cap = need;
        }
        /* merge old (LE in the map) and new item lists */
        size_t a = 0, b = 0, out = 0;
        unsigned char *dst = buf + BASKET_HEADER_BYTES;
        const unsigned char *oldp = (const unsigned char *)old;
        while (a < n_old || b < n_items) {
            uint32_t x = a < n_old ? le32_get(oldp + 4 * a) : UINT32_MAX;
            uint32_t y = b < n_items ? items[b] : UINT32_MAX;
            uint32_t v;
            if (a < n_old && (b >= n_items || x <= y)) {
                v = x;
                a++;
                if (b < n_items && y == x)
                    b++;
            } else {
                v = y;
                b++;
            }
            le32_put(dst + 4 * out++, v);
        }
        im->basket_items_added += out - n_old;
        le32_put(buf, customer);
        le16_put(buf + 4, flags);
        le16_put(buf + 6, source);
        le64_put(buf + 8, (uint64_t)t);
        le32_put(buf + 16, n_rows);
        le32_put(buf + 20, (uint32_t)out);
        unsigned char key[4];
        be32_put(key, h.id);
        if (h.existing) {
            MDB_val k = {4, key}, v = {BASKET_HEADER_BYTES + 4 * out, buf};
            status = put_rc(im, mdb_cursor_put(sp.cursor, &k, &v, 0), "writing a basket");
        } else {
            status = sorted_put(im, &sp, key, 4, buf, BASKET_HEADER_BYTES + 4 * out, "writing baskets");
        }
        if (status == SM_OK && (j + 1) % 65536 == 0 &&
            sm_progress_report(&im->opt.progress, "write baskets", j + 1, n))
            status = sm_error_set(im->err, SM_ERR_CANCELLED, "import cancelled; the store is unchanged");
    }
    sorted_put_close(&sp);
    pair_merge_free(&m);
    sm_free(order);
    sm_free(items);
    sm_free(buf);
    return status;
}

static int put_meta(importer *im, MDB_txn *txn, const void *key, size_t klen, const void *val, size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    return put_rc(im, mdb_put(txn, im->store->dbi[DB_META], &k, &v, 0), "writing the meta record");
}

static int write_meta(importer *im, MDB_txn *txn, const char *rejects_path)
{
    store_stats s = im->before;
    s.v[ST_ROWS] += im->rows_stored;
    s.v[ST_REJECTED] += im->rejected;
    s.v[ST_TX_ROWS] += im->total_tx;
    s.v[ST_ROWS_WITHOUT_CUSTOMER] += im->without_customer;
    s.v[ST_RETURNS] += im->returns;
    s.v[ST_FUTURE_ROWS] += im->future;
    s.v[ST_CUSTOMERS] = im->next_customer;
    s.v[ST_ITEMS] = im->next_item;
    s.v[ST_BASKETS] = im->next_basket;
    s.v[ST_BASKET_ITEMS] += im->basket_items_added;
    if (im->has_time) {
        bool had = (s.v[ST_FLAGS] & ST_FLAG_HAS_TIME) != 0;
        if (!had || im->first_time < (int64_t)s.v[ST_FIRST_TIME])
            s.v[ST_FIRST_TIME] = (uint64_t)im->first_time;
        if (!had || im->last_time > (int64_t)s.v[ST_LAST_TIME])
            s.v[ST_LAST_TIME] = (uint64_t)im->last_time;
        s.v[ST_FLAGS] |= ST_FLAG_HAS_TIME;
    }
    int64_t total = (int64_t)s.v[ST_TOTAL_AMOUNT], customer_total = (int64_t)s.v[ST_CUSTOMER_AMOUNT];
    if (__builtin_add_overflow(total, im->total_amount, &total) ||
        __builtin_add_overflow(customer_total, im->customer_amount, &customer_total))
        return sm_error_set(im->err, SM_ERR_OVERFLOW, "the store's total amount overflows 64 bits");
    s.v[ST_TOTAL_AMOUNT] = (uint64_t)total;
    s.v[ST_CUSTOMER_AMOUNT] = (uint64_t)customer_total;
    s.v[ST_SOURCES] += im->n_sources;
    s.v[ST_IMPORTS] += 1;
    int status = store_write_stats(im->store, txn, &s, im->err);
    if (status == SM_OK)
        status = store_write_schema(im->store, txn, &im->schema, im->err);
    size_t rejects_len = strlen(rejects_path);
    for (size_t i = 0; i < im->n_sources && status == SM_OK; i++) {
        source_state *src = &im->sources[i];
        size_t path_len = strlen(src->path);
        size_t len = 80 + path_len + rejects_len;
        unsigned char *rec = sm_malloc(len);
        if (rec == NULL)
            return nomem(im);
        memcpy(rec, src->sha, 32);
        le64_put(rec + 32, src->bytes);
        le64_put(rec + 40, src->rows);
        le64_put(rec + 48, src->rejected);
        le64_put(rec + 56, (uint64_t)(int64_t)time(NULL));
        le32_put(rec + 64, (uint32_t)s.v[ST_IMPORTS]);
        rec[68] = (unsigned char)im->opt.format;
        rec[69] = rec[70] = rec[71] = 0;
        le32_put(rec + 72, 0);
        le16_put(rec + 76, (uint16_t)path_len);
        le16_put(rec + 78, (uint16_t)rejects_len);
        memcpy(rec + 80, src->path, path_len);
        memcpy(rec + 80 + path_len, rejects_path, rejects_len);
        unsigned char key[sizeof SM_META_SOURCE_PREFIX - 1 + 32];
        size_t plen = sizeof SM_META_SOURCE_PREFIX - 1;
        memcpy(key, SM_META_SOURCE_PREFIX, plen);
        be32_put(key + plen, src->index);
        status = put_meta(im, txn, key, plen + 4, rec, len);
        sm_free(rec);
        if (status != SM_OK)
            break;
        plen = sizeof SM_META_SHA_PREFIX - 1;
        memcpy(key, SM_META_SHA_PREFIX, plen);
        memcpy(key + plen, src->sha, 32);
        unsigned char idx[4];
        le32_put(idx, src->index);
        status = put_meta(im, txn, key, plen + 32, idx, 4);
    }
    return status;
}

/* Import-relevant counters must not move between parsing and writing:
 * another process may have imported in the meantime. */
static int check_unchanged(importer *im, MDB_txn *txn)
{
    store_stats now;
    int status = store_read_stats(im->store, txn, &now, im->err);
    if (status != SM_OK)
        return status;
    static const int fields[] = {ST_ROWS, ST_CUSTOMERS, ST_ITEMS, ST_BASKETS, ST_SOURCES, ST_IMPORTS};
    for (size_t i = 0; i < SM_ARRAY_LEN(fields); i++)
        if (now.v[fields[i]] != im->before.v[fields[i]])
            return sm_error_set_at(im->err, SM_ERR_INVALID_STATE, im->store->path, 0, 0, NULL,
                                   "another import into this store committed while this one was parsing; "
                                   "nothing was written: run the import again");
    /* Keep what others changed meanwhile (runs, features). */
    static const int keep[] = {ST_NEXT_RUN, ST_RUNS, ST_FEATURE_SETS};
    for (size_t i = 0; i < SM_ARRAY_LEN(keep); i++)
        im->before.v[keep[i]] = now.v[keep[i]];
    return SM_OK;
}

/* --- sorting while writing ----------------------------------------------------------------------
 * The writer takes the databases one after the other: customer and item
 * keys (sorted by the writer itself: they are few), basket keys,
 * transactions, baskets. With two threads the other one sorts what the
 * writer needs next, in that order, while it writes; then it reads ahead of
 * the writer (store_warm_file). */
enum { SORTED_NOTHING, SORTED_BASKET_KEYS, SORTED_TX, SORTED_PAIRS };

static int sort_for_writing(importer *im)
{
    int rc = dict_sort_new(&im->baskets);
    if (rc == SM_OK) {
        atomic_store_explicit(&im->sorted, SORTED_BASKET_KEYS, memory_order_release);
        rc = sort_batch(im);
    }
    if (rc == SM_OK) {
        atomic_store_explicit(&im->sorted, SORTED_TX, memory_order_release);
        if (sort_pairs(im) == SIZE_MAX)
            rc = SM_ERR_NOMEM;
    }
    if (rc == SM_OK) {
        im->total_pairs += im->n_pairs;
        atomic_store_explicit(&im->sorted, SORTED_PAIRS, memory_order_release);
    } else {
        atomic_store_explicit(&im->sort_failed, 1, memory_order_release);
    }
    return rc;
}

/* The writer's wait for what it writes next. */
static int await_sorted(importer *im, int stage)
{
    for (unsigned spin = 0;; spin++) {
        if (atomic_load_explicit(&im->sorted, memory_order_acquire) >= stage)
            return SM_OK;
        if (atomic_load_explicit(&im->sort_failed, memory_order_acquire))
            return nomem(im);
        back_off(spin);
    }
}

static int write_everything(importer *im, MDB_txn *txn, const char *rejects_path)
{
    int status = check_unchanged(im, txn);
    if (status == SM_OK) {
        im->stage = "customer keys";
        status = write_keys(im, txn, &im->customers, DB_CUSTOMERS, DB_CUSTOMER_KEYS, false);
    }
    if (status == SM_OK) {
        im->stage = "item keys";
        status = write_keys(im, txn, &im->items, DB_ITEMS, DB_ITEM_KEYS, false);
    }
    if (status == SM_OK && (status = await_sorted(im, SORTED_BASKET_KEYS)) == SM_OK) {
        im->stage = "basket keys";
        status = write_keys(im, txn, &im->baskets, DB_BASKET_KEYS, -1, true);
    }
    if (status == SM_OK && (status = await_sorted(im, SORTED_TX)) == SM_OK) {
        im->stage = "transactions";
        status = write_tx(im, txn);
    }
    if (status == SM_OK && (status = await_sorted(im, SORTED_PAIRS)) == SM_OK) {
        im->stage = "baskets";
        status = write_baskets(im, txn);
    }
    if (status == SM_OK) {
        im->stage = "meta records";
        status = write_meta(im, txn, rejects_path);
    }
    return status;
}

/* The bytes this import adds to data.mdb, from LMDB's per-record costs (an
 * 8-byte node header and a 2-byte slot per record) measured on a 1M-row
 * import: 55 bytes per transaction, 46 per basket of two items, 20 per
 * customer in each of its two databases. Pages written in key order with
 * MDB_APPEND are full; records that land between existing ones split pages
 * that end up half full, so an import into a non-empty store counts twice.
 * The map is sized from this, and with SM_STORE_BULK so is the file. */
static uint64_t estimate_bytes(const importer *im)
{
    uint64_t pairs = im->total_pairs + im->n_pairs; /* taken before the sort drops repeats */
    uint64_t est = im->total_tx * 58 + (uint64_t)im->n_heads * 44 + pairs * 4 +
                   ((uint64_t)im->customers.n + im->items.n) * 28 + (uint64_t)im->baskets.n * 14 +
                   (im->customers.text_len + im->items.text_len) * 2 + im->baskets.text_len;
    if (im->before.v[ST_ROWS] > 0 || im->before.v[ST_BASKETS] > 0)
        est *= 2;
    return est + est / 10 + (UINT64_C(4) << 20);
}

static const char *source_path(const importer *im, uint32_t index)
{
    for (size_t i = 0; i < im->n_sources; i++)
        if (im->sources[i].index == index)
            return im->sources[i].path;
    return im->n_sources ? im->sources[im->n_sources - 1].path : "";
}

/* Links the rejects temp file into the store directory under its name. */
static int publish_rejects(importer *im, char *path, size_t cap)
{
    path[0] = '\0';
    if (im->rejects == NULL || im->rejected == 0)
        return SM_OK;
    if (fflush(im->rejects) != 0 || fsync(im->rejects_fd) != 0) {
        int saved = errno;
        sm_error_set_at(im->err, SM_ERR_IO, im->store->path, 0, 0, NULL, "cannot write the rejects file: %s",
                        strerror(saved));
        sm_error_set_cause(im->err, saved);
        return SM_ERR_IO;
    }
    snprintf(path, cap, "%s/rejects-%04" PRIu64 ".txt", im->store->path, im->before.v[ST_IMPORTS] + 1);
    unlink(path); /* an orphan from an import that never committed */
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", im->rejects_fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0) {
        /* Named-temporary fallback: copy the contents. */
        int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        int rc = out < 0 ? errno : 0;
        if (rc == 0) {
            char block[65536];
            off_t pos = 0;
            ssize_t n;
            while ((n = pread(im->rejects_fd, block, sizeof block, pos)) > 0 && rc == 0) {
                rc = store_write_all(out, block, (size_t)n);
                pos += n;
            }
            if (n < 0 && rc == 0)
                rc = errno;
            if (rc == 0 && fsync(out) != 0)
                rc = errno;
            close(out);
        }
        if (rc != 0) {
            sm_error_set_at(im->err, SM_ERR_IO, path, 0, 0, NULL, "cannot create the rejects file: %s", strerror(rc));
            sm_error_set_cause(im->err, rc);
            unlink(path);
            path[0] = '\0';
            return SM_ERR_IO;
        }
    }
    return SM_OK;
}

/* The write transaction, replayed after MDB_MAP_FULL with a map twice as
 * large. */
static int write_with_retries(importer *im, const char *rejects_path)
{
    uint64_t cap = im->opt.map_size_max ? im->opt.map_size_max : DEFAULT_MAP_MAX;
    for (;;) {
        MDB_txn *txn;
        int status = store_write_begin(im->store, &txn, im->err);
        if (status != SM_OK)
            return status;
        status = write_everything(im, txn, rejects_path);
        if (status == SM_OK) {
            if (sm_progress_report(&im->opt.progress, "commit", 0, 1)) {
                store_write_abort(im->store, txn);
                return sm_error_set(im->err, SM_ERR_CANCELLED, "import cancelled; the store is unchanged");
            }
            int rc = mdb_txn_commit(txn);
            pthread_rwlock_unlock(&im->store->resize_lock);
            if (rc == 0)
                return SM_OK;
            status = rc == MDB_MAP_FULL ? MAP_FULL_STATUS : store_fail(im->store, im->err, rc, "commit failed");
        } else {
            store_write_abort(im->store, txn);
        }
        if (status != MAP_FULL_STATUS)
            return status;
        /* MDB_MAP_FULL: the transaction is gone; grow outside it and replay. */
        uint64_t size = store_map_size(im->store);
        if (size >= cap)
            return sm_error_set_at(im->err, SM_ERR_STORAGE, source_path(im, im->reached_source), im->reached_line, 0,
                                   NULL,
                                   "the store's map reached its cap of %" PRIu64 " bytes while writing %s "
                                   "(this row was being stored); raise the cap (--map-max) or free space; the "
                                   "store is unchanged",
                                   cap, im->stage);
        status = store_grow_map(im->store, SM_MIN(size * 2, cap), im->err);
        if (status != SM_OK)
            return status;
        im->result->map_growths++;
    }
}

/* With one thread: everything sorted first, then written. */
static int sort_then_write(importer *im, const char *rejects_path)
{
    return sort_for_writing(im) == SM_OK ? write_with_retries(im, rejects_path) : nomem(im);
}

static int commit_import(importer *im)
{
    char rejects_path[PATH_MAX];
    int status = publish_rejects(im, rejects_path, sizeof rejects_path);
    if (status != SM_OK)
        return status;
    uint64_t cap = im->opt.map_size_max ? im->opt.map_size_max : DEFAULT_MAP_MAX;
    uint64_t from = store_used_bytes(im->store), to = from + estimate_bytes(im);
    if (!im->opt.grow_on_demand && to > store_map_size(im->store))
        status = store_grow_map(im->store, SM_MIN(to, cap), im->err);
    if (status == SM_OK && (dict_sort_new(&im->customers) != SM_OK || dict_sort_new(&im->items) != SM_OK))
        status = nomem(im);
    if (status == SM_OK && im->threads >= 2) {
        /* LMDB writes on this thread alone; the other one sorts what it
         * needs next, then reads the pages it is about to fill into the
         * page cache ahead of it. */
        atomic_int written = 0;
#pragma omp parallel num_threads(2) default(none) shared(im, rejects_path, status, written, from, to)
        {
            if (omp_get_num_threads() < 2) {
                status = sort_then_write(im, rejects_path);
            } else if (omp_get_thread_num() == 0) {
                status = write_with_retries(im, rejects_path);
                atomic_store_explicit(&written, 1, memory_order_release);
            } else if (sort_for_writing(im) == SM_OK) {
                store_warm_file(im->store, from, to, &written);
            }
        }
    } else if (status == SM_OK) {
        /* one thread: no OpenMP region at all (see README on fork) */
        status = sort_then_write(im, rejects_path);
    }
    if (status != SM_OK) {
        if (rejects_path[0] != '\0')
            unlink(rejects_path);
        return status;
    }
    size_t len = strlen(rejects_path);
    if (len >= sizeof im->result->rejects_path)
        len = sizeof im->result->rejects_path - 1; /* PATH_MAX > SM_ERROR_PATH_MAX; the file keeps its name */
    memcpy(im->result->rejects_path, rejects_path, len);
    im->result->rejects_path[len] = '\0';
    return SM_OK;
}

/* --- driver ----------------------------------------------------------------------------------------- */

static int scale_digits_of(uint32_t scale)
{
    int d = 0;
    while (scale > 1) {
        scale /= 10;
        d++;
    }
    return d;
}

/* The parsing side: every file in order, then the last partial batch. */
static int parse_all(importer *im, const char *const *paths, size_t n_paths, int64_t now)
{
    int rc = SM_OK;
    for (size_t i = 0; i < n_paths && rc == SM_OK; i++) {
        im->current = i;
        im->file.path = paths[i];
        im->file.source = im->sources[i].index;
        im->file.scale_digits = scale_digits_of(im->schema.money_scale);
        im->file.now = now;
        rc = imp_parse_file(im, &im->file, im->opt.format);
        im->bytes_done_before += im->sources[i].bytes;
    }
    if (rc == SM_OK)
        rc = publish(im);
    return rc;
}

static void importer_free(importer *im)
{
    for (int i = 0; i < N_BATCHES; i++)
        batch_free(&im->batches[i]);
    sm_free(im->scratch_items);
    dict_free(&im->customers);
    dict_free(&im->items);
    dict_free(&im->baskets);
    sm_free(im->heads);
    sm_free(im->tx);
    sm_free(im->pairs);
    sm_free(im->tx_perm);
    for (size_t i = 0; i < im->n_tx_runs; i++)
        close(im->tx_runs[i].fd);
    for (size_t i = 0; i < im->n_pair_runs; i++)
        close(im->pair_runs[i].fd);
    sm_free(im->tx_runs);
    sm_free(im->pair_runs);
    for (size_t i = 0; i < im->n_sources; i++)
        sm_free(im->sources[i].path);
    sm_free(im->sources);
    if (im->rejects != NULL)
        fclose(im->rejects);
    if (im->read_txn != NULL)
        store_read_end(im->store, im->read_txn);
}

static bool valid_scale(uint32_t s)
{
    return s == 1 || s == 10 || s == 100 || s == 1000 || s == 10000 || s == 100000 || s == 1000000;
}

/* Phase 1: every file readable, regular, and new to the store. */
static int prepare_sources(importer *im, const char *const *paths, size_t n_paths)
{
    im->sources = sm_calloc(n_paths, sizeof *im->sources);
    if (im->sources == NULL)
        return nomem(im);
    im->n_sources = n_paths;
    uint64_t first_index = im->before.v[ST_SOURCES];
    if (first_index + n_paths > UINT16_MAX)
        return sm_error_set(im->err, SM_ERR_OVERFLOW, "a store holds at most %u source files", UINT16_MAX);
    for (size_t i = 0; i < n_paths; i++) {
        source_state *s = &im->sources[i];
        s->index = (uint32_t)(first_index + i);
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            int saved = errno;
            sm_error_set_at(im->err, saved == ENOENT ? SM_ERR_NOT_FOUND : SM_ERR_IO, paths[i], 0, 0, NULL,
                            "cannot open: %s", strerror(saved));
            sm_error_set_cause(im->err, saved);
            return im->err ? im->err->code : SM_ERR_IO;
        }
        if (!S_ISREG(st.st_mode))
            return sm_error_set_at(im->err, SM_ERR_IO, paths[i], 0, 0, NULL,
                                   "is not a regular file (pipes and directories cannot be imported)");
        char *real = realpath(paths[i], NULL);
        if (real == NULL) {
            int saved = errno;
            sm_error_set_at(im->err, SM_ERR_IO, paths[i], 0, 0, NULL, "cannot resolve: %s", strerror(saved));
            return SM_ERR_IO;
        }
        s->path = sm_strdup(real);
        free(real);
        if (s->path == NULL)
            return nomem(im);
        if (strlen(s->path) > UINT16_MAX - 1024)
            return sm_error_set_at(im->err, SM_ERR_INVALID_ARG, paths[i], 0, 0, NULL, "path too long");
        s->bytes = (uint64_t)st.st_size; /* until the checksum counts the bytes read */
        sm_sha256_init(&s->digest);
        im->bytes_total += s->bytes;
    }
    return SM_OK;
}

/* Refuses a file whose checksum the store holds or another file of this
 * import has. The checksum is taken while parsing, of exactly the bytes
 * parsed, so a refusal comes after the parse, and nothing is written. */
static int refuse_seen_sources(importer *im, const char *const *paths)
{
    for (size_t i = 0; i < im->n_sources && !im->opt.force; i++) {
        const source_state *s = &im->sources[i];
        char hex[65];
        sm_sha256_hex(s->sha, hex);
        for (size_t j = 0; j < i; j++)
            if (memcmp(im->sources[j].sha, s->sha, 32) == 0)
                return sm_error_set_at(im->err, SM_ERR_EXISTS, paths[i], 0, 0, NULL,
                                       "has the same contents as %s given before it (sha256 %.16s...); use --force "
                                       "to import both; the store is unchanged",
                                       im->sources[j].path, hex);
        unsigned char key[sizeof SM_META_SHA_PREFIX - 1 + 32];
        size_t plen = sizeof SM_META_SHA_PREFIX - 1;
        memcpy(key, SM_META_SHA_PREFIX, plen);
        memcpy(key + plen, s->sha, 32);
        MDB_val k = {plen + 32, key}, v;
        int rc = mdb_get(im->read_txn, im->store->dbi[DB_META], &k, &v);
        if (rc == 0)
            return sm_error_set_at(im->err, SM_ERR_EXISTS, paths[i], 0, 0, NULL,
                                   "was already imported into this store (same sha256 %.16s...); use --force to "
                                   "import it again; the store is unchanged",
                                   hex);
        if (rc != MDB_NOTFOUND)
            return store_fail(im->store, im->err, rc, "checking earlier imports");
    }
    return SM_OK;
}

int sm_store_import(sm_store *store, const char *const *paths, size_t n_paths, const sm_import_options *options,
                    sm_import_result *result, sm_error *err)
{
    sm_import_result local_result;
    if (result == NULL)
        result = &local_result;
    memset(result, 0, sizeof *result);
    if (store == NULL || options == NULL || (n_paths > 0 && paths == NULL))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "store, paths and options are required");
    if (n_paths == 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "no input files given");
    if (store->read_only)
        return sm_error_set_at(err, SM_ERR_INVALID_STATE, store->path, 0, 0, NULL, "store was opened read-only");
    if ((unsigned)options->format > SM_FORMAT_BASKET_CSV)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "unknown import format %d", (int)options->format);
    if (options->money_scale != 0 && !valid_scale(options->money_scale))
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "money_scale",
                               "%" PRIu32 " is not 1, 10, 100, ... or 1000000", options->money_scale);
    if (options->delimiter == '"' || options->delimiter == '\n' || options->delimiter == '\r')
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, "", 0, 0, "delimiter", "cannot be a quote or a line end");

    importer *im = sm_aligned_alloc(1, sizeof *im);
    if (im == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory starting the import");
    memset(im, 0, sizeof *im);
    sm_error local_err;
    im->err = err != NULL ? err : &local_err;
    im->store = store;
    im->opt = *options;
    im->result = result;
    im->rejects_fd = -1;
    im->budget = options->memory_budget ? options->memory_budget : DEFAULT_BUDGET;
    im->items.with_desc = true;
    int64_t now = options->now ? options->now : (int64_t)time(NULL);

    int status = SM_OK;
    if (options->map_size != 0)
        status = store_set_map(store, options->map_size, im->err);
    if (status == SM_OK)
        status = store_read_begin(store, &im->read_txn, im->err);
    if (status == SM_OK)
        status = store_read_schema(store, im->read_txn, &im->schema, im->err);
    if (status == SM_OK)
        status = store_read_stats(store, im->read_txn, &im->before, im->err);
    if (status == SM_OK && options->money_scale != 0 && options->money_scale != im->schema.money_scale) {
        if (im->before.v[ST_ROWS] == 0)
            im->schema.money_scale = options->money_scale;
        else
            status = sm_error_set_at(im->err, SM_ERR_INVALID_ARG, store->path, 0, 0, "money_scale",
                                     "the store keeps amounts at scale %" PRIu32 " (minor units per unit); it cannot "
                                     "take an import at scale %" PRIu32,
                                     im->schema.money_scale, options->money_scale);
    }
    if (status == SM_OK) {
        im->next_customer = (uint32_t)im->before.v[ST_CUSTOMERS];
        im->next_item = (uint32_t)im->before.v[ST_ITEMS];
        im->next_basket = im->before.v[ST_BASKETS];
        status = prepare_sources(im, paths, n_paths);
    }
    if (status == SM_OK) {
        im->threads = options->n_threads > 0 ? options->n_threads : omp_get_max_threads();
        im->pipelined = im->threads >= 2;
        int parse_status = SM_OK, consume_status = SM_OK;
        if (im->pipelined) {
#pragma omp parallel num_threads(2) default(none) shared(im, paths, n_paths, now, parse_status, consume_status)
            {
                /* thread 0 is the caller: callbacks stay on its thread */
                if (omp_get_thread_num() == 0) {
                    if (omp_get_num_threads() < 2)
                        im->pipelined = false;
                    parse_status = parse_all(im, paths, n_paths, now);
                    if (parse_status != SM_OK) /* nothing more will be written: stop consuming */
                        atomic_store_explicit(&im->stop, 1, memory_order_release);
                    atomic_store_explicit(&im->parse_done, 1, memory_order_release);
                } else {
                    consume_status = consume_all(im);
                }
            }
        } else {
            parse_status = parse_all(im, paths, n_paths, now);
        }
        if (consume_status == SM_OK)
            consume_status = im->consume_status;
        if (consume_status != SM_OK) {
            status = consume_status; /* im->err holds it */
        } else if (parse_status != SM_OK) {
            status = parse_status;
            if (err != NULL)
                *err = im->perr;
        }
    }
    for (size_t i = 0; i < im->n_sources && status == SM_OK; i++) {
        im->sources[i].bytes = im->sources[i].digest.bytes;
        sm_sha256_final(&im->sources[i].digest, im->sources[i].sha);
    }
    if (status == SM_OK)
        status = refuse_seen_sources(im, paths);
    if (im->read_txn != NULL) {
        store_read_end(store, im->read_txn);
        im->read_txn = NULL;
    }
    /* Every key is interned: the hash slots (16 bytes per basket) go back
     * now, and the page cache that LMDB's pages will fill can reuse them. */
    dict_drop_slots(&im->customers);
    dict_drop_slots(&im->items);
    dict_drop_slots(&im->baskets);
    if (status == SM_OK && sm_progress_report(&im->opt.progress, "sort", 0, 1))
        status = sm_error_set(im->err, SM_ERR_CANCELLED, "import cancelled; the store is unchanged");
    result->rows_read = im->rows_read;
    result->rejected = im->rejected;
    if (status == SM_OK)
        status = commit_import(im);
    if (status == SM_OK) {
        result->rows_stored = im->rows_stored;
        result->rows_without_customer = im->without_customer;
        result->returns = im->returns;
        result->future_rows = im->future;
        result->blank_lines = im->blank;
        result->new_customers = im->next_customer - (uint32_t)im->before.v[ST_CUSTOMERS];
        result->new_items = im->next_item - (uint32_t)im->before.v[ST_ITEMS];
        result->new_baskets = im->next_basket - im->before.v[ST_BASKETS];
        result->import_id = (uint32_t)im->before.v[ST_IMPORTS] + 1;
        result->spilled_runs = (uint32_t)(im->n_tx_runs + im->n_pair_runs);
    }
    result->map_size = store_map_size(store);
    importer_free(im);
    sm_free(im);
    return status;
}
