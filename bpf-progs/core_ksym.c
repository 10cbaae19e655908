// SPDX-License-Identifier: MIT OR Apache-2.0
// A typed __ksym extern, built against target/bpf/include/vmlinux.h: the per-CPU variable
// `runqueues`, whose type the loader finds in the kernel's BTF (a BPF_PSEUDO_BTF_ID load of its
// VAR). The kernel resolves its address only with CONFIG_KALLSYMS_ALL, so this object loads
// on kernels built with it (Debian's), not on every kernel (core_kconfig.c covers untyped
// ksyms everywhere).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern const struct rq runqueues __ksym;

struct ksym_result {
	__u32 hits;
	/* `cpu` of this CPU's runqueue, through bpf_this_cpu_ptr. */
	__s32 this_rq_cpu;
	/* `cpu` of CPU 0's runqueue, through bpf_per_cpu_ptr. */
	__s32 rq0_cpu;
	/* bpf_get_smp_processor_id(). */
	__u32 smp_cpu;
};

__u32 target_pid = 0;
struct ksym_result ksym_result = {};

SEC("raw_tracepoint/sys_enter")
int core_ksym_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct ksym_result *r = &ksym_result;
	struct rq *this_rq, *rq0;

	if ((__u32)bpf_get_current_pid_tgid() != target_pid)
		return 0;
	this_rq = (struct rq *)bpf_this_cpu_ptr(&runqueues);
	r->this_rq_cpu = this_rq->cpu;
	rq0 = (struct rq *)bpf_per_cpu_ptr(&runqueues, 0);
	r->rq0_cpu = rq0 ? rq0->cpu : -1;
	r->smp_cpu = bpf_get_smp_processor_id();
	__sync_fetch_and_add(&r->hits, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
