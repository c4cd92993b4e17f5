/*
 * unit.h - the few assertions the unit test programs need.
 *
 * A test program runs its checks, prints one line per failed check and a
 * summary, and exits 0 only when every check passed.
 */
#ifndef MF_UNIT_H
#define MF_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int unit_checks, unit_failures;

#define CHECK(cond)                                                              \
	do {                                                                     \
		unit_checks++;                                                   \
		if (!(cond)) {                                                   \
			unit_failures++;                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                \
		}                                                                \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                       \
	do {                                                                     \
		uint64_t ua_ = (uint64_t)(a), ub_ = (uint64_t)(b);               \
		unit_checks++;                                                   \
		if (ua_ != ub_) {                                                \
			unit_failures++;                                         \
			fprintf(stderr, "%s:%d: %s == %s: %" PRIu64 " != %" PRIu64 "\n", \
				__FILE__, __LINE__, #a, #b, ua_, ub_);           \
		}                                                                \
	} while (0)

#define CHECK_STR(a, b)                                                          \
	do {                                                                     \
		const char *sa_ = (a), *sb_ = (b);                               \
		unit_checks++;                                                   \
		if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) {       \
			unit_failures++;                                         \
			fprintf(stderr, "%s:%d: %s == %s: \"%s\" != \"%s\"\n",   \
				__FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)", \
				sb_ ? sb_ : "(null)");                           \
		}                                                                \
	} while (0)

static inline int unit_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, unit_checks, unit_failures);
	return unit_failures == 0 ? 0 : 1;
}

#endif
