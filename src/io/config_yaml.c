/* config_yaml.c — reads the YAML configuration of `distilmd run` into a
 * run_config (src/engine/run_config.h); every key is documented in
 * docs/config.md.
 *
 * The file is loaded with libyaml's document API into a node tree; each
 * node carries its position in the file, so every message can read
 *     FILE:LINE: key 'integrator.timestep': expected ..., got '...'
 * with LINE 1-based. Keys are checked level by level against the valid
 * ones; a misspelt key gets the nearest valid key (optimal-string-alignment
 * edit distance: insertions, deletions, substitutions and swaps of two
 * neighbouring letters each count 1) when that distance is at most 3.
 *
 * Paths (model, systems[].structure, output.file, checkpoint.file): each
 * ${NAME} is replaced by the environment variable NAME, then a relative
 * path is joined to the (absolute) directory of the YAML file.
 *
 * Keys that depend on each other are checked together, so that none is
 * silently ignored: a system with `ladder` (replica exchange) may not have
 * copies/temperature/frames, needs the langevin integrator and the
 * top-level `replica_exchange`; `groups` needs `ladder`; `replica_exchange`
 * needs at least one ladder. `frames: all` reads the structure file to
 * count its frames. A λ sweep (`alchemical`) has exactly one system without
 * copies/temperature/ladder/groups/frames (its replicas are the windows:
 * copies is set to the number of windows), needs the langevin integrator,
 * and takes the top-level `model` for decouple but not for interpolate
 * (each end state names its own); `alchemical.solute` reads the structure
 * file to check the atom indices. */
#define _XOPEN_SOURCE 700 /* realpath, PATH_MAX */

#include "../engine/run_config.h"
#include "xyz.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define KEY_PATH_MAX 160
#define MAX_SUGGEST_DISTANCE 3
#define FIRE_DEFAULT_ITERATIONS 1000
#define MAX_REPLICAS 10000000L

/* ---- the valid keys at each level ---- */

static const char *const TOP_KEYS[] = {"model",
                                       "platform",
                                       "seed",
                                       "steps",
                                       "systems",
                                       "integrator",
                                       "velocities",
                                       "remove_com_interval",
                                       "output",
                                       "checkpoint",
                                       "progress_interval",
                                       "replica_exchange",
                                       "alchemical",
                                       "restraint",
                                       NULL};
static const char *const SYSTEM_KEYS[] = {"structure", "frame",  "frames", "copies",
                                          "temperature", "ladder", "groups", NULL};
static const char *const LADDER_KEYS[] = {"min", "max", "count", NULL};
static const char *const INTEGRATOR_KEYS[] = {
    "type", "timestep", "friction", "temperature", "force_tolerance", "max_step", NULL};
static const char *const VELOCITY_KEYS[] = {"temperature", NULL};
static const char *const OUTPUT_KEYS[] = {"file", "interval", "fields", "flush_interval", NULL};
static const char *const CHECKPOINT_KEYS[] = {"file", "interval", NULL};
static const char *const REPLICA_EXCHANGE_KEYS[] = {"interval", NULL};
static const char *const ALCHEMICAL_KEYS[] = {"mode",    "a",       "b", "solute",
                                              "lambdas", "exchange_interval", NULL};
static const char *const ENDPOINT_KEYS[] = {"model", "harmonic", NULL};
static const char *const HARMONIC_KEYS[] = {"k", "structure", NULL};
static const char *const LAMBDA_COUNT_KEYS[] = {"count", NULL};
static const char *const SOLUTE_RANGE_KEYS[] = {"first", "count", NULL};
static const char *const RESTRAINT_KEYS[] = {"k", "radius", NULL};

static const char *const INTEGRATOR_TYPES[] = {"verlet", "langevin", "fire", NULL};
static const char *const PLATFORMS[] = {"auto", "reference", "cuda", NULL};
static const char *const OUTPUT_FIELDS[] = {"position", "velocity", "force", NULL};
static const char *const ALCHEMICAL_MODES[] = {"interpolate", "decouple", NULL};

/* Every level, so that a key written at the wrong level can be placed. */
typedef struct key_level {
    const char *name;
    const char *const *keys;
} key_level;

static const key_level KEY_LEVELS[] = {
    {"the top level", TOP_KEYS},
    {"systems[]", SYSTEM_KEYS},
    {"systems[].ladder", LADDER_KEYS},
    {"integrator", INTEGRATOR_KEYS},
    {"velocities", VELOCITY_KEYS},
    {"output", OUTPUT_KEYS},
    {"checkpoint", CHECKPOINT_KEYS},
    {"replica_exchange", REPLICA_EXCHANGE_KEYS},
    {"alchemical", ALCHEMICAL_KEYS},
    {"alchemical.a / alchemical.b", ENDPOINT_KEYS},
    {"alchemical.a.harmonic / alchemical.b.harmonic", HARMONIC_KEYS},
    {"alchemical.lambdas", LAMBDA_COUNT_KEYS},
    {"alchemical.solute", SOLUTE_RANGE_KEYS},
    {"restraint", RESTRAINT_KEYS},
};
#define N_KEY_LEVELS (sizeof KEY_LEVELS / sizeof KEY_LEVELS[0])

/* ---- the reader and its messages ---- */

typedef struct reader {
    const char *file;          /* the YAML file as the caller named it */
    char dir[CONFIG_PATH_MAX]; /* its directory, absolute */
    yaml_document_t *doc;
    dm_error *err;
} reader;

/* One value of a mapping (or item of a sequence), where it was written and
 * the key path that names it. */
typedef struct field {
    yaml_node_t *value;
    unsigned long line;      /* 1-based line of the key (or item) */
    char path[KEY_PATH_MAX]; /* e.g. "integrator.timestep", "systems[0]" */
} field;

static unsigned long node_line(const yaml_node_t *node)
{
    return (unsigned long)node->start_mark.line + 1;
}

/* "FILE:LINE: message" */
static int fail_line(const reader *r, unsigned long line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail_line(const reader *r, unsigned long line, const char *fmt, ...)
{
    char what[DM_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return dm_fail(r->err, "%s:%lu: %s", r->file, line, what);
}

static const char *scalar_text(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

/* A plain scalar that YAML reads as null: empty, "~" or "null". */
static int is_null(const yaml_node_t *node)
{
    const char *s = scalar_text(node);
    if (!s || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* How a value reads in a message: 'text', a mapping, a list or nothing. */
static const char *describe(const yaml_node_t *node, char *buf, size_t size)
{
    if (node->type == YAML_MAPPING_NODE) return "a mapping";
    if (node->type == YAML_SEQUENCE_NODE) return "a list";
    if (is_null(node)) return "nothing";
    const char *s = scalar_text(node);
    if (strlen(s) > 60)
        snprintf(buf, size, "'%.57s...'", s);
    else
        snprintf(buf, size, "'%s'", s);
    return buf;
}

/* "key 'a.b': expected EXPECTATION, got WHAT" */
static int fail_expected(const reader *r, const field *f, const char *expectation)
{
    char buf[80];
    if (!*f->path)
        return fail_line(r, f->line, "the configuration: expected %s, got %s", expectation,
                         describe(f->value, buf, sizeof buf));
    return fail_line(r, f->line, "key '%s': expected %s, got %s", f->path, expectation,
                     describe(f->value, buf, sizeof buf));
}

/* ---- nearest valid word ---- */

/* The position of `word` in `words`, or -1. */
static int word_index(const char *word, const char *const *words)
{
    for (int i = 0; words[i]; i++)
        if (!strcmp(word, words[i])) return i;
    return -1;
}

/* Optimal-string-alignment distance between a and b (case-sensitive):
 * d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+[a_i != b_j],
 *               d[i-2][j-2]+1 when a_i a_{i-1} = b_{j-1} b_j).
 * Words longer than 63 characters count as infinitely far. */
static int edit_distance(const char *a, const char *b)
{
    enum { W = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= W || m >= W) return INT_MAX;
    int d[W][W];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* The word of `words` nearest to `word`, if within MAX_SUGGEST_DISTANCE
 * edits and fewer edits than `word` has letters; else NULL. */
static const char *nearest_word(const char *word, const char *const *words)
{
    const char *best = NULL;
    int best_d = INT_MAX;
    for (int i = 0; words[i]; i++) {
        int d = edit_distance(word, words[i]);
        if (d < best_d) {
            best_d = d;
            best = words[i];
        }
    }
    if (best_d > MAX_SUGGEST_DISTANCE || best_d >= (int)strlen(word)) return NULL;
    return best;
}

/* "a, b, c" */
static const char *join_words(const char *const *words, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; words[i]; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", i ? ", " : "", words[i]);
    }
    return buf;
}

/* "'integrator' or 'velocities'": the levels other than `level` where `key`
 * is valid; "" when none. */
static const char *levels_with_key(const char *key, const char *level, char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; i < N_KEY_LEVELS; i++) {
        if (!strcmp(KEY_LEVELS[i].name, level)) continue;
        for (int k = 0; KEY_LEVELS[i].keys[k]; k++) {
            if (strcmp(KEY_LEVELS[i].keys[k], key)) continue;
            size_t used = strlen(buf);
            snprintf(buf + used, size - used, "%s'%s'", used ? " or " : "", KEY_LEVELS[i].name);
        }
    }
    return buf;
}

/* ---- mappings: known keys, no duplicates, lookup ---- */

/* The level name a mapping at `path` has in KEY_LEVELS. */
static const char *level_name(const char *path)
{
    if (!*path) return "the top level";
    if (!strncmp(path, "systems[", 8))
        return strstr(path, ".ladder") ? "systems[].ladder" : "systems[]";
    if (!strcmp(path, "alchemical.a") || !strcmp(path, "alchemical.b"))
        return "alchemical.a / alchemical.b";
    if (!strcmp(path, "alchemical.a.harmonic") || !strcmp(path, "alchemical.b.harmonic"))
        return "alchemical.a.harmonic / alchemical.b.harmonic";
    return path;
}

static int fail_unknown_key(const reader *r, const yaml_node_t *key, const char *path,
                            const char *const *valid)
{
    const char *name = scalar_text(key);
    const char *level = level_name(path);
    char where[KEY_PATH_MAX + 16], list[256], elsewhere[256];
    if (*path)
        snprintf(where, sizeof where, " in '%s'", path);
    else
        snprintf(where, sizeof where, " at the top level");
    const char *near = nearest_word(name, valid);
    if (near)
        return fail_line(r, node_line(key), "unknown key '%s'%s; did you mean '%s'?", name, where,
                         near);
    if (*levels_with_key(name, level, elsewhere, sizeof elsewhere))
        return fail_line(r, node_line(key),
                         "unknown key '%s'%s; '%s' belongs in %s (valid keys here: %s)", name,
                         where, name, elsewhere, join_words(valid, list, sizeof list));
    return fail_line(r, node_line(key), "unknown key '%s'%s; valid keys here: %s", name, where,
                     join_words(valid, list, sizeof list));
}

/* Checks that f's value is a mapping whose keys are plain words from
 * `valid`, each given once. */
static int check_mapping(const reader *r, const field *f, const char *const *valid,
                         const char *expectation)
{
    if (f->value->type != YAML_MAPPING_NODE) return fail_expected(r, f, expectation);
    const yaml_node_t *map = f->value;
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *key = yaml_document_get_node(r->doc, p->key);
        const char *name = scalar_text(key);
        if (!name) {
            char buf[80];
            return fail_line(r, node_line(key), "in '%s': expected a key name, got %s",
                             *f->path ? f->path : "the top level", describe(key, buf, sizeof buf));
        }
        if (word_index(name, valid) < 0) return fail_unknown_key(r, key, f->path, valid);
        for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *earlier = yaml_document_get_node(r->doc, q->key);
            if (!strcmp(scalar_text(earlier), name))
                return fail_line(r, node_line(key),
                                 "duplicate key '%s%s%s' (first given on line %lu)", f->path,
                                 *f->path ? "." : "", name, node_line(earlier));
        }
    }
    return 0;
}

/* Names a field; key paths are short, a cut one only shortens messages. */
static void set_path(field *f, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void set_path(field *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->path, sizeof f->path, fmt, ap);
    va_end(ap);
}

/* Finds `key` in the mapping of `parent`; fills `out` and returns 1, or
 * returns 0 when the key is absent. Keys were checked by check_mapping. */
static int lookup(const reader *r, const field *parent, const char *key, field *out)
{
    const yaml_node_t *map = parent->value;
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        if (strcmp(scalar_text(k), key)) continue;
        out->value = yaml_document_get_node(r->doc, p->value);
        out->line = node_line(k);
        set_path(out, "%s%s%s", parent->path, *parent->path ? "." : "", key);
        return 1;
    }
    return 0;
}

/* The i-th item of the sequence in `parent`, named "path[i]". */
static void sequence_item(const reader *r, const field *parent, int i, field *out)
{
    const yaml_node_t *seq = parent->value;
    out->value = yaml_document_get_node(r->doc, seq->data.sequence.items.start[i]);
    out->line = node_line(out->value);
    set_path(out, "%s[%d]", parent->path, i);
}

static int sequence_length(const yaml_node_t *seq)
{
    return (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static int fail_missing(const reader *r, const field *parent, const char *key, const char *meaning)
{
    if (*parent->path)
        return fail_line(r, parent->line, "key '%s': missing required key '%s' (%s)", parent->path,
                         key, meaning);
    return fail_line(r, parent->line, "missing required key '%s' (%s)", key, meaning);
}

/* ---- scalar values ---- */

typedef enum bound { POSITIVE, NON_NEGATIVE } bound;

/* A finite decimal number within `b`. */
static int read_number(const reader *r, const field *f, bound b, const char *expectation,
                       double *out)
{
    const char *s = scalar_text(f->value);
    if (!s || is_null(f->value)) return fail_expected(r, f, expectation);
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(x))
        return fail_expected(r, f, expectation);
    if ((b == POSITIVE && !(x > 0)) || (b == NON_NEGATIVE && x < 0))
        return fail_expected(r, f, expectation);
    *out = x;
    return 0;
}

/* A whole number >= min. Accepts YAML's digit separators (1_000_000) and
 * exact whole numbers in exponent form (1e6). */
static int read_whole(const reader *r, const field *f, long min, const char *expectation, long *out)
{
    const char *s = scalar_text(f->value);
    if (!s || is_null(f->value)) return fail_expected(r, f, expectation);
    char digits[64];
    size_t n = 0;
    for (const char *c = s; *c; c++) {
        if (*c == '_') continue;
        if (n + 1 >= sizeof digits) return fail_expected(r, f, expectation);
        digits[n++] = *c;
    }
    digits[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(digits, &end, 10);
    if (end == digits || *end || errno == ERANGE) {
        errno = 0;
        double x = strtod(digits, &end);
        if (end == digits || *end || errno == ERANGE || !isfinite(x) || x != floor(x) ||
            fabs(x) > 9007199254740992.0)
            return fail_expected(r, f, expectation);
        v = (long long)x;
    }
    if (v < min || v > LONG_MAX) return fail_expected(r, f, expectation);
    *out = (long)v;
    return 0;
}

/* An unsigned 64-bit integer (the random seed). */
static int read_seed(const reader *r, const field *f, unsigned long long *out)
{
    const char *expectation = "a whole number from 0 to 18446744073709551615";
    const char *s = scalar_text(f->value);
    if (!s || is_null(f->value) || !isdigit((unsigned char)s[0]))
        return fail_expected(r, f, expectation);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE) return fail_expected(r, f, expectation);
    *out = v;
    return 0;
}

/* One of `choices`; *index is its position there. */
static int read_choice(const reader *r, const field *f, const char *const *choices,
                       const char *what, int *index)
{
    char list[128], buf[80];
    join_words(choices, list, sizeof list);
    const char *s = scalar_text(f->value);
    if (!s || is_null(f->value))
        return fail_line(r, f->line, "key '%s': expected one of %s, got %s", f->path, list,
                         describe(f->value, buf, sizeof buf));
    *index = word_index(s, choices);
    if (*index >= 0) return 0;
    const char *near = nearest_word(s, choices);
    char hint[96] = "";
    if (near) snprintf(hint, sizeof hint, "; did you mean '%s'?", near);
    return fail_line(r, f->line, "key '%s': unknown %s %s; expected one of %s%s", f->path, what,
                     describe(f->value, buf, sizeof buf), list, hint);
}

/* ---- paths ---- */

/* Copies `in` to `out`, replacing each ${NAME} by the environment variable
 * NAME (letters, digits, '_'; set and non-empty). */
static int expand_variables(const reader *r, const field *f, const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (const char *c = in; *c;) {
        const char *piece = c;
        size_t piece_len = 1;
        if (c[0] == '$' && c[1] == '{') {
            const char *name = c + 2, *close = strchr(name, '}');
            if (!close)
                return fail_line(r, f->line,
                                 "key '%s': unterminated '${' in '%s'; expected ${NAME}", f->path,
                                 in);
            size_t len = (size_t)(close - name);
            int valid = len > 0 && len < 128 && !isdigit((unsigned char)name[0]);
            for (size_t i = 0; i < len && valid; i++)
                valid = isalnum((unsigned char)name[i]) || name[i] == '_';
            if (!valid)
                return fail_line(r, f->line,
                                 "key '%s': '${%.*s}' in '%s' is not a variable; expected "
                                 "${NAME} with NAME made of letters, digits and '_'",
                                 f->path, (int)len, name, in);
            char var[128];
            memcpy(var, name, len);
            var[len] = '\0';
            const char *value = getenv(var);
            if (!value || !*value)
                return fail_line(r, f->line,
                                 "key '%s': environment variable '%s' is %s (used as ${%s} in "
                                 "'%s')",
                                 f->path, var, value ? "empty" : "not set", var, in);
            piece = value;
            piece_len = strlen(value);
            c = close + 1;
        } else {
            c++;
        }
        if (n + piece_len >= size)
            return fail_line(r, f->line, "key '%s': path longer than %zu characters", f->path,
                             size - 1);
        memcpy(out + n, piece, piece_len);
        n += piece_len;
    }
    out[n] = '\0';
    return 0;
}

/* Expands variables in a path and makes it absolute against the YAML file's
 * directory: "mol.xyz" -> "<dir>/mol.xyz". */
static int read_path(const reader *r, const field *f, const char *meaning, char *out)
{
    const char *s = scalar_text(f->value);
    if (!s || !*s || is_null(f->value)) {
        char expectation[128];
        snprintf(expectation, sizeof expectation, "the path of %s", meaning);
        return fail_expected(r, f, expectation);
    }
    char expanded[CONFIG_PATH_MAX];
    if (expand_variables(r, f, s, expanded, sizeof expanded)) return -1;
    int len = expanded[0] == '/' ? snprintf(out, CONFIG_PATH_MAX, "%s", expanded)
                                 : snprintf(out, CONFIG_PATH_MAX, "%s/%s", r->dir, expanded);
    if (len < 0 || len >= CONFIG_PATH_MAX)
        return fail_line(r, f->line, "key '%s': path longer than %d characters", f->path,
                         CONFIG_PATH_MAX - 1);
    return 0;
}

/* A path to a file that must exist now (the model, a structure). */
static int read_existing_file(const reader *r, const field *f, const char *meaning, char *out)
{
    if (read_path(r, f, meaning, out)) return -1;
    struct stat st;
    const char *written = scalar_text(f->value);
    if (stat(out, &st) != 0)
        return fail_line(r, f->line, "key '%s': %s '%s' (written '%s'): %s", f->path, meaning, out,
                         written, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail_line(r, f->line, "key '%s': %s '%s' (written '%s') is not a regular file",
                         f->path, meaning, out, written);
    return 0;
}

/* A path to a file that will be written: its directory must exist. */
static int read_output_file(const reader *r, const field *f, const char *meaning, char *out)
{
    if (read_path(r, f, meaning, out)) return -1;
    char dir[CONFIG_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail_line(r, f->line, "key '%s': directory '%s' for %s does not exist", f->path, dir,
                         meaning);
    return 0;
}

/* ---- sections ---- */

static const char *integrator_name(integrator_kind kind)
{
    return INTEGRATOR_TYPES[kind];
}

/* A key given for an integrator that does not use it. */
static int fail_not_used(const reader *r, const field *f, const char *users, const run_config *cfg)
{
    return fail_line(r, f->line,
                     "key '%s': only used by %s, but integrator.type is '%s'; "
                     "remove it or change integrator.type",
                     f->path, users, integrator_name(cfg->integrator.kind));
}

static int parse_integrator(const reader *r, const field *top, run_config *cfg,
                            int *has_temperature)
{
    field sec, f;
    *has_temperature = 0;
    if (!lookup(r, top, "integrator", &sec)) return 0;
    const char *s = scalar_text(sec.value);
    if (s && word_index(s, INTEGRATOR_TYPES) >= 0)
        return fail_line(r, sec.line,
                         "key 'integrator': expected a mapping, got '%s'; write 'integrator:' "
                         "and on the next line, indented, 'type: %s'",
                         s, s);
    if (check_mapping(r, &sec, INTEGRATOR_KEYS,
                      "a mapping with type, timestep, ... (see docs/config.md)"))
        return -1;
    int kind = INTEGRATOR_VERLET;
    if (lookup(r, &sec, "type", &f) && read_choice(r, &f, INTEGRATOR_TYPES, "integrator", &kind))
        return -1;
    cfg->integrator.kind = (integrator_kind)kind;
    int langevin = kind == INTEGRATOR_LANGEVIN, fire = kind == INTEGRATOR_FIRE;
    if (lookup(r, &sec, "timestep", &f) &&
        read_number(r, &f, POSITIVE, "a positive number of femtoseconds",
                    &cfg->integrator.timestep_fs))
        return -1;
    if (lookup(r, &sec, "friction", &f) &&
        (!langevin ? fail_not_used(r, &f, "the langevin integrator", cfg)
                   : read_number(r, &f, POSITIVE, "a positive friction coefficient in 1/ps",
                                 &cfg->integrator.friction_per_ps)))
        return -1;
    if (lookup(r, &sec, "temperature", &f)) {
        if (!langevin) return fail_not_used(r, &f, "the langevin integrator", cfg);
        if (read_number(r, &f, NON_NEGATIVE, "a temperature in kelvin (a number >= 0)",
                        &cfg->integrator.temperature_K))
            return -1;
        *has_temperature = 1;
    }
    if (lookup(r, &sec, "force_tolerance", &f) &&
        (!fire ? fail_not_used(r, &f, "the fire integrator", cfg)
               : read_number(r, &f, POSITIVE, "a positive force in eV/Å",
                             &cfg->integrator.force_tolerance)))
        return -1;
    if (lookup(r, &sec, "max_step", &f) &&
        (!fire
             ? fail_not_used(r, &f, "the fire integrator", cfg)
             : read_number(r, &f, POSITIVE, "a positive distance in Å", &cfg->integrator.max_step)))
        return -1;
    return 0;
}

/* systems[i].temperature: one number for every copy, or a list of
 * `copies` numbers. */
static int parse_system_temperature(const reader *r, const field *f, run_config *cfg,
                                    system_spec *sys)
{
    const char *kelvin = "a temperature in kelvin (a number >= 0)";
    if (cfg->integrator.kind != INTEGRATOR_LANGEVIN)
        return fail_not_used(r, f, "the langevin integrator", cfg);
    if (f->value->type == YAML_MAPPING_NODE)
        return fail_expected(r, f, "a temperature in kelvin or a list of one per copy");
    int n = f->value->type == YAML_SEQUENCE_NODE ? sequence_length(f->value) : 1;
    if (f->value->type == YAML_SEQUENCE_NODE && n != sys->copies)
        return fail_line(r, f->line,
                         "key '%s': expected %d temperatures (one per copy, copies: %d), got %d",
                         f->path, sys->copies, sys->copies, n);
    sys->temperatures = calloc((size_t)sys->copies, sizeof *sys->temperatures);
    if (!sys->temperatures) return fail_line(r, f->line, "key '%s': out of memory", f->path);
    sys->n_temperatures = sys->copies;
    if (f->value->type != YAML_SEQUENCE_NODE) {
        if (read_number(r, f, NON_NEGATIVE, kelvin, &sys->temperatures[0])) return -1;
        for (int c = 1; c < sys->copies; c++) sys->temperatures[c] = sys->temperatures[0];
        return 0;
    }
    for (int c = 0; c < n; c++) {
        field item;
        sequence_item(r, f, c, &item);
        if (read_number(r, &item, NON_NEGATIVE, kelvin, &sys->temperatures[c])) return -1;
    }
    return 0;
}

/* systems[i].frames: only `all`, every frame of the structure file from
 * `frame` on: n_frames = (frames in the file) - frame. */
static int parse_system_frames(const reader *r, const field *f, system_spec *sys)
{
    const char *s = scalar_text(f->value);
    if (!s || is_null(f->value) || strcmp(s, "all"))
        return fail_expected(r, f,
                             "'all' (every frame of the structure file from 'frame' on; "
                             "leave the key out to start from the single frame 'frame')");
    xyz_trajectory t;
    dm_error why = {{0}};
    if (xyz_read_file(sys->structure, &t, &why))
        return fail_line(r, f->line, "key '%s': cannot count the frames of the structure file: %s",
                         f->path, why.msg);
    int n = t.n_frames;
    xyz_trajectory_free(&t);
    if (n <= sys->frame)
        return fail_line(r, f->line,
                         "key '%s': expected frames from frame %d on, but structure file '%s' "
                         "has %d frame(s) (numbered from 0)",
                         f->path, sys->frame, sys->structure, n);
    sys->n_frames = n - sys->frame;
    return 0;
}

/* An explicit ladder: a list of >= 2 temperatures in K, each > 0 and above
 * the one before. */
static int parse_ladder_list(const reader *r, const field *f, system_spec *sys)
{
    int n = sequence_length(f->value);
    if (n < 2)
        return fail_line(r, f->line,
                         "key '%s': expected at least 2 temperatures (one per rung), got %d",
                         f->path, n);
    sys->ladder = calloc((size_t)n, sizeof *sys->ladder);
    if (!sys->ladder) return fail_line(r, f->line, "key '%s': out of memory", f->path);
    sys->n_rungs = n;
    for (int k = 0; k < n; k++) {
        field item;
        sequence_item(r, f, k, &item);
        if (read_number(r, &item, POSITIVE, "a temperature in kelvin (a number > 0)",
                        &sys->ladder[k]))
            return -1;
        if (k > 0 && !(sys->ladder[k] > sys->ladder[k - 1])) {
            char expectation[128];
            snprintf(expectation, sizeof expectation,
                     "a temperature above %g K (the ladder must be strictly increasing)",
                     sys->ladder[k - 1]);
            return fail_expected(r, &item, expectation);
        }
    }
    return 0;
}

/* A geometric ladder {min, max, count}:
 *     T_k = min * (max/min)^(k/(count-1)),  k = 0 .. count-1,
 * so neighbouring rungs have the same ratio (max/min)^(1/(count-1)). */
static int parse_ladder_geometric(const reader *r, const field *f, system_spec *sys)
{
    field fmin, fmax, fcount;
    double t_min, t_max;
    long count;
    if (check_mapping(r, f, LADDER_KEYS, "a mapping {min: K, max: K, count: N}")) return -1;
    if (!lookup(r, f, "min", &fmin))
        return fail_missing(r, f, "min", "the lowest temperature of the ladder, in K");
    if (!lookup(r, f, "max", &fmax))
        return fail_missing(r, f, "max", "the highest temperature of the ladder, in K");
    if (!lookup(r, f, "count", &fcount))
        return fail_missing(r, f, "count", "the number of rungs, at least 2");
    if (read_number(r, &fmin, POSITIVE, "a temperature in kelvin (a number > 0)", &t_min))
        return -1;
    char above_min[96];
    snprintf(above_min, sizeof above_min, "a temperature in kelvin above min (%g K)", t_min);
    if (read_number(r, &fmax, POSITIVE, above_min, &t_max)) return -1;
    if (!(t_max > t_min)) return fail_expected(r, &fmax, above_min);
    if (read_whole(r, &fcount, 2, "a whole number of rungs >= 2", &count)) return -1;
    if (count > MAX_REPLICAS) return fail_expected(r, &fcount, "at most 10000000 rungs");
    sys->ladder = calloc((size_t)count, sizeof *sys->ladder);
    if (!sys->ladder) return fail_line(r, f->line, "key '%s': out of memory", f->path);
    sys->n_rungs = (int)count;
    double ratio = t_max / t_min;
    for (long k = 0; k < count; k++)
        sys->ladder[k] = t_min * pow(ratio, (double)k / (double)(count - 1));
    sys->ladder[0] = t_min;
    sys->ladder[count - 1] = t_max; /* the given ends exactly, not pow's rounding of them */
    for (long k = 1; k < count; k++)
        if (!(sys->ladder[k] > sys->ladder[k - 1]))
            return fail_line(r, fcount.line,
                             "key '%s': %ld rungs between %g K and %g K are too close to tell "
                             "apart in double precision; expected fewer rungs or a wider range",
                             fcount.path, count, t_min, t_max);
    return 0;
}

/* systems[i].ladder: the temperatures of a replica-exchange ladder, given
 * as a list or as a geometric ladder. Langevin only. */
static int parse_ladder(const reader *r, const field *f, const run_config *cfg, system_spec *sys)
{
    if (cfg->integrator.kind != INTEGRATOR_LANGEVIN)
        return fail_line(r, f->line,
                         "key '%s': replica exchange runs Langevin dynamics in every rung, but "
                         "integrator.type is '%s'; set integrator.type to langevin or remove "
                         "the ladder",
                         f->path, integrator_name(cfg->integrator.kind));
    if (f->value->type == YAML_SEQUENCE_NODE) return parse_ladder_list(r, f, sys);
    if (f->value->type == YAML_MAPPING_NODE) return parse_ladder_geometric(r, f, sys);
    return fail_expected(r, f,
                         "a list of temperatures in kelvin ([300, 350, 400]) or a geometric "
                         "ladder {min: K, max: K, count: N}");
}

/* With a ladder, the replicas of a system and their temperatures come from
 * the ladder: copies, temperature and frames would contradict it. */
static int fail_not_with_ladder(const reader *r, const field *f, const field *ladder)
{
    return fail_line(r, f->line,
                     "key '%s': not allowed together with '%s' (line %lu): the ladder defines "
                     "the replicas of this system (one per rung, times 'groups') and their "
                     "temperatures; remove it",
                     f->path, ladder->path, ladder->line);
}

static int parse_system(const reader *r, const field *item, run_config *cfg, system_spec *sys)
{
    field f, ladder;
    if (check_mapping(r, item, SYSTEM_KEYS,
                      "a mapping with structure, copies, ... "
                      "(e.g. '- structure: mol.xyz')"))
        return -1;
    if (!lookup(r, item, "structure", &f))
        return fail_missing(r, item, "structure", "the XYZ file of this system");
    if (read_existing_file(r, &f, "structure file", sys->structure)) return -1;
    long v;
    if (lookup(r, item, "frame", &f)) {
        if (read_whole(r, &f, 0, "a frame index (a whole number >= 0)", &v)) return -1;
        if (v > INT_MAX) return fail_expected(r, &f, "a frame index (a whole number >= 0)");
        sys->frame = (int)v;
    }
    if (lookup(r, item, "ladder", &ladder)) {
        static const char *const EXCLUDED[] = {"copies", "temperature", "frames", NULL};
        for (int i = 0; EXCLUDED[i]; i++)
            if (lookup(r, item, EXCLUDED[i], &f)) return fail_not_with_ladder(r, &f, &ladder);
        if (parse_ladder(r, &ladder, cfg, sys)) return -1;
        if (lookup(r, item, "groups", &f)) {
            if (read_whole(r, &f, 1, "a positive whole number of exchange groups", &v)) return -1;
            if (v > MAX_REPLICAS) return fail_expected(r, &f, "at most 10000000 groups");
            sys->groups = (int)v;
        }
        return 0;
    }
    if (lookup(r, item, "groups", &f))
        return fail_line(r, f.line,
                         "key '%s': only valid together with 'ladder' (each group is an "
                         "independent replica-exchange ladder); for independent replicas use "
                         "'copies'",
                         f.path);
    if (lookup(r, item, "frames", &f) && parse_system_frames(r, &f, sys)) return -1;
    if (lookup(r, item, "copies", &f)) {
        if (read_whole(r, &f, 1, "a positive whole number of copies", &v)) return -1;
        if (v > MAX_REPLICAS) return fail_expected(r, &f, "at most 10000000 copies");
        sys->copies = (int)v;
    }
    if (lookup(r, item, "temperature", &f) && parse_system_temperature(r, &f, cfg, sys)) return -1;
    return 0;
}

/* The replicas a system contributes: groups * n_rungs with a ladder, else
 * n_frames * copies. */
static long system_replicas(const system_spec *sys)
{
    if (sys->n_rungs > 0) return (long)sys->groups * sys->n_rungs;
    return (long)sys->n_frames * sys->copies;
}

static int parse_systems(const reader *r, const field *top, run_config *cfg)
{
    field sec;
    if (!lookup(r, top, "systems", &sec))
        return fail_missing(r, top, "systems", "a list of structures, e.g. '- structure: mol.xyz'");
    const char *expectation = "a list of systems (lines starting '- structure: FILE')";
    if (sec.value->type != YAML_SEQUENCE_NODE) return fail_expected(r, &sec, expectation);
    int n = sequence_length(sec.value);
    if (n == 0)
        return fail_line(r, sec.line,
                         "key 'systems': expected at least one system, got an empty list");
    cfg->systems = calloc((size_t)n, sizeof *cfg->systems);
    if (!cfg->systems) return fail_line(r, sec.line, "key 'systems': out of memory");
    cfg->n_systems = n;
    for (int i = 0; i < n; i++) {
        cfg->systems[i].n_frames = 1;
        cfg->systems[i].copies = 1;
        cfg->systems[i].groups = 1;
    }
    long replicas = 0;
    for (int i = 0; i < n; i++) {
        field item;
        sequence_item(r, &sec, i, &item);
        if (parse_system(r, &item, cfg, &cfg->systems[i])) return -1;
        replicas += system_replicas(&cfg->systems[i]);
        if (replicas > MAX_REPLICAS)
            return fail_line(r, item.line, "key '%s': more than %ld replicas in all", item.path,
                             MAX_REPLICAS);
    }
    return 0;
}

static int parse_velocities(const reader *r, const field *top, run_config *cfg)
{
    field sec, f;
    if (!lookup(r, top, "velocities", &sec)) return 0;
    if (cfg->integrator.kind == INTEGRATOR_FIRE)
        return fail_not_used(r, &sec, "the verlet and langevin integrators", cfg);
    if (check_mapping(r, &sec, VELOCITY_KEYS, "a mapping with 'temperature: KELVIN'")) return -1;
    if (!lookup(r, &sec, "temperature", &f))
        return fail_missing(r, &sec, "temperature",
                            "of the Maxwell-Boltzmann initial velocities, in K");
    if (read_number(r, &f, NON_NEGATIVE, "a temperature in kelvin (a number >= 0)",
                    &cfg->velocities.temperature_K))
        return -1;
    cfg->velocities.set = 1;
    return 0;
}

/* output.fields: a list drawn from position, velocity, force. */
static int parse_output_fields(const reader *r, const field *f, run_config *cfg)
{
    if (f->value->type != YAML_SEQUENCE_NODE)
        return fail_expected(r, f, "a list of fields such as [position, velocity, force]");
    int *flags[] = {&cfg->output.position, &cfg->output.velocity, &cfg->output.force};
    for (int k = 0; k < 3; k++) *flags[k] = 0;
    for (int i = 0; i < sequence_length(f->value); i++) {
        field item;
        sequence_item(r, f, i, &item);
        int k;
        if (read_choice(r, &item, OUTPUT_FIELDS, "output field", &k)) return -1;
        if (*flags[k])
            return fail_line(r, item.line, "key '%s': field '%s' listed twice", item.path,
                             OUTPUT_FIELDS[k]);
        *flags[k] = 1;
    }
    return 0;
}

static int parse_output(const reader *r, const field *top, run_config *cfg)
{
    field sec, f;
    int flush_given = 0;
    if (lookup(r, top, "output", &sec)) {
        if (check_mapping(r, &sec, OUTPUT_KEYS,
                          "a mapping with file, interval, fields, flush_interval"))
            return -1;
        if (lookup(r, &sec, "file", &f) &&
            read_output_file(r, &f, "the H5MD trajectory", cfg->output.file))
            return -1;
        if (lookup(r, &sec, "interval", &f) &&
            read_whole(r, &f, 1, "a positive whole number of steps", &cfg->output.interval))
            return -1;
        if (lookup(r, &sec, "fields", &f) && parse_output_fields(r, &f, cfg)) return -1;
        if (lookup(r, &sec, "flush_interval", &f)) {
            if (read_whole(r, &f, 1, "a positive whole number of steps",
                           &cfg->output.flush_interval))
                return -1;
            flush_given = 1;
        }
    }
    if (!flush_given)
        cfg->output.flush_interval =
            cfg->output.interval > LONG_MAX / 10 ? LONG_MAX : cfg->output.interval * 10;
    return 0;
}

static int parse_checkpoint(const reader *r, const field *top, run_config *cfg)
{
    field sec, f;
    if (!lookup(r, top, "checkpoint", &sec)) return 0;
    if (check_mapping(r, &sec, CHECKPOINT_KEYS, "a mapping with file and interval")) return -1;
    if (lookup(r, &sec, "file", &f)) {
        if (read_output_file(r, &f, "the checkpoint", cfg->checkpoint.file)) return -1;
        if (!strcmp(cfg->checkpoint.file, cfg->output.file))
            return fail_line(r, f.line, "key '%s': the checkpoint would overwrite output.file '%s'",
                             f.path, cfg->output.file);
    }
    if (lookup(r, &sec, "interval", &f) &&
        read_whole(r, &f, 1, "a positive whole number of steps", &cfg->checkpoint.interval))
        return -1;
    return 0;
}

static int parse_steps(const reader *r, const field *top, run_config *cfg)
{
    field f;
    if (!lookup(r, top, "steps", &f)) {
        if (cfg->integrator.kind != INTEGRATOR_FIRE)
            return fail_missing(r, top, "steps", "the number of MD steps");
        cfg->steps = FIRE_DEFAULT_ITERATIONS;
        return 0;
    }
    return read_whole(r, &f, 1, "a positive whole number of steps", &cfg->steps);
}

/* Langevin needs a temperature for every replica: integrator.temperature,
 * or a temperature (or a ladder) on every system. */
static int check_langevin_temperatures(const reader *r, const field *top, const run_config *cfg,
                                       int has_integrator_temperature)
{
    if (cfg->integrator.kind != INTEGRATOR_LANGEVIN || has_integrator_temperature) return 0;
    for (int i = 0; i < cfg->n_systems; i++) {
        if (cfg->systems[i].n_temperatures || cfg->systems[i].n_rungs) continue;
        field sec;
        unsigned long line = lookup(r, top, "integrator", &sec) ? sec.line : top->line;
        return fail_line(r, line,
                         "key 'integrator.temperature': the langevin integrator needs a "
                         "temperature in kelvin (give integrator.temperature, or a "
                         "temperature or a ladder on every system; systems[%d] has none)",
                         i);
    }
    return 0;
}

/* The first system with a ladder, or -1. */
static int first_ladder(const run_config *cfg)
{
    for (int i = 0; i < cfg->n_systems; i++)
        if (cfg->systems[i].n_rungs > 0) return i;
    return -1;
}

/* replica_exchange: {interval: STEPS}. Required when a system has a ladder
 * and an error without one, so that neither is silently ignored. */
static int parse_replica_exchange(const reader *r, const field *top, run_config *cfg)
{
    field sec, f;
    int with_ladder = first_ladder(cfg);
    if (!lookup(r, top, "replica_exchange", &sec)) {
        if (with_ladder < 0) return 0;
        field systems, item, ladder;
        lookup(r, top, "systems", &systems);
        sequence_item(r, &systems, with_ladder, &item);
        lookup(r, &item, "ladder", &ladder);
        return fail_line(r, ladder.line,
                         "key '%s': a temperature ladder needs the top-level key "
                         "'replica_exchange' with 'interval: STEPS' (steps between exchange "
                         "attempts)",
                         ladder.path);
    }
    if (with_ladder < 0 && cfg->alchemical.mode != ALCHEMICAL_NONE)
        return fail_line(r, sec.line,
                         "key 'replica_exchange': a λ sweep exchanges between neighbouring "
                         "windows with 'alchemical.exchange_interval: STEPS'; remove "
                         "replica_exchange");
    if (with_ladder < 0)
        return fail_line(r, sec.line,
                         "key 'replica_exchange': no system has a 'ladder'; replica exchange "
                         "swaps temperatures along a ladder (systems[].ladder); add a ladder "
                         "to a system or remove replica_exchange");
    if (check_mapping(r, &sec, REPLICA_EXCHANGE_KEYS, "a mapping with 'interval: STEPS'"))
        return -1;
    if (!lookup(r, &sec, "interval", &f))
        return fail_missing(r, &sec, "interval", "steps between exchange attempts");
    return read_whole(r, &f, 1, "a positive whole number of steps",
                      &cfg->replica_exchange.interval);
}

/* ---- alchemical: a λ-window sweep ---- */

/* alchemical.mode, read before the rest (it decides whether the top-level
 * model is needed). ALCHEMICAL_NONE when there is no alchemical section. */
static int parse_alchemical_mode(const reader *r, const field *top, run_config *cfg)
{
    field sec, f;
    if (!lookup(r, top, "alchemical", &sec)) return 0;
    if (check_mapping(r, &sec, ALCHEMICAL_KEYS,
                      "a mapping with mode, lambdas, ... (see docs/config.md, 'Free-energy "
                      "sweeps')"))
        return -1;
    if (!lookup(r, &sec, "mode", &f))
        return fail_missing(r, &sec, "mode", "interpolate or decouple");
    int mode;
    if (read_choice(r, &f, ALCHEMICAL_MODES, "alchemical mode", &mode)) return -1;
    cfg->alchemical.mode = mode == 0 ? ALCHEMICAL_INTERPOLATE : ALCHEMICAL_DECOUPLE;
    return 0;
}

/* The top-level model: required, except for interpolate, whose end states
 * name their own (there it is an error, so that it is not silently unused). */
static int parse_model(const reader *r, const field *top, run_config *cfg)
{
    field f;
    int given = lookup(r, top, "model", &f);
    if (cfg->alchemical.mode == ALCHEMICAL_INTERPOLATE) {
        if (!given) return 0;
        return fail_line(r, f.line,
                         "key 'model': not used by alchemical.mode 'interpolate' (each end "
                         "state names its own: alchemical.a.model, alchemical.b.model); remove "
                         "it");
    }
    if (!given) return fail_missing(r, top, "model", "the .onnx model file");
    return read_existing_file(r, &f, "model file", cfg->model);
}

/* alchemical.a / alchemical.b: {model: FILE} or {harmonic: {k, structure}}. */
static int parse_endpoint(const reader *r, const field *f, alchemical_endpoint *e)
{
    const char *expectation = "an end state: {model: FILE} or {harmonic: {k: EV_PER_A2, "
                              "structure: FILE}}";
    field model, harmonic, g;
    if (check_mapping(r, f, ENDPOINT_KEYS, expectation)) return -1;
    int has_model = lookup(r, f, "model", &model);
    int has_harmonic = lookup(r, f, "harmonic", &harmonic);
    if (has_model && has_harmonic)
        return fail_line(r, harmonic.line,
                         "key '%s': an end state is either a model or a harmonic restraint, not "
                         "both ('%s' on line %lu); remove one",
                         harmonic.path, model.path, model.line);
    if (has_model) return read_existing_file(r, &model, "model file", e->model);
    if (!has_harmonic) return fail_expected(r, f, expectation);
    e->harmonic = 1;
    if (check_mapping(r, &harmonic, HARMONIC_KEYS, "a mapping {k: EV_PER_A2, structure: FILE}"))
        return -1;
    if (!lookup(r, &harmonic, "k", &g))
        return fail_missing(r, &harmonic, "k", "the spring constant in eV/Å^2");
    if (read_number(r, &g, POSITIVE, "a positive spring constant in eV/Å^2", &e->k)) return -1;
    if (!lookup(r, &harmonic, "structure", &g))
        return fail_missing(r, &harmonic, "structure",
                            "the XYZ file whose first frame is the restraint's reference "
                            "positions");
    return read_existing_file(r, &g, "structure file", e->structure);
}

/* alchemical.lambdas: a list of >= 2 values in [0, 1], strictly increasing,
 * or {count: n}: λ_k = k / (n - 1), k = 0 .. n-1. */
static int parse_lambdas(const reader *r, const field *f, run_config *cfg)
{
    const char *expectation = "a list of λ values from 0 to 1 ([0, 0.25, 0.5, 0.75, 1]) or "
                              "{count: N} (N evenly spaced windows from 0 to 1)";
    long n;
    field g;
    if (f->value->type == YAML_MAPPING_NODE) {
        if (check_mapping(r, f, LAMBDA_COUNT_KEYS, expectation)) return -1;
        if (!lookup(r, f, "count", &g))
            return fail_missing(r, f, "count", "the number of λ windows, at least 2");
        if (read_whole(r, &g, 2, "a whole number of windows >= 2", &n)) return -1;
        if (n > MAX_REPLICAS) return fail_expected(r, &g, "at most 10000000 windows");
    } else if (f->value->type == YAML_SEQUENCE_NODE) {
        n = sequence_length(f->value);
        if (n < 2)
            return fail_line(r, f->line, "key '%s': expected at least 2 λ windows, got %ld",
                             f->path, n);
    } else {
        return fail_expected(r, f, expectation);
    }
    cfg->alchemical.lambdas = calloc((size_t)n, sizeof(double));
    if (!cfg->alchemical.lambdas) return fail_line(r, f->line, "key '%s': out of memory", f->path);
    cfg->alchemical.n_lambdas = (int)n;
    if (f->value->type == YAML_MAPPING_NODE) {
        for (long k = 0; k < n; k++) cfg->alchemical.lambdas[k] = (double)k / (double)(n - 1);
        return 0;
    }
    for (long k = 0; k < n; k++) {
        double *lambda = &cfg->alchemical.lambdas[k];
        sequence_item(r, f, (int)k, &g);
        char want[128] = "a λ value from 0 to 1";
        if (k > 0)
            snprintf(want, sizeof want, "a λ value above %g and at most 1 (the windows must be "
                     "strictly increasing)", lambda[-1]);
        if (read_number(r, &g, NON_NEGATIVE, want, lambda)) return -1;
        if (*lambda > 1 || (k > 0 && !(*lambda > lambda[-1]))) return fail_expected(r, &g, want);
    }
    return 0;
}

static int compare_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The number of atoms of the sweep's system (its frame `frame`). */
static int system_atoms(const reader *r, const field *f, const system_spec *sys, int *n_atoms)
{
    xyz_trajectory t;
    dm_error why = {{0}};
    if (xyz_read_file(sys->structure, &t, &why))
        return fail_line(r, f->line, "key '%s': cannot read the system's structure: %s", f->path,
                         why.msg);
    int ok = sys->frame < t.n_frames;
    *n_atoms = ok ? t.frames[sys->frame].n_atoms : 0;
    xyz_trajectory_free(&t);
    if (!ok)
        return fail_line(r, f->line, "key '%s': structure '%s' has no frame %d", f->path,
                         sys->structure, sys->frame);
    return 0;
}

/* alchemical.solute: a list of atom indices (0-based) or {first: i, count: n};
 * distinct, within the system, not every atom. Stored sorted. */
static int parse_solute(const reader *r, const field *f, run_config *cfg)
{
    const char *expectation = "the solute's atoms: a list of atom indices counted from 0 "
                              "([0, 1, 2]) or {first: INDEX, count: N}";
    field g;
    long first = 0, n;
    if (f->value->type == YAML_MAPPING_NODE) {
        if (check_mapping(r, f, SOLUTE_RANGE_KEYS, expectation)) return -1;
        if (!lookup(r, f, "first", &g))
            return fail_missing(r, f, "first", "the solute's first atom, counted from 0");
        if (read_whole(r, &g, 0, "an atom index (a whole number >= 0)", &first)) return -1;
        if (!lookup(r, f, "count", &g))
            return fail_missing(r, f, "count", "the number of solute atoms");
        if (read_whole(r, &g, 1, "a positive whole number of atoms", &n)) return -1;
    } else if (f->value->type == YAML_SEQUENCE_NODE) {
        n = sequence_length(f->value);
        if (n < 1) return fail_expected(r, f, expectation);
    } else {
        return fail_expected(r, f, expectation);
    }
    int n_atoms;
    if (system_atoms(r, f, &cfg->systems[0], &n_atoms)) return -1;
    if (first + n > n_atoms)
        return fail_line(r, f->line, "key '%s': atoms %ld..%ld requested, but systems[0] has %d "
                         "atoms (counted from 0)", f->path, first, first + n - 1, n_atoms);
    cfg->alchemical.solute = calloc((size_t)n, sizeof(int));
    if (!cfg->alchemical.solute) return fail_line(r, f->line, "key '%s': out of memory", f->path);
    cfg->alchemical.n_solute = (int)n;
    for (long k = 0; k < n; k++) {
        if (f->value->type == YAML_MAPPING_NODE) {
            cfg->alchemical.solute[k] = (int)(first + k);
            continue;
        }
        long index;
        char want[96];
        snprintf(want, sizeof want, "an atom index from 0 to %d (systems[0] has %d atoms)",
                 n_atoms - 1, n_atoms);
        sequence_item(r, f, (int)k, &g);
        if (read_whole(r, &g, 0, want, &index)) return -1;
        if (index >= n_atoms) return fail_expected(r, &g, want);
        for (long j = 0; j < k; j++)
            if (cfg->alchemical.solute[j] == index)
                return fail_line(r, g.line, "key '%s': atom %ld is listed twice", g.path, index);
        cfg->alchemical.solute[k] = (int)index;
    }
    qsort(cfg->alchemical.solute, (size_t)n, sizeof(int), compare_int);
    if (n == n_atoms)
        return fail_line(r, f->line, "key '%s': the solute is every atom of systems[0]; decouple "
                         "needs atoms outside it (the rest of the cluster)", f->path);
    return 0;
}

/* A sweep's replicas are its windows: one system, with none of the keys that
 * make replicas of their own. */
static int check_sweep_system(const reader *r, const field *top, const field *sec)
{
    field systems, item, f;
    lookup(r, top, "systems", &systems);
    if (sequence_length(systems.value) != 1)
        return fail_line(r, sec->line,
                         "key 'alchemical': a λ sweep has exactly one system (its replicas are "
                         "the λ windows), but 'systems' (line %lu) has %d",
                         systems.line, sequence_length(systems.value));
    sequence_item(r, &systems, 0, &item);
    static const char *const EXCLUDED[] = {"copies", "temperature", "ladder", "groups", "frames",
                                           NULL};
    for (int i = 0; EXCLUDED[i]; i++)
        if (lookup(r, &item, EXCLUDED[i], &f))
            return fail_line(r, f.line,
                             "key '%s': not allowed in a λ sweep (alchemical, line %lu): the "
                             "replicas of the system are the λ windows, one per window, at "
                             "integrator.temperature; remove it",
                             f.path, sec->line);
    return 0;
}

/* The keys of one mode that the other may not have. */
static int check_mode_keys(const reader *r, const field *sec, const run_config *cfg)
{
    static const char *const INTERPOLATE_ONLY[] = {"a", "b", NULL};
    static const char *const DECOUPLE_ONLY[] = {"solute", NULL};
    int interpolate = cfg->alchemical.mode == ALCHEMICAL_INTERPOLATE;
    const char *const *foreign = interpolate ? DECOUPLE_ONLY : INTERPOLATE_ONLY;
    field f;
    for (int i = 0; foreign[i]; i++)
        if (lookup(r, sec, foreign[i], &f))
            return fail_line(r, f.line, "key '%s': only used by alchemical.mode '%s', but the "
                             "mode is '%s'; remove it", f.path,
                             interpolate ? "decouple" : "interpolate",
                             interpolate ? "interpolate" : "decouple");
    return 0;
}

/* The rest of `alchemical` (mode already read), after systems and the
 * integrator. */
static int parse_alchemical(const reader *r, const field *top, run_config *cfg)
{
    field sec, f;
    if (cfg->alchemical.mode == ALCHEMICAL_NONE) return 0;
    lookup(r, top, "alchemical", &sec);
    if (cfg->integrator.kind != INTEGRATOR_LANGEVIN)
        return fail_line(r, sec.line,
                         "key 'alchemical': a λ sweep runs Langevin dynamics in every window, "
                         "but integrator.type is '%s'; set integrator.type to langevin",
                         integrator_name(cfg->integrator.kind));
    if (check_sweep_system(r, top, &sec) || check_mode_keys(r, &sec, cfg)) return -1;
    if (cfg->alchemical.mode == ALCHEMICAL_INTERPOLATE) {
        const char *what = "an end state: {model: FILE} or {harmonic: {k, structure}}";
        if (!lookup(r, &sec, "a", &f)) return fail_missing(r, &sec, "a", what);
        if (parse_endpoint(r, &f, &cfg->alchemical.a)) return -1;
        if (!lookup(r, &sec, "b", &f)) return fail_missing(r, &sec, "b", what);
        if (parse_endpoint(r, &f, &cfg->alchemical.b)) return -1;
    } else {
        if (!lookup(r, &sec, "solute", &f))
            return fail_missing(r, &sec, "solute", "the atoms of the molecule to decouple");
        if (parse_solute(r, &f, cfg)) return -1;
    }
    if (!lookup(r, &sec, "lambdas", &f))
        return fail_missing(r, &sec, "lambdas", "the λ windows: a list, or {count: N}");
    if (parse_lambdas(r, &f, cfg)) return -1;
    if (lookup(r, &sec, "exchange_interval", &f) &&
        read_whole(r, &f, 1, "a positive whole number of steps between exchange attempts",
                   &cfg->alchemical.exchange_interval))
        return -1;
    cfg->systems[0].copies = cfg->alchemical.n_lambdas; /* one replica per window */
    return 0;
}

/* restraint: {k, radius}, a flat-bottom wall about each replica's centroid. */
static int parse_restraint(const reader *r, const field *top, run_config *cfg)
{
    field sec, f;
    if (!lookup(r, top, "restraint", &sec)) return 0;
    if (check_mapping(r, &sec, RESTRAINT_KEYS, "a mapping {k: EV_PER_A2, radius: ANGSTROM}"))
        return -1;
    if (!lookup(r, &sec, "k", &f))
        return fail_missing(r, &sec, "k", "the wall's spring constant in eV/Å^2");
    if (read_number(r, &f, POSITIVE, "a positive spring constant in eV/Å^2", &cfg->restraint.k))
        return -1;
    if (!lookup(r, &sec, "radius", &f))
        return fail_missing(r, &sec, "radius", "the radius of the flat bottom in Å");
    if (read_number(r, &f, POSITIVE, "a positive radius in Å", &cfg->restraint.radius)) return -1;
    cfg->restraint.set = 1;
    return 0;
}

static void set_defaults(run_config *cfg)
{
    snprintf(cfg->platform, sizeof cfg->platform, "auto");
    cfg->seed = 1;
    cfg->integrator.kind = INTEGRATOR_VERLET;
    cfg->integrator.timestep_fs = 0.5;
    cfg->integrator.friction_per_ps = 1.0;
    cfg->integrator.temperature_K = 0.0;
    cfg->integrator.force_tolerance = 0.01;
    cfg->integrator.max_step = 0.1;
    cfg->remove_com_interval = 0;
    cfg->output.interval = 100;
    cfg->output.position = 1;
    cfg->checkpoint.interval = 10000;
    cfg->progress_interval = 0;
}

static int parse_top(const reader *r, yaml_node_t *root, run_config *cfg)
{
    field top = {root, node_line(root), ""}, f;
    if (check_mapping(r, &top, TOP_KEYS, "a mapping of keys (model, systems, steps, ...)"))
        return -1;
    set_defaults(cfg);
    if (parse_alchemical_mode(r, &top, cfg) || parse_model(r, &top, cfg)) return -1;
    int platform;
    if (lookup(r, &top, "platform", &f)) {
        if (read_choice(r, &f, PLATFORMS, "platform", &platform)) return -1;
        snprintf(cfg->platform, sizeof cfg->platform, "%s", PLATFORMS[platform]);
    }
    if (lookup(r, &top, "seed", &f) && read_seed(r, &f, &cfg->seed)) return -1;
    int has_temperature;
    if (parse_integrator(r, &top, cfg, &has_temperature)) return -1;
    if (parse_steps(r, &top, cfg)) return -1;
    if (parse_systems(r, &top, cfg)) return -1;
    if (parse_alchemical(r, &top, cfg)) return -1;
    if (check_langevin_temperatures(r, &top, cfg, has_temperature)) return -1;
    if (parse_replica_exchange(r, &top, cfg)) return -1;
    if (parse_restraint(r, &top, cfg)) return -1;
    if (parse_velocities(r, &top, cfg)) return -1;
    if (lookup(r, &top, "remove_com_interval", &f) &&
        (cfg->integrator.kind == INTEGRATOR_FIRE
             ? fail_not_used(r, &f, "the verlet and langevin integrators", cfg)
             : read_whole(r, &f, 0, "a whole number of steps >= 0 (0: never)",
                          &cfg->remove_com_interval)))
        return -1;
    if (parse_output(r, &top, cfg)) return -1;
    if (parse_checkpoint(r, &top, cfg)) return -1;
    if (lookup(r, &top, "progress_interval", &f) &&
        read_whole(r, &f, 0, "a whole number of steps >= 0 (0: about once a second)",
                   &cfg->progress_interval))
        return -1;
    return 0;
}

/* ---- loading the file ---- */

/* libyaml's complaint as "FILE:LINE: YAML syntax error: problem (context)". */
static int fail_yaml(const reader *r, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR) return dm_fail(r->err, "%s: out of memory", r->file);
    if (parser->error == YAML_READER_ERROR)
        return dm_fail(r->err, "%s: cannot read as YAML text: %s at byte %zu", r->file,
                       parser->problem ? parser->problem : "unreadable input",
                       parser->problem_offset);
    char context[160] = "";
    if (parser->context)
        snprintf(context, sizeof context, " (%s on line %lu)", parser->context,
                 (unsigned long)parser->context_mark.line + 1);
    return fail_line(r, (unsigned long)parser->problem_mark.line + 1, "YAML syntax error: %s%s",
                     parser->problem ? parser->problem : "malformed YAML", context);
}

/* The absolute directory that holds `path`. */
static int directory_of(const char *path, char *dir, dm_error *err)
{
    char parent[CONFIG_PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    char resolved[PATH_MAX];
    if (!realpath(parent, resolved))
        return dm_fail(err, "%s: cannot resolve its directory '%s': %s", path, parent,
                       strerror(errno));
    size_t len = strlen(resolved);
    if (len >= CONFIG_PATH_MAX)
        return dm_fail(err, "%s: directory path longer than %d characters", path,
                       CONFIG_PATH_MAX - 1);
    memcpy(dir, resolved, len + 1);
    return 0;
}

/* Loads the single document of the file and parses it. */
static int parse_file(reader *r, FILE *in, run_config *cfg)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    if (!yaml_parser_initialize(&parser)) return dm_fail(r->err, "%s: out of memory", r->file);
    yaml_parser_set_input_file(&parser, in);
    int rc = -1;
    if (!yaml_parser_load(&parser, &doc)) {
        fail_yaml(r, &parser);
        yaml_parser_delete(&parser);
        return -1;
    }
    r->doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        dm_fail(r->err,
                "%s:1: the configuration is empty; expected a mapping with at least the keys "
                "'model', 'systems' and 'steps'",
                r->file);
    } else if (!yaml_parser_load(&parser, &extra)) {
        fail_yaml(r, &parser);
    } else {
        yaml_node_t *second = yaml_document_get_root_node(&extra);
        if (second)
            fail_line(r, node_line(second),
                      "a second YAML document ('---'); expected one configuration per file");
        else
            rc = parse_top(r, root, cfg);
        yaml_document_delete(&extra);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

static int load(const char *path, run_config *cfg, dm_error *err)
{
    if (!path || !*path) return dm_fail(err, "no configuration file given");
    reader r = {path, "", NULL, err};
    size_t len = strlen(path);
    if (len >= CONFIG_PATH_MAX)
        return dm_fail(err, "%s: path longer than %d characters", path, CONFIG_PATH_MAX - 1);
    memcpy(cfg->source, path, len + 1);
    struct stat st;
    if (stat(path, &st) != 0)
        return dm_fail(err, "%s: cannot open the configuration: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dm_fail(err, "%s: the configuration is not a regular file", path);
    if (directory_of(path, r.dir, err)) return -1;
    FILE *in = fopen(path, "rb");
    if (!in) return dm_fail(err, "%s: cannot open the configuration: %s", path, strerror(errno));
    int rc = parse_file(&r, in, cfg);
    fclose(in);
    return rc;
}

int run_config_load(const char *path, run_config *cfg, dm_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (load(path, cfg, err) == 0) return 0;
    run_config_free(cfg);
    return -1;
}

void run_config_free(run_config *cfg)
{
    if (!cfg) return;
    for (int i = 0; i < cfg->n_systems; i++) {
        free(cfg->systems[i].temperatures);
        free(cfg->systems[i].ladder);
    }
    free(cfg->systems);
    free(cfg->alchemical.lambdas);
    free(cfg->alchemical.solute);
    memset(cfg, 0, sizeof *cfg);
}

int run_config_replicas(const run_config *cfg)
{
    long n = 0;
    for (int i = 0; i < cfg->n_systems; i++) n += system_replicas(&cfg->systems[i]);
    return (int)n;
}
