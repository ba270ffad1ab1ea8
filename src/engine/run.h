/* run.h — `distilmd run`: a simulation from a configuration.
 *
 *   config -> model, replicas -> platform dynamics -> loop:
 *       advance all replicas to the next event (output, checkpoint, COM
 *       removal, progress) -> report
 */
#ifndef DISTILMD_RUN_H
#define DISTILMD_RUN_H

#include "run_config.h"

typedef struct run_options {
    const char *restart;   /* checkpoint to continue from, or NULL */
    int quiet;             /* no progress lines */
} run_options;

/* What the run did, for the caller and the tests. */
typedef struct run_summary {
    long steps_done;       /* the step the run ended at */
    int interrupted;       /* the signal (SIGINT/SIGTERM) that stopped it, else 0 */
    const char *platform;  /* which platform ran it */
    double wall_seconds;
    double steps_per_second;
} run_summary;

int run_simulation(const run_config *cfg, const run_options *opt, run_summary *out, dm_error *err);

#endif
