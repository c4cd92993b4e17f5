/*
 * dynlib.h - a shared library loaded when a part of memfence first needs it,
 * by soname, rather than by the dynamic linker at every start of the
 * command.
 *
 * `memfence run --http off` and `memfence exec` never serve HTTP, yet
 * libmicrohttpd and the ten libraries it pulls in (GnuTLS and its own
 * dependencies) were more than half of the dynamic loader's time at every
 * start of the command (docs/performance.md). Loading by soname,
 * never by path, keeps the dependency a package manager can declare (a
 * .deb's Depends, a wheel's bundled copy found through its RPATH).
 */
#ifndef MF_DYNLIB_H
#define MF_DYNLIB_H

#include <stddef.h>

/* One function of the library: its name and where its address goes. */
struct mf_dynsym {
	const char *name;
	void **addr;
};

/* Load soname (a later call finds it already loaded) and resolve every
 * function of syms[0..n). 0, or -1 with err saying which library or
 * function is missing and why. Thread-safe as dlopen is; the library is
 * never unloaded. */
int mf_dynlib_load(const char *soname, const struct mf_dynsym *syms, size_t n, char *err,
		   size_t errlen);

#endif
