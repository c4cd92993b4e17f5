/*
 * report.c - `memfence report FILE`: a post-mortem for a person.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "host/options.h"
#include "supervisor/sup.h"

enum { OPT_JSON = MF_OPT_KEY_BASE };

static const struct mf_option report_options[] = {
	{.name = "json", .key = OPT_JSON,
	 .help = "print the JSON document itself (checked,\nre-indented)"},
	{0},
};

static const struct mf_option *const report_tabs[] = {report_options, mf_help_options, NULL};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence report [--json] FILE\n"
		"\n"
		"Print a post-mortem report written by `memfence run` (see\n"
		"docs/report-format.md): what ended the program, the memory at the end,\n"
		"the requests and tasks in flight, the last minute of memory.\n"
		"\n");
	mf_opts_help(f, "Options", report_options);
	mf_opts_help(f, NULL, mf_help_options);
	fprintf(f,
		"\n"
		"Exit status: 0; 1 when FILE cannot be read or is not a report; 2 for a\n"
		"bad option.\n");
}

int mf_cmd_report(int argc, char **argv)
{
	struct mf_opts opts;
	json_error_t jerr;
	json_t *r;
	int opt, as_json = 0;

	mf_opts_init(&opts, "", report_tabs);
	while ((opt = getopt_long(argc, argv, opts.shortopts, opts.longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON: as_json = 1; break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "Try 'memfence report --help'.\n");
			return MF_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		mf_err("report: expected one report file (memfence report [--json] FILE)");
		return MF_EXIT_USAGE;
	}
	r = json_load_file(argv[optind], JSON_REJECT_DUPLICATES, &jerr);
	if (!r) {
		mf_err("report: cannot read %s: %s (line %d)", argv[optind], jerr.text, jerr.line);
		return MF_EXIT_FAILURE;
	}
	if (!json_is_object(r) || !json_is_integer(json_object_get(r, "memfence_report"))) {
		mf_err("report: %s is not a memfence report (no \"memfence_report\" field)",
		       argv[optind]);
		json_decref(r);
		return MF_EXIT_FAILURE;
	}
	if (as_json) {
		json_dumpf(r, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		sup_report_print(stdout, r, 1);
	}
	json_decref(r);
	return 0;
}
