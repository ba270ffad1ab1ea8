/* run.c — the main loop of `distilmd run`.
 *
 *   build replicas, load the model(s) into the hamiltonian, pick the
 *   platform's dynamics
 *   initial velocities (Maxwell-Boltzmann) or a checkpoint's state
 *   forces at the start
 *   until the last step:
 *       advance every replica to the next event on the platform
 *       event: H5MD frame | checkpoint | COM-motion removal | progress line
 *   final checkpoint and output flushed; SIGINT/SIGTERM end the loop early
 *   with a checkpoint, so that `--restart` continues exactly.
 * A λ sweep (cfg->alchemical) is a run whose replicas are the λ windows:
 * each replica has its λ, exchanges (when configured) move the windows
 * between replicas, and every frame records each replica's window, ΔU and
 * reduced potential in every window. */
#include "run.h"

#include "dynamics.h"
#include "hamiltonian.h"
#include "progress.h"
#include "replicas.h"
#include "run_hamiltonian.h"
#include "../integrators/integrators.h"
#include "../integrators/units.h"
#include "../io/checkpoint.h"
#include "../io/h5md.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The one piece of process-wide state: a signal handler can only talk to the
 * loop through a flag. It is set by SIGINT/SIGTERM and read between steps. */
static volatile sig_atomic_t stop_requested = 0;

static void on_stop_signal(int sig)
{
    stop_requested = sig;
}

typedef struct run {
    const run_config *cfg;
    run_hamiltonian hamiltonian;
    replica_set replicas;
    const dynamics_ops *dyn;
    void *dyn_impl;
    h5md_writer *out;
    long step;
    /* host copies for output and checkpoints */
    double *x, *v, *f, *epot, *ekin, *temperature, *thermostat_T;
    int *dof;
    fire_params fire;
    fire_state *fire_state;
    exchange_layout exchange;    /* n_groups = 0: no replica exchange */
    exchange_record record;      /* host copy, refreshed at output and checkpoints */
    long exchange_interval;      /* steps between exchange attempts (with groups) */
    /* λ sweep (sweep = 1): host copies, refreshed at output and checkpoints */
    int sweep;
    double *lambda, *u0, *du;    /* [R] per replica */
    int64_t *window;             /* [R] the window each replica is in */
    double *reduced;             /* [R * K]: (U_0 + λ_l ΔU) / (k_B T_l) for window l */
    /* an output frame gathered from the platform and not yet written: it is
     * written after the next steps are enqueued, so that the host writes
     * HDF5 while the GPU computes */
    int frame_pending;
    long frame_step;
    int64_t *frame_rung;         /* [R] with replica exchange */
} run;

static int emit_frame(run *r, dm_error *err);

/* ---- setup ---- */

static const dynamics_ops *pick_dynamics(const char *platform, dm_error *err)
{
    char note[256];
    const dynamics_ops *d = dynamics_find(platform, note, sizeof note, err);
    if (d && note[0]) fprintf(stderr, "distilmd: %s\n", note);
    return d;
}

static int alloc_buffers(run *r, dm_error *err)
{
    size_t n = (size_t)r->replicas.topology.n_atoms, R = (size_t)r->replicas.n_replicas;
    r->x = calloc(3 * n + 1, sizeof(double));
    r->v = calloc(3 * n + 1, sizeof(double));
    r->f = calloc(3 * n + 1, sizeof(double));
    r->epot = calloc(R + 1, sizeof(double));
    r->ekin = calloc(R + 1, sizeof(double));
    r->temperature = calloc(R + 1, sizeof(double));
    r->thermostat_T = calloc(R + 1, sizeof(double));
    r->dof = calloc(R + 1, sizeof(int));
    r->fire_state = calloc(R + 1, sizeof(fire_state));
    r->lambda = calloc(R + 1, sizeof(double));
    r->u0 = calloc(R + 1, sizeof(double));
    r->du = calloc(R + 1, sizeof(double));
    r->window = calloc(R + 1, sizeof(int64_t));
    r->reduced = calloc(r->sweep ? R * R + 1 : 1, sizeof(double)); /* K = R windows */
    if (!r->x || !r->v || !r->f || !r->epot || !r->ekin || !r->temperature || !r->thermostat_T ||
        !r->dof || !r->fire_state || !r->lambda || !r->u0 || !r->du || !r->window ||
        (r->sweep && !r->reduced))
        return dm_fail(err, "out of memory for %zu atoms", n);
    return 0;
}

/* Degrees of freedom per replica: 3N, less 3 when the centre-of-mass motion
 * is held at zero (removed periodically, or conserved by NVE from a start
 * without it). */
static void count_dof(run *r)
{
    const run_config *c = r->cfg;
    int com_fixed = c->remove_com_interval > 0 || c->integrator.kind == INTEGRATOR_VERLET;
    for (int k = 0; k < r->replicas.n_replicas; k++) {
        int n = r->replicas.topology.offset[k + 1] - r->replicas.topology.offset[k];
        r->dof[k] = 3 * n - (com_fixed && n > 1 ? 3 : 0);
    }
}

static void init_fire(run *r)
{
    const run_config *c = r->cfg;
    r->fire = (fire_params){.dt_start = c->integrator.timestep_fs,
                            .dt_max = 10.0 * c->integrator.timestep_fs,
                            .max_step = c->integrator.max_step,
                            .force_tolerance = c->integrator.force_tolerance,
                            .n_min = 5,
                            .f_inc = 1.1,
                            .f_dec = 0.5,
                            .alpha_start = 0.1,
                            .f_alpha = 0.99};
    for (int k = 0; k < r->replicas.n_replicas; k++)
        r->fire_state[k] = (fire_state){.dt = r->fire.dt_start, .alpha = r->fire.alpha_start};
}

/* The checkpoint's contents, pointing into the run's buffers. */
static int checkpoint_entries(run *r, checkpoint_entry *e, int64_t *scalars, double *fire_real,
                              int64_t *fire_int)
{
    long n3 = 3L * r->replicas.topology.n_atoms, R = r->replicas.n_replicas;
    exchange_record *x = &r->record;
    int k = 0;
    e[k++] = (checkpoint_entry){"run", CHECKPOINT_I64, 4, scalars}; /* step, seed, replicas, atoms */
    e[k++] = (checkpoint_entry){"positions", CHECKPOINT_F64, n3, r->x};
    e[k++] = (checkpoint_entry){"velocities", CHECKPOINT_F64, n3, r->v};
    e[k++] = (checkpoint_entry){"temperatures", CHECKPOINT_F64, R, r->thermostat_T};
    e[k++] = (checkpoint_entry){"fire_real", CHECKPOINT_F64, 2 * R, fire_real};
    e[k++] = (checkpoint_entry){"fire_int", CHECKPOINT_I64, 2 * R, fire_int};
    if (r->sweep) e[k++] = (checkpoint_entry){"lambdas", CHECKPOINT_F64, R, r->lambda};
    if (r->exchange.n_groups == 0) return k;
    e[k++] = (checkpoint_entry){"exchange_state_of_replica", CHECKPOINT_I64, R, x->state_of_replica};
    e[k++] = (checkpoint_entry){"exchange_replica_of_state", CHECKPOINT_I64, R, x->replica_of_state};
    e[k++] = (checkpoint_entry){"exchange_attempts", CHECKPOINT_I64, R, x->attempts};
    e[k++] = (checkpoint_entry){"exchange_accepts", CHECKPOINT_I64, R, x->accepts};
    e[k++] = (checkpoint_entry){"exchange_round_trips", CHECKPOINT_I64, R, x->round_trips};
    e[k++] = (checkpoint_entry){"exchange_last_end", CHECKPOINT_I64, R, x->last_end};
    e[k++] = (checkpoint_entry){"exchange_occupancy", CHECKPOINT_I64, R * x->max_size, x->occupancy};
    return k;
}

/* The platform's exchange record and thermostat temperatures, and in a
 * sweep each replica's λ, U_0 and ΔU, on the host. */
static int fetch_exchange(run *r, dm_error *err)
{
    if (r->sweep && r->dyn->get_lambdas(r->dyn_impl, r->lambda, r->u0, r->du, err)) return -1;
    if (r->exchange.n_groups == 0) return 0;
    return r->dyn->get_exchange(r->dyn_impl, &r->record, r->thermostat_T, err);
}

static int write_checkpoint(run *r, dm_error *err)
{
    long R = r->replicas.n_replicas;
    int64_t scalars[4] = {r->step, (int64_t)r->cfg->seed, R, r->replicas.topology.n_atoms};
    double *fire_real = malloc(sizeof(double) * (2 * R + 1));
    int64_t *fire_int = malloc(sizeof(int64_t) * (2 * R + 1));
    checkpoint_entry e[16];
    int rc = fire_real && fire_int ? 0 : dm_fail(err, "out of memory");
    if (rc == 0) rc = r->dyn->get_state(r->dyn_impl, r->x, r->v, NULL, NULL, NULL, err);
    if (rc == 0) rc = fetch_exchange(r, err);
    if (rc == 0) {
        for (long k = 0; k < R; k++) {
            fire_real[2 * k] = r->fire_state[k].dt;
            fire_real[2 * k + 1] = r->fire_state[k].alpha;
            fire_int[2 * k] = r->fire_state[k].n_positive;
            fire_int[2 * k + 1] = r->fire_state[k].converged;
        }
        int n = checkpoint_entries(r, e, scalars, fire_real, fire_int);
        rc = checkpoint_write(r->cfg->checkpoint.file, e, n, err);
    }
    free(fire_real);
    free(fire_int);
    return rc;
}

/* A checkpoint at step s promises a trajectory complete up to s: flush first. */
static int write_checkpoint_after_flush(run *r, dm_error *err)
{
    if (r->out && (emit_frame(r, err) || h5md_flush(r->out, err))) return -1;
    return write_checkpoint(r, err);
}

static int read_checkpoint(run *r, const char *path, dm_error *err)
{
    long R = r->replicas.n_replicas;
    int64_t scalars[4];
    double *fire_real = malloc(sizeof(double) * (2 * R + 1));
    int64_t *fire_int = malloc(sizeof(int64_t) * (2 * R + 1));
    checkpoint_entry e[16];
    int rc = fire_real && fire_int ? 0 : dm_fail(err, "out of memory");
    if (rc == 0) rc = checkpoint_read(path, e, checkpoint_entries(r, e, scalars, fire_real, fire_int), err);
    if (rc == 0 && (scalars[2] != R || scalars[3] != r->replicas.topology.n_atoms))
        rc = dm_fail(err, "%s: checkpoint has %lld replicas and %lld atoms; the configuration has %ld and %d",
                     path, (long long)scalars[2], (long long)scalars[3], R, r->replicas.topology.n_atoms);
    if (rc == 0 && (uint64_t)scalars[1] != r->cfg->seed)
        rc = dm_fail(err, "%s: checkpoint was written with seed %llu; the configuration says %llu",
                     path, (unsigned long long)scalars[1], r->cfg->seed);
    if (rc == 0) {
        r->step = (long)scalars[0];
        for (long k = 0; k < R; k++)
            r->fire_state[k] = (fire_state){fire_real[2 * k], fire_real[2 * k + 1],
                                            (int)fire_int[2 * k], (int)fire_int[2 * k + 1]};
    }
    free(fire_real);
    free(fire_int);
    return rc;
}

/* Positions and velocities: from a checkpoint, or from the structures with
 * Maxwell-Boltzmann (or the files') velocities. */
static int initial_state(run *r, const run_options *opt, dm_error *err)
{
    const run_config *c = r->cfg;
    const molecule_batch *b = &r->replicas.topology;
    for (int k = 0; k < r->replicas.n_replicas; k++) {
        r->thermostat_T[k] = r->replicas.states[k].temperature;
        r->lambda[k] = r->replicas.states[k].lambda;
    }
    if (opt->restart) {
        if (read_checkpoint(r, opt->restart, err)) return -1;
    } else {
        memcpy(r->x, b->positions, sizeof(double) * 3 * b->n_atoms);
        if (c->velocities.set) {
            double *T = malloc(sizeof(double) * (r->replicas.n_replicas + 1));
            if (!T) return dm_fail(err, "out of memory");
            for (int k = 0; k < r->replicas.n_replicas; k++) T[k] = c->velocities.temperature_K;
            maxwell_boltzmann(b, r->replicas.masses, T, c->seed, r->v);
            free(T);
        } else {
            memcpy(r->v, r->replicas.velocities, sizeof(double) * 3 * b->n_atoms);
        }
    }
    if (r->dyn->set_positions(r->dyn_impl, r->x, err)) return -1;
    if (r->dyn->set_velocities(r->dyn_impl, r->v, err)) return -1;
    if (r->dyn->set_temperatures(r->dyn_impl, r->thermostat_T, err)) return -1;
    if (r->sweep && r->dyn->set_lambdas(r->dyn_impl, r->lambda, err)) return -1;
    if (r->exchange.n_groups > 0 &&
        r->dyn->setup_exchange(r->dyn_impl, &r->exchange, &r->record, err))
        return -1;
    return r->dyn->compute_forces(r->dyn_impl, err);
}

/* Replica exchange output (docs/config.md): at every frame the rung each
 * replica holds (state - first state of its group; -1 outside every group)
 * and its thermostat temperature. */
static const h5md_series_spec EXCHANGE_SERIES[2] = {
    {"replica_state", NULL, H5MD_INT64, 1},
    {"thermostat_temperature", "K", H5MD_FLOAT64, 1},
};

/* λ sweep output (docs/config.md), K windows: at every frame the window each
 * replica is in, its ΔU = dU_λ/dλ, and its reduced potential in every window
 * l, (U_0 + λ_l ΔU) / (k_B T_l) (value [F][R][K]). */
static int sweep_series(const run *r, h5md_series_spec *out)
{
    out[0] = (h5md_series_spec){"window", NULL, H5MD_INT64, 1};
    out[1] = (h5md_series_spec){"dU_dlambda", "eV", H5MD_FLOAT64, 1};
    out[2] = (h5md_series_spec){"reduced_potential", NULL, H5MD_FLOAT64, r->replicas.n_replicas};
    return 3;
}

/* /parameters/lambda: lambdas [K] and temperature [K] (K) of the windows. */
static int write_lambda_parameters(run *r, dm_error *err)
{
    long K = r->replicas.n_replicas;
    double *lambdas = malloc(sizeof(double) * (2 * K + 1));
    if (!lambdas) return dm_fail(err, "out of memory");
    double *T = lambdas + K;
    for (long l = 0; l < K; l++) {
        lambdas[l] = r->replicas.states[l].lambda;
        T[l] = r->replicas.states[l].temperature;
    }
    h5md_fixed d[] = {
        {"lambdas", NULL, H5MD_FLOAT64, 1, {K, 0}, lambdas},
        {"temperature", "K", H5MD_FLOAT64, 1, {K, 0}, T},
    };
    int rc = h5md_write_parameters(r->out, "lambda", d, 2, err);
    free(lambdas);
    return rc;
}

/* /parameters/replica_exchange from r->record: ladder [R], group_first and
 * group_size [G], attempts, accepts, acceptance = accepts / attempts (NaN
 * without attempts) and round_trips [R], occupancy [R][max_size]. Written
 * when the file is opened and again at the end (replacing it). */
static int write_exchange_statistics(run *r, dm_error *err)
{
    const exchange_layout *l = &r->exchange;
    const exchange_record *x = &r->record;
    long R = l->n_replicas, G = l->n_groups;
    double *acceptance = malloc(sizeof(double) * (R + 1));
    int64_t *groups = malloc(sizeof(int64_t) * (2 * G + 1)); /* first, then size */
    if (!acceptance || !groups) {
        free(acceptance);
        free(groups);
        return dm_fail(err, "out of memory");
    }
    for (long s = 0; s < R; s++)
        acceptance[s] = x->attempts[s] ? (double)x->accepts[s] / (double)x->attempts[s] : NAN;
    for (long g = 0; g < G; g++) {
        groups[g] = l->first[g];
        groups[G + g] = l->size[g];
    }
    h5md_fixed d[] = {
        {"ladder", "K", H5MD_FLOAT64, 1, {R, 0}, l->ladder},
        {"lambda", NULL, H5MD_FLOAT64, 1, {R, 0}, l->lambda}, /* dropped without λ */
        {"group_first", NULL, H5MD_INT64, 1, {G, 0}, groups},
        {"group_size", NULL, H5MD_INT64, 1, {G, 0}, groups + G},
        {"attempts", NULL, H5MD_INT64, 1, {R, 0}, x->attempts},
        {"accepts", NULL, H5MD_INT64, 1, {R, 0}, x->accepts},
        {"acceptance", NULL, H5MD_FLOAT64, 1, {R, 0}, acceptance},
        {"round_trips", NULL, H5MD_INT64, 1, {R, 0}, x->round_trips},
        {"occupancy", NULL, H5MD_INT64, 2, {R, x->max_size}, x->occupancy},
    };
    int n = sizeof d / sizeof *d;
    if (!l->lambda) { /* states without λ: no lambda dataset */
        memmove(&d[1], &d[2], sizeof *d * (size_t)(n - 2));
        n--;
    }
    int rc = h5md_write_parameters(r->out, "replica_exchange", d, n, err);
    free(acceptance);
    free(groups);
    return rc;
}

static int open_output(run *r, const run_options *opt, dm_error *err)
{
    const run_config *c = r->cfg;
    if (!c->output.file[0]) return 0;
    int *n_atoms = malloc(sizeof(int) * (r->replicas.n_replicas + 1));
    if (!n_atoms) return dm_fail(err, "out of memory");
    for (int k = 0; k < r->replicas.n_replicas; k++)
        n_atoms[k] = r->replicas.topology.offset[k + 1] - r->replicas.topology.offset[k];
    h5md_series_spec extra[5];
    int n_extra = 0;
    if (r->exchange.n_groups > 0) {
        memcpy(extra, EXCHANGE_SERIES, sizeof EXCHANGE_SERIES);
        n_extra = 2;
    }
    if (r->sweep) n_extra += sweep_series(r, extra + n_extra);
    h5md_layout layout = {.n_replicas = r->replicas.n_replicas,
                          .n_atoms = n_atoms,
                          .species = r->replicas.topology.species,
                          .masses = r->replicas.masses,
                          .write_velocity = c->output.velocity,
                          .write_force = c->output.force,
                          .author = getenv("USER"),
                          .n_extra = n_extra,
                          .extra = extra};
    int rc = opt->restart ? h5md_open_append(&r->out, c->output.file, &layout, r->step, err)
                          : h5md_create(&r->out, c->output.file, &layout, err);
    free(n_atoms);
    if (rc == 0 && r->exchange.n_groups > 0) rc = write_exchange_statistics(r, err);
    if (rc == 0 && r->sweep) rc = write_lambda_parameters(r, err);
    return rc;
}

/* ---- the loop ---- */

/* The rung each replica holds (EXCHANGE_SERIES), from r->record. */
static int64_t *exchange_rungs(const run *r, dm_error *err)
{
    const exchange_layout *l = &r->exchange;
    int64_t *rung = malloc(sizeof(int64_t) * (l->n_replicas + 1));
    if (!rung) {
        dm_fail(err, "out of memory");
        return NULL;
    }
    for (int k = 0; k < l->n_replicas; k++) {
        int g = l->group_of[k];
        rung[k] = g < 0 ? -1 : r->record.state_of_replica[k] - l->first[g];
    }
    return rung;
}

/* The sweep's observables from the host copies of λ, U_0, ΔU and the record:
 * window[r], and reduced[r * K + l] = (U_0,r + λ_l ΔU_r) / (k_B T_l). */
static void sweep_observables(run *r)
{
    int K = r->replicas.n_replicas;
    for (int k = 0; k < K; k++) {
        r->window[k] = r->exchange.n_groups > 0 ? r->record.state_of_replica[k] : k;
        for (int l = 0; l < K; l++) {
            const thermo_state *w = &r->replicas.states[l];
            r->reduced[(size_t)k * K + l] =
                (r->u0[k] + w->lambda * r->du[k]) / (BOLTZMANN_EV_PER_K * w->temperature);
        }
    }
}

/* Copies the state of this step to the host buffers (synchronises). */
static int gather_frame(run *r, dm_error *err)
{
    if (r->dyn->get_state(r->dyn_impl, r->x, r->v, r->f, r->epot, r->ekin, err)) return -1;
    for (int k = 0; k < r->replicas.n_replicas; k++)
        r->temperature[k] = temperature_of(r->ekin[k], r->dof[k]);
    if (fetch_exchange(r, err)) return -1;
    free(r->frame_rung);
    r->frame_rung = NULL;
    if (r->exchange.n_groups > 0 && !(r->frame_rung = exchange_rungs(r, err))) return -1;
    if (r->sweep) sweep_observables(r);
    r->frame_step = r->step;
    r->frame_pending = 1;
    return 0;
}

/* Writes the gathered frame, if one is pending. */
static int emit_frame(run *r, dm_error *err)
{
    if (!r->frame_pending) return 0;
    const run_config *c = r->cfg;
    const void *extra[5];
    int n_extra = 0;
    if (r->exchange.n_groups > 0) {
        extra[n_extra++] = r->frame_rung;
        extra[n_extra++] = r->thermostat_T;
    }
    if (r->sweep) {
        extra[n_extra++] = r->window;
        extra[n_extra++] = r->du;
        extra[n_extra++] = r->reduced;
    }
    h5md_frame fr = {.step = r->frame_step,
                     .time_fs = r->frame_step * c->integrator.timestep_fs,
                     .positions = r->x,
                     .velocities = r->v,
                     .forces = r->f,
                     .potential_energy = r->epot,
                     .kinetic_energy = r->ekin,
                     .temperature = r->temperature,
                     .extra = extra};
    r->frame_pending = 0;
    if (h5md_write_frame(r->out, &fr, err)) return -1;
    long flush = c->output.flush_interval;
    if (flush > 0 && r->frame_step % flush == 0) return h5md_flush(r->out, err);
    return 0;
}

static int all_converged(const run *r)
{
    for (int k = 0; k < r->replicas.n_replicas; k++)
        if (!r->fire_state[k].converged) return 0;
    return 1;
}

static int advance(run *r, long n, dm_error *err)
{
    const run_config *c = r->cfg;
    switch (c->integrator.kind) {
    case INTEGRATOR_VERLET: return r->dyn->verlet(r->dyn_impl, n, c->integrator.timestep_fs, err);
    case INTEGRATOR_LANGEVIN:
        return r->dyn->langevin(r->dyn_impl, (uint64_t)r->step, n, c->integrator.timestep_fs,
                                c->integrator.friction_per_ps, c->seed, err);
    case INTEGRATOR_FIRE: return r->dyn->fire(r->dyn_impl, n, &r->fire, r->fire_state, err);
    }
    return dm_fail(err, "unknown integrator");
}

/* Steps to the next multiple of `every` after `step` (every <= 0: never). */
static long until_next(long step, long every)
{
    return every > 0 ? every - step % every : 0;
}

static long next_chunk(const run *r)
{
    const run_config *c = r->cfg;
    long n = c->steps - r->step;
    long events[] = {until_next(r->step, c->output.file[0] ? c->output.interval : 0),
                     until_next(r->step, c->checkpoint.file[0] ? c->checkpoint.interval : 0),
                     until_next(r->step, c->remove_com_interval),
                     until_next(r->step, r->exchange.n_groups ? r->exchange_interval : 0),
                     until_next(r->step, c->progress_interval > 0 ? c->progress_interval : 100)};
    for (size_t k = 0; k < sizeof events / sizeof *events; k++)
        if (events[k] > 0 && events[k] < n) n = events[k];
    return n;
}

static int on_events(run *r, dm_error *err)
{
    const run_config *c = r->cfg;
    long every = r->exchange_interval;
    if (r->exchange.n_groups > 0 && r->step % every == 0 &&
        r->dyn->exchange(r->dyn_impl, (uint64_t)(r->step / every), c->seed, err))
        return -1;
    if (c->remove_com_interval > 0 && r->step % c->remove_com_interval == 0 &&
        r->dyn->remove_com_motion(r->dyn_impl, err))
        return -1;
    if (r->out && r->step % c->output.interval == 0 && gather_frame(r, err)) return -1;
    if (c->checkpoint.file[0] && c->checkpoint.interval > 0 &&
        r->step % c->checkpoint.interval == 0 && write_checkpoint_after_flush(r, err))
        return -1;
    return 0;
}


static int main_loop(run *r, const run_options *opt, run_summary *sum, dm_error *err)
{
    const run_config *c = r->cfg;
    progress_meter pm;
    progress_start(&pm, r->step, c->steps, c->integrator.timestep_fs, opt->quiet);
    if (r->out && r->step % c->output.interval == 0 && !opt->restart && gather_frame(r, err))
        return -1;
    while (r->step < c->steps && !stop_requested) {
        if (c->integrator.kind == INTEGRATOR_FIRE && all_converged(r)) break;
        long n = next_chunk(r);
        if (advance(r, n, err)) return -1; /* on the GPU: enqueued, running */
        if (emit_frame(r, err)) return -1; /* meanwhile, the host writes the last frame */
        r->step += n;
        if (on_events(r, err)) return -1;
        progress_update(&pm, r->step);
    }
    progress_finish(&pm, r->step);
    if (emit_frame(r, err)) return -1;
    if (r->exchange.n_groups > 0) {
        if (fetch_exchange(r, err)) return -1;
        exchange_print_summary(stderr, &r->exchange, &r->record);
        if (r->out && write_exchange_statistics(r, err)) return -1;
    }
    sum->steps_done = r->step;
    sum->wall_seconds = pm.elapsed;
    sum->steps_per_second = pm.steps_per_second;
    if (stop_requested) {
        sum->interrupted = (int)stop_requested;
        fprintf(stderr, "distilmd: stopped by signal %d at step %ld; %s%s\n", (int)stop_requested,
                r->step, c->checkpoint.file[0] ? "checkpoint written to " : "no checkpoint file configured",
                c->checkpoint.file);
    }
    /* the final state is always checkpointed, so that a run can be extended */
    if (c->checkpoint.file[0] && write_checkpoint_after_flush(r, err)) return -1;
    return 0;
}

static void run_free(run *r)
{
    dm_error ignored;
    if (r->out) h5md_close(r->out, &ignored);
    if (r->dyn_impl) r->dyn->destroy(r->dyn_impl);
    replica_set_free(&r->replicas);
    run_hamiltonian_free(&r->hamiltonian);
    free(r->x);
    free(r->v);
    free(r->f);
    free(r->epot);
    free(r->ekin);
    free(r->temperature);
    free(r->thermostat_T);
    free(r->dof);
    free(r->fire_state);
    free(r->frame_rung);
    free(r->lambda);
    free(r->u0);
    free(r->du);
    free(r->window);
    free(r->reduced);
    exchange_record_free(&r->record);
    exchange_layout_free(&r->exchange);
}

int run_simulation(const run_config *cfg, const run_options *opt, run_summary *sum, dm_error *err)
{
    run r = {.cfg = cfg, .sweep = cfg->alchemical.mode != ALCHEMICAL_NONE};
    r.exchange_interval =
        r.sweep ? cfg->alchemical.exchange_interval : cfg->replica_exchange.interval;
    memset(sum, 0, sizeof *sum);
    int rc = replica_set_build(cfg, &r.replicas, err);
    if (rc == 0) rc = run_hamiltonian_build(cfg, &r.replicas, &r.hamiltonian, err);
    if (rc == 0) rc = (r.dyn = pick_dynamics(cfg->platform, err)) ? 0 : -1;
    if (rc == 0 && r.sweep && (!r.dyn->set_lambdas || !r.dyn->get_lambdas))
        rc = dm_fail(err, "platform '%s' cannot run λ sweeps in this build", r.dyn->platform);
    if (rc == 0) rc = alloc_buffers(&r, err);
    if (rc == 0) rc = replica_set_exchange_layout(cfg, &r.replicas, &r.exchange, err);
    if (rc == 0 && exchange_record_alloc(&r.record, &r.exchange)) rc = dm_fail(err, "out of memory");
    if (rc == 0) {
        sum->platform = r.dyn->platform;
        count_dof(&r);
        init_fire(&r);
        rc = r.dyn->create(&r.dyn_impl, &r.hamiltonian.h, &r.replicas.topology, r.replicas.masses,
                           err);
    }
    if (rc == 0) rc = initial_state(&r, opt, err);
    if (rc == 0) rc = open_output(&r, opt, err);
    if (rc == 0) {
        struct sigaction sa = {.sa_handler = on_stop_signal}, old_int, old_term;
        sigemptyset(&sa.sa_mask);
        stop_requested = 0;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        rc = main_loop(&r, opt, sum, err);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    if (rc == 0 && r.out) {
        rc = h5md_close(r.out, err);
        r.out = NULL;
    }
    run_free(&r);
    return rc;
}
