/*
 * lines.h - where refusals start below a limit, and how many requests fit
 * under a line: the figures the shim enforces and the host reports, so
 * that both say the same.
 *
 * Shim-safe: libc only, no allocation.
 */
#ifndef MF_LINES_H
#define MF_LINES_H

#include <stdint.h>

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
