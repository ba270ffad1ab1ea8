/* cmd_analyze.c — `distilmd analyze FILE.h5`: the free-energy difference of
 * a λ-window run by TI, BAR and MBAR (src/analysis, docs/free-energy.md):
 * a table on stdout, optionally everything as JSON. */
#define _POSIX_C_SOURCE 200809L

#include "commands.h"

#include "analysis/fe_analysis.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void analyze_usage(FILE *f)
{
    fprintf(f,
            "usage: distilmd analyze FILE.h5 [--discard-frames N | --discard-ps T] [--json OUT]\n"
            "                        [--all-samples] [--blocks B]\n"
            "\n"
            "The free-energy difference between the first and the last λ window of a\n"
            "λ-window run (FILE.h5, docs/free-energy.md) by thermodynamic integration\n"
            "(trapezoid), BAR between neighbouring windows and MBAR over all windows, each\n"
            "with its standard deviation, in kT and kcal/mol; per window the number of\n"
            "samples, the statistical inefficiency g and <dU/dλ>; per pair of neighbours\n"
            "the BAR ΔF and the MBAR overlap, with a warning when it is below %.2f.\n"
            "  --discard-frames N  leave out the first N frames (equilibration)\n"
            "  --discard-ps T      leave out the frames in the first T ps\n"
            "  --json OUT          also write every number to OUT as JSON\n"
            "  --all-samples       BAR and MBAR on every sample; by default each window's\n"
            "                      samples are subsampled with stride g (decorrelated), as\n"
            "                      the asymptotic error estimates assume\n"
            "  --blocks B          blocks for the block-average TI error (default %d)\n"
            "  -h, --help          this text\n",
            FE_POOR_OVERLAP, FE_DEFAULT_BLOCKS);
}

typedef struct analyze_args {
    const char *input, *json;
    fe_discard discard;
    fe_options options;
} analyze_args;

static int parse_long(const char *text, long *value)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 0) return -1;
    *value = v;
    return 0;
}

static int parse_args(int argc, char **argv, analyze_args *a)
{
    enum { OPT_FRAMES = 1000, OPT_PS, OPT_JSON, OPT_ALL, OPT_BLOCKS };
    static const struct option LONG[] = {
        {"discard-frames", required_argument, NULL, OPT_FRAMES},
        {"discard-ps", required_argument, NULL, OPT_PS},
        {"json", required_argument, NULL, OPT_JSON},
        {"all-samples", no_argument, NULL, OPT_ALL},
        {"blocks", required_argument, NULL, OPT_BLOCKS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->discard.ps = -1.0;
    fe_options_default(&a->options);
    int have_frames = 0, have_ps = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", LONG, NULL)) != -1) {
        char *end;
        long blocks;
        switch (c) {
        case 'h':
            analyze_usage(stdout);
            return 1;
        case OPT_FRAMES:
            if (parse_long(optarg, &a->discard.frames)) {
                fprintf(stderr, "distilmd analyze: --discard-frames '%s': expected a whole "
                        "number >= 0\n", optarg);
                return 2;
            }
            have_frames = 1;
            break;
        case OPT_PS:
            errno = 0;
            a->discard.ps = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(a->discard.ps >= 0.0) ||
                !isfinite(a->discard.ps)) {
                fprintf(stderr, "distilmd analyze: --discard-ps '%s': expected a time in ps "
                        ">= 0\n", optarg);
                return 2;
            }
            have_ps = 1;
            break;
        case OPT_JSON: a->json = optarg; break;
        case OPT_ALL: a->options.subsample = 0; break;
        case OPT_BLOCKS:
            if (parse_long(optarg, &blocks) || blocks < 2 || blocks > 1000000) {
                fprintf(stderr, "distilmd analyze: --blocks '%s': expected a whole number "
                        ">= 2\n", optarg);
                return 2;
            }
            a->options.n_blocks = (int)blocks;
            break;
        default:
            fprintf(stderr, "distilmd analyze: unknown or incomplete option '%s'\n\n",
                    argv[optind - 1]);
            analyze_usage(stderr);
            return 2;
        }
    }
    if (have_frames && have_ps) {
        fprintf(stderr, "distilmd analyze: give --discard-frames or --discard-ps, not both\n");
        return 2;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "distilmd analyze: expected one input file\n\n");
        analyze_usage(stderr);
        return 2;
    }
    a->input = argv[optind];
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The table. */

static double kt_kcal(const fe_result *r)
{
    return BOLTZMANN_KCAL_PER_MOL_K * r->temperature;
}

static void print_header(const fe_samples *s, const fe_result *r, const analyze_args *a)
{
    printf("distilmd analyze: %s\n", a->input);
    printf("  %d windows, λ %g .. %g; %ld frames x %ld replicas analysed", s->n_windows,
           s->lambda[0], s->lambda[s->n_windows - 1], s->n_frames, s->n_replicas);
    if (s->first_frame > 0)
        printf(" (the first %ld of %ld frames discarded)", s->first_frame, s->file_frames);
    printf("\n");
    if (r->single_temperature)
        printf("  every window at T = %.2f K: kT = %.6f kcal/mol\n", r->temperature, kt_kcal(r));
    else
        printf("  the windows are at different temperatures: ΔF is given in units of the "
               "reduced potentials (no kcal/mol, no TI)\n");
    if (r->exchange)
        printf("  replicas change windows (exchange)%s\n",
               r->frame_series ? "; subsampling strides are at least the g of the per-frame TI "
                                 "integrand" : "");
    if (a->options.subsample)
        printf("  BAR and MBAR on decorrelated samples (each window subsampled with stride "
               "g); TI on every sample\n");
    else
        printf("  BAR and MBAR on every sample (--all-samples: their σ ignore "
               "correlation); TI on every sample\n");
    if (r->frame_series)
        printf("  TI σ² = var(A)·g_A/F of the per-frame TI integrand A_t (g_A = %.2f); "
               "window sem² = var·g/N\n", r->g_frames);
    else
        printf("  TI σ² = sum_k w_k² var_k·g_k/N_k (windows' errors through the trapezoid "
               "weights)\n");
}

static void print_windows(const fe_result *r)
{
    printf("\nwindow    lambda      T/K        N series        g   stride   N_used    "
           "<dU/dl>/eV  <dU/dl>/kT   sem(g)/kT sem(blk)/kT\n");
    for (int k = 0; k < r->n_windows; k++) {
        const fe_window *w = &r->window[k];
        printf("%6d %9.4f %8.2f %8ld %6d%s %8.2f %8.2f %8ld %13.6e %11.5f %11.5f %11.5f\n", k,
               w->lambda, w->temperature, w->n_samples, w->n_series, w->regular ? " " : "*",
               w->g, w->stride, w->n_used, w->mean_ev, w->mean_ev / w->kt_ev,
               w->sem_ev / w->kt_ev, w->block_sem_ev / w->kt_ev);
    }
    for (int k = 0; k < r->n_windows; k++)
        if (!r->window[k].regular) {
            printf("  * the number of replicas in this window varies between frames: its "
                   "samples are taken as one series in (frame, replica) order\n");
            break;
        }
}

static void print_pairs(const fe_result *r)
{
    int K = r->n_windows;
    printf("\n   pair    BAR dF/kT       sd/kT   O(k,k+1)   O(k+1,k)\n");
    for (int k = 0; k + 1 < K; k++) {
        double o_fw = r->overlap[k * K + k + 1], o_bw = r->overlap[(k + 1) * K + k];
        int poor = o_fw < FE_POOR_OVERLAP || o_bw < FE_POOR_OVERLAP;
        printf("%3d-%-3d %12.5f %11.5f %10.4f %10.4f%s\n", k, k + 1, r->pair[k].delta_f,
               r->pair[k].sigma, o_fw, o_bw, poor ? "  poor" : "");
    }
}

static void print_estimate(const char *name, const fe_estimate *e, const fe_result *r)
{
    if (!e->available) {
        printf("  %-12s %s\n", name, e->note);
        return;
    }
    printf("  %-12s %12.5f ± %.5f kT", name, e->delta_f, e->sigma);
    if (r->single_temperature)
        printf("   %12.5f ± %.5f kcal/mol", e->delta_f * kt_kcal(r), e->sigma * kt_kcal(r));
    printf("\n");
}

static void print_summary(const fe_result *r)
{
    printf("\nΔF = F(λ = %g) - F(λ = %g) ± σ:\n", r->window[r->n_windows - 1].lambda,
           r->window[0].lambda);
    print_estimate("TI", &r->ti, r);
    print_estimate("TI (blocks)", &r->ti_block, r);
    print_estimate("BAR", &r->bar, r);
    print_estimate("MBAR", &r->mbar, r);
}

static void print_warnings(const fe_result *r)
{
    int K = r->n_windows;
    for (int k = 0; k + 1 < K; k++) {
        double o_fw = r->overlap[k * K + k + 1], o_bw = r->overlap[(k + 1) * K + k];
        if (o_fw < FE_POOR_OVERLAP || o_bw < FE_POOR_OVERLAP)
            printf("warning: poor overlap between windows %d and %d (O(%d,%d) = %.4f, "
                   "O(%d,%d) = %.4f, below %.2f): BAR and MBAR are unreliable there; add "
                   "windows between λ = %g and %g or sample longer\n",
                   k, k + 1, k, k + 1, o_fw, k + 1, k, o_bw, FE_POOR_OVERLAP,
                   r->window[k].lambda, r->window[k + 1].lambda);
    }
}

/* ------------------------------------------------------------------------ */
/* JSON. */

static void json_number(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, "%.17g", x);
    else fprintf(f, "null");
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void json_vector(FILE *f, const double *x, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        json_number(f, x[i]);
    }
    fputc(']', f);
}

static void json_matrix(FILE *f, const double *x, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputs(",\n    ", f);
        json_vector(f, x + (long)i * n, n);
    }
    fputc(']', f);
}

static void json_estimate(FILE *f, const char *name, const fe_estimate *e, const fe_result *r)
{
    fprintf(f, "  \"%s\": {\"available\": %s, \"delta_f_kt\": ", name, e->available ? "true" : "false");
    json_number(f, e->available ? e->delta_f : NAN);
    fprintf(f, ", \"sigma_kt\": ");
    json_number(f, e->available ? e->sigma : NAN);
    fprintf(f, ", \"delta_f_kcal_per_mol\": ");
    json_number(f, e->available && r->single_temperature ? e->delta_f * kt_kcal(r) : NAN);
    fprintf(f, ", \"sigma_kcal_per_mol\": ");
    json_number(f, e->available && r->single_temperature ? e->sigma * kt_kcal(r) : NAN);
    fprintf(f, ", \"note\": ");
    json_string(f, e->note);
    fprintf(f, "},\n");
}

static int write_json(const char *path, const fe_samples *s, const fe_result *r,
                      const analyze_args *a)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "distilmd analyze: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int K = r->n_windows;
    fprintf(f, "{\n  \"file\": ");
    json_string(f, a->input);
    fprintf(f, ",\n  \"n_windows\": %d, \"n_frames\": %ld, \"n_replicas\": %ld, "
            "\"first_frame\": %ld, \"file_frames\": %ld,\n", K, s->n_frames, s->n_replicas,
            s->first_frame, s->file_frames);
    fprintf(f, "  \"subsampled\": %s, \"n_blocks\": %d, \"single_temperature\": %s, "
            "\"temperature_k\": ", a->options.subsample ? "true" : "false", a->options.n_blocks,
            r->single_temperature ? "true" : "false");
    json_number(f, r->temperature);
    fprintf(f, ", \"kt_kcal_per_mol\": ");
    json_number(f, r->single_temperature ? kt_kcal(r) : NAN);
    fprintf(f, ",\n  \"exchange\": %s, \"frame_series\": %s, \"g_frames\": ",
            r->exchange ? "true" : "false", r->frame_series ? "true" : "false");
    json_number(f, r->g_frames);
    fprintf(f, ",\n  \"windows\": [\n");
    for (int k = 0; k < K; k++) {
        const fe_window *w = &r->window[k];
        fprintf(f, "    {\"lambda\": ");
        json_number(f, w->lambda);
        fprintf(f, ", \"temperature_k\": ");
        json_number(f, w->temperature);
        fprintf(f, ", \"n_samples\": %ld, \"n_series\": %d, \"regular\": %s, \"g\": ",
                w->n_samples, w->n_series, w->regular ? "true" : "false");
        json_number(f, w->g);
        fprintf(f, ", \"stride\": ");
        json_number(f, w->stride);
        fprintf(f, ", \"n_used\": %ld, \"mean_du_dlambda_ev\": ", w->n_used);
        json_number(f, w->mean_ev);
        fprintf(f, ", \"sem_ev\": ");
        json_number(f, w->sem_ev);
        fprintf(f, ", \"block_sem_ev\": ");
        json_number(f, w->block_sem_ev);
        fprintf(f, ", \"mean_du_dlambda_kt\": ");
        json_number(f, w->mean_ev / w->kt_ev);
        fprintf(f, ", \"sem_kt\": ");
        json_number(f, w->sem_ev / w->kt_ev);
        fprintf(f, ", \"block_sem_kt\": ");
        json_number(f, w->block_sem_ev / w->kt_ev);
        fprintf(f, "}%s\n", k + 1 < K ? "," : "");
    }
    fprintf(f, "  ],\n  \"pairs\": [\n");
    for (int k = 0; k + 1 < K; k++) {
        fprintf(f, "    {\"from\": %d, \"to\": %d, \"bar_delta_f_kt\": ", k, k + 1);
        json_number(f, r->pair[k].delta_f);
        fprintf(f, ", \"bar_sigma_kt\": ");
        json_number(f, r->pair[k].sigma);
        fprintf(f, ", \"bar_sigma_mbar_form_kt\": ");
        json_number(f, r->pair[k].sigma_mbar);
        fprintf(f, ", \"overlap_forward\": ");
        json_number(f, r->overlap[k * K + k + 1]);
        fprintf(f, ", \"overlap_backward\": ");
        json_number(f, r->overlap[(k + 1) * K + k]);
        fprintf(f, "}%s\n", k + 2 < K ? "," : "");
    }
    fprintf(f, "  ],\n");
    json_estimate(f, "ti", &r->ti, r);
    json_estimate(f, "ti_block", &r->ti_block, r);
    fprintf(f, "  \"ti_sigma_windows_kt\": ");
    json_number(f, r->ti.available ? r->ti_sigma_windows : NAN);
    fprintf(f, ",\n");
    json_estimate(f, "bar", &r->bar, r);
    fprintf(f, "  \"bar_sigma_independent_pairs_kt\": ");
    json_number(f, r->bar_sigma_independent);
    fprintf(f, ",\n");
    json_estimate(f, "mbar", &r->mbar, r);
    fprintf(f, "  \"mbar_f_kt\": ");
    json_vector(f, r->mbar_f, K);
    fprintf(f, ",\n  \"mbar_iterations\": %d,\n  \"mbar_delta_f_kt\": ", r->mbar_iterations);
    json_matrix(f, r->mbar_df, K);
    fprintf(f, ",\n  \"mbar_sigma_kt\": ");
    json_matrix(f, r->mbar_ddf, K);
    fprintf(f, ",\n  \"overlap\": ");
    json_matrix(f, r->overlap, K);
    fprintf(f, ",\n  \"poor_overlap_pairs\": %d\n}\n", r->n_poor_overlap);
    if (fclose(f) != 0) {
        fprintf(stderr, "distilmd analyze: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cmd_analyze(int argc, char **argv)
{
    analyze_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc == 1) return 0; /* --help */
    if (rc) return rc;
    fe_samples s;
    fe_result r;
    dm_error err;
    memset(&r, 0, sizeof r);
    int status = 0;
    if (fe_samples_read(&s, a.input, &a.discard, &err)) {
        fprintf(stderr, "distilmd analyze: %s\n", err.msg);
        status = 1;
    } else if (fe_analyze(&s, &a.options, &r, &err)) {
        fprintf(stderr, "distilmd analyze: %s: %s\n", a.input, err.msg);
        status = 1;
    } else {
        print_header(&s, &r, &a);
        print_windows(&r);
        print_pairs(&r);
        print_summary(&r);
        print_warnings(&r);
        if (a.json && write_json(a.json, &s, &r, &a)) status = 1;
    }
    fe_result_free(&r);
    fe_samples_free(&s);
    return status;
}
