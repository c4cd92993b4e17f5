/*
 * test_seqlock.c - the segment's seqlock helpers (base/segment.h): a copy
 * is stable only when no write began, was in progress or ended while it
 * was taken; a writer that died mid-update leaves every copy torn.
 */
#include <pthread.h>
#include <time.h>

#include "base/segment.h"
#include "unit.h"

static void test_sequences(void)
{
	uint64_t seq = 0, s, end;

	s = mf_seq_read_begin(&seq);
	CHECK(mf_seq_read_ok(&seq, s));

	/* A write in progress: odd, and no copy is stable. */
	end = mf_seq_write_begin(&seq);
	CHECK_EQ_U64(seq, 1);
	CHECK(!mf_seq_read_ok(&seq, s));
	s = mf_seq_read_begin(&seq);
	CHECK(!mf_seq_read_ok(&seq, s));
	mf_seq_write_end(&seq, end);
	CHECK_EQ_U64(seq, 2);
	/* Begun during the write: torn even though the write has ended. */
	CHECK(!mf_seq_read_ok(&seq, s));
	s = mf_seq_read_begin(&seq);
	CHECK(mf_seq_read_ok(&seq, s));

	/* A whole write between begin and the check. */
	end = mf_seq_write_begin(&seq);
	mf_seq_write_end(&seq, end);
	CHECK(!mf_seq_read_ok(&seq, s));

	/* A writer that died mid-update. */
	(void)mf_seq_write_begin(&seq);
	s = mf_seq_read_begin(&seq);
	CHECK(!mf_seq_read_ok(&seq, s));
}

/* A writer keeps two words equal; a reader must never accept a copy in
 * which they differ. */
static struct {
	uint64_t seq;
	uint64_t a, b;
} shared;
static int stop;

static uint64_t written;

/* Writes until the reader says stop: a writer that ran to a fixed count
 * could be done before a busy machine ever scheduled the reader. */
static void *writer(void *arg)
{
	(void)arg;
	for (uint64_t i = 1; !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
		uint64_t end = mf_seq_write_begin(&shared.seq);
		__atomic_store_n(&shared.a, i, __ATOMIC_RELAXED);
		__atomic_store_n(&shared.b, i, __ATOMIC_RELAXED);
		mf_seq_write_end(&shared.seq, end);
		__atomic_store_n(&written, i, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_concurrent(void)
{
	pthread_t th;
	uint64_t stable = 0, torn = 0;
	time_t until = time(NULL) + 20;

	CHECK(pthread_create(&th, NULL, writer, NULL) == 0);
	/* Read while the writer writes: at least 10^5 stable copies taken
	 * after it wrote 10^5 times (so that the two really overlapped), at
	 * most 20 s should the machine be starved. */
	for (uint64_t i = 0;; i++) {
		uint64_t s = mf_seq_read_begin(&shared.seq);
		uint64_t a = __atomic_load_n(&shared.a, __ATOMIC_RELAXED);
		uint64_t b = __atomic_load_n(&shared.b, __ATOMIC_RELAXED);
		if (!mf_seq_read_ok(&shared.seq, s)) {
			torn++;
		} else {
			stable++;
			if (a != b) {
				CHECK(a == b);
				break;
			}
		}
		if ((i & 0xffff) == 0 &&
		    ((stable >= 100000 && __atomic_load_n(&written, __ATOMIC_RELAXED) >= 100000) ||
		     time(NULL) > until))
			break;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	CHECK(stable > 0);
	CHECK(__atomic_load_n(&written, __ATOMIC_RELAXED) > 0);
	printf("seqlock: %llu stable copies, %llu torn, %llu writes\n", (unsigned long long)stable,
	       (unsigned long long)torn, (unsigned long long)written);
}

int main(void)
{
	test_sequences();
	test_concurrent();
	return unit_done("test_seqlock");
}
