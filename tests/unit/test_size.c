/*
 * test_size.c - sizes as people write them: what is accepted, what each
 * means, and what is refused with which reason.
 */
#include "base/size.h"
#include "unit.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define TiB (1ull << 40)

struct ok_case {
	const char *in;
	uint64_t base;
	uint64_t want;
};

struct bad_case {
	const char *in;
	uint64_t base;
	const char *why; /* the start of the reason */
};

static const struct ok_case ok[] = {
	{"0", 0, 0},
	{"1", 0, 1},
	{"1234", 0, 1234},
	{"007", 0, 7},
	{"1b", 0, 1},
	{"1B", 0, 1},
	{"1k", 0, KiB},
	{"1K", 0, KiB},
	{"1KB", 0, KiB},
	{"1kb", 0, KiB},
	{"1Ki", 0, KiB},
	{"1KiB", 0, KiB},
	{"1kib", 0, KiB},
	{"64K", 0, 64 * KiB},
	{"512M", 0, 512 * MiB},
	{"512MiB", 0, 512 * MiB},
	{"512mb", 0, 512 * MiB},
	{"2G", 0, 2 * GiB},
	{"2GiB", 0, 2 * GiB},
	{"2Gi", 0, 2 * GiB},
	{"1T", 0, TiB},
	{"1TiB", 0, TiB},
	/* fractions before a suffix */
	{"1.5G", 0, GiB + GiB / 2},
	{"0.5M", 0, MiB / 2},
	{".5M", 0, MiB / 2},
	{"1.25K", 0, 1280},
	{"2.0G", 0, 2 * GiB},
	/* a fraction of a byte is dropped */
	{"1.0001K", 0, 1024},
	/* digits past the ninth cannot change a byte count */
	{"1.0000000001G", 0, GiB},
	{"0.1K", 0, 102},
	/* percentages of the base */
	{"80%", 1000, 800},
	{"100%", 1000, 1000},
	{"0%", 1000, 0},
	{"12.5%", 1000, 125},
	{"5%", 256 * MiB, 256 * MiB / 20},
	{"0.1%", 1024, 1},
	{"100%", UINT64_MAX, UINT64_MAX},
	{"50%", UINT64_MAX, UINT64_MAX / 2},
	{"100.0%", 7, 7},
	/* the largest values that fit */
	{"18446744073709551615", 0, UINT64_MAX},
	{"18446744073709551610", 0, UINT64_MAX - 5},
	{"16777215T", 0, 16777215ull * TiB},
	{"17179869183G", 0, 17179869183ull * GiB},
	{"16777215.5T", 0, 16777215ull * TiB + TiB / 2},
};

static const struct bad_case bad[] = {
	{"", 0, "empty size"},
	{"M", 0, "a size starts with a number"},
	{"-5M", 0, "a size starts with a number"},
	{" 5M", 0, "a size starts with a number"},
	{"+5M", 0, "a size starts with a number"},
	{".", 0, "expected digits after the decimal point"},
	{"5.G", 0, "expected digits after the decimal point"},
	{"5.", 0, "expected digits after the decimal point"},
	{"5 M", 0, "unknown size suffix"},
	{"5M ", 0, "unknown size suffix"},
	{"5MM", 0, "unknown size suffix"},
	{"5X", 0, "unknown size suffix"},
	{"5P", 0, "unknown size suffix"},
	{"1e3M", 0, "unknown size suffix"},
	{"0x10M", 0, "unknown size suffix"},
	{"1,5G", 0, "unknown size suffix"},
	{"1.2.3M", 0, "unknown size suffix"},
	{"1.5", 0, "a byte count has no fraction"},
	{"1.5B", 0, "a byte count has no fraction"},
	{"80%", 0, "a percentage is not accepted here"},
	{"101%", 1000, "a percentage must be at most 100%"},
	{"100.5%", 1000, "a percentage must be at most 100%"},
	{"1000000000000000000000%", 1000, "size too large"},
	{"%", 1000, "a size starts with a number"},
	{"80 %", 1000, "unknown size suffix"},
	{"80%%", 1000, "unknown size suffix"},
	/* overflow, in digits and through the multiplier */
	{"18446744073709551616", 0, "size too large"},
	{"18446744073709551620", 0, "size too large"},
	{"99999999999999999999999", 0, "size too large"},
	{"16777216T", 0, "size too large"},
	{"17179869184G", 0, "size too large"},
	{"16777215.99999999999T", 0, NULL}, /* fits: just under 2^64 */
	{"18446744073709551615.5K", 0, "size too large"},
};

static void test_ok(void)
{
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 12345;
		const char *err = NULL;
		int rc = mf_size_parse(ok[i].in, ok[i].base, &v, &err);
		CHECK_EQ_U64(rc, 0);
		if (rc != 0)
			fprintf(stderr, "  '%s' refused: %s\n", ok[i].in, err);
		else if (v != ok[i].want)
			fprintf(stderr, "  '%s' (base %llu)\n", ok[i].in, (unsigned long long)ok[i].base);
		CHECK_EQ_U64(v, ok[i].want);
	}
}

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;
		const char *err = NULL;
		int rc = mf_size_parse(bad[i].in, bad[i].base, &v, &err);
		if (bad[i].why == NULL) {
			/* Boundary cases listed beside their refused neighbours. */
			CHECK_EQ_U64(rc, 0);
			continue;
		}
		CHECK_EQ_U64(rc, -1);
		if (rc != 0) {
			CHECK(err != NULL && strncmp(err, bad[i].why, strlen(bad[i].why)) == 0);
			if (err == NULL || strncmp(err, bad[i].why, strlen(bad[i].why)) != 0)
				fprintf(stderr, "  '%s': reason '%s', expected '%s'\n", bad[i].in,
					err ? err : "(none)", bad[i].why);
			/* A refused size leaves the output alone. */
			CHECK_EQ_U64(v, 12345);
		} else {
			fprintf(stderr, "  '%s' accepted as %llu\n", bad[i].in, (unsigned long long)v);
		}
	}
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
	test_ok();
	test_bad();
	test_format();
	test_format_like_printf();
	return unit_done("test_size");
}
