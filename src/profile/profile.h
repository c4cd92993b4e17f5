/*
 * profile.h - reading the profiler's snapshot files (memfence-PID.prof,
 * format in docs/profiler.md) and writing reports from them.
 *
 * A site is one stack (root first) and one scope; its figures are the
 * profiler's unbiased estimates for four views: bytes allocated since the
 * start, live now (at the end, for an exit snapshot: the leaks), live at
 * the peak of live memory, live at the first failed allocation.
 */
#ifndef MF_PROFILE_H
#define MF_PROFILE_H

#include <stdint.h>
#include <stdio.h>

#include "host/file.h"

enum mf_prof_view { MF_VIEW_ALLOCATED, MF_VIEW_LIVE, MF_VIEW_PEAK, MF_VIEW_FAILURE };

/*
 * The report formats, one row each: X(ID, name, writer in profile_out.c,
 * clean), rows separated by SEP. clean: text whose names and paths (from
 * the file) are cleaned of terminal escapes on standard output. The enum,
 * the parser, the writers' table, the CLI's --help and messages, and the
 * fuzz target derive from these rows, and tests/integration/options_doc.sh
 * checks that the man page and docs/profiler.md name each: a new format is
 * a row here and its writer.
 */
#define MF_PROFILE_FORMATS(X, SEP)                          \
	X(TEXT, "text", write_text, 1) SEP                  \
	X(COLLAPSED, "collapsed", write_collapsed, 1) SEP   \
	X(SVG, "svg", write_svg, 0) SEP                     \
	X(PPROF, "pprof", write_pprof, 0) SEP               \
	X(JSON, "json", write_json, 0)

#define MF_FMT_ENUM_(id, name, writer, clean) MF_FMT_##id
#define MF_FMT_COMMA_ ,
#define MF_FMT_NAME_(id, name, writer, clean) name
enum mf_prof_format { MF_PROFILE_FORMATS(MF_FMT_ENUM_, MF_FMT_COMMA_), MF_FMT_COUNT };
/* "text, collapsed, svg, pprof, json": a string literal, for --help. */
#define MF_PROFILE_FORMAT_LIST MF_PROFILE_FORMATS(MF_FMT_NAME_, ", ")

struct mf_pframe {
	char *label;    /* "func", "module+0x1f0", "qualname (file.py:12)" */
	char *func;
	char *file;     /* module path or Python file */
	int line;       /* Python line, 0 for native */
	int python;
};

struct mf_psite {
	int scope;      /* index in scopes, 0 = none */
	double bytes[4], count[4]; /* by enum mf_prof_view */
	int python;     /* has Python frames */
	int nframes;
	int *frames;    /* root first, indices into frames */
};

struct mf_profile {
	long pid;
	char reason[32];
	uint64_t time_ns, rate, samples;
	int python;
	char pyinfo[48];          /* "3.13.0", "3.13.0 free-threaded": the "python" line's rest */
	char pymalloc[16];
	uint64_t tot[4];          /* by view */
	uint64_t over_sites, over_live, over_codes, over_scopes;
	uint64_t rss, heap_live, heap_peak;
	char **scopes;
	int nscopes;
	struct mf_pframe *frames;
	int nframes;
	struct mf_psite *sites;
	int nsites;
};

/* The largest profile file read (host/file.h, with the other kinds). */
#define MF_PROFILE_FILE_MAX MF_FILE_MAX_PROFILE

/* Read and symbolise FILE, a regular file of at most MF_PROFILE_FILE_MAX
 * bytes. 0, or -1 with a one-line reason in err. */
int mf_profile_load(const char *path, struct mf_profile *p, char *err, size_t errlen);
/* The same from an open stream; path names it in messages. */
int mf_profile_parse(FILE *f, const char *path, struct mf_profile *p, char *err, size_t errlen);
void mf_profile_free(struct mf_profile *p);

int mf_profile_view_parse(const char *s, enum mf_prof_view *out);
int mf_profile_format_parse(const char *s, enum mf_prof_format *out);

typedef int mf_profile_writer(const struct mf_profile *p, enum mf_prof_view view,
			      const char *scope, int top, FILE *out, char *err, size_t errlen);
struct mf_profile_format {
	const char *name;
	mf_profile_writer *write;
	int clean;
};
/* By enum mf_prof_format. */
extern const struct mf_profile_format mf_profile_formats[MF_FMT_COUNT];

/* Write the report; scope = NULL for every scope. 0, or -1 (err set). */
int mf_profile_write(const struct mf_profile *p, enum mf_prof_format fmt, enum mf_prof_view view,
		     const char *scope, int top, FILE *out, char *err, size_t errlen);

/* Go's heap profile of the n profiles ps merged, as /debug/pprof/heap and
 * /debug/pprof/allocs serve it: the sample types alloc_objects, alloc_space
 * (the allocated view), inuse_objects, inuse_space (the live view), each
 * sample labelled with its process ("pid") and its scope ("scope", when it
 * has one); default_view MF_VIEW_ALLOCATED makes alloc_space the default
 * sample type, any other inuse_space. 0, or -1 (err set). */
int mf_profile_write_heap(const struct mf_profile *ps, int n, enum mf_prof_view default_view,
			  FILE *out, char *err, size_t errlen);

/* Native symbol of a file offset in an ELF file ("" when unknown).
 * Returns 0 and copies the name, -1 if the file cannot be read. */
int mf_elf_symbol(const char *path, uint64_t file_off, char *name, size_t len);

#endif
