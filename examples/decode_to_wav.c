/* decode_to_wav.c: decodes a stream (an http(s) URL of a file or an HLS playlist, or a local
 * path) to a 16-bit WAV file. cc decode_to_wav.c $(pkg-config --cflags --libs kithara) */
#include <kithara/kithara.h>
#include <stdint.h>
#include <stdio.h>

static void put(FILE *f, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        fputc((int)(v >> (8 * i)) & 0xff, f);
}

static void wav_header(FILE *f, const kth_pcm_format *fmt, uint32_t data_bytes)
{
    fwrite("RIFF", 1, 4, f), put(f, 36 + data_bytes, 4), fwrite("WAVEfmt ", 1, 8, f);
    put(f, 16, 4), put(f, 1, 2), put(f, fmt->channels, 2), put(f, fmt->sample_rate, 4);
    put(f, fmt->sample_rate * fmt->channels * 2, 4), put(f, fmt->channels * 2, 2), put(f, 16, 2);
    fwrite("data", 1, 4, f), put(f, data_bytes, 4);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return fprintf(stderr, "usage: decode_to_wav URL OUT.wav\n"), 2;
    kth_decoder *d;
    char err[512];
    if (kth_decoder_open(argv[1], NULL, NULL, &d, err, sizeof err) != KTH_OK)
        return fprintf(stderr, "%s\n", err), 1;
    kth_pcm_format fmt; /* s16 at the source's rate and channels (the default options) */
    kth_decoder_format(d, &fmt);
    FILE *out = fopen(argv[2], "wb");
    if (!out)
        return perror(argv[2]), 1;
    wav_header(out, &fmt, 0);
    int16_t pcm[4096 * 8];
    uint64_t frames = 0;
    int64_t n;
    while ((n = kth_decoder_read(d, pcm, 4096 * 8 / fmt.channels)) > 0) {
        fwrite(pcm, kth_decoder_frame_bytes(d), (size_t)n, out); /* switches are hidden */
        frames += (uint64_t)n;
    }
    if (n < 0)
        kth_decoder_last_error(d, err, sizeof err), fprintf(stderr, "%s\n", err);
    rewind(out);
    wav_header(out, &fmt, (uint32_t)(frames * kth_decoder_frame_bytes(d)));
    fclose(out);
    kth_decoder_close(d);
    kth_shutdown();
    printf("%llu frames\n", (unsigned long long)frames);
    return n < 0;
}
