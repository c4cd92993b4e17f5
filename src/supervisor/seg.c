/*
 * seg.c - the supervisor's side of the shared stats segment: create it
 * (core/segread.h), turn every process's counters and in-flight scopes into
 * the supervisor's state, follow the ring of finished scopes, and publish
 * the container's figures for the shim.
 *
 * Totals never go backwards: a slot whose process is gone is added to the
 * ret_* totals once (its generation tells a reused slot apart), and only
 * then released to the shim (marked read), so that a new process may take
 * it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/seg.h"
#include "supervisor/state.h"
#include "memfence.h"

#define RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define RING_BATCH 32

int sup_seg_create(struct sup_seg *s, const char *path, int32_t owner)
{
	int err;

	sup_seg_close(s, 0);
	/* Totals of earlier starts of the program carry over (the counters
	 * in /metrics must not go backwards at a restart); slot memory and
	 * the ring position belong to the old segment. */
	memset(s->slotmem, 0, sizeof(s->slotmem));
	s->ring_seen = 0;
	err = mf_seg_create(path, MF_SEG_DEFAULT_SLOTS, MF_SEG_DEFAULT_SCOPES,
			    MF_SEG_DEFAULT_RING, owner);
	if (err)
		return err;
	err = mf_segread_open(&s->r, path, 1);
	if (err) {
		unlink(path);
		return err;
	}
	s->open = 1;
	return 0;
}

void sup_seg_close(struct sup_seg *s, int unlink_it)
{
	struct stat mine, now;

	if (!s->open)
		return;
	/* Only the file we made: whatever took its name since is someone
	 * else's. */
	if (unlink_it && s->r.fd >= 0 && fstat(s->r.fd, &mine) == 0 && lstat(s->r.path, &now) == 0 &&
	    mine.st_dev == now.st_dev && mine.st_ino == now.st_ino)
		unlink(s->r.path);
	mf_segread_close(&s->r);
	s->open = 0;
}

void sup_seg_publish(struct sup_seg *s, uint64_t limit, uint64_t working_set,
		     uint64_t reserve, uint64_t min_size)
{
	struct mf_seg_container *c;
	struct mf_seg_header *h;
	uint64_t seq, now;

	if (!s->open)
		return;
	h = s->r.mem;
	now = sup_now_ms() * 1000000u;
	/* The shim adds every process's change since this sample to the
	 * sampled working set; each slot's live bytes are read here, a few
	 * milliseconds after the cgroup's figure, not in the same instant:
	 * the reserve covers what moves in between. */
	for (uint32_t i = 0; i < h->nslots; i++) {
		struct mf_seg_slot *sl = mf_seg_slot_at(h, i);

		if (mf_seg_slot_never_used(sl))
			break;
		if (__atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) != MF_SLOT_LIVE)
			continue;
		__atomic_store_n(&sl->sampled_live, __atomic_load_n(&sl->live, __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&sl->sampled_ns, now, __ATOMIC_RELEASE);
	}
	/* The supervisor is the only writer of this block: a plain seqlock. */
	c = &h->container;
	seq = mf_seq_write_begin(&c->seq);
	__atomic_store_n(&c->limit, limit, __ATOMIC_RELAXED);
	__atomic_store_n(&c->working_set, working_set, __ATOMIC_RELAXED);
	__atomic_store_n(&c->reserve, reserve, __ATOMIC_RELAXED);
	__atomic_store_n(&c->min_size, min_size, __ATOMIC_RELAXED);
	__atomic_store_n(&c->gate_covered, s->gate_covered, __ATOMIC_RELAXED);
	__atomic_store_n(&c->updated_ns, now, __ATOMIC_RELAXED);
	mf_seq_write_end(&c->seq, seq);
}

static void retire(struct sup_seg *s, struct sup_slotmem *sm)
{
	if (sm->retired || sm->generation == 0)
		return;
	s->ret_allocated += sm->allocated;
	s->ret_freed += sm->freed;
	for (int c = 0; c < MF_FAIL_NCAUSES; c++)
		s->ret_failed[c] += sm->failed[c];
	s->ret_thread_failed += sm->thread_failed;
	s->ret_scopes_ended += sm->scopes_ended;
	sm->retired = 1;
}

static void add_scopes(struct sup_state *st, pid_t pid, const struct mf_seg_scope *sc,
		       uint32_t n, uint32_t torn)
{
	st->scopes_in_flight += n + torn;
	for (uint32_t j = 0; j < n; j++) {
		struct sup_scope *d;

		if (st->nscopes >= SUP_MAX_SCOPES) {
			st->scopes_dropped++;
			continue;
		}
		d = &st->scopes[st->nscopes++];
		d->pid = pid;
		d->tid = sc[j].tid;
		d->start_ns = sc[j].start_ns;
		d->allocated = sc[j].allocated;
		d->freed = sc[j].freed;
		d->net = sc[j].net;
		d->peak = sc[j].peak;
		d->budget = sc[j].budget;
		d->failed = sc[j].failed;
		d->refused_rule = sc[j].refused_rule < MF_RULE_N ? sc[j].refused_rule : 0;
		d->refused_asked = sc[j].refused_net + sc[j].refused_size;
		d->refused_need = sc[j].refused_need;
		memcpy(d->name, sc[j].name, sizeof(d->name));
		memcpy(d->id, sc[j].id, sizeof(d->id));
	}
}

static void read_ring(struct sup_seg *s, sup_record_fn fn, void *ctx)
{
	struct mf_seg_record rec[RING_BATCH];
	uint32_t n;

	do {
		uint64_t lost = 0;

		n = mf_segread_ring(&s->r, s->ring_seen, rec, RING_BATCH, &s->ring_seen, &lost);
		s->ring_lost += lost;
		for (uint32_t i = 0; i < n; i++) {
			struct sup_record out;

			out.end_ns = rec[i].start_ns + rec[i].duration_ns;
			out.allocated = rec[i].allocated;
			out.peak = rec[i].peak;
			out.net = rec[i].net;
			out.failed = rec[i].failed > 0 || rec[i].outcome != MEMFENCE_OUTCOME_OK;
			out.refused_rule = rec[i].refused_rule < MF_RULE_N ? rec[i].refused_rule : 0;
			out.refused_asked = rec[i].refused_net + rec[i].refused_size;
			out.refused_need = rec[i].refused_need;
			out.index = rec[i].index;
			memcpy(out.name, rec[i].name, sizeof(out.name));
			memcpy(out.id, rec[i].id, sizeof(out.id));
			if (fn)
				fn(ctx, &out);
		}
	} while (n == RING_BATCH);
}

void sup_seg_read(struct sup_seg *s, struct sup_state *st, int retire_dead,
		  sup_record_fn fn, void *ctx)
{
	static struct mf_seg_scope scopes[MF_SEG_DEFAULT_SCOPES];
	uint64_t cur_alloc = 0, cur_freed = 0, cur_failed[MF_FAIL_NCAUSES] = {0};
	uint64_t cur_thr = 0, cur_ended = 0, live = 0, dead_live = 0;
	uint32_t nslots;

	st->nscopes = 0;
	st->heap_live_dead = 0;
	st->scopes_dropped = 0;
	st->scopes_in_flight = 0;
	st->nprocs = 0;
	if (!s->open)
		return;
	nslots = s->r.hdr->nslots < MF_SEG_DEFAULT_SLOTS ? s->r.hdr->nslots : MF_SEG_DEFAULT_SLOTS;
	for (uint32_t i = 0; i < nslots; i++) {
		struct sup_slotmem *sm = &s->slotmem[i];
		struct mf_segread_slot v;
		const struct mf_seg_slot *c = &v.slot;
		int alive;

		if (mf_seg_slot_never_used(mf_seg_slot_at(s->r.hdr, i)))
			break;
		if (mf_segread_slot(&s->r, i, &v, scopes, MF_SEG_DEFAULT_SCOPES) != 0 ||
		    v.view == MF_SLOT_VIEW_FREE || c->generation == 0)
			continue;
		if (sm->generation != c->generation) {
			/* Reused before we saw its end: count what we had. */
			retire(s, sm);
			memset(sm, 0, sizeof(*sm));
			sm->generation = c->generation;
			sm->oom_alive = s->oom_prev;
		}
		if (sm->retired) {
			/* Counted already; release it once its process is reaped. */
			if (!sm->released && mf_segread_mark_read(&s->r, i, c->generation) == 0)
				sm->released = 1;
			continue;
		}
		if (v.view == MF_SLOT_VIEW_READ)
			continue;    /* released by another reader: not ours to count */
		sm->allocated = c->allocated;
		sm->freed = c->freed;
		memcpy(sm->failed, c->failed, sizeof(sm->failed));
		sm->thread_failed = c->thread_failed;
		sm->scopes_ended = c->scopes_ended;
		alive = v.view == MF_SLOT_VIEW_LIVE;

		if (st->nprocs < SUP_MAX_PROCS) {
			struct sup_proc *p = &st->procs[st->nprocs++];

			memset(p, 0, sizeof(*p));
			p->pid = c->pid;
			p->ppid = c->ppid;
			p->state = c->state;
			p->alive = alive;
			memcpy(p->comm, c->comm, sizeof(c->comm));
			p->live = c->live;
			p->peak = c->peak;
			p->allocated = c->allocated;
			p->freed = c->freed;
			for (int k = 0; k < MF_FAIL_NCAUSES; k++)
				p->failed += c->failed[k];
			p->scopes_open = c->scopes_open;
		}
		add_scopes(st, c->pid, scopes, v.nscopes, v.ntorn);
		/* A killed process's heap is not freed by its death in the
		 * sense a post-mortem asks about: what it held is why it
		 * died, so its slot's last figure is kept apart. */
		if (v.view == MF_SLOT_VIEW_DEAD)
			dead_live += c->live;
		st->scopes_dropped += v.ndropped;
		st->scopes_in_flight += v.ndropped;
		if (alive) {
			uint64_t now = sup_now_ms();

			live += c->live;
			if (now - sm->oom_stamp_ms >= 1000) {
				sm->oom_alive = sm->oom_stamp_ms ? sm->oom_next : s->oom_prev;
				sm->oom_next = s->oom_prev;
				sm->oom_stamp_ms = now;
			}
		} else if (retire_dead && !(s->hold_pid && c->pid == s->hold_pid)) {
			if (v.view == MF_SLOT_VIEW_DEAD && v.nscopes && s->on_dead)
				s->on_dead(s->dead_ctx, c, sm->oom_alive, scopes, v.nscopes);
			retire(s, sm);
			if (mf_segread_mark_read(&s->r, i, c->generation) == 0)
				sm->released = 1;
			continue;
		}
		cur_alloc += sm->allocated;
		cur_freed += sm->freed;
		for (int k = 0; k < MF_FAIL_NCAUSES; k++)
			cur_failed[k] += sm->failed[k];
		cur_thr += sm->thread_failed;
		cur_ended += sm->scopes_ended;
	}
	st->heap_live = live;
	st->heap_live_dead = dead_live;
	if (live > st->heap_peak)
		st->heap_peak = live;
	st->allocated = s->ret_allocated + cur_alloc;
	st->freed = s->ret_freed + cur_freed;
	for (int k = 0; k < MF_FAIL_NCAUSES; k++)
		st->failed[k] = s->ret_failed[k] + cur_failed[k];
	st->threads_failed = s->ret_thread_failed + cur_thr;
	st->scopes_ended = s->ret_scopes_ended + cur_ended;
	st->slot_claims_failed = RELAXED(&s->r.hdr->slot_claims_failed);
	read_ring(s, fn, ctx);
}
