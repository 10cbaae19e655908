// SPDX-License-Identifier: MIT OR Apache-2.0
// goebpf example tc/packet_counter: counts IPv4 packets and bytes (IP total
// length) per direction in `metrics` (per-CPU), index = direction | unit:
// bit 0 set for egress, bit 1 set for bytes. Both classifiers return
// TC_ACT_OK. goebpf's tc.h used its own 5-argument BPF_MAP_DEF; this uses
// goebpf.h's.
#include "goebpf.h"
#include "pkt.h"
#include <linux/pkt_cls.h>

#define HASH_FLAG_DIR_INGRESS 0
#define HASH_FLAG_DIR_EGRESS (1 << 0)
#define HASH_FLAG_UNIT_PACKETS 0
#define HASH_FLAG_UNIT_BYTES (1 << 1)

BPF_MAP_DEF(metrics) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 255,
};
BPF_MAP_ADD(metrics);

static __always_inline int account_data(struct __sk_buff *skb, __u32 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct pkt_eth *eth = data;
	struct pkt_ipv4 *ip = data + sizeof(*eth);
	__u32 key;
	__u64 *n;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->proto != bpf_htons(PKT_ETH_P_IP))
		return TC_ACT_OK;
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (pkt_ipv4_version(ip) != 4)
		return TC_ACT_OK;

	key = dir | HASH_FLAG_UNIT_PACKETS;
	n = bpf_map_lookup_elem(&metrics, &key);
	if (n)
		*n += 1;
	key = dir | HASH_FLAG_UNIT_BYTES;
	n = bpf_map_lookup_elem(&metrics, &key);
	if (n)
		*n += bpf_ntohs(ip->tot_len);
	return TC_ACT_OK;
}

SEC("tc_cls")
int tc_ingress(struct __sk_buff *skb)
{
	return account_data(skb, HASH_FLAG_DIR_INGRESS);
}

SEC("tc_cls")
int tc_egress(struct __sk_buff *skb)
{
	return account_data(skb, HASH_FLAG_DIR_EGRESS);
}

char _license[] SEC("license") = "GPL";
