// SPDX-License-Identifier: MIT OR Apache-2.0
// A socket filter under goebpf's section name with a legacy map: counts
// packets in packets[0] and keeps them whole.
#include "goebpf.h"

BPF_MAP_DEF(packets) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1,
};
BPF_MAP_ADD(packets);

#include "test_sock.h"

SEC("socket_filter")
int count_packets(struct __sk_buff *skb)
{
	return test_sock_count(skb);
}

char _license[] SEC("license") = "GPL";
