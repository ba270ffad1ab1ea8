/* test_model_loader.c — the ONNX initializer reader and the PaiNN model loader.
 *
 *  - the three shipped models load with H, L, K, cutoff and parameter counts
 *    of the table in shared/docs/student-model.md;
 *  - synthetic ONNX files, written here by a tiny protobuf writer that is
 *    independent of the reader: a complete tiny model (H=4, L=2, K=3) whose
 *    every value is checked against the generator that wrote it, in every
 *    encoding (raw_data, packed/unpacked float_data and double_data, packed/
 *    unpacked dims, unknown fields of every wire type);
 *  - errors: nonexistent, empty, text and XYZ files, truncated copies of real
 *    models, every prefix and random corruptions of a synthetic model (no
 *    crash, no over-read under ASan), unsupported data type, external data,
 *    missing and mis-shaped tensors. Every message must name the file and the
 *    tensor or what was expected. */
#include "test_support.h"

#include "model/onnx_reader.h"
#include "model/painn_model.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

/* The temporary directory of this run (set once by main). */
static char TMP_DIR[64];

/* ------------------------------------------------------ protobuf writer */

typedef struct pbw {
    uint8_t *buf;
    size_t len, cap;
} pbw;

static void pbw_bytes(pbw *w, const void *data, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n) cap *= 2;
        uint8_t *bigger = realloc(w->buf, cap);
        if (!bigger) {
            fprintf(stderr, "out of memory in the test's protobuf writer\n");
            exit(1);
        }
        w->buf = bigger;
        w->cap = cap;
    }
    if (n) memcpy(w->buf + w->len, data, n);
    w->len += n;
}

static void pbw_varint(pbw *w, uint64_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) b |= 0x80;
        pbw_bytes(w, &b, 1);
    } while (v);
}

static void pbw_key(pbw *w, unsigned field, int wire) { pbw_varint(w, (uint64_t)field << 3 | (unsigned)wire); }

static void pbw_fixed(pbw *w, uint64_t v, int n_bytes)
{
    for (int i = 0; i < n_bytes; i++) {
        uint8_t b = (uint8_t)(v >> (8 * i));
        pbw_bytes(w, &b, 1);
    }
}

static void pbw_varint_field(pbw *w, unsigned field, uint64_t v)
{
    pbw_key(w, field, 0);
    pbw_varint(w, v);
}

static void pbw_len_field(pbw *w, unsigned field, const void *data, size_t n)
{
    pbw_key(w, field, 2);
    pbw_varint(w, n);
    pbw_bytes(w, data, n);
}

static void pbw_string_field(pbw *w, unsigned field, const char *s) { pbw_len_field(w, field, s, strlen(s)); }

static void pbw_free(pbw *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static uint32_t float_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static uint64_t double_bits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

/* ------------------------------------------------------ synthetic models */

typedef enum encoding {
    ENC_RAW,        /* raw_data, little-endian */
    ENC_PACKED,     /* float_data / double_data as one packed field */
    ENC_UNPACKED,   /* one float_data / double_data field per value */
} encoding;

typedef struct spec_tensor {
    char name[128];     /* without the "model." prefix */
    int n_dims;
    int64_t dims[2];
    int data_type;      /* 1 FLOAT, 11 DOUBLE, anything else as given */
    encoding enc;
    int packed_dims;
    int external;       /* data_location = EXTERNAL, no data */
    int64_t n_written;  /* values written; -1: the product of dims */
} spec_tensor;

typedef struct model_spec {
    int n;
    spec_tensor t[64];
    const char *prefix;    /* prepended to every name ("" or "model.") */
    int unknown_fields;    /* sprinkle fields of every wire type the reader must skip */
} model_spec;

/* The value the writer stores at index i of tensor `name`: centres 0, 1.25,
 * 2.5, ... (so the cutoff of K=3 is 2.5), widths 0.5, 0.75, ..., anything
 * else a full-precision pseudo-random number in [-1, 1]. */
static double synthetic_value(const char *name, int64_t i)
{
    if (strcmp(name, "rbf.centers") == 0) return 1.25 * (double)i;
    if (strcmp(name, "rbf.widths") == 0) return 0.5 + 0.25 * (double)i;
    unsigned h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return sin((double)(h % 1000) + 0.37 * (double)i);
}

/* The value as the file stores it: rounded to float32 for FLOAT. */
static double stored_value(const spec_tensor *s, int64_t i)
{
    double v = synthetic_value(s->name, i);
    return s->data_type == 11 ? v : (double)(float)v;
}

static int64_t spec_product(const spec_tensor *s)
{
    int64_t p = 1;
    for (int d = 0; d < s->n_dims; d++) p *= s->dims[d];
    return p;
}

static int64_t spec_count(const spec_tensor *s) { return s->n_written >= 0 ? s->n_written : spec_product(s); }

static void spec_add(model_spec *m, const char *name, int n_dims, int64_t d0, int64_t d1)
{
    spec_tensor *s = &m->t[m->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n_dims = n_dims;
    s->dims[0] = d0;
    s->dims[1] = d1;
    s->data_type = 1;
    s->enc = ENC_RAW;
    s->packed_dims = 1;
    s->n_written = -1;
}

static spec_tensor *spec_find(model_spec *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) return &m->t[i];
    return NULL;
}

static const spec_tensor *spec_get(const model_spec *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) return &m->t[i];
    return NULL;
}

static void spec_remove(model_spec *m, const char *name)
{
    spec_tensor *s = spec_find(m, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    int i = (int)(s - m->t);
    memmove(&m->t[i], &m->t[i + 1], sizeof(spec_tensor) * (size_t)(m->n - i - 1));
    m->n--;
}

static void spec_set_all(model_spec *m, int data_type, encoding enc, int packed_dims)
{
    for (int i = 0; i < m->n; i++) {
        m->t[i].data_type = data_type;
        m->t[i].enc = enc;
        m->t[i].packed_dims = packed_dims;
    }
}

static void spec_add_layer(model_spec *m, int l, int H, int K, int with_mixing)
{
    char name[128];
#define LAYER(suffix, nd, a, b)                                              \
    do {                                                                     \
        snprintf(name, sizeof name, "interactions.%d.%s", l, suffix);        \
        spec_add(m, name, nd, a, b);                                         \
    } while (0)
    LAYER("message.rbf_to_scalar.0.weight", 2, H, K);
    LAYER("message.rbf_to_scalar.0.bias", 1, H, 0);
    LAYER("message.rbf_to_scalar.2.weight", 2, 3 * H, H);
    LAYER("message.rbf_to_scalar.2.bias", 1, 3 * H, 0);
    if (with_mixing) LAYER("update.mixing_matrix", 2, 3, 3);
    LAYER("update.update_mlp.0.weight", 2, H, 2 * H);
    LAYER("update.update_mlp.0.bias", 1, H, 0);
    LAYER("update.update_mlp.2.weight", 2, 3 * H, H);
    LAYER("update.update_mlp.2.bias", 1, 3 * H, 0);
#undef LAYER
}

/* A complete model as student-model.md defines it (mixing in layers 0..L-2). */
static void spec_model(model_spec *m, int H, int K, int L)
{
    memset(m, 0, sizeof *m);
    m->prefix = "";
    spec_add(m, "embedding.weight", 2, PAINN_N_ELEMENTS, H);
    spec_add(m, "rbf.centers", 1, K, 0);
    spec_add(m, "rbf.widths", 1, K, 0);
    for (int l = 0; l < L; l++) spec_add_layer(m, l, H, K, l < L - 1);
    spec_add(m, "energy_head.0.weight", 2, H / 2, H);
    spec_add(m, "energy_head.0.bias", 1, H / 2, 0);
    spec_add(m, "energy_head.2.weight", 2, H / 4, H / 2);
    spec_add(m, "energy_head.2.bias", 1, H / 4, 0);
    spec_add(m, "energy_head.4.weight", 2, 1, H / 4);
    spec_add(m, "energy_head.4.bias", 1, 1, 0);
}

static void spec_tiny(model_spec *m) { spec_model(m, 4, 3, 2); }

/* Fields of every wire type that no reader of ONNX initializers needs. */
static void encode_unknown_fields(pbw *w)
{
    pbw_varint_field(w, 100, 300);
    pbw_key(w, 101, 1);
    pbw_fixed(w, 0x0123456789abcdefull, 8);
    pbw_key(w, 102, 5);
    pbw_fixed(w, 0xdeadbeef, 4);
    pbw_key(w, 103, 3); /* a group holding a varint and a string */
    pbw_varint_field(w, 1, 5);
    pbw_string_field(w, 2, "ab");
    pbw_key(w, 103, 4);
    pbw_string_field(w, 104, "unknown bytes");
}

static void encode_dims(pbw *w, const spec_tensor *s)
{
    if (s->packed_dims) {
        pbw packed = {0};
        for (int d = 0; d < s->n_dims; d++) pbw_varint(&packed, (uint64_t)s->dims[d]);
        pbw_len_field(w, 1, packed.buf, packed.len);
        pbw_free(&packed);
    } else {
        for (int d = 0; d < s->n_dims; d++) pbw_varint_field(w, 1, (uint64_t)s->dims[d]);
    }
}

/* Values as raw_data (field 9), float_data (4) or double_data (10). Other
 * data types get 8 zero bytes a value in raw_data (e.g. INT64). */
static void encode_values(pbw *w, const spec_tensor *s)
{
    int64_t n = spec_count(s);
    int is_double = s->data_type == 11;
    int width = is_double ? 8 : 4;
    pbw data = {0};
    for (int64_t i = 0; i < n; i++) {
        double v = synthetic_value(s->name, i);
        uint64_t bits = s->data_type == 1 ? float_bits((float)v) : is_double ? double_bits(v) : 0;
        if (s->data_type != 1 && !is_double) {
            pbw_fixed(&data, 0, 8);
        } else if (s->enc == ENC_UNPACKED) {
            pbw_key(&data, is_double ? 10 : 4, is_double ? 1 : 5);
            pbw_fixed(&data, bits, width);
        } else {
            pbw_fixed(&data, bits, width);
        }
    }
    if (s->enc == ENC_UNPACKED && (s->data_type == 1 || is_double))
        pbw_bytes(w, data.buf, data.len);
    else if (s->enc == ENC_PACKED && (s->data_type == 1 || is_double))
        pbw_len_field(w, is_double ? 10 : 4, data.buf, data.len);
    else
        pbw_len_field(w, 9, data.buf, data.len);
    pbw_free(&data);
}

/* TensorProto in the field order of real exports: dims, data_type, name, data. */
static void encode_tensor(pbw *w, const spec_tensor *s, const char *prefix, int unknown)
{
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix, s->name);
    encode_dims(w, s);
    pbw_varint_field(w, 2, (uint64_t)s->data_type);
    if (unknown) encode_unknown_fields(w);
    pbw_string_field(w, 8, name);
    if (s->external) {
        pbw external = {0};
        pbw_string_field(&external, 1, "location");
        pbw_string_field(&external, 2, "weights.bin");
        pbw_len_field(w, 13, external.buf, external.len);
        pbw_varint_field(w, 14, 1);
        pbw_free(&external);
    } else {
        encode_values(w, s);
    }
}

/* ModelProto{ir_version, producer_name, [unknown], graph{initializer...}}.
 * The graph is the last field, so every strict prefix of the buffer is
 * missing part of it. */
static void encode_model(pbw *w, const model_spec *m)
{
    pbw graph = {0};
    if (m->unknown_fields) {
        pbw node = {0};
        pbw_string_field(&node, 4, "ScatterElements");
        pbw_len_field(&graph, 1, node.buf, node.len);
        pbw_free(&node);
        encode_unknown_fields(&graph);
    }
    pbw_string_field(&graph, 2, "tiny");
    for (int i = 0; i < m->n; i++) {
        pbw tensor = {0};
        encode_tensor(&tensor, &m->t[i], m->prefix, m->unknown_fields);
        pbw_len_field(&graph, 5, tensor.buf, tensor.len);
        pbw_free(&tensor);
    }
    pbw_varint_field(w, 1, 8);
    pbw_string_field(w, 2, "distilmd-test");
    if (m->unknown_fields) encode_unknown_fields(w);
    pbw_len_field(w, 7, graph.buf, graph.len);
    pbw_free(&graph);
}

/* ------------------------------------------------------ files and checks */

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    CU_ASSERT_EQUAL(fwrite(data, 1, n, fp), n);
    CU_ASSERT_EQUAL(fclose(fp), 0);
}

static void temp_path(const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", TMP_DIR, name);
}

static void write_model(const model_spec *m, const char *path)
{
    pbw w = {0};
    encode_model(&w, m);
    write_bytes(path, w.buf, w.len);
    pbw_free(&w);
}

static uint8_t *read_bytes(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    CU_ASSERT_EQUAL_FATAL(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    CU_ASSERT_FATAL(n > 0);
    rewind(fp);
    uint8_t *buf = malloc((size_t)n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static int contains(const char *msg, const char *needle)
{
    if (strstr(msg, needle)) return 1;
    printf("\n    message \"%s\"\n    lacks   \"%s\"\n", msg, needle);
    return 0;
}

static int is_zeroed(const painn_model *m)
{
    painn_model zero;
    memset(&zero, 0, sizeof zero);
    return memcmp(m, &zero, sizeof zero) == 0;
}

/* Loading `path` must fail, leave the model zeroed, and give a message that
 * starts with the path and contains each of the NULL-terminated needles. */
static void expect_load_error(const char *path, ...)
{
    painn_model m;
    dm_error err = {{0}};
    CU_ASSERT_EQUAL(painn_model_load(path, &m, &err), -1);
    CU_ASSERT(is_zeroed(&m));
    CU_ASSERT(strncmp(err.msg, path, strlen(path)) == 0);
    va_list ap;
    va_start(ap, path);
    for (const char *needle; (needle = va_arg(ap, const char *));) CU_ASSERT(contains(err.msg, needle));
    va_end(ap);
    painn_model_free(&m);
}

/* Loading must fail with exactly "<path>: <expected>". */
static void expect_load_message(const char *path, const char *expected)
{
    painn_model m;
    dm_error err = {{0}};
    char want[DM_ERROR_MSG_MAX];
    snprintf(want, sizeof want, "%s: %s", path, expected);
    CU_ASSERT_EQUAL(painn_model_load(path, &m, &err), -1);
    CU_ASSERT(is_zeroed(&m));
    if (strcmp(err.msg, want) != 0) printf("\n    got  \"%s\"\n    want \"%s\"\n", err.msg, want);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
}

/* Writes the spec to a temporary file and expects loading to fail so. */
static void expect_spec_message(const model_spec *spec, const char *file, const char *expected)
{
    char path[256];
    temp_path(file, path, sizeof path);
    write_model(spec, path);
    expect_load_message(path, expected);
    unlink(path);
}

/* Every array of the model equals the spec's generator, value for value. */
static void check_array(const double *got, const model_spec *spec, const char *name)
{
    const spec_tensor *s = spec_get(spec, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    int64_t bad = 0;
    for (int64_t i = 0; i < spec_product(s); i++) bad += got[i] != stored_value(s, i);
    if (bad) printf("\n    %s: %lld values differ\n", name, (long long)bad);
    CU_ASSERT_EQUAL(bad, 0);
}

static long spec_parameters(const model_spec *m)
{
    long n = 0;
    for (int i = 0; i < m->n; i++) n += (long)spec_product(&m->t[i]);
    return n;
}

static void check_model_matches_spec(const painn_model *m, const model_spec *spec, int H, int K,
                                     int L)
{
    char name[128];
    CU_ASSERT_EQUAL(m->H, H);
    CU_ASSERT_EQUAL(m->K, K);
    CU_ASSERT_EQUAL(m->L, L);
    CU_ASSERT_EQUAL(m->cutoff, 1.25 * (K - 1));
    check_array(m->embedding, spec, "embedding.weight");
    check_array(m->rbf_centers, spec, "rbf.centers");
    check_array(m->rbf_widths, spec, "rbf.widths");
    for (int l = 0; l < L; l++) {
        const painn_layer *y = &m->layers[l];
#define CHECK(field, suffix)                                                 \
    do {                                                                     \
        snprintf(name, sizeof name, "interactions.%d.%s", l, suffix);        \
        check_array(y->field, spec, name);                                   \
    } while (0)
        CHECK(W1, "message.rbf_to_scalar.0.weight");
        CHECK(b1, "message.rbf_to_scalar.0.bias");
        CHECK(W2, "message.rbf_to_scalar.2.weight");
        CHECK(b2, "message.rbf_to_scalar.2.bias");
        CHECK(W3, "update.update_mlp.0.weight");
        CHECK(b3, "update.update_mlp.0.bias");
        CHECK(W4, "update.update_mlp.2.weight");
        CHECK(b4, "update.update_mlp.2.bias");
        if (l < L - 1) {
            CU_ASSERT_EQUAL(y->has_mixing, 1);
            CHECK(mixing, "update.mixing_matrix");
        } else {
            CU_ASSERT_EQUAL(y->has_mixing, 0);
            for (int k = 0; k < 9; k++) CU_ASSERT_EQUAL(y->mixing[k], 0.0);
        }
#undef CHECK
    }
    check_array(m->W5, spec, "energy_head.0.weight");
    check_array(m->b5, spec, "energy_head.0.bias");
    check_array(m->W6, spec, "energy_head.2.weight");
    check_array(m->b6, spec, "energy_head.2.bias");
    check_array(m->W7, spec, "energy_head.4.weight");
    check_array(m->b7, spec, "energy_head.4.bias");
}

/* Writes, loads and checks a spec that must load. */
static void check_spec_loads(const model_spec *spec, int H, int K, int L, long parameters)
{
    char path[256];
    temp_path("model.onnx", path, sizeof path);
    write_model(spec, path);
    painn_model m;
    dm_error err = {{0}};
    int rc = painn_model_load(path, &m, &err);
    if (rc) printf("\n    %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    check_model_matches_spec(&m, spec, H, K, L);
    CU_ASSERT_EQUAL(m.n_parameters, parameters);
    CU_ASSERT_STRING_EQUAL(m.path, path);
    painn_model_free(&m);
    CU_ASSERT(is_zeroed(&m));
    unlink(path);
}

/* ------------------------------------------------ onnx_parse_initializers */

/* Parses the spec's buffer and compares every tensor with the spec. */
static void check_parse_matches_spec(const model_spec *spec)
{
    pbw w = {0};
    encode_model(&w, spec);
    onnx_initializers init;
    dm_error err = {{0}};
    int rc = onnx_parse_initializers(w.buf, w.len, "synthetic", &init, &err);
    if (rc) printf("\n    %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(init.n, spec->n);
    for (int i = 0; i < spec->n; i++) {
        const spec_tensor *s = &spec->t[i];
        char name[160];
        snprintf(name, sizeof name, "%s%s", spec->prefix, s->name);
        const onnx_tensor *t = onnx_find(&init, name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_PTR_EQUAL(t, &init.tensors[i]); /* file order kept */
        CU_ASSERT_EQUAL(t->n_dims, s->n_dims);
        for (int d = 0; d < s->n_dims; d++) CU_ASSERT_EQUAL(t->dims[d], s->dims[d]);
        CU_ASSERT_EQUAL_FATAL(t->n_values, spec_product(s));
        int64_t bad = 0;
        for (int64_t k = 0; k < t->n_values; k++) bad += t->values[k] != stored_value(s, k);
        CU_ASSERT_EQUAL(bad, 0);
    }
    CU_ASSERT_PTR_NULL(onnx_find(&init, "no.such.tensor"));
    onnx_initializers_free(&init);
    CU_ASSERT_EQUAL(init.n, 0);
    CU_ASSERT_PTR_NULL(init.tensors);
    pbw_free(&w);
}

static void test_parse_float_encodings(void)
{
    model_spec spec;
    spec_tiny(&spec);
    const encoding encodings[] = {ENC_RAW, ENC_PACKED, ENC_UNPACKED};
    for (int e = 0; e < 3; e++)
        for (int packed_dims = 0; packed_dims <= 1; packed_dims++) {
            spec_set_all(&spec, 1, encodings[e], packed_dims);
            check_parse_matches_spec(&spec);
        }
}

static void test_parse_double_encodings(void)
{
    model_spec spec;
    spec_tiny(&spec);
    const encoding encodings[] = {ENC_RAW, ENC_PACKED, ENC_UNPACKED};
    for (int e = 0; e < 3; e++) {
        spec_set_all(&spec, 11, encodings[e], e % 2);
        check_parse_matches_spec(&spec);
    }
}

/* raw_data and float_data of the same floats decode to the same doubles. */
static void test_parse_raw_equals_float_data(void)
{
    model_spec spec;
    spec_tiny(&spec);
    onnx_initializers parsed[2];
    for (int e = 0; e < 2; e++) {
        spec_set_all(&spec, 1, e == 0 ? ENC_RAW : ENC_PACKED, 1);
        pbw w = {0};
        encode_model(&w, &spec);
        dm_error err = {{0}};
        CU_ASSERT_EQUAL_FATAL(onnx_parse_initializers(w.buf, w.len, "synthetic", &parsed[e], &err), 0);
        pbw_free(&w);
    }
    CU_ASSERT_EQUAL_FATAL(parsed[0].n, parsed[1].n);
    for (int i = 0; i < parsed[0].n; i++) {
        const onnx_tensor *a = &parsed[0].tensors[i], *b = &parsed[1].tensors[i];
        CU_ASSERT_STRING_EQUAL(a->name, b->name);
        CU_ASSERT_EQUAL_FATAL(a->n_values, b->n_values);
        CU_ASSERT(memcmp(a->values, b->values, sizeof(double) * (size_t)a->n_values) == 0);
    }
    onnx_initializers_free(&parsed[0]);
    onnx_initializers_free(&parsed[1]);
}

static void test_parse_skips_unknown_fields(void)
{
    model_spec spec;
    spec_tiny(&spec);
    spec.unknown_fields = 1;
    spec.prefix = "model.";
    check_parse_matches_spec(&spec);
    spec_set_all(&spec, 1, ENC_UNPACKED, 0);
    check_parse_matches_spec(&spec);
}

/* A scalar (no dims) holds one value; a dim of 0 holds none. */
static void test_parse_scalar_and_empty(void)
{
    model_spec spec = {.prefix = ""};
    spec_add(&spec, "scalar", 0, 0, 0);
    spec_add(&spec, "empty", 2, 3, 0);
    check_parse_matches_spec(&spec);
}

/* Parsing must fail with a message that starts with the label and contains
 * each NULL-terminated needle. */
static void expect_parse_error(const uint8_t *buf, size_t len, ...)
{
    onnx_initializers init;
    dm_error err = {{0}};
    CU_ASSERT_EQUAL(onnx_parse_initializers(buf, len, "LABEL", &init, &err), -1);
    CU_ASSERT_EQUAL(init.n, 0);
    CU_ASSERT_PTR_NULL(init.tensors);
    CU_ASSERT(contains(err.msg, "LABEL: "));
    CU_ASSERT(strncmp(err.msg, "LABEL: ", 7) == 0);
    va_list ap;
    va_start(ap, len);
    for (const char *needle; (needle = va_arg(ap, const char *));) CU_ASSERT(contains(err.msg, needle));
    va_end(ap);
}

static void expect_spec_parse_error(const model_spec *spec, const char *n1, const char *n2)
{
    pbw w = {0};
    encode_model(&w, spec);
    expect_parse_error(w.buf, w.len, n1, n2, NULL);
    pbw_free(&w);
}

static void test_parse_tensor_errors(void)
{
    model_spec spec;
    spec_tiny(&spec);
    spec_find(&spec, "energy_head.2.weight")->data_type = 7;
    expect_spec_parse_error(&spec, "tensor 'energy_head.2.weight'", "data type 7 (INT64)");

    spec_tiny(&spec);
    spec_find(&spec, "rbf.widths")->data_type = 10;
    expect_spec_parse_error(&spec, "tensor 'rbf.widths'", "data type 10 (FLOAT16)");

    spec_tiny(&spec);
    spec_find(&spec, "rbf.widths")->external = 1;
    expect_spec_parse_error(&spec, "tensor 'rbf.widths'", "external data not supported");

    const encoding encodings[] = {ENC_RAW, ENC_PACKED, ENC_UNPACKED};
    for (int e = 0; e < 3; e++) {
        spec_tiny(&spec);
        spec_tensor *s = spec_find(&spec, "energy_head.0.weight"); /* [2, 4] */
        s->enc = encodings[e];
        s->n_written = 7;
        expect_spec_parse_error(&spec, "tensor 'energy_head.0.weight' has 7 values",
                                "dims [2, 4] need 8");
    }
}

/* Hand-made TensorProtos with inconsistent data fields. */
static void test_parse_inconsistent_data(void)
{
    const char *needles[] = {"has 6 bytes of raw_data, not a multiple of 4",
                             "has both raw_data and float_data", "is FLOAT but has double_data",
                             "negative dimension -2", "initializer #0"};
    for (int c = 0; c < 5; c++) {
        pbw tensor = {0}, graph = {0}, model = {0};
        pbw_varint_field(&tensor, 1, c == 3 ? (uint64_t)-2 : 1);
        pbw_varint_field(&tensor, 2, 1);
        if (c != 4) pbw_string_field(&tensor, 8, "t");
        if (c == 0) pbw_len_field(&tensor, 9, "abcdef", 6);
        if (c == 1 || c == 3 || c == 4) pbw_len_field(&tensor, 9, "abcd", 4);
        if (c == 1) {
            pbw_key(&tensor, 4, 5);
            pbw_fixed(&tensor, float_bits(1.0f), 4);
        }
        if (c == 2) {
            pbw_key(&tensor, 10, 1);
            pbw_fixed(&tensor, double_bits(1.0), 8);
        }
        pbw_len_field(&graph, 5, tensor.buf, tensor.len);
        pbw_varint_field(&model, 1, 8);
        pbw_len_field(&model, 7, graph.buf, graph.len);
        expect_parse_error(model.buf, model.len, needles[c], NULL);
        pbw_free(&tensor);
        pbw_free(&graph);
        pbw_free(&model);
    }
}

static void test_parse_not_onnx(void)
{
    expect_parse_error((const uint8_t *)"", 0, "not an ONNX model", "empty", NULL);
    const char *text = "3\nwater\nO 0.0 0.0 0.1\nH 0.0 0.7 -0.5\nH 0.0 -0.7 -0.5\n";
    expect_parse_error((const uint8_t *)text, strlen(text), "not an ONNX model (", NULL);
    const char *prose = "This is not a model at all, just some words.\n";
    expect_parse_error((const uint8_t *)prose, strlen(prose), "not an ONNX model (", NULL);

    /* a valid message without a graph, and one without ir_version */
    pbw w = {0};
    pbw_varint_field(&w, 1, 8);
    pbw_string_field(&w, 2, "producer");
    expect_parse_error(w.buf, w.len, "not an ONNX model (no graph field found)", NULL);
    pbw_free(&w);
    pbw_len_field(&w, 7, "", 0);
    expect_parse_error(w.buf, w.len, "not an ONNX model (no ir_version field found)", NULL);
    pbw_free(&w);

    /* wire types 6 and 7 do not exist; the offset of the bad key is given */
    for (int wire = 6; wire <= 7; wire++) {
        pbw_varint_field(&w, 1, 8);      /* bytes 0-1 */
        pbw_key(&w, 3, wire);            /* byte 2 */
        char needle[64];
        snprintf(needle, sizeof needle, "invalid wire type %d at byte offset 2", wire);
        expect_parse_error(w.buf, w.len, "not an ONNX model (", needle, NULL);
        pbw_free(&w);
    }

    /* graph with the wrong wire type; a known field with the wrong wire type */
    pbw_varint_field(&w, 1, 8);
    pbw_varint_field(&w, 7, 1);
    expect_parse_error(w.buf, w.len, "not an ONNX model (", "field 7", NULL);
    pbw_free(&w);

    /* an end-group without a group, and a group without its end */
    pbw_varint_field(&w, 1, 8);
    pbw_key(&w, 9, 4);
    expect_parse_error(w.buf, w.len, "not an ONNX model (", "end-group", NULL);
    pbw_free(&w);
    pbw_varint_field(&w, 1, 8);
    pbw_key(&w, 9, 3);
    pbw_varint_field(&w, 1, 8);
    expect_parse_error(w.buf, w.len, "not an ONNX model (", "no end", NULL);
    pbw_free(&w);

    /* a varint of 11 bytes */
    pbw_key(&w, 1, 0);
    for (int i = 0; i < 10; i++) pbw_bytes(&w, "\xff", 1);
    pbw_bytes(&w, "\x01", 1);
    expect_parse_error(w.buf, w.len, "not an ONNX model (", "varint at byte offset 1", NULL);
    pbw_free(&w);
}

/* A copy of buf[0..n) in its own allocation, so that ASan sees any read past n. */
static uint8_t *exact_copy(const uint8_t *buf, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    if (n) memcpy(copy, buf, n);
    return copy;
}

/* Every strict prefix of a model lacks part of its graph (the last field). */
static void test_parse_every_prefix_fails(void)
{
    model_spec spec;
    spec_tiny(&spec);
    spec.unknown_fields = 1;
    spec_set_all(&spec, 1, ENC_UNPACKED, 0);
    pbw w = {0};
    encode_model(&w, &spec);
    int failures = 0;
    for (size_t n = 0; n < w.len; n++) {
        uint8_t *copy = exact_copy(w.buf, n);
        onnx_initializers init;
        dm_error err = {{0}};
        int rc = onnx_parse_initializers(copy, n, "PREFIX", &init, &err);
        if (rc != -1 || strncmp(err.msg, "PREFIX: not an ONNX model (", 27) != 0) {
            failures++;
            if (failures < 5) printf("\n    prefix %zu: rc %d, \"%s\"\n", n, rc, err.msg);
            if (rc == 0) onnx_initializers_free(&init);
        }
        free(copy);
    }
    CU_ASSERT_EQUAL(failures, 0);
    pbw_free(&w);
}

/* Random byte changes and random buffers: an error naming the label or, by
 * chance, a parse; never a crash or a read outside the buffer. */
static void test_parse_corrupt_buffers(void)
{
    model_spec spec;
    spec_tiny(&spec);
    spec.unknown_fields = 1;
    pbw w = {0};
    encode_model(&w, &spec);
    test_rng rng = {12345};
    int errors = 0, trials = 3000;
    for (int trial = 0; trial < trials; trial++) {
        size_t n = w.len;
        uint8_t *copy;
        if (trial % 3 == 2) {
            n = (size_t)(test_uniform(&rng) * 200);
            copy = malloc(n ? n : 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
            for (size_t i = 0; i < n; i++) copy[i] = (uint8_t)(test_uniform(&rng) * 256);
        } else {
            copy = exact_copy(w.buf, n);
            int changes = 1 + (int)(test_uniform(&rng) * 4);
            for (int c = 0; c < changes; c++)
                copy[(size_t)(test_uniform(&rng) * (double)n)] = (uint8_t)(test_uniform(&rng) * 256);
        }
        onnx_initializers init;
        dm_error err = {{0}};
        if (onnx_parse_initializers(copy, n, "CORRUPT", &init, &err) == 0) {
            onnx_initializers_free(&init);
        } else {
            errors++;
            CU_ASSERT(strncmp(err.msg, "CORRUPT: ", 9) == 0);
            CU_ASSERT_EQUAL(init.n, 0);
        }
        free(copy);
    }
    CU_ASSERT(errors > 0);
    pbw_free(&w);
}

/* ------------------------------------------------- synthetic model files */

static void test_tiny_model_loads(void)
{
    model_spec spec;
    spec_tiny(&spec);
    /* independent count: embedding 404, rbf 6, per layer 16 + 60 + 36 + 60,
     * mixing 9 (layer 0 only), readout 10 + 3 + 2 */
    CU_ASSERT_EQUAL(spec_parameters(&spec), 404 + 6 + 2 * (16 + 60 + 36 + 60) + 9 + 15);
    check_spec_loads(&spec, 4, 3, 2, spec_parameters(&spec));
}

static void test_tiny_model_variants_load(void)
{
    model_spec spec;
    spec_tiny(&spec);
    spec.prefix = "model.";
    spec.unknown_fields = 1;
    check_spec_loads(&spec, 4, 3, 2, spec_parameters(&spec));

    spec_tiny(&spec);
    spec_set_all(&spec, 11, ENC_PACKED, 0);
    check_spec_loads(&spec, 4, 3, 2, spec_parameters(&spec));

    spec_model(&spec, 8, 5, 3); /* a larger one, float_data one value a field */
    spec_set_all(&spec, 1, ENC_UNPACKED, 1);
    check_spec_loads(&spec, 8, 5, 3, spec_parameters(&spec));

    spec_model(&spec, 4, 2, 1); /* one layer: no mixing matrix at all; mixed data types */
    spec_find(&spec, "rbf.centers")->data_type = 11;
    spec_find(&spec, "energy_head.0.weight")->data_type = 11;
    check_spec_loads(&spec, 4, 2, 1, spec_parameters(&spec));
}

/* The last layer's mixing matrix is unused: accepted, not stored, not counted. */
static void test_last_layer_mixing_ignored(void)
{
    model_spec spec;
    spec_tiny(&spec);
    long parameters = spec_parameters(&spec);
    spec_add(&spec, "interactions.1.update.mixing_matrix", 2, 3, 3);
    check_spec_loads(&spec, 4, 3, 2, parameters);

    spec_find(&spec, "interactions.1.update.mixing_matrix")->dims[0] = 9;
    spec_find(&spec, "interactions.1.update.mixing_matrix")->dims[1] = 1;
    expect_spec_message(&spec, "last_mixing.onnx",
                        "tensor 'interactions.1.update.mixing_matrix' has shape [9, 1], "
                        "expected [3, 3]");
}

static void test_missing_tensor(void)
{
    model_spec spec;
    spec_tiny(&spec);
    spec_remove(&spec, "interactions.1.update.update_mlp.0.weight");
    expect_spec_message(&spec, "missing.onnx",
                        "missing tensor 'interactions.1.update.update_mlp.0.weight'");

    spec_tiny(&spec);
    spec_remove(&spec, "interactions.0.update.mixing_matrix");
    expect_spec_message(&spec, "missing_mixing.onnx",
                        "missing tensor 'interactions.0.update.mixing_matrix'");

    spec_tiny(&spec);
    spec.prefix = "model.";
    spec_remove(&spec, "energy_head.4.bias");
    expect_spec_message(&spec, "missing_bias.onnx", "missing tensor 'energy_head.4.bias'");

    spec_tiny(&spec);
    spec_remove(&spec, "embedding.weight");
    expect_spec_message(&spec, "missing_embedding.onnx", "missing tensor 'embedding.weight'");

    /* layers 0 and 2 but not 1: L = 3, layer 1 missing */
    spec_model(&spec, 4, 3, 3);
    for (int i = spec.n - 1; i >= 0; i--)
        if (strncmp(spec.t[i].name, "interactions.1.", 15) == 0) spec_remove(&spec, spec.t[i].name);
    expect_spec_message(&spec, "gap.onnx",
                        "missing tensor 'interactions.1.message.rbf_to_scalar.0.weight'");

    /* no layer at all */
    spec_model(&spec, 4, 3, 0);
    expect_spec_message(&spec, "no_layers.onnx",
                        "missing tensor 'interactions.0.message.rbf_to_scalar.0.weight'");
}

static void reshape(model_spec *spec, const char *name, int n_dims, int64_t d0, int64_t d1)
{
    spec_tensor *s = spec_find(spec, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    s->n_dims = n_dims;
    s->dims[0] = d0;
    s->dims[1] = d1;
}

static void test_misshaped_tensor(void)
{
    model_spec spec;
    spec_tiny(&spec); /* H = 4, K = 3 */
    reshape(&spec, "interactions.0.message.rbf_to_scalar.2.weight", 2, 4, 12);
    expect_spec_message(&spec, "transposed.onnx",
                        "tensor 'interactions.0.message.rbf_to_scalar.2.weight' has shape "
                        "[4, 12], expected [12, 4]");

    spec_tiny(&spec);
    reshape(&spec, "interactions.1.message.rbf_to_scalar.0.weight", 2, 4, 2);
    expect_spec_message(&spec, "wrong_k.onnx",
                        "tensor 'interactions.1.message.rbf_to_scalar.0.weight' has shape "
                        "[4, 2], expected [4, 3]");

    spec_tiny(&spec);
    reshape(&spec, "interactions.0.update.update_mlp.0.bias", 2, 4, 1);
    expect_spec_message(&spec, "bias_2d.onnx",
                        "tensor 'interactions.0.update.update_mlp.0.bias' has shape [4, 1], "
                        "expected [4]");

    spec_tiny(&spec);
    reshape(&spec, "energy_head.2.weight", 2, 2, 2);
    expect_spec_message(&spec, "readout.onnx",
                        "tensor 'energy_head.2.weight' has shape [2, 2], expected [1, 2]");

    spec_tiny(&spec);
    reshape(&spec, "rbf.widths", 1, 4, 0);
    expect_spec_message(&spec, "widths.onnx", "tensor 'rbf.widths' has shape [4], expected [3]");

    spec_tiny(&spec);
    reshape(&spec, "embedding.weight", 2, 100, 4);
    expect_spec_message(&spec, "embedding.onnx",
                        "tensor 'embedding.weight' has shape [100, 4], expected [101, H]");

    spec_tiny(&spec);
    reshape(&spec, "rbf.centers", 2, 3, 1);
    expect_spec_message(&spec, "centers.onnx",
                        "tensor 'rbf.centers' has shape [3, 1], expected [K] with K >= 1");

    spec_tiny(&spec);
    reshape(&spec, "interactions.0.update.mixing_matrix", 1, 9, 0);
    expect_spec_message(&spec, "mixing.onnx",
                        "tensor 'interactions.0.update.mixing_matrix' has shape [9], "
                        "expected [3, 3]");
}

static void test_unsupported_data_type(void)
{
    model_spec spec;
    spec_tiny(&spec);
    spec_find(&spec, "interactions.0.update.update_mlp.2.weight")->data_type = 7;
    char path[256];
    temp_path("int64.onnx", path, sizeof path);
    write_model(&spec, path);
    expect_load_error(path, "tensor 'interactions.0.update.update_mlp.2.weight'",
                      "data type 7 (INT64)", NULL);
    unlink(path);

    spec_tiny(&spec);
    spec.prefix = "model.";
    spec_find(&spec, "embedding.weight")->external = 1;
    temp_path("external.onnx", path, sizeof path);
    write_model(&spec, path);
    expect_load_error(path, "tensor 'model.embedding.weight'", "external data not supported",
                      NULL);
    unlink(path);
}

static void test_model_content_errors(void)
{
    model_spec spec;
    spec_tiny(&spec);
    spec_add(&spec, "interactions.0.update.layer_norm.weight", 1, 4, 0);
    expect_spec_message(&spec, "extra.onnx",
                        "unexpected tensor 'interactions.0.update.layer_norm.weight' (not part "
                        "of the PaiNN student model in docs/student-model.md)");

    spec_tiny(&spec);
    spec_add(&spec, "model.embedding.weight", 2, PAINN_N_ELEMENTS, 4);
    expect_spec_message(&spec, "duplicate.onnx",
                        "tensor 'embedding.weight' appears more than once (after stripping the "
                        "'model.' prefix)");

    spec_model(&spec, 6, 3, 2);
    expect_spec_message(&spec, "h6.onnx",
                        "tensor 'embedding.weight' has H = 6 columns, expected a multiple of 4 "
                        "(the readout has H/2 and H/4 channels)");

    spec_tiny(&spec);
    reshape(&spec, "rbf.centers", 1, 1, 0); /* the only centre is 0 */
    reshape(&spec, "rbf.widths", 1, 1, 0);
    reshape(&spec, "interactions.0.message.rbf_to_scalar.0.weight", 2, 4, 1);
    reshape(&spec, "interactions.1.message.rbf_to_scalar.0.weight", 2, 4, 1);
    expect_spec_message(&spec, "cutoff.onnx",
                        "tensor 'rbf.centers' ends with 0, expected a positive cutoff distance");
}

/* --------------------------------------------------------- error files */

static void test_nonexistent_file(void)
{
    char path[256];
    temp_path("does_not_exist.onnx", path, sizeof path);
    expect_load_error(path, "cannot open", NULL);
}

static void test_empty_and_text_files(void)
{
    char path[256];
    temp_path("empty.onnx", path, sizeof path);
    write_bytes(path, "", 0);
    expect_load_message(path, "not an ONNX model (the file is empty)");
    unlink(path);

    temp_path("notes.txt", path, sizeof path);
    const char *text = "These are not the weights you are looking for.\n";
    write_bytes(path, text, strlen(text));
    expect_load_error(path, ": not an ONNX model (", NULL);
    unlink(path);

    expect_load_error(test_shared_path("molecules/water.xyz"), ": not an ONNX model (", NULL);
    expect_load_error(test_shared_path("molecules/caffeine.xyz"), ": not an ONNX model (", NULL);
    expect_load_error(TMP_DIR, NULL); /* a directory: read error */
}

static void test_truncated_real_models(void)
{
    const char *models[] = {"models/student_21k.onnx", "models/student_427k.onnx"};
    for (int k = 0; k < 2; k++) {
        size_t len;
        uint8_t *buf = read_bytes(test_shared_path(models[k]), &len);
        size_t cuts[] = {1, 10, 100, len / 2, len - 100, len - 1};
        for (int c = 0; c < 6; c++) {
            char path[256], name[64];
            snprintf(name, sizeof name, "truncated_%d_%zu.onnx", k, cuts[c]);
            temp_path(name, path, sizeof path);
            write_bytes(path, buf, cuts[c]);
            expect_load_error(path, ": not an ONNX model (", NULL);
            unlink(path);
        }
        free(buf);
    }
}

/* --------------------------------------------------------- shipped models */

typedef struct shipped {
    const char *file;
    int H, L, K;
    double cutoff;
    long parameters;
} shipped;

/* The table of shared/docs/student-model.md. */
static const shipped SHIPPED[] = {
    {"models/student_427k.onnx", 128, 3, 20, 5.0, 427323},
    {"models/student_77k.onnx", 64, 2, 12, 5.0, 77218},
    {"models/student_21k.onnx", 32, 2, 10, 5.0, 21470},
};

static int all_float32(const double *x, long n)
{
    for (long i = 0; i < n; i++)
        if (x[i] != (double)(float)x[i] || !isfinite(x[i])) return 0;
    return 1;
}

static void test_shipped_models_load(void)
{
    for (int k = 0; k < 3; k++) {
        const shipped *s = &SHIPPED[k];
        painn_model m;
        dm_error err = {{0}};
        int rc = painn_model_load(test_shared_path(s->file), &m, &err);
        if (rc) printf("\n    %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_EQUAL(m.H, s->H);
        CU_ASSERT_EQUAL(m.L, s->L);
        CU_ASSERT_EQUAL(m.K, s->K);
        CU_ASSERT_EQUAL(m.cutoff, s->cutoff);
        CU_ASSERT_EQUAL(m.n_parameters, s->parameters);
        long H = m.H, K = m.K;
        CU_ASSERT(all_float32(m.embedding, PAINN_N_ELEMENTS * H));
        CU_ASSERT(all_float32(m.rbf_centers, K) && all_float32(m.rbf_widths, K));
        for (int l = 0; l < m.L; l++) {
            const painn_layer *y = &m.layers[l];
            CU_ASSERT_EQUAL(y->has_mixing, l < m.L - 1);
            CU_ASSERT(all_float32(y->W1, H * K) && all_float32(y->b1, H));
            CU_ASSERT(all_float32(y->W2, 3 * H * H) && all_float32(y->b2, 3 * H));
            CU_ASSERT(all_float32(y->W3, 2 * H * H) && all_float32(y->b3, H));
            CU_ASSERT(all_float32(y->W4, 3 * H * H) && all_float32(y->b4, 3 * H));
            CU_ASSERT(all_float32(y->mixing, 9));
        }
        CU_ASSERT(all_float32(m.W5, H * H / 2) && all_float32(m.b5, H / 2));
        CU_ASSERT(all_float32(m.W6, H * H / 8) && all_float32(m.b6, H / 4));
        CU_ASSERT(all_float32(m.W7, H / 4) && all_float32(m.b7, 1));
        painn_model_free(&m);
        CU_ASSERT(is_zeroed(&m));
        painn_model_free(&m); /* freeing a zeroed model is harmless */
    }
}

/* The raw initializers: 3 + 8 per layer + (L-1) mixing + 6 readout tensors,
 * all FLOAT with names as the doc lists them (427k: "model." prefixed). */
static void test_shipped_initializers(void)
{
    for (int k = 0; k < 3; k++) {
        const shipped *s = &SHIPPED[k];
        onnx_initializers init;
        dm_error err = {{0}};
        int rc = onnx_read_initializers(test_shared_path(s->file), &init, &err);
        if (rc) printf("\n    %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_EQUAL(init.n, 3 + 8 * s->L + (s->L - 1) + 6);
        const char *prefix = k == 0 ? "model." : "";
        char name[128];
        snprintf(name, sizeof name, "%sinteractions.%d.update.update_mlp.0.weight", prefix, s->L - 1);
        const onnx_tensor *t = onnx_find(&init, name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_EQUAL(t->n_dims, 2);
        CU_ASSERT_EQUAL(t->dims[0], s->H);
        CU_ASSERT_EQUAL(t->dims[1], 2 * s->H);
        long total = 0;
        for (int i = 0; i < init.n; i++) total += (long)init.tensors[i].n_values;
        CU_ASSERT_EQUAL(total, s->parameters);
        onnx_initializers_free(&init);
    }
}

/* -------------------------------------------------------------------- main */

/* Removes the temporary directory and whatever a failed test left in it. */
static void remove_tmp_dir(void)
{
    DIR *dir = opendir(TMP_DIR);
    if (dir) {
        for (struct dirent *e; (e = readdir(dir));) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", TMP_DIR, e->d_name);
            unlink(path);
        }
        closedir(dir);
    }
    if (rmdir(TMP_DIR) != 0) fprintf(stderr, "could not remove %s\n", TMP_DIR);
}

int main(void)
{
    test_require_shared();
    snprintf(TMP_DIR, sizeof TMP_DIR, "/tmp/distilmd_test_model_loader_XXXXXX");
    if (!mkdtemp(TMP_DIR)) {
        perror("mkdtemp");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    TEST_SUITE("onnx_parse_initializers", TEST_CASE(test_parse_float_encodings),
               TEST_CASE(test_parse_double_encodings), TEST_CASE(test_parse_raw_equals_float_data),
               TEST_CASE(test_parse_skips_unknown_fields), TEST_CASE(test_parse_scalar_and_empty),
               TEST_CASE(test_parse_tensor_errors), TEST_CASE(test_parse_inconsistent_data),
               TEST_CASE(test_parse_not_onnx), TEST_CASE(test_parse_every_prefix_fails),
               TEST_CASE(test_parse_corrupt_buffers));
    TEST_SUITE("painn_model_load (synthetic files)", TEST_CASE(test_tiny_model_loads),
               TEST_CASE(test_tiny_model_variants_load), TEST_CASE(test_last_layer_mixing_ignored),
               TEST_CASE(test_missing_tensor), TEST_CASE(test_misshaped_tensor),
               TEST_CASE(test_unsupported_data_type), TEST_CASE(test_model_content_errors));
    TEST_SUITE("painn_model_load (bad files)", TEST_CASE(test_nonexistent_file),
               TEST_CASE(test_empty_and_text_files), TEST_CASE(test_truncated_real_models));
    TEST_SUITE("shipped models", TEST_CASE(test_shipped_models_load),
               TEST_CASE(test_shipped_initializers));
    int rc = test_run_all();
    remove_tmp_dir();
    return rc;
}
