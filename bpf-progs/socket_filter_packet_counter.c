// SPDX-License-Identifier: MIT OR Apache-2.0
// goebpf example socket_filter/packet_counter: counts every packet the
// socket sees in counter[0] (per-CPU). Unlike goebpf's C, which returned 1
// (keep one byte), it keeps whole packets.
#include "goebpf.h"

BPF_MAP_DEF(counter) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1,
};
BPF_MAP_ADD(counter);

SEC("socket_filter")
int packet_counter(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&counter, &key);

	if (n)
		*n += 1;
	return skb->len;
}

char _license[] SEC("license") = "GPL";
