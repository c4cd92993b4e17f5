/*
 * diagnose_html.c - a diagnosis as one self-contained HTML page: inline
 * CSS, SVG drawn here, a few lines of script, nothing fetched (no network,
 * no fonts), so that it can be mailed, attached to a ticket or opened
 * offline.
 *
 * Sections: the verdicts and their evidence; a timeline of limit, budget,
 * working set and live heap with refusals, OOM kills, exits and restarts
 * marked; per-name distributions of peak and retained bytes; the
 * oversized requests; the flame graph of the newest heap profile of the
 * run (src/profile's SVG writer), when one was taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/size.h"
#include "cli/diagnose.h"
#include "profile/profile.h"

#define SZ(v, b) mf_size_format((v), (b), sizeof(b))

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static char *hms(uint64_t t_s, char *buf, size_t len)
{
	time_t t = (time_t)t_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%H:%M:%S", &tm);
	return buf;
}

static const char *const css =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;"
	"max-width:1160px;color:#1d232b;background:#fff;padding:0 16px}"
	"h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
	"border-bottom:1px solid #dde2e8;padding-bottom:4px}"
	".sub{color:#5b6673;margin:0 0 16px}"
	".badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;"
	"margin-right:6px;color:#fff}"
	".v-leak{background:#b4441c}.v-aggregate{background:#8a5a00}.v-oversized{background:#a01d5e}"
	".v-outside-heap{background:#4b3c8f}.v-healthy{background:#2e7d32}"
	".card{border:1px solid #dde2e8;border-left-width:5px;border-radius:6px;padding:8px 14px;"
	"margin:10px 0}.card h3{margin:4px 0 6px;font-size:15px}.card ul{margin:0;padding-left:20px}"
	".c-leak{border-left-color:#b4441c}.c-aggregate{border-left-color:#8a5a00}"
	".c-oversized{border-left-color:#a01d5e}.c-outside-heap{border-left-color:#4b3c8f}"
	".c-healthy{border-left-color:#2e7d32}"
	"table{border-collapse:collapse;width:100%;font-size:13px}"
	"th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef1f4;vertical-align:middle}"
	"th{background:#f5f7f9;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}"
	".legend span{display:inline-block;margin-right:14px;font-size:12px}"
	".sw{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}"
	".note{color:#5b6673;font-size:12px}.flame{overflow-x:auto;border:1px solid #dde2e8}"
	".flame svg{width:100%;height:auto}"
	"svg text{font-family:system-ui,sans-serif}";

/* ---- timeline ---- */

#define TW 1120.0
#define TH 330.0
#define ML 70.0
#define MR 16.0
#define MT 18.0
#define MB 34.0

struct axis {
	double t0, t1, ymax;
};

static double xs(const struct axis *a, double t)
{
	return ML + (t - a->t0) / (a->t1 - a->t0) * (TW - ML - MR);
}

static double ys(const struct axis *a, double v)
{
	return TH - MB - v / a->ymax * (TH - MT - MB);
}

struct pt {
	uint64_t t, v;
};

/* log2(1 + v), to a tenth of a bit: enough for a bar's height. frexp is
 * libc's, where log1p would make the command load libm at every start. */
static double log2_1p(uint64_t v)
{
	int e;
	double m = frexp((double)v + 1.0, &e);    /* in [0.5, 1) */

	return e + 2.0 * m - 2.0;
}

static int cmp_pt(const void *x, const void *y)
{
	const struct pt *a = x, *b = y;

	return a->t < b->t ? -1 : a->t > b->t;
}

static void polyline(FILE *f, const struct axis *a, struct pt *p, size_t n, const char *color,
		     double width, const char *dash, const char *title)
{
	if (n == 0)
		return;
	qsort(p, n, sizeof(*p), cmp_pt);
	fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s%s%s points=\"", color,
		width, dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%.1f,%.1f ", xs(a, (double)p[i].t), ys(a, (double)p[i].v));
	fprintf(f, "\"><title>%s</title></polyline>\n", title);
}

static void timeline(FILE *f, const struct diag_src *s, const struct mf_diag *d)
{
	const struct mf_model *m = s->model;
	size_t cap = MF_MODEL_FLOORS + 2 + json_array_size(s->timeline), nws = 0, nheap = 0, nhigh = 0;
	struct pt *ws = calloc(cap, sizeof(*ws)), *heap = calloc(cap, sizeof(*heap));
	struct pt *high = calloc(cap, sizeof(*high));
	struct axis a = {1e18, 0, 0};
	uint64_t win = m->window_s;
	char b1[32], b2[32];
	json_t *v;
	size_t i;

	if (!ws || !heap || !high)
		goto out;
	for (uint32_t k = 0; k < m->nfloors; k++) {
		const struct mf_model_floor *w = mf_model_floor_at(m, k);

		if (w->t_s + win <= s->since_s)
			continue;
		high[nhigh++] = (struct pt){w->t_s + win / 2, w->high};
		if (w->ws_high)
			ws[nws++] = (struct pt){w->t_s + win / 2, w->ws_high};
		if ((double)w->t_s < a.t0)
			a.t0 = (double)w->t_s;
		if ((double)(w->t_s + win) > a.t1)
			a.t1 = (double)(w->t_s + win);
		if ((double)w->high > a.ymax)
			a.ymax = (double)w->high;
		if ((double)w->ws_high > a.ymax)
			a.ymax = (double)w->ws_high;
	}
	json_array_foreach(s->timeline, i, v) {
		uint64_t t = (uint64_t)json_integer_value(json_object_get(v, "t"));
		uint64_t w = (uint64_t)json_integer_value(json_object_get(v, "working_set"));
		uint64_t h = (uint64_t)json_integer_value(json_object_get(v, "heap_live"));

		if (t < s->since_s || t == 0)
			continue;
		heap[nheap++] = (struct pt){t, h};
		if (w)
			ws[nws++] = (struct pt){t, w};
		if ((double)t < a.t0)
			a.t0 = (double)t;
		if ((double)t > a.t1)
			a.t1 = (double)t;
		if ((double)w > a.ymax)
			a.ymax = (double)w;
		if ((double)h > a.ymax)
			a.ymax = (double)h;
	}
	if (a.t1 <= a.t0) {
		fputs("<p class=\"note\">No memory history was recorded for this run (the supervisor "
		      "samples it; a bare segment has none).</p>\n",
		      f);
		goto out;
	}
	if ((double)d->limit > a.ymax)
		a.ymax = (double)d->limit;
	if ((double)d->budget > a.ymax)
		a.ymax = (double)d->budget;
	a.ymax = a.ymax > 0 ? a.ymax * 1.06 : 1;
	fprintf(f, "<svg id=\"timeline\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
		   "xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">\n",
		TW, TH, TW, TH);
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafbfc\" "
		   "stroke=\"#dde2e8\"/>\n",
		ML, MT, TW - ML - MR, TH - MT - MB);
	for (int k = 0; k <= 4; k++) {
		double yv = a.ymax / 1.06 * k / 4, y = ys(&a, yv);
		double t = a.t0 + (a.t1 - a.t0) * k / 4;

		fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e9ed\"/>"
			   "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#5b6673\">%s</text>\n",
			ML, TW - MR, y, y, ML - 6, y + 4, SZ((uint64_t)yv, b1));
		fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"%s\" fill=\"#5b6673\">%s</text>\n",
			xs(&a, t), TH - MB + 16, k == 0 ? "start" : k == 4 ? "end" : "middle",
			hms((uint64_t)t, b2, sizeof(b2)));
	}
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\" fill=\"#5b6673\">time (UTC)</text>\n",
		TW - MR, TH - 2);
	/* The live heap per window: a band from its floor to its high. */
	for (uint32_t k = 0; k < m->nfloors; k++) {
		const struct mf_model_floor *w = mf_model_floor_at(m, k);
		double x0, x1;

		if (w->t_s + win <= s->since_s)
			continue;
		x0 = xs(&a, (double)w->t_s);
		x1 = xs(&a, (double)(w->t_s + win));
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#9cc3e6\" "
			   "fill-opacity=\"0.55\"><title>%s: live heap %s to ",
			x0, ys(&a, (double)w->high), x1 - x0 > 1 ? x1 - x0 : 1,
			ys(&a, (double)w->floor) - ys(&a, (double)w->high) + 0.5,
			hms(w->t_s, b2, sizeof(b2)), SZ(w->floor, b1));
		fprintf(f, "%s", SZ(w->high, b1));
		if (w->load_n)
			fprintf(f, "; %u scopes in flight held %s", w->load_n, SZ(w->load, b1));
		fprintf(f, "</title></rect>\n");
	}
	if (d->limit)
		fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#c62828\" "
			   "stroke-width=\"2\"><title>limit %s</title></line>\n",
			ML, TW - MR, ys(&a, (double)d->limit), ys(&a, (double)d->limit), SZ(d->limit, b1));
	if (d->budget && d->budget != d->limit)
		fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ef6c00\" "
			   "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"><title>budget %s</title></line>\n",
			ML, TW - MR, ys(&a, (double)d->budget), ys(&a, (double)d->budget),
			SZ(d->budget, b1));
	polyline(f, &a, high, nhigh, "#1565c0", 1.5, "3 2", "live heap, high of each window");
	polyline(f, &a, heap, nheap, "#1565c0", 2, NULL, "live heap (each second)");
	polyline(f, &a, ws, nws, "#37474f", 2, NULL, "cgroup working set");
	/* Events; labels of marks close together go one below the other. */
	for (uint32_t k = 0, row = 0; k < m->nevents; k++) {
		const struct mf_model_event *e = mf_model_event_at(m, k);
		const char *color = e->kind == MF_EV_REFUSED ? "#ef6c00"
				    : e->kind == MF_EV_OOM_KILL ? "#c62828" : "#607d8b";
		double x;

		if (e->t_s < s->since_s || (double)e->t_s < a.t0 || (double)e->t_s > a.t1 + win)
			continue;
		x = xs(&a, (double)e->t_s);
		if (x > TW - MR)
			x = TW - MR;
		fprintf(f, "<g><title>%s %s: %s%u", hms(e->t_s, b2, sizeof(b2)),
			mf_model_event_name(e->kind), e->kind == MF_EV_REFUSED ? "" : "x", e->count);
		if (e->kind == MF_EV_REFUSED) {
			fputs(" refused in ", f);
			esc(f, e->name);
			if (e->id[0]) {
				fputs(" (largest: id ", f);
				esc(f, e->id);
				fprintf(f, ", peak %s)", SZ(e->bytes, b1));
			}
		} else if (e->bytes) {
			fprintf(f, ", working set %s", SZ(e->bytes, b1));
		}
		fputs("</title>", f);
		if (e->kind == MF_EV_REFUSED)
			fprintf(f, "<path d=\"M%.1f %.0f l-5 -9 h10 z\" fill=\"%s\"/>", x, MT + 10, color);
		else
			fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
				   "stroke-width=\"2\" stroke-dasharray=\"4 3\"/><text x=\"%.1f\" y=\"%.0f\" "
				   "fill=\"%s\" font-weight=\"600\">%s</text>",
				x, x, MT, TH - MB, color, x + 3, MT + 24 + 14.0 * (row++ % 4), color,
				mf_model_event_name(e->kind));
		fputs("</g>\n", f);
	}
	fputs("</svg>\n", f);
	fputs("<div class=\"legend\"><span><i class=\"sw\" style=\"background:#c62828\"></i>limit</span>"
	      "<span><i class=\"sw\" style=\"background:#ef6c00\"></i>budget (limit minus reserve)</span>"
	      "<span><i class=\"sw\" style=\"background:#37474f\"></i>cgroup working set</span>"
	      "<span><i class=\"sw\" style=\"background:#1565c0\"></i>live heap</span>"
	      "<span><i class=\"sw\" style=\"background:#9cc3e6;height:10px\"></i>live heap, floor to "
	      "high of each window</span><span>&#9660; refusals</span>"
	      "<span style=\"color:#c62828\">&#9474; OOM kill</span></div>\n",
	      f);
	fprintf(f, "<p class=\"note\">Windows of %llus (the model); per-second points from the "
		   "newest journal or post-mortem. Hover for figures.</p>\n",
		(unsigned long long)win);
out:
	free(ws);
	free(heap);
	free(high);
}

/* ---- per-name distributions ---- */

/* A histogram of a distribution's buckets (quarter powers of two), over the
 * range of buckets [lo, hi] shared by every row, p50 and p95 marked. */
static void hist_svg(FILE *f, const struct mf_dist *dst, unsigned lo, unsigned hi,
		     const char *color, const char *what)
{
	const double w = 300, h = 34;
	uint64_t max = 0;
	double bw;
	char b1[32], b2[32];

	for (unsigned i = lo; i <= hi; i++)
		if (dst->b[i] > max)
			max = dst->b[i];
	fprintf(f, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
		   "xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"%.0f\" height=\"%.0f\" "
		   "fill=\"#f5f7f9\"/>",
		w, h, w, h, w, h);
	if (max == 0 || dst->count == 0) {
		fputs("</svg>", f);
		return;
	}
	bw = w / (hi - lo + 1);
	for (unsigned i = lo; i <= hi; i++) {
		double bh;

		if (!dst->b[i])
			continue;
		bh = 2 + (h - 4) * log2_1p(dst->b[i]) / log2_1p(max);
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
			   "<title>%llu %s up to %s</title></rect>",
			(i - lo) * bw, h - bh, bw > 2 ? bw - 1 : bw, bh, color,
			(unsigned long long)dst->b[i], what,
			SZ(i == 0 ? 4096 : (1ull << ((i - 1) / 4 + 12)) / 4 * (5 + (i - 1) % 4), b1));
	}
	for (int q = 0; q < 2; q++) {
		uint64_t v = mf_dist_quantile(dst, q ? 0.95 : 0.5);
		unsigned bi = 0;

		/* The bucket of v, as model.c counts them. */
		if (v >= 4096) {
			unsigned lg = 63u - (unsigned)__builtin_clzll(v);
			bi = lg - 12 > 27 ? MF_DIST_BUCKETS - 1 : 1 + (lg - 12) * 4 +
								    (unsigned)((v >> (lg - 2)) & 3);
		}
		if (bi < lo || bi > hi)
			continue;
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"0\" y2=\"%.0f\" stroke=\"#1d232b\" "
			   "stroke-dasharray=\"%s\"><title>%s %s</title></line>",
			(bi - lo + 0.5) * bw, (bi - lo + 0.5) * bw, h, q ? "2 2" : "none",
			q ? "p95" : "p50", SZ(v, b2));
	}
	fputs("</svg>", f);
}

static int cmp_name(const void *x, const void *y)
{
	const struct mf_model_name *a = *(const struct mf_model_name *const *)x;
	const struct mf_model_name *b = *(const struct mf_model_name *const *)y;

	return a->count < b->count ? 1 : a->count > b->count ? -1 : 0;
}

static void names_table(FILE *f, const struct mf_model *m)
{
	const struct mf_model_name *order[MF_MODEL_NAMES];
	unsigned lo = MF_DIST_BUCKETS, hi = 0;
	char b[6][32];

	if (m->nnames == 0) {
		fputs("<p class=\"note\">No scope has ended yet: name requests or tasks (the gRPC, "
		      "WSGI/ASGI and Celery integrations do) to get per-name figures.</p>\n",
		      f);
		return;
	}
	for (uint32_t i = 0; i < m->nnames; i++) {
		order[i] = &m->names[i];
		for (unsigned k = 0; k < MF_DIST_BUCKETS; k++)
			if (m->names[i].peak.b[k] || m->names[i].retained.b[k]) {
				if (k < lo)
					lo = k;
				if (k > hi)
					hi = k;
			}
	}
	if (lo > hi)
		lo = hi = 0;
	qsort(order, m->nnames, sizeof(order[0]), cmp_name);
	fprintf(f, "<table><tr><th>name</th><th>calls</th><th>refused</th><th>peak p50 / p95 / max"
		   "</th><th>peak bytes (log scale, %s to %s)</th><th>retained per call (median of "
		   "recent) / total</th><th>retained bytes</th></tr>\n",
		SZ(lo == 0 ? 0 : (1ull << ((lo - 1) / 4 + 12)), b[0]),
		SZ(hi == 0 ? 4096 : (1ull << ((hi - 1) / 4 + 12)) / 4 * (5 + (hi - 1) % 4), b[1]));
	for (uint32_t i = 0; i < m->nnames; i++) {
		const struct mf_model_name *n = order[i];
		int64_t med = mf_model_recent_retained(n);

		fputs("<tr><td>", f);
		esc(f, n->name);
		fprintf(f, "</td><td class=\"n\">%llu</td><td class=\"n\">%llu</td><td class=\"n\">%s / "
			   "%s / %s</td><td>",
			(unsigned long long)n->count, (unsigned long long)n->failed,
			SZ(mf_dist_quantile(&n->peak, 0.5), b[0]), SZ(mf_dist_quantile(&n->peak, 0.95), b[1]),
			SZ(n->max_peak, b[2]));
		hist_svg(f, &n->peak, lo, hi, "#5c8fc2", "scopes peaked");
		fprintf(f, "</td><td class=\"n\">%s%s / %s%s</td><td>", med < 0 ? "-" : "",
			SZ((uint64_t)(med < 0 ? -med : med), b[3]), n->retained_sum < 0 ? "-" : "",
			SZ((uint64_t)(n->retained_sum < 0 ? -n->retained_sum : n->retained_sum), b[4]));
		hist_svg(f, &n->retained, lo, hi, "#c27c5c", "scopes retained");
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
	if (m->dropped)
		fprintf(f, "<p class=\"note\">%llu scopes of names past the first %d are not shown.</p>\n",
			(unsigned long long)m->dropped, MF_MODEL_NAMES);
}

static void big_table(FILE *f, const struct mf_diag *d)
{
	char b[5][32];

	if (d->nbig == 0) {
		fputs("<p class=\"note\">No request stood out: none needed more than the budget or "
		      "four times the p95 of its name, and none was refused.</p>\n",
		      f);
		return;
	}
	fputs("<table><tr><th>kind</th><th>name</th><th>id</th><th>ended</th><th>peak</th><th>asked "
	      "for</th><th>p50 of name</th><th>p95 of name</th><th>x p95</th><th></th></tr>\n",
	      f);
	for (uint32_t i = 0; i < d->nbig; i++) {
		const struct mf_diag_big *x = &d->big[i];

		fprintf(f, "<tr><td>%s</td><td>", i < d->noversized ? "<b>oversized</b>" : "ordinary");
		esc(f, x->name);
		fputs("</td><td>", f);
		esc(f, x->id[0] ? x->id : "-");
		fprintf(f, "</td><td>%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td "
			   "class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%.1f</td>"
			   "<td>%s%s%s%s</td></tr>\n",
			hms(x->t_s, b[3], sizeof(b[3])), SZ(x->peak, b[0]),
			x->asked ? SZ(x->asked, b[4]) : "-", SZ(x->p50, b[1]), SZ(x->p95, b[2]),
			mf_diag_big_ratio(x), x->refused ? "refused " : "",
			x->refused ? mf_diag_rule_clause(x->rule) : "",
			x->at_death ? " in flight at a death" : "",
			x->over_budget ? " over the budget" : "");
	}
	fputs("</table>\n", f);
}

/* The flame graph of the newest profile, inline (without its XML prolog). */
static void flame(FILE *f, const struct diag_src *s, const struct mf_diag *d)
{
	struct mf_profile p;
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *mem;
	enum mf_prof_view view = d->holds[MF_VERDICT_LEAK] ? MF_VIEW_LIVE : MF_VIEW_PEAK;

	if (!s->profile[0]) {
		fputs("<p class=\"note\">No heap profile was taken with this run (<code>memfence run "
		      "--profile</code> takes one; it shows which code holds the memory).</p>\n",
		      f);
		return;
	}
	if (mf_profile_load(s->profile, &p, err, sizeof(err)) != 0) {
		fputs("<p class=\"note\">The profile could not be read: ", f);
		esc(f, err);
		fputs("</p>\n", f);
		return;
	}
	mem = open_memstream(&buf, &len);
	if (mem && mf_profile_write(&p, MF_FMT_SVG, view, NULL, 0, mem, err, sizeof(err)) == 0) {
		char *svg;

		fclose(mem);
		mem = NULL;
		svg = strstr(buf, "<svg");
		fprintf(f, "<p class=\"note\">");
		esc(f, s->profile);
		fprintf(f, ": %s view (%s).</p><div class=\"flame\">\n",
			view == MF_VIEW_LIVE ? "live" : "peak",
			view == MF_VIEW_LIVE ? "what is still held: where a leak lives"
					     : "what was held at the peak of the heap");
		fputs(svg ? svg : "", f);
		fputs("</div>\n", f);
	} else {
		fputs("<p class=\"note\">The profile could not be drawn.</p>\n", f);
	}
	if (mem)
		fclose(mem);
	free(buf);
	mf_profile_free(&p);
}

int diag_html_write(const char *path, const struct diag_src *s, const struct mf_diag *d)
{
	char lines[MF_DIAG_LINES][MF_DIAG_LINE], tmp[MF_PATH_MAX + 8], b1[32], b2[32];
	struct stat st;
	mode_t mask;
	FILE *f;
	int err = 0, fd, direct;

	/* A device or a FIFO (/dev/stdout, /dev/null) is written in place: a
	 * rename would replace the node with a regular file. Anything else
	 * gets a new file of our own beside it (O_EXCL: never a planted link
	 * or file), renamed over FILE when complete; a symbolic link at FILE
	 * is replaced, not written through. */
	direct = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
	if (direct && S_ISDIR(st.st_mode))
		return -EISDIR;
	if (direct) {
		/* O_NONBLOCK: a FIFO nobody reads is an error (ENXIO), not a hang. */
		fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return -errno;
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	} else {
		if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
			return -ENAMETOOLONG;
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0)
			return -errno;
		mask = umask(0);
		umask(mask);
		fchmod(fd, 0666 & ~mask);
	}
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		if (!direct)
			unlink(tmp);
		return err;
	}
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
	      "<title>memfence diagnose</title><style>",
	      f);
	fputs(css, f);
	fputs("</style></head><body data-rendered=\"no\">\n<h1>memfence diagnose: ", f);
	for (uint32_t i = 0; i < d->nverdicts; i++)
		fprintf(f, "<span class=\"badge v-%s\">%s</span>", mf_verdict_name(d->verdict[i]),
			mf_verdict_name(d->verdict[i]));
	fputs("</h1>\n<p class=\"sub\">", f);
	esc(f, s->target);
	fprintf(f, " &middot; %s &middot; limit %s, budget %s &middot; %llu scopes, %llu refusals, "
		   "%llu OOM kills, %llu post-mortems</p>\n",
		s->running ? "running" : "ended", SZ(d->limit, b1), SZ(d->budget, b2),
		(unsigned long long)d->scopes, (unsigned long long)d->refused,
		(unsigned long long)d->oom_kills, (unsigned long long)d->deaths);

	fputs("<h2>Verdict</h2>\n", f);
	for (uint32_t i = 0; i < d->nverdicts; i++) {
		enum mf_verdict v = d->verdict[i];
		unsigned n = mf_diag_evidence(d, v, lines, MF_DIAG_LINES);

		fprintf(f, "<div class=\"card c-%s\"><h3>%s%s</h3><ul>\n", mf_verdict_name(v),
			mf_verdict_name(v), d->weak[v] ? " (weak evidence)" : "");
		for (unsigned k = 0; k < n; k++) {
			fputs("<li>", f);
			esc(f, lines[k]);
			fputs("</li>\n", f);
		}
		fputs("</ul></div>\n", f);
	}
	fputs("<h2>Timeline</h2>\n", f);
	timeline(f, s, d);
	fputs("<h2>Requests by name: peak and retained bytes</h2>\n", f);
	names_table(f, s->model);
	fputs("<h2>Oversized and refused requests</h2>\n", f);
	big_table(f, d);
	fputs("<h2>Heap profile</h2>\n", f);
	flame(f, s, d);
	fputs("<p class=\"note\">Written by memfence diagnose. Sizes in binary units (1 MiB = "
	      "1048576 bytes).</p>\n"
	      "<script>\n"
	      "(function () {\n"
	      "  var svgs = document.querySelectorAll('svg');\n"
	      "  var cards = document.querySelectorAll('.card');\n"
	      "  document.body.setAttribute('data-rendered', cards.length > 0 ? 'ok' : 'empty');\n"
	      "  document.body.setAttribute('data-svgs', String(svgs.length));\n"
	      "})();\n"
	      "</script>\n</body></html>\n",
	      f);
	if (ferror(f))
		err = -EIO;
	if (fclose(f) != 0 && !err)
		err = -errno;
	if (direct)
		return err;
	if (!err && rename(tmp, path) != 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}
