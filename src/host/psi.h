/*
 * psi.h - memory pressure stall information (PSI) of a cgroup v2:
 * memory.pressure (Documentation/accounting/psi.rst).
 *
 * "some" is the share of time at least one task of the cgroup was stalled
 * waiting for memory (reclaim, refaults, swap-in); "full" the share of time
 * all its non-idle tasks were, which is time the program made no progress
 * at all. The averages are percentages over 10, 60 and 300 s; total is the
 * stall time in microseconds since the cgroup was made.
 */
#ifndef MF_PSI_H
#define MF_PSI_H

#include <stdint.h>

struct mf_psi_line {
	double avg10, avg60, avg300; /* percent */
	uint64_t total_us;
};

struct mf_psi {
	struct mf_psi_line some, full;
	int has_full;                /* 0 on kernels before 5.x that had no full line */
};

/* Parse memory.pressure contents. 0, or -1 with *why set. */
int mf_psi_parse(const char *buf, struct mf_psi *out, const char **why);

/* Read memory.pressure in a cgroup v2 directory (a path already under the
 * root prefix, as struct mf_memory's cgroup_dir). 0, or -errno: -ENOENT
 * where the kernel has no PSI (built without CONFIG_PSI, booted with psi=0)
 * or the cgroup is the real root; -EINVAL for contents that do not parse. */
int mf_psi_read(const char *cgroup_dir, struct mf_psi *out);

#endif
