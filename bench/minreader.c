/*
 * minreader: the smallest useful FAN_FS_ERROR reader, the baseline that
 * `fshealth-bench latency --baseline` compares fshealth with.
 *
 * Usage: minreader [-s FILE] [-p PORT] PATH...
 *
 * Marks the file systems holding each PATH for FAN_FS_ERROR, tells
 * $NOTIFY_SOCKET READY=1 (or prints "ready" on stderr when it is not set),
 * then prints one line per event on stdout, flushed after every read(2):
 *
 *   {"kind":"error","errno":117,"error_count":1,"read_ns":...}
 *
 * read_ns is CLOCK_REALTIME when read(2) returned. With -s and -p it is
 * also the floor of a first alert (`fshealth-bench first-alert`): after
 * each read it appends 4 KiB to FILE and fdatasyncs it (a history commit),
 * then POSTs the line, with synced_ns added, to 127.0.0.1:PORT on a fresh
 * TCP connection and reads the answer (the alert).
 *
 * A queue overflow is printed as {"kind":"overflow","errno":0,"error_count":0}.
 * SIGTERM and SIGINT end it with status 0. Nothing else: no enrichment, no
 * allocation, one blocking read(2) per batch of events.
 *
 * Build: cc -O2 -o minreader minreader.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/fanotify.h>

#ifndef FAN_FS_ERROR
#define FAN_FS_ERROR 0x00008000
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* notify_ready sends READY=1 to the datagram socket named by $NOTIFY_SOCKET
 * ("@name" is an abstract socket). Without it, it prints "ready" on stderr. */
static int notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	static const char msg[] = "READY=1";
	struct sockaddr_un sa;
	size_t n;
	int fd;

	if (path == NULL || path[0] == '\0') {
		fputs("ready\n", stderr);
		return 0;
	}
	n = strlen(path);
	if (n >= sizeof(sa.sun_path)) {
		fprintf(stderr, "minreader: NOTIFY_SOCKET %s: path too long\n", path);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("minreader: socket");
		return -1;
	}
	if (sendto(fd, msg, sizeof(msg) - 1, 0, (struct sockaddr *)&sa,
		   offsetof(struct sockaddr_un, sun_path) + n) < 0) {
		fprintf(stderr, "minreader: sending READY=1 to %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* post sends body to 127.0.0.1:port as an HTTP POST on a new connection
 * and reads the answer to its end. */
static int post(int port, const char *body, int n)
{
	struct sockaddr_in sa;
	char req[1024], resp[512];
	int fd, len;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	len = snprintf(req, sizeof(req), "POST /floor HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		       "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%.*s",
		       n, n, body);
	if (write(fd, req, len) != len) {
		close(fd);
		return -1;
	}
	while (read(fd, resp, sizeof(resp)) > 0)
		;
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	/* Aligned for the metadata structs; holds many events per read. */
	static union {
		struct fanotify_event_metadata m;
		char b[64 * 1024];
	} buf;
	static char page[4096];
	struct sigaction sa;
	const char *syncfile = NULL;
	int fd, opt, port = 0, sfd = -1;

	while ((opt = getopt(argc, argv, "s:p:")) != -1) {
		if (opt == 's')
			syncfile = optarg;
		else if (opt == 'p')
			port = atoi(optarg);
		else
			return 2;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: %s [-s FILE] [-p PORT] PATH...\n", argv[0]);
		return 2;
	}
	if (syncfile != NULL) {
		sfd = open(syncfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (sfd < 0) {
			perror(syncfile);
			return 1;
		}
	}
	/* No SA_RESTART: a signal makes the blocking read fail with EINTR. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC, O_RDONLY);
	if (fd < 0) {
		perror("minreader: fanotify_init(FAN_CLASS_NOTIF|FAN_REPORT_FID)");
		return 1;
	}
	for (int i = optind; i < argc; i++)
		if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_FS_ERROR, AT_FDCWD, argv[i]) < 0) {
			fprintf(stderr, "minreader: fanotify_mark(FAN_MARK_FILESYSTEM, FAN_FS_ERROR, %s): %s\n",
				argv[i], strerror(errno));
			return 1;
		}
	if (notify_ready() < 0)
		return 1;

	while (!stop) {
		ssize_t len = read(fd, buf.b, sizeof(buf.b));
		long long t = now_ns();
		struct fanotify_event_metadata *m = &buf.m;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			perror("minreader: read");
			return 1;
		}
		for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			const char *p = (const char *)m + m->metadata_len;
			const char *end = (const char *)m + m->event_len;
			int err = 0;
			unsigned int count = 0;

			if (m->vers != FANOTIFY_METADATA_VERSION) {
				fprintf(stderr, "minreader: fanotify metadata version %d, want %d\n",
					m->vers, FANOTIFY_METADATA_VERSION);
				return 1;
			}
			if (m->mask & FAN_Q_OVERFLOW) {
				fputs("{\"kind\":\"overflow\",\"errno\":0,\"error_count\":0}\n", stdout);
				continue;
			}
			/* Info records come in any order; skip unknown ones by len. */
			while (end - p >= (ptrdiff_t)sizeof(struct fanotify_event_info_header)) {
				const struct fanotify_event_info_header *h = (const void *)p;

				if (h->len < sizeof(*h) || h->len > end - p)
					break;
				if (h->info_type == FAN_EVENT_INFO_TYPE_ERROR &&
				    h->len >= sizeof(struct fanotify_event_info_error)) {
					const struct fanotify_event_info_error *e = (const void *)p;

					err = e->error;
					count = e->error_count;
				}
				p += h->len;
			}
			if (sfd >= 0 || port > 0) {
				char line[256];
				int n;

				if (sfd >= 0 && (write(sfd, page, sizeof(page)) != sizeof(page) || fdatasync(sfd) < 0)) {
					perror("minreader: write+fdatasync");
					return 1;
				}
				n = snprintf(line, sizeof(line), "{\"kind\":\"error\",\"errno\":%d,\"error_count\":%u,\"read_ns\":%lld,\"synced_ns\":%lld}",
					     err, count, t, now_ns());
				if (port > 0 && post(port, line, n) < 0) {
					perror("minreader: POST");
					return 1;
				}
				printf("%s\n", line);
				continue;
			}
			printf("{\"kind\":\"error\",\"errno\":%d,\"error_count\":%u,\"read_ns\":%lld}\n", err, count, t);
		}
		if (fflush(stdout) != 0) {
			perror("minreader: writing stdout");
			return 1;
		}
	}
	return 0;
}
