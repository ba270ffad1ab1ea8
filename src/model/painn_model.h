/* painn_model.h — the trained weights of a PaiNN "student" model, in float64,
 * as defined in shared/docs/student-model.md.
 *
 * A Linear layer with weight W [out, in] (row-major) and bias b maps
 * x to W x + b. Shapes, with H hidden channels, K radial functions:
 *   embedding   [PAINN_N_ELEMENTS, H]
 *   rbf centers [K], widths [K]; cutoff rc = centers[K-1]
 *   per layer:  W1 [H, K], b1 [H]        filter MLP, first Linear
 *               W2 [3H, H], b2 [3H]      filter MLP, second Linear -> phi_s, phi_v1, phi_v2
 *               W3 [H, 2H], b3 [H]       update MLP, first Linear on [s; |v|]
 *               W4 [3H, H], b4 [3H]      update MLP, second Linear -> a, g1, g2
 *               mixing [3, 3]            (not in the last layer)
 *   readout:    W5 [H/2, H], W6 [H/4, H/2], W7 [1, H/4] with biases b5, b6, b7
 */
#ifndef DISTILMD_PAINN_MODEL_H
#define DISTILMD_PAINN_MODEL_H

#include "../core/error.h"

#define PAINN_N_ELEMENTS 101 /* embedding rows: Z = 0..100 */

typedef struct painn_layer {
    double *W1, *b1, *W2, *b2; /* filter (message) MLP */
    double *W3, *b3, *W4, *b4; /* update MLP */
    double mixing[9];          /* M[c][c'] row-major; zero in the last layer */
    int has_mixing;
} painn_layer;

typedef struct painn_model {
    int H, L, K;
    double cutoff;
    double *embedding;             /* [PAINN_N_ELEMENTS * H] */
    double *rbf_centers, *rbf_widths;
    painn_layer *layers;           /* [L] */
    double *W5, *b5, *W6, *b6, *W7, *b7;
    long n_parameters;             /* counted over all tensors read */
    char path[512];                /* the file it came from */
} painn_model;

/* Reads the initializers of an ONNX file (ignoring its graph), infers H, L, K
 * and the cutoff, checks every shape. On failure returns -1 with a message
 * naming the file and the tensor; m is left zeroed. */
int painn_model_load(const char *path, painn_model *m, dm_error *err);
void painn_model_free(painn_model *m);

#endif
