/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * test_kprobe.h - program body shared by kprobe_legacy.c and kprobe_btf.c.
 *
 * The including file declares `perf_map` (perf event array) and `calls`
 * (hash: u32 tgid -> u64 hits) first.
 */
#ifndef TEST_KPROBE_H
#define TEST_KPROBE_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Kprobe contexts are `struct pt_regs *`; the programs never look inside. */
struct pt_regs;

#define TEST_COMM_LEN 32

/*
 * Counts the hit under the current process id in `calls`, then sends the
 * current task's comm, NUL-padded to 32 bytes, to `perf_map` (the record
 * goebpf's kprobe integration test reads).
 */
static __always_inline int test_kprobe_report(void *ctx)
{
	char comm[TEST_COMM_LEN];
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1;
	__u64 *hits = bpf_map_lookup_elem(&calls, &tgid);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	else
		bpf_map_update_elem(&calls, &tgid, &one, BPF_NOEXIST);

	bpf_get_current_comm(comm, sizeof(comm));
	bpf_perf_event_output(ctx, &perf_map, BPF_F_CURRENT_CPU, comm,
			      sizeof(comm));
	return 0;
}

#endif /* TEST_KPROBE_H */
