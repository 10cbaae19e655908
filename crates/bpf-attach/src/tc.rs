//! TC: attach a classifier program to an interface's ingress or egress, as a `cls_bpf` filter
//! under a `clsact` qdisc (netlink, goebpf's way) or as a TCX link (Linux 6.6, probed).
//!
//! The `cls_bpf` path makes sure a `clsact` qdisc exists (refusing to replace another ingress
//! qdisc unless [`TcOptions::clobber_ingress`] is set, as goebpf's `ClobberIngress`), then adds
//! a `bpf` filter with protocol `ETH_P_ALL`, the given priority (default 1, as goebpf) and
//! handle (default: the first free one from 0x1600, as goebpf), direct action by default.
//! Dropping the [`TcLink`] removes exactly that filter (by priority, protocol and handle) and,
//! when this process created the `clsact` qdisc and no filter is left on it, the qdisc too
//! ([`TcOptions::remove_qdisc`]).
//!
//! TCX ([`TcMechanism::Tcx`]) needs no qdisc: programs are kept in an ordered list per hook
//! ([`TcxAnchor`]), each held by a `bpf_link`.
//!
//! Action programs (`tc_act`, `BPF_PROG_TYPE_SCHED_ACT`) need the `act_bpf` action, which this
//! library does not attach (and which many kernels, this project's host included, lack): they
//! give [`AttachError::Unsupported`].

use std::fmt;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

use bpf_sys::link::{LinkCreateAttr, LinkExtra, Relative};
use bpf_sys::probe::{self, LinkKind};
use bpf_sys::prog::AttachTarget;
use bpf_sys::uapi;
use bpf_sys::{AttachType, ProgramType};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionMessage, TcActionMessageAttribute, TcAttribute,
    TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::attach_error::{AttachError, Iface};
use crate::clsact::{del_clsact, ensure_clsact_on, qdisc_token, remove_qdisc_if_ours, QdiscToken};
use crate::link::{log_drop_failure, FdLink};
use crate::netlink::{Netlink, NlError};

const ENOENT: i32 = 2;
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// goebpf's `HANDLE_FILTER_BASE`: the first handle tried.
pub const FIRST_HANDLE: u32 = 0x1600;

/// Which way the packets go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TcDirection {
    /// Received packets.
    #[default]
    Ingress,
    /// Sent packets.
    Egress,
}

impl TcDirection {
    /// The filter parent (`ffff:fff2` ingress, `ffff:fff3` egress: goebpf's
    /// `HANDLE_MIN_INGRESS`/`HANDLE_MIN_EGRESS`).
    pub fn parent(self) -> u32 {
        match self {
            TcDirection::Ingress => 0xFFFF_FFF2,
            TcDirection::Egress => 0xFFFF_FFF3,
        }
    }

    fn tcx_attach_type(self) -> AttachType {
        match self {
            TcDirection::Ingress => AttachType::TcxIngress,
            TcDirection::Egress => AttachType::TcxEgress,
        }
    }
}

impl fmt::Display for TcDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcDirection::Ingress => "ingress",
            TcDirection::Egress => "egress",
        })
    }
}

/// How to attach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TcMechanism {
    /// A `bpf` filter under a `clsact` qdisc (netlink), as goebpf; `tc filter show` lists it.
    #[default]
    ClsBpf,
    /// A TCX link (Linux 6.6); [`AttachError::KernelLacks`] where the probe says there is none.
    Tcx,
    /// TCX where the kernel has it (probed), else `cls_bpf`.
    Auto,
}

/// Where a TCX program goes in its hook's list (ids as `bpftool` shows them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TcxAnchor {
    /// After every other program.
    #[default]
    Last,
    /// Before every other program.
    First,
    /// Right before the program with this id.
    BeforeProgram(u32),
    /// Right after the program with this id.
    AfterProgram(u32),
    /// Right before the program of the link with this id.
    BeforeLink(u32),
    /// Right after the program of the link with this id.
    AfterLink(u32),
}

impl TcxAnchor {
    fn flags_and_relative(self) -> (u32, Relative<'static>) {
        let link = uapi::BPF_F_LINK;
        match self {
            TcxAnchor::Last => (0, Relative::None),
            TcxAnchor::First => (uapi::BPF_F_BEFORE, Relative::None),
            TcxAnchor::BeforeProgram(id) => (uapi::BPF_F_BEFORE | uapi::BPF_F_ID, Relative::Id(id)),
            TcxAnchor::AfterProgram(id) => (uapi::BPF_F_AFTER | uapi::BPF_F_ID, Relative::Id(id)),
            TcxAnchor::BeforeLink(id) => {
                (uapi::BPF_F_BEFORE | uapi::BPF_F_ID | link, Relative::Id(id))
            }
            TcxAnchor::AfterLink(id) => {
                (uapi::BPF_F_AFTER | uapi::BPF_F_ID | link, Relative::Id(id))
            }
        }
    }
}

/// Options of [`attach`]; defaults: ingress, `cls_bpf`, direct action, priority 1, the first
/// free handle from 0x1600, never replace another ingress qdisc, remove the `clsact` qdisc
/// this process created once its last filter goes, the program's own name as the filter's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TcOptions {
    /// Ingress or egress.
    pub direction: TcDirection,
    /// `cls_bpf` or TCX.
    pub mechanism: TcMechanism,
    /// `cls_bpf`: the program's return value is the verdict (`TC_ACT_*`), not a class id
    /// (`TCA_BPF_FLAG_ACT_DIRECT`). goebpf's default was off; ours is on, as aya's.
    pub direct_action: bool,
    /// `cls_bpf`: the filter's priority (lower runs first).
    pub priority: u16,
    /// `cls_bpf`: the filter's handle; `None` for the first free one from [`FIRST_HANDLE`].
    pub handle: Option<u32>,
    /// `cls_bpf`: replace an ingress qdisc that is not `clsact` (its filters go with it).
    pub clobber_ingress: bool,
    /// `cls_bpf`: remove the `clsact` qdisc on detach when this process created it and no
    /// filter is left on it.
    pub remove_qdisc: bool,
    /// `cls_bpf`: the filter's name (`TCA_BPF_NAME`); `None` for the program's name.
    pub name: Option<String>,
    /// TCX: where the program goes.
    pub anchor: TcxAnchor,
    /// TCX: fail with `ESTALE` unless the hook's revision is this one (0: do not check).
    pub expected_revision: u64,
}

impl Default for TcOptions {
    fn default() -> Self {
        TcOptions {
            direction: TcDirection::Ingress,
            mechanism: TcMechanism::ClsBpf,
            direct_action: true,
            priority: 1,
            handle: None,
            clobber_ingress: false,
            remove_qdisc: true,
            name: None,
            anchor: TcxAnchor::Last,
            expected_revision: 0,
        }
    }
}

impl TcOptions {
    /// The defaults, for `direction`.
    pub fn new(direction: TcDirection) -> Self {
        TcOptions {
            direction,
            ..Self::default()
        }
    }

    /// Sets the mechanism.
    pub fn mechanism(mut self, mechanism: TcMechanism) -> Self {
        self.mechanism = mechanism;
        self
    }

    /// Sets direct action.
    pub fn direct_action(mut self, yes: bool) -> Self {
        self.direct_action = yes;
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: u16) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the handle.
    pub fn handle(mut self, handle: u32) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Allows replacing an ingress qdisc that is not `clsact`.
    pub fn clobber_ingress(mut self, yes: bool) -> Self {
        self.clobber_ingress = yes;
        self
    }

    /// Whether to remove the `clsact` qdisc we created once empty.
    pub fn remove_qdisc(mut self, yes: bool) -> Self {
        self.remove_qdisc = yes;
        self
    }

    /// Sets the TCX anchor.
    pub fn anchor(mut self, anchor: TcxAnchor) -> Self {
        self.anchor = anchor;
        self
    }
}

/// A filter as the kernel lists it ([`filters`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcFilter {
    /// Priority.
    pub priority: u16,
    /// Handle.
    pub handle: u32,
    /// Protocol (host order: 3 is `ETH_P_ALL`).
    pub protocol: u16,
    /// Classifier kind (`bpf`, `u32`...).
    pub kind: String,
    /// `bpf`: the filter's name.
    pub name: Option<String>,
    /// `bpf`: the program's id.
    pub prog_id: Option<u32>,
    /// `bpf`: direct action.
    pub direct_action: bool,
}

/// The filters of `iface` in `direction` (the calling thread's network namespace); empty
/// when there is no `clsact` qdisc.
pub fn filters(
    iface: impl Into<Iface>,
    direction: TcDirection,
) -> Result<Vec<TcFilter>, AttachError> {
    let iface = iface.into();
    let nl = open(&iface)?;
    let (ifindex, name) = nl.resolve(&iface)?;
    list_filters(&nl, ifindex, direction.parent())
        .map_err(|e| e.into_attach("list tc filters", &name))
}

/// Makes sure `iface` has a `clsact` qdisc; returns whether it created one. Another ingress
/// qdisc is replaced only with `clobber_ingress`, else [`AttachError::IngressQdiscInTheWay`].
pub fn ensure_clsact(iface: impl Into<Iface>, clobber_ingress: bool) -> Result<bool, AttachError> {
    let iface = iface.into();
    let nl = open(&iface)?;
    let (ifindex, name) = nl.resolve(&iface)?;
    ensure_clsact_on(&nl, ifindex, &name, clobber_ingress)
}

/// Removes the `clsact` qdisc of `iface` with every filter on it; `Ok(false)` when there was
/// none.
pub fn remove_clsact(iface: impl Into<Iface>) -> Result<bool, AttachError> {
    let iface = iface.into();
    let nl = open(&iface)?;
    let (ifindex, name) = nl.resolve(&iface)?;
    match del_clsact(&nl, ifindex) {
        Ok(()) => Ok(true),
        Err(e) if e.is(ENOENT) || e.is(EINVAL) => Ok(false),
        Err(e) => Err(e.into_attach("delete clsact qdisc", &name)),
    }
}

fn open(iface: &Iface) -> Result<Netlink, AttachError> {
    Netlink::open().map_err(|e| e.into_attach("open netlink socket", &iface.to_string()))
}

/// Attaches the classifier `prog` to `iface`.
///
/// Errors: [`AttachError::InterfaceNotFound`], [`AttachError::IngressQdiscInTheWay`],
/// [`AttachError::NoFreeHandle`], [`AttachError::Netlink`] (an existing handle: `EEXIST`),
/// [`AttachError::Unsupported`] for action programs, [`AttachError::WrongProgramType`],
/// [`AttachError::KernelLacks`] for TCX on kernels without it.
pub fn attach(
    prog: impl AsFd,
    iface: impl Into<Iface>,
    opts: &TcOptions,
) -> Result<TcLink, AttachError> {
    let prog = prog.as_fd();
    let iface = iface.into();
    let info = bpf_sys::obj::prog_info(prog)
        .map_err(|e| AttachError::syscall("read program info", "the program", e))?;
    let nl = open(&iface)?;
    match ProgramType::try_from(info.type_).ok() {
        Some(ProgramType::SchedCls) | None => {}
        Some(ProgramType::SchedAct) => return Err(act_bpf_unsupported(&nl)),
        Some(t) => {
            return Err(AttachError::WrongProgramType {
                expected: "tc classifier",
                got: t,
            })
        }
    }
    let (ifindex, name) = nl.resolve(&iface)?;
    let tcx = match opts.mechanism {
        TcMechanism::ClsBpf => false,
        TcMechanism::Tcx => {
            probe::link_type(LinkKind::Tcx).check()?;
            true
        }
        TcMechanism::Auto => probe::link_type_supported(LinkKind::Tcx),
    };
    if tcx {
        let (flags, relative) = opts.anchor.flags_and_relative();
        let mut attr = LinkCreateAttr::new(
            prog,
            AttachTarget::Ifindex(ifindex),
            opts.direction.tcx_attach_type(),
        );
        attr.flags = flags;
        attr.extra = LinkExtra::Tcx {
            relative,
            expected_revision: opts.expected_revision,
        };
        let fd = bpf_sys::link::create(&attr)
            .map_err(|e| AttachError::syscall("attach tcx link", &name, e))?;
        let what = format!("tcx {} link on {name}", opts.direction);
        return Ok(TcLink {
            iface: name,
            direction: opts.direction,
            prog_id: info.id,
            kind: Some(Kind::Tcx(FdLink::from_fd(fd, what))),
        });
    }

    let created = ensure_clsact_on(&nl, ifindex, &name, opts.clobber_ingress)?;
    let token = qdisc_token(ifindex, created);
    let parent = opts.direction.parent();
    let handle = match opts.handle {
        Some(h) => h,
        None => {
            let used: Vec<u32> = list_filters(&nl, ifindex, parent)
                .map_err(|e| e.into_attach("list tc filters", &name))?
                .into_iter()
                .map(|f| f.handle)
                .collect();
            first_free_handle(&used).ok_or_else(|| AttachError::NoFreeHandle {
                iface: name.clone(),
                start: FIRST_HANDLE,
            })?
        }
    };
    let filter_name = opts
        .name
        .clone()
        .unwrap_or_else(|| bpf_sys::bpf::c_name(&info.name));
    let filter = Filter {
        ifindex,
        parent,
        priority: opts.priority,
        handle,
    };
    let mut options = vec![
        TcOption::Bpf(TcFilterBpfOption::ProgFd(prog.as_raw_fd() as u32)),
        TcOption::Bpf(TcFilterBpfOption::ProgName(if filter_name.is_empty() {
            "ebpf".into()
        } else {
            filter_name
        })),
    ];
    if opts.direct_action {
        options.push(TcOption::Bpf(TcFilterBpfOption::Flags(
            TcBpfFlags::DirectAction,
        )));
    }
    let mut msg = filter.message();
    msg.attributes.push(TcAttribute::Options(options));
    let added = nl.request(
        RouteNetlinkMessage::NewTrafficFilter(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    );
    let link = TcLink {
        iface: name,
        direction: opts.direction,
        prog_id: info.id,
        kind: Some(Kind::Filter {
            nl,
            filter,
            qdisc: token,
            remove_qdisc: opts.remove_qdisc,
        }),
    };
    match added {
        Ok(_) => Ok(link),
        Err(e) => {
            let err = e.into_attach("add tc filter", &link.iface);
            // The filter is not there: let the link's drop remove only the qdisc it created.
            let mut link = link;
            if let Some(Kind::Filter {
                nl,
                qdisc,
                remove_qdisc,
                filter,
            }) = link.kind.take()
            {
                if remove_qdisc {
                    let _ = remove_qdisc_if_ours(&nl, filter.ifindex, qdisc);
                }
            }
            Err(err)
        }
    }
}

/// The unsupported error for action programs, saying whether the kernel has `act_bpf` loaded.
fn act_bpf_unsupported(nl: &Netlink) -> AttachError {
    let mut action = TcAction::default();
    action
        .attributes
        .push(TcActionAttribute::Kind("bpf".into()));
    action.attributes.push(TcActionAttribute::Index(1));
    let mut msg = TcActionMessage::default();
    msg.attributes
        .push(TcActionMessageAttribute::Actions(vec![action]));
    // The kernel answers EINVAL ("Specified TC action kind not found") without act_bpf, and
    // ENOENT (no action 1) or the action with it.
    let kernel = match nl.request(RouteNetlinkMessage::GetTrafficAction(msg), 0) {
        Err(e) if e.is(EINVAL) => "this kernel has no act_bpf loaded (CONFIG_NET_ACT_BPF)",
        Err(e) if !e.is(ENOENT) => "whether this kernel has act_bpf could not be told",
        _ => "this kernel has act_bpf",
    };
    AttachError::Unsupported {
        feature: "tc action programs (act_bpf)",
        reason: format!(
            "they run as an act_bpf action, which this library does not attach; {kernel}; \
             attach a classifier with direct action instead"
        ),
    }
}

/// The first handle from [`FIRST_HANDLE`] not in `used` (goebpf's rule).
fn first_free_handle(used: &[u32]) -> Option<u32> {
    (FIRST_HANDLE..=u32::MAX).find(|h| !used.contains(h))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Filter {
    ifindex: u32,
    parent: u32,
    priority: u16,
    handle: u32,
}

impl Filter {
    fn message(&self) -> TcMessage {
        let mut msg = TcMessage::with_index(self.ifindex as i32);
        msg.header.parent = TcHandle::from(self.parent);
        msg.header.handle = TcHandle::from(self.handle);
        msg.header.info = (u32::from(self.priority) << 16) | u32::from(ETH_P_ALL.to_be());
        msg.attributes.push(TcAttribute::Kind("bpf".into()));
        msg
    }
}

pub(crate) fn list_filters(
    nl: &Netlink,
    ifindex: u32,
    parent: u32,
) -> Result<Vec<TcFilter>, NlError> {
    let mut msg = TcMessage::with_index(ifindex as i32);
    msg.header.parent = TcHandle::from(parent);
    let answer = match nl.request(RouteNetlinkMessage::GetTrafficFilter(msg), NLM_F_DUMP) {
        Ok(a) => a,
        // No clsact qdisc: no filters.
        Err(e) if e.is(EINVAL) || e.is(ENOENT) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(answer
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewTrafficFilter(f) => Some(f),
            _ => None,
        })
        .filter(|f| f.header.index == ifindex as i32 && u32::from(f.header.handle) != 0)
        .map(|f| {
            let mut out = TcFilter {
                priority: (f.header.info >> 16) as u16,
                handle: u32::from(f.header.handle),
                protocol: u16::from_be(f.header.info as u16),
                kind: String::new(),
                name: None,
                prog_id: None,
                direct_action: false,
            };
            for attr in f.attributes {
                match attr {
                    TcAttribute::Kind(k) => out.kind = k,
                    TcAttribute::Options(opts) => {
                        for o in opts {
                            match o {
                                TcOption::Bpf(TcFilterBpfOption::ProgName(n)) => out.name = Some(n),
                                TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => {
                                    out.prog_id = Some(id)
                                }
                                TcOption::Bpf(TcFilterBpfOption::Flags(fl)) => {
                                    out.direct_action = fl.contains(TcBpfFlags::DirectAction)
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            out
        })
        .collect())
}

enum Kind {
    Filter {
        nl: Netlink,
        filter: Filter,
        qdisc: Option<Arc<QdiscToken>>,
        remove_qdisc: bool,
    },
    Tcx(FdLink),
}

/// A TC attachment; dropping it detaches the program (best effort, a failure is logged),
/// except a pinned TCX link, which its pin keeps.
///
/// A `cls_bpf` link removes exactly its filter (priority, protocol `ETH_P_ALL`, handle) in the
/// network namespace it was made in, whichever thread drops it.
#[must_use = "dropping a link detaches it"]
pub struct TcLink {
    iface: String,
    direction: TcDirection,
    prog_id: u32,
    kind: Option<Kind>,
}

impl fmt::Debug for TcLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcLink")
            .field("iface", &self.iface)
            .field("direction", &self.direction)
            .field("prog_id", &self.prog_id)
            .field("handle", &self.handle())
            .field("link", &self.fd_link())
            .finish()
    }
}

impl fmt::Display for TcLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Some(Kind::Filter { filter, .. }) => write!(
                f,
                "tc bpf filter (prio {}, handle {:#x}) of program {} on {} {}",
                filter.priority, filter.handle, self.prog_id, self.iface, self.direction
            ),
            _ => write!(
                f,
                "tcx link of program {} on {} {}",
                self.prog_id, self.iface, self.direction
            ),
        }
    }
}

impl TcLink {
    /// The interface's name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Ingress or egress.
    pub fn direction(&self) -> TcDirection {
        self.direction
    }

    /// The attached program's id.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// `cls_bpf`: the filter's handle.
    pub fn handle(&self) -> Option<u32> {
        match &self.kind {
            Some(Kind::Filter { filter, .. }) => Some(filter.handle),
            _ => None,
        }
    }

    /// `cls_bpf`: the filter's priority.
    pub fn priority(&self) -> Option<u16> {
        match &self.kind {
            Some(Kind::Filter { filter, .. }) => Some(filter.priority),
            _ => None,
        }
    }

    /// TCX: the `bpf_link`.
    pub fn fd_link(&self) -> Option<&FdLink> {
        match &self.kind {
            Some(Kind::Tcx(l)) => Some(l),
            _ => None,
        }
    }

    /// TCX: pins the link (see [`FdLink::pin`]); a `cls_bpf` filter has nothing to pin
    /// ([`TcLink::keep`] leaves it in place).
    pub fn pin(&mut self, path: impl AsRef<std::path::Path>) -> Result<(), AttachError> {
        match &mut self.kind {
            Some(Kind::Tcx(l)) => l.pin(path),
            _ => Err(AttachError::Unsupported {
                feature: "pinning a tc filter",
                reason: "only tcx links can be pinned; keep() leaves a filter in place".into(),
            }),
        }
    }

    /// Detaches now and reports a failure: removes the filter (then the `clsact` qdisc as
    /// [`TcOptions::remove_qdisc`] says), or the TCX link. An interface that is gone counts as
    /// detached; a filter someone else removed is an error (`ENOENT`).
    pub fn detach(mut self) -> Result<(), AttachError> {
        match self.kind.take() {
            Some(kind) => self.detach_kind(kind),
            None => Ok(()),
        }
    }

    /// Leaves the program attached when this value goes: a filter past the process (and its
    /// qdisc with it), a TCX link until the process exits (pin it to go further).
    pub fn keep(mut self) {
        if let Some(Kind::Tcx(l)) = self.kind.take() {
            l.keep();
        }
    }

    fn detach_kind(&self, kind: Kind) -> Result<(), AttachError> {
        match kind {
            Kind::Tcx(l) => l.detach(),
            Kind::Filter {
                nl,
                filter,
                qdisc,
                remove_qdisc,
            } => {
                match nl.request(RouteNetlinkMessage::DelTrafficFilter(filter.message()), 0) {
                    Ok(_) => {}
                    Err(e) if e.is(ENODEV) => return Ok(()),
                    Err(e) => return Err(e.into_attach("delete tc filter", &self.iface)),
                }
                let qdisc = if remove_qdisc { qdisc } else { None };
                remove_qdisc_if_ours(&nl, filter.ifindex, qdisc)
                    .map_err(|e| e.into_attach("delete clsact qdisc", &self.iface))
            }
        }
    }
}

impl Drop for TcLink {
    fn drop(&mut self) {
        match self.kind.take() {
            // Closing the fd detaches, unless the link is pinned: then the pin keeps it.
            Some(Kind::Tcx(l)) => drop(l),
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
    fn the_first_free_handle_starts_at_goebpfs_base() {
        assert_eq!(first_free_handle(&[]), Some(0x1600));
        assert_eq!(first_free_handle(&[0x1600, 0x1601, 0x1603]), Some(0x1602));
        assert_eq!(first_free_handle(&[1, 2, 0x1600]), Some(0x1601));
    }

    #[test]
    fn a_filter_message_carries_priority_protocol_and_handle() {
        let f = Filter {
            ifindex: 4,
            parent: TcDirection::Egress.parent(),
            priority: 7,
            handle: 0x1601,
        };
        let m = f.message();
        assert_eq!(m.header.index, 4);
        assert_eq!(u32::from(m.header.parent), 0xFFFF_FFF3);
        assert_eq!(u32::from(m.header.handle), 0x1601);
        // priority in the top half, ETH_P_ALL in network order in the bottom half.
        assert_eq!(m.header.info, (7 << 16) | u32::from(0x0003u16.to_be()));
        assert_eq!(m.attributes, vec![TcAttribute::Kind("bpf".into())]);
    }

    #[test]
    fn tcx_anchors_set_the_position_flags() {
        assert_eq!(TcxAnchor::Last.flags_and_relative().0, 0);
        assert_eq!(TcxAnchor::First.flags_and_relative().0, uapi::BPF_F_BEFORE);
        let (flags, rel) = TcxAnchor::AfterLink(9).flags_and_relative();
        assert_eq!(flags, uapi::BPF_F_AFTER | uapi::BPF_F_ID | uapi::BPF_F_LINK);
        assert!(matches!(rel, Relative::Id(9)));
    }
}
