/*
 * segw.h - the shim's side of the shared stats segment: this process's
 * slot, its in-flight scope entries, the ring of finished scopes. Only
 * transport: what to refuse is decided in policy.c.
 */
#ifndef MF_SHIM_SEGW_H
#define MF_SHIM_SEGW_H

#include <stdint.h>

#include "base/segment.h"
#include "shim/scope.h"
#include "shim/util.h"

extern struct mf_seg_header *mf_seg MF_HIDDEN;
extern struct mf_seg_slot *mf_slot MF_HIDDEN;

/* Map MEMFENCE_SEGMENT or create our own; claim a slot. Never fails:
 * without a usable segment the slot is private memory. */
void mf_segw_attach(void) MF_HIDDEN;
/* After fork, in the child: a slot of its own. */
void mf_segw_child(uint64_t inherited_live) MF_HIDDEN;
/* Process end: slot EXITED. */
void mf_segw_exit(void) MF_HIDDEN;

/* An in-flight entry of our slot for a new scope, or -1 when none is free. */
int32_t mf_segw_scope_claim(void) MF_HIDDEN;
/* Copy s (at nesting depth `depth` of thread tid) to its entry. */
void mf_segw_scope_publish(int tid, const struct mf_scope *s, int depth) MF_HIDDEN;
void mf_segw_scope_release(int32_t entry) MF_HIDDEN;
/* Append s, ended at end_mono, to the ring of finished scopes. */
void mf_segw_record(int tid, const struct mf_scope *s, uint64_t end_mono) MF_HIDDEN;

#endif
