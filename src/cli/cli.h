/*
 * cli.h - what the memfence subcommands share.
 */
#ifndef MF_CLI_H
#define MF_CLI_H

#include <stdio.h>

/* Exit statuses of memfence itself (a program it runs keeps its own). */
#define MF_EXIT_USAGE 2    /* bad option, size, missing command */
#define MF_EXIT_FAILURE 1  /* could not do what was asked */
#define MF_EXIT_NOEXEC 126 /* command found but not executable */
#define MF_EXIT_NOTFOUND 127

#include "host/msg.h"

/* Directory of the preload libraries: $MEMFENCE_LIBDIR, else next to the
 * memfence binary (build tree), else the install directory. Returns a
 * static string, or NULL when lib (e.g. "libmemfence.so") is nowhere. */
const char *mf_preload_path(const char *lib);

/* Prepend path to LD_PRELOAD in the environment (no duplicate). */
int mf_env_preload(const char *path);

int mf_cmd_exec(int argc, char **argv);
int mf_cmd_inspect(int argc, char **argv);
int mf_cmd_run(int argc, char **argv);
int mf_cmd_stat(int argc, char **argv);
int mf_cmd_report(int argc, char **argv);
int mf_cmd_quarantine(int argc, char **argv);
int mf_cmd_profile(int argc, char **argv);
int mf_cmd_diagnose(int argc, char **argv);

#endif
