/*
 * LD_PRELOAD shim for Debian's linux.uml (6.1) on hosts with a large XSAVE area.
 *
 * UML 6.1 sizes its NT_X86_XSTATE buffer for 832 octets. On hosts whose XSAVE
 * area is larger (AVX-512, AMX, PKU) the probe with PTRACE_GETREGSET succeeds
 * truncated, and the later PTRACE_SETREGSET of those 832 octets fails with
 * EFAULT: the guest panics at init ("ptrace set fp regs failed, errno = 14").
 * Answering EIO for that regset makes UML fall back to GETFPREGS/SETFPREGS
 * (FXSAVE: x87 + SSE). The guest init therefore keeps glibc and OpenSSL off
 * AVX, whose upper register halves are no longer switched between threads.
 *
 * Built by test/support/uml.ts into /var/cache/tunsec-uml (gcc, -ldl).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/ptrace.h>
#include <sys/types.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

long ptrace(enum __ptrace_request request, ...)
{
	static long (*next)(int, pid_t, void *, void *);
	va_list args;
	va_start(args, request);
	pid_t pid = va_arg(args, pid_t);
	void *addr = va_arg(args, void *);
	void *data = va_arg(args, void *);
	va_end(args);

	if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) && (unsigned long)addr == NT_X86_XSTATE) {
		errno = EIO;
		return -1;
	}
	if (next == NULL)
		next = (long (*)(int, pid_t, void *, void *))dlsym(RTLD_NEXT, "ptrace");
	return next(request, pid, addr, data);
}
