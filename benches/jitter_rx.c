/*
 * jitter_rx: the receiving end of benches/run.sh. Counts and inspects an RTP stream on
 * 127.0.0.1 and measures its packet inter-departure jitter from kernel receive timestamps.
 *
 *   jitter_rx PORT_FILE [--opus] [--frame-us N] [--skip-ms N] [--nap-ms N] [--dump FILE]
 *             [--first-packet CMD ARG...]
 *
 * Binds 127.0.0.1 on two consecutive ports P and P+1 (RTP and RTCP, so a sender's RTCP
 * meets no ICMP port-unreachable) and writes P to PORT_FILE. Datagrams on P+1 are read and
 * discarded. The receive buffer is forced to 512 MiB (SO_RCVBUFFORCE; a whole unpaced run
 * fits, even when real-time senders keep this process off the CPU until they are done) and
 * the socket is read in batches (recvmmsg) every --nap-ms (default 20) ms, so a fast sender
 * costs this process a few wake-ups a second, not one per packet. Drops are counted anyway
 * (SO_RXQ_OVFL, and the socket's drop counter in /proc/net/udp at the end).
 *
 * Every datagram carries its kernel receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME). On
 * loopback the kernel stamps the packet while the sender's sendmsg() runs, so the interval
 * between two stamps is the sender's inter-departure time, whatever this reader's
 * scheduling. With --frame-us T, intervals (consecutive packets in arrival order, those
 * starting in the first --skip-ms ms after the first packet left out, default 1000) are
 * compared with T: mean, standard deviation, and the 50th/99th/99.9th percentile and the
 * maximum of |interval - T|.
 *
 * On SIGTERM or SIGINT it reads until the port has been quiet for 300 ms and prints one
 * line of key=value pairs:
 *   packets bytes (RTP payload) drops (receive-queue overflows, SO_RXQ_OVFL) ssrcs pt
 *   seq_gaps lost (sequence-number gaps, RFC 3550 style) payload_min payload_max
 *   opus_dur_min_us opus_dur_max_us silk hybrid celt nb mb wb swb fb (with --opus: the
 *   TOC byte of every payload, RFC 6716 §3.1: packet duration, mode and audio bandwidth)
 *   intervals mean_us sd_us dev_p50_us dev_p99_us dev_p999_us dev_max_us (with --frame-us)
 *
 * --dump FILE writes every packet's timestamp (ns since the first one), one a line.
 *
 * --first-packet CMD ARG...: start-up mode. Reads the clock (CLOCK_REALTIME) just before
 * fork + execvp(CMD), waits for the first datagram on P ("{PORT}" in any argument is
 * replaced by P, which is also in PORT_FILE before the fork), sends the command SIGTERM (SIGKILL 5 s later),
 * and prints "startup_us=N" (first packet's kernel timestamp minus the clock before exec).
 * Gives up with status 1 after 10 s without a packet.
 *
 * Build: cc -O2 benches/jitter_rx.c -o jitter_rx -lm
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define MAXDGRAM 2048

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what)
{
    fprintf(stderr, "jitter_rx: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int64_t ts_ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec; }

/* Stream state. */
static unsigned long packets, bytes, drops, seq_gaps, lost, ssrcs;
static unsigned long silk, hybrid, celt, bw[5];
static unsigned payload_min = ~0u, payload_max, opus_dur_min = ~0u, opus_dur_max;
static int pt = -1, have_seq, opus;
static uint32_t ssrc;
static uint16_t last_seq;
static int64_t *stamps;
static size_t nstamps, capstamps;

/* Opus packet duration in µs from the TOC byte and, for code 3, the frame count byte. */
static unsigned opus_duration_us(const unsigned char *p, size_t len)
{
    static const unsigned silk_us[4] = {10000, 20000, 40000, 60000};
    static const unsigned celt_us[4] = {2500, 5000, 10000, 20000};
    unsigned config = p[0] >> 3, frame_us, frames;
    if (config < 12)
        frame_us = silk_us[config & 3];
    else if (config < 16)
        frame_us = (config & 1) ? 20000 : 10000;
    else
        frame_us = celt_us[config & 3];
    switch (p[0] & 3) {
    case 0: frames = 1; break;
    case 3: frames = len > 1 ? (p[1] & 0x3f) : 0; break;
    default: frames = 2; break;
    }
    return frame_us * frames;
}

static void account(const unsigned char *d, size_t len, int64_t stamp, uint32_t ovfl)
{
    if (ovfl > drops)
        drops = ovfl;
    if (len < 12 || (d[0] >> 6) != 2)
        return;
    size_t off = 12 + 4u * (d[0] & 0x0f);
    if ((d[0] & 0x10) && len >= off + 4)
        off += 4 + 4u * (((unsigned)d[off + 2] << 8) | d[off + 3]);
    size_t end = len;
    if ((d[0] & 0x20) && len > off)
        end = len - d[len - 1] < off ? off : len - d[len - 1];
    if (off > end)
        return;
    size_t plen = end - off;
    uint16_t seq = (uint16_t)((d[2] << 8) | d[3]);
    uint32_t s = ((uint32_t)d[8] << 24) | ((uint32_t)d[9] << 16) | ((uint32_t)d[10] << 8) | d[11];
    pt = d[1] & 0x7f;
    if (!packets || s != ssrc) {
        ssrcs++;
        ssrc = s;
        have_seq = 0;
    }
    if (have_seq && seq != (uint16_t)(last_seq + 1)) {
        seq_gaps++;
        uint16_t gap = (uint16_t)(seq - last_seq - 1);
        if (gap < 0x8000)
            lost += gap;
    }
    last_seq = seq;
    have_seq = 1;
    packets++;
    bytes += plen;
    if (plen < payload_min)
        payload_min = (unsigned)plen;
    if (plen > payload_max)
        payload_max = (unsigned)plen;
    if (opus && plen > 0) {
        unsigned config = d[off] >> 3;
        if (config < 12)
            silk++;
        else if (config < 16)
            hybrid++;
        else
            celt++;
        /* Bandwidth: SILK NB/MB/WB, hybrid SWB/FB, CELT NB/WB/SWB/FB. */
        int b;
        if (config < 12)
            b = (int)(config / 4);
        else if (config < 16)
            b = config < 14 ? 3 : 4;
        else {
            static const int celt_bw[4] = {0, 2, 3, 4};
            b = celt_bw[(config - 16) / 4];
        }
        bw[b]++;
        unsigned dur = opus_duration_us(d + off, plen);
        if (dur < opus_dur_min)
            opus_dur_min = dur;
        if (dur > opus_dur_max)
            opus_dur_max = dur;
    }
    if (nstamps == capstamps) {
        capstamps = capstamps ? 2 * capstamps : 65536;
        stamps = realloc(stamps, capstamps * sizeof *stamps);
        if (!stamps)
            die("realloc");
    }
    stamps[nstamps++] = stamp;
}

/* Reads everything queued on fd without blocking. Returns the number of datagrams. */
static int drain(int fd, int keep)
{
    static unsigned char bufs[BATCH][MAXDGRAM];
    static char ctrl[BATCH][CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(uint32_t))];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    int total = 0;
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = MAXDGRAM;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = ctrl[i];
            msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i];
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return total;
            if (errno == EINTR)
                continue;
            die("recvmmsg");
        }
        for (int i = 0; keep && i < n; i++) {
            int64_t stamp = 0;
            uint32_t ovfl = 0;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c;
                 c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
                    struct timespec t;
                    memcpy(&t, CMSG_DATA(c), sizeof t);
                    stamp = ts_ns(&t);
                } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                    memcpy(&ovfl, CMSG_DATA(c), sizeof ovfl);
                }
            }
            account(bufs[i], msgs[i].msg_len, stamp, ovfl);
        }
        total += n;
        if (n < BATCH)
            return total;
    }
}

static int bind_udp(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1, big = 512 << 20;
    if (fd < 0)
        die("socket");
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) < 0)
        die("setsockopt");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of n sorted nanosecond values, in µs. */
static double quantile_us(const int64_t *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t rank = (size_t)ceil(q * (double)n);
    return (double)v[(rank ? rank : 1) - 1] / 1000.0;
}

/* The kernel's drop counter of the socket (last column of /proc/net/udp), by inode. */
static unsigned long proc_drops(int fd)
{
    struct stat st;
    char line[512];
    unsigned long result = 0;
    FILE *f = fopen("/proc/net/udp", "r");
    if (!f || fstat(fd, &st) < 0)
        return 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long inode, dr;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops */
        if (sscanf(line, " %*s %*s %*s %*s %*s %*s %*s %*s %*s %lu %*s %*s %lu", &inode, &dr) == 2 &&
            inode == (unsigned long)st.st_ino)
            result = dr;
    }
    fclose(f);
    return result;
}

static void report(long frame_us, long skip_ms)
{
    printf("packets=%lu bytes=%lu drops=%lu ssrcs=%lu pt=%d seq_gaps=%lu lost=%lu payload_min=%u "
           "payload_max=%u opus_dur_min_us=%u opus_dur_max_us=%u silk=%lu hybrid=%lu celt=%lu "
           "nb=%lu mb=%lu wb=%lu swb=%lu fb=%lu",
           packets, bytes, drops, ssrcs, pt, seq_gaps, lost, packets ? payload_min : 0, payload_max,
           opus_dur_min == ~0u ? 0 : opus_dur_min, opus_dur_max, silk, hybrid, celt, bw[0], bw[1],
           bw[2], bw[3], bw[4]);
    if (frame_us > 0) {
        size_t n = 0;
        int64_t *dev = malloc((nstamps ? nstamps : 1) * sizeof *dev);
        double sum = 0, sum2 = 0;
        if (!dev)
            die("malloc");
        for (size_t i = 1; i < nstamps; i++) {
            if (!stamps[0] || stamps[i - 1] - stamps[0] < (int64_t)skip_ms * 1000000)
                continue;
            int64_t iv = stamps[i] - stamps[i - 1];
            sum += (double)iv;
            sum2 += (double)iv * (double)iv;
            int64_t d = iv - (int64_t)frame_us * 1000;
            dev[n++] = d < 0 ? -d : d;
        }
        double mean = n ? sum / (double)n : 0;
        double var = n > 1 ? (sum2 - (double)n * mean * mean) / (double)(n - 1) : 0;
        qsort(dev, n, sizeof *dev, cmp_i64);
        printf(" intervals=%zu mean_us=%.1f sd_us=%.1f dev_p50_us=%.1f dev_p99_us=%.1f "
               "dev_p999_us=%.1f dev_max_us=%.1f",
               n, mean / 1000.0, var > 0 ? sqrt(var) / 1000.0 : 0.0, quantile_us(dev, n, 0.5),
               quantile_us(dev, n, 0.99), quantile_us(dev, n, 0.999),
               n ? (double)dev[n - 1] / 1000.0 : 0.0);
        free(dev);
    }
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long frame_us = 0, skip_ms = 1000, nap_ms = 20;
    const char *dump = NULL;
    char **cmd = NULL;
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT_FILE [--opus] [--frame-us N] [--skip-ms N] [--nap-ms N] "
                        "[--dump FILE] [--first-packet CMD ARG...]\n", argv[0]);
        return 2;
    }
    const char *port_file = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--first-packet") == 0 && i + 1 < argc) {
            cmd = &argv[i + 1];
            break;
        } else if (strcmp(argv[i], "--opus") == 0)
            opus = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--frame-us") == 0)
            frame_us = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--skip-ms") == 0)
            skip_ms = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--dump") == 0)
            dump = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--nap-ms") == 0)
            nap_ms = atol(argv[++i]);
        else {
            fprintf(stderr, "jitter_rx: unknown argument %s\n", argv[i]);
            return 2;
        }
    }

    /* Two consecutive free ports: an ephemeral one, and the next one up. */
    int fd = -1, rtcp = -1;
    for (int tries = 0; tries < 100 && rtcp < 0; tries++) {
        if (fd >= 0)
            close(fd);
        fd = bind_udp(0);
        if (fd < 0)
            die("bind");
        struct sockaddr_in a;
        socklen_t alen = sizeof a;
        if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
            die("getsockname");
        uint16_t p = ntohs(a.sin_port);
        if (p < 65535)
            rtcp = bind_udp((uint16_t)(p + 1));
    }
    if (rtcp < 0)
        die("no two consecutive free ports");
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &alen);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%u\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0 || rename(tmp, port_file) < 0)
        die(port_file);

    if (cmd) {
        /* "{PORT}" anywhere in the command's arguments becomes the RTP port. */
        char portstr[8];
        snprintf(portstr, sizeof portstr, "%u", ntohs(a.sin_port));
        for (char **arg = cmd; *arg; arg++) {
            char *at = strstr(*arg, "{PORT}");
            if (at) {
                size_t len = strlen(*arg) - 6 + strlen(portstr) + 1;
                char *sub = malloc(len);
                if (!sub)
                    die("malloc");
                snprintf(sub, len, "%.*s%s%s", (int)(at - *arg), *arg, portstr, at + 6);
                *arg = sub;
            }
        }
        struct timespec t0;
        clock_gettime(CLOCK_REALTIME, &t0);
        pid_t child = fork();
        if (child < 0)
            die("fork");
        if (child == 0) {
            execvp(cmd[0], cmd);
            _exit(127);
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int got = 0, status;
        for (int waited = 0; !got && !stop && waited < 10000; waited += 5) {
            if (poll(&p, 1, 5) > 0 && drain(fd, 1) > 0 && nstamps)
                got = 1;
            if (!got && waitpid(child, &status, WNOHANG) == child) {
                fprintf(stderr, "jitter_rx: %s exited before sending\n", cmd[0]);
                return 1;
            }
        }
        kill(child, SIGTERM);
        for (int i = 0; i < 500 && waitpid(child, &status, WNOHANG) == 0; i++)
            usleep(10000);
        if (waitpid(child, &status, WNOHANG) == 0) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
        }
        if (!got) {
            fprintf(stderr, "jitter_rx: no packet from %s within 10 s\n", cmd[0]);
            return 1;
        }
        printf("startup_us=%.0f\n", (double)(stamps[0] - ts_ns(&t0)) / 1000.0);
        return 0;
    }

    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = rtcp, .events = POLLIN}};
    struct timespec nap = {.tv_sec = nap_ms / 1000, .tv_nsec = (nap_ms % 1000) * 1000000};
    while (!stop) {
        if (poll(p, 2, 200) < 0 && errno != EINTR)
            die("poll");
        drain(fd, 1);
        drain(rtcp, 0);
        if (!stop)
            nanosleep(&nap, NULL);
    }
    /* Packets a sender handed to the kernel just before it exited may still wait in a CPU's
     * backlog for softirq processing (ksoftirqd can be kept off the CPU by real-time
     * threads): read until nothing has come for 300 ms (at most 5 s). */
    for (int quiet = 0, waited = 0; quiet < 3 && waited < 50; waited++)
        quiet = poll(p, 1, 100) > 0 && drain(fd, 1) > 0 ? 0 : quiet + 1;
    unsigned long d = proc_drops(fd);
    if (d > drops)
        drops = d;
    report(frame_us, skip_ms);
    if (dump) {
        FILE *d = fopen(dump, "w");
        if (!d)
            die(dump);
        for (size_t i = 0; i < nstamps; i++)
            fprintf(d, "%lld\n", (long long)(stamps[i] - stamps[0]));
        fclose(d);
    }
    return 0;
}
