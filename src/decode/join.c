/*
 * join.c — the end of a splice: at a variant fence the decode goes on into the new variant's
 * splice, at the end of the stream the codec decoder is drained.
 *
 * Frame accounting at a switch: the old splice ends on a segment boundary, every packet of it
 * has been sent to the codec decoder, and the new splice starts with the packet of the segment
 * that follows. Counting decoded samples across the join (src_next goes on) therefore neither
 * loses nor doubles a frame.
 * - Same codec configuration: the codec decoder is kept. Its state (the overlap of the last
 *   codec frame, the bit reservoir) carries into the new variant's first frames, which is what
 *   makes the PCM equal to the new variant's own decode from two codec frames on, without a
 *   discontinuity in between.
 * - Otherwise the old decoder is drained (its delayed frames come out before the join), a new
 *   one is opened, and its first converted frames are blended from the last sample before the
 *   join (convert.c), so a decoder that starts from silence does not click.
 * Declared encoder delay is trimmed once, at the start of the media: a joined splice's packets
 * lose their "skip samples" side data (the end padding stays).
 */
#include "decode/decode_internal.h"

/* Decodes what the old codec decoder still holds into the PCM buffer. */
static kth_status drain_old_codec(kth_decoder *d)
{
    int r = avcodec_send_packet(d->codec, NULL);
    if (r < 0 && r != AVERROR_EOF)
        return decode_fail_av(d, r, "draining the decoder");
    for (int guard = 0; guard < 1024; guard++) {
        r = avcodec_receive_frame(d->codec, d->frame);
        if (r == AVERROR_EOF || r == AVERROR(EAGAIN))
            return KTH_OK;
        if (r < 0)
            return decode_fail_av(d, r, "draining the decoder");
        kth_status st = decode_take_frame(d);
        av_frame_unref(d->frame);
        if (st != KTH_OK)
            return st;
    }
    return KTH_OK;
}

static void publish_switch(kth_decoder *d, kth_event_kind kind, int from)
{
    kth_event_decode ev = {
        .from_variant = from,
        .to_variant = d->variant,
        .frame = d->position + (d->pcm_frames - d->pcm_off),
        .sample_rate = (uint32_t)d->st->codecpar->sample_rate,
        .channels = (uint32_t)d->st->codecpar->ch_layout.nb_channels,
    };
    decode_publish(d, kind, &ev);
}

/* Opens the new variant's splice and joins it to the decode. */
static kth_status join_next_splice(kth_decoder *d)
{
    int from = d->variant;
    kth_status st = kth_avio_next_splice(d->io);
    if (st != KTH_OK)
        return decode_fail(d, st, "starting the new variant's bytes at stream offset %llu",
                           (unsigned long long)kth_stream_position(d->stream));
    st = demux_open(d);
    if (st != KTH_OK)
        return st;
    d->joined = true;
    d->variant = kth_stream_current_variant(d->stream);
    if (demux_same_config(d)) {
        publish_switch(d, KTH_EVENT_DECODER_KEPT, from);
        return KTH_OK;
    }
    int old_rate = d->codec->sample_rate;
    int old_channels = d->codec->ch_layout.nb_channels;
    st = drain_old_codec(d);
    if (st == KTH_OK)
        st = demux_open_codec(d);
    if (st != KTH_OK)
        return st;
    int rate = d->codec->sample_rate;
    if (rate > 0 && old_rate > 0 && rate != old_rate)
        d->src_next = av_rescale(d->src_next, rate, old_rate);
    d->blend_next = true;
    if (rate != old_rate || d->codec->ch_layout.nb_channels != old_channels)
        publish_switch(d, KTH_EVENT_DECODER_FORMAT, from);
    publish_switch(d, KTH_EVENT_DECODER_RESTARTED, from);
    return KTH_OK;
}

kth_status join_end_of_splice(kth_decoder *d)
{
    kth_status io = kth_avio_status(d->io);
    if (io == KTH_ERR_VARIANT_CHANGE)
        return join_next_splice(d);
    if (io != KTH_OK)
        return decode_fail_av(d, AVERROR(EIO), "reading the stream");
    /* The proven end: drain the codec decoder. */
    d->draining = true;
    int r = avcodec_send_packet(d->codec, NULL);
    if (r < 0 && r != AVERROR_EOF)
        return decode_fail_av(d, r, "draining the decoder");
    return KTH_OK;
}
