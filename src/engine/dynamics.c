#include "dynamics.h"
#include "../core/platform.h"

#include <stdio.h>
#include <string.h>

const dynamics_ops *dynamics_find(const char *platform, char *note, size_t note_len, dm_error *err)
{
    const platform_ops *p = platform_find(platform, note, note_len, err);
    if (!p) return NULL;
    if (!strcmp(p->name, "reference")) return &dynamics_reference;
#ifdef DISTILMD_HAVE_CUDA_DYNAMICS
    if (!strcmp(p->name, "cuda")) return &dynamics_cuda;
#endif
    dm_fail(err, "platform '%s' has no MD integrators in this build; use platform: reference",
            p->name);
    return NULL;
}
