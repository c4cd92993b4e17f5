/*
 * xstate.c - preloaded into Debian's user-mode Linux kernel (linux.uml) so
 * that it can run on hosts whose CPUs have AMX.
 *
 * The 6.1 UML kernel saves and restores its processes' FPU state with
 * PTRACE_GETREGSET/PTRACE_SETREGSET NT_X86_XSTATE on a buffer of a fixed
 * 2696 bytes (x87, SSE, AVX, AVX-512, PKRU). The host kernel fills a short
 * buffer on GETREGSET, but refuses a SETREGSET whose length is not the
 * host's whole XSAVE size ("A whole standard-format XSAVE buffer is
 * needed", arch/x86/kernel/fpu/regset.c): with AMX that is 11008 bytes,
 * EFAULT, and the guest's init dies at once ("ptrace set fp regs failed,
 * errno = 14"). Here a short SETREGSET is completed with the tracee's own
 * state past the short part (the AMX tiles, which no guest process may use)
 * and passed on whole. Any other call goes to libc unchanged.
 */
#include <dlfcn.h>
#include <elf.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Larger than any XSAVE area so far (11008 bytes with AMX). UML calls
 * ptrace from one host thread only. */
static unsigned char whole[65536] __attribute__((aligned(64)));

long ptrace(enum __ptrace_request req, ...);

long ptrace(enum __ptrace_request req, ...)
{
	static long (*real)(enum __ptrace_request, pid_t, void *, void *);
	struct iovec *iov, full = {whole, sizeof(whole)};
	va_list ap;
	pid_t pid;
	void *addr, *data;

	va_start(ap, req);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = (long (*)(enum __ptrace_request, pid_t, void *, void *))dlsym(RTLD_NEXT,
										       "ptrace");
	if (req != PTRACE_SETREGSET || (long)addr != NT_X86_XSTATE || !data)
		return real(req, pid, addr, data);
	iov = data;
	if (real(PTRACE_GETREGSET, pid, addr, &full) < 0 || iov->iov_len >= full.iov_len)
		return real(req, pid, addr, data);
	memcpy(whole, iov->iov_base, iov->iov_len);
	return real(req, pid, addr, &full);
}
