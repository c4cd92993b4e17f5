/*
 * config.c - MEMFENCE_* variables, read without allocating.
 *
 * The shim may configure itself from its first hook, before libc has set
 * up `environ` for getenv(), and getenv() is not something to call inside
 * malloc anyway; so variables are looked up in the envp the dynamic loader
 * hands to our constructor, by hand. Under AT_SECURE (setuid and friends)
 * nothing is read and nothing is counted: an environment-controlled file
 * path must not reach a privileged program.
 *
 * Variables:
 *   MEMFENCE_ACCOUNT=0|1     0 forwards everything uncounted; 1 counts (any
 *                            boolean word, mf_env_bool). Unset:
 *                            count when LD_PRELOAD names libmemfence (a
 *                            program merely linked with -lmemfence is off).
 *   MEMFENCE_SEGMENT=PATH    stats segment to join (made by the supervisor or
 *                            `memfence exec --account`)
 *   MEMFENCE_SEGMENT_MAKE=0  do not make MEMFENCE_SEGMENT when it is missing
 *                            (the supervisor's: it has ended); count privately
 *   MEMFENCE_SEGMENT_FD=N    an open descriptor of MEMFENCE_SEGMENT (set by the
 *                            supervisor), used when the path cannot be opened:
 *                            a program that dropped its privileges (segw.c)
 *   MEMFENCE_HEAP_LIMIT=SIZE process live-bytes limit (512M, 2GiB; 0 = none)
 *   MEMFENCE_FAULT=SPEC      fault injection, see mf_fault_parse()
 *   MEMFENCE_PRESSURE=SIZE|PCT|off  where the zero-collateral policy starts
 *                            refusing the largest scope (policy.c); default
 *                            the limit minus a guard, see mf_pressure_lines()
 *   MEMFENCE_BUDGET=BYTES    the limit that policy protects (set by `memfence
 *                            exec` and `run`); else the RLIMIT_DATA or
 *                            RLIMIT_AS soft limit
 */
#include <errno.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/env.h"
#include "base/envspec.h"
#include "base/lines.h"
#include "base/size.h"
#include "shim/config.h"

struct mf_config mf_cfg;

int mf_glob(const char *pat, const char *s)
{
	const char *star = NULL, *mark = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			mark = s;
		} else if (*pat == '?' || *pat == *s) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++mark;
		} else {
			return 0;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_size(const char *s, size_t len, uint64_t *out, const char **err)
{
	char buf[64];

	if (len >= sizeof(buf)) {
		*err = "size too long";
		return -1;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	return mf_size_parse(buf, 0, out, err);
}

static int parse_errno(const char *s, size_t len, int *out)
{
	static const struct {
		const char *name;
		int err;
	} names[] = {{"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EPERM", EPERM}, {"EINVAL", EINVAL}};
	uint64_t v;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == len && strncmp(s, names[i].name, len) == 0) {
			*out = names[i].err;
			return 0;
		}
	if (parse_u64(s, len, &v) == 0 && v > 0 && v < 4096) {
		*out = (int)v;
		return 0;
	}
	return -1;
}

/*
 * MEMFENCE_FAULT: comma-separated terms, all of which must hold for an
 * allocation to be failed (ENOMEM, counted as failed_fault):
 *   nth=N        the Nth matching allocation fails (once)
 *   every=N      every Nth matching allocation fails
 *   after=SIZE   a matching allocation fails when the bytes requested by
 *                earlier matching allocations plus its own pass SIZE
 *   size>=SIZE   only allocations of at least SIZE bytes match (alone: all
 *                of them fail)
 *   thread=ERR   pthread_create fails with ERR (EAGAIN, ENOMEM, EPERM or a
 *                number) without starting a thread
 *   scope=GLOB   only while an open scope of the thread has a name matching
 *                GLOB ('*' and '?'); applies to allocations and threads
 * "Allocation" means every counted call: the malloc family and anonymous
 * private writable mmap. Counting of nth/every/after is per process, in
 * call order: deterministic for a single-threaded sequence.
 */
static int fault_parse(const char *spec, struct mf_fault *f, const char **err)
{
	const char *p = spec;

	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen, vlen;
		const char *v;

		if (len == 0) {
			p++;
			continue;
		}
		if (eq == NULL) {
			*err = "a term has no '=' (e.g. nth=3,size>=1M)";
			return -1;
		}
		klen = (size_t)(eq - p);
		v = eq + 1;
		vlen = len - klen - 1;
#define KEY(k) (klen == sizeof(k) - 1 && strncmp(p, k, klen) == 0)
		if (KEY("nth") || KEY("every")) {
			uint64_t n;
			if (parse_u64(v, vlen, &n) != 0 || n == 0) {
				*err = "nth= and every= take a count of at least 1";
				return -1;
			}
			if (KEY("nth"))
				f->nth = n;
			else
				f->every = n;
			f->alloc_on = 1;
		} else if (KEY("after")) {
			if (parse_size(v, vlen, &f->after, err) != 0)
				return -1;
			f->after_set = 1;
			f->alloc_on = 1;
		} else if (KEY("size>")) {
			if (parse_size(v, vlen, &f->min_size, err) != 0)
				return -1;
			f->alloc_on = 1;
		} else if (KEY("thread")) {
			if (parse_errno(v, vlen, &f->thread_errno) != 0) {
				*err = "thread= takes EAGAIN, ENOMEM, EPERM or an errno number";
				return -1;
			}
		} else if (KEY("scope")) {
			if (vlen == 0 || vlen >= sizeof(f->scope)) {
				*err = "scope= takes a name pattern of 1 to 63 bytes";
				return -1;
			}
			memcpy(f->scope, v, vlen);
			f->scope[vlen] = '\0';
		} else {
			*err = "unknown term (use nth=, every=, after=, size>=, thread=, scope=)";
			return -1;
		}
#undef KEY
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

int mf_fault_parse(const char *spec, struct mf_fault *f, const char **err)
{
	memset(f, 0, sizeof(*f));
	if (fault_parse(spec, f, err) == 0)
		return 0;
	memset(f, 0, sizeof(*f));
	return -1;
}

/*
 * The limit the process must stay under, and the lines of the
 * zero-collateral policy below it (policy.c), drawn by mf_lines_below
 * (base/lines.c) as the container's are. Default guard: mf_pressure_guard
 * (base/lines.c, which says why; the admission gate and `memfence
 * diagnose` count under the same line). A soft line given at or above the
 * limit, or with none known, stands for a limit an eighth above it.
 */
int mf_pressure_lines(uint64_t limit, const char *spec, struct mf_lines *lines, const char **err)
{
	uint64_t soft, above;

	*lines = (struct mf_lines){0, 0, 0};
	if (spec != NULL && (strcmp(spec, "off") == 0 || strcmp(spec, "0") == 0))
		return 0;
	if (spec == NULL || *spec == '\0') {
		*lines = mf_lines_below(limit, mf_pressure_guard(limit));
		return 0;
	}
	if (mf_size_parse(spec, limit, &soft, err) != 0)
		return -1;
	if (soft == 0) /* "0%", like "0": off */
		return 0;
	if (soft < limit) {
		*lines = mf_lines_below(limit, limit - soft);
		return 0;
	}
	above = soft / 8;
	limit = soft > UINT64_MAX - above ? UINT64_MAX : soft + above;
	*lines = mf_lines_below(limit, limit - soft);
	return 0;
}

static void pressure_config(char **envp)
{
	const char *v = mf_env_get(envp, MF_ENV(BUDGET)), *err;
	struct rlimit data, as;
	struct mf_lines lines;
	uint64_t limit = 0;

	if (v != NULL && *v != '\0' && mf_size_parse(v, 0, &limit, &err) != 0) {
		mf_say("invalid " MF_ENV_LIT(BUDGET) ": ", err, "; using the rlimit");
		limit = 0;
	}
	if (getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY) {
		if (limit == 0 || data.rlim_cur < limit)
			limit = data.rlim_cur;
	} else if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
		if (limit == 0 || as.rlim_cur < limit)
			limit = as.rlim_cur;
		mf_cfg.press_measure_size = 1;
	}
	mf_cfg.press_limit = limit;
	v = mf_env_get(envp, "GLIBC_TUNABLES");
	mf_cfg.press_mmap = mf_env_get(envp, "MALLOC_MMAP_THRESHOLD_") == NULL &&
			    (v == NULL || strstr(v, "mmap_threshold") == NULL);
	mf_cfg.press_trim = mf_env_get(envp, "MALLOC_TRIM_THRESHOLD_") == NULL &&
			    (v == NULL || strstr(v, "trim_threshold") == NULL);

	v = mf_env_get(envp, MF_ENV(PRESSURE));
	if (mf_pressure_lines(limit, v, &lines, &err) != 0)
		mf_say("invalid " MF_ENV_LIT(PRESSURE) ": ", err,
		       limit == 0 ? " (a percentage needs a limit); the policy stays off"
				  : "; the policy stays off");
	mf_cfg.press_soft = lines.soft;
	mf_cfg.press_hard = lines.hard;
	mf_cfg.press_last = lines.last;
}

static int preloaded(char **envp)
{
	const char *pre = mf_env_get(envp, "LD_PRELOAD");

	return pre != NULL && strstr(pre, "libmemfence") != NULL;
}

void mf_config_read(char **envp)
{
	const char *v, *err;

	memset(&mf_cfg, 0, sizeof(mf_cfg));
	if (getauxval(AT_SECURE) != 0)
		return;
	mf_say_init(envp);
	v = mf_env_get(envp, MF_ENV(ACCOUNT));
	if (v != NULL && *v != '\0') {
		int on;

		if (mf_env_bool(v, &on) != 0) {
			mf_say(MF_ENV_LIT(ACCOUNT) "='", v,
			       "' is not " MF_ENV_BOOL_WORDS "; accounting stays off");
			return;
		}
		if (!on)
			return;
	} else if (!preloaded(envp)) {
		return;
	}
	mf_cfg.account = 1;

	v = mf_env_get(envp, MF_ENV(SEGMENT));
	mf_cfg.segment = v != NULL && *v != '\0' ? v : NULL;
	/* The supervisor's segment is its own to make: gone, it means the
	 * supervisor has ended, and a file made now would be left behind. */
	v = mf_env_get(envp, MF_ENV(SEGMENT_MAKE));
	mf_cfg.segment_make = 1;
	if (v != NULL && *v != '\0' && mf_env_bool(v, &mf_cfg.segment_make) != 0) {
		mf_say(MF_ENV_LIT(SEGMENT_MAKE) " is not ", MF_ENV_BOOL_WORDS, ": the segment is not made");
		mf_cfg.segment_make = 0;
	}

	mf_cfg.segment_fd = -1;
	v = mf_env_get(envp, MF_ENV(SEGMENT_FD));
	if (v != NULL && *v != '\0') {
		int fd = 0;
		const char *c = v;

		/* Silent when malformed: the path is tried first, and the
		 * descriptor is checked against it before it is used. */
		for (; *c >= '0' && *c <= '9' && fd < 1 << 20; c++)
			fd = fd * 10 + (*c - '0');
		if (*c == '\0')
			mf_cfg.segment_fd = fd;
	}

	v = mf_env_get(envp, MF_ENV(HEAP_LIMIT));
	if (v != NULL && *v != '\0' && mf_size_parse(v, 0, &mf_cfg.heap_limit, &err) != 0) {
		mf_say("invalid " MF_ENV_LIT(HEAP_LIMIT) ": ", err, "; no heap limit");
		mf_cfg.heap_limit = 0;
	}

	pressure_config(envp);

	v = mf_env_get(envp, MF_ENV(FAULT));
	if (v != NULL && *v != '\0' && mf_fault_parse(v, &mf_cfg.fault, &err) != 0)
		mf_say("invalid " MF_ENV_LIT(FAULT) ": ", err, "; no fault injection");
}
