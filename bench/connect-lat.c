// connect() latency: a listener on LISTEN_IP:PORT (a forked child accepting and closing), then
// COUNT blocking TCP connect()s to each TARGET, the targets taking turns (so that drift of a
// noisy machine hits them alike), each timed alone (CLOCK_MONOTONIC around the syscall; local
// delivery completes the handshake inside it) and closed with an RST (no TIME_WAIT). Prints one
// JSON array, per target {"count","failed","p50","p90","p99","mean"} in ns.
//   connect-lat LISTEN_IP LISTEN_PORT COUNT TARGET_IP TARGET_PORT [TARGET_IP TARGET_PORT...]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr_of(const char *ip, const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port)) };

	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", ip);
		exit(2);
	}
	return a;
}

static int cmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

#define MAX_TARGETS 8

struct series {
	struct sockaddr_in addr;
	long *ns, sum;
	int ok, failed;
};

static void print(const struct series *t)
{
	int n = t->ok;

	printf("{\"count\":%d,\"failed\":%d,\"p50\":%ld,\"p90\":%ld,\"p99\":%ld,\"mean\":%ld}", n, t->failed,
	       n ? t->ns[n / 2] : 0, n ? t->ns[n * 9 / 10] : 0, n ? t->ns[n * 99 / 100] : 0, n ? t->sum / n : 0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in listen_at;
	struct series t[MAX_TARGETS] = {};
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	int one = 1, ls, count, targets, ready[2];
	pid_t server;
	char c;

	if (argc < 6 || argc % 2 || (argc - 4) / 2 > MAX_TARGETS)
		return fprintf(stderr, "usage: connect-lat LISTEN_IP LISTEN_PORT COUNT TARGET_IP TARGET_PORT [TARGET_IP TARGET_PORT...]\n"), 2;
	listen_at = addr_of(argv[1], argv[2]);
	count = atoi(argv[3]);
	targets = (argc - 4) / 2;
	for (int k = 0; k < targets; k++) {
		t[k].addr = addr_of(argv[4 + 2 * k], argv[5 + 2 * k]);
		t[k].ns = calloc(count, sizeof(long));
	}
	if (pipe(ready))
		return perror("pipe"), 1;
	server = fork();
	if (server == 0) {
		ls = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(ls, (struct sockaddr *)&listen_at, sizeof(listen_at)) || listen(ls, 4096))
			return perror("listen"), 1;
		if (write(ready[1], "x", 1) != 1)
			return 1;
		for (;;) {
			int s = accept(ls, NULL, NULL);

			if (s >= 0)
				close(s);
		}
	}
	if (read(ready[0], &c, 1) != 1)
		return fprintf(stderr, "listener failed\n"), 1;
	for (int i = 0; i < count * targets; i++) {
		struct series *x = &t[i % targets];
		struct timespec t0, t1;
		int s = socket(AF_INET, SOCK_STREAM, 0);

		setsockopt(s, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = connect(s, (struct sockaddr *)&x->addr, sizeof(x->addr));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		close(s);
		if (rc) {
			x->failed++;
			continue;
		}
		x->ns[x->ok] = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
		x->sum += x->ns[x->ok++];
	}
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	printf("[");
	for (int k = 0; k < targets; k++) {
		qsort(t[k].ns, t[k].ok, sizeof(long), cmp);
		print(&t[k]);
		printf(k + 1 < targets ? "," : "]\n");
	}
	return 0;
}
