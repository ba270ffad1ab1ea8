/* fire.c — Fast Inertial Relaxation Engine (Bitzek et al. 2006), one replica
 * at a time. A minimiser needs no real dynamics: every atom gets the same
 * fictitious mass m = 1 amu (as ASE's FIRE does), time steps are in fs:
 *   P = F.v;  P > 0: v <- (1 - alpha) v + alpha |v| F/|F|, and after n_min
 *                    such steps dt <- min(f_inc dt, dt_max), alpha <- f_alpha alpha
 *             P <= 0: v <- 0, dt <- f_dec dt, alpha <- alpha_start
 *   v <- v + dt F/m (m = 1 amu);  dx = dt v, each atom's |dx| capped at max_step;  x <- x + dx */
#include "integrators.h"
#include "units.h"

#include <math.h>

double max_force_component(const molecule_batch *b, int r, const double *forces)
{
    double m = 0;
    for (int k = 3 * b->offset[r]; k < 3 * b->offset[r + 1]; k++) m = fmax(m, fabs(forces[k]));
    return m;
}

void fire_update(const molecule_batch *b, int r, const double *forces,
                 const fire_params *p, fire_state *s, double *v, double *x)
{
    int lo = 3 * b->offset[r], hi = 3 * b->offset[r + 1];
    if (s->converged || max_force_component(b, r, forces) < p->force_tolerance) {
        s->converged = 1;
        for (int k = lo; k < hi; k++) v[k] = 0.0;
        return;
    }
    double P = 0, vv = 0, ff = 0;
    for (int k = lo; k < hi; k++) {
        P += forces[k] * v[k];
        vv += v[k] * v[k];
        ff += forces[k] * forces[k];
    }
    if (P > 0) {
        double scale = s->alpha * sqrt(vv / ff);
        for (int k = lo; k < hi; k++) v[k] = (1 - s->alpha) * v[k] + scale * forces[k];
        if (++s->n_positive > p->n_min) {
            s->dt = fmin(s->dt * p->f_inc, p->dt_max);
            s->alpha *= p->f_alpha;
        }
    } else {
        for (int k = lo; k < hi; k++) v[k] = 0.0;
        s->dt *= p->f_dec;
        s->alpha = p->alpha_start;
        s->n_positive = 0;
    }
    for (int i = b->offset[r]; i < b->offset[r + 1]; i++) {
        double a = EV_PER_A_AMU_IN_A_PER_FS2, dx[3], len2 = 0; /* m = 1 amu */
        for (int c = 0; c < 3; c++) {
            v[3 * i + c] += s->dt * a * forces[3 * i + c];
            dx[c] = s->dt * v[3 * i + c];
            len2 += dx[c] * dx[c];
        }
        double cap = len2 > p->max_step * p->max_step ? p->max_step / sqrt(len2) : 1.0;
        for (int c = 0; c < 3; c++) x[3 * i + c] += cap * dx[c];
    }
}
