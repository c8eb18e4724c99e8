/* read_stream.c: copies a stream (an http(s) URL or a local path) to standard output, byte for
 * byte as a decoder would read it. cc read_stream.c $(pkg-config --cflags --libs kithara) */
#include <kithara/kithara.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    kth_stream *s;
    char err[256];
    if (argc < 2)
        return 2;
    if (kth_stream_open(argv[1], NULL, &s, err, sizeof err) != KTH_OK)
        return fprintf(stderr, "%s\n", err), 1;
    unsigned char buf[65536];
    int64_t n;
    while ((n = kth_stream_read(s, buf, sizeof buf)) != 0) {
        if (n > 0)
            fwrite(buf, 1, (size_t)n, stdout); /* hand the bytes to your decoder */
        else if (n == KTH_ERR_VARIANT_CHANGE)
            kth_stream_clear_variant_fence(s); /* after recreating the decoder */
        else if (n != KTH_ERR_SEEK_PENDING)
            break;
    }
    kth_stream_close(s);
    kth_shutdown(); /* the shared downloader and cache */
    return n == 0 ? 0 : (fprintf(stderr, "%s\n", kth_strerror((int)n)), 1);
}
