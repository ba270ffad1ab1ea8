#include "replicas.h"
#include "../io/xyz.h"

#include <stdlib.h>
#include <string.h>

/* A system's structure file, checked: the frames it asks for exist and every
 * atom has a mass. */
static int read_system(const system_spec *s, xyz_trajectory *t, dm_error *err)
{
    if (xyz_read_file(s->structure, t, err)) return -1;
    int last = s->frame + (s->n_frames > 0 ? s->n_frames : 1) - 1;
    if (s->frame < 0 || last >= t->n_frames)
        return dm_fail(err, "%s: frames %d..%d requested, but the file has %d frame(s)",
                       s->structure, s->frame, last, t->n_frames);
    for (int f = s->frame; f <= last; f++)
        for (int i = 0; i < t->frames[f].n_atoms; i++)
            if (element_mass(t->frames[f].species[i]) <= 0)
                return dm_fail(err, "%s: frame %d, atom %d has atomic number %d, which has no mass",
                               s->structure, f, i + 1, t->frames[f].species[i]);
    return 0;
}

/* Replicas of a system: groups x rungs with a ladder, else frames x copies. */
static int system_replicas(const system_spec *s)
{
    return s->n_rungs > 0 ? s->groups * s->n_rungs : (s->n_frames > 0 ? s->n_frames : 1) * s->copies;
}

/* Replica k of system s: the frame it starts from and its temperature. */
static const xyz_frame *replica_frame(const run_config *cfg, const system_spec *s,
                                      const xyz_trajectory *t, int k, double *temperature)
{
    if (s->n_rungs > 0) {
        *temperature = s->ladder[k % s->n_rungs];
        return &t->frames[s->frame];
    }
    int copy = k % s->copies;
    *temperature = s->n_temperatures == 0 ? cfg->integrator.temperature_K
                                          : s->temperatures[s->n_temperatures == 1 ? 0 : copy];
    return &t->frames[s->frame + k / s->copies];
}

static int fill_replicas(const run_config *cfg, replica_set *rs, dm_error *err)
{
    int r = 0;
    rs->has_velocities = 1;
    for (int sys = 0; sys < cfg->n_systems; sys++) {
        const system_spec *s = &cfg->systems[sys];
        xyz_trajectory t = {0};
        if (read_system(s, &t, err)) {
            xyz_trajectory_free(&t);
            return -1;
        }
        for (int k = 0; k < system_replicas(s); k++, r++) {
            const xyz_frame *f = replica_frame(cfg, s, &t, k, &rs->states[r].temperature);
            int sweep = cfg->alchemical.mode != ALCHEMICAL_NONE; /* replica k: window k */
            rs->states[r].lambda = sweep ? cfg->alchemical.lambdas[k] : 0.0;
            if (!f->velocities) rs->has_velocities = 0;
            int a0 = rs->topology.offset[r];
            for (int i = 0; i < f->n_atoms; i++) {
                rs->topology.species[a0 + i] = f->species[i];
                rs->masses[a0 + i] = element_mass(f->species[i]);
                for (int c = 0; c < 3; c++) {
                    rs->topology.positions[3 * (a0 + i) + c] = f->positions[3 * i + c];
                    rs->velocities[3 * (a0 + i) + c] = f->velocities ? f->velocities[3 * i + c] : 0;
                }
            }
            rs->system_of_replica[r] = sys;
        }
        xyz_trajectory_free(&t);
    }
    return 0;
}

/* Sizes first (one pass over the files), then the arrays, then the atoms. */
int replica_set_build(const run_config *cfg, replica_set *rs, dm_error *err)
{
    memset(rs, 0, sizeof *rs);
    int n = 0, r = 0;
    for (int sys = 0; sys < cfg->n_systems; sys++) n += system_replicas(&cfg->systems[sys]);
    int *sizes = malloc(sizeof(int) * ((size_t)n + 1));
    if (!sizes) return dm_fail(err, "out of memory");
    for (int sys = 0; sys < cfg->n_systems; sys++) {
        const system_spec *s = &cfg->systems[sys];
        xyz_trajectory t = {0};
        double T;
        int rc = read_system(s, &t, err);
        for (int k = 0; rc == 0 && k < system_replicas(s); k++)
            sizes[r++] = replica_frame(cfg, s, &t, k, &T)->n_atoms;
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

/* Layout arrays for R replicas and G groups. */
static int layout_alloc(exchange_layout *l, int R, int G, int with_lambda, dm_error *err)
{
    l->n_replicas = R;
    l->n_groups = G;
    l->first = malloc(sizeof(int) * (G + 1));
    l->size = malloc(sizeof(int) * (G + 1));
    l->group_of = malloc(sizeof(int) * (R + 1));
    l->ladder = malloc(sizeof(double) * (R + 1));
    l->lambda = with_lambda ? malloc(sizeof(double) * (R + 1)) : NULL;
    if (!l->first || !l->size || !l->group_of || !l->ladder || (with_lambda && !l->lambda)) {
        exchange_layout_free(l);
        return dm_fail(err, "out of memory");
    }
    return 0;
}

/* A λ sweep with exchange: one group of every window, state k = (T_k, λ_k). */
static int sweep_layout(const replica_set *rs, exchange_layout *l, dm_error *err)
{
    int R = rs->n_replicas;
    if (layout_alloc(l, R, 1, 1, err)) return -1;
    l->first[0] = 0;
    l->size[0] = R;
    for (int r = 0; r < R; r++) {
        l->group_of[r] = 0;
        l->ladder[r] = rs->states[r].temperature;
        l->lambda[r] = rs->states[r].lambda;
    }
    return 0;
}

int replica_set_exchange_layout(const run_config *cfg, const replica_set *rs, exchange_layout *l,
                                dm_error *err)
{
    memset(l, 0, sizeof *l);
    if (cfg->alchemical.mode != ALCHEMICAL_NONE && cfg->alchemical.exchange_interval > 0)
        return sweep_layout(rs, l, err);
    int R = rs->n_replicas, n_groups = 0;
    for (int sys = 0; sys < cfg->n_systems; sys++)
        if (cfg->systems[sys].n_rungs > 0) n_groups += cfg->systems[sys].groups;
    if (layout_alloc(l, R, n_groups, 0, err)) return -1;
    int r = 0, g = 0;
    for (int sys = 0; sys < cfg->n_systems; sys++) {
        const system_spec *s = &cfg->systems[sys];
        for (int k = 0; k < system_replicas(s); k++, r++) {
            l->ladder[r] = rs->states[r].temperature;
            l->group_of[r] = -1;
            if (s->n_rungs == 0) continue;
            if (k % s->n_rungs == 0) {
                l->first[g] = r;
                l->size[g] = s->n_rungs;
                g++;
            }
            l->group_of[r] = g - 1;
        }
    }
    return 0;
}
