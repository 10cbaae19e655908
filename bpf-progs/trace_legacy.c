// SPDX-License-Identifier: MIT OR Apache-2.0
// A tracepoint, a uprobe and a raw tracepoint with a legacy map (goebpf
// itself recognises none of these sections). counts[0] tracepoint,
// counts[1] uprobe, counts[2] raw tracepoint.
#include "goebpf.h"

BPF_MAP_DEF(counts) = {
	.map_type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 3,
};
BPF_MAP_ADD(counts);

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
