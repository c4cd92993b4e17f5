/*
 * A request in the recycle directory (MEMFENCE_RECYCLE_DIR), as the
 * supervisor reads it (sup_recycle_request_read): any process of the
 * program, or anyone who can write there, names and fills it. The input is
 * a file name, a newline, then the file's contents; a name that cannot be
 * a file name in a directory is made "4242".
 */
#include "fuzz.h"
#include "supervisor/supervisor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size < 64 ? size : 64);
	char name[72] = "4242", path[300], why[160];
	pid_t pid = 0;
	int dir;

	if (nl) {
		size_t n = (size_t)(nl - data);

		memcpy(name, data, n);
		name[n] = '\0';
		if (!name[0] || strchr(name, '/') || strlen(name) != n || !strcmp(name, ".") ||
		    !strcmp(name, ".."))
			strcpy(name, "4242");
		size -= n + 1;
		data = nl + 1;
	}
	fuzz_file(name, data, size, path, sizeof(path));
	dir = open(fuzz_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		abort();
	if (sup_recycle_request_read(dir, name, &pid, why, sizeof(why))) {
		/* One line of printable text, and a pid of the name. */
		if (pid <= 0 || strlen(why) >= sizeof(why) || strchr(why, '\n'))
			abort();
		for (const char *c = why; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				abort();
	}
	close(dir);
	unlink(path);
	return 0;
}
