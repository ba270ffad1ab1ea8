/* units.h — the engine's units: Å, fs, eV, amu, K. */
#ifndef DISTILMD_UNITS_H
#define DISTILMD_UNITS_H

#define BOLTZMANN_EV_PER_K 8.617333262e-5      /* k_B in eV/K (CODATA 2018, exact) */
/* 1 amu Å^2 / fs^2 in eV: m v^2 -> energy */
#define AMU_A2_PER_FS2_IN_EV 103.6426965268     /* 1.66053906660e-27 kg * 1e10 m^2/s^2 / e (CODATA 2018) */
/* F/m: 1 eV / (Å amu) in Å/fs^2 */
#define EV_PER_A_AMU_IN_A_PER_FS2 (1.0 / AMU_A2_PER_FS2_IN_EV)

#endif
