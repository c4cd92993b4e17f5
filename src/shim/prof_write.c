/*
 * prof_write.c - the profiler's snapshot file (format in docs/profiler.md,
 * read by src/profile/profile.c): written with write(2) from a fixed
 * buffer beside its final name and renamed over it, and the executable
 * mappings of /proc/self/maps its native frames are relative to.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* rename */
#include <string.h>
#include <unistd.h>

#include "base/proc.h"
#include "base/size.h"
#include "shim/prof_int.h"
#include "shim/segw.h"

#define MODS_MAX 512

struct out {
	int fd;
	int err;
	size_t n;
	char buf[1 << 16];
};

static struct out W;

static void out_flush(struct out *o)
{
	size_t done = 0;

	while (done < o->n && o->err == 0) {
		ssize_t r = write(o->fd, o->buf + done, o->n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			o->err = r < 0 ? errno : EIO;
		else
			done += (size_t)r;
	}
	o->n = 0;
}

static void out_str(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (o->n == sizeof(o->buf))
			out_flush(o);
		o->buf[o->n++] = *s;
	}
}

static void out_u64(struct out *o, uint64_t v)
{
	char tmp[MF_U64_DEC_LEN];

	out_str(o, mf_u64_dec(v, tmp));
}

static void out_hex(struct out *o, uint64_t v)
{
	char tmp[24];
	int i = sizeof(tmp) - 1;

	tmp[i] = '\0';
	do {
		tmp[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v != 0);
	out_str(o, tmp + i);
}

static void out_d(struct out *o, double d)
{
	out_u64(o, d > 0 ? (uint64_t)(d + 0.5) : 0);
}

/*
 * Executable mappings from /proc/self/maps (read with open/read, no loader
 * lock: dl_iterate_phdr here could deadlock against a dlopen that
 * allocates while we hold our lock). A line:
 *   7f2a1c000000-7f2a1c1b5000 r-xp 00028000 fe:01 1835 /usr/lib/x86_64-linux-gnu/libc.so.6
 * A frame is written as its module and file offset; the reader maps file
 * offsets to symbols through the file's program headers.
 */
struct mod {
	uintptr_t lo, hi, off;
	uint32_t name; /* offset in mod_names */
};

static struct mod mods[MODS_MAX];
static int nmods;
static char mod_names[1 << 16];
static size_t mod_names_used;
static char maps_buf[1 << 14];

static uint64_t parse_hex(const char **p)
{
	uint64_t v = 0;

	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else
			return v;
	}
}

static void maps_line(const char *l)
{
	const char *p = l, *path;
	struct mod m;
	size_t len;

	m.lo = parse_hex(&p);
	if (*p++ != '-')
		return;
	m.hi = parse_hex(&p);
	if (*p++ != ' ' || p[2] != 'x')
		return;
	p += 5;
	m.off = parse_hex(&p);
	path = strchr(p, '/');
	if (path == NULL || nmods >= MODS_MAX)
		return;
	len = strlen(path);
	if (nmods > 0 && strcmp(mod_names + mods[nmods - 1].name, path) == 0) {
		m.name = mods[nmods - 1].name;
	} else {
		if (mod_names_used + len + 1 > sizeof(mod_names))
			return;
		memcpy(mod_names + mod_names_used, path, len + 1);
		m.name = (uint32_t)mod_names_used;
		mod_names_used += len + 1;
	}
	mods[nmods++] = m;
}

static void read_maps(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t have = 0;

	nmods = 0;
	mod_names_used = 0;
	if (fd < 0)
		return;
	for (;;) {
		ssize_t r = read(fd, maps_buf + have, sizeof(maps_buf) - 1 - have);
		char *line, *nl;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		maps_buf[have] = '\0';
		line = maps_buf;
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			maps_line(line);
			line = nl + 1;
		}
		have = (size_t)(maps_buf + have - line);
		memmove(maps_buf, line, have);
		if (have == sizeof(maps_buf) - 1)
			have = 0; /* a line longer than the buffer: dropped */
	}
	close(fd);
}

static int mod_of(uintptr_t pc)
{
	for (int i = 0; i < nmods; i++)
		if (pc >= mods[i].lo && pc < mods[i].hi)
			return i;
	return -1;
}

static uint64_t read_rss(void)
{
	uint64_t v;

	return mf_statm_read(MF_STATM_RESIDENT, &v) == 0 ? v : 0;
}

static void out_site_line(struct out *o, uint32_t idx, const struct mf_prof_site *s)
{
	out_str(o, "s ");
	out_u64(o, idx);
	out_str(o, " ");
	out_u64(o, s->scope);
	const double v[8] = {s->ab, s->an, s->lb, s->ln, s->pb, s->pn, s->fb, s->fn};
	for (int i = 0; i < 8; i++) {
		out_str(o, " ");
		out_d(o, v[i]);
	}
	out_str(o, "\t");
	for (int i = 0; i < s->nnative + s->npy; i++) {
		uint64_t f = s->frames[i];
		if (i > 0)
			out_str(o, " ");
		if (f & MF_PROF_PY_FRAME_TAG) {
			out_str(o, "p");
			out_u64(o, (f >> 32) & 0x7fffffff);
			out_str(o, ":");
			out_u64(o, (uint32_t)f);
		} else {
			int m = mod_of(f);
			/* A return address: the call is the byte before it. */
			if (m < 0) {
				out_str(o, "n-1:");
				out_hex(o, f - 1);
			} else {
				out_str(o, "n");
				out_u64(o, (uint64_t)m);
				out_str(o, ":");
				out_hex(o, f - 1 - mods[m].lo + mods[m].off);
			}
		}
	}
	out_str(o, "\n");
}

static void out_kv(struct out *o, const char *k, uint64_t v)
{
	out_str(o, " ");
	out_str(o, k);
	out_str(o, " ");
	out_u64(o, v);
}

int mf_prof_write(const char *reason)
{
	char path[320], tmp[336];
	struct out *o = &W;
	int r;

	if (mf_prof_st.dir[0] == '\0')
		return -ENOENT;
	{
		/* dir/memfence-PID.prof, written beside and renamed over */
		struct out name = {.fd = -1};
		out_str(&name, mf_prof_st.dir);
		out_str(&name, "/memfence-");
		out_u64(&name, (uint64_t)getpid());
		out_str(&name, ".prof");
		name.buf[name.n] = '\0';
		mf_strlcpy(path, name.buf, sizeof(path));
		mf_strlcpy(tmp, path, sizeof(tmp));
		size_t l = strlen(tmp);
		if (l + 5 < sizeof(tmp))
			memcpy(tmp + l, ".tmp", 5);
	}
	o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o->fd < 0)
		return -errno;
	o->err = 0;
	o->n = 0;
	read_maps();

	out_str(o, "memfence-profile 1\npid ");
	out_u64(o, (uint64_t)getpid());
	out_str(o, "\nreason ");
	out_str(o, reason);
	out_str(o, "\ntime_ns ");
	out_u64(o, mf_now_real());
	out_str(o, "\nrate ");
	out_u64(o, mf_prof_st.rate);
	out_str(o, "\npython ");
	out_str(o, mf_prof_python_header());
	out_str(o, "\npymalloc ");
	out_str(o, mf_prof_pymalloc_state());
	out_str(o, "\ntotals");
	out_kv(o, "allocated", (uint64_t)mf_prof_st.alloc_w);
	out_kv(o, "live", mf_prof_st.live_w > 0 ? (uint64_t)mf_prof_st.live_w : 0);
	out_kv(o, "peak", (uint64_t)mf_prof_st.peak_w);
	out_kv(o, "failure", (uint64_t)mf_prof_st.fail_w);
	out_kv(o, "samples", mf_prof_st.samples);
	out_str(o, "\noverflow");
	out_kv(o, "sites", mf_prof_st.over_sites);
	out_kv(o, "live", mf_prof_st.over_live);
	out_kv(o, "codes", mf_prof_st.over_codes);
	out_kv(o, "scopes", mf_prof_st.over_scopes);
	out_str(o, "\nrss ");
	out_u64(o, read_rss());
	out_str(o, "\nheap");
	out_kv(o, "live", mf_slot != NULL ? __atomic_load_n(&mf_slot->live, __ATOMIC_RELAXED) : 0);
	out_kv(o, "peak", mf_slot != NULL ? __atomic_load_n(&mf_slot->peak, __ATOMIC_RELAXED) : 0);
	out_str(o, "\n");
	for (int i = 0; i < nmods; i++) {
		out_str(o, "m ");
		out_u64(o, (uint64_t)i);
		out_str(o, "\t");
		out_str(o, mod_names + mods[i].name);
		out_str(o, "\n");
	}
	for (uint32_t i = 1; i < mf_prof_st.nscopes; i++) {
		out_str(o, "S ");
		out_u64(o, i);
		out_str(o, "\t");
		out_str(o, mf_prof_st.scopes[i]);
		out_str(o, "\n");
	}
	for (uint32_t i = 0; i < mf_prof_st.ncodes; i++) {
		out_str(o, "c ");
		out_u64(o, i);
		out_str(o, "\t");
		out_str(o, mf_prof_st.codes[i].name);
		out_str(o, "\t");
		out_str(o, mf_prof_st.codes[i].file);
		out_str(o, "\t");
		out_u64(o, (uint64_t)(mf_prof_st.codes[i].firstline > 0 ? mf_prof_st.codes[i].firstline : 0));
		out_str(o, "\n");
	}
	for (uint32_t i = 0; i < mf_prof_st.nsites; i++)
		out_site_line(o, i, &mf_prof_st.sites[i]);
	out_str(o, "end\n");
	out_flush(o);
	r = o->err;
	close(o->fd);
	if (r != 0) {
		unlink(tmp);
		return -r;
	}
	if (rename(tmp, path) != 0)
		return -errno;
	mf_prof_st.last_write = mf_now_mono();
	return 0;
}