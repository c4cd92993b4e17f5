/*
 * prof.c - sampling heap profiler: configuration, sampling, site and
 * live-sample tables, snapshots. docs/profiler.md describes the method and
 * the snapshot file; src/profile/profile.c reads it.
 *
 * Sampling (as tcmalloc, jemalloc's prof.c and Go's MemProfileRate): the
 * bytes between two samples are exponentially distributed with mean R, so
 * every byte allocated has the same chance 1/R of being the one that trips
 * the countdown, whatever the sizes around it. An allocation of s bytes is
 * then sampled with probability p(s) = 1 - e^(-s/R), and weighting each
 * sample by s / p(s) bytes (1 / p(s) calls) makes the per-site sums unbiased
 * estimates of bytes and calls.
 *
 * Memory is fixed when the profiler starts: a site table, a live-sample
 * table, a table of Python code objects, the filter, a write buffer. What
 * does not fit is counted in the snapshot's "overflow" line.
 *
 * Locking: the sampled path takes one spin lock (one sample per R bytes,
 * so it is rarely contended). A signal handler that finds the lock held by
 * its own thread does not wait for it: the snapshot it asked for is taken
 * when the interrupted thread lets the lock go.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h> /* rename */
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/env.h"
#include "base/proc.h"
#include "base/size.h"
#include "shim/config.h"
#include "shim/prof.h"
#include "shim/segw.h"
#include "shim/thread.h"

#define NATIVE_MAX 32 /* native frames kept per sample */
#define PY_MAX 24     /* Python frames kept per sample */
#define FRAMES_MAX (NATIVE_MAX + PY_MAX)
#define SITES_MAX 4096
#define SITES_IDX (2 * SITES_MAX)
#define LIVE_MAX 32768 /* sampled blocks alive at once; a power of two */
#define CODES_MAX 4096
#define CODES_IDX (2 * CODES_MAX)
#define SCOPES_MAX 256
#define MODS_MAX 512
#define DEFAULT_RATE (512u << 10)
/* Peak views are retaken when the estimated live bytes pass the last
 * peak by a sixteenth (and by one interval), and written to disk at most
 * once a second, so that a growing heap costs few copies and writes. */
#define PEAK_WRITE_NS 1000000000ull
#define PY_FRAME_TAG (1ull << 63)

__thread int64_t mf_prof_left __attribute__((tls_model("initial-exec")));
uint8_t *mf_prof_filter;

static __thread uint64_t tls_rng __attribute__((tls_model("initial-exec")));
static __thread int tls_in __attribute__((tls_model("initial-exec")));

struct site {
	uint64_t hash;
	uint16_t nnative, npy;
	uint16_t scope;
	uint16_t pad;
	/* Weighted bytes and calls: allocated, live now, live at peak, live
	 * at the first failure. */
	double ab, an, lb, ln, pb, pn, fb, fn;
	uint64_t frames[FRAMES_MAX]; /* native leaf first, then Python leaf first */
};

struct live {
	uintptr_t ptr; /* 0 = empty */
	uint32_t site;
	uint32_t pad;
	double w, n;
};

struct code {
	uintptr_t obj; /* 0 = empty */
	int32_t firstline;
	char name[60];
	char file[124];
};

struct state {
	int on;            /* configured and tables mapped */
	int active;        /* sampling now (the supervisor may pause it) */
	int ctl_follow;    /* follow MF_CTL_PROFILE in the segment header */
	uint64_t rate;
	char dir[256];
	char pymalloc[16];
	pid_t owner;       /* thread holding the lock, 0 = free */
	int pending;       /* a snapshot asked for while the lock was held */
	int failed_once;
	int low_once;
	int peak_dirty;    /* a peak view newer than the file */
	uint64_t last_write;
	double alloc_w, live_w, peak_w, fail_w, peak_mark;
	uint64_t samples;
	uint64_t over_sites, over_live, over_codes, over_scopes;
	uint32_t nsites, ncodes, nscopes, nlive;
	struct site *sites;
	int32_t *site_idx;
	struct live *live;
	struct code *codes;
	int32_t *code_idx;
	char (*scopes)[MF_SEG_NAME_LEN];
	uintptr_t self_lo, self_hi; /* our own code, left out of stacks */
	uintptr_t eval_lo, eval_len; /* CPython's _PyEval_EvalFrameDefault */
	/* CPython 3.11, resolved at start: read only with the GIL held. */
	int py;
	int (*py_initialized)(void);
	void *(*py_this_ts)(void);
	void *(*py_current_ts)(void);
	int (*py_addr2line)(void *, int);
	const char *(*py_utf8)(void *, ssize_t *);
	void (*py_get_alloc)(int, void *);
	void (*py_set_alloc)(int, void *);
	int py_hook;       /* 0 not yet, 1 installed, -1 not wanted */
};

static struct state S;

/* ---- small maths without libm ---- */

/* ln(x) for x > 0: x = m * 2^e with m in [1,2), ln m by the atanh series
 * (|t| <= 1/3, error below 1e-7: far under the sampling noise). */
static double mf_ln(double x)
{
	union {
		double d;
		uint64_t u;
	} v = {.d = x};
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;
	double t, t2, s;

	v.u = (v.u & ((1ull << 52) - 1)) | (1023ull << 52);
	t = (v.d - 1) / (v.d + 1);
	t2 = t * t;
	s = t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 * (1.0 / 11))))));
	return 2 * s + e * 0.69314718055994530942;
}

/* e^x for x <= 0 (x = k ln2 + r, |r| <= ln2/2, Taylor to r^10). */
static double mf_exp_neg(double x)
{
	double r, p = 1, term = 1;
	int k;

	if (x < -700)
		return 0;
	k = (int)(x / 0.69314718055994530942 - 0.5);
	r = x - k * 0.69314718055994530942;
	for (int i = 1; i <= 10; i++) {
		term *= r / i;
		p += term;
	}
	while (k < 0) {
		p *= 0.5;
		k++;
	}
	return p;
}

static uint64_t rng_next(void)
{
	uint64_t x = tls_rng;

	if (x == 0)
		x = mf_now_mono() ^ ((uint64_t)syscall(SYS_gettid) << 32) ^ (uintptr_t)&tls_rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	tls_rng = x ? x : 0x9e3779b97f4a7c15ull;
	return x;
}

/* The next interval: -R ln(U), U uniform in (0, 1]. */
static int64_t draw(void)
{
	double u = (double)((rng_next() >> 11) + 1) * (1.0 / 9007199254740992.0);
	double d = -mf_ln(u) * (double)S.rate;

	if (d < 1)
		d = 1;
	if (d > 1e15)
		d = 1e15;
	return (int64_t)d;
}

/* ---- lock ---- */

static __thread pid_t tls_tid __attribute__((tls_model("initial-exec")));

/* The lock's owner id: the thread id, asked of the kernel once per thread
 * (a forked child's thread gets a new one: see mf_prof_atfork_child). */
static pid_t self_tid(void)
{
	if (MF_UNLIKELY(tls_tid == 0))
		tls_tid = (pid_t)syscall(SYS_gettid);
	return tls_tid;
}

static void lock(pid_t me)
{
	pid_t free_ = 0;

	while (!__atomic_compare_exchange_n(&S.owner, &free_, me, 0, __ATOMIC_ACQUIRE,
					    __ATOMIC_RELAXED)) {
		free_ = 0;
		__builtin_ia32_pause();
	}
}

static void unlock(void)
{
	__atomic_store_n(&S.owner, 0, __ATOMIC_RELEASE);
}

/* ---- stacks ---- */

/*
 * Native stacks come from libgcc's DWARF unwinder (what glibc's backtrace()
 * wraps), resolved with dlopen at start-up: Debian's libraries and Python
 * have no frame pointers, and the unwinder finds its tables through
 * dl_iterate_phdr without allocating once it has run once (done at start).
 */
struct _Unwind_Context;
typedef int (*unwind_fn)(struct _Unwind_Context *, void *);
static int (*unwind_backtrace)(unwind_fn, void *);
static uintptr_t (*unwind_get_ip)(struct _Unwind_Context *);

struct walk {
	uint64_t *out;
	int n;
};

static int walk_cb(struct _Unwind_Context *ctx, void *arg)
{
	struct walk *w = arg;
	uintptr_t pc = unwind_get_ip(ctx);

	if (pc == 0)
		return 5; /* _URC_END_OF_STACK */
	/* Frames of the shim itself (hook, sampler) are not the program's. */
	if (pc >= S.self_lo && pc < S.self_hi)
		return 0;
	w->out[w->n++] = pc;
	/* Reports keep the native frames up to the interpreter's eval loop
	 * and drop the ones above it (src/profile/profile.c): those are not
	 * unwound at all, which makes a Python sample several times cheaper. */
	if (pc - 1 - S.eval_lo < S.eval_len)
		return 5;
	return w->n >= NATIVE_MAX ? 5 : 0;
}

static int native_stack(uint64_t *out)
{
	struct walk w = {out, 0};

	if (unwind_backtrace == NULL)
		return 0;
	unwind_backtrace(walk_cb, &w);
	return w.n;
}

/* Offsets in CPython 3.11's structures (Include/internal/pycore_frame.h,
 * Include/cpython/code.h), checked against Py_Version at start. */
#define TS_CFRAME 56
#define CFRAME_CURRENT 8
#define IF_CODE 32
#define IF_PREVIOUS 48
#define IF_PREV_INSTR 56
#define CODE_FIRSTLINE 72
#define CODE_FILENAME 112
#define CODE_QUALNAME 128
#define CODE_ADAPTIVE 184

#define AT(p, off, type) (*(type *)((char *)(p) + (off)))

static void copy_str(char *dst, size_t n, void *unicode)
{
	ssize_t len = 0;
	const char *s = unicode != NULL ? S.py_utf8(unicode, &len) : NULL;

	mf_strlcpy(dst, s != NULL ? s : "?", n);
	for (char *c = dst; *c; c++)
		if (*c == '\t' || *c == '\n')
			*c = ' ';
}

/* Index of a code object in the code table, adding it (and keeping a
 * reference, so that its address is not reused for other code); -1 full. */
static int code_index(void *code)
{
	uint64_t h = ((uintptr_t)code >> 4) * 0x9e3779b97f4a7c15ull;
	uint32_t i = (uint32_t)(h >> 40) & (CODES_IDX - 1);

	for (;; i = (i + 1) & (CODES_IDX - 1)) {
		int32_t c = S.code_idx[i];
		if (c < 0)
			break;
		if (S.codes[c].obj == (uintptr_t)code)
			return c;
	}
	if (S.ncodes >= CODES_MAX) {
		S.over_codes++;
		return -1;
	}
	struct code *c = &S.codes[S.ncodes];
	c->obj = (uintptr_t)code;
	(*(ssize_t *)code)++; /* Py_INCREF, with the GIL held */
	c->firstline = AT(code, CODE_FIRSTLINE, int);
	copy_str(c->name, sizeof(c->name), AT(code, CODE_QUALNAME, void *));
	copy_str(c->file, sizeof(c->file), AT(code, CODE_FILENAME, void *));
	S.code_idx[i] = (int32_t)S.ncodes;
	return (int)S.ncodes++;
}

static void python_hook(void);

/* The Python frames of this thread, when it holds the GIL. Called with
 * the lock held (the code table is shared). */
static int python_stack(uint64_t *out)
{
	void *ts, *cf, *f;
	int k = 0;

	if (!S.py || !S.py_initialized())
		return 0;
	ts = S.py_this_ts();
	if (ts == NULL || ts != S.py_current_ts())
		return 0;
	if (S.py_hook == 0)
		python_hook();
	cf = AT(ts, TS_CFRAME, void *);
	f = cf != NULL ? AT(cf, CFRAME_CURRENT, void *) : NULL;
	for (; f != NULL && k < PY_MAX; f = AT(f, IF_PREVIOUS, void *)) {
		void *code = AT(f, IF_CODE, void *);
		char *instr = AT(f, IF_PREV_INSTR, char *);
		int line, ci;

		if (code == NULL)
			break;
		ci = code_index(code);
		if (ci < 0)
			continue;
		line = S.py_addr2line(code, (int)(instr - ((char *)code + CODE_ADAPTIVE)));
		if (line < 0)
			line = S.codes[ci].firstline;
		out[k++] = PY_FRAME_TAG | ((uint64_t)ci << 32) | (uint32_t)line;
	}
	return k;
}

/*
 * Python's small objects. pymalloc serves requests of up to 512 bytes from
 * its arenas without calling malloc, so the sampler would never see them.
 * Like tracemalloc, the profiler wraps the object and mem domains'
 * allocators (PyMem_SetAllocator, Include/cpython/pymem.h) with functions
 * that call the previous ones and add the block to the countdown; larger
 * requests are left alone, since pymalloc passes them on to malloc, which
 * the hooks already see. Installed at the first sample taken while the
 * thread holds the GIL, unless PYTHONMALLOC=malloc made this unnecessary.
 */
struct py_alloc {
	void *ctx;
	void *(*malloc)(void *, size_t);
	void *(*calloc)(void *, size_t, size_t);
	void *(*realloc)(void *, void *, size_t);
	void (*free)(void *, void *);
};

#define PY_SMALL 512
static struct py_alloc py_prev[2];

/*
 * The countdown runs before the call, on the requested size, so that an
 * allocation that is not sampled is a subtraction, a branch and a tail
 * call to pymalloc: nothing of the wrapper stays on the stack. The sampled
 * one (about one per rate bytes) takes the calls below.
 */
static __attribute__((noinline, cold)) void *py_malloc_sampled(struct py_alloc *a, size_t n)
{
	void *p = a->malloc(a->ctx, n);

	mf_prof_sample(p, n);
	return p;
}

static __attribute__((noinline, cold)) void *py_calloc_sampled(struct py_alloc *a, size_t k,
								size_t n)
{
	void *p = a->calloc(a->ctx, k, n);

	mf_prof_sample(p, k * n);
	return p;
}

static __attribute__((noinline, cold)) void *py_realloc_sampled(struct py_alloc *a, void *p,
								 size_t n)
{
	void *q = a->realloc(a->ctx, p, n);

	mf_prof_sample(q, n);
	return q;
}

static void *py_malloc(void *ctx, size_t n)
{
	struct py_alloc *a = ctx;

	if (n <= PY_SMALL && mf_prof_due(n))
		return py_malloc_sampled(a, n);
	return a->malloc(a->ctx, n);
}

static void *py_calloc(void *ctx, size_t k, size_t n)
{
	struct py_alloc *a = ctx;
	size_t total;

	if (!__builtin_mul_overflow(k, n, &total) && total <= PY_SMALL && mf_prof_due(total))
		return py_calloc_sampled(a, k, n);
	return a->calloc(a->ctx, k, n);
}

/* A block that may be a sampled one leaves the live view first. */
static __attribute__((noinline, cold)) void *py_realloc_live(struct py_alloc *a, void *p,
							      size_t n)
{
	mf_prof_free_slow(p);
	if (n <= PY_SMALL && mf_prof_due(n))
		return py_realloc_sampled(a, p, n);
	return a->realloc(a->ctx, p, n);
}

static __attribute__((noinline, cold)) void py_free_live(struct py_alloc *a, void *p)
{
	mf_prof_free_slow(p);
	a->free(a->ctx, p);
}

/* Every path ends in a tail call: the wrapper keeps no frame. */
static void *py_realloc(void *ctx, void *p, size_t n)
{
	struct py_alloc *a = ctx;

	if (p != NULL && mf_prof_maybe_live(p))
		return py_realloc_live(a, p, n);
	if (n <= PY_SMALL && mf_prof_due(n))
		return py_realloc_sampled(a, p, n);
	return a->realloc(a->ctx, p, n);
}

static void py_free(void *ctx, void *p)
{
	struct py_alloc *a = ctx;

	if (p != NULL && mf_prof_maybe_live(p))
		return py_free_live(a, p);
	a->free(a->ctx, p);
}

/* With the GIL held. PYMEM_DOMAIN_MEM = 1, PYMEM_DOMAIN_OBJ = 2. */
static void python_hook(void)
{
	struct py_alloc mine;

	for (int d = 0; d < 2; d++) {
		S.py_get_alloc(d + 1, &py_prev[d]);
		mine = (struct py_alloc){&py_prev[d], py_malloc, py_calloc, py_realloc, py_free};
		S.py_set_alloc(d + 1, &mine);
	}
	S.py_hook = 1;
}

/* ---- tables ---- */

static uint64_t frames_hash(const uint64_t *f, int n, unsigned scope)
{
	uint64_t h = 0xcbf29ce484222325ull ^ scope;

	for (int i = 0; i < n; i++)
		h = (h ^ f[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static int scope_index(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return 0;
	for (uint32_t i = 1; i < S.nscopes; i++)
		if (strncmp(S.scopes[i], name, MF_SEG_NAME_LEN) == 0)
			return (int)i;
	if (S.nscopes >= SCOPES_MAX) {
		S.over_scopes++;
		return 0;
	}
	mf_strlcpy(S.scopes[S.nscopes], name, MF_SEG_NAME_LEN);
	return (int)S.nscopes++;
}

static int site_find(const uint64_t *f, int nn, int np, unsigned scope)
{
	uint64_t h = frames_hash(f, nn + np, scope);
	uint32_t i = (uint32_t)h & (SITES_IDX - 1);

	for (;; i = (i + 1) & (SITES_IDX - 1)) {
		int32_t c = S.site_idx[i];
		if (c < 0)
			break;
		struct site *s = &S.sites[c];
		if (s->hash == h && s->nnative == nn && s->npy == np && s->scope == scope &&
		    memcmp(s->frames, f, (size_t)(nn + np) * sizeof(*f)) == 0)
			return c;
	}
	if (S.nsites >= SITES_MAX) {
		S.over_sites++;
		return -1;
	}
	struct site *s = &S.sites[S.nsites];
	s->hash = h;
	s->nnative = (uint16_t)nn;
	s->npy = (uint16_t)np;
	s->scope = (uint16_t)scope;
	memcpy(s->frames, f, (size_t)(nn + np) * sizeof(*f));
	S.site_idx[i] = (int32_t)S.nsites;
	return (int)S.nsites++;
}

static uint32_t live_slot(uintptr_t p)
{
	return (uint32_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 40) & (LIVE_MAX - 1);
}

/* Saturating: a counter at 255 no longer knows how many blocks it stands
 * for, so it stays set. */
static void filter_inc(uintptr_t p)
{
	uint8_t *c = &mf_prof_filter[mf_prof_hash((void *)p)];

	if (*c != 255)
		__atomic_store_n(c, (uint8_t)(*c + 1), __ATOMIC_RELAXED);
}

static void filter_dec(uintptr_t p)
{
	uint8_t *c = &mf_prof_filter[mf_prof_hash((void *)p)];

	if (*c != 255 && *c != 0)
		__atomic_store_n(c, (uint8_t)(*c - 1), __ATOMIC_RELAXED);
}

static int live_add(uintptr_t p, uint32_t site, double w, double n)
{
	uint32_t i = live_slot(p);

	/* Keep a quarter free so that probes stay short. */
	if (S.nlive >= LIVE_MAX - LIVE_MAX / 4) {
		S.over_live++;
		return -1;
	}
	while (S.live[i].ptr != 0 && S.live[i].ptr != p)
		i = (i + 1) & (LIVE_MAX - 1);
	if (S.live[i].ptr == 0)
		S.nlive++;
	else
		filter_dec(p); /* stale entry replaced */
	S.live[i] = (struct live){.ptr = p, .site = site, .w = w, .n = n};
	filter_inc(p);
	return 0;
}

/* Remove p's entry (backward-shift deletion: no tombstones to pile up). */
static int live_remove(uintptr_t p, struct live *out)
{
	uint32_t i = live_slot(p), j, k;

	while (S.live[i].ptr != p) {
		if (S.live[i].ptr == 0)
			return -1;
		i = (i + 1) & (LIVE_MAX - 1);
	}
	*out = S.live[i];
	filter_dec(p);
	S.nlive--;
	j = i;
	for (;;) {
		S.live[i].ptr = 0;
		for (;;) {
			j = (j + 1) & (LIVE_MAX - 1);
			if (S.live[j].ptr == 0)
				return 0;
			k = live_slot(S.live[j].ptr);
			/* Move j back to i unless its home lies cyclically in (i, j]. */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		S.live[i] = S.live[j];
		i = j;
	}
}

static void take_view(int fail)
{
	for (uint32_t i = 0; i < S.nsites; i++) {
		struct site *s = &S.sites[i];
		if (fail) {
			s->fb = s->lb;
			s->fn = s->ln;
		} else {
			s->pb = s->lb;
			s->pn = s->ln;
		}
	}
	if (fail)
		S.fail_w = S.live_w;
	else
		S.peak_w = S.live_w;
}

/* ---- snapshot file ---- */

struct out {
	int fd;
	int err;
	size_t n;
	char buf[1 << 16];
};

static struct out W;

static void out_flush(struct out *o)
{
	size_t done = 0;

	while (done < o->n && o->err == 0) {
		ssize_t r = write(o->fd, o->buf + done, o->n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			o->err = r < 0 ? errno : EIO;
		else
			done += (size_t)r;
	}
	o->n = 0;
}

static void out_str(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (o->n == sizeof(o->buf))
			out_flush(o);
		o->buf[o->n++] = *s;
	}
}

static void out_u64(struct out *o, uint64_t v)
{
	char tmp[MF_U64_DEC_LEN];

	out_str(o, mf_u64_dec(v, tmp));
}

static void out_hex(struct out *o, uint64_t v)
{
	char tmp[24];
	int i = sizeof(tmp) - 1;

	tmp[i] = '\0';
	do {
		tmp[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v != 0);
	out_str(o, tmp + i);
}

static void out_d(struct out *o, double d)
{
	out_u64(o, d > 0 ? (uint64_t)(d + 0.5) : 0);
}

/*
 * Executable mappings from /proc/self/maps (read with open/read, no loader
 * lock: dl_iterate_phdr here could deadlock against a dlopen that
 * allocates while we hold our lock). A line:
 *   7f2a1c000000-7f2a1c1b5000 r-xp 00028000 fe:01 1835 /usr/lib/x86_64-linux-gnu/libc.so.6
 * A frame is written as its module and file offset; the reader maps file
 * offsets to symbols through the file's program headers.
 */
struct mod {
	uintptr_t lo, hi, off;
	uint32_t name; /* offset in mod_names */
};

static struct mod mods[MODS_MAX];
static int nmods;
static char mod_names[1 << 16];
static size_t mod_names_used;
static char maps_buf[1 << 14];

static uint64_t parse_hex(const char **p)
{
	uint64_t v = 0;

	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else
			return v;
	}
}

static void maps_line(const char *l)
{
	const char *p = l, *path;
	struct mod m;
	size_t len;

	m.lo = parse_hex(&p);
	if (*p++ != '-')
		return;
	m.hi = parse_hex(&p);
	if (*p++ != ' ' || p[2] != 'x')
		return;
	p += 5;
	m.off = parse_hex(&p);
	path = strchr(p, '/');
	if (path == NULL || nmods >= MODS_MAX)
		return;
	len = strlen(path);
	if (nmods > 0 && strcmp(mod_names + mods[nmods - 1].name, path) == 0) {
		m.name = mods[nmods - 1].name;
	} else {
		if (mod_names_used + len + 1 > sizeof(mod_names))
			return;
		memcpy(mod_names + mod_names_used, path, len + 1);
		m.name = (uint32_t)mod_names_used;
		mod_names_used += len + 1;
	}
	mods[nmods++] = m;
}

static void read_maps(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t have = 0;

	nmods = 0;
	mod_names_used = 0;
	if (fd < 0)
		return;
	for (;;) {
		ssize_t r = read(fd, maps_buf + have, sizeof(maps_buf) - 1 - have);
		char *line, *nl;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		maps_buf[have] = '\0';
		line = maps_buf;
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			maps_line(line);
			line = nl + 1;
		}
		have = (size_t)(maps_buf + have - line);
		memmove(maps_buf, line, have);
		if (have == sizeof(maps_buf) - 1)
			have = 0; /* a line longer than the buffer: dropped */
	}
	close(fd);
}

static int mod_of(uintptr_t pc)
{
	for (int i = 0; i < nmods; i++)
		if (pc >= mods[i].lo && pc < mods[i].hi)
			return i;
	return -1;
}

static uint64_t read_rss(void)
{
	uint64_t v;

	return mf_statm_read(MF_STATM_RESIDENT, &v) == 0 ? v : 0;
}

static void out_site_line(struct out *o, uint32_t idx, const struct site *s)
{
	out_str(o, "s ");
	out_u64(o, idx);
	out_str(o, " ");
	out_u64(o, s->scope);
	const double v[8] = {s->ab, s->an, s->lb, s->ln, s->pb, s->pn, s->fb, s->fn};
	for (int i = 0; i < 8; i++) {
		out_str(o, " ");
		out_d(o, v[i]);
	}
	out_str(o, "\t");
	for (int i = 0; i < s->nnative + s->npy; i++) {
		uint64_t f = s->frames[i];
		if (i > 0)
			out_str(o, " ");
		if (f & PY_FRAME_TAG) {
			out_str(o, "p");
			out_u64(o, (f >> 32) & 0x7fffffff);
			out_str(o, ":");
			out_u64(o, (uint32_t)f);
		} else {
			int m = mod_of(f);
			/* A return address: the call is the byte before it. */
			if (m < 0) {
				out_str(o, "n-1:");
				out_hex(o, f - 1);
			} else {
				out_str(o, "n");
				out_u64(o, (uint64_t)m);
				out_str(o, ":");
				out_hex(o, f - 1 - mods[m].lo + mods[m].off);
			}
		}
	}
	out_str(o, "\n");
}

static void out_kv(struct out *o, const char *k, uint64_t v)
{
	out_str(o, " ");
	out_str(o, k);
	out_str(o, " ");
	out_u64(o, v);
}

/* With the lock held. */
static int write_snapshot(const char *reason)
{
	char path[320], tmp[336];
	struct out *o = &W;
	int r;

	if (S.dir[0] == '\0')
		return -ENOENT;
	{
		/* dir/memfence-PID.prof, written beside and renamed over */
		struct out name = {.fd = -1};
		out_str(&name, S.dir);
		out_str(&name, "/memfence-");
		out_u64(&name, (uint64_t)getpid());
		out_str(&name, ".prof");
		name.buf[name.n] = '\0';
		mf_strlcpy(path, name.buf, sizeof(path));
		mf_strlcpy(tmp, path, sizeof(tmp));
		size_t l = strlen(tmp);
		if (l + 5 < sizeof(tmp))
			memcpy(tmp + l, ".tmp", 5);
	}
	o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o->fd < 0)
		return -errno;
	o->err = 0;
	o->n = 0;
	read_maps();

	out_str(o, "memfence-profile 1\npid ");
	out_u64(o, (uint64_t)getpid());
	out_str(o, "\nreason ");
	out_str(o, reason);
	out_str(o, "\ntime_ns ");
	out_u64(o, mf_now_real());
	out_str(o, "\nrate ");
	out_u64(o, S.rate);
	out_str(o, "\npython ");
	out_u64(o, (uint64_t)(S.py != 0));
	out_str(o, "\npymalloc ");
	out_str(o, S.py_hook == 1 ? "hooked" : S.pymalloc);
	out_str(o, "\ntotals");
	out_kv(o, "allocated", (uint64_t)S.alloc_w);
	out_kv(o, "live", S.live_w > 0 ? (uint64_t)S.live_w : 0);
	out_kv(o, "peak", (uint64_t)S.peak_w);
	out_kv(o, "failure", (uint64_t)S.fail_w);
	out_kv(o, "samples", S.samples);
	out_str(o, "\noverflow");
	out_kv(o, "sites", S.over_sites);
	out_kv(o, "live", S.over_live);
	out_kv(o, "codes", S.over_codes);
	out_kv(o, "scopes", S.over_scopes);
	out_str(o, "\nrss ");
	out_u64(o, read_rss());
	out_str(o, "\nheap");
	out_kv(o, "live", mf_slot != NULL ? __atomic_load_n(&mf_slot->live, __ATOMIC_RELAXED) : 0);
	out_kv(o, "peak", mf_slot != NULL ? __atomic_load_n(&mf_slot->peak, __ATOMIC_RELAXED) : 0);
	out_str(o, "\n");
	for (int i = 0; i < nmods; i++) {
		out_str(o, "m ");
		out_u64(o, (uint64_t)i);
		out_str(o, "\t");
		out_str(o, mod_names + mods[i].name);
		out_str(o, "\n");
	}
	for (uint32_t i = 1; i < S.nscopes; i++) {
		out_str(o, "S ");
		out_u64(o, i);
		out_str(o, "\t");
		out_str(o, S.scopes[i]);
		out_str(o, "\n");
	}
	for (uint32_t i = 0; i < S.ncodes; i++) {
		out_str(o, "c ");
		out_u64(o, i);
		out_str(o, "\t");
		out_str(o, S.codes[i].name);
		out_str(o, "\t");
		out_str(o, S.codes[i].file);
		out_str(o, "\t");
		out_u64(o, (uint64_t)(S.codes[i].firstline > 0 ? S.codes[i].firstline : 0));
		out_str(o, "\n");
	}
	for (uint32_t i = 0; i < S.nsites; i++)
		out_site_line(o, i, &S.sites[i]);
	out_str(o, "end\n");
	out_flush(o);
	r = o->err;
	close(o->fd);
	if (r != 0) {
		unlink(tmp);
		return -r;
	}
	if (rename(tmp, path) != 0)
		return -errno;
	S.last_write = mf_now_mono();
	return 0;
}

/* ---- the sampled path ---- */

static void poll_control(void)
{
	uint32_t c;

	if (mf_seg == NULL)
		return;
	c = __atomic_load_n(&mf_seg->control, __ATOMIC_ACQUIRE);
	if (S.ctl_follow)
		S.active = (c & MF_CTL_PROFILE) != 0;
	if (c & MF_PROF_CTL_SNAPSHOT) {
		__atomic_fetch_and(&mf_seg->control, ~MF_PROF_CTL_SNAPSHOT, __ATOMIC_ACQ_REL);
		S.pending = 1;
	}
}

static const char *scope_name(void)
{
	struct mf_thread *t = mf_tls_self;

	/* The outermost scope: the request or task, not a part of it. */
	if (t > MF_EXITED && t->depth > 0)
		return t->scopes[0].name;
	return NULL;
}

static void finish_locked(void)
{
	if (S.pending) {
		S.pending = 0;
		write_snapshot("request");
	}
}

void mf_prof_sample(void *p, size_t size)
{
	uint64_t frames[FRAMES_MAX];
	double w, n;
	int nn, np, site;
	pid_t me;

	if (!S.on) {
		/* Off (or not started yet): look again after a long while, so
		 * that a dormant profiler costs one subtraction per call. */
		mf_prof_left = 1ll << 30;
		return;
	}
	mf_prof_left = draw();
	if (tls_in || p == NULL)
		return;
	tls_in = 1;
	poll_control();
	if (!S.active) {
		/* Paused: keep polling the control word now and then. */
		mf_prof_left = 64 << 20;
		goto out;
	}
	/* s / (1 - e^(-s/R)) bytes, 1 / (1 - e^(-s/R)) calls */
	n = 1 / (1 - mf_exp_neg(-(double)size / (double)S.rate));
	w = n * (double)size;
	nn = native_stack(frames);
	me = self_tid();
	lock(me);
	np = python_stack(frames + nn);
	site = site_find(frames, nn, np, (unsigned)scope_index(scope_name()));
	S.samples++;
	S.alloc_w += w;
	if (site >= 0) {
		struct site *s = &S.sites[site];
		s->ab += w;
		s->an += n;
		if (live_add((uintptr_t)p, (uint32_t)site, w, n) == 0) {
			s->lb += w;
			s->ln += n;
			S.live_w += w;
		}
	}
	if (S.live_w > S.peak_mark) {
		take_view(0);
		S.peak_mark = S.live_w + S.live_w / 16 + (double)S.rate;
		S.peak_dirty = 1;
	}
	/* A peak not yet on disk goes there at the next sample a second on:
	 * what a SIGKILL leaves behind is at most that old. */
	if (S.peak_dirty && mf_now_mono() - S.last_write >= PEAK_WRITE_NS) {
		S.peak_dirty = 0;
		write_snapshot("peak");
	}
	if (!S.low_once && mf_cfg.heap_limit != 0 &&
	    S.live_w > (double)mf_cfg.heap_limit * 0.9) {
		S.low_once = 1;
		write_snapshot("low-headroom");
	}
	finish_locked();
	unlock();
out:
	tls_in = 0;
}

void mf_prof_free_slow(void *p)
{
	struct live e;
	pid_t me;

	if (tls_in)
		return;
	tls_in = 1;
	me = self_tid();
	lock(me);
	if (live_remove((uintptr_t)p, &e) == 0) {
		struct site *s = &S.sites[e.site];
		s->lb -= e.w;
		s->ln -= e.n;
		S.live_w -= e.w;
	}
	unlock();
	tls_in = 0;
}

void mf_prof_on_fail(void)
{
	if (!S.on || tls_in || __atomic_exchange_n(&S.failed_once, 1, __ATOMIC_ACQ_REL))
		return;
	tls_in = 1;
	lock(self_tid());
	take_view(1);
	write_snapshot("failure");
	unlock();
	tls_in = 0;
}

int mf_prof_snapshot(const char *reason)
{
	int r;

	if (!S.on)
		return -ENOTSUP;
	if (tls_in) {
		S.pending = 1;
		return 0;
	}
	tls_in = 1;
	lock(self_tid());
	r = write_snapshot(reason);
	unlock();
	tls_in = 0;
	return r;
}

static void on_signal(int sig)
{
	int e = errno;

	(void)sig;
	if (__atomic_load_n(&S.owner, __ATOMIC_ACQUIRE) == self_tid() || tls_in)
		S.pending = 1; /* taken when this thread lets the lock go */
	else
		mf_prof_snapshot("signal");
	errno = e;
}

/* ---- fork ---- */

void mf_prof_atfork_prepare(void)
{
	if (S.on)
		lock(self_tid());
}

void mf_prof_atfork_parent(void)
{
	if (S.on)
		unlock();
}

void mf_prof_atfork_child(void)
{
	if (!S.on)
		return;
	/* The child keeps the parent's samples (it has the same memory) and
	 * writes them under its own pid; its failures are its own. */
	unlock();
	tls_tid = 0;
	S.failed_once = 0;
	S.low_once = 0;
	S.last_write = 0;
}

/* ---- start and end ---- */

static int self_range_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t me = (uintptr_t)data;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && me >= lo && me < lo + ph->p_memsz) {
			S.self_lo = lo;
			S.self_hi = lo + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

/* Where the native unwinding of a Python program stops: the eval loop,
 * in any CPython version that exports it (its size from the symbol). */
static void eval_resolve(void)
{
	void *ev = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
	const ElfW(Sym) *sym = NULL;
	Dl_info info;

	if (ev != NULL && dladdr1(ev, &info, (void **)&sym, RTLD_DL_SYMENT) != 0 && sym != NULL &&
	    sym->st_size != 0) {
		S.eval_lo = (uintptr_t)ev;
		S.eval_len = sym->st_size;
	}
}

static void python_resolve(void)
{
	const unsigned long *ver = dlsym(RTLD_DEFAULT, "Py_Version");

	/* The frame layout read above is 3.11's; other versions get native
	 * frames only (docs/profiler.md). */
	if (ver == NULL || (*ver >> 16) != 0x030b)
		return;
	*(void **)&S.py_initialized = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
	*(void **)&S.py_this_ts = dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
	*(void **)&S.py_current_ts = dlsym(RTLD_DEFAULT, "_PyThreadState_UncheckedGet");
	*(void **)&S.py_addr2line = dlsym(RTLD_DEFAULT, "PyCode_Addr2Line");
	*(void **)&S.py_utf8 = dlsym(RTLD_DEFAULT, "PyUnicode_AsUTF8AndSize");
	*(void **)&S.py_get_alloc = dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
	*(void **)&S.py_set_alloc = dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
	S.py = S.py_initialized && S.py_this_ts && S.py_current_ts && S.py_addr2line && S.py_utf8;
	if (S.py_get_alloc == NULL || S.py_set_alloc == NULL || strcmp(S.pymalloc, "off") == 0)
		S.py_hook = -1;
}

static void *map_or_null(size_t len)
{
	return mf_os_alloc((len + 4095) & ~(size_t)4095);
}

extern char **__environ;

/* A boolean variable: unset or empty is off; anything not a boolean word
 * is said and off. */
static int env_flag(char **envp, const char *name)
{
	const char *v = mf_env_get(envp, name);
	int on = 0;

	if (v != NULL && v[0] != '\0' && mf_env_bool(v, &on) != 0)
		mf_say(name, " is not " MF_ENV_BOOL_WORDS ": off", NULL);
	return on;
}

/*
 * Runs after the shim's own constructor (101), so accounting is set up and
 * allocations made here (loading libgcc_s, the unwinder's first run, dlsym) are counted
 * but never sampled: S.on is set last.
 */
__attribute__((constructor(102))) static void prof_ctor(int argc, char **argv, char **envp)
{
	const char *v, *err = NULL;
	uint64_t warm[NATIVE_MAX];
	uint64_t rate = DEFAULT_RATE;

	(void)argc;
	(void)argv;
	if (envp == NULL)
		envp = __environ;
	if (__atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) != MF_STATE_ON || getauxval(AT_SECURE))
		return;
	v = mf_env_get(envp, "MEMFENCE_PROFILE_DIR");
	if (v == NULL || v[0] == '\0')
		return;
	if (access(v, W_OK) != 0) {
		/* Every snapshot would be lost: say it now, once. */
		mf_say("MEMFENCE_PROFILE_DIR ", v, " is not a writable directory: profiler off");
		return;
	}
	mf_strlcpy(S.dir, v, sizeof(S.dir));
	v = mf_env_get(envp, "MEMFENCE_PROFILE_RATE");
	if (v != NULL && (mf_size_parse(v, 0, &rate, &err) != 0 || rate == 0)) {
		mf_say("invalid MEMFENCE_PROFILE_RATE: ", v, " (a size such as 512K; profiler off)");
		return;
	}
	S.rate = rate;
	v = mf_env_get(envp, "PYTHONMALLOC");
	mf_strlcpy(S.pymalloc, v != NULL && strncmp(v, "malloc", 6) == 0 ? "off" : "on",
		   sizeof(S.pymalloc));
	S.ctl_follow = env_flag(envp, "MEMFENCE_PROFILE_CTL");

	S.sites = map_or_null(sizeof(struct site) * SITES_MAX);
	S.site_idx = map_or_null(sizeof(int32_t) * SITES_IDX);
	S.live = map_or_null(sizeof(struct live) * LIVE_MAX);
	S.codes = map_or_null(sizeof(struct code) * CODES_MAX);
	S.code_idx = map_or_null(sizeof(int32_t) * CODES_IDX);
	S.scopes = map_or_null(sizeof(*S.scopes) * SCOPES_MAX);
	mf_prof_filter = NULL;
	uint8_t *filter = map_or_null((size_t)1 << MF_PROF_FILTER_BITS);
	if (!S.sites || !S.site_idx || !S.live || !S.codes || !S.code_idx || !S.scopes || !filter) {
		mf_say("profiler: cannot map its tables", NULL, " (profiler off)");
		return;
	}
	memset(S.site_idx, 0xff, sizeof(int32_t) * SITES_IDX);
	memset(S.code_idx, 0xff, sizeof(int32_t) * CODES_IDX);
	S.nscopes = 1;
	dl_iterate_phdr(self_range_cb, (void *)(uintptr_t)&prof_ctor);
	/* Loading libgcc_s and the unwinder's first run allocate: here, not
	 * inside a hook. */
	{
		void *h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
		if (h != NULL) {
			*(void **)&unwind_backtrace = dlsym(h, "_Unwind_Backtrace");
			*(void **)&unwind_get_ip = dlsym(h, "_Unwind_GetIP");
		}
		if (unwind_backtrace == NULL || unwind_get_ip == NULL) {
			unwind_backtrace = NULL;
			mf_say("profiler: libgcc_s.so.1 not found", NULL, " (samples without native stacks)");
		} else {
			native_stack(warm);
		}
	}
	python_resolve();
	eval_resolve();
	if (env_flag(envp, "MEMFENCE_PROFILE_SIGNAL")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR2, &sa, NULL);
	}
	S.active = !S.ctl_follow;
	S.peak_mark = (double)S.rate;
	pthread_atfork(mf_prof_atfork_prepare, mf_prof_atfork_parent, mf_prof_atfork_child);
	mf_prof_left = draw();
	__atomic_store_n(&mf_prof_filter, filter, __ATOMIC_RELEASE);
	__atomic_store_n(&S.on, 1, __ATOMIC_RELEASE);
}

__attribute__((destructor(102))) static void prof_dtor(void)
{
	if (S.on)
		mf_prof_snapshot("exit");
}
