/*
 * test_shim_config.c - the shim's specs, parsed as functions: MEMFENCE_FAULT
 * terms, the zero-collateral lines of MEMFENCE_PRESSURE, scope globs, the
 * boolean words of every MEMFENCE_* flag.
 */
#include <errno.h>

#include "base/env.h"
#include "shim/config.h"
#include "unit.h"

#define MiB (1ull << 20)

static void test_fault_ok(void)
{
	struct mf_fault f;
	const char *err = NULL;

	CHECK(mf_fault_parse("nth=3,scope=req*", &f, &err) == 0);
	CHECK(f.alloc_on && f.nth == 3 && f.every == 0 && !f.after_set);
	CHECK_STR(f.scope, "req*");
	CHECK(f.thread_errno == 0);

	CHECK(mf_fault_parse("every=4", &f, &err) == 0);
	CHECK(f.alloc_on && f.every == 4 && f.scope[0] == '\0');

	CHECK(mf_fault_parse("after=1M,size>=64K", &f, &err) == 0);
	CHECK(f.alloc_on && f.after_set);
	CHECK_EQ_U64(f.after, MiB);
	CHECK_EQ_U64(f.min_size, 64 << 10);

	/* size>= alone: every allocation that large fails. */
	CHECK(mf_fault_parse("size>=1M", &f, &err) == 0);
	CHECK(f.alloc_on && f.nth == 0 && f.every == 0 && !f.after_set);

	/* thread= alone configures no allocation fault. */
	CHECK(mf_fault_parse("thread=EAGAIN,scope=spawn", &f, &err) == 0);
	CHECK(!f.alloc_on && f.thread_errno == EAGAIN);
	CHECK(mf_fault_parse("thread=EPERM", &f, &err) == 0 && f.thread_errno == EPERM);
	CHECK(mf_fault_parse("thread=ENOMEM", &f, &err) == 0 && f.thread_errno == ENOMEM);
	CHECK(mf_fault_parse("thread=22", &f, &err) == 0 && f.thread_errno == 22);

	/* Empty terms are skipped. */
	CHECK(mf_fault_parse(",,nth=1,", &f, &err) == 0 && f.nth == 1);
	CHECK(mf_fault_parse("", &f, &err) == 0 && !f.alloc_on);
}

static void check_bad(const char *spec, const char *why)
{
	struct mf_fault f;
	const char *err = NULL;

	memset(&f, 0x5a, sizeof(f));
	CHECK(mf_fault_parse(spec, &f, &err) == -1);
	CHECK(err != NULL && strncmp(err, why, strlen(why)) == 0);
	if (err != NULL && strncmp(err, why, strlen(why)) != 0)
		fprintf(stderr, "  %s: \"%s\"\n", spec, err);
	/* Nothing half-configured is left behind. */
	CHECK(!f.alloc_on && f.thread_errno == 0 && f.scope[0] == '\0');
}

static void test_fault_bad(void)
{
	check_bad("nth", "a term has no '='");
	check_bad("nth=x", "nth= and every= take a count");
	check_bad("nth=0", "nth= and every= take a count");
	check_bad("every=", "nth= and every= take a count");
	check_bad("nth=3,bogus=1", "unknown term");
	check_bad("after=12Q", "unknown size suffix");
	check_bad("size>=", "empty size");
	check_bad("thread=EBOGUS", "thread= takes");
	check_bad("thread=0", "thread= takes");
	check_bad("thread=4096", "thread= takes");
	check_bad("scope=", "scope= takes");
	check_bad("scope=0123456789012345678901234567890123456789012345678901234567890123",
		  "scope= takes");
}

static void test_pressure_lines(void)
{
	struct mf_lines l = {1, 1, 1};
	const char *err = NULL;

	/* Default: a quarter of the limit as guard, hard halfway to it, last
	 * halfway from hard to the limit. */
	CHECK(mf_pressure_lines(512 * MiB, NULL, &l, &err) == 0);
	CHECK_EQ_U64(l.soft, 384 * MiB);
	CHECK_EQ_U64(l.hard, 448 * MiB);
	CHECK_EQ_U64(l.last, 480 * MiB);
	CHECK(mf_pressure_lines(512 * MiB, "", &l, &err) == 0);
	CHECK_EQ_U64(l.soft, 384 * MiB);
	/* No limit known and none given: off. */
	CHECK(mf_pressure_lines(0, NULL, &l, &err) == 0);
	CHECK(l.soft == 0 && l.hard == 0 && l.last == 0);

	/* Given: hard halfway between it and the limit. */
	CHECK(mf_pressure_lines(512 * MiB, "256M", &l, &err) == 0);
	CHECK_EQ_U64(l.soft, 256 * MiB);
	CHECK_EQ_U64(l.hard, 384 * MiB);
	CHECK_EQ_U64(l.last, 448 * MiB);
	CHECK(mf_pressure_lines(1000, "80%", &l, &err) == 0);
	CHECK_EQ_U64(l.soft, 800);
	CHECK_EQ_U64(l.hard, 900);
	CHECK_EQ_U64(l.last, 950);
	/* At or above the limit (or with none): a sixteenth above, the last a
	 * thirty-second above that. */
	CHECK(mf_pressure_lines(0, "256M", &l, &err) == 0);
	CHECK_EQ_U64(l.soft, 256 * MiB);
	CHECK_EQ_U64(l.hard, 272 * MiB);
	CHECK_EQ_U64(l.last, 280 * MiB);
	CHECK(mf_pressure_lines(128 * MiB, "2G", &l, &err) == 0);
	CHECK_EQ_U64(l.hard, 2048 * MiB + 128 * MiB);

	/* Off, in every spelling. */
	const char *off[] = {"off", "0", "0%", "0M"};
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		l = (struct mf_lines){1, 1, 1};
		CHECK(mf_pressure_lines(512 * MiB, off[i], &l, &err) == 0);
		CHECK(l.soft == 0 && l.hard == 0 && l.last == 0);
	}

	/* Refused: the policy stays off. */
	l = (struct mf_lines){1, 1, 1};
	CHECK(mf_pressure_lines(512 * MiB, "lots", &l, &err) == -1);
	CHECK(l.soft == 0 && l.hard == 0 && l.last == 0);
	CHECK(mf_pressure_lines(0, "80%", &l, &err) == -1);
	CHECK_STR(err, "a percentage is not accepted here");
}

static void test_glob(void)
{
	CHECK(mf_glob("req*", "request"));
	CHECK(mf_glob("req*", "req"));
	CHECK(!mf_glob("req*", "re"));
	CHECK(mf_glob("*", ""));
	CHECK(mf_glob("a?c", "abc"));
	CHECK(!mf_glob("a?c", "ac"));
	CHECK(mf_glob("*.jpg", "x.y.jpg"));
	CHECK(!mf_glob("*.jpg", "x.jpg.png"));
	CHECK(mf_glob("job", "job"));
	CHECK(!mf_glob("job", "jobs"));
}

/* One boolean reading for every MEMFENCE_* flag, shim and command. */
static void test_env_bool(void)
{
	static const char *const yes[] = {"1", "true", "yes", "on", "TRUE", "On", "YES"};
	static const char *const no[] = {"0", "false", "no", "off", "OFF", "False"};
	static const char *const bad[] = {"", "garbage", "2", "10", "y", "n", "onn", "of",
					  " 1", "1 ", "true\n", "-1"};
	int v;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		v = -1;
		CHECK(mf_env_bool(yes[i], &v) == 0 && v == 1);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		v = -1;
		CHECK(mf_env_bool(no[i], &v) == 0 && v == 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		CHECK(mf_env_bool(bad[i], &v) == -EINVAL && v == 7);
	}
	CHECK(mf_env_bool(NULL, &v) == -EINVAL);
}

int main(void)
{
	test_env_bool();
	test_fault_ok();
	test_fault_bad();
	test_pressure_lines();
	test_glob();
	return unit_done("test_shim_config");
}
