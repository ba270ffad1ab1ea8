/* hamiltonian.h — the potential energy of a run as a sum of terms, each
 * weighted linearly in the replica's coupling parameter λ:
 *
 *   U_λ(x) = Σ_t (c0_t + λ c1_t) U_t(x) = U_0(x) + λ ΔU(x),
 *       U_0 = Σ_t c0_t U_t,   ΔU = dU_λ/dλ = Σ_t c1_t U_t,
 *   F_λ(x) = Σ_t (c0_t + λ c1_t) F_t(x) = F_0(x) + λ F_1(x).
 *
 * λ is per replica (a λ window of a free-energy sweep); a plain run has one
 * model term with c0 = 1, c1 = 0 and λ = 0. The terms (energies per replica,
 * Σ over the replica's atoms):
 *   TERM_MODEL        the student model; with a selection, the selected atoms
 *                     of each replica evaluated as one molecule by themselves
 *                     (the others do not see them; their forces are 0)
 *   TERM_HARMONIC     Σ_i k/2 |x_i - x0_i|^2, x0 the reference positions of
 *                     every atom of the batch
 *   TERM_FLAT_BOTTOM  Σ_i k/2 (|x_i - c_r| - R)^2 over the atoms with
 *                     |x_i - c_r| > R, else 0 (a spherical harmonic wall of
 *                     radius R about replica r's centre c_r); its force
 *                     F_i = -k (d_i - R) (x_i - c_r)/d_i, d_i = |x_i - c_r|.
 * Alchemical modes as terms (see docs/config.md):
 *   interpolate A -> B:  A (1, -1), B (0, 1):  U_λ = (1 - λ) U_A + λ U_B
 *   decouple solute S from the rest E of a cluster, one model M:
 *                        M(all) (0, 1), M(S) (1, -1), M(E) (1, -1):
 *                        U_λ = U(S) + U(E) + λ [U(all) - U(S) - U(E)]
 * Each term has a reference (hamiltonian.c) and a CUDA implementation; the
 * CUDA platform evaluates the model terms of one model as one batched call
 * (three structures of the same batch for decouple). */
#ifndef DISTILMD_HAMILTONIAN_H
#define DISTILMD_HAMILTONIAN_H

#include "../core/error.h"
#include "../core/molecules.h"
#include "../model/painn_model.h"

#define HAMILTONIAN_MAX_TERMS 8

typedef enum term_kind { TERM_MODEL, TERM_HARMONIC, TERM_FLAT_BOTTOM } term_kind;

typedef struct potential_term {
    term_kind kind;
    double c0, c1;            /* the term's weight is c0 + λ c1 */
    /* TERM_MODEL */
    const painn_model *model;
    int n_selected;           /* 0: every atom of each replica */
    const int *selected;      /* [n_selected]: atom indices within each replica
                                 (0-based, distinct), the molecule the model sees */
    /* TERM_HARMONIC and TERM_FLAT_BOTTOM */
    double k;                 /* eV/Å^2 */
    const double *center;     /* harmonic: [n_atoms*3] reference positions of the
                                 whole batch (Å); flat-bottom: [n_replicas*3] the
                                 centre of each replica's sphere (Å) */
    double radius;            /* flat-bottom: R (Å) */
} potential_term;

typedef struct hamiltonian {
    int n_terms;
    potential_term terms[HAMILTONIAN_MAX_TERMS];
} hamiltonian;

/* Terms, for building a hamiltonian. */
potential_term term_model(const painn_model *m, double c0, double c1);
potential_term term_model_selection(const painn_model *m, int n_selected, const int *selected,
                                    double c0, double c1);
potential_term term_harmonic(double k, const double *reference_positions, double c0, double c1);
potential_term term_flat_bottom(double k, double radius, const double *centers, double c0,
                                double c1);
/* Appends t; fails when the hamiltonian already has HAMILTONIAN_MAX_TERMS. */
int hamiltonian_add(hamiltonian *h, potential_term t, dm_error *err);
/* 1 when some term depends on λ (a c1 != 0). */
int hamiltonian_has_lambda(const hamiltonian *h);
/* Checks the terms against a batch: selections within every replica's atoms. */
int hamiltonian_check(const hamiltonian *h, const molecule_batch *b, dm_error *err);

/* Reference evaluation at positions x: per replica U_0 and ΔU (eV), per atom
 * F_0 and F_1 (eV/Å; either may be NULL). */
int hamiltonian_reference_compute(const hamiltonian *h, const molecule_batch *b, const double *x,
                                  double *u0, double *du, double *f0, double *f1, dm_error *err);
/* U_λ = U_0 + λ_r ΔU and F_λ = F_0 + λ_r F_1 for each replica r (forces and
 * f0/f1 may be NULL). */
void hamiltonian_combine(const molecule_batch *b, const double *lambda, const double *u0,
                         const double *du, const double *f0, const double *f1, double *energies,
                         double *forces);

#endif
