/* cmd_bench.c — `distilmd bench`: time the batched CUDA evaluation.
 *
 * For each model and batch size B: a batch of B molecules (molecule i mod 17
 * of the benchmark mix of shared/docs/student-model.md, or i mod n of the
 * --molecules list), one CUDA context,
 * warm-up graph replays, then `reps` replays enqueued back to back, each
 * between two CUDA events (the method of bench/torch_baseline.py); the median
 * is the time per evaluation (neighbour lists + energies + forces). Also the
 * arithmetic of the method (FLOPs counted from the edge and atom counts) and
 * the rate it was done at, beside the card's fp32 FFMA peak (SMs x 128 lanes
 * x 2 x clock). With --stages, the median time of each stage (plain
 * launches, CUDA events). */
#include "commands.h"

#include "bench_molecules.h"

#include "core/error.h"
#include "core/molecules.h"
#include "io/xyz.h"
#include "model/painn_model.h"
#ifdef DISTILMD_HAVE_CUDA
#include "cuda/painn_cuda.h"
#endif

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DISTILMD_HAVE_CUDA

#define MAX_MODELS 8
#define MAX_BATCHES 32
#define MAX_STAGE_ROWS 64

static const char *const MIX[] = {
    "water",           "ammonia",          "methane", "ethanol", "benzene", "water_cluster_3",
    "water_cluster_5", "water_cluster_10", "ethane",  "butane",  "hexane",  "naphthalene",
    "anthracene",      "glycine",          "alanine", "adenine", "guanine"};
#define N_MIX ((int)(sizeof MIX / sizeof *MIX))

/* The molecules a batch cycles through: molecule i of a batch is mols[i % n]. */
typedef struct molecule_set {
    int n;
    xyz_trajectory *mols;
} molecule_set;

typedef struct bench_options {
    const char *shared;
    const char *models[MAX_MODELS];
    int n_models;
    int batches[MAX_BATCHES];
    int n_batches;
    int reps, warmup;
    int stages;
    const char *json;
    char *molecules; /* comma-separated XYZ files, or NULL for the mix */
} bench_options;

typedef struct bench_row {
    int batch, atoms, edges, pairs;
    int pair_messages; /* the message path the context chose (painn_cuda_info) */
    double ms, ms_min, ms_p90, ms_back_to_back, gflop;
    int n_stages;
    const char *stage_names[MAX_STAGE_ROWS];
    double stage_ms[MAX_STAGE_ROWS];
} bench_row;

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: distilmd bench [--model FILE ...] [--batches 1,2,...] [--reps N]\n"
               "                      [--warmup N] [--stages] [--molecules A.xyz,B.xyz,...]\n"
               "                      [--shared DIR] [--json FILE]\n"
               "\n"
               "Energy+force time per evaluation and per molecule on the GPU for batches of\n"
               "the 17-molecule benchmark mix (molecule i mod 17), median over N timed\n"
               "CUDA-graph replays (CUDA events) after warm-up.\n"
               "\n"
               "  -m, --model FILE   model (.onnx), repeatable (default: the three models in\n"
               "                     SHARED/models)\n"
               "  -b, --batches LIST batch sizes (default 1,2,4,8,16,64,256,1024)\n"
               "  -r, --reps N       timed evaluations per batch (default 200)\n"
               "  -w, --warmup N     untimed evaluations first (default 20)\n"
               "  -s, --stages       also time each stage of the evaluation\n"
               "      --molecules L  batches cycle through these XYZ files instead of the mix\n"
               "      --shared DIR   the shared/ folder (default $DISTILMD_SHARED or ../shared)\n"
               "  -j, --json FILE    also write the results as JSON\n");
}

static int parse_batches(const char *s, bench_options *o)
{
    o->n_batches = 0;
    while (*s) {
        char *end;
        long b = strtol(s, &end, 10);
        if (end == s || b < 1 || b > 1000000 || o->n_batches == MAX_BATCHES) return -1;
        o->batches[o->n_batches++] = (int)b;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return o->n_batches ? 0 : -1;
}

static int parse_options(int argc, char **argv, bench_options *o)
{
    static const struct option longs[] = {{"model", required_argument, 0, 'm'},
                                          {"batches", required_argument, 0, 'b'},
                                          {"reps", required_argument, 0, 'r'},
                                          {"warmup", required_argument, 0, 'w'},
                                          {"stages", no_argument, 0, 's'},
                                          {"molecules", required_argument, 0, 'M'},
                                          {"shared", required_argument, 0, 'S'},
                                          {"json", required_argument, 0, 'j'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    const char *env = getenv("DISTILMD_SHARED");
    o->shared = env && *env ? env : "../shared";
    o->reps = 200;
    o->warmup = 20;
    parse_batches("1,2,4,8,16,64,256,1024", o);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:b:r:w:sj:h", longs, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (o->n_models == MAX_MODELS) {
                fprintf(stderr, "distilmd bench: at most %d models\n", MAX_MODELS);
                return 2;
            }
            o->models[o->n_models++] = optarg;
            break;
        case 'b':
            if (parse_batches(optarg, o)) {
                fprintf(stderr,
                        "distilmd bench: --batches '%s': expected positive integers "
                        "separated by commas\n",
                        optarg);
                return 2;
            }
            break;
        case 'r': o->reps = atoi(optarg); break;
        case 'w': o->warmup = atoi(optarg); break;
        case 's': o->stages = 1; break;
        case 'M': o->molecules = optarg; break;
        case 'S': o->shared = optarg; break;
        case 'j': o->json = optarg; break;
        case 'h': bench_usage(stdout); return 1;
        default: bench_usage(stderr); return 2;
        }
    }
    if (o->reps < 1 || o->warmup < 0) {
        fprintf(stderr, "distilmd bench: --reps must be >= 1 and --warmup >= 0\n");
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "distilmd bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* The batch's molecules: the --molecules files, else the 17 of the mix from
 * SHARED/molecules. */
static int read_molecules(const bench_options *o, molecule_set *set, dm_error *err)
{
    if (o->molecules) return bench_read_molecules(o->molecules, &set->mols, &set->n, err);
    set->mols = calloc(N_MIX, sizeof *set->mols);
    if (!set->mols) return dm_fail(err, "out of memory");
    for (set->n = 0; set->n < N_MIX; set->n++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/molecules/%s.xyz", o->shared, MIX[set->n]);
        if (xyz_read_file(path, &set->mols[set->n], err)) return -1;
    }
    return 0;
}

/* FLOPs of one evaluation by this method (multiply-add = 2):
 *   filters, per pair and layer: the cubic Hermite table, phi and dphi/dd for
 *     3H outputs, 3 multiply-adds each (2 x 2 x 3 x 3H)
 *   update MLPs, per atom and layer: forward 2(2H^2 + 3H^2), backward the same
 *   messages, per directed edge and layer: forward 14H, backward 40H
 *   readout, per atom: forward and backward 2 x 2(H^2/2 + H^2/8 + H/4) */
static double method_flops(const painn_cuda_info *in, int pairs, int edges)
{
    const double H = in->H, L = in->L, n = in->n_atoms;
    double filters = pairs * L * 36.0 * H;
    double updates = n * L * 20.0 * H * H;
    double messages = edges * L * 54.0 * H;
    double readout = n * 4.0 * (H * H / 2 + H * H / 8 + H / 4);
    return filters + updates + messages + readout;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int time_batch(const painn_model *m, const molecule_set *set, int B,
                      const bench_options *o, bench_row *row, painn_cuda_info *info, dm_error *err)
{
    molecule_batch b = {0};
    painn_cuda *ctx = NULL;
    cudaStream_t s = NULL;
    cudaEvent_t *ev = calloc(2 * (size_t)o->reps + 2, sizeof *ev);
    double *t = calloc((size_t)o->reps, sizeof *t);
    int rc = -1, n_ev = 0;
    memset(row, 0, sizeof *row);
    row->batch = B;
    do {
        if (!ev || !t) {
            dm_fail(err, "out of memory");
            break;
        }
        if (bench_batch(set->mols, set->n, B, 0, &b, err) || painn_cuda_create(&ctx, m, &b, NULL, err)) break;
        painn_cuda_get_info(ctx, info);
        row->pair_messages = info->pair_messages;
        if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) {
            dm_fail(err, "cudaStreamCreate failed");
            break;
        }
        if (painn_cuda_upload_positions(ctx, b.positions, s, err)) break;
        for (; n_ev < 2 * o->reps + 2; n_ev++)
            if (cudaEventCreate(&ev[n_ev]) != cudaSuccess) break;
        if (n_ev < 2 * o->reps + 2) {
            dm_fail(err, "cudaEventCreate failed");
            break;
        }
        int bad = 0;
        for (int k = 0; k < o->warmup && !bad; k++) bad = painn_cuda_evaluate_graph(ctx, s, err);
        painn_cuda_counts counts;
        if (bad || painn_cuda_check(ctx, &counts, s, err)) break;
        row->atoms = b.n_atoms;
        row->edges = counts.n_edges;
        row->pairs = counts.n_pairs;
        /* rep by rep, each between two events, enqueued back to back */
        for (int k = 0; k < o->reps && !bad; k++) {
            cudaEventRecord(ev[2 * k], s);
            bad = painn_cuda_evaluate_graph(ctx, s, err);
            cudaEventRecord(ev[2 * k + 1], s);
        }
        cudaEventRecord(ev[2 * o->reps + 1], s);
        if (bad || cudaStreamSynchronize(s) != cudaSuccess) {
            if (!bad)
                dm_fail(err, "cudaStreamSynchronize: %s", cudaGetErrorString(cudaGetLastError()));
            break;
        }
        for (int k = 0; k < o->reps; k++) {
            float ms = 0;
            cudaEventElapsedTime(&ms, ev[2 * k], ev[2 * k + 1]);
            t[k] = ms;
        }
        float total = 0;
        cudaEventElapsedTime(&total, ev[0], ev[2 * o->reps + 1]);
        row->ms_back_to_back = total / o->reps;
        qsort(t, (size_t)o->reps, sizeof *t, cmp_double);
        row->ms = t[o->reps / 2];
        row->ms_min = t[0];
        row->ms_p90 = t[(int)(0.9 * (o->reps - 1))];
        row->gflop = method_flops(info, counts.n_pairs, counts.n_edges) * 1e-9;
        if (painn_cuda_check(ctx, NULL, s, err)) break;
        if (o->stages && painn_cuda_stage_times(ctx, s, 20, MAX_STAGE_ROWS, row->stage_names,
                                                row->stage_ms, &row->n_stages, err))
            break;
        rc = 0;
    } while (0);
    for (int k = 0; k < n_ev; k++) cudaEventDestroy(ev[k]);
    free(ev);
    free(t);
    if (s) cudaStreamDestroy(s);
    painn_cuda_destroy(ctx);
    molecule_batch_free(&b);
    return rc;
}

static double peak_tflops(const painn_cuda_info *in)
{
    return in->sm_count * 128.0 * 2.0 * in->clock_khz * 1e3 * 1e-12;
}

static void print_row(const bench_row *r)
{
    printf("%6d %7d %8d %10.4f %10.4f %12.3f %9.2f %8.2f %9s\n", r->batch, r->atoms, r->edges,
           r->ms, r->ms_back_to_back, 1e3 * r->ms / r->batch, r->gflop, r->gflop / r->ms,
           r->pair_messages ? "pair" : "atom");
}

static void print_stages(const bench_row *r)
{
    double sum = 0;
    for (int i = 0; i < r->n_stages; i++) sum += r->stage_ms[i];
    printf("  stages, batch %d (plain launches, median of 20; sum %.4f ms):\n", r->batch, sum);
    for (int i = 0; i < r->n_stages; i++)
        printf("    %-18s %9.4f ms %5.1f%%\n", r->stage_names[i], r->stage_ms[i],
               100.0 * r->stage_ms[i] / (sum > 0 ? sum : 1));
}

static void json_rows(FILE *f, const bench_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        fprintf(f,
                "      {\"batch\": %d, \"atoms\": %d, \"edges\": %d, \"pairs\": %d, "
                "\"ms_per_eval\": %.6f, \"ms_min\": %.6f, \"ms_p90\": %.6f, "
                "\"ms_back_to_back\": %.6f, \"ms_per_molecule\": %.8f, \"gflop\": %.6f, "
                "\"tflops\": %.4f, \"messages\": \"%s\"",
                r->batch, r->atoms, r->edges, r->pairs, r->ms, r->ms_min, r->ms_p90,
                r->ms_back_to_back, r->ms / r->batch, r->gflop, r->gflop / r->ms,
                r->pair_messages ? "pair" : "atom");
        if (r->n_stages) {
            fprintf(f, ", \"stages_ms\": {");
            for (int k = 0; k < r->n_stages; k++)
                fprintf(f, "%s\"%s\": %.6f", k ? ", " : "", r->stage_names[k], r->stage_ms[k]);
            fprintf(f, "}");
        }
        fprintf(f, "}%s\n", i + 1 < n ? "," : "");
    }
}

int cmd_bench(int argc, char **argv)
{
    bench_options o;
    int prc = parse_options(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : prc;
    char why[512];
    if (!painn_cuda_device_available(why, sizeof why)) {
        fprintf(stderr, "distilmd bench: %s\n", why);
        return 1;
    }
    static char default_models[3][1200];
    if (o.n_models == 0) {
        const char *names[] = {"427k", "77k", "21k"};
        for (int i = 0; i < 3; i++) {
            snprintf(default_models[i], sizeof default_models[i], "%s/models/student_%s.onnx",
                     o.shared, names[i]);
            o.models[o.n_models++] = default_models[i];
        }
    }
    dm_error err = {{0}};
    molecule_set set_ = {0, NULL}, *set = &set_;
    int rc = 0;
    FILE *json = NULL;
    if (read_molecules(&o, set, &err)) {
        fprintf(stderr, "distilmd bench: %s\n", err.msg);
        rc = 1;
    }
    if (rc == 0 && o.json && !(json = fopen(o.json, "w"))) {
        fprintf(stderr, "distilmd bench: cannot write %s\n", o.json);
        rc = 1;
    }
    bench_row *rows = calloc((size_t)o.n_batches, sizeof *rows);
    if (json) fprintf(json, "{\n  \"models\": [\n");
    for (int mi = 0; rc == 0 && mi < o.n_models; mi++) {
        painn_model m;
        memset(&m, 0, sizeof m);
        if (painn_model_load(o.models[mi], &m, &err)) {
            fprintf(stderr, "distilmd bench: %s\n", err.msg);
            rc = 1;
            break;
        }
        painn_cuda_info info;
        memset(&info, 0, sizeof info);
        int done = 0;
        for (int bi = 0; bi < o.n_batches; bi++, done++) {
            if (time_batch(&m, set, o.batches[bi], &o, &rows[bi], &info, &err)) {
                fprintf(stderr, "distilmd bench: batch %d: %s\n", o.batches[bi], err.msg);
                rc = 1;
                break;
            }
            if (bi == 0) {
                printf("# %s: H=%d L=%d K=%d, %ld parameters, on %s (%d SMs, %.0f MHz, fp32 "
                       "FFMA peak %.1f TFLOP/s)\n",
                       o.models[mi], m.H, m.L, m.K, m.n_parameters, info.device_name, info.sm_count,
                       info.clock_khz / 1e3, peak_tflops(&info));
                printf("# filter table: %d intervals, max error %.2g (phi), %.2g (dphi/dd) of "
                       "max |.|\n",
                       info.filter_table_n, info.filter_table_error[0],
                       info.filter_table_error[1]);
                printf("%6s %7s %8s %10s %10s %12s %9s %9s %9s\n", "batch", "atoms", "edges",
                       "ms/eval", "ms b2b", "us/molecule", "GFLOP", "TFLOP/s", "messages");
            }
            print_row(&rows[bi]);
            fflush(stdout);
        }
        if (o.stages)
            for (int bi = 0; bi < done; bi++) print_stages(&rows[bi]);
        if (json) {
            fprintf(json,
                    "    {\"model\": \"%s\", \"H\": %d, \"L\": %d, \"K\": %d, \"device\": \"%s\", "
                    "\"sm_count\": %d, \"clock_mhz\": %.0f, \"fp32_peak_tflops\": %.2f, "
                    "\"reps\": %d, \"warmup\": %d, \"rows\": [\n",
                    o.models[mi], m.H, m.L, m.K, info.device_name, info.sm_count,
                    info.clock_khz / 1e3, peak_tflops(&info), o.reps, o.warmup);
            json_rows(json, rows, done);
            fprintf(json, "    ]}%s\n", mi + 1 < o.n_models && rc == 0 ? "," : "");
        }
        painn_model_free(&m);
    }
    if (json) {
        fprintf(json, "  ]\n}\n");
        fclose(json);
    }
    free(rows);
    bench_molecules_free(set->mols, set->n);
    return rc;
}

#else

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "distilmd bench: this build has no CUDA platform (nvcc was not found)\n");
    return 1;
}

#endif
