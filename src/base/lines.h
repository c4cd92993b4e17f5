/*
 * lines.h - the budget under a limit, where refusals start below it, and
 * how many requests fit under a line: the figures the plan applies, the
 * shim enforces (for the process and for the container, from the limit
 * and reserve the supervisor publishes) and the host reports, computed
 * here once so that all say the same.
 *
 * Shim-safe: libc only, no allocation.
 */
#ifndef MF_LINES_H
#define MF_LINES_H

#include <stdint.h>

/*
 * What may be used under limit with reserve kept free: limit - reserve;
 * 0 when the reserve leaves nothing (reserve >= limit) or the limit is
 * unknown (0). The plan refuses such a reserve; a reader of someone else's
 * figures (a post-mortem) then has no budget and falls back on the limit.
 */
uint64_t mf_budget(uint64_t limit, uint64_t reserve);

/*
 * The three lines of the zero-collateral policy (src/shim/policy.c) under
 * limit, guard below it: soft at limit - guard (above, the largest scope is
 * refused), hard at limit - guard / 2 (above, a smaller one too unless a
 * larger one holds the excess), last at limit - guard / 4 (above,
 * everyone). A guard past the limit is the limit: soft at 0. The process's
 * lines take mf_pressure_guard(limit) or what MEMFENCE_PRESSURE says, the
 * container's the reserve. limit 0 (unknown, nothing to protect): all 0,
 * the policy off.
 */
struct mf_lines {
	uint64_t soft, hard, last;
};
struct mf_lines mf_lines_below(uint64_t limit, uint64_t guard);

/* The default distance of the zero-collateral policy's soft line below a
 * process's limit (src/shim/config.c, mf_pressure_lines). */
uint64_t mf_pressure_guard(uint64_t limit);

/*
 * How many requests of need bytes fit at once under line when held bytes
 * are taken by what runs outside them. The admission gate admits a request
 * while the room under its line covers the needs of those admitted plus its
 * own (src/shim/gate.c): this is how many it lets in at once, and what
 * `memfence diagnose` reports the budget holds. 0: not even one.
 */
uint64_t mf_gate_fit(uint64_t line, uint64_t held, uint64_t need);

/* The line the gate admits against in a process of this limit with the
 * default pressure lines: the soft line. Above it the policy refuses the
 * largest request, so a gate that admitted past it would turn waits into
 * refusals. */
uint64_t mf_gate_line(uint64_t limit);

#endif
