/*
 * lines.c - the lines below a limit, shared by the shim and the host.
 */
#include "base/lines.h"

/*
 * A quarter of the limit: room for what the runtime allocates outside
 * requests, and for the requests still running when the largest is
 * refused, which go on growing until it has unwound and freed (an eighth
 * was measured too little on a loaded machine: 1 to 2 ordinary calls of
 * 295 refused at the hard line).
 */
uint64_t mf_pressure_guard(uint64_t limit)
{
	return limit / 4;
}

uint64_t mf_budget(uint64_t limit, uint64_t reserve)
{
	return reserve < limit ? limit - reserve : 0;
}

struct mf_lines mf_lines_below(uint64_t limit, uint64_t guard)
{
	struct mf_lines l = {0, 0, 0};

	if (limit == 0)
		return l;
	if (guard > limit)
		guard = limit;
	l.soft = limit - guard;
	l.hard = limit - guard / 2;
	l.last = limit - guard / 4;
	return l;
}

uint64_t mf_gate_fit(uint64_t line, uint64_t held, uint64_t need)
{
	if (need == 0 || line <= held)
		return 0;
	return (line - held) / need;
}

uint64_t mf_gate_line(uint64_t limit)
{
	return mf_lines_below(limit, mf_pressure_guard(limit)).soft;
}
