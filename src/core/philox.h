/* philox.h — the Philox4x32-10 counter-based generator (Salmon et al., SC'11),
 * bit-identical to cuRAND's curand_Philox4x32_10(counter, key), so that the
 * reference platform draws the same random numbers as the CUDA platform.
 * A draw is a pure function of (key = seed, counter = what it is for):
 * restarts and reorderings cannot change it. */
#ifndef DISTILMD_PHILOX_H
#define DISTILMD_PHILOX_H

#include <math.h>
#include <stdint.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

typedef struct philox_block { uint32_t v[4]; } philox_block;

/* Streams: what a draw is for (the counter's last word's top bits). */
enum { PHILOX_STREAM_LANGEVIN = 0, PHILOX_STREAM_VELOCITIES = 1, PHILOX_STREAM_EXCHANGE = 2 };

static inline philox_block philox4x32_10(philox_block c, uint32_t k0, uint32_t k1)
{
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c.v[0], p1 = (uint64_t)PHILOX_M1 * c.v[2];
        philox_block n = {{(uint32_t)(p1 >> 32) ^ c.v[1] ^ k0, (uint32_t)p1,
                           (uint32_t)(p0 >> 32) ^ c.v[3] ^ k1, (uint32_t)p0}};
        c = n;
    }
    return c;
}

/* The counter for (stream, replica, atom, step). */
static inline philox_block philox_counter(int stream, uint32_t replica, uint32_t atom, uint64_t step)
{
    philox_block c = {{atom, replica, (uint32_t)step,
                       (uint32_t)(step >> 32) ^ ((uint32_t)stream << 28)}};
    return c;
}

/* (x + 1/2) / 2^32: uniform on (0, 1), never 0 or 1. */
static inline double philox_uniform(uint32_t x) { return ((double)x + 0.5) * (1.0 / 4294967296.0); }

/* Four standard normal deviates (Box-Muller on two pairs of uniforms). */
static inline void philox_normal4(philox_block r, double out[4])
{
    for (int p = 0; p < 2; p++) {
        double rad = sqrt(-2.0 * log(philox_uniform(r.v[2 * p])));
        double ang = 2.0 * M_PI * philox_uniform(r.v[2 * p + 1]);
        out[2 * p] = rad * cos(ang);
        out[2 * p + 1] = rad * sin(ang);
    }
}

#endif
