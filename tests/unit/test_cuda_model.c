/* test_cuda_model.c — the CUDA platform against the float64 reference.
 *
 *   - every golden molecule (shared/reference, 3 models), against the
 *     reference platform and against the golden file itself;
 *   - random batches of mixed molecules and sizes (perturbed copies of the
 *     28 shared molecules, replicas, and a random 512-atom cluster);
 *   - the neighbour lists: edge counts equal a float64 count on the host;
 *   - determinism: the same positions give bit-identical results, also after
 *     a different geometry, and graph replay equals plain launches;
 *   - a batch equals its molecules evaluated one by one;
 *   - several evaluations enqueued without host synchronisation;
 *   - neighbour overflow is reported, not silently wrong.
 * Tolerances (issue 3): energy 1e-6 relative; forces 1e-3 eV/Å max and
 * 1e-4 eV/Å RMS per molecule. Without a GPU: "skipped: no GPU (...)", exit 77. */
#include "test_support.h"

#include "core/platform.h"
#include "io/xyz.h"
#include "model/painn_model.h"
#include "model/painn_reference.h"
#ifdef DISTILMD_HAVE_CUDA
#include "cuda/painn_cuda.h"
#endif

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DISTILMD_HAVE_CUDA

#define TOL_ENERGY_REL 1e-6
#define TOL_FORCE_MAX 1e-3
#define TOL_FORCE_RMS 1e-4
/* Batch vs one by one: each molecule's arithmetic is the same sequence of
 * float32 operations in both (no sum crosses molecules; GEMM rows are
 * independent and every dot product runs k = 0..K-1 in order), so the results
 * should agree exactly; the assertion allows a few float32 ulps of the
 * values involved (energies ~1e2 eV: 1e-6 relative; forces ~1-10 eV/Å: 1e-5). */
#define TOL_BATCH_ENERGY_REL 1e-6
#define TOL_BATCH_FORCE 1e-5

static const char *MODELS[] = {"427k", "77k", "21k"};

/* ---- helpers ---- */

/* A growing list of molecules (species + positions), concatenated later. */
typedef struct mol_list {
    int n, cap;
    int *n_atoms;
    int **species;
    double **positions;
} mol_list;

static void mol_list_add(mol_list *l, int n_atoms, const int *species, const double *positions)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->n_atoms = realloc(l->n_atoms, sizeof(int) * l->cap);
        l->species = realloc(l->species, sizeof(int *) * l->cap);
        l->positions = realloc(l->positions, sizeof(double *) * l->cap);
    }
    l->n_atoms[l->n] = n_atoms;
    l->species[l->n] = malloc(sizeof(int) * n_atoms);
    l->positions[l->n] = malloc(sizeof(double) * 3 * n_atoms);
    memcpy(l->species[l->n], species, sizeof(int) * n_atoms);
    memcpy(l->positions[l->n], positions, sizeof(double) * 3 * n_atoms);
    l->n++;
}

static void mol_list_free(mol_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->species[i]);
        free(l->positions[i]);
    }
    free(l->n_atoms);
    free(l->species);
    free(l->positions);
    memset(l, 0, sizeof *l);
}

static int batch_from_list(const mol_list *l, molecule_batch *b)
{
    if (molecule_batch_alloc(b, l->n, l->n_atoms, NULL)) return -1;
    for (int i = 0; i < l->n; i++) {
        memcpy(b->species + b->offset[i], l->species[i], sizeof(int) * l->n_atoms[i]);
        memcpy(b->positions + 3 * b->offset[i], l->positions[i],
               sizeof(double) * 3 * l->n_atoms[i]);
    }
    return 0;
}

/* Every .xyz file of shared/molecules, first frame each. */
static int read_all_molecules(mol_list *out)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/molecules", test_shared_dir());
    DIR *d = opendir(dir);
    if (!d) return -1;
    char names[64][128];
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) && n < 64) {
        size_t len = strlen(ent->d_name);
        if (len > 4 && !strcmp(ent->d_name + len - 4, ".xyz"))
            snprintf(names[n++], sizeof names[0], "%s", ent->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < n; i++) {
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        xyz_trajectory t = {0};
        dm_error err = {{0}};
        if (xyz_read_file(path, &t, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return -1;
        }
        mol_list_add(out, t.frames[0].n_atoms, t.frames[0].species, t.frames[0].positions);
        xyz_trajectory_free(&t);
    }
    return n;
}

/* n atoms (H 50%, C 25%, N 10%, O 15%) placed uniformly in a sphere at about
 * 0.1 atoms/Å^3 (liquid density), no two closer than 1.0 Å. */
static void random_cluster(test_rng *rng, int n, int *species, double *x)
{
    const double R = cbrt(3.0 * n / (4.0 * M_PI * 0.1)), dmin2 = 1.0;
    for (int a = 0; a < n; a++) {
        double p = test_uniform(rng);
        species[a] = p < 0.5 ? 1 : p < 0.75 ? 6 : p < 0.85 ? 7 : 8;
        for (;;) {
            double y[3];
            for (int c = 0; c < 3; c++) y[c] = (2 * test_uniform(rng) - 1) * R;
            if (y[0] * y[0] + y[1] * y[1] + y[2] * y[2] > R * R) continue;
            int ok = 1;
            for (int b = 0; b < a && ok; b++) {
                double d2 = 0;
                for (int c = 0; c < 3; c++) d2 += (y[c] - x[3 * b + c]) * (y[c] - x[3 * b + c]);
                ok = d2 >= dmin2;
            }
            if (!ok) continue;
            memcpy(x + 3 * a, y, sizeof y);
            break;
        }
    }
}

/* Energies and forces on the CUDA platform (host arrays). */
static int cuda_compute(const painn_model *m, const molecule_batch *b, const double *x, double *E,
                        double *F)
{
    dm_error err = {{0}};
    void *impl = NULL;
    int rc = platform_cuda.model_create(&impl, m, b, &err);
    if (rc == 0) rc = platform_cuda.model_compute(impl, x, E, F, &err);
    if (impl) platform_cuda.model_destroy(impl);
    if (rc) fprintf(stderr, "cuda: %s\n", err.msg);
    return rc;
}

static int reference_compute(const painn_model *m, const molecule_batch *b, const double *x,
                             double *E, double *F)
{
    dm_error err = {{0}};
    int rc = painn_reference_compute(m, b, x, E, F, &err);
    if (rc) fprintf(stderr, "reference: %s\n", err.msg);
    return rc;
}

typedef struct agreement {
    double energy_rel, force_max, force_rms; /* worst over molecules */
    int failures;
} agreement;

/* Compares per molecule against the tolerances; prints offenders. */
static void compare(const char *what, const molecule_batch *b, const double *E, const double *F,
                    const double *E_ref, const double *F_ref, agreement *a)
{
    for (int mol = 0; mol < b->n_molecules; mol++) {
        double rel = fabs(E[mol] - E_ref[mol]) / fmax(fabs(E_ref[mol]), 1e-12);
        double fmax_ = 0, sq = 0;
        int n3 = 3 * (b->offset[mol + 1] - b->offset[mol]);
        for (int k = 3 * b->offset[mol]; k < 3 * b->offset[mol + 1]; k++) {
            double d = fabs(F[k] - F_ref[k]);
            fmax_ = fmax(fmax_, d);
            sq += d * d;
        }
        double rms = sqrt(sq / n3);
        int bad = !(rel <= TOL_ENERGY_REL) || !(fmax_ <= TOL_FORCE_MAX) || !(rms <= TOL_FORCE_RMS);
        if (bad)
            printf("\n  %s molecule %d (%d atoms): E %.10f vs %.10f (rel %.2e), max |dF| %.2e, "
                   "RMS %.2e",
                   what, mol, n3 / 3, E[mol], E_ref[mol], rel, fmax_, rms);
        a->failures += bad;
        a->energy_rel = fmax(a->energy_rel, rel);
        a->force_max = fmax(a->force_max, fmax_);
        a->force_rms = fmax(a->force_rms, rms);
    }
}

/* ---- golden molecules ---- */

static void golden_for(const char *size)
{
    painn_model m = {0};
    xyz_trajectory ref = {0};
    mol_list l = {0};
    molecule_batch b = {0};
    char rel[64];
    dm_error err = {{0}};
    snprintf(rel, sizeof rel, "reference/student_%s.extxyz", size);
    CU_ASSERT_FATAL(test_load_model(size, &m) == 0);
    if (xyz_read_file(test_shared_path(rel), &ref, &err)) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_FATAL(ref.n_frames == 26);
    for (int i = 0; i < ref.n_frames; i++)
        mol_list_add(&l, ref.frames[i].n_atoms, ref.frames[i].species, ref.frames[i].positions);
    CU_ASSERT_FATAL(batch_from_list(&l, &b) == 0);
    const int M = b.n_molecules, n3 = 3 * b.n_atoms;
    double *E = calloc(M, sizeof *E), *F = calloc(n3, sizeof *F);
    double *Er = calloc(M, sizeof *Er), *Fr = calloc(n3, sizeof *Fr);
    double *Eg = calloc(M, sizeof *Eg), *Fg = calloc(n3, sizeof *Fg);
    CU_ASSERT_FATAL(cuda_compute(&m, &b, b.positions, E, F) == 0);
    CU_ASSERT_FATAL(reference_compute(&m, &b, b.positions, Er, Fr) == 0);
    for (int i = 0; i < M; i++) {
        CU_ASSERT_FATAL(ref.frames[i].has_energy && ref.frames[i].forces);
        Eg[i] = ref.frames[i].energy;
        memcpy(Fg + 3 * b.offset[i], ref.frames[i].forces,
               sizeof(double) * 3 * ref.frames[i].n_atoms);
    }
    agreement vs_ref = {0}, vs_file = {0};
    compare("vs reference", &b, E, F, Er, Fr, &vs_ref);
    compare("vs golden file", &b, E, F, Eg, Fg, &vs_file);
    printf("\n  %s, 26 golden molecules: vs reference: E rel %.2e, F max %.2e, F RMS %.2e; "
           "vs golden file: E rel %.2e, F max %.2e, F RMS %.2e ",
           size, vs_ref.energy_rel, vs_ref.force_max, vs_ref.force_rms, vs_file.energy_rel,
           vs_file.force_max, vs_file.force_rms);
    CU_ASSERT(vs_ref.failures == 0);
    CU_ASSERT(vs_file.failures == 0);
    free(E), free(F), free(Er), free(Fr), free(Eg), free(Fg);
    molecule_batch_free(&b);
    mol_list_free(&l);
    xyz_trajectory_free(&ref);
    painn_model_free(&m);
}

static void test_golden_427k(void)
{
    golden_for(MODELS[0]);
}
static void test_golden_77k(void)
{
    golden_for(MODELS[1]);
}
static void test_golden_21k(void)
{
    golden_for(MODELS[2]);
}

/* ---- random batches ---- */

/* n_mol molecules drawn from the shared set (those of at most max_atoms
 * atoms; 0: all), each perturbed by 0.05 Å (a quarter followed by an
 * identical replica), plus a random cluster of cluster_atoms atoms (0: none),
 * in random order of insertion. */
static int random_batch_of(test_rng *rng, int n_mol, int cluster_atoms, int max_atoms,
                           molecule_batch *b)
{
    mol_list all = {0}, pick = {0};
    int n_all = read_all_molecules(&all);
    if (n_all <= 0) return -1;
    int inserted_cluster = 0;
    for (int i = 0; i < n_mol; i++) {
        if (cluster_atoms && !inserted_cluster && test_uniform(rng) < 2.0 / n_mol) {
            int *z = malloc(sizeof(int) * cluster_atoms);
            double *x = malloc(sizeof(double) * 3 * cluster_atoms);
            random_cluster(rng, cluster_atoms, z, x);
            mol_list_add(&pick, cluster_atoms, z, x);
            free(z), free(x);
            inserted_cluster = 1;
        }
        int k = (int)(test_uniform(rng) * n_all);
        while (max_atoms && all.n_atoms[k] > max_atoms) k = (int)(test_uniform(rng) * n_all);
        int n = all.n_atoms[k];
        double *x = malloc(sizeof(double) * 3 * n);
        /* always perturbed: an ideal symmetric geometry (methane) has channels
         * with |v| = 0 exactly in float64 but ~1e-8 in float32, where d|v|/dv
         * is undefined (student-model.md) and the two platforms may differ */
        for (int c = 0; c < 3 * n; c++) x[c] = all.positions[k][c] + 0.05 * test_normal(rng);
        mol_list_add(&pick, n, all.species[k], x);
        if (test_uniform(rng) < 0.25) mol_list_add(&pick, n, all.species[k], x); /* replica */
        free(x);
    }
    if (cluster_atoms && !inserted_cluster) {
        int *z = malloc(sizeof(int) * cluster_atoms);
        double *x = malloc(sizeof(double) * 3 * cluster_atoms);
        random_cluster(rng, cluster_atoms, z, x);
        mol_list_add(&pick, cluster_atoms, z, x);
        free(z), free(x);
    }
    int rc = batch_from_list(&pick, b);
    mol_list_free(&all);
    mol_list_free(&pick);
    return rc;
}

static int random_batch(test_rng *rng, int n_mol, int cluster_atoms, molecule_batch *b)
{
    return random_batch_of(rng, n_mol, cluster_atoms, 0, b);
}

static void random_batch_for(const char *size, unsigned long long seed, int n_mol, int cluster)
{
    painn_model m = {0};
    molecule_batch b = {0};
    test_rng rng = {seed};
    CU_ASSERT_FATAL(test_load_model(size, &m) == 0);
    CU_ASSERT_FATAL(random_batch(&rng, n_mol, cluster, &b) == 0);
    const int M = b.n_molecules, n3 = 3 * b.n_atoms;
    double *E = calloc(M, sizeof *E), *F = calloc(n3, sizeof *F);
    double *Er = calloc(M, sizeof *Er), *Fr = calloc(n3, sizeof *Fr);
    CU_ASSERT_FATAL(cuda_compute(&m, &b, b.positions, E, F) == 0);
    CU_ASSERT_FATAL(reference_compute(&m, &b, b.positions, Er, Fr) == 0);
    agreement a = {0};
    compare("random batch", &b, E, F, Er, Fr, &a);
    int largest = 0;
    for (int i = 0; i < M; i++)
        if (b.offset[i + 1] - b.offset[i] > largest) largest = b.offset[i + 1] - b.offset[i];
    printf("\n  %s, %d molecules (%d atoms, largest %d): E rel %.2e, F max %.2e, F RMS %.2e ", size,
           M, b.n_atoms, largest, a.energy_rel, a.force_max, a.force_rms);
    CU_ASSERT(a.failures == 0);
    free(E), free(F), free(Er), free(Fr);
    molecule_batch_free(&b);
    painn_model_free(&m);
}

static void test_random_batch_427k_with_cluster(void)
{
    random_batch_for("427k", 101, 24, 512);
}
static void test_random_batch_77k_with_cluster(void)
{
    random_batch_for("77k", 202, 40, 512);
}
/* over 2048 atoms and 8448 pairs: the many-atom message kernel and the
 * large filter tiles */
static void test_random_batch_21k(void)
{
    random_batch_for("21k", 303, 110, 0);
}
static void test_random_batch_427k_small(void)
{
    random_batch_for("427k", 404, 7, 0);
}

/* ---- device API ---- */

static int create_ctx(const painn_model *m, const molecule_batch *b, int max_nb, painn_cuda **ctx)
{
    dm_error err = {{0}};
    painn_cuda_options opt = {max_nb, 0};
    if (painn_cuda_create(ctx, m, b, &opt, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Directed edges within rc of geometry x, counted in float64 on the host. */
static long host_edge_count(const molecule_batch *b, const double *x, double rc)
{
    long count = 0;
    for (int mol = 0; mol < b->n_molecules; mol++)
        for (int i = b->offset[mol]; i < b->offset[mol + 1]; i++)
            for (int j = b->offset[mol]; j < b->offset[mol + 1]; j++) {
                if (i == j) continue;
                double d2 = 0;
                for (int c = 0; c < 3; c++) d2 += pow(x[3 * i + c] - x[3 * j + c], 2);
                count += sqrt(d2) <= rc;
            }
    return count;
}

/* Edge count on the device equals the float64 count of pairs within rc, in
 * `evaluations` evaluations alternating between two geometries (the second
 * moves every atom by ~0.3 Å, so the lists change). */
static void neighbor_counts_for(unsigned long long seed, int n_mol, int cluster, int evaluations)
{
    painn_model m = {0};
    molecule_batch b = {0};
    test_rng rng = {seed};
    painn_cuda *ctx = NULL;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(test_load_model("21k", &m) == 0);
    CU_ASSERT_FATAL(random_batch(&rng, n_mol, cluster, &b) == 0);
    CU_ASSERT_FATAL(create_ctx(&m, &b, 0, &ctx) == 0);
    double *moved = malloc(sizeof(double) * 3 * b.n_atoms);
    for (int k = 0; k < 3 * b.n_atoms; k++) moved[k] = b.positions[k] + 0.3 * test_normal(&rng);
    const long expected[2] = {host_edge_count(&b, b.positions, m.cutoff),
                              host_edge_count(&b, moved, m.cutoff)};
    int agree = 0;
    painn_cuda_counts k = {0};
    for (int e = 0; e < evaluations; e++) {
        const double *x = e % 2 ? moved : b.positions;
        CU_ASSERT_FATAL(painn_cuda_upload_positions(ctx, x, 0, &err) == 0);
        CU_ASSERT_FATAL(painn_cuda_evaluate_graph(ctx, 0, &err) == 0);
        CU_ASSERT_FATAL(painn_cuda_check(ctx, &k, 0, &err) == 0);
        agree += k.n_edges == expected[e % 2] && 2 * k.n_pairs == k.n_edges && !k.overflow;
    }
    printf("\n  %d molecules, %d atoms: %d edges on the device, %ld on the host (float64), "
           "%d pairs; %d of %d evaluations agree ",
           b.n_molecules, b.n_atoms, k.n_edges, expected[(evaluations - 1) % 2], k.n_pairs, agree,
           evaluations);
    CU_ASSERT(expected[0] != expected[1]);
    CU_ASSERT(agree == evaluations);
    free(moved);
    painn_cuda_destroy(ctx);
    molecule_batch_free(&b);
    painn_model_free(&m);
}

/* with a 512-atom cluster: the lists over the whole GPU (four kernels) */
static void test_neighbor_counts(void)
{
    neighbor_counts_for(505, 30, 512, 2);
}

/* molecules of at most 74 atoms: a block per molecule, the scan across
 * molecules over more evaluations than its epoch counts (4) */
static void test_neighbor_counts_by_molecule(void)
{
    neighbor_counts_for(515, 300, 0, 9);
}

typedef struct result {
    double *E, *F;
} result;

static int evaluate_at(painn_cuda *ctx, const double *x, int use_graph, const molecule_batch *b,
                       result *r)
{
    dm_error err = {{0}};
    r->E = calloc(b->n_molecules, sizeof(double));
    r->F = calloc(3 * b->n_atoms, sizeof(double));
    int rc = painn_cuda_upload_positions(ctx, x, 0, &err);
    if (rc == 0)
        rc =
            use_graph ? painn_cuda_evaluate_graph(ctx, 0, &err) : painn_cuda_evaluate(ctx, 0, &err);
    if (rc == 0) rc = painn_cuda_download(ctx, r->E, r->F, 0, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    return rc;
}

static int same_bits(const result *a, const result *b, const molecule_batch *bt)
{
    return !memcmp(a->E, b->E, sizeof(double) * bt->n_molecules) &&
           !memcmp(a->F, b->F, sizeof(double) * 3 * bt->n_atoms);
}

static void test_determinism(void)
{
    painn_model m = {0};
    molecule_batch b = {0};
    test_rng rng = {606};
    painn_cuda *ctx = NULL;
    CU_ASSERT_FATAL(test_load_model("427k", &m) == 0);
    CU_ASSERT_FATAL(random_batch(&rng, 20, 512, &b) == 0);
    CU_ASSERT_FATAL(create_ctx(&m, &b, 0, &ctx) == 0);
    const int n3 = 3 * b.n_atoms;
    double *other = malloc(sizeof(double) * n3);
    for (int k = 0; k < n3; k++) other[k] = b.positions[k] + 0.1 * test_normal(&rng);
    result r1, r2, r3, r4, ro;
    CU_ASSERT_FATAL(evaluate_at(ctx, b.positions, 1, &b, &r1) == 0);
    CU_ASSERT_FATAL(evaluate_at(ctx, b.positions, 1, &b, &r2) == 0);
    CU_ASSERT_FATAL(evaluate_at(ctx, other, 1, &b, &ro) == 0);
    CU_ASSERT_FATAL(evaluate_at(ctx, b.positions, 1, &b, &r3) == 0);
    CU_ASSERT_FATAL(evaluate_at(ctx, b.positions, 0, &b, &r4) == 0);
    printf("\n  %d molecules, %d atoms: repeat %s, after another geometry %s, plain launches %s ",
           b.n_molecules, b.n_atoms, same_bits(&r1, &r2, &b) ? "identical" : "DIFFERENT",
           same_bits(&r1, &r3, &b) ? "identical" : "DIFFERENT",
           same_bits(&r1, &r4, &b) ? "identical" : "DIFFERENT");
    CU_ASSERT(same_bits(&r1, &r2, &b));
    CU_ASSERT(same_bits(&r1, &r3, &b));
    CU_ASSERT(same_bits(&r1, &r4, &b));
    CU_ASSERT(!same_bits(&r1, &ro, &b)); /* the other geometry did change something */
    result *all[] = {&r1, &r2, &r3, &r4, &ro};
    for (int i = 0; i < 5; i++) free(all[i]->E), free(all[i]->F);
    free(other);
    painn_cuda_destroy(ctx);
    molecule_batch_free(&b);
    painn_model_free(&m);
}

/* The first `count` molecules of batch b, each in a context of its own,
 * against the batch's energies E and forces F: asserts agreement within the
 * batch bounds; the worst |dE| and |dF| in *worst_e, *worst_f. */
static void compare_one_by_one(const painn_model *m, const molecule_batch *b, int count,
                               const double *E, const double *F, double *worst_e, double *worst_f)
{
    *worst_e = *worst_f = 0;
    for (int i = 0; i < b->n_molecules && i < count; i++) {
        int n = b->offset[i + 1] - b->offset[i];
        molecule_batch one = {0};
        CU_ASSERT_FATAL(molecule_batch_alloc(&one, 1, &n, NULL) == 0);
        memcpy(one.species, b->species + b->offset[i], sizeof(int) * n);
        memcpy(one.positions, b->positions + 3 * b->offset[i], sizeof(double) * 3 * n);
        double Ei, *Fi = calloc(3 * n, sizeof *Fi);
        CU_ASSERT_FATAL(cuda_compute(m, &one, one.positions, &Ei, Fi) == 0);
        double de = fabs(Ei - E[i]);
        double df = 0;
        for (int k = 0; k < 3 * n; k++) df = fmax(df, fabs(Fi[k] - F[3 * b->offset[i] + k]));
        CU_ASSERT(de <= TOL_BATCH_ENERGY_REL * fabs(E[i]));
        CU_ASSERT(df <= TOL_BATCH_FORCE);
        *worst_e = fmax(*worst_e, de);
        *worst_f = fmax(*worst_f, df);
        free(Fi);
        molecule_batch_free(&one);
    }
}

/* Every molecule of a batch (with replicas) against a context of its own. */
static void batch_vs_single_for(const char *size, unsigned long long seed)
{
    painn_model m = {0};
    molecule_batch b = {0};
    test_rng rng = {seed};
    CU_ASSERT_FATAL(test_load_model(size, &m) == 0);
    CU_ASSERT_FATAL(random_batch(&rng, 12, 0, &b) == 0);
    double *E = calloc(b.n_molecules, sizeof *E), *F = calloc(3 * b.n_atoms, sizeof *F);
    CU_ASSERT_FATAL(cuda_compute(&m, &b, b.positions, E, F) == 0);
    double worst_e, worst_f;
    compare_one_by_one(&m, &b, b.n_molecules, E, F, &worst_e, &worst_f);
    printf("\n  %s, %d molecules: batch vs one by one: max |dE| = %.3g eV, max |dF| = %.3g eV/A ",
           size, b.n_molecules, worst_e, worst_f);
    free(E), free(F);
    molecule_batch_free(&b);
    painn_model_free(&m);
}

static void test_batch_equals_single_427k(void)
{
    batch_vs_single_for("427k", 707);
}
static void test_batch_equals_single_21k(void)
{
    batch_vs_single_for("21k", 808);
}

/* Every tile shape of the GEMMs and filters (forced through
 * PAINN_CUDA_TILES) gives the default's result within float32 rounding (the
 * default here is the tiny float32 GEMM, big and small run on the float64
 * tensor cores), and the two tensor-core shapes agree bit for bit: each of
 * their outputs is the same chain of mma steps whatever the tile. */
static void test_tile_shapes_agree(void)
{
    static const char *shapes[] = {"big", "mid", "small", "tiny"};
    painn_model m = {0};
    molecule_batch b = {0};
    test_rng rng = {111};
    CU_ASSERT_FATAL(test_load_model("427k", &m) == 0);
    CU_ASSERT_FATAL(random_batch(&rng, 12, 512, &b) == 0);
    const int M = b.n_molecules, n3 = 3 * b.n_atoms;
    double *E = calloc(M, sizeof *E), *F = calloc(n3, sizeof *F);
    double *E2 = calloc(M, sizeof *E2), *F2 = calloc(n3, sizeof *F2);
    result big = {calloc(M, sizeof(double)), calloc(n3, sizeof(double))};
    CU_ASSERT_FATAL(cuda_compute(&m, &b, b.positions, E, F) == 0);
    for (int i = 0; i < 4; i++) {
        setenv("PAINN_CUDA_TILES", shapes[i], 1);
        int rc = cuda_compute(&m, &b, b.positions, E2, F2);
        unsetenv("PAINN_CUDA_TILES");
        CU_ASSERT_FATAL(rc == 0);
        if (i == 0) memcpy(big.E, E2, sizeof(double) * M), memcpy(big.F, F2, sizeof(double) * n3);
        if (!strcmp(shapes[i], "small")) {
            const result small = {E2, F2};
            CU_ASSERT(same_bits(&big, &small, &b));
            printf("\n  small tiles %s big tiles", same_bits(&big, &small, &b) ? "identical to" : "DIFFERENT from");
        }
        double de = 0, df = 0;
        for (int k = 0; k < M; k++) {
            CU_ASSERT(fabs(E2[k] - E[k]) <= TOL_BATCH_ENERGY_REL * fabs(E[k]));
            de = fmax(de, fabs(E2[k] - E[k]));
        }
        for (int k = 0; k < n3; k++) df = fmax(df, fabs(F2[k] - F[k]));
        CU_ASSERT(df <= TOL_BATCH_FORCE);
        printf("\n  %s tiles, %d atoms: max |dE| = %.3g eV, max |dF| = %.3g eV/A ", shapes[i],
               b.n_atoms, de, df);
    }
    free(E), free(F), free(E2), free(F2), free(big.E), free(big.F);
    molecule_batch_free(&b);
    painn_model_free(&m);
}

/* A batch whose molecules have at most 32 atoms, forced through the
 * pair-by-pair message kernels, which evaluate the filter table inside:
 * against the float64 reference, bit-identical when evaluated twice, and each
 * of its first 24 molecules against a context of its own (the per-atom
 * kernels: the same sums in another order, so agreement to float32 rounding,
 * with the batch test's bounds). */
static void pair_path_for(const char *size, unsigned long long seed)
{
    painn_model m = {0};
    molecule_batch b = {0};
    test_rng rng = {seed};
    painn_cuda *ctx = NULL;
    CU_ASSERT_FATAL(test_load_model(size, &m) == 0);
    CU_ASSERT_FATAL(random_batch_of(&rng, 120, 0, 32, &b) == 0);
    setenv("PAINN_CUDA_MESSAGES", "pair", 1); /* this batch is below the automatic choice */
    const int created = create_ctx(&m, &b, 0, &ctx);
    unsetenv("PAINN_CUDA_MESSAGES");
    CU_ASSERT_FATAL(created == 0);
    painn_cuda_info info;
    painn_cuda_get_info(ctx, &info);
    CU_ASSERT_FATAL(info.pair_messages == 1);
    result r1, r2;
    CU_ASSERT_FATAL(evaluate_at(ctx, b.positions, 1, &b, &r1) == 0);
    CU_ASSERT_FATAL(evaluate_at(ctx, b.positions, 1, &b, &r2) == 0);
    CU_ASSERT(same_bits(&r1, &r2, &b));
    painn_cuda_destroy(ctx);

    const int M = b.n_molecules;
    double *Er = calloc(M, sizeof *Er), *Fr = calloc(3 * b.n_atoms, sizeof *Fr);
    CU_ASSERT_FATAL(reference_compute(&m, &b, b.positions, Er, Fr) == 0);
    agreement a = {0};
    compare("pair path", &b, r1.E, r1.F, Er, Fr, &a);
    CU_ASSERT(a.failures == 0);

    double worst_e, worst_f;
    compare_one_by_one(&m, &b, 24, r1.E, r1.F, &worst_e, &worst_f);
    printf("\n  %s, %d molecules (%d atoms): E rel %.2e, F max %.2e, F RMS %.2e; repeat %s; "
           "vs one by one: max |dE| = %.3g eV, max |dF| = %.3g eV/A ",
           size, M, b.n_atoms, a.energy_rel, a.force_max, a.force_rms,
           same_bits(&r1, &r2, &b) ? "identical" : "DIFFERENT", worst_e, worst_f);
    free(Er), free(Fr);
    free(r1.E), free(r1.F), free(r2.E), free(r2.F);
    molecule_batch_free(&b);
    painn_model_free(&m);
}

static void test_pair_path_427k(void)
{
    pair_path_for("427k", 909);
}
static void test_pair_path_77k(void)
{
    pair_path_for("77k", 910);
}
static void test_pair_path_21k(void)
{
    pair_path_for("21k", 911);
}

/* The automatic choice of the message path: pair by pair for 256 alanine
 * dipeptides (22 atoms each, enough blocks to fill the GPU), per atom for one
 * of them and for a batch with a molecule of more than 32 atoms; and the
 * PAINN_CUDA_MESSAGES override. */
static void test_message_path_choice(void)
{
    struct {
        int copies, with_cholesterol;
        const char *force;
        int expect;
    } cases[] = {{256, 0, NULL, 1}, {1, 0, NULL, 0}, {256, 1, NULL, 0}, {256, 0, "atom", 0},
                 {1, 0, "pair", 1},   {256, 1, "pair", 0}};
    painn_model m = {0};
    xyz_trajectory ad = {0}, ch = {0};
    CU_ASSERT_FATAL(test_load_model("427k", &m) == 0);
    CU_ASSERT_FATAL(test_read_molecule("alanine_dipeptide", &ad) == 0);
    CU_ASSERT_FATAL(test_read_molecule("cholesterol", &ch) == 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mol_list l = {0};
        molecule_batch b = {0};
        painn_cuda *ctx = NULL;
        for (int k = 0; k < cases[i].copies; k++)
            mol_list_add(&l, ad.frames[0].n_atoms, ad.frames[0].species, ad.frames[0].positions);
        if (cases[i].with_cholesterol)
            mol_list_add(&l, ch.frames[0].n_atoms, ch.frames[0].species, ch.frames[0].positions);
        CU_ASSERT_FATAL(batch_from_list(&l, &b) == 0);
        if (cases[i].force) setenv("PAINN_CUDA_MESSAGES", cases[i].force, 1);
        const int created = create_ctx(&m, &b, 0, &ctx);
        unsetenv("PAINN_CUDA_MESSAGES");
        CU_ASSERT_FATAL(created == 0);
        painn_cuda_info info;
        painn_cuda_get_info(ctx, &info);
        printf("\n  %d alanine dipeptide(s)%s%s%s: messages %s ", cases[i].copies,
               cases[i].with_cholesterol ? " + cholesterol" : "", cases[i].force ? ", forced " : "",
               cases[i].force ? cases[i].force : "",
               info.pair_messages ? "pair by pair" : "per atom");
        CU_ASSERT(info.pair_messages == cases[i].expect);
        painn_cuda_destroy(ctx);
        molecule_batch_free(&b);
        mol_list_free(&l);
    }
    xyz_trajectory_free(&ad);
    xyz_trajectory_free(&ch);
    painn_model_free(&m);
}

/* Positions changed on the device between graph replays, no host sync in
 * between: the last result equals a fresh evaluation of the last positions. */
static void test_no_host_round_trip(void)
{
    painn_model m = {0};
    molecule_batch b = {0};
    test_rng rng = {909};
    painn_cuda *ctx = NULL;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(test_load_model("77k", &m) == 0);
    CU_ASSERT_FATAL(random_batch(&rng, 10, 0, &b) == 0);
    CU_ASSERT_FATAL(create_ctx(&m, &b, 0, &ctx) == 0);
    const int n3 = 3 * b.n_atoms;
    /* three geometries as float planes, staged on the device */
    float *planes = malloc(sizeof(float) * 3 * n3), *dev = NULL;
    double *last = malloc(sizeof(double) * n3);
    for (int g = 0; g < 3; g++)
        for (int a = 0; a < b.n_atoms; a++)
            for (int c = 0; c < 3; c++) {
                double x = b.positions[3 * a + c] + 0.05 * g * test_normal(&rng);
                planes[g * n3 + c * b.n_atoms + a] = (float)x;
                if (g == 2) last[3 * a + c] = (float)x;
            }
    cudaStream_t s;
    CU_ASSERT_FATAL(cudaStreamCreate(&s) == cudaSuccess);
    CU_ASSERT_FATAL(cudaMalloc((void **)&dev, sizeof(float) * 3 * n3) == cudaSuccess);
    CU_ASSERT_FATAL(cudaMemcpy(dev, planes, sizeof(float) * 3 * n3, cudaMemcpyHostToDevice) ==
                    cudaSuccess);
    for (int g = 0; g < 3; g++) {
        CU_ASSERT(cudaMemcpyAsync(painn_cuda_positions(ctx), dev + g * n3, sizeof(float) * n3,
                                  cudaMemcpyDeviceToDevice, s) == cudaSuccess);
        CU_ASSERT(painn_cuda_evaluate_graph(ctx, s, &err) == 0);
    }
    result chained = {calloc(b.n_molecules, sizeof(double)), calloc(n3, sizeof(double))}, fresh;
    CU_ASSERT_FATAL(painn_cuda_download(ctx, chained.E, chained.F, s, &err) == 0);
    CU_ASSERT_FATAL(evaluate_at(ctx, last, 1, &b, &fresh) == 0);
    CU_ASSERT(same_bits(&chained, &fresh, &b));
    free(chained.E), free(chained.F), free(fresh.E), free(fresh.F);
    free(planes), free(last);
    cudaFree(dev);
    cudaStreamDestroy(s);
    painn_cuda_destroy(ctx);
    molecule_batch_free(&b);
    painn_model_free(&m);
}

/* max_neighbors = 4 on a 10-water cluster: the evaluation must fail loudly. */
static void test_overflow_reported(void)
{
    painn_model m = {0};
    mol_list all = {0}, one = {0};
    molecule_batch b = {0};
    painn_cuda *ctx = NULL;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(test_load_model("21k", &m) == 0);
    CU_ASSERT_FATAL(read_all_molecules(&all) > 0);
    int k = -1;
    for (int i = 0; i < all.n; i++)
        if (all.n_atoms[i] == 30) k = i; /* water_cluster_10 */
    CU_ASSERT_FATAL(k >= 0);
    mol_list_add(&one, 30, all.species[k], all.positions[k]);
    CU_ASSERT_FATAL(batch_from_list(&one, &b) == 0);
    CU_ASSERT_FATAL(create_ctx(&m, &b, 4, &ctx) == 0);
    double E, *F = calloc(90, sizeof *F);
    CU_ASSERT_FATAL(painn_cuda_upload_positions(ctx, b.positions, 0, &err) == 0);
    CU_ASSERT_FATAL(painn_cuda_evaluate_graph(ctx, 0, &err) == 0);
    int rc = painn_cuda_download(ctx, &E, F, 0, &err);
    printf("\n  max_neighbors 4, 30 atoms: %s ", rc ? err.msg : "no error");
    CU_ASSERT(rc != 0);
    CU_ASSERT(strstr(err.msg, "overflow") != NULL);
    free(F);
    painn_cuda_destroy(ctx);
    molecule_batch_free(&b);
    mol_list_free(&all);
    mol_list_free(&one);
    painn_model_free(&m);
}

/* The filter table is sized by its measured error: the trained 21k model
 * gets a table within 2^-22; halving the radial-basis widths (sharper
 * functions) needs more intervals; a basis far too narrow for 4096
 * intervals is refused with an error naming the model file. */
static void test_filter_table_sized_by_error(void)
{
    painn_model m = {0};
    mol_list all = {0}, one = {0};
    molecule_batch b = {0};
    painn_cuda *ctx = NULL;
    painn_cuda_info info;
    dm_error err = {{0}};
    CU_ASSERT_FATAL(test_load_model("21k", &m) == 0);
    CU_ASSERT_FATAL(read_all_molecules(&all) > 0);
    mol_list_add(&one, all.n_atoms[0], all.species[0], all.positions[0]);
    CU_ASSERT_FATAL(batch_from_list(&one, &b) == 0);
    int n_intervals[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            for (int k = 0; k < m.K; k++) m.rbf_widths[k] *= 0.5;
        CU_ASSERT_FATAL(create_ctx(&m, &b, 0, &ctx) == 0);
        painn_cuda_get_info(ctx, &info);
        n_intervals[pass] = info.filter_table_n;
        printf("\n  widths x %.1f: %d intervals, error %.2g (phi) %.2g (dphi/dd) ", pass ? 0.5 : 1.0,
               info.filter_table_n, info.filter_table_error[0], info.filter_table_error[1]);
        CU_ASSERT(info.filter_table_error[0] <= ldexp(1.0, -22));
        CU_ASSERT(info.filter_table_error[1] <= ldexp(1.0, -22));
        painn_cuda_destroy(ctx);
        ctx = NULL;
    }
    CU_ASSERT(n_intervals[0] >= 512 && n_intervals[1] > n_intervals[0]);
    for (int k = 0; k < m.K; k++) m.rbf_widths[k] *= 0.02;
    CU_ASSERT(painn_cuda_create(&ctx, &m, &b, NULL, &err) != 0);
    printf("\n  widths x 0.01: %s ", err.msg);
    CU_ASSERT(strstr(err.msg, "filter table") != NULL && strstr(err.msg, m.path) != NULL);
    painn_cuda_destroy(ctx);
    molecule_batch_free(&b);
    mol_list_free(&all);
    mol_list_free(&one);
    painn_model_free(&m);
}

int main(void)
{
    char why[512], msg[600];
    if (!painn_cuda_device_available(why, sizeof why)) {
        snprintf(msg, sizeof msg, "no GPU (%s)", why);
        test_skip(msg);
    }
    test_require_shared();
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) printf("GPU: %s\n", prop.name);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    TEST_SUITE("cuda_vs_reference", TEST_CASE(test_golden_427k), TEST_CASE(test_golden_77k),
               TEST_CASE(test_golden_21k), TEST_CASE(test_random_batch_427k_small),
               TEST_CASE(test_random_batch_427k_with_cluster),
               TEST_CASE(test_random_batch_77k_with_cluster), TEST_CASE(test_random_batch_21k));
    TEST_SUITE("cuda_device", TEST_CASE(test_neighbor_counts),
               TEST_CASE(test_neighbor_counts_by_molecule), TEST_CASE(test_determinism),
               TEST_CASE(test_batch_equals_single_427k), TEST_CASE(test_batch_equals_single_21k),
               TEST_CASE(test_tile_shapes_agree), TEST_CASE(test_pair_path_427k),
               TEST_CASE(test_pair_path_77k), TEST_CASE(test_pair_path_21k),
               TEST_CASE(test_message_path_choice),
               TEST_CASE(test_no_host_round_trip),
               TEST_CASE(test_overflow_reported), TEST_CASE(test_filter_table_sized_by_error));
    return test_run_all();
}

#else /* built without CUDA */

int main(void)
{
    test_skip("no GPU (distilmd was built without CUDA)");
    return 0;
}

#endif
