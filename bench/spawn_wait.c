/*
 * spawn_wait.c - the least a supervisor can be: start a program and wait
 * for it.
 *
 *   spawn_wait PROGRAM [ARGS...]
 *
 * posix_spawn (a vfork and an exec, as memfence's own) and waitpid, and the
 * program's exit status passed on. bench/startup.py times it beside `run`:
 * what it adds to a program's start is the price of a parent process on
 * the machine, which no supervisor can take back; the rest of `run`'s is
 * memfence's own.
 */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
	pid_t pid;
	int err, status;

	if (argc < 2) {
		fprintf(stderr, "usage: spawn_wait PROGRAM [ARGS...]\n");
		return 2;
	}
	err = posix_spawn(&pid, argv[1], NULL, NULL, argv + 1, environ);
	if (err != 0) {
		fprintf(stderr, "spawn_wait: %s: %s\n", argv[1], strerror(err));
		return 127;
	}
	if (waitpid(pid, &status, 0) < 0) {
		perror("spawn_wait: waitpid");
		return 1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
