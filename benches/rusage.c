/*
 * rusage: runs a command and writes its resource use to a file, one line:
 *
 *   rusage OUT CMD [ARG...]
 *   -> "user_s sys_s wall_s maxrss_kib voluntary_switches involuntary_switches"
 *
 * The wait4() rusage of CMD (and whatever it waited for), as GNU time measures, but printed
 * to the microsecond: the kernel keeps the user + sys sum exact; GNU time rounds it to 10 ms,
 * too coarse for a PCMU run that costs 0.2 s. Peak RSS (ru_maxrss) carries over the pages the
 * child had before exec (this program's, copied by fork), so build it small (-static): its
 * floor is then ~0.1 MiB instead of GNU time's ~1 MiB. Wall time runs from just before fork
 * to wait4's return. SIGTERM and SIGINT are passed on to CMD. Exits with CMD's status
 * (128 + N if signal N ended it).
 *
 * Build: cc -O2 -static benches/rusage.c -o rusage
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child;
static void forward(int sig) { kill(child, sig); }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUT CMD [ARG...]\n", argv[0]);
        return 2;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        perror(argv[1]);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    child = fork();
    if (child < 0) {
        perror("fork");
        return 2;
    }
    if (child == 0) {
        execvp(argv[2], &argv[2]);
        perror(argv[2]);
        _exit(127);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int status;
    struct rusage ru;
    while (wait4(child, &status, 0, &ru) < 0)
        ;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(out, "%ld.%06ld %ld.%06ld %.6f %ld %ld %ld\n", (long)ru.ru_utime.tv_sec,
            (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, wall,
            ru.ru_maxrss, ru.ru_nvcsw, ru.ru_nivcsw);
    fclose(out);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
