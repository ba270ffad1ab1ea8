/* commands.h — the subcommands of the `distilmd` program. Each returns the
 * process exit status (0 success, 1 runtime error, 2 usage error). */
#ifndef DISTILMD_COMMANDS_H
#define DISTILMD_COMMANDS_H

int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench_md(int argc, char **argv);
int cmd_demux(int argc, char **argv);
int cmd_analyze(int argc, char **argv);

#endif
