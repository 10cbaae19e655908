// SPDX-License-Identifier: MIT OR Apache-2.0
// tc_legacy.c with a BTF map and libbpf's section names: "tc" and
// "classifier" (sched_cls), "action" (sched_act), "tc/ingress" and
// "tcx/egress" (sched_cls for TCX links, libbpf >= 1.3 names).
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} metrics SEC(".maps");

#include "test_tc.h"

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	return test_tc_classify(skb, TC_DIR_INGRESS);
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	return test_tc_classify(skb, TC_DIR_EGRESS);
}

SEC("classifier")
int cls_ingress(struct __sk_buff *skb)
{
	return test_tc_classify(skb, TC_DIR_INGRESS);
}

SEC("classifier")
int cls_egress(struct __sk_buff *skb)
{
	return test_tc_classify(skb, TC_DIR_EGRESS);
}

SEC("action")
int act_ingress(struct __sk_buff *skb)
{
	return test_tc_act(skb, TC_DIR_INGRESS);
}

SEC("action")
int act_egress(struct __sk_buff *skb)
{
	return test_tc_act(skb, TC_DIR_EGRESS);
}

SEC("tc/ingress")
int tcx_ingress(struct __sk_buff *skb)
{
	return test_tc_classify(skb, TC_DIR_INGRESS);
}

SEC("tcx/egress")
int tcx_egress(struct __sk_buff *skb)
{
	return test_tc_classify(skb, TC_DIR_EGRESS);
}

char _license[] SEC("license") = "GPL";
