/*
 * prof_native.c - the profiler's native stacks: libgcc's unwinder, with the
 * frames of the shim itself left out and the unwinding stopped at
 * CPython's eval loop, whose callers the Python frames stand for.
 */
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>

#include "shim/prof_int.h"

/* Set once by mf_prof_native_init, before sampling starts. */
static struct {
	uintptr_t self_lo, self_hi;  /* our own code, left out of stacks */
	uintptr_t eval_lo, eval_len; /* CPython's _PyEval_EvalFrameDefault */
} N;

/*
 * Native stacks come from libgcc's DWARF unwinder (what glibc's backtrace()
 * wraps), resolved with dlopen at start-up: Debian's libraries and Python
 * have no frame pointers, and the unwinder finds its tables through
 * dl_iterate_phdr without allocating once it has run once (done at start).
 */
int (*mf_prof_unwind)(mf_prof_unwind_fn, void *);
static uintptr_t (*unwind_get_ip)(struct _Unwind_Context *);

int mf_prof_walk_cb(struct _Unwind_Context *ctx, void *arg)
{
	struct mf_prof_walk *w = arg;
	uintptr_t pc = unwind_get_ip(ctx);

	if (pc == 0)
		return 5; /* _URC_END_OF_STACK */
	/* Frames of the shim itself (hook, sampler) are not the program's. */
	if (pc >= N.self_lo && pc < N.self_hi)
		return 0;
	w->out[w->n++] = pc;
	/* Reports keep the native frames up to the interpreter's eval loop
	 * and drop the ones above it (src/profile/profile.c): those are not
	 * unwound at all, which makes a Python sample several times cheaper. */
	if (pc - 1 - N.eval_lo < N.eval_len)
		return 5;
	return w->n >= MF_PROF_NATIVE_MAX ? 5 : 0;
}

static int self_range_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t me = (uintptr_t)data;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && me >= lo && me < lo + ph->p_memsz) {
			N.self_lo = lo;
			N.self_hi = lo + ph->p_memsz;
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
		N.eval_lo = (uintptr_t)ev;
		N.eval_len = sym->st_size;
	}
}


bool mf_prof_native_init(const void *self)
{
	uint64_t warm[MF_PROF_NATIVE_MAX];
	void *h;

	dl_iterate_phdr(self_range_cb, (void *)self);
	/* Loading libgcc_s and the unwinder's first run allocate: here, not
	 * inside a hook. */
	h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
	if (h != NULL) {
		*(void **)&mf_prof_unwind = dlsym(h, "_Unwind_Backtrace");
		*(void **)&unwind_get_ip = dlsym(h, "_Unwind_GetIP");
	}
	if (mf_prof_unwind == NULL || unwind_get_ip == NULL)
		mf_prof_unwind = NULL;
	else
		mf_prof_native_stack(warm);
	eval_resolve();
	return mf_prof_unwind != NULL;
}
