/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the CLV kernels (clv_*.c): the frequency histogram
 * that lets terms depending on x alone be computed once per distinct x,
 * and the validation messages. Internal; not installed.
 */
#ifndef SEGMINT_KERNELS_CLV_INTERNAL_H
#define SEGMINT_KERNELS_CLV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "segmint/clv.h"

/* Frequencies up to this value are tabulated (a few hundred KiB at most);
 * larger ones are handled customer by customer. */
#define SM_CLV_TABLE_MAX 65536u

/* Which customers a histogram counts. */
enum sm_clv_select {
    SM_CLV_ALL = 0,     /* every customer (BG/NBD) */
    SM_CLV_SPENDERS = 1 /* frequency > 0 and monetary > 0 (Gamma-Gamma) */
};

static inline int sm_clv_selected(const sm_clv_summary *s, size_t i, int select)
{
    return select == SM_CLV_ALL || (s->frequency[i] > 0.0 && s->monetary[i] > 0.0);
}

/*
 * Counts the selected customers per frequency value. On success *counts has
 * *size = max x + 1 entries (caller frees with sm_free), or is NULL when the
 * maximum exceeds SM_CLV_TABLE_MAX (then *size = 0). *n_selected receives
 * the number of selected customers.
 * Returns SM_OK or SM_ERR_NOMEM.
 */
int sm_clv_count_frequencies(uint64_t **counts, size_t *size, size_t *n_selected,
                             const sm_clv_summary *s, int select, sm_error *err);

/*
 * Whether a fit in log-parameters stayed where the data can identify it:
 * every parameter within [1e-6, 1e6]. A likelihood that keeps rising as a
 * parameter runs to 0 or infinity flattens out there, the optimiser's line
 * search then stalls at a small gradient, and without this test such a run
 * would pass for converged (e.g. BG/NBD's a and b both running to infinity:
 * no dropout in the data).
 */
static inline int sm_clv_log_params_bounded(const double *log_theta, size_t d)
{
    const double bound = 13.815510557964274; /* ln 1e6 */
    for (size_t j = 0; j < d; j++)
        if (!(log_theta[j] >= -bound && log_theta[j] <= bound))
            return 0;
    return 1;
}

#endif /* SEGMINT_KERNELS_CLV_INTERNAL_H */
