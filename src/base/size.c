/*
 * size.c - memory sizes as people write them.
 *
 * Shim-safe: libc only, no allocation. Parsing is done by hand rather than
 * with strtod so that "1e3M", "0x10M", " 5M" and locale decimal commas are
 * refused instead of silently meaning something else.
 */
#include "base/size.h"

#include <string.h>
#include <strings.h>

static int digit(char c)
{
	return c >= '0' && c <= '9';
}

int mf_size_parse(const char *s, uint64_t percent_base, uint64_t *out, const char **err)
{
	uint64_t whole = 0, frac = 0, frac_div = 1, mult = 1;
	const char *p = s;
	int ndigits = 0;

	if (s == NULL || *s == '\0') {
		*err = "empty size";
		return -1;
	}
	for (; digit(*p); p++, ndigits++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (whole > (UINT64_MAX - d) / 10) {
			*err = "size too large";
			return -1;
		}
		whole = whole * 10 + d;
	}
	if (*p == '.') {
		p++;
		if (!digit(*p)) {
			*err = "expected digits after the decimal point";
			return -1;
		}
		for (; digit(*p); p++, ndigits++) {
			/* Digits past the ninth cannot change a byte count. */
			if (frac_div < 1000000000u) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_div *= 10;
			}
		}
	}
	if (ndigits == 0) {
		*err = "a size starts with a number (e.g. 512M, 2GiB, 80%)";
		return -1;
	}

	if (strcmp(p, "%") == 0) {
		if (percent_base == 0) {
			*err = "a percentage is not accepted here";
			return -1;
		}
		if (whole > 100 || (whole == 100 && frac != 0)) {
			*err = "a percentage must be at most 100%";
			return -1;
		}
		/* base * (whole + frac/frac_div) / 100 without overflow:
		 * whole <= 100 and frac_div <= 1e9. */
		unsigned __int128 v = (unsigned __int128)percent_base * (whole * frac_div + frac);
		v /= (unsigned __int128)frac_div * 100u;
		*out = (uint64_t)v;
		return 0;
	}

	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{"", 1},
		{"b", 1},
		{"k", 1ull << 10}, {"kb", 1ull << 10}, {"ki", 1ull << 10}, {"kib", 1ull << 10},
		{"m", 1ull << 20}, {"mb", 1ull << 20}, {"mi", 1ull << 20}, {"mib", 1ull << 20},
		{"g", 1ull << 30}, {"gb", 1ull << 30}, {"gi", 1ull << 30}, {"gib", 1ull << 30},
		{"t", 1ull << 40}, {"tb", 1ull << 40}, {"ti", 1ull << 40}, {"tib", 1ull << 40},
	};
	size_t i;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(p, units[i].suffix) == 0) {
			mult = units[i].mult;
			break;
		}
	}
	if (i == sizeof(units) / sizeof(units[0])) {
		*err = "unknown size suffix (use K, M, G, T, KiB, MiB, GiB, TiB or %)";
		return -1;
	}
	if (mult == 1 && frac != 0) {
		*err = "a byte count has no fraction";
		return -1;
	}
	if (whole > UINT64_MAX / mult) {
		*err = "size too large";
		return -1;
	}
	uint64_t v = whole * mult;
	uint64_t f = (uint64_t)((unsigned __int128)frac * mult / frac_div);
	if (v > UINT64_MAX - f) {
		*err = "size too large";
		return -1;
	}
	*out = v + f;
	return 0;
}

/* Appends to a buffer of len bytes, cutting (never overrunning) as
 * snprintf would; the text stays NUL-terminated. */
struct fmt {
	char *buf;
	size_t len, n;
};

static void put_str(struct fmt *f, const char *s)
{
	for (; *s != '\0'; s++)
		if (f->n + 1 < f->len)
			f->buf[f->n++] = *s;
	if (f->len != 0)
		f->buf[f->n] = '\0';
}

const char *mf_u64_dec(uint64_t v, char buf[MF_U64_DEC_LEN])
{
	int i = MF_U64_DEC_LEN - 1;

	buf[i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return buf + i;
}

static void put_u64(struct fmt *f, uint64_t v)
{
	char tmp[MF_U64_DEC_LEN];

	put_str(f, mf_u64_dec(v, tmp));
}

/*
 * By hand, not with snprintf: this file is part of the shim, which must not
 * reach stdio. One decimal is printed as printf's "%.1f" prints the exact
 * quotient: to the nearest tenth, a tie to the even tenth (2304 bytes are
 * "2.2 KiB").
 */
char *mf_size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	struct fmt f = {buf, len, 0};
	unsigned u = 0;
	uint64_t scale = 1;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes / scale >= 1024) {
		scale <<= 10;
		u++;
	}
	/* 1048575 bytes is "1.0 MiB", not "1024.0 KiB". */
	if (u > 0 && u + 1 < sizeof(units) / sizeof(units[0]) && bytes % scale != 0 &&
	    (double)bytes / (double)scale >= 1023.95) {
		scale <<= 10;
		u++;
	}
	if (u == 0 || bytes % scale == 0) {
		put_u64(&f, bytes / scale);
	} else {
		unsigned __int128 x = (unsigned __int128)bytes * 10;
		uint64_t tenths = (uint64_t)(x / scale), rest = (uint64_t)(x % scale);

		if (rest > scale - rest || (rest == scale - rest && (tenths & 1) != 0))
			tenths++;
		put_u64(&f, tenths / 10);
		put_str(&f, ".");
		put_u64(&f, tenths % 10);
	}
	put_str(&f, " ");
	put_str(&f, units[u]);
	return buf;
}
