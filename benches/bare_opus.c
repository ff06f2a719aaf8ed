/*
 * bare_opus: the floor rtpmic's Opus path is compared with in docs/PERFORMANCE.md.
 *
 *   bare_opus FILE [--send HOST PORT]
 *
 * Reads FILE (raw S16_LE mono 48 kHz) 960 samples (20 ms) at a time and encodes each frame
 * with libopus using rtpmic's settings: OPUS_APPLICATION_VOIP, 32000 bit/s, complexity 10,
 * constrained VBR, mono. With --send, each packet also gets a 12-byte RTP header and goes
 * out with one sendto() on a UDP socket. Prints "packets=N bytes=M silk=S hybrid=H celt=C"
 * to stdout at the end (bytes: Opus payload; S/H/C: packets per mode, from the TOC byte,
 * RFC 6716 §3.1). A trailing partial frame is ignored. Build:
 *   cc -O2 benches/bare_opus.c $(pkg-config --cflags --libs opus) -o bare_opus
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <opus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RATE 48000
#define FRAME 960
#define RTP_HEADER 12
#define MAX_PAYLOAD 1500

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bare_opus: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 2 && !(argc == 5 && strcmp(argv[2], "--send") == 0)) {
        fprintf(stderr, "usage: %s FILE [--send HOST PORT]\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (!in)
        die("cannot open", argv[1]);

    int sock = -1;
    struct sockaddr_in to;
    if (argc == 5) {
        memset(&to, 0, sizeof to);
        to.sin_family = AF_INET;
        to.sin_port = htons((uint16_t)atoi(argv[4]));
        if (inet_pton(AF_INET, argv[3], &to.sin_addr) != 1)
            die("not an IPv4 address", argv[3]);
        sock = socket(AF_INET, SOCK_DGRAM, 0);
        if (sock < 0)
            die("socket", NULL);
    }

    int err;
    OpusEncoder *enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
    if (err != OPUS_OK)
        die("opus_encoder_create", opus_strerror(err));
    if (opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000)) != OPUS_OK ||
        opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(10)) != OPUS_OK ||
        opus_encoder_ctl(enc, OPUS_SET_VBR(1)) != OPUS_OK ||
        opus_encoder_ctl(enc, OPUS_SET_VBR_CONSTRAINT(1)) != OPUS_OK)
        die("opus_encoder_ctl", NULL);

    int16_t pcm[FRAME];
    unsigned char pkt[RTP_HEADER + MAX_PAYLOAD];
    uint16_t seq = 0;
    uint32_t ts = 0;
    const uint32_t ssrc = 0x62617265; /* "bare" */
    unsigned long packets = 0, bytes = 0, silk = 0, hybrid = 0, celt = 0;
    while (fread(pcm, sizeof pcm[0], FRAME, in) == FRAME) {
        opus_int32 n = opus_encode(enc, pcm, FRAME, pkt + RTP_HEADER, MAX_PAYLOAD);
        if (n < 0)
            die("opus_encode", opus_strerror(n));
        if (sock >= 0) {
            pkt[0] = 0x80; /* V=2 */
            pkt[1] = 96;   /* PT 96, no marker */
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
            ts += FRAME;
        }
        packets++;
        bytes += (unsigned long)n;
        /* TOC config: 0-11 SILK-only, 12-15 hybrid, 16-31 CELT-only. */
        unsigned config = pkt[RTP_HEADER] >> 3;
        if (config < 12)
            silk++;
        else if (config < 16)
            hybrid++;
        else
            celt++;
    }
    if (ferror(in))
        die("read error", argv[1]);
    opus_encoder_destroy(enc);
    fclose(in);
    if (sock >= 0)
        close(sock);
    printf("packets=%lu bytes=%lu silk=%lu hybrid=%lu celt=%lu\n", packets, bytes, silk, hybrid,
           celt);
    return 0;
}
