/*
 * qlib.c - SQLite and hiredis for the store, loaded by soname when a store
 * is first opened (qstore.h says why).
 */
#ifdef MF_STORE_DLOPEN
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define MF_QLIB_IMPL
#include "host/dynlib.h"
#include "store/qstore.h"

struct mf_qlib mf_qlib;

#define MF_QLIB_SYM(f) {#f, (void **)&mf_qlib.f},

static int load(enum mf_dynlib lib, const struct mf_dynsym *syms, size_t n, char *err,
		size_t errlen)
{
	return mf_dynlib_need(lib, syms, n, "the quarantine store", " or pass --no-quarantine", err,
			      errlen) == 0 ? 0 : -ENOENT;
}

int mf_qlib_load(bool redis, char *err, size_t errlen)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int have_sqlite, have_redis;
	static const struct mf_dynsym sqlite[] = {MF_QLIB_SQLITE(MF_QLIB_SYM)};
	static const struct mf_dynsym hiredis[] = {MF_QLIB_REDIS(MF_QLIB_SYM)};
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (!have_sqlite) {
		rc = load(MF_DYNLIB_SQLITE, sqlite, sizeof(sqlite) / sizeof(sqlite[0]), err, errlen);
		have_sqlite = rc == 0;
	}
	if (rc == 0 && redis && !have_redis) {
		rc = load(MF_DYNLIB_HIREDIS, hiredis, sizeof(hiredis) / sizeof(hiredis[0]), err,
			  errlen);
		have_redis = rc == 0;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}
#endif
