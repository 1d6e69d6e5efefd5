/*
 * probe: what a process sees, for cmd/injector's trust tests.
 *
 *   probe getenv NAME...     prints getenv(NAME) (glibc: the first
 *                            definition) and how many times NAME is
 *                            defined in environ: "VALUE|COUNT", a line
 *                            for each NAME
 *   probe proc PID           tries to read process PID ("ppid": the
 *                            parent) through /proc, one line per path:
 *                            "environ denied", "mem readable leak", ...
 *                            ("leak": one of the lines of $PROBE_NEEDLES
 *                            was found in it; not arguments, which would
 *                            be in the parent's cmdline)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int holds(const char *buf, size_t n, char **needles, int nn) {
	for (int i = 0; i < nn; i++)
		if (memmem(buf, n, needles[i], strlen(needles[i])))
			return 1;
	return 0;
}

/* slurp reads path whole; NULL with errno set when it cannot. */
static char *slurp(const char *path, size_t *n) {
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (len == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0) {
			int e = errno;
			close(fd);
			free(buf);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		len += r;
	}
	close(fd);
	*n = len;
	return buf;
}

static void report(const char *what, int readable, int leak) {
	printf("%s %s%s\n", what, readable ? "readable" : "denied", readable ? (leak ? " leak" : " clean") : "");
}

static void file(int pid, const char *name, char **needles, int nn) {
	char path[64];
	size_t n;
	snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
	char *buf = slurp(path, &n);
	report(name, buf != NULL && (n > 0 || strcmp(name, "environ") != 0), buf && holds(buf, n, needles, nn));
	free(buf);
}

/* mem reads the environment block at the addresses /proc/PID/stat gives
 * (env_start and env_end, fields 50 and 51; zero when the caller may not
 * see them). */
static void mem(int pid, char **needles, int nn) {
	char path[64];
	size_t n;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	char *stat = slurp(path, &n);
	unsigned long start = 0, end = 0;
	if (stat) {
		stat[n ? n - 1 : 0] = 0;
		char *p = strrchr(stat, ')');
		int field = 2;
		for (char *tok = p ? strtok(p + 1, " ") : NULL; tok; tok = strtok(NULL, " ")) {
			field++;
			if (field == 50)
				start = strtoul(tok, NULL, 10);
			if (field == 51)
				end = strtoul(tok, NULL, 10);
		}
		free(stat);
	}
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		report("mem", 0, 0);
		return;
	}
	int leak = 0;
	if (end > start) {
		size_t len = end - start;
		char *buf = malloc(len);
		ssize_t r = pread(fd, buf, len, (off_t)start);
		leak = r > 0 && holds(buf, r, needles, nn);
		free(buf);
	}
	close(fd);
	report("mem", 1, leak);
}

static void fds(int pid) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	int readable = d != NULL && readdir(d) != NULL;
	if (d)
		closedir(d);
	report("fd", readable, 0);
}

int main(int argc, char **argv) {
	if (argc >= 3 && strcmp(argv[1], "getenv") == 0) {
		for (int i = 2; i < argc; i++) {
			const char *v = getenv(argv[i]);
			size_t klen = strlen(argv[i]);
			int count = 0;
			for (char **e = environ; *e; e++)
				if (strncmp(*e, argv[i], klen) == 0 && (*e)[klen] == '=')
					count++;
			printf("%s|%d\n", v ? v : "(unset)", count);
		}
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "proc") == 0) {
		int pid = strcmp(argv[2], "ppid") == 0 ? getppid() : atoi(argv[2]);
		char *list = getenv("PROBE_NEEDLES");
		char *needles[16];
		int nn = 0;
		for (char *tok = list ? strtok(strdup(list), "\n") : NULL; tok && nn < 16; tok = strtok(NULL, "\n"))
			needles[nn++] = tok;
		if (nn == 0) {
			fprintf(stderr, "probe: set PROBE_NEEDLES\n");
			return 2;
		}
		file(pid, "environ", needles, nn);
		file(pid, "cmdline", needles, nn);
		mem(pid, needles, nn);
		fds(pid);
		return 0;
	}
	fprintf(stderr, "usage: probe getenv NAME... | PROBE_NEEDLES=... probe proc PID|ppid\n");
	return 2;
}
