// SPDX-License-Identifier: MIT OR Apache-2.0
// Everything goebpf's loader rejects (goebpf-behaviour.md 1.8), in one
// object: string literals, global variables in .data, .bss, .rodata and a
// custom .data.counters section, a non-inlined static subprogram in .text
// called from two programs in different sections, and a bpf_loop callback
// (kernel >= 5.17). Both programs can be run with BPF_PROG_TEST_RUN.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* .data */
__u64 data_counter = 7;

/* .bss */
__u64 bss_counter;
__u32 loop_sum;

/* .rodata: set before loading to change the number of bpf_loop rounds */
const volatile __u32 loop_rounds = 10;
const char greeting[] = "hello from .rodata\n";

/* .data.counters, a custom data section (a map of its own) */
__u64 counter_a SEC(".data.counters") = 1;
__u64 counter_b SEC(".data.counters") = 2;

/* A BPF-to-BPF call target: static, never inlined, so it stays in .text. */
static __noinline __u64 bump(__u64 *counter, __u64 by)
{
	*counter += by;
	return *counter;
}

/* bpf_loop callback: adds each round's index to the caller's sum. */
static int add_index(__u32 index, void *ctx)
{
	__u32 *sum = ctx;

	*sum += index;
	return 0;
}

/*
 * Adds 1 to bss_counter and counter_a; on its first run prints through
 * bpf_printk (format string in .rodata) and a plain literal (in
 * .rodata.str1.1). Passes the packet.
 */
SEC("xdp")
int globals_xdp(struct xdp_md *ctx)
{
	if (bump(&bss_counter, 1) == 1) {
		bpf_printk("globals_xdp: first packet, data_counter=%llu",
			   data_counter);
		bpf_trace_printk("globals_xdp: a .rodata.str1.1 literal\n",
				 sizeof("globals_xdp: a .rodata.str1.1 literal\n"));
	}
	bump(&counter_a, 1);
	return XDP_PASS;
}

/*
 * Adds 1 to data_counter and skb->len to counter_b, stores
 * 0 + 1 + ... + (loop_rounds - 1) in loop_sum via bpf_loop, prints
 * `greeting` on its first run, and keeps the whole packet.
 */
SEC("socket")
int globals_socket(struct __sk_buff *skb)
{
	__u32 sum = 0;

	if (bump(&data_counter, 1) == 8)
		bpf_trace_printk(greeting, sizeof(greeting));
	bump(&counter_b, skb->len);
	bpf_loop(loop_rounds, add_index, &sum, 0);
	loop_sum = sum;
	return skb->len;
}

char _license[] SEC("license") = "GPL";
