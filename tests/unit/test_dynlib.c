/*
 * test_dynlib.c - a library loaded by soname when first needed: its
 * functions resolved, and an error that names what is missing.
 */
#include <string.h>

#include "host/dynlib.h"
#include "unit.h"

static void test_loads(void)
{
	const char *(*version)(void) = NULL;
	const struct mf_dynsym syms[] = {{"zlibVersion", (void **)&version}};
	char err[256] = "";

	CHECK_EQ_U64(mf_dynlib_load("libz.so.1", syms, 1, err, sizeof(err)), 0);
	CHECK(version != NULL && version()[0] != '\0');
	/* A second load finds it loaded: the same function. */
	const char *(*again)(void) = NULL;
	const struct mf_dynsym syms2[] = {{"zlibVersion", (void **)&again}};
	CHECK_EQ_U64(mf_dynlib_load("libz.so.1", syms2, 1, err, sizeof(err)), 0);
	CHECK(again == version);
}

static void test_errors(void)
{
	void *fn = NULL;
	const struct mf_dynsym missing[] = {{"mf_no_such_function", &fn}};
	char err[256] = "";

	CHECK(mf_dynlib_load("libmemfence-no-such-library.so.9", missing, 1, err, sizeof(err)) < 0);
	CHECK(strstr(err, "cannot load libmemfence-no-such-library.so.9") != NULL);
	err[0] = '\0';
	CHECK(mf_dynlib_load("libz.so.1", missing, 1, err, sizeof(err)) < 0);
	CHECK(strstr(err, "libz.so.1 has no function mf_no_such_function") != NULL);
}

/* The message a person reads: who needs what, why, and what to install. */
static void test_need(void)
{
	void *fn = NULL;
	const struct mf_dynsym missing[] = {{"mf_no_such_function", &fn}};
	char err[512] = "";

	CHECK(mf_dynlib_need(MF_DYNLIB_ZLIB, missing, 1, "a pprof profile", " or not", err,
			     sizeof(err)) < 0);
	CHECK(strstr(err, "a pprof profile needs libz.so.1: libz.so.1 has no function "
			  "mf_no_such_function") != NULL);
	CHECK(strstr(err, "; install it (Debian: zlib1g) or not") != NULL);
}

int main(void)
{
	test_loads();
	test_errors();
	test_need();
	return unit_done("test_dynlib");
}
