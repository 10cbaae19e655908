// SPDX-License-Identifier: MIT OR Apache-2.0
// A socket filter that sends one sequence-numbered record (test_events.h)
// per run to the perf event array `events` on the current CPU, counting
// refusals in `lost`, and keeps the packet. For BPF_PROG_TEST_RUN with
// repeat. `events` has no max_entries: the loader sets the CPU count.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "test_events.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("socket")
int perf_seq(struct __sk_buff *skb)
{
	__u64 size = 0;
	struct record *rec = test_events_next(&size);

	if (rec && bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU, rec,
					 size) != 0)
		lost += 1;
	return skb->len;
}

char _license[] SEC("license") = "GPL";
