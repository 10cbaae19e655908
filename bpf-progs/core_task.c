// SPDX-License-Identifier: MIT OR Apache-2.0
// CO-RE: built once against target/bpf/include/vmlinux.h (generated from the build machine's
// kernel BTF), loaded unchanged on other kernels. Each program records what it reads of the
// current task through BPF_CORE_READ when the task is the thread `target_pid`.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_result {
	__u32 hits;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	char comm[16];
	__u32 pid_exists;
	__u32 fake_exists;
	__u32 task_size;
	__u32 fake_type_exists;
};

/* A flavor of task_struct with a field no kernel has: CO-RE matches it to task_struct by name
 * and finds the field missing. */
struct task_struct___fake {
	int no_such_field;
} __attribute__((preserve_access_index));

/* The thread to watch, set by the test before it triggers the programs. */
__u32 target_pid = 0;

struct task_result tp_result = {};
struct task_result up_result = {};

static __always_inline int record(struct task_result *r)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 pid = BPF_CORE_READ(task, pid);

	if (pid != target_pid)
		return 0;
	r->pid = pid;
	r->tgid = BPF_CORE_READ(task, tgid);
	r->ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&r->comm, task, comm);
	r->pid_exists = bpf_core_field_exists(task->pid);
	r->fake_exists = bpf_core_field_exists(((struct task_struct___fake *)task)->no_such_field);
	/* Dead code on every kernel: the relocation below is poisoned and the verifier drops it. */
	if (r->fake_exists)
		r->fake_exists = BPF_CORE_READ((struct task_struct___fake *)task, no_such_field) + 100;
	r->task_size = bpf_core_type_size(struct task_struct);
	r->fake_type_exists = bpf_core_type_exists(struct task_struct___fake);
	__sync_fetch_and_add(&r->hits, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int core_tp_getpid(void *ctx)
{
	return record(&tp_result);
}

/* The probed binary and function are given at attach time. */
SEC("uprobe")
int core_uprobe(void *ctx)
{
	return record(&up_result);
}

char _license[] SEC("license") = "GPL";
