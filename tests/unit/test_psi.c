/*
 * test_psi.c - the memory.pressure parser and reader.
 */
#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "host/psi.h"

#define NEAR(a, b) ((a) - (b) < 0.001 && (b) - (a) < 0.001)

static void test_parse(void)
{
	struct mf_psi p;
	const char *why = NULL;

	CHECK(mf_psi_parse("some avg10=0.00 avg60=1.02 avg300=0.94 total=4333005\n"
			   "full avg10=12.50 avg60=0.83 avg300=100.00 total=3518193\n",
			   &p, &why) == 0);
	CHECK(NEAR(p.some.avg10, 0.0) && NEAR(p.some.avg60, 1.02) && NEAR(p.some.avg300, 0.94));
	CHECK_EQ_U64(p.some.total_us, 4333005);
	CHECK(p.has_full);
	CHECK(NEAR(p.full.avg10, 12.5) && NEAR(p.full.avg60, 0.83) && NEAR(p.full.avg300, 100.0));
	CHECK_EQ_U64(p.full.total_us, 3518193);

	/* Kernels before 5.x had only the some line. */
	CHECK(mf_psi_parse("some avg10=3.00 avg60=2.00 avg300=1.00 total=7\n", &p, &why) == 0);
	CHECK(!p.has_full && NEAR(p.some.avg10, 3.0) && p.full.total_us == 0);

	/* Garbage is refused with a reason. */
	static const char *const bad[] = {
		"", "full avg10=1.00 avg60=1.00 avg300=1.00 total=1\n",
		"some avg10=x avg60=1.00 avg300=1.00 total=1\n", "some avg10=1.00 total=1\n",
		"some avg10=1.00 avg60=1.00 avg300=1.00 total=\n",
		"some avg10=1.00 avg60=1.00 avg300=1.00 total=12abc\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		CHECK(mf_psi_parse(bad[i], &p, &why) == -1);
		CHECK(why != NULL);
	}
}

/* A decimal comma in the locale must not change what is read. */
static void test_locale(void)
{
	struct mf_psi p;
	const char *why;

	if (!setlocale(LC_NUMERIC, "de_DE.UTF-8"))
		setlocale(LC_NUMERIC, "fr_FR.UTF-8");
	CHECK(mf_psi_parse("some avg10=41.83 avg60=0.00 avg300=0.00 total=1\n", &p, &why) == 0);
	CHECK(NEAR(p.some.avg10, 41.83));
	setlocale(LC_NUMERIC, "C");
}

static void test_read(void)
{
	char dir[] = "/tmp/test_psi.XXXXXX", path[64];
	struct mf_psi p;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	CHECK(mf_psi_read(dir, &p) == -ENOENT);
	snprintf(path, sizeof(path), "%s/memory.pressure", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("some avg10=5.00 avg60=4.00 avg300=3.00 total=99\n"
	      "full avg10=2.00 avg60=1.00 avg300=0.50 total=42\n", f);
	fclose(f);
	CHECK(mf_psi_read(dir, &p) == 0);
	CHECK(NEAR(p.full.avg10, 2.0));
	CHECK_EQ_U64(p.full.total_us, 42);
	f = fopen(path, "w");
	fputs("junk\n", f);
	fclose(f);
	CHECK(mf_psi_read(dir, &p) == -EINVAL);
	unlink(path);
	rmdir(dir);

	/* The system-wide file has the same format: where this machine has
	 * PSI, the parser takes the real thing. */
	f = fopen("/proc/pressure/memory", "r");
	if (f) {
		char buf[512];
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		const char *why;

		fclose(f);
		buf[n] = '\0';
		CHECK(mf_psi_parse(buf, &p, &why) == 0);
		CHECK(p.has_full && p.some.avg10 <= 100.0 && p.full.total_us <= p.some.total_us);
	}
}

int main(void)
{
	test_parse();
	test_locale();
	test_read();
	return unit_done("test_psi");
}
