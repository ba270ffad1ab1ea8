#include "hamiltonian.h"
#include "../model/painn_reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

potential_term term_model(const painn_model *m, double c0, double c1)
{
    return (potential_term){.kind = TERM_MODEL, .c0 = c0, .c1 = c1, .model = m};
}

potential_term term_model_selection(const painn_model *m, int n_selected, const int *selected,
                                    double c0, double c1)
{
    return (potential_term){.kind = TERM_MODEL, .c0 = c0, .c1 = c1, .model = m,
                            .n_selected = n_selected, .selected = selected};
}

potential_term term_harmonic(double k, const double *reference_positions, double c0, double c1)
{
    return (potential_term){.kind = TERM_HARMONIC, .c0 = c0, .c1 = c1, .k = k,
                            .center = reference_positions};
}

potential_term term_flat_bottom(double k, double radius, const double *centers, double c0,
                                double c1)
{
    return (potential_term){.kind = TERM_FLAT_BOTTOM, .c0 = c0, .c1 = c1, .k = k,
                            .center = centers, .radius = radius};
}

int hamiltonian_add(hamiltonian *h, potential_term t, dm_error *err)
{
    if (h->n_terms >= HAMILTONIAN_MAX_TERMS)
        return dm_fail(err, "a hamiltonian holds at most %d terms", HAMILTONIAN_MAX_TERMS);
    h->terms[h->n_terms++] = t;
    return 0;
}

int hamiltonian_has_lambda(const hamiltonian *h)
{
    for (int t = 0; t < h->n_terms; t++)
        if (h->terms[t].c1 != 0) return 1;
    return 0;
}

int hamiltonian_check(const hamiltonian *h, const molecule_batch *b, dm_error *err)
{
    for (int t = 0; t < h->n_terms; t++) {
        const potential_term *p = &h->terms[t];
        if (p->kind == TERM_MODEL && !p->model)
            return dm_fail(err, "hamiltonian term %d: a model term without a model", t);
        if (p->kind != TERM_MODEL && !p->center)
            return dm_fail(err, "hamiltonian term %d: a restraint without its centre", t);
        if (p->kind != TERM_MODEL || p->n_selected == 0) continue;
        for (int r = 0; r < b->n_molecules; r++) {
            int n = b->offset[r + 1] - b->offset[r];
            for (int k = 0; k < p->n_selected; k++)
                if (p->selected[k] < 0 || p->selected[k] >= n)
                    return dm_fail(err, "hamiltonian term %d: selected atom %d is not in replica "
                                   "%d, which has %d atoms", t, p->selected[k], r, n);
        }
    }
    return 0;
}

/* U = k/2 |x - x0|^2 per atom, F = -k (x - x0). */
static void harmonic(const potential_term *p, const molecule_batch *b, const double *x, double *e,
                     double *f)
{
    for (int r = 0; r < b->n_molecules; r++)
        for (int i = b->offset[r]; i < b->offset[r + 1]; i++)
            for (int c = 0; c < 3; c++) {
                double dx = x[3 * i + c] - p->center[3 * i + c];
                e[r] += 0.5 * p->k * dx * dx;
                f[3 * i + c] = -p->k * dx;
            }
}

/* U = k/2 (d - R)^2 for d = |x - c_r| > R, F = -k (d - R) (x - c_r)/d. */
static void flat_bottom(const potential_term *p, const molecule_batch *b, const double *x,
                        double *e, double *f)
{
    for (int r = 0; r < b->n_molecules; r++) {
        const double *c = p->center + 3 * r;
        for (int i = b->offset[r]; i < b->offset[r + 1]; i++) {
            double d[3], d2 = 0;
            for (int k = 0; k < 3; k++) {
                d[k] = x[3 * i + k] - c[k];
                d2 += d[k] * d[k];
            }
            double dist = sqrt(d2);
            if (!(dist > p->radius)) continue;
            double stretch = dist - p->radius;
            e[r] += 0.5 * p->k * stretch * stretch;
            for (int k = 0; k < 3; k++) f[3 * i + k] = -p->k * stretch * d[k] / dist;
        }
    }
}

/* The selected atoms of every replica as a batch of one molecule per
 * replica: molecule r is (selected[0], selected[1], ...) of replica r. */
static int model_selection(const potential_term *p, const molecule_batch *b, const double *x,
                           double *e, double *f, dm_error *err)
{
    int R = b->n_molecules, n = p->n_selected;
    int *sizes = malloc(sizeof(int) * ((size_t)R + 1));
    molecule_batch sub = {0};
    if (!sizes) return dm_fail(err, "out of memory");
    for (int r = 0; r < R; r++) sizes[r] = n;
    int rc = molecule_batch_alloc(&sub, R, sizes, err);
    free(sizes);
    double *fs = rc ? NULL : malloc(sizeof(double) * (3 * (size_t)sub.n_atoms + 1));
    if (rc == 0 && !fs) rc = dm_fail(err, "out of memory");
    if (rc == 0) {
        for (int r = 0; r < R; r++)
            for (int k = 0; k < n; k++) {
                int from = b->offset[r] + p->selected[k], to = sub.offset[r] + k;
                sub.species[to] = b->species[from];
                memcpy(&sub.positions[3 * to], &x[3 * from], 3 * sizeof(double));
            }
        rc = painn_reference_compute(p->model, &sub, sub.positions, e, fs, err);
    }
    if (rc == 0)
        for (int r = 0; r < R; r++)
            for (int k = 0; k < n; k++)
                memcpy(&f[3 * (b->offset[r] + p->selected[k])], &fs[3 * (sub.offset[r] + k)],
                       3 * sizeof(double));
    free(fs);
    molecule_batch_free(&sub);
    return rc;
}

/* One term's energies e[R] and forces f[3N] (both zeroed first). The
 * reference evaluates each model term by itself; CUDA batches the model
 * terms of one model into one call. */
static int term_compute(const potential_term *p, const molecule_batch *b, const double *x,
                        double *e, double *f, dm_error *err)
{
    memset(e, 0, sizeof(double) * b->n_molecules);
    memset(f, 0, sizeof(double) * 3 * b->n_atoms);
    switch (p->kind) {
    case TERM_MODEL:
        if (p->n_selected == 0) return painn_reference_compute(p->model, b, x, e, f, err);
        return model_selection(p, b, x, e, f, err);
    case TERM_HARMONIC: harmonic(p, b, x, e, f); return 0;
    case TERM_FLAT_BOTTOM: flat_bottom(p, b, x, e, f); return 0;
    }
    return dm_fail(err, "unknown hamiltonian term kind %d", (int)p->kind);
}

/* acc += c v over n values */
static void add_scaled(size_t n, double c, const double *v, double *acc)
{
    for (size_t i = 0; i < n; i++) acc[i] += c * v[i];
}

int hamiltonian_reference_compute(const hamiltonian *h, const molecule_batch *b, const double *x,
                                  double *u0, double *du, double *f0, double *f1, dm_error *err)
{
    size_t R = (size_t)b->n_molecules, n3 = 3 * (size_t)b->n_atoms;
    double *e = malloc(sizeof(double) * (R + 1)), *f = malloc(sizeof(double) * (n3 + 1));
    int rc = e && f ? 0 : dm_fail(err, "out of memory");
    memset(u0, 0, sizeof(double) * R);
    memset(du, 0, sizeof(double) * R);
    if (f0) memset(f0, 0, sizeof(double) * n3);
    if (f1) memset(f1, 0, sizeof(double) * n3);
    for (int t = 0; rc == 0 && t < h->n_terms; t++) {
        const potential_term *p = &h->terms[t];
        rc = term_compute(p, b, x, e, f, err);
        if (rc) break;
        add_scaled(R, p->c0, e, u0);
        add_scaled(R, p->c1, e, du);
        if (f0) add_scaled(n3, p->c0, f, f0);
        if (f1) add_scaled(n3, p->c1, f, f1);
    }
    free(e);
    free(f);
    return rc;
}

void hamiltonian_combine(const molecule_batch *b, const double *lambda, const double *u0,
                         const double *du, const double *f0, const double *f1, double *energies,
                         double *forces)
{
    for (int r = 0; r < b->n_molecules; r++) {
        energies[r] = u0[r] + lambda[r] * du[r];
        if (!forces) continue;
        for (int k = 3 * b->offset[r]; k < 3 * b->offset[r + 1]; k++)
            forces[k] = f0[k] + lambda[r] * f1[k];
    }
}
