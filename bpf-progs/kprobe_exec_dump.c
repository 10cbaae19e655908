// SPDX-License-Identifier: MIT OR Apache-2.0
// goebpf example kprobe/exec_dump: on every execve, sends to `events` one
// record made of
//   struct exec_event (56 bytes: ktime_ns, pid, uid, gid, type = 0, comm[32])
//   the file name, NUL-terminated
//   up to MAX_ARGS argv strings, each NUL-terminated
// assembled in `buffer`, a per-CPU scratch value of 16 KiB (larger than the
// 512-byte BPF stack). "guess_execve" is resolved by the loader to the
// kernel's execve symbol.
//
// x86-64 only, kernels >= 4.17: the probed function is the syscall wrapper
// __x64_sys_execve(const struct pt_regs *regs), whose single argument
// points at the user registers holding the real arguments. (goebpf also
// guessed at the older unwrapped calling convention; we do not.)
#include "goebpf.h"

#define EXEC_BUF_SIZE 16384 /* value_size of `buffer` */
#define EXEC_OFF_MASK 8191  /* offsets stay below half the buffer... */
#define MAX_ARGLEN 256      /* ...so a string never runs past its end */
#define MAX_ARGS 20
#define COMM_LEN 32

/* The kernel's struct pt_regs on x86-64 (field names as in the kernel). */
struct x86_pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct exec_event {
	__u64 ktime_ns;
	__u32 pid;
	__u32 uid;
	__u32 gid;
	__s32 type;
	char comm[COMM_LEN];
};
_Static_assert(sizeof(struct exec_event) == 56, "the event header is 56 bytes");

struct exec_buf {
	__u32 off; /* bytes of data in use */
	__u32 reserved;
	__u8 data[EXEC_BUF_SIZE - 8];
};
_Static_assert(sizeof(struct exec_buf) == EXEC_BUF_SIZE, "buffer value size");

BPF_MAP_DEF(events) = {
	.map_type = BPF_MAP_TYPE_PERF_EVENT_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 1024,
};
BPF_MAP_ADD(events);

BPF_MAP_DEF(buffer) = {
	.map_type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(struct exec_buf),
	.max_entries = 1,
};
BPF_MAP_ADD(buffer);

/* Appends the user string at `str` (with its NUL); returns its length. */
static __always_inline long append_str(struct exec_buf *buf, const void *str)
{
	__u32 off = buf->off;
	long n;

	if (off > EXEC_OFF_MASK)
		return 0;
	off &= EXEC_OFF_MASK;
	n = bpf_probe_read_user_str(&buf->data[off], MAX_ARGLEN, str);
	if (n > 0)
		buf->off = off + n;
	return n;
}

SEC("kprobe/guess_execve")
int execve_entry(struct x86_pt_regs *ctx)
{
	struct x86_pt_regs *user_regs = (void *)ctx->di;
	const char *filename = 0;
	const char *const *argv = 0;
	struct exec_event *ev;
	struct exec_buf *buf;
	__u32 zero = 0;
	__u64 uid_gid;
	__u32 size;

	buf = bpf_map_lookup_elem(&buffer, &zero);
	if (!buf)
		return 0;

	ev = (void *)buf->data;
	uid_gid = bpf_get_current_uid_gid();
	ev->ktime_ns = bpf_ktime_get_ns();
	ev->pid = bpf_get_current_pid_tgid() >> 32;
	ev->uid = uid_gid;
	ev->gid = uid_gid >> 32;
	ev->type = 0;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	buf->off = sizeof(*ev);

	bpf_probe_read_kernel(&filename, sizeof(filename), &user_regs->di);
	bpf_probe_read_kernel(&argv, sizeof(argv), &user_regs->si);
	append_str(buf, filename);
#pragma unroll
	for (int i = 0; i < MAX_ARGS; i++) {
		const char *arg = 0;

		if (!argv || bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) ||
		    !arg)
			break;
		if (append_str(buf, arg) <= 0)
			break;
	}

	size = buf->off;
	if (size > sizeof(buf->data))
		size = sizeof(buf->data);
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, buf->data, size);
	return 0;
}

char _license[] SEC("license") = "GPL";
