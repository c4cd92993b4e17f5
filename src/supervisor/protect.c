/*
 * protect.c - keep the supervisor alive and resident while its program is
 * at the limit: oom_score_adj -1000 (the kernel's OOM killer spares it,
 * even in a group kill under memory.oom.group) and locked memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/size.h"
#include "host/msg.h"
#include "supervisor/supervisor.h"

static void oom_protect(struct sup *s)
{
	char buf[32];
	int fd, n, got = 0;

	s->oom_adj_orig = 0;
	fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(s->st.oom_adj_note, sizeof(s->st.oom_adj_note),
			 "cannot open /proc/self/oom_score_adj: %s", strerror(errno));
		return;
	}
	n = (int)read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		s->oom_adj_orig = atoi(buf);
	}
	if (pwrite(fd, "-1000", 5, 0) != 5) {
		snprintf(s->st.oom_adj_note, sizeof(s->st.oom_adj_note),
			 "oom_score_adj -1000 refused (%s; needs CAP_SYS_RESOURCE): a kernel OOM kill "
			 "may take the supervisor too",
			 strerror(errno));
		close(fd);
		return;
	}
	n = (int)pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		got = atoi(buf) == -1000;
	}
	s->st.oom_adj_held = got ? 1 : 0;
	snprintf(s->st.oom_adj_note, sizeof(s->st.oom_adj_note), "%s",
		 got ? "oom_score_adj -1000 held: the kernel OOM killer spares the supervisor"
		     : "oom_score_adj -1000 did not hold");
}

/* Why mlockall() failed, and what it would take, for the one line below.
 * What a large enough RLIMIT_MEMLOCK is depends on what is mapped by then
 * (the HTTP server's library and thread come later): docs/supervisor.md. */
static void lock_note(int err, char *buf, size_t len)
{
	char limit[32] = "unlimited";
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		mf_size_format((uint64_t)rl.rlim_cur, limit, sizeof(limit));
	snprintf(buf, len,
		 "memory not locked (%s; needs CAP_IPC_LOCK or a larger RLIMIT_MEMLOCK, it is %s): "
		 "probes may answer late while the program presses on the limit",
		 strerror(err), limit);
}

void sup_protect(struct sup *s)
{
	char lock[200] = "";

	oom_protect(s);
	/* The supervisor shares the program's memory cgroup: when the program
	 * sits at the limit, the kernel reclaims from everyone in it, and a
	 * probe that has to fault the supervisor's code back in answers late.
	 * Locking what is mapped now (threads and arenas exist by here) keeps
	 * it resident; it needs CAP_IPC_LOCK or a large enough
	 * RLIMIT_MEMLOCK. */
	s->st.memory_locked = mlockall(MCL_CURRENT | MCL_ONFAULT) == 0;
	if (!s->st.memory_locked)
		lock_note(errno, lock, sizeof(lock));
	/* Both are optional (a Pod Security "restricted" pod grants neither):
	 * one line says what is off, and the run goes on. */
	if (!s->st.oom_adj_held || !s->st.memory_locked)
		mf_warn("%s%s%s; the rest needs no capability",
			s->st.oom_adj_held ? "" : s->st.oom_adj_note,
			!s->st.oom_adj_held && lock[0] ? "; " : "", lock);
}

void sup_protect_relock(const struct sup *s)
{
	/* The HTTP server starts after the program (supervisor.c): its
	 * library and thread are locked as the rest was. */
	if (s->st.memory_locked)
		mlockall(MCL_CURRENT | MCL_ONFAULT);
}

const char *sup_protect_undo(const struct sup *s, char *buf, size_t len)
{
	/* The program must stay the OOM killer's choice, not inherit -1000. */
	if (!s->st.oom_adj_held)
		return NULL;
	snprintf(buf, len, "%d", s->oom_adj_orig);
	return buf;
}
