// SPDX-License-Identifier: MIT OR Apache-2.0
// goebpf's integration-test XDP object (itest/ebpf_prog/xdp1.c), legacy
// "maps" section. Sizes left at 0 are the ones goebpf forces when creating
// the map (4 bytes for perf event arrays, prog arrays and map-in-map values).
#include "goebpf.h"

BPF_MAP_DEF(txcnt) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 100,
	.persistent_path = "/sys/fs/bpf/txcnt",
};
BPF_MAP_ADD(txcnt);

BPF_MAP_DEF(rxcnt) = {
	.map_type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u64),
	.value_size = sizeof(__u32),
	.max_entries = 50,
};
BPF_MAP_ADD(rxcnt);

BPF_MAP_DEF(match_maps_tx) = {
	.map_type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
	.key_size = sizeof(__u32),
	.max_entries = 10,
	.inner_map_def = &txcnt,
};
BPF_MAP_ADD(match_maps_tx);

BPF_MAP_DEF(match_maps_rx) = {
	.map_type = BPF_MAP_TYPE_HASH_OF_MAPS,
	.key_size = sizeof(__u32),
	.max_entries = 20,
	.inner_map_def = &rxcnt,
	.persistent_path = "/sys/fs/bpf/match_maps_rx",
};
BPF_MAP_ADD(match_maps_rx);

BPF_MAP_DEF(array_map) = {
	.map_type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 10,
};
BPF_MAP_ADD(array_map);

BPF_MAP_DEF(perf_map) = {
	.map_type = BPF_MAP_TYPE_PERF_EVENT_ARRAY,
	.max_entries = 128,
};
BPF_MAP_ADD(perf_map);

#define PROG_CNT 2
BPF_MAP_DEF(programs) = {
	.map_type = BPF_MAP_TYPE_PROG_ARRAY,
	.max_entries = PROG_CNT,
};
BPF_MAP_ADD(programs);

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
