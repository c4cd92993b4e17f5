/*
 * policy.h - admission: whether an allocation may go ahead (policy.c).
 *
 * Every reason the shim refuses an allocation is decided here: fault
 * injection, scope budgets, the heap limit, the process's pressure policy
 * and the container's headroom. The decisions count nothing: the hooks
 * count a refusal (mf_count_fail) and tell the profiler.
 */
#ifndef MF_SHIM_POLICY_H
#define MF_SHIM_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "shim/thread.h"
#include "shim/util.h"

/* Allocations at least this large take the checked path; the pressure
 * policy and container headroom look at these only. */
#define MF_LARGE (64u << 10)
/* A scope holding less than this is never refused for pressure. */
#define MF_PRESS_MIN_NET (1u << 20)

/* At start-up, with the configuration read, the real allocator known to be
 * glibc's (or not) and its mallopt (NULL if none). */
void mf_policy_init(int glibc, int (*set_opt)(int, int)) MF_HIDDEN;
/* A scope is about to open: the first one fixes glibc's mmap and trim
 * thresholds when the pressure policy needs freed large blocks returned
 * (policy.c says why). One relaxed load after that. */
void mf_policy_scope_opens(void) MF_HIDDEN;
/* Whether blocks of MF_BIG bytes and more are the shim's (large.c): the
 * mmap threshold was fixed and the program has not set one since. */
bool mf_policy_big_blocks(void) MF_HIDDEN;
/* Whether the process and its container are at least margin bytes below
 * their soft lines (estimates: mf_pressure_estimate, the supervisor's
 * last sample of the container). */
bool mf_policy_roomy(uint64_t margin) MF_HIDDEN;
/* The shim unmapped bytes of its own: lower the last sample of the
 * process's size, so that an allocation decided again sees it now. */
void mf_pressure_released(uint64_t bytes) MF_HIDDEN;
/* The program called mallopt(param, ...): a threshold it sets is its own,
 * never overridden. */
void mf_policy_user_mallopt(int param) MF_HIDDEN;

/* Admission of an allocation of req bytes by t (NULL: a thread past its
 * exit handler) before the real call: fault injection, scope budgets,
 * heap limit, container headroom, pressure. 0, or the MF_FAIL_* cause. */
int mf_admit_pre(struct mf_thread *t, uint64_t req) MF_HIDDEN;
/* After the real call produced usable bytes u (the growth, for a
 * realloc): exact budget check, heap-limit credit taken. 0, or the cause;
 * the caller undoes the allocation on refusal. */
int mf_admit_post(struct mf_thread *t, uint64_t u) MF_HIDDEN;
/* The rule (enum mf_refusal_rule) behind a cause mf_admit_pre or
 * mf_admit_post returned for req bytes: asked again on the refusal's path
 * only, so that admission itself stays as it is. */
uint32_t mf_admit_rule(const struct mf_thread *t, int cause, uint64_t req) MF_HIDDEN;
/* Give back what mf_admit_post took for an allocation that then failed or
 * was undone. */
void mf_admit_undo(struct mf_thread *t, uint64_t u) MF_HIDDEN;
/* Fault injection for pthread_create: the errno to fail with, or 0. */
int mf_fault_thread(struct mf_thread *t) MF_HIDDEN;

/*
 * The rule the pressure policy and the container headroom share. est is
 * what the measure (the process's size, the container's working set)
 * would be with the allocation; two lines sit below the limit:
 *   below soft          nothing is refused;
 *   between soft, hard  only the allocation whose scope would then be the
 *                       largest in flight (mf_largest_refused);
 *   above hard          every checked allocation is.
 */
enum mf_zone { MF_ZONE_BELOW, MF_ZONE_BETWEEN, MF_ZONE_ABOVE };
enum mf_zone mf_zone_of(uint64_t est, uint64_t soft, uint64_t hard) MF_HIDDEN;
/* Between the lines: refused when own (the net bytes the allocating scope
 * would hold) is at least the largest other scope in flight, or when no
 * other scope holds MF_PRESS_MIN_NET (nobody else to prefer). */
bool mf_largest_refused(int64_t own, int64_t largest_other) MF_HIDDEN;
/* Between the process's hard and last lines: true when a larger scope than
 * own is in flight and holds at least excess (the estimate over the soft
 * line), so that refusing it, not own, brings the process back below soft. */
bool mf_larger_yields(int64_t own, int64_t largest_other, uint64_t excess) MF_HIDDEN;

/* The pressure policy (MEMFENCE_PRESSURE): 1 if the large allocation of
 * req bytes by t must be refused because the process is near its limit. */
int mf_pressure_refuse(struct mf_thread *t, uint64_t req) MF_HIDDEN;
/* The process's measured size (VmData, or VmSize) plus live growth since
 * the last measurement: rate-limited, never blocks. */
uint64_t mf_pressure_estimate(void) MF_HIDDEN;
/* The same for a caller that asks whether extra bytes more fit below line:
 * far below it, an older sample serves. */
uint64_t mf_pressure_estimate_near(uint64_t line, uint64_t extra) MF_HIDDEN;
/* Container headroom published by the supervisor: 1 if an allocation of
 * size bytes by t must be refused. */
int mf_container_refuse(struct mf_thread *t, uint64_t size) MF_HIDDEN;
/* True when a scope larger than own net bytes (and of at least
 * MF_PRESS_MIN_NET) is in flight, t's open ones left out: that one yields
 * first. Where: in any process of the segment (container), else in this
 * process. */
bool mf_larger_in_flight(const struct mf_thread *t, int64_t own, bool container) MF_HIDDEN;

/* 1 if in-flight entry `entry` of our slot is one of t's open scopes. */
int mf_scope_is_own(const struct mf_thread *t, uint32_t entry) MF_HIDDEN;
/* Largest net of t's open scopes (0 if none is positive). */
int64_t mf_scope_own_net(const struct mf_thread *t) MF_HIDDEN;

#endif
