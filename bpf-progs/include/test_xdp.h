/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * test_xdp.h - program bodies shared by xdp_legacy.c and xdp_btf.c.
 *
 * The including file declares the maps (in its own style) before including
 * this header: txcnt, rxcnt, match_maps_tx, array_map, perf_map, programs,
 * and defines PROG_CNT (the size of `programs`). Both objects therefore carry
 * the same code and differ only in how their maps are described.
 */
#ifndef TEST_XDP_H
#define TEST_XDP_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* xdp0: counts every packet in txcnt[0] (per CPU) and array_map[0]; passes. */
static __always_inline int test_xdp_count(void)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&txcnt, &key);

	if (n)
		*n += 1;
	n = bpf_map_lookup_elem(&array_map, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	return XDP_PASS;
}

/*
 * xdp1: bumps rxcnt[1] (u64 key, u32 value) when that key exists, and
 * slot 0 of the inner map stored at match_maps_tx[0] when one is stored;
 * drops the packet.
 */
static __always_inline int test_xdp_drop(void)
{
	__u64 rx_key = 1;
	__u32 zero = 0;
	__u32 *rx = bpf_map_lookup_elem(&rxcnt, &rx_key);
	void *inner;

	if (rx)
		__sync_fetch_and_add(rx, 1);
	inner = bpf_map_lookup_elem(&match_maps_tx, &zero);
	if (inner) {
		__u64 *n = bpf_map_lookup_elem(inner, &zero);

		if (n)
			*n += 1;
	}
	return XDP_DROP;
}

/*
 * xdp_head_meta2: reserves 8 bytes of metadata in front of the packet and
 * writes 112 there, then grows the head by 8 bytes and writes 112 into the
 * new first 8 bytes; passes.
 */
static __always_inline int test_xdp_head_meta(struct xdp_md *ctx)
{
	const int grow = -(int)sizeof(__u64);
	void *data, *data_end, *meta;

	if (bpf_xdp_adjust_meta(ctx, grow) == 0) {
		data = (void *)(long)ctx->data;
		meta = (void *)(long)ctx->data_meta;
		if (meta + sizeof(__u64) <= data)
			*(__u64 *)meta = 112;
	}
	if (bpf_xdp_adjust_head(ctx, grow) == 0) {
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + sizeof(__u64) <= data_end)
			*(__u64 *)data = 112;
	}
	return XDP_PASS;
}

/*
 * xdp_root3: tail-calls programs[0], then programs[1]; when neither slot
 * holds a program the packet is dropped.
 */
static __always_inline int test_xdp_root(struct xdp_md *ctx)
{
#pragma unroll
	for (__u32 i = 0; i < PROG_CNT; i++)
		bpf_tail_call(ctx, &programs, i);
	return XDP_DROP;
}

/* xdp_perf: sends the packet length (u32) to perf_map on the current CPU. */
static __always_inline int test_xdp_perf(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;

	bpf_perf_event_output(ctx, &perf_map, BPF_F_CURRENT_CPU, &len,
			      sizeof(len));
	return XDP_PASS;
}

#endif /* TEST_XDP_H */
