/*
 * maps.h - the anonymous mappings the program made through the mmap hook,
 * and their sizes (mmaps.c).
 */
#ifndef MF_SHIM_MAPS_H
#define MF_SHIM_MAPS_H

#include <signal.h>
#include <stdint.h>

#include "shim/util.h"

/* Track [addr, addr+len); 0, or -1 when the table is full (not counted). */
int mf_maps_add(uintptr_t addr, uint64_t len) MF_HIDDEN;
/* Forget every tracked byte in [addr, addr+len); returns how many. */
uint64_t mf_maps_remove(uintptr_t addr, uint64_t len) MF_HIDDEN;
/* Tracked bytes in [addr, addr+len). */
uint64_t mf_maps_tracked(uintptr_t addr, uint64_t len) MF_HIDDEN;
int mf_maps_any(void) MF_HIDDEN;
/* The table lock: held around the real munmap/mremap so that an address
 * is never reused between the syscall and the table update. Blocks
 * signals while held (a handler may call munmap). */
void mf_maps_lock(sigset_t *saved) MF_HIDDEN;
void mf_maps_unlock(const sigset_t *saved) MF_HIDDEN;
void mf_maps_atfork_prepare(void) MF_HIDDEN;
void mf_maps_atfork_parent(void) MF_HIDDEN;
void mf_maps_atfork_child(void) MF_HIDDEN;

#endif
