/* SPDX-License-Identifier: MIT */
/**
 * @file fim.h
 * @brief Frequent itemsets, association rules and cross-sell recommendations.
 *
 * The miner is exact and depth-first: items are recoded by ascending support,
 * conditional databases are built by occurrence delivery with duplicate
 * transactions merged (Uno et al., LCM, FIMI'04; Borgelt, FIMI'03/'04),
 * switch to 64-bit transaction masks once at most 64 items remain, and items
 * contained in every transaction of a conditional database (perfect
 * extensions) are hoisted out and, when only counting, counted as 2^m subsets.
 * For all frequent itemsets, pair counts per node spare the leaves a database
 * (FP-growth*'s FP-array), and counting alone sums small subtrees from their
 * pattern weights. Top-level prefixes run in parallel; the itemsets reach the sink in one
 * canonical order whatever the thread count.
 */
#ifndef SEGMINT_FIM_H
#define SEGMINT_FIM_H

#include <stdbool.h>
#include <stdint.h>

#include "segmint/common.h"
#include "segmint/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Which frequent itemsets to report. */
typedef enum sm_fim_kind {
    SM_FIM_ALL = 0,  /**< every frequent itemset */
    SM_FIM_CLOSED,   /**< no proper superset has the same support */
    SM_FIM_MAXIMAL   /**< no proper superset is frequent */
} sm_fim_kind;

/** max_len meaning "no limit". */
#define SM_FIM_NO_MAX_LEN UINT32_MAX

/** Mining parameters; sm_fim_params_init fills the defaults. */
typedef struct sm_fim_params {
    double min_support;    /**< fraction of baskets in (0, 1], or a count >= 1 when support_is_count; default 0.01 */
    bool support_is_count; /**< min_support is an absolute count (an integer); default false */
    uint32_t max_len;      /**< longest itemset reported, >= 1; default SM_FIM_NO_MAX_LEN.
                                Closed and maximal are judged against all frequent itemsets,
                                then those longer than max_len are left out */
    sm_fim_kind kind;      /**< default SM_FIM_ALL */
    sm_count max_itemsets; /**< stop after this many itemsets (output cap); 0 = no cap (default) */
    int n_threads;         /**< 0 = OpenMP default */
    sm_progress progress;  /**< optional; cancelling returns SM_ERR_CANCELLED */
} sm_fim_params;

/** Fills the defaults documented in sm_fim_params. */
SM_API void sm_fim_params_init(sm_fim_params *params);

/**
 * Checks every field (names the field and the rule: min_support NaN, <= 0,
 * a fraction > 1 or a non-integer count; max_len 0; unknown kind; negative
 * n_threads). @return SM_OK or SM_ERR_INVALID_ARG.
 */
SM_API int sm_fim_params_check(const sm_fim_params *params, sm_error *err);

/**
 * The absolute support threshold for n baskets: a count is used as given; a
 * fraction f gives the smallest count c with c >= f * n (Borgelt's and arules'
 * convention), computed as ceil(f * n * (1 - 2^-40)) so that decimal fractions
 * such as 0.07 * 100 do not round up to 8. Never less than 1.
 * @return SM_OK or SM_ERR_INVALID_ARG (as sm_fim_params_check).
 */
SM_API int sm_fim_min_count(const sm_fim_params *params, uint64_t n_baskets, sm_count *out, sm_error *err);

/**
 * Receives one itemset: `len` items (>= 1) in ascending item id, and its
 * support (number of baskets containing it). The pointer is valid only during
 * the call. Return 0 to continue; anything else stops mining, and sm_fim_mine
 * returns it if it is a negative sm_status, else SM_ERR_CANCELLED.
 * Calls never overlap but may come from any of the mining threads.
 */
typedef int (*sm_fim_sink_fn)(void *user, const sm_item_id *items, uint32_t len, sm_count support);

/** What a mining run found. */
typedef struct sm_fim_result {
    sm_count n_itemsets;       /**< itemsets reported (or counted), non-empty ones only */
    bool truncated;            /**< max_itemsets was reached: more exist */
    sm_count min_count;        /**< the absolute threshold used */
    uint32_t n_frequent_items; /**< items with support >= min_count */
} sm_fim_result;

/**
 * Mines the frequent itemsets of `baskets` (rows sorted and distinct, as
 * sm_csr requires; n_rows < 2^32).
 *
 * With a sink, every itemset is passed to it in the canonical order: grouped
 * by their least frequent item (items taken by ascending support, ties by
 * id), then depth-first; the set and the order do not depend on n_threads.
 * Memory stays bounded: each thread buffers at most a few MiB of output that
 * is not yet its turn to write. Without a sink (NULL) the itemsets are only
 * counted, which is much faster (perfect extensions counted as 2^m subsets).
 *
 * Thread safety: reentrant; `baskets` is only read.
 * @param[in]  baskets n_rows baskets over n_items items
 * @param[in]  params  checked with sm_fim_params_check
 * @param[in]  sink    may be NULL (count only)
 * @param[out] result  may be NULL
 * @return SM_OK, SM_ERR_INVALID_ARG, SM_ERR_NOMEM, SM_ERR_OVERFLOW (more than
 *         2^64-1 itemsets, or n_rows >= 2^32), SM_ERR_CANCELLED (progress
 *         callback or sink), or the negative status the sink returned.
 */
SM_API int sm_fim_mine(const sm_csr *baskets, const sm_fim_params *params, sm_fim_sink_fn sink, void *user,
                       sm_fim_result *result, sm_error *err);

/* --- a table of itemsets (for rules) ------------------------------------------ */

/**
 * Frequent itemsets held in memory with their supports, searchable by content.
 * Unlike the miner, this table holds everything it is given: about 40 to 110
 * bytes per itemset at peak (records of 12 + 4 len bytes, a hash of 8-byte
 * slots kept at most half full, and doubling growth); mushroom at 5%, 3.76M
 * itemsets, peaks at 264 MiB. Rules need it (every subset's support), so
 * rule generation is bounded by the number of frequent itemsets: raise the
 * support or set max_len when that number is large.
 */
typedef struct sm_itemsets sm_itemsets;

/** Creates an empty table. @return SM_OK or SM_ERR_NOMEM. */
SM_API int sm_itemsets_create(sm_itemsets **out, sm_error *err);
/** Adds one itemset (items ascending). @return SM_OK or SM_ERR_NOMEM. */
SM_API int sm_itemsets_add(sm_itemsets *table, const sm_item_id *items, uint32_t len, sm_count support);
/** An sm_fim_sink_fn whose user pointer is an sm_itemsets. */
SM_API int sm_itemsets_sink(void *table, const sm_item_id *items, uint32_t len, sm_count support);
/** Number of itemsets held. */
SM_API sm_count sm_itemsets_count(const sm_itemsets *table);
/** Support of an itemset (items ascending), or 0 when absent. */
SM_API sm_count sm_itemsets_support(const sm_itemsets *table, const sm_item_id *items, uint32_t len);
/** Releases the table. Accepts NULL. */
SM_API void sm_itemsets_destroy(sm_itemsets *table);

/* --- association rules ------------------------------------------------------------ */

/** Measure to sort rules by (descending). */
typedef enum sm_rule_measure {
    SM_RULE_BY_NONE = 0, /**< generation order: itemset order, then consequent */
    SM_RULE_BY_SUPPORT,
    SM_RULE_BY_CONFIDENCE,
    SM_RULE_BY_LIFT,
    SM_RULE_BY_LEVERAGE,
    SM_RULE_BY_CONVICTION
} sm_rule_measure;

/** Rule generation parameters; sm_rules_params_init fills the defaults. */
typedef struct sm_rules_params {
    double min_confidence;    /**< in [0, 1]; default 0.8 */
    double min_lift;          /**< >= 0; default 0 (no filter) */
    uint32_t consequent_size; /**< largest consequent, >= 1; default 1 (arules, Borgelt) */
    sm_count max_rules;       /**< keep the first max_rules after sorting; 0 = all (default) */
    sm_rule_measure sort_by;  /**< default SM_RULE_BY_CONFIDENCE */
} sm_rules_params;

/** Fills the defaults documented in sm_rules_params. */
SM_API void sm_rules_params_init(sm_rules_params *params);
/** Checks the fields (min_confidence outside [0,1] or NaN, min_lift < 0 or NaN,
 *  consequent_size 0, unknown sort_by). @return SM_OK or SM_ERR_INVALID_ARG. */
SM_API int sm_rules_params_check(const sm_rules_params *params, sm_error *err);

/**
 * One rule A ==> C over n baskets. With supp() as counts:
 * support = supp(A u C); confidence = supp(A u C) / supp(A);
 * lift = confidence / (supp(C) / n); leverage = supp(A u C)/n - supp(A)/n * supp(C)/n;
 * conviction = (1 - supp(C)/n) / (1 - confidence), +infinity when confidence = 1.
 */
typedef struct sm_rule {
    const sm_item_id *antecedent; /**< n_antecedent >= 1 items, ascending */
    const sm_item_id *consequent; /**< n_consequent >= 1 items, ascending */
    uint32_t n_antecedent;
    uint32_t n_consequent;
    sm_count support;             /**< baskets containing A u C */
    sm_count antecedent_support;  /**< baskets containing A */
    sm_count consequent_support;  /**< baskets containing C */
    double confidence;
    double lift;
    double leverage;
    double conviction;
} sm_rule;

/** A set of rules, sorted. */
typedef struct sm_rules sm_rules;

/**
 * Generates every rule A ==> C with A, C non-empty and disjoint, |C| <=
 * consequent_size, A u C in `itemsets` (which must hold every frequent
 * itemset, kind SM_FIM_ALL, so that antecedent supports can be found), and
 * confidence >= min_confidence, lift >= min_lift. Sorted by sort_by
 * descending; ties broken by support, then confidence (both descending),
 * then antecedent and consequent item ids (ascending, lexicographic), so the
 * order is total and reproducible.
 * Memory: the table itself (see sm_itemsets) plus the rules kept.
 * @param[in] itemsets  the frequent itemsets of n_baskets baskets
 * @return SM_OK, SM_ERR_INVALID_ARG, SM_ERR_NOMEM, or SM_ERR_INVALID_STATE
 *         when a subset of a held itemset is missing (not a kind-all table).
 */
SM_API int sm_rules_generate(const sm_itemsets *itemsets, uint64_t n_baskets, const sm_rules_params *params,
                             sm_rules **out, sm_error *err);
/** Number of rules. */
SM_API sm_count sm_rules_count(const sm_rules *rules);
/** Rule i (0-based, < count); valid until sm_rules_destroy. */
SM_API const sm_rule *sm_rules_get(const sm_rules *rules, sm_count i);
/** Releases the rules. Accepts NULL. */
SM_API void sm_rules_destroy(sm_rules *rules);

/* --- cross-sell recommendations --------------------------------------------------- */

/** How a rule scores an item it recommends. */
typedef enum sm_recommend_score {
    SM_SCORE_CONFIDENCE_LIFT = 0, /**< confidence x lift (default) */
    SM_SCORE_CONFIDENCE,
    SM_SCORE_LIFT
} sm_recommend_score;

/** Recommendation parameters; sm_recommend_params_init fills the defaults. */
typedef struct sm_recommend_params {
    uint32_t top_n;           /**< items per customer, >= 1; default 5 */
    sm_recommend_score score; /**< default SM_SCORE_CONFIDENCE_LIFT */
    int n_threads;            /**< 0 = OpenMP default */
} sm_recommend_params;

/** Fills the defaults documented in sm_recommend_params. */
SM_API void sm_recommend_params_init(sm_recommend_params *params);

/** One recommendation. */
typedef struct sm_recommendation {
    sm_item_id item; /**< an item the customer has not bought */
    double score;    /**< best score over the rules that recommend it */
    sm_count rule;   /**< index in the sm_rules of the rule giving that score */
} sm_recommendation;

/** Recommendations for n customers, top_n at most each. */
typedef struct sm_recommendations {
    uint64_t n_customers;
    const uint64_t *offsets;              /**< n_customers + 1 entries */
    const sm_recommendation *entries;     /**< customer r: entries[offsets[r] .. offsets[r+1]-1], best first */
} sm_recommendations;

/**
 * For each customer (row r of `customers`: the items they bought, sorted and
 * distinct), scores every item not bought: a rule A ==> C applies when A is a
 * subset of the bought items; it proposes each item of C not bought with the
 * score confidence x lift (or the measure chosen). An item's score is the
 * best over the applicable rules, and its justifying rule is the first rule
 * (in `rules` order) reaching that score. The top_n items by score
 * (descending; ties by item id ascending) are kept. Parallel over customers,
 * scored in chunks of 4096 whose lists are appended compacted, so memory is
 * the recommendations made plus one chunk's buffer (at most 24 MiB), not
 * n_customers x top_n; the result does not depend on n_threads.
 * @return SM_OK, SM_ERR_INVALID_ARG (top_n 0, an item id >= customers->n_items
 *         in a rule), SM_ERR_NOMEM.
 */
SM_API int sm_recommend(const sm_csr *customers, const sm_rules *rules, const sm_recommend_params *params,
                        sm_recommendations **out, sm_error *err);
/** Releases recommendations. Accepts NULL. */
SM_API void sm_recommendations_destroy(sm_recommendations *recs);

#ifdef __cplusplus
}
#endif
#endif /* SEGMINT_FIM_H */
