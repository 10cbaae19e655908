// SPDX-License-Identifier: MIT OR Apache-2.0
// The two programs of `cargo xtask bench`'s load workload. The includer declares the maps
// `packets` (per-CPU array of __u64), `lengths` (hash __u32 -> __u64) and `config` (array of
// __u32) in its own style, and defines BENCH_LOAD_SEC, the programs' section name.
#ifndef BENCH_LOAD_H
#define BENCH_LOAD_H

SEC(BENCH_LOAD_SEC)
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

SEC(BENCH_LOAD_SEC)
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

#endif
