/*
 * dynlib.c - see dynlib.h.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "host/dynlib.h"

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
