/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * test_events.h - sequence-numbered records for the perf buffer and ring
 * buffer tests and benchmarks (sock_perf_btf.c, sock_ringbuf_btf.c).
 *
 * Each record is a u64 sequence number followed by zero bytes, record_size
 * bytes in all. record_size lives in .rodata: rewrite it before loading to
 * change the size (it is clamped to 8..RECORD_MAX). The sequence number
 * comes from a plain .bss counter, so it is exact when one CPU runs the
 * program at a time (BPF_PROG_TEST_RUN with repeat), not under concurrency.
 */
#ifndef TEST_EVENTS_H
#define TEST_EVENTS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define RECORD_MAX 4096

struct record {
	__u64 seq;
	__u8 pad[RECORD_MAX - sizeof(__u64)];
};

/* Bytes per record, sequence number included. */
const volatile __u32 record_size = 64;

/* Records produced so far: the next record's sequence number. */
__u64 next_seq;
/* Records the kernel refused (ring full). */
__u64 lost;

/* One zeroed record buffer per CPU (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct record);
	__uint(max_entries, 1);
} scratch SEC(".maps");

/* Returns the next record (seq filled in) and its size in *size. */
static __always_inline struct record *test_events_next(__u64 *size)
{
	__u32 zero = 0;
	struct record *rec = bpf_map_lookup_elem(&scratch, &zero);
	__u64 n = record_size;

	if (!rec)
		return 0;
	if (n < sizeof(__u64))
		n = sizeof(__u64);
	if (n > RECORD_MAX)
		n = RECORD_MAX;
	rec->seq = next_seq;
	next_seq += 1;
	*size = n;
	return rec;
}

#endif /* TEST_EVENTS_H */
