// SPDX-License-Identifier: MIT OR Apache-2.0
// .kconfig and __ksym externs, built against target/bpf/include/vmlinux.h: the loader fills
// the .kconfig map from the running kernel's version and config (and the values libbpf
// computes: LINUX_HAS_SYSCALL_WRAPPER, LINUX_HAS_BPF_COOKIE), and resolves an untyped ksym
// (`schedule`, by its /proc/kallsyms address). Weak externs the kernel lacks read as 0, typed
// (looked up in the kernel's BTF) or not. (A typed ksym the kernel has, such as per-CPU
// `runqueues`, needs CONFIG_KALLSYMS_ALL, which the build machine's kernel lacks: the kernel
// cannot find its address, so it is left out of this object.)
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern __u32 LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern bool CONFIG_EBPF_TEST_NO_SUCH_OPTION __kconfig __weak;
/* libbpf's computed values, declared strong as its headers do. */
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;

extern const void schedule __ksym;
extern const void ebpf_test_no_such_symbol __ksym __weak;
extern const int ebpf_test_no_such_var __ksym __weak;

struct kconfig_result {
	__u32 hits;
	__u32 kernel_version;
	__s32 hz;
	__u32 bpf_syscall;
	__u32 no_such_option;
	__u32 has_syscall_wrapper;
	__u64 schedule_addr;
	__u64 no_such_symbol_addr;
	__u64 no_such_var_addr;
	__u32 has_bpf_cookie;
	__u32 pad;
};

__u32 target_pid = 0;
struct kconfig_result kconfig_result = {};

SEC("tracepoint/syscalls/sys_enter_getpid")
int core_kconfig_getpid(void *ctx)
{
	struct kconfig_result *r = &kconfig_result;

	if ((__u32)bpf_get_current_pid_tgid() != target_pid)
		return 0;
	r->kernel_version = LINUX_KERNEL_VERSION;
	r->hz = CONFIG_HZ;
	r->bpf_syscall = CONFIG_BPF_SYSCALL;
	r->no_such_option = CONFIG_EBPF_TEST_NO_SUCH_OPTION;
	r->has_syscall_wrapper = LINUX_HAS_SYSCALL_WRAPPER;
	r->has_bpf_cookie = LINUX_HAS_BPF_COOKIE;
	r->schedule_addr = (__u64)&schedule;
	r->no_such_symbol_addr = (__u64)&ebpf_test_no_such_symbol;
	r->no_such_var_addr = (__u64)&ebpf_test_no_such_var;
	__sync_fetch_and_add(&r->hits, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
