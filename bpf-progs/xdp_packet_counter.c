// SPDX-License-Identifier: MIT OR Apache-2.0
// goebpf example xdp/packet_counter: counts IPv4 packets per IP protocol
// number in `protocols` (per-CPU, index = protocol); passes everything.
#include "goebpf.h"
#include "pkt.h"

BPF_MAP_DEF(protocols) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 255,
};
BPF_MAP_ADD(protocols);

SEC("xdp")
int packet_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pkt_eth *eth = data;
	struct pkt_ipv4 *ip = data + sizeof(*eth);
	__u32 proto;
	__u64 *n;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->proto != bpf_htons(PKT_ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_ABORTED;

	proto = ip->protocol;
	n = bpf_map_lookup_elem(&protocols, &proto);
	if (n)
		*n += 1;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
