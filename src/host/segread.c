/*
 * segread.c - reader (and creator) of the shared stats segment.
 *
 * See segread.h for the contract and core/segment.h for the layout and
 * its seqlock rules.
 */
#include "host/segread.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEQ_TRIES 64

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n && p < (1u << 30))
		p <<= 1;
	return p;
}

int mf_seg_create(const char *path, uint32_t nslots, uint32_t scopes, uint32_t ring,
		  int32_t owner)
{
	char tmp[4096 + 32];
	uint64_t len;
	void *mem;
	int fd, err;

	nslots = nslots != 0 ? nslots : MF_SEG_DEFAULT_SLOTS;
	scopes = scopes != 0 ? scopes : MF_SEG_DEFAULT_SCOPES;
	ring = pow2_at_least(ring != 0 ? ring : MF_SEG_DEFAULT_RING);
	if (nslots > 65536 || scopes > 65536)
		return -EINVAL;
	len = mf_seg_size(nslots, scopes, ring);
	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	/* Pages reserved now, not at the first write through the mapping: on
	 * a full filesystem (a small tmpfs, a container's 64 MiB /dev/shm)
	 * that write is a SIGBUS in the supervisor and in every process of
	 * the program. Here it is an error the caller can live with. */
	err = posix_fallocate(fd, 0, (off_t)len);
	if (err != 0) {
		close(fd);
		unlink(tmp);
		return -err;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		goto fail_errno;
	mf_seg_init(mem, nslots, scopes, ring, owner);
	munmap(mem, len);
	close(fd);
	if (rename(tmp, path) != 0) {
		err = -errno;
		unlink(tmp);
		return err;
	}
	return 0;
fail_errno:
	err = -errno;
	close(fd);
	unlink(tmp);
	return err;
}

int mf_segread_open(struct mf_segread *r, const char *path, int writable)
{
	struct stat st;
	int err;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (strlen(path) >= sizeof(r->path))
		return -ENAMETOOLONG;
	strcpy(r->path, path);
	/* O_NONBLOCK: a FIFO under a segment's name is refused below, not
	 * waited on (it has no effect on a regular file). */
	r->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	if (fstat(r->fd, &st) != 0) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct mf_seg_header)) {
		err = MF_SEGREAD_EFORMAT;
		goto fail;
	}
	r->len = (uint64_t)st.st_size;
	r->mem = mmap(NULL, r->len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, r->fd, 0);
	if (r->mem == MAP_FAILED) {
		err = -errno;
		r->mem = NULL;
		goto fail;
	}
	if (mf_seg_validate(r->mem, r->len) != 0) {
		const struct mf_seg_header *h = r->mem;

		err = h->magic == MF_SEG_MAGIC && h->version != MF_SEG_VERSION ? MF_SEGREAD_EVERSION
									       : MF_SEGREAD_EFORMAT;
		goto fail;
	}
	r->hdr = r->mem;
	r->writable = writable;
	return 0;
fail:
	mf_segread_close(r);
	return err;
}

void mf_segread_close(struct mf_segread *r)
{
	if (r->mem != NULL)
		munmap(r->mem, r->len);
	if (r->fd >= 0)
		close(r->fd);
	r->mem = NULL;
	r->hdr = NULL;
	r->fd = -1;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/*
 * /proc/PID/maps lines look like
 *   7f2c5a000000-7f2c5a15c000 rw-s 00000000 00:19 1234   /dev/shm/memfence-812.seg
 * The path is everything after the inode column.
 */
int mf_segread_find_pid(const char *root, pid_t pid, char *buf, size_t len)
{
	char path[1100], line[4400], target[4400];
	struct mf_segread r;
	struct dirent *d;
	FILE *f;
	DIR *dir;
	int found = 0;

	if (pid <= 0)
		return -EINVAL;
	root = root != NULL ? root : "";
	snprintf(path, sizeof(path), "%s/proc/%d/maps", root, (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? -ESRCH : -errno;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *p = strchr(line, '/');

		line[strcspn(line, "\n")] = '\0';
		if (p == NULL || !ends_with(p, ".seg") || strlen(p) >= len)
			continue;
		if (mf_segread_open(&r, p, 0) == 0) {
			mf_segread_close(&r);
			strcpy(buf, p);
			found = 1;
		}
	}
	fclose(f);
	if (found)
		return 0;

	/* fd links read "/memfd:memfence.seg (deleted)". */
	snprintf(path, sizeof(path), "%s/proc/%d/fd", root, (int)pid);
	dir = opendir(path);
	if (dir == NULL)
		return -errno;
	while (!found && (d = readdir(dir)) != NULL) {
		char fdpath[sizeof(path) + 260];
		ssize_t n;

		if (d->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, d->d_name);
		n = readlink(fdpath, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strstr(target, "memfd:" MF_SEG_MEMFD_NAME) == NULL || strlen(fdpath) >= len)
			continue;
		if (mf_segread_open(&r, fdpath, 0) == 0) {
			mf_segread_close(&r);
			strcpy(buf, fdpath);
			found = 1;
		}
	}
	closedir(dir);
	return found ? 0 : -ENOENT;
}

void mf_segread_header(const struct mf_segread *r, struct mf_seg_header *out)
{
	const struct mf_seg_header *h = r->hdr;

	memcpy(out, h, sizeof(*out));
	out->ring_head = __atomic_load_n(&h->ring_head, __ATOMIC_ACQUIRE);
	out->slot_claims_failed = __atomic_load_n(&h->slot_claims_failed, __ATOMIC_RELAXED);
}

/* Realtime at which the system booted, in ns (CLOCK_REALTIME minus
 * CLOCK_BOOTTIME: /proc/PID/stat counts from the boot). */
static uint64_t boot_realtime_ns(void)
{
	struct timespec r, b;

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_BOOTTIME, &b);
	return ((uint64_t)r.tv_sec - (uint64_t)b.tv_sec) * 1000000000u + (uint64_t)r.tv_nsec -
	       (uint64_t)b.tv_nsec;
}

int mf_proc_is(pid_t pid, uint64_t since_ns)
{
	char path[64], buf[1024], *rp, *end;
	unsigned long long start;
	long tck;
	ssize_t n;
	int fd;

	if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	/* "1234 (python3) Z 1 ...": the state follows the last ')'. */
	rp = strrchr(buf, ')');
	if (!rp || rp[1] != ' ')
		return 1;
	if (rp[2] == 'Z' || rp[2] == 'X')
		return 0;
	if (since_ns == 0)
		return 1;
	/* Field 22, starttime, in clock ticks since boot (proc(5)): the 20th
	 * after the state's. */
	rp += 2;
	for (int k = 0; k < 19 && rp; k++) {
		rp = strchr(rp, ' ');
		rp = rp ? rp + 1 : NULL;
	}
	tck = sysconf(_SC_CLK_TCK);
	if (!rp || tck <= 0)
		return 1;
	start = strtoull(rp, &end, 10);
	if (end == rp)
		return 1;
	/* The tick count is rounded down, so the process that took the slot
	 * never looks younger than its claim; a process that started later
	 * got the pid after the claimant had ended. One tick of slack covers
	 * the two clocks read apart. */
	return boot_realtime_ns() + (uint64_t)start * (1000000000u / (uint64_t)tck) <=
	       since_ns + 1000000000u / (uint64_t)tck;
}

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Seqlock read of len bytes at src (whose first word is the sequence).
 * 1 when a stable copy was taken, 0 when it stayed mid-update. */
static int seq_copy(void *dst, const void *src, size_t len)
{
	const uint64_t *seq = src;

	for (int i = 0; i < SEQ_TRIES; i++) {
		uint64_t s1 = mf_seq_read_begin(seq);
		if (s1 & 1) {
			sched_yield();
			continue;
		}
		memcpy(dst, src, len);
		if (mf_seq_read_ok(seq, s1))
			return 1;
	}
	return 0;
}

int mf_segread_slot(struct mf_segread *r, uint32_t i, struct mf_segread_slot *out,
		    struct mf_seg_scope *scopes, uint32_t max)
{
	const struct mf_seg_header *h = r->hdr;
	struct mf_seg_slot *s;
	struct mf_seg_slot *c = &out->slot;
	uint32_t state;

	if (i >= h->nslots)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->index = i;
	s = mf_seg_slot_at(h, i);
	state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
	c->state = state;
	c->pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
	c->ppid = s->ppid;
	c->generation = __atomic_load_n(&s->generation, __ATOMIC_RELAXED);
	c->start_realtime_ns = s->start_realtime_ns;
	c->updated_ns = ld(&s->updated_ns);
	memcpy(c->comm, s->comm, sizeof(c->comm));
	c->comm[sizeof(c->comm) - 1] = '\0';
	c->live = ld(&s->live);
	c->peak = ld(&s->peak);
	c->allocated = ld(&s->allocated);
	c->freed = ld(&s->freed);
	c->alloc_calls = ld(&s->alloc_calls);
	c->free_calls = ld(&s->free_calls);
	for (int k = 0; k < MF_FAIL_NCAUSES; k++)
		c->failed[k] = ld(&s->failed[k]);
	c->thread_started = ld(&s->thread_started);
	c->thread_failed = ld(&s->thread_failed);
	c->thread_last_errno = __atomic_load_n(&s->thread_last_errno, __ATOMIC_RELAXED);
	c->scopes_open = __atomic_load_n(&s->scopes_open, __ATOMIC_RELAXED);
	c->scopes_ended = ld(&s->scopes_ended);

	switch (state) {
	case MF_SLOT_FREE:
		out->view = MF_SLOT_VIEW_FREE;
		return 0;
	case MF_SLOT_LIVE:
		/* pid 0: being claimed right now. */
		out->view = c->pid == 0 || mf_proc_is(c->pid, c->start_realtime_ns) ? MF_SLOT_VIEW_LIVE
												 : MF_SLOT_VIEW_DEAD;
		break;
	case MF_SLOT_EXITED:
		out->view = MF_SLOT_VIEW_EXITED;
		break;
	case MF_SLOT_DEAD:
		out->view = MF_SLOT_VIEW_DEAD;
		break;
	default:
		out->view = MF_SLOT_VIEW_READ;
		break;
	}
	for (uint32_t k = 0; k < h->scopes_per_slot; k++) {
		struct mf_seg_scope *e = &s->scopes[k], copy;

		if (__atomic_load_n(&e->in_use, __ATOMIC_ACQUIRE) == 0)
			continue;
		if (out->view == MF_SLOT_VIEW_DEAD) {
			/* No writer is left: the entry as it is now is final,
			 * also when its sequence stayed odd. A process killed
			 * in the middle of an update (an OOM kill lands on the
			 * page fault of a segment page the kernel reclaimed
			 * under the same pressure) died with its scope in
			 * flight all the same, and the quarantine must count
			 * it. The shim writes a changed id first byte last
			 * (segw.c), so the id is whole or empty, never half of
			 * an earlier scope's: figures may be one update old. */
			memcpy(&copy, e, sizeof(copy));
		} else if (!seq_copy(&copy, e, sizeof(copy))) {
			out->ntorn++;
			continue;
		}
		if (!copy.in_use || copy.seq == 0)
			continue;
		copy.name[MF_SEG_NAME_LEN - 1] = '\0';
		copy.id[MF_SEG_NAME_LEN - 1] = '\0';
		if (out->nscopes < max)
			scopes[out->nscopes++] = copy;
		else
			out->ndropped++;
	}
	return 0;
}

int mf_segread_mark_read(struct mf_segread *r, uint32_t i, uint32_t generation)
{
	struct mf_seg_slot *s;
	uint32_t state;

	if (!r->writable)
		return -EROFS;
	if (i >= r->hdr->nslots)
		return -EINVAL;
	s = mf_seg_slot_at(r->hdr, i);
	if (__atomic_load_n(&s->generation, __ATOMIC_ACQUIRE) != generation)
		return -EBUSY;
	state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
	if (state == MF_SLOT_LIVE) {
		pid_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
		if (pid == 0 || mf_proc_is(pid, s->start_realtime_ns))
			return -EBUSY;
		if (!__atomic_compare_exchange_n(&s->state, &state, MF_SLOT_DEAD, 0,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return -EBUSY;
		state = MF_SLOT_DEAD;
	}
	if (state != MF_SLOT_EXITED && state != MF_SLOT_DEAD)
		return state == MF_SLOT_DEAD_READ ? 0 : -EBUSY;
	if (!__atomic_compare_exchange_n(&s->state, &state, MF_SLOT_DEAD_READ, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return -EBUSY;
	return 0;
}

uint32_t mf_segread_ring(struct mf_segread *r, uint64_t since, struct mf_seg_record *out,
			 uint32_t max, uint64_t *next, uint64_t *lost)
{
	const struct mf_seg_header *h = r->hdr;
	uint64_t head = __atomic_load_n(&h->ring_head, __ATOMIC_ACQUIRE);
	uint64_t idx = since, nlost = 0;
	uint32_t n = 0;

	if (head > h->ring_size && idx < head - h->ring_size) {
		nlost += head - h->ring_size - idx;
		idx = head - h->ring_size;
	}
	for (; idx < head && n < max; idx++) {
		struct mf_seg_record copy;
		const struct mf_seg_record *rec = mf_seg_record_at(h, idx);

		if (!seq_copy(&copy, rec, sizeof(copy)) || copy.index < idx || copy.seq == 0) {
			/* Claimed but not written yet: a live writer finishes
			 * in microseconds; one that stays behind died. Wait
			 * for it on the next calls unless newer records keep
			 * piling up behind it. */
			if (head - idx < h->ring_size / 2 && idx + 64 > head)
				break;
			nlost++;
			continue;
		}
		if (copy.index > idx) {
			nlost++; /* overwritten by a lap of the ring */
			continue;
		}
		copy.name[MF_SEG_NAME_LEN - 1] = '\0';
		copy.id[MF_SEG_NAME_LEN - 1] = '\0';
		out[n++] = copy;
	}
	*next = idx;
	if (lost != NULL)
		*lost = nlost;
	return n;
}

const char *mf_segread_strerror(int err)
{
	if (err == MF_SEGREAD_EFORMAT)
		return "not a memfence stats segment of this version";
	if (err == MF_SEGREAD_EVERSION)
		return "a stats segment of another memfence version: read it with the memfence that "
		       "wrote it";
	if (err == -ENOENT)
		return "no such segment file";
	return strerror(-err);
}

const char *mf_segread_view_name(enum mf_segread_liveness v)
{
	switch (v) {
	case MF_SLOT_VIEW_FREE:
		return "free";
	case MF_SLOT_VIEW_LIVE:
		return "live";
	case MF_SLOT_VIEW_EXITED:
		return "exited";
	case MF_SLOT_VIEW_DEAD:
		return "dead";
	case MF_SLOT_VIEW_READ:
		return "read";
	}
	return "?";
}
