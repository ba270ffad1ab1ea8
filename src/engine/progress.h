/* progress.h — the status line on stderr: step, simulated time, steps/s,
 * ns/day and time left; redrawn in place on a terminal, plain lines (at most
 * one every few seconds) in a log. */
#ifndef DISTILMD_PROGRESS_H
#define DISTILMD_PROGRESS_H

typedef struct progress_meter {
    long first_step, last_step;
    double timestep_fs;
    int quiet, terminal;
    double start, last_print; /* seconds, monotonic clock */
    double elapsed, steps_per_second;
} progress_meter;

void progress_start(progress_meter *p, long step, long last_step, double timestep_fs, int quiet);
void progress_update(progress_meter *p, long step);
void progress_finish(progress_meter *p, long step);

#endif
