/* connrate: new TCP connections per second against an HTTP server, one request each.
 *
 *   connrate HOST PORT SECONDS CONCURRENCY SRC1[,SRC2...]
 *
 * Keeps CONCURRENCY connections in flight with epoll; each sends "GET / HTTP/1.0" and reads
 * to EOF (the server closes, so TIME_WAIT stays on the server). Source addresses are used in
 * turn, with IP_BIND_ADDRESS_NO_PORT so the kernel picks ports per destination: short
 * connections from one address through NAT meet the server's TIME_WAIT (DESIGN.md).
 * Prints "<completed> <errors> <seconds>".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static const char request[] = "GET / HTTP/1.0\r\nHost: bench\r\n\r\n";
static struct sockaddr_in target;
static struct in_addr sources[64];
static int nsources, next_source;
static int epfd;
static long completed, errors;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void open_one(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP};
    if (fd < 0) { perror("socket"); exit(1); }
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    src.sin_addr = sources[next_source++ % nsources];
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { perror("bind"); exit(1); }
    if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
        errors++;
        close(fd);
        return;
    }
    ev.data.u64 = (unsigned long)fd; /* high bit: request sent */
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv) {
    char buf[4096];
    struct epoll_event events[256];
    double end;
    int concurrency, i;
    char *list, *item;
    if (argc != 6) { fprintf(stderr, "usage: connrate HOST PORT SECONDS CONCURRENCY SRCS\n"); return 2; }
    target.sin_family = AF_INET;
    target.sin_port = htons(atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &target.sin_addr);
    concurrency = atoi(argv[4]);
    list = strdup(argv[5]);
    for (item = strtok(list, ","); item && nsources < 64; item = strtok(NULL, ","))
        inet_pton(AF_INET, item, &sources[nsources++]);
    epfd = epoll_create1(0);
    for (i = 0; i < concurrency; i++) open_one();
    end = now() + atof(argv[3]);
    while (now() < end) {
        int n = epoll_wait(epfd, events, 256, 100);
        for (i = 0; i < n; i++) {
            unsigned long data = events[i].data.u64;
            int fd = (int)(data & 0xffffffff);
            int sent = (data >> 32) != 0;
            if (events[i].events & EPOLLERR) {
                errors++;
                close(fd);
                open_one();
                continue;
            }
            if (!sent && (events[i].events & EPOLLOUT)) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
                if (write(fd, request, sizeof request - 1) < 0) { errors++; close(fd); open_one(); continue; }
                ev.data.u64 = (1UL << 32) | (unsigned long)fd;
                epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
                ssize_t got;
                while ((got = read(fd, buf, sizeof buf)) > 0) {}
                if (got == 0) { completed++; close(fd); open_one(); }
                else if (errno != EAGAIN) { errors++; close(fd); open_one(); }
            }
        }
    }
    printf("%ld %ld %s\n", completed, errors, argv[3]);
    return 0;
}
