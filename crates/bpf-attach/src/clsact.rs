//! The `clsact` qdisc that `cls_bpf` filters hang from: finding it, adding it (never
//! replacing another ingress qdisc unless told to), and removing the ones this process added
//! once their last filter is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::attach_error::AttachError;
use crate::netlink::{Netlink, NlError};
use crate::tc::{list_filters, TcDirection};

const ENOENT: i32 = 2;
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;

/// The clsact qdisc's parent (`TC_H_CLSACT`, the same as `TC_H_INGRESS`).
const TC_H_CLSACT: u32 = 0xFFFF_FFF1;
/// The clsact qdisc's handle (`ffff:`).
const CLSACT_HANDLE: u32 = 0xFFFF_0000;

/// The kind of `ifindex`'s ingress-slot qdisc (`clsact` or `ingress`), if any.
pub(crate) fn ingress_qdisc_kind(nl: &Netlink, ifindex: u32) -> Result<Option<String>, NlError> {
    let answer = nl.request(
        RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
        NLM_F_DUMP,
    )?;
    Ok(answer.into_iter().find_map(|m| match m {
        RouteNetlinkMessage::NewQueueDiscipline(q)
            if q.header.index == ifindex as i32 && u32::from(q.header.parent) == TC_H_CLSACT =>
        {
            q.attributes.into_iter().find_map(|a| match a {
                TcAttribute::Kind(k) => Some(k),
                _ => None,
            })
        }
        _ => None,
    }))
}

pub(crate) fn qdisc_message(ifindex: u32, kind: &str) -> TcMessage {
    let mut msg = TcMessage::with_index(ifindex as i32);
    msg.header.parent = TcHandle::from(TC_H_CLSACT);
    msg.header.handle = TcHandle::from(CLSACT_HANDLE);
    msg.attributes.push(TcAttribute::Kind(kind.into()));
    msg
}

pub(crate) fn del_clsact(nl: &Netlink, ifindex: u32) -> Result<(), NlError> {
    nl.request(
        RouteNetlinkMessage::DelQueueDiscipline(qdisc_message(ifindex, "clsact")),
        0,
    )
    .map(drop)
}

pub(crate) fn ensure_clsact_on(
    nl: &Netlink,
    ifindex: u32,
    name: &str,
    clobber_ingress: bool,
) -> Result<bool, AttachError> {
    let kind = ingress_qdisc_kind(nl, ifindex).map_err(|e| e.into_attach("list qdiscs", name))?;
    match kind.as_deref() {
        Some("clsact") => return Ok(false),
        Some(other) if !clobber_ingress => {
            return Err(AttachError::IngressQdiscInTheWay {
                iface: name.to_owned(),
                kind: other.to_owned(),
            })
        }
        Some(other) => nl
            .request(
                RouteNetlinkMessage::DelQueueDiscipline(qdisc_message(ifindex, other)),
                0,
            )
            .map(drop)
            .map_err(|e| e.into_attach("delete ingress qdisc", name))?,
        None => {}
    }
    nl.request(
        RouteNetlinkMessage::NewQueueDiscipline(qdisc_message(ifindex, "clsact")),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .map_err(|e| e.into_attach("add clsact qdisc", name))?;
    Ok(true)
}

/// The clsact qdiscs this process created, by network namespace and ifindex: every link on
/// such a qdisc holds the token, and the last one to go removes the qdisc once it is empty.
#[derive(Debug)]
pub(crate) struct QdiscToken {
    key: (u64, u32),
}

type Registry = Mutex<HashMap<(u64, u32), Weak<QdiscToken>>>;

fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The calling thread's network namespace (its inode number; 0 when it cannot be read).
fn netns_id() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net").map_or(0, |m| m.ino())
}

pub(crate) fn qdisc_token(ifindex: u32, created: bool) -> Option<Arc<QdiscToken>> {
    let key = (netns_id(), ifindex);
    let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    if created {
        let token = Arc::new(QdiscToken { key });
        reg.insert(key, Arc::downgrade(&token));
        Some(token)
    } else {
        reg.get(&key).and_then(Weak::upgrade)
    }
}

/// Removes the clsact qdisc when `token` is its last holder and no filter is left on it.
pub(crate) fn remove_qdisc_if_ours(
    nl: &Netlink,
    ifindex: u32,
    token: Option<Arc<QdiscToken>>,
) -> Result<(), NlError> {
    let Some(token) = token else { return Ok(()) };
    let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    if Arc::strong_count(&token) > 1 {
        return Ok(());
    }
    reg.remove(&token.key);
    drop(reg);
    for dir in [TcDirection::Ingress, TcDirection::Egress] {
        if !list_filters(nl, ifindex, dir.parent())?.is_empty() {
            return Ok(());
        }
    }
    match del_clsact(nl, ifindex) {
        Err(e) if !(e.is(ENOENT) || e.is(EINVAL) || e.is(ENODEV)) => Err(e),
        _ => Ok(()),
    }
}
