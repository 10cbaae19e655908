//! XDP: attach a program to a network interface, by `bpf_link` or by netlink, and ask which
//! program an interface runs.
//!
//! Two mechanisms:
//!
//! - a `bpf_link` (Linux 5.9, probed): the attachment lives as long as the link's fd or pin;
//!   nothing else can replace it, and it never replaces another program;
//! - netlink (`RTM_SETLINK` with `IFLA_XDP`, goebpf's way): the attachment belongs to the
//!   interface and outlives the process unless detached; it can fail when a program is
//!   already there (`XDP_FLAGS_UPDATE_IF_NOEXIST`) or replace a given one
//!   (`XDP_FLAGS_REPLACE`, Linux 5.7).
//!
//! [`XdpMechanism::Auto`] takes the link where the kernel has it and netlink otherwise (and
//! netlink when a replacement is asked for). Either way the result is an [`XdpLink`] that
//! detaches when dropped; the netlink one detaches only its own program (it detaches with
//! `XDP_FLAGS_REPLACE` and its program as the expected one).
//!
//! One program can be attached to several interfaces (goebpf issue #37): each
//! [`attach`] returns its own link.
//!
//! ```no_run
//! use bpf_attach::xdp::{self, XdpMode, XdpOptions};
//! # fn prog() -> std::os::fd::OwnedFd { unimplemented!() }
//! let prog = prog(); // an XDP program's fd
//! let link = xdp::attach(&prog, "veth0", &XdpOptions::new().mode(XdpMode::Skb))?;
//! println!("{link}");
//! link.detach()?;
//! # Ok::<(), bpf_attach::AttachError>(())
//! ```

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use bpf_sys::link::LinkCreateAttr;
use bpf_sys::probe::{self, LinkKind};
use bpf_sys::prog::AttachTarget;
use bpf_sys::uapi::{
    XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE, XDP_FLAGS_REPLACE, XDP_FLAGS_SKB_MODE,
    XDP_FLAGS_UPDATE_IF_NOEXIST,
};
use bpf_sys::{AttachType, ProgramType, SysError};
use netlink_packet_route::link::{LinkAttribute, LinkMessage, LinkXdp};
use netlink_packet_route::RouteNetlinkMessage;

use crate::attach_error::{AttachError, Iface};
use crate::link::{log_drop_failure, FdLink};
use crate::netlink::{Netlink, NlError};

const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;

/// Where the program runs: goebpf's `XdpAttachMode`, the `XDP_FLAGS_*_MODE` bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum XdpMode {
    /// The kernel chooses: native when the driver has it, else generic.
    #[default]
    None,
    /// Generic XDP (`XDP_FLAGS_SKB_MODE`): any interface, after the socket buffer is built.
    #[doc(alias = "XDP_FLAGS_SKB_MODE")]
    Skb,
    /// Native XDP in the driver (`XDP_FLAGS_DRV_MODE`); veth has it.
    #[doc(alias = "XDP_FLAGS_DRV_MODE")]
    Drv,
    /// Offloaded to the NIC (`XDP_FLAGS_HW_MODE`).
    #[doc(alias = "XDP_FLAGS_HW_MODE")]
    Hw,
}

impl XdpMode {
    /// The mode's `XDP_FLAGS_*` bit (0 for [`XdpMode::None`]).
    pub fn flags(self) -> u32 {
        match self {
            XdpMode::None => 0,
            XdpMode::Skb => XDP_FLAGS_SKB_MODE,
            XdpMode::Drv => XDP_FLAGS_DRV_MODE,
            XdpMode::Hw => XDP_FLAGS_HW_MODE,
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::None => "default",
            XdpMode::Skb => "skb",
            XdpMode::Drv => "drv",
            XdpMode::Hw => "hw",
        })
    }
}

/// How to attach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum XdpMechanism {
    /// A `bpf_link` where the kernel has XDP links (probed once), else netlink; netlink when
    /// a replacement is asked for.
    #[default]
    Auto,
    /// A `bpf_link` (Linux 5.9); [`AttachError::KernelLacks`] where the probe says there is
    /// none.
    Link,
    /// Netlink `IFLA_XDP`, as goebpf.
    Netlink,
}

/// Options of [`attach`]: the defaults are the kernel's choice of mode, [`XdpMechanism::Auto`],
/// replace nothing, and over netlink silently replace a program already there (goebpf's
/// behaviour; set [`XdpOptions::fail_if_present`] to refuse instead).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct XdpOptions<'a> {
    /// Where the program runs.
    pub mode: XdpMode,
    /// How to attach.
    pub mechanism: XdpMechanism,
    /// Over netlink, fail with [`AttachError::XdpAlreadyAttached`] when the interface already
    /// has a program in that mode (`XDP_FLAGS_UPDATE_IF_NOEXIST`). A `bpf_link` always fails
    /// in that case.
    pub fail_if_present: bool,
    /// Replace exactly this program (`XDP_FLAGS_REPLACE`, netlink, Linux 5.7); fails with
    /// [`AttachError::XdpNotExpected`] when another one is attached.
    pub replace: Option<BorrowedFd<'a>>,
}

impl<'a> XdpOptions<'a> {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: XdpMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the mechanism.
    pub fn mechanism(mut self, mechanism: XdpMechanism) -> Self {
        self.mechanism = mechanism;
        self
    }

    /// Fails when a program is already attached.
    pub fn fail_if_present(mut self, yes: bool) -> Self {
        self.fail_if_present = yes;
        self
    }

    /// Replaces exactly `prog` (netlink).
    pub fn replace(mut self, prog: BorrowedFd<'a>) -> Self {
        self.replace = Some(prog);
        self
    }
}

/// Which XDP programs an interface has, by mode (`IFLA_XDP_*_PROG_ID`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct XdpQuery {
    /// The generic-mode program.
    pub skb_prog_id: Option<u32>,
    /// The native-mode program.
    pub drv_prog_id: Option<u32>,
    /// The offloaded program.
    pub hw_prog_id: Option<u32>,
}

impl XdpQuery {
    /// The program of `mode` ([`XdpMode::None`]: the only program, native first).
    pub fn prog_id(&self, mode: XdpMode) -> Option<u32> {
        match mode {
            XdpMode::None => self.drv_prog_id.or(self.skb_prog_id).or(self.hw_prog_id),
            XdpMode::Skb => self.skb_prog_id,
            XdpMode::Drv => self.drv_prog_id,
            XdpMode::Hw => self.hw_prog_id,
        }
    }

    /// The mode `prog_id` runs in, if it is attached.
    pub fn mode_of(&self, prog_id: u32) -> Option<XdpMode> {
        [
            (self.drv_prog_id, XdpMode::Drv),
            (self.skb_prog_id, XdpMode::Skb),
            (self.hw_prog_id, XdpMode::Hw),
        ]
        .into_iter()
        .find_map(|(id, mode)| (id == Some(prog_id)).then_some(mode))
    }

    /// Whether no program is attached.
    pub fn is_empty(&self) -> bool {
        self.prog_id(XdpMode::None).is_none()
    }

    fn from_link(link: &LinkMessage) -> Self {
        let mut q = XdpQuery::default();
        for attr in &link.attributes {
            if let LinkAttribute::Xdp(xdp) = attr {
                for x in xdp {
                    match *x {
                        LinkXdp::SkbProgId(id) if id != 0 => q.skb_prog_id = Some(id),
                        LinkXdp::DrvProgId(id) if id != 0 => q.drv_prog_id = Some(id),
                        LinkXdp::HwProgId(id) if id != 0 => q.hw_prog_id = Some(id),
                        _ => {}
                    }
                }
            }
        }
        q
    }
}

/// Which programs `iface` runs (in the calling thread's network namespace).
pub fn query(iface: impl Into<Iface>) -> Result<XdpQuery, AttachError> {
    let iface = iface.into();
    let nl = open(&iface)?;
    Ok(XdpQuery::from_link(&nl.link(&iface)?))
}

fn open(iface: &Iface) -> Result<Netlink, AttachError> {
    Netlink::open().map_err(|e| e.into_attach("open netlink socket", &iface.to_string()))
}

/// The program's id and type.
pub(crate) fn prog_id_and_type(
    prog: BorrowedFd<'_>,
) -> Result<(u32, Option<ProgramType>), AttachError> {
    let info = bpf_sys::obj::prog_info(prog)
        .map_err(|e| AttachError::syscall("read program info", "the program", e))?;
    Ok((info.id, ProgramType::try_from(info.type_).ok()))
}

pub(crate) fn dup(fd: BorrowedFd<'_>, what: &str) -> Result<OwnedFd, AttachError> {
    fd.try_clone_to_owned().map_err(|e| {
        AttachError::syscall(
            "duplicate fd",
            what,
            SysError::new("fcntl(F_DUPFD_CLOEXEC)", e),
        )
    })
}

/// Attaches the XDP program `prog` to `iface`.
///
/// Errors: [`AttachError::InterfaceNotFound`]; [`AttachError::XdpAlreadyAttached`] (fail if
/// present, or a `bpf_link` meeting any program); [`AttachError::XdpNotExpected`] (replace
/// mismatch, or the other mode busy); [`AttachError::WrongProgramType`];
/// [`AttachError::KernelLacks`] for a forced link the kernel does not have.
#[doc(alias = "IFLA_XDP")]
#[doc(alias = "BPF_LINK_CREATE")]
pub fn attach(
    prog: impl AsFd,
    iface: impl Into<Iface>,
    opts: &XdpOptions<'_>,
) -> Result<XdpLink, AttachError> {
    let prog = prog.as_fd();
    let iface = iface.into();
    let (prog_id, prog_type) = prog_id_and_type(prog)?;
    if let Some(t) = prog_type.filter(|t| *t != ProgramType::Xdp) {
        return Err(AttachError::WrongProgramType {
            expected: "xdp",
            got: t,
        });
    }
    let nl = open(&iface)?;
    let (ifindex, name) = nl.resolve(&iface)?;
    let use_link = match opts.mechanism {
        XdpMechanism::Netlink => false,
        XdpMechanism::Link => {
            probe::link_type(LinkKind::Xdp).check()?;
            true
        }
        XdpMechanism::Auto => opts.replace.is_none() && probe::link_type_supported(LinkKind::Xdp),
    };
    if use_link {
        if opts.replace.is_some() {
            return Err(AttachError::Unsupported {
                feature: "replacing an xdp program with a bpf_link",
                reason: "a bpf_link never replaces another attachment: use the netlink \
                         mechanism, or FdLink::update on the link in place"
                    .into(),
            });
        }
        let mut attr = LinkCreateAttr::new(prog, AttachTarget::Ifindex(ifindex), AttachType::Xdp);
        attr.flags = opts.mode.flags();
        let fd = bpf_sys::link::create(&attr).map_err(|e| {
            if e.is_errno(EBUSY) {
                already_attached(&nl, &iface, &name, opts.mode, None)
            } else if e.is_errno(EEXIST) {
                AttachError::XdpNotExpected {
                    iface: name.clone(),
                    extack: None,
                }
            } else {
                AttachError::syscall("attach xdp link", &name, e)
            }
        })?;
        let mode = effective_mode(&nl, &iface, prog_id, opts.mode);
        let what = format!("xdp link on {name}");
        return Ok(XdpLink {
            iface: name,
            ifindex,
            prog_id,
            mode,
            kind: Some(Kind::Link(FdLink::from_fd(fd, what))),
        });
    }

    let mut flags = opts.mode.flags();
    if opts.fail_if_present {
        flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
    }
    if opts.replace.is_some() {
        flags |= XDP_FLAGS_REPLACE;
    }
    set_xdp(
        &nl,
        ifindex,
        prog.as_raw_fd(),
        flags,
        opts.replace.map(|f| f.as_raw_fd()),
    )
    .map_err(|e| map_set_error(e, &nl, &iface, &name, opts.mode, "attach xdp"))?;
    let mode = effective_mode(&nl, &iface, prog_id, opts.mode);
    Ok(XdpLink {
        kind: Some(Kind::Netlink {
            prog: dup(prog, "the xdp program")?,
            nl,
        }),
        iface: name,
        ifindex,
        prog_id,
        mode,
    })
}

fn already_attached(
    nl: &Netlink,
    iface: &Iface,
    name: &str,
    mode: XdpMode,
    extack: Option<String>,
) -> AttachError {
    let prog_id = nl
        .link(iface)
        .ok()
        .and_then(|l| XdpQuery::from_link(&l).prog_id(mode));
    AttachError::XdpAlreadyAttached {
        iface: name.to_owned(),
        prog_id,
        extack,
    }
}

fn map_set_error(
    e: NlError,
    nl: &Netlink,
    iface: &Iface,
    name: &str,
    mode: XdpMode,
    op: &'static str,
) -> AttachError {
    if e.is(EBUSY) {
        already_attached(nl, iface, name, mode, e.extack)
    } else if e.is(EEXIST) {
        AttachError::XdpNotExpected {
            iface: name.to_owned(),
            extack: e.extack,
        }
    } else if e.is(ENODEV) {
        AttachError::InterfaceNotFound {
            iface: iface.clone(),
        }
    } else {
        e.into_attach(op, name)
    }
}

/// The mode the kernel put `prog_id` in (the asked one when it cannot tell).
fn effective_mode(nl: &Netlink, iface: &Iface, prog_id: u32, asked: XdpMode) -> XdpMode {
    nl.link(iface)
        .ok()
        .and_then(|l| XdpQuery::from_link(&l).mode_of(prog_id))
        .unwrap_or(asked)
}

fn set_xdp(
    nl: &Netlink,
    ifindex: u32,
    fd: i32,
    flags: u32,
    expected: Option<i32>,
) -> Result<(), NlError> {
    let mut xdp = vec![LinkXdp::Fd(fd), LinkXdp::Flags(flags)];
    if let Some(expected) = expected {
        xdp.push(LinkXdp::ExpectedFd(expected as u32));
    }
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(xdp));
    nl.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
}

enum Kind {
    Link(FdLink),
    Netlink { nl: Netlink, prog: OwnedFd },
}

/// An XDP attachment; dropping it detaches the program (best effort, a failure is logged),
/// except a pinned `bpf_link`, which its pin keeps.
///
/// Over netlink, detaching removes the program only while it is still the one attached
/// (`XDP_FLAGS_REPLACE` with it as the expected program): a program someone else put there
/// since stays. The link keeps its netlink socket, so it detaches in the network namespace it
/// was attached in, whichever thread drops it.
#[must_use = "dropping a link detaches it"]
pub struct XdpLink {
    iface: String,
    ifindex: u32,
    prog_id: u32,
    mode: XdpMode,
    kind: Option<Kind>,
}

impl fmt::Debug for XdpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpLink")
            .field("iface", &self.iface)
            .field("ifindex", &self.ifindex)
            .field("prog_id", &self.prog_id)
            .field("mode", &self.mode)
            .field("link", &self.fd_link())
            .finish()
    }
}

impl fmt::Display for XdpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "xdp program {} on {} ({} mode, {})",
            self.prog_id,
            self.iface,
            self.mode,
            if self.fd_link().is_some() {
                "bpf_link"
            } else {
                "netlink"
            }
        )
    }
}

impl XdpLink {
    /// The interface's name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The attached program's id.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// The mode the program runs in (as the kernel reported it after attaching).
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// The `bpf_link`, when attached through one.
    pub fn fd_link(&self) -> Option<&FdLink> {
        match &self.kind {
            Some(Kind::Link(l)) => Some(l),
            _ => None,
        }
    }

    /// Pins the `bpf_link` (see [`FdLink::pin`]); a netlink attachment has nothing to pin
    /// ([`XdpLink::keep`] makes it outlive the process).
    pub fn pin(&mut self, path: impl AsRef<std::path::Path>) -> Result<(), AttachError> {
        match &mut self.kind {
            Some(Kind::Link(l)) => l.pin(path),
            _ => Err(AttachError::Unsupported {
                feature: "pinning a netlink xdp attachment",
                reason: "only bpf_links can be pinned; keep() leaves a netlink attachment in \
                         place"
                    .into(),
            }),
        }
    }

    /// Replaces the program atomically: `BPF_LINK_UPDATE`, or netlink `XDP_FLAGS_REPLACE`
    /// with the current program as the expected one.
    pub fn replace(&mut self, new_prog: impl AsFd) -> Result<(), AttachError> {
        let new_prog = new_prog.as_fd();
        let (new_id, _) = prog_id_and_type(new_prog)?;
        match &mut self.kind {
            Some(Kind::Link(l)) => l.update(new_prog)?,
            Some(Kind::Netlink { nl, prog }) => {
                let iface = Iface::Index(self.ifindex);
                set_xdp(
                    nl,
                    self.ifindex,
                    new_prog.as_raw_fd(),
                    self.mode.flags() | XDP_FLAGS_REPLACE,
                    Some(prog.as_raw_fd()),
                )
                .map_err(|e| map_set_error(e, nl, &iface, &self.iface, self.mode, "replace xdp"))?;
                *prog = dup(new_prog, "the xdp program")?;
            }
            None => unreachable!("a live link has its kind"),
        }
        self.prog_id = new_id;
        Ok(())
    }

    /// Detaches now, reporting a failure. Over netlink, a program that is no longer ours (it
    /// was replaced) or an interface that is gone counts as detached.
    pub fn detach(mut self) -> Result<(), AttachError> {
        match self.kind.take() {
            Some(kind) => self.detach_kind(kind),
            None => Ok(()),
        }
    }

    /// Leaves the program attached when this value goes: over netlink past the process, as
    /// goebpf did; a `bpf_link` until the process exits (pin it to go further).
    pub fn keep(mut self) {
        if let Some(Kind::Link(l)) = self.kind.take() {
            l.keep();
        }
    }

    fn detach_kind(&self, kind: Kind) -> Result<(), AttachError> {
        match kind {
            Kind::Link(l) => l.detach(),
            Kind::Netlink { nl, prog } => {
                let flags = self.mode.flags();
                let r = set_xdp(
                    &nl,
                    self.ifindex,
                    -1,
                    flags | XDP_FLAGS_REPLACE,
                    Some(prog.as_raw_fd()),
                );
                match r {
                    Ok(()) => Ok(()),
                    // Not ours any more, or the interface is gone: nothing of ours to remove.
                    Err(e) if e.is(EEXIST) || e.is(ENODEV) => Ok(()),
                    // Kernels before 5.7 have no XDP_FLAGS_REPLACE: check, then detach.
                    Err(e) if e.is(EINVAL) => {
                        let iface = Iface::Index(self.ifindex);
                        let ours = nl
                            .link(&iface)
                            .map(|l| XdpQuery::from_link(&l).prog_id(self.mode))?
                            == Some(self.prog_id);
                        if ours {
                            set_xdp(&nl, self.ifindex, -1, flags, None)
                                .map_err(|e| e.into_attach("detach xdp", &self.iface))
                        } else {
                            Ok(())
                        }
                    }
                    Err(e) => Err(e.into_attach("detach xdp", &self.iface)),
                }
            }
        }
    }
}

impl Drop for XdpLink {
    fn drop(&mut self) {
        match self.kind.take() {
            // Closing the fd detaches, unless the link is pinned: then the pin keeps it.
            Some(Kind::Link(l)) => drop(l),
            Some(kind) => {
                if let Err(e) = self.detach_kind(kind) {
                    log_drop_failure(self, &e);
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_goebpfs_flag_bits() {
        assert_eq!(XdpMode::None.flags(), 0);
        assert_eq!(XdpMode::Skb.flags(), 2);
        assert_eq!(XdpMode::Drv.flags(), 4);
        assert_eq!(XdpMode::Hw.flags(), 8);
    }

    #[test]
    fn query_reads_the_per_mode_ids() {
        let mut link = LinkMessage::default();
        link.attributes.push(LinkAttribute::Xdp(vec![
            LinkXdp::ProgId(7),
            LinkXdp::SkbProgId(7),
            LinkXdp::DrvProgId(0),
        ]));
        let q = XdpQuery::from_link(&link);
        assert_eq!(q.prog_id(XdpMode::Skb), Some(7));
        assert_eq!(q.prog_id(XdpMode::None), Some(7));
        assert_eq!(q.prog_id(XdpMode::Drv), None);
        assert_eq!(q.mode_of(7), Some(XdpMode::Skb));
        assert!(!q.is_empty());
        assert!(XdpQuery::default().is_empty());
    }

    #[test]
    fn options_build_up() {
        let o = XdpOptions::new()
            .mode(XdpMode::Drv)
            .mechanism(XdpMechanism::Netlink)
            .fail_if_present(true);
        assert_eq!(o.mode, XdpMode::Drv);
        assert_eq!(o.mechanism, XdpMechanism::Netlink);
        assert!(o.fail_if_present && o.replace.is_none());
    }
}
