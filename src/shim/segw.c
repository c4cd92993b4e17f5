/*
 * segw.c - the shim's side of the shared stats segment.
 *
 * Every process under the shim owns one slot of the segment; its threads
 * add their batched counts to the slot's counters with relaxed atomic adds
 * and publish their open scopes in the slot's in-flight table. Layout and
 * the seqlock rules are in base/segment.h. Only transport: what the shim
 * refuses, it decides in policy.c.
 *
 * Which segment: MEMFENCE_SEGMENT names a file made by the supervisor or
 * `memfence exec --account`; a process that may not open it (the program
 * dropped its privileges: setpriv, gosu) maps the descriptor the supervisor
 * handed down instead (inherited_segment). Without it the process makes its own in a
 * memfd (see create_own); forked children share it through the inherited
 * mapping, exec'd programs make their own. If nothing can be mapped at
 * all, the slot is private memory: counting and the API still work, only
 * nobody else can read it.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/envspec.h"
#include "base/proc.h"
#include "memfence.h" /* the outcome of a scope */
#include "shim/config.h"
#include "shim/segw.h"

struct mf_seg_header *mf_seg;
struct mf_seg_slot *mf_slot;
static uint64_t seg_len;

static void *os_map_shared(int fd, size_t len)
{
	long r = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (r < 0 && r > -4096)
		return NULL;
	return (void *)r;
}

static int map_file(int fd)
{
	struct stat st;
	void *mem;

	if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(struct mf_seg_header))
		return -1;
	mem = os_map_shared(fd, (size_t)st.st_size);
	if (mem == NULL)
		return -1;
	if (mf_seg_validate(mem, (uint64_t)st.st_size) != 0) {
		syscall(SYS_munmap, mem, (size_t)st.st_size);
		return -1;
	}
	mf_seg = mem;
	seg_len = (uint64_t)st.st_size;
	return 0;
}

static void fmt_uint(char *dst, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*dst++ = tmp[--n];
	*dst = '\0';
}

/*
 * MEMFENCE_SEGMENT names a file that does not exist yet: make it, with the
 * default dimensions. It is written under a temporary name and linked into
 * place, so that of several processes starting at once one wins and the
 * others join its file; nobody ever maps a half-made segment.
 */
static int create_file(const char *path)
{
	uint64_t len = mf_seg_size(MF_SEG_DEFAULT_SLOTS, MF_SEG_DEFAULT_SCOPES, MF_SEG_DEFAULT_RING);
	size_t plen = strlen(path);
	char tmp[4096 + 32];
	void *mem;
	int fd;

	if (plen + 30 > sizeof(tmp))
		return -1;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp.", 5);
	fmt_uint(tmp + plen + 5, (uint64_t)getpid());
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	/* Reserved now: a page first touched on a full filesystem is a
	 * SIGBUS (mf_seg_create says more). */
	if (posix_fallocate(fd, 0, (off_t)len) != 0 || (mem = os_map_shared(fd, len)) == NULL) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	mf_seg_init(mem, MF_SEG_DEFAULT_SLOTS, MF_SEG_DEFAULT_SCOPES, MF_SEG_DEFAULT_RING, getpid());
	syscall(SYS_munmap, mem, len);
	if (link(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	unlink(tmp);
	/* The caller maps it by its final name, the one /proc/PID/maps then
	 * shows to `memfence stat PID`. */
	return 0;
}

/*
 * The descriptor of path the supervisor handed down (MEMFENCE_SEGMENT_FD),
 * for a process whose credentials no longer open the file (mode 0600,
 * owned by the supervisor's user). It is the same file only if its device
 * and inode are path's: the number may have been closed and reused by the
 * time a descendant reads the variable. It stays open and inheritable:
 * a program exec'd after the drop (setpriv -> python) needs it in turn.
 */
static int inherited_segment(const char *path)
{
	struct stat byname, byfd;
	int fd = mf_cfg.segment_fd;
	int fl;

	if (fd < 0 || stat(path, &byname) != 0 || fstat(fd, &byfd) != 0)
		return -1;
	if (!S_ISREG(byfd.st_mode) || byfd.st_dev != byname.st_dev || byfd.st_ino != byname.st_ino)
		return -1;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDWR)
		return -1;
	return map_file(fd);
}

static int join_segment(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int r;

	if (fd < 0 && (errno == EACCES || errno == EPERM) && inherited_segment(path) == 0)
		return 0;

	if (fd < 0 && errno == ENOENT) {
		if (!mf_cfg.segment_make)
			return -1;    /* its supervisor has ended: nobody to tell */
		/* Made by us, or by another process that won the race. */
		create_file(path);
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0) {
		mf_say("cannot open or create " MF_ENV_LIT(SEGMENT) " ", path, ": counting in private memory");
		return -1;
	}
	r = map_file(fd);
	close(fd);
	if (r != 0)
		mf_say(MF_ENV_LIT(SEGMENT) " ", path, " is not a memfence segment of this version: counting in private memory");
	return r;
}

/*
 * Our own segment, when no MEMFENCE_SEGMENT is given: a memfd, not a file.
 * Nothing is left behind however the program ends (shells leave with
 * _exit(), exec replaces images without destructors), and `memfence stat
 * PID` still finds it through /proc/PID/fd. The descriptor is kept open
 * (close-on-exec) for that reason only. A supervisor-less program needs
 * few slots.
 */
static int create_own(void)
{
	uint64_t len = mf_seg_size(16, MF_SEG_DEFAULT_SCOPES, 256);
	void *mem;
	int fd;

	fd = (int)syscall(SYS_memfd_create, MF_SEG_MEMFD_NAME, MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)len) != 0)
		goto fail_fd;
	mem = os_map_shared(fd, len);
	if (mem == NULL)
		goto fail_fd;
	mf_seg_init(mem, 16, MF_SEG_DEFAULT_SCOPES, 256, getpid());
	mf_seg = mem;
	seg_len = len;
	return 0;
fail_fd:
	close(fd);
	return -1;
}

static int private_segment(void)
{
	uint64_t len = mf_seg_size(1, MF_SEG_DEFAULT_SCOPES, 64);
	void *mem = mf_os_alloc(len);

	if (mem == NULL)
		return -1;
	mf_seg_init(mem, 1, MF_SEG_DEFAULT_SCOPES, 64, getpid());
	mf_seg = mem;
	seg_len = len;
	return 0;
}

/* The kernel's name of the process (/proc/self/comm), in one system call
 * instead of three: every process of the program claims a slot as it
 * starts. */
static void read_comm(char comm[16])
{
	if (prctl(PR_GET_NAME, comm) != 0)
		comm[0] = '\0';
	comm[15] = '\0';
}

/* Free slots, and slots of dead processes a reader has copied. */
static struct mf_seg_slot *claim_slot(struct mf_seg_header *h)
{
	for (uint32_t i = 0; i < h->nslots; i++) {
		struct mf_seg_slot *s = mf_seg_slot_at(h, i);
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (st != MF_SLOT_FREE && st != MF_SLOT_DEAD_READ)
			continue;
		/* CLAIMING is LIVE with pid 0: readers treat pid 0 as not yet
		 * identified. Zero the slot before filling it. */
		if (!__atomic_compare_exchange_n(&s->state, &st, MF_SLOT_LIVE, 0,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&s->pid, 0, __ATOMIC_RELAXED);
		uint32_t gen = s->generation + 1;
		size_t scopes_bytes = (size_t)h->slot_size - sizeof(*s);
		/* A FREE slot was never claimed and is still zero: its scope
		 * table's pages are left for the scopes to touch. */
		if (st != MF_SLOT_FREE)
			memset((char *)s + sizeof(s->state), 0,
			       sizeof(*s) - sizeof(s->state) + scopes_bytes);
		s->generation = gen;
		s->ppid = getppid();
		s->start_realtime_ns = mf_now_real();
		s->updated_ns = mf_now_mono();
		read_comm(s->comm);
		__atomic_store_n(&s->pid, getpid(), __ATOMIC_RELEASE);
		return s;
	}
	__atomic_fetch_add(&h->slot_claims_failed, 1, __ATOMIC_RELAXED);
	return NULL;
}

/* A slot still LIVE under our own pid was our image before an exec (exec
 * runs no destructor): that program has ended. */
static void retire_pre_exec(struct mf_seg_header *h)
{
	pid_t self = getpid();

	for (uint32_t i = 0; i < h->nslots; i++) {
		struct mf_seg_slot *s = mf_seg_slot_at(h, i);
		uint32_t live = MF_SLOT_LIVE;

		if (mf_seg_slot_never_used(s))
			break;
		if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) == self)
			__atomic_compare_exchange_n(&s->state, &live, MF_SLOT_EXITED, 0,
						    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	}
}

void mf_segw_attach(void)
{
	if (mf_cfg.segment != NULL && join_segment(mf_cfg.segment) == 0)
		retire_pre_exec(mf_seg);
	if (mf_seg == NULL && mf_cfg.segment == NULL)
		create_own();
	if (mf_seg != NULL) {
		mf_slot = claim_slot(mf_seg);
		if (mf_slot == NULL)
			mf_say("the stats segment has no free slot: counting in private memory", NULL, NULL);
	}
	if (mf_slot == NULL) {
		/* Counting must go on: a private one-slot segment. */
		if (private_segment() == 0)
			mf_slot = claim_slot(mf_seg);
	}
	if (mf_seg != NULL && mf_cfg.heap_limit != 0)
		__atomic_store_n(&mf_seg->heap_limit, mf_cfg.heap_limit, __ATOMIC_RELAXED);
}

void mf_segw_child(uint64_t inherited_live)
{
	struct mf_seg_slot *s = mf_seg != NULL ? claim_slot(mf_seg) : NULL;

	if (s == NULL) {
		/* The parent's slot is not ours to write: a private one. */
		mf_seg = NULL;
		if (private_segment() == 0)
			s = claim_slot(mf_seg);
	}
	mf_slot = s;
	if (s != NULL) {
		__atomic_store_n(&s->live, inherited_live, __ATOMIC_RELAXED);
		__atomic_store_n(&s->peak, inherited_live, __ATOMIC_RELAXED);
	}
}

void mf_segw_exit(void)
{
	uint32_t live = MF_SLOT_LIVE;

	if (mf_slot != NULL)
		__atomic_compare_exchange_n(&mf_slot->state, &live, MF_SLOT_EXITED, 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

int32_t mf_segw_scope_claim(void)
{
	struct mf_seg_header *h = mf_seg;

	if (h == NULL || mf_slot == NULL)
		return -1;
	for (uint32_t i = 0; i < h->scopes_per_slot; i++) {
		struct mf_seg_scope *e = &mf_slot->scopes[i];
		uint32_t zero = 0;

		if (__atomic_load_n(&e->in_use, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&e->in_use, &zero, 1, 0, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return (int32_t)i;
	}
	return -1;
}

/*
 * A scope's name or id, written only when it changed and first byte last.
 * A process may be killed in the middle of this (the OOM killer strikes on
 * a page fault, and a segment page reclaimed under pressure faults on its
 * next write): readers take a dead writer's entry as it is (segread.c),
 * so it must hold the whole new text or an empty one, never the new text
 * over the tail of the entry's previous scope. Unchanged text is not
 * rewritten, so the updates of a scope's figures never touch it.
 */
static void put_text(char *dst, const char *src)
{
	if (memcmp(dst, src, MF_SEG_NAME_LEN) == 0)
		return;
	__atomic_store_n(&dst[0], '\0', __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(dst + 1, src + 1, MF_SEG_NAME_LEN - 1);
	__atomic_store_n(&dst[0], src[0], __ATOMIC_RELEASE);
}

void mf_segw_scope_publish(int tid, const struct mf_scope *s, int depth)
{
	struct mf_seg_scope *e;
	uint64_t v;

	if (s->entry < 0 || mf_slot == NULL)
		return;
	e = &mf_slot->scopes[s->entry];
	v = mf_seq_write_begin(&e->seq);
	e->in_use = 1;
	e->tid = tid;
	e->depth = (uint32_t)depth;
	e->outcome_flags = s->fig.failed != 0 ? MEMFENCE_OUTCOME_FAILED_ALLOC : 0;
	e->start_ns = s->start_real;
	e->fig = s->fig;
	put_text(e->name, s->name);
	put_text(e->id, s->id);
	mf_seq_write_end(&e->seq, v);
}

void mf_segw_scope_release(int32_t entry)
{
	struct mf_seg_scope *e;
	uint64_t v;

	if (entry < 0 || mf_slot == NULL)
		return;
	e = &mf_slot->scopes[entry];
	v = mf_seq_write_begin(&e->seq);
	e->tid = 0;
	/* The next scope to claim the entry is listed before it publishes:
	 * without an id meanwhile, not under this one's. */
	__atomic_store_n(&e->id[0], '\0', __ATOMIC_RELAXED);
	__atomic_store_n(&e->name[0], '\0', __ATOMIC_RELAXED);
	mf_seq_write_end(&e->seq, v);
	__atomic_store_n(&e->in_use, 0, __ATOMIC_RELEASE);
}

void mf_segw_record(int tid, const struct mf_scope *s, uint64_t end_mono)
{
	struct mf_seg_header *h = mf_seg;
	struct mf_seg_record *r;
	uint64_t idx, v;

	if (h == NULL)
		return;
	idx = __atomic_fetch_add(&h->ring_head, 1, __ATOMIC_RELAXED);
	r = mf_seg_record_at(h, idx);
	v = mf_seq_write_begin(&r->seq);
	r->index = idx;
	r->pid = mf_slot != NULL ? mf_slot->pid : 0;
	r->tid = tid;
	r->outcome = s->fig.failed != 0 ? MEMFENCE_OUTCOME_FAILED_ALLOC : MEMFENCE_OUTCOME_OK;
	r->start_ns = s->start_real;
	r->duration_ns = end_mono - s->start_mono;
	r->fig = s->fig;
	memcpy(r->name, s->name, sizeof(r->name));
	memcpy(r->id, s->id, sizeof(r->id));
	mf_seq_write_end(&r->seq, v);
}
