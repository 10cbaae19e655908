// SPDX-License-Identifier: MIT OR Apache-2.0
// Kfuncs of netfilter's connection tracking (Linux 5.18), built against
// target/bpf/include/vmlinux.h. Where nf_conntrack is a module (Debian's kernels), the kfuncs
// are in the module's BTF, and the program loads only with an fd_array holding that BTF
// object (each call's `off` is its slot); where it is built in (this machine), in vmlinux's.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* The options as Linux 5.18-6.12 define them (12 bytes; later kernels accept this size too). */
struct ct_opts_12 {
	s32 netns_id;
	s32 error;
	u8 l4proto;
	u8 dir;
	u8 reserved[2];
};

extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *xdp_ctx, struct bpf_sock_tuple *bpf_tuple,
					 u32 tuple__sz, struct ct_opts_12 *opts,
					 u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

/* Run with BPF_PROG_TEST_RUN: looks up a TCP connection nobody made; returns 1000 if found,
 * else the error the kfunc reported, negated (ENOENT, 2). */
SEC("xdp")
int core_kfunc_ct_lookup(struct xdp_md *ctx)
{
	struct bpf_sock_tuple tuple = {};
	struct ct_opts_12 opts = {
		.netns_id = -1, /* BPF_F_CURRENT_NETNS */
		.l4proto = 6,   /* IPPROTO_TCP */
	};
	struct nf_conn *ct;

	tuple.ipv4.saddr = bpf_htonl(0x0a000001);
	tuple.ipv4.daddr = bpf_htonl(0x0a000002);
	tuple.ipv4.sport = bpf_htons(40000);
	tuple.ipv4.dport = bpf_htons(9);
	ct = bpf_xdp_ct_lookup(ctx, &tuple, sizeof(tuple.ipv4), &opts, sizeof(opts));
	if (ct) {
		bpf_ct_release(ct);
		return 1000;
	}
	return -opts.error;
}

char _license[] SEC("license") = "GPL";
