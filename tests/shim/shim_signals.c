/*
 * shim_signals.c - signal handlers that call into the shim while their
 * thread is inside malloc/free (and inside the shim's own counting) neither
 * deadlock nor lose counts.
 *
 * POSIX does not allow malloc in a handler, but mmap/munmap are plain
 * system calls that the shim counts, and the API is callable: the handler
 * maps and unmaps a page and reads its scope. Worker threads loop on
 * malloc/free/mmap inside a scope while another thread sends them signals
 * as fast as it can. At the end each scope must hold exactly the worker's
 * own bytes plus one page each way per handled signal.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shimtest.h"

#define NWORKERS 4
/* Rounds per worker; the sanitizer runs pass fewer. */
static int rounds = 2000000;

static __thread volatile sig_atomic_t handled;
static __thread volatile sig_atomic_t handler_fail;
static int stop_signals;

static void on_signal(int sig)
{
	struct memfence_scope_stats s;
	void *m;

	(void)sig;
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		handler_fail = 2;
		return;
	}
	if (munmap(m, 4096) != 0) {
		handler_fail = 3;
		return;
	}
	free(NULL);
	if (memfence_scope_current(&s) != MEMFENCE_OK)
		handler_fail = 1;
	handled = handled + 1;
}

struct work {
	uint64_t alloc_bytes, free_bytes, handled;
	struct memfence_scope_stats scope;
	int fail;
};

static void *worker(void *arg)
{
	struct work *w = arg;
	void *keep[16] = {0};
	uint32_t x = 12345;

	sigset_t usr1;

	/* Signals count only once the scope is open: threads start with
	 * SIGUSR1 blocked (inherited from main). */
	memfence_scope_begin("busy", NULL, 0);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	for (int r = 0; r < rounds; r++) {
		int k = r & 15;
		size_t sz = (x = x * 1103515245u + 12345u) >> 20;
		if (keep[k] != NULL) {
			w->free_bytes += malloc_usable_size(keep[k]);
			free(keep[k]);
		}
		keep[k] = malloc(sz);
		w->alloc_bytes += malloc_usable_size(keep[k]);
		if ((r & 1023) == 0) {
			void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m != MAP_FAILED) {
				w->alloc_bytes += 8192;
				munmap(m, 8192);
				w->free_bytes += 8192;
			}
		}
	}
	for (int k = 0; k < 16; k++)
		if (keep[k] != NULL) {
			w->free_bytes += malloc_usable_size(keep[k]);
			free(keep[k]);
		}
	/* No more signals may land between reading the count and closing. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	w->handled = (uint64_t)handled;
	w->fail = handler_fail;
	memfence_scope_end(&w->scope);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return NULL;
}

struct target {
	pthread_t th[NWORKERS];
};

static void *signaller(void *arg)
{
	struct target *t = arg;
	unsigned long n = 0;

	while (!__atomic_load_n(&stop_signals, __ATOMIC_RELAXED)) {
		for (int i = 0; i < NWORKERS; i++)
			pthread_kill(t->th[i], SIGUSR1);
		n++;
		if ((n & 63) == 0)
			usleep(50);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct work w[NWORKERS] = {{0}};
	struct target t;
	struct memfence_process_stats p0, p1;
	struct sigaction sa = {0};
	pthread_t sig_th;
	uint64_t total_handled = 0;

	need_active();
	if (argc > 1)
		rounds = atoi(argv[1]);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	p0 = ps();
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_create(&t.th[i], NULL, worker, &w[i]) == 0);
	CHECK(pthread_create(&sig_th, NULL, signaller, &t) == 0);
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(t.th[i], NULL);
	__atomic_store_n(&stop_signals, 1, __ATOMIC_RELAXED);
	pthread_join(sig_th, NULL);
	for (int i = 0; i < NWORKERS; i++) {
		CHECK_EQ_U64(w[i].fail, 0);
		CHECK_EQ_U64(w[i].scope.allocated, w[i].alloc_bytes + 4096 * w[i].handled);
		CHECK_EQ_U64(w[i].scope.freed, w[i].free_bytes + 4096 * w[i].handled);
		CHECK_EQ_U64(w[i].scope.net, 0);
		total_handled += w[i].handled;
	}
	CHECK(total_handled > 100);
	printf("signals handled: %llu\n", (unsigned long long)total_handled);
	p1 = ps();
	/* thread control blocks of exited threads may stay cached */
	CHECK((int64_t)(p1.live - p0.live) < (1 << 20));
	return unit_done("shim_signals");
}
