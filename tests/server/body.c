/*
 * body.c — the sources of response bytes: registered memory, the synthetic pattern, and files
 * under the document root; plus the content type and validators each one announces.
 *
 * A body is immutable once built. Its ETag is strong and names the content: a file's inode,
 * size and modification time; a pattern's size and seed; a memory body's registration version
 * and a hash of its bytes. So the same bytes keep their ETag and changed bytes get a new one.
 * A file path is served only if none of its segments is ".." and it names a regular file.
 *
 * A gzip-encoded copy of a body (the GZIP fault) is made of stored deflate blocks: no
 * compression, but a real gzip stream with its CRC-32 and length, which any decoder reads.
 */
#include "ts_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".m3u8", "application/vnd.apple.mpegurl"},
    {".m3u", "audio/mpegurl"},
    {".ts", "video/mp2t"},
    {".aac", "audio/aac"},
    {".mp3", "audio/mpeg"},
    {".m4a", "audio/mp4"},
    {".mp4", "audio/mp4"},
    {".m4s", "audio/mp4"},
    {".flac", "audio/flac"},
    {".wav", "audio/wav"},
    {".ogg", "audio/ogg"},
    {".opus", "audio/ogg"},
    {".key", "application/octet-stream"},
    {".html", "text/html"},
    {".htm", "text/html"},
    {".txt", "text/plain"},
    {".json", "application/json"},
};

const char *kts_content_type_for(const char *path)
{
    const char *slash;
    const char *dot;

    if (path == NULL) {
        return "application/octet-stream";
    }
    slash = strrchr(path, '/');
    dot = strrchr(slash != NULL ? slash : path, '.');
    if (dot != NULL) {
        for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++) {
            if (strcasecmp(dot, content_types[i].ext) == 0) {
                return content_types[i].type;
            }
        }
    }
    return "application/octet-stream";
}

void ts_http_date(time_t t, char *buf, size_t size)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11) {
        snprintf(buf, size, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static ts_body *body_alloc(ts_body_kind kind, uint64_t size, const char *content_type,
                           const char *path, time_t modified)
{
    ts_body *b = calloc(1, sizeof *b);

    if (b == NULL) {
        return NULL;
    }
    b->refs = 1;
    b->kind = kind;
    b->size = size;
    b->fd = -1;
    snprintf(b->content_type, sizeof b->content_type, "%s",
             content_type != NULL ? content_type : kts_content_type_for(path));
    ts_http_date(modified, b->last_modified, sizeof b->last_modified);
    return b;
}

ts_body *ts_body_new_memory(const void *data, size_t len, const char *content_type,
                            const char *path, uint64_t version, time_t modified)
{
    ts_body *b = body_alloc(TS_BODY_MEMORY, len, content_type, path, modified);
    const unsigned char *bytes = data;
    uint64_t hash = UINT64_C(0xcbf29ce484222325); /* FNV-1a */

    if (b == NULL) {
        return NULL;
    }
    b->data = malloc(len > 0 ? len : 1);
    if (b->data == NULL) {
        free(b);
        return NULL;
    }
    if (len > 0) {
        memcpy(b->data, data, len);
    }
    for (size_t i = 0; i < len; i++) {
        hash = (hash ^ bytes[i]) * UINT64_C(0x100000001b3);
    }
    snprintf(b->etag, sizeof b->etag, "\"m%" PRIx64 "-%" PRIx64 "\"", version, hash);
    return b;
}

ts_body *ts_body_new_synth(uint64_t size, uint64_t seed, const char *content_type, const char *path,
                           time_t modified)
{
    ts_body *b = body_alloc(TS_BODY_SYNTH, size, content_type, path, modified);

    if (b == NULL) {
        return NULL;
    }
    b->seed = seed;
    snprintf(b->etag, sizeof b->etag, "\"s%" PRIx64 "-%" PRIx64 "\"", size, seed);
    return b;
}

void ts_body_frame_ts(ts_body *body)
{
    body->ts_framed = true;
    body->etag[1] = 't'; /* "s<size>-<seed>" becomes "t<size>-<seed>": other bytes, other ETag */
}

/* ---- gzip ------------------------------------------------------------------------------- */

#define GZIP_MAX_CONTENT ((uint64_t)64 << 20)
#define STORED_BLOCK_MAX 65535u

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[i] = c;
    }
}

/* The CRC-32 of gzip (ISO 3309, reflected, polynomial 0xEDB88320). */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;

    pthread_once(&crc_once, crc_table_init);
    for (size_t i = 0; i < n; i++) {
        crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    }
    return ~crc;
}

static unsigned char *put_le32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) {
        *p++ = (unsigned char)(v >> (8 * k));
    }
    return p;
}

ts_body *ts_body_new_gzip(const ts_body *src)
{
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    size_t len = (size_t)src->size;
    size_t blocks = len / STORED_BLOCK_MAX + 1;
    unsigned char *content;
    unsigned char *out;
    unsigned char *p;
    ts_body *b;

    if (src->size > GZIP_MAX_CONTENT) {
        return NULL;
    }
    content = malloc(len > 0 ? len : 1);
    out = malloc(sizeof header + blocks * 5 + len + 8);
    if (content == NULL || out == NULL || !ts_body_read(src, 0, content, len)) {
        free(content);
        free(out);
        return NULL;
    }
    memcpy(out, header, sizeof header);
    p = out + sizeof header;
    for (size_t done = 0, i = 0; i < blocks; i++) {
        size_t n = len - done < STORED_BLOCK_MAX ? len - done : STORED_BLOCK_MAX;
        *p++ = i + 1 == blocks ? 1 : 0; /* BFINAL, BTYPE 00 (stored), then byte-aligned */
        *p++ = (unsigned char)(n & 0xFF);
        *p++ = (unsigned char)(n >> 8);
        *p++ = (unsigned char)(~n & 0xFF);
        *p++ = (unsigned char)((~n >> 8) & 0xFF);
        memcpy(p, content + done, n);
        p += n;
        done += n;
    }
    p = put_le32(p, crc32_of(content, len));
    p = put_le32(p, (uint32_t)len);
    b = body_alloc(TS_BODY_MEMORY, (uint64_t)(p - out), src->content_type, NULL, 0);
    if (b == NULL) {
        free(content);
        free(out);
        return NULL;
    }
    free(content);
    b->data = out;
    snprintf(b->last_modified, sizeof b->last_modified, "%s", src->last_modified);
    /* The encoded representation is another one than the content: its own strong ETag. */
    snprintf(b->etag, sizeof b->etag, "\"gz-%.*s\"", (int)(strlen(src->etag) - 2), src->etag + 1);
    return b;
}

/* True when no segment of path is "..". */
static bool path_is_safe(const char *path)
{
    const char *seg = path;

    if (path[0] != '/' || strchr(path, '\\') != NULL) {
        return false;
    }
    while (*seg != '\0') {
        const char *end;
        while (*seg == '/') {
            seg++;
        }
        end = strchr(seg, '/');
        if (end == NULL) {
            end = seg + strlen(seg);
        }
        if (end - seg == 2 && seg[0] == '.' && seg[1] == '.') {
            return false;
        }
        seg = end;
    }
    return true;
}

ts_body *ts_body_open_file(const char *doc_root, const char *path, int *status)
{
    struct stat st;
    char *full;
    size_t root_len;
    size_t path_len;
    int fd;
    ts_body *b;

    *status = KTH_ERR_NOT_FOUND;
    if (doc_root == NULL || !path_is_safe(path)) {
        return NULL;
    }
    root_len = strlen(doc_root);
    path_len = strlen(path);
    full = malloc(root_len + path_len + 1);
    if (full == NULL) {
        *status = KTH_ERR_NO_MEMORY;
        return NULL;
    }
    memcpy(full, doc_root, root_len);
    memcpy(full + root_len, path, path_len + 1);
    fd = open(full, O_RDONLY | O_CLOEXEC);
    free(full);
    if (fd < 0) {
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) {
        close(fd);
        return NULL;
    }
    b = body_alloc(TS_BODY_FILE, (uint64_t)st.st_size, NULL, path, st.st_mtim.tv_sec);
    if (b == NULL) {
        close(fd);
        *status = KTH_ERR_NO_MEMORY;
        return NULL;
    }
    b->fd = fd;
    snprintf(b->etag, sizeof b->etag, "\"f%" PRIx64 "-%" PRIx64 "-%" PRIx64 ".%lx\"",
             (uint64_t)st.st_ino, (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
             (unsigned long)st.st_mtim.tv_nsec);
    *status = KTH_OK;
    return b;
}

bool ts_synth_path_parse(const char *path, uint64_t *size)
{
    static const char prefix[] = "/synth/";
    const char *p = path;
    uint64_t v = 0;
    unsigned shift = 0;

    if (strncmp(p, prefix, sizeof prefix - 1) != 0) {
        return false;
    }
    p += sizeof prefix - 1;
    if (*p < '0' || *p > '9') {
        return false;
    }
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
        p++;
    }
    switch (*p) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        break;
    }
    if (shift != 0) {
        if (v > (UINT64_MAX >> shift)) {
            return false;
        }
        v <<= shift;
        p++;
    }
    /* Nothing may follow but an extension (no further '/'). */
    if (*p != '\0' && (*p != '.' || strchr(p, '/') != NULL)) {
        return false;
    }
    *size = v;
    return true;
}

bool ts_body_read(const ts_body *body, uint64_t offset, void *buf, size_t n)
{
    unsigned char *out = buf;

    if (offset > body->size || n > body->size - offset) {
        return false;
    }
    switch (body->kind) {
    case TS_BODY_MEMORY:
        memcpy(out, body->data + offset, n);
        return true;
    case TS_BODY_SYNTH:
        if (body->ts_framed) {
            kts_ts_synth_fill(body->seed, offset, out, n);
        } else {
            kts_synth_fill(body->seed, offset, out, n);
        }
        return true;
    case TS_BODY_ICY:
        return false; /* served by a cursor (ts_icy_next), never by offset */
    case TS_BODY_FILE:
        while (n > 0) {
            ssize_t got = pread(body->fd, out, n, (off_t)offset);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                return false; /* error, or the file shrank under us */
            }
            out += got;
            offset += (uint64_t)got;
            n -= (size_t)got;
        }
        return true;
    }
    return false;
}

void ts_body_destroy(ts_body *body)
{
    if (body == NULL) {
        return;
    }
    if (body->fd >= 0) {
        close(body->fd);
    }
    free(body->data);
    ts_icy_free(body->icy);
    free(body);
}
