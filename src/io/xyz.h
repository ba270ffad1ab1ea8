/* xyz.h — XYZ and extended XYZ (ASE's flavour) frames in and out.
 *
 * A file holds one or more frames:
 *   line 1: number of atoms N
 *   line 2: comment; in extended XYZ, key=value pairs such as
 *           Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc="F F F"
 *           (values may be quoted with "..." ; keys are case-sensitive except
 *           Properties, which ASE also accepts as properties)
 *   N lines: the columns named by Properties; plain XYZ is "species pos".
 * Species are element symbols (H, He, ... ) or atomic numbers. */
#ifndef DISTILMD_XYZ_H
#define DISTILMD_XYZ_H

#include "../core/error.h"
#include <stdio.h>

typedef struct xyz_frame {
    int n_atoms;
    int *species;          /* atomic numbers */
    double *positions;     /* [n_atoms*3] Å */
    double *forces;        /* [n_atoms*3] or NULL when absent */
    double *velocities;    /* [n_atoms*3] or NULL (ASE "velocities"/"vel"/"momenta" not converted: only velocities/vel) */
    int has_energy;
    double energy;
    char *comment;         /* the raw comment line, without newline */
    char *name;            /* value of name=..., or NULL */
    int line;              /* line number of the frame's first line in its file */
} xyz_frame;

typedef struct xyz_trajectory {
    int n_frames;
    xyz_frame *frames;
} xyz_trajectory;

/* Reads every frame of a file. Errors carry "FILE:LINE: what was expected". */
int xyz_read_file(const char *path, xyz_trajectory *out, dm_error *err);
/* Same from an open stream; `label` names it in errors. */
int xyz_read_stream(FILE *f, const char *label, xyz_trajectory *out, dm_error *err);
void xyz_trajectory_free(xyz_trajectory *t);

/* Writes one frame as extended XYZ that ASE reads:
 *   Properties=species:S:1:pos:R:3[:forces:R:3] [name=..] energy=E pbc="F F F"
 * forces may be NULL; energy is written when has_energy. Returns -1 on a
 * write error (naming `label`). */
int xyz_write_frame(FILE *f, const char *label, int n_atoms, const int *species,
                    const double *positions, const double *forces, int has_energy,
                    double energy, const char *name, dm_error *err);

/* Element symbol <-> atomic number (Z = 1..118); 0 when unknown. */
int element_number(const char *symbol);
const char *element_symbol(int z);
double element_mass(int z); /* standard atomic weight in amu; 0 if unknown */

#endif
