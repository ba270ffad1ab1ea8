/* fe_analysis.h — ΔF between the first and the last λ window by TI, BAR and
 * MBAR, with uncertainties, from the samples of fe_input.h
 * (docs/free-energy.md has the formulas and the validation).
 *
 * Per window k (the samples (t, r) with window[t, r] = k):
 *   time series  when every frame has the same number m_k of replicas in
 *                window k (always so under neighbour exchange, which
 *                conserves the counts), the window has m_k parallel series of
 *                F frames: series j holds the sample of the j-th replica (by
 *                index) in window k at each frame; otherwise one series of
 *                all its samples in (frame, replica) order.
 *   g_k          the statistical inefficiency of dU/dλ over those series
 *                (timeseries.h). For a Hamiltonian linear in λ every
 *                u_l - u_k is proportional to dU/dλ, so this g is also the
 *                correlation of the BAR/MBAR energy differences.
 *   mean, sem    <dU/dλ>_k over all the samples, sem² = var g_k / N_k
 *                (var: unbiased sample variance); and the block-average
 *                standard error (n_blocks blocks of consecutive samples).
 *
 * Frame series (when every window has a fixed number of replicas per
 * frame): the TI integrand of frame t,
 *     A_t = sum_k w_k <dU/dλ>_{k,t} / (k_B T_k)   (w_k: trapezoid weights),
 * whose mean over the frames is the TI estimate, and g_A its statistical
 * inefficiency. A replica that moves between windows (exchange) carries
 * its correlation from window to window, which the windows' own series do
 * not see (their g_k is too small and their means are correlated); A_t
 * sees it.
 *
 *   TI           trapezoid of the means / kT (ti.h); one temperature only.
 *                σ² = var(A) g_A / F with a frame series (block averages of
 *                A_t for the block σ); else sum_k w_k² sem_k² (block σ:
 *                the windows' block errors the same way). Without exchange
 *                both agree (A's autocorrelation is the w_k² var_k-weighted
 *                mix of the windows'); the latter is kept as ti_sigma_windows.
 *   subsampling  BAR and MBAR by default use decorrelated samples: each
 *                series of window k taken at the indices round(n s_k)
 *                (pymbar's subsampleCorrelatedData) with stride s_k = g_k,
 *                or max(g_k, g_A) when replicas change windows; as pymbar
 *                users do, so that the asymptotic variances (which assume
 *                independent samples) hold. options.subsample = 0 uses every
 *                sample (the errors are then too small by about sqrt(g)).
 *   BAR          between windows k and k+1 (bar.h); the total is the sum, with
 *                σ² = sum_k σ²_k + 2 sum_k Cov(ΔF_{k-1,k}, ΔF_{k,k+1}): neighbouring
 *                pairs share a window's samples and are positively correlated
 *                (bar_chain_covariance); the plain sum of the variances, which
 *                underestimates σ, is kept as bar_sigma_independent.
 *   MBAR         over all windows at once (mbar.h), started from the
 *                cumulative BAR estimates; ΔF = f_{K-1} - f_0 with δ from Θ.
 *   overlap      the MBAR overlap matrix; a pair with O_{k,k+1} or O_{k+1,k}
 *                below FE_POOR_OVERLAP is poor (too few shared
 *                configurations for BAR/MBAR to be reliable). */
#ifndef DISTILMD_ANALYSIS_FE_ANALYSIS_H
#define DISTILMD_ANALYSIS_FE_ANALYSIS_H

#include "bar.h"
#include "fe_input.h"

#define FE_POOR_OVERLAP 0.03
#define FE_DEFAULT_BLOCKS 10
/* k_B in kcal/(mol K) (CODATA 2018 R / 4184 J/kcal) */
#define BOLTZMANN_KCAL_PER_MOL_K 0.0019872043

typedef struct fe_options {
    int subsample;  /* 1 (default): BAR and MBAR on decorrelated samples */
    int n_blocks;   /* blocks for the TI block-average error (>= 2) */
} fe_options;

/* A ΔF (kT) with its standard deviation; available = 0 when it could not be
 * computed (why: `note`). */
typedef struct fe_estimate {
    int available;
    double delta_f, sigma;
    char note[160];
} fe_estimate;

typedef struct fe_window {
    double lambda, temperature; /* K */
    double kt_ev;               /* k_B T, eV */
    long n_samples;             /* all the window's samples */
    int n_series;               /* parallel series (m_k; 1 for an irregular window) */
    int regular;                /* 0: the count per frame varied (one series) */
    double g;                   /* statistical inefficiency of dU/dλ */
    double stride;              /* the subsampling stride (g, or more under exchange) */
    long n_used;                /* samples given to BAR and MBAR */
    double mean_ev;             /* <dU/dλ>, eV */
    double sem_ev;              /* its standard error from g, eV */
    double block_sem_ev;        /* from block averages, eV (NaN: too few samples) */
} fe_window;

typedef struct fe_result {
    int n_windows;
    fe_window *window;          /* [K] */
    int single_temperature;     /* 1: every window at the same T */
    double temperature;         /* that T, K (else the first window's) */
    int exchange;               /* 1: some replica changes windows */
    int frame_series;           /* 1: every window has a fixed number of replicas per frame */
    double g_frames;            /* g of the TI integrand per frame (NaN without frame_series) */
    fe_estimate ti;             /* σ from g (the frame series' when there is one) */
    fe_estimate ti_block;       /* the same ΔF, σ from block averages */
    double ti_sigma_windows;    /* σ from the windows' errors through the weights */
    fe_estimate bar;            /* sum over neighbouring pairs; σ with their covariance */
    double bar_sigma_independent; /* σ of the sum as if the pairs were independent */
    fe_estimate mbar;
    bar_result *pair;           /* [K-1]: BAR between windows k and k+1 */
    double *mbar_f;             /* [K] f_k, f_0 = 0 */
    double *mbar_df, *mbar_ddf; /* [K*K] f_j - f_i and its σ */
    double *overlap;            /* [K*K] */
    int mbar_iterations;
    int n_poor_overlap;         /* neighbouring pairs below FE_POOR_OVERLAP */
} fe_result;

/* Fills defaults: subsample 1, n_blocks FE_DEFAULT_BLOCKS. */
void fe_options_default(fe_options *o);

/* The whole analysis. Fails (naming the window) when a window has fewer than
 * 2 samples, or when BAR or MBAR fail. *r is zeroed first; release it with
 * fe_result_free, also after a failure. */
int fe_analyze(const fe_samples *s, const fe_options *o, fe_result *r, dm_error *err);

void fe_result_free(fe_result *r);

#endif
