/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * test_tc.h - program body shared by tc_legacy.c and tc_btf.c.
 *
 * The including file declares `metrics`, a per-CPU array of 4 u64 counters
 * indexed by direction | unit (the index scheme of goebpf's tc example).
 */
#ifndef TEST_TC_H
#define TEST_TC_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define TC_DIR_INGRESS 0
#define TC_DIR_EGRESS 1
#define TC_UNIT_PACKETS 0
#define TC_UNIT_BYTES 2

/* Adds one packet and skb->len bytes to the counters of `dir`. */
static __always_inline void test_tc_count(struct __sk_buff *skb, __u32 dir)
{
	__u32 key = dir | TC_UNIT_PACKETS;
	__u64 *n = bpf_map_lookup_elem(&metrics, &key);

	if (n)
		*n += 1;
	key = dir | TC_UNIT_BYTES;
	n = bpf_map_lookup_elem(&metrics, &key);
	if (n)
		*n += skb->len;
}

/* Classifiers count and let the packet through (TC_ACT_OK = 0). */
static __always_inline int test_tc_classify(struct __sk_buff *skb, __u32 dir)
{
	test_tc_count(skb, dir);
	return TC_ACT_OK;
}

/* Actions count and hand the packet to the next action (TC_ACT_PIPE = 3). */
static __always_inline int test_tc_act(struct __sk_buff *skb, __u32 dir)
{
	test_tc_count(skb, dir);
	return TC_ACT_PIPE;
}

#endif /* TEST_TC_H */
