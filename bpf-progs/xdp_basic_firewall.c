// SPDX-License-Identifier: MIT OR Apache-2.0
// goebpf example xdp/basic_firewall: drops IPv4 packets whose source address
// matches a CIDR in `blacklist` (LPM trie; value = rule index < 16) and
// counts the drops per rule in `matches` (per-CPU). Legacy maps, as goebpf.
//
// Unlike goebpf's C, the lookup key is a proper LPM key (prefix length 32,
// then the address), and the trie carries BPF_F_NO_PREALLOC itself (goebpf
// added that flag when creating the map).
#include "goebpf.h"
#include "pkt.h"

#define MAX_RULES 16

struct lpm_v4_key {
	__u32 prefixlen; /* host order */
	__be32 addr;     /* network order */
};

BPF_MAP_DEF(matches) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = MAX_RULES,
};
BPF_MAP_ADD(matches);

BPF_MAP_DEF(blacklist) = {
	.map_type = BPF_MAP_TYPE_LPM_TRIE,
	.key_size = sizeof(struct lpm_v4_key),
	.value_size = sizeof(__u32),
	.max_entries = MAX_RULES,
	.map_flags = BPF_F_NO_PREALLOC,
};
BPF_MAP_ADD(blacklist);

SEC("xdp")
int firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pkt_eth *eth = data;
	struct pkt_ipv4 *ip = data + sizeof(*eth);
	struct lpm_v4_key key;
	__u32 *rule;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->proto != bpf_htons(PKT_ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_ABORTED;

	key.prefixlen = 32;
	key.addr = ip->saddr;
	rule = bpf_map_lookup_elem(&blacklist, &key);
	if (rule) {
		__u32 index = *rule;
		__u64 *drops = bpf_map_lookup_elem(&matches, &index);

		if (drops)
			*drops += 1;
		return XDP_DROP;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
