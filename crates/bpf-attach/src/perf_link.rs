//! [`PerfLink`]: a program attached to a perf event (a kprobe, uprobe or tracepoint).
//!
//! Two kernel mechanisms, the same value:
//!
//! - a `bpf_link` over the perf event (`BPF_LINK_CREATE` with `BPF_PERF_EVENT`, Linux 5.15,
//!   probed once per process), which can carry a cookie the program reads with
//!   `bpf_get_attach_cookie`;
//! - `PERF_EVENT_IOC_SET_BPF` on the perf event, which every kernel with BPF kprobes has.
//!
//! Either way the event is then enabled (`PERF_EVENT_IOC_ENABLE`). The link owns the perf
//! event's fd and, for the tracefs mechanism, the probe event it defined: dropping it detaches
//! the program, closes the perf event and removes the probe event, in that order.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use bpf_sys::link::{LinkCreateAttr, LinkExtra};
use bpf_sys::probe::{self, LinkKind};
use bpf_sys::prog::AttachTarget;
use bpf_sys::AttachType;

use crate::attach_error::AttachError;
use crate::link::log_drop_failure;
use crate::probe_events::TracefsEvent;

/// How a program is attached to its perf event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PerfMechanism {
    /// A `bpf_link` where the kernel has perf links (probed once), else the ioctl.
    #[default]
    Auto,
    /// A `bpf_link` (Linux 5.15); [`AttachError::KernelLacks`] where the probe says there is
    /// none.
    Link,
    /// `PERF_EVENT_IOC_SET_BPF`, as goebpf.
    Ioctl,
}

/// A program attached to a perf event: a kprobe, uprobe or tracepoint attachment.
///
/// Dropping it detaches (best effort, a failure is logged); [`PerfLink::detach`] reports
/// failures. It never needs the program value to outlive it.
#[must_use = "dropping a link detaches it"]
pub struct PerfLink {
    // Declaration order is drop order: the bpf_link, then the perf event, then the tracefs
    // event (which the kernel refuses to remove while a perf event uses it).
    link: Option<OwnedFd>,
    perf: Option<OwnedFd>,
    event: Option<TracefsEvent>,
    what: String,
}

impl fmt::Debug for PerfLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerfLink")
            .field("what", &self.what)
            .field("bpf_link", &self.link)
            .field("perf", &self.perf)
            .field("event", &self.event.as_ref().map(TracefsEvent::full_name))
            .finish()
    }
}

impl fmt::Display for PerfLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

/// Attaches `prog` to the perf event `perf` (which the link then owns, with `event`, the
/// tracefs probe event behind it if any). On failure both are released: the perf fd closed,
/// the tracefs event removed.
pub(crate) fn attach(
    prog: BorrowedFd<'_>,
    perf: OwnedFd,
    event: Option<TracefsEvent>,
    what: String,
    mechanism: PerfMechanism,
    cookie: u64,
) -> Result<PerfLink, AttachError> {
    let use_link = match mechanism {
        PerfMechanism::Ioctl => {
            if cookie != 0 {
                return Err(AttachError::Unsupported {
                    feature: "a bpf cookie with PERF_EVENT_IOC_SET_BPF",
                    reason: "only a perf event bpf_link carries a cookie".into(),
                });
            }
            false
        }
        PerfMechanism::Link => {
            probe::link_type(LinkKind::PerfEvent).check()?;
            true
        }
        PerfMechanism::Auto => {
            let has = probe::link_type_supported(LinkKind::PerfEvent);
            if !has && cookie != 0 {
                probe::link_type(LinkKind::PerfEvent).check()?;
            }
            has
        }
    };
    // Built first, so that every early return below releases the perf fd and the event.
    let mut out = PerfLink {
        link: None,
        perf: Some(perf),
        event,
        what,
    };
    let perf = out.perf_fd();
    if use_link {
        let mut attr = LinkCreateAttr::new(prog, AttachTarget::Fd(perf), AttachType::PerfEvent);
        attr.extra = LinkExtra::PerfEvent { bpf_cookie: cookie };
        let fd = bpf_sys::link::create(&attr)
            .map_err(|e| AttachError::syscall("create perf event link", &out.what, e))?;
        out.link = Some(fd);
    } else {
        bpf_sys::perf::set_bpf(perf, prog)
            .map_err(|e| AttachError::syscall("attach to perf event", &out.what, e))?;
    }
    bpf_sys::perf::enable(out.perf_fd())
        .map_err(|e| AttachError::syscall("enable perf event", &out.what, e))?;
    Ok(out)
}

impl PerfLink {
    /// Whether the program is held by a `bpf_link` (else by `PERF_EVENT_IOC_SET_BPF`).
    pub fn is_bpf_link(&self) -> bool {
        self.link.is_some()
    }

    /// The `bpf_link`'s fd, when the program is held by one.
    pub fn link_fd(&self) -> Option<BorrowedFd<'_>> {
        self.link.as_ref().map(|f| f.as_fd())
    }

    /// The perf event's fd.
    pub fn perf_fd(&self) -> BorrowedFd<'_> {
        self.perf
            .as_ref()
            .map(|f| f.as_fd())
            .expect("a perf link holds its perf event until it is consumed")
    }

    /// The tracefs probe event behind it (`ebpf/ebpf_<pid>_<n>_<symbol>`), when it was made
    /// through `kprobe_events`/`uprobe_events` rather than a perf PMU.
    pub fn tracefs_event(&self) -> Option<String> {
        self.event.as_ref().map(TracefsEvent::full_name)
    }

    /// What the link is (`kprobe __x64_sys_getpid`).
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// Detaches now: closes the `bpf_link` (or disables the perf event), closes the perf
    /// event, and removes the tracefs probe event it made; reports the first failure.
    pub fn detach(mut self) -> Result<(), AttachError> {
        self.release()
    }

    /// Leaves the attachment in place for the rest of the process (its fds are leaked). A
    /// tracefs probe event it made then outlives the process: [`crate::probe_events::cleanup_probes`]
    /// removes it once the process has died.
    pub fn keep(mut self) {
        if let Some(e) = self.event.take() {
            e.keep();
        }
        std::mem::forget(self.link.take());
        std::mem::forget(self.perf.take());
    }

    fn release(&mut self) -> Result<(), AttachError> {
        let mut result = Ok(());
        if let Some(link) = self.link.take() {
            drop(link);
        } else if let Some(perf) = &self.perf {
            // Without a link the program goes with the perf event; disable it first so that it
            // stops at once even if a forked child still holds a copy of the fd.
            if let Err(e) = bpf_sys::perf::disable(perf.as_fd()) {
                result = Err(AttachError::syscall("disable perf event", &self.what, e));
            }
        }
        drop(self.perf.take());
        if let Some(event) = self.event.take() {
            let removed = event.remove();
            if result.is_ok() {
                result = removed;
            }
        }
        result
    }
}

impl Drop for PerfLink {
    fn drop(&mut self) {
        if self.perf.is_none() {
            return;
        }
        if let Err(e) = self.release() {
            log_drop_failure(&self.what, &e);
        }
    }
}
