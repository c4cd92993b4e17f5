/*
 * test_segread.c - the segment reader: slot liveness, marking slots read,
 * torn (mid-update) entries and records, the ring's lapping.
 *
 * The test plays the writer by hand on a real segment file, in the states a
 * shim leaves behind (running, exited, killed mid-update).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/segread.h"
#include "unit.h"

static pid_t gone_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

static void set_slot(struct mf_segread *r, uint32_t i, uint32_t state, pid_t pid, uint32_t gen)
{
	struct mf_seg_slot *s = mf_seg_slot_at(r->hdr, i);

	s->state = state;
	s->pid = pid;
	s->generation = gen;
}

static void test_mark_read(struct mf_segread *rw, struct mf_segread *ro)
{
	struct mf_segread_slot v;

	CHECK(mf_segread_mark_read(ro, 0, 0) == -EROFS);
	CHECK(mf_segread_mark_read(rw, 99, 0) == -EINVAL);
	CHECK(mf_segread_slot(rw, 99, &v, NULL, 0) == -EINVAL);

	/* free: nothing to mark */
	CHECK(mf_segread_slot(rw, 0, &v, NULL, 0) == 0);
	CHECK(v.view == MF_SLOT_VIEW_FREE);
	CHECK(mf_segread_mark_read(rw, 0, 0) == -EBUSY);

	/* live, and its process exists: never marked */
	set_slot(rw, 1, MF_SLOT_LIVE, getpid(), 3);
	CHECK(mf_segread_slot(rw, 1, &v, NULL, 0) == 0);
	CHECK(v.view == MF_SLOT_VIEW_LIVE);
	CHECK(mf_segread_mark_read(rw, 1, 3) == -EBUSY);
	/* pid 0: being claimed right now */
	set_slot(rw, 1, MF_SLOT_LIVE, 0, 3);
	CHECK(mf_segread_slot(rw, 1, &v, NULL, 0) == 0);
	CHECK(v.view == MF_SLOT_VIEW_LIVE);
	CHECK(mf_segread_mark_read(rw, 1, 3) == -EBUSY);

	/* live but its process is gone (killed): dead, then read */
	set_slot(rw, 2, MF_SLOT_LIVE, gone_pid(), 5);
	CHECK(mf_segread_slot(rw, 2, &v, NULL, 0) == 0);
	CHECK(v.view == MF_SLOT_VIEW_DEAD);
	CHECK_EQ_U64(v.slot.generation, 5);
	/* reclaimed meanwhile (another generation): left alone */
	CHECK(mf_segread_mark_read(rw, 2, 4) == -EBUSY);
	CHECK_EQ_U64(mf_seg_slot_at(rw->hdr, 2)->state, MF_SLOT_LIVE);
	CHECK(mf_segread_mark_read(rw, 2, 5) == 0);
	CHECK_EQ_U64(mf_seg_slot_at(rw->hdr, 2)->state, MF_SLOT_DEAD_READ);
	CHECK(mf_segread_mark_read(rw, 2, 5) == 0); /* again: already read */
	CHECK(mf_segread_slot(rw, 2, &v, NULL, 0) == 0);
	CHECK(v.view == MF_SLOT_VIEW_READ);

	/* exited normally */
	set_slot(rw, 3, MF_SLOT_EXITED, gone_pid(), 1);
	CHECK(mf_segread_slot(ro, 3, &v, NULL, 0) == 0);
	CHECK(v.view == MF_SLOT_VIEW_EXITED);
	CHECK(mf_segread_mark_read(rw, 3, 1) == 0);
	CHECK_EQ_U64(mf_seg_slot_at(rw->hdr, 3)->state, MF_SLOT_DEAD_READ);
}

static void test_torn_scopes(struct mf_segread *rw)
{
	struct mf_seg_slot *s = mf_seg_slot_at(rw->hdr, 1);
	struct mf_seg_scope got[8];
	struct mf_segread_slot v;

	set_slot(rw, 1, MF_SLOT_LIVE, getpid(), 7);
	/* a stable entry, name not terminated in the segment */
	s->scopes[0].in_use = 1;
	s->scopes[0].seq = 2;
	s->scopes[0].net = 4096;
	memset(s->scopes[0].name, 'x', MF_SEG_NAME_LEN);
	strcpy(s->scopes[0].id, "req-1");
	/* a writer that died mid-update: odd sequence forever */
	s->scopes[1].in_use = 1;
	s->scopes[1].seq = 5;
	/* claimed, never published (seq 0): not a scope yet */
	s->scopes[2].in_use = 1;
	s->scopes[2].seq = 0;
	/* released */
	s->scopes[3].in_use = 0;
	s->scopes[3].seq = 4;

	CHECK(mf_segread_slot(rw, 1, &v, got, 8) == 0);
	CHECK_EQ_U64(v.nscopes, 1);
	CHECK_EQ_U64(v.ntorn, 1);
	CHECK_EQ_U64(v.ndropped, 0);
	CHECK_EQ_U64(got[0].net, 4096);
	CHECK_EQ_U64(strlen(got[0].name), MF_SEG_NAME_LEN - 1);
	CHECK_STR(got[0].id, "req-1");
	/* no room in the caller's array */
	CHECK(mf_segread_slot(rw, 1, &v, NULL, 0) == 0);
	CHECK_EQ_U64(v.nscopes, 0);
	CHECK_EQ_U64(v.ndropped, 1);
}

/*
 * A process killed in the middle of updating a scope entry (the OOM killer
 * strikes on the page fault of a segment page reclaimed under pressure)
 * leaves its sequence odd forever. Its slot is dead, so nothing changes
 * the entry again: the scope is in flight at death and must be counted
 * (a quarantine death), not dropped as torn, as it is while the writer
 * lives. A death went unrecorded this way in tests/integration/celery_redis.sh.
 */
static void test_dead_mid_update(struct mf_segread *rw)
{
	struct mf_seg_slot *s = mf_seg_slot_at(rw->hdr, 2);
	struct mf_seg_scope got[8];
	struct mf_segread_slot v;

	set_slot(rw, 2, MF_SLOT_LIVE, gone_pid(), 5);
	memset(s->scopes, 0, 2 * sizeof(s->scopes[0]));
	s->scopes[0].in_use = 1;
	s->scopes[0].seq = 9;
	s->scopes[0].peak = 300 << 20;
	strcpy(s->scopes[0].name, "tasks.explode");
	strcpy(s->scopes[0].id, "poison-1");
	/* a stable entry beside it */
	s->scopes[1].in_use = 1;
	s->scopes[1].seq = 4;
	strcpy(s->scopes[1].id, "ok-1");

	CHECK(mf_segread_slot(rw, 2, &v, got, 8) == 0);
	CHECK(v.view == MF_SLOT_VIEW_DEAD);
	CHECK_EQ_U64(v.nscopes, 2);
	CHECK_EQ_U64(v.ntorn, 0);
	CHECK_STR(got[0].id, "poison-1");
	CHECK_STR(got[0].name, "tasks.explode");
	CHECK_EQ_U64(got[0].peak, 300 << 20);
	CHECK_STR(got[1].id, "ok-1");
	/* the same in a slot a reader has found dead */
	set_slot(rw, 2, MF_SLOT_DEAD, s->pid, 5);
	CHECK(mf_segread_slot(rw, 2, &v, got, 8) == 0);
	CHECK(v.view == MF_SLOT_VIEW_DEAD);
	CHECK_EQ_U64(v.nscopes, 2);
	CHECK_STR(got[0].id, "poison-1");
}

static void put_record(struct mf_segread *rw, uint64_t idx, uint64_t seq, uint64_t net)
{
	struct mf_seg_record *rec = mf_seg_record_at(rw->hdr, idx);

	rec->seq = seq;
	rec->index = idx;
	rec->net = (int64_t)net;
	strcpy(rec->name, "task");
}

static void test_ring(struct mf_segread *rw)
{
	struct mf_seg_header *h = (struct mf_seg_header *)rw->hdr;
	struct mf_seg_record out[32];
	uint64_t next, lost;
	uint32_t n;

	/* three records, the second one torn by a writer that is still at
	 * it: the reader stops there and waits for it */
	for (uint64_t i = 0; i < 3; i++)
		put_record(rw, i, i == 1 ? 3 : 2, 100 + i);
	h->ring_head = 3;
	n = mf_segread_ring(rw, 0, out, 32, &next, &lost);
	CHECK_EQ_U64(n, 1);
	CHECK_EQ_U64(next, 1);
	CHECK_EQ_U64(lost, 0);
	CHECK_EQ_U64(out[0].net, 100);

	/* the writer finished */
	put_record(rw, 1, 4, 101);
	n = mf_segread_ring(rw, next, out, 32, &next, &lost);
	CHECK_EQ_U64(n, 2);
	CHECK_EQ_U64(next, 3);
	CHECK_EQ_U64(out[1].net, 102);

	/* the ring (16 records) lapped: 40 written, 24 of them lost */
	for (uint64_t i = 24; i < 40; i++)
		put_record(rw, i, 2, i);
	h->ring_head = 40;
	n = mf_segread_ring(rw, 3, out, 32, &next, &lost);
	CHECK_EQ_U64(n, 16);
	CHECK_EQ_U64(lost, 21);
	CHECK_EQ_U64(next, 40);
	CHECK_EQ_U64(out[0].index, 24);

	/* a torn record far behind newer ones: its writer died; counted as
	 * lost, not waited for */
	for (uint64_t i = 40; i < 56; i++)
		put_record(rw, i, i == 41 ? 7 : 2, i);
	h->ring_head = 56;
	n = mf_segread_ring(rw, 40, out, 32, &next, &lost);
	CHECK_EQ_U64(n, 15);
	CHECK_EQ_U64(lost, 1);
	CHECK_EQ_U64(next, 56);
}

int main(void)
{
	char path[] = "/tmp/test_segread.XXXXXX";
	struct mf_segread rw, ro;
	int fd = mkstemp(path);

	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	CHECK(mf_seg_create(path, 4, 8, 16, getpid()) == 0);
	CHECK(mf_segread_open(&rw, path, 1) == 0);
	CHECK(mf_segread_open(&ro, path, 0) == 0);
	test_mark_read(&rw, &ro);
	test_torn_scopes(&rw);
	test_dead_mid_update(&rw);
	test_ring(&rw);
	CHECK_STR(mf_segread_view_name(MF_SLOT_VIEW_DEAD), "dead");
	CHECK_STR(mf_segread_strerror(MF_SEGREAD_EFORMAT), "not a memfence stats segment of this version");
	mf_segread_close(&ro);
	mf_segread_close(&rw);
	/* not a segment */
	CHECK(mf_segread_open(&ro, "/etc/hostname", 0) == MF_SEGREAD_EFORMAT);
	/* a segment of an older layout (version 2, before refusals said why):
	 * refused, saying so */
	{
		struct mf_seg_header old;
		int f = open(path, O_RDWR);

		CHECK(f >= 0 && pread(f, &old, sizeof(old), 0) == (ssize_t)sizeof(old));
		old.version = 2;
		CHECK(pwrite(f, &old, sizeof(old), 0) == (ssize_t)sizeof(old));
		close(f);
		CHECK(mf_segread_open(&ro, path, 0) == MF_SEGREAD_EVERSION);
		CHECK(strstr(mf_segread_strerror(MF_SEGREAD_EVERSION), "another memfence version") !=
		      NULL);
	}
	unlink(path);
	return unit_done("test_segread");
}
