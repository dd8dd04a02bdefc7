/* SPDX-License-Identifier: MIT */
/* The C quick start of README.md, built by tests/example/run.sh against the
 * installed package with nothing but `pkg-config --cflags --libs segmint`. */
#include <segmint/segmint.h>
#include <stdio.h>

int main(void)
{
    /* six customers x two features (say, orders and spend, already scaled) */
    const float x[] = {1.0f, 1.1f, 0.9f, 1.0f, 1.1f, 0.9f, 8.0f, 8.2f, 7.9f, 8.1f, 8.1f, 7.8f};
    sm_kmeans_params params;
    sm_kmeans_params_init(&params);
    params.k = 2;
    params.n = 6;
    params.d = 2;
    params.seed = 42;
    sm_kmeans *km;
    sm_error err;
    if (sm_kmeans_create(&params, &km, &err) != SM_OK || sm_kmeans_fit(km, x, NULL, &err) != SM_OK) {
        char text[512];
        sm_error_format(&err, text, sizeof text);
        fprintf(stderr, "k-means failed: %s\n", text);
        sm_kmeans_destroy(km);
        return 1;
    }
    const sm_cluster_id *labels = sm_kmeans_get_labels(km);
    sm_kmeans_result result;
    sm_kmeans_get_result(km, &result);
    printf("segmint %s: labels", sm_version());
    for (int i = 0; i < 6; i++)
        printf(" %u", labels[i]);
    printf(", inertia %.4f\n", result.inertia);
    /* the two groups are far apart: the first three share a label, the last three the other */
    int ok = labels[0] == labels[1] && labels[1] == labels[2] && labels[3] == labels[4] &&
             labels[4] == labels[5] && labels[0] != labels[3];
    sm_kmeans_destroy(km);
    return ok ? 0 : 1;
}
