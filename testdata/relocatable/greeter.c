/* greeter: a program of a relocatable pack, run by
   TestRelocatableNixProgram. Its first argument says what it does:
     greet          print libgreet's greeting, where the library and the
                    program were loaded from, and the arguments
     exit N         exit with status N
     kill           kill itself with SIGTERM
     wait           print "ready", then wait for a signal
     meet D A B     create D/A, wait (up to 20 s) for D/B, then greet */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *greet(void);

static int greeting(int argc, char **argv) {
	Dl_info info;
	char exe[PATH_MAX];
	ssize_t n;
	int i;

	if (!dladdr((void *)greet, &info))
		return 2;
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n < 0)
		return 3;
	exe[n] = 0;
	printf("%s\nlibrary=%s\nexe=%s\nargs=", greet(), info.dli_fname, exe);
	for (i = 0; i < argc; i++)
		printf(i ? " %s" : "%s", argv[i]);
	printf("\n");
	return 0;
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "greet";
	char mine[PATH_MAX], other[PATH_MAX];
	int fd, i;

	if (!strcmp(mode, "greet"))
		return greeting(argc, argv);
	if (!strcmp(mode, "exit") && argc == 3)
		return atoi(argv[2]);
	if (!strcmp(mode, "kill")) {
		raise(SIGTERM);
		return 1;
	}
	if (!strcmp(mode, "wait")) {
		puts("ready");
		fflush(stdout);
		for (;;)
			pause();
	}
	if (!strcmp(mode, "meet") && argc == 5) {
		snprintf(mine, sizeof mine, "%s/%s", argv[2], argv[3]);
		snprintf(other, sizeof other, "%s/%s", argv[2], argv[4]);
		fd = open(mine, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			return 4;
		close(fd);
		for (i = 0; i < 400; i++) {
			if (access(other, F_OK) == 0)
				return greeting(argc, argv);
			usleep(50000);
		}
		return 9;
	}
	fprintf(stderr, "greeter: unknown mode %s\n", mode);
	return 64;
}
