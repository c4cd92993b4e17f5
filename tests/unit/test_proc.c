/*
 * test_proc.c - the /proc reader and the statm parser of src/base.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/proc.h"
#include "unit.h"

static void test_statm_parse(void)
{
	/* A real line, from a Python process. */
	const char *line = "6483 1379 1082 5 0 4404 0\n";
	uint64_t v = 0;

	CHECK(mf_statm_parse(line, strlen(line), MF_STATM_SIZE, &v) == 0);
	CHECK_EQ_U64(v, 6483);
	CHECK(mf_statm_parse(line, strlen(line), MF_STATM_RESIDENT, &v) == 0);
	CHECK_EQ_U64(v, 1379);
	CHECK(mf_statm_parse(line, strlen(line), MF_STATM_DATA, &v) == 0);
	CHECK_EQ_U64(v, 4404);
	CHECK(mf_statm_parse(line, strlen(line), 6, &v) == 0);
	CHECK_EQ_U64(v, 0);
	CHECK(mf_statm_parse(line, strlen(line), 7, &v) == -EINVAL);
	/* The last field without a newline, and a cut line. */
	CHECK(mf_statm_parse("1 2 3", 5, 2, &v) == 0);
	CHECK_EQ_U64(v, 3);
	CHECK(mf_statm_parse("1 2 3 4", 3, 2, &v) == -EINVAL);
	CHECK(mf_statm_parse("", 0, 0, &v) == -EINVAL);
	/* Only the first line counts. */
	CHECK(mf_statm_parse("1 2\n3 4 5 6", 11, 2, &v) == -EINVAL);
}

static void test_read_file(void)
{
	char path[] = "/tmp/memfence-test-proc.XXXXXX", buf[8];
	int fd = mkstemp(path);
	size_t n = 99;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, "0123456789", 10) == 10);
	close(fd);
	/* Cut to len - 1 bytes, always terminated. */
	CHECK(mf_read_file(path, buf, sizeof(buf), &n) == 0);
	CHECK_EQ_U64(n, 7);
	CHECK_STR(buf, "0123456");
	CHECK(mf_read_file(path, buf, 1, &n) == 0);
	CHECK_EQ_U64(n, 0);
	CHECK_STR(buf, "");
	CHECK(mf_read_file(path, buf, 0, &n) == -EINVAL);
	unlink(path);
	CHECK(mf_read_file(path, buf, sizeof(buf), &n) == -ENOENT);
	CHECK_EQ_U64(n, 0);
}

static void test_statm_read(void)
{
	uint64_t size = 0, rss = 0, data = 0;
	long pg = sysconf(_SC_PAGESIZE);

	CHECK(mf_statm_read(MF_STATM_SIZE, &size) == 0);
	CHECK(mf_statm_read(MF_STATM_RESIDENT, &rss) == 0);
	CHECK(mf_statm_read(MF_STATM_DATA, &data) == 0);
	CHECK(size > 0 && rss > 0 && data > 0);
	CHECK(rss <= size && data <= size);
	CHECK(size % (uint64_t)pg == 0);
}

int main(void)
{
	test_statm_parse();
	test_read_file();
	test_statm_read();
	return unit_done("test_proc");
}
