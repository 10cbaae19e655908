// SPDX-License-Identifier: MIT OR Apache-2.0
// sock_perf_btf.c with a BPF ring buffer (kernel >= 5.8) of 1 MiB instead
// of a perf event array.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "test_events.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

SEC("socket")
int ringbuf_seq(struct __sk_buff *skb)
{
	__u64 size = 0;
	struct record *rec = test_events_next(&size);

	if (rec && bpf_ringbuf_output(&events, rec, size, 0) != 0)
		lost += 1;
	return skb->len;
}

char _license[] SEC("license") = "GPL";
