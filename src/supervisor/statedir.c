/*
 * statedir.c - where the supervisor keeps what must outlive it: the state
 * directory (journal, segment, quarantine), and the stats segment's file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/file.h"
#include "host/msg.h"
#include "host/segread.h"
#include "supervisor/supervisor.h"

/*
 * Segments of supervisors that were killed (SIGKILL leaves no chance to
 * remove them) would pile up in /dev/shm outside containers, where PIDs are
 * not reused as quickly: remove memfence-run-PID.seg files whose PID is gone
 * and whose header says that PID created them, their model files
 * (memfence-run-PID.model.json) and the files beside the segment that the
 * program and the supervisor talk through (memfence-run-PID.seg.serving,
 * .seg.drain and their temporary files, the directory .seg.recycle). In a
 * container the supervisor is PID 1 and its next start replaces its own
 * file anyway.
 */
/* A model file beside such a segment: a regular file of this user, never
 * followed through a link, that reads as a memfence model. */
static int is_own_model(int dir, const char *name)
{
	struct stat st;
	char head[32];
	ssize_t n;
	int fd = mf_file_openat_nofollow(dir, name), own;

	if (fd < 0)
		return 0;
	n = read(fd, head, sizeof(head) - 1);
	own = fstat(fd, &st) == 0 && st.st_uid == geteuid() && n > 0;
	close(fd);
	if (!own)
		return 0;
	head[n] = '\0';
	return strstr(head, "\"memfence_model\"") != NULL;
}

/* SEGMENT.serving, SEGMENT.drain (serving.c) or one of their temporary
 * files (SEGMENT.drain.tmp, SEGMENT.serving.PID.tmp), or the recycle
 * directory SEGMENT.recycle (recycle.c), by what follows memfence-run-PID. */
static int is_beside_segment(const char *end)
{
	static const char *const names[] = {".seg.serving", ".seg.drain", ".seg.recycle"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);

		if (strncmp(end, names[i], n) == 0 && (end[n] == '\0' || end[n] == '.'))
			return 1;
	}
	return 0;
}

/* A regular file of this user, or a directory of this user if empty (as
 * recycle.c leaves one that someone else put files in); never a link. */
static void remove_own(int dir, const char *name)
{
	struct stat st;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid != geteuid())
		return;
	if (S_ISREG(st.st_mode))
		unlinkat(dir, name, 0);
	else if (S_ISDIR(st.st_mode))
		unlinkat(dir, name, AT_REMOVEDIR);
}

static void sweep_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[MF_PATH_MAX], *end;
		struct mf_segread r;
		long pid;
		int stale;

		if (strncmp(e->d_name, "memfence-run-", 13) != 0)
			continue;
		pid = strtol(e->d_name + 13, &end, 10);
		if (pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (strcmp(end, ".model.json") == 0) {
			if (is_own_model(dirfd(d), e->d_name))
				unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (is_beside_segment(end)) {
			remove_own(dirfd(d), e->d_name);
			continue;
		}
		if (strcmp(end, ".seg") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (mf_segread_open(&r, path, 0) != 0)
			continue;
		stale = r.hdr->owner_pid == pid;
		mf_segread_close(&r);
		if (stale)
			unlink(path);
	}
	closedir(d);
}

/*
 * A --segment the user names is replaced at each start and removed at the
 * end: only a file that is already a memfence segment may be there (a
 * previous run's), as `exec --account --segment` joins nothing else. A
 * database, a device or a link at that name is refused, untouched.
 */
static int segment_is_replaceable(const char *path)
{
	struct mf_segread r;
	struct stat st;
	int err;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISLNK(st.st_mode)) {
		mf_err("--segment %s is a symbolic link: memfence replaces and removes that file; "
		       "name a new file or an old memfence segment",
		       path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		mf_err("--segment %s is not a regular file: memfence replaces and removes that file; "
		       "name a new file or an old memfence segment",
		       path);
		return -1;
	}
	err = mf_segread_open(&r, path, 0);
	if (err) {
		mf_err("--segment %s exists and is %s: memfence would replace and remove it; "
		       "name a new file or an old memfence segment",
		       path, err == MF_SEGREAD_EFORMAT ? "not a memfence stats segment"
						       : mf_segread_strerror(err));
		return -1;
	}
	mf_segread_close(&r);
	return 0;
}

/* Once the program has started (the sweep is no part of its start): the
 * files of dead supervisors in the directory of our own segment, which
 * the sweep passes over (a live PID, our own). */
void sup_segment_sweep(struct sup *s)
{
	if (s->sweep_dir[0])
		sweep_segments(s->sweep_dir);
	s->sweep_dir[0] = '\0';
}

/* The segment goes in the state directory (where the next start finds it
 * after a kill of the whole container), else in /dev/shm or /tmp. 0, or
 * -1 when a --segment given cannot be used (said). */
int sup_segment_path(struct sup *s)
{
	if (s->cfg.launch.account != 1)
		return 0;
	if (s->cfg.launch.segment && segment_is_replaceable(s->cfg.launch.segment) != 0)
		return -1;
	if (!s->cfg.launch.segment) {
		if (s->cfg.state_dir)
			snprintf(s->segment, sizeof(s->segment), "%s/%s", s->cfg.state_dir,
				 SUP_STATE_SEGMENT);
		else {
			const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

			snprintf(s->sweep_dir, sizeof(s->sweep_dir), "%s", dir);
			snprintf(s->segment, sizeof(s->segment), "%s/memfence-run-%d.seg", dir,
				 (int)getpid());
		}
		s->cfg.launch.segment = s->segment;
	}
	snprintf(s->st.segment, sizeof(s->st.segment), "%s", s->cfg.launch.segment);
	return 0;
}

/*
 * Create the state directory and take it: one supervisor at a time. A
 * second one would read the first one's live journal as a lost run's, and
 * at its own end remove the segment and journal the first still uses. The
 * lock is an flock on STATE_DIR/lock, held for the supervisor's life (not
 * inherited by the program: close-on-exec) and released by the kernel
 * however the supervisor ends; the file holds the pid for the message.
 */
int sup_state_dir_lock(struct sup *s)
{
	char path[MF_PATH_MAX], pid[24];
	ssize_t n;
	int fd;

	s->lock_fd = -1;
	if (!s->cfg.state_dir)
		return 0;
	if (mkdir(s->cfg.state_dir, 0755) < 0 && errno != EEXIST) {
		mf_err("cannot create the state directory %s: %s", s->cfg.state_dir,
		       strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", s->cfg.state_dir, SUP_STATE_LOCK);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0) {
		mf_err("cannot open the lock of the state directory %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			mf_err("the state directory %s is in use by another memfence run%s%s%s",
			       s->cfg.state_dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
		else
			mf_err("cannot lock the state directory %s: %s", s->cfg.state_dir, strerror(e));
		close(fd);
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		/* Only the message of a second run loses the pid. */
	}
	s->lock_fd = fd;
	return 0;
}

/* Turn the journal of a run that ended without a report into its
 * post-mortem. */
int sup_state_dir_prepare(struct sup *s)
{
	char path[MF_PATH_MAX];
	int rc;

	if (!s->cfg.state_dir)
		return 0;
	rc = sup_journal_recover(s->cfg.state_dir, s->cfg.report_dir, path, sizeof(path));
	if (rc == 1)
		mf_log(MF_LOG_WARNING, NULL, NULL, "the previous run ended without a report; its post-mortem: %s",
			path);
	return 0;
}
