/* SPDX-License-Identifier: MIT */
/*
 * Minimum-cost assignment of rows to columns (the "linear sum assignment"
 * of scipy.optimize): Kuhn-Munkres with potentials and shortest augmenting
 * paths, O(r^2 c) for an r x c cost matrix with r <= c. Used to match the
 * segments of two runs by the distance between their centres, so the same
 * segment keeps its id across runs. Pure: no allocation, no I/O.
 */
#ifndef SEGMINT_KERNELS_HUNGARIAN_H
#define SEGMINT_KERNELS_HUNGARIAN_H

#include <stddef.h>

/* Doubles of scratch sm_hungarian needs for an r x c problem. */
size_t sm_hungarian_scratch_doubles(size_t rows, size_t cols);
/* Integers (size_t) of scratch it needs. */
size_t sm_hungarian_scratch_indices(size_t rows, size_t cols);

/* Assigns each row to a distinct column minimising the summed cost.
 * @param[out] column_of  rows entries: the column given to each row
 * @param[in]  cost       rows x cols, row-major, finite; rows <= cols
 * Ties are broken towards lower column indices, deterministically.
 * @return the minimal total cost. */
double sm_hungarian(size_t *column_of, const double *cost, size_t rows, size_t cols, double *scratch_d,
                    size_t *scratch_i);

#endif
