/*
 * test_size.c - sizes as people write them: what is accepted, what each
 * means, and what is refused with which reason (tests/data/sizes.tsv), and
 * how sizes are printed.
 */
#include "base/size.h"
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define TiB (1ull << 40)

/* The cases, shared with the Python package's test (tests/python/test_size.py). */
#ifndef MF_TEST_DATA
#define MF_TEST_DATA "tests/data"
#endif

/*
 * One line of sizes.tsv, input quoted so that spaces show:
 *   "1.5G"	0	1610612736
 *   " 5M"	0	error: a size starts with a number
 */
static int parse_line(char *line, char **in, uint64_t *base, char **want)
{
	char *q, *tab, *end;

	if (line[0] != '"' || (q = strchr(line + 1, '"')) == NULL || q[1] != '\t')
		return -1;
	*q = '\0';
	*in = line + 1;
	errno = 0;
	*base = strtoull(q + 2, &end, 10);
	if (errno != 0 || end == q + 2 || *end != '\t')
		return -1;
	*want = end + 1;
	if ((tab = strchr(*want, '\n')) != NULL)
		*tab = '\0';
	return 0;
}

static void test_cases(void)
{
	char line[512];
	int n = 0, lineno = 0;
	FILE *f = fopen(MF_TEST_DATA "/sizes.tsv", "re");

	CHECK(f != NULL);
	if (f == NULL) {
		fprintf(stderr, "  %s/sizes.tsv: %s\n", MF_TEST_DATA, strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *in, *want;
		uint64_t base, v = 12345;
		const char *err = NULL;
		int rc;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (parse_line(line, &in, &base, &want) != 0) {
			fprintf(stderr, "  sizes.tsv:%d: not \"INPUT\"<tab>BASE<tab>WANT\n", lineno);
			CHECK(0);
			continue;
		}
		n++;
		rc = mf_size_parse(in, base, &v, &err);
		if (strncmp(want, "error: ", 7) == 0) {
			const char *why = want + 7;

			CHECK_EQ_U64(rc, -1);
			if (rc == 0) {
				fprintf(stderr, "  '%s' accepted as %llu\n", in, (unsigned long long)v);
				continue;
			}
			CHECK(err != NULL && strncmp(err, why, strlen(why)) == 0);
			if (err == NULL || strncmp(err, why, strlen(why)) != 0)
				fprintf(stderr, "  '%s': reason '%s', expected '%s'\n", in,
					err ? err : "(none)", why);
			/* A refused size leaves the output alone. */
			CHECK_EQ_U64(v, 12345);
		} else {
			uint64_t expect = strtoull(want, NULL, 10);

			CHECK_EQ_U64(rc, 0);
			if (rc != 0)
				fprintf(stderr, "  '%s' refused: %s\n", in, err);
			else if (v != expect)
				fprintf(stderr, "  '%s' (base %llu)\n", in, (unsigned long long)base);
			CHECK_EQ_U64(v, expect);
		}
	}
	fclose(f);
	/* A file cut short must not pass for a few good lines. */
	CHECK(n >= 75);
	const char *err = NULL;
	uint64_t v;
	CHECK_EQ_U64(mf_size_parse(NULL, 0, &v, &err), -1);
	CHECK_STR(err, "empty size");
}

/* What mf_size_format printed with snprintf, before it was written by hand
 * for the shim: the reference it must still agree with. */
static void printf_format(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	unsigned u = 0;
	uint64_t scale = 1;

	while (u + 1 < 7 && bytes / scale >= 1024) {
		scale <<= 10;
		u++;
	}
	if (u > 0 && u + 1 < 7 && bytes % scale != 0 && (double)bytes / (double)scale >= 1023.95) {
		scale <<= 10;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else if (bytes % scale == 0)
		snprintf(buf, len, "%llu %s", (unsigned long long)(bytes / scale), units[u]);
	else
		snprintf(buf, len, "%.1f %s", (double)bytes / (double)scale, units[u]);
}

static void check_like_printf(uint64_t v)
{
	char got[32], want[32];

	mf_size_format(v, got, sizeof(got));
	printf_format(v, want, sizeof(want));
	if (strcmp(got, want) != 0)
		fprintf(stderr, "mf_size_format(%" PRIu64 "): \"%s\", printf: \"%s\"\n", v, got, want);
	CHECK(strcmp(got, want) == 0);
}

static void test_format_like_printf(void)
{
	uint64_t x = 88172645463325252ull;

	/* Around every power of two (unit edges, ties of the tenth: 2304 is
	 * 2.25 KiB, printed "2.2"), then pseudo-random values of every
	 * magnitude below 2^53, where the quotient printf rounds is exact. */
	for (int b = 0; b < 64; b++)
		for (int64_t d = -300; d <= 300; d++)
			check_like_printf((1ull << b) + (uint64_t)d);
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check_like_printf(x >> (11 + i % 53));
	}
	check_like_printf(2304);
	check_like_printf(UINT64_MAX);
}

static void test_format(void)
{
	char buf[32];

	CHECK_STR(mf_size_format(0, buf, sizeof(buf)), "0 B");
	CHECK_STR(mf_size_format(1023, buf, sizeof(buf)), "1023 B");
	CHECK_STR(mf_size_format(1024, buf, sizeof(buf)), "1 KiB");
	CHECK_STR(mf_size_format(1536, buf, sizeof(buf)), "1.5 KiB");
	CHECK_STR(mf_size_format(256 * MiB, buf, sizeof(buf)), "256 MiB");
	CHECK_STR(mf_size_format(GiB + GiB / 2, buf, sizeof(buf)), "1.5 GiB");
	CHECK_STR(mf_size_format(3 * TiB, buf, sizeof(buf)), "3 TiB");
	CHECK_STR(mf_size_format(1ull << 60, buf, sizeof(buf)), "1 EiB");
	/* Just under a unit, the rounding must not print "1024.0 KiB". */
	CHECK_STR(mf_size_format(MiB - 1, buf, sizeof(buf)), "1.0 MiB");
	CHECK_STR(mf_size_format(MiB + 1, buf, sizeof(buf)), "1.0 MiB");
	CHECK_STR(mf_size_format(UINT64_MAX, buf, sizeof(buf)), "16.0 EiB");
	/* A small buffer is cut, never overrun. */
	char small[4] = "xxx";
	mf_size_format(256 * MiB, small, sizeof(small));
	CHECK_STR(small, "256");

	/* What is printed parses back to what was printed from. */
	static const uint64_t round[] = {0, 1, 1023, 1024, 64 * KiB, 512 * MiB, 2 * GiB, 5 * TiB};
	for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
		char s[32], compact[32];
		size_t k = 0;
		uint64_t back;
		const char *err;
		mf_size_format(round[i], s, sizeof(s));
		for (const char *p = s; *p; p++)
			if (*p != ' ')
				compact[k++] = *p;
		compact[k] = '\0';
		CHECK_EQ_U64(mf_size_parse(compact, 0, &back, &err), 0);
		CHECK_EQ_U64(back, round[i]);
	}
}

int main(void)
{
	test_cases();
	test_format();
	test_format_like_printf();
	return unit_done("test_size");
}
