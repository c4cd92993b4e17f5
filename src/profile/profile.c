/*
 * profile.c - read a snapshot file written by the shim's profiler.
 *
 * The file is line-oriented text (docs/profiler.md has the full grammar):
 *
 *   memfence-profile 1
 *   pid 25247
 *   reason exit
 *   rate 65536
 *   totals allocated 199096123 live 1530537 peak 1530537 failure 0 samples 2887
 *   m 0	/srv/app/bin/server
 *   c 0	handle	/srv/app.py	12
 *   s 2 0 1530538 762 1530538 762 1530538 762 0 0	n0:1179 n0:11ad p0:14
 *
 * A site line gives its scope, then bytes and calls for the views
 * allocated, live, peak, failure, then its frames leaf first: native ones
 * as module:file-offset (hex), Python ones as code:line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/file.h"
#include "profile/profile.h"

struct rawmod {
	char *path;
};

struct rawcode {
	char *name, *file;
};

struct builder {
	struct mf_profile *p;
	struct rawmod *mods;
	int nmods;
	struct rawcode *codes;
	int ncodes;
	int capframes;
};

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		abort();
	return p;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s != NULL ? s + 1 : p;
}

/* Index of a frame with this label, added if new (linear probe on a small
 * hash kept beside the array would be faster; reports have few frames). */
static int frame_add(struct builder *b, const char *label, const char *func, const char *file,
		     int line, int python)
{
	struct mf_profile *p = b->p;

	for (int i = p->nframes - 1; i >= 0; i--)
		if (strcmp(p->frames[i].label, label) == 0)
			return i;
	if (p->nframes == b->capframes) {
		b->capframes = b->capframes ? 2 * b->capframes : 256;
		p->frames = xrealloc(p->frames, (size_t)b->capframes * sizeof(*p->frames));
	}
	p->frames[p->nframes] = (struct mf_pframe){xstrdup(label), xstrdup(func), xstrdup(file), line, python};
	return p->nframes++;
}

static int native_frame(struct builder *b, const char *tok, int *is_eval)
{
	char label[512], sym[256];
	const char *colon = strchr(tok, ':');
	long m = strtol(tok + 1, NULL, 10);
	uint64_t off = colon ? strtoull(colon + 1, NULL, 16) : 0;
	const char *path = m >= 0 && m < b->nmods ? b->mods[m].path : "?";

	sym[0] = '\0';
	if (m >= 0 && m < b->nmods)
		mf_elf_symbol(path, off, sym, sizeof(sym));
	/* gcc's clones (site.isra.0, f.constprop.1, g.part.0, h.cold) are
	 * the function the source names. */
	for (char *dot = strchr(sym, '.'); dot != NULL; dot = strchr(dot + 1, '.'))
		if (strncmp(dot, ".isra.", 6) == 0 || strncmp(dot, ".constprop.", 11) == 0 ||
		    strncmp(dot, ".part.", 6) == 0 || strcmp(dot, ".cold") == 0) {
			*dot = '\0';
			break;
		}
	*is_eval = strncmp(sym, "_PyEval_EvalFrame", 17) == 0;
	if (sym[0] != '\0')
		snprintf(label, sizeof(label), "%s", sym);
	else
		snprintf(label, sizeof(label), "%s+0x%llx", base_name(path), (unsigned long long)off);
	return frame_add(b, label, sym[0] ? sym : label, path, 0, 0);
}

static int python_frame(struct builder *b, const char *tok)
{
	char label[512];
	char *colon;
	long c = strtol(tok + 1, &colon, 10);
	int line = *colon == ':' ? atoi(colon + 1) : 0;
	const char *name = c >= 0 && c < b->ncodes ? b->codes[c].name : "?";
	const char *file = c >= 0 && c < b->ncodes ? b->codes[c].file : "?";

	snprintf(label, sizeof(label), "%s (%s:%d)", name, base_name(file), line);
	return frame_add(b, label, name, file, line, 1);
}

/*
 * Frames of one site, root first. With Python frames, the native frames
 * from the leaf up to the interpreter's eval loop stay (the C code that
 * allocated for the Python line), the Python frames follow, and the
 * interpreter's own outer frames are dropped: they are the same for every
 * site and would only push the Python ones out of sight.
 */
static int site_frames(struct builder *b, char *list, struct mf_psite *s)
{
	int leaf[128], n = 0, py = 0, stop_native = 0;
	char *save = NULL;

	for (char *tok = strtok_r(list, " \n", &save); tok != NULL && n < 128;
	     tok = strtok_r(NULL, " \n", &save)) {
		if (tok[0] == 'n') {
			int is_eval;
			if (stop_native)
				continue;
			int f = native_frame(b, tok, &is_eval);
			if (is_eval) {
				stop_native = 1;
				continue;
			}
			leaf[n++] = f;
		} else if (tok[0] == 'p') {
			py = 1;
			leaf[n++] = python_frame(b, tok);
		} else {
			return -1;
		}
	}
	s->python = py;
	s->nframes = n;
	s->frames = xrealloc(NULL, (size_t)n * sizeof(int));
	for (int i = 0; i < n; i++)
		s->frames[i] = leaf[n - 1 - i];
	return 0;
}

static void split_tab(char *s, char **fields, int n)
{
	for (int i = 0; i < n; i++) {
		fields[i] = s;
		if (s == NULL)
			continue;
		char *t = strchr(s, '\t');
		if (t != NULL)
			*t++ = '\0';
		s = t;
	}
}

int mf_profile_load(const char *path, struct mf_profile *p, char *err, size_t errlen)
{
	struct stat st;
	FILE *f;
	int fd = mf_file_open(path), rc;

	memset(p, 0, sizeof(*p));
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, mf_file_strerror(fd));
		return -1;
	}
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > MF_PROFILE_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, mf_file_strerror(-EFBIG));
		close(fd);
		return -1;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	rc = mf_profile_parse(f, path, p, err, errlen);
	fclose(f);
	return rc;
}

int mf_profile_parse(FILE *f, const char *path, struct mf_profile *p, char *err, size_t errlen)
{
	struct builder b = {.p = p};
	char *line = NULL;
	size_t cap = 0, total = 0;
	ssize_t len;
	int lineno = 0, ended = 0, rc = -1;

	memset(p, 0, sizeof(*p));
	p->scopes = xrealloc(NULL, sizeof(char *));
	p->scopes[0] = xstrdup("");
	p->nscopes = 1;
	while ((len = getline(&line, &cap, f)) > 0) {
		char *fl[4];
		lineno++;
		/* A file that grows while it is read stops here too. */
		total += (size_t)len;
		if (total > MF_PROFILE_FILE_MAX) {
			snprintf(err, errlen, "%s: %s", path, mf_file_strerror(-EFBIG));
			goto out;
		}
		if (memchr(line, '\0', (size_t)len) != NULL)
			goto bad;
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (lineno == 1) {
			if (strcmp(line, "memfence-profile 1") != 0) {
				snprintf(err, errlen, "%s: not a memfence profile (first line '%.40s')", path, line);
				goto out;
			}
			continue;
		}
		if (strncmp(line, "pid ", 4) == 0) {
			p->pid = atol(line + 4);
		} else if (strncmp(line, "reason ", 7) == 0) {
			snprintf(p->reason, sizeof(p->reason), "%s", line + 7);
		} else if (strncmp(line, "time_ns ", 8) == 0) {
			p->time_ns = strtoull(line + 8, NULL, 10);
		} else if (strncmp(line, "rate ", 5) == 0) {
			p->rate = strtoull(line + 5, NULL, 10);
		} else if (strncmp(line, "python ", 7) == 0) {
			char *info = strchr(line + 7, ' ');
			p->python = atoi(line + 7);
			snprintf(p->pyinfo, sizeof(p->pyinfo), "%s", info != NULL ? info + 1 : "");
		} else if (strncmp(line, "pymalloc ", 9) == 0) {
			snprintf(p->pymalloc, sizeof(p->pymalloc), "%s", line + 9);
		} else if (strncmp(line, "totals ", 7) == 0) {
			unsigned long long a, l, pk, fa, n;
			if (sscanf(line, "totals allocated %llu live %llu peak %llu failure %llu samples %llu",
				   &a, &l, &pk, &fa, &n) != 5)
				goto bad;
			p->tot[MF_VIEW_ALLOCATED] = a;
			p->tot[MF_VIEW_LIVE] = l;
			p->tot[MF_VIEW_PEAK] = pk;
			p->tot[MF_VIEW_FAILURE] = fa;
			p->samples = n;
		} else if (strncmp(line, "overflow ", 9) == 0) {
			unsigned long long a, l, c, s;
			if (sscanf(line, "overflow sites %llu live %llu codes %llu scopes %llu", &a, &l, &c, &s) != 4)
				goto bad;
			p->over_sites = a, p->over_live = l, p->over_codes = c, p->over_scopes = s;
		} else if (strncmp(line, "rss ", 4) == 0) {
			p->rss = strtoull(line + 4, NULL, 10);
		} else if (strncmp(line, "heap ", 5) == 0) {
			unsigned long long l, pk;
			if (sscanf(line, "heap live %llu peak %llu", &l, &pk) != 2)
				goto bad;
			p->heap_live = l, p->heap_peak = pk;
		} else if (strncmp(line, "m ", 2) == 0) {
			split_tab(line, fl, 2);
			if (fl[1] == NULL || atoi(line + 2) != b.nmods)
				goto bad;
			b.mods = xrealloc(b.mods, (size_t)(b.nmods + 1) * sizeof(*b.mods));
			b.mods[b.nmods++].path = xstrdup(fl[1]);
		} else if (strncmp(line, "S ", 2) == 0) {
			split_tab(line, fl, 2);
			if (fl[1] == NULL || atoi(line + 2) != p->nscopes)
				goto bad;
			p->scopes = xrealloc(p->scopes, (size_t)(p->nscopes + 1) * sizeof(char *));
			p->scopes[p->nscopes++] = xstrdup(fl[1]);
		} else if (strncmp(line, "c ", 2) == 0) {
			split_tab(line, fl, 4);
			if (fl[2] == NULL || atoi(line + 2) != b.ncodes)
				goto bad;
			b.codes = xrealloc(b.codes, (size_t)(b.ncodes + 1) * sizeof(*b.codes));
			b.codes[b.ncodes].name = xstrdup(fl[1]);
			b.codes[b.ncodes++].file = xstrdup(fl[2]);
		} else if (strncmp(line, "s ", 2) == 0) {
			struct mf_psite s = {0};
			double v[8];
			int idx, scope;
			split_tab(line, fl, 2);
			if (fl[1] == NULL ||
			    sscanf(line, "s %d %d %lf %lf %lf %lf %lf %lf %lf %lf", &idx, &scope, &v[0], &v[1],
				   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 10 ||
			    scope < 0 || scope >= p->nscopes)
				goto bad;
			s.scope = scope;
			for (int i = 0; i < 4; i++) {
				s.bytes[i] = v[2 * i];
				s.count[i] = v[2 * i + 1];
			}
			if (site_frames(&b, fl[1], &s) != 0)
				goto bad;
			p->sites = xrealloc(p->sites, (size_t)(p->nsites + 1) * sizeof(*p->sites));
			p->sites[p->nsites++] = s;
		} else if (strcmp(line, "end") == 0) {
			ended = 1;
			break;
		} else {
			goto bad;
		}
	}
	if (lineno == 0) {
		snprintf(err, errlen, "%s: empty file", path);
		goto out;
	}
	if (!ended) {
		snprintf(err, errlen, "%s: truncated (no 'end' line)", path);
		goto out;
	}
	rc = 0;
	goto out;
bad:
	snprintf(err, errlen, "%s:%d: malformed line '%.60s'", path, lineno, line);
out:
	for (int i = 0; i < b.nmods; i++)
		free(b.mods[i].path);
	for (int i = 0; i < b.ncodes; i++) {
		free(b.codes[i].name);
		free(b.codes[i].file);
	}
	free(b.mods);
	free(b.codes);
	free(line);
	if (rc != 0)
		mf_profile_free(p);
	return rc;
}

void mf_profile_free(struct mf_profile *p)
{
	for (int i = 0; i < p->nscopes; i++)
		free(p->scopes[i]);
	for (int i = 0; i < p->nframes; i++) {
		free(p->frames[i].label);
		free(p->frames[i].func);
		free(p->frames[i].file);
	}
	for (int i = 0; i < p->nsites; i++)
		free(p->sites[i].frames);
	free(p->scopes);
	free(p->frames);
	free(p->sites);
	memset(p, 0, sizeof(*p));
}

int mf_profile_view_parse(const char *s, enum mf_prof_view *out)
{
	static const char *names[] = {"allocated", "live", "peak", "failure"};

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum mf_prof_view)i;
			return 0;
		}
	return -1;
}

int mf_profile_format_parse(const char *s, enum mf_prof_format *out)
{
	for (int i = 0; i < MF_FMT_COUNT; i++)
		if (strcmp(s, mf_profile_formats[i].name) == 0) {
			*out = (enum mf_prof_format)i;
			return 0;
		}
	return -1;
}
