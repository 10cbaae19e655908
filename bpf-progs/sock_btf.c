// SPDX-License-Identifier: MIT OR Apache-2.0
// sock_legacy.c with a BTF map and libbpf's section name "socket".
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} packets SEC(".maps");

#include "test_sock.h"

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
	return test_sock_count(skb);
}

char _license[] SEC("license") = "GPL";
