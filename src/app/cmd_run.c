/* cmd_run.c — `distilmd run CONFIG [--platform P] [--steps N] [--output FILE]
 * [--restart FILE]`: a simulation from a YAML configuration. */
#include "commands.h"

#include "engine/run.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run_usage(FILE *f)
{
    fprintf(f, "usage: distilmd run CONFIG [--platform P] [--steps N] [--output FILE]\n"
               "                    [--restart FILE] [--quiet]\n"
               "\n"
               "Runs the simulation described by the YAML file CONFIG (docs/config.md).\n"
               "  -p, --platform P   override `platform` (reference, cuda, auto)\n"
               "  -n, --steps N      override `steps`\n"
               "  -o, --output FILE  override `output.file` (H5MD)\n"
               "  -r, --restart FILE continue from a checkpoint, appending to the output\n"
               "  -q, --quiet        no progress line\n");
}

static int copy_option(char *dst, size_t len, const char *value, const char *what)
{
    if (strlen(value) >= len) {
        fprintf(stderr, "distilmd run: %s is too long\n", what);
        return -1;
    }
    strcpy(dst, value);
    return 0;
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"platform", required_argument, 0, 'p'}, {"steps", required_argument, 0, 'n'},
        {"output", required_argument, 0, 'o'},   {"restart", required_argument, 0, 'r'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *platform = NULL, *steps = NULL, *output = NULL;
    run_options opt = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:n:o:r:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'p': platform = optarg; break;
        case 'n': steps = optarg; break;
        case 'o': output = optarg; break;
        case 'r': opt.restart = optarg; break;
        case 'q': opt.quiet = 1; break;
        case 'h': run_usage(stdout); return 0;
        default: run_usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "distilmd run: expected exactly one CONFIG file\n\n");
        run_usage(stderr);
        return 2;
    }
    dm_error err = {{0}};
    run_config cfg;
    if (run_config_load(argv[optind], &cfg, &err)) {
        fprintf(stderr, "distilmd run: error: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (platform) rc = copy_option(cfg.platform, sizeof cfg.platform, platform, "--platform");
    if (rc == 0 && output) rc = copy_option(cfg.output.file, sizeof cfg.output.file, output, "--output");
    if (rc == 0 && steps) {
        char *end;
        errno = 0;
        long n = strtol(steps, &end, 10);
        if (errno || *end || n < 0) {
            fprintf(stderr, "distilmd run: --steps expects a non-negative integer, got '%s'\n", steps);
            rc = -1;
        }
        cfg.steps = n;
    }
    run_summary sum;
    if (rc == 0 && run_simulation(&cfg, &opt, &sum, &err)) {
        fprintf(stderr, "distilmd run: error: %s\n", err.msg);
        rc = -1;
    }
    if (rc == 0)
        fprintf(stderr, "distilmd run: %ld steps on the %s platform, %.1f steps/s%s\n",
                sum.steps_done, sum.platform, sum.steps_per_second,
                sum.interrupted ? " (interrupted)" : "");
    run_config_free(&cfg);
    return rc ? 1 : (sum.interrupted ? 128 + sum.interrupted : 0); /* as the shell reports a signal */
}
