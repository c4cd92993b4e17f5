/*
 * shim_suspend.c - a scope taken off its thread and put back (on another
 * thread), and failures reported by the program.
 *
 *   shim_suspend        under the shim
 *   shim_suspend off    without it: every call says accounting is off
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <string.h>

#include "shimtest.h"

static struct memfence_saved_scope saved;
static struct memfence_scope_stats ended;
static void *kept;

/* The second half of the request, on another thread. */
static void *resume_here(void *arg)
{
	(void)arg;
	CHECK(memfence_scope_resume(&saved) == MEMFENCE_OK);
	kept = malloc(3000);
	CHECK(kept != NULL);
	CHECK(memfence_scope_end(&ended) == MEMFENCE_OK);
	return NULL;
}

int main(int argc, char **argv)
{
	struct memfence_scope_stats s;
	struct memfence_process_stats p0, p1;
	pthread_t th;
	void *a, *b;

	if (argc > 1 && strcmp(argv[1], "off") == 0) {
		CHECK(memfence_scope_suspend(&saved) == MEMFENCE_EOFF);
		CHECK(memfence_scope_resume(&saved) == MEMFENCE_EOFF);
		CHECK(memfence_scope_mark_failed() == MEMFENCE_EOFF);
		return unit_done("shim_suspend off");
	}
	need_active();

	/* Nothing to suspend, nothing to resume. */
	CHECK(memfence_scope_suspend(&saved) == MEMFENCE_ENOSCOPE);
	CHECK(memfence_scope_resume(&saved) == MEMFENCE_ENOSCOPE);

	CHECK(memfence_scope_begin("req", "r-1", 0) == MEMFENCE_OK);
	a = malloc(1000);
	size_t ua = malloc_usable_size(a);
	CHECK(memfence_scope_suspend(&saved) == MEMFENCE_OK);
	/* Suspended: not counted in it, still in flight. */
	CHECK(memfence_scope_current(&s) == MEMFENCE_ENOSCOPE);
	b = malloc(5000);
	free(b);
	p0 = ps();
	CHECK_EQ_U64(p0.scopes_open, 1);
	CHECK(pthread_create(&th, NULL, resume_here, NULL) == 0);
	pthread_join(th, NULL);
	CHECK_EQ_U64(ended.allocated, ua + malloc_usable_size(kept));
	CHECK_EQ_U64(ended.net, ua + malloc_usable_size(kept));
	CHECK_EQ_U64(ended.calls, 2);
	CHECK_EQ_U64(ended.failed, 0);
	/* A resume empties the storage: it cannot be resumed twice. */
	CHECK(memfence_scope_resume(&saved) == MEMFENCE_ENOSCOPE);
	free(a);
	free(kept);

	/* A suspended budget does not apply; a resumed one does again. */
	CHECK(memfence_scope_begin("tight", "r-2", 4096) == MEMFENCE_OK);
	CHECK(memfence_scope_suspend(&saved) == MEMFENCE_OK);
	a = malloc(1 << 20);
	CHECK(a != NULL);
	free(a);
	CHECK(memfence_scope_resume(&saved) == MEMFENCE_OK);
	errno = 0;
	a = malloc(1 << 20);
	CHECK(a == NULL && errno == ENOMEM);
	/* Nested: only the innermost is taken off. */
	CHECK(memfence_scope_begin("inner", "r-3", 0) == MEMFENCE_OK);
	CHECK(memfence_scope_suspend(&saved) == MEMFENCE_OK);
	CHECK(memfence_scope_current(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.failed, 1); /* the outer one, "tight" */
	CHECK(memfence_scope_resume(&saved) == MEMFENCE_OK);
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);

	/* A failure the shim could not see, reported by the program. */
	p0 = ps();
	CHECK(memfence_scope_begin("torch", "r-4", 0) == MEMFENCE_OK);
	CHECK(memfence_scope_mark_failed() == MEMFENCE_OK);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.failed, 1);
	p1 = ps();
	CHECK_EQ_U64(p1.failed_alloc - p0.failed_alloc, 1);
	CHECK_EQ_U64(p1.scopes_open, 0);
	return unit_done("shim_suspend");
}
