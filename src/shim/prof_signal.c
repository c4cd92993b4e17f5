/*
 * prof_signal.c - SIGUSR2 writes a profile snapshot (MEMFENCE_PROFILE_SIGNAL,
 * set by `memfence profile`). A handler that interrupts the profiler on its
 * own thread does not wait for the lock that thread holds: it leaves the
 * snapshot pending, taken when the thread lets the lock go (prof.c).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "shim/prof_int.h"

static void on_signal(int sig)
{
	int e = errno;

	(void)sig;
	if (mf_prof_busy())
		mf_prof_st.pending = 1;
	else
		mf_prof_snapshot("signal");
	errno = e;
}

void mf_prof_signal_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
}
