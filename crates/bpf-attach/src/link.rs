//! Owned attachments: every attach returns a link that detaches when dropped.
//!
//! | link | mechanism | dropped | outlives the process |
//! | --- | --- | --- | --- |
//! | [`FdLink`] | a `bpf_link` fd (XDP link, TCX) | the fd closes; the kernel detaches unless the link is pinned | [`FdLink::pin`] |
//! | [`XdpLink`] | `bpf_link` or netlink `IFLA_XDP` | detaches (netlink: only if our program is still the one attached) | netlink: [`keep`](crate::xdp::XdpLink::keep); link: pin |
//! | [`TcLink`] | `cls_bpf` filter over netlink, or TCX | removes exactly its filter (and the clsact qdisc it created, once empty) | `cls_bpf`: [`keep`](crate::tc::TcLink::keep); TCX: pin |
//! | [`SocketLink`] | `setsockopt` | detaches with the option matching the attach | [`keep`](crate::socket::SocketLink::keep) (lives with the socket) |
//! | [`PerfLink`] | a perf event (kprobe, uprobe, tracepoint) held by a `bpf_link` or `PERF_EVENT_IOC_SET_BPF` | detaches, closes the perf event, removes the tracefs probe event it made | [`keep`](crate::perf_link::PerfLink::keep) (for the process's life) |
//!
//! `Drop` is best effort: a failure is logged with the `log` crate (target `bpf_attach`).
//! `detach(self)` does the same work and returns the error. A link never needs its program to
//! outlive it: the kernel holds the program while it is attached, and links that detach by
//! program (netlink XDP) keep their own duplicate of the program's fd.
//!
//! [`Link`] holds any of them, for owners that do not care which (a `Program` that remembers
//! its attachments, goebpf-style).

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use bpf_sys::link::LinkDetail;

use crate::attach_error::AttachError;
use crate::perf_link::PerfLink;
use crate::socket::SocketLink;
use crate::tc::TcLink;
use crate::xdp::XdpLink;

/// A `bpf_link`: the kernel object that holds an attachment while any fd or pin refers to it
/// (Linux 5.7; XDP 5.9, TCX 6.6).
///
/// Dropping it closes the fd: the attachment goes away unless the link is pinned (or its fd
/// was duplicated). [`FdLink::detach`] detaches it at once, pinned or not, and removes the pin
/// it made.
#[must_use = "dropping a link detaches it"]
#[doc(alias = "bpf_link")]
pub struct FdLink {
    fd: OwnedFd,
    what: String,
    pinned: Option<PathBuf>,
}

impl fmt::Debug for FdLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdLink")
            .field("fd", &self.fd)
            .field("what", &self.what)
            .field("pinned", &self.pinned)
            .finish()
    }
}

impl FdLink {
    /// Wraps a link fd; `what` describes it for errors and logs (`xdp link on veth0`).
    pub fn from_fd(fd: OwnedFd, what: impl Into<String>) -> Self {
        FdLink {
            fd,
            what: what.into(),
            pinned: None,
        }
    }

    /// Opens the link pinned at `path` (`BPF_OBJ_GET`). Dropping the result leaves the pin,
    /// and so the attachment, in place; [`FdLink::detach`] detaches it and removes the pin.
    pub fn from_pin(path: impl AsRef<Path>) -> Result<Self, AttachError> {
        let path = path.as_ref();
        let fd = bpf_sys::obj::get(path, 0)
            .map_err(|e| AttachError::syscall("open pinned link", path.display(), e))?;
        Ok(FdLink {
            fd,
            what: format!("link pinned at {}", path.display()),
            pinned: Some(path.to_owned()),
        })
    }

    /// The link's id (as `bpftool link` shows it).
    pub fn id(&self) -> Result<u32, AttachError> {
        Ok(self.info()?.id)
    }

    /// The id of the program the link runs.
    pub fn prog_id(&self) -> Result<u32, AttachError> {
        Ok(self.info()?.prog_id)
    }

    /// The type-specific part of the link's info (interface, attach type...).
    pub fn detail(&self) -> Result<LinkDetail, AttachError> {
        Ok(bpf_sys::link::detail(&self.info()?))
    }

    fn info(&self) -> Result<bpf_sys::uapi::bpf_link_info, AttachError> {
        bpf_sys::obj::link_info(&self.fd)
            .map_err(|e| AttachError::syscall("link info", &self.what, e))
    }

    /// Pins the link at `path` in a bpffs: the attachment then outlives this process until the
    /// pin is removed (`rm`, or [`FdLink::detach`]).
    #[doc(alias = "BPF_OBJ_PIN")]
    pub fn pin(&mut self, path: impl AsRef<Path>) -> Result<(), AttachError> {
        let path = path.as_ref();
        bpf_sys::obj::pin(&self.fd, path)
            .map_err(|e| AttachError::syscall("pin link", path.display(), e))?;
        self.pinned = Some(path.to_owned());
        Ok(())
    }

    /// Removes the pin made by [`FdLink::pin`] (or the one it was opened from); the attachment
    /// then lives as long as this value.
    pub fn unpin(&mut self) -> Result<(), AttachError> {
        if let Some(path) = self.pinned.take() {
            std::fs::remove_file(&path).map_err(|e| {
                AttachError::syscall(
                    "unpin link",
                    path.display(),
                    bpf_sys::SysError::new("unlink", e),
                )
            })?;
        }
        Ok(())
    }

    /// Where the link is pinned, if this value pinned it or was opened from a pin.
    pub fn pin_path(&self) -> Option<&Path> {
        self.pinned.as_deref()
    }

    /// Atomically replaces the link's program (`BPF_LINK_UPDATE`): no packet misses both.
    #[doc(alias = "BPF_LINK_UPDATE")]
    pub fn update(&self, new_prog: impl AsFd) -> Result<(), AttachError> {
        bpf_sys::link::update(&self.fd, new_prog, None, 0)
            .map_err(|e| AttachError::syscall("update link", &self.what, e))
    }

    /// Detaches now (`BPF_LINK_DETACH`, Linux 5.9; before that, closing the fd), pinned or
    /// not, removes the pin this value knows of, and closes the fd.
    #[doc(alias = "BPF_LINK_DETACH")]
    pub fn detach(mut self) -> Result<(), AttachError> {
        let detached = match bpf_sys::link::detach(&self.fd) {
            Ok(()) => Ok(()),
            // Kernels before 5.9, or link types without detach: closing is all there is.
            Err(e) if e.is_errno(libc_einval()) || e.is_errno(libc_eopnotsupp()) => Ok(()),
            Err(e) => Err(AttachError::syscall("detach link", &self.what, e)),
        };
        let unpinned = self.unpin();
        detached.and(unpinned)
    }

    /// Keeps the attachment for the rest of the process: the fd is leaked, so nothing closes
    /// it. Only a pin makes a `bpf_link` outlive the process.
    pub fn keep(self) {
        std::mem::forget(self);
    }

    /// The link's fd, for the caller to own.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// What the link is, as given when it was made (`xdp link on veth0`).
    pub fn describe(&self) -> &str {
        &self.what
    }
}

impl AsFd for FdLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

// errnos (the same on every Linux architecture), without a libc dependency in this crate.
const fn libc_einval() -> i32 {
    22
}
const fn libc_eopnotsupp() -> i32 {
    95
}

/// Any attachment: what a program that remembers its links holds.
#[must_use = "dropping a link detaches it"]
#[derive(Debug)]
#[non_exhaustive]
pub enum Link {
    /// XDP, by `bpf_link` or netlink.
    Xdp(XdpLink),
    /// TC, by `cls_bpf` filter or TCX link.
    Tc(TcLink),
    /// A socket filter or reuseport program.
    Socket(SocketLink),
    /// Another `bpf_link` (a raw tracepoint's, among others).
    Fd(FdLink),
    /// A kprobe, uprobe or tracepoint: a perf event with the program on it.
    Perf(PerfLink),
}

impl Link {
    /// Detaches now and reports a failure (dropping detaches too, but only logs one).
    pub fn detach(self) -> Result<(), AttachError> {
        match self {
            Link::Xdp(l) => l.detach(),
            Link::Tc(l) => l.detach(),
            Link::Socket(l) => l.detach(),
            Link::Fd(l) => l.detach(),
            Link::Perf(l) => l.detach(),
        }
    }

    /// Leaves the attachment in place when this value goes: past the process for netlink and
    /// socket attachments, until the process exits for unpinned `bpf_link`s.
    pub fn keep(self) {
        match self {
            Link::Xdp(l) => l.keep(),
            Link::Tc(l) => l.keep(),
            Link::Socket(l) => l.keep(),
            Link::Fd(l) => l.keep(),
            Link::Perf(l) => l.keep(),
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Link::Xdp(l) => fmt::Display::fmt(l, f),
            Link::Tc(l) => fmt::Display::fmt(l, f),
            Link::Socket(l) => fmt::Display::fmt(l, f),
            Link::Fd(l) => f.write_str(&l.what),
            Link::Perf(l) => fmt::Display::fmt(l, f),
        }
    }
}

impl From<XdpLink> for Link {
    fn from(l: XdpLink) -> Self {
        Link::Xdp(l)
    }
}

impl From<TcLink> for Link {
    fn from(l: TcLink) -> Self {
        Link::Tc(l)
    }
}

impl From<SocketLink> for Link {
    fn from(l: SocketLink) -> Self {
        Link::Socket(l)
    }
}

impl From<PerfLink> for Link {
    fn from(l: PerfLink) -> Self {
        Link::Perf(l)
    }
}

impl From<FdLink> for Link {
    fn from(l: FdLink) -> Self {
        Link::Fd(l)
    }
}

/// Logs a failed best-effort detach with its causes.
pub(crate) fn log_drop_failure(what: &dyn fmt::Display, err: &AttachError) {
    let mut msg = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    log::warn!(target: "bpf_attach", "detaching {what} on drop failed: {msg}");
}
