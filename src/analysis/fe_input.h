/* fe_input.h — the samples of a λ-window free-energy run, read from the
 * H5MD file the simulation writes (docs/free-energy.md):
 *
 *   /parameters/lambda/lambdas            [K]        float64, strictly monotonic
 *   /parameters/lambda/temperature        [K]        float64, K (each window's)
 *   /observables/window/value             [F, R]     int64, the window (0..K-1)
 *                                                    of replica r at frame t
 *   /observables/reduced_potential/value  [F, R, K]  float64, u_l(x_{t,r}) =
 *                                                    U_l(x) / (k_B T_l) in window l
 *   /observables/dU_dlambda/value         [F, R]     float64, eV
 *   /observables/dU_dlambda/step, time    [F]        (optional) the frames'
 *                                                    step and time (ps); time is
 *                                                    needed for a discard in ps
 *
 * Sample (t, r) belongs to window window[t, r] (replicas may change windows
 * under Hamiltonian replica exchange). When the step dataset exists, its
 * length is the number of whole frames (a frame cut short by a crash has
 * values but no step) and the value datasets may be longer; otherwise their
 * first dimensions must agree. */
#ifndef DISTILMD_ANALYSIS_FE_INPUT_H
#define DISTILMD_ANALYSIS_FE_INPUT_H

#include "../core/error.h"

#include <stdint.h>

#define FE_LAMBDAS "/parameters/lambda/lambdas"
#define FE_TEMPERATURE "/parameters/lambda/temperature"
#define FE_WINDOW "/observables/window/value"
#define FE_REDUCED_POTENTIAL "/observables/reduced_potential/value"
#define FE_DU_DLAMBDA "/observables/dU_dlambda/value"
#define FE_STEP "/observables/dU_dlambda/step"
#define FE_TIME "/observables/dU_dlambda/time"

typedef struct fe_samples {
    int n_windows;             /* K >= 2 */
    long n_frames;             /* F: the frames kept (after the discarded ones) */
    long n_replicas;           /* R */
    long first_frame;          /* frames discarded at the start */
    long file_frames;          /* whole frames in the file */
    double *lambda;            /* [K] */
    double *temperature;       /* [K], K */
    int64_t *window;           /* [F*R] */
    double *reduced_potential; /* [(F*R)*K]: sample t*R + r, window l */
    double *du_dlambda;        /* [F*R], eV */
} fe_samples;

/* Which leading frames to drop (equilibration): discard_frames frames, or,
 * when discard_ps >= 0, the frames with time - time[0] < discard_ps (this
 * needs the time dataset). Both 0 / negative: keep everything. */
typedef struct fe_discard {
    long frames;
    double ps;   /* < 0: not used */
} fe_discard;

/* Reads and checks the file; every error names the file and the dataset
 * (and the frame/replica/window of a bad value). *s is zeroed first and
 * must be released with fe_samples_free, also after a failure. */
int fe_samples_read(fe_samples *s, const char *path, const fe_discard *discard, dm_error *err);

/* Checks the values of *s (window indices in range, λ strictly monotonic,
 * temperatures positive, u neither NaN nor -inf, dU/dλ finite); `source`
 * names where they came from in the messages. */
int fe_samples_check(const fe_samples *s, const char *source, dm_error *err);

void fe_samples_free(fe_samples *s);

#endif
