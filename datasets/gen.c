/* SPDX-License-Identifier: MIT */
/*
 * Synthetic transaction logs (see gen.h for the story). Customer i draws
 * every random number from Philox stream i, so a customer's rows depend on
 * (seed, i) alone; blocks of customers are rendered in parallel into
 * private buffers and written in block order, a few blocks at a time, which
 * keeps memory bounded and the bytes independent of the thread count.
 */
#include "datasets/gen.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/core.h"
#include "kernels/rng.h"
#include "storage/fields.h"

enum {
    CUSTOMERS_PER_BLOCK = 1024,
    MAX_INVOICES_PER_CUSTOMER = 9000,
    MAX_LINES_PER_INVOICE = 40,
    CATALOG_STREAM_BASE = 0x7FFFFFFF, /* streams past any customer index */
};

static const char *const segment_names[SM_GEN_SEGMENTS] = {"champions", "loyal", "occasional", "new",
                                                           "lapsing"};

/* How each planted segment behaves. Rates are per day. */
typedef struct segment_profile {
    double share;              /* of all customers */
    double acquire_from, acquire_to; /* acquisition window, fraction of the log */
    double purchase_every;     /* mean days between purchases while active */
    double dropout;            /* chance of leaving after each purchase */
    double extra_lines;        /* lines per invoice = 1 + Poisson(extra_lines) */
    double extra_quantity;     /* quantity per line = 1 + Poisson(extra_quantity) */
    double return_rate;        /* share of lines returned later */
    double active_days_min, active_days_max; /* forced churn after this long; 0 = none */
} segment_profile;

static const segment_profile profiles[SM_GEN_SEGMENTS] = {
    /* champions: frequent, big baskets, from early on, still active */
    {0.08, 0.00, 0.35, 30.0, 0.010, 1.3, 3.0, 0.02, 0, 0},
    /* loyal: regular, medium baskets */
    {0.20, 0.00, 0.60, 60.0, 0.020, 0.9, 1.5, 0.03, 0, 0},
    /* occasional: rare, small */
    {0.37, 0.00, 0.80, 170.0, 0.080, 0.4, 0.4, 0.04, 0, 0},
    /* new: arrived in the last weeks */
    {0.15, -1.0, 1.00, 28.0, 0.040, 0.6, 0.8, 0.03, 0, 0},
    /* lapsing: bought often early, then stopped */
    {0.20, 0.00, 0.40, 28.0, 0.030, 0.7, 1.2, 0.07, 60, 200},
};

typedef struct planted_rule {
    uint32_t antecedent;
    uint32_t consequent;
    double probability; /* P(consequent added | antecedent in basket) */
} planted_rule;

typedef struct catalog {
    uint32_t n_items;
    double *zipf_cdf;       /* cumulative popularity of item ids 0..n-1 (0 most popular) */
    uint32_t *price_cents;
    planted_rule rules[SM_GEN_RULES];
    int32_t *rule_of_item;  /* index into rules for an antecedent item, -1 if none */
    uint32_t *expensive;    /* the top 5% by price, for planted huge orders */
    uint32_t n_expensive;
} catalog;

typedef struct line {
    int64_t time;      /* UTC seconds */
    uint64_t invoice;
    uint32_t item;
    int32_t quantity;  /* negative on return lines */
} line;

typedef struct block_buffer {
    char *text;
    size_t len, cap;
    char *truth;
    size_t truth_len, truth_cap;
    line *lines;       /* scratch for one customer */
    size_t lines_cap;
    sm_gen_summary summary;
    int status;
} block_buffer;

void sm_gen_params_init(sm_gen_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_customers = 10000;
    p->seed = 1;
    p->n_items = 2000;
    p->start_time = 1672531200; /* 2023-01-01T00:00:00Z */
    p->days = 730;
    p->anomaly_rate = 0.005;
}

int sm_gen_params_check(const sm_gen_params *p, sm_error *err)
{
    if (p->n_customers < 1 || p->n_customers > (uint64_t)1 << 31)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "customers=%" PRIu64 " must be in [1, 2^31]", p->n_customers);
    if (p->n_items < 100 || p->n_items > 10000000)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "items=%" PRIu32 " must be in [100, 10^7]", p->n_items);
    if (p->days < 30 || p->days > 36500)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "days=%" PRIu32 " must be in [30, 36500]", p->days);
    if (!(p->anomaly_rate >= 0.0 && p->anomaly_rate <= 0.2))
        return sm_error_set(err, SM_ERR_INVALID_ARG, "anomaly rate %g must be in [0, 0.2]", p->anomaly_rate);
    if (p->n_threads < 0)
        return sm_error_set(err, SM_ERR_INVALID_ARG, "threads=%d must be >= 0", p->n_threads);
    return SM_OK;
}

const char *sm_gen_segment_name(int segment)
{
    return segment >= 0 && segment < SM_GEN_SEGMENTS ? segment_names[segment] : "unknown";
}

/* --- random variates -------------------------------------------------------- */

static double draw_exponential(sm_rng *rng, double rate)
{
    return -log1p(-sm_rng_uniform(rng)) / rate;
}

/* Knuth's multiplication method; means here are small (< 10). */
static int draw_poisson(sm_rng *rng, double mean)
{
    double limit = exp(-mean), product = sm_rng_uniform(rng);
    int k = 0;
    while (product > limit && k < 1000) {
        product *= sm_rng_uniform(rng);
        k++;
    }
    return k;
}

/* Gamma(shape, 1) for shape >= 1 (Marsaglia & Tsang 2000). */
static double draw_gamma(sm_rng *rng, double shape)
{
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = sm_rng_normal(rng), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = sm_rng_uniform(rng);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v;
    }
}

static uint32_t draw_item(const catalog *cat, sm_rng *rng)
{
    double u = sm_rng_uniform(rng);
    uint32_t lo = 0, hi = cat->n_items - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cat->zipf_cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* --- calendar ------------------------------------------------------------------- */

/* Relative purchase intensity on a day: a Nov-Dec peak, a January lull and
 * quiet Sundays. The maximum is SEASON_MAX (for thinning). */
#define SEASON_MAX 1.6
static double season(int64_t unix_day)
{
    int64_t year;
    unsigned month, day;
    sm_civil_from_days(unix_day, &year, &month, &day);
    double factor = month == 11 || month == 12 ? 1.6 : month == 1 ? 0.8 : 1.0;
    if ((unix_day + 4) % 7 == 0) /* 1970-01-01 was a Thursday; 0 = Sunday */
        factor *= 0.5;
    return factor;
}

/* --- catalogue -------------------------------------------------------------------- */

static void catalog_free(catalog *cat)
{
    sm_free(cat->zipf_cdf);
    sm_free(cat->price_cents);
    sm_free(cat->rule_of_item);
    sm_free(cat->expensive);
}

static int compare_u32_desc_price(const void *a, const void *b, void *prices)
{
    const uint32_t *p = prices;
    uint32_t x = p[*(const uint32_t *)a], y = p[*(const uint32_t *)b];
    if (x != y)
        return x > y ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static int catalog_build(catalog *cat, const sm_gen_params *p, sm_error *err)
{
    memset(cat, 0, sizeof *cat);
    uint32_t n = p->n_items;
    cat->n_items = n;
    cat->zipf_cdf = sm_alloc_array(n, sizeof *cat->zipf_cdf);
    cat->price_cents = sm_alloc_array(n, sizeof *cat->price_cents);
    cat->rule_of_item = sm_alloc_array(n, sizeof *cat->rule_of_item);
    cat->n_expensive = n / 20;
    cat->expensive = sm_alloc_array(n, sizeof *cat->expensive);
    if (!cat->zipf_cdf || !cat->price_cents || !cat->rule_of_item || !cat->expensive) {
        catalog_free(cat);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for a catalogue of %" PRIu32 " items", n);
    }
    sm_rng rng;
    sm_rng_init(&rng, p->seed, (uint64_t)CATALOG_STREAM_BASE);
    double total = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        total += pow(i + 1.0, -1.07);
        cat->zipf_cdf[i] = total;
        /* log-normal prices around 3.50 */
        double price = exp(log(350.0) + 0.8 * sm_rng_normal(&rng));
        price = price < 25 ? 25 : price > 50000 ? 50000 : price;
        cat->price_cents[i] = (uint32_t)(5 * lround(price / 5));
        cat->rule_of_item[i] = -1;
        cat->expensive[i] = i;
    }
    for (uint32_t i = 0; i < n; i++)
        cat->zipf_cdf[i] /= total;
    cat->zipf_cdf[n - 1] = 1.0;
    qsort_r(cat->expensive, n, sizeof *cat->expensive, compare_u32_desc_price, cat->price_cents);

    /* Planted rules: distinct popular antecedents (ids 5..64) each pulling a
     * less popular consequent (ids 20..319) into the basket. No item plays
     * both roles, so the planted probability is exactly P(b added | a drawn)
     * and no rule chains into another. */
    enum { UNUSED = -1, CONSEQUENT = -2 };
    for (int r = 0; r < SM_GEN_RULES; r++) {
        uint32_t a;
        do
            a = 5 + (uint32_t)sm_rng_below(&rng, 60);
        while (cat->rule_of_item[a] != UNUSED);
        cat->rule_of_item[a] = r;
        uint32_t b;
        do
            b = 20 + (uint32_t)sm_rng_below(&rng, 300);
        while (cat->rule_of_item[b] != UNUSED);
        cat->rule_of_item[b] = CONSEQUENT;
        cat->rules[r] = (planted_rule){a, b, 0.45 + 0.35 * sm_rng_uniform(&rng)};
    }
    for (uint32_t i = 0; i < n; i++)
        if (cat->rule_of_item[i] == CONSEQUENT)
            cat->rule_of_item[i] = UNUSED;
    return SM_OK;
}

/* --- text rendering ----------------------------------------------------------------- */

static bool reserve(char **buf, size_t *len, size_t *cap, size_t more)
{
    if (*cap - *len >= more)
        return true;
    size_t new_cap = SM_MAX(*cap * 2, *len + more + 4096);
    char *bigger = sm_realloc_array(*buf, new_cap, 1);
    if (bigger == NULL)
        return false;
    *buf = bigger;
    *cap = new_cap;
    return true;
}

static char *put_u64(char *out, uint64_t v)
{
    char digits[24];
    int n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *out++ = digits[--n];
    return out;
}

static char *put_2(char *out, unsigned v)
{
    *out++ = (char)('0' + v / 10);
    *out++ = (char)('0' + v % 10);
    return out;
}

static char *put_time(char *out, int64_t t)
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    int64_t year;
    unsigned month, day;
    sm_civil_from_days(days, &year, &month, &day);
    out = put_u64(out, (uint64_t)year);
    *out++ = '-';
    out = put_2(out, month);
    *out++ = '-';
    out = put_2(out, day);
    *out++ = 'T';
    out = put_2(out, (unsigned)(secs / 3600));
    *out++ = ':';
    out = put_2(out, (unsigned)(secs / 60 % 60));
    *out++ = ':';
    out = put_2(out, (unsigned)(secs % 60));
    *out++ = 'Z';
    return out;
}

static const char *const adjectives[] = {"RED", "BLUE", "WHITE", "VINTAGE", "SMALL", "LARGE",
                                         "PINK", "GREEN", "RETRO", "SET OF 3", "HEART", "STAR"};
static const char *const materials[] = {"CERAMIC", "GLASS", "WOODEN", "METAL", "PAPER",
                                        "FELT", "ENAMEL", "CANVAS", "TIN", "LACE"};
static const char *const nouns[] = {"MUG", "LANTERN", "CANDLE HOLDER", "BUNTING", "BAG", "CLOCK",
                                    "COASTER", "FRAME", "BOX", "JAR", "TRAY", "BOWL", "PLATE",
                                    "HOOK", "SIGN", "NAPKINS", "TEAPOT", "CUSHION", "DOORSTOP", "BELL"};

static char *put_item(char *out, uint32_t item)
{
    /* code: SKU + 5 digits; description: deterministic words */
    memcpy(out, "SKU", 3);
    out += 3;
    char digits[16];
    int n = snprintf(digits, sizeof digits, "%05" PRIu32, item);
    memcpy(out, digits, (size_t)n);
    out += n;
    *out++ = ',';
    size_t na = SM_ARRAY_LEN(adjectives), nm = SM_ARRAY_LEN(materials), nn = SM_ARRAY_LEN(nouns);
    const char *words[3] = {adjectives[item % na], materials[item / na % nm], nouns[item / (na * nm) % nn]};
    for (int w = 0; w < 3; w++) {
        if (w)
            *out++ = ' ';
        size_t len = strlen(words[w]);
        memcpy(out, words[w], len);
        out += len;
    }
    if (item >= na * nm * nn) {
        *out++ = ' ';
        out = put_u64(out, item / (na * nm * nn));
    }
    return out;
}

static char *put_price(char *out, uint32_t cents)
{
    out = put_u64(out, cents / 100);
    *out++ = '.';
    return put_2(out, cents % 100);
}

/* --- one customer ----------------------------------------------------------------- */

static int compare_lines(const void *a, const void *b)
{
    const line *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->invoice != y->invoice)
        return x->invoice < y->invoice ? -1 : 1;
    if (x->quantity < 0 || y->quantity < 0) /* purchases before their returns */
        return (x->quantity < 0) - (y->quantity < 0);
    return x->item < y->item ? -1 : x->item > y->item;
}

static bool push_line(block_buffer *b, size_t *count, line l)
{
    if (*count == b->lines_cap) {
        size_t cap = b->lines_cap ? b->lines_cap * 2 : 256;
        line *bigger = sm_realloc_array(b->lines, cap, sizeof *bigger);
        if (bigger == NULL)
            return false;
        b->lines = bigger;
        b->lines_cap = cap;
    }
    b->lines[(*count)++] = l;
    return true;
}

/* Adds one invoice's lines (and later returns) at time t. */
static bool emit_invoice(block_buffer *b, size_t *count, const catalog *cat, const segment_profile *prof,
                         sm_rng *rng, int64_t t, uint64_t invoice, int64_t end_time, int n_lines_override,
                         int quantity_scale)
{
    uint32_t items[MAX_LINES_PER_INVOICE];
    int n_lines = n_lines_override > 0 ? n_lines_override : 1 + draw_poisson(rng, prof->extra_lines);
    if (n_lines > MAX_LINES_PER_INVOICE / 2)
        n_lines = MAX_LINES_PER_INVOICE / 2;
    int n = 0;
    for (int l = 0; l < n_lines; l++) {
        uint32_t item = draw_item(cat, rng);
        for (int tries = 0; tries < 4; tries++) {
            bool seen = false;
            for (int k = 0; k < n; k++)
                seen |= items[k] == item;
            if (!seen)
                break;
            item = draw_item(cat, rng);
        }
        bool seen = false;
        for (int k = 0; k < n; k++)
            seen |= items[k] == item;
        if (seen)
            continue;
        items[n++] = item;
        int32_t rule = cat->rule_of_item[item];
        if (rule >= 0 && n < MAX_LINES_PER_INVOICE && sm_rng_uniform(rng) < cat->rules[rule].probability) {
            uint32_t extra = cat->rules[rule].consequent;
            bool have = false;
            for (int k = 0; k < n; k++)
                have |= items[k] == extra;
            if (!have)
                items[n++] = extra;
        }
    }
    b->summary.invoices++;
    for (int k = 0; k < n; k++) {
        int32_t quantity = (1 + draw_poisson(rng, prof->extra_quantity)) * quantity_scale;
        if (!push_line(b, count, (line){t, invoice, items[k], quantity}))
            return false;
        if (sm_rng_uniform(rng) < prof->return_rate) {
            int64_t when = t + 86400 * (1 + (int64_t)sm_rng_below(rng, 14));
            int32_t back = 1 + (int32_t)sm_rng_below(rng, (uint64_t)quantity);
            if (when < end_time && !push_line(b, count, (line){when, invoice, items[k], -back}))
                return false;
        }
    }
    return true;
}

static int render_customer(block_buffer *b, const catalog *cat, const sm_gen_params *p, uint64_t index)
{
    sm_rng rng;
    sm_rng_init(&rng, p->seed, index);
    const int64_t window = (int64_t)p->days * 86400;
    const int64_t start = p->start_time, end = start + window;

    double u = sm_rng_uniform(&rng), cumulative = 0.0;
    int segment = SM_GEN_SEGMENTS - 1;
    for (int s = 0; s < SM_GEN_SEGMENTS; s++) {
        cumulative += profiles[s].share;
        if (u < cumulative) {
            segment = s;
            break;
        }
    }
    const segment_profile *prof = &profiles[segment];
    int anomaly = sm_rng_uniform(&rng) < p->anomaly_rate ? 1 + (int)sm_rng_below(&rng, 2) : 0;

    /* "new" customers arrive within the last 90 days (or last 40% of a short log). */
    double from = prof->acquire_from, to = prof->acquire_to;
    if (from < 0)
        from = p->days > 225 ? 1.0 - 90.0 / p->days : 0.6;
    double t = (from + (to - from) * sm_rng_uniform(&rng)) * (double)window;
    double rate = draw_gamma(&rng, 6.0) / 6.0 / (prof->purchase_every * 86400.0);
    double stop = (double)window;
    if (prof->active_days_max > 0)
        stop = SM_MIN(stop, t + 86400.0 * (prof->active_days_min +
                                           (prof->active_days_max - prof->active_days_min) * sm_rng_uniform(&rng)));

    size_t count = 0;
    uint64_t invoice_base = (index + 1) * 10000;
    int invoices = 0;
    while (t < stop && invoices < MAX_INVOICES_PER_CUSTOMER - 64) {
        int64_t day_start = start + (int64_t)(t / 86400.0) * 86400;
        int64_t when = day_start + 8 * 3600 + 60 * (int64_t)sm_rng_below(&rng, 12 * 60);
        if (!emit_invoice(b, &count, cat, prof, &rng, when, invoice_base + (uint64_t)invoices, end, 0, 1))
            return SM_ERR_NOMEM;
        invoices++;
        if (sm_rng_uniform(&rng) < prof->dropout)
            break;
        /* next purchase: thinned Poisson process under the seasonal rate */
        for (;;) {
            t += draw_exponential(&rng, rate * SEASON_MAX);
            if (t >= stop)
                break;
            int64_t day = (start + (int64_t)t) / 86400;
            if (sm_rng_uniform(&rng) * SEASON_MAX < season(day))
                break;
        }
    }
    double first = count > 0 ? (double)(b->lines[0].time - start) : 0.0;
    double last = count > 0 ? (double)(b->lines[count - 1].time - start) : 0.0;
    if (anomaly == 1) {
        /* huge order: one expensive item in an absurd quantity */
        double at = first + (last - first) * sm_rng_uniform(&rng);
        int64_t when = start + (int64_t)at;
        uint32_t item = cat->expensive[sm_rng_below(&rng, SM_MAX(cat->n_expensive, 1u))];
        int32_t quantity = 200 + (int32_t)sm_rng_below(&rng, 300);
        if (!push_line(b, &count, (line){when, invoice_base + (uint64_t)invoices++, item, quantity}))
            return SM_ERR_NOMEM;
        b->summary.invoices++;
    } else if (anomaly == 2) {
        /* burst: 25 purchases within 5 days */
        double at = first + (last - first) * sm_rng_uniform(&rng);
        for (int k = 0; k < 25; k++) {
            int64_t when = start + (int64_t)at + (int64_t)sm_rng_below(&rng, 5 * 86400);
            if (when >= end)
                when = end - 1;
            if (!emit_invoice(b, &count, cat, prof, &rng, when, invoice_base + (uint64_t)invoices++, end, 2, 1))
                return SM_ERR_NOMEM;
        }
    }
    qsort(b->lines, count, sizeof *b->lines, compare_lines);

    uint64_t customer_id = 100001 + index;
    for (size_t k = 0; k < count; k++) {
        const line *l = &b->lines[k];
        if (!reserve(&b->text, &b->len, &b->cap, 256))
            return SM_ERR_NOMEM;
        char *out = b->text + b->len;
        if (l->quantity < 0)
            *out++ = 'C';
        out = put_u64(out, l->invoice);
        *out++ = ',';
        out = put_u64(out, customer_id);
        *out++ = ',';
        out = put_time(out, l->time);
        *out++ = ',';
        out = put_item(out, l->item);
        *out++ = ',';
        if (l->quantity < 0)
            *out++ = '-';
        out = put_u64(out, (uint64_t)(l->quantity < 0 ? -l->quantity : l->quantity));
        *out++ = ',';
        out = put_price(out, cat->price_cents[l->item]);
        *out++ = '\n';
        b->len = (size_t)(out - b->text);
        b->summary.rows++;
        b->summary.return_lines += l->quantity < 0;
    }
    if (!reserve(&b->truth, &b->truth_len, &b->truth_cap, 96))
        return SM_ERR_NOMEM;
    static const char *const kinds[] = {"", "huge_order", "burst"};
    b->truth_len += (size_t)snprintf(b->truth + b->truth_len, b->truth_cap - b->truth_len, "%" PRIu64 ",%d,%s,%d,%s\n",
                                     customer_id, segment, segment_names[segment], anomaly != 0, kinds[anomaly]);
    b->summary.per_segment[segment]++;
    b->summary.anomalies += anomaly != 0;
    return SM_OK;
}

static void render_block(block_buffer *b, const catalog *cat, const sm_gen_params *p, uint64_t first,
                         uint64_t last)
{
    b->len = b->truth_len = 0;
    memset(&b->summary, 0, sizeof b->summary);
    b->status = SM_OK;
    for (uint64_t i = first; i < last && b->status == SM_OK; i++)
        b->status = render_customer(b, cat, p, i);
}

int sm_gen_write(const sm_gen_params *p, FILE *transactions, FILE *truth, FILE *rules,
                 const sm_progress *progress, sm_gen_summary *summary, sm_error *err)
{
    int rc = sm_gen_params_check(p, err);
    if (rc != SM_OK)
        return rc;
    memset(summary, 0, sizeof *summary);
    catalog cat;
    rc = catalog_build(&cat, p, err);
    if (rc != SM_OK)
        return rc;

    int threads = p->n_threads > 0 ? p->n_threads : omp_get_max_threads();
    size_t batch = (size_t)threads * 4;
    block_buffer *buffers = sm_calloc(batch, sizeof *buffers);
    if (buffers == NULL) {
        catalog_free(&cat);
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory for generator buffers");
    }
    fputs("invoice,customer_id,time,item,description,quantity,price\n", transactions);
    if (truth != NULL)
        fputs("customer_id,segment,segment_name,anomaly,anomaly_kind\n", truth);
    if (rules != NULL) {
        fputs("antecedent,consequent,probability\n", rules);
        for (int r = 0; r < SM_GEN_RULES; r++)
            fprintf(rules, "SKU%05" PRIu32 ",SKU%05" PRIu32 ",%.4f\n", cat.rules[r].antecedent,
                    cat.rules[r].consequent, cat.rules[r].probability);
    }

    uint64_t n_blocks = sm_block_count(p->n_customers, CUSTOMERS_PER_BLOCK);
    for (uint64_t first = 0; first < n_blocks && rc == SM_OK; first += batch) {
        uint64_t count = SM_MIN((uint64_t)batch, n_blocks - first);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (uint64_t k = 0; k < count; k++) {
            uint64_t begin = (first + k) * CUSTOMERS_PER_BLOCK;
            uint64_t end = SM_MIN(begin + CUSTOMERS_PER_BLOCK, p->n_customers);
            render_block(&buffers[k], &cat, p, begin, end);
        }
        for (uint64_t k = 0; k < count && rc == SM_OK; k++) {
            block_buffer *b = &buffers[k];
            if (b->status != SM_OK) {
                rc = sm_error_set(err, b->status, "out of memory generating customers");
                break;
            }
            if (fwrite(b->text, 1, b->len, transactions) != b->len ||
                (truth != NULL && fwrite(b->truth, 1, b->truth_len, truth) != b->truth_len)) {
                rc = sm_error_set(err, SM_ERR_IO, "write failed after %" PRIu64 " rows", summary->rows);
                break;
            }
            summary->rows += b->summary.rows;
            summary->invoices += b->summary.invoices;
            summary->return_lines += b->summary.return_lines;
            summary->anomalies += b->summary.anomalies;
            for (int s = 0; s < SM_GEN_SEGMENTS; s++)
                summary->per_segment[s] += b->summary.per_segment[s];
        }
        uint64_t done = SM_MIN((first + count) * CUSTOMERS_PER_BLOCK, p->n_customers);
        if (rc == SM_OK && sm_progress_report(progress, "generate", done, p->n_customers))
            rc = sm_error_set(err, SM_ERR_CANCELLED, "generation cancelled after %" PRIu64 " customers", done);
    }
    for (size_t k = 0; k < batch; k++) {
        sm_free(buffers[k].text);
        sm_free(buffers[k].truth);
        sm_free(buffers[k].lines);
    }
    sm_free(buffers);
    catalog_free(&cat);
    return rc;
}
