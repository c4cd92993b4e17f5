/*
 * prof.c - sampling heap profiler: configuration, the countdown and its
 * draws, the lock, the sampled and freed paths, fork. docs/profiler.md
 * describes the method and the snapshot file; src/profile/profile.c reads
 * it; prof_int.h lists the other files of the profiler.
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
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/env.h"
#include "base/envspec.h"
#include "base/size.h"
#include "shim/config.h"
#include "shim/prof_int.h"
#include "shim/segw.h"
#include "shim/thread.h"

#define DEFAULT_RATE (512u << 10)
/* Peak views are retaken when the estimated live bytes pass the last
 * peak by a sixteenth (and by one interval), and written to disk at most
 * once a second, so that a growing heap costs few copies and writes. */
#define PEAK_WRITE_NS 1000000000ull

__thread int64_t mf_prof_left __attribute__((tls_model("initial-exec")));
uint8_t *mf_prof_filter;

static __thread uint64_t tls_rng __attribute__((tls_model("initial-exec")));
static __thread int tls_in __attribute__((tls_model("initial-exec")));

struct mf_prof_state mf_prof_st;

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
	double d = -mf_ln(u) * (double)mf_prof_st.rate;

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

	while (!__atomic_compare_exchange_n(&mf_prof_st.owner, &free_, me, 0, __ATOMIC_ACQUIRE,
					    __ATOMIC_RELAXED)) {
		free_ = 0;
		__builtin_ia32_pause();
	}
}

static void unlock(void)
{
	__atomic_store_n(&mf_prof_st.owner, 0, __ATOMIC_RELEASE);
}

/* ---- the sampled path ---- */

static void poll_control(void)
{
	uint32_t c;

	if (mf_seg == NULL)
		return;
	c = __atomic_load_n(&mf_seg->control, __ATOMIC_ACQUIRE);
	if (mf_prof_st.ctl_follow)
		mf_prof_st.active = (c & MF_CTL_PROFILE) != 0;
	if (c & MF_PROF_CTL_SNAPSHOT) {
		__atomic_fetch_and(&mf_seg->control, ~MF_PROF_CTL_SNAPSHOT, __ATOMIC_ACQ_REL);
		mf_prof_st.pending = 1;
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
	if (mf_prof_st.pending) {
		mf_prof_st.pending = 0;
		mf_prof_write("request");
	}
}

void mf_prof_sample(void *p, size_t size)
{
	uint64_t frames[MF_PROF_FRAMES_MAX];
	double w, n;
	int nn, np, site;
	pid_t me;

	if (!mf_prof_st.on) {
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
	if (!mf_prof_st.active) {
		/* Paused: keep polling the control word now and then. */
		mf_prof_left = 64 << 20;
		goto out;
	}
	/* s / (1 - e^(-s/R)) bytes, 1 / (1 - e^(-s/R)) calls */
	n = 1 / (1 - mf_exp_neg(-(double)size / (double)mf_prof_st.rate));
	w = n * (double)size;
	nn = mf_prof_native_stack(frames);
	me = self_tid();
	lock(me);
	np = mf_prof_python_stack(frames + nn);
	site = mf_prof_site_find(frames, nn, np, (unsigned)mf_prof_scope_index(scope_name()));
	mf_prof_st.samples++;
	mf_prof_st.alloc_w += w;
	if (site >= 0) {
		struct mf_prof_site *s = &mf_prof_st.sites[site];
		s->ab += w;
		s->an += n;
		if (mf_prof_live_add((uintptr_t)p, (uint32_t)site, w, n) == 0) {
			s->lb += w;
			s->ln += n;
			mf_prof_st.live_w += w;
		}
	}
	if (mf_prof_st.live_w > mf_prof_st.peak_mark) {
		mf_prof_take_view(0);
		mf_prof_st.peak_mark = mf_prof_st.live_w + mf_prof_st.live_w / 16 + (double)mf_prof_st.rate;
		mf_prof_st.peak_dirty = 1;
	}
	/* A peak not yet on disk goes there at the next sample a second on:
	 * what a SIGKILL leaves behind is at most that old. */
	if (mf_prof_st.peak_dirty && mf_now_mono() - mf_prof_st.last_write >= PEAK_WRITE_NS) {
		mf_prof_st.peak_dirty = 0;
		mf_prof_write("peak");
	}
	if (!mf_prof_st.low_once && mf_cfg.heap_limit != 0 &&
	    mf_prof_st.live_w > (double)mf_cfg.heap_limit * 0.9) {
		mf_prof_st.low_once = 1;
		mf_prof_write("low-headroom");
	}
	finish_locked();
	unlock();
out:
	tls_in = 0;
}

void mf_prof_free_slow(void *p)
{
	struct mf_prof_live e;
	pid_t me;

	if (tls_in)
		return;
	tls_in = 1;
	me = self_tid();
	lock(me);
	if (mf_prof_live_remove((uintptr_t)p, &e) == 0) {
		struct mf_prof_site *s = &mf_prof_st.sites[e.site];
		s->lb -= e.w;
		s->ln -= e.n;
		mf_prof_st.live_w -= e.w;
	}
	unlock();
	tls_in = 0;
}

void mf_prof_on_fail(void)
{
	if (!mf_prof_st.on || tls_in || __atomic_exchange_n(&mf_prof_st.failed_once, 1, __ATOMIC_ACQ_REL))
		return;
	tls_in = 1;
	lock(self_tid());
	mf_prof_take_view(1);
	mf_prof_write("failure");
	unlock();
	tls_in = 0;
}

int mf_prof_snapshot(const char *reason)
{
	int r;

	if (!mf_prof_st.on)
		return -ENOTSUP;
	if (tls_in) {
		mf_prof_st.pending = 1;
		return 0;
	}
	tls_in = 1;
	lock(self_tid());
	r = mf_prof_write(reason);
	unlock();
	tls_in = 0;
	return r;
}

bool mf_prof_busy(void)
{
	return __atomic_load_n(&mf_prof_st.owner, __ATOMIC_ACQUIRE) == self_tid() || tls_in;
}

/* ---- fork ---- */

void mf_prof_atfork_prepare(void)
{
	if (mf_prof_st.on)
		lock(self_tid());
}

void mf_prof_atfork_parent(void)
{
	if (mf_prof_st.on)
		unlock();
}

void mf_prof_atfork_child(void)
{
	if (!mf_prof_st.on)
		return;
	/* The child keeps the parent's samples (it has the same memory) and
	 * writes them under its own pid; its failures are its own. */
	unlock();
	tls_tid = 0;
	mf_prof_st.failed_once = 0;
	mf_prof_st.low_once = 0;
	mf_prof_st.last_write = 0;
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
 * but never sampled: mf_prof_st.on is set last.
 */
__attribute__((constructor(102))) static void prof_ctor(int argc, char **argv, char **envp)
{
	const char *v, *err = NULL;
	uint64_t rate = DEFAULT_RATE;

	(void)argc;
	(void)argv;
	if (envp == NULL)
		envp = __environ;
	if (__atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) != MF_STATE_ON || getauxval(AT_SECURE))
		return;
	v = mf_env_get(envp, MF_ENV(PROFILE_DIR));
	if (v == NULL || v[0] == '\0')
		return;
	if (access(v, W_OK) != 0) {
		/* Every snapshot would be lost: say it now, once. */
		mf_say(MF_ENV_LIT(PROFILE_DIR) " ", v, " is not a writable directory: profiler off");
		return;
	}
	mf_strlcpy(mf_prof_st.dir, v, sizeof(mf_prof_st.dir));
	v = mf_env_get(envp, MF_ENV(PROFILE_RATE));
	if (v != NULL && (mf_size_parse(v, 0, &rate, &err) != 0 || rate == 0)) {
		mf_say("invalid " MF_ENV_LIT(PROFILE_RATE) ": ", v, " (a size such as 512K; profiler off)");
		return;
	}
	mf_prof_st.rate = rate;
	mf_prof_st.ctl_follow = env_flag(envp, MF_ENV(PROFILE_CTL));

	mf_prof_st.sites = map_or_null(sizeof(struct mf_prof_site) * MF_PROF_SITES_MAX);
	mf_prof_st.site_idx = map_or_null(sizeof(int32_t) * MF_PROF_SITES_IDX);
	mf_prof_st.live = map_or_null(sizeof(struct mf_prof_live) * MF_PROF_LIVE_MAX);
	mf_prof_st.codes = map_or_null(sizeof(struct mf_prof_code) * MF_PROF_CODES_MAX);
	mf_prof_st.code_idx = map_or_null(sizeof(int32_t) * MF_PROF_CODES_IDX);
	mf_prof_st.scopes = map_or_null(sizeof(*mf_prof_st.scopes) * MF_PROF_SCOPES_MAX);
	mf_prof_filter = NULL;
	uint8_t *filter = map_or_null((size_t)1 << MF_PROF_FILTER_BITS);
	if (!mf_prof_st.sites || !mf_prof_st.site_idx || !mf_prof_st.live || !mf_prof_st.codes ||
	    !mf_prof_st.code_idx || !mf_prof_st.scopes || !filter) {
		mf_say("profiler: cannot map its tables", NULL, " (profiler off)");
		return;
	}
	memset(mf_prof_st.site_idx, 0xff, sizeof(int32_t) * MF_PROF_SITES_IDX);
	memset(mf_prof_st.code_idx, 0xff, sizeof(int32_t) * MF_PROF_CODES_IDX);
	mf_prof_st.nscopes = 1;
	if (!mf_prof_native_init((const void *)&prof_ctor))
		mf_say("profiler: libgcc_s.so.1 not found", NULL, " (samples without native stacks)");
	mf_prof_python_init(mf_env_get(envp, "PYTHONMALLOC"));
	if (env_flag(envp, MF_ENV(PROFILE_SIGNAL)))
		mf_prof_signal_install();
	mf_prof_st.active = !mf_prof_st.ctl_follow;
	mf_prof_st.peak_mark = (double)mf_prof_st.rate;
	pthread_atfork(mf_prof_atfork_prepare, mf_prof_atfork_parent, mf_prof_atfork_child);
	mf_prof_left = draw();
	__atomic_store_n(&mf_prof_filter, filter, __ATOMIC_RELEASE);
	__atomic_store_n(&mf_prof_st.on, 1, __ATOMIC_RELEASE);
}

__attribute__((destructor(102))) static void prof_dtor(void)
{
	if (mf_prof_st.on)
		mf_prof_snapshot("exit");
}