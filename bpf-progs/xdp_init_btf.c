// SPDX-License-Identifier: MIT OR Apache-2.0
// BTF maps whose slots are filled at load time from the object itself
// (the `.values = { [i] = &x }` initialisers, relocations in ".rel.maps"):
// a prog array holding two of the programs and two map-in-maps holding
// two inner maps. xdp_entry reads a slot number from inner_a[0] (via
// outer[1]) and tail-calls jmp_table[slot]: with nothing written, slot 0
// is xdp_pass_prog; writing 2 selects xdp_drop_prog; an empty slot ends in
// XDP_ABORTED. (Prog arrays take no BTF key type, hence key_size.)
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass_prog(struct xdp_md *ctx);
SEC("xdp")
int xdp_drop_prog(struct xdp_md *ctx);

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
};

struct inner_map inner_a SEC(".maps");
struct inner_map inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 4);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [1] = &inner_a, [3] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 4);
	__array(values, struct inner_map);
} outer_hash SEC(".maps") = {
	.values = { [2] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(max_entries, 4);
	__array(values, int(void *));
} jmp_table SEC(".maps") = {
	.values = { [0] = (void *)&xdp_pass_prog, [2] = (void *)&xdp_drop_prog },
};

SEC("xdp")
int xdp_entry(struct xdp_md *ctx)
{
	__u32 key = 1, zero = 0, slot = 0;
	void *inner = bpf_map_lookup_elem(&outer, &key);

	if (inner) {
		__u32 *value = bpf_map_lookup_elem(inner, &zero);

		if (value)
			slot = *value;
	}
	bpf_tail_call(ctx, &jmp_table, slot);
	return XDP_ABORTED;
}

SEC("xdp")
int xdp_pass_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_drop_prog(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
