/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * test_trace.h - program body shared by trace_legacy.c and trace_btf.c.
 *
 * The including file declares `counts`, an array of 3 u64 counters: one per
 * program kind, indexed by the TRACE_* constants below.
 */
#ifndef TEST_TRACE_H
#define TEST_TRACE_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pt_regs;

#define TRACE_TRACEPOINT 0
#define TRACE_UPROBE 1
#define TRACE_RAW_TRACEPOINT 2

/* Atomically adds one to counts[index] (the programs run on every CPU). */
static __always_inline int test_trace_hit(__u32 index)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &index);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

#endif /* TEST_TRACE_H */
