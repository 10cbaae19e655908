// SPDX-License-Identifier: MIT OR Apache-2.0
// trace_legacy.c with a BTF map.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 3);
} counts SEC(".maps");

#include "test_trace.h"

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_getpid(void *ctx)
{
	return test_trace_hit(TRACE_TRACEPOINT);
}

/* The probed binary and function are given at attach time. */
SEC("uprobe")
int uprobe_hit(struct pt_regs *ctx)
{
	return test_trace_hit(TRACE_UPROBE);
}

SEC("raw_tracepoint/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	return test_trace_hit(TRACE_RAW_TRACEPOINT);
}

char _license[] SEC("license") = "GPL";
