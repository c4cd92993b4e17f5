/*
 * dynlib.h - a shared library loaded when a part of memfence first needs it,
 * by soname, rather than by the dynamic linker at every start of the
 * command.
 *
 * `memfence run` serves HTTP only with --http, and opens its quarantine
 * store only when a death is recorded; `memfence exec` does neither. Yet
 * libmicrohttpd (with GnuTLS and its own dependencies behind it), SQLite and
 * hiredis were most of the dynamic loader's time at every start of the
 * command (docs/performance.md). Loading by soname, never by path, keeps the
 * dependency a package manager can declare (a .deb's Depends, a wheel's
 * bundled copy found through its RPATH).
 */
#ifndef MF_DYNLIB_H
#define MF_DYNLIB_H

#include <stddef.h>

/* Every library memfence loads at run time: dynlib.c's table holds their
 * sonames, the one list a package declares. */
enum mf_dynlib {
	MF_DYNLIB_MICROHTTPD,   /* the HTTP server of `memfence run` */
	MF_DYNLIB_SQLITE,       /* the quarantine store, and Redis' local copy */
	MF_DYNLIB_HIREDIS,      /* a quarantine store on Redis */
	MF_DYNLIB_CURL,         /* run --profile-push */
	MF_DYNLIB_ZLIB,         /* the gzip of a pprof profile */
	MF_DYNLIB_COUNT
};

/* One function of the library: its name and where its address goes. */
struct mf_dynsym {
	const char *name;
	void **addr;
};

/* The soname loaded for lib: the one of the library memfence was built
 * against. */
const char *mf_dynlib_soname(enum mf_dynlib lib);

/* Load soname (mf_dynlib_soname(); a later call finds it already loaded)
 * and resolve every function of syms[0..n). 0, or -1 with err saying which
 * library or function is missing and why. Thread-safe as dlopen is; the
 * library is never unloaded. */
int mf_dynlib_load(const char *soname, const struct mf_dynsym *syms, size_t n, char *err,
		   size_t errlen);

/* mf_dynlib_load() of lib, whose failure err tells a person: who needs the
 * library, why it could not be had, the package to install, then advice
 * (" or pass --http off"; NULL for none). 0, or -1. */
int mf_dynlib_need(enum mf_dynlib lib, const struct mf_dynsym *syms, size_t n, const char *who,
		   const char *advice, char *err, size_t errlen);

#endif
