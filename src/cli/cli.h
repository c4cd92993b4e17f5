/*
 * cli.h - what the memfence subcommands share.
 */
#ifndef MF_CLI_H
#define MF_CLI_H

#include <stdio.h>

#include "host/launch.h"
#include "host/msg.h"

int mf_cmd_exec(int argc, char **argv);
int mf_cmd_inspect(int argc, char **argv);
int mf_cmd_run(int argc, char **argv);
int mf_cmd_stat(int argc, char **argv);
int mf_cmd_report(int argc, char **argv);
int mf_cmd_quarantine(int argc, char **argv);
int mf_cmd_profile(int argc, char **argv);
/* `memfence profile report FILE [OPTIONS]`, argv[0] being "report". */
int mf_profile_report(int argc, char **argv);
int mf_cmd_diagnose(int argc, char **argv);

#endif
