/*
 * memory_file.c - the kernel's files as the memory reader reads them:
 * whole, with open/read, under the root prefix, bounded in size. A file
 * that is missing, cut short or full of garbage makes its figure
 * MF_UNKNOWN and adds a warning naming the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/memory_int.h"

/* Generous for mountinfo on a busy Kubernetes node; a larger file is not
 * one the kernel wrote. */
#define MF_FILE_MAX (4u << 20)

/* The whole file, NUL-terminated, in a malloc'd buffer. 0 or -errno. */
static int slurp(const char *path, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf, *nb;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (buf == NULL) {
		err = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= MF_FILE_MAX) {
				err = -EFBIG;
				goto out_free;
			}
			nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				err = -ENOMEM;
				goto out_free;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		/* Text files hold no NUL; this one is not what we expect. */
		err = -EILSEQ;
		goto out_free;
	}
	*out = buf;
	goto out_close;
out_free:
	free(buf);
out_close:
	close(fd);
	return err;
}

static const char *read_error(int err)
{
	switch (err) {
	case -ENOENT: return "missing";
	case -EILSEQ: return "binary contents";
	case -EFBIG: return "too large";
	default: return strerror(-err);
	}
}

/* Open a file for the parsers; warns unless it is optional and missing. */
char *mf_mem_load(struct mf_memory *m, const char *path, unsigned flags, int *errp)
{
	char *buf = NULL;
	int err = slurp(path, &buf);

	if (errp != NULL)
		*errp = err;
	if (err != 0) {
		if (!(err == -ENOENT && (flags & RD_OPTIONAL)))
			mf_memory_warn(m, "%s: %s", path, read_error(err));
		return NULL;
	}
	return buf;
}

/* A one-number file. Returns 0, -ENOENT (missing) or another -errno,
 * -EINVAL for contents that are not a number; *out is MF_UNKNOWN then. */
int mf_mem_read_value(struct mf_memory *m, const char *path, unsigned flags, uint64_t *out)
{
	const char *why;
	int err;
	char *buf = mf_mem_load(m, path, flags, &err);

	*out = MF_UNKNOWN;
	if (buf == NULL)
		return err;
	if (mf_parse_value(buf, flags, out, &why) != 0) {
		char shown[24];
		size_t i;
		/* Show the start of what is there, printable, on one line. */
		for (i = 0; buf[i] != '\0' && buf[i] != '\n' && i + 1 < sizeof(shown); i++)
			shown[i] = (buf[i] >= 0x20 && buf[i] < 0x7f) ? buf[i] : '?';
		shown[i] = '\0';
		mf_memory_warn(m, "%s: %s ('%s%s')", path, why, shown,
			       buf[i] != '\0' && buf[i] != '\n' ? "..." : "");
		free(buf);
		return -EINVAL;
	}
	free(buf);
	return 0;
}

/* One key of a keyed file already loaded (buf NULL: the file could not be
 * read, already warned about). */
uint64_t mf_mem_get_key(struct mf_memory *m, const char *path, const char *buf,
			const char *key, unsigned flags)
{
	uint64_t v;
	const char *why;

	if (buf == NULL)
		return MF_UNKNOWN;
	if (mf_parse_keyed(buf, key, flags, &v, &why) != 0) {
		/* meminfo's keys end with a colon already. */
		int klen = (int)strlen(key);
		if (klen > 0 && key[klen - 1] == ':')
			klen--;
		mf_memory_warn(m, "%s: %.*s: %s", path, klen, key, why);
		return MF_UNKNOWN;
	}
	return v;
}

int mf_mem_has_key(const char *buf, const char *key)
{
	uint64_t v;
	const char *why;

	return buf != NULL && (mf_parse_keyed(buf, key, 0, &v, &why) == 0 ||
			       strcmp(why, "no such line") != 0);
}

int mf_mem_join(char *out, size_t len, const char *a, const char *b)
{
	int n = snprintf(out, len, "%s%s", a, b);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int mf_mem_read_in(struct mf_memory *m, const char *file, unsigned flags, uint64_t *out)
{
	char path[MF_PATH_MAX];
	int err = mf_mem_join(path, sizeof(path), m->cgroup_dir, file);

	return err != 0 ? err : mf_mem_read_value(m, path, flags, out);
}

char *mf_mem_load_in(struct mf_memory *m, char *path, size_t len, const char *file,
		     unsigned flags)
{
	if (mf_mem_join(path, len, m->cgroup_dir, file) != 0)
		return NULL;
	return mf_mem_load(m, path, flags, NULL);
}

int mf_mem_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

