/*
 * options.c — reads a caller's options struct of any size: see options.h.
 */
#include "platform/options.h"

#include <stdint.h>
#include <string.h>

kth_status platform_options_copy(void *dst, size_t dst_size, const void *src, size_t v1_end)
{
    memset(dst, 0, dst_size);
    if (!src)
        goto done;
    size_t size;
    memcpy(&size, src, sizeof size);
    if (size == 0)
        size = v1_end;
    if (size < sizeof size)
        return KTH_ERR_INVALID_ARG;
    const unsigned char *bytes = src;
    for (size_t i = dst_size; i < size; i++)
        if (bytes[i] != 0)
            return KTH_ERR_UNSUPPORTED;
    memcpy(dst, src, size < dst_size ? size : dst_size);
done:
    memcpy(dst, &dst_size, sizeof dst_size);
    return KTH_OK;
}
