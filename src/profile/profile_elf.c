/*
 * profile_elf.c - native frame names from ELF symbol tables.
 *
 * The profiler writes native frames as (module path, file offset), taken
 * from /proc/PID/maps in the profiled process. Here the offset is turned
 * into a virtual address through the PT_LOAD program header that maps it,
 * and the address into the function symbol that contains it (.symtab when
 * the file has one, else .dynsym: stripped binaries such as Debian's
 * python3.11 keep their exported functions there). No DWARF: names, not
 * lines, for native frames.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/file.h"
#include "profile/profile.h"

struct sym {
	uint64_t lo, hi;
	const char *name;
};

struct elf_cache {
	char *path;
	void *map;
	size_t len;
	const Elf64_Phdr *ph;
	int phnum;
	struct sym *syms;
	size_t nsyms;
	int bad;
};

static struct elf_cache *cache;
static size_t ncache;

static int sym_cmp(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* [off, off + size) lies within a file of len bytes (no overflow). */
static int within(uint64_t off, uint64_t size, uint64_t len)
{
	return off <= len && size <= len - off;
}

static void load_syms(struct elf_cache *c, const Elf64_Ehdr *eh)
{
	const Elf64_Shdr *sh = (const void *)((const char *)c->map + eh->e_shoff);
	int want = SHT_SYMTAB;

	if (eh->e_shoff == 0 || !within(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(*sh), c->len))
		return;
	for (int pass = 0; pass < 2; pass++, want = SHT_DYNSYM) {
		for (int i = 0; i < eh->e_shnum; i++) {
			if (sh[i].sh_type != (uint32_t)want || sh[i].sh_link >= eh->e_shnum)
				continue;
			const Elf64_Shdr *strs = &sh[sh[i].sh_link];
			if (!within(sh[i].sh_offset, sh[i].sh_size, c->len) ||
			    !within(strs->sh_offset, strs->sh_size, c->len) || strs->sh_size == 0 ||
			    ((const char *)c->map)[strs->sh_offset + strs->sh_size - 1] != '\0')
				continue;
			const Elf64_Sym *s = (const void *)((const char *)c->map + sh[i].sh_offset);
			size_t n = sh[i].sh_size / sizeof(*s);
			c->syms = calloc(n ? n : 1, sizeof(*c->syms));
			if (c->syms == NULL)
				return;
			for (size_t k = 0; k < n; k++) {
				if (ELF64_ST_TYPE(s[k].st_info) != STT_FUNC || s[k].st_value == 0 ||
				    s[k].st_name >= strs->sh_size)
					continue;
				c->syms[c->nsyms].lo = s[k].st_value;
				c->syms[c->nsyms].hi = s[k].st_value + (s[k].st_size ? s[k].st_size : 1);
				c->syms[c->nsyms].name = (const char *)c->map + strs->sh_offset + s[k].st_name;
				c->nsyms++;
			}
			qsort(c->syms, c->nsyms, sizeof(*c->syms), sym_cmp);
			return;
		}
	}
}

static struct elf_cache *open_elf(const char *path)
{
	struct elf_cache *c;
	struct stat st;
	int fd;

	for (size_t i = 0; i < ncache; i++)
		if (strcmp(cache[i].path, path) == 0)
			return &cache[i];
	c = realloc(cache, (ncache + 1) * sizeof(*cache));
	if (c == NULL)
		return NULL;
	cache = c;
	c = &cache[ncache++];
	memset(c, 0, sizeof(*c));
	c->path = strdup(path);
	c->bad = 1;
	if (c->path == NULL) {
		ncache--;
		return NULL;
	}
	/* A path from the profile file: a FIFO or a device there must not
	 * hang or flood the report. */
	fd = mf_file_open(path);
	if (fd < 0)
		return c;
	if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(Elf64_Ehdr)) {
		c->len = (size_t)st.st_size;
		c->map = mmap(NULL, c->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (c->map == MAP_FAILED)
			c->map = NULL;
	}
	close(fd);
	if (c->map == NULL)
		return c;
	const Elf64_Ehdr *eh = c->map;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    !within(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), c->len))
		return c;
	c->ph = (const void *)((const char *)c->map + eh->e_phoff);
	c->phnum = eh->e_phnum;
	load_syms(c, eh);
	c->bad = 0;
	return c;
}

int mf_elf_symbol(const char *path, uint64_t off, char *name, size_t len)
{
	struct elf_cache *c = open_elf(path);
	uint64_t va = 0;
	int found = 0;
	size_t lo = 0, hi;

	name[0] = '\0';
	if (c == NULL || c->bad)
		return -1;
	for (int i = 0; i < c->phnum; i++) {
		const Elf64_Phdr *ph = &c->ph[i];
		if (ph->p_type == PT_LOAD && off >= ph->p_offset && off < ph->p_offset + ph->p_filesz) {
			va = off - ph->p_offset + ph->p_vaddr;
			found = 1;
			break;
		}
	}
	if (!found || c->nsyms == 0)
		return 0;
	/* last symbol starting at or below va */
	hi = c->nsyms;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->syms[mid].lo <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && va < c->syms[lo - 1].hi) {
		strncpy(name, c->syms[lo - 1].name, len - 1);
		name[len - 1] = '\0';
	}
	return 0;
}
