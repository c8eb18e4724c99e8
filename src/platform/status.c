/*
 * status.c — sentences and names for kth_status values.
 *
 * One table holds both, so a new status cannot get a name without a sentence.
 */
#include <kithara/status.h>

#include <stddef.h>

struct status_text {
    int status;
    const char *name;
    const char *sentence;
};

static const struct status_text status_table[] = {
    {KTH_OK, "OK", "success"},
    {KTH_ERR_INVALID_ARG, "INVALID_ARG", "invalid argument"},
    {KTH_ERR_NO_MEMORY, "NO_MEMORY", "out of memory"},
    {KTH_ERR_IO, "IO", "local input/output error"},
    {KTH_ERR_TIMEOUT, "TIMEOUT", "timed out"},
    {KTH_ERR_CANCELLED, "CANCELLED", "cancelled"},
    {KTH_ERR_SEEK_PENDING, "SEEK_PENDING", "a seek interrupted this read; read again"},
    {KTH_ERR_VARIANT_CHANGE, "VARIANT_CHANGE",
     "variant change: the following bytes belong to another variant"},
    {KTH_ERR_RETRY, "RETRY", "bytes were evicted before they could be read; read again"},
    {KTH_ERR_OUT_OF_RANGE, "OUT_OF_RANGE", "offset out of range"},
    {KTH_ERR_STATE, "STATE", "operation not valid in the current state"},
    {KTH_ERR_NOT_FOUND, "NOT_FOUND", "not found"},
    {KTH_ERR_NETWORK, "NETWORK", "network error"},
    {KTH_ERR_HTTP, "HTTP", "HTTP error status"},
    {KTH_ERR_FORMAT, "FORMAT", "unexpected or malformed content"},
    {KTH_ERR_DECRYPT, "DECRYPT", "decryption failed"},
    {KTH_ERR_UNSUPPORTED, "UNSUPPORTED", "not supported"},
    {KTH_ERR_OFFLINE_MISS, "OFFLINE_MISS", "offline and not in the cache"},
    {KTH_ERR_CHANGED, "CHANGED", "the resource changed on the server"},
    {KTH_ERR_BUSY, "BUSY", "in use by another process or owner"},
    {KTH_ERR_LIMIT, "LIMIT", "a size or count limit was exceeded"},
    {KTH_ERR_INTERNAL, "INTERNAL", "internal error"},
    {KTH_ERR_CORRUPT, "CORRUPT", "cached bytes failed their checksum (damaged cache file)"},
    {KTH_ERR_PROTECTED, "PROTECTED",
     "the cache is protected: its secret is missing or wrong, or an entry failed authentication"},
};

static const struct status_text *status_lookup(int status)
{
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++) {
        if (status_table[i].status == status)
            return &status_table[i];
    }
    return NULL;
}

const char *kth_strerror(int status)
{
    const struct status_text *t = status_lookup(status);
    return t ? t->sentence : "unknown status";
}

const char *kth_status_name(int status)
{
    const struct status_text *t = status_lookup(status);
    return t ? t->name : "UNKNOWN";
}
