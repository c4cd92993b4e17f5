/*
 * report.c - post-mortem reports: the JSON document (docs/report-format.md),
 * its file, and its summary for a person. The journal (journal.c) is the
 * same document.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/msg.h"
#include "supervisor/report.h"
#include "supervisor/state.h"
#include "base/size.h"


static void iso_time(uint64_t unix_s, char *buf, size_t len)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void sup_boot_id(char *buf, size_t len)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

struct sup_at_death sup_at_state(const struct sup_state *st)
{
	struct sup_at_death f = {.set = 1, .usage = st->usage, .working_set = st->working_set,
				 .headroom = st->headroom, .heap_live = st->heap_live};

	return f;
}

json_t *sup_report_json(const struct sup_state *st, const struct sup_death *d, char *const *argv)
{
	json_t *r = json_object(), *a, *o, *child;
	uint64_t now_ns = sup_real_ns();
	struct sup_at_death at = d && d->at.set ? d->at : sup_at_state(st);
	char when[40], boot[64];

	iso_time(now_ns / 1000000000u, when, sizeof(when));
	sup_boot_id(boot, sizeof(boot));
	json_object_set_new(r, "memfence_report", json_integer(1));
	json_object_set_new(r, "time", json_string(when));
	json_object_set_new(r, "time_unix", json_integer((json_int_t)(now_ns / 1000000000u)));
	json_object_set_new(r, "cause", json_string(sup_cause_name(d ? d->cause : SUP_CAUSE_NONE)));
	json_object_set_new(r, "detail", json_string(d ? d->detail
							   : st->child_up ? "the program is running"
									  : "the program is waiting to be restarted"));

	child = json_object();
	json_object_set_new(child, "pid", json_integer(st->child_pid));
	a = json_array();
	for (int i = 0; argv && argv[i]; i++) {
		char clean[512];

		sup_clean(clean, sizeof(clean), argv[i]);
		json_array_append_new(a, json_string(clean));
	}
	json_object_set_new(child, "command", a);
	if (d && d->cause == SUP_CAUSE_EXIT) {
		json_object_set_new(child, "exit_code", json_integer(d->status));
	} else if (d && d->cause != SUP_CAUSE_NONE && d->cause != SUP_CAUSE_LOST) {
		char sig[32];

		snprintf(sig, sizeof(sig), "SIG%s", sigabbrev_np(d->status) ? sigabbrev_np(d->status) : "?");
		json_object_set_new(child, "signal", json_integer(d->status));
		json_object_set_new(child, "signal_name", json_string(sig));
		json_object_set_new(child, "core_dumped", json_boolean(d->core));
	}
	json_object_set_new(child, "runtime_s",
			    json_real(d ? (double)d->runtime_ms / 1000.0
					: (double)(st->now_s - st->child_started_s)));
	json_object_set_new(child, "restarts", json_integer((json_int_t)st->restarts));
	json_object_set_new(r, "child", child);

	json_object_set_new(r, "memory",
			    json_pack("{s:I,s:s,s:I,s:I,s:I,s:I,s:s,s:i,s:I,s:I}", "limit",
				      (json_int_t)st->limit, "limit_from", st->limit_from, "reserve",
				      (json_int_t)st->reserve, "usage", (json_int_t)at.usage,
				      "working_set", (json_int_t)at.working_set, "headroom",
				      (json_int_t)at.headroom, "cgroup", st->cgroup, "cgroup_version",
				      st->cgroup_version, "oom_kills_before",
				      (json_int_t)(d ? d->oom_before : st->oom_kill), "oom_kills_after",
				      (json_int_t)(d ? d->oom_after : st->oom_kill)));
	json_object_set_new(r, "heap",
			    json_pack("{s:b,s:I,s:I,s:I,s:I,s:I}", "accounting", st->accounting,
				      "live", (json_int_t)at.heap_live, "peak",
				      (json_int_t)(at.heap_live > st->heap_peak ? at.heap_live
										: st->heap_peak),
				      "allocated",
				      (json_int_t)st->allocated, "freed", (json_int_t)st->freed,
				      "scopes_ended", (json_int_t)st->scopes_ended));
	o = json_object();
	for (int c = 0; c < MF_FAIL_NCAUSES; c++)
		json_object_set_new(o, sup_fail_name(c), json_integer((json_int_t)st->failed[c]));
	json_object_set_new(o, "thread_start", json_integer((json_int_t)st->threads_failed));
	json_object_set_new(r, "failures", o);

	a = json_array();
	for (uint32_t i = 0; i < st->nscopes; i++)
		json_array_append_new(a, sup_scope_json(&st->scopes[i], now_ns));
	json_object_set_new(r, "in_flight", a);
	json_object_set_new(r, "in_flight_total", json_integer(st->scopes_in_flight));

	a = json_array();
	for (uint32_t i = 0; i < st->nprocs; i++) {
		const struct sup_proc *p = &st->procs[i];
		char comm[17];

		sup_clean(comm, sizeof(comm), p->comm);
		json_array_append_new(a, json_pack("{s:i,s:i,s:s,s:b,s:I,s:I,s:I}", "pid", (int)p->pid,
						   "ppid", (int)p->ppid, "comm", comm, "alive",
						   p->alive, "live", (json_int_t)p->live, "peak",
						   (json_int_t)p->peak, "failed", (json_int_t)p->failed));
	}
	json_object_set_new(r, "processes", a);

	a = json_array();
	for (uint32_t k = 0; k < st->tl_len; k++) {
		const struct sup_point *pt =
			&st->timeline[(st->tl_pos + SUP_TIMELINE - st->tl_len + k) % SUP_TIMELINE];

		json_array_append_new(a, json_pack("{s:I,s:I,s:I,s:I}", "t", (json_int_t)pt->t_s,
						   "usage", (json_int_t)pt->usage, "working_set",
						   (json_int_t)pt->working_set, "heap_live",
						   (json_int_t)pt->heap_live));
	}
	json_object_set_new(r, "timeline", a);
	json_object_set_new(r, "supervisor",
			    json_pack("{s:i,s:s,s:b,s:s}", "pid", (int)st->sup_pid, "boot_id", boot,
				      "oom_score_adj_held", st->oom_adj_held > 0, "oom_score_adj_note",
				      st->oom_adj_note));
	return r;
}

int sup_mkdirs(const char *dir)
{
	char p[MF_PATH_MAX];

	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Write j to path through a temporary file and rename(2): a reader (or
 * the next start) sees the old file or the new one, never half of one. */
int sup_write_atomic(json_t *j, const char *path)
{
	char tmp[MF_PATH_MAX + 16];
	int fd, err = 0;
	/* One buffer, written whole: json_dumpfd() writes each token with a
	 * write(2) of its own (300 calls for the model of a short run, and the
	 * journal is rewritten every second). */
	char *text = json_dumps(j, JSON_INDENT(2));
	size_t len, off = 0;

	if (text == NULL)
		return -ENOMEM;
	len = strlen(text);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* A fresh file: whatever had the name (a FIFO would block the open,
	 * a symbolic link would redirect the write) is not written through. */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		free(text);
		return err;
	}
	while (off < len && !err) {
		ssize_t n = write(fd, text + off, len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno != EINTR)
			err = -errno;
		else if (n == 0)
			err = -EIO;
	}
	if (!err && write(fd, "\n", 1) != 1)
		err = errno ? -errno : -EIO;
	free(text);
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static int is_report(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return strncmp(d->d_name, "memfence-report-", 16) == 0 && n > 5 &&
	       strcmp(d->d_name + n - 5, ".json") == 0;
}

/* memfence-PID.prof, as the profiler names its snapshots (not its
 * temporary files, which it renames over them). */
static int is_profile(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return strncmp(d->d_name, "memfence-", 9) == 0 && n > 14 &&
	       strspn(d->d_name + 9, "0123456789") == n - 14 && strcmp(d->d_name + n - 5, ".prof") == 0;
}

struct kept {
	char *name;
	struct timespec mtime;
	off_t size;
};

static int newest_first(const void *a, const void *b)
{
	const struct kept *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
	return strcmp(y->name, x->name);
}

/* Keep the newest files of a kind within SUP_KEEP_FILES and SUP_KEEP_BYTES
 * (the newest one always), remove the others. */
static void prune(const char *dir, int (*kind)(const struct dirent *))
{
	struct dirent **list;
	struct kept *k;
	char path[MF_PATH_MAX + 300];
	int n = scandir(dir, &list, kind, alphasort), m = 0;
	uint64_t bytes = 0;

	if (n < 0)
		return;
	k = calloc((size_t)n + 1, sizeof(*k));
	for (int i = 0; i < n; i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if (k && lstat(path, &st) == 0 && S_ISREG(st.st_mode))
			k[m++] = (struct kept){list[i]->d_name, st.st_mtim, st.st_size};
	}
	if (k)
		qsort(k, (size_t)m, sizeof(*k), newest_first);
	for (int i = 0; i < m; i++) {
		bytes += (uint64_t)k[i].size;
		if (i == 0 || (i < SUP_KEEP_FILES && bytes <= SUP_KEEP_BYTES))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, k[i].name);
		unlink(path);
	}
	free(k);
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void sup_profiles_prune(const char *dir)
{
	prune(dir, is_profile);
}

int sup_report_write(json_t *report, const char *dir, char *out, size_t outlen)
{
	static unsigned seq;
	char when[40], path[MF_PATH_MAX];
	json_int_t t = json_integer_value(json_object_get(report, "time_unix"));
	int err = sup_mkdirs(dir);

	if (err)
		return err;
	iso_time((uint64_t)t, when, sizeof(when));
	/* ISO time without colons: file names that every tool accepts. */
	for (char *c = when; *c; c++)
		if (*c == ':' || *c == '-')
			memmove(c, c + 1, strlen(c));
	snprintf(path, sizeof(path), "%s/memfence-report-%s-%d-%u.json", dir, when, (int)getpid(),
		 seq++);
	err = sup_write_atomic(report, path);
	if (!err) {
		snprintf(out, outlen, "%s", path);
		prune(dir, is_report);
	}
	return err;
}

static uint64_t num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

const char *sup_json_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

void sup_report_print(FILE *f, json_t *r, int full)
{
	json_t *child = json_object_get(r, "child"), *mem = json_object_get(r, "memory");
	json_t *heap = json_object_get(r, "heap"), *fail = json_object_get(r, "failures");
	json_t *inf = json_object_get(r, "in_flight"), *v, *cmd;
	const char *pre = full ? "" : "memfence: ";
	const char *k;
	size_t i;
	char a[32], b[32], c[32], d[32];
	int any = 0;

	fprintf(f, "%s%s: %s\n", pre, sup_json_str(r, "time"), sup_json_str(r, "detail"));
	fprintf(f, "%s  cause: %s; program pid %lld", pre, sup_json_str(r, "cause"),
		(long long)num(child, "pid"));
	cmd = json_object_get(child, "command");
	if (json_array_size(cmd)) {
		fprintf(f, ":");
		json_array_foreach(cmd, i, v)
			fprintf(f, " %s", json_is_string(v) ? json_string_value(v) : "?");
	}
	fprintf(f, "\n");
	fprintf(f, "%s  memory: limit %s (%s), usage %s, working set %s, headroom %s\n", pre,
		mf_size_format(num(mem, "limit"), a, sizeof(a)), sup_json_str(mem, "limit_from"),
		mf_size_format(num(mem, "usage"), b, sizeof(b)),
		mf_size_format(num(mem, "working_set"), c, sizeof(c)),
		mf_size_format(num(mem, "headroom"), d, sizeof(d)));
	if (json_is_true(json_object_get(heap, "accounting")))
		fprintf(f, "%s  heap: live %s, peak %s\n", pre,
			mf_size_format(num(heap, "live"), a, sizeof(a)),
			mf_size_format(num(heap, "peak"), b, sizeof(b)));
	fprintf(f, "%s  allocation failures:", pre);
	json_object_foreach(fail, k, v) {
		if (json_integer_value(v) > 0) {
			fprintf(f, " %s %lld", k, (long long)json_integer_value(v));
			any = 1;
		}
	}
	fprintf(f, "%s\n", any ? "" : " none");
	fprintf(f, "%s  in flight at the end: %lld scope(s)\n", pre,
		(long long)json_integer_value(json_object_get(r, "in_flight_total")));
	json_array_foreach(inf, i, v) {
		if (!full && i >= 10) {
			fprintf(f, "%s    ... and %zu more (see the report)\n", pre,
				json_array_size(inf) - i);
			break;
		}
		fprintf(f, "%s    pid %lld tid %lld %s id %s: allocated %s, net %s, peak %s%s, open %.1fs\n",
			pre, (long long)num(v, "pid"), (long long)num(v, "tid"), sup_json_str(v, "name"),
			sup_json_str(v, "id")[0] ? sup_json_str(v, "id") : "-",
			mf_size_format(num(v, "allocated"), a, sizeof(a)),
			mf_size_format(num(v, "net"), b, sizeof(b)),
			mf_size_format(num(v, "peak"), c, sizeof(c)),
			num(v, "failed") ? ", allocations refused" : "",
			json_real_value(json_object_get(v, "age_s")));
	}
	if (!full)
		return;
	v = json_object_get(r, "processes");
	if (json_array_size(v)) {
		json_t *p;

		fprintf(f, "  processes:\n");
		json_array_foreach(v, i, p)
			fprintf(f, "    pid %lld (%s)%s: heap live %s, peak %s, failed %lld\n",
				(long long)num(p, "pid"), sup_json_str(p, "comm"),
				json_is_true(json_object_get(p, "alive")) ? "" : " ended",
				mf_size_format(num(p, "live"), a, sizeof(a)),
				mf_size_format(num(p, "peak"), b, sizeof(b)), (long long)num(p, "failed"));
	}
	v = json_object_get(r, "timeline");
	if (json_array_size(v)) {
		json_t *p;
		uint64_t t0 = num(json_array_get(v, json_array_size(v) - 1), "t");

		fprintf(f, "  memory timeline (seconds before the end):\n");
		fprintf(f, "    %6s %12s %12s %12s\n", "t", "usage", "working set", "heap");
		json_array_foreach(v, i, p)
			fprintf(f, "    %6lld %12s %12s %12s\n", -(long long)(t0 - num(p, "t")),
				mf_size_format(num(p, "usage"), a, sizeof(a)),
				mf_size_format(num(p, "working_set"), b, sizeof(b)),
				mf_size_format(num(p, "heap_live"), c, sizeof(c)));
	}
}
