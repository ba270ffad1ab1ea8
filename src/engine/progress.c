#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void progress_start(progress_meter *p, long step, long last_step, double timestep_fs, int quiet)
{
    *p = (progress_meter){.first_step = step,
                          .last_step = last_step,
                          .timestep_fs = timestep_fs,
                          .quiet = quiet,
                          .terminal = isatty(STDERR_FILENO)};
    p->start = p->last_print = now_seconds();
}

static void print_line(progress_meter *p, long step, const char *end)
{
    double rate = p->steps_per_second;
    double ns_per_day = rate * p->timestep_fs * 1e-6 * 86400.0;
    double left = rate > 0 ? (double)(p->last_step - step) / rate : 0;
    int h = (int)(left / 3600), m = (int)(left / 60) % 60, s = (int)left % 60;
    fprintf(stderr, "%sstep %ld/%ld  t = %.3f ps  %.1f steps/s  %.3f ns/day  left %02d:%02d:%02d%s",
            p->terminal ? "\r" : "", step, p->last_step, step * p->timestep_fs * 1e-3, rate,
            ns_per_day, h, m, s, end);
    fflush(stderr);
}

void progress_update(progress_meter *p, long step)
{
    double t = now_seconds();
    p->elapsed = t - p->start;
    p->steps_per_second = p->elapsed > 0 ? (double)(step - p->first_step) / p->elapsed : 0;
    if (p->quiet || t - p->last_print < (p->terminal ? 0.5 : 10.0)) return;
    p->last_print = t;
    print_line(p, step, p->terminal ? "   " : "\n");
}

void progress_finish(progress_meter *p, long step)
{
    progress_update(p, step);
    if (!p->quiet) print_line(p, step, "\n");
}
