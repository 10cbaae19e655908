// SPDX-License-Identifier: MIT OR Apache-2.0
// xdp_legacy.c with BTF-described maps (".maps"): the same maps and programs,
// pinned maps marked LIBBPF_PIN_BY_NAME instead of a persistent path, and
// inner map templates declared inline (libbpf names them "<outer>.inner").
// perf_map has no max_entries: the loader sets it to the number of CPUs.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 100);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} txcnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, 50);
} rxcnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 10);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
		__type(key, __u32);
		__type(value, __u64);
		__uint(max_entries, 100);
	});
} match_maps_tx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__type(key, __u64);
		__type(value, __u32);
		__uint(max_entries, 50);
	});
} match_maps_rx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 10);
} array_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_map SEC(".maps");

#define PROG_CNT 2
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, PROG_CNT);
} programs SEC(".maps");

#include "test_xdp.h"

SEC("xdp")
int xdp0(struct xdp_md *ctx)
{
	return test_xdp_count();
}

SEC("xdp")
int xdp1(struct xdp_md *ctx)
{
	return test_xdp_drop();
}

SEC("xdp")
int xdp_head_meta2(struct xdp_md *ctx)
{
	return test_xdp_head_meta(ctx);
}

SEC("xdp")
int xdp_root3(struct xdp_md *ctx)
{
	return test_xdp_root(ctx);
}

SEC("xdp")
int xdp_perf(struct xdp_md *ctx)
{
	return test_xdp_perf(ctx);
}

char _license[] SEC("license") = "GPL";
