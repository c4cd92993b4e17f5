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
#include <unistd.h>

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
		goto out;
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
		goto out;
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
out:
	if (!s->st.oom_adj_held)
		mf_warn("%s", s->st.oom_adj_note);
}

void sup_protect(struct sup *s)
{
	oom_protect(s);
	/* The supervisor shares the program's memory cgroup: when the program
	 * sits at the limit, the kernel reclaims from everyone in it, and a
	 * probe that has to fault the supervisor's code back in answers late.
	 * Locking what is mapped now (threads and arenas exist by here) keeps
	 * it resident; it needs CAP_IPC_LOCK or a large enough
	 * RLIMIT_MEMLOCK, and is only an improvement: no warning without. */
	s->st.memory_locked = mlockall(MCL_CURRENT | MCL_ONFAULT) == 0;
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
