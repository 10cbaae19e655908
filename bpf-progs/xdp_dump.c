// SPDX-License-Identifier: MIT OR Apache-2.0
// goebpf example xdp/xdp_dump: for every IPv4 TCP packet with SYN set,
// sends a 12-byte record {u32 saddr, u32 daddr, u16 sport, u16 dport} (all
// network order, as on the wire) to `perfmap`, followed by the whole packet
// (the upper 32 bits of the flags ask the kernel to append that many bytes
// of the packet). Passes every well-formed packet.
#include "goebpf.h"
#include "pkt.h"

BPF_MAP_DEF(perfmap) = {
	.map_type = BPF_MAP_TYPE_PERF_EVENT_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 128,
};
BPF_MAP_ADD(perfmap);

struct perf_event_item {
	__be32 src_ip;
	__be32 dst_ip;
	__be16 src_port;
	__be16 dst_port;
};
_Static_assert(sizeof(struct perf_event_item) == 12, "the record is 12 bytes");

SEC("xdp")
int xdp_dump(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 packet_size = data_end - data;
	struct pkt_eth *eth = data;
	struct pkt_ipv4 *ip = data + sizeof(*eth);
	struct pkt_tcp *tcp;
	__u32 ip_len;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->proto != bpf_htons(PKT_ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_ABORTED;
	if (ip->protocol != PKT_IPPROTO_TCP)
		return XDP_PASS;
	ip_len = pkt_ipv4_hdr_len(ip);
	if (ip_len < sizeof(*ip))
		return XDP_ABORTED;
	tcp = (void *)ip + ip_len;
	if ((void *)(tcp + 1) > data_end)
		return XDP_ABORTED;

	if (tcp->flags & PKT_TCP_FLAG_SYN) {
		struct perf_event_item item = {
			.src_ip = ip->saddr,
			.dst_ip = ip->daddr,
			.src_port = tcp->source,
			.dst_port = tcp->dest,
		};
		__u64 flags = BPF_F_CURRENT_CPU | (packet_size << 32);

		bpf_perf_event_output(ctx, &perfmap, flags, &item, sizeof(item));
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
