/* test_xyz.c — element table, XYZ / extended XYZ reading and writing.
 *
 * Most tests build small files in memory (tmpfile) or in a mkdtemp folder;
 * the "shared data" suite reads every .xyz file in shared/molecules and the
 * .extxyz files in shared/reference, and is left out (with a note) when
 * shared/ is absent, so the rest still runs. */
#define _POSIX_C_SOURCE 200809L

#include "io/xyz.h"
#include "test_support.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Helpers. */

/* Parses `text` as a stream labelled "mem.xyz" (or `label`). */
static int read_text_labelled(const char *text, const char *label, xyz_trajectory *t,
                              dm_error *err)
{
    FILE *f = tmpfile();
    if (!f) {
        dm_fail(err, "tmpfile failed");
        t->n_frames = 0;
        t->frames = NULL;
        return -1;
    }
    fputs(text, f);
    rewind(f);
    int status = xyz_read_stream(f, label, t, err);
    fclose(f);
    return status;
}

static int read_text(const char *text, xyz_trajectory *t, dm_error *err)
{
    return read_text_labelled(text, "mem.xyz", t, err);
}

/* Reads `text` (labelled "bad.xyz"), which must fail with a message that
 * starts with `where` ("bad.xyz:LINE:") and contains `w1` and `w2` (either
 * may be NULL), and must leave the trajectory empty. */
static int fails_with(const char *text, const char *where, const char *w1, const char *w2)
{
    xyz_trajectory t = {5, (xyz_frame *)&t}; /* garbage that must be reset */
    dm_error err = {{0}};
    int status = read_text_labelled(text, "bad.xyz", &t, &err);
    int ok = status == -1 && t.n_frames == 0 && t.frames == NULL &&
             strncmp(err.msg, where, strlen(where)) == 0 && (!w1 || strstr(err.msg, w1)) &&
             (!w2 || strstr(err.msg, w2));
    if (!ok) {
        printf("\n    expected failure at '%s' mentioning '%s' and '%s'; got status %d, "
               "message: %s\n",
               where, w1 ? w1 : "", w2 ? w2 : "", status, err.msg);
        if (status == 0) xyz_trajectory_free(&t);
    }
    return ok;
}

/* A fresh folder under /tmp, removed with remove_temp_dir. */
static char *make_temp_dir(void)
{
    char *dir = strdup("/tmp/test_xyz_XXXXXX");
    if (dir && !mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

static void remove_temp_dir(char *dir, const char *const *names)
{
    char path[512];
    for (int i = 0; names[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    free(dir);
}

/* Counts atoms of element z. */
static int count_element(const xyz_frame *fr, int z)
{
    int n = 0;
    for (int i = 0; i < fr->n_atoms; i++) n += fr->species[i] == z;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Elements. */

static void test_element_symbols_round_trip(void)
{
    for (int z = 1; z <= 118; z++) {
        const char *s = element_symbol(z);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        size_t len = strlen(s);
        CU_ASSERT(len == 1 || len == 2);
        CU_ASSERT(s[0] >= 'A' && s[0] <= 'Z');
        if (len == 2) CU_ASSERT(s[1] >= 'a' && s[1] <= 'z');
        CU_ASSERT_EQUAL(element_number(s), z);
    }
    CU_ASSERT_PTR_NULL(element_symbol(0));
    CU_ASSERT_PTR_NULL(element_symbol(119));
    CU_ASSERT_PTR_NULL(element_symbol(-1));
}

static void test_element_numbers_known(void)
{
    /* Periodic table positions (independent of the table's order). */
    static const struct { const char *s; int z; } known[] = {
        {"H", 1},   {"He", 2},  {"Li", 3},  {"C", 6},   {"N", 7},   {"O", 8},
        {"F", 9},   {"Ne", 10}, {"Na", 11}, {"S", 16},  {"Cl", 17}, {"Ar", 18},
        {"K", 19},  {"Fe", 26}, {"Br", 35}, {"Kr", 36}, {"Ag", 47}, {"I", 53},
        {"Xe", 54}, {"Gd", 64}, {"Au", 79}, {"Pb", 82}, {"Rn", 86}, {"U", 92},
        {"Cf", 98}, {"Lr", 103}, {"Rf", 104}, {"Cn", 112}, {"Ts", 117}, {"Og", 118},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        CU_ASSERT_EQUAL(element_number(known[i].s), known[i].z);
        CU_ASSERT_STRING_EQUAL(element_symbol(known[i].z), known[i].s);
    }
    /* Case-insensitive matches. */
    CU_ASSERT_EQUAL(element_number("cl"), 17);
    CU_ASSERT_EQUAL(element_number("CL"), 17);
    CU_ASSERT_EQUAL(element_number("cL"), 17);
    CU_ASSERT_EQUAL(element_number("c"), 6);
    CU_ASSERT_EQUAL(element_number("OG"), 118);
    /* Unknown. */
    CU_ASSERT_EQUAL(element_number("X"), 0);
    CU_ASSERT_EQUAL(element_number("Xx"), 0);
    CU_ASSERT_EQUAL(element_number(""), 0);
    CU_ASSERT_EQUAL(element_number("C1"), 0);
    CU_ASSERT_EQUAL(element_number(" C"), 0);
    CU_ASSERT_EQUAL(element_number("Hee"), 0);
    CU_ASSERT_EQUAL(element_number("6"), 0);
    CU_ASSERT_EQUAL(element_number(NULL), 0);
}

static void test_element_masses(void)
{
    /* IUPAC standard atomic weights, abridged / conventional values, with the
     * precision they are quoted at; Rn: mass number of the longest-lived
     * isotope. */
    static const struct { int z; double mass, tol; } iupac[] = {
        {1, 1.008, 5e-4},    {2, 4.0026, 5e-5},   {6, 12.011, 5e-4},  {7, 14.007, 5e-4},
        {8, 15.999, 5e-4},   {9, 18.998, 5e-4},   {11, 22.990, 5e-4}, {15, 30.974, 5e-4},
        {16, 32.06, 5e-3},   {17, 35.45, 5e-3},   {19, 39.098, 5e-4}, {20, 40.078, 5e-4},
        {26, 55.845, 5e-4},  {29, 63.546, 5e-4},  {35, 79.904, 5e-4}, {47, 107.87, 5e-3},
        {53, 126.90, 5e-3},  {54, 131.29, 5e-3},  {79, 196.97, 5e-3}, {80, 200.59, 5e-3},
        {82, 207.2, 5e-2},   {86, 222.0, 0.5},    {92, 238.03, 5e-3}, {118, 294.0, 0.5},
    };
    for (size_t i = 0; i < sizeof iupac / sizeof iupac[0]; i++)
        CU_ASSERT_DOUBLE_EQUAL(element_mass(iupac[i].z), iupac[i].mass, iupac[i].tol);
    /* Every element: between Z and 2.7 Z amu (H is 1.008 Z, Pu about 2.6 Z). */
    for (int z = 1; z <= 118; z++) {
        double m = element_mass(z);
        CU_ASSERT(m >= z && m <= 2.7 * z);
    }
    CU_ASSERT_EQUAL(element_mass(0), 0.0);
    CU_ASSERT_EQUAL(element_mass(119), 0.0);
    CU_ASSERT_EQUAL(element_mass(-3), 0.0);
}

/* ------------------------------------------------------------------------ */
/* Reading. */

static void test_read_plain_xyz(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    const char *text = "3\n"
                       "water molecule\n"
                       "O 0.0 0.0 0.39753933\n"
                       "H\t0.0   0.763239 -0.19876967 extra 1 2\n"
                       "  H 0.0 -0.763239 -1.9876967e-1\n";
    CU_ASSERT_EQUAL_FATAL(read_text(text, &t, &err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n_frames, 1);
    const xyz_frame *fr = &t.frames[0];
    CU_ASSERT_EQUAL(fr->n_atoms, 3);
    CU_ASSERT_EQUAL(fr->line, 1);
    CU_ASSERT_EQUAL(fr->species[0], 8);
    CU_ASSERT_EQUAL(fr->species[1], 1);
    CU_ASSERT_EQUAL(fr->species[2], 1);
    const double want[9] = {0.0, 0.0, 0.39753933, 0.0, 0.763239, -0.19876967,
                            0.0, -0.763239, -0.19876967};
    for (int k = 0; k < 9; k++) CU_ASSERT_EQUAL(fr->positions[k], want[k]);
    CU_ASSERT_PTR_NULL(fr->forces);
    CU_ASSERT_PTR_NULL(fr->velocities);
    CU_ASSERT_FALSE(fr->has_energy);
    CU_ASSERT_PTR_NULL(fr->name);
    CU_ASSERT_STRING_EQUAL(fr->comment, "water molecule");
    xyz_trajectory_free(&t);
    CU_ASSERT_EQUAL(t.n_frames, 0);
    CU_ASSERT_PTR_NULL(t.frames);
}

static void test_read_extended_all_fields(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    const char *text =
        "2\n"
        "Properties=species:S:1:pos:R:3:vel:R:3:forces:R:3 energy=-1.5e1 name=water_pair "
        "pbc=\"F F F\" Lattice=\"10 0 0 0 10 0 0 0 10\" flag time=0.5\n"
        "O 0.1 0.2 0.3 1.0 2.0 3.0 -0.5 0.25 0.125\n"
        "H -1.1 -1.2 -1.3 -4.0 -5.0 -6.0 7.5 8.5 9.5\n";
    CU_ASSERT_EQUAL_FATAL(read_text(text, &t, &err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n_frames, 1);
    const xyz_frame *fr = &t.frames[0];
    CU_ASSERT_EQUAL(fr->n_atoms, 2);
    CU_ASSERT_TRUE(fr->has_energy);
    CU_ASSERT_EQUAL(fr->energy, -15.0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fr->name);
    CU_ASSERT_STRING_EQUAL(fr->name, "water_pair");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fr->forces);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fr->velocities);
    const double pos[6] = {0.1, 0.2, 0.3, -1.1, -1.2, -1.3};
    const double vel[6] = {1.0, 2.0, 3.0, -4.0, -5.0, -6.0};
    const double frc[6] = {-0.5, 0.25, 0.125, 7.5, 8.5, 9.5};
    for (int k = 0; k < 6; k++) {
        CU_ASSERT_EQUAL(fr->positions[k], pos[k]);
        CU_ASSERT_EQUAL(fr->velocities[k], vel[k]);
        CU_ASSERT_EQUAL(fr->forces[k], frc[k]);
    }
    CU_ASSERT_EQUAL(fr->species[0], 8);
    CU_ASSERT_EQUAL(fr->species[1], 1);
    xyz_trajectory_free(&t);
}

static void test_read_column_order_and_unused_columns(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    const char *text =
        "2\n"
        "Properties=masses:R:1:forces:R:3:tags:I:1:species:S:1:pos:R:3:fixed:L:1:label:S:2\n"
        "15.999 0.1 0.2 0.3 7 O 1.0 2.0 3.0 T a b\n"
        "1.008 -0.1 -0.2 -0.3 8 H 4.0 5.0 6.0 F c d\n";
    CU_ASSERT_EQUAL_FATAL(read_text(text, &t, &err), 0);
    const xyz_frame *fr = &t.frames[0];
    CU_ASSERT_EQUAL(fr->species[0], 8);
    CU_ASSERT_EQUAL(fr->species[1], 1);
    const double pos[6] = {1, 2, 3, 4, 5, 6};
    const double frc[6] = {0.1, 0.2, 0.3, -0.1, -0.2, -0.3};
    CU_ASSERT_PTR_NOT_NULL_FATAL(fr->forces);
    for (int k = 0; k < 6; k++) {
        CU_ASSERT_EQUAL(fr->positions[k], pos[k]);
        CU_ASSERT_EQUAL(fr->forces[k], frc[k]);
    }
    CU_ASSERT_PTR_NULL(fr->velocities);
    CU_ASSERT_FALSE(fr->has_energy);
    xyz_trajectory_free(&t);
}

static void test_read_multiple_frames(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    const char *text = "1\n"                                   /* line 1 */
                       "Properties=species:S:1:pos:R:3 energy=-1\n"
                       "H 0 0 0\n"
                       "2\n"                                   /* line 4 */
                       "plain comment\n"
                       "C 1 1 1\n"
                       "O 2 2 2\n"
                       "  3  \n"                               /* line 8 */
                       "Properties=species:S:1:pos:R:3:forces:R:3 energy=-3.25 name=third\n"
                       "N 0 0 0 1 0 0\n"
                       "N 0 0 1.1 -1 0 0\n"
                       "H 0 0 2 0 0 0\n"
                       "\n"
                       "   \n"
                       "\n";
    CU_ASSERT_EQUAL_FATAL(read_text(text, &t, &err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n_frames, 3);
    CU_ASSERT_EQUAL(t.frames[0].line, 1);
    CU_ASSERT_EQUAL(t.frames[1].line, 4);
    CU_ASSERT_EQUAL(t.frames[2].line, 8);
    CU_ASSERT_EQUAL(t.frames[0].n_atoms, 1);
    CU_ASSERT_EQUAL(t.frames[1].n_atoms, 2);
    CU_ASSERT_EQUAL(t.frames[2].n_atoms, 3);
    CU_ASSERT_TRUE(t.frames[0].has_energy);
    CU_ASSERT_EQUAL(t.frames[0].energy, -1.0);
    CU_ASSERT_FALSE(t.frames[1].has_energy);
    CU_ASSERT_PTR_NULL(t.frames[1].forces);
    CU_ASSERT_EQUAL(t.frames[1].positions[5], 2.0);
    CU_ASSERT_EQUAL(t.frames[2].energy, -3.25);
    CU_ASSERT_STRING_EQUAL(t.frames[2].name, "third");
    CU_ASSERT_EQUAL(t.frames[2].species[2], 1);
    CU_ASSERT_EQUAL(t.frames[2].forces[3], -1.0);
    CU_ASSERT_EQUAL(t.frames[2].positions[5], 1.1);
    xyz_trajectory_free(&t);
}

static void test_read_leading_blank_lines(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(read_text("\n\n1\n\nHe 0 0 0\n\n", &t, &err), 0);
    CU_ASSERT_EQUAL(t.n_frames, 1);
    CU_ASSERT_EQUAL(t.frames[0].line, 3);
    CU_ASSERT_EQUAL(t.frames[0].species[0], 2);
    CU_ASSERT_STRING_EQUAL(t.frames[0].comment, "");
    xyz_trajectory_free(&t);
}

static void test_read_quoted_values(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    const char *text = "1\n"
                       "note=\"a = b, c\" name=\"two words here\" Properties=\"species:S:1:pos:R:3\" "
                       "energy = -2.5 vec={1 2 3} arr=[4, 5] is_test single='x y'\n"
                       "H 0 0 0\n"
                       "1\n"
                       "name=\"say \\\"hi\\\" \\\\ done\" energy=\"7\"\n"
                       "H 0 0 0\n"
                       "1\n"
                       "name='single quoted' other=\"\" energy=1e-3\n"
                       "H 0 0 0\n";
    CU_ASSERT_EQUAL_FATAL(read_text(text, &t, &err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n_frames, 3);
    CU_ASSERT_STRING_EQUAL(t.frames[0].name, "two words here");
    CU_ASSERT_TRUE(t.frames[0].has_energy);
    CU_ASSERT_EQUAL(t.frames[0].energy, -2.5);
    CU_ASSERT_STRING_EQUAL(t.frames[1].name, "say \"hi\" \\ done");
    CU_ASSERT_EQUAL(t.frames[1].energy, 7.0);
    CU_ASSERT_STRING_EQUAL(t.frames[2].name, "single quoted");
    CU_ASSERT_EQUAL(t.frames[2].energy, 1e-3);
    xyz_trajectory_free(&t);
}

static void test_read_crlf(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    const char *text = "2\r\n"
                       "Properties=species:S:1:pos:R:3:forces:R:3 energy=-3.0 name=crlf\r\n"
                       "C 0 0 0 0.1 0.2 0.3\r\n"
                       "H 0 0 1.09 -0.1 -0.2 -0.3\r\n"
                       "1\r\n"
                       "\r\n"
                       "Cl 1 2 3\r\n"
                       "\r\n";
    CU_ASSERT_EQUAL_FATAL(read_text(text, &t, &err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n_frames, 2);
    CU_ASSERT_STRING_EQUAL(t.frames[0].name, "crlf");
    CU_ASSERT_PTR_NULL(strchr(t.frames[0].comment, '\r'));
    CU_ASSERT_EQUAL(t.frames[0].energy, -3.0);
    CU_ASSERT_EQUAL(t.frames[0].forces[5], -0.3);
    CU_ASSERT_EQUAL(t.frames[0].positions[5], 1.09);
    CU_ASSERT_EQUAL(t.frames[1].species[0], 17);
    CU_ASSERT_EQUAL(t.frames[1].positions[2], 3.0);
    CU_ASSERT_EQUAL(t.frames[1].line, 5);
    xyz_trajectory_free(&t);
}

static void test_read_atomic_number_species(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    const char *text = "3\n\n8 0 0 0\n1 0 0 1\n118 0 0 2\n"
                       "2\nProperties=Z:I:1:pos:R:3\n6 0 0 0\n17 1 1 1\n"
                       "1\nProperties=pos:R:3:numbers:I:1\n0 0 0 26\n"
                       "3\nProperties=species:S:1:pos:R:3\ncl 0 0 0\nCL 1 0 0\nfe 2 0 0\n";
    CU_ASSERT_EQUAL_FATAL(read_text(text, &t, &err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n_frames, 4);
    CU_ASSERT_EQUAL(t.frames[0].species[0], 8);
    CU_ASSERT_EQUAL(t.frames[0].species[1], 1);
    CU_ASSERT_EQUAL(t.frames[0].species[2], 118);
    CU_ASSERT_EQUAL(t.frames[1].species[0], 6);
    CU_ASSERT_EQUAL(t.frames[1].species[1], 17);
    CU_ASSERT_EQUAL(t.frames[1].positions[3], 1.0);
    CU_ASSERT_EQUAL(t.frames[2].species[0], 26);
    CU_ASSERT_EQUAL(t.frames[2].positions[2], 0.0);
    CU_ASSERT_EQUAL(t.frames[3].species[0], 17);
    CU_ASSERT_EQUAL(t.frames[3].species[1], 17);
    CU_ASSERT_EQUAL(t.frames[3].species[2], 26);
    xyz_trajectory_free(&t);
}

static void test_read_key_variants(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    const char *text = "1\nproperties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 1 2 3\n"
                       "1\nProperties=species:S:1:pos:R:3:force:R:3\nH 0 0 0 4 5 6\n"
                       "1\nProperties=species:S:1:pos:R:3:velocities:R:3\nH 0 0 0 7 8 9\n";
    CU_ASSERT_EQUAL_FATAL(read_text(text, &t, &err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n_frames, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t.frames[0].forces);
    CU_ASSERT_EQUAL(t.frames[0].forces[2], 3.0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t.frames[1].forces);
    CU_ASSERT_EQUAL(t.frames[1].forces[0], 4.0);
    CU_ASSERT_PTR_NULL(t.frames[2].forces);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t.frames[2].velocities);
    CU_ASSERT_EQUAL(t.frames[2].velocities[1], 8.0);
    xyz_trajectory_free(&t);
}

static void test_read_free_text_comment(void)
{
    /* An apostrophe opens a quote that never closes: without Properties the
     * line is a free-text comment and its "keys" are ignored. */
    xyz_trajectory t;
    dm_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(read_text("2\nJane's water, energy=-1\nO 0 0 0\nH 0 0 1\n", &t, &err),
                          0);
    CU_ASSERT_EQUAL(t.frames[0].n_atoms, 2);
    CU_ASSERT_FALSE(t.frames[0].has_energy);
    CU_ASSERT_STRING_EQUAL(t.frames[0].comment, "Jane's water, energy=-1");
    xyz_trajectory_free(&t);
}

static void test_read_long_comment_line(void)
{
    size_t filler = 20000;
    const char *head = "1\nProperties=species:S:1:pos:R:3 info=\"";
    const char *tail = "\" energy=-7.25 name=long\nH 1 2 3\n";
    size_t len = strlen(head) + filler + strlen(tail) + 1;
    char *text = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    strcpy(text, head);
    size_t at = strlen(head);
    for (size_t i = 0; i < filler; i++) text[at + i] = (char)('a' + i % 26);
    strcpy(text + at + filler, tail);

    xyz_trajectory t;
    dm_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(read_text(text, &t, &err), 0);
    CU_ASSERT_TRUE(t.frames[0].has_energy);
    CU_ASSERT_EQUAL(t.frames[0].energy, -7.25);
    CU_ASSERT_STRING_EQUAL(t.frames[0].name, "long");
    CU_ASSERT_EQUAL(strlen(t.frames[0].comment), strlen(text) - 2 - strlen("H 1 2 3\n") - 1);
    CU_ASSERT_EQUAL(t.frames[0].positions[2], 3.0);
    xyz_trajectory_free(&t);
    free(text);
}

/* A frame far larger than the reader's first allocation, with values that
 * need all 17 significant digits. */
static void test_read_large_frame(void)
{
    enum { N = 3000 };
    test_rng rng = {12345};
    static double pos[3 * N], frc[3 * N];
    static const int elements[5] = {1, 6, 7, 8, 16};
    int species[N];
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "%d\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1\n", N);
    for (int i = 0; i < N; i++) {
        species[i] = elements[(int)(5 * test_uniform(&rng))];
        for (int k = 0; k < 3; k++) {
            pos[3 * i + k] = 30.0 * test_normal(&rng);
            frc[3 * i + k] = 2.0 * test_normal(&rng);
        }
        fprintf(f, "%s %.17g %.17g %.17g %.17g %.17g %.17g\n", element_symbol(species[i]),
                pos[3 * i], pos[3 * i + 1], pos[3 * i + 2], frc[3 * i], frc[3 * i + 1],
                frc[3 * i + 2]);
    }
    rewind(f);
    xyz_trajectory t;
    dm_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(xyz_read_stream(f, "large.xyz", &t, &err), 0);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(t.frames[0].n_atoms, N);
    int same_species = 1, same_values = 1;
    for (int i = 0; i < N; i++) {
        same_species &= t.frames[0].species[i] == species[i];
        for (int k = 0; k < 3; k++) {
            same_values &= t.frames[0].positions[3 * i + k] == pos[3 * i + k];
            same_values &= t.frames[0].forces[3 * i + k] == frc[3 * i + k];
        }
    }
    CU_ASSERT_TRUE(same_species);
    CU_ASSERT_TRUE(same_values);
    xyz_trajectory_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Reading errors: each names bad.xyz, the line, and what was expected. */

static void test_error_count_line(void)
{
    CU_ASSERT(fails_with("abc\n\nH 0 0 0\n", "bad.xyz:1:", "number of atoms", "'abc'"));
    CU_ASSERT(fails_with("0\n\n", "bad.xyz:1:", "positive integer", "'0'"));
    CU_ASSERT(fails_with("-2\n\nH 0 0 0\n", "bad.xyz:1:", "positive integer", NULL));
    CU_ASSERT(fails_with("2.5\n\nH 0 0 0\n", "bad.xyz:1:", "positive integer", NULL));
    CU_ASSERT(fails_with("3 atoms\n\nH 0 0 0\n", "bad.xyz:1:", "number of atoms", NULL));
    CU_ASSERT(fails_with("99999999999999999999\n\n", "bad.xyz:1:", "number of atoms", NULL));
    /* Second frame's count line. */
    CU_ASSERT(fails_with("1\n\nH 0 0 0\nX\n\nH 0 0 0\n", "bad.xyz:4:", "number of atoms",
                         "'X'"));
    /* More atom lines than declared: the extra one is read as a count line. */
    CU_ASSERT(fails_with("1\n\nH 0 0 0\nH 0 0 1\n", "bad.xyz:4:", "number of atoms",
                         "H 0 0 1"));
}

static void test_error_file_ends_early(void)
{
    CU_ASSERT(fails_with("3\ncomment\nH 0 0 0\nH 0 0 1\n", "bad.xyz:1:", "expected 3 atom lines",
                         "found 2"));
    CU_ASSERT(fails_with("3\ncomment\n", "bad.xyz:1:", "expected 3 atom lines", "found 0"));
    CU_ASSERT(fails_with("3\n", "bad.xyz:1:", "ends early", "comment line"));
    CU_ASSERT(fails_with("1\n\nH 0 0 0\n\n2\n\nH 0 0 0\n", "bad.xyz:5:",
                         "expected 2 atom lines", "found 1"));
    /* Without a final newline. */
    CU_ASSERT(fails_with("2\n\nH 0 0 0", "bad.xyz:1:", "expected 2 atom lines", "found 1"));
}

static void test_error_columns(void)
{
    CU_ASSERT(fails_with("2\n\nH 0 0 0\nH 0 0\n", "bad.xyz:4:", "atom 2 of 2",
                         "expected at least 4 columns (species x y z), found 3"));
    CU_ASSERT(fails_with("2\n\nH 0 0 0\n\n", "bad.xyz:4:", "expected at least 4 columns",
                         "found 0"));
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 1 2\n",
                         "bad.xyz:3:", "expected 7 columns", "found 6"));
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 1 2 3 4\n",
                         "bad.xyz:3:", "expected 7 columns", "found 8"));
}

static void test_error_numbers(void)
{
    CU_ASSERT(fails_with("1\n\nH 0 abc 0\n", "bad.xyz:3:", "pos y", "expected a number, found 'abc'"));
    CU_ASSERT(fails_with("1\n\nH 0 0 1.0.0\n", "bad.xyz:3:", "pos z", "expected a number"));
    CU_ASSERT(fails_with("2\n\nH 0 0 0\nH 1,5 0 0\n", "bad.xyz:4:", "pos x", "'1,5'"));
    CU_ASSERT(fails_with("1\n\nH nan 0 0\n", "bad.xyz:3:", "pos x", "finite"));
    CU_ASSERT(fails_with("1\n\nH 0 inf 0\n", "bad.xyz:3:", "pos y", "finite"));
    CU_ASSERT(fails_with("1\n\nH 0 0 1e999\n", "bad.xyz:3:", "pos z", "finite"));
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 0 0 x\n",
                         "bad.xyz:3:", "forces z", "'x'"));
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R:3:force:R:3\nH 0 0 0 -inf 0 0\n",
                         "bad.xyz:3:", "force x", "finite"));
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R:3:vel:R:3\nH 0 0 0 0 NaN 0\n",
                         "bad.xyz:3:", "vel y", "finite"));
}

static void test_error_species(void)
{
    CU_ASSERT(fails_with("2\n\nH 0 0 0\nXx 0 0 0\n", "bad.xyz:4:", "unknown element 'Xx'",
                         "atomic number"));
    CU_ASSERT(fails_with("1\n\n0 0 0 0\n", "bad.xyz:3:", "unknown element '0'", NULL));
    CU_ASSERT(fails_with("1\n\n119 0 0 0\n", "bad.xyz:3:", "unknown element '119'", NULL));
    CU_ASSERT(fails_with("1\nProperties=Z:I:1:pos:R:3\n6.5 0 0 0\n", "bad.xyz:3:", "Z",
                         "expected an atomic number"));
    CU_ASSERT(fails_with("1\nProperties=Z:I:1:pos:R:3\nC 0 0 0\n", "bad.xyz:3:", "'C'",
                         "expected an atomic number"));
}

static void test_error_properties(void)
{
    CU_ASSERT(fails_with("1\nProperties=species:S:1:forces:R:3\nH 0 0 0\n", "bad.xyz:2:",
                         "no pos:R:3", NULL));
    CU_ASSERT(fails_with("1\nProperties=pos:R:3\n0 0 0\n", "bad.xyz:2:", "species:S:1",
                         "Z:I:1"));
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R:2\nH 0 0\n", "bad.xyz:2:",
                         "expected pos:R:3", NULL));
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R:3:forces:I:3\nH 0 0 0 1 2 3\n",
                         "bad.xyz:2:", "expected forces:R:3", NULL));
    CU_ASSERT(fails_with("1\nProperties=species:S:x:pos:R:3\nH 0 0 0\n", "bad.xyz:2:",
                         "column count 'x'", "positive integer"));
    CU_ASSERT(fails_with("1\nProperties=species:S:0:pos:R:3\nH 0 0 0\n", "bad.xyz:2:",
                         "column count '0'", "positive integer"));
    CU_ASSERT(fails_with("1\nProperties=species:Q:1:pos:R:3\nH 0 0 0\n", "bad.xyz:2:",
                         "type 'Q'", "S, R, I, L"));
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R\nH 0 0 0\n", "bad.xyz:2:",
                         "triplets", NULL));
    CU_ASSERT(fails_with("1\nProperties=species::1:pos:R:3\nH 0 0 0\n", "bad.xyz:2:", "empty",
                         NULL));
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R:3 name=\"oops\nH 0 0 0\n",
                         "bad.xyz:2:", "unterminated", NULL));
    /* In a later frame. */
    CU_ASSERT(fails_with("1\n\nH 0 0 0\n1\nProperties=species:S:1\nH\n", "bad.xyz:5:", "pos",
                         NULL));
}

static void test_error_energy(void)
{
    CU_ASSERT(fails_with("1\nProperties=species:S:1:pos:R:3 energy=abc\nH 0 0 0\n",
                         "bad.xyz:2:", "energy=", "expected a finite number, found 'abc'"));
    CU_ASSERT(fails_with("1\nenergy=1.5eV\nH 0 0 0\n", "bad.xyz:2:", "energy=", "'1.5eV'"));
    CU_ASSERT(fails_with("1\nenergy=nan\nH 0 0 0\n", "bad.xyz:2:", "energy=", "finite"));
    CU_ASSERT(fails_with("1\nenergy\nH 0 0 0\n", "bad.xyz:2:", "energy=", "'T'"));
    CU_ASSERT(fails_with("1\n\nH 0 0 0\n1\nenergy=\nH 0 0 0\n", "bad.xyz:5:", "energy=",
                         "''"));
}

static void test_error_no_frames(void)
{
    CU_ASSERT(fails_with("", "bad.xyz: no frames found", NULL, NULL));
    CU_ASSERT(fails_with("\n\n   \n\r\n", "bad.xyz: no frames found", NULL, NULL));
}

static void test_error_in_large_frame_frees_everything(void)
{
    /* Fails at atom 900 of 1000, after the arrays have grown (ASan checks
     * that nothing leaks). */
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "2\n\nH 0 0 0\nH 0 0 1\n1000\nProperties=species:S:1:pos:R:3:forces:R:3\n");
    for (int i = 0; i < 1000; i++)
        fprintf(f, "%s 0 0 %d 0 0 0\n", i == 899 ? "Qq" : "C", i);
    rewind(f);
    xyz_trajectory t;
    dm_error err = {{0}};
    CU_ASSERT_EQUAL(xyz_read_stream(f, "big.xyz", &t, &err), -1);
    fclose(f);
    CU_ASSERT_EQUAL(t.n_frames, 0);
    CU_ASSERT_PTR_NULL(t.frames);
    /* Line: 4 lines of frame 1, count + comment, then atom 900. */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "big.xyz:906: atom 900: unknown element 'Qq'"));
}

static void test_error_missing_file(void)
{
    xyz_trajectory t;
    dm_error err = {{0}};
    const char *path = "/nonexistent-dir/none.xyz";
    CU_ASSERT_EQUAL(xyz_read_file(path, &t, &err), -1);
    CU_ASSERT_EQUAL(t.n_frames, 0);
    CU_ASSERT_PTR_NULL(t.frames);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot open"));
}

/* ------------------------------------------------------------------------ */
/* Writing. */

static void test_write_read_round_trip(void)
{
    enum { N = 37 };
    static const int elements[10] = {1, 6, 7, 8, 9, 16, 17, 35, 53, 92};
    test_rng rng = {2024};
    int species[N];
    double pos[3 * N], frc[3 * N];
    for (int i = 0; i < N; i++) {
        species[i] = elements[(int)(10 * test_uniform(&rng))];
        for (int k = 0; k < 3; k++) {
            pos[3 * i + k] = 8.0 * test_normal(&rng);
            frc[3 * i + k] = 3.0 * test_normal(&rng);
        }
    }
    frc[0] = 1234.56789012345678; /* large */
    frc[1] = -3.3e-12;           /* below the printed precision */
    pos[2] = -987.654321987654;
    const double energy = -1234.5678901234567 * (1.0 + test_uniform(&rng));
    const char *name = "round trip \"test\" \\ x=1 {a}";

    char *dir = make_temp_dir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/rt.xyz", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    dm_error err = {{0}};
    CU_ASSERT_EQUAL(xyz_write_frame(f, path, N, species, pos, frc, 1, energy, name, &err), 0);
    CU_ASSERT_EQUAL(xyz_write_frame(f, path, 3, species, pos, NULL, 0, 0.0, NULL, &err), 0);
    CU_ASSERT_EQUAL(xyz_write_frame(f, path, 2, species, pos, NULL, 1, -0.0, "benzene", &err), 0);
    CU_ASSERT_EQUAL(fclose(f), 0);

    /* The header lines as written. */
    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[4096];
    int header = 0, line_no = 0;
    while (fgets(line, sizeof line, f)) {
        line_no++;
        if (strncmp(line, "Properties=", 11) != 0) continue;
        header++;
        if (header == 1) {
            CU_ASSERT_EQUAL(line_no, 2);
            CU_ASSERT_EQUAL(strncmp(line, "Properties=species:S:1:pos:R:3:forces:R:3 name=\"", 48), 0);
            CU_ASSERT_PTR_NOT_NULL(strstr(line, " energy=-"));
            CU_ASSERT_PTR_NOT_NULL(strstr(line, " pbc=\"F F F\"\n"));
        } else if (header == 2) {
            CU_ASSERT_STRING_EQUAL(line, "Properties=species:S:1:pos:R:3 pbc=\"F F F\"\n");
        } else {
            CU_ASSERT_STRING_EQUAL(line, "Properties=species:S:1:pos:R:3 name=benzene "
                                         "energy=-0 pbc=\"F F F\"\n");
        }
    }
    fclose(f);
    CU_ASSERT_EQUAL(header, 3);

    xyz_trajectory t;
    CU_ASSERT_EQUAL_FATAL(xyz_read_file(path, &t, &err), 0);
    CU_ASSERT_EQUAL_FATAL(t.n_frames, 3);
    const xyz_frame *a = &t.frames[0];
    CU_ASSERT_EQUAL_FATAL(a->n_atoms, N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a->forces);
    double max_pos_err = 0.0, max_frc_err = 0.0;
    int same_species = 1;
    for (int i = 0; i < N; i++) {
        same_species &= a->species[i] == species[i];
        for (int k = 0; k < 3; k++) {
            max_pos_err = fmax(max_pos_err, fabs(a->positions[3 * i + k] - pos[3 * i + k]));
            max_frc_err = fmax(max_frc_err, fabs(a->forces[3 * i + k] - frc[3 * i + k]));
        }
    }
    CU_ASSERT_TRUE(same_species);
    CU_ASSERT(max_pos_err <= 1e-10);
    CU_ASSERT(max_frc_err <= 1e-10);
    CU_ASSERT_TRUE(a->has_energy);
    CU_ASSERT_EQUAL(a->energy, energy); /* %.17g is exact */
    CU_ASSERT_PTR_NOT_NULL_FATAL(a->name);
    CU_ASSERT_STRING_EQUAL(a->name, name);
    CU_ASSERT_PTR_NULL(a->velocities);

    const xyz_frame *b = &t.frames[1];
    CU_ASSERT_EQUAL(b->n_atoms, 3);
    CU_ASSERT_EQUAL(b->line, N + 3);
    CU_ASSERT_PTR_NULL(b->forces);
    CU_ASSERT_FALSE(b->has_energy);
    CU_ASSERT_PTR_NULL(b->name);
    CU_ASSERT_EQUAL(b->species[2], species[2]);
    CU_ASSERT(fabs(b->positions[8] - pos[8]) <= 1e-10);

    const xyz_frame *c = &t.frames[2];
    CU_ASSERT_TRUE(c->has_energy);
    CU_ASSERT_EQUAL(c->energy, 0.0);
    CU_ASSERT_STRING_EQUAL(c->name, "benzene");
    xyz_trajectory_free(&t);

    static const char *const names[] = {"rt.xyz", NULL};
    remove_temp_dir(dir, names);
}

static void test_write_errors(void)
{
    static const int species[2] = {8, 1};
    static const double pos[6] = {0, 0, 0, 0, 0, 1};
    dm_error err = {{0}};
    char *dir = make_temp_dir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/ro.xyz", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);

    /* A stream opened for reading only. */
    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(xyz_write_frame(f, "ro.xyz", 2, species, pos, NULL, 0, 0, NULL, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ro.xyz"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "write error"));
    fclose(f);

    /* A full device (buffered output fails at the flush). */
    f = fopen("/dev/full", "w");
    if (f) {
        memset(&err, 0, sizeof err);
        CU_ASSERT_EQUAL(xyz_write_frame(f, "full.xyz", 2, species, pos, NULL, 1, -1.0, "w", &err),
                        -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "full.xyz: write error"));
        fclose(f);
    } else {
        printf("\n    note: /dev/full is absent, its write-error check is left out\n");
    }

    /* Bad arguments, rejected before anything is written. */
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static const int bad_species[2] = {8, 0};
    static const int big_species[2] = {119, 1};
    CU_ASSERT_EQUAL(xyz_write_frame(f, "out.xyz", 0, species, pos, NULL, 0, 0, NULL, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "out.xyz: cannot write a frame of 0 atoms"));
    CU_ASSERT_EQUAL(xyz_write_frame(f, "out.xyz", 2, bad_species, pos, NULL, 0, 0, NULL, &err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "atom 2 has atomic number 0, expected 1..118"));
    CU_ASSERT_EQUAL(xyz_write_frame(f, "out.xyz", 2, big_species, pos, NULL, 0, 0, NULL, &err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "atom 1 has atomic number 119"));
    CU_ASSERT_EQUAL(xyz_write_frame(f, "out.xyz", 2, species, pos, NULL, 0, 0, "a\nb", &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "line break"));
    CU_ASSERT_EQUAL(ftell(f), 0L);
    fclose(f);

    static const char *const names[] = {"ro.xyz", NULL};
    remove_temp_dir(dir, names);
}

/* ------------------------------------------------------------------------ */
/* Shared data. */

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Non-blank lines in a file, counted independently of the reader. */
static int count_nonblank_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strspn(line, " \t\r\n") != strlen(line)) n++;
    fclose(f);
    return n;
}

static void test_shared_molecules_parse(void)
{
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", test_shared_path("molecules"));
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n_files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, ".xyz")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        xyz_trajectory t;
        dm_error err = {{0}};
        int status = xyz_read_file(path, &t, &err);
        if (status != 0) printf("\n    %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(status, 0);
        n_files++;
        CU_ASSERT_EQUAL(t.n_frames, 1);
        const xyz_frame *fr = &t.frames[0];
        CU_ASSERT(fr->n_atoms > 0);
        CU_ASSERT_EQUAL(count_nonblank_lines(path), fr->n_atoms + 2);
        for (int i = 0; i < fr->n_atoms; i++) CU_ASSERT_PTR_NOT_NULL(element_symbol(fr->species[i]));

        /* Molecular formulae (chemistry, not the file). */
        static const struct { const char *file; int c, h, n, o, f, cl; } formula[] = {
            {"water.xyz", 0, 2, 0, 1, 0, 0},         {"methane.xyz", 1, 4, 0, 0, 0, 0},
            {"ammonia.xyz", 0, 3, 1, 0, 0, 0},       {"benzene.xyz", 6, 6, 0, 0, 0, 0},
            {"ethanol.xyz", 2, 6, 0, 1, 0, 0},       {"aspirin.xyz", 9, 8, 0, 4, 0, 0},
            {"caffeine.xyz", 8, 10, 4, 2, 0, 0},     {"chlorobenzene.xyz", 6, 5, 0, 0, 0, 1},
            {"fluoroethanol.xyz", 2, 5, 0, 1, 1, 0}, {"adenine.xyz", 5, 5, 5, 0, 0, 0},
            {"water_cluster_10.xyz", 0, 20, 0, 10, 0, 0},
        };
        for (size_t k = 0; k < sizeof formula / sizeof formula[0]; k++) {
            if (strcmp(e->d_name, formula[k].file) != 0) continue;
            CU_ASSERT_EQUAL(count_element(fr, 6), formula[k].c);
            CU_ASSERT_EQUAL(count_element(fr, 1), formula[k].h);
            CU_ASSERT_EQUAL(count_element(fr, 7), formula[k].n);
            CU_ASSERT_EQUAL(count_element(fr, 8), formula[k].o);
            CU_ASSERT_EQUAL(count_element(fr, 9), formula[k].f);
            CU_ASSERT_EQUAL(count_element(fr, 17), formula[k].cl);
            CU_ASSERT_EQUAL(fr->n_atoms, formula[k].c + formula[k].h + formula[k].n +
                                             formula[k].o + formula[k].f + formula[k].cl);
        }
        xyz_trajectory_free(&t);
    }
    closedir(d);
    CU_ASSERT(n_files >= 28); /* shared/README.md lists 28 molecules */
}

/* Reference frames: 26 per model, each with energy, forces and a name that
 * matches a shared molecule, perturbed by 0.03 Å noise. */
static void check_reference_file(const char *relative)
{
    char path[2048];
    snprintf(path, sizeof path, "%s", test_shared_path(relative));
    xyz_trajectory t;
    dm_error err = {{0}};
    int status = xyz_read_file(path, &t, &err);
    if (status != 0) printf("\n    %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(status, 0);
    CU_ASSERT_EQUAL(t.n_frames, 26);
    for (int m = 0; m < t.n_frames; m++) {
        const xyz_frame *fr = &t.frames[m];
        CU_ASSERT_TRUE(fr->has_energy);
        CU_ASSERT(isfinite(fr->energy) && fr->energy != 0.0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fr->forces);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fr->name);

        /* The model is translation invariant, so the forces sum to zero up to
         * the 8 printed decimals (at most n * 5e-9). */
        double sum[3] = {0, 0, 0};
        for (int i = 0; i < fr->n_atoms; i++)
            for (int k = 0; k < 3; k++) sum[k] += fr->forces[3 * i + k];
        for (int k = 0; k < 3; k++) CU_ASSERT(fabs(sum[k]) <= fr->n_atoms * 5e-9 + 1e-12);

        char molecule[512];
        snprintf(molecule, sizeof molecule, "molecules/%s.xyz", fr->name);
        xyz_trajectory ref;
        status = xyz_read_file(test_shared_path(molecule), &ref, &err);
        if (status != 0) printf("\n    %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(status, 0);
        CU_ASSERT_EQUAL_FATAL(ref.frames[0].n_atoms, fr->n_atoms);
        double max_shift = 0.0;
        int same_species = 1;
        for (int i = 0; i < fr->n_atoms; i++) {
            same_species &= ref.frames[0].species[i] == fr->species[i];
            for (int k = 0; k < 3; k++)
                max_shift = fmax(max_shift, fabs(ref.frames[0].positions[3 * i + k] -
                                                 fr->positions[3 * i + k]));
        }
        CU_ASSERT_TRUE(same_species);
        CU_ASSERT(max_shift > 0.0 && max_shift < 0.25); /* 0.03 Å noise, < 8 sigma */
        xyz_trajectory_free(&ref);
    }
    xyz_trajectory_free(&t);
}

static void test_shared_reference_21k(void) { check_reference_file("reference/student_21k.extxyz"); }
static void test_shared_reference_77k(void) { check_reference_file("reference/student_77k.extxyz"); }
static void test_shared_reference_427k(void) { check_reference_file("reference/student_427k.extxyz"); }

static int shared_data_present(void)
{
    struct stat st;
    return stat(test_shared_path("molecules"), &st) == 0 && S_ISDIR(st.st_mode) &&
           stat(test_shared_path("reference"), &st) == 0 && S_ISDIR(st.st_mode);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    TEST_SUITE("elements", TEST_CASE(test_element_symbols_round_trip),
               TEST_CASE(test_element_numbers_known), TEST_CASE(test_element_masses));
    TEST_SUITE("xyz read", TEST_CASE(test_read_plain_xyz),
               TEST_CASE(test_read_extended_all_fields),
               TEST_CASE(test_read_column_order_and_unused_columns),
               TEST_CASE(test_read_multiple_frames), TEST_CASE(test_read_leading_blank_lines),
               TEST_CASE(test_read_quoted_values), TEST_CASE(test_read_crlf),
               TEST_CASE(test_read_atomic_number_species), TEST_CASE(test_read_key_variants),
               TEST_CASE(test_read_free_text_comment), TEST_CASE(test_read_long_comment_line),
               TEST_CASE(test_read_large_frame));
    TEST_SUITE("xyz read errors", TEST_CASE(test_error_count_line),
               TEST_CASE(test_error_file_ends_early), TEST_CASE(test_error_columns),
               TEST_CASE(test_error_numbers), TEST_CASE(test_error_species),
               TEST_CASE(test_error_properties), TEST_CASE(test_error_energy),
               TEST_CASE(test_error_no_frames),
               TEST_CASE(test_error_in_large_frame_frees_everything),
               TEST_CASE(test_error_missing_file));
    TEST_SUITE("xyz write", TEST_CASE(test_write_read_round_trip), TEST_CASE(test_write_errors));
    if (shared_data_present()) {
        TEST_SUITE("xyz shared data", TEST_CASE(test_shared_molecules_parse),
                   TEST_CASE(test_shared_reference_21k), TEST_CASE(test_shared_reference_77k),
                   TEST_CASE(test_shared_reference_427k));
    } else {
        printf("note: shared data not found at %s; the shared-data suite is left out "
               "(set DISTILMD_SHARED to the shared/ folder)\n",
               test_shared_dir());
    }
    return test_run_all();
}
