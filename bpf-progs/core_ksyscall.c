// SPDX-License-Identifier: MIT OR Apache-2.0
// libbpf's BPF_KSYSCALL (bpf_tracing.h), built against target/bpf/include/vmlinux.h: it reads
// a system call's arguments through the pt_regs wrapper when the .kconfig value
// LINUX_HAS_SYSCALL_WRAPPER says the kernel has one, so the value must be right for the
// arguments to be. The section name asks for a kprobe on the system call's entry point.
#ifndef __TARGET_ARCH_x86
#define __TARGET_ARCH_x86 /* the tests run on x86-64 */
#endif
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

__u32 target_tid = 0;
__u64 hits = 0;
/* The arguments of the last kill(2) of `target_tid`. */
__s32 last_pid_arg = -1;
__s32 last_sig_arg = -1;

SEC("ksyscall/kill")
int BPF_KSYSCALL(ksyscall_kill, pid_t pid, int sig)
{
	if ((__u32)bpf_get_current_pid_tgid() != target_tid)
		return 0;
	last_pid_arg = pid;
	last_sig_arg = sig;
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
