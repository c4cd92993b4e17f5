/*
 * dynlib.c - see dynlib.h.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "host/dynlib.h"

/* The Makefile passes the sonames of the libraries the build found; these
 * are Debian 12's, for a build that did not say. */
#ifndef MF_MICROHTTPD_SONAME
#define MF_MICROHTTPD_SONAME "libmicrohttpd.so.12"
#endif
#ifndef MF_SQLITE_SONAME
#define MF_SQLITE_SONAME "libsqlite3.so.0"
#endif
#ifndef MF_HIREDIS_SONAME
#define MF_HIREDIS_SONAME "libhiredis.so.0.14"
#endif
#ifndef MF_CURL_SONAME
#define MF_CURL_SONAME "libcurl.so.4"
#endif
#ifndef MF_ZLIB_SONAME
#define MF_ZLIB_SONAME "libz.so.1"
#endif

static const char *const sonames[MF_DYNLIB_COUNT] = {
	[MF_DYNLIB_MICROHTTPD] = MF_MICROHTTPD_SONAME,
	[MF_DYNLIB_SQLITE] = MF_SQLITE_SONAME,
	[MF_DYNLIB_HIREDIS] = MF_HIREDIS_SONAME,
	[MF_DYNLIB_CURL] = MF_CURL_SONAME,
	[MF_DYNLIB_ZLIB] = MF_ZLIB_SONAME,
};

/* Debian 12's package of each, for the message of a library missing. */
static const char *const packages[MF_DYNLIB_COUNT] = {
	[MF_DYNLIB_MICROHTTPD] = "libmicrohttpd12",
	[MF_DYNLIB_SQLITE] = "libsqlite3-0",
	[MF_DYNLIB_HIREDIS] = "libhiredis0.14",
	[MF_DYNLIB_CURL] = "libcurl4",
	[MF_DYNLIB_ZLIB] = "zlib1g",
};

const char *mf_dynlib_soname(enum mf_dynlib lib)
{
	return (unsigned)lib < MF_DYNLIB_COUNT ? sonames[lib] : "?";
}

int mf_dynlib_load(const char *soname, const struct mf_dynsym *syms, size_t n, char *err,
		   size_t errlen)
{
	/* RTLD_NODELETE: a resolved address stays valid whatever else the
	 * process loads or unloads. */
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	const char *why;

	if (h == NULL) {
		why = dlerror();
		snprintf(err, errlen, "cannot load %s (%s)", soname, why ? why : "not found");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		*syms[i].addr = dlsym(h, syms[i].name);
		if (*syms[i].addr == NULL) {
			snprintf(err, errlen, "%s has no function %s: not the library memfence was "
				 "built for", soname, syms[i].name);
			return -1;
		}
	}
	return 0;
}

int mf_dynlib_need(enum mf_dynlib lib, const struct mf_dynsym *syms, size_t n, const char *who,
		   const char *advice, char *err, size_t errlen)
{
	char why[512];

	if (mf_dynlib_load(mf_dynlib_soname(lib), syms, n, why, sizeof(why)) == 0)
		return 0;
	snprintf(err, errlen, "%s needs %s: %s; install it (Debian: %s)%s", who,
		 mf_dynlib_soname(lib), why, (unsigned)lib < MF_DYNLIB_COUNT ? packages[lib] : "?",
		 advice ? advice : "");
	return -1;
}
