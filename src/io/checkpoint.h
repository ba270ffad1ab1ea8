/* checkpoint.h — restart files: a flat set of named arrays in one HDF5 file,
 * written atomically (to PATH.tmp, flushed, then renamed over PATH), so a
 * run killed at any moment leaves either the old or the new checkpoint. */
#ifndef DISTILMD_CHECKPOINT_H
#define DISTILMD_CHECKPOINT_H

#include "../core/error.h"
#include <stdint.h>

typedef enum checkpoint_type { CHECKPOINT_F64, CHECKPOINT_I64 } checkpoint_type;

typedef struct checkpoint_entry {
    const char *name;       /* dataset name, e.g. "positions" */
    checkpoint_type type;
    long count;             /* number of values */
    void *data;             /* double * or int64_t * */
} checkpoint_entry;

/* Writes every entry as a 1-D dataset of /checkpoint, plus a format version. */
int checkpoint_write(const char *path, const checkpoint_entry *entries, int n_entries,
                     dm_error *err);
/* Reads the entries back into caller-owned buffers; a missing dataset, a
 * count or type that differs from the entry's, or a file that is not a
 * distilmd checkpoint is an error naming the file and the dataset. */
int checkpoint_read(const char *path, const checkpoint_entry *entries, int n_entries,
                    dm_error *err);

#endif
