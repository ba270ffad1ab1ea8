/* onnx_reader.h — the few parts of the protobuf wire format needed to read
 * the initializers of an ONNX ModelProto: ModelProto.graph (field 7) ->
 * GraphProto.initializer (field 5, repeated TensorProto) -> TensorProto
 * dims (1), data_type (2), float_data (4), name (8), raw_data (9),
 * double_data (10), data_location (14). No protobuf library needed. */
#ifndef DISTILMD_ONNX_READER_H
#define DISTILMD_ONNX_READER_H

#include "../core/error.h"
#include <stdint.h>

#define ONNX_MAX_DIMS 8

typedef struct onnx_tensor {
    char *name;
    int n_dims;
    int64_t dims[ONNX_MAX_DIMS];
    int64_t n_values;     /* product of dims (1 for a scalar) */
    double *values;       /* converted to float64, n_values long */
} onnx_tensor;

typedef struct onnx_initializers {
    int n;
    onnx_tensor *tensors;
} onnx_initializers;

/* Parses every initializer of the file. Supported data types: FLOAT (1) and
 * DOUBLE (11), stored as raw_data, float_data or double_data. Errors name the
 * file (and the tensor, where one is being read). */
int onnx_read_initializers(const char *path, onnx_initializers *out, dm_error *err);
/* Same, from a buffer already in memory; `label` names it in errors. */
int onnx_parse_initializers(const uint8_t *buf, size_t len, const char *label,
                            onnx_initializers *out, dm_error *err);
const onnx_tensor *onnx_find(const onnx_initializers *t, const char *name);
void onnx_initializers_free(onnx_initializers *t);

#endif
