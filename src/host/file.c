/*
 * file.c - regular files only, read within bounds (file.h says why).
 */
#include "host/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mf_file_open(const char *path)
{
	struct stat st;
	int fd, flags, err;

	/* O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
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

int mf_file_read(const char *path, size_t max, char **buf, size_t *len)
{
	struct stat st;
	size_t cap, n = 0;
	char *b;
	int fd = mf_file_open(path), err;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0) {
		err = -errno;
		goto fail_fd;
	}
	if ((uint64_t)st.st_size > max) {
		err = -EFBIG;
		goto fail_fd;
	}
	/* The size may change while we read (a journal being rewritten is
	 * renamed into place, so not that one): read to the end, never past
	 * max. */
	cap = (size_t)st.st_size + 1;
	b = malloc(cap + 1);
	if (b == NULL) {
		err = -ENOMEM;
		goto fail_fd;
	}
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
	close(fd);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
fail_buf:
	free(b);
fail_fd:
	close(fd);
	return err;
}

const char *mf_file_strerror(int err)
{
	if (err == MF_FILE_ENOTREG)
		return "not a regular file";
	if (err == -EFBIG)
		return "too large to be a file memfence writes";
	return strerror(-err);
}
