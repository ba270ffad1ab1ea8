/* xyz.c — XYZ / extended XYZ (ASE flavour) reading and writing, and the
 * element table.
 *
 * Frame layout:
 *   line 1    N, the number of atoms (a positive integer, nothing else)
 *   line 2    comment; parsed as key=value pairs the way ASE does:
 *             whitespace separates pairs, "..." '...' {...} [...] delimit
 *             values that contain spaces, a backslash escapes the next
 *             character, a key without '=' means "T" (true), and
 *             "key = value" (spaces around '=') is allowed.
 *   N lines   the columns named by Properties=name:type:ncols:... (types S,
 *             R, I, L); without Properties the layout is "species x y z" and
 *             further columns are ignored.
 * Used columns: species:S:1 (or Z:I:1 / numbers:I:1), pos:R:3 (required),
 * forces:R:3 (or force), velocities:R:3 (or vel). Used comment keys:
 * Properties (or properties), energy, name. */
#define _POSIX_C_SOURCE 200809L

#include "xyz.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Elements: symbols and standard atomic weights (IUPAC 2013, Meija et al.,
 * Pure Appl. Chem. 88, 265 (2016); conventional values where IUPAC gives an
 * interval, e.g. H 1.008, C 12.011; for elements without stable isotopes the
 * mass of the longest-lived isotope, e.g. Tc-98). These are the values ASE
 * uses by default (ase.data.atomic_masses). */

typedef struct element_info {
    const char *symbol;
    double mass; /* amu */
} element_info;

#define N_ELEMENTS 118

static const element_info ELEMENTS[N_ELEMENTS + 1] = {
    {NULL, 0.0},
    {"H", 1.008},           {"He", 4.002602},      {"Li", 6.94},
    {"Be", 9.0121831},      {"B", 10.81},          {"C", 12.011},
    {"N", 14.007},          {"O", 15.999},         {"F", 18.998403163},
    {"Ne", 20.1797},        {"Na", 22.98976928},   {"Mg", 24.305},
    {"Al", 26.9815385},     {"Si", 28.085},        {"P", 30.973761998},
    {"S", 32.06},           {"Cl", 35.45},         {"Ar", 39.948},
    {"K", 39.0983},         {"Ca", 40.078},        {"Sc", 44.955908},
    {"Ti", 47.867},         {"V", 50.9415},        {"Cr", 51.9961},
    {"Mn", 54.938044},      {"Fe", 55.845},        {"Co", 58.933194},
    {"Ni", 58.6934},        {"Cu", 63.546},        {"Zn", 65.38},
    {"Ga", 69.723},         {"Ge", 72.630},        {"As", 74.921595},
    {"Se", 78.971},         {"Br", 79.904},        {"Kr", 83.798},
    {"Rb", 85.4678},        {"Sr", 87.62},         {"Y", 88.90584},
    {"Zr", 91.224},         {"Nb", 92.90637},      {"Mo", 95.95},
    {"Tc", 97.90721},       {"Ru", 101.07},        {"Rh", 102.90550},
    {"Pd", 106.42},         {"Ag", 107.8682},      {"Cd", 112.414},
    {"In", 114.818},        {"Sn", 118.710},       {"Sb", 121.760},
    {"Te", 127.60},         {"I", 126.90447},      {"Xe", 131.293},
    {"Cs", 132.90545196},   {"Ba", 137.327},       {"La", 138.90547},
    {"Ce", 140.116},        {"Pr", 140.90766},     {"Nd", 144.242},
    {"Pm", 144.91276},      {"Sm", 150.36},        {"Eu", 151.964},
    {"Gd", 157.25},         {"Tb", 158.92535},     {"Dy", 162.500},
    {"Ho", 164.93033},      {"Er", 167.259},       {"Tm", 168.93422},
    {"Yb", 173.054},        {"Lu", 174.9668},      {"Hf", 178.49},
    {"Ta", 180.94788},      {"W", 183.84},         {"Re", 186.207},
    {"Os", 190.23},         {"Ir", 192.217},       {"Pt", 195.084},
    {"Au", 196.966569},     {"Hg", 200.592},       {"Tl", 204.38},
    {"Pb", 207.2},          {"Bi", 208.98040},     {"Po", 208.98243},
    {"At", 209.98715},      {"Rn", 222.01758},     {"Fr", 223.01974},
    {"Ra", 226.02541},      {"Ac", 227.02775},     {"Th", 232.0377},
    {"Pa", 231.03588},      {"U", 238.02891},      {"Np", 237.04817},
    {"Pu", 244.06421},      {"Am", 243.06138},     {"Cm", 247.07035},
    {"Bk", 247.07031},      {"Cf", 251.07959},     {"Es", 252.0830},
    {"Fm", 257.09511},      {"Md", 258.09843},     {"No", 259.1010},
    {"Lr", 262.110},        {"Rf", 267.122},       {"Db", 268.126},
    {"Sg", 271.134},        {"Bh", 270.133},       {"Hs", 269.1338},
    {"Mt", 278.156},        {"Ds", 281.165},       {"Rg", 281.166},
    {"Cn", 285.177},        {"Nh", 286.182},       {"Fl", 289.190},
    {"Mc", 289.194},        {"Lv", 293.204},       {"Ts", 293.208},
    {"Og", 294.214},
};

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int equal_ignoring_case(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b)) return 0;
    return *a == *b;
}

/* Symbols differ from each other in more than letter case, so a
 * case-insensitive match ("CL", "cl" -> Cl) is unambiguous; ASE likewise
 * capitalizes species before looking them up. */
int element_number(const char *symbol)
{
    if (!symbol) return 0;
    for (int z = 1; z <= N_ELEMENTS; z++)
        if (equal_ignoring_case(symbol, ELEMENTS[z].symbol)) return z;
    return 0;
}

const char *element_symbol(int z)
{
    return (z >= 1 && z <= N_ELEMENTS) ? ELEMENTS[z].symbol : NULL;
}

double element_mass(int z)
{
    return (z >= 1 && z <= N_ELEMENTS) ? ELEMENTS[z].mass : 0.0;
}

/* ------------------------------------------------------------------------ */
/* Small text helpers. */

static int is_blank_char(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int is_blank_line(const char *s)
{
    for (; *s; s++)
        if (!is_blank_char(*s)) return 0;
    return 1;
}

/* A string that grows one character at a time (always NUL-terminated once
 * anything was pushed). */
typedef struct text_buf {
    char *s;
    size_t len, cap;
} text_buf;

static int text_push(text_buf *b, char c)
{
    if (b->len + 2 > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 32;
        char *s = realloc(b->s, cap);
        if (!s) return -1;
        b->s = s;
        b->cap = cap;
    }
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
    return 0;
}

/* Hands the text over as a new string ("" when empty) and resets b. */
static char *text_take(text_buf *b)
{
    char *s = b->s ? b->s : strdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

static void text_free(text_buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* Reads lines of any length; `number` is the 1-based number of the line
 * last read. */
typedef struct line_reader {
    FILE *f;
    char *buf;
    size_t cap;
    long number;
} line_reader;

/* Next line without its "\n" or "\r\n" in r->buf. Returns 1 when a line was
 * read, 0 at end of file, -1 on a read error. */
static int next_line(line_reader *r)
{
    errno = 0;
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0) return ferror(r->f) ? -1 : 0;
    while (n > 0 && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r')) r->buf[--n] = '\0';
    r->number++;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Comment line: key=value pairs. */

typedef struct kv_pair {
    char *key;
    char *value;
} kv_pair;

typedef struct kv_list {
    kv_pair *items;
    int n, cap;
} kv_list;

static void kv_list_free(kv_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

/* Appends key -> (value, or "T" for a bare key); empty keys are dropped. */
static int kv_list_add(kv_list *l, text_buf *key, text_buf *value, int has_value)
{
    if (key->len == 0) {
        text_free(key);
        text_free(value);
        return 0;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        kv_pair *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return -1;
        l->items = items;
        l->cap = cap;
    }
    char *k = text_take(key);
    char *v = has_value ? text_take(value) : strdup("T");
    text_free(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    l->items[l->n].key = k;
    l->items[l->n].value = v;
    l->n++;
    return 0;
}

/* The value of the last pair named `key` (ASE keeps the last), or NULL. */
static const char *kv_find(const kv_list *l, const char *key)
{
    for (int i = l->n - 1; i >= 0; i--)
        if (strcmp(l->items[i].key, key) == 0) return l->items[i].value;
    return NULL;
}

static char closing_delimiter(char c)
{
    switch (c) {
    case '"': return '"';
    case '\'': return '\'';
    case '{': return '}';
    case '[': return ']';
    default: return 0;
    }
}

/* Splits a comment line into key=value pairs (grammar in the file header).
 * A field is "touched" once it holds a character or a (possibly empty)
 * quoted string. Whitespace after a touched field ends it; the pair ends
 * there too unless the next non-blank character is '='. Sets *unterminated
 * when a quote or bracket is never closed. Returns -1 only when out of
 * memory. */
static int parse_key_values(const char *s, kv_list *out, int *unterminated)
{
    text_buf key = {0}, value = {0};
    int has_value = 0, touched = 0, separated = 0, escaped = 0;
    char closing = 0;
    *unterminated = 0;

    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!escaped && !closing && is_blank_char(c)) {
            if (touched) separated = 1;
            continue;
        }
        if (separated) {
            separated = 0;
            if (escaped || c != '=') {
                if (kv_list_add(out, &key, &value, has_value) != 0) goto out_of_memory;
                has_value = 0;
            }
        }
        text_buf *field = has_value ? &value : &key;
        if (escaped) {
            escaped = 0;
            touched = 1;
            if (text_push(field, c) != 0) goto out_of_memory;
        } else if (c == '\\') {
            escaped = 1;
            touched = 1;
        } else if (closing) {
            if (c == closing) closing = 0;
            else if (text_push(field, c) != 0) goto out_of_memory;
        } else if (closing_delimiter(c)) {
            closing = closing_delimiter(c);
            touched = 1;
        } else if (c == '=') {
            if (!has_value) {
                has_value = 1; /* the value field starts, still untouched */
                touched = 0;
            } else {
                touched = 1; /* "a=b=c": the value is "b=c", as in ASE */
                if (text_push(&value, '=') != 0) goto out_of_memory;
            }
        } else {
            touched = 1;
            if (text_push(field, c) != 0) goto out_of_memory;
        }
    }
    if (closing) *unterminated = 1;
    if (kv_list_add(out, &key, &value, has_value) != 0) goto out_of_memory;
    return 0;

out_of_memory:
    text_free(&key);
    text_free(&value);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Column layout of the atom lines. */

#define PROPERTY_NAME_MAX 64

typedef struct column_layout {
    int extended;     /* 1: from Properties, the column count must match */
    int n_columns;    /* columns per atom line (plain: at least this many) */
    int species_col;  /* species:S:1, or -1 */
    int z_col;        /* Z:I:1 or numbers:I:1, or -1 */
    int pos_col;      /* first of the three pos columns */
    int forces_col;   /* first forces column, or -1 */
    int vel_col;      /* first velocities column, or -1 */
    char z_name[PROPERTY_NAME_MAX];
    char forces_name[PROPERTY_NAME_MAX];
    char vel_name[PROPERTY_NAME_MAX];
    const char *description; /* the Properties value, or "species x y z" */
} column_layout;

static void plain_layout(column_layout *L)
{
    memset(L, 0, sizeof *L);
    L->n_columns = 4;
    L->species_col = 0;
    L->z_col = -1;
    L->pos_col = 1;
    L->forces_col = -1;
    L->vel_col = -1;
    L->description = "species x y z";
}

/* A whole token that is an integer in [lo, hi]. */
static int parse_int_in_range(const char *tok, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(tok, &end, 10);
    if (end == tok || *end != '\0' || errno == ERANGE || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Whether name:type:ncols is the named used property with the required
 * shape; fails when the name matches but the shape does not. */
static int check_property_shape(const char *label, long line, const char *name, char type,
                                long ncols, char want_type, long want_ncols, dm_error *err)
{
    if (type == want_type && ncols == want_ncols) return 0;
    return dm_fail(err, "%s:%ld: Properties: column '%s' is %s:%c:%ld, expected %s:%c:%ld",
                   label, line, name, name, type, ncols, name, want_type, want_ncols);
}

/* Parses Properties=name:type:ncols[:name:type:ncols...] into a layout. */
static int parse_properties(const char *props, const char *label, long line, column_layout *L,
                            dm_error *err)
{
    plain_layout(L);
    L->extended = 1;
    L->n_columns = 0;
    L->species_col = L->pos_col = -1;
    L->description = props;

    int n_fields = 1;
    for (const char *p = props; *p; p++) n_fields += (*p == ':');
    if (n_fields % 3 != 0)
        return dm_fail(err,
                       "%s:%ld: Properties=%s: expected name:type:ncols triplets, found %d "
                       "':'-separated fields (not a multiple of 3)",
                       label, line, props, n_fields);

    const char *p = props;
    for (int t = 0; t < n_fields / 3; t++) {
        char fields[3][PROPERTY_NAME_MAX];
        for (int k = 0; k < 3; k++) {
            const char *colon = strchr(p, ':');
            size_t len = colon ? (size_t)(colon - p) : strlen(p);
            if (len == 0 || len >= PROPERTY_NAME_MAX)
                return dm_fail(err,
                               "%s:%ld: Properties=%s: field %d of triplet %d is %s, expected "
                               "a name, a type or a column count",
                               label, line, props, k + 1, t + 1, len ? "too long" : "empty");
            memcpy(fields[k], p, len);
            fields[k][len] = '\0';
            p = colon ? colon + 1 : p + len;
        }
        const char *name = fields[0];
        char type = fields[1][0];
        if (fields[1][1] != '\0' || !strchr("SRIL", type))
            return dm_fail(err,
                           "%s:%ld: Properties: column '%s' has type '%s', expected one of "
                           "S, R, I, L",
                           label, line, name, fields[1]);
        long ncols;
        if (parse_int_in_range(fields[2], 1, 1000000, &ncols) != 0)
            return dm_fail(err,
                           "%s:%ld: Properties: column '%s' has column count '%s', expected a "
                           "positive integer",
                           label, line, name, fields[2]);
        if (L->n_columns > INT_MAX / 2 - ncols)
            return dm_fail(err, "%s:%ld: Properties=%s: too many columns", label, line, props);

        int first = L->n_columns;
        L->n_columns += (int)ncols;
        if (strcmp(name, "species") == 0 && L->species_col < 0) {
            if (check_property_shape(label, line, name, type, ncols, 'S', 1, err)) return -1;
            L->species_col = first;
        } else if ((strcmp(name, "Z") == 0 || strcmp(name, "numbers") == 0) && L->z_col < 0) {
            if (check_property_shape(label, line, name, type, ncols, 'I', 1, err)) return -1;
            L->z_col = first;
            snprintf(L->z_name, sizeof L->z_name, "%s", name);
        } else if (strcmp(name, "pos") == 0 && L->pos_col < 0) {
            if (check_property_shape(label, line, name, type, ncols, 'R', 3, err)) return -1;
            L->pos_col = first;
        } else if ((strcmp(name, "forces") == 0 || strcmp(name, "force") == 0) &&
                   L->forces_col < 0) {
            if (check_property_shape(label, line, name, type, ncols, 'R', 3, err)) return -1;
            L->forces_col = first;
            snprintf(L->forces_name, sizeof L->forces_name, "%s", name);
        } else if ((strcmp(name, "velocities") == 0 || strcmp(name, "vel") == 0) &&
                   L->vel_col < 0) {
            if (check_property_shape(label, line, name, type, ncols, 'R', 3, err)) return -1;
            L->vel_col = first;
            snprintf(L->vel_name, sizeof L->vel_name, "%s", name);
        }
    }
    if (L->pos_col < 0)
        return dm_fail(err,
                       "%s:%ld: Properties=%s has no pos:R:3 column (positions are required)",
                       label, line, props);
    if (L->species_col < 0 && L->z_col < 0)
        return dm_fail(err,
                       "%s:%ld: Properties=%s has no species:S:1 or Z:I:1 column (expected one "
                       "to name the elements)",
                       label, line, props);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Frames. */

static void frame_free(xyz_frame *fr)
{
    free(fr->species);
    free(fr->positions);
    free(fr->forces);
    free(fr->velocities);
    free(fr->comment);
    free(fr->name);
    memset(fr, 0, sizeof *fr);
}

void xyz_trajectory_free(xyz_trajectory *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_frames; i++) frame_free(&t->frames[i]);
    free(t->frames);
    t->frames = NULL;
    t->n_frames = 0;
}

static int grow_array(void **p, size_t count, size_t size)
{
    void *q = realloc(*p, count * size);
    if (!q) return -1;
    *p = q;
    return 0;
}

/* Makes room for `cap` atoms. Arrays grow with the atom lines actually read,
 * so a bogus huge count line costs no memory before the file runs out. */
static int frame_reserve(xyz_frame *fr, const column_layout *L, size_t cap)
{
    if (grow_array((void **)&fr->species, cap, sizeof(int)) ||
        grow_array((void **)&fr->positions, 3 * cap, sizeof(double)))
        return -1;
    if (L->forces_col >= 0 && grow_array((void **)&fr->forces, 3 * cap, sizeof(double)))
        return -1;
    if (L->vel_col >= 0 && grow_array((void **)&fr->velocities, 3 * cap, sizeof(double)))
        return -1;
    return 0;
}

/* Splits a line in place into whitespace-separated tokens; stores at most
 * `max` of them and returns how many there are in all. */
static int split_columns(char *line, char **tokens, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p && is_blank_char(*p)) p++;
        if (!*p) return n;
        char *start = p;
        while (*p && !is_blank_char(*p)) p++;
        if (n < max) tokens[n] = start;
        n++;
        if (*p) *p++ = '\0';
    }
}

/* Context of the atom line being parsed, for messages. */
typedef struct atom_line {
    const char *label;
    long line;
    int atom;    /* 1-based */
    int n_atoms;
} atom_line;

static int parse_real(const atom_line *a, char **tokens, int col, const char *what,
                      double *out, dm_error *err)
{
    const char *tok = tokens[col];
    char *end;
    double v = strtod(tok, &end);
    if (end == tok || *end != '\0')
        return dm_fail(err, "%s:%ld: atom %d: column %d (%s) expected a number, found '%s'",
                       a->label, a->line, a->atom, col + 1, what, tok);
    if (!isfinite(v))
        return dm_fail(err, "%s:%ld: atom %d: column %d (%s) is '%s', expected a finite number",
                       a->label, a->line, a->atom, col + 1, what, tok);
    *out = v;
    return 0;
}

static int parse_vector(const atom_line *a, char **tokens, int col, const char *name,
                        double out[3], dm_error *err)
{
    static const char axis[3] = {'x', 'y', 'z'};
    for (int k = 0; k < 3; k++) {
        char what[PROPERTY_NAME_MAX + 8];
        snprintf(what, sizeof what, "%s %c", name, axis[k]);
        if (parse_real(a, tokens, col + k, what, &out[k], err)) return -1;
    }
    return 0;
}

/* The atomic number from a species column: a symbol, or an integer Z. */
static int parse_species(const atom_line *a, char **tokens, const column_layout *L, int *z,
                         dm_error *err)
{
    long v;
    if (L->species_col >= 0) {
        const char *tok = tokens[L->species_col];
        *z = element_number(tok);
        if (*z > 0) return 0;
        if (parse_int_in_range(tok, 1, N_ELEMENTS, &v) == 0) {
            *z = (int)v;
            return 0;
        }
        return dm_fail(err,
                       "%s:%ld: atom %d: unknown element '%s' in column %d (expected an "
                       "element symbol H..Og or an atomic number 1..118)",
                       a->label, a->line, a->atom, tok, L->species_col + 1);
    }
    const char *tok = tokens[L->z_col];
    if (parse_int_in_range(tok, 1, N_ELEMENTS, &v) != 0)
        return dm_fail(err,
                       "%s:%ld: atom %d: column %d (%s) is '%s', expected an atomic number "
                       "1..118",
                       a->label, a->line, a->atom, L->z_col + 1, L->z_name, tok);
    *z = (int)v;
    return 0;
}

static int parse_atom_line(const atom_line *a, char *text, const column_layout *L,
                           char **tokens, xyz_frame *fr, dm_error *err)
{
    int found = split_columns(text, tokens, L->n_columns);
    if (found < L->n_columns || (L->extended && found != L->n_columns))
        return dm_fail(err,
                       "%s:%ld: atom %d of %d: expected %s%d columns (%s%s), found %d",
                       a->label, a->line, a->atom, a->n_atoms, L->extended ? "" : "at least ",
                       L->n_columns, L->extended ? "Properties=" : "", L->description, found);
    int i = a->atom - 1;
    if (parse_species(a, tokens, L, &fr->species[i], err)) return -1;
    if (parse_vector(a, tokens, L->pos_col, "pos", &fr->positions[3 * i], err)) return -1;
    if (L->forces_col >= 0 &&
        parse_vector(a, tokens, L->forces_col, L->forces_name, &fr->forces[3 * i], err))
        return -1;
    if (L->vel_col >= 0 &&
        parse_vector(a, tokens, L->vel_col, L->vel_name, &fr->velocities[3 * i], err))
        return -1;
    return 0;
}

/* The count line: a positive integer, optionally surrounded by blanks. */
static int parse_atom_count(const char *text, const char *label, long line, int *n,
                            dm_error *err)
{
    const char *p = text;
    while (*p && is_blank_char(*p)) p++;
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    const char *rest = end;
    while (*rest && is_blank_char(*rest)) rest++;
    if (end == p || *rest != '\0' || errno == ERANGE || v <= 0 || v > INT_MAX / 3)
        return dm_fail(err,
                       "%s:%ld: expected the number of atoms (a positive integer) on the "
                       "first line of a frame, found '%.60s'",
                       label, line, text);
    *n = (int)v;
    return 0;
}

/* Reads the comment's keys: the layout, energy= and name=. */
static int parse_comment(const char *comment, const char *label, long line, kv_list *kv,
                         column_layout *L, xyz_frame *fr, dm_error *err)
{
    int unterminated;
    if (parse_key_values(comment, kv, &unterminated) != 0)
        return dm_fail(err, "%s:%ld: out of memory", label, line);
    if (unterminated) {
        /* A free-text comment ("Jane's molecule") is fine in plain XYZ, but
         * an extended XYZ header must be well formed. */
        if (strstr(comment, "Properties=") || strstr(comment, "properties="))
            return dm_fail(err,
                           "%s:%ld: comment line has an unterminated quote or bracket; "
                           "expected key=value pairs with closed \"...\"",
                           label, line);
        kv_list_free(kv);
    }

    const char *props = kv_find(kv, "Properties");
    if (!props) props = kv_find(kv, "properties");
    if (props) {
        if (parse_properties(props, label, line, L, err)) return -1;
    } else {
        plain_layout(L);
    }

    const char *energy = kv_find(kv, "energy");
    if (energy) {
        char *end;
        double e = strtod(energy, &end);
        if (end == energy || *end != '\0' || !isfinite(e))
            return dm_fail(err, "%s:%ld: energy= expected a finite number, found '%s'", label,
                           line, energy);
        fr->has_energy = 1;
        fr->energy = e;
    }
    const char *name = kv_find(kv, "name");
    if (name && !(fr->name = strdup(name)))
        return dm_fail(err, "%s:%ld: out of memory", label, line);
    return 0;
}

/* Reads the atom lines of a frame whose count and comment were read. */
static int read_atoms(line_reader *r, const char *label, const column_layout *L, xyz_frame *fr,
                      dm_error *err)
{
    char **tokens = malloc((size_t)L->n_columns * sizeof *tokens);
    if (!tokens) return dm_fail(err, "%s:%ld: out of memory", label, r->number);
    size_t cap = 0;
    int status = 0;
    for (int i = 0; i < fr->n_atoms && status == 0; i++) {
        int got = next_line(r);
        if (got < 0) {
            status = dm_fail(err, "%s:%ld: read error (%s)", label, r->number + 1,
                             strerror(errno));
        } else if (got == 0) {
            status = dm_fail(err,
                             "%s:%d: file ends early: the frame declares %d atoms, expected %d "
                             "atom lines after the comment line, found %d",
                             label, fr->line, fr->n_atoms, fr->n_atoms, i);
        } else {
            if ((size_t)i == cap) {
                cap = cap ? 2 * cap : 256;
                if (cap > (size_t)fr->n_atoms) cap = (size_t)fr->n_atoms;
                if (frame_reserve(fr, L, cap) != 0) {
                    status = dm_fail(err, "%s:%ld: out of memory", label, r->number);
                    break;
                }
            }
            atom_line a = {label, r->number, i + 1, fr->n_atoms};
            status = parse_atom_line(&a, r->buf, L, tokens, fr, err);
        }
    }
    free(tokens);
    return status;
}

/* Reads one frame; *got is 0 when only blank lines were left. */
static int read_frame(line_reader *r, const char *label, xyz_frame *fr, int *got, dm_error *err)
{
    *got = 0;
    int status;
    while ((status = next_line(r)) == 1 && is_blank_line(r->buf)) {
    }
    if (status < 0)
        return dm_fail(err, "%s:%ld: read error (%s)", label, r->number + 1, strerror(errno));
    if (status == 0) return 0;
    *got = 1;

    fr->line = (int)r->number;
    if (parse_atom_count(r->buf, label, r->number, &fr->n_atoms, err)) return -1;

    status = next_line(r);
    if (status < 0)
        return dm_fail(err, "%s:%ld: read error (%s)", label, r->number + 1, strerror(errno));
    if (status == 0)
        return dm_fail(err,
                       "%s:%d: file ends early: expected a comment line and %d atom lines "
                       "after the atom count",
                       label, fr->line, fr->n_atoms);
    if (!(fr->comment = strdup(r->buf)))
        return dm_fail(err, "%s:%ld: out of memory", label, r->number);

    kv_list kv = {0};
    column_layout layout;
    status = parse_comment(fr->comment, label, r->number, &kv, &layout, fr, err);
    if (status == 0) status = read_atoms(r, label, &layout, fr, err);
    kv_list_free(&kv); /* layout.description points into kv: used up now */
    return status;
}

static int append_frame(xyz_trajectory *t, int *cap, const xyz_frame *fr)
{
    if (t->n_frames == *cap) {
        int new_cap = *cap ? 2 * *cap : 4;
        xyz_frame *frames = realloc(t->frames, (size_t)new_cap * sizeof *frames);
        if (!frames) return -1;
        t->frames = frames;
        *cap = new_cap;
    }
    t->frames[t->n_frames++] = *fr;
    return 0;
}

int xyz_read_stream(FILE *f, const char *label, xyz_trajectory *out, dm_error *err)
{
    out->n_frames = 0;
    out->frames = NULL;
    if (!label) label = "(stream)";
    line_reader r = {f, NULL, 0, 0};
    int cap = 0, status = 0;
    for (;;) {
        xyz_frame fr;
        memset(&fr, 0, sizeof fr);
        int got;
        status = read_frame(&r, label, &fr, &got, err);
        if (status != 0 || !got) {
            frame_free(&fr);
            break;
        }
        if (append_frame(out, &cap, &fr) != 0) {
            frame_free(&fr);
            status = dm_fail(err, "%s:%ld: out of memory", label, r.number);
            break;
        }
    }
    free(r.buf);
    if (status == 0 && out->n_frames == 0)
        status = dm_fail(err, "%s: no frames found (expected an atom count line)", label);
    if (status != 0) xyz_trajectory_free(out);
    return status;
}

int xyz_read_file(const char *path, xyz_trajectory *out, dm_error *err)
{
    out->n_frames = 0;
    out->frames = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return dm_fail(err, "%s: cannot open for reading (%s)", path, strerror(errno));
    int status = xyz_read_stream(f, path, out, err);
    fclose(f);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Writing. */

/* Writes a comment value, quoted with "..." (and \" \\ escaped) when it holds
 * anything the key=value grammar treats specially. */
static int write_value(FILE *f, const char *v)
{
    int needs_quotes = (*v == '\0');
    for (const char *p = v; *p; p++)
        if (is_blank_char(*p) || strchr("\"'{}[]=\\", *p)) needs_quotes = 1;
    if (!needs_quotes) return fputs(v, f) < 0 ? -1 : 0;
    if (fputc('"', f) == EOF) return -1;
    for (const char *p = v; *p; p++) {
        if ((*p == '"' || *p == '\\') && fputc('\\', f) == EOF) return -1;
        if (fputc(*p, f) == EOF) return -1;
    }
    return fputc('"', f) == EOF ? -1 : 0;
}

static int write_header(FILE *f, int n_atoms, int has_forces, int has_energy, double energy,
                        const char *name)
{
    if (fprintf(f, "%d\nProperties=species:S:1:pos:R:3%s", n_atoms,
                has_forces ? ":forces:R:3" : "") < 0)
        return -1;
    if (name && (fputs(" name=", f) < 0 || write_value(f, name) != 0)) return -1;
    if (has_energy && fprintf(f, " energy=%.17g", energy) < 0) return -1;
    return fputs(" pbc=\"F F F\"\n", f) < 0 ? -1 : 0;
}

/* Atom line: symbol, x y z in Å and fx fy fz in eV/Å with 10 decimals (an
 * absolute rounding error of at most 5e-11). */
static int write_atom(FILE *f, const char *symbol, const double *x, const double *fx)
{
    if (fprintf(f, "%-2s %17.10f %17.10f %17.10f", symbol, x[0], x[1], x[2]) < 0) return -1;
    if (fx && fprintf(f, " %17.10f %17.10f %17.10f", fx[0], fx[1], fx[2]) < 0) return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

int xyz_write_frame(FILE *f, const char *label, int n_atoms, const int *species,
                    const double *positions, const double *forces, int has_energy,
                    double energy, const char *name, dm_error *err)
{
    if (!label) label = "(stream)";
    if (n_atoms <= 0)
        return dm_fail(err, "%s: cannot write a frame of %d atoms (expected at least 1)", label,
                       n_atoms);
    for (int i = 0; i < n_atoms; i++)
        if (!element_symbol(species[i]))
            return dm_fail(err, "%s: atom %d has atomic number %d, expected 1..118", label,
                           i + 1, species[i]);
    if (name && strpbrk(name, "\r\n"))
        return dm_fail(err, "%s: frame name contains a line break (expected a single line)",
                       label);

    errno = 0;
    int status = write_header(f, n_atoms, forces != NULL, has_energy, energy, name);
    for (int i = 0; i < n_atoms && status == 0; i++)
        status = write_atom(f, element_symbol(species[i]), &positions[3 * i],
                            forces ? &forces[3 * i] : NULL);
    if (status == 0 && (fflush(f) != 0 || ferror(f))) status = -1;
    if (status != 0)
        return dm_fail(err, "%s: write error (%s)", label,
                       errno ? strerror(errno) : "stream error");
    return 0;
}
