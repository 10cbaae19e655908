/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * test_sock.h - program body shared by sock_legacy.c and sock_btf.c.
 *
 * The including file declares `packets`, a per-CPU array with one u64.
 */
#ifndef TEST_SOCK_H
#define TEST_SOCK_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Counts the packet in packets[0] and keeps all of it (returns skb->len). */
static __always_inline int test_sock_count(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&packets, &key);

	if (n)
		*n += 1;
	return skb->len;
}

#endif /* TEST_SOCK_H */
