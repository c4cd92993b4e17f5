/*
 * quar.h - quarantine deaths (quar.c): scopes that died with their
 * process, written to the store by a thread of their own.
 */
#ifndef MF_SUP_QUAR_H
#define MF_SUP_QUAR_H

#include <stddef.h>
#include <stdint.h>

#include "base/segment.h"

/* One scope that died with its process, to count in the quarantine. */
struct sup_qdeath {
	char id[MF_SEG_NAME_LEN];
	char name[MF_SEG_NAME_LEN];
	int cause;                   /* enum sup_cause */
	int32_t pid;
	uint64_t peak, allocated, net;
};

/* Open the store (spec as --quarantine takes it; "" = STATE_DIR's file)
 * and start the writer thread. -EINVAL for a malformed spec (err says
 * why); other store errors are warned about and retried at each death. */
int sup_quar_start(const char *spec, const char *state_dir, char *err, size_t errlen);
/* Queue a death; never blocks on the store. */
void sup_quar_push(const struct sup_qdeath *d);
/* Write what is queued, then stop the thread. */
void sup_quar_stop(void);
void sup_quar_counts(uint64_t *recorded, uint64_t *errors, uint64_t *dropped);

#endif
