/* painn_model.c — the PaiNN student model from the initializers of an ONNX
 * file (shared/docs/student-model.md). The graph of the file is ignored.
 *
 * Tensor names (a leading "model." is stripped), with H hidden channels,
 * K radial functions, L interaction layers:
 *   embedding.weight [101, H]; rbf.centers [K], rbf.widths [K]
 *   interactions.{l}.message.rbf_to_scalar.0.weight [H, K]   .bias [H]
 *   interactions.{l}.message.rbf_to_scalar.2.weight [3H, H]  .bias [3H]
 *   interactions.{l}.update.update_mlp.0.weight     [H, 2H]  .bias [H]
 *   interactions.{l}.update.update_mlp.2.weight     [3H, H]  .bias [3H]
 *   interactions.{l}.update.mixing_matrix           [3, 3]   (l < L-1; unused in the last layer)
 *   energy_head.0 [H/2, H], energy_head.2 [H/4, H/2], energy_head.4 [1, H/4] (+ biases)
 * H is the column count of the embedding, K the length of rbf.centers, L one
 * more than the largest layer index, and the cutoff rc = rbf.centers[K-1]. */
#include "painn_model.h"

#include "onnx_reader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_PREFIX "model."
#define LAYER_PREFIX "interactions."
#define MAX_LAYERS 1000
#define NAME_MAX_LEN 128

/* One load in progress: the file's tensors and which of them were taken. */
typedef struct loader {
    const char *path;
    onnx_initializers init;
    int *used;          /* [init.n] */
    long n_parameters;  /* values of every tensor taken into the model */
    dm_error *err;
} loader;

static void format_shape(char *out, size_t size, const int64_t *dims, int n_dims)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (int i = 0; i < n_dims && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, i ? ", %lld" : "%lld",
                                 (long long)dims[i]);
    if (used < size) snprintf(out + used, size - used, "]");
}

static const onnx_tensor *loader_lookup(loader *ld, const char *name)
{
    for (int i = 0; i < ld->init.n; i++)
        if (strcmp(ld->init.tensors[i].name, name) == 0) {
            ld->used[i] = 1;
            return &ld->init.tensors[i];
        }
    return NULL;
}

static int tensor_has_shape(const onnx_tensor *t, int n_dims, int64_t d0, int64_t d1)
{
    if (t->n_dims != n_dims) return 0;
    if (n_dims >= 1 && t->dims[0] != d0) return 0;
    if (n_dims >= 2 && t->dims[1] != d1) return 0;
    return 1;
}

static int check_finite(loader *ld, const onnx_tensor *t)
{
    for (int64_t i = 0; i < t->n_values; i++)
        if (!isfinite(t->values[i]))
            return dm_fail(ld->err, "%s: tensor '%s' has a non-finite value (%g) at index %lld",
                           ld->path, t->name, t->values[i], (long long)i);
    return 0;
}

/* The tensor `name`, checked to have shape [d0] (n_dims 1) or [d0, d1]. */
static int loader_get(loader *ld, const char *name, int n_dims, int64_t d0, int64_t d1,
                      const onnx_tensor **out)
{
    const onnx_tensor *t = loader_lookup(ld, name);
    if (!t) return dm_fail(ld->err, "%s: missing tensor '%s'", ld->path, name);
    if (!tensor_has_shape(t, n_dims, d0, d1)) {
        char have[256], want[64];
        int64_t expected[2] = {d0, d1};
        format_shape(have, sizeof have, t->dims, t->n_dims);
        format_shape(want, sizeof want, expected, n_dims);
        return dm_fail(ld->err, "%s: tensor '%s' has shape %s, expected %s", ld->path, name,
                       have, want);
    }
    *out = t;
    return check_finite(ld, t);
}

/* A new float64 copy of tensor `name` of shape [d0] or [d0, d1]. */
static int loader_take(loader *ld, const char *name, int n_dims, int64_t d0, int64_t d1,
                       double **dst)
{
    const onnx_tensor *t;
    if (loader_get(ld, name, n_dims, d0, d1, &t)) return -1;
    *dst = malloc(sizeof(double) * (size_t)t->n_values);
    if (!*dst) return dm_fail(ld->err, "%s: out of memory for tensor '%s'", ld->path, name);
    memcpy(*dst, t->values, sizeof(double) * (size_t)t->n_values);
    ld->n_parameters += (long)t->n_values;
    return 0;
}

/* Strips a leading "model." from every name, then rejects duplicates. */
static int normalize_names(loader *ld)
{
    size_t plen = strlen(MODEL_PREFIX);
    for (int i = 0; i < ld->init.n; i++) {
        char *name = ld->init.tensors[i].name;
        size_t len = strlen(name);
        if (len >= plen && strncmp(name, MODEL_PREFIX, plen) == 0)
            memmove(name, name + plen, len - plen + 1);
    }
    for (int i = 0; i < ld->init.n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(ld->init.tensors[i].name, ld->init.tensors[j].name) == 0)
                return dm_fail(ld->err, "%s: tensor '%s' appears more than once (after "
                               "stripping the '" MODEL_PREFIX "' prefix)",
                               ld->path, ld->init.tensors[i].name);
    return 0;
}

/* H from embedding.weight [101, H]; the readout needs H divisible by 4. */
static int infer_hidden(loader *ld, int *H)
{
    const onnx_tensor *t = loader_lookup(ld, "embedding.weight");
    if (!t) return dm_fail(ld->err, "%s: missing tensor 'embedding.weight'", ld->path);
    if (t->n_dims != 2 || t->dims[0] != PAINN_N_ELEMENTS || t->dims[1] < 1 ||
        t->dims[1] > 1000000) {
        char have[256];
        format_shape(have, sizeof have, t->dims, t->n_dims);
        return dm_fail(ld->err, "%s: tensor 'embedding.weight' has shape %s, expected [%d, H]",
                       ld->path, have, PAINN_N_ELEMENTS);
    }
    if (t->dims[1] % 4)
        return dm_fail(ld->err, "%s: tensor 'embedding.weight' has H = %lld columns, expected a "
                       "multiple of 4 (the readout has H/2 and H/4 channels)",
                       ld->path, (long long)t->dims[1]);
    *H = (int)t->dims[1];
    return 0;
}

/* K from rbf.centers [K]. */
static int infer_radial(loader *ld, int *K)
{
    const onnx_tensor *t = loader_lookup(ld, "rbf.centers");
    if (!t) return dm_fail(ld->err, "%s: missing tensor 'rbf.centers'", ld->path);
    if (t->n_dims != 1 || t->dims[0] < 1 || t->dims[0] > 1000000) {
        char have[256];
        format_shape(have, sizeof have, t->dims, t->n_dims);
        return dm_fail(ld->err, "%s: tensor 'rbf.centers' has shape %s, expected [K] with K >= 1",
                       ld->path, have);
    }
    *K = (int)t->dims[0];
    return 0;
}

/* The layer index of a name "interactions.{l}.*", or -1 for other names. */
static int layer_index(const char *name)
{
    size_t plen = strlen(LAYER_PREFIX);
    if (strncmp(name, LAYER_PREFIX, plen) != 0) return -1;
    const char *p = name + plen;
    int l = 0, digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (l >= MAX_LAYERS) return MAX_LAYERS;
        l = 10 * l + (*p - '0');
    }
    return digits > 0 && *p == '.' ? l : -1;
}

/* L: one more than the largest layer index (at least 1). Gaps are found
 * later, as missing tensors of the skipped layer. */
static int infer_layers(loader *ld, int *L)
{
    int largest = 0;
    for (int i = 0; i < ld->init.n; i++) {
        int l = layer_index(ld->init.tensors[i].name);
        if (l >= MAX_LAYERS)
            return dm_fail(ld->err, "%s: tensor '%s' has a layer index above %d", ld->path,
                           ld->init.tensors[i].name, MAX_LAYERS - 1);
        if (l > largest) largest = l;
    }
    *L = largest + 1;
    return 0;
}

static int take_layer_tensor(loader *ld, int l, const char *suffix, int n_dims, int64_t d0,
                             int64_t d1, double **dst)
{
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, LAYER_PREFIX "%d.%s", l, suffix);
    return loader_take(ld, name, n_dims, d0, d1, dst);
}

/* The mixing matrix: required in layers 0..L-2; in the last layer it is
 * unused, so it is accepted if present (shape checked) but not stored. */
static int take_mixing(loader *ld, int l, int last, painn_layer *layer)
{
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, LAYER_PREFIX "%d.update.mixing_matrix", l);
    if (last && !loader_lookup(ld, name)) return 0;
    const onnx_tensor *t;
    if (loader_get(ld, name, 2, 3, 3, &t)) return -1;
    if (last) return 0;
    memcpy(layer->mixing, t->values, sizeof layer->mixing);
    layer->has_mixing = 1;
    ld->n_parameters += 9;
    return 0;
}

static int take_layer(loader *ld, int l, int H, int K, int last, painn_layer *layer)
{
    if (take_layer_tensor(ld, l, "message.rbf_to_scalar.0.weight", 2, H, K, &layer->W1) ||
        take_layer_tensor(ld, l, "message.rbf_to_scalar.0.bias", 1, H, 0, &layer->b1) ||
        take_layer_tensor(ld, l, "message.rbf_to_scalar.2.weight", 2, 3 * H, H, &layer->W2) ||
        take_layer_tensor(ld, l, "message.rbf_to_scalar.2.bias", 1, 3 * H, 0, &layer->b2) ||
        take_layer_tensor(ld, l, "update.update_mlp.0.weight", 2, H, 2 * H, &layer->W3) ||
        take_layer_tensor(ld, l, "update.update_mlp.0.bias", 1, H, 0, &layer->b3) ||
        take_layer_tensor(ld, l, "update.update_mlp.2.weight", 2, 3 * H, H, &layer->W4) ||
        take_layer_tensor(ld, l, "update.update_mlp.2.bias", 1, 3 * H, 0, &layer->b4))
        return -1;
    return take_mixing(ld, l, last, layer);
}

static int take_readout(loader *ld, painn_model *m)
{
    int H = m->H;
    return loader_take(ld, "energy_head.0.weight", 2, H / 2, H, &m->W5) ||
           loader_take(ld, "energy_head.0.bias", 1, H / 2, 0, &m->b5) ||
           loader_take(ld, "energy_head.2.weight", 2, H / 4, H / 2, &m->W6) ||
           loader_take(ld, "energy_head.2.bias", 1, H / 4, 0, &m->b6) ||
           loader_take(ld, "energy_head.4.weight", 2, 1, H / 4, &m->W7) ||
           loader_take(ld, "energy_head.4.bias", 1, 1, 0, &m->b7)
               ? -1
               : 0;
}

/* rc = centers[K-1] must be a positive distance; the radial basis divides
 * by widths_k^2, so no width may be zero. */
static int check_radial_basis(loader *ld, painn_model *m)
{
    m->cutoff = m->rbf_centers[m->K - 1];
    if (!(m->cutoff > 0))
        return dm_fail(ld->err, "%s: tensor 'rbf.centers' ends with %g, expected a positive "
                       "cutoff distance", ld->path, m->cutoff);
    for (int k = 0; k < m->K; k++)
        if (m->rbf_widths[k] == 0)
            return dm_fail(ld->err, "%s: tensor 'rbf.widths' is zero at index %d (the radial "
                           "basis divides by widths^2)", ld->path, k);
    return 0;
}

/* Every tensor of the file must have been taken: an unknown one means a
 * model this engine does not implement. */
static int check_all_used(loader *ld)
{
    for (int i = 0; i < ld->init.n; i++)
        if (!ld->used[i])
            return dm_fail(ld->err, "%s: unexpected tensor '%s' (not part of the PaiNN student "
                           "model in docs/student-model.md)", ld->path, ld->init.tensors[i].name);
    return 0;
}

static int build_model(loader *ld, painn_model *m)
{
    int H = 0, K = 0, L = 0;
    if (normalize_names(ld) || infer_hidden(ld, &H) || infer_radial(ld, &K) ||
        infer_layers(ld, &L))
        return -1;
    m->H = H;
    m->K = K;
    if (loader_take(ld, "embedding.weight", 2, PAINN_N_ELEMENTS, H, &m->embedding) ||
        loader_take(ld, "rbf.centers", 1, K, 0, &m->rbf_centers) ||
        loader_take(ld, "rbf.widths", 1, K, 0, &m->rbf_widths) || check_radial_basis(ld, m))
        return -1;
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->layers) return dm_fail(ld->err, "%s: out of memory for %d layers", ld->path, L);
    m->L = L;
    for (int l = 0; l < L; l++)
        if (take_layer(ld, l, H, K, l == L - 1, &m->layers[l])) return -1;
    if (take_readout(ld, m) || check_all_used(ld)) return -1;
    m->n_parameters = ld->n_parameters;
    return 0;
}

int painn_model_load(const char *path, painn_model *m, dm_error *err)
{
    memset(m, 0, sizeof *m);
    loader ld = {.path = path, .err = err};
    if (onnx_read_initializers(path, &ld.init, err)) return -1;
    ld.used = calloc((size_t)ld.init.n + 1, sizeof(int));
    int rc = ld.used ? build_model(&ld, m)
                     : dm_fail(err, "%s: out of memory for %d tensors", path, ld.init.n);
    free(ld.used);
    onnx_initializers_free(&ld.init);
    if (rc) {
        painn_model_free(m);
        return -1;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    return 0;
}

void painn_model_free(painn_model *m)
{
    for (int l = 0; m->layers && l < m->L; l++) {
        painn_layer *y = &m->layers[l];
        free(y->W1);
        free(y->b1);
        free(y->W2);
        free(y->b2);
        free(y->W3);
        free(y->b3);
        free(y->W4);
        free(y->b4);
    }
    free(m->layers);
    free(m->embedding);
    free(m->rbf_centers);
    free(m->rbf_widths);
    free(m->W5);
    free(m->b5);
    free(m->W6);
    free(m->b6);
    free(m->W7);
    free(m->b7);
    memset(m, 0, sizeof *m);
}
