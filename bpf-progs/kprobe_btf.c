// SPDX-License-Identifier: MIT OR Apache-2.0
// kprobe_legacy.c with BTF maps and libbpf's section names: a kprobe and a
// kretprobe on the x86-64 execve syscall wrapper, and the arch-neutral
// ksyscall/kretsyscall forms (the loader maps "execve" to the wrapper).
// The bodies do not read syscall arguments, so no CO-RE relocation and no
// __kconfig extern is needed.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1024);
} calls SEC(".maps");

#include "test_kprobe.h"

SEC("kprobe/__x64_sys_execve")
int kprobe_execve(struct pt_regs *ctx)
{
	return test_kprobe_report(ctx);
}

SEC("kretprobe/__x64_sys_execve")
int kretprobe_execve(struct pt_regs *ctx)
{
	return test_kprobe_report(ctx);
}

SEC("ksyscall/execve")
int ksyscall_execve(struct pt_regs *ctx)
{
	return test_kprobe_report(ctx);
}

SEC("kretsyscall/execve")
int kretsyscall_execve(struct pt_regs *ctx)
{
	return test_kprobe_report(ctx);
}

char _license[] SEC("license") = "GPL";
