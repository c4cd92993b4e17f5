/*
 * profile_out.c - reports from a profile: text, collapsed stacks, a flame
 * graph SVG, pprof, JSON.
 *
 * pprof is the gzip-compressed protobuf of github.com/google/pprof's
 * proto/profile.proto; the few messages needed are encoded by hand below
 * (field numbers from that file), and compressed with zlib.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "host/dynlib.h"

#include "profile/profile.h"

static const char *view_names[] = {"allocated", "live", "peak", "failure"};
static const char *view_help[] = {
	"bytes allocated since the start (estimated from samples)",
	"live when the snapshot was taken (at exit: not freed, the leaks)",
	"live at the peak of live memory",
	"live at the first failed or refused allocation",
};

static int site_in(const struct mf_profile *p, const struct mf_psite *s, const char *scope)
{
	return scope == NULL || strcmp(p->scopes[s->scope], scope) == 0;
}

static char *hsize(double b, char *buf, size_t len)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;

	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
	return buf;
}

/* ---- text ---- */

struct agg {
	int frame;      /* leaf frame */
	double bytes, count;
	int best_site;  /* the heaviest site with this leaf, for its callers */
	int key;        /* position of the leaf frame in that site */
	double best;
};

static int agg_cmp(const void *a, const void *b)
{
	const struct agg *x = a, *y = b;

	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* The rest of the text report's "domains seen" line: the Python objects
 * seen, and why not when an interpreter was there but not read (the
 * words of the "python" line, docs/profiler.md). */
static void python_domains(FILE *o, const struct mf_profile *p)
{
	static const struct {
		const char *word, *why;
	} whys[] = {
		{"free-threaded", "a free-threaded build, which the profiler does not support"},
		{"unsupported", "a version whose frame layout this memfence does not know"},
		{"mismatch", "it does not match the layout known for its version"},
	};
	const char *sp = strchr(p->pyinfo, ' ');
	const char *why = "not read";

	if (!p->python && p->pyinfo[0] == '\0') {
		fprintf(o, " (no Python interpreter seen)\n");
		return;
	}
	if (!p->python) {
		for (size_t i = 0; sp != NULL && i < sizeof(whys) / sizeof(whys[0]); i++)
			if (strcmp(sp + 1, whys[i].word) == 0)
				why = whys[i].why;
		fprintf(o, " (Python %.*s: %s; no Python frames or small objects)\n",
			sp != NULL ? (int)(sp - p->pyinfo) : (int)strlen(p->pyinfo), p->pyinfo, why);
		return;
	}
	fprintf(o, "%s%s%s\n",
		strcmp(p->pymalloc, "off") == 0 ? " + Python objects of every size (PYTHONMALLOC=malloc)"
		: strcmp(p->pymalloc, "hooked") == 0
			? " + Python objects <= 512 bytes in pymalloc arenas (allocator hook)"
			: "; Python objects <= 512 bytes in pymalloc arenas NOT seen",
		p->pyinfo[0] ? "; frames of Python " : "", p->pyinfo);
}

static int write_text(const struct mf_profile *p, enum mf_prof_view v, const char *scope, int top,
			      FILE *o, char *err, size_t errlen)
{
	struct agg *a = calloc((size_t)p->nframes + 1, sizeof(*a));
	double total = 0, py = 0, nat = 0;
	char b1[32], b2[32], b3[32], b4[32];
	int n = 0;
	(void)err;
	(void)errlen;

	if (a == NULL)
		return -1;
	for (int i = 0; i < p->nsites; i++) {
		const struct mf_psite *s = &p->sites[i];
		if (!site_in(p, s, scope) || s->bytes[v] <= 0 || s->nframes == 0)
			continue;
		/* A Python program's sites are named by their innermost Python
		 * line: the C function under it is the same for many lines. */
		int key = s->nframes - 1, k;
		if (s->python)
			while (key > 0 && !p->frames[s->frames[key]].python)
				key--;
		int leaf = s->frames[key];
		for (k = 0; k < n && a[k].frame != leaf; k++)
			;
		if (k == n)
			a[n++] = (struct agg){.frame = leaf, .best_site = i, .key = key};
		a[k].bytes += s->bytes[v];
		a[k].count += s->count[v];
		if (s->bytes[v] > a[k].best) {
			a[k].best = s->bytes[v];
			a[k].best_site = i;
			a[k].key = key;
		}
		total += s->bytes[v];
		if (s->python)
			py += s->bytes[v];
		else
			nat += s->bytes[v];
	}
	qsort(a, (size_t)n, sizeof(*a), agg_cmp);
	fprintf(o, "memfence profile of pid %ld (snapshot: %s), %llu samples, one per %s on average\n",
		p->pid, p->reason, (unsigned long long)p->samples, hsize((double)p->rate, b1, sizeof(b1)));
	fprintf(o, "view: %s - %s%s%s\n", view_names[v], view_help[v], scope ? ", scope " : "",
		scope ? scope : "");
	fprintf(o, "domains seen: malloc family");
	python_domains(o, p);
	fprintf(o, "memory: python-heap %s | native-heap %s (this view, estimated) | "
		   "heap live %s (exact, accounting) | RSS %s\n",
		hsize(py, b1, sizeof(b1)), hsize(nat, b2, sizeof(b2)),
		hsize((double)p->heap_live, b3, sizeof(b3)), hsize((double)p->rss, b4, sizeof(b4)));
	if (p->over_sites || p->over_live || p->over_codes || p->over_scopes)
		fprintf(o, "overflow: %llu samples without a site, %llu not tracked live, %llu code objects, %llu scope names\n",
			(unsigned long long)p->over_sites, (unsigned long long)p->over_live,
			(unsigned long long)p->over_codes, (unsigned long long)p->over_scopes);
	fprintf(o, "\n%12s %7s %10s  %s\n", "bytes", "share", "count", "site (callers)");
	for (int i = 0; i < n && i < top; i++) {
		const struct mf_psite *s = &p->sites[a[i].best_site];
		fprintf(o, "%12s %6.1f%% %10.0f  %s", hsize(a[i].bytes, b1, sizeof(b1)),
			total > 0 ? 100 * a[i].bytes / total : 0, a[i].count, p->frames[a[i].frame].label);
		for (int k = a[i].key - 1, c = 0; k >= 0 && c < 3; k--, c++)
			fprintf(o, "%s%s", c ? " < " : "  <- ", p->frames[s->frames[k]].label);
		fputc('\n', o);
	}
	if (n == 0)
		fprintf(o, "%12s\n", "(no samples in this view)");
	free(a);
	return 0;
}

/* ---- collapsed ---- */

static void clean_label(FILE *o, const char *s)
{
	/* ';' separates frames and the last space the value */
	for (; *s; s++)
		fputc(*s == ';' ? ':' : *s, o);
}

static int write_collapsed(const struct mf_profile *p, enum mf_prof_view v, const char *scope, int top,
			   FILE *o, char *err, size_t errlen)
{
	(void)top;
	(void)err;
	(void)errlen;
	for (int i = 0; i < p->nsites; i++) {
		const struct mf_psite *s = &p->sites[i];
		if (!site_in(p, s, scope) || s->bytes[v] < 0.5)
			continue;
		if (p->scopes[s->scope][0] != '\0') {
			fputs("[scope ", o);
			clean_label(o, p->scopes[s->scope]);
			fputs("];", o);
		}
		for (int k = 0; k < s->nframes; k++) {
			if (k)
				fputc(';', o);
			clean_label(o, p->frames[s->frames[k]].label);
		}
		fprintf(o, " %.0f\n", s->bytes[v]);
	}
	return 0;
}

/* ---- SVG flame graph ---- */

struct node {
	int frame;
	double value;
	int child, next; /* first child, next sibling; -1 none */
};

struct tree {
	struct node *n;
	int len, cap;
};

static int tree_add(struct tree *t, int frame)
{
	if (t->len == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 256;
		t->n = realloc(t->n, (size_t)t->cap * sizeof(*t->n));
		if (t->n == NULL)
			abort();
	}
	t->n[t->len] = (struct node){frame, 0, -1, -1};
	return t->len++;
}

static void xml(FILE *o, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", o); break;
		case '>': fputs("&gt;", o); break;
		case '&': fputs("&amp;", o); break;
		case '"': fputs("&quot;", o); break;
		default: fputc(*s, o);
		}
	}
}

#define SVG_W 1200.0
#define ROW 17
/*
 * Frames narrower than this share of the width are drawn as one box per
 * parent ("N smaller"), not followed further: deep stacks of small sites
 * (thread start-up, imports) otherwise set the graph's height, and the wide
 * stacks that hold the memory sit at the bottom of a mostly empty picture.
 */
#define SVG_MIN_SHARE 0.01

static int narrow(const struct tree *t, int c, double total)
{
	return !(t->n[c].value >= total * SVG_MIN_SHARE);
}

static int depth_max(const struct tree *t, int i, double total)
{
	int d = 0;

	for (int c = t->n[i].child; c >= 0; c = t->n[c].next) {
		int k = narrow(t, c, total) ? 1 : depth_max(t, c, total);
		if (k > d)
			d = k;
	}
	return d + 1;
}

static void svg_node(const struct mf_profile *p, const struct tree *t, int i, double x, int depth,
		     int height, double total, FILE *o)
{
	const struct node *nd = &t->n[i];
	double w = nd->value / total * (SVG_W - 20);
	char b[32];

	/* A hostile or damaged profile can give values that make no width
	 * (NaN, infinities, more than the whole): nothing to draw then. */
	if (!isfinite(w) || w < 0.1 || w > SVG_W)
		return;
	if (depth > 0) {
		const char *label = p->frames[nd->frame].label;
		unsigned h = 0;
		for (const char *c = label; *c; c++)
			h = h * 31 + (unsigned char)*c;
		int y = height - depth * ROW - 30;
		fprintf(o, "<g><title>");
		xml(o, label);
		fprintf(o, " (%s, %.2f%%)</title><rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"rgb(%u,%u,%u)\" rx=\"2\"/>",
			hsize(nd->value, b, sizeof(b)), 100 * nd->value / total, x, y, w, ROW - 1,
			p->frames[nd->frame].python ? 80 + h % 60 : 205 + h % 50,
			p->frames[nd->frame].python ? 150 + h % 80 : 90 + h % 120,
			p->frames[nd->frame].python ? 205 + h % 50 : 40 + h % 40);
		int chars = (int)(w / 7);
		if (chars > 3) {
			fprintf(o, "<text x=\"%.1f\" y=\"%d\">", x + 3, y + 12);
			char cut[256];
			snprintf(cut, sizeof(cut), "%s", label);
			if ((int)strlen(cut) > chars)
				snprintf(cut + (chars > 2 ? chars - 2 : 0), 3, "..");
			xml(o, cut);
			fputs("</text>", o);
		}
		fputs("</g>\n", o);
	}
	double small = 0;
	int nsmall = 0;

	for (int c = nd->child; c >= 0; c = t->n[c].next) {
		if (narrow(t, c, total)) {
			small += t->n[c].value;
			nsmall++;
			continue;
		}
		svg_node(p, t, c, x, depth + 1, height, total, o);
		x += t->n[c].value / total * (SVG_W - 20);
	}
	w = small / total * (SVG_W - 20);
	if (nsmall && isfinite(w) && w >= 0.1 && w <= SVG_W) {
		int y = height - (depth + 1) * ROW - 30;

		fprintf(o, "<g><title>%d smaller frame(s), each under %.0f%% (%s, %.2f%%)</title>"
			   "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#d8d8d0\" "
			   "rx=\"2\"/></g>\n",
			nsmall, 100 * SVG_MIN_SHARE, hsize(small, b, sizeof(b)), 100 * small / total, x, y,
			w, ROW - 1);
	}
}

static int write_svg(const struct mf_profile *p, enum mf_prof_view v, const char *scope, int top,
		     FILE *o, char *err, size_t errlen)
{
	struct tree t = {0};
	int root = tree_add(&t, -1), height;
	char b[32];
	(void)top;
	(void)err;
	(void)errlen;

	for (int i = 0; i < p->nsites; i++) {
		const struct mf_psite *s = &p->sites[i];
		int cur = root;
		if (!site_in(p, s, scope) || s->bytes[v] <= 0)
			continue;
		t.n[root].value += s->bytes[v];
		for (int k = 0; k < s->nframes; k++) {
			int c;
			for (c = t.n[cur].child; c >= 0 && t.n[c].frame != s->frames[k]; c = t.n[c].next)
				;
			if (c < 0) {
				c = tree_add(&t, s->frames[k]);
				t.n[c].next = t.n[cur].child;
				t.n[cur].child = c;
			}
			t.n[c].value += s->bytes[v];
			cur = c;
		}
	}
	height = depth_max(&t, root, t.n[root].value) * ROW + 60;
	fprintf(o, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
		   "<svg version=\"1.1\" width=\"%.0f\" height=\"%d\" viewBox=\"0 0 %.0f %d\" "
		   "xmlns=\"http://www.w3.org/2000/svg\" font-family=\"monospace\" font-size=\"12\">\n"
		   "<rect x=\"0\" y=\"0\" width=\"100%%\" height=\"100%%\" fill=\"#fdfdf6\"/>\n"
		   "<text x=\"10\" y=\"20\" font-size=\"15\">memfence heap profile, pid %ld: %s (%s total)",
		SVG_W, height, SVG_W, height, p->pid, view_names[v], hsize(t.n[root].value, b, sizeof(b)));
	if (scope) {
		fputs(", scope ", o);
		xml(o, scope);
	}
	fputs("</text>\n<text x=\"10\" y=\"36\" font-size=\"11\">width = bytes; blue = Python frames, "
	      "warm = native; hover for figures</text>\n", o);
	if (t.n[root].value > 0)
		svg_node(p, &t, root, 10, 0, height, t.n[root].value, o);
	fputs("</svg>\n", o);
	free(t.n);
	return 0;
}

/* ---- JSON ---- */

static void jstr(FILE *o, const char *s)
{
	fputc('"', o);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(o, "\\%c", c);
		else if (c < 0x20)
			fprintf(o, "\\u%04x", c);
		else
			fputc(c, o);
	}
	fputc('"', o);
}

static int write_json(const struct mf_profile *p, enum mf_prof_view v, const char *scope, int top,
		      FILE *o, char *err, size_t errlen)
{
	int first = 1;
	(void)top;
	(void)err;
	(void)errlen;

	fprintf(o, "{\"pid\":%ld,\"reason\":", p->pid);
	jstr(o, p->reason);
	fprintf(o, ",\"time_ns\":%llu,\"rate\":%llu,\"samples\":%llu,\"view\":\"%s\",\"python\":%s,"
		   "\"pymalloc\":",
		(unsigned long long)p->time_ns, (unsigned long long)p->rate,
		(unsigned long long)p->samples, view_names[v], p->python ? "true" : "false");
	jstr(o, p->pymalloc);
	fprintf(o, ",\"python_interpreter\":");
	jstr(o, p->pyinfo);
	fprintf(o, ",\"totals\":{\"allocated\":%llu,\"live\":%llu,\"peak\":%llu,\"failure\":%llu},"
		   "\"overflow\":{\"sites\":%llu,\"live\":%llu,\"codes\":%llu,\"scopes\":%llu},"
		   "\"rss\":%llu,\"heap_live\":%llu,\"heap_peak\":%llu,\"sites\":[",
		(unsigned long long)p->tot[0], (unsigned long long)p->tot[1], (unsigned long long)p->tot[2],
		(unsigned long long)p->tot[3], (unsigned long long)p->over_sites,
		(unsigned long long)p->over_live, (unsigned long long)p->over_codes,
		(unsigned long long)p->over_scopes, (unsigned long long)p->rss,
		(unsigned long long)p->heap_live, (unsigned long long)p->heap_peak);
	for (int i = 0; i < p->nsites; i++) {
		const struct mf_psite *s = &p->sites[i];
		if (!site_in(p, s, scope) || s->bytes[v] < 0.5)
			continue;
		fprintf(o, "%s{\"bytes\":%.0f,\"count\":%.0f,\"scope\":", first ? "" : ",", s->bytes[v],
			s->count[v]);
		jstr(o, p->scopes[s->scope]);
		fputs(",\"frames\":[", o);
		for (int k = s->nframes - 1; k >= 0; k--) {
			const struct mf_pframe *f = &p->frames[s->frames[k]];
			fputs(k == s->nframes - 1 ? "{\"function\":" : ",{\"function\":", o);
			jstr(o, f->func);
			fputs(",\"file\":", o);
			jstr(o, f->file);
			fprintf(o, ",\"line\":%d,\"python\":%s}", f->line, f->python ? "true" : "false");
		}
		fputs("]}", o);
		first = 0;
	}
	fputs("]}\n", o);
	return 0;
}

/* ---- pprof ---- */

struct buf {
	unsigned char *d;
	size_t n, cap;
};

static void put(struct buf *b, const void *src, size_t n)
{
	/* An empty message has no buffer yet: memcpy from NULL is undefined
	 * even for 0 bytes (found by tests/fuzz/fuzz_profile.c). */
	if (n == 0)
		return;
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 256;
		b->d = realloc(b->d, b->cap);
		if (b->d == NULL)
			abort();
	}
	memcpy(b->d + b->n, src, n);
	b->n += n;
}

static void varint(struct buf *b, uint64_t v)
{
	unsigned char c[10];
	int n = 0;

	do {
		c[n] = v & 0x7f;
		v >>= 7;
		if (v)
			c[n] |= 0x80;
		n++;
	} while (v);
	put(b, c, (size_t)n);
}

static void f_varint(struct buf *b, int field, uint64_t v)
{
	varint(b, (uint64_t)field << 3);
	varint(b, v);
}

static void f_bytes(struct buf *b, int field, const void *d, size_t n)
{
	varint(b, (uint64_t)field << 3 | 2);
	varint(b, n);
	put(b, d, n);
}

static void f_msg(struct buf *b, int field, struct buf *m)
{
	f_bytes(b, field, m->d, m->n);
	m->n = 0;
}

struct strtab {
	char **s;
	int n;
};

static int str_id(struct strtab *t, const char *s)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->s[i], s) == 0)
			return i;
	t->s = realloc(t->s, (size_t)(t->n + 1) * sizeof(char *));
	if (t->s == NULL)
		abort();
	t->s[t->n] = strdup(s);
	return t->n++;
}

static void value_type(struct buf *out, int field, struct strtab *st, const char *type, const char *unit)
{
	struct buf m = {0};

	f_varint(&m, 1, (uint64_t)str_id(st, type));
	f_varint(&m, 2, (uint64_t)str_id(st, unit));
	f_msg(out, field, &m);
	free(m.d);
}

/* A pprof Profile under construction: its sample types first, then
 * samples, then each profile's frames (pp_frames), then pp_finish. */
struct pprof {
	struct buf pb, m, sub;
	struct strtab st;
};

static void pp_init(struct pprof *x)
{
	memset(x, 0, sizeof(*x));
	str_id(&x->st, "");
}

/* "KIND_objects"/count and "KIND_space"/bytes, as Go names them. */
static void pp_types(struct pprof *x, const char *kind)
{
	char tn[32], sn[32];

	snprintf(tn, sizeof(tn), "%s_objects", kind);
	snprintf(sn, sizeof(sn), "%s_space", kind);
	value_type(&x->pb, 1, &x->st, tn, "count");
	value_type(&x->pb, 1, &x->st, sn, "bytes");
}

static void pp_label(struct pprof *x, const char *key, const char *str, int64_t num)
{
	struct buf lab = {0};

	f_varint(&lab, 1, (uint64_t)str_id(&x->st, key));
	if (str)
		f_varint(&lab, 2, (uint64_t)str_id(&x->st, str));
	else
		f_varint(&lab, 3, (uint64_t)num);
	f_msg(&x->m, 3, &lab);
	free(lab.d);
}

/* An estimated count, rounded: 0 for NaN and below half a unit, the largest
 * count for what no 64-bit count holds (a profile read from a damaged
 * file). */
static uint64_t round_count(double v)
{
	if (!(v >= 0.5))
		return 0;
	if (v >= 18446744073709551616.0)    /* 2^64 */
		return UINT64_MAX;
	return (uint64_t)(v + 0.5);
}

/* One sample of site s of p, whose frames' location ids start after base;
 * pid > 0 adds a pid label. */
static void pp_sample(struct pprof *x, const struct mf_profile *p, const struct mf_psite *s,
		      uint64_t base, const double *vals, int nv, long pid)
{
	for (int k = s->nframes - 1; k >= 0; k--) /* leaf first */
		varint(&x->sub, base + (uint64_t)s->frames[k] + 1);
	f_msg(&x->m, 1, &x->sub);
	for (int i = 0; i < nv; i++)
		varint(&x->sub, round_count(vals[i]));
	f_msg(&x->m, 2, &x->sub);
	if (p->scopes[s->scope][0] != '\0')
		pp_label(x, "scope", p->scopes[s->scope], 0);
	if (pid > 0)
		pp_label(x, "pid", NULL, pid);
	f_msg(&x->pb, 2, &x->m);
}

/* One location and one function per frame of p, ids = base + index + 1. */
static void pp_frames(struct pprof *x, const struct mf_profile *p, uint64_t base)
{
	for (int i = 0; i < p->nframes; i++) {
		const struct mf_pframe *f = &p->frames[i];
		struct buf line = {0};
		uint64_t id = base + (uint64_t)i + 1;

		f_varint(&x->m, 1, id);
		f_varint(&line, 1, id);
		f_varint(&line, 2, (uint64_t)f->line);
		f_msg(&x->m, 4, &line);
		free(line.d);
		f_msg(&x->pb, 4, &x->m);
		f_varint(&x->m, 1, id);
		f_varint(&x->m, 2, (uint64_t)str_id(&x->st, f->python ? f->func : f->label));
		f_varint(&x->m, 3, (uint64_t)str_id(&x->st, f->func));
		f_varint(&x->m, 4, (uint64_t)str_id(&x->st, f->file));
		f_msg(&x->pb, 5, &x->m);
	}
}

/* zlib, loaded at the first profile written rather than at every start of
 * the command (src/host/dynlib.h). */
static struct {
	int (*deflate_init2)(z_streamp, int, int, int, int, int, const char *, int);
	int (*deflate)(z_streamp, int);
	int (*deflate_end)(z_streamp);
} zl;

static int zlib_load(char *err, size_t errlen)
{
	const struct mf_dynsym syms[] = {
		{"deflateInit2_", (void **)&zl.deflate_init2},
		{"deflate", (void **)&zl.deflate},
		{"deflateEnd", (void **)&zl.deflate_end},
	};

	return mf_dynlib_need(MF_DYNLIB_ZLIB, syms, sizeof(syms) / sizeof(syms[0]),
			      "a pprof profile", NULL, err, errlen);
}

/* The string table, time, period (space/bytes), the default sample type
 * (NULL: none), and the whole gzip-compressed onto o. Frees x. */
static int pp_finish(struct pprof *x, uint64_t time_ns, uint64_t rate, const char *default_type,
		     FILE *o, char *err, size_t errlen)
{
	int rc = 0, def = default_type ? str_id(&x->st, default_type) : 0;

	str_id(&x->st, "space");
	str_id(&x->st, "bytes");
	for (int i = 0; i < x->st.n; i++)
		f_bytes(&x->pb, 6, x->st.s[i], strlen(x->st.s[i]));
	f_varint(&x->pb, 9, time_ns);
	value_type(&x->pb, 11, &x->st, "space", "bytes");
	f_varint(&x->pb, 12, rate);
	if (def)
		f_varint(&x->pb, 14, (uint64_t)def);
	for (int i = 0; i < x->st.n; i++)
		free(x->st.s[i]);
	free(x->st.s);

	if (zlib_load(err, errlen) < 0) {
		rc = -1;
		goto out;
	}
	{
		z_stream z;
		unsigned char out[1 << 14];
		memset(&z, 0, sizeof(z));
		/* 15 + 16: gzip wrapper, which pprof readers expect; what the
		 * deflateInit2() macro passes besides. */
		if (zl.deflate_init2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
				     (int)sizeof(z)) != Z_OK) {
			snprintf(err, errlen, "zlib: cannot start compression");
			rc = -1;
			goto out;
		}
		z.next_in = x->pb.d;
		z.avail_in = (uInt)x->pb.n;
		int zr;
		do {
			z.next_out = out;
			z.avail_out = sizeof(out);
			zr = zl.deflate(&z, Z_FINISH);
			fwrite(out, 1, sizeof(out) - z.avail_out, o);
		} while (zr == Z_OK);
		zl.deflate_end(&z);
		if (zr != Z_STREAM_END) {
			snprintf(err, errlen, "zlib: compression failed");
			rc = -1;
		}
	}
out:
	free(x->pb.d);
	free(x->m.d);
	free(x->sub.d);
	return rc;
}

static int write_pprof(const struct mf_profile *p, enum mf_prof_view v, const char *scope, int top,
		       FILE *o, char *err, size_t errlen)
{
	struct pprof x;
	(void)top;

	pp_init(&x);
	pp_types(&x, v == MF_VIEW_ALLOCATED ? "alloc" : "inuse");
	for (int i = 0; i < p->nsites; i++) {
		const struct mf_psite *s = &p->sites[i];
		double vals[2] = {s->count[v], s->bytes[v]};

		if (site_in(p, s, scope) && s->bytes[v] >= 0.5)
			pp_sample(&x, p, s, 0, vals, 2, 0);
	}
	pp_frames(&x, p, 0);
	return pp_finish(&x, p->time_ns, p->rate, NULL, o, err, errlen);
}

int mf_profile_write_heap(const struct mf_profile *ps, int n, enum mf_prof_view default_view,
			  FILE *o, char *err, size_t errlen)
{
	struct pprof x;
	uint64_t base = 0, time_ns = 0, rate = 0;

	pp_init(&x);
	pp_types(&x, "alloc");
	pp_types(&x, "inuse");
	for (int k = 0; k < n; k++) {
		const struct mf_profile *p = &ps[k];

		for (int i = 0; i < p->nsites; i++) {
			const struct mf_psite *s = &p->sites[i];
			double vals[4] = {s->count[MF_VIEW_ALLOCATED], s->bytes[MF_VIEW_ALLOCATED],
					  s->count[MF_VIEW_LIVE], s->bytes[MF_VIEW_LIVE]};

			if (vals[1] >= 0.5 || vals[3] >= 0.5)
				pp_sample(&x, p, s, base, vals, 4, p->pid);
		}
		base += (uint64_t)p->nframes;
		if (p->time_ns > time_ns)
			time_ns = p->time_ns;
		if (p->rate > rate)
			rate = p->rate;
	}
	base = 0;
	for (int k = 0; k < n; k++) {
		pp_frames(&x, &ps[k], base);
		base += (uint64_t)ps[k].nframes;
	}
	return pp_finish(&x, time_ns, rate,
			 default_view == MF_VIEW_ALLOCATED ? "alloc_space" : "inuse_space", o, err,
			 errlen);
}

#define MF_FMT_ROW(id, name, writer, clean) {name, writer, clean},
const struct mf_profile_format mf_profile_formats[MF_FMT_COUNT] = {
	MF_PROFILE_FORMATS(MF_FMT_ROW, )
};

int mf_profile_write(const struct mf_profile *p, enum mf_prof_format fmt, enum mf_prof_view v,
		     const char *scope, int top, FILE *o, char *err, size_t errlen)
{
	if (scope != NULL) {
		int found = 0;
		for (int i = 1; i < p->nscopes; i++)
			found |= strcmp(p->scopes[i], scope) == 0;
		if (!found) {
			snprintf(err, errlen, "no samples were taken in a scope named '%s'", scope);
			return -1;
		}
	}
	if ((unsigned)fmt >= MF_FMT_COUNT)
		return -1;
	return mf_profile_formats[fmt].write(p, v, scope, top, o, err, errlen);
}
