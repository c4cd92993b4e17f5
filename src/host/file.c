/*
 * file.c - regular files only, read within bounds (file.h says why).
 */
#include "host/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int open_regular(int dirfd, const char *path, int extra)
{
	struct stat st;
	int fd, flags, err;

	/* O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer. */
	fd = openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | extra);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		err = -errno;
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		err = -EISDIR;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err = MF_FILE_ENOTREG;
		goto fail;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		err = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}

int mf_file_open(const char *path)
{
	return open_regular(AT_FDCWD, path, 0);
}

int mf_file_openat_nofollow(int dirfd, const char *name)
{
	return open_regular(dirfd, name, O_NOFOLLOW);
}

int mf_file_read(const char *path, size_t max, char **buf, size_t *len)
{
	int fd = mf_file_open(path), err;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return fd;
	err = mf_file_read_fd(fd, max, buf, len);
	close(fd);
	return err;
}

int mf_file_read_fd(int fd, size_t max, char **buf, size_t *len)
{
	struct stat st;
	size_t cap, n = 0;
	char *b;
	int err;

	*buf = NULL;
	*len = 0;
	if (fstat(fd, &st) != 0)
		return -errno;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	/* The size may change while we read (a journal being rewritten is
	 * renamed into place, so not that one): read to the end, never past
	 * max. */
	cap = (size_t)st.st_size + 1;
	b = malloc(cap + 1);
	if (b == NULL)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *nb;

			if (cap > max) {
				err = -EFBIG;
				goto fail_buf;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			nb = realloc(b, cap + 1);
			if (nb == NULL) {
				err = -ENOMEM;
				goto fail_buf;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			goto fail_buf;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		err = -EFBIG;
		goto fail_buf;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
fail_buf:
	free(b);
	return err;
}

int mf_path_absolute(const char *path, char *out, size_t len)
{
	char cwd[4096];

	if (path[0] == '/')
		return snprintf(out, len, "%s", path) < (int)len ? 0 : -ENAMETOOLONG;
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	if (strcmp(path, ".") == 0)
		path = "";
	return snprintf(out, len, "%s%s%s", cwd, strcmp(cwd, "/") && *path ? "/" : "", path) <
			       (int)len
		       ? 0
		       : -ENAMETOOLONG;
}

const char *mf_file_strerror(int err)
{
	if (err == MF_FILE_ENOTREG)
		return "not a regular file";
	if (err == -EFBIG)
		return "too large to be a file memfence writes";
	if (err == -ELOOP)
		return "a symbolic link, not followed here";
	return strerror(-err);
}
