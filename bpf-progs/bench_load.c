// SPDX-License-Identifier: MIT OR Apache-2.0
// The object of `cargo xtask bench`'s load workload: three legacy maps and
// two socket filters, loaded, created and closed in a loop. Small on
// purpose: the figure is the loader's own cost next to raw MAP_CREATE and
// PROG_LOAD, not the verifier's.
#include "goebpf.h"

BPF_MAP_DEF(packets) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 4,
};
BPF_MAP_ADD(packets);

BPF_MAP_DEF(lengths) = {
	.map_type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1024,
};
BPF_MAP_ADD(lengths);

BPF_MAP_DEF(config) = {
	.map_type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 1,
};
BPF_MAP_ADD(config);

SEC("socket_filter")
int count_packets(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&packets, &key);
	__u32 *limit = bpf_map_lookup_elem(&config, &key);

	if (n)
		*n += 1;
	if (limit && *limit && skb->len > *limit)
		return 0;
	return skb->len;
}

SEC("socket_filter")
int count_lengths(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u64 one = 1;
	__u64 *n = bpf_map_lookup_elem(&lengths, &len);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&lengths, &len, &one, BPF_NOEXIST);
	return skb->len;
}

char _license[] SEC("license") = "GPL";
