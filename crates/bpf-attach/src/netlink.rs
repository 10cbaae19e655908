//! A small rtnetlink client: the requests XDP and TC attachments need, with errors that name
//! the interface, the errno and the kernel's own explanation (extended ack).
//!
//! A netlink socket belongs to the network namespace of the thread that opened it, for its
//! whole life. Links made over netlink keep their socket, so that they detach in the namespace
//! where they were attached, whichever thread drops them.
//!
//! Public here: interface lookups ([`ifindex`], [`ifname`]). The client itself is internal.

use std::io;
use std::sync::{Mutex, PoisonError};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::attach_error::{AttachError, Iface};

/// `NLM_F_CAPPED`: the error message carries only the request's header.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS`: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the extended ack's text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;

/// A failed netlink request: the errno and what the kernel said about it.
#[derive(Debug)]
pub(crate) struct NlError {
    /// The errno, or `InvalidData` for a reply that did not decode.
    pub(crate) source: io::Error,
    /// The extended ack's message.
    pub(crate) extack: Option<String>,
}

impl NlError {
    fn io(source: io::Error) -> Self {
        NlError {
            source,
            extack: None,
        }
    }

    /// Whether the kernel answered with `errno`.
    pub(crate) fn is(&self, errno: i32) -> bool {
        self.source.raw_os_error() == Some(errno)
    }

    /// The error as an [`AttachError::Netlink`] for `op` on `iface`.
    pub(crate) fn into_attach(self, op: &'static str, iface: &str) -> AttachError {
        AttachError::Netlink {
            op,
            iface: iface.to_owned(),
            extack: self.extack,
            source: self.source,
        }
    }
}

struct Inner {
    sock: Socket,
    seq: u32,
}

/// An rtnetlink socket, bound to the network namespace of the thread that opened it.
pub(crate) struct Netlink {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").finish_non_exhaustive()
    }
}

impl Netlink {
    /// Opens a `NETLINK_ROUTE` socket with extended acks.
    pub(crate) fn open() -> Result<Self, NlError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NlError::io)?;
        sock.bind_auto().map_err(NlError::io)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(NlError::io)?;
        // Best effort: without them, errors carry no text.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(Netlink {
            inner: Mutex::new(Inner { sock, seq: 0 }),
        })
    }

    /// Sends `msg` and collects the answer: the messages of a dump (`NLM_F_DUMP` in `flags`)
    /// up to `NLMSG_DONE`, or, for other requests, any echoed messages up to the ack.
    pub(crate) fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.seq = inner.seq.wrapping_add(1);
        let seq = inner.seq;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        inner.sock.send(&buf, 0).map_err(NlError::io)?;

        let mut out = Vec::new();
        let mut decode_error = None;
        loop {
            let (data, _) = inner.sock.recv_from_full().map_err(NlError::io)?;
            let mut off = 0;
            while off + NLMSG_HDRLEN <= data.len() {
                let len =
                    u32::from_ne_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
                        as usize;
                if len < NLMSG_HDRLEN || off + len > data.len() {
                    return Err(NlError::io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("netlink message of {len} bytes at {off} of {}", data.len()),
                    )));
                }
                let raw = &data[off..off + len];
                off += align4(len);
                let parsed = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) {
                    Ok(m) => m,
                    Err(e) => {
                        // Keep reading to the end of the answer, so the socket stays usable.
                        decode_error.get_or_insert_with(|| e.to_string());
                        continue;
                    }
                };
                if parsed.header.sequence_number != seq {
                    continue;
                }
                let msg_flags = parsed.header.flags;
                match parsed.payload {
                    NetlinkPayload::Done(done) => {
                        if done.code < 0 {
                            return Err(NlError {
                                source: io::Error::from_raw_os_error(-done.code),
                                extack: extack_message(msg_flags, &done.extended_ack, 0),
                            });
                        }
                        return finish(out, decode_error);
                    }
                    NetlinkPayload::Error(err) => match err.code {
                        None => return finish(out, decode_error),
                        Some(code) => {
                            return Err(NlError {
                                source: io::Error::from_raw_os_error(-code.get()),
                                extack: extack_message(msg_flags, &err.header, NLMSG_HDRLEN),
                            })
                        }
                    },
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// `RTM_GETLINK` for one interface: its index and name. `ENODEV` becomes
    /// [`AttachError::InterfaceNotFound`].
    pub(crate) fn link(&self, iface: &Iface) -> Result<LinkMessage, AttachError> {
        let mut msg = LinkMessage::default();
        match iface {
            Iface::Name(name) => msg.attributes.push(LinkAttribute::IfName(name.clone())),
            Iface::Index(index) => msg.header.index = *index,
        }
        let what = match iface {
            Iface::Name(name) => name.clone(),
            Iface::Index(index) => format!("ifindex {index}"),
        };
        let found = self
            .request(RouteNetlinkMessage::GetLink(msg), 0)
            .map_err(|e| {
                if e.is(libc_enodev()) {
                    AttachError::InterfaceNotFound {
                        iface: iface.clone(),
                    }
                } else {
                    e.into_attach("get link", &what)
                }
            })?;
        found
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .ok_or_else(|| AttachError::InterfaceNotFound {
                iface: iface.clone(),
            })
    }

    /// The index and name of `iface`.
    pub(crate) fn resolve(&self, iface: &Iface) -> Result<(u32, String), AttachError> {
        let link = self.link(iface)?;
        let name = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
            .unwrap_or_else(|| format!("ifindex {}", link.header.index));
        Ok((link.header.index, name))
    }
}

fn finish(
    out: Vec<RouteNetlinkMessage>,
    decode_error: Option<String>,
) -> Result<Vec<RouteNetlinkMessage>, NlError> {
    match decode_error {
        None => Ok(out),
        Some(e) => Err(NlError::io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot decode the kernel's answer: {e}"),
        ))),
    }
}

/// `ENODEV` (19 on every Linux architecture), without a libc dependency here.
const fn libc_enodev() -> i32 {
    19
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The text of an extended ack: the attributes after the echoed request in an `NLMSG_ERROR`
/// payload (`capped`: only the request's header was echoed; else its whole length, read from
/// the header), or right at `payload` in `NLMSG_DONE` (`echoed` 0).
fn extack_message(flags: u16, payload: &[u8], echoed: usize) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let skip = if echoed == 0 || flags & NLM_F_CAPPED != 0 {
        echoed
    } else {
        let len = payload.get(..4)?;
        u32::from_ne_bytes([len[0], len[1], len[2], len[3]]) as usize
    };
    let mut tlvs = payload.get(align4(skip)..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let text = text.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        tlvs = tlvs.get(align4(len)..).unwrap_or_default();
    }
    None
}

/// The index of the interface `name` in the calling thread's network namespace.
///
/// ```no_run
/// let index = bpf_attach::netlink::ifindex("veth0")?;
/// # Ok::<(), bpf_attach::AttachError>(())
/// ```
pub fn ifindex(name: &str) -> Result<u32, AttachError> {
    let nl = Netlink::open().map_err(|e| e.into_attach("open netlink socket", name))?;
    Ok(nl.resolve(&Iface::Name(name.to_owned()))?.0)
}

/// The name of the interface with `index` in the calling thread's network namespace.
pub fn ifname(index: u32) -> Result<String, AttachError> {
    let what = format!("ifindex {index}");
    let nl = Netlink::open().map_err(|e| e.into_attach("open netlink socket", &what))?;
    Ok(nl.resolve(&Iface::Index(index))?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn extack_text_follows_the_capped_request_header() {
        let mut payload = vec![0u8; NLMSG_HDRLEN];
        payload[..4].copy_from_slice(&64u32.to_ne_bytes());
        payload.extend(tlv(4, &7u32.to_ne_bytes()));
        payload.extend(tlv(NLMSGERR_ATTR_MSG, b"XDP program already attached\0"));
        assert_eq!(
            extack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload, NLMSG_HDRLEN).as_deref(),
            Some("XDP program already attached")
        );
        // Without the flag there are no attributes to read.
        assert_eq!(extack_message(NLM_F_CAPPED, &payload, NLMSG_HDRLEN), None);
    }

    #[test]
    fn extack_text_follows_a_whole_echoed_request() {
        let mut payload = vec![0u8; 40];
        payload[..4].copy_from_slice(&38u32.to_ne_bytes());
        payload.extend(tlv(NLMSGERR_ATTR_MSG, b"no\0"));
        assert_eq!(
            extack_message(NLM_F_ACK_TLVS, &payload, NLMSG_HDRLEN).as_deref(),
            Some("no")
        );
    }

    #[test]
    fn a_truncated_extack_gives_nothing() {
        let mut payload = vec![0u8; NLMSG_HDRLEN];
        payload.extend_from_slice(&[200, 0, 1, 0, b'x']);
        assert_eq!(
            extack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload, NLMSG_HDRLEN),
            None
        );
        assert_eq!(extack_message(NLM_F_ACK_TLVS, &[1, 2], NLMSG_HDRLEN), None);
    }

    #[test]
    fn done_extack_starts_right_away() {
        let payload = tlv(NLMSGERR_ATTR_MSG, b"dump failed\0");
        assert_eq!(
            extack_message(NLM_F_ACK_TLVS, &payload, 0).as_deref(),
            Some("dump failed")
        );
    }
}
