// SPDX-License-Identifier: MIT OR Apache-2.0
// TC programs under goebpf's section names (tc_cls, tc_act) with a legacy
// map. metrics[dir | unit]: dir 0 ingress / 1 egress, unit 0 packets /
// 2 bytes (skb->len).
#include "goebpf.h"

BPF_MAP_DEF(metrics) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 4,
};
BPF_MAP_ADD(metrics);

#include "test_tc.h"

SEC("tc_cls")
int cls_ingress(struct __sk_buff *skb)
{
	return test_tc_classify(skb, TC_DIR_INGRESS);
}

SEC("tc_cls")
int cls_egress(struct __sk_buff *skb)
{
	return test_tc_classify(skb, TC_DIR_EGRESS);
}

SEC("tc_act")
int act_ingress(struct __sk_buff *skb)
{
	return test_tc_act(skb, TC_DIR_INGRESS);
}

SEC("tc_act")
int act_egress(struct __sk_buff *skb)
{
	return test_tc_act(skb, TC_DIR_EGRESS);
}

char _license[] SEC("license") = "GPL";
