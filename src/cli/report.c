/*
 * report.c - `memfence report FILE`: one front door for every file memfence
 * writes. The kind is told by the file's first bytes, never by its name:
 *
 *   "MEMFSEG1" (8 bytes)      a stats segment        -> `memfence stat`
 *   "memfence-profile 1\n"    a profile snapshot     -> `memfence profile report`
 *   a JSON object with "memfence_report"
 *                             a post-mortem, or the journal of a state
 *                             directory ("cause": "running")
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/segment.h"
#include "cli/cli.h"
#include "host/file.h"
#include "host/model_json.h"
#include "host/options.h"
#include "profile/profile.h"
#include "supervisor/report.h"

#define PROFILE_MAGIC "memfence-profile "

enum { OPT_JSON = MF_OPT_KEY_BASE };

static const struct mf_option report_options[] = {
	{.name = "json", .key = OPT_JSON,
	 .help = "print JSON: the document itself (checked,\nre-indented), a profile as --format json,\n"
		 "a segment as `stat --json`"},
	{.name = "format", .key = 'f', .has_arg = required_argument, .arg = "F", .def = "text",
	 .help = "text or json; for a profile any of\n" MF_PROFILE_FORMAT_LIST},
	{0},
};

/* Passed on to `memfence profile report` as given. */
static const struct mf_option report_profile_options[] = {
	{.name = "view", .key = 'v', .has_arg = required_argument, .arg = "V", .def = "allocated",
	 .help = "allocated, live, peak, failure"},
	{.name = "scope", .key = 's', .has_arg = required_argument, .arg = "NAME",
	 .help = "only samples taken in scopes named NAME"},
	{.name = "top", .key = 'n', .has_arg = required_argument, .arg = "N", .def = "20",
	 .help = "sites in the text report"},
	{.name = "output", .key = 'o', .has_arg = required_argument, .arg = "OUT",
	 .help = "write there instead of standard output"},
	{0},
};

static const struct mf_option *const report_tabs[] = {report_options, report_profile_options,
						      mf_help_options, NULL};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence report [OPTIONS] FILE\n"
		"\n"
		"Print any file memfence writes, for a person (or as JSON), telling its\n"
		"kind from its contents:\n"
		"  a post-mortem written by `memfence run` (docs/report-format.md): what\n"
		"    ended the program, the memory at the end, the requests and tasks in\n"
		"    flight, the last minute of memory;\n"
		"  the journal of a state directory (STATE_DIR/journal.json): the same\n"
		"    document while the program runs;\n"
		"  a profile (memfence-PID.prof, docs/profiler.md), as `memfence profile\n"
		"    report` prints it;\n"
		"  a stats segment, as `memfence stat` prints it.\n"
		"\n");
	mf_opts_help(f, "Options", report_options);
	mf_opts_help(f, "Profiles only", report_profile_options);
	mf_opts_help(f, NULL, mf_help_options);
	fprintf(f,
		"\n"
		"Exit status: 0; 1 when FILE cannot be read or is of no kind memfence\n"
		"writes; 2 for a bad option, or one that does not apply to FILE's kind.\n");
}

enum kind { K_UNKNOWN, K_REPORT, K_PROFILE, K_SEGMENT };

/* The kind of path from its first bytes. -errno when it cannot be read. */
static int sniff(const char *path, enum kind *k)
{
	char head[32];
	ssize_t n;
	int fd = mf_file_open(path);
	uint64_t magic;

	*k = K_UNKNOWN;
	if (fd < 0)
		return fd;
	n = read(fd, head, sizeof(head));
	close(fd);
	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(magic)) {
		memcpy(&magic, head, sizeof(magic));
		if (magic == MF_SEG_MAGIC) {
			*k = K_SEGMENT;
			return 0;
		}
	}
	if ((size_t)n >= sizeof(PROFILE_MAGIC) - 1 &&
	    memcmp(head, PROFILE_MAGIC, sizeof(PROFILE_MAGIC) - 1) == 0) {
		*k = K_PROFILE;
		return 0;
	}
	/* JSON: the post-mortem and the journal; checked when parsed. */
	for (ssize_t i = 0; i < n; i++) {
		if (head[i] == ' ' || head[i] == '\t' || head[i] == '\n' || head[i] == '\r')
			continue;
		if (head[i] == '{')
			*k = K_REPORT;
		break;
	}
	return 0;
}

static int print_report(const char *path, int as_json)
{
	char err[200];
	json_t *r = mf_json_load_file(path, MF_FILE_MAX_REPORT, JSON_REJECT_DUPLICATES, err,
				      sizeof(err));

	if (!r) {
		mf_err("report: cannot read %s: %s", path, err);
		return MF_EXIT_FAILURE;
	}
	if (!json_is_object(r) || !json_is_integer(json_object_get(r, "memfence_report"))) {
		mf_err("report: %s is not a memfence report (no \"memfence_report\" field)", path);
		json_decref(r);
		return MF_EXIT_FAILURE;
	}
	if (as_json) {
		json_dumpf(r, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		/* The file may be anyone's: no terminal escapes from it. */
		mf_stdout_clean();
		sup_report_print(stdout, r, 1);
	}
	json_decref(r);
	return 0;
}

int mf_cmd_report(int argc, char **argv)
{
	/* What a profile report takes, passed on as given. */
	char *pargv[16];
	int pargc = 1, opt, as_json = 0, profile_only = 0, err;
	const char *format = NULL, *path;
	enum kind k;

	struct mf_opts opts;

	pargv[0] = "report";
	mf_opts_init(&opts, "", report_tabs);
	while ((opt = getopt_long(argc, argv, opts.shortopts, opts.longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON: as_json = 1; break;
		case 'f': format = optarg; break;
		case 'v': case 's': case 'n': case 'o':
			profile_only = opt;
			pargv[pargc++] = opt == 'v' ? "--view" : opt == 's' ? "--scope"
					: opt == 'n' ? "--top" : "--output";
			pargv[pargc++] = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "Try 'memfence report --help'.\n");
			return MF_EXIT_USAGE;
		}
		if (pargc > 12) {
			mf_err("report: too many options");
			return MF_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		mf_err("report: expected one file (memfence report [OPTIONS] FILE)");
		return MF_EXIT_USAGE;
	}
	path = argv[optind];
	if (as_json && format && strcmp(format, "json") != 0) {
		mf_err("report: --json and --format %s disagree", format);
		return MF_EXIT_USAGE;
	}
	if (format && strcmp(format, "json") == 0)
		as_json = 1;
	err = sniff(path, &k);
	if (err) {
		mf_err("report: cannot read %s: %s", path, mf_file_strerror(err));
		return MF_EXIT_FAILURE;
	}
	if (k != K_PROFILE) {
		if (profile_only) {
			mf_err("report: -%c applies to profiles; %s is not one", profile_only, path);
			return MF_EXIT_USAGE;
		}
		if (format && strcmp(format, "json") != 0 && strcmp(format, "text") != 0) {
			mf_err("report: --format %s applies to profiles; %s is not one (text or json)",
			       format, path);
			return MF_EXIT_USAGE;
		}
	}
	switch (k) {
	case K_REPORT:
		return print_report(path, as_json);
	case K_PROFILE:
		if (as_json) {
			pargv[pargc++] = "--format";
			pargv[pargc++] = "json";
		} else if (format) {
			pargv[pargc++] = "--format";
			pargv[pargc++] = (char *)format;
		}
		pargv[pargc++] = (char *)path;
		pargv[pargc] = NULL;
		optind = 1;
		return mf_profile_report(pargc, pargv);
	case K_SEGMENT: {
		char *sargv[] = {"stat", as_json ? "--json" : (char *)path, as_json ? (char *)path : NULL,
				 NULL};

		optind = 1;
		return mf_cmd_stat(as_json ? 3 : 2, sargv);
	}
	default:
		mf_err("report: %s is not a file memfence writes (not a post-mortem, journal, "
		       "profile or stats segment)",
		       path);
		return MF_EXIT_FAILURE;
	}
}
