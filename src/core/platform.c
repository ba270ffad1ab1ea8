#include "platform.h"

#include <stdio.h>
#include <string.h>

const platform_ops *platform_find(const char *name, char *note, size_t note_len, dm_error *err)
{
    dm_error why = {{0}};
    if (note && note_len) note[0] = '\0';
    if (strcmp(name, "reference") == 0) return &platform_reference;
    if (strcmp(name, "cuda") == 0) {
#ifdef DISTILMD_HAVE_CUDA
        if (!platform_cuda.available(&why))
            return dm_fail(err, "platform 'cuda' is not available: %s", why.msg), NULL;
        return &platform_cuda;
#else
        return dm_fail(err, "platform 'cuda' is not available: distilmd was built without CUDA"),
               NULL;
#endif
    }
    if (strcmp(name, "auto") == 0) {
#ifdef DISTILMD_HAVE_CUDA
        if (platform_cuda.available(&why)) {
            if (note) snprintf(note, note_len, "platform auto: chose cuda");
            return &platform_cuda;
        }
#else
        snprintf(why.msg, sizeof why.msg, "built without CUDA");
#endif
        if (note) snprintf(note, note_len, "platform auto: chose reference (%s)", why.msg);
        return &platform_reference;
    }
    return dm_fail(err, "unknown platform '%s'; expected one of: reference, cuda, auto", name), NULL;
}
