/* onnx_reader.c — reads the initializers (trained weights) of an ONNX file.
 *
 * Protobuf wire format: a message is a sequence of fields, each a key varint
 * (field_number << 3 | wire_type) followed by its payload:
 *   wire 0  varint: 7 bits per byte, least significant group first, the high
 *           bit of a byte set while more bytes follow (at most 10 bytes)
 *   wire 1  fixed64: 8 bytes, little-endian
 *   wire 2  length-delimited: a varint byte count, then that many bytes
 *           (strings, bytes, sub-messages, packed repeated scalars)
 *   wire 3  start group ... wire 4 end group (deprecated; skipped)
 *   wire 5  fixed32: 4 bytes, little-endian
 * Wire types 6 and 7 do not exist. Every read is bounds-checked against the
 * message it belongs to, so a truncated or garbage buffer gives an error with
 * the byte offset in the file where parsing failed.
 *
 * The path through ONNX: ModelProto.ir_version (1), ModelProto.graph (7) ->
 * GraphProto.initializer (5, repeated TensorProto) -> TensorProto fields
 * dims (1), data_type (2), float_data (4), name (8), raw_data (9),
 * double_data (10), data_location (14). */
#include "onnx_reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_GROUP_START = 3, PB_GROUP_END = 4,
       PB_FIXED32 = 5 };
enum { PB_MAX_GROUP_DEPTH = 64 };
enum { ONNX_FLOAT = 1, ONNX_DOUBLE = 11 };
enum { ONNX_LOCATION_EXTERNAL = 1 };

/* A protobuf message: bytes [0, len) of buf, which begin at byte `base` of
 * the whole buffer (so errors can give absolute offsets); pos is the cursor. */
typedef struct pb_cursor {
    const uint8_t *buf;
    size_t len, pos, base;
} pb_cursor;

/* One field as read from the wire. */
typedef struct pb_field {
    uint32_t number;
    int wire;
    size_t offset;        /* absolute offset of the key */
    uint64_t value;       /* wire 0: the varint; wire 1, 5: the little-endian bits */
    const uint8_t *data;  /* wire 2: the payload */
    size_t data_len;
    size_t data_offset;   /* wire 2: absolute offset of the payload */
} pb_field;

static pb_cursor pb_sub_cursor(const pb_field *f)
{
    pb_cursor c = {f->data, f->data_len, 0, f->data_offset};
    return c;
}

static size_t pb_remaining(const pb_cursor *c) { return c->len - c->pos; }

static int pb_read_varint(pb_cursor *c, uint64_t *v, dm_error *err)
{
    size_t start = c->base + c->pos;
    uint64_t result = 0;
    for (int i = 0; i < 10; i++) {
        if (c->pos >= c->len)
            return dm_fail(err, "truncated varint at byte offset %zu", start);
        uint8_t byte = c->buf[c->pos++];
        if (i == 9 && byte > 1)
            return dm_fail(err, "varint at byte offset %zu overflows 64 bits", start);
        result |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *v = result;
            return 0;
        }
    }
    return dm_fail(err, "varint at byte offset %zu is longer than 10 bytes", start);
}

static uint64_t pb_little_endian(const uint8_t *p, int n_bytes)
{
    uint64_t v = 0;
    for (int i = n_bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int pb_read_fixed(pb_cursor *c, int n_bytes, const pb_field *f, dm_error *err)
{
    if (pb_remaining(c) < (size_t)n_bytes)
        return dm_fail(err, "field %u at byte offset %zu needs %d bytes, but only %zu remain",
                       f->number, f->offset, n_bytes, pb_remaining(c));
    c->pos += (size_t)n_bytes;
    return 0;
}

static int pb_read_field_raw(pb_cursor *c, pb_field *f, int depth, dm_error *err);

/* Skips the fields of a group up to its matching end-group key. */
static int pb_skip_group(pb_cursor *c, const pb_field *start, int depth, dm_error *err)
{
    if (depth >= PB_MAX_GROUP_DEPTH)
        return dm_fail(err, "groups nested more than %d deep at byte offset %zu",
                       PB_MAX_GROUP_DEPTH, start->offset);
    for (;;) {
        if (c->pos >= c->len)
            return dm_fail(err, "group of field %u at byte offset %zu has no end",
                           start->number, start->offset);
        pb_field inner;
        if (pb_read_field_raw(c, &inner, depth + 1, err)) return -1;
        if (inner.wire == PB_GROUP_END) {
            if (inner.number != start->number)
                return dm_fail(err, "end-group key of field %u at byte offset %zu closes the "
                               "group of field %u", inner.number, inner.offset, start->number);
            return 0;
        }
    }
}

/* Reads one key and its payload; end-group keys are returned as fields. */
static int pb_read_field_raw(pb_cursor *c, pb_field *f, int depth, dm_error *err)
{
    memset(f, 0, sizeof *f);
    f->offset = c->base + c->pos;
    uint64_t key;
    if (pb_read_varint(c, &key, err)) return -1;
    uint64_t number = key >> 3;
    f->wire = (int)(key & 7);
    if (number == 0 || number > 0x1fffffff)
        return dm_fail(err, "invalid field number %llu at byte offset %zu",
                       (unsigned long long)number, f->offset);
    f->number = (uint32_t)number;
    const uint8_t *payload = c->buf + c->pos;
    switch (f->wire) {
    case PB_VARINT:
        return pb_read_varint(c, &f->value, err);
    case PB_FIXED64:
        if (pb_read_fixed(c, 8, f, err)) return -1;
        f->value = pb_little_endian(payload, 8);
        return 0;
    case PB_FIXED32:
        if (pb_read_fixed(c, 4, f, err)) return -1;
        f->value = pb_little_endian(payload, 4);
        return 0;
    case PB_LEN: {
        uint64_t n;
        if (pb_read_varint(c, &n, err)) return -1;
        if (n > pb_remaining(c))
            return dm_fail(err, "field %u at byte offset %zu claims %llu bytes, but only %zu "
                           "remain", f->number, f->offset, (unsigned long long)n, pb_remaining(c));
        f->data = c->buf + c->pos;
        f->data_len = (size_t)n;
        f->data_offset = c->base + c->pos;
        c->pos += (size_t)n;
        return 0;
    }
    case PB_GROUP_START:
        return pb_skip_group(c, f, depth, err);
    case PB_GROUP_END:
        return 0;
    default:
        return dm_fail(err, "invalid wire type %d at byte offset %zu", f->wire, f->offset);
    }
}

/* The next field of the message: 1 when one was read, 0 at the end, -1 on
 * error. Groups are skipped whole (and returned with wire type 3). */
static int pb_next(pb_cursor *c, pb_field *f, dm_error *err)
{
    if (c->pos >= c->len) return 0;
    if (pb_read_field_raw(c, f, 0, err)) return -1;
    if (f->wire == PB_GROUP_END)
        return dm_fail(err, "end-group key of field %u at byte offset %zu without a group",
                       f->number, f->offset);
    return 1;
}

static int pb_expect_wire(const pb_field *f, int wire, const char *what, dm_error *err)
{
    if (f->wire == wire) return 0;
    return dm_fail(err, "field %u (%s) at byte offset %zu has wire type %d, expected %d",
                   f->number, what, f->offset, f->wire, wire);
}

/* ---------------------------------------------------------------- tensors */

static const char *onnx_type_name(uint64_t t)
{
    static const char *names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16",
                                  "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE",
                                  "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",
                                  "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
                                  "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* What the first pass over a TensorProto found. */
typedef struct tensor_fields {
    const uint8_t *name;
    size_t name_len;
    int has_name;
    int n_dims;            /* may exceed ONNX_MAX_DIMS: then dims holds the first ones */
    int64_t dims[ONNX_MAX_DIMS];
    uint64_t data_type;
    uint64_t location;
    const uint8_t *raw;
    size_t raw_len;
    int64_t n_float_data;  /* values in float_data (packed and unpacked together) */
    int64_t n_double_data; /* values in double_data */
} tensor_fields;

static void tensor_add_dim(tensor_fields *tf, uint64_t d)
{
    if (tf->n_dims < ONNX_MAX_DIMS) tf->dims[tf->n_dims] = (int64_t)d;
    tf->n_dims++;
}

static int tensor_read_packed_dims(tensor_fields *tf, const pb_field *f, dm_error *err)
{
    pb_cursor c = pb_sub_cursor(f);
    while (c.pos < c.len) {
        uint64_t d;
        if (pb_read_varint(&c, &d, err)) return -1;
        tensor_add_dim(tf, d);
    }
    return 0;
}

/* Counts n_values of a packed repeated fixed-width field of `width` bytes. */
static int tensor_count_packed(const pb_field *f, size_t width, const char *what,
                               int64_t *count, dm_error *err)
{
    if (f->data_len % width)
        return dm_fail(err, "packed %s at byte offset %zu has %zu bytes, not a multiple of %zu",
                       what, f->offset, f->data_len, width);
    *count += (int64_t)(f->data_len / width);
    return 0;
}

static int tensor_scan_field(tensor_fields *tf, const pb_field *f, dm_error *err)
{
    switch (f->number) {
    case 1: /* dims: repeated int64 */
        if (f->wire == PB_VARINT) {
            tensor_add_dim(tf, f->value);
            return 0;
        }
        if (f->wire == PB_LEN) return tensor_read_packed_dims(tf, f, err);
        return pb_expect_wire(f, PB_VARINT, "dims", err);
    case 2:
        if (pb_expect_wire(f, PB_VARINT, "data_type", err)) return -1;
        tf->data_type = f->value;
        return 0;
    case 4: /* float_data: repeated float */
        if (f->wire == PB_FIXED32) {
            tf->n_float_data++;
            return 0;
        }
        if (f->wire == PB_LEN) return tensor_count_packed(f, 4, "float_data", &tf->n_float_data, err);
        return pb_expect_wire(f, PB_FIXED32, "float_data", err);
    case 8:
        if (pb_expect_wire(f, PB_LEN, "name", err)) return -1;
        tf->name = f->data;
        tf->name_len = f->data_len;
        tf->has_name = 1;
        return 0;
    case 9:
        if (pb_expect_wire(f, PB_LEN, "raw_data", err)) return -1;
        tf->raw = f->data;
        tf->raw_len = f->data_len;
        return 0;
    case 10: /* double_data: repeated double */
        if (f->wire == PB_FIXED64) {
            tf->n_double_data++;
            return 0;
        }
        if (f->wire == PB_LEN)
            return tensor_count_packed(f, 8, "double_data", &tf->n_double_data, err);
        return pb_expect_wire(f, PB_FIXED64, "double_data", err);
    case 14:
        if (pb_expect_wire(f, PB_VARINT, "data_location", err)) return -1;
        tf->location = f->value;
        return 0;
    default:
        return 0; /* a field this reader does not need */
    }
}

static int tensor_scan(const pb_field *msg, tensor_fields *tf, dm_error *err)
{
    memset(tf, 0, sizeof *tf);
    pb_cursor c = pb_sub_cursor(msg);
    pb_field f;
    int r;
    while ((r = pb_next(&c, &f, err)) == 1)
        if (tensor_scan_field(tf, &f, err)) return -1;
    return r;
}

/* The name of the tensor, as far as the message can be read (for errors in
 * messages that fail part-way): the last name field before any damage. */
static void tensor_peek_name(const pb_field *msg, int index, char *out, size_t size)
{
    snprintf(out, size, "initializer #%d", index);
    pb_cursor c = pb_sub_cursor(msg);
    pb_field f;
    while (pb_next(&c, &f, NULL) == 1)
        if (f.number == 8 && f.wire == PB_LEN)
            snprintf(out, size, "tensor '%.*s'", (int)(f.data_len < 200 ? f.data_len : 200),
                     (const char *)f.data);
}

static void format_dims(char *out, size_t size, const int64_t *dims, int n_dims)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (int i = 0; i < n_dims && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, i ? ", %lld" : "%lld",
                                 (long long)dims[i]);
    if (used < size) snprintf(out + used, size - used, "]");
}

/* Product of the dims (1 for a scalar); fails on negative or huge dims. */
static int tensor_dims_product(const tensor_fields *tf, int64_t *product, dm_error *err)
{
    if (tf->n_dims > ONNX_MAX_DIMS)
        return dm_fail(err, "has %d dimensions; at most %d are supported", tf->n_dims,
                       ONNX_MAX_DIMS);
    int64_t p = 1;
    for (int i = 0; i < tf->n_dims; i++) {
        int64_t d = tf->dims[i];
        if (d < 0) return dm_fail(err, "has negative dimension %lld", (long long)d);
        if (d > 0 && p > INT64_MAX / d)
            return dm_fail(err, "has dims whose product overflows 64 bits");
        p *= d;
    }
    *product = p;
    return 0;
}

/* Number of values the tensor stores, from whichever field holds them:
 * raw_data (4 or 8 bytes a value) or float_data / double_data. */
static int tensor_stored_count(const tensor_fields *tf, int64_t *count, dm_error *err)
{
    int is_float = tf->data_type == ONNX_FLOAT;
    size_t width = is_float ? 4 : 8;
    int64_t typed = is_float ? tf->n_float_data : tf->n_double_data;
    int64_t other = is_float ? tf->n_double_data : tf->n_float_data;
    if (other > 0)
        return dm_fail(err, "is %s but has %s", is_float ? "FLOAT" : "DOUBLE",
                       is_float ? "double_data" : "float_data");
    if (tf->raw_len > 0 && typed > 0)
        return dm_fail(err, "has both raw_data and %s", is_float ? "float_data" : "double_data");
    if (tf->raw_len > 0) {
        if (tf->raw_len % width)
            return dm_fail(err, "has %zu bytes of raw_data, not a multiple of %zu",
                           tf->raw_len, width);
        *count = (int64_t)(tf->raw_len / width);
    } else {
        *count = typed;
    }
    return 0;
}

static double decode_float32(uint64_t bits)
{
    uint32_t b = (uint32_t)bits;
    float x;
    memcpy(&x, &b, sizeof x);
    return (double)x;
}

static double decode_float64(uint64_t bits)
{
    double x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static void tensor_decode_raw(const tensor_fields *tf, double *values, int64_t n)
{
    int is_float = tf->data_type == ONNX_FLOAT;
    for (int64_t i = 0; i < n; i++)
        values[i] = is_float ? decode_float32(pb_little_endian(tf->raw + 4 * i, 4))
                             : decode_float64(pb_little_endian(tf->raw + 8 * i, 8));
}

/* Second pass: float_data (field 4) or double_data (field 10), packed or not,
 * in the order they appear. The first pass checked every length. */
static void tensor_decode_typed(const pb_field *msg, const tensor_fields *tf, double *values)
{
    int is_float = tf->data_type == ONNX_FLOAT;
    uint32_t field = is_float ? 4 : 10;
    int width = is_float ? 4 : 8;
    int64_t k = 0;
    pb_cursor c = pb_sub_cursor(msg);
    pb_field f;
    while (pb_next(&c, &f, NULL) == 1) {
        if (f.number != field) continue;
        if (f.wire == PB_LEN) {
            for (size_t i = 0; i + (size_t)width <= f.data_len; i += (size_t)width) {
                uint64_t bits = pb_little_endian(f.data + i, width);
                values[k++] = is_float ? decode_float32(bits) : decode_float64(bits);
            }
        } else {
            values[k++] = is_float ? decode_float32(f.value) : decode_float64(f.value);
        }
    }
}

static int tensor_check_type(const tensor_fields *tf, dm_error *err)
{
    if (tf->location == ONNX_LOCATION_EXTERNAL) return dm_fail(err, "external data not supported");
    if (tf->data_type != ONNX_FLOAT && tf->data_type != ONNX_DOUBLE)
        return dm_fail(err, "has data type %llu (%s); supported: 1 (FLOAT), 11 (DOUBLE)",
                       (unsigned long long)tf->data_type, onnx_type_name(tf->data_type));
    return 0;
}

/* Builds t from the fields of one TensorProto. Errors name the tensor but
 * not the file (the caller adds it). */
static int tensor_build(const pb_field *msg, const tensor_fields *tf, onnx_tensor *t,
                        dm_error *err)
{
    int64_t product = 0, count = 0;
    if (tensor_check_type(tf, err) || tensor_dims_product(tf, &product, err) ||
        tensor_stored_count(tf, &count, err))
        return -1;
    if (count != product) {
        char dims[256];
        format_dims(dims, sizeof dims, tf->dims, tf->n_dims);
        return dm_fail(err, "has %lld values, but its dims %s need %lld", (long long)count,
                       dims, (long long)product);
    }
    t->name = malloc(tf->name_len + 1);
    t->values = malloc(sizeof(double) * (size_t)(count > 0 ? count : 1));
    if (!t->name || !t->values) return dm_fail(err, "out of memory for %lld values", (long long)count);
    memcpy(t->name, tf->name, tf->name_len);
    t->name[tf->name_len] = '\0';
    t->n_dims = tf->n_dims;
    memcpy(t->dims, tf->dims, sizeof(int64_t) * (size_t)tf->n_dims);
    t->n_values = count;
    if (tf->raw_len > 0)
        tensor_decode_raw(tf, t->values, count);
    else
        tensor_decode_typed(msg, tf, t->values);
    return 0;
}

static void tensor_free(onnx_tensor *t)
{
    free(t->name);
    free(t->values);
    memset(t, 0, sizeof *t);
}

static int initializers_append(onnx_initializers *out, int *capacity, dm_error *err)
{
    if (out->n < *capacity) return 0;
    int grown = *capacity ? 2 * *capacity : 16;
    onnx_tensor *bigger = realloc(out->tensors, sizeof(onnx_tensor) * (size_t)grown);
    if (!bigger) return dm_fail(err, "out of memory for %d tensors", grown);
    out->tensors = bigger;
    *capacity = grown;
    return 0;
}

/* One GraphProto.initializer: appends it to out. */
static int parse_initializer(const pb_field *msg, const char *label, onnx_initializers *out,
                             int *capacity, dm_error *err)
{
    int index = out->n;
    dm_error why;
    char who[256];
    tensor_fields tf;
    if (tensor_scan(msg, &tf, &why)) {
        tensor_peek_name(msg, index, who, sizeof who);
        return dm_fail(err, "%s: corrupt %s (%s)", label, who, why.msg);
    }
    if (!tf.has_name)
        return dm_fail(err, "%s: initializer #%d (at byte offset %zu) has no name", label, index,
                       msg->offset);
    if (initializers_append(out, capacity, err)) return dm_error_prefix(err, "%s", label);
    onnx_tensor *t = &out->tensors[out->n];
    memset(t, 0, sizeof *t);
    if (tensor_build(msg, &tf, t, &why)) {
        tensor_free(t);
        return dm_fail(err, "%s: tensor '%.*s' %s", label,
                       (int)(tf.name_len < 200 ? tf.name_len : 200), (const char *)tf.name,
                       why.msg);
    }
    out->n++;
    return 0;
}

static int parse_graph(const pb_field *graph, const char *label, onnx_initializers *out,
                       int *capacity, dm_error *err)
{
    pb_cursor c = pb_sub_cursor(graph);
    pb_field f;
    dm_error why;
    int r;
    while ((r = pb_next(&c, &f, &why)) == 1) {
        if (f.number != 5) continue;
        if (pb_expect_wire(&f, PB_LEN, "GraphProto.initializer", &why)) break;
        if (parse_initializer(&f, label, out, capacity, err)) return -1;
    }
    if (r != 0) return dm_fail(err, "%s: not an ONNX model (corrupt graph: %s)", label, why.msg);
    return 0;
}

/* Checks the top level of the ModelProto: it must parse to the last byte and
 * hold ir_version (field 1, varint) and a graph (field 7, a sub-message). */
static int check_model_proto(const uint8_t *buf, size_t len, const char *label, dm_error *err)
{
    if (len == 0) return dm_fail(err, "%s: not an ONNX model (the file is empty)", label);
    pb_cursor c = {buf, len, 0, 0};
    pb_field f;
    dm_error why;
    int r, have_ir_version = 0, have_graph = 0;
    while ((r = pb_next(&c, &f, &why)) == 1) {
        if (f.number == 1) {
            if (pb_expect_wire(&f, PB_VARINT, "ModelProto.ir_version", &why)) break;
            have_ir_version = 1;
        } else if (f.number == 7) {
            if (pb_expect_wire(&f, PB_LEN, "ModelProto.graph", &why)) break;
            have_graph = 1;
        }
    }
    if (r != 0) return dm_fail(err, "%s: not an ONNX model (%s)", label, why.msg);
    if (!have_ir_version)
        return dm_fail(err, "%s: not an ONNX model (no ir_version field found)", label);
    if (!have_graph) return dm_fail(err, "%s: not an ONNX model (no graph field found)", label);
    return 0;
}

int onnx_parse_initializers(const uint8_t *buf, size_t len, const char *label,
                            onnx_initializers *out, dm_error *err)
{
    memset(out, 0, sizeof *out);
    if (check_model_proto(buf, len, label, err)) return -1;
    /* Protobuf merges repeated occurrences of a message field, so the
     * initializers of every graph field are read. */
    int capacity = 0;
    pb_cursor c = {buf, len, 0, 0};
    pb_field f;
    while (pb_next(&c, &f, NULL) == 1) {
        if (f.number != 7) continue;
        if (parse_graph(&f, label, out, &capacity, err)) {
            onnx_initializers_free(out);
            return -1;
        }
    }
    return 0;
}

/* The whole file in memory (malloc'ed; *len may be 0). */
static int read_whole_file(const char *path, uint8_t **data, size_t *len, dm_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return dm_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    size_t capacity = 0, used = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (used == capacity) {
            size_t grown = capacity ? 2 * capacity : 1 << 16;
            uint8_t *bigger = realloc(buf, grown);
            if (!bigger) {
                free(buf);
                fclose(fp);
                return dm_fail(err, "%s: out of memory reading %zu bytes", path, grown);
            }
            buf = bigger;
            capacity = grown;
        }
        size_t n = fread(buf + used, 1, capacity - used, fp);
        used += n;
        if (n == 0) break;
    }
    int failed = ferror(fp);
    int saved_errno = errno;
    fclose(fp);
    if (failed) {
        free(buf);
        return dm_fail(err, "%s: read error (%s)", path, strerror(saved_errno));
    }
    *data = buf;
    *len = used;
    return 0;
}

int onnx_read_initializers(const char *path, onnx_initializers *out, dm_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t len;
    if (read_whole_file(path, &data, &len, err)) return -1;
    int rc = onnx_parse_initializers(data, len, path, out, err);
    free(data);
    return rc;
}

const onnx_tensor *onnx_find(const onnx_initializers *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->tensors[i].name, name) == 0) return &t->tensors[i];
    return NULL;
}

void onnx_initializers_free(onnx_initializers *t)
{
    for (int i = 0; i < t->n; i++) tensor_free(&t->tensors[i]);
    free(t->tensors);
    memset(t, 0, sizeof *t);
}
