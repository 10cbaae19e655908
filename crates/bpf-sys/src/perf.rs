//! `perf_event_open(2)` and its ioctls.
//!
//! Three kinds of perf events matter to BPF:
//! - the `PERF_COUNT_SW_BPF_OUTPUT` software event, one per CPU, whose mmap'd ring
//!   ([`crate::mmap::PerfRing`]) receives what `bpf_perf_event_output()` writes once its fd is
//!   stored in a perf event array map ([`bpf_output_attr`], [`open_bpf_output`]);
//! - a tracepoint event, to which a tracepoint program is attached with [`set_bpf`]
//!   ([`tracepoint_attr`], [`open_tracepoint`]);
//! - a kprobe or uprobe event of the dynamic `kprobe`/`uprobe` PMU (kernel 4.17), which needs no
//!   write to tracefs ([`open_probe`]).
//!
//! Every fd is opened with `PERF_FLAG_FD_CLOEXEC` and returned as an [`OwnedFd`].

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use crate::error::SysError;
use crate::uapi::{self, perf_event_attr};

/// A perf event setup that failed before or during `perf_event_open`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PerfError {
    /// A sysfs file of a dynamic PMU could not be read: the kernel lacks the PMU
    /// (`CONFIG_KPROBE_EVENTS`/`CONFIG_UPROBE_EVENTS`, or a kernel before 4.17).
    #[error("perf pmu {pmu} is not available: cannot read {path:?}")]
    PmuUnavailable {
        /// The PMU (`kprobe`, `uprobe`).
        pmu: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A sysfs file of a dynamic PMU does not hold what it should.
    #[error("cannot parse {path:?}: {content:?}")]
    PmuFormat {
        /// The file.
        path: PathBuf,
        /// What it holds.
        content: String,
    },
    /// The probe's symbol or path contains a NUL byte.
    #[error("probe target {target:?} contains a nul byte")]
    NulInTarget {
        /// The symbol or path.
        target: String,
    },
    /// The system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
}

/// When the kernel wakes up a reader of a perf ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// After this many records (`wakeup_events`; 0 is treated as 1 by the kernel).
    Events(u32),
    /// When at least this many bytes are in the ring (`wakeup_watermark`, `watermark = 1`).
    Watermark(u32),
}

/// The `attr.size` the kernel is told: this crate's `perf_event_attr` (older kernels accept a
/// larger struct as long as the fields they do not know are zero).
const ATTR_SIZE: u32 = std::mem::size_of::<perf_event_attr>() as u32;

/// `PERF_FLAG_FD_CLOEXEC`, always passed.
const FLAG_CLOEXEC: u32 = uapi::PERF_FLAG_FD_CLOEXEC;

/// Opens a perf event: `perf_event_open(attr, pid, cpu, group_fd, flags | PERF_FLAG_FD_CLOEXEC)`.
///
/// `pid` -1 and `cpu` >= 0 count every process on one CPU; `pid` >= 0 and `cpu` -1 follow one
/// process on every CPU. `attr.size` is set to this crate's struct size whatever the caller put
/// there. A pointer the attr carries (`config1` of a probe event) is read by the kernel during the
/// call; it must point to a NUL-terminated string then, or the call fails with `EFAULT`.
pub fn perf_event_open(
    attr: &perf_event_attr,
    pid: i32,
    cpu: i32,
    group_fd: Option<BorrowedFd<'_>>,
    flags: u32,
) -> Result<OwnedFd, SysError> {
    let mut attr = *attr;
    attr.size = ATTR_SIZE;
    let group = group_fd.map_or(-1, |fd| fd.as_raw_fd());
    // SAFETY: `attr` is a valid, initialised `perf_event_attr` that lives across the call, and
    // `attr.size` says exactly how many bytes the kernel may read from it. The other arguments
    // are plain integers; `group` is either -1 or an fd borrowed for the duration of the call.
    // Pointers inside the attr are only read by the kernel, which checks them (EFAULT).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const perf_event_attr,
            libc::c_long::from(pid),
            libc::c_long::from(cpu),
            libc::c_long::from(group),
            libc::c_ulong::from(flags | FLAG_CLOEXEC),
        )
    };
    if ret < 0 {
        return Err(SysError::last("perf_event_open"));
    }
    let fd = i32::try_from(ret)
        .map_err(|_| SysError::new("perf_event_open", io::Error::other("fd out of range")))?;
    // SAFETY: the kernel just returned `fd` as a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The attr of a `PERF_COUNT_SW_BPF_OUTPUT` software event with `PERF_SAMPLE_RAW` samples: what a
/// perf event array slot needs so that `bpf_perf_event_output()` writes into its ring.
#[doc(alias = "PERF_COUNT_SW_BPF_OUTPUT")]
pub fn bpf_output_attr(wakeup: Wakeup) -> perf_event_attr {
    let mut attr = perf_event_attr {
        type_: uapi::PERF_TYPE_SOFTWARE,
        size: ATTR_SIZE,
        config: u64::from(uapi::PERF_COUNT_SW_BPF_OUTPUT),
        sample_type: u64::from(uapi::PERF_SAMPLE_RAW),
        ..Default::default()
    };
    attr.__bindgen_anon_1.sample_period = 1;
    match wakeup {
        Wakeup::Events(n) => attr.__bindgen_anon_2.wakeup_events = n,
        Wakeup::Watermark(bytes) => {
            attr.set_watermark(1);
            attr.__bindgen_anon_2.wakeup_watermark = bytes;
        }
    }
    attr
}

/// Opens a `PERF_COUNT_SW_BPF_OUTPUT` event on `cpu` for every process (enabled at once).
pub fn open_bpf_output(cpu: u32, wakeup: Wakeup) -> Result<OwnedFd, SysError> {
    let cpu = i32::try_from(cpu).map_err(|_| {
        SysError::new(
            "perf_event_open",
            io::Error::from_raw_os_error(libc::EINVAL),
        )
    })?;
    perf_event_open(&bpf_output_attr(wakeup), -1, cpu, None, 0)
}

/// The attr of a tracepoint event, by its tracefs id (`events/<group>/<name>/id`).
#[doc(alias = "PERF_TYPE_TRACEPOINT")]
pub fn tracepoint_attr(id: u64) -> perf_event_attr {
    let mut attr = perf_event_attr {
        type_: uapi::PERF_TYPE_TRACEPOINT,
        size: ATTR_SIZE,
        config: id,
        sample_type: u64::from(uapi::PERF_SAMPLE_RAW),
        ..Default::default()
    };
    attr.__bindgen_anon_1.sample_period = 1;
    attr.__bindgen_anon_2.wakeup_events = 1;
    attr
}

/// Opens a tracepoint event by tracefs id, for every process on CPU 0 (a BPF program attached
/// to it with [`set_bpf`] runs on every CPU).
pub fn open_tracepoint(id: u64) -> Result<OwnedFd, SysError> {
    perf_event_open(&tracepoint_attr(id), -1, 0, None, 0)
}

/// The kind of a dynamic probe PMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// The `kprobe` PMU: a kernel function (kernel 4.17).
    Kprobe,
    /// The `uprobe` PMU: an offset in an executable file (kernel 4.17).
    Uprobe,
}

impl ProbeKind {
    /// The PMU's name under `/sys/bus/event_source/devices`.
    pub fn pmu_name(self) -> &'static str {
        match self {
            ProbeKind::Kprobe => "kprobe",
            ProbeKind::Uprobe => "uprobe",
        }
    }

    fn dir(self) -> PathBuf {
        PathBuf::from("/sys/bus/event_source/devices").join(self.pmu_name())
    }

    /// The PMU's dynamic perf type, from `/sys/bus/event_source/devices/<pmu>/type`.
    pub fn pmu_type(self) -> Result<u32, PerfError> {
        let path = self.dir().join("type");
        let text = read_pmu_file(self, &path)?;
        parse_pmu_type(&text).ok_or(PerfError::PmuFormat {
            path,
            content: text,
        })
    }

    /// The bit of `config` that makes a return probe, from
    /// `/sys/bus/event_source/devices/<pmu>/format/retprobe` (`config:0`).
    pub fn retprobe_bit(self) -> Result<u32, PerfError> {
        let path = self.dir().join("format/retprobe");
        let text = read_pmu_file(self, &path)?;
        parse_retprobe_format(&text).ok_or(PerfError::PmuFormat {
            path,
            content: text,
        })
    }
}

fn read_pmu_file(kind: ProbeKind, path: &std::path::Path) -> Result<String, PerfError> {
    std::fs::read_to_string(path).map_err(|source| PerfError::PmuUnavailable {
        pmu: kind.pmu_name(),
        path: path.to_owned(),
        source,
    })
}

/// Parses a PMU `type` file (`8\n`).
pub fn parse_pmu_type(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

/// Parses a PMU format file for a one-bit field in `config` (`config:0\n`).
pub fn parse_retprobe_format(text: &str) -> Option<u32> {
    let bit: u32 = text.trim().strip_prefix("config:")?.parse().ok()?;
    (bit < 64).then_some(bit)
}

/// A kprobe or uprobe to open through its PMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec<'a> {
    /// Kprobe or uprobe.
    pub kind: ProbeKind,
    /// A kprobe's kernel symbol, or a uprobe's executable path.
    pub target: &'a str,
    /// A kprobe's offset from the symbol, or a uprobe's file offset.
    pub offset: u64,
    /// A return probe (kretprobe, uretprobe).
    pub retprobe: bool,
    /// The process to follow (uprobes; -1 for all).
    pub pid: i32,
}

/// Builds the attr of a probe event. The attr points into `name` (`config1`): keep `name`
/// alive and unmoved until the attr has been passed to [`perf_event_open`].
fn probe_attr(
    spec: &ProbeSpec<'_>,
    pmu_type: u32,
    ret_bit: Option<u32>,
    name: &CString,
) -> perf_event_attr {
    let mut attr = perf_event_attr {
        type_: pmu_type,
        size: ATTR_SIZE,
        ..Default::default()
    };
    if let Some(bit) = ret_bit {
        attr.config = 1u64 << bit;
    }
    attr.sample_type = u64::from(uapi::PERF_SAMPLE_RAW);
    attr.__bindgen_anon_1.sample_period = 1;
    attr.__bindgen_anon_2.wakeup_events = 1;
    // config1: kprobe_func / uprobe_path, a user pointer to a NUL-terminated string.
    attr.__bindgen_anon_3.config1 = name.as_ptr() as u64;
    // config2: probe_offset, the offset from the symbol or into the file.
    attr.__bindgen_anon_4.config2 = spec.offset;
    attr
}

/// Opens a kprobe or uprobe through the dynamic PMU (no tracefs write; kernel 4.17), on CPU 0
/// for `spec.pid` (a BPF program attached to it with [`set_bpf`] runs on every CPU).
pub fn open_probe(spec: &ProbeSpec<'_>) -> Result<OwnedFd, PerfError> {
    let pmu_type = spec.kind.pmu_type()?;
    let ret_bit = if spec.retprobe {
        Some(spec.kind.retprobe_bit()?)
    } else {
        None
    };
    let name = CString::new(spec.target).map_err(|_| PerfError::NulInTarget {
        target: spec.target.to_owned(),
    })?;
    let attr = probe_attr(spec, pmu_type, ret_bit, &name);
    let cpu = if spec.pid == -1 { 0 } else { -1 };
    let fd = perf_event_open(&attr, spec.pid, cpu, None, 0);
    // `name` must outlive the call: the kernel reads the string through `config1`.
    drop(name);
    Ok(fd?)
}

/// Builds an ioctl request number as `<asm-generic/ioctl.h>` does.
const fn ioc(dir: u64, ty: u8, nr: u8, size: u64) -> u64 {
    #[cfg(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc64"
    ))]
    const DIR_SHIFT: u64 = 29;
    #[cfg(not(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc64"
    )))]
    const DIR_SHIFT: u64 = 30;
    (dir << DIR_SHIFT) | (size << 16) | ((ty as u64) << 8) | nr as u64
}

#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc64"
))]
const IOC_WRITE: u64 = 4;
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc64"
)))]
const IOC_WRITE: u64 = 1;

/// `PERF_EVENT_IOC_ENABLE`: `_IO('$', 0)`.
pub const PERF_EVENT_IOC_ENABLE: u64 = ioc(0, b'$', 0, 0);
/// `PERF_EVENT_IOC_DISABLE`: `_IO('$', 1)`.
pub const PERF_EVENT_IOC_DISABLE: u64 = ioc(0, b'$', 1, 0);
/// `PERF_EVENT_IOC_SET_BPF`: `_IOW('$', 8, __u32)`.
pub const PERF_EVENT_IOC_SET_BPF: u64 = ioc(IOC_WRITE, b'$', 8, 4);

/// An ioctl on a perf event fd whose argument is an integer.
fn perf_ioctl(
    fd: BorrowedFd<'_>,
    request: u64,
    arg: libc::c_int,
    call: &'static str,
) -> Result<(), SysError> {
    // SAFETY: `fd` is a live fd borrowed for the call; the three perf requests used here take an
    // integer argument by value (ENABLE/DISABLE ignore it, SET_BPF reads it as the program fd),
    // so the kernel dereferences no pointer from us. The request value fits the platform's
    // request type (it is a 32-bit number), hence the cast.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    if ret < 0 {
        return Err(SysError::last(call));
    }
    Ok(())
}

/// `PERF_EVENT_IOC_ENABLE`: starts counting or sampling.
#[doc(alias = "PERF_EVENT_IOC_ENABLE")]
pub fn enable(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    perf_ioctl(fd, PERF_EVENT_IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")
}

/// `PERF_EVENT_IOC_DISABLE`: stops counting or sampling.
#[doc(alias = "PERF_EVENT_IOC_DISABLE")]
pub fn disable(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    perf_ioctl(fd, PERF_EVENT_IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")
}

/// `PERF_EVENT_IOC_SET_BPF`: attaches a BPF program (kprobe, tracepoint, perf_event type) to a
/// perf event. The attachment lasts as long as the perf event fd.
#[doc(alias = "PERF_EVENT_IOC_SET_BPF")]
pub fn set_bpf(fd: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<(), SysError> {
    perf_ioctl(
        fd,
        PERF_EVENT_IOC_SET_BPF,
        prog.as_raw_fd(),
        "PERF_EVENT_IOC_SET_BPF",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        assert_eq!(PERF_EVENT_IOC_ENABLE, 0x2400);
        assert_eq!(PERF_EVENT_IOC_DISABLE, 0x2401);
        assert_eq!(PERF_EVENT_IOC_SET_BPF, 0x4004_2408);
    }

    #[test]
    fn bpf_output_attr_fields() {
        let a = bpf_output_attr(Wakeup::Events(1));
        assert_eq!(a.type_, uapi::PERF_TYPE_SOFTWARE);
        assert_eq!(a.config, u64::from(uapi::PERF_COUNT_SW_BPF_OUTPUT));
        assert_eq!(a.sample_type, u64::from(uapi::PERF_SAMPLE_RAW));
        assert_eq!(a.watermark(), 0);
        // SAFETY: reading a plain integer field of a union that was initialised.
        assert_eq!(unsafe { a.__bindgen_anon_2.wakeup_events }, 1);
        let w = bpf_output_attr(Wakeup::Watermark(4096));
        assert_eq!(w.watermark(), 1);
        // SAFETY: as above.
        assert_eq!(unsafe { w.__bindgen_anon_2.wakeup_watermark }, 4096);
        assert_eq!(w.size, ATTR_SIZE);
    }

    #[test]
    fn pmu_files_parse() {
        assert_eq!(parse_pmu_type("8\n"), Some(8));
        assert_eq!(parse_pmu_type("x"), None);
        assert_eq!(parse_retprobe_format("config:0\n"), Some(0));
        assert_eq!(parse_retprobe_format("config:63"), Some(63));
        assert_eq!(parse_retprobe_format("config:64"), None);
        assert_eq!(parse_retprobe_format("config1:0"), None);
    }

    #[test]
    fn probe_attr_points_at_the_name() {
        let name = CString::new("do_sys_open").unwrap();
        let spec = ProbeSpec {
            kind: ProbeKind::Kprobe,
            target: "do_sys_open",
            offset: 4,
            retprobe: true,
            pid: -1,
        };
        let a = probe_attr(&spec, 6, Some(0), &name);
        assert_eq!(a.type_, 6);
        assert_eq!(a.config, 1);
        // SAFETY: reading plain integer fields of unions that were initialised.
        unsafe {
            assert_eq!(a.__bindgen_anon_3.config1, name.as_ptr() as u64);
            assert_eq!(a.__bindgen_anon_4.config2, 4);
        }
    }

    #[test]
    fn a_nul_in_the_target_is_an_error() {
        let spec = ProbeSpec {
            kind: ProbeKind::Uprobe,
            target: "a\0b",
            offset: 0,
            retprobe: false,
            pid: -1,
        };
        match open_probe(&spec) {
            Err(PerfError::NulInTarget { .. }) | Err(PerfError::PmuUnavailable { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
