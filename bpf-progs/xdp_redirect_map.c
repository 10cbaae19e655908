// SPDX-License-Identifier: MIT OR Apache-2.0
// goebpf example xdp/bpf_redirect_map: reflects ICMP packets to their
// sender. A FIB lookup with the addresses swapped finds the egress
// interface and MAC addresses; on failure the packet is dropped, when the
// neighbour is unresolved it goes up to the kernel (which will resolve it),
// otherwise the IPs are swapped, the MACs rewritten and the packet sent
// through `if_redirect` (devmap, key = egress ifindex). Non-ICMP passes.
#include "goebpf.h"
#include "pkt.h"

BPF_MAP_DEF(if_redirect) = {
	.map_type = BPF_MAP_TYPE_DEVMAP,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 64,
};
BPF_MAP_ADD(if_redirect);

SEC("xdp")
int xdp_test(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pkt_eth *eth = data;
	struct pkt_ipv4 *ip = data + sizeof(*eth);
	struct bpf_fib_lookup fib;
	__be32 addr;
	long rc;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->proto != bpf_htons(PKT_ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->protocol != PKT_IPPROTO_ICMP)
		return XDP_PASS;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.family = PKT_AF_INET;
	fib.l4_protocol = ip->protocol;
	fib.tos = ip->tos;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->daddr; /* as if we were sending the reply */
	fib.ipv4_dst = ip->saddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return XDP_PASS;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_DROP;

	addr = ip->daddr;
	ip->daddr = ip->saddr;
	ip->saddr = addr;
	__builtin_memcpy(eth->dst, fib.dmac, sizeof(eth->dst));
	__builtin_memcpy(eth->src, fib.smac, sizeof(eth->src));
	return bpf_redirect_map(&if_redirect, fib.ifindex, 0);
}

char _license[] SEC("license") = "GPL";
