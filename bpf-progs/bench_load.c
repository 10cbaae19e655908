// SPDX-License-Identifier: MIT OR Apache-2.0
// The object of `cargo xtask bench`'s load workload: three legacy maps and
// two socket filters, loaded, created and closed in a loop (bench_load_btf.c:
// the same with BTF maps). Small on purpose: the figure is the loader's own
// cost next to raw MAP_CREATE and PROG_LOAD, not the verifier's.
#include "goebpf.h"

BPF_MAP_DEF(packets) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 4,
};
BPF_MAP_ADD(packets);

BPF_MAP_DEF(lengths) = {
	.map_type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1024,
};
BPF_MAP_ADD(lengths);

BPF_MAP_DEF(config) = {
	.map_type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 1,
};
BPF_MAP_ADD(config);

#define BENCH_LOAD_SEC "socket_filter"
#include "bench_load.h"
