/*
 * main.c - the memfence command: dispatch to subcommands.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"exec", mf_cmd_exec, "run a command under the container's memory limit (replaces itself)"},
	{"inspect", mf_cmd_inspect, "show the memory limit, usage, headroom and the budget memfence would apply"},
	{"run", mf_cmd_run, "start a command and supervise it: probes, metrics, post-mortems, restarts"},
	{"stat", mf_cmd_stat, "show live memory figures of processes under the shim: totals, scopes in flight, finished"},
	{"report", mf_cmd_report, "print a post-mortem report for a person"},
	{"profile", mf_cmd_profile, "run a command under the sampling heap profiler; report a profile"},
	{"diagnose", mf_cmd_diagnose, "tell a leak from aggregate load, oversized requests or memory outside the heap"},
	{"quarantine", mf_cmd_quarantine, "list, show, clear and export poison-task records; check and record deaths"},
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence COMMAND [OPTIONS] [-- PROGRAM [ARGS...]]\n"
		"\n"
		"Turn out-of-memory kills into ordinary allocation failures, per request.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"Options:\n"
		"  -h, --help     show this help (memfence COMMAND --help for a command)\n"
		"  -V, --version  show the version\n"
		"\n"
		"Sizes are bytes or K, M, G, T (powers of 1024; KiB, MiB, GiB also accepted),\n"
		"or a percentage of the limit where it makes sense (80%%).\n"
		"Limit, accounting and supervisor options have MEMFENCE_* environment\n"
		"equivalents (the command line wins); see memfence(1).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return MF_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("memfence %s\n", MF_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			/* getopt in the subcommand starts at its own argv[0]. */
			optind = 1;
			return commands[i].fn(argc - 1, argv + 1);
		}
	}
	mf_err("unknown command '%s' (see memfence --help)", argv[1]);
	return MF_EXIT_USAGE;
}
