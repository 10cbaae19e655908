//! Programs: `BPF_PROG_LOAD`, `BPF_PROG_TEST_RUN`, `BPF_PROG_ATTACH`, `BPF_PROG_DETACH`, and
//! the few instruction encoders the probes and tests need.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::bpf::{
    len_u32, object_name, ptr_u64, slice_mut_u64, slice_u64, sys_bpf, sys_bpf_fd, Cmd, LogBuf,
    ATTR_SIZE,
};
use crate::map::{fd_u32, raw_fd};
use crate::uapi::{self, bpf_attr, bpf_insn};
use crate::{AttachType, ProgramType, SysError};

/// How many times `BPF_PROG_LOAD` is retried when the verifier answers `EAGAIN` (as libbpf).
const LOAD_TRIES: usize = 5;

/// What `BPF_PROG_LOAD` needs.
///
/// ```
/// # use bpf_sys::{prog::{self, ProgLoadAttr}, ProgramType};
/// let insns = [prog::mov64_imm(0, 2), prog::exit()];
/// let mut attr = ProgLoadAttr::new(ProgramType::Xdp, &insns, c"GPL");
/// attr.name = "pass";
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ProgLoadAttr<'a> {
    /// The program type.
    pub prog_type: ProgramType,
    /// The instructions.
    pub insns: &'a [bpf_insn],
    /// The license (`c"GPL"`); GPL-only helpers need a GPL-compatible one.
    pub license: &'a CStr,
    /// `LINUX_VERSION_CODE` of the running kernel, checked for kprobes before Linux 5.0; else 0.
    pub kern_version: u32,
    /// The program's name, cut to 15 bytes; empty for none.
    pub name: &'a str,
    /// The attach type the program will be attached with, for types that check it at load.
    pub expected_attach_type: Option<AttachType>,
    /// `BPF_F_*` program flags (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`...).
    pub prog_flags: u32,
    /// The interface to offload or bind the program to; 0 for none.
    pub prog_ifindex: u32,
    /// BTF for `func_info` and `line_info`.
    pub prog_btf_fd: Option<BorrowedFd<'a>>,
    /// `bpf_func_info` records, packed, each `func_info_rec_size` bytes.
    pub func_info: &'a [u8],
    /// Size of one `func_info` record.
    pub func_info_rec_size: u32,
    /// `bpf_line_info` records, packed, each `line_info_rec_size` bytes.
    pub line_info: &'a [u8],
    /// Size of one `line_info` record.
    pub line_info_rec_size: u32,
    /// BTF id of the attach target (tracing, LSM, struct_ops, ext programs).
    pub attach_btf_id: u32,
    /// The program to attach to (ext and tracing programs on BPF programs), or the BTF object
    /// holding `attach_btf_id` (a kernel module's BTF); both share the kernel's field.
    pub attach_prog_fd: Option<BorrowedFd<'a>>,
    /// Fds the instructions refer to by index (`BPF_PSEUDO_MAP_IDX`, kfunc BTF), Linux 5.14.
    pub fd_array: &'a [BorrowedFd<'a>],
}

impl<'a> ProgLoadAttr<'a> {
    /// A program of `prog_type` with these instructions and license, and nothing else set.
    pub fn new(prog_type: ProgramType, insns: &'a [bpf_insn], license: &'a CStr) -> Self {
        ProgLoadAttr {
            prog_type,
            insns,
            license,
            kern_version: 0,
            name: "",
            expected_attach_type: None,
            prog_flags: 0,
            prog_ifindex: 0,
            prog_btf_fd: None,
            func_info: &[],
            func_info_rec_size: 0,
            line_info: &[],
            line_info_rec_size: 0,
            attach_btf_id: 0,
            attach_prog_fd: None,
            fd_array: &[],
        }
    }

    /// The attribute union for `BPF_PROG_LOAD`, without a log. Its pointers borrow from
    /// `self`'s slices. Errors: counts that do not fit in `u32`, record arrays that are not a
    /// whole number of records.
    pub fn to_attr(&self) -> Result<bpf_attr, SysError> {
        let call = Cmd::ProgLoad.name();
        let func_info_cnt = records(call, "func_info", self.func_info, self.func_info_rec_size)?;
        let line_info_cnt = records(call, "line_info", self.line_info, self.line_info_rec_size)?;
        // Field by field into the zeroed union: a whole-struct assignment would copy padding
        // bytes, which need not be zero, and the kernel refuses non-zero bytes it does not know.
        let mut attr = bpf_attr::default();
        attr.__bindgen_anon_3.prog_type = self.prog_type.as_u32();
        attr.__bindgen_anon_3.insn_cnt = len_u32(call, "insns", self.insns.len())?;
        attr.__bindgen_anon_3.insns = slice_u64(self.insns);
        attr.__bindgen_anon_3.license = ptr_u64(self.license.as_ptr());
        attr.__bindgen_anon_3.kern_version = self.kern_version;
        attr.__bindgen_anon_3.prog_flags = self.prog_flags;
        attr.__bindgen_anon_3.prog_name = object_name(self.name);
        attr.__bindgen_anon_3.prog_ifindex = self.prog_ifindex;
        attr.__bindgen_anon_3.expected_attach_type =
            self.expected_attach_type.map_or(0, AttachType::as_u32);
        attr.__bindgen_anon_3.prog_btf_fd = fd_u32(self.prog_btf_fd);
        attr.__bindgen_anon_3.func_info_rec_size = self.func_info_rec_size;
        attr.__bindgen_anon_3.func_info = slice_u64(self.func_info);
        attr.__bindgen_anon_3.func_info_cnt = func_info_cnt;
        attr.__bindgen_anon_3.line_info_rec_size = self.line_info_rec_size;
        attr.__bindgen_anon_3.line_info = slice_u64(self.line_info);
        attr.__bindgen_anon_3.line_info_cnt = line_info_cnt;
        attr.__bindgen_anon_3.attach_btf_id = self.attach_btf_id;
        attr.__bindgen_anon_3.__bindgen_anon_1.attach_prog_fd = fd_u32(self.attach_prog_fd);
        // `BorrowedFd` is `repr(transparent)` over the `int` fd: the slice is an `int[]`.
        attr.__bindgen_anon_3.fd_array = slice_u64(self.fd_array);
        Ok(attr)
    }
}

/// The number of `rec_size`-byte records in `data`; refuses a partial record.
fn records(call: &'static str, what: &str, data: &[u8], rec_size: u32) -> Result<u32, SysError> {
    if data.is_empty() {
        return Ok(0);
    }
    if rec_size == 0 || data.len() % rec_size as usize != 0 {
        return Err(partial_record(call, what, data.len(), rec_size));
    }
    len_u32(call, what, data.len() / rec_size as usize)
}

/// The error of [`records`], built out of line: every program load counts its records.
#[cold]
#[inline(never)]
fn partial_record(call: &'static str, what: &str, len: usize, rec_size: u32) -> SysError {
    SysError::invalid_input(
        call,
        format!("{what} is {len} bytes, not a whole number of {rec_size}-byte records"),
    )
}

/// `BPF_PROG_LOAD`: verifies and loads a program, returning its fd.
///
/// With `log`, the verifier writes its log there (on success too); after the call,
/// [`LogBuf::text`] holds it and [`LogBuf::true_size`] the size the whole log needs (Linux 6.4).
/// On failure the error carries the errno: `EACCES` or `EINVAL` for a program the verifier
/// rejects (the log says why), `ENOSPC` when the log did not fit, `EPERM` without privilege.
/// `EAGAIN` from the verifier is retried a few times, as libbpf does.
#[doc(alias = "BPF_PROG_LOAD")]
pub fn load(
    attr: &ProgLoadAttr<'_>,
    mut log: Option<&mut LogBuf<'_>>,
) -> Result<OwnedFd, SysError> {
    let mut raw = attr.to_attr()?;
    for attempt in 1..=LOAD_TRIES {
        if let Some(log) = log.as_deref_mut() {
            let (buf, size, level) = log.raw_parts();
            raw.__bindgen_anon_3.log_buf = buf;
            raw.__bindgen_anon_3.log_size = size;
            raw.__bindgen_anon_3.log_level = level;
            raw.__bindgen_anon_3.log_true_size = 0;
        }
        // SAFETY: every pointer in `raw` comes from a slice or string borrowed by `attr` (insns,
        // license, func/line info with their counts, fd_array) or from `log`'s buffer with its
        // size; all outlive the call. PROG_LOAD returns a new fd.
        let ret = unsafe { sys_bpf_fd(Cmd::ProgLoad, &mut raw) };
        if let Some(log) = log.as_deref_mut() {
            // SAFETY: reading a plain `u32` of the union the kernel filled.
            log.set_true_size(unsafe { raw.__bindgen_anon_3.log_true_size });
        }
        match ret {
            Err(e) if e.is_errno(libc::EAGAIN) && attempt < LOAD_TRIES => continue,
            other => return other,
        }
    }
    unreachable!("the last attempt returns")
}

/// What `BPF_PROG_TEST_RUN` needs. Output buffers are optional; empty input is allowed for
/// program types that take none.
#[derive(Debug, Default)]
pub struct TestRunAttr<'a> {
    /// Packet or input data.
    pub data_in: &'a [u8],
    /// Where the kernel writes the data after the run (up to its length).
    pub data_out: Option<&'a mut [u8]>,
    /// The context (`__sk_buff`, `xdp_md`...) to run with.
    pub ctx_in: &'a [u8],
    /// Where the kernel writes the context after the run.
    pub ctx_out: Option<&'a mut [u8]>,
    /// Runs (0 counts as 1); the duration is the average.
    pub repeat: u32,
    /// `BPF_F_TEST_RUN_ON_CPU`, `BPF_F_TEST_XDP_LIVE_FRAMES`...
    pub flags: u32,
    /// The CPU to run on, with `BPF_F_TEST_RUN_ON_CPU`.
    pub cpu: u32,
    /// Frames per batch for XDP live-frames mode.
    pub batch_size: u32,
}

/// What `BPF_PROG_TEST_RUN` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value.
    pub retval: u32,
    /// Average run time in nanoseconds.
    pub duration_ns: u32,
    /// Bytes of output data (may exceed the buffer: then the kernel copied what fit and said
    /// `ENOSPC`).
    pub data_size_out: u32,
    /// Bytes of output context.
    pub ctx_size_out: u32,
}

/// `BPF_PROG_TEST_RUN`: runs the program once or `repeat` times on the given input.
#[doc(alias = "BPF_PROG_TEST_RUN")]
#[doc(alias = "BPF_PROG_RUN")]
pub fn test_run(prog: impl AsFd, run: &mut TestRunAttr<'_>) -> Result<TestRunResult, SysError> {
    let call = Cmd::ProgTestRun.name();
    let mut attr = bpf_attr::default();
    let (data_out, data_size_out) = match run.data_out.as_deref_mut() {
        Some(b) => (slice_mut_u64(b), len_u32(call, "data_out", b.len())?),
        None => (0, 0),
    };
    let (ctx_out, ctx_size_out) = match run.ctx_out.as_deref_mut() {
        Some(b) => (slice_mut_u64(b), len_u32(call, "ctx_out", b.len())?),
        None => (0, 0),
    };
    attr.test.prog_fd = raw_fd(prog.as_fd());
    attr.test.data_size_in = len_u32(call, "data_in", run.data_in.len())?;
    attr.test.data_in = slice_u64(run.data_in);
    attr.test.data_size_out = data_size_out;
    attr.test.data_out = data_out;
    attr.test.ctx_size_in = len_u32(call, "ctx_in", run.ctx_in.len())?;
    attr.test.ctx_in = slice_u64(run.ctx_in);
    attr.test.ctx_size_out = ctx_size_out;
    attr.test.ctx_out = ctx_out;
    attr.test.repeat = run.repeat;
    attr.test.flags = run.flags;
    attr.test.cpu = run.cpu;
    attr.test.batch_size = run.batch_size;
    // SAFETY: data_in/ctx_in point to slices of the given sizes the kernel reads; data_out and
    // ctx_out to buffers of the given sizes the kernel writes at most (since 4.20 it honours
    // `*_size_out` as the buffer's capacity); all borrows outlive the call.
    unsafe { sys_bpf(Cmd::ProgTestRun, &mut attr, ATTR_SIZE) }?;
    // SAFETY: reading the plain-integer TEST_RUN member the kernel filled.
    let t = unsafe { attr.test };
    Ok(TestRunResult {
        retval: t.retval,
        duration_ns: t.duration,
        data_size_out: t.data_size_out,
        ctx_size_out: t.ctx_size_out,
    })
}

/// Where `BPF_PROG_ATTACH`, `BPF_PROG_DETACH` and `BPF_LINK_CREATE` attach.
#[derive(Debug, Clone, Copy)]
pub enum AttachTarget<'a> {
    /// An fd: a cgroup, a sockmap, a network namespace, a perf event...
    Fd(BorrowedFd<'a>),
    /// A network interface (XDP, tcx, netkit).
    Ifindex(u32),
    /// No target (the field is 0): the kernel picks it, e.g. the caller's network namespace for
    /// `BPF_PROG_ATTACH` of a flow dissector, or a tracing program's own BTF target.
    Implicit,
}

impl AttachTarget<'_> {
    pub(crate) fn raw(&self) -> u32 {
        match self {
            AttachTarget::Fd(fd) => fd.as_raw_fd() as u32,
            AttachTarget::Ifindex(i) => *i,
            AttachTarget::Implicit => 0,
        }
    }
}

/// `BPF_PROG_ATTACH`: attaches `prog` to `target` as `attach_type` (cgroups, sockmaps, flow
/// dissector, lirc, and tcx/netkit since 6.6).
///
/// `flags`: `BPF_F_ALLOW_OVERRIDE`, `BPF_F_ALLOW_MULTI`, `BPF_F_REPLACE` (with `replace`: the
/// program to replace).
#[doc(alias = "BPF_PROG_ATTACH")]
pub fn attach(
    target: AttachTarget<'_>,
    prog: impl AsFd,
    attach_type: AttachType,
    flags: u32,
    replace: Option<BorrowedFd<'_>>,
) -> Result<(), SysError> {
    let mut attr = bpf_attr::default();
    attr.__bindgen_anon_5.__bindgen_anon_1.target_fd = target.raw();
    attr.__bindgen_anon_5.attach_bpf_fd = raw_fd(prog.as_fd());
    attr.__bindgen_anon_5.attach_type = attach_type.as_u32();
    attr.__bindgen_anon_5.attach_flags = flags;
    attr.__bindgen_anon_5.replace_bpf_fd = fd_u32(replace);
    // SAFETY: PROG_ATTACH reads only integers (fds and flags) of the attribute.
    unsafe { sys_bpf(Cmd::ProgAttach, &mut attr, ATTR_SIZE) }.map(drop)
}

/// `BPF_PROG_DETACH`: detaches `prog` (or, for hooks with a single program and old kernels,
/// whatever is attached: `None`) from `target` as `attach_type`.
#[doc(alias = "BPF_PROG_DETACH")]
pub fn detach(
    target: AttachTarget<'_>,
    prog: Option<BorrowedFd<'_>>,
    attach_type: AttachType,
) -> Result<(), SysError> {
    let mut attr = bpf_attr::default();
    attr.__bindgen_anon_5.__bindgen_anon_1.target_fd = target.raw();
    attr.__bindgen_anon_5.attach_bpf_fd = fd_u32(prog);
    attr.__bindgen_anon_5.attach_type = attach_type.as_u32();
    // SAFETY: PROG_DETACH reads only integers (fds and the type) of the attribute.
    unsafe { sys_bpf(Cmd::ProgDetach, &mut attr, ATTR_SIZE) }.map(drop)
}

/// An instruction from its parts (registers keep their low 4 bits).
#[inline]
pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> bpf_insn {
    bpf_insn {
        code,
        _bitfield_align_1: [],
        _bitfield_1: uapi::__BindgenBitfieldUnit::new([regs_byte(dst, src)]),
        off,
        imm,
    }
}

/// The byte of `struct bpf_insn` that holds `__u8 dst_reg:4, src_reg:4`: C puts the first
/// bitfield in the low bits on little-endian targets and in the high bits on big-endian ones.
/// Written whole, not bit by bit as bindgen's setters do (the loader builds every instruction
/// of every program with it).
#[inline]
const fn regs_byte(dst: u8, src: u8) -> u8 {
    if cfg!(target_endian = "little") {
        (dst & 0xf) | (src << 4)
    } else {
        (dst << 4) | (src & 0xf)
    }
}

/// `dst = imm` (64-bit move).
pub fn mov64_imm(dst: u8, imm: i32) -> bpf_insn {
    insn(
        (uapi::BPF_ALU64 | uapi::BPF_MOV | uapi::BPF_K) as u8,
        dst,
        0,
        0,
        imm,
    )
}

/// `dst = src` (64-bit move).
pub fn mov64_reg(dst: u8, src: u8) -> bpf_insn {
    insn(
        (uapi::BPF_ALU64 | uapi::BPF_MOV | uapi::BPF_X) as u8,
        dst,
        src,
        0,
        0,
    )
}

/// `call helper` (a helper by its `bpf_func_id`).
pub fn call_helper(helper_id: u32) -> bpf_insn {
    insn(
        (uapi::BPF_JMP | uapi::BPF_CALL) as u8,
        0,
        0,
        0,
        helper_id as i32,
    )
}

/// `exit`.
pub fn exit() -> bpf_insn {
    insn((uapi::BPF_JMP | uapi::BPF_EXIT) as u8, 0, 0, 0, 0)
}

/// `dst = map` (the two-slot `ld_imm64` with `BPF_PSEUDO_MAP_FD`).
pub fn ld_map_fd(dst: u8, map: BorrowedFd<'_>) -> [bpf_insn; 2] {
    [
        insn(
            (uapi::BPF_LD | uapi::BPF_DW | uapi::BPF_IMM) as u8,
            dst,
            uapi::BPF_PSEUDO_MAP_FD as u8,
            0,
            map.as_raw_fd(),
        ),
        insn(0, 0, 0, 0, 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_puts_each_register_where_the_bitfield_accessors_read_it() {
        for dst in 0..=0xffu8 {
            for src in [0u8, 1, 7, 10, 15, 16, 0x5a, 0xff] {
                let i = insn(0x85, dst, src, -3, 42);
                assert_eq!((i.dst_reg(), i.src_reg()), (dst & 0xf, src & 0xf));
                let mut by_setters = bpf_insn::default();
                by_setters.set_dst_reg(dst);
                by_setters.set_src_reg(src);
                assert_eq!(i._bitfield_1, by_setters._bitfield_1, "dst {dst} src {src}");
                assert_eq!((i.code, i.off, i.imm), (0x85, -3, 42));
            }
        }
    }

    #[test]
    fn load_attr_points_at_the_callers_slices() {
        let insns = [mov64_imm(0, 2), exit()];
        let mut a = ProgLoadAttr::new(ProgramType::Xdp, &insns, c"GPL");
        a.name = "xdp_pass_program_long";
        a.expected_attach_type = Some(AttachType::Xdp);
        let raw = a.to_attr().unwrap();
        // SAFETY: reading the PROG_LOAD member of a union built through it.
        let p = unsafe { raw.__bindgen_anon_3 };
        assert_eq!(p.prog_type, uapi::BPF_PROG_TYPE_XDP);
        assert_eq!(p.insn_cnt, 2);
        assert_eq!(p.insns, insns.as_ptr() as u64);
        assert_eq!(p.license, c"GPL".as_ptr() as u64);
        assert_eq!(p.expected_attach_type, uapi::BPF_XDP);
        assert_eq!(crate::bpf::c_name(&p.prog_name), "xdp_pass_progra");
        assert_eq!(
            (p.log_buf, p.log_size, p.log_level, p.fd_array),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn load_attr_bytes_after_the_last_field_are_zero() {
        let insns = [exit()];
        let raw = ProgLoadAttr::new(ProgramType::Xdp, &insns, c"GPL")
            .to_attr()
            .unwrap();
        // SAFETY: bpf_attr is plain data; its bytes are all initialized (zeroed, then fields).
        let bytes: [u8; ATTR_SIZE] = unsafe { std::mem::transmute(raw) };
        assert!(bytes[148..].iter().all(|&b| b == 0));
    }

    #[test]
    fn partial_func_info_records_are_refused() {
        let insns = [exit()];
        let info = [0u8; 12];
        let mut a = ProgLoadAttr::new(ProgramType::Xdp, &insns, c"GPL");
        a.func_info = &info[..10];
        a.func_info_rec_size = 8;
        assert_eq!(a.to_attr().err().map(|e| e.call), Some("BPF_PROG_LOAD"));
        a.func_info = &info[..8];
        let raw = a.to_attr().unwrap();
        // SAFETY: reading the PROG_LOAD member of a union built through it.
        let cnt = unsafe { raw.__bindgen_anon_3.func_info_cnt };
        assert_eq!(cnt, 1);
    }

    #[test]
    fn instructions_encode_like_the_kernel_macros() {
        let i = mov64_imm(0, 2);
        assert_eq!((i.code, i.dst_reg(), i.src_reg(), i.imm), (0xb7, 0, 0, 2));
        let e = exit();
        assert_eq!(e.code, 0x95);
        let c = call_helper(5);
        assert_eq!((c.code, c.imm), (0x85, 5));
        let m = mov64_reg(1, 6);
        assert_eq!((m.code, m.dst_reg(), m.src_reg()), (0xbf, 1, 6));
    }

    #[test]
    fn attach_targets_give_the_kernel_number() {
        assert_eq!(AttachTarget::Ifindex(7).raw(), 7);
        assert_eq!(AttachTarget::Implicit.raw(), 0);
    }
}
