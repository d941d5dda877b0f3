/*
 * paced: the event-loop yardstick of `make bench` (issue 21).
 *
 * A minimal client of the design issue 21 takes as its anchor (wrk2's): one
 * thread, one epoll loop, nonblocking connections, and a timerfd armed for
 * each slot of the schedule. It GETs one value of a given size from a Redis
 * server, either in a closed loop (every connection sends again as soon as
 * its reply is in) or paced at a fixed rate (each slot of the schedule is
 * sent, when it is due, on a free connection, the one freed longest ago
 * first). bench runs it both ways against the same redis-server and
 * compares the CPU per request of client and server: what any event-loop
 * client pays on this machine for keeping a schedule.
 *
 * Usage: paced HOST PORT RATE CONNS SECONDS BODY
 *   RATE 0 is the closed loop; otherwise requests per second.
 *
 * It first SETs the key with a BODY-byte value, then runs for SECONDS and
 * prints one line:
 *   requests=N slots=S late=L cpu_ns=C start_ns=A end_ns=B
 * N requests answered within the window, S slots due within it, L of them
 * started (or still waiting at the end) more than 1 ms after their time,
 * C the CPU time (user + system, getrusage) this process used within it,
 * A and B the window's bounds on the wall clock (CLOCK_REALTIME, ns), by
 * which bench reads the server's CPU over the same window.
 * Errors: one line on stderr, exit status 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define LATE_NS 1000000 /* a slot started more than 1 ms after its time is late */
#define TIMER_ID UINT32_MAX /* epoll data of the timerfd; connections are 0..conns-1 */

static const char key[] = "yardstick";
static char get_req[64];
static size_t get_len;

/* One connection: its socket and the reply read so far. */
struct conn {
	int fd;
	char *buf;
	size_t got;
};

static struct conn conns[MAX_CONNS];
static size_t buf_size;

/* Free connections, a ring: the one freed longest ago is used first. */
static int free_ring[MAX_CONNS];
static int free_head, free_count, nconns;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("paced: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t cpu_ns(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return ((int64_t)r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1000;
}

static void put_free(int i)
{
	free_ring[(free_head + free_count) % nconns] = i;
	free_count++;
}

static int take_free(void)
{
	int i = free_ring[free_head];
	free_head = (free_head + 1) % nconns;
	free_count--;
	return i;
}

/* send_get writes the GET on connection i: a few dozen bytes always fit in
 * an idle socket's buffer, so a short write is an error. */
static void send_get(int i)
{
	ssize_t n = write(conns[i].fd, get_req, get_len);
	if (n != (ssize_t)get_len)
		die("write: %s", n < 0 ? strerror(errno) : "short write");
	conns[i].got = 0;
}

/* reply_done reads what connection i has and tells whether its reply (a
 * RESP bulk string, "$LEN\r\n" LEN bytes "\r\n") is complete. */
static int reply_done(int i)
{
	struct conn *c = &conns[i];
	ssize_t n = read(c->fd, c->buf + c->got, buf_size - c->got);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		die("read: %s", strerror(errno));
	}
	if (n == 0)
		die("redis-server closed a connection");
	c->got += (size_t)n;
	char *eol = memchr(c->buf, '\n', c->got);
	if (eol == NULL)
		return 0;
	if (c->buf[0] != '$')
		die("unexpected reply to GET: %.*s", (int)(eol - c->buf), c->buf);
	long len = strtol(c->buf + 1, NULL, 10);
	size_t need = (size_t)(eol - c->buf) + 1 + (len < 0 ? 0 : (size_t)len + 2);
	if (c->got > need)
		die("reply longer than its header says (%zu bytes, %zu expected)", c->got, need);
	return c->got == need;
}

/* dial connects to host:port, blocking, with Nagle off as redis-benchmark has. */
static int dial(const char *host, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		die("%s: not an IPv4 address", host);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		die("connect %s:%d: %s", host, port, strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* set_value SETs the key to a body-byte value over fd (still blocking). */
static void set_value(int fd, long body)
{
	char head[128];
	int h = snprintf(head, sizeof head, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%ld\r\n", strlen(key), key, body);
	size_t total = (size_t)h + (size_t)body + 2;
	char *msg = malloc(total);
	if (msg == NULL)
		die("out of memory");
	memcpy(msg, head, (size_t)h);
	memset(msg + h, 'x', (size_t)body);
	memcpy(msg + h + body, "\r\n", 2);
	for (size_t off = 0; off < total;) {
		ssize_t n = write(fd, msg + off, total - off);
		if (n <= 0)
			die("SET: %s", strerror(errno));
		off += (size_t)n;
	}
	free(msg);
	char ok[5];
	size_t got = 0;
	while (got < sizeof ok) {
		ssize_t n = read(fd, ok + got, sizeof ok - got);
		if (n <= 0)
			die("SET: no reply");
		got += (size_t)n;
	}
	if (memcmp(ok, "+OK\r\n", sizeof ok) != 0)
		die("SET: unexpected reply %.5s", ok);
}

/* arm sets the timerfd to fire at the monotonic time at_ns. */
static void arm(int tfd, int64_t at_ns)
{
	struct itimerspec its = {.it_value = {.tv_sec = at_ns / 1000000000, .tv_nsec = at_ns % 1000000000}};
	if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
		die("timerfd_settime: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	if (argc != 7)
		die("usage: paced HOST PORT RATE CONNS SECONDS BODY (RATE 0 = closed loop)");
	const char *host = argv[1];
	int port = atoi(argv[2]);
	double rate = atof(argv[3]);
	nconns = atoi(argv[4]);
	double seconds = atof(argv[5]);
	long body = atol(argv[6]);
	if (port <= 0 || port > 65535 || rate < 0 || nconns < 1 || nconns > MAX_CONNS || seconds <= 0 || body < 0)
		die("bad arguments: PORT 1-65535, RATE >= 0, CONNS 1-%d, SECONDS > 0, BODY >= 0", MAX_CONNS);
	get_len = (size_t)snprintf(get_req, sizeof get_req, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
	buf_size = (size_t)body + 64;

	int ep = epoll_create1(0);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (ep < 0 || tfd < 0)
		die("epoll/timerfd: %s", strerror(errno));
	struct epoll_event te = {.events = EPOLLIN, .data.u32 = TIMER_ID};
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te);
	for (int i = 0; i < nconns; i++) {
		conns[i].fd = dial(host, port);
		if (i == 0)
			set_value(conns[i].fd, body);
		fcntl(conns[i].fd, F_SETFL, O_NONBLOCK);
		if ((conns[i].buf = malloc(buf_size)) == NULL)
			die("out of memory");
		struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &e);
		put_free(i);
	}

	/* The window: from here for SECONDS. Slot k is due at t0 + k/rate. */
	int64_t cpu0 = cpu_ns(), wall0 = clock_ns(CLOCK_REALTIME), t0 = clock_ns(CLOCK_MONOTONIC);
	int64_t end = t0 + (int64_t)(seconds * 1e9);
	double period = rate > 0 ? 1e9 / rate : 0;
	long long requests = 0, due = 0, started = 0, late = 0, armed = -1;
	if (rate == 0)
		while (free_count > 0)
			send_get(take_free());

	struct epoll_event ev[64];
	for (;;) {
		int64_t now = clock_ns(CLOCK_MONOTONIC);
		if (now >= end)
			break;
		if (rate > 0) {
			/* Start the slots that are due, as long as a connection is free. */
			while (t0 + (int64_t)(due * period) <= now)
				due++;
			for (; started < due && free_count > 0; started++) {
				if (now - (t0 + (int64_t)(started * period)) > LATE_NS)
					late++;
				send_get(take_free());
			}
			/* One wake-up per slot: the timer for the next one not yet due. */
			if (armed != due) {
				arm(tfd, t0 + (int64_t)(due * period));
				armed = due;
			}
		}
		int timeout_ms = (int)((end - now) / 1000000) + 1;
		int n = epoll_wait(ep, ev, 64, timeout_ms);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int k = 0; k < n; k++) {
			uint32_t id = ev[k].data.u32;
			if (id == TIMER_ID) {
				uint64_t expirations;
				if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
					die("timerfd read: %s", strerror(errno));
				continue;
			}
			if (!reply_done((int)id))
				continue;
			requests++;
			if (rate == 0)
				send_get((int)id);
			else
				put_free((int)id);
		}
	}
	int64_t cpu1 = cpu_ns(), wall1 = clock_ns(CLOCK_REALTIME);
	/* Slots still waiting for a connection at the end, over 1 ms past their time, are late too. */
	for (long long k = started; k < due; k++)
		if (end - (t0 + (int64_t)(k * period)) > LATE_NS)
			late++;
	printf("requests=%lld slots=%lld late=%lld cpu_ns=%lld start_ns=%lld end_ns=%lld\n", requests, due, late,
	       (long long)(cpu1 - cpu0), (long long)wall0, (long long)wall1);
	return 0;
}
