#include "run_hamiltonian.h"
#include "../io/xyz.h"

#include <stdlib.h>
#include <string.h>

void replica_centroids(const molecule_batch *b, const double *x, double *centers)
{
    for (int r = 0; r < b->n_molecules; r++) {
        double sum[3] = {0, 0, 0};
        int n = b->offset[r + 1] - b->offset[r];
        for (int i = b->offset[r]; i < b->offset[r + 1]; i++)
            for (int c = 0; c < 3; c++) sum[c] += x[3 * i + c];
        for (int c = 0; c < 3; c++) centers[3 * r + c] = n > 0 ? sum[c] / n : 0.0;
    }
}

/* Loads a model into the next slot. */
static const painn_model *load_model(run_hamiltonian *rh, const char *path, dm_error *err)
{
    painn_model *m = &rh->models[rh->n_models];
    if (painn_model_load(path, m, err)) return NULL;
    rh->n_models++;
    return m;
}

/* x0 of every atom of the batch: the first frame of `structure`, which must
 * have the atoms (count and elements) of every replica. */
static double *reference_positions(const char *structure, const replica_set *rs, dm_error *err)
{
    xyz_trajectory t = {0};
    if (xyz_read_file(structure, &t, err)) return NULL;
    const xyz_frame *f = &t.frames[0];
    const molecule_batch *b = &rs->topology;
    double *x0 = malloc(sizeof(double) * (3 * (size_t)b->n_atoms + 1));
    int rc = x0 ? 0 : dm_fail(err, "out of memory");
    for (int r = 0; rc == 0 && r < b->n_molecules; r++) {
        int n = b->offset[r + 1] - b->offset[r];
        if (n != f->n_atoms) {
            rc = dm_fail(err, "%s: the reference structure has %d atoms; the system has %d",
                         structure, f->n_atoms, n);
            break;
        }
        for (int i = 0; i < n && rc == 0; i++) {
            if (f->species[i] != b->species[b->offset[r] + i])
                rc = dm_fail(err, "%s: atom %d of the reference structure is element %d; in the "
                             "system it is element %d", structure, i + 1, f->species[i],
                             b->species[b->offset[r] + i]);
            memcpy(&x0[3 * (b->offset[r] + i)], &f->positions[3 * i], 3 * sizeof(double));
        }
    }
    xyz_trajectory_free(&t);
    if (rc) {
        free(x0);
        return NULL;
    }
    return x0;
}

/* An end state of interpolate with weight c0 + λ c1. */
static int add_endpoint(run_hamiltonian *rh, const alchemical_endpoint *e, int slot,
                        const replica_set *rs, double c0, double c1, dm_error *err)
{
    if (!e->harmonic) {
        const painn_model *m = load_model(rh, e->model, err);
        return m ? hamiltonian_add(&rh->h, term_model(m, c0, c1), err) : -1;
    }
    rh->reference[slot] = reference_positions(e->structure, rs, err);
    if (!rh->reference[slot]) return -1;
    return hamiltonian_add(&rh->h, term_harmonic(e->k, rh->reference[slot], c0, c1), err);
}

/* The atoms of a molecule of n atoms that are not in the solute. */
static int rest_of_solute(run_hamiltonian *rh, const run_config *cfg, int n, dm_error *err)
{
    rh->rest = malloc(sizeof(int) * ((size_t)n + 1));
    if (!rh->rest) return dm_fail(err, "out of memory");
    char *in_solute = calloc((size_t)n + 1, 1);
    if (!in_solute) return dm_fail(err, "out of memory");
    for (int k = 0; k < cfg->alchemical.n_solute; k++)
        if (cfg->alchemical.solute[k] < n) in_solute[cfg->alchemical.solute[k]] = 1;
    for (int i = 0; i < n; i++)
        if (!in_solute[i]) rh->rest[rh->n_rest++] = i;
    free(in_solute);
    if (rh->n_rest == 0) return dm_fail(err, "decouple: the solute is the whole system");
    return 0;
}

/* The three model terms of decouple, on one model. */
static int add_decouple(run_hamiltonian *rh, const run_config *cfg, const replica_set *rs,
                        dm_error *err)
{
    const painn_model *m = load_model(rh, cfg->model, err);
    if (!m) return -1;
    int n = rs->topology.offset[1] - rs->topology.offset[0];
    if (rest_of_solute(rh, cfg, n, err)) return -1;
    if (hamiltonian_add(&rh->h, term_model(m, 0, 1), err)) return -1;
    if (hamiltonian_add(&rh->h, term_model_selection(m, cfg->alchemical.n_solute,
                                                     cfg->alchemical.solute, 1, -1), err))
        return -1;
    return hamiltonian_add(&rh->h, term_model_selection(m, rh->n_rest, rh->rest, 1, -1), err);
}

static int add_restraint(run_hamiltonian *rh, const run_config *cfg, const replica_set *rs,
                         dm_error *err)
{
    rh->wall_centers = malloc(sizeof(double) * (3 * (size_t)rs->n_replicas + 1));
    if (!rh->wall_centers) return dm_fail(err, "out of memory");
    replica_centroids(&rs->topology, rs->topology.positions, rh->wall_centers);
    return hamiltonian_add(&rh->h, term_flat_bottom(cfg->restraint.k, cfg->restraint.radius,
                                                    rh->wall_centers, 1, 0), err);
}

static int build(const run_config *cfg, const replica_set *rs, run_hamiltonian *rh, dm_error *err)
{
    int rc = 0;
    switch (cfg->alchemical.mode) {
    case ALCHEMICAL_NONE: {
        const painn_model *m = load_model(rh, cfg->model, err);
        rc = m ? hamiltonian_add(&rh->h, term_model(m, 1, 0), err) : -1;
        break;
    }
    case ALCHEMICAL_INTERPOLATE:
        rc = add_endpoint(rh, &cfg->alchemical.a, 0, rs, 1, -1, err);
        if (rc == 0) rc = add_endpoint(rh, &cfg->alchemical.b, 1, rs, 0, 1, err);
        break;
    case ALCHEMICAL_DECOUPLE: rc = add_decouple(rh, cfg, rs, err); break;
    }
    if (rc == 0 && cfg->restraint.set) rc = add_restraint(rh, cfg, rs, err);
    if (rc == 0) rc = hamiltonian_check(&rh->h, &rs->topology, err);
    return rc;
}

int run_hamiltonian_build(const run_config *cfg, const replica_set *rs, run_hamiltonian *rh,
                          dm_error *err)
{
    memset(rh, 0, sizeof *rh);
    if (build(cfg, rs, rh, err) == 0) return 0;
    run_hamiltonian_free(rh);
    return -1;
}

void run_hamiltonian_free(run_hamiltonian *rh)
{
    for (int k = 0; k < rh->n_models; k++) painn_model_free(&rh->models[k]);
    free(rh->reference[0]);
    free(rh->reference[1]);
    free(rh->rest);
    free(rh->wall_centers);
    memset(rh, 0, sizeof *rh);
}
