/*
 * fuzz.h - what the fuzz targets share (tests/fuzz/fuzz_*.c, built by
 * `make fuzz` with libFuzzer, AddressSanitizer and UBSan; run by
 * tests/integration/fuzz.sh).
 *
 * Readers that take a path get the input through a file in a private
 * directory made once per process: that is how they meet a hostile file.
 */
#ifndef MF_FUZZ_H
#define MF_FUZZ_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A directory of this process's own under $TMPDIR (else /tmp), made on
 * first use; whoever runs the target removes it (fuzz.sh sets TMPDIR to
 * the test's own directory). */
static inline const char *fuzz_dir(void)
{
	static char dir[200];

	if (!dir[0]) {
		const char *t = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/memfence-fuzz.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(dir))
			abort();
	}
	return dir;
}

/* Write data to DIR/name, replacing it; the path into out. */
static inline void fuzz_file(const char *name, const uint8_t *data, size_t size, char *out,
			     size_t len)
{
	int fd;

	snprintf(out, len, "%s/%s", fuzz_dir(), name);
	unlink(out);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	while (size > 0) {
		ssize_t n = write(fd, data, size);

		if (n <= 0)
			abort();
		data += n;
		size -= (size_t)n;
	}
	close(fd);
}

/* Where text output goes: it is rendered in full, then thrown away. */
static inline FILE *fuzz_null(void)
{
	static FILE *f;

	if (!f)
		f = fopen("/dev/null", "w");
	if (!f)
		abort();
	return f;
}

#endif
