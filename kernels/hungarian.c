/* SPDX-License-Identifier: MIT */
/*
 * Shortest-augmenting-path Hungarian algorithm with row and column
 * potentials (Jonker-Volgenant style, as in the classic e-maxx formulation),
 * 1-based internally with column 0 as the virtual start.
 */
#include "kernels/hungarian.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

size_t sm_hungarian_scratch_doubles(size_t rows, size_t cols)
{
    return (rows + 1) + 2 * (cols + 1);
}

size_t sm_hungarian_scratch_indices(size_t rows, size_t cols)
{
    (void)rows;
    return 3 * (cols + 1);
}

double sm_hungarian(size_t *column_of, const double *cost, size_t rows, size_t cols, double *scratch_d,
                    size_t *scratch_i)
{
    double *u = scratch_d;                 /* row potentials, rows+1 */
    double *v = u + rows + 1;              /* column potentials, cols+1 */
    double *min_slack = v + cols + 1;      /* cols+1 */
    size_t *row_of = scratch_i;            /* column -> assigned row (1-based), 0 = free */
    size_t *way = row_of + cols + 1;       /* previous column on the augmenting path */
    size_t *used = way + cols + 1;         /* visited flag per column */
    memset(u, 0, (rows + 1) * sizeof *u);
    memset(v, 0, (cols + 1) * sizeof *v);
    memset(row_of, 0, (cols + 1) * sizeof *row_of);
    memset(way, 0, (cols + 1) * sizeof *way);

    for (size_t i = 1; i <= rows; i++) {
        row_of[0] = i;
        size_t j0 = 0;
        for (size_t j = 0; j <= cols; j++) {
            min_slack[j] = INFINITY;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            size_t i0 = row_of[j0], j1 = 0;
            double delta = INFINITY;
            for (size_t j = 1; j <= cols; j++) {
                if (used[j])
                    continue;
                double slack = cost[(i0 - 1) * cols + (j - 1)] - u[i0] - v[j];
                if (slack < min_slack[j]) {
                    min_slack[j] = slack;
                    way[j] = j0;
                }
                if (min_slack[j] < delta) { /* strict: ties go to the lower column */
                    delta = min_slack[j];
                    j1 = j;
                }
            }
            for (size_t j = 0; j <= cols; j++) {
                if (used[j]) {
                    u[row_of[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_slack[j] -= delta;
                }
            }
            j0 = j1;
        } while (row_of[j0] != 0);
        do { /* flip the augmenting path */
            size_t j1 = way[j0];
            row_of[j0] = row_of[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    double total = 0.0;
    for (size_t j = 1; j <= cols; j++)
        if (row_of[j] != 0) {
            column_of[row_of[j] - 1] = j - 1;
            total += cost[(row_of[j] - 1) * cols + (j - 1)];
        }
    return total;
}
