// SPDX-License-Identifier: MIT OR Apache-2.0
// bench_load.c with BTF-defined maps (libbpf's `__uint`/`__type`) and libbpf's section name:
// the same load workload for the modern map style, whose definitions the parser reads from
// BTF.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1024);
} lengths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} config SEC(".maps");

#define BENCH_LOAD_SEC "socket"
#include "bench_load.h"
