/*
 * bare_opus: the floor rtpmic is compared with in docs/PERFORMANCE.md. A plain loop: no
 * threads, no queues; read a frame, encode it, (optionally) add a 12-byte RTP header and
 * sendto() it, repeat.
 *
 *   bare_opus FILE [--codec opus|pcmu|l16] [--frame-ms MS] [--send HOST PORT]
 *   bare_opus --alsa PCM --seconds S [--codec …] [--frame-ms MS] [--send HOST PORT]
 *
 * FILE is raw S16_LE mono, 48 kHz (opus, l16) or 8 kHz (pcmu), read one frame at a time
 * with fread (default 20 ms; 960 samples for Opus). Codecs, with rtpmic's settings:
 *   opus  libopus, OPUS_APPLICATION_VOIP, 32000 bit/s, complexity 10, constrained VBR, mono
 *         (PT 96);
 *   pcmu  G.711 µ-law (PT 0);
 *   l16   16-bit big-endian samples (RFC 3551 L16; PT 97).
 *
 * --alsa: reads S seconds from the ALSA capture PCM instead (blocking snd_pcm_readi,
 * S16_LE mono at the codec's rate, one period per frame, a buffer of at least 4 periods and
 * 100 ms, as rtpmic asks for). On a paced device this is the paced floor; it then also
 * reports the latency it adds, measured as rtpmic measures its own: from the snd_pcm_readi()
 * that completed a frame returning to sendto() returning (CLOCK_MONOTONIC; exact 50th, 99th,
 * 99.9th percentiles and maximum, µs).
 *
 * Prints to stdout at the end: "packets=N bytes=M silk=S hybrid=H celt=C" (bytes: payload;
 * S/H/C: Opus packets per mode, from the TOC byte, RFC 6716 §3.1), plus with --alsa
 * " lat_p50_us=… lat_p99_us=… lat_p999_us=… lat_max_us=…". A trailing partial frame is
 * ignored. Build:
 *   cc -O2 benches/bare_opus.c $(pkg-config --cflags --libs opus alsa) -o bare_opus
 */
#include <alsa/asoundlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <opus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME 960
#define RTP_HEADER 12
#define MAX_PAYLOAD 1500

enum codec { OPUS, PCMU, L16 };

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bare_opus: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank q-quantile of n sorted nanosecond values, in µs. */
static double quantile_us(const int64_t *v, unsigned long n, double q)
{
    unsigned long rank = (unsigned long)(q * (double)n + 0.999999);
    return n ? (double)v[(rank ? rank : 1) - 1] / 1000.0 : 0.0;
}

/* G.711 µ-law, the classic segment/bias algorithm, the segment found with one clz. */
static uint8_t linear_to_ulaw(int16_t sample)
{
    int s = sample, sign = 0;
    if (s < 0) {
        s = -s;
        sign = 0x80;
    }
    if (s > 32635)
        s = 32635;
    s += 0x84;
    int exponent = 31 - __builtin_clz((unsigned)(s >> 7) | 1);
    int mantissa = (s >> (exponent + 3)) & 0x0f;
    return (uint8_t)~(sign | (exponent << 4) | mantissa);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s FILE [--codec opus|pcmu|l16] [--frame-ms MS] [--send HOST PORT]\n"
            "       %s --alsa PCM --seconds S [--codec opus|pcmu|l16] [--frame-ms MS] [--send HOST PORT]\n",
            argv0, argv0);
    exit(2);
}

static void alsa_check(int err, const char *what)
{
    if (err < 0)
        die(what, snd_strerror(err));
}

/* Opens PCM for capture as rtpmic does: S16_LE mono at RATE, period = frame, buffer of at
 * least 4 periods and 100 ms; blocking reads. */
static snd_pcm_t *open_alsa(const char *name, unsigned rate_wanted, snd_pcm_uframes_t frame)
{
    snd_pcm_t *pcm;
    snd_pcm_hw_params_t *hw;
    snd_pcm_sw_params_t *sw;
    snd_pcm_uframes_t period = frame, buffer, periods;
    unsigned rate = rate_wanted;
    alsa_check(snd_pcm_open(&pcm, name, SND_PCM_STREAM_CAPTURE, 0), name);
    snd_pcm_hw_params_alloca(&hw);
    alsa_check(snd_pcm_hw_params_any(pcm, hw), "hw_params_any");
    alsa_check(snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED), "access");
    alsa_check(snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16_LE), "format");
    alsa_check(snd_pcm_hw_params_set_channels(pcm, hw, 1), "channels");
    alsa_check(snd_pcm_hw_params_set_rate_near(pcm, hw, &rate, NULL), "rate");
    if (rate != rate_wanted)
        die("rate not available", name);
    alsa_check(snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, NULL), "period");
    periods = (rate / 10 + period - 1) / period;
    buffer = period * (periods < 4 ? 4 : periods);
    alsa_check(snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &buffer), "buffer");
    alsa_check(snd_pcm_hw_params(pcm, hw), "hw_params");
    snd_pcm_sw_params_alloca(&sw);
    alsa_check(snd_pcm_sw_params_current(pcm, sw), "sw_params_current");
    alsa_check(snd_pcm_sw_params_set_avail_min(pcm, sw, period), "avail_min");
    alsa_check(snd_pcm_sw_params(pcm, sw), "sw_params");
    alsa_check(snd_pcm_prepare(pcm), "prepare");
    alsa_check(snd_pcm_start(pcm), "start");
    return pcm;
}

/* Fills pcm[0..n) from the device; recovers from overruns. */
static int read_alsa(snd_pcm_t *dev, int16_t *pcm, snd_pcm_uframes_t n)
{
    while (n > 0) {
        snd_pcm_sframes_t got = snd_pcm_readi(dev, pcm, n);
        if (got < 0) {
            alsa_check(snd_pcm_recover(dev, (int)got, 1), "readi");
            continue;
        }
        pcm += got;
        n -= (snd_pcm_uframes_t)got;
    }
    return 1;
}

int main(int argc, char **argv)
{
    const char *source = NULL, *host = NULL, *port = NULL;
    int alsa = 0;
    enum codec codec = OPUS;
    double frame_ms = 20, seconds = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--send") == 0 && i + 2 < argc) {
            host = argv[++i];
            port = argv[++i];
        } else if (strcmp(argv[i], "--frame-ms") == 0 && i + 1 < argc)
            frame_ms = atof(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--codec") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "opus") == 0)
                codec = OPUS;
            else if (strcmp(argv[i], "pcmu") == 0)
                codec = PCMU;
            else if (strcmp(argv[i], "l16") == 0)
                codec = L16;
            else
                usage(argv[0]);
        } else if (strcmp(argv[i], "--alsa") == 0 && i + 1 < argc) {
            alsa = 1;
            source = argv[++i];
        } else if (argv[i][0] != '-' && !source)
            source = argv[i];
        else
            usage(argv[0]);
    }
    const unsigned rate = codec == PCMU ? 8000 : 48000;
    const int frame = (int)(frame_ms * rate / 1000 + 0.5);
    if (!source || (alsa && seconds <= 0) || frame < 1 || frame > MAX_FRAME ||
        (codec == OPUS && !(frame == 120 || frame == 240 || frame == 480 || frame == 960)) ||
        (codec == L16 && frame * 2 > MAX_PAYLOAD))
        usage(argv[0]);

    FILE *in = NULL;
    snd_pcm_t *dev = NULL;
    unsigned long max_frames = alsa ? (unsigned long)(seconds * rate / frame + 0.5) : ~0ul;
    if (alsa)
        dev = open_alsa(source, rate, (snd_pcm_uframes_t)frame);
    else if (!(in = fopen(source, "rb")))
        die("cannot open", source);

    int sock = -1;
    struct sockaddr_in to;
    if (host) {
        memset(&to, 0, sizeof to);
        to.sin_family = AF_INET;
        to.sin_port = htons((uint16_t)atoi(port));
        if (inet_pton(AF_INET, host, &to.sin_addr) != 1)
            die("not an IPv4 address", host);
        sock = socket(AF_INET, SOCK_DGRAM, 0);
        if (sock < 0)
            die("socket", NULL);
    }

    OpusEncoder *enc = NULL;
    if (codec == OPUS) {
        int err;
        enc = opus_encoder_create((opus_int32)rate, 1, OPUS_APPLICATION_VOIP, &err);
        if (err != OPUS_OK)
            die("opus_encoder_create", opus_strerror(err));
        if (opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000)) != OPUS_OK ||
            opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(10)) != OPUS_OK ||
            opus_encoder_ctl(enc, OPUS_SET_VBR(1)) != OPUS_OK ||
            opus_encoder_ctl(enc, OPUS_SET_VBR_CONSTRAINT(1)) != OPUS_OK)
            die("opus_encoder_ctl", NULL);
    }
    const unsigned char pt = codec == OPUS ? 96 : codec == PCMU ? 0 : 97;

    int16_t pcm[MAX_FRAME];
    int64_t *lat = NULL, read_ns = 0;
    if (dev && !(lat = calloc(max_frames, sizeof *lat)))
        die("out of memory", NULL);
    unsigned char pkt[RTP_HEADER + MAX_PAYLOAD];
    unsigned char *payload = pkt + RTP_HEADER;
    uint16_t seq = 0;
    uint32_t ts = 0;
    const uint32_t ssrc = 0x62617265; /* "bare" */
    unsigned long packets = 0, bytes = 0, silk = 0, hybrid = 0, celt = 0;
    while (packets < max_frames &&
           (dev ? read_alsa(dev, pcm, (snd_pcm_uframes_t)frame)
                : fread(pcm, sizeof pcm[0], (size_t)frame, in) == (size_t)frame)) {
        if (lat)
            read_ns = now_ns();
        int n;
        if (codec == OPUS) {
            n = opus_encode(enc, pcm, frame, payload, MAX_PAYLOAD);
            if (n < 0)
                die("opus_encode", opus_strerror(n));
            /* TOC config: 0-11 SILK-only, 12-15 hybrid, 16-31 CELT-only. */
            unsigned config = payload[0] >> 3;
            if (config < 12)
                silk++;
            else if (config < 16)
                hybrid++;
            else
                celt++;
        } else if (codec == PCMU) {
            for (int i = 0; i < frame; i++)
                payload[i] = linear_to_ulaw(pcm[i]);
            n = frame;
        } else {
            for (int i = 0; i < frame; i++) {
                payload[2 * i] = (unsigned char)((uint16_t)pcm[i] >> 8);
                payload[2 * i + 1] = (unsigned char)pcm[i];
            }
            n = 2 * frame;
        }
        if (sock >= 0) {
            pkt[0] = 0x80; /* V=2 */
            pkt[1] = pt;   /* no marker */
            pkt[2] = (unsigned char)(seq >> 8);
            pkt[3] = (unsigned char)seq;
            pkt[4] = (unsigned char)(ts >> 24);
            pkt[5] = (unsigned char)(ts >> 16);
            pkt[6] = (unsigned char)(ts >> 8);
            pkt[7] = (unsigned char)ts;
            pkt[8] = (unsigned char)(ssrc >> 24);
            pkt[9] = (unsigned char)(ssrc >> 16);
            pkt[10] = (unsigned char)(ssrc >> 8);
            pkt[11] = (unsigned char)ssrc;
            /* Errors (e.g. ECONNREFUSED is not reported on an unconnected socket) are
             * ignored, as a live sender would. */
            (void)sendto(sock, pkt, (size_t)(RTP_HEADER + n), 0, (struct sockaddr *)&to,
                         sizeof to);
            seq++;
            ts += codec == OPUS ? (uint32_t)frame * (48000 / rate) : (uint32_t)frame;
        }
        if (lat)
            lat[packets] = now_ns() - read_ns;
        packets++;
        bytes += (unsigned long)n;
    }
    if (in && ferror(in))
        die("read error", source);
    if (enc)
        opus_encoder_destroy(enc);
    if (in)
        fclose(in);
    if (dev)
        snd_pcm_close(dev);
    if (sock >= 0)
        close(sock);
    printf("packets=%lu bytes=%lu silk=%lu hybrid=%lu celt=%lu", packets, bytes, silk, hybrid, celt);
    if (lat) {
        qsort(lat, packets, sizeof *lat, cmp_i64);
        printf(" lat_p50_us=%.0f lat_p99_us=%.0f lat_p999_us=%.0f lat_max_us=%.0f",
               quantile_us(lat, packets, 0.5), quantile_us(lat, packets, 0.99),
               quantile_us(lat, packets, 0.999), packets ? (double)lat[packets - 1] / 1000.0 : 0.0);
        free(lat);
    }
    printf("\n");
    return 0;
}
