/* main.c — `distilmd COMMAND [ARGS]`: dispatch to the subcommands. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

/* `bench --md` times MD steps; plain `bench` the model evaluation */
static int bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--md")) return cmd_bench_md(argc, argv);
    return cmd_bench(argc, argv);
}

static const command COMMANDS[] = {
    {"run", cmd_run, "a simulation from a YAML configuration (docs/config.md)"},
    {"eval", cmd_eval, "energies and forces of the structures in XYZ files"},
    {"bench", bench, "time the batched model evaluation (--md: MD steps) on the GPU"},
    {"demux", cmd_demux, "one trajectory per temperature from a replica-exchange run"},
    {"analyze", cmd_analyze, "free energy of a λ-window run: TI, BAR, MBAR (docs/free-energy.md)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: distilmd COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\n`distilmd COMMAND --help` describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("distilmd %s\n", DISTILMD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "distilmd: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
