/*
 * rtsp_load: a lightweight RTSP/1.0 load client for benches/rtsp_bench.sh. It opens N sessions
 * to one rtsp:// URL, plays them, counts what arrives, and costs as little as it can, so that
 * the server's CPU is what the bench measures.
 *
 *   rtsp_load URL [--clients N] [--tcp | --udp] [--seconds S] [--churn RATE] [--nap-ms MS]
 *             [--parallel P] [--ready FILE] [--sessions FILE] [--keepalive-s S]
 *
 * Each session is its own TCP connection: OPTIONS, DESCRIBE (the SDP's first m= section's
 * a=control, resolved against Content-Base), SETUP (UDP: `RTP/AVP;unicast;client_port=P-P+1`
 * to an even/odd pair bound on the connection's local address; TCP: `RTP/AVP/TCP;unicast;
 * interleaved=0-1`), PLAY (the URL itself, as ffmpeg does), then reading. A 401 is answered
 * once per request: Digest with MD5, with `qop=auth` (rtpmic) or without (RFC 2069, what
 * gst-rtsp-server 1.22 offers), or Basic; credentials come from the URL
 * (rtsp://user:password@host:port/path, percent-encoded). Both servers' dialects are taken:
 * Content-Base with or without a trailing '/', relative or absolute a=control (`trackID=0`,
 * `stream=0`), quoted or unquoted Transport parameters, `Session: id;timeout=N`.
 *
 * Cheap by design: one thread, epoll. A session's sockets are watched closely (woken at once)
 * only until its first RTP packet arrives, so that the time from PLAY to that packet is
 * exact; after that they move to a second epoll set that is only looked at every --nap-ms ms
 * (default 20), and each ready socket is read in one batch (recvmmsg for UDP, one read for
 * TCP). At 64 sessions this is ~50 wake-ups a second, however many packets arrive. Every RTP
 * packet's sequence number is checked: gaps (and the packets they skip), duplicates and
 * late (reordered) packets are counted per session.
 *
 * Times (CLOCK_MONOTONIC, taken when this process reads the data): PLAY sent, PLAY's 200
 * read, first RTP packet read. "first_us" is PLAY sent -> first packet (what a player
 * waits: the request's trip, the server's work, and the wait for the next frame);
 * "first_resp_us" is PLAY's response -> first packet (negative when the packet came first,
 * which UDP allows). The first packet's sequence number against PLAY's RTP-Info: the one
 * named (rtpinfo_next: the next packet the stream made), a later one (rtpinfo_later: packets
 * skipped), an earlier one (rtpinfo_early), or no RTP-Info seq (rtpinfo_none).
 *
 * --ready FILE: written ("playing N") once the first N sessions have all received a packet.
 * SIGUSR1: reads everything queued, then prints "snapshot t_ns=... packets=... playing=..."
 * on stdout (the bench takes two snapshots around its CPU window). After --seconds (counted
 * from ready; 0 = until signalled) or on SIGTERM/SIGINT: TEARDOWN every session, wait up to
 * 3 s for the answers, print one summary line of key=value pairs on stdout:
 *   sessions (started) played failed packets bytes gaps lost dups late rtcp keepalives
 *   keepalive_ok teardowns teardown_ok rtpinfo_next rtpinfo_later rtpinfo_early rtpinfo_none
 *   first_us_p50/p90/p99/max
 *   first_resp_us_p50/max setup_ms_p50/max (connect -> PLAY's 200) duration_s
 * Exit status 0, or 1 if a session failed (a refusal, a connection lost, no packet within
 * 10 s of PLAY), 2 on a usage or system error. Failures are described on stderr.
 *
 * --churn RATE: once N sessions play, every 1/RATE s the oldest session is torn down and a
 * new one opened, so RATE sessions join and RATE leave per second around N at once.
 * --parallel P: at most P sessions being set up at once (default 16).
 * --keepalive-s S: GET_PARAMETER every S s per session (default: half the session timeout
 * the server announced, only when the run is longer than that).
 * --sessions FILE: one line per session at the end: id transport packets gaps lost first_us.
 *
 * Build: cc -O2 benches/rtsp_load.c -o rtsp_load -lm
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 1024
#define RBUF 65536
#define WBUF 4096
#define BATCH 32
#define MAXDGRAM 2048
#define SETUP_LIMIT_NS (10LL * 1000000000) /* connect -> first packet */
#define TEARDOWN_WAIT_NS (3LL * 1000000000)

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rtsp_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- MD5 (RFC 1321) and base64, for Digest and Basic -------------------------------------- */

static uint32_t md5_k[64];
static const uint8_t md5_s[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_block(uint32_t h[4], const uint8_t *p)
{
    uint32_t m[16], a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 16; i++)
        m[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16)
            f = (b & c) | (~b & d), g = i;
        else if (i < 32)
            f = (d & b) | (~d & c), g = (5 * i + 1) % 16;
        else if (i < 48)
            f = b ^ c ^ d, g = (3 * i + 5) % 16;
        else
            f = c ^ (b | ~d), g = (7 * i) % 16;
        f += a + md5_k[i] + m[g];
        a = d;
        d = c;
        c = b;
        b += (f << md5_s[i]) | (f >> (32 - md5_s[i]));
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d;
}

/* Lower-case hex MD5 of s into out[33]. */
static void md5_hex(const char *s, char out[33])
{
    if (!md5_k[0])
        for (int i = 0; i < 64; i++)
            md5_k[i] = (uint32_t)(fabs(sin(i + 1.0)) * 4294967296.0);
    uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    size_t len = strlen(s), i = 0;
    uint8_t blk[64];
    for (; len - i >= 64; i += 64)
        md5_block(h, (const uint8_t *)s + i);
    size_t r = len - i;
    memcpy(blk, s + i, r);
    blk[r++] = 0x80;
    if (r > 56) {
        memset(blk + r, 0, 64 - r);
        md5_block(h, blk);
        r = 0;
    }
    memset(blk + r, 0, 56 - r);
    uint64_t bits = (uint64_t)len * 8;
    for (int k = 0; k < 8; k++)
        blk[56 + k] = (uint8_t)(bits >> (8 * k));
    md5_block(h, blk);
    for (int k = 0; k < 16; k++)
        sprintf(out + 2 * k, "%02x", (h[k / 4] >> (8 * (k % 4))) & 0xff);
}

static void base64(const char *in, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint8_t)in[i] << 16 | (uint8_t)in[i + 1] << 8 | (uint8_t)in[i + 2];
        *out++ = t[v >> 18], *out++ = t[(v >> 12) & 63], *out++ = t[(v >> 6) & 63], *out++ = t[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint8_t)in[i] << 16;
        *out++ = t[v >> 18], *out++ = t[(v >> 12) & 63], *out++ = '=', *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint8_t)in[i] << 16 | (uint8_t)in[i + 1] << 8;
        *out++ = t[v >> 18], *out++ = t[(v >> 12) & 63], *out++ = t[(v >> 6) & 63], *out++ = '=';
    }
    *out = 0;
}

/* ---- configuration -------------------------------------------------------------------------- */

static char url[1024];   /* the URL without credentials */
static char user[256], password[256];
static struct sockaddr_storage server;
static socklen_t server_len;
static int clients = 1, tcp = 1, parallel = 16, nap_ms = 20;
static double seconds, churn, keepalive_s = -1;
static const char *ready_file, *sessions_file;

static void percent_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%' && s[1] && s[2]) {
            char h[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(h, NULL, 16);
            s += 2;
        } else
            *o++ = *s;
    }
    *o = 0;
}

static void parse_url(const char *u)
{
    if (strncasecmp(u, "rtsp://", 7))
        die("%s: not an rtsp:// URL", u);
    const char *auth = u + 7, *path = strchr(auth, '/');
    if (!path)
        path = auth + strlen(auth);
    const char *at = memchr(auth, '@', (size_t)(path - auth));
    const char *host = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        size_t ul = (size_t)((colon ? colon : at) - auth);
        if (ul >= sizeof user)
            die("user name too long");
        memcpy(user, auth, ul);
        if (colon) {
            size_t pl = (size_t)(at - colon - 1);
            if (pl >= sizeof password)
                die("password too long");
            memcpy(password, colon + 1, pl);
        }
        percent_decode(user);
        percent_decode(password);
        host = at + 1;
    }
    char hostport[256], h[256], port[16] = "554";
    size_t hl = (size_t)(path - host);
    if (hl == 0 || hl >= sizeof hostport)
        die("%s: no host", u);
    memcpy(hostport, host, hl);
    hostport[hl] = 0;
    if (hostport[0] == '[') {
        char *e = strchr(hostport, ']');
        if (!e)
            die("%s: bad IPv6 host", u);
        *e = 0;
        snprintf(h, sizeof h, "%s", hostport + 1);
        if (e[1] == ':')
            snprintf(port, sizeof port, "%s", e + 2);
    } else {
        char *c = strrchr(hostport, ':');
        if (c) {
            *c = 0;
            snprintf(port, sizeof port, "%s", c + 1);
        }
        snprintf(h, sizeof h, "%s", hostport);
    }
    snprintf(url, sizeof url, "rtsp://%.*s%s", (int)hl, host, *path ? path : "/");
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(h, port, &hints, &ai);
    if (rc)
        die("%s: %s", h, gai_strerror(rc));
    memcpy(&server, ai->ai_addr, ai->ai_addrlen);
    server_len = ai->ai_addrlen;
    freeaddrinfo(ai);
}

/* ---- sessions --------------------------------------------------------------------------------- */

enum state { FREE, CONNECTING, OPTIONS, DESCRIBE, SETUP, PLAY, PLAYING, TEARDOWN, DONE };
static const char *state_name[] = {"free", "connect", "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "playing", "TEARDOWN",
    "done"};
enum { K_TCP = 0, K_RTP = 1, K_RTCP = 2 };

struct sess {
    enum state st;
    unsigned long id; /* 0, 1, 2, ... in the order started */
    int fd, rtp_fd, rtcp_fd;
    int slow;         /* its sockets are in the slow set */
    char *rbuf;
    size_t rlen;
    char wbuf[WBUF];
    size_t wlen;
    int cseq, pending_cseq, keepalive_cseq, retried;
    char pending_req[WBUF]; /* the request in flight, without its auth and end, for a retry */
    char pending_method[16], pending_uri[1024];
    /* auth chosen from the last 401 */
    int auth; /* 0 none, 1 digest, 2 basic */
    char realm[256], nonce[256], opaque[256];
    int qop;
    unsigned nc;
    char session[256];
    int timeout_s;
    char control[1024];
    int have_rtpinfo_seq;
    uint16_t rtpinfo_seq, first_seq;
    int rtp_ch;
    int64_t t_connect, t_play_sent, t_play_resp, t_first, t_keepalive, t_teardown;
    unsigned long packets, bytes, gaps, lost, dups, late;
    int have_seq;
    uint16_t last_seq;
    int counted; /* played: counted in the totals */
};

static struct sess slots[MAX_SLOTS];
static int ep_fast, ep_slow;
static unsigned long started, played, failed, next_id;
static unsigned long tot_packets, tot_bytes, tot_gaps, tot_lost, tot_dups, tot_late, tot_rtcp, keepalives,
    keepalive_ok, teardowns, teardown_ok, rtpinfo_next, rtpinfo_later, rtpinfo_early, rtpinfo_none;
static int64_t *first_us, *first_resp_us, *setup_us;
static size_t nfirst, capfirst;
static FILE *sessions_out;
static volatile sig_atomic_t stop_flag, snapshot_flag;
static void on_stop(int s) { (void)s; stop_flag = 1; }
static void on_usr1(int s) { (void)s; snapshot_flag = 1; }

static uint64_t tag(int slot, int kind) { return (uint64_t)slot << 2 | (uint64_t)kind; }

static void watch(struct sess *s, int slot, int fd, int kind, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag(slot, kind)};
    if (epoll_ctl(s->slow ? ep_slow : ep_fast, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* Move a session's sockets to the slow set (after its first packet). */
static void go_slow(struct sess *s, int slot)
{
    if (s->slow)
        return;
    int fds[3] = {s->fd, s->rtp_fd, s->rtcp_fd};
    for (int k = 0; k < 3; k++) {
        if (fds[k] < 0)
            continue;
        epoll_ctl(ep_fast, EPOLL_CTL_DEL, fds[k], NULL);
    }
    s->slow = 1;
    for (int k = 0; k < 3; k++)
        if (fds[k] >= 0)
            watch(s, slot, fds[k], k, EPOLLIN | (k == K_TCP && s->wlen ? EPOLLOUT : 0));
}

static void record_first(struct sess *s)
{
    if (nfirst == capfirst) {
        capfirst = capfirst ? 2 * capfirst : 1024;
        first_us = realloc(first_us, capfirst * sizeof *first_us);
        first_resp_us = realloc(first_resp_us, capfirst * sizeof *first_resp_us);
        setup_us = realloc(setup_us, capfirst * sizeof *setup_us);
        if (!first_us || !first_resp_us || !setup_us)
            die("out of memory");
    }
    /* Was the first packet the one RTP-Info named (the next the stream made)? */
    if (!s->have_rtpinfo_seq)
        rtpinfo_none++;
    else if (s->first_seq == s->rtpinfo_seq)
        rtpinfo_next++;
    else if ((uint16_t)(s->first_seq - s->rtpinfo_seq) < 0x8000)
        rtpinfo_later++;
    else
        rtpinfo_early++;
    first_us[nfirst] = (s->t_first - s->t_play_sent) / 1000;
    first_resp_us[nfirst] = (s->t_first - s->t_play_resp) / 1000;
    setup_us[nfirst] = (s->t_play_resp - s->t_connect) / 1000;
    nfirst++;
}

static void close_session(struct sess *s, int slot)
{
    (void)slot;
    int fds[3] = {s->fd, s->rtp_fd, s->rtcp_fd};
    for (int k = 0; k < 3; k++)
        if (fds[k] >= 0)
            close(fds[k]); /* closing removes it from its epoll set */
    if (s->counted || s->packets) {
        tot_packets += s->packets, tot_bytes += s->bytes, tot_gaps += s->gaps, tot_lost += s->lost;
        tot_dups += s->dups, tot_late += s->late;
    }
    if (sessions_out)
        fprintf(sessions_out, "%lu %s %lu %lu %lu %lld\n", s->id, tcp ? "tcp" : "udp", s->packets, s->gaps, s->lost,
            s->t_first && s->t_play_sent ? (long long)((s->t_first - s->t_play_sent) / 1000) : -1LL);
    free(s->rbuf);
    memset(s, 0, sizeof *s);
    s->st = FREE;
    s->fd = s->rtp_fd = s->rtcp_fd = -1;
}

static void fail(struct sess *s, int slot, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rtsp_load: session %lu (%s): ", s->id, state_name[s->st]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failed++;
    close_session(s, slot);
}

static void flush_out(struct sess *s, int slot)
{
    while (s->wlen) {
        ssize_t n = send(s->fd, s->wbuf, s->wlen, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            fail(s, slot, "send: %s", strerror(errno));
            return;
        }
        memmove(s->wbuf, s->wbuf + n, s->wlen - (size_t)n);
        s->wlen -= (size_t)n;
    }
    struct epoll_event ev = {.events = EPOLLIN | (s->wlen ? EPOLLOUT : 0), .data.u64 = tag(slot, K_TCP)};
    epoll_ctl(s->slow ? ep_slow : ep_fast, EPOLL_CTL_MOD, s->fd, &ev);
}

/* Sends METHOD URI with the extra header lines (each ending "\r\n"), adding CSeq, Session,
 * User-Agent and Authorization. Returns the CSeq. */
static int request(struct sess *s, int slot, const char *method, const char *uri, const char *extra)
{
    char authz[1024] = "";
    if (s->auth == 1) {
        char a1[800], ha1[33], a2[1200], ha2[33], r[1400], resp[33], cnonce[17] = "";
        snprintf(a1, sizeof a1, "%s:%s:%s", user, s->realm, password);
        md5_hex(a1, ha1);
        snprintf(a2, sizeof a2, "%s:%s", method, uri);
        md5_hex(a2, ha2);
        if (s->qop) {
            s->nc++;
            snprintf(cnonce, sizeof cnonce, "%08lx%08x", s->id, (unsigned)rand());
            snprintf(r, sizeof r, "%s:%s:%08x:%s:auth:%s", ha1, s->nonce, s->nc, cnonce, ha2);
        } else
            snprintf(r, sizeof r, "%s:%s:%s", ha1, s->nonce, ha2);
        md5_hex(r, resp);
        int n = snprintf(authz, sizeof authz,
            "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\"", user,
            s->realm, s->nonce, uri, resp);
        if (s->qop)
            n += snprintf(authz + n, sizeof authz - (size_t)n, ", algorithm=MD5, qop=auth, nc=%08x, cnonce=\"%s\"",
                s->nc, cnonce);
        if (s->opaque[0])
            n += snprintf(authz + n, sizeof authz - (size_t)n, ", opaque=\"%s\"", s->opaque);
        snprintf(authz + n, sizeof authz - (size_t)n, "\r\n");
    } else if (s->auth == 2) {
        char up[520], b[720];
        snprintf(up, sizeof up, "%s:%s", user, password);
        base64(up, b);
        snprintf(authz, sizeof authz, "Authorization: Basic %s\r\n", b);
    }
    char sess_hdr[300] = "";
    if (s->session[0])
        snprintf(sess_hdr, sizeof sess_hdr, "Session: %s\r\n", s->session);
    int cseq = ++s->cseq;
    int n = snprintf(s->wbuf + s->wlen, WBUF - s->wlen,
        "%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: rtpmic-bench rtsp_load\r\n%s%s%s\r\n", method, uri, cseq, sess_hdr,
        authz, extra ? extra : "");
    if (n < 0 || (size_t)n >= WBUF - s->wlen)
        die("request too long");
    s->wlen += (size_t)n;
    if (strcmp(method, "GET_PARAMETER")) {
        s->pending_cseq = cseq;
        snprintf(s->pending_method, sizeof s->pending_method, "%s", method);
        snprintf(s->pending_uri, sizeof s->pending_uri, "%s", uri);
        snprintf(s->pending_req, sizeof s->pending_req, "%s", extra ? extra : "");
    }
    flush_out(s, slot);
    return cseq;
}

/* An even/odd UDP port pair on addr (the RTSP connection's local address). */
static int bind_pair(const struct sockaddr_storage *addr, int *rtp, int *rtcp)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        struct sockaddr_storage a = *addr;
        socklen_t len = a.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        uint16_t *port = a.ss_family == AF_INET6 ? &((struct sockaddr_in6 *)&a)->sin6_port
                                                 : &((struct sockaddr_in *)&a)->sin_port;
        *port = 0;
        int f1 = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (f1 < 0 || bind(f1, (struct sockaddr *)&a, len) < 0)
            die("UDP socket: %s", strerror(errno));
        getsockname(f1, (struct sockaddr *)&a, &len);
        int p = ntohs(*port);
        if (p & 1 || p == 65534) {
            close(f1);
            continue;
        }
        *port = htons((uint16_t)(p + 1));
        int f2 = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (f2 < 0)
            die("UDP socket: %s", strerror(errno));
        if (bind(f2, (struct sockaddr *)&a, len) < 0) {
            close(f1);
            close(f2);
            continue;
        }
        *rtp = f1;
        *rtcp = f2;
        return p;
    }
    die("no free even/odd UDP port pair");
    return -1;
}

static int start_session(int slot, int64_t now)
{
    struct sess *s = &slots[slot];
    memset(s, 0, sizeof *s);
    s->fd = s->rtp_fd = s->rtcp_fd = -1;
    s->id = next_id++;
    s->rbuf = malloc(RBUF);
    if (!s->rbuf)
        die("out of memory");
    s->fd = socket(server.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->t_connect = now;
    started++;
    if (connect(s->fd, (struct sockaddr *)&server, server_len) < 0 && errno != EINPROGRESS) {
        s->st = CONNECTING;
        fail(s, slot, "connect: %s", strerror(errno));
        return -1;
    }
    s->st = CONNECTING;
    watch(s, slot, s->fd, K_TCP, EPOLLIN | EPOLLOUT);
    return 0;
}

/* ---- responses ------------------------------------------------------------------------------- */

struct resp {
    int status, cseq, content_length;
    char reason[128];
    const char *session, *transport, *content_base, *content_location, *rtp_info;
    const char *www[8];
    int nwww;
    const char *body;
};

/* The value of a header line "Name: value" (head is NUL-terminated lines, modified in place). */
static void parse_head(char *head, struct resp *r)
{
    memset(r, 0, sizeof *r);
    char *save, *line = strtok_r(head, "\r\n", &save);
    if (!line || sscanf(line, "RTSP/1.0 %d %127[^\r\n]", &r->status, r->reason) < 1)
        r->status = -1;
    while ((line = strtok_r(NULL, "\r\n", &save))) {
        char *c = strchr(line, ':');
        if (!c)
            continue;
        *c = 0;
        char *v = c + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!strcasecmp(line, "CSeq"))
            r->cseq = atoi(v);
        else if (!strcasecmp(line, "Session"))
            r->session = v;
        else if (!strcasecmp(line, "Transport"))
            r->transport = v;
        else if (!strcasecmp(line, "Content-Base"))
            r->content_base = v;
        else if (!strcasecmp(line, "Content-Location"))
            r->content_location = v;
        else if (!strcasecmp(line, "Content-Length"))
            r->content_length = atoi(v);
        else if (!strcasecmp(line, "RTP-Info"))
            r->rtp_info = v;
        else if (!strcasecmp(line, "WWW-Authenticate") && r->nwww < 8)
            r->www[r->nwww++] = v;
    }
}

/* param="value" or param=value from a challenge; 0 if absent. */
static int auth_param(const char *h, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *p = h; (p = strcasestr(p, name)); p += nl) {
        if (p != h && p[-1] != ' ' && p[-1] != ',' && p[-1] != '\t')
            continue;
        const char *v = p + nl;
        while (*v == ' ')
            v++;
        if (*v != '=')
            continue;
        v++;
        while (*v == ' ')
            v++;
        size_t n = 0;
        if (*v == '"') {
            v++;
            while (v[n] && v[n] != '"')
                n++;
        } else
            while (v[n] && v[n] != ',' && v[n] != ' ')
                n++;
        if (n >= outlen)
            n = outlen - 1;
        memcpy(out, v, n);
        out[n] = 0;
        return 1;
    }
    return 0;
}

/* Picks a challenge we can answer: Digest with MD5 (or no algorithm), else Basic. */
static int choose_auth(struct sess *s, const struct resp *r)
{
    int basic = 0;
    for (int i = 0; i < r->nwww; i++) {
        const char *h = r->www[i];
        if (!strncasecmp(h, "Digest", 6)) {
            char alg[32] = "MD5", qop[64] = "";
            auth_param(h + 6, "algorithm", alg, sizeof alg);
            if (strcasecmp(alg, "MD5"))
                continue;
            auth_param(h + 6, "realm", s->realm, sizeof s->realm);
            auth_param(h + 6, "nonce", s->nonce, sizeof s->nonce);
            s->opaque[0] = 0;
            auth_param(h + 6, "opaque", s->opaque, sizeof s->opaque);
            s->qop = auth_param(h + 6, "qop", qop, sizeof qop) && strcasestr(qop, "auth") != NULL;
            s->nc = 0;
            s->auth = 1;
            return 1;
        }
        if (!strncasecmp(h, "Basic", 5))
            basic = 1;
    }
    if (basic) {
        s->auth = 2;
        return 1;
    }
    return 0;
}

static void base_plus(char *out, size_t outlen, const char *base, const char *control)
{
    if (!strncasecmp(control, "rtsp://", 7) || !strncasecmp(control, "rtsps://", 8))
        snprintf(out, outlen, "%s", control);
    else if (!strcmp(control, "*") || !*control)
        snprintf(out, outlen, "%s", base);
    else {
        size_t bl = strlen(base), cl = strlen(control);
        int slash = !bl || base[bl - 1] != '/';
        if (bl + (size_t)slash + cl >= outlen)
            die("control URL too long");
        memcpy(out, base, bl);
        if (slash)
            out[bl++] = '/';
        memcpy(out + bl, control, cl + 1);
    }
}

static void trim(char *v)
{
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        v[--n] = 0;
}

static void send_setup(struct sess *s, int slot)
{
    char extra[256];
    if (tcp)
        snprintf(extra, sizeof extra, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n");
    else {
        struct sockaddr_storage local;
        socklen_t len = sizeof local;
        if (getsockname(s->fd, (struct sockaddr *)&local, &len) < 0)
            die("getsockname: %s", strerror(errno));
        int p = bind_pair(&local, &s->rtp_fd, &s->rtcp_fd);
        int big = 256 * 1024;
        setsockopt(s->rtp_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        watch(s, slot, s->rtp_fd, K_RTP, EPOLLIN);
        watch(s, slot, s->rtcp_fd, K_RTCP, EPOLLIN);
        snprintf(extra, sizeof extra, "Transport: RTP/AVP;unicast;client_port=%d-%d\r\n", p, p + 1);
    }
    s->st = SETUP;
    request(s, slot, "SETUP", s->control, extra);
}

static void send_teardown(struct sess *s, int slot, int64_t now)
{
    s->st = TEARDOWN;
    s->t_teardown = now;
    teardowns++;
    request(s, slot, "TEARDOWN", url, NULL);
}

/* A whole response (head NUL-terminated, body of r.content_length bytes). */
static void on_response(struct sess *s, int slot, char *head, const char *body, int64_t now)
{
    struct resp r;
    parse_head(head, &r);
    r.body = body;
    if (r.status < 0) {
        fail(s, slot, "unparseable response");
        return;
    }
    if (s->keepalive_cseq && r.cseq == s->keepalive_cseq) {
        s->keepalive_cseq = 0;
        if (r.status == 200)
            keepalive_ok++;
        return;
    }
    if (r.cseq != s->pending_cseq)
        return; /* not ours (or a late one): ignore */
    if (r.status == 401 && !s->retried && (user[0] || password[0]) && choose_auth(s, &r)) {
        s->retried = 1;
        char extra[WBUF];
        snprintf(extra, sizeof extra, "%s", s->pending_req);
        char method[16], uri[1024];
        snprintf(method, sizeof method, "%s", s->pending_method);
        snprintf(uri, sizeof uri, "%s", s->pending_uri);
        request(s, slot, method, uri, extra);
        return;
    }
    s->retried = 0;
    if (s->st == TEARDOWN) {
        if (r.status == 200)
            teardown_ok++;
        close_session(s, slot);
        return;
    }
    if (r.status != 200) {
        fail(s, slot, "%s: %d %s", s->pending_method, r.status, r.reason);
        return;
    }
    switch (s->st) {
    case OPTIONS:
        s->st = DESCRIBE;
        request(s, slot, "DESCRIBE", url, "Accept: application/sdp\r\n");
        break;
    case DESCRIBE: {
        char base[1024], control[1024] = "";
        if (r.content_base)
            snprintf(base, sizeof base, "%s", r.content_base);
        else if (r.content_location)
            snprintf(base, sizeof base, "%s", r.content_location);
        else
            snprintf(base, sizeof base, "%s", url);
        trim(base);
        /* The first media section's a=control. */
        const char *m = body ? strstr(body, "\nm=") : NULL;
        if (!m) {
            fail(s, slot, "DESCRIBE: no m= line in the SDP");
            return;
        }
        const char *c = strstr(m, "\na=control:");
        if (c) {
            c += 11;
            size_t n = strcspn(c, "\r\n");
            if (n >= sizeof control)
                n = sizeof control - 1;
            memcpy(control, c, n);
            control[n] = 0;
        }
        base_plus(s->control, sizeof s->control, base, control);
        send_setup(s, slot);
        break;
    }
    case SETUP: {
        if (!r.session) {
            fail(s, slot, "SETUP: no Session header");
            return;
        }
        char sess[256];
        snprintf(sess, sizeof sess, "%s", r.session);
        char *semi = strchr(sess, ';');
        s->timeout_s = 60;
        if (semi) {
            char *t = strcasestr(semi, "timeout=");
            if (t)
                s->timeout_s = atoi(t + 8);
            *semi = 0;
        }
        trim(sess);
        snprintf(s->session, sizeof s->session, "%s", sess);
        s->rtp_ch = 0;
        if (tcp && r.transport) {
            const char *i = strstr(r.transport, "interleaved=");
            if (i)
                s->rtp_ch = atoi(i + 12 + (i[12] == '"'));
        }
        s->st = PLAY;
        request(s, slot, "PLAY", url, "Range: npt=0.000-\r\n");
        s->t_play_sent = now_ns();
        break;
    }
    case PLAY:
        s->t_play_resp = now;
        s->t_keepalive = now;
        if (r.rtp_info) {
            const char *q = strstr(r.rtp_info, "seq=");
            if (q) {
                s->rtpinfo_seq = (uint16_t)atoi(q + 4);
                s->have_rtpinfo_seq = 1;
            }
        }
        s->st = PLAYING;
        if (s->t_first) {
            record_first(s);
            played++;
            s->counted = 1;
            go_slow(s, slot);
        }
        break;
    default:
        break;
    }
}

static void on_rtp(struct sess *s, int slot, const unsigned char *d, size_t len, int64_t now)
{
    if (len < 12 || (d[0] >> 6) != 2)
        return;
    uint16_t seq = (uint16_t)(d[2] << 8 | d[3]);
    if (s->have_seq) {
        uint16_t delta = (uint16_t)(seq - s->last_seq);
        if (delta == 0) {
            s->dups++;
            return;
        }
        if (delta >= 0x8000) {
            s->late++;
            return;
        }
        if (delta > 1) {
            s->gaps++;
            s->lost += delta - 1u;
        }
    }
    s->have_seq = 1;
    s->last_seq = seq;
    s->packets++;
    s->bytes += len - 12;
    if (!s->t_first) {
        s->t_first = now;
        s->first_seq = seq;
        if (s->st == PLAYING) {
            /* The PLAY response came first (always so over TCP). */
            record_first(s);
            played++;
            s->counted = 1;
            go_slow(s, slot);
        }
    }
}

/* Parses what the TCP connection brought: responses and interleaved frames. */
static void parse_tcp(struct sess *s, int slot, int64_t now)
{
    size_t off = 0;
    while (off < s->rlen && s->st != FREE) {
        char *p = s->rbuf + off;
        size_t avail = s->rlen - off;
        if (p[0] == '$') {
            if (avail < 4)
                break;
            size_t flen = (size_t)((unsigned char)p[2] << 8 | (unsigned char)p[3]);
            if (avail < 4 + flen)
                break;
            int ch = (unsigned char)p[1];
            if (ch == s->rtp_ch)
                on_rtp(s, slot, (unsigned char *)p + 4, flen, now);
            else
                tot_rtcp++;
            off += 4 + flen;
            continue;
        }
        if (avail < 5)
            break;
        if (memcmp(p, "RTSP/", 5)) {
            fail(s, slot, "unexpected data from the server (0x%02x)", (unsigned char)p[0]);
            return;
        }
        char *end = memmem(p, avail, "\r\n\r\n", 4);
        if (!end) {
            if (avail == RBUF) {
                fail(s, slot, "response head too large");
                return;
            }
            break;
        }
        size_t head_len = (size_t)(end - p) + 4;
        /* Content-Length before parsing in place. */
        int clen = 0;
        {
            char save = p[head_len - 1];
            p[head_len - 1] = 0;
            const char *cl = strcasestr(p, "\nContent-Length:");
            if (cl)
                clen = atoi(cl + 16);
            p[head_len - 1] = save;
        }
        if (clen < 0 || head_len + (size_t)clen > RBUF - 1) {
            fail(s, slot, "response too large");
            return;
        }
        if (avail < head_len + (size_t)clen)
            break;
        /* Copy head and body out (NUL-terminated), consume them, then act on them:
         * on_response may close the session and free rbuf. */
        static char head[RBUF], body[RBUF];
        memcpy(head, p, head_len - 2);
        head[head_len - 2] = 0;
        memcpy(body, p + head_len, (size_t)clen);
        body[clen] = 0;
        size_t consumed = head_len + (size_t)clen, rest = avail - consumed;
        memmove(s->rbuf, p + consumed, rest);
        s->rlen = rest;
        off = 0;
        on_response(s, slot, head, body, now);
    }
    if (s->st != FREE && off) {
        memmove(s->rbuf, s->rbuf + off, s->rlen - off);
        s->rlen -= off;
    }
}

static void read_tcp(struct sess *s, int slot, int64_t now)
{
    for (;;) {
        if (s->rlen == RBUF) {
            fail(s, slot, "input buffer full");
            return;
        }
        ssize_t n = recv(s->fd, s->rbuf + s->rlen, RBUF - s->rlen, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            fail(s, slot, "recv: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            if (s->st == TEARDOWN) {
                close_session(s, slot); /* the server closed after TEARDOWN */
                return;
            }
            fail(s, slot, "the server closed the connection");
            return;
        }
        s->rlen += (size_t)n;
        parse_tcp(s, slot, now);
        if (s->st == FREE || (size_t)n < RBUF / 2)
            return; /* level-triggered: the rest comes at the next look */
    }
}

static void read_udp(struct sess *s, int slot, int fd, int kind, int64_t now)
{
    static unsigned char bufs[BATCH][MAXDGRAM];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = MAXDGRAM;
        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            fail(s, slot, "recvmmsg: %s", strerror(errno));
        return;
    }
    for (int i = 0; i < n && s->st != FREE; i++) {
        if (kind == K_RTP)
            on_rtp(s, slot, bufs[i], msgs[i].msg_len, now);
        else
            tot_rtcp++;
    }
}

static void on_event(uint64_t data, uint32_t events, int64_t now)
{
    int slot = (int)(data >> 2), kind = (int)(data & 3);
    struct sess *s = &slots[slot];
    if (s->st == FREE)
        return;
    if (kind != K_TCP) {
        read_udp(s, slot, kind == K_RTP ? s->rtp_fd : s->rtcp_fd, kind, now);
        return;
    }
    if (s->st == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            fail(s, slot, "connect: %s", strerror(err));
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLIN)))
            return;
        s->st = OPTIONS;
        request(s, slot, "OPTIONS", url, NULL);
        return;
    }
    if (events & EPOLLOUT)
        flush_out(s, slot);
    if (s->st != FREE && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        read_tcp(s, slot, now);
}

/* ---- main loop --------------------------------------------------------------------------------- */

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static long long quant(int64_t *v, size_t n, double q)
{
    if (!n)
        return -1;
    qsort(v, n, sizeof *v, cmp64);
    size_t i = (size_t)ceil(q * (double)n);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return (long long)v[i - 1];
}

static int count_state(int lo, int hi)
{
    int n = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        if ((int)slots[i].st >= lo && (int)slots[i].st <= hi)
            n++;
    return n;
}

static int free_slot(void)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (slots[i].st == FREE)
            return i;
    die("more than %d sessions at once", MAX_SLOTS);
    return -1;
}

static void poll_set(int ep, int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            return;
        die("epoll_wait: %s", strerror(errno));
    }
    int64_t now = now_ns();
    for (int i = 0; i < n; i++)
        on_event(evs[i].data.u64, evs[i].events, now);
}

static unsigned long live_packets(void)
{
    unsigned long p = tot_packets;
    for (int i = 0; i < MAX_SLOTS; i++)
        if (slots[i].st != FREE)
            p += slots[i].packets;
    return p;
}

static void usage(void)
{
    fprintf(stderr, "usage: rtsp_load URL [--clients N] [--tcp|--udp] [--seconds S] [--churn RATE] [--nap-ms MS] "
                    "[--parallel P] [--ready FILE] [--sessions FILE] [--keepalive-s S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *u = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && (v || (usage(), 0)) && ++i)
        if (!strcmp(a, "--tcp"))
            tcp = 1;
        else if (!strcmp(a, "--udp"))
            tcp = 0;
        else if (ARG("--clients"))
            clients = atoi(v);
        else if (ARG("--seconds"))
            seconds = atof(v);
        else if (ARG("--churn"))
            churn = atof(v);
        else if (ARG("--nap-ms"))
            nap_ms = atoi(v);
        else if (ARG("--parallel"))
            parallel = atoi(v);
        else if (ARG("--ready"))
            ready_file = v;
        else if (ARG("--sessions"))
            sessions_file = v;
        else if (ARG("--keepalive-s"))
            keepalive_s = atof(v);
        else if (!strncmp(a, "rtsp://", 7) && !u)
            u = a;
        else
            usage();
    }
    if (!u || clients < 1 || clients > MAX_SLOTS / 2 || nap_ms < 1 || parallel < 1)
        usage();
    parse_url(u);
    srand((unsigned)now_ns());
    if (sessions_file && !(sessions_out = fopen(sessions_file, "w")))
        die("%s: %s", sessions_file, strerror(errno));
    for (int i = 0; i < MAX_SLOTS; i++)
        slots[i].fd = slots[i].rtp_fd = slots[i].rtcp_fd = -1;
    ep_fast = epoll_create1(EPOLL_CLOEXEC);
    ep_slow = epoll_create1(EPOLL_CLOEXEC);
    if (ep_fast < 0 || ep_slow < 0)
        die("epoll_create1: %s", strerror(errno));
    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int64_t t0 = now_ns(), t_ready = 0, next_tick = t0, next_churn = 0, t_stop = 0;
    unsigned long opened = 0;
    int stopping = 0;
    for (;;) {
        int64_t now = now_ns();
        /* A session that fails before all N play: the run is void. */
        if (!stopping && (stop_flag || (!t_ready && failed) || (t_ready && seconds > 0 && now - t_ready >= (int64_t)(seconds * 1e9)))) {
            stopping = 1;
            t_stop = now;
            for (int i = 0; i < MAX_SLOTS; i++) {
                if (slots[i].st == PLAYING)
                    send_teardown(&slots[i], i, now);
                else if (slots[i].st != FREE && slots[i].st != TEARDOWN)
                    close_session(&slots[i], i); /* still setting up: just go */
            }
        }
        if (stopping && (count_state(CONNECTING, TEARDOWN) == 0 || now - t_stop > TEARDOWN_WAIT_NS))
            break;
        if (!stopping) {
            /* Open the first N sessions, at most --parallel in set-up at once. */
            while (opened < (unsigned long)clients && count_state(CONNECTING, PLAY) < parallel) {
                start_session(free_slot(), now);
                opened++;
            }
            if (!t_ready && opened == (unsigned long)clients && played >= (unsigned long)clients) {
                t_ready = now;
                next_churn = now;
                if (ready_file) {
                    FILE *f = fopen(ready_file, "w");
                    if (!f)
                        die("%s: %s", ready_file, strerror(errno));
                    fprintf(f, "playing %d\n", clients);
                    fclose(f);
                }
            }
            if (t_ready && churn > 0 && now >= next_churn) {
                /* The oldest playing session leaves, a new one joins. */
                int oldest = -1;
                for (int i = 0; i < MAX_SLOTS; i++)
                    if (slots[i].st == PLAYING && (oldest < 0 || slots[i].id < slots[oldest].id))
                        oldest = i;
                if (oldest >= 0)
                    send_teardown(&slots[oldest], oldest, now);
                start_session(free_slot(), now);
                next_churn += (int64_t)(1e9 / churn);
            }
        }
        if (now >= next_tick) {
            /* The slow set: sessions that play. */
            poll_set(ep_slow, 0);
            now = now_ns();
            for (int i = 0; i < MAX_SLOTS; i++) {
                struct sess *s = &slots[i];
                if (s->st == FREE)
                    continue;
                if (s->st == TEARDOWN && now - s->t_teardown > TEARDOWN_WAIT_NS) {
                    close_session(s, i);
                    continue;
                }
                if (s->st != TEARDOWN && !s->counted && now - s->t_connect > SETUP_LIMIT_NS) {
                    fail(s, i, "no RTP packet within %lld s of connecting", SETUP_LIMIT_NS / 1000000000);
                    continue;
                }
                double every = keepalive_s >= 0 ? keepalive_s : (double)s->timeout_s / 2;
                if (s->st == PLAYING && every > 0 && now - s->t_keepalive >= (int64_t)(every * 1e9) &&
                    (keepalive_s >= 0 || seconds == 0 || seconds > every)) {
                    s->t_keepalive = now;
                    keepalives++;
                    s->keepalive_cseq = request(s, i, "GET_PARAMETER", url, NULL);
                }
            }
            if (snapshot_flag) {
                snapshot_flag = 0;
                printf("snapshot t_ns=%lld packets=%lu playing=%d\n", (long long)now, live_packets(),
                    count_state(PLAYING, PLAYING));
                fflush(stdout);
            }
            next_tick += (int64_t)nap_ms * 1000000;
            if (next_tick < now)
                next_tick = now + (int64_t)nap_ms * 1000000;
        }
        now = now_ns();
        int64_t wait_ns = next_tick - now;
        if (t_ready && churn > 0 && !stopping && next_churn - now < wait_ns)
            wait_ns = next_churn - now;
        if (wait_ns < 0)
            wait_ns = 0;
        poll_set(ep_fast, (int)((wait_ns + 999999) / 1000000));
    }
    for (int i = 0; i < MAX_SLOTS; i++)
        if (slots[i].st != FREE)
            close_session(&slots[i], i);
    double dur = (double)(now_ns() - t0) / 1e9;
    int64_t *fr = malloc((nfirst + 1) * sizeof *fr);
    memcpy(fr, first_resp_us, nfirst * sizeof *fr);
    printf("sessions=%lu played=%lu failed=%lu packets=%lu bytes=%lu gaps=%lu lost=%lu dups=%lu late=%lu rtcp=%lu "
           "keepalives=%lu keepalive_ok=%lu teardowns=%lu teardown_ok=%lu rtpinfo_next=%lu rtpinfo_later=%lu "
           "rtpinfo_early=%lu rtpinfo_none=%lu first_us_p50=%lld "
           "first_us_p90=%lld first_us_p99=%lld first_us_max=%lld first_resp_us_p50=%lld first_resp_us_max=%lld "
           "setup_ms_p50=%.1f setup_ms_max=%.1f duration_s=%.2f\n",
        started, played, failed, tot_packets, tot_bytes, tot_gaps, tot_lost, tot_dups, tot_late, tot_rtcp, keepalives,
        keepalive_ok, teardowns, teardown_ok, rtpinfo_next, rtpinfo_later, rtpinfo_early, rtpinfo_none,
        quant(first_us, nfirst, 0.5),
        quant(first_us, nfirst, 0.9), quant(first_us, nfirst, 0.99), quant(first_us, nfirst, 1.0),
        quant(fr, nfirst, 0.5), quant(fr, nfirst, 1.0), (double)quant(setup_us, nfirst, 0.5) / 1000,
        (double)quant(setup_us, nfirst, 1.0) / 1000, dur);
    if (sessions_out)
        fclose(sessions_out);
    return failed ? 1 : 0;
}
