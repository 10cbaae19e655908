// SPDX-License-Identifier: MIT OR Apache-2.0
// kfunc calls, built against target/bpf/include/vmlinux.h: the loader resolves each `__ksym`
// function in the kernel's BTF and turns the call into a BPF_PSEUDO_KFUNC_CALL of its FUNC id.
// bpf_task_from_pid and bpf_task_release are kernel 6.2's.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

__u32 target_pid = 0;

/* Run with BPF_PROG_TEST_RUN: the pid of the task `target_pid`, read through a reference the
 * kernel hands out and takes back; -1 if there is no such task. */
SEC("tc")
int core_kfunc_task_pid(struct __sk_buff *skb)
{
	struct task_struct *t;
	int pid;

	t = bpf_task_from_pid(target_pid);
	if (!t)
		return -1;
	pid = t->pid;
	bpf_task_release(t);
	return pid;
}

char _license[] SEC("license") = "GPL";
