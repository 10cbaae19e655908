// SPDX-License-Identifier: MIT OR Apache-2.0
// goebpf's kprobe integration-test object (itest/ebpf_prog/kprobe1.c) with
// legacy maps: "guess_execve" is goebpf's placeholder that the loader
// resolves to the running kernel's execve syscall symbol.
#include "goebpf.h"

BPF_MAP_DEF(perf_map) = {
	.map_type = BPF_MAP_TYPE_PERF_EVENT_ARRAY,
	.max_entries = 128,
};
BPF_MAP_ADD(perf_map);

BPF_MAP_DEF(calls) = {
	.map_type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1024,
};
BPF_MAP_ADD(calls);

#include "test_kprobe.h"

SEC("kprobe/guess_execve")
int kprobe0(struct pt_regs *ctx)
{
	return test_kprobe_report(ctx);
}

SEC("kretprobe/guess_execve")
int kprobe1(struct pt_regs *ctx)
{
	return test_kprobe_report(ctx);
}

char _license[] SEC("license") = "GPL";
