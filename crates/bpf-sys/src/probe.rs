//! Cached feature probes: does the running kernel have this map type, program type, helper,
//! link type or command?
//!
//! Each probe asks the kernel (creates a map, loads a two-instruction program, makes a call
//! whose errno tells) once per process; the answer is cached. Answers are [`Probe`] values:
//! `Supported`, `Unsupported` with the feature's name and the version that brought it
//! ([`NotSupported`], "not supported is data"), or `Unknown` when the probe itself could not
//! decide (no privilege, no BTF to build a probe on...); `Unknown` is never reported as
//! absence.
//!
//! The probes follow libbpf's (`libbpf_probes.c`): the parameters each map type accepts, the
//! expected attach type each program type wants, and the errnos or verifier messages that tell
//! "this exists" from "this does not". Link types are probed by an attach whose failure mode
//! differs (`EBADF`/`ENODEV` against `EINVAL`), or, for XDP, by a real attach to the loopback
//! device of a private network namespace created in a short-lived thread.

use std::collections::HashMap;
use std::fmt;
use std::os::fd::AsFd;
use std::sync::{Mutex, OnceLock};

use crate::btf;
use crate::kernel::KernelVersion;
use crate::link::{self, LinkCreateAttr};
use crate::map::{self, MapCreateAttr, MapFd};
use crate::map_batch::BatchFlags;
use crate::prog::{self, AttachTarget, ProgLoadAttr};
use crate::uapi;
use crate::{AttachType, MapType, ProgramType, SysError};

/// `ENOTSUPP`, the kernel-internal errno some probes expect (524).
pub const ENOTSUPP: i32 = 524;

/// A kernel feature: its name and the Linux version that brought it (`None` when the version
/// is not recorded, as for helpers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Feature {
    /// What the feature is (`"ringbuf map"`, `"tcx link"`).
    pub name: String,
    /// The first upstream version with it.
    pub since: Option<KernelVersion>,
}

impl Feature {
    fn new(name: impl Into<String>, major: u32, minor: u32) -> Self {
        Feature {
            name: name.into(),
            since: Some(KernelVersion::new(major, minor, 0)),
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.since {
            Some(v) => write!(f, "{} (Linux {}.{})", self.name, v.major, v.minor),
            None => f.write_str(&self.name),
        }
    }
}

/// The running kernel lacks a feature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("{feature} is not supported by this kernel{}", running.map(|v| format!(" ({v})")).unwrap_or_default())]
pub struct NotSupported {
    /// The feature, with the version that brought it.
    pub feature: Feature,
    /// The running kernel's version, when it could be read.
    pub running: Option<KernelVersion>,
}

/// A probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The kernel has it.
    Supported,
    /// The kernel lacks it.
    Unsupported(NotSupported),
    /// The probe could not tell.
    Unknown {
        /// What was probed.
        feature: Feature,
        /// Why the probe could not tell.
        reason: String,
    },
}

impl Probe {
    /// Whether the feature is known to be there.
    pub fn is_supported(&self) -> bool {
        matches!(self, Probe::Supported)
    }

    /// `Ok` when supported, else the absence as an error (an unknown answer is not an absence:
    /// it is `Ok(false)`), for callers that fail on absence only.
    pub fn check(&self) -> Result<bool, NotSupported> {
        match self {
            Probe::Supported => Ok(true),
            Probe::Unsupported(e) => Err(e.clone()),
            Probe::Unknown { .. } => Ok(false),
        }
    }

    fn from_bool(present: bool, feature: Feature) -> Probe {
        if present {
            Probe::Supported
        } else {
            Probe::Unsupported(NotSupported {
                feature,
                running: KernelVersion::current().ok(),
            })
        }
    }

    fn unknown(feature: Feature, reason: impl fmt::Display) -> Probe {
        Probe::Unknown {
            feature,
            reason: reason.to_string(),
        }
    }
}

/// The link types [`link_type`] probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkKind {
    /// `BPF_LINK_CREATE` for XDP (Linux 5.9).
    Xdp,
    /// tcx links (Linux 6.6).
    Tcx,
    /// perf event links (`BPF_PERF_EVENT`, Linux 5.15).
    PerfEvent,
}

/// Other probed features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Misc {
    /// The kernel reports the log size it needed (`log_true_size`, Linux 6.4).
    LogTrueSize,
    /// The batch map commands (Linux 5.6).
    BatchOps,
    /// mmap-able arrays (`BPF_F_MMAPABLE`, Linux 5.5).
    MmapableArray,
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` on hash maps (Linux 5.14; queues and stacks have it
    /// since 4.20).
    HashLookupAndDelete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Map(MapType),
    Prog(ProgramType),
    Helper(ProgramType, u32),
    Link(LinkKind),
    Misc(Misc),
}

fn cached(key: Key, probe: impl FnOnce() -> Probe) -> Probe {
    static CACHE: OnceLock<Mutex<HashMap<Key, Probe>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return p.clone();
    }
    // Probe without the lock: two threads may probe the same key; both get the same answer.
    let p = probe();
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(p)
        .clone()
}

/// The feature a map type is, with its version (pure).
pub fn map_type_feature(t: MapType) -> Feature {
    use MapType as M;
    let (major, minor) = match t {
        M::Unspec => (0, 0),
        M::Hash | M::Array => (3, 19),
        M::ProgArray => (4, 2),
        M::PerfEventArray => (4, 3),
        M::PerCpuHash | M::PerCpuArray | M::StackTrace => (4, 6),
        M::CgroupArray => (4, 8),
        M::LruHash | M::LruPerCpuHash => (4, 10),
        M::LpmTrie => (4, 11),
        M::ArrayOfMaps | M::HashOfMaps => (4, 12),
        M::DevMap | M::SockMap => (4, 14),
        M::CpuMap => (4, 15),
        M::XskMap | M::SockHash => (4, 18),
        M::CgroupStorage | M::ReuseportSockArray => (4, 19),
        M::PerCpuCgroupStorage | M::Queue | M::Stack => (4, 20),
        M::SkStorage => (5, 2),
        M::DevMapHash => (5, 4),
        M::StructOps => (5, 6),
        M::RingBuf => (5, 8),
        M::InodeStorage => (5, 10),
        M::TaskStorage => (5, 11),
        M::BloomFilter => (5, 16),
        M::UserRingBuf => (6, 1),
        M::CgrpStorage => (6, 2),
        M::Arena => (6, 9),
    };
    Feature::new(format!("{} map", t.kernel_name()), major, minor)
}

/// The feature a program type is, with its version (pure).
pub fn program_type_feature(t: ProgramType) -> Feature {
    use ProgramType as P;
    let (major, minor) = match t {
        P::Unspec => (0, 0),
        P::SocketFilter => (3, 19),
        P::Kprobe | P::SchedCls | P::SchedAct => (4, 1),
        P::Tracepoint => (4, 7),
        P::Xdp => (4, 8),
        P::PerfEvent => (4, 9),
        P::CgroupSkb | P::CgroupSock | P::LwtIn | P::LwtOut | P::LwtXmit => (4, 10),
        P::SockOps => (4, 13),
        P::SkSkb => (4, 14),
        P::CgroupDevice => (4, 15),
        P::SkMsg | P::RawTracepoint | P::CgroupSockAddr => (4, 17),
        P::LwtSeg6local | P::LircMode2 => (4, 18),
        P::SkReuseport => (4, 19),
        P::FlowDissector => (4, 20),
        P::CgroupSysctl | P::RawTracepointWritable => (5, 2),
        P::CgroupSockopt => (5, 3),
        P::Tracing => (5, 5),
        P::StructOps | P::Ext => (5, 6),
        P::Lsm => (5, 7),
        P::SkLookup => (5, 9),
        P::Syscall => (5, 14),
        P::Netfilter => (6, 4),
    };
    Feature::new(format!("{} program", t.kernel_name()), major, minor)
}

/// The feature a link type is (pure).
pub fn link_feature(kind: LinkKind) -> Feature {
    match kind {
        LinkKind::Xdp => Feature::new("bpf_link for XDP", 5, 9),
        LinkKind::Tcx => Feature::new("tcx link", 6, 6),
        LinkKind::PerfEvent => Feature::new("perf_event link", 5, 15),
    }
}

/// The feature of a [`Misc`] probe (pure).
pub fn misc_feature(m: Misc) -> Feature {
    match m {
        Misc::LogTrueSize => Feature::new("log_true_size", 6, 4),
        Misc::BatchOps => Feature::new("batch map operations", 5, 6),
        Misc::MmapableArray => Feature::new("BPF_F_MMAPABLE array", 5, 5),
        Misc::HashLookupAndDelete => Feature::new("lookup-and-delete on hash maps", 5, 14),
    }
}

/// The parameters a map type's probe creates it with (pure): key size, value size, max
/// entries, flags, whether it needs the local-storage BTF, and the errno that means "present"
/// when creation is expected to fail. `None` for `Unspec`.
pub fn map_probe_params(t: MapType, page_size: u32) -> Option<MapProbeParams> {
    use MapType as M;
    let mut p = MapProbeParams {
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        map_flags: 0,
        local_storage_btf: false,
        vmlinux_value_type_id: 0,
        expect_errno: None,
    };
    match t {
        M::Unspec => return None,
        M::StackTrace => p.value_size = 8,
        M::LpmTrie => {
            (p.key_size, p.value_size) = (8, 8);
            p.map_flags = uapi::BPF_F_NO_PREALLOC;
        }
        M::CgroupStorage | M::PerCpuCgroupStorage => {
            // struct bpf_cgroup_storage_key { __u64 cgroup_inode_id; __u32 attach_type; }
            (p.key_size, p.value_size, p.max_entries) = (16, 8, 0);
        }
        M::Queue | M::Stack => p.key_size = 0,
        M::SkStorage | M::InodeStorage | M::TaskStorage | M::CgrpStorage => {
            (p.value_size, p.max_entries) = (8, 0);
            p.map_flags = uapi::BPF_F_NO_PREALLOC;
            p.local_storage_btf = true;
        }
        M::RingBuf | M::UserRingBuf => {
            (p.key_size, p.value_size, p.max_entries) = (0, 0, page_size);
        }
        M::StructOps => {
            // A bogus vmlinux type id: ENOTSUPP where struct_ops exists, EINVAL where not.
            p.vmlinux_value_type_id = 1;
            p.expect_errno = Some(ENOTSUPP);
        }
        M::BloomFilter => p.key_size = 0,
        M::Arena => {
            (p.key_size, p.value_size, p.max_entries) = (0, 0, 1);
            p.map_flags = uapi::BPF_F_MMAPABLE;
        }
        _ => {}
    }
    Some(p)
}

/// See [`map_probe_params`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(missing_docs, reason = "fields mirror MapCreateAttr")]
pub struct MapProbeParams {
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    /// Needs [`btf::local_storage_probe_btf`] with key type 1 and value type 3.
    pub local_storage_btf: bool,
    pub vmlinux_value_type_id: u32,
    /// Creation must fail with this errno for "present".
    pub expect_errno: Option<i32>,
}

/// Probes a map type: creates one with parameters that type accepts.
pub fn map_type(t: MapType) -> Probe {
    cached(Key::Map(t), || probe_map(t))
}

/// Whether the kernel has map type `t` (an unknown answer is `false`).
pub fn map_type_supported(t: MapType) -> bool {
    map_type(t).is_supported()
}

fn probe_map(t: MapType) -> Probe {
    let feature = map_type_feature(t);
    let page = rustix::param::page_size() as u32;
    let Some(p) = map_probe_params(t, page) else {
        return Probe::unknown(feature, "not a map type");
    };
    let inner = if matches!(t, MapType::ArrayOfMaps | MapType::HashOfMaps) {
        match map::create(&MapCreateAttr::new(MapType::Hash, 4, 4, 1)) {
            Ok(fd) => Some(fd),
            Err(e) => return Probe::unknown(feature, format!("inner map: {e}: {}", e.source)),
        }
    } else {
        None
    };
    let btf_fd = if p.local_storage_btf {
        match btf::load(&btf::local_storage_probe_btf(), None) {
            Ok(fd) => Some(fd),
            Err(e) => return Probe::unknown(feature, format!("needs BTF: {e}: {}", e.source)),
        }
    } else {
        None
    };
    let mut attr = MapCreateAttr::new(t, p.key_size, p.value_size, p.max_entries);
    attr.map_flags = p.map_flags;
    attr.inner_map_fd = inner.as_ref().map(AsFd::as_fd);
    attr.btf_vmlinux_value_type_id = p.vmlinux_value_type_id;
    if let Some(btf) = &btf_fd {
        attr.btf_fd = Some(btf.as_fd());
        (attr.btf_key_type_id, attr.btf_value_type_id) = (1, 3);
    }
    let result = map::create(&attr);
    match (p.expect_errno, result) {
        (None, Ok(_)) => Probe::Supported,
        (Some(want), Err(e)) if e.is_errno(want) => Probe::Supported,
        (_, Err(e)) if e.is_errno(libc::EINVAL) => Probe::from_bool(false, feature),
        (_, Err(e)) => Probe::unknown(feature, format!("{e}: {}", e.source)),
        (Some(_), Ok(_)) => Probe::unknown(feature, "creation succeeded where it should fail"),
    }
}

/// How a program type's probe loads it (pure): expected attach type, flags, attach BTF id, and
/// the errno and log text that mean "present" when loading is expected to fail.
fn prog_probe_params(t: ProgramType) -> ProgProbe {
    use ProgramType as P;
    let mut p = ProgProbe {
        attach: None,
        flags: 0,
        attach_btf_id: 0,
        expect: None,
    };
    match t {
        P::CgroupSockAddr => p.attach = Some(AttachType::CgroupInet4Connect),
        P::CgroupSockopt => p.attach = Some(AttachType::CgroupGetsockopt),
        P::SkLookup => p.attach = Some(AttachType::SkLookup),
        P::LircMode2 => p.attach = Some(AttachType::LircMode2),
        P::Netfilter => p.attach = Some(AttachType::Netfilter),
        P::Syscall => p.flags = uapi::BPF_F_SLEEPABLE,
        P::Tracing | P::Lsm => {
            p.attach = Some(if t == P::Tracing {
                AttachType::TraceFentry
            } else {
                AttachType::ModifyReturn
            });
            p.attach_btf_id = 1;
            p.expect = Some((libc::EINVAL, Some("attach_btf_id 1 is not a function")));
        }
        P::Ext => {
            p.attach_btf_id = 1;
            p.expect = Some((libc::EINVAL, Some("Cannot replace kernel functions")));
        }
        P::StructOps => p.expect = Some((ENOTSUPP, None)),
        _ => {}
    }
    p
}

#[derive(Debug, Clone, Copy)]
struct ProgProbe {
    attach: Option<AttachType>,
    flags: u32,
    attach_btf_id: u32,
    expect: Option<(i32, Option<&'static str>)>,
}

/// Loads `insns` as a program of type `t` the way its probe does. Returns the load result and
/// the verifier log.
fn probe_load(
    t: ProgramType,
    insns: &[uapi::bpf_insn],
    p: &ProgProbe,
) -> (Result<std::os::fd::OwnedFd, SysError>, String) {
    let mut attr = ProgLoadAttr::new(t, insns, c"GPL");
    attr.expected_attach_type = p.attach;
    attr.prog_flags = p.flags;
    attr.attach_btf_id = p.attach_btf_id;
    if t == ProgramType::Kprobe {
        attr.kern_version = KernelVersion::current().map_or(0, |v| v.code());
    }
    let mut buf = vec![0u8; 4096];
    let mut log = crate::bpf::LogBuf::new(&mut buf, 1);
    let r = prog::load(&attr, Some(&mut log));
    let text = log.to_string_lossy();
    (r, text)
}

/// Probes a program type: loads `r0 = 0; exit` with what that type needs.
pub fn program_type(t: ProgramType) -> Probe {
    cached(Key::Prog(t), || {
        let feature = program_type_feature(t);
        if t == ProgramType::Unspec {
            return Probe::unknown(feature, "not a program type");
        }
        let p = prog_probe_params(t);
        let insns = [prog::mov64_imm(0, 0), prog::exit()];
        let (r, log) = probe_load(t, &insns, &p);
        match (p.expect, r) {
            (None, Ok(_)) => Probe::Supported,
            (Some((errno, msg)), Err(e))
                if e.is_errno(errno) && msg.is_none_or(|m| log.contains(m)) =>
            {
                Probe::Supported
            }
            (_, Err(e)) if e.is_errno(libc::EINVAL) || e.is_errno(ENOTSUPP) => {
                Probe::from_bool(false, feature)
            }
            // EPERM although a tracepoint program (which needs the same CAP_BPF and
            // CAP_PERFMON) loads: the kernel refuses the type itself, as kernels without BPF
            // trampolines do for tracing, ext and LSM programs.
            (_, Err(e))
                if e.is_errno(libc::EPERM)
                    && t != ProgramType::Tracepoint
                    && program_type(ProgramType::Tracepoint).is_supported() =>
            {
                Probe::from_bool(false, feature)
            }
            (_, Err(e)) => Probe::unknown(feature, format!("{e}: {}", e.source)),
            (Some(_), Ok(_)) => Probe::unknown(feature, "load succeeded where it should fail"),
        }
    })
}

/// Whether the kernel has program type `t` (an unknown answer is `false`).
pub fn program_type_supported(t: ProgramType) -> bool {
    program_type(t).is_supported()
}

/// Probes whether programs of type `t` may call helper `helper_id` (`BPF_FUNC_*`): loads
/// `call helper; exit` and reads the verifier's log ("invalid func", "unknown func", "program
/// of this type cannot use helper" mean no).
/// Tracing, ext, LSM and struct_ops programs cannot be loaded without a real BTF target: for
/// them the answer is `Unknown`.
pub fn helper(t: ProgramType, helper_id: u32) -> Probe {
    cached(Key::Helper(t, helper_id), || {
        let feature = Feature {
            name: format!("helper {helper_id} in {} programs", t.kernel_name()),
            since: None,
        };
        if matches!(
            t,
            ProgramType::Tracing | ProgramType::Ext | ProgramType::Lsm | ProgramType::StructOps
        ) {
            return Probe::unknown(feature, "program type needs a BTF attach target to load");
        }
        match program_type(t) {
            Probe::Supported => {}
            Probe::Unsupported(e) => return Probe::from_bool(false, e.feature),
            Probe::Unknown { reason, .. } => return Probe::unknown(feature, reason),
        }
        let insns = [prog::call_helper(helper_id), prog::exit()];
        let (r, log) = probe_load(t, &insns, &prog_probe_params(t));
        match r {
            Err(_) if HELPER_ABSENT.iter().any(|m| log.contains(m)) => {
                Probe::from_bool(false, feature)
            }
            // Loaded, or refused for another reason (argument types): the helper exists.
            _ => Probe::Supported,
        }
    })
}

/// The verifier's words for "no such helper here": an id it does not know, a helper the type
/// may not call (before 6.x: "unknown func", since: "program of this type cannot use helper").
const HELPER_ABSENT: [&str; 3] = [
    "invalid func ",
    "unknown func ",
    "program of this type cannot use helper ",
];

/// Whether programs of type `t` may call helper `helper_id` (an unknown answer is `false`).
pub fn helper_supported(t: ProgramType, helper_id: u32) -> bool {
    helper(t, helper_id).is_supported()
}

/// Probes a link type.
pub fn link_type(kind: LinkKind) -> Probe {
    cached(Key::Link(kind), || {
        let feature = link_feature(kind);
        match kind {
            LinkKind::Xdp => probe_xdp_link(feature),
            LinkKind::Tcx => {
                // A missing ifindex: tcx answers ENODEV; kernels without tcx EINVAL.
                probe_link_errno(
                    feature,
                    ProgramType::SchedCls,
                    AttachType::TcxIngress,
                    |_| (AttachTarget::Ifindex(0x7fff_fff0), libc::ENODEV),
                )
            }
            LinkKind::PerfEvent => {
                // A target that is not a perf event (the program itself): EBADF where perf
                // links exist, EINVAL where the attach type is unknown.
                probe_link_errno(
                    feature,
                    ProgramType::Tracepoint,
                    AttachType::PerfEvent,
                    |prog| (AttachTarget::Fd(prog), libc::EBADF),
                )
            }
        }
    })
}

/// Whether the kernel has this link type (an unknown answer is `false`).
pub fn link_type_supported(kind: LinkKind) -> bool {
    link_type(kind).is_supported()
}

fn probe_link_errno(
    feature: Feature,
    prog_type: ProgramType,
    attach_type: AttachType,
    target: impl for<'a> FnOnce(std::os::fd::BorrowedFd<'a>) -> (AttachTarget<'a>, i32),
) -> Probe {
    let insns = [prog::mov64_imm(0, 0), prog::exit()];
    let mut attr = ProgLoadAttr::new(prog_type, &insns, c"GPL");
    attr.expected_attach_type = Some(attach_type);
    let prog = match prog::load(&attr, None) {
        Ok(fd) => fd,
        // Kernels that do not know the attach type may refuse it at load already.
        Err(e) if e.is_errno(libc::EINVAL) => return Probe::from_bool(false, feature),
        Err(e) => return Probe::unknown(feature, format!("{e}: {}", e.source)),
    };
    let (target, want) = target(prog.as_fd());
    match link::create(&LinkCreateAttr::new(prog.as_fd(), target, attach_type)) {
        Err(e) if e.is_errno(want) => Probe::Supported,
        Err(e) if e.is_errno(libc::EINVAL) => Probe::from_bool(false, feature),
        Err(e) => Probe::unknown(feature, format!("{e}: {}", e.source)),
        Ok(_) => Probe::Supported,
    }
}

/// XDP links fail with `EINVAL` both for a missing device and on kernels without them, so this
/// probe attaches for real: to `lo` of a fresh network namespace that only a short-lived thread
/// lives in (the namespace goes away with the thread). Nothing of the caller's namespace is
/// touched.
fn probe_xdp_link(feature: Feature) -> Probe {
    let fallback = feature.clone();
    let run = move || -> Probe {
        // SAFETY: unshare takes no pointers; CLONE_NEWNET moves only this thread (a thread of
        // our own, which ends right after) into a new network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let e = std::io::Error::last_os_error();
            return Probe::unknown(feature, format!("unshare(CLONE_NEWNET): {e}"));
        }
        let insns = [prog::mov64_imm(0, 2), prog::exit()];
        let mut attr = ProgLoadAttr::new(ProgramType::Xdp, &insns, c"GPL");
        attr.expected_attach_type = Some(AttachType::Xdp);
        let prog = match prog::load(&attr, None) {
            Ok(fd) => fd,
            Err(e) => return Probe::unknown(feature, format!("{e}: {}", e.source)),
        };
        // In a new namespace, `lo` is ifindex 1.
        let mut link = LinkCreateAttr::new(prog.as_fd(), AttachTarget::Ifindex(1), AttachType::Xdp);
        link.flags = uapi::XDP_FLAGS_SKB_MODE;
        match link::create(&link) {
            Ok(_) => Probe::Supported,
            Err(e) if e.is_errno(libc::EINVAL) => Probe::from_bool(false, feature),
            Err(e) => Probe::unknown(feature, format!("{e}: {}", e.source)),
        }
    };
    std::thread::scope(|s| {
        s.spawn(run)
            .join()
            .unwrap_or_else(|_| Probe::unknown(fallback, "probe thread panicked"))
    })
}

/// Probes a [`Misc`] feature.
pub fn misc(m: Misc) -> Probe {
    cached(Key::Misc(m), || {
        let feature = misc_feature(m);
        match m {
            Misc::LogTrueSize => {
                let insns = [prog::mov64_imm(0, 0), prog::exit()];
                let attr = ProgLoadAttr::new(ProgramType::SocketFilter, &insns, c"GPL");
                let mut buf = vec![0u8; 1024];
                let mut log = crate::bpf::LogBuf::new(&mut buf, 1);
                match prog::load(&attr, Some(&mut log)) {
                    Ok(_) => Probe::from_bool(log.true_size().is_some(), feature),
                    Err(e) => Probe::unknown(feature, format!("{e}: {}", e.source)),
                }
            }
            Misc::BatchOps => {
                let map = match MapFd::create(&MapCreateAttr::new(MapType::Hash, 4, 4, 1)) {
                    Ok(m) => m,
                    Err(e) => return Probe::unknown(feature, format!("{e}: {}", e.source)),
                };
                let (mut out, mut k, mut v) = ([0u8; 4], [0u8; 4], [0u8; 4]);
                match map.lookup_batch(None, &mut out, &mut k, &mut v, 1, BatchFlags::default()) {
                    Ok(_) => Probe::Supported,
                    Err(e) if e.errno() == Some(libc::EINVAL) => Probe::from_bool(false, feature),
                    Err(e) => Probe::unknown(feature, format!("{e}: {}", e.source.source)),
                }
            }
            Misc::HashLookupAndDelete => {
                let map = match MapFd::create(&MapCreateAttr::new(MapType::Hash, 4, 4, 1)) {
                    Ok(m) => m,
                    Err(e) => return Probe::unknown(feature, format!("{e}: {}", e.source)),
                };
                // A missing key: ENOENT where hash maps support the command, ENOTSUPP (or
                // EINVAL) where only queues and stacks do.
                match map.lookup_and_delete(&[0; 4], &mut [0; 4], 0) {
                    Err(e) if e.is_errno(libc::ENOENT) => Probe::Supported,
                    Err(e) if e.is_errno(ENOTSUPP) || e.is_errno(libc::EINVAL) => {
                        Probe::from_bool(false, feature)
                    }
                    Err(e) => Probe::unknown(feature, format!("{e}: {}", e.source)),
                    Ok(()) => Probe::unknown(feature, "an empty map returned an element"),
                }
            }
            Misc::MmapableArray => {
                let mut attr = MapCreateAttr::new(MapType::Array, 4, 4, 1);
                attr.map_flags = uapi::BPF_F_MMAPABLE;
                match map::create(&attr) {
                    Ok(_) => Probe::Supported,
                    Err(e) if e.is_errno(libc::EINVAL) => Probe::from_bool(false, feature),
                    Err(e) => Probe::unknown(feature, format!("{e}: {}", e.source)),
                }
            }
        }
    })
}

/// Whether the kernel reports `log_true_size` (Linux 6.4).
pub fn log_true_size_supported() -> bool {
    misc(Misc::LogTrueSize).is_supported()
}

/// Whether the kernel has the batch map commands (Linux 5.6).
pub fn batch_ops_supported() -> bool {
    misc(Misc::BatchOps).is_supported()
}

/// Whether arrays may be created with `BPF_F_MMAPABLE` (Linux 5.5).
pub fn mmapable_supported() -> bool {
    misc(Misc::MmapableArray).is_supported()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_map_and_program_type_has_a_version() {
        for &t in MapType::ALL {
            let f = map_type_feature(t);
            assert!(f.name.ends_with(" map"), "{f:?}");
            if t != MapType::Unspec {
                assert!(f.since.unwrap() >= KernelVersion::new(3, 19, 0), "{f:?}");
            }
        }
        for &t in ProgramType::ALL {
            let f = program_type_feature(t);
            if t != ProgramType::Unspec {
                assert!(f.since.unwrap() >= KernelVersion::new(3, 19, 0), "{f:?}");
            }
        }
        assert_eq!(
            map_type_feature(MapType::RingBuf).since,
            Some(KernelVersion::new(5, 8, 0))
        );
        assert_eq!(
            map_type_feature(MapType::Arena).since,
            Some(KernelVersion::new(6, 9, 0))
        );
        assert_eq!(
            link_feature(LinkKind::Tcx).since,
            Some(KernelVersion::new(6, 6, 0))
        );
        assert_eq!(
            misc_feature(Misc::LogTrueSize).since,
            Some(KernelVersion::new(6, 4, 0))
        );
    }

    #[test]
    fn map_probe_parameters_are_ones_the_kernel_accepts() {
        let page = 4096;
        let lpm = map_probe_params(MapType::LpmTrie, page).unwrap();
        assert!(lpm.key_size >= 5 && lpm.map_flags & uapi::BPF_F_NO_PREALLOC != 0);
        let rb = map_probe_params(MapType::RingBuf, page).unwrap();
        assert_eq!((rb.key_size, rb.value_size, rb.max_entries), (0, 0, page));
        assert!(rb.max_entries.is_power_of_two());
        for t in [MapType::Queue, MapType::Stack, MapType::BloomFilter] {
            assert_eq!(map_probe_params(t, page).unwrap().key_size, 0, "{t:?}");
        }
        let st = map_probe_params(MapType::TaskStorage, page).unwrap();
        assert!(st.local_storage_btf && st.max_entries == 0);
        assert_eq!(
            map_probe_params(MapType::StackTrace, page)
                .unwrap()
                .value_size
                % 8,
            0
        );
        assert_eq!(
            map_probe_params(MapType::StructOps, page)
                .unwrap()
                .expect_errno,
            Some(524)
        );
        assert!(map_probe_params(MapType::Unspec, page).is_none());
    }

    #[test]
    fn program_probes_set_what_each_type_checks_at_load() {
        assert_eq!(
            prog_probe_params(ProgramType::CgroupSockAddr).attach,
            Some(AttachType::CgroupInet4Connect)
        );
        assert_eq!(
            prog_probe_params(ProgramType::Syscall).flags,
            uapi::BPF_F_SLEEPABLE
        );
        assert_eq!(prog_probe_params(ProgramType::Lsm).attach_btf_id, 1);
        assert!(prog_probe_params(ProgramType::Xdp).expect.is_none());
    }

    #[test]
    fn not_supported_names_feature_and_version() {
        let e = NotSupported {
            feature: map_type_feature(MapType::Arena),
            running: None,
        };
        assert_eq!(
            e.to_string(),
            "arena map (Linux 6.9) is not supported by this kernel"
        );
        let e = NotSupported {
            feature: link_feature(LinkKind::Tcx),
            running: Some(KernelVersion::new(6, 1, 0)),
        };
        assert_eq!(
            e.to_string(),
            "tcx link (Linux 6.6) is not supported by this kernel (6.1.0)"
        );
    }

    #[test]
    fn unknown_is_not_absence() {
        let p = Probe::unknown(misc_feature(Misc::BatchOps), "no privilege");
        assert!(!p.is_supported());
        assert_eq!(p.check(), Ok(false));
    }
}
