//! Links: `BPF_LINK_CREATE`, `BPF_LINK_UPDATE`, `BPF_LINK_DETACH`, and
//! `BPF_RAW_TRACEPOINT_OPEN` (which also returns a link).
//!
//! A link fd keeps its attachment alive: closing the last fd (and unpinning) detaches it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::bpf::{ptr_u64, str_cstring, sys_bpf, sys_bpf_fd, Cmd, ATTR_SIZE};
use crate::map::{fd_u32, raw_fd};
use crate::prog::AttachTarget;
use crate::uapi::{self, bpf_attr};
use crate::{AttachType, SysError};

/// Where a tcx or netkit program goes relative to the others (`BPF_F_BEFORE`/`BPF_F_AFTER`
/// with `relative_fd` or, with `BPF_F_ID`, `relative_id`).
#[derive(Debug, Clone, Copy)]
pub enum Relative<'a> {
    /// No anchor: the position flags alone decide (first or last).
    None,
    /// Relative to the program or link with this fd.
    Fd(BorrowedFd<'a>),
    /// Relative to the program or link with this id (set `BPF_F_ID` in the flags).
    Id(u32),
}

impl Relative<'_> {
    fn raw(&self) -> u32 {
        match self {
            Relative::None => 0,
            Relative::Fd(fd) => fd.as_raw_fd() as u32,
            Relative::Id(id) => *id,
        }
    }
}

/// The type-specific part of `BPF_LINK_CREATE`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum LinkExtra<'a> {
    /// Nothing more (XDP, cgroup, netns, sk_lookup, iterators without arguments...).
    None,
    /// A tracing or ext program's target (`target_btf_id`).
    TargetBtfId(u32),
    /// A perf event link (`BPF_PERF_EVENT`, Linux 5.15): the `bpf_cookie` the program reads
    /// with `bpf_get_attach_cookie`.
    PerfEvent {
        /// The cookie.
        bpf_cookie: u64,
    },
    /// A fentry/fexit/fmod_ret/LSM link with a cookie (Linux 6.0).
    Tracing {
        /// The target's BTF id.
        target_btf_id: u32,
        /// The cookie.
        cookie: u64,
    },
    /// A tcx link (`BPF_TCX_INGRESS`/`EGRESS`, Linux 6.6).
    Tcx {
        /// The anchor for `BPF_F_BEFORE`/`BPF_F_AFTER`.
        relative: Relative<'a>,
        /// Fail with `ESTALE` unless the hook's revision is this one (0: do not check).
        expected_revision: u64,
    },
    /// A netkit link (`BPF_NETKIT_PRIMARY`/`PEER`, Linux 6.7).
    Netkit {
        /// The anchor for `BPF_F_BEFORE`/`BPF_F_AFTER`.
        relative: Relative<'a>,
        /// Fail with `ESTALE` unless the hook's revision is this one (0: do not check).
        expected_revision: u64,
    },
}

/// What `BPF_LINK_CREATE` needs.
#[derive(Debug, Clone, Copy)]
pub struct LinkCreateAttr<'a> {
    /// The program to attach.
    pub prog: BorrowedFd<'a>,
    /// The target: an fd (cgroup, netns, perf event, a BPF program for ext) or an ifindex.
    pub target: AttachTarget<'a>,
    /// How the program attaches.
    pub attach_type: AttachType,
    /// Link flags (XDP: `XDP_FLAGS_*` modes; tcx: `BPF_F_BEFORE`, `BPF_F_AFTER`, `BPF_F_ID`).
    pub flags: u32,
    /// The type-specific fields.
    pub extra: LinkExtra<'a>,
}

impl<'a> LinkCreateAttr<'a> {
    /// A link of `prog` to `target` as `attach_type`, without flags or extras.
    pub fn new(prog: BorrowedFd<'a>, target: AttachTarget<'a>, attach_type: AttachType) -> Self {
        LinkCreateAttr {
            prog,
            target,
            attach_type,
            flags: 0,
            extra: LinkExtra::None,
        }
    }

    /// The attribute union for `BPF_LINK_CREATE` (no pointers: fds and numbers only).
    pub fn to_attr(&self) -> bpf_attr {
        // Field by field into the zeroed union: a whole-struct assignment would copy padding
        // bytes, which need not be zero, and the kernel refuses non-zero bytes it does not know.
        let mut attr = bpf_attr::default();
        attr.link_create.__bindgen_anon_1.prog_fd = raw_fd(self.prog);
        attr.link_create.__bindgen_anon_2.target_fd = self.target.raw();
        attr.link_create.attach_type = self.attach_type.as_u32();
        attr.link_create.flags = self.flags;
        match self.extra {
            LinkExtra::None => {}
            LinkExtra::TargetBtfId(id) => attr.link_create.__bindgen_anon_3.target_btf_id = id,
            LinkExtra::PerfEvent { bpf_cookie } => {
                attr.link_create.__bindgen_anon_3.perf_event.bpf_cookie = bpf_cookie
            }
            LinkExtra::Tracing {
                target_btf_id,
                cookie,
            } => {
                attr.link_create.__bindgen_anon_3.tracing.target_btf_id = target_btf_id;
                attr.link_create.__bindgen_anon_3.tracing.cookie = cookie;
            }
            LinkExtra::Tcx {
                relative,
                expected_revision,
            } => {
                attr.link_create
                    .__bindgen_anon_3
                    .tcx
                    .__bindgen_anon_1
                    .relative_fd = relative.raw();
                attr.link_create.__bindgen_anon_3.tcx.expected_revision = expected_revision;
            }
            LinkExtra::Netkit {
                relative,
                expected_revision,
            } => {
                attr.link_create
                    .__bindgen_anon_3
                    .netkit
                    .__bindgen_anon_1
                    .relative_fd = relative.raw();
                attr.link_create.__bindgen_anon_3.netkit.expected_revision = expected_revision;
            }
        }
        attr
    }
}

/// `BPF_LINK_CREATE` (Linux 5.7; XDP 5.9, perf events 5.15, tcx 6.6): attaches and returns the
/// link's fd.
#[doc(alias = "BPF_LINK_CREATE")]
pub fn create(attr: &LinkCreateAttr<'_>) -> Result<OwnedFd, SysError> {
    let mut raw = attr.to_attr();
    // SAFETY: the LINK_CREATE variants built by `to_attr` hold no pointers (fds, ids, flags,
    // cookies only); LINK_CREATE returns a new fd.
    unsafe { sys_bpf_fd(Cmd::LinkCreate, &mut raw) }
}

/// `BPF_LINK_UPDATE` (Linux 5.7): replaces the link's program by `new_prog`.
///
/// With `old_prog` (and `BPF_F_REPLACE` in `flags`), fails with `EPERM` unless the link still
/// runs `old_prog`.
#[doc(alias = "BPF_LINK_UPDATE")]
pub fn update(
    link: impl AsFd,
    new_prog: impl AsFd,
    old_prog: Option<BorrowedFd<'_>>,
    flags: u32,
) -> Result<(), SysError> {
    let mut attr = bpf_attr::default();
    attr.link_update.link_fd = raw_fd(link.as_fd());
    attr.link_update.__bindgen_anon_1.new_prog_fd = raw_fd(new_prog.as_fd());
    attr.link_update.flags = flags;
    attr.link_update.__bindgen_anon_2.old_prog_fd = fd_u32(old_prog);
    // SAFETY: LINK_UPDATE reads only fds and flags.
    unsafe { sys_bpf(Cmd::LinkUpdate, &mut attr, ATTR_SIZE) }.map(drop)
}

/// `BPF_LINK_DETACH` (Linux 5.9): detaches the link while its fd stays open (the link becomes
/// defunct; closing the fd is still needed).
#[doc(alias = "BPF_LINK_DETACH")]
pub fn detach(link: impl AsFd) -> Result<(), SysError> {
    let mut attr = bpf_attr::default();
    attr.link_detach.link_fd = raw_fd(link.as_fd());
    // SAFETY: LINK_DETACH reads only the link fd.
    unsafe { sys_bpf(Cmd::LinkDetach, &mut attr, ATTR_SIZE) }.map(drop)
}

/// `BPF_RAW_TRACEPOINT_OPEN`: attaches a raw tracepoint program to the tracepoint `name`
/// (`sys_enter`), returning the link's fd. `None` is for tracing programs that carry their
/// target in their BTF (fentry/fexit, tp_btf).
#[doc(alias = "BPF_RAW_TRACEPOINT_OPEN")]
pub fn raw_tracepoint_open(name: Option<&str>, prog: impl AsFd) -> Result<OwnedFd, SysError> {
    let name = name
        .map(|n| str_cstring(Cmd::RawTracepointOpen.name(), n))
        .transpose()?;
    let mut attr = bpf_attr::default();
    attr.raw_tracepoint.name = name.as_ref().map_or(0, |n| ptr_u64(n.as_ptr()));
    attr.raw_tracepoint.prog_fd = raw_fd(prog.as_fd());
    // SAFETY: `name` is null or points to a NUL-terminated string alive for the call;
    // RAW_TRACEPOINT_OPEN returns a new fd.
    unsafe { sys_bpf_fd(Cmd::RawTracepointOpen, &mut attr) }
}

/// The type-specific part of a link's `bpf_link_info`, read safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkDetail {
    /// An XDP link (`ifindex` 0 once detached).
    Xdp {
        /// The interface.
        ifindex: u32,
    },
    /// A tcx link.
    Tcx {
        /// The interface (0 once detached).
        ifindex: u32,
        /// `BPF_TCX_INGRESS` or `BPF_TCX_EGRESS`.
        attach_type: u32,
    },
    /// A netkit link.
    Netkit {
        /// The interface.
        ifindex: u32,
        /// `BPF_NETKIT_PRIMARY` or `BPF_NETKIT_PEER`.
        attach_type: u32,
    },
    /// A cgroup link.
    Cgroup {
        /// The cgroup's id.
        cgroup_id: u64,
        /// The attach type.
        attach_type: u32,
    },
    /// A network-namespace link (flow dissector, sk_lookup).
    Netns {
        /// The namespace's inode number.
        netns_ino: u32,
        /// The attach type.
        attach_type: u32,
    },
    /// A tracing link (fentry, fexit, LSM...).
    Tracing {
        /// The attach type.
        attach_type: u32,
        /// The id of the target's BTF object (0: vmlinux).
        target_obj_id: u32,
        /// The target's BTF type id.
        target_btf_id: u32,
    },
    /// Another link type (`BPF_LINK_TYPE_*`), whose details need user buffers or are not
    /// decoded here.
    Other(u32),
}

/// Decodes the type-specific part of `info` by its link type.
pub fn detail(info: &uapi::bpf_link_info) -> LinkDetail {
    let u = &info.__bindgen_anon_1;
    // SAFETY (each read below): every member of the union is a struct of plain integers, so
    // any bytes are a valid value of it; the member read is the one the kernel fills for
    // `info.type_`.
    match info.type_ {
        uapi::BPF_LINK_TYPE_XDP => LinkDetail::Xdp {
            // SAFETY: see above.
            ifindex: unsafe { u.xdp.ifindex },
        },
        uapi::BPF_LINK_TYPE_TCX => {
            // SAFETY: see above.
            let t = unsafe { u.tcx };
            LinkDetail::Tcx {
                ifindex: t.ifindex,
                attach_type: t.attach_type,
            }
        }
        uapi::BPF_LINK_TYPE_NETKIT => {
            // SAFETY: see above.
            let t = unsafe { u.netkit };
            LinkDetail::Netkit {
                ifindex: t.ifindex,
                attach_type: t.attach_type,
            }
        }
        uapi::BPF_LINK_TYPE_CGROUP => {
            // SAFETY: see above.
            let c = unsafe { u.cgroup };
            LinkDetail::Cgroup {
                cgroup_id: c.cgroup_id,
                attach_type: c.attach_type,
            }
        }
        uapi::BPF_LINK_TYPE_NETNS => {
            // SAFETY: see above.
            let n = unsafe { u.netns };
            LinkDetail::Netns {
                netns_ino: n.netns_ino,
                attach_type: n.attach_type,
            }
        }
        uapi::BPF_LINK_TYPE_TRACING => {
            // SAFETY: see above.
            let t = unsafe { u.tracing };
            LinkDetail::Tracing {
                attach_type: t.attach_type,
                target_obj_id: t.target_obj_id,
                target_btf_id: t.target_btf_id,
            }
        }
        other => LinkDetail::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn tcx_attr_carries_anchor_and_revision() {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let mut a = LinkCreateAttr::new(fd, AttachTarget::Ifindex(9), AttachType::TcxIngress);
        a.flags = uapi::BPF_F_BEFORE | uapi::BPF_F_ID;
        a.extra = LinkExtra::Tcx {
            relative: Relative::Id(42),
            expected_revision: 3,
        };
        let raw = a.to_attr();
        // SAFETY: reading the LINK_CREATE member of a union built through it.
        let l = unsafe { raw.link_create };
        // SAFETY: reading the members `to_attr` wrote.
        unsafe {
            assert_eq!(l.__bindgen_anon_2.target_ifindex, 9);
            assert_eq!(l.__bindgen_anon_3.tcx.__bindgen_anon_1.relative_id, 42);
            assert_eq!(l.__bindgen_anon_3.tcx.expected_revision, 3);
        }
        assert_eq!(l.attach_type, uapi::BPF_TCX_INGRESS);
        assert_eq!(l.flags, uapi::BPF_F_BEFORE | uapi::BPF_F_ID);
    }

    #[test]
    fn perf_event_attr_carries_the_cookie() {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let mut a = LinkCreateAttr::new(fd, AttachTarget::Fd(fd), AttachType::PerfEvent);
        a.extra = LinkExtra::PerfEvent {
            bpf_cookie: 0xdead_beef,
        };
        // SAFETY: reading the member `to_attr` wrote.
        let c = unsafe {
            a.to_attr()
                .link_create
                .__bindgen_anon_3
                .perf_event
                .bpf_cookie
        };
        assert_eq!(c, 0xdead_beef);
    }

    #[test]
    fn link_detail_reads_the_member_of_the_link_type() {
        let mut info = uapi::bpf_link_info {
            type_: uapi::BPF_LINK_TYPE_XDP,
            ..Default::default()
        };
        info.__bindgen_anon_1.xdp.ifindex = 7;
        assert_eq!(detail(&info), LinkDetail::Xdp { ifindex: 7 });
        info.type_ = 99;
        assert_eq!(detail(&info), LinkDetail::Other(99));
    }

    #[test]
    fn a_tracepoint_name_with_nul_is_refused() {
        let stdin = std::io::stdin();
        let e = raw_tracepoint_open(Some("sys\0enter"), stdin.as_fd()).unwrap_err();
        assert_eq!(e.call, "BPF_RAW_TRACEPOINT_OPEN");
    }
}
