/*
 * hooks.c - the interposed libc functions.
 *
 * Each hook bootstraps if needed, forwards to the real function, and reports
 * (ptr, usable size) to account.c. Sizes are the real allocator's
 * malloc_usable_size(), so a free counts exactly what its allocation did.
 *
 * Bootstrap: the real functions are found with dlsym(RTLD_NEXT, ...), and
 * dlsym itself may call calloc/malloc (dlerror's buffer). Calls made while
 * the real pointers are not known are served from a static bump buffer;
 * such blocks are recognised by address, never given to the real free, and
 * never counted.
 *
 * Reentry: while the shim initialises (state INITING: it reads its
 * configuration, maps the segment, registers fork handlers, which may
 * allocate) every hook forwards uncounted, in every thread. A thread's
 * first call creates its state; an allocation made while doing so is
 * counted like any other. No other path of the shim allocates.
 *
 * Admission (whether a block may be had) is admit.c's; blocks of MF_BIG
 * bytes and more go through large_entry.c to large.c.
 *
 * Budget exactness: an allocation is admitted in two steps. Before the real
 * call, the requested size is checked (usable >= requested, so a request
 * already too large never reaches the allocator). After it, the usable size
 * is checked and the block given back if it does not fit. realloc cannot be
 * undone once done, so near a budget (or the heap limit) a growing realloc
 * is made as malloc + copy + free.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/gate.h"
#include "shim/hooks_int.h"
#include "shim/maps.h"
#include "shim/segw.h"

#define EXPORT __attribute__((visibility("default")))

struct mf_real mf_real;

/* The page size, from the auxiliary vector: no system call, no
 * allocation, usable from the first hook on. */
size_t mf_page_size(void)
{
	static size_t pg;
	size_t v = __atomic_load_n(&pg, __ATOMIC_RELAXED);

	if (MF_UNLIKELY(v == 0)) {
		v = (size_t)getauxval(AT_PAGESZ);
		if (v == 0)
			v = 4096;
		__atomic_store_n(&pg, v, __ATOMIC_RELAXED);
	}
	return v;
}

/* ---- bootstrap buffer ---- */

#define BOOT_SIZE (64u << 10)
static char boot_buf[BOOT_SIZE] __attribute__((aligned(64)));
static size_t boot_used;

struct boot_hdr {
	size_t size;
	size_t pad;
};

static int is_boot(const void *p)
{
	return (const char *)p >= boot_buf && (const char *)p < boot_buf + BOOT_SIZE;
}

static void *boot_alloc(size_t n, size_t align)
{
	size_t need, off, start;

	if (align < 16)
		align = 16;
	if (n > BOOT_SIZE || align > mf_page_size())
		goto nomem;
	need = n + sizeof(struct boot_hdr) + align;
	off = __atomic_fetch_add(&boot_used, need, __ATOMIC_RELAXED);
	if (off + need > BOOT_SIZE)
		goto nomem;
	start = (off + sizeof(struct boot_hdr) + align - 1) & ~(align - 1);
	((struct boot_hdr *)(boot_buf + start))[-1].size = n;
	/* Static storage is zeroed: calloc from here needs no memset. */
	return boot_buf + start;
nomem:
	errno = ENOMEM;
	return NULL;
}

static size_t boot_size(const void *p)
{
	return ((const struct boot_hdr *)p)[-1].size;
}

static int resolving;

#define RESOLVE(field, name) *(void **)&mf_real.field = dlsym(RTLD_NEXT, name)

static void resolve(void)
{
	if (__atomic_exchange_n(&resolving, 1, __ATOMIC_ACQ_REL))
		return; /* another thread (or this one, reentered) is at it */
	RESOLVE(free, "free");
	RESOLVE(calloc, "calloc");
	RESOLVE(realloc, "realloc");
	RESOLVE(posix_memalign, "posix_memalign");
	RESOLVE(aligned_alloc, "aligned_alloc");
	RESOLVE(memalign, "memalign");
	RESOLVE(valloc, "valloc");
	RESOLVE(pvalloc, "pvalloc");
	RESOLVE(usable, "malloc_usable_size");
	RESOLVE(mmap, "mmap");
	RESOLVE(munmap, "munmap");
	RESOLVE(mremap, "mremap");
	RESOLVE(pthread_create, "pthread_create");
	RESOLVE(mallopt, "mallopt");
	/* malloc last: it is the "ready" flag the hooks test. */
	void *m = dlsym(RTLD_NEXT, "malloc");
	__atomic_store_n((void **)&mf_real.malloc, m, __ATOMIC_RELEASE);
}

static int ready(void)
{
	if (MF_LIKELY(__atomic_load_n((void **)&mf_real.malloc, __ATOMIC_ACQUIRE) != NULL))
		return 1;
	resolve();
	return __atomic_load_n((void **)&mf_real.malloc, __ATOMIC_ACQUIRE) != NULL;
}

/* ---- sizes ---- */

/* 1 when the block sizes are read from glibc's headers (hooks_int.h);
 * set by the self-test below. */
int mf_glibc_sizes;

/*
 * 1 once counting is on with glibc's sizes and no process-wide check
 * (heap limit, fault injection): malloc and free then need only this
 * flag and the thread's state. Set once at start-up, never cleared: the
 * conditions it sums do not change later.
 */
static int mf_fast;

/*
 * Whether glibc's headers say what mf_header_usable() reads, asked of glibc
 * itself (its malloc_usable_size). Heap chunks are real ones; a mapped
 * chunk is a header made up here: a real one costs every program's start
 * a mapping, a fault and an unmapping (two, with the aligned one), for a
 * header glibc reads as it reads any other. It would also have to be over
 * 32 MiB: freeing one of up to 32 MiB (DEFAULT_MMAP_THRESHOLD_MAX) raises
 * glibc's dynamic mmap threshold to its size, retuning the allocator.
 */
static void check_glibc_sizes(void)
{
	/* Every size of the heap has the same header, so fewer are aligned:
	 * each aligned chunk starts a page of the heap, which the program
	 * pays in a fault at every start. No heap chunk reaches 64 KiB, whose
	 * free would trim the heap for nothing. */
	static const size_t plain[] = {0, 1, 24, 25, 100, 1000, 4104};
	static const size_t aligned[] = {25, 4104};
	/* A mapped chunk's header as glibc writes it: its size with
	 * IS_MMAPPED (2). The array holds the 64-byte chunk and the header
	 * after it, so that whatever glibc reads of it stays inside. */
	static size_t mapped[10] __attribute__((aligned(16)));
	Dl_info info;
	int ok = 1;

	if (dladdr((void *)mf_real.malloc, &info) == 0 || info.dli_fname == NULL ||
	    strstr(info.dli_fname, "/libc.so") == NULL)
		return;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]) && ok; i++) {
		void *p = mf_real.malloc(plain[i]);

		if (p != NULL)
			ok &= mf_header_usable(p) == mf_real.usable(p);
		mf_real.free(p);
	}
	for (size_t i = 0; i < sizeof(aligned) / sizeof(aligned[0]) && ok; i++) {
		void *q = mf_real.memalign(4096, aligned[i] + 1);

		if (q != NULL)
			ok &= mf_header_usable(q) == mf_real.usable(q);
		mf_real.free(q);
	}
	/* Last: only a glibc whose heap headers read as ours (no malloc
	 * checking, which would look for its mark past the end) is asked. */
	if (ok) {
		mapped[1] = 8 * sizeof(size_t) | 2;
		ok = mf_header_usable(&mapped[2]) == mf_real.usable(&mapped[2]);
	}
	mf_glibc_sizes = ok;
}

/* ---- initialisation ---- */

extern char **__environ;

/* Locks in a fixed order: the big-block cache, the mapping table, then
 * the thread list. */
static void atfork_prepare(void)
{
	mf_big_atfork_prepare();
	mf_maps_atfork_prepare();
	mf_account_atfork_prepare();
}

static void atfork_parent(void)
{
	mf_account_atfork_parent();
	mf_maps_atfork_parent();
	mf_big_atfork_parent();
}

static void atfork_child(void)
{
	mf_maps_atfork_child();
	mf_account_atfork_child();
	mf_big_atfork_child();
	mf_gate_atfork_child(mf_tls_self);
}

static void init(char **envp)
{
	int expect = MF_STATE_UNINIT;

	if (!__atomic_compare_exchange_n(&mf_state, &expect, MF_STATE_INITING, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	ready();
	mf_config_read(envp);
	if (mf_cfg.account && mf_real.malloc != NULL) {
		check_glibc_sizes();
		mf_big_init();
		mf_policy_init(mf_glibc_sizes, mf_real.mallopt);
		mf_account_init();
		mf_segw_attach();
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
		__atomic_store_n(&mf_state, MF_STATE_ON, __ATOMIC_RELEASE);
		__atomic_store_n(&mf_fast, mf_glibc_sizes && !mf_gchecks, __ATOMIC_RELEASE);
		return;
	}
	__atomic_store_n(&mf_state, MF_STATE_OFF, __ATOMIC_RELEASE);
}

/* Programs may allocate before our constructor (other constructors, the
 * dynamic loader); until it runs, and while libc's environment is not set,
 * calls are forwarded uncounted. */
__attribute__((constructor(101))) static void mf_ctor(int argc, char **argv, char **envp)
{
	(void)argc;
	(void)argv;
	init(envp != NULL ? envp : __environ);
}

__attribute__((destructor(101))) static void mf_dtor(void)
{
	if (__atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) != MF_STATE_ON)
		return;
	mf_account_exit();
	mf_segw_exit();
}

/* 1 when this call is to be counted. Before the constructor, a call made
 * once libc's environment is set initialises the shim. */
static inline int counting(void)
{
	int st = __atomic_load_n(&mf_state, __ATOMIC_ACQUIRE);

	if (MF_LIKELY(st == MF_STATE_ON))
		return 1;
	if (st == MF_STATE_UNINIT && __environ != NULL) {
		init(__environ);
		return __atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) == MF_STATE_ON;
	}
	return 0;
}

static inline int on(void)
{
	return MF_LIKELY(__atomic_load_n(&mf_state, __ATOMIC_RELAXED) == MF_STATE_ON);
}

/* ---- malloc family ---- */

/* Admission around a fresh block p of a request of req bytes. Returns p,
 * or NULL (block released, errno ENOMEM) when refused. */
static inline void *admit_block(struct mf_thread *t, void *p)
{
	size_t u;

	if (MF_UNLIKELY(p == NULL)) {
		mf_hook_failed(t, MF_FAIL_ALLOC);
		return NULL;
	}
	u = mf_usable_of(p);
	if (MF_UNLIKELY(mf_need_checks(t)) && mf_hook_admit_post(t, u) != 0) {
		mf_real.free(p);
		errno = ENOMEM;
		return NULL;
	}
	mf_count_alloc(t, u);
	mf_prof_alloc(p, u);
	return p;
}

static void *malloc_slow(size_t n)
{
	struct mf_thread *t;

	if (MF_UNLIKELY(!ready()))
		return boot_alloc(n, 16);
	if (!counting())
		return mf_real.malloc(n);
	t = mf_self();
	if (mf_serve_big(n, 16))
		return mf_big_hook_alloc(t, n, 16, false);
	if (mf_hook_refuse_pre(t, n))
		return NULL;
	return admit_block(t, mf_real.malloc(n));
}

EXPORT void *malloc(size_t n)
{
	/* Counting, glibc's sizes, no process-wide check, a thread that has
	 * its state and no budget open: the common case, kept short (one
	 * global and one TLS load before the real call). */
	if (MF_LIKELY(__atomic_load_n(&mf_fast, __ATOMIC_RELAXED))) {
		struct mf_thread *t = mf_tls_self;
		if (MF_LIKELY(t > MF_EXITED && t->nbudget == 0 && n < MF_LARGE)) {
			void *p = mf_real.malloc(n);
			if (MF_LIKELY(p != NULL)) {
				size_t u = mf_header_usable(p);
				mf_count_alloc(t, u);
				mf_prof_alloc(p, u);
				return p;
			}
			mf_hook_failed(t, MF_FAIL_ALLOC);
			return NULL;
		}
	}
	return malloc_slow(n);
}

EXPORT void free(void *p)
{
	struct mf_thread *t;
	size_t u;

	if (p == NULL || MF_UNLIKELY(is_boot(p)))
		return;
	if (MF_LIKELY(__atomic_load_n(&mf_fast, __ATOMIC_RELAXED))) {
		t = mf_tls_self;
		if (MF_LIKELY(t > MF_EXITED)) {
			if (mf_own_big(p)) {
				mf_big_hook_free(t, p);
				return;
			}
			u = mf_header_usable(p);
			mf_prof_free(p);
			mf_real.free(p);
			mf_count_free(t, u);
			return;
		}
	}
	if (!on() && !counting()) {
		mf_real.free(p);
		return;
	}
	t = mf_self();
	if (mf_own_big(p)) {
		mf_big_hook_free(t, p);
		return;
	}
	u = mf_usable_of(p);
	mf_prof_free(p);
	mf_real.free(p);
	mf_count_free(t, u);
}

EXPORT void *calloc(size_t nmemb, size_t size)
{
	struct mf_thread *t;
	size_t n;

	if (MF_UNLIKELY(!ready())) {
		if (__builtin_mul_overflow(nmemb, size, &n)) {
			errno = ENOMEM;
			return NULL;
		}
		return boot_alloc(n, 16);
	}
	if (!counting())
		return mf_real.calloc(nmemb, size);
	t = mf_self();
	if (__builtin_mul_overflow(nmemb, size, &n)) {
		mf_hook_failed(t, MF_FAIL_ALLOC);
		errno = ENOMEM;
		return NULL;
	}
	if (mf_serve_big(n, 16))
		return mf_big_hook_alloc(t, n, 16, true);
	if (mf_hook_refuse_pre(t, n))
		return NULL;
	return admit_block(t, mf_real.calloc(nmemb, size));
}

/* malloc + copy + free, for a growth that must be checked before the old
 * block is given up. */
static void *realloc_checked(struct mf_thread *t, void *p, size_t n, size_t old)
{
	void *q = mf_real.malloc(n);
	size_t u;

	if (q == NULL) {
		mf_hook_failed(t, MF_FAIL_ALLOC);
		return NULL;
	}
	u = mf_usable_of(q);
	if (u > old && mf_hook_admit_post(t, u - old) != 0) {
		mf_real.free(q);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(q, p, old < n ? old : n);
	mf_prof_free(p);
	mf_real.free(p);
	mf_prof_alloc(q, u);
	mf_count_resize(t, old, u);
	return q;
}

/*
 * Room in every budget for a growth of grow bytes plus what rounding can
 * add: glibc rounds by less than a page; other allocators' size classes are
 * at most a quarter apart.
 */
static int budget_room(const struct mf_thread *t, uint64_t grow)
{
	uint64_t slack = (64u << 10) + (mf_glibc_sizes ? 0 : grow / 4);

	for (int i = 0; i < t->depth; i++) {
		const struct mf_scope *s = &t->scopes[i];
		if (s->fig.budget != 0 && s->fig.net + (int64_t)(grow + slack) > (int64_t)s->fig.budget)
			return 0;
	}
	return 1;
}

/*
 * realloc counts its net effect: growth as bytes allocated, shrinking as
 * bytes freed (also when the block moves), one allocation call;
 * realloc(p, 0) is a free.
 */
EXPORT void *realloc(void *p, size_t n)
{
	struct mf_thread *t;
	size_t old, u;
	void *q;

	if (MF_UNLIKELY(!ready()) || MF_UNLIKELY(is_boot(p))) {
		if (p != NULL && is_boot(p)) {
			size_t keep = boot_size(p);
			q = ready() ? malloc(n) : boot_alloc(n, 16);
			if (q != NULL)
				memcpy(q, p, keep < n ? keep : n);
			return q;
		}
		return boot_alloc(n, 16);
	}
	if (!counting())
		return mf_real.realloc(p, n);
	if (p == NULL)
		return malloc(n);
	t = mf_self();
	old = mf_usable_of(p);
	if (mf_own_big(p) || mf_serve_big(n, 16))
		return mf_big_hook_realloc(t, p, n, old);
	if (n == 0) {
		mf_prof_free(p);
		mf_real.realloc(p, 0);
		mf_count(t, 0, old, 0, 1);
		return NULL;
	}
	if (n > old && (MF_UNLIKELY(mf_need_checks(t)) || n - old >= MF_LARGE)) {
		if (mf_hook_admit_pre(t, n - old) != 0) {
			errno = ENOMEM;
			return NULL;
		}
		/* Far from every budget, the allocator's rounding cannot make
		 * the growth cross one: realloc in place. Closer (or under the
		 * heap limit, whose pool other threads share), grow in a way
		 * that can still be refused. */
		if (mf_need_checks(t) && (mf_cfg.heap_limit != 0 || !budget_room(t, n - old)))
			return realloc_checked(t, p, n, old);
	}
	mf_prof_free(p); /* sampled again below as a new block, if at all */
	q = mf_real.realloc(p, n);
	if (q == NULL) {
		mf_hook_failed(t, MF_FAIL_ALLOC);
		return NULL;
	}
	u = mf_usable_of(q);
	mf_prof_alloc(q, u);
	/* Only a shrinking request gets here under checks, and the allocator
	 * never grows those. */
	mf_count_resize(t, old, u);
	return q;
}

EXPORT void *reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t n;

	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

static void *aligned_common(size_t align, size_t n, void *(*fn)(size_t, size_t))
{
	struct mf_thread *t;

	if (MF_UNLIKELY(!ready()))
		return boot_alloc(n, align);
	if (!counting())
		return fn(align, n);
	t = mf_self();
	if (mf_serve_big(n, align))
		return mf_big_hook_alloc(t, n, align < 16 ? 16 : align, false);
	if (mf_hook_refuse_pre(t, n))
		return NULL;
	return admit_block(t, fn(align, n));
}

EXPORT void *memalign(size_t align, size_t n)
{
	if (MF_UNLIKELY(!ready()))
		return boot_alloc(n, align);
	return aligned_common(align, n, mf_real.memalign);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	if (MF_UNLIKELY(!ready()))
		return boot_alloc(n, align);
	return aligned_common(align, n, mf_real.aligned_alloc);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	struct mf_thread *t;
	void *p = NULL;
	int r;

	if (MF_UNLIKELY(!ready())) {
		*out = boot_alloc(n, align);
		return *out != NULL ? 0 : ENOMEM;
	}
	if (!counting())
		return mf_real.posix_memalign(out, align, n);
	t = mf_self();
	/* An invalid alignment is the caller's error, not a refusal. */
	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return mf_real.posix_memalign(out, align, n);
	if (mf_serve_big(n, align)) {
		p = mf_big_hook_alloc(t, n, align < 16 ? 16 : align, false);
		if (p == NULL)
			return ENOMEM;
		*out = p;
		return 0;
	}
	if (mf_hook_refuse_pre(t, n))
		return ENOMEM;
	r = mf_real.posix_memalign(&p, align, n);
	if (r != 0) {
		mf_hook_failed(t, MF_FAIL_ALLOC);
		return r;
	}
	p = admit_block(t, p);
	if (p == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

static void *page_common(size_t n, void *(*fn)(size_t))
{
	struct mf_thread *t;

	if (!counting())
		return fn(n);
	t = mf_self();
	if (mf_serve_big(n, mf_page_size()))
		return mf_big_hook_alloc(t, n, mf_page_size(), false);
	if (mf_hook_refuse_pre(t, n))
		return NULL;
	return admit_block(t, fn(n));
}

EXPORT void *valloc(size_t n)
{
	if (MF_UNLIKELY(!ready()))
		return boot_alloc(n, mf_page_size());
	return page_common(n, mf_real.valloc);
}

EXPORT void *pvalloc(size_t n)
{
	if (MF_UNLIKELY(!ready())) {
		size_t pg = mf_page_size();
		return boot_alloc((n + pg - 1) & ~(pg - 1), pg);
	}
	return page_common(n, mf_real.pvalloc);
}

EXPORT size_t malloc_usable_size(void *p)
{
	if (p == NULL)
		return 0;
	if (MF_UNLIKELY(is_boot(p)))
		return boot_size(p);
	if (MF_UNLIKELY(!ready()))
		return 0;
	return mf_real.usable(p);
}

/* ---- anonymous mappings ---- */

static uint64_t page_round(uint64_t n)
{
	uint64_t pg = mf_page_size();

	return (n + pg - 1) & ~(pg - 1);
}

static int counted_mapping(int prot, int flags, int fd)
{
	return (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
	       (prot & PROT_WRITE) && fd == -1;
}

/* A MAP_FIXED mapping replaces whatever was there: forget it. */
static void replaced(struct mf_thread *t, void *addr, uint64_t len)
{
	sigset_t saved;
	uint64_t gone;

	if (!mf_maps_any())
		return;
	mf_maps_lock(&saved);
	gone = mf_maps_remove((uintptr_t)addr, len);
	mf_maps_unlock(&saved);
	if (gone != 0)
		mf_count(t, 0, gone, 0, 1);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct mf_thread *t;
	uint64_t size;
	void *p;

	if (MF_UNLIKELY(!ready())) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (!counting())
		return mf_real.mmap(addr, len, prot, flags, fd, off);
	t = mf_self();
	if (!counted_mapping(prot, flags, fd)) {
		p = mf_real.mmap(addr, len, prot, flags, fd, off);
		if (p != MAP_FAILED && (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) == MAP_FIXED)
			replaced(t, p, page_round(len));
		return p;
	}
	size = page_round(len);
	if (len == 0)
		return mf_real.mmap(addr, len, prot, flags, fd, off);
	if (mf_hook_admit_pre(t, size) != 0 || (mf_need_checks(t) && mf_hook_admit_post(t, size) != 0)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	p = mf_real.mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED) {
		int e = errno;
		if (mf_need_checks(t))
			mf_admit_undo(t, size);
		mf_hook_failed(t, MF_FAIL_ALLOC);
		errno = e;
		return p;
	}
	if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) == MAP_FIXED)
		replaced(t, p, size);
	{
		sigset_t saved;
		int r;

		mf_maps_lock(&saved);
		r = mf_maps_add((uintptr_t)p, size);
		mf_maps_unlock(&saved);
		if (r != 0) {
			/* Untracked, so not counted either. */
			if (mf_need_checks(t))
				mf_admit_undo(t, size);
			return p;
		}
	}
	mf_count(t, size, 0, 1, 0);
	return p;
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
	struct mf_thread *t;
	sigset_t saved;
	uint64_t gone = 0;
	int r;

	if (MF_UNLIKELY(!ready())) {
		errno = ENOSYS;
		return -1;
	}
	if (!counting() || !mf_maps_any())
		return mf_real.munmap(addr, len);
	t = mf_self();
	mf_maps_lock(&saved);
	r = mf_real.munmap(addr, len);
	int e = errno;
	if (r == 0)
		gone = mf_maps_remove((uintptr_t)addr, page_round(len));
	mf_maps_unlock(&saved);
	if (gone != 0)
		mf_count(t, 0, gone, 0, 1);
	errno = e;
	return r;
}

/*
 * mremap of a tracked mapping counts its net change like realloc: growth
 * as allocated, shrinking as freed. MREMAP_DONTUNMAP leaves the old range
 * mapped (and still tracked).
 */
EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	struct mf_thread *t;
	void *new_addr = NULL, *p;
	uint64_t tracked, nsize;
	sigset_t saved;
	va_list ap;
	int e;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (MF_UNLIKELY(!ready())) {
		errno = ENOSYS;
		return MAP_FAILED;
	}
	if (!counting() || !mf_maps_any())
		return mf_real.mremap(old, old_len, new_len, flags, new_addr);
	t = mf_self();
	nsize = page_round(new_len);
	mf_maps_lock(&saved);
	tracked = old_len != 0 ? mf_maps_tracked((uintptr_t)old, page_round(old_len)) : 0;
	mf_maps_unlock(&saved);
	if (tracked == 0)
		return mf_real.mremap(old, old_len, new_len, flags, new_addr);
	if (nsize > tracked && !(flags & 4 /* MREMAP_DONTUNMAP */)) {
		if (mf_hook_admit_pre(t, nsize - tracked) != 0 ||
		    (mf_need_checks(t) && mf_hook_admit_post(t, nsize - tracked) != 0)) {
			errno = ENOMEM;
			return MAP_FAILED;
		}
	}
	mf_maps_lock(&saved);
	p = mf_real.mremap(old, old_len, new_len, flags, new_addr);
	e = errno;
	if (p != MAP_FAILED) {
		if (!(flags & 4))
			tracked = mf_maps_remove((uintptr_t)old, page_round(old_len));
		else
			tracked = 0;
		if (mf_maps_add((uintptr_t)p, nsize) != 0)
			nsize = 0;
	}
	mf_maps_unlock(&saved);
	if (p == MAP_FAILED) {
		uint64_t grow = nsize > tracked ? nsize - tracked : 0;
		if (grow != 0 && mf_need_checks(t))
			mf_admit_undo(t, grow);
		mf_hook_failed(t, MF_FAIL_ALLOC);
		errno = e;
		return p;
	}
	if (nsize >= tracked)
		mf_count(t, nsize - tracked, 0, 1, 0);
	else
		mf_count(t, 0, tracked - nsize, 1, 0);
	errno = e;
	return p;
}

/* ---- threads ---- */

EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr,
			  void *(*start)(void *), void *arg)
{
	struct mf_thread *t;
	int r;

	if (MF_UNLIKELY(!ready()))
		return EAGAIN;
	if (!counting())
		return mf_real.pthread_create(th, attr, start, arg);
	t = mf_self();
	r = mf_fault_thread(t);
	if (r != 0) {
		mf_count_thread(t, r);
		return r;
	}
	r = mf_real.pthread_create(th, attr, start, arg);
	mf_count_thread(t, r);
	return r;
}

/* Only to learn that the program chose a threshold itself: the shim then
 * leaves that threshold alone (policy.c). */
EXPORT int mallopt(int param, int value)
{
	if (MF_UNLIKELY(!ready()) || mf_real.mallopt == NULL)
		return 0;
	mf_policy_user_mallopt(param);
	/* Its own threshold: big blocks are glibc's again (policy.c). */
	if (param == M_MMAP_THRESHOLD)
		mf_big_release();
	return mf_real.mallopt(param, value);
}
