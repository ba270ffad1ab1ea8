#include "replicas.h"
#include "../io/xyz.h"

#include <stdlib.h>
#include <string.h>

/* The frame a system asks for, read from its structure file. */
static int read_system(const system_spec *s, xyz_trajectory *t, const xyz_frame **frame,
                       dm_error *err)
{
    if (xyz_read_file(s->structure, t, err)) return -1;
    if (s->frame < 0 || s->frame >= t->n_frames)
        return dm_fail(err, "%s: frame %d requested, but the file has %d frame(s)", s->structure,
                       s->frame, t->n_frames);
    *frame = &t->frames[s->frame];
    for (int i = 0; i < (*frame)->n_atoms; i++)
        if (element_mass((*frame)->species[i]) <= 0)
            return dm_fail(err, "%s: atom %d has atomic number %d, which has no mass", s->structure,
                           i + 1, (*frame)->species[i]);
    return 0;
}

static double replica_temperature(const run_config *cfg, const system_spec *s, int copy)
{
    if (s->n_temperatures == 0) return cfg->integrator.temperature_K;
    return s->temperatures[s->n_temperatures == 1 ? 0 : copy];
}

static int fill_replicas(const run_config *cfg, replica_set *rs, dm_error *err)
{
    int r = 0;
    rs->has_velocities = 1;
    for (int k = 0; k < cfg->n_systems; k++) {
        const system_spec *s = &cfg->systems[k];
        xyz_trajectory t = {0};
        const xyz_frame *f = NULL;
        if (read_system(s, &t, &f, err)) {
            xyz_trajectory_free(&t);
            return -1;
        }
        if (!f->velocities) rs->has_velocities = 0;
        for (int copy = 0; copy < s->copies; copy++, r++) {
            int a0 = rs->topology.offset[r];
            for (int i = 0; i < f->n_atoms; i++) {
                rs->topology.species[a0 + i] = f->species[i];
                rs->masses[a0 + i] = element_mass(f->species[i]);
                for (int c = 0; c < 3; c++) {
                    rs->topology.positions[3 * (a0 + i) + c] = f->positions[3 * i + c];
                    rs->velocities[3 * (a0 + i) + c] = f->velocities ? f->velocities[3 * i + c] : 0;
                }
            }
            rs->states[r].temperature = replica_temperature(cfg, s, copy);
            rs->system_of_replica[r] = k;
        }
        xyz_trajectory_free(&t);
    }
    return 0;
}

/* Sizes first (one pass over the files), then the arrays, then the atoms. */
int replica_set_build(const run_config *cfg, replica_set *rs, dm_error *err)
{
    memset(rs, 0, sizeof *rs);
    int n = run_config_replicas(cfg), r = 0;
    int *sizes = malloc(sizeof(int) * ((size_t)n + 1));
    if (!sizes) return dm_fail(err, "out of memory");
    for (int k = 0; k < cfg->n_systems; k++) {
        xyz_trajectory t = {0};
        const xyz_frame *f = NULL;
        int rc = read_system(&cfg->systems[k], &t, &f, err);
        for (int copy = 0; rc == 0 && copy < cfg->systems[k].copies; copy++) sizes[r++] = f->n_atoms;
        xyz_trajectory_free(&t);
        if (rc) {
            free(sizes);
            return -1;
        }
    }
    int rc = molecule_batch_alloc(&rs->topology, n, sizes, err);
    free(sizes);
    if (rc) return -1;
    rs->n_replicas = n;
    size_t na = (size_t)rs->topology.n_atoms;
    rs->masses = calloc(na + 1, sizeof(double));
    rs->velocities = calloc(3 * na + 1, sizeof(double));
    rs->states = calloc((size_t)n + 1, sizeof(thermo_state));
    rs->system_of_replica = calloc((size_t)n + 1, sizeof(int));
    if (!rs->masses || !rs->velocities || !rs->states || !rs->system_of_replica) {
        replica_set_free(rs);
        return dm_fail(err, "out of memory for %d replicas", n);
    }
    if (fill_replicas(cfg, rs, err)) {
        replica_set_free(rs);
        return -1;
    }
    return 0;
}

void replica_set_free(replica_set *rs)
{
    molecule_batch_free(&rs->topology);
    free(rs->masses);
    free(rs->velocities);
    free(rs->states);
    free(rs->system_of_replica);
    memset(rs, 0, sizeof *rs);
}
